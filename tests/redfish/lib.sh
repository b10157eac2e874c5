# Shared settings of tests/redfish/{up,down,smoke}. Sourced, not run.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RFH=${YUNSHU_RF_HOME:-$HOME/.cache/yunshu-redfish}
VENV=$RFH/venv
ST=$RFH/state            # pids, logs, disks, console logs, TLS, htpasswd
GUEST=$RFH/guest         # kernel, initramfs, ISO (kept across `down --purge`)
RUN=$ST/run
LOGS=$ST/log

: "${RF_IP:=127.0.0.1}"
: "${PORT_REDFISH:=48000}"      # sushy-emulator, HTTPS + basic auth
: "${PORT_MEDIA:=48080}"        # plain HTTP file server for the ISO (virtual media source)
: "${RF_USER:=yunshu}"
: "${RF_PASS:=yunshu-bmc-secret}"
: "${RF_FAKE:=0}"               # 1 = sushy's fake driver instead of libvirt
LIBVIRT_URI=qemu:///system
DOMAINS=(yunshu-bm-0 yunshu-bm-1)
MARKER=YUNSHU-BAREMETAL-BOOTED
RF="https://$RF_IP:$PORT_REDFISH"
CURL=(curl -sS --cacert "$ST/tls/cert.pem" -u "$RF_USER:$RF_PASS" -H 'Content-Type: application/json')

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
start() { # name cmd...
  local name=$1; shift
  if running "$name"; then return 0; fi
  setsid nice -n 10 "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}
wait_port() { # name port timeout
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    (exec 3<>"/dev/tcp/$RF_IP/$2") 2>/dev/null && return 0
    sleep 0.2
  done
  log "$1 did not listen on $RF_IP:$2; see $LOGS/$1.log"; tail -20 "$LOGS/$1.log" >&2; return 1
}
