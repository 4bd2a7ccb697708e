//! Custom presence states (PROTOCOL.md d; the seed): the `customStates`
//! XML file named by the `CustomStateURL` policy.
//!
//! ```xml
//! <customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">
//!   <customState ID="1" availability="online">
//!     <activity LCID="1033">Working from Home</activity>
//!   </customState>
//! </customStates>
//! ```
//!
//! Rules checked (strict [`validate`] reports every violation with its
//! line and column; [`load`] keeps the valid states and returns the
//! violations as warnings, which is what a client does at sign-in):
//! - the root is `customStates` with no namespace or the 09/2005 or
//!   09/2009 namespace;
//! - at most [`MAX_STATES`] `customState` elements;
//! - `ID` is an integer 1–4, unique in the file;
//! - `availability` is `online`, `busy` or `do-not-disturb` in any case
//!   (3500 / 6500 / 9500); `away`, `be-right-back` and others are refused
//!   (a community report says Communicator then shows none of the states);
//! - each state has at least one `activity`; `LCID` is an integer and
//!   defaults to 1033; one text per LCID; the text is 1–64 characters.
//!
//! The text shown for a client is the one for its LCID; when that language
//! is not listed, Communicator shows only the plain state (seed), so
//! [`CustomState::text`] returns `None` then.
//!
//! [`check_url`] applies the `CustomStateURL` scheme rules.

use std::fmt;

use thiserror::Error;

use crate::presence::xml::{Doc, NodeId, decode};
use crate::presence::{Availability, DocumentError, DocumentErrorKind};

/// The OC 2007 (R1) namespace.
pub const NS_2005: &str = "http://schemas.microsoft.com/09/2005/communicator/customStates";
/// The namespace of the Lync 2010/2013 docs (accepted for R2 as well).
pub const NS_2009: &str = "http://schemas.microsoft.com/09/2009/communicator/customStates";
/// Most custom states Communicator shows.
pub const MAX_STATES: usize = 4;
/// Longest status text, in characters.
pub const MAX_TEXT_CHARS: usize = 64;
/// The LCID of an activity without one (en-US).
pub const DEFAULT_LCID: u32 = 1033;

/// The availability a custom state may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CustomAvailability {
    /// `online` → 3500.
    Online,
    /// `busy` → 6500.
    Busy,
    /// `do-not-disturb` → 9500.
    DoNotDisturb,
}

impl CustomAvailability {
    /// Parses the attribute value, ASCII case-insensitively.
    pub fn parse(s: &str) -> Option<CustomAvailability> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("online") {
            Some(CustomAvailability::Online)
        } else if s.eq_ignore_ascii_case("busy") {
            Some(CustomAvailability::Busy)
        } else if s.eq_ignore_ascii_case("do-not-disturb") {
            Some(CustomAvailability::DoNotDisturb)
        } else {
            None
        }
    }

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomAvailability::Online => "online",
            CustomAvailability::Busy => "busy",
            CustomAvailability::DoNotDisturb => "do-not-disturb",
        }
    }

    /// The availability number published for it.
    pub fn availability(self) -> Availability {
        match self {
            CustomAvailability::Online => Availability::ONLINE,
            CustomAvailability::Busy => Availability::BUSY,
            CustomAvailability::DoNotDisturb => Availability::DO_NOT_DISTURB,
        }
    }
}

/// One custom state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomState {
    /// `ID` (1–4).
    pub id: u32,
    /// Its availability.
    pub availability: CustomAvailability,
    /// (LCID, text) pairs in document order.
    pub texts: Vec<(u32, String)>,
}

impl CustomState {
    /// The text for `lcid`, or `None` when that language is not listed
    /// (Communicator then shows only the plain state).
    pub fn text(&self, lcid: u32) -> Option<&str> {
        self.texts
            .iter()
            .find(|(l, _)| *l == lcid)
            .map(|(_, t)| t.as_str())
    }
}

/// A problem in a custom-states file (or URL), with its position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub struct Violation {
    /// 1-based line (0 when the problem has no position, as for a URL).
    pub line: u32,
    /// 1-based column in characters (0 without a position).
    pub column: u32,
    /// What is wrong.
    pub kind: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.kind)
        }
    }
}

