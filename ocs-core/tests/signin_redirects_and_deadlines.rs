//! Sign-in that never hangs, over real loopback sockets: a 301 to a pool
//! member by host name is followed (RFC 3263 resolution, new connection,
//! new handshake), redirect loops end, and every step (TCP connect, TLS
//! handshake, each REGISTER, the whole sign-in) has a deadline whose
//! error names the step and the target.
#![cfg(feature = "tokio")]

mod common;
use common::client::wait_for;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ocs_core::discovery::Transport;
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::register::{Credentials, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An OCS-dialect server with alice; `redirect_to` makes it a Director.
async fn sim(seed: u64, redirect_to: Option<String>) -> SimHandle {
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.redirect_to = redirect_to;
    let mut r = Registrar::new(cfg, Rng::from_seed(seed), [seed as u8; 32]);
    r.add_user("alice", "CONTOSO", "alicepw");
    serve(
        SimServer::new(r, Rng::from_seed(seed + 1)),
        LOCALHOST,
        0,
        None,
    )
    .await
    .expect("serve")
}

fn config(host: &str, port: u16, transport: Transport) -> ClientConfig {
    ClientConfig::builder("sip:alice@contoso.com")
        .credentials("CONTOSO\\alice", "alicepw")
        .server(&format!("{host}:{port}"), transport)
        .build()
        .expect("valid configuration")
}

/// Reads events until the client stops; returns them with the sign-in
/// failure's text.
async fn until_stopped(c: &mut Client) -> (Vec<ClientEvent>, String) {
    let seen = wait_for(c, "the end of sign-in", |e| *e == ClientEvent::Stopped).await;
    let failure = failure_of(&seen).to_string();
    (seen, failure)
}

/// The error the sign-in failed with.
fn failure_of(seen: &[ClientEvent]) -> ocs_core::Error {
    seen.iter()
        .find_map(|e| match e {
            ClientEvent::Registration(RegistrationEvent::Failed(e)) => Some(e.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failure in {seen:?}"))
}

#[tokio::test]
async fn a_redirect_to_a_host_name_is_followed_with_a_fresh_handshake() {
    let home = sim(31, None).await;
    let director = sim(
        41,
        Some(format!("localhost:{};transport=tcp", home.tcp.port())),
    )
    .await;
    let mut c =
        Client::start(config("127.0.0.1", director.tcp.port(), Transport::Tcp)).expect("client");
    let seen = wait_for(&mut c, "registration at the home pool", |e| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { .. })
        )
    })
    .await;
    let redirected = seen.iter().position(|e| {
        matches!(e, ClientEvent::Registration(RegistrationEvent::Redirected(r))
            if r.host == "localhost" && r.port == Some(home.tcp.port()) && r.transport == Transport::Tcp)
    });
    let connected_home = seen.iter().position(|e| {
        matches!(e, ClientEvent::Connected { host, addr, .. }
            if host == "localhost" && addr.port() == home.tcp.port())
    });
    assert!(
        matches!((redirected, connected_home), (Some(r), Some(h)) if r < h),
        "{seen:?}"
    );
    // The home pool holds the binding (it authenticated alice itself);
    // the Director holds none.
    let at_home = home
        .with(|s, now| {
            s.registrar()
                .binding("sip:alice@contoso.com", now)
                .is_some()
        })
        .await;
    let at_director = director
        .with(|s, now| {
            s.registrar()
                .binding("sip:alice@contoso.com", now)
                .is_some()
        })
        .await;
    assert_eq!((at_home, at_director), (Some(true), Some(false)));
    let violations = home.with(|s, _| s.signature_violations()).await;
    assert_eq!(violations, Some(0));
    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}

#[tokio::test]
async fn a_redirect_loop_ends_sign_in() {
    // Two Directors sending alice to each other. The second one's port is
    // only known once it listens, so the first one learns it afterwards.
    let b_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    let b_port = b_listener.local_addr().expect("addr").port();
    drop(b_listener);
    let a = sim(51, Some(format!("localhost:{b_port};transport=tcp"))).await;
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    cfg.redirect_to = Some(format!("127.0.0.1:{};transport=tcp", a.tcp.port()));
    let mut r = Registrar::new(cfg, Rng::from_seed(61), [61; 32]);
    r.add_user("alice", "CONTOSO", "alicepw");
    let _b = serve(
        SimServer::new(r, Rng::from_seed(62)),
        LOCALHOST,
        b_port,
        None,
    )
    .await
    .expect("serve b");
    let mut c = Client::start(config("127.0.0.1", a.tcp.port(), Transport::Tcp)).expect("client");
    let (seen, failure) = until_stopped(&mut c).await;
    assert!(failure.contains("redirect loop"), "{failure}");
    assert!(matches!(
        failure_of(&seen),
        ocs_core::Error::PeerMisbehaved {
            kind: ocs_core::error::Misbehavior::RedirectLoop,
            ..
        }
    ));
    let redirects = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::Redirected(_))
            )
        })
        .count();
    assert_eq!(redirects, 3, "{seen:?}");
}

