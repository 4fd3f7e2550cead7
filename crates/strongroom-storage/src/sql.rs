//! The SQL both backends share: every query and every mutation, written once with `$N`
//! placeholders over a small [`Db`] interface that SQLite and PostgreSQL each implement, and
//! one decoder per record type. The backends differ only in connections, transactions,
//! locking and their schema files, so they cannot drift apart in what they store.

use std::sync::{Arc, OnceLock};
use strongroom_core::id::DomainName;
use strongroom_core::operator::{OperatorName, Roles};
use strongroom_core::quorum::{GatedOp, QuorumRule};

use strongroom_audit::{decode_event, encode_event, event_digest};
use strongroom_core::record::{
    ApprovalRecord, AuditBody, AuditRecord, DomainRecord, IdempotentRecord, InitRecord, KeyRecord,
    OperatorRecord, Outcome, PendingRecord, PolicyRecord, RequestStatus, SignedHead, TokenKind,
    TokenRecord, VaultMeta,
};
use strongroom_core::storage::{Change, FieldCipher, Mutation, WriteTxn};
use strongroom_core::temperature::Temperature;
use strongroom_core::{
    Algorithm, DomainId, Error as CoreError, KeyId, OperatorId, PendingId, TokenId, UnixMillis,
    VaultId,
};

pub(crate) mod dump;
pub(crate) mod slashing;

/// A statement parameter. Each carries its type even when null, because PostgreSQL checks
/// parameter types against the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn int(v: i64) -> Param {
    Param::Int(Some(v))
}
fn text(v: &str) -> Param {
    Param::Text(Some(v.to_owned()))
}
fn bytes(v: &[u8]) -> Param {
    Param::Bytes(Some(v.to_vec()))
}
fn millis_param(t: UnixMillis) -> Result<Param, CoreError> {
    Ok(int(to_i64(t.0)?))
}
fn opt_millis_param(t: Option<UnixMillis>) -> Result<Param, CoreError> {
    Ok(Param::Int(t.map(|t| to_i64(t.0)).transpose()?))
}
fn opt_id_param(b: Option<&[u8; 16]>) -> Param {
    Param::Bytes(b.map(|b| b.to_vec()))
}

/// One result row, column by column (0-based).
pub(crate) trait Row {
    fn int(&self, i: usize) -> Result<Option<i64>, CoreError>;
    fn text(&self, i: usize) -> Result<Option<String>, CoreError>;
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, CoreError>;
}

/// Why a statement failed.
#[derive(Debug)]
pub(crate) enum DbError {
    /// A constraint refused the row (`foreign_key`: its parent is missing).
    Constraint { foreign_key: bool },
    /// Anything else.
    Other(CoreError),
}

impl From<DbError> for CoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Constraint { .. } => CoreError::Conflict("constraint"),
            DbError::Other(e) => e,
        }
    }
}

/// A connection or transaction.
pub(crate) trait Db {
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError>;
    /// Runs a query, handing each row to `each`.
    fn query(
        &mut self,
        sql: &str,
        params: &[Param],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), CoreError>,
    ) -> Result<(), CoreError>;
}

fn all<T>(
    db: &mut dyn Db,
    sql: &str,
    params: &[Param],
    decode: impl Fn(&dyn Row) -> Result<T, CoreError>,
) -> Result<Vec<T>, CoreError> {
    let mut out = Vec::new();
    db.query(sql, params, &mut |r| {
        out.push(decode(r)?);
        Ok(())
    })?;
    Ok(out)
}

fn one<T>(
    db: &mut dyn Db,
    sql: &str,
    params: &[Param],
    decode: impl Fn(&dyn Row) -> Result<T, CoreError>,
) -> Result<Option<T>, CoreError> {
    Ok(all(db, sql, params, decode)?.into_iter().next())
}

pub(crate) fn to_i64(v: u64) -> Result<i64, CoreError> {
    i64::try_from(v).map_err(|_| CoreError::Corrupt("integer out of range"))
}

fn need<T>(v: Option<T>) -> Result<T, CoreError> {
    v.ok_or(CoreError::Corrupt("a required column is null"))
}
fn req_int(r: &dyn Row, i: usize) -> Result<i64, CoreError> {
    need(r.int(i)?)
}
fn req_text(r: &dyn Row, i: usize) -> Result<String, CoreError> {
    need(r.text(i)?)
}
fn req_bytes(r: &dyn Row, i: usize) -> Result<Vec<u8>, CoreError> {
    need(r.bytes(i)?)
}
fn small<T: TryFrom<i64>>(r: &dyn Row, i: usize, what: &'static str) -> Result<T, CoreError> {
    T::try_from(req_int(r, i)?).map_err(|_| CoreError::Corrupt(what))
}
fn arr<const N: usize>(r: &dyn Row, i: usize) -> Result<[u8; N], CoreError> {
    req_bytes(r, i)?
        .try_into()
        .map_err(|_| CoreError::Corrupt("fixed-size blob has the wrong length"))
}
fn millis(r: &dyn Row, i: usize) -> Result<UnixMillis, CoreError> {
    u64::try_from(req_int(r, i)?)
        .map(UnixMillis)
        .map_err(|_| CoreError::Corrupt("negative time"))
}
fn opt_millis(r: &dyn Row, i: usize) -> Result<Option<UnixMillis>, CoreError> {
    r.int(i)?
        .map(|v| {
            u64::try_from(v)
                .map(UnixMillis)
                .map_err(|_| CoreError::Corrupt("negative time"))
        })
        .transpose()
}
fn opt_id<T>(r: &dyn Row, i: usize, make: fn([u8; 16]) -> T) -> Result<Option<T>, CoreError> {
    r.bytes(i)?
        .map(|b| {
            b.try_into()
                .map(make)
                .map_err(|_| CoreError::Corrupt("identifier"))
        })
        .transpose()
}
fn temperature(r: &dyn Row, i: usize) -> Result<Temperature, CoreError> {
    req_text(r, i)?
        .parse()
        .map_err(|_| CoreError::Corrupt("temperature"))
}

// ---- Layered encryption -------------------------------------------------------------------

/// The private columns' cipher, handed over once at start ([`FieldCipher`]). Until then (and
/// whenever the vault is sealed) private columns can be neither read nor written.
#[derive(Default)]
pub(crate) struct Fields(OnceLock<Arc<dyn FieldCipher>>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Fields")
            .field(&self.0.get().is_some())
            .finish()
    }
}

/// Associated data of a sealed column: which column of which row, so that a value moved to
/// another row or column does not open.
fn field_aad(column: &str, row: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(column.len() + 1 + row.len());
    aad.extend_from_slice(column.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row);
    aad
}

impl Fields {
    pub(crate) fn set(&self, cipher: Arc<dyn FieldCipher>) -> Result<(), CoreError> {
        self.0
            .set(cipher)
            .map_err(|_| CoreError::Conflict("field cipher"))
    }

    fn cipher(&self) -> Result<&dyn FieldCipher, CoreError> {
        self.0.get().map(AsRef::as_ref).ok_or(CoreError::Sealed)
    }

    fn seal(&self, column: &'static str, row: &[u8], value: &[u8]) -> Result<Param, CoreError> {
        Ok(Param::Bytes(Some(self.seal_bytes(column, row, value)?)))
    }

