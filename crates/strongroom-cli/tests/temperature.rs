//! Wallet temperature in production: warm keys sign only with a quorum per signature, cold
//! keys never sign, freezing is immediate (custodian or security officer), warming needs a
//! quorum, and a temperature edited in the database is refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn cold_warm_hot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = node
        .cli(
            None,
            &[
                "--json",
                "operator",
                "init",
                "--shares",
                "1",
                "--threshold",
                "1",
            ],
        )
        .ok()
        .json();
    let share = init["shares"][0].as_str().unwrap().to_owned();
    node.cli_stdin(None, &["--json", "operator", "unseal"], &share)
        .ok();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let enrolled: Vec<Enrolled> = [
        ("alice", "security-officer"),
        ("bob", "security-officer"),
        ("ann", "approver"),
        ("carl", "custodian"),
    ]
    .iter()
    .map(|(n, r)| enrol(&node, &boot, n, &[r]))
    .collect();
    let names = ["alice", "bob", "ann"];
    let people: Vec<Person> = names
        .iter()
        .zip(&enrolled)
        .map(|(n, e)| person_from(&node, dir.path(), n, e))
        .collect();
    let (alice, bob, ann) = (&people[0], &people[1], &people[2]);
    // Custodians do not approve, so carl registers no approval key.
    let carl = Person {
        token: login_person(&node, dir.path(), "carl", &enrolled[3]),
        key: dir.path().join("none"),
    };
    let carl = &carl;
    let a = Some(alice.token.as_str());

    // A production domain's keys start warm.
    let r = pending(&node.cli(a, &["--json", "domain", "create", "ops"]));
    approve(&node, bob, &r).ok();
    let key = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "ops",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json();
    assert_eq!(key["temperature"], "warm");
    let kid = key["id"].as_str().unwrap().to_owned();
    let pk = hex::decode(key["public_key"].as_str().unwrap()).unwrap();
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(app.as_str());

    // A production wallet has no policy yet, so it signs no transaction (fail closed), and
    // the refusal is audited with the decoded intent.
    let wallet = node
        .cli(
            a,
            &[
                "--json", "wallet", "create", "--domain", "ops", "--chain", "ethereum",
            ],
        )
        .ok()
        .json();
    assert_eq!(wallet["temperature"], "warm");
    let (status, body) = node.http(
        "POST",
        &format!("/v1/wallets/{}/eth/sign-tx", wallet["id"].as_str().unwrap()),
        t,
        Some(
            r#"{"tx": {"nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1", "value": "0x1",
                       "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}"#,
        ),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_denied"))
    );
    // Nor does it sign a caller's digest (blind signing is off outside dev mode).
    let blind = node.cli(
        t,
        &[
            "--json",
            "sign",
            "--key",
            wallet["id"].as_str().unwrap(),
            "--digest",
            &"22".repeat(32),
        ],
    );
    assert_eq!(blind.error_code(), "blind_signing_refused");
    assert!(
        node.cli(a, &["--json", "request", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused transaction files no request"
    );

    // A policy is a configuration change: filed by an officer, approved by another. Then the
    // warm wallet's allowed transfer waits for a signature approval, and a transfer that a
    // quorum rule catches needs that rule's approvals.
    let wid = wallet["id"].as_str().unwrap().to_owned();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "max_fee": "21000",
            "lists": {"payees": ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]},
            "rules": [
              {"name": "small", "effect": "allow", "call": "transfer", "to": "@payees",
               "max_amount": "100000", "daily_limit": "150000"},
              {"name": "large", "effect": "quorum", "approvals": 2, "call": "transfer",
               "to": "@payees"}]}"#,
    )
    .unwrap();
    let set = pending(&node.cli(
        a,
        &[
            "--json",
            "policy",
            "set",
            "--wallet",
            &wid,
            "--file",
            policy.to_str().unwrap(),
        ],
    ));
    let shown = node
        .cli(a, &["--json", "request", "show", &set])
        .ok()
        .json();
    assert!(
        shown["description"]
            .as_str()
            .unwrap()
            .contains("with rules: small (allow), large (quorum)"),
        "{shown}"
    );
    approve(&node, bob, &set).ok();
    let p = node
        .cli(t, &["--json", "policy", "show", "--wallet", &wid])
        .ok()
        .json();
    assert_eq!(p["version"], 1);
    let eth_tx = |value: u32, nonce: u32| {
        format!(
            r#"{{"tx": {{"nonce": "{nonce:#x}", "gas": "0x5208", "gasPrice": "0x1", "value": "{value:#x}",
                       "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}}}"#
        )
    };
    let sign_path = format!("/v1/wallets/{wid}/eth/sign-tx");
    let (status, body) = node.http("POST", &sign_path, t, Some(&eth_tx(60_000, 0)));
    assert_eq!(status, 202, "{body}");
    let small = body["request_id"].as_str().unwrap().to_owned();
    let done = approve(&node, ann, &small).ok().json();
    assert_eq!(done["status"], "executed");
    let result = node
        .cli(t, &["--json", "request", "show", &small])
        .ok()
        .json()["result"]
        .clone();
    assert!(result["raw"].as_str().unwrap().starts_with("0xf8"));
    assert_eq!(result["intent"]["value_wei"], "60000");
    // The large transfer needs two approvals, though the domain's quorum is one.
    let (status, body) = node.http("POST", &sign_path, t, Some(&eth_tx(500_000, 1)));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["required"], 2);
    // Over the daily limit (value and fee cap count), an approved small transfer is still
    // refused, and signs nothing.
    let (_, body) = node.http("POST", &sign_path, t, Some(&eth_tx(100_000, 2)));
    let over = body["request_id"].as_str().unwrap().to_owned();
    // (closed as failed, so that a later approval cannot sign it after all).
    let refused = approve(&node, ann, &over).ok().json();
    assert_eq!(refused["status"], "failed");
    let closed = node
        .cli(t, &["--json", "request", "show", &over])
        .ok()
        .json();
    assert_eq!(
        closed["result"]["error"]["code"], "daily_limit_exceeded",
        "{closed}"
    );
    assert!(closed["result"]["raw"].is_null());

    // A warm Bitcoin wallet: its PSBT waits for an approver who reads what it pays, and the
    // approved request carries the finalized transaction (checked by embit).
    let bw = wallet_from(
        &node,
        a,
        dir.path(),
        ABANDON,
        &["--domain", "ops", "--chain", "bitcoin"],
    );
    let policy = dir.path().join("btc-policy.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "max_fee": "5000", "rules": [
              {"name": "pay", "effect": "allow", "call": "transfer",
               "to": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "max_amount": "100000"}]}"#,
    )
    .unwrap();
    let set = pending(&node.cli(
        a,
        &[
            "--json",
            "policy",
            "set",
            "--wallet",
            &bw,
            "--file",
            policy.to_str().unwrap(),
        ],
    ));
    approve(&node, bob, &set).ok();
    let built = oracle(
        "btc.py",
        &serde_json::json!({"mnemonic": ABANDON, "kind": "p2wpkh", "network": "main",
            "build": {"inputs": [[0, 50_000], [3, 30_000]],
                      "outputs": [["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 60_000]],
                      "change": [1, 19_000]}}),
    );
    let psbt = built["psbt"].as_str().unwrap();
    let r = pending(&node.cli(
        t,
        &[
            "--json",
            "btc",
            "sign-psbt",
            "--wallet",
            &bw,
            "--psbt",
            psbt,
        ],
    ));
    let shown = node.cli(t, &["--json", "request", "show", &r]).ok().json();
    let description = shown["description"].as_str().unwrap();
    assert!(
        description.contains("pays 60000 sat to bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4;")
            && description.contains("(the wallet's m/84'/0'/0'/1/1)")
            && description.contains("fee 1000 sat, from 2 input(s)"),
        "{description}"
    );
    assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");
    let result = node.cli(t, &["--json", "request", "show", &r]).ok().json()["result"].clone();
    let v = oracle(
        "btc.py",
        &serde_json::json!({"mnemonic": ABANDON, "kind": "p2wpkh", "network": "main",
            "verify": {"psbt": psbt, "tx": result["tx"]}}),
    );
    assert_eq!(v["valid"], serde_json::json!([true, true]), "{v}");

    // A warm EOS wallet: the packed transfer waits for an approver who reads its actions.
    let ew = node
        .cli(
            a,
            &[
                "--json", "wallet", "create", "--domain", "ops", "--chain", "eos",
            ],
        )
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        &policy,
        r#"{"version": 1, "rules": [
              {"name": "rent", "effect": "allow", "call": "token.transfer", "to": "bob",
               "token": "eosio.token:4,eos", "max_amount": "10000"}]}"#,
    )
    .unwrap();
    let set = pending(&node.cli(
        a,
        &[
            "--json",
            "policy",
            "set",
            "--wallet",
            &ew,
            "--file",
            policy.to_str().unwrap(),
        ],
    ));
    approve(&node, bob, &set).ok();
    let r = pending(&node.cli(
        t,
        &[
            "--json",
            "eos",
            "sign",
            "--wallet",
            &ew,
            "--chain-id",
            EOS_MAINNET,
            "--tx",
            &eos_fresh(EOS_TO_BOB),
        ],
    ));
    let shown = node.cli(t, &["--json", "request", "show", &r]).ok().json();
    let description = shown["description"].as_str().unwrap();
    assert!(
        description.contains("eosio.token::transfer 1.0000 EOS from alice to bob (memo \"rent\")"),
        "{description}"
    );
    assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");
    let result = node.cli(t, &["--json", "request", "show", &r]).ok().json()["result"].clone();
    assert!(
        result["signature"].as_str().unwrap().starts_with("SIG_K1_"),
        "{result}"
    );

    // A validator's exit is authorised only by a quorum: filed, described, approved.
    let validator = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "ops",
                "--algorithm",
                "bls12-381",
            ],
        )
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = pending(&node.cli(
        a,
        &[
            "--json",
            "eth2",
            "authorize-exit",
            "--key",
            &validator,
            "--epoch",
            "200000",
        ],
    ));
    let shown = node.cli(a, &["--json", "request", "show", &r]).ok().json();
    let description = shown["description"].as_str().unwrap();
    assert!(
        description.starts_with("authorise the voluntary exit of validator key")
            && description.ends_with("at epoch 200000: the validator leaves the chain for good"),
        "{description}"
    );
    assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");

    // A validator key leaves as an EIP-2335 keystore only cold, only by quorum, and only to
    // its requester, who names the password when collecting it.
    let password = dir.path().join("keystore-password");
    std::fs::write(&password, "correct horse battery").unwrap();
    let out = dir.path().join("exported.json");
    let export = |who: Option<&str>, flag: &str, id: &str| {
        node.cli(
            who,
            &[
                "--json",
                "eth2",
                "export",
                flag,
                id,
                "--kdf",
                "pbkdf2",
                "--password-file",
                password.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    assert_eq!(export(a, "--key", &validator).error_code(), "key_not_cold");
    node.cli(
        Some(&carl.token),
        &["--json", "key", "temperature", &validator, "cold"],
    )
    .ok();
    let r = pending(&export(a, "--key", &validator));
    let shown = node.cli(a, &["--json", "request", "show", &r]).ok().json();
    assert!(
        shown["description"]
            .as_str()
            .unwrap()
            .contains("out as an EIP-2335 keystore (pbkdf2) for the requester"),
        "{shown}"
    );
    assert!(!shown.to_string().contains("correct horse"), "{shown}");
    assert_eq!(
        export(a, "--request", &r).error_code(),
        "request_not_approved"
    );
    assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");
    // Only the requester collects it.
    assert_eq!(
        export(Some(&bob.token), "--request", &r).error_code(),
        "not_found"
    );
    assert!(!out.exists());
    let written = export(a, "--request", &r).ok().json();
    let keystore: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let shown_key = node
        .cli(a, &["--json", "key", "show", &validator])
        .ok()
        .json();
    assert_eq!(keystore["pubkey"], shown_key["public_key"], "{written}");
    let key =
        strongroom_crypto::decrypt_eip2335(&std::fs::read(&out).unwrap(), "correct horse battery")
            .unwrap();
    assert_eq!(
        hex::encode(key.public_key()),
        shown_key["public_key"].as_str().unwrap()
    );
    // Collected once only (and the file is never overwritten).
    std::fs::remove_file(&out).unwrap();
    assert_eq!(export(a, "--request", &r).error_code(), "already_collected");
    assert!(!out.exists());
    // The key left: promoting it again is possible, one key at a time, and the approvers are
    // warned that another signer may run it.
    let w = pending(&node.cli(a, &["--json", "key", "temperature", &validator, "hot"]));
    let desc = node.cli(a, &["--json", "request", "show", &w]).ok().json()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        desc.contains(
            "WARNING: this validator key was released to another signer (eth2.export_keystore at"
        ),
        "{desc}"
    );
    node.cli(a, &["--json", "request", "reject", &w]).ok();

    // Each warm signature waits for an approver; the application reads the result.
    let s1 = pending(&node.cli(
        t,
        &["--json", "sign", "--key", &kid, "--message", "7061792031"],
    ));
    let mine = node.cli(t, &["--json", "request", "show", &s1]).ok().json();
    assert!(
        mine["description"]
            .as_str()
            .unwrap()
            .starts_with("sign the 5-byte message 7061792031 with the warm ed25519 key")
    );
    let done = approve(&node, ann, &s1).ok().json();
    assert_eq!(done["status"], "executed");
    let sig = node.cli(t, &["--json", "request", "show", &s1]).ok().json()["result"]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    strongroom_crypto::verify(
        strongroom_core::Algorithm::Ed25519,
        &pk,
        strongroom_crypto::Payload::Message(b"pay 1"),
        &hex::decode(sig).unwrap(),
    )
    .unwrap();

    // A signature request filed, then the key frozen by a custodian at once: approving it
    // afterwards fails, and nothing is signed.
    let s2 = pending(&node.cli(t, &["--json", "sign", "--key", &kid, "--message", "00"]));
    assert_eq!(
        node.cli(
            Some(&ann.token),
            &["--json", "key", "temperature", &kid, "cold"]
        )
        .error_code(),
        "forbidden"
    );
    let frozen = node
        .cli(
            Some(&carl.token),
            &["--json", "key", "temperature", &kid, "cold"],
        )
        .ok()
        .json();
    assert_eq!(frozen["temperature"], "cold");
    let failed = approve(&node, ann, &s2).ok().json();
    assert_eq!(
        (
            failed["status"].as_str(),
            failed["result"]["error"]["code"].as_str()
        ),
        (Some("failed"), Some("key_cold"))
    );
    assert!(failed["result"].get("signature").is_none());
    let r = node.cli(t, &["--json", "sign", "--key", &kid, "--message", "00"]);
    assert_eq!((r.code, r.error_code().as_str()), (1, "key_cold"));

    // Warming needs a quorum; then the key signs at once.
    let w = pending(&node.cli(a, &["--json", "key", "temperature", &kid, "hot"]));
    let desc = node.cli(a, &["--json", "request", "show", &w]).ok().json()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(desc.contains("hot (it is cold now)"), "{desc}");
    assert_eq!(
        approve(&node, bob, &w).error_code(),
        "not_an_approver",
        "key operations need an approver"
    );
    assert_eq!(approve(&node, ann, &w).ok().json()["status"], "executed");
    assert_eq!(
        node.cli(a, &["--json", "key", "show", &kid]).ok().json()["temperature"],
        "hot"
    );
    node.cli(t, &["--json", "sign", "--key", &kid, "--message", "01"])
        .ok();

    // Freeze again, then a database editor flips it back to hot: refused.
    node.cli(
        Some(&carl.token),
        &["--json", "key", "temperature", &kid, "cold"],
    )
    .ok();
    node.stop();
    db(&data)
        .execute(
            "UPDATE keys SET temperature = 'hot' WHERE id = ?1",
            [hex::decode(kid.replace('-', "")).unwrap()],
        )
        .unwrap();
    let node = Node::production(&data);
    node.cli_stdin(None, &["--json", "operator", "unseal"], &share)
        .ok();
    let r = node.cli(t, &["--json", "sign", "--key", &kid, "--message", "02"]);
    assert_eq!(r.error_code(), "key_unavailable");
    node.stop();

    let conn = audit_events(&data, &[&share]);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE operation = 'key.freeze' AND outcome = 1"),
        3,
        "the ed25519 key twice, the validator key once"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM audit WHERE operation = 'key.warm' AND actor = 'request:{w}'"
        )),
        1
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM audit WHERE operation = 'key.sign' AND actor = 'request:{s1}'"
        )),
        1
    );
    audit_verify(&data).ok();
}

