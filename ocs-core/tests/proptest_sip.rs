//! Property tests for the SIP message layer:
//! - generated requests/responses parse to what was generated and print
//!   back byte for byte;
//! - SIP URIs and header parameter lists round-trip;
//! - no input (random, mutated or structured garbage) makes any parser,
//!   typed accessor, the stream framer or the multipart splitter panic;
//! - the stream framer yields the same messages whatever the read sizes.
#![allow(missing_docs)]

use std::net::{Ipv4Addr, Ipv6Addr};

use ocs_core::sip::{
    Capabilities, HeaderName, Host, Message, NameAddr, Params, SipUri, TokenParams, Uri,
    disposition, multipart,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

// ----- generators: lexical pieces -------------------------------------------

const TOKEN: &str = r"[A-Za-z0-9.!%*_+`'~-]{1,12}";
/// Printable ASCII, trimmed, non-empty.
const VALUE: &str = r"[!-~]([ -~]{0,28}[!-~])?";
/// URI `paramchar` runs (unreserved, param-unreserved, escaped).
const PARAMCHARS: &str = r"([A-Za-z0-9_.!~*'()\[\]/:&+$-]|%[0-9A-Fa-f]{2}){1,8}";
/// URI header names and values (hnv-unreserved, unreserved, escaped).
const HNAME: &str = r"([A-Za-z0-9_.!~*'()\[\]/?:+$-]|%[0-9A-Fa-f]{2}){1,8}";
const HVALUE: &str = r"([A-Za-z0-9_.!~*'()\[\]/?:+$-]|%[0-9A-Fa-f]{2}){0,8}";

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "SUBSCRIBE",
            "NOTIFY",
            "MESSAGE",
            "INFO",
            "SERVICE",
            "BENOTIFY",
            "PUBLISH",
            "REFER",
        ])
        .prop_map(str::to_owned),
        TOKEN,
    ]
}

/// Header names: long and compact forms of known headers, and extension
/// tokens. Content-Length is left out: it is added where needed.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Via",
            "v",
            "From",
            "f",
            "To",
            "t",
            "Call-ID",
            "i",
            "CSeq",
            "Contact",
            "m",
            "Subject",
            "s",
            "Supported",
            "k",
            "Content-Type",
            "c",
            "Event",
            "o",
            "Allow-Events",
            "u",
            "Refer-To",
            "r",
            "Max-Forwards",
            "ms-keep-alive",
            "subscription-state",
            "Authentication-Info",
            "Proxy-Authorization",
            "X-Extension",
        ])
        .prop_map(str::to_owned),
        TOKEN,
    ]
    .prop_filter("Content-Length is generated separately", |n| {
        HeaderName::from_wire(n) != HeaderName::ContentLength
    })
}

#[derive(Debug, Clone)]
enum GenHost {
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl std::fmt::Display for GenHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenHost::Domain(d) => f.write_str(d),
            GenHost::V4(a) => write!(f, "{a}"),
            GenHost::V6(a) => write!(f, "[{a}]"),
        }
    }
}

fn host() -> impl Strategy<Value = GenHost> {
    prop_oneof![
        r"[a-zA-Z][a-zA-Z0-9_-]{0,8}(\.[a-zA-Z][a-zA-Z0-9_-]{0,8}){0,3}".prop_map(GenHost::Domain),
        any::<[u8; 4]>().prop_map(|o| GenHost::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| GenHost::V6(Ipv6Addr::from(s))),
        // Sparse addresses so that `::` compression shows up.
        (any::<u16>(), any::<u16>())
            .prop_map(|(a, b)| GenHost::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a, b))),
    ]
}

