//! Ethereum transactions: parse the JSON-RPC transaction object strictly, decode what it does
//! (the intent that policy judges), compute its signing hash and assemble the signed raw
//! transaction; EIP-191 messages too.
//!
//! Types are alloy's (`TxLegacy` with EIP-155, `TxEip2930`, `TxEip1559`), so the bytes hashed
//! and the bytes sent are the ones every Ethereum client agrees on. A transaction that is
//! invalid by its own rules (a priority fee above the fee cap, another chain's id, mixed fee
//! fields, a bad address checksum) is refused here, before anything is signed.

use alloy_consensus::transaction::RlpEcdsaEncodableTx;
use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use bitcoin::secp256k1::PublicKey;
use serde_json::{Map, Value};

use crate::Error;

/// `transfer(address,uint256)`.
pub const ERC20_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `approve(address,uint256)`.
pub const ERC20_APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
/// `transferFrom(address,address,uint256)`.
pub const ERC20_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// An unsigned Ethereum transaction of a type strongroom signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EthTx {
    /// Type 0 with EIP-155 replay protection (the chain id is always set).
    Legacy(TxLegacy),
    /// Type 1 (access lists).
    Eip2930(TxEip2930),
    /// Type 2 (fee market).
    Eip1559(TxEip1559),
}

/// What a transaction does, decoded from its bytes: policy is judged on this, never on what a
/// client says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthIntent {
    /// EIP-2718 type (0, 1 or 2).
    pub tx_type: u8,
    /// The chain id it is signed for.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The recipient; `None` deploys a contract.
    pub to: Option<Address>,
    /// Native value sent, in wei.
    pub value: U256,
    /// Gas limit.
    pub gas_limit: u64,
    /// Most the sender pays per gas: `gasPrice`, or `maxFeePerGas`.
    pub max_fee_per_gas: u128,
    /// Type 2 only: the priority fee cap.
    pub max_priority_fee_per_gas: Option<u128>,
    /// The most the transaction can cost in fees: gas limit times the fee cap, in wei.
    pub max_fee: U256,
    /// What the call data asks for.
    pub call: EthCall,
}

/// The call a transaction makes, decoded from its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EthCall {
    /// No data: a plain transfer of the native coin.
    None,
    /// ERC-20 `transfer(to, amount)` on the token at the transaction's `to`.
    Erc20Transfer {
        /// Who receives the tokens.
        to: Address,
        /// Amount in the token's base units.
        amount: U256,
    },
    /// ERC-20 `approve(spender, amount)`: lets `spender` move the sender's tokens.
    Erc20Approve {
        /// Who may spend.
        spender: Address,
        /// How much.
        amount: U256,
    },
    /// ERC-20 `transferFrom(from, to, amount)`.
    Erc20TransferFrom {
        /// Whose tokens move.
        from: Address,
        /// Who receives them.
        to: Address,
        /// Amount in base units.
        amount: U256,
    },
    /// Contract creation with this much init code.
    Deploy {
        /// Init code length in bytes.
        len: usize,
    },
    /// Anything else: a call strongroom does not decode.
    Unknown {
        /// The first four bytes, if there are four.
        selector: Option<[u8; 4]>,
        /// Data length in bytes.
        len: usize,
    },
}

impl EthCall {
    /// A stable name for policies and audit records.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            EthCall::None => "transfer",
            EthCall::Erc20Transfer { .. } => "erc20.transfer",
            EthCall::Erc20Approve { .. } => "erc20.approve",
            EthCall::Erc20TransferFrom { .. } => "erc20.transferFrom",
            EthCall::Deploy { .. } => "deploy",
            EthCall::Unknown { .. } => "unknown_call",
        }
    }
}

fn word_address(word: &[u8]) -> Option<Address> {
    // An ABI address is 32 bytes with 12 leading zeros; anything else is not canonical.
    let (pad, addr) = word.split_at(12);
    pad.iter()
        .all(|b| *b == 0)
        .then(|| Address::from_slice(addr))
}

