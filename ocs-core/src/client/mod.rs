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

mod address_book;
mod config;
mod diag;
mod event;

use address_book::AbsState;
pub use config::{AddressBookRun, AddressBookSchedule, Config};

pub use event::{AddressBookEvent, ClientEvent};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::addressbook::Schedule;
use crate::auth::mechanism::Authenticator;
use crate::customstates::{ClientVersion, CustomStates, Violation};
use crate::diag::Severity;
use crate::diag::Snapshot;
use crate::discovery::{ServerConfig, Transport};
use crate::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use crate::error::TransportFailure;
use crate::error::{Error, Provenance};
use crate::log::{ClientSpan, log};
use crate::messaging::{ImConfig, MessageId, Messaging};
use crate::policy::EffectivePolicy;
use crate::policy::eval::Source;
use crate::presence::ContactList;
use crate::presence::model::{Availability, State};
use crate::presence_agent::{
    ContactOpId, ContactRequest, Meeting, PresenceAgent, PresenceConfig, PublishId, WatchId,
};
use crate::provisioning::ProvisionGroupList;
use crate::provisioning_agent::{ProvisioningAgent, ProvisioningEvent};
use crate::register::{Credentials, LocalTransport, Registration, RegistrationEvent};
use crate::rng::Rng;

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
    /// Provision a TLS-DSK certificate for the user from the Certificate
    /// Provisioning service at `url` (MS-OCAUTHWS: a web ticket, then
    /// GetAndPublishCert with a new key's request), keep it, and answer
    /// with [`Client::handle_certificate_done`]. Asked when a TLS-DSK
    /// challenge names the service and no fresh certificate is set (with
    /// `RegisterConfig::provision_certificates`), and again before the
    /// one in use lapses (`renewal`).
    ProvisionCertificate {
        /// The service's URL (the challenge's `sts-uri`).
        url: String,
        /// True when a certificate in use is to be replaced.
        renewal: bool,
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
    /// Since when a signed-in session has been without its registration
    /// (the connection dropped), and the retries scheduled since: what
    /// [`ClientEvent::Reconnected`] reports.
    down: Option<(Instant, u32)>,
    /// For the address book's random first download.
    rng: Rng,
    abs: AbsState,
    /// `(now, wall)` at creation: wall-clock times for the snapshot.
    wall0: (Instant, SystemTime),
    /// This client's `tracing` span (its AOR and epid).
    span: ClientSpan,
    /// The session's own policy values while in-band provisioning
    /// overrides them.
    before_in_band: BeforeInBand,
}

/// Values in-band provisioning has replaced, to restore when the server
/// stops sending them.
#[derive(Debug, Default)]
struct BeforeInBand {
    disable_im: Option<Option<Provenance>>,
    appear_offline: Option<Result<Provenance, Provenance>>,
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
        let (cfg_aor, cfg_epid) = (
            cfg.endpoint.register.aor.clone(),
            cfg.endpoint.register.epid.clone(),
        );
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
            down: None,
            rng: Rng::from_seed(seed ^ 0xab5_5eed),
            abs: AbsState::default(),
            wall0: (now, wall),
            span: ClientSpan::new(&cfg_aor, &cfg_epid),
            before_in_band: BeforeInBand::default(),
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

    /// Enters this client's `tracing` span (its AOR and epid) until the
    /// guard drops: the driver's own events carry it too.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn enter_span(&self) -> crate::log::SpanGuard {
        self.span.enter()
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

    /// Plugs in a host security mechanism (Kerberos, SSPI).
    pub fn set_authenticator(&mut self, a: Box<dyn Authenticator>) {
        self.ep.set_authenticator(a);
    }

    /// Starts signing in: the first sign-in's clock starts, and the driver
    /// is asked to connect.
    pub fn start(&mut self, now: Instant) {
        let _in = self.span.enter();
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
        let _in = self.span.enter();
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
        let _in = self.span.enter();
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
        let _in = self.span.enter();
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

    /// The answer to [`Io::ProvisionCertificate`]: the provisioned
    /// certificate as an authenticator (e.g.
    /// `TlsDskAuthenticator::from_pem`), or why provisioning failed. A
    /// waiting sign-in goes on (without TLS-DSK after a failure); a
    /// renewed certificate is used at once.
    pub fn handle_certificate_done(
        &mut self,
        result: Result<Box<dyn Authenticator>, String>,
        now: Instant,
    ) {
        let _in = self.span.enter();
        if let Err(e) = self.ep.handle_certificate(result, now) {
            self.emit(ClientEvent::Registration(RegistrationEvent::Failed(e)));
        }
        self.drive(now);
    }

    /// Sends an instant message. The id ends in exactly one delivered or
    /// failed event; an immediate refusal (DisableIM, not connected) is
    /// returned as an error.
    pub fn send_im(&mut self, to: &str, text: &str, now: Instant) -> Result<MessageId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let r = if self.ep.registration().is_registered() || self.ep.local().is_some() {
            self.im.send(&mut self.ep, to, text, now)
        } else {
            Err(Error::transport(
                TransportFailure::NotConnected,
                "not connected",
            ))
        };
        self.drive(now);
        r
    }

