//! OCS-dialect request bodies: category publications (SERVICE
//! `application/msrtc-category-publish+xml`), the batched category
//! SUBSCRIBE (`batchSub`), container membership and subscriber
//! acknowledgement, the roaming-self and provisioning-v2 SUBSCRIBE bodies,
//! and the 409 `WrongDelta` fault.
//!
//! The templates are SIPE's (`sipe-ocs2007.c`, `sipe-subscriptions.c`),
//! byte for byte, so that test vectors T9, T11–T14 reproduce exactly.
//! Every inserted string is XML-escaped.

use std::fmt::Write as _;

use super::categories::short;
use super::error::{DocumentError, DocumentErrorKind};
use super::model::{Availability, NoteKind};
use super::xml::{Doc, decode, escape_into};

/// The `rich-presence` namespace of `<publish>`.
pub const RICH_PRESENCE_NS: &str = "http://schemas.microsoft.com/2006/09/sip/rich-presence";

/// The userState instance, shared by all endpoints of a user.
pub const USER_STATE_INSTANCE: u32 = 0x2000_0000;

/// The instance seed *E*: the first 8 hex digits of the epid as a u32
/// (SIPE `sipe_get_pub_instance`). `None` when the epid does not start with
/// 1–8 hex digits.
pub fn epid_instance(epid: &str) -> Option<u32> {
    let head: String = epid.chars().take(8).collect();
    if head.is_empty() || !head.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&head, 16).ok()
}

/// The device publication instance: *E* itself.
pub fn device_instance(e: u32) -> u32 {
    e
}

/// The machineState instance: `(E >> 4) | 0x30000000`.
pub fn machine_state_instance(e: u32) -> u32 {
    (e >> 4) | 0x3000_0000
}

/// The calendarState instance: `(E >> 4) | 0x40000000`.
pub fn calendar_state_instance(e: u32) -> u32 {
    (e >> 4) | 0x4000_0000
}

/// The out-of-office calendarState instance: `(E >> 4) | 0x50000000`.
pub fn calendar_oof_instance(e: u32) -> u32 {
    (e >> 4) | 0x5000_0000
}

/// The VoIP phoneState instance: `(E >> 4) | 0x80000000`.
pub fn phone_voip_instance(e: u32) -> u32 {
    (e >> 4) | 0x8000_0000
}

/// How long a publication lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpireType {
    /// Dies with this endpoint's registration.
    Endpoint,
    /// Persists.
    Static,
    /// Dies when the user has no endpoint left.
    User,
    /// Dies at a time.
    Time,
}

impl ExpireType {
    /// The wire token.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpireType::Endpoint => "endpoint",
            ExpireType::Static => "static",
            ExpireType::User => "user",
            ExpireType::Time => "time",
        }
    }
}

/// The `device` publication's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo<'a> {
    /// The endpoint id: the +sip.instance UUID in lower case.
    pub endpoint_id: &'a str,
    /// The self SIP URI (`sip:alice@contoso.com`).
    pub uri: &'a str,
    /// UTC offset as `00:00:00+01:00`.
    pub timezone: &'a str,
    /// The machine name.
    pub machine_name: &'a str,
}

/// Custom activity text in a userState (PROTOCOL.md c.5, OCS R2 SDK
/// `st:custom`). Used only when there is no activity token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomActivity<'a> {
    /// Language id (1033 = en-US).
    pub lcid: u32,
    /// The text.
    pub text: &'a str,
}

/// Builds a `<publish>` body, one publication at a time.
///
/// ```
/// use ocs_core::presence::{PublishBody, USER_STATE_INSTANCE, Availability};
/// let mut b = PublishBody::new("sip:alice@contoso.com");
/// b.user_state(2, 0, Availability::BUSY, None, &[]);
/// let xml = b.finish();
/// assert!(xml.contains("<availability>6500</availability>"));
/// ```
#[derive(Debug, Clone)]
pub struct PublishBody {
    out: String,
    count: usize,
}

impl PublishBody {
    /// Starts a body for the self URI.
    pub fn new(self_uri: &str) -> PublishBody {
        let mut out = String::with_capacity(1024);
        out.push_str("<publish xmlns=\"");
        out.push_str(RICH_PRESENCE_NS);
        out.push_str("\"><publications uri=\"");
        escape_into(&mut out, self_uri);
        out.push_str("\">");
        PublishBody { out, count: 0 }
    }

