//! Dev mode end to end: the README walkthrough through the real CLI, verified with OpenSSL,
//! restart on the same directory, and the data-directory lock.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn walkthrough_signs_verifiably_with_every_algorithm_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let token = node.dev_token();
    let t = Some(token.as_str());

    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(status["sealed"], false);
    assert_eq!(status["initialized"], true);
    assert!(status["version"].is_string());

    let domains = node.cli(t, &["--json", "domain", "list"]).ok().json();
    assert_eq!(domains[0]["name"], "default");

    let msg = dir.path().join("msg");
    std::fs::write(&msg, b"pay 1 BTC to bob").unwrap();
    let digest = sha256_hex(b"pay 1 BTC to bob");
    std::fs::write(dir.path().join("digest.bin"), hex::decode(&digest).unwrap()).unwrap();

    let mut ids = vec![];
    for (alg, pk_len) in [("secp256k1", 33), ("p256", 33), ("ed25519", 32)] {
        let key = node
            .cli(
                t,
                &[
                    "--json",
                    "key",
                    "create",
                    "--algorithm",
                    alg,
                    "--label",
                    "walkthrough-ledger-label",
                ],
            )
            .ok()
            .json();
        let id = key["id"].as_str().unwrap().to_owned();
        assert_eq!(key["algorithm"], alg);
        assert_eq!(
            hex::decode(key["public_key"].as_str().unwrap())
                .unwrap()
                .len(),
            pk_len
        );
        let shown = node.cli(t, &["--json", "key", "show", &id]).ok().json();
        assert_eq!(shown["public_key"], key["public_key"]);
        assert_eq!(shown["state"], "active");

        let pem = node.cli(t, &["key", "show", &id, "--pem"]).ok().stdout;
        let pem_path = dir.path().join(format!("{alg}.pem"));
        std::fs::write(&pem_path, pem).unwrap();
        let sig_path = dir.path().join(format!("{alg}.sig"));
        let sign_args: Vec<String> = if alg == "ed25519" {
            vec!["--message-file".into(), msg.display().to_string()]
        } else {
            vec!["--digest".into(), digest.clone()]
        };
        let mut args = vec![
            "--json",
            "sign",
            "--key",
            &id,
            "--out",
            sig_path.to_str().unwrap(),
        ];
        args.extend(sign_args.iter().map(String::as_str));
        let sig = node.cli(t, &args).ok().json();
        assert_eq!(
            hex::decode(sig["signature"].as_str().unwrap())
                .unwrap()
                .len(),
            64
        );
        assert_eq!(sig["recovery_id"].is_u64(), alg == "secp256k1");

        // Independent oracle: OpenSSL verifies what strongroom signed.
        let mut verify = std::process::Command::new("openssl");
        verify.args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            pem_path.to_str().unwrap(),
            "-sigfile",
            sig_path.to_str().unwrap(),
        ]);
        if alg == "ed25519" {
            verify.args(["-rawin", "-in", msg.to_str().unwrap()]);
        } else {
            verify.args(["-in", dir.path().join("digest.bin").to_str().unwrap()]);
        }
        let out = verify.output().unwrap();
        assert!(
            out.status.success(),
            "openssl rejected the {alg} signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And rejects it for another message.
        ids.push((alg, id));
    }

    // Wrong payload kinds are refused with a stable code.
    let (_, ed) = &ids[2];
    let r = node.cli(t, &["--json", "sign", "--key", ed, "--digest", &digest]);
    assert_eq!((r.code, r.error_code().as_str()), (1, "wrong_payload"));
    let (_, k1) = &ids[0];
    let r = node.cli(t, &["--json", "sign", "--key", k1, "--digest", "abcd"]);
    assert_eq!(r.error_code(), "invalid_digest");
    // 0x-prefixed hex is accepted.
    node.cli(
        t,
        &[
            "--json",
            "sign",
            "--key",
            k1,
            "--digest",
            &format!("0x{digest}"),
        ],
    )
    .ok();

    let listed = node.cli(t, &["--json", "key", "list"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 3);

    // A second node on the same directory is refused (exclusive lock).
    let second = std::process::Command::new(BIN)
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    // Destroy one key: it no longer signs, and the others still do after a restart.
    let destroyed = node.cli(t, &["--json", "key", "destroy", k1]).ok().json();
    assert_eq!(destroyed["state"], "destroyed");
    let r = node.cli(t, &["--json", "sign", "--key", k1, "--digest", &digest]);
    assert_eq!(r.error_code(), "key_destroyed");
    node.stop();

    let secret_blob: Option<Vec<u8>> = db(&data)
        .query_row(
            "SELECT sealed_secret FROM keys WHERE id = ?1",
            [hex::decode(k1.replace('-', "")).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(secret_blob.is_none(), "destroyed key's blob must be erased");

    let node = Node::dev(&data);
    assert_eq!(node.dev_token(), token);
    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(status["sealed"], false, "dev restart reopens unsealed");
    let (_, p) = &ids[1];
    node.cli(t, &["--json", "sign", "--key", p, "--digest", &digest])
        .ok();
    node.stop();

    let v = audit_verify(&data).ok().json();
    assert_eq!(v["ok"], true);
    assert!(v["records"].as_u64().unwrap() >= 20);
    assert_eq!(v["signed_through"], v["records"]);
    // Layered encryption: the database shows neither the key label nor what was audited.
    let mut stored = std::fs::read(data.join("vault.db")).unwrap();
    stored.extend(std::fs::read(data.join("vault.db-wal")).unwrap_or_default());
    for private in ["walkthrough-ledger-label", "key.sign", "key.create"] {
        assert!(
            !stored
                .windows(private.len())
                .any(|w| w == private.as_bytes()),
            "{private} is readable in vault.db"
        );
    }
    let events = dev_audit_events(&data);
    let signed: i64 = events
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'key.sign' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(signed >= 4, "{signed}");
}

#[test]
fn http_errors_have_stable_codes_and_openapi_lists_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("v"));
    let token = node.dev_token();
    let t = Some(token.as_str());

    let (code, body) = node.http("POST", "/v1/keys", t, Some("{not json"));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (code, body) = node.http("POST", "/v1/keys", t, Some(r#"{"algorithm":"rsa"}"#));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_algorithm"))
    );
    let (code, body) = node.http(
        "POST",
        "/v1/keys",
        t,
        Some(r#"{"algorithm":"p256","extra":1}"#),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let deep = format!("{}{}", "[".repeat(100_000 / 2), "]".repeat(100_000 / 2));
    let (code, _) = node.http("POST", "/v1/keys", t, Some(&deep));
    assert!(code == 400 || code == 413, "deep JSON gave {code}");
    let big = format!(
        r#"{{"algorithm":"p256","label":"{}"}}"#,
        "x".repeat(200_000)
    );
    let (code, body) = node.http("POST", "/v1/keys", t, Some(&big));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (code, body) = node.http(
        "POST",
        "/v1/keys",
        Some("srt_bogus"),
        Some(r#"{"algorithm":"p256"}"#),
    );
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let (code, body) = node.http("POST", "/v1/keys", None, Some(r#"{"algorithm":"p256"}"#));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (code, _) = node.http("GET", "/v1/keys/not-a-uuid", t, None);
    assert_eq!(code, 404);
    let (code, body) = node.http("POST", "/v1/domains", t, Some(r#"{"name":"default"}"#));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (code, body) = node.http("POST", "/v1/domains", t, Some(r#"{"name":"Bad Name"}"#));
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    // The server still answers normally after all that.
    let (code, _) = node.http("GET", "/v1/health", None, None);
    assert_eq!(code, 200);

    let (code, doc) = node.http("GET", "/v1/openapi.json", None, None);
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in [
        ("post", "/v1/domains"),
        ("get", "/v1/domains"),
        ("post", "/v1/keys"),
        ("get", "/v1/keys"),
        ("get", "/v1/keys/{id}"),
        ("delete", "/v1/keys/{id}"),
        ("post", "/v1/keys/{id}/sign"),
        ("get", "/v1/health"),
        ("get", "/v1/sys/status"),
        ("post", "/v1/sys/init"),
        ("post", "/v1/sys/unseal"),
        ("post", "/v1/sys/seal"),
        ("post", "/v1/tokens"),
        ("delete", "/v1/tokens/{id}"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from OpenAPI"
        );
    }
}
