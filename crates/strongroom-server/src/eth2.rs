//! Ethereum validator (BLS12-381) keys: derived in bulk from a BIP-39 mnemonic by EIP-2333 at
//! EIP-2334's signing paths, sealed under the domain key like every key, and taking the
//! domain's new-key temperature.
//!
//! Validator keys never sign through the generic `sign` route: only through the remote-signing
//! API, under slashing protection.

use serde::Serialize;
use strongroom_core::storage::Mutation;
use strongroom_core::{Algorithm, KeyId, Operation};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault, allow, live_domain};

/// The most keys one `eth2 derive` makes.
pub(crate) const MAX_DERIVE: u32 = 10_000;

/// What `POST /v1/eth2/derive` asks for. The mnemonic and passphrase zeroize on drop.
pub(crate) struct Derive {
    pub(crate) domain: Option<String>,
    pub(crate) mnemonic: Zeroizing<String>,
    pub(crate) passphrase: Option<Zeroizing<String>>,
    pub(crate) start: u32,
    pub(crate) count: u32,
}

/// One derived validator key.
#[derive(Serialize)]
pub struct DerivedKey {
    id: String,
    index: u32,
    path: String,
    /// The 48-byte BLS public key, `0x` hex (as consensus clients write it).
    public_key: String,
}

/// What `eth2 derive` made.
#[derive(Serialize)]
pub struct DerivedView {
    domain: String,
    temperature: &'static str,
    created: Vec<DerivedKey>,
    /// Indices whose key the domain already holds (not made again).
    existing: Vec<u32>,
}

impl Vault {
    /// Derives validator keys `start .. start + count` into a domain, skipping those it holds.
    pub(crate) async fn eth2_derive(
        &self,
        ctx: &RequestCtx,
        req: Derive,
    ) -> Result<DerivedView, ApiError> {
        if req.count == 0 || req.count > MAX_DERIVE {
            return Err(ApiError::bad(
                "invalid_count",
                format!("count must be 1 to {MAX_DERIVE}"),
            ));
        }
        let end = req
            .start
            .checked_add(req.count)
            .ok_or_else(|| ApiError::bad("invalid_count", "start + count overflows"))?;
        let (d, held) = self.domain_keys(ctx, req.domain.as_deref())?;
        allow(ctx, &Operation::CreateKey(d.id))?;
        live_domain(&d)?;
        let held: std::collections::HashSet<Vec<u8>> = held
            .into_iter()
            .filter(|k| k.algorithm == Algorithm::Bls12381 && k.destroyed_at.is_none())
            .map(|k| k.public_key)
            .collect();
        let mut wanted = Vec::with_capacity(req.count as usize);
        for index in req.start..end {
            wanted.push((KeyId::from_random(self.random_bytes()?), index));
        }
        // Derivation takes every core for a while: off the async workers.
        let records = {
            let keystore = std::sync::Arc::clone(&self.keystore);
            let (domain, wanted, time) = (d.clone(), wanted.clone(), ctx.time);
            let mnemonic = req.mnemonic.clone();
            let passphrase = req.passphrase.clone().unwrap_or_default();
            tokio::task::spawn_blocking(move || {
                keystore.derive_validator_keys(&domain, &mnemonic, &passphrase, &wanted, time)
            })
            .await
            .map_err(|_| ApiError::Internal)??
        };
        let mut created = Vec::new();
        let mut existing = Vec::new();
        let mut mutations = Vec::new();
        let mut fresh = Vec::new();
        for (record, (_, index)) in records.into_iter().zip(&wanted) {
            if held.contains(&record.public_key) {
                existing.push(*index);
                continue;
            }
            created.push(DerivedKey {
                id: record.id.to_string(),
                index: *index,
                path: format!("m/12381/3600/{index}/0/0"),
                public_key: format!("0x{}", hex::encode(&record.public_key)),
            });
            mutations.push(Mutation::CreateKey(record.clone()));
            fresh.push(record);
        }
        ctx.tag(|t| {
            t.domain = Some(d.id);
            t.detail = Some(
                serde_json::json!({"start": req.start, "count": req.count,
                    "created": created.len(), "existing": existing.len(),
                    "first": created.first().map(|k| &k.public_key),
                    "last": created.last().map(|k| &k.public_key)})
                .to_string(),
            );
        });
        if !mutations.is_empty() {
            self.commit(ctx, "eth2.derive", mutations).await?;
        }
        for record in fresh {
            self.keys.put(record, d.clone());
        }
        Ok(DerivedView {
            domain: d.name.as_str().to_owned(),
            temperature: d.new_key_temperature.as_str(),
            created,
            existing,
        })
    }
}

