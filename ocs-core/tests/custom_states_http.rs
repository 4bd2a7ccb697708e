//! Loading CustomStateURL over HTTP and HTTPS (a tiny tokio responder on
//! loopback, a test CA made by rcgen), and through the client after
//! sign-in against the embedded test server.
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};
use common::pki::{Pki, make_pki};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ocs_core::customstates::ClientVersion;
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{
    Client, ClientConfig, ClientEvent, CustomStatesError, FetchLimits, TlsSettings,
    fetch_custom_states, fetch_custom_states_bytes,
};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const XML: &str = r#"<?xml version="1.0"?>
<customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">
  <customState ID="1" availability="online"><activity LCID="1033">Working from Home</activity></customState>
  <customState ID="2" availability="away"><activity LCID="1033">Not allowed</activity></customState>
</customStates>"#;

/// What the responder answers with.
#[derive(Clone)]
enum Reply {
    /// 200 with this body (and a Content-Length).
    Ok(String),
    /// 200 with this many bytes and no Content-Length (read to close).
    Unsized(usize),
    /// 404.
    NotFound,
    /// Accept and never answer.
    Silent,
}

struct Responder {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    reply: Arc<std::sync::Mutex<Reply>>,
}

impl Responder {
    fn set(&self, r: Reply) {
        *self.reply.lock().expect("lock") = r;
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, reply: Reply) {
    // Read the request head.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let out = match reply {
        Reply::Ok(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        Reply::Unsized(n) => {
            let mut v = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n".to_vec();
            v.extend(std::iter::repeat_n(b' ', n));
            v
        }
        Reply::NotFound => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        Reply::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
    };
    let _ = s.write_all(&out).await;
    let _ = s.shutdown().await;
}

/// An HTTP/1.1 responder on loopback (TLS when `tls` is given).
async fn responder(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> Responder {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let reply = Arc::new(std::sync::Mutex::new(reply));
    let (h, r) = (hits.clone(), reply.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let reply = r.lock().expect("lock").clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer(s, reply).await,
                    Some(cfg) => {
                        if let Ok(t) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                            answer(t, reply).await;
                        }
                    }
                }
            });
        }
    });
    Responder { addr, hits, reply }
}

/// The built-in HTTP client on `tls`.
fn http(tls: &TlsSettings) -> ocs_core::driver::SharedHttp {
    ocs_core::driver::http::builtin(tls).expect("http client")
}

fn private_ca(ca: Option<&Pki>) -> TlsSettings {
    TlsSettings {
        no_platform_roots: true,
        extra_roots: ca.map(|p| p.ca_der.clone()).into_iter().collect(),
        ..TlsSettings::default()
    }
}

#[tokio::test]
async fn http_fetch_loads_leniently() {
    let r = responder(Reply::Ok(XML.into()), None).await;
    let url = format!("http://{}/states.xml", r.addr);
    let l = fetch_custom_states(
        &url,
        ClientVersion::Oc2007R2,
        false,
        &*http(&TlsSettings::default()),
    )
    .await
    .expect("fetched");
    assert_eq!(l.states.states.len(), 1);
    assert_eq!(
        l.states.states[0].text(1033),
        Some("Working from Home"),
        "{l:?}"
    );
    assert_eq!(l.warnings.len(), 1, "away is a warning: {l:?}");
}

#[tokio::test]
async fn high_security_refuses_http_without_connecting() {
    let r = responder(Reply::Ok(XML.into()), None).await;
    let url = format!("http://{}/states.xml", r.addr);
    let e = fetch_custom_states(
        &url,
        ClientVersion::Oc2007R2,
        true,
        &*http(&TlsSettings::default()),
    )
    .await
    .expect_err("refused");
    assert!(matches!(e, CustomStatesError::UrlNotAllowed(_)), "{e}");
    assert!(e.to_string().contains("high-security"), "{e}");
    assert_eq!(r.hits.load(Ordering::SeqCst), 0, "no connection was made");
}