    /// Tells `to` we are (or stopped) typing.
    pub fn send_typing(&mut self, to: &str, active: bool, now: Instant) {
        let _in = self.span.enter();
        self.im.send_typing(&mut self.ep, to, active, now);
        self.drive(now);
    }

    /// Ends the IM session with `to`.
    pub fn end_im_session(&mut self, to: &str, now: Instant) {
        let _in = self.span.enter();
        self.im.end_session(&mut self.ep, to, now);
        self.drive(now);
    }

    /// Applies the effective DisableIM policy (`None` allows IM).
    pub fn set_disable_im(&mut self, provenance: Option<Provenance>) {
        self.im.set_disable_im(provenance);
    }

    /// The host's idle time (see [`PresenceAgent::set_idle`]).
    pub fn set_idle(&mut self, idle: Duration, now: Instant) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self.presence.set_idle(&mut self.ep, idle, now);
        self.drive(now);
        Ok(id)
    }

    /// A call started or ended (see [`PresenceAgent::set_in_call`]).
    pub fn set_in_call(&mut self, in_call: bool, now: Instant) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self.presence.set_in_call(&mut self.ep, in_call, now);
        self.drive(now);
        Ok(id)
    }

    /// A meeting from the host's calendar (see
    /// [`PresenceAgent::set_in_meeting`]).
    pub fn set_in_meeting(
        &mut self,
        meeting: Option<Meeting>,
        now: Instant,
    ) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self.presence.set_in_meeting(&mut self.ep, meeting, now);
        self.drive(now);
        Ok(id)
    }

    /// "Reset status" (see [`PresenceAgent::reset_status`]).
    pub fn reset_status(&mut self, now: Instant) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self.presence.reset_status(&mut self.ep, now);
        self.drive(now);
        Ok(id)
    }

    /// Publishes our status and note; appear offline is refused unless the
    /// EnableAppearOffline policy allows it.
    pub fn set_status(
        &mut self,
        state: State,
        note: Option<&str>,
        now: Instant,
    ) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
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
    ) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self
            .presence
            .set_custom_state(&mut self.ep, availability, lcid, text, note, now);
        self.drive(now);
        Ok(id)
    }

    /// Starts watching a contact's presence (see
    /// [`PresenceAgent::watch`]): the id ends in one `Watching` or
    /// `WatchFailed` presence event.
    pub fn watch(&mut self, uri: &str, now: Instant) -> Result<WatchId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let r = self.presence.watch(&mut self.ep, uri, now);
        self.drive(now);
        r
    }

    /// Releases the watch command `id` asked for (see
    /// [`PresenceAgent::release_watch`]).
    pub fn release_watch(&mut self, id: WatchId, now: Instant) {
        let _in = self.span.enter();
        self.presence.release_watch(&mut self.ep, id, now);
        self.drive(now);
    }

    /// Changes the note, keeping the state set last (see
    /// [`PresenceAgent::set_note`]).
    pub fn set_note(&mut self, note: Option<&str>, now: Instant) -> Result<PublishId, Error> {
        self.accepting()?;
        let _in = self.span.enter();
        let id = self.presence.set_note(&mut self.ep, note, now);
        self.drive(now);
        Ok(id)
    }

    /// Stops watching a contact.
    pub fn unwatch(&mut self, uri: &str, now: Instant) {
        let _in = self.span.enter();
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
        self.accepting()?;
        let _in = self.span.enter();
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

    /// The driver connected (after [`Io::Connect`]).
    pub fn handle_connected(&mut self, c: Connected, now: Instant) {
        let _in = self.span.enter();
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
        let _in = self.span.enter();
        self.connecting = false;
        self.ep.handle_connect_failed(error, now);
        self.drive(now);
    }

    /// Bytes from the connection: a whole datagram (UDP) or any piece of
    /// the stream (TCP/TLS).
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        let _in = self.span.enter();
        self.ep.handle_bytes(bytes, now);
        self.drive(now);
    }

    /// The connection dropped (closed by the server, or a send failed):
    /// every layer forgets what belonged to it, the registration retries.
    pub fn handle_connection_lost(&mut self, why: String, now: Instant) {
        let _in = self.span.enter();
        self.emit(ClientEvent::Disconnected(why));
        if self.signed_in_once && self.down.is_none() {
            self.down = Some((now, 0));
        }
        self.ep.handle_connection_lost(now);
        self.im.handle_connection_lost();
        self.presence.handle_connection_lost();
        self.provisioning.handle_connection_lost();
        self.drive(now);
    }

    /// Advances every timer up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _in = self.span.enter();
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
            self.finish(Some(Error::transport(
                TransportFailure::TimedOut,
                format!(
                    "sign-in did not complete within {}",
                    crate::error::show_duration(limit)
                ),
            )));
            return;
        }
        self.ep.handle_timeout(now);
        self.im.handle_timeout(&mut self.ep, now);
        self.presence.handle_timeout(&mut self.ep, now);
        self.address_book_due(now);
        self.drive(now);
    }

    /// The next bytes to send on the connection.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.stopped {
            return None;
        }
        self.ep.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        crate::queue::take_next(&mut self.events)
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

    /// New commands are refused with [`Error::Stopped`] once the session
    /// has stopped or is signing out: nothing would carry them out.
    fn accepting(&self) -> Result<(), Error> {
        if self.stopped || self.sign_out_deadline.is_some() {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn emit(&mut self, e: ClientEvent) {
        self.diag.note(&e);
        let _in = self.span.enter();
        let (id, severity) = (e.id(), e.severity());
        match severity {
            Severity::Error => log!(ERROR, event_id = id, severity = ?severity, "{}", e.summary()),
            Severity::Warning => log!(WARN, event_id = id, severity = ?severity, "{}", e.summary()),
            Severity::Info => log!(INFO, event_id = id, severity = ?severity, "{}", e.summary()),
            Severity::Verbose => {
                log!(DEBUG, event_id = id, severity = ?severity, "{}", e.summary())
            }
        }
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
        self.ending_until = None;
        self.io.push_back(Io::Close);
        // Every message still open ends now (nothing the app sent
        // disappears), before the last event.
        self.im.settle_all();
        self.presence.settle_all();
        while let Some(e) = self.im.poll_event() {
            self.emit(ClientEvent::Im(e));
        }
        while let Some(e) = self.presence.poll_event() {
            self.emit(ClientEvent::Presence(e));
        }
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
        log!(
            INFO,
            "in-band provisioning: DisableIM = {} (from {}), EnableAppearOffline = {} (from {})",
            disable_im.value,
            disable_im.provenance.source,
            policy.enable_appear_offline().value,
            policy.enable_appear_offline().provenance.source
        );
        // A value the server stops sending gives way to what the session
        // had before the server's took over.
        if disable_im.source == Source::InBand {
            if self.before_in_band.disable_im.is_none() {
                self.before_in_band.disable_im = Some(self.im.disable_im().cloned());
            }
            self.im
                .set_disable_im(disable_im.value.then_some(disable_im.provenance));
        } else if let Some(before) = self.before_in_band.disable_im.take() {
            self.im.set_disable_im(before);
        }
        let appear = policy.enable_appear_offline();
        let allowed = if appear.source == Source::InBand {
            if self.before_in_band.appear_offline.is_none() {
                self.before_in_band.appear_offline =
                    Some(self.presence.appear_offline_policy().clone());
            }
            Some(if appear.value {
                Ok(appear.provenance)
            } else {
                Err(appear.provenance)
            })
        } else {
            self.before_in_band.appear_offline.take()
        };
        if let Some(allowed) = allowed {
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
            RegistrationEvent::CertificateNeeded { sts_uri, renewal } => {
                self.io.push_back(Io::ProvisionCertificate {
                    url: sts_uri.clone(),
                    renewal: *renewal,
                });
            }
            RegistrationEvent::RetryScheduled { .. } => {
                if let Some((_, retries)) = &mut self.down {
                    *retries += 1;
                }
            }
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
        let back = matches!(r, RegistrationEvent::Registered { refresh: false, .. });
        self.emit(ClientEvent::Registration(r));
        if back && let Some((since, retries)) = self.down.take() {
            self.emit(ClientEvent::Reconnected {
                down_for: now.saturating_duration_since(since),
                attempts: retries.max(1),
            });
        }
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
