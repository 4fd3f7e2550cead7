//! Cold-storage bundles. A cold key is exported (`key.export`, gated) as its sealed blob,
//! encrypted again under a fresh key split M-of-N among custodians' age keys, and may be taken
//! offline in the same step; it is imported back with the bundle and M decrypted shares.
//!
//! The key is never opened here: the bundle carries the blob still sealed under its domain
//! key, so a bundle is useless outside this vault even with every custodian's share, and the
//! vault alone cannot use an offline key without the custodians.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use strongroom_core::record::KeyRecord;
use strongroom_core::storage::Mutation;
use strongroom_core::temperature::Temperature;
use strongroom_core::{KeyId, Operation, VaultId};
use strongroom_crypto::AgeRecipient;

use crate::error::ApiError;
use crate::requests::Gated;
use crate::service::{KeyView, RequestCtx, Vault};
use strongroom_core::quorum::GatedOp;

const FORMAT: &str = "strongroom-cold-bundle-v1";

/// Parses custodians' age recipients: exactly `expected`, no custodian twice (two shares in
/// one hand would quietly lower the threshold).
pub(crate) fn parse_custodian_keys(
    keys: &[String],
    expected: usize,
) -> Result<Vec<AgeRecipient>, ApiError> {
    if keys.len() != expected {
        return Err(ApiError::bad(
            "custodian_keys_mismatch",
            format!(
                "{} custodian keys given for {expected} shares: give exactly one per share",
                keys.len()
            ),
        ));
    }
    let mut out: Vec<AgeRecipient> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let r = AgeRecipient::parse(k).map_err(|_| {
            ApiError::bad(
                "invalid_custodian_key",
                format!(
                    "custodian key {} is not an age X25519 recipient (age1...)",
                    i + 1
                ),
            )
        })?;
        if out.contains(&r) {
            return Err(ApiError::bad(
                "duplicate_custodian_key",
                format!(
                    "custodian key {} repeats an earlier one: one share per custodian",
                    i + 1
                ),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// One custodian's share in a bundle file.
#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ShareEntry {
    index: u8,
    recipient: String,
    age: String,
}

/// A bundle file (`docs/formats.md`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    format: String,
    vault_id: String,
    bundle_id: String,
    domain_id: String,
    domain: String,
    key_id: String,
    version: u32,
    algorithm: String,
    label: Option<String>,
    public_key: String,
    created_at_ms: u64,
    threshold: u8,
    shares: Vec<ShareEntry>,
    ciphertext: String,
}

/// What the bundle key's AEAD binds: everything that says which key this is and who holds it.
fn bundle_aad(
    vault: &VaultId,
    bundle_id: &[u8; 16],
    k: &KeyRecord,
    threshold: u8,
    recipients: &[String],
) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(b);
    }
    let mut out = b"strongroom/cold-bundle/v1".to_vec();
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(bundle_id);
    out.extend_from_slice(k.domain.as_bytes());
    out.extend_from_slice(k.id.as_bytes());
    out.extend_from_slice(&k.version.to_be_bytes());
    bytes(&mut out, k.algorithm.as_str().as_bytes());
    out.push(u8::from(k.label.is_some()));
    bytes(&mut out, k.label.as_deref().unwrap_or("").as_bytes());
    bytes(&mut out, &k.public_key);
    out.extend_from_slice(&k.created_at.0.to_be_bytes());
    out.push(threshold);
    out.push(u8::try_from(recipients.len()).unwrap_or(u8::MAX));
    for r in recipients {
        bytes(&mut out, r.as_bytes());
    }
    out
}

/// An exported key: its (possibly offline) record and the bundle file.
#[derive(Serialize)]
pub struct ExportView {
    key: KeyView,
    bundle: Value,
}

fn invalid_bundle(why: &str) -> ApiError {
    ApiError::bad(
        "invalid_bundle",
        format!("not a usable cold-storage bundle: {why}"),
    )
}

