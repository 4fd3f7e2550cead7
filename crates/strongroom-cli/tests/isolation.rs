//! Domain isolation and application tokens: a domain-scoped token can neither use, list nor
//! learn of another domain's keys; foreign and unknown keys answer the same 404.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn application_tokens_are_confined_to_their_domain() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("v"));
    let root = node.dev_token();
    let r = Some(root.as_str());
    node.cli(r, &["domain", "create", "alpha"]).ok();
    node.cli(r, &["domain", "create", "beta"]).ok();
    let ka = node
        .cli(
            r,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "alpha",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json();
    let kb = node
        .cli(
            r,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "beta",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json();
    let (ka, kb) = (ka["id"].as_str().unwrap(), kb["id"].as_str().unwrap());
    let tok = node
        .cli(r, &["--json", "token", "create", "--domain", "alpha"])
        .ok()
        .json();
    let app = tok["token"].as_str().unwrap().to_owned();
    let a = Some(app.as_str());

    // Its own domain works (list without --domain means its own domain).
    let mine = node.cli(a, &["--json", "key", "list"]).ok().json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], ka);
    node.cli(
        a,
        &["--json", "sign", "--key", ka, "--message", "68656c6c6f"],
    )
    .ok();

    // Another domain's key looks exactly like a key that does not exist.
    let unknown = "7d1b1f40-3c0a-4b2e-9a57-0a4f3f1f2b6c";
    let (c1, b1) = node.http("GET", &format!("/v1/keys/{kb}"), a, None);
    let (c2, b2) = node.http("GET", &format!("/v1/keys/{unknown}"), a, None);
    assert_eq!((c1, &b1), (c2, &b2));
    assert_eq!(c1, 404);
    let (c1, b1) = node.http(
        "POST",
        &format!("/v1/keys/{kb}/sign"),
        a,
        Some(r#"{"message":"00"}"#),
    );
    let (c2, b2) = node.http(
        "POST",
        &format!("/v1/keys/{unknown}/sign"),
        a,
        Some(r#"{"message":"00"}"#),
    );
    assert_eq!((c1, &b1), (c2, &b2));
    assert_eq!(c1, 404);
    let (c1, b1) = node.http("GET", "/v1/keys?domain=beta", a, None);
    let (c2, b2) = node.http("GET", "/v1/keys?domain=nonexistent", a, None);
    assert_eq!((c1, &b1), (c2, &b2));
    assert_eq!(c1, 404);
    let (c, _) = node.http("DELETE", &format!("/v1/keys/{kb}"), a, None);
    assert_eq!(c, 404);
    let (c, _) = node.http(
        "POST",
        "/v1/keys",
        a,
        Some(r#"{"domain":"beta","algorithm":"p256"}"#),
    );
    assert_eq!(c, 404);

    // Administrative operations are not for applications.
    for (m, p, b) in [
        ("POST", "/v1/domains", Some(r#"{"name":"gamma"}"#)),
        ("GET", "/v1/domains", None),
        ("POST", "/v1/tokens", Some(r#"{"domain":"alpha"}"#)),
        ("POST", "/v1/sys/seal", Some("{}")),
        ("POST", "/v1/keys", Some(r#"{"algorithm":"p256"}"#)),
    ] {
        let (c, body) = node.http(m, p, a, b);
        assert_eq!(
            (c, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{m} {p}"
        );
    }

    // Revocation takes effect at once.
    let id = tok["id"].as_str().unwrap();
    node.cli(r, &["token", "revoke", id]).ok();
    let r2 = node.cli(a, &["--json", "key", "list"]);
    assert_eq!(r2.error_code(), "invalid_token");
    let again = node.cli(r, &["--json", "token", "revoke", id]);
    assert_eq!(again.error_code(), "not_found");

    // Expiry.
    let short = node
        .cli(
            r,
            &[
                "--json", "token", "create", "--domain", "beta", "--ttl", "1s",
            ],
        )
        .ok()
        .json();
    let s = short["token"].as_str().unwrap().to_owned();
    node.cli(Some(&s), &["--json", "key", "list"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(
        node.cli(Some(&s), &["--json", "key", "list"]).error_code(),
        "invalid_token"
    );
}
