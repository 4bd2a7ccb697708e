//! The publish→notify round trip through Kamailio (issue 4, "Measure"):
//! two standard-dialect clients, alice publishes (`Client::set_status`),
//! bob watches her (`Client::watch`); one iteration is the time from
//! alice's `set_status` call to bob's `PresenceEvent::Changed` carrying the
//! new state, alternating busy and online.
//!
//! Kamailio: the one named by `OCS_KAMAILIO_PORT`, or, when unset, a fresh
//! one started with `scripts/kamailio.sh start` and stopped at the end.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};

#[path = "common/client.rs"]
mod bench_client;
#[path = "common/kamailio.rs"]
mod kamailio;
use bench_client::wait_for;
use kamailio::Kamailio;

/// A standard-dialect client for `user` (password `<user>pw`) over UDP.
fn client(user: &str, port: u16) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{:010x}", user.len() * 77),
    );
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new(user, &format!("{user}pw"))),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Udp,
    });
    cfg.allowed = vec![Transport::Udp];
    cfg.trace = std::env::var_os("OCS_SIP_TRACE").map(|d| {
        ocs_core::driver::TraceConfig::text(
            std::path::PathBuf::from(d).join(format!("{user}.trace")),
        )
    });
    Client::start(cfg).expect("client starts")
}

/// Reads events (at most 30 s) until `pred` accepts one, and returns it.
async fn next_matching(
    c: &mut Client,
    what: &str,
    pred: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    let r = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = c.next_event().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match r {
        Ok(Some(e)) => e,
        Ok(None) => panic!("waiting for {what}: client ended"),
        Err(_) => panic!("no {what} within 30 s"),
    }
}

fn registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { .. })
    )
}

fn changed_to(e: &ClientEvent, s: State) -> bool {
    matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. })
        if presence.state() == s)
}

/// Alice and bob, registered, bob watching alice and having seen her
/// first state; `state` is the state alice last published.
struct Pair {
    alice: Client,
    bob: Client,
    state: State,
}

impl Pair {
    async fn new(port: u16) -> Pair {
        let mut alice = client("alice", port);
        let mut bob = client("bob", port);
        wait_for(&mut alice, "alice registered", registered).await;
        wait_for(&mut bob, "bob registered", registered).await;
        alice
            .set_status(State::Online, None)
            .await
            .expect("publish");
        wait_for(&mut alice, "publication accepted", |e| {
            matches!(
                e,
                ClientEvent::Presence(PresenceEvent::Published {
                    state: State::Online,
                    ..
                })
            )
        })
        .await;
        // A refused watch (Kamailio's SQLite "database is locked") is set
        // up again.
        for attempt in 1..=5 {
            bob.watch("sip:alice@127.0.0.1").await.expect("watch");
            let e = next_matching(&mut bob, "alice online", |e| {
                changed_to(e, State::Online)
                    || matches!(e, ClientEvent::Presence(PresenceEvent::WatchEnded { .. }))
            })
            .await;
            if changed_to(&e, State::Online) {
                break;
            }
            assert!(attempt < 5, "Kamailio refused the watch five times: {e:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Pair {
            alice,
            bob,
            state: State::Online,
        }
    }

    /// One round trip: alice switches busy↔online; the time until bob sees
    /// it. Kamailio's SQLite back end sometimes answers 500 ("database is
    /// locked" while its presence timer writes): a refused publication is
    /// published again and a refused watch set up again, and that attempt
    /// is not counted.
    #[allow(clippy::disallowed_methods)] // benches may read the clock
    async fn round_trip(&mut self) -> Duration {
        let next = if self.state == State::Busy {
            State::Online
        } else {
            State::Busy
        };
        for _attempt in 0..5 {
            let t0 = Instant::now();
            self.alice.set_status(next, None).await.expect("publish");
            let outcome = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    tokio::select! {
                        e = self.bob.next_event() => match e {
                            Some(e) if changed_to(&e, next) => return Ok(t0.elapsed()),
                            Some(ClientEvent::Presence(PresenceEvent::WatchEnded { .. })) => {
                                return Err("watch ended");
                            }
                            Some(_) => {}
                            None => panic!("bob's client ended"),
                        },
                        e = self.alice.next_event() => match e {
                            Some(ClientEvent::Presence(PresenceEvent::PublishFailed { .. })) => {
                                return Err("publish failed");
                            }
                            Some(_) => {}
                            None => panic!("alice's client ended"),
                        },
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("bob did not see alice {next:?} within 30 s"));
            match outcome {
                Ok(took) => {
                    self.state = next;
                    return took;
                }
                Err("watch ended") => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.bob.watch("sip:alice@127.0.0.1").await.expect("watch");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("Kamailio refused five attempts in a row");
    }

    async fn stop(self) {
        for mut c in [self.alice, self.bob] {
            c.sign_out();
            wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
        }
    }
}

fn main() {
    let kamailio = Kamailio::get();
    let port = kamailio.port;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut pair = rt.block_on(Pair::new(port));

    // Kamailio (subs_db_mode 2, tests/peers/kamailio) sends the NOTIFY as it
    // handles the PUBLISH; each iteration still waits for bob's event, so
    // flat sampling.
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut all: Vec<Duration> = Vec::new();
    {
        let mut g = c.benchmark_group("presence");
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function("publish_notify_kamailio_udp", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = rt.block_on(pair.round_trip());
                    all.push(d);
                    total += d;
                }
                total
            })
        });
        g.finish();
    }
    c.final_summary();
    rt.block_on(pair.stop());
    all.sort();
    if let Some(m) = all.get(all.len() / 2) {
        println!(
            "presence: publish->notify through Kamailio median {} us ({} round trips)",
            m.as_micros(),
            all.len()
        );
    }
    drop(kamailio);
}
