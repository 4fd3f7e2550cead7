//! Shamir splitting of the root key over GF(256) (vsss-rs), and the share string format.
//!
//! A share string is `srs1-` followed by lower-case hex of
//! `version (1) || vault id (16) || threshold (1) || index (1) || value (32) || checksum (4)`,
//! where the checksum is the first 4 bytes of SHA-256 over everything before it. The checksum
//! catches typing mistakes; the vault id catches shares from another vault; the per-share
//! commitment stored at init catches a well-formed share with the wrong value.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use strongroom_core::EntropySource;
use vsss_rs::Gf256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;
use crate::entropy::RngAdapter;
use crate::kdf::RootKey;

const PREFIX: &str = "srs1-";
const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 16 + 1 + 1 + 32;
const CHECKSUM_LEN: usize = 4;

/// Public facts carried in a share string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareHeader {
    /// The vault the share belongs to.
    pub vault_id: [u8; 16],
    /// How many shares unseal the vault.
    pub threshold: u8,
    /// This share's x-coordinate (1-255).
    pub index: u8,
}

/// One unseal share: a point on the secret polynomial.
pub struct Share {
    index: u8,
    value: Zeroizing<[u8; 32]>,
}

impl Share {
    /// The share's x-coordinate.
    #[must_use]
    pub fn index(&self) -> u8 {
        self.index
    }

    /// A public commitment to this share, stored at init so that a wrong share is refused at
    /// once instead of silently producing a wrong root key.
    #[must_use]
    pub fn commitment(&self, vault_id: &[u8; 16]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(vault_id)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(b"strongroom/v1/share-commitment");
        mac.update(&[self.index]);
        mac.update(self.value.as_ref());
        mac.finalize().into_bytes().into()
    }

    /// The share as the string an operator keeps. This is the only way secret bytes leave
    /// this crate, and it is meant to be shown once, to the share's holder.
    #[must_use]
    pub fn encode(&self, vault_id: &[u8; 16], threshold: u8) -> Zeroizing<String> {
        let mut body = Zeroizing::new(Vec::with_capacity(BODY_LEN + CHECKSUM_LEN));
        body.push(VERSION);
        body.extend_from_slice(vault_id);
        body.push(threshold);
        body.push(self.index);
        body.extend_from_slice(self.value.as_ref());
        let sum = Sha256::digest(body.as_slice());
        body.extend_from_slice(&sum[..CHECKSUM_LEN]);
        let mut out = Zeroizing::new(String::with_capacity(PREFIX.len() + body.len() * 2));
        out.push_str(PREFIX);
        for b in body.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }

    /// Parses a share string (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`Error::MalformedShare`] for a bad prefix, length, hex digit, version or checksum.
    pub fn decode(text: &str) -> Result<(ShareHeader, Share), Error> {
        let text = text.trim();
        let hex = text.strip_prefix(PREFIX).ok_or(Error::MalformedShare)?;
        if hex.len() != (BODY_LEN + CHECKSUM_LEN) * 2 {
            return Err(Error::MalformedShare);
        }
        let mut raw = Zeroizing::new([0u8; BODY_LEN + CHECKSUM_LEN]);
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            raw[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        let (body, sum) = raw.split_at(BODY_LEN);
        if Sha256::digest(body)[..CHECKSUM_LEN] != *sum || body[0] != VERSION {
            return Err(Error::MalformedShare);
        }
        let mut vault_id = [0u8; 16];
        vault_id.copy_from_slice(&body[1..17]);
        let (threshold, index) = (body[17], body[18]);
        if threshold == 0 || index == 0 {
            return Err(Error::MalformedShare);
        }
        let mut value = Zeroizing::new([0u8; 32]);
        value.copy_from_slice(&body[19..51]);
        Ok((
            ShareHeader {
                vault_id,
                threshold,
                index,
            },
            Share { index, value },
        ))
    }
}

impl ZeroizeOnDrop for Share {}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Result<u8, Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::MalformedShare),
    }
}

/// Splits the root key into `shares` shares, any `threshold` of which rebuild it.
///
/// # Errors
/// [`Error::ShareParameters`] unless `1 <= threshold <= shares`; [`Error::Entropy`] if the
/// entropy source failed (no share is returned then).
pub fn split(
    root: &RootKey,
    threshold: u8,
    shares: u8,
    entropy: &dyn EntropySource,
) -> Result<Vec<Share>, Error> {
    split_bytes(root.as_bytes(), threshold, shares, entropy)
}

/// [`split`] for any 32-byte secret (a cold-storage bundle key).
pub(crate) fn split_bytes(
    secret: &[u8; 32],
    threshold: u8,
    shares: u8,
    entropy: &dyn EntropySource,
) -> Result<Vec<Share>, Error> {
    if threshold == 0 || threshold > shares {
        return Err(Error::ShareParameters);
    }
    if threshold == 1 {
        // A degree-0 polynomial: every share is the secret itself (1-of-N was asked for).
        return Ok((1..=shares)
            .map(|index| Share {
                index,
                value: Zeroizing::new(*secret),
            })
            .collect());
    }
    let mut rng = RngAdapter::new(entropy);
    let mut raw = Gf256::split_array(
        usize::from(threshold),
        usize::from(shares),
        secret,
        &mut rng,
    )
    .map_err(|_| Error::ShareParameters)?;
    let entropy_ok = rng.finish();
    let mut out = Vec::with_capacity(raw.len());
    for r in &raw {
        if r.len() == 33 && r[0] != 0 {
            let mut value = Zeroizing::new([0u8; 32]);
            value.copy_from_slice(&r[1..]);
            out.push(Share { index: r[0], value });
        }
    }
    raw.iter_mut().for_each(Zeroize::zeroize);
    entropy_ok?;
    if out.len() != usize::from(shares) {
        return Err(Error::ShareParameters);
    }
    Ok(out)
}

