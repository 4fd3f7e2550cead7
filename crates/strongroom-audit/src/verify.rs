//! Offline verification of an audit chain.

use ed25519_dalek::{Signature, VerifyingKey};
use strongroom_core::VaultId;
use strongroom_core::record::{AuditRecord, SignedHead};

use crate::encoding::{body_digest, genesis_hash, head_message, record_hash};

/// Why a chain failed verification. `seq` always names the first record that is wrong or
/// missing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A record is missing: the sequence jumps (deleted or reordered records).
    #[error("record {seq}: missing (found record {found} in its place)")]
    Missing {
        /// The expected sequence number.
        seq: u64,
        /// The sequence number found instead.
        found: u64,
    },
    /// A record does not link to its predecessor.
    #[error("record {seq}: previous-hash link broken")]
    BrokenLink {
        /// The record.
        seq: u64,
    },
    /// A record's content does not match its hash (edited).
    #[error("record {seq}: content does not match its hash (edited)")]
    Edited {
        /// The record.
        seq: u64,
    },
    /// A signed head does not match the record it covers.
    #[error("record {seq}: differs from the signed head that covers it")]
    HeadMismatch {
        /// The record.
        seq: u64,
    },
    /// A signed head covers records that are not there (tail truncated).
    #[error("record {seq}: missing; a signed head covers up to record {head_seq} (tail truncated)")]
    Truncated {
        /// The first missing record.
        seq: u64,
        /// The head's sequence number.
        head_seq: u64,
    },
    /// A head's signature does not verify under the audit key, or names another vault.
    #[error("signed head at record {seq}: bad signature")]
    BadHeadSignature {
        /// The head's sequence number.
        seq: u64,
    },
    /// A record's event could not be opened where every event must be readable (an export).
    #[error("record {seq}: its event is sealed or could not be opened")]
    Unopened {
        /// The record.
        seq: u64,
    },
    /// The audit public key is not a valid Ed25519 key.
    #[error("the audit public key is invalid")]
    BadAuditKey,
}

impl VerifyError {
    /// The first bad (or missing) record's sequence number, where there is one.
    #[must_use]
    pub fn first_bad_record(&self) -> Option<u64> {
        match self {
            VerifyError::Missing { seq, .. }
            | VerifyError::BrokenLink { seq }
            | VerifyError::Edited { seq }
            | VerifyError::HeadMismatch { seq }
            | VerifyError::Truncated { seq, .. }
            | VerifyError::BadHeadSignature { seq }
            | VerifyError::Unopened { seq } => Some(*seq),
            VerifyError::BadAuditKey => None,
        }
    }
}

/// Whether `head` is signed by `audit_key` for `vault_id`.
#[must_use]
pub fn verify_head_signature(head: &SignedHead, vault_id: &VaultId, audit_key: &[u8; 32]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(audit_key) else {
        return false;
    };
    head.vault_id == *vault_id
        && vk
            .verify_strict(
                &head_message(&head.vault_id, head.seq, &head.hash, head.time),
                &Signature::from_bytes(&head.signature),
            )
            .is_ok()
}

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Number of records checked.
    pub records: u64,
    /// How many of them were checked through their stored digest only, because their events
    /// are sealed under the storage key (layered encryption): `audit export` opens them.
    pub sealed: u64,
    /// Number of signed heads checked.
    pub heads: u64,
    /// The newest record covered by a signed head (0 if none).
    pub signed_through: u64,
    /// That record's hash: what an auditor records outside the node to detect a later rollback.
    pub newest_head_hash: Option<[u8; 32]>,
}

/// Streams a chain through verification: feed records in order with [`Verifier::record`],
/// then call [`Verifier::finish`] with the signed heads.
pub struct Verifier {
    expected_seq: u64,
    prev_hash: [u8; 32],
    // Hashes of the records that signed heads refer to, checked as records stream past.
    wanted: std::collections::BTreeMap<u64, [u8; 32]>,
    sealed: u64,
    require_open: bool,
}

