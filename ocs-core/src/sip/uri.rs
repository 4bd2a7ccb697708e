//! SIP URIs (RFC 3261 §19.1) and `;name=value` parameter lists.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{ParseError, ParseErrorKind};
use super::scan::{Cursor, is_token_byte, percent_decode, unquote};

/// Which grammar a parameter list follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamStyle {
    /// `generic-param` in a header: token names, token/host/quoted values.
    Header,
    /// `uri-parameter` inside a SIP URI: paramchar values, no quotes.
    Uri,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

fn is_uri_paramchar(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b'%')
}

fn is_header_value_byte(b: u8) -> bool {
    // gen-value = token / host / quoted-string; host adds ':' '[' ']'.
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

/// A parameter list such as `;tag=1928;epid=c8ca638a15`, kept as the raw
/// text after the first `;` and parsed lazily. It was validated when
/// created, so iteration cannot fail.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The value as written (quotes included for quoted strings).
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value with quotes and escapes removed (URI parameters are
    /// percent-decoded instead by [`SipUri`] comparison).
    pub fn value_unquoted(&self) -> Option<Cow<'a, str>> {
        self.value.map(unquote)
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Params<'a> {
    /// The raw text (without the leading `;`).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterates over the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            c: Cursor::new(self.raw, 0),
            first: true,
        }
    }

    /// The first parameter with this name (case-insensitive), as written.
    /// `Some(None)` means the parameter is present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// The first parameter with this name, unquoted.
    pub fn get_unquoted(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).flatten().map(unquote)
    }

    /// True when a parameter with this name is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Parses `;p1;p2=v...` at the cursor (which sits on the first `;` or
    /// on something else, giving an empty list). Stops at the first byte
    /// that can't continue the list.
    pub(crate) fn parse(c: &mut Cursor<'a>, style: ParamStyle) -> Result<Params<'a>, ParseError> {
        let save = c.pos;
        if !c.eat_sep(b';') {
            c.pos = save;
            return Ok(Params::default());
        }
        let start = c.pos;
        let mut end;
        loop {
            // name
            let name_start = c.pos;
            let name = match style {
                ParamStyle::Header => c.take_while(is_token_byte),
                ParamStyle::Uri => c.take_while(is_uri_paramchar),
            };
            if name.is_empty() {
                return Err(ParseError::new(
                    c.base + name_start,
                    ParseErrorKind::BadParam,
                ));
            }
            end = c.pos;
            let save = c.pos;
            if (style == ParamStyle::Header && c.eat_sep(b'='))
                || (style == ParamStyle::Uri && c.eat(b'='))
            {
                let vstart = c.pos;
                if style == ParamStyle::Header && c.peek() == Some(b'"') {
                    c.quoted()?;
                } else {
                    let v = match style {
                        ParamStyle::Header => c.take_while(is_header_value_byte),
                        ParamStyle::Uri => c.take_while(is_uri_paramchar),
                    };
                    if v.is_empty() {
                        return Err(ParseError::new(c.base + vstart, ParseErrorKind::BadParam));
                    }
                }
                end = c.pos;
            } else {
                c.pos = save;
            }
            let save = c.pos;
            let more = match style {
                ParamStyle::Header => c.eat_sep(b';'),
                ParamStyle::Uri => c.eat(b';'),
            };
            if !more {
                c.pos = save;
                break;
            }
        }
        Ok(Params {
            raw: &c.s[start..end],
        })
    }

    /// Validates `raw` (header parameters without the leading `;`) and
    /// wraps it.
    pub fn from_header_text(raw: &'a str) -> Result<Params<'a>, ParseError> {
        let raw = raw.trim_matches([' ', '\t']);
        if raw.is_empty() {
            return Ok(Params::default());
        }
        // The list grammar starts at a ';', so validate a copy that has one
        // and shift error positions back by that byte.
        let tmp = format!(";{raw}");
        let mut c = Cursor::new(&tmp, 0);
        Params::parse(&mut c, ParamStyle::Header)
            .map_err(|e| ParseError::new(e.offset.saturating_sub(1), e.kind))?;
        if !c.is_empty() {
            return Err(ParseError::new(c.pos - 1, ParseErrorKind::Trailing));
        }
        Ok(Params { raw })
    }
}

/// Iterator over a validated [`Params`].
pub struct ParamIter<'a> {
    c: Cursor<'a>,
    first: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        if !self.first {
            self.c.skip_ws();
            if !self.c.eat(b';') {
                return None;
            }
            self.c.skip_ws();
        }
        self.first = false;
        if self.c.is_empty() {
            return None;
        }
        let name = self
            .c
            .take_while(|b| b != b'=' && b != b';' && b != b' ' && b != b'\t');
        let save = self.c.pos;
        self.c.skip_ws();
        let value = if self.c.eat(b'=') {
            self.c.skip_ws();
            if self.c.peek() == Some(b'"') {
                self.c.quoted().ok()
            } else {
                Some(self.c.take_while(|b| b != b';' && b != b' ' && b != b'\t'))
            }
        } else {
            self.c.pos = save;
            None
        };
        Some(Param { name, value })
    }
}

