//! Wallet policies end to end on a dev node: a policy is judged on the decoded transaction;
//! deny lists, call rules and cooling-off refuse with the deciding rule audited; the rolling
//! daily limit is counted atomically, so concurrent signatures never overshoot it; the dry
//! run names the deciding rule; malformed policies are refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const EXCHANGE: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const THIEF: &str = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB";
const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const ETHER: u128 = 1_000_000_000_000_000_000;

fn policy(cooling_off: &str) -> Value {
    json!({
        "version": 1,
        "max_fee": "100000000000000",
        "cooling_off": cooling_off,
        "lists": {"exchanges": [EXCHANGE]},
        "deny": [THIEF],
        "rules": [
            {"name": "eth-to-exchanges", "effect": "allow", "call": "transfer",
             "to": "@exchanges", "max_amount": ETHER.to_string(),
             "daily_limit": (3 * ETHER / 2).to_string()},
            {"name": "no-approvals", "effect": "deny", "call": ["erc20.approve", "erc20.transferFrom"]},
            {"name": "usdc-big", "effect": "quorum", "approvals": 2, "call": "erc20.transfer",
             "token": USDC, "min_amount": "1000000000"}
        ]
    })
}

fn transfer(to: &str, wei: u128, nonce: u64) -> Value {
    json!({"type": "0x2", "chainId": "0x1", "nonce": format!("{nonce:#x}"), "gas": "0x5208",
           "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
           "to": to, "value": format!("{wei:#x}")})
}

