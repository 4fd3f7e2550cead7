//! Several nodes, one PostgreSQL: two real `serve` processes on a throwaway server. Each is
//! unsealed on its own; sessions, requests and approvals cross nodes; concurrent appends from
//! both stay one valid chain; a revocation or a freeze on one node holds on the other within
//! moments; a quorum completed on two nodes at once runs exactly once; `audit verify
//! --config` checks the shared chain.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../strongroom-storage/tests/support/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};

use common::*;

/// The audit events of the shared database, opened with the vault's share (see
/// `audit_events_from`).
fn pg_audit_events(server: &pg::PgServer, share: &str) -> rusqlite::Connection {
    let rows = server
        .psql(
            &server.url,
            "SELECT seq, time, sealed, encode(event, 'hex') FROM audit ORDER BY seq",
        )
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                hex::decode(f[3]).unwrap(),
            )
        })
        .collect();
    audit_events_from(rows, &[share])
}

fn pg_config(url: &str) -> String {
    format!("[storage]\npostgres = \"{url}\"\n")
}

fn verify_config(dir: &Path, data: &Path, url: &str) -> Run {
    let cfg = dir.join(format!(
        "{}-verify.toml",
        data.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{}",
            data.display(),
            pg_config(url)
        ),
    )
    .unwrap();
    cli(
        "http://unused",
        None,
        &[
            "--json",
            "audit",
            "verify",
            "--config",
            cfg.to_str().unwrap(),
        ],
        None,
    )
}