impl<'a> IntoIterator for &Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// A host: a domain name or an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name as written (compare case-insensitively).
    Domain(&'a str),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// Compares hosts; domain names case-insensitively.
    pub fn eq_host(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host [":" port]` at the cursor.
pub(crate) fn parse_hostport<'a>(
    c: &mut Cursor<'a>,
) -> Result<(Host<'a>, Option<u16>), ParseError> {
    let start = c.pos;
    let host = if c.eat(b'[') {
        let inner = c.take_while(|b| b != b']');
        if !c.eat(b']') {
            return Err(ParseError::new(
                c.base + start,
                ParseErrorKind::BadUri("unterminated IPv6 reference"),
            ));
        }
        let addr: Ipv6Addr = inner.parse().map_err(|_| {
            ParseError::new(
                c.base + start + 1,
                ParseErrorKind::BadUri("bad IPv6 address"),
            )
        })?;
        Host::V6(addr)
    } else {
        // One pass: the host's extent, and whether it looks like IPv4
        // (digits and dots only, at least one dot): a class per byte,
        // or-ed together, so the loop has one branch.
        let bytes = c.s.as_bytes();
        let (mut i, mut seen) = (c.pos, 0u8);
        while let Some(&b) = bytes.get(i) {
            let class = HOST_CLASS[usize::from(b)];
            if class == 0 {
                break;
            }
            seen |= class;
            i += 1;
        }
        let (digits_dots, dot) = (seen & HOST_NAME == 0, seen & HOST_DOT != 0);
        let h = &c.s[c.pos..i];
        c.pos = i;
        if h.is_empty() {
            return Err(ParseError::new(
                c.base + start,
                ParseErrorKind::BadUri("missing host"),
            ));
        }
        if h.starts_with('-') || h.starts_with('.') {
            return Err(ParseError::new(
                c.base + start,
                ParseErrorKind::BadUri("bad host name"),
            ));
        }
        if digits_dots && dot {
            match parse_ipv4(h.as_bytes()) {
                Some(a) => Host::V4(a),
                None => {
                    return Err(ParseError::new(
                        c.base + start,
                        ParseErrorKind::BadUri("bad IPv4 address"),
                    ));
                }
            }
        } else {
            Host::Domain(h)
        }
    };
    let port = if c.eat(b':') {
        let pstart = c.pos;
        let p = c.take_while(|b| b.is_ascii_digit());
        if p.is_empty() || p.len() > 5 {
            return Err(ParseError::new(
                c.base + pstart,
                ParseErrorKind::BadUri("bad port"),
            ));
        }
        // At most five ASCII digits: no overflow.
        let v = p.bytes().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if v > 65535 {
            return Err(ParseError::new(
                c.base + pstart,
                ParseErrorKind::NumberOutOfRange,
            ));
        }
        Some(v as u16)
    } else {
        None
    };
    Ok((host, port))
}

const HOST_DIGIT: u8 = 1;
const HOST_DOT: u8 = 2;
const HOST_NAME: u8 = 4;

/// What each byte is in a host name or IPv4 address (0: not part of one).
static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() {
            HOST_DIGIT
        } else if b == b'.' {
            HOST_DOT
        } else if b.is_ascii_alphabetic() || b == b'-' || b == b'_' {
            HOST_NAME
        } else {
            0
        };
        i += 1;
    }
    t
};

/// A dotted-quad IPv4 address as the standard library reads one (four
/// decimal octets up to 255, no leading zeros), without its general
/// parser: every Via, From, To and Contact of a message comes here.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        let v = p.iter().try_fold(0u16, |v, &d| {
            d.is_ascii_digit().then(|| v * 10 + u16::from(d - b'0'))
        })?;
        *o = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy)]
pub struct SipUri<'a> {
    /// True for `sips:`.
    pub secure: bool,
    /// The user part as written (may contain escapes).
    pub user: Option<&'a str>,
    /// The password as written.
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The port, if written.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: Params<'a>,
    /// The headers part after `?`, as written.
    pub headers: Option<&'a str>,
}

/// Any URI: SIP/SIPS parsed fully, other schemes (tel:, im:, unknown) kept
/// as scheme plus opaque text.
#[derive(Debug, Clone, Copy)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// Any other absolute URI.
    Other {
        /// The scheme as written.
        scheme: &'a str,
        /// Everything after `scheme:`.
        rest: &'a str,
    },
}

impl<'a> Uri<'a> {
    /// Parses a complete URI (no surrounding brackets), including a SIP
    /// URI's parameters and headers.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let mut c = Cursor::new(s, 0);
        let u = Uri::parse_at(&mut c, true)?;
        if !c.is_empty() {
            return Err(c.err(ParseErrorKind::Trailing));
        }
        Ok(u)
    }

    /// The SIP URI, when this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    /// The scheme, lower-case for sip/sips.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// Parses a URI at the cursor. Inside a name-addr (`in_brackets`) the
    /// URI runs to `>`; in an addr-spec it stops at `;` params belonging
    /// to the header, at white space or at `,` (RFC 3261 §20: an addr-spec
    /// cannot carry URI parameters).
    pub(crate) fn parse_at(c: &mut Cursor<'a>, in_brackets: bool) -> Result<Uri<'a>, ParseError> {
        let start = c.pos;
        let scheme =
            c.take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
        if scheme.is_empty() || !scheme.as_bytes()[0].is_ascii_alphabetic() || !c.eat(b':') {
            c.pos = start;
            return Err(c.err(ParseErrorKind::BadUri("expected scheme")));
        }
        let secure = if scheme.eq_ignore_ascii_case("sip") {
            false
        } else if scheme.eq_ignore_ascii_case("sips") {
            true
        } else {
            let rest = if in_brackets {
                c.take_while(|b| b != b'>')
            } else {
                c.take_while(|b| b > 0x20 && !matches!(b, b';' | b',' | b'<' | b'>' | b'"' | 0x7f))
            };
            if rest.is_empty() {
                return Err(c.err(ParseErrorKind::BadUri("empty URI")));
            }
            return Ok(Uri::Other { scheme, rest });
        };
        // userinfo: up to the first '@' before the end of the URI.
        let limit = {
            let r = c.rest();
            let stop = if in_brackets {
                r.find('>').unwrap_or(r.len())
            } else {
                r.bytes()
                    .position(|b| matches!(b, b' ' | b'\t' | b',' | b'>'))
                    .unwrap_or(r.len())
            };
            &r[..stop]
        };
        let (user, password) = match limit.find('@') {
            Some(at) => {
                let ui = &limit[..at];
                let ok = |b: u8| {
                    is_unreserved(b)
                        || matches!(
                            b,
                            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/' | b':'
                        )
                };
                if let Some(i) = ui.bytes().position(|b| !ok(b)) {
                    return Err(ParseError::new(
                        c.base + c.pos + i,
                        ParseErrorKind::BadUri("bad character in user part"),
                    ));
                }
                let (u, p) = match ui.find(':') {
                    Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(ParseError::new(
                        c.base + c.pos,
                        ParseErrorKind::BadUri("empty user part"),
                    ));
                }
                c.pos += at + 1;
                (Some(u), p)
            }
            None => (None, None),
        };
        let (host, port) = parse_hostport(c)?;
        let params = if in_brackets {
            Params::parse(c, ParamStyle::Uri)?
        } else {
            Params::default()
        };
        let headers = if in_brackets && c.eat(b'?') {
            let h = c.take_while(|b| b != b'>' && b > 0x20);
            Some(h)
        } else {
            None
        };
        Ok(Uri::Sip(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        }))
    }
}

impl<'a> SipUri<'a> {
    /// Parses a complete `sip:`/`sips:` URI, including its parameters and
    /// headers (the form used in Request-URIs and inside `<...>`).
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, ParseError> {
        let mut c = Cursor::new(s, 0);
        match Uri::parse_at(&mut c, true)? {
            Uri::Sip(u) if c.is_empty() => Ok(u),
            Uri::Sip(_) => Err(c.err(ParseErrorKind::Trailing)),
            Uri::Other { .. } => Err(ParseError::new(
                0,
                ParseErrorKind::BadUri("not a sip: or sips: URI"),
            )),
        }
    }

    /// `user@host` without scheme, port or parameters (the form OCS uses in
    /// container members and subscriber lists).
    pub fn user_at_host(&self) -> String {
        match self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.to_string(),
        }
    }

    /// The value of the `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.get("transport").flatten()
    }

    /// RFC 3261 §19.1.4 comparison.
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure {
            return false;
        }
        // userinfo is case-sensitive, compared after unescaping.
        let dec = |o: Option<&str>| o.map(|s| percent_decode(s).into_owned());
        if dec(self.user) != dec(other.user) || dec(self.password) != dec(other.password) {
            return false;
        }
        if !self.host.eq_host(&other.host) || self.port != other.port {
            return false;
        }
        // user, ttl, method, maddr, transport must match if present in either.
        for special in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self.params.get(special).flatten().map(percent_decode);
            let b = other.params.get(special).flatten().map(percent_decode);
            let same = match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    if special == "method" {
                        a == b
                    } else {
                        a.eq_ignore_ascii_case(&b)
                    }
                }
                _ => false,
            };
            if !same {
                return false;
            }
        }
        // Any other parameter appearing in both must match. With a name
        // repeated, the first occurrence counts on both sides, which keeps
        // the relation reflexive and symmetric.
        for p in self.params.iter() {
            if let (Some(mine), Some(ov)) = (self.params.get(p.name), other.params.get(p.name)) {
                let a = mine.map(percent_decode);
                let b = ov.map(percent_decode);
                match (a, b) {
                    (None, None) => {}
                    (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
                    _ => return false,
                }
            }
        }
        // Headers must match exactly as a set (compared after unescaping).
        let hs = |h: Option<&str>| {
            let mut v: Vec<(String, String)> = h
                .unwrap_or("")
                .split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (
                        percent_decode(k).to_ascii_lowercase(),
                        percent_decode(v).into_owned(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        hs(self.headers) == hs(other.headers)
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = self.user {
            f.write_str(u)?;
            if let Some(p) = self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if !self.params.is_empty() {
            write!(f, ";{}", self.params.as_str())?;
        }
        if let Some(h) = self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Our dotted-quad reader agrees with the standard library's.
        #[test]
        fn ipv4_as_std_reads_it(s in "[0-9.]{1,17}") {
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
        }
    }

    #[test]
    fn ipv4_edges_as_std() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            "10.0.0.1",
            "1.2.3.0400",
            "000.1.2.3",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{s}");
        }
    }

    #[test]
    fn parses_full_sip_uri() {
        let u =
            SipUri::parse("sips:alice:secret@[2001:db8::10]:5061;transport=tcp;lr?subject=hi&x=1")
                .expect("parses");
        assert!(u.secure);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().expect("v6")));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers, Some("subject=hi&x=1"));
        assert_eq!(
            u.to_string(),
            "sips:alice:secret@[2001:db8::10]:5061;transport=tcp;lr?subject=hi&x=1"
        );
    }

    fn eq(a: &str, b: &str) -> bool {
        SipUri::parse(a)
            .expect(a)
            .equivalent(&SipUri::parse(b).expect(b))
    }

    #[test]
    fn rfc3261_19_1_4_equal_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_19_1_4_unequal_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }

    #[test]
    fn other_schemes_are_opaque() {
        let u = Uri::parse("tel:+1-212-555-0101").expect("parses");
        assert_eq!(u.scheme(), "tel");
        assert!(u.as_sip().is_none());
        assert_eq!(u.to_string(), "tel:+1-212-555-0101");
    }

    #[test]
    fn bad_uris_are_positioned() {
        assert_eq!(SipUri::parse("sip:").expect_err("no host").offset, 4);
        assert_eq!(SipUri::parse("sip:a@b:99999").expect_err("port").offset, 8);
        assert!(SipUri::parse("sip:a@b;;x").is_err());
        assert!(SipUri::parse("sip:a b@c").is_err());
    }

    #[test]
    fn header_params_allow_quotes_and_hosts() {
        let p =
            Params::from_header_text(r#"received=[::1];tag=abc;+sip.instance="<urn:uuid:x>";lr"#)
                .expect("valid");
        assert_eq!(p.get("received"), Some(Some("[::1]")));
        assert_eq!(
            p.get_unquoted("+sip.instance").as_deref(),
            Some("<urn:uuid:x>")
        );
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.iter().count(), 4);
        assert!(Params::from_header_text("a=;b").is_err());
        assert!(Params::from_header_text(";").is_err());
    }
}
