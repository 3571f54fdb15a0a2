//! One `serve` per data directory, held by an OS file lock for the life of the process.
//!
//! The lock is what makes crash recovery safe: whoever holds it knows every claim in the
//! database belongs to a process that is gone. The OS drops it when the process dies, however
//! it dies, so a `kill -9` never leaves a directory locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use hookline_shared::StoreError;

const LOCK_FILE: &str = "serve.lock";

/// Held while this process serves the directory; released when dropped or the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
                "another hookline serve is using {}; stop it or pick another --data-dir",
                data_dir.display()
            ))),
            Err(TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}
