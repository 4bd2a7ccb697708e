//! The sans-IO [`Client`](ocs_core::client::Client) against the embedded
//! server on a simulated clock (`common::pair`): whole sessions without
//! sockets or tokio.

mod common;
use common::pair::Pair;

use std::time::Duration;

use ocs_core::client::ClientEvent;
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::State;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::register::RegistrationEvent;

const S: Duration = Duration::from_secs(1);

fn registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { refresh: false, .. })
    )
}

#[test]
fn sign_in_publish_watch_im_and_sign_out() {
    let mut p = Pair::new(&["alice", "bob"]);
    let (a, b) = (p.add(Pair::config("alice")), p.add(Pair::config("bob")));
    p.until(a, S, registered);
    p.until(b, S, registered);

    let now = p.now;
    let published = p.users[a]
        .client
        .set_status(State::Busy, Some("writing the report"), now)
        .expect("publish");
    p.until(a, S, |e| {
        matches!(
            e,
            ClientEvent::Presence(PresenceEvent::Published {
                id: Some(id),
                state: State::Busy,
            }) if *id == published
        )
    });

    p.users[b]
        .client
        .watch("sip:alice@contoso.com", now)
        .expect("watch");
    let seen = p.until(b, S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == "sip:alice@contoso.com" && presence.state() == State::Busy)
    });
    let ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) = seen else {
        unreachable!()
    };
    assert_eq!(
        presence.note.as_ref().map(|n| &*n.text),
        Some("writing the report")
    );

    let now = p.now;
    let id = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "hello bob", now)
        .expect("send");
    p.flush();
    p.until(b, S, |e| {
        matches!(e, ClientEvent::Im(ImEvent::Received { content, .. }) if content.plain_text == "hello bob")
    });
    p.until(a, S, |e| *e == ClientEvent::Im(ImEvent::Delivered { id }));

    let now = p.now;
    p.users[a].client.sign_out(now);
    p.users[b].client.sign_out(now);
    p.flush();
    for u in [a, b] {
        p.until(u, S, |e| *e == ClientEvent::Stopped);
        assert!(p.users[u].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::Registration(RegistrationEvent::SignedOut {
                by_server: false,
                ..
            })
        )));
    }
    assert!(p.server.registrar().bindings().next().is_none());
    // Everything the clients sent after sign-in was signed.
    assert_eq!(
        p.server.signature_violations(),
        0,
        "{:?}",
        p.server.recent_signature_violations().collect::<Vec<_>>()
    );
    // The whole session took well under a simulated second.
    assert!(p.elapsed() < S, "{:?}", p.elapsed());
}

#[test]
fn a_server_that_is_down_ends_the_first_sign_in_with_the_connect_error() {
    let mut p = Pair::new(&["alice"]);
    p.down = true;
    let a = p.add(Pair::config("alice"));
    let failed = p.until(a, S, |e| {
        matches!(e, ClientEvent::Registration(RegistrationEvent::Failed(_)))
    });
    assert!(
        format!("{failed:?}").contains("TCP connect to 192.0.2.1:5061: refused"),
        "{failed:?}"
    );
    p.until(a, S, |e| *e == ClientEvent::Stopped);
    assert!(p.users[a].client.is_stopped());
    assert_eq!(p.users[a].client.poll_timeout(), None);
}

