//! Bad input at sign-in: malformed challenges, only unknown schemes, a
//! missing nonce, absurd Expires values, giant headers, servers that
//! challenge forever. Each must give a clear error: never a panic, never a
//! hang.
//!
//! The tests drive [`Registration`] directly, playing the server from a
//! script on a simulated clock; every message crosses a byte round trip so
//! the registration sees what it would see on the wire. The giant-header
//! tests go through [`Endpoint::handle_bytes`] to exercise the framer.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use ocs_core::auth::ntlm::{self, ChallengeMessage};
use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use ocs_core::error::Error;
use ocs_core::register::{
    Credentials, CredentialsReason, LocalTransport, RegState, RegisterConfig, Registration,
    RegistrationEvent,
};
use ocs_core::rng::Rng;
use ocs_core::sim::registrar::RegistrarOutcome;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig};
use ocs_core::sip::{Message, builder};

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    // An arbitrary origin for the simulated clock.
    Instant::now()
}

const AOR: &str = "sip:alice@contoso.com";
const LOCAL: &str = "192.0.2.10:40000";
/// More REGISTERs than any sane sign-in sends: reaching this is a loop.
const CAP: usize = 1000;

fn local() -> SocketAddr {
    LOCAL.parse().expect("addr")
}

/// The scripted server: request and the simulated time in, response out
/// (`None`: no answer).
type Script<'a> = dyn FnMut(&Message, Instant) -> Option<Message> + 'a;

struct Peer {
    start: Instant,
    now: Instant,
    reg: Registration,
    /// Every REGISTER the registration sent, with its time.
    registers: Vec<(Duration, Message)>,
    events: Vec<(Duration, RegistrationEvent)>,
}

impl Peer {
    fn new(dialect: Dialect, creds: Option<Credentials>) -> Peer {
        let start = t0();
        let mut cfg = RegisterConfig::new(AOR, dialect, "c8ca638a15");
        // These tests look at the back-off, which applies to a first
        // sign-in only when the host asks for retries.
        cfg.retry_first_sign_in = true;
        let mut reg = Registration::new(
            cfg,
            creds,
            Rng::from_seed(3),
            [9; 32],
            start,
            SystemTime::UNIX_EPOCH,
        );
        reg.set_local(
            LocalTransport {
                transport: Transport::Tcp,
                addr: local(),
            },
            start,
        );
        Peer {
            start,
            now: start,
            reg,
            registers: Vec::new(),
            events: Vec::new(),
        }
    }

    fn ocs() -> Peer {
        Peer::new(
            Dialect::Ocs,
            Some(Credentials::new("CONTOSO\\alice", "alicepw")),
        )
    }