    fn seal_bytes(
        &self,
        column: &'static str,
        row: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, CoreError> {
        // A store nobody gave a cipher must not write private values (or audit events) in
        // the clear: only a configured cipher may say "sealed".
        let cipher = self.0.get().ok_or(CoreError::NoFieldCipher)?;
        cipher.seal(&field_aad(column, row), value)
    }

    fn open(&self, column: &'static str, row: &[u8], blob: &[u8]) -> Result<Vec<u8>, CoreError> {
        self.cipher()?
            .open(&field_aad(column, row), blob)
            .map_err(|e| match e {
                CoreError::Sealed => CoreError::Sealed,
                _ => CoreError::Corrupt(column),
            })
    }

    fn open_text(
        &self,
        column: &'static str,
        row: &[u8],
        blob: &[u8],
    ) -> Result<String, CoreError> {
        String::from_utf8(self.open(column, row, blob)?).map_err(|_| CoreError::Corrupt(column))
    }

    fn index(&self, purpose: &'static str, value: &[u8]) -> Result<Param, CoreError> {
        Ok(bytes(
            &self.cipher()?.blind_index(purpose.as_bytes(), value)?,
        ))
    }

    /// A key label, `None` included, so that the database cannot tell which keys have one.
    fn seal_label(&self, key: KeyId, label: Option<&str>) -> Result<Param, CoreError> {
        let mut plain = vec![u8::from(label.is_some())];
        plain.extend_from_slice(label.unwrap_or_default().as_bytes());
        self.seal("keys.label", key.as_bytes(), &plain)
    }

    fn open_label(&self, key: KeyId, blob: &[u8]) -> Result<Option<String>, CoreError> {
        let plain = self.open("keys.label", key.as_bytes(), blob)?;
        match plain.split_first() {
            Some((0, [])) => Ok(None),
            Some((1, text)) => String::from_utf8(text.to_vec())
                .map(Some)
                .map_err(|_| CoreError::Corrupt("keys.label")),
            _ => Err(CoreError::Corrupt("keys.label")),
        }
    }

    /// A quorum rule sealed whole: `scope (16) || approvals (1) || operation`.
    fn seal_rule(&self, index: &[u8; 32], rule: &QuorumRule) -> Result<Param, CoreError> {
        let mut plain = rule_scope(rule).to_vec();
        plain.push(rule.approvals);
        plain.extend_from_slice(rule.op.as_str().as_bytes());
        self.seal("quorum_rules.rule", index, &plain)
    }

    fn open_rule(&self, index: &[u8; 32], blob: &[u8]) -> Result<QuorumRule, CoreError> {
        let bad = || CoreError::Corrupt("quorum_rules.rule");
        let plain = self.open("quorum_rules.rule", index, blob)?;
        let (scope, rest) = plain.split_first_chunk::<16>().ok_or_else(bad)?;
        let (approvals, op) = rest.split_first().ok_or_else(bad)?;
        let rule = QuorumRule {
            domain: (*scope != [0; 16]).then(|| DomainId::from_bytes(*scope)),
            op: std::str::from_utf8(op)
                .ok()
                .and_then(|op| op.parse().ok())
                .ok_or_else(bad)?,
            approvals: *approvals,
        };
        // The index names the rule's position: a rule copied under another index is refused.
        if self.rule_index(&rule)? != *index {
            return Err(bad());
        }
        Ok(rule)
    }

    fn rule_index(&self, rule: &QuorumRule) -> Result<[u8; 32], CoreError> {
        let mut value = rule_scope(rule).to_vec();
        value.extend_from_slice(rule.op.as_str().as_bytes());
        self.cipher()?.blind_index(b"quorum-rule", &value)
    }
}

fn rule_scope(rule: &QuorumRule) -> [u8; 16] {
    rule.domain.map_or([0u8; 16], |d| *d.as_bytes())
}

// ---- Records -----------------------------------------------------------------------------

/// A domain's algorithm policy as stored: sealed, bound to its row, even when it allows
/// everything.
fn sealed_algorithms(
    f: &Fields,
    row: &[u8],
    p: &strongroom_core::AlgorithmPolicy,
) -> Result<Param, CoreError> {
    f.seal("domains.algorithms", row, p.to_stored().as_bytes())
}

const DOMAIN_COLS: &str = "id, name, wrapped_key, created_at, new_keys, destroyed_at, algorithms, key_version, retiring_version, retiring_key";
fn domain_at(r: &dyn Row, o: usize, f: &Fields) -> Result<DomainRecord, CoreError> {
    let id = DomainId::from_bytes(arr(r, o)?);
    Ok(DomainRecord {
        id,
        name: f
            .open_text("domains.name", id.as_bytes(), &req_bytes(r, o + 1)?)?
            .parse::<DomainName>()
            .map_err(|_| CoreError::Corrupt("domain name"))?,
        wrapped_key: req_bytes(r, o + 2)?,
        created_at: millis(r, o + 3)?,
        new_key_temperature: f
            .open_text("domains.new_keys", id.as_bytes(), &req_bytes(r, o + 4)?)?
            .parse()
            .map_err(|_| CoreError::Corrupt("temperature"))?,
        destroyed_at: opt_millis(r, o + 5)?,
        algorithms: strongroom_core::AlgorithmPolicy::from_stored(&f.open_text(
            "domains.algorithms",
            id.as_bytes(),
            &req_bytes(r, o + 6)?,
        )?)
        .map_err(|_| CoreError::Corrupt("domain algorithms"))?,
        key_version: small(r, o + 7, "domain key version")?,
        retiring: match (r.int(o + 8)?, r.bytes(o + 9)?) {
            (None, None) => None,
            (Some(v), Some(wrapped_key)) => Some(strongroom_core::record::RetiringKey {
                version: u32::try_from(v).map_err(|_| CoreError::Corrupt("domain key version"))?,
                wrapped_key,
            }),
            _ => return Err(CoreError::Corrupt("retiring domain key")),
        },
    })
}

const KEY_COLS: &str = "id, domain_id, version, algorithm, label, public_key, created_at, destroyed_at, sealed_secret, temperature, temperature_mac, temperature_since, hot_idle_secs, domain_key_version, predecessor";
fn key_row(r: &dyn Row, f: &Fields) -> Result<KeyRecord, CoreError> {
    let id = KeyId::from_bytes(arr(r, 0)?);
    Ok(KeyRecord {
        id,
        domain: DomainId::from_bytes(arr(r, 1)?),
        version: small(r, 2, "key version")?,
        algorithm: req_text(r, 3)?
            .parse::<Algorithm>()
            .map_err(|_| CoreError::Corrupt("algorithm"))?,
        label: f.open_label(id, &req_bytes(r, 4)?)?,
        // Sealed: a public key gives away its addresses (and a wallet's account key all of
        // them), so the database administrator must not see it.
        public_key: f.open("keys.public_key", id.as_bytes(), &req_bytes(r, 5)?)?,
        created_at: millis(r, 6)?,
        destroyed_at: opt_millis(r, 7)?,
        sealed_secret: r.bytes(8)?,
        temperature: temperature(r, 9)?,
        temperature_mac: arr(r, 10)?,
        temperature_since: millis(r, 11)?,
        hot_idle_secs: r
            .int(12)?
            .map(|s| u32::try_from(s).map_err(|_| CoreError::Corrupt("idle limit")))
            .transpose()?,
        domain_key_version: small(r, 13, "domain key version")?,
        predecessor: opt_id(r, 14, KeyId::from_bytes)?,
    })
}

const TOKEN_COLS: &str =
    "id, hash, kind, domain_id, created_at, expires_at, revoked_at, mac, operator_id";
fn token_row(r: &dyn Row) -> Result<TokenRecord, CoreError> {
    let bad = || CoreError::Corrupt("token kind");
    let kind = match (req_text(r, 2)?.as_str(), r.bytes(3)?, r.bytes(8)?) {
        ("root", None, None) => TokenKind::Root,
        ("bootstrap", None, None) => TokenKind::Bootstrap,
        ("app", Some(d), None) => {
            TokenKind::Application(DomainId::from_bytes(d.try_into().map_err(|_| bad())?))
        }
        ("session", None, Some(o)) => {
            TokenKind::Session(OperatorId::from_bytes(o.try_into().map_err(|_| bad())?))
        }
        ("keymanager", Some(d), None) => {
            TokenKind::Keymanager(DomainId::from_bytes(d.try_into().map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    };
    Ok(TokenRecord {
        id: TokenId::from_bytes(arr(r, 0)?),
        hash: arr(r, 1)?,
        kind,
        created_at: millis(r, 4)?,
        expires_at: opt_millis(r, 5)?,
        revoked_at: opt_millis(r, 6)?,
        mac: arr(r, 7)?,
    })
}

const OPERATOR_COLS: &str = "id, name_index, name, roles, domain_id, password_hash, must_change_password, totp_sealed, totp_last_step, failed_logins, locked_until, approval_key, created_at, disabled_at, mac";
fn operator_row(r: &dyn Row, f: &Fields) -> Result<OperatorRecord, CoreError> {
    let id = OperatorId::from_bytes(arr(r, 0)?);
    Ok(OperatorRecord {
        id,
        // Column 1 is the name's blind index: only for lookups.
        name: f
            .open_text("operators.name", id.as_bytes(), &req_bytes(r, 2)?)?
            .parse::<OperatorName>()
            .map_err(|_| CoreError::Corrupt("operator name"))?,
        roles: u8::try_from(req_int(r, 3)?)
            .ok()
            .and_then(|b| Roles::from_bits(b).ok())
            .ok_or(CoreError::Corrupt("operator roles"))?,
        domain: opt_id(r, 4, DomainId::from_bytes)?,
        password_hash: req_text(r, 5)?,
        must_change_password: req_int(r, 6)? != 0,
        totp_sealed: req_bytes(r, 7)?,
        totp_last_step: r
            .int(8)?
            .map(|v| u64::try_from(v).map_err(|_| CoreError::Corrupt("totp step")))
            .transpose()?,
        failed_logins: small(r, 9, "failed logins")?,
        locked_until: opt_millis(r, 10)?,
        approval_key: r
            .bytes(11)?
            .map(|k| k.try_into().map_err(|_| CoreError::Corrupt("approval key")))
            .transpose()?,
        created_at: millis(r, 12)?,
        disabled_at: opt_millis(r, 13)?,
        mac: arr(r, 14)?,
    })
}
fn operator_params(o: &OperatorRecord, f: &Fields) -> Result<Vec<Param>, CoreError> {
    Ok(vec![
        bytes(o.id.as_bytes()),
        f.index("operator-name", o.name.as_str().as_bytes())?,
        f.seal(
            "operators.name",
            o.id.as_bytes(),
            o.name.as_str().as_bytes(),
        )?,
        int(i64::from(o.roles.bits())),
        opt_id_param(o.domain.as_ref().map(DomainId::as_bytes)),
        text(&o.password_hash),
        int(i64::from(o.must_change_password)),
        bytes(&o.totp_sealed),
        Param::Int(o.totp_last_step.map(to_i64).transpose()?),
        int(i64::from(o.failed_logins)),
        opt_millis_param(o.locked_until)?,
        Param::Bytes(o.approval_key.map(|k| k.to_vec())),
        millis_param(o.created_at)?,
        opt_millis_param(o.disabled_at)?,
        bytes(&o.mac),
    ])
}

const PENDING_COLS: &str = "id, op, params, domain_id, key_id, requester, requester_operator, required, created_at, expires_at, nonce, hash, status, result, decided_at, mac";
fn pending_row(r: &dyn Row, f: &Fields) -> Result<PendingRecord, CoreError> {
    let id = PendingId::from_bytes(arr(r, 0)?);
    Ok(PendingRecord {
        id,
        op: req_text(r, 1)?
            .parse::<GatedOp>()
            .map_err(|_| CoreError::Corrupt("request operation"))?,
        params: f.open_text("pending.params", id.as_bytes(), &req_bytes(r, 2)?)?,
        domain: opt_id(r, 3, DomainId::from_bytes)?,
        key: opt_id(r, 4, KeyId::from_bytes)?,
        requester: f.open_text("pending.requester", id.as_bytes(), &req_bytes(r, 5)?)?,
        requester_operator: opt_id(r, 6, OperatorId::from_bytes)?,
        required: small(r, 7, "required approvals")?,
        created_at: millis(r, 8)?,
        expires_at: millis(r, 9)?,
        // Sealed: with the nonce, every other input of the clear request hash is readable,
        // and the parameters could be guessed and confirmed offline against it.
        nonce: f
            .open("pending.nonce", id.as_bytes(), &req_bytes(r, 10)?)?
            .try_into()
            .map_err(|_| CoreError::Corrupt("pending.nonce"))?,
        hash: arr(r, 11)?,
        status: RequestStatus::parse(&req_text(r, 12)?)
            .ok_or(CoreError::Corrupt("request status"))?,
        result: r
            .bytes(13)?
            .map(|b| f.open_text("pending.result", id.as_bytes(), &b))
            .transpose()?,
        decided_at: opt_millis(r, 14)?,
        mac: arr(r, 15)?,
    })
}
fn pending_params(p: &PendingRecord, f: &Fields) -> Result<Vec<Param>, CoreError> {
    let row = p.id.as_bytes();
    Ok(vec![
        bytes(row),
        text(p.op.as_str()),
        f.seal("pending.params", row, p.params.as_bytes())?,
        opt_id_param(p.domain.as_ref().map(DomainId::as_bytes)),
        opt_id_param(p.key.as_ref().map(KeyId::as_bytes)),
        f.seal("pending.requester", row, p.requester.as_bytes())?,
        opt_id_param(p.requester_operator.as_ref().map(OperatorId::as_bytes)),
        int(i64::from(p.required)),
        millis_param(p.created_at)?,
        millis_param(p.expires_at)?,
        f.seal("pending.nonce", row, &p.nonce)?,
        bytes(&p.hash),
        text(p.status.as_str()),
        match &p.result {
            Some(result) => f.seal("pending.result", row, result.as_bytes())?,
            None => Param::Bytes(None),
        },
        opt_millis_param(p.decided_at)?,
        bytes(&p.mac),
    ])
}

const AUDIT_COLS: &str = "seq, prev_hash, hash, time, digest, sealed, event";
fn audit_row(r: &dyn Row, f: &Fields) -> Result<AuditRecord, CoreError> {
    let seq: u64 = small(r, 0, "seq")?;
    let time = millis(r, 3)?;
    let digest = arr(r, 4)?;
    let stored = req_bytes(r, 6)?;
    let plain = match req_int(r, 5)? {
        0 => Some(stored),
        1 => match f.open("audit.event", &seq.to_be_bytes(), &stored) {
            Ok(plain) => Some(plain),
            // Without the storage key the record still takes its place in the chain through
            // its digest; verifiers decide what that means.
            Err(CoreError::Sealed) => None,
            // An altered ciphertext: the same, but say so, since keyless verification cannot
            // see it (its digest is intact) and an export will refuse it.
            Err(CoreError::Corrupt(_)) => {
                tracing::error!(seq, "a sealed audit event failed to open: it was altered");
                None
            }
            Err(e) => return Err(e),
        },
        _ => return Err(CoreError::Corrupt("audit sealed flag")),
    };
    let body = match plain {
        Some(plain) => {
            AuditBody::Open(decode_event(time, &plain).ok_or(CoreError::Corrupt("audit event"))?)
        }
        None => AuditBody::Sealed { time, digest },
    };
    Ok(AuditRecord {
        seq,
        prev_hash: arr(r, 1)?,
        hash: arr(r, 2)?,
        body,
    })
}

// ---- Reads --------------------------------------------------------------------------------

pub(crate) fn vault(db: &mut dyn Db) -> Result<VaultMeta, CoreError> {
    need(one(
        db,
        "SELECT vault_id, created_at, seal_config, root_check, audit_public_key, initialized_at
         FROM vault WHERE id = 1",
        &[],
        |r| {
            let init = match opt_millis(r, 5)? {
                None => None,
                Some(at) => Some(InitRecord {
                    seal_config: r.bytes(2)?.ok_or(CoreError::Corrupt("seal config"))?,
                    root_check: arr(r, 3)?,
                    audit_public_key: arr(r, 4)?,
                    initialized_at: at,
                }),
            };
            Ok(VaultMeta {
                vault_id: VaultId::from_bytes(arr(r, 0)?),
                created_at: millis(r, 1)?,
                init,
            })
        },
    )?)
}

/// Writes the installation row of a new database.
pub(crate) fn create_vault(
    db: &mut dyn Db,
    vault_id: VaultId,
    now: UnixMillis,
) -> Result<(), CoreError> {
    db.execute(
        "INSERT INTO vault (id, vault_id, created_at) VALUES (1, $1, $2)",
        &[bytes(vault_id.as_bytes()), millis_param(now)?],
    )?;
    Ok(())
}

pub(crate) fn domain_by_name(
    db: &mut dyn Db,
    f: &Fields,
    name: &DomainName,
) -> Result<Option<DomainRecord>, CoreError> {
    let found = one(
        db,
        &format!("SELECT {DOMAIN_COLS} FROM domains WHERE name_index = $1"),
        &[f.index("domain-name", name.as_str().as_bytes())?],
        |r| domain_at(r, 0, f),
    )?;
    // A row whose sealed name differs from its index was edited in the database.
    match found {
        Some(d) if d.name != *name => Err(CoreError::Corrupt("domains.name")),
        other => Ok(other),
    }
}

pub(crate) fn domain(
    db: &mut dyn Db,
    f: &Fields,
    id: DomainId,
) -> Result<Option<DomainRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {DOMAIN_COLS} FROM domains WHERE id = $1"),
        &[bytes(id.as_bytes())],
        |r| domain_at(r, 0, f),
    )
}

pub(crate) fn domains(db: &mut dyn Db, f: &Fields) -> Result<Vec<DomainRecord>, CoreError> {
    // Names are sealed, so the database cannot order by them.
    let mut out = all(
        db,
        &format!("SELECT {DOMAIN_COLS} FROM domains"),
        &[],
        |r| domain_at(r, 0, f),
    )?;
    out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(out)
}

pub(crate) fn key(db: &mut dyn Db, f: &Fields, id: KeyId) -> Result<Option<KeyRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {KEY_COLS} FROM keys WHERE id = $1"),
        &[bytes(id.as_bytes())],
        |r| key_row(r, f),
    )
}

