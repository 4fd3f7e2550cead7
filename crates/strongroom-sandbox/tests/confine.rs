//! Both confinements applied to a child copy of this test binary (they cannot be undone, so
//! never to the test runner itself): the child probes what it can still do and prints one
//! line per probe; the parent checks every line, then that `execve` killed the child.
#![allow(clippy::unwrap_used)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Command;

use strongroom_sandbox::{Enforcement, Paths, confine_files, confine_syscalls};

const CHILD: &str = "STRONGROOM_SANDBOX_CHILD";

#[test]
fn a_confined_node_reaches_only_its_paths_and_cannot_exec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("config.toml"), "listen = 1").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "someone else's").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "confined_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints "test confined_child ... " without a newline before the first probe.
    let probes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("probe ").map(|i| &l[i..]))
        .collect();
    // "partial": a kernel with an older Landlock ABI than the newest the crate knows (this
    // machine's 6.18 has ABI 7) enforces everything probed here; it lacks UNIX-socket path
    // rights.
    let files = probes.first().copied().unwrap_or_default();
    assert!(
        files == "probe files=enforced syscalls=enforced"
            || files == "probe files=partial syscalls=enforced",
        "{files}"
    );
    assert_eq!(
        probes[1..],
        [
            "probe read config=ok",
            "probe read outside=denied",
            "probe list root=denied",
            "probe read /etc/passwd=denied",
            "probe read urandom=ok",
            "probe write data=ok",
            "probe rename data=ok",
            "probe remove data=ok",
            "probe write outside=denied",
            "probe thread=ok",
            "probe tcp=ok",
            "probe spawn=denied",
            "probe exec",
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // execve is fatal: the process died of SIGSYS instead of running the shell.
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
    assert!(!dir.path().join("data/exec-ran").exists());
    assert!(!dir.path().join("data/spawn-ran").exists());
}

/// The child half: run only by the test above, with the directory in `CHILD`. (libtest runs
/// it on a worker thread, so Landlock binds that thread, where every probe runs; seccomp binds
/// the whole process.)
#[test]
#[ignore = "run by a_confined_node_reaches_only_its_paths_and_cannot_exec in a child process"]
fn confined_child() {
    let dir = std::path::PathBuf::from(std::env::var_os(CHILD).unwrap());
    let data = dir.join("data");
    let config = dir.join("config.toml");
    let mut paths = Paths::system();
    paths.read.push(config.clone());
    paths.write.push(data.clone());
    let report = confine_files(&paths).unwrap();
    assert!(report.missing.iter().all(|p| !p.starts_with(&dir)));
    let files = report.enforcement;
    let syscalls = confine_syscalls().unwrap();
    let name = |e: Enforcement| e.as_str();
    println!("probe files={} syscalls={}", name(files), name(syscalls));
    let verdict = |ok: bool| if ok { "ok" } else { "denied" };
    println!(
        "probe read config={}",
        verdict(std::fs::read(&config).is_ok())
    );
    println!(
        "probe read outside={}",
        verdict(std::fs::read(dir.join("outside.txt")).is_ok())
    );
    println!(
        "probe list root={}",
        verdict(std::fs::read_dir("/").is_ok())
    );
    println!(
        "probe read /etc/passwd={}",
        verdict(std::fs::read("/etc/passwd").is_ok())
    );
    let mut b = [0u8; 8];
    println!(
        "probe read urandom={}",
        verdict(
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
                .is_ok()
        )
    );
    let f = data.join("f");
    println!(
        "probe write data={}",
        verdict(std::fs::write(&f, "x").is_ok())
    );
    println!(
        "probe rename data={}",
        verdict(std::fs::rename(&f, data.join("g")).is_ok())
    );
    println!(
        "probe remove data={}",
        verdict(std::fs::remove_file(data.join("g")).is_ok())
    );
    println!(
        "probe write outside={}",
        verdict(std::fs::write(dir.join("new.txt"), "x").is_ok())
    );
    println!(
        "probe thread={}",
        verdict(std::thread::spawn(|| 7).join().is_ok_and(|v| v == 7))
    );
    println!("probe tcp={}", verdict(tcp_round_trip()));
    println!(
        "probe spawn={}",
        verdict(
            Command::new("/bin/sh")
                .args(["-c", &format!("touch {}/spawn-ran", data.display())])
                .status()
                .is_ok()
        )
    );
    println!("probe exec");
    let e = std::os::unix::process::CommandExt::exec(
        Command::new("/bin/sh").args(["-c", &format!("touch {}", marker(&data))]),
    );
    println!("probe exec returned {e}");
}

fn marker(data: &Path) -> String {
    data.join("exec-ran").display().to_string()
}

fn tcp_round_trip() -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return false;
    };
    let Ok(addr) = l.local_addr() else {
        return false;
    };
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().ok()?;
        let mut b = [0u8; 2];
        s.read_exact(&mut b).ok()?;
        Some(b)
    });
    let sent = std::net::TcpStream::connect(addr).and_then(|mut s| s.write_all(b"hi"));
    sent.is_ok() && t.join().ok().flatten() == Some(*b"hi")
}
