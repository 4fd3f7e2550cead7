//! The keystore state machine: `Uninitialized -> Sealed <-> Unsealed`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use strongroom_core::id::DomainName;
use strongroom_core::record::{DomainRecord, InitRecord, KeyRecord, SignedHead, VaultMeta};
use strongroom_core::storage::FieldCipher;
use strongroom_core::temperature::Temperature;
use strongroom_core::wallet::{WalletPublic, WalletSpec};
use strongroom_core::{
    Algorithm, DomainId, EntropySource, Error as CoreError, KeyId, OperatorId, PendingId,
    UnixMillis, VaultId,
};
use strongroom_crypto::{
    AeadKey, AuditSigningKey, HdAccount, HdSeed, Payload, RecordMacKey, RootKey, Share, Signature,
    SigningKey, StorageKeys, TotpSecret,
};
use zeroize::Zeroizing;

use crate::Error;
use crate::binding::{
    domain_aad, domain_record_aad, key_aad, operator_aad, request_result_aad, temperature_binding,
};
use crate::seal::{HsmWrap, RootWrapper, SealKind, ShamirSeal, StoredSeal, hsm_aad};

mod backup;
mod rekey;
pub use backup::{OpenedBackup, Resealed, SealedBackup, open_backup};
pub use rekey::{RekeyCommit, RekeyStatus, RekeyStep};

/// Seal status, as reported by `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether `operator init` has run.
    pub initialized: bool,
    /// Whether key material is out of reach.
    pub sealed: bool,
    /// Valid shares submitted so far in the current unseal attempt.
    pub progress: u8,
    /// Shares needed to unseal (0 before initialisation).
    pub threshold: u8,
}

/// What initialisation produced: the record to persist and the shares to hand out once.
#[derive(Debug)]
pub struct Initialized {
    /// Persist this (Mutation::Initialize), then call [`Keystore::load`].
    pub record: InitRecord,
    /// One string per share holder. Never stored by strongroom.
    pub shares: Vec<Zeroizing<String>>,
    /// The record MAC of the root token's binding (see [`Keystore::record_mac`]).
    pub root_token_mac: [u8; 32],
}

/// Where a new wallet's seed comes from.
pub enum WalletSource<'a> {
    /// Fresh entropy (a 24-word mnemonic that is never shown).
    Fresh,
    /// An imported BIP-39 mnemonic and passphrase.
    Mnemonic {
        /// The words.
        phrase: &'a str,
        /// The BIP-39 passphrase ("" for none).
        passphrase: &'a str,
    },
}

impl std::fmt::Debug for WalletSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WalletSource::Fresh => "Fresh",
            WalletSource::Mnemonic { .. } => "Mnemonic(..)",
        })
    }
}

/// One EIP-2335 keystore to import: the id and label its key will have, the document and
/// the password that opens it.
pub struct KeystoreImport<'a> {
    /// The new key's identifier.
    pub id: KeyId,
    /// The keystore document (JSON).
    pub keystore: &'a [u8],
    /// The new key's label.
    pub label: String,
    /// Its password (normalised as EIP-2335 says when used).
    pub password: &'a str,
}

/// The sealed boundary.
pub struct Keystore {
    state: RwLock<State>,
    entropy: Arc<dyn EntropySource>,
}

// One per process: boxing the sealed state would save nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
enum State {
    Uninitialized,
    Sealed(Sealed),
    Unsealed(Arc<Unsealed>),
}

struct Sealed {
    vault_id: VaultId,
    config: StoredSeal,
    root_check: [u8; 32],
    audit_public_key: [u8; 32],
    pending: Vec<Share>,
}

impl Sealed {
    /// The public state, without submitted shares.
    fn clone_public(&self) -> Self {
        Self {
            vault_id: self.vault_id,
            config: self.config.clone(),
            root_check: self.root_check,
            audit_public_key: self.audit_public_key,
            pending: vec![],
        }
    }
}

struct Unsealed {
    vault_id: VaultId,
    // The current root (what the shares and the token hold); wrapped again by a seal
    // migration, replaced by a rekey.
    root: Arc<RootKey>,
    // The derivation base of every key below except the domain-wrapping key: the first root,
    // which is `root` itself until the first rekey.
    base: Arc<RootKey>,
    // What sealing returns to; its configuration changes with a seal migration.
    sealed: RwLock<Sealed>,
    domain_kek: Arc<AeadKey>,
    // The other root's domain-wrapping key while a rekey commits on this node, and after it
    // (the previous one), for exactly the rows the rekey wrote or replaced: a domain row read
    // on either side of the commit opens, instead of looking tampered.
    alternate_kek: RwLock<Option<Alternate>>,
    rekey: std::sync::Mutex<Option<rekey::RekeyState>>,
    audit: AuditSigningKey,
    record_mac: RecordMacKey,
    operator_kek: AeadKey,
    storage: StorageKeys,
    // By domain and master key version.
    domain_keys: RwLock<HashMap<(DomainId, u32), OpenedDomainKey>>,
    keys: RwLock<HashMap<KeyId, Arc<LoadedKey>>>,
    // Keys destroyed while unsealed: never loaded again, whatever record a caller holds.
    destroyed: RwLock<std::collections::HashSet<KeyId>>,
}

/// The other root's domain-wrapping key around a rekey, and the wrapped rows it may open.
struct Alternate {
    kek: Arc<AeadKey>,
    rows: std::collections::HashSet<Vec<u8>>,
}

/// A domain master key with the sealed bytes it was opened from (used only while they match).
struct OpenedDomainKey {
    sealed: Vec<u8>,
    key: Arc<AeadKey>,
}

struct LoadedKey {
    // What the key was opened from. A cached key is used only while its row still says
    // exactly this, so a row edited in the database fails at the next use, not the next
    // restart.
    aad: Vec<u8>,
    blob: Vec<u8>,
    secret: LoadedSecret,
}

/// What an opened blob holds: a signing key, or a wallet's account key (the seed itself is
/// dropped once the account key is derived) with the address keys derived from it so far.
enum LoadedSecret {
    Key(SigningKey),
    Wallet {
        account: HdAccount,
        // Derivation costs more than signing; the keys go when the wallet is dropped from
        // memory (freeze, seal, a changed row).
        addresses: RwLock<HashMap<(bool, u32), Arc<SigningKey>>>,
    },
}

