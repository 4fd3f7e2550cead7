//! Tampering and failure: sealed blobs moved in the database, audit records edited, deleted,
//! reordered or cut off, floods of unauthenticated requests, kill -9 after acknowledgements,
//! and damaged databases.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

#[test]
fn moved_or_copied_blobs_fail_to_open_and_the_failure_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let t = Some(root.as_str());
    node.cli(t, &["domain", "create", "other"]).ok();
    let a = node
        .cli(t, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json();
    let b = node
        .cli(t, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json();
    let c = node
        .cli(
            t,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "other",
                "--algorithm",
                "secp256k1",
            ],
        )
        .ok()
        .json();
    let (a, b, c) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    let domains = node.cli(t, &["--json", "domain", "list"]).ok().json();
    let other_domain = domains
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "other")
        .map(|d| hex::decode(d["id"].as_str().unwrap().replace('-', "")).unwrap())
        .unwrap();
    let digest = sha256_hex(b"m");
    // Use every key once so that the node holds them in memory.
    for k in [a, b, c] {
        node.cli(t, &["--json", "sign", "--key", k, "--digest", &digest])
            .ok();
    }

    // Edit the database of the stopped node: the running node is the database's only writer and
    // keeps the key records it wrote in memory, so the edits are seen at the next start.
    node.stop();
    let uuid = |s: &str| hex::decode(s.replace('-', "")).unwrap();
    let conn = db(&data);
    // Key a's row moved to the other domain.
    conn.execute(
        "UPDATE keys SET domain_id = ?1 WHERE id = ?2",
        rusqlite::params![other_domain, uuid(a)],
    )
    .unwrap();
    // Key c's blob copied into key b's row.
    conn.execute(
        "UPDATE keys SET sealed_secret = (SELECT sealed_secret FROM keys WHERE id = ?1) WHERE id = ?2",
        rusqlite::params![uuid(c), uuid(b)],
    )
    .unwrap();
    drop(conn);
    let node = Node::dev(&data);
    for k in [a, b] {
        let r = node.cli(t, &["--json", "sign", "--key", k, "--digest", &digest]);
        assert_eq!(
            (r.code, r.error_code().as_str()),
            (1, "key_unavailable"),
            "key {k}"
        );
        assert!(
            !r.stdout.contains("sealed") && !r.stdout.contains("aead"),
            "error leaks detail: {}",
            r.stdout
        );
    }
    // Tampering behind a running node's back is caught once it seals and unseals: the node
    // then reads the key again from the database.
    let e = node
        .cli(t, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json();
    let e = e["id"].as_str().unwrap();
    node.cli(t, &["--json", "sign", "--key", e, "--digest", &digest])
        .ok();
    // Its (sealed) label replaced by another key's.
    db(&data)
        .execute(
            "UPDATE keys SET label = (SELECT label FROM keys WHERE id = ?1) WHERE id = ?2",
            rusqlite::params![uuid(c), uuid(e)],
        )
        .unwrap();
    node.cli(t, &["--json", "operator", "seal"]).ok();
    let share = data.join("dev-unseal-share");
    node.cli(
        None,
        &[
            "--json",
            "operator",
            "unseal",
            "--share-file",
            share.to_str().unwrap(),
        ],
    )
    .ok();
    let r = node.cli(t, &["--json", "sign", "--key", e, "--digest", &digest]);
    assert_eq!(
        r.error_code(),
        "stored_data_corrupt",
        "edited label after seal/unseal"
    );

    // The untouched key still signs.
    node.cli(t, &["--json", "sign", "--key", c, "--digest", &digest])
        .ok();
    node.stop();

    let failures: Vec<String> = dev_audit_events(&data)
        .prepare("SELECT code FROM audit WHERE operation = 'key.sign' AND outcome = 3 ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        failures,
        ["key_unavailable", "key_unavailable", "stored_data_corrupt"]
    );
    audit_verify(&data).ok();
}

/// A stopped dev vault with some history, for tamper experiments on copies.
fn history(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("orig");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let t = Some(root.as_str());
    let k = node
        .cli(t, &["--json", "key", "create", "--algorithm", "ed25519"])
        .ok()
        .json();
    let id = k["id"].as_str().unwrap().to_owned();
    for i in 0..12 {
        node.cli(
            t,
            &[
                "--json",
                "sign",
                "--key",
                &id,
                "--message",
                &format!("{i:02x}"),
            ],
        )
        .ok();
    }
    node.stop();
    data
}

fn tampered(dir: &Path, orig: &Path, name: &str, sql: &str) -> (i32, serde_json::Value) {
    let copy = dir.join(name);
    copy_dir(orig, &copy);
    db(&copy).execute_batch(sql).unwrap();
    let r = audit_verify(&copy);
    (r.code, r.json())
}