pub(crate) fn key_with_domain(
    db: &mut dyn Db,
    f: &Fields,
    id: KeyId,
) -> Result<Option<(KeyRecord, DomainRecord)>, CoreError> {
    one(
        db,
        "SELECT k.id, k.domain_id, k.version, k.algorithm, k.label, k.public_key, k.created_at,
                k.destroyed_at, k.sealed_secret, k.temperature, k.temperature_mac,
                k.temperature_since, k.hot_idle_secs, k.domain_key_version, k.predecessor,
                d.id, d.name, d.wrapped_key, d.created_at, d.new_keys, d.destroyed_at,
                d.algorithms, d.key_version, d.retiring_version, d.retiring_key
         FROM keys k JOIN domains d ON d.id = k.domain_id WHERE k.id = $1",
        &[bytes(id.as_bytes())],
        |r| Ok((key_row(r, f)?, domain_at(r, 15, f)?)),
    )
}

/// A domain's online keys still sealed under master key `version`, at most `limit`.
pub(crate) fn keys_to_rewrap(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
    version: u32,
    limit: u32,
) -> Result<Vec<KeyRecord>, CoreError> {
    all(
        db,
        &format!(
            "SELECT {KEY_COLS} FROM keys
             WHERE domain_id = $1 AND domain_key_version = $2 AND sealed_secret IS NOT NULL
                   AND destroyed_at IS NULL
             ORDER BY created_at, id LIMIT $3"
        ),
        &[
            bytes(domain.as_bytes()),
            int(i64::from(version)),
            int(i64::from(limit)),
        ],
        |r| key_row(r, f),
    )
}

