//! Self-subscription documents: roaming-self `roamingData` (our own
//! publications with their versions, containers with members, watchers)
//! (the contact list is in [`super::contacts`]).

use std::collections::BTreeMap;

use super::categories::short;
use super::error::{DocumentError, DocumentErrorKind};
use super::xml::{Doc, NodeId, decode};

/// One of our own publications as roaming-self reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnPublication {
    /// Category name.
    pub name: Box<str>,
    /// Instance id.
    pub instance: u32,
    /// Container id.
    pub container: u32,
    /// The current version (publish with this one).
    pub version: u32,
    /// `expireType`, as written.
    pub expire_type: Option<Box<str>>,
    /// `publishTime`, as written.
    pub publish_time: Option<Box<str>>,
    /// The whole `<category>` element.
    pub xml: Box<str>,
}

/// A container member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `user`, `domain`, `sameEnterprise`, `federated`, `publicCloud`,
    /// `everyone`.
    pub kind: Box<str>,
    /// The value for `user`/`domain` members.
    pub value: Option<Box<str>>,
}

/// A container (access level) with its version and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Container id.
    pub id: u32,
    /// Its version (for `setContainerMembers`).
    pub version: u32,
    /// Its members.
    pub members: Vec<Member>,
}

/// Someone watching our presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The watcher (`user`, without `sip:`).
    pub user: Box<str>,
    /// `displayName`.
    pub display_name: Option<Box<str>>,
    /// Whether we acknowledged them (`setSubscribers`).
    pub acknowledged: bool,
    /// `type` (`sameEnterprise`, `federated`, ...).
    pub kind: Option<Box<str>>,
}

/// Key of the version table: (category, instance, container).
pub type PublicationKey = (Box<str>, u32, u32);

/// A roaming-self notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoamingSelf {
    /// Our publications (all containers) — present when `categories` was
    /// part of the notification.
    pub publications: Vec<OwnPublication>,
    /// Whether the notification had a `categories` element (an empty one
    /// means the last publication of a category was deleted).
    pub has_categories: bool,
    /// Containers — present when `containers` was part of it.
    pub containers: Vec<Container>,
    /// Whether the notification had a `containers` element.
    pub has_containers: bool,
    /// Watchers.
    pub subscribers: Vec<Subscriber>,
    /// Whether the notification had a `subscribers` element.
    pub has_subscribers: bool,
}

impl RoamingSelf {
    /// The version table: (category, instance, container) → version.
    pub fn versions(&self) -> BTreeMap<PublicationKey, u32> {
        self.publications
            .iter()
            .map(|p| ((p.name.clone(), p.instance, p.container), p.version))
            .collect()
    }

    /// The version of one publication (0 when unknown: a new publication).
    pub fn version_of(&self, name: &str, instance: u32, container: u32) -> u32 {
        self.publications
            .iter()
            .find(|p| &*p.name == name && p.instance == instance && p.container == container)
            .map_or(0, |p| p.version)
    }

    /// A container by id.
    pub fn container(&self, id: u32) -> Option<&Container> {
        self.containers.iter().find(|c| c.id == id)
    }
}

pub(super) fn num(doc: &Doc<'_>, id: NodeId, attr: &'static str) -> Result<u32, DocumentError> {
    let v = doc
        .node(id)
        .attr(attr)
        .ok_or_else(|| doc.error_at(id, DocumentErrorKind::Missing(attr)))?;
    v.trim().parse::<u32>().map_err(|_| {
        doc.error_at(
            id,
            DocumentErrorKind::InvalidValue {
                what: attr,
                value: short(&v),
            },
        )
    })
}

pub(super) fn expect_root(doc: &Doc<'_>, local: &'static str) -> Result<NodeId, DocumentError> {
    let root = doc.root();
    if doc.node(root).local() != local {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: local,
                found: doc.node(root).qname().to_owned(),
            },
        ));
    }
    Ok(root)
}

