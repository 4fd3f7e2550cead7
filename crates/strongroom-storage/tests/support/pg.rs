//! A throwaway PostgreSQL server for tests, started by `scripts/pg.sh` in a temporary
//! directory on a free loopback port and stopped when dropped. Shared by the storage and CLI
//! test suites (`#[path]`-included).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

pub struct PgServer {
    dir: tempfile::TempDir,
    pub url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh")
}

impl PgServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A free port: bind, read it, release (the race with other processes is harmless
        // here; pg_ctl fails loudly if it lost).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path().join("pg"))
            .arg(port.to_string())
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "scripts/pg.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Self { dir, url }
    }

    /// A second, empty database on the same server.
    pub fn another_database(&self, name: &str) -> String {
        let out = Command::new("psql")
            .args([&self.url, "-c", &format!("CREATE DATABASE {name}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = self.url.rsplit_once('/').unwrap().0;
        format!("{base}/{name}")
    }

    /// Everything a database holds, as its administrator would see it (`pg_dump`).
    pub fn dump(&self, url: &str) -> String {
        let out = Command::new("pg_dump")
            .args(["--data-only", url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs SQL with psql (for tests that tamper with the database).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([url, "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}
