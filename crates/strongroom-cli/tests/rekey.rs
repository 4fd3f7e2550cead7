//! Rekey: a threshold of the current shares authorises a new root and new shares (here
//! 2-of-3 becomes 2-of-2); a threshold of the new shares verifies them; the commit re-wraps
//! every domain master key under the new root. Signing goes on throughout, with the same
//! keys; afterwards only the new shares unseal, across a restart; the audit chain verifies.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn verify_ed25519(public_key: &str, message: &[u8], signature: &str) {
    strongroom_crypto::verify(
        strongroom_core::Algorithm::Ed25519,
        &hex::decode(public_key).unwrap(),
        strongroom_crypto::Payload::Message(message),
        &hex::decode(signature).unwrap(),
    )
    .unwrap();
}

#[test]
fn rekey_replaces_the_shares_and_keeps_every_key() {
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
                "3",
                "--threshold",
                "2",
            ],
        )
        .ok()
        .json();
    let old: Vec<String> = shares_of(&init).iter().map(|s| (*s).to_owned()).collect();
    for s in &old[..2] {
        node.cli_stdin(None, &["operator", "unseal"], s).ok();
    }
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    let domain = |name: &str| {
        let r = pending(&node.cli(
            a,
            &["--json", "domain", "create", name, "--new-keys", "hot"],
        ));
        approve(&node, &bob, &r).ok();
        let key = node
            .cli(
                a,
                &[
                    "--json",
                    "key",
                    "create",
                    "--domain",
                    name,
                    "--algorithm",
                    "ed25519",
                ],
            )
            .ok()
            .json();
        let app = app_token(&node, a, name);
        (
            key["id"].as_str().unwrap().to_owned(),
            key["public_key"].as_str().unwrap().to_owned(),
            app,
        )
    };
    let sign = |node: &Node, (id, pk, app): &(String, String, String), msg: &str| {
        let sig = node
            .cli(
                Some(app),
                &["--json", "sign", "--key", id, "--message", msg],
            )
            .ok()
            .json()["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        verify_ed25519(pk, &hex::decode(msg).unwrap(), &sig);
    };
    let first = domain("first");
    sign(&node, &first, "01");
    let rekey = |token: Option<&str>, args: &[&str], stdin: Option<&str>| {
        let mut v = vec!["--json", "operator", "rekey"];
        v.extend_from_slice(args);
        match stdin {
            Some(s) => node.cli_stdin(token, &v, s),
            None => node.cli(token, &v),
        }
    };

    // Only a security officer starts one; parameters are checked.
    assert_eq!(
        rekey(Some(&first.2), &["--shares", "2", "--threshold", "2"], None).error_code(),
        "forbidden"
    );
    assert_eq!(
        rekey(a, &["--shares", "2", "--threshold", "3"], None).error_code(),
        "invalid_parameters"
    );
    let started = rekey(a, &["--shares", "2", "--threshold", "2"], None)
        .ok()
        .json();
    assert_eq!(started["phase"], "authorise", "{started}");
    assert_eq!(started["required"], 2);
    assert_eq!(
        rekey(a, &["--shares", "2", "--threshold", "2"], None).error_code(),
        "rekey_in_progress"
    );

    // The current shares authorise; refused shares are never counted.
    let p = rekey(None, &[], Some(&old[0])).ok().json();
    assert_eq!(
        (p["phase"].as_str(), p["progress"].as_u64()),
        (Some("authorise"), Some(1))
    );
    assert_eq!(
        rekey(None, &[], Some(&old[0])).error_code(),
        "duplicate_share"
    );
    assert_eq!(
        rekey(None, &[], Some("srs1-00")).error_code(),
        "malformed_share"
    );
    sign(&node, &first, "02");
    let issued = rekey(None, &[], Some(&old[2])).ok().json();
    assert_eq!(issued["phase"], "verify", "{issued}");
    let new: Vec<String> = issued["new_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|n| !old.contains(n)));
    // Shown once: the status says where it stands, never the shares.
    let st = rekey(None, &["--status"], None).ok().json();
    assert_eq!(
        (st["phase"].as_str(), st["progress"].as_u64()),
        (Some("verify"), Some(0))
    );
    assert!(st.get("new_shares").is_none(), "{st}");

    // The new shares come back; an old one is not a new one. Signing continues.
    assert_eq!(
        rekey(None, &[], Some(&old[1])).error_code(),
        "invalid_share"
    );
    rekey(None, &[], Some(&new[1])).ok();
    sign(&node, &first, "03");
    let done = rekey(None, &[], Some(&new[0])).ok().json();
    assert_eq!(done["phase"], "complete", "{done}");
    assert_eq!(done["epoch"], 1);
    assert_eq!(done["domains_rewrapped"], 1);
    assert_eq!(rekey(None, &["--status"], None).error_code(), "not_found");

    // Same keys, and new domains under the new root.
    sign(&node, &first, "04");
    let second = domain("second");
    sign(&node, &second, "05");

    // Sealed, only the new shares open it, across a restart too.
    node.cli(a, &["operator", "seal"]).ok();
    for s in &old {
        let r = node.cli_stdin(None, &["--json", "operator", "unseal"], s);
        assert_eq!(r.error_code(), "invalid_share", "{}", r.stdout);
    }
    node.cli_stdin(None, &["operator", "unseal"], &new[0]).ok();
    node.cli_stdin(None, &["operator", "unseal"], &new[1]).ok();
    sign(&node, &first, "06");
    sign(&node, &second, "07");
    node.stop();
    let node = Node::production(&data);
    for s in &new {
        node.cli_stdin(None, &["operator", "unseal"], s).ok();
    }
    sign(&node, &first, "08");
    sign(&node, &second, "09");
    node.stop();

    let verified = audit_verify(&data).ok().json();
    assert_eq!(verified["ok"], true, "{verified}");
    // The audit records are sealed under the storage key, which derives from the derivation
    // base (the first root): it survives the rekey, so the old shares still read them (the
    // residual docs/threat-model.md names; they open no signing key).
    let events = audit_events(&data, &[&old[0], &old[1]]);
    let details = granted_details(&events, "operator.rekey");
    assert_eq!(details.len(), 1, "{details:?}");
    let d: serde_json::Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(
        (d["epoch"].as_u64(), d["domains_rewrapped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(granted_details(&events, "operator.rekey_start").len(), 1);
}