/// What an interchange import did.
#[derive(Serialize)]
pub struct ImportView {
    domain: String,
    genesis_validators_root: String,
    validators: usize,
    blocks: usize,
    attestations: usize,
}

impl Vault {
    /// Merges an EIP-3076 interchange into the domain's slashing protection. The domain is
    /// pinned to the interchange's chain (or refuses it if pinned to another).
    pub(crate) async fn eth2_slashing_import(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
        body: &[u8],
    ) -> Result<ImportView, ApiError> {
        let d = self.resolve_domain(ctx, domain)?;
        allow(ctx, &Operation::CreateKey(d.id))?;
        live_domain(&d)?;
        let interchange = strongroom_chains::slashing::parse_interchange(body)?;
        self.check_chain(&interchange)?;
        let view = ImportView {
            domain: d.name.as_str().to_owned(),
            genesis_validators_root: format!(
                "0x{}",
                hex::encode(interchange.genesis_validators_root)
            ),
            validators: interchange.data.len(),
            blocks: interchange.data.iter().map(|h| h.blocks.len()).sum(),
            attestations: interchange.data.iter().map(|h| h.attestations.len()).sum(),
        };
        ctx.tag(|t| {
            t.domain = Some(d.id);
            t.detail = serde_json::to_string(&view).ok();
        });
        self.commit(
            ctx,
            "eth2.slashing_import",
            vec![Mutation::Eth2Import {
                domain: d.id,
                interchange,
            }],
        )
        .await?;
        Ok(view)
    }

    /// The domain's slashing-protection records as an EIP-3076 interchange.
    pub(crate) fn eth2_slashing_export(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        let d = self.resolve_domain(ctx, domain)?;
        allow(ctx, &Operation::ReadKeys(d.id))?;
        match self.store.eth2_export(d.id)? {
            Some(ic) => Ok(strongroom_chains::slashing::interchange_json(&ic)),
            None => Err(ApiError::conflict(
                "no_chain",
                "the domain has signed nothing and imported nothing: no chain to export",
            )),
        }
    }
}

/// The most keystores one import request carries (the CLI sends them in batches).
pub(crate) const MAX_IMPORT: usize = 64;

/// What `POST /v1/eth2/import` asks for. The password zeroizes on drop.
pub(crate) struct Import {
    pub(crate) domain: Option<String>,
    pub(crate) password: Zeroizing<String>,
    /// EIP-2335 keystores, each with a name for its label (its file name, say).
    pub(crate) keystores: Vec<(String, serde_json::Value)>,
}

/// What an import made.
#[derive(Serialize)]
pub struct ImportedView {
    domain: String,
    temperature: &'static str,
    created: Vec<DerivedKey>,
    /// Keystores whose key the domain already holds (not decrypted again).
    existing: Vec<String>,
}

