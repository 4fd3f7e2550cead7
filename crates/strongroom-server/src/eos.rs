//! EOS / Antelope signing by HD wallets: the packed transaction is decoded (every action,
//! `transfer`s in full), every action judged by the wallet's policy, and the digest
//! `sha256(chain id || packed || cfd hash)` signed with a canonical `SIG_K1_` signature.
//!
//! Hot wallets sign within policy; warm wallets and rules that ask for a quorum file a
//! `key.sign` request carrying the packed transaction, decoded and judged again when approved;
//! cold wallets refuse. A transaction that expires more than an hour from now (Antelope's
//! default `max_transaction_lifetime`) is refused: its signature could be held and used later;
//! so is one that has expired (when filed, or when approved).

use alloy_primitives::U256;
use serde::Serialize;
use serde_json::{Value, json};
use strongroom_chains::eos::{self, EosCall};
use strongroom_core::Operation;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::wallet::{WalletPublic, WalletSpec};
use strongroom_policy::{Decision, Intent};

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault};

/// The furthest a transaction's expiration may lie ahead, in seconds.
const MAX_LIFETIME_SECS: u64 = 3600;

/// A signed EOS transaction.
#[derive(Serialize)]
pub struct EosSignedView {
    wallet: String,
    /// The signing key, `PUB_K1_...`.
    public_key: String,
    /// The canonical signature, `SIG_K1_...`.
    signature: String,
    /// What was signed, hex.
    digest: String,
    /// The decoded transaction.
    transaction: Value,
}

/// Actions that change who controls an account.
const PERMISSION_ACTIONS: [&str; 4] = ["updateauth", "deleteauth", "linkauth", "unlinkauth"];

/// The policy's terms for one action.
fn action_intent(a: &eos::Action) -> Intent {
    match &a.call {
        EosCall::Transfer {
            to, amount, symbol, ..
        } => Intent {
            call: "token.transfer".into(),
            destination: Some(to.clone()),
            contract: Some(a.account.clone()),
            selector: Some(a.name.clone()),
            asset: format!("{}:{}", a.account, symbol).to_ascii_lowercase(),
            amount: U256::from(*amount),
            fee: U256::ZERO,
        },
        // Changing an account's keys or permissions hands it over: only a rule that names
        // `permissions` allows it, never a general `contract` rule.
        EosCall::Other { .. } if PERMISSION_ACTIONS.contains(&a.name.as_str()) => Intent {
            call: "permissions".into(),
            destination: Some(a.account.clone()),
            contract: Some(a.account.clone()),
            selector: Some(a.name.clone()),
            asset: "native".into(),
            amount: U256::ZERO,
            fee: U256::ZERO,
        },
        EosCall::Other { .. } => Intent {
            call: "contract".into(),
            destination: Some(a.account.clone()),
            contract: Some(a.account.clone()),
            selector: Some(a.name.clone()),
            asset: "native".into(),
            amount: U256::ZERO,
            fee: U256::ZERO,
        },
    }
}

impl Vault {
    /// Signs the packed transaction `packed` for `chain_id` with address `index` of EOS
    /// wallet `id`.
    pub(crate) async fn eos_sign(
        &self,
        ctx: &RequestCtx,
        id: &str,
        index: u32,
        chain_id: [u8; 32],
        packed: &[u8],
        context_free_data: &[u8],
    ) -> Result<Gated<EosSignedView>, ApiError> {
        let (k, d, w) = self.wallet_for(ctx, id, Operation::Sign)?;
        let judged = self.eos_judge(ctx, &k, &w, index, chain_id, packed, context_free_data)?;
        let extra = json!({
            "chain": "eos",
            "index": index,
            "eos_chain_id": hex::encode(chain_id),
            "eos_tx": hex::encode(packed),
            "eos_context_free_data": hex::encode(context_free_data),
            "intent": judged.tx.to_json(),
        });
        let k = match self
            .wallet_gate(ctx, &k, &d, &judged.deciding, extra)
            .await?
        {
            crate::policy::WalletGate::Sign(k) => k,
            crate::policy::WalletGate::Filed(p) => return Ok(Gated::Pending(p)),
        };
        let (signed, spends) = self.eos_sign_prepared(ctx, &k, &d, &w, &judged)?;
        self.commit_spends(ctx, "eos.sign", &k, spends).await?;
        Ok(Gated::Done(signed))
    }