#[test]
fn after_a_sign_in_a_lost_server_is_retried_until_it_is_back() {
    let mut p = Pair::new(&["alice"]);
    let a = p.add(Pair::config("alice"));
    p.until(a, S, registered);
    // The server restarts: connections and security associations gone.
    p.server.registrar_mut().restart();
    let peer = p.users[a].peer;
    p.server.handle_disconnect(peer);
    p.down = true;
    let now = p.now;
    p.users[a]
        .client
        .handle_connection_lost("server closed the connection".into(), now);
    p.users[a].connected = false;
    // Still down at the first retry, back for a later one.
    p.run_for(5 * S);
    p.down = false;
    let from = p.users[a].seen;
    p.until(a, 10 * 60 * S, |e| {
        matches!(e, ClientEvent::Reconnected { .. })
    });
    let seen: Vec<ClientEvent> = p.users[a].events[from..p.users[a].seen]
        .iter()
        .map(|(_, e)| e.clone())
        .collect();
    // Registered first, then Reconnected with how long it took and how
    // many waits: at least the 5 s it was down, more than one attempt.
    let n = seen.len();
    assert!(
        matches!(
            seen[n - 2],
            ClientEvent::Registration(RegistrationEvent::Registered { refresh: false, .. })
        ),
        "{seen:?}"
    );
    let retries = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::Registration(RegistrationEvent::RetryScheduled { .. })
            )
        })
        .count();
    let ClientEvent::Reconnected { down_for, attempts } = seen[n - 1].clone() else {
        unreachable!()
    };
    assert!(down_for >= 5 * S, "{down_for:?}");
    assert!(attempts >= 2, "{attempts}");
    assert_eq!(attempts as usize, retries, "{seen:?}");
    assert!(!p.users[a].client.is_stopped());
}

/// The user's own state publications (SERVICE with a manual `state`
/// category, the userState) a user
/// sent, and the 409s the server answered to its SERVICEs.
fn state_publications(p: &Pair, user: usize) -> (usize, usize) {
    let u = &p.users[user];
    let sent = u
        .sent
        .iter()
        .filter(|m| {
            m.method().is_some_and(|m| m.as_str() == "SERVICE")
                && String::from_utf8_lossy(m.body()).contains("categoryName=\"state\"")
                && String::from_utf8_lossy(m.body()).contains("manual=\"true\"")
        })
        .count();
    let conflicts = u
        .received
        .iter()
        .filter(|m| m.status() == Some(409) && m.cseq().is_ok_and(|c| c.method == "SERVICE"))
        .count();
    (sent, conflicts)
}

#[test]
fn a_state_set_before_roaming_self_answers_is_published_once_with_its_versions() {
    let mut p = Pair::new(&["alice", "bob"]);
    // Another endpoint of alice's published before: the server's versions
    // are not 0, so a guess would conflict.
    let earlier = p.add(Pair::config("alice"));
    p.until(earlier, S, registered);
    let now = p.now;
    p.users[earlier]
        .client
        .set_status(State::Away, None, now)
        .expect("publish");
    p.until(earlier, S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Published { .. }))
    });
    p.users[earlier].client.sign_out(now);
    p.until(earlier, S, |e| *e == ClientEvent::Stopped);

    // The user sets a state the moment sign-in succeeds, while the answer
    // to the roaming-self subscription is still on its way.
    let a = p.add_quiet(Pair::config("alice"));
    p.flush_until(a, registered);
    let now = p.now;
    let early = p.users[a]
        .client
        .set_status(State::Busy, Some("on it"), now)
        .expect("publish");
    p.flush();
    // The command waited for the versions and ends with the publication
    // that went out then.
    p.until(a, S, |e| {
        matches!(
            e,
            ClientEvent::Presence(PresenceEvent::Published {
                id: Some(id),
                state: State::Busy,
            }) if *id == early
        )
    });
    let (sent, conflicts) = state_publications(&p, a);

    assert_eq!(
        (sent, conflicts),
        (1, 0),
        "one publication, with the server's versions"
    );
    assert!(
        !p.users[a].events.iter().any(|(_, e)| matches!(
            e,
            ClientEvent::Presence(PresenceEvent::PublishFailed { .. })
        )),
        "{:?}",
        p.users[a].events
    );

    // Bob sees it.
    let b = p.add(Pair::config("bob"));
    p.until(b, S, registered);
    let now = p.now;
    p.users[b]
        .client
        .watch("sip:alice@contoso.com", now)
        .expect("watch");
    p.until(b, S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == "sip:alice@contoso.com" && presence.state() == State::Busy)
    });
}

