//! Typing notifications: OC's `KeyboardActivity` INFO body (PROTOCOL.md
//! e.2, vector T21) and RFC 3994 `isComposing` documents.
//!
//! Parsing uses quick-xml with no DTD support: a `<!DOCTYPE` is refused,
//! only the five predefined entities and character references are
//! resolved, and documents are bounded ([`MAX_TYPING_BODY_BYTES`]).

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use thiserror::Error;

/// Content-Type of OC's KeyboardActivity INFO.
pub const KEYBOARD_ACTIVITY_CONTENT_TYPE: &str = "application/xml";

/// Content-Type of an RFC 3994 is-composing MESSAGE.
pub const IS_COMPOSING_CONTENT_TYPE: &str = "application/im-iscomposing+xml";

/// The RFC 3994 namespace.
pub const IS_COMPOSING_NS: &str = "urn:ietf:params:xml:ns:im-iscomposing";

/// The largest typing document accepted (they are about 200 bytes).
pub const MAX_TYPING_BODY_BYTES: usize = 16 * 1024;

/// Most elements read from one typing document.
const MAX_ELEMENTS: usize = 256;

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 32;

/// Whether the peer is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypingState {
    /// Typing (`status="type"`, `<state>active</state>`).
    Active,
    /// Stopped (`status="idle"`, `<state>idle</state>`).
    Idle,
}

/// Why a typing document could not be read. Answer the INFO or MESSAGE
/// with 400 (or ignore it: typing is advisory).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TypingError {
    /// Larger than [`MAX_TYPING_BODY_BYTES`].
    #[error("typing document larger than {MAX_TYPING_BODY_BYTES} bytes")]
    TooLarge,
    /// Not UTF-8.
    #[error("typing document is not UTF-8 (byte {0})")]
    InvalidUtf8(usize),
    /// Not well-formed XML.
    #[error("malformed XML at byte {offset}: {message}")]
    Xml {
        /// Byte offset where the reader stopped.
        offset: usize,
        /// The XML reader's explanation.
        message: String,
    },
    /// A `<!DOCTYPE>`; DTDs are never processed.
    #[error("DOCTYPE is not allowed")]
    DocType,
    /// An entity other than the five predefined ones.
    #[error("undefined entity &{0};")]
    UnknownEntity(String),
    /// Too many elements or too deep.
    #[error("typing document too complex")]
    TooComplex,
    /// The root element is not the expected one.
    #[error("unexpected root element {0:?}")]
    WrongRoot(String),
    /// No state (`<status status=…>` or `<state>`).
    #[error("typing document has no state")]
    MissingState,
    /// A state other than type/idle (active/idle).
    #[error("unknown typing state {0:?}")]
    UnknownState(String),
    /// `<refresh>` is not a number of seconds.
    #[error("refresh is not a number: {0:?}")]
    BadRefresh(String),
}

/// OC's typing INFO body, exactly as T21 shows:
/// `<?xml version="1.0"?><KeyboardActivity> <status status="type" /></KeyboardActivity>`
/// (`idle` when typing stopped). Send it with
/// [`KEYBOARD_ACTIVITY_CONTENT_TYPE`].
pub fn keyboard_activity(state: TypingState) -> String {
    let s = match state {
        TypingState::Active => "type",
        TypingState::Idle => "idle",
    };
    format!(
        "<?xml version=\"1.0\"?><KeyboardActivity> <status status=\"{s}\" /></KeyboardActivity>"
    )
}

/// Reads a KeyboardActivity body: the `status` attribute of the first
/// `<status>` child (`type` or `idle`, case-insensitive).
pub fn parse_keyboard_activity(body: &[u8]) -> Result<TypingState, TypingError> {
    let elems = read_elements(body)?;
    let root = elems.first().ok_or(TypingError::MissingState)?;
    if !root.name.eq_ignore_ascii_case("KeyboardActivity") {
        return Err(TypingError::WrongRoot(root.name.clone()));
    }
    let status = elems
        .iter()
        .filter(|e| e.depth == 1 && e.name.eq_ignore_ascii_case("status"))
        .find_map(|e| e.attr("status"))
        .ok_or(TypingError::MissingState)?;
    match status.trim().to_ascii_lowercase().as_str() {
        "type" | "typing" | "active" => Ok(TypingState::Active),
        "idle" => Ok(TypingState::Idle),
        _ => Err(TypingError::UnknownState(status.to_owned())),
    }
}

