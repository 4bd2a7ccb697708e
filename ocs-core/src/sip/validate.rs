//! What a user agent answers to a request it cannot process (RFC 3261
//! §8.2), and which responses it drops (§8.1.3.3, §18.1.2).
//!
//! The checks run in the order of §8.2: version, syntax of the headers a
//! UA relies on, method, URI scheme, Require, then content. The first
//! failing check decides the answer.

use super::message::Message;
use super::name::{HeaderName, Method};
use super::typed::Contacts;
use super::uri::SipUri;
use std::sync::{Arc, OnceLock};

/// What the user agent can handle. Built once and reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Methods the UA implements; others get 405 (known) or 501 (unknown).
    pub methods: Vec<Method>,
    /// Option tags the UA supports (for Require → 420).
    pub supported: Arc<[String]>,
    /// Body types the UA accepts (`type/subtype`, lower-case) → 415.
    pub accept: Arc<[String]>,
    /// Request-URI schemes the UA accepts → 416.
    pub uri_schemes: Arc<[String]>,
}

/// The default lists, made once per process and shared: built per
/// endpoint they were about 30 strings and 2 KB of every client's memory
/// at 10,000 clients in one process.
static DEFAULT_LISTS: OnceLock<[Arc<[String]>; 3]> = OnceLock::new();

impl Default for Capabilities {
    /// What an ocs client endpoint handles in both dialects.
    fn default() -> Self {
        let [supported, accept, uri_schemes] = DEFAULT_LISTS.get_or_init(default_lists).clone();
        Capabilities {
            methods: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Message,
                Method::Info,
                Method::Notify,
                Method::Benotify,
            ],
            supported,
            accept,
            uri_schemes,
        }
    }
}

fn default_lists() -> [Arc<[String]>; 3] {
    let s = |v: &[&str]| -> Arc<[String]> { v.iter().map(|x| (*x).to_owned()).collect() };
    [
        s(&[
            "ms-benotify",
            "ms-piggyback-first-notify",
            "eventlist",
            "gruu-10",
            "adhoclist",
            "msrtc-event-categories",
            "ms-text-format",
            "ms-sender",
            "com.microsoft.rtc-multiparty",
            "com.microsoft.autoextend",
        ]),
        s(&[
            "application/sdp",
            "text/plain",
            "text/html",
            "text/rtf",
            "multipart/alternative",
            "multipart/related",
            "application/rlmi+xml",
            "application/pidf+xml",
            "application/msrtc-event-categories+xml",
            "application/vnd-microsoft-roaming-contacts+xml",
            "application/vnd-microsoft-roaming-self+xml",
            "application/vnd-microsoft-roaming-provisioning-v2+xml",
            "application/im-iscomposing+xml",
            "application/xml",
            "text/registration-event",
            "message/sipfrag",
        ]),
        s(&["sip", "sips"]),
    ]
}

/// The outcome of [`validate_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestVerdict {
    /// The request can be processed.
    Accept,
    /// Answer with this response and do not process the request.
    Reject {
        /// Status code.
        code: u16,
        /// Standard reason phrase.
        reason: &'static str,
        /// Headers the response must carry (Allow, Accept, Unsupported).
        headers: Vec<(HeaderName, String)>,
        /// A human-readable explanation for logs.
        detail: String,
    },
}

/// The outcome of [`validate_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseVerdict {
    /// Pass the response to its transaction.
    Accept,
    /// Discard silently, with the reason for logs.
    Drop(String),
}

fn reject(code: u16, detail: impl Into<String>) -> RequestVerdict {
    reject_with(code, Vec::new(), detail)
}

fn reject_with(
    code: u16,
    headers: Vec<(HeaderName, String)>,
    detail: impl Into<String>,
) -> RequestVerdict {
    RequestVerdict::Reject {
        code,
        reason: reason_phrase(code),
        headers,
        detail: detail.into(),
    }
}

/// The RFC 3261 reason phrase for a status code ("" for unknown codes).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        412 => "Conditional Request Failed",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "",
    }
}

/// Headers that may appear at most once (RFC 3261 §7.3.1 / §20).
const SINGLE: &[(HeaderName, &str)] = &[
    (HeaderName::To, "To"),
    (HeaderName::From, "From"),
    (HeaderName::CallId, "Call-ID"),
    (HeaderName::CSeq, "CSeq"),
    (HeaderName::MaxForwards, "Max-Forwards"),
    (HeaderName::ContentType, "Content-Type"),
    (HeaderName::Expires, "Expires"),
];

