//! HTTP for the web services (autodiscover, CustomStateURL, the address
//! book, the web ticket and certificate provisioning), behind one small
//! interface, [`HttpClient`], so a host can supply its own: a mobile app
//! hands in the platform's stack (OkHttp, URLSession) through the FFI and
//! the library then links no HTTP client of its own (the mobile build is
//! smaller by reqwest, hyper and url). The built-in client
//! ([`builtin`], feature `builtin-http`) is reqwest on the client's own
//! rustls settings and is the default everywhere else.
//!
//! The interface is one request, one answer with a streamed body. What
//! HTTP does beyond that stays here, the same for every backend:
//! redirects are followed by [`send_following`] (the caller decides where
//! credentials may go and whether plain http is allowed), every exchange is
//! bounded in time ([`Request::timeout`]) and in size (bodies are read in
//! chunks and refused past a limit, never buffered whole first).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

/// `GET` or `POST` (all the web services need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST, with [`Request::body`].
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One HTTP request. `Debug` hides `Authorization` values.
#[derive(Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An absolute `http:` or `https:` URL.
    pub url: String,
    /// Headers to send, besides the ones the HTTP stack adds itself
    /// (`Host`, `Content-Length`, `Connection`).
    pub headers: Vec<(String, String)>,
    /// The body (`POST`).
    pub body: Vec<u8>,
    /// The whole exchange, connect to the last body byte, must end within
    /// this. The library enforces it around every backend; a backend should
    /// also give up after it so the connection is not left busy.
    pub timeout: Duration,
}

impl Request {
    /// A `GET` of `url` with no headers.
    pub fn get(url: impl Into<String>, timeout: Duration) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout,
        }
    }

    /// A `POST` of `body` to `url` with no headers.
    pub fn post(url: impl Into<String>, body: Vec<u8>, timeout: Duration) -> Request {
        Request {
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body,
            timeout,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers = crate::trace::redacted_headers(
            self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why an exchange failed before a complete answer: no connection, TLS,
/// a reset, or no answer in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    /// It ran out of time ([`Request::timeout`]).
    pub timed_out: bool,
    /// What went wrong, with its causes (no URL: callers add it).
    pub message: String,
}

impl HttpError {
    /// A failure that is not a timeout.
    pub fn new(message: impl Into<String>) -> HttpError {
        HttpError {
            timed_out: false,
            message: message.into(),
        }
    }

    fn timeout(after: Duration) -> HttpError {
        HttpError {
            timed_out: true,
            message: format!(
                "no complete answer within {}",
                crate::error::show_duration(after)
            ),
        }
    }
}

/// A response body, read chunk by chunk as it arrives.
pub struct Body {
    chunks: Pin<Box<dyn Stream<Item = Result<Vec<u8>, HttpError>> + Send>>,
}

impl Body {
    /// A body from a stream of chunks (an error ends it).
    pub fn from_stream(
        chunks: impl Stream<Item = Result<Vec<u8>, HttpError>> + Send + 'static,
    ) -> Body {
        Body {
            chunks: Box::pin(chunks),
        }
    }

    /// A body already in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            (!bytes.is_empty()).then_some(Ok(bytes)),
        ))
    }

    /// The next chunk; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        self.chunks.next().await.transpose()
    }

    /// The whole body, or [`FetchError::TooLarge`] as soon as it passes
    /// `limit` bytes (what came so far is dropped).
    pub async fn read_to_limit(mut self, limit: usize) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await.map_err(FetchError::Http)? {
            if out.len() + c.len() > limit {
                return Err(FetchError::TooLarge);
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// Reads and drops at most `limit` bytes, so a kept-alive connection
    /// can carry the next request (an answer that is not wanted: a
    /// redirect, a 401 before the next leg of a handshake).
    pub async fn drain(mut self, limit: usize) {
        let mut seen = 0;
        while let Ok(Some(c)) = self.chunk().await {
            seen += c.len();
            if seen > limit {
                break;
            }
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

/// An HTTP answer: status and headers, the body to come.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names as sent; a header sent twice is here twice.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// Values of header `name` (case-insensitive).
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, when sent and a number.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .next()
            .and_then(|v| v.trim().parse().ok())
    }

    /// The body, at most `limit` bytes: refused at once when
    /// `Content-Length` says it is larger, else as soon as it passes the
    /// limit. The body is taken; the status and headers stay.
    pub async fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, FetchError> {
        if self.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge);
        }
        std::mem::replace(&mut self.body, Body::from_bytes(Vec::new()))
            .read_to_limit(limit)
            .await
    }
}

