//! No secrets where people look (issue 25, part 5): a whole session against
//! the embedded server (NTLM sign-in, a publication with a note, an IM,
//! the diagnostics snapshot, sign-out) with a `tracing` subscriber at
//! TRACE, a text SIP trace and a pcap trace; then every one of them, and
//! the `Debug` text of every type that holds key material, is searched for
//! the password, its NT hash and NTOWFv2, NTLM tokens and the session keys.
#![cfg(all(feature = "tokio", feature = "tracing"))]

mod common;
use common::client::{registered, sim_client_config, wait_for};

use std::io::Write;
use std::sync::{Arc, Mutex};

use ocs_core::auth::ntlm::{self, AuthenticateParams, ChallengeMessage, Role};
use ocs_core::discovery::Dialect;
use ocs_core::driver::{Client, ClientEvent, TraceConfig, sim};
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::State;

const PASSWORD: &str = "Correct-Horse-7";

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ways a 16-byte secret could show up in text: lower and upper hex,
/// and Rust's `Debug` of a byte array (its first four bytes are enough).
fn forms(b: &[u8]) -> Vec<String> {
    let h = hex(b);
    vec![
        h.clone(),
        h.to_ascii_uppercase(),
        format!("[{}, {}, {}, {}", b[0], b[1], b[2], b[3]),
    ]
}

/// Fails when `text` (from `where_`) holds any of `secrets`.
fn clean(where_: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{s:?} found in {where_}:\n{}",
            &text[text.find(s.as_str()).unwrap_or(0).saturating_sub(200)..]
                .chars()
                .take(400)
                .collect::<String>()
        );
    }
}

fn password_secrets() -> Vec<String> {
    password_secrets_for("alice", PASSWORD)
}