#[derive(Debug, Clone)]
struct GenUri {
    secure: bool,
    user: Option<String>,
    password: Option<String>,
    host: GenHost,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl GenUri {
    fn params_text(&self) -> String {
        self.params
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n}={v}"),
                None => n.clone(),
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    fn headers_text(&self) -> Option<String> {
        if self.headers.is_empty() {
            return None;
        }
        Some(
            self.headers
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        )
    }
}

impl std::fmt::Display for GenUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if !self.params.is_empty() {
            write!(f, ";{}", self.params_text())?;
        }
        if let Some(h) = self.headers_text() {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

fn uri_param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "transport",
            "lr",
            "maddr",
            "user",
            "method",
            "ttl",
            "gruu",
            "opaque",
        ])
        .prop_map(str::to_owned),
        PARAMCHARS,
    ]
}

fn sip_uri() -> impl Strategy<Value = GenUri> {
    let user = r"([A-Za-z0-9_.!~*'()&=+$,;?/-]|%[0-9A-Fa-f]{2}){1,12}";
    let password = r"([A-Za-z0-9_.!~*'()&=+$,-]|%[0-9A-Fa-f]{2}){0,8}";
    (
        any::<bool>(),
        prop::option::of((user, prop::option::weighted(0.2, password))),
        host(),
        prop::option::of(any::<u16>()),
        vec((uri_param_name(), prop::option::of(PARAMCHARS)), 0..4),
        prop::option::weighted(0.3, vec((HNAME, HVALUE), 1..3)),
    )
        .prop_map(|(secure, userinfo, host, port, params, headers)| {
            // Parameter names are compared case-insensitively, and RFC 3261
            // does not say what repeated names mean: keep them unique.
            let mut seen = Vec::<String>::new();
            let params = params
                .into_iter()
                .filter(|(n, _)| {
                    let l = n.to_ascii_lowercase();
                    let fresh = !seen.contains(&l);
                    seen.push(l);
                    fresh
                })
                .collect();
            let (user, password) = match userinfo {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            GenUri {
                secure,
                user,
                password,
                host,
                port,
                params,
                headers: headers.unwrap_or_default(),
            }
        })
}

// ----- generators: messages -------------------------------------------------

#[derive(Debug, Clone)]
struct GenHeader {
    name: String,
    /// Value pieces; more than one means the header is folded.
    parts: Vec<String>,
    before_colon: String,
    after_colon: String,
    /// Continuation line starts (line end + white space) between parts.
    folds: Vec<String>,
    eol: &'static str,
}

impl GenHeader {
    fn value(&self) -> String {
        self.parts.join(" ")
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.before_colon.as_bytes());
        out.push(b':');
        out.extend_from_slice(self.after_colon.as_bytes());
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(self.folds[i - 1].as_bytes());
            }
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(self.eol.as_bytes());
    }
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![9 => Just("\r\n"), 1 => Just("\n")]
}

fn header() -> impl Strategy<Value = GenHeader> {
    (
        header_name(),
        vec(VALUE, 1..4),
        prop_oneof![4 => Just(String::new()), 1 => r"[ \t]{1,2}"],
        prop_oneof![1 => Just(String::new()), 4 => Just(" ".to_owned()), 1 => r"[ \t]{1,3}"],
        vec((eol(), r"[ \t]{1,3}"), 3),
        eol(),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(name, parts, bc, ac, folds, eol, fold)| {
            let parts = if fold { parts } else { parts[..1].to_vec() };
            GenHeader {
                name,
                parts,
                before_colon: bc,
                after_colon: ac,
                folds: folds.into_iter().map(|(e, w)| format!("{e}{w}")).collect(),
                eol,
            }
        })
}

