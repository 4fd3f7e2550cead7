//! Power-on self-tests: a known-answer test of every algorithm the vault uses, run before it
//! serves (and so before it can unseal). A failure is named; the server then refuses every
//! cryptographic operation.
//!
//! The answers are published ones: FIPS 180-4 examples (SHA-2), RFC 4231 (HMAC), Wycheproof
//! (AES-256-GCM, BLS signature verification), RFC 6979 and the libsecp256k1 fixtures (ECDSA),
//! RFC 8032 (Ed25519), EIP-2335's test secret and public key (BLS), and for ML-DSA-65 a
//! Wycheproof signature plus a key generated from a fixed seed whose public key OpenSSL 4.0
//! computes (checked again by `cli/tests/post_quantum.rs` against OpenSSL). With the
//! `danger-break-self-test` feature (tests only; never in a release build), the environment
//! variable `STRONGROOM_BREAK_SELF_TEST=<name>` corrupts that test's expected answer, so that
//! tests can prove each failure is caught.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload as AeadPayload};
use hmac::Mac as _;
use sha2::Digest as _;
use strongroom_core::Algorithm;

use crate::{Payload, SigningKey};

/// The known-answer tests, in the order they run.
pub const SELF_TESTS: [&str; 9] = [
    "sha-256",
    "sha-512",
    "hmac-sha256",
    "aes-256-gcm",
    "ecdsa-secp256k1",
    "ecdsa-p256",
    "ed25519",
    "bls12-381",
    "ml-dsa-65",
];

/// Runs every known-answer test.
///
/// # Errors
/// The name of the first test whose answer differs (one of [`SELF_TESTS`]).
pub fn self_test() -> Result<(), &'static str> {
    type Check = fn() -> Option<bool>;
    let checks: [(&'static str, Check); 9] = [
        ("sha-256", sha256),
        ("sha-512", sha512),
        ("hmac-sha256", hmac_sha256),
        ("aes-256-gcm", aes_256_gcm),
        ("ecdsa-secp256k1", ecdsa_secp256k1),
        ("ecdsa-p256", ecdsa_p256),
        ("ed25519", ed25519),
        ("bls12-381", bls12_381),
        ("ml-dsa-65", ml_dsa_65),
    ];
    for (name, check) in checks {
        if check() != Some(true) {
            return Err(name);
        }
    }
    Ok(())
}

/// `got == want`, unless the test build was told to break test `name`.
fn answer(name: &str, got: &[u8], want: &str) -> Option<bool> {
    #[allow(unused_mut)]
    let mut want = unhex(want)?;
    #[cfg(feature = "danger-break-self-test")]
    if std::env::var("STRONGROOM_BREAK_SELF_TEST").is_ok_and(|b| b == name)
        && let Some(first) = want.first_mut()
    {
        *first ^= 1;
    }
    let _ = name;
    Some(got == want.as_slice())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

fn sha256() -> Option<bool> {
    answer(
        "sha-256",
        &sha2::Sha256::digest(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    )
}

fn sha512() -> Option<bool> {
    answer(
        "sha-512",
        &sha2::Sha512::digest(b"abc"),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    )
}

fn hmac_sha256() -> Option<bool> {
    // RFC 4231, test case 2.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").ok()?;
    mac.update(b"what do ya want for nothing?");
    answer(
        "hmac-sha256",
        &mac.finalize().into_bytes(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    )
}

fn aes_256_gcm() -> Option<bool> {
    // Wycheproof aes_gcm_test.json, tcId 100: encrypts to the answer, and decrypts back.
    let key = unhex("b279f57e19c8f53f2f963f5f2519fdb7c1779be2ca2b3ae8e1128b7d6c627fc4")?;
    let iv = unhex("98bc2c7438d5cd7665d76f6e")?;
    let aad = unhex("c0")?;
    let msg = unhex("fcc515b294408c8645c9183e3f4ecee5127846d1")?;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).ok()?;
    let nonce = <&aes_gcm::aead::Nonce<aes_gcm::Aes256Gcm>>::try_from(iv.as_slice()).ok()?;
    let sealed = cipher
        .encrypt(
            nonce,
            AeadPayload {
                msg: &msg,
                aad: &aad,
            },
        )
        .ok()?;
    let opened = cipher
        .decrypt(
            nonce,
            AeadPayload {
                msg: &sealed,
                aad: &aad,
            },
        )
        .ok()?;
    Some(
        answer(
            "aes-256-gcm",
            &sealed,
            "eb5500e3825952866d911253f8de860c00831c81ecb660e1fb0541ec41e8d68a64141b3a",
        )? && opened == msg,
    )
}

fn ecdsa_secp256k1() -> Option<bool> {
    // d = 1, SHA-256("Satoshi Nakamoto"): RFC 6979 nonces, libsecp256k1's published fixture.
    let mut d = [0u8; 32];
    d[31] = 1;
    let key = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &d).ok()?;
    let digest: [u8; 32] = sha2::Sha256::digest(b"Satoshi Nakamoto").into();
    let sig = key.sign(Payload::Digest(&digest)).ok()?;
    answer(
        "ecdsa-secp256k1",
        &sig.bytes,
        "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8\
         2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5",
    )
}

fn ecdsa_p256() -> Option<bool> {
    // RFC 6979 appendix A.2.5, SHA-256, message "test" (its s is already low).
    let d = unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")?;
    let key = SigningKey::from_secret_bytes(Algorithm::P256, &d).ok()?;
    let digest: [u8; 32] = sha2::Sha256::digest(b"test").into();
    let sig = key.sign(Payload::Digest(&digest)).ok()?;
    answer(
        "ecdsa-p256",
        &sig.bytes,
        "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367\
         019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
    )
}

fn ed25519() -> Option<bool> {
    // RFC 8032 section 7.1, test 1 (the empty message).
    let sk = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")?;
    let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &sk).ok()?;
    let sig = key.sign(Payload::Message(b"")).ok()?;
    answer(
        "ed25519",
        &sig.bytes,
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555\
         fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    )
}

