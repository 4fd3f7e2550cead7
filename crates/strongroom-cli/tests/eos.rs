//! EOS signing end to end: a packed transfer (encoded independently, by Python, from the
//! Antelope serialisation rules) is decoded, judged by the wallet's policy, and signed with a
//! canonical SIG_K1 signature from which the wallet's PUB_K1 key recovers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

/// The same to mallory.
const TO_MALLORY_FIXTURE: &str = "00f15365d204efbeadde000000000100a6823403ea3055000000572d3ccdcd010000000000855c3400000000a8ed3232250000000000855c34000000c05f1aa391102700000000000004454f53000000000472656e7400";
use common::EOS_MAINNET as CHAIN;

fn decode_k1(text: &str, prefix: &str) -> Vec<u8> {
    let raw = bs58_decode(text.strip_prefix(prefix).unwrap());
    raw[..raw.len() - 4].to_vec()
}

/// Base58 (Bitcoin alphabet), written here so the test does not trust the server's encoder.
fn bs58_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut n: Vec<u8> = vec![0];
    for c in s.bytes() {
        let mut carry = A.iter().position(|x| *x == c).unwrap() as u32;
        for d in n.iter_mut().rev() {
            let v = u32::from(*d) * 58 + carry;
            *d = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            n.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|c| *c == b'1').count();
    let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    let mut out = vec![0; zeros];
    out.extend_from_slice(&n[first..]);
    out
}

#[test]
fn eos_transfers_sign_canonically_under_policy() {
    // Transactions expire: the fixtures get an expiration ten minutes from now.
    let to_bob = eos_fresh(EOS_TO_BOB);
    let to_mallory = eos_fresh(TO_MALLORY_FIXTURE);
    let (to_bob, to_mallory) = (to_bob.as_str(), to_mallory.as_str());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let w = node
        .cli(t, &["--json", "wallet", "create", "--chain", "eos"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let address = node
        .cli(t, &["--json", "wallet", "address", &w])
        .ok()
        .json();
    let pk = decode_k1(address["address_k1"].as_str().unwrap(), "PUB_K1_");

    let signed = node
        .cli(
            t,
            &[
                "--json",
                "eos",
                "sign",
                "--wallet",
                &w,
                "--chain-id",
                CHAIN,
                "--tx",
                to_bob,
            ],
        )
        .ok()
        .json();
    assert_eq!(signed["transaction"]["actions"][0]["to"], "bob");
    assert_eq!(signed["transaction"]["actions"][0]["amount"], "10000");
    assert_eq!(signed["public_key"], address["address_k1"]);
    // The digest is sha256(chain id || packed || 32 zero bytes), and the signature recovers
    // the wallet's key.
    let mut pre = hex::decode(CHAIN).unwrap();
    pre.extend(hex::decode(to_bob).unwrap());
    pre.extend([0u8; 32]);
    assert_eq!(signed["digest"], sha256_hex(&pre));
    let sig = decode_k1(signed["signature"].as_str().unwrap(), "SIG_K1_");
    assert_eq!(sig.len(), 65);
    assert!(sig[1] & 0x80 == 0 && sig[33] & 0x80 == 0, "not canonical");
    let digest: [u8; 32] = hex::decode(signed["digest"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let secp = secp256k1::Secp256k1::verification_only();
    let recovered = secp
        .recover_ecdsa(
            &secp256k1::Message::from_digest(digest),
            &secp256k1::ecdsa::RecoverableSignature::from_compact(
                &sig[1..],
                secp256k1::ecdsa::RecoveryId::from_i32(i32::from(sig[0]) - 31).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    assert_eq!(recovered.serialize().to_vec(), pk);

    // A policy: 1.0000 EOS at most per transfer, to bob only, 2.5000 a day.
    set_policy(
        &node,
        t,
        dir.path(),
        &w,
        &json!({"version": 1, "lists": {"payees": ["bob"]}, "rules": [
            {"name": "eos-to-payees", "effect": "allow", "call": "token.transfer",
             "token": "eosio.token:4,EOS", "to": "@payees", "max_amount": "10000",
             "daily_limit": "25000"}]}),
    )
    .ok();
    // The dry run reads the packed transaction and names the deciding rule.
    let dry = |tx: &str| {
        let f = dir.path().join("tx.hex");
        std::fs::write(&f, tx).unwrap();
        node.cli(
            t,
            &[
                "--json",
                "policy",
                "test",
                "--wallet",
                &w,
                "--tx",
                f.to_str().unwrap(),
            ],
        )
        .ok()
        .json()
    };
    let d = dry(to_bob);
    assert_eq!(d["decision"]["rule"], "eos-to-payees", "{d}");
    assert_eq!(d["intent"]["actions"][0]["to"], "bob");
    assert_eq!(dry(to_mallory)["decision"]["rule"], "default-deny");
    let sign = |tx: &str| {
        node.http(
            "POST",
            &format!("/v1/wallets/{w}/eos/sign"),
            t,
            Some(&json!({"chain_id": CHAIN, "tx": tx}).to_string()),
        )
    };
    assert_eq!(sign(to_bob).0, 200);
    let (status, body) = sign(to_mallory);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_denied"))
    );
    // The daily limit counts every transfer in the window, the one signed before the policy
    // too: 1.0000 + 1.0000 + 1.0000 > 2.5000.
    let (status, body) = sign(to_bob);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("daily_limit_exceeded"))
    );
    // The wallet is pinned to its chain (EOS mainnet by default).
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{w}/eos/sign"),
        t,
        Some(&json!({"chain_id": "11".repeat(32), "tx": to_bob}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("chain_id_mismatch"))
    );
    let other = node
        .cli(
            t,
            &[
                "--json",
                "wallet",
                "create",
                "--chain",
                "eos",
                "--eos-chain-id",
                &"11".repeat(32),
            ],
        )
        .ok()
        .json();
    assert_eq!(other["eos_chain_id"], "11".repeat(32));
    // A transaction that expires in 2106 (its signature could be held for decades), and
    // one that has expired (2023).
    let (status, body) = sign(&format!("ffffffff{}", &to_bob[8..]));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("expiration_too_far"))
    );
    let (status, body) = sign(EOS_TO_BOB);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("transaction_expired"))
    );
    // Malformed input and the wrong chain.
    let (status, body) = sign(&to_bob[..to_bob.len() - 2]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_transaction"))
    );
    let eth = node
        .cli(t, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json();
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{}/eos/sign", eth["id"].as_str().unwrap()),
        t,
        Some(&json!({"chain_id": CHAIN, "tx": to_bob}).to_string()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("wrong_chain"))
    );
}
