//! uniffi-bindgen built from the workspace's own uniffi, so the generated
//! Python, Kotlin and Swift code always matches the scaffolding compiled
//! into ocs-ffi (the two refuse to talk across versions).
//!
//! ```sh
//! cargo build -p ocs-ffi
//! cargo run -p ocs-uniffi-bindgen --features cli -- generate \
//!     --library target/debug/libocs_ffi.so --language kotlin --out-dir target/bindings/kotlin
//! ```

fn main() {
    uniffi::uniffi_bindgen_main();
}
