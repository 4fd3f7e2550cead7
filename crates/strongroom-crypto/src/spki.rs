//! X.509 SubjectPublicKeyInfo (DER) for strongroom's public keys, so standard tools such as
//! OpenSSL can verify its signatures. The prefixes are fixed DER headers per algorithm.

use strongroom_core::Algorithm;

use crate::Error;

// SEQUENCE { SEQUENCE { id-ecPublicKey, secp256k1 }, BIT STRING (compressed point) }
const SECP256K1_PREFIX: &[u8] = &[
    0x30, 0x36, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x22, 0x00,
];
// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (compressed point) }
const P256_PREFIX: &[u8] = &[
    0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
];
// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (32-byte key) }
const ED25519_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

// SEQUENCE { SEQUENCE { id-ml-dsa-65 (2.16.840.1.101.3.4.3.18) }, BIT STRING (1952 bytes) }
// (RFC 9881: no parameters).
const ML_DSA_65_PREFIX: &[u8] = &[
    0x30, 0x82, 0x07, 0xb2, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03,
    0x12, 0x03, 0x82, 0x07, 0xa1, 0x00,
];

/// DER SubjectPublicKeyInfo for a strongroom public key.
///
/// # Errors
/// [`Error::InvalidPublicKey`] if the key has the wrong length for the algorithm.
pub fn spki_der(algorithm: Algorithm, public_key: &[u8]) -> Result<Vec<u8>, Error> {
    if Some(public_key.len()) != algorithm.public_key_len() {
        return Err(Error::InvalidPublicKey);
    }
    let prefix = match algorithm {
        Algorithm::Secp256k1 => SECP256K1_PREFIX,
        Algorithm::P256 => P256_PREFIX,
        Algorithm::Ed25519 => ED25519_PREFIX,
        Algorithm::MlDsa65 => ML_DSA_65_PREFIX,
        _ => return Err(Error::InvalidPublicKey),
    };
    Ok([prefix, public_key].concat())
}
