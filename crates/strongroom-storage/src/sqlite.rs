//! The SQLite backend: WAL journal, `synchronous=FULL` (a commit is on disk before it returns),
//! `secure_delete` (erased blobs are overwritten), one writer connection and a small pool of
//! readers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use strongroom_core::id::DomainName;
use strongroom_core::operator::OperatorName;
use strongroom_core::quorum::QuorumRule;
use strongroom_core::record::{
    ApprovalRecord, AuditRecord, DomainRecord, KeyRecord, OperatorRecord, PendingRecord,
    RequestStatus, SignedHead, TokenRecord, VaultMeta,
};
use strongroom_core::storage::{Storage, WriteBatch};
use strongroom_core::{
    DomainId, Error as CoreError, KeyId, OperatorId, PendingId, TokenId, UnixMillis, VaultId,
};

use crate::error::{Error, io};
use crate::sql::{self, Db, DbError, Fields, Param, Txn, storage_over_sql};

const SCHEMA_VERSION: i64 = 1;
const MIGRATION_1: &str = include_str!("../migrations/sqlite_001_init.sql");
const MAX_IDLE_READERS: usize = 8;

/// A strongroom database in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    read_only: bool,
    fields: Fields,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

// Temporary tables and sort spills stay in memory: a confined node may write only in its
// data directory (not /tmp), and vault rows never touch a shared temporary directory.
fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;",
    )
}

impl SqliteStore {
    /// Creates a new database at `path`, which must not exist yet.
    ///
    /// # Errors
    /// I/O or SQLite failures; [`Error::Io`] if the file already exists.
    pub fn create(path: &Path, vault_id: VaultId, now: UnixMillis) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        // create_new: never reuse whatever is at the path.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io("create database file"))?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        configure(&conn)?;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {MIGRATION_1} PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
        sql::create_vault(&mut Lite(&conn), vault_id, now)?;
        conn.execute_batch("COMMIT")?;
        Ok(Self {
            path: path.to_owned(),
            writer: Some(Mutex::new(conn)),
            readers: Mutex::new(vec![]),
            read_only: false,
            fields: Fields::default(),
        })
    }

    /// Opens an existing database, checking that it is intact and a strongroom database.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::UnsupportedSchema`] for a database that must not be used.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, false)
    }

    /// Opens an existing database for reading only (offline audit verification).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_read_only(path: &Path) -> Result<Self, Error> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, read_only: bool) -> Result<Self, Error> {
        if !path.is_file() {
            return Err(Error::Corrupt("database file is missing"));
        }
        // Inspect through a read-only connection first: setting WAL mode on a damaged or empty
        // file would write to it, and a file that fails these checks must stay as it was.
        let check =
            Self::connect(path, true).map_err(|_| Error::Corrupt("not a SQLite database"))?;
        let integrity: String = check
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|_| Error::Corrupt("not a SQLite database"))?;
        if integrity != "ok" {
            return Err(Error::Corrupt("SQLite integrity check failed"));
        }
        let version: i64 = check.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match version {
            0 => {
                return Err(Error::Corrupt(
                    "no strongroom schema (empty or foreign database)",
                ));
            }
            SCHEMA_VERSION => {}
            v => return Err(Error::UnsupportedSchema(v)),
        }
        let rows: i64 = check
            .query_row("SELECT count(*) FROM vault", [], |r| r.get(0))
            .map_err(|_| Error::Corrupt("vault table unreadable"))?;
        if rows != 1 {
            return Err(Error::Corrupt("vault row missing"));
        }
        drop(check);
        let writer = if read_only {
            None
        } else {
            Some(Mutex::new(Self::connect(path, false)?))
        };
        let store = Self {
            path: path.to_owned(),
            writer,
            readers: Mutex::new(vec![]),
            read_only,
            fields: Fields::default(),
        };
        // Fails on a vault row that does not parse.
        store.vault()?;
        Ok(store)
    }

    fn connect(path: &Path, read_only: bool) -> Result<Connection, rusqlite::Error> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        if read_only {
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
        } else {
            configure(&conn)?;
        }
        Ok(conn)
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `PRAGMA synchronous` on the writer (2 = FULL), for durability checks.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn synchronous_level(&self) -> Result<i64, CoreError> {
        let conn = Self::connect(&self.path, self.read_only).map_err(store_err)?;
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(store_err)
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, CoreError>) -> Result<T, CoreError> {
        let pooled = self.readers.lock().map_err(|_| poisoned())?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => Self::connect(&self.path, self.read_only).map_err(store_err)?,
        };
        let result = f(&mut Lite(&conn));
        let mut pool = self.readers.lock().map_err(|_| poisoned())?;
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }
}

