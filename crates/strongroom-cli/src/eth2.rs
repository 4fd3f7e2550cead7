//! `strongroom eth2 ...`: Ethereum validator (BLS12-381) keys.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::client::{self, CliError, Client};
use crate::output::Output;
use crate::wallet::secret_file;

#[derive(Subcommand)]
pub(crate) enum Eth2Cmd {
    /// Derive validator keys from a BIP-39 mnemonic by EIP-2333 at EIP-2334's signing paths
    /// m/12381/3600/i/0/0, for i in START .. START + COUNT; keys the domain already holds are
    /// skipped. They take the domain's new-key temperature.
    Derive {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// A file holding the mnemonic (BIP-39 English words).
        #[arg(long)]
        mnemonic_file: PathBuf,
        /// A file holding the BIP-39 passphrase.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// How many keys (at most 10,000 at a time).
        #[arg(long)]
        count: u32,
        /// The first index.
        #[arg(long, default_value_t = 0)]
        start: u32,
    },
    /// Make every validator key of a domain that is colder than `--to` that warm, with one
    /// approval for the whole batch (`key.warm`).
    Promote {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// `warm` or `hot`.
        #[arg(long)]
        to: String,
        /// Hot keys demote themselves to warm after this long without a signature (`30m`).
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<std::time::Duration>,
    },
    /// Authorise a validator key's voluntary exit at an epoch (irreversible: a request that
    /// needs at least one approval). The remote signer then signs that exit, and no other.
    AuthorizeExit {
        /// The validator key's id.
        #[arg(long)]
        key: String,
        /// The exit epoch.
        #[arg(long)]
        epoch: u64,
    },
    /// Write a cold validator key out as an EIP-2335 keystore, only by quorum: with `--key`
    /// it files a `key.export` request; once approved, its requester collects the keystore
    /// (within an hour) with `--request`. The password is sent only when the keystore is
    /// made, and never stored.
    Export {
        /// The validator key's id (files the request).
        #[arg(long, conflicts_with = "request", required_unless_present = "request")]
        key: Option<String>,
        /// The approved request's id (collects the keystore).
        #[arg(long)]
        request: Option<String>,
        /// A file holding the keystore's password (at least 8 characters).
        #[arg(long)]
        password_file: PathBuf,
        /// The keystore's KDF: `scrypt` (default) or `pbkdf2`.
        #[arg(long)]
        kdf: Option<String>,
        /// Where to write the keystore (created; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Import EIP-2335 keystores (files, or directories of `*.json` files; `deposit_data*`
    /// files are skipped): decrypted inside the vault on every core and sealed under the
    /// domain key, so restarts never pay the keystore KDF again. Keys the domain holds are
    /// skipped. Progress goes to standard error.
    Import {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// Keystore files or directories.
        #[arg(long = "keystore", required = true, num_args = 1..)]
        keystores: Vec<PathBuf>,
        /// A file holding the keystores' password.
        #[arg(long)]
        password_file: PathBuf,
    },
}

/// Keystores sent per request.
const IMPORT_BATCH: usize = 16;

/// The keystore files named: files as given, directories' `*.json` files (sorted), without
/// `deposit_data*`.
fn keystore_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension().is_some_and(|x| x == "json")
                        && !f
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("deposit_data"))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(CliError::Input("no keystore files".into()));
    }
    Ok(out)
}

