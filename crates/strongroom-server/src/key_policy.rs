//! Policies of plain keys: which application tokens may sign with a key, and how many
//! signatures it may make per hour and per day (`strongroom_policy::KeyPolicy`).
//!
//! Set like a wallet's policy (a `policy.set` request, quorum rules apply), stored in the same
//! sealed `policies` row. The token list is checked before anything is signed or filed; the
//! rates are counted in storage with the signature's audit record (as wallets' daily limits
//! are), so they hold across nodes, and a signature over the rate is never released.

use serde::Serialize;
use serde_json::{Value, json};
use strongroom_core::quorum::GatedOp;
use strongroom_core::record::{KeyRecord, PolicyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::{Algorithm, Operation, Principal, UnixMillis};
use strongroom_policy::KeyPolicy;

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault, rfc3339};

/// The spend "asset" that counts a key's signatures.
const SIGNATURES: &str = "signatures";

/// A key's policy as shown.
#[derive(Serialize)]
pub struct KeyPolicyView {
    key: String,
    /// 0: none set (any application token of the key's domain, no rate limit).
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_at: Option<String>,
    policy: Value,
}

impl Vault {
    /// A plain key's policy, if one is set.
    fn key_policy(&self, k: &KeyRecord) -> Result<Option<(KeyPolicy, PolicyRecord)>, ApiError> {
        let Some(rec) = self.store.policy(k.id)? else {
            return Ok(None);
        };
        let p = KeyPolicy::parse(&rec.policy).map_err(|e| {
            tracing::error!(key = %k.id, error = %e, "a stored key policy does not parse");
            ApiError::StoredDataCorrupt
        })?;
        Ok(Some((p, rec)))
    }

    /// The checks of a plain key's policy before it signs for `ctx`'s principal: refused if
    /// the principal is not one of its tokens; otherwise the rate mutations to commit with the
    /// signature (none without a policy or rates).
    pub(crate) fn key_policy_admits(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
    ) -> Result<Vec<Mutation>, ApiError> {
        if k.algorithm == Algorithm::Bip32Seed {
            return Ok(Vec::new());
        }
        let Some((policy, _)) = self.key_policy(k)? else {
            return Ok(Vec::new());
        };
        let token = match &ctx.principal {
            Principal::Application { token, .. } => Some(token),
            _ => None,
        };
        if !policy.allows(token) {
            return Err(ApiError::NotAllowed("key_policy_denied"));
        }
        Ok(rate_mutations(k, &policy, ctx.time))
    }

    /// The rate mutations of an approved warm signature (the requester's token was checked
    /// when the request was filed).
    pub(crate) fn key_rate_mutations(
        &self,
        k: &KeyRecord,
        at: UnixMillis,
    ) -> Result<Vec<Mutation>, ApiError> {
        Ok(match self.key_policy(k)? {
            Some((policy, _)) => rate_mutations(k, &policy, at),
            None => Vec::new(),
        })
    }

    /// The plain key `id` for a policy operation.
    fn policy_key(
        &self,
        ctx: &RequestCtx,
        id: &str,
        op: fn(strongroom_core::DomainId) -> Operation,
    ) -> Result<std::sync::Arc<(KeyRecord, strongroom_core::record::DomainRecord)>, ApiError> {
        let found = self.key_for(ctx, id, op)?;
        if found.0.algorithm == Algorithm::Bip32Seed {
            return Err(ApiError::bad(
                "wallet_policy",
                "this key is a wallet: its policy is set with `policy set --wallet`",
            ));
        }
        Ok(found)
    }

