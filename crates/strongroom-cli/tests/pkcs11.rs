//! PKCS#11 sealing against a real SoftHSM2 token made for each test: the vault unseals itself
//! at start while the token is there; a wrong PIN, a missing token or a missing key leave it
//! sealed, saying why, with no fallback; moving between Shamir and PKCS#11 sealing, both
//! ways, is a quorum operation that keeps the shares valid.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../strongroom-pkcs11/tests/support/softhsm.rs"]
mod softhsm;

use std::path::Path;

use common::*;
use softhsm::{MODULE, PIN, SoftHsm};

const TOKEN: &str = "strongroom";
const KEY: &str = "strongroom-root";

fn seal_toml(token: &str, pin_file: &Path) -> String {
    format!(
        "[seal]\nkind = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{token}\"\npin_file = \"{}\"\nkey_label = \"{KEY}\"\n",
        pin_file.display()
    )
}

fn start(data: &Path, hsm: &SoftHsm, seal: &str) -> Node {
    let conf = hsm.conf();
    Node::production_with(data, seal, &[("SOFTHSM2_CONF", conf.to_str().unwrap())])
}

fn status(node: &Node) -> serde_json::Value {
    node.cli(None, &["--json", "status"]).ok().json()
}

fn init(node: &Node) -> serde_json::Value {
    node.cli(
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
    .json()
}

fn sign(node: &Node, app: &str, key: &str) -> serde_json::Value {
    node.cli(
        Some(app),
        &["--json", "sign", "--key", key, "--digest", &"ab".repeat(32)],
    )
    .ok()
    .json()
}

#[test]
fn a_pkcs11_vault_unseals_itself_and_stays_sealed_when_the_token_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN);
    hsm.init_token("spare");
    let pin = hsm.pin_file("pin", PIN);
    let seal = seal_toml(TOKEN, &pin);

    let node = start(&data, &hsm, &seal);
    assert_eq!(status(&node)["node_seal"], "pkcs11");
    let out = init(&node);
    assert_eq!(out["seal"], "pkcs11");
    assert_eq!(
        out["shares"].as_array().unwrap().len(),
        3,
        "recovery shares"
    );
    let shares: Vec<String> = out["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let s = status(&node);
    assert_eq!(
        (s["sealed"].as_bool(), s["seal"].as_str()),
        (Some(false), Some("pkcs11"))
    );
    // The wrapping key was made in the token, and cannot leave it.
    let key = hsm
        .describe_key(TOKEN, KEY)
        .expect("wrapping key on the token");
    assert!(
        key.contains("never extractable") && key.contains("always sensitive"),
        "{key}"
    );

    let boot = out["root_token"].as_str().unwrap().to_owned();
    let (alice, bob) = security_officers(&node, dir.path(), &boot);
    let a = Some(alice.token.as_str());
    let req = pending(&node.cli(
        a,
        &["--json", "domain", "create", "ops", "--new-keys", "hot"],
    ));
    approve(&node, &bob, &req).ok();
    let kid = node
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
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = node
        .cli(a, &["--json", "token", "create", "--domain", "ops"])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = sign(&node, &app, &kid);

    // A rekey of a token-sealed vault: the token wraps the new root too, and the new shares
    // replace the old as the recovery path.
    let rekey = |args: &[&str], stdin: Option<&str>| {
        let mut v = vec!["--json", "operator", "rekey"];
        v.extend_from_slice(args);
        match stdin {
            Some(s) => node.cli_stdin(None, &v, s),
            None => node.cli(a, &v),
        }
    };
    rekey(&["--shares", "3", "--threshold", "2"], None).ok();
    rekey(&[], Some(&shares[0])).ok();
    let issued = rekey(&[], Some(&shares[1])).ok().json();
    let old_shares = shares;
    let shares: Vec<String> = issued["new_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    rekey(&[], Some(&shares[2])).ok();
    let done = rekey(&[], Some(&shares[0])).ok().json();
    assert_eq!(
        (done["phase"].as_str(), done["epoch"].as_u64()),
        (Some("complete"), Some(1))
    );
    assert_eq!(status(&node)["seal"], "pkcs11");
    node.stop();

    // A restart with the token present: unsealed with no one at the keyboard, same key.
    let node = start(&data, &hsm, &seal);
    assert_eq!(status(&node)["sealed"], false);
    let again = sign(&node, &app, &kid);
    assert_eq!(
        again["signature"], first["signature"],
        "RFC 6979: same key, same digest"
    );
    node.stop();

    // Each failure: sealed, the reason named, nothing signed, and no other way in but the
    // operators' recovery shares.
    let wrong_pin = hsm.pin_file("wrong", "123456");
    let cases = [
        (seal_toml(TOKEN, &wrong_pin), "hsm_pin_incorrect"),
        (seal_toml("absent", &pin), "hsm_token_not_found"),
        (seal_toml("spare", &pin), "hsm_key_not_found"),
        (
            seal.replace(MODULE, "/nonexistent/libpkcs11.so"),
            "hsm_module_unavailable",
        ),
    ];
    for (cfg, code) in &cases {
        let node = start(&data, &hsm, cfg);
        let s = status(&node);
        assert_eq!(s["sealed"], true, "{code}");
        assert_eq!(s["seal_error"]["code"], *code, "{s}");
        let human = node.cli(None, &["status"]).ok().stdout;
        assert!(human.contains(code), "{human}");
        let r = node.cli(
            Some(&app),
            &[
                "--json",
                "sign",
                "--key",
                &kid,
                "--digest",
                &"ab".repeat(32),
            ],
        );
        assert_eq!(r.error_code(), "sealed", "{code}");
        node.stop();
    }
    // Recovery (the PIN latch itself is tested in strongroom-pkcs11's token test).
    let node = start(&data, &hsm, &cases[0].0);
    assert_eq!(status(&node)["seal_error"]["code"], "hsm_pin_incorrect");
    // Recovery: two of the three (new) shares unseal it without the token (under a changed
    // configuration, which an officer signs first); the old ones no longer do.
    sign_config(&node, &data, &alice);
    let r = node.cli_stdin(None, &["--json", "operator", "unseal"], &old_shares[0]);
    assert_eq!(r.error_code(), "invalid_share");
    node.cli_stdin(None, &["operator", "unseal"], &shares[0])
        .ok();
    node.cli_stdin(None, &["operator", "unseal"], &shares[2])
        .ok();
    assert_eq!(status(&node)["sealed"], false);
    assert_eq!(sign(&node, &app, &kid)["signature"], first["signature"]);
    node.stop();

    // The wrapping key deleted from the token: the vault can no longer unseal by it.
    hsm.tool(
        TOKEN,
        &["--delete-object", "--type", "secrkey", "--label", KEY],
    );
    let node = start(&data, &hsm, &seal);
    assert_eq!(status(&node)["seal_error"]["code"], "hsm_key_not_found");
    node.stop();

    // Every unseal attempt, refused or not, is in the verified audit chain.
    let v = audit_verify(&data);
    assert_eq!(v.code, 0, "{}", v.stdout);
    // (The audit records' storage key derives from the first root: the old shares read them.)
    let shares: Vec<&str> = old_shares.iter().map(String::as_str).collect();
    let log = export_operations(&data, &shares);
    for code in [
        "hsm_pin_incorrect",
        "hsm_token_not_found",
        "hsm_key_not_found",
    ] {
        assert!(log.contains(code), "{code} not audited");
    }
}

/// The newest signed audit head is anchored in the token as well as in the data directory:
/// the whole directory (database and head file) put back from an earlier copy is caught, and
/// it is the token that catches it.
#[test]
fn a_data_directory_put_back_whole_is_caught_by_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let copy = dir.path().join("copy");
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN);
    let pin = hsm.pin_file("pin", PIN);
    let seal = seal_toml(TOKEN, &pin);
    let node = start(&data, &hsm, &seal);
    let out = init(&node);
    let boot = out["root_token"].as_str().unwrap().to_owned();
    let vault_id = out["vault_id"].as_str().unwrap().to_owned();
    enrol(&node, &boot, "alice", &["security-officer"]);
    // The anchor follows within a second.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    node.stop();
    copy_dir(&data, &copy);

    let node = start(&data, &hsm, &seal);
    assert_eq!(status(&node)["sealed"], false);
    enrol(&node, &boot, "bob", &["custodian"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    node.stop();

    // The earlier copy, database and head file together: refused, no automatic unseal.
    let _ = std::fs::remove_dir_all(&data);
    copy_dir(&copy, &data);
    let node = start(&data, &hsm, &seal);
    let st = status(&node);
    assert_eq!(st["sealed"], true, "{st}");
    let why = st["rollback"].as_str().unwrap_or_default();
    assert!(why.contains("this node signed record"), "{st}");
    node.stop();

    // Without the token's anchor the same copy would pass: it is what caught it.
    hsm.tool(
        TOKEN,
        &[
            "--delete-object",
            "--type",
            "data",
            "--label",
            &format!("strongroom-audit-head:{vault_id}"),
        ],
    );
    let _ = std::fs::remove_dir_all(&data);
    copy_dir(&copy, &data);
    let node = start(&data, &hsm, &seal);
    let st = status(&node);
    assert!(st.get("rollback").is_none(), "{st}");
    assert_eq!(st["sealed"], false, "{st}");
    node.stop();
}

/// Every audited operation with its code, one `operation code` line each.
fn export_operations(data: &Path, shares: &[&str]) -> String {
    let conn = audit_events(data, shares);
    let mut stmt = conn
        .prepare("SELECT operation, coalesce(code, '') FROM audit ORDER BY seq")
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.join("\n")
}

#[test]
fn migrating_between_shamir_and_pkcs11_takes_a_quorum_and_keeps_the_shares() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN);
    let pin = hsm.pin_file("pin", PIN);
    let pkcs11 = seal_toml(TOKEN, &pin);
    let unseal = |node: &Node, shares: &[String]| {
        for s in &shares[..2] {
            node.cli_stdin(None, &["operator", "unseal"], s).ok();
        }
        assert_eq!(status(node)["sealed"], false);
    };

    // A Shamir vault with two officers.
    let node = start(&data, &hsm, "");
    let out = init(&node);
    assert_eq!(out["seal"], "shamir");
    let shares: Vec<String> = out["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    unseal(&node, &shares);
    let (alice, bob) = security_officers(&node, dir.path(), out["root_token"].as_str().unwrap());
    let a = Some(alice.token.as_str());
    assert_eq!(
        node.cli(a, &["--json", "operator", "seal-migrate"])
            .error_code(),
        "seal_unchanged"
    );
    node.stop();

    // The node now names the token: the vault is still sealed by shares until migrated, and
    // the token is not touched.
    let node = start(&data, &hsm, &pkcs11);
    let s = status(&node);
    assert_eq!(
        (s["seal"].as_str(), s["node_seal"].as_str()),
        (Some("shamir"), Some("pkcs11"))
    );
    assert!(s.get("seal_error").is_none(), "{s}");
    assert_eq!(s["sealed"], true);
    // Migration needs the vault unsealed.
    assert_eq!(
        node.cli(a, &["--json", "operator", "seal-migrate"])
            .error_code(),
        "sealed"
    );
    // A changed configuration: an officer signs it (`config.change`) before it unseals.
    sign_config(&node, &data, &alice);
    unseal(&node, &shares);
    let req = pending(&node.cli(a, &["--json", "operator", "seal-migrate"]));
    let shown = node
        .cli(a, &["--json", "request", "show", &req])
        .ok()
        .json();
    assert!(
        shown["description"]
            .as_str()
            .unwrap()
            .starts_with("protect the vault's root key by pkcs11 (key \"strongroom-root\" on token \"strongroom\", serial "),
        "{shown}"
    );
    assert_eq!(
        status(&node)["seal"],
        "shamir",
        "nothing changes before approval"
    );
    let done = approve(&node, &bob, &req).ok().json();
    assert_eq!(done["status"], "executed", "{done}");
    assert_eq!(status(&node)["seal"], "pkcs11");
    assert!(hsm.describe_key(TOKEN, KEY).is_some());
    node.stop();

    // Now it unseals itself; the old shares still work as recovery.
    let node = start(&data, &hsm, &pkcs11);
    assert_eq!(status(&node)["sealed"], false);
    node.stop();

    // And back to shares alone, again with a quorum, on a node configured for Shamir.
    let node = start(&data, &hsm, "");
    let s = status(&node);
    assert_eq!(
        (s["seal"].as_str(), s["node_seal"].as_str()),
        (Some("pkcs11"), Some("shamir"))
    );
    assert_eq!(s["sealed"], true);
    sign_config(&node, &data, &alice);
    unseal(&node, &shares);
    let req = pending(&node.cli(a, &["--json", "operator", "seal-migrate"]));
    // The requester never approves their own request.
    assert_eq!(approve(&node, &alice, &req).error_code(), "own_request");
    approve(&node, &bob, &req).ok();
    assert_eq!(status(&node)["seal"], "shamir");
    node.stop();

    // The token no longer unseals it: a PKCS#11 node waits for shares.
    let node = start(&data, &hsm, &pkcs11);
    let s = status(&node);
    assert_eq!(
        (s["sealed"].as_bool(), s["seal"].as_str()),
        (Some(true), Some("shamir"))
    );
    sign_config(&node, &data, &bob);
    unseal(&node, &shares);
    node.stop();
    assert_eq!(audit_verify(&data).code, 0);
}
