//! TLS and mutual TLS on the API: certificates made with the openssl CLI; the strongroom CLI,
//! curl and `openssl s_client` as independent clients. TLS 1.2 and 1.3 only; a client
//! certificate from the configured CA is required when `client_ca` is set; broken
//! configurations stop the node with a clear message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 CA (`NAME.pem`, `NAME.key`).
fn ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (pem, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    (pem, key)
}

/// A leaf certificate issued by `ca` with the given extensions.
fn leaf(dir: &Path, name: &str, ca: &(PathBuf, PathBuf), ext: &str) -> (PathBuf, PathBuf) {
    let (pem, key, csr, extfile) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extfile, ext).unwrap();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
        "-subj",
        &format!("/CN={name}"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        ca.0.to_str().unwrap(),
        "-CAkey",
        ca.1.to_str().unwrap(),
        "-CAcreateserial",
        "-out",
        pem.to_str().unwrap(),
        "-days",
        "2",
        "-extfile",
        extfile.to_str().unwrap(),
    ]);
    (pem, key)
}

fn tls_section(server: &(PathBuf, PathBuf), client_ca: Option<&Path>) -> String {
    let mut s = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        server.0.display(),
        server.1.display()
    );
    if let Some(ca) = client_ca {
        s.push_str(&format!("client_ca = \"{}\"\n", ca.display()));
    }
    s
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `openssl s_client` with a forced protocol: the version it negotiated, if any.
fn negotiated(addr: &str, ca: &Path, version: &str) -> Option<String> {
    let host = addr.trim_start_matches("https://");
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            host,
            "-CAfile",
            ca.to_str().unwrap(),
            "-brief",
            version,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Protocol version: "))
        .map(|v| v.trim().to_owned())
}

#[test]
fn tls_and_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = ca(d, "root-ca");
    let server = leaf(
        d,
        "server",
        &root,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    let client = leaf(d, "client", &root, "extendedKeyUsage=clientAuth\n");
    let rogue_ca = ca(d, "rogue-ca");
    let rogue = leaf(d, "rogue", &rogue_ca, "extendedKeyUsage=clientAuth\n");
    let cacert = root.0.to_str().unwrap().to_owned();

    // TLS: the CLI trusts the server through STRONGROOM_CACERT, and only then.
    let node = Node::production_with(&d.join("v1"), &tls_section(&server, None), &[]);
    assert!(node.addr.starts_with("https://127.0.0.1:"), "{}", node.addr);
    let status = cli_env(
        &node.addr,
        None,
        &["--json", "status"],
        None,
        &[("STRONGROOM_CACERT", &cacert)],
    )
    .ok()
    .json();
    assert_eq!(status["initialized"], false);
    let untrusted = cli(&node.addr, None, &["--json", "status"], None);
    assert_ne!(
        untrusted.code, 0,
        "a server from an unknown CA must not be trusted"
    );
    // Independent clients: curl with the CA, and plain HTTP to the TLS port fails.
    assert_eq!(
        curl(&["--cacert", &cacert, &format!("{}/v1/health", node.addr)]),
        (true, "200".to_owned())
    );
    let plain = node.addr.replace("https://", "http://");
    let (_, code) = curl(&[&format!("{plain}/v1/health")]);
    assert_ne!(
        code, "200",
        "plain HTTP must not be answered on the TLS port"
    );
    // TLS 1.3 and 1.2 only.
    assert_eq!(
        negotiated(&node.addr, &root.0, "-tls1_3").as_deref(),
        Some("TLSv1.3")
    );
    assert_eq!(
        negotiated(&node.addr, &root.0, "-tls1_2").as_deref(),
        Some("TLSv1.2")
    );
    assert_eq!(negotiated(&node.addr, &root.0, "-tls1_1"), None);
    node.stop();

    // Mutual TLS: a client certificate from the configured CA is required.
    let node = Node::production_with(&d.join("v2"), &tls_section(&server, Some(&root.0)), &[]);
    let with = |cert: &(PathBuf, PathBuf)| {
        cli_env(
            &node.addr,
            None,
            &["--json", "status"],
            None,
            &[
                ("STRONGROOM_CACERT", &cacert),
                ("STRONGROOM_CLIENT_CERT", cert.0.to_str().unwrap()),
                ("STRONGROOM_CLIENT_KEY", cert.1.to_str().unwrap()),
            ],
        )
    };
    assert_eq!(with(&client).ok().json()["sealed"], true);
    assert_ne!(
        with(&rogue).code,
        0,
        "a certificate from another CA is refused"
    );
    let none = cli_env(
        &node.addr,
        None,
        &["--json", "status"],
        None,
        &[("STRONGROOM_CACERT", &cacert)],
    );
    assert_ne!(none.code, 0, "no client certificate, no answer");
    let (ok, _) = curl(&[
        "--cacert",
        &cacert,
        "--cert",
        client.0.to_str().unwrap(),
        "--key",
        client.1.to_str().unwrap(),
        &format!("{}/v1/health", node.addr),
    ]);
    assert!(ok);
    assert!(!curl(&["--cacert", &cacert, &format!("{}/v1/health", node.addr)]).0);
    // The ceremony runs over mutual TLS.
    let env = [
        ("STRONGROOM_CACERT", cacert.as_str()),
        ("STRONGROOM_CLIENT_CERT", client.0.to_str().unwrap()),
        ("STRONGROOM_CLIENT_KEY", client.1.to_str().unwrap()),
    ];
    let init = cli_env(
        &node.addr,
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
        None,
        &env,
    )
    .ok()
    .json();
    let unsealed = cli_env(
        &node.addr,
        None,
        &["--json", "operator", "unseal"],
        init["shares"][0].as_str(),
        &env,
    )
    .ok()
    .json();
    assert_eq!(unsealed["sealed"], false);
    node.stop();

    // Broken configurations stop the node before it listens, saying why.
    let start = |name: &str, config: &str| {
        let cfg = d.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let data = d.join("v3");
    let wrong_key = tls_section(&(server.0.clone(), client.1.clone()), None);
    let msg = start(
        "mismatch",
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{wrong_key}",
            data.display()
        ),
    );
    assert!(msg.contains("does not match"), "{msg}");
    let msg = start(
        "open",
        &format!(
            "listen = \"0.0.0.0:0\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    );
    assert!(msg.contains("add a [tls] section"), "{msg}");
    let missing = tls_section(&(d.join("nope.pem"), server.1.clone()), None);
    let msg = start(
        "missing",
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{missing}",
            data.display()
        ),
    );
    assert!(msg.contains("nope.pem"), "{msg}");
}
