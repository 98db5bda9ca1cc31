#!/usr/bin/env bash
# Real GenAI instrumentation traffic (issue 14): the official openai Python client,
# instrumented by OpenTelemetry's own GenAI instrumentation (opentelemetry-instrumentation-
# openai-v2, three content modes), Arize OpenInference and OpenLLMetry (traceloop, two
# modes), calls judgesim as if it were the model and exports spans and logs over OTLP gRPC
# to a collector (the dev stack's: scripts/services.sh).
#
#   scripts/genai-instrumented.sh setup
#       build (or reuse) the pinned virtualenv; print its python
#   scripts/genai-instrumented.sh modes
#       print the instrumentation modes, one a line
#   scripts/genai-instrumented.sh run [--base-url URL] [--otlp HOST:PORT]
#                                     [--service-name NAME] [--modes M1,M2,...]
#       run deploy/genai-instrumented/chat.py once per mode (one process each, so the
#       instrumentations never stack): 3 chat completions and 1 failing call per mode, as
#       resource service.name=NAME (default genai-instrumented-<time>-<pid>) with
#       raterd.genai.mode=MODE. Without --base-url it builds and starts judgesim on a free
#       loopback port for the run; --otlp defaults to $RATERD_TEST_OTELCOL, else
#       127.0.0.1:4317.
#
# The virtualenv lives in ${RATERD_SERVICES_DIR:-$HOME/.cache/raterd-services}/pyinstr-<hash>,
# keyed by deploy/genai-instrumented/requirements.txt (every package pinned), so editing it
# builds afresh. Packages come from PyPI through pip (its cache keeps the wheels); a cold
# build takes about 20 seconds. Needs python3 (3.9 or newer) with venv.
# What each mode emits: consumer/testdata/inputs/instrumented/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${RATERD_SERVICES_DIR:-$HOME/.cache/raterd-services}"
REQS="$ROOT/deploy/genai-instrumented/requirements.txt"
CHAT="$ROOT/deploy/genai-instrumented/chat.py"
VENV="$DIR/pyinstr-$(sha256sum "$REQS" | cut -c1-12)"
PY="$VENV/bin/python"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'genai-instrumented.sh: %s\n' "$*" >&2; exit 1; }

# setup builds the virtualenv unless a complete one is there (the marker file is written
# last, after the packages import). Concurrent callers wait for one another on a lock; a
# failed build leaves nothing behind but its log.
setup() {
  [ -f "$VENV/.complete" ] && [ -x "$PY" ] && return 0
  mkdir -p "$DIR"
  command -v python3 >/dev/null || die "python3 is needed (3.9 or newer, with venv)"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "python3 $(python3 -c 'import platform; print(platform.python_version())') is too old: 3.9 or newer is needed"
  python3 -c 'import ensurepip, venv' 2>/dev/null ||
    die "python3 has no venv/ensurepip; install it (Debian: apt-get install python3-venv)"
  exec 8>"$VENV.lock"
  flock 8
  if [ -f "$VENV/.complete" ] && [ -x "$PY" ]; then exec 8>&-; return 0; fi
  local t0=$SECONDS logf="$VENV.install.log"
  log "genai-instrumented: installing $(grep -cE '^[A-Za-z]' "$REQS") pinned packages from $REQS into $VENV"
  rm -rf "$VENV"
  if ! { python3 -m venv "$VENV" &&
         "$PY" -m pip install --disable-pip-version-check -q --only-binary=:all: -r "$REQS" &&
         "$PY" -m pip check &&
         "$PY" -c 'import openai, opentelemetry.instrumentation.openai_v2, openinference.instrumentation.openai, opentelemetry.instrumentation.openai'
       } >"$logf" 2>&1; then
    tail -n 20 "$logf" >&2
    rm -rf "$VENV"
    die "installing the packages failed (log: $logf)"
  fi
  touch "$VENV/.complete"
  exec 8>&-
  log "genai-instrumented: virtualenv ready in $((SECONDS - t0))s"
}

# start_judgesim builds judgesim and serves it on a free loopback port until this script
# exits; sets BASE_URL.
start_judgesim() {
  command -v go >/dev/null || die "go is needed to build judgesim (or pass --base-url)"
  local bin port i
  JS_DIR="$(mktemp -d)"
  bin="$JS_DIR/judgesim"
  (cd "$ROOT" && go build -o "$bin" ./cmd/judgesim) || die "building judgesim failed"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$bin" -listen "127.0.0.1:$port" -step-base 1ms -step-per-seq 0 -prefill-per-token 0 >"$JS_DIR/judgesim.log" 2>&1 &
  JS_PID=$!
  trap 'kill "$JS_PID" 2>/dev/null || true; wait "$JS_PID" 2>/dev/null || true; rm -rf "$JS_DIR"' EXIT
  for i in $(seq 100); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      BASE_URL="http://127.0.0.1:$port/v1"
      log "genai-instrumented: judgesim on $BASE_URL"
      return 0
    fi
    kill -0 "$JS_PID" 2>/dev/null || { cat "$JS_DIR/judgesim.log" >&2; die "judgesim exited"; }
    sleep 0.1
  done
  die "judgesim did not listen on 127.0.0.1:$port"
}

cmd_run() {
  BASE_URL="" OTLP="${RATERD_TEST_OTELCOL:-127.0.0.1:4317}" SERVICE="genai-instrumented-$(date +%s)-$$" MODES=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --base-url) BASE_URL="${2:?--base-url needs a URL}"; shift 2 ;;
      --otlp) OTLP="${2:?--otlp needs HOST:PORT}"; shift 2 ;;
      --service-name) SERVICE="${2:?--service-name needs a name}"; shift 2 ;;
      --modes) MODES="${2:?--modes needs a comma-separated list}"; shift 2 ;;
      *) die "run: unknown argument $1 (see the top of $0)" ;;
    esac
  done
  setup
  local all m
  all="$("$PY" "$CHAT" --list-modes)"
  if [ -z "$MODES" ]; then MODES="$(echo "$all" | paste -sd,)"; fi
  for m in ${MODES//,/ }; do
    grep -qxF "$m" <<<"$all" || die "unknown mode $m; the modes are: $(echo "$all" | paste -sd' ')"
  done
  timeout 2 bash -c "exec 3<>/dev/tcp/${OTLP%:*}/${OTLP##*:}" 2>/dev/null ||
    die "no collector listens on $OTLP (start the dev stack: scripts/services.sh up)"
  [ -n "$BASE_URL" ] || start_judgesim
  for m in ${MODES//,/ }; do
    # OTEL_* variables of the caller's shell would change what the instrumentations emit.
    env -u OTEL_SEMCONV_STABILITY_OPT_IN -u OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT \
        -u OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT -u OTEL_RESOURCE_ATTRIBUTES -u OTEL_SERVICE_NAME \
        -u TRACELOOP_TRACE_CONTENT \
      "$PY" "$CHAT" --mode "$m" --base-url "$BASE_URL" --otlp "$OTLP" --service-name "$SERVICE" ||
      die "mode $m failed"
  done
  log "genai-instrumented: modes ${MODES} sent as service.name=$SERVICE to $OTLP"
}

case "${1:-}" in
  setup) setup; echo "$PY" ;;
  modes) setup; "$PY" "$CHAT" --list-modes ;;
  run) shift; cmd_run "$@" ;;
  *) die "usage: $0 setup | modes | run [--base-url URL] [--otlp HOST:PORT] [--service-name NAME] [--modes M1,M2]" ;;
esac
