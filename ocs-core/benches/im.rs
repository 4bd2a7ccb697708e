//! IM through a real SIP server, and the memory an open IM session holds.
//!
//! - `im/ocs_latency_udp`: alice and bob, two ocs [`Client`]s registered to
//!   Kamailio on loopback over UDP (standard dialect, Digest); one page-mode
//!   MESSAGE per iteration, timed from `send_im` to its outcome event
//!   (Delivered, or Failed).
//! - `im/ocs_window32_udp`: the same with up to 32 messages outstanding;
//!   throughput in messages/s.
//! - The summary sends N messages (window 32) with ocs, then the same
//!   MESSAGE flow with SIPp in the same run (`message.xml` as alice, window
//!   `-l 32`, against a SIPp `uas_message.xml` registered as bob), and
//!   prints `im: ocs X msg/s, sipp Y msg/s, ratio Z (goal >= 0.8)`. SIPp's
//!   rate is SuccessfulCall(C) over the time its `-trace_stat` file covers
//!   (process start to the last call). Kamailio challenges every MESSAGE
//!   from its domain with 407, so each message is MESSAGE, 407, MESSAGE
//!   with credentials, 200 for SIPp; ocs counts only messages that end
//!   Delivered.
//! - Memory: 1000 OCS-dialect sessions opened from one in-process endpoint
//!   to 1000 contacts of another (back to back, no sockets), heap growth
//!   measured with a counting global allocator; prints
//!   `im: memory per session ~N bytes` (the opening side's sessions, their
//!   dialogs and what the endpoints keep for them once the transactions are
//!   over).
//!
//! Kamailio: the one named by `OCS_KAMAILIO_PORT`, or, when unset, a fresh
//! one started with `scripts/kamailio.sh start` and stopped at the end.
//! `OCS_BENCH_N` sets the summary's message count (default 2000).
#![allow(missing_docs)]
// The counting global allocator must implement `GlobalAlloc` (unsafe); nothing else is.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::{Endpoint, EndpointConfig};
use ocs_core::messaging::{ImConfig, ImEvent, MessageId, Messaging};
use ocs_core::register::{Credentials, LocalTransport, RegisterConfig, RegistrationEvent};

#[path = "common/client.rs"]
mod bench_client;
#[path = "common/kamailio.rs"]
mod kamailio;
use bench_client::wait_for;
use kamailio::Kamailio;

// ----- counting allocator ----------------------------------------------------

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

// ----- Kamailio --------------------------------------------------------------

fn sipp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio/sipp")
}

// ----- ocs through Kamailio --------------------------------------------------

fn client(user: &str, port: u16) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{user}-bench-0"),
    );
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new(user, &format!("{user}pw"))),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        transport: Transport::Udp,
    });
    cfg.allowed = vec![Transport::Udp];
    cfg.tls.no_platform_roots = true;
    Client::start(cfg).expect("client starts")
}

/// Alice sending to bob, bob's events drained by a task (counting what he
/// received).
struct Pair {
    alice: Client,
    bob: tokio::task::JoinHandle<(Client, u64)>,
    stop_bob: tokio::sync::oneshot::Sender<()>,
}

async fn pair(port: u16) -> Pair {
    let registered = |e: &ClientEvent| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { .. })
        )
    };
    let mut alice = client("alice", port);
    let mut bob = client("bob", port);
    wait_for(&mut alice, "alice registered", registered).await;
    wait_for(&mut bob, "bob registered", registered).await;
    let (stop_bob, mut stop) = tokio::sync::oneshot::channel();
    let bob = tokio::spawn(async move {
        let mut got = 0u64;
        loop {
            tokio::select! {
                e = bob.next_event() => match e {
                    Some(ClientEvent::Im(ImEvent::Received { .. })) => got += 1,
                    Some(_) => {}
                    None => break,
                },
                _ = &mut stop => break,
            }
        }
        (bob, got)
    });
    Pair {
        alice,
        bob,
        stop_bob,
    }
}

impl Pair {
    /// Signs both out; returns how many messages bob received.
    async fn close(self) -> u64 {
        let _ = self.stop_bob.send(());
        let (mut bob, got) = self.bob.await.expect("bob's task");
        let mut alice = self.alice;
        alice.sign_out();
        bob.sign_out();
        wait_for(&mut alice, "alice stopped", |e| *e == ClientEvent::Stopped).await;
        wait_for(&mut bob, "bob stopped", |e| *e == ClientEvent::Stopped).await;
        got
    }
}

/// What a batch of messages came to.
#[derive(Debug, Default)]
struct Batch {
    wall: Duration,
    latencies: Vec<Duration>,
    delivered: u64,
    failed: HashMap<String, u64>,
}

