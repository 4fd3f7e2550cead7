//! `strongroom audit verify --data DIR | --config FILE`: checks the audit chain offline,
//! straight from the database (SQLite file or PostgreSQL) and the signed-head file, without
//! the server or any secret.

use std::path::Path;

use serde_json::Value;
use serde_json::json;
use strongroom_audit::{Verifier, verify_head_signature};
use strongroom_core::UnixMillis;
use strongroom_core::record::{
    AuditBody, AuditEvent, AuditRecord, Outcome, PendingRecord, RequestStatus, SignedHead,
};
use strongroom_core::storage::Storage;
use strongroom_storage::{HeadFile, PgStore, SqliteStore};

use crate::client::CliError;
use crate::output::Output;

const PAGE: usize = 10_000;

/// Verifies the chain in `data` (SQLite) or at `postgres`, with `data`'s signed-head file.
pub(crate) fn run(
    out: &Output,
    data: &Path,
    postgres: Option<&str>,
    pinned: Option<&str>,
) -> Result<(), CliError> {
    // Read the head file before the database: the server writes the database first, so the
    // database we then read is at least as new as the head.
    let file_heads =
        HeadFile::read(&data.join("audit-head")).map_err(|e| CliError::Input(e.to_string()))?;
    let fail = |m: String| {
        if out.json {
            println!(
                "{}",
                json!({"ok": false, "first_bad_record": null, "error": m})
            );
            CliError::Reported
        } else {
            CliError::Tampered(format!("audit log TAMPERED: {m}"))
        }
    };
    let store: Box<dyn Storage> = match postgres {
        None => Box::new(
            SqliteStore::open_read_only(&data.join("vault.db"))
                .map_err(|e| fail(format!("cannot open the database: {e}")))?,
        ),
        Some(url) => Box::new(
            PgStore::open_existing(url)
                .map_err(|e| fail(format!("cannot open the database: {e}")))?,
        ),
    };
    let meta = store
        .vault()
        .map_err(|e| fail(format!("vault row unreadable: {e}")))?;
    let db_key = meta.init.as_ref().map(|i| i.audit_public_key);
    let key = match pinned {
        Some(p) => {
            let p: [u8; 32] = hex::decode(p.trim_start_matches("0x"))
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CliError::Input("--audit-key must be 32 bytes of hex".into()))?;
            if db_key.is_some_and(|k| k != p) {
                return Err(fail(
                    "the database names a different audit key than the one pinned".into(),
                ));
            }
            Some(p)
        }
        None => db_key,
    };
    let mut heads = store
        .audit_heads()
        .map_err(|e| fail(format!("signed heads unreadable: {e}")))?;
    // A slot torn by a crash fails its signature and is ignored; the other slot still holds the
    // previous head. No valid slot at all while the database has heads means the file was
    // removed or replaced.
    let newest_file_head = file_heads
        .into_iter()
        .filter(|h| key.is_some_and(|k| verify_head_signature(h, &meta.vault_id, &k)))
        .max_by_key(|h| h.seq);
    match newest_file_head {
        Some(h) => heads.push(h),
        None if !heads.is_empty() => {
            return Err(fail(
                "the signed-head file is missing or holds no validly signed head".into(),
            ));
        }
        None => {}
    }
    let mut verifier =
        Verifier::new(meta.vault_id, key, &heads).map_err(|e| fail(e.to_string()))?;
    let mut from = 1;
    loop {
        let page = store
            .audit_records(from, PAGE)
            .map_err(|e| fail(format!("audit records unreadable: {e}")))?;
        for r in &page {
            verifier.record(r).map_err(|e| report(out, &e))?;
        }
        match page.last() {
            Some(r) if page.len() == PAGE => from = r.seq + 1,
            _ => break,
        }
    }
    let rep = verifier.finish().map_err(|e| report(out, &e))?;
    print_report(out, &rep, key, &meta.vault_id, None);
    Ok(())
}

/// Approval evidence checked in an export.
struct Evidence {
    requests: usize,
    approvals: usize,
}

