//! Publishing our presence and watching contacts, on top of the
//! [`Endpoint`], sans-IO.
//!
//! Standard dialect: PUBLISH of PIDF + RPID with SIP-ETag refresh, modify,
//! remove and recovery from 412 (RFC 3903), and one SUBSCRIBE dialog per
//! watched contact with NOTIFY handling, refresh and termination (RFC 3856).
//!
//! OCS dialect (MS-PRES): the roaming-self subscription teaches us our
//! publication versions; status goes out as a SERVICE with a category
//! publish body (userState in containers 2 and 3, the note in 200/300/400),
//! retried with the current version after `409 WrongDelta`; contacts are
//! watched with batched category SUBSCRIBEs (adhoclist) whose first
//! notification rides in the 200 OK and whose updates arrive as BENOTIFY,
//! which is never answered.
//!
//! Appear offline publishes availability 18500 and is refused unless the
//! effective EnableAppearOffline policy allows it.
//!
//! The server-stored contact list (OCS, MS-SIP 3.7): the
//! roaming-contacts subscription brings the list (`contactList`) and its
//! changes (`contactDelta`); changes go out one at a time as SOAP in a
//! SERVICE carrying the list's `deltaNum`, and a refused version makes us
//! fetch the list again and retry once.

mod contacts;
mod publish;
mod roaming;
mod watch;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::auth::epid::sip_instance_uuid;
use crate::dialog::Dialog;
use crate::discovery::Dialect;
use crate::endpoint::{Endpoint, EndpointEvent, IncomingId, RequestId};
use crate::error::TransportFailure;
use crate::error::{Error, Provenance};
use crate::presence::categories::ParseOptions;
use crate::presence::contacts::{
    ContactList, ContactOp, DEFAULT_GROUP, ROAMING_CONTACTS_CT, RoamingContacts, SOAP_CT,
    parse_add_group_response, parse_roaming_contacts, with_sip,
};
use crate::presence::model::{Availability, NoteKind, Presence, State};
use crate::presence::pidf::{PidfPublish, build_pidf, parse_pidf};
use crate::presence::publish::{
    BatchResource, CustomActivity, DeviceInfo, ExpireType, PublishBody, ROAMING_SELF_BODY,
    batch_subscribe_body, calendar_state_instance, device_instance, epid_instance,
    machine_state_instance, parse_fault, phone_voip_instance,
};
use crate::presence::rlmi::{InstanceState, parse_notify_body};
use crate::presence::roaming::parse_roaming_self;
use crate::sip::{HeaderName, Message, Method, builder};

/// The userState instance every endpoint of a user shares (MS-PRES).
const USER_STATE_INSTANCE: u32 = 0x2000_0000;

/// Presence settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceConfig {
    /// OCS (MS-PRES) or standard (PIDF) presence.
    pub dialect: Dialect,
    /// Our address of record.
    pub aor: String,
    /// The effective EnableAppearOffline policy: `Some(provenance)` when
    /// allowed, `None` when not (with where that came from, if known).
    pub appear_offline: Result<Provenance, Provenance>,
    /// Lifetime asked for publications and subscriptions.
    pub expires: u32,
    /// The UTC offset the device publication shows (`00:00:00+01:00`);
    /// the host knows it, the sans-IO core does not read clocks.
    pub timezone: String,
    /// The machine name the device publication shows.
    pub machine_name: String,
}

impl PresenceConfig {
    /// Defaults: appear offline not allowed (the OC 2007 R2 default).
    pub fn new(dialect: Dialect, aor: &str) -> PresenceConfig {
        PresenceConfig {
            dialect,
            aor: aor.to_owned(),
            appear_offline: Err(Provenance {
                source: "default".into(),
                from: None,
            }),
            expires: 3600,
            timezone: "00:00:00+00:00".into(),
            machine_name: "ocs".into(),
        }
    }
}

