//! The signature algorithms a key can have.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A key's signature algorithm. The numeric code is part of the sealed-blob format
/// (`docs/formats.md`) and must never be reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA over secp256k1 (Bitcoin, Ethereum), signing 32-byte prehashes.
    Secp256k1,
    /// Ed25519 (RFC 8032), signing whole messages.
    Ed25519,
    /// ECDSA over NIST P-256, signing 32-byte prehashes.
    P256,
    /// A BIP-32 seed: an HD wallet's root, from which secp256k1 signing keys are derived
    /// (see [`crate::wallet`]). It never signs directly.
    Bip32Seed,
    /// BLS12-381 (the Ethereum consensus scheme: public keys in G1, signatures in G2, proof of
    /// possession ciphersuite), signing whole messages. Validator keys: they sign only through
    /// the remote-signing API, under slashing protection.
    Bls12381,
    /// ML-DSA-65 (FIPS 204, security category 3): post-quantum signatures of whole messages
    /// (empty context), 1,952-byte public keys, 3,309-byte signatures; the secret is the
    /// 32-byte KeyGen seed.
    MlDsa65,
}

impl Algorithm {
    /// All supported algorithms.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Secp256k1,
        Algorithm::Ed25519,
        Algorithm::P256,
        Algorithm::Bip32Seed,
        Algorithm::Bls12381,
        Algorithm::MlDsa65,
    ];

    /// The algorithms of plain keys, which `key create` makes and which sign directly (BLS
    /// keys only through the remote-signing API).
    pub const SIGNING: [Algorithm; 5] = [
        Algorithm::Secp256k1,
        Algorithm::Ed25519,
        Algorithm::P256,
        Algorithm::Bls12381,
        Algorithm::MlDsa65,
    ];

    /// The name used in the API, the CLI and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Secp256k1 => "secp256k1",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::P256 => "p256",
            Algorithm::Bip32Seed => "bip32-seed",
            Algorithm::Bls12381 => "bls12-381",
            Algorithm::MlDsa65 => "ml-dsa-65",
        }
    }

    /// The stable one-byte code bound into sealed key blobs.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Algorithm::Secp256k1 => 1,
            Algorithm::Ed25519 => 2,
            Algorithm::P256 => 3,
            Algorithm::Bip32Seed => 4,
            Algorithm::Bls12381 => 5,
            Algorithm::MlDsa65 => 6,
        }
    }

    /// Whether the algorithm signs a caller-supplied 32-byte digest (ECDSA) rather than a message.
    #[must_use]
    pub fn signs_prehash(self) -> bool {
        matches!(self, Algorithm::Secp256k1 | Algorithm::P256)
    }

    /// Length of the public key as strongroom encodes it (compressed SEC1, or raw Ed25519);
    /// `None` for a wallet seed, whose "public key" is its [`crate::wallet::WalletPublic`].
    #[must_use]
    pub fn public_key_len(self) -> Option<usize> {
        match self {
            Algorithm::Secp256k1 | Algorithm::P256 => Some(33),
            Algorithm::Ed25519 => Some(32),
            Algorithm::Bls12381 => Some(48),
            Algorithm::MlDsa65 => Some(1952),
            Algorithm::Bip32Seed => None,
        }
    }

    /// Whether keys of this algorithm sign directly (a wallet seed only derives keys).
    #[must_use]
    pub fn is_signing(self) -> bool {
        Self::SIGNING.contains(&self)
    }

    /// Whether this is a validator key, which signs only through the remote-signing API
    /// under slashing protection, never through the generic `sign` route.
    #[must_use]
    pub fn is_validator(self) -> bool {
        self == Algorithm::Bls12381
    }
}

/// What a domain lets an algorithm do (crypto agility: retire or re-admit an algorithm by a
/// quorum request, without touching the keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlgorithmState {
    /// New keys and signatures.
    Allowed,
    /// No new keys; existing keys still sign (each signature audited with a warning) and can
    /// be migrated.
    Deprecated,
    /// No new keys and no signatures; the keys stay stored (and verifiable) until destroyed.
    Disabled,
}

impl AlgorithmState {
    /// Every state.
    pub const ALL: [AlgorithmState; 3] = [
        AlgorithmState::Allowed,
        AlgorithmState::Deprecated,
        AlgorithmState::Disabled,
    ];

    /// The name used in the API, the CLI and the database.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AlgorithmState::Allowed => "allowed",
            AlgorithmState::Deprecated => "deprecated",
            AlgorithmState::Disabled => "disabled",
        }
    }
}

impl FromStr for AlgorithmState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AlgorithmState::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(Error::InvalidAlgorithmPolicy)
    }
}

/// A domain's algorithms: every algorithm is allowed unless listed as deprecated or disabled.
/// Stored form (sealed with the domain row): `name=state` pairs joined by `,`, in algorithm
/// order, allowed ones omitted; the empty string allows everything.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AlgorithmPolicy {
    // Only the algorithms that are not allowed.
    restricted: std::collections::BTreeMap<u8, (Algorithm, AlgorithmState)>,
}

/// Why a domain's algorithm policy refused a key or a signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AlgorithmRefusal {
    /// New keys of a deprecated algorithm are refused.
    Deprecated,
    /// A disabled algorithm neither makes keys nor signs.
    Disabled,
}