fn print_report(
    out: &Output,
    rep: &strongroom_audit::Report,
    key: Option<[u8; 32]>,
    vault_id: &strongroom_core::VaultId,
    evidence: Option<&Evidence>,
) {
    if out.json {
        println!(
            "{}",
            json!({"ok": true, "records": rep.records, "sealed_records": rep.sealed, "signed_heads": rep.heads, "signed_through": rep.signed_through,
                   "newest_head_hash": rep.newest_head_hash.map(hex::encode),
                   "audit_public_key": key.map(hex::encode), "vault_id": vault_id.to_string(),
                   "requests": evidence.map(|e| e.requests), "approvals_verified": evidence.map(|e| e.approvals)})
        );
        return;
    }
    println!(
        "audit log OK: {} records, {} signed heads, signed through record {}",
        rep.records, rep.heads, rep.signed_through
    );
    if rep.sealed > 0 {
        println!(
            "{} of them sealed under the storage key: checked through their digests (`audit export` shows their events)",
            rep.sealed
        );
    }
    if let Some(e) = evidence {
        println!(
            "approval evidence OK: {} requests, {} approvals verified",
            e.requests, e.approvals
        );
    }
    if let Some(h) = rep.newest_head_hash {
        println!(
            "newest signed head: record {} hash {}",
            rep.signed_through,
            hex::encode(h)
        );
    }
    if let Some(k) = key {
        println!("audit public key: {}", hex::encode(k));
    }
    if rep.signed_through < rep.records {
        println!(
            "note: records {}..{} are not yet covered by a signed head (written while sealed)",
            rep.signed_through + 1,
            rep.records
        );
    }
}

fn hex_n<const N: usize>(v: &Value, name: &str) -> Option<[u8; N]> {
    hex::decode(v[name].as_str()?).ok()?.try_into().ok()
}

fn opt_str(v: &Value, name: &str) -> Option<String> {
    v[name].as_str().map(str::to_owned)
}

fn record_from(v: &Value) -> Option<AuditRecord> {
    let time = UnixMillis(v["time_ms"].as_u64()?);
    let body = if v["sealed"] == true {
        AuditBody::Sealed {
            time,
            digest: hex_n(v, "digest")?,
        }
    } else {
        AuditBody::Open(event_from(v, time)?)
    };
    Some(AuditRecord {
        seq: v["seq"].as_u64()?,
        prev_hash: hex_n(v, "prev_hash")?,
        hash: hex_n(v, "hash")?,
        body,
    })
}

fn event_from(v: &Value, time: UnixMillis) -> Option<AuditEvent> {
    Some(AuditEvent {
        time,
        request_id: v["request_id"].as_str()?.parse().ok()?,
        actor: v["actor"].as_str()?.to_owned(),
        source: opt_str(v, "source"),
        operation: v["operation"].as_str()?.to_owned(),
        domain: opt_str(v, "domain"),
        key: opt_str(v, "key"),
        outcome: u8::try_from(v["outcome"].as_u64()?)
            .ok()
            .and_then(Outcome::from_code)?,
        code: opt_str(v, "code"),
        count: u32::try_from(v["count"].as_u64()?).ok()?,
        detail: opt_str(v, "detail"),
    })
}

/// Checks one request's evidence: its hash recomputes from its fields, every approval
/// signature verifies under the key given, and an executed request has enough of them.
fn check_request(vault_id: &strongroom_core::VaultId, v: &Value) -> Result<usize, String> {
    let id = v["request_id"].as_str().unwrap_or("?").to_owned();
    let bad = |what: &str| format!("request {id}: {what}");
    let parse_id = |name: &str| -> Result<Option<[u8; 16]>, String> {
        match v[name].as_str() {
            None => Ok(None),
            Some(s) => s
                .parse::<strongroom_core::KeyId>()
                .map(|k| Some(*k.as_bytes()))
                .map_err(|_| bad("malformed id")),
        }
    };
    let rec = PendingRecord {
        id: id.parse().map_err(|_| bad("malformed id"))?,
        op: v["operation"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|_| bad("unknown operation"))?,
        params: v["params_canonical"]
            .as_str()
            .ok_or_else(|| bad("no parameters"))?
            .to_owned(),
        domain: parse_id("domain_id")?.map(strongroom_core::DomainId::from_bytes),
        key: parse_id("key_id")?.map(strongroom_core::KeyId::from_bytes),
        requester: String::new(),
        requester_operator: None,
        required: v["required"]
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| bad("no quorum"))?,
        created_at: UnixMillis(0),
        expires_at: UnixMillis(
            v["expires_at_ms"]
                .as_u64()
                .ok_or_else(|| bad("no expiry"))?,
        ),
        nonce: hex_n(v, "nonce").ok_or_else(|| bad("no nonce"))?,
        hash: [0; 32],
        status: RequestStatus::Pending,
        result: None,
        decided_at: None,
        mac: [0; 32],
    };
    let hash = strongroom_crypto::request_hash(vault_id, &rec);
    if Some(hash) != hex_n::<32>(v, "hash") {
        return Err(bad("hash does not match its fields (edited)"));
    }
    let mut distinct = std::collections::BTreeSet::new();
    for a in v["approvals"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(pk), Some(sig)) = (hex_n::<32>(a, "public_key"), hex_n::<64>(a, "signature"))
        else {
            return Err(bad("an approval lacks its key or signature"));
        };
        if !strongroom_crypto::verify_approval(&pk, &hash, &sig) {
            return Err(bad("an approval signature does not verify"));
        }
        distinct.insert(a["approver"].as_str().unwrap_or_default().to_owned());
    }
    if v["status"] == "executed" && distinct.len() < usize::from(rec.required) {
        return Err(bad("executed with fewer valid approvals than required"));
    }
    Ok(distinct.len())
}

