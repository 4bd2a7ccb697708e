//! The uniffi facade for Python, Kotlin and Swift (proc-macros, no UDL;
//! namespace `ocs`).
//!
//! Shaped like the C API in [`crate::c`]: a client object made from a
//! configuration, one event thread (`ocs-events`) per signed-in client that
//! owns the core's [`Client`], delivers events to the host's listeners and
//! carries out the host's commands in between. The differences are what
//! uniffi gives for free: `async` methods become coroutines (Python),
//! `suspend` functions (Kotlin) and `async` functions (Swift); listeners are
//! foreign traits; a subscription is an object the host owns.
//!
//! Async methods do not need a particular executor on the host side: each
//! one hands its command to the event thread and awaits a oneshot reply,
//! while the I/O runs on the library's one tokio runtime ([`crate::runtime`],
//! shared with the C API).
//!
//! Listener and logger calls run on the client's `ocs-events` thread, one at
//! a time and in order. A listener that throws is reported to the logger and
//! otherwise ignored; it never stops the client.
//!
//! The core's [`Client`] has one owner (`next_event` takes `&mut self`): the
//! event thread owns it, and commands that wait for the server (contact-list
//! changes) run on a cloned [`ClientHandle`](ocs_core::driver::ClientHandle)
//! so events keep flowing.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use ocs_core::customstates::{self, CustomStates};
use ocs_core::diag::Severity;
use ocs_core::discovery::{self, ServerConfig};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings, TraceConfig};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::error::Error;
use ocs_core::im::outcome::FailureReason;
use ocs_core::messaging::{ImEvent, MessageId};
use ocs_core::policy::{self as core_policy, EffectivePolicy, InBand};
use ocs_core::presence as core_presence;
use ocs_core::presence::model::{self, State};
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::provisioning_agent::ProvisioningEvent;
use ocs_core::register::{Credentials, CredentialsReason, RegisterConfig, RegistrationEvent};
use tokio::sync::{mpsc, oneshot};

use crate::runtime;

// ----- errors ----------------------------------------------------------------

/// Why a call failed, flattened from the core's error taxonomy into what a
/// host branches on. Kotlin sees it as `OcsException`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum OcsError {
    /// The server refused the credentials, or none usable were given: ask
    /// the user for them again.
    Auth {
        /// What went wrong.
        detail: String,
    },
    /// The server could not be reached, the connection failed or a request
    /// timed out: retry later.
    Network {
        /// What went wrong.
        detail: String,
    },
    /// A client policy forbids this: show the user which one and where it
    /// was set.
    PolicyDenied {
        /// The policy, e.g. `EnableAppearOffline` or `DisableIM`.
        policy: String,
        /// Where its value came from: `HKLM`, `HKCU`, `in-band`, `options`
        /// or `default`.
        source: String,
        /// The file and line, when known.
        location: Option<String>,
    },
    /// The client is not signed in (or has stopped): call `sign_in` first.
    NotSignedIn,
    /// The call itself was wrong (bad URI, bad configuration, already
    /// signed in): fix the call.
    InvalidArgument {
        /// What was wrong.
        detail: String,
    },
    /// The server answered with an error status: show `reason`; maybe
    /// retry later.
    Server {
        /// The SIP status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// The whole story, with the server's diagnostics when it sent any.
        detail: String,
    },
    /// An instant message was not delivered.
    NotDelivered {
        /// Why, to branch on.
        reason: ImFailureReason,
        /// The status and diagnostics, or the local cause.
        detail: String,
    },
    /// Anything else (a bug in ocs or a misbehaving peer): report it.
    Internal {
        /// What happened.
        detail: String,
    },
}

// By hand rather than with thiserror, which would take the `source` field
// for the error's cause.
impl std::fmt::Display for OcsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OcsError::Auth { detail } => write!(f, "authentication failed: {detail}"),
            OcsError::Network { detail } => write!(f, "network: {detail}"),
            OcsError::PolicyDenied {
                policy,
                source,
                location,
            } => {
                write!(f, "{policy} forbids this (set by {source}")?;
                if let Some(l) = location {
                    write!(f, ", {l}")?;
                }
                f.write_str(")")
            }
            OcsError::NotSignedIn => f.write_str("not signed in"),
            OcsError::InvalidArgument { detail } => write!(f, "invalid argument: {detail}"),
            OcsError::Server { detail, .. } => f.write_str(detail),
            OcsError::NotDelivered { reason, detail } => {
                write!(f, "not delivered ({reason:?}): {detail}")
            }
            OcsError::Internal { detail } => write!(f, "internal error: {detail}"),
        }
    }
}

impl std::error::Error for OcsError {}

impl From<Error> for OcsError {
    fn from(e: Error) -> OcsError {
        let detail = e.to_string();
        match e {
            Error::Auth(_) => OcsError::Auth { detail },
            Error::Transport(_) | Error::PeerMisbehaved(_) => OcsError::Network { detail },
            Error::PolicyDenied { policy, provenance } => OcsError::PolicyDenied {
                policy,
                source: provenance.source,
                location: provenance.from,
            },
            Error::Parse(_) | Error::ApiMisuse(_) => OcsError::InvalidArgument { detail },
            Error::Rejected { status, reason, .. } => OcsError::Server {
                status,
                reason,
                detail,
            },
            _ => OcsError::Internal { detail },
        }
    }
}

fn invalid(detail: impl Into<String>) -> OcsError {
    OcsError::InvalidArgument {
        detail: detail.into(),
    }
}

/// Why an instant message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ImFailureReason {
    /// The recipient is offline or unreachable: try later.
    Offline,
    /// The recipient does not want to be disturbed.
    DoNotDisturb,
    /// The recipient does not take this kind of message.
    UnsupportedType,
    /// A policy (the server's, or the recipient's DisableIM) blocked it.
    BlockedByPolicy,
    /// The service is not available: try later.
    ServiceUnavailable,
    /// No answer in time.
    TimedOut,
    /// The conversation ended at the other side: send again.
    DialogGone,
    /// Something else.
    Other,
}

impl ImFailureReason {
    fn of(r: FailureReason) -> ImFailureReason {
        match r {
            FailureReason::Offline => ImFailureReason::Offline,
            FailureReason::DoNotDisturb => ImFailureReason::DoNotDisturb,
            FailureReason::UnsupportedType => ImFailureReason::UnsupportedType,
            FailureReason::BlockedByPolicy => ImFailureReason::BlockedByPolicy,
            FailureReason::ServiceUnavailable => ImFailureReason::ServiceUnavailable,
            FailureReason::TimedOut => ImFailureReason::TimedOut,
            FailureReason::DialogGone => ImFailureReason::DialogGone,
            _ => ImFailureReason::Other,
        }
    }
}

// ----- configuration ---------------------------------------------------------

