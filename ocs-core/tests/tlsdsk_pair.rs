//! TLS-DSK sign-in pair tests: the client endpoint against the embedded
//! server on a simulated clock, with the server's bytes tampered with in
//! flight: a forged server signature is refused.

mod common;
use common::pki::Ca;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

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
        let now = t0();
        let mut cfg = RegistrarConfig::ocs("contoso.com");
        cfg.auth = AuthMode::TlsDsk;
        let mut r = Registrar::new(cfg, Rng::from_seed(1), [7; 32]);
        r.add_user("alice", "CONTOSO", "unused");
        let (chain, key) = ca.issue(&[TARGET], None);
        r.set_tls_dsk(
            TlsDskServer::config(chain, key, ca.roots()).expect("server config"),
            None,
        );
        let server = SimServer::new(r, Rng::from_seed(2));
        let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "c8ca638a15");
        let mut client = Endpoint::new(
            EndpointConfig::new(reg, None),
            3,
            [9; 32],
            now,
            SystemTime::UNIX_EPOCH,
        );
        let (chain, key) = ca.issue(&[], Some("alice@contoso.com"));
        client.set_authenticator(Box::new(
            TlsDskAuthenticator::new(chain, key, ca.roots()).expect("credential"),
        ));
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

    fn registered(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                EndpointEvent::Registration(RegistrationEvent::Registered { .. })
            )
        })
    }
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
