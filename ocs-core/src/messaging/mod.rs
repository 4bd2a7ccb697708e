//! Instant messaging on top of the [`Endpoint`], sans-IO.
//!
//! OCS dialect: a session per contact, opened with an INVITE whose SDP
//! offers `m=message` and whose `ms-text-format` header carries the first
//! message; later messages are MESSAGEs inside the dialog, typing goes as
//! INFO with a KeyboardActivity body, either side ends with BYE. Standard
//! dialect: page-mode MESSAGE (RFC 3428) and is-composing (RFC 3994).
//!
//! Nothing the app sends disappears: every [`MessageId`] ends in exactly
//! one [`ImEvent::Delivered`] or [`ImEvent::Failed`] — including messages
//! queued while a session is set up, and messages in flight when the
//! connection drops.
//!
//! DisableIM (the seed's registry policy) is enforced here, on the client
//! only, as Communicator does: sending is refused with
//! [`Error::PolicyDenied`], incoming IM is declined with
//! [`crate::im::outcome::IM_DISABLED_STATUS`] and an `ms-client-diagnostics`
//! reason, and the app is told.

mod ending;
mod incoming;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::dialog::Dialog;
use crate::discovery::Dialect;
use crate::endpoint::{Endpoint, EndpointEvent, IncomingId, RequestId};
use crate::error::Misuse;
use crate::error::{Error, Provenance};
use crate::im::body::{ImContent, MESSAGE_ACCEPT};
use crate::im::outcome::{
    self, DeliveryFailure, FailureReason, IM_DISABLED_CLIENT_DIAGNOSTICS, IM_DISABLED_STATUS,
};
use crate::im::sdp::{self, Sdp};
use crate::im::textformat::MsTextFormat;
use crate::im::typing::{self, IsComposing, TypingState};
use crate::sip::{HeaderName, Message, Method, builder};
use crate::transaction::TxFailure;

/// Identifies one message the app sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// IM settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImConfig {
    /// OCS sessions or standard page mode.
    pub dialect: Dialect,
    /// The effective DisableIM policy and where it came from (`None`: IM
    /// allowed).
    pub disable_im: Option<Provenance>,
    /// An idle session is closed with BYE after this long.
    pub idle_timeout: Duration,
}

