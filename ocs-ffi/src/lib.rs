//! ocs FFI facade (uniffi + C API); grows with the client API.
