#!/usr/bin/env bash
# Builds the C programs (against ocs.h and the ocs-ffi cdylib) with gcc
# and runs them: scenario.c against the embedded test server (ids and
# outcomes of every command), smoke.c against Kamailio on
# 127.0.0.1:$OCS_KAMAILIO_PORT.
# scripts/test.sh calls it with Kamailio running; by hand:
#   scripts/kamailio.sh start && set -a && . target/kamailio.env && set +a
#   bindings/c/run.sh
#   scripts/kamailio.sh stop
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${OCS_KAMAILIO_PORT:?is not set: start Kamailio with scripts/kamailio.sh start, then set -a; . target/kamailio.env; set +a}"

cargo build -p ocs-ffi
lib=target/debug
out=target/c-smoke
mkdir -p "$out"
for prog in scenario smoke; do
  gcc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -pedantic \
    -I bindings/c "bindings/c/$prog.c" \
    -L "$lib" -Wl,-rpath,"$PWD/$lib" -locs_ffi -lpthread \
    -o "$out/$prog"
  echo "built $out/$prog"
done
timeout 120 "$out/scenario"
timeout 120 "$out/smoke" "$OCS_KAMAILIO_PORT"
