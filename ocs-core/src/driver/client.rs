//! The client driver: one tokio task owns the sans-IO session
//! ([`crate::client::Client`]) and does its I/O: the connection (UDP, TCP
//! or TLS), DNS, HTTP for custom states and the address book, the trace and
//! one timer. Commands come in from [`ClientHandle`]s over a channel,
//! events go out over another.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::autodiscover::AUTODISCOVER_TIMEOUT;
use super::background::{AbortOnDrop, AbsState};
use super::config::ClientConfig;
use super::conn::Conn;
use super::dns::Resolver;
use std::collections::HashMap;
use std::hash::Hash;

use super::handle::{ClientHandle, Command, Pending, Publish};
pub use crate::client::{AddressBookEvent, ClientEvent};
use crate::client::{Client as Session, ConnectTarget, Connected, Io};
use crate::discovery::Candidate;
use crate::error::Error;
use crate::error::TransportFailure;
use crate::log::log;
use crate::messaging::{ImEvent, MessageId};
use crate::presence::model::State;
use crate::presence_agent::{ContactOpId, PresenceEvent, PublishId, WatchId};
use crate::rng::Rng;
use crate::sip::SipUri;

/// A running client. Dropping it stops the task (without un-registering;
/// call [`ClientHandle::sign_out`] first for a clean exit).
#[derive(Debug)]
pub struct Client {
    handle: ClientHandle,
    events: mpsc::UnboundedReceiver<Box<ClientEvent>>,
    task: JoinHandle<()>,
}

impl std::ops::Deref for Client {
    type Target = ClientHandle;

    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Starts the client task on the current tokio runtime: discover,
    /// connect, register.
    pub fn start(cfg: ClientConfig) -> Result<Client, Error> {
        let mut entropy = [0u8; 32];
        getrandom::fill(&mut entropy).map_err(|e| {
            Error::transport(TransportFailure::System, format!("no OS randomness: {e}"))
        })?;
        let seed = u64::from_le_bytes(entropy[..8].try_into().unwrap_or([0; 8]));
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| {
            Error::transport(TransportFailure::System, format!("no OS randomness: {e}"))
        })?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        #[allow(clippy::disallowed_methods)]
        let (now, wall) = (Instant::now(), SystemTime::now());
        let (session_cfg, cfg, authenticator, trace) = cfg.split();
        let mut session = Session::new(session_cfg, seed, secret, now, wall);
        if let Some(f) = &authenticator {
            session.set_authenticator((f.0)());
        }
        let trace = trace.map(super::trace::TraceFile::new);
        let task = Task {
            session,
            cfg,
            tls: None,
            resolver: None,
            rng: Rng::from_seed(seed ^ 0x5eed),
            conn: None,
            events: ev_tx,
            custom_states_fetch: None,
            #[cfg(feature = "cert-provisioning")]
            certificate_job: None,
            trace,
            abs: AbsState {
                book: None,
                stored: None,
                run: None,
                tx: None,
                rx: None,
            },
            contact_replies: std::collections::HashMap::new(),
            waiting: Waiting::default(),
        };
        // Boxed: an async fn's future keeps its by-value arguments apart
        // from its running state, so `run(self)` held the task's 8 KB of
        // state twice (16 KB per client); behind a box it is held once.
        let handle = tokio::spawn(Box::new(task).run(cmd_rx));
        Ok(Client {
            handle: ClientHandle { cmds: cmd_tx },
            events: ev_rx,
            task: handle,
        })
    }

    /// The next event; `None` once the task has ended and all events were
    /// read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await.map(|e| *e)
    }

    /// Reads events until the first sign-in has succeeded and returns
    /// them (the `Registered` event last), or the reason it failed: the
    /// server's refusal, a step that ran out of time, credentials that are
    /// missing or were refused.
    pub async fn signed_in(&mut self) -> Result<Vec<ClientEvent>, Error> {
        let mut seen = Vec::new();
        while let Some(e) = self.next_event().await {
            let outcome = e.sign_in_outcome();
            seen.push(e);
            match outcome {
                Some(Ok(())) => return Ok(seen),
                Some(Err(err)) => return Err(err),
                None => {}
            }
        }
        Err(Error::Stopped)
    }

    /// A cloneable handle for commands (see [`ClientHandle`]).
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }
}