    fn standard() -> Peer {
        Peer::new(
            Dialect::Standard,
            Some(Credentials::new("alice", "alicepw")),
        )
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Starts registering and exchanges messages until quiet.
    /// `Err(n)`: the registration sent more than [`CAP`] REGISTERs.
    fn sign_in(&mut self, server: &mut Script<'_>) -> Result<(), usize> {
        self.reg.register(self.now).expect("register");
        self.exchange(server)
    }

    /// Passes requests to the script and its answers back until the
    /// registration has nothing more to send.
    fn exchange(&mut self, server: &mut Script<'_>) -> Result<(), usize> {
        loop {
            while let Some(e) = self.reg.poll_event() {
                self.events.push((self.elapsed(), e));
            }
            let Some(req) = self.reg.poll_request() else {
                return Ok(());
            };
            let req = Message::parse(&req.to_bytes()).expect("own REGISTER parses");
            self.registers.push((self.elapsed(), req.clone()));
            if self.registers.len() > CAP {
                return Err(self.registers.len());
            }
            if let Some(resp) = server(&req, self.now) {
                let resp = Message::parse(&resp.to_bytes()).expect("scripted response parses");
                self.reg.handle_response(&resp, self.now);
            }
        }
    }

    /// Runs the clock to `until` (from the start), firing timers in order.
    fn run_until(&mut self, until: Duration, server: &mut Script<'_>) -> Result<(), usize> {
        self.exchange(server)?;
        while let Some(at) = self.reg.poll_timeout() {
            assert!(
                at >= self.now,
                "timer in the past: {:?} before now",
                self.now - at
            );
            if at - self.start > until {
                break;
            }
            self.now = at;
            self.reg.handle_timeout(self.now);
            self.exchange(server)?;
        }
        self.now = self.start + until;
        Ok(())
    }

    fn last_event(&self) -> &RegistrationEvent {
        &self.events.last().expect("an event").1
    }

    /// The error of the final `Failed` event.
    fn failure(&self) -> &Error {
        match self.last_event() {
            RegistrationEvent::Failed(e) => e,
            other => panic!("expected Failed, got {other:?}; all: {:?}", self.events),
        }
    }

    /// Failed, no timer left, nothing more to send.
    fn assert_stopped(&self) {
        assert_eq!(self.reg.state(), RegState::Done);
        assert_eq!(self.reg.poll_timeout(), None, "no timer after a failure");
    }
}

/// A response to `req` with `headers` inserted before Content-Length.
fn reply(req: &Message, code: u16, headers: &[(&str, &str)]) -> Message {
    let mut r = builder::response(req, code, None, Some("srvtag1")).expect("response");
    for (n, v) in headers {
        r.insert_header(r.header_count() - 1, *n, *v);
    }
    r
}

/// The Authorization (or Proxy-Authorization) value of a REGISTER.
fn authorization(req: &Message) -> Option<&str> {
    req.header("Authorization")
        .or_else(|| req.header("Proxy-Authorization"))
}

/// A REGISTER carrying an NTLM AUTHENTICATE (a non-empty gssapi-data).
fn is_authenticate(req: &Message) -> bool {
    authorization(req).is_some_and(|a| a.contains("gssapi-data") && !a.contains("gssapi-data=\"\""))
}

/// A REGISTER carrying the empty NTLM token (round two).
fn is_empty_token(req: &Message) -> bool {
    authorization(req).is_some_and(|a| a.contains("gssapi-data=\"\""))
}

const NTLM_PLAIN: &str =
    "NTLM realm=\"SIP Communications Service\", targetname=\"ocs.contoso.com\", version=4";

/// A well-formed NTLM CHALLENGE message (raw bytes).
fn challenge_bytes(seed: u8) -> Vec<u8> {
    let target_info = ntlm::server_target_info(
        "CONTOSO",
        "OCS",
        "contoso.com",
        "ocs.contoso.com",
        "contoso.com",
    )
    .expect("target info");
    ChallengeMessage {
        flags: 0xE298_82F3,
        server_challenge: [seed; 8],
        target_name: Vec::new(),
        target_info,
        version: Some(ntlm::VERSION_5_2_3790),
    }
    .to_bytes()
    .expect("challenge")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A round-two NTLM challenge with this gssapi-data and (optionally) opaque.
fn ntlm_challenge(gssapi: &str, opaque: Option<&str>) -> String {
    let opaque = opaque
        .map(|o| format!("opaque=\"{o}\", "))
        .unwrap_or_default();
    format!(
        "NTLM {opaque}gssapi-data=\"{gssapi}\", targetname=\"ocs.contoso.com\", realm=\"SIP Communications Service\", version=4"
    )
}

/// A server that starts NTLM normally, then answers the empty token with
/// `round_two` (a WWW-Authenticate value).
fn ntlm_server(round_two: String) -> impl FnMut(&Message, Instant) -> Option<Message> {
    move |req, _| {
        let value = if is_empty_token(req) {
            round_two.as_str()
        } else {
            NTLM_PLAIN
        };
        Some(reply(req, 401, &[("WWW-Authenticate", value)]))
    }
}

// ----- (a) only unknown schemes ------------------------------------------------

#[test]
fn only_unknown_schemes_fail_naming_the_offered_schemes() {
    let mut p = Peer::ocs();
    p.sign_in(&mut |req, _| {
        Some(reply(
            req,
            401,
            &[
                ("WWW-Authenticate", "Bearer realm=\"x\""),
                ("WWW-Authenticate", "Negotiate"),
            ],
        ))
    })
    .expect("no loop");
    let Error::Auth { detail: msg, .. } = p.failure() else {
        panic!("{:?}", p.failure())
    };
    assert!(
        msg.contains("no supported authentication scheme")
            && msg.contains("Bearer")
            && msg.contains("Negotiate"),
        "{msg}"
    );
    assert_eq!(
        p.failure().to_string(),
        "authentication failed: no supported authentication scheme (offered: Bearer, Negotiate)"
    );
    assert_eq!(p.registers.len(), 1, "nothing is retried");
    p.assert_stopped();
}

#[test]
fn kerberos_and_tls_dsk_only_fail_in_the_same_way() {
    // OCS offers Kerberos beside NTLM; a server offering only schemes this
    // client does not implement must not be answered.
    let mut p = Peer::ocs();
    p.sign_in(&mut |req, _| {
        Some(reply(
            req,
            407,
            &[
                (
                    "Proxy-Authenticate",
                    "Kerberos realm=\"SIP Communications Service\", targetname=\"sip/ocs.contoso.com\", version=4",
                ),
                (
                    "Proxy-Authenticate",
                    "TLS-DSK realm=\"SIP Communications Service\", targetname=\"ocs.contoso.com\", version=4, sts-uri=\"https://ocs.contoso.com/CertProv\"",
                ),
            ],
        ))
    })
    .expect("no loop");
    let msg = p.failure().to_string();
    assert!(
        matches!(p.failure(), Error::Auth { .. })
            && msg.contains("Kerberos")
            && msg.contains("TLS-DSK"),
        "{msg}"
    );
    p.assert_stopped();
}

#[test]
fn challenge_response_without_a_challenge_header_fails() {
    for code in [401, 407] {
        let mut p = Peer::ocs();
        p.sign_in(&mut |req, _| Some(reply(req, code, &[])))
            .expect("no loop");
        let Error::Auth { detail: msg, .. } = p.failure() else {
            panic!("{:?}", p.failure())
        };
        assert_eq!(msg, &format!("{code} without a challenge"));
        p.assert_stopped();
    }
}

// ----- (b) Digest without nonce, and other unanswerable Digest -----------------

#[test]
fn digest_without_nonce_fails_naming_the_nonce() {
    for creds in [Some(Credentials::new("alice", "alicepw")), None] {
        let mut p = Peer::new(Dialect::Standard, creds);
        p.sign_in(&mut |req, _| {
            Some(reply(
                req,
                401,
                &[("WWW-Authenticate", "Digest realm=\"x\"")],
            ))
        })
        .expect("no loop");
        let Error::Auth { detail: msg, .. } = p.failure() else {
            panic!("{:?}", p.failure())
        };
        assert!(msg.contains("nonce"), "{msg}");
        assert_eq!(
            p.failure().to_string(),
            "authentication failed: malformed Digest challenge: Digest parameter nonce is missing"
        );
        assert_eq!(p.registers.len(), 1);
        p.assert_stopped();
    }
}

#[test]
fn unanswerable_digest_challenges_fail_clearly() {
    let cases: &[(&str, &str)] = &[
        // No realm.
        ("Digest nonce=\"abc\"", "realm"),
        // An algorithm we do not implement.
        (
            "Digest realm=\"x\", nonce=\"abc\", algorithm=SHA-512-256",
            "algorithm",
        ),
        // Only a qop we do not implement.
        ("Digest realm=\"x\", nonce=\"abc\", qop=\"auth-int\"", "qop"),
    ];
    for (challenge, word) in cases {
        let mut p = Peer::standard();
        p.sign_in(&mut |req, _| Some(reply(req, 401, &[("WWW-Authenticate", challenge)])))
            .expect("no loop");
        let RegistrationEvent::Failed(e @ Error::Auth { .. }) = p.last_event() else {
            panic!("{challenge}: {:?}", p.events)
        };
        assert!(e.to_string().contains(word), "{challenge}: {e}");
        p.assert_stopped();
    }
}

// ----- (c) malformed challenge text --------------------------------------------

#[test]
fn malformed_challenge_text_fails_with_the_position() {
    let mut p = Peer::standard();
    p.sign_in(&mut |req, _| {
        Some(reply(
            req,
            401,
            &[("WWW-Authenticate", "Digest realm=\"unterminated")],
        ))
    })
    .expect("no loop");
    let Error::Auth { detail: msg, .. } = p.failure() else {
        panic!("{:?}", p.failure())
    };
    assert!(msg.starts_with("malformed challenge: "), "{msg}");
    assert!(msg.contains("unterminated quoted string"), "{msg}");
    assert!(msg.contains("at byte "), "the position is named: {msg}");
    p.assert_stopped();
}

#[test]
fn assorted_garbage_challenges_fail_without_panicking() {
    let cases = [
        "Digest realm=\"unterminated",
        "Digest realm=",
        "Digest ,,,",
        "Digest realm=\"x\" nonce=\"y\"",
        "NTLM realm=\"a\" targetname",
        "NTLM gssapi-data=",
        "=",
        "\"Digest\"",
        "Digest realm=\"\\",
        "Digest realm=\"x\", nonce=\"\u{e9}\u{1F600}\"",
    ];
    for challenge in cases {
        for dialect in [Dialect::Ocs, Dialect::Standard] {
            let creds = match dialect {
                Dialect::Ocs => Credentials::new("CONTOSO\\alice", "alicepw"),
                Dialect::Standard => Credentials::new("alice", "alicepw"),
            };
            let mut p = Peer::new(dialect, Some(creds));
            let mut server =
                |req: &Message, _| Some(reply(req, 401, &[("WWW-Authenticate", challenge)]));
            assert!(
                p.sign_in(&mut server).is_ok(),
                "{challenge:?} ({dialect:?}): loops"
            );
            // Whatever the outcome, it is final and explained, or a
            // request for credentials; never silence.
            match p.last_event() {
                RegistrationEvent::Failed(e) => {
                    assert!(!e.to_string().is_empty());
                    p.assert_stopped();
                }
                RegistrationEvent::CredentialsNeeded { .. } => {}
                other => panic!("{challenge:?} ({dialect:?}): {other:?}"),
            }
        }
    }
}

// ----- (d) bad NTLM CHALLENGE tokens -------------------------------------------

#[test]
fn ntlm_challenge_that_is_not_base64_fails() {
    let mut p = Peer::ocs();
    p.sign_in(&mut ntlm_server(ntlm_challenge(
        "***not base64***",
        Some("AB12CD34"),
    )))
    .expect("no loop");
    let Error::PeerMisbehaved { detail: msg, .. } = p.failure() else {
        panic!("{:?}", p.failure())
    };
    assert!(msg.starts_with("bad NTLM CHALLENGE: "), "{msg}");
    assert!(
        p.failure()
            .to_string()
            .starts_with("peer misbehaved: bad NTLM CHALLENGE"),
        "{}",
        p.failure()
    );
    assert_eq!(p.registers.len(), 2, "REGISTER, empty token, then stop");
    p.assert_stopped();
}

#[test]
fn truncated_or_inconsistent_ntlm_challenges_fail() {
    let good = challenge_bytes(1);
    let mut lying_offset = good.clone();
    // TargetInfo's offset field (bytes 44..48) points far past the end.
    lying_offset[44..48].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let mut lying_length = good.clone();
    // TargetInfo's length (bytes 40..42) runs past the end.
    lying_length[40..42].copy_from_slice(&0xfff0u16.to_le_bytes());
    let mut wrong_type = good.clone();
    // MessageType 1 (NEGOTIATE) instead of 2.
    wrong_type[8..12].copy_from_slice(&1u32.to_le_bytes());
    let mut wrong_signature = good.clone();
    wrong_signature[..8].copy_from_slice(b"NTLMSSX\0");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty after decoding", Vec::new()),
        ("signature only", b"NTLMSSP\0".to_vec()),
        ("truncated header", good[..20].to_vec()),
        ("truncated payload", good[..good.len() - 10].to_vec()),
        ("lying offset", lying_offset),
        ("lying length", lying_length),
        ("wrong message type", wrong_type),
        ("wrong signature", wrong_signature),
    ];
    for (what, bytes) in cases {
        let token = b64(&bytes);
        let mut p = Peer::ocs();
        p.sign_in(&mut ntlm_server(ntlm_challenge(&token, Some("AB12CD34"))))
            .expect("no loop");
        match p.last_event() {
            RegistrationEvent::Failed(e @ Error::PeerMisbehaved { detail: msg, .. }) => {
                assert!(msg.contains("NTLM"), "{what}: {e}");
            }
            // An empty decoded token is the same as no token at all.
            RegistrationEvent::Failed(e) if bytes.is_empty() => {
                assert!(e.to_string().contains("NTLM"), "{what}: {e}");
            }
            other => panic!("{what}: expected PeerMisbehaved, got {other:?}"),
        }
        p.assert_stopped();
    }
}

#[test]
fn ntlm_round_two_without_a_token_fails() {
    // The server answers the empty token with another plain challenge.
    for challenge in [NTLM_PLAIN.to_owned(), ntlm_challenge("", Some("AB12CD34"))] {
        let mut p = Peer::ocs();
        p.sign_in(&mut ntlm_server(challenge.clone()))
            .expect("no loop");
        let Error::PeerMisbehaved { detail: msg, .. } = p.failure() else {
            panic!("{challenge}: {:?}", p.failure())
        };
        assert_eq!(msg, "NTLM challenge without a CHALLENGE token");
        assert_eq!(p.registers.len(), 2);
        p.assert_stopped();
    }
}

// ----- (e) NTLM CHALLENGE without opaque ---------------------------------------

#[test]
fn ntlm_challenge_without_opaque_fails() {
    let mut p = Peer::ocs();
    p.sign_in(&mut ntlm_server(ntlm_challenge(
        &b64(&challenge_bytes(1)),
        None,
    )))
    .expect("no loop");
    let Error::Auth { detail: msg, .. } = p.failure() else {
        panic!("{:?}", p.failure())
    };
    assert!(msg.contains("opaque"), "{msg}");
    assert_eq!(
        p.failure().to_string(),
        "authentication failed: NTLM challenge without opaque"
    );
    assert_eq!(p.registers.len(), 2);
    p.assert_stopped();
}

#[test]
fn well_formed_ntlm_exchange_reaches_authenticate() {
    // The control for the NTLM tests above: with a good CHALLENGE the
    // client answers with an AUTHENTICATE (then the 200 is unsigned here,
    // which it must refuse).
    let mut p = Peer::ocs();
    p.sign_in(&mut |req: &Message, _| {
        if is_authenticate(req) {
            return Some(reply(req, 200, &[("Expires", "7200")]));
        }
        let value = if is_empty_token(req) {
            ntlm_challenge(&b64(&challenge_bytes(1)), Some("AB12CD34"))
        } else {
            NTLM_PLAIN.to_owned()
        };
        Some(reply(req, 401, &[("WWW-Authenticate", &value)]))
    })
    .expect("no loop");
    assert_eq!(p.registers.len(), 3);
    assert!(is_authenticate(&p.registers[2].1));
    let Error::PeerMisbehaved { detail: msg, .. } = p.failure() else {
        panic!("{:?}", p.failure())
    };
    assert_eq!(msg, "unsigned 200 OK after NTLM authentication");
    p.assert_stopped();
}

// ----- (f) absurd Expires -------------------------------------------------------

/// Registers without authentication, the 200 carrying `headers`; returns
/// the granted lifetime after checking the refresh timer is sane.
fn register_with_200(headers: &[(&str, &str)]) -> u32 {
    let mut p = Peer::ocs();
    p.sign_in(&mut |req, _| Some(reply(req, 200, headers)))
        .expect("no loop");
    let RegistrationEvent::Registered { expires, .. } = p.last_event() else {
        panic!("{headers:?}: {:?}", p.events)
    };
    let expires = *expires;
    assert!(
        (1..=7 * 24 * 3600).contains(&expires),
        "{headers:?}: granted {expires}"
    );
    let refresh = p.reg.poll_timeout().expect("a refresh timer");
    assert!(refresh > p.now, "{headers:?}: refresh not in the future");
    assert!(
        refresh <= p.now + Duration::from_secs(u64::from(expires)),
        "{headers:?}: refresh after expiry"
    );
    assert!(p.reg.is_registered());
    expires
}

#[test]
fn absurd_expires_values_give_a_sane_refresh() {
    // Out of range for u32: ignored, the default lifetime applies.
    assert_eq!(
        register_with_200(&[("Expires", "99999999999999999999")]),
        3600
    );
    // In range but absurd: capped at a week.
    assert_eq!(register_with_200(&[("Expires", "4294967295")]), 604_800);
    // The same in the Contact's expires parameter.
    assert_eq!(
        register_with_200(&[(
            "Contact",
            "<sip:192.0.2.10:40000;transport=tcp>;expires=99999999999999999999"
        )]),
        3600
    );
    assert_eq!(
        register_with_200(&[(
            "Contact",
            "<sip:192.0.2.10:40000;transport=tcp>;expires=4294967295"
        )]),
        604_800
    );
    // Negative and non-numeric values are ignored.
    assert_eq!(register_with_200(&[("Expires", "-5")]), 3600);
    assert_eq!(register_with_200(&[("Expires", "soon")]), 3600);
}

#[test]
fn huge_expires_refreshes_a_week_later_and_keeps_going() {
    let mut p = Peer::ocs();
    let mut server = |req: &Message, _| Some(reply(req, 200, &[("Expires", "4294967295")]));
    p.sign_in(&mut server).expect("no loop");
    p.run_until(Duration::from_secs(3 * 7 * 24 * 3600), &mut server)
        .expect("no loop");
    let times: Vec<u64> = p.registers.iter().map(|(t, _)| t.as_secs()).collect();
    assert_eq!(times, [0, 604_770, 1_209_540, 1_814_310]);
}

// ----- (g) Expires: 0 in a 200 ------------------------------------------------

#[test]
fn expires_zero_in_a_200_does_not_spin() {
    let mut p = Peer::ocs();
    let mut server = |req: &Message, _| Some(reply(req, 200, &[("Expires", "0")]));
    p.sign_in(&mut server).expect("no loop");
    // A binding confirmed with expires 0 is no registration: back off.
    assert!(
        matches!(
            p.last_event(),
            RegistrationEvent::RetryScheduled { error: ocs_core::error::Error::PeerMisbehaved { detail: m, .. }, .. } if m.contains("expires 0")
        ),
        "{:?}",
        p.events
    );
    p.run_until(Duration::from_secs(60), &mut server)
        .expect("no loop");
    let n = p.registers.len();
    eprintln!("Expires: 0 -> {n} REGISTERs in 60 s");
    assert!(n < 200, "{n} REGISTERs in 60 s");
    // No two REGISTERs at the same instant: time has to pass between them.
    for w in p.registers.windows(2) {
        assert!(w[1].0 > w[0].0, "two REGISTERs at {:?}", w[0].0);
    }
}

#[test]
fn expires_zero_in_a_200_is_not_a_registration() {
    // RFC 3261 §10.2.4/§10.3: a 200 whose binding has expires 0 means the
    // binding is gone. Treating it as a 1 s registration refreshes twice a
    // second for ever. Expected: fail, or back off like any other failure.
    let mut p = Peer::ocs();
    let mut server = |req: &Message, _| Some(reply(req, 200, &[("Expires", "0")]));
    p.sign_in(&mut server).expect("no loop");
    p.run_until(Duration::from_secs(60), &mut server)
        .expect("no loop");
    assert!(
        p.registers.len() <= 10,
        "{} REGISTERs in 60 s",
        p.registers.len()
    );
}

// ----- (h) giant headers through the endpoint -----------------------------------

struct Ep {
    now: Instant,
    ep: Endpoint,
    events: Vec<EndpointEvent>,
}

impl Ep {
    fn new(transport: Transport) -> Ep {
        let now = t0();
        let mut reg = RegisterConfig::new(AOR, Dialect::Ocs, "c8ca638a15");
        reg.retry_first_sign_in = true;
        let mut ep = Endpoint::new(
            EndpointConfig::new(reg, Some(Credentials::new("CONTOSO\\alice", "alicepw"))),
            3,
            [9; 32],
            now,
            SystemTime::UNIX_EPOCH,
        );
        ep.connected(
            LocalTransport {
                transport,
                addr: local(),
            },
            now,
        );
        ep.register(now).expect("register");
        Ep {
            now,
            ep,
            events: Vec::new(),
        }
    }

