//! Seals: what protects the root key at rest. Shamir shares held by operators today; a
//! PKCS#11 token later. The seal's public configuration is stored in the database; the
//! secret part is never stored anywhere by strongroom.

use strongroom_core::{EntropySource, VaultId};
use strongroom_crypto::{RootKey, Share};
use zeroize::Zeroizing;

use crate::Error;

/// Which seal protects a vault. The code is the first byte of the stored seal configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealKind {
    /// M-of-N Shamir shares held by operators.
    Shamir,
}

/// A way of protecting the root key.
pub trait Seal: Send + Sync {
    /// Which seal this is.
    fn kind(&self) -> SealKind;

    /// Protects a new root key. Returns the public configuration to store and the material
    /// handed to operators once (for Shamir: the share strings).
    ///
    /// # Errors
    /// Parameter or entropy failures.
    fn seal_root(
        &self,
        vault_id: &VaultId,
        root: &RootKey,
        entropy: &dyn EntropySource,
    ) -> Result<(Vec<u8>, Vec<Zeroizing<String>>), Error>;

    /// Recovers the root key without operators, where the seal can (an HSM). Shamir cannot
    /// and returns `None`.
    ///
    /// # Errors
    /// Seal failures.
    fn auto_unseal(&self, vault_id: &VaultId, config: &[u8]) -> Result<Option<RootKey>, Error>;
}

/// Public Shamir configuration: share count, threshold and one commitment per share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShamirConfig {
    /// Number of shares issued.
    pub shares: u8,
    /// Number needed to unseal.
    pub threshold: u8,
    /// Commitment to share `i + 1` (see `strongroom_crypto::Share::commitment`).
    pub commitments: Vec<[u8; 32]>,
}

const SHAMIR_CODE: u8 = 1;

impl ShamirConfig {
    /// Encodes as `0x01 || shares || threshold || commitments`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![SHAMIR_CODE, self.shares, self.threshold];
        for c in &self.commitments {
            out.extend_from_slice(c);
        }
        out
    }

    /// Parses a stored configuration.
    ///
    /// # Errors
    /// [`Error::CorruptSealConfig`].
    pub fn decode(b: &[u8]) -> Result<Self, Error> {
        let [code, shares, threshold, rest @ ..] = b else {
            return Err(Error::CorruptSealConfig);
        };
        if *code != SHAMIR_CODE
            || *threshold == 0
            || threshold > shares
            || rest.len() != usize::from(*shares) * 32
        {
            return Err(Error::CorruptSealConfig);
        }
        let commitments = rest
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                a
            })
            .collect();
        Ok(Self {
            shares: *shares,
            threshold: *threshold,
            commitments,
        })
    }

    /// Checks a share against this configuration. Returns its index.
    ///
    /// # Errors
    /// [`Error::MalformedShare`], [`Error::ForeignShare`] or [`Error::InvalidShare`].
    pub fn check_share(&self, vault_id: &VaultId, text: &str) -> Result<Share, Error> {
        let (header, share) = Share::decode(text).map_err(|_| Error::MalformedShare)?;
        if header.vault_id != *vault_id.as_bytes() || header.threshold != self.threshold {
            return Err(Error::ForeignShare);
        }
        let expected = self
            .commitments
            .get(usize::from(header.index).wrapping_sub(1))
            .ok_or(Error::InvalidShare)?;
        // Commitments are public, so comparing them need not be constant time.
        if share.commitment(vault_id.as_bytes()) != *expected {
            return Err(Error::InvalidShare);
        }
        Ok(share)
    }
}

/// The Shamir seal, with the parameters for a new vault.
#[derive(Clone, Copy, Debug)]
pub struct ShamirSeal {
    /// Shares to issue.
    pub shares: u8,
    /// Shares needed.
    pub threshold: u8,
}

impl Seal for ShamirSeal {
    fn kind(&self) -> SealKind {
        SealKind::Shamir
    }

    fn seal_root(
        &self,
        vault_id: &VaultId,
        root: &RootKey,
        entropy: &dyn EntropySource,
    ) -> Result<(Vec<u8>, Vec<Zeroizing<String>>), Error> {
        let shares =
            strongroom_crypto::split(root, self.threshold, self.shares, entropy).map_err(|e| {
                match e {
                    strongroom_crypto::Error::ShareParameters => Error::ShareParameters,
                    other => Error::Crypto(other),
                }
            })?;
        let config = ShamirConfig {
            shares: self.shares,
            threshold: self.threshold,
            commitments: shares
                .iter()
                .map(|s| s.commitment(vault_id.as_bytes()))
                .collect(),
        };
        let strings = shares
            .iter()
            .map(|s| s.encode(vault_id.as_bytes(), self.threshold))
            .collect();
        Ok((config.encode(), strings))
    }

    fn auto_unseal(&self, _vault_id: &VaultId, _config: &[u8]) -> Result<Option<RootKey>, Error> {
        Ok(None)
    }
}
