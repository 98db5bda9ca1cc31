#!/usr/bin/env bash
# Development/CI service stack for raterd: Apache Kafka (KRaft, single node), Redis,
# ClickHouse (one server, and a cluster of four with ZooKeeper: scripts/services-chcluster.sh),
# an OpenTelemetry Collector and llama.cpp's server, all on loopback. Shared by .ci/run, developers and users.
#
#   scripts/services.sh up       install what is missing, start everything, wait until ready
#   scripts/services.sh down     stop everything this script started
#   scripts/services.sh status   print each service up/down; non-zero exit if any is down
#   scripts/services.sh env      print the export lines the integration tests read
#   scripts/services.sh kafka-tool CLASS ARGS...   run a Kafka CLI tool (TopicCommand, ConsoleProducer, ...)
#
# Installs: Kafka broker jars from Maven Central (deploy/kafka/pom.xml, needs java + mvn);
# the OpenTelemetry Collector, built with the Collector Builder from the Go module proxy
# (deploy/otelcol/builder.yaml, needs go; about 2 minutes the first time, cached after);
# redis-server, clickhouse-server, clickhouse-client and openssl from the Debian packages;
# chdb-core from PyPI into a virtualenv (the current ClickHouse release as an in-process
# engine: the tests run raterd's DDL, dedup inserts and SQL cookbook on it, since Debian's
# server is 18.16); the openai client and real GenAI instrumentations from PyPI into another
# (scripts/genai-instrumented.sh setup); llama.cpp's server, built from the llama-cpp-python
# sdist on PyPI with tiny models it writes (scripts/services-llama.sh: about 15 minutes the
# first time, cached after); promtool, unpacked from Debian's prometheus package; for the
# topology tests a Redis Cluster and a Sentinel set from the same redis-server
# (scripts/services-redis.sh), ZooKeeper from Debian and four ClickHouse servers as 2 shards
# x 2 replicas (scripts/services-chcluster.sh; `up cluster`/`down cluster` for it alone), and
# KEDA's CRD and kafka scaler source read from its checksum-pinned Go module (keda_install).
# ClickHouse listens on 9000 and, with TLS, on 9440; the certificate is signed by a CA made
# at each start (its path is in `env`). Kafka listens on 9092 (PLAINTEXT), 9094 (SASL_SSL:
# SCRAM-SHA-512/256 and PLAIN, user raterd) and 9095 (SSL with client certificates), with
# certificates from that CA (paths and credentials in `env`). Its users are in deploy/clickhouse/users.xml.
# State, logs and the jar cache live under ${RATERD_SERVICES_DIR:-$HOME/.cache/raterd-services};
# data directories are wiped whenever a service is (re)started, so tests start clean.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${RATERD_SERVICES_DIR:-$HOME/.cache/raterd-services}"
RUN="$DIR/run"   # pidfiles
LOGS="$DIR/logs"

KAFKA_ADDR=127.0.0.1:9092
KAFKA_CONTROLLER=127.0.0.1:9093
# SASL_SSL (SCRAM-SHA-256/512 and PLAIN) and mutual TLS, next to PLAINTEXT on 9092; the
# broker's certificate and the client's are signed by the CA made for ClickHouse.
KAFKA_SASL_SSL_ADDR=127.0.0.1:9094
KAFKA_MTLS_ADDR=127.0.0.1:9095
KAFKA_SCRAM_USER=raterd
KAFKA_SCRAM_PASSWORD=raterd-dev-kafka-password
KAFKA_TLS="$DIR/kafka-tls"
REDIS_PORT=6379
CH_TCP_PORT=9000
CH_HTTP_PORT=8123
CH_TLS_PORT=9440
# The in-process current ClickHouse (see above); bump both together with the test that
# uses it (sinks/clickhouse/current_release_integration_test.go).
CHDB_CORE_VERSION=26.9.0
CHDB_VENV="$DIR/chdb-$CHDB_CORE_VERSION"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml")"
# Keyed by the pom's hash, so editing deploy/kafka/pom.xml fetches a fresh set of jars.
KAFKA_LIBS="$DIR/kafka-$KAFKA_VERSION-$(sha256sum "$ROOT/deploy/kafka/pom.xml" | cut -c1-12)/libs"
# Base64 (URL-safe, unpadded) of the 16 bytes "raterd-dev-clust": any fixed id will do.
KAFKA_CLUSTER_ID=cmF0ZXJkLWRldi1jbHVzdA
KAFKA_HEAP="${RATERD_KAFKA_HEAP:--Xms256m -Xmx768m}"

