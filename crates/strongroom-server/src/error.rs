//! The server's one error type and its mapping to HTTP. Every variant has a stable
//! snake_case code; messages are written here, never copied from secrets or from input.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strongroom_core::record::Outcome;

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// Malformed or invalid input (400).
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// No credential where one is required (401).
    Unauthenticated,
    /// The credential is unknown, expired or revoked (401).
    InvalidToken,
    /// An operator's session has expired: log in again (401).
    SessionExpired,
    /// A login failed (401): `wrong_password`, `wrong_totp` or `replayed_totp`.
    LoginFailed(&'static str),
    /// The operator is locked out after repeated failures (403).
    LockedOut,
    /// First login: the enrolment password must be replaced (403).
    PasswordChangeRequired,
    /// The principal may not do this (403).
    Forbidden,
    /// A specific refusal with its own code (403): `own_request`, `own_role_change`,
    /// `not_an_approver`, `no_approval_key`, `outside_your_domain`.
    NotAllowed(&'static str),
    /// Unknown, or outside the caller's domain: the two are indistinguishable (404).
    NotFound,
    /// The request conflicts with current state (409).
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The body is larger than the server accepts (413).
    TooLarge,
    /// Too many unauthenticated or failed requests from this source (429).
    RateLimited,
    /// Slashing protection refused a validator duty (412, as the remote-signing API says).
    Slashable,
    /// The vault is sealed (503).
    Sealed,
    /// The vault has not been initialised (503).
    NotInitialized,
    /// The audit log cannot be written, so nothing is done (503).
    AuditUnavailable,
    /// A power-on self-test (named) failed: no cryptographic operation is served (503).
    SelfTestFailed(&'static str),
    /// The database is older than the audit head this node signed (described): the vault
    /// does not unseal over it (503).
    RolledBack(String),
    /// The random-bit generator failed a health test: nothing needing randomness is done
    /// (503).
    EntropyFailed,
    /// This node's configuration changed and lacks the security officers' signatures it
    /// needs (described): the vault does not unseal under it (403).
    ConfigUnauthorized(String),
    /// A signature or a new key failed its own check (verify-before-release, the
    /// pairwise-consistency test): nothing was released or kept (500).
    SelfCheckFailed,
    /// The wall clock moved backwards: time-dependent operations wait for a security
    /// officer's acknowledgement (503).
    ClockUntrusted,
    /// The PKCS#11 token could not wrap or unwrap the root key (503); the code names why
    /// (`hsm_pin_incorrect`, `hsm_token_not_found`, `hsm_key_not_found`, ...).
    Hsm(strongroom_keystore::HsmError),
    /// A sealed key failed to open: tampered, moved or edited (500).
    KeyUnavailable,
    /// A domain master key failed to open under the root: the sealed state was edited or
    /// damaged. The vault answers with the tamper response (500).
    SealedStateCorrupt,
    /// Stored data failed its integrity check: a sealed column that does not open, or a row
    /// that does not parse. The database was edited or damaged (500).
    StoredDataCorrupt,
    /// Anything else (500). Details go to the server log with the request id, never to the
    /// client.
    Internal,
}

impl ApiError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated
            | ApiError::InvalidToken
            | ApiError::SessionExpired
            | ApiError::LoginFailed(_) => StatusCode::UNAUTHORIZED,
            ApiError::LockedOut
            | ApiError::PasswordChangeRequired
            | ApiError::ConfigUnauthorized(_) => StatusCode::FORBIDDEN,
            ApiError::Forbidden | ApiError::NotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Slashable => StatusCode::PRECONDITION_FAILED,
            ApiError::Sealed
            | ApiError::NotInitialized
            | ApiError::AuditUnavailable
            | ApiError::SelfTestFailed(_)
            | ApiError::EntropyFailed
            | ApiError::RolledBack(_)
            | ApiError::ClockUntrusted
            | ApiError::Hsm(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::KeyUnavailable
            | ApiError::SealedStateCorrupt
            | ApiError::StoredDataCorrupt
            | ApiError::SelfCheckFailed
            | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Conflict { code, .. } => code,
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidToken => "invalid_token",
            ApiError::SessionExpired => "session_expired",
            ApiError::LoginFailed(code) => code,
            ApiError::LockedOut => "locked_out",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::ConfigUnauthorized(_) => "config_unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotAllowed(code) => code,
            ApiError::NotFound => "not_found",
            ApiError::TooLarge => "body_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Slashable => "slashable",
            ApiError::Sealed => "sealed",
            ApiError::NotInitialized => "not_initialized",
            ApiError::AuditUnavailable => "audit_unavailable",
            ApiError::SelfTestFailed(_) => "self_test_failed",
            ApiError::SelfCheckFailed => "self_check_failed",
            ApiError::EntropyFailed => "entropy_failed",
            ApiError::RolledBack(_) => "database_rolled_back",
            ApiError::ClockUntrusted => "clock_untrusted",
            ApiError::KeyUnavailable => "key_unavailable",
            ApiError::SealedStateCorrupt => "sealed_state_corrupt",
            ApiError::StoredDataCorrupt => "stored_data_corrupt",
            ApiError::Hsm(e) => e.code(),
            ApiError::Internal => "internal_error",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::BadRequest { message, .. } | ApiError::Conflict { message, .. } => {
                message.clone()
            }
            ApiError::Unauthenticated => "a token is required (Authorization: Bearer ...)".into(),
            ApiError::InvalidToken => "the token is unknown, expired or revoked".into(),
            ApiError::SessionExpired => "the session has expired; log in again".into(),
            ApiError::LoginFailed("wrong_totp") => "the one-time code is wrong".into(),
            ApiError::LoginFailed("replayed_totp") => {
                "this one-time code was already used; wait for the next one".into()
            }
            ApiError::LoginFailed(_) => "wrong name or password".into(),
            ApiError::LockedOut => "too many failed logins; try again later".into(),
            ApiError::PasswordChangeRequired => {
                "first login: choose a new password (new_password)".into()
            }
            ApiError::Forbidden => "this token may not perform this operation".into(),
            ApiError::NotAllowed("own_request") => "a request's creator never approves it".into(),
            ApiError::NotAllowed("no_approval_key") => {
                "register an approval key first (operator register-key)".into()
            }
            ApiError::NotAllowed("own_role_change") => {
                "an operator never approves a change to their own roles".into()
            }
            ApiError::NotAllowed("outside_your_domain") => {
                "you manage only operators confined to your own domain".into()
            }
            ApiError::NotAllowed("blind_signing_refused") => {
                "this wallet's policy does not allow signing raw digests (blind_digest); it signs the transactions it decodes"
                    .into()
            }
            ApiError::NotAllowed("policy_denied") => {
                "the wallet's policy does not allow this (a production wallet signs nothing until a policy is set)"
                    .into()
            }
            ApiError::NotAllowed("eip7702_refused") => {
                "EIP-7702 authorizations (type 4) are refused: they hand the account to code".into()
            }
            ApiError::NotAllowed("algorithm_deprecated") => {
                "the domain deprecated this algorithm: no new keys of it (existing ones still sign)"
                    .into()
            }
            ApiError::NotAllowed("algorithm_disabled") => {
                "the domain disabled this algorithm: its keys neither sign nor are made".into()
            }
            ApiError::NotAllowed(_) => "you may not approve this request".into(),
            ApiError::NotFound => "not found".into(),
            ApiError::TooLarge => "request body too large".into(),
            ApiError::RateLimited => "too many requests from this source; slow down".into(),
            ApiError::Slashable => {
                "slashing protection refuses this duty: it would be slashable (EIP-3076)".into()
            }
            ApiError::Sealed => "the vault is sealed".into(),
            ApiError::NotInitialized => "the vault is not initialised".into(),
            ApiError::ClockUntrusted => {
                "the clock moved backwards; a security officer must acknowledge it (operator acknowledge-clock)".into()
            }
            ApiError::AuditUnavailable => {
                "the audit log cannot be written; nothing was done".into()
            }
            ApiError::RolledBack(what) => format!(
                "{what}: the database was rolled back (restored from an older copy?); the vault will not unseal over it"
            ),
            ApiError::ConfigUnauthorized(why) => why.clone(),
            ApiError::EntropyFailed => {
                "the random-bit generator failed a health test: the vault sealed itself; restart the node and unseal".into()
            }
            ApiError::SelfCheckFailed => {
                "a cryptographic self-check failed (a signature, or a new key's pairwise-consistency test); nothing was released or kept".into()
            }
            ApiError::SelfTestFailed(test) => format!(
                "the power-on self-test {test} failed: this node serves no cryptographic operation"
            ),
            ApiError::KeyUnavailable => "key unavailable".into(),
            ApiError::SealedStateCorrupt => {
                "the sealed state failed its integrity check: every key was zeroized and the vault sealed (tamper response)".into()
            }
            ApiError::StoredDataCorrupt => {
                "stored data failed its integrity check (edited or damaged database)".into()
            }
            // Names paths and labels from the node's own configuration, never the PIN.
            ApiError::Hsm(e) => e.to_string(),
            ApiError::Internal => "internal error".into(),
        }
    }

    /// How the request is recorded in the audit log.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        if self.status().is_server_error() {
            Outcome::Failed
        } else {
            Outcome::Denied
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": { "code": self.code(), "message": self.message() } });
        let mut resp = (self.status(), axum::Json(body)).into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// A request body that could not be read: 413 when it is over the route's limit, 400 otherwise.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::bad("malformed_request", "the request body could not be read")
        }
    }
}