    /// How many publications were added (the 409 fault's `index` is
    /// 1-based over these).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no publication was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn open(
        &mut self,
        category: &str,
        instance: u32,
        container: u32,
        version: u32,
        expire: ExpireType,
    ) {
        self.count += 1;
        self.out.push_str("<publication categoryName=\"");
        escape_into(&mut self.out, category);
        let _ = write!(
            self.out,
            "\" instance=\"{instance}\" container=\"{container}\" version=\"{version}\" expireType=\"{}\">",
            expire.as_str()
        );
    }

    /// The `device` publication (container 2, endpoint).
    pub fn device(&mut self, instance: u32, version: u32, d: &DeviceInfo<'_>) -> &mut Self {
        self.open("device", instance, 2, version, ExpireType::Endpoint);
        let o = &mut self.out;
        o.push_str(
            "<device xmlns=\"http://schemas.microsoft.com/2006/09/sip/device\" endpointId=\"",
        );
        escape_into(o, d.endpoint_id);
        o.push_str("\"><capabilities preferred=\"false\" uri=\"");
        escape_into(o, d.uri);
        o.push_str("\"><text capture=\"true\" render=\"true\" publish=\"false\"/><gifInk capture=\"false\" render=\"true\" publish=\"false\"/><isfInk capture=\"false\" render=\"true\" publish=\"false\"/></capabilities><timezone>");
        escape_into(o, d.timezone);
        o.push_str("</timezone><machineName>");
        escape_into(o, d.machine_name);
        o.push_str("</machineName></device></publication>");
        self
    }

    fn state_open(&mut self, manual: bool, extra_attrs: &str, ty: &str) {
        let _ = write!(
            self.out,
            "<state xmlns=\"http://schemas.microsoft.com/2006/09/sip/state\" manual=\"{manual}\"{extra_attrs} xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"{ty}\">"
        );
    }

    /// A machineState publication (endpoint, `manual="false"`) in one
    /// container (OC publishes containers 2 and 3).
    pub fn machine_state(
        &mut self,
        instance: u32,
        container: u32,
        version: u32,
        availability: Availability,
    ) -> &mut Self {
        self.open("state", instance, container, version, ExpireType::Endpoint);
        self.state_open(false, "", "machineState");
        let _ = write!(
            self.out,
            "<availability>{availability}</availability><endpointLocation/></state></publication>"
        );
        self
    }

    /// A userState publication (static, `manual="true"`, instance
    /// [`USER_STATE_INSTANCE`]) in one container (OC publishes 2 and 3).
    /// `token` is an activity token; without one, `custom` texts become
    /// `<activity><custom LCID=…>…</custom></activity>` (a custom state).
    pub fn user_state(
        &mut self,
        container: u32,
        version: u32,
        availability: Availability,
        token: Option<&str>,
        custom: &[CustomActivity<'_>],
    ) -> &mut Self {
        self.open(
            "state",
            USER_STATE_INSTANCE,
            container,
            version,
            ExpireType::Static,
        );
        self.state_open(true, "", "userState");
        let _ = write!(self.out, "<availability>{availability}</availability>");
        if let Some(t) = token {
            self.out.push_str("<activity token=\"");
            escape_into(&mut self.out, t);
            self.out.push_str("\"/>");
        } else if !custom.is_empty() {
            self.out.push_str("<activity>");
            for c in custom {
                let _ = write!(self.out, "<custom LCID=\"{}\">", c.lcid);
                escape_into(&mut self.out, c.text);
                self.out.push_str("</custom>");
            }
            self.out.push_str("</activity>");
        }
        self.out
            .push_str("<endpointLocation/></state></publication>");
        self
    }

    /// A phoneState publication (endpoint) in one container: `token` such
    /// as `on-the-phone` with min/max availability (SIPE: 6500/8999 in a
    /// call, 7000 conference, 9000/11999 presenting).
    #[allow(clippy::too_many_arguments)]
    pub fn phone_state(
        &mut self,
        instance: u32,
        container: u32,
        version: u32,
        availability: Availability,
        token: &str,
        min: u32,
        max: u32,
    ) -> &mut Self {
        self.open("state", instance, container, version, ExpireType::Endpoint);
        self.state_open(false, "", "phoneState");
        let _ = write!(
            self.out,
            "<availability>{availability}</availability><activity token=\""
        );
        escape_into(&mut self.out, token);
        let _ = write!(
            self.out,
            "\" minAvailability=\"{min}\" maxAvailability=\"{max}\"/></state></publication>"
        );
        self
    }

    /// A calendarState publication (endpoint) in one container: in a
    /// meeting from `start_time` (xs:dateTime), with subject and location.
    #[allow(clippy::too_many_arguments)]
    pub fn calendar_state(
        &mut self,
        instance: u32,
        container: u32,
        version: u32,
        uri: &str,
        start_time: &str,
        availability: Option<Availability>,
        token: &str,
        subject: &str,
        location: &str,
    ) -> &mut Self {
        self.open("state", instance, container, version, ExpireType::Endpoint);
        let mut attrs = String::from(" uri=\"");
        escape_into(&mut attrs, uri);
        attrs.push_str("\" startTime=\"");
        escape_into(&mut attrs, start_time);
        attrs.push('"');
        self.state_open(false, &attrs, "calendarState");
        if let Some(a) = availability {
            let _ = write!(self.out, "<availability>{a}</availability>");
        }
        self.out.push_str("<activity token=\"");
        escape_into(&mut self.out, token);
        let min = availability.map_or(6500, |a| a.0);
        let _ = write!(
            self.out,
            "\" minAvailability=\"{min}\" maxAvailability=\"8999\"></activity><endpointLocation/><meetingSubject>"
        );
        escape_into(&mut self.out, subject);
        self.out.push_str("</meetingSubject><meetingLocation>");
        escape_into(&mut self.out, location);
        self.out
            .push_str("</meetingLocation></state></publication>");
        self
    }

    /// A note publication (static): personal notes use instance 0 and
    /// containers 200, 300 and 400.
    pub fn note(
        &mut self,
        instance: u32,
        container: u32,
        version: u32,
        kind: NoteKind,
        text: &str,
    ) -> &mut Self {
        self.open("note", instance, container, version, ExpireType::Static);
        let ty = match kind {
            NoteKind::Personal => "personal",
            NoteKind::OutOfOffice => "OOF",
        };
        let _ = write!(
            self.out,
            "<note xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\"><body type=\"{ty}\" uri=\"\">"
        );
        escape_into(&mut self.out, text);
        self.out.push_str("</body></note></publication>");
        self
    }

    /// Deletes a publication (`expires="0"`): "reset status" clears the
    /// userState in containers 2 and 3 with [`ExpireType::Static`].
    pub fn clear(
        &mut self,
        category: &str,
        instance: u32,
        container: u32,
        version: u32,
        expire: ExpireType,
    ) -> &mut Self {
        self.count += 1;
        self.out.push_str("<publication categoryName=\"");
        escape_into(&mut self.out, category);
        let _ = write!(
            self.out,
            "\" instance=\"{instance}\" container=\"{container}\" version=\"{version}\" expireType=\"{}\" expires=\"0\"/>",
            expire.as_str()
        );
        self
    }

    /// The finished body.
    pub fn finish(mut self) -> String {
        self.out.push_str("</publications></publish>");
        self.out
    }
}

