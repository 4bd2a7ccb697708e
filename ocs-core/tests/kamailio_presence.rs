//! Standard-dialect presence against Kamailio's presence module: alice
//! publishes PIDF + RPID, bob watches her, and states and notes arrive.
//! Run by scripts/test.sh with Kamailio started (OCS_KAMAILIO_PORT).
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TraceConfig};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::{Credentials, RegisterConfig};

fn port() -> u16 {
    std::env::var("OCS_KAMAILIO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("OCS_KAMAILIO_PORT is not set: start Kamailio with scripts/kamailio.sh start")
}

fn client(user: &str, transport: Transport) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{:010x}", user.len() * 77),
    );
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new(user, &format!("{user}pw"))),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port()),
        transport,
    });
    cfg.trace = std::env::var_os("OCS_SIP_TRACE")
        .map(|d| TraceConfig::text(std::path::PathBuf::from(d).join(format!("{user}.trace"))));
    Client::start(cfg).expect("client")
}

async fn publish_and_watch(transport: Transport) {
    let mut alice = client("alice", transport);
    let mut bob = client("bob", transport);
    wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;
    alice
        .set_status(State::Busy, Some("in the lab"))
        .await
        .expect("publish");
    wait_for(&mut alice, "publication accepted", |e| {
        matches!(
            e,
            ClientEvent::Presence(PresenceEvent::Published {
                state: State::Busy,
                ..
            })
        )
    })
    .await;
    // Kamailio's SQLite back end sometimes answers a SUBSCRIBE with 500
    // ("database is locked" while its presence timer writes): watch again,
    // a few times at most. The client reports each failure as WatchEnded.
    let mut seen = Vec::new();
    for attempt in 1..=3 {
        bob.watch("sip:alice@127.0.0.1").await.expect("watch");
        seen = wait_for(&mut bob, "alice busy", |e| {
            matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. })
                if presence.state() == State::Busy)
                || matches!(e, ClientEvent::Presence(PresenceEvent::WatchEnded { reason, .. }) if reason.starts_with("500"))
        })
        .await;
        if !matches!(
            seen.last(),
            Some(ClientEvent::Presence(PresenceEvent::WatchEnded { .. }))
        ) {
            break;
        }
        assert!(
            attempt < 3,
            "Kamailio refused the watch three times: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let note = seen.iter().find_map(|e| match e {
        ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) => {
            presence.note.as_ref().map(|n| n.text.to_string())
        }
        _ => None,
    });
    assert_eq!(note.as_deref(), Some("in the lab"));
    // A change reaches the watcher (modify with SIP-If-Match).
    alice
        .set_status(State::Online, None)
        .await
        .expect("publish");
    wait_for(&mut bob, "alice online", |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. })
            if presence.state() == State::Online)
    })
    .await;
    for mut c in [alice, bob] {
        c.sign_out();
        wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
    }
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn publish_and_watch_over_udp() {
    publish_and_watch(Transport::Udp).await;
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh or scripts/kamailio.sh"]
async fn publish_and_watch_over_tcp() {
    publish_and_watch(Transport::Tcp).await;
}
