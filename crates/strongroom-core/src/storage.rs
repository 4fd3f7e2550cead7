//! The storage port, which SQLite and PostgreSQL implement; the server only sees this. Also
//! the layered-encryption port ([`FieldCipher`]) through which storage seals private columns
//! without holding any key.
//!
//! Reads are independent short transactions. Writes go through [`Storage::write`], which runs
//! one transaction: the server's single writer batches many requests' mutations and audit
//! records into it (group commit), and each mutation is atomic on its own, so one failing
//! request never aborts its neighbours.

use crate::id::DomainName;
use crate::operator::OperatorName;
use crate::quorum::QuorumRule;
use crate::record::{
    ApprovalRecord, AuditRecord, DomainRecord, InitRecord, KeyRecord, OperatorRecord,
    PendingRecord, SignedHead, TokenRecord, VaultMeta,
};
use crate::{DomainId, Error, KeyId, OperatorId, PendingId, TokenId, UnixMillis};

/// The [`Error::Conflict`](crate::Error::Conflict) a storage backend answers when a
/// [`Mutation::RecordSpend`] would pass its limit.
pub const LIMIT_EXCEEDED: &str = "rolling limit exceeded";

/// A state change, applied atomically together with its request's audit record.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Mutation {
    /// Record initialisation; fails with [`Error::Conflict`] if already initialised.
    Initialize(InitRecord),
    /// Replace the seal configuration (a seal migration); fails with [`Error::Conflict`]
    /// unless the stored configuration is still `from`.
    ChangeSeal {
        /// The configuration the change was made from.
        from: Vec<u8>,
        /// The new configuration.
        to: Vec<u8>,
    },
    /// Replace the seal configuration and every live domain's wrapped master key (a rekey);
    /// fails with [`Error::Conflict`] unless the stored configuration is still `from`, each
    /// domain's wrapped key is still what was read, and no other live domain exists (one
    /// created meanwhile would be left under the old root).
    Rekey {
        /// The configuration the rekey was made from.
        from: Vec<u8>,
        /// The new configuration.
        to: Vec<u8>,
        /// Each live domain: its id, its wrapped key as read and as re-wrapped.
        wraps: Vec<(DomainId, Vec<u8>, Vec<u8>)>,
        /// Each live domain in a rotation: the same for its retiring key.
        retiring_wraps: Vec<(DomainId, Vec<u8>, Vec<u8>)>,
    },
    /// Start a domain master key rotation: `to_wrapped` (version `to_version`) becomes the
    /// current key and the current one retires; fails with [`Error::Conflict`] unless the
    /// domain is live, at `from_version` with `from_wrapped`, and not already rotating.
    RotateDomainKey {
        /// The domain.
        id: DomainId,
        /// Its current version as read.
        from_version: u32,
        /// Its current wrapped key as read.
        from_wrapped: Vec<u8>,
        /// The new version.
        to_version: u32,
        /// The new key, wrapped under the root.
        to_wrapped: Vec<u8>,
    },
    /// Move key blobs from a retiring domain master key to the current one; fails with
    /// [`Error::Conflict`] (moving none) if any row changed since it was read (destroyed,
    /// taken offline, moved by another node).
    RewrapKeys {
        /// The domain.
        domain: DomainId,
        /// The retiring version.
        from_version: u32,
        /// The current version.
        to_version: u32,
        /// Each key: its id, its sealed secret as read and as re-sealed.
        keys: Vec<(KeyId, Vec<u8>, Vec<u8>)>,
    },
    /// End a rotation: erase the retiring key. Fails with [`Error::Conflict`] while any live
    /// key (online or offline) is still under it.
    FinishDomainRotation {
        /// The domain.
        id: DomainId,
        /// The retiring version.
        version: u32,
    },
    /// Fails with [`Error::Conflict`] unless the stored seal configuration is this one (a
    /// domain master key wrapped under one root must not land after a rekey to another).
    ExpectSeal(Vec<u8>),
    /// Check and record a validator's duty by the slashing-protection rules
    /// ([`crate::slashing`]); fails with [`Error::Conflict`] ([`crate::slashing::SLASHABLE`])
    /// if they refuse it, or ([`crate::slashing::WRONG_CHAIN`]) if the domain is pinned to
    /// another chain (it is pinned to this one otherwise). Inside the write transaction, so
    /// that concurrent duties on any node cannot both pass.
    Eth2Duty(crate::slashing::DutyRecord),
    /// Merge an EIP-3076 interchange into the slashing-protection records for `domain`:
    /// signatures are added (one that disagrees with a recorded one leaves the signing root
    /// unknown), and each validator's lower bounds become the lowest slot, source and target
    /// of any history imported (nothing is known, so nothing is signed, before it). Fails with [`Error::Conflict`] ([`crate::slashing::WRONG_CHAIN`]) if the domain
    /// is pinned to another chain; pins it otherwise (an empty interchange only pins).
    Eth2Import {
        /// The domain importing.
        domain: DomainId,
        /// The interchange.
        interchange: crate::slashing::Interchange,
    },
    /// Authorise validator key `key` to sign its voluntary exit at `epoch` (a quorum-approved
    /// request does this; exits are irreversible).
    Eth2AuthorizeExit {
        /// The validator key.
        key: KeyId,
        /// The exit epoch.
        epoch: u64,
    },
    /// Make `domain`, which holds the validator's key, one of the validator's domains (so it
    /// may add records another domain began); pins the domain to the chain, or fails with
    /// [`Error::Conflict`] ([`crate::slashing::WRONG_CHAIN`]) if it is pinned to another.
    Eth2Join {
        /// The domain.
        domain: DomainId,
        /// The validator.
        validator: crate::slashing::Validator,
    },
    /// Fails with [`Error::Conflict`] ([`crate::slashing::KEY_NOT_HOT`]) unless key `key`
    /// is live and hot as stored now. Put before a duty: write transactions are serialised
    /// (on PostgreSQL by the write lock), so a demotion committed first, on any node, stops
    /// the duty, and one committed after it finds the duty recorded.
    RequireHotKey {
        /// The validator key.
        key: KeyId,
    },
    /// Record that validator key `key` was released to another signer (`how`: the operation),
    /// so that batch promotion passes it over; a key released again keeps its first record.
    Eth2Release {
        /// The key.
        key: KeyId,
        /// When.
        at: UnixMillis,
        /// The operation that released it.
        how: &'static str,
    },
    /// Fails with [`Error::Conflict`] ([`crate::slashing::KEY_NOT_COLD`]) unless key `key`
    /// is live and cold as stored now (a key leaving as a keystore must not be able to sign
    /// here, whatever another node's cache says).
    RequireColdKey {
        /// The key.
        key: KeyId,
    },
    /// A voluntary exit about to be signed: fails with [`Error::Conflict`]
    /// ([`crate::slashing::EXIT_NOT_AUTHORIZED`]) unless it was authorised for this key and
    /// epoch.
    Eth2Exit {
        /// The validator key.
        key: KeyId,
        /// The exit epoch.
        epoch: u64,
    },
    /// Set a wallet's policy; fails with [`Error::Conflict`] unless the stored version is
    /// `record.version - 1` (none stored for version 1).
    SetPolicy(crate::record::PolicyRecord),
    /// Count `amount` (256-bit, big-endian) of `asset` as spent by `wallet` at `at`; with a
    /// `limit`, fails with [`Error::Conflict`] ([`LIMIT_EXCEEDED`]) if the wallet's spends of the
    /// asset since `since` plus this one would exceed it. Counted inside the write
    /// transaction, so concurrent signatures on any node cannot overshoot together.
    RecordSpend {
        /// The wallet.
        wallet: KeyId,
        /// `native`, or a token's address (lowercase).
        asset: String,
        /// Base units, big-endian.
        amount: [u8; 32],
        /// When.
        at: UnixMillis,
        /// Start of the rolling window.
        since: UnixMillis,
        /// The most that may be spent in the window, big-endian.
        limit: Option<[u8; 32]>,
    },
    /// Store the answer to a request made with an idempotency key, unless `principal`
    /// already has a live answer under `key` (stored after `replaces_before`), which stays;
    /// an expired one is replaced.
    PutIdempotent {
        /// Who asked (their audit label): keys are per principal.
        principal: String,
        /// The client's key.
        key: String,
        /// The answer.
        record: crate::record::IdempotentRecord,
        /// Answers stored before this time have expired.
        replaces_before: UnixMillis,
    },
    /// Add a domain; names are unique.
    CreateDomain(DomainRecord),
    /// Add a key; fails with [`Error::Conflict`] unless its domain is live and its
    /// `domain_key_version` is the domain's current or retiring version (a key sealed under a
    /// version a rotation erased meanwhile would never open).
    CreateKey(KeyRecord),
    /// Erase a key's sealed secret and mark it destroyed.
    DestroyKey {
        /// The key.
        id: KeyId,
        /// When.
        at: UnixMillis,
    },
    /// Add a token.
    CreateToken(TokenRecord),
    /// Add an operator; names are unique.
    CreateOperator(OperatorRecord),
    /// Replace an operator's row, only if it still carries `expected_mac` (compare-and-swap:
    /// two concurrent logins cannot both consume the same one-time password).
    UpdateOperator {
        /// The row as it was read.
        expected_mac: [u8; 32],
        /// The new row.
        record: OperatorRecord,
    },
    /// Add a pending request.
    CreatePending(PendingRecord),
    /// Add an approval; one per approver and request.
    AddApproval(ApprovalRecord),
    /// Replace a pending request's row, only if it still carries `expected_mac`.
    UpdatePending {
        /// The row as it was read.
        expected_mac: [u8; 32],
        /// The new row.
        record: PendingRecord,
    },
    /// Change a key's temperature, only if its temperature MAC is still `expected_mac`.
    SetTemperature {
        /// The key.
        id: KeyId,
        /// The new temperature.
        temperature: crate::temperature::Temperature,
        /// When it was set.
        since: UnixMillis,
        /// The idle limit (hot keys only).
        hot_idle_secs: Option<u32>,
        /// Its MAC.
        mac: [u8; 32],
        /// The MAC as read.
        expected_mac: [u8; 32],
    },
    /// Replace a domain's algorithm policy, only if it is still `from` (the policy the
    /// request was decided from) and the domain is not destroyed.
    SetDomainAlgorithms {
        /// The domain.
        id: DomainId,
        /// The policy it must have now.
        from: crate::AlgorithmPolicy,
        /// The new policy.
        to: crate::AlgorithmPolicy,
    },
    /// Destroy a domain: erase its sealed master key and every key's sealed secret in it.
    DestroyDomain {
        /// The domain.
        id: DomainId,
        /// When.
        at: UnixMillis,
    },
    /// Take a cold key offline (its sealed secret now lives only in a cold-storage bundle):
    /// only if it is cold, not destroyed, and online with exactly the blob (and domain key
    /// version) the bundle holds — a rotation that moved it meanwhile makes this a conflict.
    TakeOffline {
        /// The key.
        id: KeyId,
        /// The sealed secret the bundle holds.
        sealed_secret: Vec<u8>,
        /// The domain master key version it is sealed under.
        domain_key_version: u32,
    },
    /// Bring an offline key back: only if it is offline and not destroyed.
    RestoreSecret {
        /// The key.
        id: KeyId,
        /// Its sealed secret, as it was before it went offline.
        sealed_secret: Vec<u8>,
    },
    /// Set (or replace) a quorum rule.
    SetQuorum(QuorumRule),
    /// Revoke a token.
    RevokeToken {
        /// The token.
        id: TokenId,
        /// When.
        at: UnixMillis,
        /// The row's new MAC (it covers the revocation).
        mac: [u8; 32],
    },
}

