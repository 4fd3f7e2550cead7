//! `operator init --custodian-key`: each unseal share is encrypted by the server to one
//! custodian's age key, written to its own file, and decrypted with the reference `age` tool
//! only by that custodian; the plaintext share never reaches the ceremony's terminal.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;

#[test]
fn shares_are_encrypted_to_each_custodian_and_unseal_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let node = Node::production(&data);
    let custodians: Vec<(PathBuf, String)> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| keygen(dir.path(), n))
        .collect();
    let shares_dir = dir.path().join("shares");
    std::fs::create_dir(&shares_dir).unwrap();
    let init = |keys: &[&str]| {
        let mut args = vec![
            "operator",
            "init",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--share-dir",
            shares_dir.to_str().unwrap(),
        ];
        for k in keys {
            args.extend(["--custodian-key", k]);
        }
        node.cli(None, &args)
    };
    let uninitialised = || {
        let s = node.cli(None, &["--json", "status"]).ok().json();
        s["initialized"] == serde_json::json!(false)
    };

    // Refused before anything is created: a secret key file, a wrong count, a repeated key.
    let r = init(&[
        custodians[0].0.to_str().unwrap(),
        &custodians[1].1,
        &custodians[2].1,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("secret key"), "{}", r.stderr);
    assert!(uninitialised());
    for (keys, code) in [
        (
            vec![custodians[0].1.clone(), custodians[1].1.clone()],
            "custodian_keys_mismatch",
        ),
        (
            vec![
                custodians[0].1.clone(),
                custodians[1].1.clone(),
                custodians[0].1.clone(),
            ],
            "duplicate_custodian_key",
        ),
        (
            vec![
                custodians[0].1.clone(),
                custodians[1].1.clone(),
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q".into(),
            ],
            "invalid_custodian_key",
        ),
    ] {
        let body = serde_json::json!({"shares": 3, "threshold": 2, "custodian_keys": keys});
        let (status, answer) = node.http("POST", "/v1/sys/init", None, Some(&body.to_string()));
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code))
        );
        assert!(uninitialised());
    }

    // The spelling: `--custodian-keys FILE...`, here public-key files
    // (`age-keygen -y` output) and one inline recipient.
    let public: Vec<PathBuf> = custodians[..2]
        .iter()
        .enumerate()
        .map(|(i, (_, r))| {
            let p = dir.path().join(format!("{i}.pub"));
            std::fs::write(&p, format!("{r}\n")).unwrap();
            p
        })
        .collect();
    let r = node
        .cli(
            None,
            &[
                "operator",
                "init",
                "--shares",
                "3",
                "--threshold",
                "2",
                "--share-dir",
                shares_dir.to_str().unwrap(),
                "--custodian-keys",
                public[0].to_str().unwrap(),
                public[1].to_str().unwrap(),
                &custodians[2].1,
            ],
        )
        .ok();
    assert!(!r.stdout.contains("srs1-"), "a share reached the terminal");
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| shares_dir.join(format!("strongroom-share-{i}.age")))
        .collect();
    let mut shares = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let armored = std::fs::read_to_string(file).unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!armored.contains("srs1-"));
        // Only its own custodian can open it.
        let other = &custodians[(i + 1) % 3].0;
        assert_eq!(
            age_decrypt(other, file),
            None,
            "share {i} opened by another key"
        );
        let share = age_decrypt(&custodians[i].0, file).unwrap();
        assert!(share.starts_with("srs1-"), "{share}");
        shares.push(share);
    }
    // A re-run cannot overwrite the files (and the vault refuses a second init anyway).
    let r = init(&[&custodians[0].1, &custodians[1].1, &custodians[2].1]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);

    // Two custodians pipe their decrypted shares straight into unseal.
    for share in &shares[1..] {
        node.cli_stdin(None, &["operator", "unseal"], share).ok();
    }
    let status = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(status["sealed"], serde_json::json!(false));
}
