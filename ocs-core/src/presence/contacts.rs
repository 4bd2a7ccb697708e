//! The server-stored contact list (MS-SIP 3.7, "contact management"):
//! the roaming-contacts documents (`contactList`, then `contactDelta`
//! changes) and the SOAP requests that change the list (`setContact`,
//! `deleteContact`, `addGroup`, `modifyGroup`, `deleteGroup`), sent in a
//! SERVICE to our own URI with the list's current `deltaNum`.

use super::categories::short;
use super::error::{DocumentError, DocumentErrorKind};
use super::roaming::{expect_root, num};
use super::xml::{Doc, NodeId, decode, escape_into};

/// Content type of roaming-contacts documents.
pub const ROAMING_CONTACTS_CT: &str = "application/vnd-microsoft-roaming-contacts+xml";
/// Content type of the contact-management SOAP requests.
pub const SOAP_CT: &str = "application/SOAP+xml";
/// The SOAP envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The namespace of the contact-management methods.
pub const WINRTC_NS: &str = "http://schemas.microsoft.com/winrtc/2002/11/sip";
/// The name of the default group ("Other Contacts"), which the server
/// creates and nobody may rename or delete.
pub const DEFAULT_GROUP: &str = "~";

/// A contact-list group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group id (the server assigns it).
    pub id: u32,
    /// Name (`~` is the default group).
    pub name: Box<str>,
}

/// A contact in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The URI, with `sip:` (the full list writes it without; it is added).
    pub uri: Box<str>,
    /// The name the user gave (alias).
    pub name: Option<Box<str>>,
    /// Ids of the groups it is in.
    pub groups: Vec<u32>,
    /// `subscribed` (true unless the server says false).
    pub subscribed: bool,
}

/// A roaming-contacts `contactList`: the whole list and its version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactList {
    /// `deltaNum` (the list version), if present.
    pub delta_num: Option<u32>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Contacts.
    pub contacts: Vec<Contact>,
}

/// A roaming-contacts `contactDelta`: what changed from `prev_delta_num`
/// to `delta_num`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactDelta {
    /// The new version.
    pub delta_num: u32,
    /// The version the change applies to.
    pub prev_delta_num: Option<u32>,
    /// Groups added or renamed (`addedGroup`, `modifiedGroup`).
    pub groups: Vec<Group>,
    /// Contacts added or changed, each in full (`addedContact`,
    /// `modifiedContact`).
    pub contacts: Vec<Contact>,
    /// Ids of deleted groups.
    pub deleted_groups: Vec<u32>,
    /// URIs of deleted contacts (with `sip:`).
    pub deleted_contacts: Vec<Box<str>>,
}

/// Either roaming-contacts document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoamingContacts {
    /// The whole list.
    Full(ContactList),
    /// A change to it.
    Delta(ContactDelta),
}

/// `uri` with `sip:` in front unless it has a scheme already.
pub fn with_sip(uri: &str) -> Box<str> {
    let u = uri.trim();
    let has_scheme = u
        .split_once(':')
        .is_some_and(|(s, _)| !s.is_empty() && !s.contains('@'));
    if has_scheme {
        u.into()
    } else {
        format!("sip:{u}").into()
    }
}

fn same_uri(a: &str, b: &str) -> bool {
    with_sip(a).eq_ignore_ascii_case(&with_sip(b))
}

impl ContactList {
    /// A group by id.
    pub fn group(&self, id: u32) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// A group by name (case-insensitive).
    pub fn group_named(&self, name: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// The default group `~`, else the one with the lowest id.
    pub fn default_group(&self) -> Option<&Group> {
        self.group_named(DEFAULT_GROUP)
            .or_else(|| self.groups.iter().min_by_key(|g| g.id))
    }

    /// A contact by URI (with or without `sip:`, any case).
    pub fn contact(&self, uri: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| same_uri(&c.uri, uri))
    }

