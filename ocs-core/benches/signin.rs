//! Sign-in time against a real registrar: Kamailio on loopback, Digest over
//! UDP (REGISTER, 401, REGISTER with credentials, 200), ocs beside SIPp.
//!
//! - `signin/ocs_udp`: one [`Client`] per iteration (fresh socket, Call-ID,
//!   tags), timed from `Client::start` until `Registered`. Sign-out (and
//!   waiting for `Stopped`) happens outside the timing, so Kamailio's
//!   location table does not grow from iteration to iteration.
//! - `signin/sipp_udp_wall`: one `sipp -m N -l 1` process per criterion
//!   sample (N = the sample's iteration count), wall time / N. This holds
//!   SIPp's process start (~10 ms) and its call scheduler, which starts the
//!   next sequential call only on its ~4 ms tick, so it overstates SIPp's
//!   per-registration time; it is there to show that, not to compare with.
//! - The summary line compares ocs with SIPp's own in-call time: a batch of
//!   N sequential registrations with `-trace_msg`, each timed from SIPp's
//!   timestamp of the first REGISTER to that of the 200 (microseconds, taken
//!   around SIPp's socket calls). Process start and the scheduler tick are
//!   outside this figure; SIPp's message logging is inside it (a few µs).
//!
//! Kamailio: the one named by `OCS_KAMAILIO_PORT`, or, when unset, a fresh
//! one started with `scripts/kamailio.sh start` and stopped at the end
//! (this replaces one that script started earlier). `OCS_BENCH_N` sets the
//! summary's batch size (default 1000).
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};

#[path = "common/client.rs"]
mod bench_client;
#[path = "common/kamailio.rs"]
mod kamailio;
use bench_client::wait_for;
use kamailio::Kamailio;

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio/sipp/register.xml")
}

fn config(port: u16) -> ClientConfig {
    let reg = RegisterConfig::new("sip:alice@127.0.0.1", Dialect::Standard, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("alice", "alicepw")),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        transport: Transport::Udp,
    });
    cfg.allowed = vec![Transport::Udp];
    cfg
}

/// One sign-in's times: `Client::start` to `Registered`, and `Connected`
/// (the first REGISTER goes out right after it) to `Registered`.
#[derive(Debug, Clone, Copy)]
struct SignIn {
    total: Duration,
    exchange: Duration,
}

/// One sign-in, timed up to `Registered`; signs out untimed.
#[allow(clippy::disallowed_methods)] // benches may read the clock
async fn ocs_signin(port: u16, platform_roots: bool) -> SignIn {
    let mut cfg = config(port);
    cfg.tls.no_platform_roots = !platform_roots;
    let t0 = Instant::now();
    let mut c = Client::start(cfg).expect("client starts");
    let mut connected = None;
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = c.next_event().await {
            match e {
                ClientEvent::Connected { .. } => connected = Some(Instant::now()),
                ClientEvent::Registration(RegistrationEvent::Registered { .. }) => {
                    return Ok(Instant::now());
                }
                ClientEvent::Registration(
                    RegistrationEvent::Failed(_) | RegistrationEvent::CredentialsNeeded { .. },
                ) => return Err(format!("{e:?}")),
                _ => {}
            }
        }
        Err("client ended".to_owned())
    })
    .await;
    let done = match r {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => panic!("sign-in failed: {e}"),
        Err(_) => panic!("not registered within 10 s"),
    };
    let t = SignIn {
        total: done - t0,
        exchange: done - connected.expect("Connected before Registered"),
    };
    c.sign_out();
    wait_for(&mut c, "Stopped", |e| *e == ClientEvent::Stopped).await;
    t
}

async fn ocs_batch(port: u16, n: u64, platform_roots: bool) -> Vec<SignIn> {
    let mut v = Vec::with_capacity(n as usize);
    for _ in 0..n {
        v.push(ocs_signin(port, platform_roots).await);
    }
    v
}

