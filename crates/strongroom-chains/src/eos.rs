//! EOS / Antelope transactions: decode a packed transaction strictly (so that policy judges
//! its actions), compute what is signed (`sha256(chain id || packed transaction || sha256 of
//! the context-free data, or 32 zero bytes)`), and encode signatures as `SIG_K1_...`.

use bitcoin::hashes::{Hash as _, ripemd160, sha256};

use crate::Error;

/// One action of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The contract account.
    pub account: String,
    /// The action's name.
    pub name: String,
    /// Who authorises it: (actor, permission).
    pub authorization: Vec<(String, String)>,
    /// What it does, where strongroom knows the action.
    pub call: EosCall,
}

/// An action, decoded where strongroom knows its layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EosCall {
    /// A token `transfer(from, to, quantity, memo)` (the `eosio.token` layout).
    Transfer {
        /// Sender.
        from: String,
        /// Recipient.
        to: String,
        /// Amount in the token's smallest unit.
        amount: u64,
        /// Symbol: precision and code, e.g. `4,EOS`.
        symbol: String,
        /// The memo.
        memo: String,
    },
    /// Any other action (its data length).
    Other {
        /// Data length in bytes.
        len: usize,
    },
}

/// A decoded packed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EosTransaction {
    /// Expiration (seconds since the epoch).
    pub expiration: u32,
    /// Context-free actions (policy refuses them unless allowed as contract calls).
    pub context_free_actions: Vec<Action>,
    /// The actions.
    pub actions: Vec<Action>,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(Error::InvalidTransaction("packed transaction is truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// LEB128, at most 5 bytes and 32 bits, canonical (no redundant trailing zero group).
    fn varuint32(&mut self) -> Result<u32, Error> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(Error::InvalidTransaction("non-canonical varuint32"));
                }
                return u32::try_from(value)
                    .map_err(|_| Error::InvalidTransaction("varuint32 overflows"));
            }
        }
        Err(Error::InvalidTransaction("varuint32 is too long"))
    }

    fn bytes(&mut self) -> Result<&[u8], Error> {
        let n = self.varuint32()? as usize;
        self.take(n)
    }

    fn name(&mut self) -> Result<String, Error> {
        name_to_string(self.u64()?)
    }

    fn count(&mut self) -> Result<usize, Error> {
        let n = self.varuint32()? as usize;
        // Each element takes at least one byte: a count beyond what is left is a lie.
        if n > self.0.len() {
            return Err(Error::InvalidTransaction("vector length exceeds the data"));
        }
        Ok(n)
    }
}

const NAME_CHARS: &[u8; 32] = b".12345abcdefghijklmnopqrstuvwxyz";

/// An Antelope name from its 64-bit form; refused unless it is the canonical encoding of its
/// text (so that two encodings cannot name one account).
fn name_to_string(v: u64) -> Result<String, Error> {
    let mut chars = [b'.'; 13];
    let mut tmp = v;
    for i in 0..13 {
        let (mask, shift) = if i == 0 { (0x0f, 4) } else { (0x1f, 5) };
        chars[12 - i] = NAME_CHARS[(tmp & mask) as usize];
        tmp >>= shift;
    }
    let text = String::from_utf8_lossy(&chars)
        .trim_end_matches('.')
        .to_owned();
    if string_to_name(&text) == Some(v) {
        Ok(text)
    } else {
        Err(Error::InvalidTransaction("non-canonical account name"))
    }
}

/// The 64-bit form of an Antelope name (`None` if it is not one).
#[must_use]
pub fn string_to_name(s: &str) -> Option<u64> {
    if s.len() > 13 {
        return None;
    }
    let mut v: u64 = 0;
    for (i, c) in s.bytes().enumerate() {
        let sym = NAME_CHARS.iter().position(|x| *x == c)? as u64;
        if i < 12 {
            v |= (sym & 0x1f) << (64 - 5 * (i + 1));
        } else {
            if sym > 0x0f {
                return None;
            }
            v |= sym;
        }
    }
    Some(v)
}

fn symbol(v: u64) -> Result<String, Error> {
    let precision = v & 0xff;
    let code: Vec<u8> = (1..8)
        .map(|i| ((v >> (8 * i)) & 0xff) as u8)
        .take_while(|b| *b != 0)
        .collect();
    // Nothing may follow the code's terminating zero; a 7-letter code fills the word (found
    // by fuzzing: a plain shift by 64 bits overflows).
    let valid = !code.is_empty()
        && code.iter().all(u8::is_ascii_uppercase)
        && v.checked_shr(8 * (code.len() as u32 + 1)).unwrap_or(0) == 0;
    if !valid || precision > 18 {
        return Err(Error::InvalidTransaction("invalid token symbol"));
    }
    Ok(format!("{precision},{}", String::from_utf8_lossy(&code)))
}

