//! Operators and login: enrolment (a one-time password and a TOTP secret, shown once),
//! listing, disabling, and login with a password and a one-time code.
//!
//! Login rules: Argon2id password and RFC 6238 code (one step of drift, each step used once);
//! five consecutive failures lock the operator out, for a minute doubling with every further
//! failure (at most an hour); the first login must replace the enrolment password. Every
//! outcome is audited; the row update and its audit record commit together, and the update
//! is compare-and-swap, so two logins cannot consume the same code.

use std::time::Duration;

use serde::Serialize;
use strongroom_core::operator::{OperatorName, Role, Roles};
use strongroom_core::record::{OperatorRecord, Outcome, TokenKind};
use strongroom_core::storage::Mutation;
use strongroom_core::{Operation, OperatorId, Principal, VaultId};
use strongroom_crypto::{OtpAlgorithm, OtpRejection, TotpSecret};

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault, allow, rfc3339};
use crate::token;
use strongroom_core::quorum::GatedOp;

/// Consecutive failures before a lockout.
pub(crate) const MAX_FAILURES: u32 = 5;
/// First lockout; doubles with each further failure.
const LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(3600);
/// Lifetime of an operator session.
pub(crate) const SESSION: Duration = Duration::from_secs(15 * 60);
/// Shortest new password.
const MIN_PASSWORD: usize = 12;
/// Issuer shown in authenticator apps.
const ISSUER: &str = "strongroom";

/// The bytes an operator row's MAC covers (layout in `docs/formats.md`).
pub(crate) fn binding(vault_id: &VaultId, o: &OperatorRecord) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(b);
    }
    fn opt(out: &mut Vec<u8>, v: Option<u64>) {
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"strongroom/operator/v1");
    out.extend_from_slice(vault_id.as_bytes());
    out.extend_from_slice(o.id.as_bytes());
    bytes(&mut out, o.name.as_str().as_bytes());
    out.push(o.roles.bits());
    out.extend_from_slice(o.domain.map_or([0u8; 16], |d| *d.as_bytes()).as_slice());
    bytes(&mut out, o.password_hash.as_bytes());
    out.push(u8::from(o.must_change_password));
    bytes(&mut out, &o.totp_sealed);
    opt(&mut out, o.totp_last_step);
    out.extend_from_slice(&o.failed_logins.to_be_bytes());
    opt(&mut out, o.locked_until.map(|t| t.0));
    match &o.approval_key {
        None => out.push(0),
        Some(k) => {
            out.push(1);
            out.extend_from_slice(k);
        }
    }
    out.extend_from_slice(&o.created_at.0.to_be_bytes());
    opt(&mut out, o.disabled_at.map(|t| t.0));
    out
}

/// An operator, without secrets.
#[derive(Serialize)]
pub struct OperatorView {
    id: String,
    name: String,
    roles: Vec<&'static str>,
    domain: Option<String>,
    created_at: String,
    disabled: bool,
    must_change_password: bool,
    locked_until: Option<String>,
    approval_key: Option<String>,
}

impl From<&OperatorRecord> for OperatorView {
    fn from(o: &OperatorRecord) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.to_string(),
            roles: o.roles.to_vec().into_iter().map(Role::as_str).collect(),
            domain: o.domain.map(|d| d.to_string()),
            created_at: rfc3339(o.created_at),
            disabled: o.disabled_at.is_some(),
            must_change_password: o.must_change_password,
            locked_until: o.locked_until.map(rfc3339),
            approval_key: o.approval_key.map(hex::encode),
        }
    }
}

/// A new operator and their one-time enrolment secrets.
#[derive(Serialize)]
pub struct EnrolView {
    #[serde(flatten)]
    operator: OperatorView,
    password: String,
    otpauth_uri: String,
}

/// A session.
#[derive(Serialize)]
pub struct SessionView {
    token: String,
    expires_at: String,
    operator: String,
    roles: Vec<&'static str>,
}

/// One-time enrolment secrets.
struct Enrolment {
    password: zeroize::Zeroizing<String>,
    otpauth_uri: zeroize::Zeroizing<String>,
}

fn duplicate_name(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict { .. } => {
            ApiError::conflict("conflict", "an operator with this name already exists")
        }
        other => other,
    }
}

/// What a login supplies.
pub(crate) struct Credentials<'a> {
    pub(crate) name: &'a str,
    pub(crate) password: &'a str,
    pub(crate) totp: &'a str,
    pub(crate) new_password: Option<&'a str>,
}

