//! Seals: what protects the root key at rest.
//!
//! Every vault has M-of-N Shamir shares held by operators. A vault may also keep a copy of
//! the root key wrapped by a key inside a hardware token (PKCS#11), so a node can unseal on
//! its own at start; the shares then remain the recovery path and the way to migrate back.
//! The seal's public configuration is stored in the database; the secret part is never
//! stored anywhere by strongroom. This module does no I/O: the token sits behind
//! [`RootWrapper`], implemented at the edge.

use strongroom_core::VaultId;
use strongroom_crypto::{RootKey, Share};
use zeroize::Zeroizing;

use crate::Error;

/// Which seal protects a vault's root key at rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealKind {
    /// M-of-N Shamir shares held by operators.
    Shamir,
    /// A non-extractable key in a PKCS#11 token (with Shamir shares for recovery).
    Pkcs11,
}

impl SealKind {
    /// The name used in configuration, the API and audit records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SealKind::Shamir => "shamir",
            SealKind::Pkcs11 => "pkcs11",
        }
    }
}

/// Why a hardware token could not wrap or unwrap the root key. Each has a stable code: the
/// vault stays sealed and says which.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("PKCS#11 module unavailable: {0}")]
    ModuleUnavailable(String),
    /// The PIN file could not be read, or is readable by others.
    #[error("PIN file unusable: {0}")]
    PinFile(String),
    /// No token has the configured label.
    #[error("no token labelled \"{0}\"")]
    TokenNotFound(String),
    /// The token refused the PIN.
    #[error("the token refused the PIN")]
    PinIncorrect,
    /// The token has locked the PIN after too many failures.
    #[error("the token's user PIN is locked")]
    PinLocked,
    /// No AES secret key has the configured label.
    #[error("no AES key labelled \"{0}\" on the token")]
    KeyNotFound(String),
    /// Several keys share the label, so which one wraps the root is ambiguous.
    #[error("several keys are labelled \"{0}\"")]
    KeyAmbiguous(String),
    /// The key can leave the token (extractable or not sensitive): refused as a root of trust.
    #[error("key \"{0}\" is extractable or not sensitive; refusing it")]
    KeyNotProtected(String),
    /// The vault was wrapped under a key with another label than the one configured.
    #[error(
        "the vault is wrapped under key \"{stored}\", but this node is configured with \"{configured}\""
    )]
    KeyLabelMismatch {
        /// Label recorded in the vault.
        stored: String,
        /// Label in this node's configuration.
        configured: String,
    },
    /// The token could not unwrap the stored root key (another key, or the blob was edited).
    #[error("the token could not unwrap the root key")]
    UnwrapFailed,
    /// Any other token failure.
    #[error("token error: {0}")]
    Device(String),
}

impl HsmError {
    /// A fixed description of the code, for places that must not show paths or labels (the
    /// unauthenticated status).
    #[must_use]
    pub fn summary(&self) -> &'static str {
        match self {
            HsmError::ModuleUnavailable(_) => "the PKCS#11 module could not be loaded",
            HsmError::PinFile(_) => "the PIN file is missing, empty or readable by others",
            HsmError::TokenNotFound(_) => "the configured token is not present",
            HsmError::PinIncorrect => "the token refused the PIN; fix pin_file and restart",
            HsmError::PinLocked => "the token's user PIN is locked",
            HsmError::KeyNotFound(_) => "the wrapping key is not on the token",
            HsmError::KeyAmbiguous(_) => "several keys on the token carry the wrapping key's label",
            HsmError::KeyNotProtected(_) => {
                "the wrapping key is not a local, never-extractable AES-256 key"
            }
            HsmError::KeyLabelMismatch { .. } => {
                "the vault is wrapped under another key label than configured"
            }
            HsmError::UnwrapFailed => "the token could not unwrap the root key",
            HsmError::Device(_) => "the token reported an error",
        }
    }

    /// Stable code for the API and audit records.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            HsmError::ModuleUnavailable(_) => "hsm_module_unavailable",
            HsmError::PinFile(_) => "hsm_pin_file",
            HsmError::TokenNotFound(_) => "hsm_token_not_found",
            HsmError::PinIncorrect => "hsm_pin_incorrect",
            HsmError::PinLocked => "hsm_pin_locked",
            HsmError::KeyNotFound(_) => "hsm_key_not_found",
            HsmError::KeyAmbiguous(_) => "hsm_key_ambiguous",
            HsmError::KeyNotProtected(_) => "hsm_key_not_protected",
            HsmError::KeyLabelMismatch { .. } => "hsm_key_label_mismatch",
            HsmError::UnwrapFailed => "hsm_unwrap_failed",
            HsmError::Device(_) => "hsm_device_error",
        }
    }
}

/// A key inside a hardware token that encrypts the root key (AEAD with associated data).
pub trait RootWrapper: Send + Sync {
    /// The label of the wrapping key, recorded with the wrapped root.
    fn key_label(&self) -> &str;

