//! SDP for IM sessions (an RFC 4566 subset).
//!
//! An OCS IM session is an INVITE whose SDP has one `m=message` line
//! (`m=x-ms-message` for OCS 2005) and an `a=accept-types:` attribute
//! (PROTOCOL.md e.1). [`build_offer`] and [`build_answer`] print exactly
//! what SIPE sends; [`Sdp::parse`] reads any SDP into lines, and
//! [`message_media`] picks out the IM media line.
//!
//! The parser keeps every line in order, checks only what IM needs (a
//! leading `v=0`, `<type>=<value>` lines, well-formed `m=` lines) and is
//! bounded ([`MAX_SDP_BYTES`], [`MAX_SDP_LINES`]).

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// The accept-types OC 2007 R2 / SIPE offer and answer (PROTOCOL.md e.1).
pub const ACCEPT_TYPES: &str = "text/plain text/html image/gif multipart/alternative application/im-iscomposing+xml application/ms-imdn+xml text/x-msmsgsinvite";

/// The largest SDP accepted, in bytes. An IM SDP is about 300 bytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// The most lines accepted in one SDP.
pub const MAX_SDP_LINES: usize = 256;

/// Which IM media line an SDP carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageMediaKind {
    /// `m=message`: OCS 2007 and later.
    Message,
    /// `m=x-ms-message`: OCS 2005 (LCS).
    XMsMessage,
}

impl MessageMediaKind {
    /// The media token as written in the `m=` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageMediaKind::Message => "message",
            MessageMediaKind::XMsMessage => "x-ms-message",
        }
    }

    /// The kind for a media token, if it is an IM media type.
    pub fn from_media(media: &str) -> Option<MessageMediaKind> {
        if media.eq_ignore_ascii_case("message") {
            Some(MessageMediaKind::Message)
        } else if media.eq_ignore_ascii_case("x-ms-message") {
            Some(MessageMediaKind::XMsMessage)
        } else {
            None
        }
    }
}

/// Builds the SDP offer of an outgoing IM INVITE exactly as SIPE does
/// (vector T21): `m=message <port> sip null` with [`ACCEPT_TYPES`].
///
/// `port` is the port of our connection to the server (SIPE uses the
/// server's port; OCS does not open a media stream for IM).
pub fn build_offer(local_ip: IpAddr, port: u16) -> String {
    build_offer_with(MessageMediaKind::Message, local_ip, port, ACCEPT_TYPES)
}

/// [`build_offer`] with a chosen media kind (OCS 2005 needs
/// `x-ms-message`) and accept-types (space-separated).
pub fn build_offer_with(
    kind: MessageMediaKind,
    local_ip: IpAddr,
    port: u16,
    accept_types: &str,
) -> String {
    build(kind, local_ip, port, "null", accept_types)
}

/// Builds the SDP answer to an incoming IM INVITE: `m=message <port> sip
/// sip:<self-uri>` with [`ACCEPT_TYPES`]. `self_uri` may be given with or
/// without its `sip:` scheme.
pub fn build_answer(local_ip: IpAddr, port: u16, self_uri: &str) -> String {
    build_answer_with(
        MessageMediaKind::Message,
        local_ip,
        port,
        self_uri,
        ACCEPT_TYPES,
    )
}

/// [`build_answer`] with a chosen media kind (answer an OCS 2005
/// `x-ms-message` offer in kind) and accept-types.
pub fn build_answer_with(
    kind: MessageMediaKind,
    local_ip: IpAddr,
    port: u16,
    self_uri: &str,
    accept_types: &str,
) -> String {
    let uri = one_token(self_uri);
    let has_scheme = uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:"))
        || uri
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    let fmt = if has_scheme {
        uri
    } else {
        format!("sip:{uri}")
    };
    build(kind, local_ip, port, &fmt, accept_types)
}