/// Rebuilds the root key from `threshold` distinct shares. The result is only as good as the
/// shares: callers check it against the stored root check value.
///
/// # Errors
/// [`Error::ShareParameters`] if too few shares or duplicate indices are given.
pub fn combine(threshold: u8, shares: &[Share]) -> Result<RootKey, Error> {
    combine_bytes(threshold, shares).map(|b| RootKey::from_bytes(*b))
}

/// [`combine`] for any 32-byte secret.
pub(crate) fn combine_bytes(threshold: u8, shares: &[Share]) -> Result<Zeroizing<[u8; 32]>, Error> {
    if threshold == 0 || shares.len() < usize::from(threshold) {
        return Err(Error::ShareParameters);
    }
    let used = &shares[..usize::from(threshold)];
    if threshold == 1 {
        return Ok(Zeroizing::new(*used[0].value));
    }
    let mut raw: Vec<Vec<u8>> = used
        .iter()
        .map(|s| {
            let mut v = Vec::with_capacity(33);
            v.push(s.index);
            v.extend_from_slice(s.value.as_ref());
            v
        })
        .collect();
    let result = Gf256::combine_array(&raw);
    raw.iter_mut().for_each(Zeroize::zeroize);
    let mut secret = result.map_err(|_| Error::ShareParameters)?;
    let bytes: Result<[u8; 32], _> = secret.as_slice().try_into();
    secret.zeroize();
    bytes
        .map(Zeroizing::new)
        .map_err(|_| Error::ShareParameters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsEntropy;
    use subtle::ConstantTimeEq;

    fn same(a: &RootKey, b: &RootKey) -> bool {
        a.ct_eq(b).into()
    }

    #[test]
    fn any_threshold_subset_rebuilds_and_fewer_do_not() {
        let root = RootKey::generate(&OsEntropy).unwrap();
        let shares = split(&root, 3, 5, &OsEntropy).unwrap();
        assert_eq!(shares.len(), 5);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let pick: Vec<Share> = [a, b, c]
                        .iter()
                        .map(|&i| Share {
                            index: shares[i].index,
                            value: Zeroizing::new(*shares[i].value),
                        })
                        .collect();
                    assert!(same(&combine(3, &pick).unwrap(), &root));
                }
            }
        }
        // Two shares with threshold 2 interpolate a different line: not the root.
        let two: Vec<Share> = shares[..2]
            .iter()
            .map(|s| Share {
                index: s.index,
                value: Zeroizing::new(*s.value),
            })
            .collect();
        assert!(!same(&combine(2, &two).unwrap(), &root));
        assert!(combine(3, &two).is_err());
    }

    #[test]
    fn one_of_n_and_bad_parameters() {
        let root = RootKey::generate(&OsEntropy).unwrap();
        let shares = split(&root, 1, 2, &OsEntropy).unwrap();
        assert!(same(&combine(1, &shares[1..]).unwrap(), &root));
        assert_eq!(
            split(&root, 0, 3, &OsEntropy).unwrap_err(),
            Error::ShareParameters
        );
        assert_eq!(
            split(&root, 4, 3, &OsEntropy).unwrap_err(),
            Error::ShareParameters
        );
    }

    #[test]
    fn failing_entropy_yields_no_shares() {
        struct Broken;
        impl EntropySource for Broken {
            fn fill(&self, _: &mut [u8]) -> Result<(), strongroom_core::Error> {
                Err(strongroom_core::Error::Entropy)
            }
        }
        let root = RootKey::generate(&OsEntropy).unwrap();
        assert_eq!(split(&root, 2, 3, &Broken).unwrap_err(), Error::Entropy);
    }

    #[test]
    fn share_strings_round_trip_and_reject_typos() {
        let root = RootKey::generate(&OsEntropy).unwrap();
        let shares = split(&root, 2, 3, &OsEntropy).unwrap();
        let vid = [5u8; 16];
        let text = shares[1].encode(&vid, 2);
        let (hdr, back) = Share::decode(&format!("  {}\n", text.as_str())).unwrap();
        assert_eq!(
            hdr,
            ShareHeader {
                vault_id: vid,
                threshold: 2,
                index: shares[1].index
            }
        );
        assert_eq!(*back.value, *shares[1].value);
        assert_eq!(back.commitment(&vid), shares[1].commitment(&vid));
        assert_ne!(back.commitment(&vid), shares[0].commitment(&vid));
        assert_ne!(back.commitment(&vid), back.commitment(&[6u8; 16]));
        // Every single-character change is caught by the checksum or the hex decoder.
        let bytes = text.as_bytes();
        for i in PREFIX.len()..bytes.len() {
            let mut t = bytes.to_vec();
            t[i] = if t[i] == b'0' { b'1' } else { b'0' };
            assert!(
                Share::decode(std::str::from_utf8(&t).unwrap()).is_err(),
                "position {i}"
            );
        }
        assert!(Share::decode("srs1-zz").is_err());
        assert!(Share::decode(&text[1..]).is_err());
    }
}