impl AlgorithmRefusal {
    /// The stable error code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            AlgorithmRefusal::Deprecated => "algorithm_deprecated",
            AlgorithmRefusal::Disabled => "algorithm_disabled",
        }
    }
}

impl AlgorithmPolicy {
    /// What the domain lets `a` do.
    #[must_use]
    pub fn state(&self, a: Algorithm) -> AlgorithmState {
        self.restricted
            .get(&a.code())
            .map_or(AlgorithmState::Allowed, |(_, s)| *s)
    }

    /// This policy with `a` set to `state`.
    #[must_use]
    pub fn with(mut self, a: Algorithm, state: AlgorithmState) -> Self {
        if state == AlgorithmState::Allowed {
            self.restricted.remove(&a.code());
        } else {
            self.restricted.insert(a.code(), (a, state));
        }
        self
    }

    /// Whether a new key of `a` may be made (generated, imported or derived).
    ///
    /// # Errors
    /// The refusal when `a` is deprecated or disabled.
    pub fn may_create(&self, a: Algorithm) -> Result<(), AlgorithmRefusal> {
        match self.state(a) {
            AlgorithmState::Allowed => Ok(()),
            AlgorithmState::Deprecated => Err(AlgorithmRefusal::Deprecated),
            AlgorithmState::Disabled => Err(AlgorithmRefusal::Disabled),
        }
    }

    /// Whether a key of `a` may sign: `Ok(true)` when it may but the signature must be audited
    /// with a warning (deprecated).
    ///
    /// # Errors
    /// [`AlgorithmRefusal::Disabled`].
    pub fn may_sign(&self, a: Algorithm) -> Result<bool, AlgorithmRefusal> {
        match self.state(a) {
            AlgorithmState::Allowed => Ok(false),
            AlgorithmState::Deprecated => Ok(true),
            AlgorithmState::Disabled => Err(AlgorithmRefusal::Disabled),
        }
    }

    /// Every algorithm with its state, in algorithm order.
    #[must_use]
    pub fn all(&self) -> Vec<(Algorithm, AlgorithmState)> {
        Algorithm::ALL
            .iter()
            .map(|a| (*a, self.state(*a)))
            .collect()
    }

    /// The stored form.
    #[must_use]
    pub fn to_stored(&self) -> String {
        self.restricted
            .values()
            .map(|(a, s)| format!("{}={}", a.as_str(), s.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses the stored form strictly (canonical order, no duplicates, no `allowed` entries),
    /// so that one policy has one stored form.
    ///
    /// # Errors
    /// [`Error::InvalidAlgorithmPolicy`].
    pub fn from_stored(s: &str) -> Result<Self, Error> {
        let mut p = Self::default();
        if s.is_empty() {
            return Ok(p);
        }
        for pair in s.split(',') {
            let (a, st) = pair.split_once('=').ok_or(Error::InvalidAlgorithmPolicy)?;
            let a: Algorithm = a.parse().map_err(|_| Error::InvalidAlgorithmPolicy)?;
            let st: AlgorithmState = st.parse()?;
            if st == AlgorithmState::Allowed || p.restricted.contains_key(&a.code()) {
                return Err(Error::InvalidAlgorithmPolicy);
            }
            p = p.with(a, st);
        }
        if p.to_stored() != s {
            return Err(Error::InvalidAlgorithmPolicy);
        }
        Ok(p)
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(Error::UnknownAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_algorithm_policy_allows_by_default_and_refuses_as_its_state_says() {
        let p = AlgorithmPolicy::default();
        for a in Algorithm::ALL {
            assert_eq!(p.may_create(a), Ok(()));
            assert_eq!(p.may_sign(a), Ok(false));
        }
        assert_eq!(p.to_stored(), "");
        let p = p
            .with(Algorithm::P256, AlgorithmState::Disabled)
            .with(Algorithm::Secp256k1, AlgorithmState::Deprecated);
        assert_eq!(
            p.may_create(Algorithm::Secp256k1),
            Err(AlgorithmRefusal::Deprecated)
        );
        assert_eq!(p.may_sign(Algorithm::Secp256k1), Ok(true));
        assert_eq!(
            p.may_create(Algorithm::P256),
            Err(AlgorithmRefusal::Disabled)
        );
        assert_eq!(p.may_sign(Algorithm::P256), Err(AlgorithmRefusal::Disabled));
        assert_eq!(p.may_sign(Algorithm::Ed25519), Ok(false));
        let stored = p.to_stored();
        assert_eq!(stored, "secp256k1=deprecated,p256=disabled");
        assert_eq!(AlgorithmPolicy::from_stored(&stored).unwrap(), p);
        // Allowed again: back to the empty form.
        let p = p
            .with(Algorithm::P256, AlgorithmState::Allowed)
            .with(Algorithm::Secp256k1, AlgorithmState::Allowed);
        assert_eq!(p, AlgorithmPolicy::default());
        // One stored form per policy: other orders, duplicates and `allowed` are refused.
        for bad in [
            "p256=disabled,secp256k1=deprecated",
            "p256=disabled,p256=disabled",
            "p256=allowed",
            "p256",
            "rsa=disabled",
            "p256=off",
            ",",
        ] {
            assert!(AlgorithmPolicy::from_stored(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn names_and_codes_are_unique_and_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
        }
        let mut codes: Vec<u8> = Algorithm::ALL.iter().map(|a| a.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Algorithm::ALL.len());
        assert!("rsa".parse::<Algorithm>().is_err());
    }
}
