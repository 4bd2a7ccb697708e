//! The client endpoint: one connection's worth of SIP, sans-IO.
//!
//! [`Endpoint`] ties the layers together: stream framing or datagrams,
//! request validation, transactions, the registration and its security
//! association (signing every outgoing message, verifying every incoming
//! one), and CRLF keep-alives. The driver owns one and feeds it bytes and
//! time; later layers (presence, IM) plug into it.
//!
//! Method groups: getters; inputs `handle_*`; commands (`connected`,
//! `register`, `unregister`, `set_credentials`); outputs `poll_transmit`,
//! `poll_event`, `poll_timeout`. After any input or command, drain the
//! outputs.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use crate::discovery::Transport;
use crate::error::Error;
use crate::error::{Misuse, TransportFailure};
use crate::log::log;
use crate::register::{
    Credentials, LocalTransport, RegisterConfig, Registration, RegistrationEvent,
    is_registration_notify,
};
use crate::rng::Rng;
use crate::sip::framing::Frame;
use crate::sip::{
    Capabilities, HeaderName, Message, Method, RequestVerdict, ResponseVerdict, StreamFramer,
    builder, validate_request, validate_response,
};
use crate::transaction::{
    Incoming, Reliability, TimerConfig, Transactions, TxEvent, TxFailure, TxId,
};

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Registration settings (user, dialect, epid, ...).
    pub register: RegisterConfig,
    /// Credentials, when known up front.
    pub credentials: Option<Credentials>,
    /// Transaction timers.
    pub timers: TimerConfig,
    /// Keep-alive interval on stream transports until the registrar names
    /// one (SIPE uses 60 s before the REGISTER answer).
    pub default_keep_alive: Duration,
    /// Keep-alive interval on UDP (`None`: none). A datagram of CRLFs, as
    /// PJSIP sends every 15 s by default: it keeps a NAT binding open, and
    /// on a connected socket an ICMP "port unreachable" for it turns into
    /// an error on the next read, so a server that went away is noticed
    /// (and signed in to again when it is back) without waiting for the
    /// registration's refresh.
    pub udp_keep_alive: Option<Duration>,
}

impl EndpointConfig {
    /// Defaults around a registration config.
    pub fn new(register: RegisterConfig, credentials: Option<Credentials>) -> Self {
        EndpointConfig {
            register,
            credentials,
            timers: TimerConfig::default(),
            default_keep_alive: Duration::from_secs(60),
            udp_keep_alive: Some(Duration::from_secs(15)),
        }
    }
}

/// What the endpoint tells its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// A registration event.
    Registration(RegistrationEvent),
    /// An incoming message was refused because its signature is missing or
    /// wrong (MS-SIPAE); the message was dropped.
    SecurityViolation(String),
    /// An incoming message could not be parsed; it was dropped.
    Malformed(String),
    /// The stream is out of sync (framing error): the driver must close the
    /// connection and reconnect.
    ConnectionBroken(String),
    /// The registration wants to send but there is no connection: the
    /// driver should (re)connect and call `connected`.
    NeedConnection,
    /// A response to a request sent with [`Endpoint::send_request`]
    /// (provisional ones too; the final one ends the request).
    Response {
        /// The request.
        id: RequestId,
        /// The response (already verified when signed in with NTLM).
        response: Message,
    },
    /// A request sent with [`Endpoint::send_request`] got no final
    /// response (timeout) or could not be sent.
    RequestFailed {
        /// The request.
        id: RequestId,
        /// Why.
        failure: TxFailure,
    },
    /// A request for a method the owner asked to handle
    /// ([`Endpoint::handle_methods`]); answer it with [`Endpoint::respond`]
    /// (BENOTIFY is never answered).
    IncomingRequest {
        /// Handle for the answer.
        id: IncomingId,
        /// The request.
        request: Message,
    },
    /// An ACK for a 2xx we sent (it has no transaction of its own).
    IncomingAck(Message),
}