/// What [`HttpClient::send`] returns.
pub type HttpFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, HttpError>> + Send + 'a>>;

/// An HTTP stack: sends one request and gives its answer with the body to
/// come. Implementations must not follow redirects (the library does, and
/// decides where credentials go) and should keep connections alive and
/// reuse them for the next request to the same origin: NTLM over HTTP
/// authenticates a connection, so the address book's three-leg handshake
/// only works when its legs share one. Any status is an answer, not an
/// error.
pub trait HttpClient: Send + Sync {
    /// Sends `request`.
    fn send(&self, request: Request) -> HttpFuture<'_>;
}

/// The HTTP stack a client uses, shared by its background jobs
/// ([`super::ClientConfig::http`]).
#[derive(Clone)]
pub struct SharedHttp(pub Arc<dyn HttpClient>);

impl SharedHttp {
    /// Shares `http`.
    pub fn new(http: impl HttpClient + 'static) -> SharedHttp {
        SharedHttp(Arc::new(http))
    }
}

impl std::ops::Deref for SharedHttp {
    type Target = dyn HttpClient;
    fn deref(&self) -> &(dyn HttpClient + 'static) {
        &*self.0
    }
}

impl std::fmt::Debug for SharedHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedHttp(..)")
    }
}

/// The built-in HTTP client on `tls` (reqwest), or why there is none: a
/// build without feature `builtin-http` (the mobile build) needs the host's
/// ([`super::ClientConfig::http`]).
pub fn builtin(tls: &super::TlsSettings) -> Result<SharedHttp, HttpError> {
    #[cfg(feature = "builtin-http")]
    {
        Ok(SharedHttp::new(ReqwestHttp::new(tls)?))
    }
    #[cfg(not(feature = "builtin-http"))]
    {
        let _ = tls;
        Err(HttpError::new(
            "this build has no HTTP client of its own (feature builtin-http) and the host supplied none",
        ))
    }
}

/// Sends `request` through `http`, the head bounded by its timeout.
pub async fn send(http: &dyn HttpClient, request: Request) -> Result<Response, HttpError> {
    let after = request.timeout;
    match tokio::time::timeout(after, http.send(request)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::timeout(after)),
    }
}

/// A whole exchange: the answer's status and headers and at most `limit`
/// body bytes, all within the request's timeout.
pub async fn fetch(
    http: &dyn HttpClient,
    request: Request,
    limit: usize,
) -> Result<(Response, Vec<u8>), FetchError> {
    let after = request.timeout;
    let run = async {
        let mut resp = http.send(request).await.map_err(FetchError::Http)?;
        let bytes = resp.read_body(limit).await?;
        Ok((resp, bytes))
    };
    match tokio::time::timeout(after, run).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Http(HttpError::timeout(after))),
    }
}

/// Why [`fetch`] (or reading a body against a limit) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The body passed the limit.
    TooLarge,
    /// The exchange failed or took too long.
    Http(HttpError),
}

/// The most redirects [`send_following`] follows.
pub const MAX_REDIRECTS: usize = 5;

/// The largest unwanted body read (and dropped) to keep a connection.
const MAX_DRAIN: usize = 64 << 10;

