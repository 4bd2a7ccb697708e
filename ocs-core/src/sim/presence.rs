//! The presence half of the OCS-dialect test server: publications by
//! `SERVICE` (with versions and the 409 `WrongDelta` fault), container
//! membership, roaming-self / roaming-contacts / provisioning-v2
//! self-subscriptions, batched and single category subscriptions, and the
//! aggregation of published states into what watchers see (PROTOCOL.md
//! §b, §c; T9–T16).
//!
//! Sans-IO: [`PresenceServer::handle_request`] takes a request from a
//! signed-in user and returns the response plus the in-dialog
//! notifications to send; [`SimServer`] adds Via, signs for the recipient
//! and sends them (BENOTIFY directly, NOTIFY through a client
//! transaction).
//!
//! Simplifications a test server can afford: containers are stored and
//! reported but only the Blocked container (32000, `user` members) changes
//! what a watcher sees; watchers see the note of container 200 (else 300,
//! 400, 100); a publish is all-or-nothing; deleting a publication forgets
//! its version (the next publish uses version 0).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use thiserror::Error;

use super::registrar::RegistrarOutcome;
use super::server::{Peer, SimServer};
use crate::dialog::Dialog;
use crate::presence::build_rlmi_multipart;
use crate::presence::contacts::{
    Contact, ContactDelta, ContactList, ContactOp, DEFAULT_GROUP, Group, SOAP_CT,
    add_group_response, parse_contact_soap, with_sip,
};
use crate::presence::xml::{Doc, NodeId, decode, escape_into};
use crate::rng::Rng;
use crate::sip::{HeaderName, Message, Method, SipUri, builder};
use crate::transaction::{Incoming, Reliability};

/// The Contact the server puts on dialogs it creates.
pub const SERVER_CONTACT: &str = "<sip:ocs-sim.invalid>";

/// Subscription lifetime granted when the client asks for none.
pub const DEFAULT_EXPIRES: u32 = 3600;

const PUBLISH_CT: &str = "application/msrtc-category-publish+xml";
const CONTAINERS_CT: &str = "application/msrtc-setcontainermembers+xml";
const SUBSCRIBERS_CT: &str = "application/msrtc-presence-setsubscriber+xml";
const ROAMING_SELF_CT: &str = "application/vnd-microsoft-roaming-self+xml";
const ROAMING_CONTACTS_CT: &str = "application/vnd-microsoft-roaming-contacts+xml";
const PROVISIONING_CT: &str = "application/vnd-microsoft-roaming-provisioning-v2+xml";
const CATEGORIES_CT: &str = "application/msrtc-event-categories+xml";
const BATCH_CT: &str = "application/msrtc-adrl-categorylist+xml";
const FAULT_CT: &str = "application/msrtc-fault+xml";

const NS_CATEGORIES: &str = "http://schemas.microsoft.com/2006/09/sip/categories";
const NS_STATE: &str = "http://schemas.microsoft.com/2006/09/sip/state";
const NS_NOTE: &str = "http://schemas.microsoft.com/2006/09/sip/note";
const NS_CARD: &str = "http://schemas.microsoft.com/2006/09/sip/contactcard";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Availability watchers see when nothing is published or the user is not
/// signed in.
pub const OFFLINE: u32 = 18500;

/// Why a presence request was refused (the response code follows from
/// the variant, the text goes into the reason phrase).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The body is not the document its Content-Type promises.
    #[error("malformed body: {0}")]
    BadBody(String),
    /// A body type this request cannot carry.
    #[error("unsupported content type {0}")]
    UnsupportedType(String),
    /// A SUBSCRIBE for an event package the server does not serve.
    #[error("unsupported event {0}")]
    BadEvent(String),
    /// Publishing or self-subscribing for somebody else.
    #[error("not allowed for {0}")]
    Forbidden(String),
    /// An in-dialog SUBSCRIBE for a subscription the server does not know.
    #[error("no such subscription")]
    NoSubscription,
    /// The server was told to refuse publications with this status.
    #[error("publishing is refused here")]
    Refused(u16),
}

impl PresenceError {
    /// The SIP status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            PresenceError::BadBody(_) => 400,
            PresenceError::UnsupportedType(_) => 415,
            PresenceError::BadEvent(_) => 489,
            PresenceError::Forbidden(_) => 403,
            PresenceError::NoSubscription => 481,
            PresenceError::Refused(status) => *status,
        }
    }
}

/// An in-dialog request the presence service wants delivered to a user.
/// Via is missing (the transport layer adds it) and it is not signed yet.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The recipient's address of record (`sip:user@domain`, lower case).
    pub to: String,
    /// The request (NOTIFY or BENOTIFY).
    pub request: Message,
}

impl Outgoing {
    /// True for a BENOTIFY (never answered, so no client transaction).
    pub fn is_benotify(&self) -> bool {
        self.request.method() == Some(&Method::Benotify)
    }
}

/// What [`PresenceServer::handle_request`] produced.
#[derive(Debug, Clone)]
pub struct PresenceReply {
    /// The response to the request (unsigned).
    pub response: Message,
    /// Notifications caused by it, in order.
    pub notify: Vec<Outgoing>,
}

#[derive(Debug, Clone)]
struct Publication {
    version: u32,
    expire_type: String,
    /// The publication's content element, as published.
    xml: String,
    publish_time: String,
}

/// (category, instance, container).
type PubKey = (String, u32, u32);

#[derive(Debug, Clone, Default)]
struct ContainerData {
    version: u32,
    /// (type, value).
    members: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default)]
struct UserData {
    pubs: BTreeMap<PubKey, Publication>,
    containers: BTreeMap<u32, ContainerData>,
    /// Watchers acknowledged through `setSubscribers` (without `sip:`).
    acknowledged: BTreeSet<String>,
    /// The roaming contact list (MS-SIP 3.7): group `~` (id 1) and what
    /// tests or SOAP changes put there.
    contacts: ContactList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubKind {
    RoamingSelf,
    RoamingContacts,
    /// A category subscription; `batched` ones notify with rlmi multipart.
    Presence {
        batched: bool,
    },
}

#[derive(Debug, Clone)]
struct Subscription {
    /// The subscriber.
    owner: String,
    kind: SubKind,
    event: String,
    dialog: Dialog,
    benotify: bool,
    expires_at: Instant,
    /// Watched users (presence subscriptions).
    targets: Vec<String>,
    /// Requested categories (empty: all).
    categories: Vec<String>,
    /// What was last sent per target, to notify only on change.
    last: HashMap<String, String>,
}

/// The presence service of the test server. See the module docs.
#[derive(Debug)]
pub struct PresenceServer {
    rng: Rng,
    users: HashMap<String, UserData>,
    subs: Vec<Subscription>,
    /// No subscription lapses before this (a lower bound: refreshes only
    /// move expiries later). Lapsed subscriptions are dropped when it has
    /// passed instead of scanning them all on every request, which made
    /// the server O(subscriptions) per message at 10,000 users.
    subs_checked_until: Option<Instant>,
    /// Where each owner's subscriptions are in `subs` (`None`: rebuilt on
    /// next use). Kept up to date as subscriptions are added; dropped when
    /// any is removed (positions shift). Finding an owner's subscriptions
    /// by scanning them all was most of the server's time at 10,000 users.
    by_owner: Option<HashMap<String, Vec<usize>>>,
    /// The first instant seen: synthetic publishTimes count from it.
    epoch: Option<Instant>,
    /// The address-book URL handed out by in-band provisioning.
    abs_url: String,
    /// Extra ucPolicy properties handed out by in-band provisioning.
    uc_policy: Vec<(String, String)>,
    /// Answer every category publication with this status (a test's
    /// server that refuses publishing).
    refuse_publications: Option<u16>,
}

/// `sip:user@host`, lower case, from a URI text.
fn normalize(uri: &str) -> Option<String> {
    let u = SipUri::parse(uri.trim()).ok()?;
    u.user.as_ref()?;
    Some(format!("sip:{}", u.user_at_host()).to_ascii_lowercase())
}

/// The signed-in user a request comes from (its From URI).
fn sender_aor(m: &Message) -> Option<String> {
    normalize(m.from().ok()?.uri_text)
}

fn user_part(aor: &str) -> &str {
    let s = aor.strip_prefix("sip:").unwrap_or(aor);
    s.split('@').next().unwrap_or(s)
}

fn bare(aor: &str) -> &str {
    aor.strip_prefix("sip:").unwrap_or(aor)
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    escape_into(&mut o, s);
    o
}

/// Inserts a header before Content-Length (the builder's last header).
fn add(r: &mut Message, name: impl Into<HeaderName>, value: impl Into<String>) {
    let at = r.header_count().saturating_sub(1);
    r.insert_header(at, name, value);
}

fn has_option(m: &Message, name: HeaderName, tag: &str) -> bool {
    m.headers_named(name)
        .flat_map(|h| h.value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

fn content_essence(m: &Message) -> String {
    m.header(HeaderName::ContentType)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_doc<'a>(text: &'a str, root: &str) -> Result<Doc<'a>, PresenceError> {
    let doc = Doc::parse(text).map_err(|e| PresenceError::BadBody(e.to_string()))?;
    let found = doc.node(doc.root()).local();
    if found != root {
        return Err(PresenceError::BadBody(format!(
            "expected <{root}>, found <{found}>"
        )));
    }
    Ok(doc)
}

fn num_attr(doc: &Doc<'_>, id: NodeId, name: &str, what: &str) -> Result<u32, PresenceError> {
    let v = doc
        .node(id)
        .attr(name)
        .ok_or_else(|| PresenceError::BadBody(format!("{what}: {name} is missing")))?;
    v.trim()
        .parse::<u32>()
        .map_err(|_| PresenceError::BadBody(format!("{what}: {name} is not a number")))
}

/// One `<publication>` of a publish request.
#[derive(Debug, Clone)]
struct PubOp {
    key: PubKey,
    version: u32,
    expire_type: String,
    delete: bool,
    xml: String,
}

fn parse_publish(body: &[u8]) -> Result<(Option<String>, Vec<PubOp>), PresenceError> {
    let text = decode(body).map_err(|e| PresenceError::BadBody(e.to_string()))?;
    let doc = parse_doc(&text, "publish")?;
    let pubs = doc
        .child(doc.root(), "publications")
        .ok_or_else(|| PresenceError::BadBody("<publications> is missing".into()))?;
    let uri = doc.node(pubs).attr("uri").map(|u| u.into_owned());
    let mut ops = Vec::new();
    for (i, p) in doc
        .children(pubs)
        .filter(|&p| doc.node(p).local() == "publication")
        .enumerate()
    {
        let what = format!("publication {}", i + 1);
        let n = doc.node(p);
        let name = n
            .attr("categoryName")
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| PresenceError::BadBody(format!("{what}: categoryName is missing")))?
            .trim()
            .to_owned();
        let instance = num_attr(&doc, p, "instance", &what)?;
        let container = num_attr(&doc, p, "container", &what)?;
        let version = num_attr(&doc, p, "version", &what)?;
        let delete = match n.attr("expires") {
            None => false,
            Some(e) => {
                e.trim().parse::<u32>().map_err(|_| {
                    PresenceError::BadBody(format!("{what}: expires is not a number"))
                })? == 0
            }
        };
        let xml = doc
            .children(p)
            .next()
            .map(|c| doc.raw(c).to_owned())
            .unwrap_or_default();
        if !delete && name == "state" && !xml.is_empty() {
            parse_state(&xml).map_err(|e| PresenceError::BadBody(format!("{what}: {e}")))?;
        }
        ops.push(PubOp {
            key: (name, instance, container),
            version,
            expire_type: n
                .attr("expireType")
                .map_or_else(|| "static".to_owned(), |e| e.into_owned()),
            delete,
            xml,
        });
    }
    if ops.is_empty() {
        return Err(PresenceError::BadBody("no <publication>".into()));
    }
    Ok((uri, ops))
}

/// What a `state` publication says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StateInfo {
    /// `userState`, `machineState`, ... (prefix stripped).
    ty: String,
    availability: Option<u32>,
    token: Option<String>,
    /// (LCID, text).
    custom: Vec<(u32, String)>,
}