#[test]
fn audit_verify_names_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let orig = history(dir.path());
    let v = audit_verify(&orig).ok().json();
    let n = v["records"].as_u64().unwrap();
    assert!(n > 15);
    // Without keys, sealed events are checked through their digests.
    assert!(v["sealed_records"].as_u64().unwrap() > 10, "{v}");

    let (code, v) = tampered(
        dir.path(),
        &orig,
        "edited",
        "UPDATE audit SET time = time + 1 WHERE seq = 9;",
    );
    assert_eq!((code, v["first_bad_record"].as_u64()), (1, Some(9)), "{v}");

    let (code, v) = tampered(
        dir.path(),
        &orig,
        "digest",
        "UPDATE audit SET digest = zeroblob(32) WHERE seq = 4 AND sealed = 1;",
    );
    assert_eq!((code, v["first_bad_record"].as_u64()), (1, Some(4)), "{v}");

    let (code, v) = tampered(
        dir.path(),
        &orig,
        "deleted",
        "DELETE FROM audit WHERE seq = 7;",
    );
    assert_eq!((code, v["first_bad_record"].as_u64()), (1, Some(7)), "{v}");

    // Swap the contents of records 5 and 6 (keeping their sequence numbers).
    let swap = "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (5, 6);
        UPDATE audit SET prev_hash = (SELECT prev_hash FROM t WHERE seq = 6), hash = (SELECT hash FROM t WHERE seq = 6),
            time = (SELECT time FROM t WHERE seq = 6), digest = (SELECT digest FROM t WHERE seq = 6),
            sealed = (SELECT sealed FROM t WHERE seq = 6), event = (SELECT event FROM t WHERE seq = 6) WHERE seq = 5;
        UPDATE audit SET prev_hash = (SELECT prev_hash FROM t WHERE seq = 5), hash = (SELECT hash FROM t WHERE seq = 5),
            time = (SELECT time FROM t WHERE seq = 5), digest = (SELECT digest FROM t WHERE seq = 5),
            sealed = (SELECT sealed FROM t WHERE seq = 5), event = (SELECT event FROM t WHERE seq = 5) WHERE seq = 6;";
    let (code, v) = tampered(dir.path(), &orig, "reordered", swap);
    assert_eq!((code, v["first_bad_record"].as_u64()), (1, Some(5)), "{v}");

    // Cut the tail together with the heads that covered it: the head file still knows.
    let cut = format!(
        "DELETE FROM audit WHERE seq > {}; DELETE FROM audit_heads WHERE seq > {};",
        n - 3,
        n - 3
    );
    let (code, v) = tampered(dir.path(), &orig, "truncated", &cut);
    assert_eq!(
        (code, v["first_bad_record"].as_u64()),
        (1, Some(n - 2)),
        "{v}"
    );

    // Re-hashing an edited record to hide the edit breaks the next link (or a signed head).
    let (code, _) = tampered(
        dir.path(),
        &orig,
        "rehash",
        "UPDATE audit SET hash = zeroblob(32) WHERE seq = 3;",
    );
    assert_eq!(code, 1);

    // An edited sealed event: the chain commits to its digest, so only the auditor's export
    // (where the node opens every event) can tell, and it names the record.
    let copy = dir.path().join("ciphertext");
    copy_dir(&orig, &copy);
    db(&copy)
        .execute_batch(
            "UPDATE audit SET event = zeroblob(length(event)) WHERE seq = 4 AND sealed = 1;",
        )
        .unwrap();
    let node = Node::dev(&copy);
    let export = dir.path().join("ciphertext.ndjson");
    node.cli(
        Some(&node.dev_token()),
        &[
            "--json",
            "audit",
            "export",
            "--out",
            export.to_str().unwrap(),
        ],
    )
    .ok();
    node.stop();
    let r = cli(
        "http://127.0.0.1:1",
        None,
        &[
            "--json",
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        (r.code, r.json()["first_bad_record"].as_u64()),
        (1, Some(4)),
        "{}",
        r.stdout
    );

    // Removing the head file while the database has heads is itself tampering.
    let copy = dir.path().join("nohead");
    copy_dir(&orig, &copy);
    std::fs::remove_file(copy.join("audit-head")).unwrap();
    assert_eq!(audit_verify(&copy).code, 1);
}

