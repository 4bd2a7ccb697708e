//! Where a user's provisioned TLS-DSK certificate is kept: `USER.pem` and
//! `USER.key` in a folder the app chooses (its data folder), written
//! atomically, the key readable by its owner only (mode 0600 on Unix; on
//! Windows the folder's ACL, which the app's data folder already limits
//! to the user). A certificate with less than [`RENEW_BEFORE`] left counts
//! as missing, so the caller provisions a new one first.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::auth::tlsdsk::TlsDskAuthenticator;

/// How much validity a stored certificate needs to be used (SIPE's rule:
/// at least an hour).
pub const RENEW_BEFORE: Duration = Duration::from_secs(3600);

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

    fn paths(&self, user: &str) -> io::Result<(PathBuf, PathBuf)> {
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
        Ok((
            self.dir.join(format!("{user}.pem")),
            self.dir.join(format!("{user}.key")),
        ))
    }

    /// Keeps `user`'s certificate and key, replacing what was there.
    pub fn save(&self, user: &str, cert_pem: &str, key_pem: &str) -> io::Result<()> {
        let (cert, key) = self.paths(user)?;
        // The key first: a certificate is never there without its key.
        write_atomic(&key, key_pem.as_bytes(), true)?;
        write_atomic(&cert, cert_pem.as_bytes(), false)
    }

    /// `user`'s credential, when one is stored and has at least
    /// [`RENEW_BEFORE`] left at `now`; `Ok(None)` means provision one.
    pub fn load(
        &self,
        user: &str,
        roots: rustls::RootCertStore,
        now: SystemTime,
    ) -> io::Result<Option<TlsDskAuthenticator>> {
        let (cert, key) = self.paths(user)?;
        let (c, k) = match (fs::read(&cert), fs::read(&key)) {
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

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("credential");
    let tmp = dir.join(format!(".{name}.partial"));
    // A leftover temporary file would keep its old mode: start afresh.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