/// How many of a domain's live keys are under master key `version`: online, and offline (in
/// export bundles).
pub(crate) fn keys_under(
    db: &mut dyn Db,
    domain: DomainId,
    version: u32,
) -> Result<(u64, u64), CoreError> {
    need(one(
        db,
        "SELECT COALESCE(SUM(CASE WHEN sealed_secret IS NULL THEN 0 ELSE 1 END), 0),
                COALESCE(SUM(CASE WHEN sealed_secret IS NULL THEN 1 ELSE 0 END), 0)
         FROM keys WHERE domain_id = $1 AND domain_key_version = $2 AND destroyed_at IS NULL",
        &[bytes(domain.as_bytes()), int(i64::from(version))],
        |r| Ok((small(r, 0, "key count")?, small(r, 1, "key count")?)),
    )?)
}

pub(crate) fn keys(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
) -> Result<Vec<KeyRecord>, CoreError> {
    all(
        db,
        &format!("SELECT {KEY_COLS} FROM keys WHERE domain_id = $1 ORDER BY created_at, id"),
        &[bytes(domain.as_bytes())],
        |r| key_row(r, f),
    )
}

pub(crate) fn idle_limited_keys(db: &mut dyn Db, f: &Fields) -> Result<Vec<KeyRecord>, CoreError> {
    all(
        db,
        &format!(
            "SELECT {KEY_COLS} FROM keys
             WHERE temperature = 'hot' AND hot_idle_secs IS NOT NULL AND destroyed_at IS NULL
             ORDER BY id"
        ),
        &[],
        |r| key_row(r, f),
    )
}

/// Audit operations whose granted records are a key's signatures (for idle demotion).
const SIGNING_OPERATIONS: [&str; 8] = [
    "key.sign",
    "btc.sign_psbt",
    "eth2.sign",
    "eos.sign",
    "eth.sign_tx",
    "eth.erc20_transfer",
    "eth.sign_message",
    "eth.sign_typed_data",
];

/// The blind index that marks a key's granted signatures in the audit table.
fn sign_index(f: &Fields, key: &str) -> Result<Param, CoreError> {
    f.index("key-sign", key.as_bytes())
}

pub(crate) fn last_signature(
    db: &mut dyn Db,
    f: &Fields,
    key: KeyId,
) -> Result<Option<UnixMillis>, CoreError> {
    // Served by the partial index `audit_signatures`. The index column is outside the record
    // hash, so the row it marks must open to a granted signature by this key: a marker copied
    // onto a newer record of anything else would otherwise keep an idle key hot.
    let key_text = key.to_string();
    let found = one(
        db,
        &format!("SELECT {AUDIT_COLS} FROM audit WHERE sign_index = $1 ORDER BY seq DESC LIMIT 1"),
        &[sign_index(f, &key_text)?],
        |r| audit_row(r, f),
    )?;
    let Some(record) = found else {
        return Ok(None);
    };
    match record.body.event() {
        Some(e)
            if SIGNING_OPERATIONS.contains(&e.operation.as_str())
                && e.outcome == Outcome::Granted
                && e.key.as_deref() == Some(key_text.as_str()) =>
        {
            Ok(Some(e.time))
        }
        // Unreadable or not this key's signature: no signature counts, so the key demotes
        // (the safe direction) and the edit shows in the log.
        _ => {
            tracing::error!(
                seq = record.seq,
                "an audit signature marker does not match its record"
            );
            Ok(None)
        }
    }
}

pub(crate) fn operator_by_name(
    db: &mut dyn Db,
    f: &Fields,
    name: &OperatorName,
) -> Result<Option<OperatorRecord>, CoreError> {
    let found = one(
        db,
        &format!("SELECT {OPERATOR_COLS} FROM operators WHERE name_index = $1"),
        &[f.index("operator-name", name.as_str().as_bytes())?],
        |r| operator_row(r, f),
    )?;
    // A row whose sealed name differs from its index was edited in the database.
    match found {
        Some(o) if o.name != *name => Err(CoreError::Corrupt("operators.name")),
        other => Ok(other),
    }
}

pub(crate) fn operator(
    db: &mut dyn Db,
    f: &Fields,
    id: OperatorId,
) -> Result<Option<OperatorRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {OPERATOR_COLS} FROM operators WHERE id = $1"),
        &[bytes(id.as_bytes())],
        |r| operator_row(r, f),
    )
}

pub(crate) fn operators(db: &mut dyn Db, f: &Fields) -> Result<Vec<OperatorRecord>, CoreError> {
    // Names are sealed, so the database cannot order by them.
    let mut out = all(
        db,
        &format!("SELECT {OPERATOR_COLS} FROM operators"),
        &[],
        |r| operator_row(r, f),
    )?;
    out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    Ok(out)
}

pub(crate) fn pending(
    db: &mut dyn Db,
    f: &Fields,
    id: PendingId,
) -> Result<Option<PendingRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {PENDING_COLS} FROM pending WHERE id = $1"),
        &[bytes(id.as_bytes())],
        |r| pending_row(r, f),
    )
}

pub(crate) fn pendings(
    db: &mut dyn Db,
    f: &Fields,
    status: Option<RequestStatus>,
) -> Result<Vec<PendingRecord>, CoreError> {
    match status {
        Some(st) => all(
            db,
            &format!(
                "SELECT {PENDING_COLS} FROM pending WHERE status = $1 ORDER BY created_at DESC, id"
            ),
            &[text(st.as_str())],
            |r| pending_row(r, f),
        ),
        None => all(
            db,
            &format!("SELECT {PENDING_COLS} FROM pending ORDER BY created_at DESC, id"),
            &[],
            |r| pending_row(r, f),
        ),
    }
}

/// Associated-data row of a sealed policy: the wallet and the version it was set as.
fn policy_row(wallet: KeyId, version: u32) -> Vec<u8> {
    let mut row = wallet.as_bytes().to_vec();
    row.extend_from_slice(&version.to_be_bytes());
    row
}

pub(crate) fn policy(
    db: &mut dyn Db,
    f: &Fields,
    wallet: KeyId,
) -> Result<Option<PolicyRecord>, CoreError> {
    one(
        db,
        "SELECT version, policy, set_at FROM policies WHERE wallet_id = $1",
        &[bytes(wallet.as_bytes())],
        |r| {
            let version: u32 = small(r, 0, "policy version")?;
            Ok(PolicyRecord {
                wallet,
                version,
                policy: f.open_text(
                    "policies.policy",
                    &policy_row(wallet, version),
                    &req_bytes(r, 1)?,
                )?,
                set_at: millis(r, 2)?,
            })
        },
    )
}

/// The blind index of a wallet's spends of one asset.
fn spend_index(f: &Fields, wallet: KeyId, asset: &str) -> Result<Param, CoreError> {
    let mut value = wallet.as_bytes().to_vec();
    value.extend_from_slice(asset.as_bytes());
    f.index("wallet-spend", &value)
}

/// 256-bit big-endian addition; `None` on overflow.
fn add_be(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

/// Spends are summed per hour: a bucket is an hour since the epoch.
const BUCKET_MS: u64 = 3_600_000;

/// Associated-data row of a spend bucket.
fn bucket_row(index: &[u8], bucket: u64) -> Vec<u8> {
    let mut row = index.to_vec();
    row.extend_from_slice(&bucket.to_be_bytes());
    row
}

fn index_bytes(index: &Param) -> Result<Vec<u8>, CoreError> {
    match index {
        Param::Bytes(Some(b)) => Ok(b.clone()),
        _ => Err(CoreError::Corrupt("spend index")),
    }
}

/// What a wallet spent of an asset from the hour containing `since` on. The bucket that
/// straddles `since` counts whole, so the window is 24 to 25 hours, never less: a limit errs
/// towards refusing.
pub(crate) fn spent_since(
    db: &mut dyn Db,
    f: &Fields,
    wallet: KeyId,
    asset: &str,
    since: UnixMillis,
) -> Result<[u8; 32], CoreError> {
    let index = spend_index(f, wallet, asset)?;
    let raw = index_bytes(&index)?;
    let first = since.0 / BUCKET_MS;
    let amounts = all(
        db,
        "SELECT bucket, amount FROM spends WHERE asset_index = $1 AND bucket >= $2",
        &[index, int(to_i64(first)?)],
        |r| {
            let bucket: u64 = small(r, 0, "spend bucket")?;
            let plain = f.open(
                "spends.amount",
                &bucket_row(&raw, bucket),
                &req_bytes(r, 1)?,
            )?;
            <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| CoreError::Corrupt("spends.amount"))
        },
    )?;
    Ok(amounts
        .iter()
        .try_fold([0u8; 32], |acc, a| add_be(&acc, a))
        // 2^256 spent: saturate, which any limit refuses.
        .unwrap_or([0xff; 32]))
}

/// The blind index of a principal's idempotency key.
fn idempotency_index(f: &Fields, principal: &str, key: &str) -> Result<Param, CoreError> {
    let mut value = principal.as_bytes().to_vec();
    value.push(0);
    value.extend_from_slice(key.as_bytes());
    f.index("idempotency", &value)
}

pub(crate) fn idempotent(
    db: &mut dyn Db,
    f: &Fields,
    principal: &str,
    key: &str,
) -> Result<Option<IdempotentRecord>, CoreError> {
    let index = idempotency_index(f, principal, key)?;
    let raw = index_bytes(&index)?;
    one(
        db,
        "SELECT fingerprint, response, created_at FROM idempotency WHERE key_index = $1",
        &[index],
        |r| {
            Ok(IdempotentRecord {
                fingerprint: arr(r, 0)?,
                response: f.open_text("idempotency.response", &raw, &req_bytes(r, 1)?)?,
                created_at: millis(r, 2)?,
            })
        },
    )
}