fn parse_state(xml: &str) -> Result<StateInfo, String> {
    let doc = Doc::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root();
    let n = doc.node(root);
    if n.local() != "state" {
        return Err(format!("expected <state>, found <{}>", n.local()));
    }
    let ty = n.attr("type").unwrap_or_default();
    let ty = ty
        .rsplit_once(':')
        .map_or(ty.as_ref(), |(_, l)| l)
        .to_owned();
    let availability = match doc.child_text(root, "availability") {
        None => None,
        Some(t) => Some(
            t.parse::<u32>()
                .map_err(|_| format!("availability {t:?} is not a number"))?,
        ),
    };
    let mut info = StateInfo {
        ty,
        availability,
        ..StateInfo::default()
    };
    if let Some(a) = doc.child(root, "activity") {
        info.token = doc.node(a).attr("token").map(|t| t.into_owned());
        for c in doc.children(a) {
            let cn = doc.node(c);
            if cn.local() != "custom" || cn.trimmed().is_empty() {
                continue;
            }
            let lcid = cn
                .attr("LCID")
                .and_then(|l| l.trim().parse::<u32>().ok())
                .unwrap_or(1033);
            info.custom.push((lcid, cn.trimmed().to_owned()));
        }
    }
    Ok(info)
}

/// (type, text) of a `note` publication.
fn parse_note(xml: &str) -> Option<(String, String)> {
    let doc = Doc::parse(xml).ok()?;
    let b = doc.child(doc.root(), "body")?;
    let n = doc.node(b);
    let text = n.trimmed();
    if text.is_empty() {
        return None;
    }
    let ty = n
        .attr("type")
        .map_or_else(|| "personal".into(), |t| t.into_owned());
    Some((ty, text.to_owned()))
}

/// A new user's contact list: the default group `~` (id 1), version 1.
fn default_contact_list() -> ContactList {
    ContactList {
        delta_num: Some(1),
        groups: vec![Group {
            id: 1,
            name: DEFAULT_GROUP.into(),
        }],
        contacts: Vec::new(),
    }
}

/// 2009-06-01T00:00:00Z as days since 1970-01-01.
const EPOCH_DAYS: i64 = 14_396;

impl PresenceServer {
    /// An empty presence service; `rng` makes tags, Call-IDs and
    /// boundaries.
    pub fn new(rng: Rng) -> PresenceServer {
        PresenceServer {
            rng,
            users: HashMap::new(),
            subs: Vec::new(),
            subs_checked_until: None,
            by_owner: None,
            epoch: None,
            abs_url: "http://127.0.0.1/abs".into(),
            uc_policy: Vec::new(),
            refuse_publications: None,
        }
    }

    /// Sets the roaming contact list of `aor`: (uri, display name, group)
    /// triples. Group `""` is the default group `~` (id 1); other groups
    /// get ids 2, 3, … in order of first use.
    pub fn set_contacts(&mut self, aor: &str, contacts: &[(&str, &str, &str)]) {
        let Some(aor) = normalize(aor) else { return };
        let mut l = default_contact_list();
        for (u, n, g) in contacts {
            let g = if g.is_empty() { DEFAULT_GROUP } else { g };
            let id = match l.group_named(g) {
                Some(x) => x.id,
                None => {
                    let id = l.groups.iter().map(|x| x.id).max().unwrap_or(0) + 1;
                    l.groups.push(Group {
                        id,
                        name: (*g).into(),
                    });
                    id
                }
            };
            l.contacts.push(Contact {
                uri: with_sip(u),
                name: (!n.is_empty()).then(|| (*n).into()),
                groups: vec![id],
                subscribed: true,
            });
        }
        self.users.entry(aor).or_default().contacts = l;
    }

    /// The contact list the server holds for `aor`.
    pub fn contact_list(&self, aor: &str) -> Option<&ContactList> {
        normalize(aor)
            .and_then(|a| self.users.get(&a))
            .map(|u| &u.contacts)
    }

    /// The address-book base URL provisioning hands out (internal and
    /// external alike; default `http://127.0.0.1/abs`, where nothing
    /// listens).
    pub fn set_address_book_url(&mut self, url: &str) {
        self.abs_url = url.to_owned();
    }

    /// The current version of one publication of `aor` (0 when absent).
    pub fn version(&self, aor: &str, category: &str, instance: u32, container: u32) -> u32 {
        normalize(aor)
            .and_then(|a| self.users.get(&a))
            .and_then(|u| u.pubs.get(&(category.to_owned(), instance, container)))
            .map_or(0, |p| p.version)
    }

    /// Number of live subscriptions (all kinds).
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// The users `watcher` has a live presence subscription to (lower
    /// case, sorted).
    pub fn watched_by(&self, watcher: &str, now: Instant) -> Vec<String> {
        let Some(w) = normalize(watcher) else {
            return Vec::new();
        };
        let mut v: Vec<String> = self
            .subs
            .iter()
            .filter(|s| {
                s.owner == w && matches!(s.kind, SubKind::Presence { .. }) && s.expires_at > now
            })
            .flat_map(|s| s.targets.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// True for the requests this service answers: SERVICE and SUBSCRIBE.
    pub fn is_presence_request(m: &Message) -> bool {
        matches!(m.method(), Some(Method::Service | Method::Subscribe))
    }

    fn publish_time(&mut self, now: Instant) -> String {
        let epoch = *self.epoch.get_or_insert(now);
        let d = now.saturating_duration_since(epoch);
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
        let (y, mo, da) = crate::utc::civil_from_days(EPOCH_DAYS + secs / 86_400);
        let s = secs % 86_400;
        format!(
            "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}.{:03}",
            s / 3600,
            s / 60 % 60,
            s % 60,
            d.subsec_millis()
        )
    }

    /// Handles a SERVICE or SUBSCRIBE from `sender` (an address of record
    /// whose signature has been checked). `registered` tells whether a
    /// user is signed in (offline users aggregate to [`OFFLINE`]).
    pub fn handle_request(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> PresenceReply {
        self.epoch.get_or_insert(now);
        if self.subs_checked_until.is_some_and(|t| t <= now) {
            self.subs.retain(|s| s.expires_at > now);
            self.by_owner = None;
            self.subs_checked_until = self.subs.iter().map(|s| s.expires_at).min();
        }
        let sender = normalize(sender).unwrap_or_else(|| sender.to_ascii_lowercase());
        let publication = req.header(HeaderName::ContentType).is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(PUBLISH_CT))
        });
        let result = match req.method() {
            Some(Method::Service) if publication && self.refuse_publications.is_some() => Err(
                PresenceError::Refused(self.refuse_publications.unwrap_or(403)),
            ),
            Some(Method::Service) => self.service(req, &sender, registered, now),
            Some(Method::Subscribe) => self.subscribe(req, &sender, registered, now),
            _ => Err(PresenceError::BadEvent("not a presence request".into())),
        };
        match result {
            Ok(r) => r,
            Err(e) => {
                let tag = self.rng.tag();
                let reason = e.to_string();
                let mut r = builder::response(req, e.status(), Some(&reason), Some(&tag))
                    .unwrap_or_else(|_| Message::response(e.status(), &reason));
                if e.status() == 489 {
                    add(
                        &mut r,
                        HeaderName::AllowEvents,
                        "presence, vnd-microsoft-roaming-self, vnd-microsoft-roaming-contacts, vnd-microsoft-provisioning-v2",
                    );
                }
                if e.status() == 415 {
                    add(
                        &mut r,
                        HeaderName::Accept,
                        format!("{PUBLISH_CT}, {CONTAINERS_CT}, {SUBSCRIBERS_CT}"),
                    );
                }
                PresenceReply {
                    response: r,
                    notify: Vec::new(),
                }
            }
        }
    }

