//! A throwaway SoftHSM2 token store for tests: its own configuration and token directory in
//! a temporary directory, tokens made with `softhsm2-util`, inspected with `pkcs11-tool`
//! (OpenSC) as an independent reader. Shared by the CLI's tests through `#[path]`.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of tokens made here.
pub const PIN: &str = "4711-user";
const SO_PIN: &str = "4711-so";

pub struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    pub fn new() -> Self {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} is missing: scripts/test.sh installs Debian's softhsm2"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        Self { dir }
    }

    /// The value for `SOFTHSM2_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// Creates a token with the user PIN [`PIN`].
    pub fn init_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// Writes a PIN file (owner-only) and returns its path.
    pub fn pin_file(&self, name: &str, pin: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{pin}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Runs `pkcs11-tool` on a token, logged in, and returns what it printed.
    pub fn tool(&self, token: &str, args: &[&str]) -> String {
        let out = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", self.conf())
            .args([
                "--module",
                MODULE,
                "--token-label",
                token,
                "--login",
                "--pin",
                PIN,
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// What `pkcs11-tool --list-objects` says about the secret key labelled `label`.
    pub fn describe_key(&self, token: &str, label: &str) -> Option<String> {
        let listing = self.tool(token, &["--list-objects", "--type", "secrkey"]);
        listing
            .split("Secret Key Object")
            .find(|o| {
                o.lines()
                    .any(|l| l.trim() == format!("label:      {label}"))
            })
            .map(str::to_owned)
    }
}
