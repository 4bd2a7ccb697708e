//! `bindings/c/ocs.h` is committed; this test fails when it differs from a
//! fresh cbindgen run over this crate (settings in `cbindgen.toml`).
//!
//! After changing the C API, regenerate the header with
//! `OCS_BLESS=1 cargo test -p ocs-ffi --test header` and commit it.

use std::path::Path;

#[test]
fn committed_header_matches_cbindgen() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ocs-ffi/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("the header is UTF-8");
    let path = crate_dir.join("../bindings/c/ocs.h");
    if std::env::var_os("OCS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write bindings/c/ocs.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(fresh.lines().count()));
        panic!(
            "bindings/c/ocs.h is stale (first difference at line {}). Regenerate it with \
             `OCS_BLESS=1 cargo test -p ocs-ffi --test header` and commit it.",
            first + 1
        );
    }
}
