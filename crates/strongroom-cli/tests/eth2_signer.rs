//! The Ethereum remote-signing API end to end, on a dev node's eth2 listener: the requests of
//! the specification's examples are signed over the signing roots it publishes, and py_ecc
//! verifies the signatures; slashable duties are refused (412) — also when 64 conflicting
//! attestations race; a wrong signingRoot, an unknown key, a malformed body, another chain and
//! a voluntary exit are refused with their codes; every request is audited.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

fn examples() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../strongroom-chains/tests/data/remote-signing-examples.json"
    ))
    .unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn signer() -> (tempfile::TempDir, Node, String) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev_eth2(&dir.path().join("vault"));
    let pubkey = derive_validators(&node, dir.path());
    (dir, node, pubkey)
}

/// Derives two validator keys from ABANDON: the first one's public key.
fn derive_validators(node: &Node, dir: &std::path::Path) -> String {
    let token = node.dev_token();
    let words = dir.join("words");
    std::fs::write(&words, ABANDON).unwrap();
    let derived = node
        .cli(
            Some(&token),
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
    derived["created"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An attestation request (the specification's example) with this source, target and block
/// root, and no signing root.
fn attestation(source: u64, target: u64, root: u8) -> String {
    let mut req = examples()["ATTESTATION"].clone();
    req.as_object_mut().unwrap().remove("signingRoot");
    req["attestation"]["source"]["epoch"] = source.to_string().into();
    req["attestation"]["target"]["epoch"] = target.to_string().into();
    req["attestation"]["beacon_block_root"] = format!("0x{}", hex::encode([root; 32])).into();
    req.to_string()
}

#[test]
fn duties_are_signed_over_the_computed_root_and_slashing_is_refused() {
    let (dir, node, pubkey) = signer();
    let ex = examples();
    let sign_path = format!("/api/v1/eth2/sign/{pubkey}");

    assert_eq!(
        node.eth2("GET", "/upcheck", None, false),
        (200, "OK".into())
    );
    let (status, keys) = node.eth2("GET", "/api/v1/eth2/publicKeys", None, true);
    assert_eq!(status, 200);
    let keys: Vec<String> = serde_json::from_str(&keys).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&pubkey));

    // Every example request (but the exit) is signed over the root the specification
    // publishes; py_ecc verifies each signature. The block examples are all at slot 0: the
    // first is signed, another block at that slot is slashable (412), the same block again
    // (Capella's and Deneb's headers are one block) is signed again.
    let mut verify = Vec::new();
    let mut first_block: Option<Value> = None;
    for (name, request) in &ex {
        if ["VOLUNTARY_EXIT", "VALIDATOR_REGISTRATION", "DEPOSIT"].contains(&name.as_str()) {
            continue;
        }
        let (status, body) = node.eth2("POST", &sign_path, Some(&request.to_string()), true);
        if name.starts_with("BLOCK") {
            let root = request["signingRoot"].clone();
            let expected = match &first_block {
                None => {
                    first_block = Some(root);
                    200
                }
                Some(r) if *r == root => 200,
                Some(_) => 412,
            };
            assert_eq!(status, expected, "{name}: {body}");
            if status != 200 {
                continue;
            }
        }
        assert_eq!(status, 200, "{name}: {body}");
        let sig = serde_json::from_str::<Value>(&body).unwrap()["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        verify.push(
            json!({"public_key": pubkey, "message": request["signingRoot"],
                           "signature": sig}),
        );
    }
    assert!(verify.len() >= 8, "{verify:?}");
    let o = oracle("eth2.py", &json!({"verify": verify}));
    assert!(
        o["verified"].as_array().unwrap().iter().all(|v| v == true),
        "{o}"
    );

    // The same attestation again: allowed, the same (deterministic) signature, as text when
    // JSON is not asked for.
    let att = ex["ATTESTATION"].clone();
    let (status, text) = node.eth2("POST", &sign_path, Some(&att.to_string()), false);
    assert_eq!(status, 200);
    let first = verify
        .iter()
        .find(|v| v["message"] == att["signingRoot"])
        .unwrap();
    assert_eq!(text, first["signature"].as_str().unwrap());

    // A double vote (same target, another block root), and a surrounding vote: 412.
    let mut double = att.clone();
    double["attestation"]["beacon_block_root"] = format!("0x{}", "11".repeat(32)).into();
    double.as_object_mut().unwrap().remove("signingRoot");
    assert_eq!(
        node.eth2("POST", &sign_path, Some(&double.to_string()), true)
            .0,
        412
    );
    let source: u64 = att["attestation"]["source"]["epoch"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let target: u64 = att["attestation"]["target"]["epoch"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut surround = double.clone();
    surround["attestation"]["source"]["epoch"] = source.saturating_sub(1).to_string().into();
    surround["attestation"]["target"]["epoch"] = (target + 1).to_string().into();
    if source > 0 {
        assert_eq!(
            node.eth2("POST", &sign_path, Some(&surround.to_string()), true)
                .0,
            412
        );
    }
    // Another block at a signed slot.
    let mut block = ex["BLOCK_V2 (DENEB)"].clone();
    block["beacon_block"]["block_header"]["body_root"] = format!("0x{}", "22".repeat(32)).into();
    block.as_object_mut().unwrap().remove("signingRoot");
    let (status, body) = node.eth2("POST", &sign_path, Some(&block.to_string()), true);
    assert_eq!((status, body.contains("slashable")), (412, true), "{body}");

    // Refusals with their codes.
    let code = |r: (u16, String)| {
        (
            r.0,
            serde_json::from_str::<Value>(&r.1).unwrap_or(Value::Null)["error"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let mut lie = ex["RANDAO_REVEAL"].clone();
    lie["signingRoot"] = format!("0x{}", "33".repeat(32)).into();
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(&lie.to_string()), true)),
        (400, "signing_root_mismatch".into())
    );
    assert_eq!(
        code(node.eth2(
            "POST",
            &format!("/api/v1/eth2/sign/0x{}", "a0".repeat(48)),
            Some(&att.to_string()),
            true
        ))
        .0,
        404
    );
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some("{not json"), true)),
        (400, "malformed_json".into())
    );
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(r#"{"type": "ANYTHING"}"#), true)),
        (400, "invalid_signing_request".into())
    );
    assert_eq!(
        code(node.eth2(
            "POST",
            &sign_path,
            Some(&ex["VOLUNTARY_EXIT"].to_string()),
            true
        )),
        (403, "exit_not_authorized".into())
    );
    // A deposit names who may withdraw the stake; a builder registration must name this key.
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(&ex["DEPOSIT"].to_string()), true)),
        (403, "deposit_not_authorized".into())
    );
    // (Its published root is for a minimal-configuration chain; this listener is mainnet's.)
    let mut registration = ex["VALIDATOR_REGISTRATION"].clone();
    registration.as_object_mut().unwrap().remove("signingRoot");
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(&registration.to_string()), true)),
        (400, "pubkey_mismatch".into())
    );
    registration["validator_registration"]["pubkey"] = pubkey.clone().into();
    assert_eq!(
        node.eth2("POST", &sign_path, Some(&registration.to_string()), true)
            .0,
        200
    );
    let mut elsewhere = ex["RANDAO_REVEAL"].clone();
    elsewhere["fork_info"]["genesis_validators_root"] = format!("0x{}", "44".repeat(32)).into();
    elsewhere.as_object_mut().unwrap().remove("signingRoot");
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(&elsewhere.to_string()), true)),
        (409, "wrong_chain".into())
    );

    // Validator keys sign only while hot: frozen, they stop at once.
    let token = node.dev_token();
    let listed = node
        .cli(Some(&token), &["--json", "key", "list"])
        .ok()
        .json();
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| format!("0x{}", k["public_key"].as_str().unwrap()) == pubkey)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An exit is signed only once a quorum authorised it, for that epoch only (dev mode
    // approves at once; production files a request needing an approval).
    let exit = ex["VOLUNTARY_EXIT"].clone();
    let authorized = node
        .cli(
            Some(&token),
            &[
                "--json",
                "eth2",
                "authorize-exit",
                "--key",
                &id,
                "--epoch",
                "119",
            ],
        )
        .ok()
        .json();
    assert_eq!(authorized["authorized"], true);
    let (status, body) = node.eth2("POST", &sign_path, Some(&exit.to_string()), true);
    assert_eq!(status, 200, "{body}");
    let mut later = exit.clone();
    later["voluntary_exit"]["epoch"] = "120".into();
    later.as_object_mut().unwrap().remove("signingRoot");
    assert_eq!(
        code(node.eth2("POST", &sign_path, Some(&later.to_string()), true)),
        (403, "exit_not_authorized".into())
    );
    node.cli(Some(&token), &["--json", "key", "temperature", &id, "cold"])
        .ok();
    assert_eq!(
        code(node.eth2(
            "POST",
            &sign_path,
            Some(&ex["RANDAO_REVEAL"].to_string()),
            true
        )),
        (409, "key_not_hot".into())
    );

    // Every request was audited, refusals with their codes.
    let audit = dev_audit_events(&dir.path().join("vault"));
    let rows: Vec<(String, String)> = audit
        .prepare("SELECT operation, COALESCE(code, '') FROM audit WHERE actor = 'eth2-listener'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        rows.iter()
            .any(|(op, c)| op == "eth2.sign" && c == "slashable"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(op, c)| op == "eth2.upcheck" && c.is_empty())
    );
    assert!(
        rows.iter()
            .filter(|(op, c)| op == "eth2.sign" && c.is_empty())
            .count()
            >= 8
    );
}

