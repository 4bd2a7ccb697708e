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
    /// The contacts to watch (SIP URIs). With neither these nor `group`,
    /// the tracker watches itself.
    pub watch: Vec<String>,
    /// Also watch every contact of this group of the server-stored contact
    /// list (OCS; the name compared without regard to case).
    pub group: Option<String>,
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
    /// The contact-list group to watch is not there.
    #[error("{0}")]
    Group(String),
}

/// The contacts of `group` in the server-stored contact list, once the
/// server has sent it (within 10 s of sign-in).
async fn group_members(client: &mut Client, group: &str) -> Result<Vec<String>, TrackError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        if let Some(l) = client
            .contact_list()
            .await
            .map_err(|e| TrackError::Group(format!("--group {group}: {e}")))?
        {
            break l;
        }
        // The list arrives after sign-in; events meanwhile are not part
        // of the run yet.
        match tokio::time::timeout_at(deadline, client.next_event()).await {
            Ok(Some(_)) => {}
            _ => {
                return Err(TrackError::Group(format!(
                    "--group {group}: the server sent no contact list (the standard dialect has none)"
                )));
            }
        }
    };
    let Some(g) = list
        .groups
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(group))
    else {
        let names: Vec<&str> = list.groups.iter().map(|g| &*g.name).collect();
        return Err(TrackError::Group(format!(
            "--group {group}: no such group in the contact list (it has: {})",
            names.join(", ")
        )));
    };
    Ok(list
        .contacts
        .iter()
        .filter(|c| c.groups.contains(&g.id))
        .map(|c| c.uri.to_string())
        .collect())
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
    let mut watch = opts.watch.clone();
    if let Some(g) = &opts.group {
        watch.extend(group_members(client, g).await?);
    }
    if watch.is_empty() && opts.group.is_none() {
        watch.push(tracker.to_owned());
    }
    watch.sort();
    watch.dedup();
    for uri in &watch {
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
                        let mut t = Transition {
                            who: uri.clone(),
                            at: now(),
                            from: last.get(&uri).map(|s| s.state.clone()),
                            to: to.clone(),
                            source: opts.source.clone(),
                        };
                        // Two changes in one millisecond (a sign-in's state
                        // and the next, read together) are both kept, the
                        // second a millisecond later: say where it went.
                        t.at = store.record(run, &t)?;
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
