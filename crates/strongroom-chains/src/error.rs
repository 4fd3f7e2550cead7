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
}