/// 64 conflicting attestations (one target, 64 different block roots) sent at once: exactly
/// one is signed.
#[test]
fn racing_conflicting_attestations_yield_one_signature() {
    let (_dir, node, pubkey) = signer();
    let template = examples()["ATTESTATION"].clone();
    let sign_path = format!("/api/v1/eth2/sign/{pubkey}");
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64u8)
            .map(|i| {
                let mut req = template.clone();
                req.as_object_mut().unwrap().remove("signingRoot");
                req["attestation"]["target"]["epoch"] = "100".into();
                req["attestation"]["source"]["epoch"] = "99".into();
                req["attestation"]["beacon_block_root"] =
                    format!("0x{}", hex::encode([i; 32])).into();
                let (node, path) = (&node, &sign_path);
                s.spawn(move || node.eth2("POST", path, Some(&req.to_string()), true).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|s| **s == 412).count(),
        63,
        "{results:?}"
    );
}

/// `kill -9` right after a signature was answered, then a restart: the conflicting vote and a
/// surrounding one are refused, the identical one signed again.
#[test]
fn acknowledged_duties_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev_eth2(&data);
    let pubkey = derive_validators(&node, dir.path());
    let path = format!("/api/v1/eth2/sign/{pubkey}");
    let (status, first) = node.eth2("POST", &path, Some(&attestation(5, 6, 1)), false);
    assert_eq!(status, 200);
    node.kill9();
    let node = Node::dev_eth2(&data);
    assert_eq!(
        node.eth2("POST", &path, Some(&attestation(5, 6, 2)), false)
            .0,
        412
    );
    assert_eq!(
        node.eth2("POST", &path, Some(&attestation(4, 7, 2)), false)
            .0,
        412
    );
    assert_eq!(
        node.eth2("POST", &path, Some(&attestation(5, 6, 1)), false),
        (200, first)
    );
}