    /// The REGISTERs the endpoint wants to send.
    fn sent(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(b) = self.ep.poll_transmit() {
            if let Ok(m) = Message::parse(&b) {
                out.push(m);
            }
        }
        out
    }

    fn drain(&mut self) {
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
    }
}

fn giant_401(req: &Message, value_len: usize) -> Vec<u8> {
    let value = format!("NTLM realm=\"{}\"", "x".repeat(value_len));
    reply(req, 401, &[("WWW-Authenticate", &value)]).to_bytes()
}

#[test]
fn giant_challenge_over_a_stream_breaks_the_connection() {
    let mut e = Ep::new(Transport::Tcp);
    let sent = e.sent();
    assert_eq!(sent.len(), 1);
    let bytes = giant_401(&sent[0], 100 * 1024);
    // Arrives in TCP-sized pieces; the driver stops reading at the first
    // ConnectionBroken.
    let mut fed = 0;
    for chunk in bytes.chunks(1400) {
        e.ep.handle_bytes(chunk, e.now);
        fed += chunk.len();
        e.drain();
        if !e.events.is_empty() {
            break;
        }
    }
    let [EndpointEvent::ConnectionBroken(why)] = e.events.as_slice() else {
        panic!("{:?}", e.events)
    };
    assert_eq!(why, "header bytes limit exceeded at byte 65536");
    // Noticed as soon as the limit is passed, not at the end of the header.
    assert!(fed < 64 * 1024 + 1400, "{fed} bytes read");
    // Bytes that still arrive on the broken stream keep saying so.
    e.ep.handle_bytes(&bytes[fed..fed + 1400], e.now);
    e.drain();
    assert!(
        matches!(e.events.last(), Some(EndpointEvent::ConnectionBroken(_))),
        "{:?}",
        e.events
    );
    assert!(e.sent().is_empty(), "nothing is answered");
    assert!(!e.ep.registration().is_registered());
    // The driver closes the connection; the registration retries.
    e.ep.handle_connection_lost(e.now);
    e.drain();
    assert!(
        matches!(
            e.events.last(),
            Some(EndpointEvent::Registration(
                RegistrationEvent::RetryScheduled { .. }
            ))
        ),
        "{:?}",
        e.events.last()
    );
}

#[test]
fn giant_challenge_in_one_datagram_is_dropped_as_malformed() {
    let mut e = Ep::new(Transport::Udp);
    let sent = e.sent();
    assert_eq!(sent.len(), 1);
    e.ep.handle_bytes(&giant_401(&sent[0], 100 * 1024), e.now);
    e.drain();
    let [EndpointEvent::Malformed(why)] = e.events.as_slice() else {
        panic!("{:?}", e.events)
    };
    assert!(why.contains("limit exceeded"), "{why}");
    assert!(e.sent().is_empty());
    // The REGISTER transaction still runs (retransmits, then times out).
    assert!(e.ep.poll_timeout().is_some());
}

#[test]
fn large_challenge_within_the_limits_is_handled() {
    // 60 KiB: under the 64 KiB head limit, so it is parsed and answered
    // like any other NTLM challenge.
    let mut e = Ep::new(Transport::Tcp);
    let sent = e.sent();
    e.ep.handle_bytes(&giant_401(&sent[0], 60 * 1024), e.now);
    e.drain();
    assert!(
        !e.events
            .iter()
            .any(|ev| matches!(ev, EndpointEvent::ConnectionBroken(_))),
        "{:?}",
        e.events
    );
    let next = e.sent();
    assert_eq!(next.len(), 1, "the empty-token REGISTER goes out");
    assert!(is_empty_token(&next[0]));
}

// ----- (i) challenge loops -----------------------------------------------------

#[test]
fn ntlm_server_that_challenges_forever_before_sign_in_is_not_looped() {
    // Every REGISTER gets a fresh CHALLENGE under a fresh opaque.
    let mut n = 0u8;
    let mut p = Peer::ocs();
    let r = p.sign_in(&mut |req, _| {
        n = n.wrapping_add(1);
        let opaque = format!("{n:08X}");
        Some(reply(
            req,
            401,
            &[(
                "WWW-Authenticate",
                &ntlm_challenge(&b64(&challenge_bytes(n)), Some(&opaque)),
            )],
        ))
    });
    assert!(r.is_ok(), "looped: {} REGISTERs", p.registers.len());
    assert!(p.registers.len() <= 3, "{}", p.registers.len());
    assert!(
        matches!(
            p.last_event(),
            RegistrationEvent::CredentialsNeeded {
                reason: CredentialsReason::Rejected,
                ..
            }
        ),
        "{:?}",
        p.events
    );
    assert_eq!(p.reg.state(), RegState::WaitingForCredentials);
}

#[test]
fn ntlm_server_that_rejects_authenticate_asks_for_credentials() {
    // What a real server does with a wrong password: AUTHENTICATE gets a
    // new plain challenge.
    let mut p = Peer::ocs();
    let r = p.sign_in(&mut ntlm_rejecting_server());
    assert!(r.is_ok(), "looped: {} REGISTERs", p.registers.len());
    assert_eq!(p.registers.len(), 3);
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded {
            reason: CredentialsReason::Rejected,
            ..
        }
    ));
    // New credentials, the same answer: asked again, still bounded.
    p.reg
        .set_credentials(Credentials::new("CONTOSO\\alice", "other"), p.now)
        .expect("set");
    let r = p.exchange(&mut ntlm_rejecting_server());
    assert!(r.is_ok(), "looped: {} REGISTERs", p.registers.len());
    assert_eq!(p.registers.len(), 6);
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded {
            reason: CredentialsReason::Rejected,
            ..
        }
    ));
}

