//! Protected memory, end to end: the server is not dumpable, so a debugger without
//! CAP_SYS_PTRACE can neither attach nor read its memory (while an ordinary process of the
//! same user can be debugged); a tracer that attaches anyway (root) triggers the tamper
//! response; and a validator key's secret is found nowhere in the server's memory, neither
//! after it has signed (loaded keys are encrypted in memory) nor after a tamper response.
//! The node also confines itself (least privilege) and reports it truthfully.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Seek as _};
use std::process::{Command, Stdio};

use common::*;

/// `setpriv` arguments: run as this user without CAP_SYS_PTRACE.
const NO_PTRACE_CAP: [&str; 4] = ["--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace"];

/// Runs `support/ptrace_probe.py` against `pid`, without CAP_SYS_PTRACE when `drop_cap`:
/// `(attach_errno, mem_errno)`, 0 meaning it worked. The probe holds its attachment for
/// `hold` seconds; the returned child is still running.
fn probe(pid: u32, drop_cap: bool, hold: f32) -> ((i64, i64), std::process::Child) {
    probe_target(pid, drop_cap, hold, false)
}

/// [`probe`], attaching to one of `pid`'s other threads when `thread`.
fn probe_target(
    pid: u32,
    drop_cap: bool,
    hold: f32,
    thread: bool,
) -> ((i64, i64), std::process::Child) {
    let python = std::env::var("STRONGROOM_ORACLE_PYTHON")
        .expect("STRONGROOM_ORACLE_PYTHON is unset: run the tests with ./scripts/test.sh");
    let script = format!(
        "{}/tests/support/ptrace_probe.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = if drop_cap {
        // The same user (root) without the one capability that overrides non-dumpable.
        let mut c = Command::new("setpriv");
        c.args(NO_PTRACE_CAP).arg(&python);
        c
    } else {
        Command::new(&python)
    };
    let mut child = cmd
        .arg(&script)
        .args([pid.to_string(), hold.to_string()])
        .args(thread.then_some("thread"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead as _;
        let out = child.stdout.take().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
    }
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    (
        (
            v["attach_errno"].as_i64().unwrap(),
            v["mem_errno"].as_i64().unwrap(),
        ),
        child,
    )
}

#[test]
fn the_server_cannot_be_debugged_without_cap_sys_ptrace() {
    // The probe itself works: an ordinary process of the same user with the same
    // capabilities is debuggable.
    let mut plain = Command::new("setpriv")
        .args(NO_PTRACE_CAP)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let ((attach, mem), mut p) = probe(plain.id(), true, 0.0);
    assert_eq!(
        (attach, mem),
        (0, 0),
        "a plain process can be attached and read"
    );
    p.wait().unwrap();
    plain.kill().unwrap();
    plain.wait().unwrap();

    let dir = tempfile::tempdir().unwrap();
    // The server under the same capability set as the probe (as root it would hold caps the
    // probe lacks, which alone refuses the attach): only its being non-dumpable stops it.
    let mut wrapper = vec!["setpriv"];
    wrapper.extend(NO_PTRACE_CAP);
    let node = Node::dev_wrapped(&dir.path().join("vault"), &wrapper);
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    assert_eq!(st["memory"]["non_dumpable"], true, "{st}");
    let pid = node.child.as_ref().unwrap().id();
    let ((attach, mem), mut p) = probe(pid, true, 0.0);
    p.wait().unwrap();
    // EPERM for the attach, EACCES (or EPERM) reading its memory map or memory.
    assert_eq!(attach, 1, "attach refused");
    assert!(mem == 13 || mem == 1, "memory unreadable: errno {mem}");
    // Nothing happened to the vault: a refused attach is not a tamper event.
    assert_eq!(
        node.http("GET", "/v1/sys/status", None, None).1["sealed"],
        false
    );
}

#[test]
fn keys_live_in_locked_memory_and_a_tracer_triggers_the_tamper_response() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("vault");
    let node = Node::dev(&data);
    let root = node.dev_token();
    node.cli(
        Some(&root),
        &["--json", "key", "create", "--algorithm", "ed25519"],
    )
    .ok();
    let st = node.http("GET", "/v1/sys/status", None, None).1;
    let memory = &st["memory"];
    assert!(
        memory["backing"] == "memfd_secret" || memory["backing"] == "mlock",
        "{st}"
    );
    assert_eq!(memory["locked"], true, "{st}");

    // Root can attach (CAP_SYS_PTRACE), here to a worker thread rather than the main one;
    // the vault notices and zeroizes.
    let pid = node.child.as_ref().unwrap().id();
    let ((attach, _), mut p) = probe_target(pid, false, 4.0, true);
    assert_eq!(attach, 0);
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["sealed"] == true);
    assert!(data.join("tampered").exists());
    // Unsealed while the tracer is still there: sealed again at once.
    let share = std::fs::read_to_string(data.join("dev-unseal-share")).unwrap();
    node.cli_stdin(None, &["--json", "operator", "unseal"], share.trim())
        .ok();
    wait_for(|| node.http("GET", "/v1/sys/status", None, None).1["sealed"] == true);
    p.wait().unwrap();
    // Once it has gone, the shares bring the vault back.
    node.cli_stdin(None, &["--json", "operator", "unseal"], share.trim())
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        node.http("GET", "/v1/sys/status", None, None).1["sealed"],
        false
    );
    node.stop();
    let events = audit_events(&data, &[share.trim()]);
    let details = granted_details(&events, "operator.tamper");
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details
            .iter()
            .all(|d| d.contains("\"how\":\"tracer\"") && d.contains("tracer attached: pid")),
        "{details:?}"
    );
}

