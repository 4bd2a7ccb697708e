//! RFC 3261 §17 transactions on a simulated clock.

use std::time::{Duration, Instant};

use ocs_core::sip::{HeaderName, Message, Method, builder};
use ocs_core::transaction::{
    ClientEvent, ClientState, ClientTransaction, Incoming, Reliability, ServerEvent, ServerState,
    ServerTransaction, TimerConfig, Transactions, TxEvent, TxFailure,
};

/// An arbitrary origin for the simulated clock; nothing waits on it.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn request(method: Method, branch: &str) -> Message {
    builder::request(&builder::RequestSpec {
        method,
        uri: "sip:bob@example.com",
        from: "<sip:alice@example.com>",
        from_tag: "a1",
        from_params: None,
        to: "<sip:bob@example.com>",
        to_tag: None,
        call_id: "call-1",
        cseq: 1,
        transport: "UDP",
        sent_by: "192.0.2.1:5060",
        branch,
    })
}

fn reply(req: &Message, code: u16) -> Message {
    builder::response(req, code, None, Some("b1")).expect("response")
}

/// Runs a client transaction to `end`, returning the offsets (ms) of every
/// transmission and the events seen.
fn run_client(
    tx: &mut ClientTransaction,
    start: Instant,
    end: Duration,
) -> (Vec<u128>, Vec<ClientEvent>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut now = start;
    loop {
        while let Some(e) = tx.poll_event() {
            if let ClientEvent::Transmit(_) = e {
                sent.push((now - start).as_millis());
            } else {
                events.push(e);
            }
        }
        match tx.poll_timeout() {
            Some(at) if at - start <= end => {
                now = at;
                tx.handle_timeout(now);
            }
            _ => break,
        }
    }
    (sent, events)
}

