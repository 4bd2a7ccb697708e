//! Whole sessions on a simulated clock: sans-IO [`Client`]s against the
//! embedded server, bytes passed by hand, no sockets, no tokio. A day of a
//! session runs in microseconds.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use ocs_core::client::{Client, ClientEvent, Config, Connected, Io};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
use ocs_core::sip::Message;

/// Where the simulated server listens.
pub const SERVER: &str = "192.0.2.1:5061";

/// One user's client and what it saw.
pub struct User {
    /// `sip:NAME@contoso.com`.
    pub aor: String,
    /// The session.
    pub client: Client,
    /// Its transport address as the server sees it.
    pub peer: SocketAddr,
    /// Whether a connection is up.
    pub connected: bool,
    /// Every event, with the time since the start.
    pub events: Vec<(Duration, ClientEvent)>,
    /// How many events [`Pair::until`] has looked at already.
    pub seen: usize,
    /// Every message it sent, in order.
    pub sent: Vec<Message>,
    /// Every message the server sent it, in order.
    pub received: Vec<Message>,
    /// CRLF keep-alives it sent.
    pub keep_alives: usize,
    /// HTTP the client asked for (`abs URL` or `custom-states URL`), with
    /// when; the test answers them.
    pub http: Vec<(Duration, String)>,
}

/// Clients and the embedded server on one simulated clock.
pub struct Pair {
    /// The server.
    pub server: SimServer,
    /// The users, in the order added.
    pub users: Vec<User>,
    /// The simulated now.
    pub now: Instant,
    /// When it started.
    pub start: Instant,
    /// Refuse to connect (a server that is down).
    pub down: bool,
    /// The server hears nothing more from the clients (a hung server).
    pub deaf: bool,
    /// What the server sent and the clients have not read yet.
    to_clients: VecDeque<(SocketAddr, Vec<u8>)>,
}

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    // Any instant will do; nothing waits on it.
    Instant::now()
}

impl Pair {
    /// The embedded server (NTLM, OCS 2007 R2 defaults) with these users
    /// (password `NAMEpw`, NTLM domain CONTOSO).
    pub fn new(names: &[&str]) -> Pair {
        let mut r = Registrar::new(
            RegistrarConfig::ocs("contoso.com"),
            Rng::from_seed(1),
            [7; 32],
        );
        for n in names {
            r.add_user(n, "CONTOSO", &format!("{n}pw"));
        }
        let start = t0();
        Pair {
            server: SimServer::new(r, Rng::from_seed(2)),
            users: Vec::new(),
            now: start,
            start,
            down: false,
            deaf: false,
            to_clients: VecDeque::new(),
        }
    }

    /// The session settings of `name` against this server.
    pub fn config(name: &str) -> Config {
        let reg = RegisterConfig::new(
            &format!("sip:{name}@contoso.com"),
            Dialect::Ocs,
            &format!(
                "{:010x}",
                name.len() * 0x1234_5678 + name.as_bytes()[0] as usize
            ),
        );
        let mut cfg = Config::new(EndpointConfig::new(
            reg,
            Some(Credentials::new(
                &format!("CONTOSO\\{name}"),
                &format!("{name}pw"),
            )),
        ));
        let server: SocketAddr = SERVER.parse().expect("address");
        cfg.server = Some(ServerConfig {
            host: server.ip().to_string(),
            port: Some(server.port()),
            transport: Transport::Tcp,
        });
        cfg
    }

    /// Adds a user with `cfg` and signs it in as far as the server
    /// answers; returns its index.
    pub fn add(&mut self, cfg: Config) -> usize {
        let i = self.add_quiet(cfg);
        self.flush();
        i
    }

    /// Adds a user and starts signing it in without delivering anything.
    pub fn add_quiet(&mut self, cfg: Config) -> usize {
        let i = self.users.len();
        let aor = cfg.endpoint.register.aor.clone();
        let client = Client::new(
            cfg,
            100 + i as u64,
            [i as u8 + 1; 32],
            self.now,
            SystemTime::UNIX_EPOCH,
        );
        self.users.push(User {
            aor,
            client,
            peer: SocketAddr::from(([198, 51, 100, i as u8 + 1], 40000)),
            connected: false,
            events: Vec::new(),
            seen: 0,
            sent: Vec::new(),
            received: Vec::new(),
            keep_alives: 0,
            http: Vec::new(),
        });
        self.users[i].client.start(self.now);
        i
    }

