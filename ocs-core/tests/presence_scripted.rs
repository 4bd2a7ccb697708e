//! Presence against a server the test plays with raw SIP bytes on a
//! simulated clock: OCS subscriptions the server moves or ends (MS-PRES
//! rlmi `state="resubscribe"` / `"terminated"`; the active notification is
//! the captured T16 vector), and idle times in the standard dialect.

use std::time::{Duration, Instant, SystemTime};

use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig};
use ocs_core::presence::model::State;
use ocs_core::presence::pidf::parse_pidf;
use ocs_core::presence_agent::{PresenceAgent, PresenceConfig, PresenceEvent};
use ocs_core::register::{LocalTransport, RegisterConfig};
use ocs_core::sip::{HeaderName, Message, builder};

const BOB: &str = "sip:bob@contoso.com";
const ACTIVE_BODY: &str = include_str!("data/presence/t16d_notify_body.txt");
const ACTIVE_BOUNDARY: &str = "50UBfW7LSCVLtggUPe5z";

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

struct Alice {
    ep: Endpoint,
    pa: PresenceAgent,
    now: Instant,
    events: Vec<PresenceEvent>,
    notify_cseq: u32,
}

impl Alice {
    fn new() -> Alice {
        Alice::with(Dialect::Ocs)
    }

    fn with(dialect: Dialect) -> Alice {
        let now = t0();
        let reg = RegisterConfig::new("sip:alice@contoso.com", dialect, "a1a1a1a1a1");
        let mut ep = Endpoint::new(
            EndpointConfig::new(reg, None),
            7,
            [7; 32],
            now,
            SystemTime::UNIX_EPOCH,
        );
        ep.connected(
            LocalTransport {
                transport: Transport::Tcp,
                addr: "192.0.2.1:5061".parse().expect("addr"),
            },
            now,
        );
        ep.handle_methods(&PresenceAgent::METHODS);
        // Signed in (watches wait for that): the REGISTER answered at once.
        ep.register(now).expect("register");
        let reg = Message::parse(&ep.poll_transmit().expect("REGISTER")).expect("parse");
        let mut ok = builder::response(&reg, 200, None, Some("reg")).expect("200");
        ok.push_header(HeaderName::Expires, "3600");
        ok.push_header(
            HeaderName::Contact,
            reg.header(HeaderName::Contact).expect("contact"),
        );
        ep.handle_bytes(&ok.to_bytes(), now);
        while ep.poll_event().is_some() {}
        assert!(ep.registration().is_registered());
        let pa = PresenceAgent::new(PresenceConfig::new(dialect, "sip:alice@contoso.com"));
        Alice {
            ep,
            pa,
            now,
            events: Vec::new(),
            notify_cseq: 0,
        }
    }

    /// Runs the agent until quiet and returns what it put on the wire.
    fn sent(&mut self) -> Vec<Message> {
        while let Some(e) = self.ep.poll_event() {
            self.pa.handle_event(&mut self.ep, &e, self.now);
        }
        while let Some(e) = self.pa.poll_event() {
            self.events.push(e);
        }
        let mut out = Vec::new();
        while let Some(b) = self.ep.poll_transmit() {
            out.push(Message::parse(&b).expect("we send parseable SIP"));
        }
        out
    }

    fn feed(&mut self, m: &Message) {
        self.ep.handle_bytes(&m.to_bytes(), self.now);
    }

    /// Signs in as far as presence is concerned (OCS): roaming-self is
    /// subscribed and answered, so the publication versions are known and
    /// publications go out; the sign-in publications (device, machine
    /// state) are dropped.
    fn versions_known(&mut self) {
        self.pa.on_registered(&mut self.ep, self.now);
        let sent = self.sent();
        let rs = sent
            .iter()
            .find(|m| {
                m.event()
                    .ok()
                    .flatten()
                    .is_some_and(|e| e.value == "vnd-microsoft-roaming-self")
            })
            .expect("roaming-self")
            .clone();
        self.accept(&rs, "rs");
        let _ = self.sent();
    }

    /// Answers a SUBSCRIBE with 200 OK and returns it.
    fn accept(&mut self, sub: &Message, tag: &str) -> Message {
        let mut ok = builder::response(sub, 200, None, Some(tag)).expect("200");
        ok.push_header(HeaderName::Expires, "3600");
        ok.push_header(
            HeaderName::Contact,
            "<sip:pool1.contoso.com:5061;transport=tls>",
        );
        self.feed(&ok);
        ok
    }