/// Sends `n` messages with at most `window` outstanding; each is timed from
/// `send_im` to its outcome.
#[allow(clippy::disallowed_methods)] // benches may read the clock
async fn batch(alice: &mut Client, n: u64, window: usize) -> Batch {
    let mut b = Batch::default();
    let mut outstanding: HashMap<MessageId, Instant> = HashMap::new();
    let mut sent = 0u64;
    let t0 = Instant::now();
    while sent < n || !outstanding.is_empty() {
        while sent < n && outstanding.len() < window {
            let at = Instant::now();
            let id = alice
                .send_im("sip:bob@127.0.0.1", &format!("bench message {sent}"))
                .await
                .expect("send_im")
                .id;
            outstanding.insert(id, at);
            sent += 1;
        }
        let e = tokio::time::timeout(Duration::from_secs(40), alice.next_event())
            .await
            .expect("an outcome within 40 s")
            .expect("alice's client runs");
        let (id, failure) = match e {
            ClientEvent::Im(ImEvent::Delivered { id }) => (id, None),
            ClientEvent::Im(ImEvent::Failed { id, detail, .. }) => (id, Some(detail)),
            _ => continue,
        };
        if let Some(at) = outstanding.remove(&id) {
            b.latencies.push(at.elapsed());
            match failure {
                None => b.delivered += 1,
                Some(d) => *b.failed.entry(d).or_default() += 1,
            }
        }
    }
    b.wall = t0.elapsed();
    b
}

// ----- SIPp ------------------------------------------------------------------

