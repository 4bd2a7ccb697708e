//! Typed views of headers, parsed on demand from a [`Message`].
//!
//! Each view borrows from the message. Errors carry the byte offset in the
//! message as received (for headers added after parsing, in the value).

use std::borrow::Cow;
use std::fmt;

use super::error::{ParseError, ParseErrorKind};
use super::message::Message;
use super::name::HeaderName;
use super::scan::{
    Cursor, is_token, is_token_byte, is_ws, parse_u64_max, split_commas, trim_ws, unquote,
};
use super::uri::{Host, ParamStyle, Params, SipUri, Uri, parse_hostport};

fn finish(c: &Cursor<'_>) -> Result<(), ParseError> {
    let mut c = c.clone();
    c.skip_ws();
    if c.is_empty() {
        Ok(())
    } else {
        Err(c.err(ParseErrorKind::Trailing))
    }
}

// ----- Via ------------------------------------------------------------

/// One Via entry (RFC 3261 §20.42).
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// Protocol name and version, e.g. `SIP` and `2.0`.
    pub protocol: (&'a str, &'a str),
    /// Transport token as written (`UDP`, `TCP`, `TLS`, ...).
    pub transport: &'a str,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Via parameters (branch, received, rport, maddr, ttl, ...).
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one via-parm.
    pub fn parse(v: &'a str, base: usize) -> Result<Via<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        let name = c.token("protocol name")?;
        if !c.eat_sep(b'/') {
            return Err(c.err(ParseErrorKind::Expected("/")));
        }
        let ver = c.token("protocol version")?;
        if !c.eat_sep(b'/') {
            return Err(c.err(ParseErrorKind::Expected("/")));
        }
        let transport = c.token("transport")?;
        let before = c.pos;
        c.skip_ws();
        if c.pos == before {
            return Err(c.err(ParseErrorKind::Expected("white space before sent-by")));
        }
        let (host, port) = parse_hostport(&mut c)?;
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(Via {
            protocol: (name, ver),
            transport,
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `rport` parameter: `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|s| s.parse().ok()))
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol.0, self.protocol.1, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if !self.params.is_empty() {
            write!(f, ";{}", self.params.as_str())?;
        }
        Ok(())
    }
}

// ----- name-addr -----------------------------------------------------------

/// `name-addr` or `addr-spec` followed by header parameters: From, To,
/// Contact, Route, Record-Route, P-Asserted-Identity, Refer-To.
#[derive(Debug, Clone, Copy)]
pub struct NameAddr<'a> {
    /// The display name as written (quoted or a run of tokens).
    pub display_name: Option<&'a str>,
    /// The URI.
    pub uri: Uri<'a>,
    /// The URI text exactly as written (inside `<...>` if bracketed).
    pub uri_text: &'a str,
    /// Header parameters after the address (tag, epid, expires, ...).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one name-addr / addr-spec with parameters.
    pub fn parse(v: &'a str, base: usize) -> Result<NameAddr<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let display_name;
        let uri;
        let uri_text;
        if c.peek() == Some(b'"') {
            display_name = Some(c.quoted()?);
            c.skip_ws();
            if !c.eat(b'<') {
                return Err(c.err(ParseErrorKind::Expected("<")));
            }
            (uri, uri_text) = bracketed(&mut c)?;
        } else if c.peek() == Some(b'<') {
            display_name = None;
            c.pos += 1;
            (uri, uri_text) = bracketed(&mut c)?;
        } else if let Some(lt) = find_unquoted(c.rest(), b'<') {
            // display-name = *(token LWS); anything else before '<' is invalid
            // (RFC 4475 baddn).
            let dn = c.rest()[..lt].trim_end_matches([' ', '\t']);
            if let Some(i) = dn.bytes().position(|b| !(is_token_byte(b) || is_ws(b))) {
                return Err(ParseError::new(
                    c.base + c.pos + i,
                    ParseErrorKind::Expected("quoted display name"),
                ));
            }
            display_name = if dn.is_empty() { None } else { Some(dn) };
            c.pos += lt + 1;
            (uri, uri_text) = bracketed(&mut c)?;
        } else {
            display_name = None;
            let s = c.pos;
            uri = Uri::parse_at(&mut c, false)?;
            uri_text = &c.s[s..c.pos];
        }
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(NameAddr {
            display_name,
            uri,
            uri_text,
            params,
        })
    }

    /// The display name without quotes.
    pub fn display_name_unquoted(&self) -> Option<Cow<'a, str>> {
        self.display_name.map(unquote)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// The OCS `epid` parameter.
    pub fn epid(&self) -> Option<&'a str> {
        self.params.get("epid").flatten()
    }

    /// The SIP URI, when it is one.
    pub fn sip_uri(&self) -> Option<&SipUri<'a>> {
        self.uri.as_sip()
    }
}

fn bracketed<'a>(c: &mut Cursor<'a>) -> Result<(Uri<'a>, &'a str), ParseError> {
    let s = c.pos;
    let uri = Uri::parse_at(c, true)?;
    let text = &c.s[s..c.pos];
    if !c.eat(b'>') {
        return Err(c.err(ParseErrorKind::Expected(">")));
    }
    Ok((uri, text))
}

fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let mut q = false;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if q => i += 1,
            b'"' => q = !q,
            x if x == needle && !q => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.display_name {
            write!(f, "{d} ")?;
        }
        write!(f, "<{}>", self.uri_text)?;
        if !self.params.is_empty() {
            write!(f, ";{}", self.params.as_str())?;
        }
        Ok(())
    }
}

/// The Contact header set: `*` or a list of addresses.
#[derive(Debug, Clone)]
pub enum Contacts<'a> {
    /// `Contact: *` (REGISTER removal of all bindings).
    Star,
    /// The addresses in order.
    List(Vec<NameAddr<'a>>),
}

// ----- small headers --------------------------------------------------------

/// CSeq: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (32-bit unsigned, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method as written.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(v: &'a str, base: usize) -> Result<CSeq<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        let digits = c.take_while(|b| b.is_ascii_digit());
        let seq = parse_u64_max(digits, base, u64::from(u32::MAX))? as u32;
        let before = c.pos;
        c.skip_ws();
        if c.pos == before {
            return Err(c.err(ParseErrorKind::Expected(
                "white space after sequence number",
            )));
        }
        let method = c.token("method")?;
        finish(&c)?;
        Ok(CSeq { seq, method })
    }
}

/// A media type with parameters (Content-Type, Accept entries).
#[derive(Debug, Clone, Copy)]
pub struct MediaType<'a> {
    /// Top-level type, e.g. `multipart`.
    pub top: &'a str,
    /// Subtype, e.g. `related`.
    pub sub: &'a str,
    /// Parameters (boundary, charset, type, ...).
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(v: &'a str, base: usize) -> Result<MediaType<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let top = c.token("media type")?;
        if !c.eat_sep(b'/') {
            return Err(c.err(ParseErrorKind::Expected("/")));
        }
        let sub = c.token("media subtype")?;
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(MediaType { top, sub, params })
    }

    /// True when `type/subtype` equals `essence` case-insensitively.
    pub fn is(&self, essence: &str) -> bool {
        match essence.split_once('/') {
            Some((t, s)) => self.top.eq_ignore_ascii_case(t) && self.sub.eq_ignore_ascii_case(s),
            None => false,
        }
    }

    /// `type/subtype` lower-cased.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.top, self.sub).to_ascii_lowercase()
    }

    /// A parameter, unquoted.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params.get_unquoted(name)
    }
}

/// A token with parameters: Event, Subscription-State, Content-Disposition,
/// ms-keep-alive.
#[derive(Debug, Clone, Copy)]
pub struct TokenParams<'a> {
    /// The leading token (event package, substate, role, ...).
    pub value: &'a str,
    /// Parameters after it.
    pub params: Params<'a>,
}

impl<'a> TokenParams<'a> {
    /// Parses `token *(;param)`.
    pub fn parse(v: &'a str, base: usize) -> Result<TokenParams<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let value = c.token("token")?;
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(TokenParams { value, params })
    }

    /// A numeric parameter (expires, retry-after, timeout).
    pub fn param_u32(&self, name: &str) -> Option<u32> {
        self.params.get(name).flatten().and_then(|v| v.parse().ok())
    }
}

/// Retry-After (RFC 3261 §20.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds to wait.
    pub seconds: u32,
    /// The comment, without parentheses.
    pub comment: Option<&'a str>,
    /// Parameters (duration, ...).
    pub params: Params<'a>,
}

impl<'a> RetryAfter<'a> {
    /// Parses `delta-seconds [comment] *(;param)`.
    pub fn parse(v: &'a str, base: usize) -> Result<RetryAfter<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        let seconds = parse_u64_max(digits, base, u64::from(u32::MAX))? as u32;
        c.skip_ws();
        let comment = if c.eat(b'(') {
            let s = c.pos;
            let mut depth = 1;
            while let Some(b) = c.peek() {
                c.pos += 1;
                match b {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if depth != 0 {
                return Err(c.err(ParseErrorKind::Expected(")")));
            }
            Some(&c.s[s..c.pos - 1])
        } else {
            None
        };
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(RetryAfter {
            seconds,
            comment,
            params,
        })
    }
}

/// One Warning entry (RFC 3261 §20.43).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning<'a> {
    /// Three-digit warn-code.
    pub code: u16,
    /// warn-agent (host or pseudonym).
    pub agent: &'a str,
    /// warn-text, unquoted.
    pub text: Cow<'a, str>,
}

impl<'a> Warning<'a> {
    /// Parses `3DIGIT SP agent SP quoted-string`.
    pub fn parse(v: &'a str, base: usize) -> Result<Warning<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        let digits = c.take_while(|b| b.is_ascii_digit());
        if digits.len() != 3 {
            return Err(ParseError::new(
                base,
                ParseErrorKind::Expected("3-digit warn-code"),
            ));
        }
        let code = parse_u64_max(digits, base, 999)? as u16;
        c.skip_ws();
        let agent = c.take_while(|b| !is_ws(b) && b != b'"');
        if agent.is_empty() {
            return Err(c.err(ParseErrorKind::Expected("warn-agent")));
        }
        c.skip_ws();
        let text = unquote(c.quoted()?);
        finish(&c)?;
        Ok(Warning { code, agent, text })
    }
}

/// ms-diagnostics, ms-diagnostics-public, ms-client-diagnostics:
/// `ErrorId[.Sub];reason="...";source="..."` (PROTOCOL.md h).
#[derive(Debug, Clone, Copy)]
pub struct MsDiagnostics<'a> {
    /// The error id.
    pub code: u32,
    /// The sub-error code after a dot, if any.
    pub sub_code: Option<u32>,
    /// All parameters.
    pub params: Params<'a>,
}

impl<'a> MsDiagnostics<'a> {
    /// Parses the header value.
    pub fn parse(v: &'a str, base: usize) -> Result<MsDiagnostics<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        let code = parse_u64_max(digits, base, u64::from(u32::MAX))? as u32;
        let sub_code = if c.eat(b'.') {
            let s = c.pos;
            let d = c.take_while(|b| b.is_ascii_digit());
            Some(parse_u64_max(d, base + s, u64::from(u32::MAX))? as u32)
        } else {
            None
        };
        let params = Params::parse(&mut c, ParamStyle::Header)?;
        finish(&c)?;
        Ok(MsDiagnostics {
            code,
            sub_code,
            params,
        })
    }

    /// The `reason` text.
    pub fn reason(&self) -> Option<Cow<'a, str>> {
        self.params.get_unquoted("reason")
    }

    /// The `source` host.
    pub fn source(&self) -> Option<Cow<'a, str>> {
        self.params.get_unquoted("source")
    }
}

// ----- authentication headers ---------------------------------------------

/// A challenge or credentials header: scheme plus comma-separated
/// `name=value` pairs (Digest, NTLM, Kerberos, TLS-DSK or unknown).
#[derive(Debug, Clone, Copy)]
pub struct AuthHeader<'a> {
    /// The scheme as written (`Digest`, `NTLM`, ...).
    pub scheme: &'a str,
    /// The parameters, validated, in order.
    pub params: AuthParams<'a>,
}

/// The `name=value, name="value"` list of an auth header, validated and
/// iterated lazily.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthParams<'a> {
    raw: &'a str,
}

impl<'a> AuthParams<'a> {
    /// Validates an auth-param list.
    pub fn parse(v: &'a str, base: usize) -> Result<AuthParams<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        if c.is_empty() {
            return Ok(AuthParams { raw: "" });
        }
        loop {
            c.token("auth-param name")?;
            if !c.eat_sep(b'=') {
                return Err(c.err(ParseErrorKind::Expected("=")));
            }
            if c.peek() == Some(b'"') {
                c.quoted()?;
            } else {
                // token68 values (base64 with '/' and '=') also appear here.
                let t = c.take_while(|b| is_token_byte(b) || b == b'/' || b == b'=' || b == b':');
                if t.is_empty() {
                    return Err(c.err(ParseErrorKind::Expected("auth-param value")));
                }
            }
            if !c.eat_sep(b',') {
                break;
            }
        }
        finish(&c)?;
        Ok(AuthParams { raw: trim_ws(v) })
    }

    /// Iterates `(name, value-unquoted)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        split_commas(self.raw).filter_map(|(_, item)| {
            let (n, v) = item.split_once('=')?;
            Some((trim_ws(n), unquote(trim_ws(v))))
        })
    }

    /// The value of `name` (case-insensitive), unquoted.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of `name` exactly as written (quotes included), needed
    /// where signatures cover the on-the-wire form.
    pub fn get_raw(&self, name: &str) -> Option<&'a str> {
        split_commas(self.raw).find_map(|(_, item)| {
            let (n, v) = item.split_once('=')?;
            trim_ws(n).eq_ignore_ascii_case(name).then(|| trim_ws(v))
        })
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl<'a> AuthHeader<'a> {
    /// Parses `scheme [params]`.
    pub fn parse(v: &'a str, base: usize) -> Result<AuthHeader<'a>, ParseError> {
        let mut c = Cursor::new(v, base);
        c.skip_ws();
        let scheme = c.token("auth scheme")?;
        let rest_base = base + c.pos;
        let params = AuthParams::parse(c.rest(), rest_base)?;
        Ok(AuthHeader { scheme, params })
    }

    /// True when the scheme matches (case-insensitive).
    pub fn is_scheme(&self, s: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(s)
    }
}

// ----- Message accessors ------------------------------------------------

fn required<'a>(
    m: &'a Message,
    name: HeaderName,
    what: &'static str,
) -> Result<(&'a str, usize), ParseError> {
    let mut it = m.headers_named(name);
    let h = it
        .next()
        .ok_or_else(|| ParseError::new(0, ParseErrorKind::MissingHeader(what)))?;
    Ok((h.value, h.offset))
}

impl Message {
    fn list<'a, T>(
        &'a self,
        name: HeaderName,
        f: impl Fn(&'a str, usize) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut out = Vec::new();
        for h in self.headers_named(name) {
            for (off, item) in split_commas(h.value) {
                if item.is_empty() {
                    return Err(ParseError::new(
                        h.offset + off,
                        ParseErrorKind::Expected("list element"),
                    ));
                }
                out.push(f(item, h.offset + off)?);
            }
        }
        Ok(out)
    }

    fn single<'a, T>(
        &'a self,
        name: HeaderName,
        f: impl Fn(&'a str, usize) -> Result<T, ParseError>,
    ) -> Result<Option<T>, ParseError> {
        match self.headers_named(name).next() {
            Some(h) => f(h.value, h.offset).map(Some),
            None => Ok(None),
        }
    }

    fn tokens(&self, name: HeaderName) -> Result<Vec<&str>, ParseError> {
        self.list(name, |v, off| {
            if is_token(v) {
                Ok(v)
            } else {
                Err(ParseError::new(off, ParseErrorKind::Expected("option tag")))
            }
        })
    }

    /// All Via entries, top first.
    pub fn via(&self) -> Result<Vec<Via<'_>>, ParseError> {
        self.list(HeaderName::Via, Via::parse)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let (v, off) = required(self, HeaderName::Via, "Via")?;
        let (o, first) = split_commas(v)
            .next()
            .ok_or_else(|| ParseError::new(off, ParseErrorKind::Expected("Via")))?;
        Via::parse(first, off + o)
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        let (v, off) = required(self, HeaderName::From, "From")?;
        NameAddr::parse(v, off)
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        let (v, off) = required(self, HeaderName::To, "To")?;
        NameAddr::parse(v, off)
    }

    /// Call-ID (`word ["@" word]`).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let (v, off) = required(self, HeaderName::CallId, "Call-ID")?;
        if v.is_empty() || v.bytes().any(|b| b <= 0x20 || b == 0x7f) {
            return Err(ParseError::new(
                off,
                ParseErrorKind::Expected("Call-ID word"),
            ));
        }
        Ok(v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        let (v, off) = required(self, HeaderName::CSeq, "CSeq")?;
        CSeq::parse(v, off)
    }

    /// Contact: `*` or the list of addresses (empty list when absent).
    pub fn contacts(&self) -> Result<Contacts<'_>, ParseError> {
        let mut list = Vec::new();
        for h in self.headers_named(HeaderName::Contact) {
            if h.value == "*" {
                return Ok(Contacts::Star);
            }
            for (off, item) in split_commas(h.value) {
                list.push(NameAddr::parse(item, h.offset + off)?);
            }
        }
        Ok(Contacts::List(list))
    }

    /// Max-Forwards (0..=255).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.single(HeaderName::MaxForwards, |v, off| {
            Ok(parse_u64_max(v, off, 255)? as u8)
        })
    }

    /// Expires (delta-seconds).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.single(HeaderName::Expires, |v, off| {
            Ok(parse_u64_max(v, off, u64::from(u32::MAX))? as u32)
        })
    }

    /// Min-Expires.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.single(HeaderName::MinExpires, |v, off| {
            Ok(parse_u64_max(v, off, u64::from(u32::MAX))? as u32)
        })
    }

    /// Content-Length (validated while parsing).
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        self.content_length_raw()
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.single(HeaderName::ContentType, MediaType::parse)
    }

    /// Accept entries.
    pub fn accept(&self) -> Result<Vec<MediaType<'_>>, ParseError> {
        self.list(HeaderName::Accept, MediaType::parse)
    }

    /// Event.
    pub fn event(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.single(HeaderName::Event, TokenParams::parse)
    }

    /// Subscription-State.
    pub fn subscription_state(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.single(HeaderName::SubscriptionState, TokenParams::parse)
    }

    /// Allow-Events packages.
    pub fn allow_events(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::AllowEvents)
    }

    /// Allow methods.
    pub fn allow(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Allow)
    }

    /// Supported option tags (all Supported headers).
    pub fn supported(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Supported)
    }

    /// Require option tags.
    pub fn require(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Require)
    }

    /// Proxy-Require option tags.
    pub fn proxy_require(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::ProxyRequire)
    }

    /// Unsupported option tags.
    pub fn unsupported(&self) -> Result<Vec<&str>, ParseError> {
        self.tokens(HeaderName::Unsupported)
    }

    /// Record-Route entries in order.
    pub fn record_route(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.list(HeaderName::RecordRoute, NameAddr::parse)
    }

    /// Route entries in order.
    pub fn route(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.list(HeaderName::Route, NameAddr::parse)
    }

    /// P-Asserted-Identity entries.
    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.list(HeaderName::PAssertedIdentity, NameAddr::parse)
    }

    /// Retry-After.
    pub fn retry_after(&self) -> Result<Option<RetryAfter<'_>>, ParseError> {
        self.single(HeaderName::RetryAfter, RetryAfter::parse)
    }

    /// Warning entries.
    pub fn warnings(&self) -> Result<Vec<Warning<'_>>, ParseError> {
        self.list(HeaderName::Warning, Warning::parse)
    }

    /// SIP-ETag (RFC 3903).
    pub fn sip_etag(&self) -> Option<&str> {
        self.header(HeaderName::SipETag)
    }

    /// SIP-If-Match (RFC 3903).
    pub fn sip_if_match(&self) -> Option<&str> {
        self.header(HeaderName::SipIfMatch)
    }

    /// Challenges of a 401 (one per WWW-Authenticate header).
    pub fn www_authenticate(&self) -> Result<Vec<AuthHeader<'_>>, ParseError> {
        self.auth_headers(HeaderName::WwwAuthenticate)
    }

    /// Challenges of a 407.
    pub fn proxy_authenticate(&self) -> Result<Vec<AuthHeader<'_>>, ParseError> {
        self.auth_headers(HeaderName::ProxyAuthenticate)
    }

    /// Authorization credentials.
    pub fn authorization(&self) -> Result<Vec<AuthHeader<'_>>, ParseError> {
        self.auth_headers(HeaderName::Authorization)
    }

    /// Proxy-Authorization credentials.
    pub fn proxy_authorization(&self) -> Result<Vec<AuthHeader<'_>>, ParseError> {
        self.auth_headers(HeaderName::ProxyAuthorization)
    }

    /// Authentication-Info (or Proxy-Authentication-Info). Digest servers
    /// send bare params; MS-SIPAE servers prefix the scheme.
    pub fn authentication_info(&self) -> Result<Option<AuthHeader<'_>>, ParseError> {
        let h = self
            .headers_named(HeaderName::AuthenticationInfo)
            .chain(self.headers_named(HeaderName::ProxyAuthenticationInfo))
            .next();
        match h {
            None => Ok(None),
            Some(h) => {
                // `nextnonce="..."` starts with a param name followed by '='.
                let first = h.value.split([' ', '\t', ',']).next().unwrap_or("");
                if first.contains('=') {
                    Ok(Some(AuthHeader {
                        scheme: "",
                        params: AuthParams::parse(h.value, h.offset)?,
                    }))
                } else {
                    AuthHeader::parse(h.value, h.offset).map(Some)
                }
            }
        }
    }

    fn auth_headers(&self, name: HeaderName) -> Result<Vec<AuthHeader<'_>>, ParseError> {
        self.headers_named(name)
            .map(|h| AuthHeader::parse(h.value, h.offset))
            .collect()
    }

    /// ms-diagnostics.
    pub fn ms_diagnostics(&self) -> Result<Option<MsDiagnostics<'_>>, ParseError> {
        self.single(HeaderName::MsDiagnostics, MsDiagnostics::parse)
    }

    /// ms-diagnostics-public.
    pub fn ms_diagnostics_public(&self) -> Result<Option<MsDiagnostics<'_>>, ParseError> {
        self.single(HeaderName::MsDiagnosticsPublic, MsDiagnostics::parse)
    }

    /// ms-client-diagnostics.
    pub fn ms_client_diagnostics(&self) -> Result<Option<MsDiagnostics<'_>>, ParseError> {
        self.single(HeaderName::MsClientDiagnostics, MsDiagnostics::parse)
    }

    /// ms-keep-alive: role (`UAC`/`UAS`) and parameters (`timeout`, ...).
    pub fn ms_keep_alive(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.single(HeaderName::MsKeepAlive, TokenParams::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2() -> Message {
        Message::parse(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/ocs/t2_register_200.sip"
            ))
            .expect("vector present"),
        )
        .expect("parses")
    }

    #[test]
    fn ocs_register_200_typed() {
        let m = t2();
        let via = m.top_via().expect("via");
        assert_eq!(via.transport, "TLS");
        assert_eq!(via.params.get("ms-received-cid"), Some(Some("2600")));
        let from = m.from().expect("from");
        assert_eq!(from.display_name, Some("\"User\""));
        assert_eq!(from.tag(), Some("3e49177a52"));
        assert_eq!(from.epid(), Some("c8ca638a15"));
        assert_eq!(
            m.to().expect("to").tag(),
            Some("5E61CCD925D17E043D9A74835A88F664")
        );
        assert_eq!(
            m.cseq().expect("cseq"),
            CSeq {
                seq: 3,
                method: "REGISTER"
            }
        );
        let Contacts::List(c) = m.contacts().expect("contacts") else {
            panic!("not star")
        };
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].params.get("expires"), Some(Some("7200")));
        assert_eq!(
            c[0].params.get_unquoted("gruu").as_deref(),
            Some("sip:user@cosmo.local;opaque=user:epid:21nYNIVlkV-jtN6FPBU0fQAA;gruu")
        );
        assert_eq!(m.expires().expect("expires"), Some(7200));
        let ka = m.ms_keep_alive().expect("ka").expect("present");
        assert_eq!(ka.value, "UAS");
        assert_eq!(ka.param_u32("timeout"), Some(300));
        assert_eq!(
            m.supported().expect("supported"),
            vec!["adhoclist", "msrtc-event-categories"]
        );
        assert_eq!(m.allow_events().expect("ae").len(), 7);
        let ai = m.authentication_info().expect("ai").expect("present");
        assert!(ai.is_scheme("NTLM"));
        assert_eq!(ai.params.get("srand").as_deref(), Some("9616454F"));
        assert_eq!(ai.params.get("snum").as_deref(), Some("1"));
        assert_eq!(
            ai.params.get_raw("rspauth"),
            Some("\"01000000E615438A917661BE64000000\"")
        );
    }

    #[test]
    fn diagnostics_and_warning() {
        let d = MsDiagnostics::parse(
            r#"4141.2;reason="User disabled";source="pool.contoso.com""#,
            0,
        )
        .expect("parses");
        assert_eq!((d.code, d.sub_code), (4141, Some(2)));
        assert_eq!(d.reason().as_deref(), Some("User disabled"));
        assert_eq!(d.source().as_deref(), Some("pool.contoso.com"));
        let w =
            Warning::parse(r#"309 lcs.microsoft.com "Content \"blocked\"""#, 0).expect("parses");
        assert_eq!(w.code, 309);
        assert_eq!(w.text, "Content \"blocked\"");
        let r = RetryAfter::parse("18000 (in a meeting);duration=3600", 0).expect("parses");
        assert_eq!(r.seconds, 18000);
        assert_eq!(r.comment, Some("in a meeting"));
        assert_eq!(r.params.get("duration"), Some(Some("3600")));
    }

    #[test]
    fn auth_headers_of_every_scheme() {
        let d = AuthHeader::parse(
            r#"Digest realm="atlanta.com", nonce="84a4cc6f", qop="auth,auth-int", algorithm=MD5, stale=TRUE"#,
            0,
        )
        .expect("digest");
        assert!(d.is_scheme("digest"));
        assert_eq!(d.params.get("qop").as_deref(), Some("auth,auth-int"));
        assert_eq!(d.params.get("stale").as_deref(), Some("TRUE"));
        let n = AuthHeader::parse(
            r#"NTLM realm="SIP Communications Service", targetname="s.contoso.com", version=4"#,
            0,
        )
        .expect("ntlm");
        assert_eq!(n.params.get("version").as_deref(), Some("4"));
        let k = AuthHeader::parse(
            r#"Kerberos realm="SIP Communications Service", targetname="sip/s""#,
            0,
        )
        .expect("kerberos");
        assert_eq!(k.params.iter().count(), 2);
        let u = AuthHeader::parse("Bearer token=abc/def==", 0).expect("unknown");
        assert_eq!(u.scheme, "Bearer");
        let bad = AuthHeader::parse(r#"Digest realm="unterminated"#, 10).expect_err("bad");
        assert_eq!(bad.offset, 23);
        assert!(AuthHeader::parse("Digest realm", 0).is_err());
        assert!(AuthHeader::parse("Digest =x", 0).is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#"Bob <sip:bob@biloxi.com>;tag=a6c85cf"#, 0).expect("token name");
        assert_eq!(n.display_name, Some("Bob"));
        let n = NameAddr::parse("sip:bob@biloxi.com;tag=1", 0).expect("addr-spec");
        assert_eq!(n.tag(), Some("1"));
        assert!(n.sip_uri().expect("sip").params.is_empty());
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>", 0).is_err());
        assert!(NameAddr::parse("\"unterminated <sip:a@b>", 0).is_err());
        let n = NameAddr::parse("<tel:+1-555>", 0).expect("tel");
        assert_eq!(n.uri.scheme(), "tel");
    }

    #[test]
    fn via_with_spaces_and_ipv6() {
        let v = Via::parse(
            "SIP  /   2.0 /UDP [2001:db8::9:1]:5070;branch=z9hG4bK1;rport",
            0,
        )
        .expect("via");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse("SIP/2.0/UDP host;;branch=1", 0).is_err());
    }
}
