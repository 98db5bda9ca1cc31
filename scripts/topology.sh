#!/usr/bin/env bash
# Production-topology suite (issue 21, docs/design-topology.md §6): the long drains that
# do not fit .ci/run. TestThreeProcesses (faults/topology_integration_test.go): three
# raterd processes in one consumer group on a topic of 12 partitions, producing
# throughout, on a private Kafka/Redis/ClickHouse stack: a rolling restart of the three,
# a scale 3 → 1 → 3, a kill -9 of one of three; exact rows after FINAL, dead letters,
# committed offsets, partition ownership, and the cost of every rebalance (assignment
# time, fetch gap, rows redelivered). It rewrites its table in docs/deployment.md
# (between the topology-processes markers). TestRedisFailoverDrain
# (faults/redis_failover_integration_test.go): one raterd whose cache is a private Redis
# Cluster or Sentinel set, kill -9 of a master at 50% of the drain; the failover, the
# breaker, no batch failed, exact rows after FINAL (between the topology-redis markers).
#
#   scripts/topology.sh                                   # 20,000 records per scenario (2-5 min on
#                                                         # a loaded 2-core machine)
#   RATERD_TOPOLOGY_RECORDS=5000 scripts/topology.sh      # smaller drains while developing
#   scripts/topology.sh -run 'kill'                       # some scenarios (the table lists only those)
#   scripts/topology.sh -run redis                        # the Redis failovers only
#   RATERD_FAULTS_LOGS=/tmp/logs scripts/topology.sh      # keep every raterd's log there
#
# TestThreeProcesses and TestRedisFailoverDrain skip unless RATERD_TOPOLOGY_RECORDS is set (this script sets it),
# so `go test ./...` in .ci/run leaves it out.
#
# Needs what `scripts/services.sh up` installs (the Kafka jars, redis-server,
# clickhouse-server); the shared services themselves are not used.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run='.'
if [ "${1:-}" = -run ]; then
  run=$2
  shift 2
fi
eval "$(scripts/services.sh env)"
export RATERD_REQUIRE_SERVICES=1
export RATERD_TOPOLOGY_RECORDS="${RATERD_TOPOLOGY_RECORDS:-20000}"
exec go test -count=1 -timeout 60m -v -run "^(TestRedisFailoverDrain|TestThreeProcesses)\$/($run)" ./faults/ \
  -args -deployment-doc "$PWD/docs/deployment.md" "$@"
