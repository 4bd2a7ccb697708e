//! The test server's message plumbing: transactions per request, stream
//! framing per peer, and the registrar behind them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::presence::PresenceServer;
use super::registrar::{Registrar, RegistrarOutcome, SignatureCheck};
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
    pub(super) registrar: Registrar,
    pub(super) tx: Transactions,
    pub(super) peers: HashMap<TxId, Peer>,
    framers: HashMap<Peer, StreamFramer>,
    pub(super) user_peer: HashMap<String, (Peer, Reliability)>,
    pub(super) rng: Rng,
    pub(super) out: VecDeque<(Peer, Vec<u8>)>,
    caps: Capabilities,
    /// Requests relayed between users: our branch → the sender's peer.
    relayed: HashMap<String, Peer>,
    /// Publications and subscriptions (SERVICE, SUBSCRIBE).
    pub(super) presence: PresenceServer,
    /// Refuse unsigned or badly signed messages after an NTLM sign-in
    /// (as an OCS front end does).
    strict: bool,
    /// Peers signed in with NTLM, with their user: everything they send
    /// from now on must be signed.
    signed_peers: HashMap<Peer, String>,
    /// How many messages broke that rule, and the latest few of them.
    violations: u64,
    recent_violations: VecDeque<String>,
    /// Signed messages that verified, by kind (`ACK`, `200 response to
    /// NOTIFY`).
    verified: HashMap<String, u64>,
    /// The highest `cnum` seen per security association (by opaque).
    last_cnum: HashMap<String, u64>,
    /// Stream peers to disconnect ([`SimServer::poll_close`]), and those
    /// already asked for, whose bytes are ignored until they are gone.
    closing: VecDeque<Peer>,
    closed: HashSet<Peer>,
    /// Stream peers with part of a message buffered, since when.
    partial_since: HashMap<Peer, Instant>,
    /// Autodiscover and the token service (HTTP).
    web: super::web::WebService,
}

/// How many refused messages [`SimServer::recent_signature_violations`]
/// keeps.
const RECENT_VIOLATIONS: usize = 32;

