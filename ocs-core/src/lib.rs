//! # ocs-core
//!
//! The sans-IO core of **ocs**, an Office Communicator 2007 R2 compatible
//! SIP/SIMPLE client library. Nothing in this crate (outside the optional
//! `tokio` driver) performs I/O or reads the clock: state machines are fed
//! bytes and an `Instant`, and polled for what to send, what happened and
//! when to wake them next. See `ARCHITECTURE.md` at the repository root.
//!
//! Layers, bottom up:
//! - [`sip`]: messages (parse, typed headers, print, build), URIs, multipart
//!   bodies, stream framing and request validation;
//! - [`transaction`]: RFC 3261 client and server transactions with timers;
//! - [`auth`]: NTLMv2 (MS-SIPAE connectionless), Digest, signature buffers, epid;
//! - [`rng`]: the seedable randomness used for tags, Call-IDs and branches.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod addressbook;
pub mod auth;
pub mod client;
pub mod customstates;
pub mod diag;
pub mod dialog;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod im;
pub mod messaging;
pub mod policy;
pub mod presence;
pub mod presence_agent;
pub mod provisioning;
pub mod provisioning_agent;
pub mod register;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sip;
pub mod trace;
pub mod transaction;

/// The tokio driver: sockets, DNS discovery, timers.
#[cfg(feature = "tokio")]
pub mod driver;
