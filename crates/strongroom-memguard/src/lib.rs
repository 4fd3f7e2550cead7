//! Locked memory for key bytes, and process hardening.
//!
//! This is the only crate in strongroom with `unsafe` code, and it keeps it to two jobs:
//! - [`Secret`]: a fixed-size byte buffer in a slab of pages that never reach swap or a core
//!   dump. The slab comes from `memfd_secret(2)` where the kernel has it (the pages are also
//!   removed from the kernel's own direct map, so not even `/proc/PID/mem` reads them), and
//!   otherwise from anonymous pages locked with `mlock(2)` and marked `MADV_DONTDUMP`. Both
//!   are `MADV_DONTFORK`. A buffer is zeroed when dropped and its chunk goes back to the slab.
//! - [`harden_process`]: no core dumps, not dumpable (which also stops anyone without
//!   `CAP_SYS_PTRACE` from attaching a debugger or reading our memory), and the lock limit
//!   raised as far as the hard limit allows. [`tracer_pid`] tells whether a tracer is attached
//!   anyway.
//!
//! When locking is refused (the `RLIMIT_MEMLOCK` budget is spent), a slab falls back to
//! unlocked pages that are still excluded from dumps, and [`status`] says so: the vault
//! reports it rather than refusing to run. Callers keep secrets few and small (the vault keeps
//! its many signing keys encrypted in ordinary memory under one key held here).
//!
//! It must not: hold more than a chunk per secret, interpret what it stores, or do I/O
//! beyond the system calls above and reading `/proc/self/status`.

use std::ptr::NonNull;
use std::sync::Mutex;

/// The size (and alignment) of one slab chunk: the largest [`Secret`].
pub const CHUNK: usize = 64;
/// Chunks per slab; a slab is 64 KiB, well within the usual 8 MiB lock limit.
const CHUNKS_PER_SLAB: usize = 1024;
const SLAB_BYTES: usize = CHUNK * CHUNKS_PER_SLAB;

/// What backs the slab memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backing {
    /// `memfd_secret(2)` pages: locked, never dumped, outside the kernel's direct map.
    MemfdSecret,
    /// Anonymous pages, `mlock`ed and `MADV_DONTDUMP`.
    Locked,
    /// Anonymous pages that could not be locked (no lock budget left); still not dumped.
    Unlocked,
}

impl Backing {
    /// A stable name for status output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backing::MemfdSecret => "memfd_secret",
            Backing::Locked => "mlock",
            Backing::Unlocked => "unlocked",
        }
    }
}

/// A snapshot of the slab pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// How the newest slab is backed (`None` before the first secret).
    pub backing: Option<Backing>,
    /// Slabs mapped so far.
    pub slabs: usize,
    /// Of those, slabs whose pages could not be locked.
    pub unlocked_slabs: usize,
    /// Chunks in use.
    pub chunks_in_use: usize,
}

/// A snapshot of the slab pool.
#[must_use]
pub fn status() -> Status {
    let pool = pool();
    Status {
        backing: pool.slabs.last().map(|s| s.backing),
        slabs: pool.slabs.len(),
        unlocked_slabs: pool
            .slabs
            .iter()
            .filter(|s| s.backing == Backing::Unlocked)
            .count(),
        chunks_in_use: pool
            .slabs
            .iter()
            .map(|s| CHUNKS_PER_SLAB - s.free.len())
            .sum(),
    }
}

/// `N` bytes of key material in locked, dump-excluded memory; zeroed on drop.
///
/// Like the other secret types: no `Clone`, no `Debug` of the contents, and the bytes are
/// reached only through [`Secret::expose`] and [`Secret::expose_mut`].
pub struct Secret<const N: usize> {
    ptr: NonNull<u8>,
    slot: Slot,
}

#[derive(Clone, Copy)]
struct Slot {
    slab: usize,
    chunk: usize,
}

