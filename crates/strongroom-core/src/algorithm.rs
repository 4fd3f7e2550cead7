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
}

impl Algorithm {
    /// All supported algorithms.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Secp256k1,
        Algorithm::Ed25519,
        Algorithm::P256,
        Algorithm::Bip32Seed,
        Algorithm::Bls12381,
    ];

    /// The algorithms of plain keys, which `key create` makes and which sign directly (BLS
    /// keys only through the remote-signing API).
    pub const SIGNING: [Algorithm; 4] = [
        Algorithm::Secp256k1,
        Algorithm::Ed25519,
        Algorithm::P256,
        Algorithm::Bls12381,
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
