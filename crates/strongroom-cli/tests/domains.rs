//! Destroying a domain (production, approved): its master key is erased, every key in it is
//! destroyed and unusable (before and after a restart), and nothing new can be made in it.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn destroying_a_domain_shreds_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let share = init["shares"][0].as_str().unwrap().to_owned();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    for name in ["doomed", "kept"] {
        let r = pending(&node.cli(
            a,
            &["--json", "domain", "create", name, "--new-keys", "hot"],
        ));
        approve(&node, &bob, &r).ok();
    }
    let create = |node: &Node, domain: &str| {
        node.cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                domain,
                "--algorithm",
                "ed25519",
            ],
        )
    };
    let doomed_key = create(&node, "doomed").ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept_key = create(&node, "kept").ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = |domain: &str| {
        node.cli(a, &["--json", "token", "create", "--domain", domain])
            .ok()
            .json()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (doomed_app, kept_app) = (token("doomed"), token("kept"));
    let sign = |node: &Node, app: &str, key: &str| {
        node.cli(
            Some(app),
            &["--json", "sign", "--key", key, "--message", "00"],
        )
    };
    sign(&node, &doomed_app, &doomed_key).ok();

    let r = pending(&node.cli(a, &["--json", "domain", "destroy", "doomed"]));
    let shown = node.cli(a, &["--json", "request", "show", &r]).ok().json();
    assert!(
        shown["description"]
            .as_str()
            .unwrap()
            .starts_with("destroy the domain \"doomed\""),
        "{shown}"
    );
    assert_eq!(approve(&node, &bob, &r).ok().json()["status"], "executed");

    let check = |node: &Node| {
        assert_eq!(
            sign(node, &doomed_app, &doomed_key).error_code(),
            "key_destroyed"
        );
        let k = node
            .cli(a, &["--json", "key", "show", &doomed_key])
            .ok()
            .json();
        assert_eq!(k["state"], "destroyed");
        assert_eq!(create(node, "doomed").error_code(), "domain_destroyed");
        assert_eq!(
            node.cli(a, &["--json", "token", "create", "--domain", "doomed"])
                .error_code(),
            "domain_destroyed"
        );
        assert_eq!(
            node.cli(a, &["--json", "domain", "destroy", "doomed"])
                .error_code(),
            "domain_destroyed"
        );
        // The other domain is untouched.
        sign(node, &kept_app, &kept_key).ok();
        let domains = node.cli(a, &["--json", "domain", "list"]).ok().json();
        let state = |n: &str| {
            domains
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == n)
                .unwrap()["state"]
                .clone()
        };
        assert_eq!(
            (state("doomed"), state("kept")),
            ("destroyed".into(), "active".into())
        );
    };
    check(&node);
    // The master key and the key's secret are gone from the database itself.
    let (wrapped, secret): (Vec<u8>, Option<Vec<u8>>) = db(&data)
        .query_row(
            "SELECT d.wrapped_key, k.sealed_secret FROM domains d JOIN keys k ON k.domain_id = d.id
             WHERE k.id = ?1",
            [hex::decode(doomed_key.replace('-', "")).unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((wrapped.len(), secret), (0, None));

    // After a restart and unseal nothing comes back.
    node.stop();
    let node = Node::production(&data);
    node.cli_stdin(None, &["operator", "unseal"], &share).ok();
    check(&node);
    node.stop();
    audit_verify(&data).ok();
}

/// Crypto agility (production, approved): a deprecated algorithm makes no new keys but its
/// keys still sign, each signature audited with a warning; a disabled one neither makes keys
/// nor signs; allowing it again brings its keys back. Other algorithms are untouched.
#[test]
fn a_domain_deprecates_and_disables_an_algorithm_by_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    let r = pending(&node.cli(a, &["--json", "domain", "create", "d", "--new-keys", "hot"]));
    approve(&node, &bob, &r).ok();
    let create = |alg: &str| {
        node.cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "d",
                "--algorithm",
                alg,
            ],
        )
    };
    let id = |run: Run| run.ok().json()["id"].as_str().unwrap().to_owned();
    let old = id(create("secp256k1"));
    let other = id(create("p256"));
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "d"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = sha256_hex(b"agility");
    let sign = |key: &str| {
        node.cli(
            Some(&app),
            &["--json", "sign", "--key", key, "--digest", &digest],
        )
    };
    let algorithms = |args: &[&str]| {
        let mut v = vec!["--json", "domain", "algorithms", "d"];
        v.extend_from_slice(args);
        node.cli(a, &v)
    };

    // Deprecating is a quorum request: nothing changes until it is approved.
    let r = pending(&algorithms(&["--deprecate", "secp256k1"]));
    id(create("secp256k1"));
    let done = approve(&node, &bob, &r).ok().json();
    assert_eq!(done["status"], "executed", "{done}");
    let domain = node
        .cli(a, &["--json", "domain", "list"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "d")
        .cloned()
        .unwrap();
    assert_eq!(domain["algorithms"]["secp256k1"], "deprecated", "{domain}");
    assert_eq!(domain["algorithms"]["p256"], "allowed", "{domain}");
    let refused = create("secp256k1");
    assert_eq!(
        (refused.code, refused.error_code().as_str()),
        (1, "algorithm_deprecated")
    );
    sign(&old).ok();
    sign(&other).ok();
    id(create("p256"));

    // Disabled: its keys no longer sign, nor are new ones made.
    approve(
        &node,
        &bob,
        &pending(&algorithms(&["--disable", "secp256k1"])),
    )
    .ok();
    assert_eq!(sign(&old).error_code(), "algorithm_disabled");
    assert_eq!(create("secp256k1").error_code(), "algorithm_disabled");
    sign(&other).ok();
    // Asking for what already is changes nothing.
    assert_eq!(
        algorithms(&["--disable", "secp256k1"]).error_code(),
        "no_change"
    );

    // Allowed again: the same key signs with the same public key.
    approve(
        &node,
        &bob,
        &pending(&algorithms(&["--allow", "secp256k1"])),
    )
    .ok();
    sign(&old).ok();
    node.stop();

    // Exactly the one signature made while deprecated carries the warning.
    let events = audit_events(&data, &[init["shares"][0].as_str().unwrap()]);
    let signs = granted_details(&events, "key.sign");
    assert_eq!(
        signs
            .iter()
            .filter(|d| d.contains("algorithm_deprecated"))
            .count(),
        1,
        "{signs:?}"
    );
    assert_eq!(granted_details(&events, "domain.algorithms").len(), 3);
}
