//! Web tickets ([MS-OCAUTHWS] Web Ticket Service), the messages only: the
//! WS-Trust 1.3 `IssueToken` request a client sends for a ticket to a pool
//! service (certificate provisioning), the answer with the SAML assertion
//! and the server's entropy, the proof key both sides compute
//! (`CK/PSHA1`), and the `wsse:Security` header that presents the ticket:
//! a timestamp, the assertion, and an HMAC-SHA1 XML signature over the
//! timestamp with the proof key. The service side (the embedded server)
//! reads the request and checks a presented ticket.
//!
//! Facts from the project's TLS-DSK notes (section 6, from MS-OCAUTHWS
//! and SIPE's requests). Canonicalization: the timestamp and `SignedInfo`
//! are written in exclusive XML canonical form (each element declares the
//! namespaces it uses, attributes in canonical order, no empty-element
//! tags, no whitespace), so their bytes as sent are what exclusive c14n
//! gives and the digest and signature are over those bytes. The checking
//! side here takes the bytes as sent: it checks what this module writes,
//! and does not canonicalize other writers' XML.
//!
//! [MS-OCAUTHWS]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-ocauthws

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};

use crate::presence::error::DocumentError;
use crate::presence::xml::{Doc, NodeId, decode, escape_into};

/// The SOAPAction of the request (WS-Trust 1.3 Issue).
pub const SOAP_ACTION: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue";
/// Largest answer read (an assertion and its signature: a few KB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The proof key's length (256 bits, as requested).
pub const KEY_BYTES: usize = 32;

const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const SAML_ID: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID";

fn esc(s: &str) -> String {
    let mut out = String::new();
    escape_into(&mut out, s);
    out
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// What an `IssueToken` request carries.
#[derive(Debug, Clone)]
pub struct TicketRequest<'a> {
    /// The Web Ticket Service's address (`wsa:To`; the POST goes there).
    pub to: &'a str,
    /// The service the ticket is for (`wsp:AppliesTo`), e.g. the
    /// certificate provisioning URL.
    pub applies_to: &'a str,
    /// The user, `sip:alice@contoso.com` (the URI claim).
    pub sip_uri: &'a str,
    /// Our half of the proof key: [`KEY_BYTES`] random bytes.
    pub entropy: &'a [u8],
    /// `uuid:...` for `wsa:MessageID`, and the request's `Context`.
    pub message_id: &'a str,
}

/// The SOAP 1.1 envelope of an `IssueToken` request for a SAML 1.1 ticket
/// with a symmetric proof key.
pub fn build_request(r: &TicketRequest<'_>) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wst="http://docs.oasis-open.org/ws-sx/ws-trust/200512" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:auth="http://schemas.xmlsoap.org/ws/2006/12/authorization">"#,
            "<s:Header>",
            r#"<wsa:Action s:mustUnderstand="1">{action}</wsa:Action>"#,
            "<wsa:MessageID>{id}</wsa:MessageID>",
            "<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>",
            r#"<wsa:To s:mustUnderstand="1">{to}</wsa:To>"#,
            "</s:Header>",
            "<s:Body>",
            r#"<wst:RequestSecurityToken Context="{id}">"#,
            "<wst:TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</wst:TokenType>",
            "<wst:RequestType>http://schemas.xmlsoap.org/ws/2005/02/trust/Issue</wst:RequestType>",
            "<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{applies}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>",
            r#"<wst:Claims Dialect="urn:component:Microsoft.Rtc.WebAuthentication.2010:authclaims">"#,
            r#"<auth:ClaimType Uri="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/uri" Optional="false"><auth:Value>{uri}</auth:Value></auth:ClaimType>"#,
            "</wst:Claims>",
            r#"<wst:Entropy><wst:BinarySecret>{entropy}</wst:BinarySecret></wst:Entropy>"#,
            "<wst:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</wst:KeyType>",
            "</wst:RequestSecurityToken>",
            "</s:Body></s:Envelope>"
        ),
        action = SOAP_ACTION,
        id = esc(r.message_id),
        to = esc(r.to),
        applies = esc(r.applies_to),
        uri = esc(r.sip_uri),
        entropy = b64(r.entropy),
    )
}