#[test]
fn a_burst_of_state_changes_keeps_one_publication_on_the_wire_and_ends_every_id() {
    // A host that sets the state in a loop (a slider, a script) must not
    // hold a transaction per change, nor send publications that carry the
    // same versions (OCS would answer all but one 409). The stateful fuzz
    // target found 750 changes holding 9 MB in 750 transactions.
    let mut p = Pair::new(&["alice"]);
    let a = p.add(Pair::config("alice"));
    p.until(a, S, registered);
    p.flush();
    let (before, _) = state_publications(&p, a);
    let now = p.now;
    let states = [State::Busy, State::Away, State::Online];
    let ids: Vec<_> = (0..200)
        .map(|i| {
            p.users[a]
                .client
                .set_status(states[i % states.len()], None, now)
                .expect("asked")
        })
        .collect();
    p.flush();
    let (sent, conflicts) = state_publications(&p, a);
    assert_eq!(
        (sent - before, conflicts),
        (2, 0),
        "the first change, then the newest once it was answered"
    );
    // Every id ended once; the ones that waited show the newest state.
    let last = *ids.last().expect("ids");
    for id in &ids[1..] {
        assert_eq!(publish_outcome(&p, a, *id), Ok(State::Away), "{id:?}");
    }
    assert_eq!(publish_outcome(&p, a, ids[0]), Ok(State::Busy));
    assert_eq!(publish_outcome(&p, a, last), Ok(State::Away));
}

fn method_of(m: &ocs_core::sip::Message) -> String {
    m.method()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default()
}

/// Alice and Bob signed in, chatting, and watching each other.
fn chatting() -> (Pair, usize, usize) {
    let mut p = Pair::new(&["alice", "bob"]);
    let (a, b) = (p.add(Pair::config("alice")), p.add(Pair::config("bob")));
    p.until(a, S, registered);
    p.until(b, S, registered);
    let now = p.now;
    p.users[a]
        .client
        .watch("sip:bob@contoso.com", now)
        .expect("watch");
    p.users[b]
        .client
        .watch("sip:alice@contoso.com", now)
        .expect("watch");
    let id = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "hi", now)
        .expect("send");
    p.flush();
    p.until(a, S, |e| *e == ClientEvent::Im(ImEvent::Delivered { id }));
    (p, a, b)
}

/// Every message id of `user` that ended, with how.
fn outcomes(p: &Pair, user: usize) -> Vec<(u64, bool)> {
    p.users[user]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Im(ImEvent::Delivered { id }) => Some((id.0, true)),
            ClientEvent::Im(ImEvent::Failed { id, .. }) => Some((id.0, false)),
            _ => None,
        })
        .collect()
}

#[test]
fn sign_out_ends_sessions_and_subscriptions_then_unregisters() {
    let (mut p, a, b) = chatting();
    let now = p.now;
    let last = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "bye for now", now)
        .expect("send");
    // Sign-out right away, with the message still on its way.
    p.users[a].client.sign_out(now);
    assert!(
        p.users[a]
            .client
            .send_im("sip:bob@contoso.com", "one more", now)
            .is_err(),
        "no new messages while signing out"
    );
    p.flush();
    p.until(a, S, |e| *e == ClientEvent::Stopped);

    // On the wire, in this order: the message, the BYE, the subscriptions
    // ended, the un-REGISTER last.
    let sent: Vec<String> = p.users[a]
        .sent
        .iter()
        .skip_while(|m| !String::from_utf8_lossy(m.body()).contains("bye for now"))
        .map(|m| {
            let expires = m.header(ocs_core::sip::HeaderName::Expires).unwrap_or("");
            format!("{} {expires}", method_of(m))
        })
        .collect();
    let unregister = sent
        .iter()
        .position(|s| s == "REGISTER 0")
        .expect("un-REGISTER");
    let bye = sent.iter().position(|s| s.starts_with("BYE")).expect("BYE");
    let unsubscribes = sent.iter().filter(|s| *s == "SUBSCRIBE 0").count();
    assert!(bye < unregister, "{sent:?}");
    assert!(
        unsubscribes >= 3,
        "the watch, roaming-self and roaming-contacts end: {sent:?}"
    );
    assert_eq!(unregister, sent.len() - 1, "{sent:?}");
    // The message in flight was settled by the server's answer; every
    // message ended exactly once.
    let ended = outcomes(&p, a);
    assert!(ended.contains(&(last.0, true)), "{ended:?}");
    let mut ids: Vec<u64> = ended.iter().map(|(i, _)| *i).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ended.len(), "one outcome each: {ended:?}");
    // Bob's client learns the conversation ended.
    p.until(b, S, |e| {
        matches!(e, ClientEvent::Im(ImEvent::SessionEnded { uri, by_peer: true }) if uri == "sip:alice@contoso.com")
    });
    assert!(p.users[a].events.iter().any(|(_, e)| matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::SignedOut {
            by_server: false,
            reason: None
        })
    )));
    assert_eq!(p.server.signature_violations(), 0);
}