#[test]
fn two_nodes_one_database() {
    let server = pg::PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b): (PathBuf, PathBuf) = (dir.path().join("a"), dir.path().join("b"));
    let a = Node::production_with(&data_a, &pg_config(&server.url), &[]);
    let b = Node::production_with(&data_b, &pg_config(&server.url), &[]);

    // One vault: initialised through A, unsealed on each node separately.
    let init = a
        .cli(
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
        )
        .ok()
        .json();
    let share = init["shares"][0].as_str().unwrap().to_owned();
    assert_eq!(
        b.cli(
            None,
            &[
                "--json",
                "operator",
                "init",
                "--shares",
                "1",
                "--threshold",
                "1"
            ]
        )
        .error_code(),
        "already_initialized"
    );
    for n in [&a, &b] {
        n.cli_stdin(None, &["operator", "unseal"], &share).ok();
    }
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let alice_e = enrol(&a, &boot, "alice", &["security-officer"]);
    let bob_e = enrol(&b, &boot, "bob", &["security-officer"]);
    let ann_e = enrol(&a, &boot, "ann", &["approver"]);
    let amy_e = enrol(&b, &boot, "amy", &["approver"]);
    // Sessions made on one node work on the other.
    let alice = person_from(&a, dir.path(), "alice", &alice_e);
    let bob = person_from(&b, dir.path(), "bob", &bob_e);
    let ann = person_from(&a, dir.path(), "ann", &ann_e);
    let amy = person_from(&b, dir.path(), "amy", &amy_e);
    let al = Some(alice.token.as_str());

    // A request filed on A is approved on B and runs there; A sees the result.
    let r = pending(&a.cli(
        al,
        &["--json", "domain", "create", "ops", "--new-keys", "hot"],
    ));
    assert_eq!(approve(&b, &bob, &r).ok().json()["status"], "executed");
    let key = b
        .cli(
            al,
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
    let app = a
        .cli(al, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Concurrent signing on both nodes: every signature lands in one chain.
    let signers: Vec<_> = (0..4)
        .map(|i| {
            let node_addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let (app, kid) = (app.clone(), kid.clone());
            std::thread::spawn(move || {
                for j in 0..15 {
                    let digest = sha256_hex(format!("{i}-{j}").as_bytes());
                    cli(
                        &node_addr,
                        Some(&app),
                        &["--json", "sign", "--key", &kid, "--digest", &digest],
                        None,
                    )
                    .ok();
                }
            })
        })
        .collect();
    for s in signers {
        s.join().unwrap();
    }
    let signed: i64 = pg_audit_events(&server, &share)
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'key.sign' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(signed, 60);

    // A revocation on A holds on B, which had the token cached.
    let doomed = a
        .cli(al, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json();
    let doomed_token = doomed["token"].as_str().unwrap().to_owned();
    b.cli(
        Some(&doomed_token),
        &["--json", "key", "list", "--domain", "ops"],
    )
    .ok();
    a.cli(
        al,
        &["--json", "token", "revoke", doomed["id"].as_str().unwrap()],
    )
    .ok();
    wait_up_to(5, || {
        b.cli(
            Some(&doomed_token),
            &["--json", "key", "list", "--domain", "ops"],
        )
        .error_code()
            == "invalid_token"
    });
    // A freeze on B holds on A, which had the key cached hot.
    let digest = sha256_hex(b"frozen?");
    a.cli(
        Some(&app),
        &["--json", "sign", "--key", &kid, "--digest", &digest],
    )
    .ok();
    b.cli(al, &["--json", "key", "temperature", &kid, "cold"])
        .ok();
    wait_up_to(5, || {
        a.cli(
            Some(&app),
            &["--json", "sign", "--key", &kid, "--digest", &digest],
        )
        .error_code()
            == "key_cold"
    });

    // Two approvals arriving on two nodes at once complete a 2-approval request exactly once.
    let rule = pending(&a.cli(
        al,
        &[
            "--json",
            "quorum",
            "set",
            "--operation",
            "key.destroy",
            "--approvals",
            "2",
        ],
    ));
    approve(&b, &bob, &rule).ok();
    let d = pending(&a.cli(al, &["--json", "key", "destroy", &kid]));
    let (addr_a, addr_b) = (a.addr.clone(), b.addr.clone());
    let both: Vec<_> = [(addr_a, ann), (addr_b, amy)]
        .into_iter()
        .map(|(addr, p)| {
            let d = d.clone();
            std::thread::spawn(move || {
                cli(
                    &addr,
                    Some(&p.token),
                    &[
                        "--json",
                        "request",
                        "approve",
                        &d,
                        "--key-file",
                        p.key.to_str().unwrap(),
                    ],
                    None,
                )
            })
        })
        .collect();
    for h in both {
        h.join().unwrap().ok();
    }
    let shown = b.cli(al, &["--json", "request", "show", &d]).ok().json();
    assert_eq!(shown["status"], "executed", "{shown}");
    let destroyed: i64 = pg_audit_events(&server, &share)
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'key.destroy' AND outcome = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(destroyed, 1);
    let k = a.cli(al, &["--json", "key", "show", &kid]).ok().json();
    assert_eq!(k["state"], "destroyed");

    // A rekey on A: A goes on under the new root (its own change notification must not seal
    // it); B, which holds the old root, seals itself and opens with the new share only.
    let key = |n: &Node| {
        n.cli(
            al,
            &[
                "--json",
                "key",
                "create",
                "--domain",
                "ops",
                "--algorithm",
                "ed25519",
            ],
        )
        .ok()
        .json()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let kid = key(&a);
    let rekey = |stdin: Option<&str>| match stdin {
        Some(s) => a.cli_stdin(None, &["--json", "operator", "rekey"], s),
        None => a.cli(
            al,
            &[
                "--json",
                "operator",
                "rekey",
                "--shares",
                "1",
                "--threshold",
                "1",
            ],
        ),
    };
    rekey(None).ok();
    let issued = rekey(Some(&share)).ok().json();
    let new_share = issued["new_shares"][0].as_str().unwrap().to_owned();
    assert_eq!(rekey(Some(&new_share)).ok().json()["phase"], "complete");
    let sign_on = |n: &Node| {
        n.cli(
            Some(&app),
            &["--json", "sign", "--key", &kid, "--message", "00"],
        )
    };
    sign_on(&a).ok();
    assert_eq!(
        a.cli(None, &["--json", "status"]).ok().json()["sealed"],
        false
    );
    wait_up_to(5, || {
        b.cli(None, &["--json", "status"]).ok().json()["sealed"] == true
    });
    assert_eq!(sign_on(&b).error_code(), "sealed");
    let r = b.cli_stdin(None, &["--json", "operator", "unseal"], &share);
    assert_eq!(r.error_code(), "invalid_share");
    b.cli_stdin(None, &["operator", "unseal"], &new_share).ok();
    sign_on(&b).ok();
    key(&b);
    sign_on(&a).ok();

    a.stop();
    b.stop();
    // Both nodes' view of the shared chain verifies, with each node's own head file.
    for data in [&data_a, &data_b] {
        let v = verify_config(dir.path(), data, &server.url).ok().json();
        assert_eq!(v["ok"], true, "{v}");
    }
    // An edited record is caught.
    server.psql(
        &server.url,
        "UPDATE audit SET time = time + 1 WHERE seq = 5",
    );
    let v = verify_config(dir.path(), &data_a, &server.url);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
}

/// `strongroom bench --postgres`: two dev nodes on one database against one on SQLite. Not a
/// timing test: it checks the benchmark runs cleanly and that every request it counted as
/// answered is in the audit chain (nothing acknowledged without its record).
#[test]
fn the_scale_out_benchmark_accounts_for_every_request() {
    let server = pg::PgServer::start();
    let url = server.another_database("bench");
    let r = cli(
        "http://unused",
        None,
        &[
            "--json",
            "bench",
            "--seconds",
            "1",
            "--clients",
            "4",
            "--postgres",
            &url,
        ],
        None,
    )
    .ok();
    let report = r.json();
    let runs: Vec<&serde_json::Value> = report
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| {
            [
                &v["http"],
                &v["http_postgres"]["run"],
                &v["audit_appends"],
                &v["audit_appends_postgres"]["run"],
            ]
        })
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(runs.len(), 6, "{report}");
    for run in runs {
        let requests = run["requests"].as_u64().unwrap();
        assert!(requests > 0, "{run}");
        assert_eq!(run["errors"], 0, "{run}");
        // One record per answered request; refused ones would be recorded too, and there are
        // none.
        assert_eq!(run["audit_records"].as_u64().unwrap(), requests, "{run}");
    }
}
