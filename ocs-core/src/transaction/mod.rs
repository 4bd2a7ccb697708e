//! RFC 3261 §17 transactions, sans-IO.
//!
//! [`ClientTransaction`] and [`ServerTransaction`] are the four state
//! machines of §17 (INVITE and non-INVITE, client and server) with the
//! timers of §17 and Table 4, plus the RFC 6026 "Accepted" state for
//! INVITE servers so 2xx retransmissions and stray ACKs are absorbed.
//! [`Transactions`] matches incoming messages to them (§17.1.3, §17.2.3).
//!
//! Time is passed in: feed `handle_timeout(now)` whenever `poll_timeout()`
//! is reached. Nothing here reads the clock, so a 64·T1 timeout test runs
//! in microseconds.
//!
//! Method groups, as everywhere in the core: getters (`&self`), inputs
//! `handle_*`, commands (`send_*`), outputs `poll_*`. After any input or
//! command, drain `poll_event` and re-read `poll_timeout`.

mod client;
mod server;
mod table;

use std::time::Duration;

pub use client::{ClientEvent, ClientState, ClientTransaction};
pub use server::{ServerEvent, ServerState, ServerTransaction};
pub use table::{DEFAULT_MAX_SERVER_TRANSACTIONS, Incoming, Transactions, TxEvent, TxId};

/// The timer base values of RFC 3261 Table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE
    /// responses (default 4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1, the transaction timeout (Timers B, F, H, J, L).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Whether the transport retransmits for us (TCP/TLS) or not (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP: the transaction retransmits.
    Unreliable,
    /// TCP/TLS: no retransmissions, zero-length wait timers.
    Reliable,
}

impl Reliability {
    pub(crate) fn is_reliable(self) -> bool {
        self == Reliability::Reliable
    }
}

/// Why a transaction ended without a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxFailure {
    /// Timer B or F fired: no final response in 64·T1. The TU treats it as
    /// a 408 (§8.1.3.1).
    Timeout,
    /// Timer H fired: a final non-2xx response to an INVITE was never
    /// acknowledged.
    NoAck,
    /// The transport reported an error (§17.1.4); the TU treats it as 503.
    TransportError,
}
