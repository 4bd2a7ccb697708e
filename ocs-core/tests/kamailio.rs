//! Interop with a real registrar: Kamailio 5.6 (Debian package) on loopback,
//! set up by `ocs-core/tests/peers/kamailio/` (users alice/alicepw and
//! bob/bobpw at domain 127.0.0.1, Digest auth).
//!
//! Every test is ignored by default. `scripts/test.sh` runs them; by hand:
//!
//! ```sh
//! scripts/kamailio.sh start && set -a && . target/kamailio.env && set +a
//! cargo test -p ocs-core --test kamailio -- --ignored --test-threads=1
//! scripts/kamailio.sh stop
//! ```
//!
//! `OCS_KAMAILIO_PORT` is the UDP/TCP port; `OCS_KAMAILIO_TLS_PORT` (TLS)
//! and `OCS_KAMAILIO_DIR` (its folder: `ca.pem` and the `ctl` socket that
//! `kamcmd` uses to read the location table) are optional extras.
#![cfg(feature = "tokio")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, CredentialsReason, RegisterConfig, RegistrationEvent};

const AOR: &str = "sip:alice@127.0.0.1";

fn env_port(var: &str) -> Option<u16> {
    let v = std::env::var(var).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a port number")),
    )
}

/// The Kamailio UDP/TCP port; these tests cannot run without it.
fn port() -> u16 {
    env_port("OCS_KAMAILIO_PORT").unwrap_or_else(|| {
        panic!(
            "OCS_KAMAILIO_PORT is not set. Start Kamailio with `scripts/kamailio.sh start`, then \
             `set -a; . target/kamailio.env; set +a` (or run scripts/test.sh, which does all of it)"
        )
    })
}

fn kamailio_dir() -> Option<PathBuf> {
    std::env::var_os("OCS_KAMAILIO_DIR").map(PathBuf::from)
}

fn client(host: &str, port: u16, transport: Transport, password: &str, tls: TlsSettings) -> Client {
    let reg = RegisterConfig::new(AOR, Dialect::Standard, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("alice", password)),
    ));
    cfg.server = Some(ServerConfig {
        host: host.to_owned(),
        port: Some(port),
        transport,
    });
    cfg.tls = tls;
    cfg.connect_timeout = Duration::from_secs(2);
    Client::start(cfg).expect("client starts")
}

