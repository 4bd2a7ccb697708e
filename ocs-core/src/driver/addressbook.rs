//! Downloading the address book (PROTOCOL.md g): which file to fetch
//! comes from [`UpdatePlan`], the files come over HTTP(S) with reqwest
//! and the client's own rustls configuration, and they are stored with
//! [`AbsStore`] (atomically) before the state file names them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use super::abstore::AbsStore;
use super::conn::TlsSettings;
use crate::addressbook::format::parse_with_header;
use crate::addressbook::{
    AbsDay, AbsError, AbsFile, AddressBook, Entry, FileName, Stored, UpdatePlan, apply_delta,
    parse_file,
};

/// The largest address-book file accepted (256 MiB; a full file of
/// 100,000 people is a few tens of megabytes).
pub const MAX_ABS_FILE_BYTES: usize = 256 << 20;

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
    /// The book, current to [`Downloaded::day`].
    pub book: Arc<AddressBook>,
    /// The file fetched; `None` when the local book was already current.
    pub fetched: Option<FileName>,
    /// The day the book is current to.
    pub day: AbsDay,
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

/// One download run: loads the local book, asks the server for the
/// files [`UpdatePlan`] names, newest first, applies the first one found
/// and stores it. `today` and `now_unix` come from the caller's clock.
pub async fn download(
    base_url: &str,
    cfg: &AddressBookConfig,
    tls: &TlsSettings,
    today: AbsDay,
    now_unix: u64,
) -> Result<Downloaded, DownloadError> {
    let store_err = |error: std::io::Error| DownloadError::Store {
        dir: cfg.dir.display().to_string(),
        error,
    };
    let store = AbsStore::open(&cfg.dir).map_err(store_err)?;
    let local = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || load_stored(&store))
            .await
            .ok()
            .flatten()
    };
    let http = http_client(tls, cfg.timeout).map_err(|message| DownloadError::Http {
        url: base_url.to_owned(),
        message,
    })?;
    let mut plan = UpdatePlan::new(local.as_ref().map(|(s, _)| s.day()), today);
    let mut asked = Vec::new();
    while let Some(name) = plan.next() {
        let url = format!("{}/{name}", base_url.trim_end_matches('/'));
        asked.push(name.to_string());
        let Some(bytes) = get(&http, &url, cfg.max_bytes).await? else {
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
            day: state.day(),
        });
    }
    match local {
        Some((mut state, entries)) => {
            state.downloaded_unix = now_unix;
            let _ = store.save_state(&state);
            Ok(Downloaded {
                day: state.day(),
                book: Arc::new(AddressBook::new(entries)),
                fetched: None,
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

fn http_client(tls: &TlsSettings, timeout: Duration) -> Result<reqwest::Client, String> {
    let tls_config = tls.client_config().map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| super::customstates::chain(&e))
}

/// GETs `url`: `Ok(None)` on 404, the body on 200.
async fn get(
    http: &reqwest::Client,
    url: &str,
    max_bytes: usize,
) -> Result<Option<Vec<u8>>, DownloadError> {
    let map_err = |e: reqwest::Error| DownloadError::Http {
        url: url.to_owned(),
        message: if e.is_timeout() {
            "no complete answer in time".to_owned()
        } else {
            super::customstates::chain(&e.without_url())
        },
    };
    let mut resp = http.get(url).send().await.map_err(map_err)?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        let schemes: Vec<String> = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_whitespace().next().map(str::to_owned))
            .collect();
        let detail = if status == reqwest::StatusCode::UNAUTHORIZED {
            format!(
                " (the server asks for {}; HTTP authentication is not supported yet)",
                if schemes.is_empty() {
                    "authentication".to_owned()
                } else {
                    schemes.join(", ")
                }
            )
        } else {
            String::new()
        };
        return Err(DownloadError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            detail,
        });
    }
    let too_large = || DownloadError::TooLarge {
        url: url.to_owned(),
        limit: max_bytes,
    };
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
