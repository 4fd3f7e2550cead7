//! The Ethereum Keymanager API end to end on a dev node with the remote signer: a key-manager
//! token lists, imports and deletes its domain's validator keys and nothing else; a delete
//! makes the key cold at once (the remote signer stops signing for it) and returns its
//! slashing data, again on a second delete; an import takes each keystore's own password,
//! reports duplicates and failures one by one, and records the slashing data it carries, which
//! the remote signer then enforces; a cold key exported as an EIP-2335 keystore imports into
//! another domain.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const GVR: &str = "0x04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673";
const VECTOR_PUBKEY: &str = "0x9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";
const VECTOR_PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";

/// An attestation request (the specification's example) with this source and target.
fn attestation(source: u64, target: u64) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../strongroom-chains/tests/data/remote-signing-examples.json"
    ))
    .unwrap();
    let mut req = serde_json::from_str::<Value>(&text).unwrap()["ATTESTATION"].clone();
    req.as_object_mut().unwrap().remove("signingRoot");
    req["attestation"]["source"]["epoch"] = source.to_string().into();
    req["attestation"]["target"]["epoch"] = target.to_string().into();
    req.to_string()
}

fn vector(file: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../strongroom-crypto/tests/vectors/eip2335/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn statuses(v: &Value) -> Vec<&str> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect()
}

