//! Known-answer tests against published vectors, and the Wycheproof verifier suites.
#![allow(clippy::unwrap_used)] // Test helpers may panic on malformed fixtures.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use strongroom_core::Algorithm;
use strongroom_crypto::{Payload, SigningKey, verify};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn sha256(m: &[u8]) -> [u8; 32] {
    Sha256::digest(m).into()
}

#[test]
fn rfc6979_p256_sha256_appendix_a_2_5() {
    let key = SigningKey::from_secret_bytes(
        Algorithm::P256,
        &h("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"),
    )
    .unwrap();
    // Ux from the RFC; the compressed key starts with 02 or 03 followed by Ux.
    assert_eq!(
        key.public_key()[1..].to_vec(),
        h("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6")
    );
    for (msg, r, s) in [
        (
            &b"sample"[..],
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
            "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
        ),
        (
            &b"test"[..],
            "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
            "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
        ),
    ] {
        let sig = key.sign(Payload::Digest(&sha256(msg))).unwrap();
        // strongroom releases low-S signatures; the RFC's s is normalised the same way.
        let published = p256::ecdsa::Signature::from_slice(&[h(r), h(s)].concat()).unwrap();
        assert_eq!(
            sig.bytes.to_vec(),
            published.normalize_s().to_bytes().to_vec(),
            "{msg:?}"
        );
        assert_eq!(sig.bytes[..32].to_vec(), h(r));
        assert!(sig.recovery_id.is_none());
    }
}

#[test]
fn rfc6979_secp256k1_published_fixtures() {
    let n_minus_1 = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
    let one = "0000000000000000000000000000000000000000000000000000000000000001";
    let cases = [
        (
            one,
            &b"Satoshi Nakamoto"[..],
            "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
            "2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5",
        ),
        (
            one,
            &b"All those moments will be lost in time, like tears in rain. Time to die..."[..],
            "8600dbd41e348fe5c9465ab92d23e3db8b98b873beecd930736488696438cb6b",
            "547fe64427496db33bf66019dacbf0039c04199abb0122918601db38a72cfc21",
        ),
        (
            n_minus_1,
            &b"Satoshi Nakamoto"[..],
            "fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d0",
            "6b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5",
        ),
    ];
    for (d, msg, r, s) in cases {
        let key = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &h(d)).unwrap();
        let digest = sha256(msg);
        let sig = key.sign(Payload::Digest(&digest)).unwrap();
        assert_eq!(sig.bytes.to_vec(), [h(r), h(s)].concat(), "{msg:?}");
        // The recovery id must recover this key's public key.
        let rid =
            secp256k1::ecdsa::RecoveryId::from_i32(i32::from(sig.recovery_id.unwrap())).unwrap();
        let rsig = secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.bytes, rid).unwrap();
        let recovered = secp256k1::Secp256k1::verification_only()
            .recover_ecdsa(&secp256k1::Message::from_digest(digest), &rsig)
            .unwrap();
        assert_eq!(recovered.serialize().to_vec(), key.public_key());
        // DER form agrees with the compact one.
        let der = secp256k1::ecdsa::Signature::from_der(sig.der.as_ref().unwrap()).unwrap();
        assert_eq!(der.serialize_compact().to_vec(), sig.bytes);
    }
    // The generator's public key for d = 1.
    let g = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &h(one)).unwrap();
    assert_eq!(
        g.public_key().to_vec(),
        h("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    );
}

#[test]
fn rfc8032_ed25519_section_7_1() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (sk, pk, msg, sig) in cases {
        let key = SigningKey::from_secret_bytes(Algorithm::Ed25519, &h(sk)).unwrap();
        assert_eq!(key.public_key().to_vec(), h(pk));
        let out = key.sign(Payload::Message(&h(msg))).unwrap();
        assert_eq!(out.bytes.to_vec(), h(sig));
        assert!(out.der.is_none() && out.recovery_id.is_none());
    }
}

#[test]
fn wrong_payload_kind_is_refused() {
    let k = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[7; 32]).unwrap();
    assert!(k.sign(Payload::Digest(&[0; 32])).is_err());
    let k = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &[7; 32]).unwrap();
    assert!(k.sign(Payload::Message(b"hello")).is_err());
}