    pub(crate) fn show_key_policy(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<KeyPolicyView, ApiError> {
        let found = self.policy_key(ctx, id, Operation::ReadKeys)?;
        let k = &found.0;
        Ok(match self.key_policy(k)? {
            Some((p, rec)) => KeyPolicyView {
                key: k.id.to_string(),
                version: rec.version,
                set_at: Some(rfc3339(rec.set_at)),
                policy: p.document().clone(),
            },
            None => KeyPolicyView {
                key: k.id.to_string(),
                version: 0,
                set_at: None,
                policy: json!({"version": 1}),
            },
        })
    }

    /// Files (or, in dev mode, runs) a `policy.set` request for plain key `id`; the document
    /// is validated first.
    pub(crate) async fn set_key_policy(
        &self,
        ctx: &RequestCtx,
        id: &str,
        document: Value,
    ) -> Result<Gated<KeyPolicyView>, ApiError> {
        let found = self.policy_key(ctx, id, Operation::SetPolicy)?;
        let (k, d) = (&found.0, &found.1);
        KeyPolicy::parse(&document.to_string())
            .map_err(|e| ApiError::bad("invalid_policy", e.to_string()))?;
        let from_version = self.store.policy(k.id)?.map_or(0, |r| r.version);
        let params = crate::requests::strip_nulls(json!({
            "key": k.id.to_string(),
            "algorithm": k.algorithm.as_str(),
            "label": k.label,
            "domain": d.name.as_str(),
            "from_version": from_version,
            "key_policy": document,
        }));
        if let Some(p) = self
            .gate(
                ctx,
                GatedOp::SetPolicy,
                params.clone(),
                Some(d.id),
                Some(k.id),
            )
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        self.set_key_policy_prepared(ctx, &params, |_| Ok(None))
            .await?;
        Ok(Gated::Done(self.show_key_policy(ctx, id)?))
    }

    /// Stores the key policy in `params` over the version it was filed against (an approved
    /// request comes here too), committing `finish`'s mutation with it.
    pub(crate) async fn set_key_policy_prepared(
        &self,
        ctx: &RequestCtx,
        params: &Value,
        finish: impl FnOnce(Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<(), ApiError> {
        let key: strongroom_core::KeyId = params["key"]
            .as_str()
            .and_then(|w| w.parse().ok())
            .ok_or(ApiError::Internal)?;
        let from_version = params["from_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(ApiError::Internal)?;
        let found = self
            .keys
            .get(self.store.as_ref(), key)?
            .ok_or(ApiError::NotFound)?;
        let (k, d) = (&found.0, &found.1);
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
        });
        if self.store.policy(k.id)?.map_or(0, |r| r.version) != from_version {
            return Err(ApiError::conflict(
                "policy_changed",
                "the key's policy changed since this request was filed",
            ));
        }
        let text = params["key_policy"].to_string();
        KeyPolicy::parse(&text).map_err(|e| ApiError::bad("invalid_policy", e.to_string()))?;
        let version = from_version + 1;
        let mut mutations = vec![Mutation::SetPolicy(PolicyRecord {
            wallet: k.id,
            version,
            policy: text,
            set_at: ctx.time,
        })];
        mutations.extend(finish(
            json!({"key": k.id.to_string(), "version": version}),
        )?);
        ctx.tag(|t| {
            t.detail = Some(
                json!({"key": k.id.to_string(), "version": version,
                       "policy": params["key_policy"]})
                .to_string(),
            );
        });
        self.commit(ctx, "key.policy_set", mutations).await
    }
}

/// One signature counted against each rate: recorded once (in the first window's mutation),
/// checked in every window.
fn rate_mutations(k: &KeyRecord, policy: &KeyPolicy, at: UnixMillis) -> Vec<Mutation> {
    let mut one = [0u8; 32];
    one[31] = 1;
    policy
        .limits()
        .into_iter()
        .enumerate()
        .map(|(n, (window, max))| {
            let mut limit = [0u8; 32];
            limit[24..].copy_from_slice(&max.to_be_bytes());
            Mutation::RecordSpend {
                wallet: k.id,
                asset: SIGNATURES.to_owned(),
                amount: if n == 0 { one } else { [0; 32] },
                at,
                since: UnixMillis(at.0.saturating_sub(window)),
                limit: Some(limit),
            }
        })
        .collect()
}

/// A refused rate: what the client sees.
pub(crate) fn rate_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict { .. } => ApiError::NotAllowed("key_rate_exceeded"),
        other => other,
    }
}
