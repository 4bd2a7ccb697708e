#!/usr/bin/env bash
# Builds the Python wheel of ocs (maturin, uniffi bindings of ocs-ffi; debug
# profile, release with OCS_WHEEL_RELEASE=1), installs it into a venv under
# target/python-venv and runs pytest
# on bindings/python/tests: two NTLM users through the embedded OCS test
# server, and two Digest users through Kamailio on 127.0.0.1:$OCS_KAMAILIO_PORT
# (those tests are skipped when Kamailio is not running).
# scripts/test.sh calls it with Kamailio running; by hand:
#   scripts/kamailio.sh start && set -a && . target/kamailio.env && set +a
#   bindings/python/run.sh
#   scripts/kamailio.sh stop
# Needs python3 with venv and pip; pip fetches the pinned maturin and pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/python-venv
wheels=target/wheels
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check maturin==1.16.0 pytest==9.2.0

# maturin generates the Python module with whatever `uniffi-bindgen` is on
# PATH; it must be the workspace's uniffi version (see ocs-ffi/uniffi-bindgen).
cargo build -p ocs-uniffi-bindgen --features cli
ln -sf "$PWD/target/debug/ocs-uniffi-bindgen" "$venv/bin/uniffi-bindgen"

rm -f "$wheels"/ocs_communicator-*.whl
# -C strip=debuginfo applies to the cdylib only. Not --strip: uniffi-bindgen
# reads the bindings' metadata from the library's symbol table.
# A debug build by default: it reuses what `cargo test` built, so CI does
# not compile the whole tree again; OCS_WHEEL_RELEASE=1 builds the release
# wheel (the size README quotes).
profile=()
[ "${OCS_WHEEL_RELEASE:-}" = 1 ] && profile=(--release)
(cd bindings/python && PATH="$PWD/../../$venv/bin:$PATH" \
  maturin build "${profile[@]}" --out "../../$wheels" -- -C strip=debuginfo)
wheel=$(ls "$wheels"/ocs_communicator-*.whl)
echo "built $wheel ($(stat -c %s "$wheel") bytes)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

if [ -z "${OCS_KAMAILIO_PORT:-}" ]; then
  echo "note: OCS_KAMAILIO_PORT is not set; the Kamailio tests will be skipped" >&2
fi
cd bindings/python
timeout 600 "../../$venv/bin/python" -m pytest -q -rs -p no:cacheprovider tests