#[test]
fn non_invite_udp_retransmits_e_and_times_out_with_f() {
    let start = t0();
    let mut tx = ClientTransaction::new(
        request(Method::Options, "z9hG4bK1"),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    let (sent, events) = run_client(&mut tx, start, Duration::from_secs(60));
    // E doubles from T1 and caps at T2 = 4 s; F fires at 64*T1 = 32 s.
    assert_eq!(
        sent,
        vec![
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(
        events,
        vec![
            ClientEvent::Failed(TxFailure::Timeout),
            ClientEvent::Terminated
        ]
    );
    assert_eq!(tx.state(), ClientState::Terminated);
}

#[test]
fn non_invite_tcp_never_retransmits() {
    let start = t0();
    let mut tx = ClientTransaction::new(
        request(Method::Options, "z9hG4bK1"),
        Reliability::Reliable,
        TimerConfig::default(),
        start,
    );
    let (sent, events) = run_client(&mut tx, start, Duration::from_secs(60));
    assert_eq!(sent, vec![0]);
    assert_eq!(events[0], ClientEvent::Failed(TxFailure::Timeout));
}

#[test]
fn invite_udp_timer_a_doubles_until_b() {
    let start = t0();
    let mut tx = ClientTransaction::new(
        request(Method::Invite, "z9hG4bK2"),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    let (sent, events) = run_client(&mut tx, start, Duration::from_secs(60));
    assert_eq!(sent, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(events[0], ClientEvent::Failed(TxFailure::Timeout));
}

#[test]
fn non_invite_proceeding_uses_t2_and_k_after_final() {
    let start = t0();
    let req = request(Method::Message, "z9hG4bK3");
    let mut tx = ClientTransaction::new(
        req.clone(),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    tx.handle_response(reply(&req, 100), start + Duration::from_millis(100));
    assert_eq!(tx.state(), ClientState::Proceeding);
    let (sent, events) = run_client(&mut tx, start, Duration::from_millis(9000));
    assert!(matches!(&events[0], ClientEvent::Response(r) if r.status() == Some(100)));
    // The pending E at 500 ms fires, then every T2.
    assert_eq!(sent, vec![0, 500, 4500, 8500]);
    let at = start + Duration::from_secs(9);
    tx.handle_response(reply(&req, 200), at);
    assert_eq!(tx.state(), ClientState::Completed);
    // A retransmitted 200 is absorbed.
    tx.handle_response(reply(&req, 200), at);
    let mut responses = 0;
    while let Some(e) = tx.poll_event() {
        if let ClientEvent::Response(r) = e {
            responses += 1;
            assert_eq!(r.status(), Some(200));
        }
    }
    assert_eq!(responses, 1, "one 200; the retransmission is absorbed");
    assert_eq!(
        tx.poll_timeout(),
        Some(at + Duration::from_secs(5)),
        "Timer K = T4"
    );
    tx.handle_timeout(at + Duration::from_secs(5));
    assert!(tx.is_terminated());
}

#[test]
fn invite_non_2xx_is_acked_and_d_absorbs_retransmissions() {
    let start = t0();
    let mut req = request(Method::Invite, "z9hG4bK4");
    req.push_header(HeaderName::Route, "<sip:proxy.example.com;lr>");
    let mut tx = ClientTransaction::new(
        req.clone(),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    tx.poll_event();
    tx.handle_response(reply(&req, 180), start);
    tx.handle_response(reply(&req, 486), start);
    let mut acks = Vec::new();
    let mut finals = 0;
    while let Some(e) = tx.poll_event() {
        match e {
            ClientEvent::Ack(m) => acks.push(m),
            ClientEvent::Response(r) if r.status() == Some(486) => finals += 1,
            _ => {}
        }
    }
    assert_eq!(finals, 1);
    let ack = &acks[0];
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), Some("sip:bob@example.com"));
    assert_eq!(ack.top_via().expect("via").branch(), Some("z9hG4bK4"));
    assert_eq!(ack.to().expect("to").tag(), Some("b1"));
    assert_eq!(ack.cseq().expect("cseq").method, "ACK");
    assert_eq!(
        ack.header(HeaderName::Route),
        Some("<sip:proxy.example.com;lr>")
    );
    // The 486 again: the owner never said it sent the ACK, so it is asked
    // for again; once sent, the same bytes go out again. No second
    // response to the TU either way.
    tx.handle_response(reply(&req, 486), start + Duration::from_millis(500));
    assert!(matches!(tx.poll_event(), Some(ClientEvent::Ack(_))));
    let wire = ack.to_bytes();
    tx.ack_sent(wire.clone());
    tx.handle_response(reply(&req, 486), start + Duration::from_secs(1));
    assert_eq!(tx.poll_event(), Some(ClientEvent::Transmit(wire)));
    assert_eq!(tx.poll_event(), None);
    assert_eq!(
        tx.poll_timeout(),
        Some(start + Duration::from_secs(32)),
        "Timer D"
    );
    tx.handle_timeout(start + Duration::from_secs(32));
    assert!(tx.is_terminated());
}

#[test]
fn invite_2xx_terminates_for_the_tu_to_ack() {
    let start = t0();
    let req = request(Method::Invite, "z9hG4bK5");
    let mut tx = ClientTransaction::new(
        req.clone(),
        Reliability::Reliable,
        TimerConfig::default(),
        start,
    );
    tx.handle_response(reply(&req, 200), start);
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_sends_100_then_g_retransmits_until_ack_then_i() {
    let start = t0();
    let req = request(Method::Invite, "z9hG4bK6");
    let mut tx = ServerTransaction::new(
        req.clone(),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    assert_eq!(tx.poll_timeout(), Some(start + Duration::from_millis(200)));
    tx.handle_timeout(start + Duration::from_millis(200));
    let ServerEvent::Transmit(t) = tx.poll_event().expect("100") else {
        panic!()
    };
    assert_eq!(Message::parse(&t).expect("parses").status(), Some(100));
    let at = start + Duration::from_secs(1);
    assert!(tx.send_response(&reply(&req, 486), at));
    assert_eq!(tx.state(), ServerState::Completed);
    tx.poll_event();
    // G at T1, 2·T1, then ACK.
    tx.handle_timeout(at + Duration::from_millis(500));
    tx.handle_timeout(at + Duration::from_millis(1500));
    let n = std::iter::from_fn(|| tx.poll_event())
        .filter(|e| matches!(e, ServerEvent::Transmit(_)))
        .count();
    assert_eq!(n, 2);
    let mut ack = req.clone();
    ack.set_request_uri("sip:bob@example.com");
    let ack = {
        let text = String::from_utf8(ack.to_bytes())
            .expect("utf8")
            .replacen("INVITE sip", "ACK sip", 1)
            .replace("1 INVITE", "1 ACK");
        Message::parse(text.as_bytes()).expect("ack")
    };
    tx.handle_request(&ack, at + Duration::from_secs(2));
    assert_eq!(tx.state(), ServerState::Confirmed);
    assert_eq!(tx.poll_event(), Some(ServerEvent::Acknowledged));
    tx.handle_timeout(at + Duration::from_secs(7));
    assert!(tx.is_terminated(), "Timer I = T4");
    // Responses after the final are refused.
    assert!(!tx.send_response(&reply(&req, 200), at + Duration::from_secs(8)));
}

#[test]
fn server_invite_without_ack_fails_with_h() {
    let start = t0();
    let req = request(Method::Invite, "z9hG4bK7");
    let mut tx = ServerTransaction::new(
        req.clone(),
        Reliability::Reliable,
        TimerConfig::default(),
        start,
    );
    tx.send_response(&reply(&req, 603), start);
    tx.handle_timeout(start + Duration::from_secs(32));
    let events: Vec<_> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert!(events.contains(&ServerEvent::Failed(TxFailure::NoAck)));
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_2xx_is_retransmitted_until_the_ack() {
    let start = t0();
    let req = request(Method::Invite, "z9hG4bK8");
    let mut tx = ServerTransaction::new(
        req.clone(),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    tx.send_response(&reply(&req, 200), start);
    assert_eq!(tx.state(), ServerState::Accepted);
    for ms in [500, 1500, 3500, 7500] {
        tx.handle_timeout(start + Duration::from_millis(ms));
    }
    let n = std::iter::from_fn(|| tx.poll_event())
        .filter(|e| matches!(e, ServerEvent::Transmit(_)))
        .count();
    assert_eq!(
        n, 5,
        "the 2xx and four retransmissions (T1 doubling, capped at T2)"
    );
    tx.handle_2xx_ack();
    assert!(tx.is_terminated());
}

#[test]
fn server_non_invite_replays_the_final_and_j_ends_it() {
    let start = t0();
    let req = request(Method::Message, "z9hG4bK9");
    let mut tx = ServerTransaction::new(
        req.clone(),
        Reliability::Unreliable,
        TimerConfig::default(),
        start,
    );
    tx.handle_request(&req, start);
    assert_eq!(tx.poll_event(), None, "nothing to replay in Trying");
    tx.send_response(&reply(&req, 200), start);
    tx.poll_event();
    tx.handle_request(&req, start + Duration::from_secs(1));
    assert!(matches!(tx.poll_event(), Some(ServerEvent::Transmit(_))));
    tx.handle_timeout(start + Duration::from_secs(32));
    assert!(tx.is_terminated(), "Timer J = 64*T1");
}

/// Two tables over a link that loses the first `lose` messages in each
/// direction: the request is answered once, retransmissions are absorbed.
#[test]
fn pair_over_a_lossy_link() {
    for lose in 0..4 {
        let start = t0();
        let mut alice = Transactions::new(TimerConfig::default());
        let mut bob = Transactions::new(TimerConfig::default());
        let req = request(Method::Message, "z9hG4bKpair");
        let cid = alice
            .send_request(req, Reliability::Unreliable, start)
            .expect("sent");
        let (mut a_lost, mut b_lost) = (0, 0);
        let mut now = start;
        let mut delivered = 0;
        let mut answered = 0;
        let mut final_status = None;
        for _ in 0..200 {
            while let Some(e) = alice.poll_event() {
                match e {
                    TxEvent::Transmit { bytes, .. } => {
                        if a_lost < lose {
                            a_lost += 1;
                            continue;
                        }
                        let m = Message::parse(&bytes).expect("parses");
                        match bob
                            .handle_message(m, Reliability::Unreliable, now)
                            .expect("routes")
                        {
                            Incoming::Request { id, request } => {
                                delivered += 1;
                                let r = builder::response(&request, 200, None, Some("b"))
                                    .expect("resp");
                                assert!(bob.send_response(id, &r, now));
                            }
                            Incoming::Absorbed => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    TxEvent::Response { id, response } => {
                        assert_eq!(id, cid);
                        answered += 1;
                        final_status = response.status();
                    }
                    _ => {}
                }
            }
            while let Some(e) = bob.poll_event() {
                if let TxEvent::Transmit { bytes, .. } = e {
                    if b_lost < lose {
                        b_lost += 1;
                        continue;
                    }
                    let m = Message::parse(&bytes).expect("parses");
                    let _ = alice
                        .handle_message(m, Reliability::Unreliable, now)
                        .expect("routes");
                }
            }
            let next = [alice.poll_timeout(), bob.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) => {
                    now = at;
                    alice.handle_timeout(now);
                    bob.handle_timeout(now);
                }
                None => break,
            }
        }
        assert_eq!(delivered, 1, "lose={lose}: the TU saw the request once");
        assert_eq!(answered, 1, "lose={lose}: one final response");
        assert_eq!(final_status, Some(200));
        assert!(
            alice.is_empty() && bob.is_empty(),
            "lose={lose}: all transactions ended"
        );
    }
}

#[test]
fn table_routes_acks_strays_and_cancels() {
    let start = t0();
    let mut t = Transactions::new(TimerConfig::default());
    let invite = request(Method::Invite, "z9hG4bKinv");
    let Incoming::Request { id, .. } = t
        .handle_message(invite.clone(), Reliability::Reliable, start)
        .expect("ok")
    else {
        panic!()
    };
    // A retransmitted INVITE is absorbed.
    assert!(matches!(
        t.handle_message(invite.clone(), Reliability::Reliable, start)
            .expect("ok"),
        Incoming::Absorbed
    ));
    // CANCEL has the same branch and finds its INVITE.
    let cancel_text = String::from_utf8(invite.to_bytes())
        .expect("utf8")
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("1 INVITE", "1 CANCEL");
    let cancel = Message::parse(cancel_text.as_bytes()).expect("cancel");
    assert_eq!(t.invite_for_cancel(&cancel), Some(id));
    // After a 2xx, the ACK (new branch) goes to the dialog layer.
    t.send_response(id, &reply(&invite, 200), start);
    let ack_text = String::from_utf8(invite.to_bytes())
        .expect("utf8")
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("1 INVITE", "1 ACK")
        .replace("z9hG4bKinv", "z9hG4bKack");
    let ack = Message::parse(ack_text.as_bytes()).expect("ack");
    assert!(matches!(
        t.handle_message(ack, Reliability::Reliable, start)
            .expect("ok"),
        Incoming::Ack(_)
    ));
    // A response nobody asked for is stray.
    assert!(matches!(
        t.handle_message(reply(&invite, 200), Reliability::Reliable, start)
            .expect("ok"),
        Incoming::StrayResponse(_)
    ));
}