/// A meeting the host's calendar reports (e.g. an Outlook add-in reading
/// free/busy data): shown to watchers as "in a meeting".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// When it started, as xs:dateTime (`2026-11-25T14:00:00Z`).
    pub start: String,
    /// Its subject (may be empty).
    pub subject: String,
    /// Its location (may be empty).
    pub location: String,
}

/// What the presence layer reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PresenceEvent {
    /// A contact's presence changed (or arrived for the first time).
    Changed {
        /// The contact.
        uri: String,
        /// Its presence.
        presence: Box<Presence>,
    },
    /// Our publication was accepted.
    Published {
        /// The command it ends (`None`: a publication the client made by
        /// itself, such as a refresh or the state restored after a
        /// reconnect).
        id: Option<PublishId>,
        /// The state watchers now see (our best knowledge: OCS aggregates
        /// the published states on the server).
        state: State,
    },
    /// Publishing failed for good.
    PublishFailed {
        /// The command it ends (`None`: a publication the client made by
        /// itself).
        id: Option<PublishId>,
        /// Why.
        error: Error,
    },
    /// A watch the app asked for is set up: the server accepted the
    /// subscription (presence follows as [`PresenceEvent::Changed`]).
    Watching {
        /// The command it ends.
        id: WatchId,
        /// The contact.
        uri: String,
    },
    /// A watch the app asked for could not be set up (refused, no answer,
    /// cancelled by `unwatch`, or the session ended first).
    WatchFailed {
        /// The command it ends.
        id: WatchId,
        /// The contact.
        uri: String,
        /// Why.
        error: Error,
    },
    /// A watch could not be set up or was ended by the server.
    WatchEnded {
        /// The contact.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The contact list as it now stands (after sign-in, a change of ours
    /// or one made elsewhere).
    ContactList(Box<ContactList>),
    /// A change we asked for is done.
    ContactListChanged {
        /// Which request.
        id: ContactOpId,
        /// What was sent.
        op: ContactOp,
        /// The new group's id, for [`ContactOp::AddGroup`].
        group_id: Option<u32>,
    },
    /// A change we asked for failed.
    ContactListChangeFailed {
        /// Which request.
        id: ContactOpId,
        /// Why.
        error: Error,
    },
}

/// Identifies one presence command (a state, a custom state, a note,
/// idle time, a call, a meeting, reset): it ends in exactly one
/// [`PresenceEvent::Published`] or [`PresenceEvent::PublishFailed`]
/// carrying it, even when nothing needed to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishId(pub u64);

/// Identifies one `watch` command: it ends in exactly one
/// [`PresenceEvent::Watching`] or [`PresenceEvent::WatchFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub u64);

/// Identifies a contact-list change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactOpId(pub u64);

/// A change to the contact list in the user's terms (by URI and group
/// name); turned into a [`ContactOp`] against the list when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContactRequest {
    /// Adds a contact to a group (`None`: the default group) and watches
    /// it; a contact already listed is added to that group too.
    Add {
        /// The contact.
        uri: String,
        /// The group's name.
        group: Option<String>,
    },
    /// Removes a contact from the list and stops watching it.
    Remove {
        /// The contact.
        uri: String,
    },
    /// Moves a contact into one group, out of all others.
    Move {
        /// The contact.
        uri: String,
        /// The group's name.
        to_group: String,
    },
    /// Creates a group.
    AddGroup {
        /// Its name.
        name: String,
    },
    /// Renames a group.
    RenameGroup {
        /// The current name.
        name: String,
        /// The new name.
        new_name: String,
    },
    /// Deletes a group (its contacts stay in their other groups).
    RemoveGroup {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Clone)]
struct QueuedChange {
    id: ContactOpId,
    request: ContactRequest,
    /// Already retried once after a refused list version.
    retried: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    availability: Availability,
    note: Option<String>,
    custom: Option<(u32, String)>,
}

/// Each (category, instance, container) a publication carried, with the
/// version it went out with.
type SentVersions = Vec<((String, u32, u32), u32)>;

