//! IM between two endpoints wired back to back on a simulated clock: OCS
//! sessions (INVITE with ms-text-format, MESSAGE in dialog, INFO typing,
//! BYE) and standard page mode, with every message ending delivered or
//! failed.

use std::time::{Duration, Instant, SystemTime};

use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use ocs_core::error::{Error, Provenance};
use ocs_core::im::outcome::FailureReason;
use ocs_core::messaging::{ImConfig, ImEvent, MessageId, Messaging};
use ocs_core::register::{LocalTransport, RegisterConfig};
use ocs_core::sip::Message;

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

struct Side {
    ep: Endpoint,
    im: Messaging,
    events: Vec<ImEvent>,
}

struct World {
    now: Instant,
    start: Instant,
    a: Side,
    b: Side,
    /// Drop everything on the wire (a dead peer).
    blackhole: bool,
}

fn side(
    user: &str,
    port: u16,
    dialect: Dialect,
    transport: Transport,
    seed: u64,
    now: Instant,
) -> Side {
    let reg = RegisterConfig::new(
        &format!("sip:{user}@contoso.com"),
        dialect,
        &format!("{seed:010x}"),
    );
    let mut ep = Endpoint::new(
        EndpointConfig::new(reg, None),
        seed,
        [seed as u8; 32],
        now,
        SystemTime::UNIX_EPOCH,
    );
    ep.connected(
        LocalTransport {
            transport,
            addr: format!("192.0.2.{seed}:{port}").parse().expect("addr"),
        },
        now,
    );
    ep.handle_methods(&Messaging::METHODS);
    Side {
        ep,
        im: Messaging::new(ImConfig::new(dialect)),
        events: Vec::new(),
    }
}

impl World {
    fn new(dialect: Dialect, transport: Transport) -> World {
        let now = t0();
        World {
            now,
            start: now,
            a: side("alice", 5061, dialect, transport, 1, now),
            b: side("bob", 5062, dialect, transport, 2, now),
            blackhole: false,
        }
    }

    fn drain_side(s: &mut Side, now: Instant) -> bool {
        let mut moved = false;
        while let Some(e) = s.ep.poll_event() {
            moved = true;
            s.im.handle_event(&mut s.ep, &e, now);
        }
        while let Some(e) = s.im.poll_event() {
            moved = true;
            s.events.push(e);
        }
        moved
    }

