#!/usr/bin/env bash
# Make Redis, RabbitMQ and PostgreSQL available for Stampede.
#
#   scripts/services.sh [up [--redis-cluster] [--rabbitmq-cluster]|kill-rabbitmq-node <port>|browser|status|stop-rabbitmq|start-rabbitmq|kill-redis|start-redis|stop-postgres|start-postgres]
#                                                                             (default: up)
#
# up: for each service, in order of preference:
#   a) reuse whatever already answers at the configured URL;
#   b) else, if a Docker engine answers, `docker compose up -d --wait <missing services>`
#      (docker-compose.yml at the repo top);
#   c) else start local servers, apt-installing the Debian packages first when missing
#      and running as root (redis-server, rabbitmq-server, postgresql). No systemd needed.
# Idempotent: a second run reuses everything and takes a couple of seconds.
#
# up --redis-cluster (or STAMPEDE_REDIS_CLUSTER_NODES set): also a Redis Cluster of three
#   masters on the seed nodes' loopback ports (default 127.0.0.1:7101,7102,7103), each with
#   AOF and noeviction like the single node, data under $STAMPEDE_DATA_DIR/redis-cluster/<port>.
#   Reuses nodes that answer and a cluster that is already formed; forms it (redis-cli
#   --cluster create, no replicas) only from empty nodes. Needs redis-server and redis-cli.
#
# up --rabbitmq-cluster (or STAMPEDE_RABBITMQ_CLUSTER_PORTS set): also a RabbitMQ cluster of
#   three local nodes, stampede-mq-<port>@<host>, AMQP on 127.0.0.1:<port> (default 5701,5702,
#   5703), data under $STAMPEDE_DATA_DIR/rabbitmq-cluster/<port>; the later nodes join the
#   first; the AMQP user is created cluster-wide. Reuses running nodes and a formed cluster;
#   prints the STAMPEDE_AMQP_URL list that connects to it. Needs root (nodes run as rabbitmq).
# kill-rabbitmq-node <port>: kill -9 of that cluster node; `up --rabbitmq-cluster` starts it
#   again (it rejoins from its own data).
#
# browser:         makes the headless Chromium the browser tests drive available
#                  (`npm test` runs it after `up`): reuses $STAMPEDE_CHROMIUM or
#                  /usr/bin/chromium, else apt-installs Debian's chromium (as root).
# status:          says which services answer (exit 1 if any does not), and which Chromium.
# stop-rabbitmq:   stops the broker application (local: rabbitmqctl stop_app; docker: compose stop).
# start-rabbitmq:  starts it again and waits until AMQP answers.
# kill-redis:      kill -9 of the redis-server that answers (local: its process_id; docker: compose
#                  kill -s SIGKILL), waits until it no longer answers; nothing to do when none answers.
# start-redis:     starts it again (local: same data directory, so it replays its AOF; docker: compose
#                  start) and waits until it answers and has loaded its data; nothing to do when it answers.
# stop-postgres:   stops the server (local: pg_ctlcluster stop -m fast; docker: compose stop), waits
#                  until it no longer answers; nothing to do when it does not answer.
# start-postgres:  starts it again and waits until both databases answer; nothing to do when they do.
#                  (The fault tests, test/faults/, use these four; they stop the service for everyone.)
#
# Configuration (the app reads the same variables):
#   STAMPEDE_REDIS_URL          redis://127.0.0.1:6379
#   STAMPEDE_AMQP_URL           amqp://stampede:stampede@127.0.0.1:5672
#   STAMPEDE_DATABASE_URL       postgres://stampede:stampede@127.0.0.1:5432/stampede
#   STAMPEDE_TEST_DATABASE_URL  postgres://stampede:stampede@127.0.0.1:5432/stampede_test
#   STAMPEDE_DATA_DIR           /var/lib/stampede   (Redis data + logs, apt log)
#   STAMPEDE_SERVICES_TIMEOUT   60                  (seconds to wait for each service)
#   STAMPEDE_REDIS_APPENDFSYNC  everysec            (appendfsync of a Redis this script starts:
#                                                    everysec or always, the durable mode; see
#                                                    Durability in the README)
#   STAMPEDE_CHROMIUM           /usr/bin/chromium   (the browser tests' Chromium or Chrome)
#   STAMPEDE_REDIS_CLUSTER_NODES  (unset)           (the cluster's seed nodes, host:port,...)
#   STAMPEDE_RABBITMQ_CLUSTER_PORTS (unset)         (the RabbitMQ cluster's AMQP ports, default 5701,5702,5703)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-3}

