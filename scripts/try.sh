#!/usr/bin/env bash
# The README's walkthrough ("Try it on the dev stack") as a script that really runs:
# build, the service stack, a starter config, the judge simulator, the schema, traffic
# stamped near now, raterd in the background until it has scored everything, reports, the
# dead letters, and a stop by PID.
#
#   scripts/try.sh
#   RATERD_TRY_KEEP_SERVICES=1 scripts/try.sh    never stops the service stack (the test suite's setting)
#
# The README's command lines are lines of this script (internal/doccheck checks that, and
# runs this script in the test suite), so the documented path cannot rot. It writes bin/,
# raterd.yaml, *.log and *.pid in the repository root (all ignored by git), stops what it
# started however it ends, and stops the service stack only if it was not up before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stack_was_up=
if [ -n "${RATERD_TRY_KEEP_SERVICES:-}" ] || scripts/services.sh status >/dev/null 2>&1; then stack_was_up=1; fi
# PID files of an earlier run name processes that are gone (or someone else's now).
rm -f raterd.pid judgesim.pid
for port in 8000 9464; do
  if port_busy "$port"; then
    echo "try.sh: 127.0.0.1:$port is in use (judgesim listens on 8000, raterd's admin server on 9464); stop what holds it first" >&2
    exit 1
  fi
done

# stop_pid PIDFILE: SIGTERM the process, then wait (bounded) until it has exited.
stop_pid() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "try.sh: process $pid ($1) did not stop within 20s of SIGTERM; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  status=$?
  stop_pid raterd.pid
  stop_pid judgesim.pid
  if [ -z "$stack_was_up" ]; then scripts/services.sh down || true; fi
  if [ "$status" -ne 0 ]; then
    echo "try.sh: failed (exit $status); the last lines of raterd.log and judgesim.log:" >&2
    tail -n 20 raterd.log judgesim.log 2>/dev/null >&2 || true
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM # so that a stopped run still stops what it started
trap 'exit 130' INT

step "the main job on embedded defaults, nothing else running: raterd demo"
go run ./cmd/raterd demo

step "build raterd, judgesim and trafficgen into ./bin"
go build -o bin/ ./cmd/...
export PATH="$PWD/bin:$PATH"

step "start Kafka, Redis and ClickHouse on 127.0.0.1"
scripts/services.sh up

step "write the starter config"
raterd init

step "start the judge-pool simulator on :8000"
judgesim > judgesim.log 2>&1 & echo $! > judgesim.pid

step "create the ClickHouse schema"
raterd migrate --config raterd.yaml

step "produce 5,000 records stamped from two hours ago (this creates the topic)"
trafficgen -n 5000 -start -2h | scripts/services.sh kafka-tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic llm-traffic

step "run raterd in the background until every record is scored and committed"
raterd run --config raterd.yaml > raterd.log 2>&1 & echo $! > raterd.pid
raterd lag --config raterd.yaml --wait 3m

step "reports"
raterd report list
raterd report trend --config raterd.yaml --evaluator helpfulness --from -24h
raterd report compare --config raterd.yaml --evaluator helpfulness --model-a support-llm-v7 --model-b support-llm-v8-canary --from -24h
raterd report compare --config raterd.yaml --evaluator helpfulness --model support-llm-v7 --window-a -3h,-1h --window-b -1h,now
raterd report worst_apps --config raterd.yaml --param evaluator=helpfulness --param from=-24h --param min_rows=20 --param limit=10 --format csv
raterd report html --config raterd.yaml --from -24h --model-a support-llm-v7 --model-b support-llm-v8-canary -o raterd-report.html
grep -c '<figure class="chart"' raterd-report.html

step "the dead letters (the invalid records trafficgen mixes in), listed without replaying"
raterd dlq replay --config raterd.yaml --dry-run

step "stop raterd (it drains and commits) and judgesim, and wait until both have exited"
kill "$(cat raterd.pid)" "$(cat judgesim.pid)" && wait
rm -f raterd.pid judgesim.pid
grep -m1 'raterd stopped' raterd.log

if [ -z "$stack_was_up" ]; then
  step "stop the service stack (it was not up before this script)"
  scripts/services.sh down
  stack_was_up=stopped # nothing left for cleanup to stop
fi
step "done"
