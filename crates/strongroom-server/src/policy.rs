//! Wallet policies over the API: set (a `policy.set` request), show, and a dry run that names
//! the deciding rule; and the decision every Ethereum signature passes through.
//!
//! The rules are `strongroom-policy`'s; this module loads a wallet's policy (none: deny all;
//! dev mode without one: allow all, and says so), maps a decoded intent into the policy's
//! terms, and turns a decision into what happens: refuse, file a request for the rule's
//! approvals, or sign and count the spend against the rule's rolling limit in the same
//! transaction as the audit record.

use alloy_primitives::U256;
use serde::Serialize;
use serde_json::{Value, json};
use strongroom_chains::ethereum::{EthCall, EthIntent};
use strongroom_core::quorum::GatedOp;
use strongroom_core::record::{KeyRecord, PolicyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::{Operation, UnixMillis};
use strongroom_policy::{Decision, Intent, Policy};

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault, rfc3339};

/// Parsed policies, kept by wallet with the stored text they came from: the row is read on
/// every decision (another node may have changed it), the JSON parsed only when it changed.
#[derive(Default)]
pub(crate) struct PolicyCache(
    std::sync::Mutex<
        std::collections::HashMap<strongroom_core::KeyId, (String, std::sync::Arc<Policy>)>,
    >,
);

/// The rolling window of daily limits.
pub(crate) const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Where a wallet's policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Set by `policy set` (this version).
    Set(u32),
    /// None set: production wallets refuse everything.
    None,
    /// None set, in dev mode: everything is allowed.
    DevDefault,
}

impl Source {
    fn describe(self) -> String {
        match self {
            Source::Set(v) => format!("version {v}"),
            Source::None => "none: every transaction is refused until a policy is set".into(),
            Source::DevDefault => "dev mode default: everything is allowed".into(),
        }
    }
}

/// A wallet's policy as shown.
#[derive(Serialize)]
pub struct PolicyView {
    wallet: String,
    version: u32,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_at: Option<String>,
    policy: Value,
    /// List entries still in their cooling-off period.
    cooling: Vec<Value>,
}

/// What a dry run found.
#[derive(Serialize)]
pub struct PolicyTestView {
    wallet: String,
    decision: Decision,
    intent: Value,
    /// Spent of the asset in the last 24 hours (base units), where the rule has a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    spent_24h: Option<String>,
}

/// The policy's terms for an Ethereum intent. Value sent along with a token call makes it a
/// plain contract call, which only a `contract` rule can allow.
pub(crate) fn eth_policy_intent(i: &EthIntent) -> Intent {
    let lower = |a: &alloy_primitives::Address| format!("{a:#x}");
    let to = i.to.as_ref().map(lower);
    let token = |call: &str, dest: &alloy_primitives::Address, amount: U256| Intent {
        call: call.into(),
        destination: Some(lower(dest)),
        contract: to.clone(),
        selector: None,
        asset: to.clone().unwrap_or_default(),
        amount,
        fee: i.max_fee,
    };
    let contract = |selector: Option<String>| Intent {
        call: "contract".into(),
        destination: to.clone(),
        contract: to.clone(),
        selector,
        asset: "native".into(),
        amount: i.value,
        fee: i.max_fee,
    };
    let selector_of = |s: &[u8; 4]| Some(format!("0x{}", hex::encode(s)));
    match &i.call {
        EthCall::None => Intent {
            call: "transfer".into(),
            destination: to.clone(),
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: i.value,
            fee: i.max_fee,
        },
        // Value sent with a token call: a contract call (keeping its selector, so rules keyed
        // on it still see it).
        EthCall::Erc20Transfer { .. } if !i.value.is_zero() => {
            contract(selector_of(&strongroom_chains::ethereum::ERC20_TRANSFER))
        }
        EthCall::Erc20Approve { .. } if !i.value.is_zero() => {
            contract(selector_of(&strongroom_chains::ethereum::ERC20_APPROVE))
        }
        EthCall::Erc20TransferFrom { .. } if !i.value.is_zero() => contract(selector_of(
            &strongroom_chains::ethereum::ERC20_TRANSFER_FROM,
        )),
        EthCall::Erc20Transfer { to: dest, amount } => {
            let mut t = token("erc20.transfer", dest, *amount);
            t.selector = selector_of(&strongroom_chains::ethereum::ERC20_TRANSFER);
            t
        }
        EthCall::Erc20Approve { spender, amount } => {
            let mut t = token("erc20.approve", spender, *amount);
            t.selector = selector_of(&strongroom_chains::ethereum::ERC20_APPROVE);
            t
        }
        EthCall::Erc20TransferFrom {
            to: dest, amount, ..
        } => {
            let mut t = token("erc20.transferFrom", dest, *amount);
            t.selector = selector_of(&strongroom_chains::ethereum::ERC20_TRANSFER_FROM);
            t
        }
        EthCall::Deploy { .. } => Intent {
            call: "deploy".into(),
            destination: None,
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: i.value,
            fee: i.max_fee,
        },
        EthCall::Unknown { selector, .. } => contract(selector.as_ref().and_then(selector_of)),
    }
}

