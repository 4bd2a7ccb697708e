//! The whole client session, sans-IO: one [`Client`] owns the
//! [`Endpoint`] (transactions, registration, signing) and the agents on top
//! of it (IM, presence, provisioning) and makes every decision that depends
//! on protocol state: where an endpoint event goes, what a lost connection
//! ends, where a redirect leads, when the first sign-in has run out of time,
//! when sign-out is over.
//!
//! It does no I/O and never reads the clock, in quinn-proto's shape:
//!
//! ```text
//!  driver ──handle_bytes / handle_timeout(now)──────────▶ ┌────────┐ ──poll_transmit──▶ driver (socket)
//!  driver ──handle_connected / handle_connect_failed───▶ │ Client │ ──poll_io────────▶ driver (DNS + connect, close)
//!  driver ──handle_connection_lost──────────────────────▶ │        │ ──poll_event─────▶ app / FFI
//!  app ─────commands (send_im, set_status, watch, …)───▶ └────────┘ ──poll_timeout───▶ driver (one timer)
//! ```
//!
//! After any input or command, drain the outputs. The tokio driver
//! ([`crate::driver::Client`]) is one such owner; a test can be another,
//! running a whole session against the embedded server on a simulated
//! clock.

mod diag;
mod event;

pub use event::{AddressBookEvent, ClientEvent};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::addressbook::Schedule;
use crate::auth::mechanism::Authenticator;
use crate::customstates::{ClientVersion, CustomStates, Violation};
use crate::diag::Snapshot;
use crate::discovery::{ServerConfig, Transport};
use crate::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use crate::error::{Error, Provenance};
use crate::messaging::{ImConfig, MessageId, Messaging};
use crate::policy::EffectivePolicy;
use crate::policy::eval::Source;
use crate::presence::ContactList;
use crate::presence::model::{Availability, State};
use crate::presence_agent::{ContactOpId, ContactRequest, Meeting, PresenceAgent, PresenceConfig};
use crate::provisioning::ProvisionGroupList;
use crate::provisioning_agent::{ProvisioningAgent, ProvisioningEvent};
use crate::register::{Credentials, LocalTransport, Registration, RegistrationEvent};
use crate::rng::Rng;

/// The session settings (everything but I/O: sockets, TLS trust, DNS
/// servers and HTTP belong to the driver).
#[derive(Debug, Clone)]
pub struct Config {
    /// The endpoint's settings (user, dialect, credentials, REGISTER
    /// deadline, retries before the first sign-in, ...).
    pub endpoint: EndpointConfig,
    /// A manually configured server; `None`: the driver runs DNS discovery.
    pub server: Option<ServerConfig>,
    /// Instant messaging settings (dialect, DisableIM, idle timeout).
    pub im: ImConfig,
    /// Presence settings (dialect, EnableAppearOffline, lifetimes).
    pub presence: PresenceConfig,
    /// The effective policy (shown by [`Client::snapshot`]).
    pub policy: EffectivePolicy,
    /// The `CustomStateURL` policy (shown by [`Client::snapshot`]).
    pub custom_state_url: Option<String>,
    /// Whose `CustomStateURL` rules apply.
    pub custom_state_client: ClientVersion,
    /// SIP high-security mode: the custom-states URL must be https.
    pub high_security: bool,
    /// How long the whole first sign-in may take, redirects included
    /// (`None`: no limit); it stops while the app is asked for credentials.
    pub sign_in_timeout: Option<Duration>,
    /// How long sign-out waits for the server before giving up.
    pub sign_out_timeout: Duration,
    /// Address-book downloads (`None`: none). The driver does the HTTP and
    /// keeps the files; the Client decides when and from where.
    pub address_book: Option<AddressBookSchedule>,
}

/// When and from where the address book is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookSchedule {
    /// The first download runs at a random time within this after sign-in
    /// (GalDownloadInitialDelay; zero: at once).
    pub initial_delay: Duration,
    /// A fixed base URL; `None`: the one in-band provisioning names.
    pub url: Option<String>,
}

