//! Properties of the web-ticket messages: any input is refused or read
//! without a panic; a ticket the service issues reads back with what it
//! was issued with; presented with its proof key it verifies with that key
//! only, and any change to the signed timestamp breaks it; `xsd:dateTime`s
//! print and read back.

use ocs_core::webticket::{
    TicketRequest, WebTicketError, build_request, build_response, check_presented, parse_request,
    parse_response, proof_key, security_header,
};
use proptest::prelude::*;

const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";

fn envelope(security: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><wsse:Security xmlns:wsse="{WSSE}">{security}</wsse:Security></s:Header><s:Body></s:Body></s:Envelope>"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_refused_or_read(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_response(&data);
        let _ = parse_request(&data);
        let _ = check_presented(&data, |_| Some(vec![1; 32]));
        let _ = ocs_core::utc::parse(&String::from_utf8_lossy(&data));
    }

    #[test]
    fn an_issued_ticket_reads_back_and_verifies_with_its_key_only(
        id in "[A-Za-z0-9_-]{1,40}",
        user in "[a-z]{1,12}",
        client in proptest::collection::vec(any::<u8>(), 32),
        server in proptest::collection::vec(any::<u8>(), 32),
        other in proptest::collection::vec(any::<u8>(), 32),
        secs in 0u64..4_000_000_000,
        flip in 0usize..19,
    ) {
        let uri = format!("sip:{user}@contoso.com");
        let req = build_request(&TicketRequest {
            to: "https://pool.contoso.com/WebTicket/WebTicketService.svc",
            applies_to: "https://pool.contoso.com/CertProv/CertProvisioningService.svc",
            sip_uri: &uri,
            entropy: &client,
            message_id: "uuid:x",
        });
        let asked = parse_request(req.as_bytes()).expect("request");
        prop_assert_eq!(asked.sip_uri.as_deref(), Some(uri.as_str()));
        prop_assert_eq!(asked.entropy.as_deref(), Some(client.as_slice()));
        let t0 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let created = ocs_core::utc::format(t0);
        let expires = ocs_core::utc::format(t0 + std::time::Duration::from_secs(300));
        prop_assert_eq!(ocs_core::utc::parse(&created), Some(t0));
        let resp = build_response(&id, &uri, &server, &created, &expires);
        let t = parse_response(resp.as_bytes()).expect("answer");
        prop_assert_eq!(&t.assertion_id, &id);
        prop_assert_eq!(t.server_entropy.as_deref(), Some(server.as_slice()));
        let key = proof_key(&client, &server);
        let sec = security_header(&t, Some(&key), &created, &expires);
        let env = envelope(&sec);
        let p = check_presented(env.as_bytes(), |i| (i == id).then(|| key.clone())).expect("verifies");
        prop_assert_eq!(p.expires, expires.clone());
        if other != client {
            let wrong = proof_key(&other, &server);
            prop_assert_eq!(
                check_presented(env.as_bytes(), |_| Some(wrong.clone())),
                Err(WebTicketError::BadSignature)
            );
        }
        // One digit of the signed Created changed: no longer verifies.
        let at = env.find("<wsu:Created>").expect("created") + "<wsu:Created>".len() + flip;
        let mut b = env.into_bytes();
        if b[at].is_ascii_digit() {
            b[at] = if b[at] == b'9' { b'0' } else { b[at] + 1 };
            prop_assert_eq!(
                check_presented(&b, |_| Some(key.clone())),
                Err(WebTicketError::BadSignature)
            );
        }
    }
}
