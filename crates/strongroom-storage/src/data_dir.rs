//! The data directory: the database, the signed-head file, and (dev mode only) the dev share
//! and token. An exclusive lock keeps a second process out.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use strongroom_core::{UnixMillis, VaultId};

use crate::error::{Error, io};
use crate::sqlite::SqliteStore;

/// Files that only exist once a vault has lived in the directory. If any is present, a
/// missing database means it was deleted, not that the vault is new.
const VAULT_TRACES: &[&str] = &[
    "audit-head",
    "dev-unseal-share",
    "dev-token",
    "vault.db-wal",
];

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    // Held for the life of the process; the OS releases it on exit, even after kill -9.
    _lock: File,
}

/// The database found in (or created in) a data directory.
#[derive(Debug)]
pub enum Opened {
    /// An existing vault's database.
    Existing(SqliteStore),
    /// A new database, created because the directory was empty of any vault.
    Fresh(SqliteStore),
}

impl DataDir {
    /// Opens `path` (creating it with mode 0700 if needed) and takes its exclusive lock.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process holds it; I/O failures.
    pub fn open(path: &Path) -> Result<Self, Error> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io("create data directory"))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.join("lock"))
            .map_err(io("open lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(path.to_owned())),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Io {
                    what: "lock data directory",
                    source: e,
                });
            }
        }
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite database file.
    #[must_use]
    pub fn db_path(&self) -> PathBuf {
        self.path.join("vault.db")
    }

    /// The signed-head file.
    #[must_use]
    pub fn head_path(&self) -> PathBuf {
        self.path.join("audit-head")
    }

    /// For a node whose database is elsewhere (PostgreSQL): the directory keeps only the lock
    /// and this node's signed-head file, and must not hold a SQLite vault (two databases for
    /// one data directory would be one too many).
    ///
    /// # Errors
    /// [`Error::Config`] if a SQLite database is present.
    pub fn expect_external_database(&self) -> Result<(), Error> {
        if self.db_path().exists() {
            return Err(Error::Config(
                "data_dir holds a SQLite vault; a PostgreSQL node needs a data directory of its own",
            ));
        }
        Ok(())
    }

    /// Opens the database, or creates one only if the directory holds no trace of a vault.
    ///
    /// # Errors
    /// [`Error::DatabaseMissing`] if vault files exist without a database; open errors.
    pub fn open_store(
        &self,
        new_vault_id: impl FnOnce() -> VaultId,
        now: UnixMillis,
    ) -> Result<Opened, Error> {
        let db = self.db_path();
        if db.exists() {
            return SqliteStore::open(&db).map(Opened::Existing);
        }
        if VAULT_TRACES.iter().any(|f| self.path.join(f).exists()) {
            return Err(Error::DatabaseMissing(self.path.clone()));
        }
        SqliteStore::create(&db, new_vault_id(), now).map(Opened::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::storage::Storage;

    #[test]
    fn second_process_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let _a = DataDir::open(dir.path()).unwrap();
        assert!(matches!(DataDir::open(dir.path()), Err(Error::Locked(_))));
    }

    #[test]
    fn fresh_only_when_empty_and_never_over_a_damaged_database() {
        let dir = tempfile::tempdir().unwrap();
        let vid = VaultId::from_random([4; 16]);
        {
            let d = DataDir::open(dir.path()).unwrap();
            let Opened::Fresh(store) = d.open_store(|| vid, UnixMillis(1)).unwrap() else {
                panic!("not fresh")
            };
            assert_eq!(store.vault().unwrap().vault_id, vid);
            assert_eq!(
                store.synchronous_level().unwrap(),
                2,
                "synchronous must be FULL"
            );
        }
        {
            let d = DataDir::open(dir.path()).unwrap();
            let Opened::Existing(store) = d.open_store(|| unreachable!(), UnixMillis(2)).unwrap()
            else {
                panic!("not existing")
            };
            assert_eq!(store.vault().unwrap().vault_id, vid);
        }
        // Truncated to nothing: refused, not recreated.
        std::fs::write(dir.path().join("vault.db"), b"").unwrap();
        let _ = std::fs::remove_file(dir.path().join("vault.db-wal"));
        let d = DataDir::open(dir.path()).unwrap();
        assert!(matches!(
            d.open_store(|| vid, UnixMillis(3)),
            Err(Error::Corrupt(_))
        ));
        // Garbage: refused.
        std::fs::write(dir.path().join("vault.db"), vec![0x5a; 8192]).unwrap();
        assert!(matches!(
            d.open_store(|| vid, UnixMillis(3)),
            Err(Error::Corrupt(_))
        ));
        // Deleted, with the head file left behind: refused.
        std::fs::remove_file(dir.path().join("vault.db")).unwrap();
        std::fs::write(dir.path().join("audit-head"), b"x").unwrap();
        assert!(matches!(
            d.open_store(|| vid, UnixMillis(3)),
            Err(Error::DatabaseMissing(_))
        ));
    }
}
