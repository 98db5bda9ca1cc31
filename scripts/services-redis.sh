# shellcheck shell=bash
# The Redis topologies of scripts/services.sh (sourced by it; not run on its own), from
# Debian's redis-server like the single Redis on 6379 (redis_install):
#
#   Redis Cluster   127.0.0.1:7001-7006, cluster bus on port + 10000 (17001-17006);
#                   3 masters and 3 replicas, made by redis-cli --cluster create with
#                   --cluster-replicas 1 (it picks which replica follows which master: the
#                   tests read CLUSTER NODES rather than assume it)
#   Sentinel        master 127.0.0.1:6380, its replica 6381, Sentinels 26379-26381
#                   monitoring it as raterd-cache (quorum 2, down-after 1000 ms)
#
# No persistence; the data directories (nodes.conf, the Sentinels' rewritten configs) are
# wiped at each start, so tests start clean. The fault tests (scorer/cache) start private
# copies on free ports and kill those, never these.

REDIS_CLUSTER_PORTS=(7001 7002 7003 7004 7005 7006)
REDIS_CLUSTER_NODE_TIMEOUT=2000
REDIS_SENTINEL_MASTER_PORT=6380
REDIS_SENTINEL_REPLICA_PORT=6381
REDIS_SENTINEL_PORTS=(26379 26380 26381)
REDIS_SENTINEL_NAME=raterd-cache
REDIS_TOPO_TIMEOUT=60
# redis-server rewrites its process title to "redis-server 127.0.0.1:PORT [mode]".
for _p in "${REDIS_CLUSTER_PORTS[@]}"; do PATTERN["redis-$_p"]="redis-server.*:$_p"; done
PATTERN["redis-$REDIS_SENTINEL_MASTER_PORT"]="redis-server.*:$REDIS_SENTINEL_MASTER_PORT"
PATTERN["redis-$REDIS_SENTINEL_REPLICA_PORT"]="redis-server.*:$REDIS_SENTINEL_REPLICA_PORT"
for _p in "${REDIS_SENTINEL_PORTS[@]}"; do PATTERN["sentinel-$_p"]="redis-server.*:$_p"; done
unset _p

# rcli PORT ARGS...: redis-cli against 127.0.0.1:PORT, raw output.
rcli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# redis_daemon NAME PORT ARGS...: a daemonized redis-server named NAME (its pidfile
# $RUN/NAME.pid, its log $LOGS/NAME.log); ARGS are its settings or, first, a config file.
redis_daemon() {
  local name=$1 port=$2; shift 2
  port_free "$name" "$port"
  rm -f "$RUN/$name.pid"
  redis-server "$@" --daemonize yes --pidfile "$RUN/$name.pid" --logfile "$LOGS/$name.log" >/dev/null 9>&- ||
    die "$name: redis-server did not start (see $LOGS/$name.log)"
  local _
  for _ in $(seq 50); do [ -s "$RUN/$name.pid" ] && return 0; sleep 0.1; done
  die "$name: no pidfile after 5s (see $LOGS/$name.log)"
}

# --------------------------------------------------------------------- Redis Cluster
redis_cluster_start() {
  local p all=1
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do pid_alive "redis-$p" "${PATTERN[redis-$p]}" || all=; done
  if [ -n "$all" ]; then log "redis-cluster: already running"; return 0; fi
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do stop_one "redis-$p" 2>/dev/null; done
  rm -rf "$DIR/redis-cluster"
  log "redis-cluster: starting 6 nodes on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[5]}"
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    mkdir -p "$DIR/redis-cluster/$p"
    port_free "redis-$p" $((p + 10000))
    redis_daemon "redis-$p" "$p" --bind 127.0.0.1 --port "$p" --dir "$DIR/redis-cluster/$p" \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --cluster-node-timeout "$REDIS_CLUSTER_NODE_TIMEOUT" --save '' --appendonly no
  done
}

# redis_cluster_roles PORT: "MASTERS REPLICAS" as node PORT sees them (CLUSTER NODES'
# flags field), failed nodes left out.
redis_cluster_roles() {
  rcli "$1" cluster nodes | awk '$3 !~ /fail/ { if ($3 ~ /master/) m++; else if ($3 ~ /slave/) r++ } END { print m+0, r+0 }'
}