// SAFETY: a `Secret` owns its chunk exclusively (the pool hands each chunk to one `Secret`
// until that `Secret` is dropped) and the slab is never unmapped, so moving it to another
// thread or sharing `&Secret` (read-only access) across threads is as sound as for a `Box`.
unsafe impl<const N: usize> Send for Secret<N> {}
// SAFETY: see `Send`; `&Secret` gives only `&[u8; N]`.
unsafe impl<const N: usize> Sync for Secret<N> {}

impl<const N: usize> Secret<N> {
    /// A zeroed buffer.
    #[must_use]
    pub fn zeroed() -> Self {
        const { assert!(N <= CHUNK && N > 0, "a Secret fits one chunk") };
        let (ptr, slot) = pool().take();
        // Chunks are zeroed when returned and slabs are zero when mapped.
        Self { ptr, slot }
    }

    /// A buffer holding a copy of `bytes`. The caller zeroizes its own copy.
    #[must_use]
    pub fn from_slice(bytes: &[u8; N]) -> Self {
        let mut s = Self::zeroed();
        s.expose_mut().copy_from_slice(bytes);
        s
    }

    /// The bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; N] {
        // SAFETY: `ptr` points to a live chunk of `CHUNK >= N` bytes, 64-byte aligned (a
        // `[u8; N]` needs alignment 1), owned by this `Secret` alone; the slab outlives it.
        unsafe { &*self.ptr.as_ptr().cast::<[u8; N]>() }
    }

    /// The bytes, to fill.
    #[must_use]
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        // SAFETY: as in `expose`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.ptr.as_ptr().cast::<[u8; N]>() }
    }

    /// The address of the buffer, for tests that check the pages it lives in.
    #[must_use]
    pub fn address(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        // SAFETY: as in `expose_mut`; the whole chunk is ours until `give` below.
        let chunk = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), CHUNK) };
        zeroize::Zeroize::zeroize(chunk);
        pool().give(self.slot);
    }
}

impl<const N: usize> std::fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret").finish_non_exhaustive()
    }
}

struct Slab {
    base: NonNull<u8>,
    backing: Backing,
    free: Vec<usize>,
}

struct Pool {
    slabs: Vec<Slab>,
    // Once the kernel says it has no memfd_secret, stop asking.
    no_memfd_secret: bool,
}

// SAFETY: the raw slab pointers are only turned into references by `Secret`s, each owning
// one chunk; the pool itself only does arithmetic on them under its mutex.
unsafe impl Send for Pool {}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    slabs: Vec::new(),
    no_memfd_secret: false,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // Every update of the pool is a push or pop; a panic cannot leave it half-done.
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    fn take(&mut self) -> (NonNull<u8>, Slot) {
        for (i, slab) in self.slabs.iter_mut().enumerate() {
            if let Some(chunk) = slab.free.pop() {
                return (slab.chunk_ptr(chunk), Slot { slab: i, chunk });
            }
        }
        let slab = self.map_slab();
        self.slabs.push(slab);
        let i = self.slabs.len() - 1;
        let slab = &mut self.slabs[i];
        // A fresh slab has every chunk free.
        let chunk = slab.free.pop().unwrap_or(0);
        (slab.chunk_ptr(chunk), Slot { slab: i, chunk })
    }

    fn give(&mut self, slot: Slot) {
        if let Some(slab) = self.slabs.get_mut(slot.slab) {
            slab.free.push(slot.chunk);
        }
    }

    fn map_slab(&mut self) -> Slab {
        if !self.no_memfd_secret {
            match map_memfd_secret() {
                Ok(base) => return Slab::new(base, Backing::MemfdSecret),
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => self.no_memfd_secret = true,
                // Out of lock budget (EAGAIN/ENOMEM) or disabled: the fallback may still work.
                Err(_) => {}
            }
        }
        match map_anonymous() {
            Ok((base, backing)) => Slab::new(base, backing),
            // The process is out of address space; nothing else will work either.
            Err(e) => panic!("strongroom-memguard: cannot map a 64 KiB slab: {e}"),
        }
    }
}

impl Slab {
    fn new(base: NonNull<u8>, backing: Backing) -> Self {
        // Chunk 0 is handed out last (free is a stack).
        Self {
            base,
            backing,
            free: (0..CHUNKS_PER_SLAB).rev().collect(),
        }
    }