/// Decodes call data sent to `to` (`None`: a deployment).
#[must_use]
pub fn decode_call(to: Option<Address>, data: &[u8]) -> EthCall {
    if to.is_none() {
        return EthCall::Deploy { len: data.len() };
    }
    if data.is_empty() {
        return EthCall::None;
    }
    let unknown = EthCall::Unknown {
        selector: data.get(..4).and_then(|s| s.try_into().ok()),
        len: data.len(),
    };
    let Some((selector, args)) = data.split_first_chunk::<4>() else {
        return unknown;
    };
    let words: Vec<&[u8]> = args.chunks(32).collect();
    // Exact lengths only: trailing bytes would hide something from a reader of the intent.
    let decoded = match (*selector, words.as_slice()) {
        (ERC20_TRANSFER, [a, n]) if args.len() == 64 => {
            word_address(a).map(|to| EthCall::Erc20Transfer {
                to,
                amount: U256::from_be_slice(n),
            })
        }
        (ERC20_APPROVE, [a, n]) if args.len() == 64 => {
            word_address(a).map(|spender| EthCall::Erc20Approve {
                spender,
                amount: U256::from_be_slice(n),
            })
        }
        (ERC20_TRANSFER_FROM, [f, t, n]) if args.len() == 96 => {
            match (word_address(f), word_address(t)) {
                (Some(from), Some(to)) => Some(EthCall::Erc20TransferFrom {
                    from,
                    to,
                    amount: U256::from_be_slice(n),
                }),
                _ => None,
            }
        }
        _ => None,
    };
    decoded.unwrap_or(unknown)
}

/// The call data of ERC-20 `transfer(to, amount)`.
#[must_use]
pub fn erc20_transfer_data(to: Address, amount: U256) -> Vec<u8> {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&ERC20_TRANSFER);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(to.as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data
}

const FIELDS: [&str; 14] = [
    "type",
    "chainId",
    "nonce",
    "to",
    "from",
    "value",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "data",
    "input",
    "accessList",
];

fn bad(what: &'static str) -> Error {
    Error::InvalidTransaction(what)
}

/// A hex quantity (`0x` and up to 64 hex digits; JSON-RPC's encoding).
fn quantity(v: &Value, what: &'static str) -> Result<U256, Error> {
    let s = v.as_str().ok_or(bad(what))?;
    let digits = s.strip_prefix("0x").ok_or(bad(what))?;
    if digits.is_empty() || digits.len() > 64 {
        return Err(bad(what));
    }
    U256::from_str_radix(digits, 16).map_err(|_| bad(what))
}

fn small<T: TryFrom<U256>>(v: &Value, what: &'static str) -> Result<T, Error> {
    T::try_from(quantity(v, what)?).map_err(|_| bad(what))
}

fn hex_bytes(v: &Value, what: &'static str) -> Result<Vec<u8>, Error> {
    let s = v.as_str().ok_or(bad(what))?;
    let digits = s.strip_prefix("0x").ok_or(bad(what))?;
    alloy_primitives::hex::decode(digits).map_err(|_| bad(what))
}

/// An address; mixed case must be a valid EIP-55 checksum (a typo is refused, not signed).
///
/// # Errors
/// [`Error::InvalidAddress`].
pub fn parse_address(s: &str) -> Result<Address, Error> {
    let digits = s.strip_prefix("0x").ok_or(Error::InvalidAddress)?;
    if digits.len() != 40 {
        return Err(Error::InvalidAddress);
    }
    let mixed = digits.chars().any(|c| c.is_ascii_lowercase())
        && digits.chars().any(|c| c.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(s, None).map_err(|_| Error::InvalidAddress)
    } else {
        s.parse().map_err(|_| Error::InvalidAddress)
    }
}

