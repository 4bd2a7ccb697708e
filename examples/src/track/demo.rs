//! `ocs track demo`: the embedded server, three people changing their
//! presence through a working hour on a fast clock, a tracker recording
//! them, and the report of that hour.

use std::time::{Duration, Instant};

use ocs_core::{Availability, Client, ClientConfig, State, Transport, start_test_server};

use super::report::{self, DayRow, Segment};
use super::run::{TrackOptions, run};
use super::store::Store;
use super::{Millis, Transition};

/// What a presence change in the script sets.
#[derive(Debug, Clone, Copy)]
enum Set {
    State(State),
    Custom(&'static str),
}

/// The three people and what they do, minute by minute.
const SCRIPT: &[(&str, u32, Set)] = &[
    ("anna", 0, Set::State(State::Online)),
    ("anna", 12, Set::State(State::Busy)),
    ("anna", 35, Set::Custom("Customer visit")),
    ("anna", 50, Set::State(State::Online)),
    ("ben", 0, Set::State(State::Busy)),
    ("ben", 20, Set::State(State::BeRightBack)),
    ("ben", 25, Set::State(State::Online)),
    ("ben", 45, Set::State(State::DoNotDisturb)),
    ("chris", 0, Set::State(State::Away)),
    ("chris", 30, Set::State(State::Online)),
    ("chris", 55, Set::State(State::Busy)),
];

const PEOPLE: [&str; 3] = ["anna", "ben", "chris"];

/// The demo's settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many simulated minutes pass per real minute.
    pub speed: u32,
    /// How long the simulated working time lasts, in minutes.
    pub minutes: u32,
    /// Where the records go (`sqlite:PATH`).
    pub db: String,
}

/// What the demo produced.
#[derive(Debug, Clone)]
pub struct DemoResult {
    /// The simulated time covered: `[from, to)`.
    pub from: Millis,
    /// See `from`.
    pub to: Millis,
    /// The report's rows.
    pub rows: Vec<DayRow>,
    /// Each person's timeline.
    pub timelines: Vec<(String, Vec<Segment>)>,
    /// The transitions the tracker recorded.
    pub recorded: usize,
}

#[allow(clippy::disallowed_methods)]
fn started() -> (Instant, Millis) {
    // The demo is a host: it reads the clock once and runs its own fast
    // clock from there.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = i64::try_from(wall.as_millis()).unwrap_or(0);
    // Start the simulated hour on a whole minute.
    (Instant::now(), ms - ms % 60_000)
}

/// Runs the demo. `progress` is told about each recorded transition.
pub async fn demo(
    opts: &DemoOptions,
    mut progress: impl FnMut(&Transition),
) -> Result<DemoResult, String> {
    let speed = i64::from(opts.speed.max(1));
    let users: Vec<(&str, String)> = ["lead"]
        .iter()
        .chain(PEOPLE.iter())
        .map(|u| (*u, format!("{u}pw")))
        .collect();
    let users: Vec<(&str, &str)> = users.iter().map(|(u, p)| (*u, p.as_str())).collect();
    let server = start_test_server("contoso.com", &users)
        .await
        .map_err(|e| format!("test server: {e}"))?;
    let addr = server.tcp.to_string();
    let config = |user: &str| -> Result<ClientConfig, String> {
        ClientConfig::builder(&format!("sip:{user}@contoso.com"))
            .credentials(&format!("CONTOSO\\{user}"), &format!("{user}pw"))
            .server(&addr, Transport::Tcp)
            .build()
            .map_err(|e| e.to_string())
    };
    let store = Store::open(&opts.db).map_err(|e| e.to_string())?;
    // The people sign in before the hour starts.
    let mut people = Vec::new();
    for p in PEOPLE {
        let mut c = Client::start(config(p)?).map_err(|e| e.to_string())?;
        c.signed_in().await.map_err(|e| format!("{p}: {e}"))?;
        people.push((p, c));
    }
    let (t0, from) = started();
    let sim_now = move || from + i64::try_from(t0.elapsed().as_millis()).unwrap_or(0) * speed;
    let to = from + i64::from(opts.minutes) * 60_000;
    let real = |sim_ms: i64| Duration::from_millis(u64::try_from(sim_ms / speed).unwrap_or(0));

    let mut lead = Client::start(config("lead")?).map_err(|e| e.to_string())?;
    let track_opts = TrackOptions {
        watch: PEOPLE
            .iter()
            .map(|p| format!("sip:{p}@contoso.com"))
            .collect(),
        group: None,
        heartbeat: real(60_000).max(Duration::from_millis(50)),
        source: "ocs".into(),
    };
    let hour = real(to - from);
    let stop = tokio::time::sleep_until((t0 + hour).into());
    let tracker = run(
        &mut lead,
        &store,
        "sip:lead@contoso.com",
        &track_opts,
        stop,
        sim_now,
        &mut progress,
    );
    let script = async {
        let mut steps: Vec<&(&str, u32, Set)> =
            SCRIPT.iter().filter(|s| s.1 < opts.minutes).collect();
        steps.sort_by_key(|s| s.1);
        for (who, minute, set) in steps {
            tokio::time::sleep_until((t0 + real(i64::from(*minute) * 60_000)).into()).await;
            let Some((_, c)) = people.iter().find(|(p, _)| p == who) else {
                continue;
            };
            let asked = match set {
                Set::State(s) => c.set_status(*s, None).await,
                Set::Custom(text) => {
                    c.set_custom_state(Availability::BUSY, 1033, text, None)
                        .await
                }
            };
            if let Ok(p) = asked {
                let _ = p.outcome().await;
            }
        }
    };
    let (summary, ()) = tokio::join!(tracker, script);
    let summary = summary.map_err(|e| e.to_string())?;
    for (_, c) in &people {
        c.sign_out();
    }
    // The tracker ended its run a moment after the hour; the report covers
    // exactly the hour.
    let spans = store.spans(from, to).map_err(|e| e.to_string())?;
    let transitions = store
        .transitions(from, to, None)
        .map_err(|e| e.to_string())?;
    let who: Vec<String> = PEOPLE
        .iter()
        .map(|p| format!("sip:{p}@contoso.com"))
        .collect();
    let rows = report::days(&transitions, &spans, &who, from, to);
    let merged = report::merge(spans);
    let timelines = who
        .iter()
        .map(|w| {
            let ts: Vec<&Transition> = transitions.iter().filter(|t| &t.who == w).collect();
            (w.clone(), report::segments(&ts, &merged, from, to))
        })
        .collect();
    Ok(DemoResult {
        from,
        to,
        rows,
        timelines,
        recorded: summary.recorded,
    })
}