/// What an address-book download run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookRun {
    /// Entries in the book now.
    pub entries: usize,
    /// The day it is current to.
    pub day: String,
    /// The file fetched; `None` when the book was already current.
    pub fetched: Option<String>,
}

impl Config {
    /// Applies the effective client policy the way OC 2007 R2 does:
    /// DisableIM to IM, EnableAppearOffline to presence, CustomStateURL
    /// (unless a URL is configured already) and EnableSIPHighSecurityMode
    /// (2 = https only) to custom states, ServerAddressInternal with
    /// Transport when ConfigurationMode is 1 and no server is configured,
    /// GalDownloadInitialDelay to the address-book schedule; the policy is
    /// kept (the snapshot shows it, and in-band provisioning is layered on
    /// it while the session runs).
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

    /// Defaults around an endpoint configuration.
    pub fn new(endpoint: EndpointConfig) -> Config {
        Config {
            server: None,
            im: ImConfig::new(endpoint.register.dialect),
            presence: PresenceConfig::new(endpoint.register.dialect, &endpoint.register.aor),
            policy: EffectivePolicy::default(),
            custom_state_url: None,
            custom_state_client: ClientVersion::Oc2007R2,
            high_security: false,
            sign_in_timeout: Some(Duration::from_secs(60)),
            sign_out_timeout: Duration::from_secs(5),
            address_book: None,
            endpoint,
        }
    }
}

/// Where the driver should connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// Find the user's server by DNS (the dialect's SRV plan).
    Discover,
    /// The configured server.
    Manual(ServerConfig),
    /// The server a 301/302 named: RFC 3263 (explicit port: A/AAAA; no
    /// port: SRV, then A/AAAA).
    Redirect(ServerConfig),
}

/// I/O the client needs from its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Io {
    /// Resolve `target` and connect to the first address that answers, each
    /// step within its deadline; report every failed address with
    /// [`Client::handle_connect_attempt_failed`], then
    /// [`Client::handle_connected`] or [`Client::handle_connect_failed`].
    Connect(ConnectTarget),
    /// Close the connection (no [`Client::handle_connection_lost`] needed).
    Close,
    /// Fetch the custom presence states at `url` (CustomStateURL, checked
    /// against the URL rules); answer with
    /// [`Client::handle_custom_states_done`]. A fetch still running is
    /// replaced.
    FetchCustomStates {
        /// The URL.
        url: String,
    },
    /// Download the address book from `url` onto what the folder holds;
    /// answer with [`Client::handle_address_book_done`].
    DownloadAddressBook {
        /// The base URL of the address-book files.
        url: String,
    },
}

/// A connection the driver opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The host the certificate was checked against.
    pub host: String,
    /// The server's address.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// How the server was found (e.g. `SRV _sipinternaltls._tcp.contoso.com`).
    pub source: String,
    /// Our local address.
    pub local: SocketAddr,
}

/// The whole client session. See the module docs.
///
/// Method groups: getters; inputs `handle_*`; commands (`start`,
/// `sign_out`, `send_im`, `set_status`, `watch`, ...); outputs
/// `poll_transmit`, `poll_event`, `poll_io`, `poll_timeout`.
#[derive(Debug)]
pub struct Client {
    cfg: Config,
    ep: Endpoint,
    im: Messaging,
    presence: PresenceAgent,
    provisioning: ProvisioningAgent,
    diag: diag::DiagState,
    /// Where the last redirect sent us (connections go there until the
    /// client is done).
    redirect: Option<ServerConfig>,
    /// An [`Io::Connect`] is out and not yet answered.
    connecting: bool,
    sign_in_deadline: Option<Instant>,
    sign_out_deadline: Option<Instant>,
    /// Sign-out's first step (ending sessions and subscriptions) runs
    /// until this; then the un-REGISTER goes out.
    ending_until: Option<Instant>,
    stopped: bool,
    events: VecDeque<ClientEvent>,
    io: VecDeque<Io>,
    /// The first sign-in has happened (custom states loaded, the address
    /// book scheduled).
    signed_in_once: bool,
    /// For the address book's random first download.
    rng: Rng,
    abs: AbsState,
    /// `(now, wall)` at creation: wall-clock times for the snapshot.
    wall0: (Instant, SystemTime),
}

