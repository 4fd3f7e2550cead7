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
