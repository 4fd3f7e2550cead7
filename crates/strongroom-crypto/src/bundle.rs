//! Cold-storage bundles: secret bytes (a cold key's sealed blob) encrypted under a fresh
//! bundle key that exists only as M-of-N Shamir shares, each encrypted to one custodian's age
//! key. Opening needs `threshold` custodians to decrypt their shares; the bundle key is never
//! shown or stored anywhere else.
//!
//! A bundle share is a share string (`srs1-...`, see [`crate::Share`]) whose identifier field
//! holds the bundle id instead of a vault id, so it can never pass as an unseal share.

use strongroom_core::EntropySource;
use zeroize::Zeroizing;

use crate::Error;
use crate::aead::AeadKey;
use crate::age::{AgeRecipient, age_encrypt};
use crate::shamir::{Share, combine_bytes, split_bytes};

/// One custodian's part of a bundle: their share, encrypted to their age key (armored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleShare {
    /// The share's index (1-255).
    pub index: u8,
    /// The custodian it is encrypted to.
    pub recipient: AgeRecipient,
    /// The age file (ASCII armor).
    pub armored: String,
}

/// A sealed bundle: the ciphertext and the encrypted shares of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBundle {
    /// AES-256-GCM (see `docs/formats.md`) of the secret under the bundle key, binding `aad`.
    pub ciphertext: Vec<u8>,
    /// One per custodian, in the order given.
    pub shares: Vec<BundleShare>,
}

/// Seals `secret` (bound to `aad`) for `recipients`, any `threshold` of whom can open it.
///
/// # Errors
/// [`Error::ShareParameters`] (including a recipient given twice: two shares in one hand
/// would lower the threshold), [`Error::Entropy`], [`Error::InvalidPublicKey`].
pub fn seal_bundle(
    bundle_id: &[u8; 16],
    aad: &[u8],
    secret: &[u8],
    recipients: &[AgeRecipient],
    threshold: u8,
    entropy: &dyn EntropySource,
) -> Result<SealedBundle, Error> {
    let count = u8::try_from(recipients.len()).map_err(|_| Error::ShareParameters)?;
    if recipients
        .iter()
        .enumerate()
        .any(|(i, r)| recipients[..i].contains(r))
    {
        return Err(Error::ShareParameters);
    }
    let (ciphertext, shares) = seal_split(aad, secret, count, threshold, entropy)?;
    let mut out = Vec::with_capacity(shares.len());
    for (r, s) in recipients.iter().zip(&shares) {
        let text = s.encode(bundle_id, threshold);
        out.push(BundleShare {
            index: s.index(),
            recipient: *r,
            armored: age_encrypt(r, text.as_bytes(), entropy)?
                .as_str()
                .to_owned(),
        });
    }
    Ok(SealedBundle {
        ciphertext,
        shares: out,
    })
}

/// Seals `secret` (bound to `aad`) under a fresh key split `threshold`-of-`count` into share
/// strings for their holders (to hand out, or to encrypt to each custodian), which name
/// `bundle_id` so they are never taken for another bundle's or a vault's.
///
/// # Errors
/// [`Error::ShareParameters`], [`Error::Entropy`].
pub fn seal_bundle_plain(
    bundle_id: &[u8; 16],
    aad: &[u8],
    secret: &[u8],
    count: u8,
    threshold: u8,
    entropy: &dyn EntropySource,
) -> Result<(Vec<u8>, Vec<Zeroizing<String>>), Error> {
    let (ciphertext, shares) = seal_split(aad, secret, count, threshold, entropy)?;
    Ok((
        ciphertext,
        shares
            .iter()
            .map(|s| s.encode(bundle_id, threshold))
            .collect(),
    ))
}

/// A fresh key, the secret sealed under it, and the key's shares (the key itself is dropped).
fn seal_split(
    aad: &[u8],
    secret: &[u8],
    count: u8,
    threshold: u8,
    entropy: &dyn EntropySource,
) -> Result<(Vec<u8>, Vec<Share>), Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    entropy.fill(key.as_mut()).map_err(|_| Error::Entropy)?;
    let ciphertext = AeadKey::from_secret(crate::memory::Secret::from_slice(&key))
        .seal_secret_bytes(aad, secret, entropy)?;
    let shares = split_bytes(&key, threshold, count, entropy)?;
    Ok((ciphertext, shares))
}

