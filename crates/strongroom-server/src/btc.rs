//! Bitcoin signing by HD wallets: PSBTs (BIP-174), P2WPKH with ECDSA and key-path P2TR with
//! BIP-340 Schnorr.
//!
//! The PSBT is checked against the wallet (`strongroom_chains::psbt`: every input the
//! wallet's, change outputs re-derived, only `SIGHASH_ALL`/`DEFAULT`), then every destination
//! is judged by the wallet's policy on what the outputs pay, with the fee the inputs leave.
//! Hot wallets sign within policy; warm wallets and quorum rules file a `key.sign` request
//! carrying the PSBT, which is planned and judged again when approved; cold wallets refuse.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use serde::Serialize;
use serde_json::{Value, json};
use strongroom_chains::psbt::{self, InputKind, InputSignature, PsbtPlan};
use strongroom_core::Operation;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::wallet::{WalletPublic, WalletSpec};
use strongroom_policy::{Decision, Intent};

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault};

/// A signed PSBT.
#[derive(Serialize)]
pub struct BtcSignedView {
    wallet: String,
    /// The PSBT with the wallet's signatures, base64.
    psbt: String,
    /// The finalized transaction, hex, ready to broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    tx: Option<String>,
    txid: String,
    /// The finalized transaction's size in virtual bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    vsize: Option<usize>,
    fee_sat: u64,
    /// What it does, as decoded by the vault.
    intent: Value,
}

/// The policy's terms for a PSBT: one `transfer` per destination (the sum of the outputs
/// paying it), each with the whole fee, or a `consolidate` when it pays only the wallet.
fn intents(plan: &PsbtPlan) -> Vec<Intent> {
    let mut by_destination: BTreeMap<&str, u64> = BTreeMap::new();
    for o in plan.outputs.iter().filter(|o| o.own.is_none()) {
        let sum = by_destination.entry(&o.address).or_insert(0);
        *sum = sum.saturating_add(o.value);
    }
    let fee = U256::from(plan.fee);
    if by_destination.is_empty() {
        return vec![Intent {
            call: "consolidate".into(),
            destination: None,
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: U256::ZERO,
            fee,
        }];
    }
    by_destination
        .into_iter()
        .map(|(to, value)| Intent {
            call: "transfer".into(),
            destination: Some(to.to_owned()),
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: U256::from(value),
            fee,
        })
        .collect()
}

/// Several intents' decisions as one: any denial refuses; else the largest quorum asked;
/// else allowed.
pub(crate) fn combined(decisions: &[Decision]) -> Option<Decision> {
    if let Some(d) = decisions
        .iter()
        .find(|d| matches!(d, Decision::Deny { .. }))
    {
        return Some(d.clone());
    }
    let quorum = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Quorum { approvals, .. } => Some((*approvals, d)),
            _ => None,
        })
        .max_by_key(|(a, _)| *a);
    quorum
        .map(|(_, d)| d.clone())
        .or(decisions.first().cloned())
}

impl Vault {
    /// Signs `psbt_text` (base64) with Bitcoin wallet `id`.
    pub(crate) async fn btc_sign_psbt(
        &self,
        ctx: &RequestCtx,
        id: &str,
        psbt_text: &str,
    ) -> Result<Gated<BtcSignedView>, ApiError> {
        let (k, d, w) = self.wallet_for(ctx, id, Operation::Sign)?;
        if !matches!(w.spec, WalletSpec::Bitcoin { .. }) {
            return Err(ApiError::bad(
                "wrong_chain",
                format!(
                    "this is a {} wallet, not a bitcoin one",
                    w.spec.chain().as_str()
                ),
            ));
        }
        let plan = psbt::plan(psbt::parse_psbt(psbt_text.as_bytes())?, &w)?;
        let (intents, decisions, deciding) = self.btc_judge(ctx, &k, &w, &plan)?;
        let extra = json!({
            "chain": "bitcoin",
            "btc_psbt": plan.psbt_base64(),
            "intent": plan.to_json(&w),
        });
        let k = match self.wallet_gate(ctx, &k, &d, &deciding, extra).await? {
            crate::policy::WalletGate::Sign(k) => k,
            crate::policy::WalletGate::Filed(p) => return Ok(Gated::Pending(p)),
        };
        let spends = crate::policy::grouped_spends(k.id, &intents, &decisions, ctx.time)?;
        let signed = self.btc_sign_prepared(&k, &d, &w, plan)?;
        self.commit_spends(ctx, "btc.sign_psbt", &k, spends).await?;
        Ok(Gated::Done(signed))
    }