/// Plain challenge for anything but the empty token, a good CHALLENGE for
/// that: an AUTHENTICATE is always refused.
fn ntlm_rejecting_server() -> impl FnMut(&Message, Instant) -> Option<Message> {
    let mut n = 0u8;
    move |req, _| {
        n = n.wrapping_add(1);
        let value = if is_empty_token(req) {
            ntlm_challenge(&b64(&challenge_bytes(n)), Some(&format!("{n:08X}")))
        } else {
            NTLM_PLAIN.to_owned()
        };
        Some(reply(req, 401, &[("WWW-Authenticate", &value)]))
    }
}

#[test]
fn digest_server_that_challenges_forever_before_sign_in_is_not_looped() {
    // A fresh nonce every time, never stale.
    let mut n = 0u32;
    let mut p = Peer::standard();
    let r = p.sign_in(&mut |req, _| {
        n += 1;
        let v = format!("Digest realm=\"x\", nonce=\"n{n}\", qop=\"auth\"");
        Some(reply(req, 401, &[("WWW-Authenticate", &v)]))
    });
    assert!(r.is_ok(), "looped: {} REGISTERs", p.registers.len());
    assert_eq!(p.registers.len(), 2);
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded {
            reason: CredentialsReason::Rejected,
            ..
        }
    ));
}

