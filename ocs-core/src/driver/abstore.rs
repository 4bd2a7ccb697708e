//! The address-book folder: downloaded `.lsabs` files and a small state
//! file, all written atomically (temporary file, fsync, rename, fsync of
//! the folder), so a crash or power cut leaves either the old file or the
//! new one, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::addressbook::{FileName, Stored};

/// The state file's name in the folder.
pub const STATE_FILE: &str = "ocs-address-book.state";

/// An address-book folder chosen by the app.
#[derive(Debug, Clone)]
pub struct AbsStore {
    dir: PathBuf,
}

impl AbsStore {
    /// Opens (creating if needed) the folder.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<AbsStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(AbsStore { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as `name`, atomically.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if name.contains(['/', '\\']) || name.starts_with('.') || name.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a plain file name"),
            ));
        }
        write_file_atomic(&self.dir, name, bytes, false)
    }

    /// Reads a file of the folder.
    pub fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    /// What was stored last time (`None` when nothing was, or the state
    /// file is unreadable: then the next download starts afresh).
    pub fn state(&self) -> Option<Stored> {
        let text = fs::read_to_string(self.dir.join(STATE_FILE)).ok()?;
        Stored::parse(&text)
    }

    /// Records `state` atomically, then removes `.lsabs`/`.dabs` files and
    /// leftovers of interrupted writes the state no longer names.
    pub fn save_state(&self, state: &Stored) -> io::Result<()> {
        self.write_atomic(STATE_FILE, state.to_text().as_bytes())?;
        let keep: Vec<String> = state.files().map(|f| f.to_string()).collect();
        for e in fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale_partial = name.starts_with('.') && name.ends_with(".partial");
            let stale_abs = FileName::parse(name).is_some() && !keep.iter().any(|k| k == name);
            if stale_partial || stale_abs {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(())
    }
}

/// Writes `dir/name` atomically: a temporary file, fsync, rename, fsync of
/// the folder. `private`: readable by its owner only (mode 0600 on Unix;
/// elsewhere the folder's ACL decides), for keys.
pub(super) fn write_file_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    private: bool,
) -> io::Result<()> {
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
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    // The rename is only durable once the folder's entry is on disk.
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows cannot open a directory as a file; NTFS journals the rename.
    Ok(())
}