# redis_cluster_ready: every node answers with cluster_state:ok and all 16384 slots, and
# the first sees 3 masters and 3 replicas.
redis_cluster_ready() {
  local p info
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    info="$(rcli "$p" cluster info 2>/dev/null)" || return 1
    grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_slots_assigned:16384' <<<"$info" || return 1
  done
  [ "$(redis_cluster_roles "${REDIS_CLUSTER_PORTS[0]}")" = "3 3" ]
}

redis_cluster_wait() {
  local p first=${REDIS_CLUSTER_PORTS[0]} addrs=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    wait_for "redis-$p" "$REDIS_TOPO_TIMEOUT" "$LOGS/redis-$p.log" rcli "$p" ping
    addrs+=("127.0.0.1:$p")
  done
  # A node that owns slots already belongs to a cluster: this is not a fresh start.
  if [ "$(rcli "$first" cluster info | sed -n 's/^cluster_slots_assigned:\([0-9]*\).*/\1/p')" = 0 ]; then
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      >"$LOGS/redis-cluster-create.log" 2>&1 ||
      { tail -n 20 "$LOGS/redis-cluster-create.log" >&2; die "redis-cluster: redis-cli --cluster create failed"; }
  fi
  wait_for "redis-$first" "$REDIS_TOPO_TIMEOUT" "$LOGS/redis-$first.log" redis_cluster_ready
  log "redis-cluster: up on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[5]} (masters and replicas: $(redis_cluster_roles "$first"))"
}

redis_cluster_stop() {
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do stop_one "redis-$p"; done
}

redis_cluster_status() {
  local p rc=0 pids=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    if pid_alive "redis-$p" "${PATTERN[redis-$p]}"; then pids+=("$(cat "$RUN/redis-$p.pid")"); else rc=1; fi
  done
  if [ $rc -eq 0 ] && redis_cluster_ready 2>/dev/null; then
    printf '%-12s up   127.0.0.1:%s-%s (cluster_state:ok, pids %s)\n' "redis-cluster:" \
      "${REDIS_CLUSTER_PORTS[0]}" "${REDIS_CLUSTER_PORTS[5]}" "${pids[*]}"
  else printf '%-12s down\n' "redis-cluster:"; rc=1; fi
  return $rc
}

# -------------------------------------------------------------------------- Sentinel
redis_sentinel_names() {
  local p
  echo "redis-$REDIS_SENTINEL_MASTER_PORT redis-$REDIS_SENTINEL_REPLICA_PORT"
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do echo "sentinel-$p"; done
}

redis_sentinel_start() {
  local p n all=1 d="$DIR/redis-sentinel"
  for n in $(redis_sentinel_names); do pid_alive "$n" "${PATTERN[$n]}" || all=; done
  if [ -n "$all" ]; then log "redis-sentinel: already running"; return 0; fi
  for n in $(redis_sentinel_names); do stop_one "$n" 2>/dev/null; done
  rm -rf "$d"; mkdir -p "$d/data-$REDIS_SENTINEL_MASTER_PORT" "$d/data-$REDIS_SENTINEL_REPLICA_PORT"
  log "redis-sentinel: starting master 127.0.0.1:$REDIS_SENTINEL_MASTER_PORT, replica :$REDIS_SENTINEL_REPLICA_PORT, Sentinels :${REDIS_SENTINEL_PORTS[0]}-${REDIS_SENTINEL_PORTS[2]}"
  redis_daemon "redis-$REDIS_SENTINEL_MASTER_PORT" "$REDIS_SENTINEL_MASTER_PORT" --bind 127.0.0.1 \
    --port "$REDIS_SENTINEL_MASTER_PORT" --dir "$d/data-$REDIS_SENTINEL_MASTER_PORT" --save '' --appendonly no
  redis_daemon "redis-$REDIS_SENTINEL_REPLICA_PORT" "$REDIS_SENTINEL_REPLICA_PORT" --bind 127.0.0.1 \
    --port "$REDIS_SENTINEL_REPLICA_PORT" --dir "$d/data-$REDIS_SENTINEL_REPLICA_PORT" --save '' --appendonly no \
    --replicaof 127.0.0.1 "$REDIS_SENTINEL_MASTER_PORT"
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do
    # Sentinel rewrites its config file (what it learns of the set): one writable file each.
    cat >"$d/sentinel-$p.conf" <<EOF
# Generated by scripts/services.sh; Sentinel rewrites it; wiped on the next 'up'.
port $p
bind 127.0.0.1
dir $d
sentinel monitor $REDIS_SENTINEL_NAME 127.0.0.1 $REDIS_SENTINEL_MASTER_PORT 2
sentinel down-after-milliseconds $REDIS_SENTINEL_NAME 1000
sentinel failover-timeout $REDIS_SENTINEL_NAME 5000
sentinel parallel-syncs $REDIS_SENTINEL_NAME 1
EOF
    redis_daemon "sentinel-$p" "$p" "$d/sentinel-$p.conf" --sentinel
  done
}

