//! Canonical encodings. Changing anything here breaks every existing chain: add a new version
//! label instead.

use sha2::{Digest, Sha256};
use strongroom_core::record::{AuditBody, AuditEvent, AuditRecord, Outcome, SignedHead};
use strongroom_core::{RequestId, UnixMillis, VaultId};

const GENESIS_LABEL: &[u8] = b"strongroom/audit/genesis/v1";
const RECORD_LABEL: &[u8] = b"strongroom/audit/record/v2";
const EVENT_LABEL: &[u8] = b"strongroom/audit/event/v1";
const HEAD_LABEL: &[u8] = b"strongroom/audit/head/v1";
const SLOT_MAGIC: &[u8; 8] = b"SRHEAD01";

/// Length of one head slot in the head file.
pub const HEAD_SLOT_LEN: usize = 8 + 16 + 8 + 32 + 8 + 64;

/// The `prev_hash` of record 1: binds the chain to its vault.
#[must_use]
pub fn genesis_hash(vault_id: &VaultId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GENESIS_LABEL);
    h.update(vault_id.as_bytes());
    h.finalize().into()
}

/// Longest string an event field may carry: longer ones are cut by the server first, and a
/// stored body claiming more is corrupt.
const MAX_FIELD: usize = 4096;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_FIELD)];
    // `s.len() <= MAX_FIELD`, so the cast is exact.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// The canonical bytes of an event, without its time (which the record carries in the
/// clear). This is what the database stores sealed, and what the event digest covers.
#[must_use]
pub fn encode_event(e: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(e.request_id.as_bytes());
    put_str(&mut out, &e.actor);
    put_opt(&mut out, e.source.as_deref());
    put_str(&mut out, &e.operation);
    put_opt(&mut out, e.domain.as_deref());
    put_opt(&mut out, e.key.as_deref());
    out.push(e.outcome.code());
    put_opt(&mut out, e.code.as_deref());
    out.extend_from_slice(&e.count.to_be_bytes());
    // Appended only when present, so events without one keep their encoding (and digest).
    if let Some(detail) = &e.detail {
        out.push(1);
        put_long(&mut out, detail);
    }
    out
}

/// Longest detail an event may carry (a decoded transaction's intent).
const MAX_DETAIL: usize = 16 * 1024;

fn put_long(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_DETAIL)];
    // `s.len() <= MAX_DETAIL`, so the cast is exact.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Reads [`encode_event`]'s bytes back; `None` unless they are exactly one canonical event.
#[must_use]
pub fn decode_event(time: UnixMillis, bytes: &[u8]) -> Option<AuditEvent> {
    let mut r = Reader(bytes);
    let event = AuditEvent {
        time,
        request_id: RequestId::from_bytes(r.take()?),
        actor: r.str()?,
        source: r.opt()?,
        operation: r.str()?,
        domain: r.opt()?,
        key: r.opt()?,
        outcome: Outcome::from_code(r.take::<1>()?[0])?,
        code: r.opt()?,
        count: u32::from_be_bytes(r.take()?),
        detail: None,
    };
    let event = AuditEvent {
        detail: match r.take::<1>() {
            None => None,
            Some([1]) => Some(r.long()?),
            Some(_) => return None,
        },
        ..event
    };
    // Trailing bytes would let two encodings mean one event.
    r.0.is_empty().then_some(event)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn str(&mut self) -> Option<String> {
        let len = usize::try_from(u32::from_be_bytes(self.take()?)).ok()?;
        if len > MAX_FIELD || len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }

    fn long(&mut self) -> Option<String> {
        let len = usize::try_from(u32::from_be_bytes(self.take()?)).ok()?;
        if len > MAX_DETAIL || len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match self.take::<1>()?[0] {
            0 => Some(None),
            1 => self.str().map(Some),
            _ => None,
        }
    }
}