    /// Judges every destination of `plan`, and audits the decoded PSBT with the decisions.
    pub(crate) fn btc_judge(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        w: &WalletPublic,
        plan: &PsbtPlan,
    ) -> Result<(Vec<Intent>, Vec<Decision>, Decision), ApiError> {
        let intents = intents(plan);
        let (policy, _) = self.wallet_policy(k)?;
        let decisions: Vec<Decision> = intents
            .iter()
            .map(|i| policy.evaluate(i, ctx.time.0))
            .collect();
        let deciding = combined(&decisions).ok_or(ApiError::Internal)?;
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "intent": plan.to_json(w),
                       "rule": deciding.rule(), "decisions": decisions})
                .to_string(),
            );
        });
        Ok((intents, decisions, deciding))
    }

    /// Signs every input of an already-decided plan (the temperature has been checked by the
    /// caller; an approved warm request comes here too).
    fn btc_sign_prepared(
        &self,
        k: &KeyRecord,
        d: &DomainRecord,
        w: &WalletPublic,
        plan: PsbtPlan,
    ) -> Result<BtcSignedView, ApiError> {
        let mut sigs = Vec::with_capacity(plan.inputs.len());
        for i in &plan.inputs {
            sigs.push(match i.kind {
                // Low R, as Bitcoin Core grinds: a byte shorter on the wire.
                InputKind::P2wpkh => InputSignature::Ecdsa(
                    self.keystore
                        .sign_wallet_until(d, k, i.change, i.index, &i.sighash, |s| s[0] < 0x80)?
                        .compact()
                        .map_err(|_| ApiError::Internal)?,
                ),
                InputKind::P2tr { .. } => InputSignature::Schnorr(
                    self.keystore
                        .sign_wallet_taproot(d, k, i.change, i.index, &i.sighash)?,
                ),
            });
        }
        let intent = plan.to_json(w);
        let fee_sat = plan.fee;
        let signed = plan.finish(&sigs)?;
        Ok(BtcSignedView {
            wallet: k.id.to_string(),
            psbt: signed.psbt,
            tx: signed.tx,
            txid: signed.txid,
            vsize: signed.vsize,
            fee_sat,
            intent,
        })
    }

    /// Re-runs an approved warm request's PSBT: planned again from the approved parameters
    /// and judged again by the wallet's policy as it is now (with the `required` approvals the
    /// request collected). Returns the signed PSBT and the spends to commit with it.
    pub(crate) fn btc_sign_approved(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        d: &DomainRecord,
        params: &Value,
        required: u8,
    ) -> Result<(BtcSignedView, Vec<Mutation>), ApiError> {
        let w = WalletPublic::decode(&k.public_key)?;
        let text = params
            .get("btc_psbt")
            .and_then(Value::as_str)
            .ok_or(ApiError::Internal)?;
        let plan = psbt::plan(psbt::parse_psbt(text.as_bytes())?, &w)?;
        let (intents, decisions, deciding) = self.btc_judge(ctx, k, &w, &plan)?;
        match &deciding {
            Decision::Deny { .. } => return Err(ApiError::NotAllowed("policy_denied")),
            Decision::Quorum { approvals, .. } if *approvals > required => {
                return Err(ApiError::conflict(
                    "policy_requires_more_approvals",
                    format!("the wallet's policy now requires {approvals} approvals"),
                ));
            }
            _ => {}
        }
        let spends = crate::policy::grouped_spends(k.id, &intents, &decisions, ctx.time)?;
        Ok((self.btc_sign_prepared(k, d, &w, plan)?, spends))
    }
}
