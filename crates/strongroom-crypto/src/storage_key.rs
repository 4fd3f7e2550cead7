//! Layered encryption's keys: the storage key that seals private columns and the index key
//! that computes their blind indexes, both derived from the root key. Layout of a sealed
//! field (see `docs/formats.md`): `version (1) = 0x01 || nonce (24) || ciphertext || tag (16)`.
//!
//! XChaCha20-Poly1305, not AES-GCM: every audit record is sealed under this one key, and a
//! random 96-bit nonce would make collisions plausible after 2^32 records; 192 bits do not.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::Mac as _;
use sha2::Sha256;
use strongroom_core::EntropySource;
use zeroize::Zeroizing;

use crate::Error;
use crate::memory::Secret;

/// Version byte of a sealed field.
pub const SEALED_FIELD_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"strongroom/field/v1";

/// The storage key and the blind-index key. Zeroized on drop; exists only while unsealed.
pub struct StorageKeys {
    // Locked, dump-excluded memory; zeroed on drop.
    seal: Secret<32>,
    index: Secret<32>,
}

impl StorageKeys {
    pub(crate) fn from_parts(seal: Secret<32>, index: Secret<32>) -> Self {
        Self { seal, index }
    }

    fn full_aad(aad: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(AAD_LABEL.len() + 1 + aad.len());
        full.extend_from_slice(AAD_LABEL);
        full.push(SEALED_FIELD_VERSION);
        full.extend_from_slice(aad);
        full
    }

    /// Seals `plaintext` bound to `aad`.
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce).map_err(|_| Error::Entropy)?;
        let ct = XChaCha20Poly1305::new(self.seal.expose().into())
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: &Self::full_aad(aad),
                },
            )
            // Fails only beyond the cipher's length limit (256 GiB).
            .map_err(|_| Error::InvalidKeyMaterial)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_FIELD_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a sealed field.
    ///
    /// # Errors
    /// [`Error::Unseal`] if the blob is malformed, altered, or bound to other `aad`.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Vec<u8>, Error> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != SEALED_FIELD_VERSION {
            return Err(Error::Unseal);
        }
        let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
        let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| Error::Unseal)?;
        XChaCha20Poly1305::new(self.seal.expose().into())
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ct,
                    aad: &Self::full_aad(aad),
                },
            )
            .map_err(|_| Error::Unseal)
    }

    /// HMAC-SHA256 under the index key of `purpose || 0x00 || value`.
    #[must_use]
    pub fn blind_index(&self, purpose: &[u8], value: &[u8]) -> [u8; 32] {
        // HMAC pads a short key with zeros to its 64-byte block, so this is HMAC under the
        // 32-byte index key, built without a fallible constructor.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(self.index.expose());
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new(&(*block).into());
        m.update(purpose);
        m.update(&[0]);
        m.update(value);
        m.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for StorageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageKeys").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{OsEntropy, RootKey};

    fn keys() -> StorageKeys {
        RootKey::generate(&OsEntropy).unwrap().storage_keys()
    }

    #[test]
    fn fields_round_trip_and_refuse_other_rows_tampering_and_other_vaults() {
        let k = keys();
        let blob = k
            .seal(b"domains.name\0row-1", b"treasury", &OsEntropy)
            .unwrap();
        assert_eq!(blob.len(), 1 + 24 + 8 + 16);
        assert_eq!(k.open(b"domains.name\0row-1", &blob).unwrap(), b"treasury");
        // Moved to another row or column.
        assert!(k.open(b"domains.name\0row-2", &blob).is_err());
        assert!(k.open(b"keys.label\0row-1", &blob).is_err());
        // Any flipped bit, and truncation.
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(k.open(b"domains.name\0row-1", &bad).is_err(), "byte {i}");
        }
        assert!(
            k.open(b"domains.name\0row-1", &blob[..blob.len() - 1])
                .is_err()
        );
        // Another vault's storage key.
        assert!(keys().open(b"domains.name\0row-1", &blob).is_err());
        // Fresh nonces: sealing twice differs.
        assert_ne!(
            blob,
            k.seal(b"domains.name\0row-1", b"treasury", &OsEntropy)
                .unwrap()
        );
    }

    #[test]
    fn blind_indexes_are_deterministic_per_vault_and_purpose() {
        let k = keys();
        let a = k.blind_index(b"domain-name", b"treasury");
        assert_eq!(a, k.blind_index(b"domain-name", b"treasury"));
        assert_ne!(a, k.blind_index(b"operator-name", b"treasury"));
        assert_ne!(a, k.blind_index(b"domain-name", b"treasury2"));
        assert_ne!(a, keys().blind_index(b"domain-name", b"treasury"));
        // The separator keeps purpose and value apart.
        assert_ne!(k.blind_index(b"ab", b"c"), k.blind_index(b"a", b"bc"));
    }

    #[test]
    fn the_hmac_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2 as an independent check of the index's construction: key
        // "Jefe", data "what do ya want for nothing?" (purpose "what do ya", NUL replaced).
        let k = StorageKeys::from_parts(Secret::zeroed(), Secret::zeroed());
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&[0; 32]).unwrap();
        m.update(b"p\0v");
        assert_eq!(
            k.blind_index(b"p", b"v"),
            <[u8; 32]>::from(m.finalize().into_bytes())
        );
    }
}
