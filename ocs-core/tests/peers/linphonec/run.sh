#!/bin/sh
# linphonec (Debian `linphone-cli`, liblinphone 5.1) as an independent SIP client for the interop tests.
#
# Usage:
#   run.sh install                      installs linphone-cli when linphonec is missing (apt, as root or with
#                                       sudo; about 25 s and ~95 packages on a bookworm image with fresh lists)
#   run.sh WORKDIR KAMAILIO_PORT [SIP_PORT]
#                                       runs linphonec in the foreground, registered to the Kamailio on
#                                       127.0.0.1:KAMAILIO_PORT over UDP, as $LINPHONEC_USER (default bob,
#                                       password ${user}pw, domain 127.0.0.1), listening on UDP SIP_PORT
#                                       (default KAMAILIO_PORT+30). HOME is WORKDIR/home; its config is
#                                       WORKDIR/linphonerc. Commands come on standard input, one a line;
#                                       its output goes to WORKDIR/linphonec.out (stderr: linphonec.err).
#
# Commands (see /work/shared/reference/linphonec/README.md): `proxy list` (shows `registered: yes` once
# registered, ~1-3 s), `chat sip:alice@127.0.0.1 TEXT`, `quit`. A received IM prints
# `Message received from sip:alice@127.0.0.1: TEXT`. By hand, with Kamailio on 5070:
#   K=$(mktemp -d); (sleep 3; echo 'proxy list'; sleep 1; echo quit) | ./run.sh "$K" 5070; cat "$K/linphonec.out"
# Audio devices are missing in CI; its soundcard errors are harmless.
set -e
if [ "${1:-}" = install ]; then
  command -v linphonec >/dev/null 2>&1 && exit 0
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends linphone-cli >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends linphone-cli >/dev/null; }
  exit 0
fi
[ $# -ge 2 ] || { echo "usage: $0 install | $0 WORKDIR KAMAILIO_PORT [SIP_PORT]" >&2; exit 2; }
WORKDIR=$(mkdir -p "$1" && cd "$1" && pwd)
KPORT=$2
SIPPORT=${3:-$((KPORT + 30))}
USER_=${LINPHONEC_USER:-bob}
command -v linphonec >/dev/null 2>&1 || { echo "linphonec is missing: run $0 install" >&2; exit 1; }
# Its chat database lives in $HOME/.local/share/linphone, which must exist.
mkdir -p "$WORKDIR/home/.local/share/linphone"
# default_proxy=0: without it, chat goes out from an anonymous identity and never reaches the proxy.
cat > "$WORKDIR/linphonerc" <<CFG
[sip]
sip_port=$SIPPORT
sip_tcp_port=-1
sip_tls_port=-1
default_proxy=0
[proxy_0]
reg_proxy=<sip:127.0.0.1:$KPORT;transport=udp>
reg_identity=sip:$USER_@127.0.0.1
reg_expires=3600
reg_sendregister=1
publish=0
[auth_info_0]
username=$USER_
passwd=${USER_}pw
realm=127.0.0.1
domain=127.0.0.1
CFG
HOME="$WORKDIR/home" exec linphonec -c "$WORKDIR/linphonerc" > "$WORKDIR/linphonec.out" 2> "$WORKDIR/linphonec.err"
