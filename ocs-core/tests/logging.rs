//! The library's `tracing` output: a sign-in, a publication with a note,
//! an IM and a sign-out against the embedded server, captured at TRACE by
//! a test subscriber. The steps and stable event ids are there; passwords,
//! NTLM tokens, signatures, message text and notes are not.
#![cfg(feature = "tracing")]

mod common;
use common::pair::Pair;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocs_core::client::ClientEvent;
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::State;
use ocs_core::register::RegistrationEvent;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

const S: Duration = Duration::from_secs(1);

#[test]
fn a_session_logs_its_steps_and_ids_and_no_secrets() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(out.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut p = Pair::new(&["alice", "bob"]);
        let (a, b) = (p.add(Pair::config("alice")), p.add(Pair::config("bob")));
        for u in [a, b] {
            p.until(u, S, |e| {
                matches!(
                    e,
                    ClientEvent::Registration(RegistrationEvent::Registered { .. })
                )
            });
        }
        let now = p.now;
        p.users[a]
            .client
            .set_status(State::Busy, Some("secret note text"), now)
            .expect("publish");
        let id = p.users[a]
            .client
            .send_im("sip:bob@contoso.com", "secret message text", now)
            .expect("send");
        p.flush();
        p.until(a, S, |e| *e == ClientEvent::Im(ImEvent::Delivered { id }));
        let now = p.now;
        p.users[a].client.sign_out(now);
        p.flush();
        p.until(a, S, |e| *e == ClientEvent::Stopped);
    });
    let log = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");

    for step in [
        // Each leg of the NTLM sign-in, the scheme, the outcome.
        "REGISTER without credentials",
        "challenge offers NTLM version 4",
        "REGISTER NTLM, first (empty) token",
        "REGISTER NTLM, AUTHENTICATE token and first signature",
        "signed in (NTLM version 4)",
        // Stable ids and severities as fields; the client's span.
        "event_id=1100",
        "severity=Info",
        "ocs_client{aor=sip:alice@contoso.com epid=",
        "ocs_client{aor=sip:bob@contoso.com epid=",
        // Presence, IM and sign-out, described without their content.
        "published #1: busy",
        "IM 1 delivered",
        "IM received from sip:alice@contoso.com (19 characters)",
        "REGISTER signed (NTLM), Expires: 0 (sign-out)",
        "signed out",
    ] {
        assert!(log.contains(step), "missing {step:?} in\n{log}");
    }
    for secret in [
        "alicepw",
        "bobpw",
        "secret note text",
        "secret message text",
        "gssapi-data",
        "crand",
        "response=",
        "rspauth",
        // Base64 of "NTLMSSP": any NTLM token.
        "TlRMTVNT",
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the log:\n{log}"
        );
    }
}