pub(crate) fn approvals(db: &mut dyn Db, id: PendingId) -> Result<Vec<ApprovalRecord>, CoreError> {
    all(
        db,
        "SELECT request_id, approver_id, signature, at FROM approvals
         WHERE request_id = $1 ORDER BY at, approver_id",
        &[bytes(id.as_bytes())],
        |r| {
            Ok(ApprovalRecord {
                request: PendingId::from_bytes(arr(r, 0)?),
                approver: OperatorId::from_bytes(arr(r, 1)?),
                signature: arr(r, 2)?,
                at: millis(r, 3)?,
            })
        },
    )
}

pub(crate) fn quorum_rules(db: &mut dyn Db, f: &Fields) -> Result<Vec<QuorumRule>, CoreError> {
    let mut out = all(db, "SELECT rule_index, rule FROM quorum_rules", &[], |r| {
        f.open_rule(&arr(r, 0)?, &req_bytes(r, 1)?)
    })?;
    out.sort_by_key(|rule| (rule.op.as_str(), rule_scope(rule)));
    Ok(out)
}

pub(crate) fn token_by_hash(
    db: &mut dyn Db,
    hash: &[u8; 32],
) -> Result<Option<TokenRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {TOKEN_COLS} FROM tokens WHERE hash = $1"),
        &[bytes(hash)],
        token_row,
    )
}

pub(crate) fn tokens(db: &mut dyn Db) -> Result<Vec<TokenRecord>, CoreError> {
    all(
        db,
        &format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY created_at, id"),
        &[],
        token_row,
    )
}

pub(crate) fn token(db: &mut dyn Db, id: TokenId) -> Result<Option<TokenRecord>, CoreError> {
    one(
        db,
        &format!("SELECT {TOKEN_COLS} FROM tokens WHERE id = $1"),
        &[bytes(id.as_bytes())],
        token_row,
    )
}

pub(crate) fn audit_tail(db: &mut dyn Db) -> Result<Option<(u64, [u8; 32])>, CoreError> {
    one(
        db,
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
        &[],
        |r| Ok((small(r, 0, "seq")?, arr(r, 1)?)),
    )
}

pub(crate) fn audit_records(
    db: &mut dyn Db,
    f: &Fields,
    from: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, CoreError> {
    all(
        db,
        &format!("SELECT {AUDIT_COLS} FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2"),
        &[
            int(to_i64(from)?),
            int(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
        |r| audit_row(r, f),
    )
}

pub(crate) fn audit_heads(db: &mut dyn Db) -> Result<Vec<SignedHead>, CoreError> {
    let vault_id = vault(db)?.vault_id;
    all(
        db,
        "SELECT seq, hash, time, signature FROM audit_heads ORDER BY seq",
        &[],
        |r| {
            Ok(SignedHead {
                vault_id,
                seq: small(r, 0, "seq")?,
                hash: arr(r, 1)?,
                time: millis(r, 2)?,
                signature: arr(r, 3)?,
            })
        },
    )
}

// ---- Writes -------------------------------------------------------------------------------

/// A write transaction over either backend. `shredded` tells the backend that a secret was
/// erased, so it can purge old copies (SQLite's WAL) after the commit.
pub(crate) struct Txn<'a> {
    pub(crate) db: &'a mut dyn Db,
    fields: &'a Fields,
    pub(crate) shredded: bool,
    /// What other nodes' caches must forget once this commits.
    pub(crate) changes: Vec<Change>,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(db: &'a mut dyn Db, fields: &'a Fields) -> Self {
        Self {
            db,
            fields,
            shredded: false,
            changes: Vec::new(),
        }
    }
}

/// The payload of a change notification: `k:<key id>`, `t:<token id>` or `*`, comma-separated;
/// `*` alone when the list would not fit a notification.
pub(crate) fn encode_changes(changes: &[Change]) -> String {
    let items: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Key(id) => format!("k:{id}"),
            Change::Token(id) => format!("t:{id}"),
            _ => "*".to_owned(),
        })
        .collect();
    let joined = items.join(",");
    // PostgreSQL notification payloads must stay under 8000 bytes.
    if joined.len() > 7000 || items.iter().any(|i| i == "*") {
        "*".to_owned()
    } else {
        joined
    }
}

/// The inverse of [`encode_changes`]; anything unreadable means everything.
pub(crate) fn decode_changes(payload: &str) -> Vec<Change> {
    let mut out = Vec::new();
    for item in payload.split(',') {
        let parsed = match item.split_once(':') {
            Some(("k", id)) => id.parse().ok().map(Change::Key),
            Some(("t", id)) => id.parse().ok().map(Change::Token),
            _ => None,
        };
        match parsed {
            Some(c) => out.push(c),
            None => return vec![Change::Everything],
        }
    }
    out
}

fn constrained(what: &'static str) -> impl Fn(DbError) -> CoreError {
    move |e| match e {
        DbError::Constraint { foreign_key: true } => CoreError::NotFound("domain"),
        DbError::Constraint { foreign_key: false } => CoreError::Conflict(what),
        DbError::Other(e) => e,
    }
}