    /// Encrypts the root key, creating the wrapping key first if the token has none.
    ///
    /// # Errors
    /// Token failures.
    fn wrap(&self, aad: &[u8], root: &RootKey) -> Result<Vec<u8>, HsmError>;

    /// Decrypts a wrapped root key.
    ///
    /// # Errors
    /// Token failures; [`HsmError::UnwrapFailed`] if the blob does not open.
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<RootKey, HsmError>;
}

/// The stored seal configuration: the recovery (Shamir) parameters, and the token-wrapped
/// root key when the vault is sealed by PKCS#11.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSeal {
    /// Share count, threshold and commitments.
    pub shamir: ShamirConfig,
    /// The root key wrapped by a token key, if any.
    pub hsm: Option<HsmWrap>,
    /// After a rekey: how many rekeys, and the derivation base sealed under the current root.
    pub rekeyed: Option<RootEpoch>,
}

/// What a rekey adds to the seal: the vault's first root key (the derivation base of the
/// record MAC, storage, operator and audit keys) sealed under the current root, so that those
/// keys survive while the shares change. Domain master keys are wrapped under the current
/// root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootEpoch {
    /// 1 after the first rekey, and so on.
    pub epoch: u32,
    /// `nonce || AES-256-GCM(base-wrapping-key(root), base_aad, base)`.
    pub wrapped_base: Vec<u8>,
}

/// Associated data binding a sealed derivation base to its vault and epoch.
#[must_use]
pub fn base_aad(vault_id: &VaultId, epoch: u32) -> Vec<u8> {
    let mut aad = b"strongroom/v1/root-base\0".to_vec();
    aad.extend_from_slice(vault_id.as_bytes());
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad
}

/// The root key as wrapped by a token key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmWrap {
    /// Label of the wrapping key in the token.
    pub key_label: String,
    /// What the token returned (IV, ciphertext and tag).
    pub wrapped: Vec<u8>,
}

const PKCS11_CODE: u8 = 2;
const REKEYED_CODE: u8 = 3;

impl StoredSeal {
    /// Which seal this is.
    #[must_use]
    pub fn kind(&self) -> SealKind {
        if self.hsm.is_some() {
            SealKind::Pkcs11
        } else {
            SealKind::Shamir
        }
    }

    /// How many times the root was replaced (0 for the first root).
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.rekeyed.as_ref().map_or(0, |r| r.epoch)
    }

    /// Encodes: the Shamir encoding alone, or `0x02 || u16 len || shamir || u8 len ||
    /// key_label || u16 len || wrapped` (big-endian lengths); after a rekey, that prefixed by
    /// `0x03 || epoch:u32 || u16 len || wrapped_base`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let inner = self.encode_inner();
        let Some(r) = &self.rekeyed else {
            return inner;
        };
        let mut out = vec![REKEYED_CODE];
        out.extend_from_slice(&r.epoch.to_be_bytes());
        put16(&mut out, &r.wrapped_base);
        out.extend_from_slice(&inner);
        out
    }

    fn encode_inner(&self) -> Vec<u8> {
        let shamir = self.shamir.encode();
        let Some(hsm) = &self.hsm else {
            return shamir;
        };
        let mut out = vec![PKCS11_CODE];
        put16(&mut out, &shamir);
        let label = hsm.key_label.as_bytes();
        out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&label[..label.len().min(255)]);
        put16(&mut out, &hsm.wrapped);
        out
    }

    /// Parses a stored configuration.
    ///
    /// # Errors
    /// [`Error::CorruptSealConfig`].
    pub fn decode(b: &[u8]) -> Result<Self, Error> {
        if b.first() != Some(&REKEYED_CODE) {
            return Self::decode_inner(b);
        }
        let (epoch, rest) = b[1..]
            .split_first_chunk::<4>()
            .ok_or(Error::CorruptSealConfig)?;
        let (wrapped_base, rest) = take16(rest)?;
        let epoch = u32::from_be_bytes(*epoch);
        if epoch == 0 || wrapped_base.is_empty() {
            return Err(Error::CorruptSealConfig);
        }
        Ok(Self {
            rekeyed: Some(RootEpoch {
                epoch,
                wrapped_base: wrapped_base.to_vec(),
            }),
            ..Self::decode_inner(rest)?
        })
    }

    fn decode_inner(b: &[u8]) -> Result<Self, Error> {
        match b.first() {
            Some(&SHAMIR_CODE) => Ok(Self {
                shamir: ShamirConfig::decode(b)?,
                hsm: None,
                rekeyed: None,
            }),
            Some(&PKCS11_CODE) => {
                let rest = &b[1..];
                let (shamir, rest) = take16(rest)?;
                let (&n, rest) = rest.split_first().ok_or(Error::CorruptSealConfig)?;
                let (label, rest) = rest
                    .split_at_checked(usize::from(n))
                    .ok_or(Error::CorruptSealConfig)?;
                let (wrapped, rest) = take16(rest)?;
                if !rest.is_empty() || label.is_empty() || wrapped.is_empty() {
                    return Err(Error::CorruptSealConfig);
                }
                Ok(Self {
                    shamir: ShamirConfig::decode(shamir)?,
                    hsm: Some(HsmWrap {
                        key_label: String::from_utf8(label.to_vec())
                            .map_err(|_| Error::CorruptSealConfig)?,
                        wrapped: wrapped.to_vec(),
                    }),
                    rekeyed: None,
                })
            }
            _ => Err(Error::CorruptSealConfig),
        }
    }
}

