//! Wallet policies: a small declarative language of ordered, named rules, judged on the
//! *decoded intent* of what a wallet is asked to sign, never on a client's description.
//!
//! A policy document (JSON, `docs/formats.md` and the README have examples) holds named
//! address lists with per-entry cooling-off, a deny list, allowed hours, and an ordered list
//! of rules. Evaluation is fixed and total: the deny list, then the hours, then the first rule
//! whose every condition holds decides (`allow`, `deny`, or `quorum` with a number of
//! approvals); nothing matching is a denial by the implicit rule `default-deny`. Amounts are
//! 256-bit. Rolling 24-hour limits are *named* by the allowing rule and counted by storage,
//! atomically with the signature's audit record, so that they hold across nodes.
//!
//! Plain keys have a simpler policy ([`KeyPolicy`]): which application tokens may sign with
//! them, and how often.
//!
//! This crate must not do I/O, hold keys or read the clock: time is an argument.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

mod key;
pub use key::{DAY_MS, HOUR_MS, KeyPolicy};

/// Errors in a policy document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The document does not parse (the message names what and where).
    #[error("invalid policy: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// What a transaction does, in the terms rules speak: built by the server from a chain's
/// decoded intent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// What kind of call: `transfer`, `erc20.transfer`, `erc20.approve`,
    /// `erc20.transferFrom`, `deploy`, `contract` (any other call), `message` (EIP-191),
    /// `typed_data` (EIP-712), `permit` (EIP-2612), `permit2` (Uniswap Permit2),
    /// `blind_digest` (a caller's raw digest: blind signing) or `token.transfer` (a token
    /// transfer on a chain without ERC-20, such as an Antelope `transfer` action) or
    /// `permissions` (an Antelope action that changes an account's keys or permissions) or
    /// `consolidate` (a Bitcoin transaction that pays only the wallet itself, and a fee).
    pub call: String,
    /// Who ends up with the value: the recipient of a transfer (native or token), the
    /// spender of an approval; lowercase (a Bitcoin address as `bitcoin::Address` writes it:
    /// bech32 lowercase, base58 as is). `None` for a deployment or a consolidation.
    pub destination: Option<String>,
    /// The contract called, for token and contract calls; lowercase.
    pub contract: Option<String>,
    /// The 4-byte method selector of a contract call, `0x` hex lowercase.
    pub selector: Option<String>,
    /// The asset that moves: `native`, or a token's address (lowercase).
    pub asset: String,
    /// How much of it, in base units.
    pub amount: U256,
    /// The most the transaction can cost in fees, in the native coin (gas limit times the fee
    /// cap); zero for messages and typed data.
    pub fee: U256,
}

/// A policy's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Decision {
    /// Sign, if the rolling limit (when there is one) still has room.
    Allow {
        /// The deciding rule.
        rule: String,
        /// The rule's rolling 24-hour limit for this asset, in base units (decimal).
        #[serde(skip_serializing_if = "Option::is_none")]
        daily_limit: Option<String>,
    },
    /// Refuse.
    Deny {
        /// The deciding rule (`deny-list`, `hours`, `default-deny`, or a rule's name).
        rule: String,
        /// Why, in words.
        reason: String,
    },
    /// Sign only with this many approvals (a request, even for a hot wallet).
    Quorum {
        /// The deciding rule.
        rule: String,
        /// Approvals required.
        approvals: u8,
    },
}

impl Decision {
    /// The deciding rule's name.
    #[must_use]
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow { rule, .. }
            | Decision::Deny { rule, .. }
            | Decision::Quorum { rule, .. } => rule,
        }
    }
}

// ---- The document ---------------------------------------------------------------------

/// One or several values.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    max_fee: Option<String>,
    #[serde(default)]
    cooling_off: Option<String>,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    hours: Option<HoursDoc>,
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursDoc {
    #[serde(default)]
    days: Option<Vec<String>>,
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: String,
    effect: String,
    #[serde(default)]
    approvals: Option<u8>,
    call: OneOrMany,
    #[serde(default)]
    to: Option<OneOrMany>,
    #[serde(default)]
    token: Option<OneOrMany>,
    #[serde(default)]
    contract: Option<OneOrMany>,
    #[serde(default)]
    selector: Option<OneOrMany>,
    #[serde(default)]
    min_amount: Option<String>,
    #[serde(default)]
    max_amount: Option<String>,
    #[serde(default)]
    daily_limit: Option<String>,
}

