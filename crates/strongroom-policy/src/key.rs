//! Policies of plain keys (the vault core's keys, not wallets): which application tokens may
//! sign with a key, and how many signatures it may make per hour and per day.
//!
//! A plain key signs digests and messages it cannot decode, so there is no intent to judge:
//! the policy says who and how often. Without a policy a key keeps the vault core's rule (any
//! application token of its domain, no rate limit).

use std::collections::BTreeSet;

use serde::Deserialize;
use strongroom_core::TokenId;

use crate::{Error, invalid};

/// One hour and one day, in milliseconds: the rate windows.
pub const HOUR_MS: u64 = 3_600_000;
/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    tokens: Option<Vec<String>>,
    #[serde(default)]
    max_per_hour: Option<u64>,
    #[serde(default)]
    max_per_day: Option<u64>,
}

/// A plain key's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The application tokens that may sign; `None`: any of the key's domain.
    tokens: Option<BTreeSet<TokenId>>,
    max_per_hour: Option<u64>,
    max_per_day: Option<u64>,
    source: serde_json::Value,
}

impl KeyPolicy {
    /// Parses and validates a key policy document:
    /// `{"version": 1, "tokens": [ID...], "max_per_hour": N, "max_per_day": N}` (every field
    /// but `version` optional; `tokens: []` lets no token sign).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let doc: Document = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if doc.version != 1 {
            return Err(invalid("version must be 1"));
        }
        let tokens = doc
            .tokens
            .map(|list| {
                list.iter()
                    .map(|t| {
                        t.parse::<TokenId>()
                            .map_err(|_| invalid(format!("tokens: {t:?} is not a token id")))
                    })
                    .collect::<Result<BTreeSet<_>, _>>()
            })
            .transpose()?;
        for (name, v) in [
            ("max_per_hour", doc.max_per_hour),
            ("max_per_day", doc.max_per_day),
        ] {
            if v == Some(0) {
                return Err(invalid(format!(
                    "{name} must be at least 1 (cool the key to stop it signing)"
                )));
            }
        }
        let source = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            tokens,
            max_per_hour: doc.max_per_hour,
            max_per_day: doc.max_per_day,
            source,
        })
    }

    /// Whether the application token `token` may sign with the key; `None` is any other
    /// principal (an operator session, the root token), which a token list refuses too.
    #[must_use]
    pub fn allows(&self, token: Option<&TokenId>) -> bool {
        match (&self.tokens, token) {
            (None, _) => true,
            (Some(list), Some(t)) => list.contains(t),
            (Some(_), None) => false,
        }
    }

    /// The rate limits: `(window in ms, most signatures in it)`, hour first.
    #[must_use]
    pub fn limits(&self) -> Vec<(u64, u64)> {
        [(HOUR_MS, self.max_per_hour), (DAY_MS, self.max_per_day)]
            .into_iter()
            .filter_map(|(w, m)| m.map(|m| (w, m)))
            .collect()
    }

    /// The document as it was set.
    #[must_use]
    pub fn document(&self) -> &serde_json::Value {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "0b9d1c1e-1a6e-4c9e-8a54-2b0f0f7f2a11";
    const B: &str = "6f1f5a8e-7d0c-4e57-9a4b-3d6a2a9c0b22";

    #[test]
    fn tokens_and_rates() {
        let p = KeyPolicy::parse(&format!(
            r#"{{"version": 1, "tokens": ["{A}"], "max_per_hour": 10, "max_per_day": 100}}"#
        ))
        .unwrap();
        assert!(p.allows(Some(&A.parse().unwrap())));
        assert!(!p.allows(Some(&B.parse().unwrap())));
        assert!(
            !p.allows(None),
            "an operator is not one of the listed tokens"
        );
        assert_eq!(p.limits(), [(HOUR_MS, 10), (DAY_MS, 100)]);
        let open = KeyPolicy::parse(r#"{"version": 1}"#).unwrap();
        assert!(open.allows(None) && open.limits().is_empty());
        let closed = KeyPolicy::parse(r#"{"version": 1, "tokens": []}"#).unwrap();
        assert!(!closed.allows(Some(&A.parse().unwrap())));
    }

    #[test]
    fn malformed_key_policies_are_refused() {
        for bad in [
            r#"{"version": 2}"#,
            r#"{"version": 1, "tokens": ["not-a-token"]}"#,
            r#"{"version": 1, "max_per_hour": 0}"#,
            r#"{"version": 1, "max_per_day": -1}"#,
            r#"{"version": 1, "rules": []}"#,
            "[]",
        ] {
            assert!(KeyPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