/// The address book's side of the session.
#[derive(Debug, Default)]
struct AbsState {
    schedule: Schedule,
    /// A download is running in the driver.
    running: bool,
    /// When the first attempt found no URL yet (waiting for provisioning).
    waiting_since: Option<Instant>,
    /// In-band provisioning (which carries the URL) has answered.
    provisioning_done: bool,
    book: Option<AddressBookRun>,
    last_success: Option<Instant>,
    last_error: Option<String>,
}

impl Client {
    /// A new session. `seed` drives tags, branches and jitter, `entropy`
    /// the NTLM secrets; `(now, wall)` anchor the wall clock.
    pub fn new(
        cfg: Config,
        seed: u64,
        entropy: [u8; 32],
        now: Instant,
        wall: SystemTime,
    ) -> Client {
        let mut ep = Endpoint::new(cfg.endpoint.clone(), seed, entropy, now, wall);
        ep.handle_methods(&Messaging::METHODS);
        ep.handle_methods(&PresenceAgent::METHODS);
        Client {
            im: Messaging::new(cfg.im.clone()),
            presence: PresenceAgent::new(cfg.presence.clone()),
            provisioning: ProvisioningAgent::new(
                cfg.endpoint.register.dialect,
                &cfg.endpoint.register.aor,
            ),
            ep,
            cfg,
            diag: diag::DiagState::default(),
            redirect: None,
            connecting: false,
            sign_in_deadline: None,
            sign_out_deadline: None,
            ending_until: None,
            stopped: false,
            events: VecDeque::new(),
            io: VecDeque::new(),
            signed_in_once: false,
            rng: Rng::from_seed(seed ^ 0xab5_5eed),
            abs: AbsState::default(),
            wall0: (now, wall),
        }
    }

    // ----- getters -----------------------------------------------------------

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The registration (state, GRUU, security association).
    pub fn registration(&self) -> &Registration {
        self.ep.registration()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// In-band provisioning (OCS).
    pub fn provisioning(&self) -> &ProvisioningAgent {
        &self.provisioning
    }

    /// The server-stored contact list (OCS), once the server sent it.
    pub fn contact_list(&self) -> Option<&ContactList> {
        self.presence.contact_list()
    }

    /// True once the session has ended (signed out, failed, or out of
    /// time); [`ClientEvent::Stopped`] was the last event.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The end of the first sign-in's time, while it runs (the driver
    /// bounds a connect attempt by it).
    pub fn sign_in_deadline(&self) -> Option<Instant> {
        self.sign_in_deadline
    }

    /// The configuration snapshot (`ocs diag`) at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut snap = self.diag.snapshot(&self.cfg, &self.ep, &self.provisioning);
        self.fill_address_book_info(&mut snap, now);
        snap
    }

    fn wall(&self, at: Instant) -> SystemTime {
        self.wall0.1 + at.saturating_duration_since(self.wall0.0)
    }

    fn fill_address_book_info(&self, snap: &mut Snapshot, now: Instant) {
        let ab = &mut snap.address_book;
        let Some(cfg) = &self.cfg.address_book else {
            ab.status = "not configured (no address-book folder)".into();
            return;
        };
        if let Some(u) = &cfg.url {
            ab.url = Some(u.clone());
            ab.url_from = Some("client configuration".into());
        }
        ab.last_download = self
            .abs
            .last_success
            .map(|t| crate::diag::utc_timestamp(self.wall(t)));
        ab.next_download = self
            .abs
            .schedule
            .next_download()
            .map(|at| crate::diag::utc_timestamp(self.wall(at.max(now))));
        ab.status = match (&self.abs.book, &self.abs.last_error) {
            _ if self.abs.running => "downloading".into(),
            (_, Some(e)) => format!("failing: {e}"),
            (Some(b), None) => format!("{} entries, current to day {}", b.entries, b.day),
            (None, None) if self.signed_in_once => "waiting for the first download".into(),
            (None, None) => "waiting for sign-in".into(),
        };
    }