/// A port that accepts TCP connections and never says anything.
async fn black_hole() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_silent_server_fails_each_step_within_its_deadline() {
    let (hole, _task) = black_hole().await;

    // TCP: the REGISTER gets no answer.
    let mut cfg = config("127.0.0.1", hole.port(), Transport::Tcp);
    cfg.endpoint.register.register_timeout = Duration::from_millis(800);
    let started = wall_now();
    let mut c = Client::start(cfg).expect("client");
    let (_, failure) = until_stopped(&mut c).await;
    assert!(
        failure.contains("REGISTER got no final answer within 800 ms"),
        "{failure}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // TLS: the handshake never completes.
    let mut cfg = config("localhost", hole.port(), Transport::Tls);
    cfg.tls_handshake_timeout = Duration::from_secs(1);
    let started = wall_now();
    let mut c = Client::start(cfg).expect("client");
    let (seen, failure) = until_stopped(&mut c).await;
    assert!(
        failure.contains(&format!(
            "TLS handshake with localhost:{} timed out after 1 s",
            hole.port()
        )),
        "{failure}"
    );
    // The step that failed is reaching the server.
    assert!(matches!(
        failure_of(&seen),
        ocs_core::Error::Transport {
            kind: ocs_core::error::TransportFailure::Connect,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_secs(5));

    // The whole sign-in has a limit of its own, shorter here than the
    // REGISTER's.
    let mut cfg = config("127.0.0.1", hole.port(), Transport::Tcp);
    cfg.sign_in_timeout = Some(Duration::from_millis(700));
    let started = wall_now();
    let mut c = Client::start(cfg).expect("client");
    let (seen, failure) = until_stopped(&mut c).await;
    assert!(
        failure.contains("sign-in did not complete within 700 ms"),
        "{failure}"
    );
    assert!(matches!(
        failure_of(&seen),
        ocs_core::Error::Transport {
            kind: ocs_core::error::TransportFailure::TimedOut,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_closed_port_and_a_black_holed_redirect_target_fail_with_the_step() {
    // Closed: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        l.local_addr().expect("addr").port()
    };
    let mut c = Client::start(config("127.0.0.1", closed, Transport::Tcp)).expect("client");
    let (_, failure) = until_stopped(&mut c).await;
    assert!(
        failure.contains(&format!("TCP connect to 127.0.0.1:{closed}")),
        "{failure}"
    );

    // A Director sending alice to a pool member that is down.
    let director = sim(101, Some(format!("localhost:{closed};transport=tcp"))).await;
    let mut c =
        Client::start(config("127.0.0.1", director.tcp.port(), Transport::Tcp)).expect("client");
    let (seen, failure) = until_stopped(&mut c).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Redirected(_))
        )),
        "{seen:?}"
    );
    assert!(failure.contains(&format!(":{closed}")), "{failure}");

    // A Director sending alice to a pool member that never answers.
    let (hole, _task) = black_hole().await;
    let director = sim(71, Some(format!("localhost:{};transport=tcp", hole.port()))).await;
    let mut cfg = config("127.0.0.1", director.tcp.port(), Transport::Tcp);
    cfg.endpoint.register.register_timeout = Duration::from_secs(1);
    let started = wall_now();
    let mut c = Client::start(cfg).expect("client");
    let (seen, failure) = until_stopped(&mut c).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Redirected(_))
        )),
        "{seen:?}"
    );
    assert!(
        failure.contains("REGISTER got no final answer within 1 s"),
        "{failure}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_redirect_without_a_port_is_resolved_through_srv() {
    use common::dns::{Rr, zone};
    let home = sim(81, None).await;
    let director = sim(91, Some("fe2.contoso.test;transport=tcp".to_owned())).await;
    // RFC 3263: no port in the Contact, so SRV for _sip._tcp first; its
    // target's A record leads to the home pool's real port.
    let dns = common::dns::serve([zone(
        "contoso.test",
        &[
            Rr::Srv(
                "_sip._tcp.fe2.contoso.test",
                10,
                0,
                home.tcp.port(),
                "pool1.contoso.test",
            ),
            Rr::A("pool1.contoso.test", [127, 0, 0, 1]),
        ],
    )])
    .await;
    let mut cfg = config("127.0.0.1", director.tcp.port(), Transport::Tcp);
    cfg.nameserver = Some(dns.addr);
    let mut c = Client::start(cfg).expect("client");
    let seen = wait_for(&mut c, "registration at the home pool", |e| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { .. })
        )
    })
    .await;
    assert!(
        seen.iter().any(
            |e| matches!(e, ClientEvent::Connected { host, addr, source, .. }
            if host == "pool1.contoso.test"
                && addr.port() == home.tcp.port()
                && source == "SRV _sip._tcp.fe2.contoso.test")
        ),
        "{seen:?}"
    );
}

/// The wall clock, which is what these deadlines are about.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

#[tokio::test]
async fn the_sign_in_deadline_waits_while_the_user_is_asked_for_a_password() {
    let server = sim(111, None).await;
    let mut cfg = config("127.0.0.1", server.tcp.port(), Transport::Tcp);
    cfg.endpoint.credentials = None;
    cfg.sign_in_timeout = Some(Duration::from_millis(300));
    let mut c = Client::start(cfg).expect("client");
    wait_for(&mut c, "the question", |e| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { .. })
        )
    })
    .await;
    // The user takes longer than the whole sign-in may.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.set_credentials(Credentials::new("CONTOSO\\alice", "alicepw"));
    let seen = wait_for(&mut c, "registration", |e| {
        matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { .. }) | ClientEvent::Stopped
        )
    })
    .await;
    assert!(
        matches!(
            seen.last(),
            Some(ClientEvent::Registration(
                RegistrationEvent::Registered { .. }
            ))
        ),
        "{seen:?}"
    );
}
