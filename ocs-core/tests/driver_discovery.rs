//! The tokio driver finds its server through DNS (an in-process DNS server
//! on loopback) and falls back from a dead candidate to the next one, over
//! real loopback sockets, against the embedded test server.
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};
use common::pki::make_pki;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::dns::{Rr, zone};
use ocs_core::discovery::{Dialect, Transport};
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn sim(domain: &str) -> SimServer {
    let mut cfg = RegistrarConfig::ocs(domain);
    cfg.auth = AuthMode::Ntlm;
    let mut r = Registrar::new(cfg, Rng::from_seed(21), [3; 32]);
    r.add_user("alice", "CONTOSO", "alicepw");
    SimServer::new(r, Rng::from_seed(22))
}

/// A loopback TCP port with nothing listening on it (bound, read, dropped).
fn dead_port(ip: IpAddr) -> u16 {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

fn client(aor: &str, nameserver: SocketAddr, allowed: Vec<Transport>, tls: TlsSettings) -> Client {
    let reg = RegisterConfig::new(aor, Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.server = None;
    cfg.nameserver = Some(nameserver);
    cfg.allowed = allowed;
    cfg.tls = tls;
    cfg.connect_timeout = Duration::from_secs(2);
    Client::start(cfg).expect("client starts")
}

/// The connection-related events, in order, as short strings.
fn trail(seen: &[ClientEvent]) -> Vec<String> {
    seen.iter()
        .filter_map(|e| match e {
            ClientEvent::ConnectFailed { target, .. } => Some(format!("failed {target}")),
            ClientEvent::Connected {
                host,
                addr,
                transport,
                source,
                ..
            } => Some(format!("connected {transport} {host} {addr} ({source})")),
            ClientEvent::Registration(RegistrationEvent::Registered { .. }) => {
                Some("registered".to_owned())
            }
            _ => None,
        })
        .collect()
}

async fn sign_out(server: &SimHandle, mut c: Client, aor: &'static str) {
    let bound = server
        .with(move |s, now| s.registrar().binding(aor, now).is_some())
        .await;
    assert_eq!(bound, Some(true), "the server holds a binding for {aor}");
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    let bound = server
        .with(move |s, now| s.registrar().binding(aor, now).is_some())
        .await;
    assert_eq!(bound, Some(false));
}

#[tokio::test]
async fn srv_fallback_from_dead_target_to_the_next_priority() {
    let server = serve(sim("contoso.test"), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let pool_port = server.tcp.port();
    let dead = dead_port(LOCALHOST);
    // `_sipinternaltls._tcp` and `_sip._tls` are absent: only the TCP
    // internal SRV exists, with a dead target first.
    let dns = common::dns::serve([zone(
        "contoso.test",
        &[
            Rr::Srv(
                "_sipinternal._tcp.contoso.test",
                10,
                0,
                dead,
                "dead.contoso.test",
            ),
            Rr::Srv(
                "_sipinternal._tcp.contoso.test",
                20,
                0,
                pool_port,
                "pool.contoso.test",
            ),
            Rr::A("dead.contoso.test", [127, 0, 0, 1]),
            Rr::A("pool.contoso.test", [127, 0, 0, 1]),
            // Must not be used: SRV records exist.
            Rr::A("sip.contoso.test", [127, 0, 0, 1]),
        ],
    )])
    .await;

    let mut c = client(
        "sip:alice@contoso.test",
        dns.addr,
        vec![Transport::Tls, Transport::Tcp],
        TlsSettings::default(),
    );
    let seen = wait_for(&mut c, "registration", registered).await;
    assert_eq!(
        trail(&seen),
        [
            format!("failed TCP 127.0.0.1:{dead} (SRV _sipinternal._tcp.contoso.test)"),
            format!(
                "connected TCP pool.contoso.test 127.0.0.1:{pool_port} (SRV _sipinternal._tcp.contoso.test)"
            ),
            "registered".to_owned(),
        ],
        "{seen:#?}"
    );
    // The failure says why.
    let Some(ClientEvent::ConnectFailed { error, .. }) = seen
        .iter()
        .find(|e| matches!(e, ClientEvent::ConnectFailed { .. }))
    else {
        unreachable!()
    };
    assert!(
        error.to_ascii_lowercase().contains("refused"),
        "connect error should say the connection was refused: {error}"
    );
    let Some(ClientEvent::Registration(RegistrationEvent::Registered {
        auth_scheme, gruu, ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!(auth_scheme, "NTLM");
    assert!(gruu.is_some());
    sign_out(&server, c, "sip:alice@contoso.test").await;
}

/// The OCS A-record fallbacks are TLS on fixed ports (5061 for
/// `sipinternal`/`sip`, 443 for `sipexternal`). 5061 is unprivileged, so
/// the test binds it, but on a loopback address of its own
/// (127.83.7.0/24, no other test uses it) so that it cannot collide with
/// a SIP server on the machine. Where such addresses are not routed to
/// loopback (macOS without aliases), the test is skipped with a message.
#[tokio::test]
async fn technet_a_record_fallback_over_tls() {
    const SIP_IP: [u8; 4] = [127, 83, 7, 61];
    const SIPINTERNAL_IP: [u8; 4] = [127, 83, 7, 60];
    let pki = make_pki("sip.contoso2.test");
    // serve() puts TLS on port + 1: UDP/TCP 5060, TLS 5061.
    let server = match serve(
        sim("contoso2.test"),
        IpAddr::from(SIP_IP),
        5060,
        Some(pki.server.clone()),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipped: cannot bind 127.83.7.61:5060-5061 ({e})");
            return;
        }
    };
    assert_eq!(server.tls.map(|a| a.port()), Some(5061));
    // No SRV at all. `sipinternal` (tried first) has nothing listening,
    // `sip` is the server; `sipexternal` on 443 must not be reached.
    let dns = common::dns::serve([zone(
        "contoso2.test",
        &[
            Rr::A("sipinternal.contoso2.test", SIPINTERNAL_IP),
            Rr::A("sip.contoso2.test", SIP_IP),
            Rr::A("sipexternal.contoso2.test", [127, 83, 7, 62]),
        ],
    )])
    .await;
    let tls = TlsSettings {
        extra_roots: vec![pki.ca_der.clone()],
        no_platform_roots: true,
        ..TlsSettings::default()
    };
    let mut c = client(
        "sip:alice@contoso2.test",
        dns.addr,
        vec![Transport::Tls, Transport::Tcp],
        tls,
    );
    let seen = wait_for(&mut c, "registration", registered).await;
    assert_eq!(
        trail(&seen),
        [
            "failed TLS 127.83.7.60:5061 (A/AAAA sipinternal.contoso2.test)".to_owned(),
            "connected TLS sip.contoso2.test 127.83.7.61:5061 (A/AAAA sip.contoso2.test)"
                .to_owned(),
            "registered".to_owned(),
        ],
        "{seen:#?}"
    );
    sign_out(&server, c, "sip:alice@contoso2.test").await;
}

/// Discovery that finds nothing is reported as a connect failure naming
/// every lookup, and the client keeps retrying instead of stopping.
#[tokio::test]
async fn nothing_found_is_a_clear_connect_failure() {
    let dns = common::dns::serve([zone("empty.test", &[])]).await;
    let mut c = client(
        "sip:alice@empty.test",
        dns.addr,
        vec![Transport::Tcp],
        TlsSettings::default(),
    );
    let seen = wait_for(&mut c, "discovery failure", |e| {
        matches!(e, ClientEvent::ConnectFailed { .. })
    })
    .await;
    let Some(ClientEvent::ConnectFailed { target, error }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(target, "discovery");
    assert!(
        error.starts_with("no SIP server found for empty.test")
            && error.contains("SRV _sipinternal._tcp.empty.test"),
        "{error}"
    );
    // Nothing was ever signed in: sign-in ends with that error, no retries.
    let seen = wait_for(&mut c, "the end of sign-in", |e| {
        matches!(e, ClientEvent::Stopped)
    })
    .await;
    let failed = seen.iter().find_map(|e| match e {
        ClientEvent::Registration(RegistrationEvent::Failed(e)) => Some(e.to_string()),
        _ => None,
    });
    assert!(
        failed
            .as_deref()
            .is_some_and(|f| f.contains("no SIP server found for empty.test")),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::RetryScheduled { .. })
        )),
        "{seen:?}"
    );

    // A host that asks for background retries gets them.
    let mut reg = RegisterConfig::new("sip:alice@empty.test", Dialect::Ocs, "0123456789");
    reg.retry_first_sign_in = true;
    let mut cfg = ClientConfig::new(EndpointConfig::new(reg, None));
    cfg.nameserver = Some(dns.addr);
    cfg.allowed = vec![Transport::Tcp];
    let mut c = Client::start(cfg).expect("client starts");
    wait_for(&mut c, "retry", |e| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::RetryScheduled { .. })
        )
    })
    .await;
}

