//! Properties of the certificate provisioning answer reader: any input is
//! refused or read without a panic, and a certificate put in an answer
//! (base64 in lines, as services wrap it) reads back unchanged.

use base64::Engine;
use ocs_core::certprov::parse_response;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_are_refused_or_read(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_response(&data);
    }

    #[test]
    fn any_text_in_the_body_is_refused_or_read(s in "\\PC{0,200}") {
        let doc = format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{s}</s:Body></s:Envelope>"
        );
        let _ = parse_response(doc.as_bytes());
    }

    #[test]
    fn a_certificate_reads_back(cert in proptest::collection::vec(any::<u8>(), 1..2048), width in 4usize..120) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
        let wrapped: Vec<&str> = b64
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        let doc = format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetAndPublishCertResponse><RequestSecurityTokenResponse><RequestedSecurityToken><BinarySecurityToken>{}</BinarySecurityToken></RequestedSecurityToken></RequestSecurityTokenResponse></GetAndPublishCertResponse></s:Body></s:Envelope>",
            wrapped.join("\r\n")
        );
        prop_assert_eq!(parse_response(doc.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?, cert);
    }
}
