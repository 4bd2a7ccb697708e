//! Sign-in pair tests: the client [`Endpoint`] against the embedded test
//! server, passing bytes on a simulated clock (hours pass in microseconds).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use ocs_core::error::Error;
use ocs_core::register::{
    Credentials, CredentialsReason, LocalTransport, RegisterConfig, RegistrationEvent,
};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};
use ocs_core::sip::{Message, Method};

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    // An arbitrary origin for the simulated clock.
    Instant::now()
}

const CLIENT: &str = "192.0.2.10:40000";

/// Rewrites server-to-client bytes in flight.
type Tamper = Box<dyn FnMut(Vec<u8>) -> Vec<u8>>;

struct World {
    start: Instant,
    now: Instant,
    client: Endpoint,
    server: SimServer,
    transport: Transport,
    /// Every message the client sent, with its time.
    sent: Vec<(Duration, Vec<u8>)>,
    events: Vec<(Duration, EndpointEvent)>,
    /// Applied to server→client bytes before delivery.
    tamper: Option<Tamper>,
    connected: bool,
}

fn peer() -> SocketAddr {
    CLIENT.parse().expect("addr")
}

impl World {
    fn new(
        dialect: Dialect,
        auth: AuthMode,
        transport: Transport,
        creds: Option<Credentials>,
    ) -> World {
        let start = t0();
        let mut rcfg = RegistrarConfig::ocs("contoso.com");
        rcfg.auth = auth;
        let mut registrar = Registrar::new(rcfg, Rng::from_seed(1), [7; 32]);
        registrar.add_user("alice", "CONTOSO", "alicepw");
        let server = SimServer::new(registrar, Rng::from_seed(2));
        let mut reg = RegisterConfig::new("sip:alice@contoso.com", dialect, "c8ca638a15");
        // These tests follow the back-off, which a first sign-in only gets
        // when the host asks for it (signin_bad_input tests the default).
        reg.retry_first_sign_in = true;
        if dialect == Dialect::Standard {
            reg.expires = Some(600);
        }
        let client = Endpoint::new(
            EndpointConfig::new(reg, creds),
            3,
            [9; 32],
            start,
            SystemTime::UNIX_EPOCH,
        );
        World {
            start,
            now: start,
            client,
            server,
            transport,
            sent: Vec::new(),
            events: Vec::new(),
            tamper: None,
            connected: false,
        }
    }

    fn connect(&mut self) {
        self.client.connected(
            LocalTransport {
                transport: self.transport,
                addr: peer(),
            },
            self.now,
        );
        self.connected = true;
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Delivers everything in flight, both ways, until quiet.
    fn flush(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit() {
                moved = true;
                self.sent.push((self.elapsed(), b.clone()));
                if !self.connected {
                    continue;
                }
                match self.transport {
                    Transport::Udp => self.server.handle_datagram(peer(), &b, self.now),
                    _ => self.server.handle_stream(peer(), &b, self.now),
                }
            }
            while let Some((_, b)) = self.server.poll_transmit() {
                moved = true;
                if !self.connected {
                    continue;
                }
                let b = match &mut self.tamper {
                    Some(f) => f(b),
                    None => b,
                };
                self.client.handle_bytes(&b, self.now);
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                self.events.push((self.elapsed(), e));
            }
            if !moved {
                return;
            }
        }
        let tail: Vec<String> = self
            .sent
            .iter()
            .rev()
            .take(4)
            .map(|(t, b)| format!("{t:?} {}", String::from_utf8_lossy(b)))
            .collect();
        panic!(
            "no quiescence: {tail:#?} {:?}",
            self.events.iter().rev().take(4).collect::<Vec<_>>()
        );
    }

    /// Runs the clock to `until` (from the start), firing timers in order.
    fn run_until(&mut self, until: Duration) {
        self.flush();
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at - self.start <= until => {
                    self.now = at.max(self.now);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.flush();
                }
                _ => break,
            }
        }
        self.now = self.start + until;
    }

    fn registrations(&self) -> Vec<(Duration, &RegistrationEvent)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                EndpointEvent::Registration(r) => Some((*t, r)),
                _ => None,
            })
            .collect()
    }

    fn registers_sent(&self) -> Vec<(Duration, Message)> {
        self.sent
            .iter()
            .filter_map(|(t, b)| Message::parse(b).ok().map(|m| (*t, m)))
            .filter(|(_, m)| m.method().is_some_and(|m| m.as_str() == "REGISTER"))
            .collect()
    }
}

