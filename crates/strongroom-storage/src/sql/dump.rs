//! Backup and restore of the database: every table's rows, generically, as stored (sealed
//! columns stay sealed; secrets stay wrapped). The table list is the schema's, checked against
//! both backends' schemas by the conformance tests, so a dump from SQLite restores into
//! PostgreSQL and back.

use strongroom_core::Error as CoreError;
use strongroom_core::record::InitRecord;
use strongroom_core::storage::{Cell, Dump, TableDump};

use super::{Db, Param, Row, all, bytes, int, need, one, small, to_i64, vault};

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bytes,
}

use Kind::{Bytes, Int, Text};

/// A table: its name, the columns that order its rows, and its columns.
pub(crate) type Table = (&'static str, &'static str, &'static [(&'static str, Kind)]);

/// Every table but `vault`, parents before children (a restore inserts in this order).
pub(crate) const TABLES: &[Table] = &[
    (
        "domains",
        "id",
        &[
            ("id", Bytes),
            ("name_index", Bytes),
            ("name", Bytes),
            ("wrapped_key", Bytes),
            ("created_at", Int),
            ("new_keys", Bytes),
            ("algorithms", Bytes),
            ("destroyed_at", Int),
            ("key_version", Int),
            ("retiring_version", Int),
            ("retiring_key", Bytes),
        ],
    ),
    (
        "keys",
        "id",
        &[
            ("id", Bytes),
            ("domain_id", Bytes),
            ("version", Int),
            ("algorithm", Text),
            ("label", Bytes),
            ("public_key", Bytes),
            ("created_at", Int),
            ("destroyed_at", Int),
            ("sealed_secret", Bytes),
            ("temperature", Text),
            ("temperature_mac", Bytes),
            ("temperature_since", Int),
            ("hot_idle_secs", Int),
            ("domain_key_version", Int),
            ("predecessor", Bytes),
        ],
    ),
    (
        "operators",
        "id",
        &[
            ("id", Bytes),
            ("name_index", Bytes),
            ("name", Bytes),
            ("roles", Int),
            ("domain_id", Bytes),
            ("password_hash", Text),
            ("must_change_password", Int),
            ("totp_sealed", Bytes),
            ("totp_last_step", Int),
            ("failed_logins", Int),
            ("locked_until", Int),
            ("approval_key", Bytes),
            ("created_at", Int),
            ("disabled_at", Int),
            ("mac", Bytes),
        ],
    ),
    (
        "tokens",
        "id",
        &[
            ("id", Bytes),
            ("hash", Bytes),
            ("kind", Text),
            ("domain_id", Bytes),
            ("operator_id", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("mac", Bytes),
        ],
    ),
    (
        "pending",
        "id",
        &[
            ("id", Bytes),
            ("op", Text),
            ("params", Bytes),
            ("domain_id", Bytes),
            ("key_id", Bytes),
            ("requester", Bytes),
            ("requester_operator", Bytes),
            ("required", Int),
            ("created_at", Int),
            ("expires_at", Int),
            ("nonce", Bytes),
            ("hash", Bytes),
            ("status", Text),
            ("result", Bytes),
            ("decided_at", Int),
            ("mac", Bytes),
        ],
    ),
    (
        "approvals",
        "request_id, approver_id",
        &[
            ("request_id", Bytes),
            ("approver_id", Bytes),
            ("signature", Bytes),
            ("at", Int),
        ],
    ),
    (
        "policies",
        "wallet_id",
        &[
            ("wallet_id", Bytes),
            ("version", Int),
            ("policy", Bytes),
            ("set_at", Int),
        ],
    ),
    (
        "spends",
        "asset_index, bucket",
        &[("asset_index", Bytes), ("bucket", Int), ("amount", Bytes)],
    ),
    (
        "idempotency",
        "key_index",
        &[
            ("key_index", Bytes),
            ("fingerprint", Bytes),
            ("response", Bytes),
            ("created_at", Int),
        ],
    ),
    (
        "eth2_validators",
        "validator_index",
        &[
            ("validator_index", Bytes),
            ("genesis_validators_root", Bytes),
            ("pubkey", Bytes),
            ("min_slot", Int),
            ("min_source", Int),
            ("min_target", Int),
        ],
    ),
    (
        "eth2_blocks",
        "validator_index, slot",
        &[
            ("validator_index", Bytes),
            ("slot", Int),
            ("signing_root", Bytes),
        ],
    ),
    (
        "eth2_attestations",
        "validator_index, target_epoch, source_epoch",
        &[
            ("validator_index", Bytes),
            ("source_epoch", Int),
            ("target_epoch", Int),
            ("signing_root", Bytes),
        ],
    ),
    (
        "eth2_memberships",
        "domain_id, validator_index",
        &[("domain_id", Bytes), ("validator_index", Bytes)],
    ),
    (
        "eth2_exits",
        "key_id, epoch",
        &[("key_id", Bytes), ("epoch", Int)],
    ),
    (
        "eth2_released",
        "key_id",
        &[("key_id", Bytes), ("released_at", Int), ("how", Text)],
    ),
    (
        "eth2_domains",
        "domain_id",
        &[("domain_id", Bytes), ("genesis_validators_root", Bytes)],
    ),
    (
        "quorum_rules",
        "rule_index",
        &[("rule_index", Bytes), ("rule", Bytes)],
    ),
    (
        "audit",
        "seq",
        &[
            ("seq", Int),
            ("prev_hash", Bytes),
            ("hash", Bytes),
            ("time", Int),
            ("digest", Bytes),
            ("sealed", Int),
            ("event", Bytes),
            ("sign_index", Bytes),
        ],
    ),
    (
        "audit_heads",
        "seq",
        &[
            ("seq", Int),
            ("hash", Bytes),
            ("time", Int),
            ("signature", Bytes),
        ],
    ),
];

fn cell(r: &dyn Row, i: usize, kind: Kind) -> Result<Cell, CoreError> {
    Ok(match kind {
        Int => Cell::Int(r.int(i)?),
        Text => Cell::Text(r.text(i)?),
        Bytes => Cell::Bytes(r.bytes(i)?),
    })
}

fn param(c: &Cell, kind: Kind) -> Result<Param, CoreError> {
    match (c, kind) {
        (Cell::Int(v), Int) => Ok(Param::Int(*v)),
        (Cell::Text(v), Text) => Ok(Param::Text(v.clone())),
        (Cell::Bytes(v), Bytes) => Ok(Param::Bytes(v.clone())),
        _ => Err(CoreError::Corrupt("a backup cell of the wrong type")),
    }
}

/// Every row of every table, and the vault row.
pub(crate) fn dump(db: &mut dyn Db) -> Result<Dump, CoreError> {
    let mut tables = Vec::with_capacity(TABLES.len());
    for (table, order, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let rows = all(
            db,
            &format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", ")),
            &[],
            |r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| cell(r, i, *kind))
                    .collect()
            },
        )?;
        tables.push(TableDump {
            table: (*table).to_owned(),
            columns: names.iter().map(|n| (*n).to_owned()).collect(),
            rows,
        });
    }
    Ok(Dump {
        vault: vault(db)?,
        tables,
    })
}