    /// Decodes and judges a transaction for the wallet's chain: every action, context-free
    /// ones included, must be allowed (any refusal refuses, else the largest quorum asked).
    /// Audits the decoded transaction with the decisions.
    #[allow(clippy::too_many_arguments)] // the request's parts, as they arrive
    fn eos_judge(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        w: &WalletPublic,
        index: u32,
        chain_id: [u8; 32],
        packed: &[u8],
        context_free_data: &[u8],
    ) -> Result<Judged, ApiError> {
        let WalletSpec::Eos {
            chain_id: wallet_chain,
        } = w.spec
        else {
            return Err(ApiError::bad(
                "wrong_chain",
                format!(
                    "this is a {} wallet, not an eos one",
                    w.spec.chain().as_str()
                ),
            ));
        };
        // The wallet is pinned to one chain: account names mean different things elsewhere.
        if chain_id != wallet_chain {
            return Err(ApiError::bad(
                "chain_id_mismatch",
                format!(
                    "the transaction is for chain {}, the wallet for chain {}",
                    hex::encode(chain_id),
                    hex::encode(wallet_chain)
                ),
            ));
        }
        let tx = eos::decode_transaction(packed)?;
        let now = ctx.time.0 / 1000;
        // Expired: the chain would refuse it, and an approval that came too late must not
        // count its transfers against the daily limit.
        if u64::from(tx.expiration) <= now {
            return Err(ApiError::bad(
                "transaction_expired",
                "the transaction has expired",
            ));
        }
        if u64::from(tx.expiration) > now + MAX_LIFETIME_SECS {
            return Err(ApiError::bad(
                "expiration_too_far",
                format!("the transaction expires more than {MAX_LIFETIME_SECS} seconds from now"),
            ));
        }
        let intents: Vec<Intent> = tx
            .context_free_actions
            .iter()
            .chain(&tx.actions)
            .map(action_intent)
            .collect();
        let (policy, _) = self.wallet_policy(k)?;
        let decisions: Vec<Decision> = intents
            .iter()
            .map(|i| policy.evaluate(i, ctx.time.0))
            .collect();
        let deciding = crate::btc::combined(&decisions).ok_or(ApiError::Internal)?;
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "index": index,
                       "intent": tx.to_json(), "rule": deciding.rule(),
                       "decisions": decisions})
                .to_string(),
            );
        });
        Ok(Judged {
            tx,
            intents,
            decisions,
            deciding,
            index,
            digest: eos::signing_digest(&chain_id, packed, context_free_data),
        })
    }

    /// What `eos sign` would decide on `packed` (for `policy test`): the deciding decision
    /// and the decoded transaction.
    pub(crate) fn eos_dry_run(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        w: &WalletPublic,
        chain_id: [u8; 32],
        packed: &[u8],
    ) -> Result<(Decision, Value), ApiError> {
        let judged = self.eos_judge(ctx, k, w, 0, chain_id, packed, &[])?;
        Ok((judged.deciding, judged.tx.to_json()))
    }

    /// Signs an already-decided transaction (the temperature has been checked by the caller;
    /// an approved warm request comes here too): the signature and the spends to commit.
    fn eos_sign_prepared(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        d: &DomainRecord,
        w: &WalletPublic,
        judged: &Judged,
    ) -> Result<(EosSignedView, Vec<Mutation>), ApiError> {
        let (index, digest) = (judged.index, judged.digest);
        let sig =
            self.keystore
                .sign_wallet_until(d, k, false, index, &digest, eos::is_canonical)?;
        let recovery_id = sig.recovery_id.ok_or(ApiError::Internal)?;
        let public = strongroom_chains::address(w, false, index)?;
        // Every transfer counted, per asset, against its rules' limits, with the record.
        let spends =
            crate::policy::grouped_spends(k.id, &judged.intents, &judged.decisions, ctx.time)?;
        Ok((
            EosSignedView {
                wallet: k.id.to_string(),
                public_key: public.alternate.unwrap_or(public.address),
                signature: eos::sig_k1(
                    &sig.compact().map_err(|_| ApiError::Internal)?,
                    recovery_id,
                ),
                digest: hex::encode(digest),
                transaction: judged.tx.to_json(),
            },
            spends,
        ))
    }

    /// Re-runs an approved warm request's transaction: decoded again from the approved
    /// parameters and judged again by the wallet's policy as it is now (with the `required`
    /// approvals the request collected).
    pub(crate) fn eos_sign_approved(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        d: &DomainRecord,
        params: &Value,
        required: u8,
    ) -> Result<(EosSignedView, Vec<Mutation>), ApiError> {
        let w = WalletPublic::decode(&k.public_key)?;
        let bytes = |name: &str| {
            params
                .get(name)
                .and_then(Value::as_str)
                .and_then(|h| hex::decode(h).ok())
                .ok_or(ApiError::Internal)
        };
        let index = params
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(ApiError::Internal)?;
        let chain_id: [u8; 32] = bytes("eos_chain_id")?
            .try_into()
            .map_err(|_| ApiError::Internal)?;
        let packed = bytes("eos_tx")?;
        let cfd = bytes("eos_context_free_data")?;
        let judged = self.eos_judge(ctx, k, &w, index, chain_id, &packed, &cfd)?;
        match &judged.deciding {
            Decision::Deny { .. } => return Err(ApiError::NotAllowed("policy_denied")),
            Decision::Quorum { approvals, .. } if *approvals > required => {
                return Err(ApiError::conflict(
                    "policy_requires_more_approvals",
                    format!("the wallet's policy now requires {approvals} approvals"),
                ));
            }
            _ => {}
        }
        self.eos_sign_prepared(ctx, k, d, &w, &judged)
    }
}

/// A decoded transaction and what policy said of each action.
struct Judged {
    tx: eos::EosTransaction,
    intents: Vec<Intent>,
    decisions: Vec<Decision>,
    deciding: Decision,
    index: u32,
    /// `sha256(chain id || packed || cfd hash)`: what is signed.
    digest: [u8; 32],
}
