//! The address book's side of the session: when and from where it is
//! downloaded (the driver does the HTTP and keeps the files), and what the
//! snapshot says about it.

use super::*;

/// The address book's side of the session.
#[derive(Debug, Default)]
pub(super) struct AbsState {
    pub(super) schedule: Schedule,
    /// A download is running in the driver.
    pub(super) running: bool,
    /// When the first attempt found no URL yet (waiting for provisioning).
    pub(super) waiting_since: Option<Instant>,
    /// In-band provisioning (which carries the URL) has answered.
    pub(super) provisioning_done: bool,
    pub(super) book: Option<AddressBookRun>,
    pub(super) last_success: Option<Instant>,
    pub(super) last_error: Option<String>,
}

impl Client {
    pub(super) fn fill_address_book_info(&self, snap: &mut Snapshot, now: Instant) {
        let ab = &mut snap.address_book;
        let Some(cfg) = &self.cfg.address_book else {
            ab.status = "not configured (no address-book folder)".into();
            return;
        };
        if let Some(u) = &cfg.url {
            ab.url = Some(u.clone());
            ab.url_from = Some("client configuration".into());
        }
        ab.last_download = self
            .abs
            .last_success
            .map(|t| crate::diag::utc_timestamp(self.wall(t)));
        ab.next_download = self
            .abs
            .schedule
            .next_download()
            .map(|at| crate::diag::utc_timestamp(self.wall(at.max(now))));
        ab.status = match (&self.abs.book, &self.abs.last_error) {
            _ if self.abs.running => "downloading".into(),
            (_, Some(e)) => format!("failing: {e}"),
            (Some(b), None) => format!("{} entries, current to day {}", b.entries, b.day),
            (None, None) if self.signed_in_once => "waiting for the first download".into(),
            (None, None) => "waiting for sign-in".into(),
        };
    }

    /// Downloads the address book now instead of at the scheduled time.
    pub fn download_address_book(&mut self, now: Instant) {
        if self.cfg.address_book.is_some() {
            self.abs.schedule.download_now(now);
            self.address_book_due(now);
        }
    }

    /// What the address-book folder held when the driver started (search
    /// works before the first download).
    pub fn handle_address_book_loaded(&mut self, run: AddressBookRun) {
        // A download that finished first wins.
        if self.abs.book.is_none() {
            self.abs.book = Some(run.clone());
            self.emit(ClientEvent::AddressBook(AddressBookEvent::Ready {
                entries: run.entries,
                day: run.day,
                fetched: None,
            }));
        }
    }

    /// An [`Io::DownloadAddressBook`] run ended.
    pub fn handle_address_book_done(
        &mut self,
        result: Result<AddressBookRun, String>,
        now: Instant,
    ) {
        self.abs.running = false;
        match result {
            Ok(run) => {
                self.abs.schedule.succeeded(now);
                self.abs.last_success = Some(now);
                self.abs.last_error = None;
                self.abs.book = Some(run.clone());
                self.emit(ClientEvent::AddressBook(AddressBookEvent::Ready {
                    entries: run.entries,
                    day: run.day,
                    fetched: run.fetched,
                }));
            }
            Err(error) => {
                let out = self.abs.schedule.failed(now);
                self.abs.last_error = Some(error.clone());
                self.emit(ClientEvent::AddressBook(AddressBookEvent::Failed {
                    error: error.clone(),
                    failures: out.failures,
                    retry_in: out.retry_at.saturating_duration_since(now),
                }));
                if let Some(failing_for) = out.warn {
                    self.emit(ClientEvent::AddressBook(AddressBookEvent::FailingForADay {
                        failing_for,
                        error,
                    }));
                }
            }
        }
    }

    /// Starts a download when one is due: from the configured URL, else
    /// the one provisioning names. With GalDownloadInitialDelay 0 the first
    /// download is due before provisioning has answered: it waits for it
    /// (up to 30 s) instead of counting a failure.
    pub(super) fn address_book_due(&mut self, now: Instant) {
        let Some(cfg) = &self.cfg.address_book else {
            return;
        };
        if self.abs.running || !self.abs.schedule.start_if_due(now) {
            return;
        }
        let url = cfg.url.clone().or_else(|| {
            self.provisioning
                .last()
                .and_then(|p| p.abs_url(self.ep.registration().is_remote_user()))
                .map(str::to_owned)
        });
        match url {
            Some(url) => {
                self.abs.running = true;
                self.abs.waiting_since = None;
                self.io.push_back(Io::DownloadAddressBook { url });
            }
            None => {
                let since = *self.abs.waiting_since.get_or_insert(now);
                let ocs = self.cfg.endpoint.register.dialect == crate::discovery::Dialect::Ocs;
                if ocs && !self.abs.provisioning_done && now - since < Duration::from_secs(30) {
                    self.abs.schedule.postpone(now + Duration::from_millis(200));
                    return;
                }
                self.abs.waiting_since = None;
                self.handle_address_book_done(
                    Err("no address-book URL: none configured and none provisioned".into()),
                    now,
                );
            }
        }
    }

    pub(super) fn wall(&self, at: Instant) -> SystemTime {
        self.wall0.1 + at.saturating_duration_since(self.wall0.0)
    }
}