#[derive(Debug, Clone)]
enum GenStart {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

fn start_line() -> impl Strategy<Value = GenStart> {
    prop_oneof![
        (
            method(),
            prop_oneof![
                4 => sip_uri().prop_map(|u| u.to_string()),
                1 => r"(tel|im|pres|urn):[!-~]{1,20}",
            ]
        )
            .prop_map(|(method, uri)| GenStart::Request { method, uri }),
        (100u16..700, r"[ -~]{0,24}")
            .prop_map(|(code, reason)| GenStart::Response { code, reason }),
    ]
}

/// How the body length is told.
#[derive(Debug, Clone, Copy)]
enum ClForm {
    Long,
    Compact,
    /// No Content-Length: a datagram's body is the rest of the packet.
    Absent,
}

#[derive(Debug, Clone)]
struct GenMessage {
    start: GenStart,
    start_eol: &'static str,
    headers: Vec<GenHeader>,
    body: Vec<u8>,
    cl: ClForm,
    /// Index among the headers where Content-Length goes.
    cl_at: usize,
    blank: &'static str,
}

impl GenMessage {
    /// The headers as the parser should report them: (name as written,
    /// value), including Content-Length.
    fn expected_headers(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value()))
            .collect();
        if let Some(name) = self.cl_name() {
            v.insert(
                self.cl_at.min(v.len()),
                (name.to_owned(), self.body.len().to_string()),
            );
        }
        v
    }

    /// The first line's piece of each value, in header order.
    fn expected_first_pieces(&self) -> Vec<String> {
        let mut v: Vec<String> = self.headers.iter().map(|h| h.parts[0].clone()).collect();
        if self.cl_name().is_some() {
            v.insert(self.cl_at.min(v.len()), self.body.len().to_string());
        }
        v
    }

    fn cl_name(&self) -> Option<&'static str> {
        match self.cl {
            ClForm::Long => Some("Content-Length"),
            ClForm::Compact => Some("l"),
            ClForm::Absent => None,
        }
    }

    fn wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.start {
            GenStart::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0").as_bytes())
            }
            GenStart::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code} {reason}").as_bytes())
            }
        }
        out.extend_from_slice(self.start_eol.as_bytes());
        let at = self.cl_at.min(self.headers.len());
        for (i, h) in self.headers.iter().enumerate() {
            if i == at {
                self.write_cl(&mut out);
            }
            h.write(&mut out);
        }
        if at == self.headers.len() {
            self.write_cl(&mut out);
        }
        out.extend_from_slice(self.blank.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    fn write_cl(&self, out: &mut Vec<u8>) {
        if let Some(n) = self.cl_name() {
            out.extend_from_slice(format!("{n}: {}\r\n", self.body.len()).as_bytes());
        }
    }
}

fn message_with(cl: BoxedStrategy<ClForm>) -> impl Strategy<Value = GenMessage> {
    (
        start_line(),
        eol(),
        vec(header(), 0..10),
        prop_oneof![3 => Just(Vec::new()), 2 => vec(any::<u8>(), 1..80)],
        cl,
        0usize..12,
        eol(),
    )
        .prop_map(
            |(start, start_eol, headers, body, cl, cl_at, blank)| GenMessage {
                start,
                start_eol,
                headers,
                body,
                cl,
                cl_at,
                blank,
            },
        )
}

fn message() -> impl Strategy<Value = GenMessage> {
    message_with(
        prop_oneof![
            Just(ClForm::Long),
            Just(ClForm::Compact),
            Just(ClForm::Absent)
        ]
        .boxed(),
    )
}

fn stream_message() -> impl Strategy<Value = GenMessage> {
    message_with(prop_oneof![Just(ClForm::Long), Just(ClForm::Compact)].boxed())
}

// ----- exercising everything on a parsed message ---------------------------

#[path = "support/exercise.rs"]
mod exercise;
use exercise::{exercise, exercise_value, frame_chunks};

// ----- (a) messages --------------------------------------------------------