fn address(v: &Value) -> Result<Address, Error> {
    parse_address(v.as_str().ok_or(Error::InvalidAddress)?)
}

fn access_list(v: &Value) -> Result<AccessList, Error> {
    let items = v.as_array().ok_or(bad("accessList"))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item.as_object().ok_or(bad("accessList"))?;
        if obj.keys().any(|k| k != "address" && k != "storageKeys") {
            return Err(bad("accessList"));
        }
        let keys = obj
            .get("storageKeys")
            .and_then(Value::as_array)
            .ok_or(bad("accessList"))?
            .iter()
            .map(|k| {
                let b = hex_bytes(k, "accessList")?;
                <[u8; 32]>::try_from(b.as_slice())
                    .map(B256::from)
                    .map_err(|_| bad("accessList"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(AccessListItem {
            address: address(obj.get("address").ok_or(bad("accessList"))?)?,
            storage_keys: keys,
        });
    }
    Ok(AccessList(out))
}

/// A transaction to sign, as the client described it, and the sender it names (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTx {
    /// The transaction.
    pub tx: EthTx,
    /// `from`, if given: it must be the signing address.
    pub from: Option<Address>,
}

/// Parses a JSON-RPC transaction object for a wallet pinned to `chain_id`. Quantities are
/// `0x` hex; `type` is inferred from the fee fields when absent; a missing `chainId` is the
/// wallet's.
///
/// # Errors
/// [`Error::InvalidTransaction`] (naming the field), [`Error::InvalidAddress`],
/// [`Error::ChainIdMismatch`], [`Error::FeeCapBelowPriorityFee`],
/// [`Error::UnsupportedTxType`], [`Error::Eip7702Refused`].
pub fn parse_transaction(v: &Value, chain_id: u64) -> Result<ParsedTx, Error> {
    let o: &Map<String, Value> = v.as_object().ok_or(bad("transaction object"))?;
    if let Some(unknown) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Error::UnknownField(unknown.clone()));
    }
    // Null means absent, as in JSON-RPC.
    let get = |k: &str| o.get(k).filter(|v| !v.is_null());
    let has = |k: &str| get(k).is_some();
    let ty: u8 = match get("type") {
        Some(t) => small(t, "type")?,
        None if has("maxFeePerGas") || has("maxPriorityFeePerGas") => 2,
        None if has("accessList") => 1,
        None => 0,
    };
    match ty {
        0..=2 => {}
        4 => return Err(Error::Eip7702Refused),
        other => return Err(Error::UnsupportedTxType(other)),
    }
    let tx_chain: u64 = match get("chainId") {
        Some(c) => small(c, "chainId")?,
        None => chain_id,
    };
    if tx_chain != chain_id {
        return Err(Error::ChainIdMismatch {
            wallet: chain_id,
            transaction: tx_chain,
        });
    }
    let nonce: u64 = small(get("nonce").ok_or(bad("nonce"))?, "nonce")?;
    let gas_limit: u64 = match (get("gas"), get("gasLimit")) {
        (Some(g), None) | (None, Some(g)) => small(g, "gas")?,
        _ => return Err(bad("gas")),
    };
    let to = match get("to") {
        Some(t) => TxKind::Call(address(t)?),
        None => TxKind::Create,
    };
    let value = get("value").map_or(Ok(U256::ZERO), |v| quantity(v, "value"))?;
    let input: Bytes = match (get("data"), get("input")) {
        (None, None) => Bytes::new(),
        (Some(d), None) | (None, Some(d)) => hex_bytes(d, "data")?.into(),
        (Some(d), Some(i)) => {
            let d = hex_bytes(d, "data")?;
            if d != hex_bytes(i, "input")? {
                return Err(bad("data and input differ"));
            }
            d.into()
        }
    };
    let from = get("from").map(address).transpose()?;
    // Each type has exactly its own fee fields: a stray one means the client meant another
    // type than the bytes we would sign.
    let tx = match ty {
        0 | 1 => {
            if has("maxFeePerGas") || has("maxPriorityFeePerGas") {
                return Err(bad("fee fields of another type"));
            }
            let gas_price: u128 = small(get("gasPrice").ok_or(bad("gasPrice"))?, "gasPrice")?;
            if ty == 0 {
                if has("accessList") {
                    return Err(bad("accessList on a legacy transaction"));
                }
                EthTx::Legacy(TxLegacy {
                    chain_id: Some(chain_id),
                    nonce,
                    gas_price,
                    gas_limit,
                    to,
                    value,
                    input,
                })
            } else {
                EthTx::Eip2930(TxEip2930 {
                    chain_id,
                    nonce,
                    gas_price,
                    gas_limit,
                    to,
                    value,
                    access_list: get("accessList")
                        .map_or(Ok(AccessList::default()), access_list)?,
                    input,
                })
            }
        }
        _ => {
            if has("gasPrice") {
                return Err(bad("fee fields of another type"));
            }
            let max_fee: u128 = small(
                get("maxFeePerGas").ok_or(bad("maxFeePerGas"))?,
                "maxFeePerGas",
            )?;
            let priority: u128 = small(
                get("maxPriorityFeePerGas").ok_or(bad("maxPriorityFeePerGas"))?,
                "maxPriorityFeePerGas",
            )?;
            if priority > max_fee {
                return Err(Error::FeeCapBelowPriorityFee);
            }
            EthTx::Eip1559(TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority,
                to,
                value,
                access_list: get("accessList").map_or(Ok(AccessList::default()), access_list)?,
                input,
            })
        }
    };
    // Call data that starts like a token call but does not decode exactly would be read as
    // an unknown call by policy, while the token contract (which ignores trailing bytes and
    // may mask address padding) runs it as the transfer it looks like: refuse it.
    if let EthCall::Unknown {
        selector: Some(s), ..
    } = tx.intent().call
        && [ERC20_TRANSFER, ERC20_APPROVE, ERC20_TRANSFER_FROM].contains(&s)
    {
        return Err(bad("malformed ERC-20 call data"));
    }
    Ok(ParsedTx { tx, from })
}

