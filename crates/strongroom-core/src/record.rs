//! The records strongroom stores. Plain data: encoding, sealing and hashing live in the crates
//! that own those jobs (`docs/formats.md` gives the byte layouts).

use crate::id::DomainName;
use crate::operator::{OperatorName, Roles};
use crate::quorum::GatedOp;
use crate::temperature::Temperature;
use crate::{
    Algorithm, DomainId, KeyId, OperatorId, PendingId, RequestId, TokenId, UnixMillis, VaultId,
};

/// The installation row, created together with the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultMeta {
    /// Random identity of this vault; bound into shares and audit heads.
    pub vault_id: VaultId,
    /// When the database was created.
    pub created_at: UnixMillis,
    /// Present once `operator init` has run.
    pub init: Option<InitRecord>,
}

/// What initialisation leaves behind. All of it is public: nothing here helps to unseal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitRecord {
    /// The seal's public configuration (encoded by the keystore; see `docs/formats.md`).
    pub seal_config: Vec<u8>,
    /// Keyed check value of the root key, to recognise the right root after unsealing.
    pub root_check: [u8; 32],
    /// Ed25519 public key that signs audit chain heads.
    pub audit_public_key: [u8; 32],
    /// When initialisation ran.
    pub initialized_at: UnixMillis,
}

/// A cryptographic domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRecord {
    /// Identifier.
    pub id: DomainId,
    /// Unique, immutable name.
    pub name: DomainName,
    /// The domain master key, sealed under the root key (see `docs/formats.md`).
    pub wrapped_key: Vec<u8>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// The temperature new keys in this domain start at (fixed at creation, bound into the
    /// sealed master key).
    pub new_key_temperature: Temperature,
    /// Which algorithms may make new keys and sign (changed by a `domain.algorithms` request;
    /// stored sealed with the row).
    pub algorithms: crate::AlgorithmPolicy,
    /// Set when the domain was destroyed: its master key (`wrapped_key`) is erased, so every
    /// key sealed under it is gone for good.
    pub destroyed_at: Option<UnixMillis>,
    /// The version of the master key in `wrapped_key`, which new blobs are sealed under (1 at
    /// creation; each rotation adds one).
    pub key_version: u32,
    /// During a rotation: the previous version, which still opens the blobs not yet moved
    /// (and the keys offline in export bundles). Erased when none is left.
    pub retiring: Option<RetiringKey>,
}

/// A domain master key version being rotated out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiringKey {
    /// Its version.
    pub version: u32,
    /// It, sealed under the root like the current one.
    pub wrapped_key: Vec<u8>,
}

/// A key. The secret exists only as `sealed_secret`, an AEAD blob under the domain master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Identifier.
    pub id: KeyId,
    /// Owning domain.
    pub domain: DomainId,
    /// Key version (rotation bumps it).
    pub version: u32,
    /// Signature algorithm.
    pub algorithm: Algorithm,
    /// Free-text label chosen at creation; immutable and bound into the sealed blob.
    pub label: Option<String>,
    /// Public key: compressed SEC1 (33 bytes) or Ed25519 (32 bytes).
    pub public_key: Vec<u8>,
    /// Creation time; bound into the sealed blob.
    pub created_at: UnixMillis,
    /// Set when the key was destroyed.
    pub destroyed_at: Option<UnixMillis>,
    /// The sealed secret; `None` once destroyed (crypto-shredded).
    pub sealed_secret: Option<Vec<u8>>,
    /// How reachable the secret is (cold, warm, hot).
    pub temperature: Temperature,
    /// When the temperature was last set (the idle clock of a hot key starts here).
    pub temperature_since: UnixMillis,
    /// Hot keys only: after this many seconds without a signature the key demotes itself to
    /// warm. `None`: stays hot.
    pub hot_idle_secs: Option<u32>,
    /// MAC over the temperature, its time and the idle limit (see `docs/formats.md`), so that
    /// a database editor cannot warm a key or keep it hot.
    pub temperature_mac: [u8; 32],
    /// The version of the domain master key `sealed_secret` is sealed under (for a key
    /// offline in an export bundle: the one its bundled blob is under).
    pub domain_key_version: u32,
    /// The key this one succeeds (`key rotate`): same domain, algorithm and label, one
    /// version up.
    pub predecessor: Option<KeyId>,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// Dev mode's root token: full power.
    Root,
    /// The token `operator init` returns in production: it may only add operators, and is
    /// revoked once two security officers have logged in.
    Bootstrap,
    /// An application token for one domain.
    Application(DomainId),
    /// An operator's session, issued by login.
    Session(OperatorId),
    /// A key-manager token for one domain: the Ethereum Keymanager API only (list, import
    /// and delete validator keystores). It cannot sign.
    Keymanager(DomainId),
}