# redis_sentinel_ready: the replica is in sync, and the first Sentinel names the master and
# sees a quorum of Sentinels able to fail it over.
redis_sentinel_ready() {
  rcli "$REDIS_SENTINEL_REPLICA_PORT" info replication | grep -q '^master_link_status:up' &&
    rcli "${REDIS_SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$REDIS_SENTINEL_NAME" | grep -q . &&
    rcli "${REDIS_SENTINEL_PORTS[0]}" sentinel ckquorum "$REDIS_SENTINEL_NAME" | grep -q '^OK'
}

redis_sentinel_wait() {
  local n
  for n in $(redis_sentinel_names); do
    wait_for "$n" "$REDIS_TOPO_TIMEOUT" "$LOGS/$n.log" rcli "${n##*-}" ping
  done
  # The Sentinels find each other through the master's hello channel (every 2s).
  wait_for "sentinel-${REDIS_SENTINEL_PORTS[0]}" "$REDIS_TOPO_TIMEOUT" "$LOGS/sentinel-${REDIS_SENTINEL_PORTS[0]}.log" redis_sentinel_ready
  log "redis-sentinel: up, $REDIS_SENTINEL_NAME at $(rcli "${REDIS_SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$REDIS_SENTINEL_NAME" | paste -sd:), Sentinels on 127.0.0.1:${REDIS_SENTINEL_PORTS[0]}-${REDIS_SENTINEL_PORTS[2]}"
}

redis_sentinel_stop() {
  local n
  # Sentinels first, so that they do not start a failover of the master stopping next.
  for n in $(redis_sentinel_names | tac); do stop_one "$n"; done
}

redis_sentinel_status() {
  local n rc=0 pids=()
  for n in $(redis_sentinel_names); do
    if pid_alive "$n" "${PATTERN[$n]}"; then pids+=("$(cat "$RUN/$n.pid")"); else rc=1; fi
  done
  if [ $rc -eq 0 ] && redis_sentinel_ready 2>/dev/null; then
    printf '%-12s up   %s at %s, Sentinels 127.0.0.1:%s-%s (pids %s)\n' "redis-sentinel:" "$REDIS_SENTINEL_NAME" \
      "$(rcli "${REDIS_SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$REDIS_SENTINEL_NAME" | paste -sd:)" \
      "${REDIS_SENTINEL_PORTS[0]}" "${REDIS_SENTINEL_PORTS[2]}" "${pids[*]}"
  else printf '%-12s down\n' "redis-sentinel:"; rc=1; fi
  return $rc
}

# ----------------------------------------------------------- both, for services.sh cmd_*
# redis_topologies_up starts the Cluster and the Sentinel set and waits until both are
# ready (redis_install has installed redis-server and redis-cli).
redis_topologies_up() {
  redis_cluster_start; redis_sentinel_start
  redis_cluster_wait; redis_sentinel_wait
}

redis_topologies_down() { redis_sentinel_stop; redis_cluster_stop; }

redis_topologies_status() {
  local rc=0
  redis_cluster_status || rc=1
  redis_sentinel_status || rc=1
  return $rc
}

redis_topologies_env() {
  local seeds=() p
  # The masters as redis-cli --cluster create made them; a client needs only one (seed).
  for p in "${REDIS_CLUSTER_PORTS[@]:0:3}"; do seeds+=("127.0.0.1:$p"); done
  echo "export RATERD_TEST_REDIS_CLUSTER=$(IFS=,; echo "${seeds[*]}")"
  seeds=()
  for p in "${REDIS_SENTINEL_PORTS[@]}"; do seeds+=("127.0.0.1:$p"); done
  echo "export RATERD_TEST_REDIS_SENTINEL=$(IFS=,; echo "${seeds[*]}")"
  echo "export RATERD_TEST_REDIS_SENTINEL_MASTER=$REDIS_SENTINEL_NAME"
}