# The OpenTelemetry Collector (deploy/otelcol): OTLP gRPC and HTTP, its health check, and
# the JSON-lines file every signal it receives is written to. The builder version is the
# core components' version in builder.yaml.
OTELCOL_GRPC_PORT=4317
OTELCOL_HTTP_PORT=4318
OTELCOL_HEALTH_PORT=13133
OTELCOL_BUILDER_VERSION=v0.165.0
# Keyed by the manifest's hash, so editing deploy/otelcol/builder.yaml builds afresh.
OTELCOL_BUILD="$DIR/otelcol-$(sha256sum "$ROOT/deploy/otelcol/builder.yaml" | cut -c1-12)"
OTELCOL_BIN="$OTELCOL_BUILD/_build/otelcol-raterd"
OTELCOL_FILE="$DIR/otelcol/export.jsonl"

KAFKA_TIMEOUT=180
REDIS_TIMEOUT=30
CH_TIMEOUT=90

log() { printf '%s\n' "$*" >&2; }
die() { printf 'services.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# apt_install PACKAGE... installs the packages that are not installed yet. It waits for
# dpkg locks held by another apt run instead of failing, and runs `apt-get update` once
# if a package is unknown to the local package lists.
APT_UPDATED=
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get here; install them by hand"
  for p in "${missing[@]}"; do
    if [ -z "$APT_UPDATED" ] && ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
      log "apt: updating package lists"
      as_root apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null
      APT_UPDATED=1
    fi
  done
  log "apt: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${missing[@]}" >"$LOGS/apt-install.log" 2>&1 ||
    { tail -n 20 "$LOGS/apt-install.log" >&2; die "apt-get install ${missing[*]} failed"; }
}