fn creds() -> Option<Credentials> {
    Some(Credentials::new("CONTOSO\\alice", "alicepw"))
}

#[test]
fn ntlm_sign_in_over_tls_gets_gruu_and_keep_alive() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    let regs = w.registrations();
    let Some((
        _,
        RegistrationEvent::Registered {
            gruu,
            expires,
            keep_alive,
            refresh,
            auth_scheme,
            auth_version,
        },
    )) = regs.first()
    else {
        panic!("not registered: {:?}", w.events)
    };
    assert_eq!(*expires, 7200);
    assert_eq!(*keep_alive, Some(Duration::from_secs(300)));
    assert!(!refresh);
    assert_eq!(auth_scheme, "NTLM");
    assert_eq!(*auth_version, 4);
    assert_eq!(
        gruu.as_deref(),
        Some("sip:alice@contoso.com;opaque=user:epid:21nYNIVlkV-jtN6FPBU0fQAA;gruu")
    );
    // Three REGISTERs: no auth, empty token, AUTHENTICATE with signature.
    let sent = w.registers_sent();
    assert_eq!(sent.len(), 3);
    assert!(sent[0].1.header("Proxy-Authorization").is_none());
    assert!(
        sent[1]
            .1
            .header("Proxy-Authorization")
            .expect("auth")
            .contains("gssapi-data=\"\"")
    );
    let third = sent[2].1.header("Proxy-Authorization").expect("auth");
    assert!(
        third.contains("crand=") && third.contains("cnum=\"1\"") && third.contains("response=")
    );
    // OC's REGISTER shape.
    let first = &sent[0].1;
    assert!(
        first
            .header("Contact")
            .expect("contact")
            .contains("+sip.instance=\"<urn:uuid:34D859DB-6585-5F91-A3B4-DE853C15347D>\"")
    );
    assert_eq!(first.header("ms-keep-alive"), Some("UAC;hop-hop=yes"));
    assert_eq!(first.header("Event"), Some("registration"));
    assert!(
        w.server
            .registrar()
            .binding("sip:alice@contoso.com", w.now)
            .is_some()
    );
}

#[test]
fn refresh_before_expiry_and_reauthentication_at_sa_lifetime() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tcp, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.run_until(Duration::from_secs(8 * 3600));
    let sent = w.registers_sent();
    let times: Vec<u64> = sent.iter().map(|(t, _)| t.as_secs()).collect();
    // Sign-in (3 REGISTERs at 0), signed refreshes every 7200 - 30 s, and a
    // fresh handshake at 8 h - 5 min = 28500 s.
    assert_eq!(&times[..3], &[0, 0, 0]);
    let refreshes: Vec<u64> = sent[3..]
        .iter()
        .filter(|(_, m)| {
            m.header("Proxy-Authorization")
                .is_some_and(|a| !a.contains("gssapi-data"))
        })
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(&refreshes[..3], &[7170, 14340, 21510]);
    let handshake_starts: Vec<u64> = sent[3..]
        .iter()
        .filter(|(_, m)| m.header("Proxy-Authorization").is_none())
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(handshake_starts, vec![28500]);
    // Every one of them succeeded.
    let ok = w
        .registrations()
        .iter()
        .filter(|(_, e)| matches!(e, RegistrationEvent::Registered { .. }))
        .count();
    assert_eq!(ok, 5, "{:?}", w.registrations());
    assert!(w.client.registration().is_registered());
}

#[test]
fn crlf_keep_alives_follow_ms_keep_alive_timeout() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.run_until(Duration::from_secs(1000));
    let pings: Vec<u64> = w
        .sent
        .iter()
        .filter(|(_, b)| b.as_slice() == b"\r\n\r\n")
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(pings, vec![300, 600, 900]);
}

#[test]
fn udp_keep_alives_go_out_between_messages_and_the_registration_holds() {
    let mut w = World::new(
        Dialect::Standard,
        AuthMode::Digest,
        Transport::Udp,
        Some(Credentials::new("alice", "alicepw")),
    );
    w.connect();
    w.client.register(w.now).expect("register");
    w.run_until(Duration::from_secs(1000));
    // A CRLF datagram once nothing else went out for 15 s (the default).
    let mut last = Duration::ZERO;
    let mut pings = 0;
    for (t, b) in &w.sent {
        if b.as_slice() == b"\r\n\r\n" {
            assert_eq!(*t - last, Duration::from_secs(15), "{:?}", w.sent);
            pings += 1;
        }
        last = *t;
    }
    assert!(pings >= 60, "{pings}");
    assert!(w.client.registration().is_registered());
}