/// Sends a `GET` and follows up to `max` redirects (301, 302, 303, 307,
/// 308 with a `Location`), each hop bounded by the request's timeout. With
/// `https_only` a hop to plain http is refused. The headers go to every
/// hop on the first URL's origin and to none elsewhere (credentials must
/// not follow a redirect to another server). Returns the final URL and
/// its answer.
pub async fn send_following(
    http: &dyn HttpClient,
    request: Request,
    max: usize,
    https_only: bool,
) -> Result<(String, Response), HttpError> {
    let origin = crate::autodiscover::origin_of(&request.url);
    let mut req = request;
    let mut hops = 0;
    loop {
        if https_only
            && !req
                .url
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("https:")
        {
            return Err(HttpError::new(format!(
                "{}: only https is allowed (high-security mode)",
                req.url
            )));
        }
        let url = req.url.clone();
        let resp = send(http, req.clone()).await?;
        let location = matches!(resp.status, 301 | 302 | 303 | 307 | 308)
            .then(|| resp.header("location").next().map(str::to_owned))
            .flatten();
        let Some(location) = location else {
            return Ok((url, resp));
        };
        if hops == max {
            return Err(HttpError::new(format!(
                "more than {max} redirects (the last to {location})"
            )));
        }
        hops += 1;
        // A redirect's body is dropped, within the request's time: a server
        // trickling it must not hold the caller.
        let _ = tokio::time::timeout(req.timeout, resp.body.drain(MAX_DRAIN)).await;
        req.url = crate::autodiscover::resolve(&url, &location);
        req.method = Method::Get;
        req.body.clear();
        if crate::autodiscover::origin_of(&req.url) != origin {
            req.headers.clear();
        }
    }
}

/// The reason phrase of common status codes (empty for others): for
/// messages, as a host's stack may not hand its own.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The error and its causes, joined (reqwest's own message hides the TLS
/// or connection reason in the source chain).
#[cfg(feature = "builtin-http")]
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The built-in client: reqwest on the client's rustls settings, no
/// redirects, one idle connection kept per host (NTLM's legs share it).
#[cfg(feature = "builtin-http")]
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

#[cfg(feature = "builtin-http")]
impl ReqwestHttp {
    /// A client trusting what `tls` trusts.
    pub fn new(tls: &super::TlsSettings) -> Result<ReqwestHttp, HttpError> {
        let tls_config = tls
            .client_config()
            .map_err(|e| HttpError::new(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config)
            .pool_max_idle_per_host(1)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::new(chain(&e)))?;
        Ok(ReqwestHttp { client })
    }
}