impl Verifier {
    /// Starts verifying the chain of `vault_id`, whose heads are signed by `audit_key`.
    /// `heads` are all signed heads known (from the database and the head file). A vault that
    /// was never initialised has no audit key and must have no heads.
    ///
    /// # Errors
    /// [`VerifyError::BadAuditKey`] or [`VerifyError::BadHeadSignature`] for any bad head.
    pub fn new(
        vault_id: VaultId,
        audit_key: Option<[u8; 32]>,
        heads: &[SignedHead],
    ) -> Result<Self, VerifyError> {
        let audit_key = match (audit_key, heads.first()) {
            (Some(k), _) if VerifyingKey::from_bytes(&k).is_ok() => k,
            (None, None) => [0u8; 32],
            (None, Some(h)) => return Err(VerifyError::BadHeadSignature { seq: h.seq }),
            (Some(_), _) => return Err(VerifyError::BadAuditKey),
        };
        let mut wanted = std::collections::BTreeMap::new();
        for head in heads {
            if !verify_head_signature(head, &vault_id, &audit_key) {
                return Err(VerifyError::BadHeadSignature { seq: head.seq });
            }
            // Two validly signed heads for one position can only differ if the key signed a
            // forked chain; treat that as a mismatch at that record.
            if let Some(prev) = wanted.insert(head.seq, head.hash)
                && prev != head.hash
            {
                return Err(VerifyError::HeadMismatch { seq: head.seq });
            }
        }
        Ok(Self {
            expected_seq: 1,
            prev_hash: genesis_hash(&vault_id),
            wanted,
            sealed: 0,
            require_open: false,
        })
    }

    /// Refuses records whose events are not open ([`VerifyError::Unopened`]): for exports,
    /// which must show the auditor every event.
    #[must_use]
    pub fn require_open(mut self) -> Self {
        self.require_open = true;
        self
    }