/// The driver's side of one client: sockets, TLS, DNS, HTTP and timers
/// around the sans-IO [`Session`], which makes every protocol decision.
pub(super) struct Task {
    pub(super) session: Session,
    pub(super) cfg: super::config::DriverSettings,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Made at the first lookup: a client given its server as an address
    /// never needs one, and each costs about 40 KB (`ocs load`).
    pub(super) resolver: Option<Resolver>,
    pub(super) rng: Rng,
    pub(super) conn: Option<Conn>,
    /// Boxed for the same reason as the commands: 32 events by value were
    /// 4.9 KB per client.
    pub(super) events: mpsc::UnboundedSender<Box<ClientEvent>>,
    /// The running CustomStateURL load (aborted when the task ends).
    pub(super) custom_states_fetch: Option<AbortOnDrop>,
    /// Certificate provisioning under way.
    #[cfg(feature = "cert-provisioning")]
    pub(super) certificate_job: Option<AbortOnDrop>,
    /// The SIP trace, when configured.
    pub(super) trace: Option<super::trace::TraceFile>,
    /// The address-book download.
    pub(super) abs: AbsState,
    /// Callers waiting for their contact-list change.
    pub(super) contact_replies:
        std::collections::HashMap<ContactOpId, oneshot::Sender<Result<Option<u32>, Error>>>,
    /// The outcomes [`Pending`] commands wait for.
    pub(super) waiting: Waiting,
}

type Waiters<I, T> = HashMap<I, oneshot::Sender<Result<T, Error>>>;

/// Where each command's outcome goes once its event arrives. Registered
/// while the command is handled, before the session's events are read, so
/// no outcome can pass by unseen.
#[derive(Default)]
pub(super) struct Waiting {
    ims: Waiters<MessageId, ()>,
    publications: Waiters<PublishId, State>,
    watches: Waiters<WatchId, ()>,
}

/// A [`Pending`] for command `id`, its outcome registered in `waiters`.
fn pending<I: Copy + Eq + Hash, T>(waiters: &mut Waiters<I, T>, id: I) -> Pending<I, T> {
    let (tx, rx) = oneshot::channel();
    waiters.insert(id, tx);
    Pending { id, outcome: rx }
}

/// Hands command `id` its outcome (a caller that stopped waiting misses
/// nothing: the event says the same).
fn settle<I: Eq + Hash, T>(waiters: &mut Waiters<I, T>, id: &I, outcome: Result<T, Error>) {
    if let Some(tx) = waiters.remove(id) {
        let _ = tx.send(outcome);
    }
}

#[allow(clippy::disallowed_methods)]
pub(super) fn now() -> Instant {
    // The driver is the one place allowed to read the clock.
    Instant::now()
}

impl Task {
    fn emit(&mut self, e: ClientEvent) {
        let _ = self.events.send(Box::new(e));
    }

    async fn run(mut self: Box<Self>, mut cmds: mpsc::UnboundedReceiver<Box<Command>>) {
        self.session.start(now());
        let mut abs_rx = self.abs.rx.take();
        self.load_stored_address_book();
        loop {
            if !self.flush().await {
                return;
            }
            if abs_rx.is_none() {
                abs_rx = self.abs.rx.take();
            }
            let deadline = self.session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let conn = &mut self.conn;
            let recv = async {
                match conn.as_mut() {
                    Some(c) => c.recv().await,
                    None => std::future::pending().await,
                }
            };
            let abs_msg = async {
                match abs_rx.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = abs_msg => {
                    if let Some(m) = msg {
                        self.address_book_message(m);
                    }
                }
                cmd = cmds.recv() => self.command(cmd.map(|c| *c)),
                r = recv => match r {
                    Ok(data) if data.is_empty() => self.lost("server closed the connection".into()),
                    Ok(data) => {
                        if let Some(t) = &mut self.trace
                            && let Err(e) = t.received(&data)
                        {
                            self.emit(ClientEvent::TraceFailed(e.to_string()));
                        }
                        self.session.handle_bytes(&data, now());
                    }
                    Err(e) => self.lost(e.to_string()),
                },
                _ = sleep => self.session.handle_timeout(now()),
            }
        }
    }