# pid_alive NAME PATTERN: the pid in $RUN/NAME.pid is running and its command line matches.
pid_alive() {
  local pidfile="$RUN/$1.pid" pid
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# spawn NAME LOGFILE COMMAND...: run COMMAND in the background in its own session, detached
# from this shell (a Ctrl-C in the calling terminal or CI step does not reach it), with its
# output in LOGFILE and its pid in $RUN/NAME.pid. The pid is written by the process itself
# just before exec, so it is right whether or not setsid has to fork.
spawn() {
  local name=$1 logfile=$2; shift 2
  rm -f "$RUN/$name.pid"
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" >"$logfile" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 50); do [ -s "$RUN/$name.pid" ] && return 0; sleep 0.1; done
  die "$name: did not start (see $logfile)"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_free NAME PORT: fail clearly when something we did not start holds the port.
port_free() {
  if port_open "$2"; then
    die "$1: port $2 is already in use by a process this script did not start
  ($(ss -ltnpH "sport = :$2" 2>/dev/null | sed 's/.*users:/users:/' | head -n1)); stop it first
  (a distribution service? try: systemctl stop redis-server clickhouse-server)"
  fi
}

# wait_for NAME TIMEOUT LOGFILE COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local name=$1 timeout=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name" "${PATTERN[$name]}"; then
      log "$name: process exited during startup; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      die "$name failed to start"
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name: not ready after ${timeout}s; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      die "$name did not become ready"
    fi
    sleep 0.5
  done
}

declare -A PATTERN=([kafka]='kafka.Kafka' [redis]='redis-server' [clickhouse]='clickhouse' [otelcol]='otelcol-raterd')

# llama.cpp's server, the real inference engine of the judge tests.
# shellcheck source=scripts/services-llama.sh
source "$ROOT/scripts/services-llama.sh"
# Redis Cluster (7001-7006) and a Sentinel set (6380/6381, Sentinels 26379-26381).
# shellcheck source=scripts/services-redis.sh
source "$ROOT/scripts/services-redis.sh"
# The ClickHouse cluster (ZooKeeper, 2 shards x 2 replicas): started by `up` with the
# rest, or alone by `up cluster` (`down cluster` stops it alone).
# shellcheck source=scripts/services-chcluster.sh
source "$ROOT/scripts/services-chcluster.sh"

kafka_java() { java -cp "$KAFKA_LIBS/*" "$@"; }
kafka_ready() {
  port_open 9092 &&
    timeout 60 java -Xmx256m -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.xml" \
      -Dkafka.logs.dir="$LOGS/kafka-tools" org.apache.kafka.tools.TopicCommand \
      --bootstrap-server "$KAFKA_ADDR" --list
}
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }
ch_ready() { clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" --query 'SELECT 1'; }

# ---------------------------------------------------------------------------- kafka
kafka_install() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  [ -f "$KAFKA_LIBS/.complete" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  log "kafka: fetching jars ($KAFKA_VERSION, Maven Central)…"
  local tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  # The pom lists the broker, the CLI tools (kafka-tools) and a log4j2 binding.
  mvn -B -q -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime >"$LOGS/mvn.log" 2>&1 ||
    { tail -n 30 "$LOGS/mvn.log" >&2; die "kafka: fetching jars failed"; }
  touch "$tmp/.complete"
  rm -rf "$KAFKA_LIBS"; mv "$tmp" "$KAFKA_LIBS"
}

kafka_start() {
  if pid_alive kafka "${PATTERN[kafka]}"; then log "kafka: already running"; return 0; fi
  port_free kafka 9092; port_free kafka 9093; port_free kafka 9094; port_free kafka 9095
  local home="$DIR/kafka"
  rm -rf "$home"; mkdir -p "$home/data" "$LOGS/kafka"
  : >"$LOGS/kafka/server.log"
  kafka_make_certs
  cat >"$home/server.properties" <<EOF
# Generated by scripts/services.sh; edits are lost on the next 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$KAFKA_CONTROLLER
listeners=PLAINTEXT://$KAFKA_ADDR,CONTROLLER://$KAFKA_CONTROLLER,SASL_SSL://$KAFKA_SASL_SSL_ADDR,MTLS://$KAFKA_MTLS_ADDR
advertised.listeners=PLAINTEXT://$KAFKA_ADDR,CONTROLLER://$KAFKA_CONTROLLER,SASL_SSL://$KAFKA_SASL_SSL_ADDR,MTLS://$KAFKA_MTLS_ADDR
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_TLS/ca.crt
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SCRAM_USER="$KAFKA_SCRAM_PASSWORD";
listener.name.mtls.ssl.client.auth=required
log.dirs=$home/data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
num.network.threads=2
num.io.threads=4
EOF
  log "kafka: formatting storage"
  kafka_java -Xmx256m -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.xml" \
    -Dkafka.logs.dir="$LOGS/kafka" kafka.tools.StorageTool format --standalone \
    -t "$KAFKA_CLUSTER_ID" -c "$home/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
    >"$LOGS/kafka/format.log" 2>&1 ||
    { cat "$LOGS/kafka/format.log" >&2; die "kafka: storage format failed"; }
  log "kafka: starting on $KAFKA_ADDR (controller $KAFKA_CONTROLLER, SASL_SSL $KAFKA_SASL_SSL_ADDR, mTLS $KAFKA_MTLS_ADDR)"
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of JVM flags
  spawn kafka "$LOGS/kafka/stdout.log" java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.xml" \
    -Dkafka.logs.dir="$LOGS/kafka" -cp "$KAFKA_LIBS/*" kafka.Kafka "$home/server.properties"
}

# kafka_make_certs: the broker's certificate (127.0.0.1/localhost) and a client
# certificate for mutual TLS, signed by the ClickHouse CA (made first by ch_start), in
# KAFKA_TLS with a copy of that CA: a later ClickHouse restart makes a new CA, and the
# Kafka clients must trust the one that signed this broker.
kafka_make_certs() {
  local d="$KAFKA_TLS" ca="$DIR/clickhouse/etc"
  [ -f "$ca/ca.key" ] || { mkdir -p "$ca"; ch_make_certs "$ca"; }
  rm -rf "$d"; mkdir -p "$d"
  cp "$ca/ca.crt" "$d/ca.crt"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$d/broker.key" -out "$d/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/san.ext"
  openssl x509 -req -in "$d/broker.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/san.ext" -out "$d/broker.crt" 2>/dev/null
  # Kafka's PEM keystore: the PKCS#8 key, then the certificate chain.
  openssl pkcs8 -topk8 -nocrypt -in "$d/broker.key" -out "$d/broker.pk8" 2>/dev/null
  cat "$d/broker.pk8" "$d/broker.crt" >"$d/broker.pem"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=raterd-client \
    -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/client.ext" -out "$d/client.crt" 2>/dev/null
  chmod 600 "$d/broker.key" "$d/broker.pk8" "$d/broker.pem" "$d/client.key"
}

kafka_wait() {
  wait_for kafka "$KAFKA_TIMEOUT" "$LOGS/kafka/server.log" kafka_ready
  log "kafka: up ($KAFKA_VERSION, KRaft) on $KAFKA_ADDR"
}

# ---------------------------------------------------------------------------- redis
redis_install() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools; }

redis_start() {
  if pid_alive redis "${PATTERN[redis]}"; then log "redis: already running"; return 0; fi
  port_free redis "$REDIS_PORT"
  rm -rf "$DIR/redis"; mkdir -p "$DIR/redis"
  log "redis: starting on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" \
    --save '' --appendonly no --daemonize yes --pidfile "$RUN/redis.pid" \
    --logfile "$LOGS/redis.log" >/dev/null 9>&-
  local i
  for i in $(seq 50); do [ -s "$RUN/redis.pid" ] && break; sleep 0.1; done
}

redis_wait() {
  wait_for redis "$REDIS_TIMEOUT" "$LOGS/redis.log" redis_ready
  log "redis: up ($(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')) on 127.0.0.1:$REDIS_PORT"
}

# ---------------------------------------------------------------------------- clickhouse
ch_install() {
  command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null || apt_install clickhouse-server clickhouse-client
  command -v openssl >/dev/null || apt_install openssl
}

# ch_make_certs DIR: a throwaway CA and a server certificate for 127.0.0.1/localhost
# signed by it, so that TLS clients verify the server against DIR/ca.crt.
ch_make_certs() {
  local d=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=raterd-dev-ca -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/san.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
  chmod 600 "$d/ca.key" "$d/server.key"
}

# chdb_install puts chdb-core in its own virtualenv (pip's cache keeps the wheel).
chdb_install() {
  [ -x "$CHDB_VENV/bin/python" ] && "$CHDB_VENV/bin/python" -c 'import chdb' 2>/dev/null && return 0
  command -v python3 >/dev/null || die "python3 is needed for chdb (the current-ClickHouse SQL tests)"
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  log "chdb: installing chdb-core $CHDB_CORE_VERSION into $CHDB_VENV"
  rm -rf "$CHDB_VENV"
  python3 -m venv "$CHDB_VENV" >"$LOGS/chdb-install.log" 2>&1 &&
    "$CHDB_VENV/bin/pip" install -q --disable-pip-version-check --no-deps "chdb-core==$CHDB_CORE_VERSION" >>"$LOGS/chdb-install.log" 2>&1 ||
    { tail -n 20 "$LOGS/chdb-install.log" >&2; rm -rf "$CHDB_VENV"; die "chdb-core install failed"; }
}

# genai_install builds the virtualenv of scripts/genai-instrumented.sh (the openai client and
# real GenAI instrumentations, pinned in deploy/genai-instrumented/requirements.txt; about 20s
# the first time, 40s with an empty pip cache, cached after). A failure only warns: the one
# test that needs it (TestIntegrationGenAIInstrumented) says so again, and fails under CI.
genai_install() {
  "$ROOT/scripts/genai-instrumented.sh" setup >/dev/null ||
    log "services: WARNING: scripts/genai-instrumented.sh setup failed; real-instrumentation tests will skip or fail"
}

ch_start() {
  if pid_alive clickhouse "${PATTERN[clickhouse]}"; then log "clickhouse: already running"; return 0; fi
  port_free clickhouse "$CH_TCP_PORT"; port_free clickhouse "$CH_HTTP_PORT"; port_free clickhouse "$CH_TLS_PORT"
  local home="$DIR/clickhouse"
  rm -rf "$home"; mkdir -p "$home/etc" "$home/data" "$home/tmp" "$home/user_files" "$home/format_schemas" "$home/log"
  # Render our config into the state dir: the server writes *-preprocessed.xml next to it.
  sed "s|@STATE@|$home|g" "$ROOT/deploy/clickhouse/config.xml" >"$home/etc/config.xml"
  cp "$ROOT/deploy/clickhouse/users.xml" "$home/etc/users.xml"
  ch_make_certs "$home/etc"
  ln -sfn "$home/log" "$LOGS/clickhouse"
  log "clickhouse: starting on 127.0.0.1:$CH_TCP_PORT (tls $CH_TLS_PORT, http $CH_HTTP_PORT)"
  (cd "$home" && spawn clickhouse "$home/log/stdout.log" clickhouse-server --config-file="$home/etc/config.xml")
}

ch_wait() {
  wait_for clickhouse "$CH_TIMEOUT" "$DIR/clickhouse/log/clickhouse-server.err.log" ch_ready
  log "clickhouse: up ($(clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" --query 'SELECT version()')) on 127.0.0.1:$CH_TCP_PORT"
}

# ---------------------------------------------------------------------------- commands
stop_one() {
  local name=$1 pidfile="$RUN/$1.pid" pid i
  if ! pid_alive "$name" "${PATTERN[$name]}"; then
    rm -f "$pidfile"; log "$name: not running"; return 0
  fi
  pid="$(cat "$pidfile")"
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 300); do
    [ -d "/proc/$pid" ] || break
    # A zombie child of a long-gone parent still has /proc/PID; count it as stopped.
    grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    log "$name: still running after 30s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# ------------------------------------------------------------------------------ otelcol
# otelcol_install builds the collector of deploy/otelcol/builder.yaml unless this
# manifest's build is there. The builder's own go.mod lives in the build directory, not in
# the repository's module.
otelcol_install() {
  command -v curl >/dev/null || apt_install curl # its health check
  [ -x "$OTELCOL_BIN" ] && return 0
  command -v go >/dev/null || die "otelcol: the go command is needed to build the collector"
  log "otelcol: building the OpenTelemetry Collector with the Collector Builder $OTELCOL_BUILDER_VERSION (about 2 minutes the first time)"
  rm -rf "$OTELCOL_BUILD"; mkdir -p "$OTELCOL_BUILD"
  cp "$ROOT/deploy/otelcol/builder.yaml" "$OTELCOL_BUILD/builder.yaml"
  GOBIN="$OTELCOL_BUILD/bin" go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_BUILDER_VERSION" \
    || die "otelcol: could not install the Collector Builder $OTELCOL_BUILDER_VERSION"
  (cd "$OTELCOL_BUILD" && bin/builder --config builder.yaml >"$LOGS/otelcol-build.log" 2>&1) \
    || { tail -n 30 "$LOGS/otelcol-build.log" >&2; die "otelcol: build failed (log: $LOGS/otelcol-build.log)"; }
  [ -x "$OTELCOL_BIN" ] || die "otelcol: the build made no $OTELCOL_BIN"
}

otelcol_ready() { curl -fsS "http://127.0.0.1:$OTELCOL_HEALTH_PORT/" >/dev/null; }

otelcol_start() {
  if pid_alive otelcol "${PATTERN[otelcol]}"; then log "otelcol: already running"; return 0; fi
  port_free otelcol "$OTELCOL_GRPC_PORT"; port_free otelcol "$OTELCOL_HTTP_PORT"; port_free otelcol "$OTELCOL_HEALTH_PORT"
  rm -rf "$DIR/otelcol"; mkdir -p "$DIR/otelcol"
  log "otelcol: starting on 127.0.0.1:$OTELCOL_GRPC_PORT (OTLP gRPC), :$OTELCOL_HTTP_PORT (HTTP); export file $OTELCOL_FILE"
  OTELCOL_GRPC_PORT=$OTELCOL_GRPC_PORT OTELCOL_HTTP_PORT=$OTELCOL_HTTP_PORT OTELCOL_HEALTH_PORT=$OTELCOL_HEALTH_PORT \
    OTELCOL_FILE=$OTELCOL_FILE OTELCOL_KAFKA=$KAFKA_ADDR \
    spawn otelcol "$LOGS/otelcol.log" "$OTELCOL_BIN" --config "$ROOT/deploy/otelcol/collector.yaml"
}

otelcol_wait() {
  wait_for otelcol 60 "$LOGS/otelcol.log" otelcol_ready
  log "otelcol: up (collector $OTELCOL_BUILDER_VERSION) on 127.0.0.1:$OTELCOL_GRPC_PORT"
}

# ----------------------------------------------------------------------------- promtool
# promtool runs `promtool check rules` and the rule unit tests on deploy/prometheus
# (sinks/alert/prometheus_rules_test.go, which finds it through RATERD_TEST_PROMTOOL).
# It is unpacked from Debian's prometheus package into the cache: downloaded, not installed,
# so no Prometheus server is set up or started (about 20 MB, a second or two; cached after).
PROMTOOL_BIN="$DIR/promtool/promtool"
promtool_install() {
  [ -x "$PROMTOOL_BIN" ] && return 0
  command -v apt-get >/dev/null || die "promtool: no apt-get here; put promtool at $PROMTOOL_BIN by hand"
  # grep without -q reads all of apt-cache's output: under pipefail, -q could fail it with SIGPIPE.
  if [ -z "$APT_UPDATED" ] && ! apt-cache policy prometheus 2>/dev/null | grep 'Candidate: [^(]' >/dev/null; then
    log "apt: updating package lists"
    as_root apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "promtool: unpacking it from Debian's prometheus package into $DIR/promtool"
  local tmp="$DIR/promtool.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp" "$DIR/promtool"
  { (cd "$tmp" && apt-get download prometheus) &&
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool &&
    "$tmp/usr/bin/promtool" --version; } >"$LOGS/promtool-install.log" 2>&1 ||
    { tail -n 20 "$LOGS/promtool-install.log" >&2; rm -rf "$tmp"; die "promtool: install failed"; }
  mv -f "$tmp/usr/bin/promtool" "$PROMTOOL_BIN"
  rm -rf "$tmp"
}

# --------------------------------------------------------------------------- chromium
# Debian's chromium runs the HTML report in a real browser, headless and offline
# (internal/report/htmlreport/chromium_integration_test.go, scripts/report-screenshot.sh,
# which find it through RATERD_TEST_CHROMIUM). apt_install returns at once where it is
# installed.
chromium_install() { apt_install chromium; }

# chromium_path prints the browser's path: Debian's /usr/bin/chromium, or where PATH finds
# a chromium (chromium-browser on some derivatives).
chromium_path() {
  local c
  for c in chromium chromium-browser; do
    command -v "$c" 2>/dev/null && return 0
  done
  echo /usr/bin/chromium
}

# --------------------------------------------------------------------------- KEDA
# deploy/kubernetes/keda-scaledobject.yaml is checked offline against KEDA's own sources
# (deploy/kubernetes/manifests_test.go, through RATERD_TEST_KEDA): the ScaledObject CRD's
# schema, and the trigger metadata its kafka scaler reads (the `keda:"name=…"` tags of
# pkg/scalers/kafka_scaler.go). Both come from KEDA's Go module on the module proxy, pinned by
# its checksum. The module requires a newer Go than ours, so `go mod download` fetches and
# verifies its zip and then refuses to unpack it; the two files are read from the verified zip.
KEDA_VERSION=v2.21.1
KEDA_MODULE_SUM=h1:AoPpnkEeuSYUb1dAqQO5Pud9BpCPiOqurnKtnKobl6Q=
KEDA_DIR="$DIR/keda-$KEDA_VERSION"
keda_install() {
  [ -s "$KEDA_DIR/kafka_scaler.go" ] && [ -s "$KEDA_DIR/keda.sh_scaledobjects.yaml" ] && return 0
  log "keda: fetching github.com/kedacore/keda/v2@$KEDA_VERSION from the Go module proxy (its CRD and kafka scaler)"
  local tmp json zip sum f
  tmp=$(mktemp -d)
  json=$(cd "$tmp" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" 2>&1 || true)
  rm -rf "$tmp"
  zip=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",*$/\1/p')
  sum=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p')
  [ -n "$zip" ] && [ -s "$zip" ] || { printf '%s\n' "$json" >&2; die "keda: module download failed"; }
  # The Go command checked the zip against sum.golang.org before writing its .ziphash.
  [ "$sum" = "$KEDA_MODULE_SUM" ] && [ "$(cat "${zip%.zip}.ziphash" 2>/dev/null)" = "$KEDA_MODULE_SUM" ] ||
    die "keda: module checksum $sum, want $KEDA_MODULE_SUM"
  mkdir -p "$KEDA_DIR"
  for f in config/crd/bases/keda.sh_scaledobjects.yaml pkg/scalers/kafka_scaler.go; do
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$zip" "github.com/kedacore/keda/v2@$KEDA_VERSION/$f" >"$KEDA_DIR/${f##*/}.tmp" ||
      die "keda: no $f in $zip"
    mv -f "$KEDA_DIR/${f##*/}.tmp" "$KEDA_DIR/${f##*/}"
  done
}

