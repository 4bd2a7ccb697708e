//! Loading the `CustomStateURL` file (PROTOCOL.md d): the URL rules of
//! [`crate::customstates::check_url`] first, then `file:` from disk or
//! `http(s):` over the client's [`HttpClient`] (built in: reqwest on the
//! client's own rustls configuration, the same trust roots as the SIP
//! connection), with a size limit and a timeout, then the lenient
//! [`crate::customstates::load`].

use std::io::Read;
use std::time::Duration;

use thiserror::Error;

use super::http::{self, HttpClient};
use crate::customstates::{ClientVersion, Loaded, Violation, check_url, file_url_path, load};

/// The largest custom-states file accepted (1 MiB; a valid one is a few
/// hundred bytes).
pub const MAX_CUSTOM_STATES_BYTES: usize = 1 << 20;

/// How long fetching the file may take in all (connect, TLS, body).
pub const CUSTOM_STATES_TIMEOUT: Duration = Duration::from_secs(15);

/// Limits for [`fetch_custom_states_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest body (or file) accepted, in bytes.
    pub max_bytes: usize,
    /// Time allowed for the whole HTTP exchange.
    pub timeout: Duration,
}

impl Default for FetchLimits {
    fn default() -> FetchLimits {
        FetchLimits {
            max_bytes: MAX_CUSTOM_STATES_BYTES,
            timeout: CUSTOM_STATES_TIMEOUT,
        }
    }
}

/// Why the custom-states file could not be loaded. Problems *inside* the
/// file are not errors: they are the warnings of [`Loaded`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CustomStatesError {
    /// The URL breaks the `CustomStateURL` rules (scheme, client version,
    /// SIP high-security mode).
    #[error("CustomStateURL refused: {0}")]
    UrlNotAllowed(Violation),
    /// The URL could not be parsed.
    #[error("CustomStateURL {url} is not a valid URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Reading a `file:` URL failed.
    #[error("reading {path}: {source}")]
    File {
        /// The local path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server answered with a non-success status.
    #[error("{url}: the server answered HTTP {status}{}", if reason.is_empty() { String::new() } else { format!(" {reason}") })]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Its reason phrase (canonical, may be empty).
        reason: String,
    },
    /// No complete answer within the timeout.
    #[error("{url}: no complete answer within {} s", after.as_secs_f32())]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The body (or file) is larger than the limit.
    #[error("{url}: the custom-states file is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// Connecting, TLS (e.g. an untrusted certificate) or HTTP failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// The error and its causes.
        message: String,
    },
}

/// Loads the custom states named by a `CustomStateURL`: checks the URL
/// against `client`'s rules and `high_security`, reads or fetches it with
/// the default [`FetchLimits`], and parses it leniently (the valid states
/// plus warnings).
pub async fn fetch_custom_states(
    url: &str,
    client: ClientVersion,
    high_security: bool,
    http: &dyn HttpClient,
) -> Result<Loaded, CustomStatesError> {
    let bytes =
        fetch_custom_states_bytes(url, client, high_security, http, FetchLimits::default()).await?;
    Ok(load(&bytes))
}

/// The raw bytes of the custom-states file at `url` (for strict checking
/// with [`crate::customstates::validate`]). The URL rules are applied
/// first; `http(s):` redirects are followed (at most 5) and, in
/// high-security mode, only to `https:`.
pub async fn fetch_custom_states_bytes(
    url: &str,
    client: ClientVersion,
    high_security: bool,
    http: &dyn HttpClient,
    limits: FetchLimits,
) -> Result<Vec<u8>, CustomStatesError> {
    let url = url.trim();
    check_url(url, client, high_security).map_err(CustomStatesError::UrlNotAllowed)?;
    if let Some(path) = file_url_path(url) {
        return read_file(path, url, limits.max_bytes).await;
    }
    fetch_http(url, high_security, http, limits).await
}

async fn read_file(path: String, url: &str, limit: usize) -> Result<Vec<u8>, CustomStatesError> {
    let url = url.to_owned();
    let url2 = url.clone();
    let task = tokio::task::spawn_blocking(move || {
        let read = || -> std::io::Result<Vec<u8>> {
            let f = std::fs::File::open(&path)?;
            let mut out = Vec::new();
            f.take(limit as u64 + 1).read_to_end(&mut out)?;
            Ok(out)
        };
        match read() {
            Ok(b) if b.len() > limit => Err(CustomStatesError::TooLarge { url, limit }),
            Ok(b) => Ok(b),
            Err(source) => Err(CustomStatesError::File { path, source }),
        }
    });
    task.await.map_err(|e| CustomStatesError::Http {
        url: url2,
        message: format!("the reading task failed: {e}"),
    })?
}