/// What a [`Violation`] is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Not well-formed or hostile XML (nothing else could be checked).
    #[error("{0}")]
    Xml(DocumentErrorKind),
    /// The root element is not `customStates`.
    #[error("the root element must be <customStates>, found <{0}>")]
    WrongRoot(String),
    /// A namespace other than none, 09/2005 or 09/2009.
    #[error("namespace \"{0}\" is not accepted (use none, {NS_2005} or {NS_2009})")]
    WrongNamespace(String),
    /// A state beyond the fourth.
    #[error("custom state #{0} is one too many: at most {MAX_STATES} are allowed")]
    TooManyStates(usize),
    /// `ID` missing.
    #[error("<customState> has no ID attribute")]
    MissingId,
    /// `ID` not an integer 1–4.
    #[error("ID \"{0}\" must be an integer from 1 to {MAX_STATES}")]
    BadId(String),
    /// `ID` used twice.
    #[error("ID {0} is used by an earlier custom state")]
    DuplicateId(u32),
    /// `availability` missing.
    #[error("<customState> has no availability attribute")]
    MissingAvailability,
    /// `availability` not online, busy or do-not-disturb.
    #[error("availability \"{0}\" is not allowed: use online, busy or do-not-disturb")]
    BadAvailability(String),
    /// A state without any `activity`.
    #[error("custom state has no <activity> text")]
    NoActivity,
    /// `LCID` not an integer.
    #[error("LCID \"{0}\" is not a number")]
    BadLcid(String),
    /// Two activities with the same LCID in one state.
    #[error("LCID {0} appears twice in this custom state")]
    DuplicateLcid(u32),
    /// Empty activity text.
    #[error("activity text is empty")]
    EmptyText,
    /// Text longer than 64 characters.
    #[error("activity text is {0} characters long; at most {MAX_TEXT_CHARS} are allowed")]
    TextTooLong(usize),
    /// An element the format does not have.
    #[error("unexpected element <{0}>")]
    UnexpectedElement(String),
    /// A `CustomStateURL` the client would not load.
    #[error("{0}")]
    UrlNotAllowed(String),
}

impl Violation {
    fn at(doc: &Doc<'_>, offset: usize, kind: ViolationKind) -> Violation {
        let (line, column) = crate::presence::xml::line_col(doc.src, offset);
        Violation { line, column, kind }
    }

    fn from_doc_error(e: DocumentError) -> Violation {
        Violation {
            line: e.line,
            column: e.column,
            kind: ViolationKind::Xml(e.kind),
        }
    }
}

/// Parsed custom states.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomStates {
    /// The states, in document order.
    pub states: Vec<CustomState>,
}

impl CustomStates {
    /// A state by ID.
    pub fn get(&self, id: u32) -> Option<&CustomState> {
        self.states.iter().find(|s| s.id == id)
    }
}

/// The result of the lenient loader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loaded {
    /// The states that passed every check (at most four).
    pub states: CustomStates,
    /// Everything wrong, to surface as warnings.
    pub warnings: Vec<Violation>,
}

/// Strict validation: the states, or every violation found.
pub fn validate(bytes: &[u8]) -> Result<CustomStates, Vec<Violation>> {
    let l = load(bytes);
    if l.warnings.is_empty() {
        Ok(l.states)
    } else {
        Err(l.warnings)
    }
}

/// Lenient loading, as a client at sign-in: keeps each state that has no
/// violation of its own (the first four), and reports all violations as
/// warnings.
pub fn load(bytes: &[u8]) -> Loaded {
    let mut out = Loaded::default();
    let text = match decode(bytes) {
        Ok(t) => t,
        Err(e) => {
            out.warnings.push(Violation::from_doc_error(e));
            return out;
        }
    };
    let doc = match Doc::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            out.warnings.push(Violation::from_doc_error(e));
            return out;
        }
    };
    let root = doc.root();
    let rn = doc.node(root);
    if rn.local() != "customStates" {
        out.warnings.push(Violation::at(
            &doc,
            rn.start,
            ViolationKind::WrongRoot(rn.qname().to_owned()),
        ));
        return out;
    }
    if let Some(ns) = doc.namespace(root)
        && ns != NS_2005
        && ns != NS_2009
        && !ns.is_empty()
    {
        out.warnings.push(Violation::at(
            &doc,
            rn.start,
            ViolationKind::WrongNamespace(ns.into_owned()),
        ));
    }
    let mut seen_ids: Vec<u32> = Vec::new();
    let mut count = 0;
    for c in doc.children(root) {
        let n = doc.node(c);
        if n.local() != "customState" {
            out.warnings.push(Violation::at(
                &doc,
                n.start,
                ViolationKind::UnexpectedElement(n.qname().to_owned()),
            ));
            continue;
        }
        count += 1;
        let before = out.warnings.len();
        if count > MAX_STATES {
            out.warnings.push(Violation::at(
                &doc,
                n.start,
                ViolationKind::TooManyStates(count),
            ));
        }
        let state = check_state(&doc, c, &mut seen_ids, &mut out.warnings);
        if out.warnings.len() == before
            && let Some(s) = state
        {
            out.states.states.push(s);
        }
    }
    out
}

