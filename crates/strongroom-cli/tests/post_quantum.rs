//! ML-DSA-65 (FIPS 204) keys end to end, against an independent implementation (OpenSSL 4,
//! through pyca/cryptography): strongroom's signatures verify there, OpenSSL's verify here,
//! both derive the same public key from a seed, and a key signs again after a restart.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use strongroom_core::Algorithm;
use strongroom_crypto::{Payload, SigningKey};

#[test]
fn ml_dsa_65_keys_sign_and_openssl_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let r = Some(root.as_str());
    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert!(
        status["self_test"]["tests"]
            .as_array()
            .unwrap()
            .contains(&json!("ml-dsa-65")),
        "{status}"
    );
    let key = node
        .cli(r, &["--json", "key", "create", "--algorithm", "ml-dsa-65"])
        .ok()
        .json();
    let id = key["id"].as_str().unwrap().to_owned();
    let pk = key["public_key"].as_str().unwrap().to_owned();
    assert_eq!(pk.len(), 2 * 1952);
    let message = hex::encode(b"transfer 10 to the cold wallet");
    let sign = |node: &Node| {
        node.cli(r, &["--json", "sign", "--key", &id, "--message", &message])
            .ok()
            .json()["signature"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sig = sign(&node);
    assert_eq!(sig.len(), 2 * 3309);
    let verify = |message: &str, sig: &str| {
        oracle(
            "mldsa.py",
            &json!({"op": "verify", "public_key": pk, "message": message, "signature": sig}),
        )["valid"]
            .as_bool()
            .unwrap()
    };
    assert!(
        verify(&message, &sig),
        "OpenSSL refuses strongroom's signature"
    );
    assert!(!verify(
        &hex::encode(b"transfer 99 to the cold wallet"),
        &sig
    ));
    // A digest is not what an ML-DSA key signs.
    let digest = sha256_hex(b"x");
    assert_eq!(
        node.cli(r, &["--json", "sign", "--key", &id, "--digest", &digest])
            .error_code(),
        "wrong_payload"
    );
    node.stop();

    // After a restart the sealed key opens to the same key.
    let node = Node::dev(&data);
    let again = sign(&node);
    assert!(verify(&message, &again));
    node.stop();

    // The other way: OpenSSL's keys from chosen seeds are strongroom's keys from the same
    // seeds, and OpenSSL's (hedged) signatures verify here.
    for seed in [[0u8; 32], [0x5a; 32], core::array::from_fn(|i| i as u8)] {
        let theirs = oracle(
            "mldsa.py",
            &json!({"op": "sign", "seed": hex::encode(seed), "message": message}),
        );
        let ours = SigningKey::from_secret_bytes(Algorithm::MlDsa65, &seed).unwrap();
        assert_eq!(hex::encode(ours.public_key()), theirs["public_key"]);
        strongroom_crypto::verify(
            Algorithm::MlDsa65,
            ours.public_key(),
            Payload::Message(&hex::decode(&message).unwrap()),
            &hex::decode(theirs["signature"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
    }
}