async fn fetch_http(
    url: &str,
    high_security: bool,
    http: &dyn HttpClient,
    limits: FetchLimits,
) -> Result<Vec<u8>, CustomStatesError> {
    let bad = |reason: &str| CustomStatesError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if url.contains(char::is_whitespace) {
        return Err(bad("it contains white space"));
    }
    match crate::autodiscover::origin_of(url) {
        Some(o) if !o.ends_with("://") => {}
        _ => return Err(bad("no host")),
    }
    let failed = |e: http::HttpError| {
        if e.timed_out {
            CustomStatesError::Timeout {
                url: url.to_owned(),
                after: limits.timeout,
            }
        } else {
            CustomStatesError::Http {
                url: url.to_owned(),
                message: e.message,
            }
        }
    };
    let run = async {
        let req = http::Request::get(url, limits.timeout);
        let (_, mut resp) = http::send_following(http, req, http::MAX_REDIRECTS, high_security)
            .await
            .map_err(failed)?;
        if !(200..300).contains(&resp.status) {
            return Err(CustomStatesError::Status {
                url: url.to_owned(),
                status: resp.status,
                reason: http::reason_phrase(resp.status).to_owned(),
            });
        }
        resp.read_body(limits.max_bytes).await.map_err(|e| match e {
            http::FetchError::TooLarge => CustomStatesError::TooLarge {
                url: url.to_owned(),
                limit: limits.max_bytes,
            },
            http::FetchError::Http(e) => failed(e),
        })
    };
    tokio::time::timeout(limits.timeout, run)
        .await
        .unwrap_or_else(|_| {
            Err(CustomStatesError::Timeout {
                url: url.to_owned(),
                after: limits.timeout,
            })
        })
}

#[cfg(all(test, feature = "builtin-http"))]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    const XML: &str = r#"<customStates><customState ID="1" availability="busy"><activity LCID="1033">In the lab</activity></customState><customState ID="2" availability="away"><activity>x</activity></customState></customStates>"#;

    #[test]
    fn file_url_loads_leniently() {
        let dir = std::env::temp_dir().join(format!("ocs-cs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("states file.xml");
        std::fs::write(&path, XML).expect("write");
        let url = format!(
            "file://{}",
            path.to_string_lossy()
                .replace('\\', "/")
                .replace(' ', "%20")
        );
        let url = if url.starts_with("file:///") {
            url
        } else {
            url.replacen("file://", "file:///", 1)
        };
        let tls = http::builtin(&super::super::TlsSettings::default()).expect("http");
        let tls = &*tls;
        let l = rt()
            .block_on(fetch_custom_states(&url, ClientVersion::Oc2007, false, tls))
            .expect("loaded");
        assert_eq!(l.states.states.len(), 1);
        assert_eq!(l.states.states[0].text(1033), Some("In the lab"));
        assert_eq!(l.warnings.len(), 1, "away is a warning");

        // R2 and high-security mode refuse file: before touching the disk.
        let e = rt()
            .block_on(fetch_custom_states(
                &url,
                ClientVersion::Oc2007R2,
                false,
                tls,
            ))
            .expect_err("r2");
        assert!(matches!(e, CustomStatesError::UrlNotAllowed(_)), "{e}");
        let e = rt()
            .block_on(fetch_custom_states(&url, ClientVersion::Oc2007, true, tls))
            .expect_err("hs");
        assert!(e.to_string().contains("high-security"), "{e}");

        // Too large.
        let limits = FetchLimits {
            max_bytes: 10,
            ..FetchLimits::default()
        };
        let e = rt()
            .block_on(fetch_custom_states_bytes(
                &url,
                ClientVersion::Oc2007,
                false,
                tls,
                limits,
            ))
            .expect_err("large");
        assert!(
            matches!(e, CustomStatesError::TooLarge { limit: 10, .. }),
            "{e}"
        );

        // Missing file.
        let missing = url.replace("states%20file", "nope");
        let e = rt()
            .block_on(fetch_custom_states(
                &missing,
                ClientVersion::Oc2007,
                false,
                tls,
            ))
            .expect_err("missing");
        assert!(matches!(e, CustomStatesError::File { .. }), "{e}");
        assert!(e.to_string().contains("nope.xml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_urls_are_errors_not_panics() {
        let http = http::builtin(&super::super::TlsSettings::default()).expect("http");
        for u in [
            "http://",
            "https://[::1",
            "http://exa mple/x",
            "gopher://x/y",
            "",
        ] {
            let r = rt().block_on(fetch_custom_states(u, ClientVersion::Oc2007, false, &*http));
            assert!(r.is_err(), "{u}");
        }
    }
}