REDIS_URL=${STAMPEDE_REDIS_URL:-redis://127.0.0.1:6379}
AMQP_URL=${STAMPEDE_AMQP_URL:-amqp://stampede:stampede@127.0.0.1:5672}
DB_URL=${STAMPEDE_DATABASE_URL:-postgres://stampede:stampede@127.0.0.1:5432/stampede}
TEST_DB_URL=${STAMPEDE_TEST_DATABASE_URL:-postgres://stampede:stampede@127.0.0.1:5432/stampede_test}
TIMEOUT=${STAMPEDE_SERVICES_TIMEOUT:-60}
APPENDFSYNC=${STAMPEDE_REDIS_APPENDFSYNC:-everysec}
DATA_DIR=${STAMPEDE_DATA_DIR:-/var/lib/stampede}
CHROMIUM=${STAMPEDE_CHROMIUM:-/usr/bin/chromium}

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE=$ROOT_DIR/docker-compose.yml

log() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ $(id -u) == 0 ]]; }

# ---------------------------------------------------------------- URL parsing
urldecode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

# parse_url URL DEFAULT_PORT -> U_USER U_PASS U_HOST U_PORT U_PATH (path without leading /)
parse_url() {
  local url=$1 rest auth
  [[ $url == *://* ]] || die "not a URL: $url"
  rest=${url#*://}
  rest=${rest%%\?*}
  U_PATH=""
  if [[ $rest == */* ]]; then U_PATH=${rest#*/}; rest=${rest%%/*}; fi
  U_USER="" U_PASS=""
  if [[ $rest == *@* ]]; then
    auth=${rest%@*}; rest=${rest##*@}
    U_USER=$(urldecode "${auth%%:*}")
    [[ $auth == *:* ]] && U_PASS=$(urldecode "${auth#*:}")
  fi
  if [[ $rest == \[* ]]; then          # [ipv6]:port
    U_HOST=${rest%%]*}; U_HOST=${U_HOST#[}; rest=${rest#*]}; U_PORT=${rest#:}
  else
    U_HOST=${rest%%:*}; U_PORT=""; [[ $rest == *:* ]] && U_PORT=${rest##*:}
  fi
  [[ -n $U_HOST ]] || U_HOST=127.0.0.1
  [[ -n $U_PORT ]] || U_PORT=$2
  return 0
}

parse_url "$REDIS_URL" 6379
R_HOST=$U_HOST R_PORT=$U_PORT R_USER=$U_USER R_PASS=$U_PASS
parse_url "$AMQP_URL" 5672
A_HOST=$U_HOST A_PORT=$U_PORT A_USER=${U_USER:-guest} A_PASS=${U_PASS:-guest}
A_VHOST=$(urldecode "$U_PATH"); [[ -n $A_VHOST ]] || A_VHOST=/
parse_url "$DB_URL" 5432
P_HOST=$U_HOST P_PORT=$U_PORT P_USER=$U_USER P_PASS=$U_PASS P_DB=$U_PATH
parse_url "$TEST_DB_URL" 5432
T_HOST=$U_HOST T_PORT=$U_PORT T_USER=$U_USER T_PASS=$U_PASS T_DB=$U_PATH
[[ -n $P_USER && -n $P_DB && -n $T_DB ]] || die "database URLs need a user and a database name"
[[ $APPENDFSYNC == everysec || $APPENDFSYNC == always ]] ||
  die "STAMPEDE_REDIS_APPENDFSYNC must be everysec or always, not '$APPENDFSYNC'"
[[ $T_HOST == "$P_HOST" && $T_PORT == "$P_PORT" ]] ||
  warn "STAMPEDE_TEST_DATABASE_URL points at another server than STAMPEDE_DATABASE_URL; only the latter is provisioned"

is_local_host() {
  case $1 in
    127.*|localhost|::1|0.0.0.0|"$(hostname 2>/dev/null)") return 0 ;;
    *) return 1 ;;
  esac
}

# ------------------------------------------------------------------- helpers
# with_timeout SECS FUNC ARGS...: run a self-contained shell function in a child bash under timeout
with_timeout() { local t=$1 f=$2; shift 2; timeout "$t" bash -c "$(declare -f "$f"); $f \"\$@\"" _ "$@"; }

# wait_for NAME LOGHINT CMD... : poll CMD every 0.5 s until it succeeds or TIMEOUT passes.
wait_for() {
  local name=$1 hint=$2; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      die "$name did not answer within ${TIMEOUT}s; see $hint"
    fi
    sleep 0.5
  done
}

# wait_gone NAME CMD... : poll CMD every 0.2 s until it fails (the service no longer answers), or TIMEOUT passes.
wait_gone() {
  local name=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  while "$@"; do
    ((SECONDS < deadline)) || die "$name still answers after ${TIMEOUT}s"
    sleep 0.2
  done
}

ensure_data_dir() {
  if ! mkdir -p "$DATA_DIR" 2>/dev/null || [[ ! -w $DATA_DIR ]]; then
    local alt=${XDG_DATA_HOME:-$HOME/.local/share}/stampede
    warn "$DATA_DIR is not writable; using $alt (set STAMPEDE_DATA_DIR to choose)"
    DATA_DIR=$alt
    mkdir -p "$DATA_DIR"
  fi
}

# --------------------------------------------------------------------- apt
APT_UPDATED=0
POLICY_RC_CREATED=0
cleanup() {
  if ((POLICY_RC_CREATED)); then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# apt_install WHAT PKG... : install Debian packages non-interactively without letting
# their maintainer scripts start the daemons (no systemd here; we start them ourselves).
apt_install() {
  local what=$1; shift
  if ! is_root; then
    die "$what is not installed. Install the Debian package(s): $* (e.g. 'sudo apt-get install $*'), run this script as root, or run the service elsewhere and point the STAMPEDE_*_URL variables at it"
  fi
  have apt-get || die "$what is not installed and apt-get is unavailable; install: $*"
  ensure_data_dir
  local apt_log=$DATA_DIR/apt.log
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, created by stampede scripts/services.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  if ((!APT_UPDATED)); then
    log "apt-get update (log: $apt_log)"
    apt-get update -q </dev/null >>"$apt_log" 2>&1 || { tail -n 20 "$apt_log" >&2; die "apt-get update failed; see $apt_log"; }
    APT_UPDATED=1
  fi
  log "installing $what: apt-get install -y --no-install-recommends $* (log: $apt_log)"
  if ! apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "$@" </dev/null >>"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    die "apt-get install $* failed; see $apt_log"
  fi
  if ((POLICY_RC_CREATED)); then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

# ------------------------------------------------------------------ docker
COMPOSE=()
docker_usable() {
  have docker || return 1
  timeout 10 docker info >/dev/null 2>&1 || return 1
  if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose -f "$COMPOSE_FILE")
  elif have docker-compose; then COMPOSE=(docker-compose -f "$COMPOSE_FILE")
  else warn "a Docker engine answers but neither 'docker compose' nor docker-compose is installed"; return 1
  fi
  [[ -f $COMPOSE_FILE ]] || { warn "$COMPOSE_FILE is missing"; return 1; }
}

compose_env() {
  export STAMPEDE_REDIS_PORT=$R_PORT STAMPEDE_AMQP_PORT=$A_PORT STAMPEDE_PG_PORT=$P_PORT STAMPEDE_REDIS_APPENDFSYNC=$APPENDFSYNC
  export STAMPEDE_AMQP_USER=$A_USER STAMPEDE_AMQP_PASSWORD=$A_PASS
  export STAMPEDE_PG_USER=$P_USER STAMPEDE_PG_PASSWORD=$P_PASS STAMPEDE_PG_DB=$P_DB
}

# docker_has_service NAME: a container of this compose project exists for NAME
docker_has_service() {
  docker_usable || return 1
  compose_env
  [[ -n $("${COMPOSE[@]}" ps -a -q "$1" 2>/dev/null) ]]
}

# =================================================================== Redis
REDIS_LOG="redis log"
# redis_tcp HOST PORT USER PASS ARGS...: minimal RESP client over bash /dev/tcp (no redis-cli)
redis_tcp() {
  local host=$1 port=$2 user=$3 pass=$4; shift 4
  exec 3<>"/dev/tcp/$host/$port" || return 1
  _send() { printf '*%d\r\n' $# >&3; local a; for a in "$@"; do printf '$%d\r\n%s\r\n' "${#a}" "$a" >&3; done; }
  _reply() { # prints a reply (array elements one per line); fails on an error reply
    local line n i
    IFS= read -r -t 4 line <&3 || return 1; line=${line%$'\r'}
    case $line in
      +*|:*) printf '%s\n' "${line:1}" ;;
      -*) return 1 ;;
      '$-1') printf '\n' ;;
      '$'*) IFS= read -r -t 4 line <&3 || return 1; printf '%s\n' "${line%$'\r'}" ;;
      '*'*) n=${line:1}; for ((i = 0; i < n; i++)); do _reply || return 1; done ;;
      *) return 1 ;;
    esac
  }
  if [[ -n $pass ]]; then
    if [[ -n $user ]]; then _send AUTH "$user" "$pass"; else _send AUTH "$pass"; fi
    _reply >/dev/null || return 1
  fi
  _send "$@"; _reply
}
# redis_cmd ARGS...: prints the reply (arrays one element per line), fails on error/no answer
redis_cmd() {
  if have redis-cli; then
    local out envs=()
    [[ -n $R_PASS ]] && envs=("REDISCLI_AUTH=$R_PASS")
    out=$(env "${envs[@]}" timeout 5 redis-cli -h "$R_HOST" -p "$R_PORT" ${R_USER:+--user "$R_USER"} \
      --no-auth-warning --raw "$@" 2>/dev/null) || return 1
    [[ $out != ERR* && $out != NOAUTH* && $out != WRONGPASS* && $out != "Could not connect"* ]] || return 1
    printf '%s\n' "$out"
  else
    with_timeout 5 redis_tcp "$R_HOST" "$R_PORT" "$R_USER" "$R_PASS" "$@" 2>/dev/null
  fi
}
redis_ping() { [[ $(redis_cmd PING 2>/dev/null) == PONG ]]; }
redis_config() { redis_cmd CONFIG GET "$1" | sed -n 2p; }

redis_check_config() { # $1 = die|warn
  local aof policy fsync
  aof=$(redis_config appendonly || true); policy=$(redis_config maxmemory-policy || true)
  fsync=$(redis_config appendfsync || true)
  if [[ $aof == yes && $policy == noeviction ]]; then
    log "redis: verified appendonly=yes appendfsync=$fsync maxmemory-policy=noeviction"
  elif [[ $1 == die ]]; then
    die "redis started but appendonly=$aof maxmemory-policy=$policy (expected yes/noeviction); see $REDIS_LOG"
  else
    warn "redis at $REDIS_URL has appendonly=$aof maxmemory-policy=$policy (Stampede expects yes/noeviction)"
  fi
  if [[ -n $fsync && $fsync != "$APPENDFSYNC" ]]; then
    warn "redis at $REDIS_URL has appendfsync=$fsync, not STAMPEDE_REDIS_APPENDFSYNC=$APPENDFSYNC (a server this script did not start keeps its own; CONFIG SET appendfsync $APPENDFSYNC changes it)"
  fi
}
# true once the server answers and has loaded its AOF (PING answers -LOADING meanwhile)
# (INFO is multi-line: read with redis-cli; without it, PING's -LOADING answer is the signal)
redis_info() { have redis-cli && redis_cmd INFO "$1" | tr -d '\r' | sed -n "s/^$2://p"; }
redis_loaded() { redis_ping && { ! have redis-cli || [[ $(redis_info persistence loading) == 0 ]]; }; }

redis_start_local() {
  is_local_host "$R_HOST" || die "redis does not answer at $REDIS_URL and $R_HOST is not this machine; cannot start it here"
  have redis-server || apt_install redis redis-server
  ensure_data_dir
  local dir=$DATA_DIR/redis
  mkdir -p "$dir"
  REDIS_LOG=$dir/redis.log
  local bind=("$R_HOST")
  [[ $R_HOST == localhost || $R_HOST == 127.0.0.1 ]] && bind=(127.0.0.1 -::1)
  local args=(--port "$R_PORT" --bind "${bind[@]}" --daemonize yes
    --dir "$dir" --logfile "$REDIS_LOG" --pidfile "$dir/redis.pid"
    --appendonly yes --appendfsync "$APPENDFSYNC" --auto-aof-rewrite-min-size 512mb --maxmemory-policy noeviction --save "")
  [[ -n $R_PASS && -z $R_USER ]] && args+=(--requirepass "$R_PASS")
  [[ -n $R_USER ]] && warn "redis URL has a user name; the local server is started with the default user only"
  log "redis: starting local redis-server on port $R_PORT (data $dir, log $REDIS_LOG)"
  redis-server "${args[@]}" </dev/null >>"$REDIS_LOG" 2>&1 || { tail -n 20 "$REDIS_LOG" >&2; die "redis-server failed to start; see $REDIS_LOG"; }
  wait_for redis "$REDIS_LOG" redis_ping
  redis_check_config die
}

# ============================================================ Redis Cluster
CLUSTER_NODES=${STAMPEDE_REDIS_CLUSTER_NODES:-127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103}
# rc_cli HOST:PORT ARGS...: redis-cli against one cluster node (raw output)
rc_cli() { local n=$1; shift; timeout 5 redis-cli -h "${n%:*}" -p "${n##*:}" --no-auth-warning --raw "$@" 2>/dev/null; }
rc_info() { rc_cli "$1" CLUSTER INFO | tr -d '\r' | sed -n "s/^$2://p"; }
rc_ping() { [[ $(rc_cli "$1" PING) == PONG ]]; }
rc_all_ok() { local n; for n in "${RC_NODES[@]}"; do [[ $(rc_info "$n" cluster_state) == ok ]] || return 1; done; }

redis_cluster_up() {
  have redis-server && have redis-cli || die "redis cluster: redis-server and redis-cli are needed (Debian package redis-server)"
  local n dir started=0 empty=0 formed=0
  IFS=, read -r -a RC_NODES <<<"$CLUSTER_NODES"
  ((${#RC_NODES[@]} >= 3)) || die "redis cluster: STAMPEDE_REDIS_CLUSTER_NODES needs at least three host:port nodes (got $CLUSTER_NODES)"
  ensure_data_dir
  for n in "${RC_NODES[@]}"; do
    [[ $n == *:* ]] || die "redis cluster: $n is not host:port"
    if rc_ping "$n"; then
      [[ $(rc_cli "$n" CONFIG GET cluster-enabled | sed -n 2p) == yes ]] || die "redis cluster: $n answers but is not a cluster node (cluster-enabled no)"
      log "redis cluster: reusing node $n"
    else
      is_local_host "${n%:*}" || die "redis cluster: $n does not answer and is not this machine; cannot start it here"
      dir=$DATA_DIR/redis-cluster/${n##*:}
      mkdir -p "$dir"
      log "redis cluster: starting node $n (data $dir, log $dir/redis.log)"
      redis-server --port "${n##*:}" --bind "${n%:*}" --daemonize yes --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
        --appendonly yes --appendfsync everysec --auto-aof-rewrite-min-size 512mb --maxmemory-policy noeviction --save "" \
        </dev/null >>"$dir/redis.log" 2>&1 || { tail -n 20 "$dir/redis.log" >&2; die "redis cluster: node $n failed to start; see $dir/redis.log"; }
      wait_for "redis cluster node $n" "$dir/redis.log" rc_ping "$n"
      started=$((started + 1))
    fi
    local aof policy
    aof=$(rc_cli "$n" CONFIG GET appendonly | sed -n 2p); policy=$(rc_cli "$n" CONFIG GET maxmemory-policy | sed -n 2p)
    [[ $aof == yes && $policy == noeviction ]] || warn "redis cluster: $n has appendonly=$aof maxmemory-policy=$policy (Stampede expects yes/noeviction)"
    if [[ $(rc_info "$n" cluster_known_nodes) == 1 && $(rc_info "$n" cluster_slots_assigned) == 0 ]]; then empty=$((empty + 1)); fi
    [[ $(rc_info "$n" cluster_state) == ok ]] && formed=$((formed + 1))
  done
  if ((formed == ${#RC_NODES[@]})); then
    log "redis cluster: reusing the formed cluster ($(rc_info "${RC_NODES[0]}" cluster_size) masters, all slots assigned)"
  elif ((empty == ${#RC_NODES[@]})); then
    log "redis cluster: forming a cluster of ${#RC_NODES[@]} masters: redis-cli --cluster create ${RC_NODES[*]} --cluster-replicas 0"
    timeout "$TIMEOUT" redis-cli --cluster create "${RC_NODES[@]}" --cluster-replicas 0 --cluster-yes >"$DATA_DIR/redis-cluster/create.log" 2>&1 ||
      { tail -n 20 "$DATA_DIR/redis-cluster/create.log" >&2; die "redis cluster: redis-cli --cluster create failed; see $DATA_DIR/redis-cluster/create.log"; }
  else
    log "redis cluster: nodes know each other but the cluster is not ok yet; waiting for it"
  fi
  wait_for "redis cluster (cluster_state:ok on every node)" "$DATA_DIR/redis-cluster/<port>/redis.log" rc_all_ok
  log "summary: redis cluster $(printf '%-7s' "$( ((started)) && echo started || echo reused)") ${RC_NODES[*]} (nodes started: $started)"
}

# ================================================================ RabbitMQ
RABBIT_LOG="/var/log/rabbitmq/"
# AMQP 0-9-1 handshake: send the protocol header, expect a connection.start frame (type 1).
amqp_probe() {
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'AMQP\x00\x00\x09\x01' >&3
  [[ $(head -c 1 <&3 | od -An -tu1 | tr -d ' ') == 1 ]]
}
amqp_answers() { with_timeout 3 amqp_probe "$A_HOST" "$A_PORT" 2>/dev/null; }

# true when a RabbitMQ node of this machine is running (the VM, not necessarily the app)
# (epmd answers in milliseconds; rabbitmqctl ping needs an Erlang VM boot, ~0.5 s)
rabbit_local_node() {
  have rabbitmqctl || return 1
  if have epmd; then
    epmd -names 2>/dev/null | grep -q "^name ${RABBITMQ_NODENAME:-rabbit} at port"
  else
    timeout 15 rabbitmqctl -q ping >/dev/null 2>&1
  fi
}

rabbit_env() {
  [[ $A_PORT != 5672 ]] && export RABBITMQ_NODE_PORT=$A_PORT
  return 0
}

rabbit_ctl() { timeout "$((TIMEOUT + 10))" rabbitmqctl "$@"; }

# ensure user/password/tags/permissions on the local node
rabbit_ensure_user() {
  local users perms tmp pu pp
  tmp=$(mktemp -d)
  # two independent rabbitmqctl calls in parallel (each one boots an Erlang VM)
  rabbit_ctl -q --no-table-headers list_users >"$tmp/users" 2>&1 & pu=$!
  rabbit_ctl -q --no-table-headers list_permissions -p "$A_VHOST" >"$tmp/perms" 2>/dev/null & pp=$!
  wait "$pp" || true
  perms=$(<"$tmp/perms")
  wait "$pu" || { users=$(<"$tmp/users"); rm -rf "$tmp"; die "rabbitmqctl list_users failed: $users"; }
  users=$(<"$tmp/users")
  rm -rf "$tmp"
  if [[ $A_VHOST != / ]]; then
    rabbit_ctl -q --no-table-headers list_vhosts | grep -qxF -- "$A_VHOST" || {
      log "rabbitmq: creating vhost $A_VHOST"; rabbit_ctl -q add_vhost "$A_VHOST" >/dev/null; }
  fi
  if ! awk -F'\t' -v u="$A_USER" '$1 == u { f = 1 } END { exit !f }' <<<"$users"; then
    log "rabbitmq: creating user $A_USER"
    rabbit_ctl -q add_user "$A_USER" "$A_PASS" >/dev/null
    users=""
  fi
  if ! awk -F'\t' -v u="$A_USER" '$1 == u && $2 ~ /administrator/ { f = 1 } END { exit !f }' <<<"$users"; then
    log "rabbitmq: tagging $A_USER administrator"
    rabbit_ctl -q set_user_tags "$A_USER" administrator >/dev/null
  fi
  if ! awk -F'\t' -v u="$A_USER" '$1 == u && $2 == ".*" && $3 == ".*" && $4 == ".*" { f = 1 } END { exit !f }' <<<"$perms"; then
    log "rabbitmq: granting $A_USER configure/write/read .* on vhost $A_VHOST"
    rabbit_ctl -q set_permissions -p "$A_VHOST" "$A_USER" ".*" ".*" ".*" >/dev/null
  fi
}

rabbit_log_hint() {
  local f
  for f in /var/log/rabbitmq/rabbit@"$(hostname -s 2>/dev/null)".log /var/log/rabbitmq/*.log; do
    [[ -f $f ]] && { RABBIT_LOG="$f (and $DATA_DIR/rabbitmq/startup.log)"; return; }
  done
  RABBIT_LOG="/var/log/rabbitmq/ and $DATA_DIR/rabbitmq/startup.log"
}

rabbit_wait_app() {
  rabbit_log_hint
  local deadline=$((SECONDS + TIMEOUT)) out
  until out=$(timeout 30 rabbitmqctl -q await_startup --timeout 20 2>&1); do
    ((SECONDS < deadline)) || die "rabbitmq did not start within ${TIMEOUT}s ($out); see $RABBIT_LOG"
    sleep 1
  done
  wait_for rabbitmq "$RABBIT_LOG" amqp_answers
}

rabbit_start_local() {
  is_local_host "$A_HOST" || die "rabbitmq does not answer at $AMQP_URL and $A_HOST is not this machine; cannot start it here"
  have rabbitmq-server || apt_install rabbitmq rabbitmq-server
  is_root || die "starting the Debian rabbitmq-server needs root (it runs as the rabbitmq user); run as root or start RabbitMQ yourself"
  ensure_data_dir
  mkdir -p "$DATA_DIR/rabbitmq"
  rabbit_env
  if rabbit_local_node; then
    log "rabbitmq: local node is running with the app stopped; rabbitmqctl start_app"
    rabbit_ctl -q start_app >/dev/null
  else
    if have rabbitmq-plugins; then
      if rabbitmq-plugins --offline -q enable rabbitmq_management >/dev/null 2>&1; then
        log "rabbitmq: rabbitmq_management plugin enabled"
      else
        warn "rabbitmq: could not enable rabbitmq_management (continuing without it)"
      fi
    fi
    log "rabbitmq: starting local rabbitmq-server -detached on port $A_PORT (as user rabbitmq)"
    # the Debian wrapper switches to the rabbitmq user when called as root
    (cd /var/lib/rabbitmq && setsid rabbitmq-server -detached </dev/null >>"$DATA_DIR/rabbitmq/startup.log" 2>&1) ||
      { tail -n 20 "$DATA_DIR/rabbitmq/startup.log" >&2; die "rabbitmq-server failed to start; see $DATA_DIR/rabbitmq/startup.log"; }
  fi
  rabbit_wait_app
  rabbit_ensure_user
}

# ------------------------------------------------------- RabbitMQ cluster
# Three (or more) local nodes, stampede-mq-<port>@<host>, one data directory each under
# $DATA_DIR/rabbitmq-cluster/<port>: AMQP on 127.0.0.1:<port>, Erlang distribution on
# <port>+20000, no plugins. The first port's node is the one the others join.
RMQ_PORTS=()
rmq_node() { printf 'stampede-mq-%s@%s' "$1" "$(hostname -s)"; }
rmq_ctl() { local port=$1; shift; timeout "$((TIMEOUT + 10))" rabbitmqctl -q -n "$(rmq_node "$port")" "$@"; }
rmq_dir() { printf '%s/rabbitmq-cluster/%s' "$DATA_DIR" "$1"; }
rmq_running() { have epmd && epmd -names 2>/dev/null | grep -q "^name stampede-mq-$1 at port"; }
rmq_answers() { with_timeout 3 amqp_probe 127.0.0.1 "$1" 2>/dev/null; }
rmq_urls() { local p out=(); for p in "${RMQ_PORTS[@]}"; do out+=("amqp://$A_USER:$A_PASS@127.0.0.1:$p"); done; (IFS=,; printf '%s' "${out[*]}"); }
rmq_parse_ports() {
  local ports=${STAMPEDE_RABBITMQ_CLUSTER_PORTS:-5701,5702,5703} p
  IFS=, read -r -a RMQ_PORTS <<<"$ports"
  ((${#RMQ_PORTS[@]} >= 3)) || die "rabbitmq cluster: STAMPEDE_RABBITMQ_CLUSTER_PORTS needs at least three ports (got $ports)"
  for p in "${RMQ_PORTS[@]}"; do [[ $p =~ ^[0-9]+$ ]] || die "rabbitmq cluster: $p is not a port"; done
}

rmq_start_node() {
  local port=$1 dir
  dir=$(rmq_dir "$port")
  mkdir -p "$dir/mnesia" "$dir/log"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$port" >"$dir/rabbitmq.conf"
  printf '[].\n' >"$dir/enabled_plugins"
  chown -R rabbitmq:rabbitmq "$dir"
  log "rabbitmq cluster: starting node $(rmq_node "$port") (AMQP 127.0.0.1:$port, data $dir)"
  # +sbwt none: an idle node does not keep its schedulers spinning (two cores here).
  (cd /var/lib/rabbitmq && RABBITMQ_NODENAME=$(rmq_node "$port") RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
    RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/pid \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
    setsid rabbitmq-server -detached </dev/null >>"$dir/startup.log" 2>&1) ||
    { tail -n 20 "$dir/startup.log" >&2; die "rabbitmq cluster: node on port $port failed to start; see $dir/startup.log"; }
}

rmq_await() {
  local port=$1 out deadline=$((SECONDS + TIMEOUT))
  # await_startup fails at once while the new VM has not registered with epmd yet: retry until the deadline
  until out=$(timeout 30 rabbitmqctl -q -n "$(rmq_node "$port")" await_startup --timeout 20 2>&1); do
    ((SECONDS < deadline)) || die "rabbitmq cluster: node $(rmq_node "$port") did not start within ${TIMEOUT}s (${out:0:300}); see $(rmq_dir "$port")/log"
    sleep 1
  done
  wait_for "rabbitmq cluster node $port (AMQP)" "$(rmq_dir "$port")/log" rmq_answers "$port"
}

# the nodes the first node's cluster has as members (disk_nodes), one per line
rmq_members() { rmq_ctl "${RMQ_PORTS[0]}" cluster_status --formatter json | grep -o '"disk_nodes":\[[^]]*\]' | grep -o 'stampede-mq-[^"]*'; }

rabbit_cluster_up() {
  have rabbitmq-server || apt_install rabbitmq rabbitmq-server
  is_root || die "rabbitmq cluster: starting local rabbitmq-server nodes needs root (they run as the rabbitmq user)"
  rmq_parse_ports
  ensure_data_dir
  local p first=${RMQ_PORTS[0]} started=0 joined=0 members
  for p in "${RMQ_PORTS[@]}"; do
    if rmq_running "$p"; then log "rabbitmq cluster: reusing node $(rmq_node "$p")"
    else rmq_start_node "$p"; started=$((started + 1)); fi
  done
  for p in "${RMQ_PORTS[@]}"; do rmq_await "$p"; done
  members=$(rmq_members)
  for p in "${RMQ_PORTS[@]:1}"; do
    grep -qxF "$(rmq_node "$p")" <<<"$members" && continue
    log "rabbitmq cluster: node $(rmq_node "$p") joins $(rmq_node "$first") (stop_app, reset, join_cluster, start_app)"
    { rmq_ctl "$p" stop_app && rmq_ctl "$p" reset && rmq_ctl "$p" join_cluster "$(rmq_node "$first")" && rmq_ctl "$p" start_app; } \
      >>"$(rmq_dir "$p")/join.log" 2>&1 ||
      die "rabbitmq cluster: $(rmq_node "$p") could not join $(rmq_node "$first"); see $(rmq_dir "$p")/join.log and log/"
    joined=$((joined + 1))
  done
  ( export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(rmq_node "$first"); rabbit_ensure_user )
  log "summary: rabbitmq cluster $(printf '%-7s' "$( ((started)) && echo started || echo reused)") ${#RMQ_PORTS[@]} nodes (started $started, joined $joined): STAMPEDE_AMQP_URL=$(rmq_urls)"
}

# kill -9 of one cluster node's Erlang VM (the node is lost, not stopped); waits until its AMQP port is closed
cmd_kill_rabbitmq_node() {
  rmq_parse_ports
  local port=${1:-} pid dir
  [[ " ${RMQ_PORTS[*]} " == *" $port "* ]] || die "usage: $0 kill-rabbitmq-node <port> (one of ${RMQ_PORTS[*]})"
  dir=$(rmq_dir "$port")
  if ! rmq_answers "$port"; then log "rabbitmq cluster: nothing answers on port $port; nothing to kill"; return 0; fi
  pid=$(<"$dir/pid") || die "rabbitmq cluster: no pid file $dir/pid"
  [[ $pid =~ ^[0-9]+$ ]] || die "rabbitmq cluster: $dir/pid holds no process id"
  log "rabbitmq cluster: kill -9 $pid (node $(rmq_node "$port"))"
  kill -9 "$pid"
  wait_gone "rabbitmq cluster node $port" rmq_answers "$port"
  log "rabbitmq cluster: killed node $(rmq_node "$port") (AMQP 127.0.0.1:$port no longer answers)"
}

# ================================================================ Postgres
PG_LOG="/var/log/postgresql/"
PG_CLUSTER=""   # "VERSION NAME" of the local cluster on P_PORT
PG_HOW=local-started
pg_answers() {
  pg_isready -q -d "$DB_URL" >/dev/null 2>&1 &&
    [[ $(psql "$DB_URL" -XAtqc 'select 1' 2>/dev/null) == 1 ]]
}
pg_test_answers() { [[ $(psql "$TEST_DB_URL" -XAtqc 'select 1' 2>/dev/null) == 1 ]]; }

pg_find_cluster() { # sets PG_CLUSTER / PG_LOG / PG_STATUS for the cluster on P_PORT
  PG_CLUSTER="" PG_STATUS=""
  have pg_lsclusters || return 1
  local ver name port status owner dir logf
  while read -r ver name port status owner dir logf; do
    if [[ $port == "$P_PORT" ]]; then
      PG_CLUSTER="$ver $name" PG_STATUS=$status PG_LOG=$logf
      return 0
    fi
  done < <(pg_lsclusters -h 2>/dev/null)
  return 1
}

# can we run SQL as the postgres superuser through the local socket?
pg_superuser_ok() {
  is_root && id postgres >/dev/null 2>&1 && is_local_host "$P_HOST" && pg_find_cluster &&
    [[ $PG_STATUS == online* ]]
}

pg_super_sql() ( cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$P_PORT" -d postgres "$@" )

# pg_provision ALTER(0|1): role(s) + databases, idempotent (ALTER=1 also resets password/flags)
pg_provision() {
  local alter=$1 u p pair db owner
  local -A seen=()
  for pair in "$P_USER:$P_PASS" "$T_USER:$T_PASS"; do
    u=${pair%%:*} p=${pair#*:}
    [[ -n $u && -z ${seen[$u]:-} ]] || continue
    seen[$u]=1
    if [[ -z $(pg_super_sql -At -v u="$u" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'u'") ]]; then
      pg_super_sql -v u="$u" -v p="$p" <<<"SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec" >/dev/null ||
        die "postgres: could not create role $u; see $PG_LOG"
      log "postgres: created role $u (LOGIN CREATEDB)"
    elif [[ $alter == 1 ]]; then
      pg_super_sql -v u="$u" -v p="$p" <<<"SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec" >/dev/null ||
        die "postgres: could not alter role $u; see $PG_LOG"
    fi
  done
  for pair in "$P_DB:$P_USER" "$T_DB:${T_USER:-$P_USER}"; do
    db=${pair%%:*} owner=${pair#*:}
    if [[ -z $(pg_super_sql -At -v db="$db" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'") ]]; then
      pg_super_sql -v db="$db" -v o="$owner" <<<"SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'o') \gexec" >/dev/null ||
        die "postgres: could not create database $db; see $PG_LOG"
      log "postgres: created database $db owned by $owner"
    fi
  done
}

# Settings for a write-heavy settlement load, in conf.d/stampede.conf of a
# cluster this script manages: bigger shared buffers (a quarter of RAM, at
# most 1 GB) so backends stop writing dirty pages themselves, checkpoints
# spread out (fewer full-page images in the WAL) and compressed full-page
# images. Durability is unchanged: fsync and synchronous_commit stay on.
# $1 = version, $2 = cluster name, $3 = 1 if the cluster is running.
pg_tune() {
  local ver=$1 name=$2 online=$3 dir="/etc/postgresql/$1/$2/conf.d" mem_kb sb_mb conf
  [[ -d $dir ]] || return 0
  mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
  sb_mb=$((mem_kb / 4 / 1024)); ((sb_mb > 1024)) && sb_mb=1024; ((sb_mb < 128)) && sb_mb=128
  conf="# written by stampede scripts/services.sh (settlement tuning; fsync and synchronous_commit untouched)
shared_buffers = ${sb_mb}MB
max_wal_size = 4GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
wal_compression = $(pg_wal_compression "$ver")"
  [[ -f $dir/stampede.conf && $(cat "$dir/stampede.conf") == "$conf" ]] && return 0
  printf '%s\n' "$conf" >"$dir/stampede.conf"
  log "postgres: wrote $dir/stampede.conf (shared_buffers ${sb_mb}MB, max_wal_size 4GB, checkpoint_timeout 15min, wal_compression)"
  if [[ $online == 1 ]]; then
    if pg_ctlcluster "$ver" "$name" reload; then
      log "postgres: reloaded cluster $ver $name; shared_buffers applies at its next restart"
    else
      warn "postgres: could not reload cluster $ver $name; the settings apply at its next restart"
    fi
  fi
  return 0
}

# lz4 where this server was built with it (Postgres 15+ on Debian is), pglz otherwise.
pg_wal_compression() {
  local bin="/usr/lib/postgresql/$1/bin/postgres"
  if ((${1%%.*} >= 15)) && ldd "$bin" 2>/dev/null | grep -q liblz4; then echo lz4; else echo on; fi
}

pg_start_local() {
  is_local_host "$P_HOST" || die "postgres does not answer at $DB_URL and $P_HOST is not this machine; cannot start it here"
  if ! have pg_ctlcluster || ! have pg_isready || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    apt_install postgres postgresql
  fi
  is_root || die "managing the Debian postgres cluster needs root; run as root or start PostgreSQL yourself"
  if ! pg_find_cluster; then
    local ver name=main
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { f = 1 } END { exit !f }' && name=stampede
    log "postgres: creating cluster $ver $name on port $P_PORT"
    pg_createcluster "$ver" "$name" --port "$P_PORT" >/dev/null
    pg_find_cluster || die "postgres: cluster creation failed"
  fi
  local ver=${PG_CLUSTER% *} name=${PG_CLUSTER#* }
  if [[ $PG_STATUS != online* ]]; then
    local maxc
    maxc=$(pg_conftool -s "$ver" "$name" show max_connections 2>/dev/null || echo 100)
    if ((maxc < 200)); then
      log "postgres: raising max_connections $maxc -> 200 (cluster $ver $name)"
      pg_conftool "$ver" "$name" set max_connections 200
    fi
    pg_tune "$ver" "$name" 0
    log "postgres: starting cluster $ver $name (pg_ctlcluster, log $PG_LOG)"
    pg_ctlcluster "$ver" "$name" start || { tail -n 20 "$PG_LOG" >&2 || true; die "postgres: pg_ctlcluster $ver $name start failed; see $PG_LOG"; }
  else
    log "postgres: cluster $ver $name is already running; provisioning role/databases"
    pg_tune "$ver" "$name" 1
    PG_HOW=local-provisioned
  fi
  wait_for postgres "$PG_LOG" pg_isready -q -h "$P_HOST" -p "$P_PORT"
  pg_find_cluster || true
  pg_provision 1
}

# ================================================================ Chromium
# The browser tests (test/browser/) drive a real headless Chromium through
# puppeteer-core, which downloads no browser: Debian's package is the one.
chromium_version() { "$CHROMIUM" --version 2>/dev/null | head -n 1; }

cmd_browser() {
  local version
  if [[ -x $CHROMIUM ]] && version=$(chromium_version) && [[ -n $version ]]; then
    log "chromium: reusing $CHROMIUM ($version)"
    return 0
  fi
  [[ -n ${STAMPEDE_CHROMIUM:-} ]] && die "STAMPEDE_CHROMIUM=$STAMPEDE_CHROMIUM is not a working Chromium ('$STAMPEDE_CHROMIUM --version' failed)"
  apt_install chromium chromium
  version=$(chromium_version) || die "chromium was installed but '$CHROMIUM --version' fails; see $DATA_DIR/apt.log"
  log "chromium: installed $CHROMIUM ($version)"
}

# ==================================================================== up
declare -A HOW=()

cmd_up() {
  local t0=$SECONDS missing=()

  # a) reuse what answers
  if redis_ping; then
    HOW[redis]=reused; log "redis: reusing server at $REDIS_URL"
    redis_check_config warn
  else
    missing+=(redis)
  fi

  if amqp_answers; then
    HOW[rabbitmq]=reused
    if have rabbitmqctl && is_root && rabbit_local_node; then
      rabbit_ctl -q await_startup --timeout "$TIMEOUT" >/dev/null 2>&1 || die "rabbitmq: local node answers AMQP but await_startup failed"
      log "rabbitmq: reusing local broker at $AMQP_URL"
      rabbit_ensure_user
    else
      log "rabbitmq: reusing broker at $AMQP_URL"
    fi
  else
    missing+=(rabbitmq)
  fi

  if pg_answers; then
    HOW[postgres]=reused; log "postgres: reusing server at $DB_URL"
    if pg_superuser_ok; then pg_provision 0; fi
    pg_test_answers || die "postgres answers at $DB_URL but $TEST_DB_URL does not (create that database, or run as root on the database machine)"
  else
    missing+=(postgres)
  fi

  # b) docker
  if ((${#missing[@]})); then
    if docker_usable; then
      compose_env
      log "docker: ${COMPOSE[*]} up -d --wait ${missing[*]}"
      "${COMPOSE[@]}" up -d --wait "${missing[@]}" || die "docker compose up failed; see '${COMPOSE[*]} logs ${missing[*]}'"
      local s; for s in "${missing[@]}"; do HOW[$s]=docker; done
      REDIS_LOG="'${COMPOSE[*]} logs redis'" RABBIT_LOG="'${COMPOSE[*]} logs rabbitmq'" PG_LOG="'${COMPOSE[*]} logs postgres'"
      missing=()
    else
      log "no Docker engine answers; starting local servers for: ${missing[*]}"
    fi
  fi

  # c) local servers
  local s
  for s in "${missing[@]}"; do
    case $s in
      redis) redis_start_local; HOW[redis]=local-started ;;
      rabbitmq) rabbit_start_local; HOW[rabbitmq]=local-started ;;
      postgres) pg_start_local; HOW[postgres]=$PG_HOW ;;
    esac
  done

  # final: every service really answers
  wait_for redis "$REDIS_LOG" redis_ping
  [[ ${HOW[redis]} == docker ]] && redis_check_config warn
  wait_for rabbitmq "$RABBIT_LOG" amqp_answers
  wait_for postgres "$PG_LOG" pg_answers
  wait_for "postgres ($TEST_DB_URL)" "$PG_LOG" pg_test_answers

  log "summary: redis    $(printf '%-13s' "${HOW[redis]}") $REDIS_URL"
  log "summary: rabbitmq $(printf '%-13s' "${HOW[rabbitmq]}") $AMQP_URL"
  log "summary: postgres $(printf '%-13s' "${HOW[postgres]}") $DB_URL (test: $TEST_DB_URL)"
  log "all services up in $((SECONDS - t0))s"
}

cmd_status() {
  local rc=0
  if redis_ping; then log "redis:    up    $REDIS_URL"; else log "redis:    DOWN  $REDIS_URL"; rc=1; fi
  if amqp_answers; then log "rabbitmq: up    $AMQP_URL"; else log "rabbitmq: DOWN  $AMQP_URL"; rc=1; fi
  if pg_answers; then
    if pg_test_answers; then log "postgres: up    $DB_URL (+ $TEST_DB_URL)"
    else log "postgres: up    $DB_URL, but $TEST_DB_URL does not answer"; rc=1; fi
  else log "postgres: DOWN  $DB_URL"; rc=1; fi
  if [[ -n ${STAMPEDE_REDIS_CLUSTER_NODES:-} ]]; then
    IFS=, read -r -a RC_NODES <<<"$CLUSTER_NODES"
    if rc_all_ok; then log "redis cluster: up  ${RC_NODES[*]}"; else log "redis cluster: DOWN or not ok  ${RC_NODES[*]}"; rc=1; fi
  fi
  # Not a service: the api runs without it, so it does not change the exit code.
  if [[ -x $CHROMIUM ]]; then log "chromium: $(chromium_version || echo 'does not run')  $CHROMIUM"
  else log "chromium: missing  $CHROMIUM (the browser tests need it: scripts/services.sh browser)"; fi
  return $rc
}

cmd_stop_rabbitmq() {
  if rabbit_local_node; then
    log "rabbitmq: rabbitmqctl stop_app (local node keeps running)"
    rabbit_ctl -q stop_app >/dev/null
  elif docker_has_service rabbitmq; then
    log "rabbitmq: ${COMPOSE[*]} stop rabbitmq"
    "${COMPOSE[@]}" stop rabbitmq
  else
    die "no local RabbitMQ node and no compose rabbitmq container found; nothing to stop"
  fi
  wait_gone "rabbitmq at $AMQP_URL" amqp_answers
  log "rabbitmq: stopped (AMQP $A_HOST:$A_PORT no longer answers)"
}

cmd_start_rabbitmq() {
  if rabbit_local_node; then
    log "rabbitmq: rabbitmqctl start_app"
    rabbit_ctl -q start_app >/dev/null
    rabbit_wait_app
  elif docker_has_service rabbitmq; then
    log "rabbitmq: ${COMPOSE[*]} start rabbitmq"
    "${COMPOSE[@]}" start rabbitmq
    RABBIT_LOG="'${COMPOSE[*]} logs rabbitmq'"
    wait_for rabbitmq "$RABBIT_LOG" amqp_answers
  elif amqp_answers; then
    log "rabbitmq: already answers at $AMQP_URL"
  else
    rabbit_start_local
  fi
  log "rabbitmq: up at $AMQP_URL"
}

cmd_kill_redis() {
  if ! redis_ping; then log "redis: nothing answers at $REDIS_URL; nothing to kill"; return 0; fi
  if docker_has_service redis; then
    log "redis: ${COMPOSE[*]} kill -s SIGKILL redis"
    "${COMPOSE[@]}" kill -s SIGKILL redis >/dev/null
  else
    is_local_host "$R_HOST" || die "redis at $REDIS_URL is not on this machine; cannot kill it"
    local pid pidfile
    pid=$(redis_info server process_id || true)
    if [[ ! $pid =~ ^[0-9]+$ ]]; then
      pidfile=$(redis_config pidfile || true)
      [[ -n $pidfile && -r $pidfile ]] && pid=$(<"$pidfile")
    fi
    [[ $pid =~ ^[0-9]+$ ]] || die "redis: could not find its process id (no redis-cli, no pidfile)"
    log "redis: kill -9 $pid (the redis-server answering at $REDIS_URL)"
    kill -9 "$pid"
  fi
  wait_gone "redis at $REDIS_URL" redis_ping
  log "redis: killed (no longer answers at $REDIS_URL)"
}

cmd_start_redis() {
  if redis_ping; then
    log "redis: already answers at $REDIS_URL"
  elif docker_has_service redis; then
    log "redis: ${COMPOSE[*]} start redis"
    "${COMPOSE[@]}" start redis >/dev/null
    REDIS_LOG="'${COMPOSE[*]} logs redis'"
  else
    redis_start_local
  fi
  wait_for "redis (loading its AOF)" "$REDIS_LOG" redis_loaded
  log "redis: up at $REDIS_URL"
}

cmd_stop_postgres() {
  if ! pg_answers; then log "postgres: nothing answers at $DB_URL; nothing to stop"; return 0; fi
  if is_local_host "$P_HOST" && is_root && pg_find_cluster; then
    local ver=${PG_CLUSTER% *} name=${PG_CLUSTER#* }
    log "postgres: pg_ctlcluster $ver $name stop -m fast"
    pg_ctlcluster "$ver" "$name" stop -m fast
  elif docker_has_service postgres; then
    log "postgres: ${COMPOSE[*]} stop postgres"
    "${COMPOSE[@]}" stop postgres >/dev/null
  else
    die "no local postgres cluster on port $P_PORT and no compose postgres container found; nothing to stop"
  fi
  wait_gone "postgres at $DB_URL" pg_answers
  log "postgres: stopped (no longer answers at $DB_URL)"
}

cmd_start_postgres() {
  if pg_answers && pg_test_answers; then log "postgres: already answers at $DB_URL"; return 0; fi
  if is_local_host "$P_HOST" && is_root && pg_find_cluster; then
    local ver=${PG_CLUSTER% *} name=${PG_CLUSTER#* }
    log "postgres: pg_ctlcluster $ver $name start"
    pg_ctlcluster "$ver" "$name" start
  elif docker_has_service postgres; then
    log "postgres: ${COMPOSE[*]} start postgres"
    "${COMPOSE[@]}" start postgres >/dev/null
    PG_LOG="'${COMPOSE[*]} logs postgres'"
  else
    pg_start_local
  fi
  wait_for postgres "$PG_LOG" pg_answers
  wait_for "postgres ($TEST_DB_URL)" "$PG_LOG" pg_test_answers
  log "postgres: up at $DB_URL"
}

case ${1:-up} in
  up)
    cmd_up
    for flag in "${@:2}"; do
      [[ $flag == --redis-cluster || $flag == --rabbitmq-cluster ]] || die "usage: $0 up [--redis-cluster] [--rabbitmq-cluster]"
    done
    if [[ " ${*:2} " == *" --redis-cluster "* || -n ${STAMPEDE_REDIS_CLUSTER_NODES:-} ]]; then redis_cluster_up; fi
    if [[ " ${*:2} " == *" --rabbitmq-cluster "* || -n ${STAMPEDE_RABBITMQ_CLUSTER_PORTS:-} ]]; then rabbit_cluster_up; fi
    ;;
  kill-rabbitmq-node) cmd_kill_rabbitmq_node "${2:-}" ;;
  browser) cmd_browser ;;
  status) cmd_status ;;
  stop-rabbitmq) cmd_stop_rabbitmq ;;
  start-rabbitmq) cmd_start_rabbitmq ;;
  kill-redis) cmd_kill_redis ;;
  start-redis) cmd_start_redis ;;
  stop-postgres) cmd_stop_postgres ;;
  start-postgres) cmd_start_postgres ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "usage: $0 [up [--redis-cluster] [--rabbitmq-cluster]|kill-rabbitmq-node <port>|browser|status|stop-rabbitmq|start-rabbitmq|kill-redis|start-redis|stop-postgres|start-postgres]" ;;
esac