/// A Registrar for the first sign-in (at the start), then `hostile` for
/// everything later.
fn registrar_then(
    auth: AuthMode,
    start: Instant,
    mut hostile: impl FnMut(&Message) -> Message,
) -> impl FnMut(&Message, Instant) -> Option<Message> {
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.auth = auth;
    cfg.use_401 = true;
    let mut registrar = Registrar::new(cfg, Rng::from_seed(1), [7; 32]);
    registrar.add_user("alice", "CONTOSO", "alicepw");
    move |req, now| {
        if now == start {
            match registrar.handle_request(req, now) {
                RegistrarOutcome::Respond(m) => Some(m),
                _ => None,
            }
        } else {
            Some(hostile(req))
        }
    }
}

/// Signs in against the registrar, then runs an hour with `hostile`
/// answering from the first refresh on; returns the REGISTER count, or
/// `Err` with it when the registration looped.
fn refresh_against(
    mut p: Peer,
    auth: AuthMode,
    hostile: impl FnMut(&Message) -> Message,
) -> (Peer, Result<usize, usize>) {
    let mut server = registrar_then(auth, p.start, hostile);
    p.sign_in(&mut server).expect("sign-in");
    assert!(p.reg.is_registered(), "{:?}", p.events);
    let r = p
        .run_until(Duration::from_secs(7200), &mut server)
        .map(|()| p.registers.len());
    (p, r)
}