    /// Applies a change in place. Returns false when it does not follow
    /// on from this version (`prevDeltaNum` is not ours): the change is
    /// applied anyway, as it holds whole records, but the caller should
    /// fetch the full list to be sure.
    pub fn apply(&mut self, d: &ContactDelta) -> bool {
        let follows = match (self.delta_num, d.prev_delta_num) {
            (Some(ours), Some(prev)) => ours == prev,
            _ => true,
        };
        for g in &d.groups {
            self.upsert_group(g.clone());
        }
        for c in &d.contacts {
            self.upsert_contact(c.clone());
        }
        self.groups.retain(|g| !d.deleted_groups.contains(&g.id));
        for c in &mut self.contacts {
            c.groups.retain(|g| !d.deleted_groups.contains(g));
        }
        self.contacts
            .retain(|c| !d.deleted_contacts.iter().any(|u| same_uri(u, &c.uri)));
        self.delta_num = Some(d.delta_num);
        follows
    }

    /// Adds or replaces a group (by id).
    pub fn upsert_group(&mut self, g: Group) {
        match self.groups.iter_mut().find(|x| x.id == g.id) {
            Some(x) => *x = g,
            None => self.groups.push(g),
        }
    }

    /// Adds or replaces a contact (by URI).
    pub fn upsert_contact(&mut self, c: Contact) {
        match self.contacts.iter_mut().find(|x| same_uri(&x.uri, &c.uri)) {
            Some(x) => *x = c,
            None => self.contacts.push(c),
        }
    }

    /// The roaming-contacts `contactList` document (as a server sends it:
    /// URIs without `sip:`).
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<contactList");
        if let Some(n) = self.delta_num {
            out.push_str(&format!(" deltaNum=\"{n}\""));
        }
        out.push('>');
        for g in &self.groups {
            group_xml(&mut out, "group", g);
        }
        for c in &self.contacts {
            let uri = c.uri.strip_prefix("sip:").unwrap_or(&c.uri);
            contact_xml(&mut out, "contact", uri, c);
        }
        out.push_str("</contactList>");
        out
    }
}

impl ContactDelta {
    /// The roaming-contacts `contactDelta` document.
    pub fn to_xml(&self) -> String {
        let mut out = format!("<contactDelta deltaNum=\"{}\"", self.delta_num);
        if let Some(p) = self.prev_delta_num {
            out.push_str(&format!(" prevDeltaNum=\"{p}\""));
        }
        out.push('>');
        for g in &self.groups {
            group_xml(&mut out, "modifiedGroup", g);
        }
        for c in &self.contacts {
            contact_xml(&mut out, "modifiedContact", &c.uri, c);
        }
        for g in &self.deleted_groups {
            out.push_str(&format!("<deletedGroup id=\"{g}\"/>"));
        }
        for u in &self.deleted_contacts {
            out.push_str("<deletedContact uri=\"");
            escape_into(&mut out, u);
            out.push_str("\"/>");
        }
        out.push_str("</contactDelta>");
        out
    }
}

fn group_xml(out: &mut String, element: &str, g: &Group) {
    out.push_str(&format!("<{element} id=\"{}\" name=\"", g.id));
    escape_into(out, &g.name);
    out.push_str("\" externalURI=\"\"/>");
}

fn contact_xml(out: &mut String, element: &str, uri: &str, c: &Contact) {
    out.push_str(&format!("<{element} uri=\""));
    escape_into(out, uri);
    out.push_str("\" name=\"");
    escape_into(out, c.name.as_deref().unwrap_or(""));
    out.push_str("\" groups=\"");
    let ids: Vec<String> = c.groups.iter().map(u32::to_string).collect();
    out.push_str(&ids.join(" "));
    out.push_str(&format!(
        "\" subscribed=\"{}\" externalURI=\"\"/>",
        c.subscribed
    ));
}

fn parse_group(doc: &Doc<'_>, id: NodeId) -> Result<Group, DocumentError> {
    Ok(Group {
        id: num(doc, id, "id")?,
        name: doc
            .node(id)
            .attr("name")
            .unwrap_or_default()
            .as_ref()
            .into(),
    })
}

fn parse_contact(doc: &Doc<'_>, c: NodeId) -> Result<Contact, DocumentError> {
    let n = doc.node(c);
    let mut groups = Vec::new();
    for g in n.attr("groups").unwrap_or_default().split_whitespace() {
        groups.push(g.parse::<u32>().map_err(|_| {
            doc.error_at(
                c,
                DocumentErrorKind::InvalidValue {
                    what: "groups",
                    value: short(g),
                },
            )
        })?);
    }
    Ok(Contact {
        uri: with_sip(
            &n.attr("uri")
                .ok_or_else(|| doc.error_at(c, DocumentErrorKind::Missing("uri")))?,
        ),
        name: n
            .attr("name")
            .filter(|v| !v.is_empty())
            .map(|v| v.as_ref().into()),
        groups,
        subscribed: !n
            .attr("subscribed")
            .is_some_and(|v| v.eq_ignore_ascii_case("false")),
    })
}

