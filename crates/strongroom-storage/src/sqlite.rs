//! The SQLite backend: WAL journal, `synchronous=FULL` (a commit is on disk before it returns),
//! `secure_delete` (erased blobs are overwritten), one writer connection and a small pool of
//! readers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};
use strongroom_core::id::DomainName;
use strongroom_core::operator::{OperatorName, Roles};
use strongroom_core::quorum::{GatedOp, QuorumRule};
use strongroom_core::record::{
    ApprovalRecord, AuditEvent, AuditRecord, DomainRecord, InitRecord, KeyRecord, OperatorRecord,
    Outcome, PendingRecord, RequestStatus, SignedHead, TokenKind, TokenRecord, VaultMeta,
};
use strongroom_core::storage::{Mutation, Storage, WriteBatch, WriteTxn};
use strongroom_core::temperature::Temperature;
use strongroom_core::{
    Algorithm, DomainId, Error as CoreError, KeyId, OperatorId, PendingId, RequestId, TokenId,
    UnixMillis, VaultId,
};

use crate::error::{Error, io};

const SCHEMA_VERSION: i64 = 1;
const MIGRATION_1: &str = include_str!("../migrations/sqlite_001_init.sql");
const MAX_IDLE_READERS: usize = 8;

/// A strongroom database in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    read_only: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
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
        conn.execute(
            "INSERT INTO vault (id, vault_id, created_at) VALUES (1, ?1, ?2)",
            params![vault_id.as_bytes().as_slice(), to_i64(now.0)?],
        )?;
        conn.execute_batch("COMMIT")?;
        Ok(Self {
            path: path.to_owned(),
            writer: Some(Mutex::new(conn)),
            readers: Mutex::new(vec![]),
            read_only: false,
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
        self.read(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, CoreError> {
        let pooled = self.readers.lock().map_err(|_| poisoned())?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => Self::connect(&self.path, self.read_only).map_err(store_err)?,
        };
        let result = f(&conn).map_err(store_err);
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

fn to_i64(v: u64) -> Result<i64, CoreError> {
    i64::try_from(v).map_err(|_| CoreError::Corrupt("integer out of range"))
}

fn from_i64(v: i64) -> Result<u64, rusqlite::Error> {
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn corrupt(what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, what.into())
}

fn arr<const N: usize>(row: &Row<'_>, idx: usize) -> Result<[u8; N], rusqlite::Error> {
    let v: Vec<u8> = row.get(idx)?;
    v.try_into()
        .map_err(|_| corrupt("fixed-size blob has the wrong length"))
}

fn opt_millis(row: &Row<'_>, idx: usize) -> Result<Option<UnixMillis>, rusqlite::Error> {
    row.get::<_, Option<i64>>(idx)?
        .map(|v| from_i64(v).map(UnixMillis))
        .transpose()
}

fn millis(row: &Row<'_>, idx: usize) -> Result<UnixMillis, rusqlite::Error> {
    from_i64(row.get(idx)?).map(UnixMillis)
}

const DOMAIN_COLS: &str = "id, name, wrapped_key, created_at, new_keys, destroyed_at";
fn domain_row(row: &Row<'_>) -> Result<DomainRecord, rusqlite::Error> {
    let name: String = row.get(1)?;
    Ok(DomainRecord {
        id: DomainId::from_bytes(arr(row, 0)?),
        name: name
            .parse::<DomainName>()
            .map_err(|_| corrupt("domain name"))?,
        wrapped_key: row.get(2)?,
        created_at: millis(row, 3)?,
        new_key_temperature: temperature(row, 4)?,
        destroyed_at: opt_millis(row, 5)?,
    })
}

fn temperature(row: &Row<'_>, idx: usize) -> Result<Temperature, rusqlite::Error> {
    let t: String = row.get(idx)?;
    t.parse().map_err(|_| corrupt("temperature"))
}

const KEY_COLS: &str = "id, domain_id, version, algorithm, label, public_key, created_at, destroyed_at, sealed_secret, temperature, temperature_mac, temperature_since, hot_idle_secs";
fn key_row(row: &Row<'_>) -> Result<KeyRecord, rusqlite::Error> {
    let alg: String = row.get(3)?;
    Ok(KeyRecord {
        id: KeyId::from_bytes(arr(row, 0)?),
        domain: DomainId::from_bytes(arr(row, 1)?),
        version: u32::try_from(row.get::<_, i64>(2)?).map_err(|_| corrupt("key version"))?,
        algorithm: alg.parse::<Algorithm>().map_err(|_| corrupt("algorithm"))?,
        label: row.get(4)?,
        public_key: row.get(5)?,
        created_at: millis(row, 6)?,
        destroyed_at: opt_millis(row, 7)?,
        sealed_secret: row.get(8)?,
        temperature: temperature(row, 9)?,
        temperature_mac: arr(row, 10)?,
        temperature_since: millis(row, 11)?,
        hot_idle_secs: row
            .get::<_, Option<i64>>(12)?
            .map(|s| u32::try_from(s).map_err(|_| corrupt("idle limit")))
            .transpose()?,
    })
}

const TOKEN_COLS: &str =
    "id, hash, kind, domain_id, created_at, expires_at, revoked_at, mac, operator_id";
fn token_row(row: &Row<'_>) -> Result<TokenRecord, rusqlite::Error> {
    let kind: String = row.get(2)?;
    let domain: Option<Vec<u8>> = row.get(3)?;
    let operator: Option<Vec<u8>> = row.get(8)?;
    let kind = match (kind.as_str(), domain, operator) {
        ("root", None, None) => TokenKind::Root,
        ("bootstrap", None, None) => TokenKind::Bootstrap,
        ("app", Some(d), None) => TokenKind::Application(DomainId::from_bytes(
            d.try_into().map_err(|_| corrupt("token domain"))?,
        )),
        ("session", None, Some(o)) => TokenKind::Session(OperatorId::from_bytes(
            o.try_into().map_err(|_| corrupt("token operator"))?,
        )),
        _ => return Err(corrupt("token kind")),
    };
    Ok(TokenRecord {
        id: TokenId::from_bytes(arr(row, 0)?),
        hash: arr(row, 1)?,
        kind,
        created_at: millis(row, 4)?,
        expires_at: opt_millis(row, 5)?,
        revoked_at: opt_millis(row, 6)?,
        mac: arr(row, 7)?,
    })
}

const OPERATOR_COLS: &str = "id, name, roles, domain_id, password_hash, must_change_password, totp_sealed, totp_last_step, failed_logins, locked_until, approval_key, created_at, disabled_at, mac";
fn operator_row(row: &Row<'_>) -> Result<OperatorRecord, rusqlite::Error> {
    let name: String = row.get(1)?;
    let roles: i64 = row.get(2)?;
    let domain: Option<Vec<u8>> = row.get(3)?;
    let approval: Option<Vec<u8>> = row.get(10)?;
    Ok(OperatorRecord {
        id: OperatorId::from_bytes(arr(row, 0)?),
        name: name
            .parse::<OperatorName>()
            .map_err(|_| corrupt("operator name"))?,
        roles: u8::try_from(roles)
            .ok()
            .and_then(|b| Roles::from_bits(b).ok())
            .ok_or_else(|| corrupt("operator roles"))?,
        domain: domain
            .map(|d| {
                d.try_into()
                    .map(DomainId::from_bytes)
                    .map_err(|_| corrupt("operator domain"))
            })
            .transpose()?,
        password_hash: row.get(4)?,
        must_change_password: row.get(5)?,
        totp_sealed: row.get(6)?,
        totp_last_step: row.get::<_, Option<i64>>(7)?.map(from_i64).transpose()?,
        failed_logins: u32::try_from(row.get::<_, i64>(8)?)
            .map_err(|_| corrupt("failed logins"))?,
        locked_until: opt_millis(row, 9)?,
        approval_key: approval
            .map(|k| k.try_into().map_err(|_| corrupt("approval key")))
            .transpose()?,
        created_at: millis(row, 11)?,
        disabled_at: opt_millis(row, 12)?,
        mac: arr(row, 13)?,
    })
}

fn operator_params(o: &OperatorRecord) -> Result<Vec<rusqlite::types::Value>, CoreError> {
    use rusqlite::types::Value;
    let opt = |t: Option<UnixMillis>| -> Result<Value, CoreError> {
        Ok(t.map(|t| to_i64(t.0))
            .transpose()?
            .map_or(Value::Null, Value::Integer))
    };
    Ok(vec![
        Value::Blob(o.id.as_bytes().to_vec()),
        Value::Text(o.name.as_str().to_owned()),
        Value::Integer(i64::from(o.roles.bits())),
        o.domain
            .map_or(Value::Null, |d| Value::Blob(d.as_bytes().to_vec())),
        Value::Text(o.password_hash.clone()),
        Value::Integer(i64::from(o.must_change_password)),
        Value::Blob(o.totp_sealed.clone()),
        o.totp_last_step
            .map(to_i64)
            .transpose()?
            .map_or(Value::Null, Value::Integer),
        Value::Integer(i64::from(o.failed_logins)),
        opt(o.locked_until)?,
        o.approval_key
            .map_or(Value::Null, |k| Value::Blob(k.to_vec())),
        Value::Integer(to_i64(o.created_at.0)?),
        opt(o.disabled_at)?,
        Value::Blob(o.mac.to_vec()),
    ])
}

const PENDING_COLS: &str = "id, op, params, domain_id, key_id, requester, requester_operator, required, created_at, expires_at, nonce, hash, status, result, decided_at, mac";
fn opt_id<T>(
    row: &Row<'_>,
    idx: usize,
    make: fn([u8; 16]) -> T,
) -> Result<Option<T>, rusqlite::Error> {
    row.get::<_, Option<Vec<u8>>>(idx)?
        .map(|b| b.try_into().map(make).map_err(|_| corrupt("identifier")))
        .transpose()
}
fn pending_row(row: &Row<'_>) -> Result<PendingRecord, rusqlite::Error> {
    let op: String = row.get(1)?;
    let status: String = row.get(12)?;
    Ok(PendingRecord {
        id: PendingId::from_bytes(arr(row, 0)?),
        op: op
            .parse::<GatedOp>()
            .map_err(|_| corrupt("request operation"))?,
        params: row.get(2)?,
        domain: opt_id(row, 3, DomainId::from_bytes)?,
        key: opt_id(row, 4, KeyId::from_bytes)?,
        requester: row.get(5)?,
        requester_operator: opt_id(row, 6, OperatorId::from_bytes)?,
        required: u8::try_from(row.get::<_, i64>(7)?).map_err(|_| corrupt("required approvals"))?,
        created_at: millis(row, 8)?,
        expires_at: millis(row, 9)?,
        nonce: arr(row, 10)?,
        hash: arr(row, 11)?,
        status: RequestStatus::parse(&status).ok_or_else(|| corrupt("request status"))?,
        result: row.get(13)?,
        decided_at: opt_millis(row, 14)?,
        mac: arr(row, 15)?,
    })
}
fn pending_params(p: &PendingRecord) -> Result<Vec<rusqlite::types::Value>, CoreError> {
    use rusqlite::types::Value;
    let id = |b: Option<&[u8; 16]>| b.map_or(Value::Null, |b| Value::Blob(b.to_vec()));
    Ok(vec![
        Value::Blob(p.id.as_bytes().to_vec()),
        Value::Text(p.op.as_str().to_owned()),
        Value::Text(p.params.clone()),
        id(p.domain.as_ref().map(DomainId::as_bytes)),
        id(p.key.as_ref().map(KeyId::as_bytes)),
        Value::Text(p.requester.clone()),
        id(p.requester_operator.as_ref().map(OperatorId::as_bytes)),
        Value::Integer(i64::from(p.required)),
        Value::Integer(to_i64(p.created_at.0)?),
        Value::Integer(to_i64(p.expires_at.0)?),
        Value::Blob(p.nonce.to_vec()),
        Value::Blob(p.hash.to_vec()),
        Value::Text(p.status.as_str().to_owned()),
        p.result.clone().map_or(Value::Null, Value::Text),
        p.decided_at
            .map(|t| to_i64(t.0))
            .transpose()?
            .map_or(Value::Null, Value::Integer),
        Value::Blob(p.mac.to_vec()),
    ])
}

// Written out (not formatted from AUDIT_COLS) because it runs once per audited request.
const INSERT_AUDIT: &str = "INSERT INTO audit (seq, prev_hash, hash, time, request_id, actor, source, operation, domain, key, outcome, code, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const AUDIT_COLS: &str = "seq, prev_hash, hash, time, request_id, actor, source, operation, domain, key, outcome, code, count";
fn audit_row(row: &Row<'_>) -> Result<AuditRecord, rusqlite::Error> {
    let outcome: i64 = row.get(10)?;
    Ok(AuditRecord {
        seq: from_i64(row.get(0)?)?,
        prev_hash: arr(row, 1)?,
        hash: arr(row, 2)?,
        event: AuditEvent {
            time: millis(row, 3)?,
            request_id: RequestId::from_bytes(arr(row, 4)?),
            actor: row.get(5)?,
            source: row.get(6)?,
            operation: row.get(7)?,
            domain: row.get(8)?,
            key: row.get(9)?,
            outcome: u8::try_from(outcome)
                .ok()
                .and_then(Outcome::from_code)
                .ok_or_else(|| corrupt("outcome"))?,
            code: row.get(11)?,
            count: u32::try_from(row.get::<_, i64>(12)?).map_err(|_| corrupt("count"))?,
        },
    })
}

impl Storage for SqliteStore {
    fn vault(&self) -> Result<VaultMeta, CoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT vault_id, created_at, seal_config, root_check, audit_public_key, initialized_at FROM vault WHERE id = 1",
                [],
                |row| {
                    let init = match opt_millis(row, 5)? {
                        None => None,
                        Some(at) => Some(InitRecord {
                            seal_config: row.get::<_, Option<Vec<u8>>>(2)?.ok_or_else(|| corrupt("seal config"))?,
                            root_check: arr(row, 3)?,
                            audit_public_key: arr(row, 4)?,
                            initialized_at: at,
                        }),
                    };
                    Ok(VaultMeta { vault_id: VaultId::from_bytes(arr(row, 0)?), created_at: millis(row, 1)?, init })
                },
            )
        })
    }

    fn domain_by_name(&self, name: &DomainName) -> Result<Option<DomainRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {DOMAIN_COLS} FROM domains WHERE name = ?1"
            ))?
            .query_row([name.as_str()], domain_row)
            .optional()
        })
    }

    fn domain(&self, id: DomainId) -> Result<Option<DomainRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {DOMAIN_COLS} FROM domains WHERE id = ?1"))?
                .query_row([id.as_bytes().as_slice()], domain_row)
                .optional()
        })
    }

    fn domains(&self) -> Result<Vec<DomainRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {DOMAIN_COLS} FROM domains ORDER BY name"))?
                .query_map([], domain_row)?
                .collect()
        })
    }

    fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {KEY_COLS} FROM keys WHERE id = ?1"))?
                .query_row([id.as_bytes().as_slice()], key_row)
                .optional()
        })
    }

    fn key_with_domain(&self, id: KeyId) -> Result<Option<(KeyRecord, DomainRecord)>, CoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT k.id, k.domain_id, k.version, k.algorithm, k.label, k.public_key, k.created_at,
                        k.destroyed_at, k.sealed_secret, k.temperature, k.temperature_mac,
                        k.temperature_since, k.hot_idle_secs,
                        d.id, d.name, d.wrapped_key, d.created_at, d.new_keys, d.destroyed_at
                 FROM keys k JOIN domains d ON d.id = k.domain_id WHERE k.id = ?1",
            )?
            .query_row([id.as_bytes().as_slice()], |row| {
                let key = key_row(row)?;
                let name: String = row.get(14)?;
                let domain = DomainRecord {
                    id: DomainId::from_bytes(arr(row, 13)?),
                    name: name.parse::<DomainName>().map_err(|_| corrupt("domain name"))?,
                    wrapped_key: row.get(15)?,
                    created_at: millis(row, 16)?,
                    new_key_temperature: temperature(row, 17)?,
                    destroyed_at: opt_millis(row, 18)?,
                };
                Ok((key, domain))
            })
            .optional()
        })
    }

    fn keys(&self, domain: DomainId) -> Result<Vec<KeyRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM keys WHERE domain_id = ?1 ORDER BY created_at, id"
            ))?
            .query_map([domain.as_bytes().as_slice()], key_row)?
            .collect()
        })
    }

    fn idle_limited_keys(&self) -> Result<Vec<KeyRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {KEY_COLS} FROM keys
                 WHERE temperature = 'hot' AND hot_idle_secs IS NOT NULL AND destroyed_at IS NULL
                 ORDER BY id"
            ))?
            .query_map([], key_row)?
            .collect()
        })
    }

    fn last_signature(&self, key: KeyId) -> Result<Option<UnixMillis>, CoreError> {
        // Served by the partial index `audit_signatures`.
        self.read(|c| {
            c.prepare_cached(
                "SELECT time FROM audit
                 WHERE key = ?1 AND operation = 'key.sign' AND outcome = 1
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([key.to_string()], |row| millis(row, 0))
            .optional()
        })
    }

    fn operator_by_name(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {OPERATOR_COLS} FROM operators WHERE name = ?1"
            ))?
            .query_row([name.as_str()], operator_row)
            .optional()
        })
    }

    fn operator(&self, id: OperatorId) -> Result<Option<OperatorRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {OPERATOR_COLS} FROM operators WHERE id = ?1"
            ))?
            .query_row([id.as_bytes().as_slice()], operator_row)
            .optional()
        })
    }

    fn operators(&self) -> Result<Vec<OperatorRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {OPERATOR_COLS} FROM operators ORDER BY name"
            ))?
            .query_map([], operator_row)?
            .collect()
        })
    }

    fn pending(&self, id: PendingId) -> Result<Option<PendingRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {PENDING_COLS} FROM pending WHERE id = ?1"))?
                .query_row([id.as_bytes().as_slice()], pending_row)
                .optional()
        })
    }

    fn pendings(&self, status: Option<RequestStatus>) -> Result<Vec<PendingRecord>, CoreError> {
        self.read(|c| match status {
            Some(st) => c
                .prepare_cached(&format!(
                    "SELECT {PENDING_COLS} FROM pending WHERE status = ?1 ORDER BY created_at DESC, id"
                ))?
                .query_map([st.as_str()], pending_row)?
                .collect(),
            None => c
                .prepare_cached(&format!("SELECT {PENDING_COLS} FROM pending ORDER BY created_at DESC, id"))?
                .query_map([], pending_row)?
                .collect(),
        })
    }

    fn approvals(&self, id: PendingId) -> Result<Vec<ApprovalRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT request_id, approver_id, signature, at FROM approvals WHERE request_id = ?1 ORDER BY at, approver_id",
            )?
            .query_map([id.as_bytes().as_slice()], |r| {
                Ok(ApprovalRecord {
                    request: PendingId::from_bytes(arr(r, 0)?),
                    approver: OperatorId::from_bytes(arr(r, 1)?),
                    signature: arr(r, 2)?,
                    at: millis(r, 3)?,
                })
            })?
            .collect()
        })
    }

    fn quorum_rules(&self) -> Result<Vec<QuorumRule>, CoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT scope, op, approvals FROM quorum_rules ORDER BY op, scope")?
                .query_map([], |r| {
                    let scope: [u8; 16] = arr(r, 0)?;
                    let op: String = r.get(1)?;
                    Ok(QuorumRule {
                        domain: (scope != [0; 16]).then(|| DomainId::from_bytes(scope)),
                        op: op.parse().map_err(|_| corrupt("quorum operation"))?,
                        approvals: u8::try_from(r.get::<_, i64>(2)?)
                            .map_err(|_| corrupt("approvals"))?,
                    })
                })?
                .collect()
        })
    }

    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE hash = ?1"))?
                .query_row([hash.as_slice()], token_row)
                .optional()
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLS} FROM tokens ORDER BY created_at, id"
            ))?
            .query_map([], token_row)?
            .collect()
        })
    }

    fn token(&self, id: TokenId) -> Result<Option<TokenRecord>, CoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = ?1"))?
                .query_row([id.as_bytes().as_slice()], token_row)
                .optional()
        })
    }

    fn audit_tail(&self) -> Result<Option<(u64, [u8; 32])>, CoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((from_i64(r.get(0)?)?, arr(r, 1)?)),
            )
            .optional()
        })
    }

    fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, CoreError> {
        let from = to_i64(from)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {AUDIT_COLS} FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?
            .query_map(params![from, limit], audit_row)?
            .collect()
        })
    }

    fn audit_heads(&self) -> Result<Vec<SignedHead>, CoreError> {
        let vault_id = self.vault()?.vault_id;
        self.read(|c| {
            c.prepare_cached("SELECT seq, hash, time, signature FROM audit_heads ORDER BY seq")?
                .query_map([], |r| {
                    Ok(SignedHead {
                        vault_id,
                        seq: from_i64(r.get(0)?)?,
                        hash: arr(r, 1)?,
                        time: millis(r, 2)?,
                        signature: arr(r, 3)?,
                    })
                })?
                .collect()
        })
    }

    fn write(&self, batch: WriteBatch<'_>) -> Result<(), CoreError> {
        let writer = self
            .writer
            .as_ref()
            .ok_or(CoreError::Storage("database opened read-only".into()))?;
        let mut conn = writer.lock().map_err(|_| poisoned())?;
        let shredded = {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_err)?;
            let mut txn = Txn {
                tx,
                shredded: false,
            };
            batch(&mut txn)?;
            let Txn { tx, shredded } = txn;
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

struct Txn<'c> {
    tx: rusqlite::Transaction<'c>,
    shredded: bool,
}