    /// `aor` signed out: its endpoint publications lapse, its own
    /// subscriptions end, and its watchers are told.
    pub fn handle_signed_out(
        &mut self,
        aor: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Vec<Outgoing> {
        let Some(aor) = normalize(aor) else {
            return Vec::new();
        };
        self.subs.retain(|s| s.owner != aor && s.expires_at > now);
        self.by_owner = None;
        if let Some(u) = self.users.get_mut(&aor) {
            u.pubs
                .retain(|_, p| !p.expire_type.eq_ignore_ascii_case("endpoint"));
        }
        self.notify_watchers(&aor, registered, now)
    }

    fn ok(&mut self, req: &Message) -> Message {
        let tag = self.rng.tag();
        builder::response(req, 200, None, Some(&tag))
            .unwrap_or_else(|_| Message::response(200, "OK"))
    }

    /// `409 Conflict` with the `Client.BadCall.WrongDelta` fault (MS-PRES
    /// 2.2.2.10.4): one `operation` per (index, version sent, current
    /// version).
    fn wrong_delta(
        &mut self,
        req: &Message,
        what: &str,
        ops: &[(usize, u32, u32)],
    ) -> PresenceReply {
        let mut body =
            String::from("<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details>");
        for (i, v, cur) in ops {
            body.push_str(&format!(
                "<operation index=\"{i}\" version=\"{v}\" curVersion=\"{cur}\"/>"
            ));
        }
        body.push_str("</details></Fault>");
        let tag = self.rng.tag();
        let mut r = builder::response(req, 409, None, Some(&tag))
            .unwrap_or_else(|_| Message::response(409, "Conflict"));
        add(
            &mut r,
            HeaderName::MsDiagnostics,
            format!("2141;reason=\"{what} version is out of date\";source=\"ocs-sim\""),
        );
        r.set_body(FAULT_CT, body);
        PresenceReply {
            response: r,
            notify: Vec::new(),
        }
    }

    // ----- SERVICE -----------------------------------------------------

    fn service(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        if let Some(target) = req.request_uri().and_then(normalize)
            && target != sender
        {
            return Err(PresenceError::Forbidden(target));
        }
        match content_essence(req).as_str() {
            PUBLISH_CT => self.publish(req, sender, registered, now),
            CONTAINERS_CT => self.set_containers(req, sender, registered, now),
            SUBSCRIBERS_CT => self.set_subscribers(req, sender, now),
            ct if ct.eq_ignore_ascii_case(SOAP_CT) => self.contact_change(req, sender, now),
            other => Err(PresenceError::UnsupportedType(if other.is_empty() {
                "(none)".into()
            } else {
                other.to_owned()
            })),
        }
    }

    fn publish(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let (uri, ops) = parse_publish(req.body())?;
        if let Some(u) = uri
            && normalize(&u).as_deref() != Some(sender)
        {
            return Err(PresenceError::Forbidden(u));
        }
        let user = self.users.entry(sender.to_owned()).or_default();
        let conflicts: Vec<(usize, u32, u32)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| {
                let cur = user.pubs.get(&op.key).map_or(0, |p| p.version);
                (cur != op.version).then_some((i + 1, op.version, cur))
            })
            .collect();
        if !conflicts.is_empty() {
            return Ok(self.wrong_delta(req, "Publication", &conflicts));
        }
        let time = self.publish_time(now);
        let user = self.users.entry(sender.to_owned()).or_default();
        let mut changed = BTreeSet::new();
        for op in ops {
            changed.insert(op.key.0.clone());
            if op.delete {
                user.pubs.remove(&op.key);
            } else {
                user.pubs.insert(
                    op.key,
                    Publication {
                        version: op.version.wrapping_add(1),
                        expire_type: op.expire_type,
                        xml: op.xml,
                        publish_time: time.clone(),
                    },
                );
            }
        }
        let mut notify = self.roaming_self_notify(sender, Section::Categories(&changed), now);
        notify.extend(self.notify_watchers(sender, registered, now));
        Ok(PresenceReply {
            response: self.ok(req),
            notify,
        })
    }

    fn set_containers(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let text = decode(req.body()).map_err(|e| PresenceError::BadBody(e.to_string()))?;
        let doc = parse_doc(&text, "setContainerMembers")?;
        let mut changes = Vec::new();
        for c in doc.children(doc.root()) {
            if doc.node(c).local() != "container" {
                continue;
            }
            let id = num_attr(&doc, c, "id", "container")?;
            let mut members = Vec::new();
            for m in doc.children(c) {
                let n = doc.node(m);
                if n.local() != "member" {
                    continue;
                }
                let kind = n
                    .attr("type")
                    .ok_or_else(|| PresenceError::BadBody("member: type is missing".into()))?
                    .into_owned();
                let remove = n
                    .attr("action")
                    .is_some_and(|a| a.eq_ignore_ascii_case("remove"));
                members.push((remove, kind, n.attr("value").map(|v| v.into_owned())));
            }
            changes.push((id, members));
        }
        let user = self.users.entry(sender.to_owned()).or_default();
        for (id, members) in changes {
            let c = user.containers.entry(id).or_default();
            c.version = c.version.wrapping_add(1);
            for (remove, kind, value) in members {
                let same = |(k, v): &(String, Option<String>)| {
                    k.eq_ignore_ascii_case(&kind)
                        && v.as_deref().map(str::to_ascii_lowercase)
                            == value.as_deref().map(str::to_ascii_lowercase)
                };
                if remove {
                    c.members.retain(|m| !same(m));
                } else if !c.members.iter().any(same) {
                    c.members.push((kind, value));
                }
            }
        }
        let mut notify = self.roaming_self_notify(sender, Section::Containers, now);
        notify.extend(self.notify_watchers(sender, registered, now));
        Ok(PresenceReply {
            response: self.ok(req),
            notify,
        })
    }

    fn set_subscribers(
        &mut self,
        req: &Message,
        sender: &str,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let text = decode(req.body()).map_err(|e| PresenceError::BadBody(e.to_string()))?;
        let doc = parse_doc(&text, "setSubscribers")?;
        let mut acks = Vec::new();
        for s in doc.children(doc.root()) {
            let n = doc.node(s);
            if n.local() != "subscriber" {
                continue;
            }
            let u = n
                .attr("user")
                .ok_or_else(|| PresenceError::BadBody("subscriber: user is missing".into()))?;
            let ack = n
                .attr("acknowledged")
                .is_none_or(|a| a.eq_ignore_ascii_case("true"));
            acks.push((bare(&u).to_ascii_lowercase(), ack));
        }
        let user = self.users.entry(sender.to_owned()).or_default();
        for (u, ack) in acks {
            if ack {
                user.acknowledged.insert(u);
            } else {
                user.acknowledged.remove(&u);
            }
        }
        let notify = self.roaming_self_notify(sender, Section::Subscribers, now);
        Ok(PresenceReply {
            response: self.ok(req),
            notify,
        })
    }

    // ----- SUBSCRIBE ---------------------------------------------------

    fn subscribe(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let in_dialog = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
        if in_dialog.is_some() {
            return self.resubscribe(req, sender, registered, now);
        }
        let event = req
            .header(HeaderName::Event)
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let target = req
            .to()
            .ok()
            .and_then(|t| normalize(t.uri_text))
            .or_else(|| req.request_uri().and_then(normalize))
            .unwrap_or_default();
        let is_self = target == sender;
        let expires = match req.expires().ok().flatten() {
            Some(0) => 0,
            Some(e) => e.clamp(60, 86_400),
            None => DEFAULT_EXPIRES,
        };
        match event.to_ascii_lowercase().as_str() {
            "vnd-microsoft-provisioning-v2" => {
                let mut r = self.ok(req);
                add(&mut r, HeaderName::Expires, "0");
                add(&mut r, HeaderName::Event, event.as_str());
                add(
                    &mut r,
                    HeaderName::SubscriptionState,
                    "terminated;expires=0",
                );
                add(&mut r, "ms-piggyback-cseq", "1");
                add(
                    &mut r,
                    HeaderName::Supported,
                    "ms-benotify, ms-piggyback-first-notify",
                );
                r.set_body(
                    PROVISIONING_CT,
                    provisioning_doc(&self.abs_url, &self.uc_policy),
                );
                Ok(PresenceReply {
                    response: r,
                    notify: Vec::new(),
                })
            }
            "vnd-microsoft-roaming-self" | "vnd-microsoft-roaming-contacts" if !is_self => {
                Err(PresenceError::Forbidden(target))
            }
            "vnd-microsoft-roaming-self" => {
                let sections = if req.body().is_empty() {
                    [true; 3]
                } else {
                    roaming_list(req.body())?
                };
                let body = self.roaming_self_doc(sender, sections, None);
                self.new_subscription(req, sender, SubKind::RoamingSelf, &event, expires, now)
                    .map(|(r, _)| PresenceReply {
                        response: with_body(r, ROAMING_SELF_CT, body.into_bytes()),
                        notify: Vec::new(),
                    })
            }
            "vnd-microsoft-roaming-contacts" => {
                let body = self.contact_list_doc(sender);
                self.new_subscription(req, sender, SubKind::RoamingContacts, &event, expires, now)
                    .map(|(r, _)| PresenceReply {
                        response: with_body(r, ROAMING_CONTACTS_CT, body.into_bytes()),
                        notify: Vec::new(),
                    })
            }
            "presence" => {
                let batched = content_essence(req) == BATCH_CT;
                let (targets, categories) = if batched {
                    parse_batch(req.body())?
                } else if !req.body().is_empty() && content_essence(req) != CATEGORIES_CT {
                    return Err(PresenceError::UnsupportedType(content_essence(req)));
                } else {
                    if target.is_empty() {
                        return Err(PresenceError::BadBody("no contact to watch".into()));
                    }
                    (vec![target.clone()], Vec::new())
                };
                let kind = SubKind::Presence { batched };
                let (r, idx) = self.new_subscription(req, sender, kind, &event, expires, now)?;
                let mut notify = Vec::new();
                let body = match idx {
                    Some(i) => {
                        self.subs[i].targets = targets.clone();
                        self.subs[i].categories = categories;
                        let body = self.presence_body(i, &targets, registered);
                        for t in &targets {
                            notify.extend(self.roaming_self_notify(t, Section::Subscribers, now));
                        }
                        body
                    }
                    None => {
                        // Expires: 0 — a one-shot fetch.
                        let tmp = Subscription {
                            owner: sender.to_owned(),
                            kind,
                            event: event.clone(),
                            dialog: Dialog::from_uas(req, "x")
                                .map_err(|e| PresenceError::BadBody(e.to_string()))?,
                            benotify: false,
                            expires_at: now,
                            targets: targets.clone(),
                            categories,
                            last: HashMap::new(),
                        };
                        self.subs.push(tmp);
                        let i = self.subs.len() - 1;
                        let b = self.presence_body(i, &targets, registered);
                        self.subs.pop();
                        b
                    }
                };
                Ok(PresenceReply {
                    response: with_body(r, &body.0, body.1),
                    notify,
                })
            }
            _ => Err(PresenceError::BadEvent(if event.is_empty() {
                "(none)".into()
            } else {
                event
            })),
        }
    }

