#!/usr/bin/env bash
# Fault-injection suite (faults/): kills raterd and restarts Kafka, Redis and ClickHouse
# mid-drain on a private stack, checks that no record is lost or scored twice in
# `scores FINAL`, and rewrites the table in docs/reliability.md.
#
#   scripts/faults.sh                        # all scenarios, 50,000 records each
#   scripts/faults.sh -run 'kill50|negative' # some scenarios (the doc table lists only those)
#   RATERD_FAULTS_RECORDS=5000 scripts/faults.sh   # smaller drains while developing
#
# Needs what `scripts/services.sh up` installs (the Kafka jars, redis-server,
# clickhouse-server); the shared services themselves are not used.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run='.'
if [ "${1:-}" = -run ]; then run=$2; shift 2; fi
eval "$(scripts/services.sh env)"
export RATERD_REQUIRE_SERVICES=1
exec go test -count=1 -timeout 60m -v -run "TestFaultInjection/($run)" ./faults/ -args -reliability-doc "$PWD/docs/reliability.md" "$@"
