//! Dialogs (RFC 3261 §12): the state two user agents share after a
//! dialog-creating request (INVITE, SUBSCRIBE) is answered, and the
//! in-dialog requests built from it.

use crate::sip::{HeaderName, Message, Method, NameAddr, ParseError, ParseErrorKind};

/// One side's view of a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// Our URI (From of our requests).
    pub local_uri: String,
    /// The peer's URI (To of our requests).
    pub remote_uri: String,
    /// The peer's Contact: the Request-URI of our in-dialog requests.
    pub remote_target: String,
    /// Route set (Route headers of our in-dialog requests, in order).
    pub route_set: Vec<String>,
    /// Our last CSeq number.
    pub local_cseq: u32,
    /// The peer's last CSeq number, once one arrived.
    pub remote_cseq: Option<u32>,
    /// The peer's epid (OCS): echoed on To of in-dialog requests.
    pub remote_epid: Option<String>,
}

fn contact_uri(m: &Message) -> Option<String> {
    match m.contacts().ok()? {
        crate::sip::Contacts::List(l) => l.first().map(|c| c.uri_text.to_owned()),
        crate::sip::Contacts::Star => None,
    }
}

fn missing(what: &'static str) -> ParseError {
    ParseError::new(0, ParseErrorKind::MissingHeader(what))
}

impl Dialog {
    /// The dialog a UAC gets from a 2xx (or 1xx with a To tag) to its
    /// request (§12.1.2): route set from Record-Route in reverse.
    pub fn from_uac(req: &Message, resp: &Message) -> Result<Dialog, ParseError> {
        let from = req.from()?;
        let to = resp.to()?;
        let remote_tag = to.tag().ok_or_else(|| missing("To tag"))?.to_owned();
        let mut route_set: Vec<String> = resp
            .record_route()?
            .iter()
            .map(|r| format!("<{}>", r.uri_text))
            .collect();
        route_set.reverse();
        Ok(Dialog {
            call_id: req.call_id()?.to_owned(),
            local_tag: from.tag().ok_or_else(|| missing("From tag"))?.to_owned(),
            remote_tag,
            local_uri: from.uri_text.to_owned(),
            remote_uri: to.uri_text.to_owned(),
            remote_target: contact_uri(resp).unwrap_or_else(|| to.uri_text.to_owned()),
            route_set,
            local_cseq: req.cseq()?.seq,
            remote_cseq: None,
            remote_epid: to.epid().map(str::to_owned),
        })
    }

    /// The dialog a UAS creates when it answers `req` with `local_tag`
    /// (§12.1.1): route set from Record-Route in order.
    pub fn from_uas(req: &Message, local_tag: &str) -> Result<Dialog, ParseError> {
        let from = req.from()?;
        let to = req.to()?;
        Ok(Dialog {
            call_id: req.call_id()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag().unwrap_or("").to_owned(),
            local_uri: to.uri_text.to_owned(),
            remote_uri: from.uri_text.to_owned(),
            remote_target: contact_uri(req).unwrap_or_else(|| from.uri_text.to_owned()),
            route_set: req
                .record_route()?
                .iter()
                .map(|r| format!("<{}>", r.uri_text))
                .collect(),
            local_cseq: 0,
            remote_cseq: Some(req.cseq()?.seq),
            remote_epid: from.epid().map(str::to_owned),
        })
    }

    /// True when `m` (a request from the peer) belongs to this dialog.
    pub fn matches_incoming(&self, m: &Message) -> bool {
        let (Ok(cid), Ok(from), Ok(to)) = (m.call_id(), m.from(), m.to()) else {
            return false;
        };
        cid == self.call_id
            && from.tag() == Some(self.remote_tag.as_str())
            && to.tag() == Some(self.local_tag.as_str())
    }

    /// Accepts the CSeq of an incoming in-dialog request; false for an old
    /// or repeated one (§12.2.2: answer 500).
    pub fn accept_remote_cseq(&mut self, m: &Message) -> bool {
        let Ok(c) = m.cseq() else { return false };
        if let Some(prev) = self.remote_cseq
            && c.seq <= prev
        {
            return false;
        }
        self.remote_cseq = Some(c.seq);
        true
    }

    /// Refreshes the remote target from a target-refresh request or
    /// response (§12.2).
    pub fn update_target(&mut self, m: &Message) {
        if let Some(c) = contact_uri(m) {
            self.remote_target = c;
        }
    }

    /// An in-dialog request (§12.2.1.1): Request-URI = remote target,
    /// Route = route set, From/To with tags, next CSeq. Via and Max-Forwards
    /// are added when it is sent.
    pub fn request(&mut self, method: Method, local_params: Option<&str>) -> Message {
        if method != Method::Ack && method != Method::Cancel {
            self.local_cseq = self.local_cseq.wrapping_add(1);
        }
        let mut m = Message::request(method.clone(), &self.remote_target);
        let mut from = format!("<{}>;tag={}", self.local_uri, self.local_tag);
        if let Some(p) = local_params {
            from.push(';');
            from.push_str(p);
        }
        m.push_header(HeaderName::From, from);
        let mut to = format!("<{}>;tag={}", self.remote_uri, self.remote_tag);
        if let Some(e) = &self.remote_epid {
            to.push_str(&format!(";epid={e}"));
        }
        m.push_header(HeaderName::To, to);
        m.push_header(HeaderName::CallId, self.call_id.clone());
        m.push_header(HeaderName::CSeq, format!("{} {}", self.local_cseq, method));
        for r in &self.route_set {
            m.push_header(HeaderName::Route, r.clone());
        }
        m
    }
}

/// The display-free URI of a name-addr header value.
pub fn uri_of(value: &str) -> Option<String> {
    NameAddr::parse(value, 0)
        .ok()
        .map(|n| n.uri_text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=a1;epid=e1\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\nContent-Length: 0\r\n\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=a1;epid=e1\r\nTo: <sip:bob@b.example>;tag=b1;epid=e2\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:bob@10.0.0.2>\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn both_sides_agree() {
        let req = Message::parse(INVITE).expect("invite");
        let ok = Message::parse(OK).expect("ok");
        let mut uac = Dialog::from_uac(&req, &ok).expect("uac");
        assert_eq!(uac.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(uac.remote_target, "sip:bob@10.0.0.2");
        assert_eq!(uac.remote_epid.as_deref(), Some("e2"));
        let bye = uac.request(Method::Bye, Some("epid=e1"));
        assert_eq!(bye.request_uri(), Some("sip:bob@10.0.0.2"));
        assert_eq!(bye.cseq().expect("cseq").seq, 8);
        assert_eq!(
            bye.header(HeaderName::To),
            Some("<sip:bob@b.example>;tag=b1;epid=e2")
        );
        assert_eq!(bye.headers_named(HeaderName::Route).count(), 2);
        let mut uas = Dialog::from_uas(&req, "b1").expect("uas");
        assert_eq!(uas.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert!(uas.matches_incoming(&Message::parse(&bye.to_bytes()).expect("bye")));
        assert!(uas.accept_remote_cseq(&bye));
        assert!(!uas.accept_remote_cseq(&bye), "a repeated CSeq is refused");
    }
}