/// `strongroom slashing ...`: EIP-3076 slashing-protection interchange.
#[derive(Subcommand)]
pub(crate) enum SlashingCmd {
    /// Merge an EIP-3076 interchange (format version 5) into a domain's slashing protection.
    /// Nothing is removed: records are added, and signing below the earliest imported history
    /// is refused. The domain is pinned to the interchange's chain.
    Import {
        /// The interchange file.
        #[arg(long)]
        file: PathBuf,
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Write a domain's slashing-protection records as an EIP-3076 interchange.
    Export {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// Write to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) fn run_slashing(
    cmd: SlashingCmd,
    client: &Client,
    out: &Output,
) -> Result<(), CliError> {
    let path = |what: &str, domain: Option<&str>| match domain {
        Some(d) => format!("/v1/eth2/slashing/{what}?domain={}", client::path(d)),
        None => format!("/v1/eth2/slashing/{what}"),
    };
    match cmd {
        SlashingCmd::Import { file, domain } => {
            let text = std::fs::read(&file)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
            let doc: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| CliError::Input(format!("{} is not JSON: {e}", file.display())))?;
            out.object(&client.post(&path("import", domain.as_deref()), &doc)?)
        }
        SlashingCmd::Export { domain, out: file } => {
            let v = client.get(&path("export", domain.as_deref()))?;
            match file {
                Some(f) => std::fs::write(&f, v.to_string())
                    .map_err(|e| CliError::Input(format!("cannot write {}: {e}", f.display()))),
                None => out.raw(&v),
            }
        }
    }
}

pub(crate) fn run(cmd: Eth2Cmd, client: &Client, out: &Output) -> Result<(), CliError> {
    match cmd {
        Eth2Cmd::Promote { domain, to, idle } => out.object(&client.post(
            "/v1/eth2/promote",
            &json!({"domain": domain, "to": to,
                    "idle_seconds": idle.map(|d| d.as_secs())}),
        )?),
        Eth2Cmd::Export {
            key,
            request,
            password_file,
            kdf,
            out: file,
        } => {
            let password = secret_file(&password_file, false)?;
            let v = client.post(
                "/v1/eth2/export-keystore",
                &json!({"key": key, "request": request, "password": password.as_str(), "kdf": kdf}),
            )?;
            let Some(keystore) = v.get("keystore") else {
                // Filed: the request, for approvers.
                return out.object(&v);
            };
            let text = serde_json::to_vec_pretty(keystore)
                .map_err(|e| CliError::Input(format!("cannot encode the keystore: {e}")))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .map_err(|e| CliError::Input(format!("cannot create {}: {e}", file.display())))?;
            std::io::Write::write_all(&mut f, &text)
                .and_then(|()| f.sync_all())
                .map_err(|e| CliError::Input(format!("cannot write {}: {e}", file.display())))?;
            out.object(&json!({"written": file.display().to_string(),
                               "pubkey": keystore["pubkey"]}))
        }
        Eth2Cmd::AuthorizeExit { key, epoch } => out.object(&client.post(
            &format!("/v1/keys/{}/eth2-exit", client::path(&key)),
            &json!({"epoch": epoch}),
        )?),
        Eth2Cmd::Import {
            domain,
            keystores,
            password_file,
        } => {
            let password = secret_file(&password_file, false)?;
            let files = keystore_files(&keystores)?;
            let (mut created, mut existing) = (Vec::new(), Vec::new());
            let mut done = 0;
            for batch in files.chunks(IMPORT_BATCH) {
                let mut items = Vec::with_capacity(batch.len());
                for f in batch {
                    let text = std::fs::read(f).map_err(|e| {
                        CliError::Input(format!("cannot read {}: {e}", f.display()))
                    })?;
                    let ks: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                        CliError::Input(format!("{} is not JSON: {e}", f.display()))
                    })?;
                    let name = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    items.push(json!([name, ks]));
                }
                let v = client.post(
                    "/v1/eth2/import",
                    &json!({"domain": domain, "password": password.as_str(), "keystores": items}),
                )?;
                created.extend(v["created"].as_array().cloned().unwrap_or_default());
                existing.extend(v["existing"].as_array().cloned().unwrap_or_default());
                done += batch.len();
                eprintln!("imported {done}/{} keystores", files.len());
            }
            out.object(&json!({"created": created, "existing": existing}))
        }
        Eth2Cmd::Derive {
            domain,
            mnemonic_file,
            passphrase_file,
            count,
            start,
        } => {
            let mnemonic = secret_file(&mnemonic_file, true)?;
            let passphrase = passphrase_file
                .as_deref()
                .map(|p| secret_file(p, false))
                .transpose()?;
            let body = json!({
                "domain": domain, "start": start, "count": count,
                "mnemonic": mnemonic.as_str(),
                "passphrase": passphrase.as_deref().map(String::as_str),
            });
            out.object(&client.post("/v1/eth2/derive", &body)?)
        }
    }
}