fn check_state(
    doc: &Doc<'_>,
    c: NodeId,
    seen_ids: &mut Vec<u32>,
    w: &mut Vec<Violation>,
) -> Option<CustomState> {
    let n = doc.node(c);
    let id = match n.attr("ID") {
        None => {
            w.push(Violation::at(doc, n.start, ViolationKind::MissingId));
            None
        }
        Some(v) => match v.trim().parse::<u32>() {
            Ok(i) if (1..=MAX_STATES as u32).contains(&i) => {
                if seen_ids.contains(&i) {
                    w.push(Violation::at(
                        doc,
                        doc.attr_offset(c, "ID"),
                        ViolationKind::DuplicateId(i),
                    ));
                    None
                } else {
                    seen_ids.push(i);
                    Some(i)
                }
            }
            _ => {
                w.push(Violation::at(
                    doc,
                    doc.attr_offset(c, "ID"),
                    ViolationKind::BadId(v.into_owned()),
                ));
                None
            }
        },
    };
    let availability = match n.attr("availability") {
        None => {
            w.push(Violation::at(
                doc,
                n.start,
                ViolationKind::MissingAvailability,
            ));
            None
        }
        Some(v) => {
            let a = CustomAvailability::parse(&v);
            if a.is_none() {
                w.push(Violation::at(
                    doc,
                    doc.attr_offset(c, "availability"),
                    ViolationKind::BadAvailability(v.into_owned()),
                ));
            }
            a
        }
    };
    let mut texts: Vec<(u32, String)> = Vec::new();
    let mut any_activity = false;
    for a in doc.children(c) {
        let an = doc.node(a);
        if an.local() != "activity" {
            w.push(Violation::at(
                doc,
                an.start,
                ViolationKind::UnexpectedElement(an.qname().to_owned()),
            ));
            continue;
        }
        any_activity = true;
        let lcid = match an.attr("LCID") {
            None => Some(DEFAULT_LCID),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(l) => Some(l),
                Err(_) => {
                    w.push(Violation::at(
                        doc,
                        doc.attr_offset(a, "LCID"),
                        ViolationKind::BadLcid(v.into_owned()),
                    ));
                    None
                }
            },
        };
        let text = an.trimmed();
        let chars = text.chars().count();
        let mut ok = lcid.is_some();
        if chars == 0 {
            w.push(Violation::at(doc, an.start, ViolationKind::EmptyText));
            ok = false;
        } else if chars > MAX_TEXT_CHARS {
            w.push(Violation::at(
                doc,
                an.start,
                ViolationKind::TextTooLong(chars),
            ));
            ok = false;
        }
        if let Some(l) = lcid
            && texts.iter().any(|(x, _)| *x == l)
        {
            w.push(Violation::at(
                doc,
                an.start,
                ViolationKind::DuplicateLcid(l),
            ));
            ok = false;
        }
        if ok && let Some(l) = lcid {
            texts.push((l, text.to_owned()));
        }
    }
    if !any_activity {
        w.push(Violation::at(doc, n.start, ViolationKind::NoActivity));
    }
    Some(CustomState {
        id: id?,
        availability: availability?,
        texts,
    })
}

/// The Communicator version whose `CustomStateURL` rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientVersion {
    /// OC 2007: `file:`, `http:` and `https:`.
    Oc2007,
    /// OC 2007 R2: `http:` or `https:` (the seed: R2 needs an HTTP URL).
    Oc2007R2,
}

