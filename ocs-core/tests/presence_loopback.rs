//! OCS-dialect presence between two clients of the embedded server over
//! loopback: roaming-self versions, SERVICE publications, a batched
//! category subscription with its piggy-backed first notification and
//! BENOTIFY updates, all MS-SIPAE signed.
#![cfg(feature = "tokio")]

mod common;
use common::client::{sim_client_config, wait_for};

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ocs_core::discovery::Dialect;
use ocs_core::driver::sim::serve;
use ocs_core::driver::{Client, ClientEvent};
use ocs_core::error::{Error, Provenance};
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::RegistrationEvent;
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

fn client(user: &str, epid: &str, port: u16, appear_offline: bool) -> Client {
    let mut cfg = sim_client_config(user, epid, port, Dialect::Ocs);
    if appear_offline {
        cfg.presence.appear_offline = Ok(Provenance {
            source: "HKCU".into(),
            from: Some("test.reg:3".into()),
        });
    }
    Client::start(cfg).expect("client")
}

/// The embedded server with alice and bob, both signed in (NTLM over TCP).
/// `seed` varies the server's randomness between tests.
async fn signed_in_pair(
    seed: u64,
    alice_epid: &str,
    bob_epid: &str,
    alice_may_appear_offline: bool,
) -> (ocs_core::driver::sim::SimHandle, Client, Client) {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(seed),
        [seed as u8; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    r.add_user("bob", "CONTOSO", "bobpw");
    let server = serve(
        SimServer::new(r, Rng::from_seed(seed + 1)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        None,
    )
    .await
    .expect("serve");
    let mut alice = client(
        "alice",
        alice_epid,
        server.tcp.port(),
        alice_may_appear_offline,
    );
    let mut bob = client("bob", bob_epid, server.tcp.port(), false);
    let registered = |e: &ClientEvent| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { .. })
        )
    };
    wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;
    (server, alice, bob)
}

fn alice_is(state: State) -> impl Fn(&ClientEvent) -> bool {
    move |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == "sip:alice@contoso.com" && presence.state() == state)
    }
}

#[tokio::test]
async fn bob_sees_alice_publish_busy_with_a_note_and_appear_offline() {
    let (_server, mut alice, mut bob) = signed_in_pair(31, "a1a1a1a1a1", "b2b2b2b2b2", true).await;

    alice
        .set_status(State::Online, None)
        .await
        .expect("publish");
    wait_for(&mut alice, "publication", |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Published { .. }))
    })
    .await;
    // The first notification rides in the 200 OK of the batched SUBSCRIBE.
    bob.watch("sip:alice@contoso.com").await.expect("watch");
    wait_for(&mut bob, "alice online", alice_is(State::Online)).await;

    alice
        .set_status(State::Busy, Some("In the lab today"))
        .await
        .expect("publish");
    let seen = wait_for(&mut bob, "alice busy (BENOTIFY)", alice_is(State::Busy)).await;
    let note = seen.iter().rev().find_map(|e| match e {
        ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) => {
            presence.note.as_ref().map(|n| n.text.to_string())
        }
        _ => None,
    });
    assert_eq!(note.as_deref(), Some("In the lab today"));

    // Appear offline: allowed for alice by policy, so bob sees her offline.
    alice
        .set_status(State::Offline, None)
        .await
        .expect("appear offline allowed");
    wait_for(&mut bob, "alice offline", alice_is(State::Offline)).await;
    // Bob's policy does not allow it.
    match bob.set_status(State::Offline, None).await {
        Err(Error::PolicyDenied { policy, provenance }) => {
            assert_eq!(policy, "EnableAppearOffline");
            assert_eq!(provenance.source, "default");
        }
        other => panic!("{other:?}"),
    }
    for mut c in [alice, bob] {
        c.sign_out();
        wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    }
}

#[tokio::test]
async fn a_publication_after_the_watch_is_notified() {
    let (_server, mut alice, bob) = signed_in_pair(41, "a3a3a3a3a3", "b4b4b4b4b4", false).await;
    alice.watch("sip:bob@contoso.com").await.expect("watch");
    bob.watch("sip:alice@contoso.com").await.expect("watch");
    wait_for(&mut alice, "bob's first state", |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, .. }) if uri == "sip:bob@contoso.com")
    })
    .await;
    bob.set_status(State::Online, None).await.expect("publish");
    wait_for(&mut alice, "bob online", |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == "sip:bob@contoso.com" && presence.state() == State::Online)
    })
    .await;
}

#[tokio::test]
async fn idle_times_move_the_machine_state_and_the_watcher_sees_it() {
    let (_server, mut alice, mut bob) = signed_in_pair(51, "a5a5a5a5a5", "b6b6b6b6b6", false).await;
    // No manual state: what bob sees is alice's machine state, published
    // at sign-in as active.
    bob.watch("sip:alice@contoso.com").await.expect("watch");
    wait_for(&mut bob, "alice active", alice_is(State::Online)).await;
    alice
        .set_idle(Duration::from_secs(6 * 60))
        .await
        .expect("idle");
    wait_for(&mut bob, "alice inactive", alice_is(State::Inactive)).await;
    alice
        .set_idle(Duration::from_secs(25 * 60))
        .await
        .expect("idle");
    wait_for(&mut bob, "alice away", alice_is(State::Away)).await;
    alice.set_idle(Duration::ZERO).await.expect("idle");
    wait_for(&mut bob, "alice back", alice_is(State::Online)).await;
    // A manual busy overrides the machine state.
    // The command's outcome, awaited instead of read from the events.
    let busy = alice.set_status(State::Busy, None).await.expect("publish");
    assert_eq!(busy.outcome().await, Ok(State::Busy));
    wait_for(&mut bob, "alice busy", alice_is(State::Busy)).await;
    // Reset status: the manual state is deleted and the machine state shows.
    let reset = alice.reset_status().await.expect("reset").id;
    wait_for(&mut alice, "reset accepted", |e| {
        matches!(
            e,
            ClientEvent::Presence(PresenceEvent::Published {
                id: Some(id),
                state: State::Online,
            }) if *id == reset
        )
    })
    .await;
    wait_for(
        &mut bob,
        "alice back to her machine state",
        alice_is(State::Online),
    )
    .await;
}

#[tokio::test]
async fn sign_in_publishes_this_endpoints_device() {
    use ocs_core::presence::publish::{device_instance, epid_instance};
    let (srv, a, b) = signed_in_pair(93, "a1a1a1a1a1", "b2b2b2b2b2", false).await;
    let instance = device_instance(epid_instance("a1a1a1a1a1").expect("hex epid"));
    let mut version = 0;
    // It goes out once roaming-self has told us the versions.
    for _ in 0..200 {
        version = srv
            .with(move |s, _| {
                s.presence()
                    .version("sip:alice@contoso.com", "device", instance, 2)
            })
            .await
            .expect("server");
        if version > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(version, 1, "the device publication reached the server");
    a.sign_out();
    b.sign_out();
}