    /// Answers a new subscription 200 and, unless `expires` is 0, stores
    /// its dialog (returning its index). The piggy-backed first
    /// notification takes CSeq 1.
    fn new_subscription(
        &mut self,
        req: &Message,
        sender: &str,
        kind: SubKind,
        event: &str,
        expires: u32,
        now: Instant,
    ) -> Result<(Message, Option<usize>), PresenceError> {
        let tag = self.rng.tag();
        let mut r = builder::response(req, 200, None, Some(&tag))
            .map_err(|e| PresenceError::BadBody(e.to_string()))?;
        add(&mut r, HeaderName::Contact, SERVER_CONTACT);
        add(&mut r, HeaderName::Expires, expires.to_string());
        add(&mut r, HeaderName::Event, event);
        add(
            &mut r,
            HeaderName::SubscriptionState,
            if expires == 0 {
                "terminated;expires=0".to_owned()
            } else {
                format!("active;expires={expires}")
            },
        );
        add(&mut r, "ms-piggyback-cseq", "1");
        add(
            &mut r,
            HeaderName::Supported,
            "ms-benotify, ms-piggyback-first-notify",
        );
        if expires == 0 {
            return Ok((r, None));
        }
        let mut dialog =
            Dialog::from_uas(req, &tag).map_err(|e| PresenceError::BadBody(e.to_string()))?;
        dialog.local_cseq = 1;
        let expires_at = now + std::time::Duration::from_secs(u64::from(expires));
        self.subs_checked_until = Some(
            self.subs_checked_until
                .map_or(expires_at, |t| t.min(expires_at)),
        );
        if let Some(m) = &mut self.by_owner {
            m.entry(sender.to_owned())
                .or_default()
                .push(self.subs.len());
        }
        self.subs.push(Subscription {
            owner: sender.to_owned(),
            kind,
            event: event.to_owned(),
            dialog,
            benotify: has_option(req, HeaderName::Supported, "ms-benotify")
                || has_option(req, HeaderName::ProxyRequire, "ms-benotify"),
            expires_at,
            targets: Vec::new(),
            categories: Vec::new(),
            last: HashMap::new(),
        });
        Ok((r, Some(self.subs.len() - 1)))
    }

