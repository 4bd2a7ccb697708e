//! Server transactions (RFC 3261 §17.2, with the RFC 6026 Accepted state).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Reliability, TimerConfig, TxFailure};
use crate::sip::{Message, Method, builder};

/// Server transaction states (§17.2.1 Figure 7 as amended by RFC 6026,
/// §17.2.2 Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, nothing sent yet.
    Trying,
    /// A provisional response was sent (INVITE starts here).
    Proceeding,
    /// INVITE answered with 2xx; absorbing INVITE retransmissions and
    /// retransmitting the 2xx until the ACK arrives (RFC 6026).
    Accepted,
    /// A final response was sent; absorbing retransmissions.
    Completed,
    /// INVITE: the ACK for a non-2xx final response arrived.
    Confirmed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// What a server transaction tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Send these bytes back towards the request's sender.
    Transmit(Vec<u8>),
    /// The ACK for our non-2xx final response arrived.
    Acknowledged,
    /// The transaction failed (Timer H: no ACK; or a transport error).
    Failed(TxFailure),
    /// The transaction has ended.
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Send 100 Trying if the TU has not answered an INVITE within 200 ms.
    Trying100,
    /// G: retransmit the final response (unreliable), also the 2xx in
    /// Accepted.
    Retransmit,
    /// H: give up waiting for ACK; L: leave Accepted.
    Timeout,
    /// I / J: leave Confirmed / Completed.
    Wait,
}

/// One server transaction.
#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    state: ServerState,
    request: Message,
    last_response: Option<Vec<u8>>,
    reliability: Reliability,
    cfg: TimerConfig,
    interval: Duration,
    timers: Vec<(Timer, Instant)>,
    events: VecDeque<ServerEvent>,
}

impl ServerTransaction {
    /// Creates the transaction for a new request (not ACK).
    pub fn new(
        request: Message,
        reliability: Reliability,
        cfg: TimerConfig,
        now: Instant,
    ) -> ServerTransaction {
        let invite = request.method() == Some(&Method::Invite);
        let mut tx = ServerTransaction {
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            request,
            last_response: None,
            reliability,
            cfg,
            interval: cfg.t1,
            timers: Vec::new(),
            events: VecDeque::new(),
        };
        if invite {
            tx.set(Timer::Trying100, now + Duration::from_millis(200));
        }
        tx
    }

    // ----- getters -------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The request that created the transaction.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// True once the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    // ----- commands --------------------------------------------------------

    /// Sends a response from the TU. Responses after the final one are
    /// ignored (returns false), as §17.2 requires.
    pub fn send_response(&mut self, resp: &Message, now: Instant) -> bool {
        let Some(code) = resp.status() else {
            return false;
        };
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return false;
        }
        let wire = resp.to_bytes();
        self.events.push_back(ServerEvent::Transmit(wire.clone()));
        self.last_response = Some(wire);
        self.clear(Timer::Trying100);
        match code {
            100..=199 => self.state = ServerState::Proceeding,
            200..=299 if self.invite => {
                self.state = ServerState::Accepted;
                if !self.reliability.is_reliable() {
                    self.interval = self.cfg.t1;
                    self.set(Timer::Retransmit, now + self.interval);
                }
                self.set(Timer::Timeout, now + self.cfg.timeout());
            }
            _ if self.invite => {
                self.state = ServerState::Completed;
                if !self.reliability.is_reliable() {
                    self.interval = self.cfg.t1;
                    self.set(Timer::Retransmit, now + self.interval);
                }
                self.set(Timer::Timeout, now + self.cfg.timeout());
            }
            _ => {
                self.state = ServerState::Completed;
                if self.reliability.is_reliable() {
                    self.terminate();
                } else {
                    self.set(Timer::Wait, now + self.cfg.timeout());
                }
            }
        }
        true
    }

    // ----- inputs ---------------------------------------------------------

    /// A retransmission of the request (or, for INVITE, the ACK of a
    /// non-2xx response) matched to this transaction.
    pub fn handle_request(&mut self, req: &Message, now: Instant) {
        if req.method() == Some(&Method::Ack) {
            if self.invite && self.state == ServerState::Completed {
                self.state = ServerState::Confirmed;
                self.timers.clear();
                self.events.push_back(ServerEvent::Acknowledged);
                if self.reliability.is_reliable() {
                    self.terminate();
                } else {
                    self.set(Timer::Wait, now + self.cfg.t4);
                }
            }
            return;
        }
        match self.state {
            ServerState::Proceeding | ServerState::Completed | ServerState::Accepted => {
                if let Some(r) = &self.last_response {
                    // In Accepted the 2xx is retransmitted by its own timer;
                    // RFC 6026 §7.1 says absorb the INVITE there.
                    if self.state != ServerState::Accepted {
                        self.events.push_back(ServerEvent::Transmit(r.clone()));
                    }
                }
            }
            _ => {}
        }
    }

    /// The ACK for our 2xx arrived (the owner matches it by dialog, since
    /// it is a separate transaction, §17.1.1.3): stop retransmitting.
    pub fn handle_2xx_ack(&mut self) {
        if self.state == ServerState::Accepted {
            self.terminate();
        }
    }

    /// Advances timers up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(i) = self.timers.iter().position(|(_, at)| *at <= now) {
            let (t, _) = self.timers.remove(i);
            match t {
                Timer::Trying100 => {
                    if self.state == ServerState::Proceeding
                        && self.last_response.is_none()
                        && let Ok(trying) = builder::response(&self.request, 100, None, None)
                    {
                        let wire = trying.to_bytes();
                        self.events.push_back(ServerEvent::Transmit(wire.clone()));
                        self.last_response = Some(wire);
                    }
                }
                Timer::Retransmit => {
                    if matches!(self.state, ServerState::Completed | ServerState::Accepted) {
                        if let Some(r) = &self.last_response {
                            self.events.push_back(ServerEvent::Transmit(r.clone()));
                        }
                        self.interval = (self.interval * 2).min(self.cfg.t2);
                        self.set(Timer::Retransmit, now + self.interval);
                    }
                }
                Timer::Timeout => {
                    if self.state == ServerState::Completed {
                        self.events.push_back(ServerEvent::Failed(TxFailure::NoAck));
                    }
                    self.terminate();
                }
                Timer::Wait => self.terminate(),
            }
        }
    }

    /// The transport failed while sending a response (§17.2.4).
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerState::Terminated {
            self.events
                .push_back(ServerEvent::Failed(TxFailure::TransportError));
            self.terminate();
        }
    }

    // ----- outputs ---------------------------------------------------------

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|(_, at)| *at).min()
    }

    fn set(&mut self, t: Timer, at: Instant) {
        self.clear(t);
        self.timers.push((t, at));
    }

    fn clear(&mut self, t: Timer) {
        self.timers.retain(|(x, _)| *x != t);
    }

    fn terminate(&mut self) {
        if self.state != ServerState::Terminated {
            self.state = ServerState::Terminated;
            self.timers.clear();
            self.events.push_back(ServerEvent::Terminated);
        }
    }
}