fn action(r: &mut Reader<'_>) -> Result<Action, Error> {
    let account = r.name()?;
    let name = r.name()?;
    let n = r.count()?;
    let mut authorization = Vec::with_capacity(n);
    for _ in 0..n {
        authorization.push((r.name()?, r.name()?));
    }
    let data = r.bytes()?;
    let call = if name == "transfer" {
        let mut d = Reader(data);
        let decoded = (|| {
            let from = d.name()?;
            let to = d.name()?;
            let amount = d.u64()?;
            let symbol = symbol(d.u64()?)?;
            let memo = String::from_utf8(d.bytes()?.to_vec())
                .map_err(|_| Error::InvalidTransaction("memo is not UTF-8"))?;
            Ok::<_, Error>((from, to, amount, symbol, memo))
        })();
        match decoded {
            // A negative amount (as i64) is not a transfer anyone can mean.
            Ok((from, to, amount, symbol, memo)) if d.0.is_empty() && amount <= i64::MAX as u64 => {
                EosCall::Transfer {
                    from,
                    to,
                    amount,
                    symbol,
                    memo,
                }
            }
            // A `transfer` that does not decode exactly is refused: a contract would read it
            // its own way.
            _ => return Err(Error::InvalidTransaction("malformed transfer action")),
        }
    } else {
        EosCall::Other { len: data.len() }
    };
    Ok(Action {
        account,
        name,
        authorization,
        call,
    })
}

/// Decodes a packed transaction; every byte must be accounted for.
///
/// # Errors
/// [`Error::InvalidTransaction`].
pub fn decode_transaction(packed: &[u8]) -> Result<EosTransaction, Error> {
    let mut r = Reader(packed);
    let expiration = r.u32()?;
    let _ref_block_num = r.u16()?;
    let _ref_block_prefix = r.u32()?;
    let _max_net_usage_words = r.varuint32()?;
    let _max_cpu_usage_ms = r.u8()?;
    let _delay_sec = r.varuint32()?;
    let n = r.count()?;
    let mut context_free_actions = Vec::with_capacity(n);
    for _ in 0..n {
        context_free_actions.push(action(&mut r)?);
    }
    let n = r.count()?;
    let mut actions = Vec::with_capacity(n);
    for _ in 0..n {
        actions.push(action(&mut r)?);
    }
    let extensions = r.count()?;
    if extensions != 0 {
        return Err(Error::InvalidTransaction(
            "transaction extensions are not supported",
        ));
    }
    if !r.0.is_empty() {
        return Err(Error::InvalidTransaction(
            "trailing bytes after the transaction",
        ));
    }
    if actions.is_empty() {
        return Err(Error::InvalidTransaction("a transaction without actions"));
    }
    Ok(EosTransaction {
        expiration,
        context_free_actions,
        actions,
    })
}

/// What is signed: `sha256(chain id || packed transaction || cfd hash)`, where the cfd hash
/// is the SHA-256 of the packed context-free data, or 32 zero bytes without any (nothing
/// given, or a packed empty vector).
#[must_use]
pub fn signing_digest(chain_id: &[u8; 32], packed: &[u8], context_free_data: &[u8]) -> [u8; 32] {
    // A node hashes the packed `vector<bytes>`, and uses zeros when it has no entries: a
    // packed empty vector (`00`) is no data too.
    let cfd = if context_free_data.is_empty() || context_free_data == [0] {
        [0u8; 32]
    } else {
        sha256::Hash::hash(context_free_data).to_byte_array()
    };
    let mut engine = sha256::Hash::engine();
    bitcoin::hashes::HashEngine::input(&mut engine, chain_id);
    bitcoin::hashes::HashEngine::input(&mut engine, packed);
    bitcoin::hashes::HashEngine::input(&mut engine, &cfd);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// Whether a compact signature is canonical in Antelope's sense: `r` and `s` both fit 32
/// bytes without their top bit and are not shorter (the node refuses others).
#[must_use]
pub fn is_canonical(rs: &[u8; 64]) -> bool {
    rs[0] & 0x80 == 0
        && !(rs[0] == 0 && rs[1] & 0x80 == 0)
        && rs[32] & 0x80 == 0
        && !(rs[32] == 0 && rs[33] & 0x80 == 0)
}

/// `SIG_K1_` + base58(i || r || s || first 4 bytes of RIPEMD-160(i || r || s || "K1")), with
/// `i = 27 + 4 + recovery id` (compressed key).
#[must_use]
pub fn sig_k1(rs: &[u8; 64], recovery_id: u8) -> String {
    let mut data = Vec::with_capacity(69);
    data.push(27 + 4 + recovery_id);
    data.extend_from_slice(rs);
    let mut suffixed = data.clone();
    suffixed.extend_from_slice(b"K1");
    let check = ripemd160::Hash::hash(&suffixed);
    data.extend_from_slice(&check.as_byte_array()[..4]);
    format!("SIG_K1_{}", bitcoin::base58::encode(&data))
}

impl EosTransaction {
    /// The transaction as JSON: what the audit log keeps.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let actions = |list: &[Action]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|a| {
                    let mut v = serde_json::json!({
                        "account": a.account, "name": a.name,
                        "authorization": a.authorization.iter()
                            .map(|(actor, perm)| format!("{actor}@{perm}"))
                            .collect::<Vec<_>>(),
                    });
                    match &a.call {
                        EosCall::Transfer {
                            from,
                            to,
                            amount,
                            symbol,
                            memo,
                        } => {
                            v["call"] = "transfer".into();
                            v["from"] = from.clone().into();
                            v["to"] = to.clone().into();
                            v["amount"] = amount.to_string().into();
                            v["symbol"] = symbol.clone().into();
                            v["memo"] = memo.clone().into();
                        }
                        EosCall::Other { len } => {
                            v["call"] = "contract".into();
                            v["data_len"] = (*len).into();
                        }
                    }
                    v
                })
                .collect()
        };
        serde_json::json!({
            "expiration": self.expiration,
            "context_free_actions": actions(&self.context_free_actions),
            "actions": actions(&self.actions),
        })
    }
}
