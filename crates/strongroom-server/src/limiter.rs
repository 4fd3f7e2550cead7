//! Rate limiting and audit aggregation for unauthenticated and failed-auth traffic.
//!
//! Each source address has a token bucket; an empty bucket answers 429. Such requests are
//! audited per (source, operation, outcome, code) and interval: the first of each interval is
//! written durably before its answer leaves, the rest are counted and written as one record
//! (with the count) when the interval closes. A flood therefore costs a bounded number of
//! audit records per interval and never waits on the disk after the first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strongroom_core::record::{AuditEvent, Outcome};

/// Bucket size: requests a source may send in a burst.
pub(crate) const BURST: f64 = 60.0;
/// Sustained requests per second per source.
pub(crate) const PER_SECOND: f64 = 20.0;
/// Aggregation interval.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// Distinct sources (and aggregation keys per interval) kept in memory; beyond this, new
/// sources share one overflow bucket and key, so memory stays bounded.
const MAX_KEYS: usize = 10_000;
/// Vault-wide budget for anonymous requests that are audited one by one (init, unseal).
const INDIVIDUAL_BURST: f64 = 100.0;
const INDIVIDUAL_PER_SECOND: f64 = 20.0;

#[derive(Default)]
pub(crate) struct Limiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    individual: Mutex<Option<(f64, Instant)>>,
    counts: Mutex<HashMap<AggKey, Aggregate>>,
}

/// Refills a bucket up to `now` and takes one token if there is one.
fn take(tokens: &mut f64, last: &mut Instant, now: Instant, burst: f64, rate: f64) -> bool {
    *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct AggKey {
    source: Option<IpAddr>,
    operation: String,
    outcome: u8,
    code: Option<String>,
}

struct Aggregate {
    template: AuditEvent,
    extra: u32,
}

impl Limiter {
    /// Takes one token from `source`'s bucket; `false` means rate-limited.
    pub(crate) fn allow(&self, source: IpAddr, now: Instant) -> bool {
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut source = source;
        if b.len() >= MAX_KEYS && !b.contains_key(&source) {
            // A bucket idle long enough to have refilled carries no information.
            let refill = Duration::from_secs_f64(BURST / PER_SECOND);
            b.retain(|_, (_, last)| now.saturating_duration_since(*last) < refill);
            if b.len() >= MAX_KEYS {
                // Still full: new sources share one bucket, so memory stays bounded.
                source = IpAddr::from([0, 0, 0, 0]);
            }
        }
        let (tokens, last) = b.entry(source).or_insert((BURST, now));
        take(tokens, last, now, BURST, PER_SECOND)
    }

    /// Takes one token from the vault-wide budget for individually audited anonymous
    /// requests; `false` means the request is aggregated instead.
    pub(crate) fn allow_individual(&self, now: Instant) -> bool {
        let mut g = self
            .individual
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = g.get_or_insert((INDIVIDUAL_BURST, now));
        take(tokens, last, now, INDIVIDUAL_BURST, INDIVIDUAL_PER_SECOND)
    }

    /// Counts an event. Returns it if it is the first of its kind this interval (the caller
    /// must then write it durably before answering).
    pub(crate) fn record(&self, source: Option<IpAddr>, event: AuditEvent) -> Option<AuditEvent> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = AggKey {
            source,
            operation: event.operation.clone(),
            outcome: event.outcome.code(),
            code: event.code.clone(),
        };
        if counts.len() >= MAX_KEYS && !counts.contains_key(&key) {
            key = AggKey {
                source: None,
                operation: "overflow".into(),
                outcome: Outcome::Denied.code(),
                code: None,
            };
        }
        match counts.get_mut(&key) {
            Some(agg) => {
                agg.extra = agg.extra.saturating_add(1);
                None
            }
            None => {
                counts.insert(
                    key,
                    Aggregate {
                        template: event.clone(),
                        extra: 0,
                    },
                );
                Some(event)
            }
        }
    }

    /// Closes the interval: one aggregated event per key that saw more than its first request.
    pub(crate) fn drain(&self) -> Vec<AuditEvent> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts
            .drain()
            .filter(|(_, a)| a.extra > 0)
            .map(|(_, a)| AuditEvent {
                count: a.extra,
                ..a.template
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::{RequestId, UnixMillis};

    fn ev(op: &str) -> AuditEvent {
        AuditEvent {
            time: UnixMillis(1),
            request_id: RequestId::from_random([1; 16]),
            actor: "anonymous".into(),
            source: Some("10.0.0.1".into()),
            operation: op.into(),
            domain: None,
            key: None,
            outcome: Outcome::Denied,
            code: Some("unauthenticated".into()),
            count: 1,
            detail: None,
        }
    }

    #[test]
    fn bucket_empties_then_refills() {
        let l = Limiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        let allowed = (0..100).filter(|_| l.allow(ip, t0)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(l.allow(other, t0), "sources are independent");
        assert!(
            l.allow(ip, t0 + Duration::from_millis(100)),
            "refills at PER_SECOND"
        );
        let individual = (0..1000).filter(|_| l.allow_individual(t0)).count();
        assert_eq!(individual, INDIVIDUAL_BURST as usize, "vault-wide budget");
    }

    #[test]
    fn memory_stays_bounded_under_many_sources() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 5000) {
            l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_KEYS + 1);
        // Once the old buckets have refilled they are dropped to make room.
        l.allow(IpAddr::from([10, 9, 9, 9]), t0 + Duration::from_secs(4));
        assert!(l.buckets.lock().unwrap().len() < 10);
    }

    #[test]
    fn first_is_written_rest_are_counted() {
        let l = Limiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.record(Some(ip), ev("key.list")).is_some());
        for _ in 0..41 {
            assert!(l.record(Some(ip), ev("key.list")).is_none());
        }
        assert!(l.record(Some(ip), ev("domain.list")).is_some());
        let drained = l.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].count, 41);
        assert!(l.drain().is_empty());
        assert!(
            l.record(Some(ip), ev("key.list")).is_some(),
            "new interval writes the first again"
        );
    }
}
