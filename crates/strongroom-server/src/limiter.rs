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
/// Distinct aggregation keys kept per interval; beyond this, traffic is counted under one
/// overflow key so memory stays bounded.
const MAX_KEYS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Limiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    counts: Mutex<HashMap<AggKey, Aggregate>>,
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
        if b.len() > MAX_KEYS {
            // Full buckets carry no information; drop them to bound memory.
            b.retain(|_, (tokens, _)| *tokens < BURST);
        }
        let (tokens, last) = b.entry(source).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * PER_SECOND).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
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