/// Parses a roaming-contacts `contactList` document.
pub fn parse_contact_list(bytes: &[u8]) -> Result<ContactList, DocumentError> {
    match parse_roaming_contacts(bytes)? {
        RoamingContacts::Full(l) => Ok(l),
        RoamingContacts::Delta(_) => {
            let text = decode(bytes)?;
            let doc = Doc::parse(&text)?;
            Err(expect_root(&doc, "contactList").expect_err("root is contactDelta"))
        }
    }
}

/// Parses either roaming-contacts document (`contactList` or
/// `contactDelta`). Unknown elements are skipped.
pub fn parse_roaming_contacts(bytes: &[u8]) -> Result<RoamingContacts, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    let opt_num = |attr: &'static str| match doc.node(root).attr(attr) {
        Some(_) => num(&doc, root, attr).map(Some),
        None => Ok(None),
    };
    if doc.node(root).local() == "contactDelta" {
        let mut d = ContactDelta {
            delta_num: num(&doc, root, "deltaNum")?,
            prev_delta_num: opt_num("prevDeltaNum")?,
            ..ContactDelta::default()
        };
        for c in doc.children(root) {
            match doc.node(c).local() {
                "addedGroup" | "modifiedGroup" => d.groups.push(parse_group(&doc, c)?),
                "addedContact" | "modifiedContact" => d.contacts.push(parse_contact(&doc, c)?),
                "deletedGroup" => d.deleted_groups.push(num(&doc, c, "id")?),
                "deletedContact" => d.deleted_contacts.push(with_sip(
                    &doc.node(c)
                        .attr("uri")
                        .ok_or_else(|| doc.error_at(c, DocumentErrorKind::Missing("uri")))?,
                )),
                _ => {}
            }
        }
        return Ok(RoamingContacts::Delta(d));
    }
    let root = expect_root(&doc, "contactList")?;
    let mut l = ContactList {
        delta_num: opt_num("deltaNum")?,
        ..ContactList::default()
    };
    for c in doc.children(root) {
        match doc.node(c).local() {
            "group" => l.groups.push(parse_group(&doc, c)?),
            "contact" => l.contacts.push(parse_contact(&doc, c)?),
            _ => {}
        }
    }
    Ok(RoamingContacts::Full(l))
}

/// A change to the contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactOp {
    /// Adds a contact or replaces it whole (`setContact`): moving between
    /// groups, copying to another group and renaming are this too.
    SetContact {
        /// The contact's URI.
        uri: String,
        /// The alias (`None`: no alias).
        name: Option<String>,
        /// Every group it is to be in.
        groups: Vec<u32>,
        /// Whether we watch its presence.
        subscribed: bool,
    },
    /// Removes a contact (`deleteContact`).
    DeleteContact {
        /// The contact's URI.
        uri: String,
    },
    /// Creates a group (`addGroup`); the server answers with its id.
    AddGroup {
        /// Its name.
        name: String,
    },
    /// Renames a group (`modifyGroup`).
    ModifyGroup {
        /// The group id.
        id: u32,
        /// The new name.
        name: String,
    },
    /// Deletes a group (`deleteGroup`).
    DeleteGroup {
        /// The group id.
        id: u32,
    },
}