/// A request sent through [`Endpoint::send_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// An incoming request waiting for [`Endpoint::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncomingId(pub TxId);

/// One client endpoint. See the module docs.
#[derive(Debug)]
pub struct Endpoint {
    reg: Registration,
    tx: Transactions,
    reg_tx: Option<TxId>,
    /// When the REGISTER in flight gives up waiting for its answer.
    reg_deadline: Option<Instant>,
    local: Option<LocalTransport>,
    framer: Option<StreamFramer>,
    caps: Capabilities,
    rng: Rng,
    default_keep_alive: Duration,
    udp_keep_alive: Option<Duration>,
    last_sent: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<EndpointEvent>,
    requests: HashMap<TxId, RequestId>,
    /// What each request looked like, to resend it with credentials after a
    /// Digest challenge; with the number of challenges answered so far.
    sent: HashMap<RequestId, (Message, u32)>,
    next_request: u64,
    owned_methods: Vec<Method>,
}

impl Endpoint {
    /// A new endpoint. `seed` drives tags and branches, `entropy` the NTLM
    /// secrets; `(now, wall)` anchor the wall clock (read by the driver).
    pub fn new(
        cfg: EndpointConfig,
        seed: u64,
        entropy: [u8; 32],
        now: Instant,
        wall: SystemTime,
    ) -> Endpoint {
        let mut rng = Rng::from_seed(seed);
        let reg_rng = Rng::from_seed(rng.next_u64());
        // What this layer answers itself; presence and IM add to it.
        let caps = Capabilities {
            methods: vec![
                Method::Options,
                Method::Notify,
                Method::Benotify,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
            ],
            ..Capabilities::default()
        };
        Endpoint {
            reg: Registration::new(cfg.register, cfg.credentials, reg_rng, entropy, now, wall),
            tx: Transactions::new(cfg.timers),
            reg_tx: None,
            reg_deadline: None,
            local: None,
            framer: None,
            caps,
            rng,
            default_keep_alive: cfg.default_keep_alive,
            udp_keep_alive: cfg.udp_keep_alive,
            last_sent: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            requests: HashMap::new(),
            sent: HashMap::new(),
            next_request: 0,
            owned_methods: Vec::new(),
        }
    }

    /// Routes incoming requests of these methods to the owner as
    /// [`EndpointEvent::IncomingRequest`] instead of answering them here
    /// (presence takes NOTIFY/BENOTIFY, IM takes INVITE/MESSAGE/INFO/BYE).
    pub fn handle_methods(&mut self, methods: &[Method]) {
        for m in methods {
            if !self.owned_methods.contains(m) {
                self.owned_methods.push(m.clone());
            }
            if !self.caps.methods.contains(m) {
                self.caps.methods.push(m.clone());
            }
        }
    }

    /// How many transactions (ours and the server's) are alive: a few at
    /// a time in a quiet session.
    pub fn live_transactions(&self) -> usize {
        self.tx.len()
    }

    /// Our Contact for new requests: the GRUU once registered (OCS), else
    /// our transport address.
    pub fn contact(&self) -> Option<String> {
        if let Some(g) = self.reg.gruu() {
            return Some(format!("<{g}>"));
        }
        let l = self.local?;
        let user = crate::sip::SipUri::parse(&self.reg.config().aor)
            .ok()
            .and_then(|u| u.user.map(|u| format!("{u}@")))
            .unwrap_or_default();
        Some(format!(
            "<sip:{user}{};transport={}>",
            l.addr,
            l.transport.as_str().to_ascii_lowercase()
        ))
    }