#[test]
fn redirect_301_names_the_home_pool() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.server
        .registrar_mut()
        .redirect_user("alice", "pool2.contoso.com:5061;transport=tls");
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    let regs = w.registrations();
    let Some((_, RegistrationEvent::Redirected(r))) = regs.last() else {
        panic!("{regs:?}")
    };
    assert_eq!(r.host, "pool2.contoso.com");
    assert_eq!(r.port, Some(5061));
    assert_eq!(r.transport, Transport::Tls);
}

#[test]
fn service_unavailable_with_retry_after_is_retried_then_succeeds() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.server.registrar_mut().set_unavailable(Some(120));
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    let regs = w.registrations();
    let Some((_, RegistrationEvent::RetryScheduled { at, error })) = regs.first() else {
        panic!("{regs:?}")
    };
    assert_eq!(*at - w.start, Duration::from_secs(120));
    let Error::Rejected {
        status: 503,
        retry_after,
        diagnostics,
        ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(120)));
    assert_eq!(
        diagnostics
            .as_ref()
            .and_then(|d| d.reason.clone())
            .as_deref(),
        Some("Server is busy")
    );
    w.server.registrar_mut().set_unavailable(None);
    w.run_until(Duration::from_secs(121));
    assert!(w.client.registration().is_registered());
    let first_ok = w
        .registrations()
        .iter()
        .find(|(_, e)| matches!(e, RegistrationEvent::Registered { .. }))
        .map(|(t, _)| t.as_secs());
    assert_eq!(first_ok, Some(120));
}

#[test]
fn server_restart_then_reregistration_with_backoff() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(w.client.registration().is_registered());
    // The server restarts: connection gone, associations forgotten.
    w.server.registrar_mut().restart();
    w.connected = false;
    w.client.handle_connection_lost(w.now);
    // Reconnecting fails for a while: each retry finds no connection.
    let mut retries = Vec::new();
    for _ in 0..4 {
        w.flush();
        let Some((_, RegistrationEvent::RetryScheduled { at, .. })) =
            w.registrations().last().copied()
        else {
            panic!("{:?}", w.events)
        };
        retries.push(*at - w.now);
        w.now = *at;
        w.client.handle_timeout(w.now);
        w.flush();
        assert!(
            w.events
                .iter()
                .any(|(_, e)| *e == EndpointEvent::NeedConnection)
        );
        // The connection attempt fails again.
        w.client.handle_connection_lost(w.now);
    }
    // Jittered exponential back-off: each delay within [base/2, 1.5 base).
    for (i, d) in retries.iter().enumerate() {
        let base = Duration::from_secs(1 << i);
        assert!(*d >= base / 2 && *d < base * 3 / 2, "retry {i}: {d:?}");
    }
    // The server is back: the next retry reconnects and signs in afresh.
    w.flush();
    let Some((_, RegistrationEvent::RetryScheduled { at, .. })) = w.registrations().last().copied()
    else {
        panic!()
    };
    w.now = *at;
    w.client.handle_timeout(w.now);
    w.connect();
    w.flush();
    assert!(
        w.client.registration().is_registered(),
        "{:?}",
        w.registrations()
    );
}

