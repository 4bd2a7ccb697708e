//! Batched presence notifications: `multipart/related` bodies whose first
//! part is an `application/rlmi+xml` resource list (RFC 4662 as OCS uses it,
//! MS-SIP 3.3.5.1) followed by one `application/msrtc-event-categories+xml`
//! part per contact; or a single categories / PIDF document.

use std::borrow::Cow;
use std::collections::HashMap;

use super::categories::{ParseOptions, presence_from_doc};
use super::error::{DocumentError, DocumentErrorKind};
use super::model::Presence;
use super::pidf::presence_from_pidf_doc;
use super::xml::{Doc, decode, decode_within};
use crate::sip::{MediaType, multipart};

/// The rlmi namespace.
pub const RLMI_NS: &str = "urn:ietf:params:xml:ns:rlmi";

/// Largest multipart body accepted (16 MiB; each part is further limited to
/// [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES)).
pub const MAX_MULTIPART_BYTES: usize = 16 * 1024 * 1024;

/// The `state` of an rlmi `<instance>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceState {
    /// `active`: the subscription to this contact runs; its part follows.
    Active,
    /// `pending`: waiting for authorization.
    Pending,
    /// `resubscribe`: subscribe again, to [`ResourceUpdate::pool_fqdn`] when
    /// given (MS-PRES 3.4.5.1.3).
    Resubscribe,
    /// `terminated`: this contact's subscription ended.
    Terminated,
    /// Anything else, as written.
    Other(Box<str>),
}

impl InstanceState {
    fn parse(s: &str) -> InstanceState {
        match s {
            "active" => InstanceState::Active,
            "pending" => InstanceState::Pending,
            "resubscribe" => InstanceState::Resubscribe,
            "terminated" => InstanceState::Terminated,
            o => InstanceState::Other(o.into()),
        }
    }

    /// The state as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Active => "active",
            InstanceState::Pending => "pending",
            InstanceState::Resubscribe => "resubscribe",
            InstanceState::Terminated => "terminated",
            InstanceState::Other(o) => o,
        }
    }
}

/// One contact in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUpdate {
    /// The contact's URI (rlmi `resource/@uri`, else the document's).
    pub uri: Box<str>,
    /// The rlmi instance state; `None` for a bare (non-multipart) body or a
    /// part the resource list does not mention.
    pub state: Option<InstanceState>,
    /// `poolFqdn`: where to resubscribe.
    pub pool_fqdn: Option<Box<str>>,
    /// The instance `cid` (Content-ID of the contact's part).
    pub cid: Option<Box<str>>,
    /// The instance `reason` (for terminated instances).
    pub reason: Option<Box<str>>,
    /// The parsed presence, when the notification carried a part for it.
    pub presence: Option<Presence>,
    /// Why this contact's part was refused (the rest of the batch still
    /// parses).
    pub error: Option<DocumentError>,
}

impl ResourceUpdate {
    fn new(uri: Box<str>) -> ResourceUpdate {
        ResourceUpdate {
            uri,
            state: None,
            pool_fqdn: None,
            cid: None,
            reason: None,
            presence: None,
            error: None,
        }
    }
}

/// Parses a presence notification body by its Content-Type:
/// `multipart/related` (rlmi, boundary from the parameters),
/// `application/msrtc-event-categories+xml`, `application/pidf+xml`; an
/// empty or unknown content type is detected from the root element.
pub fn parse_notify_body(
    body: &[u8],
    content_type: &str,
    opts: &ParseOptions,
) -> Result<Vec<ResourceUpdate>, DocumentError> {
    let ct = content_type.trim();
    if !ct.is_empty()
        && let Ok(mt) = MediaType::parse(ct, 0)
        && mt.top.eq_ignore_ascii_case("multipart")
    {
        let boundary = mt.param("boundary").ok_or_else(|| {
            DocumentError::unpositioned(
                0,
                DocumentErrorKind::Multipart("Content-Type has no boundary".into()),
            )
        })?;
        return parse_rlmi_multipart(body, &boundary, opts);
    }
    let mut u = parse_single(body, opts)?;
    u.state = None;
    Ok(vec![u])
}

/// Parses one categories or PIDF document (chosen by its root element).
fn parse_single(body: &[u8], opts: &ParseOptions) -> Result<ResourceUpdate, DocumentError> {
    let text = decode(body)?;
    let doc = Doc::parse(&text)?;
    let p = presence_of(&doc, &text, opts)?;
    let mut u = ResourceUpdate::new(p.uri.clone());
    u.presence = Some(p);
    Ok(u)
}

