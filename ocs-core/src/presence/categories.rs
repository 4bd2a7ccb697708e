//! `application/msrtc-event-categories+xml`: a contact's published
//! categories (`<categories uri=…><category name=… instance=…
//! publishTime=…>…</category>…</categories>`), as NOTIFY, BENOTIFY and the
//! piggy-backed 200 OK carry them (PROTOCOL.md c.6), mapped into
//! [`Presence`].
//!
//! Mapping (after SIPE `process_incoming_notify_rlmi`):
//! - `state`: availability, activity token and `custom` texts come from the
//!   highest-ranked state: `aggregateState` > `userState` > untyped >
//!   `machineState` > `legacyInterop`; at equal rank the later one wins.
//!   `calendarState` fills [`Presence::calendar`], `phoneState`
//!   [`Presence::phone`]. `device` and `lastActive` come from any state.
//! - `note`: the body of the newest `publishTime` wins (`type="OOF"` is the
//!   out-of-office note); a newest note without a body clears it.
//! - `contactCard`: instances merge.
//! - everything else (`calendarData`, `userProperties`, `services`, unknown
//!   names) is kept raw in [`Presence::raw_categories`].

use std::borrow::Cow;

use super::error::{DocumentError, DocumentErrorKind};
use super::model::{
    Availability, CalendarState, CustomText, Note, NoteKind, Phone, PhoneState, Presence,
    RawCategory,
};
use super::xml::{Doc, NodeId, decode};

/// The namespace of `<categories>` in notifications.
pub const CATEGORIES_NS: &str = "http://schemas.microsoft.com/2006/09/sip/categories";

/// Knobs for the notification parsers.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Keep each contact's whole categories document in
    /// [`Presence::document`] (off by default: it roughly doubles the memory
    /// per watched contact).
    pub keep_document: bool,
}

impl ParseOptions {
    /// Options that keep the raw documents.
    pub fn keeping_documents() -> ParseOptions {
        ParseOptions {
            keep_document: true,
        }
    }
}

/// Parses a categories document with default options.
pub fn parse_categories(bytes: &[u8]) -> Result<Presence, DocumentError> {
    parse_categories_with(bytes, &ParseOptions::default())
}

/// Parses a categories document.
///
/// Errors: not well-formed or hostile XML, a root other than `categories`,
/// a namespace other than [`CATEGORIES_NS`] (no namespace is accepted), or
/// an availability that is not a number in `0..=4294967295`.
pub fn parse_categories_with(bytes: &[u8], opts: &ParseOptions) -> Result<Presence, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let mut p = presence_from_doc(&doc)?;
    if opts.keep_document {
        p.document = Some(text.as_ref().into());
    }
    Ok(p)
}

pub(crate) fn presence_from_doc<'d>(doc: &Doc<'d>) -> Result<Presence, DocumentError> {
    let root = doc.root();
    let r = doc.node(root);
    if r.local() != "categories" {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "categories",
                found: r.qname().to_owned(),
            },
        ));
    }
    if let Some(ns) = doc.namespace(root)
        && ns != CATEGORIES_NS
    {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::WrongNamespace {
                expected: CATEGORIES_NS,
                found: ns.into_owned(),
            },
        ));
    }
    let mut b = Builder::default();
    b.p.uri = r.attr("uri").map(|u| u.as_ref().into()).unwrap_or_default();
    for c in doc.children(root) {
        if doc.node(c).local() != "category" {
            continue;
        }
        b.category(doc, c)?;
    }
    Ok(b.finish())
}

#[derive(Default)]
struct Builder<'d> {
    p: Presence,
    state_rank: u8,
    note_time: Option<Cow<'d, str>>,
    note_seen: bool,
}

impl<'d> Builder<'d> {
    fn category(&mut self, doc: &Doc<'d>, c: NodeId) -> Result<(), DocumentError> {
        let n = doc.node(c);
        let name = n.attr("name").unwrap_or_default();
        match name.as_ref() {
            "state" => {
                if let Some(s) = doc.child(c, "state") {
                    self.state(doc, s)?;
                }
            }
            "note" => self.note(doc, c),
            "contactCard" => {
                if let Some(cc) = doc.child(c, "contactCard") {
                    self.card(doc, cc);
                }
            }
            "legacyInterop" => {
                if let Some(l) = doc.child(c, "legacyInterop")
                    && let Some(v) = doc.node(l).attr("availability")
                {
                    let a = availability(doc, l, &v)?;
                    if self.state_rank <= 1 {
                        self.state_rank = 1;
                        self.p.availability = Some(a);
                    }
                }
            }
            _ => self.p.raw_categories.push(RawCategory {
                name: name.as_ref().into(),
                xml: doc.raw(c).into(),
            }),
        }
        Ok(())
    }