    /// Sends a NOTIFY in the dialog of `sub`/`ok`.
    fn notify(&mut self, sub: &Message, ok: &Message, ct: &str, body: &str, state: &str) {
        self.notify_cseq += 1;
        let mut n = Message::request(
            ocs_core::sip::Method::Notify,
            "sip:alice@192.0.2.1:5061;transport=tcp",
        );
        n.push_header(
            HeaderName::Via,
            format!(
                "SIP/2.0/TCP 192.0.2.9:5061;branch=z9hG4bKsrv{}",
                self.notify_cseq
            ),
        );
        n.push_header(HeaderName::From, ok.header(HeaderName::To).expect("to"));
        n.push_header(HeaderName::To, sub.header(HeaderName::From).expect("from"));
        n.push_header(HeaderName::CallId, sub.call_id().expect("call-id"));
        n.push_header(HeaderName::CSeq, format!("{} NOTIFY", self.notify_cseq));
        n.push_header(HeaderName::MaxForwards, "70");
        n.push_header(HeaderName::Event, "presence");
        n.push_header(HeaderName::SubscriptionState, state);
        n.set_body(ct, body.as_bytes().to_vec());
        self.feed(&n);
    }
}

fn rlmi_only(resources: &str) -> (String, String) {
    let b = "rsbnd0123456789";
    (
        format!(
            "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary={b}"
        ),
        format!(
            "--{b}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: resourceList\r\nContent-Type: application/rlmi+xml\r\n\r\n<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:alice@contoso.com\" version=\"2\" fullState=\"false\">{resources}</list>\r\n--{b}--\r\n"
        ),
    )
}

fn subscribes(msgs: &[Message]) -> Vec<&Message> {
    msgs.iter()
        .filter(|m| m.method() == Some(&ocs_core::sip::Method::Subscribe))
        .collect()
}

fn watching_bob() -> (Alice, Message, Message) {
    let mut a = Alice::new();
    a.pa.watch(&mut a.ep, BOB, a.now).expect("watch");
    let sent = a.sent();
    let subs = subscribes(&sent);
    assert_eq!(subs.len(), 1);
    let sub = subs[0].clone();
    assert_eq!(sub.request_uri(), Some("sip:alice@contoso.com"));
    let ok = a.accept(&sub, "srv1");
    a.sent();
    // The command's outcome: the watch is set up.
    assert!(
        matches!(a.events.as_slice(), [PresenceEvent::Watching { id, uri }]
            if *id == ocs_core::WatchId(1) && uri == BOB),
        "{:?}",
        a.events
    );
    a.events.clear();
    (a, sub, ok)
}

#[test]
fn resubscribe_with_a_pool_goes_to_the_pool_and_the_watch_carries_on() {
    let (mut a, sub, ok) = watching_bob();
    let (ct, body) = rlmi_only(
        r#"<resource uri="sip:bob@contoso.com"><instance id="1" state="resubscribe" poolFqdn="pool2.contoso.com"/></resource>"#,
    );
    a.notify(&sub, &ok, &ct, &body, "active;expires=3600");
    let sent = a.sent();
    // The NOTIFY is answered, and a new batch SUBSCRIBE goes to the pool.
    assert!(
        sent.iter().any(|m| m.status() == Some(200)),
        "NOTIFY answered: {sent:?}"
    );
    let subs = subscribes(&sent);
    assert_eq!(subs.len(), 1, "{sent:?}");
    let again = subs[0].clone();
    assert_eq!(again.request_uri(), Some("sip:pool2.contoso.com"));
    assert_eq!(
        again.header(HeaderName::To),
        Some("<sip:pool2.contoso.com>")
    );
    assert_ne!(again.call_id().ok(), sub.call_id().ok(), "a new dialog");
    let text = std::str::from_utf8(again.body()).expect("utf-8");
    assert!(text.contains(r#"uri="sip:bob@contoso.com""#), "{text}");
    assert!(a.events.is_empty(), "no event yet: {:?}", a.events);

    // The pool answers and notifies; bob's presence arrives.
    let ok2 = a.accept(&again, "srv2");
    a.notify(
        &again,
        &ok2,
        &format!(
            "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary={ACTIVE_BOUNDARY}"
        ),
        ACTIVE_BODY,
        "active;expires=3600",
    );
    a.sent();
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, PresenceEvent::Changed { uri, .. } if uri == BOB)),
        "{:?}",
        a.events
    );
    assert_eq!(a.pa.watched().collect::<Vec<_>>(), vec![BOB]);
}