fn presence_of(doc: &Doc<'_>, text: &str, opts: &ParseOptions) -> Result<Presence, DocumentError> {
    let mut p = presence_from_any(doc)?;
    if opts.keep_document {
        p.document = Some(text.into());
    }
    Ok(p)
}

/// Parses the parts of one multipart body, sharing one UTF-8 check and one
/// node buffer across them.
struct PartParser<'a> {
    body: &'a [u8],
    whole: Option<&'a str>,
    nodes: Vec<super::xml::Node<'a>>,
}

impl<'a> PartParser<'a> {
    fn parse(&mut self, part: &'a [u8], opts: &ParseOptions) -> Result<Presence, DocumentError> {
        match decode_within(self.whole, self.body, part)? {
            Cow::Borrowed(text) => {
                let doc = Doc::parse_reusing(text, std::mem::take(&mut self.nodes))?;
                let r = presence_of(&doc, text, opts);
                self.nodes = doc.into_buffer();
                r
            }
            Cow::Owned(text) => {
                let doc = Doc::parse(&text)?;
                presence_of(&doc, &text, opts)
            }
        }
    }
}

fn presence_from_any(doc: &Doc<'_>) -> Result<Presence, DocumentError> {
    match doc.node(doc.root()).local() {
        "presence" => presence_from_pidf_doc(doc),
        "categories" => presence_from_doc(doc),
        other => Err(doc.error_at(
            doc.root(),
            DocumentErrorKind::UnexpectedRoot {
                expected: "categories or presence",
                found: other.to_owned(),
            },
        )),
    }
}

/// Parses a `multipart/related` rlmi notification split at `boundary`.
///
/// The result lists every `<resource>` of the rlmi part in order, each with
/// the contact's parsed part when there is one (matched by the instance's
/// `cid` against the parts' Content-ID), followed by any further parts the
/// list does not mention. A contact part that fails to parse sets
/// [`ResourceUpdate::error`]; only a broken multipart framing or rlmi part
/// fails the whole call.
pub fn parse_rlmi_multipart(
    body: &[u8],
    boundary: &str,
    opts: &ParseOptions,
) -> Result<Vec<ResourceUpdate>, DocumentError> {
    if body.len() > MAX_MULTIPART_BYTES {
        return Err(DocumentError::unpositioned(
            MAX_MULTIPART_BYTES,
            DocumentErrorKind::TooLarge(MAX_MULTIPART_BYTES),
        ));
    }
    let parts = multipart::parse(body, boundary).map_err(|e| {
        DocumentError::unpositioned(e.offset, DocumentErrorKind::Multipart(e.to_string()))
    })?;
    let is_rlmi = |ct: &str| media_is(ct, "application/rlmi+xml");
    let Some(list_at) = parts.iter().position(|p| is_rlmi(p.content_type())) else {
        return Err(DocumentError::unpositioned(
            0,
            DocumentErrorKind::Multipart("no application/rlmi+xml part".into()),
        ));
    };
    let whole = std::str::from_utf8(body).ok();
    let list_text = decode_within(whole, body, parts[list_at].body)?;
    let list = Doc::parse(&list_text)?;
    let root = list.root();
    let rn = list.node(root);
    if rn.local() != "list" {
        return Err(list.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "list",
                found: rn.qname().to_owned(),
            },
        ));
    }
    if let Some(ns) = list.namespace(root)
        && ns != RLMI_NS
    {
        return Err(list.error_at(
            root,
            DocumentErrorKind::WrongNamespace {
                expected: RLMI_NS,
                found: ns.into_owned(),
            },
        ));
    }
    // Content-ID → part index.
    let mut by_cid: HashMap<&str, usize> = HashMap::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        if i == list_at {
            continue;
        }
        if let Some(cid) = p.header("Content-ID") {
            by_cid.entry(strip_angle(cid)).or_insert(i);
        }
    }
    let mut pp = PartParser {
        body,
        whole,
        nodes: Vec::new(),
    };
    let mut used = vec![false; parts.len()];
    used[list_at] = true;
    let mut out = Vec::with_capacity(parts.len().max(1) - 1);
    for r in list.children(root) {
        let n = list.node(r);
        if n.local() != "resource" {
            continue;
        }
        let uri: Box<str> = n.attr("uri").map(|u| u.as_ref().into()).unwrap_or_default();
        let mut u = ResourceUpdate::new(uri);
        if let Some(inst) = list.child(r, "instance") {
            // One pass over the attributes; the first of each name wins.
            for (k, v) in list.node(inst).attrs() {
                match k {
                    "state" if u.state.is_none() => u.state = Some(InstanceState::parse(&v)),
                    "poolFqdn" if u.pool_fqdn.is_none() => u.pool_fqdn = Some(v.as_ref().into()),
                    "reason" if u.reason.is_none() => u.reason = Some(v.as_ref().into()),
                    "cid" if u.cid.is_none() => u.cid = Some(v.as_ref().into()),
                    _ => {}
                }
            }
        }
        let part = u
            .cid
            .as_deref()
            .and_then(|c| by_cid.get(strip_angle(c)).copied());
        if let Some(pi) = part
            && !used[pi]
        {
            used[pi] = true;
            fill(
                &mut u,
                parts[pi].content_type(),
                parts[pi].body,
                opts,
                &mut pp,
            );
        }
        out.push(u);
    }
    for (pi, p) in parts.iter().enumerate() {
        if used[pi] {
            continue;
        }
        let mut u = ResourceUpdate::new(Box::from(""));
        fill(&mut u, p.content_type(), p.body, opts, &mut pp);
        if let Some(pr) = &u.presence {
            u.uri = pr.uri.clone();
        }
        out.push(u);
    }
    Ok(out)
}