fn put16(out: &mut Vec<u8>, b: &[u8]) {
    let n = u16::try_from(b.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&b[..usize::from(n)]);
}

fn take16(b: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (n, rest) = b.split_first_chunk::<2>().ok_or(Error::CorruptSealConfig)?;
    rest.split_at_checked(usize::from(u16::from_be_bytes(*n)))
        .ok_or(Error::CorruptSealConfig)
}

/// Associated data binding a token-wrapped root key to its vault and wrapping key label, so
/// a wrapped root copied into another vault's configuration does not open there.
#[must_use]
pub fn hsm_aad(vault_id: &VaultId, key_label: &str) -> Vec<u8> {
    let mut aad = b"strongroom/v1/pkcs11-root\0".to_vec();
    aad.extend_from_slice(vault_id.as_bytes());
    aad.extend_from_slice(key_label.as_bytes());
    aad
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

impl ShamirSeal {
    /// Splits a new root key into shares. Returns the public configuration and the share
    /// strings, handed to operators once.
    ///
    /// # Errors
    /// Parameter or entropy failures.
    pub fn split(
        &self,
        vault_id: &VaultId,
        root: &RootKey,
        entropy: &dyn strongroom_core::EntropySource,
    ) -> Result<(ShamirConfig, Vec<Zeroizing<String>>), Error> {
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
        Ok((config, strings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shamir() -> ShamirConfig {
        ShamirConfig {
            shares: 2,
            threshold: 2,
            commitments: vec![[1; 32], [2; 32]],
        }
    }

    #[test]
    fn stored_seal_round_trips_and_rejects_damage() {
        let plain = StoredSeal {
            shamir: shamir(),
            hsm: None,
            rekeyed: None,
        };
        assert_eq!(StoredSeal::decode(&plain.encode()).unwrap(), plain);
        assert_eq!(plain.kind(), SealKind::Shamir);
        let wrapped = StoredSeal {
            shamir: shamir(),
            hsm: Some(HsmWrap {
                key_label: "strongroom-root".into(),
                wrapped: vec![7; 60],
            }),
            rekeyed: None,
        };
        let rekeyed = StoredSeal {
            rekeyed: Some(RootEpoch {
                epoch: 3,
                wrapped_base: vec![9; 61],
            }),
            ..wrapped.clone()
        };
        assert_eq!(wrapped.epoch(), 0);
        assert_eq!(rekeyed.epoch(), 3);
        for seal in [wrapped, rekeyed] {
            let bytes = seal.encode();
            assert_eq!(StoredSeal::decode(&bytes).unwrap(), seal);
            assert_eq!(seal.kind(), SealKind::Pkcs11);
            // Every truncation and any trailing byte is refused.
            for n in 0..bytes.len() {
                assert_eq!(
                    StoredSeal::decode(&bytes[..n]),
                    Err(Error::CorruptSealConfig),
                    "{n}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(StoredSeal::decode(&longer), Err(Error::CorruptSealConfig));
        }
        // A rekey prefix around another rekey prefix is not a configuration.
        let mut nested = vec![REKEYED_CODE, 0, 0, 0, 1, 0, 1, 9];
        nested.extend(StoredSeal::decode(&plain.encode()).unwrap().encode());
        assert!(StoredSeal::decode(&nested).is_ok());
        let mut twice = vec![REKEYED_CODE, 0, 0, 0, 1, 0, 1, 9];
        twice.extend(nested);
        assert_eq!(StoredSeal::decode(&twice), Err(Error::CorruptSealConfig));
        // Epoch 0 is written without the prefix, so a prefix saying 0 is damage.
        let mut zero = vec![REKEYED_CODE, 0, 0, 0, 0, 0, 1, 9];
        zero.extend(plain.encode());
        assert_eq!(StoredSeal::decode(&zero), Err(Error::CorruptSealConfig));
    }

    #[test]
    fn hsm_aad_binds_vault_and_label() {
        let a = VaultId::from_random([1; 16]);
        let b = VaultId::from_random([2; 16]);
        assert_ne!(hsm_aad(&a, "k"), hsm_aad(&b, "k"));
        assert_ne!(hsm_aad(&a, "k"), hsm_aad(&a, "k2"));
    }
}
