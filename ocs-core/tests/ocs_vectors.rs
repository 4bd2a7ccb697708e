//! The captured OC 2007 R2 <-> OCS 2007 R2 vectors (PROTOCOL.md T1-T3, T5,
//! T20) reproduced by the library's own builders.

use ocs_core::auth::authheader::{FieldOrder, Scheme, SignatureParams, SipAuthorization};
use ocs_core::auth::epid::sip_instance_uuid;
use ocs_core::auth::ntlm::{self, AuthenticateParams, ChallengeMessage, Role, SecurityContext};
use ocs_core::auth::sipae::message_signature_buffer;
use ocs_core::discovery::{Dialect, Transport};
use ocs_core::register::{LocalTransport, OC_USER_AGENT, RegisterParams, build_register};
use ocs_core::sip::HeaderName;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/ocs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("vector")
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let v: Vec<u8> = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    v.try_into().expect("length")
}

/// T1 byte for byte: the REGISTER builder in the OCS dialect, the NTLM
/// AUTHENTICATE from the T3 inputs, and the first MS-SIPAE signature.
#[test]
fn t1_register_is_reproduced_byte_for_byte() {
    let keys: serde_like::Keys = serde_like::keys();
    let challenge = ChallengeMessage::from_base64(&keys.challenge_b64).expect("challenge");
    let auth = ntlm::build_authenticate(
        &challenge,
        &AuthenticateParams {
            user: "User",
            domain: "COSMO",
            password: "Pa$$word",
            workstation: "COSMO-OCS-R2",
            flags: ntlm::flags::OC_CONNECTIONLESS,
            version: ntlm::VERSION_5_2_3790,
            client_challenge: unhex("D6AE875CB0FDAA41"),
            timestamp: u64::from_le_bytes(unhex("59519A1727B9CA01")),
            random_session_key: keys.random_session_key,
        },
    )
    .expect("AUTHENTICATE");
    let gssapi = auth.to_base64();
    let params = |auth: Option<(HeaderName, String)>| RegisterParams {
        dialect: Dialect::Ocs,
        aor: "sip:user@cosmo.local",
        local: LocalTransport {
            transport: Transport::Tls,
            addr: "192.168.172.6:12723".parse().expect("addr"),
        },
        tag: "3e49177a52",
        epid: "c8ca638a15",
        ms_opaque: "fad3dfab32",
        call_id: "4037df9284354df39065195bd57a4b14",
        cseq: 3,
        // The capture has no branch on its Via.
        branch: None,
        user_agent: OC_USER_AGENT,
        expires: None,
        auth,
    };
    let unsigned = build_register(&params(None));
    let buffer = message_signature_buffer(
        &unsigned,
        "NTLM",
        "13317733",
        "1",
        "SIP Communications Service",
        "cosmo-ocs-r2.cosmo.local",
        4,
    )
    .expect("buffer");
    let ctx = SecurityContext::new(auth.keys.clone(), Role::Client);
    let response = ctx.sign_hex(buffer.as_bytes());
    let value = SipAuthorization {
        scheme: Scheme::Ntlm,
        realm: "SIP Communications Service",
        targetname: "cosmo-ocs-r2.cosmo.local",
        opaque: Some("2BDBAC9D"),
        gssapi_data: Some(&gssapi),
        version: Some(4),
        signature: Some(SignatureParams {
            crand: "13317733",
            cnum: 1,
            response: &response,
        }),
    }
    .to_header_value(FieldOrder::OfficeCommunicator);
    let msg = build_register(&params(Some((HeaderName::ProxyAuthorization, value))));
    assert_eq!(
        String::from_utf8(msg.to_bytes()).expect("utf8"),
        String::from_utf8(data("t1_register_request.sip")).expect("utf8")
    );
}

/// T5: every epid turns into its +sip.instance.
#[test]
fn t5_epid_to_instance() {
    let text = String::from_utf8(data("epid_instance.json")).expect("utf8");
    let mut n = 0;
    for chunk in text.split("\"epid\": \"").skip(1) {
        let epid = &chunk[..chunk.find('"').expect("quote")];
        let inst_start = chunk.find("\"instance\": \"").expect("instance") + 13;
        let inst = &chunk[inst_start..inst_start + 36];
        assert!(sip_instance_uuid(epid).eq_ignore_ascii_case(inst), "{epid}");
        n += 1;
    }
    assert_eq!(n, 4);
}

/// T20: the RFC 2617 Digest example as a SIP client answers it.
#[test]
fn t20_digest() {
    let text = String::from_utf8(data("digest_rfc2617.json")).expect("utf8");
    let want = text
        .split("\"authorization\": \"")
        .nth(1)
        .and_then(|s| s.rsplit_once("\"\n"))
        .map(|(s, _)| s.replace("\\\"", "\""))
        .expect("authorization");
    let ch = ocs_core::auth::digest::DigestChallenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .expect("challenge");
    let a = ch
        .respond(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        )
        .expect("respond");
    assert_eq!(
        format!(
            "Digest {}",
            a.to_header_value().trim_start_matches("Digest ")
        ),
        want
    );
}

/// Reads the T3 inputs from the JSON file without a JSON dependency.
mod serde_like {
    pub struct Keys {
        pub challenge_b64: String,
        pub random_session_key: [u8; 16],
    }

    fn field(text: &str, name: &str) -> String {
        let start = text.find(&format!("\"{name}\": \"")).expect(name) + name.len() + 5;
        text[start..start + text[start..].find('"').expect("end")].to_owned()
    }

    pub fn keys() -> Keys {
        let text = String::from_utf8(super::data("ntlm_keys_t1_t2.json")).expect("utf8");
        // The random session key is what RC4(KXKEY, ESK) undoes; the
        // exported session key *is* the random session key with KEY_EXCH.
        Keys {
            challenge_b64: field(&text, "challenge_message_base64"),
            random_session_key: super::unhex(&field(&text, "exported_session_key")),
        }
    }
}