#[test]
fn forced_sign_out_and_forged_or_tampered_messages() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    // A tampered Call-ID breaks the signature: dropped, still registered.
    w.tamper = Some(Box::new(|b| {
        String::from_utf8(b)
            .expect("utf8")
            .replacen("Call-ID: ", "Call-ID: x", 1)
            .into_bytes()
    }));
    assert!(
        w.server
            .force_sign_out("sip:alice@contoso.com", "User disabled", w.now)
    );
    w.flush();
    assert!(w.client.registration().is_registered());
    assert!(
        w.events
            .iter()
            .any(|(_, e)| matches!(e, EndpointEvent::SecurityViolation(_)))
    );
    // A forged signature is refused too.
    w.tamper = Some(Box::new(|b| {
        let s = String::from_utf8(b).expect("utf8");
        match s.find("rspauth=\"") {
            Some(i) => {
                let mut s = s.into_bytes();
                let j = i + "rspauth=\"".len() + 10;
                s[j] = if s[j] == b'0' { b'1' } else { b'0' };
                s
            }
            None => s.into_bytes(),
        }
    }));
    w.server
        .registrar_mut()
        .add_user("alice", "CONTOSO", "alicepw");
    // (force_sign_out dropped the server's association; sign in again.)
    w.tamper = None;
    w.client.handle_connection_lost(w.now);
    w.connect();
    w.run_until(Duration::from_secs(5));
    assert!(
        w.client.registration().is_registered(),
        "{:?}",
        w.registrations()
    );
    let violations_before = w
        .events
        .iter()
        .filter(|(_, e)| matches!(e, EndpointEvent::SecurityViolation(_)))
        .count();
    w.tamper = Some(Box::new(|b| {
        let s = String::from_utf8(b).expect("utf8");
        match s.find("rspauth=\"") {
            Some(i) => {
                let mut s = s.into_bytes();
                let j = i + "rspauth=\"".len() + 10;
                s[j] = if s[j] == b'0' { b'1' } else { b'0' };
                s
            }
            None => s.into_bytes(),
        }
    }));
    assert!(
        w.server
            .force_sign_out("sip:alice@contoso.com", "User disabled", w.now)
    );
    w.flush();
    assert!(w.client.registration().is_registered());
    let violations_after = w
        .events
        .iter()
        .filter(|(_, e)| matches!(e, EndpointEvent::SecurityViolation(_)))
        .count();
    assert!(violations_after > violations_before);
    // Untampered, the NOTIFY signs the user out.
    w.tamper = None;
    w.client.handle_connection_lost(w.now);
    w.connect();
    w.run_until(Duration::from_secs(10));
    assert!(w.client.registration().is_registered());
    assert!(
        w.server
            .force_sign_out("sip:alice@contoso.com", "User disabled", w.now)
    );
    w.flush();
    let Some((
        _,
        RegistrationEvent::SignedOut {
            by_server: true,
            reason,
        },
    )) = w.registrations().last().copied()
    else {
        panic!("{:?}", w.registrations())
    };
    let reason = reason.clone().unwrap_or_default();
    assert!(
        reason.contains("deregistered;event=rejected") && reason.contains("User disabled"),
        "{reason}"
    );
    // Our 200 to the NOTIFY that signed us out was signed (with the
    // association the NOTIFY ended), and nothing we sent went unsigned.
    assert!(
        w.server.verified_signatures("200 response to NOTIFY") >= 1,
        "no signed 200 to the sign-out NOTIFY reached the server"
    );
    assert_eq!(
        w.server.signature_violations(),
        0,
        "{:?}",
        w.server.recent_signature_violations().collect::<Vec<_>>()
    );
}

#[test]
fn unregister_sends_expires_zero_and_removes_the_binding() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    w.client.unregister(w.now);
    w.flush();
    let last = w.registers_sent().pop().expect("sent");
    assert_eq!(last.1.header("Expires"), Some("0"));
    assert!(
        last.1
            .header("Proxy-Authorization")
            .expect("signed")
            .contains("crand=")
    );
    assert!(matches!(
        w.registrations().last(),
        Some((
            _,
            RegistrationEvent::SignedOut {
                by_server: false,
                ..
            }
        ))
    ));
    assert!(
        w.server
            .registrar()
            .binding("sip:alice@contoso.com", w.now)
            .is_none()
    );
}

#[test]
fn digest_credentials_missing_rejected_and_stale() {
    // No credentials: the app is asked, then registration proceeds.
    let mut w = World::new(Dialect::Standard, AuthMode::Digest, Transport::Udp, None);
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(matches!(
        w.registrations().last(),
        Some((
            _,
            RegistrationEvent::CredentialsNeeded {
                reason: CredentialsReason::Missing,
                ..
            }
        ))
    ));
    w.client
        .set_credentials(Credentials::new("alice", "wrong"), w.now)
        .expect("set");
    w.flush();
    assert!(matches!(
        w.registrations().last(),
        Some((
            _,
            RegistrationEvent::CredentialsNeeded {
                reason: CredentialsReason::Rejected,
                ..
            }
        ))
    ));
    w.client
        .set_credentials(Credentials::new("alice", "alicepw"), w.now)
        .expect("set");
    w.flush();
    assert!(
        w.client.registration().is_registered(),
        "{:?}",
        w.registrations()
    );
    // Refreshes outlive the 300 s nonce: the server says stale=true and the
    // client answers the new nonce without asking the app.
    w.run_until(Duration::from_secs(3000));
    assert!(w.client.registration().is_registered());
    let asked = w
        .registrations()
        .iter()
        .filter(|(_, e)| matches!(e, RegistrationEvent::CredentialsNeeded { .. }))
        .count();
    assert_eq!(asked, 2);
    let auths: Vec<String> = w
        .registers_sent()
        .iter()
        .filter_map(|(_, m)| m.header("Proxy-Authorization").map(str::to_owned))
        .collect();
    assert!(
        auths.iter().any(|a| a.contains("nc=00000002")),
        "nonce counts advance"
    );
}