proptest! {
    #[test]
    fn messages_parse_as_generated_and_print_back(g in message()) {
        let wire = g.wire();
        let m = Message::parse(&wire)
            .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&wire))))?;
        match &g.start {
            GenStart::Request { method, uri } => {
                prop_assert!(m.is_request());
                prop_assert_eq!(m.method().map(|x| x.as_str()), Some(method.as_str()));
                prop_assert_eq!(m.request_uri(), Some(uri.as_str()));
                prop_assert_eq!(m.status(), None);
            }
            GenStart::Response { code, reason } => {
                prop_assert!(m.is_response());
                prop_assert_eq!(m.status(), Some(*code));
                prop_assert_eq!(m.reason(), Some(reason.as_str()));
                prop_assert_eq!(m.method(), None);
            }
        }
        prop_assert_eq!(m.version(), "SIP/2.0");
        let got: Vec<(String, String)> = m
            .headers()
            .map(|h| (h.name_as_written.to_owned(), h.value.to_owned()))
            .collect();
        prop_assert_eq!(got, g.expected_headers());
        for h in m.headers() {
            prop_assert_eq!(h.name, &HeaderName::from_wire(h.name_as_written));
        }
        // Each value sits at its offset (folded ones: their first piece).
        let firsts: Vec<String> = g.expected_first_pieces();
        for (h, first) in m.headers().zip(&firsts) {
            prop_assert!(
                wire[h.offset..].starts_with(first.as_bytes()),
                "{} at {}", h.name_as_written, h.offset
            );
        }
        prop_assert_eq!(m.body(), &g.body[..]);
        let printed = m.to_bytes();
        prop_assert_eq!(&printed, &wire);
        let again = Message::parse(&printed).expect("printed message parses");
        prop_assert_eq!(again.to_bytes(), printed);
    }
}

// ----- (b) URIs --------------------------------------------------------------

/// Ways to rewrite a URI; some keep it equivalent.
#[derive(Debug, Clone)]
enum Mutation {
    UpperHost,
    EscapeUser,
    Port(Option<u16>),
    DropParam(Index),
    AddParam(String, Option<String>),
    ReverseParams,
    UpperParamValue(Index),
    DropHeaders,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::UpperHost),
        Just(Mutation::EscapeUser),
        prop::option::of(any::<u16>()).prop_map(Mutation::Port),
        any::<Index>().prop_map(Mutation::DropParam),
        (uri_param_name(), prop::option::of(PARAMCHARS))
            .prop_map(|(n, v)| Mutation::AddParam(n, v)),
        Just(Mutation::ReverseParams),
        any::<Index>().prop_map(Mutation::UpperParamValue),
        Just(Mutation::DropHeaders),
    ]
}

/// Percent-encodes the first alphanumeric character of the user part that
/// is not inside an escape.
fn escape_one(user: &str) -> String {
    let b = user.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            i += 3;
            continue;
        }
        if b[i].is_ascii_alphanumeric() {
            return format!("{}%{:02X}{}", &user[..i], b[i], &user[i + 1..]);
        }
        i += 1;
    }
    user.to_owned()
}

fn apply(u: &GenUri, muts: &[Mutation]) -> GenUri {
    let mut u = u.clone();
    for m in muts {
        match m {
            Mutation::UpperHost => {
                if let GenHost::Domain(d) = &mut u.host {
                    *d = d.to_ascii_uppercase();
                }
            }
            Mutation::EscapeUser => {
                if let Some(user) = &mut u.user {
                    *user = escape_one(user);
                }
            }
            Mutation::Port(p) => u.port = *p,
            Mutation::DropParam(i) => {
                if !u.params.is_empty() {
                    u.params.remove(i.index(u.params.len()));
                }
            }
            Mutation::AddParam(n, v) => {
                if !u.params.iter().any(|(x, _)| x.eq_ignore_ascii_case(n)) {
                    u.params.push((n.clone(), v.clone()));
                }
            }
            Mutation::ReverseParams => u.params.reverse(),
            Mutation::UpperParamValue(i) => {
                if !u.params.is_empty() {
                    let k = i.index(u.params.len());
                    if let Some(v) = &mut u.params[k].1 {
                        *v = v.to_ascii_uppercase();
                    }
                }
            }
            Mutation::DropHeaders => u.headers.clear(),
        }
    }
    u
}

