//! `strongroom config sign|verify`: security officers' signatures of a node's configuration
//! file, without which a changed configuration does not unseal the vault.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;
use strongroom_server::{SIGNATURES_FORMAT, Signature, Signatures, signatures_path};

use crate::client::{CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum ConfigCmd {
    /// Sign a node's configuration file with your approval key: a security officer's consent
    /// that a node may unseal under exactly this configuration — its bytes, the contents of the
    /// certificates, CA bundles and PKCS#11 module it names, and the paths of its key, PIN and
    /// NTP key files (so run it where those files are). Adds the signature to `FILE.sig`
    /// (starting it afresh if it signs another measurement or another vault).
    Sign {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Your approval key file (`approval-key generate`).
        #[arg(long)]
        key_file: PathBuf,
        /// The vault's id (default: asked from the server at --addr).
        #[arg(long)]
        vault_id: Option<String>,
    },
    /// Check a configuration file's signatures against the vault's security officers and
    /// the `config.change` rule (security officer or auditor). Fails unless they suffice.
    Verify {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The signatures (default: `FILE.sig`).
        #[arg(long)]
        signatures: Option<PathBuf>,
    },
}

pub(crate) fn run(
    cmd: ConfigCmd,
    client: impl FnOnce() -> Result<Client, CliError>,
    out: &Output,
) -> Result<(), CliError> {
    match cmd {
        ConfigCmd::Sign {
            config,
            key_file,
            vault_id,
        } => {
            let key = crate::read_approval_key(&key_file)?;
            let sha = measure(&config)?;
            let vault_id = match vault_id {
                Some(v) => v,
                None => crate::field(&client()?.get("/v1/sys/status")?, "vault_id").to_owned(),
            };
            let vault: strongroom_core::VaultId = vault_id
                .parse()
                .map_err(|_| CliError::Input(format!("{vault_id}: not a vault id")))?;
            let sig_path = signatures_path(&config);
            let mut doc = std::fs::read(&sig_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Signatures>(&b).ok())
                .filter(|d| {
                    d.format == SIGNATURES_FORMAT
                        && d.vault_id == vault.to_string()
                        && d.config_sha256 == hex::encode(sha)
                })
                .unwrap_or_else(|| Signatures {
                    format: SIGNATURES_FORMAT.to_owned(),
                    vault_id: vault.to_string(),
                    config_sha256: hex::encode(sha),
                    signatures: Vec::new(),
                });
            let public_key = hex::encode(key.public_key());
            doc.signatures.retain(|s| s.public_key != public_key);
            doc.signatures.push(Signature {
                public_key,
                signature: hex::encode(key.sign_config(vault.as_bytes(), &sha)),
            });
            let text = serde_json::to_string_pretty(&doc)
                .map_err(|e| CliError::Input(format!("signatures: {e}")))?;
            std::fs::write(&sig_path, text + "\n").map_err(|e| {
                CliError::Input(format!("cannot write {}: {e}", sig_path.display()))
            })?;
            out.object(&json!({
                "config_sha256": doc.config_sha256,
                "vault_id": doc.vault_id,
                "signatures": doc.signatures.len(),
                "file": sig_path,
            }))
        }
        ConfigCmd::Verify { config, signatures } => {
            let sha = measure(&config)?;
            let sig_path = signatures.unwrap_or_else(|| signatures_path(&config));
            let bytes = std::fs::read(&sig_path)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", sig_path.display())))?;
            let doc: Signatures = serde_json::from_slice(&bytes).map_err(|_| {
                CliError::Input(format!(
                    "{} is not a signatures document",
                    sig_path.display()
                ))
            })?;
            let verdict = client()?.post(
                "/v1/sys/config/verify",
                &json!({"config_sha256": hex::encode(sha), "signatures": doc}),
            )?;
            if verdict["sufficient"] == true {
                return out.object(&verdict);
            }
            if !out.json {
                out.object(&verdict)?;
            }
            Err(CliError::Api {
                status: 200,
                code: "config_unauthorized".into(),
                message: format!(
                    "these signatures do not admit this configuration: {} valid of {} needed",
                    verdict["signed_by"].as_array().map_or(0, Vec::len),
                    verdict["required"]
                ),
            })
        }
    }
}

/// The node's own measurement of `config`: its bytes and the files it names (run it where
/// those files are, as the node sees them).
fn measure(config: &Path) -> Result<[u8; 32], CliError> {
    strongroom_server::Config::load_measured(config)
        .map(|(_, m)| m.sha256)
        .map_err(|e| CliError::Input(e.to_string()))
}
