//! Certificate provisioning over HTTP: a fresh key and PKCS#10 request,
//! `GetAndPublishCert` ([`crate::certprov`]) to the pool's service, and the
//! certificate back: the user's TLS-DSK credential.
//!
//! The caller proves itself with a web ticket ([`web_ticket`], MS-OCAUTHWS):
//! an OAuth token from the pool's token service with the password, then the
//! Web Ticket Service's WS-Trust `IssueToken` with that token, which gives
//! a SAML assertion and the entropy for the proof key; the ticket is
//! presented in `wsse:Security`, the timestamp signed with the proof key
//! ([`crate::webticket`]).
//!
//! [`provision_for`] is what a client does when the session asks
//! ([`crate::client::Io::ProvisionCertificate`]): a fresh stored
//! certificate, else a token, a certificate, and the store.

use base64::Engine;

#[cfg(feature = "cert-provisioning")]
use super::conn::TlsSettings;
use super::http::{self, HttpClient};

/// How long the provisioning request may take.
pub const CERTPROV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A certificate from certificate provisioning and its private key, PEM.
/// `Debug` shows neither.
#[derive(Clone)]
pub struct ProvisionedCertificate {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8), made on this machine.
    pub key_pem: String,
}

impl std::fmt::Debug for ProvisionedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionedCertificate")
            .finish_non_exhaustive()
    }
}

/// Asks the certificate provisioning service at `url` for a certificate
/// for `entity` (`alice@contoso.com`), presenting `ticket` (from
/// [`web_ticket`] for `url`). The key (P-256) never leaves this machine.
pub async fn provision_certificate(
    url: &str,
    ticket: &WebTicketProof,
    entity: &str,
    http: &dyn HttpClient,
) -> Result<ProvisionedCertificate, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, entity);
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| e.to_string())?;
    let uuid = uuid_text(id);
    let body = crate::certprov::build_request(&crate::certprov::CertRequest {
        to: url,
        message_id: &format!("uuid:{uuid}"),
        device_id: &format!("{{{uuid}}}"),
        entity,
        csr_der: csr.der(),
        request_id: "1",
        security_xml: &ticket.security_header(),
    });
    let (status, bytes) = post_soap(http, url, crate::certprov::SOAP_ACTION, None, body).await?;
    let cert = crate::certprov::parse_response(&bytes).map_err(|e| match e {
        crate::certprov::CertProvError::Fault(why) => format!("{status}: {why}"),
        other => format!("{status}: {other}"),
    })?;
    Ok(ProvisionedCertificate {
        cert_pem: pem("CERTIFICATE", &cert),
        key_pem: key.serialize_pem(),
    })
}

fn uuid_text(b: [u8; 16]) -> String {
    let h = crate::auth::hex::encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A web ticket and its proof key, for one pool service. `Debug` shows
/// neither the assertion nor the key.
#[derive(Clone)]
pub struct WebTicketProof {
    /// The ticket.
    pub ticket: crate::webticket::WebTicket,
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebTicketProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebTicketProof")
            .field("ticket", &self.ticket)
            .field("proof_key", &self.key.is_some())
            .finish()
    }
}

impl WebTicketProof {
    /// A ticket with the proof key it was issued with (`None`: a bearer
    /// ticket). For tests and hosts that get tickets their own way.
    pub fn new(ticket: crate::webticket::WebTicket, key: Option<Vec<u8>>) -> WebTicketProof {
        WebTicketProof { ticket, key }
    }

    /// What goes in `wsse:Security` now: a timestamp good for five
    /// minutes, the assertion, the signature with the proof key.
    pub fn security_header(&self) -> String {
        let created = wall();
        crate::webticket::security_header(
            &self.ticket,
            self.key.as_deref(),
            &crate::utc::format(created),
            &crate::utc::format(created + std::time::Duration::from_secs(300)),
        )
    }
}

/// POSTs a SOAP 1.1 request with `action` (and a bearer token, when
/// given); the status and the body.
async fn post_soap(
    http: &dyn HttpClient,
    url: &str,
    action: &str,
    bearer: Option<&str>,
    body: String,
) -> Result<(u16, Vec<u8>), String> {
    let mut req = http::Request::post(url, body.into_bytes(), CERTPROV_TIMEOUT)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", format!("\"{action}\""));
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let (resp, bytes) = http::fetch(http, req, MAX_ANSWER_BYTES)
        .await
        .map_err(answer_error)?;
    Ok((resp.status, bytes))
}

/// The largest answer of the token, web ticket and provisioning services
/// read (a SAML ticket or a certificate: a few KB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

fn answer_error(e: http::FetchError) -> String {
    match e {
        http::FetchError::TooLarge => format!("an answer over {MAX_ANSWER_BYTES} bytes"),
        http::FetchError::Http(e) => e.message,
    }
}