/// An RFC 3994 `isComposing` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsComposing {
    /// `active` or `idle`.
    pub state: TypingState,
    /// `<contenttype>`: what is being composed (e.g. `text/plain`).
    pub content_type: Option<String>,
    /// `<refresh>`: seconds until the sender refreshes an active state
    /// (the receiver times out to idle after it; RFC 3994 §4.2 default
    /// 120 s when absent).
    pub refresh: Option<u32>,
    /// `<lastactive>`: date-time text, kept as written.
    pub last_active: Option<String>,
}

impl IsComposing {
    /// An active state for `text/plain` with the given refresh interval.
    pub fn active(refresh: u32) -> IsComposing {
        IsComposing {
            state: TypingState::Active,
            content_type: Some("text/plain".to_owned()),
            refresh: Some(refresh),
            last_active: None,
        }
    }

    /// An idle state for `text/plain`.
    pub fn idle() -> IsComposing {
        IsComposing {
            state: TypingState::Idle,
            content_type: Some("text/plain".to_owned()),
            refresh: None,
            last_active: None,
        }
    }

    /// The document, with an XML declaration, elements in the RFC 3994
    /// schema order. Send it with [`IS_COMPOSING_CONTENT_TYPE`].
    pub fn to_xml(&self) -> String {
        let state = match self.state {
            TypingState::Active => "active",
            TypingState::Idle => "idle",
        };
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><isComposing xmlns=\"{IS_COMPOSING_NS}\"><state>{state}</state>"
        );
        if let Some(l) = &self.last_active {
            s.push_str(&format!("<lastactive>{}</lastactive>", escape(l)));
        }
        if let Some(c) = &self.content_type {
            s.push_str(&format!("<contenttype>{}</contenttype>", escape(c)));
        }
        if let Some(r) = self.refresh {
            s.push_str(&format!("<refresh>{r}</refresh>"));
        }
        s.push_str("</isComposing>");
        s
    }

    /// Reads an `isComposing` document. Unknown child elements are ignored
    /// (the schema allows extensions); the namespace prefix is not checked.
    pub fn parse(body: &[u8]) -> Result<IsComposing, TypingError> {
        let elems = read_elements(body)?;
        let root = elems.first().ok_or(TypingError::MissingState)?;
        if root.name != "isComposing" {
            return Err(TypingError::WrongRoot(root.name.clone()));
        }
        let child = |n: &str| {
            elems
                .iter()
                .find(|e| e.depth == 1 && e.name == n)
                .map(|e| e.text.trim().to_owned())
        };
        let state = child("state").ok_or(TypingError::MissingState)?;
        let state = match state.to_ascii_lowercase().as_str() {
            "active" => TypingState::Active,
            "idle" => TypingState::Idle,
            _ => return Err(TypingError::UnknownState(state)),
        };
        let refresh = match child("refresh") {
            Some(r) => Some(r.parse().map_err(|_| TypingError::BadRefresh(r))?),
            None => None,
        };
        Ok(IsComposing {
            state,
            content_type: child("contenttype"),
            refresh,
            last_active: child("lastactive"),
        })
    }
}

/// Reads a typing body of either kind by its content type: `Some` for
/// KeyboardActivity (`application/xml`) or is-composing, `None` when the
/// content type is neither.
pub fn parse_typing(content_type: &str, body: &[u8]) -> Option<Result<TypingState, TypingError>> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        KEYBOARD_ACTIVITY_CONTENT_TYPE | "text/xml" => Some(parse_keyboard_activity(body)),
        IS_COMPOSING_CONTENT_TYPE => Some(IsComposing::parse(body).map(|c| c.state)),
        _ => None,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One element of a small document, flattened.
