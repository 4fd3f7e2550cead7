//! Cold-storage bundles: a cold key exported (with approval) as its sealed blob encrypted again
//! under a key split 2-of-3 among custodians' age keys and taken offline; the shares opened with
//! the reference `age`; the key imported back and, once warmed, signing as before.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

#[test]
fn export_offline_and_import_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let enrolled: Vec<Enrolled> = [
        ("alice", "security-officer"),
        ("bob", "security-officer"),
        ("ann", "approver"),
    ]
    .iter()
    .map(|(n, r)| enrol(&node, &boot, n, &[r]))
    .collect();
    let people: Vec<Person> = ["alice", "bob", "ann"]
        .iter()
        .zip(&enrolled)
        .map(|(n, e)| person_from(&node, dir.path(), n, e))
        .collect();
    let (alice, bob, ann) = (&people[0], &people[1], &people[2]);
    let a = Some(alice.token.as_str());
    approve(
        &node,
        bob,
        &pending(&node.cli(a, &["--json", "domain", "create", "ops"])),
    )
    .ok();
    let key = node
        .cli(
            a,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "ops",
                "--algorithm",
                "secp256k1",
            ],
        )
        .ok()
        .json();
    let kid = key["id"].as_str().unwrap().to_owned();
    let public_key = hex::decode(key["public_key"].as_str().unwrap()).unwrap();
    let custodians: Vec<(PathBuf, String)> = ["c1", "c2", "c3"]
        .iter()
        .map(|n| keygen(dir.path(), n))
        .collect();
    let out = dir.path().join("bundle.json");
    let export_to = |path: &Path, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "key",
            "export",
            &kid,
            "--threshold",
            "2",
            "--out",
            path.to_str().unwrap(),
            "--custodian-keys",
        ];
        args.extend(custodians.iter().map(|c| c.1.as_str()));
        args.extend(extra);
        node.cli(a, &args)
    };
    let export = |extra: &[&str]| export_to(&out, extra);

    // Only a cold key leaves.
    assert_eq!(export(&["--remove"]).error_code(), "key_not_cold");
    node.cli(a, &["--json", "key", "temperature", &kid, "cold"])
        .ok();
    let r = pending(&export(&["--remove"]));
    let shown = node.cli(a, &["--json", "request", "show", &r]).ok().json();
    let words = shown["description"].as_str().unwrap();
    assert!(
        words.starts_with("export the cold secp256k1 key")
            && words.contains("any 2 of these 3 custodians")
            && words.ends_with("then remove it from the vault (offline until imported)"),
        "{words}"
    );
    assert_eq!(approve(&node, ann, &r).ok().json()["status"], "executed");
    node.cli(
        a,
        &[
            "--json",
            "request",
            "show",
            &r,
            "--bundle-out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let k = node.cli(a, &["--json", "key", "show", &kid]).ok().json();
    assert_eq!(
        (k["state"].as_str(), k["temperature"].as_str()),
        (Some("offline"), Some("cold"))
    );
    // Offline means offline: the secret is gone from the database, and the key cannot warm.
    let in_db: Option<Vec<u8>> = db(&data)
        .query_row(
            "SELECT sealed_secret FROM keys WHERE id = ?1",
            [hex::decode(kid.replace('-', "")).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_db, None);
    assert_eq!(
        node.cli(a, &["--json", "key", "temperature", &kid, "warm"])
            .error_code(),
        "key_offline"
    );

    // Each custodian opens only their own share, with the reference age.
    let share_file = |i: usize| PathBuf::from(format!("{}.share-{i}.age", out.display()));
    assert_eq!(age_decrypt(&custodians[1].0, &share_file(1)), None);
    let s1 = age_decrypt(&custodians[0].0, &share_file(1)).unwrap();
    let s3 = age_decrypt(&custodians[2].0, &share_file(3)).unwrap();
    let import = |bundle: &Path, shares: &str| {
        node.cli_stdin(
            a,
            &[
                "--json",
                "key",
                "import",
                "--bundle",
                bundle.to_str().unwrap(),
            ],
            shares,
        )
    };
    assert_eq!(import(&out, &s1).error_code(), "too_few_shares");
    // The bundle binds what it describes: a tampered ciphertext does not open.
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let ct = file["ciphertext"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &ct[..ct.len() - 1],
        if ct.ends_with('0') { '1' } else { '0' }
    );
    file["ciphertext"] = flipped.into();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, file.to_string()).unwrap();
    assert_eq!(
        import(&tampered, &format!("{s1}\n{s3}")).error_code(),
        "bundle_unseal_failed"
    );
    let back = import(&out, &format!("{s1}\n{s3}")).ok().json();
    assert_eq!(
        (back["state"].as_str(), back["temperature"].as_str()),
        (Some("active"), Some("cold"))
    );
    assert_eq!(
        import(&out, &format!("{s1}\n{s3}")).error_code(),
        "key_online"
    );

    // A domain key rotation: an offline key holds the old version until it is imported (and
    // then moved); a copy bundle made before a rotation moved the key is not importable after.
    let collect = |path: &Path, extra: &[&str]| {
        let r = pending(&export_to(path, extra));
        approve(&node, ann, &r).ok();
        node.cli(
            a,
            &[
                "--json",
                "request",
                "show",
                &r,
                "--bundle-out",
                path.to_str().unwrap(),
            ],
        )
        .ok();
    };
    let shares_for = |path: &Path| {
        let f = |i: usize| PathBuf::from(format!("{}.share-{i}.age", path.display()));
        format!(
            "{}\n{}",
            age_decrypt(&custodians[0].0, &f(1)).unwrap(),
            age_decrypt(&custodians[2].0, &f(3)).unwrap()
        )
    };
    let show = || {
        node.cli(a, &["--json", "domain", "show", "ops"])
            .ok()
            .json()
    };
    let copy = dir.path().join("copy.json");
    collect(&copy, &[]);
    node.cli(a, &["--json", "domain", "rotate", "ops"]).ok();
    wait_up_to(30, || show()["rotation"].is_null());
    let offline = dir.path().join("offline.json");
    collect(&offline, &["--remove"]);
    assert_eq!(
        import(&copy, &shares_for(&copy)).error_code(),
        "bundle_stale"
    );
    let rotating = node
        .cli(a, &["--json", "domain", "rotate", "ops"])
        .ok()
        .json();
    assert_eq!(rotating["key_version"], 3, "{rotating}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let held = show();
    assert_eq!(
        (
            held["rotation"]["offline"].as_u64(),
            held["rotation"]["remaining"].as_u64()
        ),
        (Some(1), Some(0)),
        "{held}"
    );
    import(&offline, &shares_for(&offline)).ok();
    wait_up_to(30, || show()["rotation"].is_null());
    assert_eq!(show()["key_version"], 3);

    // Warmed again (with approval), it signs as before.
    let r = pending(&node.cli(a, &["--json", "key", "temperature", &kid, "hot"]));
    approve(&node, ann, &r).ok();
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let digest = sha256_hex(b"after the vault");
    let sig = node
        .cli(
            Some(&app),
            &["--json", "sign", "--key", &kid, "--digest", &digest],
        )
        .ok()
        .json();
    strongroom_crypto::verify(
        strongroom_core::Algorithm::Secp256k1,
        &public_key,
        strongroom_crypto::Payload::Digest(&hex::decode(&digest).unwrap().try_into().unwrap()),
        &hex::decode(sig["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    node.stop();
    let conn = audit_events(&data, &shares_of(&init));
    for (op, times) in [
        ("key.export", 3),
        ("key.import", 2),
        ("domain.rotate_complete", 2),
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM audit WHERE operation = ?1 AND outcome = 1",
                [op],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, times, "{op}");
    }
    audit_verify(&data).ok();
}
