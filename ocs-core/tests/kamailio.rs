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

mod common;
use common::client::wait_for;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::im::outcome::FailureReason;
use ocs_core::messaging::{ImEvent, MessageId};
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

// ---------------------------------------------------------------------------
// Page-mode IM (RFC 3428) and is-composing (RFC 3994) through Kamailio,
// which challenges every MESSAGE from its own domain with 407 and relays it
// to the recipient's registered contact (404 "Not Found" when it has none).

/// A standard-dialect client for `user` (password `{user}pw`).
fn im_client(user: &str, transport: Transport) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{user}-epid-0"),
    );
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new(user, &format!("{user}pw"))),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port()),
        transport,
    });
    cfg.allowed = vec![transport];
    cfg.connect_timeout = Duration::from_secs(2);
    Client::start(cfg).expect("client starts")
}

fn is_registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { .. })
    )
}

/// Alice and Bob, both registered over `transport`.
async fn im_pair(transport: Transport) -> (Client, Client) {
    let mut alice = im_client("alice", transport);
    let mut bob = im_client("bob", transport);
    wait_for(&mut alice, "alice registered", is_registered).await;
    wait_for(&mut bob, "bob registered", is_registered).await;
    (alice, bob)
}

/// Signs out (so Kamailio's location table does not keep our contacts).
async fn sign_out(mut c: Client) {
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}

fn received_text(e: &ClientEvent, text: &str) -> bool {
    matches!(e, ClientEvent::Im(ImEvent::Received { content, .. }) if content.plain_text == text)
}

/// The outcome of message `id`: `Ok(())` when delivered, else the
/// failure's reason and detail. Fails the test after 10 s.
async fn outcome(c: &mut Client, id: MessageId) -> Result<(), (FailureReason, String)> {
    let seen = wait_for(c, "an outcome", |e| {
        matches!(e, ClientEvent::Im(ImEvent::Delivered { id: i } | ImEvent::Failed { id: i, .. }) if *i == id)
    })
    .await;
    match seen.last() {
        Some(ClientEvent::Im(ImEvent::Delivered { .. })) => Ok(()),
        Some(ClientEvent::Im(ImEvent::Failed { reason, detail, .. })) => {
            Err((*reason, detail.clone()))
        }
        _ => unreachable!(),
    }
}

async fn im_both_ways(transport: Transport) {
    let (mut alice, mut bob) = im_pair(transport).await;
    let id = alice
        .send_im("sip:bob@127.0.0.1", "hello bob, via kamailio")
        .await
        .expect("send")
        .id;
    assert_eq!(outcome(&mut alice, id).await, Ok(()), "{transport}");
    let seen = wait_for(&mut bob, "alice's message", |e| {
        received_text(e, "hello bob, via kamailio")
    })
    .await;
    let Some(ClientEvent::Im(ImEvent::Received { from, content })) = seen.last() else {
        unreachable!()
    };
    assert_eq!(from, "sip:alice@127.0.0.1");
    assert_eq!(content.content_type, "text/plain");

    let back = bob
        .send_im("sip:alice@127.0.0.1", "hi alice ✓")
        .await
        .expect("send")
        .id;
    assert_eq!(outcome(&mut bob, back).await, Ok(()), "{transport}");
    let seen = wait_for(&mut alice, "bob's reply", |e| {
        received_text(e, "hi alice ✓")
    })
    .await;
    assert!(matches!(
        seen.last(),
        Some(ClientEvent::Im(ImEvent::Received { from, .. })) if from == "sip:bob@127.0.0.1"
    ));
    sign_out(alice).await;
    sign_out(bob).await;
}