#[test]
fn resubscribe_without_a_pool_goes_to_the_contact_even_if_the_old_dialog_ends() {
    let (mut a, sub, ok) = watching_bob();
    let (ct, body) = rlmi_only(
        r#"<resource uri="sip:bob@contoso.com"><instance id="1" state="resubscribe"/></resource>"#,
    );
    // The server ends the old dialog in the same NOTIFY.
    a.notify(&sub, &ok, &ct, &body, "terminated;reason=deactivated");
    let sent = a.sent();
    let subs = subscribes(&sent);
    assert_eq!(subs.len(), 1, "{sent:?}");
    assert_eq!(subs[0].request_uri(), Some(BOB));
    assert_eq!(
        subs[0].header(HeaderName::To),
        Some("<sip:bob@contoso.com>")
    );
    assert!(a.events.is_empty(), "the watch lives on: {:?}", a.events);
    assert_eq!(a.pa.watched().count(), 1);
}

#[test]
fn a_terminated_resource_ends_the_watch_with_the_reason() {
    let (mut a, sub, ok) = watching_bob();
    let (ct, body) = rlmi_only(
        r#"<resource uri="sip:bob@contoso.com"><instance id="1" state="terminated" reason="noresource"/></resource>"#,
    );
    a.notify(&sub, &ok, &ct, &body, "active;expires=3600");
    a.sent();
    let ended: Vec<&str> = a
        .events
        .iter()
        .filter_map(|e| match e {
            PresenceEvent::WatchEnded { uri, reason } if uri == BOB => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1, "{:?}", a.events);
    assert!(ended[0].contains("noresource"), "{}", ended[0]);
    assert_eq!(a.pa.watched().count(), 0);
}

#[test]
fn a_server_that_keeps_moving_the_contact_ends_the_watch_instead_of_looping() {
    let (mut a, mut sub, mut ok) = watching_bob();
    let (ct, body) = rlmi_only(
        r#"<resource uri="sip:bob@contoso.com"><instance id="1" state="resubscribe" poolFqdn="pool2.contoso.com"/></resource>"#,
    );
    let mut resubscribes = 0;
    for round in 0..10 {
        a.notify(&sub, &ok, &ct, &body, "active;expires=3600");
        let sent = a.sent();
        match subscribes(&sent).first() {
            Some(s) => {
                resubscribes += 1;
                sub = (*s).clone();
                ok = a.accept(&sub, &format!("srv{round}"));
                a.sent();
            }
            None => break,
        }
    }
    assert_eq!(resubscribes, 3);
    assert!(
        a.events.iter().any(
            |e| matches!(e, PresenceEvent::WatchEnded { uri, reason } if uri == BOB && reason.contains("resubscribe"))
        ),
        "{:?}",
        a.events
    );
    assert_eq!(a.pa.watched().count(), 0);
}

fn find(msgs: &[Message], method: ocs_core::sip::Method) -> Message {
    msgs.iter()
        .find(|m| m.method() == Some(&method))
        .unwrap_or_else(|| panic!("no {method} in {msgs:?}"))
        .clone()
}

impl Alice {
    /// Answers `req` with 200 OK, carrying `etag` when given.
    fn ok(&mut self, req: &Message, etag: Option<&str>) {
        let mut ok = builder::response(req, 200, None, Some("s1")).expect("200");
        if let Some(t) = etag {
            ok.push_header("SIP-ETag", t);
            ok.push_header(HeaderName::Expires, "3600");
        }
        self.feed(&ok);
        self.sent();
    }

    /// A standard-dialect Alice whose online PUBLISH was accepted as `e1`.
    fn published_online() -> (Alice, Vec<Message>) {
        let mut a = Alice::with(Dialect::Standard);
        a.pa.set_status(&mut a.ep, State::Online, None, a.now)
            .expect("publish");
        let first = a.sent();
        a.ok(&find(&first, ocs_core::sip::Method::Publish), Some("e1"));
        (a, first)
    }
}

fn publishes(msgs: &[Message]) -> Vec<State> {
    msgs.iter()
        .filter(|m| m.method() == Some(&ocs_core::sip::Method::Publish))
        .map(|m| parse_pidf(m.body()).expect("our PIDF parses").state())
        .collect()
}

#[test]
fn standard_dialect_shows_an_idle_online_user_as_away_but_leaves_busy_alone() {
    let (mut a, first) = Alice::published_online();
    assert_eq!(publishes(&first), vec![State::Online]);

    // Under 5 minutes: nothing changes, nothing is sent.
    a.pa.set_idle(&mut a.ep, Duration::from_secs(60), a.now);
    assert!(publishes(&a.sent()).is_empty());
    // Inactive prints the same PIDF as online: nothing is sent either.
    a.pa.set_idle(&mut a.ep, Duration::from_secs(6 * 60), a.now);
    assert!(publishes(&a.sent()).is_empty());
    // 25 minutes: away, as a modify of the same publication.
    a.pa.set_idle(&mut a.ep, Duration::from_secs(25 * 60), a.now);
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Away]);
    let modify = sent
        .iter()
        .find(|m| m.method() == Some(&ocs_core::sip::Method::Publish))
        .expect("publish");
    assert_eq!(modify.header(HeaderName::SipIfMatch), Some("e1"));
    let modify = modify.clone();
    // Input again: online. One publication on the wire at a time (a second
    // would carry the entity tag the first one replaces): it waits for the
    // answer, then goes out with the new tag.
    a.pa.set_idle(&mut a.ep, Duration::ZERO, a.now);
    assert!(publishes(&a.sent()).is_empty());
    let mut ok = builder::response(&modify, 200, None, Some("s1")).expect("200");
    ok.push_header("SIP-ETag", "e2");
    ok.push_header(HeaderName::Expires, "3600");
    a.feed(&ok);
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Online]);
    let online = find(&sent, ocs_core::sip::Method::Publish);
    assert_eq!(online.header(HeaderName::SipIfMatch), Some("e2"));
    a.ok(&online, Some("e3"));

    // A manual busy is not overridden by idleness.
    a.pa.set_status(&mut a.ep, State::Busy, None, a.now)
        .expect("publish");
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Busy]);
    a.ok(&find(&sent, ocs_core::sip::Method::Publish), Some("e4"));
    a.pa.set_idle(&mut a.ep, Duration::from_secs(25 * 60), a.now);
    assert!(publishes(&a.sent()).is_empty());
}