    fn chunk_ptr(&self, chunk: usize) -> NonNull<u8> {
        // SAFETY: `chunk < CHUNKS_PER_SLAB`, so the offset stays inside the slab's mapping.
        unsafe { self.base.add(chunk * CHUNK) }
    }
}

fn map_memfd_secret() -> std::io::Result<NonNull<u8>> {
    // SAFETY: memfd_secret takes one flags argument and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    let result = (|| {
        let len = libc::off_t::try_from(SLAB_BYTES)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `fd` is the descriptor just returned and owned here.
        if unsafe { libc::ftruncate(fd, len) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of our own descriptor; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SLAB_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // Touch-free: secretmem pages are allocated (and charged to the lock limit) on first
        // use; a forked child must not share them.
        // SAFETY: `p` is the mapping just made, `SLAB_BYTES` long.
        unsafe { libc::madvise(p, SLAB_BYTES, libc::MADV_DONTFORK) };
        NonNull::new(p.cast::<u8>()).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EFAULT))
    })();
    // SAFETY: the mapping keeps the memory alive; the descriptor is no longer needed.
    unsafe { libc::close(fd) };
    let base = result?;
    // The kernel marks secretmem mappings locked and charges them to the lock limit at mmap
    // time (`mlock` on them is refused), so an exhausted budget fails the mmap above and we
    // fall back. Fault every page in now rather than at first use (a page that cannot be
    // allocated at all is an out-of-memory condition either way).
    for page in (0..SLAB_BYTES).step_by(4096) {
        // SAFETY: `page < SLAB_BYTES`, inside our fresh read-write mapping.
        unsafe { std::ptr::write_volatile(base.as_ptr().add(page), 0) };
    }
    Ok(base)
}

fn map_anonymous() -> std::io::Result<(NonNull<u8>, Backing)> {
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SLAB_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `p` is the mapping just made, `SLAB_BYTES` long. Advice failures leave the pages
    // usable, and `status` reports the lock outcome, which is the one that matters.
    unsafe {
        libc::madvise(p, SLAB_BYTES, libc::MADV_DONTDUMP);
        libc::madvise(p, SLAB_BYTES, libc::MADV_DONTFORK);
    }
    // SAFETY: as above.
    let locked = unsafe { libc::mlock(p, SLAB_BYTES) } == 0;
    let base = NonNull::new(p.cast::<u8>())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EFAULT))?;
    Ok((
        base,
        if locked {
            Backing::Locked
        } else {
            Backing::Unlocked
        },
    ))
}

/// What [`harden_process`] achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hardening {
    /// The process is no longer dumpable (no core files, `/proc/PID/mem` and ptrace attach
    /// need `CAP_SYS_PTRACE`).
    pub non_dumpable: bool,
    /// The core-file size limit is zero.
    pub no_core_files: bool,
    /// The lock limit after raising the soft limit to the hard one (bytes; `None`: unlimited).
    pub memlock_limit: Option<u64>,
}

/// Makes the process non-dumpable, sets its core-file limit to zero and raises its lock limit
/// to the hard limit. Idempotent; call it before any secret exists.
#[must_use]
pub fn harden_process() -> Hardening {
    // SAFETY: PR_SET_DUMPABLE takes an integer; no memory is passed.
    let non_dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } == 0;
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid rlimit that outlives the call.
    let no_core_files = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } == 0;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    let memlock_limit = if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above. A refusal leaves the old soft limit, which we then report.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
            // SAFETY: as above.
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
        }
        (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
    } else {
        Some(0)
    };
    Hardening {
        non_dumpable: non_dumpable && !is_dumpable(),
        no_core_files,
        memlock_limit,
    }
}

/// Whether the process is dumpable (the kernel's view, `PR_GET_DUMPABLE`).
#[must_use]
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no arguments and returns the flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 }
}

