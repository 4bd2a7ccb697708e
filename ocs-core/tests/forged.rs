//! After an MS-SIPAE sign-in, what arrives without the server's signature,
//! or with a wrong one, is dropped, counted and never acted on (issue 25,
//! part 5): a presence notification saying a contact is busy, the server's
//! sign-out NOTIFY, an IM invitation, and the answers to our own IM. Each
//! forgery is made from a real message of the embedded server (signature
//! header taken out, or one character of `rspauth` changed), so only the
//! signature differs; the real message, delivered afterwards, does act.

mod common;
use common::pair::Pair;

use std::time::Duration;

use ocs_core::client::ClientEvent;
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::RegistrationEvent;
use ocs_core::sip::{Message, builder};

const S: Duration = Duration::from_secs(1);

fn registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { refresh: false, .. })
    )
}

/// The message without its signature (`Authentication-Info`).
fn unsigned(m: &Message) -> Vec<u8> {
    let mut m = m.clone();
    m.remove_headers("Authentication-Info");
    m.to_bytes()
}

/// The message with one hex digit of its `rspauth` changed.
fn badly_signed(m: &Message) -> Vec<u8> {
    let text = String::from_utf8(m.to_bytes()).expect("utf-8");
    let at = text.find("rspauth=\"").expect("signed") + "rspauth=\"".len() + 5;
    let mut b = text.into_bytes();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    b
}

/// Feeds `bytes` to user `u` as if from the server; returns the events
/// and what the client sent in answer.
fn inject(p: &mut Pair, u: usize, bytes: &[u8]) -> (Vec<ClientEvent>, Vec<Vec<u8>>) {
    let now = p.now;
    let c = &mut p.users[u].client;
    c.handle_bytes(bytes, now);
    let events = std::iter::from_fn(|| c.poll_event()).collect();
    let sent = std::iter::from_fn(|| c.poll_transmit()).collect();
    (events, sent)
}

fn refused_only(what: &str, events: &[ClientEvent], sent: &[Vec<u8>]) {
    assert!(
        matches!(events, [ClientEvent::SecurityViolation(_)]),
        "{what}: {events:?}"
    );
    assert!(sent.is_empty(), "{what}: answered {sent:?}");
}

#[test]
fn forged_requests_and_responses_are_dropped_counted_and_never_acted_on() {
    let mut p = Pair::new(&["alice", "bob"]);
    let (a, b) = (p.add(Pair::config("alice")), p.add(Pair::config("bob")));
    p.until(a, S, registered);
    p.until(b, S, registered);
    let now = p.now;
    p.users[a]
        .client
        .watch("sip:bob@contoso.com", now)
        .expect("watch");
    p.flush();

    // 1. A presence notification: bob busy. Keep the real one back.
    let now = p.now;
    p.users[b]
        .client
        .set_status(State::Busy, None, now)
        .expect("publish");
    p.flush_until(a, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) if presence.state() == State::Busy)
    });
    // The message that said so is the last one alice received.
    let busy = p.users[a]
        .received
        .last()
        .cloned()
        .expect("the notification");
    assert!(
        busy.method()
            .is_some_and(|m| m.as_str().ends_with("NOTIFY")),
        "{busy:?}"
    );
    // It was delivered and acted on; bob goes back to online for real.
    let now = p.now;
    p.users[b]
        .client
        .set_status(State::Online, None, now)
        .expect("publish");
    p.until(a, S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) if presence.state() == State::Online)
    });
    for (what, forged) in [
        ("unsigned NOTIFY", unsigned(&busy)),
        ("badly signed NOTIFY", badly_signed(&busy)),
    ] {
        let (events, sent) = inject(&mut p, a, &forged);
        refused_only(what, &events, &sent);
    }

    // 2. The server's sign-out NOTIFY, forged twice, then real.
    let now = p.now;
    p.flush();
    assert!(
        p.server
            .force_sign_out("sip:alice@contoso.com", "User disabled", now)
    );
    let (_, bytes) = p.server.poll_transmit().expect("the sign-out NOTIFY");
    let notify = Message::parse(&bytes).expect("parses");
    for (what, forged) in [
        ("unsigned sign-out", unsigned(&notify)),
        ("badly signed sign-out", badly_signed(&notify)),
    ] {
        let (events, sent) = inject(&mut p, a, &forged);
        refused_only(what, &events, &sent);
        assert!(p.users[a].client.registration().is_registered(), "{what}");
    }

    // 3. An IM invitation from bob, unsigned (made from alice's own
    // signed INVITE to bob, turned around).
    // 4. The answer to alice's IM: with the server deaf, she waits; a
    // forged 200 (unsigned, then badly signed) must not deliver it.
    p.deaf = true;
    let now = p.now;
    let im = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "are you there?", now)
        .expect("send");
    let invite = std::iter::from_fn(|| p.users[a].client.poll_transmit())
        .filter_map(|b| Message::parse(&b).ok())
        .find(|m| m.method().is_some_and(|x| x.as_str() == "INVITE"))
        .expect("alice's INVITE");
    let mut ok = builder::response(&invite, 200, None, Some("bobtag")).expect("200");
    ok.insert_header(
        ok.header_count() - 1,
        "Authentication-Info",
        notify
            .header("Authentication-Info")
            .expect("server signature")
            .replace("snum=", "snum=9"),
    );
    for (what, forged) in [
        ("unsigned 200 to INVITE", unsigned(&ok)),
        ("badly signed 200 to INVITE", badly_signed(&ok)),
    ] {
        let (events, sent) = inject(&mut p, a, &forged);
        refused_only(what, &events, &sent);
    }
    let invite_back = unsigned(&invite);
    let (events, sent) = inject(&mut p, a, &invite_back);
    refused_only("unsigned INVITE", &events, &sent);

    // Counted: 7 refusals in the diagnostics, the latest named.
    let snap = p.users[a].client.snapshot(p.now);
    assert_eq!(snap.refused_unsigned, 7, "{:?}", snap.last_refused);
    assert!(snap.last_refused.is_some());
    assert!(snap.to_json().contains("\"refused_unsigned\":7"));
    // Never acted on: no busy bob, no delivery, no IM shown, still signed in.
    let acted = p.users[a].events.iter().rev().take(30).any(|(_, e)| {
        matches!(e, ClientEvent::Im(ImEvent::Delivered { id }) if *id == im)
            || matches!(e, ClientEvent::Im(ImEvent::Received { .. }))
            || matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::SignedOut { .. })
            )
    });
    assert!(!acted);
    assert!(p.users[a].client.registration().is_registered());

    // The real sign-out NOTIFY acts.
    let (events, _) = inject(&mut p, a, &bytes);
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::SignedOut {
                by_server: true,
                ..
            })
        )),
        "{events:?}"
    );
}

