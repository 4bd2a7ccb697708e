//! IM between two users of the embedded server over real loopback sockets:
//! the server relays and re-signs every request and response (MS-SIPAE),
//! as an OCS front end does.
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, sim_client_config, wait_for};

use std::net::{IpAddr, Ipv4Addr};

use ocs_core::discovery::Dialect;
use ocs_core::driver::sim::serve;
use ocs_core::driver::{Client, ClientEvent};
use ocs_core::error::Provenance;
use ocs_core::im::outcome::FailureReason;
use ocs_core::messaging::ImEvent;
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

fn client(user: &str, epid: &str, port: u16) -> Client {
    Client::start(sim_client_config(user, epid, port, Dialect::Ocs)).expect("client")
}

#[tokio::test]
async fn alice_and_bob_chat_through_the_embedded_server() {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(21),
        [4; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    r.add_user("bob", "CONTOSO", "bobpw");
    let server = serve(
        SimServer::new(r, Rng::from_seed(22)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        None,
    )
    .await
    .expect("serve");
    let mut alice = client("alice", "a1a1a1a1a1", server.tcp.port());
    let mut bob = client("bob", "b2b2b2b2b2", server.tcp.port());
    wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;

    let id = alice
        .send_im("sip:bob@contoso.com", "hello bob")
        .await
        .expect("send")
        .id;
    wait_for(&mut bob, "the message", |e| {
        matches!(e, ClientEvent::Im(ImEvent::Received { content, .. }) if content.plain_text == "hello bob")
    })
    .await;
    wait_for(&mut alice, "delivery", |e| {
        *e == ClientEvent::Im(ImEvent::Delivered { id })
    })
    .await;

    // A reply goes over the same session, in the dialog.
    let back = bob
        .send_im("sip:alice@contoso.com", "hi alice")
        .await
        .expect("send")
        .id;
    wait_for(&mut alice, "the reply", |e| {
        matches!(e, ClientEvent::Im(ImEvent::Received { content, .. }) if content.plain_text == "hi alice")
    })
    .await;
    wait_for(&mut bob, "delivery", |e| {
        *e == ClientEvent::Im(ImEvent::Delivered { id: back })
    })
    .await;

    // Bob turns DisableIM on: Alice learns he cannot receive IM.
    bob.set_disable_im(Some(Provenance {
        source: "HKCU".into(),
        from: Some("quickstart.reg:3".into()),
    }));
    alice.end_im_session("sip:bob@contoso.com");
    let refused = alice
        .send_im("sip:bob@contoso.com", "still there?")
        .await
        .expect("send")
        .id;
    let seen = wait_for(
        &mut alice,
        "refusal",
        |e| matches!(e, ClientEvent::Im(ImEvent::Failed { id, .. }) if *id == refused),
    )
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        ClientEvent::Im(ImEvent::Failed {
            reason: FailureReason::BlockedByPolicy,
            ..
        })
    )));
    assert!(
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Im(ImEvent::ContactCannotReceiveIm { .. })))
    );
    wait_for(&mut bob, "policy event", |e| {
        matches!(e, ClientEvent::Im(ImEvent::RefusedByPolicy { .. }))
    })
    .await;

    // A user who is not signed in: the server answers 480.
    let nobody = alice
        .send_im("sip:carol@contoso.com", "carol?")
        .await
        .expect("send")
        .id;
    wait_for(&mut alice, "failure", |e| {
        matches!(e, ClientEvent::Im(ImEvent::Failed { id, reason: FailureReason::Offline, .. }) if *id == nobody)
    })
    .await;

    // The server checked every message both clients sent after sign-in:
    // the ACK for the 480 was signed like every request, and so were all
    // answers to the server's requests.
    let (acks, answers, violations, recent) = wait_for_server(&server, |s| {
        (
            s.verified_signatures("ACK"),
            s.verified_signatures("200 response to INVITE")
                + s.verified_signatures("200 response to MESSAGE"),
            s.signature_violations(),
            s.recent_signature_violations()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    })
    .await;
    assert!(acks >= 1, "no signed ACK for the 480 reached the server");
    assert!(answers >= 1, "no signed 200 from bob reached the server");
    assert_eq!(violations, 0, "{recent:?}");
}

/// Reads the server's state once the ACK (which has no answer to wait for)
/// has had time to arrive.
async fn wait_for_server<R: Send + 'static>(
    server: &ocs_core::driver::sim::SimHandle,
    f: impl Fn(&SimServer) -> R + Send + Clone + 'static,
) -> R {
    for _ in 0..50 {
        let g = f.clone();
        let acked = server
            .with(|s, _| s.verified_signatures("ACK") > 0)
            .await
            .unwrap_or(false);
        if acked {
            return server.with(move |s, _| g(s)).await.expect("server runs");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.with(move |s, _| f(s)).await.expect("server runs")
}
