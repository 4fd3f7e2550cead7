//! The sealed boundary. Holds the root key (while unsealed), the domain master keys and the
//! loaded signing keys; generates, seals, opens and uses keys; signs audit heads.
//!
//! Callers hand it records and get back records, public keys and signatures: no private key,
//! root key or domain key ever leaves this crate (unseal shares leave once, at
//! initialisation or a rekey, as strings for their holders; a hardware seal sees the root key only to
//! wrap it inside its token). It does no I/O: the server persists what
//! it returns, and the keystore only changes seal state from persisted records
//! ([`Keystore::load`]).
//!
//! Identity binding: every sealed blob carries, as AEAD associated data, the vault id, the
//! domain id and (for keys) the key id, version, algorithm, creation time, label and public
//! key. A blob moved to another row, domain or vault, or whose row was edited, fails to open.

mod binding;
mod error;
mod keystore;
mod seal;

pub use error::Error;
pub use keystore::{
    Initialized, Keystore, KeystoreImport, OpenedBackup, RekeyCommit, RekeyStatus, RekeyStep,
    Resealed, SealStatus, SealedBackup, WalletSource, open_backup,
};
pub use seal::{
    HsmError, HsmWrap, RootEpoch, RootWrapper, SealKind, ShamirConfig, ShamirSeal, StoredSeal,
    hsm_aad,
};
