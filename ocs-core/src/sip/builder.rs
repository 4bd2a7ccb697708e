//! Building requests (RFC 3261 §8.1.1) and responses (§8.2.6).

use super::error::ParseError;
use super::message::Message;
use super::name::{HeaderName, Method};
use super::validate::reason_phrase;

/// What a new out-of-dialog (or in-dialog) request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec<'a> {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: &'a str,
    /// The From value without tag, e.g. `<sip:alice@contoso.com>`.
    pub from: &'a str,
    /// The local tag.
    pub from_tag: &'a str,
    /// Extra From parameters, e.g. `epid=c8ca638a15` (OCS), without `;`.
    pub from_params: Option<&'a str>,
    /// The To value, e.g. `<sip:bob@contoso.com>`.
    pub to: &'a str,
    /// The remote tag inside a dialog.
    pub to_tag: Option<&'a str>,
    /// The Call-ID.
    pub call_id: &'a str,
    /// The CSeq number.
    pub cseq: u32,
    /// Via sent-protocol transport (`UDP`, `TCP`, `TLS`).
    pub transport: &'a str,
    /// Via sent-by (`host[:port]`).
    pub sent_by: &'a str,
    /// The branch (`z9hG4bK...`).
    pub branch: &'a str,
}

/// Builds a request with Via, Max-Forwards: 70, From, To, Call-ID and CSeq
/// in that order, and `Content-Length: 0`. Add Contact, Route and other
/// headers with [`Message::push_header`]; [`Message::set_body`] keeps
/// Content-Length right.
pub fn request(spec: &RequestSpec<'_>) -> Message {
    let mut m = Message::request(spec.method.clone(), spec.uri);
    m.push_header(
        HeaderName::Via,
        format!(
            "SIP/2.0/{} {};branch={}",
            spec.transport, spec.sent_by, spec.branch
        ),
    );
    m.push_header(HeaderName::MaxForwards, "70");
    let mut from = format!("{};tag={}", spec.from, spec.from_tag);
    if let Some(p) = spec.from_params {
        from.push(';');
        from.push_str(p);
    }
    m.push_header(HeaderName::From, from);
    match spec.to_tag {
        Some(t) => m.push_header(HeaderName::To, format!("{};tag={t}", spec.to)),
        None => m.push_header(HeaderName::To, spec.to),
    }
    m.push_header(HeaderName::CallId, spec.call_id);
    m.push_header(HeaderName::CSeq, format!("{} {}", spec.cseq, spec.method));
    m.push_header(HeaderName::ContentLength, "0");
    m
}

/// Builds a response to `req` (§8.2.6): copies every Via in order, From,
/// To (adding `to_tag` when the request's To has none and the response is
/// not a 100), Call-ID and CSeq; a 100 also copies Timestamp. `reason`
/// defaults to the standard phrase.
///
/// Fails when the request's To is malformed (it would have been refused by
/// [`super::validate_request`]).
pub fn response(
    req: &Message,
    code: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> Result<Message, ParseError> {
    let mut m = Message::response(code, reason.unwrap_or_else(|| reason_phrase(code)));
    for h in req.headers_named(HeaderName::Via) {
        m.push_header(HeaderName::Via, h.value);
    }
    if let Some(v) = req.header(HeaderName::From) {
        m.push_header(HeaderName::From, v);
    }
    if let Some(v) = req.header(HeaderName::To) {
        let has_tag = req.to()?.tag().is_some();
        match to_tag {
            Some(t) if !has_tag && code != 100 => {
                m.push_header(HeaderName::To, format!("{v};tag={t}"))
            }
            _ => m.push_header(HeaderName::To, v),
        }
    }
    if let Some(v) = req.header(HeaderName::CallId) {
        m.push_header(HeaderName::CallId, v);
    }
    if let Some(v) = req.header(HeaderName::CSeq) {
        m.push_header(HeaderName::CSeq, v);
    }
    if code == 100
        && let Some(v) = req.header(HeaderName::Timestamp)
    {
        m.push_header(HeaderName::Timestamp, v);
    }
    m.push_header(HeaderName::ContentLength, "0");
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RequestSpec<'static> {
        RequestSpec {
            method: Method::Register,
            uri: "sip:cosmo.local",
            from: "<sip:user@cosmo.local>",
            from_tag: "3e49177a52",
            from_params: Some("epid=c8ca638a15"),
            to: "<sip:user@cosmo.local>",
            to_tag: None,
            call_id: "4037df9284354df39065195bd57a4b14",
            cseq: 3,
            transport: "TLS",
            sent_by: "192.168.172.6:12723",
            branch: "z9hG4bK1",
        }
    }

    #[test]
    fn request_has_the_mandatory_headers() {
        let m = request(&spec());
        let text = String::from_utf8(m.to_bytes()).expect("utf8");
        assert!(text.starts_with("REGISTER sip:cosmo.local SIP/2.0\r\nVia: SIP/2.0/TLS 192.168.172.6:12723;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15\r\n"));
        let re = Message::parse(text.as_bytes()).expect("reparses");
        assert_eq!(re.cseq().expect("cseq").seq, 3);
        assert_eq!(re.from().expect("from").epid(), Some("c8ca638a15"));
        assert!(crate::sip::validate_response(&re) == crate::sip::ResponseVerdict::Accept);
    }

    #[test]
    fn response_copies_and_tags() {
        let mut req = request(&spec());
        req.insert_header(1, HeaderName::Via, "SIP/2.0/UDP proxy;branch=z9hG4bK2");
        let r = response(&req, 200, None, Some("srv")).expect("builds");
        assert_eq!(r.reason(), Some("OK"));
        assert_eq!(r.via().expect("via").len(), 2);
        assert_eq!(r.to().expect("to").tag(), Some("srv"));
        assert_eq!(
            r.call_id().expect("cid"),
            "4037df9284354df39065195bd57a4b14"
        );
        let t = response(&req, 100, None, Some("srv")).expect("builds");
        assert_eq!(t.to().expect("to").tag(), None);
    }
}
