#!/usr/bin/env bash
# Usage: scripts/kamailio.sh start [PORT] | stop | status
# start: installs Kamailio + SIPp when missing (ocs-core/tests/peers/kamailio/install.sh, apt), then
#        starts a throw-away Kamailio on the first free port from PORT (default 5070): UDP+TCP on the
#        port, TLS on port+1. Its state lives in a new temporary folder. Writes target/kamailio.env:
#          OCS_KAMAILIO_PORT=5070  OCS_KAMAILIO_TLS_PORT=5071  OCS_KAMAILIO_DIR=/tmp/ocs-kamailio.XXXX
#        so `set -a; . target/kamailio.env; set +a` sets up the interop tests.
# stop:  stops the Kamailio named in target/kamailio.env and removes its folder and the env file.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER="$ROOT/ocs-core/tests/peers/kamailio"
ENV_FILE="$ROOT/target/kamailio.env"

# True when UDP and TCP on 127.0.0.1:$1 and :$1+1 are all free.
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
p = int(sys.argv[1])
try:
    for port in (p, p + 1):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            if kind == socket.SOCK_STREAM:  # as Kamailio does; ignores TIME_WAIT leftovers
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.close()
except OSError:
    sys.exit(1)
PY
}

stop() {
  [ -f "$ENV_FILE" ] || return 0
  local dir
  dir=$(sed -n 's/^OCS_KAMAILIO_DIR=//p' "$ENV_FILE")
  if [ -n "$dir" ]; then
    sh "$PEER/stop.sh" "$dir"
    case "$dir" in */ocs-kamailio.*) rm -rf "$dir" ;; esac
  fi
  rm -f "$ENV_FILE"
}

case "${1:-}" in
  start)
    stop
    sh "$PEER/install.sh"
    port=${2:-5070}
    while ! port_free "$port"; do
      port=$((port + 2))
      [ "$port" -lt 65000 ] || { echo "no free port for Kamailio" >&2; exit 1; }
    done
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ocs-kamailio.XXXXXX")
    mkdir -p "$ROOT/target"
    sh "$PEER/start.sh" "$dir" "$port"
    {
      echo "OCS_KAMAILIO_PORT=$port"
      [ -e "$dir/ca.pem" ] && echo "OCS_KAMAILIO_TLS_PORT=$((port + 1))"
      echo "OCS_KAMAILIO_DIR=$dir"
    } > "$ENV_FILE"
    echo "kamailio on 127.0.0.1:$port (state in $dir, settings in target/kamailio.env)"
    ;;
  stop) stop ;;
  status)
    if [ -f "$ENV_FILE" ]; then cat "$ENV_FILE"; else echo "not running"; exit 1; fi
    ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