    /// One command from a [`ClientHandle`]: the session decides, the
    /// driver only keeps the callers' reply channels.
    fn command(&mut self, cmd: Option<Command>) {
        let t = now();
        let s = &mut self.session;
        match cmd {
            Some(Command::SignOut) | None => s.sign_out(t),
            Some(Command::NetworkChanged) => s.network_changed(t),
            Some(Command::SetCredentials(c)) => s.set_credentials(c, t),
            Some(Command::SendIm { to, text, reply }) => {
                let r = s.send_im(&to, &text, t);
                let _ = reply.send(r.map(|id| pending(&mut self.waiting.ims, id)));
            }
            Some(Command::Typing { to, active }) => s.send_typing(&to, active, t),
            Some(Command::EndSession(to)) => s.end_im_session(&to, t),
            Some(Command::SetDisableIm(p)) => s.set_disable_im(p),
            Some(Command::Publish { what, reply }) => {
                let r = match what {
                    Publish::Idle(idle) => s.set_idle(idle, t),
                    Publish::InCall(c) => s.set_in_call(c, t),
                    Publish::InMeeting(m) => s.set_in_meeting(m, t),
                    Publish::Reset => s.reset_status(t),
                    Publish::Note(note) => s.set_note(note.as_deref(), t),
                    Publish::Status { state, note } => s.set_status(state, note.as_deref(), t),
                    Publish::CustomState {
                        availability,
                        lcid,
                        text,
                        note,
                    } => s.set_custom_state(availability, lcid, &text, note.as_deref(), t),
                };
                let _ = reply.send(r.map(|id| pending(&mut self.waiting.publications, id)));
            }
            Some(Command::Watch { uri, reply }) => {
                let r = s.watch(&uri, t);
                let _ = reply.send(r.map(|id| pending(&mut self.waiting.watches, id)));
            }
            Some(Command::Unwatch(uri)) => s.unwatch(&uri, t),
            Some(Command::ReleaseWatch(id)) => s.release_watch(id, t),
            Some(Command::Diagnostics(reply)) => {
                let _ = reply.send(s.snapshot(t));
            }
            Some(Command::ReloadCustomStates) => s.reload_custom_states(),
            Some(Command::SearchAddressBook {
                query,
                limit,
                reply,
            }) => {
                let found = self
                    .abs
                    .book
                    .as_ref()
                    .map(|b| b.search(&query, limit).into_iter().cloned().collect())
                    .unwrap_or_default();
                let _ = reply.send(found);
            }
            Some(Command::ContactList(reply)) => {
                let _ = reply.send(s.contact_list().cloned());
            }
            Some(Command::ChangeContacts { request, reply }) => {
                match s.change_contacts(request, t) {
                    Ok(id) => {
                        self.contact_replies.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Some(Command::DownloadAddressBook) => s.download_address_book(t),
        }
    }

    fn lost(&mut self, why: String) {
        self.conn = None;
        self.session.handle_connection_lost(why, now());
    }

    /// Sends what the session queued, does the I/O it asks for and passes
    /// its events on. Returns false when the task should end.
    async fn flush(&mut self) -> bool {
        loop {
            let mut busy = false;
            while let Some(bytes) = self.session.poll_transmit() {
                busy = true;
                if let Some(t) = &mut self.trace
                    && let Err(e) = t.sent(&bytes)
                {
                    self.emit(ClientEvent::TraceFailed(e.to_string()));
                }
                if let Some(c) = &mut self.conn {
                    let limit = self.cfg.send_timeout;
                    match tokio::time::timeout(limit, c.send(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => self.lost(e.to_string()),
                        Err(_) => self.lost(format!(
                            "sending to the server timed out after {}",
                            crate::error::show_duration(limit)
                        )),
                    }
                }
            }
            while let Some(io) = self.session.poll_io() {
                busy = true;
                match io {
                    Io::Close => self.conn = None,
                    Io::FetchCustomStates { url } => self.fetch_custom_states(url),
                    Io::DownloadAddressBook { url } => self.start_address_book_download(url),
                    Io::ProvisionCertificate { url, renewal } => {
                        self.provision_certificate(url, renewal)
                    }
                    Io::Connect(target) => {
                        // Every step has its own deadline; the first
                        // sign-in's overall one bounds them all.
                        match self.session.sign_in_deadline() {
                            Some(d) => {
                                // Boxed: the connect step (DNS, TCP, TLS
                                // futures) is large and short-lived; inline
                                // it would sit in every idle client's task.
                                if tokio::time::timeout_at(d.into(), Box::pin(self.connect(target)))
                                    .await
                                    .is_err()
                                {
                                    self.session.handle_timeout(now());
                                }
                            }
                            None => Box::pin(self.connect(target)).await,
                        }
                    }
                }
            }
            while let Some(e) = self.session.poll_event() {
                busy = true;
                self.on_event(&e);
                self.emit(e);
            }
            if self.session.is_stopped() && !busy {
                return false;
            }
            if !busy {
                return true;
            }
        }
    }

    /// What the driver itself does on a session event: answer the callers
    /// waiting for an outcome.
    fn on_event(&mut self, e: &ClientEvent) {
        let w = &mut self.waiting;
        match e {
            ClientEvent::Im(ImEvent::Delivered { id }) => settle(&mut w.ims, id, Ok(())),
            ClientEvent::Im(ImEvent::Failed { id, reason, detail }) => settle(
                &mut w.ims,
                id,
                Err(Error::NotDelivered {
                    reason: *reason,
                    detail: detail.clone(),
                }),
            ),
            ClientEvent::Presence(PresenceEvent::Published {
                id: Some(id),
                state,
            }) => settle(&mut w.publications, id, Ok(*state)),
            ClientEvent::Presence(PresenceEvent::PublishFailed {
                id: Some(id),
                error,
            }) => settle(&mut w.publications, id, Err(error.clone())),
            ClientEvent::Presence(PresenceEvent::Watching { id, .. }) => {
                settle(&mut w.watches, id, Ok(()))
            }
            ClientEvent::Presence(PresenceEvent::WatchFailed { id, error, .. }) => {
                settle(&mut w.watches, id, Err(error.clone()))
            }
            ClientEvent::Presence(PresenceEvent::ContactListChanged { id, group_id, .. }) => {
                if let Some(r) = self.contact_replies.remove(id) {
                    let _ = r.send(Ok(*group_id));
                }
            }
            ClientEvent::Presence(PresenceEvent::ContactListChangeFailed { id, error }) => {
                if let Some(r) = self.contact_replies.remove(id) {
                    let _ = r.send(Err(error.clone()));
                }
            }
            _ => {}
        }
    }

    /// Resolves `target` within [`ClientConfig::dns_timeout`]; when
    /// autodiscover is on and no server is set, asks it first.
    async fn candidates(&mut self, target: &ConnectTarget) -> Result<Vec<Candidate>, String> {
        if matches!(target, ConnectTarget::Discover)
            && let Some(settings) = self.cfg.autodiscover.clone()
        {
            match self.autodiscovered(settings).await {
                Ok(list) if !list.is_empty() => return Ok(list),
                Ok(_) => {}
                // Lync clients fall back to DNS SRV; the failure stays in
                // the sign-in's attempt list (diagnostics).
                Err(e) => self
                    .session
                    .handle_connect_attempt_failed("autodiscover".into(), e),
            }
        }
        let limit = self.cfg.dns_timeout;
        let shown = match target {
            ConnectTarget::Redirect(s) | ConnectTarget::Manual(s) => s.host.clone(),
            ConnectTarget::Discover => self.session.config().endpoint.register.aor.clone(),
        };
        tokio::time::timeout(limit, self.find_candidates(target))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "DNS lookup for {shown} timed out after {}",
                    crate::error::show_duration(limit)
                ))
            })
    }

