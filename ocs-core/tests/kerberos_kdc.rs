//! Kerberos sign-in (MS-SIPAE with `Kerberos`) against a real MIT KDC:
//! the client gets alice's ticket from the KDC (with her password, or from
//! the credential cache `kinit` filled), the embedded server accepts it
//! with the service's key from its keytab, and every message after is
//! signed with GSS MIC tokens both ways.
//!
//! Needs the KDC `scripts/kdc.sh start` makes (its settings in
//! target/kdc.env); `scripts/test.sh` runs these with `--ignored`:
//!
//! ```sh
//! scripts/kdc.sh start && set -a && . target/kdc.env && set +a
//! cargo test -p ocs-core --features kerberos --test kerberos_kdc -- --ignored
//! ```
#![cfg(all(feature = "kerberos", unix, feature = "tokio"))]

mod common;
use common::client::{registered, wait_for};

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ocs_core::auth::kerberos::{KerberosAuthenticator, accept};
use ocs_core::auth::mechanism::Authenticator;
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{AuthenticatorFactory, Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::presence::model::State;
use ocs_core::register::{RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};

fn kdc_is_set_up() {
    assert!(
        std::env::var_os("KRB5_CONFIG").is_some() && std::env::var_os("KRB5_KTNAME").is_some(),
        "run scripts/kdc.sh start and load target/kdc.env first"
    );
}

async fn kerberos_server() -> SimHandle {
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.auth = AuthMode::Kerberos;
    let mut r = Registrar::new(cfg, Rng::from_seed(41), [5; 32]);
    r.add_user("alice", "CONTOSO", "unused");
    r.add_user("bob", "CONTOSO", "unused");
    r.set_kerberos(Arc::new(|target: &str, token: &[u8]| accept(target, token)));
    let server = SimServer::new(r, Rng::from_seed(42));
    serve(server, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None)
        .await
        .expect("serve")
}

fn client(port: u16, user: &str, auth: KerberosAuthenticator) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@contoso.com"),
        Dialect::Ocs,
        "0123456789",
    );
    let mut cfg = ClientConfig::new(EndpointConfig::new(reg, None));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Tcp,
    });
    cfg.authenticator = Some(AuthenticatorFactory(Arc::new(move || {
        Box::new(auth.clone()) as Box<dyn Authenticator>
    })));
    Client::start(cfg).expect("client starts")
}

fn failure(seen: &[ClientEvent]) -> String {
    seen.iter()
        .find_map(|e| match e {
            ClientEvent::Registration(RegistrationEvent::Failed(e)) => Some(e.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the KDC of scripts/kdc.sh (scripts/test.sh runs it)"]
async fn kerberos_signs_in_against_a_real_kdc_and_signs_both_ways() {
    kdc_is_set_up();
    let server = kerberos_server().await;
    let port = server.tcp.port();

    let mut c = client(
        port,
        "alice",
        KerberosAuthenticator::with_password("alice@CONTOSO.COM", "alicepw"),
    );
    let seen = wait_for(&mut c, "registration", registered).await;
    assert!(
        matches!(
            seen.last(),
            Some(ClientEvent::Registration(RegistrationEvent::Registered { auth_scheme, .. }))
                if auth_scheme == "Kerberos"
        ),
        "{seen:?}"
    );
    // A publication: the server checks our MIC, we check its.
    let published = c
        .handle()
        .set_status(State::Busy, Some("Kerberos"))
        .await
        .expect("accepted")
        .outcome()
        .await;
    assert_eq!(published, Ok(State::Busy));
    let snap = c.handle().diagnostics().await.expect("snapshot");
    assert_eq!(snap.refused_unsigned, 0, "{:?}", snap.last_refused);
    let checked = server
        .with(|s, _| (s.verified_signatures("SERVICE"), s.signature_violations()))
        .await;
    let (verified, violations) = checked.expect("server");
    assert!(
        verified >= 1,
        "the server verified {verified} signed SERVICEs"
    );
    assert_eq!(violations, 0);
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;

    // The wrong password: the KDC refuses, and sign-in says it was Kerberos.
    let mut c = client(
        port,
        "alice",
        KerberosAuthenticator::with_password("alice@CONTOSO.COM", "wrong"),
    );
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::Registration(RegistrationEvent::Failed(_)))
    })
    .await;
    let why = failure(&seen);
    assert!(why.contains("Kerberos"), "{why}");
    assert!(!why.contains("wrong"), "the password shows: {why}");

    // bob's ticket does not sign alice in.
    let mut c = client(
        port,
        "alice",
        KerberosAuthenticator::with_password("bob@CONTOSO.COM", "bobpw"),
    );
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::Registration(RegistrationEvent::Failed(_)))
    })
    .await;
    assert!(failure(&seen).contains("403"), "{seen:?}");
}

#[tokio::test]
#[ignore = "needs the KDC of scripts/kdc.sh (scripts/test.sh runs it)"]
async fn kerberos_uses_the_ticket_kinit_left_in_the_cache() {
    kdc_is_set_up();
    let mut kinit = std::process::Command::new("kinit")
        .arg("alice@CONTOSO.COM")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("kinit runs");
    {
        use std::io::Write;
        let mut stdin = kinit.stdin.take().expect("stdin");
        stdin.write_all(b"alicepw\n").expect("password");
    }
    assert!(kinit.wait().expect("kinit").success());

    let server = kerberos_server().await;
    let mut c = client(
        server.tcp.port(),
        "alice",
        KerberosAuthenticator::from_cache(),
    );
    let seen = wait_for(&mut c, "registration", registered).await;
    assert!(
        matches!(
            seen.last(),
            Some(ClientEvent::Registration(RegistrationEvent::Registered { auth_scheme, .. }))
                if auth_scheme == "Kerberos"
        ),
        "{seen:?}"
    );
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    let _ = std::process::Command::new("kdestroy").status();
}
