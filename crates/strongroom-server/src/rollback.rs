//! Rollback detection, and the security officers' acceptance of a deliberate restore.
//!
//! At start a node compares the newest audit head it signed (its head file, outside the
//! database) with the database's chain ([`detect`]). A database that ends before that head,
//! or holds another record at its place — an older copy put back, which would undo slashing
//! records, spent limits and revocations — is refused: no unseal, and the writer signs no
//! head (so the head file keeps its high-water mark).
//!
//! For a real disaster recovery, enough vault-wide security officers (the `rollback.accept`
//! rule) sign exactly this finding (`strongroom rollback sign`), and the operator puts the
//! document in the data directory as `rollback-accept.json`. The shares then unseal; the
//! signatures are checked against the officers' rows (only possible unsealed); if they
//! suffice, the acceptance is audited and the head file is rebased onto the database's chain,
//! otherwise the vault seals again at once. Layouts in `docs/formats.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strongroom_core::authz::Principal;
use strongroom_core::quorum::{GatedOp, required_approvals};
use strongroom_core::record::{Outcome, SignedHead};
use strongroom_core::storage::Storage;

use crate::ServeError;
use crate::error::ApiError;
use crate::service::Vault;

/// The acceptance document's `format`.
pub const ACCEPT_FORMAT: &str = "strongroom-rollback-accept-v1";
/// The acceptance document's name in the data directory.
pub const ACCEPT_FILE: &str = "rollback-accept.json";

/// What a node found at start: the database's chain against the head it signed.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// In words.
    pub what: String,
    /// The database's last audit record (absent: an empty log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_seq: Option<u64>,
    /// Its hash, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_hash: Option<String>,
    /// The newest head this node signed.
    pub signed_seq: u64,
    /// Its hash, hex.
    pub signed_hash: String,
    /// SHA-256 of the finding's canonical bytes, hex: what officers sign.
    pub sha256: String,
}

/// The SHA-256 officers sign for a finding: the database's last record (if any) and the
/// head the node signed, in a fixed layout (`docs/formats.md`). The CLI recomputes it from the
/// positions it shows, so an officer never signs a hash they cannot read.
#[must_use]
pub fn finding_sha256(database: Option<(u64, [u8; 32])>, signed: (u64, [u8; 32])) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"strongroom/rollback-finding/v1");
    let (db_seq, db_hash) = database.unwrap_or((0, [0; 32]));
    h.update([u8::from(database.is_some())]);
    h.update(db_seq.to_be_bytes());
    h.update(db_hash);
    h.update(signed.0.to_be_bytes());
    h.update(signed.1);
    h.finalize().into()
}

/// Security officers needed whatever the database's `rollback.accept` rule says: the rule,
/// like the officers, comes from the database under suspicion (an older copy's, or none).
const MIN_ACCEPTANCES: u8 = 2;

impl Finding {
    fn new(what: String, database: Option<(u64, [u8; 32])>, signed: (u64, [u8; 32])) -> Self {
        Self {
            what,
            database_seq: database.map(|d| d.0),
            database_hash: database.map(|d| hex::encode(d.1)),
            signed_seq: signed.0,
            signed_hash: hex::encode(signed.1),
            sha256: hex::encode(finding_sha256(database, signed)),
        }
    }
}

/// What `backup restore` leaves in the data directory: the restored vault runs on the state of
/// an older moment (slashing records, spends, revocations made after it are gone), so it is
/// held like a rolled-back database until enough security officers accept it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RestoreMarker {
    /// The backup's id, hex.
    pub backup_id: String,
    /// When the backup was made (Unix ms).
    pub backup_created_at_ms: u64,
    /// The last audit record restored, and its hash (hex).
    pub audit_seq: u64,
    /// See `audit_seq`.
    pub audit_hash: String,
}

impl RestoreMarker {
    /// The marker in `dir`, if there is one that parses (at most 4 KiB of it is read).
    pub(crate) fn read(dir: &Path) -> Option<Self> {
        use std::io::Read as _;
        let f = std::fs::File::open(dir.join(crate::backup::RESTORED_MARKER)).ok()?;
        let mut text = String::new();
        f.take(4096).read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The finding officers must accept before the restored vault unseals.
    pub(crate) fn finding(&self) -> Option<Finding> {
        let hash: [u8; 32] = hex::decode(&self.audit_hash).ok()?.try_into().ok()?;
        let at = (self.audit_seq, hash);
        Some(Finding::new(
            format!(
                "the vault was restored from backup {} (its audit log ends at record {}): anything recorded after the backup (slashing records, spent limits, revocations) is gone",
                self.backup_id, self.audit_seq
            ),
            Some(at),
            at,
        ))
    }
}

/// Security officers' acceptance of one finding for one vault.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// [`ACCEPT_FORMAT`].
    pub format: String,
    /// The vault (UUID).
    pub vault_id: String,
    /// The finding's `sha256`.
    pub finding_sha256: String,
    /// One per officer: Ed25519 over `"strongroom/rollback-accept/v1" || vault id ||
    /// finding SHA-256`, with their approval key.
    pub signatures: Vec<crate::measure::Signature>,
}

