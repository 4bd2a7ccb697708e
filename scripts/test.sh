#!/usr/bin/env bash
# The project's whole test suite: the one command README.md gives and
# .ci/run calls. It installs what is missing, starts the servers the
# interop tests use, and stops them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step line also says how much disk is left: a fresh CI clone once ran
# out while linking a test (lld: Bus error), and the log did not say so.
step() { printf '\n==> %s  [disk free: %s]\n' "$*" "$(df -h --output=avail . | tail -n 1 | tr -d ' ')"; }

step "toolchain components"
for c in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
    rustup component add "$c"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "Kamailio for the interop tests (scripts/kamailio.sh: installs it when missing)"
trap 'scripts/kamailio.sh stop; scripts/postgres.sh stop; scripts/kdc.sh stop' EXIT
scripts/kamailio.sh start
set -a
# shellcheck source=/dev/null # written by scripts/kamailio.sh start
. target/kamailio.env
set +a

step "tshark, to check that pcap traces open in Wireshark (Debian tshark)"
if ! command -v tshark >/dev/null; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends tshark >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends tshark >/dev/null; } \
    || echo "installing tshark failed: the pcap trace test falls back to our own reader" >&2
fi

step "tests"
cargo test --workspace

# Kamailio was once found gone by this point (connection refused, no log
# left to read). Say so with its log, and start a fresh one, rather than
# failing every interop test with "connection refused".
if ! kill -0 "$(cat "$OCS_KAMAILIO_DIR/kamailio.pid" 2>/dev/null)" 2>/dev/null; then
  echo "Kamailio on port $OCS_KAMAILIO_PORT has stopped; its log ends:" >&2
  tail -n 40 "$OCS_KAMAILIO_DIR/kamailio.log" >&2 || true
  scripts/kamailio.sh start
  set -a
  # shellcheck source=/dev/null # written by scripts/kamailio.sh start
  . target/kamailio.env
  set +a
fi

step "interop with Kamailio on 127.0.0.1:$OCS_KAMAILIO_PORT"
# The linphonec_ tests run in the next step.
cargo test -p ocs-core --test kamailio --test kamailio_presence -- --ignored --test-threads=1 --skip linphonec_
# The presence tracker in the standard dialect (ocs track).
cargo test -p ocs-examples --test track -- --ignored

step "a Kamailio restart: both clients notice, sign in again, watch again (its own Kamailio)"
# Prints one restart-recovery line per transport (README "Faults").
cargo test -p ocs-core --test kamailio_restart -- --ignored --test-threads=1 --nocapture

step "1,000 IMs through a lossy link and a Kamailio restart (our loss proxy, its own Kamailio)"
# Prints one loss-ims line per transport (README "Faults").
cargo test -p ocs-core --test kamailio_loss -- --ignored --test-threads=1 --nocapture

step "ocs track's HTML report in a real browser (Debian chromium, headless)"
if ! command -v chromium >/dev/null; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
fi
cargo test -p ocs-examples --test cli chromium -- --ignored

step "Kerberos sign-in against an MIT KDC (scripts/kdc.sh: installs krb5-kdc, libkrb5-dev, libclang-dev when missing; feature kerberos)"
scripts/kdc.sh start
(
  set -a
  # shellcheck source=/dev/null # written by scripts/kdc.sh start
  . target/kdc.env
  set +a
  cargo clippy -p ocs-core --features kerberos --lib --test kerberos_kdc -- -D warnings
  cargo clippy -p ocs-examples --features kerberos --bin ocs --test cli -- -D warnings
  cargo test -p ocs-core --features kerberos --test kerberos_kdc -- --ignored
  cargo test -p ocs-examples --features kerberos --test cli kerberos -- --ignored
)
scripts/kdc.sh stop

step "ocs track on PostgreSQL (scripts/postgres.sh: installs it when missing, a throw-away cluster)"
scripts/postgres.sh start
set -a
# shellcheck source=/dev/null # written by scripts/postgres.sh start
. target/postgres.env
set +a
cargo test -p ocs-examples --test track_postgres -- --ignored
scripts/postgres.sh stop