fn check_uri_fields(g: &GenUri, u: &SipUri<'_>) -> Result<(), TestCaseError> {
    prop_assert_eq!(u.secure, g.secure);
    prop_assert_eq!(u.user, g.user.as_deref());
    prop_assert_eq!(u.password, g.password.as_deref());
    match (&g.host, &u.host) {
        (GenHost::Domain(a), Host::Domain(b)) => prop_assert_eq!(a.as_str(), *b),
        (GenHost::V4(a), Host::V4(b)) => prop_assert_eq!(a, b),
        (GenHost::V6(a), Host::V6(b)) => prop_assert_eq!(a, b),
        (a, b) => prop_assert!(false, "host {a:?} parsed as {b:?}"),
    }
    prop_assert_eq!(u.port, g.port);
    prop_assert_eq!(u.params.as_str(), g.params_text());
    let got: Vec<(String, Option<String>)> = u
        .params
        .iter()
        .map(|p| (p.name.to_owned(), p.value.map(str::to_owned)))
        .collect();
    prop_assert_eq!(&got, &g.params);
    prop_assert_eq!(u.headers.map(str::to_owned), g.headers_text());
    Ok(())
}

proptest! {
    #[test]
    fn sip_uris_round_trip(g in sip_uri()) {
        let text = g.to_string();
        let u = SipUri::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
        check_uri_fields(&g, &u)?;
        prop_assert_eq!(u.to_string(), text.clone());
        prop_assert!(u.equivalent(&u));
        // The generic entry point agrees. `Uri::parse` reads a SIP URI the
        // addr-spec way (parameters belong to the header), so a URI with
        // parameters or headers is `Trailing` there, and a `,` in the user
        // part ends it; only URIs valid as an addr-spec compare.
        let addr_spec_ok = g.params.is_empty()
            && g.headers.is_empty()
            && !g.user.as_deref().unwrap_or("").contains(',')
            && !g.password.as_deref().unwrap_or("").contains(',');
        if addr_spec_ok {
            let any = Uri::parse(&text)
                .map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
            prop_assert_eq!(any.scheme(), if g.secure { "sips" } else { "sip" });
            check_uri_fields(&g, any.as_sip().expect("sip"))?;
        }
        // Inside a name-addr the same URI comes back as written.
        let na_text = format!("\"Display\" <{text}>;tag=abc");
        let na = NameAddr::parse(&na_text, 0)
            .map_err(|e| TestCaseError::fail(format!("{e} in {na_text:?}")))?;
        prop_assert_eq!(na.uri_text, text.as_str());
        prop_assert_eq!(na.tag(), Some("abc"));
        check_uri_fields(&g, na.sip_uri().expect("sip"))?;
    }

    #[test]
    fn uri_equivalence_is_reflexive_and_symmetric(
        g in sip_uri(),
        muts in vec(mutation(), 0..4),
    ) {
        let h = apply(&g, &muts);
        let (ta, tb) = (g.to_string(), h.to_string());
        let a = SipUri::parse(&ta).expect("a parses");
        let b = SipUri::parse(&tb).expect("b parses");
        prop_assert!(a.equivalent(&a));
        prop_assert!(b.equivalent(&b));
        prop_assert_eq!(a.equivalent(&b), b.equivalent(&a), "{} vs {}", ta, tb);
        let harmless = muts
            .iter()
            .all(|m| matches!(m, Mutation::UpperHost | Mutation::EscapeUser | Mutation::ReverseParams));
        if harmless {
            prop_assert!(a.equivalent(&b), "{} should equal {}", ta, tb);
        }
    }
}

// ----- (c) header parameters -------------------------------------------------

#[derive(Debug, Clone)]
enum GenValue {
    None,
    Token(String),
    /// (raw text with quotes and escapes, decoded content)
    Quoted(String, String),
}

