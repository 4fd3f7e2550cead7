//! `GET /v1/audit/export`: the audit chain, its signed heads, and the approval evidence of
//! every quorum request, as newline-delimited JSON an auditor can verify offline
//! (`strongroom audit verify --file`). Records are streamed page by page, so the export does
//! not hold the whole log in memory.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use strongroom_core::Operation;
use strongroom_core::record::{AuditBody, AuditRecord};

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault, allow, rfc3339};

/// Export format identifier (first line's `format`).
pub const FORMAT: &str = "strongroom-audit-export/v1";
const PAGE: usize = 5000;

fn line(v: &Value) -> Vec<u8> {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out
}

fn record_line(r: &AuditRecord) -> Vec<u8> {
    let e = match &r.body {
        AuditBody::Open(e) => e,
        // Its ciphertext did not open (altered in the database): exported as it stands, so
        // the auditor's verification names this record.
        AuditBody::Sealed { time, digest } => {
            return line(&json!({
                "type": "record",
                "seq": r.seq,
                "prev_hash": hex::encode(r.prev_hash),
                "hash": hex::encode(r.hash),
                "time_ms": time.0,
                "sealed": true,
                "digest": hex::encode(digest),
            }));
        }
    };
    line(&json!({
        "type": "record",
        "seq": r.seq,
        "prev_hash": hex::encode(r.prev_hash),
        "hash": hex::encode(r.hash),
        "time_ms": e.time.0,
        "request_id": e.request_id.to_string(),
        "actor": e.actor,
        "source": e.source,
        "operation": e.operation,
        "domain": e.domain,
        "key": e.key,
        "outcome": e.outcome.code(),
        "code": e.code,
        "count": e.count,
        "detail": e.detail,
    }))
}

impl Vault {
    /// Everything before the records: header, signed heads, requests with their approvals.
    fn export_prelude(&self) -> Result<Vec<u8>, ApiError> {
        let meta = self.store.vault()?;
        let mut out = line(&json!({
            "type": "header",
            "format": FORMAT,
            "vault_id": self.vault_id.to_string(),
            "audit_public_key": meta.init.as_ref().map(|i| hex::encode(i.audit_public_key)),
            "exported_at": rfc3339(self.clock.now()),
        }));
        for h in self.store.audit_heads()? {
            out.extend(line(&json!({
                "type": "head",
                "seq": h.seq,
                "hash": hex::encode(h.hash),
                "time_ms": h.time.0,
                "signature": hex::encode(h.signature),
            })));
        }
        for p in self.store.pendings(None)? {
            let mut approvals = vec![];
            for a in self.store.approvals(p.id)? {
                let op = self.store.operator(a.approver)?;
                approvals.push(json!({
                    "approver": a.approver.to_string(),
                    "approver_name": op.as_ref().map(|o| o.name.to_string()),
                    "public_key": op.and_then(|o| o.approval_key).map(hex::encode),
                    "signature": hex::encode(a.signature),
                    "at_ms": a.at.0,
                }));
            }
            out.extend(line(&json!({
                "type": "request",
                "request_id": p.id.to_string(),
                "operation": p.op.as_str(),
                "params_canonical": p.params,
                "domain_id": p.domain.map(|d| d.to_string()),
                "key_id": p.key.map(|k| k.to_string()),
                "required": p.required,
                "expires_at_ms": p.expires_at.0,
                "nonce": hex::encode(p.nonce),
                "hash": hex::encode(p.hash),
                "status": p.status.as_str(),
                "requester": p.requester,
                "approvals": approvals,
            })));
        }
        Ok(out)
    }

    pub(crate) fn export_audit(self: &Arc<Self>, ctx: &RequestCtx) -> Result<Body, ApiError> {
        allow(ctx, &Operation::ExportAudit)?;
        let prelude = self.export_prelude()?;
        let vault = Arc::clone(self);
        // State: the next sequence number to read, or None once the log is exhausted.
        let records = futures_util::stream::unfold(Some(1u64), move |next| {
            let vault = Arc::clone(&vault);
            async move {
                let from = next?;
                let page =
                    tokio::task::spawn_blocking(move || vault.store.audit_records(from, PAGE))
                        .await;
                match page {
                    Ok(Ok(page)) => {
                        let more =
                            (page.len() == PAGE).then(|| page.last().map_or(from, |r| r.seq + 1));
                        let bytes: Vec<u8> = page.iter().flat_map(record_line).collect();
                        Some((Ok::<Bytes, std::io::Error>(Bytes::from(bytes)), more))
                    }
                    // Cut the stream: the verifier then reports a truncated export.
                    _ => Some((Err(std::io::Error::other("audit log unreadable")), None)),
                }
            }
        });
        let head =
            futures_util::stream::once(
                async move { Ok::<Bytes, std::io::Error>(Bytes::from(prelude)) },
            );
        Ok(Body::from_stream(futures_util::StreamExt::chain(
            head, records,
        )))
    }
}
