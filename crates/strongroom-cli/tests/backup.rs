//! Encrypted backup and restore: a backup opens only with a threshold of its own shares and
//! refuses a flipped byte or an edited header; restored onto a fresh data directory under a
//! fresh root, every key signs with the same public key, only the new unseal shares open it,
//! the restore is audited and the chain verifies. In production, a backup is a quorum request
//! its requester collects once, with shares encrypted to custodians.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

fn verify_signature(alg: strongroom_core::Algorithm, pk: &str, message: &[u8], sig: &str) {
    let digest: [u8; 32];
    let payload = if alg == strongroom_core::Algorithm::Ed25519 {
        strongroom_crypto::Payload::Message(message)
    } else {
        digest = message.try_into().unwrap();
        strongroom_crypto::Payload::Digest(&digest)
    };
    strongroom_crypto::verify(
        alg,
        &hex::decode(pk).unwrap(),
        payload,
        &hex::decode(sig).unwrap(),
    )
    .unwrap();
}

fn backup_cli(args: &[&str], stdin: Option<&str>) -> Run {
    let mut v = vec!["--json", "backup"];
    v.extend_from_slice(args);
    cli("http://127.0.0.1:1", None, &v, stdin)
}

#[test]
fn backup_then_restore_onto_a_fresh_directory_keeps_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let (data, fresh) = (dir.path().join("a"), dir.path().join("b"));
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let old_share = init["shares"][0].as_str().unwrap().to_owned();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    let r = pending(&node.cli(a, &["--json", "domain", "create", "d", "--new-keys", "hot"]));
    approve(&node, &bob, &r).ok();
    let keys: Vec<(String, strongroom_core::Algorithm, String)> = [
        ("ed25519", strongroom_core::Algorithm::Ed25519),
        ("secp256k1", strongroom_core::Algorithm::Secp256k1),
    ]
    .iter()
    .map(|(name, alg)| {
        let k = node
            .cli(
                a,
                &[
                    "--json",
                    "key",
                    "create",
                    "--domain",
                    "d",
                    "--algorithm",
                    name,
                ],
            )
            .ok()
            .json();
        (
            k["id"].as_str().unwrap().to_owned(),
            *alg,
            k["public_key"].as_str().unwrap().to_owned(),
        )
    })
    .collect();
    let app = app_token(&node, a, "d");
    let sign = |node: &Node, (id, alg, pk): &(String, strongroom_core::Algorithm, String)| {
        let message = sha256_hex(id.as_bytes());
        let flag = if *alg == strongroom_core::Algorithm::Ed25519 {
            "--message"
        } else {
            "--digest"
        };
        let sig = node
            .cli(Some(&app), &["--json", "sign", "--key", id, flag, &message])
            .ok()
            .json()["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        verify_signature(*alg, pk, &hex::decode(&message).unwrap(), &sig);
    };
    for k in &keys {
        sign(&node, k);
    }
    let file = dir.path().join("vault.backup");
    let r = pending(&node.cli(
        a,
        &[
            "--json",
            "backup",
            "create",
            "--out",
            file.to_str().unwrap(),
            "--backup-shares",
            "3",
            "--backup-threshold",
            "2",
        ],
    ));
    approve(&node, &bob, &r).ok();
    let made = node
        .cli(
            a,
            &[
                "--json",
                "backup",
                "create",
                "--out",
                file.to_str().unwrap(),
                "--request",
                &r,
            ],
        )
        .ok()
        .json();
    let shares: Vec<String> = made["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shares.len(), 3);
    // Nothing in the file is readable without the shares: no share, no public key in it.
    let text = std::fs::read_to_string(&file).unwrap();
    for s in &shares {
        assert!(!text.contains(s.as_str()));
    }
    for k in &keys {
        assert!(!text.contains(&k.2));
    }
    node.stop();

    // Verify: a threshold of the backup's own shares, and an untouched file.
    let two = format!("{}\n{}", shares[0], shares[2]);
    let ok = backup_cli(&["verify", file.to_str().unwrap()], Some(&two))
        .ok()
        .json();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["domain_keys"], 1);
    assert_eq!(
        backup_cli(&["verify", file.to_str().unwrap()], Some(&shares[0])).error_code(),
        "too_few_shares"
    );
    assert_eq!(
        backup_cli(&["verify", file.to_str().unwrap()], Some(&old_share)).error_code(),
        "invalid_share"
    );
    let tampered = |edit: &dyn Fn(&mut serde_json::Value), name: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        edit(&mut v);
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        backup_cli(&["verify", p.to_str().unwrap()], Some(&two)).error_code()
    };
    let flip = |v: &mut serde_json::Value| {
        let ct = v["ciphertext"].as_str().unwrap().to_owned();
        let mid = ct.len() / 2;
        let c = if &ct[mid..=mid] == "A" { "B" } else { "A" };
        v["ciphertext"] = format!("{}{c}{}", &ct[..mid], &ct[mid + 1..]).into();
    };
    assert_eq!(tampered(&flip, "flipped.backup"), "backup_unreadable");
    let later = |v: &mut serde_json::Value| {
        v["audit_seq"] = (v["audit_seq"].as_u64().unwrap() + 1).into();
    };
    assert_eq!(tampered(&later, "edited.backup"), "backup_unreadable");

    // Restore onto a fresh directory, with new unseal shares.
    let restore = |target: &Path| {
        backup_cli(
            &[
                "restore",
                file.to_str().unwrap(),
                "--data",
                target.to_str().unwrap(),
                "--shares",
                "2",
                "--threshold",
                "2",
            ],
            Some(&two),
        )
    };
    let restored = restore(&fresh).ok().json();
    let new: Vec<String> = restored["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(restore(&dir.path().join("a")).error_code(), "not_empty");

    // Held like a rolled-back database: the state is older than the vault's last, so
    // security officers accept it before anything unseals.
    let node = Node::production(&fresh);
    let st = node.cli(None, &["--json", "status"]).ok().json();
    assert!(
        st["rollback"]
            .as_str()
            .unwrap()
            .contains("restored from backup"),
        "{st}"
    );
    assert_eq!(
        node.cli_stdin(None, &["--json", "operator", "unseal"], &new[0])
            .error_code(),
        "database_rolled_back"
    );
    let accept = fresh.join("rollback-accept.json");
    for p in [&alice, &bob] {
        node.cli(
            None,
            &[
                "--json",
                "rollback",
                "sign",
                "--key-file",
                p.key.to_str().unwrap(),
                "--out",
                accept.to_str().unwrap(),
            ],
        )
        .ok();
    }
    // A new machine's configuration, like any changed one, needs the officers' signatures.
    sign_config(&node, &fresh, &alice);
    sign_config(&node, &fresh, &bob);
    // Only the new shares open it.
    let r = node.cli_stdin(None, &["--json", "operator", "unseal"], &old_share);
    assert_eq!(r.error_code(), "foreign_share", "{}", r.stdout);
    for s in &new {
        node.cli_stdin(None, &["operator", "unseal"], s).ok();
    }
    // The same keys, the same tokens.
    for k in &keys {
        sign(&node, k);
    }
    node.stop();
    assert!(!fresh.join("restored-from-backup").exists());
    audit_verify(&fresh).ok();
    // The storage key derives from the derivation base, which the backup carried. The copy
    // was taken just before its own record: the source has it, the restored vault does not.
    assert_eq!(
        granted_details(&audit_events(&data, &[&old_share]), "backup.create").len(),
        1
    );
    let events = audit_events(&fresh, &[&old_share]);
    assert_eq!(granted_details(&events, "backup.create").len(), 0);
    let restore_record = granted_details(&events, "backup.restore");
    assert_eq!(restore_record.len(), 1);
    assert!(restore_record[0].contains(made["backup_id"].as_str().unwrap()));
    assert!(restore_record[0].contains("alice") && restore_record[0].contains("bob"));
}