fn quoted() -> impl Strategy<Value = GenValue> {
    let piece = prop_oneof![
        // qdtext: printable ASCII but `"` and `\`, and some UTF-8.
        6 => r"[ !#-\[\]-~]".prop_map(|c| (c.clone(), c)),
        1 => prop::sample::select(vec!["é", "ü", "日", "€"])
            .prop_map(|c| (c.to_owned(), c.to_owned())),
        // quoted-pair
        2 => r"[ -~]".prop_map(|c| (format!("\\{c}"), c)),
    ];
    vec(piece, 0..12).prop_map(|pieces| {
        let raw: String = pieces.iter().map(|(r, _)| r.as_str()).collect();
        let dec: String = pieces.iter().map(|(_, d)| d.as_str()).collect();
        GenValue::Quoted(format!("\"{raw}\""), dec)
    })
}

fn header_params() -> impl Strategy<Value = Vec<(String, GenValue, String, String, String)>> {
    vec(
        (
            TOKEN,
            prop_oneof![
                Just(GenValue::None),
                r"[A-Za-z0-9.!%*_+`'~:\[\]-]{1,10}".prop_map(GenValue::Token),
                quoted(),
            ],
            // white space around '=' and before the next ';'
            prop_oneof![3 => Just(String::new()), 1 => r"[ \t]{1,2}"],
            prop_oneof![3 => Just(String::new()), 1 => r"[ \t]{1,2}"],
            prop_oneof![3 => Just(String::new()), 1 => r"[ \t]{1,2}"],
        ),
        1..6,
    )
}

proptest! {
    #[test]
    fn header_params_round_trip(list in header_params()) {
        let mut text = String::new();
        for (i, (name, value, ws_eq1, ws_eq2, ws_semi)) in list.iter().enumerate() {
            if i > 0 {
                text.push_str(ws_semi);
                text.push(';');
                text.push_str(ws_semi);
            }
            text.push_str(name);
            match value {
                GenValue::None => {}
                GenValue::Token(t) => text.push_str(&format!("{ws_eq1}={ws_eq2}{t}")),
                GenValue::Quoted(raw, _) => text.push_str(&format!("{ws_eq1}={ws_eq2}{raw}")),
            }
        }
        let p = Params::from_header_text(&text)
            .map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
        let got: Vec<_> = p.iter().collect();
        prop_assert_eq!(got.len(), list.len(), "{:?}", text);
        for (param, (name, value, ..)) in got.iter().zip(&list) {
            prop_assert_eq!(param.name, name.as_str());
            match value {
                GenValue::None => prop_assert_eq!(param.value, None),
                GenValue::Token(t) => {
                    prop_assert_eq!(param.value, Some(t.as_str()));
                    let unq = param.value_unquoted();
                    prop_assert_eq!(unq.as_deref(), Some(t.as_str()));
                }
                GenValue::Quoted(raw, dec) => {
                    prop_assert_eq!(param.value, Some(raw.as_str()));
                    let unq = param.value_unquoted();
                    prop_assert_eq!(unq.as_deref(), Some(dec.as_str()));
                }
            }
        }
        // The same list after a header value parses the same way.
        let tp_text = format!("presence;{text}");
        let tp = TokenParams::parse(&tp_text, 0)
            .map_err(|e| TestCaseError::fail(format!("{e} in {tp_text:?}")))?;
        prop_assert_eq!(tp.params.iter().count(), list.len());
    }
}

/// A part as `multipart::build` takes it.
type PartSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8]);
/// A part with its extra headers owned by a Vec.
type OwnedPart<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

// ----- (d) no panics -------------------------------------------------------

/// Header values made of the characters SIP grammars care about.
const NASTY: &str = r#"[<>";,=:@ \t\\%/\[\]?&().a-c0-9A-Z*!+-]{0,40}"#;