impl ContactOp {
    /// The SOAP method name.
    pub fn method(&self) -> &'static str {
        match self {
            ContactOp::SetContact { .. } => "setContact",
            ContactOp::DeleteContact { .. } => "deleteContact",
            ContactOp::AddGroup { .. } => "addGroup",
            ContactOp::ModifyGroup { .. } => "modifyGroup",
            ContactOp::DeleteGroup { .. } => "deleteGroup",
        }
    }

    /// The SOAP body for this change at list version `delta_num`
    /// (children in the order of the MS-SIP schema).
    pub fn soap(&self, delta_num: u32) -> String {
        let mut b = String::new();
        let mut el = |name: &str, value: &str| {
            if value.is_empty() {
                b.push_str(&format!("<m:{name}/>"));
            } else {
                b.push_str(&format!("<m:{name}>"));
                escape_into(&mut b, value);
                b.push_str(&format!("</m:{name}>"));
            }
        };
        match self {
            ContactOp::SetContact {
                uri,
                name,
                groups,
                subscribed,
            } => {
                let ids: Vec<String> = groups.iter().map(u32::to_string).collect();
                el("displayName", name.as_deref().unwrap_or(""));
                el("groups", &ids.join(" "));
                el("subscribed", if *subscribed { "true" } else { "false" });
                el("URI", &with_sip(uri));
                el("externalURI", "");
            }
            ContactOp::DeleteContact { uri } => el("URI", &with_sip(uri)),
            ContactOp::AddGroup { name } => {
                el("name", name);
                el("externalURI", "");
            }
            ContactOp::ModifyGroup { id, name } => {
                el("groupID", &id.to_string());
                el("name", name);
                el("externalURI", "");
            }
            ContactOp::DeleteGroup { id } => el("groupID", &id.to_string()),
        }
        el("deltaNum", &delta_num.to_string());
        let m = self.method();
        format!(
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{SOAP_ENV_NS}\"><SOAP-ENV:Body><m:{m} xmlns:m=\"{WINRTC_NS}\">{b}</m:{m}></SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )
    }

    /// Applies the change to a local copy of the list, as the server will
    /// (for [`ContactOp::AddGroup`] pass the id the server returned).
    pub fn apply_to(&self, list: &mut ContactList, new_group_id: Option<u32>) {
        match self {
            ContactOp::SetContact {
                uri,
                name,
                groups,
                subscribed,
            } => list.upsert_contact(Contact {
                uri: with_sip(uri),
                name: name.as_deref().filter(|n| !n.is_empty()).map(Into::into),
                groups: groups.clone(),
                subscribed: *subscribed,
            }),
            ContactOp::DeleteContact { uri } => list.contacts.retain(|c| !same_uri(&c.uri, uri)),
            ContactOp::AddGroup { name } => {
                if let Some(id) = new_group_id {
                    list.upsert_group(Group {
                        id,
                        name: name.as_str().into(),
                    });
                }
            }
            ContactOp::ModifyGroup { id, name } => {
                if let Some(g) = list.groups.iter_mut().find(|g| g.id == *id) {
                    g.name = name.as_str().into();
                }
            }
            ContactOp::DeleteGroup { id } => {
                list.groups.retain(|g| g.id != *id);
                for c in &mut list.contacts {
                    c.groups.retain(|g| g != id);
                }
            }
        }
    }
}

/// Reads a contact-management SOAP request (the server side; the test
/// server uses it): the change and the `deltaNum` it was made against.
pub fn parse_contact_soap(bytes: &[u8]) -> Result<(ContactOp, u32), DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let env = expect_root(&doc, "Envelope")?;
    let body = doc
        .child(env, "Body")
        .ok_or_else(|| doc.error_at(env, DocumentErrorKind::Missing("Body")))?;
    let m = doc
        .children(body)
        .next()
        .ok_or_else(|| doc.error_at(body, DocumentErrorKind::Missing("method element")))?;
    let text_of = |name: &'static str| -> Result<String, DocumentError> {
        doc.child(m, name)
            .map(|c| doc.node(c).trimmed().to_owned())
            .ok_or_else(|| doc.error_at(m, DocumentErrorKind::Missing(name)))
    };
    let number = |name: &'static str| -> Result<u32, DocumentError> {
        let v = text_of(name)?;
        v.trim().parse().map_err(|_| {
            doc.error_at(
                m,
                DocumentErrorKind::InvalidValue {
                    what: name,
                    value: short(&v),
                },
            )
        })
    };
    let op = match doc.node(m).local() {
        "setContact" => {
            let mut groups = Vec::new();
            for g in text_of("groups").unwrap_or_default().split_whitespace() {
                groups.push(g.parse().map_err(|_| {
                    doc.error_at(
                        m,
                        DocumentErrorKind::InvalidValue {
                            what: "groups",
                            value: short(g),
                        },
                    )
                })?);
            }
            let name = text_of("displayName").unwrap_or_default();
            ContactOp::SetContact {
                uri: text_of("URI")?.trim().to_owned(),
                name: (!name.is_empty()).then_some(name),
                groups,
                subscribed: !text_of("subscribed")
                    .unwrap_or_default()
                    .trim()
                    .eq_ignore_ascii_case("false"),
            }
        }
        "deleteContact" => ContactOp::DeleteContact {
            uri: text_of("URI")?.trim().to_owned(),
        },
        "addGroup" => ContactOp::AddGroup {
            name: text_of("name")?,
        },
        "modifyGroup" => ContactOp::ModifyGroup {
            id: number("groupID")?,
            name: text_of("name")?,
        },
        "deleteGroup" => ContactOp::DeleteGroup {
            id: number("groupID")?,
        },
        other => {
            return Err(doc.error_at(
                m,
                DocumentErrorKind::InvalidValue {
                    what: "method",
                    value: short(other),
                },
            ));
        }
    };
    Ok((op, number("deltaNum")?))
}

