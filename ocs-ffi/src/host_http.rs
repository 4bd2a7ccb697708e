//! HTTP supplied by the host (uniffi): the app's own HTTP stack (OkHttp,
//! URLSession, Python's `http.client`) carries the web services' requests
//! (autodiscover, CustomStateURL, the address book, certificate
//! provisioning), as Mozilla's application-services lets apps supply
//! theirs. The mobile build has no HTTP client of its own (no reqwest,
//! hyper or url: see README "Size"), so there the host must; elsewhere it
//! may, to use the platform's proxy settings and trust store.
//!
//! The host implements [`HttpTransport`]: one call per request, answered
//! through the [`HttpResponder`] it is given, from any thread, at once or
//! later: the head, the body in pieces, then the end (or a failure). The
//! library follows redirects itself, bounds every exchange in time and
//! size, and runs the host's `send` on a blocking-pool thread so a host may
//! simply do the request there.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use ocs_core::driver::http::{Body, HttpError, HttpFuture, Method, Request, Response};
use tokio::sync::{mpsc, oneshot};

/// One header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Its name, e.g. `Content-Type`.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A request the library asks the host to send. `Debug` hides
/// `Authorization` values.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// An absolute `http:` or `https:` URL.
    pub url: String,
    /// Headers to send besides the ones the HTTP stack adds (`Host`,
    /// `Content-Length`, `Connection`). `Authorization` values are secrets:
    /// do not log them.
    pub headers: Vec<HttpHeader>,
    /// The body (`POST`; empty for `GET`).
    pub body: Vec<u8>,
    /// Give up after this many milliseconds (the library stops waiting
    /// then in any case).
    pub timeout_ms: u64,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|h| {
                let secret = h.name.eq_ignore_ascii_case("authorization");
                (
                    h.name.as_str(),
                    if secret {
                        "<redacted>"
                    } else {
                        h.value.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The app's HTTP stack (see the module's documentation). Give it to
/// `OcsClient.with_http`.
///
/// `send` must not follow redirects (hand 3xx answers back as they are:
/// the library decides where credentials may follow) and should keep
/// connections alive and reuse them for the next request to the same
/// server: NTLM over HTTP (the address book on OCS) authenticates one
/// connection, so its legs must share it.
#[uniffi::export(with_foreign)]
pub trait HttpTransport: Send + Sync {
    /// Sends `request` and answers through `response`: `head` once, `body`
    /// for each piece, then `end`, or `fail` at any point. It may return
    /// before answering. An answer never given (the responder dropped
    /// without `end` or `fail`) fails the request, saying so.
    fn send(&self, request: HttpRequest, response: Arc<HttpResponder>);
}

/// How many body pieces may wait for the library before
/// [`HttpResponder::body`] blocks.
const BODY_QUEUE: usize = 8;

type Head = Result<(u16, Vec<(String, String)>), HttpError>;
/// A body piece, `None` at the end.
type Piece = Result<Option<Vec<u8>>, HttpError>;

/// Where the host puts one answer (see [`HttpTransport::send`]). Call it
/// from the host's own threads (the one `send` runs on is fine); `body`
/// blocks while the library is behind.
#[derive(uniffi::Object)]
pub struct HttpResponder {
    head: Mutex<Option<oneshot::Sender<Head>>>,
    body: Mutex<Option<mpsc::Sender<Piece>>>,
}

impl HttpResponder {
    fn take_head(&self) -> Option<oneshot::Sender<Head>> {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn body_sender(&self) -> Option<mpsc::Sender<Piece>> {
        self.body.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends the body with `last` and lets go of the channel.
    fn finish(&self, last: Piece) {
        let tx = self.body.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let _ = tx.blocking_send(last);
        }
    }
}

#[uniffi::export]
impl HttpResponder {
    /// The status and headers, once, before any `body`. Returns false when
    /// the library no longer wants the answer (it timed out or was
    /// cancelled): stop then.
    pub fn head(&self, status: u16, headers: Vec<HttpHeader>) -> bool {
        let Some(tx) = self.take_head() else {
            return false;
        };
        let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
        tx.send(Ok((status, headers))).is_ok()
    }

    /// The next piece of the body. Blocks while earlier pieces wait to be
    /// read; returns false when the library stopped reading (the body was
    /// over its limit, the time ran out, or the request was cancelled):
    /// stop sending then.
    pub fn body(&self, chunk: Vec<u8>) -> bool {
        if self
            .head
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            // A body before its head is the host's mistake: say so.
            self.fail(
                "the HTTP transport sent a body before the head".into(),
                false,
            );
            return false;
        }
        match self.body_sender() {
            Some(tx) => tx.blocking_send(Ok(Some(chunk))).is_ok(),
            None => false,
        }
    }

    /// The body is complete.
    pub fn end(&self) {
        self.finish(Ok(None));
    }

    /// The exchange failed: no connection, TLS, a reset, or (`timed_out`)
    /// no answer in time. `message` says why, for the user and the log.
    pub fn fail(&self, message: String, timed_out: bool) {
        let e = HttpError { timed_out, message };
        match self.take_head() {
            Some(tx) => {
                let _ = tx.send(Err(e));
                self.body.lock().unwrap_or_else(|p| p.into_inner()).take();
            }
            None => self.finish(Err(e)),
        }
    }
}

/// The host's [`HttpTransport`] as the core's HTTP stack
/// ([`ocs_core::driver::HttpClient`]); `OcsClient.with_http` makes one.
pub struct HostHttp(pub Arc<dyn HttpTransport>);

impl ocs_core::driver::HttpClient for HostHttp {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        let transport = self.0.clone();
        Box::pin(async move {
            let (head_tx, head_rx) = oneshot::channel();
            let (body_tx, body_rx) = mpsc::channel(BODY_QUEUE);
            let responder = Arc::new(HttpResponder {
                head: Mutex::new(Some(head_tx)),
                body: Mutex::new(Some(body_tx)),
            });
            let req = HttpRequest {
                method: request.method.as_str().to_owned(),
                url: request.url,
                headers: request
                    .headers
                    .into_iter()
                    .map(|(name, value)| HttpHeader { name, value })
                    .collect(),
                body: if request.method == Method::Post {
                    request.body
                } else {
                    Vec::new()
                },
                timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            };
            // The host may do the whole request inside `send`: give it a
            // thread that may block. A host that throws leaves the
            // responder unanswered, which the head's channel reports.
            tokio::task::spawn_blocking(move || {
                let _ = catch_unwind(AssertUnwindSafe(|| transport.send(req, responder)));
            });
            let (status, headers) = match head_rx.await {
                Ok(head) => head?,
                Err(_) => {
                    return Err(HttpError::new(
                        "the app's HTTP transport gave no answer (its responder was dropped)",
                    ));
                }
            };
            let chunks = futures_util::stream::unfold(Some(body_rx), |rx| async move {
                let mut rx = rx?;
                match rx.recv().await {
                    Some(Ok(Some(chunk))) => Some((Ok(chunk), Some(rx))),
                    Some(Ok(None)) => None,
                    Some(Err(e)) => Some((Err(e), None)),
                    None => Some((
                        Err(HttpError::new(
                            "the app's HTTP transport stopped before the end of the body",
                        )),
                        None,
                    )),
                }
            });
            Ok(Response {
                status,
                headers,
                body: Body::from_stream(chunks),
            })
        })
    }
}
