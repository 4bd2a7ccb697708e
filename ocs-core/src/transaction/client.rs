//! Client transactions (RFC 3261 §17.1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Reliability, TimerConfig, TxFailure};
use crate::sip::{HeaderName, Message, Method};

/// Client transaction states (§17.1.1 Figure 5, §17.1.2 Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing heard yet.
    Calling,
    /// Non-INVITE sent, nothing heard yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions.
    Completed,
    /// Done; the transaction can be dropped.
    Terminated,
}

/// What a client transaction tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Send these bytes to the request's destination (the request, a
    /// retransmission of it, or the ACK again for a retransmitted non-2xx
    /// INVITE response).
    Transmit(Vec<u8>),
    /// The ACK for a non-2xx final INVITE response (§17.1.1.3), as a
    /// message: the owner finishes it (signs it, MS-SIPAE), sends it, and
    /// hands the bytes back with [`ClientTransaction::ack_sent`] so that
    /// retransmitted responses are answered with the same bytes.
    Ack(Message),
    /// A response for the transaction user (each provisional and the first
    /// final response; retransmitted finals are absorbed).
    Response(Message),
    /// The transaction failed without a final response.
    Failed(TxFailure),
    /// The transaction has ended.
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A (INVITE) / E (non-INVITE): retransmit.
    Retransmit,
    /// B / F: give up.
    Timeout,
    /// D / K: leave Completed.
    Wait,
}

/// One client transaction.
#[derive(Debug)]
pub struct ClientTransaction {
    invite: bool,
    state: ClientState,
    request: Message,
    wire: Vec<u8>,
    /// The ACK of a non-2xx final response, and the bytes it was sent as.
    ack: Option<(Message, Option<Vec<u8>>)>,
    reliability: Reliability,
    cfg: TimerConfig,
    interval: Duration,
    timers: Vec<(Timer, Instant)>,
    events: VecDeque<ClientEvent>,
}

impl ClientTransaction {
    /// Starts a transaction for `request` and queues its first
    /// transmission. ACK is not a transaction (§17.1): send it directly.
    pub fn new(
        request: Message,
        reliability: Reliability,
        cfg: TimerConfig,
        now: Instant,
    ) -> ClientTransaction {
        let invite = request.method() == Some(&Method::Invite);
        let wire = request.to_bytes();
        let mut tx = ClientTransaction {
            invite,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            request,
            wire: wire.clone(),
            ack: None,
            reliability,
            cfg,
            interval: cfg.t1,
            timers: Vec::new(),
            events: VecDeque::new(),
        };
        tx.events.push_back(ClientEvent::Transmit(wire));
        if !reliability.is_reliable() {
            tx.set(Timer::Retransmit, now + cfg.t1);
        }
        tx.set(Timer::Timeout, now + cfg.timeout());
        tx
    }

    // ----- getters -------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// True once the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    // ----- inputs ---------------------------------------------------------

