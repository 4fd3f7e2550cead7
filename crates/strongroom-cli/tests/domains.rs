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
    let enrolled: Vec<Enrolled> = [("alice", "security-officer"), ("bob", "security-officer")]
        .iter()
        .map(|(n, r)| enrol(&node, &boot, n, &[r]))
        .collect();
    let alice = person_from(&node, dir.path(), "alice", &enrolled[0]);
    let bob = person_from(&node, dir.path(), "bob", &enrolled[1]);
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
