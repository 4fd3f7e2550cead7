//! `strongroom backup create|verify|restore`: encrypted backups of the whole vault. The file
//! is written here, on the client side; verify and restore run offline (restore on an empty
//! data directory, or database, with no node running on it).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;
use strongroom_core::storage::Storage;
use strongroom_core::{UnixMillis, VaultId};
use strongroom_server::BackupFile;

use crate::client::{CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum BackupCmd {
    /// Make an encrypted backup of the whole vault (security officer; needs approval:
    /// `backup.create`, then `--request ID` collects it once, within an hour). Writes the
    /// file to --out; the backup shares are printed once, or with --custodian-keys each is
    /// encrypted to its custodian and written next to it (`OUT.share-N.age`). The backup key
    /// is independent of the root key and the unseal shares.
    Create {
        /// Where to write the backup (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// Backup shares to make.
        #[arg(long, requires = "backup_threshold", conflicts_with = "request")]
        backup_shares: Option<u8>,
        /// Backup shares needed to open it.
        #[arg(long, requires = "backup_shares")]
        backup_threshold: Option<u8>,
        /// One custodian age recipient (or a file holding one) per backup share.
        #[arg(long = "custodian-keys", alias = "custodian-key", num_args = 1.., requires = "backup_shares")]
        custodian_keys: Vec<String>,
        /// Collect this approved backup request.
        #[arg(long)]
        request: Option<String>,
    },
    /// Check a backup with a threshold of its shares (standard input, one per line, or
    /// --share-file), without restoring: it opens, its contents are what its header says.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// A file holding one backup share (repeat).
        #[arg(long = "share-file")]
        share_files: Vec<PathBuf>,
    },
    /// Restore a backup onto an empty data directory (or, with --postgres, an empty database,
    /// the data directory then keeping only the node's own files), under a fresh root key with
    /// fresh unseal shares (printed once). Run it with no node on the target; then start the
    /// node and unseal with the new shares. The restore is audited at that start.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The new node's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The new node's PostgreSQL database (empty).
        #[arg(long)]
        postgres: Option<String>,
        /// New unseal shares to make.
        #[arg(long)]
        shares: u8,
        /// New unseal shares needed.
        #[arg(long)]
        threshold: u8,
        /// A file holding one backup share (repeat; else standard input, one per line).
        #[arg(long = "share-file")]
        share_files: Vec<PathBuf>,
    },
}

