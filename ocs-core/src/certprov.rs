//! Certificate provisioning ([MS-OCAUTHWS] Certificate Provisioning
//! Service), the messages only: the `GetAndPublishCert` request that asks a
//! Lync or Skype for Business pool to sign the user's PKCS#10 request, and
//! the reading of its answer. The certificate that comes back is the
//! user's TLS-DSK credential ([`crate::auth::tlsdsk`]).
//!
//! What is here follows the facts in the project's TLS-DSK notes (section
//! 7, from SIPE's requests; the schema sections of MS-OCAUTHWS were not
//! read): SOAP 1.1, WS-Addressing headers, the web ticket in
//! `wsse:Security`, a `wst:RequestSecurityToken` for an X.509v3 token with
//! the request as a `wsse:BinarySecurityToken` of value type `#PKCS10`
//! (base64 in 76-character lines), and the certificate in the answer's
//! `RequestedSecurityToken/BinarySecurityToken`. The `wsse:Security`
//! content comes from [`crate::webticket::security_header`].
//!
//! [MS-OCAUTHWS]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-ocauthws

use base64::Engine;

use crate::presence::error::{DocumentError, DocumentErrorKind};
use crate::presence::xml::{Doc, NodeId, decode, escape_into};

/// The SOAPAction of the request.
pub const SOAP_ACTION: &str = "http://schemas.microsoft.com/OCS/AuthWebServices/GetAndPublishCert";

/// The answer's size limit (a certificate and its chain: a few KB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// What a `GetAndPublishCert` request carries.
#[derive(Debug, Clone)]
pub struct CertRequest<'a> {
    /// The service address (`wsa:To`; the POST goes there).
    pub to: &'a str,
    /// `uuid:...` for `wsa:MessageID`.
    pub message_id: &'a str,
    /// The device's GUID (`{...}`), the same on every request of one install.
    pub device_id: &'a str,
    /// The user, `alice@contoso.com` (no `sip:`).
    pub entity: &'a str,
    /// The PKCS#10 request, DER.
    pub csr_der: &'a [u8],
    /// The `wst:RequestID` (any unique string).
    pub request_id: &'a str,
    /// What goes inside `wsse:Security` (the web ticket: a SAML assertion,
    /// or a timestamp, assertion and signature), already XML. It is put in
    /// as it is: it must come from our own web-ticket code, never from
    /// untrusted text.
    pub security_xml: &'a str,
}

/// The SOAP envelope of a `GetAndPublishCert` request.
pub fn build_request(r: &CertRequest<'_>) -> String {
    let e = |s: &str| {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(r.csr_der);
    // Lines of 76 characters joined by CRLF, as the service expects.
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">"#,
            "<s:Header>",
            r#"<wsa:Action s:mustUnderstand="1">{action}</wsa:Action>"#,
            r#"<wsa:MessageID>{message_id}</wsa:MessageID>"#,
            r#"<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>"#,
            r#"<wsa:To s:mustUnderstand="1">{to}</wsa:To>"#,
            "<wsse:Security>{security}</wsse:Security>",
            "</s:Header>",
            "<s:Body>",
            r#"<GetAndPublishCert xmlns="http://schemas.microsoft.com/OCS/AuthWebServices/" DeviceId="{device}" Entity="{entity}">"#,
            r#"<wst:RequestSecurityToken xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512/">"#,
            "<wst:TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</wst:TokenType>",
            "<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue</wst:RequestType>",
            r#"<wsse:BinarySecurityToken ValueType="http://schemas.microsoft.com/OCS/AuthWebServices.xsd#PKCS10" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary">{csr}</wsse:BinarySecurityToken>"#,
            r#"<wstep:RequestID xmlns:wstep="http://schemas.microsoft.com/windows/pki/2009/01/enrollment">{request_id}</wstep:RequestID>"#,
            "</wst:RequestSecurityToken>",
            "</GetAndPublishCert>",
            "</s:Body>",
            "</s:Envelope>"
        ),
        action = SOAP_ACTION,
        message_id = e(r.message_id),
        to = e(r.to),
        security = r.security_xml,
        device = e(r.device_id),
        entity = e(r.entity),
        csr = lines.join("\r\n"),
        request_id = e(r.request_id),
    )
}