impl Vault {
    /// Imports EIP-2335 keystores into a domain: decrypted inside the boundary (on every
    /// core), re-sealed under the domain key, so that the keystore KDF is never paid again.
    pub(crate) async fn eth2_import(
        &self,
        ctx: &RequestCtx,
        req: Import,
    ) -> Result<ImportedView, ApiError> {
        if req.keystores.is_empty() || req.keystores.len() > MAX_IMPORT {
            return Err(ApiError::bad(
                "invalid_count",
                format!("1 to {MAX_IMPORT} keystores per request"),
            ));
        }
        let (d, held) = self.domain_keys(ctx, req.domain.as_deref())?;
        allow(ctx, &Operation::CreateKey(d.id))?;
        live_domain(&d)?;
        let held: std::collections::HashSet<Vec<u8>> = held
            .into_iter()
            .filter(|k| k.algorithm == Algorithm::Bls12381 && k.destroyed_at.is_none())
            .map(|k| k.public_key)
            .collect();
        let mut existing = Vec::new();
        let mut todo = Vec::new();
        for (name, ks) in &req.keystores {
            let bytes = serde_json::to_vec(ks).map_err(|_| ApiError::Internal)?;
            let named = strongroom_crypto::eip2335_pubkey(&bytes).map_err(keystore_error)?;
            if named.is_some_and(|p| held.contains(&p)) {
                existing.push(name.clone());
                continue;
            }
            let label = format!(
                "eth2 keystore {}",
                name.chars().take(100).collect::<String>()
            );
            todo.push((KeyId::from_random(self.random_bytes()?), bytes, label));
        }
        let records = if todo.is_empty() {
            Vec::new()
        } else {
            let items = todo
                .iter()
                .map(|(id, bytes, label)| (*id, bytes.clone(), label.clone(), req.password.clone()))
                .collect();
            let results = self.open_keystores(&d, ctx.time, items).await?;
            // One password for the batch: any keystore it does not open fails the batch.
            results
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(import_error)?
        };
        let mut created = Vec::new();
        let mut mutations = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (record, (_, _, label)) in records.iter().zip(&todo) {
            // A keystore without `pubkey`, or two files of one key.
            if held.contains(&record.public_key) || !seen.insert(record.public_key.clone()) {
                existing.push(label.clone());
                continue;
            }
            created.push(DerivedKey {
                id: record.id.to_string(),
                index: 0,
                path: label.clone(),
                public_key: format!("0x{}", hex::encode(&record.public_key)),
            });
            mutations.push(Mutation::CreateKey(record.clone()));
        }
        ctx.tag(|t| {
            t.domain = Some(d.id);
            t.detail = Some(
                serde_json::json!({"keystores": req.keystores.len(), "created": created.len(),
                    "existing": existing.len()})
                .to_string(),
            );
        });
        if !mutations.is_empty() {
            self.commit(ctx, "eth2.import", mutations).await?;
        }
        for record in records {
            if created.iter().any(|c| c.id == record.id.to_string()) {
                self.keys.put(record, d.clone());
            }
        }
        Ok(ImportedView {
            domain: d.name.as_str().to_owned(),
            temperature: d.new_key_temperature.as_str(),
            created,
            existing,
        })
    }
}

/// One keystore to open: the new key's id, the document, its label and its password.
pub(crate) type ToOpen = (KeyId, Vec<u8>, String, Zeroizing<String>);

impl Vault {
    /// Opens EIP-2335 keystores into new sealed key records (on every core, one batch at a
    /// time per node, off the async workers): one result per keystore.
    pub(crate) async fn open_keystores(
        &self,
        d: &strongroom_core::record::DomainRecord,
        time: strongroom_core::UnixMillis,
        items: Vec<ToOpen>,
    ) -> Result<Vec<Result<strongroom_core::record::KeyRecord, strongroom_keystore::Error>>, ApiError>
    {
        let keystore = std::sync::Arc::clone(&self.keystore);
        let domain = d.clone();
        let turn = self.kdf_turn().await?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let batch: Vec<_> = items
                .iter()
                .map(
                    |(id, bytes, label, password)| strongroom_keystore::KeystoreImport {
                        id: *id,
                        keystore: bytes,
                        label: label.clone(),
                        password: password.as_str(),
                    },
                )
                .collect();
            keystore.import_validator_keys(&domain, &batch, time)
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::from)
    }
}

/// A keystore import failure, as the client sees it.
pub(crate) fn import_error(e: strongroom_keystore::Error) -> ApiError {
    match e {
        strongroom_keystore::Error::Crypto(c) => keystore_error(c),
        other => other.into(),
    }
}

/// A keystore that cannot be opened, as the client sees it.
pub(crate) fn keystore_error(e: strongroom_crypto::Error) -> ApiError {
    match e {
        strongroom_crypto::Error::Unseal => ApiError::bad(
            "wrong_password",
            "the password does not open the keystore (its checksum differs)",
        ),
        strongroom_crypto::Error::InvalidKeyMaterial => ApiError::bad(
            "invalid_keystore",
            "the keystore's secret is not the key its pubkey names",
        ),
        _ => ApiError::bad(
            "invalid_keystore",
            "not an EIP-2335 keystore strongroom accepts (version 4, scrypt or PBKDF2-HMAC-SHA256 within bounds, AES-128-CTR)",
        ),
    }
}