/// Checks a `CustomStateURL` against the client's rules: `https:` is
/// always allowed; `http:` unless SIP high-security mode is on; `file:`
/// only for OC 2007 behaviour and not in high-security mode. Schemes are
/// compared case-insensitively (`FILE:` appears in the TechNet docs).
pub fn check_url(url: &str, client: ClientVersion, high_security: bool) -> Result<(), Violation> {
    let deny = |msg: String| {
        Err(Violation {
            line: 0,
            column: 0,
            kind: ViolationKind::UrlNotAllowed(msg),
        })
    };
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once(':') else {
        return deny(format!("\"{url}\" is not a URL (file:, http: or https:)"));
    };
    let valid_scheme = scheme.len() > 1
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme || rest.is_empty() {
        return deny(format!("\"{url}\" is not a URL (file:, http: or https:)"));
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if high_security => {
            deny("SIP high-security mode allows only https: custom-state URLs".into())
        }
        "http" => Ok(()),
        "file" if high_security => {
            deny("SIP high-security mode allows only https: custom-state URLs".into())
        }
        "file" => match client {
            ClientVersion::Oc2007 => Ok(()),
            ClientVersion::Oc2007R2 => deny(
                "file: custom-state URLs work only with OC 2007; OC 2007 R2 needs http: or https:"
                    .into(),
            ),
        },
        other => deny(format!(
            "scheme \"{other}:\" is not supported (file:, http: or https:)"
        )),
    }
}

/// The local path a `file:` URL names, or `None` when `url` is not a
/// `file:` URL. Handles `file:///C:/dir/x.xml` (→ `C:/dir/x.xml`),
/// `file:///tmp/x.xml` (→ `/tmp/x.xml`), `file://localhost/tmp/x.xml`,
/// `file:/tmp/x.xml` and the UNC forms `file://server/share/x.xml` and
/// `file://\\server\share\x.xml` (→ `//server/share/x.xml`,
/// `\\server\share\x.xml`). `%XX` escapes are decoded.
pub fn file_url_path(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("file") {
        return None;
    }
    let path = match rest.strip_prefix("//") {
        None => rest.to_owned(),
        Some(after) if after.starts_with('\\') => after.to_owned(),
        Some(after) => {
            let (host, p) = match after.find('/') {
                Some(i) => after.split_at(i),
                None => (after, ""),
            };
            if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
                p.to_owned()
            } else {
                format!("//{host}{p}")
            }
        }
    };
    let path = percent_decode(&path);
    // `/C:/x` is a Windows drive path.
    let b = path.as_bytes();
    if b.len() >= 3 && b[0] == b'/' && b[1].is_ascii_alphabetic() && b[2] == b':' {
        return Some(path[1..].to_owned());
    }
    Some(path)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T17: &str = r#"<?xml version="1.0"?>
<customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">
  <customState ID="1" availability="online">
    <activity LCID="1033">Working from Home</activity>
    <activity LCID="1044">activity 2 for 1044</activity>
    <activity LCID="1055">activity 3 for 1055</activity>
  </customState>
  <customState ID="2" availability="busy">
    <activity LCID="1033">In a Live Meeting</activity>
  </customState>
</customStates>
"#;

    const SEED: &str = r#"<customStates> 
    <customState ID="1" availability="online"> 
        <activity LCID="1031">Pflege MSXFAQ</activity> 
        <activity LCID="1033">Maintain MSXFAQ</activity> 
    </customState> 
    <customState ID="2" availability="Busy"> 
        <activity LCID="1031">Schreibe Dokumentation</activity> 
        <activity LCID="1033">authoring whitepapers</activity> 
    </customState> 
    <customState ID="3" availability="busy"> 
        <activity LCID="1031">Support und Hotline</activity> 
        <activity LCID="1033">Support and Hotline</activity> 
    </customState> 
    <customState ID="4" availability="do-not-disturb"> 
        <activity LCID="1031">Halte Webcast</activity> 
        <activity LCID="1033">Hosting a Webcast</activity> 
    </customState> 