#[path = "../../strongroom-storage/tests/support/pg.rs"]
mod pg;

/// Two nodes on one PostgreSQL database, 64 conflicting attestations sent at once, half to
/// each node's listener: exactly one is signed.
#[test]
fn racing_across_two_nodes_yields_one_signature() {
    let server = pg::PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let a = Node::dev_eth2_postgres(&a_data, &server.url);
    std::fs::create_dir_all(&b_data).unwrap();
    for f in ["dev-unseal-share", "dev-token"] {
        std::fs::copy(a_data.join(f), b_data.join(f)).unwrap();
    }
    let b = Node::dev_eth2_postgres(&b_data, &server.url);
    let pubkey = derive_validators(&a, dir.path());
    let path = format!("/api/v1/eth2/sign/{pubkey}");
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64u8)
            .map(|i| {
                let node = if i % 2 == 0 { &a } else { &b };
                let path = &path;
                s.spawn(move || {
                    node.eth2("POST", path, Some(&attestation(99, 100, i)), true)
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|s| **s == 412).count(),
        63,
        "{results:?}"
    );
    // Deleted through node A's Keymanager API, the key signs nothing more on node B, at once:
    // the delete's slashing data holds every attestation either node signed.
    assert_eq!(
        b.eth2("POST", &path, Some(&attestation(100, 101, 0)), true)
            .0,
        200
    );
    let root = a.dev_token();
    let km = a
        .cli(
            Some(&root),
            &["--json", "token", "create", "--scope", "keymanager"],
        )
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, deleted) = a.http(
        "DELETE",
        "/eth/v1/keystores",
        Some(&km),
        Some(&json!({"pubkeys": [pubkey]}).to_string()),
    );
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["data"][0]["status"], "deleted");
    let data: Value =
        serde_json::from_str(deleted["slashing_protection"].as_str().unwrap()).unwrap();
    let targets: Vec<&str> = data["data"][0]["signed_attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target_epoch"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["100", "101"]);
    assert_eq!(
        b.eth2("POST", &path, Some(&attestation(101, 102, 0)), true)
            .0,
        409
    );
}