impl EthTx {
    /// The hash that is signed (keccak-256 of the type byte and the RLP of the fields; for
    /// legacy, EIP-155's nine fields).
    #[must_use]
    pub fn signing_hash(&self) -> [u8; 32] {
        match self {
            EthTx::Legacy(t) => t.signature_hash(),
            EthTx::Eip2930(t) => t.signature_hash(),
            EthTx::Eip1559(t) => t.signature_hash(),
        }
        .0
    }

    /// The signed transaction as broadcast (EIP-2718 envelope; for legacy, the RLP list with
    /// EIP-155's `v`), from a low-S `r || s` and its recovery id.
    #[must_use]
    pub fn signed_raw(&self, rs: &[u8; 64], recovery_id: u8) -> Vec<u8> {
        let sig = Signature::new(
            U256::from_be_slice(&rs[..32]),
            U256::from_be_slice(&rs[32..]),
            recovery_id & 1 == 1,
        );
        let mut out = Vec::new();
        match self {
            EthTx::Legacy(t) => t.eip2718_encode(&sig, &mut out),
            EthTx::Eip2930(t) => t.eip2718_encode(&sig, &mut out),
            EthTx::Eip1559(t) => t.eip2718_encode(&sig, &mut out),
        }
        out
    }

    /// What the transaction does.
    #[must_use]
    pub fn intent(&self) -> EthIntent {
        let (tx_type, chain_id, nonce, to, value, gas_limit, max_fee, priority, input) = match self
        {
            EthTx::Legacy(t) => (
                0,
                t.chain_id.unwrap_or_default(),
                t.nonce,
                t.to,
                t.value,
                t.gas_limit,
                t.gas_price,
                None,
                &t.input,
            ),
            EthTx::Eip2930(t) => (
                1,
                t.chain_id,
                t.nonce,
                t.to,
                t.value,
                t.gas_limit,
                t.gas_price,
                None,
                &t.input,
            ),
            EthTx::Eip1559(t) => (
                2,
                t.chain_id,
                t.nonce,
                t.to,
                t.value,
                t.gas_limit,
                t.max_fee_per_gas,
                Some(t.max_priority_fee_per_gas),
                &t.input,
            ),
        };
        let to = to.to().copied();
        EthIntent {
            tx_type,
            chain_id,
            nonce,
            to,
            value,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority,
            max_fee: U256::from(gas_limit).saturating_mul(U256::from(max_fee)),
            call: decode_call(to, input),
        }
    }
}

