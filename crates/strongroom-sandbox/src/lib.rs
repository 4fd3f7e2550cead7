//! Least privilege for a running node, applied once at start before any key exists:
//!
//! - [`confine_files`]: Landlock. The process may read only the paths it is given (the
//!   configuration's files, the system's libraries and `/proc`) and write only beneath the
//!   paths it is given (the data directory, a PKCS#11 token's directory). Everything else on
//!   the host — other users' files, `/tmp`, `/var` — is out of reach even for a compromised
//!   node. It restricts the calling thread and the threads it starts afterwards, so it must
//!   be called before any other thread exists (before the async runtime starts).
//! - [`confine_syscalls`]: seccomp, on every thread. An allowlist of what a network server
//!   with a database and a PKCS#11 module calls (`prctl`, `ioctl`, `clone` and `socket` only
//!   with the arguments it uses); anything else fails with `EPERM`, so a fork or a new
//!   namespace fails. System calls that only an exploit makes (`execve`, `ptrace`,
//!   `process_vm_readv`, module loading, `bpf`, `setns`/`unshare`) kill the whole process
//!   at once, taking its keys with it.
//!
//! Not confined: TCP and UDP (Landlock's network rights are not used, because the node's own
//! peers — PostgreSQL, NTP sources — are named by address, not known in advance on every
//! port), and, below Landlock ABI 9, connecting to UNIX sockets by path.
//!
//! Where the kernel lacks Landlock or seccomp, the [`Report`] says so rather than failing: the
//! node then runs with its other defences, and `status` shows what is missing.
//!
//! It must not decide which paths a node needs (the server does, from its configuration), and
//! nothing here can be undone once applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Why a confinement could not be applied. A kernel without the feature is not an error
/// (see [`Enforcement::Unsupported`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The Landlock ruleset was refused (an unusable path, say).
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
    /// The seccomp filter could not be compiled for this architecture.
    #[error("seccomp filter: {0}")]
    SeccompFilter(#[from] seccompiler::BackendError),
}

/// How far a confinement took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enforcement {
    /// Everything asked for is enforced.
    Enforced,
    /// The kernel enforces an older subset (an older Landlock ABI).
    Partial,
    /// The kernel (or architecture) does not support it: not enforced.
    Unsupported,
}

impl Enforcement {
    /// Stable name for status and audit records.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforced => "enforced",
            Self::Partial => "partial",
            Self::Unsupported => "unsupported",
        }
    }
}

/// What the file-system confinement allows.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    /// Read (files and directory listings) beneath each of these.
    pub read: Vec<PathBuf>,
    /// Read, create, write, rename and remove beneath each of these.
    pub write: Vec<PathBuf>,
    /// Directories holding UNIX sockets the node connects to (a PostgreSQL socket directory).
    pub sockets: Vec<PathBuf>,
}

impl Paths {
    /// What every node reads besides its configuration: shared libraries (and the PKCS#11
    /// module's dependencies); from `/etc` only the dynamic loader's files, name resolution,
    /// the time zone, OpenSSL's and SoftHSM2's configuration; its own `/proc/PID` (the tracer
    /// check, its memory map, cgroup limits); the CPU and cgroup files of `/sys`; and the
    /// random and null devices. Not `/etc/shadow`, other processes, or block devices.
    #[must_use]
    pub fn system() -> Self {
        let mut read: Vec<PathBuf> = [
            "/usr",
            "/lib",
            "/lib32",
            "/lib64",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/nsswitch.conf",
            "/etc/gai.conf",
            "/etc/host.conf",
            "/etc/localtime",
            "/etc/ssl",
            "/etc/pki",
            "/etc/crypto-policies",
            "/etc/softhsm",
            "/etc/softhsm2.conf",
            "/sys/devices/system/cpu",
            "/sys/fs/cgroup",
            "/dev/null",
            "/dev/urandom",
            "/dev/random",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        // `/proc/self` is a link: the rule must name the directory it resolves to now.
        if let Ok(me) = std::fs::canonicalize("/proc/self") {
            read.push(me);
        }
        // systemd-resolved replaces its file by rename: allow the directory it lives in.
        if let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf")
            && let Some(dir) = resolv.parent()
            && dir != Path::new("/etc")
        {
            read.push(dir.to_owned());
        }
        // SoftHSM2's configuration where the environment points to it.
        if let Some(conf) = std::env::var_os("SOFTHSM2_CONF") {
            read.push(PathBuf::from(conf));
        }
        Self {
            read,
            write: Vec::new(),
            sockets: Vec::new(),
        }
    }
}

/// Confines the calling thread, and every thread it starts afterwards, to `paths`. Paths
/// that do not exist are skipped and returned (they cannot be created later either: only
/// beneath a writable path).
///
/// # Errors
/// The kernel refused a ruleset it claims to support.
pub fn confine_files(paths: &Paths) -> Result<FilesReport, SandboxError> {
    // Newest ABI this crate knows; best effort drops what the running kernel lacks.
    let abi = ABI::V10;
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let write: BitFlags<AccessFs> = read
        | AccessFs::WriteFile
        | AccessFs::Truncate
        | AccessFs::MakeReg
        | AccessFs::MakeDir
        | AccessFs::RemoveFile
        | AccessFs::RemoveDir
        | AccessFs::Refer;
    let socket: BitFlags<AccessFs> = read | AccessFs::ResolveUnix;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        // No signals to, and no abstract sockets of, processes outside the sandbox.
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?;
    let mut missing = Vec::new();
    let lists = [
        (&paths.read, read),
        (&paths.write, write),
        (&paths.sockets, socket),
    ];
    for (list, access) in lists {
        for p in list {
            match PathFd::new(p) {
                Ok(fd) => {
                    // A file takes only file rights; directory rights on it are refused.
                    let access = if is_dir(p) {
                        access
                    } else {
                        access & AccessFs::from_file(abi)
                    };
                    ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
                }
                Err(_) => missing.push(p.clone()),
            }
        }
    }
    let status = ruleset.restrict_self()?;
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Enforced,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        _ => Enforcement::Unsupported,
    };
    let abi = match status.landlock {
        landlock::LandlockStatus::Available { effective_abi, .. } => {
            u8::try_from(effective_abi as i32).ok()
        }
        _ => None,
    };
    Ok(FilesReport {
        enforcement,
        abi,
        missing,
    })
}

