//! Rekey: a new root key and new shares, authorised by a threshold of the current shares.
//!
//! Three steps, all in memory on one node until the last: the current shares authorise; the
//! new shares are issued; a threshold of the new shares is submitted back (so nobody commits
//! to shares that were lost on the way out). Only then is the new seal persisted, with every
//! domain master key re-wrapped under the new root, in one transaction. A crash, a seal or a
//! cancel before that leaves the current shares working and the new ones worthless.

use std::sync::Arc;

use strongroom_core::DomainId;
use strongroom_core::record::DomainRecord;
use strongroom_crypto::{RootKey, Share};
use zeroize::Zeroizing;

use super::{Alternate, Keystore, Unsealed, wrap_root};
use crate::Error;
use crate::binding::domain_record_aad;
use crate::seal::{RootEpoch, RootWrapper, ShamirConfig, ShamirSeal, StoredSeal, base_aad};

/// A rekey in progress on this node.
pub(super) struct RekeyState {
    nonce: [u8; 16],
    target: ShamirSeal,
    phase: Phase,
    // What each prepare made (a commit may be rebuilt): when one is seen persisted, this
    // node moves to the new root instead of sealing.
    prepared: Vec<RekeyCommit>,
}

enum Phase {
    /// Collecting current shares.
    Authorising(Vec<Share>),
    /// New shares issued; collecting them back.
    Verifying {
        root: RootKey,
        config: ShamirConfig,
        pending: Vec<Share>,
    },
    /// A threshold of the new shares came back: ready to commit.
    Verified { root: RootKey, config: ShamirConfig },
}

/// Where a rekey stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekeyStatus {
    /// Names this attempt; every share submitted must name it.
    pub nonce: String,
    /// `authorise` (current shares wanted), `verify` (new shares wanted back) or `commit`.
    pub phase: &'static str,
    /// Shares accepted so far in this phase.
    pub progress: u8,
    /// Shares this phase needs.
    pub required: u8,
    /// The new share count.
    pub shares: u8,
    /// The new threshold.
    pub threshold: u8,
}

/// What submitting a share did.
pub struct RekeyStep {
    /// The attempt after this share.
    pub status: RekeyStatus,
    /// The new shares, once, when the current shares reached their threshold.
    pub new_shares: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for RekeyStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RekeyStep")
            .field("status", &self.status)
            .field("new_shares", &self.new_shares.len())
            .finish()
    }
}

/// What a verified rekey persists, in one transaction with compare-and-swap on `from`.
#[derive(Clone, Debug)]
pub struct RekeyCommit {
    /// The seal configuration replaced.
    pub from: Vec<u8>,
    /// The new one (new commitments, epoch, sealed derivation base, token wrap).
    pub to: Vec<u8>,
    /// The new epoch.
    pub epoch: u32,
    /// Every live domain: its id, its wrapped master key as read, and as re-wrapped.
    pub wraps: Vec<(DomainId, Vec<u8>, Vec<u8>)>,
    /// Every live domain in a rotation: the same for its retiring master key.
    pub retiring_wraps: Vec<(DomainId, Vec<u8>, Vec<u8>)>,
}

