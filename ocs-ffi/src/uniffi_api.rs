//! The uniffi facade for Python, Kotlin and Swift (proc-macros, no UDL;
//! namespace `ocs`).
//!
//! Conversion only: each method converts its arguments, calls the core
//! driver's [`ClientHandle`] and converts the answer. `async` methods become
//! coroutines (Python), `suspend` functions (Kotlin) and `async` functions
//! (Swift); the commands that start something await their outcome
//! ([`Pending`]) and return the command's id. The I/O runs on the library's
//! one tokio runtime ([`crate::runtime`], shared with the C API).
//!
//! Each signed-in client has one event thread (`ocs-events`) that hands the
//! core's events to the host's listeners and logger, one at a time and in
//! order. A listener that throws is reported to the logger and otherwise
//! ignored; it never stops the client. What the facade keeps is the host's
//! side: its listener objects, and the custom states and policy the events
//! brought, for the synchronous getters.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use ocs_core::customstates::{self, CustomStates};
use ocs_core::diag::Severity;
use ocs_core::discovery::{self, ServerConfig};
use ocs_core::driver::{
    Client, ClientConfig, ClientEvent, ClientHandle, Pending, TlsSettings, TraceConfig,
};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::error::Error;
use ocs_core::im::outcome::FailureReason;
use ocs_core::messaging::ImEvent;
use ocs_core::policy::{self as core_policy, EffectivePolicy, InBand};
use ocs_core::presence as core_presence;
use ocs_core::presence::model::{self, State};
use ocs_core::presence_agent::{PresenceEvent, PublishId, WatchId};
use ocs_core::provisioning_agent::ProvisioningEvent;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
use tokio::sync::{oneshot, watch};

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
            Error::Auth { .. } => OcsError::Auth { detail },
            Error::Transport { .. } | Error::PeerMisbehaved { .. } => OcsError::Network { detail },
            Error::PolicyDenied { policy, provenance } => OcsError::PolicyDenied {
                policy,
                source: provenance.source,
                location: provenance.from,
            },
            Error::Parse(_) | Error::ApiMisuse { .. } => OcsError::InvalidArgument { detail },
            Error::Rejected { status, reason, .. } => OcsError::Server {
                status,
                reason,
                detail,
            },
            Error::NotDelivered { reason, detail } => OcsError::NotDelivered {
                reason: ImFailureReason::of(reason),
                detail,
            },
            Error::Stopped => OcsError::NotSignedIn,
            Error::Cancelled => OcsError::InvalidArgument { detail },
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
    /// Find the server by Lync/SfB autodiscover before DNS, when `server`
    /// is not set (OCS 2007 R2 clients use DNS only).
    #[uniffi(default = false)]
    pub autodiscover: bool,
    /// Where autodiscover starts (e.g. a test server's URL); empty:
    /// `lyncdiscoverinternal.DOMAIN`, then `lyncdiscover.DOMAIN`.
    #[uniffi(default)]
    pub autodiscover_urls: Vec<String>,
    /// Provision a TLS-DSK certificate when a Lync/SfB pool asks for one
    /// (a web ticket with the password, then the pool's certificate
    /// service), and renew it before it lapses. Not in the mobile build.
    #[uniffi(default = false)]
    pub provision_certificates: bool,
    /// Keep provisioned certificates in this folder (the key readable by
    /// its owner only) and use a fresh one found there without asking;
    /// `None`: kept in memory only.
    #[uniffi(default = None)]
    pub certificate_store: Option<String>,
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
    if c.autodiscover {
        cfg.autodiscover = Some(ocs_core::driver::AutodiscoverSettings {
            urls: (!c.autodiscover_urls.is_empty()).then(|| c.autodiscover_urls.clone()),
        });
    }
    if c.provision_certificates || c.certificate_store.is_some() {
        cfg.certificates = Some(ocs_core::driver::CertificateSettings {
            store: c.certificate_store.as_ref().map(std::path::PathBuf::from),
        });
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

/// Locks, ignoring poisoning: every critical section here is one
/// assignment, lookup or list edit, so a panic cannot leave the data
/// half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A host's presence listener and the watch it belongs to.
struct Sub {
    /// This facade's number for the subscription (the watch id arrives
    /// after the listener must already be in place).
    token: u64,
    /// The watched URI, keyed as the core keys it.
    key: String,
    listener: Arc<dyn PresenceListener>,
}

/// The host's listeners, and what events taught that hosts ask for
/// synchronously (custom states, the policy with its in-band part).
struct Shared {
    user: String,
    lcid: u32,
    subs: Mutex<(u64, Vec<Sub>)>,
    im: Mutex<Option<Arc<dyn ImListener>>>,
    contacts: Mutex<Option<Arc<dyn ContactListListener>>>,
    custom_states: Mutex<Vec<CustomState>>,
    policy: Mutex<EffectivePolicy>,
}

/// One sign-in: the core client's handle, and the thread that hands its
/// events to the host's listeners.
struct Session {
    handle: ClientHandle,
    /// Ends the event thread, which drops (and so stops) the core client.
    stop: Option<oneshot::Sender<()>>,
    /// Turns true when the event thread has ended.
    ended: watch::Receiver<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Session {
    /// Stops the event thread and waits for it, unless called on it.
    fn end(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
/// After a sign-out (or a failed sign-in) it can sign in again; listeners
/// stay, subscriptions end with the session. Dropping the client stops it
/// at once without signing out.
///
/// Every command that starts something has an id and exactly one outcome:
/// the async call returns the id once it succeeded and raises the reason
/// when it failed; the logger sees the same outcome as an event.
#[derive(uniffi::Object)]
pub struct OcsClient {
    cfg: ClientConfig,
    shared: Arc<Shared>,
    session: Mutex<Option<Session>>,
}

impl Drop for OcsClient {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.session).take() {
            s.end();
        }
    }
}

impl OcsClient {
    /// The running session's command handle.
    fn handle(&self) -> Result<ClientHandle, OcsError> {
        lock(&self.session)
            .as_ref()
            .filter(|s| !*s.ended.borrow() && !s.handle.is_stopped())
            .map(|s| s.handle.clone())
            .ok_or(OcsError::NotSignedIn)
    }
}

/// Waits for a presence command's outcome; its id when it succeeded.
async fn published(asked: Result<Pending<PublishId, State>, Error>) -> Result<u64, OcsError> {
    let asked = asked?;
    let id = asked.id.0;
    asked.outcome().await?;
    Ok(id)
}

#[uniffi::export]
impl OcsClient {
    /// A client for `config`. Checks the configuration (URI, policy files,
    /// CA file) but does not connect.
    #[uniffi::constructor]
    pub fn new(config: OcsConfig) -> Result<Arc<OcsClient>, OcsError> {
        OcsClient::make(config, None)
    }

    /// A client for `config` whose web requests (autodiscover,
    /// CustomStateURL, certificate provisioning) go through the app's own
    /// HTTP stack, `http`: its proxy settings and trust store apply. The
    /// mobile build has no HTTP client of its own, so there this is how
    /// those features work at all.
    #[uniffi::constructor]
    pub fn with_http(
        config: OcsConfig,
        http: Arc<dyn crate::host_http::HttpTransport>,
    ) -> Result<Arc<OcsClient>, OcsError> {
        OcsClient::make(config, Some(http))
    }
}

impl OcsClient {
    fn make(
        config: OcsConfig,
        http: Option<Arc<dyn crate::host_http::HttpTransport>>,
    ) -> Result<Arc<OcsClient>, OcsError> {
        let (mut cfg, policy) = client_config(&config)?;
        cfg.http = http.map(|h| ocs_core::driver::SharedHttp::new(crate::host_http::HostHttp(h)));
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
        }))
    }
}

