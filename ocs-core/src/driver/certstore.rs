//! Where a user's provisioned TLS-DSK certificate is kept: `USER.pem` and
//! `USER.key` in a folder the app chooses (its data folder), written
//! atomically (as the address-book folder is), the key readable by its owner only (mode 0600 on Unix; on
//! Windows the folder's ACL, which the app's data folder already limits
//! to the user). A certificate with less than [`RENEW_BEFORE`] left counts
//! as missing, so the caller provisions a new one first.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::abstore::write_file_atomic;
use crate::auth::tlsdsk::TlsDskAuthenticator;

/// How much validity a stored certificate needs to be used (SIPE's rule:
/// at least an hour).
pub const RENEW_BEFORE: Duration = crate::register::CERT_RENEW_BEFORE;

/// A folder of provisioned certificates, one per user.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
}

impl CertStore {
    /// Opens (creating if needed) the folder.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<CertStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(CertStore { dir })
    }

    /// The file names of `user`'s certificate and key.
    fn names(user: &str) -> io::Result<(String, String)> {
        let ok = !user.is_empty()
            && !user.starts_with('.')
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_".contains(c));
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{user:?} is not a plain user name"),
            ));
        }
        Ok((format!("{user}.pem"), format!("{user}.key")))
    }

    /// Keeps `user`'s certificate and key, replacing what was there.
    pub fn save(&self, user: &str, cert_pem: &str, key_pem: &str) -> io::Result<()> {
        let (cert, key) = CertStore::names(user)?;
        // The key first: a certificate is never there without its key.
        write_file_atomic(&self.dir, &key, key_pem.as_bytes(), true)?;
        write_file_atomic(&self.dir, &cert, cert_pem.as_bytes(), false)
    }

    /// `user`'s credential, when one is stored and has at least
    /// [`RENEW_BEFORE`] left at `now`; `Ok(None)` means provision one.
    pub fn load(
        &self,
        user: &str,
        roots: rustls::RootCertStore,
        now: SystemTime,
    ) -> io::Result<Option<TlsDskAuthenticator>> {
        let (cert, key) = CertStore::names(user)?;
        let (c, k) = match (fs::read(self.dir.join(cert)), fs::read(self.dir.join(key))) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let auth = TlsDskAuthenticator::from_pem(&c, &k, roots)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let fresh = auth
            .not_after()
            .and_then(|t| t.duration_since(now).ok())
            .is_some_and(|left| left >= RENEW_BEFORE);
        Ok(fresh.then_some(auth))
    }
}