#[derive(Debug)]
enum Pending {
    Publish {
        attempt: u32,
        ids: Vec<PublishId>,
        /// What watchers see once it is accepted.
        shows: State,
        /// The version each (category, instance, container) went out with
        /// (OCS): once accepted, the server holds one more.
        sent: SentVersions,
    },
    Extra {
        kind: Extra,
        attempt: u32,
        ids: Vec<PublishId>,
        /// What watchers see once it is accepted.
        shows: State,
    },
    /// The standard dialect's PUBLISH with Expires: 0.
    Removed {
        ids: Vec<PublishId>,
    },
    Subscribe {
        uri: String,
        req: Box<Message>,
    },
    RoamingSelf {
        req: Box<Message>,
    },
    RoamingContacts {
        req: Box<Message>,
    },
    /// An in-dialog refresh of roaming-self (0) or roaming-contacts (1).
    RoamingRefresh {
        which: usize,
    },
    ContactChange {
        change: QueuedChange,
        op: ContactOp,
        /// The list version the change was sent against.
        sent: u32,
    },
    Other,
}

/// Publications other than the manual state (OCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Extra {
    /// machineState from idle times.
    Machine,
    /// phoneState while a call is up, deleted after.
    Phone,
    /// "Reset status": the manual userState deleted.
    Reset,
    /// calendarState "in a meeting" while the host reports one, deleted
    /// after.
    Calendar,
    /// The device category (this endpoint's capabilities, time zone and
    /// machine name), published at sign-in.
    Device,
}

#[derive(Debug)]
struct Watch {
    dialog: Option<Dialog>,
    refresh_at: Option<Instant>,
    /// `watch` commands still waiting for the server's first answer.
    waiting: Vec<WatchId>,
    /// `watch` commands that hold the watch (it ends when the last one is
    /// released and the contact list does not hold it either).
    holders: Vec<WatchId>,
    /// The contact list holds it (a contact added to the list).
    listed: bool,
    /// Resubscriptions asked for since the last notification that carried
    /// this contact's presence; bounded so a server that keeps saying
    /// "resubscribe" cannot make us loop.
    resubscribes: u8,
}

/// How many times in a row a server may move a contact's subscription
/// (rlmi `state="resubscribe"`) before the watch ends with a reason.
const MAX_RESUBSCRIBES: u8 = 3;

/// The presence layer. Feed it every endpoint event with
/// [`PresenceAgent::handle_event`]; it consumes its own.
#[derive(Debug)]
pub struct PresenceAgent {
    cfg: PresenceConfig,
    status: Option<Status>,
    etag: Option<String>,
    publish_refresh_at: Option<Instant>,
    versions: HashMap<(String, u32, u32), u32>,
    roaming_self: Option<Dialog>,
    /// When to refresh the roaming-self and roaming-contacts subscriptions.
    roaming_refresh: [Option<Instant>; 2],
    watches: HashMap<String, Watch>,
    pending: HashMap<RequestId, Pending>,
    events: VecDeque<PresenceEvent>,
    tuple: String,
    /// The machine's availability from the idle time the host reports
    /// (active, inactive after 5 minutes, away after 20).
    machine: Availability,
    /// The host reported a call in progress.
    in_call: bool,
    /// The host reported a meeting in progress.
    meeting: Option<Meeting>,
    /// The roaming-contacts subscription (OCS).
    roaming_contacts: Option<Dialog>,
    /// The contact list, once the server sent it.
    contacts: Option<ContactList>,
    /// The list must be fetched again before the next change (a version
    /// was refused or a change was missed).
    contacts_stale: bool,
    /// Changes waiting to be sent, oldest first.
    contact_queue: VecDeque<QueuedChange>,
    /// A change is on the wire (one at a time: each needs the version the
    /// previous one produced).
    contact_in_flight: bool,
    /// Why the list cannot arrive until the next sign-in (the subscription
    /// failed): new changes fail at once with it.
    contacts_refused: Option<Error>,
    /// OCS: roaming-self has answered since this sign-in, so the current
    /// publication versions are known. Until then nothing is published: a
    /// guessed version 0 only earns a 409 and a second publication.
    versions_known: bool,
    /// A "reset status" asked for before the versions were known.
    reset_waiting: bool,
    /// The manual state changed while its publication was on the wire: it
    /// goes out once that one is answered (`publish_waiting`).
    state_waiting: bool,
    /// The state before we chose to appear offline.
    before_offline: Option<Status>,
    next_contact_op: u64,
    next_publish: u64,
    next_watch: u64,
    /// Commands whose publication waits for the versions (OCS, before
    /// roaming-self answered): the manual state's (`None`) and each
    /// automatic one's; they end with the publication that goes out then.
    deferred: Vec<(Option<Extra>, PublishId)>,
}