</customStates>"#;

    #[test]
    fn t17_valid() {
        let s = validate(T17.as_bytes()).expect("valid");
        assert_eq!(s.states.len(), 2);
        let one = s.get(1).expect("state 1");
        assert_eq!(one.availability, CustomAvailability::Online);
        assert_eq!(one.availability.availability(), Availability(3500));
        assert_eq!(one.text(1033), Some("Working from Home"));
        assert_eq!(one.text(1044), Some("activity 2 for 1044"));
        assert_eq!(one.text(1031), None, "no fallback: plain state shows");
        assert_eq!(
            s.get(2).map(|s| s.availability.availability()),
            Some(Availability(6500))
        );
    }

    #[test]
    fn seed_example_german() {
        let s = validate(SEED.as_bytes()).expect("valid");
        assert_eq!(s.states.len(), 4);
        assert_eq!(
            s.get(2).map(|s| s.availability),
            Some(CustomAvailability::Busy)
        );
        assert_eq!(s.get(1).and_then(|s| s.text(1031)), Some("Pflege MSXFAQ"));
        assert_eq!(
            s.get(4).and_then(|s| s.text(1033)),
            Some("Hosting a Webcast")
        );
        assert_eq!(
            s.get(4).map(|s| s.availability.availability()),
            Some(Availability(9500))
        );
        // The 2005 namespace and none are accepted too.
        let ns2005 = SEED.replace(
            "<customStates>",
            "<customStates xmlns=\"http://schemas.microsoft.com/09/2005/communicator/customStates\">",
        );
        assert!(validate(ns2005.as_bytes()).is_ok());
    }

    #[test]
    fn t17_negative_cases_all_reported() {
        let xml = format!(
            r#"<customStates xmlns="urn:wrong">
  <customState ID="1" availability="away"><activity LCID="1033">A</activity></customState>
  <customState ID="1" availability="online"><activity>{}</activity></customState>
  <customState ID="3" availability="busy"><activity LCID="x">C</activity></customState>
  <customState ID="4" availability="busy"><activity LCID="1033">D</activity></customState>
  <customState ID="2" availability="busy"><activity LCID="1033">E</activity></customState>
</customStates>"#,
            "x".repeat(65)
        );
        let v = validate(xml.as_bytes()).expect_err("invalid");
        let kinds: Vec<_> = v.iter().map(|v| v.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ViolationKind::WrongNamespace("urn:wrong".into()),
                ViolationKind::BadAvailability("away".into()),
                ViolationKind::DuplicateId(1),
                ViolationKind::TextTooLong(65),
                ViolationKind::BadLcid("x".into()),
                ViolationKind::TooManyStates(5),
            ]
        );
        assert_eq!((v[0].line, v[0].column), (1, 1));
        assert_eq!((v[1].line, v[1].column), (2, 23), "{}", v[1]);
        assert_eq!((v[2].line, v[2].column), (3, 16), "{}", v[2]);
        assert_eq!(v[3].line, 3);
        assert_eq!(
            v[5].to_string(),
            "6:3: custom state #5 is one too many: at most 4 are allowed"
        );

        // The lenient loader keeps the valid ones (ID 4 only here).
        let l = load(xml.as_bytes());
        assert_eq!(
            l.states.states.iter().map(|s| s.id).collect::<Vec<_>>(),
            [4]
        );
        assert_eq!(l.warnings.len(), 6);
    }

    #[test]
    fn missing_lcid_match_and_default_lcid() {
        let xml = r#"<customStates><customState ID="1" availability="ONLINE"><activity>Hello</activity></customState></customStates>"#;
        let s = validate(xml.as_bytes()).expect("valid");
        assert_eq!(
            s.states[0].text(1033),
            Some("Hello"),
            "no LCID counts as 1033"
        );
        assert_eq!(s.states[0].text(1031), None);
    }

    #[test]
    fn hostile_and_structural() {
        let v = validate(b"<!DOCTYPE x [<!ENTITY a \"b\">]><customStates/>").expect_err("doctype");
        assert!(matches!(
            v[0].kind,
            ViolationKind::Xml(DocumentErrorKind::DocType)
        ));
        let v = validate(b"<states/>").expect_err("root");
        assert_eq!(v[0].kind, ViolationKind::WrongRoot("states".into()));
        let v = validate(b"<customStates><customState><foo/></customState><bar/></customStates>")
            .expect_err("many");
        let kinds: Vec<_> = v.iter().map(|v| v.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ViolationKind::MissingId,
                ViolationKind::MissingAvailability,
                ViolationKind::UnexpectedElement("foo".into()),
                ViolationKind::NoActivity,
                ViolationKind::UnexpectedElement("bar".into()),
            ]
        );
        let v = validate(
            b"<customStates><customState ID=\"9\" availability=\"busy\"><activity LCID=\"1033\">a</activity><activity LCID=\"1033\"> </activity></customState></customStates>",
        )
        .expect_err("bad");
        let kinds: Vec<_> = v.iter().map(|v| v.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ViolationKind::BadId("9".into()),
                ViolationKind::EmptyText,
                ViolationKind::DuplicateLcid(1033)
            ]
        );
        assert!(validate(b"").is_err());
        assert_eq!(
            validate(b"<customStates/>").expect("empty ok").states.len(),
            0
        );
    }

    #[test]
    fn text_limit_counts_characters() {
        let ok = format!(
            "<customStates><customState ID=\"1\" availability=\"busy\"><activity>{}</activity></customState></customStates>",
            "ä".repeat(64)
        );
        assert!(validate(ok.as_bytes()).is_ok());
    }

    #[test]
    fn url_policy() {
        use ClientVersion::*;
        let ok = |u, c, h| check_url(u, c, h).is_ok();
        assert!(ok(
            "file:///C:/Program Files/Microsoft Office Communicator/presence.xml",
            Oc2007,
            false
        ));
        assert!(ok("FILE:///c:/x.xml", Oc2007, false));
        assert!(!ok("file:///c:/x.xml", Oc2007R2, false));
        assert!(!ok("file:///c:/x.xml", Oc2007, true));
        assert!(ok("http://lspool/Presence.xml", Oc2007R2, false));
        assert!(ok("http://lspool/Presence.xml", Oc2007, false));
        assert!(!ok("http://lspool/Presence.xml", Oc2007R2, true));
        assert!(ok("https://lspool/Presence.xml", Oc2007R2, true));
        assert!(ok("HTTPS://lspool/Presence.xml", Oc2007, true));
        assert!(!ok("ftp://x/y", Oc2007, false));
        assert!(!ok("C:\\x.xml", Oc2007, false));
        assert!(!ok("presence.xml", Oc2007, false));
        let e = check_url("file:///x", Oc2007R2, false).expect_err("r2");
        assert!(e.to_string().contains("R2 needs http"), "{e}");
    }

    #[test]
    fn file_urls() {
        let p = |u| file_url_path(u);
        assert_eq!(p("file:///tmp/x.xml").as_deref(), Some("/tmp/x.xml"));
        assert_eq!(p("FILE:///c:/dir/x.xml").as_deref(), Some("c:/dir/x.xml"));
        assert_eq!(
            p("file:///C:/Program%20Files/p.xml").as_deref(),
            Some("C:/Program Files/p.xml")
        );
        assert_eq!(p("file://localhost/tmp/x").as_deref(), Some("/tmp/x"));
        assert_eq!(p("file:/tmp/x").as_deref(), Some("/tmp/x"));
        assert_eq!(
            p("file://srv/share/x.xml").as_deref(),
            Some("//srv/share/x.xml")
        );
        assert_eq!(
            p("file://\\\\srv\\share\\x.xml").as_deref(),
            Some("\\\\srv\\share\\x.xml")
        );
        assert_eq!(p("file:///a%2"), Some("/a%2".into()), "bad escape kept");
        assert_eq!(p("file:///%C3%A4").as_deref(), Some("/ä"));
        assert_eq!(p("http://x/y"), None);
        assert_eq!(p("x.xml"), None);
    }

    #[test]
    fn url_policy_edge_cases() {
        use ClientVersion::*;
        // Whitespace around the policy string is ignored.
        assert!(check_url("  https://x/y.xml ", Oc2007R2, true).is_ok());
        assert!(
            check_url("https:", Oc2007R2, false).is_err(),
            "nothing after the scheme"
        );
        assert!(check_url("", Oc2007, false).is_err());
        let e = check_url("http://x/y", Oc2007R2, true).expect_err("hs");
        assert!(e.to_string().contains("high-security"), "{e}");
        assert_eq!((e.line, e.column), (0, 0));
    }
}
