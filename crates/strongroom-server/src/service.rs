//! The vault's operations, independent of HTTP. Every operation passes through
//! [`strongroom_core::authorize`]; every state change is submitted to the audit writer
//! together with its audit record.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use strongroom_core::id::DomainName;
use strongroom_core::record::{
    AuditEvent, DomainRecord, KeyRecord, Outcome, TokenKind, TokenRecord,
};
use strongroom_core::storage::{Mutation, Storage};
use strongroom_core::{
    Algorithm, Clock, Decision, DenyReason, DomainId, EntropySource, KeyId, Operation, Principal,
    RequestId, TokenId, UnixMillis, VaultId, authorize,
};
use strongroom_crypto::Payload;
use strongroom_keystore::{Keystore, SealStatus, ShamirSeal};

use crate::error::ApiError;
use crate::limiter::Limiter;
use crate::requests::Gated;
use crate::token::{self, Tokens};
use crate::writer::{WriteError, Writer};
use strongroom_core::quorum::GatedOp;
use strongroom_core::temperature::{self, Change, Temperature};

/// The name of the domain dev mode creates, and that requests without a domain use.
pub const DEFAULT_DOMAIN: &str = "default";
/// Longest token lifetime.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Longest accepted key label, in bytes.
const MAX_LABEL: usize = 256;

/// Who asked, from where, and what the audit record should say about the target.
pub(crate) struct RequestCtx {
    pub(crate) request_id: RequestId,
    /// The time decisions use (never behind an earlier request's; see `TimeGuard`).
    pub(crate) time: UnixMillis,
    /// The wall clock's own reading (for one-time codes, which are single use anyway).
    pub(crate) wall: UnixMillis,
    pub(crate) source: IpAddr,
    pub(crate) principal: Principal,
    /// How long a request filed by this call stays open (`Strongroom-Request-Expires`).
    pub(crate) request_expiry: Option<Duration>,
    pub(crate) tags: Mutex<Tags>,
}

#[derive(Default, Clone)]
pub(crate) struct Tags {
    /// Set while running an approved request: the record's actor is then `request:<id>`.
    pub(crate) acting_for: Option<strongroom_core::PendingId>,
    pub(crate) domain: Option<DomainId>,
    pub(crate) key: Option<KeyId>,
    /// Set once the request's record has been handed to the writer by the operation itself.
    pub(crate) audited: bool,
    /// The decoded intent and deciding rule of a signing decision (see `AuditEvent::detail`).
    pub(crate) detail: Option<String>,
    /// The answer to store under the request's `Idempotency-Key` (see `idempotency`).
    pub(crate) idempotent: Option<Mutation>,
    /// A warning the audit record carries (`detail.warning`): a deprecated algorithm signed.
    pub(crate) warning: Option<&'static str>,
}

impl RequestCtx {
    pub(crate) fn tag(&self, f: impl FnOnce(&mut Tags)) {
        f(&mut self
            .tags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub(crate) fn tags(&self) -> Tags {
        self.tags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn event(
        &self,
        operation: &str,
        outcome: Outcome,
        code: Option<&str>,
    ) -> AuditEvent {
        let t = self.tags();
        AuditEvent {
            time: self.time,
            request_id: self.request_id,
            actor: t.acting_for.map_or_else(
                || self.principal.audit_label(),
                |id| format!("request:{id}"),
            ),
            source: Some(self.source.to_string()),
            operation: operation.to_owned(),
            domain: t.domain.map(|d| d.to_string()),
            key: t.key.map(|k| k.to_string()),
            outcome,
            code: code.map(str::to_owned),
            count: 1,
            detail: match t.warning {
                None => t.detail,
                // Merged into the detail object (or one made for it).
                Some(w) => {
                    let mut d = t
                        .detail
                        .as_deref()
                        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                        .filter(serde_json::Value::is_object)
                        .unwrap_or_else(|| serde_json::json!({}));
                    d["warning"] = w.into();
                    Some(d.to_string())
                }
            },
        }
    }
}

/// The running vault: storage, keystore, audit writer and caches.
pub struct Vault {
    pub(crate) store: Arc<dyn Storage>,
    pub(crate) keystore: Arc<Keystore>,
    pub(crate) writer: Writer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) entropy: Arc<dyn EntropySource>,
    pub(crate) tokens: Tokens,
    pub(crate) limiter: Limiter,
    pub(crate) vault_id: VaultId,
    pub(crate) keys: KeyCache,
    /// Dev mode: every quorum is satisfied by the requester (requests run at once).
    pub(crate) dev: bool,
    /// Backwards-clock guard: decisions never use a time below the newest seen.
    pub(crate) time: strongroom_core::TimeGuard,
    /// Last signatures of idle-limited hot keys on this node.
    pub(crate) last_use: crate::idle::LastUse,
    /// Parsed wallet policies, by the stored text they were parsed from.
    pub(crate) policies: crate::policy::PolicyCache,
    /// Ethereum addresses of wallets, derived once (public data).
    pub(crate) eth_addresses: crate::eth::AddressCache,
    /// The seal this node's configuration names (and its PKCS#11 token).
    pub(crate) seal: crate::node_seal::NodeSeal,
    /// The chain `[eth2]` names, for slashing data of a domain not yet pinned to one.
    pub(crate) eth2_genesis: Option<[u8; 32]>,
    /// The power-on self-tests' outcome: `Err(name)` if one failed (nothing is served).
    pub(crate) self_test: Result<(), &'static str>,
    /// The random-bit generator behind `entropy`, for its health.
    pub(crate) rng: Arc<strongroom_crypto::HealthCheckedEntropy>,
    /// Set once an entropy failure has been acted on.
    pub(crate) entropy_reported: std::sync::atomic::AtomicBool,
    /// Present after a tamper response: no automatic (PKCS#11) unseal until an unseal with
    /// the shares removes it.
    pub(crate) tamper_marker: std::path::PathBuf,
    /// What process hardening achieved at start (no core dumps, not dumpable, lock limit).
    pub(crate) hardening: strongroom_memguard::Hardening,
    /// Signed-configuration admission (`None` in dev mode, which is exempt).
    pub(crate) config: Option<crate::measure::Admission>,
    /// SHA-256 of this node's binary, once measured.
    pub(crate) binary_sha256: Arc<std::sync::OnceLock<String>>,
    /// The vault's own clock, when `[time]` names sources (it is also `clock`).
    pub(crate) trusted_time: Option<Arc<crate::trusted_time::TrustedTime>>,
    /// Why the database is older than the audit head this node signed, if it is and no
    /// security officers accepted it: the vault does not unseal over it.
    pub(crate) rollback: Mutex<Option<crate::rollback::Finding>>,
    /// The data directory (the rollback acceptance document is read from it).
    pub(crate) data_dir: std::path::PathBuf,
    /// One keystore KDF batch at a time (each takes every core and up to 512 MiB per core):
    /// concurrent imports queue rather than exhaust memory.
    pub(crate) kdf_gate: Arc<tokio::sync::Semaphore>,
    /// The rekey this node runs (see `rekey`).
    pub(crate) rekey: tokio::sync::Mutex<crate::rekey::RekeyDesk>,
    /// Wakes the domain key rotation mover (see `rotation`).
    pub(crate) rotation_wake: Arc<tokio::sync::Notify>,
}

impl Vault {
    /// A turn at the keystore KDF, held by the blocking task it is moved into (so a client
    /// that goes away does not free it while the work runs).
    pub(crate) async fn kdf_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.kdf_gate)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal)
    }
}

/// Key records with their domains, so the signing path does not read the database. This node
/// is the only writer of its database, and every key write goes through it (see
/// `docs/architecture.md` for what changes when several nodes share one database).
#[derive(Default)]
pub(crate) struct KeyCache {
    map: std::sync::RwLock<std::collections::HashMap<KeyId, Arc<(KeyRecord, DomainRecord)>>>,
    /// Bumped by every forget: a record read from the database before a forget that raced
    /// with the read is not cached (it may be the very row the forget was about).
    generation: std::sync::atomic::AtomicU64,
}