/// Autodiscover on: the embedded server's web services name its TLS
/// listener, the token comes from its token service, and DNS is never
/// needed.
#[tokio::test]
async fn autodiscover_finds_the_pool_and_signs_in_over_tls() {
    let pki = make_pki("127.0.0.1");
    let server = serve(sim("contoso.test"), LOCALHOST, 0, Some(pki.server.clone()))
        .await
        .expect("serve");
    let tls_port = server.tls.expect("tls").port();
    // DNS knows nothing: the server can only come from autodiscover.
    let dns = common::dns::serve([zone("contoso.test", &[])]).await;
    let tls = TlsSettings {
        extra_roots: vec![pki.ca_der.clone()],
        no_platform_roots: true,
        ..TlsSettings::default()
    };
    let mut c = {
        let reg = RegisterConfig::new("sip:alice@contoso.test", Dialect::Ocs, "0123456789");
        let mut cfg = ClientConfig::new(EndpointConfig::new(
            reg,
            Some(Credentials::new("CONTOSO\\alice", "alicepw")),
        ));
        cfg.nameserver = Some(dns.addr);
        cfg.tls = tls;
        cfg.autodiscover = Some(ocs_core::driver::AutodiscoverSettings {
            urls: Some(vec![format!(
                "http://{}/autodiscover/autodiscoverservice.svc/root",
                server.http
            )]),
        });
        Client::start(cfg).expect("client starts")
    };
    let seen = wait_for(&mut c, "registration", registered).await;
    assert_eq!(
        trail(&seen),
        [
            format!("connected TLS 127.0.0.1 127.0.0.1:{tls_port} (autodiscover)"),
            "registered".to_owned(),
        ],
        "{seen:#?}"
    );
    let tokens = server.with(|s, _| s.web().token_count()).await;
    assert_eq!(tokens, Some(1), "one token from the sim's token service");
    sign_out(&server, c, "sip:alice@contoso.test").await;
}