/// What [`confine_files`] achieved.
#[derive(Clone, Debug)]
pub struct FilesReport {
    /// How far the rules are enforced.
    pub enforcement: Enforcement,
    /// The Landlock ABI the kernel enforced (7 on Linux 6.12-6.18): below 6 there are no
    /// signal and abstract-socket scopes, below 9 no UNIX-socket path rights.
    pub abi: Option<u8>,
    /// Paths that did not exist (and so stay unreachable).
    pub missing: Vec<PathBuf>,
}

fn is_dir(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

/// Installs the system-call filters on every thread of the process (TSYNC).
///
/// # Errors
/// The kernel refused the filter.
pub fn confine_syscalls() -> Result<Enforcement, SandboxError> {
    let Some(arch) = target_arch() else {
        return Ok(Enforcement::Unsupported);
    };
    // Order matters: of two filters returning the same action, the later installed one's
    // data wins, so the `ENOSYS` for clone3 goes last.
    let filters = [
        SeccompFilter::new(
            allowed()?,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
            arch,
        )?,
        SeccompFilter::new(
            fatal(),
            SeccompAction::Allow,
            SeccompAction::KillProcess,
            arch,
        )?,
        // glibc starts threads with clone3 and falls back to clone on ENOSYS; clone3 passes
        // its flags in memory, where a filter cannot check them, so only clone is allowed.
        SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?,
    ];
    for (i, f) in filters.into_iter().enumerate() {
        let program: BpfProgram = f.try_into()?;
        match seccompiler::apply_filter_all_threads(&program) {
            Ok(()) => {}
            // EINVAL on the first filter: no seccomp filters in this kernel. Any later
            // failure leaves a filter in force, so it is an error, never "unsupported".
            Err(seccompiler::Error::Seccomp(e))
                if i == 0 && e.raw_os_error() == Some(libc::EINVAL) =>
            {
                return Ok(Enforcement::Unsupported);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Enforcement::Enforced)
}

fn target_arch() -> Option<seccompiler::TargetArch> {
    if cfg!(target_arch = "x86_64") {
        Some(seccompiler::TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(seccompiler::TargetArch::aarch64)
    } else {
        None
    }
}

/// System calls that only an attacker makes in this process: the process dies at once.
fn fatal() -> BTreeMap<i64, Vec<SeccompRule>> {
    [
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
    ]
    .into_iter()
    .chain(legacy_fatal())
    .map(|n| (n, Vec::new()))
    .collect()
}

#[cfg(target_arch = "x86_64")]
fn legacy_fatal() -> impl Iterator<Item = i64> {
    // fork and vfork are merely refused (EPERM): a vendor module may try one.
    [libc::SYS_iopl, libc::SYS_ioperm].into_iter()
}

#[cfg(not(target_arch = "x86_64"))]
fn legacy_fatal() -> impl Iterator<Item = i64> {
    std::iter::empty()
}

/// What a node calls. `clone` only for threads; `socket` only for UNIX, IPv4 and IPv6,
/// `socketpair` only for UNIX.
fn allowed() -> Result<BTreeMap<i64, Vec<SeccompRule>>, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = [
        // Files.
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_preadv,
        libc::SYS_pwritev,
        libc::SYS_preadv2,
        libc::SYS_pwritev2,
        libc::SYS_openat,
        libc::SYS_close,
        libc::SYS_close_range,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_statfs,
        libc::SYS_fstatfs,
        libc::SYS_lseek,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_unlinkat,
        libc::SYS_mkdirat,
        libc::SYS_getdents64,
        libc::SYS_fcntl,
        libc::SYS_flock,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_pipe2,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_getcwd,
        libc::SYS_fchmod,
        libc::SYS_fchown,
        libc::SYS_umask,
        // Memory, including the key slabs (mlock, memfd_secret).
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_mlock,
        libc::SYS_mlock2,
        libc::SYS_munlock,
        libc::SYS_msync,
        libc::SYS_memfd_secret,
        libc::SYS_membarrier,
        // Threads, locks and scheduling.
        libc::SYS_futex,
        libc::SYS_set_robust_list,
        libc::SYS_get_robust_list,
        libc::SYS_rseq,
        libc::SYS_set_tid_address,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_tgkill,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
        // Time.
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        // Signals.
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        // Readiness.
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_ppoll,
        libc::SYS_pselect6,
        libc::SYS_eventfd2,
        // Network (the socket's family is checked below).
        libc::SYS_connect,
        libc::SYS_accept4,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        libc::SYS_setsockopt,
        libc::SYS_getsockopt,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendmmsg,
        libc::SYS_recvmmsg,
        libc::SYS_shutdown,
        // Identity and limits.
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getresuid,
        libc::SYS_getresgid,
        libc::SYS_getgroups,
        libc::SYS_uname,
        libc::SYS_sysinfo,
        libc::SYS_getrlimit,
        libc::SYS_setrlimit,
        libc::SYS_getrusage,
        libc::SYS_getrandom,
        libc::SYS_restart_syscall,
        // Installing the later filters; a filter can only take rights away.
        libc::SYS_seccomp,
    ]
    .into_iter()
    .chain(legacy_allowed())
    .map(|n| (n, Vec::new()))
    .collect();
    // A thread shares memory and signal handlers and makes no namespace; anything else
    // (a fork, a container) is refused.
    let thread = (libc::CLONE_THREAD | libc::CLONE_VM | libc::CLONE_SIGHAND) as u64;
    let namespaces = (libc::CLONE_NEWNS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET) as u64;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(thread | namespaces),
            thread,
        )?])?],
    );
    let arg_is = |arg: u8, values: &[u64]| -> Result<Vec<SeccompRule>, SandboxError> {
        values
            .iter()
            .map(|v| {
                Ok(SeccompRule::new(vec![SeccompCondition::new(
                    arg,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    *v,
                )?])?)
            })
            .collect()
    };
    let family = |f: libc::c_int| -> Result<SeccompRule, SandboxError> {
        Ok(SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            f as u64,
        )?])?)
    };
    // prctl: thread names, reading flags, no_new_privs, naming anonymous memory, and making
    // the process non-dumpable — never dumpable again, nor a ptracer exception.
    let mut prctl = arg_is(
        0,
        &[
            libc::PR_SET_NAME as u64,
            libc::PR_GET_NAME as u64,
            libc::PR_GET_DUMPABLE as u64,
            libc::PR_SET_NO_NEW_PRIVS as u64,
            libc::PR_GET_NO_NEW_PRIVS as u64,
            libc::PR_SET_VMA as u64,
            libc::PR_CAPBSET_READ as u64,
        ],
    )?;
    prctl.push(SeccompRule::new(vec![
        SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::PR_SET_DUMPABLE as u64,
        )?,
        SeccompCondition::new(1, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)?,
    ])?);
    rules.insert(libc::SYS_prctl, prctl);
    // ioctl: non-blocking and close-on-exec flags, bytes readable, terminal queries (no
    // TIOCSTI into an inherited terminal).
    rules.insert(
        libc::SYS_ioctl,
        arg_is(
            1,
            &[
                libc::FIONBIO,
                libc::FIOCLEX,
                libc::FIONCLEX,
                libc::FIONREAD,
                libc::TCGETS,
                libc::TIOCGWINSZ,
            ]
            // `Ioctl` is u64 on glibc, i32 on musl.
            .map(|c| {
                #[allow(clippy::unnecessary_cast)]
                let c = c as u64;
                c
            }),
        )?,
    );
    // Limits of this process only (pid 0).
    rules.insert(libc::SYS_prlimit64, arg_is(0, &[0])?);
    rules.insert(
        libc::SYS_socket,
        vec![
            family(libc::AF_UNIX)?,
            family(libc::AF_INET)?,
            family(libc::AF_INET6)?,
        ],
    );
    // The runtime's signal delivery.
    rules.insert(libc::SYS_socketpair, vec![family(libc::AF_UNIX)?]);
    Ok(rules)
}

/// Old x86-64 entry points glibc and C++ libraries still use.
#[cfg(target_arch = "x86_64")]
fn legacy_allowed() -> impl Iterator<Item = i64> {
    [
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_rename,
        libc::SYS_unlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_dup2,
        libc::SYS_pipe,
        libc::SYS_poll,
        libc::SYS_select,
        libc::SYS_epoll_wait,
        libc::SYS_arch_prctl,
        libc::SYS_time,
        libc::SYS_accept,
    ]
    .into_iter()
}

#[cfg(not(target_arch = "x86_64"))]
fn legacy_allowed() -> impl Iterator<Item = i64> {
    std::iter::empty()
}
