#!/usr/bin/env bash
# Builds the C# wrapper (Ocs.cs) and its test (Test.cs) with Mono's mcs and
# runs the test under mono against Kamailio on 127.0.0.1:$OCS_KAMAILIO_PORT,
# with the ocs-ffi cdylib from `cargo build -p ocs-ffi`. Installs Debian's
# mono-mcs and mono-runtime when missing (apt, as root or with sudo).
# scripts/test.sh calls it with Kamailio running; by hand:
#   scripts/kamailio.sh start && set -a && . target/kamailio.env && set +a
#   bindings/csharp/run.sh
#   scripts/kamailio.sh stop
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${OCS_KAMAILIO_PORT:?is not set: start Kamailio with scripts/kamailio.sh start, then set -a; . target/kamailio.env; set +a}"

if ! command -v mcs >/dev/null || ! command -v mono >/dev/null; then
  echo "installing mono-mcs and mono-runtime (apt-get)"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime >/dev/null; }
fi

cargo build -p ocs-ffi
lib=target/debug
out=target/csharp
mkdir -p "$out"
# TRACE keeps the wrapper's Trace.TraceError reports (as in Visual Studio builds).
mcs -nologo -warnaserror+ -d:TRACE -target:library -out:"$out/Ocs.dll" bindings/csharp/Ocs.cs
mcs -nologo -warnaserror+ -target:exe -r:"$out/Ocs.dll" -out:"$out/OcsTest.exe" bindings/csharp/Test.cs
mcs -nologo -warnaserror+ -target:exe -r:"$out/Ocs.dll" -out:"$out/OcsScenario.exe" bindings/csharp/Scenario.cs
echo "built $out/Ocs.dll, $out/OcsTest.exe and $out/OcsScenario.exe"
# The hosts' common scenario against the embedded test server (no Kamailio).
LD_LIBRARY_PATH="$PWD/$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  timeout 120 mono --debug "$out/OcsScenario.exe"
LD_LIBRARY_PATH="$PWD/$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  timeout 120 mono --debug "$out/OcsTest.exe" "$OCS_KAMAILIO_PORT"