#[test]
fn a_server_that_never_answers_does_not_hold_sign_out_past_its_deadline() {
    let (mut p, a, _) = chatting();
    p.deaf = true;
    let now = p.now;
    let started = p.elapsed();
    let lost = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "anyone?", now)
        .expect("send");
    p.users[a].client.sign_out(now);
    p.until(a, 10 * S, |e| *e == ClientEvent::Stopped);
    let took = p.users[a].events.last().expect("stopped").0 - started;
    assert!(took <= 5 * S, "sign-out took {took:?}");
    let failed = p.users[a].events.iter().find_map(|(_, e)| match e {
        ClientEvent::Im(ImEvent::Failed { id, reason, .. }) if *id == lost => Some(*reason),
        _ => None,
    });
    assert_eq!(
        failed,
        Some(ocs_core::im::outcome::FailureReason::SignedOut),
        "{:?}",
        p.users[a].events
    );
    assert!(p.users[a].events.iter().any(|(_, e)| matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::SignedOut { by_server: false, reason: Some(r) })
            if r.contains("did not answer")
    )));
    // The un-REGISTER still went out once the rest had had its time.
    assert!(
        p.users[a].sent.iter().any(|m| method_of(m) == "REGISTER"
            && m.header(ocs_core::sip::HeaderName::Expires) == Some("0"))
    );
}

/// The administrator changed a policy; alice's device moves to another
/// network and signs in again, fetching in-band provisioning anew.
fn sign_in_again(p: &mut Pair, user: usize) {
    let now = p.now;
    p.users[user].client.network_changed(now);
    p.until(user, 5 * S, registered);
    p.until(user, S, |e| {
        matches!(
            e,
            ClientEvent::Provisioning(ocs_core::provisioning_agent::ProvisioningEvent::Received(_))
        )
    });
}

#[test]
fn in_band_disable_im_takes_effect_on_the_running_client_both_ways() {
    let (mut p, a, b) = chatting();
    p.server.set_uc_policy("DisableIM", "true");
    sign_in_again(&mut p, a);

    // Alice can no longer send, and is told which source decided.
    let now = p.now;
    let refused = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "still there?", now);
    let Err(ocs_core::error::Error::PolicyDenied { policy, provenance }) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(policy, "DisableIM");
    assert_eq!(provenance.source, "in-band");
    // Bob's message to her is declined by her client.
    let id = p.users[b]
        .client
        .send_im("sip:alice@contoso.com", "are you there?", now)
        .expect("bob may send");
    p.flush();
    let failed = p.until(
        b,
        S,
        |e| matches!(e, ClientEvent::Im(ImEvent::Failed { id: f, .. }) if *f == id),
    );
    assert!(
        matches!(
            failed,
            ClientEvent::Im(ImEvent::Failed {
                reason: ocs_core::im::outcome::FailureReason::BlockedByPolicy,
                ..
            })
        ),
        "{failed:?}"
    );
    p.until(a, S, |e| {
        matches!(e, ClientEvent::Im(ImEvent::RefusedByPolicy { .. }))
    });

    // The administrator takes it back: at the next sign-in the app's own
    // setting (IM allowed) returns.
    p.server.remove_uc_policy("DisableIM");
    sign_in_again(&mut p, a);
    let now = p.now;
    let id = p.users[a]
        .client
        .send_im("sip:bob@contoso.com", "back again", now)
        .expect("IM is allowed again");
    p.flush();
    p.until(a, S, |e| *e == ClientEvent::Im(ImEvent::Delivered { id }));
}