    /// The time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Delivers everything in flight, both ways, until quiet.
    pub fn flush(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence after 100,000 steps");
    }

    /// Delivers messages one at a time until `user` has seen an event
    /// `pred` accepts, leaving the rest in flight (a server answer that is
    /// still on its way); returns it.
    pub fn flush_until(&mut self, user: usize, pred: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        loop {
            let u = &mut self.users[user];
            if let Some(k) = u.events[u.seen..].iter().position(|(_, e)| pred(e)) {
                u.seen += k + 1;
                return u.events[u.seen - 1].1.clone();
            }
            let aor = u.aor.clone();
            assert!(self.step(), "{aor}: went quiet without the event");
        }
    }

    /// One round: every client's I/O, sends and events, then one message
    /// from the server. False when nothing moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        let elapsed = self.elapsed();
        let down = self.down;
        for u in &mut self.users {
            while let Some(io) = u.client.poll_io() {
                moved = true;
                match io {
                    Io::Connect(_) if down => u.client.handle_connect_failed(
                        ocs_core::error::Error::transport(
                            ocs_core::error::TransportFailure::Connect,
                            "TCP connect to 192.0.2.1:5061: refused",
                        ),
                        now,
                    ),
                    Io::Connect(_) => {
                        u.connected = true;
                        u.client.handle_connected(
                            Connected {
                                host: "192.0.2.1".into(),
                                addr: SERVER.parse().expect("address"),
                                transport: Transport::Tcp,
                                source: "manual configuration".into(),
                                local: u.peer,
                            },
                            now,
                        );
                    }
                    Io::Close => {
                        u.connected = false;
                        self.server.handle_disconnect(u.peer);
                    }
                    Io::DownloadAddressBook { url } => u.http.push((elapsed, format!("abs {url}"))),
                    Io::FetchCustomStates { url } => {
                        u.http.push((elapsed, format!("custom-states {url}")))
                    }
                    _ => {}
                }
            }
            while let Some(b) = u.client.poll_transmit() {
                moved = true;
                if u.connected {
                    if b.iter().all(|c| *c == b'\r' || *c == b'\n') {
                        u.keep_alives += 1;
                    } else if let Ok(m) = Message::parse(&b) {
                        u.sent.push(m);
                    }
                    if !self.deaf {
                        self.server.handle_stream(u.peer, &b, now);
                    }
                }
            }
            while let Some(e) = u.client.poll_event() {
                moved = true;
                u.events.push((elapsed, e));
            }
        }
        while let Some(out) = self.server.poll_transmit() {
            self.to_clients.push_back(out);
        }
        if let Some((peer, b)) = self.to_clients.pop_front() {
            moved = true;
            if let Some(u) = self
                .users
                .iter_mut()
                .find(|u| u.peer == peer && u.connected)
            {
                if let Ok(m) = Message::parse(&b) {
                    u.received.push(m);
                }
                u.client.handle_bytes(&b, now);
                // What it made of this message, before anything else moves.
                while let Some(e) = u.client.poll_event() {
                    u.events.push((elapsed, e));
                }
            }
        }
        moved
    }

    /// Runs the clock forward by `d`, firing every timer in order.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.flush();
        loop {
            let next = self
                .users
                .iter()
                .filter_map(|u| u.client.poll_timeout())
                .chain(self.server.poll_timeout())
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = at.max(self.now);
                    for u in &mut self.users {
                        if u.client.poll_timeout().is_some_and(|t| t <= self.now) {
                            u.client.handle_timeout(self.now);
                        }
                    }
                    self.server.handle_timeout(self.now);
                    self.flush();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    /// Runs the clock until `user` has seen an event `pred` accepts (at
    /// most `limit` of simulated time); returns it.
    pub fn until(
        &mut self,
        user: usize,
        limit: Duration,
        pred: impl Fn(&ClientEvent) -> bool,
    ) -> ClientEvent {
        let end = self.now + limit;
        loop {
            let u = &mut self.users[user];
            if let Some(k) = u.events[u.seen..].iter().position(|(_, e)| pred(e)) {
                u.seen += k + 1;
                return u.events[u.seen - 1].1.clone();
            }
            if self.now >= end {
                let tail: Vec<_> = u.events.iter().rev().take(8).collect();
                panic!(
                    "{}: nothing matched within {limit:?}; last events {tail:#?}",
                    u.aor
                );
            }
            self.run_for(Duration::from_millis(100).min(end - self.now));
        }
    }
}