    /// The servers autodiscover names (TLS), resolved; within
    /// [`AUTODISCOVER_TIMEOUT`].
    async fn autodiscovered(
        &mut self,
        settings: super::config::AutodiscoverSettings,
    ) -> Result<Vec<Candidate>, String> {
        let cfg = self.session.config();
        let credentials = web_login(cfg);
        let discovery = crate::autodiscover::DiscoveryConfig {
            sip_uri: cfg.endpoint.register.aor.clone(),
            urls: settings.urls,
            credentials,
        };
        let http = self.http()?;
        let run = super::autodiscover::autodiscover(discovery, &*http, |_| {});
        let found = match tokio::time::timeout(AUTODISCOVER_TIMEOUT, run).await {
            Ok((Ok(found), _)) => found,
            Ok((Err(e), _)) => return Err(e.to_string()),
            Err(_) => {
                return Err(format!(
                    "autodiscover timed out after {}",
                    crate::error::show_duration(AUTODISCOVER_TIMEOUT)
                ));
            }
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for point in &found.servers {
            let server = crate::discovery::ServerConfig {
                host: point.fqdn.clone(),
                port: Some(point.port),
                transport: crate::discovery::Transport::Tls,
            };
            let target = ConnectTarget::Manual(server);
            let limit = self.cfg.dns_timeout;
            match tokio::time::timeout(limit, self.find_candidates(&target)).await {
                Ok(Ok(list)) => out.extend(list.into_iter().map(|mut c| {
                    c.source = "autodiscover".to_owned();
                    c
                })),
                Ok(Err(e)) => errors.push(format!("{}: {e}", point.fqdn)),
                Err(_) => errors.push(format!("{}: DNS lookup timed out", point.fqdn)),
            }
        }
        if out.is_empty() && !errors.is_empty() {
            return Err(format!("autodiscover named {}", errors.join("; ")));
        }
        Ok(out)
    }

    async fn find_candidates(&mut self, target: &ConnectTarget) -> Result<Vec<Candidate>, String> {
        if let ConnectTarget::Manual(s) = target
            && let Some(c) = super::dns::literal_candidate(s)
        {
            return Ok(vec![c]);
        }
        if self.resolver.is_none() {
            let r = match self.cfg.nameserver {
                Some(ns) => Resolver::with_nameserver(ns),
                None => Resolver::from_system_conf(),
            }
            .map_err(|e| e.to_string())?;
            self.resolver = Some(r);
        }
        let Some(resolver) = self.resolver.as_ref() else {
            return Err("no DNS resolver".into());
        };
        let manual = match target {
            // RFC 3263 for the server a 301/302 named.
            ConnectTarget::Redirect(r) => {
                return resolver
                    .discover_redirect(r, &mut self.rng)
                    .await
                    .map_err(|e| e.to_string());
            }
            ConnectTarget::Manual(s) => Some(s.clone()),
            _ => None,
        };
        let aor = self.session.config().endpoint.register.aor.clone();
        let domain = SipUri::parse(&aor)
            .map(|u| u.host.to_string())
            .map_err(|e| format!("bad user address {aor}: {e}"))?;
        resolver
            .discover(
                &domain,
                self.session.config().endpoint.register.dialect,
                &self.cfg.allowed,
                manual.as_ref(),
                &mut self.rng,
            )
            .await
            .map_err(|e| e.to_string())
    }

    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    async fn connect(&mut self, target: ConnectTarget) {
        self.conn = None;
        let list = match self.candidates(&target).await {
            Ok(l) => {
                let _in = self.session.enter_span();
                let what = match &target {
                    ConnectTarget::Discover => "DNS discovery".to_owned(),
                    ConnectTarget::Manual(s) => format!("the configured server {}", s.host),
                    ConnectTarget::Redirect(s) => format!("the redirect to {}", s.host),
                };
                log!(
                    DEBUG,
                    "{} server address(es) from {what}: {}",
                    l.len(),
                    l.iter()
                        .map(|c| format!("{} {} ({})", c.transport, c.addr, c.source))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                l
            }
            Err(e) => {
                self.session
                    .handle_connect_attempt_failed("discovery".into(), e.clone());
                self.session
                    .handle_connect_failed(Error::transport(TransportFailure::Connect, e), now());
                return;
            }
        };
        let mut errors = Vec::new();
        for c in list {
            match Conn::connect(
                &c,
                &self.cfg.tls,
                &mut self.tls,
                self.cfg.connect_timeout,
                self.cfg.tls_handshake_timeout,
            )
            .await
            {
                Ok((conn, local)) => {
                    self.conn = Some(conn);
                    if let Some(t) = &mut self.trace {
                        t.connected(crate::trace::Flow {
                            transport: c.transport,
                            local,
                            remote: c.addr,
                        });
                    }
                    self.session.handle_connected(
                        Connected {
                            host: c.host.clone(),
                            addr: c.addr,
                            transport: c.transport,
                            source: c.source.clone(),
                            local,
                        },
                        now(),
                    );
                    return;
                }
                Err(e) => {
                    errors.push(e.to_string());
                    self.session.handle_connect_attempt_failed(
                        format!("{} {} ({})", c.transport, c.addr, c.source),
                        e.to_string(),
                    );
                }
            }
        }
        // Every address failed: the errors name the steps and targets.
        self.session.handle_connect_failed(
            Error::transport(TransportFailure::Connect, errors.join("; ")),
            now(),
        );
    }
}

/// The user's login for web services (`DOMAIN\\user`, or the user name
/// alone) and password, when a password is set.
pub(super) fn web_login(cfg: &crate::client::Config) -> Option<(String, String)> {
    cfg.endpoint.credentials.as_ref().map(|c| {
        let login = if c.domain.is_empty() {
            c.username.clone()
        } else {
            format!("{}\\{}", c.domain, c.username)
        };
        (login, c.password.clone())
    })
}
