//! `Idempotency-Key` on signing routes: a retried request (same principal, same key, same
//! method, path and body) gets the first answer again (a signature, a signed transaction, or
//! the pending request it filed) instead of signing, spending or filing twice.
//!
//! The first answer is stored (sealed) for 24 hours with the request's audit record (or right
//! after it, in a record of its own, when the operation wrote its record itself); a key
//! reused for a different request is refused. Two concurrent requests with one key may both
//! run: the first answer stored stays, and since signatures are deterministic (RFC 6979) both
//! carry the same signature.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use strongroom_core::UnixMillis;
use strongroom_core::record::IdempotentRecord;
use strongroom_core::storage::Mutation;

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault};

/// Operations that honour the header.
pub(crate) const OPERATIONS: [&str; 7] = [
    "key.sign",
    "eth.sign_tx",
    "eth.erc20_transfer",
    "eth.sign_message",
    "eth.sign_typed_data",
    "eos.sign",
    "btc.sign_psbt",
];

/// How long an answer is kept.
const KEEP_MS: u64 = 24 * 60 * 60 * 1000;

/// The request's idempotency key, if it has one: 1 to 128 visible ASCII characters.
pub(crate) fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let ok = v
        .to_str()
        .ok()
        .filter(|k| (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    match ok {
        Some(k) => Ok(Some(k.to_owned())),
        None => Err(ApiError::bad(
            "invalid_idempotency_key",
            "Idempotency-Key is 1 to 128 visible ASCII characters",
        )),
    }
}

fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

fn replay(stored: &str) -> Response {
    let v: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let status = v["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, axum::Json(v["body"].clone())).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Runs the request once per key: answers a retry from the store, or runs it and stores the
/// answer.
pub(crate) async fn run(
    vault: &Vault,
    ctx: &RequestCtx,
    key: String,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::http::MAX_BODY).await else {
        return ApiError::TooLarge.into_response();
    };
    let print = fingerprint(parts.method.as_str(), parts.uri.path(), &bytes);
    let principal = ctx.principal.audit_label();
    let expired_before = UnixMillis(ctx.time.0.saturating_sub(KEEP_MS));
    match vault.store.idempotent(&principal, &key) {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Some(rec)) if rec.created_at > expired_before => {
            if rec.fingerprint != print {
                return ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
                .into_response();
            }
            ctx.tag(|t| t.detail = Some(json!({"idempotent_replay": true}).to_string()));
            return replay(&rec.response);
        }
        Ok(_) => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        return response;
    }
    let (rparts, rbody) = response.into_parts();
    let Ok(rbytes) = axum::body::to_bytes(rbody, 16 * 1024 * 1024).await else {
        return ApiError::Internal.into_response();
    };
    let stored = json!({
        "status": rparts.status.as_u16(),
        "body": serde_json::from_slice::<Value>(&rbytes).unwrap_or(Value::Null),
    });
    let put = Mutation::PutIdempotent {
        principal,
        key,
        record: IdempotentRecord {
            fingerprint: print,
            response: stored.to_string(),
            created_at: ctx.time,
        },
        replaces_before: expired_before,
    };
    // Stored with the request's audit record (or, when the operation wrote its own, in a
    // record of its own right after): the pipeline does it.
    ctx.tag(|t| t.idempotent = Some(put));
    Response::from_parts(rparts, Body::from(rbytes))
}
