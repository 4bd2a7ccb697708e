//! TLS-DSK sign-in (MS-SIPAE 3.2.5) against the embedded server over
//! loopback TCP: the TLS handshake in REGISTER challenges, the REGISTER
//! signed with the derived keys, then signed traffic both ways. The user's
//! certificate is its only credential (no password is configured).
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};
use common::pki::Ca;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ocs_core::auth::tlsdsk::{TlsDskAuthenticator, TlsDskServer};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{AuthenticatorFactory, Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::presence::model::State;
use ocs_core::register::{RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[allow(clippy::disallowed_methods)]
fn wall() -> std::time::SystemTime {
    // The certificate's validity is against the real clock.
    std::time::SystemTime::now()
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The sim's targetname for contoso.com.
const TARGET: &str = "ocs-sim.contoso.com";

fn sim(ca: &Ca) -> SimServer {
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.auth = AuthMode::TlsDsk;
    cfg.use_401 = true;
    let mut r = Registrar::new(cfg, Rng::from_seed(31), [4; 32]);
    r.add_user("alice", "CONTOSO", "unused");
    r.add_user("bob", "CONTOSO", "unused");
    let (chain, key) = ca.issue(&[TARGET], None);
    let config = TlsDskServer::config(chain, key, ca.roots()).expect("server config");
    r.set_tls_dsk(
        config,
        Some("https://ocs-sim.contoso.com/CertProv/CertProvisioningService.svc".into()),
    );
    SimServer::new(r, Rng::from_seed(32))
}

/// alice's client over TCP with `chain`/`key` as her TLS-DSK credential.
fn client(
    port: u16,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: rustls::RootCertStore,
) -> Client {
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(reg, None));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Tcp,
    });
    cfg.connect_timeout = Duration::from_secs(2);
    let key = Arc::new(key);
    cfg.authenticator = Some(AuthenticatorFactory(Arc::new(move || {
        Box::new(
            TlsDskAuthenticator::new(chain.clone(), key.clone_key(), roots.clone())
                .expect("credential"),
        )
    })));
    Client::start(cfg).expect("client starts")
}

