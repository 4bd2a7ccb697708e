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

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::auth::epid::sip_instance_uuid;
use crate::dialog::Dialog;
use crate::discovery::Dialect;
use crate::endpoint::{Endpoint, EndpointEvent, IncomingId, RequestId};
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
        /// The state now published.
        state: State,
    },
    /// Publishing failed for good.
    PublishFailed(Error),
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

#[derive(Debug)]
enum Pending {
    Publish {
        attempt: u32,
    },
    Extra {
        kind: Extra,
        attempt: u32,
    },
    /// The standard dialect's PUBLISH with Expires: 0.
    Removed,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The state before we chose to appear offline.
    before_offline: Option<Status>,
    next_contact_op: u64,
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
            before_offline: None,
            next_contact_op: 0,
        }
    }

    /// Sets the effective EnableAppearOffline policy.
    pub fn set_appear_offline_policy(&mut self, allowed: Result<Provenance, Provenance>) {
        self.cfg.appear_offline = allowed;
    }

    /// Applies a changed EnableAppearOffline policy to the running client:
    /// when it no longer allows appearing offline while we do, the state
    /// from before goes out again (or, without one, the automatic state).
    pub fn apply_appear_offline_policy(
        &mut self,
        ep: &mut Endpoint,
        allowed: Result<Provenance, Provenance>,
        now: Instant,
    ) {
        self.cfg.appear_offline = allowed;
        let offline = self
            .status
            .as_ref()
            .is_some_and(|s| s.availability.state() == State::Offline);
        if offline && self.cfg.appear_offline.is_err() {
            match self.before_offline.take() {
                Some(st) => {
                    self.status = Some(st);
                    self.publish(ep, now, 0);
                }
                None => self.reset_status(ep, now),
            }
        }
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
            self.publish(ep, now, 0);
        }
    }

    /// The contact list, once the server sent it (OCS).
    pub fn contact_list(&self) -> Option<&ContactList> {
        self.contacts.as_ref()
    }

    /// Asks for a change to the server-stored contact list (OCS only). It
    /// is sent when the list is known and earlier changes are done, and
    /// ends in exactly one [`PresenceEvent::ContactListChanged`] or
    /// [`PresenceEvent::ContactListChangeFailed`] with the returned id.
    pub fn change_contacts(
        &mut self,
        ep: &mut Endpoint,
        request: ContactRequest,
        now: Instant,
    ) -> Result<ContactOpId, Error> {
        if self.cfg.dialect != Dialect::Ocs {
            return Err(Error::ApiMisuse(
                "the standard dialect has no server-stored contact list".into(),
            ));
        }
        let empty = |s: &str| s.trim().is_empty();
        let bad = match &request {
            ContactRequest::Add { uri, .. }
            | ContactRequest::Remove { uri }
            | ContactRequest::Move { uri, .. } => empty(uri),
            ContactRequest::AddGroup { name } | ContactRequest::RemoveGroup { name } => empty(name),
            ContactRequest::RenameGroup { name, new_name } => empty(name) || empty(new_name),
        };
        if bad {
            return Err(Error::ApiMisuse(format!(
                "empty URI or group name in {request:?}"
            )));
        }
        if let Some(e) = &self.contacts_refused {
            return Err(e.clone());
        }
        self.next_contact_op += 1;
        let id = ContactOpId(self.next_contact_op);
        self.contact_queue.push_back(QueuedChange {
            id,
            request,
            retried: false,
        });
        self.pump_contacts(ep, now);
        Ok(id)
    }

    fn subscribe_roaming_self(&mut self, ep: &mut Endpoint, now: Instant) {
        let mut req = ep.new_request(Method::Subscribe, &self.cfg.aor);
        for (n, v) in [
            ("Event", "vnd-microsoft-roaming-self"),
            ("Accept", "application/vnd-microsoft-roaming-self+xml"),
            ("Supported", "com.microsoft.autoextend"),
            ("Supported", "ms-benotify"),
            ("Proxy-Require", "ms-benotify"),
            ("Supported", "ms-piggyback-first-notify"),
        ] {
            req.push_header(n, v);
        }
        req.set_body(
            "application/vnd-microsoft-roaming-self+xml",
            ROAMING_SELF_BODY.as_bytes().to_vec(),
        );
        let copy = Box::new(req.clone());
        self.submit(ep, req, Pending::RoamingSelf { req: copy }, now);
    }

    /// Starts roaming-self (0) or roaming-contacts (1) afresh after its
    /// refresh failed; the other subscriptions are left alone.
    fn restart_roaming(&mut self, ep: &mut Endpoint, which: usize, now: Instant) {
        self.roaming_refresh[which] = None;
        if which == 0 {
            self.roaming_self = None;
            self.subscribe_roaming_self(ep, now);
        } else {
            self.roaming_contacts = None;
            self.subscribe_roaming_contacts(ep, now);
        }
    }

    /// Reads the contact list again in a new subscription, ending the old
    /// one (Expires: 0) so the server does not keep both alive.
    fn reread_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        self.contacts_stale = true;
        if let Some(mut d) = self.roaming_contacts.take() {
            let epid = ep.epid_param();
            let mut req = d.request(Method::Subscribe, epid.as_deref());
            req.push_header(HeaderName::Event, "vnd-microsoft-roaming-contacts");
            req.push_header(HeaderName::Expires, "0");
            self.submit(ep, req, Pending::Other, now);
        }
        self.roaming_refresh[1] = None;
        self.subscribe_roaming_contacts(ep, now);
    }

    fn subscribe_roaming_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        self.contacts_refused = None;
        let mut req = ep.new_request(Method::Subscribe, &self.cfg.aor);
        for (n, v) in [
            ("Event", "vnd-microsoft-roaming-contacts"),
            ("Accept", ROAMING_CONTACTS_CT),
            ("Supported", "com.microsoft.autoextend"),
            ("Supported", "ms-benotify"),
            ("Proxy-Require", "ms-benotify"),
            ("Supported", "ms-piggyback-first-notify"),
        ] {
            req.push_header(n, v);
        }
        let copy = Box::new(req.clone());
        self.submit(ep, req, Pending::RoamingContacts { req: copy }, now);
    }

    /// Turns a request into the SOAP operation against the current list.
    fn resolve(list: &ContactList, r: &ContactRequest) -> Result<ContactOp, Error> {
        let group = |name: &str| {
            list.group_named(name).map(|g| g.id).ok_or_else(|| {
                Error::ApiMisuse(format!("no group named {name:?} in the contact list"))
            })
        };
        let not_default = |name: &str| {
            if name == DEFAULT_GROUP {
                Err(Error::ApiMisuse(
                    "the default group \"~\" cannot be renamed or deleted".into(),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match r {
            ContactRequest::Add { uri, group: g } => {
                let gid = match g {
                    Some(name) => group(name)?,
                    None => list.default_group().map(|g| g.id).ok_or_else(|| {
                        Error::ApiMisuse("the contact list has no group to add to".into())
                    })?,
                };
                let (name, mut groups) = match list.contact(uri) {
                    Some(c) => (c.name.as_deref().map(str::to_owned), c.groups.clone()),
                    None => (None, Vec::new()),
                };
                if !groups.contains(&gid) {
                    groups.push(gid);
                }
                ContactOp::SetContact {
                    uri: with_sip(uri).into(),
                    name,
                    groups,
                    subscribed: true,
                }
            }
            ContactRequest::Remove { uri } => {
                let c = list
                    .contact(uri)
                    .ok_or_else(|| Error::ApiMisuse(format!("{uri} is not in the contact list")))?;
                ContactOp::DeleteContact {
                    uri: c.uri.to_string(),
                }
            }
            ContactRequest::Move { uri, to_group } => {
                let c = list
                    .contact(uri)
                    .ok_or_else(|| Error::ApiMisuse(format!("{uri} is not in the contact list")))?;
                ContactOp::SetContact {
                    uri: c.uri.to_string(),
                    name: c.name.as_deref().map(str::to_owned),
                    groups: vec![group(to_group)?],
                    subscribed: c.subscribed,
                }
            }
            ContactRequest::AddGroup { name } => {
                if list.group_named(name).is_some() {
                    return Err(Error::ApiMisuse(format!(
                        "a group named {name:?} exists already"
                    )));
                }
                ContactOp::AddGroup { name: name.clone() }
            }
            ContactRequest::RenameGroup { name, new_name } => {
                not_default(name)?;
                ContactOp::ModifyGroup {
                    id: group(name)?,
                    name: new_name.clone(),
                }
            }
            ContactRequest::RemoveGroup { name } => {
                not_default(name)?;
                ContactOp::DeleteGroup { id: group(name)? }
            }
        })
    }

    /// Sends the next queued change when the list is known and nothing is
    /// on the wire.
    fn pump_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        while !self.contact_in_flight && !self.contacts_stale {
            let Some(list) = &self.contacts else { return };
            let Some(change) = self.contact_queue.pop_front() else {
                return;
            };
            let op = match Self::resolve(list, &change.request) {
                Ok(op) => op,
                Err(error) => {
                    self.events
                        .push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error,
                        });
                    continue;
                }
            };
            let delta = list.delta_num.unwrap_or(0);
            let mut req = ep.new_request(Method::Service, &self.cfg.aor);
            req.set_body(SOAP_CT, op.soap(delta).into_bytes());
            self.contact_in_flight = true;
            self.submit(
                ep,
                req,
                Pending::ContactChange {
                    change,
                    op,
                    sent: delta,
                },
                now,
            );
        }
    }

    /// A roaming-contacts document arrived (200 OK or NOTIFY).
    fn on_contacts_doc(&mut self, ep: &mut Endpoint, body: &[u8], now: Instant) {
        if body.is_empty() {
            return;
        }
        match parse_roaming_contacts(body) {
            Ok(RoamingContacts::Full(l)) => {
                self.contacts = Some(l);
                self.contacts_stale = false;
            }
            Ok(RoamingContacts::Delta(d)) => {
                let Some(list) = &mut self.contacts else {
                    return;
                };
                if list.delta_num.is_some_and(|n| d.delta_num <= n) {
                    // Our own change, already applied when it was accepted.
                    return;
                }
                if !list.apply(&d) && !self.contacts_stale {
                    // A change was missed: fetch the whole list again.
                    self.reread_contacts(ep, now);
                }
            }
            Err(e) if self.contacts.is_none() => {
                // The list itself is unreadable: nothing can be resolved.
                self.contacts_unavailable(Error::PeerMisbehaved(format!(
                    "the server's contact list does not parse: {e}"
                )));
                return;
            }
            Err(_) => return,
        }
        if let Some(l) = &self.contacts {
            self.events
                .push_back(PresenceEvent::ContactList(Box::new(l.clone())));
        }
        self.pump_contacts(ep, now);
    }

    /// Publishes a standard state with an optional note. Appear offline
    /// ([`State::Offline`]) needs the EnableAppearOffline policy.
    pub fn set_status(
        &mut self,
        ep: &mut Endpoint,
        state: State,
        note: Option<&str>,
        now: Instant,
    ) -> Result<(), Error> {
        if state == State::Offline
            && let Err(p) = &self.cfg.appear_offline
        {
            return Err(Error::PolicyDenied {
                policy: "EnableAppearOffline".into(),
                provenance: p.clone(),
            });
        }
        let previous = self.status.take();
        if state == State::Offline {
            // Kept so a policy that forbids appearing offline later can
            // bring it back.
            if previous
                .as_ref()
                .is_some_and(|p| p.availability.state() != State::Offline)
            {
                self.before_offline = previous;
            }
        } else {
            self.before_offline = None;
        }
        self.status = Some(Status {
            availability: state.availability(),
            note: note.map(str::to_owned),
            custom: None,
        });
        self.publish(ep, now, 0);
        Ok(())
    }

    /// Publishes a custom state (online/busy/do-not-disturb availability
    /// with our own text for `lcid`).
    pub fn set_custom_state(
        &mut self,
        ep: &mut Endpoint,
        availability: Availability,
        lcid: u32,
        text: &str,
        note: Option<&str>,
        now: Instant,
    ) {
        self.status = Some(Status {
            availability,
            note: note.map(str::to_owned),
            custom: Some((lcid, text.to_owned())),
        });
        self.publish(ep, now, 0);
    }

    /// The host reports how long the user has been idle (no keyboard or
    /// mouse input). Crossing Communicator's thresholds publishes the
    /// machine state: inactive after 5 minutes, away after 20, active again
    /// on input. OCS publishes machineState (containers 2 and 3) and the
    /// server aggregates it with the manual state; the standard dialect has
    /// no machine state, so an "online" user is published as inactive or
    /// away instead. Returns the machine availability now in effect.
    pub fn set_idle(&mut self, ep: &mut Endpoint, idle: Duration, now: Instant) -> Availability {
        let a = machine_availability(idle);
        if a != self.machine {
            let before = self.pidf_doc();
            self.machine = a;
            self.automatic_state_changed(ep, Extra::Machine, before, now);
        }
        a
    }

    /// Something the host reports (idle time, a call, a meeting) changed:
    /// OCS publishes its own category; the standard dialect re-publishes
    /// only when the PIDF document it shows is different from `before`.
    fn automatic_state_changed(
        &mut self,
        ep: &mut Endpoint,
        kind: Extra,
        before: Option<String>,
        now: Instant,
    ) {
        if self.cfg.dialect == Dialect::Ocs {
            self.publish_extra(ep, kind, now, 0);
        } else if self.pidf_doc() != before {
            self.publish(ep, now, 0);
        }
    }

    /// The host reports that a call started or ended ("picking up the
    /// phone changes the status when a PBX is coupled"). OCS publishes a
    /// phoneState (on-the-phone) while the call is up and deletes it after;
    /// the standard dialect shows an online or idle user as busy meanwhile.
    pub fn set_in_call(&mut self, ep: &mut Endpoint, in_call: bool, now: Instant) {
        if in_call == self.in_call {
            return;
        }
        let before = self.pidf_doc();
        self.in_call = in_call;
        self.automatic_state_changed(ep, Extra::Phone, before, now);
    }

    /// The host reports a meeting from its calendar (`None`: the meeting
    /// is over). OCS publishes calendarState "in-a-meeting" (busy, in
    /// containers 2 and 3) and deletes it afterwards; the standard dialect
    /// publishes busy with the RPID activity `meeting` while the manual
    /// state is online.
    pub fn set_in_meeting(&mut self, ep: &mut Endpoint, meeting: Option<Meeting>, now: Instant) {
        if meeting == self.meeting {
            return;
        }
        let before = self.pidf_doc();
        self.meeting = meeting;
        self.automatic_state_changed(ep, Extra::Calendar, before, now);
    }

    /// "Reset status": drops the manual state so the automatic one (from
    /// idle times, calls and the calendar) shows again. OCS deletes the
    /// userState publications (expires="0"); the standard dialect removes
    /// its PUBLISH (Expires: 0). Ends in [`PresenceEvent::Published`] with
    /// the state now shown, or [`PresenceEvent::PublishFailed`].
    pub fn reset_status(&mut self, ep: &mut Endpoint, now: Instant) {
        self.status = None;
        if self.cfg.dialect == Dialect::Ocs {
            self.publish_extra(ep, Extra::Reset, now, 0);
            return;
        }
        self.publish_refresh_at = None;
        let Some(tag) = self.etag.take() else {
            // Nothing is published: already reset.
            self.events.push_back(PresenceEvent::Published {
                state: State::Offline,
            });
            return;
        };
        let mut req = ep.new_request(Method::Publish, &self.cfg.aor);
        req.push_header(HeaderName::Event, "presence");
        req.push_header(HeaderName::Expires, "0");
        req.push_header(HeaderName::SipIfMatch, tag);
        self.submit(ep, req, Pending::Removed, now);
    }

    /// Starts watching `uri`.
    pub fn watch(&mut self, ep: &mut Endpoint, uri: &str, now: Instant) {
        let k = key(uri);
        if self.watches.contains_key(&k) {
            return;
        }
        self.watches.insert(
            k.clone(),
            Watch {
                dialog: None,
                refresh_at: None,
                resubscribes: 0,
            },
        );
        self.subscribe(ep, &k, None, now);
    }

    /// Stops watching `uri` (SUBSCRIBE with Expires: 0).
    pub fn unwatch(&mut self, ep: &mut Endpoint, uri: &str, now: Instant) {
        if let Some(Watch {
            dialog: Some(mut d),
            ..
        }) = self.watches.remove(&key(uri))
        {
            let mut req = d.request(Method::Subscribe, ep.epid_param().as_deref());
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Expires, "0");
            if let Some(c) = ep.contact() {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::Other, now);
        }
    }

    /// Sign-out: every watch and our own roaming subscriptions end
    /// (SUBSCRIBE with Expires: 0, once per subscription dialog), and
    /// nothing is refreshed any more. [`PresenceAgent::is_quiet`] says when
    /// the server has answered everything.
    pub fn end_all(&mut self, ep: &mut Endpoint, now: Instant) {
        let mut ended = std::collections::HashSet::new();
        let watches: Vec<Watch> = self.watches.drain().map(|(_, w)| w).collect();
        let roaming = [
            (self.roaming_self.take(), "vnd-microsoft-roaming-self"),
            (
                self.roaming_contacts.take(),
                "vnd-microsoft-roaming-contacts",
            ),
        ];
        let dialogs = watches
            .into_iter()
            .filter_map(|w| w.dialog.map(|d| (d, "presence")))
            .chain(roaming.into_iter().filter_map(|(d, e)| d.map(|d| (d, e))));
        for (mut d, event) in dialogs {
            let mut req = d.request(Method::Subscribe, ep.epid_param().as_deref());
            // A batched subscription carries many contacts in one dialog.
            if !ended.insert(req.call_id().map(str::to_owned).unwrap_or_default()) {
                continue;
            }
            req.push_header(HeaderName::Event, event);
            req.push_header(HeaderName::Expires, "0");
            if let Some(c) = ep.contact() {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::Other, now);
        }
        self.roaming_refresh = [None, None];
        self.publish_refresh_at = None;
    }

    /// True when no request of the presence layer waits for an answer.
    pub fn is_quiet(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sign-out gives up waiting: requests still unanswered are forgotten
    /// (their outcome events follow, as for a lost connection).
    pub fn abandon_pending(&mut self) {
        self.handle_connection_lost();
    }

    // ----- internals -----------------------------------------------------

    fn submit(&mut self, ep: &mut Endpoint, req: Message, p: Pending, now: Instant) {
        match ep.send_request(req, now) {
            Ok(id) => {
                self.pending.insert(id, p);
            }
            Err(e) => match p {
                Pending::Publish { .. } | Pending::Extra { .. } | Pending::Removed => {
                    self.events.push_back(PresenceEvent::PublishFailed(e))
                }
                Pending::Subscribe { uri, .. } => {
                    self.events.push_back(PresenceEvent::WatchEnded {
                        uri,
                        reason: e.to_string(),
                    })
                }
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

    /// The contact list cannot arrive (the subscription failed or was
    /// refused): every waiting change fails with `error`, and the list is
    /// asked for again at the next sign-in.
    fn contacts_unavailable(&mut self, error: Error) {
        self.contacts_refused = Some(error.clone());
        self.contacts_stale = false;
        self.contact_in_flight = false;
        for c in std::mem::take(&mut self.contact_queue) {
            self.events
                .push_back(PresenceEvent::ContactListChangeFailed {
                    id: c.id,
                    error: error.clone(),
                });
        }
    }

    /// Subscribes to `uri`'s presence. `target` is where an OCS batched
    /// category subscription goes: our own URI normally, a pool or the
    /// contact itself when the server asked us to resubscribe there.
    fn subscribe(&mut self, ep: &mut Endpoint, uri: &str, target: Option<&str>, now: Instant) {
        let req = if self.cfg.dialect == Dialect::Ocs {
            let target = target.unwrap_or(&self.cfg.aor).to_owned();
            let mut req = ep.new_request(Method::Subscribe, &target);
            for (n, v) in [
                ("Event", "presence"),
                (
                    "Accept",
                    "application/msrtc-event-categories+xml, application/rlmi+xml, multipart/related",
                ),
                ("Supported", "ms-benotify"),
                ("Proxy-Require", "ms-benotify"),
                ("Supported", "ms-piggyback-first-notify"),
                ("Require", "adhoclist, categoryList"),
                ("Supported", "eventlist"),
            ] {
                req.push_header(n, v);
            }
            let body = batch_subscribe_body(
                &self.cfg.aor,
                &[BatchResource {
                    uri,
                    context: false,
                }],
                &["calendarData", "contactCard", "note", "state"],
            );
            req.set_body("application/msrtc-adrl-categorylist+xml", body.into_bytes());
            req
        } else {
            let mut req = ep.new_request(Method::Subscribe, uri);
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Accept, "application/pidf+xml");
            req.push_header(HeaderName::Expires, self.cfg.expires.to_string());
            req
        };
        let copy = Box::new(req.clone());
        self.submit(
            ep,
            req,
            Pending::Subscribe {
                uri: uri.to_owned(),
                req: copy,
            },
            now,
        );
    }

    /// What goes out once roaming-self has told us the versions after a
    /// sign-in, each publication once.
    fn publish_after_versions(&mut self, ep: &mut Endpoint, now: Instant) {
        // Like OC, this endpoint's device and machine state go out at
        // sign-in (they expire with the endpoint).
        self.publish_extra(ep, Extra::Device, now, 0);
        self.publish_extra(ep, Extra::Machine, now, 0);
        // Endpoint publications lapse with the old endpoint: a call or
        // meeting still going on is published again.
        if self.in_call {
            self.publish_extra(ep, Extra::Phone, now, 0);
        }
        if self.meeting.is_some() {
            self.publish_extra(ep, Extra::Calendar, now, 0);
        }
        // The user's own state, set before or during sign-in.
        let reset = std::mem::take(&mut self.reset_waiting);
        if self.status.is_some() {
            self.publish(ep, now, 0);
        } else if reset {
            self.publish_extra(ep, Extra::Reset, now, 0);
        }
    }

    fn publish(&mut self, ep: &mut Endpoint, now: Instant, attempt: u32) {
        if !self.versions_known {
            // Goes out once roaming-self has given the versions
            // (publish_after_versions).
            return;
        }
        let Some(st) = self.status.clone() else {
            return;
        };
        let req = if self.cfg.dialect == Dialect::Ocs {
            let mut body = PublishBody::new(&self.cfg.aor);
            let custom: Vec<CustomActivity<'_>> = st
                .custom
                .iter()
                .map(|(lcid, text)| CustomActivity { lcid: *lcid, text })
                .collect();
            for container in [2, 3] {
                let v = self.version("state", USER_STATE_INSTANCE, container);
                body.user_state(container, v, st.availability, None, &custom);
            }
            if let Some(note) = &st.note {
                for container in [200, 300, 400] {
                    let v = self.version("note", 0, container);
                    body.note(0, container, v, NoteKind::Personal, note);
                }
            }
            let mut req = ep.new_request(Method::Service, &self.cfg.aor);
            req.set_body(
                "application/msrtc-category-publish+xml",
                body.finish().into_bytes(),
            );
            req
        } else {
            // No machine state in PIDF: an idle "online" user shows as
            // inactive or away, as the OCS server's aggregation would.
            let doc = self.pidf_doc().unwrap_or_default();
            let mut req = ep.new_request(Method::Publish, &self.cfg.aor);
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Expires, self.cfg.expires.to_string());
            if let Some(tag) = &self.etag {
                req.push_header(HeaderName::SipIfMatch, tag.clone());
            }
            req.set_body("application/pidf+xml", doc.into_bytes());
            req
        };
        self.submit(ep, req, Pending::Publish { attempt }, now);
    }

    /// What the standard dialect publishes: the manual state, except that
    /// an idle "online" user shows the machine's inactive or away.
    fn pidf_state(&self) -> Option<State> {
        let s = self.status.as_ref()?.availability.state();
        Some(if s != State::Online {
            s
        } else if self.in_call || self.meeting.is_some() {
            State::Busy
        } else if self.machine != Availability::ONLINE {
            self.machine.state()
        } else {
            s
        })
    }

    /// The PIDF document the standard dialect publishes now. Idle and call
    /// changes compare documents, not states: inactive and online print the
    /// same PIDF, and publishing it again would be wasted.
    fn pidf_doc(&self) -> Option<String> {
        let state = self.pidf_state()?;
        let note = self.status.as_ref()?.note.as_deref();
        let mut doc = PidfPublish::for_state(&self.cfg.aor, &self.tuple, state, note);
        // A meeting that made an online user busy says so.
        let manual_online = self
            .status
            .as_ref()
            .is_some_and(|s| s.availability.state() == State::Online);
        if manual_online && !self.in_call && self.meeting.is_some() {
            doc.activities = &["busy", "meeting"];
        }
        Some(build_pidf(&doc))
    }

    /// The instance seed E from our epid (c.3), or none when the epid has
    /// no hex head to derive it from.
    fn epid_e(ep: &Endpoint) -> Option<u32> {
        let p = ep.epid_param()?;
        epid_instance(p.strip_prefix("epid=")?)
    }

    /// The (category, instance, container) of each publication of `kind`,
    /// in body order (for 409 fault indexes and version bookkeeping).
    fn extra_keys(kind: Extra, e: u32) -> Vec<(String, u32, u32)> {
        let instance = match kind {
            Extra::Machine => machine_state_instance(e),
            Extra::Phone => phone_voip_instance(e),
            Extra::Reset => USER_STATE_INSTANCE,
            Extra::Calendar => calendar_state_instance(e),
            Extra::Device => return vec![("device".to_owned(), device_instance(e), 2)],
        };
        [2, 3]
            .into_iter()
            .map(|c| ("state".to_owned(), instance, c))
            .collect()
    }

    /// Publishes (or deletes) one of the [`Extra`] publications in
    /// containers 2 and 3 (OCS).
    fn publish_extra(&mut self, ep: &mut Endpoint, kind: Extra, now: Instant, attempt: u32) {
        if !self.versions_known {
            // Machine, phone and calendar state are kept in fields and go
            // out with the versions (publish_after_versions); a reset is
            // remembered.
            if kind == Extra::Reset {
                self.reset_waiting = true;
            }
            return;
        }
        let Some(e) = Self::epid_e(ep) else {
            self.events
                .push_back(PresenceEvent::PublishFailed(Error::Transport(
                    "the epid has no hex head to derive publication instances from".into(),
                )));
            return;
        };
        let mut body = PublishBody::new(&self.cfg.aor);
        for (cat, instance, container) in Self::extra_keys(kind, e) {
            let v = self.version(&cat, instance, container);
            match kind {
                Extra::Machine => {
                    body.machine_state(instance, container, v, self.machine);
                }
                // SIPE's values for a call: 6500, between 6500 and 8999.
                Extra::Phone if self.in_call => {
                    body.phone_state(
                        instance,
                        container,
                        v,
                        Availability::BUSY,
                        "on-the-phone",
                        6500,
                        8999,
                    );
                }
                Extra::Phone => {
                    body.clear(&cat, instance, container, v, ExpireType::Endpoint);
                }
                Extra::Reset => {
                    body.clear(&cat, instance, container, v, ExpireType::Static);
                }
                Extra::Calendar => match &self.meeting {
                    Some(m) => {
                        body.calendar_state(
                            instance,
                            container,
                            v,
                            &self.cfg.aor,
                            &m.start,
                            Some(Availability::BUSY),
                            "in-a-meeting",
                            &m.subject,
                            &m.location,
                        );
                    }
                    None => {
                        body.clear(&cat, instance, container, v, ExpireType::Endpoint);
                    }
                },
                Extra::Device => {
                    let endpoint_id = ep
                        .epid_param()
                        .and_then(|p| p.strip_prefix("epid=").map(sip_instance_uuid))
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    body.device(
                        instance,
                        v,
                        &DeviceInfo {
                            endpoint_id: &endpoint_id,
                            uri: &self.cfg.aor,
                            timezone: &self.cfg.timezone,
                            machine_name: &self.cfg.machine_name,
                        },
                    );
                }
            }
        }
        let mut req = ep.new_request(Method::Service, &self.cfg.aor);
        req.set_body(
            "application/msrtc-category-publish+xml",
            body.finish().into_bytes(),
        );
        self.submit(ep, req, Pending::Extra { kind, attempt }, now);
    }

    fn version(&self, cat: &str, instance: u32, container: u32) -> u32 {
        self.versions
            .get(&(cat.to_owned(), instance, container))
            .copied()
            .unwrap_or(0)
    }

    fn learn_versions(&mut self, body: &[u8]) {
        if let Ok(rs) = parse_roaming_self(body) {
            for p in rs.publications {
                self.versions
                    .insert((p.name.to_string(), p.instance, p.container), p.version);
            }
        }
    }

    fn deliver(&mut self, ep: &mut Endpoint, body: &[u8], content_type: &str, now: Instant) {
        if body.is_empty() {
            return;
        }
        if content_type.to_ascii_lowercase().contains("pidf") {
            if let Ok(p) = parse_pidf(body) {
                let uri = p.uri.to_string();
                self.events.push_back(PresenceEvent::Changed {
                    uri: key(&uri),
                    presence: Box::new(p),
                });
            }
            return;
        }
        if let Ok(updates) = parse_notify_body(body, content_type, &ParseOptions::default()) {
            for u in updates {
                let uri = key(&u.uri);
                match u.state {
                    Some(InstanceState::Resubscribe) => {
                        self.resubscribe(ep, &uri, u.pool_fqdn.as_deref(), now);
                        continue;
                    }
                    Some(InstanceState::Terminated) => {
                        if self.watches.remove(&uri).is_some() {
                            self.events.push_back(PresenceEvent::WatchEnded {
                                uri,
                                reason: format!(
                                    "subscription terminated by the server{}",
                                    u.reason
                                        .as_deref()
                                        .map(|r| format!(" ({r})"))
                                        .unwrap_or_default()
                                ),
                            });
                        }
                        continue;
                    }
                    _ => {}
                }
                if let Some(p) = u.presence {
                    if let Some(w) = self.watches.get_mut(&uri) {
                        w.resubscribes = 0;
                    }
                    self.events.push_back(PresenceEvent::Changed {
                        uri,
                        presence: Box::new(p),
                    });
                }
            }
        }
    }

    /// The server moved a contact's subscription (MS-PRES rlmi
    /// `state="resubscribe"`): subscribe again, to the pool it names
    /// (Request-URI and To = the pool) or, without one, to the contact
    /// itself. Each watch keeps its own subscription, so the batch holds
    /// that one contact.
    fn resubscribe(&mut self, ep: &mut Endpoint, uri: &str, pool: Option<&str>, now: Instant) {
        let Some(w) = self.watches.get_mut(uri) else {
            return;
        };
        if w.resubscribes >= MAX_RESUBSCRIBES {
            self.watches.remove(uri);
            self.events.push_back(PresenceEvent::WatchEnded {
                uri: uri.to_owned(),
                reason: format!(
                    "the server asked to resubscribe {} times in a row without a notification",
                    MAX_RESUBSCRIBES + 1
                ),
            });
            return;
        }
        w.resubscribes += 1;
        w.dialog = None;
        w.refresh_at = None;
        let target = match pool {
            Some(p) if !p.trim().is_empty() => {
                let p = p.trim();
                if p.starts_with("sip:") || p.starts_with("sips:") {
                    p.to_owned()
                } else {
                    format!("sip:{p}")
                }
            }
            _ => uri.to_owned(),
        };
        self.subscribe(ep, uri, Some(&target), now);
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
                self.on_final(ep, p, response, now);
                true
            }
            EndpointEvent::RequestFailed { id, failure } => {
                let Some(p) = self.pending.remove(id) else {
                    return false;
                };
                match p {
                    Pending::Publish { .. } | Pending::Extra { .. } | Pending::Removed => self
                        .events
                        .push_back(PresenceEvent::PublishFailed(Error::Transport(format!(
                            "publication failed: {failure:?}"
                        )))),
                    Pending::Subscribe { uri, .. } => {
                        self.watches.remove(&uri);
                        self.events.push_back(PresenceEvent::WatchEnded {
                            uri,
                            reason: format!("{failure:?}"),
                        });
                    }
                    Pending::ContactChange { change, .. } => {
                        self.contact_in_flight = false;
                        self.events.push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error: Error::Transport(format!(
                                "no answer to the contact-list change ({failure:?}); it may or may not have been made"
                            )),
                        });
                        self.pump_contacts(ep, now);
                    }
                    Pending::RoamingContacts { .. } => self.contacts_unavailable(Error::Transport(
                        format!("no answer to the roaming-contacts subscription ({failure:?})"),
                    )),
                    Pending::RoamingRefresh { which } => {
                        // Start that subscription afresh.
                        self.restart_roaming(ep, which, now);
                    }
                    _ => {}
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
        let code = resp.status().unwrap_or(0);
        match p {
            Pending::Other => {}
            Pending::Removed => {
                // 412: the server had already forgotten it; same outcome.
                if (200..300).contains(&code) || code == 412 {
                    self.events.push_back(PresenceEvent::Published {
                        state: State::Offline,
                    });
                } else {
                    self.events
                        .push_back(PresenceEvent::PublishFailed(Error::rejected(resp)));
                }
            }
            Pending::Extra { kind, attempt } => {
                let Some(e) = Self::epid_e(ep) else {
                    return;
                };
                let keys = Self::extra_keys(kind, e);
                if (200..300).contains(&code) {
                    self.learn_versions(resp.body());
                    for k in keys {
                        *self.versions.entry(k).or_insert(0) += 1;
                    }
                    if kind == Extra::Reset {
                        // What others see now: the machine state.
                        self.events.push_back(PresenceEvent::Published {
                            state: self.machine.state(),
                        });
                    }
                } else if code == 409 && attempt < 3 {
                    if let Ok(f) = parse_fault(resp.body()) {
                        for op in f.operations {
                            if let (Some(k), Some(v)) = (
                                keys.get(op.index.saturating_sub(1) as usize),
                                op.cur_version,
                            ) {
                                self.versions.insert(k.clone(), v);
                            }
                        }
                    }
                    self.publish_extra(ep, kind, now, attempt + 1);
                } else {
                    self.events
                        .push_back(PresenceEvent::PublishFailed(Error::rejected(resp)));
                }
            }
            Pending::RoamingRefresh { which } => {
                if (200..300).contains(&code) {
                    self.roaming_refresh[which] = self.refresh_time(resp, now);
                } else {
                    // The server forgot the dialog (481) or refused: start
                    // that subscription afresh.
                    self.restart_roaming(ep, which, now);
                }
            }
            Pending::RoamingContacts { req } => {
                if (200..300).contains(&code) {
                    self.roaming_contacts = Dialog::from_uac(&req, resp).ok();
                    self.roaming_refresh[1] = self.refresh_time(resp, now);
                    self.on_contacts_doc(ep, resp.body(), now);
                } else {
                    // No list: queued changes cannot be resolved.
                    self.contacts_unavailable(Error::rejected(resp));
                }
            }
            Pending::ContactChange { change, op, sent } => {
                self.contact_in_flight = false;
                if (200..300).contains(&code) {
                    let group_id = match op {
                        ContactOp::AddGroup { .. } => parse_add_group_response(resp.body()).ok(),
                        _ => None,
                    };
                    // Without the new group's id the change cannot be applied
                    // here; the server's contactDelta will bring it.
                    let exact = !matches!(op, ContactOp::AddGroup { .. }) || group_id.is_some();
                    if let Some(l) = &mut self.contacts
                        && l.delta_num.unwrap_or(0) <= sent
                        && exact
                    {
                        // The server's contactDelta has not arrived yet (it
                        // may come before or after this answer): apply the
                        // change as the server did; the delta is then
                        // skipped as already known.
                        op.apply_to(l, group_id);
                        l.delta_num = Some(sent.wrapping_add(1));
                        self.events
                            .push_back(PresenceEvent::ContactList(Box::new(l.clone())));
                    }
                    match &change.request {
                        ContactRequest::Add { uri, .. } => self.watch(ep, &with_sip(uri), now),
                        ContactRequest::Remove { uri } => self.unwatch(ep, &with_sip(uri), now),
                        _ => {}
                    }
                    self.events.push_back(PresenceEvent::ContactListChanged {
                        id: change.id,
                        op,
                        group_id,
                    });
                } else if code == 409 && !change.retried {
                    // The list changed under us (another endpoint): fetch it
                    // again, then retry against the new version.
                    self.contact_queue.push_front(QueuedChange {
                        retried: true,
                        ..change
                    });
                    self.reread_contacts(ep, now);
                } else {
                    self.events
                        .push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error: Error::rejected(resp),
                        });
                }
                self.pump_contacts(ep, now);
            }
            Pending::RoamingSelf { req } => {
                if (200..300).contains(&code) {
                    self.roaming_self = Dialog::from_uac(&req, resp).ok();
                    self.roaming_refresh[0] = self.refresh_time(resp, now);
                    self.learn_versions(resp.body());
                }
                // Without the versions (roaming-self refused) publications
                // go out anyway and meet the server's 409 if need be.
                if code >= 200 && !self.versions_known {
                    self.versions_known = true;
                    self.publish_after_versions(ep, now);
                }
            }
            Pending::Publish { attempt } => {
                if (200..300).contains(&code) {
                    if self.cfg.dialect == Dialect::Ocs {
                        self.learn_versions(resp.body());
                        // The server stored version + 1 for each publication.
                        for c in [2, 3] {
                            let k = ("state".to_owned(), USER_STATE_INSTANCE, c);
                            *self.versions.entry(k).or_insert(0) += 1;
                        }
                        if self.status.as_ref().is_some_and(|s| s.note.is_some()) {
                            for c in [200, 300, 400] {
                                *self.versions.entry(("note".to_owned(), 0, c)).or_insert(0) += 1;
                            }
                        }
                    } else {
                        self.etag = resp.sip_etag().map(str::to_owned);
                        let life = resp
                            .expires()
                            .ok()
                            .flatten()
                            .unwrap_or(self.cfg.expires)
                            .max(2);
                        let life = Duration::from_secs(u64::from(life));
                        self.publish_refresh_at =
                            Some(now + life - (life / 10).max(Duration::from_secs(1)));
                    }
                    if let Some(s) = &self.status {
                        self.events.push_back(PresenceEvent::Published {
                            state: s.availability.state(),
                        });
                    }
                } else if code == 409 && attempt < 3 {
                    // WrongDelta: adopt the server's versions and retry.
                    if let Ok(f) = parse_fault(resp.body()) {
                        let order = self.publication_order();
                        for op in f.operations {
                            if let (Some(k), Some(v)) = (
                                order.get(op.index.saturating_sub(1) as usize),
                                op.cur_version,
                            ) {
                                self.versions.insert(k.clone(), v);
                            }
                        }
                    }
                    self.publish(ep, now, attempt + 1);
                } else if code == 412 && attempt < 3 {
                    // The server forgot our entity tag: publish in full.
                    self.etag = None;
                    self.publish(ep, now, attempt + 1);
                } else {
                    self.events
                        .push_back(PresenceEvent::PublishFailed(Error::rejected(resp)));
                }
            }
            Pending::Subscribe { uri, req } => {
                if (200..300).contains(&code) {
                    let dialog = Dialog::from_uac(&req, resp).ok().map(|mut d| {
                        // Keep what an early NOTIFY already taught us.
                        if let Some(old) = self.watches.get(&uri).and_then(|w| w.dialog.as_ref()) {
                            d.remote_cseq = old.remote_cseq;
                        }
                        d
                    });
                    let life = resp
                        .expires()
                        .ok()
                        .flatten()
                        .unwrap_or(self.cfg.expires)
                        .max(2);
                    let life = Duration::from_secs(u64::from(life));
                    if let Some(w) = self.watches.get_mut(&uri) {
                        w.dialog = dialog;
                        w.refresh_at = Some(now + life - (life / 10).max(Duration::from_secs(1)));
                    }
                    // OCS piggy-backs the first notification in the 200 OK.
                    let ct = resp
                        .header(HeaderName::ContentType)
                        .unwrap_or("")
                        .to_owned();
                    self.deliver(ep, resp.body(), &ct, now);
                } else {
                    self.watches.remove(&uri);
                    self.events.push_back(PresenceEvent::WatchEnded {
                        uri,
                        reason: format!("{code} {}", resp.reason().unwrap_or("")),
                    });
                }
            }
        }
    }

    /// The (category, instance, container) of each publication in the order
    /// `publish` writes them, for 409 fault indexes.
    fn publication_order(&self) -> Vec<(String, u32, u32)> {
        let mut v = vec![
            ("state".to_owned(), USER_STATE_INSTANCE, 2),
            ("state".to_owned(), USER_STATE_INSTANCE, 3),
        ];
        if self.status.as_ref().is_some_and(|s| s.note.is_some()) {
            for c in [200, 300, 400] {
                v.push(("note".to_owned(), 0, c));
            }
        }
        v
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
            self.watches.remove(&uri);
            self.events.push_back(PresenceEvent::WatchEnded {
                uri,
                reason: "subscription terminated by the server".into(),
            });
        }
    }

    /// A roaming-contacts NOTIFY that overtook the 200 OK to our SUBSCRIBE
    /// (RFC 6665 §4.1.2.4): it creates the subscription's dialog.
    fn adopt_early_contacts_notify(&mut self, req: &Message) -> bool {
        if self.roaming_contacts.is_some() {
            return false;
        }
        let (Ok(cid), Some(our_tag)) = (
            req.call_id(),
            req.to().ok().and_then(|t| t.tag().map(str::to_owned)),
        ) else {
            return false;
        };
        let Some(cseq) = self.pending.values().find_map(|p| match p {
            Pending::RoamingContacts { req: sub } => {
                let same_call = sub.call_id().ok() == Some(cid);
                let same_tag = sub.from().ok().and_then(|f| f.tag().map(str::to_owned))
                    == Some(our_tag.clone());
                (same_call && same_tag).then(|| sub.cseq().map(|c| c.seq).unwrap_or(1))
            }
            _ => None,
        }) else {
            return false;
        };
        let Ok(mut dialog) = Dialog::from_uas(req, &our_tag) else {
            return false;
        };
        dialog.local_cseq = cseq;
        self.roaming_contacts = Some(dialog);
        true
    }

    /// Matches a NOTIFY to a SUBSCRIBE still waiting for its answer and
    /// creates the watch's dialog from it.
    fn adopt_early_notify(&mut self, req: &Message) -> Option<String> {
        let cid = req.call_id().ok()?;
        let our_tag = req.to().ok()?.tag()?.to_owned();
        let (uri, cseq) = self.pending.values().find_map(|p| match p {
            Pending::Subscribe { uri, req: sub } => {
                let same_call = sub.call_id().ok() == Some(cid);
                let same_tag = sub.from().ok().and_then(|f| f.tag().map(str::to_owned))
                    == Some(our_tag.clone());
                (same_call && same_tag)
                    .then(|| (uri.clone(), sub.cseq().map(|c| c.seq).unwrap_or(1)))
            }
            _ => None,
        })?;
        let mut dialog = Dialog::from_uas(req, &our_tag).ok()?;
        dialog.local_cseq = cseq;
        let w = self.watches.get_mut(&uri)?;
        if w.dialog.is_none() {
            w.dialog = Some(dialog);
        }
        Some(uri)
    }

    /// Refreshes publications and subscriptions that are due.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        self.refresh_roaming(ep, now);
        if self.publish_refresh_at.is_some_and(|t| t <= now) {
            self.publish_refresh_at = None;
            self.publish(ep, now, 0);
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

    /// When to refresh a self-subscription the server granted in `resp`:
    /// 120 s before it expires (as SIPE does), or at nine tenths of a
    /// lifetime of 240 s or less.
    fn refresh_time(&self, resp: &Message, now: Instant) -> Option<Instant> {
        let life = resp.expires().ok().flatten().unwrap_or(self.cfg.expires);
        if life == 0 {
            return None;
        }
        let life = Duration::from_secs(u64::from(life));
        let early = if life > Duration::from_secs(240) {
            Duration::from_secs(120)
        } else {
            life / 10
        };
        Some(now + life - early)
    }

    /// Sends the in-dialog refresh of roaming-self (0) or roaming-contacts
    /// (1) when it is due.
    fn refresh_roaming(&mut self, ep: &mut Endpoint, now: Instant) {
        for which in 0..2 {
            if self.roaming_refresh[which].is_none_or(|t| t > now) {
                continue;
            }
            self.roaming_refresh[which] = None;
            let epid = ep.epid_param();
            let contact = ep.contact();
            let (event, accept) = if which == 0 {
                (
                    "vnd-microsoft-roaming-self",
                    "application/vnd-microsoft-roaming-self+xml",
                )
            } else {
                ("vnd-microsoft-roaming-contacts", ROAMING_CONTACTS_CT)
            };
            let dialog = if which == 0 {
                self.roaming_self.as_mut()
            } else {
                self.roaming_contacts.as_mut()
            };
            let Some(d) = dialog else { continue };
            let mut req = d.request(Method::Subscribe, epid.as_deref());
            req.push_header(HeaderName::Event, event);
            req.push_header(HeaderName::Accept, accept);
            if let Some(c) = contact {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::RoamingRefresh { which }, now);
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
        for p in self.pending.values() {
            if let Pending::ContactChange { change, .. } = p {
                self.events.push_back(PresenceEvent::ContactListChangeFailed {
                    id: change.id,
                    error: Error::Transport(
                        "the connection dropped before the server answered the contact-list change; it may or may not have been made".into(),
                    ),
                });
            }
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
        self.events.pop_front()
    }
}
