//! Trusted time, as pure functions: no sockets, no clock reads (callers pass timestamps).
//!
//! - [`NtpKey`]: a symmetric key as a chrony/ntpd key file line (`ID SHA256 HEX:...`).
//! - [`request`] / [`parse_reply`]: NTPv4 client-mode packets (RFC 5905) authenticated with
//!   the symmetric-key MAC that chrony and ntpd verify: key id, then `H(key || packet)`
//!   truncated to 20 bytes (SHA-256 or SHA-1). A reply counts only if its MAC verifies under
//!   the same key, it is a server-mode, synchronised reply, and it echoes our transmit
//!   timestamp (so it answers this request, not an earlier one replayed).
//! - [`Estimate`]: the server's time at the reply's arrival, from its timestamps and the round
//!   trip measured on our monotonic clock (RFC 5905 section 8, without our wall clock).
//! - [`vote`]: sources that disagree with the majority by more than a bound are voted out,
//!   as redundant clocks are; no majority, no time.
//!
//! It must not do I/O or read the clock.

use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Seconds from the NTP era (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// The NTP header.
const HEADER: usize = 48;
/// MAC length on the wire (chrony and ntpd truncate longer digests to this).
const MAC_LEN: usize = 20;

/// Why a reply or a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The key file line is not `ID TYPE HEX:...` (or `ID TYPE ASCII`) of a supported type.
    #[error("not a key line (`ID SHA256 HEX:...` or SHA1)")]
    BadKey,
    /// The reply is too short or carries no MAC.
    #[error("malformed reply")]
    Malformed,
    /// The MAC does not verify, or names another key.
    #[error("reply MAC does not verify")]
    BadMac,
    /// Not a server reply to our request (mode, or our transmit timestamp not echoed).
    #[error("not a reply to this request")]
    NotOurs,
    /// The server says it is not synchronised (leap indicator 3, stratum 0 or above 15).
    #[error("server not synchronised")]
    Unsynchronised,
    /// No majority of sources agrees within the bound.
    #[error("sources disagree: no majority within the bound")]
    NoMajority,
}

/// The MAC's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacAlgorithm {
    /// SHA-256, truncated to 20 bytes (chrony's `SHA256`).
    Sha256,
    /// SHA-1 (chrony's and ntpd's `SHA1`).
    Sha1,
}

/// A symmetric NTP key. The key bytes zeroize on drop and never print.
pub struct NtpKey {
    id: u32,
    algorithm: MacAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for NtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtpKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl NtpKey {
    /// Key `id` from a chrony/ntpd key file's text: a line `ID TYPE HEX:hex` (or `ID TYPE
    /// text`), `TYPE` `SHA256` or `SHA1`. Comments (`#`) and other ids are skipped.
    ///
    /// # Errors
    /// [`TimeError::BadKey`] if there is no such line or it does not parse.
    pub fn from_key_file(text: &str, id: u32) -> Result<Self, TimeError> {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut parts = line.split_whitespace();
            let (Some(lid), Some(kind), Some(value), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if lid.parse::<u32>().ok() != Some(id) {
                continue;
            }
            let algorithm = match kind.to_ascii_uppercase().as_str() {
                "SHA256" => MacAlgorithm::Sha256,
                "SHA1" => MacAlgorithm::Sha1,
                _ => return Err(TimeError::BadKey),
            };
            let key = match value.strip_prefix("HEX:") {
                Some(h) => hex::decode(h).map_err(|_| TimeError::BadKey)?,
                None => value
                    .strip_prefix("ASCII:")
                    .unwrap_or(value)
                    .as_bytes()
                    .to_vec(),
            };
            // Short keys are guessable from one packet (chrony warns below 80 bits).
            if key.len() < 10 {
                return Err(TimeError::BadKey);
            }
            return Ok(Self {
                id,
                algorithm,
                key: Zeroizing::new(key),
            });
        }
        Err(TimeError::BadKey)
    }

    /// Whether `other` holds the same secret (constant time).
    #[must_use]
    pub fn same_secret(&self, other: &NtpKey) -> bool {
        self.key.len() == other.key.len() && bool::from(self.key.ct_eq(&other.key))
    }

    /// The key id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    fn mac(&self, packet: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        match self.algorithm {
            MacAlgorithm::Sha256 => {
                let d = sha2::Sha256::new()
                    .chain_update(&*self.key)
                    .chain_update(packet)
                    .finalize();
                out.copy_from_slice(&d[..MAC_LEN]);
            }
            MacAlgorithm::Sha1 => {
                let d = sha1::Sha1::new()
                    .chain_update(&*self.key)
                    .chain_update(packet)
                    .finalize();
                out.copy_from_slice(&d);
            }
        }
        out
    }
}

