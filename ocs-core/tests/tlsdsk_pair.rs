//! TLS-DSK sign-in pair tests: the client endpoint against the embedded
//! server on a simulated clock, with the server's bytes tampered with in
//! flight: a forged server signature is refused.

mod common;
use common::pki::Ca;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ocs_core::auth::tlsdsk::{TlsDskAuthenticator, TlsDskServer};
use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use ocs_core::register::{LocalTransport, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};

const TARGET: &str = "ocs-sim.contoso.com";

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    // An arbitrary origin for the simulated clock.
    Instant::now()
}

#[allow(clippy::disallowed_methods)]
fn wall() -> SystemTime {
    // The certificates' validity is checked against the real clock.
    SystemTime::now()
}

fn peer() -> SocketAddr {
    "192.0.2.10:40000".parse().expect("addr")
}

struct World {
    now: Instant,
    client: Endpoint,
    server: SimServer,
    events: Vec<EndpointEvent>,
    sent: Vec<String>,
    tamper: Option<Box<dyn FnMut(String) -> String>>,
}

impl World {
    fn new(ca: &Ca) -> World {
        World::with_certificate(ca, None)
    }

    /// alice's certificate lapses at `not_after` (the wall clock is the
    /// real one, as the certificate checks use it).
    fn with_certificate(ca: &Ca, not_after: Option<SystemTime>) -> World {
        World::build(ca, Some(not_after), false)
    }

    /// The client provisions certificates; the challenge names `STS`.
    /// `cert`: alice starts with a certificate lapsing then (`Some(None)`:
    /// a long-lived one), or none.
    fn provisioning(ca: &Ca, cert: Option<Option<SystemTime>>) -> World {
        World::build(ca, cert, true)
    }

    fn build(ca: &Ca, cert: Option<Option<SystemTime>>, provision: bool) -> World {
        let now = t0();
        let mut cfg = RegistrarConfig::ocs("contoso.com");
        cfg.auth = AuthMode::TlsDsk;
        let mut r = Registrar::new(cfg, Rng::from_seed(1), [7; 32]);
        r.add_user("alice", "CONTOSO", "unused");
        let (chain, key) = ca.issue(&[TARGET], None);
        r.set_tls_dsk(
            TlsDskServer::config(chain, key, ca.roots()).expect("server config"),
            provision.then(|| STS.to_owned()),
        );
        let server = SimServer::new(r, Rng::from_seed(2));
        let mut reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "c8ca638a15");
        reg.provision_certificates = provision;
        let mut client = Endpoint::new(EndpointConfig::new(reg, None), 3, [9; 32], now, wall());
        if let Some(not_after) = cert {
            client.set_authenticator(alice_credential(ca, not_after));
        }
        client.connected(
            LocalTransport {
                transport: Transport::Tcp,
                addr: peer(),
            },
            now,
        );
        World {
            now,
            client,
            server,
            events: Vec::new(),
            sent: Vec::new(),
            tamper: None,
        }
    }

    fn flush(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit() {
                moved = true;
                self.sent.push(String::from_utf8_lossy(&b).into_owned());
                self.server.handle_stream(peer(), &b, self.now);
            }
            while let Some((_, b)) = self.server.poll_transmit() {
                moved = true;
                let text = String::from_utf8(b).expect("utf8");
                let text = match &mut self.tamper {
                    Some(f) => f(text),
                    None => text,
                };
                self.client.handle_bytes(text.as_bytes(), self.now);
            }
            while let Some(e) = self.client.poll_event() {
                moved = true;
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// Runs the simulated clock forward by `d`, firing timers in order.
    fn run_for(&mut self, d: std::time::Duration) {
        let until = self.now + d;
        self.flush();
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = at.max(self.now);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                    self.flush();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    /// REGISTERs sent without credentials (each starts a handshake).
    fn fresh_handshakes(&self) -> usize {
        self.sent
            .iter()
            .filter(|m| {
                m.starts_with("REGISTER ")
                    && !m.contains("\r\nAuthorization:")
                    && !m.contains("\r\nProxy-Authorization:")
            })
            .count()
    }

    fn registered(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                EndpointEvent::Registration(RegistrationEvent::Registered { .. })
            )
        })
    }
}

const STS: &str = "https://pool.contoso.com/CertProv/CertProvisioningService.svc";

/// alice's TLS-DSK credential from `ca`, lapsing at `not_after` (`None`: in
/// a long time).
fn alice_credential(ca: &Ca, not_after: Option<SystemTime>) -> Box<TlsDskAuthenticator> {
    let (chain, key) = ca.issue_until(&[], Some("alice@contoso.com"), not_after);
    Box::new(TlsDskAuthenticator::new(chain, key, ca.roots()).expect("credential"))
}