fn nasty_message() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just("INVITE sip:a@b SIP/2.0".to_owned()),
            Just("SIP/2.0 200 OK".to_owned()),
            r"[A-Z]{1,6} [ -~]{0,20} SIP/2\.0",
            r"SIP/2\.0 [0-9]{1,4}[ -~]{0,10}",
        ],
        vec(
            (
                prop_oneof![
                    header_name(),
                    prop::sample::select(vec![
                        "Content-Length",
                        "l",
                        "WWW-Authenticate",
                        "Proxy-Authenticate",
                        "Authorization",
                        "Route",
                        "Record-Route",
                        "P-Asserted-Identity",
                        "Retry-After",
                        "Warning",
                        "ms-diagnostics",
                        "ms-diagnostics-public",
                        "ms-client-diagnostics",
                        "Require",
                        "Proxy-Require",
                        "Unsupported",
                        "Accept",
                        "Expires",
                        "Min-Expires",
                        "Content-Encoding",
                    ])
                    .prop_map(str::to_owned),
                ],
                NASTY,
            ),
            0..14,
        ),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(start, headers, body)| {
            let mut out = format!("{start}\r\n").into_bytes();
            for (n, v) in headers {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        })
}

#[derive(Debug, Clone)]
enum ByteEdit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutated_message() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![message().prop_map(|g| g.wire()), nasty_message()],
        vec(
            prop_oneof![
                (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
                (
                    any::<Index>(),
                    prop::sample::select(b";,<>\":@ \r\n\\%=[]".to_vec())
                )
                    .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
                any::<Index>().prop_map(ByteEdit::Delete),
                any::<Index>().prop_map(ByteEdit::Truncate),
            ],
            0..4,
        ),
    )
        .prop_map(|(mut bytes, edits)| {
            for e in edits {
                if bytes.is_empty() {
                    break;
                }
                match e {
                    ByteEdit::Set(i, b) => {
                        let k = i.index(bytes.len());
                        bytes[k] = b;
                    }
                    ByteEdit::Insert(i, b) => {
                        let k = i.index(bytes.len());
                        bytes.insert(k, b);
                    }
                    ByteEdit::Delete(i) => {
                        let k = i.index(bytes.len());
                        bytes.remove(k);
                    }
                    ByteEdit::Truncate(i) => {
                        let k = i.index(bytes.len());
                        bytes.truncate(k);
                    }
                }
            }
            bytes
        })
}

fn no_panic_everywhere(data: &[u8], cuts: &[usize], boundary: &str) {
    if let Ok(m) = Message::parse(data) {
        exercise(&m);
    }
    let _ = disposition(data, &Capabilities::default());
    let _ = frame_chunks(data, cuts);
    if let Ok(parts) = multipart::parse(data, boundary) {
        for p in parts {
            let _ = (p.content_type(), p.header("Content-ID"));
        }
    }
    let text = String::from_utf8_lossy(data);
    exercise_value(&text, 0);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        data in vec(any::<u8>(), 0..400),
        cuts in vec(any::<usize>(), 0..5),
        boundary in r"[A-Za-z0-9'()+_,./:=? -]{0,8}",
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        no_panic_everywhere(&data, &cuts, &boundary);
    }

    #[test]
    fn mutated_and_structured_garbage_never_panics(
        data in mutated_message(),
        cuts in vec(any::<usize>(), 0..5),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        no_panic_everywhere(&data, &cuts, "b1");
    }

    #[test]
    fn header_values_never_panic(v in NASTY, base in 0usize..1000) {
        exercise_value(&v, base);
    }

    #[test]
    fn multipart_round_trips_and_garbage_never_panics(
        boundary in r"[A-Za-z0-9'()+_,./:=?-]{1,20}",
        parts in vec(
            (
                r"[a-z]{1,8}/[a-z0-9.+-]{1,12}",
                vec((TOKEN, VALUE), 0..3),
                vec(any::<u8>(), 0..60),
            ),
            1..4,
        ),
        cut in any::<Index>(),
    ) {
        let delim = format!("--{boundary}");
        for (_, _, content) in &parts {
            prop_assume!(!content.windows(delim.len()).any(|w| w == delim.as_bytes()));
        }
        let spec: Vec<OwnedPart<'_>> = parts
            .iter()
            .map(|(ct, extra, content)| {
                (
                    ct.as_str(),
                    extra.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                    &content[..],
                )
            })
            .collect();
        let spec_refs: Vec<PartSpec<'_>> =
            spec.iter().map(|(ct, e, c)| (*ct, &e[..], *c)).collect();
        let body = multipart::build(&boundary, &spec_refs);
        let got = multipart::parse(&body, &boundary)
            .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&body))))?;
        prop_assert_eq!(got.len(), parts.len());
        for (p, (ct, extra, content)) in got.iter().zip(&parts) {
            prop_assert_eq!(p.content_type(), ct.as_str());
            prop_assert_eq!(p.body, &content[..]);
            for (n, v) in extra {
                prop_assert!(p.headers.contains(&(n.as_str(), v.as_str())));
            }
        }
        // Any prefix of it is handled without panicking.
        let k = cut.index(body.len() + 1);
        let _ = multipart::parse(&body[..k], &boundary);
    }
}