/// Puts `dump` into an empty, uninitialised store (see `WriteTxn::restore`).
pub(crate) fn restore(db: &mut dyn Db, dump: &Dump, seal_config: &[u8]) -> Result<(), CoreError> {
    if vault(db)?.init.is_some() {
        return Err(CoreError::Conflict("the vault is initialised"));
    }
    if dump.tables.len() != TABLES.len() {
        return Err(CoreError::Corrupt("a backup with other tables"));
    }
    for ((table, _, columns), d) in TABLES.iter().zip(&dump.tables) {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        if d.table != *table || d.columns != names {
            return Err(CoreError::Corrupt("a backup with other tables or columns"));
        }
        let rows: u64 = need(one(
            db,
            &format!("SELECT COUNT(*) FROM {table}"),
            &[],
            |r| small(r, 0, "row count"),
        )?)?;
        if rows > 0 {
            return Err(CoreError::Conflict("the store is not empty"));
        }
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        for row in &d.rows {
            if row.len() != columns.len() {
                return Err(CoreError::Corrupt("a backup row of the wrong width"));
            }
            let params = row
                .iter()
                .zip(columns.iter())
                .map(|(c, (_, kind))| param(c, *kind))
                .collect::<Result<Vec<_>, _>>()?;
            db.execute(&sql, &params)?;
        }
    }
    let init: &InitRecord = dump
        .vault
        .init
        .as_ref()
        .ok_or(CoreError::Corrupt("a backup of an uninitialised vault"))?;
    let changed = db.execute(
        "UPDATE vault SET vault_id = $1, created_at = $2, seal_config = $3, root_check = $4,
                audit_public_key = $5, initialized_at = $6
         WHERE id = 1 AND initialized_at IS NULL",
        &[
            bytes(dump.vault.vault_id.as_bytes()),
            int(to_i64(dump.vault.created_at.0)?),
            bytes(seal_config),
            bytes(&init.root_check),
            bytes(&init.audit_public_key),
            int(to_i64(init.initialized_at.0)?),
        ],
    )?;
    if changed != 1 {
        return Err(CoreError::Conflict("the vault is initialised"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TABLES;

    /// The dump's table list is the SQLite schema's, column for column (the PostgreSQL one is
    /// checked by the conformance test's round trip between the two).
    #[test]
    fn the_dump_covers_every_table_and_column() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(include_str!("../../migrations/sqlite_001_init.sql"))
            .unwrap();
        let mut names: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'vault'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        names.sort();
        let mut ours: Vec<String> = TABLES.iter().map(|t| t.0.to_owned()).collect();
        ours.sort();
        assert_eq!(names, ours);
        for (table, _, columns) in TABLES {
            let schema: Vec<String> = db
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let ours: Vec<String> = columns.iter().map(|c| c.0.to_owned()).collect();
            assert_eq!(schema, ours, "{table}");
        }
    }
}
