//! The client driver: one tokio task owns the [`Endpoint`], its
//! connection and its timers. Commands go in over a channel, events come
//! out over another.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::addressbook::{AddressBookConfig, DownloadError, Downloaded};
use super::conn::{Conn, TlsSettings};
use super::dns::Resolver;
use crate::addressbook::{AbsDay, AddressBook, Entry, Stored};
use crate::auth::mechanism::Authenticator;
pub use crate::client::{AddressBookEvent, ClientEvent};
use crate::client::{
    AddressBookRun, AddressBookSchedule, Client as Session, ConnectTarget, Connected, Io,
};
use crate::customstates::{ClientVersion, CustomStates, Violation};
use crate::diag::Snapshot;
use crate::discovery::{Candidate, ServerConfig, Transport};
use crate::endpoint::EndpointConfig;
use crate::error::{Error, Provenance};
use crate::messaging::{ImConfig, MessageId};
use crate::policy::EffectivePolicy;
use crate::presence::ContactList;
use crate::presence::model::{Availability, State};
use crate::presence_agent::{ContactOpId, ContactRequest, Meeting, PresenceConfig, PresenceEvent};
use crate::register::Credentials;
use crate::rng::Rng;
use crate::sip::SipUri;

/// Everything the driver needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The sans-IO endpoint's settings (user, dialect, credentials, ...).
    pub endpoint: EndpointConfig,
    /// A manually configured server; `None` runs DNS discovery.
    pub server: Option<ServerConfig>,
    /// Transports discovery may pick.
    pub allowed: Vec<Transport>,
    /// TLS trust settings.
    pub tls: TlsSettings,
    /// A specific DNS server (tests); `None` uses the system's.
    pub nameserver: Option<SocketAddr>,
    /// How long one TCP connect may take (per address tried).
    pub connect_timeout: Duration,
    /// How long one TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long finding the server in DNS (SRV and A/AAAA) may take.
    pub dns_timeout: Duration,
    /// How long sending one message may block (a server that stops
    /// reading).
    pub send_timeout: Duration,
    /// How long the whole first sign-in may take, redirects and retries
    /// included (`None`: no limit). It stops while the app is asked for
    /// credentials and starts again when they are given. Each REGISTER's
    /// own deadline is `endpoint.register.register_timeout`.
    pub sign_in_timeout: Option<Duration>,
    /// How long sign-out waits for the server before giving up.
    pub sign_out_timeout: Duration,
    /// A host security mechanism (Kerberos, SSPI) to prefer over NTLM.
    pub authenticator: Option<AuthenticatorFactory>,
    /// Instant messaging settings (dialect, DisableIM, idle timeout).
    pub im: ImConfig,
    /// Presence settings (dialect, EnableAppearOffline, lifetimes).
    pub presence: PresenceConfig,
    /// Write a SIP trace (every message sent and received, credentials
    /// redacted): text or pcap, rotated by size.
    pub trace: Option<super::trace::TraceConfig>,
    /// The effective policy the app evaluated (shown by
    /// [`ClientHandle::diagnostics`]; the settings above are what takes effect).
    pub policy: EffectivePolicy,
    /// The `CustomStateURL` policy: loaded once after sign-in (as
    /// Communicator does) and again on [`ClientHandle::reload_custom_states`].
    pub custom_state_url: Option<String>,
    /// Whose `CustomStateURL` rules apply (default OC 2007 R2: http(s) only).
    pub custom_state_client: ClientVersion,
    /// SIP high-security mode (`EnableSIPHighSecurityMode` = 2): the
    /// custom-states URL must be https.
    pub high_security: bool,
    /// Address-book download (`None`: no download). The first one runs at
    /// a random time within `initial_delay` after sign-in.
    pub address_book: Option<AddressBookConfig>,
}

/// Makes the host's [`Authenticator`] for a client (called once per
/// client start).
#[derive(Clone)]
pub struct AuthenticatorFactory(pub Arc<dyn Fn() -> Box<dyn Authenticator> + Send + Sync>);

impl std::fmt::Debug for AuthenticatorFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthenticatorFactory(..)")
    }
}

