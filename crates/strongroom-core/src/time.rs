//! Time as a port: production reads the system clock, tests inject their own.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// This instant plus a duration, saturating instead of overflowing.
    #[must_use]
    pub fn saturating_add(self, d: std::time::Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixMillis;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        // A clock before 1970 is treated as the epoch: time-dependent checks then fail closed
        // (tokens look expired), which is the safe direction.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        UnixMillis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// Guards against a wall clock moved backwards: expiries (sessions, tokens, requests) must
/// not be revived by turning the clock back.
///
/// Two marks: a *floor* for decisions, the highest time ever seen (starting from the newest
/// audit record), which never moves back; and a *baseline* for detection. A reading more than
/// `skew` behind the baseline marks the clock untrusted: time-dependent operations then fail
/// closed until a security officer acknowledges the jump, which resets the baseline to the
/// clock's reading. The floor stays, so nothing that expired comes back; it catches up once
/// the clock passes it.
#[derive(Debug)]
pub struct TimeGuard {
    floor: std::sync::atomic::AtomicU64,
    baseline: std::sync::atomic::AtomicU64,
    untrusted: std::sync::atomic::AtomicBool,
    skew_ms: u64,
}

/// What one clock reading told the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The time to judge expiries by and to record: never below any earlier one.
    pub effective: UnixMillis,
    /// This reading is the one that found the clock moved backwards.
    pub newly_untrusted: bool,
}

impl TimeGuard {
    /// Default allowed backwards skew (nodes sharing a chain may differ a little).
    pub const DEFAULT_SKEW_MS: u64 = 5_000;

    /// A guard whose marks start at `start` (the newest audited time).
    #[must_use]
    pub fn new(start: UnixMillis, skew_ms: u64) -> Self {
        Self {
            floor: std::sync::atomic::AtomicU64::new(start.0),
            baseline: std::sync::atomic::AtomicU64::new(start.0),
            untrusted: std::sync::atomic::AtomicBool::new(false),
            skew_ms,
        }
    }

    /// Records a clock reading.
    pub fn observe(&self, now: UnixMillis) -> Observation {
        use std::sync::atomic::Ordering::SeqCst;
        let seen = self.baseline.fetch_max(now.0, SeqCst);
        let newly_untrusted =
            seen.saturating_sub(now.0) > self.skew_ms && !self.untrusted.swap(true, SeqCst);
        let floor = self.floor.fetch_max(now.0, SeqCst);
        Observation {
            effective: UnixMillis(floor.max(now.0)),
            newly_untrusted,
        }
    }

    /// Whether time-dependent operations may run.
    #[must_use]
    pub fn trusted(&self) -> bool {
        !self.untrusted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A security officer accepts the clock as it reads (`now`).
    pub fn acknowledge(&self, now: UnixMillis) {
        use std::sync::atomic::Ordering::SeqCst;
        self.baseline.store(now.0, SeqCst);
        self.untrusted.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backwards_jumps_beyond_the_skew_fail_closed_until_acknowledged() {
        let g = TimeGuard::new(UnixMillis(10_000_000), 5_000);
        let o = g.observe(UnixMillis(10_001_000));
        assert_eq!(
            o,
            Observation {
                effective: UnixMillis(10_001_000),
                newly_untrusted: false
            }
        );
        // Within the skew: tolerated, but decisions never go backwards.
        let o = g.observe(UnixMillis(9_997_000));
        assert_eq!(
            o,
            Observation {
                effective: UnixMillis(10_001_000),
                newly_untrusted: false
            }
        );
        assert!(g.trusted());
        // An hour back: untrusted, reported once; decisions keep the floor.
        let back = UnixMillis(10_001_000 - 3_600_000);
        assert_eq!(
            g.observe(back),
            Observation {
                effective: UnixMillis(10_001_000),
                newly_untrusted: true
            }
        );
        assert!(!g.trusted());
        assert!(!g.observe(back).newly_untrusted, "reported once");
        // Acknowledged: trusted at the new reading, but the floor stays (nothing is revived).
        g.acknowledge(back);
        assert!(g.trusted());
        let o = g.observe(UnixMillis(back.0 + 1_000));
        assert_eq!(
            o,
            Observation {
                effective: UnixMillis(10_001_000),
                newly_untrusted: false
            }
        );
        assert!(g.trusted());
        // Once the clock passes the floor, decisions follow it again.
        assert_eq!(
            g.observe(UnixMillis(20_000_000)).effective,
            UnixMillis(20_000_000)
        );
    }

    #[test]
    fn a_clock_behind_the_log_at_start_is_caught() {
        // The newest audit record says 10:00; the clock says 09:00 at start.
        let g = TimeGuard::new(UnixMillis(36_000_000), TimeGuard::DEFAULT_SKEW_MS);
        assert!(g.observe(UnixMillis(32_400_000)).newly_untrusted);
    }
}