    /// A new out-of-dialog request from us to `target` (Request-URI and
    /// To): From with a fresh tag (and our epid in the OCS dialect), a new
    /// Call-ID, CSeq 1 and our Contact. Via and Max-Forwards are added by
    /// [`Endpoint::send_request`].
    pub fn new_request(&mut self, method: Method, target: &str) -> Message {
        let cfg = self.reg.config();
        let mut m = Message::request(method.clone(), target);
        let mut from = format!("<{}>;tag={}", cfg.aor, self.rng.tag());
        if cfg.dialect == crate::discovery::Dialect::Ocs {
            from.push_str(&format!(";epid={}", cfg.epid));
        }
        m.push_header(HeaderName::From, from);
        m.push_header(HeaderName::To, format!("<{target}>"));
        m.push_header(HeaderName::CallId, self.rng.call_id());
        m.push_header(HeaderName::CSeq, format!("1 {method}"));
        if let Some(c) = self.contact() {
            m.push_header(HeaderName::Contact, c);
        }
        m
    }

    /// A fresh tag for a dialog we answer.
    pub fn new_tag(&mut self) -> String {
        self.rng.tag()
    }

    /// The `epid=` parameter for From in the OCS dialect.
    pub fn epid_param(&self) -> Option<String> {
        let cfg = self.reg.config();
        (cfg.dialect == crate::discovery::Dialect::Ocs).then(|| format!("epid={}", cfg.epid))
    }

    /// Sends a request in a client transaction: adds Via and Max-Forwards,
    /// fixes Content-Length, signs it (MS-SIPAE) and queues it. Responses
    /// come back as [`EndpointEvent::Response`].
    pub fn send_request(&mut self, req: Message, now: Instant) -> Result<RequestId, Error> {
        let Some(local) = self.local else {
            return Err(Error::transport(
                TransportFailure::NotConnected,
                "not connected",
            ));
        };
        if req.method() == Some(&Method::Ack) {
            return Err(Error::misuse(Misuse::WrongState, "send ACK with send_ack"));
        }
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let mut req = req;
        // Out-of-dialog requests through a Digest proxy carry credentials up
        // front once the proxy has challenged us (nonce count increasing).
        let in_dialog = req.to().ok().and_then(|t| t.tag().map(|_| ())).is_some();
        if !in_dialog
            && !req.has_header(HeaderName::ProxyAuthorization)
            && let Some((name, value)) = self.reg.preauthorize(&req)
        {
            req.set_header(name, value);
        }
        self.sent.insert(id, (req.clone(), 0));
        self.transmit_request(id, req, local, now)?;
        self.pump(now);
        Ok(id)
    }

    /// Sends an ACK for a 2xx (no transaction, §13.2.2.4).
    pub fn send_ack(&mut self, mut ack: Message, now: Instant) -> Result<(), Error> {
        let Some(local) = self.local else {
            return Err(Error::transport(
                TransportFailure::NotConnected,
                "not connected",
            ));
        };
        self.prepare(&mut ack, local);
        self.sign_outgoing(&mut ack)?;
        self.transmits.push_back(ack.to_bytes());
        self.last_sent = Some(now);
        Ok(())
    }

    /// Answers an [`EndpointEvent::IncomingRequest`] (signed like every
    /// outgoing message). Returns false when the request is gone.
    pub fn respond(&mut self, id: IncomingId, mut resp: Message, now: Instant) -> bool {
        if !resp.has_header(HeaderName::ContentLength) {
            resp.push_header(HeaderName::ContentLength, resp.body().len().to_string());
        }
        if self.sign_outgoing(&mut resp).is_err() {
            return false;
        }
        let ok = self.tx.send_response(id.0, &resp, now);
        self.pump(now);
        ok
    }

    fn transmit_request(
        &mut self,
        id: RequestId,
        mut req: Message,
        local: LocalTransport,
        now: Instant,
    ) -> Result<(), Error> {
        self.prepare(&mut req, local);
        self.sign_outgoing(&mut req)?;
        let tx = self.tx.send_request(req, self.reliability(), now)?;
        self.requests.insert(tx, id);
        Ok(())
    }