#[tokio::test]
async fn a_session_leaves_no_secret_in_logs_traces_or_diagnostics() {
    let dir = std::env::temp_dir().join(format!("ocs-secrets.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = sim::serve_users("contoso.com", &[("alice", PASSWORD), ("bob", "bobpw")])
        .await
        .expect("server");
    let mut cfg = sim_client_config("alice", "0123456789", server.tcp.port(), Dialect::Ocs);
    cfg.endpoint.credentials = Some(ocs_core::register::Credentials::new(
        "CONTOSO\\alice",
        PASSWORD,
    ));
    cfg.trace = Some(TraceConfig::text(dir.join("alice.trace")));
    let mut alice = Client::start(cfg.clone()).expect("alice");
    let mut bcfg = sim_client_config("bob", "9876543210", server.tcp.port(), Dialect::Ocs);
    bcfg.trace = Some(TraceConfig::pcap(dir.join("bob.pcap")));
    let mut bob = Client::start(bcfg).expect("bob");
    // Every event alice's host sees, for their Debug text.
    let mut seen = wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;

    alice
        .set_status(State::Busy, Some("a private note"))
        .await
        .expect("publish")
        .outcome()
        .await
        .expect("published");
    let im = alice
        .send_im("sip:bob@contoso.com", "a private message")
        .await
        .expect("send");
    im.outcome().await.expect("delivered");
    wait_for(&mut bob, "the IM", |e| {
        matches!(e, ClientEvent::Im(ImEvent::Received { .. }))
    })
    .await;
    let snap = alice.diagnostics().await.expect("snapshot");
    let snapshot = format!("{}\n{}\n{snap:?}", snap.to_json(), snap.to_table());
    alice.sign_out();
    seen.extend(wait_for(&mut alice, "stop", |e| *e == ClientEvent::Stopped).await);
    bob.sign_out();
    wait_for(&mut bob, "stop", |e| *e == ClientEvent::Stopped).await;
    let events = format!("{seen:?}");
    assert!(events.contains("Registered"), "{events}");
    drop(server);

    let secrets = password_secrets();
    let log = String::from_utf8(log.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(log.contains("signed in (NTLM"), "the log is there:\n{log}");
    clean("the tracing log", &log, &secrets);
    let trace = std::fs::read_to_string(dir.join("alice.trace")).expect("trace");
    assert!(
        trace.contains("REGISTER sip:contoso.com"),
        "the trace is there"
    );
    clean("the text SIP trace", &trace, &secrets);
    let pcap = std::fs::read(dir.join("bob.pcap")).expect("pcap");
    clean(
        "the pcap trace",
        &String::from_utf8_lossy(&pcap),
        &password_secrets_for("bob", "bobpw"),
    );
    clean("the diagnostics snapshot", &snapshot, &secrets);
    clean("the events", &events, &secrets);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A password, its NTOWFv2 (what NTLM derives every key from), and any
/// NTLM token (base64 of "NTLMSSP").
fn password_secrets_for(user: &str, password: &str) -> Vec<String> {
    let mut s = vec![password.to_owned(), "TlRMTVNT".to_owned()];
    s.extend(forms(&ntlm::nt_owf_v2(password, user, "CONTOSO")));
    s
}

#[test]
fn types_that_hold_key_material_print_none_of_it() {
    let challenge = ChallengeMessage {
        flags: ntlm::flags::OC_CONNECTIONLESS,
        server_challenge: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        target_name: Vec::new(),
        target_info: ntlm::server_target_info(
            "CONTOSO",
            "FE1",
            "contoso.com",
            "fe1.contoso.com",
            "contoso.com",
        )
        .expect("target info"),
        version: None,
    };
    let params = AuthenticateParams {
        user: "alice",
        domain: "CONTOSO",
        password: PASSWORD,
        workstation: "WS1",
        flags: ntlm::flags::OC_CONNECTIONLESS,
        version: [6, 1, 0xb1, 0x1d, 0, 0, 0, 15],
        client_challenge: [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8],
        timestamp: 0x01d9_0000_0000_0000,
        random_session_key: [0xc3; 16],
    };
    let client = ntlm::build_authenticate(&challenge, &params).expect("authenticate");
    let msg = ntlm::AuthenticateMessage::parse(&client.message).expect("parse");
    let server =
        ntlm::verify_authenticate(&msg, &challenge.server_challenge, PASSWORD).expect("verifies");
    let mut secrets = password_secrets();
    for k in [
        client.session_base_key,
        client.exported_session_key,
        params.random_session_key,
        client.keys.client_sign,
        client.keys.client_seal,
        client.keys.server_sign,
        client.keys.server_seal,
    ] {
        secrets.extend(forms(&k));
    }
    let ctx = client.security_context();
    let sa = ocs_core::auth::sipae::SecurityAssociation::new(
        ctx.clone(),
        "SIP Communications Service",
        "fe1.contoso.com",
        Some("ABCD"),
        4,
        ocs_core::sip::HeaderName::Authorization,
    );
    for (what, text) in [
        ("AuthenticateParams", format!("{params:?}")),
        ("ClientAuthentication", format!("{client:?}")),
        ("ServerAuthentication", format!("{server:?}")),
        ("SessionKeys", format!("{:?}", client.keys)),
        ("SecurityContext", format!("{ctx:?}")),
        (
            "server SecurityContext",
            format!("{:?}", server.security_context()),
        ),
        ("SecurityAssociation", format!("{sa:?}")),
        (
            "Credentials",
            format!(
                "{:?}",
                ocs_core::register::Credentials::new("CONTOSO\\alice", PASSWORD)
            ),
        ),
    ] {
        // The value is printed (so it is not an empty string that passes
        // any search), but none of its secrets.
        assert!(text.len() > 10, "{what}: {text}");
        clean(what, &text, &secrets);
    }
    let _ = Role::Client;
}

/// The Lync way: autodiscover with an OAuth password grant, then a TLS-DSK
/// sign-in with a certificate. Neither the password, nor the token
/// (`cwt=...`), nor the certificate's private key shows up in the log, the
/// SIP trace, the diagnostics or the events.
#[tokio::test]
async fn a_lync_sign_in_leaves_no_password_token_or_key_behind() {
    use ocs_core::auth::tlsdsk::TlsDskAuthenticator;
    use ocs_core::driver::{AuthenticatorFactory, AutodiscoverSettings};

    let dir = std::env::temp_dir().join(format!("ocs-secrets-lync.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (server, pki) = sim::serve_tls_dsk_users("contoso.com", &[("alice", PASSWORD)])
        .await
        .expect("server");
    let issued = pki
        .issue(&[], Some("alice@contoso.com"))
        .expect("certificate");
    let tls = pki.client_tls();
    let auth = TlsDskAuthenticator::from_pem(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        tls.root_store().expect("roots"),
    )
    .expect("credential");
    let mut cfg = sim_client_config("alice", "0123456789", server.tcp.port(), Dialect::Ocs);
    cfg.server = None;
    cfg.endpoint.credentials = Some(ocs_core::register::Credentials::new(
        "CONTOSO\\alice",
        PASSWORD,
    ));
    cfg.tls = tls;
    cfg.autodiscover = Some(AutodiscoverSettings {
        urls: Some(vec![format!(
            "http://{}/autodiscover/autodiscoverservice.svc/root",
            server.http
        )]),
    });
    cfg.authenticator = Some(AuthenticatorFactory(Arc::new(move || {
        Box::new(auth.clone())
    })));
    cfg.trace = Some(TraceConfig::text(dir.join("alice.trace")));
    let mut alice = Client::start(cfg).expect("alice");
    let mut seen = wait_for(&mut alice, "alice registered", registered).await;
    let snap = alice.diagnostics().await.expect("snapshot");
    let snapshot = format!("{}\n{}\n{snap:?}", snap.to_json(), snap.to_table());
    assert!(snapshot.contains("TLS-DSK"), "{snapshot}");
    alice.sign_out();
    seen.extend(wait_for(&mut alice, "stop", |e| *e == ClientEvent::Stopped).await);
    let events = format!("{seen:?}");
    let tokens = server.with(|s, _| s.web().token_count()).await;
    assert_eq!(tokens, Some(1), "the token service handed out one token");
    drop(server);

    // The password, any token the server hands out (they start `cwt=`),
    // and every line of the private key's PEM body.
    let mut secrets = vec![PASSWORD.to_owned(), "cwt=".to_owned()];
    secrets.extend(
        issued
            .key_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    let log = String::from_utf8(log.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(log.contains("TLS-DSK"), "the log is there:\n{log}");
    clean("the tracing log", &log, &secrets);
    let trace = std::fs::read_to_string(dir.join("alice.trace")).expect("trace");
    assert!(trace.contains("TLS-DSK"), "the trace is there");
    clean("the text SIP trace", &trace, &secrets);
    clean("the diagnostics snapshot", &snapshot, &secrets);
    clean("the events", &events, &secrets);
    let _ = std::fs::remove_dir_all(&dir);
}
