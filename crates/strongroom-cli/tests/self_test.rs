//! Power-on self-tests: a node whose known-answer tests pass says so in `status`; a node built
//! for tests and told to break one test (`STRONGROOM_BREAK_SELF_TEST`, a feature absent from
//! release builds) names that test in `status`, serves health and status only (503
//! `self_test_failed` for everything else, initialisation and unsealing included) and does not
//! bootstrap a dev vault. Every one of the tests is broken in turn, so each failure is shown to
//! be caught.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn each_broken_known_answer_test_stops_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("passing"));
    let (status, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(status, 200);
    assert_eq!(st["self_test"]["passed"], true, "{st}");
    assert!(st["self_test"].get("failed").is_none());
    assert_eq!(
        st["self_test"]["tests"],
        serde_json::json!(strongroom_crypto::SELF_TESTS)
    );
    let token = node.dev_token();
    node.cli(Some(&token), &["--json", "key", "list"]).ok();
    node.stop();

    for test in strongroom_crypto::SELF_TESTS {
        let data = dir.path().join(test);
        let node = Node::dev_with_env(&data, &[("STRONGROOM_BREAK_SELF_TEST", test)]);
        let (status, st) = node.http("GET", "/v1/sys/status", None, None);
        assert_eq!(status, 200, "{test}");
        assert_eq!(st["self_test"]["passed"], false, "{test}: {st}");
        assert_eq!(st["self_test"]["failed"], test);
        let (status, _) = node.http("GET", "/v1/health", None, None);
        assert_eq!(status, 200, "{test}");
        for (method, path, body) in [
            ("POST", "/v1/sys/init", Some("{}")),
            ("POST", "/v1/sys/unseal", Some(r#"{"share":"x"}"#)),
            ("GET", "/v1/keys", None),
            ("POST", "/v1/keys", Some(r#"{"algorithm":"ed25519"}"#)),
        ] {
            let (status, err) = node.http(method, path, None, body);
            assert_eq!(
                (status, err["error"]["code"].as_str()),
                (503, Some("self_test_failed")),
                "{test}: {method} {path}"
            );
            assert!(
                err["error"]["message"].as_str().unwrap().contains(test),
                "{err}"
            );
        }
        assert!(
            !data.join("dev-token").exists(),
            "{test}: no dev vault is bootstrapped"
        );
        node.stop();
    }
}

#[test]
fn a_new_key_that_fails_its_pairwise_consistency_test_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev_with_env(
        &dir.path().join("vault"),
        &[("STRONGROOM_BREAK_SELF_TEST", "pairwise-consistency")],
    );
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(st["self_test"]["passed"], true, "{st}");
    let token = node.dev_token();
    for algorithm in ["secp256k1", "p256", "ed25519", "bls12-381"] {
        let r = node.cli(
            Some(&token),
            &["--json", "key", "create", "--algorithm", algorithm],
        );
        assert_eq!(r.error_code(), "self_check_failed", "{algorithm}");
    }
    let listed = node
        .cli(Some(&token), &["--json", "key", "list"])
        .ok()
        .json();
    assert_eq!(listed, serde_json::json!([]), "nothing kept");
}

#[test]
fn a_stuck_entropy_source_seals_the_vault_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let trigger = dir.path().join("stick");
    let node = Node::dev_with_env(
        &data,
        &[("STRONGROOM_BREAK_ENTROPY", trigger.to_str().unwrap())],
    );
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(st["entropy"]["healthy"], true, "{st}");
    assert!(
        st["entropy"]["sources"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("os"))
    );
    let token = node.dev_token();
    node.cli(
        Some(&token),
        &["--json", "key", "create", "--algorithm", "ed25519"],
    )
    .ok();
    // The source sticks: within one reseed interval the health test fails, and from then on
    // nothing is generated.
    std::fs::write(&trigger, b"").unwrap();
    let mut failed = None;
    for _ in 0..600 {
        let r = node.cli(
            Some(&token),
            &["--json", "key", "create", "--algorithm", "ed25519"],
        );
        if r.code != 0 {
            failed = Some(r.error_code());
            break;
        }
    }
    let code = failed.expect("the stuck source was never noticed");
    assert!(
        code == "entropy_failed" || code == "sealed",
        "fails closed: {code}"
    );
    let (_, st) = node.http("GET", "/v1/sys/status", None, None);
    assert_eq!(st["entropy"]["healthy"], false, "{st}");
    assert_eq!(st["entropy"]["failed"], "test-stuck: repetition count");
    assert_eq!(st["sealed"], true, "the vault sealed itself: {st}");
    node.stop();
    // Audited (in the clear, as records written while sealed are).
    let events = clear_audit_events(&data);
    assert!(
        events.iter().any(|e| e.contains("entropy.failed")),
        "a entropy.failed record, in the clear: {events:?}"
    );
}