    /// A 401/407 to one of our requests: resend it with Digest credentials
    /// (at most twice). Returns true when it was resent.
    fn retry_with_credentials(&mut self, id: RequestId, challenge: &Message, now: Instant) -> bool {
        let Some(local) = self.local else {
            return false;
        };
        let Some((orig, tries)) = self.sent.get(&id).cloned() else {
            return false;
        };
        if tries >= 2 {
            return false;
        }
        let Some((name, value)) = self.reg.authorize_request(&orig, challenge) else {
            return false;
        };
        let mut again = orig.clone();
        again.set_header(name, value);
        // A new transaction needs a new CSeq (RFC 3261 §22.1).
        if let Ok(c) = orig.cseq() {
            again.set_header(HeaderName::CSeq, format!("{} {}", c.seq + 1, c.method));
        }
        self.sent.insert(id, (again.clone(), tries + 1));
        self.transmit_request(id, again, local, now).is_ok()
    }

    fn prepare(&mut self, req: &mut Message, local: LocalTransport) {
        req.remove_headers(HeaderName::Via);
        req.insert_header(
            0,
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={}{}",
                local.transport.as_str(),
                local.addr,
                self.rng.branch(),
                // RFC 3581, as for REGISTER.
                if local.transport == Transport::Udp {
                    ";rport"
                } else {
                    ""
                }
            ),
        );
        if !req.has_header(HeaderName::MaxForwards) {
            req.insert_header(1, HeaderName::MaxForwards, "70");
        }
        let len = req.body().len().to_string();
        if req.header(HeaderName::ContentLength) != Some(len.as_str()) {
            req.remove_headers(HeaderName::ContentLength);
            req.push_header(HeaderName::ContentLength, len);
        }
    }

    // ----- getters -------------------------------------------------------

    /// The registration.
    pub fn registration(&self) -> &Registration {
        &self.reg
    }

    /// The connection's local transport, once connected.
    pub fn local(&self) -> Option<LocalTransport> {
        self.local
    }

    fn reliability(&self) -> Reliability {
        match self.local.map(|l| l.transport) {
            Some(Transport::Udp) | None => Reliability::Unreliable,
            Some(_) => Reliability::Reliable,
        }
    }

    // ----- commands --------------------------------------------------------

    /// A (new) connection is up. Stream transports get a fresh framer.
    pub fn connected(&mut self, local: LocalTransport, now: Instant) {
        self.local = Some(local);
        self.framer = (local.transport != Transport::Udp).then(StreamFramer::new);
        self.last_sent = Some(now);
        self.reg.set_local(local, now);
        self.pump(now);
    }

    /// Starts registration.
    pub fn register(&mut self, now: Instant) -> Result<(), Error> {
        self.reg.register(now)?;
        if self.reg.needs_connection() {
            self.events.push_back(EndpointEvent::NeedConnection);
        }
        self.pump(now);
        Ok(())
    }

    /// The device's network changed (mobile apps call this): the old
    /// connection is useless, reconnect and re-register right away.
    pub fn network_changed(&mut self, now: Instant) {
        self.handle_connection_lost(now);
        self.reg.retry_now(now);
        self.handle_timeout(now);
    }

    /// Un-registers; a `SignedOut` event follows.
    pub fn unregister(&mut self, now: Instant) {
        self.reg.unregister(now);
        self.pump(now);
    }

    /// Plugs in a host security mechanism (Kerberos, SSPI); see
    /// [`crate::auth::mechanism`].
    pub fn set_authenticator(&mut self, a: Box<dyn crate::auth::mechanism::Authenticator>) {
        self.reg.set_authenticator(a);
    }

    /// Supplies credentials after `CredentialsNeeded`.
    pub fn set_credentials(&mut self, creds: Credentials, now: Instant) -> Result<(), Error> {
        self.reg.set_credentials(creds, now)?;
        self.pump(now);
        Ok(())
    }

    /// The certificate after `CertificateNeeded` (`Ok`, as an
    /// authenticator) or why provisioning failed (`Err`).
    pub fn handle_certificate(
        &mut self,
        result: Result<Box<dyn crate::auth::mechanism::Authenticator>, String>,
        now: Instant,
    ) -> Result<(), Error> {
        match result {
            Ok(a) => self.reg.provide_authenticator(a, now)?,
            Err(e) => self.reg.certificate_failed(e, now)?,
        }
        self.pump(now);
        Ok(())
    }

    // ----- inputs ----------------------------------------------------------

    /// Bytes from the connection: a whole datagram (UDP) or any piece of
    /// the stream (TCP/TLS).
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        let mut msgs = Vec::new();
        let mut broken = None;
        if let Some(f) = &mut self.framer {
            f.push(bytes);
            loop {
                match f.next_frame() {
                    Ok(Some(Frame::Message(m))) => msgs.push(m),
                    Ok(Some(Frame::KeepAlive)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        broken = Some((e.to_string(), f.take_refused()));
                        break;
                    }
                }
            }
        } else if bytes.iter().any(|b| *b != b'\r' && *b != b'\n') {
            match Message::parse(bytes) {
                Ok(m) => msgs.push(m),
                Err(e) => self
                    .events
                    .push_back(EndpointEvent::Malformed(e.to_string())),
            }
        }
        for m in msgs {
            self.handle_message(m, now);
        }
        if let Some((why, refused)) = broken {
            // A request whose body is over the limit is still answered (its
            // head parsed) before the connection closes.
            if let Some(req) = refused.filter(|r| !r.is_response()) {
                self.answer_statelessly(&req, 513, &[]);
            }
            self.events.push_back(EndpointEvent::ConnectionBroken(why));
        }
        self.pump(now);
    }

    /// The connection dropped.
    pub fn handle_connection_lost(&mut self, now: Instant) {
        self.drop_connection();
        self.reg.handle_connection_lost(now);
        self.pump(now);
    }

    /// The driver could not connect (no address, TCP connect or TLS
    /// handshake failed or timed out; `error` names the step and target).
    /// Before the first successful sign-in this ends sign-in with `error`
    /// (unless [`RegisterConfig::retry_first_sign_in`]); later it is
    /// retried with back-off.
    pub fn handle_connect_failed(&mut self, error: Error, now: Instant) {
        self.drop_connection();
        self.reg.handle_connect_failed(error, now);
        self.pump(now);
    }

    /// After [`RegistrationEvent::Redirected`]: forget the connection and
    /// sign in from scratch (unsigned REGISTER, new handshake) on the new
    /// one; [`EndpointEvent::NeedConnection`] follows.
    pub fn follow_redirect(&mut self, now: Instant) -> Result<(), Error> {
        self.drop_connection();
        self.register(now)
    }

    fn drop_connection(&mut self) {
        if let Some(id) = self.reg_tx.take() {
            self.tx.handle_transport_error(id);
        }
        self.reg_deadline = None;
        // Every other request and answer belonged to the old connection:
        // their owners (IM, presence, provisioning) are told the connection
        // dropped and settle their commands; nothing of it may go out again
        // on the next connection (see Transactions::abandon_all).
        self.tx.abandon_all();
        self.requests.clear();
        self.sent.clear();
        self.framer = None;
        self.local = None;
        self.reg.clear_local();
    }

    /// Advances every timer up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(id), Some(at)) = (self.reg_tx, self.reg_deadline)
            && at <= now
        {
            // The REGISTER's own deadline, shorter than Timer F when set so.
            self.reg_deadline = None;
            self.tx.time_out(id);
        }
        self.tx.handle_timeout(now);
        self.reg.handle_timeout(now);
        if self.reg.needs_connection() {
            self.events.push_back(EndpointEvent::NeedConnection);
        }
        if let Some(at) = self.keep_alive_at()
            && at <= now
        {
            self.transmits.push_back(b"\r\n\r\n".to_vec());
            self.last_sent = Some(now);
        }
        self.pump(now);
    }

    // ----- outputs -----------------------------------------------------------

    /// The next bytes to send on the connection.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        let e = crate::queue::take_next(&mut self.events);
        if e.is_none() {
            crate::queue::release_if_empty(&mut self.sent);
            crate::queue::release_if_empty(&mut self.requests);
        }
        e
    }

    /// When [`Endpoint::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tx.poll_timeout(),
            self.reg.poll_timeout(),
            self.keep_alive_at(),
            self.reg_tx.and(self.reg_deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- internals -----------------------------------------------------------

    fn keep_alive_at(&self) -> Option<Instant> {
        // RFC 5626 §3.5.1 defines CRLF keep-alives for streams; on UDP the
        // same bytes are what PJSIP sends (servers skip such datagrams).
        let interval = match self.local?.transport {
            Transport::Udp => self.udp_keep_alive?,
            _ => self.reg.keep_alive().unwrap_or(self.default_keep_alive),
        };
        self.last_sent.map(|t| t + interval)
    }

    fn handle_message(&mut self, m: Message, now: Instant) {
        let rel = self.reliability();
        if m.is_response() {
            if let ResponseVerdict::Drop(why) = validate_response(&m) {
                self.events.push_back(EndpointEvent::Malformed(why));
                return;
            }
            if !self.response_is_trusted(&m) {
                return;
            }
            let _ = self.tx.handle_message(m, rel, now);
            return;
        }
        if let RequestVerdict::Reject { code, headers, .. } = validate_request(&m, &self.caps) {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            self.answer_statelessly(&m, code, &headers);
            return;
        }
        if let Some(sa) = self.reg.security() {
            match sa.verify(&m) {
                Ok(true) => {}
                Ok(false) => {
                    self.events
                        .push_back(EndpointEvent::SecurityViolation(format!(
                            "unsigned {} dropped",
                            m.method().map(Method::as_str).unwrap_or("request")
                        )));
                    return;
                }
                Err(e) => {
                    self.events
                        .push_back(EndpointEvent::SecurityViolation(format!(
                            "{} dropped: {e}",
                            m.method().map(Method::as_str).unwrap_or("request")
                        )));
                    return;
                }
            }
        }
        match self.tx.handle_message(m, rel, now) {
            Ok(Incoming::Request { id, request }) => {
                let owned = request
                    .method()
                    .is_some_and(|m| self.owned_methods.contains(m));
                if owned && !is_registration_notify(&request) {
                    self.events.push_back(EndpointEvent::IncomingRequest {
                        id: IncomingId(id),
                        request,
                    });
                } else {
                    self.answer(id, &request, now);
                }
            }
            Ok(Incoming::Ack(ack)) => self.events.push_back(EndpointEvent::IncomingAck(ack)),
            Ok(Incoming::Overloaded(req)) => {
                log!(
                    WARN,
                    "{} server transactions live: {} answered 503",
                    self.tx.max_server_transactions(),
                    req.method().map(Method::as_str).unwrap_or("request")
                );
                self.answer_statelessly(&req, 503, &[("Retry-After", "5")]);
            }
            Ok(_) => {}
            Err(e) => self
                .events
                .push_back(EndpointEvent::Malformed(e.to_string())),
        }
    }

    /// MS-SIPAE: once signed in, final responses must be signed, except
    /// challenges and the REGISTER answers of a sign-in (which the
    /// registration checks itself) (PROTOCOL.md a.6).
    fn response_is_trusted(&mut self, m: &Message) -> bool {
        let Some(sa) = self.reg.security() else {
            return true;
        };
        let code = m.status().unwrap_or(0);
        let is_register = m.cseq().is_ok_and(|c| c.method == "REGISTER");
        // While signing in, REGISTER answers are the registration's to
        // judge (it ends the sign-in naming the bad signature). Once
        // registered, a refresh's answer is like any other: a forged one is
        // dropped and counted, never acted on, so that one injected 200
        // cannot end a working session.
        if code < 200 || code == 401 || code == 407 || (is_register && !self.reg.is_registered()) {
            return true;
        }
        match sa.verify(m) {
            Ok(true) => true,
            Ok(false) => {
                self.events
                    .push_back(EndpointEvent::SecurityViolation(format!(
                        "unsigned {code} response dropped"
                    )));
                false
            }
            Err(e) => {
                self.events
                    .push_back(EndpointEvent::SecurityViolation(format!(
                        "{code} response dropped: {e}"
                    )));
                false
            }
        }
    }

    /// Answers `req` without a transaction (refused before one was made),
    /// signed when signed in; never an ACK or a BENOTIFY.
    fn answer_statelessly(&mut self, req: &Message, code: u16, headers: &[(&str, &str)]) {
        if matches!(req.method(), Some(Method::Ack | Method::Benotify)) {
            return;
        }
        if let Ok(mut r) = builder::response(req, code, None, Some(&self.rng.tag())) {
            for (n, v) in headers {
                r.insert_header(r.header_count() - 1, *n, *v);
            }
            if self.sign_outgoing(&mut r).is_ok() {
                self.transmits.push_back(r.to_bytes());
            }
        }
    }

    fn answer(&mut self, id: TxId, req: &Message, now: Instant) {
        let reg_notify = matches!(req.method(), Some(Method::Notify | Method::Benotify))
            && is_registration_notify(req);
        let code = match req.method() {
            _ if reg_notify => 200,
            Some(Method::Options) => 200,
            // Subscriptions and sessions arrive with presence and IM; until
            // then there is nothing they could belong to.
            Some(Method::Notify | Method::Benotify | Method::Bye | Method::Cancel) => 481,
            _ => 501,
        };
        // BENOTIFY is never answered (MS-SIP).
        if req.method() != Some(&Method::Benotify)
            && let Ok(mut r) = builder::response(req, code, None, Some(&self.rng.tag()))
        {
            if code == 200 && req.method() == Some(&Method::Options) {
                let allow: Vec<&str> = self.caps.methods.iter().map(Method::as_str).collect();
                r.insert_header(r.header_count() - 1, HeaderName::Allow, allow.join(", "));
            }
            // Signed while the association still exists: the NOTIFY that
            // signs us out ends it, and the server still expects a signed
            // answer to it.
            if self.sign_outgoing(&mut r).is_ok() {
                self.tx.send_response(id, &r, now);
            }
        }
        if reg_notify {
            self.reg.handle_registration_notify(req);
        }
    }

    /// Sends the ACK a client INVITE transaction built for a non-2xx answer
    /// (a 480 to an IM invitation): signed like every request.
    fn send_transaction_ack(&mut self, id: TxId, mut ack: Message, now: Instant) {
        if self.sign_outgoing(&mut ack).is_ok() {
            let wire = ack.to_bytes();
            self.last_sent = Some(now);
            self.transmits.push_back(wire.clone());
            self.tx.ack_sent(id, wire);
        }
    }

    /// The one place every message we send after sign-in is signed
    /// (MS-SIPAE: requests including ACK and CANCEL, and every response
    /// to the server's requests; PROTOCOL.md a.6): requests through
    /// [`Endpoint::send_request`], ACKs of both kinds, answers through
    /// [`Endpoint::respond`] and the ones this layer gives itself. Only
    /// the registration's own REGISTERs sign themselves (their handshake
    /// state lives there). A message that cannot be signed is not sent:
    /// the server would drop it anyway; the failure is reported.
    fn sign_outgoing(&mut self, msg: &mut Message) -> Result<(), Error> {
        self.reg.sign(msg).inspect_err(|e| {
            let what = msg
                .method()
                .map(|m| m.as_str().to_owned())
                .or_else(|| msg.status().map(|c| format!("{c} response")))
                .unwrap_or_default();
            self.events.push_back(EndpointEvent::Malformed(format!(
                "our {what} could not be signed and was not sent: {e}"
            )));
        })
    }

    /// Moves requests and events between the registration, the
    /// transactions and the outputs until nothing changes.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(req) = self.reg.poll_request() {
                progressed = true;
                log!(
                    DEBUG,
                    "REGISTER {} (CSeq {})",
                    describe_register(&req),
                    req.cseq().map(|c| c.seq).unwrap_or(0)
                );
                match self.tx.send_request(req, self.reliability(), now) {
                    Ok(id) => {
                        self.reg_tx = Some(id);
                        self.reg_deadline = Some(now + self.reg.transaction_timeout());
                    }
                    Err(e) => self
                        .events
                        .push_back(EndpointEvent::Malformed(format!("own REGISTER: {e}"))),
                }
            }
            while let Some(e) = self.tx.poll_event() {
                progressed = true;
                match e {
                    TxEvent::Transmit { bytes, .. } => {
                        self.last_sent = Some(now);
                        self.transmits.push_back(bytes);
                    }
                    TxEvent::Ack { id, ack } => self.send_transaction_ack(id, ack, now),
                    TxEvent::Response { id, response } if Some(id) == self.reg_tx => {
                        if response.status().unwrap_or(0) >= 200 {
                            self.reg_tx = None;
                            self.reg_deadline = None;
                        }
                        self.reg.handle_response(&response, now);
                    }
                    TxEvent::Failed { id, failure } if Some(id) == self.reg_tx => {
                        self.reg_tx = None;
                        self.reg_deadline = None;
                        self.reg.handle_failure(failure, now);
                    }
                    TxEvent::Response { id, response } => {
                        if let Some(&rid) = self.requests.get(&id) {
                            let code = response.status().unwrap_or(0);
                            if (code == 401 || code == 407)
                                && self.retry_with_credentials(rid, &response, now)
                            {
                                continue;
                            }
                            if code >= 200 {
                                self.sent.remove(&rid);
                            }
                            self.events
                                .push_back(EndpointEvent::Response { id: rid, response });
                        }
                    }
                    TxEvent::Failed { id, failure } => {
                        if let Some(rid) = self.requests.remove(&id) {
                            self.sent.remove(&rid);
                            self.events
                                .push_back(EndpointEvent::RequestFailed { id: rid, failure });
                        }
                    }
                    TxEvent::Terminated { id } => {
                        self.requests.remove(&id);
                    }
                    _ => {}
                }
            }
            while let Some(e) = self.reg.poll_event() {
                progressed = true;
                self.events.push_back(EndpointEvent::Registration(e));
            }
            if !progressed {
                break;
            }
        }
    }
}

/// What a REGISTER carries, for the log: the leg of the handshake, never a
/// token, signature or password.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
fn describe_register(req: &Message) -> String {
    let auth = req
        .header(HeaderName::Authorization)
        .or_else(|| req.header(HeaderName::ProxyAuthorization));
    let expires = match req.header(HeaderName::Expires) {
        Some("0") => ", Expires: 0 (sign-out)",
        _ => "",
    };
    let leg = match auth {
        None => "without credentials".to_owned(),
        Some(a) => {
            let scheme = a.split_whitespace().next().unwrap_or("");
            let token = a.contains("gssapi-data=\"\"");
            let has_token = a.contains("gssapi-data=");
            let signed = a.contains("crand=");
            match (has_token, token, signed) {
                (true, true, _) => format!("{scheme}, first (empty) token"),
                (true, false, true) => format!("{scheme}, AUTHENTICATE token and first signature"),
                (true, false, false) => format!("{scheme}, AUTHENTICATE token"),
                (false, _, true) => format!("signed ({scheme})"),
                _ => format!("{scheme} response"),
            }
        }
    };
    format!("{leg}{expires}")
}
