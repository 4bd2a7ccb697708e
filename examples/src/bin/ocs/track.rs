//! `ocs track`: presence time tracking. `run` signs in, watches contacts
//! and records every presence change in a database; `report` turns the
//! records into time per state per person per day.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use ocs_core::Client;
use ocs_examples::track::report;
use ocs_examples::track::run::{TrackError, TrackOptions, run as track_run};
use ocs_examples::track::store::Store;
use ocs_examples::track::{Millis, parse_day, utc_name};
use ocs_examples::{CliError, emit};
use serde_json::json;

use crate::signin::{DialectArg, SignIn};

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TrackCommand {
    /// Sign in, watch the contacts, record every presence change until
    /// Ctrl-C (or --for); a restart resumes in the same database.
    Run(Box<RunArgs>),
    /// Time per state per person per day from the database.
    Report(ReportArgs),
    /// The embedded server, three people changing their presence through
    /// an hour on a fast clock, a tracker, and the hour's report.
    Demo(DemoArgs),
}

/// `ocs track demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The database for the demo's records.
    #[arg(long, default_value = "sqlite:ocs-track-demo.db")]
    db: String,
    /// Write the HTML report here.
    #[arg(long, default_value = "ocs-track-demo.html")]
    out: std::path::PathBuf,
    /// Simulated minutes per real minute (60: an hour takes a minute).
    #[arg(long, default_value_t = 60)]
    speed: u32,
    /// How many simulated minutes the demo lasts.
    #[arg(long, default_value_t = 60)]
    minutes: u32,
    /// Also write every timeline as one SVG picture here.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

/// `ocs track run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    sign_in: SignIn,
    /// The database: sqlite:PATH (created when missing), or
    /// postgres://USER@HOST:PORT/DB when several trackers share one.
    #[arg(long, default_value = "sqlite:ocs-track.db")]
    db: String,
    /// A contact to watch (repeatable). Without --watch and --group the
    /// tracker watches its own user.
    #[arg(long = "watch", value_name = "URI")]
    watch: Vec<String>,
    /// Watch every contact of this group of the server-stored contact
    /// list (OCS).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long = "for", value_name = "SECS")]
    hold: Option<f64>,
    /// Delete records older than this many days at start.
    #[arg(long, value_name = "DAYS")]
    retention: Option<u32>,
}

/// `ocs track report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The database: sqlite:PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, default_value = "sqlite:ocs-track.db")]
    db: String,
    /// The first day, YYYY-MM-DD (UTC; default: today).
    #[arg(long)]
    from: Option<String>,
    /// The last day, YYYY-MM-DD (UTC, included; default: --from).
    #[arg(long)]
    to: Option<String>,
    /// Only this person.
    #[arg(long, value_name = "URI")]
    who: Option<String>,
    /// Output format: csv, json, or html (one self-contained file with a
    /// timeline per person).
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
    Html,
}

const DAY: Millis = 86_400_000;

use ocs_examples::track::wall_clock as wall;

fn store(spec: &str) -> Result<Store, CliError> {
    Store::open(spec).map_err(|e| CliError::Usage(format!("--db {spec}: {e}")))
}

pub(crate) async fn run(cmd: TrackCommand) -> Result<(), CliError> {
    match cmd {
        TrackCommand::Run(a) => run_tracker(*a).await,
        TrackCommand::Report(a) => print_report(a),
        TrackCommand::Demo(a) => run_demo(a).await,
    }
}