impl Vault {
    /// Files (or, in dev mode, runs) the authorisation of validator key `id`'s voluntary exit
    /// at `epoch`: a `key.sign` request needing at least one approval, because an exit is
    /// irreversible. Once approved, the remote signer signs that exit.
    pub(crate) async fn eth2_authorize_exit(
        &self,
        ctx: &RequestCtx,
        id: &str,
        epoch: u64,
    ) -> Result<crate::requests::Gated<serde_json::Value>, ApiError> {
        let found = self.key_for(ctx, id, Operation::DestroyKey)?;
        let (k, d) = (&found.0, &found.1);
        if k.algorithm != Algorithm::Bls12381 {
            return Err(ApiError::bad(
                "not_a_validator_key",
                "only validator (bls12-381) keys exit",
            ));
        }
        let params = crate::requests::strip_nulls(serde_json::json!({
            "key": k.id.to_string(),
            "algorithm": k.algorithm.as_str(),
            "label": k.label,
            "domain": d.name.as_str(),
            "public_key": format!("0x{}", hex::encode(&k.public_key)),
            "eth2_exit_epoch": epoch,
        }));
        if let Some(p) = self
            .gate_min(
                ctx,
                strongroom_core::quorum::GatedOp::SignWarm,
                params,
                Some(d.id),
                Some(k.id),
                1,
            )
            .await?
        {
            return Ok(crate::requests::Gated::Pending(p));
        }
        self.commit(
            ctx,
            "eth2.authorize_exit",
            vec![Mutation::Eth2AuthorizeExit { key: k.id, epoch }],
        )
        .await?;
        Ok(crate::requests::Gated::Done(
            serde_json::json!({"key": k.id.to_string(), "epoch": epoch, "authorized": true}),
        ))
    }
}

/// The most keys one promotion names.
const MAX_PROMOTE: usize = 10_000;

impl Vault {
    /// Files (or, in dev mode, runs) one `key.warm` request that makes every validator key of
    /// a domain that is colder than `to` that warm: one approval for a whole batch.
    pub(crate) async fn eth2_promote(
        &self,
        ctx: &RequestCtx,
        domain: Option<&str>,
        to: &str,
        idle: Option<u32>,
    ) -> Result<crate::requests::Gated<serde_json::Value>, ApiError> {
        use strongroom_core::temperature::Temperature;
        let to: Temperature = to.parse()?;
        if to == Temperature::Cold {
            return Err(ApiError::bad(
                "invalid_temperature",
                "a promotion makes keys warm or hot (freezing is `key temperature ID cold`)",
            ));
        }
        let (d, keys) = self.domain_keys(ctx, domain)?;
        allow(ctx, &Operation::ChangeTemperature(d.id))?;
        live_domain(&d)?;
        // Keys released to another signer are not promoted in bulk (one at a time, with
        // `key temperature`, whose request warns the approvers).
        let released: std::collections::HashSet<KeyId> = self
            .store
            .eth2_released(d.id)?
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let rank = |t: Temperature| match t {
            Temperature::Cold => 0,
            Temperature::Warm => 1,
            _ => 2,
        };
        let batch: Vec<_> = keys
            .iter()
            .filter(|k| {
                k.algorithm == Algorithm::Bls12381
                    && k.destroyed_at.is_none()
                    && k.sealed_secret.is_some()
                    && rank(k.temperature) < rank(to)
                    && !released.contains(&k.id)
            })
            .collect();
        if batch.is_empty() || batch.len() > MAX_PROMOTE {
            return Err(ApiError::bad(
                "invalid_count",
                format!(
                    "1 to {MAX_PROMOTE} validator keys colder than {to} (found {})",
                    batch.len()
                ),
            ));
        }
        let params = crate::requests::strip_nulls(serde_json::json!({
            "domain": d.name.as_str(),
            "to": to.as_str(),
            "idle_seconds": idle.filter(|_| to == Temperature::Hot),
            "validators": batch.iter().map(|k| serde_json::json!({
                "key": k.id.to_string(),
                "public_key": format!("0x{}", hex::encode(&k.public_key)),
                "from": k.temperature.as_str(),
            })).collect::<Vec<_>>(),
        }));
        if let Some(p) = self
            .gate(
                ctx,
                strongroom_core::quorum::GatedOp::WarmKey,
                params.clone(),
                Some(d.id),
                None,
            )
            .await?
        {
            return Ok(crate::requests::Gated::Pending(p));
        }
        let done = self
            .eth2_promote_prepared(ctx, &params, |_| Ok(None))
            .await?;
        Ok(crate::requests::Gated::Done(done))
    }

