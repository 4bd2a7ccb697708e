//! A host security mechanism plugged in through `auth::mechanism`: the
//! registration runs its token exchange and then signs and verifies with
//! it, as it does with the built-in NTLM.

use std::time::{Duration, Instant, SystemTime};

use ocs_core::auth::mechanism::{Authenticator, MechanismContext};
use ocs_core::auth::sipae::message_signature_buffer;
use ocs_core::discovery::{Dialect, Transport};
use ocs_core::error::Error;
use ocs_core::register::{LocalTransport, RegisterConfig, Registration, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sip::{HeaderName, Message, builder};

/// A toy mechanism: the token is `hello`, signatures are a keyed checksum
/// that differs by direction (enough to tell real from forged).
struct Toy;
struct ToyCtx;

fn checksum(key: u8, buf: &[u8]) -> Vec<u8> {
    let mut acc = [key; 8];
    for (i, b) in buf.iter().enumerate() {
        acc[i % 8] = acc[i % 8].wrapping_mul(31).wrapping_add(*b);
    }
    acc.to_vec()
}

impl Authenticator for Toy {
    fn scheme(&self) -> &str {
        "X-Toy"
    }
    fn start(&mut self, targetname: &str) -> Result<Box<dyn MechanismContext>, String> {
        assert_eq!(targetname, "sip/pool.contoso.com");
        Ok(Box::new(ToyCtx))
    }
}

impl MechanismContext for ToyCtx {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        assert!(input.is_none(), "one round");
        Ok(b"hello".to_vec())
    }
    fn sign(&mut self, buffer: &[u8]) -> Result<Vec<u8>, String> {
        Ok(checksum(1, buffer))
    }
    fn verify(&self, buffer: &[u8], signature: &[u8]) -> Result<(), String> {
        if checksum(2, buffer) == signature {
            Ok(())
        } else {
            Err("checksum mismatch".into())
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The server's signed 200 OK, as a scripted peer builds it.
fn signed_ok(req: &Message, forge: bool) -> Message {
    let mut ok = builder::response(req, 200, None, Some("srv")).expect("200");
    ok.insert_header(0, HeaderName::Expires, "3600");
    let buf = message_signature_buffer(
        &ok,
        "X-Toy",
        "abcd0123",
        "1",
        "SIP Communications Service",
        "sip/pool.contoso.com",
        4,
    )
    .expect("buffer");
    let mut sig = checksum(2, buf.as_bytes());
    if forge {
        sig[0] ^= 1;
    }
    ok.insert_header(
        0,
        HeaderName::AuthenticationInfo,
        format!(
            "X-Toy rspauth=\"{}\", srand=\"abcd0123\", snum=\"1\", opaque=\"0F0F\", qop=\"auth\", targetname=\"sip/pool.contoso.com\", realm=\"SIP Communications Service\"",
            hex(&sig)
        ),
    );
    ok
}

fn run(forge: bool) -> (Registration, Vec<Message>) {
    let now = t0();
    let cfg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "c8ca638a15");
    let mut reg = Registration::new(
        cfg,
        None,
        Rng::from_seed(5),
        [1; 32],
        now,
        SystemTime::UNIX_EPOCH,
    );
    reg.set_authenticator(Box::new(Toy));
    reg.set_local(
        LocalTransport {
            transport: Transport::Tls,
            addr: "192.0.2.1:5061".parse().expect("addr"),
        },
        now,
    );
    reg.register(now).expect("register");
    let mut sent = Vec::new();
    let first = reg.poll_request().expect("REGISTER");
    sent.push(first.clone());
    let mut ch = builder::response(&first, 401, None, Some("srv")).expect("401");
    ch.insert_header(
        0,
        HeaderName::WwwAuthenticate,
        "NTLM realm=\"SIP Communications Service\", targetname=\"pool.contoso.com\", version=4",
    );
    ch.insert_header(0, HeaderName::WwwAuthenticate, "X-Toy realm=\"SIP Communications Service\", targetname=\"sip/pool.contoso.com\", version=4");
    reg.handle_response(&ch, now);
    let second = reg.poll_request().expect("REGISTER with token");
    sent.push(second.clone());
    reg.handle_response(&signed_ok(&second, forge), now);
    (reg, sent)
}

#[test]
fn host_mechanism_is_preferred_and_signs_afterwards() {
    let (mut reg, sent) = run(false);
    let auth = sent[1]
        .header(HeaderName::Authorization)
        .expect("Authorization");
    assert!(
        auth.starts_with("X-Toy ") && auth.contains("gssapi-data=\"aGVsbG8=\""),
        "{auth}"
    );
    let Some(RegistrationEvent::Registered {
        auth_scheme,
        auth_version,
        ..
    }) = reg.poll_event()
    else {
        panic!("not registered")
    };
    assert_eq!((auth_scheme.as_str(), auth_version), ("X-Toy", 4));
    // The refresh is signed by the mechanism.
    reg.handle_timeout(t0() + Duration::from_secs(3600));
    let refresh = reg.poll_request().expect("refresh");
    let a = refresh.header(HeaderName::Authorization).expect("signed");
    assert!(
        a.starts_with("X-Toy ") && a.contains("opaque=\"0F0F\"") && a.contains("response="),
        "{a}"
    );
}

#[test]
fn a_forged_server_signature_fails_the_sign_in() {
    let (mut reg, _) = run(true);
    match reg.poll_event() {
        Some(RegistrationEvent::Failed(Error::PeerMisbehaved { detail: m, .. })) => {
            assert!(m.contains("signature"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
