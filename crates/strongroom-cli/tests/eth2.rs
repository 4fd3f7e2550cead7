//! Ethereum validator keys end to end: `eth2 derive` gives the public keys an independent
//! implementation (EIP-2333 written from the EIP in Python, public keys by py_ecc) derives
//! from the same mnemonic; re-deriving skips held keys; `key create --algorithm bls12-381`
//! makes a validator key; validator keys never sign through the generic `sign` route.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn validator_keys_derive_like_an_independent_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let words = dir.path().join("words");
    std::fs::write(&words, ABANDON).unwrap();
    let derive = |start: &str, count: &str| {
        node.cli(
            t,
            &[
                "--json",
                "eth2",
                "derive",
                "--mnemonic-file",
                words.to_str().unwrap(),
                "--start",
                start,
                "--count",
                count,
            ],
        )
    };
    let first = derive("0", "3").ok().json();
    let keys: Vec<&str> = first["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["public_key"].as_str().unwrap())
        .collect();
    let o = oracle(
        "eth2.py",
        &json!({"mnemonic": ABANDON, "indices": [0, 1, 2, 3]}),
    );
    assert_eq!(keys, o["public_keys"].as_array().unwrap()[..3]);
    assert_eq!(first["created"][2]["path"], "m/12381/3600/2/0/0");
    assert_eq!(
        first["temperature"], "hot",
        "dev mode's default domain makes hot keys"
    );

    // Derived again with an overlap: the held keys are skipped, the new one made.
    let again = derive("1", "3").ok().json();
    assert_eq!(again["existing"], json!([1, 2]));
    assert_eq!(again["created"][0]["index"], 3);
    assert_eq!(again["created"][0]["public_key"], o["public_keys"][3]);

    // Validator keys are keys of the domain, and the generic route does not sign with them.
    let listed = node.cli(t, &["--json", "key", "list"]).ok().json();
    let bls: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["algorithm"] == "bls12-381")
        .collect();
    assert_eq!(bls.len(), 4);
    assert_eq!(
        bls[0]["label"].as_str().unwrap().split(' ').next(),
        Some("eth2")
    );
    let id = first["created"][0]["id"].as_str().unwrap();
    assert_eq!(
        node.cli(t, &["--json", "sign", "--key", id, "--message", "00"])
            .error_code(),
        "validator_signing_refused"
    );
    let made = node
        .cli(t, &["--json", "key", "create", "--algorithm", "bls12-381"])
        .ok()
        .json();
    assert_eq!(made["public_key"].as_str().unwrap().len(), 96);
    assert_eq!(
        node.cli(
            t,
            &[
                "--json",
                "sign",
                "--key",
                made["id"].as_str().unwrap(),
                "--digest",
                &"11".repeat(32)
            ]
        )
        .error_code(),
        "validator_signing_refused"
    );

    // Bad requests: a count out of range, a mnemonic with a bad checksum.
    assert_eq!(derive("0", "0").error_code(), "invalid_count");
    assert_eq!(derive("0", "10001").error_code(), "invalid_count");
    assert_eq!(derive("4294967295", "2").error_code(), "invalid_count");
    std::fs::write(&words, ABANDON.replace("about", "abandon")).unwrap();
    assert_eq!(derive("0", "1").error_code(), "invalid_mnemonic");
}

