//! Least privilege: which paths a node's configuration names, and the confinement
//! (`strongroom-sandbox`) applied before the async runtime starts.
//!
//! A node may read its configuration's directory (the signatures file is read again at
//! unseal), the TLS files, the PKCS#11 module and PIN file, the NTP key files, its own binary
//! (measured at start) and the system's libraries; it may write only beneath its data
//! directory and `[sandbox] write` (a PKCS#11 token's directory). Its system calls are
//! limited to an allowlist, and the calls only an exploit makes kill it.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Serialize;
use strongroom_sandbox::{Enforcement, Paths};

use crate::ServeError;
use crate::serve::ServeOptions;

/// What confinement achieved, once per process.
static CONFINED: OnceLock<Confinement> = OnceLock::new();

/// The confinement of this process, as status and the `node.start` record show it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Confinement {
    /// Landlock: `enforced`, `partial` (an older kernel ABI), `unsupported` or `off`.
    pub(crate) files: &'static str,
    /// The Landlock ABI the kernel enforces (what `partial` lacks: below 6 the signal and
    /// abstract-socket scopes, below 9 UNIX-socket paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) landlock_abi: Option<u8>,
    /// seccomp: `enforced`, `unsupported` or `off`.
    pub(crate) syscalls: &'static str,
    /// Configured paths that did not exist at start (not reachable afterwards): audited,
    /// never shown by the unauthenticated status.
    #[serde(skip)]
    pub(crate) missing: Vec<PathBuf>,
}

/// This process's confinement; `off` when [`ServeOptions::confine`] was not called (a node
/// embedded in a test harness).
pub(crate) fn current() -> Confinement {
    CONFINED.get().cloned().unwrap_or(Confinement {
        files: "off",
        landlock_abi: None,
        syscalls: "off",
        missing: Vec::new(),
    })
}

impl ServeOptions {
    /// Creates the data directory (dev mode without one: a fresh temporary directory) and
    /// confines this process to what these options name.
    ///
    /// Call it once, before the async runtime or any other thread exists: Landlock binds
    /// the calling thread and the threads it starts afterwards, never those already running.
    ///
    /// # Errors
    /// The data directory cannot be created, or the kernel refused a confinement it claims
    /// to support.
    pub fn confine(&mut self) -> Result<(), ServeError> {
        let data_dir = self.data_dir_or_temp()?;
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&data_dir)
            .map_err(|e| ServeError::Io(format!("create data directory: {e}")))?;
        self.data_dir = Some(data_dir.clone());
        // Not dumpable before the filter forbids ever becoming dumpable again.
        let _ = strongroom_memguard::harden_process();
        if !self.sandbox.enabled {
            tracing::warn!("[sandbox] enabled = false: this node is not confined");
            let _ = CONFINED.set(current());
            return Ok(());
        }
        // Landlock binds only the calling thread and its later children: a thread already
        // running would stay unconfined.
        if threads() != Some(1) {
            return Err(ServeError::Io(
                "confine: other threads already run; confine before starting any".into(),
            ));
        }
        let paths = self.paths(data_dir);
        let sandbox = |e: strongroom_sandbox::SandboxError| ServeError::Io(e.to_string());
        let report = strongroom_sandbox::confine_files(&paths).map_err(sandbox)?;
        let (files, missing) = (report.enforcement, report.missing);
        let syscalls = strongroom_sandbox::confine_syscalls().map_err(sandbox)?;
        // Fail closed where the operator asked for it: the process exits before serving.
        if self.sandbox.require
            && (files == Enforcement::Unsupported || syscalls == Enforcement::Unsupported)
        {
            return Err(ServeError::Config(format!(
                "[sandbox] require: the kernel does not enforce it (files {}, system calls {})",
                files.as_str(),
                syscalls.as_str()
            )));
        }
        if let Some(min) = self.sandbox.min_landlock_abi
            && report.abi.unwrap_or(0) < min
        {
            return Err(ServeError::Config(format!(
                "[sandbox] min_landlock_abi = {min}: this kernel enforces Landlock ABI {}",
                report.abi.unwrap_or(0)
            )));
        }
        if files == Enforcement::Unsupported || syscalls == Enforcement::Unsupported {
            tracing::warn!(
                files = files.as_str(),
                syscalls = syscalls.as_str(),
                "the kernel cannot confine this node fully"
            );
        }
        // System directories absent on this distribution are expected; configured ones not.
        let system = Paths::system().read;
        let missing: Vec<PathBuf> = missing
            .into_iter()
            .filter(|p| !system.contains(p))
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                ?missing,
                "configured paths that do not exist stay unreachable"
            );
        }
        let _ = CONFINED.set(Confinement {
            files: files.as_str(),
            landlock_abi: report.abi,
            syscalls: syscalls.as_str(),
            missing,
        });
        Ok(())
    }

    fn paths(&self, data_dir: PathBuf) -> Paths {
        let mut p = Paths::system();
        // Measured at start through /proc/self/exe, which Landlock resolves to the file.
        if let Ok(exe) = std::env::current_exe() {
            p.read.push(exe);
        }
        if let Some(c) = &self.config_file
            && let Ok(file) = std::fs::canonicalize(&c.path)
            && let Some(dir) = file.parent()
        {
            // The configuration's signatures (`FILE.sig`, perhaps written after start) are
            // read at every unseal: its directory, which should hold nothing else secret.
            p.read.push(dir.to_owned());
        }
        if let Some(t) = &self.tls {
            p.read.push(t.cert.clone());
            p.read.push(t.key.clone());
            p.read.extend(t.client_ca.iter().cloned());
            p.read.extend(t.eth2_client_ca.iter().cloned());
        }
        p.read.extend(self.seal.module.iter().cloned());
        p.read.extend(self.seal.pin_file.iter().cloned());
        if let Some(t) = &self.time {
            p.read.extend(t.ntp.iter().map(|s| s.key_file.clone()));
        }
        p.read.extend(self.sandbox.read.iter().cloned());
        p.write.push(data_dir);
        p.write.extend(self.sandbox.write.iter().cloned());
        if let Some(url) = &self.storage.postgres {
            p.sockets = strongroom_storage::PgStore::socket_dirs(url);
        }
        p
    }
}

/// This process's thread count, from `/proc/self/status`.
fn threads() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}