impl ClientConfig {
    /// Defaults around an endpoint configuration.
    pub fn new(endpoint: EndpointConfig) -> ClientConfig {
        ClientConfig {
            server: None,
            allowed: vec![Transport::Tls, Transport::Tcp, Transport::Udp],
            tls: TlsSettings::default(),
            nameserver: None,
            connect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            sign_in_timeout: Some(Duration::from_secs(60)),
            sign_out_timeout: Duration::from_secs(5),
            authenticator: None,
            im: ImConfig::new(endpoint.register.dialect),
            presence: PresenceConfig::new(endpoint.register.dialect, &endpoint.register.aor),
            trace: None,
            policy: EffectivePolicy::default(),
            custom_state_url: None,
            custom_state_client: ClientVersion::Oc2007R2,
            high_security: false,
            address_book: None,
            endpoint,
        }
    }
}

impl ClientConfig {
    /// The sans-IO session's part of this configuration.
    pub fn session(&self) -> crate::client::Config {
        crate::client::Config {
            endpoint: self.endpoint.clone(),
            server: self.server.clone(),
            im: self.im.clone(),
            presence: self.presence.clone(),
            policy: self.policy.clone(),
            custom_state_url: self.custom_state_url.clone(),
            custom_state_client: self.custom_state_client,
            high_security: self.high_security,
            sign_in_timeout: self.sign_in_timeout,
            sign_out_timeout: self.sign_out_timeout,
            address_book: self.address_book.as_ref().map(|a| AddressBookSchedule {
                initial_delay: a.initial_delay,
                url: a.url.clone(),
            }),
        }
    }

    /// Applies the effective client policy the way OC 2007 R2 does:
    /// DisableIM to IM, EnableAppearOffline to presence, CustomStateURL
    /// (unless a URL is configured already) and EnableSIPHighSecurityMode
    /// (2 = https only) to custom states, ServerAddressInternal with
    /// Transport when ConfigurationMode is 1 and no server is configured,
    /// GalDownloadInitialDelay to the address-book download; the policy is
    /// kept for diagnostics. Every front end (the CLI, the FFI facade)
    /// calls this rather than repeating the rules.
    pub fn apply_policy(&mut self, policy: EffectivePolicy) {
        let disable_im = policy.disable_im();
        self.im.disable_im = disable_im.value.then_some(disable_im.provenance);
        let appear = policy.enable_appear_offline();
        self.presence.appear_offline = if appear.value {
            Ok(appear.provenance)
        } else {
            Err(appear.provenance)
        };
        if self.custom_state_url.is_none() {
            self.custom_state_url = policy.custom_state_url().value;
        }
        self.high_security = policy.enable_sip_high_security_mode().value == 2;
        if self.server.is_none()
            && policy.configuration_mode().value == 1
            && let Some(addr) = policy.server_address_internal().value
        {
            // A value that is not HOST[:PORT] is tried as a host name, so
            // discovery reports what failed.
            let (host, port) =
                crate::discovery::parse_host_port(&addr).unwrap_or_else(|_| (addr.clone(), None));
            self.server = Some(ServerConfig {
                host,
                port,
                transport: policy.transport().value.unwrap_or(Transport::Tls),
            });
        }
        if let Some(ab) = &mut self.address_book {
            ab.initial_delay = policy.gal_download_initial_delay().value;
        }
        self.policy = policy;
    }
}