/// The digest the chain commits to for an event: SHA-256 over a label and
/// [`encode_event`]. It reveals nothing practical about the event, because the event holds
/// its random request id (122 random bits).
#[must_use]
pub fn event_digest(e: &AuditEvent) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(EVENT_LABEL);
    h.update(encode_event(e));
    h.finalize().into()
}

/// The digest of a body: computed from the event when it is open, as stored otherwise.
#[must_use]
pub fn body_digest(body: &AuditBody) -> [u8; 32] {
    match body {
        AuditBody::Open(e) => event_digest(e),
        AuditBody::Sealed { digest, .. } => *digest,
    }
}

/// The hash of a record at `seq` following `prev_hash`, made at `time`, whose event has
/// `digest`.
#[must_use]
pub fn record_hash(
    seq: u64,
    prev_hash: &[u8; 32],
    time: UnixMillis,
    digest: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RECORD_LABEL);
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(time.0.to_be_bytes());
    h.update(digest);
    h.finalize().into()
}

/// The message the audit key signs for a head.
#[must_use]
pub fn head_message(vault_id: &VaultId, seq: u64, hash: &[u8; 32], time: UnixMillis) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEAD_LABEL.len() + 16 + 8 + 32 + 8);
    m.extend_from_slice(HEAD_LABEL);
    m.extend_from_slice(vault_id.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&time.0.to_be_bytes());
    m
}

/// A head as one fixed-size slot of the head file.
#[must_use]
pub fn encode_head_slot(head: &SignedHead) -> [u8; HEAD_SLOT_LEN] {
    let mut out = [0u8; HEAD_SLOT_LEN];
    out[..8].copy_from_slice(SLOT_MAGIC);
    out[8..24].copy_from_slice(head.vault_id.as_bytes());
    out[24..32].copy_from_slice(&head.seq.to_be_bytes());
    out[32..64].copy_from_slice(&head.hash);
    out[64..72].copy_from_slice(&head.time.0.to_be_bytes());
    out[72..].copy_from_slice(&head.signature);
    out
}

/// Parses a head slot; `None` for an empty or torn slot (its signature is checked separately).
#[must_use]
pub fn decode_head_slot(slot: &[u8]) -> Option<SignedHead> {
    if slot.len() != HEAD_SLOT_LEN || &slot[..8] != SLOT_MAGIC {
        return None;
    }
    let mut vid = [0u8; 16];
    vid.copy_from_slice(&slot[8..24]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&slot[24..32]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&slot[32..64]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&slot[64..72]);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&slot[72..]);
    Some(SignedHead {
        vault_id: VaultId::from_bytes(vid),
        seq: u64::from_be_bytes(seq),
        hash,
        time: UnixMillis(u64::from_be_bytes(time)),
        signature,
    })
}

/// The tail of a chain, which places new events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    vault_id: VaultId,
    seq: u64,
    hash: [u8; 32],
}

impl Chain {
    /// A chain positioned after `tail` (or empty when `tail` is `None`).
    #[must_use]
    pub fn resume(vault_id: VaultId, tail: Option<(u64, [u8; 32])>) -> Self {
        match tail {
            Some((seq, hash)) => Self {
                vault_id,
                seq,
                hash,
            },
            None => Self {
                vault_id,
                seq: 0,
                hash: genesis_hash(&vault_id),
            },
        }
    }

    /// Places `event` after the current tail and advances the tail.
    pub fn append(&mut self, event: AuditEvent) -> AuditRecord {
        let seq = self.seq + 1;
        let hash = record_hash(seq, &self.hash, event.time, &event_digest(&event));
        let record = AuditRecord {
            seq,
            prev_hash: self.hash,
            body: AuditBody::Open(event),
            hash,
        };
        self.seq = seq;
        self.hash = hash;
        record
    }

    /// Sequence number of the newest record (0 when empty).
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Hash of the newest record (the genesis hash when empty).
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The vault this chain belongs to.
    #[must_use]
    pub fn vault_id(&self) -> VaultId {
        self.vault_id
    }
}
