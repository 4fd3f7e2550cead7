//! Measured, signed configuration: a node audits its binary's and configuration's hashes at
//! start; the first configuration (before any security officer exists) is accepted as it is;
//! once officers exist, a node whose configuration changed does not unseal until as many
//! vault-wide security officers as `config.change` asks have signed exactly those bytes for
//! this vault (`config sign`); an approver's signature, a signature for another vault or for
//! other bytes, and an edited acceptance record do not count.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn sha256_file(p: &std::path::Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// The hash of the server binary, computed once (it is hundreds of megabytes).
fn bin_sha256() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| sha256_file(std::path::Path::new(BIN)))
}

/// Stops `node` once its start is measured (the binary is hashed in the background).
fn stop_measured(node: Node) {
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["binary_sha256"] == bin_sha256());
    node.stop();
}

fn unseal(node: &Node, share: &str) -> Run {
    node.cli_stdin(None, &["--json", "operator", "unseal"], share)
}

#[test]
fn a_changed_configuration_unseals_only_with_enough_security_officer_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let cfg = data.with_extension("toml");
    let node = Node::production(&data);
    let init = init_unsealed(&node);
    let share = init["shares"][0].as_str().unwrap().to_owned();
    let boot = init["root_token"].as_str().unwrap().to_owned();
    // First boot: accepted as it is.
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert_eq!(st["config"]["admitted"], true, "{st}");
    let measured = st["config"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(measured.len(), 64, "{st}");
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["binary_sha256"] == bin_sha256());

    // The bootstrap token enrols everyone before two officers log in (which retires it).
    let sam_e = enrol(&node, &boot, "sam", &["security-officer"]);
    let sue_e = enrol(&node, &boot, "sue", &["security-officer"]);
    let ann_e = enrol(&node, &boot, "ann", &["approver"]);
    let audrey_e = enrol(&node, &boot, "audrey", &["auditor"]);
    let sam = person_from(&node, dir.path(), "sam", &sam_e);
    let sue = person_from(&node, dir.path(), "sue", &sue_e);
    let ann = person_from(&node, dir.path(), "ann", &ann_e);
    let audrey = login_person(&node, dir.path(), "audrey", &audrey_e);
    let vault_id = node.http("GET", "/v1/sys/status", None, None).1["vault_id"]
        .as_str()
        .unwrap()
        .to_owned();
    stop_measured(node);

    // The same configuration unseals without signatures.
    let node = Node::production(&data);
    unseal(&node, &share).ok();
    stop_measured(node);

    // A changed one is refused: the vault seals again and says why.
    let changed = "[tamper]\nsignal = \"usr1\"\n";
    let node = Node::production_with(&data, changed, &[]);
    let refused = unseal(&node, &share);
    assert_eq!(refused.error_code(), "config_unauthorized");
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert_eq!(
        (&st["sealed"], &st["config"]["admitted"]),
        (&true.into(), &false.into()),
        "{st}"
    );
    assert!(
        st["config"]["refused"]
            .as_str()
            .unwrap()
            .contains("config sign"),
        "{st}"
    );

    // A security officer's signature for another vault does not count; an approver's does
    // not either.
    let other_vault = "00000000-0000-4000-8000-000000000001";
    sign_config_file(&node, &cfg, &sam.key, &["--vault-id", other_vault]);
    assert_eq!(unseal(&node, &share).error_code(), "config_unauthorized");
    sign_config_file(&node, &cfg, &ann.key, &[]);
    assert_eq!(unseal(&node, &share).error_code(), "config_unauthorized");
    let sig_file = format!("{}.sig", cfg.display());
    assert!(std::path::Path::new(&sig_file).exists());

    // One security officer (the default `config.change` rule) admits it.
    sign_config_file(&node, &cfg, &sam.key, &[]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sig_file).unwrap()).unwrap();
    assert_eq!(doc["vault_id"], vault_id.as_str());
    assert_eq!(doc["signatures"].as_array().unwrap().len(), 2, "{doc}");
    unseal(&node, &share).ok();
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert_eq!(
        (&st["sealed"], &st["config"]["admitted"]),
        (&false.into(), &true.into())
    );

    // `config verify` (an auditor may) says who signed and what the rule needs.
    let verdict = node
        .cli(
            Some(&audrey),
            &[
                "--json",
                "config",
                "verify",
                "--config",
                cfg.to_str().unwrap(),
            ],
        )
        .ok()
        .json();
    assert_eq!(
        verdict["signed_by"],
        serde_json::json!(["sam"]),
        "{verdict}"
    );
    assert_eq!(
        (verdict["required"].as_u64(), verdict["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (&verdict["sufficient"], &verdict["this_node"]),
        (&true.into(), &true.into())
    );
    // An approver may not ask.
    assert_eq!(
        node.cli(
            Some(&ann.token),
            &[
                "--json",
                "config",
                "verify",
                "--config",
                cfg.to_str().unwrap()
            ],
        )
        .error_code(),
        "forbidden"
    );

    // Two signatures from now on: sue approves sam's rule change.
    let r = pending(&node.cli(
        Some(&sam.token),
        &[
            "--json",
            "quorum",
            "set",
            "--operation",
            "config.change",
            "--approvals",
            "2",
        ],
    ));
    approve(&node, &sue, &r).ok();
    let short = node.cli(
        Some(&audrey),
        &[
            "--json",
            "config",
            "verify",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(short.error_code(), "config_unauthorized");
    assert!(
        short.stdout.contains("1 valid of 2 needed"),
        "{}",
        short.stdout
    );
    stop_measured(node);

    // Accepted once, it needs no signatures at the next start (the .sig may go)...
    std::fs::remove_file(&sig_file).unwrap();
    let node = Node::production_with(&data, changed, &[]);
    unseal(&node, &share).ok();
    stop_measured(node);
    // ...but the acceptance record cannot be moved to other bytes: its MAC binds the hash.
    let accepted = data.join("config-accepted");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&accepted).unwrap()).unwrap();
    let other = format!("{changed}# another change\n");
    let node = Node::production_with(&data, &other, &[]);
    let mut forged = rec.clone();
    forged["config_sha256"] = sha256_file(&cfg).into();
    std::fs::write(&accepted, forged.to_string()).unwrap();
    assert_eq!(unseal(&node, &share).error_code(), "config_unauthorized");
    // Two officers now: one is not enough, both are.
    sign_config_file(&node, &cfg, &sam.key, &[]);
    assert_eq!(unseal(&node, &share).error_code(), "config_unauthorized");
    sign_config_file(&node, &cfg, &sue.key, &[]);
    unseal(&node, &share).ok();
    stop_measured(node);

    // The audit log holds each start's measurements and each acceptance.
    let events = audit_events(&data, &[&share]);
    let starts: Vec<String> = granted_details(&events, "node.start");
    assert!(starts.len() >= 5, "{starts:?}");
    assert!(
        starts.iter().all(|d| d.contains(bin_sha256())),
        "{starts:?}"
    );
    let accepted: Vec<String> = granted_details(&events, "config.accepted");
    assert_eq!(accepted.len(), 3, "{accepted:?}");
    assert!(accepted[0].contains("first_boot"));
    assert!(accepted[1].contains("\"signed_by\":[\"sam\"]"));
    assert!(accepted[2].contains("sam") && accepted[2].contains("sue"));
    drop(events);

    // A database editor cannot make the officers disappear to fake a first boot: an edited
    // officer row refuses the check...
    let conn = db(&data);
    conn.execute("UPDATE operators SET failed_logins = 7", [])
        .unwrap();
    let third = format!("{other}# a third change\n");
    let node = Node::production_with(&data, &third, &[]);
    assert_eq!(unseal(&node, &share).error_code(), "stored_data_corrupt");
    stop_measured(node);
    // ...and with every operator row deleted, the node remembers officers existed.
    conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM operators;")
        .unwrap();
    let node = Node::production_with(&data, &third, &[]);
    assert_eq!(unseal(&node, &share).error_code(), "config_unauthorized");
    stop_measured(node);
}

#[test]
fn dev_mode_is_exempt_and_measures_its_binary() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev(&dir.path().join("vault"));
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert!(st.get("config").is_none(), "{st}");
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["binary_sha256"] == bin_sha256());
}
