//! The vault's random-bit generator: raw inputs (the operating system's generator and, where
//! the CPU has one, RDSEED) pass SP 800-90B's continuous health tests (repetition count and
//! adaptive proportion), then seed an SP 800-90A HMAC_DRBG (SHA-256) that produces every
//! random byte the vault uses. A failed health test latches: from then on every draw fails,
//! so key generation (and everything else that needs randomness) fails closed until the
//! process restarts.
//!
//! Raw inputs are a seam ([`RawSource`]) so that tests can feed stuck and biased sources.

use std::sync::Mutex;

use hmac::{KeyInit as _, Mac as _};
use strongroom_core::EntropySource;
use zeroize::{Zeroize as _, Zeroizing};

/// Draws between reseeds: each reseed reads fresh raw input from every source.
const RESEED_INTERVAL: u32 = 256;
/// Raw bytes read from each source per reseed.
const RAW_PER_SOURCE: usize = 96;
/// The min-entropy per raw byte the health tests assume (bits); conservative for a
/// conditioned source, so that the tests' false-alarm rate stays near 2^-40.
const ASSUMED_MIN_ENTROPY: f64 = 4.0;
/// The false-alarm probability each test is sized for (SP 800-90B 4.4: 2^-20 to 2^-40).
const ALPHA_LOG2: f64 = -40.0;
/// SP 800-90B's adaptive-proportion window for non-binary samples.
const APT_WINDOW: usize = 512;

/// A raw input to the generator.
pub trait RawSource: Send + Sync {
    /// A short name for status and logs (`os`, `rdseed`).
    fn name(&self) -> &'static str;
    /// Fills `buf` with raw bytes.
    ///
    /// # Errors
    /// [`strongroom_core::Error::Entropy`] when the source cannot deliver.
    fn read(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error>;
}

/// The operating system's generator (`getrandom(2)`).
pub struct OsRaw;

impl RawSource for OsRaw {
    fn name(&self) -> &'static str {
        "os"
    }
    fn read(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
        getrandom::fill(buf).map_err(|_| strongroom_core::Error::Entropy)
    }
}

/// The CPU's RDSEED instruction (x86-64), when present.
pub struct CpuRaw(Mutex<rdrand::RdSeed>);

impl CpuRaw {
    /// The CPU source, or `None` where the CPU has no RDSEED.
    #[must_use]
    pub fn detect() -> Option<Self> {
        rdrand::RdSeed::new().ok().map(|s| CpuRaw(Mutex::new(s)))
    }
}

impl RawSource for CpuRaw {
    fn name(&self) -> &'static str {
        "rdseed"
    }
    fn read(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
        use rand_core::TryRng as _;
        self.0
            .lock()
            .map_err(|_| strongroom_core::Error::Entropy)?
            .try_fill_bytes(buf)
            .map_err(|_| strongroom_core::Error::Entropy)
    }
}

/// Tests only: the OS source until a file exists, then one value for ever.
#[cfg(feature = "danger-break-self-test")]
struct StuckWhen(std::path::PathBuf);

#[cfg(feature = "danger-break-self-test")]
impl RawSource for StuckWhen {
    fn name(&self) -> &'static str {
        "test-stuck"
    }
    fn read(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
        if self.0.exists() {
            buf.fill(0x42);
            Ok(())
        } else {
            OsRaw.read(buf)
        }
    }
}

/// SP 800-90B 4.4's continuous tests over one source's bytes.
struct HealthTests {
    rct_cutoff: u32,
    apt_cutoff: u32,
    last: Option<u8>,
    run: u32,
    apt_value: u8,
    apt_seen: usize,
    apt_count: u32,
}

impl HealthTests {
    fn new() -> Self {
        HealthTests {
            rct_cutoff: rct_cutoff(ASSUMED_MIN_ENTROPY),
            apt_cutoff: apt_cutoff(ASSUMED_MIN_ENTROPY),
            last: None,
            run: 0,
            apt_value: 0,
            apt_seen: 0,
            apt_count: 0,
        }
    }

