//! Encrypted backups, on the keystore's side: what a restore needs of the sealed boundary —
//! the derivation base (so every base-derived key, the audit key included, survives) and each
//! live domain's master keys, every version — sealed together with the database copy under a
//! fresh backup key that is independent of the root (rekeys before or after do not matter)
//! and split among custodians. Nothing in a sealed backup opens without a threshold of its
//! shares.
//!
//! Payload (before sealing, see `docs/formats.md`):
//! `version:u8 = 1 || base:32 || count:u32 || (domain_id:16 || key_version:u32 || key:32
//! || len:u32 || context)*count || rows`, `context` being the key's associated data as its
//! row wraps it (so a restore re-wraps it under a new root without reading sealed columns).

use strongroom_core::record::DomainRecord;
use strongroom_core::{DomainId, EntropySource, VaultId};
use strongroom_crypto::{AeadKey, RootKey};
use zeroize::Zeroizing;

use super::Keystore;
use crate::Error;
use crate::binding::domain_record_aad;
use crate::seal::{RootEpoch, ShamirSeal, StoredSeal, base_aad};

const PAYLOAD_VERSION: u8 = 1;

/// A sealed backup: the ciphertext, and the backup key's shares (handed out once).
pub struct SealedBackup {
    /// The payload sealed under the backup key, bound to the header it was given.
    pub ciphertext: Vec<u8>,
    /// The backup key's share strings (they name the backup id, never a vault).
    pub shares: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for SealedBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedBackup")
            .field("ciphertext", &self.ciphertext.len())
            .field("shares", &self.shares.len())
            .finish()
    }
}

/// A backup opened with a threshold of its shares.
pub struct OpenedBackup {
    base: RootKey,
    domain_keys: Vec<(DomainId, u32, AeadKey, Vec<u8>)>,
    rows: Zeroizing<Vec<u8>>,
}

/// A restored vault's new root, as the store and its custodians need it.
pub struct Resealed {
    /// The seal configuration (Shamir; the derivation base sealed under the new root).
    pub seal_config: Vec<u8>,
    /// The new unseal shares, handed out once.
    pub shares: Vec<Zeroizing<String>>,
    /// Each domain master key version, wrapped under the new root.
    pub wraps: Vec<(DomainId, u32, Vec<u8>)>,
}