/// The category list OC 2007 R2 (and SIPE) asks for in a batched
/// subscription.
pub const DEFAULT_BATCH_CATEGORIES: [&str; 4] = ["calendarData", "contactCard", "note", "state"];

/// One contact in a batched subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResource<'a> {
    /// The contact URI (`sip:bob@contoso.com`).
    pub uri: &'a str,
    /// Newly added contacts carry an empty `<context/>` (SIPE).
    pub context: bool,
}

/// The `batchSub` body of the batched category SUBSCRIBE
/// (`application/msrtc-adrl-categorylist+xml`), SIPE's exact layout with
/// `\n` line ends. `self_uri` may be given with or without `sip:`.
pub fn batch_subscribe_body(
    self_uri: &str,
    resources: &[BatchResource<'_>],
    categories: &[&str],
) -> String {
    let user = self_uri.strip_prefix("sip:").unwrap_or(self_uri);
    let mut o = String::with_capacity(400 + resources.len() * 48);
    o.push_str(
        "<batchSub xmlns=\"http://schemas.microsoft.com/2006/01/sip/batch-subscribe\" uri=\"sip:",
    );
    escape_into(&mut o, user);
    o.push_str("\" name=\"\">\n<action name=\"subscribe\" id=\"63792024\">\n<adhocList>\n");
    for r in resources {
        o.push_str("<resource uri=\"");
        escape_into(&mut o, r.uri);
        o.push_str(if r.context {
            "\"><context/></resource>\n"
        } else {
            "\"/>\n"
        });
    }
    o.push_str("</adhocList>\n<categoryList xmlns=\"http://schemas.microsoft.com/2006/09/sip/categorylist\">\n");
    for c in categories {
        o.push_str("<category name=\"");
        escape_into(&mut o, c);
        o.push_str("\"/>\n");
    }
    o.push_str("</categoryList>\n</action>\n</batchSub>");
    o
}

/// Add or remove a container member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberAction {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
}

