//! Sealing with AES-256-GCM. Layout (see `docs/formats.md`):
//! `version (1) || nonce (12) || ciphertext || tag (16)`; the version byte is also the first
//! byte of the associated data the caller binds, so it cannot be swapped either.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use strongroom_core::{Algorithm, EntropySource};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::Error;
use crate::memory::Secret;
use crate::signing::SigningKey;

/// Format version of sealed blobs written by this code.
pub const SEALED_BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit AEAD key: the domain-wrapping key derived from the root, or a domain master key.
pub struct AeadKey {
    // Locked, dump-excluded memory; zeroed on drop.
    bytes: Secret<32>,
}

impl AeadKey {
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes: Secret::from_slice(&bytes),
        }
    }

    pub(crate) fn from_secret(bytes: Secret<32>) -> Self {
        Self { bytes }
    }

    /// The raw key, for an encrypted backup to carry it under its own key. The only caller
    /// outside this crate is the keystore's backup sealing; anything else reading these bytes
    /// is a bug.
    #[must_use]
    pub fn danger_expose_bytes(&self) -> &[u8; 32] {
        self.bytes.expose()
    }

    /// A key from raw bytes an opened backup carried (authenticated by the backup's AEAD).
    #[must_use]
    pub fn danger_from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        Self {
            bytes: Secret::from_slice(bytes),
        }
    }

    /// Draws a fresh key (a new domain master key).
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

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.bytes.expose().into())
    }

    fn seal(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        entropy.fill(&mut nonce).map_err(|_| Error::Entropy)?;
        let mut full_aad = Vec::with_capacity(aad.len() + 1);
        full_aad.push(SEALED_BLOB_VERSION);
        full_aad.extend_from_slice(aad);
        let ct = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                AeadPayload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            // Encryption fails only for inputs longer than GCM's limit (64 GiB).
            .map_err(|_| Error::InvalidKeyMaterial)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_BLOB_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != SEALED_BLOB_VERSION {
            return Err(Error::Unseal);
        }
        let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
        let mut full_aad = Vec::with_capacity(aad.len() + 1);
        full_aad.push(blob[0]);
        full_aad.extend_from_slice(aad);
        self.cipher()
            .decrypt(
                <&Nonce>::try_from(nonce).map_err(|_| Error::Unseal)?,
                AeadPayload {
                    msg: ct,
                    aad: &full_aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Unseal)
    }

    /// Seals another AEAD key (a domain master key) under this one, binding `aad`.
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_key(
        &self,
        aad: &[u8],
        key: &AeadKey,
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        self.seal(aad, key.bytes.expose(), entropy)
    }

    /// Opens a blob made by [`AeadKey::seal_key`] with the same `aad`.
    ///
    /// # Errors
    /// [`Error::Unseal`] for a wrong key, wrong `aad` or tampered blob.
    pub fn open_key(&self, aad: &[u8], blob: &[u8]) -> Result<AeadKey, Error> {
        let plain = self.open(aad, blob)?;
        let bytes: &[u8; 32] = plain.as_slice().try_into().map_err(|_| Error::Unseal)?;
        Ok(AeadKey {
            bytes: Secret::from_slice(bytes),
        })
    }

    /// Seals a signing key's secret under this key, binding `aad`.
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_signing_key(
        &self,
        aad: &[u8],
        key: &SigningKey,
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        self.seal(aad, key.secret_bytes()?.as_ref(), entropy)
    }

    /// Opens a blob made by [`AeadKey::seal_signing_key`] and rebuilds the signing key.
    ///
    /// # Errors
    /// [`Error::Unseal`] for a wrong key, wrong `aad` or tampered blob;
    /// [`Error::InvalidKeyMaterial`] if the opened bytes are not a key for `algorithm`.
    pub fn open_signing_key(
        &self,
        aad: &[u8],
        blob: &[u8],
        algorithm: Algorithm,
    ) -> Result<SigningKey, Error> {
        let plain = self.open(aad, blob)?;
        SigningKey::from_secret_bytes(algorithm, &plain)
    }
}

impl AeadKey {
    /// Seals arbitrary secret bytes (a request's sealed result, say), binding `aad`.
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_secret_bytes(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        self.seal(aad, plaintext, entropy)
    }

    /// Opens a blob made by [`AeadKey::seal_secret_bytes`] with the same `aad`.
    ///
    /// # Errors
    /// [`Error::Unseal`].
    pub fn open_secret_bytes(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.open(aad, blob)
    }