/// One open write transaction.
pub trait WriteTxn {
    /// Applies one request's mutations atomically: on error nothing of them remains and the
    /// transaction stays usable for the rest of the batch.
    ///
    /// # Errors
    /// [`Error::Conflict`] / [`Error::NotFound`] for rule violations, other variants for failures.
    fn apply(&mut self, mutations: &[Mutation]) -> Result<(), Error>;

    /// Appends a record to the audit chain.
    ///
    /// # Errors
    /// Any storage failure; the caller must then fail the whole batch.
    fn append_audit(&mut self, record: &AuditRecord) -> Result<(), Error>;

    /// Stores a signed chain head.
    ///
    /// # Errors
    /// Any storage failure.
    fn put_head(&mut self, head: &SignedHead) -> Result<(), Error>;
    /// The chain's last record as this transaction sees it (after any lock it holds): where
    /// the next record must attach when several nodes append to one chain.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn audit_tail(&mut self) -> Result<Option<(u64, [u8; 32])>, Error>;
    /// The hash of audit record `seq`, if the log has it.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_hash(&mut self, seq: u64) -> Result<Option<[u8; 32]>, Error>;
    /// Every row of the vault, as stored (sealed columns stay sealed): what a backup holds.
    /// Inside the write transaction, so it is one consistent copy, taken between batches.
    ///
    /// # Errors
    /// Storage failures.
    fn dump(&mut self) -> Result<Dump, Error>;
    /// Puts a backup's rows into this store, which must hold no initialised vault and no
    /// rows: the vault takes the dump's identity, with `seal_config` as its seal (a restore
    /// comes with a new root key).
    ///
    /// # Errors
    /// [`Error::Conflict`] if the store is not empty; [`Error::Corrupt`] if the dump does not
    /// have this schema's tables and columns; storage failures.
    fn restore(&mut self, dump: &Dump, seal_config: &[u8]) -> Result<(), Error>;
}