#[test]
fn ntlm_wrong_password_asks_for_credentials() {
    let mut w = World::new(
        Dialect::Ocs,
        AuthMode::Ntlm,
        Transport::Tls,
        Some(Credentials::new("CONTOSO\\alice", "nope")),
    );
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(
        matches!(
            w.registrations().last(),
            Some((
                _,
                RegistrationEvent::CredentialsNeeded {
                    reason: CredentialsReason::Rejected,
                    ..
                }
            ))
        ),
        "{:?}",
        w.registrations()
    );
}

#[test]
fn the_server_refuses_unsigned_forged_and_replayed_requests_after_sign_in() {
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tls, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(w.client.registration().is_registered());
    // A signed OPTIONS from the client goes through.
    let req = w.client.new_request(Method::Options, "sip:contoso.com");
    w.client.send_request(req, w.now).expect("send");
    w.flush();
    assert_eq!(w.server.signature_violations(), 0);
    assert_eq!(w.server.verified_signatures("OPTIONS"), 1);
    let signed = w.sent.last().expect("sent").1.clone();
    let answers = |w: &mut World| {
        let mut codes = Vec::new();
        while let Some((_, b)) = w.server.poll_transmit() {
            codes.extend(Message::parse(&b).ok().and_then(|m| m.status()));
        }
        codes
    };
    // The same bytes again: its cnum does not count up.
    w.server.handle_stream(peer(), &signed, w.now);
    assert_eq!(answers(&mut w), [403]);
    // Without the signature header.
    let text = String::from_utf8(signed.clone()).expect("utf8");
    let unsigned: String = text
        .split("\r\n")
        .filter(|l| !l.starts_with("Proxy-Authorization:") && !l.starts_with("Authorization:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    w.server.handle_stream(peer(), unsigned.as_bytes(), w.now);
    assert_eq!(answers(&mut w), [403]);
    // With a changed Call-ID the signature no longer matches.
    let forged = text.replacen("Call-ID: ", "Call-ID: x", 1);
    w.server.handle_stream(peer(), forged.as_bytes(), w.now);
    assert_eq!(answers(&mut w), [403]);
    assert_eq!(w.server.signature_violations(), 3);
    let seen: Vec<&str> = w.server.recent_signature_violations().collect();
    assert!(seen[0].contains("cnum"), "{seen:?}");
    assert!(seen[1].contains("unsigned OPTIONS"), "{seen:?}");
    assert!(seen[2].contains("badly signed"), "{seen:?}");
}

#[test]
fn the_server_keeps_refreshed_bindings_and_drops_lapsed_ones() {
    // The registrar finds lapsed bindings through a queue of expiry times
    // (an entry per REGISTER); the entries of refreshed bindings come up
    // early and must not remove them, and a binding nobody refreshes must
    // go when it lapses.
    let mut w = World::new(Dialect::Ocs, AuthMode::Ntlm, Transport::Tcp, creds());
    w.connect();
    w.client.register(w.now).expect("register");
    // Four refreshes (every 7,170 s of 7,200).
    w.run_until(Duration::from_secs(30_000));
    assert!(w.client.registration().is_registered());
    let bound = |w: &World| w.server.registrar().bindings().count();
    assert_eq!(bound(&w), 1);
    assert!(
        w.server
            .registrar()
            .binding("sip:alice@contoso.com", w.now)
            .is_some()
    );
    // The client goes away without signing out: its binding lapses.
    w.connected = false;
    w.client.handle_connection_lost(w.now);
    let later = w.elapsed() + Duration::from_secs(7_300);
    while w.elapsed() < later {
        let Some(at) = w.server.poll_timeout() else {
            break;
        };
        w.now = at.max(w.now);
        w.server.handle_timeout(w.now);
    }
    assert_eq!(bound(&w), 0, "the lapsed binding is still there");
}