    // ----- commands ----------------------------------------------------------

    /// Plugs in a host security mechanism (Kerberos, SSPI).
    pub fn set_authenticator(&mut self, a: Box<dyn Authenticator>) {
        self.ep.set_authenticator(a);
    }

    /// Starts signing in: the first sign-in's clock starts, and the driver
    /// is asked to connect.
    pub fn start(&mut self, now: Instant) {
        self.sign_in_deadline = self.cfg.sign_in_timeout.map(|t| now + t);
        if let Err(e) = self.ep.register(now) {
            self.finish(Some(e));
            return;
        }
        self.drive(now);
    }

    /// Signs out in order, as Communicator does: every open IM session
    /// gets its BYE, watches and our own subscriptions end (Expires: 0),
    /// messages still on the wire wait for their answer (at most half of
    /// `sign_out_timeout`; then they fail, [`FailureReason::SignedOut`]),
    /// then the un-REGISTER goes out. `SignedOut` and
    /// [`ClientEvent::Stopped`] follow when the server has answered or
    /// `sign_out_timeout` has passed. No new messages are accepted
    /// meanwhile.
    ///
    /// [`FailureReason::SignedOut`]: crate::im::outcome::FailureReason::SignedOut
    pub fn sign_out(&mut self, now: Instant) {
        if self.stopped || self.sign_out_deadline.is_some() {
            return;
        }
        let limit = self.cfg.sign_out_timeout;
        self.sign_out_deadline = Some(now + limit);
        self.sign_in_deadline = None;
        if self.ep.registration().is_registered() && self.ep.local().is_some() {
            self.ending_until = Some(now + limit / 2);
            self.im.end_all(&mut self.ep, now);
            self.presence.end_all(&mut self.ep, now);
        } else {
            self.im.end_all(&mut self.ep, now);
            self.im.abandon_pending();
            self.ep.unregister(now);
        }
        self.drive(now);
    }

    /// The network changed: reconnect and re-register now.
    pub fn network_changed(&mut self, now: Instant) {
        self.io.push_back(Io::Close);
        self.emit(ClientEvent::Disconnected("network changed".into()));
        self.ep.network_changed(now);
        // Dialogs and requests of the old connection are gone for every
        // layer, as when it drops.
        self.im.handle_connection_lost();
        self.presence.handle_connection_lost();
        self.provisioning.handle_connection_lost();
        self.drive(now);
    }

    /// Credentials after [`RegistrationEvent::CredentialsNeeded`].
    pub fn set_credentials(&mut self, creds: Credentials, now: Instant) {
        // The first sign-in's clock starts again once the user has
        // answered (it stops while they are asked).
        if !self.ep.registration().has_signed_in() {
            self.sign_in_deadline = self.cfg.sign_in_timeout.map(|t| now + t);
        }
        if let Err(e) = self.ep.set_credentials(creds, now) {
            self.emit(ClientEvent::Registration(RegistrationEvent::Failed(e)));
        }
        self.drive(now);
    }

    /// Sends an instant message. The id ends in exactly one delivered or
    /// failed event; an immediate refusal (DisableIM, not connected) is
    /// returned as an error.
    pub fn send_im(&mut self, to: &str, text: &str, now: Instant) -> Result<MessageId, Error> {
        let r = if self.ep.registration().is_registered() || self.ep.local().is_some() {
            self.im.send(&mut self.ep, to, text, now)
        } else {
            Err(Error::Transport("not connected".into()))
        };
        self.drive(now);
        r
    }

    /// Tells `to` we are (or stopped) typing.
    pub fn send_typing(&mut self, to: &str, active: bool, now: Instant) {
        self.im.send_typing(&mut self.ep, to, active, now);
        self.drive(now);
    }

    /// Ends the IM session with `to`.
    pub fn end_im_session(&mut self, to: &str, now: Instant) {
        self.im.end_session(&mut self.ep, to, now);
        self.drive(now);
    }