/// Opens a bundle from `threshold` decrypted share strings.
///
/// # Errors
/// [`Error::MalformedShare`] for a share that does not parse or belongs to another bundle;
/// [`Error::ShareParameters`] for too few or repeated shares; [`Error::Unseal`] if the
/// rebuilt key does not open the ciphertext with `aad` (a wrong share, or a tampered bundle).
pub fn open_bundle(
    bundle_id: &[u8; 16],
    threshold: u8,
    aad: &[u8],
    ciphertext: &[u8],
    share_strings: &[&str],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut shares: Vec<Share> = Vec::with_capacity(share_strings.len());
    for text in share_strings {
        let (header, share) = Share::decode(text)?;
        if header.vault_id != *bundle_id || header.threshold != threshold {
            return Err(Error::MalformedShare);
        }
        if shares.iter().any(|s| s.index() == share.index()) {
            return Err(Error::ShareParameters);
        }
        shares.push(share);
    }
    let key = combine_bytes(threshold, &shares)?;
    AeadKey::from_secret(crate::memory::Secret::from_slice(&key)).open_secret_bytes(aad, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsEntropy;

    /// Recipients from fixed X25519 secrets (the integration tests decrypt with `age`).
    fn recipients(n: usize) -> Vec<AgeRecipient> {
        (0..n)
            .map(|i| {
                let secret = [u8::try_from(i + 1).unwrap(); 32];
                let public =
                    curve25519_dalek::montgomery::MontgomeryPoint::mul_base_clamped(secret);
                AgeRecipient::from_bytes(public.to_bytes())
            })
            .collect()
    }

    #[test]
    fn parameters_are_checked() {
        let r = recipients(3);
        let id = [7u8; 16];
        assert_eq!(
            seal_bundle(&id, b"aad", b"s", &r, 4, &OsEntropy).unwrap_err(),
            Error::ShareParameters
        );
        let twice = [r[0], r[1], r[0]];
        assert_eq!(
            seal_bundle(&id, b"aad", b"s", &twice, 2, &OsEntropy).unwrap_err(),
            Error::ShareParameters
        );
        let sealed = seal_bundle(&id, b"aad", b"secret", &r, 2, &OsEntropy).unwrap();
        assert_eq!(sealed.shares.len(), 3);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn shares_open_the_bundle_and_nothing_else_does() {
        let id = [9u8; 16];
        let mut key = Zeroizing::new([0u8; 32]);
        OsEntropy.fill(key.as_mut()).unwrap();
        let ct = AeadKey::from_bytes(*key)
            .seal_secret_bytes(b"aad", b"blob", &OsEntropy)
            .unwrap();
        let shares = split_bytes(&key, 2, 3, &OsEntropy).unwrap();
        let texts: Vec<Zeroizing<String>> = shares.iter().map(|s| s.encode(&id, 2)).collect();
        let t: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            open_bundle(&id, 2, b"aad", &ct, &[t[0], t[2]])
                .unwrap()
                .as_slice(),
            b"blob"
        );
        // Too few, repeated, another bundle's, other bound data, tampered ciphertext.
        assert_eq!(
            open_bundle(&id, 2, b"aad", &ct, &[t[1]]).unwrap_err(),
            Error::ShareParameters
        );
        assert_eq!(
            open_bundle(&id, 2, b"aad", &ct, &[t[1], t[1]]).unwrap_err(),
            Error::ShareParameters
        );
        assert_eq!(
            open_bundle(&[8u8; 16], 2, b"aad", &ct, &[t[0], t[1]]).unwrap_err(),
            Error::MalformedShare
        );
        assert_eq!(
            open_bundle(&id, 2, b"other", &ct, &[t[0], t[1]]).unwrap_err(),
            Error::Unseal
        );
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            open_bundle(&id, 2, b"aad", &bad, &[t[0], t[1]]).unwrap_err(),
            Error::Unseal
        );
    }
}