fn lockout_for(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(MAX_FAILURES).min(16);
    LOCKOUT.saturating_mul(1 << doublings).min(MAX_LOCKOUT)
}

/// A change of an operator's roles and domain, as filed and as run. It names who the operator
/// was when it was filed, so an approval never applies to an operator who has changed since.
pub(crate) struct RoleChange {
    name: OperatorName,
    operator: OperatorId,
    from_roles: Roles,
    from_domain: Option<String>,
    roles: Roles,
    domain: Option<String>,
}

fn role_names(roles: Roles) -> Vec<&'static str> {
    roles.to_vec().into_iter().map(Role::as_str).collect()
}

fn parse_roles<S: AsRef<str>>(names: &[S]) -> Result<Roles, ApiError> {
    let list: Vec<Role> = names
        .iter()
        .map(|r| r.as_ref().parse())
        .collect::<Result<_, _>>()?;
    Ok(Roles::new(&list)?)
}

impl RoleChange {
    fn to_params(&self) -> serde_json::Value {
        crate::requests::strip_nulls(serde_json::json!({
            "name": self.name.as_str(),
            "operator": self.operator.to_string(),
            "from_roles": role_names(self.from_roles),
            "from_domain": self.from_domain,
            "roles": role_names(self.roles),
            "domain": self.domain,
        }))
    }

    /// Reads back the parameters of a filed request (MAC-checked before this is called).
    pub(crate) fn from_params(p: &serde_json::Value) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::bad(
                "invalid_request_params",
                "the request's parameters are unusable",
            )
        };
        let text = |k: &str| p.get(k).and_then(serde_json::Value::as_str);
        let list = |k: &str| -> Result<Roles, ApiError> {
            let names: Vec<&str> = p[k]
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect();
            parse_roles(&names)
        };
        Ok(Self {
            name: text("name").ok_or_else(bad)?.parse().map_err(|_| bad())?,
            operator: text("operator")
                .ok_or_else(bad)?
                .parse()
                .map_err(|_| bad())?,
            from_roles: list("from_roles")?,
            from_domain: text("from_domain").map(str::to_owned),
            roles: list("roles")?,
            domain: text("domain").map(str::to_owned),
        })
    }
}

/// Whether `o` is an enabled, vault-wide security officer: someone who can still add
/// operators, set quorum and acknowledge the clock.
fn is_administrator(o: &OperatorRecord) -> bool {
    o.roles.has(Role::SecurityOfficer) && o.domain.is_none() && o.disabled_at.is_none()
}

impl Vault {
    /// A domain-scoped operator manages only operators confined to that same domain: a scoped
    /// security officer must not mint vault-wide power.
    fn manages(
        ctx: &RequestCtx,
        target: Option<strongroom_core::DomainId>,
    ) -> Result<(), ApiError> {
        match ctx.principal {
            Principal::Operator {
                domain: Some(own), ..
            } if target != Some(own) => Err(ApiError::NotAllowed("outside_your_domain")),
            _ => Ok(()),
        }
    }

    /// Refuses to turn the last vault-wide security officer into something else: nobody could
    /// then add operators, change quorum or acknowledge the clock.
    fn keeps_an_administrator(
        &self,
        before: &OperatorRecord,
        after: &OperatorRecord,
    ) -> Result<(), ApiError> {
        // Dev mode's root token never retires, so there is always someone in charge.
        if self.dev || !is_administrator(before) || is_administrator(after) {
            return Ok(());
        }
        let others = self
            .store
            .operators()?
            .iter()
            .filter(|o| o.id != before.id && is_administrator(o))
            .count();
        if others == 0 {
            return Err(ApiError::conflict(
                "last_security_officer",
                "this is the last enabled vault-wide security officer; add another first",
            ));
        }
        Ok(())
    }

