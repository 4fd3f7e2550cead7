//! Approval keys: each approver's Ed25519 key, generated and kept on the approver's own machine
//! (the vault only ever sees the public key). An approval is this key's signature over the
//! canonical hash of one pending request.

use ed25519_dalek::Signer as _;
use strongroom_core::EntropySource;
use zeroize::Zeroizing;

use crate::Error;

const FILE_PREFIX: &str = "strongroom-approval-key-v1:";

/// An approver's private key.
pub struct ApprovalKey {
    // ed25519_dalek::SigningKey zeroizes itself on drop.
    inner: ed25519_dalek::SigningKey,
}

impl ApprovalKey {
    /// Draws a new key.
    ///
    /// # Errors
    /// [`Error::Entropy`].
    pub fn generate(entropy: &dyn EntropySource) -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        entropy.fill(seed.as_mut()).map_err(|_| Error::Entropy)?;
        Ok(Self {
            inner: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The key file's contents (`strongroom-approval-key-v1:` and the hex seed). Secret: write it
    /// with mode 0600 and keep it with its owner.
    #[must_use]
    pub fn to_file_string(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.inner.to_bytes());
        let mut out = Zeroizing::new(String::with_capacity(FILE_PREFIX.len() + 64));
        out.push_str(FILE_PREFIX);
        for b in seed.iter() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Parses a key file.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`].
    pub fn from_file_string(text: &str) -> Result<Self, Error> {
        let hex = text
            .trim()
            .strip_prefix(FILE_PREFIX)
            .ok_or(Error::InvalidKeyMaterial)?;
        if hex.len() != 64 {
            return Err(Error::InvalidKeyMaterial);
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| Error::InvalidKeyMaterial)?;
            seed[i] = u8::from_str_radix(s, 16).map_err(|_| Error::InvalidKeyMaterial)?;
        }
        Ok(Self {
            inner: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The public key to register with the vault.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.inner.verifying_key().to_bytes()
    }

    /// Signs a node configuration file (by its SHA-256) for the vault `vault_id`: a security
    /// officer's consent that a node may unseal under it.
    #[must_use]
    pub fn sign_config(&self, vault_id: &[u8; 16], config_sha256: &[u8; 32]) -> [u8; 64] {
        self.inner
            .sign(&config_message(vault_id, config_sha256))
            .to_bytes()
    }

    /// Signs the acceptance of a database rollback (the SHA-256 of its finding, see
    /// `docs/formats.md`) for the vault `vault_id`: a security officer's consent that the
    /// vault unseal over an older database, for a deliberate restore.
    #[must_use]
    pub fn sign_rollback_acceptance(
        &self,
        vault_id: &[u8; 16],
        finding_sha256: &[u8; 32],
    ) -> [u8; 64] {
        self.inner
            .sign(&statement(ROLLBACK_DOMAIN, vault_id, finding_sha256))
            .to_bytes()
    }

    /// Approves: signs the canonical hash of a pending request.
    #[must_use]
    pub fn approve(&self, request_hash: &[u8; 32]) -> [u8; 64] {
        self.inner.sign(&approval_message(request_hash)).to_bytes()
    }
}

impl std::fmt::Debug for ApprovalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalKey").finish_non_exhaustive()
    }
}

fn approval_message(request_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"strongroom/approval/v1".to_vec();
    m.extend_from_slice(request_hash);
    m
}

/// Whether `signature` is `public_key`'s approval of the request with `request_hash` (strict
/// Ed25519 verification).
#[must_use]
pub fn verify_approval(
    public_key: &[u8; 32],
    request_hash: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    // Strict: no small-order keys, canonical S.
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    vk.verify_strict(&approval_message(request_hash), &sig)
        .is_ok()
}

/// What a configuration signature covers (layout in `docs/formats.md`).
fn config_message(vault_id: &[u8; 16], config_sha256: &[u8; 32]) -> Vec<u8> {
    statement(b"strongroom/config/v1", vault_id, config_sha256)
}

/// The domain of rollback acceptances: never a configuration's or an approval's.
const ROLLBACK_DOMAIN: &[u8] = b"strongroom/rollback-accept/v1";

/// An officer's statement about a vault: `domain || vault_id || sha256`.
fn statement(domain: &[u8], vault_id: &[u8; 16], sha256: &[u8; 32]) -> Vec<u8> {
    let mut m = domain.to_vec();
    m.extend_from_slice(vault_id);
    m.extend_from_slice(sha256);
    m
}

/// Whether `signature` is `public_key`'s acceptance of the rollback whose finding hashes to
/// `finding_sha256`, for vault `vault_id` (strict Ed25519 verification).
#[must_use]
pub fn verify_rollback_signature(
    public_key: &[u8; 32],
    vault_id: &[u8; 16],
    finding_sha256: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    vk.verify_strict(&statement(ROLLBACK_DOMAIN, vault_id, finding_sha256), &sig)
        .is_ok()
}

/// Whether `signature` is `public_key`'s signature of the configuration with
/// `config_sha256` for vault `vault_id` (strict Ed25519 verification).
#[must_use]
pub fn verify_config_signature(
    public_key: &[u8; 32],
    vault_id: &[u8; 16],
    config_sha256: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    vk.verify_strict(&config_message(vault_id, config_sha256), &sig)
        .is_ok()
}

/// Whether `public_key` can never verify an approval (not a point, or of small order).
#[must_use]
pub fn approval_key_is_unusable(public_key: &[u8; 32]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(public_key).map_or(true, |vk| vk.is_weak())
}

/// The canonical hash of a pending request: what approvers sign. It covers the operation,
/// its parameters, the domain and key, the expiry and a nonce, bound to the vault and the
/// request id (layout in `docs/formats.md`).
#[must_use]
pub fn request_hash(
    vault_id: &strongroom_core::VaultId,
    r: &strongroom_core::record::PendingRecord,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    fn put(h: &mut Sha256, b: &[u8]) {
        h.update(u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(b);
    }
    fn opt(h: &mut Sha256, b: Option<&[u8; 16]>) {
        match b {
            None => h.update([0u8]),
            Some(b) => {
                h.update([1u8]);
                h.update(b);
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"strongroom/request/v1");
    h.update(vault_id.as_bytes());
    h.update(r.id.as_bytes());
    put(&mut h, r.op.as_str().as_bytes());
    put(&mut h, r.params.as_bytes());
    opt(
        &mut h,
        r.domain.as_ref().map(strongroom_core::DomainId::as_bytes),
    );
    opt(&mut h, r.key.as_ref().map(strongroom_core::KeyId::as_bytes));
    h.update([r.required]);
    h.update(r.expires_at.0.to_be_bytes());
    h.update(r.nonce);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsEntropy;

    #[test]
    fn approve_verify_and_file_round_trip() {
        let k = ApprovalKey::generate(&OsEntropy).unwrap();
        let h = [7u8; 32];
        let sig = k.approve(&h);
        assert!(verify_approval(&k.public_key(), &h, &sig));
        assert!(
            !verify_approval(&k.public_key(), &[8u8; 32], &sig),
            "bound to the request"
        );
        let other = ApprovalKey::generate(&OsEntropy).unwrap();
        assert!(!verify_approval(&other.public_key(), &h, &sig));
        // A configuration signature is not an approval, nor the reverse; it binds the vault.
        let c = k.sign_config(&[1; 16], &h);
        assert!(verify_config_signature(&k.public_key(), &[1; 16], &h, &c));
        assert!(!verify_config_signature(&k.public_key(), &[2; 16], &h, &c));
        assert!(!verify_config_signature(
            &k.public_key(),
            &[1; 16],
            &[8; 32],
            &c
        ));
        assert!(!verify_approval(&k.public_key(), &h, &c));
        assert!(!verify_config_signature(
            &k.public_key(),
            &[1; 16],
            &h,
            &sig
        ));
        let back = ApprovalKey::from_file_string(&k.to_file_string()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert!(ApprovalKey::from_file_string("nonsense").is_err());
        assert!(!format!("{k:?}").contains(&k.to_file_string()[FILE_PREFIX.len()..]));
        // The identity point is refused as a key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert!(!verify_approval(&ident, &h, &[0u8; 64]));
        assert!(approval_key_is_unusable(&ident));
        assert!(!approval_key_is_unusable(&k.public_key()));
    }
}