    /// Seals an HD wallet's seed, binding `aad` (the wallet's identity, as for a key).
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_seed(
        &self,
        aad: &[u8],
        seed: &crate::HdSeed,
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        self.seal(aad, seed.bytes(), entropy)
    }

    /// Opens a blob made by [`AeadKey::seal_seed`].
    ///
    /// # Errors
    /// [`Error::Unseal`]; [`Error::InvalidKeyMaterial`] if it holds no seed.
    pub fn open_seed(&self, aad: &[u8], blob: &[u8]) -> Result<crate::HdSeed, Error> {
        crate::HdSeed::from_bytes(&self.open(aad, blob)?)
    }

    /// Seals an operator's TOTP secret, binding `aad` (the operator's identity).
    ///
    /// # Errors
    /// [`Error::Entropy`] if no nonce could be drawn.
    pub fn seal_totp_secret(
        &self,
        aad: &[u8],
        secret: &crate::TotpSecret,
        entropy: &dyn EntropySource,
    ) -> Result<Vec<u8>, Error> {
        let mut plain = Zeroizing::new(Vec::with_capacity(2 + secret.seed().len()));
        plain.push(secret.algorithm().code());
        plain.push(secret.digits());
        plain.extend_from_slice(secret.seed());
        self.seal(aad, &plain, entropy)
    }

    /// Opens a blob made by [`AeadKey::seal_totp_secret`] with the same `aad`.
    ///
    /// # Errors
    /// [`Error::Unseal`] for a wrong key, wrong `aad` or tampered blob.
    pub fn open_totp_secret(&self, aad: &[u8], blob: &[u8]) -> Result<crate::TotpSecret, Error> {
        let plain = self.open(aad, blob)?;
        let [code, digits, seed @ ..] = plain.as_slice() else {
            return Err(Error::Unseal);
        };
        let algorithm = crate::OtpAlgorithm::from_code(*code).ok_or(Error::Unseal)?;
        crate::TotpSecret::from_seed(algorithm, seed, *digits)
    }
}

impl ZeroizeOnDrop for AeadKey {}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeadKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsEntropy;

    #[test]
    fn seal_open_round_trip_and_every_bit_flip_fails() {
        let kek = AeadKey::from_bytes([9; 32]);
        let inner = AeadKey::from_bytes([4; 32]);
        let blob = kek.seal_key(b"domain-a", &inner, &OsEntropy).unwrap();
        assert_eq!(blob.len(), 1 + 12 + 32 + 16);
        assert_eq!(
            kek.open_key(b"domain-a", &blob).unwrap().bytes.expose(),
            &[4; 32]
        );
        assert_eq!(kek.open_key(b"domain-b", &blob).unwrap_err(), Error::Unseal);
        assert_eq!(
            AeadKey::from_bytes([8; 32])
                .open_key(b"domain-a", &blob)
                .unwrap_err(),
            Error::Unseal
        );
        for i in 0..blob.len() * 8 {
            let mut t = blob.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert!(kek.open_key(b"domain-a", &t).is_err(), "bit {i}");
        }
        assert!(kek.open_key(b"domain-a", &blob[..20]).is_err());
    }

    #[test]
    fn totp_secrets_seal_bound_to_their_owner() {
        let kek = AeadKey::from_bytes([9; 32]);
        let s = crate::TotpSecret::generate(crate::OtpAlgorithm::Sha256, &OsEntropy).unwrap();
        let blob = kek.seal_totp_secret(b"operator-a", &s, &OsEntropy).unwrap();
        let back = kek.open_totp_secret(b"operator-a", &blob).unwrap();
        assert_eq!(
            back.code_at(1_000_000).as_str(),
            s.code_at(1_000_000).as_str()
        );
        assert_eq!(back.algorithm(), crate::OtpAlgorithm::Sha256);
        assert!(kek.open_totp_secret(b"operator-b", &blob).is_err());
    }

    #[test]
    fn nonces_differ_between_seals() {
        let kek = AeadKey::from_bytes([9; 32]);
        let inner = AeadKey::from_bytes([4; 32]);
        let a = kek.seal_key(b"x", &inner, &OsEntropy).unwrap();
        let b = kek.seal_key(b"x", &inner, &OsEntropy).unwrap();
        assert_ne!(a, b);
    }
}