#[test]
fn ntlm_refresh_answered_with_plain_challenges_forever_is_not_looped() {
    // The association is gone (server restart) and the server cannot
    // complete a handshake: the client restarts NTLM once, then gives up.
    let (p, r) = refresh_against(Peer::ocs(), AuthMode::Ntlm, |req| {
        reply(req, 401, &[("WWW-Authenticate", NTLM_PLAIN)])
    });
    let n = r.expect("no loop");
    assert!(n <= 3 + 2, "{n} REGISTERs");
    assert!(
        matches!(
            p.last_event(),
            RegistrationEvent::Failed(Error::PeerMisbehaved { .. })
        ),
        "{:?}",
        p.events
    );
}

#[test]
fn ntlm_refresh_with_rejected_reauthentication_is_not_looped() {
    // The password changed while signed in: the refresh is challenged, the
    // client re-handshakes, the server refuses the AUTHENTICATE with a new
    // plain challenge. Expected: CredentialsNeeded { Rejected } (or a
    // failure) after a handful of REGISTERs.
    let (p, r) = refresh_against(Peer::ocs(), AuthMode::Ntlm, {
        let mut s = ntlm_rejecting_server();
        move |req| s(req, t0()).expect("answer")
    });
    let n = match r {
        Ok(n) => n,
        Err(n) => panic!("looped: {n} REGISTERs within one refresh, no time passing"),
    };
    assert!(n <= 3 + 4, "{n} REGISTERs");
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded { .. } | RegistrationEvent::Failed(_)
    ));
}