    fn state(&mut self, doc: &Doc<'d>, s: NodeId) -> Result<(), DocumentError> {
        let n = doc.node(s);
        let ty = n.attr("type").unwrap_or_default();
        let ty = ty.rsplit_once(':').map_or(ty.as_ref(), |(_, l)| l);
        let avail = match doc.child(s, "availability") {
            Some(a) => Some(availability(doc, a, doc.node(a).trimmed())?),
            None => None,
        };
        let act = doc.child(s, "activity");
        let token = act
            .and_then(|a| doc.node(a).attr("token"))
            .map(|t| t.as_ref().into());
        if let Some(d) = doc.child_text(s, "device")
            && !d.is_empty()
        {
            self.p.device = Some(d.into());
        }
        if let Some(la) = n.attr("lastActive") {
            self.p.last_active = Some(la.as_ref().into());
        }
        let rank = match ty {
            "calendarState" => {
                let cal = CalendarState {
                    availability: avail,
                    activity: token,
                    meeting_subject: opt_text(doc, s, "meetingSubject"),
                    meeting_location: opt_text(doc, s, "meetingLocation"),
                };
                self.p.calendar = Some(cal);
                return Ok(());
            }
            "phoneState" => {
                self.p.phone = Some(PhoneState {
                    availability: avail,
                    activity: token,
                });
                return Ok(());
            }
            "aggregateState" => 5,
            "userState" => 4,
            "machineState" => 2,
            _ => 3,
        };
        if rank < self.state_rank {
            return Ok(());
        }
        self.state_rank = rank;
        if avail.is_some() {
            self.p.availability = avail;
        }
        self.p.activity = token;
        self.p.custom.clear();
        if let Some(a) = act {
            for cu in doc.children(a) {
                let cn = doc.node(cu);
                if cn.local() != "custom" {
                    continue;
                }
                let lcid = match cn.attr("LCID") {
                    Some(l) => l.trim().parse::<u32>().map_err(|_| {
                        doc.error_at(
                            cu,
                            DocumentErrorKind::InvalidValue {
                                what: "LCID",
                                value: short(&l),
                            },
                        )
                    })?,
                    None => 1033,
                };
                let text = cn.trimmed();
                if !text.is_empty() {
                    self.p.custom.push(CustomText {
                        lcid,
                        text: text.into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn note(&mut self, doc: &Doc<'d>, c: NodeId) {
        let time = doc.node(c).attr("publishTime");
        // Newest publishTime wins; ties and missing times: later wins.
        if self.note_seen
            && let (Some(best), Some(t)) = (&self.note_time, &time)
            && t < best
        {
            return;
        }
        self.note_seen = true;
        self.note_time = time;
        let body = doc.child(c, "note").and_then(|n| doc.child(n, "body"));
        self.p.note = body.and_then(|b| {
            let bn = doc.node(b);
            let text = bn.trimmed();
            if text.is_empty() {
                return None;
            }
            let kind = match bn.attr("type") {
                Some(t) if t.eq_ignore_ascii_case("OOF") => NoteKind::OutOfOffice,
                _ => NoteKind::Personal,
            };
            Some(Note {
                kind,
                text: text.into(),
            })
        });
    }

    fn card(&mut self, doc: &Doc<'d>, cc: NodeId) {
        let card = self.p.card.get_or_insert_with(Default::default);
        let fill = |slot: &mut Option<Box<str>>, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                *slot = Some(v.into());
            }
        };
        if let Some(id) = doc.child(cc, "identity") {
            let dn = doc
                .child(id, "name")
                .and_then(|n| doc.child_text(n, "displayName"));
            fill(&mut card.display_name, dn);
            fill(&mut card.email, doc.child_text(id, "email"));
        }
        fill(&mut card.email, doc.child_text(cc, "email"));
        fill(&mut card.title, doc.child_text(cc, "title"));
        fill(&mut card.company, doc.child_text(cc, "company"));
        if doc
            .child_text(cc, "automaton")
            .is_some_and(|t| t.eq_ignore_ascii_case("true"))
        {
            card.automaton = true;
        }
        // Exact capacity up front: `finish` would otherwise reallocate.
        let more = doc
            .children(cc)
            .filter(|&ph| doc.node(ph).local() == "phone")
            .count();
        card.phones.reserve_exact(more);
        for ph in doc.children(cc) {
            let pn = doc.node(ph);
            if pn.local() != "phone" {
                continue;
            }
            let kind = pn
                .attr("type")
                .map_or_else(|| "other".into(), |t| t.as_ref().into());
            let nz = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(Into::into);
            card.phones.push(Phone {
                kind,
                uri: nz(doc.child_text(ph, "uri")),
                display: nz(doc.child_text(ph, "displayString")),
            });
        }
    }

    fn finish(mut self) -> Presence {
        self.p.custom.shrink_to_fit();
        self.p.raw_categories.shrink_to_fit();
        if let Some(c) = &mut self.p.card {
            c.phones.shrink_to_fit();
        }
        self.p
    }
}

fn opt_text(doc: &Doc<'_>, id: NodeId, local: &str) -> Option<Box<str>> {
    doc.child_text(id, local)
        .filter(|t| !t.is_empty())
        .map(Into::into)
}

pub(crate) fn short(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Parses an availability number; anything but a decimal `u32` is an
/// error positioned at `at`.
pub(crate) fn availability(
    doc: &Doc<'_>,
    at: NodeId,
    v: &str,
) -> Result<Availability, DocumentError> {
    let t = v.trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u32>()
    {
        return Ok(Availability(n));
    }
    Err(doc.error_at(
        at,
        DocumentErrorKind::InvalidValue {
            what: "availability",
            value: short(t),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::State;

    pub(crate) const T16D_BOB: &str = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:bob@contoso.com"><category name="state" instance="0" publishTime="2009-06-01T10:00:00.000"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="aggregateState" lastActive="2009-06-01T09:55:00Z"><availability>6500</availability><activity token="in-a-meeting"/></state></category><category name="note" instance="0" publishTime="2009-06-01T08:00:00.000"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">Call me on my mobile</body></note></category></categories>"#;

    #[test]
    fn t16d_contact() {
        let p = parse_categories(T16D_BOB.as_bytes()).expect("parses");
        assert_eq!(&*p.uri, "sip:bob@contoso.com");
        assert_eq!(p.availability, Some(Availability(6500)));
        assert_eq!(p.state(), State::Busy);
        assert_eq!(p.activity.as_deref(), Some("in-a-meeting"));
        assert!(p.is_in_a_meeting());
        assert_eq!(p.last_active.as_deref(), Some("2009-06-01T09:55:00Z"));
        let note = p.note.as_ref().expect("note");
        assert_eq!(&*note.text, "Call me on my mobile");
        assert_eq!(note.kind, NoteKind::Personal);
        assert!(p.raw_categories.is_empty());
        assert!(p.document.is_none());
        assert!(p.heap_size() < 2048, "{}", p.heap_size());
    }

    #[test]
    fn t16a_contact_card() {
        // T16(a) is an excerpt; closed here.
        let xml = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories"
            uri="sip:john.doe@contoso.com">
   <category name="contactCard" instance="0" publishTime="2010-02-04T03:43:49.370" >
      <contactCard xmlns="http://schemas.microsoft.com/2006/09/sip/contactcard" >
        <identity>
           <name>
              <displayName>John Doe</displayName>
           </name>
           <email>john.doe@contoso.com</email>
         </identity>
      </contactCard>   </category>
</categories>"#;
        let p = parse_categories(xml.as_bytes()).expect("parses");
        assert_eq!(p.display_name(), Some("John Doe"));
        let card = p.card.as_ref().expect("card");
        assert_eq!(card.email.as_deref(), Some("john.doe@contoso.com"));
        assert_eq!(p.state(), State::Offline);
        assert_eq!(p.availability, None);
    }

    #[test]
    fn t16b_custom_and_t16c_legacy() {
        let xml = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:x@contoso.com"><category name="legacyInterop"><legacyInterop availability="15500" xmlns="http://schemas.microsoft.com/2006/09/sip/categories" /></category><category name="state" instance="0"><state xsi:type="aggregateState"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xmlns="http://schemas.microsoft.com/2006/09/sip/state">
  <availability>3500</availability>
  <activity>
    <custom LCID="1033" xmlns="http://schemas.microsoft.com/2006/09/sip/state">Working from Arlington</custom>
  </activity>
</state></category></categories>"#;
        let p = parse_categories(xml.as_bytes()).expect("parses");
        assert_eq!(p.availability, Some(Availability(3500)));
        assert_eq!(p.custom_text(1033), Some("Working from Arlington"));
        assert_eq!(p.custom_text(1031), None);
        assert_eq!(p.any_custom_text(1031), Some("Working from Arlington"));
        assert_eq!(p.activity, None);

        let legacy = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:x@contoso.com"><category name="legacyInterop"><legacyInterop availability="3500" xmlns="http://schemas.microsoft.com/2006/09/sip/categories" /></category></categories>"#;
        let p = parse_categories(legacy.as_bytes()).expect("parses");
        assert_eq!(p.state(), State::Online);
    }

    #[test]
    fn phone_calendar_card_and_raw() {
        let xml = r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:carol@contoso.com">
<category name="state" instance="1"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="phoneState"><availability>6500</availability><activity token="on-the-phone" minAvailability="6500" maxAvailability="8999"/></state></category>
<category name="state" instance="2"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="calendarState"><availability>6500</availability><activity token="in-a-meeting"/><meetingSubject>Budget &amp; plans</meetingSubject><meetingLocation>Room 1</meetingLocation></state></category>
<category name="state" instance="3"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="machineState"><availability>3500</availability><device>Mobile</device></state></category>
<category name="state" instance="0"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="userState"><availability>9500</availability></state></category>
<category name="note" publishTime="2009-06-01T09:00:00.000"><note><body type="OOF">On leave</body></note></category>
<category name="note" publishTime="2009-06-01T08:00:00.000"><note><body type="personal">older</body></note></category>
<category name="contactCard" instance="1"><contactCard><title>Engineer</title><company>Contoso</company><phone type="work"><uri>tel:+14255550100</uri><displayString>+1 425 555 0100</displayString></phone><phone type="mobile"><uri>tel:+14255550101</uri></phone></contactCard></category>
<category name="calendarData" instance="0"><calendarData xmlns="http://schemas.microsoft.com/2006/09/sip/calendarData"><freeBusy startTime="2009-06-01T00:00:00Z" granularity="PT15M" encodingVersion="1">AAAA</freeBusy></calendarData></category>
<category name="brandNew"><whatever a="1"/></category>
</categories>"#;
        let p = parse_categories(xml.as_bytes()).expect("parses");
        assert_eq!(
            p.availability,
            Some(Availability(9500)),
            "userState beats machineState"
        );
        assert!(p.is_on_the_phone());
        assert!(p.is_mobile());
        let cal = p.calendar.as_ref().expect("calendar");
        assert_eq!(cal.meeting_subject.as_deref(), Some("Budget & plans"));
        assert_eq!(cal.meeting_location.as_deref(), Some("Room 1"));
        let note = p.note.as_ref().expect("note");
        assert_eq!(
            (note.kind, &*note.text),
            (NoteKind::OutOfOffice, "On leave")
        );
        let card = p.card.as_ref().expect("card");
        assert_eq!(card.title.as_deref(), Some("Engineer"));
        assert_eq!(card.phones.len(), 2);
        assert_eq!(&*card.phones[0].kind, "work");
        assert_eq!(card.phones[0].display.as_deref(), Some("+1 425 555 0100"));
        let names: Vec<_> = p.raw_categories.iter().map(|r| &*r.name).collect();
        assert_eq!(names, ["calendarData", "brandNew"]);
        assert!(
            p.raw_categories[1]
                .xml
                .starts_with("<category name=\"brandNew\">")
        );
        assert!(p.raw_categories[1].xml.ends_with("</category>"));
    }

    #[test]
    fn newest_empty_note_clears() {
        let xml = r#"<categories uri="sip:a@b"><category name="note" publishTime="2009-01-01T00:00:00"><note><body>old</body></note></category><category name="note" publishTime="2009-01-02T00:00:00"><note/></category></categories>"#;
        let p = parse_categories(xml.as_bytes()).expect("parses");
        assert_eq!(p.note, None);
    }

    #[test]
    fn bad_values_and_namespaces() {
        let bad = r#"<categories uri="sip:a@b">
<category name="state"><state><availability>busy</availability></state></category></categories>"#;
        let e = parse_categories(bad.as_bytes()).expect_err("bad availability");
        assert!(matches!(
            e.kind,
            DocumentErrorKind::InvalidValue {
                what: "availability",
                ..
            }
        ));
        assert_eq!((e.line, e.column), (2, 31));
        for v in ["-1", "99999999999", "", "1e4"] {
            let x = format!(
                "<categories><category name=\"state\"><state><availability>{v}</availability></state></category></categories>"
            );
            assert!(parse_categories(x.as_bytes()).is_err(), "{v:?}");
        }
        let e = parse_categories(b"<categories xmlns=\"urn:evil\"/>").expect_err("ns");
        assert!(
            matches!(e.kind, DocumentErrorKind::WrongNamespace { .. }),
            "{e}"
        );
        let e = parse_categories(b"<presence/>").expect_err("root");
        assert!(
            e.to_string().contains("expected root element <categories>"),
            "{e}"
        );
    }

    #[test]
    fn keeps_document_when_asked() {
        let p = parse_categories_with(T16D_BOB.as_bytes(), &ParseOptions::keeping_documents())
            .expect("parses");
        assert_eq!(p.document.as_deref(), Some(T16D_BOB));
    }
}
