//! Changing an operator's roles: a configuration change filed for approval (`operator.roles`),
//! bound to who the operator was when it was filed, never approved by the operator concerned,
//! effective on their live session at once, and never leaving the vault without a vault-wide
//! security officer. Domain-scoped officers manage only their own domain's operators.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn roles_of(node: &Node, token: &str, name: &str) -> Vec<String> {
    let list = node
        .cli(Some(token), &["--json", "operator", "list"])
        .ok()
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap()["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn role_changes_are_approved_bound_and_safe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let ann_e = enrol(&node, &boot, "ann", &["approver"]);
    let dave_e = enrol(&node, &boot, "dave", &["auditor"]);
    // The bootstrap token adds operators but never changes roles.
    let r = node.cli(
        Some(&boot),
        &["--json", "operator", "roles", "dave", "--role", "approver"],
    );
    assert_eq!(r.error_code(), "forbidden");
    let alice_e = enrol(&node, &boot, "alice", &["security-officer"]);
    let bob_e = enrol(&node, &boot, "bob", &["security-officer"]);
    let alice = person_from(&node, dir.path(), "alice", &alice_e);
    let bob = person_from(&node, dir.path(), "bob", &bob_e);
    let ann = person_from(&node, dir.path(), "ann", &ann_e);
    let dave = login_person(&node, dir.path(), "dave", &dave_e);
    let a = Some(alice.token.as_str());

    // Ann (approver) is to become an auditor: she may not approve her own change.
    let r1 = pending(&node.cli(
        a,
        &["--json", "operator", "roles", "ann", "--role", "auditor"],
    ));
    let shown = node.cli(a, &["--json", "request", "show", &r1]).ok().json();
    assert_eq!(
        shown["description"],
        "change the operator \"ann\" from role(s) approver in all domains to role(s) auditor in all domains"
    );
    assert_eq!(approve(&node, &ann, &r1).error_code(), "own_role_change");
    assert_eq!(roles_of(&node, &alice.token, "ann"), ["approver"]);
    let done = approve(&node, &bob, &r1).ok().json();
    assert_eq!(done["status"], "executed");
    assert_eq!(roles_of(&node, &alice.token, "ann"), ["auditor"]);
    // Her live session has the new roles at once: she reads the log, approves nothing.
    let r2 = pending(&node.cli(
        a,
        &["--json", "operator", "roles", "dave", "--role", "approver"],
    ));
    assert_eq!(approve(&node, &ann, &r2).error_code(), "forbidden");
    node.cli(Some(&ann.token), &["--json", "request", "list"])
        .ok();

    // An approval applies only to the operator as they were: r2 (auditor -> approver) is
    // overtaken by r3 (auditor -> custodian) and then fails instead of running.
    let r3 = pending(&node.cli(
        a,
        &["--json", "operator", "roles", "dave", "--role", "custodian"],
    ));
    assert_eq!(approve(&node, &bob, &r3).ok().json()["status"], "executed");
    assert_eq!(roles_of(&node, &alice.token, "dave"), ["custodian"]);
    let failed = approve(&node, &bob, &r2).ok().json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(roles_of(&node, &alice.token, "dave"), ["custodian"]);
    assert_eq!(
        node.cli(Some(&dave), &["--json", "request", "list"])
            .error_code(),
        "forbidden",
        "dave's session is a custodian's now"
    );

    // Refused before filing: no change, separation of duties, unknown operator.
    for (args, code) in [
        (vec!["dave", "--role", "custodian"], "no_change"),
        (
            vec!["dave", "--role", "custodian", "--role", "security-officer"],
            "roles_conflict",
        ),
        (vec!["nobody", "--role", "approver"], "not_found"),
    ] {
        let mut full = vec!["--json", "operator", "roles"];
        full.extend(args);
        assert_eq!(node.cli(a, &full).error_code(), code, "{full:?}");
    }

    // Bob steps down to approver; alice is then the last vault-wide security officer and can
    // neither be demoted nor disabled.
    let r4 = pending(&node.cli(
        a,
        &["--json", "operator", "roles", "bob", "--role", "approver"],
    ));
    let ann_now_auditor = approve(&node, &ann, &r4);
    assert_eq!(ann_now_auditor.error_code(), "forbidden");
    // Nobody else can approve a configuration change but bob himself, who is its subject.
    assert_eq!(approve(&node, &bob, &r4).error_code(), "own_role_change");
    node.cli(a, &["--json", "request", "reject", &r4]).ok();
    let b = Some(bob.token.as_str());
    let r5 = pending(&node.cli(
        b,
        &["--json", "operator", "roles", "alice", "--role", "approver"],
    ));
    assert_eq!(approve(&node, &alice, &r5).error_code(), "own_role_change");
    node.cli(b, &["--json", "request", "reject", &r5]).ok();
    node.cli(a, &["--json", "operator", "disable", "bob"]).ok();
    assert_eq!(
        node.cli(
            a,
            &["--json", "operator", "roles", "alice", "--role", "approver"]
        )
        .error_code(),
        "last_security_officer"
    );
    assert_eq!(
        node.cli(a, &["--json", "operator", "disable", "alice"])
            .error_code(),
        "last_security_officer"
    );
    node.stop();
    audit_verify(&data).ok();
    let conn = audit_events(&data, &shares_of(&init));
    let changes: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'operator.roles' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // r1 and r3 ran (filing is recorded as `request.create`); r2 failed.
    assert_eq!(changes, 2);
    let failed: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'request.failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 1);
}