#[test]
fn ntlm_refresh_answered_with_fresh_challenges_forever_is_not_looped() {
    let mut k = 0u8;
    let (p, r) = refresh_against(Peer::ocs(), AuthMode::Ntlm, move |req| {
        k = k.wrapping_add(1);
        let v = ntlm_challenge(&b64(&challenge_bytes(k)), Some(&format!("{k:08X}")));
        reply(req, 401, &[("WWW-Authenticate", &v)])
    });
    let n = match r {
        Ok(n) => n,
        Err(n) => panic!("looped: {n} REGISTERs within one refresh, no time passing"),
    };
    assert!(n <= 3 + 4, "{n} REGISTERs");
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded { .. } | RegistrationEvent::Failed(_)
    ));
}

#[test]
fn digest_stale_forever_is_not_looped() {
    let mut n = 0u32;
    let mut p = Peer::standard();
    let r = p.sign_in(&mut |req, _| {
        n += 1;
        let v = format!("Digest realm=\"x\", nonce=\"n{n}\", qop=\"auth\", stale=true");
        Some(reply(req, 401, &[("WWW-Authenticate", &v)]))
    });
    assert!(
        r.is_ok(),
        "looped: more than {CAP} REGISTERs with no time passing"
    );
}

#[test]
fn digest_refresh_answered_with_fresh_nonces_forever_is_not_looped() {
    let mut k = 0u32;
    let (p, r) = refresh_against(Peer::standard(), AuthMode::Digest, move |req| {
        k += 1;
        let v = format!("Digest realm=\"x\", nonce=\"fresh{k}\", qop=\"auth\"");
        reply(req, 401, &[("WWW-Authenticate", &v)])
    });
    let n = match r {
        Ok(n) => n,
        Err(n) => panic!("looped: {n} REGISTERs within one refresh, no time passing"),
    };
    assert!(n <= 2 + 3, "{n} REGISTERs");
    assert!(matches!(
        p.last_event(),
        RegistrationEvent::CredentialsNeeded { .. } | RegistrationEvent::Failed(_)
    ));
}