#[test]
fn appear_offline_forbidden_in_band_brings_the_previous_state_back() {
    let mut p = Pair::new(&["alice", "bob"]);
    let mut cfg = Pair::config("alice");
    // The app allows appearing offline (its own option).
    cfg.presence.appear_offline = Ok(ocs_core::error::Provenance {
        source: "options".into(),
        from: None,
    });
    let a = p.add(cfg);
    let b = p.add(Pair::config("bob"));
    p.until(a, S, registered);
    p.until(b, S, registered);
    let now = p.now;
    p.users[a]
        .client
        .set_status(State::Busy, Some("budget"), now)
        .expect("busy");
    p.users[a]
        .client
        .set_status(State::Offline, None, now)
        .expect("appear offline is allowed");
    p.users[b]
        .client
        .watch("sip:alice@contoso.com", now)
        .expect("watch");
    p.until(b, S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) if presence.state() == State::Offline)
    });

    // The administrator forbids it; at alice's next sign-in the client
    // shows her previous state again.
    p.server.set_uc_policy("EnableAppearOffline", "false");
    sign_in_again(&mut p, a);
    p.until(b, 5 * S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { presence, .. }) if presence.state() == State::Busy)
    });
    // And refuses to appear offline again, naming the source.
    let now = p.now;
    let r = p.users[a].client.set_status(State::Offline, None, now);
    assert!(
        matches!(&r, Err(ocs_core::error::Error::PolicyDenied { provenance, .. }) if provenance.source == "in-band"),
        "{r:?}"
    );
}

#[test]
fn a_whole_day_of_two_sessions_on_the_simulated_clock() {
    const H: Duration = Duration::from_secs(3600);
    let (mut p, a, b) = chatting();
    let wall = wall_now();

    // Hours 0-12: nothing but the clock.
    p.run_for(12 * H);
    // The connection drops at hour 12 (a NAT forgets it); alice's client
    // notices, reconnects and signs in again.
    let peer = p.users[a].peer;
    p.server.handle_disconnect(peer);
    p.users[a].connected = false;
    let now = p.now;
    p.users[a]
        .client
        .handle_connection_lost("connection reset".into(), now);
    p.until(a, 5 * 60 * S, registered);
    // Hours 12-23.5, then alice goes busy and bob sees it.
    p.run_for(11 * H + 30 * 60 * S);
    let now = p.now;
    p.users[a]
        .client
        .set_status(State::Busy, Some("late shift"), now)
        .expect("publish");
    p.until(b, 5 * S, |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == "sip:alice@contoso.com" && presence.state() == State::Busy)
    });
    p.run_for(30 * 60 * S);
    eprintln!("a simulated day took {:?} of wall time", wall.elapsed());

    let registers = |u: usize| -> Vec<&ocs_core::sip::Message> {
        p.users[u]
            .sent
            .iter()
            .filter(|m| method_of(m) == "REGISTER")
            .collect()
    };
    // Bob: a fresh handshake (unsigned REGISTER, no Authorization) at sign-in
    // and at each re-authentication, 8 h - 5 min apart: 3 in the day.
    let handshakes = |u: usize| {
        registers(u)
            .iter()
            .filter(|m| {
                m.header(ocs_core::sip::HeaderName::ProxyAuthorization)
                    .is_none()
                    && m.header(ocs_core::sip::HeaderName::Authorization).is_none()
            })
            .count()
    };
    assert_eq!(handshakes(b), 4, "sign-in + 3 re-authentications");
    // Refreshes 30 s before every expiry (7200 s granted): at 7170,
    // 14340 and 21510 s into each 28500 s association, 3 × 3 in the day,
    // besides the handshakes' three REGISTERs each.
    let signed_refreshes = registers(b).len() - 3 * handshakes(b);
    assert_eq!(signed_refreshes, 9);
    // Keep-alives every 300 s (ms-keep-alive) when nothing else was sent.
    assert!(p.users[b].keep_alives > 200, "{}", p.users[b].keep_alives);
    // Both still signed in, watching each other, nothing unsigned.
    for u in [a, b] {
        assert!(p.users[u].client.registration().is_registered());
        assert!(!p.users[u].client.is_stopped());
    }
    // Subscriptions were refreshed (roaming-self, roaming-contacts and
    // the watch each many times) rather than lapsing.
    let subscribes = p.users[b]
        .sent
        .iter()
        .filter(|m| method_of(m) == "SUBSCRIBE")
        .count();
    assert!(subscribes > 20, "{subscribes}");
    assert_eq!(
        p.server.signature_violations(),
        0,
        "{:?}",
        p.server.recent_signature_violations().collect::<Vec<_>>()
    );
}