fn services(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.method() == Some(&ocs_core::sip::Method::Service))
        .map(|m| String::from_utf8(m.body().to_vec()).expect("utf-8"))
        .collect()
}

#[test]
fn ocs_calls_publish_a_phone_state_and_delete_it_afterwards() {
    let mut a = Alice::new();
    let e = ocs_core::presence::publish::epid_instance("a1a1a1a1a1").expect("hex epid");
    let instance = format!(
        "instance=\"{}\"",
        ocs_core::presence::publish::phone_voip_instance(e)
    );
    a.versions_known();
    a.pa.set_in_call(&mut a.ep, true, a.now);
    let sent = a.sent();
    let bodies = services(&sent);
    assert_eq!(bodies.len(), 1, "{sent:?}");
    assert!(
        bodies[0].contains("xsi:type=\"phoneState\""),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[0].contains("token=\"on-the-phone\""),
        "{}",
        bodies[0]
    );
    assert_eq!(bodies[0].matches(&instance).count(), 2, "{}", bodies[0]);
    a.ok(&find(&sent, ocs_core::sip::Method::Service), None);
    // The same report again changes nothing.
    a.pa.set_in_call(&mut a.ep, true, a.now);
    assert!(services(&a.sent()).is_empty());
    // Hanging up deletes both publications, at the version after the first.
    a.pa.set_in_call(&mut a.ep, false, a.now);
    let bodies = services(&a.sent());
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0].matches("expires=\"0\"").count(),
        2,
        "{}",
        bodies[0]
    );
    assert_eq!(
        bodies[0].matches("version=\"1\"").count(),
        2,
        "{}",
        bodies[0]
    );
    assert!(!bodies[0].contains("phoneState"), "{}", bodies[0]);
}