/// An NTP timestamp: seconds since 1900 (32 bits) and a binary fraction (32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// From milliseconds since the Unix epoch.
    #[must_use]
    pub fn from_unix_millis(ms: u64) -> Self {
        let secs = ms / 1000 + NTP_UNIX_OFFSET;
        let frac = ((ms % 1000) << 32) / 1000;
        Self((secs << 32) | frac)
    }

    /// Milliseconds since the Unix epoch, in the NTP era (136-year cycle) that puts it nearest
    /// to `reference_ms`: correct past 2036 as long as the reference is within 68 years.
    #[must_use]
    pub fn to_unix_millis_near(self, reference_ms: i64) -> i64 {
        const ERA_MS: i64 = (1 << 32) * 1000;
        let era0 = self.to_unix_millis();
        let eras = (reference_ms - era0 + ERA_MS / 2).div_euclid(ERA_MS);
        era0 + eras * ERA_MS
    }

    /// Milliseconds since the Unix epoch (era 0; negative before 1970).
    #[must_use]
    pub fn to_unix_millis(self) -> i64 {
        let secs = i64::try_from(self.0 >> 32).unwrap_or(i64::MAX) - NTP_UNIX_OFFSET as i64;
        // Rounded to the nearest millisecond, so a conversion there and back is exact.
        let frac = i64::try_from(((self.0 & 0xffff_ffff) * 1000 + (1 << 31)) >> 32).unwrap_or(0);
        secs * 1000 + frac
    }
}

/// A client request sent at `transmit` (by the wall clock), authenticated with `key`: the
/// 48-byte header, the key id and the MAC.
#[must_use]
pub fn request(key: &NtpKey, transmit: NtpTimestamp) -> Vec<u8> {
    let mut p = vec![0u8; HEADER];
    // LI 0, version 4, mode 3 (client).
    p[0] = (4 << 3) | 3;
    p[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    let mac = key.mac(&p);
    p.extend_from_slice(&key.id.to_be_bytes());
    p.extend_from_slice(&mac);
    p
}

/// What a verified reply says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// When the server received the request (its clock).
    pub receive: NtpTimestamp,
    /// When the server sent the reply (its clock).
    pub transmit: NtpTimestamp,
    /// The server's stratum.
    pub stratum: u8,
}

/// Checks a reply to the request sent at `sent` under `key`.
///
/// # Errors
/// [`TimeError`] for anything that is not a verified, synchronised server reply echoing
/// `sent`.
pub fn parse_reply(key: &NtpKey, bytes: &[u8], sent: NtpTimestamp) -> Result<Reply, TimeError> {
    if bytes.len() != HEADER + 4 + MAC_LEN {
        return Err(TimeError::Malformed);
    }
    let (header, auth) = bytes.split_at(HEADER);
    let id = u32::from_be_bytes([auth[0], auth[1], auth[2], auth[3]]);
    let mac = key.mac(header);
    if id != key.id || !bool::from(mac.ct_eq(&auth[4..])) {
        return Err(TimeError::BadMac);
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[at..at + 8]);
        NtpTimestamp(u64::from_be_bytes(b))
    };
    let (leap, mode, stratum) = (header[0] >> 6, header[0] & 7, header[1]);
    if mode != 4 || word(24) != sent {
        return Err(TimeError::NotOurs);
    }
    if leap == 3 || stratum == 0 || stratum > 15 || word(40).0 == 0 {
        return Err(TimeError::Unsynchronised);
    }
    Ok(Reply {
        receive: word(32),
        transmit: word(40),
        stratum,
    })
}

/// What one exchange says the time was when the reply arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// The server's time when its reply reached us: its transmit time plus half the network
    /// round trip (milliseconds since the Unix epoch).
    pub time_ms: i64,
    /// The network round trip: our elapsed time less the server's processing time (ms).
    pub delay_ms: i64,
}