impl Txn<'_> {
    /// Runs a compare-and-swap style update: exactly one row must change.
    fn update_one(
        &mut self,
        sql: &str,
        params: &[Param],
        otherwise: CoreError,
    ) -> Result<(), CoreError> {
        if self.db.execute(sql, params)? == 1 {
            Ok(())
        } else {
            Err(otherwise)
        }
    }

    fn apply_one(&mut self, m: &Mutation) -> Result<(), CoreError> {
        match m {
            Mutation::DestroyKey { id, .. }
            | Mutation::SetTemperature { id, .. }
            | Mutation::TakeOffline { id, .. }
            | Mutation::RestoreSecret { id, .. } => self.changes.push(Change::Key(*id)),
            // Other nodes must not keep (or export) a key's pre-move blob.
            Mutation::RewrapKeys { keys, .. } => self
                .changes
                .extend(keys.iter().map(|(id, _, _)| Change::Key(*id))),
            Mutation::RevokeToken { id, .. } => self.changes.push(Change::Token(*id)),
            Mutation::DestroyDomain { .. }
            | Mutation::ChangeSeal { .. }
            | Mutation::Rekey { .. }
            | Mutation::RotateDomainKey { .. }
            | Mutation::FinishDomainRotation { .. }
            | Mutation::SetDomainAlgorithms { .. } => {
                self.changes.push(Change::Everything);
            }
            _ => {}
        }
        match m {
            Mutation::Initialize(init) => self.update_one(
                "UPDATE vault SET seal_config = $1, root_check = $2, audit_public_key = $3,
                        initialized_at = $4
                 WHERE id = 1 AND initialized_at IS NULL",
                &[
                    bytes(&init.seal_config),
                    bytes(&init.root_check),
                    bytes(&init.audit_public_key),
                    millis_param(init.initialized_at)?,
                ],
                CoreError::Conflict("vault initialisation"),
            ),
            Mutation::ChangeSeal { from, to } => self.update_one(
                "UPDATE vault SET seal_config = $1
                 WHERE id = 1 AND initialized_at IS NOT NULL AND seal_config = $2",
                &[bytes(to), bytes(from)],
                CoreError::Conflict("seal configuration"),
            ),
            Mutation::Rekey {
                from,
                to,
                wraps,
                retiring_wraps,
            } => {
                self.apply_one(&Mutation::ChangeSeal {
                    from: from.clone(),
                    to: to.clone(),
                })?;
                for (column, list) in [("wrapped_key", wraps), ("retiring_key", retiring_wraps)] {
                    for (id, was, now) in list {
                        self.update_one(
                            &format!(
                                "UPDATE domains SET {column} = $3
                                 WHERE id = $1 AND {column} = $2 AND destroyed_at IS NULL"
                            ),
                            &[bytes(id.as_bytes()), bytes(was), bytes(now)],
                            CoreError::Conflict("domain master key"),
                        )?;
                    }
                }
                let (live, rotating): (u64, u64) = need(one(
                    self.db,
                    "SELECT COUNT(*),
                            COALESCE(SUM(CASE WHEN retiring_key IS NULL THEN 0 ELSE 1 END), 0)
                     FROM domains WHERE destroyed_at IS NULL",
                    &[],
                    |r| Ok((small(r, 0, "domain count")?, small(r, 1, "domain count")?)),
                )?)?;
                if live != wraps.len() as u64 || rotating != retiring_wraps.len() as u64 {
                    return Err(CoreError::Conflict("domains"));
                }
                Ok(())
            }
            Mutation::RotateDomainKey {
                id,
                from_version,
                from_wrapped,
                to_version,
                to_wrapped,
            } => self.update_one(
                "UPDATE domains SET retiring_version = key_version, retiring_key = wrapped_key,
                        key_version = $4, wrapped_key = $5
                 WHERE id = $1 AND key_version = $2 AND wrapped_key = $3
                       AND retiring_key IS NULL AND destroyed_at IS NULL",
                &[
                    bytes(id.as_bytes()),
                    int(i64::from(*from_version)),
                    bytes(from_wrapped),
                    int(i64::from(*to_version)),
                    bytes(to_wrapped),
                ],
                CoreError::Conflict("domain master key"),
            ),
            Mutation::RewrapKeys {
                domain,
                from_version,
                to_version,
                keys,
            } => {
                // All or nothing: the batch's audit record then says exactly what moved.
                for (id, was, now) in keys {
                    self.update_one(
                        "UPDATE keys SET sealed_secret = $5, domain_key_version = $4
                         WHERE id = $1 AND domain_id = $2 AND domain_key_version = $3
                               AND sealed_secret = $6 AND destroyed_at IS NULL",
                        &[
                            bytes(id.as_bytes()),
                            bytes(domain.as_bytes()),
                            int(i64::from(*from_version)),
                            int(i64::from(*to_version)),
                            bytes(now),
                            bytes(was),
                        ],
                        CoreError::Conflict("key changed during its re-wrap"),
                    )?;
                }
                Ok(())
            }
            Mutation::FinishDomainRotation { id, version } => {
                let (online, offline) = keys_under(self.db, *id, *version)?;
                if online + offline > 0 {
                    return Err(CoreError::Conflict("keys still under the retiring key"));
                }
                self.update_one(
                    "UPDATE domains SET retiring_version = NULL, retiring_key = NULL
                     WHERE id = $1 AND retiring_version = $2",
                    &[bytes(id.as_bytes()), int(i64::from(*version))],
                    CoreError::Conflict("domain rotation"),
                )?;
                // The retiring key's bytes leave the file, not just the row.
                self.shredded = true;
                Ok(())
            }
            Mutation::ExpectSeal(config) => {
                let same: u64 = need(one(
                    self.db,
                    "SELECT COUNT(*) FROM vault WHERE id = 1 AND seal_config = $1",
                    &[bytes(config)],
                    |r| small(r, 0, "vault count"),
                )?)?;
                if same == 1 {
                    Ok(())
                } else {
                    Err(CoreError::Conflict("seal configuration"))
                }
            }
            Mutation::CreateDomain(d) => {
                let (f, row) = (self.fields, d.id.as_bytes());
                self.db
                    .execute(
                        "INSERT INTO domains (id, name_index, name, wrapped_key, created_at,
                                              new_keys, algorithms, key_version)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[
                            bytes(row),
                            f.index("domain-name", d.name.as_str().as_bytes())?,
                            f.seal("domains.name", row, d.name.as_str().as_bytes())?,
                            bytes(&d.wrapped_key),
                            millis_param(d.created_at)?,
                            f.seal(
                                "domains.new_keys",
                                row,
                                d.new_key_temperature.as_str().as_bytes(),
                            )?,
                            sealed_algorithms(f, row, &d.algorithms)?,
                            int(i64::from(d.key_version)),
                        ],
                    )
                    .map_err(constrained("domain"))?;
                Ok(())
            }
            Mutation::SetDomainAlgorithms { id, from, to } => {
                // Compare-and-swap on the policy the request was decided from.
                let current = domain(self.db, self.fields, *id)?
                    .filter(|d| d.destroyed_at.is_none())
                    .ok_or(CoreError::NotFound("domain"))?;
                if current.algorithms != *from {
                    return Err(CoreError::Conflict("domain algorithms"));
                }
                self.update_one(
                    "UPDATE domains SET algorithms = $2 WHERE id = $1 AND destroyed_at IS NULL",
                    &[
                        bytes(id.as_bytes()),
                        sealed_algorithms(self.fields, id.as_bytes(), to)?,
                    ],
                    CoreError::NotFound("domain"),
                )
            }
            Mutation::CreateKey(k) => {
                let sealable: u64 = need(one(
                    self.db,
                    "SELECT COUNT(*) FROM domains
                     WHERE id = $1 AND destroyed_at IS NULL
                           AND (key_version = $2 OR retiring_version = $2)",
                    &[
                        bytes(k.domain.as_bytes()),
                        int(i64::from(k.domain_key_version)),
                    ],
                    |r| small(r, 0, "domain count"),
                )?)?;
                if sealable != 1 {
                    return Err(CoreError::Conflict(
                        "the domain's master key changed while the key was made",
                    ));
                }
                self.db
                    .execute(
                        &format!(
                            "INSERT INTO keys ({KEY_COLS})
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                     $15)"
                        ),
                        &[
                            bytes(k.id.as_bytes()),
                            bytes(k.domain.as_bytes()),
                            int(i64::from(k.version)),
                            text(k.algorithm.as_str()),
                            self.fields.seal_label(k.id, k.label.as_deref())?,
                            self.fields
                                .seal("keys.public_key", k.id.as_bytes(), &k.public_key)?,
                            millis_param(k.created_at)?,
                            opt_millis_param(k.destroyed_at)?,
                            Param::Bytes(k.sealed_secret.clone()),
                            text(k.temperature.as_str()),
                            bytes(&k.temperature_mac),
                            millis_param(k.temperature_since)?,
                            Param::Int(k.hot_idle_secs.map(i64::from)),
                            int(i64::from(k.domain_key_version)),
                            opt_id_param(k.predecessor.as_ref().map(KeyId::as_bytes)),
                        ],
                    )
                    .map_err(constrained("key"))?;
                Ok(())
            }
            Mutation::DestroyKey { id, at } => {
                self.update_one(
                    "UPDATE keys SET sealed_secret = NULL, destroyed_at = $2
                     WHERE id = $1 AND destroyed_at IS NULL",
                    &[bytes(id.as_bytes()), millis_param(*at)?],
                    CoreError::NotFound("key"),
                )?;
                self.shredded = true;
                Ok(())
            }
            Mutation::CreateToken(t) => {
                let (kind, domain, operator) = match t.kind {
                    TokenKind::Root => ("root", None, None),
                    TokenKind::Bootstrap => ("bootstrap", None, None),
                    TokenKind::Application(d) => ("app", Some(*d.as_bytes()), None),
                    TokenKind::Session(o) => ("session", None, Some(*o.as_bytes())),
                    TokenKind::Keymanager(d) => ("keymanager", Some(*d.as_bytes()), None),
                    _ => {
                        return Err(CoreError::Storage(
                            "token kind not supported by this backend".into(),
                        ));
                    }
                };
                self.db
                    .execute(
                        &format!(
                            "INSERT INTO tokens ({TOKEN_COLS})
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                        ),
                        &[
                            bytes(t.id.as_bytes()),
                            bytes(&t.hash),
                            text(kind),
                            opt_id_param(domain.as_ref()),
                            millis_param(t.created_at)?,
                            opt_millis_param(t.expires_at)?,
                            opt_millis_param(t.revoked_at)?,
                            bytes(&t.mac),
                            opt_id_param(operator.as_ref()),
                        ],
                    )
                    .map_err(constrained("token"))?;
                Ok(())
            }
            Mutation::CreateOperator(o) => {
                self.db
                    .execute(
                        &format!(
                            "INSERT INTO operators ({OPERATOR_COLS}) VALUES ($1, $2, $3, $4,
                             $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                        ),
                        &operator_params(o, self.fields)?,
                    )
                    .map_err(constrained("operator"))?;
                Ok(())
            }
            Mutation::UpdateOperator {
                expected_mac,
                record,
            } => {
                let mut values = operator_params(record, self.fields)?;
                values.push(bytes(expected_mac));
                let n = self
                    .db
                    .execute(
                        "UPDATE operators SET name_index = $2, name = $3, roles = $4,
                            domain_id = $5, password_hash = $6, must_change_password = $7,
                            totp_sealed = $8, totp_last_step = $9, failed_logins = $10,
                            locked_until = $11, approval_key = $12, created_at = $13,
                            disabled_at = $14, mac = $15
                         WHERE id = $1 AND mac = $16",
                        &values,
                    )
                    .map_err(constrained("operator"))?;
                if n != 1 {
                    // Changed since it was read (a concurrent login, say): refuse.
                    return Err(CoreError::Conflict("operator update"));
                }
                Ok(())
            }
            Mutation::CreatePending(p) => {
                self.db
                    .execute(
                        &format!(
                            "INSERT INTO pending ({PENDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6,
                             $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                        ),
                        &pending_params(p, self.fields)?,
                    )
                    .map_err(constrained("request"))?;
                Ok(())
            }
            Mutation::UpdatePending {
                expected_mac,
                record,
            } => {
                let mut values = pending_params(record, self.fields)?;
                values.push(bytes(expected_mac));
                self.update_one(
                    "UPDATE pending SET op = $2, params = $3, domain_id = $4, key_id = $5,
                        requester = $6, requester_operator = $7, required = $8, created_at = $9,
                        expires_at = $10, nonce = $11, hash = $12, status = $13, result = $14,
                        decided_at = $15, mac = $16
                     WHERE id = $1 AND mac = $17",
                    &values,
                    CoreError::Conflict("request update"),
                )
            }
            Mutation::AddApproval(a) => {
                self.db
                    .execute(
                        "INSERT INTO approvals (request_id, approver_id, signature, at)
                         VALUES ($1, $2, $3, $4)",
                        &[
                            bytes(a.request.as_bytes()),
                            bytes(a.approver.as_bytes()),
                            bytes(&a.signature),
                            millis_param(a.at)?,
                        ],
                    )
                    .map_err(constrained("approval"))?;
                Ok(())
            }
            Mutation::SetTemperature {
                id,
                temperature,
                since,
                hot_idle_secs,
                mac,
                expected_mac,
            } => self.update_one(
                "UPDATE keys SET temperature = $2, temperature_mac = $3, temperature_since = $5,
                        hot_idle_secs = $6
                 WHERE id = $1 AND temperature_mac = $4 AND destroyed_at IS NULL",
                &[
                    bytes(id.as_bytes()),
                    text(temperature.as_str()),
                    bytes(mac),
                    bytes(expected_mac),
                    millis_param(*since)?,
                    Param::Int(hot_idle_secs.map(i64::from)),
                ],
                CoreError::Conflict("key temperature"),
            ),
            Mutation::DestroyDomain { id, at } => {
                // Erase the master key: every key sealed under it is unrecoverable from here on.
                self.update_one(
                    "UPDATE domains SET wrapped_key = $3, destroyed_at = $2,
                            retiring_version = NULL, retiring_key = NULL
                     WHERE id = $1 AND destroyed_at IS NULL",
                    &[bytes(id.as_bytes()), millis_param(*at)?, bytes(&[])],
                    CoreError::NotFound("domain"),
                )?;
                self.db.execute(
                    "UPDATE keys SET sealed_secret = NULL, destroyed_at = $2
                     WHERE domain_id = $1 AND destroyed_at IS NULL",
                    &[bytes(id.as_bytes()), millis_param(*at)?],
                )?;
                self.shredded = true;
                Ok(())
            }
            Mutation::TakeOffline {
                id,
                sealed_secret,
                domain_key_version,
            } => {
                self.update_one(
                    "UPDATE keys SET sealed_secret = NULL
                     WHERE id = $1 AND temperature = 'cold' AND sealed_secret = $2
                           AND domain_key_version = $3 AND destroyed_at IS NULL",
                    &[
                        bytes(id.as_bytes()),
                        bytes(sealed_secret),
                        int(i64::from(*domain_key_version)),
                    ],
                    CoreError::Conflict("key not cold and online as exported"),
                )?;
                self.shredded = true;
                Ok(())
            }
            Mutation::RestoreSecret { id, sealed_secret } => self.update_one(
                "UPDATE keys SET sealed_secret = $2
                 WHERE id = $1 AND sealed_secret IS NULL AND destroyed_at IS NULL",
                &[bytes(id.as_bytes()), bytes(sealed_secret)],
                CoreError::Conflict("key not offline"),
            ),
            Mutation::SetQuorum(rule) => {
                let index = self.fields.rule_index(rule)?;
                self.db.execute(
                    "INSERT INTO quorum_rules (rule_index, rule) VALUES ($1, $2)
                     ON CONFLICT (rule_index) DO UPDATE SET rule = excluded.rule",
                    &[bytes(&index), self.fields.seal_rule(&index, rule)?],
                )?;
                Ok(())
            }
            Mutation::SetPolicy(p) => {
                let sealed = self.fields.seal(
                    "policies.policy",
                    &policy_row(p.wallet, p.version),
                    p.policy.as_bytes(),
                )?;
                let changed = if p.version == 1 {
                    self.db.execute(
                        "INSERT INTO policies (wallet_id, version, policy, set_at)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (wallet_id) DO NOTHING",
                        &[
                            bytes(p.wallet.as_bytes()),
                            int(1),
                            sealed,
                            millis_param(p.set_at)?,
                        ],
                    )?
                } else {
                    self.db.execute(
                        "UPDATE policies SET version = $2, policy = $3, set_at = $4
                         WHERE wallet_id = $1 AND version = $5",
                        &[
                            bytes(p.wallet.as_bytes()),
                            int(i64::from(p.version)),
                            sealed,
                            millis_param(p.set_at)?,
                            int(i64::from(p.version - 1)),
                        ],
                    )?
                };
                if changed == 1 {
                    Ok(())
                } else {
                    Err(CoreError::Conflict("policy version"))
                }
            }
            Mutation::Eth2Duty(rec) => slashing::duty(self.db, self.fields, rec),
            Mutation::Eth2AuthorizeExit { key, epoch } => {
                slashing::authorize_exit(self.db, *key, *epoch)
            }
            Mutation::Eth2Exit { key, epoch } => slashing::exit(self.db, *key, *epoch),
            Mutation::RequireHotKey { key } => slashing::require_temperature(self.db, *key, "hot"),
            Mutation::Eth2Release { key, at, how } => slashing::release(self.db, *key, *at, how),
            Mutation::RequireColdKey { key } => {
                slashing::require_temperature(self.db, *key, "cold")
            }
            Mutation::Eth2Join { domain, validator } => {
                slashing::join(self.db, self.fields, *domain, validator)
            }
            Mutation::Eth2Import {
                domain,
                interchange,
            } => slashing::import(self.db, self.fields, *domain, interchange),
            Mutation::RecordSpend {
                wallet,
                asset,
                amount,
                at,
                since,
                limit,
            } => {
                if let Some(limit) = limit {
                    let spent = spent_since(self.db, self.fields, *wallet, asset, *since)?;
                    // Big-endian byte order is numeric order.
                    match add_be(&spent, amount) {
                        Some(total) if total <= *limit => {}
                        _ => {
                            return Err(CoreError::Conflict(
                                strongroom_core::storage::LIMIT_EXCEEDED,
                            ));
                        }
                    }
                }
                let index = spend_index(self.fields, *wallet, asset)?;
                let raw = index_bytes(&index)?;
                let bucket = at.0 / BUCKET_MS;
                let row = bucket_row(&raw, bucket);
                let current = one(
                    self.db,
                    "SELECT amount FROM spends WHERE asset_index = $1 AND bucket = $2",
                    &[index.clone(), int(to_i64(bucket)?)],
                    |r| req_bytes(r, 0),
                )?;
                let total = match &current {
                    None => *amount,
                    Some(blob) => {
                        let before: [u8; 32] = self
                            .fields
                            .open("spends.amount", &row, blob)?
                            .as_slice()
                            .try_into()
                            .map_err(|_| CoreError::Corrupt("spends.amount"))?;
                        add_be(&before, amount).unwrap_or([0xff; 32])
                    }
                };
                self.db.execute(
                    "INSERT INTO spends (asset_index, bucket, amount) VALUES ($1, $2, $3)
                     ON CONFLICT (asset_index, bucket) DO UPDATE SET amount = excluded.amount",
                    &[
                        index,
                        int(to_i64(bucket)?),
                        self.fields.seal("spends.amount", &row, &total)?,
                    ],
                )?;
                Ok(())
            }
            Mutation::PutIdempotent {
                principal,
                key,
                record,
                replaces_before,
            } => {
                let index = idempotency_index(self.fields, principal, key)?;
                let raw = index_bytes(&index)?;
                let changed = self.db.execute(
                    "INSERT INTO idempotency (key_index, fingerprint, response, created_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key_index) DO UPDATE SET fingerprint = excluded.fingerprint,
                         response = excluded.response, created_at = excluded.created_at
                     WHERE idempotency.created_at < $5",
                    &[
                        index,
                        bytes(&record.fingerprint),
                        self.fields.seal(
                            "idempotency.response",
                            &raw,
                            record.response.as_bytes(),
                        )?,
                        millis_param(record.created_at)?,
                        millis_param(*replaces_before)?,
                    ],
                )?;
                // Zero rows: a live answer is already stored (a concurrent request with the
                // same key), and it stays. Not an error: this request's record is still true.
                let _ = changed;
                Ok(())
            }
            Mutation::RevokeToken { id, at, mac } => self.update_one(
                "UPDATE tokens SET revoked_at = $2, mac = $3 WHERE id = $1 AND revoked_at IS NULL",
                &[bytes(id.as_bytes()), millis_param(*at)?, bytes(mac)],
                CoreError::NotFound("token"),
            ),
            _ => Err(CoreError::Storage(
                "mutation not supported by this backend".into(),
            )),
        }
    }
}

