//! Certificate provisioning over HTTP: a fresh key and PKCS#10 request,
//! `GetAndPublishCert` ([`crate::certprov`]) to the pool's service, and the
//! certificate back: the user's TLS-DSK credential.
//!
//! The caller proves itself with a bearer token from the pool's web
//! ticket service ([`web_ticket`]: the OAuth password grant, which the
//! embedded server takes). A pool wants the WS-Trust web ticket in
//! `wsse:Security` instead; getting one is not built yet.
//!
//! [`provision_for`] is what a client does when the session asks
//! ([`crate::client::Io::ProvisionCertificate`]): a fresh stored
//! certificate, else a token, a certificate, and the store.

use base64::Engine;

use super::conn::TlsSettings;

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
/// for `entity` (`alice@contoso.com`), proving the caller with `bearer`
/// (`cwt=...`). The key (P-256) never leaves this machine.
pub async fn provision_certificate(
    url: &str,
    bearer: &str,
    entity: &str,
    tls: &TlsSettings,
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
        security_xml: "",
    });
    let client = super::autodiscover::no_redirect_client(tls, CERTPROV_TIMEOUT)?;
    let err = |e: reqwest::Error| super::customstates::chain(&e.without_url());
    let resp = client
        .post(url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            format!("\"{}\"", crate::certprov::SOAP_ACTION),
        )
        .header("Authorization", format!("Bearer {bearer}"))
        .body(body)
        .send()
        .await
        .map_err(err)?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(err)?;
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

/// A token for the web services of the pool that serves `service_url`
/// (same scheme, host and port; `/WebTicket/oauthtoken`), by the OAuth
/// password grant with `login` (`DOMAIN\\user` or `user@domain`) and
/// `password`.
pub async fn web_ticket(
    service_url: &str,
    login: &str,
    password: &str,
    tls: &TlsSettings,
) -> Result<String, String> {
    if !crate::autodiscover::is_secure(service_url) {
        return Err(format!(
            "{service_url}: a password goes only over https (or to this machine)"
        ));
    }
    let mut url = reqwest::Url::parse(service_url).map_err(|e| format!("{service_url}: {e}"))?;
    url.set_path("/WebTicket/oauthtoken");
    url.set_query(None);
    let client = super::autodiscover::no_redirect_client(tls, CERTPROV_TIMEOUT)?;
    let err = |e: reqwest::Error| super::customstates::chain(&e.without_url());
    let resp = client
        .post(url.clone())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(crate::oauth::password_grant_body(login, password))
        .send()
        .await
        .map_err(err)?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(err)?;
    if status != 200 {
        return Err(format!("web ticket service {url} answered {status}"));
    }
    crate::oauth::parse_token(&bytes)
        .map(|t| t.access_token)
        .map_err(|e| format!("web ticket service {url}: {e}"))
}

/// What a client does on [`crate::client::Io::ProvisionCertificate`]: the
/// user's certificate from `store` when it has an hour or more left (not
/// for a renewal), else a web ticket with the password, a new certificate
/// from the service at `url`, kept in `store`. `entity` is the user's
/// address without `sip:`.
pub async fn provision_for(
    url: &str,
    entity: &str,
    credentials: Option<(String, String)>,
    store: Option<std::path::PathBuf>,
    renewal: bool,
    tls: &TlsSettings,
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
    let token = web_ticket(url, &login, &password, tls).await?;
    let issued = provision_certificate(url, &token, entity, tls).await?;
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
