//! IMs through a bad link and a server restart (issue 25, part 3): alice and
//! bob each behind a proxy of our own (`common::lossy`) in front of a real
//! Kamailio (its own instance, registrations kept by source address as
//! behind a NAT). Over UDP 5 % of datagrams are lost each way, 1 %
//! duplicated, 2 % held back; over TCP connections are cut now and then.
//! Alice sends 1,000 numbered IMs to bob while Kamailio is killed and
//! started again once. Every IM must end in exactly one outcome (delivered,
//! or failed with a reason), no delivered IM may be missing at bob, and bob
//! must show none twice.
//!
//! Ignored by default (needs the Kamailio Debian package); `scripts/test.sh`
//! runs it. Each run prints one line `loss-ims {...}` with the counts
//! (README "Faults").
#![cfg(feature = "tokio")]

mod common;
use common::kamailio::Kamailio;
use common::lossy::{CuttingTcp, Faults, LossyUdp};

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocs_core::Error;
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::messaging::ImEvent;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};

const IMS: usize = 1000;

fn client(user: &str, via: SocketAddr, transport: Transport) -> Client {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@127.0.0.1"),
        Dialect::Standard,
        &format!("{user}-loss"),
    );
    let mut ep = EndpointConfig::new(reg, Some(Credentials::new(user, &format!("{user}pw"))));
    // Within the proxy's one-second refusal (see common::lossy).
    ep.udp_keep_alive = Some(Duration::from_millis(400));
    let mut cfg = ClientConfig::new(ep);
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(via.port()),
        transport,
    });
    cfg.allowed = vec![transport];
    cfg.connect_timeout = Duration::from_secs(2);
    // OCS_SIP_TRACE=DIR keeps each client's SIP trace (to see a failure).
    cfg.trace = std::env::var_os("OCS_SIP_TRACE").map(|d| {
        ocs_core::driver::TraceConfig::text(
            std::path::PathBuf::from(d).join(format!("{user}.trace")),
        )
    });
    Client::start(cfg).expect("client starts")
}

async fn registered(c: &mut Client, who: &str) {
    let r = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = c.next_event().await {
            if matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::Registered { .. })
            ) {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{who} did not register through the proxy");
}

/// A short name for an outcome, to count them by.
fn outcome_name(r: &Result<(), Error>) -> String {
    match r {
        Ok(()) => "delivered".into(),
        Err(Error::NotDelivered { reason, .. }) => format!("failed: {reason:?}"),
        Err(e) => format!("failed: {e}"),
    }
}

enum Proxy {
    Udp(LossyUdp),
    Tcp(CuttingTcp),
}

impl Proxy {
    async fn start(transport: Transport, server: SocketAddr, seed: u64) -> Proxy {
        match transport {
            Transport::Udp => Proxy::Udp(
                LossyUdp::start(
                    server,
                    Faults {
                        loss: 0.05,
                        duplicate: 0.01,
                        reorder: 0.02,
                        cut: 0.0,
                        seed,
                    },
                )
                .await,
            ),
            _ => Proxy::Tcp(
                CuttingTcp::start(
                    server,
                    Faults {
                        loss: 0.0,
                        duplicate: 0.0,
                        reorder: 0.0,
                        // About one cut per 1,500 pieces forwarded: a few
                        // per client per run.
                        cut: 1.0 / 1500.0,
                        seed,
                    },
                )
                .await,
            ),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Proxy::Udp(p) => p.addr,
            Proxy::Tcp(p) => p.addr,
        }
    }

    fn counts(&self) -> String {
        match self {
            Proxy::Udp(p) => p.counts.json(),
            Proxy::Tcp(p) => p.counts.json(),
        }
    }
}