fn constraint(e: rusqlite::Error, what: &'static str) -> CoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            // 787 = SQLITE_CONSTRAINT_FOREIGNKEY: the parent row is missing.
            if f.extended_code == 787 {
                CoreError::NotFound("domain")
            } else {
                CoreError::Conflict(what)
            }
        }
        _ => store_err(e),
    }
}

impl Txn<'_> {
    fn apply_inner(&mut self, m: &Mutation) -> Result<(), CoreError> {
        let tx = &self.tx;
        match m {
            Mutation::Initialize(init) => {
                let n = tx
                    .execute(
                        "UPDATE vault SET seal_config = ?1, root_check = ?2, audit_public_key = ?3, initialized_at = ?4
                         WHERE id = 1 AND initialized_at IS NULL",
                        params![init.seal_config, init.root_check.as_slice(), init.audit_public_key.as_slice(), to_i64(init.initialized_at.0)?],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::Conflict("vault initialisation"));
                }
            }
            Mutation::CreateDomain(d) => {
                tx.execute(
                    "INSERT INTO domains (id, name, wrapped_key, created_at, new_keys) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        d.id.as_bytes().as_slice(),
                        d.name.as_str(),
                        d.wrapped_key,
                        to_i64(d.created_at.0)?,
                        d.new_key_temperature.as_str()
                    ],
                )
                .map_err(|e| constraint(e, "domain"))?;
            }
            Mutation::CreateKey(k) => {
                tx.execute(
                    &format!(
                        "INSERT INTO keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                    ),
                    params![
                        k.id.as_bytes().as_slice(),
                        k.domain.as_bytes().as_slice(),
                        i64::from(k.version),
                        k.algorithm.as_str(),
                        k.label,
                        k.public_key,
                        to_i64(k.created_at.0)?,
                        k.destroyed_at.map(|t| to_i64(t.0)).transpose()?,
                        k.sealed_secret,
                        k.temperature.as_str(),
                        k.temperature_mac.as_slice(),
                        to_i64(k.temperature_since.0)?,
                        k.hot_idle_secs.map(i64::from),
                    ],
                )
                .map_err(|e| constraint(e, "key"))?;
            }
            Mutation::DestroyKey { id, at } => {
                let n = tx
                    .execute(
                        "UPDATE keys SET sealed_secret = NULL, destroyed_at = ?2 WHERE id = ?1 AND destroyed_at IS NULL",
                        params![id.as_bytes().as_slice(), to_i64(at.0)?],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::NotFound("key"));
                }
                self.shredded = true;
            }
            Mutation::CreateToken(t) => {
                let (kind, domain, operator) = match t.kind {
                    TokenKind::Root => ("root", None, None),
                    TokenKind::Bootstrap => ("bootstrap", None, None),
                    TokenKind::Application(d) => ("app", Some(d.as_bytes().to_vec()), None),
                    TokenKind::Session(o) => ("session", None, Some(o.as_bytes().to_vec())),
                    _ => {
                        return Err(CoreError::Storage(
                            "token kind not supported by this backend".into(),
                        ));
                    }
                };
                tx.execute(
                    &format!(
                        "INSERT INTO tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ),
                    params![
                        t.id.as_bytes().as_slice(),
                        t.hash.as_slice(),
                        kind,
                        domain,
                        to_i64(t.created_at.0)?,
                        t.expires_at.map(|x| to_i64(x.0)).transpose()?,
                        t.revoked_at.map(|x| to_i64(x.0)).transpose()?,
                        t.mac.as_slice(),
                        operator,
                    ],
                )
                .map_err(|e| constraint(e, "token"))?;
            }
            Mutation::CreateOperator(o) => {
                tx.execute(
                    &format!(
                        "INSERT INTO operators ({OPERATOR_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                    ),
                    rusqlite::params_from_iter(operator_params(o)?),
                )
                .map_err(|e| constraint(e, "operator"))?;
            }
            Mutation::UpdateOperator {
                expected_mac,
                record,
            } => {
                let mut values = operator_params(record)?;
                values.push(rusqlite::types::Value::Blob(expected_mac.to_vec()));
                let n = tx
                    .execute(
                        "UPDATE operators SET name = ?2, roles = ?3, domain_id = ?4, password_hash = ?5,
                            must_change_password = ?6, totp_sealed = ?7, totp_last_step = ?8,
                            failed_logins = ?9, locked_until = ?10, approval_key = ?11, created_at = ?12,
                            disabled_at = ?13, mac = ?14
                         WHERE id = ?1 AND mac = ?15",
                        rusqlite::params_from_iter(values),
                    )
                    .map_err(|e| constraint(e, "operator"))?;
                if n != 1 {
                    // Changed since it was read (a concurrent login, say): refuse.
                    return Err(CoreError::Conflict("operator update"));
                }
            }
            Mutation::CreatePending(p) => {
                tx.execute(
                    &format!(
                        "INSERT INTO pending ({PENDING_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                    ),
                    rusqlite::params_from_iter(pending_params(p)?),
                )
                .map_err(|e| constraint(e, "request"))?;
            }
            Mutation::UpdatePending {
                expected_mac,
                record,
            } => {
                let mut values = pending_params(record)?;
                values.push(rusqlite::types::Value::Blob(expected_mac.to_vec()));
                let n = tx
                    .execute(
                        "UPDATE pending SET op = ?2, params = ?3, domain_id = ?4, key_id = ?5, requester = ?6,
                            requester_operator = ?7, required = ?8, created_at = ?9, expires_at = ?10,
                            nonce = ?11, hash = ?12, status = ?13, result = ?14, decided_at = ?15, mac = ?16
                         WHERE id = ?1 AND mac = ?17",
                        rusqlite::params_from_iter(values),
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::Conflict("request update"));
                }
            }
            Mutation::AddApproval(a) => {
                tx.execute(
                    "INSERT INTO approvals (request_id, approver_id, signature, at) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        a.request.as_bytes().as_slice(),
                        a.approver.as_bytes().as_slice(),
                        a.signature.as_slice(),
                        to_i64(a.at.0)?
                    ],
                )
                .map_err(|e| constraint(e, "approval"))?;
            }
            Mutation::SetTemperature {
                id,
                temperature,
                since,
                hot_idle_secs,
                mac,
                expected_mac,
            } => {
                let n = tx
                    .execute(
                        "UPDATE keys SET temperature = ?2, temperature_mac = ?3,
                                temperature_since = ?5, hot_idle_secs = ?6
                         WHERE id = ?1 AND temperature_mac = ?4 AND destroyed_at IS NULL",
                        params![
                            id.as_bytes().as_slice(),
                            temperature.as_str(),
                            mac.as_slice(),
                            expected_mac.as_slice(),
                            to_i64(since.0)?,
                            hot_idle_secs.map(i64::from),
                        ],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::Conflict("key temperature"));
                }
            }
            Mutation::DestroyDomain { id, at } => {
                let at = to_i64(at.0)?;
                // Erase the master key (zero-length, with secure_delete on): every key sealed
                // under it is unrecoverable from here on.
                let n = tx
                    .execute(
                        "UPDATE domains SET wrapped_key = X'', destroyed_at = ?2
                         WHERE id = ?1 AND destroyed_at IS NULL",
                        params![id.as_bytes().as_slice(), at],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::NotFound("domain"));
                }
                tx.execute(
                    "UPDATE keys SET sealed_secret = NULL, destroyed_at = ?2
                     WHERE domain_id = ?1 AND destroyed_at IS NULL",
                    params![id.as_bytes().as_slice(), at],
                )
                .map_err(store_err)?;
            }
            Mutation::TakeOffline { id } => {
                let n = tx
                    .execute(
                        "UPDATE keys SET sealed_secret = NULL
                         WHERE id = ?1 AND temperature = 'cold' AND sealed_secret IS NOT NULL
                               AND destroyed_at IS NULL",
                        [id.as_bytes().as_slice()],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::Conflict("key not cold and online"));
                }
            }
            Mutation::RestoreSecret { id, sealed_secret } => {
                let n = tx
                    .execute(
                        "UPDATE keys SET sealed_secret = ?2
                         WHERE id = ?1 AND sealed_secret IS NULL AND destroyed_at IS NULL",
                        params![id.as_bytes().as_slice(), sealed_secret],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::Conflict("key not offline"));
                }
            }
            Mutation::SetQuorum(rule) => {
                let scope = rule.domain.map_or([0u8; 16], |d| *d.as_bytes());
                tx.execute(
                    "INSERT INTO quorum_rules (scope, op, approvals) VALUES (?1, ?2, ?3)
                     ON CONFLICT (scope, op) DO UPDATE SET approvals = excluded.approvals",
                    params![
                        scope.as_slice(),
                        rule.op.as_str(),
                        i64::from(rule.approvals)
                    ],
                )
                .map_err(store_err)?;
            }
            Mutation::RevokeToken { id, at, mac } => {
                let n = tx
                    .execute(
                        "UPDATE tokens SET revoked_at = ?2, mac = ?3 WHERE id = ?1 AND revoked_at IS NULL",
                        params![id.as_bytes().as_slice(), to_i64(at.0)?, mac.as_slice()],
                    )
                    .map_err(store_err)?;
                if n != 1 {
                    return Err(CoreError::NotFound("token"));
                }
            }
            _ => {
                return Err(CoreError::Storage(
                    "mutation not supported by this backend".into(),
                ));
            }
        }
        Ok(())
    }
}

