#!/usr/bin/env bash
# Fault-injection suite (faults/): kills raterd and restarts Kafka, Redis and ClickHouse
# mid-drain on a private stack, checks from raterd's metrics that each fault was met and
# that no record is lost or scored twice in `scores FINAL` nor misses its dead letter,
# runs the negative controls (builds with one promise broken, which must fail on it),
# and rewrites the table in docs/reliability.md; then the cluster scenarios
# (TestClusterFaults: a three-node KRaft cluster, a partition leader killed, a rolling
# restart, a controller failover, three raterd restarted in turn, producing throughout,
# 20,000 records or more each, about 5 min; RATERD_FAULTS_CLUSTER_RECORDS changes it),
# which rewrite the cluster table there.
#
#   scripts/faults.sh                        # all scenarios, 20,000 records each (~10 min)
#   RATERD_FAULTS_RECORDS=50000 scripts/faults.sh  # longer drains
#   scripts/faults.sh -run 'kill50|negative' # some scenarios (the doc table lists only those)
#   RATERD_FAULTS_RECORDS=5000 scripts/faults.sh   # smaller drains while developing
#   RATERD_FAULTS_LOGS=/tmp/logs scripts/faults.sh # keep every raterd's log there
#   scripts/faults.sh -net                   # only the network faults (proxied ClickHouse,
#                                            # Redis, judge pool; their own table, ~5 min)
#   scripts/faults.sh -net -run 'ch_'        # some of them
#   RATERD_NETFAULTS_RECORDS=5000 scripts/faults.sh -net   # (10,000 records by default)
#   scripts/faults.sh -chcluster             # only the ClickHouse-cluster faults
#                                            # (TestClickHouseClusterFaults: a private ZooKeeper
#                                            # and four 18.16 servers, 2 shards x 2 replicas; a
#                                            # replica stopped, ZooKeeper stopped or killed for 10 s, the
#                                            # negative controls; their table goes into
#                                            # docs/deployment.md; RATERD_FAULTS_CHCLUSTER_RECORDS,
#                                            # 10,000 by default: about 3.5 min on 2 cores)
#   scripts/faults.sh -chcluster -run 'replica'   # some of them
#
# With fewer than about 10,000 records one raterd fetches the whole topic at once (the
# in-flight bound is 4,096 messages), so `join` finds no work left for the new member
# and fails as a fault not met.
#
# Needs what `scripts/services.sh up` installs (the Kafka jars, redis-server,
# clickhouse-server); the shared services themselves are not used.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run='.'
tests='(TestFaultInjection|TestClusterFaults|TestClickHouseRefusal|TestNetworkFaults)' # everything: every table
if [ "${1:-}" = -net ]; then tests=TestNetworkFaults; shift; fi
chcluster='(TestClickHouseClusterFaults|TestClickHouseClusterMigrateHostDown)'
if [ "${1:-}" = -chcluster ]; then tests=$chcluster; export RATERD_FAULTS_CHCLUSTER=1; shift; fi
if [ "${1:-}" = -run ]; then
  run=$2
  shift 2
  # A subset rewrites its table with that subset only; leave the other table alone.
  # (The cluster and refusal tests leave their tables alone when none of theirs ran.)
  [ "$tests" = TestNetworkFaults ] || [ "$tests" = "$chcluster" ] || tests='(TestFaultInjection|TestClusterFaults|TestClickHouseRefusal)'
fi
eval "$(scripts/services.sh env)"
export RATERD_REQUIRE_SERVICES=1
# TestClickHouseRefusal (faults/clickhouse_refusal_integration_test.go): ClickHouse up but
# refusing inserts (read-only user, too many parts, a dropped column, a full disk); its
# own table in docs/reliability.md. RATERD_REFUSAL_RECORDS sets its drains (20,000).
exec go test -count=1 -timeout 60m -v -run "^$tests\$/($run)" ./faults/ -args -reliability-doc "$PWD/docs/reliability.md" \
  -chcluster-doc "$PWD/docs/deployment.md" "$@"