#[uniffi::export]
impl OcsClient {
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
        let signed_in = {
            let mut session = lock(&self.session);
            if session
                .as_ref()
                .is_some_and(|s| !*s.ended.borrow() && !s.handle.is_stopped())
            {
                return Err(invalid("already signed in (or signing in)"));
            }
            if let Some(old) = session.take() {
                old.end();
            }
            let client = {
                let _rt = runtime().enter();
                Client::start(self.cfg.clone())?
            };
            let handle = client.handle();
            let (stop, stopped) = oneshot::channel();
            let (signed_in_tx, signed_in) = oneshot::channel();
            let (ended_tx, ended) = watch::channel(false);
            let shared = self.shared.clone();
            let thread = std::thread::Builder::new()
                .name("ocs-events".into())
                .spawn(move || {
                    runtime().block_on(events(client, shared, signed_in_tx, stopped, ended_tx));
                })
                .map_err(|e| OcsError::Internal {
                    detail: format!("cannot start a thread: {e}"),
                })?;
            *session = Some(Session {
                handle,
                stop: Some(stop),
                ended,
                thread: Some(thread),
            });
            signed_in
        };
        signed_in.await.unwrap_or(Err(OcsError::NotSignedIn))
    }

    /// Signs out (un-registers) and stops; returns when done. Does nothing
    /// when not signed in.
    pub async fn sign_out(&self) -> Result<(), OcsError> {
        let ended = lock(&self.session).as_ref().map(|s| {
            s.handle.sign_out();
            s.ended.clone()
        });
        if let Some(mut ended) = ended {
            // The event thread ends once the client has stopped.
            let _ = ended.wait_for(|e| *e).await;
        }
        let session = lock(&self.session).take();
        if let Some(s) = session {
            s.end();
        }
        Ok(())
    }

    /// Whether the client is signed in or signing in.
    pub fn is_running(&self) -> bool {
        self.handle().is_ok()
    }

    /// Publishes our state and note (`None`: no note); returns the
    /// command's id once the server accepted it. `Offline` is "appear
    /// offline" (see [`OcsClient::appear_offline`]).
    #[uniffi::method(default(note = None))]
    pub async fn set_status(
        &self,
        state: PresenceState,
        note: Option<String>,
    ) -> Result<u64, OcsError> {
        let h = self.handle()?;
        published(h.set_status(state.core(), note.as_deref()).await).await
    }

    /// Appears offline to everybody (availability 18500) while staying
    /// signed in. Fails with `PolicyDenied` unless the EnableAppearOffline
    /// policy allows it.
    #[uniffi::method(default(note = None))]
    pub async fn appear_offline(&self, note: Option<String>) -> Result<u64, OcsError> {
        self.set_status(PresenceState::Offline, note).await
    }

    /// Changes the note and keeps the state set last (online when none was
    /// set yet).
    pub async fn set_note(&self, note: Option<String>) -> Result<u64, OcsError> {
        let h = self.handle()?;
        published(h.set_note(note.as_deref()).await).await
    }

    /// Publishes a custom state: an availability with our own text in
    /// language `lcid` (see [`OcsClient::custom_states`] for the ones the
    /// administrator defined).
    #[uniffi::method(default(note = None))]
    pub async fn set_custom_state(
        &self,
        availability: CustomAvailability,
        lcid: u32,
        text: String,
        note: Option<String>,
    ) -> Result<u64, OcsError> {
        let h = self.handle()?;
        let a = availability.core().availability();
        published(h.set_custom_state(a, lcid, &text, note.as_deref()).await).await
    }

    /// "Reset status": drops the manual state so the automatic one (idle,
    /// calls) shows again.
    pub async fn reset_status(&self) -> Result<u64, OcsError> {
        let h = self.handle()?;
        published(h.reset_status().await).await
    }

    /// Reports how long the user has been idle (call it when that changes,
    /// and with 0 on input): inactive after 5 minutes, away after 20.
    pub async fn set_idle(&self, seconds: u32) -> Result<u64, OcsError> {
        let h = self.handle()?;
        let idle = Duration::from_secs(u64::from(seconds));
        published(h.set_idle(idle).await).await
    }

    /// Reports that a call started or ended ("on the phone" meanwhile).
    pub async fn set_in_call(&self, in_call: bool) -> Result<u64, OcsError> {
        let h = self.handle()?;
        published(h.set_in_call(in_call).await).await
    }

    /// The custom states loaded from CustomStateURL after sign-in (empty
    /// until then, or when none are configured).
    pub fn custom_states(&self) -> Vec<CustomState> {
        lock(&self.shared.custom_states).clone()
    }

    /// Watches `uri`'s presence: `listener` gets its presence on every
    /// change (and when the server ends the watch). Returns once the
    /// client took the watch; the subscription ends when cancelled,
    /// dropped, or when the session ends.
    pub async fn subscribe(
        &self,
        uri: String,
        listener: Arc<dyn PresenceListener>,
    ) -> Result<Arc<Subscription>, OcsError> {
        let h = self.handle()?;
        let key = watch_key(&uri);
        // In place before the watch starts, so no notification passes by.
        let token = {
            let mut subs = lock(&self.shared.subs);
            subs.0 += 1;
            let token = subs.0;
            subs.1.push(Sub {
                token,
                key: key.clone(),
                listener,
            });
            token
        };
        let shared = Arc::downgrade(&self.shared);
        let forget = || lock(&self.shared.subs).1.retain(|s| s.token != token);
        let id = match h.watch(&uri).await {
            Ok(p) => p.id,
            Err(e) => {
                forget();
                return Err(e.into());
            }
        };
        Ok(Arc::new(Subscription {
            handle: h,
            shared,
            token,
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

    /// Sends an instant message and returns its id once it was delivered.
    /// Fails with `NotDelivered` (and the reason) when the recipient or the
    /// server refused it, `PolicyDenied` when DisableIM is set here.
    pub async fn send_im(&self, to: String, text: String) -> Result<u64, OcsError> {
        let sent = self.handle()?.send_im(&to, &text).await?;
        let id = sent.id.0;
        sent.outcome().await?;
        Ok(id)
    }

    /// Tells `to` that we started or stopped typing.
    pub fn send_typing(&self, to: String, active: bool) -> Result<(), OcsError> {
        self.handle()?.send_typing(&to, active);
        Ok(())
    }

    /// Ends the conversation with `to` (OCS closes its session).
    pub fn end_im_session(&self, to: String) -> Result<(), OcsError> {
        self.handle()?.end_im_session(&to);
        Ok(())
    }

    /// The diagnostics snapshot (what `ocs diag` shows) as JSON: server,
    /// registration, provisioning, address book, custom states and every
    /// effective policy with its source.
    pub async fn diagnostics(&self) -> Result<String, OcsError> {
        Ok(self.handle()?.diagnostics().await?.to_json())
    }

    /// The server-stored contact list (OCS), once the server sent it after
    /// sign-in; `None` before that and in the standard dialect.
    pub async fn contact_list(&self) -> Result<Option<ContactList>, OcsError> {
        let list = self.handle()?.contact_list().await?;
        Ok(list.as_ref().map(ContactList::of))
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
        Ok(self.handle()?.add_contact(&uri, group.as_deref()).await?)
    }

    /// Removes a contact from the list (and stops watching it).
    pub async fn remove_contact(&self, uri: String) -> Result<(), OcsError> {
        Ok(self.handle()?.remove_contact(&uri).await?)
    }

    /// Moves a contact into the group `to_group`, out of all others.
    pub async fn move_contact(&self, uri: String, to_group: String) -> Result<(), OcsError> {
        Ok(self.handle()?.move_contact(&uri, &to_group).await?)
    }

    /// Creates a group; returns the id the server gave it.
    pub async fn add_group(&self, name: String) -> Result<u32, OcsError> {
        Ok(self.handle()?.add_group(&name).await?)
    }

    /// Renames a group.
    pub async fn rename_group(&self, name: String, new_name: String) -> Result<(), OcsError> {
        Ok(self.handle()?.rename_group(&name, &new_name).await?)
    }

    /// Removes a group; its contacts stay in their other groups.
    pub async fn remove_group(&self, name: String) -> Result<(), OcsError> {
        Ok(self.handle()?.remove_group(&name).await?)
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
/// watch ends on [`Subscription::cancel`], when this object is dropped, or
/// with the session.
#[derive(uniffi::Object)]
pub struct Subscription {
    handle: ClientHandle,
    shared: Weak<Shared>,
    token: u64,
    id: WatchId,
    key: String,
    cancelled: Mutex<bool>,
}

#[uniffi::export]
impl Subscription {
    /// The watched URI (as the core keys it: trimmed, lower case).
    pub fn uri(&self) -> String {
        self.key.clone()
    }

    /// The watch command's id (the logger's watch events carry it).
    pub fn id(&self) -> u64 {
        self.id.0
    }

    /// Stops this subscription (the core unwatches the contact when no
    /// other subscription holds it). Calling it again does nothing.
    pub fn cancel(&self) {
        let mut cancelled = lock(&self.cancelled);
        if std::mem::replace(&mut *cancelled, true) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.subs).1.retain(|s| s.token != self.token);
        }
        self.handle.release_watch(self.id);
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

/// The event thread: hands every event of `client` to the host's
/// listeners and the logger, answers `signed_in` with the first sign-in's
/// outcome, and ends when the client stops or `stop` fires (then `ended`
/// turns true).
async fn events(
    mut client: Client,
    shared: Arc<Shared>,
    signed_in: oneshot::Sender<Result<SignInInfo, OcsError>>,
    mut stop: oneshot::Receiver<()>,
    ended: watch::Sender<bool>,
) {
    let mut signed_in = Some(signed_in);
    let mut failed = None;
    loop {
        let e = tokio::select! {
            e = client.next_event() => e,
            _ = &mut stop => None,
        };
        let Some(e) = e else { break };
        if signed_in.is_some()
            && let Some(outcome) = e.sign_in_outcome()
            && let Some(reply) = signed_in.take()
        {
            let info = match &e {
                ClientEvent::Registration(RegistrationEvent::Registered {
                    gruu,
                    expires,
                    auth_scheme,
                    ..
                }) => Some(SignInInfo {
                    gruu: gruu.clone(),
                    expires_secs: *expires,
                    auth_scheme: auth_scheme.clone(),
                }),
                _ => None,
            };
            match outcome {
                Ok(()) => {
                    let _ = reply.send(info.ok_or(OcsError::NotSignedIn));
                }
                Err(why) => {
                    // This facade has no way to give other credentials: a
                    // failed first sign-in ends the session. The caller
                    // hears why once the client has stopped.
                    failed = Some((reply, OcsError::from(why)));
                    deliver(&shared, e);
                    break;
                }
            }
        }
        deliver(&shared, e);
    }
    // Stop first and answer afterwards, so a host that hears back sees the
    // client stopped (is_running false, a new sign_in allowed).
    drop(client);
    lock(&shared.subs).1.clear();
    let _ = ended.send(true);
    if let Some((reply, why)) = failed {
        let _ = reply.send(Err(why));
    }
    // Stopped before a sign-in outcome: the caller hears so.
    if let Some(reply) = signed_in {
        let _ = reply.send(Err(OcsError::NotSignedIn));
    }
}

/// One event to the logger and to the listeners it concerns.
fn deliver(shared: &Shared, e: ClientEvent) {
    let user = shared.user.as_str();
    log(LogLevel::of(e.severity()), e.id(), user, || e.summary());
    match e {
        ClientEvent::Im(ImEvent::Received { from, content }) => {
            if let Some(l) = lock(&shared.im).clone() {
                call_host(user, "ImListener.on_message", || {
                    l.on_message(from, content.plain_text)
                });
            }
        }
        ClientEvent::Im(ImEvent::Typing { from, active }) => {
            if let Some(l) = lock(&shared.im).clone() {
                call_host(user, "ImListener.on_typing", || l.on_typing(from, active));
            }
        }
        ClientEvent::Presence(PresenceEvent::Changed { uri, presence }) => {
            let update = ContactPresence::of(&uri, &presence, shared.lcid);
            for l in listeners(shared, &uri) {
                let u = update.clone();
                call_host(user, "PresenceListener.on_presence", || l.on_presence(u));
            }
        }
        ClientEvent::Presence(PresenceEvent::WatchEnded { uri, reason }) => {
            for l in listeners(shared, &uri) {
                let (u, r) = (uri.clone(), reason.clone());
                call_host(user, "PresenceListener.on_ended", || l.on_ended(u, r));
            }
        }
        ClientEvent::Presence(PresenceEvent::ContactList(list)) => {
            if let Some(l) = lock(&shared.contacts).clone() {
                let list = ContactList::of(&list);
                call_host(user, "ContactListListener.on_contact_list", || {
                    l.on_contact_list(list)
                });
            }
        }
        ClientEvent::CustomStates { states, .. } => {
            *lock(&shared.custom_states) = custom_states_of(&states);
        }
        ClientEvent::Provisioning(ProvisioningEvent::Received(p)) => {
            lock(&shared.policy).set_in_band(&p.to_in_band());
        }
        _ => {}
    }
}

/// The listeners subscribed to `uri`.
fn listeners(shared: &Shared, uri: &str) -> Vec<Arc<dyn PresenceListener>> {
    let key = watch_key(uri);
    lock(&shared.subs)
        .1
        .iter()
        .filter(|s| s.key == key)
        .map(|s| s.listener.clone())
        .collect()
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

    /// The autodiscover URL of the server's web services (plain HTTP on
    /// 127.0.0.1), for `OcsConfig.autodiscover_urls`.
    pub fn autodiscover_url(&self) -> String {
        format!(
            "http://{}/autodiscover/autodiscoverservice.svc/root",
            self.handle.http
        )
    }

    /// Answers every presence publication with SIP status `status` (e.g.
    /// 403 or 409) from now on; 0 accepts them again.
    pub fn refuse_publications(&self, status: u16) -> Result<(), OcsError> {
        let refuse = match status {
            0 => None,
            300..=699 => Some(status),
            _ => {
                return Err(invalid(format!(
                    "status {status} is not a SIP failure status"
                )));
            }
        };
        self.on_server(move |s, _| s.refuse_publications(refuse))
    }

    /// Hands out the ucPolicy property `name` = `value` (e.g. `DisableIM`
    /// = `true`) by in-band provisioning to every client that signs in from
    /// now on.
    pub fn set_uc_policy(&self, name: String, value: String) -> Result<(), OcsError> {
        self.on_server(move |s, _| s.set_uc_policy(&name, &value))
    }

    /// How many users `watcher` (a SIP URI) has a live presence
    /// subscription to, as the server sees it.
    pub fn watched_count(&self, watcher: String) -> Result<u32, OcsError> {
        let n = self.on_server(move |s, now| s.presence().watched_by(&watcher, now).len())?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Panics inside the library, to show that a panic below the FFI
    /// becomes an error for that call (`InternalError` in Python) and the
    /// host carries on.
    pub fn panic_for_test(&self) {
        panic!("a panic below the FFI, on purpose");
    }
}

#[cfg(feature = "sim")]
impl SimServer {
    /// Runs `f` on the server and waits for it.
    fn on_server<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ocs_core::sim::SimServer, std::time::Instant) -> R + Send + 'static,
    ) -> Result<R, OcsError> {
        let handle = self.handle.clone();
        wait(async move { handle.with(f).await })
            .flatten()
            .ok_or(OcsError::NotSignedIn)
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
            autodiscover: false,
            autodiscover_urls: Vec::new(),
            provision_certificates: false,
            certificate_store: None,
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
            OcsError::from(Error::transport(
                ocs_core::error::TransportFailure::Connect,
                "x"
            )),
            OcsError::Network { .. }
        ));
        assert!(matches!(
            OcsError::from(Error::auth(ocs_core::error::AuthFailure::Mechanism, "x")),
            OcsError::Auth { .. }
        ));
        assert!(matches!(
            OcsError::from(Error::misuse(ocs_core::error::Misuse::BadArgument, "x")),
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
        assert_eq!(
            runtime().block_on(c.set_idle(10)),
            Err(OcsError::NotSignedIn)
        );
        assert_eq!(
            c.send_typing("sip:bob@contoso.com".into(), true),
            Err(OcsError::NotSignedIn)
        );
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