/// A message on a stream must arrive whole within this time of its first
/// byte; a peer that dribbles (slowloris) is disconnected.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(30);

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
                Method::Service,
                Method::Subscribe,
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
            relayed: HashMap::new(),
            presence: PresenceServer::new(Rng::from_seed(0x7072_6573)),
            strict: true,
            signed_peers: HashMap::new(),
            violations: 0,
            recent_violations: VecDeque::new(),
            verified: HashMap::new(),
            last_cnum: HashMap::new(),
            closing: VecDeque::new(),
            closed: HashSet::new(),
            partial_since: HashMap::new(),
            web: super::web::WebService::default(),
        }
    }

    /// The web services (autodiscover, tokens).
    pub fn web(&self) -> &super::web::WebService {
        &self.web
    }

    /// Turns the web services on: where they are and the SIP listener
    /// autodiscover names.
    pub fn configure_web(&mut self, cfg: super::web::WebConfig) {
        self.web.configure(cfg);
    }

    /// Sets the web services' wall clock
    /// ([`super::web::WebService::set_wall_origin`]).
    pub fn set_web_wall_origin(&mut self, at: Instant, wall: std::time::SystemTime) {
        self.web.set_wall_origin(at, wall);
    }

    /// Turns certificate provisioning on ([`super::web::WebService::set_issuer`]).
    pub fn set_cert_issuer(&mut self, issuer: super::web::CertIssuer) {
        self.web.set_issuer(issuer);
    }

    /// Answers one HTTP request to the web services.
    pub fn handle_http(
        &mut self,
        req: &super::web::WebRequest,
        now: Instant,
    ) -> super::web::WebResponse {
        self.web.handle(req, now, &mut self.registrar)
    }

    /// Strict signature checking (on by default): after an NTLM sign-in,
    /// every request but REGISTER and every final response a client sends
    /// must carry a valid MS-SIPAE signature; others are counted and
    /// refused (requests with 403, ACKs and responses dropped).
    pub fn set_strict_signatures(&mut self, on: bool) {
        self.strict = on;
    }

    /// How many messages strict checking refused so far.
    pub fn signature_violations(&self) -> u64 {
        self.violations
    }

    /// How many signed messages of one kind strict checking verified
    /// (`"ACK"`, `"MESSAGE"`, `"200 response to NOTIFY"`).
    pub fn verified_signatures(&self, kind: &str) -> u64 {
        self.verified.get(kind).copied().unwrap_or(0)
    }

    /// The latest refused messages, described (`alice: unsigned ACK`).
    pub fn recent_signature_violations(&self) -> impl Iterator<Item = &str> {
        self.recent_violations.iter().map(String::as_str)
    }

    /// Strict checking of what a signed-in peer sends. Returns true when
    /// the message was refused (and answered, if it was a request).
    fn refuse_unsigned(&mut self, peer: Peer, m: &Message, rel: Reliability) -> bool {
        if !self.strict || !self.registrar.auth_mode().is_signed() {
            return false;
        }
        let Some(user) = self.signed_peers.get(&peer).cloned() else {
            return false;
        };
        let exempt = match m.status() {
            Some(code) => code < 200,
            None => m.method() == Some(&Method::Register),
        };
        if exempt {
            return false;
        }
        let what = match (m.method(), m.status()) {
            (Some(method), _) => method.as_str().to_owned(),
            (None, Some(code)) => format!(
                "{code} response to {}",
                m.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
            ),
            _ => "message".to_owned(),
        };
        let why = match self.registrar.check_client_signature(m) {
            // MS-SIPAE: cnum counts up with every message signed. Over a
            // stream nothing is retransmitted, so each message must carry a
            // higher number than the last (over UDP a retransmission repeats
            // its number).
            SignatureCheck::Valid {
                association, cnum, ..
            } if rel == Reliability::Reliable
                && self
                    .last_cnum
                    .get(&association)
                    .is_some_and(|last| cnum <= *last) =>
            {
                let last = self.last_cnum.get(&association).copied().unwrap_or(0);
                format!("replayed or out of order (cnum {cnum} after {last})")
            }
            SignatureCheck::Valid {
                association, cnum, ..
            } => {
                let last = self.last_cnum.entry(association).or_default();
                *last = (*last).max(cnum);
                *self.verified.entry(what).or_default() += 1;
                return false;
            }
            SignatureCheck::UnknownAssociation => return false,
            SignatureCheck::Unsigned => "unsigned".to_owned(),
            SignatureCheck::Bad(why) => format!("badly signed ({why})"),
        };
        self.violations += 1;
        if self.recent_violations.len() == RECENT_VIOLATIONS {
            self.recent_violations.pop_front();
        }
        self.recent_violations
            .push_back(format!("{user}: {why} {what}"));
        if m.is_request()
            && m.method() != Some(&Method::Ack)
            && let Ok(mut r) = builder::response(m, 403, None, Some(&self.rng.tag()))
        {
            r.insert_header(
                r.header_count() - 1,
                HeaderName::Warning,
                format!("399 ocs-sim \"Message {why}: signing is required after sign-in\""),
            );
            self.out.push_back((peer, r.to_bytes()));
        }
        true
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

    /// Stream bytes from `peer` (TCP/TLS). A stream that breaks the
    /// framing rules (a head over 64 KiB or 512 headers, a body over
    /// 4 MiB, no Content-Length) is closed ([`SimServer::poll_close`]); a
    /// request whose head parsed gets 513 first.
    pub fn handle_stream(&mut self, peer: Peer, bytes: &[u8], now: Instant) {
        if self.closed.contains(&peer) {
            return;
        }
        let framer = self.framers.entry(peer).or_default();
        framer.push(bytes);
        let mut msgs = Vec::new();
        let mut refused = None;
        let mut broken = false;
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => msgs.push(m),
                Ok(Some(Frame::KeepAlive)) => {}
                Ok(None) => break,
                Err(_) => {
                    refused = framer.take_refused();
                    broken = true;
                    break;
                }
            }
        }
        let partial = framer.buffered() > 0;
        if partial && !broken {
            // The clock starts at a message's first byte.
            if !msgs.is_empty() {
                self.partial_since.insert(peer, now);
            } else {
                self.partial_since.entry(peer).or_insert(now);
            }
        } else {
            self.partial_since.remove(&peer);
        }
        for m in msgs {
            self.handle_message(peer, m, Reliability::Reliable, now);
        }
        if broken {
            if let Some(req) = refused.filter(|r| !r.is_response()) {
                self.answer_statelessly(peer, &req, 513, &[]);
            }
            self.close(peer);
        }
    }

    /// A stream peer went away.
    pub fn handle_disconnect(&mut self, peer: Peer) {
        self.framers.remove(&peer);
        self.signed_peers.remove(&peer);
        self.closed.remove(&peer);
        self.partial_since.remove(&peer);
    }

    /// The next stream peer to disconnect (its framing broke, or it took
    /// longer than [`MESSAGE_DEADLINE`] over a message). Send what
    /// [`SimServer::poll_transmit`] has for it first.
    pub fn poll_close(&mut self) -> Option<Peer> {
        self.closing.pop_front()
    }

    fn close(&mut self, peer: Peer) {
        self.framers.remove(&peer);
        self.partial_since.remove(&peer);
        if self.closed.insert(peer) {
            self.closing.push_back(peer);
        }
    }

    /// Answers `req` without a transaction (ACKs are never answered).
    fn answer_statelessly(
        &mut self,
        peer: Peer,
        req: &Message,
        code: u16,
        headers: &[(&str, &str)],
    ) {
        if req.method() == Some(&Method::Ack) {
            return;
        }
        if let Ok(mut r) = builder::response(req, code, None, Some(&self.rng.tag())) {
            for (n, v) in headers {
                r.insert_header(r.header_count() - 1, *n, *v);
            }
            self.out.push_back((peer, r.to_bytes()));
        }
    }

    fn handle_message(&mut self, peer: Peer, m: Message, rel: Reliability, now: Instant) {
        if self.refuse_unsigned(peer, &m, rel) {
            return;
        }
        if m.is_response() {
            // Responses to requests we relayed carry our Via on top.
            if let Some(origin) = self.relay_response(&m) {
                self.out.push_back(origin);
                return;
            }
            if matches!(validate_response(&m), crate::sip::ResponseVerdict::Accept) {
                let _ = self.tx.handle_message(m, rel, now);
            }
        } else {
            if self.handle_presence(peer, &m, rel, now) {
                self.drain();
                return;
            }
            if let Some(done) = self.relay_request(peer, &m, now) {
                if let Some(out) = done {
                    self.out.push_back(out);
                }
                self.drain();
                return;
            }
            if let RequestVerdict::Reject { code, headers, .. } = validate_request(&m, &self.caps) {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.answer_statelessly(peer, &m, code, &headers);
                return;
            }
            match self.tx.handle_message(m, rel, now) {
                Ok(Incoming::Request { id, request }) => {
                    self.peers.insert(id, peer);
                    let resp = self.answer(peer, rel, &request, now);
                    self.tx.send_response(id, &resp, now);
                }
                Ok(Incoming::Overloaded(req)) => self.overloaded(peer, &req),
                _ => {}
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
                    let gone = self.registrar.binding(&user, now).is_none();
                    self.user_peer.insert(user.clone(), (peer, rel));
                    if req.method() == Some(&Method::Register) {
                        if gone {
                            self.signed_peers.remove(&peer);
                        } else if self.registrar.auth_mode().is_signed() {
                            self.signed_peers.insert(peer, user.clone());
                        }
                    }
                    if gone && req.method() == Some(&Method::Register) {
                        self.presence_signed_out(&user, now);
                    }
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

    /// The registered user a Request-URI names (AOR or GRUU), with the
    /// peer it is connected from.
    fn target_user(&self, req: &Message, now: Instant) -> Option<(String, Peer)> {
        let uri = crate::sip::SipUri::parse(req.request_uri()?).ok()?;
        let aor = format!("sip:{}", uri.user_at_host()).to_ascii_lowercase();
        self.registrar.binding(&aor, now)?;
        let (peer, _) = self.user_peer.get(&aor)?;
        Some((aor, *peer))
    }

    /// Relays requests between signed-in users, as an OCS front end does:
    /// the sender's signature is checked and removed, our Via goes on top,
    /// and the request is signed again for the recipient's security
    /// association. `None`: not a relayed request; `Some(None)`: handled
    /// with nothing to send; `Some(Some(..))`: send this.
    fn relay_request(
        &mut self,
        peer: Peer,
        m: &Message,
        now: Instant,
    ) -> Option<Option<(Peer, Vec<u8>)>> {
        let method = m.method()?;
        if matches!(method, Method::Register | Method::Options) {
            return None;
        }
        let (target, target_peer) = match self.target_user(m, now) {
            Some(t) => t,
            None => {
                // Not for one of our users: let the server answer it.
                let is_user = m
                    .request_uri()
                    .and_then(|u| crate::sip::SipUri::parse(u).ok())
                    .is_some_and(|u| u.user.is_some());
                if !is_user || *method == Method::Ack {
                    return None;
                }
                // A user that is not signed in.
                if let Ok(r) = builder::response(m, 480, None, Some(&self.rng.tag())) {
                    let mut r = r;
                    if let Ok(from) = m.from() {
                        let user = from
                            .uri_text
                            .trim_start_matches("sip:")
                            .split('@')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        self.registrar.sign_for(&user, &mut r);
                    }
                    return Some(Some((peer, r.to_bytes())));
                }
                return Some(None);
            }
        };
        // The sender must be one of ours with a valid signature.
        let signed = match self.registrar.handle_request(m, now) {
            RegistrarOutcome::Pass { signed_by } => signed_by.is_some(),
            RegistrarOutcome::Respond(_) => false,
        };
        // With NTLM every request after sign-in must be signed (MS-SIPAE).
        if !signed && self.registrar.auth_mode().is_signed() {
            if let Ok(r) = builder::response(m, 401, None, Some(&self.rng.tag())) {
                return Some(Some((peer, r.to_bytes())));
            }
            return Some(None);
        }
        let mut fwd = m.clone();
        fwd.remove_headers(HeaderName::ProxyAuthorization);
        fwd.remove_headers(HeaderName::Authorization);
        let branch = self.rng.branch();
        fwd.insert_header(
            0,
            HeaderName::Via,
            format!("SIP/2.0/TCP ocs-sim.invalid;branch={branch}"),
        );
        if let Ok(Some(mf)) = m.max_forwards() {
            if mf == 0 {
                return Some(None);
            }
            fwd.set_header(HeaderName::MaxForwards, (mf - 1).to_string());
        }
        let user = target
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("")
            .to_owned();
        self.registrar.sign_for(&user, &mut fwd);
        self.relayed.insert(branch, peer);
        Some(Some((target_peer, fwd.to_bytes())))
    }

    /// Sends a response to a relayed request back to its origin, signed
    /// for the origin's association.
    fn relay_response(&mut self, m: &Message) -> Option<(Peer, Vec<u8>)> {
        let top = m.top_via().ok()?;
        let branch = top.branch()?.to_owned();
        let origin = *self.relayed.get(&branch)?;
        if m.status().is_some_and(|c| c >= 200) {
            self.relayed.remove(&branch);
        }
        let mut back = m.clone();
        let mut first = true;
        // Drop our Via (the first line) and the responder's signature.
        let vias: Vec<String> = m
            .headers_named(HeaderName::Via)
            .map(|h| h.value.to_owned())
            .collect();
        back.remove_headers(HeaderName::Via);
        for (i, v) in vias.into_iter().enumerate() {
            if first {
                first = false;
                continue;
            }
            back.insert_header(i - 1, HeaderName::Via, v);
        }
        back.remove_headers(HeaderName::ProxyAuthorization);
        back.remove_headers(HeaderName::Authorization);
        let sender = m
            .from()
            .ok()
            .map(|f| {
                f.uri_text
                    .trim_start_matches("sip:")
                    .split('@')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        self.registrar.sign_for(&sender, &mut back);
        Some((origin, back.to_bytes()))
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
        self.presence_signed_out(aor, now);
        let Ok(id) = self.tx.send_request(n, rel, now) else {
            return false;
        };
        if let Some(&(peer, _)) = self.user_peer.get(&aor.to_ascii_lowercase()) {
            self.peers.insert(id, peer);
        }
        self.drain();
        true
    }

    /// Too many live transactions: a new request gets 503 with
    /// Retry-After instead of one.
    pub(super) fn overloaded(&mut self, peer: Peer, req: &Message) {
        self.answer_statelessly(peer, req, 503, &[("Retry-After", "5")]);
    }

    /// Advances timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let slow: Vec<Peer> = self
            .partial_since
            .iter()
            .filter(|(_, t)| **t + MESSAGE_DEADLINE <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in slow {
            self.close(p);
        }
        self.tx.handle_timeout(now);
        self.registrar.handle_timeout(now);
        self.drain();
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tx.poll_timeout(),
            self.registrar.poll_timeout(),
            self.partial_since
                .values()
                .min()
                .map(|t| *t + MESSAGE_DEADLINE),
        ]
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
                TxEvent::Ack { id, ack } => {
                    // The server sends no INVITEs today; an ACK goes out
                    // as it is.
                    if let Some(&peer) = self.peers.get(&id) {
                        let wire = ack.to_bytes();
                        self.out.push_back((peer, wire.clone()));
                        self.tx.ack_sent(id, wire);
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