    /// Applies the effective DisableIM policy (`None` allows IM).
    pub fn set_disable_im(&mut self, provenance: Option<Provenance>) {
        self.im.set_disable_im(provenance);
    }

    /// The host's idle time (see [`PresenceAgent::set_idle`]).
    pub fn set_idle(&mut self, idle: Duration, now: Instant) {
        self.presence.set_idle(&mut self.ep, idle, now);
        self.drive(now);
    }

    /// A call started or ended (see [`PresenceAgent::set_in_call`]).
    pub fn set_in_call(&mut self, in_call: bool, now: Instant) {
        self.presence.set_in_call(&mut self.ep, in_call, now);
        self.drive(now);
    }

    /// A meeting from the host's calendar (see
    /// [`PresenceAgent::set_in_meeting`]).
    pub fn set_in_meeting(&mut self, meeting: Option<Meeting>, now: Instant) {
        self.presence.set_in_meeting(&mut self.ep, meeting, now);
        self.drive(now);
    }

    /// "Reset status" (see [`PresenceAgent::reset_status`]).
    pub fn reset_status(&mut self, now: Instant) {
        self.presence.reset_status(&mut self.ep, now);
        self.drive(now);
    }

    /// Publishes our status and note; appear offline is refused unless the
    /// EnableAppearOffline policy allows it.
    pub fn set_status(
        &mut self,
        state: State,
        note: Option<&str>,
        now: Instant,
    ) -> Result<(), Error> {
        let r = self.presence.set_status(&mut self.ep, state, note, now);
        self.drive(now);
        r
    }

    /// Publishes a custom state: availability plus our text for `lcid`.
    pub fn set_custom_state(
        &mut self,
        availability: Availability,
        lcid: u32,
        text: &str,
        note: Option<&str>,
        now: Instant,
    ) {
        self.presence
            .set_custom_state(&mut self.ep, availability, lcid, text, note, now);
        self.drive(now);
    }

    /// Starts watching a contact's presence.
    pub fn watch(&mut self, uri: &str, now: Instant) {
        self.presence.watch(&mut self.ep, uri, now);
        self.drive(now);
    }

    /// Stops watching a contact.
    pub fn unwatch(&mut self, uri: &str, now: Instant) {
        self.presence.unwatch(&mut self.ep, uri, now);
        self.drive(now);
    }

    /// Changes the contact list; the id ends in exactly one
    /// `ContactListChanged` or `ContactListChangeFailed` presence event.
    pub fn change_contacts(
        &mut self,
        request: ContactRequest,
        now: Instant,
    ) -> Result<ContactOpId, Error> {
        let r = self.presence.change_contacts(&mut self.ep, request, now);
        self.drive(now);
        r
    }

    /// Loads `CustomStateURL` again (Communicator only loads it at
    /// sign-in): [`Io::FetchCustomStates`], then a `CustomStates` or
    /// `CustomStatesFailed` event.
    pub fn reload_custom_states(&mut self) {
        match self.cfg.custom_state_url.clone() {
            Some(url) => self.io.push_back(Io::FetchCustomStates { url }),
            None => self.emit(ClientEvent::CustomStatesFailed {
                url: String::new(),
                error: "no CustomStateURL is configured".into(),
            }),
        }
    }

    /// Downloads the address book now instead of at the scheduled time.
    pub fn download_address_book(&mut self, now: Instant) {
        if self.cfg.address_book.is_some() {
            self.abs.schedule.download_now(now);
            self.address_book_due(now);
        }
    }

    // ----- inputs ------------------------------------------------------------

    /// The custom states fetched after [`Io::FetchCustomStates`] (the
    /// valid states and the problems found), or why fetching failed.
    pub fn handle_custom_states_done(
        &mut self,
        url: String,
        result: Result<(CustomStates, Vec<Violation>), String>,
    ) {
        self.emit(match result {
            Ok((states, warnings)) => ClientEvent::CustomStates { states, warnings },
            Err(error) => ClientEvent::CustomStatesFailed { url, error },
        });
    }

