//! The client's side of diagnostics: what the snapshot remembers from past
//! events, filling a [`Snapshot`] from the session's state, and the stable
//! event ids and severities of [`ClientEvent`] (table in [`crate::diag`]).

use super::{AddressBookEvent, ClientEvent, Config};
use crate::customstates::check_url;
use crate::diag::{
    AddressBookInfo, CustomStatesInfo, RegistrationInfo, ServerInfo, Severity, Snapshot,
};
use crate::discovery::Dialect;
use crate::endpoint::Endpoint;
use crate::messaging::ImEvent;
use crate::presence_agent::PresenceEvent;
use crate::provisioning_agent::{ProvisioningAgent, ProvisioningEvent};
use crate::register::{RegState, RegistrationEvent};

/// What the snapshot needs that the endpoint does not keep.
#[derive(Debug, Default)]
pub(super) struct DiagState {
    server: Option<ServerInfo>,
    auth: Option<(String, u32)>,
    expires: Option<u32>,
    provisioning: Option<String>,
    refused: u64,
    last_refused: Option<String>,
}

impl DiagState {
    /// Records what an event tells about the configuration.
    pub(super) fn note(&mut self, e: &ClientEvent) {
        match e {
            ClientEvent::Connected {
                host,
                addr,
                transport,
                source,
                local,
            } => {
                self.server = Some(ServerInfo {
                    host: host.clone(),
                    addr: addr.to_string(),
                    transport: transport.as_str().to_owned(),
                    found_by: source.clone(),
                    local: local.to_string(),
                });
            }
            ClientEvent::Disconnected(_) => self.server = None,
            ClientEvent::Registration(RegistrationEvent::Registered {
                expires,
                auth_scheme,
                auth_version,
                ..
            }) => {
                self.expires = Some(*expires);
                self.auth = Some((auth_scheme.clone(), *auth_version));
            }
            ClientEvent::Provisioning(ProvisioningEvent::Received(_)) => {
                self.provisioning = Some("received".into());
            }
            ClientEvent::Provisioning(ProvisioningEvent::Failed(err)) => {
                self.provisioning = Some(format!("failed: {err}"));
            }
            ClientEvent::SecurityViolation(why) => {
                self.refused += 1;
                self.last_refused = Some(why.clone());
            }
            _ => {}
        }
    }

    /// The snapshot of the task's current state.
    pub(super) fn snapshot(
        &self,
        cfg: &Config,
        ep: &Endpoint,
        prov: &ProvisioningAgent,
    ) -> Snapshot {
        let reg = ep.registration();
        let dialect = cfg.endpoint.register.dialect;
        let state = match reg.state() {
            RegState::Idle => "idle",
            RegState::Registering => "registering",
            RegState::Registered => "registered",
            RegState::WaitingForCredentials => "waiting-for-credentials",
            RegState::WaitingToRetry => "waiting-to-retry",
            RegState::Unregistering => "unregistering",
            RegState::Done => "done",
        };
        let (auth_scheme, auth_version) = match (reg.security(), &self.auth) {
            (Some(sa), _) => (Some(sa.scheme().to_owned()), Some(sa.version())),
            (None, Some((s, v))) if !s.is_empty() => (Some(s.clone()), Some(*v)),
            _ => (None, None),
        };
        let provisioning = if prov.is_pending() {
            "pending".to_owned()
        } else if let Some(p) = &self.provisioning {
            p.clone()
        } else if dialect == Dialect::Ocs {
            "not requested".to_owned()
        } else {
            "not used (standard dialect)".to_owned()
        };
        let mut policy = cfg.policy.clone();
        if let Some(p) = prov.last() {
            policy.set_in_band(&p.to_in_band());
        }
        let mut custom_states = CustomStatesInfo::from_policy(&policy);
        // The client's own setting is what it loads; say so when it differs.
        if let Some(url) = &cfg.custom_state_url
            && custom_states.url.as_ref() != Some(url)
        {
            custom_states = CustomStatesInfo {
                url: Some(url.clone()),
                from: Some("client configuration".into()),
                status: match check_url(url, cfg.custom_state_client, cfg.high_security) {
                    Ok(()) => "allowed".into(),
                    Err(v) => format!("refused: {v}"),
                },
            };
        }
        Snapshot {
            sip_uri: cfg.endpoint.register.aor.clone(),
            dialect: match dialect {
                Dialect::Ocs => "ocs",
                Dialect::Standard => "standard",
            }
            .to_owned(),
            server: self.server.clone(),
            registration: RegistrationInfo {
                state: state.to_owned(),
                gruu: reg.gruu().map(str::to_owned),
                expires: self.expires.filter(|_| reg.is_registered()),
                keep_alive: reg.keep_alive(),
                remote_user: reg.is_remote_user(),
                auth_scheme,
                auth_version,
                auth_choice: reg.auth_choice().map(str::to_owned),
            },
            provisioning,
            address_book: AddressBookInfo::from_provisioning(prov.last(), reg.is_remote_user()),
            custom_states,
            policies: policy.settings(),
            refused_unsigned: self.refused,
            last_refused: self.last_refused.clone(),
        }
    }
}

