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
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(String),
    /// The server said no. Show `reason`/`diagnostics`; retry after
    /// `retry_after` when given.
    #[error("rejected by server: {status} {reason}{}", diagnostics.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Retry-After, when the server gave one.
        retry_after: Option<Duration>,
        /// Parsed ms-diagnostics or Warning.
        diagnostics: Option<Diagnostics>,
    },
    /// The caller used the API wrongly (e.g. unregister before register).
    #[error("API misuse: {0}")]
    ApiMisuse(String),
    /// A policy forbids the action.
    #[error("{policy} forbids this (value from {})", provenance.source)]
    PolicyDenied {
        /// The policy name, e.g. `DisableIM`.
        policy: String,
        /// Where its value came from.
        provenance: Provenance,
    },
    /// Authentication could not proceed (no usable scheme, bad challenge).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The transaction timed out or the transport failed (driver).
    #[error("transport: {0}")]
    Transport(String),
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

impl Error {
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