    /// Runs both tests over `bytes`: the name of the one that fails, if one does.
    fn check(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        for &b in bytes {
            // Repetition count: a run of one value too long to be chance.
            if self.last == Some(b) {
                self.run += 1;
                if self.run >= self.rct_cutoff {
                    return Err("repetition count");
                }
            } else {
                self.last = Some(b);
                self.run = 1;
            }
            // Adaptive proportion: one value too common in a window.
            if self.apt_seen == 0 {
                self.apt_value = b;
                self.apt_count = 1;
            } else if b == self.apt_value {
                self.apt_count += 1;
                if self.apt_count >= self.apt_cutoff {
                    return Err("adaptive proportion");
                }
            }
            self.apt_seen = (self.apt_seen + 1) % APT_WINDOW;
        }
        Ok(())
    }
}

/// SP 800-90B 4.4.1: C = 1 + ceil(-log2(alpha) / H).
fn rct_cutoff(h: f64) -> u32 {
    1 + (-ALPHA_LOG2 / h).ceil() as u32
}

/// SP 800-90B 4.4.2: C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), CRITBINOM(n, p, q) being the
/// least k with P(X <= k) >= q for X ~ Binomial(n, p).
fn apt_cutoff(h: f64) -> u32 {
    let n = APT_WINDOW;
    let p = 2f64.powf(-h);
    let alpha = 2f64.powf(ALPHA_LOG2);
    // Upper tail by summing the probability mass from the top (in log space).
    let ln_choose =
        |k: usize| -> f64 { (1..=k).map(|i| ((n + 1 - i) as f64 / i as f64).ln()).sum() };
    let mass = |k: usize| -> f64 {
        (ln_choose(k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp()
    };
    let mut tail = 0.0;
    for k in (0..=n).rev() {
        tail += mass(k);
        if tail > alpha {
            // P(X >= k) > alpha, so P(X <= k) < 1 - alpha: CRITBINOM is k, and C is k + 1.
            return u32::try_from(k + 1).unwrap_or(u32::MAX);
        }
    }
    1
}

/// SP 800-90A HMAC_DRBG with SHA-256 (no prediction-resistance requests; reseeded by the
/// caller).
pub(crate) struct HmacDrbg {
    k: Zeroizing<[u8; 32]>,
    v: Zeroizing<[u8; 32]>,
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl HmacDrbg {
    /// Instantiate with `seed` (entropy input || nonce || personalisation).
    pub(crate) fn new(seed: &[u8]) -> Result<Self, strongroom_core::Error> {
        let mut d = HmacDrbg {
            k: Zeroizing::new([0u8; 32]),
            v: Zeroizing::new([1u8; 32]),
        };
        d.update(seed)?;
        Ok(d)
    }

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; 32], strongroom_core::Error> {
        // HMAC takes keys of any length; an error here is impossible, and fails closed.
        let mut m = HmacSha256::new_from_slice(self.k.as_ref())
            .map_err(|_| strongroom_core::Error::Entropy)?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }

    fn update(&mut self, data: &[u8]) -> Result<(), strongroom_core::Error> {
        *self.k = self.mac(&[self.v.as_ref(), &[0], data])?;
        *self.v = self.mac(&[self.v.as_ref()])?;
        if !data.is_empty() {
            *self.k = self.mac(&[self.v.as_ref(), &[1], data])?;
            *self.v = self.mac(&[self.v.as_ref()])?;
        }
        Ok(())
    }

    /// Reseed with fresh entropy input.
    pub(crate) fn reseed(&mut self, entropy: &[u8]) -> Result<(), strongroom_core::Error> {
        self.update(entropy)
    }

    /// Generate `out.len()` bytes.
    pub(crate) fn generate(&mut self, out: &mut [u8]) -> Result<(), strongroom_core::Error> {
        for chunk in out.chunks_mut(32) {
            *self.v = self.mac(&[self.v.as_ref()])?;
            chunk.copy_from_slice(&self.v[..chunk.len()]);
        }
        self.update(&[])
    }
}

struct State {
    drbg: Option<HmacDrbg>,
    draws: u32,
    tests: Vec<HealthTests>,
    /// Latched: the source and test that failed.
    failed: Option<String>,
}

/// The vault's entropy source: health-tested raw inputs through HMAC_DRBG.
pub struct HealthCheckedEntropy {
    sources: Vec<Box<dyn RawSource>>,
    state: Mutex<State>,
}

impl HealthCheckedEntropy {
    /// The generator over the operating system's source and, where present, RDSEED.
    #[must_use]
    pub fn system() -> Self {
        let mut sources: Vec<Box<dyn RawSource>> = vec![Box::new(OsRaw)];
        if let Some(cpu) = CpuRaw::detect() {
            sources.push(Box::new(cpu));
        }
        // Tests only: `STRONGROOM_BREAK_ENTROPY=<file>` adds a source that sticks at one
        // value once that file exists.
        #[cfg(feature = "danger-break-self-test")]
        if let Some(trigger) = std::env::var_os("STRONGROOM_BREAK_ENTROPY") {
            sources.push(Box::new(StuckWhen(trigger.into())));
        }
        Self::with_sources(sources)
    }

    /// The generator over these raw sources (tests feed faulty ones).
    #[must_use]
    pub fn with_sources(sources: Vec<Box<dyn RawSource>>) -> Self {
        let tests = sources.iter().map(|_| HealthTests::new()).collect();
        HealthCheckedEntropy {
            sources,
            state: Mutex::new(State {
                drbg: None,
                draws: 0,
                tests,
                failed: None,
            }),
        }
    }

    /// The names of the raw sources in use.
    #[must_use]
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    /// The latched failure (`"os: repetition count"`), if a health test failed.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.state
            .lock()
            .map_or_else(|_| Some("poisoned".to_owned()), |s| s.failed.clone())
    }

    /// Fresh, health-tested raw input from every source.
    fn gather(&self, state: &mut State) -> Result<Zeroizing<Vec<u8>>, strongroom_core::Error> {
        let mut seed = Zeroizing::new(Vec::with_capacity(RAW_PER_SOURCE * self.sources.len()));
        for (i, (source, tests)) in self.sources.iter().zip(state.tests.iter_mut()).enumerate() {
            let mut raw = Zeroizing::new([0u8; RAW_PER_SOURCE]);
            // An extra source that is momentarily dry (RDSEED under contention) is skipped for
            // this reseed; the first (the operating system's) must always deliver.
            if source.read(raw.as_mut()).is_err() {
                if i > 0 {
                    continue;
                }
                let what = format!("{}: unavailable", source.name());
                tracing_free_log(&what);
                state.failed = Some(what);
                return Err(strongroom_core::Error::Entropy);
            }
            let verdict = tests.check(raw.as_ref());
            if let Err(test) = verdict {
                let what = format!("{}: {test}", source.name());
                tracing_free_log(&what);
                state.failed = Some(what);
                return Err(strongroom_core::Error::Entropy);
            }
            seed.extend_from_slice(raw.as_ref());
        }
        Ok(seed)
    }
}

/// Failures go to standard error: this crate does no other I/O, and the server reports the
/// latched failure in its status and audit log.
fn tracing_free_log(what: &str) {
    eprintln!("strongroom: entropy health test failed ({what}); no random bytes are produced");
}

impl EntropySource for HealthCheckedEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| strongroom_core::Error::Entropy)?;
        if state.failed.is_some() {
            buf.zeroize();
            return Err(strongroom_core::Error::Entropy);
        }
        if state.drbg.is_none() || state.draws >= RESEED_INTERVAL {
            let seed = match self.gather(&mut state) {
                Ok(s) => s,
                Err(e) => {
                    buf.zeroize();
                    return Err(e);
                }
            };
            match state.drbg.as_mut() {
                Some(d) => d.reseed(&seed)?,
                None => state.drbg = Some(HmacDrbg::new(&seed)?),
            }
            state.draws = 0;
        }
        state.draws += 1;
        match state.drbg.as_mut() {
            Some(d) => d.generate(buf),
            None => Err(strongroom_core::Error::Entropy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6979 generates ECDSA nonces with HMAC_DRBG (SHA-256): instantiated with the key
    /// and the message hash, its first output is the published k (appendix A.2.5, P-256).
    #[test]
    fn hmac_drbg_reproduces_rfc6979_nonces() {
        let x = hex::decode("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
            .unwrap();
        for (msg, k) in [
            (
                &b"sample"[..],
                "a6e3c57dd01abe90086538398355dd4c3b17aa873382b0f24d6129493d8aad60",
            ),
            (
                &b"test"[..],
                "d16b6ae827f17175e040871a1c7ec3500192c4c92677336ec2537acaee0008e0",
            ),
        ] {
            let h1: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(msg).into();
            let mut seed = x.clone();
            seed.extend_from_slice(&h1);
            let mut d = HmacDrbg::new(&seed).unwrap();
            let mut out = [0u8; 32];
            d.generate(&mut out).unwrap();
            assert_eq!(hex::encode(out), k, "{msg:?}");
        }
    }

    #[test]
    fn cutoffs_follow_sp800_90b() {
        // H = 4 bits per byte, alpha = 2^-40: C = 1 + 40/4.
        assert_eq!(rct_cutoff(4.0), 11);
        // For H = 8 (a perfect byte), the window's expected count of one value is 2.
        let tight = apt_cutoff(8.0);
        let loose = apt_cutoff(4.0);
        assert!(tight > 2 && tight < loose && loose < 512, "{tight} {loose}");
    }

    struct Fixed(
        &'static str,
        Box<dyn Fn(usize) -> u8 + Send + Sync>,
        Mutex<usize>,
    );

    impl RawSource for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn read(&self, buf: &mut [u8]) -> Result<(), strongroom_core::Error> {
            let mut n = self.2.lock().unwrap();
            for b in buf {
                *b = (self.1)(*n);
                *n += 1;
            }
            Ok(())
        }
    }

    fn draw_many(e: &HealthCheckedEntropy, times: usize) -> Result<(), strongroom_core::Error> {
        let mut buf = [0u8; 64];
        for _ in 0..times {
            e.fill(&mut buf)?;
        }
        Ok(())
    }

    #[test]
    fn a_stuck_source_fails_closed_and_stays_failed() {
        let e = HealthCheckedEntropy::with_sources(vec![
            Box::new(OsRaw),
            Box::new(Fixed("stuck", Box::new(|_| 0x5a), Mutex::new(0))),
        ]);
        let mut buf = [7u8; 32];
        assert!(e.fill(&mut buf).is_err());
        assert_eq!(buf, [0; 32], "nothing is handed out");
        assert_eq!(e.failure().as_deref(), Some("stuck: repetition count"));
        assert!(e.fill(&mut buf).is_err(), "latched");
    }

    #[test]
    fn a_biased_source_fails_the_adaptive_proportion_test() {
        // Every other byte is 0x00 (never twice in a row), the rest counts up: no long runs,
        // but one value fills half of every window.
        let e = HealthCheckedEntropy::with_sources(vec![Box::new(Fixed(
            "biased",
            Box::new(|n| if n % 2 == 0 { 0 } else { (n % 251) as u8 | 1 }),
            Mutex::new(0),
        ))]);
        assert!(draw_many(&e, 100_000).is_err());
        assert_eq!(e.failure().as_deref(), Some("biased: adaptive proportion"));
    }

    #[test]
    fn healthy_sources_keep_producing_distinct_output() {
        let e = HealthCheckedEntropy::system();
        assert!(e.source_names().contains(&"os"));
        draw_many(&e, 20 * RESEED_INTERVAL as usize).unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        e.fill(&mut a).unwrap();
        e.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(e.failure().is_none());
    }

    #[test]
    fn a_failing_source_is_a_failure() {
        struct Broken;
        impl RawSource for Broken {
            fn name(&self) -> &'static str {
                "broken"
            }
            fn read(&self, _: &mut [u8]) -> Result<(), strongroom_core::Error> {
                Err(strongroom_core::Error::Entropy)
            }
        }
        // The first (the operating system's) must deliver...
        let e = HealthCheckedEntropy::with_sources(vec![Box::new(Broken), Box::new(OsRaw)]);
        assert!(e.fill(&mut [0u8; 8]).is_err());
        assert_eq!(e.failure().as_deref(), Some("broken: unavailable"));
        // ...an extra one that is momentarily dry is skipped.
        let e = HealthCheckedEntropy::with_sources(vec![Box::new(OsRaw), Box::new(Broken)]);
        draw_many(&e, 3 * RESEED_INTERVAL as usize).unwrap();
        assert!(e.failure().is_none());
    }
}