/// One stored value, typed even when null (a backup's cells).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// An integer column.
    Int(Option<i64>),
    /// A text column.
    Text(Option<String>),
    /// A byte-string column.
    Bytes(Option<Vec<u8>>),
}

/// A table's rows, in primary-key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDump {
    /// The table.
    pub table: String,
    /// Its columns, in the order of each row's cells.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

/// A copy of a vault's database: its identity and every table, parents before children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    /// The vault row (its seal configuration is the one at the time of the copy).
    pub vault: VaultMeta,
    /// Every other table.
    pub tables: Vec<TableDump>,
}

/// A change another node made, for this node's caches to forget what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A key's record changed (temperature, destruction, offline).
    Key(KeyId),
    /// A token was revoked.
    Token(TokenId),
    /// Anything may have changed (a domain destroyed, or changes were missed).
    Everything,
}

/// Layered encryption: seals private columns (names, labels, policies, request parameters,
/// audit payloads) before they reach the database, and computes the keyed hashes (blind
/// indexes) that look them up, so a database administrator sees ciphertext, row counts and
/// sizes. The keystore implements it with keys derived from the root key: it works only
/// while the vault is unsealed.
pub trait FieldCipher: Send + Sync {
    /// Seals `plaintext`, bound to `aad` (which column of which row), under a fresh nonce.
    ///
    /// # Errors
    /// [`Error::Sealed`] while the vault is sealed; [`Error::Entropy`].
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error>;
    /// Opens what [`FieldCipher::seal`] made with the same `aad`.
    ///
    /// # Errors
    /// [`Error::Sealed`] while the vault is sealed; [`Error::Corrupt`] if the blob was altered
    /// or moved to another row or column.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error>;
    /// The blind index of `value` for `purpose`: equal inputs give equal outputs, and nobody
    /// without the root key can compute or invert it.
    ///
    /// # Errors
    /// [`Error::Sealed`] while the vault is sealed.
    fn blind_index(&self, purpose: &[u8], value: &[u8]) -> Result<[u8; 32], Error>;
}