impl KeyCache {
    pub(crate) fn get(
        &self,
        store: &dyn Storage,
        id: KeyId,
    ) -> Result<Option<Arc<(KeyRecord, DomainRecord)>>, ApiError> {
        if let Some(hit) = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return Ok(Some(Arc::clone(hit)));
        }
        let before = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let Some(found) = store.key_with_domain(id)? else {
            return Ok(None);
        };
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) != before {
            return Ok(Some(Arc::new(found)));
        }
        // Never overwrite: a record put by this node (say, a destroy) since our read is newer.
        let entry = map.entry(id).or_insert_with(|| Arc::new(found));
        Ok(Some(Arc::clone(entry)))
    }

    /// Forgets every record, so keys are read from the database again at next use.
    pub(crate) fn clear(&self) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.clear();
    }

    /// Forgets one key, so it is read from the database again at next use.
    pub(crate) fn forget(&self, id: KeyId) {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.remove(&id);
    }

    /// After this node changed a key: forgets it, so its next use reads the committed record
    /// and its domain as they are then. (Inserting the caller's copy could bring back a domain
    /// read before a concurrent `domain.algorithms` change cleared the cache.)
    pub(crate) fn put(&self, key: KeyRecord, _domain: DomainRecord) {
        self.forget(key.id);
    }
}

/// Tags the audit record of a signature by a key whose domain deprecated its algorithm (a
/// wallet's addresses sign with secp256k1 too).
pub(crate) fn note_deprecated(ctx: &RequestCtx, k: &KeyRecord, d: &DomainRecord) {
    let deprecated = |a| d.algorithms.may_sign(a) == Ok(true);
    if deprecated(k.algorithm)
        || (k.algorithm == Algorithm::Bip32Seed && deprecated(Algorithm::Secp256k1))
    {
        ctx.tag(|t| t.warning = Some("algorithm_deprecated"));
    }
}

/// Refuses work in a destroyed domain.
pub(crate) fn live_domain(d: &DomainRecord) -> Result<(), ApiError> {
    if d.destroyed_at.is_some() {
        return Err(ApiError::conflict(
            "domain_destroyed",
            "the domain has been destroyed",
        ));
    }
    Ok(())
}

/// Labels (of keys and wallets) are short and printable.
pub(crate) fn check_label(label: Option<&str>) -> Result<(), ApiError> {
    if label.is_some_and(|l| l.len() > MAX_LABEL || l.chars().any(char::is_control)) {
        return Err(ApiError::bad(
            "invalid_label",
            "labels are at most 256 bytes without control characters",
        ));
    }
    Ok(())
}

pub(crate) fn rfc3339(t: UnixMillis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(t.0)).to_string()
}

/// Seal status (`GET /v1/sys/status`, unseal and seal responses).
#[derive(Serialize)]
pub struct StatusView {
    initialized: bool,
    sealed: bool,
    progress: u8,
    threshold: u8,
    version: &'static str,
    vault_id: String,
    /// How the vault's root key is protected at rest (`shamir` or `pkcs11`).
    #[serde(skip_serializing_if = "Option::is_none")]
    seal: Option<&'static str>,
    /// What this node's configuration asks for (differs from `seal` until a migration).
    node_seal: &'static str,
    /// Why this node's token last failed, while it matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    seal_error: Option<SealErrorView>,
    /// The power-on self-tests.
    self_test: SelfTestView,
    /// The random-bit generator's raw sources and health.
    entropy: EntropyView,
    /// Why the database looks rolled back (the vault will not unseal over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<String>,
    /// The same finding in detail, for security officers to accept (`rollback sign`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_finding: Option<crate::rollback::Finding>,
    /// Where key bytes live in this process.
    memory: MemoryView,
    /// Least privilege: how far the file system and system calls are confined.
    sandbox: crate::least_privilege::Confinement,
    /// This node's configuration file and whether it is admitted (absent in dev mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<crate::measure::ConfigView>,
    /// SHA-256 of this node's binary (once measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_sha256: Option<String>,
    /// The vault's clock and its sources (absent without `[time]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<crate::trusted_time::TimeView>,
}

/// Protected memory as the status shows it.
#[derive(Serialize)]
pub struct MemoryView {
    /// `memfd_secret`, `mlock` or `unlocked` (no lock budget left); absent before any key.
    #[serde(skip_serializing_if = "Option::is_none")]
    backing: Option<&'static str>,
    /// Every slab of key memory is locked (never swapped).
    locked: bool,
    /// The process is not dumpable (no core files; no ptrace or /proc/PID/mem without
    /// CAP_SYS_PTRACE).
    non_dumpable: bool,
    /// The lock limit, bytes (absent: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    memlock_limit: Option<u64>,
}

/// The random-bit generator as the status shows it.
#[derive(Serialize)]
pub struct EntropyView {
    sources: Vec<&'static str>,
    healthy: bool,
    /// The source and health test that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

/// The power-on self-tests as the status shows them.
#[derive(Serialize)]
pub struct SelfTestView {
    passed: bool,
    /// The test that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'static str>,
    /// Every test run.
    tests: &'static [&'static str],
    /// A binary built for tests (never to be deployed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test_build: bool,
}

/// A token failure as the status shows it.
#[derive(Serialize)]
pub struct SealErrorView {
    code: &'static str,
    message: &'static str,
}

/// A domain.
#[derive(Serialize)]
pub struct DomainView {
    id: String,
    name: String,
    new_keys: &'static str,
    /// Each algorithm's state: `allowed`, `deprecated` or `disabled`.
    algorithms: std::collections::BTreeMap<&'static str, &'static str>,
    created_at: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    destroyed_at: Option<String>,
}

impl From<&DomainRecord> for DomainView {
    fn from(d: &DomainRecord) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.to_string(),
            new_keys: d.new_key_temperature.as_str(),
            algorithms: d
                .algorithms
                .all()
                .into_iter()
                .map(|(a, s)| (a.as_str(), s.as_str()))
                .collect(),
            created_at: rfc3339(d.created_at),
            state: if d.destroyed_at.is_some() {
                "destroyed"
            } else {
                "active"
            },
            destroyed_at: d.destroyed_at.map(rfc3339),
        }
    }
}

/// A key's public description.
#[derive(Serialize)]
pub struct KeyView {
    id: String,
    domain: String,
    domain_id: String,
    algorithm: &'static str,
    label: Option<String>,
    public_key: String,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    predecessor: Option<String>,
    state: &'static str,
    temperature: &'static str,
    temperature_since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hot_idle_seconds: Option<u32>,
    created_at: String,
    destroyed_at: Option<String>,
}

impl KeyView {
    pub(crate) fn new(k: &KeyRecord, d: &DomainRecord) -> Self {
        Self {
            id: k.id.to_string(),
            domain: d.name.to_string(),
            domain_id: d.id.to_string(),
            algorithm: k.algorithm.as_str(),
            label: k.label.clone(),
            public_key: hex::encode(&k.public_key),
            version: k.version,
            predecessor: k.predecessor.map(|p| p.to_string()),
            state: match (k.destroyed_at, &k.sealed_secret) {
                (Some(_), _) => "destroyed",
                // Exported to a cold-storage bundle and taken out of the vault.
                (None, None) => "offline",
                (None, Some(_)) => "active",
            },
            temperature: k.temperature.as_str(),
            temperature_since: rfc3339(k.temperature_since),
            hot_idle_seconds: k.hot_idle_secs,
            created_at: rfc3339(k.created_at),
            destroyed_at: k.destroyed_at.map(rfc3339),
        }
    }
}

/// A signature.
#[derive(Serialize)]
pub struct SignView {
    key_id: String,
    algorithm: &'static str,
    signature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_id: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_der: Option<String>,
}

/// Initialisation output: shown once, never stored.
#[derive(Serialize)]
pub struct InitView {
    /// `shamir`, or `pkcs11` (the shares are then for recovery and migration).
    seal: &'static str,
    vault_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shares: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    encrypted_shares: Vec<EncryptedShareView>,
    threshold: u8,
    root_token: String,
    audit_public_key: String,
}

impl InitView {
    pub(crate) fn first_share(&self) -> Option<zeroize::Zeroizing<String>> {
        self.shares
            .first()
            .map(|s| zeroize::Zeroizing::new(s.clone()))
    }

