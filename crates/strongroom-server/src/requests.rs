//! Quorum requests: operations that wait for M distinct approvers, each approving with an
//! Ed25519 signature over the request's canonical hash.
//!
//! A gated operation files a request and answers 202. Each approval is verified on arrival;
//! when the count reaches the rule, every approval is verified again against the request as
//! it is now stored (and against each approver's current, authenticated record), and the
//! operation runs in the same transaction that closes the request. The requester never
//! approves; an approval counts once, only for its request, and only before the expiry.
//! Dev mode runs gated operations at once.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use strongroom_core::quorum::{
    GatedOp, MAX_APPROVALS, QuorumRule, may_approve, required_approvals,
};
use strongroom_core::record::{ApprovalRecord, OperatorRecord, PendingRecord, RequestStatus};
use strongroom_core::storage::Mutation;
use strongroom_core::{DomainId, KeyId, Operation, PendingId, Principal, VaultId};

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault, allow, rfc3339};

/// How long a request waits for approvals unless told otherwise.
pub(crate) const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// Bounds for `Strongroom-Request-Expires`: long enough to reach a second person, short
/// enough that a forgotten approval does not linger as a loaded gun.
pub(crate) const MIN_EXPIRY: Duration = Duration::from_secs(60);
/// See [`MIN_EXPIRY`].
pub(crate) const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses the `Strongroom-Request-Expires` header (whole seconds).
pub(crate) fn parse_expiry(value: &[u8]) -> Result<Duration, ApiError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .filter(|d| (MIN_EXPIRY..=MAX_EXPIRY).contains(d))
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_expiry",
                format!(
                    "Strongroom-Request-Expires must be whole seconds from {} to {}",
                    MIN_EXPIRY.as_secs(),
                    MAX_EXPIRY.as_secs()
                ),
            )
        })
}

/// The outcome of a gated operation: done now, or waiting for approvals.
pub(crate) enum Gated<T> {
    /// Ran (no quorum needed).
    Done(T),
    /// Filed; answer 202.
    Pending(Box<PendingView>),
}

impl<T: Serialize> axum::response::IntoResponse for Gated<T> {
    fn into_response(self) -> axum::response::Response {
        match self {
            Gated::Done(v) => axum::Json(v).into_response(),
            Gated::Pending(p) => (axum::http::StatusCode::ACCEPTED, axum::Json(p)).into_response(),
        }
    }
}

/// JSON with object keys sorted and no whitespace: the form hashed and signed.
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The bytes a request row's MAC covers.
fn binding(vault_id: &VaultId, p: &PendingRecord) -> Vec<u8> {
    let mut out = b"strongroom/pending/v1".to_vec();
    out.extend_from_slice(vault_id.as_bytes());
    out.extend_from_slice(p.id.as_bytes());
    out.extend_from_slice(&p.hash);
    for s in [
        p.status.as_str(),
        p.requester.as_str(),
        p.result.as_deref().unwrap_or("\u{0}"),
    ] {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(
        p.requester_operator
            .map_or([0; 16], |o| *o.as_bytes())
            .as_slice(),
    );
    out.extend_from_slice(&p.created_at.0.to_be_bytes());
    out.extend_from_slice(&p.decided_at.map_or(0, |t| t.0).to_be_bytes());
    out
}

/// A request as shown to operators, with everything needed to recompute its hash.
#[derive(Serialize)]
pub struct PendingView {
    request_id: String,
    status: &'static str,
    operation: &'static str,
    description: String,
    params: Value,
    params_canonical: String,
    domain_id: Option<String>,
    key_id: Option<String>,
    requester: String,
    required: u8,
    approvals: Vec<ApprovalView>,
    created_at: String,
    expires_at: String,
    expires_at_ms: u64,
    nonce: String,
    hash: String,
    vault_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enrolment: Option<Value>,
    decided_at: Option<String>,
}

/// One approval, as shown.
#[derive(Serialize)]
pub struct ApprovalView {
    approver: String,
    at: String,
}

/// A quorum rule, as shown.
#[derive(Serialize)]
pub struct RuleView {
    operation: &'static str,
    domain_id: Option<String>,
    approvals: u8,
}

/// The operator a request is about (whose roles it changes): they never approve it.
fn subject(rec: &PendingRecord) -> Option<strongroom_core::OperatorId> {
    if rec.op != GatedOp::ChangeRoles {
        return None;
    }
    let p: Value = serde_json::from_str(&rec.params).ok()?;
    param(&p, "operator").parse().ok()
}

fn param<'a>(p: &'a Value, name: &str) -> &'a str {
    p.get(name).and_then(Value::as_str).unwrap_or("")
}

