# Shared settings of tests/openstack/{up,down,smoke}. Sourced, not run.
# Everything lives under $YUNSHU_OS_HOME (default ~/.cache/yunshu-openstack);
# every service listens on 127.0.0.1 only, on the fixed high ports below
# (override any of them through the environment).

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OSH=${YUNSHU_OS_HOME:-$HOME/.cache/yunshu-openstack}
VENV=$OSH/venv
ST=$OSH/state          # databases, config, logs, pids: removed by `down --purge`
ETC=$ST/etc
LOGS=$ST/log
RUN=$ST/run

: "${OS_IP:=127.0.0.1}"
: "${PORT_MYSQL:=43306}"
: "${PORT_RABBIT:=45672}"
: "${PORT_RABBIT_DIST:=45673}"
: "${PORT_EPMD:=44369}"
: "${PORT_KEYSTONE:=45000}"
: "${PORT_GLANCE:=49292}"
: "${PORT_PLACEMENT:=48778}"
: "${PORT_NOVA:=48774}"
: "${PORT_NEUTRON:=49696}"
: "${PORT_CINDER:=48776}"
: "${PORT_OCTAVIA:=49876}"

DB_USER=yunshu_os
DB_PASS=yunshu_os_db
ADMIN_PASS=${YUNSHU_OS_ADMIN_PASS:-admin-secret}
SERVICE_PASS=${YUNSHU_OS_SERVICE_PASS:-service-secret}
DEMO_PASS=${YUNSHU_OS_DEMO_PASS:-yunshu-secret}
RABBIT_URL="rabbit://guest:guest@$OS_IP:$PORT_RABBIT/"
KS_URL="http://$OS_IP:$PORT_KEYSTONE/v3"

db_url() { echo "mysql+pymysql://$DB_USER:$DB_PASS@$OS_IP:$PORT_MYSQL/$1?charset=utf8"; }

# Erlang/RabbitMQ: loopback only, state under $ST.
export ERL_EPMD_ADDRESS=$OS_IP ERL_EPMD_PORT=$PORT_EPMD

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

wait_port() { # name port timeout
  local t0 i; t0=$(now)
  for ((i = 0; i < $3 * 5; i++)); do
    if (exec 3<>"/dev/tcp/$OS_IP/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$1 did not listen on $OS_IP:$2 within $3 s; see $LOGS/$1.log"; tail -20 "$LOGS/$1.log" >&2
  return 1
}

wait_http() { # name url timeout : until the URL answers anything below 500
  local i code
  for ((i = 0; i < $3 * 5; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$2" 2>/dev/null || true)
    if [[ $code =~ ^[1-4] ]]; then return 0; fi
    sleep 0.2
  done
  log "$1 did not answer at $2 within $3 s (last code $code); see $LOGS/$1.log"; tail -30 "$LOGS/$1.log" >&2
  return 1
}

running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() { # name cmd... : detached in its own session, pid in $RUN/name.pid
  local name=$1; shift
  if running "$name"; then log "$name already running"; return 0; fi
  setsid nice -n 10 "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

export OS_IP PORT_KEYSTONE PORT_GLANCE PORT_PLACEMENT PORT_NOVA PORT_NEUTRON PORT_CINDER PORT_OCTAVIA
export YUNSHU_OS_HOME=$OSH YUNSHU_OS_ADMIN_PASS=$ADMIN_PASS YUNSHU_OS_SERVICE_PASS=$SERVICE_PASS YUNSHU_OS_DEMO_PASS=$DEMO_PASS
