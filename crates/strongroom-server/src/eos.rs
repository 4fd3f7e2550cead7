//! EOS / Antelope signing by HD wallets: the packed transaction is decoded (every action,
//! `transfer`s in full), every action judged by the wallet's policy, and the digest
//! `sha256(chain id || packed || cfd hash)` signed with a canonical `SIG_K1_` signature.
//!
//! Hot wallets sign within policy; a warm wallet or a rule that asks for a quorum is refused
//! for now (quorum requests carry Ethereum transactions only).

use alloy_primitives::U256;
use serde::Serialize;
use serde_json::{Value, json};
use strongroom_chains::eos::{self, EosCall};
use strongroom_core::Operation;
use strongroom_core::temperature::{self, Change};
use strongroom_core::wallet::WalletSpec;
use strongroom_policy::{Decision, Intent};

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault};

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
    ) -> Result<EosSignedView, ApiError> {
        let (k, d, w) = self.wallet_for(ctx, id, Operation::Sign)?;
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
        let intents: Vec<Intent> = tx
            .context_free_actions
            .iter()
            .chain(&tx.actions)
            .map(action_intent)
            .collect();
        let (policy, _) = self.wallet_policy(&k)?;
        let decisions: Vec<Decision> = intents
            .iter()
            .map(|i| policy.evaluate(i, ctx.time.0))
            .collect();
        // Every action must be allowed; the first refusal decides.
        let deciding = decisions
            .iter()
            .find(|d| !matches!(d, Decision::Allow { .. }))
            .or(decisions.first())
            .cloned()
            .ok_or(ApiError::Internal)?;
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "index": index,
                       "intent": tx.to_json(), "rule": deciding.rule(),
                       "decisions": decisions})
                .to_string(),
            );
        });
        match &deciding {
            Decision::Allow { .. } => {}
            Decision::Deny { .. } => return Err(ApiError::NotAllowed("policy_denied")),
            Decision::Quorum { .. } => {
                return Err(ApiError::conflict(
                    "quorum_not_supported",
                    "a rule asks for approvals, and EOS signatures are not yet filed as requests",
                ));
            }
        }
        let k = match self.demote_if_idle(&k, ctx.time).await? {
            Some(k) => k,
            None => k,
        };
        if temperature::signing(k.temperature) != Change::Now {
            return Err(ApiError::conflict(
                "key_not_hot",
                "only a hot wallet signs EOS transactions for now",
            ));
        }
        let digest = eos::signing_digest(&chain_id, packed, context_free_data);
        let sig = self
            .keystore
            .sign_wallet_until(&d, &k, index, &digest, eos::is_canonical)?;
        let recovery_id = sig.recovery_id.ok_or(ApiError::Internal)?;
        let public = strongroom_chains::address(&w, false, index)?;
        // Spends of every transfer, each against its allowing rule's limit, with the record.
        let mut spends = Vec::new();
        for (i, d) in intents.iter().zip(&decisions) {
            let limit = match d {
                Decision::Allow { daily_limit, .. } => daily_limit.clone(),
                _ => None,
            };
            spends.extend(crate::policy::spends(&k, i, ctx.time, limit.as_deref())?);
        }
        if !spends.is_empty() {
            let committed = self
                .commit(ctx, "eos.sign", spends)
                .await
                .map_err(crate::eth::limit_error);
            if let Err(ApiError::NotAllowed("daily_limit_exceeded")) = &committed {
                self.demote_exhausted(&k).await?;
            }
            committed?;
        }
        if k.hot_idle_secs.is_some() {
            self.last_use.touch(k.id, ctx.time);
        }
        Ok(EosSignedView {
            wallet: k.id.to_string(),
            public_key: public.alternate.unwrap_or(public.address),
            signature: eos::sig_k1(&sig.bytes, recovery_id),
            digest: hex::encode(digest),
            transaction: tx.to_json(),
        })
    }
}