    fn flush(&mut self) {
        for _ in 0..200 {
            let mut moved =
                Self::drain_side(&mut self.a, self.now) | Self::drain_side(&mut self.b, self.now);
            while let Some(bytes) = self.a.ep.poll_transmit() {
                moved = true;
                if !self.blackhole {
                    self.b.ep.handle_bytes(&bytes, self.now);
                }
            }
            while let Some(bytes) = self.b.ep.poll_transmit() {
                moved = true;
                if !self.blackhole {
                    self.a.ep.handle_bytes(&bytes, self.now);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.flush();
        loop {
            let next = [
                self.a.ep.poll_timeout(),
                self.b.ep.poll_timeout(),
                self.a.im.poll_timeout(),
                self.b.im.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= until => {
                    self.now = at.max(self.now);
                    self.a.ep.handle_timeout(self.now);
                    self.b.ep.handle_timeout(self.now);
                    self.a.im.handle_timeout(&mut self.a.ep, self.now);
                    self.b.im.handle_timeout(&mut self.b.ep, self.now);
                    self.flush();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn send(&mut self, text: &str) -> MessageId {
        self.a
            .im
            .send(&mut self.a.ep, "sip:bob@contoso.com", text, self.now)
            .expect("send")
    }
}

fn received(s: &Side) -> Vec<String> {
    s.events
        .iter()
        .filter_map(|e| match e {
            ImEvent::Received { content, .. } => Some(content.plain_text.clone()),
            _ => None,
        })
        .collect()
}

fn outcomes(s: &Side) -> Vec<(MessageId, Option<FailureReason>)> {
    s.events
        .iter()
        .filter_map(|e| match e {
            ImEvent::Delivered { id } => Some((*id, None)),
            ImEvent::Failed { id, reason, .. } => Some((*id, Some(*reason))),
            _ => None,
        })
        .collect()
}

fn sent_methods(bytes: &[Vec<u8>]) -> Vec<String> {
    bytes
        .iter()
        .filter_map(|b| Message::parse(b).ok())
        .filter_map(|m| m.method().map(|m| m.as_str().to_owned()))
        .collect()
}

#[test]
fn ocs_session_first_message_in_invite_then_in_dialog() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    let first = w.send("hello");
    // The INVITE carries the first message in ms-text-format.
    let wire: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
    let invite = Message::parse(&wire[0]).expect("INVITE");
    assert_eq!(invite.method().map(|m| m.as_str()), Some("INVITE"));
    assert_eq!(
        invite.header("ms-text-format"),
        Some("text/plain; charset=UTF-8;ms-body=aGVsbG8=")
    );
    assert!(String::from_utf8_lossy(invite.body()).contains("m=message 5061 sip null"));
    for b in &wire {
        w.b.ep.handle_bytes(b, w.now);
    }
    w.flush();
    assert_eq!(received(&w.b), vec!["hello"]);
    assert_eq!(outcomes(&w.a), vec![(first, None)]);
    let second = w.send("second");
    w.flush();
    assert_eq!(received(&w.b), vec!["hello", "second"]);
    assert_eq!(outcomes(&w.a), vec![(first, None), (second, None)]);
    assert_eq!(w.a.im.session_count(), 1);
    // Typing as INFO in the dialog.
    w.a.im
        .send_typing(&mut w.a.ep, "sip:bob@contoso.com", true, w.now);
    w.flush();
    assert!(w.b.events.contains(&ImEvent::Typing {
        from: "sip:alice@contoso.com".into(),
        active: true
    }));
    // Bob ends the session; both sides hear of it.
    w.b.im
        .end_session(&mut w.b.ep, "sip:alice@contoso.com", w.now);
    w.flush();
    assert!(w.a.events.contains(&ImEvent::SessionEnded {
        uri: "sip:bob@contoso.com".into(),
        by_peer: true
    }));
    assert_eq!(w.a.im.session_count(), 0);
    assert_eq!(w.b.im.session_count(), 0);
}

#[test]
fn messages_queued_during_setup_are_flushed_in_order() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    let ids: Vec<MessageId> = ["one", "two", "three"].iter().map(|t| w.send(t)).collect();
    w.flush();
    assert_eq!(received(&w.b), vec!["one", "two", "three"]);
    assert_eq!(
        outcomes(&w.a),
        ids.iter().map(|i| (*i, None)).collect::<Vec<_>>()
    );
}

#[test]
fn disable_im_on_either_side() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    w.b.im.set_disable_im(Some(Provenance {
        source: "HKCU".into(),
        from: Some("policy.reg:3".into()),
    }));
    let id = w.send("are you there?");
    w.flush();
    assert_eq!(
        outcomes(&w.a),
        vec![(id, Some(FailureReason::BlockedByPolicy))]
    );
    assert!(w.a.events.contains(&ImEvent::ContactCannotReceiveIm {
        uri: "sip:bob@contoso.com".into()
    }));
    assert!(w.b.events.contains(&ImEvent::RefusedByPolicy {
        from: "sip:alice@contoso.com".into()
    }));
    assert!(received(&w.b).is_empty());
    // Locally disabled: refused before anything is sent.
    w.a.im.set_disable_im(Some(Provenance {
        source: "HKLM".into(),
        from: None,
    }));
    match w.a.im.send(&mut w.a.ep, "sip:bob@contoso.com", "x", w.now) {
        Err(Error::PolicyDenied { policy, provenance }) => {
            assert_eq!(policy, "DisableIM");
            assert_eq!(provenance.source, "HKLM");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connection_loss_fails_every_pending_message() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    let ids: Vec<MessageId> = ["a", "b"].iter().map(|t| w.send(t)).collect();
    // Nothing reaches Bob; Alice's connection drops.
    while w.a.ep.poll_transmit().is_some() {}
    w.a.ep.handle_connection_lost(w.now);
    w.a.im.handle_connection_lost();
    World::drain_side(&mut w.a, w.now);
    let got = outcomes(&w.a);
    assert_eq!(got.len(), 2);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(got[i], (*id, Some(FailureReason::ServiceUnavailable)));
    }
}

#[test]
fn an_unanswered_invite_times_out_with_every_queued_message() {
    let mut w = World::new(Dialect::Ocs, Transport::Udp);
    w.blackhole = true;
    let ids: Vec<MessageId> = ["a", "b"].iter().map(|t| w.send(t)).collect();
    w.run_for(Duration::from_secs(40));
    let got = outcomes(&w.a);
    assert_eq!(
        got,
        ids.iter()
            .map(|i| (*i, Some(FailureReason::TimedOut)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn idle_sessions_close_with_bye() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    // Bob would wait an hour; Alice closes after the default 10 minutes.
    let mut slow = ImConfig::new(Dialect::Ocs);
    slow.idle_timeout = Duration::from_secs(3600);
    w.b.im = Messaging::new(slow);
    w.send("hi");
    w.flush();
    assert_eq!(w.a.im.session_count(), 1);
    w.run_for(Duration::from_secs(601));
    assert_eq!(w.a.im.session_count(), 0);
    assert_eq!(w.b.im.session_count(), 0);
    assert!(
        w.b.events
            .iter()
            .any(|e| matches!(e, ImEvent::SessionEnded { by_peer: true, .. }))
    );
    let _ = w.start;
}

#[test]
fn standard_page_mode_and_is_composing() {
    let mut w = World::new(Dialect::Standard, Transport::Udp);
    let id = w.send("page mode");
    let wire: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
    assert_eq!(sent_methods(&wire), vec!["MESSAGE"]);
    for b in &wire {
        w.b.ep.handle_bytes(b, w.now);
    }
    w.flush();
    assert_eq!(received(&w.b), vec!["page mode"]);
    assert_eq!(outcomes(&w.a), vec![(id, None)]);
    w.a.im
        .send_typing(&mut w.a.ep, "sip:bob@contoso.com", true, w.now);
    w.flush();
    assert!(w.b.events.contains(&ImEvent::Typing {
        from: "sip:alice@contoso.com".into(),
        active: true
    }));
    assert_eq!(w.a.im.session_count(), 0, "page mode opens no sessions");
}

#[test]
fn unknown_content_types_get_415_with_accept() {
    let mut w = World::new(Dialect::Standard, Transport::Udp);
    let mut m =
        w.a.ep
            .new_request(ocs_core::sip::Method::Message, "sip:bob@contoso.com");
    m.set_body("application/x-unknown", b"??".to_vec());
    w.a.ep.send_request(m, w.now).expect("sent");
    let wire: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
    for b in &wire {
        w.b.ep.handle_bytes(b, w.now);
    }
    World::drain_side(&mut w.b, w.now);
    let resp: Vec<Message> = std::iter::from_fn(|| w.b.ep.poll_transmit())
        .filter_map(|b| Message::parse(&b).ok())
        .collect();
    assert_eq!(resp[0].status(), Some(415));
    assert!(
        resp[0]
            .header("Accept")
            .is_some_and(|a| a.contains("text/plain"))
    );
    let _ = EndpointEvent::NeedConnection;
}

#[test]
fn first_message_is_resent_when_the_callee_did_not_take_it_from_the_invite() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    let id = w.send("first");
    let invite: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
    for b in &invite {
        w.b.ep.handle_bytes(b, w.now);
    }
    World::drain_side(&mut w.b, w.now);
    // The callee's 200 OK, minus "Supported: ms-text-format": an older
    // client that ignored the header.
    let answers: Vec<Vec<u8>> = std::iter::from_fn(|| w.b.ep.poll_transmit()).collect();
    for b in answers {
        let text = String::from_utf8(b)
            .expect("utf8")
            .replace("Supported: ms-text-format\r\n", "");
        w.a.ep.handle_bytes(text.as_bytes(), w.now);
    }
    World::drain_side(&mut w.a, w.now);
    let next: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
    let methods = sent_methods(&next);
    assert_eq!(
        methods,
        vec!["ACK", "MESSAGE"],
        "the first message goes again as a MESSAGE"
    );
    for b in &next {
        w.b.ep.handle_bytes(b, w.now);
    }
    w.flush();
    assert_eq!(outcomes(&w.a), vec![(id, None)]);
    // Bob saw it twice (once from the INVITE, once as MESSAGE): that is the
    // price of an old peer, and better than losing it.
    assert_eq!(received(&w.b), vec!["first", "first"]);
}

#[test]
fn bad_invites_and_bodies_get_clear_answers() {
    let mut w = World::new(Dialect::Ocs, Transport::Tcp);
    let answer = |w: &mut World, m: Message| -> Message {
        w.a.ep.send_request(m, w.now).expect("sent");
        let wire: Vec<Vec<u8>> = std::iter::from_fn(|| w.a.ep.poll_transmit()).collect();
        for b in &wire {
            w.b.ep.handle_bytes(b, w.now);
        }
        World::drain_side(&mut w.b, w.now);
        std::iter::from_fn(|| w.b.ep.poll_transmit())
            .filter_map(|b| Message::parse(&b).ok())
            .find(|m| m.status().is_some_and(|c| c >= 200))
            .expect("a final answer")
    };
    // Malformed SDP.
    let mut m =
        w.a.ep
            .new_request(ocs_core::sip::Method::Invite, "sip:bob@contoso.com");
    m.set_body("application/sdp", b"this is not sdp".to_vec());
    assert_eq!(answer(&mut w, m).status(), Some(400));
    // An SDP without m=message: not an IM session.
    let mut m =
        w.a.ep
            .new_request(ocs_core::sip::Method::Invite, "sip:bob@contoso.com");
    m.set_body("application/sdp", b"v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec());
    let r = answer(&mut w, m);
    assert_eq!(r.status(), Some(488));
    assert!(
        r.header("ms-client-diagnostics")
            .is_some_and(|d| d.starts_with("52063"))
    );
    // ms-text-format with bad base64.
    let mut m =
        w.a.ep
            .new_request(ocs_core::sip::Method::Invite, "sip:bob@contoso.com");
    m.push_header(
        "ms-text-format",
        "text/plain; charset=UTF-8;ms-body=***not base64***",
    );
    m.set_body(
        "application/sdp",
        ocs_core::im::sdp::build_offer("192.0.2.1".parse().expect("ip"), 5061).into_bytes(),
    );
    assert_eq!(answer(&mut w, m).status(), Some(400));
    // A huge MESSAGE body.
    let mut m =
        w.a.ep
            .new_request(ocs_core::sip::Method::Message, "sip:bob@contoso.com");
    m.set_body("text/plain", vec![b'x'; 300 * 1024]);
    let code = answer(&mut w, m).status();
    assert!(matches!(code, Some(413 | 400)), "{code:?}");
    assert!(received(&w.b).is_empty(), "nothing bad reached the app");
}