    /// What the address-book folder held when the driver started (search
    /// works before the first download).
    pub fn handle_address_book_loaded(&mut self, run: AddressBookRun) {
        // A download that finished first wins.
        if self.abs.book.is_none() {
            self.abs.book = Some(run.clone());
            self.emit(ClientEvent::AddressBook(AddressBookEvent::Ready {
                entries: run.entries,
                day: run.day,
                fetched: None,
            }));
        }
    }

    /// An [`Io::DownloadAddressBook`] run ended.
    pub fn handle_address_book_done(
        &mut self,
        result: Result<AddressBookRun, String>,
        now: Instant,
    ) {
        self.abs.running = false;
        match result {
            Ok(run) => {
                self.abs.schedule.succeeded(now);
                self.abs.last_success = Some(now);
                self.abs.last_error = None;
                self.abs.book = Some(run.clone());
                self.emit(ClientEvent::AddressBook(AddressBookEvent::Ready {
                    entries: run.entries,
                    day: run.day,
                    fetched: run.fetched,
                }));
            }
            Err(error) => {
                let out = self.abs.schedule.failed(now);
                self.abs.last_error = Some(error.clone());
                self.emit(ClientEvent::AddressBook(AddressBookEvent::Failed {
                    error: error.clone(),
                    failures: out.failures,
                    retry_in: out.retry_at.saturating_duration_since(now),
                }));
                if let Some(failing_for) = out.warn {
                    self.emit(ClientEvent::AddressBook(AddressBookEvent::FailingForADay {
                        failing_for,
                        error,
                    }));
                }
            }
        }
    }

    /// The driver connected (after [`Io::Connect`]).
    pub fn handle_connected(&mut self, c: Connected, now: Instant) {
        self.connecting = false;
        let local = LocalTransport {
            transport: c.transport,
            addr: c.local,
        };
        self.emit(ClientEvent::Connected {
            host: c.host,
            addr: c.addr,
            transport: c.transport,
            source: c.source,
            local: c.local,
        });
        self.ep.connected(local, now);
        self.drive(now);
    }

    /// One address of an [`Io::Connect`] failed; the driver tries the next.
    pub fn handle_connect_attempt_failed(&mut self, target: String, error: String) {
        self.emit(ClientEvent::ConnectFailed { target, error });
    }

    /// [`Io::Connect`] found no server or reached none; `error` names the
    /// steps and targets. Before the first successful sign-in this ends
    /// sign-in (unless retries were asked for); later it is retried with
    /// back-off.
    pub fn handle_connect_failed(&mut self, error: Error, now: Instant) {
        self.connecting = false;
        self.ep.handle_connect_failed(error, now);
        self.drive(now);
    }