impl ClientEvent {
    /// The stable numeric id of this kind of event, for an application's
    /// event log (the table is in [`crate::diag`]).
    pub fn id(&self) -> u32 {
        match self {
            ClientEvent::Connected { .. } => 1000,
            ClientEvent::ConnectFailed { .. } => 1001,
            ClientEvent::Disconnected(_) => 1002,
            ClientEvent::Reconnected { .. } => 1003,
            ClientEvent::Registration(r) => match r {
                RegistrationEvent::Registered { refresh: false, .. } => 1100,
                RegistrationEvent::Registered { refresh: true, .. } => 1101,
                RegistrationEvent::CredentialsNeeded { .. } => 1102,
                RegistrationEvent::Redirected(_) => 1103,
                RegistrationEvent::RetryScheduled { .. } => 1104,
                RegistrationEvent::Failed(_) => 1105,
                RegistrationEvent::SignedOut {
                    by_server: false, ..
                } => 1106,
                RegistrationEvent::SignedOut {
                    by_server: true, ..
                } => 1107,
                RegistrationEvent::CertificateNeeded { .. } => 1108,
            },
            ClientEvent::SecurityViolation(_) => 1200,
            ClientEvent::Im(i) => match i {
                ImEvent::Delivered { .. } => 1300,
                ImEvent::Failed { .. } => 1301,
                ImEvent::Received { .. } => 1302,
                ImEvent::Typing { .. } => 1303,
                ImEvent::RefusedByPolicy { .. } => 1304,
                ImEvent::ContactCannotReceiveIm { .. } => 1305,
                ImEvent::SessionEnded { .. } => 1306,
            },
            ClientEvent::Presence(p) => match p {
                PresenceEvent::Changed { .. } => 1400,
                PresenceEvent::Published { .. } => 1401,
                PresenceEvent::PublishFailed { .. } => 1402,
                PresenceEvent::WatchEnded { .. } => 1403,
                PresenceEvent::ContactList(_) => 1404,
                PresenceEvent::ContactListChanged { .. } => 1405,
                PresenceEvent::ContactListChangeFailed { .. } => 1406,
                PresenceEvent::Watching { .. } => 1407,
                PresenceEvent::WatchFailed { .. } => 1408,
            },
            ClientEvent::Provisioning(p) => match p {
                ProvisioningEvent::Received(_) => 1500,
                ProvisioningEvent::Failed(_) => 1501,
            },
            ClientEvent::CustomStates { .. } => 1600,
            ClientEvent::CustomStatesFailed { .. } => 1601,
            ClientEvent::TraceFailed(_) => 1700,
            ClientEvent::AddressBook(a) => match a {
                AddressBookEvent::Ready { .. } => 1800,
                AddressBookEvent::Failed { .. } => 1801,
                AddressBookEvent::FailingForADay { .. } => 1802,
            },
            ClientEvent::Stopped => 1900,
        }
    }