/// One member change: `type` (`user`, `domain`, `sameEnterprise`,
/// `federated`, `publicCloud`, `everyone`) and, for users and domains, the
/// value (a user is given without `sip:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChange<'a> {
    /// Add or remove.
    pub action: MemberAction,
    /// The member type.
    pub kind: &'a str,
    /// The value, for `user` and `domain`.
    pub value: Option<&'a str>,
}

/// The changes to one container at the version known from roaming-self.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerChange<'a> {
    /// Container id (100, 200, 300, 400, 32000, ...).
    pub id: u32,
    /// The container's current version.
    pub version: u32,
    /// The member changes.
    pub members: Vec<MemberChange<'a>>,
}

/// The `setContainerMembers` body
/// (`application/msrtc-setcontainermembers+xml`).
pub fn set_container_members_body(changes: &[ContainerChange<'_>]) -> String {
    let mut o = String::from(
        "<setContainerMembers xmlns=\"http://schemas.microsoft.com/2006/09/sip/container-management\">",
    );
    for c in changes {
        let _ = write!(o, "<container id=\"{}\" version=\"{}\">", c.id, c.version);
        for m in &c.members {
            let action = match m.action {
                MemberAction::Add => "add",
                MemberAction::Remove => "remove",
            };
            let _ = write!(o, "<member action=\"{action}\" type=\"");
            escape_into(&mut o, m.kind);
            o.push('"');
            if let Some(v) = m.value {
                o.push_str(" value=\"");
                escape_into(&mut o, v);
                o.push('"');
            }
            o.push_str("/>");
        }
        o.push_str("</container>");
    }
    o.push_str("</setContainerMembers>");
    o
}

/// The `setSubscribers` body acknowledging watchers
/// (`application/msrtc-presence-setsubscriber+xml`); users without `sip:`.
pub fn set_subscribers_body(users: &[&str]) -> String {
    let mut o = String::from(
        "<setSubscribers xmlns=\"http://schemas.microsoft.com/2006/09/sip/presence-subscribers\">",
    );
    for u in users {
        o.push_str("<subscriber user=\"");
        escape_into(&mut o, u);
        o.push_str("\" acknowledged=\"true\"/>");
    }
    o.push_str("</setSubscribers>");
    o
}

/// The roaming-self SUBSCRIBE body (SIPE, byte-exact).
pub const ROAMING_SELF_BODY: &str = "<roamingList xmlns=\"http://schemas.microsoft.com/2006/09/sip/roaming-self\"><roaming type=\"categories\"/><roaming type=\"containers\"/><roaming type=\"subscribers\"/></roamingList>";

/// The provisioning-v2 SUBSCRIBE body (SIPE's, without
/// `persistentChatConfiguration`, which OCS 2007 R2 does not know).
pub const PROVISIONING_V2_BODY: &str = "<provisioningGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisioninggrouplist\"> <provisioningGroup name=\"ServerConfiguration\"/> <provisioningGroup name=\"meetingPolicy\"/> <provisioningGroup name=\"ucPolicy\"/></provisioningGroupList>";

/// A `msrtc-fault+xml` body (409 Conflict to a publish or container
/// change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `Faultcode`, e.g. `Client.BadCall.WrongDelta`.
    pub code: Box<str>,
    /// The operations that failed.
    pub operations: Vec<FaultOperation>,
}

impl Fault {
    /// Whether this is the version-conflict fault.
    pub fn is_wrong_delta(&self) -> bool {
        &*self.code == "Client.BadCall.WrongDelta"
    }
}

/// One failed operation: `index` is the 1-based position of the
/// publication in the request; republish it with `cur_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultOperation {
    /// 1-based position in the request.
    pub index: u32,
    /// The version the request carried, if echoed.
    pub version: Option<u32>,
    /// The server's current version.
    pub cur_version: Option<u32>,
}