#[tokio::test]
async fn tls_dsk_signs_in_and_signs_both_ways() {
    let ca = Ca::new();
    let server = serve(sim(&ca), LOCALHOST, 0, None).await.expect("serve");
    let (chain, key) = ca.issue(&[], Some("alice@contoso.com"));
    let mut c = client(server.tcp.port(), chain, key, ca.roots());
    let seen = wait_for(&mut c, "registration", registered).await;
    let Some(ClientEvent::Registration(RegistrationEvent::Registered {
        auth_scheme, gruu, ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!(auth_scheme, "TLS-DSK");
    assert!(gruu.is_some());

    // A publication: the server checks our signature, we check its.
    let h = c.handle();
    let published = h
        .set_status(State::Busy, Some("TLS-DSK"))
        .await
        .expect("accepted")
        .outcome()
        .await;
    assert!(published.is_ok(), "{published:?}");
    let (verified, violations) = server
        .with(|s, _| (s.verified_signatures("SERVICE"), s.signature_violations()))
        .await
        .expect("server");
    assert!(verified >= 1, "the server verified our SERVICE");
    assert_eq!(violations, 0);
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}

/// The sign-in ended without a registration: failed, or the server's
/// refusal handed back to the app (a certificate is the credential).
fn refused(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(
            RegistrationEvent::Failed(_) | RegistrationEvent::CredentialsNeeded { .. }
        ) | ClientEvent::Stopped
    )
}

#[tokio::test]
async fn a_certificate_of_another_user_or_ca_is_refused() {
    let ca = Ca::new();
    let server = serve(sim(&ca), LOCALHOST, 0, None).await.expect("serve");
    // bob's certificate used to sign in as alice.
    let (chain, key) = ca.issue(&[], Some("bob@contoso.com"));
    let mut c = client(server.tcp.port(), chain, key, ca.roots());
    let seen = wait_for(&mut c, "failure", refused).await;
    assert!(!seen.iter().any(registered), "{seen:?}");

    // A certificate from another CA: the handshake fails at the server.
    let other = Ca::new();
    let (chain, key) = other.issue(&[], Some("alice@contoso.com"));
    let mut c = client(server.tcp.port(), chain, key, ca.roots());
    let seen = wait_for(&mut c, "failure", refused).await;
    assert!(!seen.iter().any(registered), "{seen:?}");

    // The server's certificate from a CA the client does not trust.
    let (chain, key) = ca.issue(&[], Some("alice@contoso.com"));
    let mut c = client(server.tcp.port(), chain, key, other.roots());
    let seen = wait_for(&mut c, "failure", refused).await;
    assert!(!seen.iter().any(registered), "{seen:?}");
    let failed = seen.iter().find_map(|e| match e {
        ClientEvent::Registration(RegistrationEvent::Failed(err)) => Some(err.to_string()),
        _ => None,
    });
    assert!(
        failed.as_deref().is_some_and(|f| f.contains("TLS-DSK")),
        "{failed:?}"
    );
}

/// Certificate provisioning against the embedded server: a web ticket
/// (an OAuth token, then WS-Trust IssueToken with a proof key), a fresh key
/// and request, GetAndPublishCert with the ticket in wsse:Security signed
/// with the proof key, and the certificate that comes back signs alice in
/// with TLS-DSK.
#[tokio::test]
async fn a_provisioned_certificate_signs_in() {
    use ocs_core::driver::sim::serve_tls_dsk_users;
    use ocs_core::driver::{WebTicketProof, provision_certificate, web_ticket};

    let (server, pki) =
        serve_tls_dsk_users("contoso.com", &[("alice", "alicepw"), ("bob", "bobpw")])
            .await
            .expect("serve");
    let base = format!("http://{}", server.http);
    let certprov = format!("{base}/CertProv/CertProvisioningService.svc");
    let http = ocs_core::driver::http::builtin(&pki.client_tls()).expect("http");
    let tls = &*http;

    // A wrong password: no ticket.
    let e = web_ticket(
        &certprov,
        "sip:alice@contoso.com",
        "CONTOSO\\alice",
        "wrong",
        tls,
    )
    .await
    .expect_err("refused");
    assert!(e.contains("token service") && !e.contains("wrong"), "{e}");
    // alice may not ask for a ticket naming bob.
    let e = web_ticket(
        &certprov,
        "sip:bob@contoso.com",
        "CONTOSO\\alice",
        "alicepw",
        tls,
    )
    .await
    .expect_err("refused");
    assert!(e.contains("403") && e.contains("URI claim"), "{e}");

    let ticket = web_ticket(
        &certprov,
        "sip:alice@contoso.com",
        "CONTOSO\\alice",
        "alicepw",
        tls,
    )
    .await
    .expect("ticket");
    assert!(
        ticket.ticket.server_entropy.is_some(),
        "a proof-of-possession ticket"
    );
    assert!(
        !format!("{ticket:?}").contains("Assertion "),
        "Debug shows the assertion"
    );
    // The ticket without its proof key, or with another key: refused,
    // and the answer says where tickets come from.
    for (what, forged) in [
        ("bearer", WebTicketProof::new(ticket.ticket.clone(), None)),
        (
            "wrong key",
            WebTicketProof::new(ticket.ticket.clone(), Some(vec![1; 32])),
        ),
    ] {
        let e = provision_certificate(&certprov, &forged, "alice@contoso.com", tls)
            .await
            .expect_err(what);
        assert!(e.contains("401") && e.contains("web ticket"), "{what}: {e}");
    }
    // Another user's certificate is not given to alice.
    let e = provision_certificate(&certprov, &ticket, "bob@contoso.com", tls)
        .await
        .expect_err("not alice");
    assert!(e.contains("403"), "{e}");

    let issued = provision_certificate(&certprov, &ticket, "alice@contoso.com", tls)
        .await
        .expect("provisioned");
    assert!(
        !format!("{issued:?}").contains("PRIVATE"),
        "Debug shows the key"
    );
    let auth = TlsDskAuthenticator::from_pem(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        pki.client_tls().root_store().expect("roots"),
    )
    .expect("credential");
    let not_after = auth.not_after().expect("notAfter");
    let days = not_after
        .duration_since(wall())
        .expect("in the future")
        .as_secs()
        / 86_400;
    assert!((179..=180).contains(&days), "valid {days} days");

    // Kept per user: the key readable by its owner only; used while an
    // hour or more is left, then it counts as missing (provision again).
    let dir = std::env::temp_dir().join(format!("ocs-certstore.{}", std::process::id()));
    let store = ocs_core::driver::CertStore::open(&dir).expect("store");
    store
        .save("alice@contoso.com", &issued.cert_pem, &issued.key_pem)
        .expect("saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("alice@contoso.com.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let roots = pki.client_tls().root_store().expect("roots");
    assert!(
        store
            .load("alice@contoso.com", roots.clone(), wall())
            .expect("load")
            .is_some()
    );
    let late = not_after - std::time::Duration::from_secs(30 * 60);
    assert!(
        store
            .load("alice@contoso.com", roots.clone(), late)
            .expect("load")
            .is_none(),
        "half an hour before the end it needs renewing"
    );
    assert!(
        store
            .load("bob@contoso.com", roots.clone(), wall())
            .expect("load")
            .is_none()
    );
    assert!(store.load("../etc/passwd", roots, wall()).is_err());
    let _ = std::fs::remove_dir_all(&dir);

    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    let mut ccfg = ClientConfig::new(EndpointConfig::new(reg, None));
    ccfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(server.tcp.port()),
        transport: Transport::Tcp,
    });
    ccfg.authenticator = Some(AuthenticatorFactory(Arc::new(move || {
        Box::new(auth.clone())
    })));
    let mut c = Client::start(ccfg).expect("client starts");
    let seen = wait_for(&mut c, "registration", registered).await;
    assert!(
        matches!(
            seen.last(),
            Some(ClientEvent::Registration(RegistrationEvent::Registered { auth_scheme, .. }))
                if auth_scheme == "TLS-DSK"
        ),
        "{seen:?}"
    );
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}

/// The whole Lync path the client runs by itself: autodiscover (with an
/// OAuth token) finds the pool; its TLS-DSK challenge names the pool's
/// provisioning service; the client gets a web ticket with alice's
/// password, a certificate for a key it made, keeps it, signs in with it
/// over TLS, and its traffic is signed both ways. A second start finds the
/// kept certificate and uses it.
#[tokio::test]
async fn the_client_provisions_its_certificate_when_the_challenge_asks_and_keeps_it() {
    use ocs_core::driver::sim::serve_tls_dsk_users;
    use ocs_core::driver::{AutodiscoverSettings, CertificateSettings};
    use ocs_core::register::Credentials;

    let (server, pki) = serve_tls_dsk_users("contoso.com", &[("alice", "alicepw")])
        .await
        .expect("serve");
    let dir = std::env::temp_dir().join(format!("ocs-certprov-auto.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || {
        let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
        let creds = Credentials::new("CONTOSO\\alice", "alicepw");
        let mut ccfg = ClientConfig::new(EndpointConfig::new(reg, Some(creds)));
        ccfg.autodiscover = Some(AutodiscoverSettings {
            urls: Some(vec![format!(
                "http://{}/autodiscover/autodiscoverservice.svc/root",
                server.http
            )]),
        });
        ccfg.tls = pki.client_tls();
        ccfg.certificates = Some(CertificateSettings {
            store: Some(dir.clone()),
        });
        ccfg
    };
    let signed_in_with_tls_dsk = |seen: &[ClientEvent]| {
        matches!(
            seen.last(),
            Some(ClientEvent::Registration(RegistrationEvent::Registered { auth_scheme, .. }))
                if auth_scheme == "TLS-DSK"
        )
    };

    let mut c = Client::start(config()).expect("client starts");
    let seen = wait_for(&mut c, "registration", registered).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ClientEvent::Connected { source, transport: Transport::Tls, .. } if source == "autodiscover"
        )),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::CertificateNeeded { sts_uri, renewal: false })
                if sts_uri.ends_with("/CertProv/CertProvisioningService.svc")
        )),
        "{seen:?}"
    );
    assert!(signed_in_with_tls_dsk(&seen), "{seen:?}");
    let kept = std::fs::read(dir.join("alice@contoso.com.pem")).expect("certificate kept");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("alice@contoso.com.key"))
            .expect("key kept")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    // Signed traffic both ways on the provisioned association: the
    // server verified our SERVICE, we verified its answer.
    c.set_status(State::Busy, None)
        .await
        .expect("asked")
        .outcome()
        .await
        .expect("published");
    let (verified, violations) = server
        .with(|s, _| (s.verified_signatures("SERVICE"), s.signature_violations()))
        .await
        .expect("server");
    assert!(
        verified >= 1,
        "the server verified {verified} signed SERVICEs"
    );
    assert_eq!(violations, 0);
    let snap = c.handle().diagnostics().await.expect("snapshot");
    assert_eq!(snap.refused_unsigned, 0, "{:?}", snap.last_refused);
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;

    // Started again: the kept certificate is fresh, so it is used as is.
    let mut c = Client::start(config()).expect("client starts");
    let seen = wait_for(&mut c, "registration", registered).await;
    assert!(signed_in_with_tls_dsk(&seen), "{seen:?}");
    assert_eq!(
        std::fs::read(dir.join("alice@contoso.com.pem")).expect("still kept"),
        kept,
        "provisioned again instead of using the kept certificate"
    );
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;

    // A wrong password: the token service refuses, and sign-in fails
    // saying so (the pool offers nothing but TLS-DSK).
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config();
    cfg.session.endpoint.credentials = Some(Credentials::new("CONTOSO\\alice", "wrong"));
    // (Autodiscover would refuse the password first: the pool directly.)
    cfg.autodiscover = None;
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(server.tls.expect("TLS").port()),
        transport: Transport::Tls,
    });
    let mut c = Client::start(cfg).expect("client starts");
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::Registration(RegistrationEvent::Failed(_)))
    })
    .await;
    let why = format!("{:?}", seen.last());
    assert!(why.contains("certificate provisioning failed"), "{why}");
    assert!(!why.contains("wrong"), "the password shows: {why}");
    let _ = std::fs::remove_dir_all(&dir);
}