fn lock(u: &Unsealed) -> std::sync::MutexGuard<'_, Option<RekeyState>> {
    u.rekey
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Keystore {
    /// Starts a rekey to `target` shares. One at a time per node.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::ShareParameters`], [`Error::RekeyInProgress`], entropy.
    pub fn rekey_start(&self, target: ShamirSeal) -> Result<RekeyStatus, Error> {
        if target.threshold == 0 || target.threshold > target.shares {
            return Err(Error::ShareParameters);
        }
        let u = self.unsealed()?;
        let mut slot = lock(&u);
        if slot.is_some() {
            return Err(Error::RekeyInProgress);
        }
        let mut nonce = [0u8; 16];
        self.entropy
            .fill(&mut nonce)
            .map_err(|_| Error::Crypto(strongroom_crypto::Error::Entropy))?;
        let state = RekeyState {
            nonce,
            target,
            phase: Phase::Authorising(vec![]),
            prepared: Vec::new(),
        };
        let status = with_required(&u, &state);
        *slot = Some(state);
        Ok(status)
    }

    /// The rekey in progress on this node, if any.
    #[must_use]
    pub fn rekey_status(&self) -> Option<RekeyStatus> {
        let u = self.unsealed().ok()?;
        let slot = lock(&u);
        slot.as_ref().map(|s| with_required(&u, s))
    }

    /// Abandons the rekey in progress (any new shares issued become worthless). Whether one
    /// was. The caller must not cancel while a commit it prepared may still land.
    pub fn rekey_cancel(&self) -> bool {
        let Ok(u) = self.unsealed() else {
            return false;
        };
        *u.alternate_kek
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        lock(&u).take().is_some()
    }

    /// Submits one share to the rekey named by `nonce`: a current share while authorising,
    /// a new one while verifying — and, once verified, a new one again to ask for the commit
    /// to be retried. A refused share changes nothing.
    ///
    /// # Errors
    /// [`Error::NoRekey`] (none, or another nonce), the share errors of unseal,
    /// [`Error::UnsealFailed`] if the shares combine to the wrong key (progress reset),
    /// entropy.
    pub fn rekey_submit(&self, nonce: &str, text: &str) -> Result<RekeyStep, Error> {
        let u = self.unsealed()?;
        let mut slot = lock(&u);
        let state = slot
            .as_mut()
            .filter(|s| hex::encode(s.nonce) == nonce)
            .ok_or(Error::NoRekey)?;
        let mut new_shares = Vec::new();
        match &mut state.phase {
            Phase::Authorising(pending) => {
                let current = u.sealed().config.shamir.clone();
                let share = current.check_share(&u.vault_id, text)?;
                if pending.iter().any(|p| p.index() == share.index()) {
                    return Err(Error::DuplicateShare);
                }
                pending.push(share);
                if pending.len() >= usize::from(current.threshold) {
                    let shares = std::mem::take(pending);
                    let root = strongroom_crypto::combine(current.threshold, &shares)
                        .map_err(|_| Error::UnsealFailed)?;
                    if !root.matches_check(&u.root.check_value()) {
                        return Err(Error::UnsealFailed);
                    }
                    let next = RootKey::generate(self.entropy.as_ref())?;
                    let (config, strings) =
                        state
                            .target
                            .split(&u.vault_id, &next, self.entropy.as_ref())?;
                    new_shares = strings;
                    state.phase = Phase::Verifying {
                        root: next,
                        config,
                        pending: vec![],
                    };
                }
            }
            Phase::Verifying {
                root,
                config,
                pending,
            } => {
                let share = config.check_share(&u.vault_id, text)?;
                if pending.iter().any(|p| p.index() == share.index()) {
                    return Err(Error::DuplicateShare);
                }
                pending.push(share);
                if pending.len() >= usize::from(config.threshold) {
                    let shares = std::mem::take(pending);
                    let back = strongroom_crypto::combine(config.threshold, &shares)
                        .map_err(|_| Error::UnsealFailed)?;
                    if !back.matches_check(&root.check_value()) {
                        return Err(Error::UnsealFailed);
                    }
                    let Phase::Verifying { root, config, .. } =
                        std::mem::replace(&mut state.phase, Phase::Authorising(vec![]))
                    else {
                        return Err(Error::NoRekey);
                    };
                    state.phase = Phase::Verified { root, config };
                }
            }
            Phase::Verified { config, .. } => {
                config.check_share(&u.vault_id, text)?;
            }
        }
        Ok(RekeyStep {
            status: with_required(&u, state),
            new_shares,
        })
    }

    /// Builds what a verified rekey persists: the new seal (with the token's wrap of the new
    /// root when the vault has one, which needs `hsm`) and every live domain's master key
    /// re-wrapped under the new root. From here until [`Keystore::rekey_finish`] or
    /// [`Keystore::rekey_cancel`], domain rows under either root open.
    ///
    /// # Errors
    /// [`Error::NoRekey`] unless verified, [`Error::RekeyNeedsToken`], token, entropy, and
    /// [`Error::SealedStateCorrupt`] if a domain master key does not open.
    pub fn rekey_prepare(
        &self,
        nonce: &str,
        domains: &[DomainRecord],
        hsm: Option<&dyn RootWrapper>,
    ) -> Result<RekeyCommit, Error> {
        let u = self.unsealed()?;
        let mut slot = lock(&u);
        let Some(RekeyState {
            nonce: n,
            phase: Phase::Verified { root, config },
            prepared,
            ..
        }) = slot.as_mut()
        else {
            return Err(Error::NoRekey);
        };
        if hex::encode(n) != nonce {
            return Err(Error::NoRekey);
        }
        let current = u.sealed().config.clone();
        let epoch = current
            .epoch()
            .checked_add(1)
            .ok_or(Error::CorruptSealConfig)?;
        let hsm = match (&current.hsm, hsm) {
            (None, _) => None,
            (Some(_), None) => return Err(Error::RekeyNeedsToken),
            // Another key would be a seal migration, which has its own approval.
            (Some(stored), Some(h)) if stored.key_label != h.key_label() => {
                return Err(crate::HsmError::KeyLabelMismatch {
                    stored: stored.key_label.clone(),
                    configured: h.key_label().to_owned(),
                }
                .into());
            }
            (Some(_), Some(h)) => Some(wrap_root(h, &u.vault_id, root)?),
        };
        let to = StoredSeal {
            shamir: config.clone(),
            hsm,
            rekeyed: Some(RootEpoch {
                epoch,
                wrapped_base: u.base.seal_under(
                    &root.base_wrapping_key(),
                    &base_aad(&u.vault_id, epoch),
                    self.entropy.as_ref(),
                )?,
            }),
        };
        let kek = Arc::new(root.domain_wrapping_key());
        let (mut wraps, mut retiring_wraps) = (Vec::new(), Vec::new());
        for d in domains.iter().filter(|d| d.destroyed_at.is_none()) {
            let rewrap = |version: u32, was: &[u8]| -> Result<_, Error> {
                let key = Self::domain_key_at(&u, d, version)?;
                let aad = domain_record_aad(&u.vault_id, d, version);
                Ok((
                    d.id,
                    was.to_vec(),
                    kek.seal_key(&aad, &key, self.entropy.as_ref())?,
                ))
            };
            wraps.push(rewrap(d.key_version, &d.wrapped_key)?);
            if let Some(r) = &d.retiring {
                retiring_wraps.push(rewrap(r.version, &r.wrapped_key)?);
            }
        }
        let commit = RekeyCommit {
            from: current.encode(),
            to: to.encode(),
            epoch,
            wraps,
            retiring_wraps,
        };
        // Until the swap, exactly the re-wrapped rows open under the new root here.
        let mut alternate = u
            .alternate_kek
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows = alternate.take().map(|a| a.rows).unwrap_or_default();
        rows.extend(
            commit
                .wraps
                .iter()
                .chain(&commit.retiring_wraps)
                .map(|(_, _, to)| to.clone()),
        );
        *alternate = Some(Alternate { kek, rows });
        prepared.push(commit.clone());
        Ok(commit)
    }

    /// After the commit persisted: this node holds the new root (keys destroyed while
    /// unsealed stay refused). The same happens if the change notification arrives first
    /// ([`Keystore::adopt_seal`]); a node that did not prepare this rekey seals.
    ///
    /// # Errors
    /// [`Error::CorruptSealConfig`] if `commit.to` does not parse.
    pub fn rekey_finish(&self, commit: &RekeyCommit) -> Result<(), Error> {
        self.adopt_seal(&commit.to)
    }
}