/// The spends a signature records: always counted (so that a limit set later sees them), and
/// the allowing rule's asset checked against `limit`. Fees are native spends: with a native
/// transfer they count against its limit; with a token call they are counted on their own.
pub(crate) fn spends(
    wallet: &KeyRecord,
    intent: &Intent,
    at: UnixMillis,
    limit: Option<&str>,
) -> Result<Vec<Mutation>, ApiError> {
    let limit = limit
        .map(|l| {
            U256::from_str_radix(l, 10)
                .map(|l| l.to_be_bytes::<32>())
                .map_err(|_| ApiError::Internal)
        })
        .transpose()?;
    let since = UnixMillis(at.0.saturating_sub(DAY_MS));
    let record = |asset: &str, amount: U256, limit: Option<[u8; 32]>| Mutation::RecordSpend {
        wallet: wallet.id,
        asset: asset.to_owned(),
        amount: amount.to_be_bytes::<32>(),
        at,
        since,
        limit,
    };
    let mut out = Vec::new();
    if intent.asset == "native" {
        let total = intent.amount.saturating_add(intent.fee);
        if !total.is_zero() || limit.is_some() {
            out.push(record("native", total, limit));
        }
    } else {
        if !intent.amount.is_zero() || limit.is_some() {
            out.push(record(&intent.asset, intent.amount, limit));
        }
        if !intent.fee.is_zero() {
            out.push(record("native", intent.fee, None));
        }
    }
    Ok(out)
}

/// Refuses a policy that names an address of another chain or network than the wallet's (a
/// testnet address in a mainnet wallet's deny list would never match).
fn addresses_fit(k: &KeyRecord, policy: &Policy) -> Result<(), ApiError> {
    let w = strongroom_core::wallet::WalletPublic::decode(&k.public_key)?;
    match policy
        .addresses()
        .into_iter()
        .find(|a| !strongroom_chains::policy_address_fits(w.spec, a))
    {
        Some(a) => Err(ApiError::bad(
            "invalid_policy",
            format!(
                "{a} is not an address of this wallet's chain and network ({})",
                w.spec.chain().as_str()
            ),
        )),
        None => Ok(()),
    }
}

/// The spends of one transaction with several intents (Bitcoin destinations, Antelope
/// actions): per asset, the whole outflow (the native coin's with the fee, counted once)
/// against the strictest daily limit among the rules that allowed any of its intents. Judged
/// as one, the result does not depend on the order of the intents.
pub(crate) fn grouped_spends(
    wallet: strongroom_core::KeyId,
    intents: &[Intent],
    decisions: &[Decision],
    at: UnixMillis,
) -> Result<Vec<Mutation>, ApiError> {
    let mut totals: std::collections::BTreeMap<&str, (U256, Option<U256>)> =
        std::collections::BTreeMap::new();
    for (i, d) in intents.iter().zip(decisions) {
        let entry = totals.entry(i.asset.as_str()).or_insert((U256::ZERO, None));
        entry.0 = entry.0.saturating_add(i.amount);
        if let Decision::Allow {
            daily_limit: Some(l),
            ..
        } = d
        {
            let l = U256::from_str_radix(l, 10).map_err(|_| ApiError::Internal)?;
            entry.1 = Some(entry.1.map_or(l, |m| m.min(l)));
        }
    }
    // Every intent of a transaction carries the same (whole) fee.
    let fee = intents.iter().map(|i| i.fee).max().unwrap_or(U256::ZERO);
    if !fee.is_zero() {
        let native = totals.entry("native").or_insert((U256::ZERO, None));
        native.0 = native.0.saturating_add(fee);
    }
    let since = UnixMillis(at.0.saturating_sub(DAY_MS));
    Ok(totals
        .into_iter()
        .filter(|(_, (total, limit))| !total.is_zero() || limit.is_some())
        .map(|(asset, (total, limit))| Mutation::RecordSpend {
            wallet,
            asset: asset.to_owned(),
            amount: total.to_be_bytes::<32>(),
            at,
            since,
            limit: limit.map(|l| l.to_be_bytes::<32>()),
        })
        .collect())
}

