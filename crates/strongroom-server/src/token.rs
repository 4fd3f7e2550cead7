//! API tokens: `srt_` followed by 64 hex digits (256 random bits). Only the SHA-256 of a token
//! is stored; the value exists in the clear only in the response that issues it.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use strongroom_core::record::{TokenKind, TokenRecord};
use strongroom_core::storage::Storage;
use strongroom_core::{EntropySource, Principal, TokenId, UnixMillis, VaultId};
use strongroom_keystore::Keystore;
use zeroize::Zeroizing;

use crate::error::ApiError;

const PREFIX: &str = "srt_";

/// A freshly issued token: its secret value and its stored record.
pub(crate) struct Issued {
    pub(crate) value: Zeroizing<String>,
    pub(crate) record: TokenRecord,
}

/// Draws a token.
pub(crate) fn issue(
    entropy: &dyn EntropySource,
    kind: TokenKind,
    now: UnixMillis,
    expires_at: Option<UnixMillis>,
) -> Result<Issued, ApiError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    let mut id = [0u8; 16];
    entropy
        .fill(raw.as_mut())
        .map_err(|_| ApiError::EntropyFailed)?;
    entropy.fill(&mut id).map_err(|_| ApiError::EntropyFailed)?;
    let value = Zeroizing::new(format!("{PREFIX}{}", hex::encode(&raw[..])));
    let record = TokenRecord {
        id: TokenId::from_random(id),
        hash: hash(&value),
        kind,
        created_at: now,
        expires_at,
        revoked_at: None,
        // Set by the caller from the keystore (see `binding`).
        mac: [0; 32],
    };
    Ok(Issued { value, record })
}

/// The bytes a token row's MAC covers (layout in `docs/formats.md`).
pub(crate) fn binding(vault_id: &VaultId, t: &TokenRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"strongroom/token/v1");
    out.extend_from_slice(vault_id.as_bytes());
    out.extend_from_slice(t.id.as_bytes());
    out.extend_from_slice(&t.hash);
    match t.kind {
        TokenKind::Application(d) => {
            out.push(2);
            out.extend_from_slice(d.as_bytes());
        }
        TokenKind::Session(o) => {
            out.push(3);
            out.extend_from_slice(o.as_bytes());
        }
        TokenKind::Bootstrap => {
            out.push(4);
            out.extend_from_slice(&[0; 16]);
        }
        TokenKind::Keymanager(d) => {
            out.push(5);
            out.extend_from_slice(d.as_bytes());
        }
        // Root, and any kind added later, carry no domain.
        _ => {
            out.push(1);
            out.extend_from_slice(&[0; 16]);
        }
    }
    out.extend_from_slice(&t.created_at.0.to_be_bytes());
    for opt in [t.expires_at, t.revoked_at] {
        match opt {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.0.to_be_bytes());
            }
        }
    }
    out
}

fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Resolves tokens to principals, caching records (by hash) in memory.
#[derive(Default)]
pub(crate) struct Tokens {
    cache: RwLock<HashMap<[u8; 32], TokenRecord>>,
    // Revoked here, checked on every use: a lookup racing with a revocation may cache the old
    // row, but it can never be used again.
    revoked: RwLock<std::collections::HashSet<TokenId>>,
    /// Bumped by [`Tokens::clear`]: a row read before a clear that raced with the read is not
    /// cached.
    generation: std::sync::atomic::AtomicU64,
}

impl Tokens {
    /// The principal a presented token stands for, or `InvalidToken`. The row's MAC is checked
    /// before it is trusted (and cached), so the keystore must be unsealed.
    pub(crate) fn authenticate(
        &self,
        store: &dyn Storage,
        keystore: &Keystore,
        vault_id: &VaultId,
        value: &str,
        now: UnixMillis,
        may_look_up: impl FnOnce() -> bool,
    ) -> Result<Principal, ApiError> {
        if !value.starts_with(PREFIX) || value.len() != PREFIX.len() + 64 {
            return Err(ApiError::InvalidToken);
        }
        let h = hash(value);
        let cached = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&h)
            .cloned();
        let record = match cached {
            Some(r) => r,
            None => {
                // A token not seen before costs a database read: rate-limit it first, so that a
                // stream of made-up tokens cannot load the database.
                if !may_look_up() {
                    return Err(ApiError::RateLimited);
                }
                let before = self.generation.load(std::sync::atomic::Ordering::SeqCst);
                let r = store.token_by_hash(&h)?.ok_or(ApiError::InvalidToken)?;
                if !keystore
                    .verify_record_mac(&binding(vault_id, &r), &r.mac)
                    .unwrap_or(false)
                {
                    tracing::warn!(token = %r.id, "token row failed its MAC check (forged or edited row)");
                    return Err(ApiError::InvalidToken);
                }
                let mut cache = self
                    .cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if self.generation.load(std::sync::atomic::Ordering::SeqCst) == before {
                    cache.insert(h, r.clone());
                }
                r
            }
        };
        let revoked_here = self
            .revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&record.id);
        if revoked_here || record.revoked_at.is_some() {
            return Err(ApiError::InvalidToken);
        }
        if record.expires_at.is_some_and(|t| now >= t) {
            return Err(if matches!(record.kind, TokenKind::Session(_)) {
                ApiError::SessionExpired
            } else {
                ApiError::InvalidToken
            });
        }
        match record.kind {
            TokenKind::Root => Ok(Principal::Root { token: record.id }),
            TokenKind::Bootstrap => Ok(Principal::Bootstrap { token: record.id }),
            TokenKind::Application(domain) => Ok(Principal::Application {
                token: record.id,
                domain,
            }),
            TokenKind::Keymanager(domain) => Ok(Principal::Keymanager {
                token: record.id,
                domain,
            }),
            // Read the operator at every use: a disabled operator loses access at once.
            TokenKind::Session(id) => {
                let op = store.operator(id)?.ok_or(ApiError::InvalidToken)?;
                let genuine = keystore
                    .verify_record_mac(&crate::operators::binding(vault_id, &op), &op.mac)
                    .unwrap_or(false);
                if !genuine || op.disabled_at.is_some() {
                    return Err(ApiError::InvalidToken);
                }
                Ok(Principal::Operator {
                    id: op.id,
                    roles: op.roles,
                    domain: op.domain,
                })
            }
            _ => Err(ApiError::InvalidToken),
        }
    }

    /// Forgets every cached row (changes may have been missed); revocations stay.
    pub(crate) fn clear(&self) {
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.clear();
    }

    /// Forgets a revoked token.
    pub(crate) fn forget(&self, id: TokenId) {
        self.revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, r| r.id != id);
    }
}
