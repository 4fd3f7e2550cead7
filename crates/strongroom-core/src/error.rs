//! The crate's one error type.

/// Errors from parsing strongroom's vocabulary and from the storage port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text was not a valid identifier (a UUID in canonical form).
    #[error("invalid identifier")]
    InvalidId,
    /// The algorithm name is not one strongroom supports.
    #[error("unknown algorithm (expected secp256k1, ed25519, p256 or ml-dsa-65)")]
    UnknownAlgorithm,
    /// A domain's algorithm policy is not in its canonical stored form, or names an unknown
    /// algorithm or state.
    #[error("invalid algorithm policy (expected ALGORITHM=allowed|deprecated|disabled)")]
    InvalidAlgorithmPolicy,
    /// A domain name is empty, too long, or uses characters outside `[a-z0-9_-]`.
    #[error("invalid name: use 1-64 characters from a-z, 0-9, '-' and '_'")]
    InvalidName,
    /// An operation name is not one that can require approvals.
    #[error(
        "unknown operation (expected domain.create, operator.add, quorum.set, key.destroy, key.warm or key.sign)"
    )]
    UnknownOperation,
    /// A temperature name is unknown.
    #[error("unknown temperature (expected cold, warm or hot)")]
    InvalidTemperature,
    /// A role name is unknown, or no role was given.
    #[error("unknown role (expected security-officer, custodian, approver or auditor)")]
    InvalidRole,
    /// The roles cannot be held together (separation of duties).
    #[error("these roles cannot be held by one operator (separation of duties)")]
    RolesConflict,
    /// A write would break a uniqueness rule (the named thing already exists).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The record a write refers to does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Stored data does not parse: the database was damaged or edited.
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The storage backend failed (I/O, disk full, lock, driver error).
    #[error("storage failure")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The entropy source failed or failed its health test; nothing random was produced.
    #[error("entropy source failure")]
    Entropy,
    /// Private stored data was read or written while the vault is sealed: the storage key
    /// that seals it exists only in an unsealed vault's memory.
    #[error("the vault is sealed")]
    Sealed,
    /// A private column was to be written by a store that was given no
    /// [`crate::storage::FieldCipher`]: refused rather than written in the clear.
    #[error("layered encryption is not configured on this store")]
    NoFieldCipher,
    /// A wallet parameter (chain, network, address type) is not one strongroom knows.
    #[error("invalid {0}")]
    InvalidInput(&'static str),
}