impl From<strongroom_keystore::HsmError> for ApiError {
    fn from(e: strongroom_keystore::HsmError) -> Self {
        ApiError::Hsm(e)
    }
}

impl From<strongroom_keystore::Error> for ApiError {
    fn from(e: strongroom_keystore::Error) -> Self {
        use strongroom_keystore::Error as K;
        match e {
            K::NotInitialized => ApiError::NotInitialized,
            K::Sealed => ApiError::Sealed,
            K::AlreadyInitialized => {
                ApiError::conflict("already_initialized", "the vault is already initialised")
            }
            K::AlreadyUnsealed => {
                ApiError::conflict("already_unsealed", "the vault is already unsealed")
            }
            K::MalformedShare => ApiError::bad(
                "malformed_share",
                "the share is malformed (check for typos); it was not counted",
            ),
            K::ForeignShare => ApiError::bad(
                "foreign_share",
                "the share belongs to another vault; it was not counted",
            ),
            K::InvalidShare => ApiError::bad(
                "invalid_share",
                "the share is not valid for this vault; it was not counted",
            ),
            K::DuplicateShare => ApiError::conflict(
                "duplicate_share",
                "this share was already submitted; it was not counted again",
            ),
            K::UnsealFailed => ApiError::bad(
                "unseal_failed",
                "the shares did not reconstruct the root key; progress was reset",
            ),
            K::ShareParameters => {
                ApiError::bad("invalid_parameters", "need 1 <= threshold <= shares <= 255")
            }
            K::KeyUnavailable => ApiError::KeyUnavailable,
            K::AlgorithmRefused(r) => ApiError::NotAllowed(r.code()),
            K::SealedStateCorrupt => ApiError::SealedStateCorrupt,
            K::Hsm(e) => ApiError::Hsm(e),
            K::NotHsmSealed => ApiError::conflict(
                "not_hsm_sealed",
                "the vault is sealed by shares only: unseal with shares, then migrate (operator seal-migrate)",
            ),
            K::BackupUnreadable => ApiError::bad(
                "backup_unreadable",
                "the backup does not open with these shares, or was altered",
            ),
            K::RotationInProgress => ApiError::conflict(
                "rotation_in_progress",
                "this domain's master key is already being rotated; see domain show",
            ),
            K::RekeyInProgress => ApiError::conflict(
                "rekey_in_progress",
                "a rekey is already in progress on this node; finish or cancel it",
            ),
            K::NoRekey => ApiError::conflict(
                "no_rekey",
                "no rekey in progress on this node with that nonce (none started, cancelled, sealed or finished)",
            ),
            K::RekeyNeedsToken => ApiError::conflict(
                "rekey_needs_token",
                "the vault's root is also wrapped by a PKCS#11 token: rekey on a node configured with it",
            ),
            K::KeyDestroyed => ApiError::conflict("key_destroyed", "the key has been destroyed"),
            K::KeyCold => ApiError::conflict(
                "key_cold",
                "the key is cold: make it warmer (with a quorum) before it can sign",
            ),
            K::Crypto(strongroom_crypto::Error::WrongPayload { expected, given }) => ApiError::bad(
                "wrong_payload",
                format!("this key signs a {expected}, not a {given}"),
            ),
            K::Crypto(strongroom_crypto::Error::InvalidMnemonic) => ApiError::bad(
                "invalid_mnemonic",
                "the mnemonic is not a valid BIP-39 English phrase (unknown word, word count or checksum)",
            ),
            K::Crypto(strongroom_crypto::Error::Entropy) => {
                tracing::error!("entropy source failed");
                ApiError::EntropyFailed
            }
            K::Crypto(strongroom_crypto::Error::SelfCheck) => {
                tracing::error!(
                    "a self-check failed (a signature, or a new key's pairwise-consistency test); nothing released or kept"
                );
                ApiError::SelfCheckFailed
            }
            other => {
                tracing::error!(error = %other, "keystore failure");
                ApiError::Internal
            }
        }
    }
}

