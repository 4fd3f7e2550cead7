//! Encrypted backups of the whole vault, and their restore onto an empty store.
//!
//! `backup create` (a `backup.create` quorum request; once approved, its requester collects it
//! once, within an hour) copies every row in one consistent read and has the keystore seal it,
//! with the derivation base and every domain key version, under a fresh backup key split into
//! backup shares (in the clear to the requester, or each age-encrypted to a custodian). The
//! file is written by the CLI; the server keeps nothing. `backup verify` opens a file with its
//! shares and checks everything in it without restoring; `backup restore` (offline, on an empty
//! data directory or database) rebuilds the vault under a fresh root with fresh unseal shares.
//! Layouts in `docs/formats.md`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strongroom_core::quorum::GatedOp;
use strongroom_core::record::{PendingRecord, RequestStatus};
use strongroom_core::storage::{Cell, Dump, Storage};
use strongroom_core::{DomainId, EntropySource, Operation, VaultId};
use strongroom_crypto::AgeRecipient;
use strongroom_keystore::ShamirSeal;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{EncryptedShareView, RequestCtx, Vault, allow, share_views};

/// The backup file's `format`.
pub const BACKUP_FORMAT: &str = "strongroom-backup-v1";
/// The marker a restore leaves in the data directory: the next start audits it.
pub const RESTORED_MARKER: &str = "restored-from-backup";

/// A backup file: a public header and the sealed payload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// [`BACKUP_FORMAT`].
    pub format: String,
    /// The vault's identity.
    pub vault_id: String,
    /// This backup's identity (its shares name it), hex.
    pub backup_id: String,
    /// When it was made (Unix ms).
    pub created_at_ms: u64,
    /// Backup shares needed.
    pub threshold: u8,
    /// Backup shares made.
    pub shares: u8,
    /// The custodians the shares were encrypted to (none: handed out in the clear).
    pub custodians: Vec<String>,
    /// The vault's root check value (of its derivation base), hex.
    pub root_check: String,
    /// The vault's audit public key, hex.
    pub audit_public_key: String,
    /// The last audit record the copy holds, and its hash (hex).
    pub audit_seq: u64,
    /// See `audit_seq`.
    pub audit_hash: String,
    /// The sealed payload, base64.
    pub ciphertext: String,
}

impl BackupFile {
    /// The associated data the payload is sealed with: every header field, so none can be
    /// changed without the file failing to open.
    #[must_use]
    pub fn header(&self) -> Vec<u8> {
        let mut out = b"strongroom/backup/v1\0".to_vec();
        let mut put = |field: &str| {
            out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        };
        for field in [
            self.format.as_str(),
            &self.vault_id,
            &self.backup_id,
            &self.created_at_ms.to_string(),
            &self.threshold.to_string(),
            &self.shares.to_string(),
        ] {
            put(field);
        }
        // Counted, each length-prefixed: no two lists encode alike.
        put(&self.custodians.len().to_string());
        for c in &self.custodians {
            put(c);
        }
        for field in [
            &self.root_check,
            &self.audit_public_key,
            &self.audit_seq.to_string(),
            &self.audit_hash,
        ] {
            put(field);
        }
        out
    }

    fn backup_id(&self) -> Result<[u8; 16], ApiError> {
        hex::decode(&self.backup_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| unreadable("bad backup id"))
    }
}

fn unreadable(why: &str) -> ApiError {
    ApiError::bad(
        "backup_unreadable",
        format!("the backup file is not usable: {why}"),
    )
}

/// What `POST /v1/sys/backup` answers once a backup is made.
#[derive(Serialize)]
pub struct BackupView {
    file: BackupFile,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shares: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    encrypted_shares: Vec<EncryptedShareView>,
}

/// What a backup request asks for.
pub(crate) struct BackupParams {
    pub(crate) split: ShamirSeal,
    pub(crate) custodians: Option<Vec<AgeRecipient>>,
}

impl BackupParams {
    fn to_json(&self) -> Value {
        json!({
            "shares": self.split.shares,
            "threshold": self.split.threshold,
            "custodian_keys": self.custodians.as_ref().map(|c| c.iter().map(ToString::to_string).collect::<Vec<_>>()),
        })
    }

