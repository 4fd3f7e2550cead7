//! EIP-2335 BLS keystores (version 4): decrypted to a validator key, inside the boundary.
//!
//! The password is normalised as the EIP says (NFKD, then C0, C1 and DEL control codes
//! removed), the decryption key derived by scrypt or PBKDF2-HMAC-SHA256, the checksum
//! `sha256(key[16..32] || ciphertext)` compared in constant time before anything is decrypted,
//! and the secret decrypted with AES-128-CTR. The key's public key must be the keystore's
//! `pubkey` when it names one. KDF parameters are bounded, so a hostile keystore cannot ask
//! for gigabytes of memory or years of work.

use ctr::cipher::{KeyIvInit as _, StreamCipher as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use strongroom_core::Algorithm;
use subtle::ConstantTimeEq as _;
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use crate::{Error, SigningKey};

/// The most memory scrypt may use: N * r * 128 bytes (the EIP's own parameters, N = 2^18 and
/// r = 8, need 256 MiB).
const MAX_SCRYPT_MEMORY: u64 = 512 * 1024 * 1024;
/// The most PBKDF2 rounds (the EIP's are 2^18).
const MAX_PBKDF2_ROUNDS: u32 = 1 << 22;
/// The most scrypt lanes (the EIP's `p` is 1): each lane is another full pass, so `p` bounds
/// the work as `N` and `r` bound the memory.
const MAX_SCRYPT_LANES: u32 = 4;

#[derive(Deserialize)]
struct Keystore {
    crypto: Crypto,
    #[serde(default)]
    pubkey: Option<String>,
    version: u32,
}

#[derive(Deserialize)]
struct Crypto {
    kdf: Module<KdfParams>,
    checksum: Module<serde_json::Value>,
    cipher: Module<CipherParams>,
}

#[derive(Deserialize)]
struct Module<P> {
    function: String,
    params: P,
    message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KdfParams {
    Scrypt {
        dklen: u32,
        n: u64,
        r: u32,
        p: u32,
        salt: String,
    },
    Pbkdf2 {
        dklen: u32,
        c: u32,
        prf: String,
        salt: String,
    },
}

#[derive(Deserialize)]
struct CipherParams {
    iv: String,
}

/// The public part of a keystore: the public key it names, if any (for skipping keys a
/// domain already holds before paying for the KDF).
///
/// # Errors
/// [`Error::InvalidKeystore`] if it does not parse.
pub fn eip2335_pubkey(keystore: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let ks: Keystore = serde_json::from_slice(keystore).map_err(|_| Error::InvalidKeystore)?;
    ks.pubkey.map(|p| unhex(&p)).transpose()
}

fn unhex(s: &str) -> Result<Vec<u8>, Error> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if !h.len().is_multiple_of(2) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidKeystore);
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| Error::InvalidKeystore))
        .collect()
}

/// EIP-2335's password processing: NFKD, then the control codes removed.
fn normalise(password: &str) -> Zeroizing<Vec<u8>> {
    let kept: Zeroizing<String> = Zeroizing::new(
        password
            .nfkd()
            .filter(|c| {
                let u = u32::from(*c);
                !(u <= 0x1f || (0x7f..=0x9f).contains(&u))
            })
            .collect(),
    );
    Zeroizing::new(kept.as_bytes().to_vec())
}

/// Decrypts an EIP-2335 keystore with `password` into a BLS validator key.
///
/// # Errors
/// [`Error::InvalidKeystore`] for a document that does not parse, an unsupported function or
/// parameters out of bounds; [`Error::Unseal`] for a wrong password (the checksum differs);
/// [`Error::InvalidKeyMaterial`] if the secret is not a BLS key or not the named one.
pub fn decrypt_eip2335(keystore: &[u8], password: &str) -> Result<SigningKey, Error> {
    let ks: Keystore = serde_json::from_slice(keystore).map_err(|_| Error::InvalidKeystore)?;
    if ks.version != 4 {
        return Err(Error::InvalidKeystore);
    }
    let c = &ks.crypto;
    let password = normalise(password);
    let mut key = Zeroizing::new([0u8; 32]);
    match (c.kdf.function.as_str(), &c.kdf.params) {
        (
            "scrypt",
            KdfParams::Scrypt {
                dklen,
                n,
                r,
                p,
                salt,
            },
        ) => {
            let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| Error::InvalidKeystore)?;
            let memory = n.saturating_mul(u64::from(*r)).saturating_mul(128);
            if *dklen != 32
                || !n.is_power_of_two()
                || *n < 2
                || memory > MAX_SCRYPT_MEMORY
                || *p == 0
                || *p > MAX_SCRYPT_LANES
            {
                return Err(Error::InvalidKeystore);
            }
            let params = scrypt::Params::new(log_n, *r, *p).map_err(|_| Error::InvalidKeystore)?;
            scrypt::scrypt(&password, &unhex(salt)?, &params, key.as_mut())
                .map_err(|_| Error::InvalidKeystore)?;
        }
        (
            "pbkdf2",
            KdfParams::Pbkdf2 {
                dklen,
                c: rounds,
                prf,
                salt,
            },
        ) => {
            if *dklen != 32 || prf != "hmac-sha256" || *rounds == 0 || *rounds > MAX_PBKDF2_ROUNDS {
                return Err(Error::InvalidKeystore);
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(&password, &unhex(salt)?, *rounds, key.as_mut());
        }
        _ => return Err(Error::InvalidKeystore),
    }
    if !c.kdf.message.is_empty() || c.checksum.function != "sha256" {
        return Err(Error::InvalidKeystore);
    }
    let ciphertext = unhex(&c.cipher.message)?;
    let mut h = Sha256::new();
    h.update(&key[16..32]);
    h.update(&ciphertext);
    let checksum: [u8; 32] = h.finalize().into();
    let expected = unhex(&c.checksum.message)?;
    if expected.len() != 32 || !bool::from(checksum.ct_eq(expected.as_slice())) {
        return Err(Error::Unseal);
    }
    if c.cipher.function != "aes-128-ctr" || ciphertext.len() != 32 {
        return Err(Error::InvalidKeystore);
    }
    let iv = unhex(&c.cipher.params.iv)?;
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&ciphertext);
    let mut aes = ctr::Ctr128BE::<aes::Aes128>::new_from_slices(&key[..16], &iv)
        .map_err(|_| Error::InvalidKeystore)?;
    aes.apply_keystream(secret.as_mut());
    let signing = SigningKey::from_secret_bytes(Algorithm::Bls12381, secret.as_ref())?;
    if let Some(named) = &ks.pubkey
        && unhex(named)? != signing.public_key()
    {
        return Err(Error::InvalidKeyMaterial);
    }
    Ok(signing)
}

