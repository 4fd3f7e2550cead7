//! A wall clock moved backwards (libfaketime under a real node): time-dependent operations
//! fail closed until a security officer acknowledges it, and nothing that expired is revived.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

#[test]
fn backwards_clock_fails_closed_until_acknowledged() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "libfaketime is missing: run ./scripts/test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let offset_path = offset.to_str().unwrap().to_owned();
    let env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset_path.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        // Only the wall clock moves; timers keep running.
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let data = dir.path().join("v");
    let node = Node::dev_with_env(&data, &env);
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
    std::fs::write(&offset, "-1h\n").unwrap();
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

    let conn = db(&data);
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
