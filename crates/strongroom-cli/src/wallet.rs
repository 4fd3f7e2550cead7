//! `strongroom wallet ...`: HD wallets (create, list, show, address, xpub).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;
use zeroize::Zeroizing;

use crate::client::{self, CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum WalletCmd {
    /// Create an HD wallet from fresh entropy, or import a BIP-39 mnemonic.
    Create {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// bitcoin, ethereum or eos.
        #[arg(long)]
        chain: String,
        /// A label (immutable).
        #[arg(long)]
        label: Option<String>,
        /// Bitcoin only: bitcoin, testnet, signet or regtest (default bitcoin).
        #[arg(long)]
        network: Option<String>,
        /// Bitcoin only: p2wpkh (BIP-84, the default) or p2tr (BIP-86).
        #[arg(long)]
        address_type: Option<String>,
        /// Ethereum only: the EIP-155 chain id the wallet is pinned to (default 1).
        #[arg(long)]
        chain_id: Option<u64>,
        /// EOS only: the chain id (64 hex digits) the wallet is pinned to (default EOS
        /// mainnet).
        #[arg(long)]
        eos_chain_id: Option<String>,
        /// Import this BIP-39 mnemonic (English) instead of making fresh entropy.
        #[arg(long)]
        mnemonic_file: Option<PathBuf>,
        /// The BIP-39 passphrase of the imported mnemonic.
        #[arg(long, requires = "mnemonic_file")]
        passphrase_file: Option<PathBuf>,
    },
    /// List a domain's wallets.
    List {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show a wallet.
    Show {
        /// Wallet id.
        id: String,
    },
    /// An address of a wallet.
    Address {
        /// Wallet id.
        id: String,
        /// Address index (default 0).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The change branch (m/.../1/i) instead of receive (m/.../0/i).
        #[arg(long)]
        change: bool,
    },
    /// The account extended public key, with its master fingerprint and path, for
    /// watch-only software.
    Xpub {
        /// Wallet id.
        id: String,
    },
    /// Set the wallet's temperature, which applies to every address it derives: colder at
    /// once, warmer with a quorum (key.warm), as for `key temperature`.
    Temperature {
        /// Wallet id.
        id: String,
        /// cold, warm or hot.
        temperature: String,
        /// Hot only: demote to warm after this long without a signature, e.g. `30m`.
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<std::time::Duration>,
    },
}

/// Reads a secret file: the mnemonic's words are whitespace-separated, so it is trimmed; a
/// passphrase may hold spaces, so only its line ending goes.
pub(crate) fn secret_file(path: &Path, trim: bool) -> Result<Zeroizing<String>, CliError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?,
    );
    let kept = if trim {
        text.trim()
    } else {
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
    };
    Ok(Zeroizing::new(kept.to_owned()))
}

pub(crate) fn run(cmd: WalletCmd, client: &Client, out: &Output) -> Result<(), CliError> {
    match cmd {
        WalletCmd::Create {
            domain,
            chain,
            label,
            network,
            address_type,
            chain_id,
            eos_chain_id,
            mnemonic_file,
            passphrase_file,
        } => {
            let mnemonic = mnemonic_file
                .as_deref()
                .map(|p| secret_file(p, true))
                .transpose()?;
            let passphrase = passphrase_file
                .as_deref()
                .map(|p| secret_file(p, false))
                .transpose()?;
            let body = json!({
                "domain": domain, "chain": chain, "label": label, "network": network,
                "address_type": address_type, "chain_id": chain_id, "eos_chain_id": eos_chain_id,
                "mnemonic": mnemonic.as_deref().map(String::as_str),
                "passphrase": passphrase.as_deref().map(String::as_str),
            });
            out.object(&client.post("/v1/wallets", &body)?)
        }
        WalletCmd::List { domain } => {
            let path = match domain {
                Some(d) => format!("/v1/wallets?domain={}", client::path(&d)),
                None => "/v1/wallets".to_owned(),
            };
            out.list(
                &client.get(&path)?,
                &["id", "chain", "temperature", "label", "xpub"],
            )
        }
        WalletCmd::Show { id } => {
            out.object(&client.get(&format!("/v1/wallets/{}", client::path(&id)))?)
        }
        WalletCmd::Address { id, index, change } => out.object(&client.get(&format!(
            "/v1/wallets/{}/address?index={index}&change={change}",
            client::path(&id)
        ))?),
        WalletCmd::Temperature {
            id,
            temperature,
            idle,
        } => {
            // A wallet is a key: refuse a plain key's id here, so that the command says what
            // it acts on.
            client.get(&format!("/v1/wallets/{}", client::path(&id)))?;
            out.object(&client.post(
                &format!("/v1/keys/{}/temperature", client::path(&id)),
                &json!({"temperature": temperature, "idle_seconds": idle.map(|d| d.as_secs())}),
            )?)
        }
        WalletCmd::Xpub { id } => {
            out.object(&client.get(&format!("/v1/wallets/{}/xpub", client::path(&id)))?)
        }
    }
}