#[test]
fn standard_dialect_calls_show_busy_and_reset_removes_the_publication() {
    let (mut a, _) = Alice::published_online();
    a.pa.set_in_call(&mut a.ep, true, a.now);
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Busy]);
    a.ok(&find(&sent, ocs_core::sip::Method::Publish), Some("e1b"));
    a.pa.set_in_call(&mut a.ep, false, a.now);
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Online]);
    a.ok(&find(&sent, ocs_core::sip::Method::Publish), Some("e2"));

    a.pa.reset_status(&mut a.ep, a.now);
    let sent = a.sent();
    let rm = find(&sent, ocs_core::sip::Method::Publish);
    assert_eq!(rm.header(HeaderName::Expires), Some("0"));
    assert_eq!(rm.header(HeaderName::SipIfMatch), Some("e2"));
    assert!(rm.body().is_empty());
    a.ok(&rm, None);
    assert!(
        a.events.iter().any(|e| matches!(
            e,
            PresenceEvent::Published {
                state: State::Offline,
                id: Some(_),
            }
        )),
        "{:?}",
        a.events
    );
}

fn meeting() -> ocs_core::presence_agent::Meeting {
    ocs_core::presence_agent::Meeting {
        start: "2026-11-25T14:00:00Z".into(),
        subject: "Budget & <plans>".into(),
        location: "Room 1".into(),
    }
}

#[test]
fn ocs_meetings_publish_a_calendar_state_and_delete_it_afterwards() {
    let mut a = Alice::new();
    let e = ocs_core::presence::publish::epid_instance("a1a1a1a1a1").expect("hex epid");
    let instance = format!(
        "instance=\"{}\"",
        ocs_core::presence::publish::calendar_state_instance(e)
    );
    a.versions_known();
    a.pa.set_in_meeting(&mut a.ep, Some(meeting()), a.now);
    let sent = a.sent();
    let bodies = services(&sent);
    assert_eq!(bodies.len(), 1, "{sent:?}");
    let b = &bodies[0];
    assert!(b.contains("xsi:type=\"calendarState\""), "{b}");
    assert!(b.contains("token=\"in-a-meeting\""), "{b}");
    assert!(b.contains("startTime=\"2026-11-25T14:00:00Z\""), "{b}");
    assert!(
        b.contains("<meetingSubject>Budget &amp; &lt;plans&gt;</meetingSubject>"),
        "{b}"
    );
    assert_eq!(b.matches(&instance).count(), 2, "{b}");
    // Our own document parses as busy, in a meeting.
    let doc = b
        .split("<state ")
        .nth(1)
        .map(|s| format!("<state {}", s.split("</state>").next().unwrap_or("")))
        .expect("state element");
    assert!(doc.contains("<availability>6500</availability>"), "{doc}");
    a.ok(&find(&sent, ocs_core::sip::Method::Service), None);
    a.pa.set_in_meeting(&mut a.ep, Some(meeting()), a.now);
    assert!(services(&a.sent()).is_empty(), "the same meeting again");
    a.pa.set_in_meeting(&mut a.ep, None, a.now);
    let bodies = services(&a.sent());
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0].matches("expires=\"0\"").count(),
        2,
        "{}",
        bodies[0]
    );
    assert!(!bodies[0].contains("calendarState"), "{}", bodies[0]);
}

#[test]
fn standard_dialect_meetings_show_busy_with_the_meeting_activity() {
    let (mut a, _) = Alice::published_online();
    a.pa.set_in_meeting(&mut a.ep, Some(meeting()), a.now);
    let sent = a.sent();
    assert_eq!(publishes(&sent), vec![State::Busy]);
    let p = find(&sent, ocs_core::sip::Method::Publish);
    let body = String::from_utf8_lossy(p.body());
    assert!(body.contains("meeting"), "{body}");
    a.ok(&p, Some("e2"));
    a.pa.set_in_meeting(&mut a.ep, None, a.now);
    assert_eq!(publishes(&a.sent()), vec![State::Online]);
}

