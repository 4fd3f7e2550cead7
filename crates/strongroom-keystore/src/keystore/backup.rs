//! Encrypted backups, on the keystore's side: what a restore needs of the sealed boundary —
//! the derivation base (so every base-derived key, the audit key included, survives) and each
//! live domain's master keys, every version — sealed together with the database copy under a
//! fresh backup key that is independent of the root (rekeys before or after do not matter)
//! and split among custodians. Nothing in a sealed backup opens without a threshold of its
//! shares.
//!
//! Payload (before sealing, see `docs/formats.md`):
//! `version:u8 = 1 || base:32 || count:u32 || (domain_id:16 || key_version:u32 || key:32)*count
//! || rows`.

use strongroom_core::DomainId;
use strongroom_core::record::DomainRecord;
use strongroom_crypto::{AeadKey, RootKey};
use zeroize::Zeroizing;

use super::Keystore;
use crate::Error;
use crate::seal::ShamirSeal;

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
    domain_keys: Vec<(DomainId, u32, AeadKey)>,
    rows: Zeroizing<Vec<u8>>,
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
        self.domain_keys.iter().map(|(d, v, _)| (*d, *v)).collect()
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
            keys.push((d.id, d.key_version, Self::domain_key(&u, d)?));
            if let Some(r) = &d.retiring {
                keys.push((d.id, r.version, Self::domain_key_at(&u, d, r.version)?));
            }
        }
        let count = u32::try_from(keys.len()).map_err(|_| Error::ShareParameters)?;
        // Sized exactly: a growing vector would leave copies of the keys in freed memory.
        let mut payload = Zeroizing::new(Vec::with_capacity(37 + keys.len() * 52 + rows.len()));
        payload.push(PAYLOAD_VERSION);
        payload.extend_from_slice(u.base.danger_expose_bytes());
        payload.extend_from_slice(&count.to_be_bytes());
        for (id, version, key) in &keys {
            payload.extend_from_slice(id.as_bytes());
            payload.extend_from_slice(&version.to_be_bytes());
            payload.extend_from_slice(key.danger_expose_bytes());
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
        domain_keys.push((
            DomainId::from_bytes(*id),
            u32::from_be_bytes(*version),
            AeadKey::danger_from_bytes(&Zeroizing::new(*key)),
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
                .find(|(_, v, _)| *v == version)
                .unwrap()
                .2;
            let aad = crate::binding::key_aad(&v.meta.vault_id, record);
            key.open_secret_bytes(&aad, record.sealed_secret.as_deref().unwrap())
                .unwrap();
        }

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
