//! `strongroom audit verify --data DIR`: checks the audit chain offline, straight from the
//! database file and the signed-head file, without the server or any secret.

use std::path::Path;

use serde_json::json;
use strongroom_audit::{Verifier, verify_head_signature};
use strongroom_core::storage::Storage;
use strongroom_storage::{HeadFile, SqliteStore};

use crate::client::CliError;
use crate::output::Output;

const PAGE: usize = 10_000;

pub(crate) fn run(out: &Output, data: &Path, pinned: Option<&str>) -> Result<(), CliError> {
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
    let store = SqliteStore::open_read_only(&data.join("vault.db"))
        .map_err(|e| fail(format!("cannot open the database: {e}")))?;
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
    if out.json {
        println!(
            "{}",
            json!({"ok": true, "records": rep.records, "signed_heads": rep.heads, "signed_through": rep.signed_through, "newest_head_hash": rep.newest_head_hash.map(hex::encode),
                   "audit_public_key": key.map(hex::encode), "vault_id": meta.vault_id.to_string()})
        );
    } else {
        println!(
            "audit log OK: {} records, {} signed heads, signed through record {}",
            rep.records, rep.heads, rep.signed_through
        );
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