#[test]
fn policies_decide_on_the_decoded_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    let w = node
        .cli(t, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = node
        .cli(t, &["--json", "policy", "show", "--wallet", &w])
        .ok()
        .json();
    assert_eq!(shown["version"], 0);
    assert!(
        shown["source"]
            .as_str()
            .unwrap()
            .contains("dev mode default")
    );

    let sign = |tx: &Value| {
        node.http(
            "POST",
            &format!("/v1/wallets/{w}/eth/sign-tx"),
            t,
            Some(&json!({"tx": tx}).to_string()),
        )
    };
    let test = |tx: &Value| {
        let path = dir.path().join("test-tx.json");
        std::fs::write(&path, tx.to_string()).unwrap();
        node.cli(
            t,
            &[
                "--json",
                "policy",
                "test",
                "--wallet",
                &w,
                "--tx",
                path.to_str().unwrap(),
            ],
        )
        .ok()
        .json()
    };
    let set = |p: &Value| set_policy(&node, t, dir.path(), &w, p);

    // A new list entry cools off: the exchange is not yet a destination.
    let v1 = set(&policy("1h")).ok().json();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["cooling"][0]["address"], EXCHANGE.to_lowercase());
    let d = test(&transfer(EXCHANGE, ETHER / 2, 0));
    assert_eq!(d["decision"]["effect"], "deny");
    assert_eq!(d["decision"]["rule"], "default-deny");
    let (status, body) = sign(&transfer(EXCHANGE, ETHER / 2, 0));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_denied"))
    );

    // Approved without a cooling-off (a policy change is itself a quorum operation), the
    // exchange receives up to 1 ETH per transaction and 1.5 ETH a day.
    let v2 = set(&policy("0s")).ok().json();
    assert_eq!(v2["version"], 2);
    let d = test(&transfer(EXCHANGE, ETHER, 0));
    assert_eq!(d["decision"]["effect"], "allow");
    assert_eq!(d["decision"]["rule"], "eth-to-exchanges");
    assert_eq!(d["spent_24h"], "0");
    assert_eq!(sign(&transfer(EXCHANGE, ETHER, 0)).0, 200);
    assert_eq!(
        test(&transfer(EXCHANGE, ETHER + 1, 1))["decision"]["rule"],
        "default-deny"
    );
    // Ten concurrent 0.1 ETH transfers against what is left (0.5 ETH less the first
    // transfer's fee cap): fees count too, so exactly four are signed.
    let results: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| s.spawn(move || sign(&transfer(EXCHANGE, ETHER / 10, 10 + i))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(signed, 4, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403);
        assert_eq!(body["error"]["code"], "daily_limit_exceeded");
    }
    // Its limit exhausted, the hot wallet demoted itself to warm: people approve from now on.
    assert_eq!(
        node.cli(t, &["--json", "wallet", "show", &w]).ok().json()["temperature"],
        "warm"
    );
    let d = test(&transfer(EXCHANGE, ETHER / 10, 30));
    assert_eq!(d["decision"]["effect"], "deny");
    // 1.4 ETH and five fee caps of 21 000 gas at 2 gwei.
    assert_eq!(
        d["spent_24h"],
        (14 * ETHER / 10 + 5 * 21_000 * 2_000_000_000).to_string()
    );

    // The deny list and call rules, on the decoded intent.
    let (status, body) = sign(&transfer(THIEF, 1, 40));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_denied"))
    );
    assert_eq!(
        test(&transfer(THIEF, 1, 40))["decision"]["rule"],
        "deny-list"
    );
    // An approve() to the exchange, dressed as a call to the token.
    let approve = json!({"type": "0x2", "chainId": "0x1", "nonce": "0x29", "gas": "0x10000",
        "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "to": USDC,
        "data": "0x095ea7b30000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaedffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"});
    assert_eq!(sign(&approve).0, 403);
    let d = test(&approve);
    assert_eq!(d["decision"]["rule"], "no-approvals");
    assert_eq!(d["intent"]["call"], "erc20.approve");
    // Unknown call data matches no rule.
    let mut unknown = approve.clone();
    unknown["data"] = json!("0xdeadbeef");
    assert_eq!(test(&unknown)["decision"]["rule"], "default-deny");
    // A large token transfer needs two approvals (dev mode's quorum is the requester).
    let usdc = json!({"type": "0x2", "chainId": "0x1", "nonce": "0x2a", "gas": "0x10000",
        "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "to": USDC,
        "data": "0xa9059cbb0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed00000000000000000000000000000000000000000000000000000002540be400"});
    let d = test(&usdc);
    assert_eq!(d["decision"]["effect"], "quorum");
    assert_eq!(d["decision"]["approvals"], 2);

    // An EIP-2612 permit handing the exchange unlimited USDC is typed data, not a
    // transaction: no rule allows `permit`, so it is refused.
    let permit = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "chainId": 1, "verifyingContract": USDC},
        "message": {"owner": EXCHANGE, "spender": EXCHANGE, "value": "1000", "nonce": 0,
                    "deadline": 4_102_444_800u64}
    });
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{w}/eth/sign-typed-data"),
        t,
        Some(&json!({"data": permit}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_denied"))
    );

    // Malformed policies are refused and change nothing.
    let mut bad = policy("0s");
    bad["rules"][0]["effect"] = json!("maybe");
    let r = set(&bad);
    assert_eq!(r.code, 1);
    assert_eq!(r.error_code(), "invalid_policy");
    assert_eq!(
        node.cli(t, &["--json", "policy", "show", "--wallet", &w])
            .ok()
            .json()["version"],
        2
    );

    // Every decision is audited with its rule; the policy itself is sealed in the database.
    node.stop();
    let conn = dev_audit_events(&data);
    let rules: Vec<(i64, String)> = conn
        .prepare("SELECT outcome, detail FROM audit WHERE operation = 'eth.sign_tx' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .map(|(o, d): (i64, String)| {
            (
                o,
                serde_json::from_str::<Value>(&d).unwrap()["rule"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(rules[0], (2, "default-deny".to_owned()));
    assert_eq!(rules[1], (1, "eth-to-exchanges".to_owned()));
    assert_eq!(
        rules
            .iter()
            .filter(|(o, r)| *o == 1 && r == "eth-to-exchanges")
            .count(),
        5
    );
    assert!(rules.contains(&(2, "deny-list".to_owned())));
    assert!(rules.contains(&(2, "no-approvals".to_owned())));
    let demotions: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'key.demote' AND actor = 'system' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // One demotion (requests racing it may each find the wallet still hot).
    assert!(demotions >= 1);
    let permit_rule: String = conn
        .query_row(
            "SELECT detail FROM audit WHERE operation = 'eth.sign_typed_data'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let permit_rule: Value = serde_json::from_str(&permit_rule).unwrap();
    assert_eq!(permit_rule["rule"], "default-deny");
    assert_eq!(permit_rule["intent"]["call"], "permit");
    let mut db_bytes = std::fs::read(data.join("vault.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("vault.db-wal")) {
        db_bytes.extend(wal);
    }
    assert!(!db_bytes.windows(17).any(|w| w == b"eth-to-exchanges\""));
    audit_verify(&data).ok();
}
