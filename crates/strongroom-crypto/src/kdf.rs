//! The root key and what is derived from it.

use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;
use crate::aead::AeadKey;
use crate::memory::Secret;
use strongroom_core::EntropySource;

/// The vault's root key: 32 random bytes that exist only in memory (reassembled from shares)
/// and from which every other vault-wide key is derived.
pub struct RootKey {
    // Locked, dump-excluded memory; zeroed on drop.
    bytes: Secret<32>,
}

impl RootKey {
    /// Draws a fresh root key.
    ///
    /// # Errors
    /// [`Error::Entropy`] if the source fails.
    pub fn generate(entropy: &dyn EntropySource) -> Result<Self, Error> {
        let mut bytes = Secret::zeroed();
        entropy
            .fill(bytes.expose_mut())
            .map_err(|_| Error::Entropy)?;
        Ok(Self { bytes })
    }

    pub(crate) fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = Self {
            bytes: Secret::from_slice(&bytes),
        };
        bytes.zeroize();
        key
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        self.bytes.expose()
    }

    /// The raw root key, for a seal that must hand it to a hardware token to be wrapped, or
    /// (the derivation base) for an encrypted backup to carry under its own key. The only
    /// callers outside this crate are the PKCS#11 seal and the keystore's backup sealing;
    /// anything else reading these bytes is a bug.
    #[must_use]
    pub fn danger_expose_bytes(&self) -> &[u8; 32] {
        self.bytes.expose()
    }

    /// A root key from raw bytes a hardware token unwrapped. The caller must check the result
    /// against the vault's stored check value before trusting it.
    #[must_use]
    pub fn danger_from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        Self {
            bytes: Secret::from_slice(bytes),
        }
    }

    fn derive(&self, label: &[u8]) -> Secret<32> {
        let hk = Hkdf::<Sha256>::new(Some(b"strongroom/v1"), self.bytes.expose());
        let mut out = Secret::zeroed();
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if hk.expand(label, out.expose_mut()).is_err() {
            out.expose_mut().zeroize();
        }
        out
    }

    /// A public check value that identifies this root key without revealing it.
    #[must_use]
    pub fn check_value(&self) -> [u8; 32] {
        *self.derive(b"root-check").expose()
    }

    /// Whether `check` is this key's check value (constant time).
    #[must_use]
    pub fn matches_check(&self, check: &[u8; 32]) -> bool {
        self.check_value().ct_eq(check).into()
    }

    /// The key that seals domain master keys.
    #[must_use]
    pub fn domain_wrapping_key(&self) -> AeadKey {
        AeadKey::from_secret(self.derive(b"domain-wrapping-key"))
    }

    /// The key that seals the derivation base under this root after a rekey.
    #[must_use]
    pub fn base_wrapping_key(&self) -> AeadKey {
        AeadKey::from_secret(self.derive(b"base-wrapping-key"))
    }

    /// Seals this key (the derivation base: the vault's first root) under `kek`, binding
    /// `aad`. A rekey keeps the base, so every key derived from it survives a new root.
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_under(
        &self,
        kek: &AeadKey,
        aad: &[u8],
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        kek.seal_secret_bytes(aad, self.bytes.expose(), entropy)
    }

    /// Opens a key sealed by [`RootKey::seal_under`].
    ///
    /// # Errors
    /// [`Error::Unseal`] for a wrong key, wrong `aad` or tampered blob.
    pub fn open_under(kek: &AeadKey, aad: &[u8], blob: &[u8]) -> Result<Self, Error> {
        let plain = kek.open_secret_bytes(aad, blob)?;
        let bytes: &[u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Unseal)?;
        Ok(Self {
            bytes: Secret::from_slice(bytes),
        })
    }

    /// The key that seals operators' TOTP secrets.
    #[must_use]
    pub fn operator_wrapping_key(&self) -> AeadKey {
        AeadKey::from_secret(self.derive(b"operator-wrapping-key"))
    }

    /// The key that authenticates stored records a database editor must not forge (tokens).
    #[must_use]
    pub fn record_mac_key(&self) -> RecordMacKey {
        RecordMacKey {
            key: self.derive(b"record-mac-key"),
        }
    }

    /// The keys of layered encryption: the storage key and the blind-index key.
    #[must_use]
    pub fn storage_keys(&self) -> crate::StorageKeys {
        crate::StorageKeys::from_parts(
            self.derive(b"storage-key"),
            self.derive(b"storage-index-key"),
        )
    }

    /// The Ed25519 key that signs audit chain heads.
    #[must_use]
    pub fn audit_signing_key(&self) -> AuditSigningKey {
        let seed = self.derive(b"audit-signing-key");
        let public = ed25519_dalek::SigningKey::from_bytes(seed.expose()).verifying_key();
        AuditSigningKey { seed, public }
    }
}