/// The origin (`https://host:port`) of `url` with `path`.
fn at_origin(url: &str, path: &str) -> Result<String, String> {
    crate::autodiscover::origin_of(url)
        .filter(|o| o.starts_with("http://") || o.starts_with("https://"))
        .map(|o| format!("{o}{path}"))
        .ok_or_else(|| format!("{url}: not an http(s) URL"))
}

/// An OAuth token from the token service of the pool that serves
/// `service_url` (same origin, `/WebTicket/oauthtoken`), by the password
/// grant with `login` (`DOMAIN\\user` or `user@domain`) and `password`.
async fn oauth_token(
    service_url: &str,
    login: &str,
    password: &str,
    http: &dyn HttpClient,
) -> Result<String, String> {
    let url = at_origin(service_url, "/WebTicket/oauthtoken")?;
    let req = http::Request::post(
        url.clone(),
        crate::oauth::password_grant_body(login, password).into_bytes(),
        CERTPROV_TIMEOUT,
    )
    .header("Content-Type", "application/x-www-form-urlencoded");
    let (resp, bytes) = http::fetch(http, req, MAX_ANSWER_BYTES)
        .await
        .map_err(answer_error)?;
    if resp.status != 200 {
        return Err(format!("token service {url} answered {}", resp.status));
    }
    crate::oauth::parse_token(&bytes)
        .map(|t| t.access_token)
        .map_err(|e| format!("token service {url}: {e}"))
}

/// A web ticket for the pool service at `service_url` (certificate
/// provisioning) for `sip_uri`: an OAuth token with `login` and `password`,
/// then WS-Trust `IssueToken` at the same origin's
/// `/WebTicket/WebTicketService.svc` with it (MS-OCAUTHWS: OAuth2 client
/// authentication), asking for a SAML 1.1 ticket with a symmetric proof
/// key. The password goes only over https or to this machine.
pub async fn web_ticket(
    service_url: &str,
    sip_uri: &str,
    login: &str,
    password: &str,
    http: &dyn HttpClient,
) -> Result<WebTicketProof, String> {
    if !crate::autodiscover::is_secure(service_url) {
        return Err(format!(
            "{service_url}: a password goes only over https (or to this machine)"
        ));
    }
    let token = oauth_token(service_url, login, password, http).await?;
    let url = at_origin(service_url, "/WebTicket/WebTicketService.svc")?;
    let mut entropy = [0u8; crate::webticket::KEY_BYTES];
    getrandom::fill(&mut entropy).map_err(|e| e.to_string())?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| e.to_string())?;
    let body = crate::webticket::build_request(&crate::webticket::TicketRequest {
        to: &url,
        applies_to: service_url,
        sip_uri,
        entropy: &entropy,
        message_id: &format!("uuid:{}", uuid_text(id)),
    });
    let (status, bytes) = post_soap(
        http,
        &url,
        crate::webticket::SOAP_ACTION,
        Some(&token),
        body,
    )
    .await?;
    let ticket = crate::webticket::parse_response(&bytes)
        .map_err(|e| format!("web ticket service {url} answered {status}: {e}"))?;
    let key = ticket
        .server_entropy
        .as_ref()
        .map(|s| crate::webticket::proof_key(&entropy, s));
    Ok(WebTicketProof { ticket, key })
}

/// What a client does on [`crate::client::Io::ProvisionCertificate`]: the
/// user's certificate from `store` when it has an hour or more left (not
/// for a renewal), else a web ticket with the password, a new certificate
/// from the service at `url`, kept in `store`. `entity` is the user's
/// address without `sip:`.
#[cfg(feature = "cert-provisioning")]
pub async fn provision_for(
    url: &str,
    entity: &str,
    credentials: Option<(String, String)>,
    store: Option<std::path::PathBuf>,
    renewal: bool,
    tls: &TlsSettings,
    http: &dyn HttpClient,
) -> Result<crate::auth::tlsdsk::TlsDskAuthenticator, String> {
    let roots = || tls.root_store().map_err(|e| format!("trusted roots: {e}"));
    let store = match store {
        Some(dir) => {
            Some(super::CertStore::open(dir).map_err(|e| format!("certificate store: {e}"))?)
        }
        None => None,
    };
    if !renewal
        && let Some(s) = &store
        && let Some(a) = s
            .load(entity, roots()?, wall())
            .map_err(|e| format!("certificate store: {e}"))?
    {
        return Ok(a);
    }
    let Some((login, password)) = credentials else {
        return Err("a certificate is needed and no password is set to get a web ticket".into());
    };
    let ticket = web_ticket(url, &format!("sip:{entity}"), &login, &password, http).await?;
    let issued = provision_certificate(url, &ticket, entity, http).await?;
    if let Some(s) = &store {
        s.save(entity, &issued.cert_pem, &issued.key_pem)
            .map_err(|e| format!("certificate store: {e}"))?;
    }
    crate::auth::tlsdsk::TlsDskAuthenticator::from_pem(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        roots()?,
    )
}

#[allow(clippy::disallowed_methods)]
fn wall() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