/// Wall time, to show how long a simulated day takes.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

#[test]
fn the_client_decides_when_and_from_where_the_address_book_and_custom_states_load() {
    use ocs_core::client::{AddressBookEvent, AddressBookRun, AddressBookSchedule};
    let mut p = Pair::new(&["alice"]);
    p.server.set_address_book_url("https://abs.contoso.com/abs");
    let mut cfg = Pair::config("alice");
    cfg.address_book = Some(AddressBookSchedule {
        initial_delay: Duration::from_secs(600),
        url: None,
    });
    cfg.custom_state_url = Some("https://intranet/cs.xml".into());
    let a = p.add(cfg);
    p.until(a, S, registered);
    // Custom states load right after sign-in; the address book waits.
    assert_eq!(
        p.users[a].http,
        [(
            Duration::ZERO,
            "custom-states https://intranet/cs.xml".to_owned()
        )]
    );
    p.run_for(601 * S);
    let (at, what) = p.users[a].http[1].clone();
    assert!(
        at <= 600 * S,
        "first download at a random time within the delay: {at:?}"
    );
    // The URL is the internal one in-band provisioning named.
    assert_eq!(what, "abs https://abs.contoso.com/abs/int");

    // The download fails: retried after a minute, then succeeds, then
    // the next one is a day later.
    let now = p.now;
    p.users[a]
        .client
        .handle_address_book_done(Err("HTTP 503".into()), now);
    p.flush();
    let failed = p.until(a, S, |e| matches!(e, ClientEvent::AddressBook(_)));
    assert!(
        matches!(
            &failed,
            ClientEvent::AddressBook(AddressBookEvent::Failed { failures: 1, retry_in, .. })
                if *retry_in == 60 * S
        ),
        "{failed:?}"
    );
    p.run_for(61 * S);
    assert_eq!(p.users[a].http.len(), 3, "{:?}", p.users[a].http);
    let now = p.now;
    p.users[a].client.handle_address_book_done(
        Ok(AddressBookRun {
            entries: 42,
            day: "F-1a2b".into(),
            fetched: Some("F-1a2b.lsabs".into()),
        }),
        now,
    );
    p.flush();
    p.until(a, S, |e| {
        matches!(
            e,
            ClientEvent::AddressBook(AddressBookEvent::Ready { entries: 42, .. })
        )
    });
    let snap = p.users[a].client.snapshot(p.now);
    assert_eq!(
        snap.address_book.status,
        "42 entries, current to day F-1a2b"
    );
    p.run_for(23 * 3600 * S);
    assert_eq!(p.users[a].http.len(), 3, "not again within the day");
    p.run_for(3600 * S);
    assert_eq!(p.users[a].http.len(), 4, "a day after the last success");
}