cmd_up() {
  local t0=$SECONDS
  # llama.cpp's build is the long pole (CPU-bound, about 15 minutes the first time): it runs
  # beside the other installs, which mostly wait on downloads.
  # It must not hold the up/down lock (fd 9): if another install fails and this script
  # exits, the build goes on alone, and the next `up` waits for it (llama_build's lock).
  local llama_pid
  mkdir -p "$LLAMA_DIR"; llama_build_tools
  llama_install 9>&- >"$LOGS/llama-install.log" 2>&1 & llama_pid=$!
  kafka_install; redis_install; ch_install; chdb_install; otelcol_install; genai_install; promtool_install
  chromium_install; keda_install; chcluster_install
  local waited=0
  while kill -0 "$llama_pid" 2>/dev/null; do
    sleep 2; waited=$((waited + 2))
    [ $((waited % 60)) -eq 0 ] && log "llama.cpp: $(tail -n 1 "$LOGS/llama-install.log" 2>/dev/null)"
  done
  wait "$llama_pid" || { tail -n 30 "$LOGS/llama-install.log" >&2; die "llama.cpp: install failed (log: $LOGS/llama-install.log)"; }
  redis_start; ch_start; kafka_start; llama_start
  redis_wait; ch_wait; kafka_wait; llama_wait
  redis_topologies_up
  # The ClickHouse cluster (ZooKeeper and four servers; about 2 s and 400 MB).
  chcluster_start; chcluster_wait
  # After Kafka: its Kafka exporters connect at start.
  otelcol_start; otelcol_wait
  log "services: up in $((SECONDS - t0))s (state in $DIR)"
}

