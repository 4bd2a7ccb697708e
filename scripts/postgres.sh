#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests (ocs track's shared store):
#   scripts/postgres.sh start   installs Debian's postgresql when missing,
#                               creates a cluster in a temporary folder and
#                               starts it on a free port on 127.0.0.1;
#                               writes target/postgres.env
#                               (OCS_POSTGRES_URL, OCS_POSTGRES_DIR)
#   scripts/postgres.sh stop    stops it and removes the folder
# The server runs as the current user, or as `nobody` when that is root
# (PostgreSQL refuses to run as root). Trust authentication on loopback
# only: it is for tests, never for data.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_FILE="$ROOT/target/postgres.env"

bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_owner() { # runs "$@" as the cluster's owner
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

stop() {
  [ -f "$ENV_FILE" ] || return 0
  local dir bin
  dir=$(sed -n 's/^OCS_POSTGRES_DIR=//p' "$ENV_FILE")
  bin=$(bin_dir)
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    case "$dir" in */ocs-postgres.*) rm -rf "$dir" ;; esac
  fi
  rm -f "$ENV_FILE"
}

start() {
  stop
  if [ -z "$(bin_dir)" ]; then
    echo "installing postgresql (apt-get)"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
  fi
  local bin dir port
  bin=$(bin_dir)
  dir=$(mktemp -d /tmp/ocs-postgres.XXXXXX)
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown nobody "$dir"; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" -U ocs --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  mkdir -p "$ROOT/target"
  printf 'OCS_POSTGRES_URL=postgres://ocs@127.0.0.1:%s/postgres\nOCS_POSTGRES_DIR=%s\n' "$port" "$dir" >"$ENV_FILE"
  echo "postgresql on 127.0.0.1:$port (cluster in $dir, settings in target/postgres.env)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
