//! Ethereum signing end to end: transactions of every type, an ERC-20 transfer and an EIP-191
//! message signed by a dev node's wallet are byte-identical to what an independent
//! implementation (eth-account, with the key it derives itself from the same mnemonic)
//! produces, and their senders recover to the wallet's address; hostile transactions get
//! stable codes and sign nothing; every decision is audited with the decoded intent.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

fn oracle(request: &Value) -> Value {
    common::oracle("eth.py", request)
}

#[test]
fn ethereum_signatures_match_an_independent_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    let words = dir.path().join("words");
    std::fs::write(&words, ABANDON).unwrap();
    let wallet = node
        .cli(
            t,
            &[
                "--json",
                "wallet",
                "create",
                "--chain",
                "ethereum",
                "--mnemonic-file",
                words.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    let w = wallet["id"].as_str().unwrap().to_owned();

    let txs = [
        // Legacy with EIP-155 (the EIP's own example transaction).
        json!({"nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
               "to": "0x3535353535353535353535353535353535353535",
               "value": "0xde0b6b3a7640000", "chainId": "0x1"}),
        // EIP-2930 with an access list and data.
        json!({"type": "0x1", "chainId": "0x1", "nonce": "0x0", "gasPrice": "0x3b9aca00",
               "gas": "0x186a0", "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
               "value": "0x1", "data": "0xdeadbeef",
               "accessList": [{"address": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                               "storageKeys": ["0x0000000000000000000000000000000000000000000000000000000000000001"]}]}),
        // EIP-1559, type inferred, no chainId (the wallet's).
        json!({"nonce": "0x2a", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
               "gas": "0x5208", "to": "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
               "value": "0x2386f26fc10000"}),
        // EIP-1559 contract creation.
        json!({"type": "0x2", "chainId": "0x1", "nonce": "0x3", "maxFeePerGas": "0x77359400",
               "maxPriorityFeePerGas": "0x0", "gas": "0x30d40", "data": "0x6080604052"}),
    ];
    let mut raws = vec![];
    let mut hashes = vec![];
    for (i, tx) in txs.iter().enumerate() {
        let path = dir.path().join(format!("tx{i}.json"));
        std::fs::write(&path, tx.to_string()).unwrap();
        let signed = node
            .cli(
                t,
                &[
                    "--json",
                    "eth",
                    "sign-tx",
                    "--wallet",
                    &w,
                    "--tx",
                    path.to_str().unwrap(),
                ],
            )
            .ok()
            .json();
        assert_eq!(signed["from"], "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
        hashes.push(signed["hash"].as_str().unwrap().to_owned());
        raws.push(signed["raw"].as_str().unwrap().to_owned());
        if i == 3 {
            assert_eq!(signed["intent"]["call"], "deploy");
            assert_eq!(signed["intent"]["to"], Value::Null);
        }
    }
    // The ERC-20 transfer, built by the vault.
    let erc20 = node
        .cli(
            t,
            &[
                "--json",
                "eth",
                "erc20-transfer",
                "--wallet",
                &w,
                "--index",
                "1",
                "--token",
                "0xdAC17F958D2ee523a2206206994597C13D831ec7",
                "--to",
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                "--amount",
                "1000000",
                "--nonce",
                "7",
                "--gas",
                "65000",
                "--max-fee",
                "30000000000",
                "--priority-fee",
                "1000000000",
            ],
        )
        .ok()
        .json();
    assert_eq!(erc20["intent"]["call"], "erc20.transfer");
    assert_eq!(erc20["intent"]["token_amount"], "1000000");
    assert_eq!(
        erc20["intent"]["token_to"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    assert_eq!(erc20["intent"]["value_wei"], "0");
    let message = node
        .cli(
            t,
            &[
                "--json",
                "eth",
                "sign-message",
                "--wallet",
                &w,
                "--message",
                "hello strongroom",
            ],
        )
        .ok()
        .json();

    // EIP-712: the specification's Mail example, on the wallet's chain.
    let mail = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                     {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                    "contents": "Hello, Bob!"}
    });
    let mail_path = dir.path().join("mail.json");
    std::fs::write(&mail_path, mail.to_string()).unwrap();
    let typed = node
        .cli(
            t,
            &[
                "--json",
                "eth",
                "sign-typed-data",
                "--wallet",
                &w,
                "--file",
                mail_path.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    let mut other_chain = mail.clone();
    other_chain["domain"]["chainId"] = json!(5);
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{w}/eth/sign-typed-data"),
        t,
        Some(&json!({"data": other_chain}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("chain_id_mismatch"))
    );

    // The oracle signs the same transactions with the key it derives itself.
    // (A missing chainId means the wallet's: the oracle is told so.)
    let explicit: Vec<Value> = txs
        .iter()
        .map(|tx| {
            let mut tx = tx.clone();
            tx.as_object_mut()
                .unwrap()
                .entry("chainId")
                .or_insert(json!("0x1"));
            tx
        })
        .collect();
    let o = oracle(&json!({
        "mnemonic": ABANDON, "path": "m/44'/60'/0'/0/0", "txs": explicit,
        "messages": ["hello strongroom"], "recover": raws, "typed": [mail],
    }));
    assert_eq!(o["address"], "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
    for (ours, theirs) in raws.iter().zip(o["raw"].as_array().unwrap()) {
        assert_eq!(ours, theirs.as_str().unwrap());
    }
    for sender in o["senders"].as_array().unwrap() {
        assert_eq!(sender, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
    }
    assert_eq!(
        o["hashes"].as_array().unwrap(),
        &hashes.iter().map(|h| json!(h)).collect::<Vec<_>>()
    );
    assert_eq!(message["signature"], o["signatures"][0]);
    assert_eq!(typed["signature"], o["typed_signatures"][0]);
    // The ERC-20 transaction: the oracle signs the transfer it is given, at index 1.
    let transfer = json!({"type": "0x2", "chainId": "0x1", "nonce": "0x7", "gas": "0xfde8",
        "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x3b9aca00", "value": "0x0",
        "to": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
        "data": "0xa9059cbb0000000000000000000000005aaeb6053f3e94c9b9a09f33669435e7ef1beaed00000000000000000000000000000000000000000000000000000000000f4240"});
    let o1 = oracle(&json!({"mnemonic": ABANDON, "path": "m/44'/60'/0'/0/1", "txs": [transfer]}));
    assert_eq!(erc20["raw"], o1["raw"][0]);
    assert_eq!(erc20["from"], o1["address"]);

    // Hostile transactions: a stable code each, and nothing signed.
    let base = json!({"type": "0x2", "chainId": "0x1", "nonce": "0x1", "gas": "0x5208",
        "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1",
        "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "value": "0x1"});
    let with = |k: &str, v: Value| {
        let mut tx = base.clone();
        tx[k] = v;
        tx
    };
    let mut unknown = base.clone();
    unknown["gasPremium"] = json!("0x1");
    for (tx, code) in [
        (with("chainId", json!("0x5")), "chain_id_mismatch"),
        (with("maxPriorityFeePerGas", json!("0x3")), "fee_invalid"),
        (with("type", json!("0x4")), "eip7702_refused"),
        (with("type", json!("0x3")), "unsupported_transaction_type"),
        (
            with("to", json!("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed")),
            "invalid_address",
        ),
        (with("gasPrice", json!("0x1")), "invalid_transaction"),
        (with("nonce", json!(1)), "invalid_transaction"),
        (with("value", json!("0x1g")), "invalid_transaction"),
        (
            with("from", json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")),
            "from_mismatch",
        ),
        (unknown, "invalid_transaction"),
        (json!(["not", "an", "object"]), "invalid_transaction"),
    ] {
        let (status, body) = node.http(
            "POST",
            &format!("/v1/wallets/{w}/eth/sign-tx"),
            t,
            Some(&json!({"tx": tx}).to_string()),
        );
        assert!(status == 400 || status == 403, "{tx}: {status}");
        assert_eq!(body["error"]["code"], code, "{tx}");
    }
    // Only Ethereum wallets sign Ethereum transactions.
    let btc = node
        .cli(t, &["--json", "wallet", "create", "--chain", "bitcoin"])
        .ok()
        .json();
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{}/eth/sign-tx", btc["id"].as_str().unwrap()),
        t,
        Some(&json!({"tx": base}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("wrong_chain"))
    );

    // Every decision is audited with the decoded intent and the rule that decided.
    node.stop();
    let conn = dev_audit_events(&data);
    let details: Vec<String> = conn
        .prepare(
            "SELECT detail FROM audit WHERE operation = 'eth.sign_tx' AND outcome = 1 ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(details.len(), 4);
    let first: Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(first["rule"], "dev-allow-all");
    assert_eq!(first["intent"]["nonce"], 9);
    assert_eq!(first["intent"]["value_wei"], "1000000000000000000");
    audit_verify(&data).ok();
}
