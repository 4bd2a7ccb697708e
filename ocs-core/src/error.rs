//! The error taxonomy shared by the client layers (DESIGN.md "Errors").

use std::time::Duration;

use thiserror::Error;

use crate::sip::{Message, MsDiagnostics, ParseError};

/// A server's explanation attached to a failure: `ms-diagnostics`,
/// `ms-diagnostics-public`, `ms-client-diagnostics` or a `Warning`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics {
    /// The diagnostic id (`ErrorId`), or the warn-code for a Warning.
    pub code: Option<u32>,
    /// The human-readable reason.
    pub reason: Option<String>,
    /// The reporting server (`source=`), when given.
    pub source: Option<String>,
    /// Which header it came from.
    pub header: &'static str,
}

impl Diagnostics {
    /// Reads the most specific diagnostics a message carries: ms-diagnostics,
    /// then ms-diagnostics-public, then ms-client-diagnostics, then Warning.
    pub fn from_message(m: &Message) -> Option<Diagnostics> {
        let from_ms = |d: MsDiagnostics<'_>, header| Diagnostics {
            code: Some(d.code),
            reason: d.reason().map(|r| r.into_owned()),
            source: d.source().map(|s| s.into_owned()),
            header,
        };
        if let Ok(Some(d)) = m.ms_diagnostics() {
            return Some(from_ms(d, "ms-diagnostics"));
        }
        if let Ok(Some(d)) = m.ms_diagnostics_public() {
            return Some(from_ms(d, "ms-diagnostics-public"));
        }
        if let Ok(Some(d)) = m.ms_client_diagnostics() {
            return Some(from_ms(d, "ms-client-diagnostics"));
        }
        if let Ok(w) = m.warnings()
            && let Some(w) = w.into_iter().next()
        {
            return Some(Diagnostics {
                code: Some(u32::from(w.code)),
                reason: Some(w.text.into_owned()),
                source: Some(w.agent.to_owned()),
                header: "Warning",
            });
        }
        None
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.reason) {
            (Some(c), Some(r)) => write!(f, "{r} ({} {c})", self.header),
            (Some(c), None) => write!(f, "{} {c}", self.header),
            (None, Some(r)) => f.write_str(r),
            (None, None) => f.write_str(self.header),
        }
    }
}

/// Where an effective policy value came from (filled in by the policy
/// layer; here so errors can name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// HKLM, HKCU, in-band, options or default.
    pub source: String,
    /// File and line, or another locator.
    pub from: Option<String>,
}

/// Everything that can go wrong in the client, by what the caller does
/// about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Input bytes or a document could not be parsed. Fix the input.
    #[error("parse error: {0}")]
    Parse(#[from] ParseError),
    /// The peer broke the protocol (bad signature, impossible state). The
    /// connection is not trustworthy: reconnect or report.
    #[error("peer misbehaved: {detail}")]
    PeerMisbehaved {
        /// What kind of violation.
        kind: Misbehavior,
        /// What exactly, in words.
        detail: String,
    },
    /// The server said no. Show `reason`/`diagnostics`; retry after
    /// `retry_after` when given.
    #[error("rejected by server: {}{reason}{}", if *status == 0 { String::new() } else { format!("{status} ") }, diagnostics.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        /// Status code; 0 when the server ended something in a NOTIFY
        /// (`Subscription-State: terminated`) rather than a response.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Retry-After, when the server gave one.
        retry_after: Option<Duration>,
        /// Parsed ms-diagnostics or Warning.
        diagnostics: Option<Diagnostics>,
    },
    /// The caller used the API wrongly (e.g. unregister before register).
    #[error("API misuse: {detail}")]
    ApiMisuse {
        /// What kind of mistake.
        kind: Misuse,
        /// What exactly, in words.
        detail: String,
    },
    /// A policy forbids the action.
    #[error("{policy} forbids this (value from {})", provenance.source)]
    PolicyDenied {
        /// The policy name, e.g. `DisableIM`.
        policy: String,
        /// Where its value came from.
        provenance: Provenance,
    },
    /// Authentication could not proceed (no usable scheme, bad challenge).
    #[error("authentication failed: {detail}")]
    Auth {
        /// Why.
        kind: AuthFailure,
        /// What exactly, in words.
        detail: String,
    },
    /// The transaction timed out or the transport failed (driver).
    #[error("transport: {detail}")]
    Transport {
        /// Which step failed.
        kind: TransportFailure,
        /// What exactly, in words (the step and the target).
        detail: String,
    },
    /// The client has stopped (signed out, or failed for good) or is
    /// signing out: the command was not, or not completely, carried out.
    #[error("the client has stopped")]
    Stopped,
    /// The app cancelled the command before it completed (e.g. `unwatch`
    /// before the server accepted the watch).
    #[error("cancelled")]
    Cancelled,
    /// An instant message was not delivered: why, and the server's detail.
    #[error("not delivered: {reason}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    NotDelivered {
        /// Why (offline, do not disturb, blocked by policy, ...).
        reason: crate::im::outcome::FailureReason,
        /// The status and diagnostics the server gave.
        detail: String,
    },
}