/// Which protocol rules the client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Dialect {
    /// Office Communicator 2007 R2 against OCS (NTLM, signed messages,
    /// enhanced presence).
    Ocs,
    /// Standard SIP/SIMPLE (Digest, PIDF), e.g. against Kamailio.
    Standard,
}

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Transport {
    /// UDP (never used by OCS).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// One server to use instead of DNS discovery.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ServerAddress {
    /// Host name or address.
    pub host: String,
    /// The transport.
    pub transport: Transport,
    /// The port; 0 for the transport's default.
    #[uniffi(default = 0)]
    pub port: u16,
}

/// What a client needs to sign in. Only `uri`, `auth_user`, `password` and
/// `dialect` are required.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OcsConfig {
    /// The user's SIP address, e.g. `sip:alice@contoso.com`.
    pub uri: String,
    /// The account: `CONTOSO\alice` for NTLM, `alice` for Digest.
    pub auth_user: String,
    /// The password.
    pub password: String,
    /// OCS or standard SIP.
    pub dialect: Dialect,
    /// A fixed server; `None` finds it through DNS (SRV, then A).
    #[uniffi(default = None)]
    pub server: Option<ServerAddress>,
    /// The endpoint id, 10 hex digits, one per installation (`None`:
    /// derived from `uri`). Keep it stable across runs.
    #[uniffi(default = None)]
    pub epid: Option<String>,
    /// Write a SIP trace (credentials redacted) to this file, rotated at
    /// 10 MB with three old files kept.
    #[uniffi(default = None)]
    pub trace_path: Option<String>,
    /// Write the trace as pcap (Wireshark, sngrep) instead of text.
    #[uniffi(default = false)]
    pub trace_pcap: bool,
    /// Client policy as `.reg` files (regedit exports), applied in order:
    /// DisableIM, EnableAppearOffline, CustomStateURL,
    /// EnableSIPHighSecurityMode, ConfigurationMode with
    /// ServerAddressInternal and Transport take effect.
    #[uniffi(default)]
    pub policy_files: Vec<String>,
    /// The custom presence states file to load after sign-in, overriding
    /// the CustomStateURL policy.
    #[uniffi(default = None)]
    pub custom_state_url: Option<String>,
    /// Extra trusted CA certificates (PEM) for TLS, e.g. an enterprise CA.
    #[uniffi(default = None)]
    pub ca_file: Option<String>,
    /// The language (Windows LCID) custom state texts are shown in.
    #[uniffi(default = 1033)]
    pub language_id: u32,
}

/// Reads and evaluates the policy files (the same rules as `ocs --policy`).
fn effective_policy(files: &[String]) -> Result<EffectivePolicy, OcsError> {
    let mut parsed = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| invalid(format!("reading {path}: {e}")))?;
        let reg = core_policy::reg::parse(&bytes).map_err(|e| invalid(format!("{path}:{e}")))?;
        parsed.push((path.clone(), reg));
    }
    Ok(core_policy::evaluate(&parsed, &InBand::default()))
}

fn server_config(host: &str, port: Option<u16>, transport: discovery::Transport) -> ServerConfig {
    ServerConfig {
        host: host.to_owned(),
        port,
        transport,
    }
}

/// The core's configuration from the host's, with the policy applied as the
/// `ocs` command line applies it.
fn client_config(c: &OcsConfig) -> Result<(ClientConfig, EffectivePolicy), OcsError> {
    ocs_core::sip::SipUri::parse(&c.uri).map_err(|e| invalid(format!("uri {}: {e}", c.uri)))?;
    let dialect = match c.dialect {
        Dialect::Ocs => discovery::Dialect::Ocs,
        Dialect::Standard => discovery::Dialect::Standard,
    };
    let epid = match &c.epid {
        Some(e) => e.clone(),
        None => {
            // Stable per user and release, like the C API's default.
            ocs_core::auth::epid::Epid::derive(&c.uri, "").to_string()
        }
    };
    let reg = RegisterConfig::new(&c.uri, dialect, &epid);
    let creds = Credentials::new(&c.auth_user, &c.password);
    let mut cfg = ClientConfig::new(EndpointConfig::new(reg, Some(creds)));
    let policy = effective_policy(&c.policy_files)?;
    if let Some(s) = &c.server {
        let transport = match s.transport {
            Transport::Udp => discovery::Transport::Udp,
            Transport::Tcp => discovery::Transport::Tcp,
            Transport::Tls => discovery::Transport::Tls,
        };
        cfg.server = Some(server_config(
            &s.host,
            (s.port != 0).then_some(s.port),
            transport,
        ));
    }
    cfg.custom_state_url = c.custom_state_url.clone();
    if let Some(ca) = &c.ca_file {
        let mut tls = TlsSettings::default();
        tls.add_ca_file(std::path::Path::new(ca))
            .map_err(|e| invalid(format!("ca_file {ca}: {e}")))?;
        cfg.tls = tls;
    }
    cfg.trace = c.trace_path.as_ref().map(|p| {
        if c.trace_pcap {
            TraceConfig::pcap(p)
        } else {
            TraceConfig::text(p)
        }
    });
    cfg.apply_policy(policy.clone());
    Ok((cfg, policy))
}

// ----- presence --------------------------------------------------------------

/// A presence state, as Communicator shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PresenceState {
    /// Available.
    Online,
    /// Available but idle.
    Inactive,
    /// Busy.
    Busy,
    /// Busy and idle.
    BusyIdle,
    /// Do not disturb.
    DoNotDisturb,
    /// Be right back.
    BeRightBack,
    /// Away.
    Away,
    /// Offline, appearing offline, or nothing known.
    Offline,
}

impl PresenceState {
    fn of(s: State) -> PresenceState {
        match s {
            State::Online => PresenceState::Online,
            State::Inactive => PresenceState::Inactive,
            State::Busy => PresenceState::Busy,
            State::BusyIdle => PresenceState::BusyIdle,
            State::DoNotDisturb => PresenceState::DoNotDisturb,
            State::BeRightBack => PresenceState::BeRightBack,
            State::Away => PresenceState::Away,
            _ => PresenceState::Offline,
        }
    }

    fn core(self) -> State {
        match self {
            PresenceState::Online => State::Online,
            PresenceState::Inactive => State::Inactive,
            PresenceState::Busy => State::Busy,
            PresenceState::BusyIdle => State::BusyIdle,
            PresenceState::DoNotDisturb => State::DoNotDisturb,
            PresenceState::BeRightBack => State::BeRightBack,
            PresenceState::Away => State::Away,
            PresenceState::Offline => State::Offline,
        }
    }
}

/// The availability a custom state publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CustomAvailability {
    /// Available (3500).
    Online,
    /// Busy (6500).
    Busy,
    /// Do not disturb (9500).
    DoNotDisturb,
}

impl CustomAvailability {
    fn of(a: customstates::CustomAvailability) -> CustomAvailability {
        match a {
            customstates::CustomAvailability::Busy => CustomAvailability::Busy,
            customstates::CustomAvailability::DoNotDisturb => CustomAvailability::DoNotDisturb,
            _ => CustomAvailability::Online,
        }
    }

    fn core(self) -> customstates::CustomAvailability {
        match self {
            CustomAvailability::Online => customstates::CustomAvailability::Online,
            CustomAvailability::Busy => customstates::CustomAvailability::Busy,
            CustomAvailability::DoNotDisturb => customstates::CustomAvailability::DoNotDisturb,
        }
    }
}

