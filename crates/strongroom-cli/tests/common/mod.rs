//! Test harness: starts real `strongroom serve` processes on ephemeral loopback ports and
//! drives them through the real CLI binary and plain HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use strongroom_crypto::{OtpAlgorithm, TotpSecret};

pub const BIN: &str = env!("CARGO_BIN_EXE_strongroom");
/// Installed by `scripts/test.sh` (Debian `faketime`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A wall clock under the test's control (libfaketime): write an offset such as `+90s` or
/// `-1h` with [`FakeClock::set`]. Only the wall clock moves; timers keep running.
pub struct FakeClock {
    offset: PathBuf,
    offset_str: String,
}

impl FakeClock {
    pub fn new(dir: &Path) -> Self {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "libfaketime is missing: run ./scripts/test.sh"
        );
        let offset = dir.join("clock-offset");
        std::fs::write(&offset, "+0\n").unwrap();
        let offset_str = offset.to_str().unwrap().to_owned();
        Self { offset, offset_str }
    }

    /// The environment that puts a node under this clock.
    pub fn env(&self) -> [(&str, &str); 4] {
        [
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", self.offset_str.as_str()),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]
    }

    pub fn set(&self, offset: &str) {
        std::fs::write(&self.offset, format!("{offset}\n")).unwrap();
    }
}

/// What a confined node under `env` must also reach: libfaketime's offset file (read at
/// every clock read), SoftHSM's configuration (read) and token directory (written).
fn sandbox_extras(env: &[(&str, &str)]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut read, mut write) = (Vec::new(), Vec::new());
    for (k, v) in env {
        match *k {
            "FAKETIME_TIMESTAMP_FILE" => read.push(PathBuf::from(v)),
            "SOFTHSM2_CONF" => {
                read.push(PathBuf::from(v));
                let conf = std::fs::read_to_string(v).unwrap();
                for line in conf.lines() {
                    if let Some(dir) = line.strip_prefix("directories.tokendir = ") {
                        write.push(PathBuf::from(dir.trim()));
                    }
                }
            }
            _ => {}
        }
    }
    (read, write)
}

/// Polls `f` for up to `secs` seconds.
pub fn wait_up_to(secs: u64, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("condition not reached in {secs} s");
}

/// A running node. Stopped with SIGTERM (graceful) on drop unless killed first.
pub struct Node {
    pub child: Option<Child>,
    pub addr: String,
    /// The eth2 remote-signing listener (`http://...`), when started with one.
    pub eth2_addr: Option<String>,
    pub data: PathBuf,
    /// Environment for every CLI call through this node (TLS trust, say).
    pub client_env: Vec<(String, String)>,
}

impl Node {
    fn start(args: &[&str], data: &Path) -> Self {
        Self::start_with_env(args, data, &[])
    }

