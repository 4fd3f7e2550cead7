//! The crate's one error type.

/// Errors from chain encodings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An address index at or above 2^31 (that would be a hardened index, which a public
    /// key cannot derive).
    #[error("address index must be below 2^31")]
    InvalidIndex,
    /// A stored public key or extended public key does not decode.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A transaction field is missing or malformed (the field is named).
    #[error("invalid transaction: {0}")]
    InvalidTransaction(&'static str),
    /// A transaction object carries a field strongroom does not know.
    #[error("unknown transaction field {0:?}")]
    UnknownField(String),
    /// An address is not 20 hex bytes, or its mixed case is not a valid EIP-55 checksum.
    #[error("invalid address (20 hex bytes; mixed case must be a valid EIP-55 checksum)")]
    InvalidAddress,
    /// The transaction names another chain than the wallet's.
    #[error("the transaction is for chain {transaction}, the wallet for chain {wallet}")]
    ChainIdMismatch {
        /// The wallet's chain id.
        wallet: u64,
        /// The transaction's.
        transaction: u64,
    },
    /// `maxPriorityFeePerGas` above `maxFeePerGas`.
    #[error("maxPriorityFeePerGas is above maxFeePerGas")]
    FeeCapBelowPriorityFee,
    /// A transaction type strongroom does not sign (3: blobs).
    #[error("transaction type {0} is not supported")]
    UnsupportedTxType(u8),
    /// EIP-712 typed data that does not parse or hash.
    #[error("invalid EIP-712 typed data")]
    InvalidTypedData,
    /// EIP-7702 (type 4) delegates the account to code: refused unless policy allows it.
    #[error("EIP-7702 authorizations are refused")]
    Eip7702Refused,
    /// A PSBT that does not decode, or that is not a transaction strongroom signs.
    #[error("invalid PSBT: {0}")]
    InvalidPsbt(&'static str),
    /// A PSBT input that is refused (the index and why).
    #[error("PSBT input {0} is refused: {1}")]
    PsbtInput(usize, &'static str),
    /// A PSBT output that is refused (the index and why).
    #[error("PSBT output {0} is refused: {1}")]
    PsbtOutput(usize, &'static str),
    /// A derivation claimed for this wallet that does not derive to the script it sits on:
    /// a "change" output (or input) that is not the wallet's.
    #[error("a PSBT {0} claims a derivation of this wallet that does not match its script")]
    PsbtDerivationMismatch(&'static str),
    /// An Ethereum remote-signing request that does not parse (the field is named).
    #[error("invalid signing request: {0}")]
    InvalidEth2Request(&'static str),
    /// An EIP-3076 interchange document that does not parse (what is wrong is named).
    #[error("invalid slashing-protection interchange: {0}")]
    InvalidInterchange(&'static str),
    /// A signature made for an input does not verify against the key its spent script names
    /// (a fault, or a wallet whose secret and public parts disagree): nothing is released.
    #[error("a signature does not verify against the input's key")]
    SignatureMismatch,
}