/// Waits for an event matching `pred`, failing after 10 s.
async fn wait_for(
    c: &mut Client,
    what: &str,
    pred: impl Fn(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = c.next_event().await {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(r, Ok(true)), "no {what}; saw {seen:?}");
    seen
}

/// What Kamailio's location table holds for alice (`kamcmd ul.lookup`), or
/// `None` when kamcmd or the control socket is not available.
fn location_of_alice() -> Option<String> {
    let ctl = kamailio_dir()?.join("ctl");
    if !ctl.exists() {
        return None;
    }
    let out = Command::new("kamcmd")
        .arg("-s")
        .arg(format!("unix:{}", ctl.display()))
        .args(["ul.lookup", "location", "alice"])
        .output()
        .ok()?;
    // An AOR without contacts is an error answer ("AOR not found").
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// True when a `kamcmd ul.lookup` answer lists a contact at `addr`.
fn has_contact(lookup: &str, addr: std::net::SocketAddr) -> bool {
    let needle = format!("@{addr}");
    lookup.match_indices(&needle).any(|(i, _)| {
        !lookup[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Signs alice in, checks the registration (and Kamailio's location table
/// when kamcmd is at hand), signs out and checks the binding is gone.
/// `earlier` holds events already read from this client.
async fn sign_in_and_out(mut c: Client, transport: Transport, earlier: Vec<ClientEvent>) {
    let mut seen = earlier;
    seen.extend(
        wait_for(&mut c, "registration", |e| {
            matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::Registered { .. })
            )
        })
        .await,
    );
    let local = seen
        .iter()
        .find_map(|e| match e {
            ClientEvent::Connected {
                local,
                transport: t,
                ..
            } => {
                assert_eq!(*t, transport);
                Some(*local)
            }
            _ => None,
        })
        .expect("a Connected event before Registered");
    let Some(ClientEvent::Registration(RegistrationEvent::Registered {
        expires,
        auth_scheme,
        gruu,
        refresh,
        ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!(auth_scheme, "Digest");
    assert!(
        (1..=3600).contains(expires),
        "Kamailio grants at most 3600 s, got {expires}"
    );
    assert_eq!(*gruu, None, "Kamailio is not configured for GRUU");
    assert!(!refresh);
    // Our contact carries our local address; Kamailio must have stored it.
    if let Some(loc) = location_of_alice() {
        assert!(
            has_contact(&loc, local),
            "Kamailio's location table lacks our contact {local}: {loc}"
        );
        eprintln!("kamcmd ul.lookup shows our contact {local}");
    }
    c.sign_out();
    let seen = wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::SignedOut {
                by_server: false,
                ..
            })
        )),
        "no SignedOut before Stopped: {seen:?}"
    );
    if let Some(loc) = location_of_alice() {
        assert!(
            !has_contact(&loc, local),
            "our contact {local} is still registered after sign-out: {loc}"
        );
    }
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn digest_register_and_sign_out_over_udp() {
    let c = client(
        "127.0.0.1",
        port(),
        Transport::Udp,
        "alicepw",
        TlsSettings::default(),
    );
    sign_in_and_out(c, Transport::Udp, Vec::new()).await;
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn digest_register_and_sign_out_over_tcp() {
    let c = client(
        "127.0.0.1",
        port(),
        Transport::Tcp,
        "alicepw",
        TlsSettings::default(),
    );
    sign_in_and_out(c, Transport::Tcp, Vec::new()).await;
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn digest_register_and_sign_out_over_tls() {
    let _ = port();
    let (Some(tls_port), Some(dir)) = (env_port("OCS_KAMAILIO_TLS_PORT"), kamailio_dir()) else {
        eprintln!(
            "skipped: OCS_KAMAILIO_TLS_PORT/OCS_KAMAILIO_DIR not set (no kamailio-tls-modules?)"
        );
        return;
    };
    let mut tls = TlsSettings {
        no_platform_roots: true,
        ..TlsSettings::default()
    };
    let n = tls.add_ca_file(&dir.join("ca.pem")).expect("read ca.pem");
    assert_eq!(n, 1);
    // The certificate names localhost and 127.0.0.1; check both.
    for host in ["localhost", "127.0.0.1"] {
        let c = client(host, tls_port, Transport::Tls, "alicepw", tls.clone());
        sign_in_and_out(c, Transport::Tls, Vec::new()).await;
    }
    // Without the test CA the handshake must fail.
    let mut c = client(
        "localhost",
        tls_port,
        Transport::Tls,
        "alicepw",
        TlsSettings {
            no_platform_roots: true,
            ..TlsSettings::default()
        },
    );
    let seen = wait_for(&mut c, "connect failure", |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    })
    .await;
    let Some(ClientEvent::ConnectFailed { error, .. }) = seen.last() else {
        unreachable!()
    };
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn wrong_password_asks_for_credentials() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut c = client(
            "127.0.0.1",
            port(),
            transport,
            "not-alicepw",
            TlsSettings::default(),
        );
        let seen = wait_for(&mut c, "credentials request", |e| {
            matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { .. })
            )
        })
        .await;
        let Some(ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { realm, reason })) =
            seen.last()
        else {
            unreachable!()
        };
        assert_eq!(*reason, CredentialsReason::Rejected, "{transport}");
        assert_eq!(realm, "127.0.0.1");
        assert!(
            !seen.iter().any(|e| matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::Registered { .. })
            )),
            "registered with a wrong password: {seen:?}"
        );
        // The right password then signs in on the same client.
        c.set_credentials(Credentials::new("alice", "alicepw"));
        sign_in_and_out(c, transport, seen).await;
    }
}