/// Least privilege: a node confines itself (Landlock and three seccomp filters, with
/// no_new_privs) and says so; `[sandbox] enabled = false` is visible as `off`, so the status
/// is read from what was applied, not assumed; `require` and `min_landlock_abi` fail closed.
#[test]
fn the_node_confines_itself_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let proc_status = |node: &Node| {
        let pid = node.child.as_ref().unwrap().id();
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
    };
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    let node = Node::dev(&dir.path().join("dev"));
    let s = node.cli(None, &["--json", "status"]).ok().json();
    let files = s["sandbox"]["files"].as_str().unwrap().to_owned();
    assert!(files == "enforced" || files == "partial", "{s}");
    assert_eq!(s["sandbox"]["syscalls"], "enforced", "{s}");
    assert!(s["sandbox"]["landlock_abi"].as_u64().unwrap() >= 1, "{s}");
    let st = proc_status(&node);
    assert_eq!(field(&st, "Seccomp:"), "2");
    assert_eq!(field(&st, "Seccomp_filters:"), "3");
    assert_eq!(field(&st, "NoNewPrivs:"), "1");
    // Still a working node: a key signs.
    let root = node.dev_token();
    node.cli(
        Some(&root),
        &["--json", "key", "create", "--algorithm", "ed25519"],
    )
    .ok();
    node.stop();

    let node = Node::production_with(
        &dir.path().join("prod"),
        "[sandbox]\nenabled = false\n",
        &[],
    );
    let s = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(
        (&s["sandbox"]["files"], &s["sandbox"]["syscalls"]),
        (&"off".into(), &"off".into())
    );
    assert_eq!(field(&proc_status(&node), "Seccomp:"), "0");
    node.stop();

    // Fail closed on request: a configuration asking for a newer Landlock ABI than any
    // kernel has (99) refuses to start and says why; `require` on this kernel starts.
    let cfg = dir.path().join("strict.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[sandbox]\nmin_landlock_abi = 99\n",
            dir.path().join("strict").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("min_landlock_abi = 99"),
        "{stderr}"
    );
    let node = Node::production_with(
        &dir.path().join("required"),
        "[sandbox]\nrequire = true\nmin_landlock_abi = 1\n",
        &[],
    );
    let s = node.cli(None, &["--json", "status"]).ok().json();
    assert_eq!(s["sandbox"]["syscalls"], "enforced", "{s}");
}

/// Occurrences of `needle` in process `pid`'s readable memory (root reads it through
/// /proc/PID/mem, as an attacker with CAP_SYS_PTRACE would).
fn occurrences_in(pid: u32, needle: &[u8]) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = 0;
    let mut buf = vec![0u8; 1 << 20];
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.contains("[vvar") || line.contains("[vsyscall]") {
            continue;
        }
        let (lo, hi) = range.split_once('-').unwrap();
        let (mut at, hi) = (
            u64::from_str_radix(lo, 16).unwrap(),
            u64::from_str_radix(hi, 16).unwrap(),
        );
        while at < hi {
            let len = usize::try_from((hi - at).min(buf.len() as u64)).unwrap();
            let chunk = &mut buf[..len];
            if mem.seek(std::io::SeekFrom::Start(at)).is_err() || mem.read_exact(chunk).is_err() {
                break;
            }
            found += chunk.windows(needle.len()).filter(|w| *w == needle).count();
            at += (len - (needle.len() - 1).min(len - 1)) as u64;
        }
    }
    found
}

#[test]
fn a_validator_secret_is_not_in_server_memory_while_signing_or_after_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::dev_eth2(&dir.path().join("vault"));
    let root = node.dev_token();
    let vectors = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../strongroom-crypto/tests/vectors/eip2335"
    );
    let pw = dir.path().join("pw");
    std::fs::write(
        &pw,
        "\u{1d531}\u{1d522}\u{1d530}\u{1d531}\u{1d52d}\u{1d51e}\u{1d530}\u{1d530}\u{1d534}\u{1d52c}\u{1d52f}\u{1d521}\u{1f511}",
    )
    .unwrap();
    node.cli(
        Some(&root),
        &[
            "--json",
            "eth2",
            "import",
            "--keystore",
            &format!("{vectors}/pbkdf2.json"),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    )
    .ok();
    // The EIP-2335 test keystore's secret, both byte orders (blst keeps scalars
    // little-endian); the leading zero bytes are left out. The test process holds it, so its
    // own memory is not what is scanned.
    let secret = hex::decode("19d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f").unwrap();
    let mut reversed = secret.clone();
    reversed.reverse();
    let pid = node.child.as_ref().unwrap().id();
    // The scan works: the key's public half is in server memory.
    let public = hex::decode("9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07").unwrap();
    assert!(
        occurrences_in(pid, &public) > 0,
        "the scanner finds the public key"
    );
    let count = |when: &str| {
        let (a, b) = (occurrences_in(pid, &secret), occurrences_in(pid, &reversed));
        assert_eq!((a, b), (0, 0), "{when}: the secret is in server memory");
    };
    // It signs (the key is loaded, encrypted in memory), as the specification's example.
    let examples: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../strongroom-chains/tests/data/remote-signing-examples.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let (status, body) = node.eth2(
        "POST",
        &format!("/api/v1/eth2/sign/0x{}", hex::encode(&public)),
        Some(&examples["ATTESTATION"].to_string()),
        true,
    );
    assert_eq!(status, 200, "{body}");
    count("signing, unsealed");
    node.cli(Some(&root), &["--json", "operator", "tamper"])
        .ok();
    count("after tamper");
}