/// The process id of a tracer (ptrace) attached to any thread of this process, if any:
/// ptrace attaches thread by thread, so every `/proc/self/task/*/status` is read.
///
/// # Errors
/// Reading them failed; the caller decides whether that is itself suspicious.
pub fn tracer_pid() -> std::io::Result<Option<u32>> {
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("status");
        let status = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            // The thread ended between the listing and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let pid = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if pid != 0 {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The pool is process-wide; tests that count or reuse chunks run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `VmFlags` of the mapping in `/proc/self/smaps` that contains `addr`.
    fn vm_flags(addr: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = lo <= addr && addr < hi;
                continue;
            }
            if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_owned).collect();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn secret_pages_are_locked_and_not_dumped() {
        let _serial = serial();
        let s = Secret::<32>::from_slice(&[7; 32]);
        let flags = vm_flags(s.address());
        // `lo`: locked (never swapped); `dd`: left out of core dumps.
        assert!(flags.iter().any(|f| f == "lo"), "flags {flags:?}");
        assert!(flags.iter().any(|f| f == "dd"), "flags {flags:?}");
        assert_eq!(s.expose(), &[7; 32]);
        // This machine's kernel has memfd_secret; elsewhere the mlock fallback shows the
        // same flags (checked above).
        let st = status();
        assert!(st.slabs >= 1 && st.chunks_in_use >= 1);
        assert_ne!(st.backing, Some(Backing::Unlocked));
        if st.backing == Some(Backing::MemfdSecret) {
            // Out of the kernel's direct map: not even this process's own /proc/self/mem
            // (what a privileged reader of another process would use) can read it.
            use std::io::{Read as _, Seek as _};
            let mut mem = std::fs::File::open("/proc/self/mem").expect("mem");
            mem.seek(std::io::SeekFrom::Start(s.address() as u64))
                .expect("seek");
            let mut buf = [0u8; 32];
            assert!(
                mem.read_exact(&mut buf).is_err(),
                "secretmem read through /proc"
            );
        }
    }

    #[test]
    fn anonymous_fallback_is_locked_and_not_dumped() {
        let _serial = serial();
        let (base, backing) = map_anonymous().expect("map");
        let flags = vm_flags(base.as_ptr() as usize);
        // SAFETY: unmapping the test's own mapping, which nothing else refers to.
        unsafe { libc::munmap(base.as_ptr().cast(), SLAB_BYTES) };
        assert_eq!(backing, Backing::Locked);
        assert!(flags.iter().any(|f| f == "lo"), "flags {flags:?}");
        assert!(flags.iter().any(|f| f == "dd"), "flags {flags:?}");
    }

    #[test]
    fn dropped_secret_is_zeroed_and_reused() {
        let _serial = serial();
        let s = Secret::<64>::from_slice(&[0xA5; 64]);
        let addr = s.address();
        drop(s);
        // The free list is a stack: the next take gets the same chunk back.
        let held: Vec<Secret<64>> = (0..4).map(|_| Secret::zeroed()).collect();
        let again = held
            .iter()
            .find(|s| s.address() == addr)
            .expect("chunk reused");
        assert_eq!(again.expose(), &[0; 64], "a returned chunk is zeroed");
    }

    #[test]
    fn many_secrets_grow_the_pool() {
        let _serial = serial();
        let held: Vec<Secret<32>> = (0..CHUNKS_PER_SLAB + 10)
            .map(|i| {
                let mut s = Secret::<32>::zeroed();
                s.expose_mut()[0] = (i % 251) as u8;
                s
            })
            .collect();
        assert!(status().slabs >= 2);
        let mut addrs: Vec<usize> = held.iter().map(Secret::address).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), held.len(), "no chunk handed out twice");
        for (i, s) in held.iter().enumerate() {
            assert_eq!(s.expose()[0], (i % 251) as u8);
        }
    }

    #[test]
    fn hardening_makes_the_process_non_dumpable() {
        let _serial = serial();
        let h = harden_process();
        assert!(h.non_dumpable);
        assert!(!is_dumpable());
        assert!(h.no_core_files);
        assert_eq!(tracer_pid().expect("status"), None);
    }
}