/// The key-derivation function of a keystore [`encrypt_eip2335`] writes, with the EIP's own
/// parameters (what the staking deposit tools write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eip2335Kdf {
    /// scrypt, N = 2^18, r = 8, p = 1 (256 MiB).
    Scrypt,
    /// PBKDF2-HMAC-SHA256, 2^18 rounds.
    Pbkdf2,
}

/// The bytes of fresh randomness one keystore takes: salt (32), IV (16) and UUID (16).
pub const EIP2335_RANDOM_LEN: usize = 64;

/// Encrypts validator key `key` into an EIP-2335 (version 4) keystore under `password`
/// (normalised as the EIP says), with `random` ([`EIP2335_RANDOM_LEN`] fresh bytes) as its
/// salt, IV and UUID. `path` is its EIP-2334 path, or empty.
///
/// # Errors
/// [`Error::InvalidKeyMaterial`] unless `key` is a BLS12-381 key.
pub fn encrypt_eip2335(
    key: &SigningKey,
    password: &str,
    kdf: Eip2335Kdf,
    path: &str,
    random: &[u8; EIP2335_RANDOM_LEN],
) -> Result<Vec<u8>, Error> {
    if key.algorithm() != Algorithm::Bls12381 {
        return Err(Error::InvalidKeyMaterial);
    }
    let (salt, rest) = random.split_at(32);
    let (iv, uuid) = rest.split_at(16);
    let password = normalise(password);
    let mut dk = Zeroizing::new([0u8; 32]);
    let kdf_module = match kdf {
        Eip2335Kdf::Scrypt => {
            let params = scrypt::Params::new(18, 8, 1).map_err(|_| Error::InvalidKeystore)?;
            scrypt::scrypt(&password, salt, &params, dk.as_mut())
                .map_err(|_| Error::InvalidKeystore)?;
            serde_json::json!({"function": "scrypt", "message": "",
                "params": {"dklen": 32, "n": 262_144, "r": 8, "p": 1, "salt": hex::encode(salt)}})
        }
        Eip2335Kdf::Pbkdf2 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(&password, salt, 1 << 18, dk.as_mut());
            serde_json::json!({"function": "pbkdf2", "message": "",
                "params": {"dklen": 32, "c": 262_144, "prf": "hmac-sha256", "salt": hex::encode(salt)}})
        }
    };
    let mut ciphertext = key.secret_bytes()?;
    let mut aes = ctr::Ctr128BE::<aes::Aes128>::new_from_slices(&dk[..16], iv)
        .map_err(|_| Error::InvalidKeystore)?;
    aes.apply_keystream(ciphertext.as_mut());
    let mut h = Sha256::new();
    h.update(&dk[16..32]);
    h.update(&ciphertext[..]);
    let checksum: [u8; 32] = h.finalize().into();
    // A version-4, variant-1 UUID from the random bytes.
    let mut u = [0u8; 16];
    u.copy_from_slice(uuid);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    let u = hex::encode(u);
    let doc = serde_json::json!({
        "crypto": {
            "kdf": kdf_module,
            "checksum": {"function": "sha256", "params": {}, "message": hex::encode(checksum)},
            "cipher": {"function": "aes-128-ctr", "params": {"iv": hex::encode(iv)},
                       "message": hex::encode(&ciphertext[..])},
        },
        "description": "",
        "pubkey": hex::encode(key.public_key()),
        "path": path,
        "uuid": format!("{}-{}-{}-{}-{}", &u[..8], &u[8..12], &u[12..16], &u[16..20], &u[20..]),
        "version": 4,
    });
    serde_json::to_vec_pretty(&doc).map_err(|_| Error::InvalidKeystore)
}