struct Elem {
    depth: usize,
    /// Local name (prefix removed).
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Elem {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Reads every element (document order) with its depth, attributes and
/// direct text.
fn read_elements(body: &[u8]) -> Result<Vec<Elem>, TypingError> {
    if body.len() > MAX_TYPING_BODY_BYTES {
        return Err(TypingError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|e| TypingError::InvalidUtf8(e.valid_up_to()))?;
    let mut reader = Reader::from_str(text);
    let xml_err = |reader: &Reader<&[u8]>, e: &dyn std::fmt::Display| TypingError::Xml {
        offset: usize::try_from(reader.error_position()).unwrap_or(usize::MAX),
        message: e.to_string(),
    };
    let mut elems: Vec<Elem> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        let ev = reader.read_event().map_err(|e| xml_err(&reader, &e))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if elems.len() >= MAX_ELEMENTS || open.len() >= MAX_DEPTH {
                    return Err(TypingError::TooComplex);
                }
                if open.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(TypingError::Xml {
                            offset: usize::try_from(reader.buffer_position()).unwrap_or(0),
                            message: "more than one root element".to_owned(),
                        });
                    }
                }
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| xml_err(&reader, &e))?;
                    let v = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| xml_err(&reader, &e))?;
                    attrs.push((a.key.local_name().as_ref().to_owned(), v.into_owned()));
                }
                elems.push(Elem {
                    depth: open.len(),
                    name: e.local_name().as_ref().to_owned(),
                    attrs,
                    text: String::new(),
                });
                if matches!(ev, Event::Start(_)) {
                    open.push(elems.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    elems[i].text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(&i) = open.last() {
                    elems[i].text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| xml_err(&reader, &e))?
                        .ok_or_else(|| TypingError::UnknownEntity(r.to_string()))?
                } else {
                    predefined(&r).ok_or_else(|| TypingError::UnknownEntity(r.to_string()))?
                };
                if let Some(&i) = open.last() {
                    elems[i].text.push(c);
                }
            }
            Event::DocType(_) => return Err(TypingError::DocType),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(TypingError::Xml {
            offset: body.len(),
            message: "unclosed element".to_owned(),
        });
    }
    Ok(elems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn t21_keyboard_activity_exact() {
        assert_eq!(
            keyboard_activity(TypingState::Active),
            "<?xml version=\"1.0\"?><KeyboardActivity> <status status=\"type\" /></KeyboardActivity>"
        );
        assert_eq!(
            keyboard_activity(TypingState::Idle),
            "<?xml version=\"1.0\"?><KeyboardActivity> <status status=\"idle\" /></KeyboardActivity>"
        );
        for s in [TypingState::Active, TypingState::Idle] {
            assert_eq!(
                parse_keyboard_activity(keyboard_activity(s).as_bytes()),
                Ok(s)
            );
        }
    }

    #[test]
    fn keyboard_activity_variations() {
        let ok = [
            (
                "<KeyboardActivity><status status='type'/></KeyboardActivity>",
                TypingState::Active,
            ),
            (
                "\r\n<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<KeyboardActivity>\r\n  <status status = \"IDLE\" />\r\n</KeyboardActivity>\r\n",
                TypingState::Idle,
            ),
            (
                "<KeyboardActivity><!-- c --><status status=\"type\"></status></KeyboardActivity>",
                TypingState::Active,
            ),
        ];
        for (doc, s) in ok {
            assert_eq!(parse_keyboard_activity(doc.as_bytes()), Ok(s), "{doc}");
        }
        assert_eq!(
            parse_keyboard_activity(
                b"<KeyboardActivity><status status=\"busy\"/></KeyboardActivity>"
            ),
            Err(TypingError::UnknownState("busy".into()))
        );
        assert_eq!(
            parse_keyboard_activity(b"<KeyboardActivity/>"),
            Err(TypingError::MissingState)
        );
        assert_eq!(
            parse_keyboard_activity(b"<Other><status status=\"type\"/></Other>"),
            Err(TypingError::WrongRoot("Other".into()))
        );
        assert_eq!(parse_keyboard_activity(b""), Err(TypingError::MissingState));
    }

    #[test]
    fn is_composing_round_trip() {
        let a = IsComposing::active(60);
        let xml = a.to_xml();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state><contenttype>text/plain</contenttype><refresh>60</refresh></isComposing>"
        );
        assert_eq!(IsComposing::parse(xml.as_bytes()), Ok(a));
        let i = IsComposing::idle();
        assert_eq!(IsComposing::parse(i.to_xml().as_bytes()), Ok(i));
        let odd = IsComposing {
            state: TypingState::Active,
            content_type: Some("a<&>b".into()),
            refresh: None,
            last_active: Some("2003-01-27T10:43:00Z".into()),
        };
        assert_eq!(IsComposing::parse(odd.to_xml().as_bytes()), Ok(odd));
    }

    #[test]
    fn is_composing_rfc3994_example() {
        // RFC 3994 §7 example, with its schemaLocation and line breaks.
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
   <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing iscomposing.xsd">
     <state>active</state>
     <contenttype>text/plain</contenttype>
     <refresh>90</refresh>
   </isComposing>"#;
        let c = IsComposing::parse(doc).expect("parses");
        assert_eq!((c.state, c.refresh), (TypingState::Active, Some(90)));
        assert_eq!(c.content_type.as_deref(), Some("text/plain"));
        let prefixed = b"<ic:isComposing xmlns:ic=\"urn:ietf:params:xml:ns:im-iscomposing\"><ic:state>idle</ic:state><ic:x>ext</ic:x></ic:isComposing>";
        assert_eq!(
            IsComposing::parse(prefixed).map(|c| c.state),
            Ok(TypingState::Idle)
        );
    }

    #[test]
    fn bad_documents() {
        let doctype = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><isComposing><state>&e;</state></isComposing>";
        assert_eq!(IsComposing::parse(doctype), Err(TypingError::DocType));
        assert_eq!(
            IsComposing::parse(b"<isComposing><state>&e;</state></isComposing>"),
            Err(TypingError::UnknownEntity("e".into()))
        );
        assert_eq!(
            IsComposing::parse(b"<isComposing><state>&#97;ctive</state></isComposing>")
                .map(|c| c.state),
            Ok(TypingState::Active)
        );
        assert_eq!(
            IsComposing::parse(b"<isComposing><refresh>60</refresh></isComposing>"),
            Err(TypingError::MissingState)
        );
        assert_eq!(
            IsComposing::parse(
                b"<isComposing><state>active</state><refresh>soon</refresh></isComposing>"
            ),
            Err(TypingError::BadRefresh("soon".into()))
        );
        assert!(matches!(
            IsComposing::parse(b"<isComposing><state>active</state>"),
            Err(TypingError::Xml { .. })
        ));
        assert!(matches!(
            IsComposing::parse(b"<isComposing><state>active</stat></isComposing>"),
            Err(TypingError::Xml { .. })
        ));
        assert!(matches!(
            IsComposing::parse(b"<a/><b/>"),
            Err(TypingError::Xml { .. })
        ));
        assert_eq!(
            IsComposing::parse(b"\xff"),
            Err(TypingError::InvalidUtf8(0))
        );
        let big = vec![b' '; MAX_TYPING_BODY_BYTES + 1];
        assert_eq!(IsComposing::parse(&big), Err(TypingError::TooLarge));
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert_eq!(
            IsComposing::parse(deep.as_bytes()),
            Err(TypingError::TooComplex)
        );
    }

    #[test]
    fn dispatch_by_content_type() {
        let ka = keyboard_activity(TypingState::Active);
        assert_eq!(
            parse_typing("application/xml", ka.as_bytes()),
            Some(Ok(TypingState::Active))
        );
        let ic = IsComposing::idle().to_xml();
        assert_eq!(
            parse_typing(
                "Application/im-iscomposing+xml; charset=utf-8",
                ic.as_bytes()
            ),
            Some(Ok(TypingState::Idle))
        );
        assert_eq!(parse_typing("text/plain", b"hi"), None);
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_keyboard_activity(&b);
            let _ = IsComposing::parse(&b);
        }

        #[test]
        fn xmlish_never_panics(s in "[<>/?!=\"' a-zA-Z&#;0-9:\\[\\]-]{0,200}") {
            let _ = parse_keyboard_activity(s.as_bytes());
            let _ = IsComposing::parse(s.as_bytes());
        }

        #[test]
        fn is_composing_round_trips(active in any::<bool>(), ct in proptest::option::of("[ -~]{1,30}"),
                                    refresh in proptest::option::of(any::<u32>())) {
            let c = IsComposing {
                state: if active { TypingState::Active } else { TypingState::Idle },
                content_type: ct.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
                refresh,
                last_active: None,
            };
            prop_assert_eq!(IsComposing::parse(c.to_xml().as_bytes()), Ok(c));
        }
    }
}
