//! A wall clock moved backwards (libfaketime under a real node): time-dependent operations
//! fail closed until a security officer acknowledges it, and nothing that expired is revived.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn backwards_clock_fails_closed_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path());
    let data = dir.path().join("v");
    let node = Node::dev_with_env(&data, &clock.env());
    let root = node.dev_token();
    let r = Some(root.as_str());
    let key = node
        .cli(r, &["--json", "key", "create", "--algorithm", "secp256k1"])
        .ok()
        .json();
    let kid = key["id"].as_str().unwrap().to_owned();
    let short = node
        .cli(r, &["--json", "token", "create", "--ttl", "1s"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = node.cli(r, &["--json", "token", "create"]).ok().json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert_eq!(
        node.cli(Some(&short), &["--json", "key", "list"])
            .error_code(),
        "invalid_token"
    );

    // Turn the clock back an hour.
    clock.set("-1h");
    // Time-dependent operations refuse; the expired token stays expired.
    let t = node.cli(r, &["--json", "token", "create"]);
    assert_eq!((t.code, t.error_code().as_str()), (1, "clock_untrusted"));
    assert_eq!(
        node.cli(Some(&short), &["--json", "key", "list"])
            .error_code(),
        "invalid_token",
        "an expired token must not be revived"
    );
    // Signing with a hot key does not depend on the clock.
    let digest = sha256_hex(b"x");
    node.cli(
        Some(&app),
        &["--json", "sign", "--key", &kid, "--digest", &digest],
    )
    .ok();
    // An application cannot acknowledge; the security officer (dev root) can.
    assert_eq!(
        node.cli(Some(&app), &["--json", "operator", "acknowledge-clock"])
            .error_code(),
        "forbidden"
    );
    node.cli(r, &["--json", "operator", "acknowledge-clock"])
        .ok();
    node.cli(r, &["--json", "token", "create"]).ok();
    node.stop();

    let conn = dev_audit_events(&data);
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count(
            "SELECT count(*) FROM audit WHERE operation = 'clock.jump' AND code = 'clock_untrusted'"
        ),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE operation = 'clock.acknowledge' AND outcome = 1"),
        1
    );
    // Records never go back in time, even while the clock was behind.
    let backwards = count(
        "SELECT count(*) FROM audit a JOIN audit b ON b.seq = a.seq + 1 WHERE b.time < a.time",
    );
    assert_eq!(backwards, 0);
    audit_verify(&data).ok();
}

/// `--expires` sets how long a request stays open; once the (faked) clock passes it, the
/// approval that would have completed it is refused with `request_expired`, the request is
/// marked expired, nothing runs, and the refusal is audited.
#[test]
fn requests_expire_when_their_time_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path());
    let data = dir.path().join("prod");
    let node = Node::production_with_env(&data, &clock.env());
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let alice_e = enrol(&node, &boot, "alice", &["security-officer"]);
    let bob_e = enrol(&node, &boot, "bob", &["security-officer"]);
    let alice = person_from(&node, dir.path(), "alice", &alice_e);
    let bob = person_from(&node, dir.path(), "bob", &bob_e);
    let a = Some(alice.token.as_str());

    // Out of bounds: refused before anything is filed.
    for bad in ["10s", "31days"] {
        let r = node.cli(
            a,
            &["--json", "--expires", bad, "domain", "create", "treasury"],
        );
        assert_eq!((r.code, r.error_code().as_str()), (1, "invalid_expiry"));
    }
    let listed = node.cli(a, &["--json", "request", "list"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

    let id = pending(&node.cli(
        a,
        &["--json", "--expires", "2m", "domain", "create", "treasury"],
    ));
    let shown = node.cli(a, &["--json", "request", "show", &id]).ok().json();
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let left = shown["expires_at_ms"].as_u64().unwrap() - now_ms;
    assert!((110_000..=120_000).contains(&left), "{left} ms left");

    // Three minutes later the approval comes too late.
    clock.set("+3m");
    let r = approve(&node, &bob, &id);
    assert_eq!((r.code, r.error_code().as_str()), (1, "request_expired"));
    let shown = node.cli(a, &["--json", "request", "show", &id]).ok().json();
    assert_eq!(shown["status"], "expired");
    let domains = node.cli(a, &["--json", "domain", "list"]).ok().json();
    assert!(
        domains
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["name"] != "treasury")
    );
    // Once expired it stays expired.
    let r = approve(&node, &bob, &id);
    assert_eq!(r.error_code(), "request_not_pending");
    node.stop();

    let conn = audit_events(&data, &shares_of(&init));
    let expired: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'request.expire' AND code = 'request_expired'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(expired, 1);
    audit_verify(&data).ok();
}
