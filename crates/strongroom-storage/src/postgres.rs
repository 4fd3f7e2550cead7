//! The PostgreSQL backend, for several stateless nodes sharing one database.
//!
//! Every write batch runs in one transaction that first takes a transaction-scoped advisory
//! lock, so appends to the audit chain are serialised across nodes and each batch attaches to
//! the tail it reads under that lock. Compare-and-swap updates (`WHERE mac = $expected`) keep
//! concurrent operators, approvals and counters correct. Commits use PostgreSQL's default
//! `synchronous_commit = on`: acknowledged means on disk.
//!
//! Calls block; inside the server's multi-threaded runtime they run under
//! `tokio::task::block_in_place`, so a database round trip does not stall other requests.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Statement};
use strongroom_core::id::DomainName;
use strongroom_core::operator::OperatorName;
use strongroom_core::quorum::QuorumRule;
use strongroom_core::record::{
    ApprovalRecord, AuditRecord, DomainRecord, KeyRecord, OperatorRecord, PendingRecord,
    RequestStatus, SignedHead, TokenRecord, VaultMeta,
};
use strongroom_core::storage::{Change, ChangeListener, WriteBatch};
use strongroom_core::{
    DomainId, Error as CoreError, KeyId, OperatorId, PendingId, TokenId, UnixMillis, VaultId,
};

use crate::error::Error;
use crate::sql::{self, Db, DbError, Fields, Param, Txn, storage_over_sql};

/// Schema migrations, applied in order at start; each runs once per database.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/postgres_001_init.sql"))];
/// Advisory lock keys ("strongrm" in ASCII, then a purpose).
const LOCK_MIGRATE: i64 = 0x7374_726f_6e67_0001;
const LOCK_WRITE: i64 = 0x7374_726f_6e67_0002;
const MAX_IDLE: usize = 8;
/// The notification channel for [`Change`]s.
const CHANNEL: &str = "strongroom_changes";

/// A strongroom database in PostgreSQL.
pub struct PgStore {
    config: postgres::Config,
    pool: Mutex<Vec<Conn>>,
    fields: Fields,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show only where it points.
        f.debug_struct("PgStore")
            .field("hosts", &self.config.get_hosts().len())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// A connection with its prepared statements (one round trip per call once prepared).
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// Runs blocking database work without stalling the async runtime it may be called from.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn pg_err(e: postgres::Error) -> CoreError {
    CoreError::Storage(Box::new(e))
}

fn db_err(e: postgres::Error) -> DbError {
    match e.code() {
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
            DbError::Constraint { foreign_key: true }
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::CHECK_VIOLATION => {
            DbError::Constraint { foreign_key: false }
        }
        _ => DbError::Other(pg_err(e)),
    }
}

/// The shared SQL over a PostgreSQL client or transaction.
struct PgDb<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient> PgDb<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn boxed(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Int(v) => Box::new(*v),
                Param::Text(v) => Box::new(v.clone()),
                Param::Bytes(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

struct PgRow<'r>(&'r postgres::Row);

impl sql::Row for PgRow<'_> {
    fn int(&self, i: usize) -> Result<Option<i64>, CoreError> {
        self.0
            .try_get(i)
            .map_err(|_| CoreError::Corrupt("a column has the wrong type"))
    }
    fn text(&self, i: usize) -> Result<Option<String>, CoreError> {
        self.0
            .try_get(i)
            .map_err(|_| CoreError::Corrupt("a column has the wrong type"))
    }
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, CoreError> {
        self.0
            .try_get(i)
            .map_err(|_| CoreError::Corrupt("a column has the wrong type"))
    }
}