#[test]
fn unauthenticated_floods_are_rate_limited_and_aggregated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let url = format!("{}/v1/keys", node.addr);
    // 150 unauthenticated requests as fast as curl can send them on one connection.
    let mut args = vec!["-s", "-w", "%{http_code}\n"];
    for _ in 0..150 {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap();
    let codes: Vec<u16> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(codes.len(), 150);
    let limited = codes.iter().filter(|&&c| c == 429).count();
    let refused = codes.iter().filter(|&&c| c == 401).count();
    assert!(limited > 0, "no 429 in {codes:?}");
    assert_eq!(limited + refused, 150);
    // Made-up tokens in the right format are rate limited before they reach the database.
    let bogus = format!("Authorization: Bearer srt_{}", "cd".repeat(32));
    let mut args = vec!["-s", "-w", "%{http_code}\n", "-H", bogus.as_str()];
    for _ in 0..100 {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap();
    let codes: Vec<u16> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(codes.iter().all(|&c| c == 429 || c == 401), "{codes:?}");
    assert!(
        codes.iter().filter(|&&c| c == 429).count() > 90,
        "bogus tokens not limited: {codes:?}"
    );
    // An authenticated client is not throttled by the flood.
    let token = node.dev_token();
    node.cli(Some(&token), &["--json", "key", "list"]).ok();
    node.stop();

    // Few records, but they account for every request.
    let conn = dev_audit_events(&data);
    let (records, total): (i64, i64) = conn
        .query_row("SELECT count(*), sum(count) FROM audit WHERE operation = 'key.list' AND actor = 'anonymous'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(
        total, 250,
        "150 without a token plus 100 with made-up tokens"
    );
    assert!(records <= 5, "{records} records for 250 requests");
    audit_verify(&data).ok();
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let mut created = vec![];
    let mut handles = vec![];
    for _ in 0..16 {
        let (addr, token) = (node.addr.clone(), root.clone());
        handles.push(std::thread::spawn(move || {
            cli(
                &addr,
                Some(&token),
                &["--json", "key", "create", "--algorithm", "secp256k1"],
                None,
            )
            .ok()
            .json()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    for h in handles {
        created.push(h.join().unwrap());
    }
    // Every create was acknowledged; now crash without any chance to flush.
    node.kill9();
    let node = Node::dev(&data);
    let listed = node
        .cli(Some(&root), &["--json", "key", "list"])
        .ok()
        .json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    for id in &created {
        assert!(ids.contains(&id.as_str()), "acknowledged key {id} lost");
    }
    node.stop();
    let v = audit_verify(&data).ok().json();
    let creates: i64 = dev_audit_events(&data)
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'key.create' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(creates, 16);
    assert_eq!(v["ok"], true);
}

#[test]
fn damaged_or_missing_database_is_never_replaced_by_a_fresh_vault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    Node::dev(&data).stop();
    let start = |d: &Path| {
        std::process::Command::new(BIN)
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                d.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let truncated = dir.path().join("truncated");
    copy_dir(&data, &truncated);
    let _ = std::fs::remove_file(truncated.join("vault.db-wal"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(truncated.join("vault.db"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let out = start(&truncated);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(truncated.join("vault.db")).unwrap().len(),
        0,
        "must not be reinitialised"
    );

    let garbage = dir.path().join("garbage");
    copy_dir(&data, &garbage);
    let _ = std::fs::remove_file(garbage.join("vault.db-wal"));
    std::fs::write(garbage.join("vault.db"), vec![0xa5; 64 * 1024]).unwrap();
    assert!(!start(&garbage).status.success());

    let missing = dir.path().join("missing");
    copy_dir(&data, &missing);
    std::fs::remove_file(missing.join("vault.db")).unwrap();
    let _ = std::fs::remove_file(missing.join("vault.db-wal"));
    let out = start(&missing);
    assert!(!out.status.success());
    assert!(!missing.join("vault.db").exists());
}

#[test]
fn token_rows_forged_or_edited_in_the_database_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let r = Some(root.as_str());
    node.cli(r, &["domain", "create", "other"]).ok();
    let app = node.cli(r, &["--json", "token", "create"]).ok().json();
    let app_token = app["token"].as_str().unwrap().to_owned();
    let revoked = node.cli(r, &["--json", "token", "create"]).ok().json();
    let revoked_token = revoked["token"].as_str().unwrap().to_owned();
    node.cli(r, &["token", "revoke", revoked["id"].as_str().unwrap()])
        .ok();
    node.cli(Some(&app_token), &["--json", "key", "list"]).ok();
    node.stop();

    // A database editor adds a root token whose value they know, un-revokes a token, and moves
    // an application token to another domain.
    let forged = format!("srt_{}", "ab".repeat(32));
    let conn = db(&data);
    conn.execute(
        "INSERT INTO tokens (id, hash, kind, domain_id, created_at, expires_at, revoked_at, mac)
         VALUES (randomblob(16), ?1, 'root', NULL, 0, NULL, NULL, zeroblob(32))",
        [hex::decode(sha256_hex(forged.as_bytes())).unwrap()],
    )
    .unwrap();
    conn.execute("UPDATE tokens SET revoked_at = NULL", [])
        .unwrap();
    conn.execute(
        "UPDATE tokens SET domain_id = (SELECT id FROM domains ORDER BY created_at DESC LIMIT 1)
         WHERE hash = ?1",
        [hex::decode(sha256_hex(app_token.as_bytes())).unwrap()],
    )
    .unwrap();
    drop(conn);

    let node = Node::dev(&data);
    for t in [&forged, &revoked_token, &app_token] {
        let out = node.cli(Some(t), &["--json", "key", "list"]);
        assert_eq!(
            out.error_code(),
            "invalid_token",
            "edited token row accepted"
        );
    }
    // The genuine root token still works.
    node.cli(r, &["--json", "domain", "list"]).ok();
}