    pub(crate) fn root_token(&self) -> &str {
        &self.root_token
    }
}

/// One unseal share encrypted to its custodian's age recipient.
#[derive(Serialize)]
pub struct EncryptedShareView {
    index: usize,
    recipient: String,
    age: String,
}

/// Shares as handed out: in the clear, or (with custodians' keys) each encrypted to its
/// custodian and none in the clear.
pub(crate) fn share_views(
    shares: &[zeroize::Zeroizing<String>],
    custodians: Option<&[strongroom_crypto::AgeRecipient]>,
    entropy: &dyn EntropySource,
) -> Result<(Vec<String>, Vec<EncryptedShareView>), ApiError> {
    let Some(recipients) = custodians else {
        return Ok((
            shares.iter().map(|s| s.as_str().to_owned()).collect(),
            Vec::new(),
        ));
    };
    let mut out = Vec::with_capacity(recipients.len());
    for (i, (r, share)) in recipients.iter().zip(shares).enumerate() {
        let age = strongroom_crypto::age_encrypt(r, share.as_bytes(), entropy)?;
        out.push(EncryptedShareView {
            index: i + 1,
            recipient: r.to_string(),
            age: age.as_str().to_owned(),
        });
    }
    Ok((Vec::new(), out))
}

/// A newly issued token: its value is shown once.
#[derive(Serialize)]
pub struct TokenView {
    id: String,
    token: String,
    domain: String,
    scope: &'static str,
    expires_at: Option<String>,
}

/// A revoked token.
#[derive(Serialize)]
pub struct RevokedView {
    id: String,
    revoked: bool,
}

/// What to sign.
pub enum SignInput {
    /// A 32-byte prehash.
    Digest([u8; 32]),
    /// A message (Ed25519).
    Message(Vec<u8>),
}

pub(crate) fn allow(ctx: &RequestCtx, op: &Operation) -> Result<(), ApiError> {
    match authorize(&ctx.principal, op) {
        Decision::Allow => Ok(()),
        Decision::Deny(DenyReason::Unauthenticated) => Err(ApiError::Unauthenticated),
        Decision::Deny(DenyReason::OutOfScope) => Err(ApiError::NotFound),
        Decision::Deny(_) => Err(ApiError::Forbidden),
        _ => Err(ApiError::Forbidden),
    }
}

impl Vault {
    /// A context for what the node does on its own (start-up, dev bootstrap, standing rules).
    pub(crate) fn system_ctx(&self, principal: Principal) -> Result<RequestCtx, ApiError> {
        Ok(RequestCtx {
            request_id: RequestId::from_random(self.random_bytes()?),
            // Recorded times never go back, even for the node's own records.
            time: self.time.observe(self.clock.now()).effective,
            wall: self.clock.now(),
            source: IpAddr::from([127, 0, 0, 1]),
            principal,
            request_expiry: None,
            tags: Mutex::new(Tags::default()),
        })
    }

    pub(crate) fn random_bytes(&self) -> Result<[u8; 16], ApiError> {
        let mut b = [0u8; 16];
        self.entropy
            .fill(&mut b)
            .map_err(|_| ApiError::EntropyFailed)?;
        Ok(b)
    }

    /// Hands a state change and its audit record to the writer, marking the request audited.
    pub(crate) async fn commit(
        &self,
        ctx: &RequestCtx,
        operation: &str,
        mutations: Vec<Mutation>,
    ) -> Result<(), ApiError> {
        self.commit_as(ctx, operation, mutations, Outcome::Granted, None)
            .await
    }

    /// As [`Vault::commit`], recording the given outcome (a refused login that still changes
    /// state, say).
    pub(crate) async fn commit_as(
        &self,
        ctx: &RequestCtx,
        operation: &str,
        mutations: Vec<Mutation>,
        outcome: Outcome,
        code: Option<&str>,
    ) -> Result<(), ApiError> {
        let event = ctx.event(operation, outcome, code);
        ctx.tag(|t| t.audited = true);
        match self.writer.submit(mutations, event).await {
            Ok(()) => Ok(()),
            Err(WriteError::Refused(e)) => Err(e.into()),
            Err(WriteError::AuditUnavailable) => Err(ApiError::AuditUnavailable),
        }
    }

    /// Another node sharing the database may have initialised the vault since this one
    /// started: pick that up (only ever from uninitialised to sealed, then unsealed by the
    /// token where this node has one).
    fn refresh_if_uninitialized(&self) -> Result<(), ApiError> {
        if !self.keystore.status().initialized {
            let meta = self.store.vault()?;
            if meta.init.is_some() {
                self.keystore.load(&meta)?;
                self.auto_unseal();
            }
        }
        Ok(())
    }

    /// Unseals through this node's PKCS#11 token when the vault is sealed by one, auditing
    /// the attempt. Does nothing on a Shamir node, an uninitialised or unsealed vault, or a
    /// vault still sealed by shares only. A failure leaves the vault sealed, never falls back
    /// to anything else, and is what `status` reports.
    pub(crate) fn auto_unseal(&self) {
        if self.self_test.is_err() || self.rollback_pending() || self.rng.failure().is_some() {
            return;
        }
        // After a tamper response only the shares bring the vault back.
        if self.tamper_marker.exists() {
            tracing::warn!(
                "the vault was sealed by a tamper response: no automatic unseal; unseal with the shares"
            );
            return;
        }
        let s = self.keystore.status();
        if !s.initialized
            || !s.sealed
            || self.keystore.seal_kind() != Some(strongroom_keystore::SealKind::Pkcs11)
        {
            return;
        }
        let Some(token) = self.seal.token(&self.entropy) else {
            return;
        };
        use strongroom_keystore::{Error as K, HsmError};
        let unsealed = token
            .map_err(K::Hsm)
            .and_then(|t| self.keystore.unseal_with(t.as_ref()).map(|_| ()));
        match &unsealed {
            Err(K::Hsm(e)) => self.seal.note(Err(e)),
            // The token decrypted something that is not this vault's root key: the stored
            // check values or wrapped key were edited.
            Err(K::UnsealFailed) => self.seal.note(Err(&HsmError::UnwrapFailed)),
            _ => self.seal.note(Ok(())),
        }
        // Nothing runs under a configuration the officers did not admit.
        let outcome = unsealed
            .map_err(ApiError::from)
            .and_then(|()| self.admit_config());
        let Ok(ctx) = self.system_ctx(Principal::System) else {
            return;
        };
        let event = match &outcome {
            Ok(()) => {
                tracing::info!("unsealed by the PKCS#11 token");
                ctx.event("operator.unseal", Outcome::Granted, None)
            }
            Err(e) => {
                tracing::error!(error = %e, "the PKCS#11 token did not unseal the vault; it stays sealed");
                ctx.event("operator.unseal", e.outcome(), Some(e.code()))
            }
        };
        self.writer.submit_detached(event);
    }

    /// Seal status.
    pub(crate) fn status(&self) -> StatusView {
        // Best effort: a status answer must not fail because the database is briefly away.
        let _ = self.refresh_if_uninitialized();
        let s: SealStatus = self.keystore.status();
        let seal_error = if s.sealed {
            // Status is unauthenticated: a fixed description, the details are in the log.
            self.seal.last_error().map(|e| SealErrorView {
                code: e.code(),
                message: e.summary(),
            })
        } else {
            None
        };
        StatusView {
            initialized: s.initialized,
            sealed: s.sealed,
            progress: s.progress,
            threshold: s.threshold,
            version: env!("CARGO_PKG_VERSION"),
            vault_id: self.vault_id.to_string(),
            seal: self.keystore.seal_kind().map(|k| k.as_str()),
            node_seal: self.seal.kind().as_str(),
            seal_error,
            self_test: SelfTestView {
                passed: self.self_test.is_ok(),
                failed: self.self_test.err(),
                tests: &strongroom_crypto::SELF_TESTS,
                test_build: strongroom_crypto::DANGER_TEST_BUILD,
            },
            rollback: self.rollback().map(|f| f.what),
            rollback_finding: self.rollback(),
            config: self.config_view(),
            binary_sha256: self.binary_sha256.get().cloned(),
            time: self.trusted_time.as_ref().map(|t| t.view()),
            sandbox: crate::least_privilege::current(),
            memory: {
                let m = strongroom_memguard::status();
                MemoryView {
                    backing: m.backing.map(strongroom_memguard::Backing::as_str),
                    locked: m.unlocked_slabs == 0,
                    non_dumpable: self.hardening.non_dumpable
                        && !strongroom_memguard::is_dumpable(),
                    memlock_limit: self.hardening.memlock_limit,
                }
            },
            entropy: {
                let failed = self.rng.failure();
                EntropyView {
                    sources: self.rng.source_names(),
                    healthy: failed.is_none(),
                    failed,
                }
            },
        }
    }