    /// One line for a log or an event viewer: what happened, without
    /// anything private (no credentials, message text or presence notes:
    /// an IM is described by its id, sender and length, a presence change
    /// by the contact and the state).
    pub fn summary(&self) -> String {
        match self {
            ClientEvent::Connected {
                host,
                addr,
                transport,
                source,
                local,
            } => format!(
                "connected to {host} ({addr}) over {transport} from {local}, found by {source}"
            ),
            ClientEvent::ConnectFailed { target, error } => {
                format!("cannot connect to {target}: {error}")
            }
            ClientEvent::Disconnected(why) => format!("disconnected: {why}"),
            ClientEvent::Reconnected { down_for, attempts } => format!(
                "reconnected after {} ({attempts} attempt{})",
                crate::error::show_duration(*down_for),
                if *attempts == 1 { "" } else { "s" }
            ),
            ClientEvent::Registration(r) => match r {
                RegistrationEvent::Registered {
                    refresh: false,
                    auth_scheme,
                    auth_version,
                    expires,
                    gruu,
                    ..
                } => format!(
                    "signed in ({}{}), registration expires in {expires} s{}",
                    if auth_scheme.is_empty() {
                        "no authentication"
                    } else {
                        auth_scheme
                    },
                    if *auth_version > 0 {
                        format!(" version {auth_version}")
                    } else {
                        String::new()
                    },
                    if gruu.is_some() {
                        ", GRUU assigned"
                    } else {
                        ""
                    }
                ),
                RegistrationEvent::Registered { expires, .. } => {
                    format!("registration refreshed, expires in {expires} s")
                }
                RegistrationEvent::CredentialsNeeded { realm, reason } => {
                    format!("credentials needed for {realm:?} ({reason:?})")
                }
                RegistrationEvent::CertificateNeeded { sts_uri, renewal } => format!(
                    "{} TLS-DSK certificate needed from {sts_uri}",
                    if *renewal { "a renewed" } else { "a" }
                ),
                RegistrationEvent::Redirected(to) => format!(
                    "redirected to {}{} over {}",
                    to.host,
                    to.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    to.transport
                ),
                RegistrationEvent::RetryScheduled { error, .. } => {
                    format!("sign-in will be retried: {error}")
                }
                RegistrationEvent::Failed(e) => format!("sign-in failed: {e}"),
                RegistrationEvent::SignedOut { by_server, reason } => format!(
                    "signed out{}{}",
                    if *by_server { " by the server" } else { "" },
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            },
            ClientEvent::SecurityViolation(s) => format!("message refused (MS-SIPAE): {s}"),
            ClientEvent::Im(i) => match i {
                ImEvent::Delivered { id } => format!("IM {} delivered", id.0),
                ImEvent::Failed { id, reason, detail } => {
                    format!("IM {} not delivered: {reason} ({detail})", id.0)
                }
                ImEvent::Received { from, content } => format!(
                    "IM received from {from} ({} characters)",
                    content.plain_text.chars().count()
                ),
                ImEvent::Typing { from, active } => {
                    format!("{from} {} typing", if *active { "is" } else { "stopped" })
                }
                ImEvent::RefusedByPolicy { from } => {
                    format!("IM from {from} refused: IM is disabled by policy")
                }
                ImEvent::ContactCannotReceiveIm { uri } => {
                    format!("{uri} cannot receive IM (disabled by policy there)")
                }
                ImEvent::SessionEnded { uri, by_peer } => format!(
                    "IM session with {uri} ended{}",
                    if *by_peer { " by the other side" } else { "" }
                ),
            },
            ClientEvent::Presence(p) => match p {
                PresenceEvent::Changed { uri, presence } => {
                    format!("{uri} is {}", presence.state().as_str())
                }
                PresenceEvent::Published { id, state } => {
                    format!("published{}: {}", show_publish_id(*id), state.as_str())
                }
                PresenceEvent::PublishFailed { id, error } => {
                    format!("publishing{} failed: {error}", show_publish_id(*id))
                }
                PresenceEvent::WatchEnded { uri, reason } => {
                    format!("watching {uri} ended: {reason}")
                }
                PresenceEvent::Watching { id, uri } => format!("watch {} of {uri} set up", id.0),
                PresenceEvent::WatchFailed { id, uri, error } => {
                    format!("watch {} of {uri} failed: {error}", id.0)
                }
                PresenceEvent::ContactList(l) => format!(
                    "contact list: {} contacts in {} groups",
                    l.contacts.len(),
                    l.groups.len()
                ),
                PresenceEvent::ContactListChanged { id, .. } => {
                    format!("contact-list change {} done", id.0)
                }
                PresenceEvent::ContactListChangeFailed { id, error } => {
                    format!("contact-list change {} failed: {error}", id.0)
                }
            },
            ClientEvent::Provisioning(p) => match p {
                ProvisioningEvent::Received(_) => "in-band provisioning received".to_owned(),
                ProvisioningEvent::Failed(e) => format!("in-band provisioning failed: {e}"),
            },
            ClientEvent::CustomStates { states, warnings } => format!(
                "custom states loaded: {} ({} problems)",
                states.states.len(),
                warnings.len()
            ),
            ClientEvent::CustomStatesFailed { url, error } => {
                format!("custom states from {url:?} not loaded: {error}")
            }
            ClientEvent::TraceFailed(e) => format!("SIP trace stopped: {e}"),
            ClientEvent::AddressBook(a) => match a {
                AddressBookEvent::Ready {
                    entries,
                    day,
                    fetched,
                } => format!(
                    "address book ready: {entries} entries, current to {day}{}",
                    fetched
                        .as_ref()
                        .map(|f| format!(" (downloaded {f})"))
                        .unwrap_or_default()
                ),
                AddressBookEvent::Failed {
                    error,
                    failures,
                    retry_in,
                } => format!(
                    "address-book download failed ({failures} in a row, next in {} s): {error}",
                    retry_in.as_secs()
                ),
                AddressBookEvent::FailingForADay { failing_for, error } => format!(
                    "address-book downloads have failed for {} h: {error}",
                    failing_for.as_secs() / 3600
                ),
            },
            ClientEvent::Stopped => "stopped".to_owned(),
        }
    }

    /// How serious this event is (the table is in [`crate::diag`]).
    pub fn severity(&self) -> Severity {
        match self.id() {
            1101 | 1300 | 1303 | 1306 | 1400 => Severity::Verbose,
            1105 | 1200 | 1402 | 1802 => Severity::Error,
            1001 | 1002 | 1102 | 1104 | 1107 | 1301 | 1403 | 1406 | 1408 | 1501 | 1601 | 1700
            | 1801 => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// ` #3` for a command's publication, nothing for the client's own.
fn show_publish_id(id: Option<crate::presence_agent::PublishId>) -> String {
    id.map(|i| format!(" #{}", i.0)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn ids_and_severities_follow_the_table() {
        let cases = [
            (ClientEvent::Stopped, 1900, Severity::Info),
            (
                ClientEvent::Disconnected("x".into()),
                1002,
                Severity::Warning,
            ),
            (
                ClientEvent::Reconnected {
                    down_for: std::time::Duration::from_millis(2500),
                    attempts: 2,
                },
                1003,
                Severity::Info,
            ),
            (
                ClientEvent::Registration(RegistrationEvent::Failed(Error::transport(
                    crate::error::TransportFailure::Connect,
                    "x",
                ))),
                1105,
                Severity::Error,
            ),
            (
                ClientEvent::Registration(RegistrationEvent::SignedOut {
                    by_server: true,
                    reason: None,
                }),
                1107,
                Severity::Warning,
            ),
            (
                ClientEvent::Provisioning(ProvisioningEvent::Received(Box::default())),
                1500,
                Severity::Info,
            ),
            (
                ClientEvent::Presence(PresenceEvent::WatchEnded {
                    uri: "u".into(),
                    reason: "r".into(),
                }),
                1403,
                Severity::Warning,
            ),
        ];
        for (e, id, sev) in cases {
            assert_eq!((e.id(), e.severity()), (id, sev), "{e:?}");
        }
    }
}