/// How many address keys a loaded wallet keeps derived.
const WALLET_KEY_CACHE: usize = 4096;

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// A keystore with nothing loaded.
    #[must_use]
    pub fn new(entropy: Arc<dyn EntropySource>) -> Self {
        Self {
            state: RwLock::new(State::Uninitialized),
            entropy,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated (every update is a
        // single assignment), so a poisoned lock is still consistent.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>, Error> {
        match &*self.read() {
            State::Unsealed(u) => Ok(Arc::clone(u)),
            State::Sealed(_) => Err(Error::Sealed),
            State::Uninitialized => Err(Error::NotInitialized),
        }
    }

    /// Sets the keystore from persisted vault metadata: uninitialised, or sealed. Any key
    /// material in memory is dropped.
    ///
    /// # Errors
    /// [`Error::CorruptSealConfig`] if the stored seal configuration does not parse.
    pub fn load(&self, meta: &VaultMeta) -> Result<(), Error> {
        let next = match &meta.init {
            None => State::Uninitialized,
            Some(init) => State::Sealed(Sealed {
                vault_id: meta.vault_id,
                config: StoredSeal::decode(&init.seal_config)?,
                root_check: init.root_check,
                audit_public_key: init.audit_public_key,
                pending: vec![],
            }),
        };
        *self.write() = next;
        Ok(())
    }

    /// Seal status.
    #[must_use]
    pub fn status(&self) -> SealStatus {
        match &*self.read() {
            State::Uninitialized => SealStatus {
                initialized: false,
                sealed: true,
                progress: 0,
                threshold: 0,
            },
            State::Sealed(s) => SealStatus {
                initialized: true,
                sealed: true,
                progress: u8::try_from(s.pending.len()).unwrap_or(u8::MAX),
                threshold: s.config.shamir.threshold,
            },
            State::Unsealed(u) => SealStatus {
                initialized: true,
                sealed: false,
                progress: 0,
                threshold: u.sealed().config.shamir.threshold,
            },
        }
    }

    /// Which seal protects the root key at rest (`None` before initialisation).
    #[must_use]
    pub fn seal_kind(&self) -> Option<SealKind> {
        match &*self.read() {
            State::Uninitialized => None,
            State::Sealed(s) => Some(s.config.kind()),
            State::Unsealed(u) => Some(u.sealed().config.kind()),
        }
    }

    /// Generates a root key, splits it into shares and, when `hsm` is given, wraps a copy
    /// under the token's key. Nothing changes in the keystore until the returned record is
    /// persisted and passed back through [`Keystore::load`].
    ///
    /// # Errors
    /// [`Error::AlreadyInitialized`], parameter, entropy or token failures.
    pub fn initialize(
        &self,
        vault_id: VaultId,
        shamir: ShamirSeal,
        hsm: Option<&dyn RootWrapper>,
        now: UnixMillis,
        root_token_binding: &[u8],
    ) -> Result<Initialized, Error> {
        if !matches!(*self.read(), State::Uninitialized) {
            return Err(Error::AlreadyInitialized);
        }
        let root = RootKey::generate(self.entropy.as_ref())?;
        let (config, shares) = shamir.split(&vault_id, &root, self.entropy.as_ref())?;
        let config = StoredSeal {
            shamir: config,
            hsm: hsm.map(|h| wrap_root(h, &vault_id, &root)).transpose()?,
            rekeyed: None,
        };
        Ok(Initialized {
            record: InitRecord {
                seal_config: config.encode(),
                root_check: root.check_value(),
                audit_public_key: root.audit_signing_key().public_key(),
                initialized_at: now,
            },
            shares,
            root_token_mac: root.record_mac_key().mac(root_token_binding),
        })
    }

    /// Submits one unseal share. A refused share is never counted and leaves progress as it
    /// was. Reaching the threshold unseals the vault.
    ///
    /// # Errors
    /// [`Error::MalformedShare`], [`Error::ForeignShare`], [`Error::InvalidShare`],
    /// [`Error::DuplicateShare`]; [`Error::UnsealFailed`] if the combined key is wrong
    /// (progress is then reset).
    pub fn submit_share(&self, text: &str) -> Result<SealStatus, Error> {
        let mut state = self.write();
        let sealed = match &mut *state {
            State::Uninitialized => return Err(Error::NotInitialized),
            State::Unsealed(_) => return Err(Error::AlreadyUnsealed),
            State::Sealed(s) => s,
        };
        let share = sealed.config.shamir.check_share(&sealed.vault_id, text)?;
        if sealed.pending.iter().any(|p| p.index() == share.index()) {
            return Err(Error::DuplicateShare);
        }
        sealed.pending.push(share);
        let threshold = sealed.config.shamir.threshold;
        if sealed.pending.len() < usize::from(threshold) {
            let progress = u8::try_from(sealed.pending.len()).unwrap_or(u8::MAX);
            return Ok(SealStatus {
                initialized: true,
                sealed: true,
                progress,
                threshold,
            });
        }
        let pending = std::mem::take(&mut sealed.pending);
        let root =
            strongroom_crypto::combine(threshold, &pending).map_err(|_| Error::UnsealFailed)?;
        drop(pending);
        *state = State::Unsealed(Arc::new(Self::open(sealed, root)?));
        Ok(SealStatus {
            initialized: true,
            sealed: false,
            progress: 0,
            threshold,
        })
    }

    /// Unseals with the root key wrapped by a hardware token. Nothing changes on failure.
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::AlreadyUnsealed`], [`Error::NotHsmSealed`],
    /// [`Error::Hsm`] for token failures (or a wrapping key with another label), and
    /// [`Error::UnsealFailed`] if what the token returns is not this vault's root key.
    pub fn unseal_with(&self, hsm: &dyn RootWrapper) -> Result<SealStatus, Error> {
        let mut state = self.write();
        let sealed = match &mut *state {
            State::Uninitialized => return Err(Error::NotInitialized),
            State::Unsealed(_) => return Err(Error::AlreadyUnsealed),
            State::Sealed(s) => s,
        };
        let wrap = sealed.config.hsm.as_ref().ok_or(Error::NotHsmSealed)?;
        if wrap.key_label != hsm.key_label() {
            return Err(crate::HsmError::KeyLabelMismatch {
                stored: wrap.key_label.clone(),
                configured: hsm.key_label().to_owned(),
            }
            .into());
        }
        let root = hsm.unwrap(&hsm_aad(&sealed.vault_id, &wrap.key_label), &wrap.wrapped)?;
        let threshold = sealed.config.shamir.threshold;
        *state = State::Unsealed(Arc::new(Self::open(sealed, root)?));
        Ok(SealStatus {
            initialized: true,
            sealed: false,
            progress: 0,
            threshold,
        })
    }

    /// The seal configuration that protects this vault's root key under `hsm` (or, with
    /// `None`, by its shares alone). The shares stay as they are. Needs the vault unsealed;
    /// persist the result, then [`Keystore::load`] it when next sealed.
    ///
    /// # Errors
    /// [`Error::Sealed`], token failures.
    pub fn reseal(&self, hsm: Option<&dyn RootWrapper>) -> Result<Vec<u8>, Error> {
        let u = self.unsealed()?;
        let config = StoredSeal {
            shamir: u.sealed().config.shamir.clone(),
            hsm: hsm
                .map(|h| wrap_root(h, &u.vault_id, &u.root))
                .transpose()?,
            rekeyed: u.sealed().config.rekeyed.clone(),
        };
        Ok(config.encode())
    }

    /// The wrapping key label recorded in the vault, when a token seals it.
    #[must_use]
    pub fn hsm_key_label(&self) -> Option<String> {
        let label = |s: &Sealed| s.config.hsm.as_ref().map(|h| h.key_label.clone());
        match &*self.read() {
            State::Uninitialized => None,
            State::Sealed(s) => label(s),
            State::Unsealed(u) => label(&u.sealed()),
        }
    }

    /// Takes a seal configuration persisted by a migration (made by [`Keystore::reseal`]) or
    /// by a rekey. A rekey made on another node replaces the root this node holds, so this
    /// node seals: its operators unseal it with the new shares.
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::CorruptSealConfig`].
    pub fn adopt_seal(&self, config: &[u8]) -> Result<(), Error> {
        let raw = config;
        let config = StoredSeal::decode(config)?;
        let mut state = self.write();
        match &mut *state {
            State::Uninitialized => return Err(Error::NotInitialized),
            State::Sealed(s) => {
                if s.config.epoch() != config.epoch() {
                    s.pending.clear();
                }
                s.config = config;
            }
            State::Unsealed(u) if u.sealed().config.epoch() != config.epoch() => {
                let next = match rekey::take_prepared(u, raw) {
                    Some(rekeyed) => State::Unsealed(Arc::new(rekeyed)),
                    None => State::Sealed(Sealed {
                        config,
                        ..u.sealed().clone_public()
                    }),
                };
                *state = next;
            }
            State::Unsealed(u) => {
                u.sealed
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .config = config;
            }
        }
        Ok(())
    }

    /// How many times the root this keystore holds (or, sealed, expects) was replaced.
    #[must_use]
    pub fn epoch(&self) -> Option<u32> {
        match &*self.read() {
            State::Uninitialized => None,
            State::Sealed(s) => Some(s.config.epoch()),
            State::Unsealed(u) => Some(u.sealed().config.epoch()),
        }
    }

    /// The encoded seal configuration the keystore is working under (for a write that must
    /// not land after a rekey it did not see).
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::NotInitialized`].
    pub fn seal_config(&self) -> Result<Vec<u8>, Error> {
        Ok(self.unsealed()?.sealed().config.encode())
    }

    /// Checks a reconstructed root key against the stored check values and derives the
    /// unsealed state from it. After a rekey the root opens the sealed derivation base, and
    /// the checks are the base's (they never change).
    fn open(sealed: &Sealed, root: RootKey) -> Result<Unsealed, Error> {
        let root = Arc::new(root);
        let base = match &sealed.config.rekeyed {
            None => Arc::clone(&root),
            Some(r) => Arc::new(
                RootKey::open_under(
                    &root.base_wrapping_key(),
                    &crate::seal::base_aad(&sealed.vault_id, r.epoch),
                    &r.wrapped_base,
                )
                .map_err(|_| Error::UnsealFailed)?,
            ),
        };
        let audit = base.audit_signing_key();
        if !base.matches_check(&sealed.root_check) || audit.public_key() != sealed.audit_public_key
        {
            return Err(Error::UnsealFailed);
        }
        Ok(Self::unsealed_from(sealed, root, base, None))
    }

    fn unsealed_from(
        sealed: &Sealed,
        root: Arc<RootKey>,
        base: Arc<RootKey>,
        alternate_kek: Option<Alternate>,
    ) -> Unsealed {
        Unsealed {
            vault_id: sealed.vault_id,
            domain_kek: Arc::new(root.domain_wrapping_key()),
            alternate_kek: RwLock::new(alternate_kek),
            rekey: std::sync::Mutex::new(None),
            audit: base.audit_signing_key(),
            record_mac: base.record_mac_key(),
            operator_kek: base.operator_wrapping_key(),
            storage: base.storage_keys(),
            root,
            base,
            sealed: RwLock::new(sealed.clone_public()),
            domain_keys: RwLock::new(HashMap::new()),
            keys: RwLock::new(HashMap::new()),
            destroyed: RwLock::new(std::collections::HashSet::new()),
        }
    }

    /// Seals: drops the root key and every loaded key (each zeroizes itself). Operations
    /// already signing finish with the key they hold; no new one starts.
    pub fn seal(&self) {
        let mut state = self.write();
        if let State::Unsealed(u) = &*state {
            let next = State::Sealed(u.sealed().clone_public());
            *state = next;
        } else if let State::Sealed(s) = &mut *state {
            s.pending.clear();
        }
    }

    /// Creates a domain: a fresh master key, sealed under the root.
    ///
    /// # Errors
    /// [`Error::Sealed`] or entropy failures.
    pub fn create_domain(
        &self,
        id: DomainId,
        name: DomainName,
        new_keys: Temperature,
        now: UnixMillis,
    ) -> Result<DomainRecord, Error> {
        let u = self.unsealed()?;
        let key = AeadKey::generate(self.entropy.as_ref())?;
        let wrapped_key = u.domain_kek.seal_key(
            &domain_aad(&u.vault_id, &id, &name, now, new_keys, 1),
            &key,
            self.entropy.as_ref(),
        )?;
        Ok(DomainRecord {
            id,
            name,
            wrapped_key,
            created_at: now,
            new_key_temperature: new_keys,
            algorithms: strongroom_core::AlgorithmPolicy::default(),
            destroyed_at: None,
            key_version: 1,
            retiring: None,
        })
    }

    /// Starts rotating a domain's master key: a fresh key of the next version, sealed under
    /// the root. Persisted ([`strongroom_core::storage::Mutation::RotateDomainKey`]), it seals
    /// every new blob from then on, while the current one retires.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyDestroyed`], [`Error::RotationInProgress`], entropy.
    pub fn rotate_domain_key(&self, domain: &DomainRecord) -> Result<(u32, Vec<u8>), Error> {
        let u = self.unsealed()?;
        if domain.destroyed_at.is_some() {
            return Err(Error::KeyDestroyed);
        }
        if domain.retiring.is_some() {
            return Err(Error::RotationInProgress);
        }
        // The current key must open: nothing is rotated away from a damaged one.
        Self::domain_key(&u, domain)?;
        let version = domain
            .key_version
            .checked_add(1)
            .ok_or(Error::RotationInProgress)?;
        let key = AeadKey::generate(self.entropy.as_ref())?;
        let wrapped = u.domain_kek.seal_key(
            &domain_record_aad(&u.vault_id, domain, version),
            &key,
            self.entropy.as_ref(),
        )?;
        Ok((version, wrapped))
    }

    /// A key's sealed secret moved from its domain's retiring master key to the current one
    /// (same associated data; it must open, or nothing is returned).
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyDestroyed`], [`Error::KeyUnavailable`] (not under the
    /// retiring key, or its blob does not open), [`Error::SealedStateCorrupt`].
    pub fn rewrap_key(&self, domain: &DomainRecord, record: &KeyRecord) -> Result<Vec<u8>, Error> {
        let u = self.unsealed()?;
        if record.domain != domain.id
            || domain.retiring.as_ref().map(|r| r.version) != Some(record.domain_key_version)
        {
            return Err(Error::KeyUnavailable);
        }
        let blob = record.sealed_secret.as_deref().ok_or(Error::KeyDestroyed)?;
        let from = Self::domain_key_at(&u, domain, record.domain_key_version)?;
        let to = Self::domain_key(&u, domain)?;
        let aad = key_aad(&u.vault_id, record);
        let secret = from
            .open_secret_bytes(&aad, blob)
            .map_err(|_| Error::KeyUnavailable)?;
        Ok(to.seal_secret_bytes(&aad, &secret, self.entropy.as_ref())?)
    }

    /// The MAC of a key's temperature, its time and idle limit as set in `record` (stored
    /// with it; checked before the key signs).
    ///
    /// # Errors
    /// [`Error::Sealed`].
    pub fn temperature_mac(&self, record: &KeyRecord) -> Result<[u8; 32], Error> {
        let u = self.unsealed()?;
        Ok(u.record_mac.mac(&temperature_binding(&u.vault_id, record)))
    }

    /// Whether a key record's temperature is the one the vault set (its MAC verifies).
    ///
    /// # Errors
    /// [`Error::Sealed`].
    pub fn verify_temperature(&self, record: &KeyRecord) -> Result<bool, Error> {
        let u = self.unsealed()?;
        Ok(u.record_mac.verify(
            &temperature_binding(&u.vault_id, record),
            &record.temperature_mac,
        ))
    }

    /// A domain's current master key (what new blobs are sealed under).
    fn domain_key(u: &Unsealed, domain: &DomainRecord) -> Result<Arc<AeadKey>, Error> {
        Self::domain_key_at(u, domain, domain.key_version)
    }

    /// A domain's master key of `version`: the current one or, during a rotation, the
    /// retiring one. Any other version is gone.
    fn domain_key_at(
        u: &Unsealed,
        domain: &DomainRecord,
        version: u32,
    ) -> Result<Arc<AeadKey>, Error> {
        if domain.destroyed_at.is_some() {
            return Err(Error::KeyDestroyed);
        }
        let wrapped = if version == domain.key_version {
            &domain.wrapped_key
        } else {
            match &domain.retiring {
                Some(r) if r.version == version => &r.wrapped_key,
                _ => return Err(Error::KeyUnavailable),
            }
        };
        let slot = (domain.id, version);
        let cached = u
            .domain_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&slot)
            .filter(|o| o.sealed == *wrapped)
            .map(|o| Arc::clone(&o.key));
        if let Some(k) = cached {
            return Ok(k);
        }
        let mut cache = u
            .domain_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.remove(&slot);
        let aad = domain_record_aad(&u.vault_id, domain, version);
        let alternate = u
            .alternate_kek
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|a| a.rows.contains(wrapped))
            .map(|a| Arc::clone(&a.kek));
        let key = u
            .domain_kek
            .open_key(&aad, wrapped)
            .or_else(|e| match &alternate {
                Some(k) => k.open_key(&aad, wrapped),
                None => Err(e),
            })
            // The root is right (the vault unsealed), so a domain master key that does not
            // open means the sealed state itself was edited or damaged.
            .map_err(|_| Error::SealedStateCorrupt)?;
        let key = Arc::new(key);
        cache.insert(
            slot,
            OpenedDomainKey {
                sealed: wrapped.clone(),
                key: Arc::clone(&key),
            },
        );
        Ok(key)
    }

    /// Generates a key in `domain` (with its pairwise-consistency test) and returns its
    /// record, secret sealed under the domain master key.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyUnavailable`] (domain blob does not open), entropy or
    /// self-test failures.
    pub fn create_key(
        &self,
        domain: &DomainRecord,
        id: KeyId,
        algorithm: Algorithm,
        label: Option<String>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let u = self.unsealed()?;
        let dk = Self::domain_key(&u, domain)?;
        let key = SigningKey::generate(algorithm, self.entropy.as_ref())?;
        let mut record = Self::new_record(
            &u,
            domain,
            id,
            algorithm,
            label,
            key.public_key().to_vec(),
            now,
        )?;
        let blob =
            dk.seal_signing_key(&key_aad(&u.vault_id, &record), &key, self.entropy.as_ref())?;
        record.sealed_secret = Some(blob);
        Ok(record)
    }

    /// A successor for `old` (`key rotate`): a fresh key of the same algorithm and label in
    /// the same domain, one version up, naming `old` as its predecessor. Only for keys a
    /// chain lets move to a new key (not wallets' seeds, not validator keys).
    ///
    /// # Errors
    /// [`Error::KeyUnavailable`] for another domain's key or an algorithm that cannot rotate,
    /// the errors of [`Keystore::create_key`].
    pub fn create_successor(
        &self,
        domain: &DomainRecord,
        old: &KeyRecord,
        id: KeyId,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        if old.domain != domain.id
            || matches!(old.algorithm, Algorithm::Bip32Seed | Algorithm::Bls12381)
        {
            return Err(Error::KeyUnavailable);
        }
        let u = self.unsealed()?;
        let dk = Self::domain_key(&u, domain)?;
        let key = SigningKey::generate(old.algorithm, self.entropy.as_ref())?;
        let mut record = Self::new_record(
            &u,
            domain,
            id,
            old.algorithm,
            old.label.clone(),
            key.public_key().to_vec(),
            now,
        )?;
        record.version = old.version.checked_add(1).ok_or(Error::KeyUnavailable)?;
        record.predecessor = Some(old.id);
        // The version is bound into the temperature MAC and the blob: set before either.
        record.temperature_mac = u.record_mac.mac(&temperature_binding(&u.vault_id, &record));
        let blob =
            dk.seal_signing_key(&key_aad(&u.vault_id, &record), &key, self.entropy.as_ref())?;
        record.sealed_secret = Some(blob);
        Ok(record)
    }

    /// Ethereum validator keys derived from a BIP-39 mnemonic by EIP-2333 at EIP-2334's
    /// signing paths `m/12381/3600/i/0/0`, one per `(id, i)`, each sealed under the domain key
    /// like any key and labelled with its path. Derivation runs on every core.
    ///
    /// # Errors
    /// [`Error::Sealed`], a bad mnemonic, or entropy failures.
    pub fn derive_validator_keys(
        &self,
        domain: &DomainRecord,
        phrase: &str,
        passphrase: &str,
        keys: &[(KeyId, u32)],
        now: UnixMillis,
    ) -> Result<Vec<KeyRecord>, Error> {
        let u = self.unsealed()?;
        let dk = Self::domain_key(&u, domain)?;
        let seed = HdSeed::from_mnemonic(phrase, passphrase)?;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = keys.len().div_ceil(threads).max(1);
        let derived: Vec<Result<Vec<SigningKey>, Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = keys
                .chunks(chunk)
                .map(|part| {
                    let seed = &seed;
                    s.spawn(move || {
                        part.iter()
                            .map(|(_, i)| Ok(seed.eip2333_key(&[12381, 3600, *i, 0, 0])?))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::KeyUnavailable)))
                .collect()
        });
        let mut records = Vec::with_capacity(keys.len());
        for (key, (id, i)) in derived
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .zip(keys)
        {
            let mut record = Self::new_record(
                &u,
                domain,
                *id,
                Algorithm::Bls12381,
                Some(format!("eth2 m/12381/3600/{i}/0/0")),
                key.public_key().to_vec(),
                now,
            )?;
            let blob =
                dk.seal_signing_key(&key_aad(&u.vault_id, &record), &key, self.entropy.as_ref())?;
            record.sealed_secret = Some(blob);
            records.push(record);
        }
        Ok(records)
    }

    /// Validator keys decrypted from EIP-2335 keystores (on every core, each thread taking
    /// the next keystore as it finishes one), each sealed under the domain key like any key.
    /// The keystore KDF is paid once, here: from then on the key opens like every other.
    /// One result per keystore, in order: a keystore that does not open fails alone.
    ///
    /// # Errors
    /// [`Error::Sealed`] for the whole batch; per keystore, one that does not parse or a
    /// wrong password (`Crypto(Unseal)`), or entropy failures.
    pub fn import_validator_keys(
        &self,
        domain: &DomainRecord,
        keystores: &[KeystoreImport<'_>],
        now: UnixMillis,
    ) -> Result<Vec<Result<KeyRecord, Error>>, Error> {
        // No key is held across the KDF (seconds): a seal meanwhile drops them at once.
        drop(self.unsealed()?);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(keystores.len())
            .max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut decrypted: Vec<(usize, Result<SigningKey, Error>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(ks) = keystores.get(i) else { break };
                            done.push((
                                i,
                                strongroom_crypto::decrypt_eip2335(ks.keystore, ks.password)
                                    .map_err(Error::from),
                            ));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        decrypted.sort_by_key(|(i, _)| *i);
        if decrypted.len() != keystores.len() {
            // A decrypting thread panicked: nothing is trusted.
            return Err(Error::KeyUnavailable);
        }
        // Still unsealed (sealed meanwhile: nothing is imported).
        let u = self.unsealed()?;
        let dk = Self::domain_key(&u, domain)?;
        let mut records = Vec::with_capacity(keystores.len());
        for ((_, key), ks) in decrypted.into_iter().zip(keystores) {
            records.push(key.and_then(|key| {
                let mut record = Self::new_record(
                    &u,
                    domain,
                    ks.id,
                    Algorithm::Bls12381,
                    Some(ks.label.clone()),
                    key.public_key().to_vec(),
                    now,
                )?;
                let blob = dk.seal_signing_key(
                    &key_aad(&u.vault_id, &record),
                    &key,
                    self.entropy.as_ref(),
                )?;
                record.sealed_secret = Some(blob);
                Ok(record)
            }));
        }
        Ok(records)
    }

    /// Validator key `record` written out as an EIP-2335 keystore under `password`. The key
    /// is opened for this alone (a cold key is not loaded); the caller has checked the
    /// quorum that releases it and that the key is cold.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyDestroyed`], [`Error::KeyUnavailable`] for a blob or
    /// temperature that does not verify or a key that is not a validator key's; entropy
    /// failures.
    pub fn export_validator_keystore(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        password: &str,
        kdf: strongroom_crypto::Eip2335Kdf,
        path: &str,
    ) -> Result<Vec<u8>, Error> {
        let u = self.unsealed()?;
        if record.algorithm != Algorithm::Bls12381
            || record.domain != domain.id
            || !u.record_mac.verify(
                &temperature_binding(&u.vault_id, record),
                &record.temperature_mac,
            )
        {
            return Err(Error::KeyUnavailable);
        }
        if record.destroyed_at.is_some() {
            return Err(Error::KeyDestroyed);
        }
        let blob = record.sealed_secret.as_deref().ok_or(Error::KeyDestroyed)?;
        let dk = Self::domain_key_at(&u, domain, record.domain_key_version)?;
        let aad = key_aad(&u.vault_id, record);
        drop(u);
        let key = dk
            .open_signing_key(&aad, blob, record.algorithm)
            .map_err(|_| Error::KeyUnavailable)?;
        if key.public_key() != record.public_key.as_slice() {
            return Err(Error::KeyUnavailable);
        }
        let mut random = Zeroizing::new([0u8; strongroom_crypto::EIP2335_RANDOM_LEN]);
        self.entropy
            .fill(random.as_mut())
            .map_err(|_| strongroom_crypto::Error::Entropy)?;
        Ok(strongroom_crypto::encrypt_eip2335(
            &key, password, kdf, path, &random,
        )?)
    }

    /// A new key's record, at the domain's new-key temperature with its MAC; the caller seals
    /// the secret into it. Refused when the domain deprecated or disabled the algorithm.
    fn new_record(
        u: &Unsealed,
        domain: &DomainRecord,
        id: KeyId,
        algorithm: Algorithm,
        label: Option<String>,
        public_key: Vec<u8>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        domain
            .algorithms
            .may_create(algorithm)
            .map_err(Error::AlgorithmRefused)?;
        let mut record = KeyRecord {
            id,
            domain: domain.id,
            version: 1,
            algorithm,
            label,
            public_key,
            created_at: now,
            destroyed_at: None,
            sealed_secret: None,
            temperature: domain.new_key_temperature,
            temperature_since: now,
            hot_idle_secs: None,
            temperature_mac: [0; 32],
            domain_key_version: domain.key_version,
            predecessor: None,
        };
        record.temperature_mac = u.record_mac.mac(&temperature_binding(&u.vault_id, &record));
        Ok(record)
    }

    /// Makes an HD wallet in `domain`: a BIP-32 seed (fresh, or from a BIP-39 mnemonic and
    /// passphrase) stored as a key of algorithm [`Algorithm::Bip32Seed`], whose public key is
    /// the wallet's [`WalletPublic`] (spec and account extended public key), bound into the
    /// sealed seed like any key's public key.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyUnavailable`] (domain blob does not open), a bad
    /// mnemonic, entropy failures.
    pub fn create_wallet(
        &self,
        domain: &DomainRecord,
        id: KeyId,
        spec: WalletSpec,
        source: WalletSource<'_>,
        label: Option<String>,
        now: UnixMillis,
    ) -> Result<KeyRecord, Error> {
        let u = self.unsealed()?;
        let dk = Self::domain_key(&u, domain)?;
        let seed = match source {
            WalletSource::Fresh => HdSeed::generate(self.entropy.as_ref())?,
            WalletSource::Mnemonic { phrase, passphrase } => {
                HdSeed::from_mnemonic(phrase, passphrase)?
            }
        };
        let public = seed.wallet_public(spec)?;
        let mut record = Self::new_record(
            &u,
            domain,
            id,
            Algorithm::Bip32Seed,
            label,
            public.encode(),
            now,
        )?;
        let blob = dk.seal_seed(&key_aad(&u.vault_id, &record), &seed, self.entropy.as_ref())?;
        record.sealed_secret = Some(blob);
        Ok(record)
    }

    fn loaded_key(
        u: &Unsealed,
        domain: &DomainRecord,
        record: &KeyRecord,
    ) -> Result<Arc<LoadedKey>, Error> {
        let destroyed_here = u
            .destroyed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&record.id);
        if destroyed_here || record.destroyed_at.is_some() {
            return Err(Error::KeyDestroyed);
        }
        if record.domain != domain.id {
            return Err(Error::KeyUnavailable);
        }
        let blob = record.sealed_secret.as_deref().ok_or(Error::KeyDestroyed)?;
        let aad = key_aad(&u.vault_id, record);
        let cached = u
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&record.id)
            .filter(|k| k.aad == aad && k.blob == blob)
            .map(Arc::clone);
        if let Some(k) = cached {
            return Ok(k);
        }
        // Whatever was cached no longer matches the row: drop it before trying the row.
        u.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&record.id);
        let dk = Self::domain_key_at(u, domain, record.domain_key_version)?;
        // The public key is bound in the associated data; comparing it with what the secret
        // derives also catches a blob that opens to a different key (it cannot, short of a
        // broken AEAD).
        let secret = if record.algorithm == Algorithm::Bip32Seed {
            let spec = WalletPublic::decode(&record.public_key)
                .map_err(|_| Error::KeyUnavailable)?
                .spec;
            let seed = dk
                .open_seed(&aad, blob)
                .map_err(|_| Error::KeyUnavailable)?;
            let (account, public) = seed.account(spec)?;
            if public.encode() != record.public_key {
                return Err(Error::KeyUnavailable);
            }
            LoadedSecret::Wallet {
                account,
                addresses: RwLock::new(HashMap::new()),
            }
        } else {
            let key = dk
                .open_signing_key(&aad, blob, record.algorithm)
                .map_err(|_| Error::KeyUnavailable)?;
            if key.public_key() != record.public_key.as_slice() {
                return Err(Error::KeyUnavailable);
            }
            LoadedSecret::Key(key)
        };
        if u.destroyed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&record.id)
        {
            return Err(Error::KeyDestroyed);
        }
        let loaded = Arc::new(LoadedKey {
            aad,
            blob: blob.to_vec(),
            secret,
        });
        u.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(record.id, Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Signs with a stored key. The signature has been verified before it is returned.
    ///
    /// # Errors
    /// [`Error::Sealed`], [`Error::KeyDestroyed`], [`Error::KeyUnavailable`] (blob failed to
    /// open), or [`Error::Crypto`] (wrong payload kind, self-check failure).
    pub fn sign(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        payload: Payload<'_>,
    ) -> Result<Signature, Error> {
        let u = self.unsealed()?;
        // A cold key is never opened; the temperature must be the one the vault set.
        let loaded = Self::open_for_signing(&u, domain, record)?;
        drop(u);
        match &loaded.secret {
            LoadedSecret::Key(key) => Ok(key.sign(payload)?),
            // A wallet signs only through `sign_wallet`, for one of its addresses.
            LoadedSecret::Wallet { .. } => Err(Error::KeyUnavailable),
        }
    }

    /// Signs `digest` (ECDSA, low-S, with recovery id) with the key of a wallet's address
    /// `index` on its receive or change branch: only paths under the wallet's own account.
    /// The signature has been verified before it is returned.
    ///
    /// # Errors
    /// As [`Keystore::sign`]; [`Error::KeyUnavailable`] if the record is not a wallet.
    pub fn sign_wallet(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        change: bool,
        index: u32,
        digest: &[u8; 32],
    ) -> Result<Signature, Error> {
        let key = self.wallet_address_key(domain, record, change, index)?;
        Ok(key.sign(Payload::Digest(digest))?)
    }

    /// As [`Keystore::sign_wallet`], for chains that accept only some signatures (Antelope's
    /// canonical form) or prefer some (Bitcoin's low R): the first RFC 6979 nonce whose
    /// signature `accept`s.
    ///
    /// # Errors
    /// As [`Keystore::sign_wallet`].
    pub fn sign_wallet_until(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        change: bool,
        index: u32,
        digest: &[u8; 32],
        accept: impl Fn(&[u8; 64]) -> bool,
    ) -> Result<Signature, Error> {
        let key = self.wallet_address_key(domain, record, change, index)?;
        Ok(key.sign_digest_until(digest, accept)?)
    }

    /// A BLS signature of a validator duty's 32-byte signing root by validator key `record`
    /// (not verified before release: see `strongroom-crypto`). The caller has recorded the
    /// duty with slashing protection first.
    ///
    /// # Errors
    /// As [`Keystore::sign`]; [`Error::KeyUnavailable`] if the record is not a validator key.
    pub fn sign_validator(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        signing_root: &[u8; 32],
    ) -> Result<[u8; 96], Error> {
        let u = self.unsealed()?;
        let loaded = Self::open_for_signing(&u, domain, record)?;
        drop(u);
        match &loaded.secret {
            LoadedSecret::Key(key) if record.algorithm == Algorithm::Bls12381 => {
                Ok(key.sign_bls(signing_root)?)
            }
            _ => Err(Error::KeyUnavailable),
        }
    }

    /// A BIP-341 key-path signature of `sighash` by a wallet's address `index` (its key
    /// tweaked as BIP-86 says, with no script tree), with fresh BIP-340 auxiliary randomness.
    /// Verified against the tweaked key before it is returned.
    ///
    /// # Errors
    /// As [`Keystore::sign_wallet`]; entropy failures.
    pub fn sign_wallet_taproot(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        change: bool,
        index: u32,
        sighash: &[u8; 32],
    ) -> Result<[u8; 64], Error> {
        let key = self.wallet_address_key(domain, record, change, index)?;
        let mut aux = Zeroizing::new([0u8; 32]);
        self.entropy
            .fill(aux.as_mut())
            .map_err(|_| strongroom_crypto::Error::Entropy)?;
        Ok(key.sign_taproot_key_spend(sighash, None, &aux)?)
    }

    fn wallet_address_key(
        &self,
        domain: &DomainRecord,
        record: &KeyRecord,
        change: bool,
        index: u32,
    ) -> Result<Arc<SigningKey>, Error> {
        let u = self.unsealed()?;
        let loaded = Self::open_for_signing(&u, domain, record)?;
        drop(u);
        // A wallet's addresses sign with secp256k1: a domain that disabled it stops them too.
        if let Err(e) = domain.algorithms.may_sign(Algorithm::Secp256k1) {
            return Err(Error::AlgorithmRefused(e));
        }
        let LoadedSecret::Wallet { account, addresses } = &loaded.secret else {
            return Err(Error::KeyUnavailable);
        };
        let cached = addresses
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(change, index))
            .map(Arc::clone);
        if let Some(key) = cached {
            return Ok(key);
        }
        let key = Arc::new(account.signing_key(change, index)?);
        let mut cache = addresses
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= WALLET_KEY_CACHE {
            cache.clear();
        }
        cache.insert((change, index), Arc::clone(&key));
        Ok(key)
    }

    /// The checks before any signature: the temperature is the vault's (MAC) and not cold.
    fn open_for_signing(
        u: &Unsealed,
        domain: &DomainRecord,
        record: &KeyRecord,
    ) -> Result<Arc<LoadedKey>, Error> {
        if !u.record_mac.verify(
            &temperature_binding(&u.vault_id, record),
            &record.temperature_mac,
        ) {
            return Err(Error::KeyUnavailable);
        }
        // Crypto agility: a domain that disabled the algorithm signs nothing with it.
        if let Err(e) = domain.algorithms.may_sign(record.algorithm) {
            return Err(Error::AlgorithmRefused(e));
        }
        if record.temperature == Temperature::Cold {
            return Err(Error::KeyCold);
        }
        Self::loaded_key(u, domain, record)
    }

    /// Drops a key from memory (it was frozen); it is opened again from its blob if it is
    /// warmed and used.
    pub fn evict_key(&self, id: KeyId) {
        if let State::Unsealed(u) = &*self.read() {
            u.keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        }
    }

    /// Drops a destroyed domain's master key and keys from memory; the keys are refused from
    /// then on, as after [`Keystore::forget_key`].
    pub fn forget_domain(&self, id: DomainId, keys: &[KeyId]) {
        if let State::Unsealed(u) = &*self.read() {
            u.domain_keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|(d, _), _| *d != id);
        }
        for k in keys {
            self.forget_key(*k);
        }
    }

    /// Whether `record`'s sealed secret opens (under the domain master key version it names)
    /// to the key its public key says: checked before an imported blob is put back online.
    ///
    /// # Errors
    /// As signing does: [`Error::KeyUnavailable`] when it does not open.
    pub fn check_opens(&self, domain: &DomainRecord, record: &KeyRecord) -> Result<(), Error> {
        let u = self.unsealed()?;
        Self::loaded_key(&u, domain, record).map(|_| ())
    }

    /// Drops every opened domain master key from memory (they are opened again from their
    /// rows when next needed): after another node ended a rotation, say.
    pub fn forget_domain_keys(&self) {
        if let State::Unsealed(u) = &*self.read() {
            u.domain_keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
    }

    /// Drops a destroyed key from memory and refuses to load it again while unsealed.
    pub fn forget_key(&self, id: KeyId) {
        if let State::Unsealed(u) = &*self.read() {
            u.destroyed
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id);
            u.keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        }
    }

    /// Authenticates a stored record (its canonical binding), so that rows a database editor
    /// adds or changes are refused.
    ///
    /// # Errors
    /// [`Error::Sealed`] or [`Error::NotInitialized`].
    pub fn record_mac(&self, binding: &[u8]) -> Result<[u8; 32], Error> {
        Ok(self.unsealed()?.record_mac.mac(binding))
    }

    /// Checks a record's MAC.
    ///
    /// # Errors
    /// [`Error::Sealed`] or [`Error::NotInitialized`].
    pub fn verify_record_mac(&self, binding: &[u8], tag: &[u8; 32]) -> Result<bool, Error> {
        Ok(self.unsealed()?.record_mac.verify(binding, tag))
    }

    /// Seals an operator's TOTP secret, bound to the operator's id.
    ///
    /// # Errors
    /// [`Error::Sealed`] or entropy failures.
    pub fn seal_totp(&self, operator: OperatorId, secret: &TotpSecret) -> Result<Vec<u8>, Error> {
        let u = self.unsealed()?;
        Ok(u.operator_kek.seal_totp_secret(
            &operator_aad(&u.vault_id, operator),
            secret,
            self.entropy.as_ref(),
        )?)
    }

    /// Opens an operator's TOTP secret.
    ///
    /// # Errors
    /// [`Error::Sealed`]; [`Error::KeyUnavailable`] if the blob was tampered with or moved.
    pub fn open_totp(&self, operator: OperatorId, blob: &[u8]) -> Result<TotpSecret, Error> {
        let u = self.unsealed()?;
        u.operator_kek
            .open_totp_secret(&operator_aad(&u.vault_id, operator), blob)
            .map_err(|_| Error::KeyUnavailable)
    }

    /// Seals the private part of a request's result (an operator's enrolment secrets), bound
    /// to the request, so that only the vault can show it again.
    ///
    /// # Errors
    /// [`Error::Sealed`] or entropy failures.
    pub fn seal_request_result(
        &self,
        request: PendingId,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let u = self.unsealed()?;
        Ok(u.operator_kek.seal_secret_bytes(
            &request_result_aad(&u.vault_id, request),
            plaintext,
            self.entropy.as_ref(),
        )?)
    }

    /// Opens what [`Keystore::seal_request_result`] sealed.
    ///
    /// # Errors
    /// [`Error::Sealed`]; [`Error::KeyUnavailable`] if tampered or moved.
    pub fn open_request_result(
        &self,
        request: PendingId,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let u = self.unsealed()?;
        u.operator_kek
            .open_secret_bytes(&request_result_aad(&u.vault_id, request), blob)
            .map_err(|_| Error::KeyUnavailable)
    }

    /// Signs a chain head, if unsealed (while sealed, records are chained but unsigned until
    /// the first head after unsealing covers them).
    #[must_use]
    pub fn sign_head(&self, seq: u64, hash: [u8; 32], time: UnixMillis) -> Option<SignedHead> {
        let u = self.unsealed().ok()?;
        let msg = strongroom_audit::head_message(&u.vault_id, seq, &hash, time);
        Some(SignedHead {
            vault_id: u.vault_id,
            seq,
            hash,
            time,
            signature: u.audit.sign(&msg),
        })
    }
}