async fn typing_arrives(transport: Transport) {
    let (alice, mut bob) = im_pair(transport).await;
    alice.send_typing("sip:bob@127.0.0.1", true);
    wait_for(&mut bob, "typing (active)", |e| {
        *e == ClientEvent::Im(ImEvent::Typing {
            from: "sip:alice@127.0.0.1".into(),
            active: true,
        })
    })
    .await;
    alice.send_typing("sip:bob@127.0.0.1", false);
    wait_for(&mut bob, "typing (idle)", |e| {
        *e == ClientEvent::Im(ImEvent::Typing {
            from: "sip:alice@127.0.0.1".into(),
            active: false,
        })
    })
    .await;
    sign_out(alice).await;
    sign_out(bob).await;
}

async fn unregistered_user_fails(transport: Transport) {
    let mut alice = im_client("alice", transport);
    wait_for(&mut alice, "alice registered", is_registered).await;
    let id = alice
        .send_im("sip:carol@127.0.0.1", "carol?")
        .await
        .expect("send")
        .id;
    let (reason, detail) = outcome(&mut alice, id)
        .await
        .expect_err("no carol is registered");
    // Kamailio's cfg answers `404 Not Found` when lookup("location") fails.
    assert_eq!(reason, FailureReason::Offline, "{transport}: {detail}");
    assert!(
        detail.starts_with("404"),
        "{transport}: expected Kamailio's 404, got {detail:?}"
    );
    sign_out(alice).await;
}