/// An operator. Secrets appear only as an Argon2id hash and a sealed TOTP seed; the row is
/// authenticated by a MAC under a root-derived key (see `docs/formats.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Identifier.
    pub id: OperatorId,
    /// Unique login name.
    pub name: OperatorName,
    /// Roles (separation of duties checked).
    pub roles: Roles,
    /// If set, the operator acts in this domain only.
    pub domain: Option<DomainId>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Whether the password is the one-time enrolment password, to be changed at first login.
    pub must_change_password: bool,
    /// The TOTP secret, sealed under a root-derived key with the operator id bound in.
    pub totp_sealed: Vec<u8>,
    /// The last TOTP step accepted (codes at or before it are refused).
    pub totp_last_step: Option<u64>,
    /// Consecutive failed logins.
    pub failed_logins: u32,
    /// Locked out until this time.
    pub locked_until: Option<UnixMillis>,
    /// Ed25519 public key for signing approvals.
    pub approval_key: Option<[u8; 32]>,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Set when disabled.
    pub disabled_at: Option<UnixMillis>,
    /// MAC over every field above.
    pub mac: [u8; 32],
}

/// A token. Only the SHA-256 of its secret value is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Identifier (public; used to revoke).
    pub id: TokenId,
    /// SHA-256 of the token string.
    pub hash: [u8; 32],
    /// Scope.
    pub kind: TokenKind,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Expiry, if any.
    pub expires_at: Option<UnixMillis>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<UnixMillis>,
    /// MAC over the row with a root-derived key (layout in `docs/formats.md`), so that a
    /// database editor can neither add a token nor change one's scope, expiry or revocation.
    pub mac: [u8; 32],
}

/// How an audited request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The operation was allowed and completed.
    Granted,
    /// The operation was refused (authentication, authorisation, validation, rate limit).
    Denied,
    /// The operation was allowed but failed (tampered blob, storage error, ...).
    Failed,
}

impl Outcome {
    /// Stable one-byte code used in the audit hash (see `docs/formats.md`).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Outcome::Granted => 1,
            Outcome::Denied => 2,
            Outcome::Failed => 3,
        }
    }

    /// Inverse of [`Outcome::code`].
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Outcome::Granted),
            2 => Some(Outcome::Denied),
            3 => Some(Outcome::Failed),
            _ => None,
        }
    }

    /// Lower-case name for display.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One audited event, before it is placed in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When the request arrived.
    pub time: UnixMillis,
    /// The request's identifier.
    pub request_id: RequestId,
    /// Who asked ([`crate::Principal::audit_label`]).
    pub actor: String,
    /// Network source (IP address), where known.
    pub source: Option<String>,
    /// Operation name, e.g. `key.sign`.
    pub operation: String,
    /// Domain identifier, where the request touched one.
    pub domain: Option<String>,
    /// Key identifier, where the request touched one.
    pub key: Option<String>,
    /// Result.
    pub outcome: Outcome,
    /// Stable error code for refusals and failures.
    pub code: Option<String>,
    /// Number of requests this record stands for (above 1 only for aggregated
    /// unauthenticated traffic).
    pub count: u32,
    /// What was decided on, where there is more to say than the fields above: for a signed
    /// transaction, its decoded intent and the policy rule that decided (canonical JSON).
    pub detail: Option<String>,
}

/// An event placed in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, starting at 1, without gaps.
    pub seq: u64,
    /// Hash of the previous record (or the genesis value for seq 1).
    pub prev_hash: [u8; 32],
    /// The event, or what a reader without the storage key knows of it.
    pub body: AuditBody,
    /// This record's hash, over `seq`, `prev_hash`, the time and the event's digest.
    pub hash: [u8; 32],
}

