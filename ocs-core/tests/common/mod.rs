//! Helpers shared by integration tests (`mod common;` in each test file).
//! Not every test file uses every helper.
#![allow(dead_code)]

#[cfg(feature = "tokio")]
pub mod client;
#[cfg(feature = "tokio")]
pub mod dns;
#[cfg(feature = "tokio")]
pub mod http;
pub mod kamailio;
#[cfg(feature = "tokio")]
pub mod lossy;
pub mod pair;
pub mod pki;