/// A hot key with an idle limit demotes itself to warm: lazily when it is asked to sign after
/// the limit (the signature then waits for a quorum) and by the sweeper when nobody asks. Each
/// signature restarts the idle clock; a tighter limit is immediate, a looser one needs a
/// quorum. Driven under a faked wall clock.
#[test]
fn idle_hot_keys_demote_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path());
    let data = dir.path().join("prod");
    let node = Node::production_with_env(&data, &clock.env());
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let enrolled: Vec<Enrolled> = [
        ("alice", "security-officer"),
        ("bob", "security-officer"),
        ("ann", "approver"),
    ]
    .iter()
    .map(|(n, r)| enrol(&node, &boot, n, &[r]))
    .collect();
    let people: Vec<Person> = ["alice", "bob", "ann"]
        .iter()
        .zip(&enrolled)
        .map(|(n, e)| person_from(&node, dir.path(), n, e))
        .collect();
    let (alice, bob, ann) = (&people[0], &people[1], &people[2]);
    let a = Some(alice.token.as_str());
    let r = pending(&node.cli(a, &["--json", "domain", "create", "ops"]));
    approve(&node, bob, &r).ok();
    let kid = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "ops",
                "--algorithm",
                "secp256k1",
            ],
        )
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let show = || node.cli(a, &["--json", "key", "show", &kid]).ok().json();
    let sign = || {
        node.cli(
            Some(&app),
            &[
                "--json",
                "sign",
                "--key",
                &kid,
                "--digest",
                &sha256_hex(b"x"),
            ],
        )
    };
    let make_hot = |idle: &str| {
        let r = pending(&node.cli(
            a,
            &["--json", "key", "temperature", &kid, "hot", "--idle", idle],
        ));
        let shown = node.cli(a, &["--json", "request", "show", &r]).ok().json();
        assert!(
            shown["description"]
                .as_str()
                .unwrap()
                .contains("demoting itself to warm after"),
            "{shown}"
        );
        assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");
    };

    // Limits outside 1 minute to 30 days, or on a non-hot temperature, are refused.
    for (t, idle) in [("hot", "10s"), ("hot", "31days"), ("warm", "5m")] {
        let r = node.cli(
            a,
            &["--json", "key", "temperature", &kid, t, "--idle", idle],
        );
        assert_eq!(r.error_code(), "invalid_idle_limit", "{t} {idle}");
    }

    make_hot("1m");
    let k = show();
    assert_eq!(
        (k["temperature"].as_str(), k["hot_idle_seconds"].as_u64()),
        (Some("hot"), Some(60))
    );
    sign().ok();
    // Each signature restarts the clock: 40 s, then 90 s in, it still signs at once.
    clock.set("+40s");
    sign().ok();
    clock.set("+90s");
    sign().ok();
    // 110 s after the last signature: it demotes itself, and this signature waits for a
    // quorum instead.
    clock.set("+200s");
    let waiting = pending(&sign());
    assert_eq!(show()["temperature"], "warm");
    node.cli(Some(&app), &["--json", "request", "show", &waiting])
        .ok();

    // Nobody signs: the sweeper demotes it (it runs every few seconds).
    make_hot("1m");
    clock.set("+300s");
    wait_up_to(20, || show()["temperature"] == "warm");

    // Tightening the limit of a hot key is a step colder (at once); loosening needs a quorum.
    make_hot("10m");
    let tighter = node
        .cli(
            a,
            &["--json", "key", "temperature", &kid, "hot", "--idle", "2m"],
        )
        .ok()
        .json();
    assert_eq!(tighter["hot_idle_seconds"], 120);
    pending(&node.cli(
        a,
        &["--json", "key", "temperature", &kid, "hot", "--idle", "20m"],
    ));
    pending(&node.cli(a, &["--json", "key", "temperature", &kid, "hot"]));
    node.stop();

    // Two demotions, both by the node itself, both in the verified chain.
    let conn = audit_events(&data, &shares_of(&init));
    let demotions: Vec<(String, i64)> = conn
        .prepare("SELECT actor, outcome FROM audit WHERE operation = 'key.demote'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        demotions,
        vec![("system".to_owned(), 1), ("system".to_owned(), 1)]
    );
    audit_verify(&data).ok();
}