fn run_sipp(args: &[&str], port: u16, what: &str, must_pass: bool) -> std::process::Output {
    let out = Command::new("sipp")
        .args(args)
        .args(["-nostdin", "-timeout", "120s", "-timeout_error"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("sipp runs (install: ocs-core/tests/peers/kamailio/install.sh)");
    assert!(
        out.status.success() || !must_pass,
        "sipp {what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Seconds since the epoch from a `-trace_stat` time field
/// (`2026-11-25\t19:18:51.256214\t1795634331.256214`).
fn epoch(field: &str) -> Option<f64> {
    field.rsplit('\t').next()?.trim().parse().ok()
}

/// SIPp's rate from its `-trace_stat` file: SuccessfulCall(C) over
/// CurrentTime - StartTime.
fn sipp_rate(csv: &str) -> (u64, u64, f64) {
    let lines: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
    let head: Vec<&str> = lines.first().expect("stat header").split(';').collect();
    assert!(lines.len() > 1, "no stat line in SIPp's stats");
    let last: Vec<&str> = lines[lines.len() - 1].split(';').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} in SIPp's stats"))
    };
    let ok: u64 = last[col("SuccessfulCall(C)")]
        .trim()
        .parse()
        .expect("SuccessfulCall(C)");
    let failed: u64 = last[col("FailedCall(C)")].trim().parse().unwrap_or(0);
    let secs = epoch(last[col("CurrentTime")]).expect("CurrentTime")
        - epoch(last[col("StartTime")]).expect("StartTime");
    (ok, failed, ok as f64 / secs)
}

/// The MESSAGE flow with SIPp: bob's UAS registered on port+24, alice's UAC
/// on port+23 with `-l window`. Returns (successful calls, failed calls,
/// successful calls/s).
fn sipp_messages(port: u16, n: u64, window: usize) -> (u64, u64, f64) {
    let dir = std::env::temp_dir().join(format!("ocs-im-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sc = sipp_dir();
    let (uas_port, uac_port) = ((port + 24).to_string(), (port + 23).to_string());
    let register = sc.join("register.xml");
    let register = register.to_str().expect("utf-8 path");
    let bob = ["-key", "user", "bob", "-au", "bob", "-ap", "bobpw"];
    let mut args = vec!["-sf", register, "-t", "u1", "-p", &uas_port, "-m", "1"];
    args.extend(bob);
    run_sipp(&args, port, "register bob", true);
    let uas = Command::new("sipp")
        .arg("-sf")
        .arg(sc.join("uas_message.xml"))
        .args(["-t", "u1", "-p", &uas_port, "-m", &n.to_string()])
        .args(["-nostdin", "-timeout", "120s", "-timeout_error"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp runs");
    std::thread::sleep(Duration::from_millis(300));
    let stf = dir.join("stat.csv");
    let message = sc.join("message.xml");
    let (n_s, l_s) = (n.to_string(), window.to_string());
    let mut args = vec![
        "-sf",
        message.to_str().expect("utf-8 path"),
        "-t",
        "u1",
        "-p",
        &uac_port,
        "-m",
        &n_s,
        "-l",
        &l_s,
        "-r",
        "100000",
        "-rp",
        "1000",
        "-trace_stat",
        "-fd",
        "1",
        "-stf",
        stf.to_str().expect("utf-8 path"),
    ];
    args.extend(["-key", "user", "alice", "-key", "peer", "bob"]);
    args.extend(["-au", "alice", "-ap", "alicepw"]);
    // Under load a retransmitted MESSAGE can meet a second 407 that the
    // scenario does not expect: SIPp counts that call failed and exits 1.
    // Its stats still count the successful ones, which is what we report.
    let uac = run_sipp(&args, port, "message.xml", false);
    if !uac.status.success() {
        eprintln!(
            "sipp message.xml exited with {} (some calls failed)",
            uac.status
        );
    }
    // The UAS waits for exactly n calls; stop it (our own child) if fewer came.
    std::thread::sleep(Duration::from_millis(200));
    let mut uas = uas;
    if !matches!(uas.try_wait(), Ok(Some(_))) {
        let _ = uas.kill();
    }
    let _ = uas.wait();
    let csv = std::fs::read_to_string(&stf).expect("SIPp's stat file");
    // Un-register SIPp's bob (register.xml with Expires: 0).
    let unreg = std::fs::read_to_string(sc.join("register.xml"))
        .expect("register.xml")
        .replace("Expires: 3600", "Expires: 0")
        .lines()
        .filter(|l| !l.contains("<action>"))
        .collect::<Vec<_>>()
        .join("\n");
    let unreg_file = dir.join("unregister.xml");
    std::fs::write(&unreg_file, unreg).expect("write unregister.xml");
    let mut args = vec![
        "-sf",
        unreg_file.to_str().expect("utf-8 path"),
        "-t",
        "u1",
        "-p",
        &uas_port,
        "-m",
        "1",
    ];
    args.extend(bob);
    run_sipp(&args, port, "unregister bob", true);
    let _ = std::fs::remove_dir_all(&dir);
    sipp_rate(&csv)
}

// ----- memory per session ----------------------------------------------------

struct Side {
    ep: Endpoint,
    im: Messaging,
}

fn side(user: &str, seed: u64, now: Instant) -> Side {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@contoso.com"),
        Dialect::Ocs,
        &format!("{seed:010x}"),
    );
    let mut ep = Endpoint::new(
        EndpointConfig::new(reg, None),
        seed,
        [seed as u8; 32],
        now,
        SystemTime::UNIX_EPOCH,
    );
    ep.connected(
        LocalTransport {
            transport: Transport::Tcp,
            addr: format!("192.0.2.{seed}:506{seed}").parse().expect("addr"),
        },
        now,
    );
    ep.handle_methods(&Messaging::METHODS);
    Side {
        ep,
        im: Messaging::new(ImConfig::new(Dialect::Ocs)),
    }
}

/// Moves bytes and events between the two sides until nothing moves;
/// returns how many messages were delivered.
fn flush(a: &mut Side, b: &mut Side, now: Instant) -> usize {
    let mut delivered = 0;
    loop {
        let mut moved = false;
        for s in [&mut *a, &mut *b] {
            while let Some(e) = s.ep.poll_event() {
                moved = true;
                s.im.handle_event(&mut s.ep, &e, now);
            }
            while let Some(e) = s.im.poll_event() {
                moved = true;
                if matches!(e, ImEvent::Delivered { .. }) {
                    delivered += 1;
                }
            }
        }
        while let Some(bytes) = a.ep.poll_transmit() {
            moved = true;
            b.ep.handle_bytes(&bytes, now);
        }
        while let Some(bytes) = b.ep.poll_transmit() {
            moved = true;
            a.ep.handle_bytes(&bytes, now);
        }
        if !moved {
            return delivered;
        }
    }
}

/// Runs the two sides' timers up to `until`.
fn run_until(a: &mut Side, b: &mut Side, mut now: Instant, until: Instant) {
    loop {
        let next = [a.ep.poll_timeout(), b.ep.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(at) if at <= until => {
                now = at.max(now);
                a.ep.handle_timeout(now);
                b.ep.handle_timeout(now);
                flush(a, b, now);
            }
            _ => return,
        }
    }
}

/// Heap growth per session for `n` OCS sessions opened by alice to `n`
/// contacts at bob's endpoint (bob keys sessions by the sender, so his side
/// keeps one; the figure is the opening side's, plus what both endpoints
/// keep once the transactions have ended).
#[allow(clippy::disallowed_methods)]
fn memory_per_session(n: usize) -> (f64, usize) {
    let t0 = Instant::now();
    let mut a = side("alice", 1, t0);
    let mut b = side("bob", 2, t0);
    // Warm up: one session, so first-use allocations are not counted.
    a.im.send(&mut a.ep, "sip:warm@contoso.com", "hi", t0)
        .expect("send");
    flush(&mut a, &mut b, t0);
    run_until(&mut a, &mut b, t0, t0 + Duration::from_secs(60));
    let now = t0 + Duration::from_secs(60);
    let before = heap();
    let uris: Vec<String> = (0..n).map(|i| format!("sip:bob{i}@contoso.com")).collect();
    for u in &uris {
        a.im.send(&mut a.ep, u, "hello", now).expect("send");
    }
    let delivered = flush(&mut a, &mut b, now);
    // Let the transactions end (timers D, J, ... fire well before the 10
    // minute idle timeout closes the sessions).
    run_until(&mut a, &mut b, now, now + Duration::from_secs(60));
    drop(uris);
    let grown = heap() - before;
    assert_eq!(a.im.session_count(), n + 1, "alice's sessions");
    (grown as f64 / n as f64, delivered)
}

// ----- main ------------------------------------------------------------------

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n: u64 = std::env::var("OCS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if test_mode { 20 } else { 2000 });
    const WINDOW: usize = 32;

    let (per_session, delivered) = memory_per_session(1000);

    let kamailio = Kamailio::get();
    let port = kamailio.port;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let mut p = rt.block_on(pair(port));
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("im");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ocs_latency_udp", |bch| {
        bch.iter_custom(|iters| {
            rt.block_on(batch(&mut p.alice, iters, 1))
                .latencies
                .iter()
                .sum()
        })
    });
    g.bench_function("ocs_window32_udp", |bch| {
        bch.iter_custom(|iters| rt.block_on(batch(&mut p.alice, iters, WINDOW)).wall)
    });
    g.finish();
    c.final_summary();

    // The summary: N messages each, ocs then SIPp.
    let seq = rt.block_on(batch(&mut p.alice, n.min(500), 1));
    let win = rt.block_on(batch(&mut p.alice, n, WINDOW));
    let bob_got = rt.block_on(p.close());
    let mut lat = seq.latencies.clone();
    lat.sort();
    let mean = lat.iter().map(Duration::as_secs_f64).sum::<f64>() / lat.len() as f64 * 1e6;
    let median = lat[lat.len() / 2].as_secs_f64() * 1e6;
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e6;
    let ocs_rate = win.delivered as f64 / win.wall.as_secs_f64();
    let outcome_rate = n as f64 / win.wall.as_secs_f64();
    let mut failed: Vec<String> = win
        .failed
        .iter()
        .chain(&seq.failed)
        .map(|(d, k)| format!("{k} x {d}"))
        .collect();
    failed.sort();
    println!(
        "ocs  ({} sequential messages): send_im to outcome: mean {mean:.0} us, median \
         {median:.0} us, p99 {p99:.0} us; delivered {} of {}",
        seq.latencies.len(),
        seq.delivered,
        seq.latencies.len()
    );
    println!(
        "ocs  ({n} messages, window {WINDOW}): {:.3} s, {outcome_rate:.0} outcomes/s, delivered {} \
         ({ocs_rate:.0} msg/s); bob received {bob_got} in all; failed: {}",
        win.wall.as_secs_f64(),
        win.delivered,
        if failed.is_empty() {
            "none".to_owned()
        } else {
            failed.join(", ")
        }
    );
    let (sipp_ok, sipp_failed, sipp_rate) = sipp_messages(port, n, WINDOW);
    println!(
        "sipp ({n} MESSAGE/407/MESSAGE/200 calls, -l {WINDOW}): {sipp_ok} successful, \
         {sipp_failed} failed, {sipp_rate:.0} successful calls/s"
    );
    let ratio = ocs_rate / sipp_rate;
    if win.delivered < n {
        println!(
            "im: ocs {ocs_rate:.0} msg/s, sipp {sipp_rate:.0} msg/s, ratio {ratio:.2} (goal >= 0.8) \
             -- only {} of {n} ocs messages were delivered (see `failed` above)",
            win.delivered
        );
    } else {
        println!(
            "im: ocs {ocs_rate:.0} msg/s, sipp {sipp_rate:.0} msg/s, ratio {ratio:.2} (goal >= 0.8)"
        );
    }
    println!(
        "im: memory per session ~{per_session:.0} bytes (1000 OCS sessions, {delivered} first \
         messages delivered in the INVITE)"
    );
    drop(kamailio);
}