    fn start_with_env(args: &[&str], data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], args, data, env)
    }

    /// Starts `wrapper... strongroom args...` (the wrapper execs the server, as `setpriv`
    /// does, so the child's pid is the server's).
    fn start_wrapped(wrapper: &[&str], args: &[&str], data: &Path, env: &[(&str, &str)]) -> Self {
        // A dev node is confined too: let it reach the test's faked clock or token.
        let (read, write) = sandbox_extras(env);
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        if args.iter().any(|a| a == "--dev") {
            for p in read {
                args.extend(["--sandbox-read".to_owned(), p.display().to_string()]);
            }
            for p in write {
                args.extend(["--sandbox-write".to_owned(), p.display().to_string()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = args.as_slice();
        let mut command = match wrapper.split_first() {
            None => Command::new(BIN),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
        };
        let mut child = command
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn strongroom serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(a) = line.split("listening on ").nth(1) {
                break a.trim().to_owned();
            }
        };
        let eth2_addr = args.contains(&"--eth2-listen").then(|| {
            loop {
                let line = lines
                    .next()
                    .expect("server exited before the eth2 listener")
                    .unwrap();
                if let Some(a) = line.split("eth2 remote signer listening on ").nth(1) {
                    break format!("http://{}", a.trim());
                }
            }
        });
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node {
            child: Some(child),
            addr,
            eth2_addr,
            data: data.to_owned(),
            client_env: Vec::new(),
        }
    }

    /// `serve --dev --data DIR` on a free port.
    pub fn dev(data: &Path) -> Self {
        Self::start(
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ],
            data,
        )
    }

    /// [`Node::dev`] started through `wrapper` (`setpriv` with fewer capabilities, say).
    pub fn dev_wrapped(data: &Path, wrapper: &[&str]) -> Self {
        Self::start_wrapped(
            wrapper,
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ],
            data,
            &[],
        )
    }

    /// `serve --dev --data DIR --eth2-listen 127.0.0.1:0`: with the remote-signing API.
    pub fn dev_eth2(data: &Path) -> Self {
        Self::start(
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
                "--eth2-listen",
                "127.0.0.1:0",
            ],
            data,
        )
    }

    /// [`Node::dev_eth2`] on a PostgreSQL database; a second node joins the first's vault when
    /// its data directory holds copies of the first one's `dev-unseal-share` and `dev-token`.
    pub fn dev_eth2_postgres(data: &Path, url: &str) -> Self {
        Self::start(
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
                "--postgres",
                url,
                "--eth2-listen",
                "127.0.0.1:0",
            ],
            data,
        )
    }

    /// A request to the eth2 listener (no credential, as consensus clients send none): the
    /// status and the body as text. `json`: send `Accept: application/json`.
    pub fn eth2(&self, method: &str, path: &str, body: Option<&str>, json: bool) -> (u16, String) {
        let url = format!(
            "{}{path}",
            self.eth2_addr.as_ref().expect("no eth2 listener")
        );
        let mut args = vec!["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method];
        if json {
            args.extend(["-H", "accept: application/json"]);
        }
        if body.is_some() {
            args.extend([
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        args.push(&url);
        let mut child = Command::new("curl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(body.unwrap_or_default().as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    }

    /// `serve --dev` with extra environment (a faked clock, say).
    pub fn dev_with_env(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_env(
            &[
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ],
            data,
            env,
        )
    }

    /// `serve --config FILE` (production mode) on a free port.
    pub fn production(data: &Path) -> Self {
        Self::production_with_env(data, &[])
    }

    /// [`Node::production`] with extra environment (a faked clock, say).
    pub fn production_with_env(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::production_with(data, "", env)
    }

    /// [`Node::production`] with extra configuration (TOML appended after `listen` and
    /// `data_dir`) and environment.
    pub fn production_with(data: &Path, extra_config: &str, env: &[(&str, &str)]) -> Self {
        let cfg = data.with_extension("toml");
        let (read, write) = sandbox_extras(env);
        let list = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sandbox = if read.is_empty() && write.is_empty() {
            String::new()
        } else {
            format!(
                "\n[sandbox]\nread = [{}]\nwrite = [{}]\n",
                list(read),
                list(write)
            )
        };
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra_config}{sandbox}",
                data.display()
            ),
        )
        .unwrap();
        Self::start_with_env(&["serve", "--config", cfg.to_str().unwrap()], data, env)
    }

    fn env_refs(&self) -> Vec<(&str, &str)> {
        self.client_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    pub fn dev_token(&self) -> String {
        std::fs::read_to_string(self.data.join("dev-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Graceful stop (SIGTERM), waiting for the audit log to be flushed.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Runs the CLI against this node with `token`.
    pub fn cli(&self, token: Option<&str>, args: &[&str]) -> Run {
        cli_env(&self.addr, token, args, None, &self.env_refs())
    }

    pub fn cli_stdin(&self, token: Option<&str>, args: &[&str], stdin: &str) -> Run {
        cli_env(&self.addr, token, args, Some(stdin), &self.env_refs())
    }

    /// Raw HTTP: (status, JSON body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut args = vec!["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method];
        let auth;
        if let Some(t) = token {
            auth = format!("Authorization: Bearer {t}");
            args.extend(["-H", auth.as_str()]);
        }
        if body.is_some() {
            args.extend([
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        let url = format!("{}{path}", self.addr);
        args.push(&url);
        let mut child = Command::new("curl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(body.unwrap_or_default().as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (
            code.parse().unwrap(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.terminate();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed: {}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub fn cli(addr: &str, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    cli_env(addr, token, args, stdin, &[])
}

/// [`cli`] with extra environment.
pub fn cli_env(
    addr: &str,
    token: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("STRONGROOM_ADDR", addr)
        .env_remove("STRONGROOM_TOKEN")
        .env_remove("STRONGROOM_CACERT")
        .env_remove("STRONGROOM_CLIENT_CERT")
        .env_remove("STRONGROOM_CLIENT_KEY")
        .envs(env.iter().copied());
    if let Some(t) = token {
        cmd.env("STRONGROOM_TOKEN", t);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Offline `audit verify --data DIR --json`.
pub fn audit_verify(data: &Path) -> Run {
    audit_verify_with(data, &[])
}

/// Offline `audit verify --data DIR --json` with extra arguments (e.g. `--audit-key`).
pub fn audit_verify_with(data: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--json",
        "audit",
        "verify",
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cli("http://127.0.0.1:1", None, &args, None)
}

pub fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("vault.db")).unwrap()
}

/// Copies a stopped node's data directory (for independent tamper experiments).
/// The audit events written in the clear (while the vault was sealed), as lossy text.
#[allow(dead_code)]
pub fn clear_audit_events(data: &Path) -> Vec<String> {
    let conn = db(data);
    let mut stmt = conn
        .prepare("SELECT event FROM audit WHERE sealed = 0")
        .unwrap();
    stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap()).into_owned())
        .collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("sha256sum | cut -c1-64")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data).unwrap();
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("condition not reached");
}

pub fn base32(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, vec![]);
    for c in s.trim_end_matches('=').bytes() {
        let v = A.iter().position(|&a| a == c.to_ascii_uppercase()).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// `operator init --shares 1 --threshold 1` on a production node, then unseal with the one
/// share; returns what init printed.
pub fn init_unsealed(node: &Node) -> Value {
    let init = node
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
    let share = init["shares"][0].as_str().unwrap();
    node.cli_stdin(None, &["operator", "unseal"], share).ok();
    init
}

pub struct Enrolled {
    pub password: String,
    pub totp: TotpSecret,
}

pub fn enrol(node: &Node, root: &str, name: &str, roles: &[&str]) -> Enrolled {
    let mut args = vec!["--json", "operator", "add", "--name", name];
    for r in roles {
        args.extend(["--role", r]);
    }
    let e = node.cli(Some(root), &args).ok().json();
    let uri = e["otpauth_uri"].as_str().unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    Enrolled {
        password: e["password"].as_str().unwrap().into(),
        totp: TotpSecret::from_seed(OtpAlgorithm::Sha1, &base32(secret), 6).unwrap(),
    }
}

pub fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

pub fn login(
    node: &Node,
    dir: &Path,
    name: &str,
    password: &str,
    code: &str,
    new: Option<&str>,
) -> Run {
    let pw = dir.join(format!("{name}.pw"));
    std::fs::write(&pw, password).unwrap();
    let mut args = vec![
        "--json",
        "login",
        "--name",
        name,
        "--password-file",
        pw.to_str().unwrap(),
        "--totp",
        code,
    ];
    let new_path = dir.join(format!("{name}.new"));
    if let Some(n) = new {
        std::fs::write(&new_path, n).unwrap();
        args.extend(["--new-password-file", new_path.to_str().unwrap()]);
    }
    node.cli(None, &args)
}

/// The one-time code of `e` for `step`.
pub fn code(e: &Enrolled, step: u64) -> String {
    e.totp.code_at(step * 30).as_str().to_owned()
}

pub struct Person {
    pub token: String,
    pub key: PathBuf,
}

/// Two vault-wide security officers, alice and bob (logged in, with approval keys).
pub fn security_officers(node: &Node, dir: &Path, boot: &str) -> (Person, Person) {
    let a = enrol(node, boot, "alice", &["security-officer"]);
    let b = enrol(node, boot, "bob", &["security-officer"]);
    (
        person_from(node, dir, "alice", &a),
        person_from(node, dir, "bob", &b),
    )
}

/// Logs in (first login) and registers an approval key.
/// Logs in (first login, new password) without registering an approval key.
pub fn login_person(node: &Node, dir: &Path, name: &str, e: &Enrolled) -> String {
    let new = format!("{name} long new password");
    login(
        node,
        dir,
        name,
        &e.password,
        &code(e, now_step()),
        Some(&new),
    )
    .ok()
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `config sign` by `p` of the configuration file [`Node::production_with`] wrote for `data`:
/// a security officer's consent to a changed configuration (needed once officers exist).
pub fn sign_config(node: &Node, data: &Path, p: &Person) {
    sign_config_file(node, &data.with_extension("toml"), &p.key, &[]);
}

/// `config sign --config CFG --key-file KEY` with `extra` arguments.
pub fn sign_config_file(node: &Node, cfg: &Path, key: &Path, extra: &[&str]) {
    let mut args = vec![
        "--json",
        "config",
        "sign",
        "--config",
        cfg.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend(extra);
    node.cli(None, &args).ok();
}

pub fn person_from(node: &Node, dir: &Path, name: &str, e: &Enrolled) -> Person {
    let new = format!("{name} long new password");
    let token = login(
        node,
        dir,
        name,
        &e.password,
        &code(e, now_step()),
        Some(&new),
    )
    .ok()
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = dir.join(format!("{name}.key"));
    node.cli(
        None,
        &["approval-key", "generate", "--out", key.to_str().unwrap()],
    )
    .ok();
    let pubfile = format!("{}.pub", key.display());
    node.cli(
        Some(&token),
        &[
            "--json",
            "operator",
            "register-key",
            "--public-key",
            &pubfile,
        ],
    )
    .ok();
    Person { token, key }
}

pub fn pending(r: &Run) -> String {
    assert_eq!(
        r.code, 3,
        "expected pending (exit 3): {}\n{}",
        r.stdout, r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "pending");
    v["request_id"].as_str().unwrap().to_owned()
}

pub fn approve(node: &Node, p: &Person, id: &str) -> Run {
    node.cli(
        Some(&p.token),
        &[
            "--json",
            "request",
            "approve",
            id,
            "--key-file",
            p.key.to_str().unwrap(),
        ],
    )
}

/// The audit log as its events read, for assertions: the tests' own reader of the stored
/// format (`docs/formats.md`), independent of the server. The root key is recombined from
/// unseal shares, the storage key derived from it, and each sealed event opened (bound to
/// `audit.event || 0x00 || seq`). `rows` are `(seq, time, sealed, event)` as stored. The
/// result is an in-memory table `audit (seq, time, actor, source, operation, domain, key,
/// outcome, code, count)` that tests query with SQL.
pub fn audit_events_from(
    rows: Vec<(i64, i64, i64, Vec<u8>)>,
    shares: &[&str],
) -> rusqlite::Connection {
    let decoded: Vec<_> = shares
        .iter()
        .map(|s| strongroom_crypto::Share::decode(s).unwrap())
        .collect();
    let threshold = decoded[0].0.threshold;
    let parts: Vec<_> = decoded.into_iter().map(|(_, s)| s).collect();
    let keys = strongroom_crypto::combine(threshold, &parts)
        .unwrap()
        .storage_keys();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER, actor TEXT, source TEXT,
         operation TEXT, domain TEXT, key TEXT, outcome INTEGER, code TEXT, count INTEGER,
         detail TEXT)",
    )
    .unwrap();
    for (seq, time, sealed, event) in rows {
        let plain = if sealed == 1 {
            let mut aad = b"audit.event\0".to_vec();
            aad.extend_from_slice(&u64::try_from(seq).unwrap().to_be_bytes());
            keys.open(&aad, &event).unwrap()
        } else {
            event
        };
        let e = strongroom_audit::decode_event(
            strongroom_core::UnixMillis(u64::try_from(time).unwrap()),
            &plain,
        )
        .unwrap();
        conn.execute(
            "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params![
                seq,
                time,
                e.actor,
                e.source,
                e.operation,
                e.domain,
                e.key,
                e.outcome.code(),
                e.code,
                e.count,
                e.detail
            ],
        )
        .unwrap();
    }
    conn
}

/// [`audit_events_from`] over a SQLite data directory.
/// The details of the granted `operation` records in `events` ([`audit_events`]), oldest
/// first.
pub fn granted_details(events: &rusqlite::Connection, operation: &str) -> Vec<String> {
    let mut s = events
        .prepare(
            "SELECT coalesce(detail, '') FROM audit WHERE operation = ?1 AND outcome = 1
             ORDER BY seq",
        )
        .unwrap();
    s.query_map([operation], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn audit_events(data: &Path, shares: &[&str]) -> rusqlite::Connection {
    let rows = db(data)
        .prepare("SELECT seq, time, sealed, event FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    audit_events_from(rows, shares)
}

/// [`audit_events`] for a dev vault, whose single share lives in its data directory.
pub fn dev_audit_events(data: &Path) -> rusqlite::Connection {
    let share = std::fs::read_to_string(data.join("dev-unseal-share")).unwrap();
    audit_events(data, &[share.trim()])
}

/// The shares `operator init --json` printed.
pub fn shares_of(init: &Value) -> Vec<&str> {
    init["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// `policy set --wallet W --file F` with `policy` written to a file in `dir` (dev mode runs
/// it at once).
pub fn set_policy(
    node: &Node,
    token: Option<&str>,
    dir: &Path,
    wallet: &str,
    policy: &Value,
) -> Run {
    let path = dir.join(format!("policy-{wallet}.json"));
    std::fs::write(&path, policy.to_string()).unwrap();
    node.cli(
        token,
        &[
            "--json",
            "policy",
            "set",
            "--wallet",
            wallet,
            "--file",
            path.to_str().unwrap(),
        ],
    )
}

/// The mnemonic of the BIP-84/BIP-86 published vectors.
pub const ABANDON: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// Runs an independent oracle, `tests/oracle/<script>`, in the Python environment
/// `scripts/test.sh` makes (eth-account, embit): one JSON request in, one JSON answer out.
pub fn oracle(script: &str, request: &Value) -> Value {
    let python = std::env::var("STRONGROOM_ORACLE_PYTHON")
        .expect("STRONGROOM_ORACLE_PYTHON is unset: run the tests with ./scripts/test.sh");
    let path = format!("{}/tests/oracle/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "oracle {script} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A wallet made from `mnemonic` with `wallet create` and the extra `args`: its id.
pub fn wallet_from(
    node: &Node,
    token: Option<&str>,
    dir: &Path,
    mnemonic: &str,
    args: &[&str],
) -> String {
    let words = dir.join(format!("words-{}", sha256_hex(mnemonic.as_bytes())));
    std::fs::write(&words, mnemonic).unwrap();
    let mut full = vec![
        "--json",
        "wallet",
        "create",
        "--mnemonic-file",
        words.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    node.cli(token, &full).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// eosio.token::transfer alice -> bob, 1.0000 EOS, memo "rent" (packed; encoded by Python
/// from the Antelope serialisation rules). It expired in 2023: see [`eos_fresh`].
pub const EOS_TO_BOB: &str = "00f15365d204efbeadde000000000100a6823403ea3055000000572d3ccdcd010000000000855c3400000000a8ed3232250000000000855c340000000000000e3d102700000000000004454f53000000000472656e7400";

/// The EOS mainnet chain id.
pub const EOS_MAINNET: &str = "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906";

/// A packed EOS transaction with its expiration (the first 4 bytes, little-endian) set to ten
/// minutes from now.
pub fn eos_fresh(packed: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiration = u32::try_from(now + 600).unwrap();
    format!("{}{}", hex::encode(expiration.to_le_bytes()), &packed[8..])
}

/// `age-keygen -o DIR/NAME.agekey`: a custodian's identity file and public recipient.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.agekey"));
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "age-keygen failed");
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    assert!(public.status.success());
    (
        key,
        String::from_utf8(public.stdout).unwrap().trim().to_owned(),
    )
}

/// `age -d -i KEY FILE`: the custodian's own decryption, by the reference implementation.
pub fn age_decrypt(key: &Path, file: &Path) -> Option<String> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(file)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// An application token for `domain`, issued with `token` (an officer's session, say).
pub fn app_token(node: &Node, token: Option<&str>, domain: &str) -> String {
    node.cli(token, &["--json", "token", "create", "--domain", domain])
        .ok()
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}