/// Alice's next `n` outcomes, in the order they arrive.
async fn outcomes(
    alice: &mut Client,
    n: usize,
    transport: Transport,
) -> Vec<Result<MessageId, (MessageId, String)>> {
    let mut outcomes = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(15), async {
        while outcomes.len() < n {
            match alice.next_event().await {
                Some(ClientEvent::Im(ImEvent::Delivered { id })) => outcomes.push(Ok(id)),
                Some(ClientEvent::Im(ImEvent::Failed { id, detail, .. })) => {
                    outcomes.push(Err((id, detail)))
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{transport}: outcomes so far {outcomes:?}");
    outcomes
}

/// The texts of Bob's next `n` messages, in the order they arrive.
async fn bob_receives(bob: &mut Client, n: usize, transport: Transport) -> Vec<String> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < n {
            match bob.next_event().await {
                Some(ClientEvent::Im(ImEvent::Received { content, .. })) => {
                    got.push(content.plain_text)
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{transport}: bob got only {got:?}");
    got
}

async fn several_in_a_row(transport: Transport) {
    let (mut alice, mut bob) = im_pair(transport).await;
    // One after the other (each sent once the previous one is delivered):
    // delivered, and received, in order.
    let texts: Vec<String> = (1..=5).map(|i| format!("in turn {i} of 5")).collect();
    let mut ids = Vec::new();
    for t in &texts {
        let id = alice
            .send_im("sip:bob@127.0.0.1", t)
            .await
            .expect("send")
            .id;
        assert_eq!(outcome(&mut alice, id).await, Ok(()), "{transport}: {t}");
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{transport}: {ids:?}");
    assert_eq!(
        bob_receives(&mut bob, 5, transport).await,
        texts,
        "{transport}"
    );

    // Back to back, without waiting: page mode sends each as its own
    // transaction at once, and Kamailio relays them from parallel workers,
    // so the order is not kept (RFC 3428 promises none). Every one still
    // ends Delivered exactly once, and Bob gets each exactly once.
    let texts: Vec<String> = (1..=10).map(|i| format!("burst {i} of 10")).collect();
    let mut ids = Vec::new();
    for t in &texts {
        ids.push(
            alice
                .send_im("sip:bob@127.0.0.1", t)
                .await
                .expect("send")
                .id,
        );
    }
    let got = outcomes(&mut alice, ids.len(), transport).await;
    let mut delivered: Vec<MessageId> = got
        .iter()
        .map(|o| {
            *o.as_ref()
                .unwrap_or_else(|e| panic!("{transport}: {e:?} in {got:?}"))
        })
        .collect();
    if delivered != ids {
        eprintln!("{transport}: outcomes arrived out of order: {delivered:?}");
    }
    delivered.sort();
    assert_eq!(delivered, ids, "{transport}");
    let mut received = bob_receives(&mut bob, texts.len(), transport).await;
    if received != texts {
        eprintln!("{transport}: bob received out of order: {received:?}");
    }
    received.sort();
    let mut want = texts.clone();
    want.sort();
    assert_eq!(received, want, "{transport}");
    sign_out(alice).await;
    sign_out(bob).await;
}

/// SIPp (which answers the 407 itself) sends to an ocs Bob: the receiving
/// side on its own.
async fn sipp_message_received(transport: Transport) {
    let mut bob = im_client("bob", transport);
    wait_for(&mut bob, "bob registered", is_registered).await;
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers/kamailio/sipp/message.xml");
    let t = match transport {
        Transport::Udp => "u1",
        _ => "t1",
    };
    let sipp = Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .args(["-t", t, "-p", &(port() + 13).to_string(), "-m", "1"])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
        .args(["-key", "user", "alice", "-key", "peer", "bob"])
        .args(["-au", "alice", "-ap", "alicepw"])
        .arg(format!("127.0.0.1:{}", port()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sipp runs (ocs-core/tests/peers/kamailio/install.sh installs it)");
    let seen = wait_for(&mut bob, "SIPp's message", |e| {
        received_text(e, "hello from sipp")
    })
    .await;
    let out = tokio::task::spawn_blocking(move || sipp.wait_with_output())
        .await
        .expect("join");
    let out = out.expect("sipp runs");
    assert!(
        out.status.success(),
        "{transport}: sipp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(
        seen.last(),
        Some(ClientEvent::Im(ImEvent::Received { from, .. })) if from == "sip:alice@127.0.0.1"
    ));
    sign_out(bob).await;
}

/// Over UDP: Received with the right text and Delivered, alice to bob and back.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn page_mode_im_both_ways_over_udp() {
    im_both_ways(Transport::Udp).await;
}

/// Over TCP: Received with the right text and Delivered, alice to bob and back.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn page_mode_im_both_ways_over_tcp() {
    im_both_ways(Transport::Tcp).await;
}

/// Over UDP: is-composing (RFC 3994) arrives as ImEvent::Typing.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn is_composing_arrives_as_typing_over_udp() {
    typing_arrives(Transport::Udp).await;
}

/// Over TCP: is-composing (RFC 3994) arrives as ImEvent::Typing.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn is_composing_arrives_as_typing_over_tcp() {
    typing_arrives(Transport::Tcp).await;
}

/// Over UDP: a message to carol (not registered) ends Failed with Kamailio's 404.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn im_to_unregistered_user_fails_over_udp() {
    unregistered_user_fails(Transport::Udp).await;
}

/// Over TCP: a message to carol (not registered) ends Failed with Kamailio's 404.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn im_to_unregistered_user_fails_over_tcp() {
    unregistered_user_fails(Transport::Tcp).await;
}

/// Over UDP: five messages sent in turn end Delivered in order; ten sent back to back each end Delivered once.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn several_ims_in_a_row_delivered_in_order_over_udp() {
    several_in_a_row(Transport::Udp).await;
}

/// Over TCP: five messages sent in turn end Delivered in order; ten sent back to back each end Delivered once.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn several_ims_in_a_row_delivered_in_order_over_tcp() {
    several_in_a_row(Transport::Tcp).await;
}

/// Over UDP: a MESSAGE from SIPp reaches the ocs client.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn sipp_message_is_received_over_udp() {
    sipp_message_received(Transport::Udp).await;
}

/// Over TCP: a MESSAGE from SIPp reaches the ocs client.
#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn sipp_message_is_received_over_tcp() {
    sipp_message_received(Transport::Tcp).await;
}

// ---------------------------------------------------------------------------
// linphonec (Debian `linphone-cli`) as the other party: started by
// `ocs-core/tests/peers/linphonec/run.sh` as bob, registered to the same
// Kamailio over UDP, driven through its standard input. scripts/test.sh
// sets OCS_LINPHONEC=1 when linphonec is installed and runs these tests
// on their own (`linphonec_` filter); the other Kamailio tests skip them.