/// Drops whitespace and control characters so a caller's string can never
/// split an SDP line or add fields to it.
fn one_token(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

fn build(kind: MessageMediaKind, ip: IpAddr, port: u16, fmt: &str, accept_types: &str) -> String {
    let family = match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let accept: String = accept_types
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    format!(
        "v=0\r\no=- 0 0 IN {family} {ip}\r\ns=session\r\nc=IN {family} {ip}\r\nt=0 0\r\nm={} {port} sip {fmt}\r\na=accept-types:{accept}\r\n",
        kind.as_str()
    )
}

/// Why an SDP could not be parsed. `offset` is a byte offset into the
/// input and `line` the 1-based line number. The offer or answer is
/// unusable: an incoming INVITE gets 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at line {line} (byte {offset})")]
pub struct SdpError {
    /// Byte offset of the offending line or field.
    pub offset: usize,
    /// 1-based line number (0 for whole-document errors).
    pub line: usize,
    /// What was wrong.
    pub kind: SdpErrorKind,
}

/// The kinds of SDP error. New kinds may be added.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpErrorKind {
    /// The SDP is empty.
    #[error("empty SDP")]
    Empty,
    /// The first line is not `v=`.
    #[error("SDP does not start with v=")]
    MissingVersion,
    /// `v=` is not `0`.
    #[error("unsupported SDP version")]
    BadVersion,
    /// A line without `=` after its type letter.
    #[error("line is not <type>=<value>")]
    MissingEquals,
    /// The type is not a single letter.
    #[error("line type is not a single letter")]
    BadLineType,
    /// An `m=` line with fewer than media, port and proto fields.
    #[error("malformed m= line")]
    BadMediaLine,
    /// An `m=` port (or port count) that is not a number up to 65535.
    #[error("non-numeric or out-of-range port")]
    BadPort,
    /// The SDP is not UTF-8.
    #[error("SDP is not valid UTF-8")]
    InvalidUtf8,
    /// Larger than [`MAX_SDP_BYTES`].
    #[error("SDP larger than {MAX_SDP_BYTES} bytes")]
    TooLarge,
    /// More than [`MAX_SDP_LINES`] lines.
    #[error("SDP has more than {MAX_SDP_LINES} lines")]
    TooManyLines,
}

/// One `<type>=<value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpLine {
    /// The type letter (`v`, `o`, `s`, `c`, `t`, `a`, ...).
    pub kind: char,
    /// Everything after the `=`, as written.
    pub value: String,
}

impl SdpLine {
    /// For an `a=` line: the attribute name and its value (`None` for a
    /// flag attribute such as `a=recvonly`).
    pub fn attribute(&self) -> Option<(&str, Option<&str>)> {
        if self.kind != 'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (self.value.as_str(), None),
        })
    }
}

/// One media description: the `m=` line and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`message`, `x-ms-message`, `audio`, ...).
    pub media: String,
    /// Port.
    pub port: u16,
    /// The port count after `/`, if given.
    pub port_count: Option<u16>,
    /// Transport protocol (`sip` for IM, `RTP/AVP`, ...).
    pub proto: String,
    /// Format list (`null` in an IM offer, the answerer's URI in an IM
    /// answer, payload types for RTP).
    pub fmt: Vec<String>,
    /// The lines after the `m=` line (`c=`, `b=`, `a=`, ...), in order.
    pub lines: Vec<SdpLine>,
}

impl MediaDescription {
    /// The value of the first media-level attribute `name` (`Some("")`
    /// for a flag attribute).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        attribute(&self.lines, name)
    }
}

fn attribute<'a>(lines: &'a [SdpLine], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| match l.attribute() {
        Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v.unwrap_or("")),
        _ => None,
    })
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines in order, starting with `v=`.
    pub session: Vec<SdpLine>,
    /// Media descriptions in order.
    pub media: Vec<MediaDescription>,
}

