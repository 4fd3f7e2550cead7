//! Ethereum validator slashing protection (EIP-3076): what is recorded and what the rules are.
//!
//! Storage checks and records each signature inside its write transaction (so concurrent
//! requests on any node cannot both pass), by these rules, the EIP's "complete" strategy:
//! - a block is refused if the validator signed another block at its slot (or one whose
//!   signing root is unknown), or if its slot is at or below the lowest slot of any imported
//!   history (the low watermark);
//! - an attestation is refused if its source is after its target, if the validator signed
//!   another attestation with its target (a double vote), if it surrounds or is surrounded by
//!   one already signed, or if its source is below, or its target at or below, the imported
//!   watermarks;
//! - signing again exactly what was signed (same signing root) is allowed and recorded once;
//! - every request names the chain by its genesis validators root, and a domain is pinned to
//!   the first root it sees;
//! - a validator's records are shared by every domain (the same key in two domains is still
//!   one validator), but only a domain that recorded it or signs for it imports into them or
//!   exports them.
//!
//! The watermarks are the lowest of all imported histories, as the complete strategy says:
//! after merging two interchanges, duties in the gap between them are signed. That is safe
//! only if each interchange was complete (EIP-3076's security section): import complete
//! histories, or only the newest one.

use crate::DomainId;

/// A validator on one chain: its BLS public key and the chain's genesis validators root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Validator {
    /// The chain (the genesis validators root).
    pub genesis_validators_root: [u8; 32],
    /// The 48-byte compressed BLS public key.
    pub pubkey: [u8; 48],
}

/// A block signed (or imported as signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedBlock {
    /// The slot.
    pub slot: u64,
    /// The signing root, when known.
    pub signing_root: Option<[u8; 32]>,
}

/// An attestation signed (or imported as signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    /// Source epoch.
    pub source: u64,
    /// Target epoch.
    pub target: u64,
    /// The signing root, when known.
    pub signing_root: Option<[u8; 32]>,
}

/// One validator's history, as an interchange carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The BLS public key.
    pub pubkey: [u8; 48],
    /// Blocks.
    pub blocks: Vec<SignedBlock>,
    /// Attestations.
    pub attestations: Vec<SignedAttestation>,
}

/// An EIP-3076 interchange: the chain and the histories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interchange {
    /// The chain.
    pub genesis_validators_root: [u8; 32],
    /// Per validator (a public key may appear more than once; imports merge them).
    pub data: Vec<History>,
}

/// What a signing request asks storage to check and record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duty {
    /// A block proposal.
    Block {
        /// The slot.
        slot: u64,
        /// Its signing root.
        signing_root: [u8; 32],
    },
    /// An attestation.
    Attestation {
        /// Source epoch.
        source: u64,
        /// Target epoch.
        target: u64,
        /// Its signing root.
        signing_root: [u8; 32],
    },
}

/// The [`crate::Error::Conflict`] storage answers when slashing protection refuses a duty.
pub const SLASHABLE: &str = "slashable";

/// The [`crate::Error::Conflict`] storage answers when a request or an import names another
/// chain than the one the domain is pinned to.
pub const WRONG_CHAIN: &str = "genesis validators root";

/// The [`crate::Error::Conflict`] storage answers when an import would add to the records of a
/// validator another domain recorded (and this one has not signed for).
pub const OTHER_DOMAIN: &str = "validator of another domain";

/// The [`crate::Error::Conflict`] of a duty whose key was demoted (or destroyed) before the
/// duty's transaction ran.
pub const KEY_NOT_HOT: &str = "key not hot";

/// The [`crate::Error::Conflict`] of an export whose key was warmed (or destroyed) meanwhile.
pub const KEY_NOT_COLD: &str = "key not cold";

/// The [`crate::Error::Conflict`] storage answers when a voluntary exit has no authorisation.
pub const EXIT_NOT_AUTHORIZED: &str = "exit not authorized";

/// A duty to check and record for a validator, served by a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DutyRecord {
    /// The domain whose listener serves it (pinned to one chain).
    pub domain: DomainId,
    /// The validator.
    pub validator: Validator,
    /// What it signs.
    pub duty: Duty,
}
