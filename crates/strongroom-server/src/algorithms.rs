//! Crypto agility: which algorithms a domain allows, deprecates (no new keys; signatures
//! audited with a warning) or disables (no signatures), changed by a `domain.algorithms`
//! request under its quorum rule. The keystore enforces the policy itself, on every key it
//! makes and every signature; this module files and applies changes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use strongroom_core::quorum::GatedOp;
use strongroom_core::storage::Mutation;
use strongroom_core::{Algorithm, AlgorithmPolicy, AlgorithmState, DomainId, Operation};

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{DomainView, RequestCtx, Vault, allow, live_domain};

impl Vault {
    /// Files (or, without a quorum rule, runs) a change of `name`'s algorithm policy:
    /// `set` maps algorithm names to `allowed`, `deprecated` or `disabled`; others keep theirs.
    pub(crate) async fn set_domain_algorithms(
        &self,
        ctx: &RequestCtx,
        name: &str,
        set: &BTreeMap<String, String>,
    ) -> Result<Gated<DomainView>, ApiError> {
        let d = self.domain_named(name)?;
        allow(ctx, &Operation::SetPolicy(d.id))?;
        ctx.tag(|t| t.domain = Some(d.id));
        live_domain(&d)?;
        if set.is_empty() {
            return Err(ApiError::bad(
                "invalid_parameters",
                "name at least one algorithm and its state",
            ));
        }
        let mut to = d.algorithms.clone();
        for (a, s) in set {
            let a: Algorithm = a.parse().map_err(|_| {
                ApiError::bad("invalid_parameters", format!("unknown algorithm {a:?}"))
            })?;
            let s: AlgorithmState = s.parse().map_err(|_| {
                ApiError::bad(
                    "invalid_parameters",
                    format!("{s:?}: allowed, deprecated or disabled"),
                )
            })?;
            to = to.with(a, s);
        }
        if to == d.algorithms {
            return Err(ApiError::conflict(
                "no_change",
                "the domain's algorithms already are as asked",
            ));
        }
        let params = json!({
            "domain": d.name.as_str(),
            "domain_id": d.id.to_string(),
            "from": d.algorithms.to_stored(),
            "to": to.to_stored(),
        });
        if let Some(p) = self
            .gate(
                ctx,
                GatedOp::SetAlgorithms,
                params.clone(),
                Some(d.id),
                None,
            )
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.set_domain_algorithms_prepared(ctx, &params, |_| Ok(None))
                .await?,
        ))
    }

    /// Applies an approved (or ungated) change, only if the domain's policy is still the one
    /// it was decided from; `finish` closes its request in the same transaction.
    pub(crate) async fn set_domain_algorithms_prepared(
        &self,
        ctx: &RequestCtx,
        p: &Value,
        finish: impl FnOnce(Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<DomainView, ApiError> {
        let stored = |field: &str| {
            p.get(field)
                .and_then(Value::as_str)
                .and_then(|s| AlgorithmPolicy::from_stored(s).ok())
                .ok_or(ApiError::Internal)
        };
        let id: DomainId = p
            .get("domain_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or(ApiError::Internal)?;
        let (from, to) = (stored("from")?, stored("to")?);
        let d = self.store.domain(id)?.ok_or(ApiError::NotFound)?;
        ctx.tag(|t| t.domain = Some(d.id));
        live_domain(&d)?;
        if d.algorithms != from {
            return Err(ApiError::conflict(
                "domain_algorithms_changed",
                "the domain's algorithms changed since this was decided: file it again",
            ));
        }
        let changed = strongroom_core::record::DomainRecord {
            algorithms: to.clone(),
            ..d
        };
        let view = DomainView::from(&changed);
        let mut mutations = vec![Mutation::SetDomainAlgorithms { id, from, to }];
        mutations.extend(finish(
            serde_json::to_value(&view).map_err(|_| ApiError::Internal)?,
        )?);
        self.commit(ctx, "domain.algorithms", mutations).await?;
        // Cached key records carry their domain: every later use reads the new policy.
        self.keys.clear();
        Ok(view)
    }
}

/// The change as approvers read it.
pub(crate) fn describe(p: &Value) -> String {
    let show = |field: &str| {
        let s = p.get(field).and_then(Value::as_str).unwrap_or("");
        match AlgorithmPolicy::from_stored(s) {
            Ok(pol) => {
                let restricted: Vec<String> = pol
                    .all()
                    .into_iter()
                    .filter(|(_, st)| *st != AlgorithmState::Allowed)
                    .map(|(a, st)| format!("{a} {}", st.as_str()))
                    .collect();
                if restricted.is_empty() {
                    "every algorithm allowed".to_owned()
                } else {
                    restricted.join(", ")
                }
            }
            Err(_) => format!("unreadable ({s:?})"),
        }
    };
    format!(
        "change the algorithms of domain \"{}\" from [{}] to [{}]: a deprecated algorithm makes no new keys (its keys still sign, with a warning in the audit log); a disabled one neither makes keys nor signs",
        p.get("domain").and_then(Value::as_str).unwrap_or("?"),
        show("from"),
        show("to"),
    )
}