impl Sdp {
    /// Parses an SDP. Lines may end in CRLF or LF; blank lines are
    /// skipped. Errors are positioned.
    pub fn parse(input: &[u8]) -> Result<Sdp, SdpError> {
        let err = |offset, line, kind| SdpError { offset, line, kind };
        if input.len() > MAX_SDP_BYTES {
            return Err(err(MAX_SDP_BYTES, 0, SdpErrorKind::TooLarge));
        }
        let text = std::str::from_utf8(input)
            .map_err(|e| err(e.valid_up_to(), 0, SdpErrorKind::InvalidUtf8))?;
        let mut sdp = Sdp {
            session: Vec::new(),
            media: Vec::new(),
        };
        let mut offset = 0;
        let mut count = 0;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let start = offset;
            offset += raw.len() + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_SDP_LINES {
                return Err(err(start, line_no, SdpErrorKind::TooManyLines));
            }
            let mut chars = line.chars();
            let kind = chars.next().unwrap_or(' ');
            let rest = chars.as_str();
            let Some(value) = rest.strip_prefix('=') else {
                let k = if line.contains('=') {
                    SdpErrorKind::BadLineType
                } else {
                    SdpErrorKind::MissingEquals
                };
                return Err(err(start, line_no, k));
            };
            if !kind.is_ascii_alphabetic() {
                return Err(err(start, line_no, SdpErrorKind::BadLineType));
            }
            if count == 1 {
                if kind != 'v' {
                    return Err(err(start, line_no, SdpErrorKind::MissingVersion));
                }
                if value.trim() != "0" {
                    return Err(err(start + 2, line_no, SdpErrorKind::BadVersion));
                }
            }
            let l = SdpLine {
                kind,
                value: value.to_owned(),
            };
            if kind == 'm' {
                sdp.media.push(parse_media(value, start + 2, line_no)?);
            } else if let Some(m) = sdp.media.last_mut() {
                m.lines.push(l);
            } else {
                sdp.session.push(l);
            }
        }
        if count == 0 {
            return Err(err(0, 0, SdpErrorKind::Empty));
        }
        Ok(sdp)
    }

    /// The value of the first session-level line of type `kind`.
    pub fn session_value(&self, kind: char) -> Option<&str> {
        self.session
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| l.value.as_str())
    }

    /// The value of the first session-level attribute `name` (`Some("")`
    /// for a flag attribute).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        attribute(&self.session, name)
    }
}

fn parse_media(value: &str, base: usize, line: usize) -> Result<MediaDescription, SdpError> {
    let bad = |offset, kind| SdpError { offset, line, kind };
    let mut fields = value.split(' ').filter(|f| !f.is_empty());
    let (Some(media), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad(base, SdpErrorKind::BadMediaLine));
    };
    let port_at = base + value.find(port).unwrap_or(0);
    let parse_port = |s: &str| -> Result<u16, SdpError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(port_at, SdpErrorKind::BadPort));
        }
        s.parse().map_err(|_| bad(port_at, SdpErrorKind::BadPort))
    };
    let (p, port_count) = match port.split_once('/') {
        Some((p, n)) => (parse_port(p)?, Some(parse_port(n)?)),
        None => (parse_port(port)?, None),
    };
    Ok(MediaDescription {
        media: media.to_owned(),
        port: p,
        port_count,
        proto: proto.to_owned(),
        fmt: fields.map(str::to_owned).collect(),
        lines: Vec::new(),
    })
}

impl fmt::Display for Sdp {
    /// Prints the SDP with CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.session {
            write!(f, "{}={}\r\n", l.kind, l.value)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for x in &m.fmt {
                write!(f, " {x}")?;
            }
            f.write_str("\r\n")?;
            for l in &m.lines {
                write!(f, "{}={}\r\n", l.kind, l.value)?;
            }
        }
        Ok(())
    }
}

/// The IM media line of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMedia {
    /// `message` or `x-ms-message`.
    pub kind: MessageMediaKind,
    /// The port.
    pub port: u16,
    /// The transport protocol (`sip`).
    pub proto: String,
    /// The format list (`null` in an offer, the answerer's URI in an
    /// answer).
    pub fmt: Vec<String>,
    /// The accept-types (media-level, else session-level); empty when the
    /// SDP lists none.
    pub accept_types: Vec<String>,
}

impl MessageMedia {
    /// True when `content_type` (essence, e.g. `text/html`) is among the
    /// accept-types. An SDP without accept-types accepts `text/plain`
    /// only. `*` and `type/*` wildcards match.
    pub fn accepts(&self, content_type: &str) -> bool {
        let ct = content_type.trim();
        if self.accept_types.is_empty() {
            return ct.eq_ignore_ascii_case("text/plain");
        }
        let top = ct.split('/').next().unwrap_or("");
        self.accept_types.iter().any(|a| {
            a == "*"
                || a == "*/*"
                || a.eq_ignore_ascii_case(ct)
                || a.strip_suffix("/*")
                    .is_some_and(|t| t.eq_ignore_ascii_case(top))
        })
    }
}