impl From<strongroom_core::Error> for ApiError {
    fn from(e: strongroom_core::Error) -> Self {
        use strongroom_core::Error as C;
        match e {
            C::InvalidId => ApiError::NotFound,
            C::UnknownAlgorithm => ApiError::bad(
                "invalid_algorithm",
                "algorithm must be secp256k1, ed25519 or p256",
            ),
            C::InvalidTemperature => ApiError::bad(
                "invalid_temperature",
                "temperature must be cold, warm or hot",
            ),
            C::UnknownOperation => {
                ApiError::bad("invalid_operation", "unknown operation for a quorum rule")
            }
            C::InvalidRole => ApiError::bad(
                "invalid_role",
                "roles are security-officer, custodian, approver and auditor",
            ),
            C::RolesConflict => ApiError::bad(
                "roles_conflict",
                "these roles cannot be held by one operator (separation of duties)",
            ),
            C::InvalidName => ApiError::bad(
                "invalid_name",
                "names use 1-64 characters from a-z, 0-9, '-' and '_'",
            ),
            C::Conflict(strongroom_core::slashing::SLASHABLE) => ApiError::Slashable,
            C::Conflict(strongroom_core::slashing::KEY_NOT_HOT) => ApiError::conflict(
                "key_not_hot",
                "the key was demoted (or destroyed) before the duty was recorded",
            ),
            C::Conflict(strongroom_core::slashing::KEY_NOT_COLD) => ApiError::conflict(
                "key_not_cold",
                "the key was warmed (or destroyed) while its keystore was made",
            ),
            C::Conflict(strongroom_core::slashing::EXIT_NOT_AUTHORIZED) => {
                ApiError::NotAllowed("exit_not_authorized")
            }
            C::Conflict(strongroom_core::slashing::OTHER_DOMAIN) => ApiError::conflict(
                "validator_of_another_domain",
                "another domain recorded this validator: only it (or a domain that signs for it) imports into its records",
            ),
            C::Conflict(strongroom_core::slashing::WRONG_CHAIN) => ApiError::conflict(
                "wrong_chain",
                "the domain's validators are pinned to another chain (genesis validators root)",
            ),
            C::Conflict(what) => ApiError::conflict("conflict", format!("{what} already exists")),
            C::NotFound(_) => ApiError::NotFound,
            C::Corrupt(what) => {
                tracing::error!(what, "stored data failed its integrity check");
                ApiError::StoredDataCorrupt
            }
            C::Sealed => ApiError::Sealed,
            // A draw for a storage nonce failed its health test: the same failure, whichever
            // part of the request drew first.
            C::Entropy => ApiError::EntropyFailed,
            C::InvalidInput(what) => ApiError::bad("invalid_wallet", format!("invalid {what}")),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::Internal
            }
        }
    }
}

