//! Downloading the address book (PROTOCOL.md g): which file to fetch
//! comes from [`UpdatePlan`], the files come over HTTP(S) from the client's
//! [`HttpClient`] (built in: reqwest on the client's own rustls
//! configuration), and they are stored with
//! [`AbsStore`] (atomically) before the state file names them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use thiserror::Error;

use super::abstore::AbsStore;
use super::http::{self, HttpClient};
use crate::addressbook::format::parse_with_header;
use crate::addressbook::{
    AbsDay, AbsError, AbsFile, AddressBook, Entry, FileName, Stored, UpdatePlan, apply_delta,
    parse_file,
};
use crate::register::Credentials;

/// The largest address-book file accepted (64 MiB; a full file of
/// 100,000 people is about 18 MB). It bounds memory too: parsed entries
/// take at most a few tens of times the file's size.
pub const MAX_ABS_FILE_BYTES: usize = 64 << 20;

/// Settings for the address-book download.
#[derive(Debug, Clone)]
pub struct AddressBookConfig {
    /// The folder files are stored in (the app chooses it; Communicator
    /// uses the user's local application data).
    pub dir: PathBuf,
    /// The download URL; `None` takes the one in-band provisioning gives
    /// (internal, or external for remote users).
    pub url: Option<String>,
    /// `GalDownloadInitialDelay`: the upper bound of the random wait
    /// before the first download after sign-in.
    pub initial_delay: Duration,
    /// Time allowed for one file's HTTP exchange.
    pub timeout: Duration,
    /// Largest file accepted.
    pub max_bytes: usize,
    /// Answer an NTLM challenge over plain `http:` too. Off by default: on
    /// http anyone on the path can ask for the NTLMv2 response and crack
    /// or relay it (Basic is never sent over http).
    pub allow_ntlm_over_http: bool,
}

impl AddressBookConfig {
    /// Defaults around a folder: the provisioned URL, a 60-minute initial
    /// delay, 5 minutes per file, [`MAX_ABS_FILE_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> AddressBookConfig {
        AddressBookConfig {
            dir: dir.into(),
            url: None,
            initial_delay: Duration::from_secs(60 * 60),
            timeout: Duration::from_secs(300),
            max_bytes: MAX_ABS_FILE_BYTES,
            allow_ntlm_over_http: false,
        }
    }
}