impl WriteTxn for Txn<'_> {
    fn dump(&mut self) -> Result<strongroom_core::storage::Dump, CoreError> {
        dump::dump(self.db)
    }

    fn restore(
        &mut self,
        d: &strongroom_core::storage::Dump,
        seal_config: &[u8],
    ) -> Result<(), CoreError> {
        dump::restore(self.db, d, seal_config)?;
        self.changes.push(Change::Everything);
        Ok(())
    }

    fn apply(&mut self, mutations: &[Mutation]) -> Result<(), CoreError> {
        self.db.execute("SAVEPOINT mutation", &[])?;
        match mutations.iter().try_for_each(|m| self.apply_one(m)) {
            Ok(()) => {
                self.db.execute("RELEASE SAVEPOINT mutation", &[])?;
                Ok(())
            }
            Err(e) => {
                self.db.execute("ROLLBACK TO SAVEPOINT mutation", &[])?;
                self.db.execute("RELEASE SAVEPOINT mutation", &[])?;
                Err(e)
            }
        }
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<(), CoreError> {
        let AuditBody::Open(e) = &r.body else {
            return Err(CoreError::Storage(
                "an audit record to append must be open".into(),
            ));
        };
        let plain = encode_event(e);
        // Sealed whenever the storage key is there. A record written while the vault is
        // sealed (an unseal attempt) stays clear: the chain must never stop for want of a key,
        // and such records name only identifiers and operations. So does one written when the
        // random generator has just failed (no nonce): the vault seals itself at once, and
        // the record of it must still land.
        let f = self.fields;
        let (sealed, event) = match f.seal_bytes("audit.event", &r.seq.to_be_bytes(), &plain) {
            Ok(blob) => (1, blob),
            Err(CoreError::Sealed | CoreError::Entropy) => (0, plain),
            Err(err) => return Err(err),
        };
        // Without the index key (sealed meanwhile) the signature goes unmarked, and an idle
        // hot key demotes early rather than late.
        let sign = match (&e.key, e.outcome, e.operation.as_str()) {
            (Some(key), Outcome::Granted, op) if SIGNING_OPERATIONS.contains(&op) => {
                sign_index(f, key).unwrap_or(Param::Bytes(None))
            }
            _ => Param::Bytes(None),
        };
        self.db.execute(
            "INSERT INTO audit (seq, prev_hash, hash, time, digest, sealed, event, sign_index)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                int(to_i64(r.seq)?),
                bytes(&r.prev_hash),
                bytes(&r.hash),
                millis_param(e.time)?,
                bytes(&event_digest(e)),
                int(sealed),
                bytes(&event),
                sign,
            ],
        )?;
        Ok(())
    }

    fn put_head(&mut self, h: &SignedHead) -> Result<(), CoreError> {
        self.db.execute(
            "INSERT INTO audit_heads (seq, hash, time, signature) VALUES ($1, $2, $3, $4)
             ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, time = excluded.time,
                                             signature = excluded.signature",
            &[
                int(to_i64(h.seq)?),
                bytes(&h.hash),
                millis_param(h.time)?,
                bytes(&h.signature),
            ],
        )?;
        Ok(())
    }

    fn audit_tail(&mut self) -> Result<Option<(u64, [u8; 32])>, CoreError> {
        audit_tail(self.db)
    }

    fn audit_hash(&mut self, seq: u64) -> Result<Option<[u8; 32]>, CoreError> {
        one(
            self.db,
            "SELECT hash FROM audit WHERE seq = $1",
            &[int(to_i64(seq)?)],
            |r| arr(r, 0),
        )
    }
}