#[derive(Debug)]
enum Command {
    SignOut,
    NetworkChanged,
    SetCredentials(Credentials),
    SendIm {
        to: String,
        text: String,
        reply: oneshot::Sender<Result<MessageId, Error>>,
    },
    Typing {
        to: String,
        active: bool,
    },
    EndSession(String),
    SetDisableIm(Option<Provenance>),
    SetIdle(std::time::Duration),
    SetInCall(bool),
    SetInMeeting(Option<Meeting>),
    ResetStatus,
    SetStatus {
        state: State,
        note: Option<String>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    SetCustomState {
        availability: Availability,
        lcid: u32,
        text: String,
        note: Option<String>,
    },
    Watch(String),
    Unwatch(String),
    Diagnostics(oneshot::Sender<Snapshot>),
    ReloadCustomStates,
    SearchAddressBook {
        query: String,
        limit: usize,
        reply: oneshot::Sender<Vec<Entry>>,
    },
    DownloadAddressBook,
    ContactList(oneshot::Sender<Option<ContactList>>),
    ChangeContacts {
        request: ContactRequest,
        reply: oneshot::Sender<Result<Option<u32>, Error>>,
    },
}

/// HTTP and file work done in the background, back to the client task.
enum AbsMsg {
    /// What the address-book folder held at start.
    Stored(Option<(Arc<AddressBook>, Stored)>),
    /// An address-book download run finished.
    Done(Result<Downloaded, DownloadError>),
    /// A CustomStateURL fetch finished.
    CustomStates {
        url: String,
        result: Result<(CustomStates, Vec<Violation>), String>,
    },
}

/// A running client. Dropping it stops the task (without un-registering;
/// call [`ClientHandle::sign_out`] first for a clean exit).
#[derive(Debug)]
pub struct Client {
    handle: ClientHandle,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    task: JoinHandle<()>,
}

/// The commands of a running [`Client`], cloneable and usable from any
/// task while the client's owner reads its events: a host can wait for a
/// contact-list change or a diagnostics snapshot without holding up the
/// event loop. [`Client`] derefs to it, so `client.send_im(…)` works too.
/// Commands to a client that has stopped fail or are ignored.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    cmds: mpsc::UnboundedSender<Command>,
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
        let resolver = match cfg.nameserver {
            Some(ns) => Resolver::with_nameserver(ns),
            None => Resolver::from_system_conf(),
        }
        .map_err(|e| Error::Transport(e.to_string()))?;
        let mut entropy = [0u8; 32];
        getrandom::fill(&mut entropy)
            .map_err(|e| Error::Transport(format!("no OS randomness: {e}")))?;
        let seed = u64::from_le_bytes(entropy[..8].try_into().unwrap_or([0; 8]));
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::Transport(format!("no OS randomness: {e}")))?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        #[allow(clippy::disallowed_methods)]
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut session = Session::new(cfg.session(), seed, secret, now, wall);
        if let Some(f) = &cfg.authenticator {
            session.set_authenticator((f.0)());
        }
        let trace = cfg.trace.clone().map(super::trace::TraceFile::new);
        let task = Task {
            session,
            cfg,
            tls: None,
            resolver,
            rng: Rng::from_seed(seed ^ 0x5eed),
            conn: None,
            events: ev_tx,
            custom_states_fetch: None,
            trace,
            abs: {
                let (tx, rx) = mpsc::unbounded_channel();
                AbsState {
                    book: None,
                    stored: None,
                    run: None,
                    tx,
                    rx: Some(rx),
                }
            },
            contact_replies: std::collections::HashMap::new(),
        };
        let handle = tokio::spawn(task.run(cmd_rx));
        Ok(Client {
            handle: ClientHandle { cmds: cmd_tx },
            events: ev_rx,
            task: handle,
        })
    }

    /// The next event; `None` once the task has ended and all events were
    /// read.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// A cloneable handle for commands (see [`ClientHandle`]).
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }
}

impl ClientHandle {
    /// Un-registers and stops; [`ClientEvent::Stopped`] follows.
    pub fn sign_out(&self) {
        let _ = self.cmds.send(Command::SignOut);
    }

    /// The network changed: reconnect and re-register now.
    pub fn network_changed(&self) {
        let _ = self.cmds.send(Command::NetworkChanged);
    }

    /// Credentials after [`RegistrationEvent::CredentialsNeeded`].
    pub fn set_credentials(&self, creds: Credentials) {
        let _ = self.cmds.send(Command::SetCredentials(creds));
    }