impl std::fmt::Debug for Resealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resealed")
            .field("shares", &self.shares.len())
            .field("wraps", &self.wraps.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OpenedBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedBackup")
            .field("domain_keys", &self.domain_keys.len())
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl OpenedBackup {
    /// The database copy, as stored (sealed columns sealed under base-derived keys).
    #[must_use]
    pub fn rows(&self) -> &[u8] {
        &self.rows
    }

    /// The check value of the derivation base (it must equal the backup's `root_check`).
    #[must_use]
    pub fn base_check(&self) -> [u8; 32] {
        self.base.check_value()
    }

    /// Which domain master key versions the backup holds.
    #[must_use]
    pub fn domain_key_versions(&self) -> Vec<(DomainId, u32)> {
        self.domain_keys
            .iter()
            .map(|(d, v, _, _)| (*d, *v))
            .collect()
    }

    /// A fresh root for the restored vault, split as `split` says: the derivation base sealed
    /// under it (one epoch past `previous_seal`'s, so the vault stays the same vault) and
    /// every domain key version wrapped under it. Token sealing comes back by migration.
    ///
    /// # Errors
    /// [`Error::ShareParameters`], entropy.
    pub fn reseal(
        &self,
        vault_id: &VaultId,
        previous_seal: &[u8],
        split: ShamirSeal,
        entropy: &dyn EntropySource,
    ) -> Result<Resealed, Error> {
        let epoch = StoredSeal::decode(previous_seal)?
            .epoch()
            .checked_add(1)
            .ok_or(Error::CorruptSealConfig)?;
        let root = RootKey::generate(entropy)?;
        let (shamir, shares) = split.split(vault_id, &root, entropy)?;
        let seal = StoredSeal {
            shamir,
            hsm: None,
            rekeyed: Some(RootEpoch {
                epoch,
                wrapped_base: self.base.seal_under(
                    &root.base_wrapping_key(),
                    &base_aad(vault_id, epoch),
                    entropy,
                )?,
            }),
        };
        let kek = root.domain_wrapping_key();
        let wraps = self
            .domain_keys
            .iter()
            .map(|(d, v, key, aad)| Ok((*d, *v, kek.seal_key(aad, key, entropy)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Resealed {
            seal_config: seal.encode(),
            shares,
            wraps,
        })
    }
}

impl Keystore {
    /// Seals the derivation base, every live domain's master keys (current and retiring) and
    /// `rows` under a fresh backup key split as `split` says, bound to `header` (the backup
    /// file's public part). Each domain key is opened from the row given, so a damaged one
    /// fails the backup instead of being left out.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::SealedStateCorrupt`], [`Error::ShareParameters`], entropy.
    pub fn seal_backup(
        &self,
        backup_id: &[u8; 16],
        header: &[u8],
        domains: &[DomainRecord],
        rows: &[u8],
        split: ShamirSeal,
    ) -> Result<SealedBackup, Error> {
        let u = self.unsealed()?;
        let mut keys = Vec::new();
        for d in domains.iter().filter(|d| d.destroyed_at.is_none()) {
            let mut versions = vec![d.key_version];
            versions.extend(d.retiring.as_ref().map(|r| r.version));
            for v in versions {
                let aad = domain_record_aad(&u.vault_id, d, v);
                keys.push((d.id, v, Self::domain_key_at(&u, d, v)?, aad));
            }
        }
        let count = u32::try_from(keys.len()).map_err(|_| Error::ShareParameters)?;
        let size = 37 + rows.len() + keys.iter().map(|k| 56 + k.3.len()).sum::<usize>();
        // Sized exactly: a growing vector would leave copies of the keys in freed memory.
        let mut payload = Zeroizing::new(Vec::with_capacity(size));
        payload.push(PAYLOAD_VERSION);
        payload.extend_from_slice(u.base.danger_expose_bytes());
        payload.extend_from_slice(&count.to_be_bytes());
        for (id, version, key, aad) in &keys {
            payload.extend_from_slice(id.as_bytes());
            payload.extend_from_slice(&version.to_be_bytes());
            payload.extend_from_slice(key.danger_expose_bytes());
            let len = u32::try_from(aad.len()).map_err(|_| Error::ShareParameters)?;
            payload.extend_from_slice(&len.to_be_bytes());
            payload.extend_from_slice(aad);
        }
        payload.extend_from_slice(rows);
        let (ciphertext, shares) = strongroom_crypto::seal_bundle_plain(
            backup_id,
            header,
            &payload,
            split.shares,
            split.threshold,
            self.entropy.as_ref(),
        )
        .map_err(|e| match e {
            strongroom_crypto::Error::ShareParameters => Error::ShareParameters,
            other => Error::Crypto(other),
        })?;
        Ok(SealedBackup { ciphertext, shares })
    }
}

/// Opens a sealed backup with `threshold` of its share strings. Needs no vault: a restore
/// runs on an empty node.
///
/// # Errors
/// [`Error::MalformedShare`] (a share of another backup, or malformed),
/// [`Error::ShareParameters`] (too few or repeated shares), [`Error::BackupUnreadable`] if
/// the shares do not open it (a wrong share, a flipped byte, another header) or its payload
/// does not parse.
pub fn open_backup(
    backup_id: &[u8; 16],
    threshold: u8,
    header: &[u8],
    ciphertext: &[u8],
    shares: &[&str],
) -> Result<OpenedBackup, Error> {
    let payload = strongroom_crypto::open_bundle(backup_id, threshold, header, ciphertext, shares)
        .map_err(|e| match e {
            strongroom_crypto::Error::MalformedShare => Error::MalformedShare,
            strongroom_crypto::Error::ShareParameters => Error::ShareParameters,
            _ => Error::BackupUnreadable,
        })?;
    let bad = || Error::BackupUnreadable;
    let (&version, rest) = payload.split_first().ok_or_else(bad)?;
    if version != PAYLOAD_VERSION {
        return Err(bad());
    }
    let (base, rest) = rest.split_first_chunk::<32>().ok_or_else(bad)?;
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let count = u32::from_be_bytes(*count);
    let mut domain_keys = Vec::new();
    for _ in 0..count {
        let (id, r) = rest.split_first_chunk::<16>().ok_or_else(bad)?;
        let (version, r) = r.split_first_chunk::<4>().ok_or_else(bad)?;
        let (key, r) = r.split_first_chunk::<32>().ok_or_else(bad)?;
        let (len, r) = r.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
        let (aad, r) = r.split_at_checked(len).ok_or_else(bad)?;
        domain_keys.push((
            DomainId::from_bytes(*id),
            u32::from_be_bytes(*version),
            AeadKey::danger_from_bytes(&Zeroizing::new(*key)),
            aad.to_vec(),
        ));
        rest = r;
    }
    Ok(OpenedBackup {
        base: RootKey::danger_from_bytes(&Zeroizing::new(*base)),
        domain_keys,
        rows: Zeroizing::new(rest.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::tests::{domain, key, vault};
    use strongroom_core::record::RetiringKey;
    use strongroom_core::temperature::Temperature;
    use strongroom_core::{Algorithm, UnixMillis};

    /// A backup opens with any threshold of its shares and holds the base (its check value is
    /// the vault's) and every live domain key version, which open the key blobs; too few
    /// shares, another backup's shares, another header or one flipped byte open nothing.
    #[test]
    fn a_sealed_backup_opens_only_with_its_shares_and_holds_every_domain_key() {
        let v = vault(1, 1);
        v.ks.submit_share(&v.shares[0]).unwrap();
        let d = domain(&v, 2, "a", Temperature::Hot);
        let k = key(&v, &d, 4, Algorithm::Ed25519);
        let (version, wrapped) = v.ks.rotate_domain_key(&d).unwrap();
        let rotating = DomainRecord {
            key_version: version,
            wrapped_key: wrapped,
            retiring: Some(RetiringKey {
                version: 1,
                wrapped_key: d.wrapped_key.clone(),
            }),
            ..d.clone()
        };
        let k2 = key(&v, &rotating, 5, Algorithm::Secp256k1);
        let gone = DomainRecord {
            destroyed_at: Some(UnixMillis(3)),
            ..domain(&v, 3, "gone", Temperature::Hot)
        };
        let id = [9u8; 16];
        let sealed =
            v.ks.seal_backup(
                &id,
                b"header",
                &[rotating.clone(), gone],
                b"the rows",
                ShamirSeal {
                    shares: 3,
                    threshold: 2,
                },
            )
            .unwrap();
        assert_eq!(sealed.shares.len(), 3);
        assert!(!format!("{sealed:?}").contains("srs1"));
        let texts: Vec<&str> = sealed.shares.iter().map(|s| s.as_str()).collect();

        let opened = open_backup(&id, 2, b"header", &sealed.ciphertext, &texts[1..]).unwrap();
        assert_eq!(opened.rows(), b"the rows");
        assert_eq!(
            opened.base_check(),
            v.meta.init.as_ref().unwrap().root_check
        );
        assert_eq!(opened.domain_key_versions(), vec![(d.id, 2), (d.id, 1)]);
        // The keys in it open the blobs sealed under each version.
        for (record, version) in [(&k, 1), (&k2, 2)] {
            let key = &opened
                .domain_keys
                .iter()
                .find(|(_, v, _, _)| *v == version)
                .unwrap()
                .2;
            let aad = crate::binding::key_aad(&v.meta.vault_id, record);
            key.open_secret_bytes(&aad, record.sealed_secret.as_deref().unwrap())
                .unwrap();
        }

        // Restored under a fresh root with fresh shares: the same vault (audit key, MACs)
        // and every key signs, under either domain key version.
        let resealed = opened
            .reseal(
                &v.meta.vault_id,
                &v.meta.init.as_ref().unwrap().seal_config,
                ShamirSeal {
                    shares: 2,
                    threshold: 2,
                },
                &strongroom_crypto::OsEntropy,
            )
            .unwrap();
        let wrap = |version: u32| {
            resealed
                .wraps
                .iter()
                .find(|w| w.0 == d.id && w.1 == version)
                .unwrap()
                .2
                .clone()
        };
        let restored_domain = DomainRecord {
            wrapped_key: wrap(2),
            retiring: Some(RetiringKey {
                version: 1,
                wrapped_key: wrap(1),
            }),
            ..rotating.clone()
        };
        let mut meta = v.meta.clone();
        meta.init.as_mut().unwrap().seal_config = resealed.seal_config.clone();
        let fresh = Keystore::new(std::sync::Arc::new(strongroom_crypto::OsEntropy));
        fresh.load(&meta).unwrap();
        assert_eq!(
            fresh.submit_share(&v.shares[0]).unwrap_err(),
            Error::ForeignShare
        );
        for share in &resealed.shares {
            fresh.submit_share(share).unwrap();
        }
        assert!(!fresh.status().sealed);
        assert_eq!(
            fresh.record_mac(b"row").unwrap(),
            v.ks.record_mac(b"row").unwrap()
        );
        fresh
            .sign(
                &restored_domain,
                &k,
                strongroom_crypto::Payload::Message(b"m"),
            )
            .unwrap();
        fresh
            .sign(
                &restored_domain,
                &k2,
                strongroom_crypto::Payload::Digest(&[7; 32]),
            )
            .unwrap();

        assert_eq!(
            open_backup(&id, 2, b"header", &sealed.ciphertext, &texts[..1]).unwrap_err(),
            Error::ShareParameters
        );
        assert_eq!(
            open_backup(&[8; 16], 2, b"header", &sealed.ciphertext, &texts[..2]).unwrap_err(),
            Error::MalformedShare
        );
        assert_eq!(
            open_backup(&id, 2, b"other", &sealed.ciphertext, &texts[..2]).unwrap_err(),
            Error::BackupUnreadable
        );
        for i in [0, 13, sealed.ciphertext.len() - 1] {
            let mut flipped = sealed.ciphertext.clone();
            flipped[i] ^= 1;
            assert_eq!(
                open_backup(&id, 2, b"header", &flipped, &texts[..2]).unwrap_err(),
                Error::BackupUnreadable,
                "{i}"
            );
        }
    }
}
