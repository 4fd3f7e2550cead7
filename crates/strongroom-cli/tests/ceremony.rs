//! Production mode: starts sealed; the init ceremony; unseal with too few, duplicate, foreign
//! and malformed shares (refused, never counted, still audited); seal wipes access.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn shares_of(init: &serde_json::Value) -> Vec<String> {
    init["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn init_and_unseal_ceremony() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);

    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(
        (status["initialized"].as_bool(), status["sealed"].as_bool()),
        (Some(false), Some(true))
    );
    // Uninitialised: key routes answer 503 not_initialized.
    let (code, body) = node.http("GET", "/v1/keys", None, None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (503, Some("not_initialized"))
    );

    let init = node
        .cli(
            None,
            &[
                "--json",
                "operator",
                "init",
                "--shares",
                "5",
                "--threshold",
                "3",
            ],
        )
        .ok()
        .json();
    let shares = shares_of(&init);
    assert_eq!(shares.len(), 5);
    let root = init["root_token"].as_str().unwrap().to_owned();
    let audit_key = init["audit_public_key"].as_str().unwrap().to_owned();
    // Shares are never stored: not in the database, not anywhere in the data directory.
    for f in std::fs::read_dir(&data).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        for s in &shares {
            let hexpart = s.trim_start_matches("srs1-");
            let raw = hex::decode(hexpart).unwrap();
            let value = &raw[19..51];
            assert!(
                !bytes.windows(32).any(|w| w == value),
                "a share value is on disk"
            );
            assert!(!String::from_utf8_lossy(&bytes).contains(s.as_str()));
        }
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&root),
            "root token on disk"
        );
    }

    let r = node.cli(
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
    );
    assert_eq!(r.error_code(), "already_initialized");

    // Sealed: only health, status, init and unseal answer.
    let (code, body) = node.http("GET", "/v1/keys", Some(&root), None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (503, Some("sealed"))
    );
    let (code, _) = node.http("GET", "/v1/health", None, None);
    assert_eq!(code, 200);

    // Share 1 via --share-file.
    let f = dir.path().join("share1");
    std::fs::write(&f, format!("{}\n", shares[0])).unwrap();
    let p = node
        .cli(
            None,
            &[
                "--json",
                "operator",
                "unseal",
                "--share-file",
                f.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(
        (
            p["sealed"].as_bool(),
            p["progress"].as_u64(),
            p["threshold"].as_u64()
        ),
        (Some(true), Some(1), Some(3))
    );

    // Duplicate: refused, not counted.
    let r = node.cli_stdin(None, &["--json", "operator", "unseal"], &shares[0]);
    assert_eq!((r.code, r.error_code().as_str()), (1, "duplicate_share"));
    // Foreign: a share from another vault.
    let other_dir = dir.path().join("other");
    let other = Node::production(&other_dir);
    let other_shares = shares_of(
        &other
            .cli(
                None,
                &[
                    "--json",
                    "operator",
                    "init",
                    "--shares",
                    "3",
                    "--threshold",
                    "3",
                ],
            )
            .ok()
            .json(),
    );
    other.stop();
    let r = node.cli_stdin(None, &["--json", "operator", "unseal"], &other_shares[1]);
    assert_eq!(r.error_code(), "foreign_share");
    // Malformed: a typo.
    let mut typo = shares[1].clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let r = node.cli_stdin(
        None,
        &["--json", "operator", "unseal"],
        std::str::from_utf8(&typo).unwrap(),
    );
    assert_eq!(r.error_code(), "malformed_share");
    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(status["progress"], 1, "refused shares were counted");

    // An attempt can be abandoned: reset discards share 1, which can then be given again.
    let p = node
        .cli(None, &["--json", "operator", "unseal", "--reset"])
        .ok()
        .json();
    assert_eq!(p["progress"], 0);
    let p = node
        .cli_stdin(None, &["--json", "operator", "unseal"], &shares[0])
        .ok()
        .json();
    assert_eq!(p["progress"], 1);

    // Two more distinct shares (standard input) unseal.
    let p = node
        .cli_stdin(None, &["--json", "operator", "unseal"], &shares[3])
        .ok()
        .json();
    assert_eq!(p["progress"], 2);
    let p = node
        .cli_stdin(None, &["--json", "operator", "unseal"], &shares[4])
        .ok()
        .json();
    assert_eq!(p["sealed"], false);

    // The init token only bootstraps operators: it cannot administer.
    let (status, body) = node.http(
        "POST",
        "/v1/domains",
        Some(&root),
        Some(r#"{"name":"treasury"}"#),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let alice_e = enrol(&node, &root, "alice", &["security-officer"]);
    let bob_e = enrol(&node, &root, "bob", &["security-officer"]);
    let alice = person_from(&node, dir.path(), "alice", &alice_e);
    let a = Some(alice.token.as_str());
    // Usable until a second security officer has logged in; then revoked.
    node.cli(Some(&root), &["--json", "operator", "list"]).ok();
    let bob = person_from(&node, dir.path(), "bob", &bob_e);
    let r = node.cli(Some(&root), &["--json", "operator", "list"]);
    assert_eq!(
        r.error_code(),
        "invalid_token",
        "the bootstrap token must be revoked"
    );
    // Creating a domain needs a second person: bob approves alice's request.
    let req = pending(&node.cli(
        a,
        &[
            "--json",
            "domain",
            "create",
            "treasury",
            "--new-keys",
            "hot",
        ],
    ));
    assert_eq!(approve(&node, &bob, &req).ok().json()["status"], "executed");
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
                "secp256k1",
            ],
        )
        .ok()
        .json();
    let id = key["id"].as_str().unwrap().to_owned();
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "treasury"])
        .ok()
        .json();
    let app = app["token"].as_str().unwrap().to_owned();
    let t = Some(app.as_str());
    let digest = sha256_hex(b"x");
    node.cli(t, &["--json", "sign", "--key", &id, "--digest", &digest])
        .ok();

    // Seal wipes access; unseal again with a different subset.
    node.cli(a, &["--json", "operator", "seal"]).ok();
    let r = node.cli(t, &["--json", "sign", "--key", &id, "--digest", &digest]);
    assert_eq!(r.error_code(), "sealed");
    for s in [&shares[1], &shares[2]] {
        node.cli_stdin(None, &["--json", "operator", "unseal"], s)
            .ok();
    }
    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(
        status["sealed"], true,
        "two shares must not unseal a 3-of-5 vault"
    );
    node.cli_stdin(None, &["--json", "operator", "unseal"], &shares[0])
        .ok();
    node.cli(t, &["--json", "sign", "--key", &id, "--digest", &digest])
        .ok();
    node.stop();

    // Production never keeps a share: a restart is sealed again.
    let node = Node::production(&data);
    assert_eq!(
        node.cli(None, &["--json", "status"]).ok().json()["sealed"],
        true
    );
    node.stop();

    // Refused shares were recorded, and the records written while sealed are covered by the
    // signed heads written after unsealing.
    let shares: Vec<&str> = shares.iter().map(String::as_str).collect();
    let events = audit_events(&data, &shares);
    let refused: Vec<String> = events
        .prepare("SELECT code FROM audit WHERE operation = 'operator.unseal' AND outcome = 2 ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        refused,
        ["duplicate_share", "foreign_share", "malformed_share"]
    );
    let revokes: i64 = events
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'bootstrap.revoke' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(revokes, 1, "the bootstrap token's revocation is audited");
    let v = audit_verify_with(&data, &["--audit-key", &audit_key])
        .ok()
        .json();
    assert_eq!(v["ok"], true);
    // Records after the final seal+restart are unsigned until the next unseal; everything
    // before is signed.
    assert!(v["signed_through"].as_u64().unwrap() > 15);
    let wrong_key = "00".repeat(32);
    let r = audit_verify_with(&data, &["--audit-key", &wrong_key]);
    assert_eq!(
        r.code, 1,
        "a different pinned audit key must fail verification"
    );
}

#[test]
fn production_refuses_non_loopback_plain_http_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"0.0.0.0:0\"\ndata_dir = \"{}\"\n",
            dir.path().join("d").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"/tmp/x\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let r = cli("http://127.0.0.1:1", None, &["key", "frobnicate"], None);
    assert_eq!(r.code, 2, "usage errors exit 2");
}