const CALLS: [&str; 15] = [
    "transfer",
    "erc20.transfer",
    "erc20.approve",
    "erc20.transferFrom",
    "deploy",
    "contract",
    "message",
    "message_hash",
    "typed_data",
    "permit",
    "permit2",
    "blind_digest",
    "token.transfer",
    "permissions",
    "consolidate",
];
/// Calls whose amounts are in a token's units.
const TOKEN_CALLS: [&str; 5] = [
    "erc20.transfer",
    "erc20.approve",
    "erc20.transferFrom",
    "permit",
    "token.transfer",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Where a rule's destination may be.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Dest {
    Address(String),
    List(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
    Quorum(u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    name: String,
    effect: Effect,
    calls: BTreeSet<String>,
    to: Option<Vec<Dest>>,
    tokens: Option<BTreeSet<String>>,
    contracts: Option<BTreeSet<String>>,
    selectors: Option<BTreeSet<String>>,
    min_amount: Option<U256>,
    max_amount: Option<U256>,
    daily_limit: Option<U256>,
}

/// Allowed hours (UTC): on these days, from `from` (inclusive) to `to` (exclusive) minutes
/// after midnight.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hours {
    days: BTreeSet<usize>,
    from: u32,
    to: u32,
}

/// An address list entry and when it was added: it is usable from `added_ms + cooling_off`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The address, lowercase.
    pub address: String,
    /// When the vault first saw it in this list (Unix ms).
    pub added_ms: u64,
}

/// A parsed, validated policy, with when each list entry was added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    source: serde_json::Value,
    /// The most a transaction may cost in fees (native base units); `None` refuses every
    /// transaction that costs any.
    max_fee: Option<U256>,
    cooling_off_ms: u64,
    lists: BTreeMap<String, Vec<Entry>>,
    deny: BTreeSet<String>,
    hours: Option<Hours>,
    rules: Vec<Rule>,
}

fn amount(s: &str, what: &str) -> Result<U256, Error> {
    U256::from_str_radix(s, 10).map_err(|_| invalid(format!("{what} must be a decimal integer")))
}

fn hhmm(s: &str) -> Result<u32, Error> {
    let bad = || invalid(format!("hours: {s:?} is not HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// An Antelope name: 1 to 13 of `a-z 1-5 .`, not ending in `.`, the 13th from `a-j 1-5 .`.
fn antelope_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 13
        && !s.ends_with('.')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || (b'1'..=b'5').contains(c) || *c == b'.')
        && (b.len() < 13 || b[12] <= b'j')
}

/// An address as rules compare it: an Ethereum address (`0x` and 40 hex digits), an
/// Antelope account (`eosio.token`) or asset (`eosio.token:4,eos`: contract, precision and a
/// 1-7 letter code), all lowercase; or a Bitcoin address (checksum checked; bech32 lowercase,
/// base58 as written, since its case is part of it). Anything else is refused, so that a typo
/// cannot turn a deny-list entry into one that never matches.
fn address(s: &str, what: &str) -> Result<String, Error> {
    if let Some(btc) = bitcoin_address(s) {
        return Ok(btc);
    }
    let lower = s.to_ascii_lowercase();
    let ok = match lower.strip_prefix("0x") {
        Some(h) => h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()),
        None => match lower.split_once(':') {
            None => antelope_name(&lower),
            Some((contract, symbol)) => {
                antelope_name(contract)
                    && symbol.split_once(',').is_some_and(|(precision, code)| {
                        precision.parse::<u8>().is_ok_and(|p| p <= 18)
                            && (1..=7).contains(&code.len())
                            && code.bytes().all(|c| c.is_ascii_lowercase())
                    })
            }
        },
    };
    if ok {
        Ok(lower)
    } else {
        Err(invalid(format!(
            "{what}: {s:?} is neither a 20-byte 0x address, a Bitcoin address, an Antelope account nor an asset (contract:precision,CODE)"
        )))
    }
}

/// A Bitcoin address (any network) in the form the server writes destinations: what
/// `Address::to_string` gives, which lowercases bech32 and keeps base58 as it is.
fn bitcoin_address(s: &str) -> Option<String> {
    // Antelope names are at most 13 characters; the shortest Bitcoin address is 26.
    if s.len() < 26 {
        return None;
    }
    s.parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
        .ok()
        .map(|a| a.assume_checked().to_string())
}