#[test]
fn keymanager_api_lists_imports_and_deletes_validator_keys() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev_eth2(&dir.path().join("vault"));
    let root = node.dev_token();
    let r = Some(root.as_str());
    let words = dir.path().join("words");
    std::fs::write(&words, ABANDON).unwrap();
    let derived = node
        .cli(
            r,
            &[
                "--json",
                "eth2",
                "derive",
                "--mnemonic-file",
                words.to_str().unwrap(),
                "--count",
                "2",
            ],
        )
        .ok()
        .json();
    let pk = |i: usize| derived["created"][i]["public_key"].as_str().unwrap();
    let id0 = derived["created"][0]["id"].as_str().unwrap();
    let issued = node
        .cli(r, &["--json", "token", "create", "--scope", "keymanager"])
        .ok()
        .json();
    assert_eq!(issued["scope"], "keymanager");
    let km = issued["token"].as_str().unwrap();
    let app = node.cli(r, &["--json", "token", "create"]).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The domain's active keys, with their EIP-2334 paths.
    let (status, listed) = node.http("GET", "/eth/v1/keystores", Some(km), None);
    assert_eq!(status, 200, "{listed}");
    let mut expected = vec![
        json!({"validating_pubkey": pk(0), "derivation_path": "m/12381/3600/0/0/0", "readonly": false}),
        json!({"validating_pubkey": pk(1), "derivation_path": "m/12381/3600/1/0/0", "readonly": false}),
    ];
    expected.sort_by_key(|k| k["validating_pubkey"].as_str().unwrap().to_owned());
    assert_eq!(listed["data"], json!(expected), "sorted by public key");
    // A key-manager token does nothing else (it cannot sign), and nothing else manages keys.
    let (status, _) = node.http("GET", "/v1/keys", Some(km), None);
    assert_eq!(status, 403);
    let (status, _) = node.http(
        "POST",
        "/v1/keys/ignored/sign",
        Some(km),
        Some(r#"{"message":"00"}"#),
    );
    assert!(status == 403 || status == 404, "{status}");
    let (status, body) = node.http("GET", "/eth/v1/keystores", Some(&app), None);
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert!(
        body["message"].is_string(),
        "the Keymanager error shape: {body}"
    );
    let (status, body) = node.http("GET", "/eth/v1/keystores", None, None);
    assert_eq!(status, 401);
    assert!(body["message"].is_string(), "{body}");

    // Key 0 attests; then it is deleted (with a key nobody knows).
    let sign = |pubkey: &str, source: u64, target: u64| {
        node.eth2(
            "POST",
            &format!("/api/v1/eth2/sign/{pubkey}"),
            Some(&attestation(source, target)),
            true,
        )
        .0
    };
    assert_eq!(sign(pk(0), 1, 2), 200);
    let unknown = format!("0x{}", "ab".repeat(48));
    let delete = |keys: Value| {
        node.http(
            "DELETE",
            "/eth/v1/keystores",
            Some(km),
            Some(&json!({"pubkeys": keys}).to_string()),
        )
    };
    let (status, deleted) = delete(json!([pk(0), unknown]));
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(statuses(&deleted), ["deleted", "not_found"]);
    let interchange: Value =
        serde_json::from_str(deleted["slashing_protection"].as_str().unwrap()).unwrap();
    assert_eq!(interchange["metadata"]["genesis_validators_root"], GVR);
    assert_eq!(interchange["metadata"]["interchange_format_version"], "5");
    assert_eq!(interchange["data"].as_array().unwrap().len(), 1);
    assert_eq!(interchange["data"][0]["pubkey"], pk(0));
    assert_eq!(
        (
            &interchange["data"][0]["signed_attestations"][0]["source_epoch"],
            &interchange["data"][0]["signed_attestations"][0]["target_epoch"]
        ),
        (&json!("1"), &json!("2"))
    );
    // It signs no more, at once; it is cold, not listed, and still in the vault.
    assert_eq!(sign(pk(0), 2, 3), 409);
    assert_eq!(sign(pk(1), 2, 3), 200);
    let (_, listed) = node.http("GET", "/eth/v1/keystores", Some(km), None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["validating_pubkey"], pk(1));
    let shown = node.cli(r, &["--json", "key", "show", id0]).ok().json();
    assert_eq!(shown["temperature"], "cold");
    // A second delete: not active, and the same slashing data.
    let (_, again) = delete(json!([pk(0)]));
    assert_eq!(statuses(&again), ["not_active"]);
    let second: Value =
        serde_json::from_str(again["slashing_protection"].as_str().unwrap()).unwrap();
    assert_eq!(second["data"], interchange["data"]);
    let (status, bad) = delete(json!(["0x12"]));
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_pubkey"))
    );
    // A deleted key is not promoted in bulk (it may be running elsewhere now).
    assert_eq!(
        node.cli(r, &["--json", "eth2", "promote", "--to", "hot"])
            .error_code(),
        "invalid_count"
    );

    // Import: each keystore with its own password; a wrong one fails alone; a second keystore
    // of one key is a duplicate; the slashing data of this request's keys is recorded, not
    // that of others.
    let import = |token: &str, keystores: Vec<String>, passwords: Vec<&str>, sp: Option<Value>| {
        let mut body = json!({"keystores": keystores, "passwords": passwords});
        if let Some(sp) = sp {
            body["slashing_protection"] = sp.to_string().into();
        }
        node.http(
            "POST",
            "/eth/v1/keystores",
            Some(token),
            Some(&body.to_string()),
        )
    };
    let history = json!({
        "metadata": {"interchange_format_version": "5", "genesis_validators_root": GVR},
        "data": [
            {"pubkey": VECTOR_PUBKEY, "signed_blocks": [],
             "signed_attestations": [{"source_epoch": "5", "target_epoch": "10"}]},
            {"pubkey": pk(1), "signed_blocks": [],
             "signed_attestations": [{"source_epoch": "40", "target_epoch": "50"}]},
        ]
    });
    let (status, imported) = import(
        km,
        vec![
            vector("pbkdf2"),
            vector("scrypt"),
            vector("pbkdf2"),
            "not a keystore".into(),
        ],
        vec!["wrong password", VECTOR_PASSWORD, VECTOR_PASSWORD, "x"],
        Some(history),
    );
    assert_eq!(status, 200, "{imported}");
    assert_eq!(
        statuses(&imported),
        ["error", "imported", "duplicate", "error"]
    );
    assert!(imported["data"][0]["message"].is_string());
    // The imported key is active (the domain's new keys are hot) and protected by the
    // history that came with it: below it, refused (412); above, signed.
    let (_, listed) = node.http("GET", "/eth/v1/keystores", Some(km), None);
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["validating_pubkey"] == VECTOR_PUBKEY)
    );
    assert_eq!(sign(VECTOR_PUBKEY, 4, 9), 412);
    assert_eq!(sign(VECTOR_PUBKEY, 10, 11), 200);
    // Key 1's history was not this request's: key 1 still attests below it.
    assert_eq!(sign(pk(1), 3, 4), 200);
    // A held key again: a duplicate (a deleted key is made active again only by a quorum).
    let (_, dup) = import(km, vec![vector("scrypt")], vec![VECTOR_PASSWORD], None);
    assert_eq!(statuses(&dup), ["duplicate"]);
    let (status, _) = import(km, vec![vector("scrypt")], vec![], None);
    assert_eq!(status, 400);

    // The cold key 0 leaves as an EIP-2335 keystore (dev mode: no quorum to wait for) and
    // imports into another domain, with its slashing data, through that domain's token.
    node.cli(
        r,
        &["--json", "domain", "create", "other", "--new-keys", "hot"],
    )
    .ok();
    let km_other = node
        .cli(
            r,
            &[
                "--json",
                "token",
                "create",
                "--domain",
                "other",
                "--scope",
                "keymanager",
            ],
        )
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let password = dir.path().join("password");
    std::fs::write(&password, "moving key zero").unwrap();
    let out = dir.path().join("key0.json");
    node.cli(
        r,
        &[
            "--json",
            "eth2",
            "export",
            "--key",
            id0,
            "--password-file",
            password.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let exported = std::fs::read_to_string(&out).unwrap();
    let ks: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(format!("0x{}", ks["pubkey"].as_str().unwrap()), pk(0));
    assert_eq!(ks["path"], "m/12381/3600/0/0/0");
    assert_eq!(ks["crypto"]["kdf"]["function"], "scrypt");
    let (status, moved) = import(
        &km_other,
        vec![exported],
        vec!["moving key zero"],
        Some(interchange),
    );
    assert_eq!(
        (status, statuses(&moved)),
        (200, vec!["imported"]),
        "{moved}"
    );
    let (_, listed) = node.http("GET", "/eth/v1/keystores", Some(&km_other), None);
    assert_eq!(
        listed["data"],
        json!([{"validating_pubkey": pk(0), "derivation_path": "m/12381/3600/0/0/0", "readonly": false}])
    );
    let other = node
        .cli(r, &["--json", "slashing", "export", "--domain", "other"])
        .ok()
        .json();
    assert_eq!(other["data"].as_array().unwrap().len(), 1, "{other}");
    assert_eq!(other["data"][0]["pubkey"], pk(0));
    // A document that concerns none of the request's keys records nothing (nor pins the
    // domain to its chain).
    node.cli(r, &["--json", "domain", "create", "third"]).ok();
    let km_third = node
        .cli(
            r,
            &[
                "--json",
                "token",
                "create",
                "--domain",
                "third",
                "--scope",
                "keymanager",
            ],
        )
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bogus = json!({
        "metadata": {"interchange_format_version": "5",
                     "genesis_validators_root": format!("0x{}", "11".repeat(32))},
        "data": [{"pubkey": pk(1), "signed_blocks": [{"slot": "1"}], "signed_attestations": []}]
    });
    let (status, none) = import(&km_third, vec![], vec![], Some(bogus));
    assert_eq!((status, &none["data"]), (200, &json!([])), "{none}");
    assert_eq!(
        node.cli(r, &["--json", "slashing", "export", "--domain", "third"])
            .error_code(),
        "no_chain"
    );
    // Each domain's token sees its own keys only.
    let (_, mine) = node.http("GET", "/eth/v1/keystores", Some(km), None);
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["validating_pubkey"] != pk(0))
    );

    // Every call is audited under the token.
    let events = dev_audit_events(&dir.path().join("vault"));
    let count: i64 = events
        .query_row(
            "SELECT count(*) FROM audit WHERE operation LIKE 'keymanager.%' AND actor LIKE 'keymanager:%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(count >= 12, "{count}");
}
