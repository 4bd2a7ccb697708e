//! The embedded OCS-dialect test server (feature `sim`).
//!
//! No OCS 2007 R2 server can be had today, so tests, the quickstart and app
//! developers use this one. It is built on the same sans-IO pieces as the
//! client (messages, transactions, the server half of NTLM) and agrees with
//! the captured OC 2007 R2 traffic: its 200 OK to REGISTER reproduces T2
//! byte for byte.

pub mod presence;
pub mod registrar;
pub mod server;
pub mod web;

pub use presence::{Outgoing, PresenceError, PresenceReply, PresenceServer};
pub use registrar::{
    AuthMode, Binding, KerberosAcceptor, Registrar, RegistrarConfig, SignatureCheck,
};
pub use server::{Peer, SimServer};