fn fill<'a>(
    u: &mut ResourceUpdate,
    content_type: &str,
    body: &'a [u8],
    opts: &ParseOptions,
    pp: &mut PartParser<'a>,
) {
    let known = media_is(content_type, "application/msrtc-event-categories+xml")
        || media_is(content_type, "application/pidf+xml");
    if !known {
        u.error = Some(DocumentError::unpositioned(
            0,
            DocumentErrorKind::InvalidValue {
                what: "part content type",
                value: content_type.to_owned(),
            },
        ));
        return;
    }
    match pp.parse(body, opts) {
        Ok(mut p) => {
            if p.uri.is_empty() {
                p.uri = u.uri.clone();
            }
            u.presence = Some(p);
        }
        Err(e) => u.error = Some(e),
    }
}

fn media_is(ct: &str, essence: &str) -> bool {
    let e = ct.split(';').next().unwrap_or("").trim();
    e.eq_ignore_ascii_case(essence)
}

fn strip_angle(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s)
}

/// Builds a `multipart/related` rlmi notification body (what the test
/// server sends, and what the benchmark parses): one rlmi list over
/// `contacts` (uri, categories document), each part with Content-ID = the
/// uri without `sip:`.
pub fn build_rlmi_multipart(boundary: &str, list_uri: &str, contacts: &[(&str, &str)]) -> Vec<u8> {
    let mut list = String::with_capacity(128 + contacts.len() * 96);
    list.push_str("<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"");
    super::xml::escape_into(&mut list, list_uri);
    list.push_str("\" version=\"1\" fullState=\"true\">");
    let cids: Vec<Cow<'_, str>> = contacts
        .iter()
        .map(|(u, _)| Cow::Borrowed(u.strip_prefix("sip:").unwrap_or(u)))
        .collect();
    for ((uri, _), cid) in contacts.iter().zip(&cids) {
        list.push_str("<resource uri=\"");
        super::xml::escape_into(&mut list, uri);
        list.push_str("\"><instance id=\"0\" state=\"active\" cid=\"");
        super::xml::escape_into(&mut list, cid);
        list.push_str("\"/></resource>");
    }
    list.push_str("</list>");
    let cid_headers: Vec<[(&str, &str); 2]> = cids
        .iter()
        .map(|c| {
            [
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", c.as_ref()),
            ]
        })
        .collect();
    let list_headers = [
        ("Content-Transfer-Encoding", "binary"),
        ("Content-ID", "resourceList"),
    ];
    let mut specs: Vec<multipart::PartSpec<'_>> = Vec::with_capacity(contacts.len() + 1);
    specs.push(("application/rlmi+xml", &list_headers, list.as_bytes()));
    for ((_, doc), h) in contacts.iter().zip(&cid_headers) {
        specs.push((
            "application/msrtc-event-categories+xml",
            h.as_slice(),
            doc.as_bytes(),
        ));
    }
    multipart::build(boundary, &specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::State;

    const T16D_BODY: &str = "--50UBfW7LSCVLtggUPe5z\r\nContent-Transfer-Encoding: binary\r\nContent-ID: resourceList\r\nContent-Type: application/rlmi+xml\r\n\r\n<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:alice@contoso.com\" version=\"1\" fullState=\"true\"><resource uri=\"sip:bob@contoso.com\"><instance id=\"0\" state=\"active\" cid=\"bob@contoso.com\"/></resource></list>\r\n--50UBfW7LSCVLtggUPe5z\r\nContent-Transfer-Encoding: binary\r\nContent-ID: bob@contoso.com\r\nContent-Type: application/msrtc-event-categories+xml\r\n\r\n<categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" uri=\"sip:bob@contoso.com\"><category name=\"state\" instance=\"0\" publishTime=\"2009-06-01T10:00:00.000\"><state xmlns=\"http://schemas.microsoft.com/2006/09/sip/state\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"aggregateState\" lastActive=\"2009-06-01T09:55:00Z\"><availability>6500</availability><activity token=\"in-a-meeting\"/></state></category><category name=\"note\" instance=\"0\" publishTime=\"2009-06-01T08:00:00.000\"><note xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\"><body type=\"personal\" uri=\"\">Call me on my mobile</body></note></category></categories>\r\n--50UBfW7LSCVLtggUPe5z--\r\n";

    #[test]
    fn t16d_multipart() {
        let ct = "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary=50UBfW7LSCVLtggUPe5z";
        let v =
            parse_notify_body(T16D_BODY.as_bytes(), ct, &ParseOptions::default()).expect("parses");
        assert_eq!(v.len(), 1);
        let u = &v[0];
        assert_eq!(&*u.uri, "sip:bob@contoso.com");
        assert_eq!(u.state, Some(InstanceState::Active));
        assert_eq!(u.cid.as_deref(), Some("bob@contoso.com"));
        let p = u.presence.as_ref().expect("presence");
        assert_eq!(p.state(), State::Busy);
        assert_eq!(
            p.note.as_ref().map(|n| &*n.text),
            Some("Call me on my mobile")
        );
    }

    #[test]
    fn resubscribe_and_terminated_and_bad_part() {
        let list = r#"<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:alice@contoso.com" version="2" fullState="false"><resource uri="sip:dave@fabrikam.com"><instance id="1" state="resubscribe" poolFqdn="pool2.contoso.com"/></resource><resource uri="sip:eve@contoso.com"><instance id="2" state="terminated" reason="noresource"/></resource><resource uri="sip:bob@contoso.com"><instance id="3" state="active" cid="bob"/></resource></list>"#;
        let body = multipart::build(
            "b",
            &[
                ("application/rlmi+xml", &[], list.as_bytes()),
                (
                    "application/msrtc-event-categories+xml",
                    &[("Content-ID", "<bob>")],
                    b"<categories><category name=\"state\"><state><availability>x</availability></state></category></categories>",
                ),
            ],
        );
        let v = parse_rlmi_multipart(&body, "b", &ParseOptions::default()).expect("parses");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].state, Some(InstanceState::Resubscribe));
        assert_eq!(v[0].pool_fqdn.as_deref(), Some("pool2.contoso.com"));
        assert_eq!(v[1].state, Some(InstanceState::Terminated));
        assert_eq!(v[1].reason.as_deref(), Some("noresource"));
        assert!(v[2].presence.is_none());
        assert!(v[2].error.is_some());
    }

    #[test]
    fn build_and_parse_many() {
        let docs: Vec<(String, String)> = (0..50)
            .map(|i| {
                let uri = format!("sip:user{i}@contoso.com");
                let doc = format!(
                    "<categories xmlns=\"{}\" uri=\"{uri}\"><category name=\"state\"><state><availability>{}</availability></state></category></categories>",
                    crate::presence::CATEGORIES_NS,
                    3500 + i * 100
                );
                (uri, doc)
            })
            .collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(u, d)| (u.as_str(), d.as_str())).collect();
        let body = build_rlmi_multipart("bnd", "sip:alice@contoso.com", &refs);
        let v = parse_rlmi_multipart(&body, "bnd", &ParseOptions::default()).expect("parses");
        assert_eq!(v.len(), 50);
        for (i, u) in v.iter().enumerate() {
            assert_eq!(&*u.uri, refs[i].0);
            let p = u.presence.as_ref().expect("presence");
            assert_eq!(p.availability.map(|a| a.0), Some(3500 + i as u32 * 100));
        }
    }

    #[test]
    fn framing_errors() {
        let o = ParseOptions::default();
        assert!(parse_rlmi_multipart(b"nothing", "b", &o).is_err());
        let no_list = multipart::build("b", &[("text/plain", &[], b"x")]);
        assert!(parse_rlmi_multipart(&no_list, "b", &o).is_err());
        let e = parse_notify_body(b"", "multipart/related", &o).expect_err("no boundary");
        assert!(e.to_string().contains("boundary"));
    }
}