/// Flips the first hex digit of `rspauth` in a 200 OK.
fn forge_rspauth(text: String) -> String {
    if !text.starts_with("SIP/2.0 200") {
        return text;
    }
    match text.find("rspauth=\"") {
        Some(i) => {
            let at = i + "rspauth=\"".len();
            let mut b = text.into_bytes();
            b[at] = if b[at] == b'0' { b'1' } else { b'0' };
            String::from_utf8(b).expect("utf8")
        }
        None => text,
    }
}

#[test]
fn the_register_exchange_follows_ms_sipae_4_4() {
    let ca = Ca::new();
    let mut w = World::new(&ca);
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(w.registered(), "{:?}", w.events);
    let registers: Vec<&String> = w
        .sent
        .iter()
        .filter(|m| m.starts_with("REGISTER "))
        .collect();
    assert_eq!(
        registers.len(),
        4,
        "unauthenticated, two TLS flights, signed"
    );
    let auth = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Authorization:") || l.starts_with("Proxy-Authorization:"))
            .map(str::to_owned)
    };
    assert_eq!(auth(registers[0]), None);
    for m in &registers[1..3] {
        let a = auth(m).expect("credentials");
        assert!(a.contains("TLS-DSK") && a.contains("gssapi-data=\""), "{a}");
        assert!(!a.contains("response="), "{a}");
    }
    let last = auth(registers[3]).expect("credentials");
    assert!(!last.contains("gssapi-data"), "{last}");
    for field in [
        "opaque=\"",
        "crand=\"",
        "cnum=\"1\"",
        "response=\"",
        "version=4",
    ] {
        assert!(last.contains(field), "{field} missing: {last}");
    }
    // The server signed its 200 OK with TLS-DSK.
    let Some(EndpointEvent::Registration(RegistrationEvent::Registered { auth_scheme, .. })) =
        w.events.iter().find(|e| {
            matches!(
                e,
                EndpointEvent::Registration(RegistrationEvent::Registered { .. })
            )
        })
    else {
        unreachable!()
    };
    assert_eq!(auth_scheme, "TLS-DSK");
    let why = w.client.registration().auth_choice().expect("a choice");
    assert!(
        why.starts_with("TLS-DSK (offered: TLS-DSK): the host's credential"),
        "{why}"
    );
}

#[test]
fn a_forged_server_signature_is_refused() {
    let ca = Ca::new();
    let mut w = World::new(&ca);
    w.tamper = Some(Box::new(forge_rspauth));
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(
        !w.registered(),
        "registered on a forged 200 OK: {:?}",
        w.events
    );
    let failed = w.events.iter().find_map(|e| match e {
        EndpointEvent::Registration(RegistrationEvent::Failed(err)) => Some(err.to_string()),
        _ => None,
    });
    assert!(
        failed.as_deref().is_some_and(|f| f.contains("signature")),
        "{:?}",
        w.events
    );
}

#[test]
fn the_association_ends_before_the_certificate_does() {
    use std::time::Duration;
    let ca = Ca::new();
    // A certificate good for one more hour: authenticate again at 55 min,
    // not after the usual 8 hours.
    let mut w = World::with_certificate(&ca, Some(wall() + Duration::from_secs(3600)));
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(w.registered());
    assert_eq!(w.fresh_handshakes(), 1);
    w.run_for(Duration::from_secs(53 * 60));
    assert_eq!(w.fresh_handshakes(), 1, "authenticated again too early");
    w.run_for(Duration::from_secs(3 * 60));
    assert_eq!(
        w.fresh_handshakes(),
        2,
        "not authenticated again before the certificate lapses"
    );
    assert!(
        w.client.registration().is_registered(),
        "{:?}",
        w.events.last()
    );
    // Inside the margin the next one waits for the certificate's end.
    w.run_for(Duration::from_secs(3 * 60));
    assert_eq!(w.fresh_handshakes(), 2, "authenticated again without need");

    // A long-lived certificate keeps the usual lifetime (8 h less 5 min).
    let mut w = World::new(&ca);
    w.client.register(w.now).expect("register");
    w.run_for(Duration::from_secs(7 * 3600 + 50 * 60));
    assert_eq!(w.fresh_handshakes(), 1);
    w.run_for(Duration::from_secs(10 * 60));
    assert_eq!(w.fresh_handshakes(), 2);
}