    fn from_json(p: &Value) -> Result<Self, ApiError> {
        let small = |k: &str| {
            p[k].as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or(ApiError::Internal)
        };
        let custodians = match p["custodian_keys"].as_array() {
            None => None,
            Some(keys) => Some(
                keys.iter()
                    .map(|k| {
                        k.as_str()
                            .and_then(|k| AgeRecipient::parse(k).ok())
                            .ok_or(ApiError::Internal)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self {
            split: ShamirSeal {
                shares: small("shares")?,
                threshold: small("threshold")?,
            },
            custodians,
        })
    }
}

impl Vault {
    /// Files a backup request (or, with no quorum to wait for, makes the backup at once), or
    /// collects an approved one (`request`).
    pub(crate) async fn create_backup(
        &self,
        ctx: &RequestCtx,
        params: Option<BackupParams>,
        request: Option<&str>,
    ) -> Result<Gated<BackupView>, ApiError> {
        allow(ctx, &Operation::CreateBackup)?;
        match (params, request) {
            (Some(params), None) => {
                if params.split.threshold == 0 || params.split.threshold > params.split.shares {
                    return Err(ApiError::bad(
                        "invalid_parameters",
                        "need 1 <= backup threshold <= backup shares <= 255",
                    ));
                }
                if let Some(p) = self
                    .gate(ctx, GatedOp::CreateBackup, params.to_json(), None, None)
                    .await?
                {
                    return Ok(Gated::Pending(p));
                }
                Ok(Gated::Done(self.make_backup(ctx, &params, None).await?))
            }
            (None, Some(request)) => {
                let (rec, _) = self.collectable(ctx, request, GatedOp::CreateBackup, "backup")?;
                let params: Value =
                    serde_json::from_str(&rec.params).map_err(|_| ApiError::Internal)?;
                let params = BackupParams::from_json(&params)?;
                ctx.tag(|t| t.acting_for = Some(rec.id));
                Ok(Gated::Done(
                    self.make_backup(ctx, &params, Some(&rec)).await?,
                ))
            }
            _ => Err(ApiError::bad(
                "invalid_request",
                "give the backup shares and threshold (to file the backup), or the approved request (to collect it)",
            )),
        }
    }

    /// The approval of a backup request: its requester may now collect it.
    pub(crate) async fn backup_approved(
        &self,
        ctx: &RequestCtx,
        rec: &PendingRecord,
    ) -> Result<(), ApiError> {
        let finish = self.decide(
            rec,
            RequestStatus::Executed,
            Some(json!({"backup": "approved",
                "collect": format!("strongroom backup create --request {} --out FILE", rec.id)})),
            ctx.time,
        )?;
        self.commit(ctx, "backup.approved", vec![finish]).await
    }

    async fn make_backup(
        &self,
        ctx: &RequestCtx,
        params: &BackupParams,
        request: Option<&PendingRecord>,
    ) -> Result<BackupView, ApiError> {
        // The rows and the domain records must agree (a domain created between the two reads
        // would be in the copy without its key): read the records, copy, compare.
        let domains = self.store.domains()?;
        let mut copy = None;
        self.store.write(&mut |txn| {
            copy = Some(txn.dump()?);
            Ok(())
        })?;
        let dump = copy.ok_or(ApiError::Internal)?;
        if !same_domain_keys(&dump, &domains) {
            return Err(ApiError::conflict(
                "domains_changed",
                "a domain changed while the backup was taken; nothing was made, try again",
            ));
        }
        let init = dump.vault.init.as_ref().ok_or(ApiError::NotInitialized)?;
        let (audit_seq, audit_hash) = last_audit(&dump)?;
        let mut backup_id = [0u8; 16];
        self.entropy
            .fill(&mut backup_id)
            .map_err(|_| ApiError::EntropyFailed)?;
        let mut file = BackupFile {
            format: BACKUP_FORMAT.into(),
            vault_id: self.vault_id.to_string(),
            backup_id: hex::encode(backup_id),
            created_at_ms: ctx.time.0,
            threshold: params.split.threshold,
            shares: params.split.shares,
            custodians: params
                .custodians
                .as_ref()
                .map(|c| c.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            root_check: hex::encode(init.root_check),
            audit_public_key: hex::encode(init.audit_public_key),
            audit_seq,
            audit_hash: hex::encode(audit_hash),
            ciphertext: String::new(),
        };
        let rows = Zeroizing::new(strongroom_storage::dump_file::encode(&dump));
        let sealed =
            self.keystore
                .seal_backup(&backup_id, &file.header(), &domains, &rows, params.split)?;
        file.ciphertext = base64::engine::general_purpose::STANDARD.encode(&sealed.ciphertext);
        let (shares, encrypted_shares) = share_views(
            &sealed.shares,
            params.custodians.as_deref(),
            self.entropy.as_ref(),
        )?;
        ctx.tag(|t| {
            t.detail = Some(
                json!({"backup_id": file.backup_id, "audit_seq": audit_seq,
                       "bytes": sealed.ciphertext.len(),
                       "shares": params.split.shares, "threshold": params.split.threshold})
                .to_string(),
            );
        });
        let mut mutations = vec![];
        if let Some(rec) = request {
            let result = rec
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_else(|| json!({}));
            mutations.push(self.collected(
                ctx,
                rec,
                result,
                json!({"backup_id": file.backup_id}),
            )?);
        }
        // Recorded before it leaves: no backup exists that the audit log does not name.
        self.commit(ctx, "backup.create", mutations)
            .await
            .map_err(|e| match e {
                ApiError::Conflict {
                    code: "conflict", ..
                } => crate::requests::collected_once("backup"),
                other => other,
            })?;
        Ok(BackupView {
            file,
            shares,
            encrypted_shares,
        })
    }
}

/// Whether every live domain row in the copy has exactly the wrapped keys of its record.
fn same_domain_keys(dump: &Dump, domains: &[strongroom_core::record::DomainRecord]) -> bool {
    let Some(t) = dump.tables.iter().find(|t| t.table == "domains") else {
        return false;
    };
    let col = |name: &str| t.columns.iter().position(|c| c == name);
    let (Some(id), Some(wrapped), Some(retiring), Some(destroyed)) = (
        col("id"),
        col("wrapped_key"),
        col("retiring_key"),
        col("destroyed_at"),
    ) else {
        return false;
    };
    let live: Vec<_> = domains
        .iter()
        .filter(|d| d.destroyed_at.is_none())
        .collect();
    let rows: Vec<_> = t
        .rows
        .iter()
        .filter(|r| r[destroyed] == Cell::Int(None))
        .collect();
    rows.len() == live.len()
        && rows.iter().all(|r| {
            live.iter().any(|d| {
                r[id] == Cell::Bytes(Some(d.id.as_bytes().to_vec()))
                    && r[wrapped] == Cell::Bytes(Some(d.wrapped_key.clone()))
                    && r[retiring]
                        == Cell::Bytes(d.retiring.as_ref().map(|x| x.wrapped_key.clone()))
            })
        })
}

/// The copy's last audit record: its sequence number and hash.
fn last_audit(dump: &Dump) -> Result<(u64, [u8; 32]), ApiError> {
    let t = dump
        .tables
        .iter()
        .find(|t| t.table == "audit")
        .ok_or_else(|| unreadable("no audit table"))?;
    let (seq, hash) = (
        t.columns.iter().position(|c| c == "seq"),
        t.columns.iter().position(|c| c == "hash"),
    );
    let (Some(seq), Some(hash)) = (seq, hash) else {
        return Err(unreadable("no audit columns"));
    };
    let Some(last) = t.rows.last() else {
        return Ok((0, [0; 32]));
    };
    match (&last[seq], &last[hash]) {
        (Cell::Int(Some(s)), Cell::Bytes(Some(h))) => Ok((
            u64::try_from(*s).map_err(|_| unreadable("bad audit seq"))?,
            h.as_slice()
                .try_into()
                .map_err(|_| unreadable("bad audit hash"))?,
        )),
        _ => Err(unreadable("bad audit row")),
    }
}

/// What a backup holds, checked: the file opens with the shares, its payload parses, the
/// derivation base is the vault's, and the copy's identity and audit tail are the header's.
pub struct Verified {
    opened: strongroom_keystore::OpenedBackup,
    dump: Dump,
    vault_id: VaultId,
}

impl Verified {
    /// Rows per table.
    #[must_use]
    pub fn tables(&self) -> Vec<(String, usize)> {
        self.dump
            .tables
            .iter()
            .map(|t| (t.table.clone(), t.rows.len()))
            .collect()
    }

    /// Domain master key versions held.
    #[must_use]
    pub fn domain_keys(&self) -> usize {
        self.opened.domain_key_versions().len()
    }
}

/// Opens `file` with `shares` and checks it (see [`Verified`]).
///
/// # Errors
/// `backup_unreadable` (a flipped byte, a wrong share, another header), `too_few_shares`,
/// `invalid_share`.
pub fn verify(file: &BackupFile, shares: &[&str]) -> Result<Verified, ApiError> {
    if file.format != BACKUP_FORMAT {
        return Err(unreadable("unknown format"));
    }
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(&file.ciphertext)
        .map_err(|_| unreadable("bad ciphertext"))?;
    let opened = strongroom_keystore::open_backup(
        &file.backup_id()?,
        file.threshold,
        &file.header(),
        &ciphertext,
        shares,
    )
    .map_err(|e| match e {
        strongroom_keystore::Error::ShareParameters => ApiError::bad(
            "too_few_shares",
            format!("give {} distinct shares of this backup", file.threshold),
        ),
        strongroom_keystore::Error::MalformedShare => ApiError::bad(
            "invalid_share",
            "a share is malformed or belongs to another backup",
        ),
        other => other.into(),
    })?;
    let dump = strongroom_storage::dump_file::decode(opened.rows())
        .map_err(|_| unreadable("the database copy does not parse"))?;
    let init = dump
        .vault
        .init
        .as_ref()
        .ok_or_else(|| unreadable("an uninitialised vault"))?;
    let (seq, hash) = last_audit(&dump)?;
    if dump.vault.vault_id.to_string() != file.vault_id
        || hex::encode(init.root_check) != file.root_check
        || hex::encode(init.audit_public_key) != file.audit_public_key
        || opened.base_check() != init.root_check
        || seq != file.audit_seq
        || hex::encode(hash) != file.audit_hash
    {
        return Err(unreadable("its contents are not what its header says"));
    }
    if file
        .custodians
        .iter()
        .any(|c| AgeRecipient::parse(c).is_err())
    {
        return Err(unreadable("a custodian is not an age recipient"));
    }
    // Restorable as it stands: every live domain's key versions are in it (the restore
    // re-wraps them; a dry run here, on a copy).
    let wraps: Vec<_> = opened
        .domain_key_versions()
        .into_iter()
        .map(|(d, v)| (d, v, Vec::new()))
        .collect();
    rewrap_domains(&mut dump.clone(), &wraps)?;
    Ok(Verified {
        vault_id: dump.vault.vault_id,
        opened,
        dump,
    })
}

/// What a restore made: the new unseal shares (shown once) and what was restored.
pub struct Restored {
    /// The new unseal shares.
    pub shares: Vec<Zeroizing<String>>,
    /// The vault restored.
    pub vault_id: VaultId,
    /// The last audit record restored.
    pub audit_seq: u64,
}

/// Restores a verified backup into `store` (empty, uninitialised) under a fresh root split as
/// `split` says; every domain key version is re-wrapped under the new root.
///
/// # Errors
/// `not_empty` if the store holds a vault or rows; storage failures.
pub fn restore(
    store: &dyn Storage,
    verified: &Verified,
    split: ShamirSeal,
    entropy: &dyn EntropySource,
) -> Result<Restored, ApiError> {
    let init = verified
        .dump
        .vault
        .init
        .as_ref()
        .ok_or_else(|| unreadable("an uninitialised vault"))?;
    let resealed = verified
        .opened
        .reseal(&verified.vault_id, &init.seal_config, split, entropy)?;
    let mut dump = verified.dump.clone();
    rewrap_domains(&mut dump, &resealed.wraps)?;
    store
        .write(&mut |txn| txn.restore(&dump, &resealed.seal_config))
        .map_err(|e| match e {
            strongroom_core::Error::Conflict(_) => ApiError::conflict(
                "not_empty",
                "the target already holds a vault: restore into an empty data directory or database",
            ),
            other => other.into(),
        })?;
    Ok(Restored {
        shares: resealed.shares,
        vault_id: verified.vault_id,
        audit_seq: last_audit(&dump)?.0,
    })
}

/// Puts each domain key version's new wrap into the copy's domain rows; every live domain
/// must get its current one (and its retiring one, if rotating).
fn rewrap_domains(dump: &mut Dump, wraps: &[(DomainId, u32, Vec<u8>)]) -> Result<(), ApiError> {
    let t = dump
        .tables
        .iter_mut()
        .find(|t| t.table == "domains")
        .ok_or_else(|| unreadable("no domains table"))?;
    let col = |name: &str| {
        t.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| unreadable("no domain column"))
    };
    let (id, version, wrapped, retiring_version, retiring, destroyed) = (
        col("id")?,
        col("key_version")?,
        col("wrapped_key")?,
        col("retiring_version")?,
        col("retiring_key")?,
        col("destroyed_at")?,
    );
    for row in &mut t.rows {
        if row[destroyed] != Cell::Int(None) {
            continue;
        }
        let Cell::Bytes(Some(row_id)) = &row[id] else {
            return Err(unreadable("bad domain row"));
        };
        let wrap_of = |v: &Cell| -> Result<Vec<u8>, ApiError> {
            let Cell::Int(Some(v)) = v else {
                return Err(unreadable("bad domain key version"));
            };
            wraps
                .iter()
                .find(|(d, ver, _)| {
                    d.as_bytes().as_slice() == row_id.as_slice() && i64::from(*ver) == *v
                })
                .map(|w| w.2.clone())
                .ok_or_else(|| unreadable("a domain's master key is missing"))
        };
        let current = wrap_of(&row[version])?;
        let retired = match row[retiring_version] {
            Cell::Int(None) => None,
            ref v => Some(wrap_of(v)?),
        };
        row[wrapped] = Cell::Bytes(Some(current));
        row[retiring] = Cell::Bytes(retired);
    }
    Ok(())
}