/// A parameter that may be a number (shown as written) or a string.
fn scalar(p: &Value, name: &str) -> String {
    match p.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// An Antelope amount in base units with its symbol (`4,EOS`) as people write it: `1.0000 EOS`.
fn antelope_asset(amount: &str, symbol: &str) -> String {
    let Some((precision, code)) = symbol.split_once(',') else {
        return format!("{amount} {symbol}");
    };
    let precision: usize = precision.parse().unwrap_or(0);
    let digits = format!("{amount:0>width$}", width = precision + 1);
    let (whole, frac) = digits.split_at(digits.len() - precision);
    if precision == 0 {
        format!("{whole} {code}")
    } else {
        format!("{whole}.{frac} {code}")
    }
}

/// What will happen, in words.
/// How long after its approval a collected request (a keystore export, a backup) may be
/// collected by its requester.
const COLLECT_WITHIN: Duration = Duration::from_secs(3600);

/// The answer to a second collection, or to one racing the first.
pub(crate) fn collected_once(what: &str) -> ApiError {
    ApiError::conflict(
        "already_collected",
        format!("an approved {what} is collected once"),
    )
}

fn describe(op: GatedOp, p: &Value) -> String {
    match op {
        GatedOp::CreateDomain => format!(
            "create the domain \"{}\" with a new master key (new keys start {})",
            param(p, "name"),
            p.get("new_keys").and_then(Value::as_str).unwrap_or("warm")
        ),
        GatedOp::WarmKey if p.get("validators").is_some() => {
            let list: Vec<String> = p["validators"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|v| format!("{} ({})", param(v, "public_key"), param(v, "from")))
                        .collect()
                })
                .unwrap_or_default();
            let shown = list.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            format!(
                "make {} validator keys of domain \"{}\" {}{}: {shown}{}",
                list.len(),
                param(p, "domain"),
                param(p, "to"),
                p.get("idle_seconds")
                    .and_then(Value::as_u64)
                    .map(|s| format!(
                        " (demoting themselves to warm after {s} s without a signature)"
                    ))
                    .unwrap_or_default(),
                if list.len() > 5 {
                    format!(
                        " and {} more (request show lists every one)",
                        list.len() - 5
                    )
                } else {
                    String::new()
                }
            )
        }
        GatedOp::WarmKey => format!(
            "make the {} key {} (label {}) in domain \"{}\" {}{} (it is {} now){}",
            param(p, "algorithm"),
            param(p, "key"),
            p.get("label").and_then(Value::as_str).unwrap_or("none"),
            param(p, "domain"),
            param(p, "to"),
            p.get("idle_seconds")
                .and_then(Value::as_u64)
                .map(|s| format!(", demoting itself to warm after {s} s without a signature"))
                .unwrap_or_default(),
            param(p, "from"),
            p.get("released")
                .map(|r| format!(
                    ". WARNING: this validator key was released to another signer ({} at {}); if that signer still runs it, signing here too gets the validator slashed",
                    param(r, "by"),
                    param(r, "at")
                ))
                .unwrap_or_default()
        ),
        GatedOp::SetPolicy if p.get("key_policy").is_some() => {
            let kp = &p["key_policy"];
            let tokens = match kp.get("tokens").and_then(Value::as_array) {
                None => "any application token of its domain".to_owned(),
                Some(t) if t.is_empty() => "no application token".to_owned(),
                Some(t) => format!(
                    "only the application token(s) {}",
                    t.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let rate = |name: &str, per: &str| {
                kp.get(name)
                    .and_then(Value::as_u64)
                    .map(|n| format!(", at most {n} signatures per {per}"))
                    .unwrap_or_default()
            };
            format!(
                "replace version {} of the policy of the {} key {} (label {}) in domain \"{}\": {tokens} may sign with it{}{}",
                scalar(p, "from_version"),
                param(p, "algorithm"),
                param(p, "key"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                param(p, "domain"),
                rate("max_per_hour", "hour"),
                rate("max_per_day", "day"),
            )
        }
        GatedOp::SetPolicy => {
            let rules = p["policy"]["rules"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|r| format!("{} ({})", param(r, "name"), param(r, "effect")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(
                "replace version {} of the policy of wallet {} (label {}) in domain \"{}\" with rules: {}",
                scalar(p, "from_version"),
                param(p, "wallet"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                param(p, "domain"),
                if rules.is_empty() {
                    "none (deny everything)".to_owned()
                } else {
                    rules
                }
            )
        }
        GatedOp::SignWarm if p.get("eth_tx").is_some() => {
            let intent = &p["intent"];
            let call = match intent.get("call").and_then(Value::as_str) {
                Some("erc20.transfer") => format!(
                    "transfer {} base units of the token {} to {}",
                    param(intent, "token_amount"),
                    param(intent, "token"),
                    param(intent, "token_to")
                ),
                Some("transfer") => format!(
                    "send {} wei to {}",
                    param(intent, "value_wei"),
                    param(intent, "to")
                ),
                Some(other) => format!(
                    "make a {other} call to {} with {} wei",
                    intent
                        .get("to")
                        .and_then(Value::as_str)
                        .unwrap_or("a new contract"),
                    param(intent, "value_wei")
                ),
                None => "nothing".to_owned(),
            };
            let fields = intent
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => format!("{k}={s}"),
                            other => format!("{k}={other}"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(
                "sign an Ethereum transaction on chain {} from {} (wallet {}, address {}) in domain \"{}\": {call}, nonce {}, gas limit {}, fee cap {} wei/gas; decoded: {fields}",
                scalar(p, "chain_id"),
                param(p, "from"),
                param(p, "wallet"),
                scalar(p, "index"),
                param(p, "domain"),
                scalar(intent, "nonce"),
                scalar(intent, "gas_limit"),
                param(intent, "max_fee_per_gas")
            )
        }
        GatedOp::SignWarm if p.get("eth2_exit_epoch").is_some() => format!(
            "authorise the voluntary exit of validator key {} ({}, label {}) in domain \"{}\" at epoch {}: the validator leaves the chain for good",
            param(p, "key"),
            param(p, "public_key"),
            p.get("label").and_then(Value::as_str).unwrap_or("none"),
            param(p, "domain"),
            scalar(p, "eth2_exit_epoch")
        ),
        GatedOp::SignWarm if p.get("eos_tx").is_some() => {
            let intent = &p["intent"];
            let actions = |list: &str| {
                intent[list]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|a| match a["call"].as_str() {
                                Some("transfer") => format!(
                                    "{}::transfer {} from {} to {} (memo {:?})",
                                    param(a, "account"),
                                    antelope_asset(param(a, "amount"), param(a, "symbol")),
                                    param(a, "from"),
                                    param(a, "to"),
                                    param(a, "memo")
                                ),
                                _ => format!(
                                    "{}::{} ({} bytes of data)",
                                    param(a, "account"),
                                    param(a, "name"),
                                    scalar(a, "data_len")
                                ),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default()
            };
            let cfa = actions("context_free_actions");
            format!(
                "sign an EOS transaction on chain {} with wallet {} (label {}, address {}) in domain \"{}\", expiring at {} (Unix seconds): {}{}",
                param(p, "eos_chain_id"),
                param(p, "wallet"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                scalar(p, "index"),
                param(p, "domain"),
                scalar(intent, "expiration"),
                actions("actions"),
                if cfa.is_empty() {
                    String::new()
                } else {
                    format!("; context-free: {cfa}")
                }
            )
        }
        GatedOp::SignWarm if p.get("btc_psbt").is_some() => {
            let intent = &p["intent"];
            let list = |own: bool| {
                intent["outputs"]
                    .as_array()
                    .map(|o| {
                        o.iter()
                            .filter(|o| o["own"].is_string() == own)
                            .map(|o| {
                                format!(
                                    "{} sat to {}{}",
                                    scalar(o, "value_sat"),
                                    param(o, "address"),
                                    o["own"]
                                        .as_str()
                                        .map(|p| format!(" (the wallet's {p})"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            let pays = list(false);
            let change = list(true);
            format!(
                "sign the Bitcoin transaction {} from wallet {} (label {}) in domain \"{}\": pays {}; change {}; fee {} sat, from {} input(s) of the wallet",
                param(intent, "txid"),
                param(p, "wallet"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                param(p, "domain"),
                if pays.is_empty() {
                    "no one else".to_owned()
                } else {
                    pays
                },
                if change.is_empty() {
                    "none".to_owned()
                } else {
                    change
                },
                scalar(intent, "fee_sat"),
                intent["inputs"].as_array().map_or(0, Vec::len)
            )
        }
        GatedOp::SignWarm => {
            let what = match (
                p.get("digest").and_then(Value::as_str),
                p.get("message").and_then(Value::as_str),
            ) {
                (Some(d), _) => format!("the 32-byte digest {d}"),
                (_, Some(m)) => format!("the {}-byte message {m}", m.len() / 2),
                _ => "nothing".to_owned(),
            };
            format!(
                "sign {what} with the warm {} key {} (label {}) in domain \"{}\"",
                param(p, "algorithm"),
                param(p, "key"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                param(p, "domain")
            )
        }
        GatedOp::AddOperator => {
            let roles: Vec<&str> = p["roles"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let scope = p
                .get("domain")
                .and_then(Value::as_str)
                .map(|d| format!(", restricted to domain \"{d}\""))
                .unwrap_or_default();
            format!(
                "add the operator \"{}\" with role(s) {}{scope}",
                param(p, "name"),
                roles.join(", ")
            )
        }
        GatedOp::MigrateSeal => format!(
            "protect the vault's root key by {}{} instead of {}{} (the unseal shares stay valid)",
            param(p, "to"),
            p.get("to_key_label")
                .and_then(Value::as_str)
                .map(|l| {
                    let t = &p["to_token"];
                    format!(
                        " (key \"{l}\" on token \"{}\", serial {})",
                        t["label"].as_str().unwrap_or("?"),
                        t["serial"].as_str().unwrap_or("?")
                    )
                })
                .unwrap_or_default(),
            param(p, "from"),
            p.get("from_key_label")
                .and_then(Value::as_str)
                .map(|l| format!(" (token key \"{l}\")"))
                .unwrap_or_default(),
        ),
        GatedOp::SetAlgorithms => crate::algorithms::describe(p),
        GatedOp::CreateBackup => format!(
            "make an encrypted backup of the whole vault (every key, policy, operator and the audit log), whose key is split into {}-of-{} backup shares{}; the requester collects it once, within an hour",
            p["threshold"],
            p["shares"],
            p["custodian_keys"]
                .as_array()
                .map(|k| format!(
                    " encrypted to {}",
                    k.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                ))
                .unwrap_or_else(|| " handed to the requester in the clear".into())
        ),
        GatedOp::DestroyDomain => format!(
            "destroy the domain \"{}\" ({}) and its {} live key(s): its master key is erased and every key in it is gone for good",
            param(p, "name"),
            param(p, "domain_id"),
            p["keys"]
        ),
        GatedOp::ExportKey if p.get("eth2_keystore").is_some() => format!(
            "write the cold validator key {} ({}, label {}) in domain \"{}\" out as an EIP-2335 keystore ({}) for the requester, who may collect it within an hour of approval",
            param(p, "public_key"),
            param(p, "key"),
            p.get("label").and_then(Value::as_str).unwrap_or("none"),
            param(p, "domain"),
            param(p, "eth2_keystore"),
        ),
        GatedOp::ExportKey => {
            let custodians = p["custodian_keys"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            format!(
                "export the cold {} key {} (label {}) in domain \"{}\" as a bundle that any {} of these {} custodians can open: {}{}",
                param(p, "algorithm"),
                param(p, "key"),
                p.get("label").and_then(Value::as_str).unwrap_or("none"),
                param(p, "domain"),
                p["threshold"],
                custodians.len(),
                custodians.join(", "),
                if p["remove"].as_bool().unwrap_or(false) {
                    "; then remove it from the vault (offline until imported)"
                } else {
                    ""
                }
            )
        }
        GatedOp::ChangeRoles => {
            let list = |k: &str| -> String {
                p[k].as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .join(", ")
            };
            let scope = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .map_or_else(|| "all domains".to_owned(), |d| format!("domain \"{d}\""))
            };
            format!(
                "change the operator \"{}\" from role(s) {} in {} to role(s) {} in {}",
                param(p, "name"),
                list("from_roles"),
                scope("from_domain"),
                list("roles"),
                scope("domain")
            )
        }
        GatedOp::SetQuorum => {
            let scope = p
                .get("domain")
                .and_then(Value::as_str)
                .map_or_else(|| "vault-wide".to_owned(), |d| format!("in domain \"{d}\""));
            format!(
                "require {} approval(s) for {} {scope}",
                p["approvals"],
                param(p, "operation")
            )
        }
        GatedOp::DestroyKey => format!(
            "destroy the {} key {} (label {}) in domain \"{}\": its secret is erased for good",
            param(p, "algorithm"),
            param(p, "key"),
            p.get("label").and_then(Value::as_str).unwrap_or("none"),
            param(p, "domain")
        ),
        _ => op.as_str().to_owned(),
    }
}

impl Vault {
    /// Files a request if `op` needs approvals here; `None` means run it now.
    pub(crate) async fn gate(
        &self,
        ctx: &RequestCtx,
        op: GatedOp,
        params: Value,
        domain: Option<DomainId>,
        key: Option<KeyId>,
    ) -> Result<Option<Box<PendingView>>, ApiError> {
        self.gate_min(ctx, op, params, domain, key, 0).await
    }

    /// As [`Vault::gate`], needing at least `min` approvals (a policy rule's), whatever the
    /// quorum rules say.
    pub(crate) async fn gate_min(
        &self,
        ctx: &RequestCtx,
        op: GatedOp,
        params: Value,
        domain: Option<DomainId>,
        key: Option<KeyId>,
        min: u8,
    ) -> Result<Option<Box<PendingView>>, ApiError> {
        // A request carries an expiry: not filed while the clock cannot be trusted.
        if !self.clock_trusted() {
            return Err(ApiError::ClockUntrusted);
        }
        if self.dev || matches!(ctx.principal, Principal::Root { .. }) {
            return Ok(None);
        }
        if op == GatedOp::AddOperator && matches!(ctx.principal, Principal::Bootstrap { .. }) {
            return Ok(None);
        }
        let required = required_approvals(&self.store.quorum_rules()?, op, domain).max(min);
        let mut id = [0u8; 16];
        let mut nonce = [0u8; 32];
        self.entropy
            .fill(&mut id)
            .map_err(|_| ApiError::EntropyFailed)?;
        self.entropy
            .fill(&mut nonce)
            .map_err(|_| ApiError::EntropyFailed)?;
        let mut rec = PendingRecord {
            id: PendingId::from_random(id),
            op,
            params: canonical(&params),
            domain,
            key,
            requester: ctx.principal.audit_label(),
            requester_operator: match ctx.principal {
                Principal::Operator { id, .. } => Some(id),
                _ => None,
            },
            required,
            created_at: ctx.time,
            expires_at: ctx
                .time
                .saturating_add(ctx.request_expiry.unwrap_or(DEFAULT_EXPIRY)),
            nonce,
            hash: [0; 32],
            status: RequestStatus::Pending,
            result: None,
            decided_at: None,
            mac: [0; 32],
        };
        rec.hash = strongroom_crypto::request_hash(&self.vault_id, &rec);
        rec.mac = self.keystore.record_mac(&binding(&self.vault_id, &rec))?;
        ctx.tag(|t| {
            t.domain = domain;
            t.key = key;
        });
        self.commit(
            ctx,
            "request.create",
            vec![Mutation::CreatePending(rec.clone())],
        )
        .await?;
        Ok(Some(Box::new(self.view(ctx, &rec, &[])?)))
    }

    /// A stored request whose MAC and hash check out.
    /// An approved request of `op` that only its requester collects, once, within an hour of
    /// its approval (a keystore export, a backup): the request, and its result so far.
    pub(crate) fn collectable(
        &self,
        ctx: &RequestCtx,
        id: &str,
        op: GatedOp,
        what: &str,
    ) -> Result<(PendingRecord, Value), ApiError> {
        let rec = self.load_request(id)?;
        if rec.op != op || rec.requester != ctx.principal.audit_label() {
            return Err(ApiError::NotFound);
        }
        if rec.status != RequestStatus::Executed {
            return Err(ApiError::conflict(
                "request_not_approved",
                format!("the request is {}, not approved", rec.status.as_str()),
            ));
        }
        let result: Value = rec
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if result.get("collected_at").is_some() {
            return Err(collected_once(what));
        }
        if rec
            .decided_at
            .is_none_or(|at| ctx.time >= at.saturating_add(COLLECT_WITHIN))
        {
            return Err(ApiError::conflict(
                "collection_expired",
                format!("an approved {what} is collected within an hour of its approval"),
            ));
        }
        Ok((rec, result))
    }

    /// Closes a request [`Vault::collectable`] returned: collected now (with `extra` in its
    /// result), in the transaction that releases what it approved.
    pub(crate) fn collected(
        &self,
        ctx: &RequestCtx,
        rec: &PendingRecord,
        mut result: Value,
        extra: Value,
    ) -> Result<Mutation, ApiError> {
        result["collected_at"] = rfc3339(ctx.time).into();
        if let (Some(r), Value::Object(more)) = (result.as_object_mut(), extra) {
            r.extend(more);
        }
        self.decide(rec, RequestStatus::Executed, Some(result), ctx.time)
    }

    pub(crate) fn load_request(&self, id: &str) -> Result<PendingRecord, ApiError> {
        let id: PendingId = id.parse().map_err(|_| ApiError::NotFound)?;
        let rec = self.store.pending(id)?.ok_or(ApiError::NotFound)?;
        let genuine = self
            .keystore
            .verify_record_mac(&binding(&self.vault_id, &rec), &rec.mac)?
            && strongroom_crypto::request_hash(&self.vault_id, &rec) == rec.hash;
        if !genuine {
            tracing::warn!(request = %rec.id, "request row failed its MAC or hash check (edited row)");
            return Err(ApiError::conflict(
                "request_tampered",
                "the stored request fails its integrity check; it cannot be acted on",
            ));
        }
        Ok(rec)
    }

    pub(crate) fn decide(
        &self,
        rec: &PendingRecord,
        status: RequestStatus,
        result: Option<Value>,
        at: strongroom_core::UnixMillis,
    ) -> Result<Mutation, ApiError> {
        let mut next = PendingRecord {
            status,
            result: result.map(|r| canonical(&r)),
            decided_at: Some(at),
            ..rec.clone()
        };
        next.mac = self.keystore.record_mac(&binding(&self.vault_id, &next))?;
        Ok(Mutation::UpdatePending {
            expected_mac: rec.mac,
            record: next,
        })
    }

    /// The operator's current record, if it is genuine and enabled.
    fn live_operator(
        &self,
        id: strongroom_core::OperatorId,
    ) -> Result<Option<OperatorRecord>, ApiError> {
        let Some(op) = self.store.operator(id)? else {
            return Ok(None);
        };
        let genuine = self
            .keystore
            .verify_record_mac(&crate::operators::binding(&self.vault_id, &op), &op.mac)?;
        Ok((genuine && op.disabled_at.is_none()).then_some(op))
    }

    /// Approvals that still count: distinct, not by the requester, by enabled operators still
    /// allowed to approve, whose registered key signed this request's hash.
    fn valid_approvals(
        &self,
        rec: &PendingRecord,
        approvals: &[ApprovalRecord],
    ) -> Result<usize, ApiError> {
        let mut counted = BTreeSet::new();
        for a in approvals {
            if a.request != rec.id
                || Some(a.approver) == rec.requester_operator
                || Some(a.approver) == subject(rec)
            {
                continue;
            }
            let Some(op) = self.live_operator(a.approver)? else {
                continue;
            };
            let Some(key) = op.approval_key else { continue };
            if may_approve(op.roles, op.domain, rec.op, rec.domain)
                && strongroom_crypto::verify_approval(&key, &rec.hash, &a.signature)
            {
                counted.insert(a.approver);
            }
        }
        Ok(counted.len())
    }

    pub(crate) async fn approve(
        &self,
        ctx: &RequestCtx,
        id: &str,
        signature: &[u8],
    ) -> Result<PendingView, ApiError> {
        allow(ctx, &Operation::ApproveRequest)?;
        let Principal::Operator {
            id: approver,
            roles,
            domain: scope,
        } = ctx.principal
        else {
            return Err(ApiError::Forbidden);
        };
        let rec = self.load_request(id)?;
        ctx.tag(|t| {
            t.domain = rec.domain;
            t.key = rec.key;
        });
        if rec.status != RequestStatus::Pending {
            return Err(ApiError::conflict(
                "request_not_pending",
                format!("the request is {}", rec.status.as_str()),
            ));
        }
        if ctx.time > rec.expires_at {
            let m = self.decide(&rec, RequestStatus::Expired, None, ctx.time)?;
            self.commit_as(
                ctx,
                "request.expire",
                vec![m],
                strongroom_core::record::Outcome::Denied,
                Some("request_expired"),
            )
            .await?;
            return Err(ApiError::conflict(
                "request_expired",
                "the request expired before it was approved",
            ));
        }
        if rec.requester_operator == Some(approver) {
            return Err(ApiError::NotAllowed("own_request"));
        }
        if subject(&rec) == Some(approver) {
            return Err(ApiError::NotAllowed("own_role_change"));
        }
        if !may_approve(roles, scope, rec.op, rec.domain) {
            return Err(ApiError::NotAllowed("not_an_approver"));
        }
        let op = self
            .live_operator(approver)?
            .ok_or(ApiError::InvalidToken)?;
        let key = op
            .approval_key
            .ok_or(ApiError::NotAllowed("no_approval_key"))?;
        let signature: [u8; 64] = signature.try_into().map_err(|_| {
            ApiError::bad(
                "approval_mismatch",
                "an approval is a 64-byte Ed25519 signature",
            )
        })?;
        if !strongroom_crypto::verify_approval(&key, &rec.hash, &signature) {
            return Err(ApiError::bad(
                "approval_mismatch",
                "the signature is not over this request's hash (wrong request, wrong payload or wrong key)",
            ));
        }
        let approval = ApprovalRecord {
            request: rec.id,
            approver,
            signature,
            at: ctx.time,
        };
        self.commit(
            ctx,
            "request.approve",
            vec![Mutation::AddApproval(approval)],
        )
        .await
        .map_err(|e| match e {
            ApiError::Conflict { .. } => ApiError::conflict(
                "duplicate_approval",
                "you have already approved this request",
            ),
            other => other,
        })?;
        let approvals = self.store.approvals(rec.id)?;
        if self.valid_approvals(&rec, &approvals)? < usize::from(rec.required) {
            return self.view(ctx, &rec, &approvals);
        }
        let done = self.execute(ctx, &rec).await?;
        self.view(ctx, &done, &approvals)
    }

    /// Runs an approved request and closes it, in one transaction; a failure closes it as
    /// failed instead.
    async fn execute(
        &self,
        ctx: &RequestCtx,
        rec: &PendingRecord,
    ) -> Result<PendingRecord, ApiError> {
        ctx.tag(|t| t.acting_for = Some(rec.id));
        let params: Value = serde_json::from_str(&rec.params).map_err(|_| ApiError::Internal)?;
        let outcome = self.run(ctx, rec, &params).await;
        let (status, result) = match outcome {
            Ok(()) => return self.load_request(&rec.id.to_string()),
            // Policy refusals at execution (the policy or the daily limit changed since the
            // request was filed) close it too: a later approval must not sign it after all.
            Err(
                e @ (ApiError::Conflict { .. }
                | ApiError::NotFound
                | ApiError::BadRequest { .. }
                | ApiError::NotAllowed("policy_denied" | "daily_limit_exceeded")),
            ) => (RequestStatus::Failed, json!({"error": {"code": e.code()}})),
            Err(e) => return Err(e),
        };
        let m = self.decide(rec, status, Some(result), ctx.time)?;
        match self
            .commit_as(
                ctx,
                "request.failed",
                vec![m],
                strongroom_core::record::Outcome::Failed,
                None,
            )
            .await
        {
            Ok(()) => {}
            // Another node closed the request first (the same quorum completed there, or it
            // ran there): this approval still counted; the request's state is that node's.
            Err(ApiError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.load_request(&rec.id.to_string())
    }

    async fn run(&self, ctx: &RequestCtx, rec: &PendingRecord, p: &Value) -> Result<(), ApiError> {
        match rec.op {
            GatedOp::CreateDomain => {
                let new_keys = p
                    .get("new_keys")
                    .and_then(Value::as_str)
                    .unwrap_or("warm")
                    .parse()?;
                self.create_domain_prepared(ctx, param(p, "name"), new_keys, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            GatedOp::AddOperator => {
                let roles: Vec<String> = p["roles"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                self.create_operator_for_request(
                    ctx,
                    rec,
                    param(p, "name"),
                    &roles,
                    p.get("domain").and_then(Value::as_str),
                )
                .await
            }
            GatedOp::ChangeRoles => {
                let change = crate::operators::RoleChange::from_params(p)?;
                self.change_roles_prepared(ctx, &change, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            GatedOp::MigrateSeal => self
                .migrate_seal_prepared(ctx, p, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ()),
            GatedOp::CreateBackup => self.backup_approved(ctx, rec).await,
            GatedOp::SetAlgorithms => self
                .set_domain_algorithms_prepared(ctx, p, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ()),
            GatedOp::DestroyDomain => {
                let id = rec.domain.ok_or(ApiError::NotFound)?;
                self.destroy_domain_prepared(ctx, id, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            // Approved: the requester may now collect the keystore (the key must still be a
            // cold validator key then, too).
            GatedOp::ExportKey if p.get("eth2_keystore").is_some() => {
                let id = rec.key.ok_or(ApiError::NotFound)?;
                let k = self.store.key(id)?.ok_or(ApiError::NotFound)?;
                self.check_public(&k)?;
                crate::eth2::exportable_validator(&k)?;
                ctx.tag(|t| {
                    t.key = Some(k.id);
                    t.domain = Some(k.domain);
                });
                let finish = self.decide(
                    rec,
                    RequestStatus::Executed,
                    Some(json!({"key": id.to_string(), "eth2_keystore": "approved",
                        "collect": format!("strongroom eth2 export --request {} --password-file FILE --out FILE", rec.id)})),
                    ctx.time,
                )?;
                self.commit(ctx, "eth2.export_approved", vec![finish]).await
            }
            GatedOp::ExportKey => {
                let id = rec.key.ok_or(ApiError::NotFound)?;
                let (recipients, threshold, remove) = crate::bundles::export_params(p)?;
                self.export_key_prepared(ctx, id, &recipients, threshold, remove, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            GatedOp::SetPolicy if p.get("key_policy").is_some() => {
                self.set_key_policy_prepared(ctx, p, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
            }
            GatedOp::SetPolicy => {
                self.set_policy_prepared(ctx, p, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
            }
            GatedOp::SetQuorum => {
                let rule = self.rule_from_params(p)?;
                let finish = self.decide(
                    rec,
                    RequestStatus::Executed,
                    Some(json!({"rule": rule_json(&rule)})),
                    ctx.time,
                )?;
                self.commit(ctx, "quorum.set", vec![Mutation::SetQuorum(rule), finish])
                    .await
            }
            GatedOp::DestroyKey => {
                let id = rec.key.ok_or(ApiError::NotFound)?;
                self.destroy_key_prepared(ctx, id, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            GatedOp::WarmKey if p.get("validators").is_some() => self
                .eth2_promote_prepared(ctx, p, |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ()),
            GatedOp::WarmKey => {
                let id = rec.key.ok_or(ApiError::NotFound)?;
                // Approvers approved a step from the temperature they were shown.
                let now = self.store.key(id)?.ok_or(ApiError::NotFound)?.temperature;
                if now.as_str() != param(p, "from") {
                    return Err(ApiError::conflict(
                        "key_changed",
                        "the key's temperature changed since the request was filed",
                    ));
                }
                let to = param(p, "to").parse()?;
                let idle = p
                    .get("idle_seconds")
                    .and_then(Value::as_u64)
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| {
                        ApiError::bad("invalid_request_params", "the idle limit is unusable")
                    })?;
                self.set_temperature_prepared(ctx, id, to, idle, "key.warm", |v| {
                    self.decide(rec, RequestStatus::Executed, Some(v), ctx.time)
                        .map(Some)
                })
                .await
                .map(|_| ())
            }
            GatedOp::SignWarm => {
                let id = rec.key.ok_or(ApiError::NotFound)?;
                let found = self
                    .keys
                    .get(self.store.as_ref(), id)?
                    .ok_or(ApiError::NotFound)?;
                let (k, d) = (&found.0, &found.1);
                crate::service::note_deprecated(ctx, k, d);
                // Still warm (or hotter): a key frozen since the request was filed does not sign.
                if k.temperature == strongroom_core::temperature::Temperature::Cold {
                    return Err(ApiError::conflict(
                        "key_cold",
                        "the key was frozen after the request was filed",
                    ));
                }
                // A validator's voluntary exit, authorised: the remote signer may now sign it.
                if let Some(epoch) = p.get("eth2_exit_epoch").and_then(Value::as_u64) {
                    ctx.tag(|t| {
                        t.key = Some(k.id);
                        t.domain = Some(d.id);
                    });
                    let finish = self.decide(
                        rec,
                        RequestStatus::Executed,
                        Some(json!({"key": k.id.to_string(), "epoch": epoch, "authorized": true})),
                        ctx.time,
                    )?;
                    return self
                        .commit(
                            ctx,
                            "eth2.authorize_exit",
                            vec![finish, Mutation::Eth2AuthorizeExit { key: k.id, epoch }],
                        )
                        .await;
                }
                // A wallet's transaction: decoded again from the approved parameters.
                if ["eth_tx", "btc_psbt", "eos_tx"]
                    .iter()
                    .any(|f| p.get(*f).is_some())
                {
                    ctx.tag(|t| {
                        t.key = Some(k.id);
                        t.domain = Some(d.id);
                    });
                    let (signed, spends) = if p.get("eth_tx").is_some() {
                        let (s, m) = self.eth_sign_approved(ctx, k, d, p, rec.required)?;
                        (serde_json::to_value(&s), m)
                    } else if p.get("btc_psbt").is_some() {
                        let (s, m) = self.btc_sign_approved(ctx, k, d, p, rec.required)?;
                        (serde_json::to_value(&s), m)
                    } else {
                        let (s, m) = self.eos_sign_approved(ctx, k, d, p, rec.required)?;
                        (serde_json::to_value(&s), m)
                    };
                    let finish = self.decide(
                        rec,
                        RequestStatus::Executed,
                        Some(signed.map_err(|_| ApiError::Internal)?),
                        ctx.time,
                    )?;
                    // The signature is released only if its spend fits the limit, in the
                    // same transaction.
                    let mut mutations = vec![finish];
                    mutations.extend(spends);
                    return self
                        .commit(ctx, "key.sign", mutations)
                        .await
                        .map_err(crate::eth::limit_error);
                }
                let input = match (
                    p.get("digest").and_then(Value::as_str),
                    p.get("message").and_then(Value::as_str),
                ) {
                    (Some(dg), None) => crate::service::SignInput::Digest(
                        hex::decode(dg)
                            .ok()
                            .and_then(|b| b.try_into().ok())
                            .ok_or(ApiError::Internal)?,
                    ),
                    (None, Some(m)) => crate::service::SignInput::Message(
                        hex::decode(m).map_err(|_| ApiError::Internal)?,
                    ),
                    _ => return Err(ApiError::Internal),
                };
                ctx.tag(|t| {
                    t.key = Some(k.id);
                    t.domain = Some(d.id);
                });
                let sig = self.sign_prepared(k, d, &input)?;
                let finish = self.decide(
                    rec,
                    RequestStatus::Executed,
                    Some(serde_json::to_value(&sig).map_err(|_| ApiError::Internal)?),
                    ctx.time,
                )?;
                // The signature is released (in the request's result) only once this is
                // durable, and only within the key's rate.
                let mut mutations = vec![finish];
                mutations.extend(self.key_rate_mutations(k, ctx.time)?);
                self.commit(ctx, "key.sign", mutations)
                    .await
                    .map_err(crate::key_policy::rate_error)
            }
            _ => Err(ApiError::Internal),
        }
    }

    pub(crate) async fn reject(&self, ctx: &RequestCtx, id: &str) -> Result<PendingView, ApiError> {
        allow(ctx, &Operation::ApproveRequest)?;
        let rec = self.load_request(id)?;
        let may = match ctx.principal {
            Principal::Operator { id, roles, domain } => {
                rec.requester_operator == Some(id) || may_approve(roles, domain, rec.op, rec.domain)
            }
            _ => ctx.principal.audit_label() == rec.requester,
        };
        if !may {
            return Err(ApiError::NotAllowed("not_an_approver"));
        }
        if rec.status != RequestStatus::Pending {
            return Err(ApiError::conflict(
                "request_not_pending",
                format!("the request is {}", rec.status.as_str()),
            ));
        }
        ctx.tag(|t| {
            t.domain = rec.domain;
            t.key = rec.key;
        });
        let m = self.decide(&rec, RequestStatus::Rejected, None, ctx.time)?;
        self.commit(ctx, "request.reject", vec![m]).await?;
        let rec = self.load_request(id)?;
        let approvals = self.store.approvals(rec.id)?;
        self.view(ctx, &rec, &approvals)
    }

    fn may_see(ctx: &RequestCtx, rec: &PendingRecord) -> bool {
        match ctx.principal {
            Principal::Root { .. } => true,
            Principal::Operator {
                domain: Some(d), ..
            } => rec.domain == Some(d),
            Principal::Operator { .. } => true,
            _ => ctx.principal.audit_label() == rec.requester,
        }
    }

    pub(crate) fn show_request(&self, ctx: &RequestCtx, id: &str) -> Result<PendingView, ApiError> {
        allow(ctx, &Operation::ReadRequests)?;
        let rec = self.load_request(id)?;
        if !Self::may_see(ctx, &rec) {
            return Err(ApiError::NotFound);
        }
        let approvals = self.store.approvals(rec.id)?;
        self.view(ctx, &rec, &approvals)
    }

    pub(crate) fn list_requests(
        &self,
        ctx: &RequestCtx,
        status: Option<&str>,
    ) -> Result<Vec<PendingView>, ApiError> {
        allow(ctx, &Operation::ReadRequests)?;
        let status = status
            .map(|s| {
                RequestStatus::parse(s).ok_or_else(|| {
                    ApiError::bad(
                        "invalid_status",
                        "status is pending, executed, failed, rejected or expired",
                    )
                })
            })
            .transpose()?;
        let mut out = vec![];
        for rec in self.store.pendings(status)? {
            if !Self::may_see(ctx, &rec) {
                continue;
            }
            let approvals = self.store.approvals(rec.id)?;
            out.push(self.view(ctx, &rec, &approvals)?);
        }
        Ok(out)
    }

    fn view(
        &self,
        ctx: &RequestCtx,
        rec: &PendingRecord,
        approvals: &[ApprovalRecord],
    ) -> Result<PendingView, ApiError> {
        let params: Value = serde_json::from_str(&rec.params).unwrap_or(Value::Null);
        let mut result: Option<Value> = rec
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        // The private part of a result (an operator's enrolment secrets) is shown to the
        // requester only.
        let mut enrolment = None;
        if let Some(r) = result.as_mut()
            && let Some(sealed) = r.as_object_mut().and_then(|o| o.remove("enrolment_sealed"))
            && ctx.principal.audit_label() == rec.requester
            && let Some(blob) = sealed.as_str().and_then(|s| hex::decode(s).ok())
        {
            let plain = self.keystore.open_request_result(rec.id, &blob)?;
            enrolment = serde_json::from_slice(&plain).ok();
        }
        let mut names = vec![];
        for a in approvals {
            let name = self
                .store
                .operator(a.approver)?
                .map_or_else(|| a.approver.to_string(), |o| o.name.to_string());
            names.push(ApprovalView {
                approver: name,
                at: rfc3339(a.at),
            });
        }
        Ok(PendingView {
            request_id: rec.id.to_string(),
            status: rec.status.as_str(),
            operation: rec.op.as_str(),
            description: describe(rec.op, &params),
            params,
            params_canonical: rec.params.clone(),
            domain_id: rec.domain.map(|d| d.to_string()),
            key_id: rec.key.map(|k| k.to_string()),
            requester: rec.requester.clone(),
            required: rec.required,
            approvals: names,
            created_at: rfc3339(rec.created_at),
            expires_at: rfc3339(rec.expires_at),
            expires_at_ms: rec.expires_at.0,
            nonce: hex::encode(rec.nonce),
            hash: hex::encode(rec.hash),
            vault_id: self.vault_id.to_string(),
            result,
            enrolment,
            decided_at: rec.decided_at.map(rfc3339),
        })
    }

    fn rule_from_params(&self, p: &Value) -> Result<QuorumRule, ApiError> {
        let op: GatedOp = param(p, "operation").parse().map_err(|_| {
            ApiError::bad(
                "invalid_operation",
                "operation must be domain.create, operator.add, quorum.set or key.destroy",
            )
        })?;
        let approvals = p["approvals"]
            .as_u64()
            .and_then(|a| u8::try_from(a).ok())
            .filter(|a| (1..=MAX_APPROVALS).contains(a))
            .ok_or_else(|| {
                ApiError::bad("invalid_approvals", "approvals must be between 1 and 16")
            })?;
        let domain = match p.get("domain").and_then(Value::as_str) {
            None => None,
            Some(_) if op.vault_wide() => {
                return Err(ApiError::bad(
                    "invalid_parameters",
                    "this operation's quorum is vault-wide",
                ));
            }
            Some(name) => Some(
                self.store
                    .domain_by_name(&name.parse().map_err(|_| ApiError::NotFound)?)?
                    .ok_or(ApiError::NotFound)?
                    .id,
            ),
        };
        Ok(QuorumRule {
            domain,
            op,
            approvals,
        })
    }

    pub(crate) async fn set_quorum(
        &self,
        ctx: &RequestCtx,
        operation: &str,
        approvals: u8,
        domain: Option<&str>,
    ) -> Result<Gated<RuleView>, ApiError> {
        allow(ctx, &Operation::SetQuorum)?;
        let params = json!({"operation": operation, "approvals": approvals, "domain": domain});
        let params = strip_nulls(params);
        let rule = self.rule_from_params(&params)?;
        if let Some(p) = self
            .gate(ctx, GatedOp::SetQuorum, params, rule.domain, None)
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        self.commit(ctx, "quorum.set", vec![Mutation::SetQuorum(rule)])
            .await?;
        Ok(Gated::Done(rule_view(&rule)))
    }

    pub(crate) fn list_quorum(&self, ctx: &RequestCtx) -> Result<Vec<RuleView>, ApiError> {
        allow(ctx, &Operation::ReadQuorum)?;
        Ok(self.store.quorum_rules()?.iter().map(rule_view).collect())
    }
}

fn rule_view(r: &QuorumRule) -> RuleView {
    RuleView {
        operation: r.op.as_str(),
        domain_id: r.domain.map(|d| d.to_string()),
        approvals: r.approvals,
    }
}

fn rule_json(r: &QuorumRule) -> Value {
    json!({"operation": r.op.as_str(), "domain_id": r.domain.map(|d| d.to_string()), "approvals": r.approvals})
}

/// Drops null fields so that absent and null parameters hash the same.
pub(crate) fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": true, "y": null}], "c": "x\"y"}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":"x\"y","d":[1,{"y":null,"z":true}]},"b":1}"#
        );
    }
    #[test]
    fn antelope_amounts_read_as_people_write_them() {
        assert_eq!(antelope_asset("10000", "4,EOS"), "1.0000 EOS");
        assert_eq!(antelope_asset("5", "4,EOS"), "0.0005 EOS");
        assert_eq!(antelope_asset("123456", "0,RAM"), "123456 RAM");
        assert_eq!(antelope_asset("7", "odd"), "7 odd");
    }
}
