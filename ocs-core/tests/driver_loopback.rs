//! The tokio driver against the embedded test server over real loopback
//! sockets: UDP, TCP and TLS (rustls, with a test CA made by rcgen).
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};
use common::pki::make_pki;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn sim(auth: AuthMode) -> SimServer {
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.auth = auth;
    let mut r = Registrar::new(cfg, Rng::from_seed(11), [5; 32]);
    r.add_user("alice", "CONTOSO", "alicepw");
    SimServer::new(r, Rng::from_seed(12))
}

fn client(host: &str, port: u16, transport: Transport, tls: TlsSettings) -> Client {
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
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

async fn sign_in_and_out(server: &SimHandle, mut c: Client) {
    wait_for(&mut c, "registration", registered).await;
    let bound = server
        .with(|s, now| {
            s.registrar()
                .binding("sip:alice@contoso.com", now)
                .is_some()
        })
        .await;
    assert_eq!(bound, Some(true));
    c.sign_out();
    let seen = wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    assert!(seen.iter().any(|e| matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::SignedOut {
            by_server: false,
            ..
        })
    )));
    let bound = server
        .with(|s, now| {
            s.registrar()
                .binding("sip:alice@contoso.com", now)
                .is_some()
        })
        .await;
    assert_eq!(bound, Some(false));
}

#[tokio::test]
async fn ntlm_over_udp_and_tcp() {
    let server = serve(sim(AuthMode::Ntlm), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let c = client(
        "127.0.0.1",
        server.udp.port(),
        Transport::Udp,
        TlsSettings::default(),
    );
    sign_in_and_out(&server, c).await;
    let c = client(
        "127.0.0.1",
        server.tcp.port(),
        Transport::Tcp,
        TlsSettings::default(),
    );
    sign_in_and_out(&server, c).await;
}

#[tokio::test]
async fn digest_over_tcp() {
    let server = serve(sim(AuthMode::Digest), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let c = client(
        "127.0.0.1",
        server.tcp.port(),
        Transport::Tcp,
        TlsSettings::default(),
    );
    sign_in_and_out(&server, c).await;
}

#[tokio::test]
async fn tls_verifies_the_certificate_against_the_host() {
    let pki = make_pki("localhost");
    let server = serve(sim(AuthMode::Ntlm), LOCALHOST, 0, Some(pki.server.clone()))
        .await
        .expect("serve");
    let port = server.tls.expect("tls listener").port();
    let trusting = TlsSettings {
        extra_roots: vec![pki.ca_der.clone()],
        no_platform_roots: true,
        ..TlsSettings::default()
    };
    // The right name and our CA: signs in.
    let c = client("localhost", port, Transport::Tls, trusting.clone());
    sign_in_and_out(&server, c).await;
    // Without the CA the handshake fails: no registration, a clear error.
    let mut c = client(
        "localhost",
        port,
        Transport::Tls,
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
    // A certificate for another name is refused too.
    let other = make_pki("sip.fabrikam.com");
    let server2 = serve(
        sim(AuthMode::Ntlm),
        LOCALHOST,
        0,
        Some(other.server.clone()),
    )
    .await
    .expect("serve");
    let mut c = client(
        "localhost",
        server2.tls.expect("tls").port(),
        Transport::Tls,
        TlsSettings {
            extra_roots: vec![other.ca_der.clone()],
            no_platform_roots: true,
            ..TlsSettings::default()
        },
    );
    wait_for(
        &mut c,
        "name mismatch",
        |e| matches!(e, ClientEvent::ConnectFailed { error, .. } if error.contains("certificate")),
    )
    .await;
    // The explicit opt-out accepts it.
    let c = client(
        "localhost",
        server2.tls.expect("tls").port(),
        Transport::Tls,
        TlsSettings {
            dangerous_accept_any_certificate: true,
            ..TlsSettings::default()
        },
    );
    sign_in_and_out(&server2, c).await;
}

#[tokio::test]
async fn network_change_reconnects_and_reregisters() {
    let server = serve(sim(AuthMode::Ntlm), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let mut c = client(
        "127.0.0.1",
        server.tcp.port(),
        Transport::Tcp,
        TlsSettings::default(),
    );
    wait_for(&mut c, "registration", registered).await;
    c.network_changed();
    let seen = wait_for(&mut c, "re-registration", registered).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Disconnected(_)))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. }))
    );
}

#[tokio::test]
async fn server_restart_is_survived_with_backoff() {
    let server = serve(sim(AuthMode::Ntlm), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let port = server.tcp.port();
    let mut c = client("127.0.0.1", port, Transport::Tcp, TlsSettings::default());
    wait_for(&mut c, "registration", registered).await;
    drop(server);
    wait_for(&mut c, "disconnect", |e| {
        matches!(e, ClientEvent::Disconnected(_))
    })
    .await;
    // While it is down, connection attempts fail and retries are scheduled.
    wait_for(&mut c, "failed reconnect", |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    })
    .await;
    let _server = serve(sim(AuthMode::Ntlm), LOCALHOST, port, None)
        .await
        .expect("restart");
    let seen = wait_for(&mut c, "re-registration", registered).await;
    assert!(seen.iter().any(|e| matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::RetryScheduled { .. })
    )));
}