fn bls12_381() -> Option<bool> {
    // EIP-2335's test secret gives its public key; a Wycheproof-valid signature (tcId 1)
    // verifies and a corrupted one does not; the test key's signature verifies.
    let sk = unhex("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")?;
    let key = SigningKey::from_secret_bytes(Algorithm::Bls12381, &sk).ok()?;
    let public = answer(
        "bls12-381",
        key.public_key(),
        "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27\
         f4ae4040902382ae2910c15e2b420d07",
    )?;
    let pk = unhex(
        "8f62f546d9ace47b11df8d0cf2911ff7cff8d3c247a6a46a6b37cd42c5c19785\
         f0ae24477a6b261b047b20b2993ebac4",
    )?;
    let msg = unhex("810c3298362cdfa76d0f618d2c3443e6670a0dd4384cb3983782047f7b86e3b5")?;
    let mut sig = unhex(
        "a6bfda26f1f60ecfa65e9a57ae4bef304305be0bb3eca352c80032932a15928c\
         0ac3abf7b676fefd0ca2a9af231f189c0f612e0fb494da9d6bbbb10984616c91\
         e59b1f8850f3975e1e603d9bd10e0b2c47705bf4da99a7e17ad3d344aa3e27c5",
    )?;
    let valid = crate::verify_bls(&pk, &msg, &sig).is_ok();
    *sig.last_mut()? ^= 1;
    let corrupted_refused = crate::verify_bls(&pk, &msg, &sig).is_err();
    let own = key.sign_bls(&msg).ok()?;
    let own_verifies = crate::verify_bls(key.public_key(), &msg, &own).is_ok();
    Some(public && valid && corrupted_refused && own_verifies)
}

fn ml_dsa_65() -> Option<bool> {
    // KeyGen from the seed 00 01 .. 1f: SHA-256 of the public key as OpenSSL 4.0.3 makes it.
    let seed: Vec<u8> = (0u8..32).collect();
    let key = SigningKey::from_secret_bytes(Algorithm::MlDsa65, &seed).ok()?;
    let public = answer(
        "ml-dsa-65",
        &sha2::Sha256::digest(key.public_key()),
        "d666806e11cee19a7c989f7445f90dd419cf4d2d51db8c0fdb4c0f0a542238c9",
    )?;
    // Wycheproof tcId 1 verifies, and not once corrupted; the key's own signature verifies.
    let mut lines = include_str!("ml_dsa_65_kat.txt")
        .lines()
        .filter(|l| !l.starts_with('#'));
    let (pk, msg, mut sig) = (
        unhex(lines.next()?)?,
        unhex(lines.next()?)?,
        unhex(lines.next()?)?,
    );
    let verify =
        |sig: &[u8]| crate::verify(Algorithm::MlDsa65, &pk, Payload::Message(&msg), sig).is_ok();
    let valid = verify(&sig);
    // A byte of the commitment hash c~ (not the hint encoding, which the decoder alone
    // would refuse): the verification equation must catch it.
    *sig.first_mut()? ^= 1;
    let corrupted_refused = !verify(&sig);
    let own = key.sign(Payload::Message(&msg)).is_ok();
    Some(public && valid && corrupted_refused && own)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_known_answer_matches() {
        assert_eq!(super::self_test(), Ok(()));
    }
}