/// Autodiscover that finds nothing: the failure is reported and DNS SRV
/// finds the server, as Lync clients fall back.
#[tokio::test]
async fn a_failed_autodiscover_falls_back_to_dns() {
    let server = serve(sim("contoso.test"), LOCALHOST, 0, None)
        .await
        .expect("serve");
    let pool_port = server.tcp.port();
    let dns = common::dns::serve([zone(
        "contoso.test",
        &[
            Rr::Srv(
                "_sipinternal._tcp.contoso.test",
                10,
                0,
                pool_port,
                "pool.contoso.test",
            ),
            Rr::A("pool.contoso.test", [127, 0, 0, 1]),
        ],
    )])
    .await;
    let dead = format!("http://127.0.0.1:{}/autodiscover", dead_port(LOCALHOST));
    let reg = RegisterConfig::new("sip:alice@contoso.test", Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.nameserver = Some(dns.addr);
    cfg.allowed = vec![Transport::Tcp];
    cfg.autodiscover = Some(ocs_core::driver::AutodiscoverSettings {
        urls: Some(vec![dead.clone()]),
    });
    let mut c = Client::start(cfg).expect("client starts");
    let seen = wait_for(&mut c, "registration", registered).await;
    assert_eq!(
        trail(&seen),
        [
            "failed autodiscover".to_owned(),
            format!(
                "connected TCP pool.contoso.test 127.0.0.1:{pool_port} (SRV _sipinternal._tcp.contoso.test)"
            ),
            "registered".to_owned(),
        ],
        "{seen:#?}"
    );
    let Some(ClientEvent::ConnectFailed { error, .. }) = seen
        .iter()
        .find(|e| matches!(e, ClientEvent::ConnectFailed { .. }))
    else {
        unreachable!()
    };
    assert!(error.contains(&dead), "the failure names the URL: {error}");
    sign_out(&server, c, "sip:alice@contoso.test").await;
}