/// `impl Storage` for a backend that offers `read(|db| ...)` and `write_batch(batch)`: every
/// method is the shared SQL above.
macro_rules! storage_over_sql {
    ($store:ty) => {
        storage_over_sql!($store, watch = |_: &$store, _| Ok(()));
    };
    ($store:ty, watch = $watch:expr) => {
        impl strongroom_core::storage::Storage for $store {
            fn watch(
                &self,
                listener: strongroom_core::storage::ChangeListener,
            ) -> Result<(), CoreError> {
                let watch: fn(
                    &$store,
                    strongroom_core::storage::ChangeListener,
                ) -> Result<(), CoreError> = $watch;
                watch(self, listener)
            }
            fn vault(&self) -> Result<VaultMeta, CoreError> {
                self.read(crate::sql::vault)
            }
            fn use_field_cipher(
                &self,
                cipher: std::sync::Arc<dyn strongroom_core::storage::FieldCipher>,
            ) -> Result<(), CoreError> {
                self.fields.set(cipher)
            }
            fn domain_by_name(&self, name: &DomainName) -> Result<Option<DomainRecord>, CoreError> {
                self.read(|db| crate::sql::domain_by_name(db, &self.fields, name))
            }
            fn domain(&self, id: DomainId) -> Result<Option<DomainRecord>, CoreError> {
                self.read(|db| crate::sql::domain(db, &self.fields, id))
            }
            fn domains(&self) -> Result<Vec<DomainRecord>, CoreError> {
                self.read(|db| crate::sql::domains(db, &self.fields))
            }
            fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, CoreError> {
                self.read(|db| crate::sql::key(db, &self.fields, id))
            }
            fn key_with_domain(
                &self,
                id: KeyId,
            ) -> Result<Option<(KeyRecord, DomainRecord)>, CoreError> {
                self.read(|db| crate::sql::key_with_domain(db, &self.fields, id))
            }
            fn keys(&self, domain: DomainId) -> Result<Vec<KeyRecord>, CoreError> {
                self.read(|db| crate::sql::keys(db, &self.fields, domain))
            }
            fn keys_to_rewrap(
                &self,
                domain: DomainId,
                version: u32,
                limit: u32,
            ) -> Result<Vec<KeyRecord>, CoreError> {
                self.read(|db| crate::sql::keys_to_rewrap(db, &self.fields, domain, version, limit))
            }
            fn keys_under(&self, domain: DomainId, version: u32) -> Result<(u64, u64), CoreError> {
                self.read(|db| crate::sql::keys_under(db, domain, version))
            }
            fn idle_limited_keys(&self) -> Result<Vec<KeyRecord>, CoreError> {
                self.read(|db| crate::sql::idle_limited_keys(db, &self.fields))
            }
            fn last_signature(&self, key: KeyId) -> Result<Option<UnixMillis>, CoreError> {
                self.read(|db| crate::sql::last_signature(db, &self.fields, key))
            }
            fn idempotent(
                &self,
                principal: &str,
                key: &str,
            ) -> Result<Option<strongroom_core::record::IdempotentRecord>, CoreError> {
                self.read(|db| crate::sql::idempotent(db, &self.fields, principal, key))
            }
            fn policy(
                &self,
                wallet: KeyId,
            ) -> Result<Option<strongroom_core::record::PolicyRecord>, CoreError> {
                self.read(|db| crate::sql::policy(db, &self.fields, wallet))
            }
            fn spent_since(
                &self,
                wallet: KeyId,
                asset: &str,
                since: UnixMillis,
            ) -> Result<[u8; 32], CoreError> {
                self.read(|db| crate::sql::spent_since(db, &self.fields, wallet, asset, since))
            }
            fn eth2_export(
                &self,
                domain: DomainId,
            ) -> Result<Option<strongroom_core::slashing::Interchange>, CoreError> {
                self.read(|db| crate::sql::slashing::export(db, &self.fields, domain))
            }
            fn eth2_released(
                &self,
                domain: DomainId,
            ) -> Result<Vec<(KeyId, UnixMillis, String)>, CoreError> {
                self.read(|db| crate::sql::slashing::released(db, domain))
            }
            fn operator_by_name(
                &self,
                name: &OperatorName,
            ) -> Result<Option<OperatorRecord>, CoreError> {
                self.read(|db| crate::sql::operator_by_name(db, &self.fields, name))
            }
            fn operator(&self, id: OperatorId) -> Result<Option<OperatorRecord>, CoreError> {
                self.read(|db| crate::sql::operator(db, &self.fields, id))
            }
            fn operators(&self) -> Result<Vec<OperatorRecord>, CoreError> {
                self.read(|db| crate::sql::operators(db, &self.fields))
            }
            fn pending(&self, id: PendingId) -> Result<Option<PendingRecord>, CoreError> {
                self.read(|db| crate::sql::pending(db, &self.fields, id))
            }
            fn pendings(
                &self,
                status: Option<RequestStatus>,
            ) -> Result<Vec<PendingRecord>, CoreError> {
                self.read(|db| crate::sql::pendings(db, &self.fields, status))
            }
            fn approvals(&self, id: PendingId) -> Result<Vec<ApprovalRecord>, CoreError> {
                self.read(|db| crate::sql::approvals(db, id))
            }
            fn quorum_rules(&self) -> Result<Vec<QuorumRule>, CoreError> {
                self.read(|db| crate::sql::quorum_rules(db, &self.fields))
            }
            fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, CoreError> {
                self.read(|db| crate::sql::token_by_hash(db, hash))
            }
            fn tokens(&self) -> Result<Vec<TokenRecord>, CoreError> {
                self.read(crate::sql::tokens)
            }
            fn token(&self, id: TokenId) -> Result<Option<TokenRecord>, CoreError> {
                self.read(|db| crate::sql::token(db, id))
            }
            fn audit_tail(&self) -> Result<Option<(u64, [u8; 32])>, CoreError> {
                self.read(crate::sql::audit_tail)
            }
            fn audit_records(
                &self,
                from: u64,
                limit: usize,
            ) -> Result<Vec<AuditRecord>, CoreError> {
                self.read(|db| crate::sql::audit_records(db, &self.fields, from, limit))
            }
            fn audit_heads(&self) -> Result<Vec<SignedHead>, CoreError> {
                self.read(crate::sql::audit_heads)
            }
            fn write(&self, batch: WriteBatch<'_>) -> Result<(), CoreError> {
                self.write_batch(batch)
            }
        }
    };
}
pub(crate) use storage_over_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_payloads_round_trip_and_fail_towards_everything() {
        let k = KeyId::from_random([1; 16]);
        let t = TokenId::from_random([2; 16]);
        let changes = [Change::Key(k), Change::Token(t)];
        assert_eq!(decode_changes(&encode_changes(&changes)), changes);
        assert_eq!(encode_changes(&[Change::Key(k), Change::Everything]), "*");
        let many = vec![Change::Key(k); 500];
        assert_eq!(encode_changes(&many), "*", "too long for a notification");
        for garbage in ["*", "", "k:nope", "x:1", "k"] {
            assert_eq!(
                decode_changes(garbage),
                vec![Change::Everything],
                "{garbage}"
            );
        }
    }
}