    /// A response matched to this transaction (§17.1.3).
    pub fn handle_response(&mut self, resp: Message, now: Instant) {
        let Some(code) = resp.status() else { return };
        match (self.state, code) {
            (ClientState::Terminated, _) => {}
            (ClientState::Calling | ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                if self.state != ClientState::Proceeding {
                    self.state = ClientState::Proceeding;
                    if self.invite {
                        // Timer A stops once anything is heard (§17.1.1.2).
                        self.clear(Timer::Retransmit);
                    } else if !self.reliability.is_reliable() {
                        // Timer E continues at T2 in Proceeding (§17.1.2.2).
                        self.interval = self.cfg.t2;
                    }
                }
                if self.invite {
                    // Timer B only guards Calling; in Proceeding the TU
                    // decides how long to wait and may CANCEL (§17.1.1.2).
                    self.clear(Timer::Timeout);
                }
                self.events.push_back(ClientEvent::Response(resp));
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if self.invite => {
                // The TU acknowledges 2xx itself (§13.2.2.4).
                self.events.push_back(ClientEvent::Response(resp));
                self.terminate();
            }
            (ClientState::Calling | ClientState::Proceeding, 300..=699) if self.invite => {
                let ack = self.build_ack(&resp);
                self.events.push_back(ClientEvent::Ack(ack.clone()));
                self.ack = Some((ack, None));
                self.events.push_back(ClientEvent::Response(resp));
                // Timer D: at least 32 s on unreliable transports.
                self.enter_completed(now, Duration::from_secs(32));
            }
            (ClientState::Completed, 300..=699) if self.invite => {
                // Retransmitted final response: resend the ACK, absorb.
                match &self.ack {
                    Some((_, Some(wire))) => {
                        self.events.push_back(ClientEvent::Transmit(wire.clone()))
                    }
                    // The owner never sent it: ask again.
                    Some((ack, None)) => self.events.push_back(ClientEvent::Ack(ack.clone())),
                    None => {}
                }
            }
            (ClientState::Trying | ClientState::Proceeding, 200..=699) if !self.invite => {
                self.events.push_back(ClientEvent::Response(resp));
                self.enter_completed(now, self.cfg.t4);
            }
            _ => {}
        }
    }

    /// The owner sent the ACK of [`ClientEvent::Ack`] as `wire`; later
    /// retransmitted final responses are answered with these bytes.
    pub fn ack_sent(&mut self, wire: Vec<u8>) {
        if let Some((_, w)) = &mut self.ack {
            *w = Some(wire);
        }
    }

    /// Advances timers up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(i) = self.timers.iter().position(|(_, at)| *at <= now) {
            let (t, _) = self.timers.remove(i);
            match t {
                Timer::Retransmit => {
                    if matches!(
                        self.state,
                        ClientState::Calling | ClientState::Trying | ClientState::Proceeding
                    ) {
                        self.events
                            .push_back(ClientEvent::Transmit(self.wire.clone()));
                        self.interval = if self.invite {
                            self.interval * 2
                        } else if self.state == ClientState::Proceeding {
                            self.cfg.t2
                        } else {
                            (self.interval * 2).min(self.cfg.t2)
                        };
                        self.set(Timer::Retransmit, now + self.interval);
                    }
                }
                Timer::Timeout => {
                    if self.state != ClientState::Completed {
                        self.events
                            .push_back(ClientEvent::Failed(TxFailure::Timeout));
                        self.terminate();
                    }
                }
                Timer::Wait => self.terminate(),
            }
        }
    }

    /// The owner stops waiting: fails with [`TxFailure::Timeout`] as Timer
    /// B/F would, unless a final response already arrived.
    pub fn time_out(&mut self) {
        if matches!(
            self.state,
            ClientState::Calling | ClientState::Trying | ClientState::Proceeding
        ) {
            self.events
                .push_back(ClientEvent::Failed(TxFailure::Timeout));
            self.terminate();
        }
    }

    /// The transport could not deliver the request (§17.1.4).
    pub fn handle_transport_error(&mut self) {
        if self.state != ClientState::Terminated {
            self.events
                .push_back(ClientEvent::Failed(TxFailure::TransportError));
            self.terminate();
        }
    }

    // ----- outputs ---------------------------------------------------------

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|(_, at)| *at).min()
    }

    // ----- internals -------------------------------------------------------

    fn set(&mut self, t: Timer, at: Instant) {
        self.clear(t);
        self.timers.push((t, at));
    }

    fn clear(&mut self, t: Timer) {
        self.timers.retain(|(x, _)| *x != t);
    }

    fn enter_completed(&mut self, now: Instant, unreliable_wait: Duration) {
        self.state = ClientState::Completed;
        self.timers.clear();
        if self.reliability.is_reliable() {
            self.terminate();
        } else {
            self.set(Timer::Wait, now + unreliable_wait);
        }
    }

    fn terminate(&mut self) {
        if self.state != ClientState::Terminated {
            self.state = ClientState::Terminated;
            self.timers.clear();
            self.events.push_back(ClientEvent::Terminated);
        }
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same Request-URI,
    /// Call-ID, From, top Via and Route as the INVITE, To from the
    /// response, CSeq number with method ACK.
    fn build_ack(&self, resp: &Message) -> Message {
        let req = &self.request;
        let mut ack = Message::request(Method::Ack, req.request_uri().unwrap_or_default());
        if let Some(v) = req.headers_named(HeaderName::Via).next() {
            let top = crate::sip::first_list_element(v.value);
            ack.push_header(HeaderName::Via, top);
        }
        ack.push_header(HeaderName::MaxForwards, "70");
        for (name, src) in [(HeaderName::From, req), (HeaderName::To, resp)] {
            if let Some(v) = src.header(name.clone()) {
                ack.push_header(name, v);
            }
        }
        if let Some(v) = req.header(HeaderName::CallId) {
            ack.push_header(HeaderName::CallId, v);
        }
        let seq = req.cseq().map(|c| c.seq).unwrap_or(1);
        ack.push_header(HeaderName::CSeq, format!("{seq} ACK"));
        for r in req.headers_named(HeaderName::Route) {
            ack.push_header(HeaderName::Route, r.value);
        }
        ack.push_header(HeaderName::ContentLength, "0");
        ack
    }
}