cmd_down() {
  stop_one otelcol; stop_one kafka; stop_one clickhouse; stop_one redis; redis_topologies_down; stop_one llama3; stop_one llama-mistral
  cmd_down_cluster
}

cmd_status() {
  local rc=0
  if pid_alive kafka "${PATTERN[kafka]}" && port_open 9092; then
    echo "kafka:      up   $KAFKA_ADDR ($KAFKA_VERSION, pid $(cat "$RUN/kafka.pid"))"
  else echo "kafka:      down"; rc=1; fi
  if pid_alive redis "${PATTERN[redis]}" && redis_ready 2>/dev/null; then
    echo "redis:      up   127.0.0.1:$REDIS_PORT ($(redis-cli -p "$REDIS_PORT" info server | sed -n 's/^redis_version:\(.*\)\r$/\1/p'), pid $(cat "$RUN/redis.pid"))"
  else echo "redis:      down"; rc=1; fi
  if pid_alive clickhouse "${PATTERN[clickhouse]}" && ch_ready >/dev/null 2>&1; then
    echo "clickhouse: up   127.0.0.1:$CH_TCP_PORT ($(clickhouse-client --port "$CH_TCP_PORT" --query 'SELECT version()'), pid $(cat "$RUN/clickhouse.pid"))"
  else echo "clickhouse: down"; rc=1; fi
  if pid_alive otelcol "${PATTERN[otelcol]}" && otelcol_ready 2>/dev/null; then
    echo "otelcol:    up   127.0.0.1:$OTELCOL_GRPC_PORT (OTLP gRPC; collector $OTELCOL_BUILDER_VERSION, pid $(cat "$RUN/otelcol.pid"))"
  else echo "otelcol:    down"; rc=1; fi
  llama_status || rc=1
  redis_topologies_status || rc=1
  chcluster_status || rc=1
  return $rc
}