    pub(crate) async fn init(
        &self,
        ctx: &RequestCtx,
        shares: u8,
        threshold: u8,
        custodians: Option<Vec<strongroom_crypto::AgeRecipient>>,
        dev: bool,
    ) -> Result<InitView, ApiError> {
        allow(ctx, &Operation::Init)?;
        // Dev mode keeps a full-power root token; production gets a bootstrap token that can
        // only add operators.
        let kind = if dev {
            TokenKind::Root
        } else {
            TokenKind::Bootstrap
        };
        let mut root = token::issue(self.entropy.as_ref(), kind, ctx.time, None)?;
        // A PKCS#11 node wraps the new root key in its token (making the key if the token has
        // none); the shares are then the recovery path.
        let hsm = self.seal.token(&self.entropy).transpose()?;
        let init = self.keystore.initialize(
            self.vault_id,
            ShamirSeal { shares, threshold },
            hsm.as_deref()
                .map(|t| t as &dyn strongroom_keystore::RootWrapper),
            ctx.time,
            &token::binding(&self.vault_id, &root.record),
        )?;
        root.record.mac = init.root_token_mac;
        // Encrypt before committing: if encryption fails, nothing is initialised and no share
        // has existed outside this function.
        let (shares, encrypted_shares) =
            share_views(&init.shares, custodians.as_deref(), self.entropy.as_ref())?;
        let audit_public_key = hex::encode(init.record.audit_public_key);
        self.commit(
            ctx,
            "operator.init",
            vec![
                Mutation::Initialize(init.record),
                Mutation::CreateToken(root.record),
            ],
        )
        .await
        .map_err(|e| match e {
            ApiError::Conflict { .. } => {
                ApiError::conflict("already_initialized", "the vault is already initialised")
            }
            other => other,
        })?;
        self.keystore.load(&self.store.vault()?)?;
        self.auto_unseal();
        Ok(InitView {
            seal: self.seal.kind().as_str(),
            vault_id: self.vault_id.to_string(),
            shares,
            encrypted_shares,
            threshold,
            root_token: root.value.as_str().to_owned(),
            audit_public_key,
        })
    }

    pub(crate) fn unseal(&self, ctx: &RequestCtx, share: &str) -> Result<StatusView, ApiError> {
        allow(ctx, &Operation::Unseal)?;
        self.rollback_blocks_unseal()?;
        self.refresh_if_uninitialized()?;
        // Shares are checked against the stored seal, not a copy a missed notification left
        // behind (a rekey on another node retires the shares this node would accept).
        if let Some(init) = self.store.vault()?.init {
            self.keystore.adopt_seal(&init.seal_config)?;
        }
        self.keystore.submit_share(share)?;
        if !self.keystore.status().sealed {
            // Over a rolled-back database only with the officers' acceptance.
            self.accept_rollback()?;
            // Nothing runs under a configuration the officers did not admit.
            self.admit_config()?;
        }
        // The unseal ceremony: the shares end a tamper response's hold on automatic unseals.
        if !self.keystore.status().sealed
            && self.tamper_marker.exists()
            && let Err(e) = std::fs::remove_file(&self.tamper_marker)
        {
            tracing::error!(error = %e, "could not remove the tamper marker");
        }
        Ok(self.status())
    }

    /// Discards the shares submitted so far (an unseal attempt abandoned half way).
    pub(crate) fn reset_unseal(&self, ctx: &RequestCtx) -> Result<StatusView, ApiError> {
        allow(ctx, &Operation::Unseal)?;
        if !self.keystore.status().sealed {
            return Err(ApiError::conflict(
                "already_unsealed",
                "the vault is already unsealed",
            ));
        }
        self.keystore.seal();
        Ok(self.status())
    }

    /// A security officer accepts the wall clock after a backwards jump.
    pub(crate) fn acknowledge_clock(
        &self,
        ctx: &RequestCtx,
    ) -> Result<serde_json::Value, ApiError> {
        allow(ctx, &Operation::AcknowledgeClock)?;
        self.time.acknowledge(ctx.wall);
        Ok(serde_json::json!({"clock": "trusted", "effective_time": rfc3339(ctx.time)}))
    }

    /// A context for the node's own actions that draws no randomness (its request id is all
    /// zeros): for responses that must work when the generator does not.
    pub(crate) fn fixed_ctx(&self, principal: Principal) -> RequestCtx {
        RequestCtx {
            request_id: RequestId::from_random([0; 16]),
            time: self.time.observe(self.clock.now()).effective,
            wall: self.clock.now(),
            source: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            principal,
            request_expiry: None,
            tags: Mutex::new(Tags::default()),
        }
    }

    /// Acts once on a failed entropy health test: the vault seals (its keys are zeroized;
    /// nothing can be generated safely any more) and the failure is audited — in the clear,
    /// as records written while sealed are, since sealing a record needs randomness.
    pub(crate) async fn entropy_failed(&self) {
        let Some(failure) = self.rng.failure() else {
            return;
        };
        if self
            .entropy_reported
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tracing::error!(
            failure,
            "an entropy health test failed: the vault seals and produces no random bytes until restarted"
        );
        self.zeroize_keys();
        let ctx = self.fixed_ctx(Principal::System);
        ctx.tag(|t| t.detail = Some(serde_json::json!({"failed": failure}).to_string()));
        let event = ctx.event("entropy.failed", Outcome::Failed, Some("entropy_failed"));
        let _ = self.writer.submit(vec![], event).await;
    }

