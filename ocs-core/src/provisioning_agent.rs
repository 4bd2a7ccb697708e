//! Fetching in-band provisioning after sign-in, on top of the
//! [`Endpoint`], sans-IO (PROTOCOL.md §b and §f.3).
//!
//! OCS dialect only: once registered, one SUBSCRIBE to our own URI with
//! `Event: vnd-microsoft-provisioning-v2`, `Expires: 0` and the
//! `provisioningGroupList` request body; Contact is the GRUU
//! ([`Endpoint::new_request`]). The server answers with the
//! `provisionGroupList` piggy-backed in the 200 OK
//! (`subscription-state: terminated`), so no dialog is kept and no NOTIFY
//! follows. A new fetch happens after the next fresh registration (after a
//! reconnect), not on registration refreshes.
//!
//! The request is sent only when the registrar's `Allow-Events` lists the
//! event (as SIPE does), or when it sent no `Allow-Events` at all.

use std::collections::VecDeque;
use std::time::Instant;

use crate::discovery::Dialect;
use crate::endpoint::{Endpoint, EndpointEvent, RequestId};
use crate::error::Error;
use crate::error::{Misbehavior, TransportFailure};
use crate::presence::publish::PROVISIONING_V2_BODY;
use crate::provisioning::{
    PROVISIONING_V2_CONTENT_TYPE, PROVISIONING_V2_EVENT, ProvisionGroupList, parse,
};
use crate::sip::Method;

/// What the provisioning fetch reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProvisioningEvent {
    /// The server's provisioning arrived and parsed.
    Received(Box<ProvisionGroupList>),
    /// The fetch failed: refused by the server (`Rejected`), timed out
    /// (`Transport`) or the document was malformed (`PeerMisbehaved`, with
    /// its line and column). The client works on without in-band values.
    Failed(Error),
}

/// The provisioning fetch. Feed it every endpoint event with
/// [`ProvisioningAgent::handle_event`]; it consumes its own.
#[derive(Debug)]
pub struct ProvisioningAgent {
    dialect: Dialect,
    aor: String,
    pending: Option<RequestId>,
    last: Option<ProvisionGroupList>,
    events: VecDeque<ProvisioningEvent>,
}

impl ProvisioningAgent {
    /// A fetcher for `aor` in `dialect` (it does nothing in the standard
    /// dialect).
    pub fn new(dialect: Dialect, aor: &str) -> ProvisioningAgent {
        ProvisioningAgent {
            dialect,
            aor: aor.to_owned(),
            pending: None,
            last: None,
            events: VecDeque::new(),
        }
    }

    // ----- getters -------------------------------------------------------

    /// The last provisioning received, if any.
    pub fn last(&self) -> Option<&ProvisionGroupList> {
        self.last.as_ref()
    }

    /// True while the SUBSCRIBE is outstanding.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    // ----- commands ------------------------------------------------------

    /// Signed in (not a refresh): sends the SUBSCRIBE in the OCS dialect.
    pub fn on_registered(&mut self, ep: &mut Endpoint, now: Instant) {
        if self.dialect != Dialect::Ocs || self.pending.is_some() {
            return;
        }
        let allowed = ep.registration().allow_events();
        if !allowed.is_empty()
            && !allowed
                .iter()
                .any(|e| e.trim().eq_ignore_ascii_case(PROVISIONING_V2_EVENT))
        {
            return;
        }
        let mut req = ep.new_request(Method::Subscribe, &self.aor);
        for (n, v) in [
            ("Event", PROVISIONING_V2_EVENT),
            ("Accept", PROVISIONING_V2_CONTENT_TYPE),
            ("Supported", "com.microsoft.autoextend"),
            ("Supported", "ms-benotify"),
            ("Proxy-Require", "ms-benotify"),
            ("Supported", "ms-piggyback-first-notify"),
            ("Expires", "0"),
        ] {
            req.push_header(n, v);
        }
        req.set_body(
            PROVISIONING_V2_CONTENT_TYPE,
            PROVISIONING_V2_BODY.as_bytes().to_vec(),
        );
        match ep.send_request(req, now) {
            Ok(id) => self.pending = Some(id),
            Err(e) => self.events.push_back(ProvisioningEvent::Failed(e)),
        }
    }

    // ----- inputs --------------------------------------------------------

    /// Offers an endpoint event; true when it was ours (then the caller
    /// must not act on it).
    pub fn handle_event(&mut self, e: &EndpointEvent) -> bool {
        match e {
            EndpointEvent::Response { id, response } if Some(*id) == self.pending => {
                let status = response.status().unwrap_or(0);
                if status < 200 {
                    return true;
                }
                self.pending = None;
                let ev = if status >= 300 {
                    ProvisioningEvent::Failed(Error::rejected(response))
                } else {
                    match parse(response.body()) {
                        Ok(p) => {
                            self.last = Some(p.clone());
                            ProvisioningEvent::Received(Box::new(p))
                        }
                        Err(err) => ProvisioningEvent::Failed(Error::misbehaved(
                            Misbehavior::BadDocument,
                            format!("provisionGroupList: {err}"),
                        )),
                    }
                };
                self.events.push_back(ev);
                true
            }
            EndpointEvent::RequestFailed { id, failure } if Some(*id) == self.pending => {
                self.pending = None;
                self.events
                    .push_back(ProvisioningEvent::Failed(Error::transport(
                        TransportFailure::of(failure),
                        format!("provisioning SUBSCRIBE failed: {failure:?}"),
                    )));
                true
            }
            _ => false,
        }
    }