fn poisoned() -> CoreError {
    CoreError::Storage("storage lock poisoned".into())
}

fn store_err(e: rusqlite::Error) -> CoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            CoreError::Corrupt("a column has the wrong type")
        }
        other => CoreError::Storage(Box::new(other)),
    }
}

fn db_err(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            DbError::Constraint {
                // 787 = SQLITE_CONSTRAINT_FOREIGNKEY: the parent row is missing.
                foreign_key: f.extended_code == 787,
            }
        }
        _ => DbError::Other(store_err(e)),
    }
}

/// The shared SQL on a SQLite connection (or transaction, which derefs to one).
struct Lite<'c>(&'c Connection);

/// The shared SQL writes `$N`; SQLite's numbered form is `?N` (a bare `$N` would be numbered
/// by first appearance, not by N).
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

fn value(p: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        Param::Int(v) => v.map_or(Value::Null, Value::Integer),
        Param::Text(v) => v.clone().map_or(Value::Null, Value::Text),
        Param::Bytes(v) => v.clone().map_or(Value::Null, Value::Blob),
    }
}

struct LiteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl sql::Row for LiteRow<'_, '_> {
    fn int(&self, i: usize) -> Result<Option<i64>, CoreError> {
        self.0.get(i).map_err(store_err)
    }
    fn text(&self, i: usize) -> Result<Option<String>, CoreError> {
        self.0.get(i).map_err(store_err)
    }
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, CoreError> {
        self.0.get(i).map_err(store_err)
    }
}

impl Db for Lite<'_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        let mut stmt = self.0.prepare_cached(&numbered(sql)).map_err(db_err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(value)))
            .map_err(db_err)?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Param],
        each: &mut dyn FnMut(&dyn sql::Row) -> Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        let mut stmt = self.0.prepare_cached(&numbered(sql)).map_err(store_err)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(value)))
            .map_err(store_err)?;
        while let Some(row) = rows.next().map_err(store_err)? {
            each(&LiteRow(row))?;
        }
        Ok(())
    }
}

impl SqliteStore {
    fn write_batch(&self, batch: WriteBatch<'_>) -> Result<(), CoreError> {
        let writer = self
            .writer
            .as_ref()
            .ok_or(CoreError::Storage("database opened read-only".into()))?;
        let mut conn = writer.lock().map_err(|_| poisoned())?;
        let shredded = {
            // IMMEDIATE: the write lock is taken at BEGIN, so the batch never waits half way.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_err)?;
            let mut db = Lite(&tx);
            let mut txn = Txn::new(&mut db, &self.fields);
            batch(&mut txn)?;
            let shredded = txn.shredded;
            tx.commit().map_err(store_err)?;
            shredded
        };
        if shredded {
            // secure_delete zeroes the erased blob in the database file, but older copies of
            // the page stay in the WAL until it is checkpointed and truncated.
            // The batch is already committed; a checkpoint that cannot run now (busy readers)
            // leaves the sealed blob in the WAL until the next one, which is logged, not failed.
            let busy: Result<i64, _> =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
            if !matches!(busy, Ok(0)) {
                tracing::warn!(
                    "WAL checkpoint after a key destruction did not complete; the erased blob stays in the WAL until the next checkpoint"
                );
            }
        }
        Ok(())
    }
}

storage_over_sql!(SqliteStore);
