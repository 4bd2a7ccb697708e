//! Lync/SfB autodiscover over HTTP: runs [`crate::autodiscover::Discovery`]
//! over an [`HttpClient`] (the walk follows redirects itself, to stop
//! loops).

use std::time::Duration;

use crate::autodiscover::{
    Attempt, Discovery, DiscoveryConfig, DiscoveryError, Found, HttpRequest, HttpResponse,
    MAX_BODY_BYTES,
};

use super::http::{self, HttpClient};

/// How long one autodiscover request may take (connect to last byte).
pub const AUTODISCOVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client's whole autodiscover may take before it falls back
/// to DNS (four lookups that time out take 40 s).
pub const AUTODISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs autodiscover for `cfg` over `http`; `progress` sees each
/// request's outcome as it comes. Returns the outcome and every attempt.
pub async fn autodiscover(
    cfg: DiscoveryConfig,
    http: &dyn HttpClient,
    mut progress: impl FnMut(&Attempt),
) -> (Result<Found, DiscoveryError>, Vec<Attempt>) {
    let mut d = Discovery::new(cfg);
    let mut seen = 0;
    while let Some(req) = d.poll_request() {
        let id = req.id;
        let answer = fetch(http, req).await;
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

/// One request of the walk (which follows redirects itself, to stop
/// loops), its body cut one byte past [`MAX_BODY_BYTES`] so the walk sees
/// it was too large.
async fn fetch(http: &dyn HttpClient, req: HttpRequest) -> Result<HttpResponse, String> {
    let mut r = http::Request {
        method: if req.method == "POST" {
            http::Method::Post
        } else {
            http::Method::Get
        },
        url: req.url,
        headers: req
            .headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect(),
        body: req.body,
        timeout: AUTODISCOVER_REQUEST_TIMEOUT,
    };
    if r.method == http::Method::Get {
        r.body.clear();
    }
    let run = async {
        let mut resp = http.send(r).await.map_err(|e| e.message)?;
        let mut body = Vec::new();
        while let Some(chunk) = resp.body.chunk().await.map_err(|e| e.message)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                body.extend_from_slice(
                    &chunk[..(MAX_BODY_BYTES + 1 - body.len()).min(chunk.len())],
                );
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status: resp.status,
            headers: resp.headers,
            body,
        })
    };
    tokio::time::timeout(AUTODISCOVER_REQUEST_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| Err("no complete answer in time".into()))
}