/// Why a download failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// No URL: none configured, and in-band provisioning gave none.
    #[error("no address-book URL: none configured and in-band provisioning gave none")]
    NoUrl,
    /// The server has no full file for the last days.
    #[error("{url}: no address-book file on the server (looked for {looked_for})")]
    NothingOnServer {
        /// The base URL.
        url: String,
        /// The files asked for, e.g. `F-0A8C.lsabs … F-0A86.lsabs`.
        looked_for: String,
    },
    /// HTTP status other than 200 and 404.
    #[error("{url}: the server answered HTTP {status}{detail}")]
    Status {
        /// The file's URL.
        url: String,
        /// The status.
        status: u16,
        /// What else the answer said (for 401: the schemes it offers).
        detail: String,
    },
    /// Connecting, TLS or reading failed, or it took too long.
    #[error("{url}: {message}")]
    Http {
        /// The file's URL.
        url: String,
        /// The error and its causes.
        message: String,
    },
    /// The file is larger than the limit.
    #[error("{url}: larger than {limit} bytes")]
    TooLarge {
        /// The file's URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The file is not a valid address-book file.
    #[error("{file}: {error}")]
    Format {
        /// The file name.
        file: String,
        /// What is wrong, with the byte offset.
        error: AbsError,
    },
    /// Reading or writing the folder failed.
    #[error("address-book folder {dir}: {error}")]
    Store {
        /// The folder.
        dir: String,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The book, current to `stored.day()`.
    pub book: Arc<AddressBook>,
    /// The file fetched; `None` when the local book was already current.
    pub fetched: Option<FileName>,
    /// What the folder now holds (hand it to the next
    /// [`download_onto`] so the files need not be read again).
    pub stored: Stored,
}

/// Loads what the folder holds (full file plus deltas). `Ok(None)` when
/// there is nothing, or the stored files no longer parse: the next
/// download then starts from a full file.
pub fn load_stored(store: &AbsStore) -> Option<(Stored, Vec<Entry>)> {
    let state = store.state()?;
    let full = store.read(&state.full.to_string()).ok()?;
    let AbsFile::Full(mut entries) = parse_file(&full).ok()? else {
        return None;
    };
    for d in &state.deltas {
        let bytes = store.read(&d.to_string()).ok()?;
        let AbsFile::Delta(changes) = parse_file(&bytes).ok()? else {
            return None;
        };
        entries = apply_delta(entries, changes);
    }
    Some((state, entries))
}

/// One download run: loads the local book from the folder, then
/// [`download_onto`] it.
pub async fn download(
    base_url: &str,
    cfg: &AddressBookConfig,
    http: &dyn HttpClient,
    creds: Option<&Credentials>,
    today: AbsDay,
    now_unix: u64,
) -> Result<Downloaded, DownloadError> {
    let store = AbsStore::open(&cfg.dir).map_err(|error| DownloadError::Store {
        dir: cfg.dir.display().to_string(),
        error,
    })?;
    let local = tokio::task::spawn_blocking(move || load_stored(&store))
        .await
        .ok()
        .flatten();
    download_onto(base_url, cfg, http, creds, local, today, now_unix).await
}

/// One download run on top of `local` (what the folder holds, already in
/// memory: a client keeps it between runs instead of re-reading and
/// re-parsing the files): asks the server for the files [`UpdatePlan`]
/// names, newest first, applies the first one found and stores it.
/// `today` and `now_unix` come from the caller's clock. `creds` answer a
/// 401 over https: NTLM (connection-oriented, also under the Negotiate
/// scheme, as IIS accepts) or Basic.
pub async fn download_onto(
    base_url: &str,
    cfg: &AddressBookConfig,
    http: &dyn HttpClient,
    creds: Option<&Credentials>,
    local: Option<(Stored, Vec<Entry>)>,
    today: AbsDay,
    now_unix: u64,
) -> Result<Downloaded, DownloadError> {
    let store_err = |error: std::io::Error| DownloadError::Store {
        dir: cfg.dir.display().to_string(),
        error,
    };
    let store = AbsStore::open(&cfg.dir).map_err(store_err)?;
    // Deltas build on the full file: after 30 days go back to a full one,
    // however many deltas came in between (the chain stays short).
    let base = local
        .as_ref()
        .filter(|(s, _)| s.full.day().days_until(today) <= crate::addressbook::MAX_DELTA_AGE_DAYS)
        .map(|(s, _)| s.day());
    let mut plan = UpdatePlan::new(base, today);
    let mut asked = Vec::new();
    while let Some(name) = plan.next() {
        let url = format!("{}/{name}", base_url.trim_end_matches('/'));
        asked.push(name.to_string());
        let Some(bytes) = get(http, &url, cfg, creds).await? else {
            plan.not_found();
            continue;
        };
        let (header, file) = parse_with_header(&bytes).map_err(|error| DownloadError::Format {
            file: name.to_string(),
            error,
        })?;
        // The file must be the one asked for: a server (or proxy) handing
        // out another day's file would otherwise corrupt the book.
        let expected_base = match name {
            FileName::Delta { from, .. } | FileName::Compact { from, .. } => Some(from),
            FileName::Full { .. } => None,
        };
        if header.day != name.day() || header.base != expected_base {
            return Err(DownloadError::Format {
                file: name.to_string(),
                error: AbsError::wrong_file(format!(
                    "its header says {} day {}{}",
                    header.kind,
                    header.day,
                    header
                        .base
                        .map(|b| format!(" from day {b}"))
                        .unwrap_or_default()
                )),
            });
        }
        let (state, entries) = match (file, local) {
            (AbsFile::Full(entries), _) => (
                Stored {
                    full: name,
                    deltas: Vec::new(),
                    downloaded_unix: now_unix,
                },
                entries,
            ),
            (AbsFile::Delta(changes), Some((mut state, entries))) => {
                state.deltas.push(name);
                state.downloaded_unix = now_unix;
                (state, apply_delta(entries, changes))
            }
            (AbsFile::Delta(_), None) => {
                return Err(DownloadError::Format {
                    file: name.to_string(),
                    error: AbsError::unexpected_delta(),
                });
            }
        };
        let store2 = store.clone();
        let name_s = name.to_string();
        let state2 = state.clone();
        tokio::task::spawn_blocking(move || {
            store2.write_atomic(&name_s, &bytes)?;
            store2.save_state(&state2)
        })
        .await
        .map_err(|e| store_err(std::io::Error::other(e.to_string())))?
        .map_err(store_err)?;
        return Ok(Downloaded {
            book: Arc::new(AddressBook::new(entries)),
            fetched: Some(name),
            stored: state,
        });
    }
    match local {
        Some((mut state, entries)) => {
            state.downloaded_unix = now_unix;
            let st = state.clone();
            let _ = tokio::task::spawn_blocking(move || store.save_state(&st)).await;
            Ok(Downloaded {
                book: Arc::new(AddressBook::new(entries)),
                fetched: None,
                stored: state,
            })
        }
        None => Err(DownloadError::NothingOnServer {
            url: base_url.to_owned(),
            looked_for: match (asked.first(), asked.last()) {
                (Some(a), Some(b)) if a != b => format!("{a} … {b}"),
                (Some(a), _) => a.clone(),
                _ => "nothing".into(),
            },
        }),
    }
}

/// The largest 401 body read (and thrown away) so the connection can
/// carry the next leg of the handshake.
const MAX_CHALLENGE_BODY: usize = 64 << 10;

/// GETs `url`: `Ok(None)` on 404, the body on 200, all within `timeout`.
/// Redirects are followed (at most 5); a 401 is answered with `creds`
/// when the server offers a scheme we do, on the server the URL names.
async fn get(
    http: &dyn HttpClient,
    url: &str,
    cfg: &AddressBookConfig,
    creds: Option<&Credentials>,
) -> Result<Option<Vec<u8>>, DownloadError> {
    match tokio::time::timeout(cfg.timeout, get_within(http, url, cfg, creds)).await {
        Ok(r) => r,
        Err(_) => Err(DownloadError::Http {
            url: url.to_owned(),
            message: "no complete answer in time".to_owned(),
        }),
    }
}

async fn get_within(
    http: &dyn HttpClient,
    url: &str,
    cfg: &AddressBookConfig,
    creds: Option<&Credentials>,
) -> Result<Option<Vec<u8>>, DownloadError> {
    let map_err = |e: http::HttpError| DownloadError::Http {
        url: url.to_owned(),
        message: if e.timed_out {
            "no complete answer in time".to_owned()
        } else {
            e.message
        },
    };
    let first = http::Request::get(url, cfg.timeout);
    let (at, mut resp) = http::send_following(http, first, http::MAX_REDIRECTS, false)
        .await
        .map_err(map_err)?;
    let mut refused: Option<String> = None;
    if resp.status == 401
        && let Some(c) = creds
    {
        let offers = challenges(&resp);
        let has = |scheme: &str| offers.iter().any(|(s, _)| s.eq_ignore_ascii_case(scheme));
        let secure = at.starts_with("https:");
        if host_of(&at) != host_of(url) {
            refused = Some(format!(
                "the address book's server redirected to {at}; credentials are not sent to another server"
            ));
        } else if (has("NTLM") || has("Negotiate")) && (secure || cfg.allow_ntlm_over_http) {
            let scheme = if has("NTLM") { "NTLM" } else { "Negotiate" };
            resp = ntlm_handshake(http, &at, scheme, c, resp, cfg.timeout).await?;
        } else if has("NTLM") || has("Negotiate") {
            refused = Some(
                "NTLM over plain http, where anyone on the path could take the response; not sent (use https, or allow_ntlm_over_http)".into(),
            );
        } else if has("Basic") {
            if secure {
                resp.body.drain(MAX_CHALLENGE_BODY).await;
                let token = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    if c.domain.is_empty() {
                        c.username.clone()
                    } else {
                        format!("{}\\{}", c.domain, c.username)
                    },
                    c.password
                ));
                let req = http::Request::get(at.clone(), cfg.timeout)
                    .header("Authorization", format!("Basic {token}"));
                resp = http::send(http, req).await.map_err(map_err)?;
            } else {
                refused =
                    Some("Basic over plain http, which would expose the password; not sent".into());
            }
        }
    }
    let status = resp.status;
    if status == 404 {
        return Ok(None);
    }
    if !(200..300).contains(&status) {
        let detail = if status == 401 {
            let schemes: Vec<String> = challenges(&resp).into_iter().map(|(s, _)| s).collect();
            let wants = if schemes.is_empty() {
                "authentication".to_owned()
            } else {
                schemes.join(", ")
            };
            match (&refused, creds) {
                (Some(why), _) => format!(" (the server asks for {wants}: {why})"),
                (None, None) => {
                    format!(" (the server asks for {wants} and no credentials are configured)")
                }
                (None, Some(_)) => format!(
                    " (the server asks for {wants}; our credentials were refused or no scheme we speak was offered)"
                ),
            }
        } else {
            String::new()
        };
        return Err(DownloadError::Status {
            url: url.to_owned(),
            status,
            detail,
        });
    }
    match resp.read_body(cfg.max_bytes).await {
        Ok(body) => Ok(Some(body)),
        Err(http::FetchError::TooLarge) => Err(DownloadError::TooLarge {
            url: url.to_owned(),
            limit: cfg.max_bytes,
        }),
        Err(http::FetchError::Http(e)) => Err(map_err(e)),
    }
}