#[tokio::test]
async fn https_needs_the_ca() {
    let pki = make_pki("localhost");
    let r = responder(Reply::Ok(XML.into()), Some(pki.server.clone())).await;
    let url = format!("https://localhost:{}/states.xml", r.addr.port());
    // Trusted through the client's TLS settings, also in high-security mode.
    let l = fetch_custom_states(
        &url,
        ClientVersion::Oc2007R2,
        true,
        &*http(&private_ca(Some(&pki))),
    )
    .await
    .expect("https with the CA");
    assert_eq!(l.states.states.len(), 1);
    // Without the CA the certificate is refused, and the error says so.
    let e = fetch_custom_states(
        &url,
        ClientVersion::Oc2007R2,
        true,
        &*http(&private_ca(None)),
    )
    .await
    .expect_err("untrusted");
    assert!(matches!(e, CustomStatesError::Http { .. }), "{e}");
    let msg = e.to_string().to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("issuer"),
        "{msg}"
    );
    // Another CA does not help either.
    let other = make_pki("localhost");
    assert!(
        fetch_custom_states(
            &url,
            ClientVersion::Oc2007R2,
            true,
            &*http(&private_ca(Some(&other)))
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn status_size_and_timeout_errors() {
    let r = responder(Reply::NotFound, None).await;
    let url = format!("http://{}/states.xml", r.addr);
    let tls = http(&TlsSettings::default());
    let tls = &*tls;
    let e = fetch_custom_states(&url, ClientVersion::Oc2007R2, false, tls)
        .await
        .expect_err("404");
    assert!(
        matches!(e, CustomStatesError::Status { status: 404, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("HTTP 404 Not Found"), "{e}");

    // Content-Length over the limit: refused before reading.
    r.set(Reply::Ok(
        " ".repeat(ocs_core::driver::MAX_CUSTOM_STATES_BYTES + 1),
    ));
    let e = fetch_custom_states(&url, ClientVersion::Oc2007R2, false, tls)
        .await
        .expect_err("large");
    assert!(matches!(e, CustomStatesError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");

    // No Content-Length: cut off while streaming.
    r.set(Reply::Unsized(
        ocs_core::driver::MAX_CUSTOM_STATES_BYTES + 10,
    ));
    let e = fetch_custom_states(&url, ClientVersion::Oc2007R2, false, tls)
        .await
        .expect_err("large stream");
    assert!(matches!(e, CustomStatesError::TooLarge { .. }), "{e}");

    // A server that never answers.
    r.set(Reply::Silent);
    let limits = FetchLimits {
        timeout: Duration::from_millis(300),
        ..FetchLimits::default()
    };
    let e = fetch_custom_states_bytes(&url, ClientVersion::Oc2007R2, false, tls, limits)
        .await
        .expect_err("timeout");
    assert!(matches!(e, CustomStatesError::Timeout { .. }), "{e}");

    // Nobody listening.
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let e = fetch_custom_states(
        &format!("http://127.0.0.1:{port}/x.xml"),
        ClientVersion::Oc2007R2,
        false,
        tls,
    )
    .await
    .expect_err("refused");
    assert!(matches!(e, CustomStatesError::Http { .. }), "{e}");
}

fn sim() -> SimServer {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(11),
        [5; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    SimServer::new(r, Rng::from_seed(12))
}

async fn client(custom_state_url: Option<String>) -> (Client, ocs_core::driver::sim::SimHandle) {
    let server = serve(sim(), IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None)
        .await
        .expect("serve");
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(server.tcp.port()),
        transport: Transport::Tcp,
    });
    cfg.custom_state_url = custom_state_url;
    (Client::start(cfg).expect("client"), server)
}

#[tokio::test]
async fn client_loads_after_sign_in_and_reloads() {
    let r = responder(Reply::Ok(XML.into()), None).await;
    let (mut c, _server) = client(Some(format!("http://{}/states.xml", r.addr))).await;
    let seen = wait_for(&mut c, "custom states", |e| {
        matches!(e, ClientEvent::CustomStates { .. })
    })
    .await;
    assert!(
        seen.iter().any(registered),
        "loaded after sign-in: {seen:?}"
    );
    let Some(ClientEvent::CustomStates { states, warnings }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(states.states.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert_eq!(r.hits.load(Ordering::SeqCst), 1, "loaded once");

    // Explicit reload picks up a change; a failure is a warning event and
    // the client stays signed in.
    r.set(Reply::Ok(
        XML.replace("availability=\"away\"", "availability=\"busy\""),
    ));
    c.reload_custom_states();
    let seen = wait_for(&mut c, "reloaded", |e| {
        matches!(e, ClientEvent::CustomStates { .. })
    })
    .await;
    let Some(ClientEvent::CustomStates { states, warnings }) = seen.last() else {
        unreachable!()
    };
    assert_eq!((states.states.len(), warnings.len()), (2, 0));
    r.set(Reply::NotFound);
    c.reload_custom_states();
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::CustomStatesFailed { .. })
    })
    .await;
    let Some(ClientEvent::CustomStatesFailed { error, .. }) = seen.last() else {
        unreachable!()
    };
    assert!(error.contains("404"), "{error}");
    assert!(
        !seen.iter().any(|e| matches!(e, ClientEvent::Stopped)),
        "{seen:?}"
    );
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}

#[tokio::test]
async fn client_without_url_loads_nothing_and_reload_says_why() {
    let (mut c, _server) = client(None).await;
    wait_for(&mut c, "registration", registered).await;
    c.reload_custom_states();
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::CustomStatesFailed { .. })
    })
    .await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, ClientEvent::CustomStates { .. }))
    );
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}