/// A text in one language.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LocalizedText {
    /// The Windows language id (1033 is US English).
    pub lcid: u32,
    /// The text.
    pub text: String,
}

/// A custom presence state from the CustomStateURL file.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CustomState {
    /// Its id in the file (1 to 4).
    pub id: u32,
    /// The availability it publishes.
    pub availability: CustomAvailability,
    /// Its text per language.
    pub texts: Vec<LocalizedText>,
}

fn custom_states_of(s: &CustomStates) -> Vec<CustomState> {
    s.states
        .iter()
        .map(|c| CustomState {
            id: c.id,
            availability: CustomAvailability::of(c.availability),
            texts: c
                .texts
                .iter()
                .map(|(lcid, text)| LocalizedText {
                    lcid: *lcid,
                    text: text.clone(),
                })
                .collect(),
        })
        .collect()
}

/// A watched contact's presence.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ContactPresence {
    /// The contact's URI (lower case, as the core keys watches).
    pub uri: String,
    /// The state to show.
    pub state: PresenceState,
    /// The raw availability number (0 when none was published).
    pub availability: u32,
    /// The activity token (`in-a-meeting`, `on-the-phone`...), if any.
    pub activity: Option<String>,
    /// A custom state's text, in the configured language when the contact
    /// published one in it, else in English or the first one.
    pub custom_text: Option<String>,
    /// The note, if any.
    pub note: Option<String>,
    /// The display name from the contact card, if published.
    pub display_name: Option<String>,
    /// The device (`PC`, `Mobile`...), if published.
    pub device: Option<String>,
    /// A phone call is up.
    pub on_the_phone: bool,
    /// The calendar (or the activity) says "in a meeting".
    pub in_a_meeting: bool,
}

impl ContactPresence {
    fn of(uri: &str, p: &model::Presence, lcid: u32) -> ContactPresence {
        ContactPresence {
            uri: uri.to_owned(),
            state: PresenceState::of(p.state()),
            availability: p.availability.map_or(0, |a| a.0),
            activity: p.activity.as_deref().map(str::to_owned),
            custom_text: p.any_custom_text(lcid).map(str::to_owned),
            note: p.note.as_ref().map(|n| n.text.to_string()),
            display_name: p.display_name().map(str::to_owned),
            device: p.device.as_deref().map(str::to_owned),
            on_the_phone: p.is_on_the_phone(),
            in_a_meeting: p.is_in_a_meeting(),
        }
    }
}

/// Receives a watched contact's presence (see [`OcsClient::subscribe`]).
/// Called on the client's `ocs-events` thread; keep it short.
#[uniffi::export(foreign)]
pub trait PresenceListener: Send + Sync {
    /// The contact's presence arrived or changed.
    fn on_presence(&self, presence: ContactPresence);
    /// The server ended the watch or refused it. The subscription stays
    /// registered but receives nothing more; cancel it and subscribe again
    /// to retry.
    fn on_ended(&self, uri: String, reason: String);
}

/// Receives instant messages (see [`OcsClient::set_im_listener`]). Called
/// on the client's `ocs-events` thread; keep it short.
#[uniffi::export(foreign)]
pub trait ImListener: Send + Sync {
    /// A message arrived: the sender's URI and the text (HTML and RTF
    /// reduced to plain text).
    fn on_message(&self, sender: String, text: String);
    /// The contact `sender` started (`active`) or stopped typing.
    fn on_typing(&self, sender: String, active: bool);
}

/// The core keys watches by the URI trimmed, without angle brackets, in
/// lower case; subscriptions use the same key so events find them.
fn watch_key(uri: &str) -> String {
    uri.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

// ----- contact list ----------------------------------------------------------

/// A group of the server-stored contact list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ContactGroup {
    /// The id the server gave it.
    pub id: u32,
    /// Its name; `~` is the default group ("Other Contacts"), which cannot
    /// be renamed or removed.
    pub name: String,
}

/// A contact of the server-stored contact list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Contact {
    /// The contact's URI, with `sip:`.
    pub uri: String,
    /// The name the user gave it, if any.
    pub name: Option<String>,
    /// The ids of the groups it is in.
    pub group_ids: Vec<u32>,
    /// Whether the server keeps a presence subscription for it.
    pub subscribed: bool,
}

/// The server-stored contact list (OCS).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ContactList {
    /// The list's version on the server, if it sent one.
    pub version: Option<u32>,
    /// The groups.
    pub groups: Vec<ContactGroup>,
    /// The contacts.
    pub contacts: Vec<Contact>,
}

impl ContactList {
    fn of(l: &core_presence::ContactList) -> ContactList {
        ContactList {
            version: l.delta_num,
            groups: l
                .groups
                .iter()
                .map(|g| ContactGroup {
                    id: g.id,
                    name: g.name.to_string(),
                })
                .collect(),
            contacts: l
                .contacts
                .iter()
                .map(|c| Contact {
                    uri: c.uri.to_string(),
                    name: c.name.as_deref().map(str::to_owned),
                    group_ids: c.groups.clone(),
                    subscribed: c.subscribed,
                })
                .collect(),
        }
    }
}

/// Receives the contact list whenever it changes (see
/// [`OcsClient::set_contact_list_listener`]). Called on the client's
/// `ocs-events` thread; keep it short.
#[uniffi::export(foreign)]
pub trait ContactListListener: Send + Sync {
    /// The list as it now stands: after sign-in, after a change of ours,
    /// or after one made elsewhere (another device, the administrator).
    fn on_contact_list(&self, list: ContactList);
}

// ----- logging ---------------------------------------------------------------

/// How serious a log record is (the core's event severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Chatty detail (typing, refreshes, contacts' presence).
    Verbose,
    /// Normal operation (signed in, message received).
    Info,
    /// Something went wrong; the client carries on.
    Warning,
    /// Something failed for good.
    Error,
}

impl LogLevel {
    fn of(s: Severity) -> LogLevel {
        match s {
            Severity::Verbose => LogLevel::Verbose,
            Severity::Info => LogLevel::Info,
            Severity::Warning => LogLevel::Warning,
            Severity::Error => LogLevel::Error,
        }
    }
}

/// One log record: a client event with its stable id (the table in the
/// core's `diag` module) or a problem in the facade itself (id 0).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// The stable event id (1000-1999), 0 for the facade's own records.
    pub event_id: u32,
    /// The SIP URI of the client it concerns.
    pub user: String,
    /// What happened, in words. Message texts are never logged.
    pub message: String,
}

/// The host's logger (see [`set_logger`]). Called on ocs threads; keep it
/// short and do not call back into ocs from it.
#[uniffi::export(foreign)]
pub trait Logger: Send + Sync {
    /// Writes one record.
    fn log(&self, record: LogRecord);
}

struct LoggerSlot {
    logger: Arc<dyn Logger>,
    min: LogLevel,
}

static LOGGER: OnceLock<LoggerSlot> = OnceLock::new();