/// The host of an http(s) URL, lower case, without port or user.
fn host_of(url: &str) -> String {
    let origin = crate::autodiscover::origin_of(url).unwrap_or_default();
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
        None => authority.split(':').next().unwrap_or("").to_owned(),
    }
}

/// The `WWW-Authenticate` offers of a response: (scheme, token or params).
fn challenges(resp: &http::Response) -> Vec<(String, String)> {
    resp.header("www-authenticate")
        .map(|v| {
            let v = v.trim();
            match v.split_once(char::is_whitespace) {
                Some((s, rest)) => (s.to_owned(), rest.trim().to_owned()),
                None => (v.to_owned(), String::new()),
            }
        })
        .collect()
}

#[allow(clippy::disallowed_methods)]
fn filetime_now() -> u64 {
    // Windows FILETIME: 100 ns ticks since 1601-01-01.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (unix.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(unix.subsec_nanos() / 100)
}

/// Connection-oriented NTLM (MS-NLMP): NEGOTIATE, the server's CHALLENGE
/// in a 401, then AUTHENTICATE, all on one kept-alive connection (the
/// HTTP stack keeps it: [`HttpClient`]).
async fn ntlm_handshake(
    http: &dyn HttpClient,
    url: &str,
    scheme: &str,
    c: &Credentials,
    first: http::Response,
    timeout: Duration,
) -> Result<http::Response, DownloadError> {
    use crate::auth::ntlm::{
        AuthenticateParams, ChallengeMessage, HTTP_CLIENT_FLAGS, build_authenticate,
        negotiate_message,
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let fail = |message: String| DownloadError::Http {
        url: url.to_owned(),
        message,
    };
    let send_err = |e: http::HttpError| fail(e.message);
    first.body.drain(MAX_CHALLENGE_BODY).await;
    let req = http::Request::get(url, timeout).header(
        "Authorization",
        format!(
            "{scheme} {}",
            b64.encode(negotiate_message(HTTP_CLIENT_FLAGS))
        ),
    );
    let resp = http::send(http, req).await.map_err(send_err)?;
    if resp.status != 401 {
        return Ok(resp);
    }
    let token = challenges(&resp)
        .into_iter()
        .find(|(s, t)| s.eq_ignore_ascii_case(scheme) && !t.is_empty())
        .map(|(_, t)| t);
    let Some(token) = token else {
        return Ok(resp);
    };
    let challenge = ChallengeMessage::from_base64(&token)
        .map_err(|e| fail(format!("the server's NTLM challenge is malformed: {e}")))?;
    resp.body.drain(MAX_CHALLENGE_BODY).await;
    let mut random = [0u8; 24];
    getrandom::fill(&mut random).map_err(|e| fail(format!("no OS randomness: {e}")))?;
    let mut client_challenge = [0u8; 8];
    client_challenge.copy_from_slice(&random[..8]);
    let mut random_session_key = [0u8; 16];
    random_session_key.copy_from_slice(&random[8..]);
    let auth = build_authenticate(
        &challenge,
        &AuthenticateParams {
            user: &c.username,
            domain: &c.domain,
            password: &c.password,
            workstation: "",
            flags: challenge.flags & HTTP_CLIENT_FLAGS
                | crate::auth::ntlm::flags::NEGOTIATE_UNICODE,
            version: [0; 8],
            client_challenge,
            timestamp: filetime_now(),
            random_session_key,
        },
    )
    .map_err(|e| fail(format!("building the NTLM answer: {e}")))?;
    let req = http::Request::get(url, timeout)
        .header("Authorization", format!("{scheme} {}", auth.to_base64()));
    http::send(http, req).await.map_err(send_err)
}
