//! Trusted time: the vault's own clock, a monotonic clock anchored to the agreed time of the
//! authenticated NTP sources `[time]` names, re-voted every poll.
//!
//! The vault reads time only through [`TrustedTime::now`] when sources are configured: the
//! wall clock then matters only as the reference the offsets are measured against, so turning
//! it (backwards or forwards) moves nothing. The clock never reads less than it did before,
//! so a leap second or a re-anchoring that steps back never shortens or revives an expiry.
//! Without a vote within `max_age` it is not trusted, and time-dependent operations fail
//! closed (`clock_untrusted`).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use strongroom_core::time::{Clock, SystemClock, UnixMillis};
use strongroom_time::{Estimate, NtpKey, NtpTimestamp};

use crate::ServeError;

/// Longest wait for one reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Samples with a longer round trip say little about the offset.
const MAX_DELAY_MS: i64 = 1_000;

/// One configured source.
struct Source {
    address: SocketAddr,
    key: NtpKey,
}

/// The vault's clock, anchored to its NTP sources.
pub(crate) struct TrustedTime {
    sources: Vec<Source>,
    bound_ms: i64,
    max_age: Duration,
    pub(crate) poll: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    // Our monotonic instant and the agreed time at it.
    anchor: Option<(Instant, i64)>,
    last_vote: Option<Instant>,
    // The clock never reads less than this.
    last_returned: u64,
    report: Vec<SourceView>,
}