/// Writes `text` to `out`, or to standard output.
fn write_out(out: Option<&std::path::Path>, text: &str) -> Result<(), CliError> {
    match out {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| CliError::Usage(format!("writing {}: {e}", p.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

async fn run_demo(a: DemoArgs) -> Result<(), CliError> {
    if a.speed == 0 || a.minutes == 0 {
        return Err(CliError::Usage(
            "--speed and --minutes must be positive".into(),
        ));
    }
    if let Some(path) = a.db.strip_prefix("sqlite:") {
        // A fresh demo each time.
        let _ = std::fs::remove_file(path);
    }
    let opts = ocs_examples::track::demo::DemoOptions {
        speed: a.speed,
        minutes: a.minutes,
        db: a.db.clone(),
    };
    let r = ocs_examples::track::demo::demo(&opts, |t| {
        let _ = emit(json!({
            "event": "transition",
            "who": t.who,
            "at": utc_name(t.at),
            "to": t.to.label(),
        }));
    })
    .await
    .map_err(CliError::Failed)?;
    let page = report::html(&r.rows, &r.timelines, r.from, r.to);
    write_out(Some(&a.out), &page)?;
    if let Some(svg) = &a.svg {
        write_out(
            Some(svg),
            &report::timelines_svg(&r.timelines, r.from, r.to),
        )?;
    }
    for (who, _) in &r.timelines {
        let mine: Vec<&report::DayRow> = r.rows.iter().filter(|x| &x.who == who).collect();
        let mut seconds = serde_json::Map::new();
        for row in &mine {
            for (label, ms) in &row.totals {
                let v = seconds.entry(label.clone()).or_insert(json!(0.0));
                *v = json!(v.as_f64().unwrap_or(0.0) + *ms as f64 / 1000.0);
            }
        }
        let total: Millis = mine.iter().map(|x| x.accounted()).sum();
        emit(json!({
            "event": "person",
            "who": who,
            "seconds": seconds,
            "accounted_seconds": total as f64 / 1000.0,
        }))?;
    }
    emit(json!({
        "event": "report",
        "from": utc_name(r.from),
        "to": utc_name(r.to),
        "recorded": r.recorded,
        "html": a.out.display().to_string(),
        "db": a.db,
    }))
}

async fn run_tracker(a: RunArgs) -> Result<(), CliError> {
    let db = store(&a.db)?;
    if let Some(days) = a.retention {
        let gone = db
            .purge(wall() - i64::from(days) * DAY)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        emit(json!({"event": "purged", "transitions": gone, "older_than_days": days}))?;
    }
    let cfg = a.sign_in.client_config()?;
    let mut client = Client::start(cfg).map_err(|e| CliError::Failed(e.to_string()))?;
    let opts = TrackOptions {
        watch: a.watch.clone(),
        group: a.group.clone(),
        heartbeat: Duration::from_secs(30),
        source: match a.sign_in.dialect {
            DialectArg::Ocs => "ocs".into(),
            DialectArg::Standard => "standard".into(),
        },
    };
    let hold = a.hold;
    let stop = async move {
        match hold {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let summary = track_run(&mut client, &db, &a.sign_in.user, &opts, stop, wall, |t| {
        let _ = emit(json!({
            "event": "transition",
            "who": t.who,
            "at": utc_name(t.at),
            "from": t.from,
            "to": t.to.label(),
            "note": t.to.note,
        }));
    })
    .await
    .map_err(|e| match e {
        TrackError::Watch(..) | TrackError::Group(_) => CliError::Usage(e.to_string()),
        other => CliError::Failed(other.to_string()),
    })?;
    for (who, why) in &summary.refused {
        emit(json!({"event": "not_tracked", "who": who, "reason": why}))?;
    }
    emit(json!({
        "event": "stopped",
        "run": summary.run,
        "recorded": summary.recorded,
        "outages": summary.outages,
    }))
}

fn print_report(a: ReportArgs) -> Result<(), CliError> {
    let day = |flag: &str, v: &str| {
        parse_day(v).ok_or_else(|| CliError::Usage(format!("{flag} {v}: expected YYYY-MM-DD")))
    };
    let from = match &a.from {
        Some(v) => day("--from", v)?,
        None => {
            let (y, m, d) = ocs_examples::track::civil_day(wall());
            ocs_examples::track::day_start(y, m, d)
        }
    };
    let to = match &a.to {
        Some(v) => day("--to", v)? + DAY,
        None => from + DAY,
    };
    if to <= from {
        return Err(CliError::Usage("--to is before --from".into()));
    }
    let db = store(&a.db)?;
    let fail = |e: ocs_examples::track::store::StoreError| CliError::Failed(e.to_string());
    let spans = db.spans(from, to).map_err(fail)?;
    // A state seen before the range still counts inside it: read from the
    // start of the first span that reaches into the range.
    let since = spans.iter().map(|s| s.from).min().unwrap_or(from).min(from);
    let transitions = db.transitions(since, to, a.who.as_deref()).map_err(fail)?;
    let people = match &a.who {
        Some(w) => vec![w.clone()],
        None => db.people().map_err(fail)?,
    };
    let rows = report::days(&transitions, &spans, &people, from, to);
    let text = match a.format {
        Format::Csv => report::csv(&rows),
        Format::Json => format!("{}\n", report::json(&rows)),
        Format::Html => {
            let merged = report::merge(spans);
            let timelines: Vec<(String, Vec<report::Segment>)> = people
                .iter()
                .map(|w| {
                    let ts: Vec<&ocs_examples::track::Transition> =
                        transitions.iter().filter(|t| &t.who == w).collect();
                    (w.clone(), report::segments(&ts, &merged, from, to))
                })
                .collect();
            report::html(&rows, &timelines, from, to)
        }
    };
    write_out(a.out.as_deref(), &text)
}
