//! `strongroom rollback sign`: a security officer's acceptance of a database rollback that a
//! node found at start (a deliberate restore of an older copy), without which the vault does
//! not unseal over it.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use strongroom_server::{ACCEPT_FILE, ACCEPT_FORMAT, Acceptance, Signature, finding_sha256};

use crate::client::{CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum RollbackCmd {
    /// Sign, with your approval key, the rollback the node at --addr reports in its status
    /// (`rollback_finding`): your consent that the vault runs on that older database (check
    /// `database_seq`/`database_hash` against the backup you meant to restore, e.g. with
    /// `audit verify` on it). Adds the signature to --out (starting it afresh if it accepts
    /// another rollback); put the file in the node's data directory as
    /// `rollback-accept.json`, then unseal. At least two vault-wide security officers must
    /// sign, more if the `rollback.accept` rule says so.
    Sign {
        /// Your approval key file (`approval-key generate`).
        #[arg(long)]
        key_file: PathBuf,
        /// The acceptance document to add to (default `rollback-accept.json`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The finding's SHA-256 you expect (from the operator who restored the database):
        /// refuse to sign anything else.
        #[arg(long)]
        expect: Option<String>,
    },
}

pub(crate) fn run(
    cmd: RollbackCmd,
    client: impl FnOnce() -> Result<Client, CliError>,
    out: &Output,
) -> Result<(), CliError> {
    match cmd {
        RollbackCmd::Sign {
            key_file,
            out: file,
            expect,
        } => {
            let key = crate::read_approval_key(&key_file)?;
            let status = client()?.get("/v1/sys/status")?;
            let vault: strongroom_core::VaultId = crate::field(&status, "vault_id")
                .parse()
                .map_err(|_| CliError::Input("the server named no vault id".into()))?;
            let finding = status
                .get("rollback_finding")
                .ok_or_else(|| CliError::Input("the node reports no rollback".into()))?;
            // Recomputed from the two chain positions shown, never taken on the server's word.
            let position = |seq: &str, hash: &str| -> Option<(u64, [u8; 32])> {
                let seq = finding.get(seq)?.as_u64()?;
                let hash: [u8; 32] = hex::decode(finding.get(hash)?.as_str()?)
                    .ok()?
                    .try_into()
                    .ok()?;
                Some((seq, hash))
            };
            let database = position("database_seq", "database_hash");
            let signed = position("signed_seq", "signed_hash")
                .ok_or_else(|| CliError::Input("the finding names no signed head".into()))?;
            let sha_hex = hex::encode(finding_sha256(database, signed));
            if crate::field(finding, "sha256") != sha_hex {
                return Err(CliError::Input(
                    "the node's finding hash does not match its chain positions".into(),
                ));
            }
            if expect.as_ref().is_some_and(|e| *e != sha_hex) {
                return Err(CliError::Input(format!(
                    "the node reports rollback {sha_hex}, not the one you expect"
                )));
            }
            let sha: [u8; 32] = hex::decode(&sha_hex)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CliError::Input("the finding has no valid sha256".into()))?;
            let path = file.unwrap_or_else(|| PathBuf::from(ACCEPT_FILE));
            let mut doc = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Acceptance>(&b).ok())
                .filter(|d| {
                    d.format == ACCEPT_FORMAT
                        && d.vault_id == vault.to_string()
                        && d.finding_sha256 == sha_hex
                })
                .unwrap_or_else(|| Acceptance {
                    format: ACCEPT_FORMAT.to_owned(),
                    vault_id: vault.to_string(),
                    finding_sha256: sha_hex.clone(),
                    signatures: Vec::new(),
                });
            let public_key = hex::encode(key.public_key());
            doc.signatures.retain(|s| s.public_key != public_key);
            doc.signatures.push(Signature {
                public_key,
                signature: hex::encode(key.sign_rollback_acceptance(vault.as_bytes(), &sha)),
            });
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| CliError::Input(format!("acceptance: {e}")))?;
            std::fs::write(&path, text + "\n")
                .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
            out.object(&json!({
                "finding_sha256": sha_hex,
                "what": crate::field(finding, "what"),
                "database_seq": database.map(|d| d.0),
                "database_hash": database.map(|d| hex::encode(d.1)),
                "signed_seq": signed.0,
                "signed_hash": hex::encode(signed.1),
                "vault_id": doc.vault_id,
                "signatures": doc.signatures.len(),
                "file": path,
            }))
        }
    }
}