    /// Makes the keys a promotion names warmer, each from the temperature the approvers were
    /// shown, in one transaction with `finish`'s mutation.
    pub(crate) async fn eth2_promote_prepared(
        &self,
        ctx: &RequestCtx,
        params: &serde_json::Value,
        finish: impl FnOnce(serde_json::Value) -> Result<Option<Mutation>, ApiError>,
    ) -> Result<serde_json::Value, ApiError> {
        use strongroom_core::record::KeyRecord;
        use strongroom_core::temperature::Temperature;
        let to: Temperature = params["to"].as_str().ok_or(ApiError::Internal)?.parse()?;
        let idle = params
            .get("idle_seconds")
            .and_then(serde_json::Value::as_u64)
            .and_then(|s| u32::try_from(s).ok());
        let mut mutations = Vec::new();
        let mut changed = Vec::new();
        for v in params["validators"].as_array().ok_or(ApiError::Internal)? {
            let id: KeyId = v["key"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or(ApiError::Internal)?;
            let found = self
                .keys
                .get(self.store.as_ref(), id)?
                .ok_or(ApiError::NotFound)?;
            let (k, d) = (&found.0, &found.1);
            if !self.keystore.verify_temperature(k)? {
                return Err(ApiError::KeyUnavailable);
            }
            if k.temperature.as_str() != v["from"].as_str().unwrap_or_default()
                || k.sealed_secret.is_none()
                || k.destroyed_at.is_some()
            {
                return Err(ApiError::conflict(
                    "key_changed",
                    format!("the key {id} changed since the promotion was filed"),
                ));
            }
            let mut next = KeyRecord {
                temperature: to,
                temperature_since: ctx.time,
                hot_idle_secs: idle.filter(|_| to == Temperature::Hot),
                ..k.clone()
            };
            next.temperature_mac = self.keystore.temperature_mac(&next)?;
            mutations.push(Mutation::SetTemperature {
                id,
                temperature: to,
                since: next.temperature_since,
                hot_idle_secs: next.hot_idle_secs,
                mac: next.temperature_mac,
                expected_mac: k.temperature_mac,
            });
            changed.push((next, d.clone()));
        }
        let result = serde_json::json!({"promoted": changed.len(), "to": to.as_str()});
        ctx.tag(|t| {
            t.domain = changed.first().map(|(_, d)| d.id);
            t.detail = Some(result.to_string());
        });
        mutations.extend(finish(result.clone())?);
        self.commit(ctx, "key.warm", mutations).await?;
        for (k, d) in changed {
            self.keys.put(k, d);
        }
        Ok(result)
    }
}

/// What `POST /v1/eth2/export-keystore` asks for: file a request for key `key`, or collect
/// approved request `request`. The password zeroizes on drop and is never stored.
pub(crate) struct ExportKeystore {
    pub(crate) key: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) password: Zeroizing<String>,
    pub(crate) kdf: Option<String>,
}

fn parse_kdf(kdf: Option<&str>) -> Result<strongroom_crypto::Eip2335Kdf, ApiError> {
    match kdf.unwrap_or("scrypt") {
        "scrypt" => Ok(strongroom_crypto::Eip2335Kdf::Scrypt),
        "pbkdf2" => Ok(strongroom_crypto::Eip2335Kdf::Pbkdf2),
        _ => Err(ApiError::bad(
            "invalid_kdf",
            "the keystore KDF is scrypt or pbkdf2",
        )),
    }
}

/// A validator key that may leave as a keystore: live, sealed here, and cold (a key that
/// could still sign duties here must not be loadable elsewhere).
pub(crate) fn exportable_validator(k: &strongroom_core::record::KeyRecord) -> Result<(), ApiError> {
    if k.algorithm != Algorithm::Bls12381 {
        return Err(ApiError::bad(
            "not_a_validator_key",
            "only validator (bls12-381) keys are written as EIP-2335 keystores",
        ));
    }
    if k.destroyed_at.is_some() || k.sealed_secret.is_none() {
        return Err(ApiError::NotFound);
    }
    if k.temperature != strongroom_core::temperature::Temperature::Cold {
        return Err(ApiError::conflict(
            "key_not_cold",
            "make the key cold first (key temperature ID cold, or the Keymanager API's delete): a key that can sign here must not be loadable elsewhere",
        ));
    }
    Ok(())
}