    /// Sends an instant message. The id ends in exactly one
    /// [`crate::messaging::ImEvent::Delivered`] or [`crate::messaging::ImEvent::Failed`]; an immediate refusal
    /// (DisableIM, not signed in) is returned as an error.
    pub async fn send_im(&self, to: &str, text: &str) -> Result<MessageId, Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::SendIm {
                to: to.to_owned(),
                text: text.to_owned(),
                reply,
            })
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?
    }

    /// Tells `to` we are (or stopped) typing.
    pub fn send_typing(&self, to: &str, active: bool) {
        let _ = self.cmds.send(Command::Typing {
            to: to.to_owned(),
            active,
        });
    }

    /// Ends the IM session with `to`.
    pub fn end_im_session(&self, to: &str) {
        let _ = self.cmds.send(Command::EndSession(to.to_owned()));
    }

    /// Publishes our status (and note). Appear offline ([`State::Offline`])
    /// is refused unless the EnableAppearOffline policy allows it.
    pub async fn set_status(&self, state: State, note: Option<&str>) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::SetStatus {
                state,
                note: note.map(str::to_owned),
                reply,
            })
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?
    }

    /// Publishes a custom state: availability plus our text for `lcid`.
    pub fn set_custom_state(
        &self,
        availability: Availability,
        lcid: u32,
        text: &str,
        note: Option<&str>,
    ) {
        let _ = self.cmds.send(Command::SetCustomState {
            availability,
            lcid,
            text: text.to_owned(),
            note: note.map(str::to_owned),
        });
    }

    /// Starts watching a contact's presence.
    pub fn watch(&self, uri: &str) {
        let _ = self.cmds.send(Command::Watch(uri.to_owned()));
    }

    /// Reports how long the user has been idle (no keyboard or mouse
    /// input); call it whenever the host's idle time changes, and with zero
    /// on input. Crossing Communicator's thresholds (inactive after 5
    /// minutes, away after 20) publishes the machine state.
    pub fn set_idle(&self, idle: std::time::Duration) {
        let _ = self.cmds.send(Command::SetIdle(idle));
    }

    /// Reports a meeting from the host's calendar (free/busy data, e.g.
    /// from an Outlook add-in); `None` when it is over. Watchers see "in a
    /// meeting" (busy) while it lasts.
    pub fn set_in_meeting(&self, meeting: Option<Meeting>) {
        let _ = self.cmds.send(Command::SetInMeeting(meeting));
    }

    /// Reports that a call started (`true`) or ended: "on the phone" is
    /// shown while it lasts.
    pub fn set_in_call(&self, in_call: bool) {
        let _ = self.cmds.send(Command::SetInCall(in_call));
    }

    /// "Reset status": drops the manual state so the automatic one shows
    /// again; ends in a `Published` or `PublishFailed` presence event.
    pub fn reset_status(&self) {
        let _ = self.cmds.send(Command::ResetStatus);
    }

    /// Stops watching a contact.
    pub fn unwatch(&self, uri: &str) {
        let _ = self.cmds.send(Command::Unwatch(uri.to_owned()));
    }

    /// Loads `CustomStateURL` again (Communicator only loads it at
    /// sign-in). The result arrives as [`ClientEvent::CustomStates`] or
    /// [`ClientEvent::CustomStatesFailed`]; a load still running is
    /// cancelled.
    pub fn reload_custom_states(&self) {
        let _ = self.cmds.send(Command::ReloadCustomStates);
    }

    /// Up to `limit` address-book entries whose name, a word of it, e-mail
    /// address, SIP URI or phone number starts with `query` (empty until
    /// the book is read from the folder or downloaded).
    pub async fn search_address_book(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::SearchAddressBook {
                query: query.to_owned(),
                limit,
                reply,
            })
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))
    }

    /// The server-stored contact list (OCS), once the server sent it after
    /// sign-in (`None` before, and in the standard dialect).
    pub async fn contact_list(&self) -> Result<Option<ContactList>, Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::ContactList(reply))
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))
    }

    /// Changes the contact list and waits for the server's answer.
    async fn change_contacts(&self, request: ContactRequest) -> Result<Option<u32>, Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::ChangeContacts { request, reply })
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client stopped before the server answered".into()))?
    }

    /// Adds a contact to a group (`None`: the default group) and watches
    /// it. A contact already in the list is added to that group as well.
    pub async fn add_contact(&self, uri: &str, group: Option<&str>) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Add {
            uri: uri.to_owned(),
            group: group.map(str::to_owned),
        })
        .await
        .map(drop)
    }

    /// Removes a contact from the list and stops watching it.
    pub async fn remove_contact(&self, uri: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Remove {
            uri: uri.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Moves a contact into `to_group`, out of every other group.
    pub async fn move_contact(&self, uri: &str, to_group: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Move {
            uri: uri.to_owned(),
            to_group: to_group.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Creates a group; returns the id the server gave it.
    pub async fn add_group(&self, name: &str) -> Result<u32, Error> {
        self.change_contacts(ContactRequest::AddGroup {
            name: name.to_owned(),
        })
        .await?
        .ok_or_else(|| Error::PeerMisbehaved("addGroup answered without a group id".into()))
    }

    /// Renames a group.
    pub async fn rename_group(&self, name: &str, new_name: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::RenameGroup {
            name: name.to_owned(),
            new_name: new_name.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Deletes a group; its contacts stay in their other groups.
    pub async fn remove_group(&self, name: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::RemoveGroup {
            name: name.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Downloads the address book now instead of at the scheduled time
    /// (Communicator has no such button; the seed's workaround is
    /// `GalDownloadInitialDelay` = 0).
    pub fn download_address_book(&self) {
        let _ = self.cmds.send(Command::DownloadAddressBook);
    }

    /// The configuration snapshot (`ocs diag`): server, registration,
    /// provisioning, address book, custom states and the effective policy.
    pub async fn diagnostics(&self) -> Result<Snapshot, Error> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Diagnostics(reply))
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))?;
        rx.await
            .map_err(|_| Error::ApiMisuse("the client has stopped".into()))
    }

    /// Applies the effective DisableIM policy (`None` allows IM).
    pub fn set_disable_im(&self, provenance: Option<Provenance>) {
        let _ = self.cmds.send(Command::SetDisableIm(provenance));
    }
}

/// The driver's side of one client: sockets, TLS, DNS, HTTP and timers
/// around the sans-IO [`Session`], which makes every protocol decision.
struct Task {
    session: Session,
    cfg: ClientConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    resolver: Resolver,
    rng: Rng,
    conn: Option<Conn>,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// The running CustomStateURL load (aborted when the task ends).
    custom_states_fetch: Option<AbortOnDrop>,
    /// The SIP trace, when configured.
    trace: Option<super::trace::TraceFile>,
    /// The address-book download.
    abs: AbsState,
    /// Callers waiting for their contact-list change.
    contact_replies:
        std::collections::HashMap<ContactOpId, oneshot::Sender<Result<Option<u32>, Error>>>,
}

/// The background work's side of the task: the address book in memory
/// (for search and the next download) and the channel results come back on.
struct AbsState {
    book: Option<Arc<AddressBook>>,
    /// What the folder holds (the book's files and day), kept so the next
    /// download builds on the book in memory instead of re-reading them.
    stored: Option<Stored>,
    run: Option<AbortOnDrop>,
    tx: mpsc::UnboundedSender<AbsMsg>,
    rx: Option<mpsc::UnboundedReceiver<AbsMsg>>,
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    // The driver is the one place allowed to read the clock.
    Instant::now()
}

#[allow(clippy::disallowed_methods)]
fn wall() -> SystemTime {
    SystemTime::now()
}

impl Task {
    fn emit(&mut self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        self.session.start(now());
        let mut buf = vec![0u8; 65536];
        let mut abs_rx = self.abs.rx.take();
        self.load_stored_address_book();
        loop {
            if !self.flush().await {
                return;
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
                    Some(c) => c.recv(&mut buf).await,
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
                cmd = cmds.recv() => self.command(cmd),
                r = recv => match r {
                    Ok(0) => self.lost("server closed the connection".into()),
                    Ok(n) => {
                        let data = buf[..n].to_vec();
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
                let _ = reply.send(s.send_im(&to, &text, t));
            }
            Some(Command::Typing { to, active }) => s.send_typing(&to, active, t),
            Some(Command::EndSession(to)) => s.end_im_session(&to, t),
            Some(Command::SetDisableIm(p)) => s.set_disable_im(p),
            Some(Command::SetIdle(idle)) => s.set_idle(idle, t),
            Some(Command::SetInCall(c)) => s.set_in_call(c, t),
            Some(Command::SetInMeeting(m)) => s.set_in_meeting(m, t),
            Some(Command::ResetStatus) => s.reset_status(t),
            Some(Command::SetStatus { state, note, reply }) => {
                let _ = reply.send(s.set_status(state, note.as_deref(), t));
            }
            Some(Command::SetCustomState {
                availability,
                lcid,
                text,
                note,
            }) => s.set_custom_state(availability, lcid, &text, note.as_deref(), t),
            Some(Command::Watch(uri)) => s.watch(&uri, t),
            Some(Command::Unwatch(uri)) => s.unwatch(&uri, t),
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

    /// Fetches CustomStateURL in the background (a fetch still running is
    /// cancelled); the result goes back to the session.
    fn fetch_custom_states(&mut self, url: String) {
        let (client, high_security) = (self.cfg.custom_state_client, self.cfg.high_security);
        let tls = self.cfg.tls.clone();
        let tx = self.abs.tx.clone();
        self.custom_states_fetch = Some(AbortOnDrop(tokio::spawn(async move {
            let result = super::fetch_custom_states(&url, client, high_security, &tls)
                .await
                .map(|l| (l.states, l.warnings))
                .map_err(|e| e.to_string());
            let _ = tx.send(AbsMsg::CustomStates { url, result });
        })));
    }

    /// Reads what the address-book folder holds, in the background, so
    /// search works before the first download.
    fn load_stored_address_book(&mut self) {
        let Some(ab) = &self.cfg.address_book else {
            return;
        };
        let dir = ab.dir.clone();
        let tx = self.abs.tx.clone();
        tokio::task::spawn_blocking(move || {
            let stored = super::abstore::AbsStore::open(&dir)
                .ok()
                .and_then(|s| super::addressbook::load_stored(&s))
                .map(|(st, entries)| (Arc::new(AddressBook::new(entries)), st));
            let _ = tx.send(AbsMsg::Stored(stored));
        });
    }

    /// Starts one download run from `url` (the session decided when and
    /// from where); its result comes back as [`AbsMsg::Done`].
    fn start_address_book_download(&mut self, url: String) {
        let Some(cfg) = self.cfg.address_book.clone() else {
            return;
        };
        let tx = self.abs.tx.clone();
        let tls = self.cfg.tls.clone();
        let creds = self.cfg.endpoint.credentials.clone();
        let local = self
            .abs
            .stored
            .clone()
            .zip(self.abs.book.as_ref().map(|b| b.entries().to_vec()));
        let unix = wall()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.abs.run = Some(AbortOnDrop(tokio::spawn(async move {
            let today = AbsDay::from_unix_secs(unix);
            let r = match local {
                Some(local) => {
                    super::addressbook::download_onto(
                        &url,
                        &cfg,
                        &tls,
                        creds.as_ref(),
                        Some(local),
                        today,
                        unix,
                    )
                    .await
                }
                // Not loaded yet (or nothing there): read the folder.
                None => {
                    super::addressbook::download(&url, &cfg, &tls, creds.as_ref(), today, unix)
                        .await
                }
            };
            let _ = tx.send(AbsMsg::Done(r));
        })));
    }

    fn address_book_message(&mut self, m: AbsMsg) {
        let t = now();
        match m {
            AbsMsg::Stored(Some((book, stored))) => {
                // A download that finished first wins.
                if self.abs.book.is_none() {
                    let run = AddressBookRun {
                        entries: book.len(),
                        day: stored.day().to_string(),
                        fetched: None,
                    };
                    self.abs.book = Some(book);
                    self.abs.stored = Some(stored);
                    self.session.handle_address_book_loaded(run);
                }
            }
            AbsMsg::Stored(None) => {}
            AbsMsg::Done(r) => {
                self.abs.run = None;
                let r = r
                    .map(|d| {
                        let run = AddressBookRun {
                            entries: d.book.len(),
                            day: d.stored.day().to_string(),
                            fetched: d.fetched.map(|f| f.to_string()),
                        };
                        self.abs.book = Some(d.book);
                        self.abs.stored = Some(d.stored);
                        run
                    })
                    .map_err(|e| e.to_string());
                self.session.handle_address_book_done(r, t);
            }
            AbsMsg::CustomStates { url, result } => {
                self.custom_states_fetch = None;
                self.session.handle_custom_states_done(url, result);
            }
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
                    Io::Connect(target) => {
                        // Every step has its own deadline; the first
                        // sign-in's overall one bounds them all.
                        match self.session.sign_in_deadline() {
                            Some(d) => {
                                if tokio::time::timeout_at(d.into(), self.connect(target))
                                    .await
                                    .is_err()
                                {
                                    self.session.handle_timeout(now());
                                }
                            }
                            None => self.connect(target).await,
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

    /// What the driver itself does on a session event: answer contact-list
    /// callers.
    fn on_event(&mut self, e: &ClientEvent) {
        match e {
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

    /// Resolves `target` within [`ClientConfig::dns_timeout`].
    async fn candidates(&mut self, target: &ConnectTarget) -> Result<Vec<Candidate>, String> {
        let limit = self.cfg.dns_timeout;
        let shown = match target {
            ConnectTarget::Redirect(s) | ConnectTarget::Manual(s) => s.host.clone(),
            ConnectTarget::Discover => self.cfg.endpoint.register.aor.clone(),
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

    async fn find_candidates(&mut self, target: &ConnectTarget) -> Result<Vec<Candidate>, String> {
        let manual = match target {
            // RFC 3263 for the server a 301/302 named.
            ConnectTarget::Redirect(r) => {
                return self
                    .resolver
                    .discover_redirect(r, &mut self.rng)
                    .await
                    .map_err(|e| e.to_string());
            }
            ConnectTarget::Manual(s) => Some(s.clone()),
            _ => None,
        };
        let aor = self.cfg.endpoint.register.aor.clone();
        let domain = SipUri::parse(&aor)
            .map(|u| u.host.to_string())
            .map_err(|e| format!("bad user address {aor}: {e}"))?;
        self.resolver
            .discover(
                &domain,
                self.cfg.endpoint.register.dialect,
                &self.cfg.allowed,
                manual.as_ref(),
                &mut self.rng,
            )
            .await
            .map_err(|e| e.to_string())
    }

    async fn connect(&mut self, target: ConnectTarget) {
        self.conn = None;
        let list = match self.candidates(&target).await {
            Ok(l) => l,
            Err(e) => {
                self.session
                    .handle_connect_attempt_failed("discovery".into(), e.clone());
                self.session
                    .handle_connect_failed(Error::Transport(e), now());
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
        self.session
            .handle_connect_failed(Error::Transport(errors.join("; ")), now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::InBand;
    use crate::policy::reg::parse_str;
    use crate::register::RegisterConfig;

    #[test]
    fn policy_reaches_every_setting_it_governs() {
        let reg = parse_str(
            "Windows Registry Editor Version 5.00\n\n\
             [HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\n\
             \"DisableIM\"=dword:00000001\n\
             \"EnableAppearOffline\"=dword:00000001\n\
             \"CustomStateURL\"=\"https://intranet/cs.xml\"\n\
             \"EnableSIPHighSecurityMode\"=dword:00000002\n\
             \"ConfigurationMode\"=dword:00000001\n\
             \"ServerAddressInternal\"=\"pool.contoso.com:5061\"\n\
             \"Transport\"=\"TCP\"\n\
             \"GalDownloadInitialDelay\"=dword:00000000\n",
        )
        .expect("reg");
        let policy = crate::policy::evaluate(&[("gp.reg", reg)], &InBand::new());
        let ep = EndpointConfig::new(
            RegisterConfig::new(
                "sip:alice@contoso.com",
                crate::discovery::Dialect::Ocs,
                "a1a1a1a1a1",
            ),
            None,
        );
        let mut cfg = ClientConfig::new(ep.clone());
        cfg.address_book = Some(super::super::AddressBookConfig::new("/tmp/abs"));
        cfg.apply_policy(policy.clone());
        assert_eq!(
            cfg.im.disable_im.map(|p| p.from),
            Some(Some("gp.reg:4".into()))
        );
        assert!(cfg.presence.appear_offline.is_ok());
        assert_eq!(
            cfg.custom_state_url.as_deref(),
            Some("https://intranet/cs.xml")
        );
        assert!(cfg.high_security);
        let s = cfg.server.expect("manual server");
        assert_eq!(
            (s.host.as_str(), s.port, s.transport),
            ("pool.contoso.com", Some(5061), Transport::Tcp)
        );
        assert_eq!(cfg.address_book.expect("abs").initial_delay, Duration::ZERO);
        assert!(cfg.policy.disable_im().value);

        // What the host configured itself wins over the policy's defaults.
        let mut cfg = ClientConfig::new(ep);
        cfg.custom_state_url = Some("https://mine/cs.xml".into());
        cfg.server = Some(ServerConfig {
            host: "other".into(),
            port: None,
            transport: Transport::Tls,
        });
        cfg.apply_policy(policy);
        assert_eq!(cfg.custom_state_url.as_deref(), Some("https://mine/cs.xml"));
        assert_eq!(cfg.server.map(|s| s.host), Some("other".into()));
    }
}