    /// Bytes from the connection: a whole datagram (UDP) or any piece of
    /// the stream (TCP/TLS).
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        self.ep.handle_bytes(bytes, now);
        self.drive(now);
    }

    /// The connection dropped (closed by the server, or a send failed):
    /// every layer forgets what belonged to it, the registration retries.
    pub fn handle_connection_lost(&mut self, why: String, now: Instant) {
        self.emit(ClientEvent::Disconnected(why));
        self.ep.handle_connection_lost(now);
        self.im.handle_connection_lost();
        self.presence.handle_connection_lost();
        self.provisioning.handle_connection_lost();
        self.drive(now);
    }

    /// Advances every timer up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        if self.sign_out_deadline.is_some_and(|d| d <= now) {
            // The server did not answer in time: signed out all the same.
            let limit = crate::error::show_duration(self.cfg.sign_out_timeout);
            self.emit(ClientEvent::Registration(RegistrationEvent::SignedOut {
                by_server: false,
                reason: Some(format!(
                    "the server did not answer the sign-out within {limit}"
                )),
            }));
            self.finish(None);
            return;
        }
        if self.sign_in_deadline.is_some_and(|d| d <= now) {
            let limit = self.cfg.sign_in_timeout.unwrap_or_default();
            self.finish(Some(Error::Transport(format!(
                "sign-in did not complete within {}",
                crate::error::show_duration(limit)
            ))));
            return;
        }
        self.ep.handle_timeout(now);
        self.im.handle_timeout(&mut self.ep, now);
        self.presence.handle_timeout(&mut self.ep, now);
        self.address_book_due(now);
        self.drive(now);
    }

    /// Starts a download when one is due: from the configured URL, else
    /// the one provisioning names. With GalDownloadInitialDelay 0 the first
    /// download is due before provisioning has answered: it waits for it
    /// (up to 30 s) instead of counting a failure.
    fn address_book_due(&mut self, now: Instant) {
        let Some(cfg) = &self.cfg.address_book else {
            return;
        };
        if self.abs.running || !self.abs.schedule.start_if_due(now) {
            return;
        }
        let url = cfg.url.clone().or_else(|| {
            self.provisioning
                .last()
                .and_then(|p| p.abs_url(self.ep.registration().is_remote_user()))
                .map(str::to_owned)
        });
        match url {
            Some(url) => {
                self.abs.running = true;
                self.abs.waiting_since = None;
                self.io.push_back(Io::DownloadAddressBook { url });
            }
            None => {
                let since = *self.abs.waiting_since.get_or_insert(now);
                let ocs = self.cfg.endpoint.register.dialect == crate::discovery::Dialect::Ocs;
                if ocs && !self.abs.provisioning_done && now - since < Duration::from_secs(30) {
                    self.abs.schedule.postpone(now + Duration::from_millis(200));
                    return;
                }
                self.abs.waiting_since = None;
                self.handle_address_book_done(
                    Err("no address-book URL: none configured and none provisioned".into()),
                    now,
                );
            }
        }
    }

    // ----- outputs -----------------------------------------------------------

    /// The next bytes to send on the connection.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.stopped {
            return None;
        }
        self.ep.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next I/O the driver must do.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// When [`Client::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        [
            self.ep.poll_timeout(),
            self.im.poll_timeout(),
            self.presence.poll_timeout(),
            self.sign_out_deadline,
            self.sign_in_deadline,
            self.ending_until,
            self.abs
                .schedule
                .next_download()
                .filter(|_| !self.abs.running),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- internals ---------------------------------------------------------

    fn emit(&mut self, e: ClientEvent) {
        self.diag.note(&e);
        self.events.push_back(e);
    }

    /// Ends the session: the failure (if any), then `Stopped`.
    fn finish(&mut self, failure: Option<Error>) {
        if self.stopped {
            return;
        }
        if let Some(e) = failure {
            self.emit(ClientEvent::Registration(RegistrationEvent::Failed(e)));
        }
        self.stopped = true;
        self.sign_in_deadline = None;
        self.sign_out_deadline = None;
        self.io.push_back(Io::Close);
        self.emit(ClientEvent::Stopped);
    }

    /// Routes the endpoint's events to the agents and the agents' events
    /// out, until nothing moves.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(e) = self.ep.poll_event() {
                busy = true;
                if self.stopped {
                    continue;
                }
                self.route(e, now);
            }
            while let Some(e) = self.im.poll_event() {
                busy = true;
                self.emit(ClientEvent::Im(e));
            }
            while let Some(e) = self.presence.poll_event() {
                busy = true;
                self.emit(ClientEvent::Presence(e));
            }
            while let Some(e) = self.provisioning.poll_event() {
                busy = true;
                if let ProvisioningEvent::Received(doc) = &e {
                    self.apply_in_band(doc, now);
                }
                self.abs.provisioning_done = true;
                self.emit(ClientEvent::Provisioning(e));
            }
            if !busy && !self.sign_out_step(now) {
                return;
            }
        }
    }

    /// In-band provisioning arrived: its ucPolicy values take effect on
    /// the running session where they win in the documented precedence
    /// (HKLM > HKCU > in-band > the app's options > defaults). A value the
    /// server does not send, or one a machine or user policy decides,
    /// leaves the session as the app configured it.
    fn apply_in_band(&mut self, doc: &ProvisionGroupList, now: Instant) {
        let mut policy = self.cfg.policy.clone();
        policy.set_in_band(&doc.to_in_band());
        let disable_im = policy.disable_im();
        if disable_im.source == Source::InBand {
            self.im
                .set_disable_im(disable_im.value.then_some(disable_im.provenance));
        }
        let appear = policy.enable_appear_offline();
        if appear.source == Source::InBand {
            let allowed = if appear.value {
                Ok(appear.provenance)
            } else {
                Err(appear.provenance)
            };
            self.presence
                .apply_appear_offline_policy(&mut self.ep, allowed, now);
        }
    }

    /// Sign-out's first step is over when IM and presence have nothing
    /// left on the wire, or its time is up: what is left fails, and the
    /// un-REGISTER goes out. True when it moved on.
    fn sign_out_step(&mut self, now: Instant) -> bool {
        let Some(until) = self.ending_until else {
            return false;
        };
        let quiet = self.im.is_quiet() && self.presence.is_quiet();
        if !quiet && now < until && self.ep.local().is_some() {
            return false;
        }
        self.ending_until = None;
        self.im.abandon_pending();
        self.presence.abandon_pending();
        self.ep.unregister(now);
        true
    }

    fn route(&mut self, e: EndpointEvent, now: Instant) {
        if self.im.handle_event(&mut self.ep, &e, now)
            || self.presence.handle_event(&mut self.ep, &e, now)
            || self.provisioning.handle_event(&e)
        {
            return;
        }
        match e {
            // One connection attempt at a time.
            EndpointEvent::NeedConnection if !self.connecting => {
                self.connecting = true;
                let target = match (&self.redirect, &self.cfg.server) {
                    (Some(r), _) => ConnectTarget::Redirect(r.clone()),
                    (None, Some(s)) => ConnectTarget::Manual(s.clone()),
                    (None, None) => ConnectTarget::Discover,
                };
                self.io.push_back(Io::Connect(target));
            }
            EndpointEvent::ConnectionBroken(why) => {
                self.io.push_back(Io::Close);
                self.handle_connection_lost(why, now);
            }
            EndpointEvent::SecurityViolation(s) => self.emit(ClientEvent::SecurityViolation(s)),
            EndpointEvent::Registration(r) => self.registration_event(r, now),
            // Malformed input was dropped; the driver sends no requests of
            // its own and claims no methods, so nothing else can arrive.
            _ => {}
        }
    }

    fn registration_event(&mut self, r: RegistrationEvent, now: Instant) {
        match &r {
            RegistrationEvent::Registered { refresh: false, .. } => {
                self.sign_in_deadline = None;
                self.presence.on_registered(&mut self.ep, now);
                self.provisioning.on_registered(&mut self.ep, now);
                if !self.signed_in_once {
                    // Like Communicator: the custom states load once after
                    // sign-in, the address book's first download waits a
                    // random time within GalDownloadInitialDelay.
                    self.signed_in_once = true;
                    if let Some(url) = self.cfg.custom_state_url.clone() {
                        self.io.push_back(Io::FetchCustomStates { url });
                    }
                    if let Some(ab) = &self.cfg.address_book {
                        let delay = ab.initial_delay;
                        self.abs.schedule.signed_in(now, delay, &mut self.rng);
                    }
                }
            }
            // Asking a person for a password takes as long as it takes: no
            // sign-in deadline meanwhile.
            RegistrationEvent::CredentialsNeeded { .. } => self.sign_in_deadline = None,
            RegistrationEvent::Redirected(to) => {
                self.redirect = Some(ServerConfig {
                    host: to.host.clone(),
                    port: to.port,
                    transport: to.transport,
                });
                self.io.push_back(Io::Close);
            }
            _ => {}
        }
        let end = matches!(
            r,
            RegistrationEvent::Failed(_) | RegistrationEvent::SignedOut { .. }
        );
        let redirected = matches!(r, RegistrationEvent::Redirected(_));
        self.emit(ClientEvent::Registration(r));
        if redirected {
            // The whole sign-in again at the home pool: new connection,
            // unsigned REGISTER, new handshake (NeedConnection follows).
            if let Err(e) = self.ep.follow_redirect(now) {
                self.finish(Some(e));
            }
        }
        if end {
            self.finish(None);
        }
    }
}