/// What the gate in front of a wallet signature decided.
pub(crate) enum WalletGate {
    /// Sign now, with the wallet record as it is (an idle hot wallet may have demoted itself).
    Sign(KeyRecord),
    /// A `key.sign` request was filed.
    Filed(Box<crate::requests::PendingView>),
}

impl Vault {
    /// The gate every wallet signature passes once its policy has decided: a denial refuses;
    /// an idle hot wallet demotes itself first; a cold wallet refuses; a warm one, or a rule
    /// that asks for approvals, files a `key.sign` request whose parameters are the wallet's
    /// (key, label, domain, deciding rule) and `extra` (what the approvers approve).
    pub(crate) async fn wallet_gate(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        d: &strongroom_core::record::DomainRecord,
        decision: &Decision,
        extra: Value,
    ) -> Result<WalletGate, ApiError> {
        use strongroom_core::temperature::{self, Change};
        let min_approvals = match decision {
            Decision::Deny { .. } => return Err(ApiError::NotAllowed("policy_denied")),
            Decision::Quorum { approvals, .. } => Some(*approvals),
            Decision::Allow { .. } => None,
        };
        let k = self
            .demote_if_idle(k, ctx.time)
            .await?
            .unwrap_or_else(|| k.clone());
        let needs_quorum = match temperature::signing(k.temperature) {
            Change::Now => min_approvals.is_some(),
            Change::NeedsQuorum => true,
            _ => {
                return Err(ApiError::conflict(
                    "key_cold",
                    "the wallet is cold: make it warmer (with a quorum) before it can sign",
                ));
            }
        };
        if !needs_quorum {
            return Ok(WalletGate::Sign(k));
        }
        let mut params = json!({
            "key": k.id.to_string(),
            "wallet": k.id.to_string(),
            "label": k.label,
            "domain": d.name.as_str(),
            "rule": decision.rule(),
        });
        if let (Some(p), Value::Object(e)) = (params.as_object_mut(), extra) {
            p.extend(e);
        }
        match self
            .gate_min(
                ctx,
                GatedOp::SignWarm,
                crate::requests::strip_nulls(params),
                Some(d.id),
                Some(k.id),
                min_approvals.unwrap_or(0),
            )
            .await?
        {
            Some(p) => Ok(WalletGate::Filed(p)),
            // Dev mode, or no rule asks for approvals: run at once.
            None => Ok(WalletGate::Sign(k)),
        }
    }

    /// Commits a signature's `spends` with the request's audit record, so that a signature
    /// whose spend does not fit its rolling limit is never released; a hot wallet whose limit
    /// is exhausted demotes itself to warm (from then on a person approves each signature, and
    /// the limit still holds). Then marks the wallet used, for idle demotion.
    pub(crate) async fn commit_spends(
        &self,
        ctx: &RequestCtx,
        operation: &'static str,
        k: &KeyRecord,
        spends: Vec<Mutation>,
    ) -> Result<(), ApiError> {
        if !spends.is_empty() {
            let committed = self
                .commit(ctx, operation, spends)
                .await
                .map_err(crate::eth::limit_error);
            if let Err(ApiError::NotAllowed("daily_limit_exceeded")) = &committed {
                self.demote_exhausted(k).await?;
            }
            committed?;
        }
        if k.hot_idle_secs.is_some() {
            self.last_use.touch(k.id, ctx.time);
        }
        Ok(())
    }