/// The unsealed state under the new root, if `to` is what this node's verified rekey
/// prepared (the rekey is then over).
pub(super) fn take_prepared(u: &Unsealed, to: &[u8]) -> Option<Unsealed> {
    let mut slot = lock(u);
    let commit = slot.as_ref()?.prepared.iter().find(|c| c.to == to)?.clone();
    let Some(RekeyState {
        phase: Phase::Verified { root, .. },
        ..
    }) = slot.take()
    else {
        return None;
    };
    let config = StoredSeal::decode(to).ok()?;
    let mut sealed = u.sealed().clone_public();
    sealed.config = config;
    // Rows read before the commit still open here — exactly those, under the old root.
    let next = Keystore::unsealed_from(
        &sealed,
        Arc::new(root),
        Arc::clone(&u.base),
        Some(Alternate {
            kek: Arc::clone(&u.domain_kek),
            rows: commit
                .wraps
                .into_iter()
                .chain(commit.retiring_wraps)
                .map(|(_, was, _)| was)
                .collect(),
        }),
    );
    next.destroyed
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(
            u.destroyed
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .copied(),
        );
    Some(next)
}

fn with_required(u: &Unsealed, s: &RekeyState) -> RekeyStatus {
    let (phase, progress, required) = match &s.phase {
        Phase::Authorising(p) => ("authorise", p.len(), u.sealed().config.shamir.threshold),
        Phase::Verifying {
            config, pending, ..
        } => ("verify", pending.len(), config.threshold),
        Phase::Verified { .. } => ("commit", 0, 0),
    };
    RekeyStatus {
        nonce: hex::encode(s.nonce),
        phase,
        progress: u8::try_from(progress).unwrap_or(u8::MAX),
        required,
        shares: s.target.shares,
        threshold: s.target.threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::tests::{domain, key, vault};
    use strongroom_core::record::VaultMeta;
    use strongroom_core::temperature::Temperature;
    use strongroom_core::{Algorithm, UnixMillis};
    use strongroom_crypto::Payload;

    /// The whole ceremony, with the persistence the server does done by hand: the new shares
    /// and only they unseal afterwards, every key opens and signs with its public key, the
    /// derived keys (audit, record MAC) are unchanged, and a domain row read on either side
    /// of the commit opens.
    #[test]
    fn rekey_replaces_the_shares_and_keeps_every_key() {
        let v = vault(3, 2);
        v.ks.submit_share(&v.shares[0]).unwrap();
        v.ks.submit_share(&v.shares[2]).unwrap();
        let d = domain(&v, 2, "a", Temperature::Hot);
        let k = key(&v, &d, 4, Algorithm::Ed25519);
        let mac_before = v.ks.record_mac(b"row").unwrap();
        let audit_before = v.ks.sign_head(1, [1; 32], UnixMillis(1)).unwrap();

        assert_eq!(
            v.ks.rekey_start(ShamirSeal {
                shares: 2,
                threshold: 3
            })
            .unwrap_err(),
            Error::ShareParameters
        );
        let s =
            v.ks.rekey_start(ShamirSeal {
                shares: 4,
                threshold: 3,
            })
            .unwrap();
        assert_eq!((s.phase, s.required), ("authorise", 2));
        assert_eq!(
            v.ks.rekey_start(ShamirSeal {
                shares: 4,
                threshold: 3
            })
            .unwrap_err(),
            Error::RekeyInProgress
        );
        assert_eq!(
            v.ks.rekey_submit("00", &v.shares[0]).unwrap_err(),
            Error::NoRekey
        );
        let step = v.ks.rekey_submit(&s.nonce, &v.shares[1]).unwrap();
        assert!(step.new_shares.is_empty());
        assert_eq!(
            v.ks.rekey_submit(&s.nonce, &v.shares[1]).unwrap_err(),
            Error::DuplicateShare
        );
        let step = v.ks.rekey_submit(&s.nonce, &v.shares[2]).unwrap();
        assert_eq!(step.status.phase, "verify");
        assert_eq!(step.new_shares.len(), 4);
        let new = step.new_shares;
        // Not yet verified: nothing to commit, and old shares are not new ones.
        assert_eq!(
            v.ks.rekey_prepare(&s.nonce, std::slice::from_ref(&d), None)
                .unwrap_err(),
            Error::NoRekey
        );
        // (A share of the old 2-of-3 split names threshold 2.)
        assert_eq!(
            v.ks.rekey_submit(&s.nonce, &v.shares[0]).unwrap_err(),
            Error::ForeignShare
        );
        for share in &new[1..4] {
            v.ks.rekey_submit(&s.nonce, share).unwrap();
        }
        assert_eq!(v.ks.rekey_status().unwrap().phase, "commit");
        // Verified: only a new share asks for the commit (again).
        assert_eq!(
            v.ks.rekey_submit(&s.nonce, &v.shares[0]).unwrap_err(),
            Error::ForeignShare
        );
        assert_eq!(
            v.ks.rekey_submit(&s.nonce, &new[0]).unwrap().status.phase,
            "commit"
        );
        let commit =
            v.ks.rekey_prepare(&s.nonce, std::slice::from_ref(&d), None)
                .unwrap();
        // A second prepare (a retried commit) does not disown the first: whichever lands,
        // this node recognises it.
        let again =
            v.ks.rekey_prepare(&s.nonce, std::slice::from_ref(&d), None)
                .unwrap();
        assert_ne!(again.to, commit.to);
        assert_eq!(commit.epoch, 1);
        assert_eq!(commit.wraps.len(), 1);
        assert_eq!(commit.wraps[0].1, d.wrapped_key);
        let rewrapped = DomainRecord {
            wrapped_key: commit.wraps[0].2.clone(),
            ..d.clone()
        };
        // Between the commit and the swap, the new row opens on the old state.
        v.ks.forget_domain(d.id, &[]);
        v.ks.sign(&rewrapped, &k, Payload::Message(b"m")).unwrap();
        // The change notification may arrive before the committing request finishes: it
        // moves this node to the new root too (not to sealed), and the finish changes nothing.
        v.ks.adopt_seal(&commit.to).unwrap();
        assert!(!v.ks.status().sealed);
        assert!(v.ks.rekey_status().is_none());
        v.ks.rekey_finish(&commit).unwrap();
        assert!(!v.ks.status().sealed);
        // After it, a row read before the commit still opens on the new state.
        v.ks.sign(&d, &k, Payload::Message(b"m")).unwrap();
        v.ks.forget_domain(d.id, &[]);
        v.ks.sign(&rewrapped, &k, Payload::Message(b"m")).unwrap();
        assert_eq!(v.ks.record_mac(b"row").unwrap(), mac_before);
        let audit_after = v.ks.sign_head(1, [1; 32], UnixMillis(1)).unwrap();
        assert_eq!(audit_after.signature, audit_before.signature);

        // Restart from what was persisted.
        let mut meta: VaultMeta = v.meta.clone();
        let mut init = meta.init.take().unwrap();
        init.seal_config = commit.to.clone();
        meta.init = Some(init);
        v.ks.load(&meta).unwrap();
        assert_eq!(v.ks.status().threshold, 3);
        for old in &v.shares {
            assert_eq!(v.ks.submit_share(old).unwrap_err(), Error::ForeignShare);
        }
        for share in &new[..3] {
            v.ks.submit_share(share).unwrap();
        }
        assert!(!v.ks.status().sealed);
        let sig = v.ks.sign(&rewrapped, &k, Payload::Message(b"m")).unwrap();
        strongroom_crypto::verify(
            Algorithm::Ed25519,
            &k.public_key,
            Payload::Message(b"m"),
            &sig.bytes,
        )
        .unwrap();
        assert_eq!(v.ks.record_mac(b"row").unwrap(), mac_before);
        // A row read before the rekey is not under this root: the old wrap, with no rekey in
        // this process, means the state was edited.
        v.ks.evict_key(k.id);
        v.ks.forget_domain(d.id, &[]);
        assert_eq!(
            v.ks.sign(&d, &k, Payload::Message(b"m")).unwrap_err(),
            Error::SealedStateCorrupt
        );
        // A second rekey keeps the same base (epoch 2).
        let s =
            v.ks.rekey_start(ShamirSeal {
                shares: 1,
                threshold: 1,
            })
            .unwrap();
        for share in &new[..3] {
            v.ks.rekey_submit(&s.nonce, share).unwrap();
        }
        assert_eq!(v.ks.rekey_status().unwrap().phase, "verify");
        assert!(v.ks.rekey_cancel());
        assert!(v.ks.rekey_status().is_none());
    }

    /// A root that does not open the sealed base (wrong epoch in the binding, edited blob)
    /// does not unseal; another node sealed by a rekey it did not make seals itself.
    #[test]
    fn a_rekeyed_seal_is_bound_and_other_nodes_seal() {
        let v = vault(1, 1);
        v.ks.submit_share(&v.shares[0]).unwrap();
        let s =
            v.ks.rekey_start(ShamirSeal {
                shares: 1,
                threshold: 1,
            })
            .unwrap();
        let new =
            v.ks.rekey_submit(&s.nonce, &v.shares[0])
                .unwrap()
                .new_shares;
        v.ks.rekey_submit(&s.nonce, &new[0]).unwrap();
        let commit = v.ks.rekey_prepare(&s.nonce, &[], None).unwrap();
        // Same parameters as before: an old share is refused by its value.
        let mut after = v.meta.clone();
        after.init.as_mut().unwrap().seal_config = commit.to.clone();
        let fresh = Keystore::new(Arc::new(strongroom_crypto::OsEntropy));
        fresh.load(&after).unwrap();
        assert_eq!(
            fresh.submit_share(&v.shares[0]).unwrap_err(),
            Error::InvalidShare
        );

        // Another node, unsealed with the old share, sees the new configuration: it seals.
        let other = Keystore::new(Arc::new(strongroom_crypto::OsEntropy));
        other.load(&v.meta).unwrap();
        other.submit_share(&v.shares[0]).unwrap();
        other.adopt_seal(&commit.to).unwrap();
        assert!(other.status().sealed);
        other.submit_share(&new[0]).unwrap();
        assert!(!other.status().sealed);

        let mut config = StoredSeal::decode(&commit.to).unwrap();
        let good = config.clone();
        let r = config.rekeyed.as_mut().unwrap();
        r.epoch = 2;
        let mut wrong_epoch = v.meta.clone();
        wrong_epoch.init.as_mut().unwrap().seal_config = config.encode();
        other.load(&wrong_epoch).unwrap();
        assert_eq!(
            other.submit_share(&new[0]).unwrap_err(),
            Error::UnsealFailed
        );
        let mut edited = good.clone();
        let r = edited.rekeyed.as_mut().unwrap();
        let last = r.wrapped_base.len() - 1;
        r.wrapped_base[last] ^= 1;
        wrong_epoch.init.as_mut().unwrap().seal_config = edited.encode();
        other.load(&wrong_epoch).unwrap();
        assert_eq!(
            other.submit_share(&new[0]).unwrap_err(),
            Error::UnsealFailed
        );
    }
}
