#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings of ocs-ffi (uniffi, namespace `ocs`)
# into target/bindings/kotlin and target/bindings/swift with the workspace's
# own uniffi-bindgen (ocs-ffi/uniffi-bindgen), and checks that the files are
# there and name the API. They are not compiled here: this machine has no
# Kotlin or Swift toolchain (see bindings/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p ocs-ffi
cargo build -p ocs-uniffi-bindgen --features cli
# The debug library: bindgen reads the metadata from its symbol table, which
# a stripped library no longer has.
lib=target/debug/libocs_ffi.so
out=target/bindings
rm -rf "$out/kotlin" "$out/swift"
for lang in kotlin swift; do
  target/debug/ocs-uniffi-bindgen generate --no-format --library "$lib" \
    --language "$lang" --out-dir "$out/$lang"
done

fail=0
check() { # FILE PATTERN...
  local f=$1
  shift
  if [ ! -s "$f" ]; then
    echo "FAIL: $f was not generated" >&2
    fail=1
    return
  fi
  for p in "$@"; do
    grep -q -- "$p" "$f" || { echo "FAIL: $f lacks '$p'" >&2; fail=1; }
  done
  echo "ok: $f ($(stat -c %s "$f") bytes)"
}
# HttpTransport: the app's HTTP stack (OkHttp, URLSession), which the mobile
# build needs for its web requests.
check "$out/kotlin/uniffi/ocs/ocs.kt" "class OcsClient" "suspend fun \`signIn\`" \
  "interface PresenceListener" "class OcsException" \
  "interface HttpTransport" "fun \`withHttp\`" "class HttpResponder"
check "$out/swift/ocs.swift" "class OcsClient" "func signIn() async throws" \
  "protocol PresenceListener" "enum OcsError" \
  "protocol HttpTransport" "func withHttp(" "class HttpResponder"
check "$out/swift/ocsFFI.h" "uniffi_ocs_ffi_fn_constructor_ocsclient_new"
check "$out/swift/ocsFFI.modulemap" "ocsFFI"
exit "$fail"
