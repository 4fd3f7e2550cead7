//! `Idempotency-Key`: a retried signing request gets the first answer again (marked as a
//! replay) and is not signed or counted twice; a key reused for another request is refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

/// POST with an Idempotency-Key: (status, replayed?, body).
fn post(node: &Node, token: &str, path: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "content-type: application/json",
            "-H",
            &format!("Idempotency-Key: {key}"),
            "--data-binary",
            &body.to_string(),
            &format!("{}{path}", node.addr),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let replayed = head
        .to_ascii_lowercase()
        .contains("idempotent-replayed: true");
    (
        status,
        replayed,
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn retried_signatures_are_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let w = node
        .cli(t, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_policy(
        &node,
        t,
        dir.path(),
        &w,
        &json!({"version": 1, "max_fee": "100000000000000", "rules": [
            {"name": "out", "effect": "allow", "call": "transfer",
             "daily_limit": "1000000000000000000"}]}),
    )
    .ok();
    let tx = |nonce: u64| {
        json!({"tx": {"type": "0x2", "chainId": "0x1", "nonce": format!("{nonce:#x}"),
            "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1",
            "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "value": "0x3e8"}})
    };
    let path = format!("/v1/wallets/{w}/eth/sign-tx");
    let (s1, r1, first) = post(&node, &token, &path, "pay-42", &tx(42));
    assert_eq!((s1, r1), (200, false), "{first}");
    let (s2, r2, again) = post(&node, &token, &path, "pay-42", &tx(42));
    assert_eq!((s2, r2), (200, true));
    assert_eq!(again, first);
    // Counted once: 1000 wei of value and one fee cap of 21 000 wei.
    let test_path = dir.path().join("t.json");
    std::fs::write(&test_path, tx(43)["tx"].to_string()).unwrap();
    let d = node
        .cli(
            t,
            &[
                "--json",
                "policy",
                "test",
                "--wallet",
                &w,
                "--tx",
                test_path.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(d["spent_24h"], "22000");
    // The same key for another request is refused; another key signs anew.
    let (s3, _, reused) = post(&node, &token, &path, "pay-42", &tx(43));
    assert_eq!(
        (s3, reused["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let (s4, r4, other) = post(&node, &token, &path, "pay-43", &tx(43));
    assert_eq!((s4, r4), (200, false));
    assert_ne!(other["raw"], first["raw"]);
    // Keys are 1 to 128 visible characters.
    let (s5, _, bad) = post(&node, &token, &path, &"k".repeat(129), &tx(44));
    assert_eq!(
        (s5, bad["error"]["code"].as_str()),
        (400, Some("invalid_idempotency_key"))
    );
    node.stop();
    audit_verify(&dir.path().join("vault")).ok();
}