#[test]
fn asked_for_one_scheme_the_client_answers_no_other() {
    let ca = Ca::new();
    let mut w = World::new(&ca);
    // The pool offers TLS-DSK only; NTLM was asked for.
    let mut cfg = w.client.registration().config().clone();
    cfg.only_scheme = Some("NTLM".into());
    let (chain, key) = ca.issue(&[], Some("alice@contoso.com"));
    let mut client = Endpoint::new(EndpointConfig::new(cfg, None), 3, [9; 32], w.now, wall());
    client.set_authenticator(Box::new(
        TlsDskAuthenticator::new(chain, key, ca.roots()).expect("credential"),
    ));
    client.connected(
        LocalTransport {
            transport: Transport::Tcp,
            addr: peer(),
        },
        w.now,
    );
    w.client = client;
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(!w.registered());
    let failed = w.events.iter().find_map(|e| match e {
        EndpointEvent::Registration(RegistrationEvent::Failed(err)) => Some(err.to_string()),
        _ => None,
    });
    assert!(
        failed
            .as_deref()
            .is_some_and(|f| f.contains("the server offers TLS-DSK and NTLM was asked for")),
        "{:?}",
        w.events
    );
    assert_eq!(
        w.sent.iter().filter(|m| m.starts_with("REGISTER ")).count(),
        1,
        "no answer to the TLS-DSK challenge"
    );
}

fn certificates_needed(w: &World) -> Vec<(String, bool)> {
    w.events
        .iter()
        .filter_map(|e| match e {
            EndpointEvent::Registration(RegistrationEvent::CertificateNeeded {
                sts_uri,
                renewal,
            }) => Some((sts_uri.clone(), *renewal)),
            _ => None,
        })
        .collect()
}

#[test]
fn without_a_certificate_sign_in_waits_for_one_from_the_service_the_challenge_names() {
    let ca = Ca::new();
    let mut w = World::provisioning(&ca, None);
    w.client.register(w.now).expect("register");
    w.flush();
    assert_eq!(certificates_needed(&w), vec![(STS.to_owned(), false)]);
    assert!(!w.registered());
    assert_eq!(w.sent.len(), 1, "nothing more is sent while it waits");
    assert!(
        w.client
            .registration()
            .auth_choice()
            .is_some_and(|c| c.contains("provisioning")),
        "{:?}",
        w.client.registration().auth_choice()
    );
    // The host provisioned one: sign-in goes on with it.
    let now = w.now;
    w.client
        .handle_certificate(Ok(alice_credential(&ca, None)), now)
        .expect("go on");
    w.flush();
    assert!(w.registered(), "{:?}", w.events);
    assert_eq!(
        w.client.registration().security().map(|s| s.scheme()),
        Some("TLS-DSK")
    );

    // Provisioning failed and the server offers nothing else: sign-in
    // fails naming why.
    let mut w = World::provisioning(&ca, None);
    w.client.register(w.now).expect("register");
    w.flush();
    let now = w.now;
    w.client
        .handle_certificate(Err("web ticket service answered 401".into()), now)
        .expect("go on");
    w.flush();
    let failed = w.events.iter().find_map(|e| match e {
        EndpointEvent::Registration(RegistrationEvent::Failed(e)) => Some(e.to_string()),
        _ => None,
    });
    assert!(
        failed.as_deref().is_some_and(
            |f| f.contains("certificate provisioning failed: web ticket service answered 401")
        ),
        "{failed:?}"
    );
    // It asked once, not in a loop.
    assert_eq!(certificates_needed(&w).len(), 1);

    // A certificate with less than an hour left is replaced first.
    let mut w = World::provisioning(&ca, Some(Some(wall() + Duration::from_secs(50 * 60))));
    w.client.register(w.now).expect("register");
    w.flush();
    assert_eq!(certificates_needed(&w), vec![(STS.to_owned(), false)]);
    assert!(!w.registered());
}

#[test]
fn a_certificate_in_use_is_renewed_an_hour_before_it_lapses_while_the_session_goes_on() {
    let ca = Ca::new();
    let mut w = World::provisioning(&ca, Some(Some(wall() + Duration::from_secs(3 * 3600))));
    w.client.register(w.now).expect("register");
    w.flush();
    assert!(w.registered());
    assert!(certificates_needed(&w).is_empty());
    w.run_for(Duration::from_secs(3600 + 55 * 60));
    assert!(certificates_needed(&w).is_empty(), "asked too early");
    w.run_for(Duration::from_secs(10 * 60));
    assert_eq!(certificates_needed(&w), vec![(STS.to_owned(), true)]);
    assert!(w.client.registration().is_registered());
    assert_eq!(w.fresh_handshakes(), 1);
    // The renewed certificate is used at once: a new handshake with it.
    let now = w.now;
    w.client
        .handle_certificate(Ok(alice_credential(&ca, None)), now)
        .expect("renewed");
    w.flush();
    assert_eq!(w.fresh_handshakes(), 2);
    assert!(
        w.client.registration().is_registered(),
        "{:?}",
        w.events.last()
    );
    // The old certificate's end passes without another handshake, and the
    // session goes on.
    w.run_for(Duration::from_secs(2 * 3600));
    assert_eq!(w.fresh_handshakes(), 2);
    assert!(w.client.registration().is_registered());
    assert_eq!(certificates_needed(&w).len(), 1);
}
