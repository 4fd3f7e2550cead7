//! Policies of plain keys: only the listed application tokens sign with a key, at most so many
//! signatures per hour, counted in storage (so a restart does not reset them) and audited;
//! malformed policies and wallets are refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

#[test]
fn key_policies_name_tokens_and_rates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let r = Some(root.as_str());
    let key = node
        .cli(r, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = || node.cli(r, &["--json", "token", "create"]).ok().json();
    let (a, b) = (token(), token());
    let (a_tok, b_tok) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());

    // Without a policy, any token of the domain signs (the vault core's rule).
    let sign = |t: &str| {
        node.http(
            "POST",
            &format!("/v1/keys/{key}/sign"),
            Some(t),
            Some(&json!({"digest": "11".repeat(32)}).to_string()),
        )
    };
    assert_eq!(sign(b_tok).0, 200);
    let shown = node
        .cli(r, &["--json", "key", "policy", "show", &key])
        .ok()
        .json();
    assert_eq!(shown["version"], 0);

    // Only token A, twice an hour.
    let file = dir.path().join("key-policy.json");
    std::fs::write(
        &file,
        json!({"version": 1, "tokens": [a["id"]], "max_per_hour": 2, "max_per_day": 10})
            .to_string(),
    )
    .unwrap();
    let set = node
        .cli(
            r,
            &[
                "--json",
                "key",
                "policy",
                "set",
                &key,
                "--file",
                file.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(set["version"], 1);
    assert_eq!(set["policy"]["max_per_hour"], 2);
    let code = |res: (u16, Value)| (res.0, res.1["error"]["code"].as_str().map(str::to_owned));
    assert_eq!(code(sign(a_tok)), (200, None));
    assert_eq!(code(sign(a_tok)), (200, None));
    assert_eq!(
        code(sign(a_tok)),
        (403, Some("key_rate_exceeded".to_owned()))
    );
    assert_eq!(
        code(sign(b_tok)),
        (403, Some("key_policy_denied".to_owned()))
    );
    assert_eq!(
        code(sign(&root)),
        (403, Some("key_policy_denied".to_owned())),
        "a token list admits no one else"
    );
    // The count is stored: a restart does not reset it.
    node.stop();
    let node = Node::dev(&data);
    let again = node.http(
        "POST",
        &format!("/v1/keys/{key}/sign"),
        Some(a_tok),
        Some(&json!({"digest": "22".repeat(32)}).to_string()),
    );
    assert_eq!(code(again), (403, Some("key_rate_exceeded".to_owned())));

    // Malformed policies, and wallets (whose policies are of another kind), are refused.
    for bad in [
        json!({"version": 1, "tokens": ["nope"]}),
        json!({"version": 1, "max_per_hour": 0}),
        json!({"version": 1, "rules": []}),
    ] {
        std::fs::write(&file, bad.to_string()).unwrap();
        assert_eq!(
            node.cli(
                r,
                &[
                    "--json",
                    "key",
                    "policy",
                    "set",
                    &key,
                    "--file",
                    file.to_str().unwrap()
                ],
            )
            .error_code(),
            "invalid_policy",
            "{bad}"
        );
    }
    let wallet = node
        .cli(r, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(&file, json!({"version": 1}).to_string()).unwrap();
    assert_eq!(
        node.cli(
            r,
            &[
                "--json",
                "key",
                "policy",
                "set",
                &wallet,
                "--file",
                file.to_str().unwrap()
            ],
        )
        .error_code(),
        "wallet_policy"
    );

    // Refusals are audited with their codes (a refused spend of a rolling limit, wallet or
    // key, is `limit_exceeded`).
    let audit = dev_audit_events(&data);
    let codes: Vec<String> = audit
        .prepare("SELECT code FROM audit WHERE operation = 'key.sign' AND outcome <> 1")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(codes.iter().any(|c| c == "limit_exceeded"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "key_policy_denied"), "{codes:?}");
}