/// Compares the newest head in the head file whose signature verifies (this node signed it)
/// with the database's audit chain: a finding if the database ends before it, or holds
/// another record at its place.
pub(crate) fn detect(
    store: &dyn Storage,
    meta: &strongroom_core::record::VaultMeta,
    head_path: &Path,
    anchored: &[SignedHead],
) -> Result<Option<Finding>, ServeError> {
    let Some(init) = &meta.init else {
        return Ok(None);
    };
    let newest = strongroom_storage::HeadFile::read(head_path)?
        .into_iter()
        .chain(anchored.iter().cloned())
        .filter(|h| {
            strongroom_audit::verify_head_signature(h, &meta.vault_id, &init.audit_public_key)
        })
        .max_by_key(|h| h.seq);
    let Some(head) = newest else {
        return Ok(None);
    };
    let tail = store
        .audit_tail()
        .map_err(strongroom_storage::Error::from)?;
    let seen = match tail {
        Some((seq, _)) if seq >= head.seq => store
            .audit_records(head.seq, 1)
            .map_err(strongroom_storage::Error::from)?
            .into_iter()
            .next()
            .map(|r| r.hash),
        _ => None,
    };
    let what = match (tail, seen) {
        (_, Some(hash)) if hash == head.hash => return Ok(None),
        (_, Some(_)) => format!(
            "the database's audit record {} is not the one this node signed",
            head.seq
        ),
        (Some((seq, _)), None) => format!(
            "the database's audit log ends at record {seq}, but this node signed record {}",
            head.seq
        ),
        (None, None) => format!(
            "the database's audit log is empty, but this node signed record {}",
            head.seq
        ),
    };
    Ok(Some(Finding::new(what, tail, (head.seq, head.hash))))
}

/// How often, at most, the newest signed head is copied into the token: each copy is a token
/// write, and a head file is written at every commit anyway. A rollback hidden from the token
/// must therefore also replace the head file, and can only hide this last interval.
const ANCHOR_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The token data object that anchors a vault's newest signed audit head.
fn anchor_label(vault_id: &strongroom_core::VaultId) -> String {
    format!("strongroom-audit-head:{vault_id}")
}

/// The heads anchored in this node's PKCS#11 token (none on a Shamir node, or when the token
/// cannot be read: then only the head file stands, and the log says so).
pub(crate) fn token_heads(
    seal: &crate::node_seal::NodeSeal,
    entropy: &std::sync::Arc<dyn strongroom_core::EntropySource>,
    vault_id: &strongroom_core::VaultId,
) -> Vec<SignedHead> {
    let read = match seal.token(entropy) {
        None => return vec![],
        Some(Ok(t)) => t.read_anchors(&anchor_label(vault_id)),
        Some(Err(e)) => Err(e),
    };
    match read {
        Ok(values) => values
            .iter()
            .filter_map(|v| strongroom_audit::decode_head_slot(v))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the audit head anchored in the PKCS#11 token; rollback detection has only the head file");
            vec![]
        }
    }
}