/// Finds the first `m=message` (or OCS 2005 `m=x-ms-message`) media line
/// and its accept-types. `None` when the SDP offers no IM (an INVITE
/// without it is answered 488/501 by the session layer).
pub fn message_media(sdp: &Sdp) -> Option<MessageMedia> {
    sdp.media.iter().find_map(|m| {
        let kind = MessageMediaKind::from_media(&m.media)?;
        let accept = m
            .attribute("accept-types")
            .or_else(|| sdp.attribute("accept-types"))
            .unwrap_or("");
        Some(MessageMedia {
            kind,
            port: m.port,
            proto: m.proto.clone(),
            fmt: m.fmt.clone(),
            accept_types: accept.split_whitespace().map(str::to_owned).collect(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const T21: &str = "v=0\r\no=- 0 0 IN IP4 10.0.0.5\r\ns=session\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=message 5061 sip null\r\na=accept-types:text/plain text/html image/gif multipart/alternative application/im-iscomposing+xml application/ms-imdn+xml text/x-msmsgsinvite\r\n";

    fn v4() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))
    }

    #[test]
    fn t21_offer_byte_for_byte() {
        assert_eq!(build_offer(v4(), 5061), T21);
    }

    #[test]
    fn t21_offer_parses_to_message_media() {
        let sdp = Sdp::parse(T21.as_bytes()).expect("T21 parses");
        assert_eq!(sdp.session_value('s'), Some("session"));
        assert_eq!(sdp.session_value('c'), Some("IN IP4 10.0.0.5"));
        assert_eq!(sdp.to_string(), T21);
        let m = message_media(&sdp).expect("m=message");
        assert_eq!(m.kind, MessageMediaKind::Message);
        assert_eq!(m.port, 5061);
        assert_eq!(m.proto, "sip");
        assert_eq!(m.fmt, ["null"]);
        assert_eq!(m.accept_types.len(), 7);
        assert!(m.accepts("text/html"));
        assert!(m.accepts("application/im-iscomposing+xml"));
        assert!(!m.accepts("text/rtf"));
    }

    #[test]
    fn answer() {
        let a = build_answer(v4(), 5061, "alice@contoso.com");
        assert_eq!(a, T21.replace("sip null", "sip sip:alice@contoso.com"));
        assert_eq!(build_answer(v4(), 5061, "sip:alice@contoso.com"), a);
        let m = message_media(&Sdp::parse(a.as_bytes()).expect("parses")).expect("media");
        assert_eq!(m.fmt, ["sip:alice@contoso.com"]);
        // A hostile URI cannot add lines.
        let evil = build_answer(v4(), 1, "bob@x\r\na=evil");
        assert_eq!(
            Sdp::parse(evil.as_bytes()).expect("parses").media[0]
                .lines
                .len(),
            1
        );
    }

    #[test]
    fn ocs2005_and_ipv6() {
        let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let o = build_offer_with(MessageMediaKind::XMsMessage, ip, 5060, "text/plain");
        assert!(o.contains("o=- 0 0 IN IP6 ::1\r\n"));
        assert!(o.contains("m=x-ms-message 5060 sip null\r\n"));
        let m = message_media(&Sdp::parse(o.as_bytes()).expect("parses")).expect("media");
        assert_eq!(m.kind, MessageMediaKind::XMsMessage);
        assert_eq!(m.accept_types, ["text/plain"]);
    }

    #[test]
    fn session_level_accept_types_and_lf_lines() {
        let s = "v=0\na=accept-types:text/plain\nm=audio 4000 RTP/AVP 0\nm=message 5060 sip null\n";
        let sdp = Sdp::parse(s.as_bytes()).expect("parses");
        assert_eq!(sdp.media.len(), 2);
        let m = message_media(&sdp).expect("media");
        assert_eq!(m.accept_types, ["text/plain"]);
        let none = Sdp::parse(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n").expect("parses");
        assert!(message_media(&none).is_none());
    }

    #[test]
    fn wildcards_and_default() {
        let mut m = MessageMedia {
            kind: MessageMediaKind::Message,
            port: 1,
            proto: "sip".into(),
            fmt: vec![],
            accept_types: vec![],
        };
        assert!(m.accepts("text/plain"));
        assert!(!m.accepts("text/html"));
        m.accept_types = vec!["text/*".into()];
        assert!(m.accepts("text/html"));
        assert!(!m.accepts("image/gif"));
    }

    fn kind(input: &str) -> (SdpErrorKind, usize, usize) {
        let e = Sdp::parse(input.as_bytes()).expect_err(input);
        (e.kind, e.line, e.offset)
    }

    #[test]
    fn malformed() {
        assert_eq!(kind("").0, SdpErrorKind::Empty);
        assert_eq!(kind("\r\n\r\n").0, SdpErrorKind::Empty);
        assert_eq!(
            kind("o=- 0 0 IN IP4 1.2.3.4\r\n"),
            (SdpErrorKind::MissingVersion, 1, 0)
        );
        assert_eq!(kind("v=1\r\n"), (SdpErrorKind::BadVersion, 1, 2));
        assert_eq!(
            kind("v=0\r\ns session\r\n"),
            (SdpErrorKind::MissingEquals, 2, 5)
        );
        assert_eq!(kind("v=0\r\nxx=1\r\n"), (SdpErrorKind::BadLineType, 2, 5));
        assert_eq!(kind("v=0\r\n1=1\r\n"), (SdpErrorKind::BadLineType, 2, 5));
        assert_eq!(
            kind("v=0\r\nm=message 5060\r\n"),
            (SdpErrorKind::BadMediaLine, 2, 7)
        );
        assert_eq!(kind("v=0\r\nm=message\r\n").0, SdpErrorKind::BadMediaLine);
        assert_eq!(
            kind("v=0\r\nm=message abc sip null\r\n"),
            (SdpErrorKind::BadPort, 2, 15)
        );
        assert_eq!(
            kind("v=0\r\nm=message 70000 sip null\r\n").0,
            SdpErrorKind::BadPort
        );
        assert_eq!(
            kind("v=0\r\nm=message -1 sip null\r\n").0,
            SdpErrorKind::BadPort
        );
        assert_eq!(
            kind("v=0\r\nm=message 5/x sip null\r\n").0,
            SdpErrorKind::BadPort
        );
        let e = Sdp::parse(b"v=0\r\ns=\xff\r\n").expect_err("utf8");
        assert_eq!((e.kind, e.offset), (SdpErrorKind::InvalidUtf8, 7));
        assert!(
            SdpError {
                offset: 3,
                line: 1,
                kind: SdpErrorKind::BadPort
            }
            .to_string()
            .contains("line 1")
        );
    }

    #[test]
    fn bounds() {
        let big = format!("v=0\r\ns={}\r\n", "x".repeat(MAX_SDP_BYTES));
        assert_eq!(kind(&big).0, SdpErrorKind::TooLarge);
        let many = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_LINES));
        assert_eq!(kind(&many).0, SdpErrorKind::TooManyLines);
        let ok = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_LINES - 1));
        assert!(Sdp::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn port_count_round_trips() {
        let s = "v=0\r\nm=audio 4000/2 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
        let sdp = Sdp::parse(s.as_bytes()).expect("parses");
        assert_eq!(sdp.media[0].port_count, Some(2));
        assert_eq!(sdp.media[0].attribute("rtpmap"), Some("0 PCMU/8000"));
        assert_eq!(sdp.media[0].attribute("sendrecv"), Some(""));
        assert_eq!(sdp.to_string(), s);
    }

    proptest! {
        #[test]
        fn build_parse_round_trip(a in any::<u32>(), port in any::<u16>(), v6 in any::<u128>(),
                                  use_v6 in any::<bool>(), answer in any::<bool>(),
                                  user in "[a-z0-9.]{1,20}", types in proptest::collection::vec("[a-z]{1,8}/[a-z0-9.+-]{1,12}", 0..8)) {
            let ip = if use_v6 { IpAddr::V6(v6.into()) } else { IpAddr::V4(a.into()) };
            let accept = types.join(" ");
            let s = if answer {
                build_answer_with(MessageMediaKind::Message, ip, port, &format!("{user}@example.com"), &accept)
            } else {
                build_offer_with(MessageMediaKind::Message, ip, port, &accept)
            };
            let sdp = Sdp::parse(s.as_bytes()).expect("built SDP parses");
            prop_assert_eq!(sdp.to_string(), s.clone());
            let m = message_media(&sdp).expect("has m=message");
            prop_assert_eq!(m.port, port);
            prop_assert_eq!(m.accept_types, types);
            let expected_fmt = if answer { format!("sip:{user}@example.com") } else { "null".to_owned() };
            prop_assert_eq!(m.fmt, vec![expected_fmt]);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(sdp) = Sdp::parse(&data) {
                let printed = sdp.to_string();
                let again = Sdp::parse(printed.as_bytes()).expect("printed SDP parses");
                prop_assert_eq!(again.to_string(), printed);
                let _ = message_media(&sdp);
            }
        }
    }
}