#[test]
fn interval_too_brief_forever_is_not_looped() {
    let mut p = Peer::standard();
    let r = p.sign_in(&mut |req, _| Some(reply(req, 423, &[("Min-Expires", "3600")])));
    assert!(
        r.is_ok(),
        "looped: more than {CAP} REGISTERs with no time passing"
    );
}

#[test]
fn interval_too_brief_once_is_followed() {
    let mut p = Peer::standard();
    let mut first = true;
    p.sign_in(&mut |req, _| {
        if std::mem::take(&mut first) {
            Some(reply(req, 423, &[("Min-Expires", "7200")]))
        } else {
            Some(reply(req, 200, &[("Expires", "7200")]))
        }
    })
    .expect("no loop");
    assert_eq!(p.registers.len(), 2);
    assert_eq!(p.registers[1].1.header("Expires"), Some("7200"));
    assert!(p.reg.is_registered());
}

#[test]
fn absurd_retry_after_does_not_panic() {
    for value in ["4294967295", "99999999999999999999", "-1", "soon"] {
        let mut p = Peer::ocs();
        p.sign_in(&mut |req, _| Some(reply(req, 503, &[("Retry-After", value)])))
            .expect("no loop");
        let RegistrationEvent::RetryScheduled { at, error } = p.last_event() else {
            panic!("{value}: {:?}", p.events)
        };
        assert!(*at > p.now, "{value}");
        assert!(matches!(error, Error::Rejected { status: 503, .. }));
        eprintln!("Retry-After: {value} -> retry in {:?}", *at - p.now);
    }
}

#[test]
fn absurd_retry_after_is_capped() {
    let mut p = Peer::ocs();
    p.sign_in(&mut |req, _| Some(reply(req, 503, &[("Retry-After", "4294967295")])))
        .expect("no loop");
    let RegistrationEvent::RetryScheduled { at, .. } = p.last_event() else {
        panic!("{:?}", p.events)
    };
    assert!(
        *at - p.now <= Duration::from_secs(24 * 3600),
        "retry in {:?}",
        *at - p.now
    );
}

// ----- (j) redirects without a usable Contact ----------------------------------

#[test]
fn redirect_without_a_usable_contact_fails() {
    let cases: &[(u16, &[(&str, &str)])] = &[
        (301, &[]),
        (302, &[]),
        (301, &[("Contact", "<tel:+14255550100>")]),
        (302, &[("Contact", "*")]),
        (302, &[("Contact", "<<garbage")]),
    ];
    for (code, headers) in cases {
        let mut p = Peer::ocs();
        p.sign_in(&mut |req, _| Some(reply(req, *code, headers)))
            .expect("no loop");
        let Error::PeerMisbehaved { detail: msg, .. } = p.failure() else {
            panic!("{code} {headers:?}: {:?}", p.failure())
        };
        assert_eq!(
            msg, "redirect without a usable Contact",
            "{code} {headers:?}"
        );
        assert_eq!(
            p.failure().to_string(),
            "peer misbehaved: redirect without a usable Contact"
        );
        assert_eq!(p.registers.len(), 1);
        p.assert_stopped();
    }
}

#[test]
fn redirect_with_a_contact_is_followed() {
    let mut p = Peer::ocs();
    p.sign_in(&mut |req, _| {
        Some(reply(
            req,
            301,
            &[("Contact", "<sip:pool2.contoso.com:5061;transport=tls>")],
        ))
    })
    .expect("no loop");
    let RegistrationEvent::Redirected(r) = p.last_event() else {
        panic!("{:?}", p.events)
    };
    assert_eq!(r.host, "pool2.contoso.com");
    assert_eq!(r.port, Some(5061));
}

// ----- the first sign-in is not retried unless asked -------------------------

#[test]
fn a_failed_first_sign_in_ends_with_its_error() {
    let mut p = Peer::ocs();
    p.reg = Registration::new(
        RegisterConfig::new(AOR, Dialect::Ocs, "c8ca638a15"),
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
        Rng::from_seed(3),
        [9; 32],
        p.now,
        SystemTime::UNIX_EPOCH,
    );
    p.reg.set_local(
        LocalTransport {
            transport: Transport::Tcp,
            addr: "127.0.0.1:5060".parse().expect("addr"),
        },
        p.now,
    );
    p.sign_in(&mut |req, _| Some(reply(req, 503, &[("Retry-After", "30")])))
        .expect("no loop");
    assert!(
        matches!(
            p.last_event(),
            RegistrationEvent::Failed(Error::Rejected { status: 503, .. })
        ),
        "{:?}",
        p.events
    );
    assert_eq!(p.registers.len(), 1, "no retry");
    assert_eq!(p.reg.poll_timeout(), None, "nothing scheduled");
}