/// Parses a roaming-self `roamingData` document.
pub fn parse_roaming_self(bytes: &[u8]) -> Result<RoamingSelf, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = expect_root(&doc, "roamingData")?;
    let mut r = RoamingSelf::default();
    for sec in doc.children(root) {
        match doc.node(sec).local() {
            "categories" => {
                r.has_categories = true;
                for c in doc.children(sec) {
                    let n = doc.node(c);
                    if n.local() != "category" {
                        continue;
                    }
                    r.publications.push(OwnPublication {
                        name: n
                            .attr("name")
                            .ok_or_else(|| doc.error_at(c, DocumentErrorKind::Missing("name")))?
                            .as_ref()
                            .into(),
                        instance: num(&doc, c, "instance")?,
                        container: num(&doc, c, "container")?,
                        version: num(&doc, c, "version")?,
                        expire_type: n.attr("expireType").map(|v| v.as_ref().into()),
                        publish_time: n.attr("publishTime").map(|v| v.as_ref().into()),
                        xml: doc.raw(c).into(),
                    });
                }
            }
            "containers" => {
                r.has_containers = true;
                for c in doc.children(sec) {
                    if doc.node(c).local() != "container" {
                        continue;
                    }
                    let mut members = Vec::new();
                    for m in doc.children(c) {
                        let mn = doc.node(m);
                        if mn.local() != "member" {
                            continue;
                        }
                        members.push(Member {
                            kind: mn.attr("type").unwrap_or_default().as_ref().into(),
                            value: mn.attr("value").map(|v| v.as_ref().into()),
                        });
                    }
                    r.containers.push(Container {
                        id: num(&doc, c, "id")?,
                        version: num(&doc, c, "version")?,
                        members,
                    });
                }
            }
            "subscribers" => {
                r.has_subscribers = true;
                for s in doc.children(sec) {
                    let n = doc.node(s);
                    if n.local() != "subscriber" {
                        continue;
                    }
                    r.subscribers.push(Subscriber {
                        user: n
                            .attr("user")
                            .ok_or_else(|| doc.error_at(s, DocumentErrorKind::Missing("user")))?
                            .as_ref()
                            .into(),
                        display_name: n.attr("displayName").map(|v| v.as_ref().into()),
                        acknowledged: n
                            .attr("acknowledged")
                            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                        kind: n.attr("type").map(|v| v.as_ref().into()),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roaming_self() {
        let xml = r#"<roamingData xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:alice@contoso.com">
<category name="state" instance="536870912" publishTime="2009-06-01T10:00:00.000" container="2" version="7" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xsi:type="userState"><availability>6500</availability></state></category>
<category name="state" instance="536870912" publishTime="2009-06-01T10:00:00.000" container="3" version="7" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xsi:type="userState"><availability>6500</availability></state></category>
<category name="note" instance="0" container="200" version="3" expireType="static"/>
</categories>
<containers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management">
<container id="100" version="2"><member type="federated"/></container>
<container id="32000" version="5"><member type="publicCloud"/><member type="user" value="eve@contoso.com"/></container>
</containers>
<subscribers xmlns="http://schemas.microsoft.com/2006/09/sip/presence-subscribers">
<subscriber user="bob@contoso.com" displayName="Bob" acknowledged="false" type="sameEnterprise"/>
</subscribers>
</roamingData>"#;
        let r = parse_roaming_self(xml.as_bytes()).expect("parses");
        assert_eq!(r.publications.len(), 3);
        assert_eq!(r.version_of("state", 536_870_912, 3), 7);
        assert_eq!(r.version_of("note", 0, 200), 3);
        assert_eq!(r.version_of("note", 0, 300), 0);
        let v = r.versions();
        assert_eq!(v.get(&("state".into(), 536_870_912, 2)), Some(&7));
        let blocked = r.container(32000).expect("blocked");
        assert_eq!(blocked.version, 5);
        assert_eq!(blocked.members[1].value.as_deref(), Some("eve@contoso.com"));
        assert_eq!(r.subscribers.len(), 1);
        assert!(!r.subscribers[0].acknowledged);
        assert!(r.has_categories && r.has_containers && r.has_subscribers);
        let e = parse_roaming_self(b"<roamingData><categories><category name=\"x\" instance=\"a\" container=\"1\" version=\"1\"/></categories></roamingData>").expect_err("bad instance");
        assert!(e.to_string().contains("instance"), "{e}");
    }
}
