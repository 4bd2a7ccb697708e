//! The client task's background work: HTTP for CustomStateURL and the
//! address book, and reading the address-book folder. The session decides
//! when and from where ([`crate::client::Io`]); results come back to the
//! task over a channel and go on to the session.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::addressbook::{DownloadError, Downloaded};
use super::client::{Task, now};
use crate::addressbook::{AbsDay, AddressBook, Stored};
use crate::client::AddressBookRun;
use crate::customstates::{CustomStates, Violation};

/// HTTP and file work done in the background, back to the client task.
pub(super) enum AbsMsg {
    /// What the address-book folder held at start.
    Stored(Option<(Arc<AddressBook>, Stored)>),
    /// An address-book download run finished.
    Done(Result<Downloaded, DownloadError>),
    /// A CustomStateURL fetch finished.
    CustomStates {
        url: String,
        result: Result<(CustomStates, Vec<Violation>), String>,
    },
    /// Certificate provisioning finished.
    #[cfg(feature = "cert-provisioning")]
    Certificate(Result<crate::auth::tlsdsk::TlsDskAuthenticator, String>),
}

/// The background work's side of the task: the address book in memory
/// (for search and the next download) and the channel results come back on.
pub(super) struct AbsState {
    pub(super) book: Option<Arc<AddressBook>>,
    /// What the folder holds (the book's files and day), kept so the next
    /// download builds on the book in memory instead of re-reading them.
    pub(super) stored: Option<Stored>,
    pub(super) run: Option<AbortOnDrop>,
    /// Made at the first background job (a client with no address book
    /// and no CustomStateURL never pays for the channel's 2.3 KB); the
    /// task's loop takes `rx` when it appears.
    pub(super) tx: Option<mpsc::UnboundedSender<AbsMsg>>,
    pub(super) rx: Option<mpsc::UnboundedReceiver<AbsMsg>>,
}

impl AbsState {
    /// The sender background jobs report on.
    fn sender(&mut self) -> mpsc::UnboundedSender<AbsMsg> {
        if let Some(tx) = &self.tx {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx = Some(tx.clone());
        self.rx = Some(rx);
        tx
    }
}

/// Aborts a spawned task when dropped.
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[allow(clippy::disallowed_methods)]
fn wall() -> SystemTime {
    SystemTime::now()
}

impl Task {
    /// The HTTP stack for the web services: the host's, else the built-in
    /// one made on first use and kept for the client's later jobs (its
    /// connections stay pooled).
    pub(super) fn http(&mut self) -> Result<super::SharedHttp, String> {
        if let Some(h) = &self.cfg.http {
            return Ok(h.clone());
        }
        let h = super::http::builtin(&self.cfg.tls).map_err(|e| e.message)?;
        self.cfg.http = Some(h.clone());
        Ok(h)
    }

