//! # ocs-core
//!
//! An Office Communicator 2007 R2 client in a library: sign in to an OCS
//! 2007 R2 (or Lync/Skype for Business) front end with NTLM and MS-SIPAE
//! signing, publish and watch presence, exchange instant messages, keep the
//! contact list, download the address book and obey Communicator's client
//! policies. It speaks plain SIP/SIMPLE to open servers such as Kamailio
//! too.
//!
//! Sign in two users to the embedded test server, watch and send an IM:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sim = ocs_core::start_test_server("contoso.com", &[("alice", "alicepw"), ("bob", "bobpw")]).await?;
//! # let server = sim.tcp.to_string();
//! use ocs_core::{Client, ClientConfig, ClientEvent, ImEvent, Transport};
//!
//! let config = |user: &str| {
//!     ClientConfig::builder(&format!("sip:{user}@contoso.com"))
//!         .credentials(&format!("CONTOSO\\{user}"), &format!("{user}pw"))
//!         .server(&server, Transport::Tcp)
//!         .build()
//! };
//! let mut alice = Client::start(config("alice")?)?;
//! let mut bob = Client::start(config("bob")?)?;
//! alice.signed_in().await?;
//! bob.signed_in().await?;
//! alice.watch("sip:bob@contoso.com").await?.outcome().await?;
//! // Every command has an id and exactly one outcome: it can be awaited,
//! // and it is reported as an event too.
//! let sent = alice.send_im("sip:bob@contoso.com", "hello bob").await?;
//! let id = sent.id;
//! while let Some(e) = alice.next_event().await {
//!     if e == ClientEvent::Im(ImEvent::Delivered { id }) {
//!         break;
//!     }
//! }
//! sent.outcome().await?;
//! # Ok(()) }
//! ```
//!
//! ## Where things are
//!
//! - [`Client`] (feature `tokio`, default) runs a session on a tokio
//!   runtime: [`ClientConfig::builder`] configures it, its
//!   [`ClientHandle`] commands (`send_im`, `set_status`, `watch`,
//!   `add_contact`, `sign_out`, ...) can be used from any task (the ones
//!   that start something return a [`Pending`]: its id now, its outcome
//!   to await), and
//!   [`ClientEvent`]s report what happened: sign-in
//!   ([`RegistrationEvent`]), IM ([`ImEvent`], every [`MessageId`] ends
//!   delivered or failed), presence ([`PresenceEvent`]), provisioning,
//!   the address book. Errors are an [`Error`] taxonomy.
//! - [`Session`] is the same session sans-IO: bytes, time and I/O results
//!   in; bytes, I/O requests, events and one deadline out. Use it to run
//!   on another runtime, or to test a whole session on a simulated clock.
//! - [`policy`] reads Communicator's registry policies (`.reg`, ADM) with
//!   provenance; [`customstates`] the custom presence states; [`presence`],
//!   [`im`], [`sip`] the documents and messages underneath.
//! - [`start_test_server`] (feature `sim`) runs the embedded OCS-dialect
//!   server on loopback.
//!
//! Nothing outside [`driver`] performs I/O or reads the clock; see
//! `ARCHITECTURE.md` at the repository root for the layers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod addressbook;
pub mod auth;
pub mod autodiscover;
pub mod certprov;
pub mod client;
pub mod customstates;
pub mod diag;
pub mod dialog;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod im;
mod log;
pub mod messaging;
pub mod oauth;
pub mod policy;
pub mod presence;
pub mod presence_agent;
pub mod provisioning;
pub mod provisioning_agent;
mod queue;
pub mod register;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sip;
pub mod trace;
pub mod transaction;
pub mod utc;
pub mod webticket;

/// The tokio driver: sockets, DNS discovery, timers.
#[cfg(feature = "tokio")]
pub mod driver;

pub use auth::epid::Epid;
pub use client::{AddressBookEvent, Client as Session, ClientEvent, Config as SessionConfig};
pub use discovery::{Dialect, ServerConfig, Transport};
#[cfg(all(feature = "tokio", feature = "sim"))]
pub use driver::sim::{SimHandle as TestServer, serve_users as start_test_server};
#[cfg(feature = "tokio")]
pub use driver::{
    Client, ClientConfig, ClientConfigBuilder, ClientHandle, Pending, TlsSettings, TraceConfig,
};
pub use error::{Error, Provenance};
pub use im::outcome::FailureReason;
pub use messaging::{ImEvent, MessageId};
pub use policy::EffectivePolicy;
pub use presence::model::{Availability, Presence, State};
pub use presence_agent::{ContactOpId, ContactRequest, Meeting, PresenceEvent, PublishId, WatchId};
pub use provisioning_agent::ProvisioningEvent;
pub use register::{Credentials, CredentialsReason, RegistrationEvent};