    /// The tamper response: every key zeroized at once (the vault seals), automatic unseals
    /// held until the shares are presented, and the event audited. `how`: `api`, `signal` or `tracer`.
    pub(crate) fn tamper(
        &self,
        ctx: &RequestCtx,
        how: &'static str,
        reason: Option<&str>,
    ) -> Result<StatusView, ApiError> {
        if how == "api" {
            allow(ctx, &Operation::Tamper)?;
        }
        // Zeroize first: nothing, not even a failed write, delays it.
        self.zeroize_keys();
        self.tokens.clear();
        let held = write_marker(&self.tamper_marker, ctx.wall, how);
        if let Err(e) = &held {
            tracing::error!(
                error = %e,
                "could not write the tamper marker: a PKCS#11 token would unseal this vault at the next start"
            );
        }
        tracing::error!(
            how,
            "tamper response: every key zeroized, the vault is sealed"
        );
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({"how": how, "reason": reason.map(|r| r.chars().take(200).collect::<String>()),
                    "automatic_unseal_held": held.is_ok()})
                .to_string(),
            );
        });
        // Zeroized either way; say so if the hold on automatic unseals is missing.
        if held.is_err() {
            return Err(ApiError::Internal);
        }
        Ok(self.status())
    }

    /// The tamper response the node starts itself (a signal, a tracer, an integrity failure),
    /// audited as the system's `operator.tamper`. Draws no randomness: it must work when the
    /// generator has failed.
    pub(crate) async fn tamper_by_node(&self, how: &'static str, reason: Option<&str>) {
        let ctx = self.fixed_ctx(Principal::System);
        let outcome = self.tamper(&ctx, how, reason);
        let event = match &outcome {
            Ok(_) => ctx.event("operator.tamper", Outcome::Granted, None),
            Err(e) => ctx.event("operator.tamper", e.outcome(), Some(e.code())),
        };
        let _ = self.writer.submit(vec![], event).await;
    }

    /// The tamper response to an integrity failure of the sealed state (a domain master key
    /// that does not open under the root).
    /// Answers a domain master key that did not open: with the tamper response — unless the
    /// stored seal is of another root than this node holds (a rekey it had not yet seen, or
    /// its own landing), which it adopts instead. Whether it was tampering.
    pub(crate) async fn integrity_failed(&self) -> bool {
        let before = self.keystore.epoch();
        if let Ok(meta) = self.store.vault()
            && let Some(init) = meta.init
            && self.keystore.adopt_seal(&init.seal_config).is_ok()
            && self.keystore.epoch() != before
        {
            tracing::warn!("the root key was replaced by a rekey: this node adopted the new seal");
            return false;
        }
        self.tamper_by_node(
            "integrity",
            Some("a domain master key failed to open under the root: the sealed state was edited or damaged"),
        )
        .await;
        true
    }

    /// Whether time-dependent operations may run: the clock has not been seen going back
    /// unacknowledged, and, with `[time]`, a majority of the sources voted recently.
    pub(crate) fn clock_trusted(&self) -> bool {
        self.time.trusted() && self.trusted_time.as_ref().is_none_or(|t| t.trusted())
    }

    /// Audits a change in whether the time sources are trusted.
    pub(crate) fn audit_time(&self, trusted: bool) {
        let ctx = self.fixed_ctx(Principal::System);
        let sources = self
            .trusted_time
            .as_ref()
            .map(|t| t.report())
            .unwrap_or_default();
        ctx.tag(|t| {
            t.detail = serde_json::to_string(&serde_json::json!({ "sources": sources })).ok()
        });
        let event = if trusted {
            ctx.event("time.trusted", Outcome::Granted, None)
        } else {
            tracing::error!(
                "the time sources are not trusted: time-dependent operations fail closed"
            );
            ctx.event("time.untrusted", Outcome::Failed, Some("clock_untrusted"))
        };
        self.writer.submit_detached(event);
    }

    /// Every key out of memory: the keystore seals (root, derived and domain keys zeroized),
    /// the key-record cache empties, and the per-process memory key is destroyed so that any
    /// ciphertext of a loaded key left anywhere (and a signature in flight) is useless.
    pub(crate) fn zeroize_keys(&self) {
        self.keystore.seal();
        self.keys.clear();
        strongroom_crypto::rotate_memory_key();
    }

    pub(crate) fn seal(&self, ctx: &RequestCtx) -> Result<StatusView, ApiError> {
        allow(ctx, &Operation::Seal)?;
        self.zeroize_keys();
        Ok(self.status())
    }

    /// Moves the root key's protection to what this node's `[seal]` names: from shares to
    /// the PKCS#11 token (the shares stay valid for recovery), from the token back to shares
    /// alone, or to another wrapping key. Gated by the vault-wide `seal.migrate` rule.
    pub(crate) async fn migrate_seal(
        &self,
        ctx: &RequestCtx,
    ) -> Result<Gated<serde_json::Value>, ApiError> {
        allow(ctx, &Operation::MigrateSeal)?;
        let (params, _) = self.seal_migration()?;
        if let Some(p) = self
            .gate(ctx, GatedOp::MigrateSeal, params.clone(), None, None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.migrate_seal_prepared(ctx, &params, |_| Ok(None))
                .await?,
        ))
    }

    /// What a migration on this node would do, checked now against the stored seal: the
    /// vault unsealed, the target different from what protects it, and the token usable.
    /// Returns the request parameters (binding the stored configuration's hash and the target
    /// token's label and serial) and the stored configuration they were made from.
    fn seal_migration(&self) -> Result<(serde_json::Value, Vec<u8>), ApiError> {
        use sha2::Digest as _;
        let s = self.keystore.status();
        if !s.initialized {
            return Err(ApiError::NotInitialized);
        }
        if s.sealed {
            return Err(ApiError::Sealed);
        }
        let stored = self
            .store
            .vault()?
            .init
            .ok_or(ApiError::NotInitialized)?
            .seal_config;
        let current = strongroom_keystore::StoredSeal::decode(&stored)?;
        let stored_label = current.hsm.as_ref().map(|h| h.key_label.clone());
        if current.kind() == self.seal.kind() && stored_label.as_deref() == self.seal.key_label() {
            return Err(ApiError::conflict(
                "seal_unchanged",
                "the vault is already sealed as this node's [seal] says; change the configuration first",
            ));
        }
        let token = match self.seal.token(&self.entropy) {
            Some(t) => {
                let t = t?;
                t.has_key()?;
                Some(serde_json::json!({"label": self.seal.token_label(), "serial": t.serial()}))
            }
            None => None,
        };
        let params = serde_json::json!({
            "from": current.kind().as_str(),
            "from_key_label": stored_label,
            "from_config_sha256": hex::encode(sha2::Sha256::digest(&stored)),
            "to": self.seal.kind().as_str(),
            "to_key_label": self.seal.key_label(),
            "to_token": token,
        });
        Ok((params, stored))
    }

    /// Runs a seal migration (at once, or once approved) on this node, whose configuration
    /// must still be what the request named.
    pub(crate) async fn migrate_seal_prepared(
        &self,
        ctx: &RequestCtx,
        params: &serde_json::Value,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<serde_json::Value, ApiError> {
        let (now, from) = self.seal_migration()?;
        if now["from_config_sha256"] != params["from_config_sha256"] {
            return Err(ApiError::conflict(
                "seal_changed",
                "the vault's seal changed since this migration was requested",
            ));
        }
        if now != *params {
            return Err(ApiError::conflict(
                "seal_config_mismatch",
                "this node's [seal] (token, serial or key) differs from what the request named; run it on a node configured as requested",
            ));
        }
        let token = self.seal.token(&self.entropy).transpose()?;
        let to = self.keystore.reseal(
            token
                .as_deref()
                .map(|t| t as &dyn strongroom_keystore::RootWrapper),
        )?;
        let view = serde_json::json!({
            "seal": self.seal.kind().as_str(),
            "key_label": self.seal.key_label(),
        });
        let mut mutations = vec![Mutation::ChangeSeal {
            from,
            to: to.clone(),
        }];
        mutations.extend(finish(view.clone())?);
        self.commit(ctx, "seal.migrate", mutations)
            .await
            .map_err(|e| match e {
                ApiError::Conflict { .. } => ApiError::conflict(
                    "seal_changed",
                    "the seal or this request changed while the migration ran; check status and the request",
                ),
                other => other,
            })?;
        self.keystore.adopt_seal(&to)?;
        Ok(view)
    }

    pub(crate) async fn create_domain(
        &self,
        ctx: &RequestCtx,
        name: &str,
        new_keys: Option<&str>,
    ) -> Result<Gated<DomainView>, ApiError> {
        allow(ctx, &Operation::CreateDomain)?;
        let parsed: DomainName = name.parse()?;
        // Production keys start warm unless the domain says otherwise.
        let new_keys: Temperature = new_keys.unwrap_or("warm").parse()?;
        if self.store.domain_by_name(&parsed)?.is_some() {
            return Err(ApiError::conflict(
                "conflict",
                "a domain with this name already exists",
            ));
        }
        let params = serde_json::json!({"name": parsed.as_str(), "new_keys": new_keys.as_str()});
        if let Some(p) = self
            .gate(ctx, GatedOp::CreateDomain, params, None, None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.create_domain_prepared(ctx, name, new_keys, |_| Ok(None))
                .await?,
        ))
    }

    /// Creates a domain, committing `finish(view)` (a request's closing, say) with it.
    /// The domain called `name` (404 for a name that does not parse, too).
    pub(crate) fn domain_named(&self, name: &str) -> Result<DomainRecord, ApiError> {
        let parsed: DomainName = name.parse().map_err(|_| ApiError::NotFound)?;
        self.store
            .domain_by_name(&parsed)?
            .ok_or(ApiError::NotFound)
    }

    pub(crate) async fn create_domain_prepared(
        &self,
        ctx: &RequestCtx,
        name: &str,
        new_keys: Temperature,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<DomainView, ApiError> {
        let name: DomainName = name.parse()?;
        let id = DomainId::from_random(self.random_bytes()?);
        ctx.tag(|t| t.domain = Some(id));
        // Read before the master key is wrapped: if a rekey lands in between, the seal no
        // longer matches and nothing is written under the old root.
        let seal = self.keystore.seal_config()?;
        let record = self.keystore.create_domain(id, name, new_keys, ctx.time)?;
        let view = DomainView::from(&record);
        let mut mutations = vec![
            Mutation::ExpectSeal(seal.clone()),
            Mutation::CreateDomain(record),
        ];
        mutations.extend(finish(
            serde_json::to_value(&view).map_err(|_| ApiError::Internal)?,
        )?);
        self.commit(ctx, "domain.create", mutations)
            .await
            .map_err(|e| match e {
                ApiError::Conflict { .. } if self.store.vault().ok().and_then(|m| m.init).is_none_or(|i| i.seal_config != seal) => {
                    ApiError::conflict("seal_changed", "the root key was replaced (rekey) while the domain was being created; nothing was created, try again")
                }
                ApiError::Conflict { .. } => {
                    ApiError::conflict("conflict", "a domain with this name already exists")
                }
                other => other,
            })?;
        Ok(view)
    }

    /// Destroys a domain: its master key is erased, so every key in it is gone for good
    /// (crypto-shredding). Gated by the vault-wide `domain.destroy` rule.
    pub(crate) async fn destroy_domain(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<Gated<DomainView>, ApiError> {
        allow(ctx, &Operation::DestroyDomain)?;
        let d = self.domain_named(name)?;
        ctx.tag(|t| t.domain = Some(d.id));
        live_domain(&d)?;
        let keys = self.store.keys(d.id)?;
        let live = keys.iter().filter(|k| k.destroyed_at.is_none()).count();
        let params = serde_json::json!({
            "name": d.name.as_str(),
            "domain_id": d.id.to_string(),
            "keys": live,
        });
        if let Some(p) = self
            .gate(ctx, GatedOp::DestroyDomain, params, Some(d.id), None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.destroy_domain_prepared(ctx, d.id, |_| Ok(None))
                .await?,
        ))
    }

    /// Runs a domain's destruction (at once, or once approved), with `finish` closing its
    /// request.
    pub(crate) async fn destroy_domain_prepared(
        &self,
        ctx: &RequestCtx,
        id: DomainId,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<DomainView, ApiError> {
        let d = self.store.domain(id)?.ok_or(ApiError::NotFound)?;
        ctx.tag(|t| t.domain = Some(d.id));
        live_domain(&d)?;
        let keys: Vec<KeyId> = self.store.keys(id)?.iter().map(|k| k.id).collect();
        let destroyed = DomainRecord {
            wrapped_key: Vec::new(),
            destroyed_at: Some(ctx.time),
            ..d
        };
        let view = DomainView::from(&destroyed);
        let mut mutations = vec![Mutation::DestroyDomain { id, at: ctx.time }];
        mutations.extend(finish(
            serde_json::to_value(&view).map_err(|_| ApiError::Internal)?,
        )?);
        self.commit(ctx, "domain.destroy", mutations).await?;
        self.keystore.forget_domain(id, &keys);
        for k in keys {
            self.keys.forget(k);
        }
        Ok(view)
    }

    pub(crate) fn list_domains(&self, ctx: &RequestCtx) -> Result<Vec<DomainView>, ApiError> {
        allow(ctx, &Operation::ListDomains)?;
        Ok(self.store.domains()?.iter().map(DomainView::from).collect())
    }

    /// The domain a request names, or the caller's default: an application token's own
    /// domain, otherwise `default`.
    pub(crate) fn resolve_domain(
        &self,
        ctx: &RequestCtx,
        name: Option<&str>,
    ) -> Result<DomainRecord, ApiError> {
        let found = match (name, ctx.principal) {
            (Some(n), _) => self
                .store
                .domain_by_name(&n.parse::<DomainName>().map_err(|_| ApiError::NotFound)?)?,
            (
                None,
                Principal::Application { domain, .. } | Principal::Keymanager { domain, .. },
            ) => self.store.domain(domain)?,
            (None, _) => self
                .store
                .domain_by_name(&DEFAULT_DOMAIN.parse::<DomainName>()?)?,
        };
        let d = found.ok_or(ApiError::NotFound)?;
        ctx.tag(|t| t.domain = Some(d.id));
        Ok(d)
    }

    pub(crate) async fn create_token(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
        ttl: Option<Duration>,
        scope: Option<&str>,
    ) -> Result<TokenView, ApiError> {
        allow(ctx, &Operation::CreateToken)?;
        let keymanager = match scope.unwrap_or("sign") {
            "sign" => false,
            "keymanager" => true,
            _ => {
                return Err(ApiError::bad(
                    "invalid_scope",
                    "a token's scope is sign (an application token) or keymanager",
                ));
            }
        };
        if ttl.is_some_and(|t| t > MAX_TTL) {
            return Err(ApiError::bad(
                "invalid_ttl",
                "token lifetimes are at most 10 years",
            ));
        }
        let d = self.resolve_domain(ctx, domain)?;
        // An officer scoped to one domain issues tokens for it alone.
        if let Principal::Operator {
            domain: Some(scope),
            ..
        } = ctx.principal
            && scope != d.id
        {
            return Err(ApiError::NotFound);
        }
        live_domain(&d)?;
        let expires_at = ttl.map(|t| ctx.time.saturating_add(t));
        let kind = if keymanager {
            TokenKind::Keymanager(d.id)
        } else {
            TokenKind::Application(d.id)
        };
        let mut issued = token::issue(self.entropy.as_ref(), kind, ctx.time, expires_at)?;
        issued.record.mac = self
            .keystore
            .record_mac(&token::binding(&self.vault_id, &issued.record))?;
        self.commit(
            ctx,
            "token.create",
            vec![Mutation::CreateToken(issued.record.clone())],
        )
        .await?;
        Ok(TokenView {
            id: issued.record.id.to_string(),
            token: issued.value.as_str().to_owned(),
            domain: d.name.to_string(),
            scope: if keymanager { "keymanager" } else { "sign" },
            expires_at: expires_at.map(rfc3339),
        })
    }

    pub(crate) async fn revoke_token(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<RevokedView, ApiError> {
        allow(ctx, &Operation::RevokeToken)?;
        let id: TokenId = id.parse()?;
        let current = self.store.token(id)?.ok_or(ApiError::NotFound)?;
        if current.revoked_at.is_some() {
            return Err(ApiError::NotFound);
        }
        // An officer scoped to one domain revokes its tokens alone.
        if let Principal::Operator {
            domain: Some(scope),
            ..
        } = ctx.principal
            && !matches!(current.kind,
                TokenKind::Application(d) | TokenKind::Keymanager(d) if d == scope)
        {
            return Err(ApiError::NotFound);
        }
        let revoked = TokenRecord {
            revoked_at: Some(ctx.time),
            ..current
        };
        let mac = self
            .keystore
            .record_mac(&token::binding(&self.vault_id, &revoked))?;
        self.commit(
            ctx,
            "token.revoke",
            vec![Mutation::RevokeToken {
                id,
                at: ctx.time,
                mac,
            }],
        )
        .await?;
        self.tokens.forget(id);
        Ok(RevokedView {
            id: id.to_string(),
            revoked: true,
        })
    }

    pub(crate) async fn create_key(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
        algorithm: &str,
        label: Option<String>,
    ) -> Result<KeyView, ApiError> {
        let algorithm: Algorithm = algorithm.parse()?;
        if !algorithm.is_signing() {
            // A wallet's seed is made by `wallet create`, which binds what it is for.
            return Err(strongroom_core::Error::UnknownAlgorithm.into());
        }
        check_label(label.as_deref())?;
        if matches!(ctx.principal, Principal::Anonymous) {
            return Err(ApiError::Unauthenticated);
        }
        // Resolve first so that an application token probing another domain gets the same 404
        // as for a domain that does not exist.
        let d = self.resolve_domain(ctx, domain)?;
        allow(ctx, &Operation::CreateKey(d.id))?;
        live_domain(&d)?;
        let id = KeyId::from_random(self.random_bytes()?);
        ctx.tag(|t| t.key = Some(id));
        let record = self
            .keystore
            .create_key(&d, id, algorithm, label, ctx.time)?;
        self.commit(ctx, "key.create", vec![Mutation::CreateKey(record.clone())])
            .await?;
        let view = KeyView::new(&record, &d);
        self.keys.put(record, d);
        Ok(view)
    }

    /// Rotates a key (where the chain allows it): a successor of the same algorithm and label
    /// in the same domain, one version up, naming its predecessor; the predecessor is made
    /// cold in the same transaction (kept, so its signatures still verify; signing with it
    /// again needs a quorum to warm it, and `key destroy` removes it for good).
    pub(crate) async fn rotate_key(&self, ctx: &RequestCtx, id: &str) -> Result<KeyView, ApiError> {
        let found = self.key_for(ctx, id, Operation::CreateKey)?;
        let (old, d) = (found.0.clone(), found.1.clone());
        ctx.tag(|t| {
            t.key = Some(old.id);
            t.domain = Some(d.id);
        });
        live_domain(&d)?;
        self.check_public(&old)?;
        if old.destroyed_at.is_some() {
            return Err(ApiError::conflict(
                "key_destroyed",
                "the key has been destroyed",
            ));
        }
        if matches!(old.algorithm, Algorithm::Bip32Seed | Algorithm::Bls12381) {
            return Err(ApiError::conflict(
                "rotation_not_supported",
                "wallets and validator keys are not rotated in place: a wallet moves by a sweep to a new wallet, a validator key is bound to its validator",
            ));
        }
        let new_id = KeyId::from_random(self.random_bytes()?);
        let record = self.keystore.create_successor(&d, &old, new_id, ctx.time)?;
        let mut mutations = vec![Mutation::CreateKey(record.clone())];
        let mut frozen = old.clone();
        if old.temperature != Temperature::Cold {
            frozen.temperature = Temperature::Cold;
            frozen.temperature_since = ctx.time;
            frozen.hot_idle_secs = None;
            frozen.temperature_mac = self.keystore.temperature_mac(&frozen)?;
            mutations.push(Mutation::SetTemperature {
                id: old.id,
                temperature: Temperature::Cold,
                since: ctx.time,
                hot_idle_secs: None,
                mac: frozen.temperature_mac,
                expected_mac: old.temperature_mac,
            });
        }
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({"predecessor": old.id.to_string(), "successor": new_id.to_string(),
                                   "version": record.version})
                .to_string(),
            );
        });
        self.commit(ctx, "key.rotate", mutations).await?;
        self.keystore.evict_key(old.id);
        self.keys.put(frozen, d.clone());
        let view = KeyView::new(&record, &d);
        self.keys.put(record, d);
        Ok(view)
    }

    pub(crate) fn list_keys(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
    ) -> Result<Vec<KeyView>, ApiError> {
        let (d, keys) = self.domain_keys(ctx, domain)?;
        Ok(keys.iter().map(|k| KeyView::new(k, &d)).collect())
    }

    /// A domain's keys (wallets included) for a caller who may read them, each row's MAC
    /// checked: what lists hand out is where funds get sent.
    pub(crate) fn domain_keys(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
    ) -> Result<(DomainRecord, Vec<KeyRecord>), ApiError> {
        if matches!(ctx.principal, Principal::Anonymous) {
            return Err(ApiError::Unauthenticated);
        }
        let d = self.resolve_domain(ctx, domain)?;
        allow(ctx, &Operation::ReadKeys(d.id))?;
        let keys = self.store.keys(d.id)?;
        for k in &keys {
            self.check_public(k)?;
        }
        Ok((d, keys))
    }

    /// Looks a key up and checks the caller may perform `op` on it; unknown and foreign keys
    /// both answer 404.
    pub(crate) fn key_for(
        &self,
        ctx: &RequestCtx,
        id: &str,
        op: fn(DomainId) -> Operation,
    ) -> Result<Arc<(KeyRecord, DomainRecord)>, ApiError> {
        if matches!(ctx.principal, Principal::Anonymous) {
            return Err(ApiError::Unauthenticated);
        }
        let id: KeyId = id.parse().map_err(|_| ApiError::NotFound)?;
        ctx.tag(|t| t.key = Some(id));
        let found = self
            .keys
            .get(self.store.as_ref(), id)?
            .ok_or(ApiError::NotFound)?;
        if let Err(e) = allow(ctx, &op(found.1.id)) {
            if e == ApiError::NotFound {
                // Out of scope must cost what an unknown id costs (a database read), or
                // timing would tell a cached foreign key from a missing one.
                let _ = self.store.key_with_domain(id);
            }
            return Err(e);
        }
        ctx.tag(|t| t.domain = Some(found.1.id));
        if matches!(op(found.1.id), Operation::Sign(_)) {
            note_deprecated(ctx, &found.0, &found.1);
        }
        Ok(found)
    }

    pub(crate) fn show_key(&self, ctx: &RequestCtx, id: &str) -> Result<KeyView, ApiError> {
        let found = self.key_for(ctx, id, Operation::ReadKeys)?;
        self.check_public(&found.0)?;
        Ok(KeyView::new(&found.0, &found.1))
    }

    /// Refuses a key row whose public part (or temperature) is not the vault's: what we hand
    /// out is where funds get sent, so an edited row must not reach a caller.
    pub(crate) fn check_public(&self, k: &KeyRecord) -> Result<(), ApiError> {
        if self.keystore.verify_temperature(k)? {
            Ok(())
        } else {
            tracing::error!(key = %k.id, "a key row failed its MAC check");
            Err(ApiError::StoredDataCorrupt)
        }
    }

    pub(crate) async fn destroy_key(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<Gated<KeyView>, ApiError> {
        let found = self.key_for(ctx, id, Operation::DestroyKey)?;
        let (k, d) = (&found.0, &found.1);
        if k.destroyed_at.is_some() {
            return Err(ApiError::conflict(
                "key_destroyed",
                "the key has already been destroyed",
            ));
        }
        let params = serde_json::json!({
            "key": k.id.to_string(),
            "algorithm": k.algorithm.as_str(),
            "label": k.label,
            "domain": d.name.as_str(),
            "public_key": hex::encode(&k.public_key),
        });
        let params = crate::requests::strip_nulls(params);
        if let Some(p) = self
            .gate(ctx, GatedOp::DestroyKey, params, Some(d.id), Some(k.id))
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.destroy_key_prepared(ctx, k.id, |_| Ok(None)).await?,
        ))
    }

    /// Destroys a key, committing `finish(view)` with it.
    pub(crate) async fn destroy_key_prepared(
        &self,
        ctx: &RequestCtx,
        id: KeyId,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<KeyView, ApiError> {
        let found = self
            .keys
            .get(self.store.as_ref(), id)?
            .ok_or(ApiError::NotFound)?;
        let (k, d) = (found.0.clone(), found.1.clone());
        if k.destroyed_at.is_some() {
            return Err(ApiError::conflict(
                "key_destroyed",
                "the key has already been destroyed",
            ));
        }
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
        });
        let gone = KeyRecord {
            destroyed_at: Some(ctx.time),
            sealed_secret: None,
            ..k
        };
        let view = KeyView::new(&gone, &d);
        let mut mutations = vec![Mutation::DestroyKey {
            id: gone.id,
            at: ctx.time,
        }];
        mutations.extend(finish(
            serde_json::to_value(&view).map_err(|_| ApiError::Internal)?,
        )?);
        self.commit(ctx, "key.destroy", mutations).await?;
        self.keystore.forget_key(gone.id);
        self.keys.put(gone, d);
        Ok(view)
    }

    pub(crate) async fn sign(
        &self,
        ctx: &RequestCtx,
        id: &str,
        input: &SignInput,
    ) -> Result<Gated<SignView>, ApiError> {
        let found = self.key_for(ctx, id, Operation::Sign)?;
        let (k, d) = (&found.0, &found.1);
        // Validator keys sign only through the remote-signing API, under slashing protection.
        if k.algorithm.is_validator() {
            return Err(ApiError::NotAllowed("validator_signing_refused"));
        }
        // A wallet signs a caller's digest (blind signing) only if its policy allows
        // `blind_digest` by name: off by default outside dev mode.
        if k.algorithm == Algorithm::Bip32Seed {
            self.wallet_may_blind_sign(ctx, k, input)?;
        }
        // A plain key's policy: which tokens may sign, and the rate mutations to commit.
        let rate = self.key_policy_admits(ctx, k)?;
        // An idle hot key demotes itself before it would sign.
        let demoted = self.demote_if_idle(k, ctx.time).await?;
        let k = demoted.as_ref().unwrap_or(k);
        match temperature::signing(k.temperature) {
            Change::Now => {}
            Change::NeedsQuorum => {
                let (field, value) = match input {
                    SignInput::Digest(dg) => ("digest", hex::encode(dg)),
                    SignInput::Message(m) => ("message", hex::encode(m)),
                };
                let params = crate::requests::strip_nulls(serde_json::json!({
                    "key": k.id.to_string(),
                    "algorithm": k.algorithm.as_str(),
                    "label": k.label,
                    "domain": d.name.as_str(),
                    field: value,
                }));
                if let Some(p) = self
                    .gate(ctx, GatedOp::SignWarm, params, Some(d.id), Some(k.id))
                    .await?
                {
                    return Ok(Gated::Pending(p));
                }
            }
            _ => {
                return Err(ApiError::conflict(
                    "key_cold",
                    "the key is cold: make it warmer (with a quorum) before it can sign",
                ));
            }
        }
        let signed = self.sign_prepared(k, d, input)?;
        // Counted with the audit record: a signature over the rate is never released.
        if !rate.is_empty() {
            self.commit(ctx, "key.sign", rate)
                .await
                .map_err(crate::key_policy::rate_error)?;
        }
        if k.hot_idle_secs.is_some() {
            self.last_use.touch(k.id, ctx.time);
        }
        Ok(Gated::Done(signed))
    }

    /// Signs (the key's temperature has been checked by the caller).
    pub(crate) fn sign_prepared(
        &self,
        k: &KeyRecord,
        d: &DomainRecord,
        input: &SignInput,
    ) -> Result<SignView, ApiError> {
        let payload = match input {
            SignInput::Digest(d) => Payload::Digest(d),
            SignInput::Message(m) => Payload::Message(m),
        };
        let sig = match (k.algorithm, payload) {
            // A wallet's digest is signed by its first address (m/.../0/0).
            (Algorithm::Bip32Seed, Payload::Digest(digest)) => {
                self.keystore.sign_wallet(d, k, false, 0, digest)?
            }
            (Algorithm::Bip32Seed, _) => return Err(ApiError::NotAllowed("blind_signing_refused")),
            _ => self.keystore.sign(d, k, payload)?,
        };
        Ok(SignView {
            key_id: k.id.to_string(),
            algorithm: k.algorithm.as_str(),
            signature: hex::encode(sig.bytes),
            recovery_id: sig.recovery_id,
            signature_der: sig.der.map(hex::encode),
        })
    }

    pub(crate) async fn set_temperature(
        &self,
        ctx: &RequestCtx,
        id: &str,
        to: &str,
        idle: Option<u32>,
    ) -> Result<Gated<KeyView>, ApiError> {
        let to: Temperature = to.parse()?;
        if let Some(s) = idle {
            if to != Temperature::Hot {
                return Err(ApiError::bad(
                    "invalid_idle_limit",
                    "an idle limit applies to hot keys only",
                ));
            }
            if !(crate::idle::MIN_IDLE_SECS..=crate::idle::MAX_IDLE_SECS).contains(&s) {
                return Err(ApiError::bad(
                    "invalid_idle_limit",
                    format!(
                        "the idle limit must be {} to {} seconds",
                        crate::idle::MIN_IDLE_SECS,
                        crate::idle::MAX_IDLE_SECS
                    ),
                ));
            }
        }
        let found = self.key_for(ctx, id, Operation::ChangeTemperature)?;
        let (k, d) = (&found.0, &found.1);
        if k.destroyed_at.is_some() {
            return Err(ApiError::conflict(
                "key_destroyed",
                "the key has been destroyed",
            ));
        }
        if k.sealed_secret.is_none() {
            return Err(ApiError::conflict(
                "key_offline",
                "the key is offline (exported); import it first",
            ));
        }
        // Staying hot with a different idle limit: a tighter limit is a step colder, a looser
        // one (or none) a step warmer.
        let (from, step) = match (k.temperature, to, k.hot_idle_secs, idle) {
            (Temperature::Hot, Temperature::Hot, old, new) if old == new => (to, to),
            (Temperature::Hot, Temperature::Hot, None, Some(_)) => (to, Temperature::Warm),
            (Temperature::Hot, Temperature::Hot, Some(o), Some(n)) if n < o => {
                (to, Temperature::Warm)
            }
            (Temperature::Hot, Temperature::Hot, _, _) => (Temperature::Warm, to),
            (from, to, _, _) => (from, to),
        };
        let change = temperature::change(&ctx.principal, from, step);
        let operation = if step > from {
            "key.warm"
        } else {
            "key.freeze"
        };
        match change {
            Change::Unchanged => return Ok(Gated::Done(KeyView::new(k, d))),
            Change::Now => {}
            Change::NeedsQuorum => {
                // A validator key released to another signer: the approvers are told.
                let released = if k.algorithm == Algorithm::Bls12381 {
                    self.store
                        .eth2_released(d.id)?
                        .into_iter()
                        .find(|(id, _, _)| *id == k.id)
                        .map(|(_, at, how)| serde_json::json!({"at": rfc3339(at), "by": how}))
                } else {
                    None
                };
                let params = crate::requests::strip_nulls(serde_json::json!({
                    "key": k.id.to_string(),
                    "algorithm": k.algorithm.as_str(),
                    "label": k.label,
                    "domain": d.name.as_str(),
                    "from": k.temperature.as_str(),
                    "to": to.as_str(),
                    "idle_seconds": idle,
                    "released": released,
                }));
                if let Some(p) = self
                    .gate(ctx, GatedOp::WarmKey, params, Some(d.id), Some(k.id))
                    .await?
                {
                    return Ok(Gated::Pending(p));
                }
            }
            _ => return Err(ApiError::Forbidden),
        }
        Ok(Gated::Done(
            self.set_temperature_prepared(ctx, k.id, to, idle, operation, |_| Ok(None))
                .await?,
        ))
    }

    /// Changes a key's temperature (and idle limit), committing `finish(view)` with it and
    /// recording `operation` (`key.warm`, `key.freeze` or `key.demote`).
    pub(crate) async fn set_temperature_prepared(
        &self,
        ctx: &RequestCtx,
        id: KeyId,
        to: Temperature,
        idle: Option<u32>,
        operation: &'static str,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<KeyView, ApiError> {
        let found = self
            .keys
            .get(self.store.as_ref(), id)?
            .ok_or(ApiError::NotFound)?;
        let (k, d) = (found.0.clone(), found.1.clone());
        if !self.keystore.verify_temperature(&k)? {
            return Err(ApiError::KeyUnavailable);
        }
        // An offline key stays cold until it is imported (an approval filed before it went
        // offline must not warm an empty record).
        if k.sealed_secret.is_none() && to != Temperature::Cold {
            return Err(ApiError::conflict(
                "key_offline",
                "the key is offline (exported); import it first",
            ));
        }
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
        });
        let mut changed = KeyRecord {
            temperature: to,
            temperature_since: ctx.time,
            hot_idle_secs: idle.filter(|_| to == Temperature::Hot),
            ..k.clone()
        };
        changed.temperature_mac = self.keystore.temperature_mac(&changed)?;
        let view = KeyView::new(&changed, &d);
        let mut mutations = vec![Mutation::SetTemperature {
            id: k.id,
            temperature: to,
            since: changed.temperature_since,
            hot_idle_secs: changed.hot_idle_secs,
            mac: changed.temperature_mac,
            expected_mac: k.temperature_mac,
        }];
        mutations.extend(finish(
            serde_json::to_value(&view).map_err(|_| ApiError::Internal)?,
        )?);
        self.commit(ctx, operation, mutations).await?;
        if to == Temperature::Cold {
            // A cold key is not kept open in memory.
            self.keystore.evict_key(k.id);
        }
        self.keys.put(changed, d);
        Ok(view)
    }
}

/// Writes the tamper marker durably (its content is informational).
fn write_marker(path: &std::path::Path, at: UnixMillis, how: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(format!("tampered at {} ms by {how}\n", at.0).as_bytes())?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
