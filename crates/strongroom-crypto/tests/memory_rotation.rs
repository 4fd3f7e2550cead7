//! The per-process memory key's rotation (what the tamper response and sealing do) makes
//! every key loaded before it unusable, in flight or not, and a key loaded after it works.
//! Its own test binary: rotation affects the whole process.
#![allow(clippy::unwrap_used)]

use strongroom_core::Algorithm;
use strongroom_crypto::{Error, Payload, SigningKey, rotate_memory_key};

#[test]
fn rotation_leaves_earlier_keys_unusable() {
    let secret = [0x11; 32];
    let before = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &secret).unwrap();
    before.sign(Payload::Digest(&[1; 32])).unwrap();
    rotate_memory_key();
    assert!(matches!(
        before.sign(Payload::Digest(&[1; 32])),
        Err(Error::SelfCheck)
    ));
    let after = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &secret).unwrap();
    assert_eq!(after.public_key(), before.public_key());
    after.sign(Payload::Digest(&[1; 32])).unwrap();
}