    /// The connection dropped: an outstanding fetch is forgotten (the next
    /// registration sends a new one).
    pub fn handle_connection_lost(&mut self) {
        self.pending = None;
    }

    // ----- outputs -------------------------------------------------------

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ProvisioningEvent> {
        crate::queue::take_next(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;
    use crate::discovery::Transport;
    use crate::endpoint::EndpointConfig;
    use crate::register::{LocalTransport, RegisterConfig};
    use crate::sip::{HeaderName, Message};

    /// The simulated clock's origin: the one clock read (nothing here
    /// waits, so any instant does).
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn endpoint(dialect: Dialect, now: Instant) -> Endpoint {
        let reg = RegisterConfig::new("sip:alice@contoso.com", dialect, "0123456789");
        let mut ep = Endpoint::new(
            EndpointConfig::new(reg, None),
            7,
            [1; 32],
            now,
            SystemTime::UNIX_EPOCH,
        );
        ep.connected(
            LocalTransport {
                transport: Transport::Tcp,
                addr: "127.0.0.1:5060".parse().expect("addr"),
            },
            now,
        );
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        ep
    }

    fn sent_subscribe(ep: &mut Endpoint) -> Option<Message> {
        std::iter::from_fn(|| ep.poll_transmit())
            .filter_map(|b| Message::parse(&b).ok())
            .find(|m| m.method() == Some(&Method::Subscribe))
    }

    #[test]
    fn subscribes_once_and_reports_the_piggybacked_document() {
        let now = origin();
        let mut ep = endpoint(Dialect::Ocs, now);
        let mut a = ProvisioningAgent::new(Dialect::Ocs, "sip:alice@contoso.com");
        a.on_registered(&mut ep, now);
        assert!(a.is_pending());
        let req = sent_subscribe(&mut ep).expect("SUBSCRIBE sent");
        assert_eq!(req.header(HeaderName::Event), Some(PROVISIONING_V2_EVENT));
        assert_eq!(req.header(HeaderName::Expires), Some("0"));
        assert_eq!(
            req.header(HeaderName::Accept),
            Some(PROVISIONING_V2_CONTENT_TYPE)
        );
        assert_eq!(req.body(), PROVISIONING_V2_BODY.as_bytes());
        assert_eq!(req.request_uri(), Some("sip:alice@contoso.com"));
        // A second sign-in while the first is outstanding sends nothing.
        a.on_registered(&mut ep, now);
        assert!(sent_subscribe(&mut ep).is_none());

        let Some(id) = a.pending else {
            panic!("pending")
        };
        let body = "<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification\"><provisionGroup name=\"ServerConfiguration\"><absInternalServerUrl>https://p/abs</absInternalServerUrl></provisionGroup></provisionGroupList>";
        let ok = Message::parse(
            format!(
                "SIP/2.0 200 OK\r\nCSeq: 1 SUBSCRIBE\r\nsubscription-state: terminated;expires=0\r\nContent-Type: {PROVISIONING_V2_CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .expect("response");
        let other = EndpointEvent::Response {
            id: RequestId(id.0 + 100),
            response: ok.clone(),
        };
        assert!(!a.handle_event(&other));
        assert!(a.handle_event(&EndpointEvent::Response { id, response: ok }));
        match a.poll_event() {
            Some(ProvisioningEvent::Received(p)) => {
                assert_eq!(p.abs_url(false), Some("https://p/abs"))
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            a.last().and_then(|p| p.abs_url(false)),
            Some("https://p/abs")
        );
        assert!(!a.is_pending());
    }

    #[test]
    fn failures_and_the_standard_dialect() {
        let now = origin();
        let mut ep = endpoint(Dialect::Standard, now);
        let mut a = ProvisioningAgent::new(Dialect::Standard, "sip:alice@contoso.com");
        a.on_registered(&mut ep, now);
        assert!(!a.is_pending());
        assert!(sent_subscribe(&mut ep).is_none());

        let mut ep = endpoint(Dialect::Ocs, now);
        let mut a = ProvisioningAgent::new(Dialect::Ocs, "sip:alice@contoso.com");
        a.on_registered(&mut ep, now);
        let Some(id) = a.pending else {
            panic!("pending")
        };
        let bad = Message::parse(
            b"SIP/2.0 200 OK\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 9\r\n\r\n<a>&x;</a",
        )
        .expect("response");
        assert!(a.handle_event(&EndpointEvent::Response { id, response: bad }));
        assert!(matches!(
            a.poll_event(),
            Some(ProvisioningEvent::Failed(Error::PeerMisbehaved { .. }))
        ));

        a.on_registered(&mut ep, now);
        let Some(id) = a.pending else {
            panic!("pending")
        };
        let refused = Message::parse(
            b"SIP/2.0 403 Forbidden\r\nCSeq: 1 SUBSCRIBE\r\nms-diagnostics: 2000;reason=\"nope\"\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("response");
        assert!(a.handle_event(&EndpointEvent::Response {
            id,
            response: refused
        }));
        assert!(matches!(
            a.poll_event(),
            Some(ProvisioningEvent::Failed(Error::Rejected {
                status: 403,
                ..
            }))
        ));
        assert!(a.last().is_none());
    }
}
