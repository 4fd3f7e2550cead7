//! HD wallets end to end through the real CLI: BIP-84/86, Ethereum and EOS addresses from an
//! imported mnemonic match the published vectors, fresh wallets differ, the seed never reaches
//! the database in the clear, hostile input gets stable error codes, wallets never sign raw
//! digests, and a public part swapped in the database is refused rather than handed out.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// BIP-39 seed of ABANDON with an empty passphrase.
const ABANDON_SEED: &str = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc19a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";

#[test]
fn wallets_derive_published_addresses_and_keep_their_seed_inside() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    let words = dir.path().join("words");
    std::fs::write(&words, format!("  {ABANDON}\n")).unwrap();
    let words = words.to_str().unwrap();

    let create = |args: &[&str]| {
        let mut all = vec!["--json", "wallet", "create", "--mnemonic-file", words];
        all.extend_from_slice(args);
        node.cli(t, &all).ok().json()
    };
    let addr = |id: &str, extra: &[&str]| {
        let mut all = vec!["--json", "wallet", "address", id];
        all.extend_from_slice(extra);
        node.cli(t, &all).ok().json()
    };

    // BIP-84 (the default), mainnet.
    let btc = create(&["--chain", "bitcoin", "--label", "treasury-btc"]);
    let btc_id = btc["id"].as_str().unwrap().to_owned();
    assert_eq!(btc["chain"], "bitcoin");
    assert_eq!(btc["network"], "bitcoin");
    assert_eq!(btc["address_type"], "p2wpkh");
    assert_eq!(btc["account_path"], "m/84'/0'/0'");
    assert_eq!(btc["master_fingerprint"], "73c5da0a");
    assert_eq!(btc["temperature"], "hot");
    assert_eq!(
        addr(&btc_id, &[])["address"],
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    );
    let change = addr(&btc_id, &["--index", "0", "--change"]);
    assert_eq!(
        change["address"],
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    );
    assert_eq!(change["path"], "m/84'/0'/0'/1/0");

    // BIP-86 taproot: the published xpub and address.
    let tr = create(&["--chain", "bitcoin", "--address-type", "p2tr"]);
    let tr_id = tr["id"].as_str().unwrap().to_owned();
    let xpub = node
        .cli(t, &["--json", "wallet", "xpub", &tr_id])
        .ok()
        .json();
    assert_eq!(
        xpub["xpub"],
        "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
    );
    assert_eq!(xpub["path"], "m/86'/0'/0'");
    assert_eq!(xpub["master_fingerprint"], "73c5da0a");
    assert_eq!(
        addr(&tr_id, &["--index", "1"])["address"],
        "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"
    );
    // Signet uses coin type 1 and tpub.
    let signet = create(&["--chain", "bitcoin", "--network", "signet"]);
    assert!(signet["xpub"].as_str().unwrap().starts_with("tpub"));
    assert!(
        addr(signet["id"].as_str().unwrap(), &[])["address"]
            .as_str()
            .unwrap()
            .starts_with("tb1q")
    );

    // Ethereum, pinned to chain 5.
    let eth = create(&["--chain", "ethereum", "--chain-id", "5"]);
    assert_eq!(eth["chain_id"], 5);
    let a = addr(eth["id"].as_str().unwrap(), &[]);
    assert_eq!(a["address"], "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
    assert_eq!(a["path"], "m/44'/60'/0'/0/0");

    // EOS: both key formats, at m/44'/194'/0'/0/i.
    let eos = create(&["--chain", "eos"]);
    let a = addr(eos["id"].as_str().unwrap(), &["--index", "3"]);
    assert!(a["address"].as_str().unwrap().starts_with("EOS"));
    assert!(a["address_k1"].as_str().unwrap().starts_with("PUB_K1_"));
    assert_eq!(a["path"], "m/44'/194'/0'/0/3");

    // Fresh wallets differ from each other.
    let f1 = node
        .cli(t, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json();
    let f2 = node
        .cli(t, &["--json", "wallet", "create", "--chain", "ethereum"])
        .ok()
        .json();
    assert_ne!(f1["xpub"], f2["xpub"]);
    assert_ne!(f1["master_fingerprint"], f2["master_fingerprint"]);

    let list = node.cli(t, &["--json", "wallet", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 7);
    let shown = node
        .cli(t, &["--json", "wallet", "show", &btc_id])
        .ok()
        .json();
    assert_eq!(shown["label"], "treasury-btc");
    assert_eq!(shown["xpub"], btc["xpub"]);

    // Hostile input: stable codes, nothing created.
    let refuse = |args: &[&str], code: &str| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = node.cli(t, &all);
        assert_ne!(r.code, 0, "{args:?}");
        assert_eq!(r.error_code(), code, "{args:?}");
    };
    let bad_words = dir.path().join("bad-words");
    std::fs::write(&bad_words, ABANDON.replace("about", "abandon")).unwrap();
    refuse(
        &[
            "wallet",
            "create",
            "--chain",
            "bitcoin",
            "--mnemonic-file",
            bad_words.to_str().unwrap(),
        ],
        "invalid_mnemonic",
    );
    refuse(
        &["wallet", "create", "--chain", "bitcoin", "--chain-id", "1"],
        "invalid_wallet",
    );
    refuse(
        &[
            "wallet",
            "create",
            "--chain",
            "ethereum",
            "--network",
            "testnet",
        ],
        "invalid_wallet",
    );
    refuse(
        &["wallet", "create", "--chain", "ethereum", "--chain-id", "0"],
        "invalid_wallet",
    );
    refuse(
        &["wallet", "create", "--chain", "dogecoin"],
        "invalid_wallet",
    );
    refuse(
        &[
            "wallet",
            "create",
            "--chain",
            "bitcoin",
            "--network",
            "mainnet",
        ],
        "invalid_wallet",
    );
    refuse(
        &["wallet", "address", &btc_id, "--index", "2147483648"],
        "invalid_index",
    );
    refuse(
        &["key", "create", "--algorithm", "bip32-seed"],
        "invalid_algorithm",
    );
    // Blind signing: dev mode's default policy allows a wallet to sign a caller's digest,
    // with its first address; a policy that does not name `blind_digest` refuses it.
    let blind = node
        .cli(
            t,
            &[
                "--json",
                "sign",
                "--key",
                &btc_id,
                "--digest",
                &"11".repeat(32),
            ],
        )
        .ok()
        .json();
    let first = addr(&btc_id, &[]);
    strongroom_crypto::verify(
        strongroom_core::Algorithm::Secp256k1,
        &hex::decode(first["public_key"].as_str().unwrap()).unwrap(),
        strongroom_crypto::Payload::Digest(&[0x11; 32]),
        &hex::decode(blind["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let strict = dir.path().join("strict.json");
    std::fs::write(
        &strict,
        r#"{"version": 1, "rules": [{"name": "msgs", "effect": "allow", "call": "message"}]}"#,
    )
    .unwrap();
    node.cli(
        t,
        &[
            "--json",
            "policy",
            "set",
            "--wallet",
            &btc_id,
            "--file",
            strict.to_str().unwrap(),
        ],
    )
    .ok();
    refuse(
        &["sign", "--key", &btc_id, "--digest", &"11".repeat(32)],
        "blind_signing_refused",
    );
    // A plain key is not a wallet.
    let plain = node
        .cli(t, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json();
    refuse(
        &["wallet", "show", plain["id"].as_str().unwrap()],
        "not_found",
    );
    assert_eq!(
        node.cli(t, &["--json", "wallet", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // A wallet's temperature is its key's: frozen at once, and then it signs nothing.
    let eth_id = eth["id"].as_str().unwrap().to_owned();
    let frozen = node
        .cli(t, &["--json", "wallet", "temperature", &eth_id, "cold"])
        .ok()
        .json();
    assert_eq!(frozen["temperature"], "cold");
    assert_eq!(
        node.cli(t, &["--json", "wallet", "show", &eth_id])
            .ok()
            .json()["temperature"],
        "cold"
    );
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{eth_id}/eth/sign-message"),
        t,
        Some(r#"{"message": "hello"}"#),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("key_not_hot"))
    );
    refuse(
        &[
            "wallet",
            "temperature",
            plain["id"].as_str().unwrap(),
            "cold",
        ],
        "not_found",
    );

    // Neither the words nor the seed is in the database.
    node.stop();
    let mut db_bytes = std::fs::read(data.join("vault.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("vault.db-wal")) {
        db_bytes.extend(wal);
    }
    let seed = hex::decode(ABANDON_SEED).unwrap();
    assert!(!db_bytes.windows(seed.len()).any(|w| w == seed));
    assert!(!db_bytes.windows(15).any(|w| w == b"abandon abandon"));
    assert!(!db_bytes.windows(12).any(|w| w == b"treasury-btc"));

    // A database editor swaps the BIP-84 wallet's public part for the taproot one's, to
    // redirect deposits: the row fails its MAC and nothing is handed out.
    let conn = db(&data);
    conn.execute(
        "UPDATE keys SET public_key = (SELECT public_key FROM keys WHERE id = ?2) WHERE id = ?1",
        [uuid_bytes(&btc_id), uuid_bytes(&tr_id)],
    )
    .unwrap();
    drop(conn);
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());
    for cmd in [
        &["wallet", "address"][..],
        &["wallet", "xpub"],
        &["wallet", "show"],
    ] {
        let mut all = vec!["--json"];
        all.extend_from_slice(cmd);
        all.push(&btc_id);
        let r = node.cli(t, &all);
        assert_ne!(r.code, 0);
        assert_eq!(r.error_code(), "stored_data_corrupt", "{cmd:?}");
    }
    // The untouched wallet still answers, and the audit log verifies.
    node.cli(t, &["--json", "wallet", "address", &tr_id]).ok();
    node.stop();
    audit_verify(&data).ok();
}

fn uuid_bytes(id: &str) -> Vec<u8> {
    hex::decode(id.replace('-', "")).unwrap()
}
