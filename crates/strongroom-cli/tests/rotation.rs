//! Domain master key rotation: under continuous signing no request fails, new keys take the
//! new version at once, every blob moves in audited batches and the old version is erased;
//! killed (-9) halfway, the node resumes after a restart and completes it, every key still
//! signing with its own public key.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::*;

/// A production node unsealed, with two security officers, a hot domain `d`, `n` keys in it
/// and an application token. Returns the node, the shares, officer alice, the token and the
/// keys (id, algorithm, public key).
struct Setup {
    node: Node,
    shares: Vec<String>,
    officer: String,
    app: String,
    keys: Vec<(String, String, String)>,
}

fn setup(dir: &Path, data: &Path, rotation: &str, n: usize) -> Setup {
    let node = Node::production_with(data, rotation, &[]);
    let init = init_unsealed(&node);
    let shares: Vec<String> = shares_of(&init).iter().map(|s| (*s).to_owned()).collect();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir, &boot);
    let a = Some(alice.token.as_str());
    let r = pending(&node.cli(a, &["--json", "domain", "create", "d", "--new-keys", "hot"]));
    approve(&node, &bob, &r).ok();
    let keys = (0..n)
        .map(|i| {
            let alg = if i % 2 == 0 { "ed25519" } else { "secp256k1" };
            let k = node
                .cli(
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
                .ok()
                .json();
            (
                k["id"].as_str().unwrap().to_owned(),
                alg.to_owned(),
                k["public_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let app = app_token(&node, a, "d");
    Setup {
        node,
        shares,
        officer: alice.token,
        app,
        keys,
    }
}

/// Signs with `key` and checks the signature against its public key.
fn sign_checked(addr: &str, app: &str, (id, alg, pk): &(String, String, String), n: usize) -> Run {
    let message = format!("{n:08x}");
    let digest = sha256_hex(message.as_bytes());
    let args: Vec<&str> = if alg == "ed25519" {
        vec!["--json", "sign", "--key", id, "--message", &message]
    } else {
        vec!["--json", "sign", "--key", id, "--digest", &digest]
    };
    let run = cli(addr, Some(app), &args, None);
    if run.code == 0 {
        let sig = hex::decode(run.json()["signature"].as_str().unwrap()).unwrap();
        let (algorithm, payload_bytes) = if alg == "ed25519" {
            (
                strongroom_core::Algorithm::Ed25519,
                hex::decode(&message).unwrap(),
            )
        } else {
            (
                strongroom_core::Algorithm::Secp256k1,
                hex::decode(&digest).unwrap(),
            )
        };
        let payload = if alg == "ed25519" {
            strongroom_crypto::Payload::Message(&payload_bytes)
        } else {
            strongroom_crypto::Payload::Digest(payload_bytes.as_slice().try_into().unwrap())
        };
        strongroom_crypto::verify(algorithm, &hex::decode(pk).unwrap(), payload, &sig).unwrap();
    }
    run
}

fn show(node: &Node, token: &str) -> serde_json::Value {
    node.cli(Some(token), &["--json", "domain", "show", "d"])
        .ok()
        .json()
}

/// `(domain_key_version, count)` of the domain's live keys, from the database itself.
fn versions(data: &Path) -> Vec<(i64, i64)> {
    db(data)
        .prepare(
            "SELECT domain_key_version, COUNT(*) FROM keys WHERE destroyed_at IS NULL
             GROUP BY domain_key_version ORDER BY domain_key_version",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn retiring_key_present(data: &Path) -> bool {
    db(data)
        .query_row(
            "SELECT COUNT(*) FROM domains WHERE retiring_key IS NOT NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        > 0
}

#[test]
fn rotation_under_signing_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let s = setup(
        dir.path(),
        &data,
        "[rotation]\nbatch_size = 2\nbatch_interval_ms = 150\n",
        10,
    );
    let officer = Some(s.officer.as_str());
    assert_eq!(show(&s.node, &s.officer)["key_version"], 1);
    // Only officers rotate.
    assert_eq!(
        s.node
            .cli(Some(&s.app), &["--json", "domain", "rotate", "d"])
            .error_code(),
        "forbidden"
    );

    // Continuous signing with every key, from three clients, across the whole rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (signed, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let signers: Vec<_> = (0..3)
        .map(|t| {
            let (addr, app, keys) = (s.node.addr.clone(), s.app.clone(), s.keys.clone());
            let (stop, signed, failed) = (stop.clone(), signed.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    let run = sign_checked(&addr, &app, &keys[n % keys.len()], n);
                    if run.code == 0 {
                        signed.fetch_add(1, Ordering::SeqCst);
                    } else {
                        eprintln!("signing failed: {} {}", run.stdout, run.stderr);
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    n += 1;
                }
            })
        })
        .collect();

    let started = s
        .node
        .cli(officer, &["--json", "domain", "rotate", "d"])
        .ok()
        .json();
    assert_eq!(started["key_version"], 2, "{started}");
    assert_eq!(started["rotation"]["from_version"], 1);
    assert_eq!(
        s.node
            .cli(officer, &["--json", "domain", "rotate", "d"])
            .error_code(),
        "rotation_in_progress"
    );
    // A key made during the rotation is under the new version at once.
    let fresh = s
        .node
        .cli(
            officer,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "d",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json();
    let fresh_id = fresh["id"].as_str().unwrap().to_owned();
    let fresh_version: i64 = db(&data)
        .query_row(
            "SELECT domain_key_version FROM keys WHERE hex(id) = upper(replace(?1, '-', ''))",
            [&fresh_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fresh_version, 2);

    // Progress is visible and falls to nothing.
    let mut seen_partial = false;
    wait_up_to(60, || {
        let v = show(&s.node, &s.officer);
        match v["rotation"]["remaining"].as_u64() {
            Some(n) if n > 0 && n < 10 => {
                seen_partial = true;
                false
            }
            Some(_) => false,
            None => true,
        }
    });
    assert!(seen_partial, "no intermediate progress was visible");
    stop.store(true, Ordering::SeqCst);
    for h in signers {
        h.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "a signature request failed"
    );
    assert!(signed.load(Ordering::SeqCst) > 20);

    // Every blob is under version 2, and version 1 is erased.
    assert_eq!(versions(&data), vec![(2, 11)]);
    assert!(!retiring_key_present(&data));
    assert_eq!(show(&s.node, &s.officer)["key_version"], 2);
    for (i, k) in s.keys.iter().enumerate() {
        sign_checked(&s.node.addr, &s.app, k, i).ok();
    }
    // Each batch and the end are on the record.
    let events = audit_events(&data, &[&s.shares[0]]);
    let batches = granted_details(&events, "domain.rotate_batch");
    let moved: u64 = batches
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["keys"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(moved, 10, "{batches:?}");
    assert!(batches.len() >= 5, "{batches:?}");
    assert_eq!(granted_details(&events, "domain.rotate_complete").len(), 1);
    assert_eq!(granted_details(&events, "domain.rotate").len(), 1);
    // And again: version 3.
    s.node
        .cli(officer, &["--json", "domain", "rotate", "d"])
        .ok();
    wait_up_to(60, || show(&s.node, &s.officer)["rotation"].is_null());
    assert_eq!(versions(&data), vec![(3, 11)]);
    s.node.stop();
    audit_verify(&data).ok();
}

#[test]
fn a_rotation_killed_halfway_completes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prod");
    let config = "[rotation]\nbatch_size = 1\nbatch_interval_ms = 250\n";
    let s = setup(dir.path(), &data, config, 8);
    s.node
        .cli(Some(&s.officer), &["--json", "domain", "rotate", "d"])
        .ok();
    wait_up_to(30, || {
        let r = show(&s.node, &s.officer)["rotation"]["remaining"].as_u64();
        matches!(r, Some(n) if (1..=6).contains(&n))
    });
    s.node.kill9();
    // Halfway, durably: some keys moved, some not, the retiring version kept.
    let halfway = versions(&data);
    assert_eq!(halfway.len(), 2, "{halfway:?}");
    assert!(retiring_key_present(&data));

    let node = Node::production_with(&data, config, &[]);
    node.cli_stdin(None, &["operator", "unseal"], &s.shares[0])
        .ok();
    // Keys under either version sign meanwhile.
    for (i, k) in s.keys.iter().enumerate() {
        sign_checked(&node.addr, &s.app, k, i).ok();
    }
    wait_up_to(60, || show(&node, &s.officer)["rotation"].is_null());
    assert_eq!(versions(&data), vec![(2, 8)]);
    assert!(!retiring_key_present(&data));
    for (i, k) in s.keys.iter().enumerate() {
        sign_checked(&node.addr, &s.app, k, 100 + i).ok();
    }
    node.stop();
    audit_verify(&data).ok();
}
