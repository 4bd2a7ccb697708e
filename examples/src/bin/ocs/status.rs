//! `ocs status set` and `ocs watch`: live presence.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ocs_core::driver::{
    Client, ClientEvent, CustomStatesError, FetchLimits, fetch_custom_states_bytes,
};
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_examples::{CliError, emit};
use serde_json::json;

use crate::presence::presence_json;
use crate::signin::{SignIn, event_json, sign_out, signed_in};

/// Options of `ocs status set`.
#[derive(Debug, Args)]
pub(crate) struct StatusSet {
    #[command(flatten)]
    sign_in: SignIn,
    /// online, busy, do-not-disturb, be-right-back, away, offline (appear
    /// offline, needs EnableAppearOffline), or custom:ID from --custom-states
    /// or the CustomStateURL policy.
    state: String,
    /// A personal note.
    #[arg(long)]
    note: Option<String>,
    /// The customStates XML file for custom:ID (default: the CustomStateURL
    /// policy from --policy, fetched with the client's rules and TLS
    /// settings).
    #[arg(long)]
    custom_states: Option<PathBuf>,
    /// Language of the custom text.
    #[arg(long, default_value_t = 1033)]
    lcid: u32,
    /// Hold the state this many seconds, then sign out.
    #[arg(long = "for", default_value_t = 5)]
    hold: u64,
    /// Also report a call in progress ("on the phone" while signed in).
    #[arg(long)]
    in_call: bool,
    /// Also report a meeting with this subject, started now ("in a
    /// meeting" while signed in), as a calendar add-in would.
    #[arg(long, value_name = "SUBJECT")]
    in_meeting: Option<String>,
}

/// Options of `ocs watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    sign_in: SignIn,
    /// Contacts to watch.
    #[arg(required = true)]
    uris: Vec<String>,
    /// Watch this many seconds, then sign out (default: until Ctrl-C).
    #[arg(long = "for")]
    hold: Option<u64>,
}

fn print(e: &ClientEvent, lcid: u32) -> Result<(), CliError> {
    match e {
        ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) => {
            emit(presence_json(presence, lcid))
        }
        ClientEvent::Presence(PresenceEvent::Published { id, state }) => {
            emit(json!({"event": "published", "id": id.map(|i| i.0), "state": state.as_str()}))
        }
        ClientEvent::Presence(PresenceEvent::PublishFailed { id, error }) => emit(
            json!({"event": "publish_failed", "id": id.map(|i| i.0), "error": error.to_string()}),
        ),
        ClientEvent::Presence(PresenceEvent::WatchEnded { uri, reason }) => {
            emit(json!({"event": "watch_ended", "uri": uri, "reason": reason}))
        }
        ClientEvent::Presence(_) | ClientEvent::Im(_) => Ok(()),
        other => emit(event_json(other)),
    }
}

async fn run_for(c: &mut Client, hold: Option<u64>, lcid: u32) -> Result<(), CliError> {
    let until = async {
        match hold {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(until);
    loop {
        tokio::select! {
            e = c.next_event() => match e {
                Some(e) => print(&e, lcid)?,
                None => return Err(CliError::Failed("client ended".into())),
            },
            _ = &mut until => break,
        }
    }
    sign_out(c, |e| print(e, lcid)).await
}

pub(crate) async fn set(a: StatusSet) -> Result<(), CliError> {
    let mut cfg = a.sign_in.client_config()?;
    // Custom states resolve before signing in: a bad file is a usage error.
    let custom = match a.state.strip_prefix("custom:") {
        Some(id) => {
            let id: u32 = id
                .parse()
                .map_err(|_| CliError::Failed(format!("{}: custom:ID needs a number", a.state)))?;
            let (bytes, source) = match &a.custom_states {
                Some(path) => (
                    std::fs::read(path)
                        .map_err(|e| CliError::Usage(format!("reading {}: {e}", path.display())))?,
                    path.display().to_string(),
                ),
                None => {
                    let url = cfg.custom_state_url.take().ok_or_else(|| {
                        CliError::Failed(
                            "custom:ID needs --custom-states FILE or a CustomStateURL policy (--policy)"
                                .into(),
                        )
                    })?;
                    // Fetched here, so the client need not load it again.
                    let http = ocs_core::driver::http::builtin(&cfg.tls)
                        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
                    let bytes = fetch_custom_states_bytes(
                        &url,
                        cfg.custom_state_client,
                        cfg.high_security,
                        &*http,
                        FetchLimits::default(),
                    )
                    .await
                    .map_err(|e| match e {
                        CustomStatesError::UrlNotAllowed(v) => CliError::Failed(v.to_string()),
                        other => CliError::Usage(other.to_string()),
                    })?;
                    (bytes, url)
                }
            };
            let loaded = ocs_core::customstates::load(&bytes);
            for w in &loaded.warnings {
                eprintln!("warning: {source}: {w}");
            }
            let st = loaded
                .states
                .states
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| CliError::Failed(format!("no custom state {id} in {source}")))?;
            Some((
                st.availability.availability(),
                st.text(a.lcid).map(str::to_owned),
            ))
        }
        None => None,
    };
    let state = match &custom {
        Some(_) => None,
        None => Some(State::from_name(&a.state).ok_or_else(|| {
            CliError::Failed(format!("unknown state {}: use online, busy, do-not-disturb, be-right-back, away, offline or custom:ID", a.state))
        })?),
    };
    let mut c = Client::start(cfg).map_err(|e| CliError::Failed(e.to_string()))?;
    signed_in(&mut c, |e| print(e, a.lcid)).await?;
    let note = a.note.as_deref();
    let mut asked = Vec::new();
    asked.push(match (state, custom) {
        (Some(s), _) => c.set_status(s, note).await,
        // When the language isn't listed only the plain status shows (seed).
        (None, Some((avail, Some(t)))) => c.set_custom_state(avail, a.lcid, &t, note).await,
        (None, Some((avail, None))) => c.set_status(avail.state(), note).await,
        (None, None) => unreachable!("a state or a custom state was chosen above"),
    });
    if a.in_call {
        asked.push(c.set_in_call(true).await);
    }
    if let Some(subject) = a.in_meeting {
        let meeting = ocs_core::presence_agent::Meeting {
            start: ocs_core::diag::utc_timestamp(wall_now()),
            subject,
            location: String::new(),
        };
        asked.push(c.set_in_meeting(Some(meeting)).await);
    }
    for r in asked {
        if let Err(e) = r {
            c.sign_out();
            return Err(CliError::Failed(e.to_string()));
        }
    }
    run_for(&mut c, Some(a.hold), a.lcid).await
}

#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::SystemTime {
    // The CLI is a host: it knows the time of day.
    std::time::SystemTime::now()
}

pub(crate) async fn watch(a: WatchArgs) -> Result<(), CliError> {
    let cfg = a.sign_in.client_config()?;
    let mut c = Client::start(cfg).map_err(|e| CliError::Failed(e.to_string()))?;
    signed_in(&mut c, |e| print(e, 1033)).await?;
    for u in &a.uris {
        c.watch(u)
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    run_for(&mut c, a.hold, 1033).await
}