/// Sets the logger every client reports to, with the lowest level it
/// wants. It can be set once per process; a second call fails with
/// `InvalidArgument`.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, min_level: LogLevel) -> Result<(), OcsError> {
    LOGGER
        .set(LoggerSlot {
            logger,
            min: min_level,
        })
        .map_err(|_| invalid("a logger is already set"))
}

fn log(level: LogLevel, event_id: u32, user: &str, message: impl FnOnce() -> String) {
    let Some(slot) = LOGGER.get() else { return };
    if level < slot.min {
        return;
    }
    let record = LogRecord {
        level,
        event_id,
        user: user.to_owned(),
        message: message(),
    };
    // A throwing logger must not take the event thread down with it.
    let _ = catch_unwind(AssertUnwindSafe(|| slot.logger.log(record)));
}

/// The version of the library, e.g. `0.1.0`.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

// ----- the client ------------------------------------------------------------

/// What the sign-in established.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignInInfo {
    /// The GRUU the server assigned (OCS), if any.
    pub gruu: Option<String>,
    /// The registration's lifetime in seconds (refreshed automatically).
    pub expires_secs: u32,
    /// `NTLM`, `Kerberos` or `Digest`.
    pub auth_scheme: String,
}

/// Where a policy value came from and what it does.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PolicyExplanation {
    /// The policy's name as Communicator spells it.
    pub name: String,
    /// Its effective value (`None`: not set).
    pub value: Option<String>,
    /// Which source set it: `HKLM`, `HKCU`, `in-band`, `options` or
    /// `default`.
    pub source: String,
    /// The file and line, when the source is a file.
    pub location: Option<String>,
    /// Values that were set but ignored because they are not valid for
    /// this policy, each with where it came from.
    pub ignored: Vec<String>,
    /// What the policy does, in plain words (`None` for a name ocs does not
    /// know: such a value is kept but changes nothing).
    pub explanation: Option<String>,
}

/// The host's last manual status, so a note can be changed on its own.
#[derive(Debug, Clone)]
enum Status {
    State(State),
    Custom {
        availability: customstates::CustomAvailability,
        lcid: u32,
        text: String,
    },
}

type Reply<T> = oneshot::Sender<Result<T, OcsError>>;

enum Command {
    SignOut(oneshot::Sender<()>),
    Watch(String),
    Unwatch(String),
    SendIm {
        to: String,
        text: String,
        reply: Reply<u64>,
    },
    Typing {
        to: String,
        active: bool,
    },
    EndImSession(String),
    SetStatus {
        state: State,
        note: Option<String>,
        reply: Reply<()>,
    },
    SetCustomState {
        availability: customstates::CustomAvailability,
        lcid: u32,
        text: String,
        note: Option<String>,
    },
    SetIdle(Duration),
    SetInCall(bool),
    ResetStatus,
    Diagnostics(Reply<String>),
    ContactList(Reply<Option<ContactList>>),
    ChangeContacts {
        change: ContactChange,
        reply: Reply<Option<u32>>,
    },
}

/// A contact-list change, carried to the event thread.
enum ContactChange {
    Add { uri: String, group: Option<String> },
    Remove { uri: String },
    Move { uri: String, to_group: String },
    AddGroup { name: String },
    RenameGroup { name: String, new_name: String },
    RemoveGroup { name: String },
}

type Listeners = Vec<(u64, Arc<dyn PresenceListener>)>;

/// What the event thread shares with the host's calls.
struct Shared {
    user: String,
    lcid: u32,
    subs: Mutex<Subs>,
    im: Mutex<Option<Arc<dyn ImListener>>>,
    contacts: Mutex<Option<Arc<dyn ContactListListener>>>,
    custom_states: Mutex<Vec<CustomState>>,
    policy: Mutex<EffectivePolicy>,
}

#[derive(Default)]
struct Subs {
    next: u64,
    by_key: HashMap<String, Listeners>,
}

/// Locks, ignoring poisoning: every critical section here is one
/// assignment, lookup or list edit, so a panic cannot leave the data
/// half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Session {
    cmds: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Session {
    /// Closes the command channel (the event thread then stops the core
    /// client and ends) and waits for the thread, unless called on it.
    fn end(mut self) {
        drop(self.cmds);
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// A client: signs in to OCS or a standard SIP server, publishes and
/// watches presence, sends and receives instant messages.
///
/// Made from an [`OcsConfig`]; nothing happens until [`OcsClient::sign_in`].
/// After a sign-out (or a failed sign-in) it can sign in again.
/// Subscriptions and listeners stay across sign-ins. Dropping the client
/// stops it at once without signing out.
#[derive(uniffi::Object)]
pub struct OcsClient {
    cfg: ClientConfig,
    shared: Arc<Shared>,
    session: Mutex<Option<Session>>,
    status: Mutex<Option<Status>>,
}

impl Drop for OcsClient {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.session).take() {
            s.end();
        }
    }
}

impl OcsClient {
    /// Hands a command to the event thread.
    fn send(&self, c: Command) -> Result<(), OcsError> {
        lock(&self.session)
            .as_ref()
            .and_then(|s| s.cmds.send(c).ok())
            .ok_or(OcsError::NotSignedIn)
    }

    /// Hands a command with a reply to the event thread and awaits the reply.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, OcsError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| OcsError::NotSignedIn)?
    }

    /// Starts the core client and its event thread; the receiver gets the
    /// sign-in's outcome.
    fn start(&self) -> Result<oneshot::Receiver<Result<SignInInfo, OcsError>>, OcsError> {
        let mut session = lock(&self.session);
        if session.as_ref().is_some_and(|s| !s.cmds.is_closed()) {
            return Err(invalid("already signed in (or signing in)"));
        }
        if let Some(old) = session.take() {
            old.end();
        }
        let client = {
            let _rt = runtime().enter();
            Client::start(self.cfg.clone())?
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("ocs-events".into())
            .spawn(move || runtime().block_on(pump(client, cmd_rx, shared, done_tx)))
            .map_err(|e| OcsError::Internal {
                detail: format!("cannot start a thread: {e}"),
            })?;
        *session = Some(Session {
            cmds: cmd_tx,
            thread: Some(thread),
        });
        Ok(done_rx)
    }

    fn unsubscribe(&self, id: u64, key: &str) {
        let last = {
            let mut subs = lock(&self.shared.subs);
            let Some(list) = subs.by_key.get_mut(key) else {
                return;
            };
            list.retain(|(i, _)| *i != id);
            let last = list.is_empty();
            if last {
                subs.by_key.remove(key);
            }
            last
        };
        if last {
            // Not signed in: nothing is watched, nothing to undo.
            let _ = self.send(Command::Unwatch(key.to_owned()));
        }
    }

    async fn change_contacts(&self, change: ContactChange) -> Result<Option<u32>, OcsError> {
        self.ask(|reply| Command::ChangeContacts { change, reply })
            .await
    }

    fn remember(&self, s: Status) {
        *lock(&self.status) = Some(s);
    }
}