impl Vault {
    /// Writes a cold validator key out as an EIP-2335 keystore, only by quorum: the first
    /// call files a `key.export` request (answering 202); once it is approved, its requester
    /// collects the keystore within an hour by calling again with the request's id and the
    /// password. The password is used at collection only, never stored.
    pub(crate) async fn eth2_export_keystore(
        &self,
        ctx: &RequestCtx,
        req: ExportKeystore,
    ) -> Result<crate::requests::Gated<serde_json::Value>, ApiError> {
        if req.password.chars().count() < 8 {
            return Err(ApiError::bad(
                "weak_password",
                "a keystore password has at least 8 characters",
            ));
        }
        let (found, kdf, request) = match (req.key.as_deref(), req.request.as_deref()) {
            (Some(id), None) => {
                let found = self.key_for(ctx, id, Operation::ExportKey)?;
                let kdf = parse_kdf(req.kdf.as_deref())?;
                {
                    let (k, d) = (&found.0, &found.1);
                    exportable_validator(k)?;
                    let params = crate::requests::strip_nulls(serde_json::json!({
                        "key": k.id.to_string(),
                        "algorithm": k.algorithm.as_str(),
                        "label": k.label,
                        "domain": d.name.as_str(),
                        "public_key": format!("0x{}", hex::encode(&k.public_key)),
                        "eth2_keystore": req.kdf.as_deref().unwrap_or("scrypt"),
                    }));
                    if let Some(p) = self
                        .gate(
                            ctx,
                            strongroom_core::quorum::GatedOp::ExportKey,
                            params,
                            Some(d.id),
                            Some(k.id),
                        )
                        .await?
                    {
                        return Ok(crate::requests::Gated::Pending(p));
                    }
                }
                (found, kdf, None)
            }
            (None, Some(request)) => {
                let (rec, _) = self.collectable(
                    ctx,
                    request,
                    strongroom_core::quorum::GatedOp::ExportKey,
                    "keystore export",
                )?;
                let params: serde_json::Value =
                    serde_json::from_str(&rec.params).map_err(|_| ApiError::Internal)?;
                if params.get("eth2_keystore").is_none() {
                    return Err(ApiError::NotFound);
                }
                let id = rec.key.ok_or(ApiError::NotFound)?;
                let found = self.key_for(ctx, &id.to_string(), Operation::ExportKey)?;
                let kdf = parse_kdf(params["eth2_keystore"].as_str())?;
                (found, kdf, Some(rec))
            }
            _ => {
                return Err(ApiError::bad(
                    "invalid_request",
                    "name the key (to file the export) or the approved request (to collect it)",
                ));
            }
        };
        let (k, d) = (found.0.clone(), found.1.clone());
        exportable_validator(&k)?;
        ctx.tag(|t| {
            t.key = Some(k.id);
            t.domain = Some(d.id);
            t.acting_for = request.as_ref().map(|r| r.id);
            t.detail = Some(
                serde_json::json!({"public_key": format!("0x{}", hex::encode(&k.public_key))})
                    .to_string(),
            );
        });
        let path = crate::keymanager::derivation_path(k.label.as_deref()).unwrap_or_default();
        let key_id = k.id;
        let keystore = {
            let ks = std::sync::Arc::clone(&self.keystore);
            let password = req.password.clone();
            let turn = self.kdf_turn().await?;
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                ks.export_validator_keystore(&d, &k, &password, kdf, &path)
            })
            .await
            .map_err(|_| ApiError::Internal)??
        };
        // Released only if the key is still cold as stored (whatever this node's cache
        // says), and a request's keystore only once: both in the transaction with the audit
        // record.
        let mut mutations = vec![
            Mutation::RequireColdKey { key: key_id },
            Mutation::Eth2Release {
                key: key_id,
                at: ctx.time,
                how: "eth2.export_keystore",
            },
        ];
        if let Some(rec) = &request {
            let result = rec
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            mutations.push(self.collected(ctx, rec, result, serde_json::json!({}))?);
        }
        self.commit(ctx, "eth2.export_keystore", mutations)
            .await
            .map_err(|e| match e {
                // A second collection racing this one closed the request first.
                ApiError::Conflict {
                    code: "conflict", ..
                } => crate::requests::collected_once("keystore export"),
                other => other,
            })?;
        let doc: serde_json::Value =
            serde_json::from_slice(&keystore).map_err(|_| ApiError::Internal)?;
        Ok(crate::requests::Gated::Done(
            serde_json::json!({"keystore": doc}),
        ))
    }
}
