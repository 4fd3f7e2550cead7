//! Ethereum signing by HD wallets: transactions (legacy EIP-155, EIP-2930, EIP-1559), ERC-20
//! transfers built here, and EIP-191 messages.
//!
//! The vault decodes what it signs (`strongroom_chains::ethereum`) and decides on that intent,
//! never on a client's description: the decision and the intent are audited with the
//! request. Hot wallets sign at once within policy; warm wallets file a `key.sign` request
//! that carries the transaction and its decoded intent (so approvers approve exactly it);
//! cold wallets refuse.

use serde::Serialize;
use serde_json::{Value, json};
use strongroom_chains::ethereum::{self, EthTx};
use strongroom_core::Operation;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::temperature::{self, Change};
use strongroom_core::wallet::{WalletPublic, WalletSpec};
use strongroom_policy::Decision;

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{RequestCtx, Vault};

/// A signed transaction.
#[derive(Serialize)]
pub struct EthSignedView {
    wallet: String,
    from: String,
    /// The signed transaction as broadcast, `0x` hex.
    raw: String,
    /// Its hash, `0x` hex.
    hash: String,
    /// What it does, as decoded by the vault.
    intent: Value,
}

/// A signed EIP-191 message.
#[derive(Serialize)]
pub struct EthMessageView {
    wallet: String,
    from: String,
    /// `r || s || v` (v = 27 or 28), `0x` hex: what `personal_sign` returns.
    signature: String,
}