/// Parses a `<Fault>` body.
pub fn parse_fault(bytes: &[u8]) -> Result<Fault, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    if doc.node(root).local() != "Fault" {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "Fault",
                found: doc.node(root).qname().to_owned(),
            },
        ));
    }
    let code = doc.child_text(root, "Faultcode").unwrap_or("").into();
    let mut operations = Vec::new();
    if let Some(d) = doc.child(root, "details") {
        for op in doc.children(d) {
            let n = doc.node(op);
            if n.local() != "operation" {
                continue;
            }
            let num = |name: &'static str| -> Result<Option<u32>, DocumentError> {
                match n.attr(name) {
                    None => Ok(None),
                    Some(v) => v.trim().parse::<u32>().map(Some).map_err(|_| {
                        doc.error_at(
                            op,
                            DocumentErrorKind::InvalidValue {
                                what: name,
                                value: short(&v),
                            },
                        )
                    }),
                }
            };
            let index = num("index")?
                .ok_or_else(|| doc.error_at(op, DocumentErrorKind::Missing("operation/@index")))?;
            operations.push(FaultOperation {
                index,
                version: num("version")?,
                cur_version: num("curVersion")?,
            });
        }
    }
    Ok(Fault { code, operations })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T11: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="device" instance="3368706954" container="2" version="0" expireType="endpoint"><device xmlns="http://schemas.microsoft.com/2006/09/sip/device" endpointId="34d859db-6585-5f91-a3b4-de853c15347d"><capabilities preferred="false" uri="sip:alice@contoso.com"><text capture="true" render="true" publish="false"/><gifInk capture="false" render="true" publish="false"/><isfInk capture="false" render="true" publish="false"/></capabilities><timezone>00:00:00+01:00</timezone><machineName>HOST1</machineName></device></publication><publication categoryName="state" instance="1015850552" container="2" version="0" expireType="endpoint"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="false" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="machineState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="1015850552" container="3" version="0" expireType="endpoint"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="false" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="machineState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="2" version="0" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>3500</availability><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="3" version="0" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>3500</availability><endpointLocation/></state></publication></publications></publish>"#;

    const T12: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="note" instance="0" container="200" version="3" expireType="static"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">In the lab today</body></note></publication><publication categoryName="state" instance="536870912" container="2" version="7" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>6500</availability><activity><custom LCID="1033">In a Customer Seminar</custom></activity><endpointLocation/></state></publication><publication categoryName="state" instance="536870912" container="3" version="7" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" manual="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>6500</availability><activity><custom LCID="1033">In a Customer Seminar</custom></activity><endpointLocation/></state></publication></publications></publish>"#;

    const T13: &str = r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:alice@contoso.com"><publication categoryName="state" instance="536870912" container="2" version="8" expireType="static" expires="0"/><publication categoryName="state" instance="536870912" container="3" version="8" expireType="static" expires="0"/></publications></publish>"#;

    #[test]
    fn instance_ids() {
        let e = epid_instance("c8ca638a15").expect("hex");
        assert_eq!(e, 0xC8CA_638A);
        assert_eq!(device_instance(e), 3_368_706_954);
        assert_eq!(machine_state_instance(e), 1_015_850_552);
        assert_eq!(USER_STATE_INSTANCE, 536_870_912);
        assert_eq!(calendar_state_instance(e), 0x4C8C_A638);
        assert_eq!(calendar_oof_instance(e), 0x5C8C_A638);
        assert_eq!(phone_voip_instance(e), 0x8C8C_A638);
        assert_eq!(epid_instance("xyz"), None);
        assert_eq!(epid_instance(""), None);
        assert_eq!(epid_instance("01"), Some(1));
    }

    #[test]
    fn t11_initial_publication() {
        let e = epid_instance("c8ca638a15").expect("hex");
        let mut b = PublishBody::new("sip:alice@contoso.com");
        b.device(
            device_instance(e),
            0,
            &DeviceInfo {
                endpoint_id: "34d859db-6585-5f91-a3b4-de853c15347d",
                uri: "sip:alice@contoso.com",
                timezone: "00:00:00+01:00",
                machine_name: "HOST1",
            },
        );
        for c in [2, 3] {
            b.machine_state(machine_state_instance(e), c, 0, Availability::ONLINE);
        }
        for c in [2, 3] {
            b.user_state(c, 0, Availability::ONLINE, None, &[]);
        }
        assert_eq!(b.len(), 5);
        assert_eq!(b.finish(), T11);
    }

    #[test]
    fn t12_note_and_custom_state() {
        let mut b = PublishBody::new("sip:alice@contoso.com");
        b.note(0, 200, 3, NoteKind::Personal, "In the lab today");
        let custom = [CustomActivity {
            lcid: 1033,
            text: "In a Customer Seminar",
        }];
        for c in [2, 3] {
            b.user_state(c, 7, Availability::BUSY, None, &custom);
        }
        assert_eq!(b.finish(), T12);
    }

    #[test]
    fn t13_reset() {
        let mut b = PublishBody::new("sip:alice@contoso.com");
        for c in [2, 3] {
            b.clear("state", USER_STATE_INSTANCE, c, 8, ExpireType::Static);
        }
        assert_eq!(b.finish(), T13);
    }

    #[test]
    fn t9_batch_subscribe() {
        let t9 = "<batchSub xmlns=\"http://schemas.microsoft.com/2006/01/sip/batch-subscribe\" uri=\"sip:alice@contoso.com\" name=\"\">\n<action name=\"subscribe\" id=\"63792024\">\n<adhocList>\n<resource uri=\"sip:bob@contoso.com\"/>\n<resource uri=\"sip:carol@contoso.com\"><context/></resource>\n</adhocList>\n<categoryList xmlns=\"http://schemas.microsoft.com/2006/09/sip/categorylist\">\n<category name=\"calendarData\"/>\n<category name=\"contactCard\"/>\n<category name=\"note\"/>\n<category name=\"state\"/>\n</categoryList>\n</action>\n</batchSub>";
        let body = batch_subscribe_body(
            "alice@contoso.com",
            &[
                BatchResource {
                    uri: "sip:bob@contoso.com",
                    context: false,
                },
                BatchResource {
                    uri: "sip:carol@contoso.com",
                    context: true,
                },
            ],
            &DEFAULT_BATCH_CATEGORIES,
        );
        assert_eq!(body, t9);
        assert_eq!(
            batch_subscribe_body("sip:alice@contoso.com", &[], &[]),
            batch_subscribe_body("alice@contoso.com", &[], &[])
        );
    }

    #[test]
    fn t14_containers_and_subscribers() {
        let t14a = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="200" version="0"><member action="add" type="sameEnterprise"/></container><container id="100" version="0"><member action="add" type="federated"/></container></setContainerMembers>"#;
        let add = |kind| MemberChange {
            action: MemberAction::Add,
            kind,
            value: None,
        };
        let body = set_container_members_body(&[
            ContainerChange {
                id: 200,
                version: 0,
                members: vec![add("sameEnterprise")],
            },
            ContainerChange {
                id: 100,
                version: 0,
                members: vec![add("federated")],
            },
        ]);
        assert_eq!(body, t14a);
        let block = set_container_members_body(&[ContainerChange {
            id: 32000,
            version: 4,
            members: vec![MemberChange {
                action: MemberAction::Add,
                kind: "user",
                value: Some("bob@contoso.com"),
            }],
        }]);
        assert!(block.contains(r#"<container id="32000" version="4"><member action="add" type="user" value="bob@contoso.com"/></container>"#));
        let t14b = r#"<setSubscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers"><subscriber user="bob@contoso.com" acknowledged="true"/></setSubscribers>"#;
        assert_eq!(set_subscribers_body(&["bob@contoso.com"]), t14b);
    }

    #[test]
    fn t15_fault() {
        let body = br#"<Fault> <Faultcode>Client.BadCall.WrongDelta</Faultcode> <details> <operation index="1" version="1" curVersion="2" > </operation> </details> </Fault>"#;
        let f = parse_fault(body).expect("parses");
        assert!(f.is_wrong_delta());
        assert_eq!(
            f.operations,
            [FaultOperation {
                index: 1,
                version: Some(1),
                cur_version: Some(2)
            }]
        );
        assert!(
            parse_fault(b"<Fault><details><operation curVersion=\"2\"/></details></Fault>")
                .is_err()
        );
        assert!(
            parse_fault(b"<Fault><details><operation index=\"x\"/></details></Fault>").is_err()
        );
    }

    #[test]
    fn escaping_in_builders() {
        let mut b = PublishBody::new("sip:a&b@x");
        b.note(0, 200, 0, NoteKind::OutOfOffice, "<hi> & \"bye\"");
        let x = b.finish();
        assert!(x.contains("uri=\"sip:a&amp;b@x\""));
        assert!(x.contains("<body type=\"OOF\" uri=\"\">&lt;hi&gt; &amp; &quot;bye&quot;</body>"));
    }
}
