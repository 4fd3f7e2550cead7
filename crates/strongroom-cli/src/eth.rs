//! `strongroom eth ...`: Ethereum signing by HD wallets.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{self, CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum EthCmd {
    /// Sign a transaction (a JSON-RPC transaction object in a file; `-` for stdin).
    SignTx {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// Address index (m/44'/60'/0'/0/i).
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The transaction: type, chainId, nonce, to, value, gas, gasPrice or maxFeePerGas and
        /// maxPriorityFeePerGas, data, accessList (hex quantities).
        #[arg(long)]
        tx: PathBuf,
    },
    /// Build and sign an EIP-1559 ERC-20 transfer(address,uint256).
    Erc20Transfer {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// Address index.
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The token contract.
        #[arg(long)]
        token: String,
        /// The recipient.
        #[arg(long)]
        to: String,
        /// Amount in the token's base units (decimal).
        #[arg(long)]
        amount: String,
        /// The sender's nonce.
        #[arg(long)]
        nonce: u64,
        /// Gas limit.
        #[arg(long)]
        gas: u64,
        /// maxFeePerGas, in wei (decimal).
        #[arg(long)]
        max_fee: String,
        /// maxPriorityFeePerGas, in wei (decimal).
        #[arg(long)]
        priority_fee: String,
    },
    /// Sign EIP-712 typed data (eth_signTypedData_v4 JSON in a file; hot wallets).
    SignTypedData {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// Address index.
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The typed data.
        #[arg(long)]
        file: PathBuf,
    },
    /// Sign an EIP-191 personal_sign message (hot wallets).
    SignMessage {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// Address index.
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// The message text.
        #[arg(long)]
        message: String,
    },
}

fn read_tx(path: &PathBuf) -> Result<Value, CliError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::Input(format!("cannot read stdin: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{} is not JSON: {e}", path.display())))
}

pub(crate) fn run(cmd: EthCmd, client: &Client, out: &Output) -> Result<(), CliError> {
    let base =
        |wallet: &str, what: &str| format!("/v1/wallets/{}/eth/{what}", client::path(wallet));
    let v = match cmd {
        EthCmd::SignTx { wallet, index, tx } => client.post(
            &base(&wallet, "sign-tx"),
            &json!({"index": index, "tx": read_tx(&tx)?}),
        )?,
        EthCmd::Erc20Transfer {
            wallet,
            index,
            token,
            to,
            amount,
            nonce,
            gas,
            max_fee,
            priority_fee,
        } => client.post(
            &base(&wallet, "erc20-transfer"),
            &json!({"index": index, "token": token, "to": to, "amount": amount, "nonce": nonce,
                    "gas": gas, "max_fee_per_gas": max_fee, "max_priority_fee_per_gas": priority_fee}),
        )?,
        EthCmd::SignTypedData {
            wallet,
            index,
            file,
        } => client.post(
            &base(&wallet, "sign-typed-data"),
            &json!({"index": index, "data": read_tx(&file)?}),
        )?,
        EthCmd::SignMessage {
            wallet,
            index,
            message,
        } => client.post(
            &base(&wallet, "sign-message"),
            &json!({"index": index, "message": message}),
        )?,
    };
    out.object(&v)
}
