//! What strongroom knows about chains: wallet addresses and account extended public keys for
//! Bitcoin (BIP-84 P2WPKH, BIP-86 P2TR), Ethereum (EIP-55) and EOS (`EOS...`,
//! `PUB_K1_...`), derived from a wallet's public part.
//!
//! It also parses and decodes Ethereum transactions ([`ethereum`]), EIP-712 typed data,
//! Antelope transactions ([`eos`]) and Bitcoin PSBTs ([`psbt`]) so that policy is judged on
//! what the bytes do.
//!
//! This crate must not hold or derive secret keys (signing keys come from
//! `strongroom-crypto`) and must not do I/O: everything here is a pure function of public
//! data, so it can be tested and fuzzed alone.

mod address;
pub mod eip712;
pub mod eos;
mod error;
pub mod eth2;
pub mod ethereum;
#[doc(hidden)]
pub mod fuzzing;
pub mod psbt;
pub mod slashing;

pub use address::{
    WalletAddress, account_xpub, address, bitcoin_address, child_public_key, ethereum_address,
    policy_address_fits,
};
pub use error::Error;