impl Policy {
    /// Parses and validates a policy document. `previous` is the wallet's current policy (if
    /// any) and `now_ms` the time it is being set: a list entry keeps the time it was first
    /// added, so replacing a policy does not restart (or skip) an entry's cooling-off.
    ///
    /// # Errors
    /// [`Error::Invalid`], naming the problem.
    pub fn parse(text: &str, previous: Option<&Policy>, now_ms: u64) -> Result<Self, Error> {
        let source: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let doc: Document =
            serde_json::from_value(source.clone()).map_err(|e| invalid(e.to_string()))?;
        if doc.version != 1 {
            return Err(invalid("version must be 1"));
        }
        let cooling_off_ms = match &doc.cooling_off {
            None => 0,
            Some(d) => {
                let d = humantime::parse_duration(d)
                    .map_err(|_| invalid(format!("cooling_off: {d:?} is not a duration")))?;
                u64::try_from(d.as_millis()).map_err(|_| invalid("cooling_off is too long"))?
            }
        };
        let mut lists = BTreeMap::new();
        for (name, entries) in &doc.lists {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(format!(
                    "list name {name:?}: use a-z, 0-9, '-' and '_'"
                )));
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for e in entries {
                let a = address(e, &format!("list {name}"))?;
                if !seen.insert(a.clone()) {
                    continue;
                }
                let added_ms = previous
                    .and_then(|p| p.lists.get(name))
                    .and_then(|l| l.iter().find(|x| x.address == a))
                    .map_or(now_ms, |x| x.added_ms);
                out.push(Entry {
                    address: a,
                    added_ms,
                });
            }
            lists.insert(name.clone(), out);
        }
        let deny = doc
            .deny
            .iter()
            .map(|a| address(a, "deny"))
            .collect::<Result<_, _>>()?;
        let hours = doc
            .hours
            .as_ref()
            .map(|h| {
                let days = match &h.days {
                    None => (0..7).collect(),
                    Some(days) => days
                        .iter()
                        .map(|d| {
                            DAYS.iter()
                                .position(|x| x == &d.to_ascii_lowercase())
                                .ok_or_else(|| invalid(format!("hours: unknown day {d:?}")))
                        })
                        .collect::<Result<BTreeSet<_>, _>>()?,
                };
                let (from, to) = (hhmm(&h.from)?, hhmm(&h.to)?);
                if from >= to {
                    return Err(invalid("hours: from must be before to (UTC, same day)"));
                }
                Ok(Hours { days, from, to })
            })
            .transpose()?;
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for r in &doc.rules {
            if r.name.is_empty()
                || ["deny-list", "hours", "default-deny"].contains(&r.name.as_str())
            {
                return Err(invalid(format!(
                    "rule name {:?} is empty or reserved",
                    r.name
                )));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid(format!("two rules are named {:?}", r.name)));
            }
            let effect = match (r.effect.as_str(), r.approvals) {
                ("allow", None) => Effect::Allow,
                ("deny", None) => Effect::Deny,
                ("quorum", Some(n)) if n >= 1 => Effect::Quorum(n),
                ("quorum", _) => {
                    return Err(invalid(format!(
                        "rule {}: quorum needs approvals >= 1",
                        r.name
                    )));
                }
                (_, Some(_)) => {
                    return Err(invalid(format!(
                        "rule {}: approvals apply to quorum",
                        r.name
                    )));
                }
                (e, None) => {
                    return Err(invalid(format!(
                        "rule {}: effect {e:?} is not allow, deny or quorum",
                        r.name
                    )));
                }
            };
            let calls: BTreeSet<String> = r.call.values().into_iter().collect();
            if let Some(c) = calls.iter().find(|c| !CALLS.contains(&c.as_str())) {
                return Err(invalid(format!(
                    "rule {}: unknown call {c:?} (one of {})",
                    r.name,
                    CALLS.join(", ")
                )));
            }
            let to = r
                .to
                .as_ref()
                .map(|t| {
                    t.values()
                        .iter()
                        .map(|d| match d.strip_prefix('@') {
                            Some(list) if lists.contains_key(list) => Ok(Dest::List(list.into())),
                            Some(list) => {
                                Err(invalid(format!("rule {}: no list named {list:?}", r.name)))
                            }
                            None => address(d, &format!("rule {}", r.name)).map(Dest::Address),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let set = |v: &Option<OneOrMany>, what: &str| {
                v.as_ref()
                    .map(|v| {
                        v.values()
                            .iter()
                            .map(|a| address(a, &format!("rule {} {what}", r.name)))
                            .collect::<Result<BTreeSet<_>, _>>()
                    })
                    .transpose()
            };
            let selectors = r
                .selector
                .as_ref()
                .map(|v| {
                    v.values()
                        .iter()
                        .map(|s| {
                            let l = s.to_ascii_lowercase();
                            // A 4-byte EVM selector, or an Antelope action name.
                            let ok = match l.strip_prefix("0x") {
                                Some(h) => h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                                None => antelope_name(&l),
                            };
                            ok.then_some(l).ok_or_else(|| {
                                invalid(format!(
                                    "rule {}: selector {s:?} is neither 0x + 8 hex nor an Antelope action name",
                                    r.name
                                ))
                            })
                        })
                        .collect::<Result<BTreeSet<_>, _>>()
                })
                .transpose()?;
            let rule = Rule {
                name: r.name.clone(),
                effect,
                calls,
                to,
                tokens: set(&r.token, "token")?,
                contracts: set(&r.contract, "contract")?,
                selectors,
                min_amount: r
                    .min_amount
                    .as_deref()
                    .map(|a| amount(a, "min_amount"))
                    .transpose()?,
                max_amount: r
                    .max_amount
                    .as_deref()
                    .map(|a| amount(a, "max_amount"))
                    .transpose()?,
                daily_limit: r
                    .daily_limit
                    .as_deref()
                    .map(|a| amount(a, "daily_limit"))
                    .transpose()?,
            };
            // An amount is in one asset's base units: a rule with amounts covers the native
            // coin only, or tokens it names.
            let limited = rule.min_amount.is_some()
                || rule.max_amount.is_some()
                || rule.daily_limit.is_some();
            let token_calls = rule.calls.iter().any(|c| TOKEN_CALLS.contains(&c.as_str()));
            let native_calls = rule
                .calls
                .iter()
                .any(|c| !TOKEN_CALLS.contains(&c.as_str()));
            if limited && token_calls && (native_calls || rule.tokens.is_none()) {
                return Err(invalid(format!(
                    "rule {}: amounts need one unit: name the token, and keep token and native calls in separate rules",
                    r.name
                )));
            }
            if rule.daily_limit.is_some() && rule.effect != Effect::Allow {
                return Err(invalid(format!(
                    "rule {}: daily_limit applies to allow",
                    r.name
                )));
            }
            rules.push(rule);
        }
        let max_fee = doc
            .max_fee
            .as_deref()
            .map(|a| amount(a, "max_fee"))
            .transpose()?;
        Ok(Policy {
            source,
            max_fee,
            cooling_off_ms,
            lists,
            deny,
            hours,
            rules,
        })
    }

    /// The policy a new production wallet has: none, so every request is refused.
    #[must_use]
    pub fn deny_all() -> Self {
        Policy {
            source: serde_json::json!({"version": 1, "rules": []}),
            max_fee: None,
            cooling_off_ms: 0,
            lists: BTreeMap::new(),
            deny: BTreeSet::new(),
            hours: None,
            rules: Vec::new(),
        }
    }

    /// Dev mode's policy: everything is allowed, and says so.
    #[must_use]
    pub fn dev_allow_all() -> Self {
        let mut p = Self::deny_all();
        p.max_fee = Some(U256::MAX);
        p.source = serde_json::json!({"version": 1, "max_fee": U256::MAX.to_string(), "rules": [
            {"name": "dev-allow-all", "effect": "allow", "call": CALLS}]});
        p.rules.push(Rule {
            name: "dev-allow-all".into(),
            effect: Effect::Allow,
            calls: CALLS.iter().map(|c| (*c).to_owned()).collect(),
            to: None,
            tokens: None,
            contracts: None,
            selectors: None,
            min_amount: None,
            max_amount: None,
            daily_limit: None,
        });
        p
    }

    /// The stored form: the document as given, and each list entry's time.
    #[must_use]
    pub fn to_stored(&self) -> serde_json::Value {
        serde_json::json!({"document": self.source, "entries": self.lists})
    }

    /// Reads [`Policy::to_stored`] back.
    ///
    /// # Errors
    /// [`Error::Invalid`] if it does not parse (a stored policy was damaged).
    pub fn from_stored(v: &serde_json::Value) -> Result<Self, Error> {
        let entries: BTreeMap<String, Vec<Entry>> =
            serde_json::from_value(v["entries"].clone()).map_err(|e| invalid(e.to_string()))?;
        let mut p = Self::parse(&v["document"].to_string(), None, 0)?;
        for (name, list) in &mut p.lists {
            for e in list {
                e.added_ms = entries
                    .get(name)
                    .and_then(|l| l.iter().find(|x| x.address == e.address))
                    .map(|x| x.added_ms)
                    .ok_or_else(|| invalid("stored entries do not match the document"))?;
            }
        }
        Ok(p)
    }

    /// The document as given.
    #[must_use]
    pub fn document(&self) -> &serde_json::Value {
        &self.source
    }

    /// Entries still cooling off at `now_ms`: (list, address, usable from).
    #[must_use]
    pub fn cooling(&self, now_ms: u64) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for (name, list) in &self.lists {
            for e in list {
                let from = e.added_ms.saturating_add(self.cooling_off_ms);
                if from > now_ms {
                    out.push((name.clone(), e.address.clone(), from));
                }
            }
        }
        out
    }

    fn dest_matches(&self, dests: &[Dest], dest: &str, now_ms: u64) -> bool {
        dests.iter().any(|d| match d {
            Dest::Address(a) => a == dest,
            Dest::List(l) => self.lists.get(l).is_some_and(|entries| {
                entries.iter().any(|e| {
                    e.address == dest && e.added_ms.saturating_add(self.cooling_off_ms) <= now_ms
                })
            }),
        })
    }

    fn matches(&self, r: &Rule, i: &Intent, now_ms: u64) -> bool {
        let in_set = |set: &Option<BTreeSet<String>>, v: &Option<String>| match set {
            None => true,
            Some(s) => v.as_ref().is_some_and(|v| s.contains(v)),
        };
        r.calls.contains(&i.call)
            && match &r.to {
                None => true,
                Some(dests) => i
                    .destination
                    .as_deref()
                    .is_some_and(|d| self.dest_matches(dests, d, now_ms)),
            }
            && match &r.tokens {
                None => true,
                Some(t) => t.contains(&i.asset),
            }
            && in_set(&r.contracts, &i.contract)
            && in_set(&r.selectors, &i.selector)
            && r.min_amount.is_none_or(|m| i.amount >= m)
            && r.max_amount.is_none_or(|m| i.amount <= m)
    }

    /// Every destination address the policy names (list entries, the deny list, rules' `to`),
    /// in canonical form: for the server to check they belong to the wallet's chain and
    /// network, which this crate does not know.
    #[must_use]
    pub fn addresses(&self) -> BTreeSet<&str> {
        let lists = self.lists.values().flatten().map(|e| e.address.as_str());
        let rules = self.rules.iter().flat_map(|r| r.to.iter().flatten());
        lists
            .chain(self.deny.iter().map(String::as_str))
            .chain(rules.filter_map(|d| match d {
                Dest::Address(a) => Some(a.as_str()),
                Dest::List(_) => None,
            }))
            .collect()
    }

    /// Decides on `intent` at `now_ms` (Unix ms, UTC).
    #[must_use]
    pub fn evaluate(&self, intent: &Intent, now_ms: u64) -> Decision {
        let denied = [intent.destination.as_ref(), intent.contract.as_ref()]
            .into_iter()
            .flatten()
            .find(|a| self.deny.contains(*a));
        if let Some(a) = denied {
            return Decision::Deny {
                rule: "deny-list".into(),
                reason: format!("{a} is on the deny list"),
            };
        }
        if let Some(h) = &self.hours {
            let minutes = (now_ms / 60_000) % (24 * 60);
            // 1970-01-01 was a Thursday (index 3, Monday first).
            let day = usize::try_from((now_ms / 86_400_000 + 3) % 7).unwrap_or(0);
            let minutes = u32::try_from(minutes).unwrap_or(0);
            if !h.days.contains(&day) || minutes < h.from || minutes >= h.to {
                return Decision::Deny {
                    rule: "hours".into(),
                    reason: "outside the allowed hours (UTC)".into(),
                };
            }
        }
        // Fees are value too: every transaction's worst-case fee is capped.
        if !intent.fee.is_zero() && self.max_fee.is_none_or(|cap| intent.fee > cap) {
            return Decision::Deny {
                rule: "max-fee".into(),
                reason: match self.max_fee {
                    Some(cap) => {
                        format!(
                            "the fee can reach {} base units, above max_fee {cap}",
                            intent.fee
                        )
                    }
                    None => {
                        "the policy sets no max_fee, so no transaction that costs a fee is signed"
                            .into()
                    }
                },
            };
        }
        for r in &self.rules {
            if self.matches(r, intent, now_ms) {
                return match r.effect {
                    Effect::Allow => Decision::Allow {
                        rule: r.name.clone(),
                        daily_limit: r.daily_limit.map(|l| l.to_string()),
                    },
                    Effect::Deny => Decision::Deny {
                        rule: r.name.clone(),
                        reason: "denied by the rule".into(),
                    },
                    Effect::Quorum(n) => Decision::Quorum {
                        rule: r.name.clone(),
                        approvals: n,
                    },
                };
            }
        }
        Decision::Deny {
            rule: "default-deny".into(),
            reason: "no rule allows this".into(),
        }
    }
}

#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod tests;