/// Why an answer gave no certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertProvError {
    /// Not a readable answer (where, and what).
    #[error("certificate provisioning answer: {0}")]
    Document(#[from] DocumentError),
    /// A SOAP fault: the service refused (its reason).
    #[error("certificate provisioning refused: {0}")]
    Fault(String),
    /// The certificate is not base64.
    #[error("certificate provisioning answer: the certificate is not base64")]
    NotBase64,
    /// Over [`MAX_RESPONSE_BYTES`].
    #[error("certificate provisioning answer over {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// Reads a `GetAndPublishCert` answer: the user's certificate (DER).
pub fn parse_response(bytes: &[u8]) -> Result<Vec<u8>, CertProvError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(CertProvError::TooLarge);
    }
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let body = soap_body(&doc).map_err(|e| match e {
        SoapError::Document(d) => CertProvError::Document(d),
        SoapError::Fault(why) => CertProvError::Fault(why),
    })?;
    let token = find(
        &doc,
        body,
        &[
            "GetAndPublishCertResponse",
            "RequestSecurityTokenResponse",
            "RequestedSecurityToken",
            "BinarySecurityToken",
        ],
    )
    .ok_or_else(|| {
        doc.error_at(
            body,
            DocumentErrorKind::Missing("RequestedSecurityToken/BinarySecurityToken"),
        )
    })?;
    base64_text(&doc, token).ok_or(CertProvError::NotBase64)
}

/// An element's text as base64 (services wrap it in lines), decoded;
/// `None` when it is not base64. Shared with the web ticket messages.
pub(crate) fn base64_text(doc: &Doc<'_>, n: NodeId) -> Option<Vec<u8>> {
    let b64: String = doc
        .node(n)
        .trimmed()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()
}

/// Why a SOAP answer has no body to read.
#[derive(Debug)]
pub(crate) enum SoapError {
    /// Not a SOAP envelope with a body (where, and what).
    Document(DocumentError),
    /// A SOAP fault (its reason).
    Fault(String),
}

/// The `Body` of a SOAP 1.1/1.2 envelope, or its fault's reason (shared
/// by the certificate provisioning and web ticket answers).
pub(crate) fn soap_body(doc: &Doc<'_>) -> Result<NodeId, SoapError> {
    let root = doc.root();
    if doc.node(root).local() != "Envelope" {
        return Err(SoapError::Document(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "Envelope",
                found: doc.node(root).qname().to_owned(),
            },
        )));
    }
    let Some(body) = doc.child(root, "Body") else {
        return Err(SoapError::Document(
            doc.error_at(root, DocumentErrorKind::Missing("Body")),
        ));
    };
    if let Some(fault) = doc.child(body, "Fault") {
        let why = find(doc, fault, &["faultstring"])
            .or_else(|| find(doc, fault, &["Reason", "Text"]))
            .map(|n| doc.node(n).trimmed().to_owned())
            .unwrap_or_else(|| "a SOAP fault without a reason".to_owned());
        return Err(SoapError::Fault(why));
    }
    Ok(body)
}

/// Reads a `GetAndPublishCert` request (the service's side: the embedded
/// server): the `Entity` and the PKCS#10 request (DER).
pub fn parse_request(bytes: &[u8]) -> Result<(String, Vec<u8>), CertProvError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(CertProvError::TooLarge);
    }
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    let body = doc
        .child(root, "Body")
        .ok_or_else(|| doc.error_at(root, DocumentErrorKind::Missing("Body")))?;
    let call = find(&doc, body, &["GetAndPublishCert"])
        .ok_or_else(|| doc.error_at(body, DocumentErrorKind::Missing("GetAndPublishCert")))?;
    let entity = doc
        .node(call)
        .attr("Entity")
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| doc.error_at(call, DocumentErrorKind::Missing("Entity")))?;
    let token = find(&doc, call, &["BinarySecurityToken"])
        .ok_or_else(|| doc.error_at(call, DocumentErrorKind::Missing("BinarySecurityToken")))?;
    let csr = base64_text(&doc, token).ok_or(CertProvError::NotBase64)?;
    Ok((entity, csr))
}

/// The service's answer carrying `cert_der` (the embedded server).
pub fn build_response(cert_der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert_der);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>"#,
            r#"<GetAndPublishCertResponse xmlns="http://schemas.microsoft.com/OCS/AuthWebServices/">"#,
            r#"<RequestSecurityTokenResponse xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512/">"#,
            "<TokenType>http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3</TokenType>",
            "<RequestedSecurityToken>",
            r#"<BinarySecurityToken xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3" EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#Base64Binary">{cert}</BinarySecurityToken>"#,
            "</RequestedSecurityToken></RequestSecurityTokenResponse></GetAndPublishCertResponse>",
            "</s:Body></s:Envelope>"
        ),
        cert = b64
    )
}

/// A SOAP 1.1 fault with `why` (the embedded server's refusals).
pub fn build_fault(why: &str) -> String {
    let mut w = String::new();
    escape_into(&mut w, why);
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>{w}</faultstring></s:Fault></s:Body></s:Envelope>"#
    )
}