#[uniffi::export]
impl OcsClient {
    /// A client for `config`. Checks the configuration (URI, policy files,
    /// CA file) but does not connect.
    #[uniffi::constructor]
    pub fn new(config: OcsConfig) -> Result<Arc<OcsClient>, OcsError> {
        let (cfg, policy) = client_config(&config)?;
        Ok(Arc::new(OcsClient {
            shared: Arc::new(Shared {
                user: config.uri.clone(),
                lcid: config.language_id,
                subs: Mutex::default(),
                im: Mutex::default(),
                contacts: Mutex::default(),
                custom_states: Mutex::default(),
                policy: Mutex::new(policy),
            }),
            cfg,
            session: Mutex::default(),
            status: Mutex::default(),
        }))
    }

    /// The user's SIP URI.
    pub fn uri(&self) -> String {
        self.shared.user.clone()
    }

    /// Connects and signs in; returns once the server accepted the
    /// registration. Fails with `Auth` (credentials refused), `Network`
    /// (no server reachable) or `Server` (refused otherwise) on the first
    /// failed attempt, and then stops; after a successful sign-in the client
    /// reconnects and re-registers by itself (reported to the logger).
    /// Cancelling the call leaves the client trying; `sign_out` stops it.
    pub async fn sign_in(&self) -> Result<SignInInfo, OcsError> {
        let rx = self.start()?;
        rx.await.map_err(|_| OcsError::NotSignedIn)?
    }

    /// Signs out (un-registers) and stops; returns when done. Does nothing
    /// when not signed in.
    pub async fn sign_out(&self) -> Result<(), OcsError> {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::SignOut(tx)).is_ok() {
            // The event thread answers once the client has stopped; a
            // closed channel means it has stopped too.
            let _ = rx.await;
        }
        let session = lock(&self.session).take();
        if let Some(s) = session {
            s.end();
        }
        Ok(())
    }

    /// Whether the client is signed in or signing in.
    pub fn is_running(&self) -> bool {
        lock(&self.session)
            .as_ref()
            .is_some_and(|s| !s.cmds.is_closed())
    }

    /// Publishes our state and note (`None`: no note). Returns once the
    /// client took the request; the server's answer is logged (events 1401
    /// and 1402). `Offline` is "appear offline" (see
    /// [`OcsClient::appear_offline`]).
    #[uniffi::method(default(note = None))]
    pub async fn set_status(
        &self,
        state: PresenceState,
        note: Option<String>,
    ) -> Result<(), OcsError> {
        let state = state.core();
        self.ask(|reply| Command::SetStatus {
            state,
            note: note.clone(),
            reply,
        })
        .await?;
        self.remember(Status::State(state));
        Ok(())
    }

    /// Appears offline to everybody (availability 18500) while staying
    /// signed in. Fails with `PolicyDenied` unless the EnableAppearOffline
    /// policy allows it.
    #[uniffi::method(default(note = None))]
    pub async fn appear_offline(&self, note: Option<String>) -> Result<(), OcsError> {
        self.set_status(PresenceState::Offline, note).await
    }

    /// Changes the note and keeps the last state set through this client
    /// (online when none was set yet).
    pub async fn set_note(&self, note: Option<String>) -> Result<(), OcsError> {
        let last = lock(&self.status).clone();
        match last {
            Some(Status::Custom {
                availability,
                lcid,
                text,
            }) => self.send(Command::SetCustomState {
                availability,
                lcid,
                text,
                note,
            }),
            Some(Status::State(s)) => self.set_status(PresenceState::of(s), note).await,
            None => self.set_status(PresenceState::Online, note).await,
        }
    }

    /// Publishes a custom state: an availability with our own text in
    /// language `lcid` (see [`OcsClient::custom_states`] for the ones the
    /// administrator defined). The server's answer is logged.
    #[uniffi::method(default(note = None))]
    pub fn set_custom_state(
        &self,
        availability: CustomAvailability,
        lcid: u32,
        text: String,
        note: Option<String>,
    ) -> Result<(), OcsError> {
        let availability = availability.core();
        self.send(Command::SetCustomState {
            availability,
            lcid,
            text: text.clone(),
            note,
        })?;
        self.remember(Status::Custom {
            availability,
            lcid,
            text,
        });
        Ok(())
    }

    /// "Reset status": drops the manual state so the automatic one (idle,
    /// calls) shows again.
    pub fn reset_status(&self) -> Result<(), OcsError> {
        self.send(Command::ResetStatus)?;
        *lock(&self.status) = None;
        Ok(())
    }

    /// Reports how long the user has been idle (call it when that changes,
    /// and with 0 on input): inactive after 5 minutes, away after 20.
    pub fn set_idle(&self, seconds: u32) -> Result<(), OcsError> {
        self.send(Command::SetIdle(Duration::from_secs(u64::from(seconds))))
    }

    /// Reports that a call started or ended ("on the phone" meanwhile).
    pub fn set_in_call(&self, in_call: bool) -> Result<(), OcsError> {
        self.send(Command::SetInCall(in_call))
    }

    /// The custom states loaded from CustomStateURL after sign-in (empty
    /// until then, or when none are configured).
    pub fn custom_states(&self) -> Vec<CustomState> {
        lock(&self.shared.custom_states).clone()
    }

    /// Watches `uri`'s presence: `listener` gets its presence now and on
    /// every change. Works before sign-in too (the watch starts once signed
    /// in) and survives a sign-out and the next sign-in. The watch ends when
    /// the returned subscription is cancelled or dropped.
    pub fn subscribe(
        self: Arc<Self>,
        uri: String,
        listener: Arc<dyn PresenceListener>,
    ) -> Result<Arc<Subscription>, OcsError> {
        ocs_core::sip::SipUri::parse(uri.trim().trim_start_matches('<').trim_end_matches('>'))
            .map_err(|e| invalid(format!("uri {uri}: {e}")))?;
        let key = watch_key(&uri);
        let id = {
            let mut subs = lock(&self.shared.subs);
            subs.next += 1;
            let id = subs.next;
            subs.by_key
                .entry(key.clone())
                .or_default()
                .push((id, listener));
            id
        };
        // Sent for every subscription: the core ignores a contact it already
        // watches and watches again one whose watch had ended.
        let _ = self.send(Command::Watch(key.clone()));
        Ok(Arc::new(Subscription {
            client: Arc::downgrade(&self),
            id,
            key,
            cancelled: Mutex::new(false),
        }))
    }

    /// Sets (or with `None` removes) the listener for incoming messages
    /// and typing notifications.
    pub fn set_im_listener(&self, listener: Option<Arc<dyn ImListener>>) {
        *lock(&self.shared.im) = listener;
    }

    /// Sends an instant message and returns when it was delivered, with
    /// its message id. Fails with `NotDelivered` (and the reason) when the
    /// recipient or the server refused it, `PolicyDenied` when DisableIM is
    /// set here.
    pub async fn send_im(&self, to: String, text: String) -> Result<u64, OcsError> {
        self.ask(|reply| Command::SendIm { to, text, reply }).await
    }

    /// Tells `to` that we started or stopped typing.
    pub fn send_typing(&self, to: String, active: bool) -> Result<(), OcsError> {
        self.send(Command::Typing { to, active })
    }

    /// Ends the conversation with `to` (OCS closes its session).
    pub fn end_im_session(&self, to: String) -> Result<(), OcsError> {
        self.send(Command::EndImSession(to))
    }

    /// The diagnostics snapshot (what `ocs diag` shows) as JSON: server,
    /// registration, provisioning, address book, custom states and every
    /// effective policy with its source.
    pub async fn diagnostics(&self) -> Result<String, OcsError> {
        self.ask(Command::Diagnostics).await
    }

    /// The server-stored contact list (OCS), once the server sent it after
    /// sign-in; `None` before that and in the standard dialect.
    pub async fn contact_list(&self) -> Result<Option<ContactList>, OcsError> {
        self.ask(Command::ContactList).await
    }

    /// Sets (or with `None` removes) the listener for contact-list changes.
    pub fn set_contact_list_listener(&self, listener: Option<Arc<dyn ContactListListener>>) {
        *lock(&self.shared.contacts) = listener;
    }

    /// Adds a contact to the group named `group` (`None`: the default
    /// group) and starts watching it; returns once the server confirmed.
    /// A contact already in the list is added to that group as well.
    #[uniffi::method(default(group = None))]
    pub async fn add_contact(&self, uri: String, group: Option<String>) -> Result<(), OcsError> {
        self.change_contacts(ContactChange::Add { uri, group })
            .await
            .map(drop)
    }

    /// Removes a contact from the list (and stops watching it).
    pub async fn remove_contact(&self, uri: String) -> Result<(), OcsError> {
        self.change_contacts(ContactChange::Remove { uri })
            .await
            .map(drop)
    }

    /// Moves a contact into the group `to_group`, out of all others.
    pub async fn move_contact(&self, uri: String, to_group: String) -> Result<(), OcsError> {
        self.change_contacts(ContactChange::Move { uri, to_group })
            .await
            .map(drop)
    }

    /// Creates a group; returns the id the server gave it.
    pub async fn add_group(&self, name: String) -> Result<u32, OcsError> {
        self.change_contacts(ContactChange::AddGroup { name })
            .await?
            .ok_or_else(|| OcsError::Internal {
                detail: "the server confirmed the group without an id".into(),
            })
    }

    /// Renames a group.
    pub async fn rename_group(&self, name: String, new_name: String) -> Result<(), OcsError> {
        self.change_contacts(ContactChange::RenameGroup { name, new_name })
            .await
            .map(drop)
    }

    /// Removes a group; its contacts stay in their other groups.
    pub async fn remove_group(&self, name: String) -> Result<(), OcsError> {
        self.change_contacts(ContactChange::RemoveGroup { name })
            .await
            .map(drop)
    }

    /// Explains the policy `name` (case-insensitive): its effective value,
    /// where it came from (the configured policy files, then in-band
    /// provisioning from the server once signed in) and what it does.
    /// `None` when ocs does not know the name and nothing sets it.
    pub fn policy_explain(&self, name: String) -> Option<PolicyExplanation> {
        let policy = lock(&self.shared.policy);
        let s = policy.setting(&name)?;
        let origin = |s: &core_policy::Setting| match &s.from {
            Some(f) => format!("{} {f}", s.source),
            None => s.source.to_string(),
        };
        Some(PolicyExplanation {
            name: s.name.clone(),
            value: s.value.as_ref().map(ToString::to_string),
            source: s.source.to_string(),
            location: s.from.clone(),
            ignored: policy
                .rejected(&name)
                .into_iter()
                .map(|r| {
                    let v = r
                        .value
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    format!("{v} ({})", origin(r))
                })
                .collect(),
            explanation: core_policy::explain(&name).map(str::to_owned),
        })
    }
}

