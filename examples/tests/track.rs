//! `ocs_examples::track` against the embedded OCS server: a tracker signs
//! in, watches bob and records his changes in SQLite; a second run after a
//! restart records again; the report covers the day without guessing
//! across the gap.

use std::time::Duration;

use ocs_core::{Client, ClientConfig, State, Transport, start_test_server};
use ocs_examples::track::report::{self, UNKNOWN};
use ocs_examples::track::run::{TrackOptions, run};
use ocs_examples::track::store::Store;
use ocs_examples::track::{Millis, Transition, day_start, wall_clock as wall};

mod common;
use common::{config, track_until, watching_bob};

/// Runs a tracker until `n` transitions are recorded while `act` changes
/// bob's presence; returns what it recorded.
async fn track_while(
    server: &str,
    store: &Store,
    n: usize,
    act: impl std::future::Future<Output = ()>,
) -> Vec<Transition> {
    let mut lead = Client::start(config(server, "lead")).expect("lead");
    track_until(&mut lead, store, &watching_bob(), act, |got| got.len() >= n)
        .await
        .1
}

#[test]
fn the_sqlite_store_keeps_what_it_is_given() {
    let path = std::env::temp_dir().join(format!("ocs-track-store-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    common::store_round_trip(&format!("sqlite:{}", path.display()));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_tracker_records_changes_and_a_restart_leaves_an_honest_gap() {
    let sim = start_test_server("contoso.com", &[("lead", "leadpw"), ("bob", "bobpw")])
        .await
        .expect("server");
    let server = sim.tcp.to_string();
    let dir = std::env::temp_dir().join(format!("ocs-track-it-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let store = Store::open(&format!("sqlite:{}", dir.display())).expect("store");

    let mut bob = Client::start(config(&server, "bob")).expect("bob");
    bob.signed_in().await.expect("bob signs in");
    let b = bob.handle();
    let act = async move {
        for s in [State::Busy, State::Away] {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let asked = b.set_status(s, Some("tracked")).await.expect("asked");
            asked.outcome().await.expect("published");
        }
    };
    // Bob's presence at the start (online), busy, away.
    let first = track_while(&server, &store, 3, act).await;
    let states: Vec<&str> = first.iter().map(|t| t.to.state.as_str()).collect();
    assert_eq!(states, ["online", "busy", "away"], "{first:?}");
    assert_eq!(first[1].from.as_deref(), Some("online"));
    assert_eq!(first[2].to.note.as_deref(), Some("tracked"));

    // The tracker is off for a while; bob changes meanwhile; the next run
    // records what it finds, as a fresh start.
    let b = bob.handle();
    b.set_status(State::DoNotDisturb, None)
        .await
        .expect("asked")
        .outcome()
        .await
        .expect("published");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = track_while(&server, &store, 1, async {}).await;
    assert_eq!(second[0].to.state, "do-not-disturb");
    assert_eq!(second[0].from, None, "a new run knows no state before it");

    // The report: two spans, a gap between them, every millisecond of the
    // day accounted for.
    // The days the test ran on (two when it crossed midnight).
    let midnight = |at: Millis| {
        let (y, m, d) = ocs_examples::track::civil_day(at);
        day_start(y, m, d)
    };
    let (day, end) = (midnight(first[0].at), midnight(wall()) + 86_400_000);
    let spans = store.spans(day, end).expect("spans");
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(spans[0].to < spans[1].from, "a gap between the runs");
    let rows = report::days(
        &store.transitions(day, end, None).expect("read"),
        &spans,
        &[],
        day,
        end,
    );
    let bob_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.who == "sip:bob@contoso.com")
        .collect();
    assert!(!bob_rows.is_empty());
    for r in &bob_rows {
        assert_eq!(r.accounted(), 86_400_000, "{r:?}");
    }
    let totals = |label: &str| -> Millis {
        bob_rows
            .iter()
            .map(|r| r.totals.get(label).copied().unwrap_or(0))
            .sum()
    };
    assert!(totals("busy") >= 200, "busy for about 300 ms");
    assert!(totals("away") > 0);
    assert!(totals("do-not-disturb") > 0);
    assert!(
        totals(UNKNOWN) < 2_000,
        "unknown only until the first notification"
    );
    let covered: Millis = spans.iter().map(|s| s.to - s.from).sum();
    let offline: Millis = bob_rows.iter().map(|r| r.tracker_offline).sum();
    assert_eq!(offline, 86_400_000 * bob_rows.len() as i64 - covered);

    bob.sign_out();
    let _ = std::fs::remove_file(&dir);
}

/// The standard dialect: the tracker (alice) watches bob through
/// Kamailio's presence server. Run by scripts/test.sh with Kamailio
/// started (OCS_KAMAILIO_PORT); by hand: `cargo test -p ocs-examples
/// --test track -- --ignored`.
#[tokio::test]
#[ignore = "needs Kamailio (scripts/test.sh starts it)"]
async fn a_tracker_records_changes_through_kamailio_in_the_standard_dialect() {
    let port: u16 = std::env::var("OCS_KAMAILIO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("OCS_KAMAILIO_PORT is not set: start Kamailio with scripts/kamailio.sh start");
    let server = format!("127.0.0.1:{port}");
    let config = |user: &str| {
        ClientConfig::builder(&format!("sip:{user}@127.0.0.1"))
            .credentials(user, &format!("{user}pw"))
            .dialect(ocs_core::Dialect::Standard)
            .server(&server, Transport::Tcp)
            .build()
            .expect("config")
    };
    let dir = std::env::temp_dir().join(format!("ocs-track-kam-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let store = Store::open(&format!("sqlite:{}", dir.display())).expect("store");

    let mut bob = Client::start(config("bob")).expect("bob");
    bob.signed_in().await.expect("bob signs in");
    let b = bob.handle();
    let mut alice = Client::start(config("alice")).expect("alice");
    let opts = TrackOptions {
        watch: vec!["sip:bob@127.0.0.1".into()],
        group: None,
        heartbeat: Duration::from_secs(1),
        source: "standard".into(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Transition>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tracker = run(
        &mut alice,
        &store,
        "sip:alice@127.0.0.1",
        &opts,
        async move {
            let _ = stop_rx.await;
        },
        wall,
        |t| {
            let _ = tx.send(t.clone());
        },
    );
    let script = async move {
        // Kamailio notifies on a 5 s timer: give each state time to arrive.
        let mut seen = Vec::new();
        for s in [State::Busy, State::Away] {
            b.set_status(s, Some("tracked"))
                .await
                .expect("asked")
                .outcome()
                .await
                .expect("published");
            let want = s.as_str();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while !seen.iter().any(|t: &Transition| t.to.state == want) {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(t)) => seen.push(t),
                    _ => panic!("the tracker did not see {want}: {seen:?}"),
                }
            }
        }
        let _ = stop_tx.send(());
        seen
    };
    let (summary, seen) = tokio::join!(tracker, script);
    let summary = summary.expect("the run ends cleanly");
    assert_eq!(summary.recorded, seen.len());
    let stored = store.transitions(0, i64::MAX, None).expect("read");
    assert!(stored.iter().all(|t| t.source == "standard"));
    let states: Vec<&str> = stored.iter().map(|t| t.to.state.as_str()).collect();
    let busy = states
        .iter()
        .position(|s| *s == "busy")
        .expect("busy stored");
    let away = states
        .iter()
        .position(|s| *s == "away")
        .expect("away stored");
    assert!(busy < away, "{states:?}");
    bob.sign_out();
    let _ = std::fs::remove_file(&dir);
}

#[tokio::test]
async fn a_tracker_watches_a_contact_list_group_and_names_a_missing_one() {
    let sim = start_test_server(
        "contoso.com",
        &[
            ("lead", "leadpw"),
            ("bob", "bobpw"),
            ("carol", "carolpw"),
            ("dave", "davepw"),
        ],
    )
    .await
    .expect("server");
    sim.with(|s, _| {
        s.set_contacts(
            "sip:lead@contoso.com",
            &[
                ("sip:bob@contoso.com", "Bob", "Team"),
                ("sip:carol@contoso.com", "Carol", "Team"),
                ("sip:dave@contoso.com", "Dave", "Other"),
            ],
        )
    })
    .await
    .expect("contacts");
    let server = sim.tcp.to_string();
    let dir = std::env::temp_dir().join(format!("ocs-track-group-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let store = Store::open(&format!("sqlite:{}", dir.display())).expect("store");

    // A group the list does not have: a clear error naming the ones it has.
    let mut lead = Client::start(config(&server, "lead")).expect("lead");
    let opts = |group: &str| TrackOptions {
        watch: Vec::new(),
        group: Some(group.into()),
        heartbeat: Duration::from_millis(200),
        source: "ocs".into(),
    };
    let missing = run(
        &mut lead,
        &store,
        "sip:lead@contoso.com",
        &opts("Family"),
        std::future::pending::<()>(),
        wall,
        |_| {},
    )
    .await
    .expect_err("no such group");
    let text = missing.to_string();
    assert!(
        text.contains("Family") && text.contains("Team") && text.contains("Other"),
        "{text}"
    );
    lead.sign_out();

    // "team" (any case): bob and carol are watched, dave is not.
    let mut lead = Client::start(config(&server, "lead")).expect("lead");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Transition>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let team = opts("team");
    let tracker = run(
        &mut lead,
        &store,
        "sip:lead@contoso.com",
        &team,
        async move {
            let _ = stop_rx.await;
        },
        wall,
        |t| {
            let _ = tx.send(t.clone());
        },
    );
    let watcher = async move {
        let mut who = std::collections::BTreeSet::new();
        while who.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(t)) => {
                    who.insert(t.who);
                }
                _ => break,
            }
        }
        // Long enough for a notification about dave to arrive, were he
        // watched.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Ok(t) = rx.try_recv() {
            who.insert(t.who);
        }
        let _ = stop_tx.send(());
        who
    };
    let (summary, who) = tokio::join!(tracker, watcher);
    summary.expect("clean end");
    assert_eq!(
        who.into_iter().collect::<Vec<_>>(),
        ["sip:bob@contoso.com", "sip:carol@contoso.com"]
    );
    let _ = std::fs::remove_file(&dir);
}
