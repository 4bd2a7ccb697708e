//! `ocs load`: many clients in one process, like SIPp for our dialect.
//! Signs N users in (`PREFIX0`..`PREFIX{N-1}` at the domain of `--user`)
//! at a given rate, optionally has each watch K others and send IMs,
//! holds them, signs them out, and prints one JSON line of figures.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use ocs_core::Client;
use ocs_examples::{CliError, emit};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::signin::SignIn;

/// `ocs load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// The server, transport, dialect and password flags; --user gives the
    /// domain (its user part is ignored) and --auth-user's domain part
    /// (`CONTOSO\x`) the NTLM domain.
    #[command(flatten)]
    sign_in: SignIn,
    /// How many clients.
    #[arg(long, default_value_t = 100)]
    clients: u32,
    /// The users' names: PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "u")]
    user_prefix: String,
    /// Sign-ins started per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds to hold every client signed in before signing out.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
    /// Each client watches this many others.
    #[arg(long, default_value_t = 0)]
    watch: u32,
    /// Instant messages per second, all clients together, while holding.
    #[arg(long, default_value_t = 0.0)]
    im_rate: f64,
}

/// What one client reports to the collector.
enum Report {
    SignedIn(Duration),
    Failed(String),
    ImSent,
    ImDelivered,
    ImFailed,
}

/// The resident set size of this process, from /proc (Linux); 0 elsewhere.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    // The load tool is a host: it measures wall time.
    Instant::now()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// A progress bar on stderr: `[#####.....] 512/1000 signed in, 0 failed`.
fn progress(done: u32, failed: u32, total: u32, started: Instant) {
    let width = 30;
    let filled = if total == 0 {
        width
    } else {
        (u64::from(done + failed) * width as u64 / u64::from(total)) as usize
    };
    let rate = f64::from(done) / started.elapsed().as_secs_f64().max(0.001);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total} signed in, {failed} failed, {rate:.0}/s   ",
        "#".repeat(filled),
        ".".repeat(width - filled)
    );
    let _ = err.flush();
}