impl<C: GenericClient> Db for PgDb<'_, C> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        let values = boxed(params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(AsRef::as_ref).collect();
        // Savepoints are sent as simple queries: they take no parameters and gain nothing
        // from preparation.
        if params.is_empty()
            && ["SAVEPOINT", "RELEASE", "ROLLBACK"]
                .iter()
                .any(|k| sql.starts_with(k))
        {
            return self.client.batch_execute(sql).map(|()| 0).map_err(db_err);
        }
        let stmt = self.statement(sql).map_err(db_err)?;
        self.client.execute(&stmt, &refs).map_err(db_err)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Param],
        each: &mut dyn FnMut(&dyn sql::Row) -> Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        let values = boxed(params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(AsRef::as_ref).collect();
        let stmt = self.statement(sql).map_err(pg_err)?;
        for row in self.client.query(&stmt, &refs).map_err(pg_err)? {
            each(&PgRow(&row))?;
        }
        Ok(())
    }
}

impl PgStore {
    /// The directories of the UNIX sockets `url` names (none for TCP), which a confined node
    /// must be allowed to reach. A malformed URL names none (opening it fails anyway).
    #[must_use]
    pub fn socket_dirs(url: &str) -> Vec<std::path::PathBuf> {
        postgres::Config::from_str(url).map_or_else(
            |_| Vec::new(),
            |c| {
                c.get_hosts()
                    .iter()
                    .filter_map(|h| match h {
                        postgres::config::Host::Unix(p) => Some(p.clone()),
                        postgres::config::Host::Tcp(_) => None,
                    })
                    .collect()
            },
        )
    }

    /// Connects to `url`, applies pending migrations and, on an empty database, creates the
    /// vault row. Returns the store and whether the vault is new. A database that holds other
    /// tables but no strongroom schema is refused, never written to.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL; [`Error::Postgres`] when the server cannot be
    /// reached; [`Error::Corrupt`] / [`Error::UnsupportedSchema`] for a database that must
    /// not be used.
    pub fn open(
        url: &str,
        new_vault_id: impl FnOnce() -> VaultId,
        now: UnixMillis,
    ) -> Result<(Self, bool), Error> {
        let config = postgres::Config::from_str(url)
            .map_err(|_| Error::Config("malformed PostgreSQL URL"))?;
        blocking(|| {
            let mut client = config.connect(NoTls)?;
            let fresh = migrate(&mut client, new_vault_id, now)?;
            let store = Self {
                config: config.clone(),
                pool: Mutex::new(vec![Conn {
                    client,
                    statements: HashMap::new(),
                }]),
                fields: Fields::default(),
            };
            Ok((store, fresh))
        })
    }

    /// Connects to an existing strongroom database without changing it (offline
    /// verification).
    ///
    /// # Errors
    /// As [`PgStore::open`]; [`Error::Corrupt`] if the database has no strongroom schema.
    pub fn open_existing(url: &str) -> Result<Self, Error> {
        let config = postgres::Config::from_str(url)
            .map_err(|_| Error::Config("malformed PostgreSQL URL"))?;
        blocking(|| {
            let mut client = config.connect(NoTls)?;
            let version: Option<i64> = client
                .query_one(
                    "SELECT CASE WHEN to_regclass('strongroom_schema') IS NULL THEN NULL
                            ELSE (SELECT max(version) FROM strongroom_schema) END",
                    &[],
                )
                .ok()
                .and_then(|r| r.try_get(0).ok());
            match version {
                None => return Err(Error::Corrupt("no strongroom schema in this database")),
                Some(v) if v > latest() => return Err(Error::UnsupportedSchema(v)),
                Some(_) => {}
            }
            Ok(Self {
                config: config.clone(),
                pool: Mutex::new(vec![Conn {
                    client,
                    statements: HashMap::new(),
                }]),
                fields: Fields::default(),
            })
        })
    }

    fn take(&self) -> Result<Conn, CoreError> {
        let pooled = self
            .pool
            .lock()
            .map_err(|_| CoreError::Storage("storage lock poisoned".into()))?
            .pop();
        match pooled {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Ok(Conn {
                client: self.config.connect(NoTls).map_err(pg_err)?,
                statements: HashMap::new(),
            }),
        }
    }

    fn give_back(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < MAX_IDLE
        {
            pool.push(conn);
        }
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, CoreError>) -> Result<T, CoreError> {
        blocking(|| {
            let mut conn = self.take()?;
            let Conn { client, statements } = &mut conn;
            let result = f(&mut PgDb { client, statements });
            self.give_back(conn);
            result
        })
    }

