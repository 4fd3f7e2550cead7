//! `strongroom eos ...`: EOS / Antelope signing by HD wallets.

use clap::Subcommand;
use serde_json::json;

use crate::client::{self, CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum EosCmd {
    /// Sign a packed transaction: sha256(chain id || packed || context-free data hash), as a
    /// canonical SIG_K1 signature.
    Sign {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// Address index (m/44'/194'/0'/0/i).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The chain id, 64 hex digits.
        #[arg(long)]
        chain_id: String,
        /// The packed transaction, hex.
        #[arg(long)]
        tx: String,
        /// Packed context-free data, hex.
        #[arg(long)]
        context_free_data: Option<String>,
    },
}

pub(crate) fn run(cmd: EosCmd, client: &Client, out: &Output) -> Result<(), CliError> {
    match cmd {
        EosCmd::Sign {
            wallet,
            index,
            chain_id,
            tx,
            context_free_data,
        } => out.object(&client.post(
            &format!("/v1/wallets/{}/eos/sign", client::path(&wallet)),
            &json!({"index": index, "chain_id": chain_id, "tx": tx,
                    "context_free_data": context_free_data}),
        )?),
    }
}