cmd_env() {
  echo "export RATERD_TEST_KAFKA=$KAFKA_ADDR"
  echo "export RATERD_TEST_REDIS=127.0.0.1:$REDIS_PORT"
  echo "export RATERD_TEST_CLICKHOUSE=127.0.0.1:$CH_TCP_PORT"
  # TLS and password login: the raterd user of deploy/clickhouse/users.xml.
  echo "export RATERD_TEST_CLICKHOUSE_TLS=127.0.0.1:$CH_TLS_PORT"
  echo "export RATERD_TEST_CLICKHOUSE_CA=$DIR/clickhouse/etc/ca.crt"
  echo "export RATERD_TEST_CLICKHOUSE_USER=raterd"
  echo "export RATERD_TEST_CLICKHOUSE_PASSWORD=raterd-dev-password"
  # Least privilege (users.xml): the migration user, and the writer raterd run uses, which
  # may not change the schema; both only on the database raterd_least_privilege (and raterd).
  echo "export RATERD_TEST_CLICKHOUSE_MIGRATOR_USER=raterd_migrator"
  echo "export RATERD_TEST_CLICKHOUSE_MIGRATOR_PASSWORD=raterd-dev-migrator-password"
  echo "export RATERD_TEST_CLICKHOUSE_WRITER_USER=raterd_writer"
  echo "export RATERD_TEST_CLICKHOUSE_WRITER_PASSWORD=raterd-dev-writer-password"
  echo "export RATERD_TEST_CHDB_PYTHON=$CHDB_VENV/bin/python"
  # The fault-injection suite (faults/) runs private Kafka brokers from these jars.
  echo "export RATERD_TEST_KAFKA_LIBS=$KAFKA_LIBS"
  # Kafka's SASL_SSL (SCRAM) and mutual-TLS listeners: the CA that signed the broker, the
  # client certificate for mTLS, the SCRAM user.
  echo "export RATERD_TEST_KAFKA_SASL_SSL=$KAFKA_SASL_SSL_ADDR"
  echo "export RATERD_TEST_KAFKA_MTLS=$KAFKA_MTLS_ADDR"
  echo "export RATERD_TEST_KAFKA_CA=$KAFKA_TLS/ca.crt"
  echo "export RATERD_TEST_KAFKA_CLIENT_CERT=$KAFKA_TLS/client.crt"
  echo "export RATERD_TEST_KAFKA_CLIENT_KEY=$KAFKA_TLS/client.key"
  echo "export RATERD_TEST_KAFKA_SCRAM_USER=$KAFKA_SCRAM_USER"
  echo "export RATERD_TEST_KAFKA_SCRAM_PASSWORD=$KAFKA_SCRAM_PASSWORD"
  # The OpenTelemetry Collector: its OTLP gRPC endpoint and the file it writes what it got to.
  echo "export RATERD_TEST_OTELCOL=127.0.0.1:$OTELCOL_GRPC_PORT"
  echo "export RATERD_TEST_OTELCOL_FILE=$OTELCOL_FILE"
  # promtool, for the Prometheus rule checks (promtool_install).
  echo "export RATERD_TEST_PROMTOOL=$PROMTOOL_BIN"
  # Headless Chromium, for the HTML report's browser test (chromium_install).
  echo "export RATERD_TEST_CHROMIUM=$(chromium_path)"
  # KEDA's ScaledObject CRD and kafka scaler source, for the offline check of
  # deploy/kubernetes/keda-scaledobject.yaml (keda_install).
  echo "export RATERD_TEST_KEDA=$KEDA_DIR"
  # llama.cpp's server (scripts/services-llama.sh): OpenAI-compatible base URLs, the chat
  # templates, and the Python that renders them with jinja2.
  llama_env
  # Redis Cluster and Sentinel (scripts/services-redis.sh).
  redis_topologies_env
  # The ClickHouse cluster of `up cluster` (scripts/services-chcluster.sh).
  chcluster_env
}