async fn through_loss_and_a_restart(transport: Transport) {
    let k = Kamailio::start(
        &format!("loss-{}", transport.as_str()),
        if transport == Transport::Udp {
            18060
        } else {
            18560
        },
        true,
    );
    let server: SocketAddr = ([127, 0, 0, 1], k.port).into();
    let pa = Proxy::start(transport, server, 11).await;
    let pb = Proxy::start(transport, server, 29).await;
    let mut alice = client("alice", pa.addr(), transport);
    let mut bob = client("bob", pb.addr(), transport);
    registered(&mut alice, "alice").await;
    registered(&mut bob, "bob").await;

    // Bob counts what he is shown; alice's events are read (and counted)
    // so none pile up.
    let shown: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let bob_handle = bob.handle();
    let bob_reader = {
        let shown = shown.clone();
        tokio::spawn(async move {
            while let Some(e) = bob.next_event().await {
                if let ClientEvent::Im(ImEvent::Received { content, .. }) = e {
                    *shown
                        .lock()
                        .expect("lock")
                        .entry(content.plain_text.to_string())
                        .or_default() += 1;
                }
            }
        })
    };
    let alice_handle = alice.handle();
    let reconnects = Arc::new(Mutex::new(0usize));
    let alice_reader = {
        let reconnects = reconnects.clone();
        tokio::spawn(async move {
            while let Some(e) = alice.next_event().await {
                if matches!(e, ClientEvent::Reconnected { .. }) {
                    *reconnects.lock().expect("lock") += 1;
                }
            }
        })
    };

    // 1,000 IMs at about 100 a second, at most 50 waiting at once;
    // Kamailio restarts after the 300th.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut delivered = Vec::new();
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..IMS {
        if n == 300 {
            k.down();
            tokio::time::sleep(Duration::from_secs(2)).await;
            k.up();
        }
        while waiting.len() >= 50 {
            let (text, r): (String, Result<(), Error>) =
                waiting.join_next().await.expect("one").expect("joined");
            if r.is_ok() {
                delivered.push(text);
            }
            *outcomes.entry(outcome_name(&r)).or_default() += 1;
        }
        let text = format!("im {n:04}");
        match alice_handle.send_im("sip:bob@127.0.0.1", &text).await {
            Ok(p) => {
                waiting.spawn(async move { (text, p.outcome().await) });
            }
            Err(e) => *outcomes.entry(format!("refused: {e}")).or_default() += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every outcome, within the longest a MESSAGE may wait (Timer F, 32 s).
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(j) = waiting.join_next().await {
            let (text, r) = j.expect("joined");
            if r.is_ok() {
                delivered.push(text);
            }
            *outcomes.entry(outcome_name(&r)).or_default() += 1;
        }
    })
    .await;
    assert!(
        rest.is_ok(),
        "IMs without an outcome after 60 s: {}",
        waiting.len()
    );
    // Late copies would arrive within a second or two.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ended: usize = outcomes.values().sum();
    let shown = shown.lock().expect("lock").clone();
    let twice: Vec<_> = shown.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<_> = delivered
        .iter()
        .filter(|t| !shown.contains_key(*t))
        .collect();
    println!(
        "loss-ims {{\"transport\":\"{}\",\"sent\":{IMS},\"ended\":{ended},\"outcomes\":{:?},\"shown_to_bob\":{},\"shown_twice\":{},\"delivered_not_shown\":{},\"alice_reconnects\":{},\"proxy_alice\":{},\"proxy_bob\":{}}}",
        transport.as_str(),
        outcomes,
        shown.len(),
        twice.len(),
        missing.len(),
        reconnects.lock().expect("lock"),
        pa.counts(),
        pb.counts(),
    );
    assert_eq!(
        ended, IMS,
        "every IM ends in exactly one outcome: {outcomes:?}"
    );
    assert!(twice.is_empty(), "shown twice to bob: {twice:?}");
    assert!(missing.is_empty(), "delivered but never shown: {missing:?}");
    assert!(
        // A sanity check: the link and the restart cost some, not most.
        outcomes.get("delivered").copied().unwrap_or(0) >= IMS * 4 / 10,
        "most IMs get through: {outcomes:?}"
    );
    alice_handle.sign_out();
    bob_handle.sign_out();
    let _ = tokio::time::timeout(Duration::from_secs(10), alice_reader).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), bob_reader).await;
    drop(k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio: run scripts/test.sh"]
async fn a_thousand_ims_through_udp_loss_and_a_restart() {
    through_loss_and_a_restart(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio: run scripts/test.sh"]
async fn a_thousand_ims_through_tcp_cuts_and_a_restart() {
    through_loss_and_a_restart(Transport::Tcp).await;
}