#[test]
fn invalid_scalars_are_refused() {
    for alg in [Algorithm::Secp256k1, Algorithm::P256] {
        assert!(
            SigningKey::from_secret_bytes(alg, &[0; 32]).is_err(),
            "{alg} zero"
        );
        assert!(
            SigningKey::from_secret_bytes(alg, &[0xff; 32]).is_err(),
            "{alg} >= n"
        );
        assert!(
            SigningKey::from_secret_bytes(alg, &[1; 31]).is_err(),
            "{alg} short"
        );
    }
}

#[test]
fn generated_keys_sign_low_s_and_never_repeat_r() {
    let n_half = h("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
    // BLS signatures are deterministic with no nonce (see `bls_signatures_...`).
    for alg in Algorithm::SIGNING.into_iter().filter(|a| !a.is_validator()) {
        let key = SigningKey::generate(alg, &strongroom_crypto::OsEntropy).unwrap();
        let mut rs = std::collections::HashSet::new();
        for i in 0u32..200 {
            let digest = sha256(&i.to_be_bytes());
            let payload = if matches!(alg, Algorithm::Ed25519 | Algorithm::MlDsa65) {
                Payload::Message(&digest)
            } else {
                Payload::Digest(&digest)
            };
            let sig = key.sign(payload).unwrap();
            // ML-DSA: the commitment hash c~ (the first 48 bytes) plays r's part.
            assert!(rs.insert(sig.bytes[..32].to_vec()), "{alg}: repeated r");
            verify(alg, key.public_key(), payload, &sig.bytes).unwrap();
            if alg == Algorithm::Secp256k1 {
                assert!(sig.bytes[32..].to_vec() <= n_half, "high S");
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Suite {
    test_groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    public_key: PublicKey,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct PublicKey {
    uncompressed: Option<String>,
    pk: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    tc_id: u32,
    msg: String,
    sig: String,
    result: String,
}

fn suite(name: &str) -> Suite {
    let path = format!(
        "{}/tests/vectors/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs a Wycheproof suite through `strongroom_crypto::verify`. `compact` turns the suite's
/// signature encoding into the 64-byte form, or `None` when it does not parse (a rejection).
fn run(name: &str, alg: Algorithm, compact: impl Fn(&[u8]) -> Option<[u8; 64]>) -> usize {
    let mut checked = 0;
    for g in suite(name).test_groups {
        let pk = h(g
            .public_key
            .uncompressed
            .as_deref()
            .or(g.public_key.pk.as_deref())
            .unwrap());
        for t in g.tests {
            if t.result == "acceptable" {
                continue;
            }
            let msg = h(&t.msg);
            let digest = sha256(&msg);
            let payload = if alg == Algorithm::Ed25519 {
                Payload::Message(&msg)
            } else {
                Payload::Digest(&digest)
            };
            let ok = compact(&h(&t.sig)).is_some_and(|sig| verify(alg, &pk, payload, &sig).is_ok());
            assert_eq!(ok, t.result == "valid", "{name} tcId {}", t.tc_id);
            checked += 1;
        }
    }
    checked
}

#[test]
fn wycheproof_secp256k1_bitcoin_low_s() {
    let n = run(
        "ecdsa_secp256k1_sha256_bitcoin_test.json",
        Algorithm::Secp256k1,
        |der| {
            secp256k1::ecdsa::Signature::from_der(der)
                .ok()
                .map(|s| s.serialize_compact())
        },
    );
    assert!(n > 400, "only {n} cases ran");
}

#[test]
fn wycheproof_p256() {
    let n = run("ecdsa_secp256r1_sha256_test.json", Algorithm::P256, |der| {
        p256::ecdsa::Signature::from_der(der)
            .ok()
            .map(|s| s.to_bytes().into())
    });
    assert!(n > 400, "only {n} cases ran");
}

#[test]
fn wycheproof_ed25519() {
    let n = run("ed25519_test.json", Algorithm::Ed25519, |sig| {
        sig.try_into().ok()
    });
    assert!(n > 100, "only {n} cases ran");
}

/// BIP-340: every vector with a secret key signs to the published signature (with its aux
/// randomness), and every vector verifies or fails as published. Rows whose message is not
/// 32 bytes (15-18) need variable-length messages, which we never sign: skipped, and counted.
#[test]
fn bip340_schnorr_vectors() {
    let text = include_str!("vectors/bitcoin/bip340-test-vectors.csv");
    let (mut signed, mut verified, mut skipped) = (0, 0, 0);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let msg = h(f[4]);
        let Ok(msg) = <[u8; 32]>::try_from(msg.as_slice()) else {
            skipped += 1;
            continue;
        };
        let pk: [u8; 32] = h(f[2]).try_into().unwrap();
        let sig: [u8; 64] = h(f[5]).try_into().unwrap();
        if !f[1].is_empty() {
            let key = SigningKey::from_secret_bytes(Algorithm::Secp256k1, &h(f[1])).unwrap();
            assert_eq!(key.x_only_public_key().unwrap(), pk, "vector {}", f[0]);
            let aux: [u8; 32] = h(f[3]).try_into().unwrap();
            assert_eq!(
                key.sign_schnorr(&msg, &aux).unwrap(),
                sig,
                "vector {}",
                f[0]
            );
            signed += 1;
        }
        let ok = strongroom_crypto::verify_schnorr(&pk, &msg, &sig).is_ok();
        assert_eq!(ok, f[6] == "TRUE", "vector {}: {}", f[0], f[7]);
        verified += 1;
    }
    assert_eq!((signed, verified, skipped), (4, 15, 4));
}

/// Schnorr signing is for secp256k1 keys only.
#[test]
fn schnorr_needs_secp256k1() {
    let key = SigningKey::from_secret_bytes(Algorithm::P256, &[7; 32]).unwrap();
    assert!(key.sign_schnorr(&[1; 32], &[0; 32]).is_err());
    assert!(
        key.sign_taproot_key_spend(&[1; 32], None, &[0; 32])
            .is_err()
    );
    assert!(key.x_only_public_key().is_err());
}

/// A decimal (as EIP-2333 prints keys) as 32 big-endian bytes.
fn decimal_be32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for d in s.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "overflow");
    }
    out
}

/// EIP-2333's four test cases: master key from the seed, then one child. A key's secret is
/// not exported, so each is compared through its public key (derived by blst from the
/// published secret).
#[test]
fn eip2333_test_cases() {
    let cases = [
        (
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
            "6083874454709270928345386274498605044986640685124978867557563392430687146096",
            0u32,
            "20397789859736650942317412262472558107875392172444076792671091975210932703118",
        ),
        (
            "3141592653589793238462643383279502884197169399375105820974944592",
            "29757020647961307431480504535336562678282505419141012933316116377660817309383",
            3_141_592_653,
            "25457201688850691947727629385191704516744796114925897962676248250929345014287",
        ),
        (
            "0099FF991111002299DD7744EE3355BBDD8844115566CC55663355668888CC00",
            "27580842291869792442942448775674722299803720648445448686099262467207037398656",
            4_294_967_295,
            "29358610794459428860402234341874281240803786294062035874021252734817515685787",
        ),
        (
            "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3",
            "19022158461524446591288038168518313374041767046816487870552872741050760015818",
            42,
            "31372231650479070279774297061823572166496564838472787488249775572789064611981",
        ),
    ];
    for (seed, master, index, child) in cases {
        let seed = strongroom_crypto::HdSeed::from_bytes(&h(seed)).unwrap();
        let expect = |dec: &str| {
            SigningKey::from_secret_bytes(Algorithm::Bls12381, &decimal_be32(dec))
                .unwrap()
                .public_key()
                .to_vec()
        };
        assert_eq!(seed.eip2333_key(&[]).unwrap().public_key(), expect(master));
        assert_eq!(
            seed.eip2333_key(&[index]).unwrap().public_key(),
            expect(child)
        );
    }
}

/// BLS: a signature verifies under its key and no other, over its message only; the key's
/// public part is a 48-byte G1 point; generic signing and Schnorr refuse BLS keys.
#[test]
fn bls_signatures_verify_and_bind_key_and_message() {
    let a = SigningKey::generate(Algorithm::Bls12381, &strongroom_crypto::OsEntropy).unwrap();
    let b = SigningKey::generate(Algorithm::Bls12381, &strongroom_crypto::OsEntropy).unwrap();
    assert_eq!(a.public_key().len(), 48);
    let sig = a.sign_bls(b"signing root").unwrap();
    strongroom_crypto::verify_bls(a.public_key(), b"signing root", &sig).unwrap();
    assert!(strongroom_crypto::verify_bls(b.public_key(), b"signing root", &sig).is_err());
    assert!(strongroom_crypto::verify_bls(a.public_key(), b"signing rooT", &sig).is_err());
    // Deterministic: the same message gives the same signature.
    assert_eq!(a.sign_bls(b"signing root").unwrap(), sig);
    assert!(a.sign(Payload::Message(b"x")).is_err());
    assert!(a.sign_schnorr(&[0; 32], &[0; 32]).is_err());
    // Not a point in the subgroup: refused as a key.
    assert!(strongroom_crypto::verify_bls(&[0xc0; 48], b"m", &sig).is_err());
    // The scalar 0 and the group order are not keys.
    assert!(SigningKey::from_secret_bytes(Algorithm::Bls12381, &[0; 32]).is_err());
    let order = h("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001");
    assert!(SigningKey::from_secret_bytes(Algorithm::Bls12381, &order).is_err());
}

/// EIP-2335's test keystores (scrypt and PBKDF2) decrypt, with the EIP's password (whose
/// fraktur letters NFKD-normalise to ASCII), to the EIP's secret; a wrong password fails the
/// checksum; hostile parameters are refused before any work.
#[test]
fn eip2335_test_keystores() {
    let password = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
    let secret = h("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
    let expected = SigningKey::from_secret_bytes(Algorithm::Bls12381, &secret).unwrap();
    for file in ["scrypt", "pbkdf2"] {
        let path = format!(
            "{}/tests/vectors/eip2335/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let ks = std::fs::read(&path).unwrap();
        let key = strongroom_crypto::decrypt_eip2335(&ks, password).unwrap();
        assert_eq!(key.public_key(), expected.public_key(), "{file}");
        assert_eq!(
            hex::encode(key.public_key()),
            "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07"
        );
        // The normalised password is the same key; another is not.
        assert!(strongroom_crypto::decrypt_eip2335(&ks, "testpassword\u{1F511}").is_ok());
        assert_eq!(
            strongroom_crypto::decrypt_eip2335(&ks, "testpassword").unwrap_err(),
            strongroom_crypto::Error::Unseal
        );
    }
    let scrypt = std::fs::read_to_string(format!(
        "{}/tests/vectors/eip2335/scrypt.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // 2^30 rounds of 8 KiB: 8 GiB of memory. Refused, not attempted.
    let hostile = scrypt.replace("262144", "1073741824");
    assert_eq!(
        strongroom_crypto::decrypt_eip2335(hostile.as_bytes(), "x").unwrap_err(),
        strongroom_crypto::Error::InvalidKeystore
    );
    assert!(strongroom_crypto::decrypt_eip2335(b"{}", "x").is_err());
    // Tiny memory but 2^29 lanes (64 GiB in one allocation, or years of work): refused.
    let lanes = scrypt
        .replace("\"n\": 262144", "\"n\": 2")
        .replace("\"r\": 8", "\"r\": 1")
        .replace("\"p\": 1", "\"p\": 536870911");
    assert!(lanes.contains("536870911"));
    assert_eq!(
        strongroom_crypto::decrypt_eip2335(lanes.as_bytes(), "x").unwrap_err(),
        strongroom_crypto::Error::InvalidKeystore
    );
}

#[test]
fn eip2335_encryption_reproduces_the_test_keystores() {
    let password = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
    let secret = h("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
    let key = SigningKey::from_secret_bytes(Algorithm::Bls12381, &secret).unwrap();
    for (file, kdf) in [
        ("scrypt", strongroom_crypto::Eip2335Kdf::Scrypt),
        ("pbkdf2", strongroom_crypto::Eip2335Kdf::Pbkdf2),
    ] {
        let path = format!(
            "{}/tests/vectors/eip2335/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let vector: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let c = &vector["crypto"];
        // The vector's salt and IV as the "random" bytes: the same ciphertext and checksum.
        let mut random = [0u8; strongroom_crypto::EIP2335_RANDOM_LEN];
        random[..32].copy_from_slice(&h(c["kdf"]["params"]["salt"].as_str().unwrap()));
        random[32..48].copy_from_slice(&h(c["cipher"]["params"]["iv"].as_str().unwrap()));
        let made = strongroom_crypto::encrypt_eip2335(
            &key,
            password,
            kdf,
            vector["path"].as_str().unwrap(),
            &random,
        )
        .unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&made).unwrap();
        assert_eq!(ours["crypto"], vector["crypto"], "{file}");
        assert_eq!(ours["pubkey"], vector["pubkey"]);
        assert_eq!(ours["version"], 4);
        assert_eq!(ours["uuid"].as_str().unwrap().len(), 36);
        let back = strongroom_crypto::decrypt_eip2335(&made, password).unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }
    // Only validator keys go into keystores.
    let ed = SigningKey::from_secret_bytes(Algorithm::Ed25519, &[7; 32]).unwrap();
    assert!(
        strongroom_crypto::encrypt_eip2335(
            &ed,
            "x",
            strongroom_crypto::Eip2335Kdf::Pbkdf2,
            "",
            &[0; 64]
        )
        .is_err()
    );
}

/// Wycheproof's ML-DSA-65 verification suite (FIPS 204): every case, with its context string,
/// verifies or fails as published; the cases with the empty context (how strongroom signs)
/// go through the generic `verify` too, and the SPKI encoding matches the suite's DER.
#[test]
fn wycheproof_ml_dsa_65() {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MlSuite {
        test_groups: Vec<MlGroup>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MlGroup {
        public_key: String,
        public_key_der: Option<String>,
        tests: Vec<MlCase>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MlCase {
        tc_id: u32,
        msg: String,
        ctx: Option<String>,
        sig: String,
        result: String,
    }
    let path = format!(
        "{}/tests/vectors/wycheproof/mldsa_65_verify_test.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let suite: MlSuite = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut checked, mut generic, mut der) = (0, 0, 0);
    for g in suite.test_groups {
        let pk = h(&g.public_key);
        if let Some(d) = &g.public_key_der
            && pk.len() == 1952
        {
            assert_eq!(
                strongroom_crypto::spki_der(Algorithm::MlDsa65, &pk).unwrap(),
                h(d)
            );
            der += 1;
        }
        for t in g.tests {
            assert_ne!(t.result, "acceptable", "tcId {}", t.tc_id);
            let (msg, sig) = (h(&t.msg), h(&t.sig));
            let ctx = t.ctx.as_deref().map(h).unwrap_or_default();
            let ok = strongroom_crypto::verify_ml_dsa_65(&pk, &msg, &ctx, &sig).is_ok();
            assert_eq!(ok, t.result == "valid", "tcId {}", t.tc_id);
            if ctx.is_empty() {
                let via = verify(Algorithm::MlDsa65, &pk, Payload::Message(&msg), &sig).is_ok();
                assert_eq!(via, ok, "tcId {} through verify", t.tc_id);
                generic += 1;
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 210);
    assert!(generic > 150 && der > 0, "{generic} {der}");
}

/// ML-DSA-65 keys: deterministic signatures that verify, refused payload kinds, and a key
/// rebuilt from its seed is the same key.
#[test]
fn ml_dsa_65_keys_sign_messages_and_refuse_digests() {
    let seed = [7u8; 32];
    let key = SigningKey::from_secret_bytes(Algorithm::MlDsa65, &seed).unwrap();
    assert_eq!(key.public_key().len(), 1952);
    let sig = key.sign(Payload::Message(b"post-quantum")).unwrap();
    assert_eq!(sig.bytes.len(), 3309);
    assert!(sig.der.is_none() && sig.recovery_id.is_none());
    verify(
        Algorithm::MlDsa65,
        key.public_key(),
        Payload::Message(b"post-quantum"),
        &sig.bytes,
    )
    .unwrap();
    assert!(
        verify(
            Algorithm::MlDsa65,
            key.public_key(),
            Payload::Message(b"post-quantun"),
            &sig.bytes
        )
        .is_err()
    );
    // Deterministic: the same message gives the same signature.
    assert_eq!(key.sign(Payload::Message(b"post-quantum")).unwrap(), sig);
    assert!(key.sign(Payload::Digest(&[1; 32])).is_err());
    assert!(sig.compact().is_err());
    let again = SigningKey::from_secret_bytes(Algorithm::MlDsa65, &seed).unwrap();
    assert_eq!(again.public_key(), key.public_key());
}