impl Vault {
    /// Exports a cold key as a bundle for `custodian_keys`, any `threshold` of whom can open
    /// it; with `remove`, the key goes offline in the same transaction.
    pub(crate) async fn export_key(
        &self,
        ctx: &RequestCtx,
        id: &str,
        custodian_keys: &[String],
        threshold: u8,
        remove: bool,
    ) -> Result<Gated<ExportView>, ApiError> {
        let found = self.key_for(ctx, id, Operation::ExportKey)?;
        let (k, d) = (&found.0, &found.1);
        let recipients = parse_custodian_keys(custodian_keys, custodian_keys.len())?;
        if threshold == 0 || usize::from(threshold) > recipients.len() {
            return Err(ApiError::bad(
                "invalid_threshold",
                "the threshold must be between 1 and the number of custodian keys",
            ));
        }
        exportable(k)?;
        let params = crate::requests::strip_nulls(json!({
            "key": k.id.to_string(),
            "algorithm": k.algorithm.as_str(),
            "label": k.label,
            "domain": d.name.as_str(),
            "public_key": hex::encode(&k.public_key),
            "custodian_keys": recipients.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "threshold": threshold,
            "remove": remove,
        }));
        if let Some(p) = self
            .gate(ctx, GatedOp::ExportKey, params, Some(d.id), Some(k.id))
            .await?
        {
            return Ok(Gated::Pending(p));
        }
        Ok(Gated::Done(
            self.export_key_prepared(ctx, k.id, &recipients, threshold, remove, |_| Ok(None))
                .await?,
        ))
    }

    /// Runs an export (at once, or once approved), with `finish` closing its request.
    pub(crate) async fn export_key_prepared(
        &self,
        ctx: &RequestCtx,
        id: KeyId,
        recipients: &[AgeRecipient],
        threshold: u8,
        remove: bool,
        finish: impl FnOnce(Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<ExportView, ApiError> {
        let found = self
            .keys
            .get(self.store.as_ref(), id)?
            .ok_or(ApiError::NotFound)?;
        let (k, d) = (found.0.clone(), found.1.clone());
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
        });
        exportable(&k)?;
        // Only a genuinely cold key leaves (its temperature MAC must verify).
        if !self.keystore.verify_temperature(&k)? {
            return Err(ApiError::KeyUnavailable);
        }
        let sealed_secret = k.sealed_secret.as_deref().ok_or(ApiError::Internal)?;
        let mut bundle_id = [0u8; 16];
        self.entropy
            .fill(&mut bundle_id)
            .map_err(|_| ApiError::EntropyFailed)?;
        let names: Vec<String> = recipients.iter().map(ToString::to_string).collect();
        let aad = bundle_aad(&self.vault_id, &bundle_id, &k, threshold, &names);
        let sealed = strongroom_crypto::seal_bundle(
            &bundle_id,
            &aad,
            sealed_secret,
            recipients,
            threshold,
            self.entropy.as_ref(),
        )?;
        let file = BundleFile {
            format: FORMAT.to_owned(),
            vault_id: self.vault_id.to_string(),
            bundle_id: hex::encode(bundle_id),
            domain_id: d.id.to_string(),
            domain: d.name.to_string(),
            key_id: k.id.to_string(),
            version: k.version,
            algorithm: k.algorithm.as_str().to_owned(),
            label: k.label.clone(),
            public_key: hex::encode(&k.public_key),
            created_at_ms: k.created_at.0,
            threshold,
            shares: sealed
                .shares
                .iter()
                .map(|s| ShareEntry {
                    index: s.index,
                    recipient: s.recipient.to_string(),
                    age: s.armored.clone(),
                })
                .collect(),
            ciphertext: hex::encode(&sealed.ciphertext),
        };
        let bundle = serde_json::to_value(&file).map_err(|_| ApiError::Internal)?;
        let after = KeyRecord {
            sealed_secret: if remove {
                None
            } else {
                k.sealed_secret.clone()
            },
            ..k.clone()
        };
        let key = KeyView::new(&after, &d);
        let view = json!({"key": &key, "bundle": &bundle});
        let mut mutations = Vec::new();
        if remove {
            mutations.push(Mutation::TakeOffline {
                id: k.id,
                sealed_secret: sealed_secret.to_vec(),
                domain_key_version: k.domain_key_version,
            });
        }
        mutations.extend(finish(view)?);
        self.commit(ctx, "key.export", mutations).await?;
        if remove {
            self.keystore.evict_key(k.id);
            self.keys.put(after, d);
        }
        Ok(ExportView { key, bundle })
    }