    /// The positions of `owner`'s subscriptions in `subs`, in order.
    fn owned_by(&mut self, owner: &str) -> Vec<usize> {
        let subs = &self.subs;
        let index = self.by_owner.get_or_insert_with(|| {
            let mut m: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, s) in subs.iter().enumerate() {
                m.entry(s.owner.clone()).or_default().push(i);
            }
            m
        });
        index.get(owner).cloned().unwrap_or_default()
    }

    fn resubscribe(
        &mut self,
        req: &Message,
        sender: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let i = self
            .owned_by(sender)
            .into_iter()
            .find(|&i| self.subs[i].dialog.matches_incoming(req))
            .ok_or(PresenceError::NoSubscription)?;
        let expires = match req.expires().ok().flatten() {
            Some(0) => 0,
            Some(e) => e.clamp(60, 86_400),
            None => DEFAULT_EXPIRES,
        };
        let mut r = self.ok(req);
        add(&mut r, HeaderName::Contact, SERVER_CONTACT);
        add(&mut r, HeaderName::Expires, expires.to_string());
        add(&mut r, HeaderName::Event, self.subs[i].event.clone());
        if expires == 0 {
            let gone = self.subs.remove(i);
            self.by_owner = None;
            add(
                &mut r,
                HeaderName::SubscriptionState,
                "terminated;expires=0",
            );
            let mut notify = Vec::new();
            for t in &gone.targets {
                notify.extend(self.roaming_self_notify(t, Section::Subscribers, now));
            }
            return Ok(PresenceReply {
                response: r,
                notify,
            });
        }
        add(
            &mut r,
            HeaderName::SubscriptionState,
            format!("active;expires={expires}"),
        );
        self.subs[i].expires_at = now + std::time::Duration::from_secs(u64::from(expires));
        self.subs[i].dialog.update_target(req);
        if matches!(self.subs[i].kind, SubKind::Presence { .. }) && content_essence(req) == BATCH_CT
        {
            // More contacts in the same dialog: answer with their state.
            let (targets, categories) = parse_batch(req.body())?;
            let fresh: Vec<String> = targets
                .into_iter()
                .filter(|t| !self.subs[i].targets.contains(t))
                .collect();
            self.subs[i].targets.extend(fresh.iter().cloned());
            if !categories.is_empty() {
                self.subs[i].categories = categories;
            }
            let cseq = self.subs[i].dialog.local_cseq.wrapping_add(1);
            self.subs[i].dialog.local_cseq = cseq;
            add(&mut r, "ms-piggyback-cseq", cseq.to_string());
            let (ct, body) = self.presence_body(i, &fresh, registered);
            let mut notify = Vec::new();
            for t in &fresh {
                notify.extend(self.roaming_self_notify(t, Section::Subscribers, now));
            }
            return Ok(PresenceReply {
                response: with_body(r, &ct, body),
                notify,
            });
        }
        Ok(PresenceReply {
            response: r,
            notify: Vec::new(),
        })
    }

    // ----- documents ---------------------------------------------------

    /// The body of a presence notification of subscription `i` about
    /// `targets` (remembering what was sent).
    fn presence_body(
        &mut self,
        i: usize,
        targets: &[String],
        registered: &dyn Fn(&str) -> bool,
    ) -> (String, Vec<u8>) {
        let owner = self.subs[i].owner.clone();
        let cats = self.subs[i].categories.clone();
        let docs: Vec<(String, String)> = targets
            .iter()
            .map(|t| (t.clone(), self.categories_doc(t, &owner, &cats, registered)))
            .collect();
        for (t, d) in &docs {
            self.subs[i].last.insert(t.clone(), d.clone());
        }
        if self.subs[i].kind == (SubKind::Presence { batched: true }) {
            let boundary = self.rng.hex(20);
            let list_uri = self.subs[i].dialog.local_uri.clone();
            let parts: Vec<(&str, &str)> =
                docs.iter().map(|(t, d)| (t.as_str(), d.as_str())).collect();
            (
                format!(
                    "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary={boundary}"
                ),
                build_rlmi_multipart(&boundary, &list_uri, &parts),
            )
        } else {
            let d = docs.into_iter().next().map(|(_, d)| d).unwrap_or_default();
            (CATEGORIES_CT.to_owned(), d.into_bytes())
        }
    }

    /// What `watcher` sees of `target`: the aggregated categories document.
    fn categories_doc(
        &self,
        target: &str,
        watcher: &str,
        wanted: &[String],
        registered: &dyn Fn(&str) -> bool,
    ) -> String {
        let want = |c: &str| wanted.is_empty() || wanted.iter().any(|w| w == c);
        let empty = UserData::default();
        let user = self.users.get(target).unwrap_or(&empty);
        let blocked = user.containers.get(&32000).is_some_and(|c| {
            c.members.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("user")
                    && v.as_deref()
                        .is_some_and(|v| bare(v).eq_ignore_ascii_case(bare(watcher)))
            })
        });
        let mut out = format!(
            "<categories xmlns=\"{NS_CATEGORIES}\" uri=\"{}\">",
            esc(target)
        );
        if want("contactCard") {
            let published = [0u32, 200]
                .iter()
                .find_map(|c| user.pubs.get(&("contactCard".to_owned(), 0, *c)))
                .filter(|p| !p.xml.is_empty());
            out.push_str("<category name=\"contactCard\" instance=\"0\">");
            match published {
                Some(p) if !blocked => out.push_str(&p.xml),
                _ => out.push_str(&format!(
                    "<contactCard xmlns=\"{NS_CARD}\"><identity><name><displayName>{}</displayName></name><email>{}</email></identity></contactCard>",
                    esc(user_part(target)),
                    esc(bare(target))
                )),
            }
            out.push_str("</category>");
        }
        if want("state") {
            let mut user_state: Option<(StateInfo, &Publication)> = None;
            let mut machine: Option<(u32, &Publication)> = None;
            for ((cat, _, container), p) in &user.pubs {
                if cat != "state" || !matches!(container, 2 | 3) || p.xml.is_empty() {
                    continue;
                }
                let Ok(s) = parse_state(&p.xml) else { continue };
                if s.ty == "userState" {
                    // Container 2 wins over 3 (they normally agree).
                    if s.availability.is_some() && (user_state.is_none() || *container == 2) {
                        user_state = Some((s, p));
                    }
                } else if s.ty == "machineState"
                    && let Some(a) = s.availability
                    && machine.is_none_or(|(m, _)| a < m)
                {
                    // The most available endpoint counts.
                    machine = Some((a, p));
                }
            }
            let online = registered(target) && !blocked;
            let (avail, info, time) = match (&user_state, machine) {
                _ if !online => (OFFLINE, None, None),
                (Some((s, p)), _) => (s.availability.unwrap_or(OFFLINE), Some(s), Some(*p)),
                (None, Some((a, p))) => (a, None, Some(p)),
                (None, None) => (OFFLINE, None, None),
            };
            out.push_str("<category name=\"state\" instance=\"0\"");
            if let Some(p) = time {
                out.push_str(&format!(" publishTime=\"{}\"", esc(&p.publish_time)));
            }
            out.push_str(&format!(
                "><state xmlns=\"{NS_STATE}\" xmlns:xsi=\"{NS_XSI}\" xsi:type=\"aggregateState\"><availability>{avail}</availability>"
            ));
            if let Some(s) = info
                && (s.token.is_some() || !s.custom.is_empty())
            {
                out.push_str("<activity");
                if let Some(t) = &s.token {
                    out.push_str(&format!(" token=\"{}\"", esc(t)));
                }
                out.push('>');
                for (lcid, text) in &s.custom {
                    out.push_str(&format!("<custom LCID=\"{lcid}\">{}</custom>", esc(text)));
                }
                out.push_str("</activity>");
            }
            out.push_str("</state></category>");
        }
        if want("note") && !blocked {
            let note = [200u32, 300, 400, 100].iter().find_map(|c| {
                user.pubs
                    .iter()
                    .filter(|((cat, _, cont), _)| cat == "note" && cont == c)
                    .find_map(|(_, p)| parse_note(&p.xml).map(|n| (n, p)))
            });
            if let Some(((ty, text), p)) = note {
                out.push_str(&format!(
                    "<category name=\"note\" instance=\"0\" publishTime=\"{}\"><note xmlns=\"{NS_NOTE}\"><body type=\"{}\" uri=\"\">{}</body></note></category>",
                    esc(&p.publish_time),
                    esc(&ty),
                    esc(&text)
                ));
            }
        }
        out.push_str("</categories>");
        out
    }

    /// A roamingData document for `aor`: `sections` = categories,
    /// containers, subscribers; `only` limits the categories.
    fn roaming_self_doc(
        &self,
        aor: &str,
        sections: [bool; 3],
        only: Option<&BTreeSet<String>>,
    ) -> String {
        let empty = UserData::default();
        let user = self.users.get(aor).unwrap_or(&empty);
        let mut out = format!(
            "<roamingData xmlns=\"http://schemas.microsoft.com/2006/09/sip/roaming-self\" xmlns:xsi=\"{NS_XSI}\">"
        );
        if sections[0] {
            out.push_str(&format!(
                "<categories xmlns=\"{NS_CATEGORIES}\" uri=\"{}\">",
                esc(aor)
            ));
            for ((cat, inst, cont), p) in &user.pubs {
                if only.is_some_and(|o| !o.contains(cat)) {
                    continue;
                }
                out.push_str(&format!(
                    "<category name=\"{}\" instance=\"{inst}\" publishTime=\"{}\" container=\"{cont}\" version=\"{}\" expireType=\"{}\">{}</category>",
                    esc(cat),
                    esc(&p.publish_time),
                    p.version,
                    esc(&p.expire_type),
                    p.xml
                ));
            }
            out.push_str("</categories>");
        }
        if sections[1] {
            out.push_str(
                "<containers xmlns=\"http://schemas.microsoft.com/2006/09/sip/container-management\">",
            );
            for (id, c) in &user.containers {
                out.push_str(&format!(
                    "<container id=\"{id}\" version=\"{}\">",
                    c.version
                ));
                for (k, v) in &c.members {
                    out.push_str(&format!("<member type=\"{}\"", esc(k)));
                    if let Some(v) = v {
                        out.push_str(&format!(" value=\"{}\"", esc(v)));
                    }
                    out.push_str("/>");
                }
                out.push_str("</container>");
            }
            out.push_str("</containers>");
        }
        if sections[2] {
            out.push_str(
                "<subscribers xmlns=\"http://schemas.microsoft.com/2006/09/sip/presence-subscribers\">",
            );
            let watchers: BTreeSet<&str> = self
                .subs
                .iter()
                .filter(|s| {
                    matches!(s.kind, SubKind::Presence { .. })
                        && s.owner != aor
                        && s.targets.iter().any(|t| t == aor)
                })
                .map(|s| s.owner.as_str())
                .collect();
            for w in watchers {
                let u = bare(w);
                out.push_str(&format!(
                    "<subscriber user=\"{}\" displayName=\"{}\" acknowledged=\"{}\" type=\"sameEnterprise\"/>",
                    esc(u),
                    esc(user_part(w)),
                    user.acknowledged.contains(u)
                ));
            }
            out.push_str("</subscribers>");
        }
        out.push_str("</roamingData>");
        out
    }

    fn contact_list_doc(&mut self, aor: &str) -> String {
        self.contacts_mut(aor).to_xml()
    }

    /// `aor`'s contact list, created with the default group on first use.
    fn contacts_mut(&mut self, aor: &str) -> &mut ContactList {
        let l = &mut self.users.entry(aor.to_owned()).or_default().contacts;
        if l.delta_num.is_none() {
            *l = default_contact_list();
        }
        l
    }

    /// A contact-management SOAP request (MS-SIP 3.7.4): checked against
    /// the list's `deltaNum` (409 with a `WrongDelta` fault when stale),
    /// applied, answered (`addGroup` with the new id), and sent as a
    /// `contactDelta` to every roaming-contacts subscription of the user.
    fn contact_change(
        &mut self,
        req: &Message,
        sender: &str,
        now: Instant,
    ) -> Result<PresenceReply, PresenceError> {
        let (op, delta) =
            parse_contact_soap(req.body()).map_err(|e| PresenceError::BadBody(e.to_string()))?;
        let list = self.contacts_mut(sender);
        let cur = list.delta_num.unwrap_or(0);
        if delta != cur {
            return Ok(self.wrong_delta(req, "Contact list", &[(1, delta, cur)]));
        }
        let mut d = ContactDelta {
            delta_num: cur + 1,
            prev_delta_num: Some(cur),
            ..ContactDelta::default()
        };
        let mut new_group = None;
        if let ContactOp::ModifyGroup { id, .. } | ContactOp::DeleteGroup { id } = &op
            && list.group(*id).is_some_and(|g| &*g.name == DEFAULT_GROUP)
        {
            return Err(PresenceError::Forbidden(format!(
                "group {id} is the default group"
            )));
        }
        match &op {
            ContactOp::SetContact { uri, groups, .. } => {
                if !groups.iter().all(|g| list.group(*g).is_some()) {
                    return Err(PresenceError::BadBody(
                        "setContact names an unknown group".into(),
                    ));
                }
                op.apply_to(list, None);
                if let Some(c) = list.contact(uri) {
                    d.contacts.push(c.clone());
                }
            }
            ContactOp::DeleteContact { uri } => {
                if list.contact(uri).is_none() {
                    return Err(PresenceError::BadBody(format!("{uri} is not in the list")));
                }
                d.deleted_contacts.push(with_sip(uri));
                op.apply_to(list, None);
            }
            ContactOp::AddGroup { name } => {
                if list.group_named(name).is_some() {
                    return Err(PresenceError::BadBody(format!("group {name:?} exists")));
                }
                let id = list.groups.iter().map(|g| g.id).max().unwrap_or(0) + 1;
                new_group = Some(id);
                op.apply_to(list, Some(id));
                d.groups.push(Group {
                    id,
                    name: name.as_str().into(),
                });
            }
            ContactOp::ModifyGroup { id, name } => {
                if list.group(*id).is_none() {
                    return Err(PresenceError::BadBody(format!("no group {id}")));
                }
                op.apply_to(list, None);
                d.groups.push(Group {
                    id: *id,
                    name: name.as_str().into(),
                });
            }
            ContactOp::DeleteGroup { id } => {
                if list.group(*id).is_none() {
                    return Err(PresenceError::BadBody(format!("no group {id}")));
                }
                // Members leave the group first, as OCS reports it.
                for c in &list.contacts {
                    if c.groups.contains(id) {
                        let mut c = c.clone();
                        c.groups.retain(|g| g != id);
                        d.contacts.push(c);
                    }
                }
                op.apply_to(list, None);
                d.deleted_groups.push(*id);
            }
        }
        list.delta_num = Some(cur + 1);
        let mut r = self.ok(req);
        if let Some(id) = new_group {
            r.set_body(SOAP_CT, add_group_response(id));
        }
        let idx: Vec<usize> = self
            .owned_by(sender)
            .into_iter()
            .filter(|&i| {
                self.subs[i].kind == SubKind::RoamingContacts && self.subs[i].expires_at > now
            })
            .collect();
        let body = d.to_xml();
        let notify = idx
            .into_iter()
            .map(|i| self.dialog_request(i, ROAMING_CONTACTS_CT, body.clone().into_bytes(), now))
            .collect();
        Ok(PresenceReply {
            response: r,
            notify,
        })
    }

    // ----- notifications -----------------------------------------------

    /// An in-dialog notification of subscription `i`.
    fn dialog_request(
        &mut self,
        i: usize,
        content_type: &str,
        body: Vec<u8>,
        now: Instant,
    ) -> Outgoing {
        let s = &mut self.subs[i];
        let method = if s.benotify {
            Method::Benotify
        } else {
            Method::Notify
        };
        let mut m = s.dialog.request(method, None);
        m.push_header(HeaderName::MaxForwards, "70");
        m.push_header(HeaderName::Contact, SERVER_CONTACT);
        m.push_header(HeaderName::Event, s.event.clone());
        let left = s.expires_at.saturating_duration_since(now).as_secs();
        m.push_header(
            HeaderName::SubscriptionState,
            format!("active;expires={left}"),
        );
        if matches!(s.kind, SubKind::Presence { batched: true }) {
            m.push_header(HeaderName::Require, "eventlist");
        }
        m.set_body(content_type, body);
        Outgoing {
            to: s.owner.clone(),
            request: m,
        }
    }

    fn roaming_self_notify(
        &mut self,
        aor: &str,
        section: Section<'_>,
        now: Instant,
    ) -> Vec<Outgoing> {
        let (sections, only) = match section {
            Section::Categories(c) => ([true, false, false], Some(c)),
            Section::Containers => ([false, true, false], None),
            Section::Subscribers => ([false, false, true], None),
        };
        let idx: Vec<usize> = self
            .owned_by(aor)
            .into_iter()
            .filter(|&i| self.subs[i].kind == SubKind::RoamingSelf && self.subs[i].expires_at > now)
            .collect();
        let mut out = Vec::new();
        for i in idx {
            let body = self.roaming_self_doc(aor, sections, only);
            out.push(self.dialog_request(i, ROAMING_SELF_CT, body.into_bytes(), now));
        }
        out
    }

    /// Tells every watcher of `target` what they now see, where it changed.
    fn notify_watchers(
        &mut self,
        target: &str,
        registered: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for i in 0..self.subs.len() {
            let s = &self.subs[i];
            if !matches!(s.kind, SubKind::Presence { .. })
                || s.expires_at <= now
                || !s.targets.iter().any(|t| t == target)
            {
                continue;
            }
            let doc = self.categories_doc(target, &s.owner, &s.categories, registered);
            if s.last.get(target) == Some(&doc) {
                continue;
            }
            let t = [target.to_owned()];
            let (ct, body) = self.presence_body(i, &t, registered);
            out.push(self.dialog_request(i, &ct, body, now));
        }
        out
    }
}

/// Which roaming-self section a change touched.
#[derive(Debug, Clone, Copy)]
enum Section<'a> {
    Categories(&'a BTreeSet<String>),
    Containers,
    Subscribers,
}