/// A record's event as a reader sees it. The database holds most events sealed under the
/// storage key (layered encryption); the chain commits to each event through its digest, so
/// a reader without the key still verifies the chain. Exhaustive on purpose: a verifier must
/// know every form a body can take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditBody {
    /// The event, readable.
    Open(AuditEvent),
    /// The event could not be opened here (no storage key, or its ciphertext was altered):
    /// only its time and its digest are known.
    Sealed {
        /// When the request arrived.
        time: UnixMillis,
        /// The event's digest as stored.
        digest: [u8; 32],
    },
}

impl AuditBody {
    /// When the request arrived.
    #[must_use]
    pub fn time(&self) -> UnixMillis {
        match self {
            AuditBody::Open(e) => e.time,
            AuditBody::Sealed { time, .. } => *time,
        }
    }

    /// The event, if it could be opened.
    #[must_use]
    pub fn event(&self) -> Option<&AuditEvent> {
        match self {
            AuditBody::Open(e) => Some(e),
            AuditBody::Sealed { .. } => None,
        }
    }
}

/// A chain head signed by the audit key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// The vault whose chain this is.
    pub vault_id: VaultId,
    /// Sequence number of the newest record covered.
    pub seq: u64,
    /// Hash of that record.
    pub hash: [u8; 32],
    /// When the head was signed.
    pub time: UnixMillis,
    /// Ed25519 signature (see `docs/formats.md` for the signed message).
    pub signature: [u8; 64],
}

/// Where a pending request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Approved and run; `result` holds the outcome.
    Executed,
    /// Approved, but running it failed (the state had changed); `result` says why.
    Failed,
    /// Rejected by an approver or withdrawn by its requester.
    Rejected,
    /// Not approved in time.
    Expired,
}

impl RequestStatus {
    /// Lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Executed => "executed",
            RequestStatus::Failed => "failed",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Expired => "expired",
        }
    }

    /// Inverse of [`RequestStatus::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Executed,
            Self::Failed,
            Self::Rejected,
            Self::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A request that needs approvals before it runs. Approvals sign `hash`, which covers
/// everything that decides what will happen (see `docs/formats.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRecord {
    /// Identifier.
    pub id: PendingId,
    /// What it does.
    pub op: GatedOp,
    /// Its parameters, as canonical JSON (sorted keys, no spaces).
    pub params: String,
    /// The domain it touches, if any.
    pub domain: Option<DomainId>,
    /// The key it touches, if any.
    pub key: Option<KeyId>,
    /// Who asked (audit label).
    pub requester: String,
    /// The requesting operator, who may not approve it.
    pub requester_operator: Option<OperatorId>,
    /// Approvals needed.
    pub required: u8,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Approvals after this time are refused.
    pub expires_at: UnixMillis,
    /// Random, so that equal requests have different hashes.
    pub nonce: [u8; 32],
    /// The canonical hash approvals sign.
    pub hash: [u8; 32],
    /// Where it stands.
    pub status: RequestStatus,
    /// Outcome (JSON) once executed or failed.
    pub result: Option<String>,
    /// When it left `Pending`.
    pub decided_at: Option<UnixMillis>,
    /// MAC over the row (root-derived key).
    pub mac: [u8; 32],
}

/// One approver's signature over a pending request's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The request.
    pub request: PendingId,
    /// The approver.
    pub approver: OperatorId,
    /// Ed25519 signature by the approver's registered key.
    pub signature: [u8; 64],
    /// When it was given.
    pub at: UnixMillis,
}

/// A wallet's policy, as stored: the policy crate's stored form (canonical JSON), sealed in
/// the database. Versions count up from 1; a change applies only over the version it was
/// made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The wallet (its key id).
    pub wallet: KeyId,
    /// 1 for the first policy, then one more per change.
    pub version: u32,
    /// The policy (stored form, JSON).
    pub policy: String,
    /// When it was set.
    pub set_at: UnixMillis,
}

/// The first answer to a request sent with an `Idempotency-Key`: a retry with the same key
/// and the same request gets it again instead of a second signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRecord {
    /// SHA-256 of the request it answered (method, path and body).
    pub fingerprint: [u8; 32],
    /// The answer: `{"status": N, "body": ...}`.
    pub response: String,
    /// When it was stored.
    pub created_at: UnixMillis,
}