/// Copies the newest signed head into the token (at most once per [`ANCHOR_INTERVAL`]) for
/// as long as the node runs.
pub(crate) async fn anchor_heads(vault: std::sync::Weak<Vault>) {
    let Some(mut written) = vault.upgrade().map(|v| v.writer.written_heads()) else {
        return;
    };
    let mut failing = false;
    while written.changed().await.is_ok() {
        let Some(head) = written.borrow_and_update().clone() else {
            continue;
        };
        let Some(v) = vault.upgrade() else { return };
        let label = anchor_label(&v.vault_id);
        let result = match v.seal.token(&v.entropy) {
            None => return,
            Some(Err(e)) => Err(e),
            Some(Ok(t)) => tokio::task::spawn_blocking(move || {
                t.write_anchor(&label, &strongroom_audit::encode_head_slot(&head))
            })
            .await
            .unwrap_or_else(|e| Err(strongroom_keystore::HsmError::Device(e.to_string()))),
        };
        drop(v);
        match result {
            Ok(()) if failing => {
                tracing::info!("the audit head is anchored in the PKCS#11 token again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot anchor the audit head in the PKCS#11 token; the head file still holds it");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(ANCHOR_INTERVAL).await;
    }
}

impl Vault {
    /// The rollback this node found at start and no officers accepted yet.
    pub(crate) fn rollback(&self) -> Option<Finding> {
        self.rollback
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether a rollback awaits acceptance (on every request: no copy of the finding).
    pub(crate) fn rollback_pending(&self) -> bool {
        self.rollback
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Whether the vault may unseal at all: not over a rolled-back database, unless an
    /// acceptance document waits to be checked.
    pub(crate) fn rollback_blocks_unseal(&self) -> Result<(), ApiError> {
        let Some(f) = self.rollback() else {
            return Ok(());
        };
        match self.acceptance(&f) {
            Ok(_) => Ok(()),
            Err(why) => Err(ApiError::RolledBack(format!("{}; {why}", f.what))),
        }
    }

    /// The acceptance document, if it names this vault and this finding (its signatures are
    /// checked once unsealed: only then can the officers' rows be trusted).
    fn acceptance(&self, finding: &Finding) -> Result<Acceptance, String> {
        let bytes = std::fs::read(self.rollback_accept_path()).map_err(|_| {
            format!("no {ACCEPT_FILE}: security officers must accept it (rollback sign)")
        })?;
        let doc: Acceptance = serde_json::from_slice(&bytes)
            .map_err(|_| format!("{ACCEPT_FILE} is not a rollback acceptance"))?;
        if doc.format != ACCEPT_FORMAT
            || doc.vault_id != self.vault_id.to_string()
            || doc.finding_sha256 != finding.sha256
        {
            return Err(format!(
                "{ACCEPT_FILE} accepts another vault's or another rollback (this one: {})",
                finding.sha256
            ));
        }
        Ok(doc)
    }

    /// At start with no rollback found: an acceptance left in the data directory was used
    /// (its rebase is durable) or is stale.
    pub(crate) fn remove_used_acceptance(&self) {
        let path = self.rollback_accept_path();
        if !self.rollback_pending()
            && path.exists()
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(error = %e, "could not remove a used rollback acceptance");
        }
    }

    fn rollback_accept_path(&self) -> std::path::PathBuf {
        self.data_dir.join(ACCEPT_FILE)
    }

    /// Called as soon as the shares unsealed the vault: with a rollback pending, admits it if
    /// enough security officers signed this finding, otherwise seals again.
    ///
    /// # Errors
    /// [`ApiError::RolledBack`] (the vault is sealed again).
    pub(crate) fn accept_rollback(&self) -> Result<(), ApiError> {
        let Some(finding) = self.rollback() else {
            return Ok(());
        };
        match self.judge_rollback(&finding) {
            Ok((signed_by, doc)) => {
                // The next batch (this record's) rebases the head file onto the database.
                self.writer.rebase_heads();
                let ctx = self.fixed_ctx(Principal::System);
                ctx.tag(|t| {
                    t.detail = Some(
                        serde_json::json!({"rollback": finding, "signed_by": signed_by,
                                           "signatures": doc.signatures})
                        .to_string(),
                    );
                });
                self.writer
                    .submit_detached(ctx.event("rollback.accepted", Outcome::Granted, None));
                // A restore, now accepted: on the record, and its marker gone.
                let dir = self.data_dir.clone();
                if let Some(marker) = RestoreMarker::read(&dir) {
                    let ctx = self.fixed_ctx(Principal::System);
                    ctx.tag(|t| {
                        t.detail = Some(
                            serde_json::json!({"restore": marker, "signed_by": signed_by})
                                .to_string(),
                        );
                    });
                    self.writer.submit_detached(ctx.event(
                        "backup.restore",
                        Outcome::Granted,
                        None,
                    ));
                    if let Err(e) = std::fs::remove_file(dir.join(crate::backup::RESTORED_MARKER)) {
                        tracing::warn!(error = %e, "could not remove the restore marker");
                    }
                }
                *self
                    .rollback
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                // The document stays until a start finds no rollback (the rebase durable):
                // a crash before that leaves it, and the finding, in place.
                tracing::warn!(
                    ?signed_by,
                    "rollback accepted by security officers: the vault runs on the older database"
                );
                Ok(())
            }
            Err(why) => {
                self.zeroize_keys();
                tracing::error!(
                    why,
                    "rollback acceptance refused; the vault is sealed again"
                );
                let ctx = self.fixed_ctx(Principal::System);
                ctx.tag(|t| {
                    t.detail =
                        Some(serde_json::json!({"rollback": finding, "why": why}).to_string());
                });
                self.writer.submit_detached(ctx.event(
                    "rollback.accepted",
                    Outcome::Denied,
                    Some("database_rolled_back"),
                ));
                Err(ApiError::RolledBack(format!("{}; {why}", finding.what)))
            }
        }
    }

    /// The vault-wide security officers who validly signed `finding` for this vault, if
    /// enough did.
    fn judge_rollback(&self, finding: &Finding) -> Result<(Vec<String>, Acceptance), String> {
        let doc = self.acceptance(finding)?;
        let sha: [u8; 32] = hex::decode(&finding.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("bad finding hash")?;
        let officers = self
            .security_officers()
            .map_err(|e| format!("officers unreadable: {}", e.message()))?;
        let rules = self
            .store
            .quorum_rules()
            .map_err(|_| "quorum rules unreadable".to_owned())?;
        let required =
            required_approvals(&rules, GatedOp::AcceptRollback, None).max(MIN_ACCEPTANCES);
        let (signed_by, _) =
            crate::measure::officers_who_signed(&officers, &doc.signatures, |pk, sig| {
                strongroom_crypto::verify_rollback_signature(
                    pk,
                    self.vault_id.as_bytes(),
                    &sha,
                    sig,
                )
            });
        if signed_by.len() >= usize::from(required) {
            Ok((signed_by, doc))
        } else {
            Err(format!(
                "{} valid security officer signature(s) of this rollback; {required} needed (rollback.accept)",
                signed_by.len()
            ))
        }
    }
}
