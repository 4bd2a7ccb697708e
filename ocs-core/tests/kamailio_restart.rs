//! A registrar that restarts (issue 25, part 2): alice and bob signed in to
//! a real Kamailio (its own instance on a free port, started with
//! `ocs-core/tests/peers/kamailio/start.sh`), Kamailio killed and started
//! again on the same port a few seconds later with its registrations and
//! presence gone. Both clients must notice (TCP: the connection closes;
//! UDP: the keep-alive datagram is answered by ICMP "port unreachable"),
//! report `Disconnected`, retry with jittered back-off, sign in again and
//! report `Reconnected`, publish and watch again, and bob must then see
//! alice's state and reach her with an IM.
//!
//! Ignored by default (needs the Kamailio Debian package); `scripts/test.sh`
//! runs it. Each run prints one line `restart-recovery {...}` with the
//! figures (README "Faults").
#![cfg(feature = "tokio")]

mod common;
use common::kamailio::Kamailio;

use std::time::{Duration, Instant};

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};

/// How long Kamailio stays down.
const DOWN: Duration = Duration::from_secs(3);

/// The real clock: this test times a real outage.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

fn client(user: &str, port: u16, transport: Transport) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{user}-restart"),
    );
    let mut ep = EndpointConfig::new(reg, Some(Credentials::new(user, &format!("{user}pw"))));
    // Shorter than the outage, so a UDP client notices it (the default is
    // 15 s, and an outage shorter than that goes unseen until the
    // registration's refresh).
    ep.udp_keep_alive = Some(Duration::from_millis(500));
    let mut cfg = ClientConfig::new(ep);
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport,
    });
    cfg.allowed = vec![transport];
    cfg.connect_timeout = Duration::from_secs(2);
    Client::start(cfg).expect("client starts")
}

/// Reads events until `pred` accepts one (fails after `limit` with what
/// was seen); returns the events read, the accepted one last.
async fn until(
    c: &mut Client,
    who: &str,
    limit: Duration,
    pred: impl Fn(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(limit, async {
        while let Some(e) = c.next_event().await {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(r, Ok(true)),
        "{who}: nothing matched within {limit:?}; saw {seen:#?}"
    );
    seen
}

fn registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { .. })
    )
}

fn alice_busy(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
        if uri.contains("alice") && presence.state() == State::Busy)
}

/// Kamailio's SQLite presence store answers a SUBSCRIBE with 500 now and
/// then ("database is locked"): watch again, a few times at most.
async fn watch_until_busy(bob: &mut Client) {
    for attempt in 1..=3 {
        bob.watch("sip:alice@127.0.0.1").await.expect("watch");
        let seen = until(bob, "bob", Duration::from_secs(10), |e| {
            alice_busy(e) || matches!(e, ClientEvent::Presence(PresenceEvent::WatchEnded { .. }))
        })
        .await;
        if seen.last().is_some_and(alice_busy) {
            return;
        }
        assert!(attempt < 3, "Kamailio refused the watch three times");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn restart(transport: Transport) {
    let base = if transport == Transport::Udp {
        17060
    } else {
        17560
    };
    let k = Kamailio::start(&format!("restart-{}", transport.as_str()), base, false);
    let mut alice = client("alice", k.port, transport);
    let mut bob = client("bob", k.port, transport);
    until(&mut alice, "alice", Duration::from_secs(10), registered).await;
    until(&mut bob, "bob", Duration::from_secs(10), registered).await;
    alice
        .set_status(State::Busy, Some("in the lab"))
        .await
        .expect("publish")
        .outcome()
        .await
        .expect("published");
    watch_until_busy(&mut bob).await;

    // Kamailio goes away; both notice.
    let killed = wall_now();
    k.down();
    for (c, who) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        until(c, who, Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::Disconnected(_))
        })
        .await;
    }
    let noticed = killed.elapsed();
    tokio::time::sleep(DOWN.saturating_sub(noticed)).await;
    // Back on the same port, with empty tables.
    k.up();
    let back = wall_now();
    let mut recovery = Vec::new();
    for (c, who) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let seen = until(c, who, Duration::from_secs(30), |e| {
            matches!(e, ClientEvent::Reconnected { .. })
        })
        .await;
        let Some(ClientEvent::Reconnected { down_for, attempts }) = seen.last().cloned() else {
            unreachable!()
        };
        assert!(down_for >= DOWN - noticed, "{who}: {down_for:?}");
        recovery.push((who, down_for, attempts, back.elapsed()));
    }
    // Within the back-off: the waits start at 1 s and double (±50 %), so a
    // 3 s outage is over by the third or fourth attempt; 16 s is the
    // fourth wait's upper bound plus the sign-in.
    for (who, _, _, after_up) in &recovery {
        assert!(
            *after_up < Duration::from_secs(16),
            "{who} took {after_up:?} after Kamailio was back"
        );
    }

    // Alice's state went out again and bob's watch was renewed: he sees her
    // busy without asking again (or, should Kamailio's store refuse the
    // renewed SUBSCRIBE, after asking again).
    let seen = until(&mut bob, "bob", Duration::from_secs(15), |e| {
        alice_busy(e) || matches!(e, ClientEvent::Presence(PresenceEvent::WatchEnded { .. }))
    })
    .await;
    let resubscribed = seen.last().is_some_and(alice_busy);
    if !resubscribed {
        watch_until_busy(&mut bob).await;
    }
    let presence_after = back.elapsed();

    // Bob reaches alice.
    let id = bob
        .send_im("sip:alice@127.0.0.1", "are you back?")
        .await
        .expect("send");
    let delivered = id.outcome().await;
    assert_eq!(delivered, Ok(()), "bob's IM after the restart");
    until(&mut alice, "alice", Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::Im(ImEvent::Received { content, .. }) if content.plain_text == "are you back?")
    })
    .await;

    println!(
        "restart-recovery {{\"transport\":\"{}\",\"down_s\":{},\"noticed_ms\":{},{}\"presence_after_up_ms\":{},\"watch_renewed_by_itself\":{resubscribed}}}",
        transport.as_str(),
        DOWN.as_secs(),
        noticed.as_millis(),
        recovery
            .iter()
            .map(|(who, down, n, after)| format!(
                "\"{who}\":{{\"down_ms\":{},\"attempts\":{n},\"after_up_ms\":{}}},",
                down.as_millis(),
                after.as_millis()
            ))
            .collect::<String>(),
        presence_after.as_millis(),
    );
    for mut c in [alice, bob] {
        c.sign_out();
        until(&mut c, "sign-out", Duration::from_secs(10), |e| {
            *e == ClientEvent::Stopped
        })
        .await;
    }
    drop(k);
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh"]
async fn a_restarted_kamailio_gets_both_clients_back_over_tcp() {
    restart(Transport::Tcp).await;
}

#[tokio::test]
#[ignore = "needs Kamailio: run scripts/test.sh"]
async fn a_restarted_kamailio_gets_both_clients_back_over_udp() {
    restart(Transport::Udp).await;
}