/// A presence watch the host owns (from [`OcsClient::subscribe`]). The
/// watch ends on [`Subscription::cancel`] or when this object is dropped.
#[derive(uniffi::Object)]
pub struct Subscription {
    client: Weak<OcsClient>,
    id: u64,
    key: String,
    cancelled: Mutex<bool>,
}

#[uniffi::export]
impl Subscription {
    /// The watched URI (as the core keys it: trimmed, lower case).
    pub fn uri(&self) -> String {
        self.key.clone()
    }

    /// Stops this subscription (the contact is unwatched when no other
    /// subscription wants it). Calling it again does nothing.
    pub fn cancel(&self) {
        let mut cancelled = lock(&self.cancelled);
        if *cancelled {
            return;
        }
        *cancelled = true;
        if let Some(c) = self.client.upgrade() {
            c.unsubscribe(self.id, &self.key);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

// ----- the event thread ------------------------------------------------------

/// Calls a host listener; a panic (a foreign exception in a method that
/// cannot return one) is logged instead of ending the event thread.
fn call_host(user: &str, what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log(LogLevel::Error, 0, user, || {
            format!("the host's {what} raised an error; ignored")
        });
    }
}

/// What the event thread tracks while a client runs.
struct Pump {
    client: Client,
    shared: Arc<Shared>,
    sign_in: Option<oneshot::Sender<Result<SignInInfo, OcsError>>>,
    /// Why the sign-in failed, answered once the loop has ended.
    failure: Option<OcsError>,
    registered: bool,
    ims: HashMap<MessageId, Reply<u64>>,
    sign_out: Vec<oneshot::Sender<()>>,
}

/// The event thread's loop: events to listeners, commands to the client,
/// until the client stops or the host drops it.
async fn pump(
    client: Client,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    sign_in: oneshot::Sender<Result<SignInInfo, OcsError>>,
) {
    let mut p = Pump {
        client,
        shared,
        sign_in: Some(sign_in),
        failure: None,
        registered: false,
        ims: HashMap::new(),
        sign_out: Vec::new(),
    };
    loop {
        tokio::select! {
            e = p.client.next_event() => match e {
                Some(e) => {
                    if !p.event(e) {
                        break;
                    }
                }
                None => break,
            },
            c = cmds.recv() => match c {
                Some(c) => p.command(c).await,
                None => break,
            },
        }
    }
    let Pump {
        client,
        sign_in,
        failure,
        ims,
        sign_out,
        ..
    } = p;
    // Stop first and answer afterwards, so a host that hears back sees the
    // client stopped (is_running false, a new sign_in allowed).
    drop(cmds);
    drop(client);
    if let Some(s) = sign_in {
        let _ = s.send(Err(failure.unwrap_or(OcsError::NotSignedIn)));
    }
    for (_, r) in ims {
        let _ = r.send(Err(OcsError::NotSignedIn));
    }
    for s in sign_out {
        let _ = s.send(());
    }
}

impl Pump {
    /// Handles one event; false when the loop should end.
    fn event(&mut self, e: ClientEvent) -> bool {
        let user = self.shared.user.clone();
        log(LogLevel::of(e.severity()), e.id(), &user, || e.summary());
        match e {
            ClientEvent::Registration(r) => return self.registration(r),
            ClientEvent::Stopped => return false,
            ClientEvent::Im(im) => self.im(im),
            ClientEvent::Presence(PresenceEvent::Changed { uri, presence }) => {
                let update = ContactPresence::of(&uri, &presence, self.shared.lcid);
                for (_, l) in self.listeners(&uri) {
                    let u = update.clone();
                    call_host(&user, "PresenceListener.on_presence", || l.on_presence(u));
                }
            }
            ClientEvent::Presence(PresenceEvent::WatchEnded { uri, reason }) => {
                for (_, l) in self.listeners(&uri) {
                    let (u, r) = (uri.clone(), reason.clone());
                    call_host(&user, "PresenceListener.on_ended", || l.on_ended(u, r));
                }
            }
            ClientEvent::Presence(PresenceEvent::ContactList(list)) => {
                if let Some(l) = lock(&self.shared.contacts).clone() {
                    let list = ContactList::of(&list);
                    call_host(&user, "ContactListListener.on_contact_list", || {
                        l.on_contact_list(list)
                    });
                }
            }
            ClientEvent::CustomStates { states, .. } => {
                *lock(&self.shared.custom_states) = custom_states_of(&states);
            }
            ClientEvent::Provisioning(ProvisioningEvent::Received(p)) => {
                lock(&self.shared.policy).set_in_band(&p.to_in_band());
            }
            _ => {}
        }
        true
    }

    fn listeners(&self, uri: &str) -> Listeners {
        lock(&self.shared.subs)
            .by_key
            .get(&watch_key(uri))
            .cloned()
            .unwrap_or_default()
    }

    fn registration(&mut self, r: RegistrationEvent) -> bool {
        match r {
            RegistrationEvent::Registered {
                refresh: false,
                gruu,
                expires,
                auth_scheme,
                ..
            } => {
                self.registered = true;
                let keys: Vec<String> = lock(&self.shared.subs).by_key.keys().cloned().collect();
                let h = self.client.handle();
                runtime().spawn(async move {
                    for k in keys {
                        // The URI was checked when the host subscribed.
                        let _ = h.watch(&k).await;
                    }
                });
                if let Some(s) = self.sign_in.take() {
                    let _ = s.send(Ok(SignInInfo {
                        gruu,
                        expires_secs: expires,
                        auth_scheme,
                    }));
                }
                true
            }
            // Before the first sign-in these end the attempt: the host
            // gets the reason now rather than a call that never returns.
            RegistrationEvent::CredentialsNeeded { realm, reason } if !self.registered => {
                let detail = match reason {
                    CredentialsReason::Missing => format!("no credentials for {realm}"),
                    _ => format!("{realm} refused the credentials"),
                };
                self.fail_sign_in(OcsError::Auth { detail })
            }
            RegistrationEvent::RetryScheduled { error, .. } if !self.registered => {
                self.fail_sign_in(error.into())
            }
            RegistrationEvent::Failed(e) => {
                self.failure.get_or_insert(e.into());
                // Stopped follows.
                true
            }
            _ => true,
        }
    }

    fn fail_sign_in(&mut self, e: OcsError) -> bool {
        self.failure = Some(e);
        // Ending the loop drops the core client, which stops it.
        false
    }

    fn im(&mut self, im: ImEvent) {
        let user = self.shared.user.clone();
        match im {
            ImEvent::Delivered { id } => {
                if let Some(r) = self.ims.remove(&id) {
                    let _ = r.send(Ok(id.0));
                }
            }
            ImEvent::Failed { id, reason, detail } => {
                if let Some(r) = self.ims.remove(&id) {
                    let _ = r.send(Err(OcsError::NotDelivered {
                        reason: ImFailureReason::of(reason),
                        detail,
                    }));
                }
            }
            ImEvent::Received { from, content } => {
                if let Some(l) = lock(&self.shared.im).clone() {
                    call_host(&user, "ImListener.on_message", || {
                        l.on_message(from, content.plain_text)
                    });
                }
            }
            ImEvent::Typing { from, active } => {
                if let Some(l) = lock(&self.shared.im).clone() {
                    call_host(&user, "ImListener.on_typing", || l.on_typing(from, active));
                }
            }
            _ => {}
        }
    }

    async fn command(&mut self, c: Command) {
        let client = &self.client;
        match c {
            Command::SignOut(done) => {
                client.sign_out();
                self.sign_out.push(done);
            }
            // Watches wait for the sign-in, which starts every subscribed one.
            Command::Watch(uri) if self.registered => drop(client.watch(&uri).await),
            Command::Watch(_) => {}
            Command::Unwatch(uri) => client.unwatch(&uri),
            Command::SendIm { to, text, reply } => match client.send_im(&to, &text).await {
                // The outcome event cannot have been read yet: this loop is
                // the only reader.
                Ok(id) => {
                    self.ims.insert(id.id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::Typing { to, active } => client.send_typing(&to, active),
            Command::EndImSession(to) => client.end_im_session(&to),
            Command::SetStatus { state, note, reply } => {
                let r = client.set_status(state, note.as_deref()).await;
                let _ = reply.send(r.map(drop).map_err(OcsError::from));
            }
            Command::SetCustomState {
                availability,
                lcid,
                text,
                note,
            } => drop(
                client
                    .set_custom_state(availability.availability(), lcid, &text, note.as_deref())
                    .await,
            ),
            Command::SetIdle(d) => drop(client.set_idle(d).await),
            Command::SetInCall(c) => drop(client.set_in_call(c).await),
            Command::ResetStatus => drop(client.reset_status().await),
            Command::Diagnostics(reply) => {
                let r = client.diagnostics().await.map(|s| s.to_json());
                let _ = reply.send(r.map_err(OcsError::from));
            }
            Command::ContactList(reply) => {
                let r = client.contact_list().await;
                let _ = reply.send(
                    r.map(|l| l.as_ref().map(ContactList::of))
                        .map_err(OcsError::from),
                );
            }
            // The core answers once the server has; a handle waits for it
            // on the runtime while this loop goes on delivering events.
            Command::ChangeContacts { change, reply } => {
                let client = self.client.handle();
                runtime().spawn(async move {
                    let r = match change {
                        ContactChange::Add { uri, group } => client
                            .add_contact(&uri, group.as_deref())
                            .await
                            .map(|()| None),
                        ContactChange::Remove { uri } => {
                            client.remove_contact(&uri).await.map(|()| None)
                        }
                        ContactChange::Move { uri, to_group } => {
                            client.move_contact(&uri, &to_group).await.map(|()| None)
                        }
                        ContactChange::AddGroup { name } => client.add_group(&name).await.map(Some),
                        ContactChange::RenameGroup { name, new_name } => {
                            client.rename_group(&name, &new_name).await.map(|()| None)
                        }
                        ContactChange::RemoveGroup { name } => {
                            client.remove_group(&name).await.map(|()| None)
                        }
                    };
                    let _ = reply.send(r.map_err(OcsError::from));
                });
            }
        }
    }
}

// ----- the test server -------------------------------------------------------

/// **Test support, not for production.** The embedded OCS 2007 R2-dialect
/// test server (registrar with NTLM and signed messages, presence, IM
/// relay) on loopback, so hosts and their tests can sign in without an OCS
/// installation. It stops when dropped. Left out of builds without the
/// `sim` feature (mobile).
#[cfg(feature = "sim")]
#[derive(uniffi::Object)]
pub struct SimServer {
    handle: Arc<ocs_core::driver::sim::SimHandle>,
    domain: String,
}

/// Runs `fut` on the library's runtime and waits for it from this thread
/// (which must not be a runtime worker).
#[cfg(feature = "sim")]
fn wait<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().ok()
}

#[cfg(feature = "sim")]
#[uniffi::export]
impl SimServer {
    /// Starts a server for SIP domain `domain` (e.g. `contoso.com`) on
    /// 127.0.0.1, UDP and TCP on a free port.
    #[uniffi::constructor]
    pub fn start(domain: String) -> Result<Arc<SimServer>, OcsError> {
        use ocs_core::rng::Rng;
        use ocs_core::sim::{Registrar, RegistrarConfig};
        // A test server: fixed seeds and secrets keep runs reproducible.
        let registrar = Registrar::new(RegistrarConfig::ocs(&domain), Rng::from_seed(1), [3; 32]);
        let server = ocs_core::sim::SimServer::new(registrar, Rng::from_seed(2));
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let handle = wait(ocs_core::driver::sim::serve(server, ip, 0, None))
            .ok_or_else(|| OcsError::Internal {
                detail: "the runtime stopped".into(),
            })?
            .map_err(|e| OcsError::Network {
                detail: format!("cannot listen on loopback: {e}"),
            })?;
        Ok(Arc::new(SimServer {
            handle: Arc::new(handle),
            domain,
        }))
    }

    /// Adds a user who signs in as `sip:{user}@{domain}` with the NTLM
    /// account `{ntlm_domain}\{user}` and `password`.
    pub fn add_user(&self, user: String, ntlm_domain: String, password: String) {
        let handle = self.handle.clone();
        // Fails only when the server has stopped: then there is nothing to
        // add the user to.
        let _ = wait(async move {
            handle
                .with(move |s, _| s.registrar_mut().add_user(&user, &ntlm_domain, &password))
                .await
        });
    }

    /// The SIP domain.
    pub fn domain(&self) -> String {
        self.domain.clone()
    }

    /// The TCP port on 127.0.0.1.
    pub fn tcp_port(&self) -> u16 {
        self.handle.tcp.port()
    }

    /// The UDP port on 127.0.0.1.
    pub fn udp_port(&self) -> u16 {
        self.handle.udp.port()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocs_core::error::Provenance;
    use ocs_core::im::body::ImContent;

    fn config(policy_files: Vec<String>) -> OcsConfig {
        OcsConfig {
            uri: "sip:alice@contoso.com".into(),
            auth_user: "CONTOSO\\alice".into(),
            password: "pw".into(),
            dialect: Dialect::Ocs,
            server: None,
            epid: None,
            trace_path: None,
            trace_pcap: false,
            policy_files,
            custom_state_url: None,
            ca_file: None,
            language_id: 1033,
        }
    }

    #[test]
    fn core_errors_flatten_into_what_a_host_branches_on() {
        let denied = OcsError::from(Error::PolicyDenied {
            policy: "DisableIM".into(),
            provenance: Provenance {
                source: "HKCU".into(),
                from: Some("gp.reg:3".into()),
            },
        });
        assert_eq!(
            denied,
            OcsError::PolicyDenied {
                policy: "DisableIM".into(),
                source: "HKCU".into(),
                location: Some("gp.reg:3".into()),
            }
        );
        assert_eq!(
            denied.to_string(),
            "DisableIM forbids this (set by HKCU, gp.reg:3)"
        );
        let rejected = OcsError::from(Error::Rejected {
            status: 403,
            reason: "Forbidden".into(),
            retry_after: None,
            diagnostics: None,
        });
        assert!(
            matches!(rejected, OcsError::Server { status: 403, ref reason, .. } if reason == "Forbidden")
        );
        assert!(matches!(
            OcsError::from(Error::Transport("x".into())),
            OcsError::Network { .. }
        ));
        assert!(matches!(
            OcsError::from(Error::Auth("x".into())),
            OcsError::Auth { .. }
        ));
        assert!(matches!(
            OcsError::from(Error::ApiMisuse("x".into())),
            OcsError::InvalidArgument { .. }
        ));
    }

    #[test]
    fn policy_files_reach_the_core_configuration() {
        let dir = std::env::temp_dir().join(format!("ocs-ffi-uniffi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let reg = dir.join("gp.reg");
        std::fs::write(
            &reg,
            "Windows Registry Editor Version 5.00\r\n\r\n\
             [HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\r\n\
             \"EnableAppearOffline\"=dword:00000001\r\n\
             \"DisableIM\"=dword:00000001\r\n\
             \"ConfigurationMode\"=dword:00000001\r\n\
             \"ServerAddressInternal\"=\"pool.contoso.com:5061\"\r\n",
        )
        .expect("write policy");
        let (cfg, policy) =
            client_config(&config(vec![reg.display().to_string()])).expect("config");
        assert!(cfg.presence.appear_offline.is_ok());
        assert_eq!(
            cfg.im.disable_im.clone().map(|p| p.source),
            Some("HKCU".to_owned())
        );
        let server = cfg.server.clone().expect("manual server from policy");
        assert_eq!(
            (server.host.as_str(), server.port, server.transport),
            ("pool.contoso.com", Some(5061), discovery::Transport::Tls)
        );
        assert!(policy.enable_appear_offline().value);
        let _ = std::fs::remove_dir_all(&dir);

        let (cfg, _) = client_config(&config(Vec::new())).expect("config");
        assert!(cfg.presence.appear_offline.is_err());
        assert!(cfg.server.is_none());
        assert_eq!(cfg.endpoint.register.epid.len(), 10);
        assert!(matches!(
            client_config(&config(vec!["/nonexistent/gp.reg".into()])),
            Err(OcsError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn subscriptions_match_the_cores_watch_keys() {
        assert_eq!(watch_key(" <sip:Bob@Contoso.com> "), "sip:bob@contoso.com");
    }

    #[test]
    fn the_log_leaves_out_message_texts() {
        let e = ClientEvent::Im(ImEvent::Received {
            from: "sip:bob@contoso.com".into(),
            content: ImContent::plain("a secret"),
        });
        let text = e.summary();
        assert!(text.contains("sip:bob@contoso.com"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn commands_before_sign_in_say_not_signed_in() {
        let c = OcsClient::new(config(Vec::new())).expect("client");
        assert_eq!(c.set_idle(10), Err(OcsError::NotSignedIn));
        assert!(!c.is_running());
        assert_eq!(c.custom_states(), Vec::new());
        let e = c
            .policy_explain("disableim".into())
            .expect("a known policy");
        assert_eq!(
            (e.name.as_str(), e.source.as_str()),
            ("DisableIM", "default")
        );
        assert!(c.policy_explain("NoSuchPolicy".into()).is_none());
    }
}