step "C API smoke test against Kamailio (bindings/c/run.sh: gcc, ocs.h, libocs_ffi.so)"
bindings/c/run.sh

step "C# wrapper test against Kamailio (bindings/csharp/run.sh: Debian mono-mcs; OCS_SKIP_CSHARP=1 skips it)"
if [ "${OCS_SKIP_CSHARP:-}" = 1 ]; then
  echo "skipped: OCS_SKIP_CSHARP=1"
else
  # Installs mono-mcs and mono-runtime when missing.
  bindings/csharp/run.sh \
    || { echo "the C# wrapper test failed; OCS_SKIP_CSHARP=1 skips this step" >&2; exit 1; }
fi

step "Python bindings against the embedded server and Kamailio (bindings/python/run.sh: maturin, pytest; OCS_SKIP_PYTHON=1 skips it)"
if [ "${OCS_SKIP_PYTHON:-}" = 1 ]; then
  echo "skipped: OCS_SKIP_PYTHON=1"
else
  # Makes a venv under target/ and pip-installs the pinned maturin and pytest.
  bindings/python/run.sh \
    || { echo "the Python bindings test failed; OCS_SKIP_PYTHON=1 skips this step" >&2; exit 1; }
fi

step "Kotlin and Swift bindings are generated (bindings/generate.sh; not compiled: no toolchains here)"
bindings/generate.sh

step "interop with linphonec (Debian linphone-cli; OCS_SKIP_LINPHONEC=1 skips it)"
if [ "${OCS_SKIP_LINPHONEC:-}" = 1 ]; then
  echo "skipped: OCS_SKIP_LINPHONEC=1"
else
  # Installs linphone-cli when missing (~95 packages, about 25 s with apt lists at hand).
  ocs-core/tests/peers/linphonec/run.sh install \
    || { echo "installing linphone-cli failed; OCS_SKIP_LINPHONEC=1 skips this step" >&2; exit 1; }
  if command -v linphonec >/dev/null; then
    OCS_LINPHONEC=1 cargo test -p ocs-core --test kamailio linphonec_ -- --ignored --test-threads=1
  else
    echo "skipped: linphonec is not installed"
  fi
fi

step "rustdoc: no broken links or warnings in the API docs"
# The libraries only: the examples' doc comments are command-line help text.
RUSTDOCFLAGS="-D warnings" cargo doc -p ocs-core -p ocs-ffi --no-deps

step "sans-IO core builds without tokio"
cargo check -p ocs-core --no-default-features
# ocs-ffi as mobile builds it: without the embedded test server.
cargo check -p ocs-ffi --no-default-features

step "Windows build of the live-registry policy source (policy::live, winreg)"
# Type-checks the cfg(windows) code without a Windows linker.
if rustup target list --installed 2>/dev/null | grep -q '^x86_64-pc-windows-gnu$' \
  || rustup target add x86_64-pc-windows-gnu; then
  cargo check -p ocs-core --no-default-features --target x86_64-pc-windows-gnu
else
  echo "skipped: rustup could not install the x86_64-pc-windows-gnu target" >&2
fi

step "the mobile build's DNS and HTTP: the platform's resolver, no SRV, the app's HTTP stack, none of its own (ocs-ffi without default features)"
cargo clippy -p ocs-ffi --no-default-features --features sim --all-targets -- -D warnings
cargo test -p ocs-ffi --no-default-features --features sim --test platform_dns --test host_http

step "mobile library size within 5 % of its budget, x86_64 and aarch64 (scripts/size.sh; budget in scripts/size-budget.txt)"
# aarch64 (Android's arm64-v8a architecture, glibc instead of Bionic: no NDK
# here) needs its standard library and Debian's cross compiler; when they
# cannot be installed, size.sh says so and measures the host only.
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu || echo "rustup could not add aarch64-unknown-linux-gnu"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null; } \
    || echo "could not install gcc-aarch64-linux-gnu"
fi
./scripts/size.sh

step "fuzz corpus replay (stable toolchain)"
(cd fuzz && cargo test)

step "all passed (target/ holds $(du -sh target | cut -f1))"
