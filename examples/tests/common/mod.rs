//! What the tracker tests share: the client configuration for the
//! embedded server, a tracker run driven until enough transitions arrive,
//! and the store round trip both databases must pass.
#![allow(dead_code)] // each test file uses part of it

use std::time::Duration;

use ocs_core::{Client, ClientConfig, Transport};
use ocs_examples::track::run::{RunSummary, TrackOptions, run};
use ocs_examples::track::store::Store;
use ocs_examples::track::{Millis, Snapshot, Span, Transition, wall_clock};

/// `user` (password `{user}pw`, NTLM domain CONTOSO) at the embedded
/// server `server`.
pub fn config(server: &str, user: &str) -> ClientConfig {
    ClientConfig::builder(&format!("sip:{user}@contoso.com"))
        .credentials(&format!("CONTOSO\\{user}"), &format!("{user}pw"))
        .server(server, Transport::Tcp)
        .build()
        .expect("config")
}

/// The options of a tracker watching bob at contoso.com.
pub fn watching_bob() -> TrackOptions {
    TrackOptions {
        watch: vec!["sip:bob@contoso.com".into()],
        group: None,
        heartbeat: Duration::from_millis(200),
        source: "ocs".into(),
    }
}

/// Runs the tracker `lead` with `opts` into `store` while `act` runs, until
/// `enough` says the transitions seen so far suffice (or 10 s pass without
/// one); the last state then lasts a moment before the run ends.
pub async fn track_until(
    lead: &mut Client,
    store: &Store,
    opts: &TrackOptions,
    act: impl std::future::Future<Output = ()>,
    enough: impl Fn(&[Transition]) -> bool,
) -> (RunSummary, Vec<Transition>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    let tracker = run(
        lead,
        store,
        "sip:lead@contoso.com",
        opts,
        stop,
        wall_clock,
        |t| {
            let _ = tx.send(t.clone());
        },
    );
    let watcher = async {
        act.await;
        let mut got = Vec::new();
        while !enough(&got) {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(t)) => got.push(t),
                _ => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = stop_tx.send(());
        got
    };
    let (summary, got) = tokio::join!(tracker, watcher);
    let summary = summary.expect("the run ends cleanly");
    assert_eq!(summary.recorded, got.len(), "{got:?}");
    (summary, got)
}

fn busy(who: &str, at: Millis) -> Transition {
    Transition {
        who: who.into(),
        at,
        from: Some("online".into()),
        to: Snapshot {
            state: "busy".into(),
            availability: Some(6500),
            activity: None,
            custom: None,
            note: Some("budget".into()),
        },
        source: "ocs".into(),
    }
}

/// Runs, outages and transitions come back as recorded from the store at
/// `spec` (an empty database), a repeat is no duplicate, reopening
/// migrates nothing twice, and a purge removes what is old.
pub fn store_round_trip(spec: &str) {
    let s = Store::open(spec).expect("open");
    assert_eq!(s.schema_version().expect("version"), 1);
    let run = s.start_run("sip:lead@x", 1_000).expect("run");
    s.record(run, &busy("sip:bob@x", 2_000)).expect("record");
    s.record(run, &busy("sip:bob@x", 2_000))
        .expect("a repeat is ignored");
    // Another change in the same millisecond is kept, just after it.
    let mut away = busy("sip:bob@x", 2_000);
    away.from = Some("busy".into());
    away.to.state = "away".into();
    assert_eq!(s.record(run, &away).expect("kept"), 2_001);
    away.at = 2_001;
    s.outage_start(run, 3_000).expect("outage");
    s.outage_start(run, 3_500).expect("still the same outage");
    s.outage_end(run, 4_000).expect("back");
    s.heartbeat(run, 6_000).expect("heartbeat");
    s.heartbeat(run, 5_000)
        .expect("an older heartbeat changes nothing");
    // Not ended: it counts until the last heartbeat.
    let span = |from, to| Span { from, to };
    assert_eq!(
        s.spans(0, 10_000).expect("spans"),
        vec![span(1_000, 3_000), span(4_000, 6_000)]
    );
    s.end_run(run, 8_000).expect("end");
    assert_eq!(s.spans(0, 10_000).expect("spans")[1].to, 8_000);
    assert_eq!(
        s.transitions(0, 10_000, None).expect("transitions"),
        vec![busy("sip:bob@x", 2_000), away]
    );
    assert!(
        s.transitions(0, 10_000, Some("sip:carol@x"))
            .expect("none")
            .is_empty()
    );
    assert_eq!(s.people().expect("people"), vec!["sip:bob@x".to_owned()]);
    drop(s);
    let again = Store::open(spec).expect("reopen");
    assert_eq!(again.schema_version().expect("version"), 1);
    assert_eq!(again.transitions(0, 10_000, None).expect("kept").len(), 2);
    assert_eq!(again.purge(5_000).expect("purge"), 2);
    assert!(again.transitions(0, 10_000, None).expect("gone").is_empty());
}
