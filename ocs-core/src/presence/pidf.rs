//! The standard dialect: PIDF (RFC 3863) with RPID activities (RFC 4480),
//! parsed into the same [`Presence`] model and built for PUBLISH.
//!
//! Mapping to availability (so both dialects share [`State`]):
//! - every tuple `closed` (and no open one) → 18500 offline;
//! - open with an RPID activity: `busy` → 6500 (`busy`), `on-the-phone` →
//!   6500 (`on-the-phone`), `meeting`/`appointment`/`presentation` → 6500
//!   (`in-a-meeting`), `away`/`permanent-absence`/`sleeping` → 15500
//!   (`away`), `vacation`/`holiday` → 15500 (`out-of-office`);
//! - open otherwise → 3500 online;
//! - no tuple at all → no availability.

use super::error::{DocumentError, DocumentErrorKind};
use super::model::{Availability, Note, NoteKind, Presence, State};
use super::xml::{Doc, NodeId, decode, escape_into};

/// The PIDF namespace.
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The PIDF data-model namespace (RFC 4479: `person`, `device`).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The RPID namespace.
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// Parses a PIDF document (RPID extensions understood, others ignored).
pub fn parse_pidf(bytes: &[u8]) -> Result<Presence, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    presence_from_pidf_doc(&doc)
}

pub(crate) fn presence_from_pidf_doc(doc: &Doc<'_>) -> Result<Presence, DocumentError> {
    let root = doc.root();
    let r = doc.node(root);
    if r.local() != "presence" {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "presence",
                found: r.qname().to_owned(),
            },
        ));
    }
    match doc.namespace(root) {
        Some(ns) if ns == PIDF_NS => {}
        other => {
            return Err(doc.error_at(
                root,
                DocumentErrorKind::WrongNamespace {
                    expected: PIDF_NS,
                    found: other.map(|o| o.into_owned()).unwrap_or_default(),
                },
            ));
        }
    }
    let mut p = Presence {
        uri: r
            .attr("entity")
            .map(|e| e.as_ref().into())
            .unwrap_or_default(),
        ..Presence::default()
    };
    let mut any_tuple = false;
    let mut open = false;
    let mut activity: Option<&str> = None;
    let mut note: Option<&str> = None;
    // Notes: a person note beats a tuple note beats a presence-level note.
    let mut note_rank = 0;
    for c in doc.children(root) {
        let n = doc.node(c);
        match n.local() {
            "tuple" => {
                any_tuple = true;
                if let Some(st) = doc.child(c, "status")
                    && let Some(b) = doc.child_text(st, "basic")
                    && b.eq_ignore_ascii_case("open")
                {
                    open = true;
                }
                if let Some(t) = doc.child_text(c, "note")
                    && !t.is_empty()
                    && note_rank < 2
                {
                    note = Some(t);
                    note_rank = 2;
                }
                if let Some(st) = doc.child(c, "status") {
                    activity = activity.or_else(|| activities(doc, st));
                }
            }
            "person" => {
                activity = activity.or_else(|| activities(doc, c));
                if let Some(t) = doc.child_text(c, "note")
                    && !t.is_empty()
                    && note_rank < 3
                {
                    note = Some(t);
                    note_rank = 3;
                }
            }
            "note" => {
                let t = n.trimmed();
                if !t.is_empty() && note_rank < 1 {
                    note = Some(t);
                    note_rank = 1;
                }
            }
            _ => {}
        }
    }
    if any_tuple {
        let (avail, token) = if !open {
            (Availability::OFFLINE, None)
        } else {
            match activity {
                Some("busy") => (Availability::BUSY, Some("busy")),
                Some("on-the-phone") => (Availability::BUSY, Some("on-the-phone")),
                Some("meeting" | "appointment" | "presentation") => {
                    (Availability::BUSY, Some("in-a-meeting"))
                }
                Some("away" | "permanent-absence" | "sleeping") => {
                    (Availability::AWAY, Some("away"))
                }
                Some("vacation" | "holiday") => (Availability::AWAY, Some("out-of-office")),
                _ => (Availability::ONLINE, None),
            }
        };
        p.availability = Some(avail);
        p.activity = token.map(Into::into);
    }
    p.note = note.map(|t| Note {
        kind: NoteKind::Personal,
        text: t.into(),
    });
    Ok(p)
}

/// The first RPID activity under `parent/activities`.
fn activities<'d>(doc: &'d Doc<'_>, parent: NodeId) -> Option<&'d str> {
    let a = doc.child(parent, "activities")?;
    doc.children(a)
        .map(|c| doc.node(c).local())
        .find(|l| *l != "note" && *l != "unknown")
}