#[test]
fn a_forged_answer_to_a_registration_refresh_is_dropped_and_the_session_goes_on() {
    // Found by the stateful fuzz target's honest-server op: one forged 200
    // to a signed refresh ended the whole session ("Failed", then
    // "Stopped"); any on-path attacker could sign a user out that way.
    let mut p = Pair::new(&["alice"]);
    let a = p.add(Pair::config("alice"));
    p.until(a, S, registered);
    p.flush();
    // The server grants 7,200 s; the client refreshes 30 s before. Deaf
    // only for the last stretch, so the server keeps the binding alive.
    p.run_for(Duration::from_secs(7100));
    p.deaf = true;
    let registers = |p: &Pair| {
        p.users[a]
            .sent
            .iter()
            .filter(|m| m.method().is_some_and(|m| m.as_str() == "REGISTER"))
            .count()
    };
    let before = registers(&p);
    let mut waited = Duration::ZERO;
    while registers(&p) == before {
        assert!(waited < Duration::from_secs(600), "no refresh");
        p.run_for(10 * S);
        waited += 10 * S;
    }
    let refresh = p.users[a]
        .sent
        .iter()
        .rev()
        .find(|m| m.method().is_some_and(|m| m.as_str() == "REGISTER"))
        .cloned()
        .expect("the refresh");
    let now = p.now;
    let peer = p.users[a].peer;
    p.server.handle_stream(peer, &refresh.to_bytes(), now);
    let answer = std::iter::from_fn(|| p.server.poll_transmit())
        .filter(|(to, _)| *to == peer)
        .filter_map(|(_, b)| Message::parse(&b).ok())
        .find(|m| m.status() == Some(200))
        .expect("the server's 200 to the refresh");
    for (what, forged) in [
        ("badly signed 200 to a refresh", badly_signed(&answer)),
        ("unsigned 200 to a refresh", unsigned(&answer)),
    ] {
        let (events, sent) = inject(&mut p, a, &forged);
        refused_only(what, &events, &sent);
        assert!(p.users[a].client.registration().is_registered(), "{what}");
    }
    // The real answer is taken.
    let (events, _) = inject(&mut p, a, &answer.to_bytes());
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::Registered { refresh: true, .. })
        )),
        "{events:?}"
    );
    let snap = p.users[a].client.snapshot(p.now);
    assert_eq!(snap.refused_unsigned, 2, "{:?}", snap.last_refused);
}
