//! Bitcoin PSBT signing end to end: an independent implementation (embit, deriving the wallet
//! itself from the same mnemonic) builds PSBTs that spend the wallet's coins; the vault signs
//! them through the real CLI; embit checks every signature with its own sighash code, and its
//! own ECDSA signatures are byte-identical to ours (RFC 6979). Policy is judged on the outputs
//! and the fee; hostile PSBTs get stable codes and sign nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

/// A stranger's address (BIP-173's example) and another one (BIP-350's P2TR example).
const PAYEE: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const OTHER: &str = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0";
/// Another mnemonic (BIP-39's "legal winner" vector): a different wallet.
const STRANGER: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn btc(kind: &str, network: &str, mnemonic: &str, build: Value) -> Value {
    oracle(
        "btc.py",
        &json!({"mnemonic": mnemonic, "kind": kind, "network": network, "build": build}),
    )
}

fn verify(kind: &str, network: &str, psbt: &str, tx: &str) -> Value {
    oracle(
        "btc.py",
        &json!({"mnemonic": ABANDON, "kind": kind, "network": network,
                "verify": {"psbt": psbt, "tx": tx}}),
    )
}

#[test]
fn p2wpkh_psbts_sign_like_an_independent_wallet_under_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    let w = wallet_from(&node, t, dir.path(), ABANDON, &["--chain", "bitcoin"]);

    // The oracle's wallet is ours: same first address.
    let pay = |outputs: Value, change: Value, salt: u8| {
        btc(
            "p2wpkh",
            "main",
            ABANDON,
            json!({"inputs": [[0, 50_000], [3, 30_000]], "outputs": outputs,
                   "change": change, "salt": salt}),
        )
    };
    let o = pay(json!([[PAYEE, 60_000]]), json!([1, 19_000]), 7);
    let first = node
        .cli(t, &["--json", "wallet", "address", &w])
        .ok()
        .json();
    assert_eq!(first["address"], o["addresses"][0]);

    // Dev mode allows everything: the PSBT is signed, complete, and valid to embit.
    let psbt = o["psbt"].as_str().unwrap();
    let signed = node
        .cli(
            t,
            &["--json", "btc", "sign-psbt", "--wallet", &w, "--psbt", psbt],
        )
        .ok()
        .json();
    let tx = signed["tx"].as_str().unwrap();
    let v = verify("p2wpkh", "main", psbt, tx);
    assert_eq!(v["valid"], json!([true, true]), "{v}");
    assert_eq!(v["txid"], signed["txid"]);
    assert_eq!(signed["fee_sat"], 1_000);
    assert_eq!(signed["intent"]["outputs"][0]["address"], PAYEE);
    assert_eq!(signed["intent"]["outputs"][1]["own"], "m/84'/0'/0'/1/1");
    // RFC 6979 is deterministic: embit's signatures are ours, byte for byte.
    let parsed: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&hex::decode(tx).unwrap()).unwrap();
    for (n, input) in parsed.input.iter().enumerate() {
        assert_eq!(
            hex::encode(input.witness.iter().next().unwrap()),
            o["embit_signatures"][n].as_str().unwrap()
        );
    }
    // A binary PSBT file works too.
    let file = dir.path().join("pay.psbt");
    std::fs::write(&file, base64_decode(psbt)).unwrap();
    let again = node
        .cli(
            t,
            &[
                "--json",
                "btc",
                "sign-psbt",
                "--wallet",
                &w,
                "--psbt",
                file.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(again["tx"], signed["tx"]);

    // A policy: up to 60,000 sat per payment to the payee list, 100,000 a day (fees count),
    // fees up to 2,000 sat, consolidations allowed.
    set_policy(
        &node,
        t,
        dir.path(),
        &w,
        &json!({"version": 1, "max_fee": "2000", "lists": {"payees": [PAYEE]}, "rules": [
            {"name": "pay", "effect": "allow", "call": "transfer", "to": "@payees",
             "max_amount": "60000", "daily_limit": "100000"},
            {"name": "sweep", "effect": "allow", "call": "consolidate"}]}),
    )
    .ok();
    // A testnet address in a mainnet wallet's policy would never match: refused.
    assert_eq!(
        set_policy(
            &node,
            t,
            dir.path(),
            &w,
            &json!({"version": 1, "deny": ["tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"],
                    "rules": []}),
        )
        .error_code(),
        "invalid_policy"
    );
    // The dry run judges a PSBT file as signing would, limits included: 122,000 already spent
    // (the two dev-mode signatures, fees included) and another 61,000 would pass 100,000.
    let dry = node
        .cli(
            t,
            &[
                "--json",
                "policy",
                "test",
                "--wallet",
                &w,
                "--tx",
                file.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(dry["decision"]["effect"], "deny", "{dry}");
    assert_eq!(dry["decision"]["rule"], "pay");
    assert_eq!(dry["spent_24h"], "122000");
    assert_eq!(dry["intent"]["fee_sat"], 1_000);
    let sign = |psbt: &str| {
        node.http(
            "POST",
            &format!("/v1/wallets/{w}/btc/sign-psbt"),
            t,
            Some(&json!({"psbt": psbt}).to_string()),
        )
    };
    let code = |r: (u16, Value)| (r.0, r.1["error"]["code"].as_str().unwrap_or("").to_owned());
    // A payment to someone not on the list.
    let other = pay(json!([[OTHER, 60_000]]), json!([1, 19_000]), 8);
    assert_eq!(
        code(sign(other["psbt"].as_str().unwrap())),
        (403, "policy_denied".to_owned())
    );
    // A fee above max_fee: the change is 3,000 sat short.
    let costly = pay(json!([[PAYEE, 10_000]]), json!([1, 67_000]), 9);
    assert_eq!(costly["fee"], 3_000);
    assert_eq!(
        code(sign(costly["psbt"].as_str().unwrap())),
        (403, "policy_denied".to_owned())
    );
    // More than max_amount to the payee, split over two outputs: judged as one destination.
    let split = pay(
        json!([[PAYEE, 35_000], [PAYEE, 35_000]]),
        json!([1, 9_000]),
        10,
    );
    assert_eq!(
        code(sign(split["psbt"].as_str().unwrap())),
        (403, "policy_denied".to_owned())
    );
    // A consolidation (everything back to the wallet) is its own call, and its fee counts.
    let sweep = pay(json!([]), json!([0, 79_500]), 11);
    let (status, body) = sign(sweep["psbt"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    let v = verify(
        "p2wpkh",
        "main",
        sweep["psbt"].as_str().unwrap(),
        body["tx"].as_str().unwrap(),
    );
    assert_eq!(v["valid"], json!([true, true]));

    // The dev-mode payments above count in the window, and so does the sweep's fee: another
    // 61,000 is over 100,000. Refused, and the hot wallet demotes itself to warm.
    let (status, body) = sign(psbt);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("daily_limit_exceeded")),
        "{body}"
    );
    let shown = node.cli(t, &["--json", "wallet", "show", &w]).ok().json();
    assert_eq!(shown["temperature"], "warm");

    // Hostile PSBTs: inputs of another wallet, garbage, a wallet of another chain.
    let foreign = btc(
        "p2wpkh",
        "main",
        STRANGER,
        json!({"inputs": [[0, 50_000]], "outputs": [[PAYEE, 40_000]], "change": [1, 9_000]}),
    );
    assert_eq!(
        code(sign(foreign["psbt"].as_str().unwrap())),
        (400, "psbt_input_refused".to_owned())
    );
    assert_eq!(code(sign("cHNidP8Bnope")), (400, "invalid_psbt".to_owned()));
    assert_eq!(
        code(sign("not base64 at all")),
        (400, "invalid_psbt".to_owned())
    );
    let eth = wallet_from(&node, t, dir.path(), ABANDON, &["--chain", "ethereum"]);
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{eth}/btc/sign-psbt"),
        t,
        Some(&json!({"psbt": psbt}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("wrong_chain"))
    );

    // Every decision is audited with the decoded PSBT and the deciding rule.
    let audit = dev_audit_events(&data);
    let details: Vec<String> = audit
        .prepare(
            "SELECT detail FROM audit WHERE operation = 'btc.sign_psbt' AND detail IS NOT NULL",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        details.iter().any(|d| d.contains("\"rule\":\"sweep\"")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("\"rule\":\"max-fee\"")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d.contains(OTHER)), "{details:?}");
}

#[test]
fn p2tr_psbts_on_regtest_sign_with_schnorr() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let w = wallet_from(
        &node,
        t,
        dir.path(),
        ABANDON,
        &[
            "--chain",
            "bitcoin",
            "--address-type",
            "p2tr",
            "--network",
            "regtest",
        ],
    );
    let first = node
        .cli(t, &["--json", "wallet", "address", &w])
        .ok()
        .json();
    let o = btc(
        "p2tr",
        "regtest",
        ABANDON,
        json!({"inputs": [[0, 50_000], [3, 30_000]],
               "outputs": [["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 60_000]],
               "change": [1, 19_000]}),
    );
    assert_eq!(first["address"], o["addresses"][0]);
    let psbt = o["psbt"].as_str().unwrap();
    let signed = node
        .cli(
            t,
            &["--json", "btc", "sign-psbt", "--wallet", &w, "--psbt", psbt],
        )
        .ok()
        .json();
    let v = verify("p2tr", "regtest", psbt, signed["tx"].as_str().unwrap());
    assert_eq!(v["valid"], json!([true, true]), "{v}");
    assert_eq!(signed["intent"]["inputs"][1]["path"], "m/86'/1'/0'/0/3");
    assert_eq!(signed["intent"]["inputs"][1]["kind"], "p2tr");
    // Outputs are written for the wallet's network.
    assert_eq!(
        signed["intent"]["outputs"][0]["address"],
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