/// The Ethereum address of a compressed secp256k1 public key: the last 20 bytes of keccak-256
/// of the uncompressed key.
///
/// # Errors
/// [`Error::InvalidPublicKey`].
pub fn address_of(public_key: &[u8; 33]) -> Result<Address, Error> {
    let pk = PublicKey::from_slice(public_key).map_err(|_| Error::InvalidPublicKey)?;
    let uncompressed = pk.serialize_uncompressed();
    Ok(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}

/// The transaction hash of a signed raw transaction.
#[must_use]
pub fn transaction_hash(raw: &[u8]) -> [u8; 32] {
    keccak256(raw).0
}

/// EIP-191 `personal_sign`: keccak-256 of `"\x19Ethereum Signed Message:\n" || len || message`.
#[must_use]
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    alloy_primitives::eip191_hash_message(message).0
}

impl EthIntent {
    /// The intent as JSON: what approvers are shown and the audit log keeps.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let addr = |a: &Address| Value::String(a.to_checksum(None));
        let mut m = Map::new();
        m.insert("type".into(), self.tx_type.into());
        m.insert("chain_id".into(), self.chain_id.into());
        m.insert("nonce".into(), self.nonce.into());
        m.insert("to".into(), self.to.as_ref().map_or(Value::Null, addr));
        m.insert("value_wei".into(), self.value.to_string().into());
        m.insert("gas_limit".into(), self.gas_limit.into());
        m.insert(
            "max_fee_per_gas".into(),
            self.max_fee_per_gas.to_string().into(),
        );
        m.insert("max_fee_wei".into(), self.max_fee.to_string().into());
        if let Some(p) = self.max_priority_fee_per_gas {
            m.insert("max_priority_fee_per_gas".into(), p.to_string().into());
        }
        m.insert("call".into(), self.call.kind().into());
        match &self.call {
            EthCall::Erc20Transfer { to, amount } => {
                m.insert("token".into(), self.to.as_ref().map_or(Value::Null, addr));
                m.insert("token_to".into(), addr(to));
                m.insert("token_amount".into(), amount.to_string().into());
            }
            EthCall::Erc20Approve { spender, amount } => {
                m.insert("token".into(), self.to.as_ref().map_or(Value::Null, addr));
                m.insert("spender".into(), addr(spender));
                m.insert("token_amount".into(), amount.to_string().into());
            }
            EthCall::Erc20TransferFrom { from, to, amount } => {
                m.insert("token".into(), self.to.as_ref().map_or(Value::Null, addr));
                m.insert("token_from".into(), addr(from));
                m.insert("token_to".into(), addr(to));
                m.insert("token_amount".into(), amount.to_string().into());
            }
            EthCall::Deploy { len } => {
                m.insert("data_len".into(), (*len).into());
            }
            EthCall::Unknown { selector, len } => {
                m.insert(
                    "selector".into(),
                    selector.map_or(Value::Null, |s| {
                        format!("0x{}", alloy_primitives::hex::encode(s)).into()
                    }),
                );
                m.insert("data_len".into(), (*len).into());
            }
            EthCall::None => {}
        }
        Value::Object(m)
    }
}
