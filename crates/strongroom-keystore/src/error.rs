//! The crate's one error type.

/// Errors from the sealed boundary.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The vault has not been initialised.
    #[error("vault is not initialised")]
    NotInitialized,
    /// The vault is already initialised.
    #[error("vault is already initialised")]
    AlreadyInitialized,
    /// The key's domain deprecated (no new keys) or disabled (no signatures) its algorithm.
    #[error("the domain's algorithm policy refuses this: {}", .0.code())]
    AlgorithmRefused(strongroom_core::AlgorithmRefusal),
    /// The vault is sealed: no key material is in memory.
    #[error("vault is sealed")]
    Sealed,
    /// The vault is already unsealed.
    #[error("vault is already unsealed")]
    AlreadyUnsealed,
    /// The share string is not well formed (typo, truncation, wrong format).
    #[error("share is malformed")]
    MalformedShare,
    /// The share belongs to another vault (or another initialisation).
    #[error("share belongs to another vault")]
    ForeignShare,
    /// The share is well formed and for this vault, but its value is wrong.
    #[error("share is not valid for this vault")]
    InvalidShare,
    /// A share with this index was already submitted in this unseal attempt.
    #[error("share was already submitted")]
    DuplicateShare,
    /// The shares combined to the wrong root key; progress was reset.
    #[error("shares did not reconstruct the root key; unseal progress reset")]
    UnsealFailed,
    /// A sealed key or domain blob failed to open: tampered, moved or edited. Nothing more is
    /// said on purpose.
    #[error("key unavailable")]
    KeyUnavailable,
    /// A domain master key failed to open under the (correct) root: the sealed state was
    /// edited or damaged. The server answers it with the tamper response.
    #[error("the sealed state failed its integrity check")]
    SealedStateCorrupt,
    /// The key is cold: it cannot sign until it is made warmer (with a quorum).
    #[error("key is cold")]
    KeyCold,
    /// The key has been destroyed.
    #[error("key destroyed")]
    KeyDestroyed,
    /// Share parameters are out of range.
    #[error("need 1 <= threshold <= shares <= 255")]
    ShareParameters,
    /// The seal configuration stored in the database does not parse.
    #[error("seal configuration is corrupt")]
    CorruptSealConfig,
    /// The hardware token could not wrap or unwrap the root key.
    #[error(transparent)]
    Hsm(#[from] crate::seal::HsmError),
    /// The vault's root key is not wrapped by a token (its seal is Shamir only).
    #[error("the vault is not sealed by a hardware token")]
    NotHsmSealed,
    /// An encrypted backup does not open with the shares given (a wrong share, a changed
    /// byte, another header) or holds no payload of this version.
    #[error("the backup does not open with these shares, or was altered")]
    BackupUnreadable,
    /// The domain's master key is already being rotated (its retiring key still seals some
    /// keys).
    #[error("a rotation of this domain's master key is in progress")]
    RotationInProgress,
    /// A rekey is already in progress on this node (cancel it first).
    #[error("a rekey is already in progress")]
    RekeyInProgress,
    /// No rekey in progress on this node under that nonce (none started, cancelled, sealed,
    /// or finished).
    #[error("no rekey in progress with that nonce")]
    NoRekey,
    /// The vault's root is also wrapped by a token, and this node has none to wrap the new
    /// root with.
    #[error("the vault is sealed by a token; rekey on a node configured with it")]
    RekeyNeedsToken,
    /// A cryptographic operation failed (entropy, self-check, wrong payload kind, ...).
    #[error(transparent)]
    Crypto(#[from] strongroom_crypto::Error),
}