pub(crate) async fn run(a: LoadArgs) -> Result<(), CliError> {
    if a.clients == 0 || a.rate <= 0.0 || !a.rate.is_finite() {
        return Err(CliError::Usage(
            "--clients and --rate must be positive".into(),
        ));
    }
    let domain = a
        .sign_in
        .user
        .rsplit_once('@')
        .map(|(_, d)| d.to_owned())
        .ok_or_else(|| CliError::Usage(format!("--user {}: no domain", a.sign_in.user)))?;
    let ntlm_domain = a
        .sign_in
        .auth_user
        .as_deref()
        .and_then(|u| u.split_once('\\'))
        .map(|(d, _)| d.to_owned());
    let n = a.clients;
    let uri = |i: u32| format!("sip:{}{i}@{domain}", a.user_prefix);
    let mut configs = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut s = a.sign_in.clone();
        s.user = uri(i);
        s.auth_user = Some(match &ntlm_domain {
            Some(d) => format!("{d}\\{}{i}", a.user_prefix),
            None => format!("{}{i}", a.user_prefix),
        });
        configs.push(s.client_config()?);
    }

    let rss_before = rss_bytes();
    let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_client_im = if a.im_rate > 0.0 {
        Some(Duration::from_secs_f64(f64::from(n) / a.im_rate))
    } else {
        None
    };
    let started = now();
    let spawner = {
        let tx = tx.clone();
        let watch_k = a.watch.min(n.saturating_sub(1));
        let gap = Duration::from_secs_f64(1.0 / a.rate);
        let uris: Vec<String> = (0..n).map(uri).collect();
        async move {
            let mut tasks = Vec::with_capacity(n as usize);
            for (i, cfg) in configs.into_iter().enumerate() {
                tokio::time::sleep_until((started + gap * i as u32).into()).await;
                let tx = tx.clone();
                let mut stop = stop_rx.clone();
                let watch: Vec<String> = (1..=watch_k as usize)
                    .map(|k| uris[(i + k) % uris.len()].clone())
                    .collect();
                let peer = uris[(i + 1) % uris.len()].clone();
                tasks.push(tokio::spawn(async move {
                    let t0 = now();
                    let mut c = match Client::start(cfg) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Report::Failed(e.to_string()));
                            return;
                        }
                    };
                    if let Err(e) = c.signed_in().await {
                        let _ = tx.send(Report::Failed(e.to_string()));
                        return;
                    }
                    let _ = tx.send(Report::SignedIn(t0.elapsed()));
                    for w in &watch {
                        let _ = c.watch(w).await;
                    }
                    let mut ims = per_client_im.map(tokio::time::interval);
                    loop {
                        tokio::select! {
                            _ = stop.changed() => break,
                            _ = async {
                                match ims.as_mut() {
                                    Some(i) => { i.tick().await; }
                                    None => std::future::pending::<()>().await,
                                }
                            } => {
                                if let Ok(p) = c.send_im(&peer, "load test").await {
                                    let _ = tx.send(Report::ImSent);
                                    let tx = tx.clone();
                                    tokio::spawn(async move {
                                        let _ = tx.send(match p.outcome().await {
                                            Ok(()) => Report::ImDelivered,
                                            Err(_) => Report::ImFailed,
                                        });
                                    });
                                }
                            }
                            e = c.next_event() => if e.is_none() { break },
                        }
                    }
                    c.sign_out();
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        while let Some(e) = c.next_event().await {
                            if e == ocs_core::ClientEvent::Stopped {
                                break;
                            }
                        }
                    })
                    .await;
                }));
            }
            tasks
        }
    };
    drop(tx);
    let spawned = tokio::spawn(spawner);

    // Collect until every client signed in or failed.
    let mut latencies = Vec::with_capacity(n as usize);
    let (mut failed, mut first_error) = (0u32, None);
    let (mut ims_sent, mut ims_delivered, mut ims_failed) = (0u64, 0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_signed_in = started;
    while (latencies.len() as u32) + failed < n {
        tokio::select! {
            r = rx.recv() => match r {
                Some(Report::SignedIn(d)) => {
                    latencies.push(d);
                    last_signed_in = now();
                }
                Some(Report::Failed(e)) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
                Some(Report::ImSent) => ims_sent += 1,
                Some(Report::ImDelivered) => ims_delivered += 1,
                Some(Report::ImFailed) => ims_failed += 1,
                None => break,
            },
            _ = tick.tick() => progress(latencies.len() as u32, failed, n, started),
        }
    }
    progress(latencies.len() as u32, failed, n, started);
    eprintln!();
    let signin_secs = last_signed_in
        .duration_since(started)
        .as_secs_f64()
        .max(0.001);
    let rss_held = rss_bytes();
    // Hold (IMs flow meanwhile), then sign everybody out.
    let hold_until = now() + Duration::from_secs_f64(a.hold.max(0.0));
    while now() < hold_until {
        tokio::select! {
            r = rx.recv() => match r {
                Some(Report::ImSent) => ims_sent += 1,
                Some(Report::ImDelivered) => ims_delivered += 1,
                Some(Report::ImFailed) => ims_failed += 1,
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(hold_until.into()) => break,
        }
    }
    let _ = stop_tx.send(true);
    let tasks = spawned.await.unwrap_or_default();
    for t in tasks {
        let _ = t.await;
    }
    // Every IM ends (delivered, or failed at the latest when its client
    // signed out); wait for the last outcomes, a bounded while.
    let settle = now() + Duration::from_secs(5);
    loop {
        let r = if ims_delivered + ims_failed >= ims_sent {
            match rx.try_recv() {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            match tokio::time::timeout_at(settle.into(), rx.recv()).await {
                Ok(Some(r)) => r,
                _ => break,
            }
        };
        match r {
            Report::ImSent => ims_sent += 1,
            Report::ImDelivered => ims_delivered += 1,
            Report::ImFailed => ims_failed += 1,
            _ => {}
        }
    }
    latencies.sort();
    let signed_in = latencies.len() as u64;
    let grown = rss_held.saturating_sub(rss_before);
    let mut line = json!({
        "clients": n,
        "signed_in": signed_in,
        "failed": failed,
        "signin_per_s": (signed_in as f64 / signin_secs * 10.0).round() / 10.0,
        "p50_ms": (percentile(&latencies, 0.5) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&latencies, 0.99) * 10.0).round() / 10.0,
        "rss_bytes": rss_held,
        "rss_per_client_bytes": grown.checked_div(signed_in).unwrap_or(0),
    });
    if a.im_rate > 0.0 {
        line["ims_sent"] = json!(ims_sent);
        line["ims_delivered"] = json!(ims_delivered);
        line["ims_failed"] = json!(ims_failed);
    }
    if let Some(e) = first_error {
        line["first_error"] = json!(e);
    }
    emit(line)?;
    if signed_in == 0 {
        return Err(CliError::Failed("no client signed in".into()));
    }
    Ok(())
}