    /// Brings an offline key back from its bundle and `threshold` decrypted shares. It
    /// returns cold: warming it is a separate, quorum-approved step.
    pub(crate) async fn import_key(
        &self,
        ctx: &RequestCtx,
        bundle: Value,
        shares: &[zeroize::Zeroizing<String>],
    ) -> Result<KeyView, ApiError> {
        let file: BundleFile = serde_json::from_value(bundle)
            .map_err(|_| invalid_bundle("it does not have the bundle's fields"))?;
        if file.format != FORMAT {
            return Err(invalid_bundle("unknown format"));
        }
        let found = self.key_for(ctx, &file.key_id, Operation::ImportKey)?;
        let (k, d) = (found.0.clone(), found.1.clone());
        if file.vault_id != self.vault_id.to_string() {
            return Err(ApiError::bad(
                "foreign_bundle",
                "the bundle belongs to another vault",
            ));
        }
        let same = file.domain_id == d.id.to_string()
            && file.version == k.version
            && file.algorithm == k.algorithm.as_str()
            && file.label == k.label
            && file.public_key == hex::encode(&k.public_key)
            && file.created_at_ms == k.created_at.0;
        if !same {
            return Err(ApiError::conflict(
                "bundle_mismatch",
                "the bundle does not describe this key",
            ));
        }
        if k.destroyed_at.is_some() {
            return Err(ApiError::conflict(
                "key_destroyed",
                "the key has been destroyed",
            ));
        }
        if k.sealed_secret.is_some() {
            return Err(ApiError::conflict(
                "key_online",
                "the key is online already; only an offline key is imported",
            ));
        }
        let bundle_id: [u8; 16] = hex::decode(&file.bundle_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid_bundle("bad bundle id"))?;
        let ciphertext =
            hex::decode(&file.ciphertext).map_err(|_| invalid_bundle("bad ciphertext"))?;
        let names: Vec<String> = file.shares.iter().map(|s| s.recipient.clone()).collect();
        let aad = bundle_aad(&self.vault_id, &bundle_id, &k, file.threshold, &names);
        let texts: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
        let secret =
            strongroom_crypto::open_bundle(&bundle_id, file.threshold, &aad, &ciphertext, &texts)
                .map_err(|e| match e {
                strongroom_crypto::Error::ShareParameters => ApiError::bad(
                    "too_few_shares",
                    format!("give {} distinct shares of this bundle", file.threshold),
                ),
                strongroom_crypto::Error::MalformedShare => ApiError::bad(
                    "invalid_share",
                    "a share is malformed or belongs to another bundle",
                ),
                _ => ApiError::bad(
                    "bundle_unseal_failed",
                    "the shares do not open this bundle (a wrong share, or the bundle was altered)",
                ),
            })?;
        let restored = KeyRecord {
            sealed_secret: Some(secret.to_vec()),
            ..k.clone()
        };
        // Only a blob that opens goes back online: a copy bundle made before a domain key
        // rotation holds a blob under a version that may be gone.
        self.keystore
            .check_opens(&d, &restored)
            .map_err(|e| match e {
                strongroom_keystore::Error::KeyUnavailable => ApiError::conflict(
                    "bundle_stale",
                    "this bundle's key does not open under the domain's master key (a rotation moved the key after the bundle was made): import the bundle made when the key went offline",
                ),
                other => other.into(),
            })?;
        self.commit(
            ctx,
            "key.import",
            vec![Mutation::RestoreSecret {
                id: k.id,
                sealed_secret: secret.to_vec(),
            }],
        )
        .await?;
        let view = KeyView::new(&restored, &d);
        self.keys.put(restored, d);
        Ok(view)
    }
}

/// A key may leave only while cold and online.
fn exportable(k: &KeyRecord) -> Result<(), ApiError> {
    if k.destroyed_at.is_some() {
        return Err(ApiError::conflict(
            "key_destroyed",
            "the key has been destroyed",
        ));
    }
    if k.sealed_secret.is_none() {
        return Err(ApiError::conflict(
            "key_offline",
            "the key is offline (exported); import it first",
        ));
    }
    if k.temperature != Temperature::Cold {
        return Err(ApiError::conflict(
            "key_not_cold",
            "only a cold key is exported: freeze it first (key temperature ID cold)",
        ));
    }
    Ok(())
}

/// Reads an approved request's parameters back.
pub(crate) fn export_params(p: &Value) -> Result<(Vec<AgeRecipient>, u8, bool), ApiError> {
    let bad = || {
        ApiError::bad(
            "invalid_request_params",
            "the request's parameters are unusable",
        )
    };
    let keys: Vec<String> = p["custodian_keys"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let recipients = parse_custodian_keys(&keys, keys.len())?;
    let threshold = p["threshold"]
        .as_u64()
        .and_then(|t| u8::try_from(t).ok())
        .ok_or_else(bad)?;
    Ok((
        recipients,
        threshold,
        p["remove"].as_bool().unwrap_or(false),
    ))
}