/// A linphonec process (the child is linphonec itself: run.sh execs it).
struct Linphonec {
    child: std::process::Child,
    dir: PathBuf,
}

impl Linphonec {
    fn start() -> Linphonec {
        assert!(
            std::env::var("OCS_LINPHONEC").as_deref() == Ok("1"),
            "OCS_LINPHONEC=1 is not set: these tests need linphonec (Debian linphone-cli; \
             `ocs-core/tests/peers/linphonec/run.sh install`). scripts/test.sh sets it and runs \
             them when linphonec is installed, and skips them otherwise"
        );
        let dir = std::env::temp_dir().join(format!("ocs-linphonec.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/linphonec/run.sh");
        let child = Command::new(&script)
            .arg(&dir)
            .arg(port().to_string())
            .arg((port() + 30).to_string())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        Linphonec { child, dir }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .expect("linphonec takes a command");
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("linphonec.out")).unwrap_or_default()
    }

    /// Waits (at most `secs`) until linphonec's output holds `needle`.
    async fn wait_output(&self, needle: &str, secs: u64) -> bool {
        for _ in 0..secs * 10 {
            if self.output().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Asks for the proxy state until it says `registered: yes`.
    async fn wait_registered(&mut self) {
        for _ in 0..20 {
            self.send("proxy list");
            if self.wait_output("registered: yes", 1).await {
                return;
            }
        }
        panic!(
            "linphonec did not register; its output:\n{}\nstderr (tail):\n{}",
            self.output(),
            self.stderr_tail()
        );
    }

    fn stderr_tail(&self) -> String {
        let err = std::fs::read_to_string(self.dir.join("linphonec.err")).unwrap_or_default();
        let lines: Vec<&str> = err.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Linphonec {
    fn drop(&mut self) {
        // `quit` un-registers; kill it (our own child, by its id) if it hangs.
        self.send("quit");
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// linphonec bob sends to ocs alice; with `both_ways`, alice answers and
/// linphonec prints it.
async fn linphonec_chat(both_ways: bool) {
    let mut bob = Linphonec::start();
    bob.wait_registered().await;
    let mut alice = im_client("alice", Transport::Udp);
    wait_for(&mut alice, "alice registered", is_registered).await;

    bob.send("chat sip:alice@127.0.0.1 hello");
    let seen = wait_for(&mut alice, "linphonec's message", |e| {
        received_text(e, "hello")
    })
    .await;
    let Some(ClientEvent::Im(ImEvent::Received { from, content })) = seen.last() else {
        unreachable!()
    };
    assert_eq!(from, "sip:bob@127.0.0.1");
    assert_eq!(content.content_type, "text/plain");

    if both_ways {
        let id = alice
            .send_im("sip:bob@127.0.0.1", "hello linphonec")
            .await
            .expect("send")
            .id;
        assert_eq!(outcome(&mut alice, id).await, Ok(()));
        assert!(
            bob.wait_output(
                "Message received from sip:alice@127.0.0.1: hello linphonec",
                10
            )
            .await,
            "linphonec did not print alice's message; its output:\n{}",
            bob.output()
        );
    }
    sign_out(alice).await;
}

/// ocs alice and linphonec bob exchange page-mode MESSAGEs both ways.
#[tokio::test]
#[ignore = "needs Kamailio and linphonec (OCS_LINPHONEC=1): run scripts/test.sh"]
async fn linphonec_exchanges_page_mode_messages() {
    linphonec_chat(true).await;
}

/// linphonec bob's `chat` reaches ocs alice (the receiving half alone).
#[tokio::test]
#[ignore = "needs Kamailio and linphonec (OCS_LINPHONEC=1): run scripts/test.sh"]
async fn linphonec_message_reaches_ocs() {
    linphonec_chat(false).await;
}