impl WriteTxn for Txn<'_> {
    fn apply(&mut self, mutations: &[Mutation]) -> Result<(), CoreError> {
        self.tx
            .execute_batch("SAVEPOINT mutation")
            .map_err(store_err)?;
        match mutations.iter().try_for_each(|m| self.apply_inner(m)) {
            Ok(()) => {
                self.tx
                    .execute_batch("RELEASE mutation")
                    .map_err(store_err)?;
                Ok(())
            }
            Err(e) => {
                self.tx
                    .execute_batch("ROLLBACK TO mutation; RELEASE mutation")
                    .map_err(store_err)?;
                Err(e)
            }
        }
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<(), CoreError> {
        let e = &r.event;
        self.tx
            .prepare_cached(INSERT_AUDIT)
            .and_then(|mut s| {
                s.execute(params![
                    i64::try_from(r.seq).map_err(|_| corrupt("seq"))?,
                    r.prev_hash.as_slice(),
                    r.hash.as_slice(),
                    i64::try_from(e.time.0).map_err(|_| corrupt("time"))?,
                    e.request_id.as_bytes().as_slice(),
                    e.actor,
                    e.source,
                    e.operation,
                    e.domain,
                    e.key,
                    i64::from(e.outcome.code()),
                    e.code,
                    i64::from(e.count),
                ])
            })
            .map(|_| ())
            .map_err(store_err)
    }

    fn put_head(&mut self, h: &SignedHead) -> Result<(), CoreError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO audit_heads (seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| {
                s.execute(params![
                    i64::try_from(h.seq).map_err(|_| corrupt("seq"))?,
                    h.hash.as_slice(),
                    i64::try_from(h.time.0).map_err(|_| corrupt("time"))?,
                    h.signature.as_slice(),
                ])
            })
            .map(|_| ())
            .map_err(store_err)
    }
}
