#!/bin/sh
# Usage: start.sh WORKDIR [PORT]
# Starts a throw-away Kamailio whose state lives in WORKDIR: UDP+TCP on 127.0.0.1:PORT (default 5060)
# and, when the TLS module is installed, TLS on 127.0.0.1:PORT+1 with a certificate for localhost and
# 127.0.0.1 signed by a fresh test CA (WORKDIR/ca.pem). Registrar with digest auth (users alice/alicepw
# and bob/bobpw at domain 127.0.0.1), presence server (PUBLISH/SUBSCRIBE/NOTIFY, PIDF), MESSAGE relay
# to registered contacts, and a control socket for kamcmd (unix:WORKDIR/ctl). Waits until it answers.
# KAMAILIO_DEFINES adds defines, e.g. "-A WITH_NAT" (registrations keep the address a REGISTER came
# from, for clients behind a NAT or a proxy).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
WORKDIR=$(mkdir -p "$1" && cd "$1" && pwd)
PORT=${2:-5060}
TLSPORT=$((PORT + 1))
MPATH=$(dirname "$(find /usr/lib -path '*kamailio/modules/tm.so' | head -n 1)")/
DEFS=${KAMAILIO_DEFINES:-}
if [ -e "$MPATH/tls.so" ] && command -v openssl >/dev/null; then
  DEFS="$DEFS -A WITH_TLS"
  cd "$WORKDIR"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj /CN=ocs-test-ca -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
    -extfile server.ext -out server.pem 2>/dev/null
  cd - >/dev/null
fi
sed -e "s#@WORKDIR@#$WORKDIR#g" -e "s#@PORT@#$PORT#g" -e "s#@TLSPORT@#$TLSPORT#g" -e "s#@MPATH@#$MPATH#g" \
  "$HERE/kamailio.cfg.in" > "$WORKDIR/kamailio.cfg"
rm -f "$WORKDIR/kamailio.sqlite"
for f in standard auth_db presence; do
  sqlite3 "$WORKDIR/kamailio.sqlite" < "/usr/share/kamailio/db_sqlite/$f-create.sql"
done
sqlite3 "$WORKDIR/kamailio.sqlite" "INSERT INTO subscriber (username, domain, password) VALUES ('alice','127.0.0.1','alicepw'),('bob','127.0.0.1','bobpw');"
# shellcheck disable=SC2086 # DEFS is a list of "-A NAME" words
kamailio -f "$WORKDIR/kamailio.cfg" $DEFS -DD -E -m 512 -M 8 -w "$WORKDIR" > "$WORKDIR/kamailio.log" 2>&1 &
echo $! > "$WORKDIR/kamailio.pid"
python3 "$HERE/wait_ready.py" "$PORT" || { tail -n 20 "$WORKDIR/kamailio.log"; exit 1; }