/// Called with each [`Change`]; must be quick (it runs on the storage's listener thread).
pub type ChangeListener = Box<dyn Fn(Change) + Send + Sync + 'static>;

/// A write batch: runs inside one transaction.
pub type WriteBatch<'a> = &'a mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), Error>;

/// Durable storage for vault state and the audit chain.
pub trait Storage: Send + Sync + 'static {
    /// The installation row.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn vault(&self) -> Result<VaultMeta, Error>;
    /// Tells `listener` about changes other processes make to the shared database, so that
    /// caches never act on a revoked token or a frozen key for longer than the notification
    /// takes. A backend only one process can open (SQLite) has nothing to report.
    ///
    /// # Errors
    /// The backend could not start listening.
    fn watch(&self, listener: ChangeListener) -> Result<(), Error> {
        let _ = listener;
        Ok(())
    }
    /// Seals private columns with `cipher` from now on (see [`FieldCipher`]); set once, at
    /// start. Until then, reading or writing a private column fails with [`Error::Sealed`],
    /// and audit records are stored in the clear.
    ///
    /// # Errors
    /// [`Error::Conflict`] if a cipher was already set.
    fn use_field_cipher(&self, cipher: std::sync::Arc<dyn FieldCipher>) -> Result<(), Error>;
    /// A domain by name.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn domain_by_name(&self, name: &DomainName) -> Result<Option<DomainRecord>, Error>;
    /// A domain by identifier.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn domain(&self, id: DomainId) -> Result<Option<DomainRecord>, Error>;
    /// All domains, ordered by name.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn domains(&self) -> Result<Vec<DomainRecord>, Error>;
    /// A key by identifier (destroyed keys included).
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn key(&self, id: KeyId) -> Result<Option<KeyRecord>, Error>;
    /// A key together with its domain, in one read (the signing hot path).
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn key_with_domain(&self, id: KeyId) -> Result<Option<(KeyRecord, DomainRecord)>, Error>;
    /// A domain's keys, oldest first.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn keys(&self, domain: DomainId) -> Result<Vec<KeyRecord>, Error>;
    /// A domain's online, live keys still sealed under master key `version` (at most
    /// `limit`), for a rotation to move.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn keys_to_rewrap(
        &self,
        domain: DomainId,
        version: u32,
        limit: u32,
    ) -> Result<Vec<KeyRecord>, Error>;
    /// How many of a domain's live keys are under master key `version`: `(online, offline)`
    /// (offline: in export bundles, waiting to be imported).
    ///
    /// # Errors
    /// Storage failure.
    fn keys_under(&self, domain: DomainId, version: u32) -> Result<(u64, u64), Error>;
    /// Hot keys that demote themselves when idle (`hot_idle_secs` set), across domains.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn idle_limited_keys(&self) -> Result<Vec<KeyRecord>, Error>;
    /// When `key` last signed, from the audit chain (the newest granted `key.sign` record):
    /// every node's signatures count, and a signature is recorded before it is returned.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn last_signature(&self, key: KeyId) -> Result<Option<UnixMillis>, Error>;
    /// The stored answer of `principal`'s request with idempotency key `key`, if any.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn idempotent(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<crate::record::IdempotentRecord>, Error>;
    /// A wallet's policy, if one was set.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn policy(&self, wallet: KeyId) -> Result<Option<crate::record::PolicyRecord>, Error>;
    /// What `wallet` has spent of `asset` since `since` (256-bit, big-endian).
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn spent_since(&self, wallet: KeyId, asset: &str, since: UnixMillis)
    -> Result<[u8; 32], Error>;
    /// The slashing-protection records of the validators `domain` recorded, as an EIP-3076
    /// interchange for the chain it is pinned to (`None`: not pinned).
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn eth2_export(&self, domain: DomainId) -> Result<Option<crate::slashing::Interchange>, Error>;
    /// The validator keys of `domain` released to another signer (see
    /// [`Mutation::Eth2Release`]), with when and how.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn eth2_released(&self, domain: DomainId) -> Result<Vec<(KeyId, UnixMillis, String)>, Error>;
    /// An operator by login name.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn operator_by_name(&self, name: &OperatorName) -> Result<Option<OperatorRecord>, Error>;
    /// An operator by identifier.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn operator(&self, id: OperatorId) -> Result<Option<OperatorRecord>, Error>;
    /// All operators, ordered by name.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn operators(&self) -> Result<Vec<OperatorRecord>, Error>;
    /// A pending (or decided) request.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn pending(&self, id: PendingId) -> Result<Option<PendingRecord>, Error>;
    /// Requests, newest first; only those with `status` if given.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn pendings(
        &self,
        status: Option<crate::record::RequestStatus>,
    ) -> Result<Vec<PendingRecord>, Error>;
    /// A request's approvals, oldest first.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn approvals(&self, id: PendingId) -> Result<Vec<ApprovalRecord>, Error>;
    /// All quorum rules.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn quorum_rules(&self) -> Result<Vec<QuorumRule>, Error>;
    /// A token by the SHA-256 of its value.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, Error>;
    /// All tokens (revoked and expired ones included), oldest first.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn tokens(&self) -> Result<Vec<TokenRecord>, Error>;
    /// A token by identifier.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn token(&self, id: TokenId) -> Result<Option<TokenRecord>, Error>;
    /// Sequence number and hash of the newest audit record.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn audit_tail(&self) -> Result<Option<(u64, [u8; 32])>, Error>;
    /// Up to `limit` audit records with `seq >= from`, in order.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn audit_records(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, Error>;
    /// All signed heads, in order.
    ///
    /// # Errors
    /// Storage failure or corrupt data.
    fn audit_heads(&self) -> Result<Vec<SignedHead>, Error>;
    /// Runs `batch` in one durable transaction; commits only if it returns `Ok`.
    ///
    /// # Errors
    /// The batch's error, or a failure to commit (after which nothing of the batch is durable).
    fn write(&self, batch: WriteBatch<'_>) -> Result<(), Error>;
}