fn with_body(mut r: Message, ct: &str, body: Vec<u8>) -> Message {
    r.set_body(ct, body);
    r
}

/// The roaming types a roamingList asks for: categories, containers,
/// subscribers.
fn roaming_list(body: &[u8]) -> Result<[bool; 3], PresenceError> {
    let text = decode(body).map_err(|e| PresenceError::BadBody(e.to_string()))?;
    let doc = parse_doc(&text, "roamingList")?;
    let mut s = [false; 3];
    for r in doc.children(doc.root()) {
        match doc.node(r).attr("type").as_deref() {
            Some("categories") => s[0] = true,
            Some("containers") => s[1] = true,
            Some("subscribers") => s[2] = true,
            _ => {}
        }
    }
    Ok(s)
}

/// (watched URIs, categories) of a `batchSub` (T9).
fn parse_batch(body: &[u8]) -> Result<(Vec<String>, Vec<String>), PresenceError> {
    let text = decode(body).map_err(|e| PresenceError::BadBody(e.to_string()))?;
    let doc = parse_doc(&text, "batchSub")?;
    let mut targets = Vec::new();
    let mut cats = Vec::new();
    for a in doc.children(doc.root()) {
        if doc.node(a).local() != "action" {
            continue;
        }
        if let Some(l) = doc.child(a, "adhocList") {
            for r in doc.children(l) {
                if doc.node(r).local() != "resource" {
                    continue;
                }
                let uri = doc
                    .node(r)
                    .attr("uri")
                    .ok_or_else(|| PresenceError::BadBody("resource: uri is missing".into()))?;
                let n = normalize(&uri).ok_or_else(|| {
                    PresenceError::BadBody(format!("resource: {uri:?} is not a user URI"))
                })?;
                if !targets.contains(&n) {
                    targets.push(n);
                }
            }
        }
        if let Some(l) = doc.child(a, "categoryList") {
            for c in doc.children(l) {
                if let Some(name) = doc.node(c).attr("name") {
                    cats.push(name.into_owned());
                }
            }
        }
    }
    if targets.is_empty() {
        return Err(PresenceError::BadBody("batchSub lists no resource".into()));
    }
    Ok((targets, cats))
}

fn provisioning_doc(abs_url: &str, uc_policy: &[(String, String)]) -> String {
    let abs = esc(abs_url);
    let extra: String = uc_policy
        .iter()
        .map(|(n, v)| format!("<property name=\"{}\">{}</property>", esc(n), esc(v)))
        .collect();
    [
        "<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification\">",
        "<provisionGroup name=\"ServerConfiguration\">",
        &format!("<absInternalServerUrl>{abs}/int</absInternalServerUrl>"),
        &format!("<absExternalServerUrl>{abs}/ext</absExternalServerUrl>"),
        "<focusFactoryUri>sip:focus@ocs-sim.invalid</focusFactoryUri>",
        "</provisionGroup>",
        "<provisionGroup name=\"meetingPolicy\"><instance>",
        "<property name=\"AllowIPAudio\">true</property>",
        "<property name=\"AllowIPVideo\">true</property>",
        "</instance></provisionGroup>",
        "<provisionGroup name=\"ucPolicy\"><instance>",
        "<property name=\"EnableCallTransfer\">true</property>",
        "<property name=\"EnableDelegation\">true</property>",
        &extra,
        "</instance></provisionGroup>",
        "</provisionGroupList>",
    ]
    .concat()
}

// ----- the server's side -------------------------------------------------

impl SimServer {
    /// Sets the roaming contact list the server hands `aor` (a
    /// `sip:user@domain` URI): (contact uri, name, group) triples; group
    /// `""` means the default group "General".
    pub fn set_contacts(&mut self, aor: &str, contacts: &[(&str, &str, &str)]) {
        self.presence.set_contacts(aor, contacts);
    }

    /// The address-book base URL in-band provisioning hands out
    /// (`{url}/int` and `{url}/ext`).
    pub fn set_address_book_url(&mut self, url: &str) {
        self.presence.set_address_book_url(url);
    }

    /// Adds a ucPolicy property (e.g. `DisableIM` = `true`) to what in-band
    /// provisioning hands out from now on.
    pub fn set_uc_policy(&mut self, name: &str, value: &str) {
        let p = &mut self.presence.uc_policy;
        p.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        p.push((name.to_owned(), value.to_owned()));
    }

    /// Answers every category publication (SERVICE with
    /// `application/msrtc-category-publish+xml`) with `status` from now on
    /// (e.g. 403; a 409 carries no fault, so the client cannot recover);
    /// `None` accepts them again.
    pub fn refuse_publications(&mut self, status: Option<u16>) {
        self.presence.refuse_publications = status;
    }