#[test]
fn a_production_backup_is_a_quorum_request_collected_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    let custodians: Vec<_> = ["c1", "c2"].iter().map(|n| keygen(dir.path(), n)).collect();
    let file = dir.path().join("prod.backup");
    let mut args = vec![
        "--json",
        "backup",
        "create",
        "--out",
        file.to_str().unwrap(),
        "--backup-shares",
        "2",
        "--backup-threshold",
        "2",
        "--custodian-keys",
    ];
    args.extend(custodians.iter().map(|c| c.1.as_str()));
    let r = pending(&node.cli(a, &args));
    assert!(!file.exists());
    // Only its requester collects it, only once approved, only once.
    let collect = |who: Option<&str>, out: &Path| {
        node.cli(
            who,
            &[
                "--json",
                "backup",
                "create",
                "--out",
                out.to_str().unwrap(),
                "--request",
                &r,
            ],
        )
    };
    assert_eq!(collect(a, &file).error_code(), "request_not_approved");
    approve(&node, &bob, &r).ok();
    assert_eq!(collect(Some(&bob.token), &file).error_code(), "not_found");
    collect(a, &file).ok();
    let again = dir.path().join("again.backup");
    assert_eq!(collect(a, &again).error_code(), "already_collected");
    node.stop();
    // Each custodian decrypts only their own share; together they open the backup.
    let share = |i: usize| dir.path().join(format!("prod.backup.share-{i}.age"));
    assert_eq!(age_decrypt(&custodians[1].0, &share(1)), None);
    let s1 = age_decrypt(&custodians[0].0, &share(1)).unwrap();
    let s2 = age_decrypt(&custodians[1].0, &share(2)).unwrap();
    let ok = backup_cli(
        &["verify", file.to_str().unwrap()],
        Some(&format!("{}\n{}", s1.trim(), s2.trim())),
    )
    .ok()
    .json();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(
        backup_cli(&["verify", file.to_str().unwrap()], Some(s1.trim())).error_code(),
        "too_few_shares"
    );
    // The request and the collection are on the record.
    let events = audit_events(&data, &shares_of(&init));
    assert_eq!(granted_details(&events, "backup.approved").len(), 1);
    assert_eq!(granted_details(&events, "backup.create").len(), 1);
}
