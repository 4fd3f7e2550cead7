//! strongroom's vocabulary: identifiers, algorithms, stored records, the one authorisation hook,
//! and the ports the rest of the vault plugs into (storage, clock, entropy).
//!
//! This crate must not do I/O and must not touch key material: it has no crypto dependency, so
//! nothing secret can be defined here by accident. Everything that talks to a disk, a socket or
//! a random-number generator lives in an outer crate and implements a trait from here.

pub mod algorithm;
pub mod authz;
pub mod entropy;
pub mod error;
pub mod id;
pub mod operator;
pub mod quorum;
pub mod record;
pub mod slashing;
pub mod storage;
pub mod temperature;
pub mod time;
pub mod wallet;

pub use algorithm::{Algorithm, AlgorithmPolicy, AlgorithmRefusal, AlgorithmState};
pub use authz::{Decision, DenyReason, Operation, Principal, authorize};
pub use entropy::EntropySource;
pub use error::Error;
pub use id::{DomainId, KeyId, OperatorId, PendingId, RequestId, TokenId, VaultId};
pub use time::{Clock, Observation, SystemClock, TimeGuard, UnixMillis};