#[test]
fn roaming_subscriptions_are_refreshed_in_their_dialogs_and_restarted_after_481() {
    let mut a = Alice::new();
    a.pa.on_registered(&mut a.ep, a.now);
    let sent = a.sent();
    let subs = subscribes(&sent);
    let event = |m: &Message| m.header(HeaderName::Event).unwrap_or("").to_owned();
    let roaming_self = subs
        .iter()
        .find(|m| event(m) == "vnd-microsoft-roaming-self")
        .map(|m| (*m).clone())
        .expect("roaming-self");
    let roaming_contacts = subs
        .iter()
        .find(|m| event(m) == "vnd-microsoft-roaming-contacts")
        .map(|m| (*m).clone())
        .expect("roaming-contacts");
    // Both granted for an hour (accept() says 3600).
    a.accept(&roaming_self, "rs");
    a.accept(&roaming_contacts, "rc");
    a.sent();
    // Nothing before 3600 - 120 s; then one in-dialog SUBSCRIBE each.
    a.now += Duration::from_secs(3470);
    a.pa.handle_timeout(&mut a.ep, a.now);
    assert!(subscribes(&a.sent()).is_empty());
    assert!(
        a.pa.poll_timeout()
            .is_some_and(|t| t <= a.now + Duration::from_secs(10))
    );
    a.now += Duration::from_secs(10);
    a.pa.handle_timeout(&mut a.ep, a.now);
    let sent = a.sent();
    let refreshes = subscribes(&sent);
    assert_eq!(refreshes.len(), 2, "{sent:?}");
    for (r, tag, ev) in [
        (refreshes[0], "rs", "vnd-microsoft-roaming-self"),
        (refreshes[1], "rc", "vnd-microsoft-roaming-contacts"),
    ] {
        assert_eq!(event(r), ev);
        assert_eq!(r.to().expect("To").tag(), Some(tag), "in the dialog");
    }
    // The server forgot roaming-contacts: a fresh, out-of-dialog SUBSCRIBE.
    let gone = builder::response(refreshes[1], 481, None, Some("x")).expect("481");
    a.feed(&gone);
    let sent = a.sent();
    let again = subscribes(&sent);
    assert!(
        again
            .iter()
            .any(|m| event(m) == "vnd-microsoft-roaming-contacts"
                && m.to().expect("To").tag().is_none()),
        "{sent:?}"
    );
}

fn by_event<'a>(msgs: &'a [Message], event: &str) -> Vec<&'a Message> {
    msgs.iter()
        .filter(|m| m.method() == Some(&ocs_core::sip::Method::Subscribe))
        .filter(|m| m.header(HeaderName::Event) == Some(event))
        .collect()
}

#[test]
fn contact_changes_fail_with_the_reason_when_the_list_cannot_arrive() {
    use ocs_core::presence_agent::ContactRequest;
    let mut a = Alice::new();
    a.pa.on_registered(&mut a.ep, a.now);
    let sent = a.sent();
    let rc = by_event(&sent, "vnd-microsoft-roaming-contacts")[0].clone();
    // A change asked for before the list is known waits for it…
    let id =
        a.pa.change_contacts(
            &mut a.ep,
            ContactRequest::AddGroup {
                name: "Team".into(),
            },
            a.now,
        )
        .expect("queued");
    assert!(a.sent().is_empty());
    // …and fails with the server's answer when the list is refused.
    let refused = builder::response(&rc, 489, None, Some("x")).expect("489");
    a.feed(&refused);
    a.sent();
    assert!(
        a.events.iter().any(|e| matches!(e,
            PresenceEvent::ContactListChangeFailed { id: i, error } if *i == id && error.to_string().contains("489"))),
        "{:?}",
        a.events
    );
    // Later ones fail at once instead of waiting for ever.
    let e =
        a.pa.change_contacts(
            &mut a.ep,
            ContactRequest::Remove {
                uri: "sip:bob@contoso.com".into(),
            },
            a.now,
        )
        .expect_err("refused");
    assert!(e.to_string().contains("489"), "{e}");
}

