//! `strongroom policy ...`: wallet policies (set by quorum, show, dry-run test).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{self, CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum PolicyCmd {
    /// Set a wallet's policy from a JSON document (needs approval: policy.set).
    Set {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// The policy document.
        #[arg(long)]
        file: PathBuf,
    },
    /// Show a wallet's policy, its version and list entries still cooling off.
    Show {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
    },
    /// Dry run: what the policy decides on a transaction now, and which rule decides.
    Test {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// The transaction: a JSON file as for `eth sign-tx`, or a PSBT file (binary or
        /// base64) for a Bitcoin wallet.
        #[arg(long)]
        tx: PathBuf,
    },
}

fn read_json(path: &Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{} is not JSON: {e}", path.display())))
}

/// A transaction file: JSON (Ethereum), else a PSBT, sent as base64 text.
fn read_tx(path: &Path) -> Result<Value, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
        return Ok(v);
    }
    Ok(Value::String(crate::btc::psbt_text(bytes)?))
}

pub(crate) fn run(cmd: PolicyCmd, client: &Client, out: &Output) -> Result<(), CliError> {
    let base = |wallet: &str| format!("/v1/wallets/{}/policy", client::path(wallet));
    match cmd {
        PolicyCmd::Set { wallet, file } => {
            out.object(&client.put(&base(&wallet), &read_json(&file)?)?)
        }
        PolicyCmd::Show { wallet } => out.object(&client.get(&base(&wallet))?),
        PolicyCmd::Test { wallet, tx } => {
            let v = client.post(
                &format!("{}/test", base(&wallet)),
                &json!({"tx": read_tx(&tx)?}),
            )?;
            if out.json {
                return out.raw(&v);
            }
            let d = &v["decision"];
            println!(
                "{} by rule {}{}",
                crate::field(d, "effect"),
                crate::field(d, "rule"),
                d.get("reason")
                    .and_then(Value::as_str)
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            out.object(&v["intent"])
        }
    }
}