    /// A wallet's policy and where it came from.
    pub(crate) fn wallet_policy(
        &self,
        k: &KeyRecord,
    ) -> Result<(std::sync::Arc<Policy>, Source), ApiError> {
        let Some(rec) = self.store.policy(k.id)? else {
            let p = if self.dev {
                (Policy::dev_allow_all(), Source::DevDefault)
            } else {
                (Policy::deny_all(), Source::None)
            };
            return Ok((std::sync::Arc::new(p.0), p.1));
        };
        let mut cache = self
            .policies
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((text, p)) = cache.get(&k.id)
            && *text == rec.policy
        {
            return Ok((std::sync::Arc::clone(p), Source::Set(rec.version)));
        }
        let stored: Value =
            serde_json::from_str(&rec.policy).map_err(|_| ApiError::StoredDataCorrupt)?;
        let p = std::sync::Arc::new(Policy::from_stored(&stored).map_err(|e| {
            tracing::error!(wallet = %k.id, error = %e, "a stored policy does not parse");
            ApiError::StoredDataCorrupt
        })?);
        cache.insert(k.id, (rec.policy, std::sync::Arc::clone(&p)));
        Ok((p, Source::Set(rec.version)))
    }

    /// Whether a wallet's policy allows signing the caller's digest (`blind_digest`), audited
    /// with the rule that decided.
    pub(crate) fn wallet_may_blind_sign(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        input: &crate::service::SignInput,
    ) -> Result<(), ApiError> {
        let crate::service::SignInput::Digest(digest) = input else {
            return Err(ApiError::NotAllowed("blind_signing_refused"));
        };
        let (policy, _) = self.wallet_policy(k)?;
        let intent = Intent {
            call: "blind_digest".into(),
            destination: None,
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: U256::ZERO,
            fee: U256::ZERO,
        };
        let decision = policy.evaluate(&intent, ctx.time.0);
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "index": 0,
                       "intent": {"call": "blind_digest", "digest": hex::encode(digest)},
                       "rule": decision.rule(), "decision": decision})
                .to_string(),
            );
        });
        match decision {
            Decision::Allow { .. } => Ok(()),
            _ => Err(ApiError::NotAllowed("blind_signing_refused")),
        }
    }

    /// The wallet `id` for a policy operation `op` (which also authorises the caller).
    fn policy_wallet(
        &self,
        ctx: &RequestCtx,
        id: &str,
        op: fn(strongroom_core::DomainId) -> Operation,
    ) -> Result<(KeyRecord, strongroom_core::record::DomainRecord), ApiError> {
        let (k, d, _) = self.wallet_for(ctx, id, op)?;
        Ok((k, d))
    }

    pub(crate) fn show_policy(&self, ctx: &RequestCtx, id: &str) -> Result<PolicyView, ApiError> {
        let (k, _) = self.policy_wallet(ctx, id, Operation::ReadKeys)?;
        let (p, source) = self.wallet_policy(&k)?;
        let set_at = match source {
            Source::Set(_) => self.store.policy(k.id)?.map(|r| rfc3339(r.set_at)),
            _ => None,
        };
        Ok(PolicyView {
            wallet: k.id.to_string(),
            version: match source {
                Source::Set(v) => v,
                _ => 0,
            },
            source: source.describe(),
            set_at,
            policy: p.document().clone(),
            cooling: p
                .cooling(ctx.time.0)
                .into_iter()
                .map(|(list, address, from)| {
                    json!({"list": list, "address": address, "usable_from": rfc3339(UnixMillis(from))})
                })
                .collect(),
        })
    }

    /// Files (or, in dev mode, runs) a `policy.set` request for wallet `id`. The document is
    /// validated now, so a request for a policy that does not parse is never filed.
    pub(crate) async fn set_policy(
        &self,
        ctx: &RequestCtx,
        id: &str,
        document: Value,
    ) -> Result<Gated<PolicyView>, ApiError> {
        let (k, d) = self.policy_wallet(ctx, id, Operation::SetPolicy)?;
        let current = self.store.policy(k.id)?;
        let previous = match &current {
            Some(_) => Some(self.wallet_policy(&k)?.0),
            None => None,
        };
        let parsed = Policy::parse(&document.to_string(), previous.as_deref(), ctx.time.0)
            .map_err(|e| ApiError::bad("invalid_policy", e.to_string()))?;
        addresses_fit(&k, &parsed)?;
        let from_version = current.as_ref().map_or(0, |r| r.version);
        let params = crate::requests::strip_nulls(json!({
            "wallet": k.id.to_string(),
            "label": k.label,
            "domain": d.name.as_str(),
            "from_version": from_version,
            "policy": document,
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
        self.set_policy_prepared(ctx, &params, |_| Ok(None)).await?;
        Ok(Gated::Done(self.show_policy(ctx, id)?))
    }

    /// Stores the policy in `params`, over the version it was filed against (an approved
    /// request comes here too), committing `finish`'s mutation with it.
    pub(crate) async fn set_policy_prepared(
        &self,
        ctx: &RequestCtx,
        params: &Value,
        finish: impl FnOnce(Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<(), ApiError> {
        let wallet: strongroom_core::KeyId = params["wallet"]
            .as_str()
            .and_then(|w| w.parse().ok())
            .ok_or(ApiError::Internal)?;
        let from_version = params["from_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(ApiError::Internal)?;
        let found = self
            .keys
            .get(self.store.as_ref(), wallet)?
            .ok_or(ApiError::NotFound)?;
        let (k, d) = (&found.0, &found.1);
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
        });
        let current = self.store.policy(k.id)?;
        if current.as_ref().map_or(0, |r| r.version) != from_version {
            return Err(ApiError::conflict(
                "policy_changed",
                "the wallet's policy changed since this request was filed",
            ));
        }
        let previous = match &current {
            Some(_) => Some(self.wallet_policy(k)?.0),
            None => None,
        };
        let policy = Policy::parse(
            &params["policy"].to_string(),
            previous.as_deref(),
            ctx.time.0,
        )
        .map_err(|e| ApiError::bad("invalid_policy", e.to_string()))?;
        addresses_fit(k, &policy)?;
        let record = PolicyRecord {
            wallet: k.id,
            version: from_version + 1,
            policy: policy.to_stored().to_string(),
            set_at: ctx.time,
        };
        let mut mutations = vec![Mutation::SetPolicy(record)];
        mutations.extend(finish(
            json!({"wallet": k.id.to_string(), "version": from_version + 1}),
        )?);
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "version": from_version + 1,
                       "policy": params["policy"]})
                .to_string(),
            );
        });
        self.commit(ctx, "policy.set", mutations).await
    }

    /// A dry run: what the policy decides on `tx` now, and why.
    pub(crate) fn test_policy(
        &self,
        ctx: &RequestCtx,
        id: &str,
        tx: &Value,
    ) -> Result<PolicyTestView, ApiError> {
        let (k, _) = self.policy_wallet(ctx, id, Operation::ReadKeys)?;
        let w = strongroom_core::wallet::WalletPublic::decode(&k.public_key)?;
        let chain_id = match w.spec {
            strongroom_core::wallet::WalletSpec::Ethereum { chain_id } => chain_id,
            strongroom_core::wallet::WalletSpec::Bitcoin { .. } => {
                let psbt = tx.as_str().ok_or_else(|| {
                    ApiError::bad(
                        "invalid_psbt",
                        "for a Bitcoin wallet, tx is a PSBT (base64)",
                    )
                })?;
                return self.test_psbt(ctx, &k, &w, psbt);
            }
            strongroom_core::wallet::WalletSpec::Eos { chain_id } => {
                let packed = tx
                    .as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| {
                        ApiError::bad(
                            "invalid_transaction",
                            "for an EOS wallet, tx is the packed transaction (hex)",
                        )
                    })?;
                return self.test_eos(ctx, &k, &w, chain_id, &packed);
            }
            _ => {
                return Err(ApiError::bad(
                    "wrong_chain",
                    "policy test decodes Ethereum and EOS transactions and Bitcoin PSBTs",
                ));
            }
        };
        let intent = strongroom_chains::ethereum::parse_transaction(tx, chain_id)?
            .tx
            .intent();
        let (policy, _) = self.wallet_policy(&k)?;
        let pi = eth_policy_intent(&intent);
        let mut decision = policy.evaluate(&pi, ctx.time.0);
        let mut spent_24h = None;
        if let Decision::Allow {
            rule,
            daily_limit: Some(limit),
        } = &decision
        {
            let spent = U256::from_be_bytes(self.store.spent_since(
                k.id,
                &pi.asset,
                UnixMillis(ctx.time.0.saturating_sub(DAY_MS)),
            )?);
            let limit = U256::from_str_radix(limit, 10).map_err(|_| ApiError::Internal)?;
            if spent
                .checked_add(pi.amount)
                .is_none_or(|total| total > limit)
            {
                decision = Decision::Deny {
                    rule: rule.clone(),
                    reason: format!(
                        "the rule's daily limit {limit} would be exceeded (spent {spent})"
                    ),
                };
            }
            spent_24h = Some(spent.to_string());
        }
        Ok(PolicyTestView {
            wallet: k.id.to_string(),
            decision,
            intent: intent.to_json(),
            spent_24h,
        })
    }

    /// A dry run of a packed EOS transaction: every action judged as `eos sign` would (for
    /// address 0; the policy does not depend on the address).
    fn test_eos(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        w: &strongroom_core::wallet::WalletPublic,
        chain_id: [u8; 32],
        packed: &[u8],
    ) -> Result<PolicyTestView, ApiError> {
        let (decision, intent) = self.eos_dry_run(ctx, k, w, chain_id, packed)?;
        Ok(PolicyTestView {
            wallet: k.id.to_string(),
            decision,
            intent,
            spent_24h: None,
        })
    }

    /// A dry run of a PSBT: every destination judged as `btc sign-psbt` would, and the daily
    /// limits of the allowing rules checked against what was spent (destinations and fee).
    fn test_psbt(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        w: &strongroom_core::wallet::WalletPublic,
        psbt: &str,
    ) -> Result<PolicyTestView, ApiError> {
        use strongroom_chains::psbt;
        let plan = psbt::plan(psbt::parse_psbt(psbt.as_bytes())?, w)?;
        let (intents, decisions, mut decision) = self.btc_judge(ctx, k, w, &plan)?;
        let spent = U256::from_be_bytes(self.store.spent_since(
            k.id,
            "native",
            UnixMillis(ctx.time.0.saturating_sub(DAY_MS)),
        )?);
        let total = intents
            .iter()
            .fold(U256::from(plan.fee), |a, i| a.saturating_add(i.amount));
        let over = decisions.iter().find_map(|d| match d {
            Decision::Allow {
                rule,
                daily_limit: Some(limit),
            } => U256::from_str_radix(limit, 10)
                .ok()
                .filter(|l| spent.checked_add(total).is_none_or(|t| t > *l))
                .map(|l| (rule.clone(), l)),
            _ => None,
        });
        if let Some((rule, limit)) = over {
            decision = Decision::Deny {
                rule,
                reason: format!("the rule's daily limit {limit} would be exceeded (spent {spent})"),
            };
        }
        Ok(PolicyTestView {
            wallet: k.id.to_string(),
            decision,
            intent: plan.to_json(w),
            spent_24h: Some(spent.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn transfer(to: &str, amount: u64) -> Intent {
        Intent {
            call: "transfer".into(),
            destination: Some(to.into()),
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: U256::from(amount),
            fee: U256::from(500u64),
        }
    }

    /// A small payment allowed under a limited rule and a large one under an unlimited rule:
    /// the whole outflow meets the strictest limit, whichever comes first.
    #[test]
    fn grouped_spends_do_not_depend_on_order() {
        let small = Decision::Allow {
            rule: "small".into(),
            daily_limit: Some("200000".into()),
        };
        let treasury = Decision::Allow {
            rule: "treasury".into(),
            daily_limit: None,
        };
        let wallet = strongroom_core::KeyId::from_random([7; 16]);
        let at = UnixMillis(10 * DAY_MS);
        let a = grouped_spends(
            wallet,
            &[transfer("a", 100_000), transfer("t", 1_000_000_000)],
            &[small.clone(), treasury.clone()],
            at,
        )
        .unwrap();
        let b = grouped_spends(
            wallet,
            &[transfer("t", 1_000_000_000), transfer("a", 100_000)],
            &[treasury, small],
            at,
        )
        .unwrap();
        for spends in [a, b] {
            let [Mutation::RecordSpend { amount, limit, .. }] = spends.as_slice() else {
                panic!("one spend of the native coin: {spends:?}");
            };
            assert_eq!(U256::from_be_bytes(*amount), U256::from(1_000_100_500u64));
            assert_eq!(limit.map(U256::from_be_bytes), Some(U256::from(200_000u64)));
        }
    }
}