pub(crate) fn run(
    cmd: BackupCmd,
    client: impl FnOnce() -> Result<Client, CliError>,
    out: &Output,
) -> Result<(), CliError> {
    match cmd {
        BackupCmd::Create {
            out: path,
            backup_shares,
            backup_threshold,
            custodian_keys,
            request,
        } => {
            let recipients = custodian_keys
                .iter()
                .map(|k| crate::custodian::recipient(k))
                .collect::<Result<Vec<_>, _>>()?;
            let name = path
                .file_name()
                .map(|n| format!("{}.share", n.to_string_lossy()))
                .unwrap_or_else(|| "backup.share".into());
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned();
            // Checked before the backup is made where the count is known (a share file that
            // cannot be written later is printed instead, never lost).
            if !recipients.is_empty() {
                crate::custodian::share_paths_named(
                    &dir,
                    &name,
                    usize::from(backup_shares.unwrap_or(0)),
                )?;
            }
            if path.exists() {
                return Err(CliError::Input(format!(
                    "{} already exists; choose another --out",
                    path.display()
                )));
            }
            let mut body = match request {
                Some(r) => json!({"request": r}),
                None => json!({"shares": backup_shares, "threshold": backup_threshold}),
            };
            if !recipients.is_empty() {
                body["custodian_keys"] = json!(recipients);
            }
            let v = client()?.post("/v1/sys/backup", &body)?;
            let file = serde_json::to_string_pretty(&v["file"])
                .map_err(|e| CliError::Input(format!("the server's backup: {e}")))?;
            // Collected once: a file that cannot be written is printed instead, never lost.
            if let Err(e) = write_new(&path, &file) {
                eprintln!("{e}; here is the backup instead:");
                println!("{file}");
            }
            if let Some(encrypted) = v["encrypted_shares"].as_array() {
                let paths: Vec<PathBuf> = (1..=encrypted.len())
                    .map(|i| dir.join(format!("{name}-{i}.age")))
                    .collect();
                crate::custodian::write_shares(&v, &paths)?;
            }
            let summary = json!({
                "out": path.display().to_string(),
                "backup_id": v["file"]["backup_id"],
                "audit_seq": v["file"]["audit_seq"],
                "shares": v["shares"],
            });
            if out.json {
                return out.raw(&summary);
            }
            println!("backup written to {}", path.display());
            if let Some(shares) = v["shares"].as_array() {
                println!(
                    "The backup shares, shown ONCE (any {} open the backup):",
                    v["file"]["threshold"]
                );
                for (i, s) in shares.iter().enumerate() {
                    println!("backup share {}: {}", i + 1, s.as_str().unwrap_or_default());
                }
            }
            Ok(())
        }
        BackupCmd::Verify { file, share_files } => {
            let file = read_file(&file)?;
            let shares = crate::custodian::read_shares(&share_files)?;
            let texts: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            let v = strongroom_server::verify_backup(&file, &texts).map_err(api)?;
            out.object(&json!({
                "ok": true,
                "vault_id": file.vault_id,
                "backup_id": file.backup_id,
                "audit_seq": file.audit_seq,
                "domain_keys": v.domain_keys(),
                "rows": v.tables().iter().map(|t| t.1).sum::<usize>(),
            }))
        }
        BackupCmd::Restore {
            file,
            data,
            postgres,
            shares: count,
            threshold,
            share_files,
        } => {
            let file = read_file(&file)?;
            let shares = crate::custodian::read_shares(&share_files)?;
            let texts: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            let verified = strongroom_server::verify_backup(&file, &texts).map_err(api)?;
            let dir = strongroom_storage::DataDir::open(&data).map_err(storage)?;
            let placeholder = || VaultId::from_random(rand_id());
            let now = UnixMillis(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0),
            );
            let store: Box<dyn Storage> = match &postgres {
                Some(url) => {
                    dir.expect_external_database().map_err(storage)?;
                    if dir.head_path().exists() {
                        return Err(CliError::Input(format!(
                            "{} belongs to a node already (it holds an audit head): restore into a new data directory",
                            dir.path().display()
                        )));
                    }
                    Box::new(
                        strongroom_storage::PgStore::open(url, placeholder, now)
                            .map_err(storage)?
                            .0,
                    )
                }
                None => match dir.open_store(placeholder, now).map_err(storage)? {
                    strongroom_storage::Opened::Fresh(s) => Box::new(s),
                    strongroom_storage::Opened::Existing(s) => Box::new(s),
                },
            };
            // Written first: a restored vault must never start without it (it holds the vault
            // until security officers accept the older state, and is audited then).
            let marker_path = dir.path().join(strongroom_server::RESTORED_MARKER);
            let marker = strongroom_server::RestoreMarker {
                backup_id: file.backup_id.clone(),
                backup_created_at_ms: file.created_at_ms,
                audit_seq: file.audit_seq,
                audit_hash: file.audit_hash.clone(),
            };
            let text = serde_json::to_string(&marker)
                .map_err(|e| CliError::Input(format!("the restore marker: {e}")))?;
            write_new(&marker_path, &text)?;
            let restored = match strongroom_server::restore_backup(
                store.as_ref(),
                &verified,
                strongroom_keystore::ShamirSeal {
                    shares: count,
                    threshold,
                },
                &strongroom_crypto::OsEntropy,
            ) {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_file(&marker_path);
                    return Err(api(e));
                }
            };
            let shares: Vec<&str> = restored.shares.iter().map(|s| s.as_str()).collect();
            let summary = json!({
                "vault_id": restored.vault_id.to_string(),
                "audit_seq": restored.audit_seq,
                "threshold": threshold,
                "shares": shares,
            });
            if out.json {
                return out.raw(&summary);
            }
            println!(
                "vault {} restored (audit log up to record {}).",
                restored.vault_id, restored.audit_seq
            );
            println!(
                "The new unseal shares, shown ONCE (any {threshold} unseal it); the old ones no longer do:"
            );
            for (i, s) in shares.iter().enumerate() {
                println!("share {}: {s}", i + 1);
            }
            Ok(())
        }
    }
}

fn read_file(path: &Path) -> Result<BackupFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::Input(format!(
            "{} is not a strongroom backup: {e}",
            path.display()
        ))
    })
}

fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::Input(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))
}

fn rand_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // The placeholder identity is replaced by the backup's; any bytes do.
    let _ = strongroom_core::EntropySource::fill(&strongroom_crypto::OsEntropy, &mut id);
    id
}

fn api(e: strongroom_server::ApiError) -> CliError {
    CliError::Api {
        status: 400,
        code: e.code().to_owned(),
        message: e.to_string(),
    }
}

fn storage(e: strongroom_storage::Error) -> CliError {
    CliError::Input(e.to_string())
}
