//! Rollback detection: a node remembers the newest audit head it signed in its data
//! directory; started over an older copy of the database (a restored backup, which would undo
//! slashing records and spent limits), it says so in `status`, audits it, and refuses to
//! unseal — dev mode's own bootstrap included.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn copy_db(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["vault.db", "vault.db-wal", "vault.db-shm"] {
        let _ = std::fs::remove_file(to.join(f));
        if from.join(f).exists() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

#[test]
fn an_older_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let backup = dir.path().join("backup");
    let node = Node::dev(&data);
    let token = node.dev_token();
    node.cli(
        Some(&token),
        &["--json", "key", "create", "--algorithm", "ed25519"],
    )
    .ok();
    node.stop();
    copy_db(&data, &backup);

    // The same database, restarted: fine.
    let node = Node::dev(&data);
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert!(st.get("rollback").is_none(), "{st}");
    for _ in 0..3 {
        node.cli(
            Some(&token),
            &["--json", "key", "create", "--algorithm", "ed25519"],
        )
        .ok();
    }
    node.stop();

    // The older copy put back: refused.
    copy_db(&backup, &data);
    let node = Node::dev(&data);
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(st["sealed"], true, "{st}");
    let why = st["rollback"].as_str().unwrap();
    assert!(
        why.contains("the database's audit log ends at record"),
        "{why}"
    );
    let share = std::fs::read_to_string(data.join("dev-unseal-share")).unwrap();
    let refused = node.cli_stdin(None, &["--json", "operator", "unseal"], share.trim());
    assert_eq!(refused.error_code(), "database_rolled_back");
    assert_eq!(
        node.http("GET", "/v1/sys/status", None, None).1["sealed"],
        true
    );
    node.stop();
    let events = clear_audit_events(&data);
    assert!(
        events.iter().any(|e| e.contains("rollback.detected")),
        "a rollback.detected record, in the clear: {events:?}"
    );
}

/// A deliberate restore: the older copy is refused until enough security officers sign this
/// very finding (`rollback sign`) and the document is in the data directory; a signature by
/// anyone else does not count (and seals the vault again); once accepted, the vault runs on
/// the older database, the acceptance is audited, and the next start finds no rollback.
#[test]
fn security_officers_accept_a_deliberate_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let backup = dir.path().join("backup");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let share = init["shares"][0].as_str().unwrap().to_owned();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    node.stop();
    copy_db(&data, &backup);

    // More history, then the older copy put back.
    let node = Node::production(&data);
    node.cli_stdin(None, &["--json", "operator", "unseal"], &share)
        .ok();
    let a = Some(alice.token.as_str());
    for _ in 0..3 {
        node.cli(a, &["--json", "operator", "list"]).ok();
    }
    node.stop();
    copy_db(&backup, &data);
    let node = Node::production(&data);
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    let finding = st["rollback_finding"].clone();
    let sha = finding["sha256"].as_str().unwrap().to_owned();
    assert!(
        finding["signed_seq"].as_u64() > finding["database_seq"].as_u64(),
        "{st}"
    );
    let unseal = |node: &Node| node.cli_stdin(None, &["--json", "operator", "unseal"], &share);
    assert_eq!(unseal(&node).error_code(), "database_rolled_back");

    let accept = data.join("rollback-accept.json");
    let sign = |key: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "rollback",
            "sign",
            "--key-file",
            key.to_str().unwrap(),
            "--out",
            accept.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        node.cli(None, &args)
    };
    // Not the finding the signer expects: nothing signed.
    assert_eq!(sign(&alice.key, &["--expect", &"0".repeat(64)]).code, 2);
    assert!(!accept.exists());
    // Someone who is no security officer: the shares unseal, the check fails, sealed again.
    let outsider = dir.path().join("outsider.key");
    node.cli(
        None,
        &[
            "approval-key",
            "generate",
            "--out",
            outsider.to_str().unwrap(),
        ],
    )
    .ok();
    sign(&outsider, &[]).ok();
    let refused = unseal(&node);
    assert_eq!(
        refused.error_code(),
        "database_rolled_back",
        "{}",
        refused.stderr
    );
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(
        (
            st["sealed"].as_bool(),
            st["rollback_finding"]["sha256"].as_str()
        ),
        (Some(true), Some(sha.as_str()))
    );

    // One officer is not enough, whatever the (older) database's rule says.
    let signed = sign(&alice.key, &["--expect", &sha]).ok().json();
    assert_eq!(
        (signed["signatures"].as_u64(), signed["signed_seq"].as_u64()),
        (Some(2), finding["signed_seq"].as_u64())
    );
    assert_eq!(unseal(&node).error_code(), "database_rolled_back");
    // Bob too: the vault unseals on the older database.
    sign(&bob.key, &["--expect", &sha]).ok();
    unseal(&node).ok();
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(st["sealed"], false, "{st}");
    assert!(st.get("rollback").is_none(), "{st}");
    node.cli(a, &["--json", "operator", "list"]).ok();
    node.stop();

    // The head file was rebased: the next start finds nothing, and the chain verifies.
    let node = Node::production(&data);
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert!(st.get("rollback").is_none(), "{st}");
    assert!(
        !accept.exists(),
        "the used acceptance is removed once the rebase held"
    );
    unseal(&node).ok();
    node.cli(a, &["--json", "operator", "list"]).ok();
    node.stop();
    let events = audit_events(&data, &[share.as_str()]);
    let accepted = granted_details(&events, "rollback.accepted");
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert!(
        accepted[0].contains("alice") && accepted[0].contains("bob") && accepted[0].contains(&sha),
        "{accepted:?}"
    );
}