#[test]
fn a_stale_version_ends_the_old_list_subscription_before_reading_it_again() {
    use ocs_core::presence_agent::ContactRequest;
    let mut a = Alice::new();
    a.pa.on_registered(&mut a.ep, a.now);
    let sent = a.sent();
    let rc = by_event(&sent, "vnd-microsoft-roaming-contacts")[0].clone();
    let mut ok = builder::response(&rc, 200, None, Some("rc")).expect("200");
    ok.push_header(HeaderName::Expires, "3600");
    ok.set_body(
        "application/vnd-microsoft-roaming-contacts+xml",
        br#"<contactList deltaNum="5"><group id="1" name="~"/></contactList>"#.to_vec(),
    );
    a.feed(&ok);
    a.sent();
    a.pa.change_contacts(
        &mut a.ep,
        ContactRequest::AddGroup {
            name: "Team".into(),
        },
        a.now,
    )
    .expect("queued");
    let sent = a.sent();
    let service = find(&sent, ocs_core::sip::Method::Service);
    assert!(String::from_utf8_lossy(service.body()).contains("<m:deltaNum>5</m:deltaNum>"));
    a.feed(&builder::response(&service, 409, None, Some("s")).expect("409"));
    let sent = a.sent();
    let subs = by_event(&sent, "vnd-microsoft-roaming-contacts");
    assert_eq!(subs.len(), 2, "{sent:?}");
    // The old dialog is ended, then a new subscription reads the list.
    assert_eq!(subs[0].header(HeaderName::Expires), Some("0"));
    assert_eq!(subs[0].to().expect("To").tag(), Some("rc"));
    assert!(subs[1].to().expect("To").tag().is_none());
}

#[test]
fn a_meeting_reported_before_sign_in_is_published_once_versions_are_known() {
    let mut a = Alice::new();
    a.pa.set_in_meeting(&mut a.ep, Some(meeting()), a.now);
    a.sent();
    a.pa.on_registered(&mut a.ep, a.now);
    let sent = a.sent();
    let rs = by_event(&sent, "vnd-microsoft-roaming-self")[0].clone();
    a.accept(&rs, "rs");
    let bodies = services(&a.sent());
    assert!(
        bodies.iter().any(|b| b.contains("calendarState")),
        "{bodies:?}"
    );
    assert!(bodies.iter().any(|b| b.contains("<device ")), "{bodies:?}");
}

#[test]
fn a_contact_list_notify_that_overtakes_the_200_is_taken() {
    let mut a = Alice::new();
    a.pa.on_registered(&mut a.ep, a.now);
    let sent = a.sent();
    let rc = by_event(&sent, "vnd-microsoft-roaming-contacts")[0].clone();
    // The server's NOTIFY arrives first, in the dialog the 200 will make.
    let ok = builder::response(&rc, 200, None, Some("rc")).expect("200");
    a.notify(
        &rc,
        &ok,
        "application/vnd-microsoft-roaming-contacts+xml",
        r#"<contactList deltaNum="3"><group id="1" name="~"/><contact uri="bob@contoso.com" groups="1"/></contactList>"#,
        "active;expires=3600",
    );
    let sent = a.sent();
    assert!(
        sent.iter().any(|m| m.status() == Some(200)),
        "the NOTIFY is answered 200, not 481: {sent:?}"
    );
    let list = a.pa.contact_list().expect("the list is known");
    assert_eq!(list.delta_num, Some(3));
    assert!(list.contact("sip:bob@contoso.com").is_some());
    // The late 200 OK changes nothing.
    a.feed(&ok);
    a.sent();
    assert_eq!(a.pa.contact_list().and_then(|l| l.delta_num), Some(3));
}

#[test]
fn a_publication_refused_with_500_is_tried_again_three_times_then_fails() {
    // Kamailio's presence store answers "500 database is locked" now and
    // then, most often just after a restart: one such answer must not
    // leave the state unpublished until it next changes.
    let (mut a, _) = Alice::published_online();
    let id =
        a.pa.set_status(&mut a.ep, State::Busy, None, a.now)
            .expect("publish");
    let mut sent = a.sent();
    for round in 0..4 {
        assert_eq!(publishes(&sent), vec![State::Busy], "round {round}");
        let req = find(&sent, ocs_core::sip::Method::Publish);
        let refused = builder::response(&req, 500, None, Some("s1")).expect("500");
        a.feed(&refused);
        sent = a.sent();
    }
    // Three retries (the limit 409 and 412 have too), then the fourth 500
    // ends the command.
    assert!(publishes(&sent).is_empty(), "{sent:?}");
    assert!(
        a.events.iter().any(|e| matches!(
            e,
            PresenceEvent::PublishFailed { id: Some(i), .. } if *i == id
        )),
        "{:?}",
        a.events
    );
}