/// The element reached from `from` by the local names in `path`, each a
/// child of the one before (the first may be any depth below `from`'s
/// children: answers wrap it differently).
fn find(doc: &Doc<'_>, from: NodeId, path: &[&str]) -> Option<NodeId> {
    let (first, rest) = path.split_first()?;
    let mut stack: Vec<NodeId> = doc.children(from).collect();
    while let Some(n) = stack.pop() {
        if doc.node(n).local() == *first {
            let mut at = n;
            let mut ok = true;
            for name in rest {
                match doc.child(at, name) {
                    Some(c) => at = c,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Some(at);
            }
        }
        stack.extend(doc.children(n));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "alice@contoso.com");
        p.serialize_request(&key).expect("csr").der().to_vec()
    }

    #[test]
    fn the_request_carries_the_csr_in_76_character_lines_and_escapes_what_it_is_given() {
        let der = csr();
        let xml = build_request(&CertRequest {
            to: "https://pool.contoso.com/CertProv/CertProvisioningService.svc/WebTicket_Proof",
            message_id: "uuid:1b3f0e34-7c0c-4a35-9d86-7c8e0f7e8b21",
            device_id: "{0F2B5F0E-AB4D-4E2C-9D2F-4A0D3F5C1E77}",
            entity: "alice@contoso.com",
            csr_der: &der,
            request_id: "1",
            security_xml: "<saml:Assertion/>",
        });
        assert!(xml.contains(r#"Entity="alice@contoso.com""#));
        assert!(xml.contains("<wsse:Security><saml:Assertion/></wsse:Security>"));
        assert!(xml.contains("#PKCS10"));
        // The CSR reads back from its lines.
        let start = xml.find("#Base64Binary\">").expect("token") + "#Base64Binary\">".len();
        let end = start + xml[start..].find('<').expect("end");
        let body = &xml[start..end];
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        let back = base64::engine::general_purpose::STANDARD
            .decode(body.replace("\r\n", ""))
            .expect("base64");
        assert_eq!(back, der);
        // Values are escaped; the document parses.
        let odd = build_request(&CertRequest {
            to: "https://x/?a=1&b=\"2\"",
            message_id: "uuid:<1>",
            device_id: "{}",
            entity: "a&b@contoso.com",
            csr_der: b"x",
            request_id: "1",
            security_xml: "",
        });
        assert!(odd.contains("a&amp;b@contoso.com"));
        let text = decode(odd.as_bytes()).expect("utf-8");
        Doc::parse(&text).expect("well-formed");
        // The service side reads what the client built.
        assert_eq!(
            parse_request(xml.as_bytes()).expect("request"),
            ("alice@contoso.com".to_owned(), der.clone())
        );
        assert_eq!(
            parse_response(build_response(&der).as_bytes()).expect("cert"),
            der
        );
        assert_eq!(
            parse_response(build_fault("no <ticket>").as_bytes()),
            Err(CertProvError::Fault("no <ticket>".into()))
        );
    }

    #[test]
    fn the_answer_gives_the_certificate_or_the_reason() {
        let ok = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<GetAndPublishCertResponse xmlns="http://schemas.microsoft.com/OCS/AuthWebServices/">
<RequestSecurityTokenResponse xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512/">
<RequestedSecurityToken><BinarySecurityToken xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">AQID
BAU=</BinarySecurityToken></RequestedSecurityToken>
</RequestSecurityTokenResponse></GetAndPublishCertResponse></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(ok.as_bytes()).expect("cert"),
            [1, 2, 3, 4, 5]
        );
        let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>The web ticket has expired</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(fault.as_bytes()),
            Err(CertProvError::Fault("The web ticket has expired".into()))
        );
        let empty =
            r#"<s:Envelope xmlns:s="x"><s:Body><GetAndPublishCertResponse/></s:Body></s:Envelope>"#;
        assert!(matches!(
            parse_response(empty.as_bytes()),
            Err(CertProvError::Document(_))
        ));
        let bad = ok.replace("AQID", "!!!!");
        assert_eq!(
            parse_response(bad.as_bytes()),
            Err(CertProvError::NotBase64)
        );
        assert!(matches!(
            parse_response(b"<!DOCTYPE x [<!ENTITY a \"b\">]><s:Envelope/>"),
            Err(CertProvError::Document(_))
        ));
        assert_eq!(
            parse_response(&vec![b' '; MAX_RESPONSE_BYTES + 1]),
            Err(CertProvError::TooLarge)
        );
    }
}
