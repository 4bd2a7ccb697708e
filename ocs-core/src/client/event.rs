//! What a [`super::Client`] reports: one event type for every host (the
//! tokio driver passes them on unchanged, the FFI converts them).

use std::net::SocketAddr;
use std::time::Duration;

use crate::customstates::{CustomStates, Violation};
use crate::discovery::Transport;
use crate::error::AuthFailure;
use crate::error::Error;
use crate::messaging::ImEvent;
use crate::presence_agent::PresenceEvent;
use crate::provisioning_agent::ProvisioningEvent;
use crate::register::RegistrationEvent;

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Connected to a server.
    Connected {
        /// The host the certificate was checked against.
        host: String,
        /// The server's address.
        addr: SocketAddr,
        /// The transport.
        transport: Transport,
        /// How the server was found (e.g. `SRV _sipinternaltls._tcp.contoso.com`).
        source: String,
        /// Our local address.
        local: SocketAddr,
    },
    /// A connection attempt failed; the next candidate or a retry follows.
    ConnectFailed {
        /// Which server.
        target: String,
        /// Why.
        error: String,
    },
    /// The connection dropped. A signed-in session keeps trying (jittered
    /// exponential back-off, [`RegistrationEvent::RetryScheduled`] for each
    /// wait) and reports [`ClientEvent::Reconnected`] once signed in again.
    Disconnected(String),
    /// Signed in again after [`ClientEvent::Disconnected`]: registered anew
    /// (the `Registered` event came just before), watches and publications
    /// are being renewed.
    Reconnected {
        /// From the disconnect to the new registration.
        down_for: Duration,
        /// Sign-in attempts it took (1: the first retry succeeded).
        attempts: u32,
    },
    /// A registration event (registered, credentials needed, failed, ...).
    Registration(RegistrationEvent),
    /// A message failed MS-SIPAE verification and was dropped.
    SecurityViolation(String),
    /// An instant-messaging event (delivered, failed, received, typing...).
    Im(ImEvent),
    /// A presence event (a contact changed, our publication went out...).
    Presence(PresenceEvent),
    /// The custom states from `CustomStateURL` (after sign-in or
    /// `reload_custom_states`); they replace any earlier set.
    CustomStates {
        /// The valid states (at most four).
        states: CustomStates,
        /// Problems in the file; the states with problems were dropped.
        warnings: Vec<Violation>,
    },
    /// Loading `CustomStateURL` failed (refused URL, HTTP status, timeout,
    /// too large, untrusted certificate...). Only the standard states
    /// remain (or the previously loaded custom ones).
    CustomStatesFailed {
        /// The URL (empty when none is configured).
        url: String,
        /// Why.
        error: String,
    },
    /// The client task has ended (after sign-out or a fatal failure).
    Stopped,
    /// Writing the SIP trace failed; tracing stops, the client goes on.
    TraceFailed(String),
    /// In-band provisioning arrived (OCS dialect, after sign-in) or could
    /// not be fetched.
    Provisioning(ProvisioningEvent),
    /// The address-book download's progress.
    AddressBook(AddressBookEvent),
}

/// What the address-book download reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressBookEvent {
    /// The book is ready to search: read from the folder at start, or
    /// downloaded (`fetched` names the file; `None`: already current).
    Ready {
        /// Number of entries.
        entries: usize,
        /// The day it is current to (`F-XXXX`/`D-…-XXXX`).
        day: String,
        /// The file downloaded, if any.
        fetched: Option<String>,
    },
    /// A download failed; it is retried after `retry_in`.
    Failed {
        /// Why.
        error: String,
        /// Failures in a row.
        failures: u32,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// Downloads have failed for 24 hours (raised once per streak, as
    /// Communicator tells the user).
    FailingForADay {
        /// How long downloads have failed.
        failing_for: Duration,
        /// The last error.
        error: String,
    },
}

impl ClientEvent {
    /// Whether this event ends the first sign-in: `Ok` when signed in,
    /// the reason when it failed (refused, out of time, credentials
    /// missing or refused, the client stopped); `None` for any other
    /// event. Read only until the first `Some`: later events of the same
    /// kinds belong to refreshes and re-registrations.
    pub fn sign_in_outcome(&self) -> Option<Result<(), Error>> {
        match self {
            ClientEvent::Registration(RegistrationEvent::Registered { .. }) => Some(Ok(())),
            ClientEvent::Registration(RegistrationEvent::Failed(err)) => Some(Err(err.clone())),
            ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { realm, reason }) => {
                Some(Err(Error::auth(
                    AuthFailure::CredentialsNeeded,
                    format!("{realm}: credentials {reason:?}"),
                )))
            }
            ClientEvent::Stopped => Some(Err(Error::Stopped)),
            _ => None,
        }
    }
}
