//! The test server's message plumbing: transactions per request, stream
//! framing per peer, and the registrar behind them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::registrar::{Registrar, RegistrarOutcome};
use crate::rng::Rng;
use crate::sip::{
    Capabilities, HeaderName, Message, Method, RequestVerdict, StreamFramer, builder,
    framing::Frame, validate_request, validate_response,
};
use crate::transaction::{Incoming, Reliability, TimerConfig, Transactions, TxEvent, TxId};

/// A client of the test server, by its transport address.
pub type Peer = SocketAddr;

/// The test server: registrar (and, as it grows, presence and IM) behind
/// RFC 3261 transactions. Sans-IO: feed bytes per peer, poll transmits.
#[derive(Debug)]
pub struct SimServer {
    registrar: Registrar,
    tx: Transactions,
    peers: HashMap<TxId, Peer>,
    framers: HashMap<Peer, StreamFramer>,
    user_peer: HashMap<String, (Peer, Reliability)>,
    rng: Rng,
    out: VecDeque<(Peer, Vec<u8>)>,
    caps: Capabilities,
}

impl SimServer {
    /// A server around `registrar`.
    pub fn new(registrar: Registrar, rng: Rng) -> SimServer {
        let caps = Capabilities {
            methods: vec![
                Method::Register,
                Method::Options,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
            ],
            ..Capabilities::default()
        };
        SimServer {
            registrar,
            tx: Transactions::new(TimerConfig::default()),
            peers: HashMap::new(),
            framers: HashMap::new(),
            user_peer: HashMap::new(),
            rng,
            out: VecDeque::new(),
            caps,
        }
    }

    /// The registrar.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The registrar, for configuration and inspection.
    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    /// A datagram from `peer`.
    pub fn handle_datagram(&mut self, peer: Peer, bytes: &[u8], now: Instant) {
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return;
        }
        if let Ok(m) = Message::parse(bytes) {
            self.handle_message(peer, m, Reliability::Unreliable, now);
        }
    }

    /// Stream bytes from `peer` (TCP/TLS).
    pub fn handle_stream(&mut self, peer: Peer, bytes: &[u8], now: Instant) {
        let framer = self.framers.entry(peer).or_default();
        framer.push(bytes);
        let mut msgs = Vec::new();
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => msgs.push(m),
                Ok(Some(Frame::KeepAlive)) => {}
                Ok(None) => break,
                Err(_) => {
                    self.framers.remove(&peer);
                    break;
                }
            }
        }
        for m in msgs {
            self.handle_message(peer, m, Reliability::Reliable, now);
        }
    }

    /// A stream peer went away.
    pub fn handle_disconnect(&mut self, peer: Peer) {
        self.framers.remove(&peer);
    }

    fn handle_message(&mut self, peer: Peer, m: Message, rel: Reliability, now: Instant) {
        if m.is_response() {
            if matches!(validate_response(&m), crate::sip::ResponseVerdict::Accept) {
                let _ = self.tx.handle_message(m, rel, now);
            }
        } else {
            if let RequestVerdict::Reject { code, headers, .. } = validate_request(&m, &self.caps) {
                if m.method() != Some(&Method::Ack)
                    && let Ok(mut r) = builder::response(&m, code, None, Some(&self.rng.tag()))
                {
                    for (n, v) in headers {
                        r.insert_header(r.header_count() - 1, n, v);
                    }
                    self.out.push_back((peer, r.to_bytes()));
                }
                return;
            }
            if let Ok(Incoming::Request { id, request }) = self.tx.handle_message(m, rel, now) {
                self.peers.insert(id, peer);
                let resp = self.answer(peer, rel, &request, now);
                self.tx.send_response(id, &resp, now);
            }
        }
        self.drain();
    }

    fn answer(&mut self, peer: Peer, rel: Reliability, req: &Message, now: Instant) -> Message {
        match self.registrar.handle_request(req, now) {
            RegistrarOutcome::Respond(r) => {
                if r.status() == Some(200)
                    && let Ok(from) = req.from()
                {
                    let user = from.uri_text.to_ascii_lowercase();
                    self.user_peer.insert(user, (peer, rel));
                }
                r
            }
            RegistrarOutcome::Pass { signed_by } => {
                let code = if req.method() == Some(&Method::Options) {
                    200
                } else {
                    501
                };
                let mut r = builder::response(req, code, None, Some(&self.rng.tag()))
                    .unwrap_or_else(|_| Message::response(500, "Server Internal Error"));
                if let Some(user) = signed_by {
                    self.registrar.sign_for(&user, &mut r);
                }
                r
            }
        }
    }

    /// Signs `user` out, as OCS does when an administrator disables them:
    /// a `registration-notify` NOTIFY with `deregistered;event=rejected`.
    pub fn force_sign_out(&mut self, aor: &str, reason: &str, now: Instant) -> bool {
        let Some(binding) = self.registrar.binding(aor, now).cloned() else {
            return false;
        };
        let Some(&(_, rel)) = self.user_peer.get(&aor.to_ascii_lowercase()) else {
            return false;
        };
        let tag = self.rng.tag();
        let call_id = self.rng.call_id();
        let branch = self.rng.branch();
        let mut n = builder::request(&builder::RequestSpec {
            method: Method::Notify,
            uri: &binding.contact,
            from: &format!("<{aor}>"),
            from_tag: &tag,
            from_params: None,
            to: &format!("<{aor}>"),
            to_tag: None,
            call_id: &call_id,
            cseq: 1,
            transport: if rel == Reliability::Reliable {
                "TCP"
            } else {
                "UDP"
            },
            sent_by: "ocs-sim.invalid",
            branch: &branch,
        });
        n.insert_header(
            n.header_count() - 1,
            HeaderName::Event,
            "registration-notify",
        );
        n.insert_header(
            n.header_count() - 1,
            HeaderName::SubscriptionState,
            "terminated;expires=0",
        );
        n.insert_header(
            n.header_count() - 1,
            HeaderName::MsDiagnosticsPublic,
            format!("4141;reason=\"{reason}\""),
        );
        n.set_body("text/registration-event", "deregistered;event=rejected");
        let user = aor
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        self.registrar.sign_for(&user, &mut n);
        self.registrar.restart_user(&user);
        let Ok(id) = self.tx.send_request(n, rel, now) else {
            return false;
        };
        if let Some(&(peer, _)) = self.user_peer.get(&aor.to_ascii_lowercase()) {
            self.peers.insert(id, peer);
        }
        self.drain();
        true
    }

    /// Advances timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.registrar.handle_timeout(now);
        self.drain();
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.tx.poll_timeout(), self.registrar.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next datagram or stream chunk to send, with its peer.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        self.out.pop_front()
    }

    fn drain(&mut self) {
        while let Some(e) = self.tx.poll_event() {
            match e {
                TxEvent::Transmit { id, bytes } => {
                    if let Some(&peer) = self.peers.get(&id) {
                        self.out.push_back((peer, bytes));
                    }
                }
                TxEvent::Terminated { id } => {
                    self.peers.remove(&id);
                }
                _ => {}
            }
        }
    }
}
