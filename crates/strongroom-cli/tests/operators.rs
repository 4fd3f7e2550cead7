//! Operators: enrolment, login with password and TOTP (RFC 6238), single-use codes, lockout,
//! roles, disabling, and forged rows.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn login_roles_lockout_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("v");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let alice = enrol(&node, &root, "alice", &["security-officer", "approver"]);
    let audrey = enrol(&node, &root, "audrey", &["auditor"]);
    let carl = enrol(&node, &root, "carl", &["custodian"]);
    // Separation of duties.
    let r = node.cli(
        Some(&root),
        &[
            "--json", "operator", "add", "--name", "eve", "--role", "auditor", "--role", "approver",
        ],
    );
    assert_eq!(r.error_code(), "roles_conflict");
    let r = node.cli(
        Some(&root),
        &[
            "--json", "operator", "add", "--name", "alice", "--role", "approver",
        ],
    );
    assert_eq!(r.error_code(), "conflict");
    // In text mode the enrolment URI is also drawn as a QR code for the authenticator app.
    let text = node
        .cli(
            Some(&root),
            &["operator", "add", "--name", "quinn", "--role", "approver"],
        )
        .ok()
        .stdout;
    assert!(text.contains("otpauth://totp/"), "{text}");
    assert!(
        text.contains("or scan:\n") && text.contains('\u{2588}'),
        "{text}"
    );
    // Enrolment secrets are not stored in the clear.
    let db_bytes = std::fs::read(data.join("vault.db")).unwrap();
    assert!(
        !db_bytes
            .windows(alice.password.len())
            .any(|w| w == alice.password.as_bytes())
    );

    let s = now_step();

    // First login must replace the enrolment password; the code is spent regardless.
    let r = login(
        &node,
        dir.path(),
        "alice",
        &alice.password,
        &code(&alice, s),
        None,
    );
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (1, "password_change_required")
    );
    let r = login(
        &node,
        dir.path(),
        "alice",
        &alice.password,
        &code(&alice, s),
        Some("a new long passphrase"),
    );
    assert_eq!(
        r.error_code(),
        "replayed_totp",
        "a spent code must not work twice"
    );
    let r = login(
        &node,
        dir.path(),
        "alice",
        &alice.password,
        &code(&alice, s + 1),
        Some("short"),
    );
    assert_eq!(r.error_code(), "weak_password");
    let session = login(
        &node,
        dir.path(),
        "alice",
        &alice.password,
        &code(&alice, s + 1),
        Some("a new long passphrase"),
    )
    .ok()
    .json();
    let alice_token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(session["operator"], "alice");
    // The old password no longer works; wrong codes and unknown names are refused.
    let r = login(
        &node,
        dir.path(),
        "alice",
        &alice.password,
        &code(&alice, s + 1),
        None,
    );
    assert_eq!(r.error_code(), "wrong_password");
    let r = login(
        &node,
        dir.path(),
        "alice",
        "a new long passphrase",
        &code(&alice, s + 40),
        None,
    );
    assert_eq!(r.error_code(), "wrong_totp");
    let r = login(&node, dir.path(), "nobody", "whatever", "123456", None);
    assert_eq!(
        r.error_code(),
        "wrong_password",
        "unknown names look like wrong passwords"
    );

    // A security officer administers but does not sign.
    let a = Some(alice_token.as_str());
    node.cli(a, &["--json", "domain", "create", "treasury"])
        .ok();
    let key = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "treasury",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json();
    let r = node.cli(
        a,
        &[
            "--json",
            "sign",
            "--key",
            key["id"].as_str().unwrap(),
            "--message",
            "00",
        ],
    );
    assert_eq!(r.error_code(), "forbidden");

    // An auditor reads but does not administer.
    let audrey_token = login(
        &node,
        dir.path(),
        "audrey",
        &audrey.password,
        &code(&audrey, s),
        Some("auditor passphrase 1"),
    )
    .ok()
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = Some(audrey_token.as_str());
    let ops = node.cli(d, &["--json", "operator", "list"]).ok().json();
    assert_eq!(ops.as_array().unwrap().len(), 4);
    assert_eq!(
        node.cli(d, &["--json", "domain", "create", "x"])
            .error_code(),
        "forbidden"
    );

    // Five wrong passwords lock the custodian out, even with the right password afterwards.
    for i in 0..5 {
        let r = login(
            &node,
            dir.path(),
            "carl",
            "wrong password!",
            &code(&carl, s),
            None,
        );
        let expected = if i < 4 {
            "wrong_password"
        } else {
            "locked_out"
        };
        assert_eq!(r.error_code(), expected, "attempt {i}");
    }
    let r = login(
        &node,
        dir.path(),
        "carl",
        &carl.password,
        &code(&carl, s),
        Some("custodian passphrase"),
    );
    assert_eq!(r.error_code(), "locked_out");

    // Approval keys: generated locally, registered once, only by those who approve.
    let keyfile = dir.path().join("alice.key");
    let generated = node
        .cli(
            None,
            &[
                "--json",
                "approval-key",
                "generate",
                "--out",
                keyfile.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keyfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pubfile = format!("{}.pub", keyfile.display());
    let me = node
        .cli(
            a,
            &[
                "--json",
                "operator",
                "register-key",
                "--public-key",
                &pubfile,
            ],
        )
        .ok()
        .json();
    assert_eq!(me["approval_key"], generated["public_key"]);
    let again = node.cli(
        a,
        &[
            "--json",
            "operator",
            "register-key",
            "--public-key",
            &pubfile,
        ],
    );
    assert_eq!(again.error_code(), "approval_key_registered");
    let r = node.cli(
        d,
        &[
            "--json",
            "operator",
            "register-key",
            "--public-key",
            &pubfile,
        ],
    );
    assert_eq!(r.error_code(), "forbidden", "auditors do not approve");
    let bogus = dir.path().join("bogus.pub");
    std::fs::write(&bogus, "00".repeat(32)).unwrap();
    let r = node.cli(
        Some(&root),
        &[
            "--json",
            "operator",
            "register-key",
            "--public-key",
            bogus.to_str().unwrap(),
        ],
    );
    assert!(r.code != 0);

    // Disabling takes effect at once.
    node.cli(a, &["--json", "operator", "disable", "audrey"])
        .ok();
    assert_eq!(
        node.cli(d, &["--json", "operator", "list"]).error_code(),
        "invalid_token"
    );
    let listed = node
        .cli(Some(&root), &["--json", "operator", "list"])
        .ok()
        .json();
    let alice_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "alice")
        .map(|o| hex::decode(o["id"].as_str().unwrap().replace('-', "")).unwrap())
        .unwrap();
    node.stop();

    let conn = dev_audit_events(&data);
    let lockouts: i64 = conn
        .query_row("SELECT count(*) FROM audit WHERE operation = 'operator.lockout' AND code = 'locked_out'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(lockouts, 1);
    let logins: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'operator.login' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logins, 2);
    // A database editor replacing alice's password hash gains nothing: the row's MAC fails.
    let fake =
        strongroom_crypto::hash_password("attacker chosen pw", &strongroom_crypto::OsEntropy)
            .unwrap();
    db(&data)
        .execute(
            "UPDATE operators SET password_hash = ?1 WHERE id = ?2",
            rusqlite::params![fake, alice_id],
        )
        .unwrap();
    let node = Node::dev(&data);
    let r = login(
        &node,
        dir.path(),
        "alice",
        "attacker chosen pw",
        &code(&alice, now_step() + 1),
        None,
    );
    assert_eq!(r.error_code(), "wrong_password");
    node.stop();
    audit_verify(&data).ok();
}