/// Which step of getting a message across failed ([`Error::Transport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// There is no connection to send on.
    NotConnected,
    /// Finding or reaching the server failed (DNS, TCP connect, TLS
    /// handshake).
    Connect,
    /// No answer in time (a transaction's timer or a deadline).
    TimedOut,
    /// The connection dropped.
    ConnectionLost,
    /// The machine could not provide what the client needs (DNS settings,
    /// randomness).
    System,
}

/// Why authentication could not proceed ([`Error::Auth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The server's challenge is malformed or incomplete.
    BadChallenge,
    /// The server offers no scheme this client speaks.
    NoUsableScheme,
    /// Credentials are missing or were refused.
    CredentialsNeeded,
    /// The mechanism itself failed (NTLM, Kerberos, Digest computation, or
    /// a handshake that does not finish).
    Mechanism,
}

/// What kind of protocol violation the peer committed
/// ([`Error::PeerMisbehaved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misbehavior {
    /// A message that must be signed is not, or its signature is wrong.
    BadSignature,
    /// A document (XML, token) the peer sent does not parse.
    BadDocument,
    /// An answer the protocol does not allow at this point.
    BadAnswer,
    /// Redirects that do not end.
    RedirectLoop,
}

/// What kind of mistake the caller made ([`Error::ApiMisuse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Misuse {
    /// An argument is not valid (a malformed URI, an unknown group).
    BadArgument,
    /// The call does not fit the current state (already in flight,
    /// signing out).
    WrongState,
    /// The dialect or configuration does not offer this.
    NotSupported,
}

impl TransportFailure {
    /// The kind of a failed transaction.
    pub fn of(f: &crate::transaction::TxFailure) -> TransportFailure {
        match f {
            crate::transaction::TxFailure::TransportError => TransportFailure::ConnectionLost,
            _ => TransportFailure::TimedOut,
        }
    }
}

impl Error {
    /// A [`Error::Transport`].
    pub fn transport(kind: TransportFailure, detail: impl Into<String>) -> Error {
        Error::Transport {
            kind,
            detail: detail.into(),
        }
    }

    /// An [`Error::Auth`].
    pub fn auth(kind: AuthFailure, detail: impl Into<String>) -> Error {
        Error::Auth {
            kind,
            detail: detail.into(),
        }
    }

    /// An [`Error::PeerMisbehaved`].
    pub fn misbehaved(kind: Misbehavior, detail: impl Into<String>) -> Error {
        Error::PeerMisbehaved {
            kind,
            detail: detail.into(),
        }
    }

    /// An [`Error::ApiMisuse`].
    pub fn misuse(kind: Misuse, detail: impl Into<String>) -> Error {
        Error::ApiMisuse {
            kind,
            detail: detail.into(),
        }
    }

    /// A [`Error::Rejected`] for something the server ended in a NOTIFY
    /// (status 0).
    pub fn ended_by_server(reason: impl Into<String>) -> Error {
        Error::Rejected {
            status: 0,
            reason: reason.into(),
            retry_after: None,
            diagnostics: None,
        }
    }

    /// A `Rejected` error built from a final response.
    pub fn rejected(resp: &Message) -> Error {
        Error::Rejected {
            status: resp.status().unwrap_or(0),
            reason: resp.reason().unwrap_or("").to_owned(),
            retry_after: resp
                .retry_after()
                .ok()
                .flatten()
                .map(|r| Duration::from_secs(u64::from(r.seconds))),
            diagnostics: Diagnostics::from_message(resp),
        }
    }
}

/// A deadline as people write it in an error: `10 s`, `1500 ms`.
pub(crate) fn show_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
