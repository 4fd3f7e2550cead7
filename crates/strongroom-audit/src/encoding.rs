//! Canonical encodings. Changing anything here breaks every existing chain: add a new version
//! label instead.

use sha2::{Digest, Sha256};
use strongroom_core::record::{AuditEvent, AuditRecord, SignedHead};
use strongroom_core::{UnixMillis, VaultId};

const GENESIS_LABEL: &[u8] = b"strongroom/audit/genesis/v1";
const RECORD_LABEL: &[u8] = b"strongroom/audit/record/v1";
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

fn put_str(h: &mut Sha256, s: &str) {
    // Lengths are u32; audit strings are short, and anything longer is cut by the server first.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            put_str(h, s);
        }
    }
}

/// The hash of a record at `seq` following `prev_hash`.
#[must_use]
pub fn record_hash(seq: u64, prev_hash: &[u8; 32], e: &AuditEvent) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RECORD_LABEL);
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(e.time.0.to_be_bytes());
    h.update(e.request_id.as_bytes());
    put_str(&mut h, &e.actor);
    put_opt(&mut h, e.source.as_deref());
    put_str(&mut h, &e.operation);
    put_opt(&mut h, e.domain.as_deref());
    put_opt(&mut h, e.key.as_deref());
    h.update([e.outcome.code()]);
    put_opt(&mut h, e.code.as_deref());
    h.update(e.count.to_be_bytes());
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
        let hash = record_hash(seq, &self.hash, &event);
        let record = AuditRecord {
            seq,
            prev_hash: self.hash,
            event,
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
