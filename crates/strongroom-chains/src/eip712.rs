//! EIP-712 typed data (`eth_signTypedData_v4`): the signing hash, and what the message grants.
//!
//! Typed data is where wallets are drained without a transaction: an EIP-2612 `Permit` or a
//! Uniswap Permit2 signature lets the spender move the signer's tokens later. So the vault
//! recognises them and names the spender, token and amount for policy, which denies them
//! unless a rule allows exactly that. A domain naming another chain is refused (replay).

use alloy_dyn_abi::TypedData;
use alloy_primitives::{Address, U256, address};
use serde_json::Value;

use crate::Error;

/// Uniswap's Permit2 contract, the same address on every chain.
pub const PERMIT2: Address = address!("0x000000000022D473030F116dDEE9F6B43aC78BA3");

/// Permit2's primary types (signed for the Permit2 contract, wherever it is claimed to be).
const PERMIT2_TYPES: [&str; 6] = [
    "PermitSingle",
    "PermitBatch",
    "PermitTransferFrom",
    "PermitBatchTransferFrom",
    "PermitWitnessTransferFrom",
    "PermitBatchWitnessTransferFrom",
];

/// What a typed-data message is, as far as policy is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypedKind {
    /// EIP-2612 `Permit(owner, spender, value, nonce, deadline)` on the token at the domain's
    /// verifying contract.
    Permit {
        /// Who may spend.
        spender: Address,
        /// The token.
        token: Address,
        /// How much.
        value: U256,
    },
    /// A Permit2 message (`PermitSingle`, `PermitBatch`, `PermitTransferFrom`, ...): the
    /// spender may move tokens through Permit2.
    Permit2 {
        /// Who may spend, where the message names one.
        spender: Option<Address>,
    },
    /// Any other typed data.
    Other,
}

/// A parsed typed-data request.
#[derive(Clone, Debug)]
pub struct TypedRequest {
    /// The EIP-712 signing hash.
    pub hash: [u8; 32],
    /// The primary type.
    pub primary_type: String,
    /// The domain's name, if any.
    pub domain_name: Option<String>,
    /// The domain's verifying contract, if any.
    pub verifying_contract: Option<Address>,
    /// What it grants.
    pub kind: TypedKind,
}

fn field_address(message: &Value, name: &str) -> Option<Address> {
    message.get(name)?.as_str()?.parse().ok()
}

fn field_u256(message: &Value, name: &str) -> Option<U256> {
    match message.get(name)? {
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => U256::from_str_radix(hex, 16).ok(),
            None => U256::from_str_radix(s, 10).ok(),
        },
        Value::Number(n) => n.as_u64().map(U256::from),
        _ => None,
    }
}

/// Parses `eth_signTypedData_v4` JSON for a wallet on `chain_id` and computes its hash.
///
/// # Errors
/// [`Error::InvalidTypedData`]; [`Error::ChainIdMismatch`] if the domain names another chain.
pub fn parse_typed_data(v: &Value, chain_id: u64) -> Result<TypedRequest, Error> {
    let data: TypedData = serde_json::from_value(v.clone()).map_err(|_| Error::InvalidTypedData)?;
    if let Some(c) = data.domain.chain_id {
        let c = u64::try_from(c).map_err(|_| Error::InvalidTypedData)?;
        if c != chain_id {
            return Err(Error::ChainIdMismatch {
                wallet: chain_id,
                transaction: c,
            });
        }
    }
    let hash = data
        .eip712_signing_hash()
        .map_err(|_| Error::InvalidTypedData)?
        .0;
    let verifying_contract = data.domain.verifying_contract;
    let m = &data.message;
    let kind = if verifying_contract == Some(PERMIT2)
        || PERMIT2_TYPES.contains(&data.primary_type.as_str())
    {
        TypedKind::Permit2 {
            spender: field_address(m, "spender"),
        }
    } else if data.primary_type == "Permit" {
        match (
            field_address(m, "spender"),
            verifying_contract,
            field_u256(m, "value"),
        ) {
            (Some(spender), Some(token), Some(value)) => TypedKind::Permit {
                spender,
                token,
                value,
            },
            // A "Permit" whose fields cannot be read is refused rather than treated as harmless.
            _ => return Err(Error::InvalidTypedData),
        }
    } else {
        TypedKind::Other
    };
    Ok(TypedRequest {
        hash,
        primary_type: data.primary_type.clone(),
        domain_name: data.domain.name.as_deref().map(str::to_owned),
        verifying_contract,
        kind,
    })
}

impl TypedRequest {
    /// The request as JSON: what the audit log keeps.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let addr = |a: &Address| Value::String(a.to_checksum(None));
        let mut m = serde_json::Map::new();
        m.insert("call".into(), self.call().into());
        m.insert("primary_type".into(), self.primary_type.clone().into());
        m.insert(
            "domain_name".into(),
            self.domain_name.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "verifying_contract".into(),
            self.verifying_contract.as_ref().map_or(Value::Null, addr),
        );
        match &self.kind {
            TypedKind::Permit { spender, value, .. } => {
                m.insert("spender".into(), addr(spender));
                m.insert("token_amount".into(), value.to_string().into());
            }
            TypedKind::Permit2 { spender } => {
                m.insert("spender".into(), spender.as_ref().map_or(Value::Null, addr));
            }
            TypedKind::Other => {}
        }
        m.insert(
            "hash".into(),
            format!("0x{}", alloy_primitives::hex::encode(self.hash)).into(),
        );
        Value::Object(m)
    }

    /// The policy call name: `permit`, `permit2` or `typed_data`.
    #[must_use]
    pub fn call(&self) -> &'static str {
        match self.kind {
            TypedKind::Permit { .. } => "permit",
            TypedKind::Permit2 { .. } => "permit2",
            TypedKind::Other => "typed_data",
        }
    }
}