impl From<strongroom_chains::Error> for ApiError {
    fn from(e: strongroom_chains::Error) -> Self {
        use strongroom_chains::Error as E;
        match e {
            E::InvalidIndex => ApiError::bad("invalid_index", "address indices are below 2^31"),
            E::InvalidPublicKey => {
                tracing::error!("a stored wallet public key does not decode");
                ApiError::StoredDataCorrupt
            }
            E::InvalidTransaction(_) | E::UnknownField(_) => {
                ApiError::bad("invalid_transaction", e.to_string())
            }
            E::InvalidAddress => ApiError::bad("invalid_address", e.to_string()),
            E::ChainIdMismatch { .. } => ApiError::bad("chain_id_mismatch", e.to_string()),
            E::FeeCapBelowPriorityFee => ApiError::bad("fee_invalid", e.to_string()),
            E::UnsupportedTxType(_) => ApiError::bad("unsupported_transaction_type", e.to_string()),
            E::Eip7702Refused => ApiError::NotAllowed("eip7702_refused"),
            E::InvalidTypedData => ApiError::bad("invalid_typed_data", e.to_string()),
            E::InvalidPsbt(_) => ApiError::bad("invalid_psbt", e.to_string()),
            E::PsbtInput(..) => ApiError::bad("psbt_input_refused", e.to_string()),
            E::PsbtOutput(..) => ApiError::bad("psbt_output_refused", e.to_string()),
            E::InvalidEth2Request(_) => ApiError::bad("invalid_signing_request", e.to_string()),
            E::InvalidInterchange(_) => ApiError::bad("invalid_interchange", e.to_string()),
            E::SignatureMismatch => {
                tracing::error!("a wallet's signature does not verify against its address key");
                ApiError::KeyUnavailable
            }
            E::PsbtDerivationMismatch(_) => {
                ApiError::bad("psbt_derivation_mismatch", e.to_string())
            }
            _ => ApiError::bad("invalid_transaction", e.to_string()),
        }
    }
}

impl From<strongroom_crypto::Error> for ApiError {
    fn from(e: strongroom_crypto::Error) -> Self {
        strongroom_keystore::Error::Crypto(e).into()
    }
}