/// Checks that the headers every transaction and dialog relies on are
/// present, single and well-formed. Shared by requests and responses.
fn check_core_headers(m: &Message) -> Result<(), String> {
    for (name, label) in SINGLE {
        if m.headers_named(name.clone()).count() > 1 {
            return Err(format!("more than one {label} header"));
        }
    }
    let via = m.via().map_err(|e| format!("Via: {e}"))?;
    if via.is_empty() {
        return Err("missing Via".into());
    }
    m.from().map_err(|e| format!("From: {e}"))?;
    m.to().map_err(|e| format!("To: {e}"))?;
    m.call_id().map_err(|e| format!("Call-ID: {e}"))?;
    m.cseq().map_err(|e| format!("CSeq: {e}"))?;
    m.max_forwards().map_err(|e| format!("Max-Forwards: {e}"))?;
    m.expires().map_err(|e| format!("Expires: {e}"))?;
    m.content_type().map_err(|e| format!("Content-Type: {e}"))?;
    m.content_length()
        .map_err(|e| format!("Content-Length: {e}"))?;
    match m.contacts().map_err(|e| format!("Contact: {e}"))? {
        Contacts::Star | Contacts::List(_) => {}
    }
    m.record_route().map_err(|e| format!("Record-Route: {e}"))?;
    m.route().map_err(|e| format!("Route: {e}"))?;
    m.require().map_err(|e| format!("Require: {e}"))?;
    Ok(())
}

/// Decides whether a user agent can process `m`, or what it answers.
/// Responses are always accepted here; use [`validate_response`].
pub fn validate_request(m: &Message, caps: &Capabilities) -> RequestVerdict {
    let Some(method) = m.method() else {
        return RequestVerdict::Accept;
    };
    if m.version() != "SIP/2.0" {
        return reject(505, format!("version {} is not SIP/2.0", m.version()));
    }
    if let Err(d) = check_core_headers(m) {
        return reject(400, d);
    }
    // CSeq method must equal the Request-Line method (RFC 4475 mismatch01).
    if let Ok(cseq) = m.cseq()
        && cseq.method != method.as_str()
    {
        // An unknown method answers 501 regardless (RFC 4475 mismatch02).
        if !caps.methods.contains(method) && matches!(method, Method::Extension(_)) {
            return reject(501, format!("method {method} is not implemented"));
        }
        return reject(400, "CSeq method does not match the request method");
    }
    // §8.2.1 method inspection.
    if !caps.methods.contains(method) {
        if matches!(method, Method::Extension(_)) {
            return reject(501, format!("method {method} is not implemented"));
        }
        let allow = caps
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        return reject_with(
            405,
            vec![(HeaderName::Allow, allow)],
            format!("method {method} is not allowed here"),
        );
    }
    // §8.2.2.1 Request-URI scheme.
    let ruri = m.request_uri().unwrap_or("");
    let scheme = ruri.split(':').next().unwrap_or("");
    if !caps
        .uri_schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return reject(416, format!("URI scheme {scheme} is not supported"));
    }
    if (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        && let Err(e) = SipUri::parse(ruri)
    {
        return reject(400, format!("Request-URI: {e}"));
    }
    // A request that still has a Route to follow was not meant to end here;
    // with no hops left the UA can't pass it on (§16.3 applied at the edge).
    if m.max_forwards().ok().flatten() == Some(0) && m.has_header(HeaderName::Route) {
        return reject(483, "Max-Forwards reached zero");
    }
    // §8.2.2.3 Require (not for ACK and CANCEL).
    if !matches!(method, Method::Ack | Method::Cancel)
        && let Ok(req) = m.require()
    {
        let unknown: Vec<&str> = req
            .into_iter()
            .filter(|t| !caps.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unknown.is_empty() {
            return reject_with(
                420,
                vec![(HeaderName::Unsupported, unknown.join(", "))],
                format!("unsupported extensions: {}", unknown.join(", ")),
            );
        }
    }
    // §8.2.3 content processing.
    let accept_header = || (HeaderName::Accept, caps.accept.join(", "));
    if let Ok(Some(ct)) = m.content_type() {
        let essence = ct.essence();
        if !m.body().is_empty() && !caps.accept.contains(&essence) {
            return reject_with(
                415,
                vec![accept_header()],
                format!("body type {essence} is not supported"),
            );
        }
    }
    if let Some(enc) = m.header(HeaderName::ContentEncoding)
        && !enc.trim().eq_ignore_ascii_case("identity")
        && !m.body().is_empty()
    {
        return reject_with(
            415,
            vec![(HeaderName::AcceptEncoding, "identity".into())],
            format!("content encoding {enc} is not supported"),
        );
    }
    // An INVITE is answered with SDP; if the caller can't take SDP, 406.
    if *method == Method::Invite
        && m.has_header(HeaderName::Accept)
        && let Ok(acc) = m.accept()
    {
        let ok = acc.iter().any(|a| {
            a.is("application/sdp") || (a.top == "*" && a.sub == "*") || a.is("application/*")
        });
        if !ok {
            return reject(406, "the caller does not accept application/sdp");
        }
    }
    RequestVerdict::Accept
}

/// Decides whether a user agent keeps or silently drops a response.
pub fn validate_response(m: &Message) -> ResponseVerdict {
    let Some(code) = m.status() else {
        return ResponseVerdict::Accept;
    };
    if !(100..=699).contains(&code) {
        return ResponseVerdict::Drop(format!("status code {code} is out of range"));
    }
    if m.version() != "SIP/2.0" {
        return ResponseVerdict::Drop(format!("version {}", m.version()));
    }
    if let Err(d) = check_core_headers(m) {
        return ResponseVerdict::Drop(d);
    }
    // §8.1.3.3: more than one Via means it was meant for someone else.
    match m.via() {
        Ok(v) if v.len() == 1 => ResponseVerdict::Accept,
        Ok(v) => ResponseVerdict::Drop(format!("{} Via values in a response", v.len())),
        Err(e) => ResponseVerdict::Drop(format!("Via: {e}")),
    }
}

/// What a user agent does with one received datagram: the whole pipeline
/// of parse, then [`validate_request`] or [`validate_response`]. This is
/// what `ocs sip check` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// A request to process or a response to pass on.
    Accept,
    /// A response to discard silently.
    Drop(String),
    /// A request to answer with this status instead of processing it.
    Reply {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: &'static str,
        /// Why, for logs.
        detail: String,
    },
    /// Bytes that are not a SIP message: dropped (a UA can't even answer).
    Unparseable(super::error::ParseError),
}