/// `audit verify --file`: checks an export (chain, heads, approvals) with nothing but the file.
pub(crate) fn run_file(out: &Output, file: &Path, pinned: Option<&str>) -> Result<(), CliError> {
    use std::io::BufRead;
    let fail = |m: String| {
        if out.json {
            println!(
                "{}",
                json!({"ok": false, "first_bad_record": null, "error": m})
            );
            CliError::Reported
        } else {
            CliError::Tampered(format!("audit export TAMPERED: {m}"))
        }
    };
    let f = std::fs::File::open(file)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", file.display())))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let header: Value = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| serde_json::from_str(&l).ok())
        .ok_or_else(|| fail("not an audit export (no header)".into()))?;
    if header["format"] != "strongroom-audit-export/v1" {
        return Err(fail("not a strongroom audit export (format)".into()));
    }
    let vault_id: strongroom_core::VaultId = header["vault_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("header has no vault id".into()))?;
    let file_key = hex_n::<32>(&header, "audit_public_key");
    let key = match pinned {
        Some(p) => {
            let p: [u8; 32] = hex::decode(p.trim_start_matches("0x"))
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CliError::Input("--audit-key must be 32 bytes of hex".into()))?;
            if file_key.is_some_and(|k| k != p) {
                return Err(fail(
                    "the export names a different audit key than the one pinned".into(),
                ));
            }
            Some(p)
        }
        None => file_key,
    };
    let mut heads = vec![];
    let mut evidence = Evidence {
        requests: 0,
        approvals: 0,
    };
    let mut verifier: Option<Verifier> = None;
    for (n, l) in lines.enumerate() {
        let l = l.map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
        let v: Value =
            serde_json::from_str(&l).map_err(|_| fail(format!("line {} is not JSON", n + 2)))?;
        match v["type"].as_str() {
            Some("head") => heads.push(SignedHead {
                vault_id,
                seq: v["seq"]
                    .as_u64()
                    .ok_or_else(|| fail("malformed head".into()))?,
                hash: hex_n(&v, "hash").ok_or_else(|| fail("malformed head".into()))?,
                time: UnixMillis(
                    v["time_ms"]
                        .as_u64()
                        .ok_or_else(|| fail("malformed head".into()))?,
                ),
                signature: hex_n(&v, "signature").ok_or_else(|| fail("malformed head".into()))?,
            }),
            Some("request") => {
                evidence.approvals += check_request(&vault_id, &v).map_err(&fail)?;
                evidence.requests += 1;
            }
            Some("record") => {
                if verifier.is_none() {
                    // An export must show every event: a sealed one is a finding.
                    verifier = Some(
                        Verifier::new(vault_id, key, &heads)
                            .map_err(|e| report(out, &e))?
                            .require_open(),
                    );
                }
                let r = record_from(&v)
                    .ok_or_else(|| fail(format!("line {} is a malformed record", n + 2)))?;
                if let Some(ver) = verifier.as_mut() {
                    ver.record(&r).map_err(|e| report(out, &e))?;
                }
            }
            _ => return Err(fail(format!("line {} has an unknown type", n + 2))),
        }
    }
    let verifier = match verifier {
        Some(v) => v,
        None => Verifier::new(vault_id, key, &heads).map_err(|e| report(out, &e))?,
    };
    let rep = verifier.finish().map_err(|e| report(out, &e))?;
    print_report(out, &rep, key, &vault_id, Some(&evidence));
    Ok(())
}

fn report(out: &Output, e: &strongroom_audit::VerifyError) -> CliError {
    let first = e.first_bad_record();
    if out.json {
        println!(
            "{}",
            json!({"ok": false, "first_bad_record": first, "error": e.to_string()})
        );
        return CliError::Reported;
    }
    CliError::Tampered(format!("audit log TAMPERED: {e}"))
}
