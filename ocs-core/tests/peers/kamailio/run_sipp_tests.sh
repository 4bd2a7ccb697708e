#!/bin/sh
# Usage: run_sipp_tests.sh [PORT]  — checks a running Kamailio (start.sh) with SIPp over UDP and TCP:
# REGISTER with digest, PUBLISH of a PIDF, SUBSCRIBE + NOTIFY, MESSAGE relayed to a registered user.
# Prints "N passed, N failed". Logs go to $LOGS (default: a new temporary folder).
# SIPp's own ports are PORT+10 .. PORT+14 (the reference used fixed 5070..5083, which collides with a
# Kamailio on 5070).
PORT=${1:-5060}
P0=$((PORT + 10)); P1=$((PORT + 11)); P2=$((PORT + 12)); P3=$((PORT + 13)); PB=$((PORT + 14))
SC=$(cd "$(dirname "$0")/sipp" && pwd)
LOGS=${LOGS:-$(mktemp -d)}
pass=0; fail=0
run() { name=$1; shift
  timeout 30 sipp "$@" 127.0.0.1:$PORT -m 1 -nostdin -timeout 10s -timeout_error -trace_err \
     -error_file $LOGS/$name.err -trace_logs -log_file $LOGS/$name.log >/dev/null 2>&1
  if [ $? -eq 0 ]; then pass=$((pass+1)); echo "PASS $name"; else fail=$((fail+1)); echo "FAIL $name (see $LOGS)"; fi; }
for T in u1:udp t1:tcp; do
  t=${T%%:*}; n=${T##*:}
  run register_alice_$n -sf $SC/register.xml -t $t -p $P0 -key user alice -au alice -ap alicepw
  run publish_bob_$n -sf $SC/publish.xml -t $t -p $P1 -key user bob -au bob -ap bobpw
  run subscribe_alice_bob_$n -sf $SC/subscribe.xml -t $t -p $P2 -key user alice -key peer bob -au alice -ap alicepw
  run register_bob_$n -sf $SC/register.xml -t $t -p $PB -key user bob -au bob -ap bobpw
  timeout 30 sipp -sf $SC/uas_message.xml -t $t -p $PB -m 1 -nostdin -timeout 15s -timeout_error \
     -trace_err -error_file $LOGS/uas_bob_$n.err 127.0.0.1:$PORT >/dev/null 2>&1 &
  UAS=$!; sleep 0.5
  run message_alice_bob_$n -sf $SC/message.xml -t $t -p $P3 -key user alice -key peer bob -au alice -ap alicepw
  if wait $UAS; then pass=$((pass+1)); echo "PASS uas_bob_receives_message_$n"; else fail=$((fail+1)); echo "FAIL uas_bob_receives_message_$n"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