    /// Stops handing out a ucPolicy property.
    pub fn remove_uc_policy(&mut self, name: &str) {
        self.presence
            .uc_policy
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The presence service, for inspection.
    pub fn presence(&self) -> &PresenceServer {
        &self.presence
    }

    /// SERVICE and SUBSCRIBE from a signed-in user: checked, answered in a
    /// server transaction, notifications sent. False when `m` is not one.
    pub(super) fn handle_presence(
        &mut self,
        peer: Peer,
        m: &Message,
        rel: Reliability,
        now: Instant,
    ) -> bool {
        if !PresenceServer::is_presence_request(m) {
            return false;
        }
        let Some(sender) = sender_aor(m) else {
            return false;
        };
        if self.registrar.binding(&sender, now).is_none() {
            return false;
        }
        let user = user_part(&sender).to_owned();
        let signed_by = match self.registrar.handle_request(m, now) {
            RegistrarOutcome::Pass { signed_by } => signed_by,
            RegistrarOutcome::Respond(r) => {
                self.out.push_back((peer, r.to_bytes()));
                return true;
            }
        };
        let refuse = match &signed_by {
            None => self.registrar.auth_mode().is_signed(),
            Some(u) => !u.eq_ignore_ascii_case(&user),
        };
        if refuse {
            if let Ok(r) = builder::response(m, 401, None, Some(&self.rng.tag())) {
                self.out.push_back((peer, r.to_bytes()));
            }
            return true;
        }
        let incoming = self.tx.handle_message(m.clone(), rel, now);
        if let Ok(Incoming::Overloaded(req)) = &incoming {
            self.overloaded(peer, req);
        }
        if let Ok(Incoming::Request { id, request }) = incoming {
            self.peers.insert(id, peer);
            let registrar = &self.registrar;
            let reply = self.presence.handle_request(
                &request,
                &sender,
                &|a| registrar.binding(a, now).is_some(),
                now,
            );
            let mut resp = reply.response;
            self.registrar.sign_for(&user, &mut resp);
            self.tx.send_response(id, &resp, now);
            self.send_presence(reply.notify, now);
        }
        true
    }

    /// `aor` signed out (or was signed out): tell its watchers.
    pub(super) fn presence_signed_out(&mut self, aor: &str, now: Instant) {
        let registrar = &self.registrar;
        let outs =
            self.presence
                .handle_signed_out(aor, &|a| registrar.binding(a, now).is_some(), now);
        self.send_presence(outs, now);
    }

    fn send_presence(&mut self, outs: Vec<Outgoing>, now: Instant) {
        for o in outs {
            let Some(&(peer, rel)) = self.user_peer.get(&o.to) else {
                continue;
            };
            if self.registrar.binding(&o.to, now).is_none() {
                continue;
            }
            let benotify = o.is_benotify();
            let mut req = o.request;
            let transport = if rel == Reliability::Reliable {
                "TCP"
            } else {
                "UDP"
            };
            req.insert_header(
                0,
                HeaderName::Via,
                format!(
                    "SIP/2.0/{transport} ocs-sim.invalid;branch={}",
                    self.rng.branch()
                ),
            );
            self.registrar.sign_for(user_part(&o.to), &mut req);
            if benotify {
                self.out.push_back((peer, req.to_bytes()));
            } else if let Ok(id) = self.tx.send_request(req, rel, now) {
                self.peers.insert(id, peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::DigestChallenge;
    use crate::presence::{
        ParseOptions, Presence, State, parse_contact_list, parse_fault, parse_notify_body,
        parse_roaming_self,
    };
    use crate::sim::AuthMode;
    use crate::sim::{Registrar, RegistrarConfig};
    use std::time::Duration;

    const T11: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="device" instance="3368706954" container="2" version="0" expireType="endpoint"><device xmlns="http://schemas.microsoft.com/2006/09/sip/device" endpointId="34d859db-6585-5f91-a3b4-de853c15347d"><capabilities preferred="false" uri="sip:alice@contoso.com"><text capture="true" render="true" publish="false"/><gifInk capture="false" render="true" publish="false"/><isfInk capture="false" render="true" publish="false"/></capabilities><timezone>00:00:00+01:00</timezone><machineName>HOST1</machineName></device></publication><publication categoryName="state" instance="1015850552" container="2" version="0" expireType="endpoint"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="false" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="machineState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="1015850552" container="3" version="0" expireType="endpoint"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="false" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="machineState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="2" version="0" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="3" version="0" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>3500</availability><endpointLocation/></state></publication></publications></publish>"#;

    /// T12 with the versions as placeholders: {N} note, {U} userState.
    const T12: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="note" instance="0" container="200" version="{N}" expireType="static"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">In the lab today</body></note></publication><publication categoryName="state" instance="536870912" container="2" version="{U}" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>6500</availability><activity><custom LCID="1033">In a Customer Seminar</custom></activity><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="3" version="{U}" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>6500</availability><activity><custom LCID="1033">In a Customer Seminar</custom></activity><endpointLocation/></state></publication></publications></publish>"#;

    const T13: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="state" instance="536870912" container="2" version="{U}" expireType="static" expires="0"/><publication categoryName="state" instance="536870912" container="3" version="{U}" expireType="static" expires="0"/></publications></publish>"#;

    const T14_MEMBERS: &str = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="200" version="0"><member action="add" type="sameEnterprise"/></container><container id="100" version="0"><member action="add" type="federated"/></container></setContainerMembers>"#;

    const T14_SUBSCRIBERS: &str = r#"<setSubscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers"><subscriber user="bob@contoso.com" acknowledged="true"/></setSubscribers>"#;

    const ROAMING_LIST: &str = r#"<roamingList xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self"><roaming type="categories"/><roaming type="containers"/><roaming type="subscribers"/></roamingList>"#;

    /// T9, watcher `{W}`, watched `{R}`.
    const T9: &str = "<batchSub xmlns=\"http://schemas.microsoft.com/2006/01/sip/batch-subscribe\" uri=\"sip:{W}@contoso.com\" name=\"\">\n<action name=\"subscribe\" id=\"63792024\">\n<adhocList>\n<resource uri=\"sip:{R}@contoso.com\"/>\n</adhocList>\n<categoryList xmlns=\"http://schemas.microsoft.com/2006/09/sip/categorylist\">\n<category name=\"calendarData\"/>\n<category name=\"contactCard\"/>\n<category name=\"note\"/>\n<category name=\"state\"/>\n</categoryList>\n</action>\n</batchSub>";

    /// The simulated clock's origin: the one clock read, which the
    /// server never makes itself.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn peer_of(user: &str) -> Peer {
        match user {
            "alice" => "10.0.0.1:50001".parse().expect("addr"),
            "bob" => "10.0.0.2:50002".parse().expect("addr"),
            _ => "10.0.0.3:50003".parse().expect("addr"),
        }
    }

    /// A dialog as the client sees it: Call-ID, local tag, remote tag.
    #[derive(Debug, Clone)]
    struct ClientDialog {
        call_id: String,
        to_tag: String,
        user: String,
        cseq: u32,
    }

    struct World {
        s: SimServer,
        now: Instant,
        n: u32,
    }

    impl World {
        fn new() -> World {
            let mut cfg = RegistrarConfig::ocs("contoso.com");
            cfg.auth = AuthMode::Digest;
            let mut r = Registrar::new(cfg, Rng::from_seed(3), [9; 32]);
            for u in ["alice", "bob", "carol"] {
                r.add_user(u, "CONTOSO", &format!("{u}pw"));
            }
            let mut w = World {
                s: SimServer::new(r, Rng::from_seed(4)),
                now: origin(),
                n: 0,
            };
            w.now += Duration::from_secs(1);
            w
        }

        fn send(&mut self, user: &str, bytes: String) -> Vec<(Peer, Message)> {
            self.now += Duration::from_millis(10);
            self.s
                .handle_stream(peer_of(user), bytes.as_bytes(), self.now);
            let mut out = Vec::new();
            while let Some((p, b)) = self.s.poll_transmit() {
                out.push((p, Message::parse(&b).expect("server output parses")));
            }
            out
        }

        #[allow(clippy::too_many_arguments)]
        fn request(
            &mut self,
            method: &str,
            user: &str,
            to: &str,
            dialog: Option<&ClientDialog>,
            headers: &[(&str, &str)],
            ct: &str,
            body: &str,
        ) -> String {
            self.n += 1;
            let n = self.n;
            let (call_id, to_tag, cseq) = match dialog {
                Some(d) => (d.call_id.clone(), format!(";tag={}", d.to_tag), d.cseq),
                None => (format!("call-{n}"), String::new(), 1),
            };
            let mut m = format!(
                "{method} {to} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK{n}x\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@contoso.com>;tag=from{user};epid=ep{user}\r\nTo: <{to}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{user}@{};transport=tcp>\r\n",
                peer_of(user),
                peer_of(user)
            );
            for (k, v) in headers {
                m.push_str(&format!("{k}: {v}\r\n"));
            }
            if !ct.is_empty() {
                m.push_str(&format!("Content-Type: {ct}\r\n"));
            }
            m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            m
        }

        /// Registers (Digest) and returns what the authenticated REGISTER
        /// caused.
        fn register(&mut self, user: &str, expires: u32) -> Vec<(Peer, Message)> {
            let r = self.request(
                "REGISTER",
                user,
                "sip:contoso.com",
                None,
                &[("Expires", &expires.to_string())],
                "",
                "",
            );
            let out = self.send(user, r);
            let ch = out[0]
                .1
                .header(HeaderName::ProxyAuthenticate)
                .expect("challenge");
            let auth = DigestChallenge::parse(ch)
                .expect("challenge parses")
                .respond(
                    user,
                    &format!("{user}pw"),
                    "REGISTER",
                    "sip:contoso.com",
                    "cn",
                    1,
                )
                .expect("answers");
            let r = self.request(
                "REGISTER",
                user,
                "sip:contoso.com",
                None,
                &[
                    ("Expires", &expires.to_string()),
                    ("Proxy-Authorization", &auth.to_header_value()),
                ],
                "",
                "",
            );
            let out = self.send(user, r);
            let ok = out
                .iter()
                .find(|(p, m)| *p == peer_of(user) && m.status().is_some())
                .expect("a response");
            assert_eq!(ok.1.status(), Some(200), "{:?}", ok.1.start_line());
            out
        }

        fn service(&mut self, user: &str, ct: &str, body: &str) -> Vec<(Peer, Message)> {
            let uri = format!("sip:{user}@contoso.com");
            let r = self.request("SERVICE", user, &uri, None, &[], ct, body);
            self.send(user, r)
        }

        fn publish(&mut self, user: &str, body: &str) -> Vec<(Peer, Message)> {
            self.service(user, PUBLISH_CT, body)
        }

        /// Sends a SUBSCRIBE; returns the 200 (asserted) and its dialog.
        fn subscribe(
            &mut self,
            user: &str,
            to: &str,
            event: &str,
            extra: &[(&str, &str)],
            ct: &str,
            body: &str,
        ) -> (Message, ClientDialog, Vec<(Peer, Message)>) {
            let mut headers = vec![
                ("Event", event),
                ("Supported", "ms-benotify"),
                ("Proxy-Require", "ms-benotify"),
                ("Supported", "ms-piggyback-first-notify"),
            ];
            headers.extend_from_slice(extra);
            let r = self.request("SUBSCRIBE", user, to, None, &headers, ct, body);
            let call_id = format!("call-{}", self.n);
            let out = self.send(user, r);
            let ok = response_to(&out, user).clone();
            assert_eq!(ok.status(), Some(200), "{}", ok.start_line());
            let to_tag = ok.to().expect("to").tag().expect("to tag").to_owned();
            (
                ok,
                ClientDialog {
                    call_id,
                    to_tag,
                    user: to.to_owned(),
                    cseq: 2,
                },
                out,
            )
        }

        fn batch_subscribe(&mut self, watcher: &str, watched: &str) -> (Message, ClientDialog) {
            let body = T9.replace("{W}", watcher).replace("{R}", watched);
            let me = format!("sip:{watcher}@contoso.com");
            let (ok, d, _) = self.subscribe(
                watcher,
                &me,
                "presence",
                &[
                    ("Require", "adhoclist, categoryList"),
                    ("Supported", "eventlist"),
                    (
                        "Accept",
                        "application/msrtc-event-categories+xml, application/rlmi+xml, multipart/related",
                    ),
                ],
                BATCH_CT,
                &body,
            );
            (ok, d)
        }
    }

    fn response_to<'a>(out: &'a [(Peer, Message)], user: &str) -> &'a Message {
        &out.iter()
            .find(|(p, m)| *p == peer_of(user) && m.is_response())
            .expect("a response")
            .1
    }

    fn notifies_to<'a>(out: &'a [(Peer, Message)], user: &str) -> Vec<&'a Message> {
        out.iter()
            .filter(|(p, m)| {
                *p == peer_of(user) && matches!(m.method(), Some(Method::Benotify | Method::Notify))
            })
            .map(|(_, m)| m)
            .collect()
    }

    fn presence_of(m: &Message) -> Presence {
        let ct = m.header(HeaderName::ContentType).unwrap_or("");
        let mut u = parse_notify_body(m.body(), ct, &ParseOptions::default()).expect("parses");
        assert_eq!(u.len(), 1, "one resource");
        u.remove(0).presence.expect("a presence part")
    }

    fn t12(note: u32, user_state: u32) -> String {
        T12.replace("{N}", &note.to_string())
            .replace("{U}", &user_state.to_string())
    }