    /// Fetches CustomStateURL in the background (a fetch still running is
    /// cancelled); the result goes back to the session.
    pub(super) fn fetch_custom_states(&mut self, url: String) {
        let c = self.session.config();
        let (client, high_security) = (c.custom_state_client, c.high_security);
        let http = self.http();
        let tx = self.abs.sender();
        self.custom_states_fetch = Some(AbortOnDrop(tokio::spawn(async move {
            let result = match http {
                Ok(http) => super::fetch_custom_states(&url, client, high_security, &*http)
                    .await
                    .map(|l| (l.states, l.warnings))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let _ = tx.send(AbsMsg::CustomStates { url, result });
        })));
    }

    /// Without the feature: the session hears at once that it cannot be.
    #[cfg(not(feature = "cert-provisioning"))]
    pub(super) fn provision_certificate(&mut self, _url: String, _renewal: bool) {
        self.session.handle_certificate_done(
            Err("this build has no certificate provisioning (feature cert-provisioning)".into()),
            now(),
        );
    }

    /// Provisions a TLS-DSK certificate in the background (a job still
    /// running is cancelled); the result goes back to the session.
    #[cfg(feature = "cert-provisioning")]
    pub(super) fn provision_certificate(&mut self, url: String, renewal: bool) {
        let c = self.session.config();
        let entity = c
            .endpoint
            .register
            .aor
            .trim_start_matches("sip:")
            .to_owned();
        let credentials = super::client::web_login(c);
        let store = self.cfg.certificates.as_ref().and_then(|c| c.store.clone());
        let tls = self.cfg.tls.clone();
        let http = self.http();
        let tx = self.abs.sender();
        self.certificate_job = Some(AbortOnDrop(tokio::spawn(async move {
            let job = async {
                let http = http?;
                super::certprov::provision_for(
                    &url,
                    &entity,
                    credentials,
                    store,
                    renewal,
                    &tls,
                    &*http,
                )
                .await
            };
            let result = match tokio::time::timeout(2 * super::CERTPROV_TIMEOUT, job).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "certificate provisioning did not finish within {}",
                    crate::error::show_duration(2 * super::CERTPROV_TIMEOUT)
                )),
            };
            let _ = tx.send(AbsMsg::Certificate(result));
        })));
    }

    /// Reads what the address-book folder holds, in the background, so
    /// search works before the first download.
    pub(super) fn load_stored_address_book(&mut self) {
        let Some(ab) = &self.cfg.address_book else {
            return;
        };
        let dir = ab.dir.clone();
        let tx = self.abs.sender();
        tokio::task::spawn_blocking(move || {
            let stored = super::abstore::AbsStore::open(&dir)
                .ok()
                .and_then(|s| super::addressbook::load_stored(&s))
                .map(|(st, entries)| (Arc::new(AddressBook::new(entries)), st));
            let _ = tx.send(AbsMsg::Stored(stored));
        });
    }

    /// Starts one download run from `url` (the session decided when and
    /// from where); its result comes back as [`AbsMsg::Done`].
    pub(super) fn start_address_book_download(&mut self, url: String) {
        let Some(cfg) = self.cfg.address_book.clone() else {
            return;
        };
        let tx = self.abs.sender();
        let http = match self.http() {
            Ok(h) => h,
            Err(message) => {
                let _ = tx.send(AbsMsg::Done(Err(super::DownloadError::Http {
                    url,
                    message,
                })));
                return;
            }
        };
        let creds = self.session.config().endpoint.credentials.clone();
        let local = self
            .abs
            .stored
            .clone()
            .zip(self.abs.book.as_ref().map(|b| b.entries().to_vec()));
        let unix = wall()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.abs.run = Some(AbortOnDrop(tokio::spawn(async move {
            let today = AbsDay::from_unix_secs(unix);
            let r = match local {
                Some(local) => {
                    super::addressbook::download_onto(
                        &url,
                        &cfg,
                        &*http,
                        creds.as_ref(),
                        Some(local),
                        today,
                        unix,
                    )
                    .await
                }
                // Not loaded yet (or nothing there): read the folder.
                None => {
                    super::addressbook::download(&url, &cfg, &*http, creds.as_ref(), today, unix)
                        .await
                }
            };
            let _ = tx.send(AbsMsg::Done(r));
        })));
    }

    pub(super) fn address_book_message(&mut self, m: AbsMsg) {
        let t = now();
        match m {
            AbsMsg::Stored(Some((book, stored))) => {
                // A download that finished first wins.
                if self.abs.book.is_none() {
                    let run = AddressBookRun {
                        entries: book.len(),
                        day: stored.day().to_string(),
                        fetched: None,
                    };
                    self.abs.book = Some(book);
                    self.abs.stored = Some(stored);
                    self.session.handle_address_book_loaded(run);
                }
            }
            AbsMsg::Stored(None) => {}
            AbsMsg::Done(r) => {
                self.abs.run = None;
                let r = r
                    .map(|d| {
                        let run = AddressBookRun {
                            entries: d.book.len(),
                            day: d.stored.day().to_string(),
                            fetched: d.fetched.map(|f| f.to_string()),
                        };
                        self.abs.book = Some(d.book);
                        self.abs.stored = Some(d.stored);
                        run
                    })
                    .map_err(|e| e.to_string());
                self.session.handle_address_book_done(r, t);
            }
            AbsMsg::CustomStates { url, result } => {
                self.custom_states_fetch = None;
                self.session.handle_custom_states_done(url, result);
            }
            #[cfg(feature = "cert-provisioning")]
            AbsMsg::Certificate(result) => {
                self.certificate_job = None;
                let result =
                    result.map(|a| Box::new(a) as Box<dyn crate::auth::mechanism::Authenticator>);
                self.session.handle_certificate_done(result, t);
            }
        }
    }
}