/// A wallet's Ethereum account: the wallet record, its domain, chain id and address `index`.
struct Account {
    k: KeyRecord,
    d: DomainRecord,
    chain_id: u64,
    index: u32,
    from: alloy_primitives::Address,
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl Vault {
    /// The Ethereum wallet `id` that the caller may sign with, and its address `index`.
    fn eth_account(&self, ctx: &RequestCtx, id: &str, index: u32) -> Result<Account, ApiError> {
        let (k, d, w) = self.wallet_for(ctx, id, Operation::Sign)?;
        let WalletSpec::Ethereum { chain_id } = w.spec else {
            return Err(ApiError::bad(
                "wrong_chain",
                format!(
                    "this is a {} wallet, not an ethereum one",
                    w.spec.chain().as_str()
                ),
            ));
        };
        let from = self.eth_address(&k.public_key, &w, index)?;
        Ok(Account {
            k,
            d,
            chain_id,
            index,
            from,
        })
    }

    /// Signs the transaction object `tx` with address `index` of wallet `id`; `operation` is
    /// the route's audit name.
    pub(crate) async fn eth_sign_tx(
        &self,
        ctx: &RequestCtx,
        operation: &'static str,
        id: &str,
        index: u32,
        tx: Value,
    ) -> Result<Gated<EthSignedView>, ApiError> {
        let a = self.eth_account(ctx, id, index)?;
        let parsed = ethereum::parse_transaction(&tx, a.chain_id)?;
        if parsed.from.is_some_and(|f| f != a.from) {
            return Err(ApiError::bad(
                "from_mismatch",
                format!("`from` is not this wallet's address {index} ({})", a.from),
            ));
        }
        let intent = parsed.tx.intent();
        let pi = crate::policy::eth_policy_intent(&intent);
        let decision = self.eth_decide(ctx, &a, intent.to_json(), &pi)?;
        let limit = match &decision {
            Decision::Allow { daily_limit, .. } => daily_limit.clone(),
            _ => None,
        };
        let extra = json!({
            "chain": "ethereum",
            "chain_id": a.chain_id,
            "index": index,
            "from": a.from.to_checksum(None),
            "eth_tx": tx,
            "intent": intent.to_json(),
        });
        let a = match self.wallet_gate(ctx, &a.k, &a.d, &decision, extra).await? {
            crate::policy::WalletGate::Sign(k) => Account { k, ..a },
            crate::policy::WalletGate::Filed(p) => return Ok(Gated::Pending(p)),
        };
        let signed = self.eth_sign_prepared(&a.k, &a.d, index, a.from, &parsed.tx)?;
        // Counted against the rolling limit in the transaction that writes the audit record:
        // if it does not fit, the signature is never released.
        let spends = crate::policy::spends(&a.k, &pi, ctx.time, limit.as_deref())?;
        self.commit_spends(ctx, operation, &a.k, spends).await?;
        Ok(Gated::Done(signed))
    }

    /// Signs an already-decided transaction (the temperature has been checked by the caller;
    /// an approved warm request comes here too).
    pub(crate) fn eth_sign_prepared(
        &self,
        k: &KeyRecord,
        d: &DomainRecord,
        index: u32,
        from: alloy_primitives::Address,
        tx: &EthTx,
    ) -> Result<EthSignedView, ApiError> {
        let sig = self
            .keystore
            .sign_wallet(d, k, false, index, &tx.signing_hash())?;
        let recovery_id = sig.recovery_id.ok_or(ApiError::Internal)?;
        let raw = tx.signed_raw(&sig.compact().map_err(|_| ApiError::Internal)?, recovery_id);
        Ok(EthSignedView {
            wallet: k.id.to_string(),
            from: from.to_checksum(None),
            hash: hex0x(&ethereum::transaction_hash(&raw)),
            raw: hex0x(&raw),
            intent: tx.intent().to_json(),
        })
    }

    /// Re-runs an approved warm request's transaction: parsed again from the approved
    /// parameters, for the wallet's (unchangeable) chain, and judged again by the wallet's
    /// policy as it is now (with the `required` approvals the request collected). Returns the
    /// signed transaction and the spends to commit with it.
    pub(crate) fn eth_sign_approved(
        &self,
        ctx: &RequestCtx,
        k: &KeyRecord,
        d: &DomainRecord,
        params: &Value,
        required: u8,
    ) -> Result<(EthSignedView, Vec<strongroom_core::storage::Mutation>), ApiError> {
        let w = WalletPublic::decode(&k.public_key)?;
        let WalletSpec::Ethereum { chain_id } = w.spec else {
            return Err(ApiError::Internal);
        };
        let index = params
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(ApiError::Internal)?;
        let tx = params.get("eth_tx").ok_or(ApiError::Internal)?;
        let parsed = ethereum::parse_transaction(tx, chain_id)?;
        let pi = crate::policy::eth_policy_intent(&parsed.tx.intent());
        let (policy, _) = self.wallet_policy(k)?;
        let decision = policy.evaluate(&pi, ctx.time.0);
        ctx.tag(|t| {
            t.detail = Some(
                json!({"wallet": k.id.to_string(), "index": index,
                       "intent": parsed.tx.intent().to_json(), "rule": decision.rule(),
                       "decision": decision})
                .to_string(),
            );
        });
        let limit = match &decision {
            Decision::Deny { .. } => return Err(ApiError::NotAllowed("policy_denied")),
            Decision::Allow { daily_limit, .. } => daily_limit.clone(),
            // The policy may have come to ask for more approvals than the request collected.
            Decision::Quorum { approvals, .. } if *approvals > required => {
                return Err(ApiError::conflict(
                    "policy_requires_more_approvals",
                    format!("the wallet's policy now requires {approvals} approvals"),
                ));
            }
            Decision::Quorum { .. } => None,
        };
        let from = ethereum::address_of(&strongroom_chains::child_public_key(
            &w.account, false, index,
        )?)?;
        let signed = self.eth_sign_prepared(k, d, index, from, &parsed.tx)?;
        let spends = crate::policy::spends(k, &pi, ctx.time, limit.as_deref())?;
        Ok((signed, spends))
    }

    /// Signs an EIP-191 `personal_sign` message with address `index` of wallet `id`.
    pub(crate) async fn eth_sign_message(
        &self,
        ctx: &RequestCtx,
        id: &str,
        index: u32,
        message: &[u8],
    ) -> Result<EthMessageView, ApiError> {
        let a = self.eth_account(ctx, id, index)?;
        // A 32-byte message is what a hash looks like, and some contracts accept a signed
        // hash as an authorisation: a rule must allow `message_hash` by name.
        let call = if message.len() == 32 {
            "message_hash"
        } else {
            "message"
        };
        let intent = json!({"call": call, "message_len": message.len(),
            "message_keccak": hex0x(alloy_primitives::keccak256(message).as_slice())});
        let pi = strongroom_policy::Intent {
            call: call.into(),
            destination: None,
            contract: None,
            selector: None,
            asset: "native".into(),
            amount: alloy_primitives::U256::ZERO,
            fee: alloy_primitives::U256::ZERO,
        };
        let digest = ethereum::personal_message_hash(message);
        self.eth_sign_hot(ctx, a, intent, &pi, &digest, "messages")
            .await
    }

    /// Signs a message or typed-data `digest` for a hot wallet whose policy allows `pi`
    /// (audited with `intent`): `r || s || v`. A quorum per message is not offered.
    async fn eth_sign_hot(
        &self,
        ctx: &RequestCtx,
        a: Account,
        intent: Value,
        pi: &strongroom_policy::Intent,
        digest: &[u8; 32],
        what: &str,
    ) -> Result<EthMessageView, ApiError> {
        let a = match self.demote_if_idle(&a.k, ctx.time).await? {
            Some(k) => Account { k, ..a },
            None => a,
        };
        if !matches!(
            self.eth_decide(ctx, &a, intent, pi)?,
            Decision::Allow { .. }
        ) {
            return Err(ApiError::NotAllowed("policy_denied"));
        }
        if temperature::signing(a.k.temperature) != Change::Now {
            return Err(ApiError::conflict(
                "key_not_hot",
                format!("only a hot wallet signs {what}"),
            ));
        }
        let sig = self
            .keystore
            .sign_wallet(&a.d, &a.k, false, a.index, digest)?;
        let recovery_id = sig.recovery_id.ok_or(ApiError::Internal)?;
        let mut rsv = sig.bytes.to_vec();
        rsv.push(27 + (recovery_id & 1));
        Ok(EthMessageView {
            wallet: a.k.id.to_string(),
            from: a.from.to_checksum(None),
            signature: hex0x(&rsv),
        })
    }

    /// Signs EIP-712 typed data (`eth_signTypedData_v4`) with address `index` of wallet `id`:
    /// hot wallets, and only what the policy allows (permits name their spender and amount).
    pub(crate) async fn eth_sign_typed_data(
        &self,
        ctx: &RequestCtx,
        id: &str,
        index: u32,
        data: &Value,
    ) -> Result<EthMessageView, ApiError> {
        let a = self.eth_account(ctx, id, index)?;
        let typed = strongroom_chains::eip712::parse_typed_data(data, a.chain_id)?;
        let lower = |x: &alloy_primitives::Address| format!("{x:#x}");
        let (destination, asset, amount) = match &typed.kind {
            strongroom_chains::eip712::TypedKind::Permit {
                spender,
                token,
                value,
            } => (Some(lower(spender)), lower(token), *value),
            strongroom_chains::eip712::TypedKind::Permit2 { spender } => (
                spender.as_ref().map(lower),
                "permit2".to_owned(),
                alloy_primitives::U256::ZERO,
            ),
            strongroom_chains::eip712::TypedKind::Other => (
                typed.verifying_contract.as_ref().map(lower),
                "native".to_owned(),
                alloy_primitives::U256::ZERO,
            ),
        };
        let pi = strongroom_policy::Intent {
            call: typed.call().into(),
            destination,
            contract: typed.verifying_contract.as_ref().map(lower),
            selector: None,
            asset,
            amount,
            fee: alloy_primitives::U256::ZERO,
        };
        self.eth_sign_hot(ctx, a, typed.to_json(), &pi, &typed.hash, "typed data")
            .await
    }

    /// The wallet policy's decision on `pi`, written into the request's audit record with
    /// the decoded intent and the deciding rule.
    fn eth_decide(
        &self,
        ctx: &RequestCtx,
        a: &Account,
        intent: Value,
        pi: &strongroom_policy::Intent,
    ) -> Result<Decision, ApiError> {
        let (policy, _) = self.wallet_policy(&a.k)?;
        let decision = policy.evaluate(pi, ctx.time.0);
        let detail = json!({
            "wallet": a.k.id.to_string(),
            "from": a.from.to_checksum(None),
            "index": a.index,
            "intent": intent,
            "rule": decision.rule(),
            "decision": decision,
        });
        ctx.tag(|t| t.detail = Some(detail.to_string()));
        Ok(decision)
    }
}

/// Addresses derived so far, by the wallet's (MAC-checked) public part and index: deriving one
/// costs two elliptic-curve operations on every request otherwise.
#[derive(Default)]
pub(crate) struct AddressCache(
    std::sync::Mutex<std::collections::HashMap<(Vec<u8>, u32), alloy_primitives::Address>>,
);

impl Vault {
    fn eth_address(
        &self,
        public: &[u8],
        w: &WalletPublic,
        index: u32,
    ) -> Result<alloy_primitives::Address, ApiError> {
        let key = (public.to_vec(), index);
        if let Some(a) = self
            .eth_addresses
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(*a);
        }
        let a = ethereum::address_of(&strongroom_chains::child_public_key(
            &w.account, false, index,
        )?)?;
        let mut cache = self
            .eth_addresses
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 65_536 {
            cache.clear();
        }
        cache.insert(key, a);
        Ok(a)
    }

    /// Demotes a hot wallet to warm (audited as `key.demote` by `system`), as an idle one is.
    pub(crate) async fn demote_exhausted(&self, k: &KeyRecord) -> Result<(), ApiError> {
        // Concurrent signatures may all find the limit exhausted: one demotion is enough.
        let current = self
            .keys
            .get(self.store.as_ref(), k.id)?
            .ok_or(ApiError::NotFound)?;
        if current.0.temperature != temperature::Temperature::Hot {
            return Ok(());
        }
        let ctx = self.system_ctx(strongroom_core::Principal::System)?;
        match self
            .set_temperature_prepared(
                &ctx,
                k.id,
                temperature::Temperature::Warm,
                None,
                "key.demote",
                |_| Ok(None),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Demoted (or otherwise changed) concurrently: re-read it next time.
            Err(ApiError::Conflict { .. }) => {
                self.keys.forget(k.id);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// A spend that did not fit its rolling limit is a policy refusal, not a conflict.
pub(crate) fn limit_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict { .. } => ApiError::NotAllowed("daily_limit_exceeded"),
        other => other,
    }
}
