//! The strongroom server: the HTTP API over the keystore, with authentication, the one
//! authorisation hook, rate limiting, and the group-committing audit writer.
//!
//! This is the only crate that maps errors to HTTP and owns an async runtime. It must not
//! hold key material itself (the keystore does) and must not answer any request before that
//! request's audit record is durable.

mod algorithms;
mod backup;
mod btc;
mod bundles;
mod config;
mod eos;
mod error;
mod eth;
mod eth2;
mod eth2_api;
mod export;
mod http;
mod idempotency;
mod idle;
mod key_policy;
mod keymanager;
mod least_privilege;
mod limiter;
mod listener;
mod measure;
mod node_seal;
mod openapi;
mod operators;
mod policy;
mod rekey;
mod requests;
mod rollback;
mod rotation;
mod serve;
mod service;
mod tls;
mod token;
mod trusted_time;
mod wallets;
mod writer;

pub use backup::{
    BACKUP_FORMAT, BackupFile, RESTORED_MARKER, Restored, Verified, restore as restore_backup,
    verify as verify_backup,
};
pub use config::{
    Config, Eth2Config, NtpSourceConfig, RotationConfig, SandboxConfig, SealConfig, SealKind,
    StorageConfig, TamperConfig, TimeConfig, TlsConfig, check_listen,
};
pub use error::ApiError;
pub use http::{MAX_BODY, ROUTES, Route};
pub use measure::{ConfigFile, SIGNATURES_FORMAT, Signature, Signatures, signatures_path};
pub use rollback::{
    ACCEPT_FILE, ACCEPT_FORMAT, Acceptance, Finding, RestoreMarker, finding_sha256,
};
pub use serve::{ServeOptions, Started, serve};
pub use service::DEFAULT_DOMAIN;

/// Why a node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is missing, malformed or unsafe.
    #[error("configuration: {0}")]
    Config(String),
    /// Storage could not be opened (locked, corrupt, missing database...).
    #[error(transparent)]
    Storage(#[from] strongroom_storage::Error),
    /// A bootstrap operation was refused.
    #[error("{0}")]
    Api(ApiError),
    /// An I/O failure.
    #[error("{0}")]
    Io(String),
}