/// Layered encryption with the keys of the unsealed vault: fails with
/// [`CoreError::Sealed`] from the moment the vault seals.
impl FieldCipher for Keystore {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CoreError> {
        let u = self.unsealed().map_err(|_| CoreError::Sealed)?;
        u.storage
            .seal(aad, plaintext, self.entropy.as_ref())
            .map_err(|_| CoreError::Entropy)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CoreError> {
        let u = self.unsealed().map_err(|_| CoreError::Sealed)?;
        u.storage
            .open(aad, sealed)
            .map_err(|_| CoreError::Corrupt("sealed field"))
    }

    fn blind_index(&self, purpose: &[u8], value: &[u8]) -> Result<[u8; 32], CoreError> {
        let u = self.unsealed().map_err(|_| CoreError::Sealed)?;
        Ok(u.storage.blind_index(purpose, value))
    }
}

impl Unsealed {
    fn sealed(&self) -> RwLockReadGuard<'_, Sealed> {
        self.sealed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn wrap_root(hsm: &dyn RootWrapper, vault_id: &VaultId, root: &RootKey) -> Result<HsmWrap, Error> {
    let key_label = hsm.key_label().to_owned();
    let aad = hsm_aad(vault_id, &key_label);
    let wrapped = hsm.wrap(&aad, root)?;
    // Nothing is persisted that the token cannot open again.
    if !hsm
        .unwrap(&aad, &wrapped)?
        .matches_check(&root.check_value())
    {
        return Err(crate::HsmError::UnwrapFailed.into());
    }
    Ok(HsmWrap { key_label, wrapped })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::seal::ShamirSeal;
    use strongroom_crypto::OsEntropy;

    pub(super) struct Vault {
        pub(super) ks: Keystore,
        pub(super) meta: VaultMeta,
        pub(super) shares: Vec<Zeroizing<String>>,
    }

    pub(super) fn vault(shares: u8, threshold: u8) -> Vault {
        let ks = Keystore::new(Arc::new(OsEntropy));
        let mut id = [0u8; 16];
        EntropySource::fill(&OsEntropy, &mut id).unwrap();
        let vault_id = VaultId::from_random(id);
        let init = ks
            .initialize(
                vault_id,
                ShamirSeal { shares, threshold },
                None,
                UnixMillis(5),
                b"t",
            )
            .unwrap();
        let meta = VaultMeta {
            vault_id,
            created_at: UnixMillis(1),
            init: Some(init.record),
        };
        ks.load(&meta).unwrap();
        Vault {
            ks,
            meta,
            shares: init.shares,
        }
    }

    /// A software stand-in for a token key, to test the keystore's side of a hardware seal
    /// (the real token is tested in strongroom-pkcs11 and end to end).
    struct SoftWrapper {
        label: &'static str,
        key: AeadKey,
    }

    impl SoftWrapper {
        fn new(label: &'static str) -> Self {
            Self {
                label,
                key: AeadKey::generate(&OsEntropy).unwrap(),
            }
        }
    }

    impl RootWrapper for SoftWrapper {
        fn key_label(&self) -> &str {
            self.label
        }
        fn wrap(&self, aad: &[u8], root: &RootKey) -> Result<Vec<u8>, crate::HsmError> {
            Ok(self
                .key
                .seal_secret_bytes(aad, root.danger_expose_bytes(), &OsEntropy)
                .unwrap())
        }
        fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<RootKey, crate::HsmError> {
            let b = self
                .key
                .open_secret_bytes(aad, wrapped)
                .map_err(|_| crate::HsmError::UnwrapFailed)?;
            let mut a = Zeroizing::new([0u8; 32]);
            a.copy_from_slice(&b);
            Ok(RootKey::danger_from_bytes(&a))
        }
    }

    fn meta_with(vault_id: VaultId, record: InitRecord) -> VaultMeta {
        VaultMeta {
            vault_id,
            created_at: UnixMillis(1),
            init: Some(record),
        }
    }

    #[test]
    fn a_token_wrapped_root_unseals_only_with_its_key_and_vault() {
        let hsm = SoftWrapper::new("root");
        let ks = Keystore::new(Arc::new(OsEntropy));
        let vault_id = VaultId::from_random([3; 16]);
        let seal = ShamirSeal {
            shares: 3,
            threshold: 2,
        };
        let init = ks
            .initialize(vault_id, seal, Some(&hsm), UnixMillis(5), b"t")
            .unwrap();
        let meta = meta_with(vault_id, init.record.clone());
        ks.load(&meta).unwrap();
        assert_eq!(ks.seal_kind(), Some(SealKind::Pkcs11));
        assert_eq!(ks.hsm_key_label().as_deref(), Some("root"));

        // Another key with the same label cannot open it; nor can a key with another label.
        let impostor = SoftWrapper::new("root");
        assert_eq!(
            ks.unseal_with(&impostor).unwrap_err(),
            Error::Hsm(crate::HsmError::UnwrapFailed)
        );
        let relabelled = SoftWrapper::new("other");
        assert!(matches!(
            ks.unseal_with(&relabelled).unwrap_err(),
            Error::Hsm(crate::HsmError::KeyLabelMismatch { .. })
        ));
        assert!(ks.status().sealed);

        // The same configuration under another vault id does not open.
        let moved = Keystore::new(Arc::new(OsEntropy));
        moved
            .load(&meta_with(
                VaultId::from_random([4; 16]),
                init.record.clone(),
            ))
            .unwrap();
        assert_eq!(
            moved.unseal_with(&hsm).unwrap_err(),
            Error::Hsm(crate::HsmError::UnwrapFailed)
        );

        // The right key unseals; the recovery shares still unseal too.
        assert!(!ks.unseal_with(&hsm).unwrap().sealed);
        assert_eq!(ks.unseal_with(&hsm).unwrap_err(), Error::AlreadyUnsealed);
        let by_shares = Keystore::new(Arc::new(OsEntropy));
        by_shares.load(&meta).unwrap();
        by_shares.submit_share(&init.shares[0]).unwrap();
        assert!(!by_shares.submit_share(&init.shares[2]).unwrap().sealed);
    }

    #[test]
    fn resealing_moves_between_shamir_and_a_token_keeping_the_shares() {
        let v = vault(2, 2);
        v.ks.submit_share(&v.shares[0]).unwrap();
        v.ks.submit_share(&v.shares[1]).unwrap();
        assert_eq!(v.ks.seal_kind(), Some(SealKind::Shamir));
        let hsm = SoftWrapper::new("root");
        let to_hsm = v.ks.reseal(Some(&hsm)).unwrap();
        let mut record = v.meta.init.clone().unwrap();
        v.ks.adopt_seal(&to_hsm).unwrap();
        assert_eq!(v.ks.seal_kind(), Some(SealKind::Pkcs11));
        record.seal_config = to_hsm;
        let ks = Keystore::new(Arc::new(OsEntropy));
        ks.load(&meta_with(v.meta.vault_id, record.clone()))
            .unwrap();
        assert_eq!(ks.seal_kind(), Some(SealKind::Pkcs11));
        assert!(!ks.unseal_with(&hsm).unwrap().sealed);

        // And back: the shares are what opens it, the token no longer does.
        record.seal_config = ks.reseal(None).unwrap();
        let back = Keystore::new(Arc::new(OsEntropy));
        back.load(&meta_with(v.meta.vault_id, record)).unwrap();
        assert_eq!(back.seal_kind(), Some(SealKind::Shamir));
        assert_eq!(back.unseal_with(&hsm).unwrap_err(), Error::NotHsmSealed);
        back.submit_share(&v.shares[1]).unwrap();
        assert!(!back.submit_share(&v.shares[0]).unwrap().sealed);
        assert_eq!(v.ks.status().threshold, 2);
    }

    #[test]
    fn unseal_counts_only_good_distinct_shares() {
        let v = vault(5, 3);
        assert!(v.ks.status().sealed);
        assert_eq!(v.ks.submit_share(&v.shares[0]).unwrap().progress, 1);
        assert_eq!(
            v.ks.submit_share(&v.shares[0]).unwrap_err(),
            Error::DuplicateShare
        );
        assert_eq!(
            v.ks.submit_share("srs1-00").unwrap_err(),
            Error::MalformedShare
        );
        let other = vault(5, 3);
        assert_eq!(
            v.ks.submit_share(&other.shares[1]).unwrap_err(),
            Error::ForeignShare
        );
        assert_eq!(v.ks.status().progress, 1, "refused shares are not counted");
        assert_eq!(v.ks.submit_share(&v.shares[3]).unwrap().progress, 2);
        let s = v.ks.submit_share(&v.shares[4]).unwrap();
        assert!(!s.sealed);
        assert!(v.ks.sign_head(1, [0; 32], UnixMillis(1)).is_some());
        v.ks.seal();
        assert!(v.ks.status().sealed);
        assert!(v.ks.sign_head(1, [0; 32], UnixMillis(1)).is_none());
    }

    #[test]
    fn a_share_with_the_right_header_but_wrong_value_is_invalid() {
        let v = vault(3, 2);
        // Same vault and index, different value: re-encode with a tampered body and checksum.
        let other = {
            let ks = Keystore::new(Arc::new(OsEntropy));
            ks.initialize(
                v.meta.vault_id,
                ShamirSeal {
                    shares: 3,
                    threshold: 2,
                },
                None,
                UnixMillis(5),
                b"t",
            )
            .unwrap()
            .shares
        };
        assert_eq!(
            v.ks.submit_share(&other[0]).unwrap_err(),
            Error::InvalidShare
        );
        assert_eq!(v.ks.status().progress, 0);
    }

    pub(super) fn unsealed() -> Vault {
        let v = vault(1, 1);
        v.ks.submit_share(&v.shares[0]).unwrap();
        v
    }

    pub(super) fn domain(v: &Vault, n: u8, name: &str, t: Temperature) -> DomainRecord {
        v.ks.create_domain(
            DomainId::from_random([n; 16]),
            name.parse().unwrap(),
            t,
            UnixMillis(9),
        )
        .unwrap()
    }

    pub(super) fn key(v: &Vault, d: &DomainRecord, n: u8, alg: Algorithm) -> KeyRecord {
        v.ks.create_key(d, KeyId::from_random([n; 16]), alg, None, UnixMillis(10))
            .unwrap()
    }

    /// Crypto agility inside the boundary: the keystore itself refuses new keys of a
    /// deprecated or disabled algorithm and signatures of a disabled one, whatever the caller.
    #[test]
    fn a_domain_algorithm_policy_binds_key_creation_and_signing() {
        use strongroom_core::{AlgorithmPolicy, AlgorithmRefusal, AlgorithmState};
        let v = unsealed();
        let d = domain(&v, 2, "a", Temperature::Hot);
        let k = key(&v, &d, 5, Algorithm::Secp256k1);
        let digest = [7u8; 32];
        let deprecated = DomainRecord {
            algorithms: AlgorithmPolicy::default()
                .with(Algorithm::Secp256k1, AlgorithmState::Deprecated),
            ..d.clone()
        };
        assert_eq!(
            v.ks.create_key(
                &deprecated,
                KeyId::from_random([6; 16]),
                Algorithm::Secp256k1,
                None,
                UnixMillis(10),
            )
            .unwrap_err(),
            Error::AlgorithmRefused(AlgorithmRefusal::Deprecated)
        );
        // Other algorithms are untouched; the deprecated one still signs.
        v.ks.create_key(
            &deprecated,
            KeyId::from_random([7; 16]),
            Algorithm::Ed25519,
            None,
            UnixMillis(10),
        )
        .unwrap();
        v.ks.sign(&deprecated, &k, Payload::Digest(&digest))
            .unwrap();
        let disabled = DomainRecord {
            algorithms: AlgorithmPolicy::default()
                .with(Algorithm::Secp256k1, AlgorithmState::Disabled),
            ..d.clone()
        };
        assert_eq!(
            v.ks.sign(&disabled, &k, Payload::Digest(&digest))
                .unwrap_err(),
            Error::AlgorithmRefused(AlgorithmRefusal::Disabled)
        );
        // Allowed again: it signs again (nothing about the key changed).
        v.ks.sign(&d, &k, Payload::Digest(&digest)).unwrap();
    }

    #[test]
    fn keys_sign_and_blobs_are_bound_to_their_identity() {
        let v = unsealed();
        let d1 = domain(&v, 2, "a", Temperature::Hot);
        let d2 = domain(&v, 3, "b", Temperature::Hot);
        let k1 =
            v.ks.create_key(
                &d1,
                KeyId::from_random([4; 16]),
                Algorithm::Secp256k1,
                Some("x".into()),
                UnixMillis(10),
            )
            .unwrap();
        let k2 = key(&v, &d1, 5, Algorithm::Secp256k1);
        let digest = [7u8; 32];
        let sig = v.ks.sign(&d1, &k1, Payload::Digest(&digest)).unwrap();
        strongroom_crypto::verify(
            Algorithm::Secp256k1,
            &k1.public_key,
            Payload::Digest(&digest),
            &sig.bytes,
        )
        .unwrap();

        // Fresh keystore state (no caches) for each tamper check.
        let fresh = || {
            v.ks.seal();
            v.ks.submit_share(&v.shares[0]).unwrap();
        };
        let tampered: Vec<(&str, KeyRecord, &DomainRecord)> = vec![
            (
                "moved to another domain",
                KeyRecord {
                    domain: d2.id,
                    ..k1.clone()
                },
                &d2,
            ),
            (
                "blob copied to another key's row",
                KeyRecord {
                    sealed_secret: k1.sealed_secret.clone(),
                    ..k2.clone()
                },
                &d1,
            ),
            (
                "label edited",
                KeyRecord {
                    label: Some("y".into()),
                    ..k1.clone()
                },
                &d1,
            ),
            (
                "created time edited",
                KeyRecord {
                    created_at: UnixMillis(11),
                    ..k1.clone()
                },
                &d1,
            ),
            (
                "public key swapped",
                KeyRecord {
                    public_key: k2.public_key.clone(),
                    ..k1.clone()
                },
                &d1,
            ),
            (
                "version edited",
                KeyRecord {
                    version: 2,
                    ..k1.clone()
                },
                &d1,
            ),
        ];
        for (what, rec, dom) in tampered {
            // With warm caches (the key just signed) the edited row must still be refused...
            v.ks.sign(&d1, &k1, Payload::Digest(&digest)).unwrap();
            assert_eq!(
                v.ks.sign(dom, &rec, Payload::Digest(&digest)).unwrap_err(),
                Error::KeyUnavailable,
                "{what} (warm)"
            );
            // ...and with cold ones.
            fresh();
            assert_eq!(
                v.ks.sign(dom, &rec, Payload::Digest(&digest)).unwrap_err(),
                Error::KeyUnavailable,
                "{what}"
            );
        }
        // A domain blob moved to another domain's row fails too.
        fresh();
        let moved = DomainRecord {
            wrapped_key: d1.wrapped_key.clone(),
            ..d2.clone()
        };
        let k3 = v.ks.create_key(
            &d2,
            KeyId::from_random([6; 16]),
            Algorithm::Ed25519,
            None,
            UnixMillis(10),
        );
        assert!(k3.is_ok());
        fresh();
        assert_eq!(
            v.ks.sign(&moved, &k3.unwrap(), Payload::Message(b"m"))
                .unwrap_err(),
            Error::SealedStateCorrupt
        );
        // A domain row whose name or creation time was edited does not open either.
        for edited in [
            DomainRecord {
                name: "zz".parse().unwrap(),
                ..d1.clone()
            },
            DomainRecord {
                created_at: UnixMillis(1),
                ..d1.clone()
            },
        ] {
            fresh();
            assert_eq!(
                v.ks.sign(&edited, &k1, Payload::Digest(&digest))
                    .unwrap_err(),
                Error::SealedStateCorrupt
            );
        }
        // Destroyed keys do not sign.
        let gone = KeyRecord {
            destroyed_at: Some(UnixMillis(12)),
            sealed_secret: None,
            ..k1.clone()
        };
        assert_eq!(
            v.ks.sign(&d1, &gone, Payload::Digest(&digest)).unwrap_err(),
            Error::KeyDestroyed
        );
    }

    /// Rotation: the new version seals new keys at once, old blobs keep opening under the
    /// retiring version until moved, a moved blob opens under the new one with the same key,
    /// and once the retiring version is gone nothing under it opens. Versions are bound.
    #[test]
    fn a_rotated_domain_key_moves_blobs_and_the_retired_version_opens_nothing() {
        use strongroom_core::record::RetiringKey;
        let v = unsealed();
        let d = domain(&v, 2, "a", Temperature::Hot);
        let k = key(&v, &d, 4, Algorithm::Ed25519);
        assert_eq!(k.domain_key_version, 1);
        let (version, wrapped) = v.ks.rotate_domain_key(&d).unwrap();
        assert_eq!(version, 2);
        let rotating = DomainRecord {
            key_version: 2,
            wrapped_key: wrapped.clone(),
            retiring: Some(RetiringKey {
                version: 1,
                wrapped_key: d.wrapped_key.clone(),
            }),
            ..d.clone()
        };
        assert_eq!(
            v.ks.rotate_domain_key(&rotating).unwrap_err(),
            Error::RotationInProgress
        );
        let fresh = || {
            v.ks.evict_key(k.id);
            v.ks.forget_domain(d.id, &[]);
        };
        fresh();
        v.ks.sign(&rotating, &k, Payload::Message(b"m")).unwrap();
        let k2 = key(&v, &rotating, 5, Algorithm::Ed25519);
        assert_eq!(k2.domain_key_version, 2);
        let moved = KeyRecord {
            sealed_secret: Some(v.ks.rewrap_key(&rotating, &k).unwrap()),
            domain_key_version: 2,
            ..k.clone()
        };
        assert_ne!(moved.sealed_secret, k.sealed_secret);
        assert_eq!(
            v.ks.rewrap_key(&rotating, &moved).unwrap_err(),
            Error::KeyUnavailable
        );
        // The rotation over: the retiring version is gone.
        let done = DomainRecord {
            retiring: None,
            ..rotating.clone()
        };
        fresh();
        let sig = v.ks.sign(&done, &moved, Payload::Message(b"m")).unwrap();
        strongroom_crypto::verify(
            Algorithm::Ed25519,
            &k.public_key,
            Payload::Message(b"m"),
            &sig.bytes,
        )
        .unwrap();
        fresh();
        assert_eq!(
            v.ks.sign(&done, &k, Payload::Message(b"m")).unwrap_err(),
            Error::KeyUnavailable
        );
        v.ks.sign(&done, &k2, Payload::Message(b"m")).unwrap();
        // A version's wrap passed off as another's does not open.
        for (version, wrapped_key) in [(1, wrapped.clone()), (2, d.wrapped_key.clone())] {
            fresh();
            let swapped = DomainRecord {
                key_version: version,
                wrapped_key,
                retiring: None,
                ..d.clone()
            };
            let k = KeyRecord {
                domain_key_version: version,
                ..k.clone()
            };
            assert_eq!(
                v.ks.sign(&swapped, &k, Payload::Message(b"m")).unwrap_err(),
                Error::SealedStateCorrupt
            );
        }
    }

    #[test]
    fn a_destroyed_key_never_signs_again_even_with_a_stale_record() {
        let v = unsealed();
        let d = domain(&v, 2, "a", Temperature::Hot);
        let k = key(&v, &d, 4, Algorithm::Ed25519);
        v.ks.sign(&d, &k, Payload::Message(b"m")).unwrap();
        v.ks.forget_key(k.id);
        // `k` still looks live (the caller read it before the destroy committed).
        assert_eq!(
            v.ks.sign(&d, &k, Payload::Message(b"m")).unwrap_err(),
            Error::KeyDestroyed
        );
    }

    #[test]
    fn cold_keys_do_not_sign_and_temperatures_cannot_be_forged() {
        let v = unsealed();
        let d = domain(&v, 2, "a", Temperature::Cold);
        let k = key(&v, &d, 4, Algorithm::Ed25519);
        assert_eq!(k.temperature, Temperature::Cold);
        assert_eq!(
            v.ks.sign(&d, &k, Payload::Message(b"m")).unwrap_err(),
            Error::KeyCold
        );
        // Claiming hot with the cold key's MAC: refused.
        let forged = KeyRecord {
            temperature: Temperature::Hot,
            ..k.clone()
        };
        assert!(!v.ks.verify_temperature(&forged).unwrap());
        assert_eq!(
            v.ks.sign(&d, &forged, Payload::Message(b"m")).unwrap_err(),
            Error::KeyUnavailable
        );
        // Properly warmed (MAC from the vault): signs.
        let mut hot = KeyRecord {
            temperature: Temperature::Hot,
            temperature_since: UnixMillis(20),
            hot_idle_secs: Some(60),
            ..k.clone()
        };
        hot.temperature_mac = v.ks.temperature_mac(&hot).unwrap();
        v.ks.sign(&d, &hot, Payload::Message(b"m")).unwrap();
        // Its idle limit and start time are under the MAC too: neither can be stretched.
        for stretched in [
            KeyRecord {
                hot_idle_secs: None,
                ..hot.clone()
            },
            KeyRecord {
                hot_idle_secs: Some(61),
                ..hot.clone()
            },
            KeyRecord {
                temperature_since: UnixMillis(21),
                ..hot.clone()
            },
        ] {
            assert!(!v.ks.verify_temperature(&stretched).unwrap());
        }
        // The domain's new-key temperature is bound into its master key.
        v.ks.seal();
        v.ks.submit_share(&v.shares[0]).unwrap();
        let warmed_domain = DomainRecord {
            new_key_temperature: Temperature::Hot,
            ..d.clone()
        };
        assert_eq!(
            v.ks.sign(&warmed_domain, &hot, Payload::Message(b"m"))
                .unwrap_err(),
            Error::SealedStateCorrupt
        );
        // A destroyed domain signs nothing, even with its key still in memory.
        v.ks.sign(&d, &hot, Payload::Message(b"m")).unwrap();
        v.ks.forget_domain(d.id, &[hot.id]);
        let destroyed = DomainRecord {
            destroyed_at: Some(UnixMillis(30)),
            ..d.clone()
        };
        for domain in [&d, &destroyed] {
            assert_eq!(
                v.ks.sign(domain, &hot, Payload::Message(b"m")).unwrap_err(),
                Error::KeyDestroyed
            );
        }
    }

    #[test]
    fn sealed_keystore_refuses_key_work() {
        let v = vault(1, 1);
        let d = DomainRecord {
            id: DomainId::from_random([2; 16]),
            name: "a".parse().unwrap(),
            wrapped_key: vec![],
            created_at: UnixMillis(1),
            new_key_temperature: Temperature::Hot,
            algorithms: strongroom_core::AlgorithmPolicy::default(),
            destroyed_at: None,
            key_version: 1,
            retiring: None,
        };
        assert_eq!(
            v.ks.create_domain(d.id, d.name.clone(), Temperature::Hot, UnixMillis(1))
                .unwrap_err(),
            Error::Sealed
        );
        assert_eq!(
            v.ks.create_key(
                &d,
                KeyId::from_random([3; 16]),
                Algorithm::P256,
                None,
                UnixMillis(1)
            )
            .unwrap_err(),
            Error::Sealed
        );
    }
}
