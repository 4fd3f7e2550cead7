//! Signing-key rotation: a successor of the same algorithm and label, one version up, naming
//! its predecessor; the predecessor turns cold (its public key kept, its signatures still
//! verify, and it signs no more without a quorum); wallets' seeds and validator keys refuse.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn a_rotated_key_has_a_successor_and_stops_signing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    let old = node
        .cli(
            t,
            &[
                "--json",
                "key",
                "create",
                "--algorithm",
                "ed25519",
                "--label",
                "treasury",
            ],
        )
        .ok()
        .json();
    let old_id = old["id"].as_str().unwrap().to_owned();
    let sign =
        |id: &str, msg: &str| node.cli(t, &["--json", "sign", "--key", id, "--message", msg]);
    let verify = |pk: &str, msg: &str, sig: &str| {
        strongroom_crypto::verify(
            strongroom_core::Algorithm::Ed25519,
            &hex::decode(pk).unwrap(),
            strongroom_crypto::Payload::Message(&hex::decode(msg).unwrap()),
            &hex::decode(sig).unwrap(),
        )
        .unwrap();
    };
    let before = sign(&old_id, "01").ok().json();

    let new = node
        .cli(t, &["--json", "key", "rotate", &old_id])
        .ok()
        .json();
    let new_id = new["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(new["version"], 2, "{new}");
    assert_eq!(new["predecessor"], old_id.as_str());
    assert_eq!(
        (new["algorithm"].as_str(), new["label"].as_str()),
        (Some("ed25519"), Some("treasury"))
    );
    assert_ne!(new["public_key"], old["public_key"]);

    // The predecessor: kept, cold, its old signature still good; it signs no more.
    let shown = node.cli(t, &["--json", "key", "show", &old_id]).ok().json();
    assert_eq!(
        (shown["temperature"].as_str(), shown["state"].as_str()),
        (Some("cold"), Some("active"))
    );
    verify(
        old["public_key"].as_str().unwrap(),
        "01",
        before["signature"].as_str().unwrap(),
    );
    assert_eq!(sign(&old_id, "02").error_code(), "key_cold");
    let after = sign(&new_id, "02").ok().json();
    verify(
        new["public_key"].as_str().unwrap(),
        "02",
        after["signature"].as_str().unwrap(),
    );
    // And again: version 3, succeeding version 2.
    let third = node
        .cli(t, &["--json", "key", "rotate", &new_id])
        .ok()
        .json();
    assert_eq!(
        (third["version"].as_u64(), third["predecessor"].as_str()),
        (Some(3), Some(new_id.as_str()))
    );
    // A validator key is bound to its validator: not rotated in place.
    let bls = node
        .cli(t, &["--json", "key", "create", "--algorithm", "bls12-381"])
        .ok()
        .json();
    assert_eq!(
        node.cli(t, &["--json", "key", "rotate", bls["id"].as_str().unwrap()])
            .error_code(),
        "rotation_not_supported"
    );
    node.stop();
    let events = dev_audit_events(&data);
    let rotations = granted_details(&events, "key.rotate");
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert!(rotations[0].contains(&old_id) && rotations[0].contains(&new_id));
    audit_verify(&data).ok();
}
