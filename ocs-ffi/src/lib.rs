//! # ocs-ffi
//!
//! The thin foreign-function facade over [`ocs_core`]: uniffi objects for
//! Python, Kotlin and Swift ([`uniffi_api`]), and a C API (cbindgen,
//! [`c`]) for C, C# (Outlook add-ins) and anything else that speaks C. It holds no protocol logic:
//! every function is a conversion plus a call into the core's driver, run on
//! one static tokio runtime.
//!
//! Errors from the core are flattened into the few kinds a host branches on
//! (`uniffi_api::OcsError`, and the C API's numbered `OcsResult` codes).
#![warn(missing_docs)]

use std::sync::OnceLock;

#[cfg(feature = "c-api")]
pub mod c;
pub mod host_http;
pub mod uniffi_api;

// The uniffi scaffolding for the Python, Kotlin and Swift bindings
// (namespace `ocs`); the exported items are in `uniffi_api`.
uniffi::setup_scaffolding!("ocs");

/// The one runtime every client of this library runs on. Hosts call in
/// from any thread; the runtime owns the I/O.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ocs")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the ocs runtime: {e}"))
    })
}