#[cfg(feature = "builtin-http")]
impl HttpClient for ReqwestHttp {
    fn send(&self, request: Request) -> HttpFuture<'_> {
        Box::pin(async move {
            let err = |e: reqwest::Error| HttpError {
                timed_out: e.is_timeout(),
                message: chain(&e.without_url()),
            };
            let method = match request.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
            };
            let mut b = self
                .client
                .request(method, &request.url)
                .timeout(request.timeout);
            for (n, v) in &request.headers {
                b = b.header(n.as_str(), v.as_str());
            }
            if request.method == Method::Post {
                b = b.body(request.body);
            }
            let resp = b.send().await.map_err(err)?;
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
            let chunks = futures_util::stream::unfold(Some(resp), move |resp| async move {
                let mut resp = resp?;
                match resp.chunk().await {
                    Ok(Some(c)) => Some((Ok(c.to_vec()), Some(resp))),
                    Ok(None) => None,
                    // An error ends the body.
                    Err(e) => Some((Err(err(e)), None)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A scripted answer: status, headers, body.
    type Answer<'a> = (u16, &'a [(&'a str, &'a str)], &'a [u8]);
    type Owned = (u16, Vec<(String, String)>, Vec<u8>);

    /// Answers from a script and records what it was asked.
    struct Scripted {
        answers: Mutex<Vec<Owned>>,
        asked: Mutex<Vec<Request>>,
    }

    impl Scripted {
        fn new(answers: Vec<Answer<'_>>) -> Scripted {
            let mut a: Vec<_> = answers
                .into_iter()
                .map(|(s, h, b)| {
                    (
                        s,
                        h.iter()
                            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                            .collect(),
                        b.to_vec(),
                    )
                })
                .collect();
            a.reverse();
            Scripted {
                answers: Mutex::new(a),
                asked: Mutex::default(),
            }
        }
    }

    impl HttpClient for Scripted {
        fn send(&self, request: Request) -> HttpFuture<'_> {
            self.asked.lock().expect("lock").push(request);
            let next = self.answers.lock().expect("lock").pop();
            Box::pin(async move {
                let (status, headers, body) = next.ok_or_else(|| HttpError::new("no answer"))?;
                Ok(Response {
                    status,
                    headers,
                    body: Body::from_bytes(body),
                })
            })
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn debug_hides_credentials() {
        let r = Request::get("https://h/", Duration::from_secs(1))
            .header("Authorization", "Basic c2VjcmV0")
            .header("Accept", "*/*");
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("c2VjcmV0") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(shown.contains("*/*"), "{shown}");
    }

    #[test]
    fn redirects_keep_credentials_on_their_origin_only() {
        let http = Scripted::new(vec![
            (302, &[("Location", "/b")], b"moved"),
            (301, &[("location", "https://other.example/c")], b""),
            (200, &[], b"done"),
        ]);
        let req = Request::get("https://pool.contoso.com/a", Duration::from_secs(5))
            .header("Authorization", "Basic x");
        let (url, resp) = rt()
            .block_on(send_following(&http, req, 5, true))
            .expect("followed");
        assert_eq!(url, "https://other.example/c");
        assert_eq!(resp.status, 200);
        let asked = http.asked.lock().expect("lock");
        let urls: Vec<&str> = asked.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://pool.contoso.com/a",
                "https://pool.contoso.com/b",
                "https://other.example/c"
            ]
        );
        assert_eq!(asked[1].headers.len(), 1, "same origin: kept");
        assert!(asked[2].headers.is_empty(), "another origin: dropped");
    }

    #[test]
    fn redirect_limits_and_high_security() {
        let looping: Vec<Answer<'_>> = (0..10)
            .map(|_| (302, &[("Location", "/x")][..], &b""[..]))
            .collect();
        let e = rt()
            .block_on(send_following(
                &Scripted::new(looping),
                Request::get("http://h/x", Duration::from_secs(5)),
                MAX_REDIRECTS,
                false,
            ))
            .expect_err("loop");
        assert!(e.message.contains("more than 5 redirects"), "{e}");

        let down = Scripted::new(vec![(301, &[("Location", "http://h/plain")], b"")]);
        let e = rt()
            .block_on(send_following(
                &down,
                Request::get("https://h/x", Duration::from_secs(5)),
                5,
                true,
            ))
            .expect_err("downgrade");
        assert!(e.message.contains("only https"), "{e}");
        assert_eq!(down.asked.lock().expect("lock").len(), 1);
    }

    #[test]
    fn a_redirect_body_that_never_ends_does_not_hold_the_walk() {
        /// A redirect whose body never ends, then the answer.
        struct Trickle(Mutex<u32>);
        impl HttpClient for Trickle {
            fn send(&self, _: Request) -> HttpFuture<'_> {
                let first = {
                    let mut n = self.0.lock().expect("lock");
                    *n += 1;
                    *n == 1
                };
                Box::pin(async move {
                    let body = if first {
                        Body::from_stream(futures_util::stream::pending())
                    } else {
                        Body::from_bytes(b"ok".to_vec())
                    };
                    Ok(Response {
                        status: if first { 302 } else { 200 },
                        headers: vec![("Location".into(), "/next".into())],
                        body,
                    })
                })
            }
        }
        let http = Trickle(Mutex::new(0));
        let walk = send_following(
            &http,
            Request::get("http://h/first", Duration::from_millis(100)),
            5,
            false,
        );
        // Bounded here too, so a regression fails instead of hanging.
        let (url, resp) = rt()
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), walk).await })
            .expect("the redirect's body held the walk")
            .expect("followed");
        assert_eq!((url.as_str(), resp.status), ("http://h/next", 200));
    }

    #[test]
    fn fetch_bounds_size_and_time() {
        let big = Scripted::new(vec![(200, &[], &[7u8; 100][..])]);
        let r = rt().block_on(fetch(
            &big,
            Request::get("http://h/", Duration::from_secs(5)),
            99,
        ));
        assert!(matches!(r, Err(FetchError::TooLarge)));
        let declared = Scripted::new(vec![(200, &[("Content-Length", "1000000")], b"")]);
        let r = rt().block_on(fetch(
            &declared,
            Request::get("http://h/", Duration::from_secs(5)),
            99,
        ));
        assert!(matches!(r, Err(FetchError::TooLarge)));

        /// Never answers.
        struct Silent;
        impl HttpClient for Silent {
            fn send(&self, _: Request) -> HttpFuture<'_> {
                Box::pin(std::future::pending())
            }
        }
        let r = rt().block_on(fetch(
            &Silent,
            Request::get("http://h/", Duration::from_millis(50)),
            99,
        ));
        match r {
            Err(FetchError::Http(e)) => assert!(e.timed_out, "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
