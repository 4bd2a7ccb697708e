//! Lync/SfB autodiscover over HTTP: runs [`crate::autodiscover::Discovery`]
//! with reqwest (our rustls settings, no redirects followed by reqwest: the
//! walk follows them itself to stop loops).

use std::time::Duration;

use crate::autodiscover::{
    Attempt, Discovery, DiscoveryConfig, DiscoveryError, Found, HttpRequest, HttpResponse,
    MAX_BODY_BYTES,
};

use super::conn::TlsSettings;

/// How long one autodiscover request may take (connect to last byte).
pub const AUTODISCOVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client's whole autodiscover may take before it falls back
/// to DNS (four lookups that time out take 40 s).
pub const AUTODISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs autodiscover for `cfg`; `progress` sees each request's outcome as
/// it comes. Returns the outcome and every attempt.
pub async fn autodiscover(
    cfg: DiscoveryConfig,
    tls: &TlsSettings,
    mut progress: impl FnMut(&Attempt),
) -> (Result<Found, DiscoveryError>, Vec<Attempt>) {
    let mut d = Discovery::new(cfg);
    let client = match no_redirect_client(tls, AUTODISCOVER_REQUEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(DiscoveryError::NotFound(format!("no HTTP client: {e}"))),
                Vec::new(),
            );
        }
    };
    let mut seen = 0;
    while let Some(req) = d.poll_request() {
        let id = req.id;
        let answer = fetch(&client, req).await;
        d.handle_response(id, answer);
        for a in &d.attempts()[seen..] {
            progress(a);
        }
        seen = d.attempts().len();
    }
    let out = match d.outcome() {
        Some(o) => o.clone(),
        // poll_request gives nothing only once there is an outcome.
        None => Err(DiscoveryError::NotFound("stopped without an answer".into())),
    };
    (out, d.attempts().to_vec())
}

/// An HTTP client on our TLS settings that follows no redirect: the web
/// services' callers (autodiscover's walk, certificate provisioning)
/// decide where a request may go, and where its credentials may follow.
pub(super) fn no_redirect_client(
    tls: &TlsSettings,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let tls_config = tls.client_config().map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| super::customstates::chain(&e))
}

async fn fetch(client: &reqwest::Client, req: HttpRequest) -> Result<HttpResponse, String> {
    let method = if req.method == "POST" {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let mut b = client.request(method, &req.url);
    for (n, v) in &req.headers {
        b = b.header(*n, v);
    }
    if !req.body.is_empty() {
        b = b.body(req.body);
    }
    let err = |e: reqwest::Error| super::customstates::chain(&e.without_url());
    let mut resp = b.send().await.map_err(err)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(err)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            // One byte over tells the walk the answer was too large.
            body.extend_from_slice(&chunk[..(MAX_BODY_BYTES + 1 - body.len()).min(chunk.len())]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}