impl ImConfig {
    /// Defaults: IM allowed, sessions close after 10 idle minutes.
    pub fn new(dialect: Dialect) -> ImConfig {
        ImConfig {
            dialect,
            disable_im: None,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// What the IM layer reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ImEvent {
    /// The recipient took the message (2xx).
    Delivered {
        /// The message.
        id: MessageId,
    },
    /// The message was not delivered.
    Failed {
        /// The message.
        id: MessageId,
        /// Why, for the app to branch on.
        reason: FailureReason,
        /// Status code and diagnostics, or the local cause.
        detail: String,
    },
    /// A message arrived.
    Received {
        /// The sender's URI.
        from: String,
        /// The content (original and plain text).
        content: ImContent,
    },
    /// The other side started or stopped typing.
    Typing {
        /// Who.
        from: String,
        /// True while typing.
        active: bool,
    },
    /// An incoming IM was refused because DisableIM is set here.
    RefusedByPolicy {
        /// Who tried.
        from: String,
    },
    /// The contact's client refused our IM because IM is disabled there
    /// (Communicator shows a blocked marker next to the contact).
    ContactCannotReceiveIm {
        /// The contact.
        uri: String,
    },
    /// A session ended.
    SessionEnded {
        /// The contact.
        uri: String,
        /// True when the other side (or a failure) ended it.
        by_peer: bool,
    },
}

#[derive(Debug)]
enum SessionState {
    /// INVITE sent; messages wait.
    Inviting {
        first: MessageId,
        first_text: String,
        queued: VecDeque<(MessageId, String)>,
    },
    /// Established.
    Up,
}

#[derive(Debug)]
struct Session {
    dialog: Option<Dialog>,
    state: SessionState,
    last_activity: Instant,
}

#[derive(Debug)]
enum Pending {
    Invite { peer: String, invite: Box<Message> },
    Message { id: MessageId, peer: String },
    Other,
}

/// The IM layer. Feed it every endpoint event with
/// [`Messaging::handle_event`]; it consumes the ones that are its own.
#[derive(Debug)]
pub struct Messaging {
    cfg: ImConfig,
    sessions: HashMap<String, Session>,
    pending: HashMap<RequestId, Pending>,
    next_id: u64,
    events: VecDeque<ImEvent>,
    /// Signing out: no new sessions; an invitation answered now is
    /// acknowledged and ended at once.
    ending: bool,
}

fn uri_key(uri: &str) -> String {
    uri.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

fn local_ip(ep: &Endpoint) -> IpAddr {
    ep.local()
        .map(|l| l.addr.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

impl Messaging {
    /// The methods the IM layer answers; pass them to
    /// [`Endpoint::handle_methods`].
    pub const METHODS: [Method; 4] = [Method::Invite, Method::Message, Method::Info, Method::Bye];

    /// A new IM layer.
    pub fn new(cfg: ImConfig) -> Messaging {
        Messaging {
            cfg,
            sessions: HashMap::new(),
            pending: HashMap::new(),
            next_id: 0,
            events: VecDeque::new(),
            ending: false,
        }
    }

    /// Number of open or opening sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Sets the effective DisableIM policy (`None` allows IM).
    pub fn set_disable_im(&mut self, provenance: Option<Provenance>) {
        self.cfg.disable_im = provenance;
    }

    /// The DisableIM policy in effect (`None`: IM allowed).
    pub fn disable_im(&self) -> Option<&Provenance> {
        self.cfg.disable_im.as_ref()
    }

    fn alloc(&mut self) -> MessageId {
        self.next_id += 1;
        MessageId(self.next_id)
    }

    fn fail(&mut self, id: MessageId, reason: FailureReason, detail: impl Into<String>) {
        self.events.push_back(ImEvent::Failed {
            id,
            reason,
            detail: detail.into(),
        });
    }

    fn policy_denied(&self) -> Option<Error> {
        self.cfg.disable_im.as_ref().map(|p| Error::PolicyDenied {
            policy: "DisableIM".into(),
            provenance: p.clone(),
        })
    }

    /// Sends `text` to `to`. The returned id ends in exactly one
    /// Delivered or Failed event.
    pub fn send(
        &mut self,
        ep: &mut Endpoint,
        to: &str,
        text: &str,
        now: Instant,
    ) -> Result<MessageId, Error> {
        if let Some(e) = self.policy_denied() {
            return Err(e);
        }
        if self.ending {
            return Err(Error::misuse(
                Misuse::WrongState,
                "signing out: no new messages",
            ));
        }
        let id = self.alloc();
        let key = uri_key(to);
        if self.cfg.dialect != Dialect::Ocs {
            let mut m = ep.new_request(Method::Message, &key);
            m.set_body("text/plain;charset=UTF-8", text.as_bytes().to_vec());
            self.submit(ep, m, Pending::Message { id, peer: key }, now);
            return Ok(id);
        }
        match self.sessions.get_mut(&key) {
            Some(s) => {
                s.last_activity = now;
                match &mut s.state {
                    SessionState::Inviting { queued, .. } => {
                        queued.push_back((id, text.to_owned()));
                    }
                    SessionState::Up => self.send_in_dialog(ep, &key, id, text, now),
                }
            }
            None => self.invite(ep, &key, id, text, now),
        }
        Ok(id)
    }

    /// Tells `to` that we are (or stopped) typing. Best effort: no outcome.
    pub fn send_typing(&mut self, ep: &mut Endpoint, to: &str, active: bool, now: Instant) {
        if self.cfg.disable_im.is_some() {
            return;
        }
        let key = uri_key(to);
        let state = if active {
            TypingState::Active
        } else {
            TypingState::Idle
        };
        if self.cfg.dialect != Dialect::Ocs {
            let body = if active {
                IsComposing::active(60)
            } else {
                IsComposing::idle()
            };
            let mut m = ep.new_request(Method::Message, &key);
            m.set_body(
                typing::IS_COMPOSING_CONTENT_TYPE,
                body.to_xml().into_bytes(),
            );
            self.submit(ep, m, Pending::Other, now);
            return;
        }
        let epid = ep.epid_param();
        let Some(Session {
            dialog: Some(d),
            state: SessionState::Up,
            ..
        }) = self.sessions.get_mut(&key)
        else {
            return;
        };
        let mut m = d.request(Method::Info, epid.as_deref());
        m.set_body(
            typing::KEYBOARD_ACTIVITY_CONTENT_TYPE,
            typing::keyboard_activity(state).into_bytes(),
        );
        self.submit(ep, m, Pending::Other, now);
    }

    /// Ends the session with `to` (BYE).
    pub fn end_session(&mut self, ep: &mut Endpoint, to: &str, now: Instant) {
        let key = uri_key(to);
        if let Some(s) = self.sessions.remove(&key) {
            self.close(ep, &key, s, false, now);
        }
    }

    fn close(&mut self, ep: &mut Endpoint, key: &str, s: Session, by_peer: bool, now: Instant) {
        if let SessionState::Inviting { first, queued, .. } = s.state {
            self.fail(
                first,
                FailureReason::DialogGone,
                "session closed before it was set up",
            );
            for (id, _) in queued {
                self.fail(
                    id,
                    FailureReason::DialogGone,
                    "session closed before it was set up",
                );
            }
        }
        if !by_peer && let Some(mut d) = s.dialog {
            let bye = d.request(Method::Bye, ep.epid_param().as_deref());
            self.submit(ep, bye, Pending::Other, now);
        }
        self.events.push_back(ImEvent::SessionEnded {
            uri: key.to_owned(),
            by_peer,
        });
    }

    fn submit(&mut self, ep: &mut Endpoint, m: Message, p: Pending, now: Instant) {
        match ep.send_request(m, now) {
            Ok(rid) => {
                self.pending.insert(rid, p);
            }
            Err(e) => match p {
                Pending::Message { id, .. } => {
                    self.fail(id, FailureReason::ServiceUnavailable, e.to_string())
                }
                Pending::Invite { peer, .. } => {
                    if let Some(s) = self.sessions.remove(&peer) {
                        self.close(ep, &peer, s, true, now);
                    }
                }
                Pending::Other => {}
            },
        }
    }

    fn invite(&mut self, ep: &mut Endpoint, key: &str, id: MessageId, text: &str, now: Instant) {
        let mut inv = ep.new_request(Method::Invite, key);
        inv.push_header(
            "Ms-Text-Format",
            MsTextFormat::new("text/plain", text).encode(),
        );
        inv.push_header(HeaderName::Supported, "ms-sender");
        let port = ep.local().map(|l| l.addr.port()).unwrap_or(5060);
        inv.set_body(
            "application/sdp",
            sdp::build_offer(local_ip(ep), port).into_bytes(),
        );
        self.sessions.insert(
            key.to_owned(),
            Session {
                dialog: None,
                state: SessionState::Inviting {
                    first: id,
                    first_text: text.to_owned(),
                    queued: VecDeque::new(),
                },
                last_activity: now,
            },
        );
        let copy = Box::new(inv.clone());
        self.submit(
            ep,
            inv,
            Pending::Invite {
                peer: key.to_owned(),
                invite: copy,
            },
            now,
        );
    }

    fn send_in_dialog(
        &mut self,
        ep: &mut Endpoint,
        key: &str,
        id: MessageId,
        text: &str,
        now: Instant,
    ) {
        let epid = ep.epid_param();
        let Some(Session {
            dialog: Some(d), ..
        }) = self.sessions.get_mut(key)
        else {
            self.fail(id, FailureReason::DialogGone, "no session");
            return;
        };
        let mut m = d.request(Method::Message, epid.as_deref());
        m.set_body("text/plain;charset=UTF-8", text.as_bytes().to_vec());
        self.submit(
            ep,
            m,
            Pending::Message {
                id,
                peer: key.to_owned(),
            },
            now,
        );
    }

    fn report_failure(&mut self, id: MessageId, peer: &str, f: &DeliveryFailure) {
        if f.recipient_im_disabled {
            self.events.push_back(ImEvent::ContactCannotReceiveIm {
                uri: peer.to_owned(),
            });
        }
        let detail = match &f.diagnostics {
            Some(d) => format!("{} ({d})", f.status),
            None => f.status.to_string(),
        };
        self.fail(id, f.reason, detail);
    }

    /// Feeds an endpoint event; returns true when it was the IM layer's.
    pub fn handle_event(&mut self, ep: &mut Endpoint, e: &EndpointEvent, now: Instant) -> bool {
        match e {
            EndpointEvent::Response { id, response } => {
                if response.status().unwrap_or(0) < 200 {
                    return self.pending.contains_key(id);
                }
                let Some(p) = self.pending.remove(id) else {
                    return false;
                };
                self.on_final(ep, p, response, now);
                true
            }
            EndpointEvent::RequestFailed { id, failure } => {
                let Some(p) = self.pending.remove(id) else {
                    return false;
                };
                let (reason, detail) = match failure {
                    TxFailure::TransportError => {
                        (FailureReason::ServiceUnavailable, "transport error")
                    }
                    _ => (FailureReason::TimedOut, "no response in time"),
                };
                match p {
                    Pending::Message { id, .. } => self.fail(id, reason, detail),
                    Pending::Invite { peer, .. } => {
                        if let Some(s) = self.sessions.remove(&peer)
                            && let SessionState::Inviting { first, queued, .. } = s.state
                        {
                            self.fail(first, reason, detail);
                            for (q, _) in queued {
                                self.fail(q, reason, detail);
                            }
                            self.events.push_back(ImEvent::SessionEnded {
                                uri: peer,
                                by_peer: true,
                            });
                        }
                    }
                    Pending::Other => {}
                }
                true
            }
            EndpointEvent::IncomingRequest { id, request } => {
                let Some(m) = request.method() else {
                    return false;
                };
                if !Self::METHODS.contains(m) {
                    return false;
                }
                self.on_request(ep, *id, request, now);
                true
            }
            EndpointEvent::IncomingAck(ack) => {
                let Ok(cid) = ack.call_id() else { return false };
                self.sessions
                    .values()
                    .any(|s| s.dialog.as_ref().is_some_and(|d| d.call_id == cid))
            }
            _ => false,
        }
    }

    fn on_final(&mut self, ep: &mut Endpoint, p: Pending, resp: &Message, now: Instant) {
        match p {
            Pending::Other => {}
            Pending::Message { id, peer } => match outcome::classify(resp) {
                None => self.events.push_back(ImEvent::Delivered { id }),
                Some(f) => {
                    self.report_failure(id, &peer, &f);
                    if outcome::ends_session(f.status)
                        && let Some(s) = self.sessions.remove(&peer)
                    {
                        self.close(ep, &peer, s, true, now);
                    }
                }
            },
            Pending::Invite { peer, invite } => {
                let Some(s) = self.sessions.remove(&peer) else {
                    return;
                };
                let SessionState::Inviting {
                    first,
                    first_text,
                    queued,
                } = s.state
                else {
                    // Our INVITE lost a glare race to the peer's session:
                    // keep that one; acknowledge and end ours if it was taken.
                    self.sessions.insert(peer, s);
                    if outcome::classify(resp).is_none()
                        && let Ok(mut d) = Dialog::from_uac(&invite, resp)
                    {
                        let epid = ep.epid_param();
                        let _ = ep.send_ack(d.request(Method::Ack, epid.as_deref()), now);
                        let bye = d.request(Method::Bye, epid.as_deref());
                        self.submit(ep, bye, Pending::Other, now);
                    }
                    return;
                };
                if let Some(f) = outcome::classify(resp) {
                    self.report_failure(first, &peer, &f);
                    for (q, _) in queued {
                        self.report_failure(q, &peer, &f);
                    }
                    self.events.push_back(ImEvent::SessionEnded {
                        uri: peer,
                        by_peer: true,
                    });
                    return;
                }
                let dialog = match Dialog::from_uac(&invite, resp) {
                    Ok(d) => d,
                    Err(e) => {
                        self.fail(first, FailureReason::Other, format!("unusable 2xx: {e}"));
                        for (q, _) in queued {
                            self.fail(q, FailureReason::Other, "session could not be set up");
                        }
                        return;
                    }
                };
                let mut d = dialog;
                let ack = d.request(Method::Ack, ep.epid_param().as_deref());
                let _ = ep.send_ack(ack, now);
                if self.ending {
                    // Answered while we sign out: the session ends at once.
                    let consumed = resp
                        .supported()
                        .unwrap_or_default()
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case("ms-text-format"));
                    if consumed {
                        self.events.push_back(ImEvent::Delivered { id: first });
                    } else {
                        self.fail(
                            first,
                            FailureReason::SignedOut,
                            "signed out before it could be sent in the session",
                        );
                    }
                    for (q, _) in queued {
                        self.fail(
                            q,
                            FailureReason::SignedOut,
                            "signed out before the session was set up",
                        );
                    }
                    let bye = d.request(Method::Bye, ep.epid_param().as_deref());
                    self.submit(ep, bye, Pending::Other, now);
                    self.events.push_back(ImEvent::SessionEnded {
                        uri: peer,
                        by_peer: false,
                    });
                    return;
                }
                // The callee consumed the INVITE's message only when it says
                // so; otherwise resend it as a MESSAGE (PROTOCOL.md e.1).
                let consumed = resp
                    .supported()
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("ms-text-format"));
                self.sessions.insert(
                    peer.clone(),
                    Session {
                        dialog: Some(d),
                        state: SessionState::Up,
                        last_activity: now,
                    },
                );
                if consumed {
                    self.events.push_back(ImEvent::Delivered { id: first });
                } else {
                    self.send_in_dialog(ep, &peer, first, &first_text, now);
                }
                for (q, text) in queued {
                    self.send_in_dialog(ep, &peer, q, &text, now);
                }
            }
        }
    }

    /// Closes sessions idle longer than the configured timeout.
    pub fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        let idle: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                matches!(s.state, SessionState::Up)
                    && now.saturating_duration_since(s.last_activity) >= self.cfg.idle_timeout
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            if let Some(s) = self.sessions.remove(&k) {
                self.close(ep, &k, s, false, now);
            }
        }
    }

    /// When an idle session must be closed next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter(|s| matches!(s.state, SessionState::Up))
            .map(|s| s.last_activity + self.cfg.idle_timeout)
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ImEvent> {
        let e = crate::queue::take_next(&mut self.events);
        if e.is_none() {
            crate::queue::release_if_empty(&mut self.pending);
        }
        e
    }
}
