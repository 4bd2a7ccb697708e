//! The endpoint and its link to the server.
//!
//! Keep-alives: CRLF on streams at the registrar's interval (60 s until it
//! names one), and on UDP every `udp_keep_alive` (15 s by default, as
//! PJSIP): the datagram that lets a client notice a server gone away (ICMP
//! "port unreachable" on its connected socket; see tests/kamailio_restart.rs).
//!
//! A lost connection takes its requests with it: nothing goes out again on
//! the next one (found by tests/kamailio_loss.rs, where a retransmitted
//! MESSAGE reached a restarted Kamailio and bob saw an IM twice).

use std::time::{Duration, Instant, SystemTime};

use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::EndpointEvent;
use ocs_core::endpoint::{Endpoint, EndpointConfig};
use ocs_core::register::{LocalTransport, RegisterConfig};
use ocs_core::sip::{Message, Method, builder};

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

/// A standard-dialect endpoint over `transport`, registered (the REGISTER
/// answered 200, Expires 3600), with its keep-alive settings from `edit`.
fn registered(transport: Transport, edit: impl FnOnce(&mut EndpointConfig)) -> (Endpoint, Instant) {
    let now = t0();
    let reg = RegisterConfig::new("sip:alice@example.org", Dialect::Standard, "0123456789");
    let mut cfg = EndpointConfig::new(reg, None);
    edit(&mut cfg);
    let mut ep = Endpoint::new(cfg, 1, [1; 32], now, SystemTime::UNIX_EPOCH);
    ep.connected(
        LocalTransport {
            transport,
            addr: "192.0.2.1:5060".parse().expect("addr"),
        },
        now,
    );
    ep.register(now).expect("register");
    let req = Message::parse(&ep.poll_transmit().expect("REGISTER")).expect("parses");
    let mut ok = builder::response(&req, 200, None, Some("srv")).expect("200");
    ok.insert_header(ok.header_count() - 1, "Expires", "3600");
    ep.handle_bytes(&ok.to_bytes(), now);
    while ep.poll_event().is_some() {}
    assert!(ep.registration().is_registered());
    (ep, now)
}

/// The times (since `start`) of the keep-alives sent within `span`,
/// running every timer when it is due.
fn keep_alives(ep: &mut Endpoint, start: Instant, span: Duration) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut now = start;
    while let Some(at) = ep.poll_timeout() {
        if at > start + span {
            break;
        }
        now = now.max(at);
        ep.handle_timeout(now);
        while let Some(bytes) = ep.poll_transmit() {
            if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                out.push(now - start);
            }
        }
        while ep.poll_event().is_some() {}
    }
    out
}

#[test]
fn udp_sends_a_crlf_datagram_every_15_s_by_default() {
    let (mut ep, start) = registered(Transport::Udp, |_| {});
    let s = Duration::from_secs;
    assert_eq!(
        keep_alives(&mut ep, start, s(61)),
        [s(15), s(30), s(45), s(60)]
    );
}

#[test]
fn udp_keep_alive_follows_its_setting_and_can_be_off() {
    let (mut ep, start) = registered(Transport::Udp, |c| {
        c.udp_keep_alive = Some(Duration::from_millis(500));
    });
    let ms = Duration::from_millis;
    assert_eq!(
        keep_alives(&mut ep, start, ms(1600)),
        [ms(500), ms(1000), ms(1500)]
    );
    let (mut ep, start) = registered(Transport::Udp, |c| c.udp_keep_alive = None);
    assert!(keep_alives(&mut ep, start, Duration::from_secs(600)).is_empty());
}

#[test]
fn streams_keep_their_interval_unaffected_by_the_udp_setting() {
    let (mut ep, start) = registered(Transport::Tcp, |c| {
        c.udp_keep_alive = Some(Duration::from_secs(1));
    });
    let s = Duration::from_secs;
    assert_eq!(keep_alives(&mut ep, start, s(130)), [s(60), s(120)]);
}

#[test]
fn a_request_in_flight_when_the_connection_drops_never_goes_out_again() {
    let (mut ep, start) = registered(Transport::Udp, |c| c.udp_keep_alive = None);
    let msg = builder::request(&builder::RequestSpec {
        method: Method::Message,
        uri: "sip:bob@example.org",
        transport: "UDP",
        sent_by: "192.0.2.1:5060",
        branch: "z9hG4bKx",
        from: "<sip:alice@example.org>",
        from_tag: "a1",
        from_params: None,
        to: "<sip:bob@example.org>",
        to_tag: None,
        call_id: "c1",
        cseq: 1,
    });
    ep.send_request(msg, start).expect("sent");
    let first = ep.poll_transmit().expect("the MESSAGE");
    assert!(first.starts_with(b"MESSAGE "));
    // Unanswered; the connection drops and a new one comes up.
    let t = start + Duration::from_millis(100);
    ep.handle_connection_lost(t);
    ep.connected(
        LocalTransport {
            transport: Transport::Udp,
            addr: "192.0.2.1:5062".parse().expect("addr"),
        },
        t,
    );
    // Run every timer for a minute (Timer E would resend it at 0.5 s, 1 s,
    // 2 s, ... until Timer F at 32 s): the REGISTER goes out again, the
    // MESSAGE never does, and no event about it arrives either.
    let mut now = t;
    let mut out = Vec::new();
    while let Some(at) = ep.poll_timeout() {
        if at > start + Duration::from_secs(60) {
            break;
        }
        now = now.max(at);
        ep.handle_timeout(now);
        while let Some(b) = ep.poll_transmit() {
            out.push(String::from_utf8_lossy(&b).into_owned());
        }
        while let Some(e) = ep.poll_event() {
            assert!(
                !matches!(
                    e,
                    EndpointEvent::Response { .. } | EndpointEvent::RequestFailed { .. }
                ),
                "{e:?}"
            );
        }
    }
    assert!(out.iter().any(|m| m.starts_with("REGISTER ")), "{out:?}");
    assert!(!out.iter().any(|m| m.starts_with("MESSAGE ")), "{out:?}");
}
