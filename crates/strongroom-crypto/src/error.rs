//! The crate's one error type. Variants about secrets are deliberately uninformative.

/// Errors from strongroom's cryptography.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A sealed blob did not open: wrong key, wrong bound identity, or tampered bytes.
    /// Nothing more is said on purpose.
    #[error("sealed data failed to open")]
    Unseal,
    /// The entropy source failed; nothing random was produced.
    #[error("entropy source failure")]
    Entropy,
    /// Secret bytes are not a valid key for the algorithm (e.g. a zero or out-of-range scalar).
    #[error("invalid key material")]
    InvalidKeyMaterial,
    /// A public key does not decode for the algorithm (wrong length or not on the curve).
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A signature does not verify, or is not well formed.
    #[error("invalid signature")]
    InvalidSignature,
    /// ECDSA keys sign a 32-byte digest and Ed25519 keys sign a message; the other was given.
    #[error("this algorithm signs a {expected}, not a {given}")]
    WrongPayload {
        /// What the algorithm signs.
        expected: &'static str,
        /// What the caller supplied.
        given: &'static str,
    },
    /// A fresh signature failed verification or a new key failed its pairwise-consistency
    /// test: a fault. Nothing was released.
    #[error("self-check failed; nothing released")]
    SelfCheck,
    /// Share count or threshold out of range (1 <= threshold <= shares <= 255).
    #[error("invalid share parameters: need 1 <= threshold <= shares <= 255")]
    ShareParameters,
    /// A share string is not well formed (bad prefix, length, hex or checksum).
    #[error("malformed share")]
    MalformedShare,
    /// An EIP-2335 keystore that does not parse, or asks for an unsupported function or
    /// parameters beyond the bounds strongroom accepts.
    #[error("invalid EIP-2335 keystore")]
    InvalidKeystore,
    /// A BIP-39 mnemonic has an unknown word, a wrong word count or a bad checksum.
    #[error("invalid BIP-39 mnemonic")]
    InvalidMnemonic,
}