/// A web ticket: the assertion to present and what the proof key needs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebTicket {
    /// The `saml:Assertion` element, as the service sent it (presented as
    /// is: the service signed it).
    pub assertion: String,
    /// Its `AssertionID` (the signature's key identifier).
    pub assertion_id: String,
    /// The service's half of the proof key (`None`: a bearer ticket).
    pub server_entropy: Option<Vec<u8>>,
    /// When it lapses (`Lifetime/Expires`, `xsd:dateTime`), if said.
    pub expires: Option<String>,
}

impl std::fmt::Debug for WebTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The assertion is a credential: not shown.
        f.debug_struct("WebTicket")
            .field("assertion_id", &self.assertion_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why there is no ticket, or why a presented one was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebTicketError {
    /// Not a readable document (where, and what).
    #[error("web ticket: {0}")]
    Document(#[from] DocumentError),
    /// A SOAP fault: the service refused (its reason).
    #[error("web ticket refused: {0}")]
    Fault(String),
    /// Something is missing or malformed (what).
    #[error("web ticket: {0}")]
    Invalid(&'static str),
    /// A presented ticket's signature or digest does not verify.
    #[error("web ticket: the signature does not verify")]
    BadSignature,
    /// Over [`MAX_RESPONSE_BYTES`].
    #[error("web ticket answer over {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

fn envelope_body(doc: &Doc<'_>) -> Result<NodeId, WebTicketError> {
    crate::certprov::soap_body(doc).map_err(|e| match e {
        crate::certprov::SoapError::Document(d) => WebTicketError::Document(d),
        crate::certprov::SoapError::Fault(why) => WebTicketError::Fault(why),
    })
}

fn read(bytes: &[u8]) -> Result<String, WebTicketError> {
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(WebTicketError::TooLarge);
    }
    Ok(decode(bytes)?.into_owned())
}

fn base64_text(doc: &Doc<'_>, n: NodeId) -> Result<Vec<u8>, WebTicketError> {
    crate::certprov::base64_text(doc, n).ok_or(WebTicketError::Invalid("a value is not base64"))
}

/// Reads the service's answer: the ticket.
pub fn parse_response(bytes: &[u8]) -> Result<WebTicket, WebTicketError> {
    let text = read(bytes)?;
    let doc = Doc::parse(&text)?;
    let body = envelope_body(&doc)?;
    let rstr = find(&doc, body, "RequestSecurityTokenResponse")
        .ok_or(WebTicketError::Invalid("no RequestSecurityTokenResponse"))?;
    let token = doc
        .child(rstr, "RequestedSecurityToken")
        .ok_or(WebTicketError::Invalid("no RequestedSecurityToken"))?;
    let assertion = doc
        .child(token, "Assertion")
        .ok_or(WebTicketError::Invalid("no SAML assertion"))?;
    let assertion_id = doc
        .node(assertion)
        .attr("AssertionID")
        .or_else(|| doc.node(assertion).attr("ID"))
        .map(|a| a.into_owned())
        .filter(|a| !a.is_empty())
        .ok_or(WebTicketError::Invalid("the assertion has no AssertionID"))?;
    let server_entropy = match doc
        .child(rstr, "Entropy")
        .and_then(|e| doc.child(e, "BinarySecret"))
    {
        Some(n) => Some(base64_text(&doc, n)?),
        None => None,
    };
    let expires = doc
        .child(rstr, "Lifetime")
        .and_then(|l| doc.child_text(l, "Expires"))
        .map(|t| t.trim().to_owned());
    Ok(WebTicket {
        assertion: doc.raw(assertion).to_owned(),
        assertion_id,
        server_entropy,
        expires,
    })
}

/// WS-Trust 1.3 `CK/PSHA1`: the proof key from both halves, P_SHA1 (TLS 1.0,
/// RFC 2246 5) with our entropy as the secret and the service's as the seed.
pub fn proof_key(client_entropy: &[u8], server_entropy: &[u8]) -> Vec<u8> {
    let hmac = |data: &[&[u8]]| -> [u8; 20] {
        // A key of any length is accepted for HMAC.
        let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(client_entropy)
            .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new_from_slice(&[0]).expect("key"));
        for d in data {
            m.update(d);
        }
        m.finalize().into_bytes().into()
    };
    let mut out = Vec::with_capacity(KEY_BYTES + 20);
    let mut a = hmac(&[server_entropy]);
    while out.len() < KEY_BYTES {
        out.extend_from_slice(&hmac(&[&a, server_entropy]));
        a = hmac(&[&a]);
    }
    out.truncate(KEY_BYTES);
    out
}

fn timestamp_xml(created: &str, expires: &str) -> String {
    format!(
        r#"<wsu:Timestamp xmlns:wsu="{WSU}" wsu:Id="timestamp"><wsu:Created>{}</wsu:Created><wsu:Expires>{}</wsu:Expires></wsu:Timestamp>"#,
        esc(created),
        esc(expires)
    )
}

fn signed_info_xml(digest_b64: &str) -> String {
    format!(
        concat!(
            r#"<SignedInfo xmlns="{dsig}">"#,
            r#"<CanonicalizationMethod Algorithm="{c14n}"></CanonicalizationMethod>"#,
            r#"<SignatureMethod Algorithm="{dsig}hmac-sha1"></SignatureMethod>"#,
            r##"<Reference URI="#timestamp"><Transforms><Transform Algorithm="{c14n}"></Transform></Transforms>"##,
            r#"<DigestMethod Algorithm="{dsig}sha1"></DigestMethod><DigestValue>{digest}</DigestValue></Reference>"#,
            "</SignedInfo>"
        ),
        dsig = DSIG,
        c14n = EXC_C14N,
        digest = digest_b64
    )
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new_from_slice(&[0]).expect("key"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// What goes inside `wsse:Security` to present `ticket`: a timestamp from
/// `created` to `expires` (`xsd:dateTime`), the assertion, and, with a
/// proof key, the signature over the timestamp (without one: a bearer
/// ticket, timestamp and assertion only).
pub fn security_header(
    ticket: &WebTicket,
    key: Option<&[u8]>,
    created: &str,
    expires: &str,
) -> String {
    let ts = timestamp_xml(created, expires);
    let Some(key) = key else {
        return format!("{ts}{}", ticket.assertion);
    };
    let digest = b64(&Sha1::digest(ts.as_bytes()));
    let signed_info = signed_info_xml(&digest);
    let signature = b64(&hmac_sha1(key, signed_info.as_bytes()));
    format!(
        concat!(
            "{ts}{assertion}",
            r#"<Signature xmlns="{dsig}">{si}<SignatureValue>{sig}</SignatureValue>"#,
            r#"<KeyInfo><wsse:SecurityTokenReference xmlns:wsse="{wsse}"><wsse:KeyIdentifier ValueType="{saml_id}">{id}</wsse:KeyIdentifier></wsse:SecurityTokenReference></KeyInfo>"#,
            "</Signature>"
        ),
        ts = ts,
        assertion = ticket.assertion,
        dsig = DSIG,
        si = signed_info,
        sig = signature,
        wsse = WSSE,
        saml_id = SAML_ID,
        id = esc(&ticket.assertion_id),
    )
}

/// A ticket presented in a request's `wsse:Security`, its signature
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The assertion's id (which ticket).
    pub assertion_id: String,
    /// The timestamp's `Created` and `Expires` (check them against the clock).
    pub created: String,
    /// See `created`.
    pub expires: String,
}

/// The service's side: finds the ticket presented in a SOAP request and
/// checks its signature with the proof key `key_of(assertion_id)` gives
/// (`None`: an unknown ticket). The digest and signature are checked over
/// the bytes as sent (see the module docs).
pub fn check_presented(
    bytes: &[u8],
    key_of: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Presented, WebTicketError> {
    let text = read(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    let security = doc
        .child(root, "Header")
        .and_then(|h| doc.child(h, "Security"))
        .ok_or(WebTicketError::Invalid("no wsse:Security header"))?;
    let ts = doc
        .child(security, "Timestamp")
        .ok_or(WebTicketError::Invalid("no timestamp"))?;
    let created = doc
        .child_text(ts, "Created")
        .map(|t| t.trim().to_owned())
        .ok_or(WebTicketError::Invalid("no timestamp Created"))?;
    let expires = doc
        .child_text(ts, "Expires")
        .map(|t| t.trim().to_owned())
        .ok_or(WebTicketError::Invalid("no timestamp Expires"))?;
    let signature = doc
        .child(security, "Signature")
        .ok_or(WebTicketError::Invalid("no signature"))?;
    let signed_info = doc
        .child(signature, "SignedInfo")
        .ok_or(WebTicketError::Invalid("no SignedInfo"))?;
    let reference = doc
        .child(signed_info, "Reference")
        .ok_or(WebTicketError::Invalid("no Reference"))?;
    let ts_id = doc.node(ts).attr("Id").unwrap_or_default();
    if doc.node(reference).attr("URI").as_deref() != Some(&format!("#{ts_id}")) || ts_id.is_empty()
    {
        return Err(WebTicketError::Invalid(
            "the signature does not cover the timestamp",
        ));
    }
    let digest = doc
        .child(reference, "DigestValue")
        .ok_or(WebTicketError::Invalid("no DigestValue"))?;
    let digest = base64_text(&doc, digest)?;
    let value = doc
        .child(signature, "SignatureValue")
        .ok_or(WebTicketError::Invalid("no SignatureValue"))?;
    let value = base64_text(&doc, value)?;
    let id = doc
        .child(signature, "KeyInfo")
        .and_then(|k| doc.child(k, "SecurityTokenReference"))
        .and_then(|r| doc.child_text(r, "KeyIdentifier"))
        .map(|t| t.trim().to_owned())
        .ok_or(WebTicketError::Invalid("no KeyIdentifier"))?;
    let key = key_of(&id).ok_or(WebTicketError::Invalid("an unknown ticket"))?;
    let ts_digest = Sha1::digest(doc.raw(ts).as_bytes());
    let sig = hmac_sha1(&key, doc.raw(signed_info).as_bytes());
    if !crate::auth::ct_eq(&ts_digest, &digest) || !crate::auth::ct_eq(&sig, &value) {
        return Err(WebTicketError::BadSignature);
    }
    Ok(Presented {
        assertion_id: id,
        created,
        expires,
    })
}

/// What an `IssueToken` request asked for (the service's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// `wsp:AppliesTo` address.
    pub applies_to: String,
    /// The URI claim (`sip:alice@contoso.com`), if any.
    pub sip_uri: Option<String>,
    /// The client's entropy (`None`: a bearer ticket).
    pub entropy: Option<Vec<u8>>,
}

/// Reads an `IssueToken` request (the embedded server).
pub fn parse_request(bytes: &[u8]) -> Result<IssueRequest, WebTicketError> {
    let text = read(bytes)?;
    let doc = Doc::parse(&text)?;
    let body = envelope_body(&doc)?;
    let rst = find(&doc, body, "RequestSecurityToken")
        .ok_or(WebTicketError::Invalid("no RequestSecurityToken"))?;
    let applies_to = doc
        .child(rst, "AppliesTo")
        .and_then(|a| find(&doc, a, "Address"))
        .map(|n| doc.node(n).trimmed().to_owned())
        .ok_or(WebTicketError::Invalid("no AppliesTo address"))?;
    let sip_uri = doc
        .child(rst, "Claims")
        .and_then(|c| find(&doc, c, "Value"))
        .map(|n| doc.node(n).trimmed().to_owned());
    let entropy = match doc
        .child(rst, "Entropy")
        .and_then(|e| doc.child(e, "BinarySecret"))
    {
        Some(n) => Some(base64_text(&doc, n)?),
        None => None,
    };
    Ok(IssueRequest {
        applies_to,
        sip_uri,
        entropy,
    })
}

/// The service's answer (the embedded server): an unsigned SAML 1.1
/// assertion `assertion_id` for `sip_uri`, valid from `created` to
/// `expires`, and the service's entropy.
pub fn build_response(
    assertion_id: &str,
    sip_uri: &str,
    server_entropy: &[u8],
    created: &str,
    expires: &str,
) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>"#,
            r#"<RequestSecurityTokenResponseCollection xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512">"#,
            "<RequestSecurityTokenResponse>",
            "<TokenType>http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1</TokenType>",
            r#"<Lifetime><wsu:Created xmlns:wsu="{wsu}">{created}</wsu:Created><wsu:Expires xmlns:wsu="{wsu}">{expires}</wsu:Expires></Lifetime>"#,
            "<RequestedSecurityToken>",
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" MajorVersion="1" MinorVersion="1" AssertionID="{id}" Issuer="ocs-sim" IssueInstant="{created}">"#,
            r#"<saml:Conditions NotBefore="{created}" NotOnOrAfter="{expires}"></saml:Conditions>"#,
            r#"<saml:AuthenticationStatement AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:unspecified" AuthenticationInstant="{created}"><saml:Subject><saml:NameIdentifier>{uri}</saml:NameIdentifier></saml:Subject></saml:AuthenticationStatement>"#,
            "</saml:Assertion>",
            "</RequestedSecurityToken>",
            "<Entropy><BinarySecret>{entropy}</BinarySecret></Entropy>",
            "<KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey</KeyType>",
            "</RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection>",
            "</s:Body></s:Envelope>"
        ),
        wsu = WSU,
        created = esc(created),
        expires = esc(expires),
        id = esc(assertion_id),
        uri = esc(sip_uri),
        entropy = b64(server_entropy),
    )
}

/// The first element named `local` below `from` (depth first).
fn find(doc: &Doc<'_>, from: NodeId, local: &str) -> Option<NodeId> {
    let mut stack: Vec<NodeId> = doc.children(from).collect();
    stack.reverse();
    while let Some(n) = stack.pop() {
        if doc.node(n).local() == local {
            return Some(n);
        }
        let mut kids: Vec<NodeId> = doc.children(n).collect();
        kids.reverse();
        stack.extend(kids);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://pool.contoso.com/CertProv/CertProvisioningService.svc";

    fn issued() -> (WebTicket, Vec<u8>) {
        let client = [7u8; KEY_BYTES];
        let req = build_request(&TicketRequest {
            to: "https://pool.contoso.com/WebTicket/WebTicketService.svc",
            applies_to: URL,
            sip_uri: "sip:alice@contoso.com",
            entropy: &client,
            message_id: "uuid:1",
        });
        let asked = parse_request(req.as_bytes()).expect("request reads");
        assert_eq!(asked.applies_to, URL);
        assert_eq!(asked.sip_uri.as_deref(), Some("sip:alice@contoso.com"));
        assert_eq!(asked.entropy.as_deref(), Some(&client[..]));
        let server = [9u8; KEY_BYTES];
        let resp = build_response(
            "SamlSecurityToken-1",
            "sip:alice@contoso.com",
            &server,
            "2026-12-07T16:00:00Z",
            "2026-12-08T00:00:00Z",
        );
        let t = parse_response(resp.as_bytes()).expect("answer reads");
        assert_eq!(t.assertion_id, "SamlSecurityToken-1");
        assert_eq!(t.server_entropy.as_deref(), Some(&server[..]));
        assert_eq!(t.expires.as_deref(), Some("2026-12-08T00:00:00Z"));
        assert!(t.assertion.starts_with("<saml:Assertion "));
        assert!(t.assertion.ends_with("</saml:Assertion>"));
        let key = proof_key(&client, &server);
        (t, key)
    }

    #[test]
    fn psha1_matches_the_tls_prf_definition() {
        // P_SHA1 with A(0) = seed, A(i) = HMAC(secret, A(i-1)),
        // output HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) ...
        let (secret, seed) = (b"secret".as_slice(), b"seed".as_slice());
        let a1 = hmac_sha1(secret, seed);
        let a2 = hmac_sha1(secret, &a1);
        let mut want = hmac_sha1(secret, &[a1.as_slice(), seed].concat());
        want.extend(hmac_sha1(secret, &[a2.as_slice(), seed].concat()));
        want.truncate(KEY_BYTES);
        assert_eq!(proof_key(secret, seed), want);
        assert_eq!(proof_key(secret, seed).len(), KEY_BYTES);
        assert_ne!(proof_key(secret, seed), proof_key(seed, secret));
    }

    #[test]
    fn a_presented_ticket_verifies_with_the_proof_key_only() {
        let (t, key) = issued();
        let sec = security_header(
            &t,
            Some(&key),
            "2026-12-07T16:00:00Z",
            "2026-12-07T16:05:00Z",
        );
        let envelope = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><wsse:Security xmlns:wsse="{WSSE}">{sec}</wsse:Security></s:Header><s:Body/></s:Envelope>"#
        );
        let ok = check_presented(envelope.as_bytes(), |id| {
            (id == "SamlSecurityToken-1").then(|| key.clone())
        })
        .expect("verifies");
        assert_eq!(ok.assertion_id, "SamlSecurityToken-1");
        assert_eq!(ok.expires, "2026-12-07T16:05:00Z");
        // Another key, an altered timestamp, an unknown ticket: refused.
        assert_eq!(
            check_presented(envelope.as_bytes(), |_| Some(vec![1; KEY_BYTES])),
            Err(WebTicketError::BadSignature)
        );
        let later = envelope.replace("16:05:00Z", "23:05:00Z");
        assert_eq!(
            check_presented(later.as_bytes(), |_| Some(key.clone())),
            Err(WebTicketError::BadSignature)
        );
        assert!(check_presented(envelope.as_bytes(), |_| None).is_err());
        // Without a signature: refused (this service wants proof).
        let bearer = security_header(&t, None, "a", "b");
        assert!(!bearer.contains("Signature"));
        let envelope = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><wsse:Security xmlns:wsse="{WSSE}">{bearer}</wsse:Security></s:Header><s:Body/></s:Envelope>"#
        );
        assert_eq!(
            check_presented(envelope.as_bytes(), |_| Some(key.clone())),
            Err(WebTicketError::Invalid("no signature"))
        );
    }

    #[test]
    fn the_signed_parts_are_in_exclusive_canonical_form() {
        let (t, key) = issued();
        let sec = security_header(
            &t,
            Some(&key),
            "2026-12-07T16:00:00Z",
            "2026-12-07T16:05:00Z",
        );
        // No empty-element tags and no whitespace between elements in the
        // signed parts; each declares the namespace it uses.
        let ts_end = sec.find("</wsu:Timestamp>").expect("timestamp") + "</wsu:Timestamp>".len();
        let ts = &sec[..ts_end];
        assert!(ts.starts_with(&format!(
            r#"<wsu:Timestamp xmlns:wsu="{WSU}" wsu:Id="timestamp">"#
        )));
        let si_start = sec.find("<SignedInfo").expect("signed info");
        let si_end = sec.find("</SignedInfo>").expect("end") + "</SignedInfo>".len();
        let si = &sec[si_start..si_end];
        assert!(si.starts_with(&format!(r#"<SignedInfo xmlns="{DSIG}">"#)));
        for part in [ts, si] {
            assert!(!part.contains("/>"), "{part}");
            assert!(!part.contains("> <") && !part.contains('\n'), "{part}");
        }
    }

    #[test]
    fn faults_and_bad_answers_say_what() {
        let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>No such user</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(fault.as_bytes()),
            Err(WebTicketError::Fault("No such user".into()))
        );
        assert!(matches!(
            parse_response(b"<x/>"),
            Err(WebTicketError::Document(_))
        ));
        let no_token = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><RequestSecurityTokenResponse/></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_response(no_token.as_bytes()),
            Err(WebTicketError::Invalid("no RequestedSecurityToken"))
        );
        assert_eq!(
            parse_response(&vec![b' '; MAX_RESPONSE_BYTES + 1]),
            Err(WebTicketError::TooLarge)
        );
        let (t, _) = issued();
        assert!(
            !format!("{t:?}").contains("Assertion "),
            "Debug shows the assertion"
        );
    }
}