impl Estimate {
    /// From a verified reply and the round trip measured on our monotonic clock (request sent
    /// to reply received, ms). Our wall clock plays no part except choosing the NTP era
    /// (`reference_ms`, within 68 years of the truth).
    #[must_use]
    pub fn new(reply: &Reply, round_trip_ms: i64, reference_ms: i64) -> Self {
        let t3 = reply.transmit.to_unix_millis_near(reference_ms);
        // Differences of NTP timestamps are era-independent.
        let processing = reply.transmit.0.wrapping_sub(reply.receive.0);
        let processing_ms =
            i64::try_from((u128::from(processing) * 1000) >> 32).unwrap_or(i64::MAX);
        let delay_ms = round_trip_ms.saturating_sub(processing_ms);
        Self {
            time_ms: t3.saturating_add(delay_ms / 2),
            delay_ms,
        }
    }
}

/// The agreed value of `offsets` (one per responding source, of `configured` sources, all
/// referred to the same instant): the median of the largest group that agrees within
/// `bound_ms`, if that group is a strict majority of the configured sources. Returns the value
/// and which inputs were in the group.
///
/// # Errors
/// [`TimeError::NoMajority`].
pub fn vote(
    offsets: &[i64],
    configured: usize,
    bound_ms: i64,
) -> Result<(i64, Vec<bool>), TimeError> {
    let mut best: Option<Vec<bool>> = None;
    for &center in offsets {
        // Sources within the bound of this one's offset.
        let group: Vec<bool> = offsets
            .iter()
            .map(|o| (o - center).abs() <= bound_ms)
            .collect();
        let n = group.iter().filter(|g| **g).count();
        if best
            .as_ref()
            .is_none_or(|b| n > b.iter().filter(|g| **g).count())
        {
            best = Some(group);
        }
    }
    let group = best.ok_or(TimeError::NoMajority)?;
    let mut members: Vec<i64> = offsets
        .iter()
        .zip(&group)
        .filter_map(|(o, g)| g.then_some(*o))
        .collect();
    if members.len() * 2 <= configured {
        return Err(TimeError::NoMajority);
    }
    members.sort_unstable();
    Ok((members[members.len() / 2], group))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "# chrony key file\n1 SHA256 HEX:1b6e918762dd855f1c7450d41563c7aa48f1eba647049d2760772b973be93179\n2 SHA1 HEX:00112233445566778899aabbccddeeff00112233\n3 MD5 HEX:00112233445566778899\n4 SHA256 short\n";

    /// What a server that holds `key` answers to `req`, with its clock at `server_ms`.
    fn serve(key: &NtpKey, req: &[u8], server_ms: u64, leap: u8, stratum: u8) -> Vec<u8> {
        let mut p = vec![0u8; HEADER];
        p[0] = (leap << 6) | (4 << 3) | 4;
        p[1] = stratum;
        p[24..32].copy_from_slice(&req[40..48]);
        p[32..40].copy_from_slice(&NtpTimestamp::from_unix_millis(server_ms).0.to_be_bytes());
        p[40..48].copy_from_slice(
            &NtpTimestamp::from_unix_millis(server_ms + 1)
                .0
                .to_be_bytes(),
        );
        let mac = key.mac(&p);
        p.extend_from_slice(&key.id.to_be_bytes());
        p.extend_from_slice(&mac);
        p
    }

    #[test]
    fn key_file_lines_parse_as_chrony_writes_them() {
        let k = NtpKey::from_key_file(KEYS, 1).unwrap();
        assert_eq!((k.id(), k.algorithm), (1, MacAlgorithm::Sha256));
        assert_eq!(
            NtpKey::from_key_file(KEYS, 2).unwrap().algorithm,
            MacAlgorithm::Sha1
        );
        assert_eq!(
            NtpKey::from_key_file(KEYS, 3).unwrap_err(),
            TimeError::BadKey,
            "MD5 refused"
        );
        assert_eq!(
            NtpKey::from_key_file(KEYS, 4).unwrap_err(),
            TimeError::BadKey,
            "short key"
        );
        assert_eq!(
            NtpKey::from_key_file(KEYS, 9).unwrap_err(),
            TimeError::BadKey
        );
        assert!(!format!("{k:?}").contains("1b6e"), "the key never prints");
    }

    #[test]
    fn timestamps_convert_both_ways() {
        let ms = 1_764_000_000_123;
        let t = NtpTimestamp::from_unix_millis(ms);
        assert_eq!(t.0 >> 32, ms / 1000 + NTP_UNIX_OFFSET);
        assert_eq!(t.to_unix_millis(), i64::try_from(ms).unwrap());
        // Past the 2036 rollover the seconds wrap; the era comes from a rough reference.
        let after_2036: i64 = 2_200_000_000_000;
        let wrapped = NtpTimestamp::from_unix_millis(u64::try_from(after_2036).unwrap());
        assert_ne!(wrapped.to_unix_millis(), after_2036);
        assert_eq!(
            wrapped.to_unix_millis_near(after_2036 - 86_400_000),
            after_2036
        );
        assert_eq!(
            t.to_unix_millis_near(i64::try_from(ms).unwrap() + 3_600_000),
            i64::try_from(ms).unwrap()
        );
    }

    #[test]
    fn a_verified_reply_gives_offset_and_delay() {
        for id in [1, 2] {
            let key = NtpKey::from_key_file(KEYS, id).unwrap();
            // Any 64 bits identify the request (the server only echoes them).
            let sent = NtpTimestamp(0x1234_5678_9abc_def0);
            let req = request(&key, sent);
            assert_eq!(req.len(), 72);
            assert_eq!(req[0], 0x23, "version 4, client");
            // The server receives at 1_005_020 and answers 1 ms later; our clock measured a
            // 41 ms round trip: 40 ms on the network, so the reply left 20 ms ago.
            let reply = parse_reply(&key, &serve(&key, &req, 1_005_020, 0, 2), sent).unwrap();
            let e = Estimate::new(&reply, 41, 1_000_000);
            assert_eq!((e.time_ms, e.delay_ms), (1_005_041, 40));
        }
    }

    #[test]
    fn forged_replayed_and_unsynchronised_replies_are_refused() {
        let key = NtpKey::from_key_file(KEYS, 1).unwrap();
        let other = NtpKey::from_key_file(KEYS, 2).unwrap();
        let sent = NtpTimestamp::from_unix_millis(1_000_000);
        let req = request(&key, sent);
        let good = serve(&key, &req, 1_000_000, 0, 2);
        // Another key's MAC; a flipped bit anywhere; a truncated packet.
        assert_eq!(
            parse_reply(&key, &serve(&other, &req, 1, 0, 2), sent),
            Err(TimeError::BadMac)
        );
        for i in [1, 30, 45, 60] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert_eq!(
                parse_reply(&key, &bad, sent),
                Err(TimeError::BadMac),
                "byte {i}"
            );
        }
        assert_eq!(
            parse_reply(&key, &good[..48], sent),
            Err(TimeError::Malformed)
        );
        // A genuine reply to an earlier request (replayed).
        let earlier = NtpTimestamp::from_unix_millis(999_000);
        assert_eq!(parse_reply(&key, &good, earlier), Err(TimeError::NotOurs));
        // Alarm leap indicator, kiss-o'-death stratum.
        assert_eq!(
            parse_reply(&key, &serve(&key, &req, 1, 3, 2), sent),
            Err(TimeError::Unsynchronised)
        );
        assert_eq!(
            parse_reply(&key, &serve(&key, &req, 1, 0, 0), sent),
            Err(TimeError::Unsynchronised)
        );
        assert!(parse_reply(&key, &good, sent).is_ok());
    }

    #[test]
    fn the_majority_decides_and_liars_are_voted_out() {
        // Two honest sources and one an hour ahead.
        let (offset, group) = vote(&[10, 12, 3_600_000], 3, 1000).unwrap();
        assert_eq!(offset, 12);
        assert_eq!(group, vec![true, true, false]);
        // One honest, one liar: no majority of two.
        assert_eq!(vote(&[10, 3_600_000], 2, 1000), Err(TimeError::NoMajority));
        // Only one of three configured sources answers: not a majority.
        assert_eq!(vote(&[10], 3, 1000), Err(TimeError::NoMajority));
        // A single configured source is its own majority.
        assert_eq!(vote(&[-7], 1, 1000).unwrap().0, -7);
        assert_eq!(vote(&[], 1, 1000), Err(TimeError::NoMajority));
    }
}
