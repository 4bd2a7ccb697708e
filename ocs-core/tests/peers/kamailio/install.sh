#!/bin/sh
# Installs what the Kamailio interop tests need from Debian's packages, when missing:
# Kamailio (registrar, presence, SQLite, TLS modules), SIPp, sqlite3, openssl, python3.
# Runs `apt-get update` only when the first install attempt fails (fresh CI images).
set -e
have() { command -v "$1" >/dev/null 2>&1; }
kmod() { find /usr/lib -path "*kamailio/modules/$1" 2>/dev/null | grep -q .; }
if have kamailio && have sipp && have sqlite3 && have openssl && have python3 \
   && kmod presence.so && kmod db_sqlite.so && kmod tls.so \
   && [ -e /usr/share/kamailio/db_sqlite/presence-create.sql ]; then exit 0; fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="kamailio kamailio-presence-modules kamailio-sqlite-modules kamailio-tls-modules sip-tester sqlite3 openssl python3"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null; }