    #[test]
    fn roaming_self_piggybacks_versions_and_follows_publishes() {
        let mut w = World::new();
        w.register("alice", 3600);
        let out = w.publish("alice", T11);
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        let (ok, _, _) = w.subscribe(
            "alice",
            "sip:alice@contoso.com",
            "vnd-microsoft-roaming-self",
            &[("Accept", ROAMING_SELF_CT)],
            ROAMING_SELF_CT,
            ROAMING_LIST,
        );
        assert_eq!(ok.header("ms-piggyback-cseq"), Some("1"));
        assert_eq!(ok.header(HeaderName::ContentType), Some(ROAMING_SELF_CT));
        let r = parse_roaming_self(ok.body()).expect("roamingData parses");
        assert!(r.has_categories && r.has_containers && r.has_subscribers);
        assert_eq!(r.publications.len(), 5);
        assert_eq!(r.version_of("state", 536_870_912, 2), 1);
        assert_eq!(r.version_of("device", 3_368_706_954, 2), 1);
        assert_eq!(r.version_of("note", 0, 200), 0);

        // A later publish comes back as a BENOTIFY in the dialog.
        let out = w.publish("alice", &t12(0, 1));
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        let n = notifies_to(&out, "alice");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].method(), Some(&Method::Benotify));
        assert_eq!(
            n[0].header(HeaderName::Event),
            Some("vnd-microsoft-roaming-self")
        );
        assert_eq!(n[0].cseq().expect("cseq").seq, 2);
        assert!(n[0].header(HeaderName::Via).is_some());
        let r = parse_roaming_self(n[0].body()).expect("parses");
        assert_eq!(r.version_of("state", 536_870_912, 3), 2);
        assert_eq!(r.version_of("note", 0, 200), 1);
        assert!(!r.has_containers);

        // Container membership (T14) goes the same way.
        let out = w.service("alice", CONTAINERS_CT, T14_MEMBERS);
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        let n = notifies_to(&out, "alice");
        let r = parse_roaming_self(n[0].body()).expect("parses");
        assert_eq!(
            r.container(200).expect("200").members[0].kind.as_ref(),
            "sameEnterprise"
        );
        assert_eq!(r.container(100).expect("100").version, 1);
        let out = w.service("alice", SUBSCRIBERS_CT, T14_SUBSCRIBERS);
        assert_eq!(response_to(&out, "alice").status(), Some(200));
    }

    #[test]
    fn stale_version_gets_wrong_delta() {
        let mut w = World::new();
        w.register("alice", 3600);
        w.publish("alice", T11);
        // T12 as written: note at 3 (server: 0), userState at 7 (server: 1).
        let out = w.publish("alice", &t12(3, 7));
        let r = response_to(&out, "alice");
        assert_eq!(r.status(), Some(409));
        assert_eq!(r.header(HeaderName::ContentType), Some(FAULT_CT));
        let f = parse_fault(r.body()).expect("fault parses");
        assert!(f.is_wrong_delta());
        let ops: Vec<(u32, Option<u32>)> = f
            .operations
            .iter()
            .map(|o| (o.index, o.cur_version))
            .collect();
        assert_eq!(ops, [(1, Some(0)), (2, Some(1)), (3, Some(1))]);
        // Nothing was applied; republishing with the right versions works.
        assert_eq!(
            w.s.presence()
                .version("sip:alice@contoso.com", "note", 0, 200),
            0
        );
        let out = w.publish("alice", &t12(0, 1));
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        assert_eq!(
            w.s.presence()
                .version("sip:alice@contoso.com", "state", 536_870_912, 2),
            2
        );
    }

    #[test]
    fn watcher_sees_busy_note_reset_and_stops_after_unsubscribe() {
        let mut w = World::new();
        w.register("alice", 3600);
        w.register("bob", 3600);
        w.publish("alice", T11);
        let (ok, mut d) = w.batch_subscribe("bob", "alice");
        assert_eq!(ok.header("ms-piggyback-cseq"), Some("1"));
        let first = presence_of(&ok);
        assert_eq!(&*first.uri, "sip:alice@contoso.com");
        assert_eq!(first.availability.map(|a| a.0), Some(3500));
        assert_eq!(first.state(), State::Online);
        assert_eq!(first.display_name(), Some("alice"));

        let out = w.publish("alice", &t12(0, 1));
        let n = notifies_to(&out, "bob");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].method(), Some(&Method::Benotify));
        assert_eq!(n[0].header(HeaderName::Event), Some("presence"));
        assert_eq!(n[0].call_id().expect("call-id"), d.call_id);
        let p = presence_of(n[0]);
        assert_eq!(p.availability.map(|a| a.0), Some(6500));
        assert_eq!(p.state(), State::Busy);
        assert_eq!(p.custom_text(1033), Some("In a Customer Seminar"));
        assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("In the lab today"));

        // Deleting the userState falls back to the machine state.
        let out = w.publish("alice", &T13.replace("{U}", "2"));
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        let n = notifies_to(&out, "bob");
        let p = presence_of(n[0]);
        assert_eq!(p.availability.map(|a| a.0), Some(3500));
        assert!(p.custom.is_empty());
        assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("In the lab today"));

        // A publish that changes nothing watchers see sends them nothing.
        let dev = T11
            .split("<publication categoryName=\"state\"")
            .next()
            .expect("device part")
            .replace("version=\"0\"", "version=\"1\"")
            + "</publications></publish>";
        let out = w.publish("alice", &dev);
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        assert!(notifies_to(&out, "bob").is_empty());

        // Unsubscribe: 200 terminated, then silence.
        let me = "sip:bob@contoso.com".to_owned();
        d.user = me.clone();
        let r = w.request(
            "SUBSCRIBE",
            "bob",
            &me,
            Some(&d),
            &[("Event", "presence"), ("Expires", "0")],
            "",
            "",
        );
        let out = w.send("bob", r);
        let r = response_to(&out, "bob");
        assert_eq!(r.status(), Some(200));
        assert_eq!(
            r.header(HeaderName::SubscriptionState),
            Some("terminated;expires=0")
        );
        let out = w.publish("alice", &t12(1, 0));
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        assert!(notifies_to(&out, "bob").is_empty());
        d.cseq += 1;
        let r = w.request(
            "SUBSCRIBE",
            "bob",
            &me,
            Some(&d),
            &[("Event", "presence")],
            "",
            "",
        );
        let out = w.send("bob", r);
        assert_eq!(response_to(&out, "bob").status(), Some(481));
    }

    #[test]
    fn offline_when_unregistered_and_on_sign_out() {
        let mut w = World::new();
        w.register("alice", 3600);
        w.register("bob", 3600);
        // Carol never signed in: a single-contact subscription says offline.
        let (ok, _, _) = w.subscribe(
            "bob",
            "sip:carol@contoso.com",
            "presence",
            &[("Accept", CATEGORIES_CT)],
            "",
            "",
        );
        assert_eq!(ok.header(HeaderName::ContentType), Some(CATEGORIES_CT));
        let p = presence_of(&ok);
        assert_eq!(p.availability.map(|a| a.0), Some(OFFLINE));
        assert_eq!(p.state(), State::Offline);

        w.publish("alice", T11);
        w.publish("alice", &t12(0, 1));
        let (ok, _) = w.batch_subscribe("bob", "alice");
        assert_eq!(presence_of(&ok).state(), State::Busy);
        // Alice signs out: bob is told she is offline, her endpoint
        // publications lapse and her static ones stay.
        let out = w.register("alice", 0);
        let n = notifies_to(&out, "bob");
        assert_eq!(n.len(), 1);
        let p = presence_of(n[0]);
        assert_eq!(p.state(), State::Offline);
        assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("In the lab today"));
        let pres = w.s.presence();
        assert_eq!(
            pres.version("sip:alice@contoso.com", "device", 3_368_706_954, 2),
            0
        );
        assert_eq!(
            pres.version("sip:alice@contoso.com", "state", 536_870_912, 2),
            2
        );
        // Signing in again with the static userState still there: the
        // next publish brings bob busy again.
        w.register("alice", 3600);
        let out = w.publish(
            "alice",
            &(T11
                .split("<publication categoryName=\"state\" instance=\"536870912\"")
                .next()
                .expect("head")
                .to_owned()
                + "</publications></publish>"),
        );
        assert_eq!(response_to(&out, "alice").status(), Some(200));
        let n = notifies_to(&out, "bob");
        assert_eq!(presence_of(n[0]).state(), State::Busy);
    }

    #[test]
    fn self_subscriptions_and_refusals() {
        let mut w = World::new();
        w.register("alice", 3600);
        w.s.set_contacts(
            "sip:alice@contoso.com",
            &[
                ("sip:bob@contoso.com", "Bob", ""),
                ("sip:carol@contoso.com", "Carol", "Team"),
            ],
        );
        let (ok, _, _) = w.subscribe(
            "alice",
            "sip:alice@contoso.com",
            "vnd-microsoft-roaming-contacts",
            &[("Accept", ROAMING_CONTACTS_CT)],
            "",
            "",
        );
        let l = parse_contact_list(ok.body()).expect("contactList parses");
        assert_eq!(l.groups.len(), 2);
        assert_eq!(&*l.groups[0].name, "~");
        assert_eq!(&*l.contacts[1].uri, "sip:carol@contoso.com");
        assert_eq!(l.contacts[1].groups, [2]);

        let (ok, _, _) = w.subscribe(
            "alice",
            "sip:alice@contoso.com",
            "vnd-microsoft-provisioning-v2",
            &[("Expires", "0")],
            PROVISIONING_CT,
            crate::presence::PROVISIONING_V2_BODY,
        );
        assert_eq!(
            ok.header(HeaderName::SubscriptionState),
            Some("terminated;expires=0")
        );
        let body = String::from_utf8_lossy(ok.body()).into_owned();
        assert!(body.contains("<absInternalServerUrl>http://127.0.0.1/abs/int<"));
        assert!(body.contains("name=\"ucPolicy\""));

        let out = w.publish(
            "alice",
            "<publish><publications><publication/></publications>",
        );
        assert_eq!(response_to(&out, "alice").status(), Some(400));
        let out = w.publish(
            "alice",
            r#"<publish><publications uri="sip:alice@contoso.com"><publication categoryName="state" instance="1" container="2" version="0"><state><availability>busy</availability></state></publication></publications></publish>"#,
        );
        let r = response_to(&out, "alice");
        assert_eq!(r.status(), Some(400));
        assert!(
            r.reason().unwrap_or("").contains("availability"),
            "{:?}",
            r.reason()
        );
        let out = w.publish(
            "alice",
            &T11.replace(
                "uri=\"sip:alice@contoso.com\"><publication",
                "uri=\"sip:bob@contoso.com\"><publication",
            ),
        );
        assert_eq!(response_to(&out, "alice").status(), Some(403));
        let out = w.service("alice", "text/plain", "hi");
        assert_eq!(response_to(&out, "alice").status(), Some(415));
        let r = w.request(
            "SUBSCRIBE",
            "alice",
            "sip:alice@contoso.com",
            None,
            &[("Event", "presence.wpending")],
            "",
            "",
        );
        let out = w.send("alice", r);
        assert_eq!(response_to(&out, "alice").status(), Some(489));
        let r = w.request(
            "SUBSCRIBE",
            "alice",
            "sip:alice@contoso.com",
            None,
            &[("Event", "presence")],
            BATCH_CT,
            "<batchSub><action><adhocList/></action></batchSub>",
        );
        let out = w.send("alice", r);
        assert_eq!(response_to(&out, "alice").status(), Some(400));
    }

    #[test]
    fn blocked_watcher_sees_offline() {
        let mut w = World::new();
        w.register("alice", 3600);
        w.register("bob", 3600);
        w.publish("alice", T11);
        let (ok, _) = w.batch_subscribe("bob", "alice");
        assert_eq!(presence_of(&ok).state(), State::Online);
        let out = w.service(
            "alice",
            CONTAINERS_CT,
            r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="32000" version="0"><member action="add" type="user" value="bob@contoso.com"/></container></setContainerMembers>"#,
        );
        let n = notifies_to(&out, "bob");
        assert_eq!(n.len(), 1);
        assert_eq!(presence_of(n[0]).state(), State::Offline);
    }

    #[test]
    fn publish_time_is_a_calendar_date() {
        assert_eq!(crate::utc::civil_from_days(EPOCH_DAYS), (2009, 6, 1));
        assert_eq!(crate::utc::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::utc::civil_from_days(EPOCH_DAYS + 214), (2010, 1, 1));
    }
}
