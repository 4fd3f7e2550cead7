//! Tamper response: a custodian (or security officer) runs `operator tamper` — no quorum — and
//! every key is zeroized at once (the vault seals; signing answers `sealed`), the event is
//! audited with its reason, and a marker holds automatic unseals until the shares are
//! presented; an approver may not. The configured signal (SIGUSR2 by default) does the same.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn tamper_zeroizes_every_key_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let r = Some(root.as_str());
    let key = node
        .cli(r, &["--json", "key", "create", "--algorithm", "ed25519"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = node.cli(r, &["--json", "token", "create"]).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    node.cli(
        Some(&app),
        &["--json", "sign", "--key", &key, "--message", "00"],
    )
    .ok();
    let carl = enrol(&node, &root, "carl", &["custodian"]);
    let ann = enrol(&node, &root, "ann", &["approver"]);
    let carl = login_person(&node, dir.path(), "carl", &carl);
    let ann = login_person(&node, dir.path(), "ann", &ann);
    assert_eq!(
        node.cli(Some(&ann), &["--json", "operator", "tamper"])
            .error_code(),
        "forbidden"
    );
    let st = node
        .cli(
            Some(&carl),
            &[
                "--json",
                "operator",
                "tamper",
                "--reason",
                "enclosure opened",
            ],
        )
        .ok()
        .json();
    assert_eq!(st["sealed"], true, "{st}");
    assert!(data.join("tampered").exists());
    let r2 = node.cli(
        Some(&app),
        &["--json", "sign", "--key", &key, "--message", "00"],
    );
    assert_ne!(r2.code, 0, "nothing signs after a tamper response");
    // The shares bring it back (dev mode: its own share), and end the hold.
    let share = std::fs::read_to_string(data.join("dev-unseal-share")).unwrap();
    node.cli_stdin(None, &["--json", "operator", "unseal"], share.trim())
        .ok();
    assert!(!data.join("tampered").exists());
    node.cli(
        Some(&app),
        &["--json", "sign", "--key", &key, "--message", "00"],
    )
    .ok();

    // The signal does the same.
    let pid = node.child.as_ref().unwrap().id();
    assert!(
        std::process::Command::new("kill")
            .args(["-USR2", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["sealed"] == true);
    assert!(data.join("tampered").exists());
    node.stop();

    let events = audit_events(&data, &[share.trim()]);
    let rows: Vec<(String, String, i64, String)> = {
        let mut stmt = events
            .prepare(
                "SELECT actor, operation, outcome, coalesce(detail, '') FROM audit
                 WHERE operation = 'operator.tamper' ORDER BY seq",
            )
            .unwrap();
        stmt.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].2, 2, "the approver was denied");
    assert!(
        rows[1].0.starts_with("operator:") && rows[1].2 == 1,
        "{rows:?}"
    );
    assert!(rows[1].3.contains("enclosure opened") && rows[1].3.contains("\"how\":\"api\""));
    assert_eq!((rows[2].0.as_str(), rows[2].2), ("system", 1));
    assert!(rows[2].3.contains("\"how\":\"signal\""), "{rows:?}");
}

#[test]
fn an_integrity_failure_of_the_sealed_state_is_a_tamper_response() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let key = node
        .cli(
            Some(&root),
            &["--json", "key", "create", "--algorithm", "ed25519"],
        )
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    node.stop();
    // The default domain's sealed master key edited in the database: the root still unseals
    // the vault, but the domain key no longer opens under it.
    let conn = db(&data);
    let blob: Vec<u8> = conn
        .query_row("SELECT wrapped_key FROM domains", [], |r| r.get(0))
        .unwrap();
    let mut edited = blob.clone();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    conn.execute("UPDATE domains SET wrapped_key = ?1", [&edited])
        .unwrap();
    drop(conn);
    let node = Node::dev(&data);
    let r = node.cli(
        Some(&root),
        &["--json", "sign", "--key", &key, "--message", "00"],
    );
    assert_eq!(r.error_code(), "sealed_state_corrupt");
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert_eq!(st["sealed"], true, "{st}");
    assert!(data.join("tampered").exists());
    node.stop();
    let share = std::fs::read_to_string(data.join("dev-unseal-share")).unwrap();
    let events = audit_events(&data, &[share.trim()]);
    let details = granted_details(&events, "operator.tamper");
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].contains("\"how\":\"integrity\"") && details[0].contains("domain master key"),
        "{details:?}"
    );
}