    /// Checks the next record.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn record(&mut self, r: &AuditRecord) -> Result<(), VerifyError> {
        let seq = self.expected_seq;
        if r.seq != seq {
            return Err(VerifyError::Missing { seq, found: r.seq });
        }
        if r.prev_hash != self.prev_hash {
            return Err(VerifyError::BrokenLink { seq });
        }
        if r.body.event().is_none() {
            if self.require_open {
                return Err(VerifyError::Unopened { seq });
            }
            self.sealed += 1;
        }
        let computed = record_hash(seq, &self.prev_hash, r.body.time(), &body_digest(&r.body));
        if computed != r.hash {
            return Err(VerifyError::Edited { seq });
        }
        if let Some(h) = self.wanted.get(&seq)
            && *h != computed
        {
            return Err(VerifyError::HeadMismatch { seq });
        }
        self.prev_hash = computed;
        self.expected_seq += 1;
        Ok(())
    }

    /// Completes verification once every record has been fed.
    ///
    /// # Errors
    /// [`VerifyError::Truncated`] if a signed head covers records that never arrived.
    pub fn finish(self) -> Result<Report, VerifyError> {
        let last = self.expected_seq - 1;
        let newest = self.wanted.iter().next_back().map(|(s, h)| (*s, *h));
        let signed_through = newest.map_or(0, |(s, _)| s);
        if signed_through > last {
            return Err(VerifyError::Truncated {
                seq: last + 1,
                head_seq: signed_through,
            });
        }
        Ok(Report {
            newest_head_hash: newest.map(|(_, h)| h),
            records: last,
            sealed: self.sealed,
            heads: u64::try_from(self.wanted.len()).unwrap_or(u64::MAX),
            signed_through,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Chain;
    use ed25519_dalek::Signer;
    use strongroom_core::record::{AuditBody, AuditEvent, Outcome};
    use strongroom_core::{RequestId, UnixMillis};

    fn event(i: u8) -> AuditEvent {
        AuditEvent {
            time: UnixMillis(1_700_000_000_000 + u64::from(i)),
            request_id: RequestId::from_random([i; 16]),
            actor: "root:x".into(),
            source: Some("127.0.0.1".into()),
            operation: "key.sign".into(),
            domain: None,
            key: Some(format!("k{i}")),
            outcome: Outcome::Granted,
            code: None,
            count: 1,
            detail: None,
        }
    }

    struct Fixture {
        vid: VaultId,
        key: ed25519_dalek::SigningKey,
        records: Vec<AuditRecord>,
        heads: Vec<SignedHead>,
    }

    fn fixture(n: u8) -> Fixture {
        let vid = VaultId::from_random([9; 16]);
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut chain = Chain::resume(vid, None);
        let mut records = vec![];
        let mut heads = vec![];
        for i in 1..=n {
            records.push(chain.append(event(i)));
            if i % 3 == 0 || i == n {
                let time = UnixMillis(u64::from(i));
                let sig = key
                    .sign(&head_message(&vid, chain.seq(), &chain.hash(), time))
                    .to_bytes();
                heads.push(SignedHead {
                    vault_id: vid,
                    seq: chain.seq(),
                    hash: chain.hash(),
                    time,
                    signature: sig,
                });
            }
        }
        Fixture {
            vid,
            key,
            records,
            heads,
        }
    }

    fn check(
        f: &Fixture,
        records: &[AuditRecord],
        heads: &[SignedHead],
    ) -> Result<Report, VerifyError> {
        let mut v = Verifier::new(f.vid, Some(f.key.verifying_key().to_bytes()), heads)?;
        for r in records {
            v.record(r)?;
        }
        v.finish()
    }

    #[test]
    fn intact_chain_verifies() {
        let f = fixture(10);
        let report = check(&f, &f.records, &f.heads).unwrap();
        assert_eq!(
            report,
            Report {
                records: 10,
                sealed: 0,
                heads: 4,
                signed_through: 10,
                newest_head_hash: Some(f.records[9].hash),
            }
        );
    }

    #[test]
    fn edit_delete_reorder_truncate_are_named() {
        let f = fixture(10);
        let mut edited = f.records.clone();
        edited[4].body = AuditBody::Open(AuditEvent {
            outcome: Outcome::Denied,
            ..event(5)
        });
        assert_eq!(
            check(&f, &edited, &f.heads),
            Err(VerifyError::Edited { seq: 5 })
        );

        let mut rehashed = f.records.clone();
        let changed = AuditEvent {
            key: None,
            ..event(5)
        };
        rehashed[4].hash = record_hash(
            5,
            &rehashed[4].prev_hash,
            changed.time,
            &crate::event_digest(&changed),
        );
        rehashed[4].body = AuditBody::Open(changed);
        assert_eq!(
            check(&f, &rehashed, &f.heads),
            Err(VerifyError::BrokenLink { seq: 6 })
        );

        let mut deleted = f.records.clone();
        deleted.remove(6);
        assert_eq!(
            check(&f, &deleted, &f.heads),
            Err(VerifyError::Missing { seq: 7, found: 8 })
        );

        let mut swapped = f.records.clone();
        swapped.swap(2, 3);
        assert_eq!(
            check(&f, &swapped, &f.heads)
                .unwrap_err()
                .first_bad_record(),
            Some(3)
        );

        // Cutting the tail with its heads is caught by any surviving newer head (the head file).
        let cut = &f.records[..7];
        assert_eq!(
            check(&f, cut, &f.heads),
            Err(VerifyError::Truncated {
                seq: 8,
                head_seq: 10
            })
        );
        assert!(
            check(&f, cut, &f.heads[..2]).is_ok(),
            "without a newer head the cut is invisible"
        );
    }

    fn sealed(r: &AuditRecord) -> AuditRecord {
        AuditRecord {
            body: AuditBody::Sealed {
                time: r.body.time(),
                digest: body_digest(&r.body),
            },
            ..r.clone()
        }
    }

    #[test]
    fn sealed_events_verify_through_their_digests_but_not_in_an_export() {
        let f = fixture(6);
        let mut mixed: Vec<_> = f.records.clone();
        for r in mixed.iter_mut().skip(1).step_by(2) {
            *r = sealed(r);
        }
        let report = check(&f, &mixed, &f.heads).unwrap();
        assert_eq!((report.records, report.sealed), (6, 3));

        let mut v = Verifier::new(f.vid, Some(f.key.verifying_key().to_bytes()), &f.heads)
            .unwrap()
            .require_open();
        v.record(&mixed[0]).unwrap();
        assert_eq!(v.record(&mixed[1]), Err(VerifyError::Unopened { seq: 2 }));

        // The digest and the clear time are both under the hash.
        let mut bad_digest = mixed.clone();
        if let AuditBody::Sealed { digest, .. } = &mut bad_digest[3].body {
            digest[0] ^= 1;
        }
        assert_eq!(
            check(&f, &bad_digest, &f.heads),
            Err(VerifyError::Edited { seq: 4 })
        );
        let mut bad_time = mixed;
        if let AuditBody::Sealed { time, .. } = &mut bad_time[3].body {
            time.0 += 1;
        }
        assert_eq!(
            check(&f, &bad_time, &f.heads),
            Err(VerifyError::Edited { seq: 4 })
        );
    }

    #[test]
    fn events_encode_canonically() {
        let e = AuditEvent {
            domain: Some("d".into()),
            code: Some("quorum_required".into()),
            source: None,
            count: 7,
            ..event(4)
        };
        // A detail is appended, and an event without one keeps its old encoding.
        let with_detail = AuditEvent {
            detail: Some(r#"{"rule":"allow-small"}"#.into()),
            ..e.clone()
        };
        let longer = crate::encode_event(&with_detail);
        assert!(longer.starts_with(&crate::encode_event(&e)));
        assert_eq!(
            crate::decode_event(e.time, &longer),
            Some(with_detail.clone())
        );
        assert_ne!(crate::event_digest(&e), crate::event_digest(&with_detail));
        let bytes = crate::encode_event(&e);
        assert_eq!(crate::decode_event(e.time, &bytes), Some(e.clone()));
        // Trailing bytes, truncation, a bad option tag and a bad outcome are all refused.
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(crate::decode_event(e.time, &longer), None);
        for cut in 0..bytes.len() {
            assert_eq!(
                crate::decode_event(e.time, &bytes[..cut]),
                None,
                "cut at {cut}"
            );
        }
        let mut bad_tag = bytes.clone();
        bad_tag[16 + 4 + e.actor.len()] = 2;
        assert_eq!(crate::decode_event(e.time, &bad_tag), None);
        // The digest separates events that differ anywhere.
        let other = AuditEvent {
            count: 8,
            ..e.clone()
        };
        assert_ne!(crate::event_digest(&e), crate::event_digest(&other));
    }

    #[test]
    fn forged_or_foreign_heads_are_refused() {
        let f = fixture(6);
        let mut forged = f.heads.clone();
        forged[0].hash[0] ^= 1;
        assert_eq!(
            check(&f, &f.records, &forged),
            Err(VerifyError::BadHeadSignature { seq: 3 })
        );
        let mut foreign = f.heads.clone();
        foreign[1].vault_id = VaultId::from_random([1; 16]);
        assert!(check(&f, &f.records, &foreign).is_err());
    }

    #[test]
    fn head_slots_round_trip() {
        let f = fixture(3);
        let slot = crate::encode_head_slot(&f.heads[0]);
        assert_eq!(crate::decode_head_slot(&slot).unwrap(), f.heads[0]);
        assert!(crate::decode_head_slot(&[0u8; crate::HEAD_SLOT_LEN]).is_none());
    }
}