#[test]
fn scoped_officers_manage_only_their_domain() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    let node = Node::dev(&data);
    let root = node.dev_token();
    let r = Some(root.as_str());
    node.cli(r, &["--json", "domain", "create", "d1"]).ok();
    let sam_e = enrol(&node, &root, "sam", &["security-officer"]);
    // Confine sam to d1 (dev mode: runs at once).
    node.cli(
        r,
        &[
            "--json",
            "operator",
            "roles",
            "sam",
            "--role",
            "security-officer",
            "--domain",
            "d1",
        ],
    )
    .ok();
    enrol(&node, &root, "vic", &["approver"]);
    let sam = login_person(&node, dir.path(), "sam", &sam_e);
    let s = Some(sam.as_str());
    for args in [
        vec![
            "operator",
            "add",
            "--name",
            "eve",
            "--role",
            "security-officer",
        ],
        vec!["operator", "roles", "vic", "--role", "auditor"],
        vec![
            "operator", "roles", "vic", "--role", "approver", "--domain", "d1",
        ],
        vec!["operator", "disable", "vic"],
    ] {
        let mut full = vec!["--json"];
        full.extend(&args);
        assert_eq!(
            node.cli(s, &full).error_code(),
            "outside_your_domain",
            "{args:?}"
        );
    }
    // Inside d1 sam may add people.
    node.cli(
        s,
        &[
            "--json", "operator", "add", "--name", "dan", "--role", "approver", "--domain", "d1",
        ],
    )
    .ok();
    // ...and issue and revoke d1's tokens, and no other domain's.
    let other = node.cli(r, &["--json", "token", "create"]).ok().json();
    for scope in ["sign", "keymanager"] {
        assert_eq!(
            node.cli(s, &["--json", "token", "create", "--scope", scope])
                .error_code(),
            "not_found",
            "the default domain is not sam's"
        );
    }
    assert_eq!(
        node.cli(
            s,
            &["--json", "token", "revoke", other["id"].as_str().unwrap()]
        )
        .error_code(),
        "not_found"
    );
    let mine = node
        .cli(
            s,
            &[
                "--json",
                "token",
                "create",
                "--domain",
                "d1",
                "--scope",
                "keymanager",
            ],
        )
        .ok()
        .json();
    assert_eq!(mine["scope"], "keymanager");
    node.cli(
        s,
        &["--json", "token", "revoke", mine["id"].as_str().unwrap()],
    )
    .ok();
}