# kafka-tool CLASS ARGS...: run a Kafka CLI tool with the cached jars, e.g.
#   scripts/services.sh kafka-tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
cmd_kafka_tool() {
  [ -f "$KAFKA_LIBS/.complete" ] || die "kafka jars not fetched yet; run: $0 up"
  mkdir -p "$LOGS/kafka-tools"
  exec java -Xmx256m -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.xml" \
    -Dkafka.logs.dir="$LOGS/kafka-tools" -cp "$KAFKA_LIBS/*" "$@"
}

usage() { echo "usage: $0 up|down|status|env  (or: $0 up|down cluster; $0 kafka-tool CLASS ARGS...)" >&2; exit 2; }

[ $# -ge 1 ] || usage
if [ "$1" = kafka-tool ]; then shift; [ $# -ge 1 ] || usage; cmd_kafka_tool "$@"; fi
# `up cluster` / `down cluster`: the ClickHouse cluster alone (scripts/services-chcluster.sh;
# `up` and `down` start and stop it with the rest).
if [ $# -eq 2 ] && [ "$2" = cluster ]; then
  case "$1" in up|down) ;; *) usage ;; esac
  mkdir -p "$RUN" "$LOGS"
  exec 9>"$DIR/.lock"
  flock -w 300 9 || die "another services.sh up/down holds $DIR/.lock"
  "cmd_$1_cluster"; exit 0
fi
[ $# -eq 1 ] || usage
case "$1" in
  up|down)
    mkdir -p "$RUN" "$LOGS"
    # One up/down at a time: two CI jobs or terminals must not race on the same state dir.
    # The daemons must not inherit fd 9 (they would hold the lock forever): see 9>&- above.
    exec 9>"$DIR/.lock"
    flock -w 300 9 || die "another services.sh up/down holds $DIR/.lock"
    "cmd_$1" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