// ----- (e) stream framing ----------------------------------------------------

proptest! {
    #[test]
    fn framer_yields_the_messages_whatever_the_reads(
        items in vec(
            (
                prop_oneof![
                    2 => Just(""),
                    1 => Just("\r\n"),
                    1 => Just("\r\n\r\n"),
                    1 => Just("\n"),
                ],
                stream_message(),
            ),
            1..5,
        ),
        tail in prop_oneof![Just(""), Just("\r\n\r\n")],
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for (ka, g) in &items {
            data.extend_from_slice(ka.as_bytes());
            let w = g.wire();
            data.extend_from_slice(&w);
            expected.push(w);
        }
        data.extend_from_slice(tail.as_bytes());
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
        let (got, failed) = frame_chunks(&data, &cuts);
        prop_assert!(!failed, "framer failed on {:?}", String::from_utf8_lossy(&data));
        prop_assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            prop_assert_eq!(g, e);
        }
        // Byte-at-a-time reads give the same.
        let every: Vec<usize> = (0..data.len()).collect();
        let (got1, failed1) = frame_chunks(&data, &every);
        prop_assert!(!failed1);
        prop_assert_eq!(got1, expected);
    }
}

// ----- regressions -------------------------------------------------------------
//
// Bugs the properties and the fuzzer found, kept as plain tests.

#[test]
fn header_offsets_count_skipped_crlfs() {
    let data = b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nCSeq: x\r\nCall-ID: abc\r\n\r\n";
    let m = Message::parse(data).expect("parses");
    for h in m.headers() {
        assert!(
            data[h.offset..].starts_with(h.value.as_bytes()),
            "{} value is not at offset {}",
            h.name_as_written,
            h.offset
        );
    }
    assert_eq!(m.cseq().expect_err("bad CSeq").offset, 33);
}

#[test]
fn uri_equivalence_with_repeated_params() {
    let a = SipUri::parse("sip:h;x=1;x=2").expect("a");
    let b = SipUri::parse("sip:h;x=1").expect("b");
    assert!(a.equivalent(&a), "not reflexive");
    assert_eq!(a.equivalent(&b), b.equivalent(&a), "not symmetric");
}

#[test]
fn header_params_with_leading_space() {
    match Params::from_header_text(" a=1") {
        Err(_) => {}
        Ok(p) => {
            let v: Vec<_> = p.iter().map(|p| (p.name, p.value)).collect();
            assert_eq!(v, vec![("a", Some("1"))]);
        }
    }
}

#[test]
fn uri_parse_takes_a_complete_sip_uri() {
    for s in ["sip:a@b;transport=tcp", "sip:a@b?subject=x", "sip:,@A"] {
        let u = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(u.to_string(), s);
    }
}

#[test]
fn name_addr_print_reparses() {
    for v in ["t:>", "tel:+1>;tag=1"] {
        if let Ok(n) = NameAddr::parse(v, 0) {
            let printed = n.to_string();
            assert!(
                NameAddr::parse(&printed, 0).is_ok(),
                "{v:?} parses but prints as {printed:?}, which does not"
            );
        }
    }
}