/// The 200 OK body for `addGroup`, carrying the new group's id.
pub fn add_group_response(id: u32) -> String {
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"{SOAP_ENV_NS}\"><SOAP-ENV:Body><m:addGroup xmlns:m=\"{WINRTC_NS}\"><m:groupID>{id}</m:groupID></m:addGroup></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

/// The new group's id from an `addGroup` 200 OK body.
pub fn parse_add_group_response(bytes: &[u8]) -> Result<u32, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let env = expect_root(&doc, "Envelope")?;
    let id = doc
        .child(env, "Body")
        .and_then(|b| doc.child(b, "addGroup"))
        .and_then(|a| doc.child(a, "groupID"))
        .ok_or_else(|| doc.error_at(env, DocumentErrorKind::Missing("Body/addGroup/groupID")))?;
    let v = doc.node(id).trimmed();
    v.parse().map_err(|_| {
        doc.error_at(
            id,
            DocumentErrorKind::InvalidValue {
                what: "groupID",
                value: short(v),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_list() {
        let xml = r#"<contactList deltaNum="12"><group id="1" name="~" externalURI=""/><group id="2" name="Team"/><contact uri="bob@contoso.com" name="" groups="1 2 " subscribed="true" externalURI=""/><contact uri="sip:carol@contoso.com" name="Carol" groups="2" subscribed="false"/></contactList>"#;
        let l = parse_contact_list(xml.as_bytes()).expect("parses");
        assert_eq!(l.delta_num, Some(12));
        assert_eq!(l.groups[1].name.as_ref(), "Team");
        assert_eq!(l.contacts[0].uri.as_ref(), "sip:bob@contoso.com");
        assert_eq!(l.contacts[1].uri.as_ref(), "sip:carol@contoso.com");
        assert_eq!(l.contacts[0].groups, [1, 2]);
        assert_eq!(l.contacts[0].name, None);
        assert!(!l.contacts[1].subscribed);
        assert_eq!(l.default_group().map(|g| g.id), Some(1));
        assert!(l.contact("BOB@contoso.com").is_some());
        assert_eq!(parse_contact_list(l.to_xml().as_bytes()).expect("again"), l);
        let e = parse_contact_list(b"<contactList><contact uri=\"x\" groups=\"a\"/></contactList>")
            .expect_err("bad group id");
        assert!(e.to_string().contains("groups"), "{e}");
        assert!(parse_contact_list(b"<contactDelta deltaNum=\"3\"/>").is_err());
    }

    #[test]
    fn delta_applies_in_order() {
        let mut l = parse_contact_list(br#"<contactList deltaNum="5"><group id="1" name="~"/><group id="3" name="Old"/><contact uri="bob@x" groups="1 3"/><contact uri="carol@x" groups="3"/></contactList>"#).expect("list");
        let RoamingContacts::Delta(d) = parse_roaming_contacts(br#"<contactDelta deltaNum="6" prevDeltaNum="5"><addedGroup id="4" name="New" externalURI=""/><modifiedContact uri="sip:carol@x" name="C" groups="4" subscribed="true"/><addedContact uri="sip:dave@x" groups="1"/><deletedGroup id="3"/><deletedContact uri="sip:bob@x"/><futureThing/></contactDelta>"#).expect("delta") else {
            panic!("not a delta");
        };
        assert_eq!(d.prev_delta_num, Some(5));
        assert!(l.apply(&d));
        assert_eq!(l.delta_num, Some(6));
        assert_eq!(l.groups.iter().map(|g| g.id).collect::<Vec<_>>(), [1, 4]);
        let uris: Vec<&str> = l.contacts.iter().map(|c| c.uri.as_ref()).collect();
        assert_eq!(uris, ["sip:carol@x", "sip:dave@x"]);
        assert_eq!(l.contact("carol@x").unwrap().groups, [4]);
        // A delta that skips a version still applies but says so.
        let mut d2 = d.clone();
        d2.prev_delta_num = Some(9);
        d2.delta_num = 10;
        assert!(!l.apply(&d2));
        // Round trip of the document form.
        let again = parse_roaming_contacts(d.to_xml().as_bytes()).expect("delta again");
        assert_eq!(
            again,
            RoamingContacts::Delta(ContactDelta {
                groups: d.groups.clone(),
                ..d.clone()
            })
        );
    }

    #[test]
    fn soap_requests_round_trip() {
        let ops = [
            ContactOp::SetContact {
                uri: "bob@contoso.com".into(),
                name: Some("Bob & <Co>".into()),
                groups: vec![1, 2],
                subscribed: true,
            },
            ContactOp::SetContact {
                uri: "sip:eve@contoso.com".into(),
                name: None,
                groups: vec![],
                subscribed: false,
            },
            ContactOp::DeleteContact {
                uri: "sip:bob@contoso.com".into(),
            },
            ContactOp::AddGroup {
                name: "Team".into(),
            },
            ContactOp::ModifyGroup {
                id: 3,
                name: "Renamed".into(),
            },
            ContactOp::DeleteGroup { id: 3 },
        ];
        for op in ops {
            let body = op.soap(17);
            let (back, n) = parse_contact_soap(body.as_bytes()).expect(&body);
            assert_eq!(n, 17);
            let want = match op.clone() {
                ContactOp::SetContact {
                    uri,
                    name,
                    groups,
                    subscribed,
                } => ContactOp::SetContact {
                    uri: with_sip(&uri).into(),
                    name,
                    groups,
                    subscribed,
                },
                o => o,
            };
            assert_eq!(back, want, "{body}");
        }
        let set = ContactOp::SetContact {
            uri: "bob@contoso.com".into(),
            name: None,
            groups: vec![1, 2],
            subscribed: true,
        };
        assert_eq!(
            set.soap(12),
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body><m:setContact xmlns:m=\"http://schemas.microsoft.com/winrtc/2002/11/sip\"><m:displayName/><m:groups>1 2</m:groups><m:subscribed>true</m:subscribed><m:URI>sip:bob@contoso.com</m:URI><m:externalURI/><m:deltaNum>12</m:deltaNum></m:setContact></SOAP-ENV:Body></SOAP-ENV:Envelope>"
        );
        assert_eq!(
            parse_add_group_response(add_group_response(7).as_bytes()).expect("id"),
            7
        );
        assert!(parse_add_group_response(b"<Envelope><Body/></Envelope>").is_err());
        assert!(parse_contact_soap(b"<Envelope><Body><m:frob/></Body></Envelope>").is_err());
        assert!(parse_contact_soap(b"<Envelope><Body><deleteGroup><groupID>x</groupID><deltaNum>1</deltaNum></deleteGroup></Body></Envelope>").is_err());
    }

    #[test]
    fn local_apply_matches_server_semantics() {
        let mut l = ContactList::default();
        ContactOp::AddGroup { name: "T".into() }.apply_to(&mut l, Some(2));
        ContactOp::SetContact {
            uri: "bob@x".into(),
            name: None,
            groups: vec![2],
            subscribed: true,
        }
        .apply_to(&mut l, None);
        ContactOp::ModifyGroup {
            id: 2,
            name: "U".into(),
        }
        .apply_to(&mut l, None);
        assert_eq!(l.group(2).unwrap().name.as_ref(), "U");
        ContactOp::DeleteGroup { id: 2 }.apply_to(&mut l, None);
        assert!(l.contact("sip:bob@x").unwrap().groups.is_empty());
        ContactOp::DeleteContact {
            uri: "SIP:bob@x".into(),
        }
        .apply_to(&mut l, None);
        assert!(l.contacts.is_empty());
        assert_eq!(with_sip("tel:+123").as_ref(), "tel:+123");
        assert_eq!(with_sip(" bob@x ").as_ref(), "sip:bob@x");
    }
}
