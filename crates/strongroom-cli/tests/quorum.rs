//! Quorum in production mode: gated operations answer 202 (exit code 3), approvals are
//! Ed25519 signatures over the request's canonical hash, verified by the server; the
//! requester never approves, an approval counts once and only for its request; per-domain
//! rules; operator enrolment through approval; rejection; tampered requests.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn m_of_n_approvals_bound_to_the_request() {
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
    node.cli_stdin(
        None,
        &["--json", "operator", "unseal"],
        init["shares"][0].as_str().unwrap(),
    )
    .ok();
    let boot = init["root_token"].as_str().unwrap().to_owned();

    // The bootstrap token enrols the first people; it retires once two officers log in.
    let alice_e = enrol(&node, &boot, "alice", &["security-officer"]);
    let bob_e = enrol(&node, &boot, "bob", &["security-officer"]);
    let ann_e = enrol(&node, &boot, "ann", &["approver"]);
    let audrey_e = enrol(&node, &boot, "audrey", &["auditor"]);
    let alice = person_from(&node, dir.path(), "alice", &alice_e);
    let bob = person_from(&node, dir.path(), "bob", &bob_e);
    let ann = person_from(&node, dir.path(), "ann", &ann_e);
    let a = Some(alice.token.as_str());

    // A gated operation is filed, not run.
    let r1 = pending(&node.cli(a, &["--json", "domain", "create", "treasury"]));
    let shown = node.cli(a, &["--json", "request", "show", &r1]).ok().json();
    assert_eq!(
        shown["description"],
        "create the domain \"treasury\" with a new master key (new keys start warm)"
    );
    assert_eq!(shown["required"], 1);
    assert!(
        node.cli(a, &["--json", "domain", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["name"] != "treasury")
    );

    // The requester cannot approve; a key that is not yours does not verify.
    assert_eq!(approve(&node, &alice, &r1).error_code(), "own_request");
    let ann_with_bobs_key = Person {
        token: ann.token.clone(),
        key: bob.key.clone(),
    };
    let r = approve(&node, &ann_with_bobs_key, &r1);
    assert_eq!(r.error_code(), "approval_mismatch");
    // An approval for another request does not move: sign r1's hash, post it to r2.
    // (A domain rule for a domain that does not exist is refused before anything is filed.)
    let missing = node.cli(
        a,
        &[
            "--json",
            "domain",
            "quorum",
            "nowhere",
            "--operation",
            "key.destroy",
            "--approvals",
            "2",
        ],
    );
    assert_eq!(missing.error_code(), "not_found");
    let r2 = node.cli(
        a,
        &[
            "--json",
            "quorum",
            "set",
            "--operation",
            "key.destroy",
            "--approvals",
            "2",
        ],
    );
    let r2 = pending(&r2);
    let h1 = hex::decode(shown["hash"].as_str().unwrap()).unwrap();
    let key = strongroom_crypto::ApprovalKey::from_file_string(
        &std::fs::read_to_string(&bob.key).unwrap(),
    )
    .unwrap();
    let sig = hex::encode(key.approve(&h1.try_into().unwrap()));
    let (status, body) = node.http(
        "POST",
        &format!("/v1/requests/{r2}/approve"),
        Some(&bob.token),
        Some(&format!(r#"{{"signature":"{sig}"}}"#)),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("approval_mismatch"))
    );

    // Bob approves r1: it runs, as the request, and cannot be approved again.
    let done = approve(&node, &bob, &r1).ok().json();
    assert_eq!(done["status"], "executed");
    assert_eq!(done["result"]["name"], "treasury");
    assert!(
        node.cli(a, &["--json", "domain", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "treasury")
    );
    assert_eq!(
        approve(&node, &bob, &r1).error_code(),
        "request_not_pending"
    );

    // Ann (an approver) approves the quorum change: key.destroy now needs two approvals.
    assert_eq!(approve(&node, &ann, &r2).ok().json()["status"], "executed");
    let rules = node.cli(a, &["--json", "quorum", "list"]).ok().json();
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["operation"] == "key.destroy" && r["approvals"] == 2)
    );

    // Destroying a key: two approvers, and security officers do not approve key operations.
    let k = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "treasury",
                "--algorithm",
                "p256",
                "--label",
                "hot",
            ],
        )
        .ok()
        .json();
    let kid = k["id"].as_str().unwrap();
    let r3 = pending(&node.cli(a, &["--json", "key", "destroy", kid]));
    let desc = node.cli(a, &["--json", "request", "show", &r3]).ok().json()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        desc.contains("destroy the p256 key") && desc.contains("(label hot)"),
        "{desc}"
    );
    assert_eq!(approve(&node, &bob, &r3).error_code(), "not_an_approver");
    let one = approve(&node, &ann, &r3).ok().json();
    assert_eq!(
        (
            one["status"].as_str(),
            one["approvals"].as_array().unwrap().len()
        ),
        (Some("pending"), 1)
    );
    assert_eq!(approve(&node, &ann, &r3).error_code(), "duplicate_approval");

    // A second approver is enrolled through a request; the enrolment secrets go only to the
    // requester.
    let r4 = pending(&node.cli(
        a,
        &[
            "--json", "operator", "add", "--name", "dan", "--role", "approver",
        ],
    ));
    assert_eq!(approve(&node, &ann, &r4).ok().json()["status"], "executed");
    let for_bob = node
        .cli(Some(&bob.token), &["--json", "request", "show", &r4])
        .ok()
        .json();
    assert!(for_bob.get("enrolment").is_none() && !for_bob.to_string().contains("otpauth"));
    let for_alice = node.cli(a, &["--json", "request", "show", &r4]).ok().json();
    let uri = for_alice["enrolment"]["otpauth_uri"].as_str().unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let dan_enrolled = Enrolled {
        password: for_alice["enrolment"]["password"]
            .as_str()
            .unwrap()
            .to_owned(),
        totp: strongroom_crypto::TotpSecret::from_seed(
            strongroom_crypto::OtpAlgorithm::Sha1,
            &base32(secret),
            6,
        )
        .unwrap(),
    };
    let dan = person_from(&node, dir.path(), "dan", &dan_enrolled);
    assert_eq!(approve(&node, &dan, &r3).ok().json()["status"], "executed");
    assert_eq!(
        node.cli(a, &["--json", "key", "show", kid]).ok().json()["state"],
        "destroyed"
    );

    // Rejection ends a request.
    let r5 = pending(&node.cli(a, &["--json", "domain", "create", "scratch"]));
    assert_eq!(
        node.cli(Some(&ann.token), &["--json", "request", "reject", &r5])
            .ok()
            .json()["status"],
        "rejected"
    );
    assert_eq!(
        approve(&node, &bob, &r5).error_code(),
        "request_not_pending"
    );

    // An auditor exports the log with the approval evidence; it verifies with nothing but the
    // file, and any edit to the file is caught.
    let audrey = login_person(&node, dir.path(), "audrey", &audrey_e);
    let export = dir.path().join("audit.ndjson");
    assert_eq!(
        node.cli(
            a,
            &[
                "--json",
                "audit",
                "export",
                "--out",
                export.to_str().unwrap()
            ]
        )
        .error_code(),
        "forbidden",
        "exports are for auditors"
    );
    node.cli(
        Some(&audrey),
        &[
            "--json",
            "audit",
            "export",
            "--out",
            export.to_str().unwrap(),
        ],
    )
    .ok();
    let verify_file = |f: &std::path::Path| {
        cli(
            "http://127.0.0.1:1",
            None,
            &["--json", "audit", "verify", "--file", f.to_str().unwrap()],
            None,
        )
    };
    let v = verify_file(&export).ok().json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["requests"], 5);
    assert_eq!(v["approvals_verified"], 5);
    assert!(v["records"].as_u64().unwrap() > 30);
    let text = std::fs::read_to_string(&export).unwrap();
    let tamper = |name: &str, f: &dyn Fn(&str) -> String| {
        let p = dir.path().join(name);
        std::fs::write(&p, f(&text)).unwrap();
        verify_file(&p)
    };
    // An approval signature swapped for another's.
    let sigs: Vec<&str> = text
        .match_indices("\"signature\":\"")
        .map(|(i, _)| &text[i + 13..i + 13 + 128])
        .collect();
    let r = tamper("swapped", &|t| {
        t.replacen(sigs[sigs.len() - 1], sigs[sigs.len() - 2], 1)
    });
    assert_eq!(r.code, 1, "a swapped signature must fail: {}", r.stdout);
    // A record edited.
    let r = tamper("edited", &|t| {
        t.replacen(
            "\"operation\":\"request.approve\"",
            "\"operation\":\"request.reject\"",
            1,
        )
    });
    assert_eq!((r.code, r.json()["ok"].as_bool()), (1, Some(false)));
    // An approval removed from an executed request.
    let r = tamper("fewer", &|t| {
        t.lines()
            .map(|l| {
                if l.contains("\"type\":\"request\"")
                    && l.contains("\"status\":\"executed\"")
                    && l.contains("domain.create")
                {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["approvals"] = serde_json::json!([]);
                    v.to_string()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert_eq!(
        r.code, 1,
        "an executed request without its approvals must fail"
    );

    // A request edited in the database is refused: its expiry pushed out (its parameters are
    // sealed, and an edit there fails to open, as the storage conformance suite shows).
    let r6 = pending(&node.cli(a, &["--json", "domain", "create", "small"]));
    node.stop();
    let uuid = hex::decode(r6.replace('-', "")).unwrap();
    db(&data)
        .execute(
            "UPDATE pending SET expires_at = expires_at + 86400000 WHERE id = ?1",
            [uuid],
        )
        .unwrap();
    let node = Node::production(&data);
    node.cli_stdin(
        None,
        &["--json", "operator", "unseal"],
        init["shares"][0].as_str().unwrap(),
    )
    .ok();
    assert_eq!(approve(&node, &bob, &r6).error_code(), "request_tampered");
    node.stop();

    // The audit log holds the requests, the approvals and each execution, done as the request.
    let conn = audit_events(&data, &shares_of(&init));
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE operation = 'request.create'"),
        6
    );
    // r1 by bob; r2 by ann; r3 by ann and dan; r4 by ann.
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE operation = 'request.approve' AND outcome = 1"),
        5
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM audit WHERE operation = 'domain.create' AND actor = 'request:{r1}'"
        )),
        1
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM audit WHERE operation = 'key.destroy' AND actor = 'request:{r3}'"
        )),
        1
    );
    audit_verify(&data).ok();
}