impl ZeroizeOnDrop for RootKey {}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey").finish_non_exhaustive()
    }
}

impl ConstantTimeEq for RootKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.bytes.expose().ct_eq(other.bytes.expose())
    }
}

/// HMAC-SHA256 key over stored records. Derived from the root key, so records can only be
/// made (and checked) while unsealed.
pub struct RecordMacKey {
    key: Secret<32>,
}

impl RecordMacKey {
    /// The tag of `data`.
    #[must_use]
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose())
            .unwrap_or_else(|_| <hmac::Hmac<Sha256> as KeyInit>::new(&Default::default()));
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `data` (constant time).
    #[must_use]
    pub fn verify(&self, data: &[u8], tag: &[u8; 32]) -> bool {
        self.mac(data).ct_eq(tag).into()
    }
}

impl std::fmt::Debug for RecordMacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordMacKey").finish_non_exhaustive()
    }
}

/// Signs audit chain heads. Derived from the root key, so it exists only while unsealed.
pub struct AuditSigningKey {
    seed: Secret<32>,
    public: ed25519_dalek::VerifyingKey,
}

impl AuditSigningKey {
    /// The public half, published at initialisation and used by offline verification.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Signs `message` (an encoded chain head).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        // The expanded key for this one signature; `public` was computed from the same seed.
        let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(self.seed.expose());
        ed25519_dalek::hazmat::raw_sign::<Sha512>(&esk, message, &self.public).to_bytes()
    }
}

impl std::fmt::Debug for AuditSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigningKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_distinct_and_deterministic() {
        let a = RootKey::from_bytes([1; 32]);
        let b = RootKey::from_bytes([1; 32]);
        let c = RootKey::from_bytes([2; 32]);
        assert_eq!(a.check_value(), b.check_value());
        assert_ne!(a.check_value(), c.check_value());
        assert!(a.matches_check(&b.check_value()));
        assert!(!a.matches_check(&c.check_value()));
        assert_eq!(
            a.audit_signing_key().public_key(),
            b.audit_signing_key().public_key()
        );
        assert_ne!(
            a.audit_signing_key().public_key(),
            c.audit_signing_key().public_key()
        );
        assert_ne!(a.derive(b"x").expose(), a.derive(b"y").expose());
    }

    #[test]
    fn a_sealed_base_opens_only_under_its_root_and_binding() {
        let base = RootKey::from_bytes([3; 32]);
        let root = RootKey::from_bytes([4; 32]);
        let blob = base
            .seal_under(&root.base_wrapping_key(), b"aad", &crate::OsEntropy)
            .unwrap();
        let opened = RootKey::open_under(&root.base_wrapping_key(), b"aad", &blob).unwrap();
        assert!(bool::from(opened.ct_eq(&base)));
        assert!(RootKey::open_under(&root.base_wrapping_key(), b"aae", &blob).is_err());
        let other = RootKey::from_bytes([5; 32]);
        assert!(RootKey::open_under(&other.base_wrapping_key(), b"aad", &blob).is_err());
        // The base-wrapping key is its own derivation, not the domain-wrapping key.
        assert!(RootKey::open_under(&root.domain_wrapping_key(), b"aad", &blob).is_err());
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let k = RootKey::from_bytes([0xab; 32]);
        let text = format!("{k:?} {:?}", k.audit_signing_key());
        assert!(!text.contains("ab") && !text.contains("171"), "{text}");
    }
}