/// EIP-3076 interchange through the CLI: an import (larger than the API's usual 64 KiB body
/// limit) exports back as the same records; another chain's interchange, a malformed one and
/// an unpinned export are refused with stable codes.
#[test]
fn slashing_interchange_import_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let file = dir.path().join("interchange.json");
    let gvr = format!("0x{}", "04".repeat(32));
    assert_eq!(
        node.cli(t, &["--json", "slashing", "export"]).error_code(),
        "no_chain"
    );
    // 600 validators, each with a block and two attestations: about 250 KiB.
    let data: Vec<_> = (0..600u32)
        .map(|i| {
            let mut pk = [0u8; 48];
            pk[..4].copy_from_slice(&i.to_be_bytes());
            json!({
                "pubkey": format!("0x{}", hex::encode(pk)),
                "signed_blocks": [{"slot": (100 + i).to_string(),
                                   "signing_root": format!("0x{}", "ab".repeat(32))}],
                "signed_attestations": [
                    {"source_epoch": "5", "target_epoch": "6"},
                    {"source_epoch": "6", "target_epoch": (7 + i).to_string(),
                     "signing_root": format!("0x{}", "cd".repeat(32))}
                ]
            })
        })
        .collect();
    let doc = json!({"metadata": {"interchange_format_version": "5",
                                  "genesis_validators_root": gvr}, "data": data});
    std::fs::write(&file, doc.to_string()).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > 200 * 1024);
    let imported = node
        .cli(
            t,
            &[
                "--json",
                "slashing",
                "import",
                "--file",
                file.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(
        (
            imported["validators"].as_u64(),
            imported["attestations"].as_u64()
        ),
        (Some(600), Some(1200))
    );
    let out = dir.path().join("export.json");
    node.cli(
        t,
        &[
            "--json",
            "slashing",
            "export",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(exported["metadata"], doc["metadata"]);
    let mut want: Vec<String> = doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let mut got: Vec<String> = exported["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // Another chain: refused, the domain stays pinned to the first.
    let other = json!({"metadata": {"interchange_format_version": "5",
        "genesis_validators_root": format!("0x{}", "05".repeat(32))}, "data": []});
    std::fs::write(&file, other.to_string()).unwrap();
    assert_eq!(
        node.cli(
            t,
            &[
                "--json",
                "slashing",
                "import",
                "--file",
                file.to_str().unwrap()
            ]
        )
        .error_code(),
        "wrong_chain"
    );
    // Another tenant may not add to this domain's validators' records (a hostile record
    // could block them), nor export them.
    node.cli(t, &["--json", "domain", "create", "other"]).ok();
    let theirs = json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr},
        "data": [doc["data"][0].clone()]});
    std::fs::write(&file, theirs.to_string()).unwrap();
    assert_eq!(
        node.cli(
            t,
            &[
                "--json",
                "slashing",
                "import",
                "--domain",
                "other",
                "--file",
                file.to_str().unwrap()
            ]
        )
        .error_code(),
        "validator_of_another_domain"
    );
    let empty = json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr},
        "data": []});
    std::fs::write(&file, empty.to_string()).unwrap();
    node.cli(
        t,
        &[
            "--json",
            "slashing",
            "import",
            "--domain",
            "other",
            "--file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    let others = node
        .cli(t, &["--json", "slashing", "export", "--domain", "other"])
        .ok()
        .json();
    assert_eq!(others["data"], json!([]));
    for bad in [
        json!({"metadata": {"interchange_format_version": "4", "genesis_validators_root": gvr}, "data": []}),
        json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": format!("0x0x{}", "00".repeat(31))}, "data": []}),
        json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr},
               "data": [{"pubkey": format!("0x{}", "00".repeat(48)),
                         "signed_blocks": [{"slot": "18446744073709551615"}], "signed_attestations": []}]}),
        json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": "0x01"}, "data": []}),
        json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr},
               "data": [{"pubkey": "0x01", "signed_blocks": [], "signed_attestations": []}]}),
        json!({"metadata": {"interchange_format_version": "5", "genesis_validators_root": gvr},
               "data": [{"pubkey": format!("0x{}", "00".repeat(48)),
                         "signed_blocks": [{"slot": "-1"}], "signed_attestations": []}]}),
    ] {
        std::fs::write(&file, bad.to_string()).unwrap();
        assert_eq!(
            node.cli(
                t,
                &[
                    "--json",
                    "slashing",
                    "import",
                    "--file",
                    file.to_str().unwrap()
                ]
            )
            .error_code(),
            "invalid_interchange",
            "{bad}"
        );
    }
}

/// EIP-2335 keystores (the EIP's own two, scrypt and PBKDF2, of one key) import as one
/// validator key; importing again creates nothing; a wrong password is refused.
#[test]
fn eip2335_keystores_import() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let token = node.dev_token();
    let t = Some(token.as_str());
    let vectors = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../strongroom-crypto/tests/vectors/eip2335"
    );
    let password = dir.path().join("password");
    std::fs::write(&password, "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑").unwrap();
    let import = |pw: &std::path::Path| {
        node.cli(
            t,
            &[
                "--json",
                "eth2",
                "import",
                "--keystore",
                vectors,
                "--password-file",
                pw.to_str().unwrap(),
            ],
        )
    };
    let first = import(&password).ok().json();
    assert_eq!(first["created"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["existing"].as_array().unwrap().len(), 1);
    let pubkey = "0x9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";
    assert_eq!(first["created"][0]["public_key"], pubkey);
    let again = import(&password).ok().json();
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["existing"].as_array().unwrap().len(), 2);
    let listed = node.cli(t, &["--json", "key", "list"]).ok().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| format!("0x{}", k["public_key"].as_str().unwrap()) == pubkey)
    );
    // A fresh domain, a wrong password: refused by the keystore's checksum.
    node.cli(t, &["--json", "domain", "create", "fresh"]).ok();
    std::fs::write(&password, "testpassword").unwrap();
    let wrong = node.cli(
        t,
        &[
            "--json",
            "eth2",
            "import",
            "--domain",
            "fresh",
            "--keystore",
            &format!("{vectors}/pbkdf2.json"),
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert_eq!(wrong.error_code(), "wrong_password");
}
