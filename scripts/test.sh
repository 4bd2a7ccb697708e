#!/usr/bin/env bash
# The project's whole test suite: the one command README.md gives and
# .ci/run calls. It installs what is missing, starts the servers the
# interop tests use, and stops them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

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
trap 'scripts/kamailio.sh stop' EXIT
scripts/kamailio.sh start
set -a
# shellcheck source=/dev/null # written by scripts/kamailio.sh start
. target/kamailio.env
set +a

step "tests"
cargo test --workspace

step "interop with Kamailio on 127.0.0.1:$OCS_KAMAILIO_PORT"
OCS_KAMAILIO_PORT=$OCS_KAMAILIO_PORT cargo test -p ocs-core --test kamailio -- --ignored --test-threads=1

step "sans-IO core builds without tokio"
cargo check -p ocs-core --no-default-features

step "fuzz corpus replay (stable toolchain)"
(cd fuzz && cargo test)

step "all passed"
