//! `strongroom btc ...`: Bitcoin signing by HD wallets.

use base64::Engine as _;
use clap::Subcommand;
use serde_json::json;

use crate::client::{self, CliError, Client};
use crate::output::Output;

#[derive(Subcommand)]
pub(crate) enum BtcCmd {
    /// Sign a PSBT: every input must be the wallet's (P2WPKH or P2TR key path); change
    /// outputs are re-derived; destinations and the fee are judged by the wallet's policy.
    /// `--json` prints `psbt` (base64, with the signatures) and `tx` (finalized, hex).
    SignPsbt {
        /// Wallet id.
        #[arg(long)]
        wallet: String,
        /// The PSBT: a file (binary or base64; `-` for stdin) or base64 text.
        #[arg(long)]
        psbt: String,
    },
}

/// The PSBT as base64: read from a file or stdin when `arg` names one, else `arg` itself.
fn read_psbt(arg: &str) -> Result<String, CliError> {
    let bytes = if arg == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::Input(format!("cannot read stdin: {e}")))?;
        buf
    } else if std::path::Path::new(arg).is_file() {
        std::fs::read(arg).map_err(|e| CliError::Input(format!("cannot read {arg}: {e}")))?
    } else {
        return Ok(arg.trim().to_owned());
    };
    psbt_text(bytes)
}

/// A PSBT's bytes (binary, or base64 text) as base64 text.
pub(crate) fn psbt_text(bytes: Vec<u8>) -> Result<String, CliError> {
    if bytes.starts_with(b"psbt\xff") {
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        String::from_utf8(bytes)
            .map(|s| s.trim().to_owned())
            .map_err(|_| CliError::Input("the PSBT is neither binary nor base64 text".into()))
    }
}

pub(crate) fn run(cmd: BtcCmd, client: &Client, out: &Output) -> Result<(), CliError> {
    match cmd {
        BtcCmd::SignPsbt { wallet, psbt } => out.object(&client.post(
            &format!("/v1/wallets/{}/btc/sign-psbt", client::path(&wallet)),
            &json!({"psbt": read_psbt(&psbt)?}),
        )?),
    }
}