/// Parses and validates one datagram as a user agent would.
pub fn disposition(datagram: &[u8], caps: &Capabilities) -> Disposition {
    let m = match Message::parse(datagram) {
        Ok(m) => m,
        Err(e) => return Disposition::Unparseable(e),
    };
    if m.is_request() {
        match validate_request(&m, caps) {
            RequestVerdict::Accept => Disposition::Accept,
            RequestVerdict::Reject {
                code,
                reason,
                detail,
                ..
            } => Disposition::Reply {
                code,
                reason,
                detail,
            },
        }
    } else {
        match validate_response(&m) {
            ResponseVerdict::Accept => Disposition::Accept,
            ResponseVerdict::Drop(d) => Disposition::Drop(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str, body: &str) -> Message {
        let s = format!(
            "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Message::parse(s.as_bytes()).expect("parses")
    }

    fn code(v: RequestVerdict) -> u16 {
        match v {
            RequestVerdict::Accept => 0,
            RequestVerdict::Reject { code, .. } => code,
        }
    }

    #[test]
    fn each_check() {
        let caps = Capabilities::default();
        assert_eq!(code(validate_request(&req("", ""), &caps)), 0);
        assert_eq!(
            code(validate_request(&req("To: <sip:x@y>\r\n", ""), &caps)),
            400
        );
        assert_eq!(
            code(validate_request(&req("Require: foo\r\n", ""), &caps)),
            420
        );
        assert_eq!(
            code(validate_request(
                &req("Content-Type: application/x-foo\r\n", "x"),
                &caps
            )),
            415
        );
        let mut m = req("", "");
        m.set_request_uri("tel:+123");
        assert_eq!(code(validate_request(&m, &caps)), 416);
        let m = Message::parse(
            b"PUBLISH sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 PUBLISH\r\n\r\n",
        )
        .expect("parses");
        match validate_request(&m, &caps) {
            RequestVerdict::Reject {
                code: 405, headers, ..
            } => {
                assert_eq!(headers[0].0, HeaderName::Allow);
                assert!(headers[0].1.contains("INVITE"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_with_two_vias_are_dropped() {
        let m = Message::parse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        )
        .expect("parses");
        assert!(matches!(validate_response(&m), ResponseVerdict::Drop(_)));
    }
}
