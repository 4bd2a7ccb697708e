//! `ocs track` on PostgreSQL, the store several trackers share: the
//! schema migrates once even when trackers start together, two trackers
//! writing at once lose nothing and duplicate nothing, and a tracker run
//! against the embedded server records there as it does in SQLite.
//!
//! Run by scripts/test.sh with a throw-away PostgreSQL
//! (scripts/postgres.sh start; OCS_POSTGRES_URL); by hand: `cargo test -p
//! ocs-examples --test track_postgres -- --ignored`.

use std::time::Duration;

use ocs_core::{Client, State, start_test_server};
use ocs_examples::track::store::Store;

mod common;
use common::{config, track_until, watching_bob};
use ocs_examples::track::{Millis, Snapshot, Transition};

/// A fresh database on the test server; its URL.
fn fresh_database(name: &str) -> String {
    let base = std::env::var("OCS_POSTGRES_URL")
        .expect("OCS_POSTGRES_URL is not set: start PostgreSQL with scripts/postgres.sh start");
    let db = format!("ocs_track_{name}_{}", std::process::id());
    // On a thread of its own: the postgres client runs its own runtime,
    // which must not start inside a test's.
    let (b, d) = (base.clone(), db.clone());
    std::thread::spawn(move || {
        let mut admin = postgres::Client::connect(&b, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {d}"))
            .expect("drop database");
        admin
            .batch_execute(&format!("CREATE DATABASE {d}"))
            .expect("create database");
    })
    .join()
    .expect("admin thread");
    let (head, _) = base.rsplit_once('/').expect("a URL with a database");
    format!("{head}/{db}")
}

fn change(who: &str, at: Millis, state: &str) -> Transition {
    Transition {
        who: who.into(),
        at,
        from: None,
        to: Snapshot {
            state: state.into(),
            availability: Some(3500),
            activity: None,
            custom: None,
            note: Some("n".into()),
        },
        source: "ocs".into(),
    }
}

#[test]
#[ignore = "needs PostgreSQL (scripts/test.sh starts one)"]
fn the_store_keeps_runs_outages_and_transitions() {
    common::store_round_trip(&fresh_database("roundtrip"));
}

#[test]
#[ignore = "needs PostgreSQL (scripts/test.sh starts one)"]
fn two_trackers_writing_at_once_lose_and_duplicate_nothing() {
    let url = fresh_database("shared");
    const N: i64 = 300;
    // Both open (and migrate) at the same moment, then write at once.
    let writers: Vec<_> = (0..2)
        .map(|k| {
            let url = url.clone();
            std::thread::spawn(move || {
                let s = Store::open(&url).expect("open");
                let run = s.start_run(&format!("sip:lead{k}@x"), 0).expect("run");
                for i in 0..N {
                    let t = change(&format!("sip:p{}@x", i % 7), i * 10 + k, "busy");
                    s.record(run, &t).expect("record");
                    // A retry after a lost answer writes nothing new.
                    if i % 50 == 0 {
                        s.record(run, &t).expect("again");
                    }
                }
                s.end_run(run, N * 10).expect("end");
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let s = Store::open(&url).expect("open");
    assert_eq!(s.schema_version().expect("migrated once"), 1);
    let all = s.transitions(0, i64::MAX, None).expect("read");
    assert_eq!(all.len() as i64, 2 * N, "no row lost, none twice");
    assert_eq!(s.spans(0, i64::MAX).expect("spans").len(), 2);
    assert_eq!(s.people().expect("people").len(), 7);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/test.sh starts one)"]
async fn a_tracker_records_in_postgres() {
    let url = fresh_database("tracker");
    let sim = start_test_server("contoso.com", &[("lead", "leadpw"), ("bob", "bobpw")])
        .await
        .expect("server");
    let server = sim.tcp.to_string();
    let store = Store::open(&url).expect("store");
    let mut bob = Client::start(config(&server, "bob")).expect("bob");
    bob.signed_in().await.expect("bob signs in");
    let b = bob.handle();
    let mut lead = Client::start(config(&server, "lead")).expect("lead");
    let busy = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.set_status(State::Busy, None)
            .await
            .expect("asked")
            .outcome()
            .await
            .expect("published");
    };
    track_until(&mut lead, &store, &watching_bob(), busy, |seen| {
        seen.iter().any(|t| t.to.state == "busy")
    })
    .await;
    let stored: Vec<String> = store
        .transitions(0, i64::MAX, None)
        .expect("read")
        .into_iter()
        .map(|t| t.to.state)
        .collect();
    assert_eq!(stored, ["online", "busy"]);
    bob.sign_out();
}