/// What to publish in a PIDF+RPID document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidfPublish<'a> {
    /// The presentity (`entity`), e.g. `sip:alice@example.com`.
    pub entity: &'a str,
    /// The tuple id (stable across refreshes; a token).
    pub tuple_id: &'a str,
    /// `basic` open (true) or closed.
    pub open: bool,
    /// A note, if any.
    pub note: Option<&'a str>,
    /// RPID activities (`busy`, `away`, `on-the-phone`, `meeting`, ...).
    pub activities: &'a [&'a str],
}

impl<'a> PidfPublish<'a> {
    /// The document for a [`State`] (plus an optional note): offline is
    /// closed; busy, busy-idle and do-not-disturb are `busy`; away and
    /// be-right-back are `away`; online and inactive are open without an
    /// activity.
    pub fn for_state(
        entity: &'a str,
        tuple_id: &'a str,
        state: State,
        note: Option<&'a str>,
    ) -> PidfPublish<'a> {
        let (open, activities): (bool, &'static [&'static str]) = match state {
            State::Offline => (false, &[]),
            State::Busy | State::BusyIdle | State::DoNotDisturb => (true, &["busy"]),
            State::Away | State::BeRightBack => (true, &["away"]),
            _ => (true, &[]),
        };
        PidfPublish {
            entity,
            tuple_id,
            open,
            note,
            activities,
        }
    }
}

/// Builds a PIDF document with RPID activities (for PUBLISH with
/// `Content-Type: application/pidf+xml`). Activity names that are not
/// XML names are skipped.
pub fn build_pidf(p: &PidfPublish<'_>) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"");
    escape_into(&mut out, p.entity);
    out.push_str("\"><tuple id=\"");
    escape_into(&mut out, p.tuple_id);
    out.push_str("\"><status><basic>");
    out.push_str(if p.open { "open" } else { "closed" });
    out.push_str("</basic></status>");
    if let Some(n) = p.note {
        out.push_str("<note>");
        escape_into(&mut out, n);
        out.push_str("</note>");
    }
    out.push_str("</tuple><dm:person id=\"p-");
    escape_into(&mut out, p.tuple_id);
    out.push_str("\">");
    let acts: Vec<&str> = p
        .activities
        .iter()
        .copied()
        .filter(|a| is_name(a))
        .collect();
    if !acts.is_empty() {
        out.push_str("<rpid:activities>");
        for a in acts {
            out.push_str("<rpid:");
            out.push_str(a);
            out.push_str("/>");
        }
        out.push_str("</rpid:activities>");
    }
    if let Some(n) = p.note {
        out.push_str("<dm:note>");
        escape_into(&mut out, n);
        out.push_str("</dm:note>");
    }
    out.push_str("</dm:person></presence>");
    out
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3863_and_rpid() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:someone@example.com">
  <tuple id="bs35r9"><status><basic>open</basic></status><contact priority="0.8">im:someone@mobilecarrier.net</contact></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>Calling</dm:note></dm:person>
  <note xml:lang="en">Don't Disturb Please!</note>
</presence>"#;
        let p = parse_pidf(xml.as_bytes()).expect("parses");
        assert_eq!(&*p.uri, "pres:someone@example.com");
        assert_eq!(p.state(), State::Busy);
        assert_eq!(p.activity.as_deref(), Some("on-the-phone"));
        assert!(p.is_on_the_phone());
        assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("Calling"));

        let closed = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>closed</basic></status></tuple><note>gone</note></presence>"#;
        let p = parse_pidf(closed.as_bytes()).expect("parses");
        assert_eq!(p.state(), State::Offline);
        assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("gone"));

        let e = parse_pidf(b"<presence entity=\"sip:a@b\"/>").expect_err("no ns");
        assert!(matches!(e.kind, DocumentErrorKind::WrongNamespace { .. }));
    }

    #[test]
    fn build_then_parse() {
        for st in State::ALL {
            let doc = build_pidf(&PidfPublish::for_state(
                "sip:alice@example.com",
                "t1",
                st,
                Some("a & <b>"),
            ));
            let p = parse_pidf(doc.as_bytes()).expect("parses");
            let expect = match st {
                State::Offline => State::Offline,
                State::Busy | State::BusyIdle | State::DoNotDisturb => State::Busy,
                State::Away | State::BeRightBack => State::Away,
                _ => State::Online,
            };
            assert_eq!(p.state(), expect, "{st}");
            assert_eq!(p.note.as_ref().map(|n| &*n.text), Some("a & <b>"));
            assert_eq!(&*p.uri, "sip:alice@example.com");
        }
    }

    #[test]
    fn builder_output() {
        let doc = build_pidf(&PidfPublish {
            entity: "sip:alice@example.com",
            tuple_id: "t1",
            open: true,
            note: None,
            activities: &["busy", "bad name"],
        });
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:alice@example.com\"><tuple id=\"t1\"><status><basic>open</basic></status></tuple><dm:person id=\"p-t1\"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>"
        );
    }
}