/// A source as `status` shows it.
#[derive(Serialize, Clone, Debug)]
pub struct SourceView {
    address: String,
    /// Answered with a verified reply and agreed with the majority.
    trusted: bool,
    /// Its clock minus this node's wall clock, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset_ms: Option<i64>,
    /// Why it is not trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The vault's time as `status` shows it.
#[derive(Serialize)]
pub struct TimeView {
    /// `ntp`: the vault's own clock, anchored to the sources.
    source: &'static str,
    trusted: bool,
    /// The vault's time minus this node's wall clock, milliseconds (absent before a vote).
    #[serde(skip_serializing_if = "Option::is_none")]
    wall_clock_offset_ms: Option<i64>,
    sources: Vec<SourceView>,
}

fn wall_ms() -> i64 {
    i64::try_from(SystemClock.now().0).unwrap_or(i64::MAX)
}

impl TrustedTime {
    /// From `[time]`: reads each source's key.
    ///
    /// # Errors
    /// [`ServeError::Config`] for an unreadable key file, a missing key id or no sources.
    pub(crate) fn new(cfg: &crate::config::TimeConfig) -> Result<Self, ServeError> {
        if cfg.ntp.is_empty() {
            return Err(ServeError::Config(
                "[time]: name at least one [[time.ntp]] source".into(),
            ));
        }
        let mut sources: Vec<Source> = Vec::new();
        for s in &cfg.ntp {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(&s.key_file).map_err(|e| {
                    ServeError::Config(format!("[time] key_file {}: {e}", s.key_file.display()))
                })?);
            let key = NtpKey::from_key_file(&text, s.key_id).map_err(|_| {
                ServeError::Config(format!(
                    "[time] key_file {}: no SHA256 or SHA1 key with id {} (at least 80 bits)",
                    s.key_file.display(),
                    s.key_id
                ))
            })?;
            // Distinct servers under distinct keys: whoever holds a key shared by two sources
            // could answer for both (the MAC does not name the server), and one server listed
            // twice would count twice.
            if sources
                .iter()
                .any(|o| o.address == s.address || o.key.same_secret(&key))
            {
                return Err(ServeError::Config(format!(
                    "[time] {}: every source needs its own address and its own key",
                    s.address
                )));
            }
            sources.push(Source {
                address: s.address,
                key,
            });
        }
        Ok(Self {
            sources,
            bound_ms: i64::try_from(cfg.max_disagreement()?.as_millis()).unwrap_or(i64::MAX),
            max_age: cfg.max_age()?,
            poll: cfg.poll()?,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a vote of the sources is recent enough to trust the clock.
    pub(crate) fn trusted(&self) -> bool {
        let s = self.state();
        s.anchor.is_some() && s.last_vote.is_some_and(|t| t.elapsed() <= self.max_age)
    }

    /// Asks every source once, votes, and re-anchors the clock on a majority. Returns whether
    /// the clock is trusted afterwards.
    pub(crate) async fn poll_once(&self) -> bool {
        let asked = futures_util::future::join_all(self.sources.iter().map(query)).await;
        // Every estimate referred to one instant, on the monotonic clock: the wall clock,
        // which anyone with the right privileges can turn, never enters the vote.
        let at = Instant::now();
        let wall = wall_ms();
        let now_of = |(arrived, e): &(Instant, Estimate)| {
            e.time_ms
                .saturating_add(i64::try_from(at.duration_since(*arrived).as_millis()).unwrap_or(0))
        };
        let times: Vec<i64> = asked
            .iter()
            .filter_map(|r| r.as_ref().ok().map(now_of))
            .collect();
        let voted = strongroom_time::vote(&times, self.sources.len(), self.bound_ms);
        let mut in_group = match &voted {
            Ok((_, group)) => group.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let report = self
            .sources
            .iter()
            .zip(&asked)
            .map(|(src, r)| match r {
                Ok(estimate) => {
                    let agreed = in_group.next().unwrap_or(false) && voted.is_ok();
                    SourceView {
                        address: src.address.to_string(),
                        trusted: agreed,
                        offset_ms: Some(now_of(estimate) - wall),
                        error: (!agreed).then(|| "disagrees with the other sources".to_owned()),
                    }
                }
                Err(e) => SourceView {
                    address: src.address.to_string(),
                    trusted: false,
                    offset_ms: None,
                    error: Some(e.clone()),
                },
            })
            .collect();
        let mut s = self.state();
        s.report = report;
        if let Ok((time, _)) = voted {
            if let Some((a, t)) = s.anchor {
                let running = t + i64::try_from(at.duration_since(a).as_millis()).unwrap_or(0);
                if (running - time).abs() > self.bound_ms {
                    tracing::warn!(
                        step_ms = time - running,
                        "the time sources moved the vault's clock"
                    );
                }
            }
            s.anchor = Some((at, time));
            s.last_vote = Some(at);
        }
        drop(s);
        self.trusted()
    }

    pub(crate) fn view(&self) -> TimeView {
        let trusted = self.trusted();
        let s = self.state();
        let offset = s
            .anchor
            .map(|(at, t)| t + i64::try_from(at.elapsed().as_millis()).unwrap_or(0) - wall_ms());
        TimeView {
            source: "ntp",
            trusted,
            wall_clock_offset_ms: offset,
            sources: s.report.clone(),
        }
    }

    /// The reason the clock is untrusted, for the audit log.
    pub(crate) fn report(&self) -> Vec<SourceView> {
        self.state().report.clone()
    }
}

impl Clock for TrustedTime {
    fn now(&self) -> UnixMillis {
        let mut s = self.state();
        match s.anchor {
            Some((at, t)) => {
                let ms = t.saturating_add(i64::try_from(at.elapsed().as_millis()).unwrap_or(0));
                s.last_returned = s.last_returned.max(u64::try_from(ms).unwrap_or(0));
                UnixMillis(s.last_returned)
            }
            // Before the first vote: the wall clock, which is not trusted (time-dependent
            // operations are refused) and does not raise the floor the anchored clock keeps.
            None => SystemClock.now(),
        }
    }
}

/// One authenticated exchange with `src`: when the reply arrived (monotonic) and what it says
/// the time was then.
async fn query(src: &Source) -> Result<(Instant, Estimate), String> {
    let bind: SocketAddr = if src.address.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("socket: {e}"))?;
    socket
        .connect(src.address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // The transmit timestamp is only echoed back, never used as time: a random one makes a
    // reply unguessable before the request is seen.
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|_| "no randomness for the request".to_owned())?;
    let sent = NtpTimestamp(u64::from_be_bytes(nonce));
    let i1 = Instant::now();
    socket
        .send(&strongroom_time::request(&src.key, sent))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| "no authenticated reply (wrong key, or not answering)".to_owned())?
            .map_err(|e| format!("receive: {e}"))?;
        let i4 = Instant::now();
        // Anything that is not the verified answer to this request is ignored, not fatal:
        // a forger cannot make us give up on the real reply.
        let Ok(reply) = strongroom_time::parse_reply(&src.key, &buf[..n], sent) else {
            continue;
        };
        let round_trip = i64::try_from(i4.duration_since(i1).as_millis()).unwrap_or(i64::MAX);
        let estimate = Estimate::new(&reply, round_trip, wall_ms());
        // Millisecond rounding can make a loopback round trip look a little negative.
        if !(-5..=MAX_DELAY_MS).contains(&estimate.delay_ms) {
            return Err(format!("round trip of {} ms", estimate.delay_ms));
        }
        return Ok((i4, estimate));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> TrustedTime {
        TrustedTime {
            sources: Vec::new(),
            bound_ms: 1000,
            max_age: Duration::from_secs(60),
            poll: Duration::from_secs(16),
            state: Mutex::new(State::default()),
        }
    }

    #[test]
    fn the_anchored_clock_ignores_the_wall_clock_and_never_goes_back() {
        let c = clock();
        assert!(!c.trusted(), "no vote yet");
        // Anchored an hour ahead of the wall clock: it reads that, and keeps counting.
        let hour = 3_600_000;
        c.state().anchor = Some((Instant::now(), wall_ms() + hour));
        c.state().last_vote = Some(Instant::now());
        assert!(c.trusted());
        let a = c.now().0;
        assert!((a as i64 - wall_ms() - hour).abs() < 1000);
        // A re-anchoring one second back (a leap second, a source stepping back): the clock
        // holds, so expiries computed from it stay in order.
        let expiry = UnixMillis(a).saturating_add(Duration::from_millis(500));
        c.state().anchor = Some((Instant::now(), wall_ms() + hour - 1000));
        let b = c.now();
        assert!(b.0 >= a, "never backwards");
        assert!(expiry > b, "an expiry set before is not reached early");
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now() >= b);
        // A vote older than max_age is not trusted.
        c.state().last_vote = Some(Instant::now() - Duration::from_secs(61));
        assert!(!c.trusted());
    }
}
