#!/usr/bin/env bash
# A throw-away MIT Kerberos KDC for the Kerberos sign-in tests:
#   scripts/kdc.sh start   installs Debian's krb5-kdc, krb5-admin-server and
#                          the build needs of the `kerberos` feature
#                          (libkrb5-dev, libclang-dev) when missing; creates
#                          realm CONTOSO.COM in a temporary folder with
#                          users alice (alicepw) and bob (bobpw) and the
#                          service sip/ocs-sim.contoso.com (its key in a
#                          keytab); starts krb5kdc on a free port on
#                          127.0.0.1; writes target/kdc.env (KRB5_CONFIG,
#                          KRB5_KDC_PROFILE, KRB5_KTNAME, KRB5CCNAME,
#                          OCS_KDC_DIR)
#   scripts/kdc.sh stop    stops it and removes the folder
# No root needed to run it (a port above 1024); the database's master key
# is a fixed test value: it is for tests, never for accounts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_FILE="$ROOT/target/kdc.env"
REALM=CONTOSO.COM

stop() {
  [ -f "$ENV_FILE" ] || return 0
  local dir
  dir=$(sed -n 's/^OCS_KDC_DIR=//p' "$ENV_FILE")
  if [ -n "$dir" ] && [ -f "$dir/krb5kdc.pid" ]; then
    kill "$(cat "$dir/krb5kdc.pid")" 2>/dev/null || true
  fi
  case "$dir" in */ocs-kdc.*) rm -rf "$dir" ;; esac
  rm -f "$ENV_FILE"
}

start() {
  stop
  if ! command -v krb5kdc >/dev/null || ! command -v kdb5_util >/dev/null \
    || [ ! -e /usr/include/gssapi/gssapi.h ] || ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
    echo "installing krb5-kdc, krb5-admin-server, libkrb5-dev, libclang-dev (apt-get)"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    local pkgs="krb5-kdc krb5-admin-server libkrb5-dev libclang-dev"
    # shellcheck disable=SC2086 # a list of package names
    $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; }
  fi
  local dir port
  dir=$(mktemp -d /tmp/ocs-kdc.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$dir/krb5.conf" <<CONF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    $REALM = {
        kdc = 127.0.0.1:$port
    }
[domain_realm]
    .contoso.com = $REALM
    contoso.com = $REALM
CONF
  cat >"$dir/kdc.conf" <<CONF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$port
    kdc_tcp_listen = 127.0.0.1:$port
[realms]
    $REALM = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 10h 0m 0s
    }
[logging]
    kdc = FILE:$dir/kdc.log
CONF
  : >"$dir/kadm5.acl"
  export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
  kdb5_util create -s -r "$REALM" -P ocs-test-master-key >"$dir/create.log" 2>&1 \
    || { cat "$dir/create.log" >&2; exit 1; }
  kadmin.local -q "addprinc -pw alicepw alice" >>"$dir/create.log" 2>&1
  kadmin.local -q "addprinc -pw bobpw bob" >>"$dir/create.log" 2>&1
  kadmin.local -q "addprinc -randkey sip/ocs-sim.contoso.com" >>"$dir/create.log" 2>&1
  kadmin.local -q "ktadd -k $dir/sip.keytab sip/ocs-sim.contoso.com" >>"$dir/create.log" 2>&1
  krb5kdc -P "$dir/krb5kdc.pid" >>"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 1; }
  # Ready when it answers on its port.
  for _ in $(seq 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  mkdir -p "$ROOT/target"
  {
    echo "KRB5_CONFIG=$dir/krb5.conf"
    echo "KRB5_KDC_PROFILE=$dir/kdc.conf"
    echo "KRB5_KTNAME=FILE:$dir/sip.keytab"
    echo "KRB5CCNAME=FILE:$dir/ccache"
    echo "OCS_KDC_DIR=$dir"
  } >"$ENV_FILE"
  echo "krb5kdc for $REALM on 127.0.0.1:$port (database in $dir, settings in target/kdc.env)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