/// Communicator's idle thresholds (OCS R2 SDK "Machine States"): inactive
/// after 5 idle minutes, away after a further 15.
pub const INACTIVE_AFTER: Duration = Duration::from_secs(5 * 60);
/// See [`INACTIVE_AFTER`].
pub const AWAY_AFTER: Duration = Duration::from_secs(20 * 60);

/// The machineState availability for `idle` time without user input.
pub fn machine_availability(idle: Duration) -> Availability {
    if idle >= AWAY_AFTER {
        Availability::AWAY
    } else if idle >= INACTIVE_AFTER {
        Availability::INACTIVE
    } else {
        Availability::ONLINE
    }
}

fn key(uri: &str) -> String {
    uri.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

impl PresenceAgent {
    /// The methods the presence layer answers.
    pub const METHODS: [Method; 2] = [Method::Notify, Method::Benotify];

    /// A new presence layer.
    pub fn new(cfg: PresenceConfig) -> PresenceAgent {
        let tuple = format!(
            "t{:08x}",
            (cfg.aor.len() as u32).wrapping_mul(2_654_435_761)
        );
        let cfg_dialect = cfg.dialect;
        PresenceAgent {
            cfg,
            status: None,
            etag: None,
            publish_refresh_at: None,
            versions: HashMap::new(),
            roaming_self: None,
            roaming_refresh: [None, None],
            watches: HashMap::new(),
            pending: HashMap::new(),
            events: VecDeque::new(),
            tuple,
            machine: Availability::ONLINE,
            in_call: false,
            meeting: None,
            roaming_contacts: None,
            contacts: None,
            contacts_stale: false,
            contact_queue: VecDeque::new(),
            contact_in_flight: false,
            contacts_refused: None,
            versions_known: cfg_dialect != Dialect::Ocs,
            reset_waiting: false,
            state_waiting: false,
            before_offline: None,
            next_contact_op: 0,
            next_publish: 0,
            next_watch: 0,
            deferred: Vec::new(),
        }
    }

    /// The EnableAppearOffline policy in effect (`Ok`: allowed).
    pub fn appear_offline_policy(&self) -> &Result<Provenance, Provenance> {
        &self.cfg.appear_offline
    }

    /// Sets the effective EnableAppearOffline policy.
    pub fn set_appear_offline_policy(&mut self, allowed: Result<Provenance, Provenance>) {
        self.cfg.appear_offline = allowed;
    }

    /// The contacts being watched.
    pub fn watched(&self) -> impl Iterator<Item = &str> {
        self.watches.keys().map(String::as_str)
    }

    // ----- commands ------------------------------------------------------

    /// Signed in (again): OCS subscribes to roaming-self, and every watch
    /// and the publication are restored.
    pub fn on_registered(&mut self, ep: &mut Endpoint, now: Instant) {
        if self.cfg.dialect == Dialect::Ocs && self.roaming_self.is_none() {
            self.subscribe_roaming_self(ep, now);
        }
        if self.cfg.dialect == Dialect::Ocs && self.roaming_contacts.is_none() {
            self.subscribe_roaming_contacts(ep, now);
        }
        let uris: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, w)| w.dialog.is_none())
            .map(|(u, _)| u.clone())
            .collect();
        for u in uris {
            self.subscribe(ep, &u, None, now);
        }
        if self.status.is_some() && self.cfg.dialect != Dialect::Ocs {
            self.etag = None;
            self.publish(ep, now, 0, Vec::new());
        }
    }

    /// True when no request of the presence layer waits for an answer.
    pub fn is_quiet(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sign-out gives up waiting: requests still unanswered are forgotten,
    /// as for a lost connection (contact-list changes and publications end
    /// failed).
    pub fn abandon_pending(&mut self) {
        self.handle_connection_lost();
    }

    /// The session ended: every presence command still without an outcome
    /// (a publication on the wire or waiting for the versions, a watch
    /// waiting for the server) fails with [`Error::Stopped`].
    pub fn settle_all(&mut self) {
        self.abandon_pending();
        self.state_waiting = false;
        let mut ids: Vec<PublishId> = self.deferred.drain(..).map(|(_, id)| id).collect();
        ids.sort();
        // Commands only: an empty list would report an automatic one.
        if !ids.is_empty() {
            self.publish_failed(ids, Error::Stopped);
        }
        let mut watches: Vec<(String, Vec<WatchId>)> = self
            .watches
            .iter_mut()
            .map(|(k, w)| (k.clone(), std::mem::take(&mut w.waiting)))
            .collect();
        watches.sort();
        for (uri, waiting) in watches {
            self.fail_watches(&uri, waiting, &Error::Stopped);
        }
    }

    // ----- internals -----------------------------------------------------

    fn submit(&mut self, ep: &mut Endpoint, req: Message, p: Pending, now: Instant) {
        match ep.send_request(req, now) {
            Ok(id) => {
                self.pending.insert(id, p);
            }
            Err(e) => match p {
                Pending::Publish { ids, .. }
                | Pending::Extra { ids, .. }
                | Pending::Removed { ids } => self.publish_failed(ids, e),
                Pending::Subscribe { uri, .. } => self.end_watch(&uri, e.to_string(), e),
                Pending::ContactChange { change, .. } => {
                    self.contact_in_flight = false;
                    self.events
                        .push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error: e,
                        });
                }
                Pending::RoamingContacts { .. } => self.contacts_unavailable(e),
                _ => {}
            },
        }
    }

    /// Feeds an endpoint event; returns true when it was the presence
    /// layer's.
    pub fn handle_event(&mut self, ep: &mut Endpoint, e: &EndpointEvent, now: Instant) -> bool {
        match e {
            EndpointEvent::Response { id, response } => {
                if response.status().unwrap_or(0) < 200 {
                    return self.pending.contains_key(id);
                }
                let Some(p) = self.pending.remove(id) else {
                    return false;
                };
                let publication = matches!(p, Pending::Publish { .. });
                self.on_final(ep, p, response, now);
                if publication {
                    self.publish_waiting(ep, now);
                }
                true
            }
            EndpointEvent::RequestFailed { id, failure } => {
                let Some(p) = self.pending.remove(id) else {
                    return false;
                };
                let publication = matches!(p, Pending::Publish { .. });
                match p {
                    Pending::Publish { ids, .. }
                    | Pending::Extra { ids, .. }
                    | Pending::Removed { ids } => self.publish_failed(
                        ids,
                        Error::transport(
                            TransportFailure::of(failure),
                            format!("publication failed: {failure:?}"),
                        ),
                    ),
                    Pending::Subscribe { uri, .. } => self.end_watch(
                        &uri,
                        format!("{failure:?}"),
                        Error::transport(
                            TransportFailure::of(failure),
                            format!("no answer to the subscription ({failure:?})"),
                        ),
                    ),
                    Pending::ContactChange { change, .. } => {
                        self.contact_in_flight = false;
                        self.events.push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error: Error::transport(TransportFailure::of(failure), format!(
                                "no answer to the contact-list change ({failure:?}); it may or may not have been made"
                            )),
                        });
                        self.pump_contacts(ep, now);
                    }
                    Pending::RoamingContacts { .. } => self.contacts_unavailable(Error::transport(
                        TransportFailure::of(failure),
                        format!("no answer to the roaming-contacts subscription ({failure:?})"),
                    )),
                    Pending::RoamingRefresh { which } => {
                        // Start that subscription afresh.
                        self.restart_roaming(ep, which, now);
                    }
                    _ => {}
                }
                if publication {
                    self.publish_waiting(ep, now);
                }
                true
            }
            EndpointEvent::IncomingRequest { id, request } => {
                if !request.method().is_some_and(|m| Self::METHODS.contains(m)) {
                    return false;
                }
                self.on_notify(ep, *id, request, now);
                true
            }
            _ => false,
        }
    }

    fn on_final(&mut self, ep: &mut Endpoint, p: Pending, resp: &Message, now: Instant) {
        match p {
            Pending::Other => {}
            Pending::Removed { ids } => self.on_removed_final(ids, resp),
            Pending::Extra {
                kind,
                attempt,
                ids,
                shows,
            } => self.on_extra_final(ep, kind, attempt, (ids, shows), resp, now),
            Pending::Publish {
                attempt,
                ids,
                shows,
                sent,
            } => self.on_publish_final(ep, attempt, (ids, shows, sent), resp, now),
            Pending::RoamingRefresh { which } => {
                self.on_roaming_refresh_final(ep, which, resp, now)
            }
            Pending::RoamingSelf { req } => self.on_roaming_self_final(ep, req, resp, now),
            Pending::RoamingContacts { req } => self.on_roaming_contacts_final(ep, req, resp, now),
            Pending::ContactChange { change, op, sent } => {
                self.on_contact_change_final(ep, change, op, sent, resp, now)
            }
            Pending::Subscribe { uri, req } => self.on_subscribe_final(ep, uri, req, resp, now),
        }
    }

    fn on_notify(&mut self, ep: &mut Endpoint, id: IncomingId, req: &Message, now: Instant) {
        let benotify = req.method() == Some(&Method::Benotify);
        let ct = req.header(HeaderName::ContentType).unwrap_or("").to_owned();
        let event = req
            .event()
            .ok()
            .flatten()
            .map(|e| e.value.to_ascii_lowercase())
            .unwrap_or_default();
        let in_roaming_self = self
            .roaming_self
            .as_ref()
            .is_some_and(|d| d.matches_incoming(req));
        let in_contacts = self
            .roaming_contacts
            .as_ref()
            .is_some_and(|d| d.matches_incoming(req))
            || self.adopt_early_contacts_notify(req);
        if in_contacts {
            if !benotify && let Ok(r) = builder::response(req, 200, None, Some(&ep.new_tag())) {
                ep.respond(id, r, now);
            }
            self.on_contacts_doc(ep, req.body(), now);
            return;
        }
        let mut watch = self
            .watches
            .iter()
            .find(|(_, w)| w.dialog.as_ref().is_some_and(|d| d.matches_incoming(req)))
            .map(|(k, _)| k.clone());
        // A NOTIFY may overtake the 200 OK to our SUBSCRIBE (RFC 6665 §4.1.2.4):
        // it belongs to the subscription whose Call-ID and tag it carries,
        // and creates the dialog.
        if watch.is_none() && !in_roaming_self {
            watch = self.adopt_early_notify(req);
        }
        let known = in_roaming_self || watch.is_some();
        if !benotify {
            let code = if known { 200 } else { 481 };
            if let Ok(r) = builder::response(req, code, None, Some(&ep.new_tag())) {
                ep.respond(id, r, now);
            }
        }
        if !known {
            return;
        }
        if in_roaming_self || event.starts_with("vnd-microsoft-roaming-self") {
            self.learn_versions(req.body());
            return;
        }
        self.deliver(ep, req.body(), &ct, now);
        let terminated = req
            .subscription_state()
            .ok()
            .flatten()
            .is_some_and(|s| s.value.eq_ignore_ascii_case("terminated"));
        // Only if the watch still lives on this dialog: a server that moves
        // a contact ("resubscribe") may end the old dialog at the same time.
        let still_here = watch.as_ref().is_some_and(|u| {
            self.watches
                .get(u)
                .and_then(|w| w.dialog.as_ref())
                .is_some_and(|d| d.matches_incoming(req))
        });
        if terminated
            && still_here
            && let Some(uri) = watch
        {
            let reason = "subscription terminated by the server";
            self.end_watch(&uri, reason.into(), Error::ended_by_server(reason));
        }
    }

    /// Refreshes publications and subscriptions that are due.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        self.refresh_roaming(ep, now);
        if self.publish_refresh_at.is_some_and(|t| t <= now) {
            self.publish_refresh_at = None;
            self.publish(ep, now, 0, Vec::new());
        }
        let due: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, w)| w.refresh_at.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for uri in due {
            let epid = ep.epid_param();
            let contact = ep.contact();
            let expires = self.cfg.expires;
            let Some(w) = self.watches.get_mut(&uri) else {
                continue;
            };
            w.refresh_at = None;
            let Some(d) = w.dialog.as_mut() else { continue };
            let mut req = d.request(Method::Subscribe, epid.as_deref());
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Expires, expires.to_string());
            if let Some(c) = contact {
                req.push_header(HeaderName::Contact, c);
            }
            let copy = Box::new(req.clone());
            self.submit(ep, req, Pending::Subscribe { uri, req: copy }, now);
        }
    }

    /// When [`PresenceAgent::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.watches
            .values()
            .filter_map(|w| w.refresh_at)
            .chain(self.publish_refresh_at)
            .chain(self.roaming_refresh.iter().flatten().copied())
            .min()
    }

    /// The connection dropped: dialogs are gone; [`PresenceAgent::on_registered`]
    /// restores everything after the next sign-in.
    pub fn handle_connection_lost(&mut self) {
        // The next sign-in learns the versions again before publishing.
        self.versions_known = self.cfg.dialect != Dialect::Ocs;
        self.roaming_self = None;
        self.roaming_contacts = None;
        self.roaming_refresh = [None, None];
        // A change on the wire may or may not have been made; the queued
        // ones go out after the next sign-in, against the list fetched then.
        let mut publications = Vec::new();
        for p in self.pending.values() {
            match p {
                Pending::ContactChange { change, .. } => {
                    self.events.push_back(PresenceEvent::ContactListChangeFailed {
                        id: change.id,
                        error: Error::transport(TransportFailure::ConnectionLost,
                            "the connection dropped before the server answered the contact-list change; it may or may not have been made",
                        ),
                    });
                }
                Pending::Publish { ids, .. }
                | Pending::Extra { ids, .. }
                | Pending::Removed { ids } => publications.extend_from_slice(ids),
                _ => {}
            }
        }
        // The state is published again after the next sign-in (without an
        // id); the command itself ends here, saying so.
        publications.sort();
        if !publications.is_empty() {
            self.publish_failed(
                publications,
                Error::transport(TransportFailure::ConnectionLost,
                    "the connection dropped before the server answered the publication; the state goes out again after the next sign-in",
                ),
            );
        }
        self.contact_in_flight = false;
        self.contacts = None;
        self.pending.clear();
        self.publish_refresh_at = None;
        for w in self.watches.values_mut() {
            w.dialog = None;
            w.refresh_at = None;
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PresenceEvent> {
        let e = crate::queue::take_next(&mut self.events);
        if e.is_none() {
            crate::queue::release_if_empty(&mut self.pending);
        }
        e
    }
}