    /// Changes an operator's roles and domain: a configuration change under the vault-wide
    /// `operator.roles` quorum. The operator concerned never approves it.
    pub(crate) async fn change_roles(
        &self,
        ctx: &RequestCtx,
        name: &str,
        roles: &[String],
        domain: Option<&str>,
    ) -> Result<Gated<OperatorView>, ApiError> {
        allow(ctx, &Operation::ChangeRoles)?;
        let op = self.genuine_operator(name)?.ok_or(ApiError::NotFound)?;
        let new_roles = parse_roles(roles)?;
        let scope = self.operator_scope(domain)?;
        Self::manages(ctx, op.domain)?;
        Self::manages(ctx, scope)?;
        let from_domain = match op.domain {
            None => None,
            Some(d) => Some(
                self.store
                    .domain(d)?
                    .ok_or(ApiError::Internal)?
                    .name
                    .to_string(),
            ),
        };
        let change = RoleChange {
            name: op.name.clone(),
            operator: op.id,
            from_roles: op.roles,
            from_domain,
            roles: new_roles,
            domain: domain.map(str::to_owned),
        };
        // Validate now, so a request that could never run is not filed.
        self.role_change_record(&op, &change)?;
        if let Some(p) = self
            .gate(ctx, GatedOp::ChangeRoles, change.to_params(), scope, None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        let record = self
            .change_roles_prepared(ctx, &change, |_| Ok(None))
            .await?;
        Ok(Gated::Done(OperatorView::from(&record)))
    }

    /// The operator's record after `change`, if the change still applies to them.
    fn role_change_record(
        &self,
        op: &OperatorRecord,
        change: &RoleChange,
    ) -> Result<OperatorRecord, ApiError> {
        if op.disabled_at.is_some() {
            return Err(ApiError::conflict(
                "already_disabled",
                "the operator is disabled",
            ));
        }
        if op.id != change.operator
            || op.roles != change.from_roles
            || op.domain != self.operator_scope(change.from_domain.as_deref())?
        {
            return Err(ApiError::conflict(
                "operator_changed",
                "the operator has changed since the request was filed",
            ));
        }
        let scope = self.operator_scope(change.domain.as_deref())?;
        if op.roles == change.roles && op.domain == scope {
            return Err(ApiError::conflict(
                "no_change",
                "the operator already has these roles and domain",
            ));
        }
        let after = OperatorRecord {
            roles: change.roles,
            domain: scope,
            ..op.clone()
        };
        self.keeps_an_administrator(op, &after)?;
        Ok(after)
    }

    /// Runs a role change (at once, or once approved), with `finish` closing its request.
    pub(crate) async fn change_roles_prepared(
        &self,
        ctx: &RequestCtx,
        change: &RoleChange,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<OperatorRecord, ApiError> {
        let op = self
            .genuine_operator(change.name.as_str())?
            .ok_or(ApiError::NotFound)?;
        let expected_mac = op.mac;
        let record = self.seal_operator(self.role_change_record(&op, change)?)?;
        let mut mutations = vec![Mutation::UpdateOperator {
            expected_mac,
            record: record.clone(),
        }];
        mutations.extend(finish(
            serde_json::json!({"operator": OperatorView::from(&record)}),
        )?);
        self.commit(ctx, "operator.roles", mutations).await?;
        Ok(record)
    }

    fn seal_operator(&self, mut o: OperatorRecord) -> Result<OperatorRecord, ApiError> {
        o.mac = self.keystore.record_mac(&binding(&self.vault_id, &o))?;
        Ok(o)
    }

    pub(crate) async fn create_operator(
        &self,
        ctx: &RequestCtx,
        name: &str,
        roles: &[String],
        domain: Option<&str>,
    ) -> Result<Gated<EnrolView>, ApiError> {
        allow(ctx, &Operation::CreateOperator)?;
        // Validate now, so a request that could never run is not filed.
        let parsed: OperatorName = name.parse()?;
        let role_list: Vec<Role> = roles.iter().map(|r| r.parse()).collect::<Result<_, _>>()?;
        Roles::new(&role_list)?;
        if self.store.operator_by_name(&parsed)?.is_some() {
            return Err(ApiError::conflict(
                "conflict",
                "an operator with this name already exists",
            ));
        }
        let scope = self.operator_scope(domain)?;
        Self::manages(ctx, scope)?;
        let params = crate::requests::strip_nulls(serde_json::json!({
            "name": parsed.as_str(),
            "roles": role_list.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "domain": domain,
        }));
        if let Some(p) = self
            .gate(ctx, GatedOp::AddOperator, params, scope, None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        let (record, secrets) = self.prepare_operator(ctx, name, roles, domain)?;
        self.commit(
            ctx,
            "operator.create",
            vec![Mutation::CreateOperator(record.clone())],
        )
        .await
        .map_err(duplicate_name)?;
        Ok(Gated::Done(EnrolView {
            operator: OperatorView::from(&record),
            password: secrets.password.as_str().to_owned(),
            otpauth_uri: secrets.otpauth_uri.as_str().to_owned(),
        }))
    }

    /// Runs an approved `operator.add`: the enrolment secrets are sealed into the request's
    /// result, for its requester's eyes only (`request show`).
    pub(crate) async fn create_operator_for_request(
        &self,
        ctx: &RequestCtx,
        rec: &strongroom_core::record::PendingRecord,
        name: &str,
        roles: &[String],
        domain: Option<&str>,
    ) -> Result<(), ApiError> {
        let (record, secrets) = self.prepare_operator(ctx, name, roles, domain)?;
        let private = serde_json::json!({
            "password": secrets.password.as_str(),
            "otpauth_uri": secrets.otpauth_uri.as_str(),
        });
        let private = zeroize::Zeroizing::new(private.to_string());
        let sealed = self
            .keystore
            .seal_request_result(rec.id, private.as_bytes())?;
        let result = serde_json::json!({
            "operator": OperatorView::from(&record),
            "enrolment_sealed": hex::encode(sealed),
        });
        let finish = self.decide(
            rec,
            strongroom_core::record::RequestStatus::Executed,
            Some(result),
            ctx.time,
        )?;
        self.commit(
            ctx,
            "operator.create",
            vec![Mutation::CreateOperator(record), finish],
        )
        .await
        .map_err(duplicate_name)
    }

    fn operator_scope(
        &self,
        domain: Option<&str>,
    ) -> Result<Option<strongroom_core::DomainId>, ApiError> {
        match domain {
            None => Ok(None),
            Some(d) => Ok(Some(
                self.store
                    .domain_by_name(&d.parse().map_err(|_| ApiError::NotFound)?)?
                    .ok_or(ApiError::NotFound)?
                    .id,
            )),
        }
    }

    fn prepare_operator(
        &self,
        ctx: &RequestCtx,
        name: &str,
        roles: &[String],
        domain: Option<&str>,
    ) -> Result<(OperatorRecord, Enrolment), ApiError> {
        let name: OperatorName = name.parse()?;
        let roles: Vec<Role> = roles.iter().map(|r| r.parse()).collect::<Result<_, _>>()?;
        let roles = Roles::new(&roles)?;
        let domain = self.operator_scope(domain)?;
        let mut id = [0u8; 16];
        self.entropy
            .fill(&mut id)
            .map_err(|_| ApiError::EntropyFailed)?;
        let id = OperatorId::from_random(id);
        let password = strongroom_crypto::generate_password(self.entropy.as_ref())?;
        let totp = TotpSecret::generate(OtpAlgorithm::Sha1, self.entropy.as_ref())?;
        let record = self.seal_operator(OperatorRecord {
            id,
            name: name.clone(),
            roles,
            domain,
            password_hash: strongroom_crypto::hash_password(&password, self.entropy.as_ref())?,
            must_change_password: true,
            totp_sealed: self.keystore.seal_totp(id, &totp)?,
            totp_last_step: None,
            failed_logins: 0,
            locked_until: None,
            approval_key: None,
            created_at: ctx.time,
            disabled_at: None,
            mac: [0; 32],
        })?;
        let otpauth_uri = totp.otpauth_uri(ISSUER, name.as_str())?;
        Ok((
            record,
            Enrolment {
                password,
                otpauth_uri,
            },
        ))
    }

    /// Once two security officers have logged in, the bootstrap token has done its job:
    /// revoke it (audited as `bootstrap.revoke`). Checked again at every security-officer
    /// login, so a failed attempt is retried.
    async fn retire_bootstrap(&self, ctx: &RequestCtx) -> Result<(), ApiError> {
        let officers = self
            .store
            .operators()?
            .iter()
            .filter(|o| {
                o.roles.has(Role::SecurityOfficer)
                    && !o.must_change_password
                    && o.disabled_at.is_none()
            })
            .count();
        if officers < 2 {
            return Ok(());
        }
        let mut revocations = vec![];
        let mut ids = vec![];
        for t in self.store.tokens()? {
            if t.kind == TokenKind::Bootstrap && t.revoked_at.is_none() {
                let revoked = strongroom_core::record::TokenRecord {
                    revoked_at: Some(ctx.time),
                    ..t
                };
                let mac = self
                    .keystore
                    .record_mac(&token::binding(&self.vault_id, &revoked))?;
                ids.push(revoked.id);
                revocations.push(Mutation::RevokeToken {
                    id: revoked.id,
                    at: ctx.time,
                    mac,
                });
            }
        }
        if revocations.is_empty() {
            return Ok(());
        }
        // The login itself is already recorded; this is a second, separate record.
        let event = ctx.event("bootstrap.revoke", Outcome::Granted, None);
        match self.writer.submit(revocations, event).await {
            Ok(()) => {
                for id in ids {
                    self.tokens.forget(id);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    ?e,
                    "could not revoke the bootstrap token; will retry at the next login"
                );
                Ok(())
            }
        }
    }

    /// Registers the calling operator's approval key (once; a new key needs a new operator
    /// for now, so a stolen session cannot swap it).
    pub(crate) async fn register_approval_key(
        &self,
        ctx: &RequestCtx,
        public_key: &[u8],
    ) -> Result<OperatorView, ApiError> {
        allow(ctx, &Operation::RegisterApprovalKey)?;
        let Principal::Operator { id, .. } = ctx.principal else {
            return Err(ApiError::Forbidden);
        };
        let key: [u8; 32] = public_key.try_into().map_err(|_| {
            ApiError::bad(
                "invalid_public_key",
                "an approval key is a 32-byte Ed25519 public key",
            )
        })?;
        // Reject keys that could never verify (small order, not on the curve).
        if strongroom_crypto::approval_key_is_unusable(&key) {
            return Err(ApiError::bad(
                "invalid_public_key",
                "not a usable Ed25519 public key",
            ));
        }
        let op = self.store.operator(id)?.ok_or(ApiError::InvalidToken)?;
        if op.approval_key.is_some() {
            return Err(ApiError::conflict(
                "approval_key_registered",
                "an approval key is already registered",
            ));
        }
        let expected_mac = op.mac;
        let record = self.seal_operator(OperatorRecord {
            approval_key: Some(key),
            ..op
        })?;
        self.commit(
            ctx,
            "operator.register_key",
            vec![Mutation::UpdateOperator {
                expected_mac,
                record: record.clone(),
            }],
        )
        .await?;
        Ok(OperatorView::from(&record))
    }

    pub(crate) fn list_operators(&self, ctx: &RequestCtx) -> Result<Vec<OperatorView>, ApiError> {
        allow(ctx, &Operation::ListOperators)?;
        Ok(self
            .store
            .operators()?
            .iter()
            .map(OperatorView::from)
            .collect())
    }

    /// A stored operator whose MAC verifies (a forged or edited row is treated as absent).
    fn genuine_operator(&self, name: &str) -> Result<Option<OperatorRecord>, ApiError> {
        let Ok(name) = name.parse::<OperatorName>() else {
            return Ok(None);
        };
        let Some(op) = self.store.operator_by_name(&name)? else {
            return Ok(None);
        };
        if self
            .keystore
            .verify_record_mac(&binding(&self.vault_id, &op), &op.mac)?
        {
            Ok(Some(op))
        } else {
            tracing::warn!(operator = %op.id, "operator row failed its MAC check (forged or edited row)");
            Ok(None)
        }
    }

    pub(crate) async fn disable_operator(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<OperatorView, ApiError> {
        allow(ctx, &Operation::DisableOperator)?;
        let op = self.genuine_operator(name)?.ok_or(ApiError::NotFound)?;
        if op.disabled_at.is_some() {
            return Err(ApiError::conflict(
                "already_disabled",
                "the operator is already disabled",
            ));
        }
        Self::manages(ctx, op.domain)?;
        let after = OperatorRecord {
            disabled_at: Some(ctx.time),
            ..op.clone()
        };
        self.keeps_an_administrator(&op, &after)?;
        let expected_mac = op.mac;
        let record = self.seal_operator(after)?;
        self.commit(
            ctx,
            "operator.disable",
            vec![Mutation::UpdateOperator {
                expected_mac,
                record: record.clone(),
            }],
        )
        .await?;
        Ok(OperatorView::from(&record))
    }

    pub(crate) async fn login(
        &self,
        ctx: &RequestCtx,
        c: &Credentials<'_>,
    ) -> Result<SessionView, ApiError> {
        allow(ctx, &Operation::Login)?;
        let Some(op) = self.genuine_operator(c.name)? else {
            // Same answer, and about the same time, as a wrong password.
            let _ = strongroom_crypto::verify_password(c.password, dummy_hash(self));
            return Err(ApiError::LoginFailed("wrong_password"));
        };
        if op.locked_until.is_some_and(|t| ctx.time < t) {
            return Err(ApiError::LockedOut);
        }
        let password_ok = strongroom_crypto::verify_password(c.password, &op.password_hash);
        let totp = self.keystore.open_totp(op.id, &op.totp_sealed)?;
        let now_secs = ctx.wall.0 / 1000;
        let step = totp.verify(c.totp, now_secs, op.totp_last_step);
        let failure = match (password_ok, step) {
            (false, _) => Some("wrong_password"),
            (true, Err(OtpRejection::Replayed)) => Some("replayed_totp"),
            (true, Err(_)) => Some("wrong_totp"),
            (true, Ok(_)) => None,
        };
        let expected_mac = op.mac;
        if let Some(code) = failure {
            let failed_logins = op.failed_logins.saturating_add(1);
            let lock = failed_logins >= MAX_FAILURES;
            let record = self.seal_operator(OperatorRecord {
                failed_logins,
                locked_until: lock.then(|| ctx.time.saturating_add(lockout_for(failed_logins))),
                ..op
            })?;
            let (operation, outcome_code) = if lock {
                ("operator.lockout", "locked_out")
            } else {
                ("operator.login", code)
            };
            self.commit_as(
                ctx,
                operation,
                vec![Mutation::UpdateOperator {
                    expected_mac,
                    record,
                }],
                Outcome::Denied,
                Some(outcome_code),
            )
            .await?;
            return Err(if lock {
                ApiError::LockedOut
            } else {
                ApiError::LoginFailed(code)
            });
        }
        let step = step.ok();
        if op.disabled_at.is_some() {
            return Err(ApiError::Forbidden);
        }
        let mut updated = OperatorRecord {
            failed_logins: 0,
            locked_until: None,
            totp_last_step: step,
            ..op.clone()
        };
        if op.must_change_password {
            let Some(new) = c.new_password else {
                // The code is spent all the same, so it cannot be replayed.
                let record = self.seal_operator(updated)?;
                self.commit_as(
                    ctx,
                    "operator.login",
                    vec![Mutation::UpdateOperator {
                        expected_mac,
                        record,
                    }],
                    Outcome::Denied,
                    Some("password_change_required"),
                )
                .await?;
                return Err(ApiError::PasswordChangeRequired);
            };
            if new.chars().count() < MIN_PASSWORD || new == c.password {
                return Err(ApiError::bad(
                    "weak_password",
                    "the new password needs at least 12 characters and must differ from the old one",
                ));
            }
            updated.password_hash = strongroom_crypto::hash_password(new, self.entropy.as_ref())?;
            updated.must_change_password = false;
        }
        let record = self.seal_operator(updated)?;
        let expires_at = ctx.time.saturating_add(SESSION);
        let mut session = token::issue(
            self.entropy.as_ref(),
            TokenKind::Session(op.id),
            ctx.time,
            Some(expires_at),
        )?;
        session.record.mac = self
            .keystore
            .record_mac(&token::binding(&self.vault_id, &session.record))?;
        self.commit(
            ctx,
            "operator.login",
            vec![
                Mutation::UpdateOperator {
                    expected_mac,
                    record: record.clone(),
                },
                Mutation::CreateToken(session.record),
            ],
        )
        .await
        .map_err(|e| match e {
            // The row changed since it was read: a concurrent login used this code first.
            ApiError::Conflict { .. } => ApiError::LoginFailed("replayed_totp"),
            other => other,
        })?;
        if record.roles.has(Role::SecurityOfficer) {
            self.retire_bootstrap(ctx).await?;
        }
        Ok(SessionView {
            token: session.value.as_str().to_owned(),
            expires_at: rfc3339(expires_at),
            operator: record.name.to_string(),
            roles: record
                .roles
                .to_vec()
                .into_iter()
                .map(Role::as_str)
                .collect(),
        })
    }
}

/// A real Argon2id hash of a random password, computed once and verified against when the
/// name is unknown, so that an unknown name costs what a wrong password costs.
fn dummy_hash(vault: &Vault) -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        strongroom_crypto::generate_password(vault.entropy.as_ref())
            .and_then(|p| strongroom_crypto::hash_password(&p, vault.entropy.as_ref()))
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_and_caps() {
        assert_eq!(lockout_for(5), Duration::from_secs(60));
        assert_eq!(lockout_for(6), Duration::from_secs(120));
        assert_eq!(lockout_for(8), Duration::from_secs(480));
        assert_eq!(lockout_for(40), MAX_LOCKOUT);
    }
}
