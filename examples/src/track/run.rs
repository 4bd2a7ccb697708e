//! The tracker's loop: signed in as one account, it watches contacts and
//! writes every presence change to the [`Store`], keeps a heartbeat, and
//! marks the stretches its connection was down.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use ocs_core::{Client, ClientEvent, PresenceEvent, RegistrationEvent};

use super::store::{Store, StoreError};
use super::{Millis, Snapshot, Transition};

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct TrackOptions {
    /// The contacts to watch (SIP URIs).
    pub watch: Vec<String>,
    /// How often the run tells the store it is alive.
    pub heartbeat: Duration,
    /// The dialect recorded with each transition (`ocs` or `standard`).
    pub source: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// The run's id in the store.
    pub run: i64,
    /// Transitions written.
    pub recorded: usize,
    /// Connection losses seen.
    pub outages: usize,
    /// Watches the server refused or ended (the person yields no data).
    pub refused: Vec<(String, String)>,
}

/// Why a run ended early.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Sign-in failed.
    #[error("sign-in failed: {0}")]
    SignIn(ocs_core::Error),
    /// The store refused a write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A watch was refused at once (not a SIP URI).
    #[error("watch {0}: {1}")]
    Watch(String, ocs_core::Error),
}

/// Signs `client` in, watches `opts.watch` and records until `stop`
/// resolves or the client stops; then ends the run and signs out.
/// `now` is the wall clock; `seen` is told about each transition written.
pub async fn run(
    client: &mut Client,
    store: &Store,
    tracker: &str,
    opts: &TrackOptions,
    stop: impl Future<Output = ()>,
    now: impl Fn() -> Millis,
    mut seen: impl FnMut(&Transition),
) -> Result<RunSummary, TrackError> {
    client.signed_in().await.map_err(TrackError::SignIn)?;
    let mut summary = RunSummary {
        run: store.start_run(tracker, now())?,
        ..RunSummary::default()
    };
    let run = summary.run;
    for uri in &opts.watch {
        client
            .watch(uri)
            .await
            .map_err(|e| TrackError::Watch(uri.clone(), e))?;
    }
    let mut last: HashMap<String, Snapshot> = HashMap::new();
    let mut down = false;
    let mut beat = tokio::time::interval(opts.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            e = client.next_event() => {
                let Some(e) = e else { break };
                match e {
                    ClientEvent::Presence(PresenceEvent::Changed { uri, presence }) if !down => {
                        let to = Snapshot {
                            state: presence.state().as_str().to_owned(),
                            availability: presence.availability.map(|a| a.0),
                            activity: presence.activity.as_deref().map(str::to_owned),
                            custom: presence.any_custom_text(1033).map(str::to_owned),
                            note: presence.note.as_ref().map(|n| n.text.to_string()),
                        };
                        if last.get(&uri) == Some(&to) {
                            continue;
                        }
                        let t = Transition {
                            who: uri.clone(),
                            at: now(),
                            from: last.get(&uri).map(|s| s.state.clone()),
                            to: to.clone(),
                            source: opts.source.clone(),
                        };
                        store.record(run, &t)?;
                        summary.recorded += 1;
                        seen(&t);
                        last.insert(uri, to);
                    }
                    ClientEvent::Presence(PresenceEvent::WatchEnded { uri, reason }) => {
                        summary.refused.push((uri, reason));
                    }
                    ClientEvent::Disconnected(_) if !down => {
                        down = true;
                        summary.outages += 1;
                        store.outage_start(run, now())?;
                    }
                    ClientEvent::Registration(RegistrationEvent::Registered { refresh: false, .. })
                        if down =>
                    {
                        down = false;
                        store.outage_end(run, now())?;
                        // The watches start over: the first notification
                        // after the gap is recorded whatever it says.
                        last.clear();
                    }
                    ClientEvent::Stopped => break,
                    _ => {}
                }
            }
            _ = beat.tick() => store.heartbeat(run, now())?,
            _ = &mut stop => break,
        }
    }
    store.end_run(run, now())?;
    client.sign_out();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = client.next_event().await {
            if e == ClientEvent::Stopped {
                break;
            }
        }
    })
    .await;
    Ok(summary)
}