    fn write_batch(&self, batch: WriteBatch<'_>) -> Result<(), CoreError> {
        blocking(|| {
            let mut conn = self.take()?;
            let Conn { client, statements } = &mut conn;
            let result = (|| {
                // READ COMMITTED whatever the server's default: each statement after the lock
                // must see what the previous lock holder committed (a snapshot taken before
                // the lock would let two nodes both find "no conflicting duty").
                let mut tx = client
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::ReadCommitted)
                    .start()
                    .map_err(pg_err)?;
                // One writer at a time across all nodes: the chain stays one chain.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_WRITE])
                    .map_err(pg_err)?;
                let changes = {
                    let mut db = PgDb {
                        client: &mut tx,
                        statements: &mut *statements,
                    };
                    let mut txn = Txn::new(&mut db, &self.fields);
                    batch(&mut txn)?;
                    txn.changes
                };
                if !changes.is_empty() {
                    // Delivered to every listening node when (and only if) this commits.
                    let payload = sql::encode_changes(&changes);
                    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                        .map_err(pg_err)?;
                }
                tx.commit().map_err(pg_err)
            })();
            self.give_back(conn);
            result
        })
    }
}

/// Listens for other nodes' changes until the process ends, reconnecting after failures.
/// Whenever the connection is (re)made, notifications may have been missed: everything is
/// reported changed.
fn listen(config: &postgres::Config, listener: &ChangeListener) {
    loop {
        match config.connect(NoTls) {
            Ok(mut client) => {
                if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_ok() {
                    listener(Change::Everything);
                    let mut notifications = client.notifications();
                    let mut it = notifications.blocking_iter();
                    while let Ok(Some(n)) =
                        postgres::fallible_iterator::FallibleIterator::next(&mut it)
                    {
                        for c in sql::decode_changes(n.payload()) {
                            listener(c);
                        }
                    }
                }
                tracing::warn!("lost the change-notification connection; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for changes; retrying"),
        }
        listener(Change::Everything);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Brings the schema up to date under an advisory lock (nodes may start together) and
/// creates the vault row if there is none. Returns whether the vault is new.
fn migrate(
    client: &mut Client,
    new_vault_id: impl FnOnce() -> VaultId,
    now: UnixMillis,
) -> Result<bool, Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])?;
    let has_schema: bool = tx
        .query_one("SELECT to_regclass('strongroom_schema') IS NOT NULL", &[])?
        .get(0);
    let current: i64 = if has_schema {
        tx.query_one(
            "SELECT coalesce(max(version), 0) FROM strongroom_schema",
            &[],
        )?
        .get(0)
    } else {
        let others: i64 = tx
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                &[],
            )?
            .get(0);
        if others > 0 {
            return Err(Error::Corrupt(
                "the PostgreSQL database holds other tables; give strongroom an empty database",
            ));
        }
        tx.batch_execute("CREATE TABLE strongroom_schema (version BIGINT NOT NULL)")?;
        0
    };
    if current > latest() {
        return Err(Error::UnsupportedSchema(current));
    }
    for (version, script) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(script)?;
        tx.execute(
            "INSERT INTO strongroom_schema (version) VALUES ($1)",
            &[version],
        )?;
    }
    let rows: i64 = tx.query_one("SELECT count(*) FROM vault", &[])?.get(0);
    let fresh = rows == 0;
    if fresh {
        let mut statements = HashMap::new();
        sql::create_vault(
            &mut PgDb {
                client: &mut tx,
                statements: &mut statements,
            },
            new_vault_id(),
            now,
        )?;
    }
    tx.commit()?;
    Ok(fresh)
}

impl PgStore {
    fn start_listening(&self, listener: ChangeListener) -> Result<(), CoreError> {
        let config = self.config.clone();
        std::thread::Builder::new()
            .name("pg-changes".into())
            .spawn(move || listen(&config, &listener))
            .map(|_| ())
            .map_err(|e| CoreError::Storage(Box::new(e)))
    }
}

storage_over_sql!(PgStore, watch = PgStore::start_listening);