/// Runs `sipp -m n` (sequential calls) and returns its wall time.
fn sipp(port: u16, n: u64, extra: &[&str]) -> Duration {
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let out = Command::new("sipp")
        .arg("-sf")
        .arg(scenario())
        .args(["-t", "u1", "-p", &(port + 20).to_string()])
        .args([
            "-m",
            &n.to_string(),
            "-l",
            "1",
            "-r",
            "100000",
            "-rp",
            "1000",
        ])
        .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
        .args(["-key", "user", "alice", "-au", "alice", "-ap", "alicepw"])
        .args(extra)
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("sipp runs (install: ocs-core/tests/peers/kamailio/install.sh)");
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "sipp failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Seconds since midnight from a `-trace_msg` separator line
/// (`----- 2026-11-25 18:40:32.953139`).
fn trace_time(line: &str) -> Option<f64> {
    let t = line.rsplit(' ').next()?;
    let mut it = t.split(':');
    let (h, m, s) = (it.next()?, it.next()?, it.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// Per-call times in a SIPp `-trace_msg` file: first message sent to the
/// 200 received, per Call-ID.
fn sipp_call_times(log: &str) -> Vec<Duration> {
    use std::collections::HashMap;
    let mut start: HashMap<String, f64> = HashMap::new();
    let mut out = Vec::new();
    for block in log
        .split("\n-----------------------------------------------")
        .skip(1)
    {
        let mut lines = block.lines();
        let Some(ts) = lines.next().and_then(trace_time) else {
            continue;
        };
        let Some(dir) = lines.next() else { continue };
        let text: Vec<&str> = lines.collect();
        let Some(call_id) = text.iter().find_map(|l| {
            l.strip_prefix("Call-ID:")
                .or_else(|| l.strip_prefix("i:"))
                .map(|v| v.trim().to_owned())
        }) else {
            continue;
        };
        let first = text.iter().find(|l| !l.trim().is_empty()).copied();
        if dir.contains("sent") {
            start.entry(call_id).or_insert(ts);
        } else if first.is_some_and(|l| l.starts_with("SIP/2.0 200"))
            && let Some(t0) = start.remove(&call_id)
            && ts >= t0
        {
            out.push(Duration::from_secs_f64(ts - t0));
        }
    }
    out
}

fn stats(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
    (mean * 1e6, v[v.len() / 2].as_secs_f64() * 1e6)
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n: u64 = std::env::var("OCS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if test_mode { 5 } else { 1000 });
    let kamailio = Kamailio::get();
    let port = kamailio.port;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("signin");
    for (name, roots) in [("ocs_udp", true), ("ocs_udp_no_platform_roots", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(ocs_batch(port, iters, roots))
                    .iter()
                    .map(|s| s.total)
                    .sum()
            })
        });
    }
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("sipp_udp_wall", |b| {
        b.iter_custom(|iters| sipp(port, iters, &[]))
    });
    g.finish();
    c.final_summary();

    // The summary: N sequential sign-ins each.
    let default = rt.block_on(ocs_batch(port, n, true));
    let (total_mean, total_median) =
        stats(&mut default.iter().map(|s| s.total).collect::<Vec<_>>());
    let lean = rt.block_on(ocs_batch(port, n, false));
    let (lean_mean, lean_median) = stats(&mut lean.iter().map(|s| s.total).collect::<Vec<_>>());
    let mut exchange: Vec<Duration> = default.iter().chain(&lean).map(|s| s.exchange).collect();
    let (ocs_mean, ocs_median) = stats(&mut exchange);
    let dir = std::env::temp_dir().join(format!("ocs-signin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let msg = dir.join("sipp_msg.log");
    let wall = sipp(
        port,
        n,
        &[
            "-trace_msg",
            "-message_file",
            msg.to_str().expect("utf-8 path"),
        ],
    );
    let log = std::fs::read_to_string(&msg).expect("sipp message log");
    let _ = std::fs::remove_dir_all(&dir);
    let mut calls = sipp_call_times(&log);
    assert_eq!(calls.len() as u64, n, "SIPp calls found in its message log");
    let (sipp_mean, sipp_median) = stats(&mut calls);
    let wall_per = wall.as_secs_f64() * 1e6 / n as f64;
    println!(
        "ocs  ({n} sign-ins each): Client::start to Registered: mean {total_mean:.0} us, \
         median {total_median:.0} us with the platform trust store (the default); \
         mean {lean_mean:.0} us, median {lean_median:.0} us without it"
    );
    println!(
        "ocs  ({} sign-ins): Connected to Registered (the REGISTER/401/REGISTER/200 exchange): \
         mean {ocs_mean:.0} us, median {ocs_median:.0} us",
        2 * n
    );
    println!(
        "sipp ({n} sequential calls): first REGISTER sent to 200 received (-trace_msg): \
         mean {sipp_mean:.0} us, median {sipp_median:.0} us; wall / N {wall_per:.0} us"
    );
    println!(
        "signin: ocs {ocs_mean:.0} us/registration, sipp {sipp_mean:.0} us/registration, \
         ratio {:.2} (exchange only; ocs with Client::start: {total_mean:.0} us, ratio {:.2})",
        ocs_mean / sipp_mean,
        total_mean / sipp_mean
    );
    drop(kamailio);
}
