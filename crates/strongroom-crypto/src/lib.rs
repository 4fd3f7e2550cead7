//! The only crate in strongroom that handles raw key bytes.
//!
//! It provides the secret types (root key, AEAD keys, signing keys, unseal shares, TOTP
//! secrets), operator password hashing (Argon2id), one-time passwords (RFC 6238), sealing
//! with AES-256-GCM, HKDF derivation, signing with verify-before-release, signature
//! verification, Shamir splitting of the root key, EIP-2335 keystores, the power-on
//! known-answer tests ([`self_test`]) and the vault's random-bit generator
//! ([`HealthCheckedEntropy`]: SP 800-90B health tests on raw inputs, SP 800-90A HMAC_DRBG).
//!
//! Rules this crate keeps, and callers may rely on:
//! - Secret types have private fields, zeroize on drop, print as `..` in `Debug`, and implement
//!   neither `Clone` nor `Serialize`. Secret bytes never leave the crate except as an unseal
//!   share string, which is the credential a human is meant to hold, and through
//!   `RootKey::danger_expose_bytes`, which only the PKCS#11 seal calls, to have the token
//!   encrypt the root key.
//! - [`SigningKey::sign`] never returns a signature it has not verified against the key's own
//!   public key (the defence against fault attacks on deterministic signatures).
//! - Errors about secrets are opaque: a failed unseal says only that it failed.
//!
//! It must not do I/O other than asking its [`strongroom_core::EntropySource`] for randomness
//! (and, for the generator, reading the raw sources and reporting a latched failure on
//! standard error).

mod aead;
mod age;
mod approval;
mod bundle;
mod drbg;
mod eip2335;
mod entropy;
mod error;
mod hd;
mod kdf;
mod memory;
pub use memory::rotate_memory_key;
mod otp;
mod password;
mod self_test;
mod shamir;
mod signing;
mod spki;
mod storage_key;

pub use aead::{AeadKey, SEALED_BLOB_VERSION};
pub use age::{AgeRecipient, age_encrypt};
pub use approval::{
    ApprovalKey, approval_key_is_unusable, request_hash, verify_approval, verify_config_signature,
    verify_rollback_signature,
};
pub use bundle::{BundleShare, SealedBundle, open_bundle, seal_bundle, seal_bundle_plain};
pub use drbg::{CpuRaw, HealthCheckedEntropy, OsRaw, RawSource};
pub use eip2335::{
    EIP2335_RANDOM_LEN, Eip2335Kdf, decrypt_eip2335, eip2335_pubkey, encrypt_eip2335,
};
pub use entropy::OsEntropy;
pub use error::Error;
pub use hd::{HdAccount, HdSeed};
pub use kdf::{AuditSigningKey, RecordMacKey, RootKey};
pub use otp::{DRIFT_STEPS, OtpAlgorithm, OtpRejection, STEP_SECONDS, TotpSecret};
pub use password::{generate_password, hash_password, verify_password};
pub use self_test::{SELF_TESTS, self_test};

/// Whether this build carries the test-only `danger-break-self-test` feature (a binary built
/// by `cargo test`): such a binary must never be deployed, and says so when it starts.
pub const DANGER_TEST_BUILD: bool = cfg!(feature = "danger-break-self-test");
pub use shamir::{Share, ShareHeader, combine, split};
pub use signing::{
    Payload, Signature, SigningKey, verify, verify_bls, verify_ml_dsa_65, verify_schnorr,
};
pub use spki::spki_der;
pub use storage_key::{SEALED_FIELD_VERSION, StorageKeys};