/// The outcome of presence command `id` among `user`'s events: `Ok(state)`
/// or `Err(error)`; panics when it has none or more than one.
fn publish_outcome(
    p: &Pair,
    user: usize,
    id: ocs_core::PublishId,
) -> Result<State, ocs_core::Error> {
    let outcomes: Vec<Result<State, ocs_core::Error>> = p.users[user]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Presence(PresenceEvent::Published { id: Some(i), state }) if *i == id => {
                Some(Ok(*state))
            }
            ClientEvent::Presence(PresenceEvent::PublishFailed { id: Some(i), error })
                if *i == id =>
            {
                Some(Err(error.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 1, "{id:?}: {outcomes:?}");
    outcomes.into_iter().next().expect("one outcome")
}

#[test]
fn every_presence_command_ends_in_exactly_one_outcome_with_its_id() {
    let mut p = Pair::new(&["alice"]);
    let a = p.add(Pair::config("alice"));
    p.until(a, S, registered);
    p.flush();

    // A server that refuses publishing: the command fails with the status.
    p.server.refuse_publications(Some(403));
    let now = p.now;
    let refused = p.users[a]
        .client
        .set_status(State::Busy, Some("budget"), now)
        .expect("asked");
    p.flush();
    match publish_outcome(&p, a, refused) {
        Err(ocs_core::Error::Rejected { status: 403, .. }) => {}
        other => panic!("{other:?}"),
    }
    // 409 without the server's versions: retried, then failed.
    p.server.refuse_publications(Some(409));
    let now = p.now;
    let conflict = p.users[a]
        .client
        .set_custom_state(State::Busy.availability(), 1033, "Seminar", None, now)
        .expect("asked");
    p.flush();
    match publish_outcome(&p, a, conflict) {
        Err(ocs_core::Error::Rejected { status: 409, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Accepted again: each command ends with the state watchers see.
    p.server.refuse_publications(None);
    let now = p.now;
    let c = &mut p.users[a].client;
    let online = c.set_status(State::Online, None, now).expect("asked");
    // No threshold crossed: nothing goes out, the id still ends.
    let idle_short = c.set_idle(Duration::from_secs(60), now).expect("asked");
    let in_call = c.set_in_call(true, now).expect("asked");
    let same_call = c.set_in_call(true, now).expect("asked");
    let reset = c.reset_status(now).expect("asked");
    p.flush();
    assert_eq!(publish_outcome(&p, a, online), Ok(State::Online));
    assert_eq!(publish_outcome(&p, a, idle_short), Ok(State::Online));
    assert_eq!(publish_outcome(&p, a, in_call), Ok(State::Online));
    assert_eq!(publish_outcome(&p, a, same_call), Ok(State::Online));
    // After reset the call shows: busy.
    assert_eq!(publish_outcome(&p, a, reset), Ok(State::Busy));
    // A note on its own keeps the state set last (here: a custom busy).
    let now = p.now;
    let c = &mut p.users[a].client;
    c.set_custom_state(State::Busy.availability(), 1033, "Seminar", None, now)
        .expect("asked");
    let note = c.set_note(Some("back at 3"), now).expect("asked");
    p.flush();
    assert_eq!(publish_outcome(&p, a, note), Ok(State::Busy));
    let ids = [
        refused, conflict, online, idle_short, in_call, same_call, reset,
    ];
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids are distinct: {ids:?}");
}

#[test]
fn a_publication_still_waiting_when_the_session_ends_fails_with_stopped() {
    let mut p = Pair::new(&["alice"]);
    let a = p.add_quiet(Pair::config("alice"));
    p.flush_until(a, registered);
    // Asked before roaming-self gave the versions; the server hears
    // nothing more (so the versions never come), and the user signs out.
    let now = p.now;
    let early = p.users[a]
        .client
        .set_status(State::Away, None, now)
        .expect("asked");
    p.deaf = true;
    p.users[a].client.sign_out(now);
    p.until(a, S * 10, |e| *e == ClientEvent::Stopped);
    // It never went out: it ends with the session, not silently.
    assert_eq!(publish_outcome(&p, a, early), Err(ocs_core::Error::Stopped));
}

/// The outcome of watch command `id` among `user`'s events.
fn watch_outcome(p: &Pair, user: usize, id: ocs_core::WatchId) -> Result<String, ocs_core::Error> {
    let outcomes: Vec<Result<String, ocs_core::Error>> = p.users[user]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::Presence(PresenceEvent::Watching { id: i, uri }) if *i == id => {
                Some(Ok(uri.clone()))
            }
            ClientEvent::Presence(PresenceEvent::WatchFailed { id: i, error, .. }) if *i == id => {
                Some(Err(error.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 1, "{id:?}: {outcomes:?}");
    outcomes.into_iter().next().expect("one outcome")
}

#[test]
fn every_watch_command_ends_in_exactly_one_outcome_with_its_id() {
    let mut p = Pair::new(&["alice", "bob"]);
    let b = p.add(Pair::config("bob"));
    p.until(b, S, registered);
    let a = p.add_quiet(Pair::config("alice"));
    // Asked before sign-in: it waits for it.
    let now = p.now;
    let early = p.users[a]
        .client
        .watch("sip:bob@contoso.com", now)
        .expect("asked");
    // Not a SIP URI: refused at once, no id.
    match p.users[a].client.watch("bob at contoso", now) {
        Err(ocs_core::Error::ApiMisuse { .. }) => {}
        other => panic!("{other:?}"),
    }
    p.flush();
    p.until(a, S, registered);
    p.flush();
    assert_eq!(
        watch_outcome(&p, a, early),
        Ok("sip:bob@contoso.com".into())
    );
    // Watched already: a second command ends at once.
    let now = p.now;
    let again = p.users[a]
        .client
        .watch("<SIP:Bob@contoso.com>", now)
        .expect("asked");
    p.flush();
    assert_eq!(
        watch_outcome(&p, a, again),
        Ok("sip:bob@contoso.com".into())
    );
    // Two commands hold bob's watch: releasing one keeps it, releasing
    // both ends it (the server sees the subscription end).
    let watched = |p: &Pair| {
        p.server
            .presence()
            .watched_by("sip:alice@contoso.com", p.now)
    };
    assert_eq!(watched(&p), vec!["sip:bob@contoso.com".to_owned()]);
    let now = p.now;
    p.users[a].client.release_watch(early, now);
    p.flush();
    assert_eq!(watched(&p), vec!["sip:bob@contoso.com".to_owned()]);
    p.users[a].client.release_watch(again, now);
    p.flush();
    assert!(watched(&p).is_empty(), "{:?}", watched(&p));
    // Unwatched before the server answered: cancelled, and the
    // subscription the server made meanwhile is ended too.
    let cancelled = p.users[a]
        .client
        .watch("sip:carol@contoso.com", now)
        .expect("asked");
    p.users[a].client.unwatch("sip:carol@contoso.com", now);
    p.flush();
    assert_eq!(
        watch_outcome(&p, a, cancelled),
        Err(ocs_core::Error::Cancelled)
    );
    assert!(watched(&p).is_empty(), "{:?}", watched(&p));
    // Still waiting when the session ends: stopped.
    let now = p.now;
    let last = p.users[a]
        .client
        .watch("sip:dave@contoso.com", now)
        .expect("asked");
    p.users[a].client.sign_out(now);
    // Signing out: new commands are refused.
    assert_eq!(
        p.users[a].client.watch("sip:erin@contoso.com", now),
        Err(ocs_core::Error::Stopped)
    );
    assert_eq!(
        p.users[a].client.set_status(State::Busy, None, now),
        Err(ocs_core::Error::Stopped)
    );
    p.until(a, S * 10, |e| *e == ClientEvent::Stopped);
    // Sign-out ends every watch still waiting for the server.
    assert_eq!(watch_outcome(&p, a, last), Err(ocs_core::Error::Stopped));
}

#[test]
fn best_effort_notifications_leave_no_transaction_behind() {
    // A BENOTIFY is never answered; each one used to leave a server
    // transaction for the life of the connection (about 1 KB), and with the
    // 4,096-transaction cap a long session would have started refusing
    // the server's requests.
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
    let states = [State::Busy, State::Online, State::Away];
    for i in 0..60 {
        let now = p.now;
        p.users[b]
            .client
            .set_status(states[i % 3], None, now)
            .expect("publish");
        p.flush();
    }
    let benotifies = p.users[a]
        .received
        .iter()
        .filter(|m| m.method().is_some_and(|x| x.as_str() == "BENOTIFY"))
        .count();
    assert!(benotifies >= 50, "{benotifies} BENOTIFYs");
    let live = p.users[a].client.endpoint().live_transactions();
    assert!(
        live <= 2,
        "{live} transactions alive after {benotifies} BENOTIFYs"
    );
}
