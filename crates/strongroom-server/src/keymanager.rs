//! The Ethereum Keymanager API (`/eth/v1/keystores`), so staking tools can manage a domain's
//! validator keys: list the active ones, import EIP-2335 keystores with their EIP-3076
//! slashing data, and delete keys — which makes them cold at once and returns their slashing
//! data.
//!
//! It is served on the main listener behind a key-manager token (`token create --scope
//! keymanager`), confined to the token's domain. It must not sign, warm a key or destroy
//! one: a deleted key stays in the vault, cold, until `key destroy` (under the quorum rule)
//! removes it, and making it hot again is `eth2 promote` (under the quorum rule).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::slashing::Interchange;
use strongroom_core::storage::Mutation;
use strongroom_core::temperature::Temperature;
use strongroom_core::{Algorithm, KeyId, Operation};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::service::{RequestCtx, Vault, allow, live_domain};

/// The most keystores one import carries (each costs its KDF, about half a second).
pub(crate) const MAX_KEYSTORES: usize = 256;
/// The most public keys one delete names.
pub(crate) const MAX_DELETE: usize = 10_000;

/// `POST /eth/v1/keystores`. Keystores and the interchange arrive as JSON strings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportRequest {
    keystores: Vec<String>,
    passwords: Vec<Zeroizing<String>>,
    #[serde(default)]
    slashing_protection: Option<String>,
}

/// `DELETE /eth/v1/keystores`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteRequest {
    pubkeys: Vec<String>,
}

/// One key as `GET /eth/v1/keystores` lists it.
#[derive(Serialize)]
pub(crate) struct Listed {
    validating_pubkey: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    derivation_path: Option<String>,
    readonly: bool,
}

/// The status of one keystore or key, as the Keymanager API names them.
#[derive(Serialize)]
pub(crate) struct Status {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl Status {
    fn of(status: &'static str) -> Self {
        Status {
            status,
            message: None,
        }
    }
}

/// The answer to a delete.
#[derive(Serialize)]
pub(crate) struct Deleted {
    data: Vec<Status>,
    /// The EIP-3076 interchange of the keys deleted or not active, as a JSON string.
    slashing_protection: String,
}

/// `0x` and the public key in hex, as consensus clients write it.
fn pubkey_hex(k: &[u8]) -> String {
    format!("0x{}", hex::encode(k))
}

/// The EIP-2334 path in a key's label, if it has one.
pub(crate) fn derivation_path(label: Option<&str>) -> Option<String> {
    let label = label?;
    let at = label.find("m/")?;
    let path = &label[at..];
    path.split('/')
        .skip(1)
        .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        .then(|| path.to_owned())
}

impl Vault {
    /// Refuses an interchange for another chain than the one `[eth2]` names.
    pub(crate) fn check_chain(&self, ic: &Interchange) -> Result<(), ApiError> {
        match self.eth2_genesis {
            Some(g) if g != ic.genesis_validators_root => Err(ApiError::conflict(
                "wrong_chain",
                "the interchange is for another chain than the configured genesis validators root",
            )),
            _ => Ok(()),
        }
    }

    /// The domain the Keymanager API acts in (the token's own), authorised.
    fn keymanager_domain(&self, ctx: &RequestCtx) -> Result<DomainRecord, ApiError> {
        let d = self.resolve_domain(ctx, None)?;
        allow(ctx, &Operation::ManageValidators(d.id))?;
        Ok(d)
    }

    /// The domain's validator keys that have not been destroyed, their rows checked.
    fn validator_records(&self, d: &DomainRecord) -> Result<Vec<KeyRecord>, ApiError> {
        let mut out = Vec::new();
        for k in self.store.keys(d.id)? {
            if k.algorithm == Algorithm::Bls12381 && k.destroyed_at.is_none() {
                self.check_public(&k)?;
                out.push(k);
            }
        }
        Ok(out)
    }

    /// `GET /eth/v1/keystores`: the domain's active (warm or hot) validator keys.
    pub(crate) fn keymanager_list(&self, ctx: &RequestCtx) -> Result<serde_json::Value, ApiError> {
        let d = self.keymanager_domain(ctx)?;
        let mut data: Vec<Listed> = self
            .validator_records(&d)?
            .into_iter()
            .filter(|k| k.temperature != Temperature::Cold && k.sealed_secret.is_some())
            .map(|k| Listed {
                validating_pubkey: pubkey_hex(&k.public_key),
                derivation_path: derivation_path(k.label.as_deref()),
                readonly: false,
            })
            .collect();
        // A stable order: by public key.
        data.sort_by(|a, b| a.validating_pubkey.cmp(&b.validating_pubkey));
        Ok(serde_json::json!({ "data": data }))
    }

    /// `POST /eth/v1/keystores`: decrypts each keystore with its password (on every core),
    /// and records the new keys, at the domain's new-key temperature, in one transaction with
    /// the slashing data for the keystores' validators. A keystore that does not open fails
    /// alone; a key the domain holds is a duplicate (a deleted key is made active again only
    /// by `eth2 promote`, under the quorum rule).
    pub(crate) async fn keymanager_import(
        &self,
        ctx: &RequestCtx,
        req: ImportRequest,
    ) -> Result<serde_json::Value, ApiError> {
        let d = self.keymanager_domain(ctx)?;
        live_domain(&d)?;
        if req.keystores.len() != req.passwords.len() {
            return Err(ApiError::bad(
                "invalid_request",
                "passwords[i] must unlock keystores[i]: the lists differ in length",
            ));
        }
        if req.keystores.len() > MAX_KEYSTORES {
            return Err(ApiError::bad(
                "invalid_count",
                format!("at most {MAX_KEYSTORES} keystores per request"),
            ));
        }
        let interchange = req
            .slashing_protection
            .as_deref()
            .map(|s| strongroom_chains::slashing::parse_interchange(s.as_bytes()))
            .transpose()?;
        if let Some(ic) = &interchange {
            self.check_chain(ic)?;
        }
        let held: HashSet<Vec<u8>> = self
            .validator_records(&d)?
            .into_iter()
            .map(|k| k.public_key)
            .collect();
        // Each keystore: an early answer (held already, unreadable), or work for the KDF. Two
        // keystores of one key in a request are told apart after decryption: the first that
        // opens is imported.
        let mut statuses: Vec<Option<Status>> = Vec::with_capacity(req.keystores.len());
        let mut todo = Vec::new();
        // The keys this request proves the domain holds (their slashing data is taken).
        let mut named: HashSet<Vec<u8>> = HashSet::new();
        for (i, ks) in req.keystores.iter().enumerate() {
            let pubkey = match strongroom_crypto::eip2335_pubkey(ks.as_bytes()) {
                Ok(p) => p,
                Err(_) => {
                    statuses.push(Some(error_status(
                        strongroom_crypto::Error::InvalidKeystore,
                    )));
                    continue;
                }
            };
            if let Some(p) = &pubkey
                && held.contains(p)
            {
                named.insert(p.clone());
                statuses.push(Some(Status::of("duplicate")));
                continue;
            }
            let path: Option<String> = serde_json::from_str::<serde_json::Value>(ks)
                .ok()
                .and_then(|v| v.get("path").and_then(|p| p.as_str()).map(str::to_owned))
                .filter(|p| derivation_path(Some(p)).is_some());
            let label = match path {
                Some(p) => format!("eth2 keymanager {p}"),
                None => "eth2 keymanager".to_owned(),
            };
            todo.push((i, KeyId::from_random(self.random_bytes()?), label));
            statuses.push(None);
        }
        let results = if todo.is_empty() {
            Vec::new()
        } else {
            let items = todo
                .iter()
                .map(|(i, id, label)| {
                    (
                        *id,
                        req.keystores[*i].as_bytes().to_vec(),
                        label.clone(),
                        req.passwords[*i].clone(),
                    )
                })
                .collect();
            self.open_keystores(&d, ctx.time, items).await?
        };
        let mut created = Vec::new();
        let mut mutations = Vec::new();
        for ((i, _, _), result) in todo.iter().zip(results) {
            statuses[*i] = Some(match result {
                // One the domain holds (a keystore without `pubkey`), or another keystore's
                // in this request.
                Ok(r)
                    if held.contains(&r.public_key)
                        || created
                            .iter()
                            .any(|c: &KeyRecord| c.public_key == r.public_key) =>
                {
                    named.insert(r.public_key.clone());
                    Status::of("duplicate")
                }
                Ok(r) => {
                    named.insert(r.public_key.clone());
                    mutations.push(Mutation::CreateKey(r.clone()));
                    created.push(r);
                    Status::of("imported")
                }
                Err(strongroom_keystore::Error::Crypto(c)) => error_status(c),
                Err(e) => return Err(e.into()),
            });
        }
        // The slashing data of the validators whose keys this request shows the domain holds,
        // recorded with the keys. Holding the key makes the domain one of the validator's
        // (so it may add to records another domain began).
        let mut imported_history = 0;
        if let Some(ic) = interchange {
            let data: Vec<_> = ic
                .data
                .into_iter()
                .filter(|h| named.contains(h.pubkey.as_slice()))
                .collect();
            // Nothing of this request's: nothing recorded (and the domain not pinned by a
            // document that concerned none of its keys).
            if data.is_empty() {
                return self
                    .keymanager_import_commit(ctx, &d, statuses, created, mutations, 0)
                    .await;
            }
            imported_history = data.len();
            let mut joins: Vec<[u8; 48]> = data.iter().map(|h| h.pubkey).collect();
            joins.sort_unstable();
            joins.dedup();
            let mut first = joins
                .into_iter()
                .map(|pubkey| Mutation::Eth2Join {
                    domain: d.id,
                    validator: strongroom_core::slashing::Validator {
                        genesis_validators_root: ic.genesis_validators_root,
                        pubkey,
                    },
                })
                .collect::<Vec<_>>();
            first.push(Mutation::Eth2Import {
                domain: d.id,
                interchange: Interchange {
                    genesis_validators_root: ic.genesis_validators_root,
                    data,
                },
            });
            mutations.splice(0..0, first);
        }
        self.keymanager_import_commit(ctx, &d, statuses, created, mutations, imported_history)
            .await
    }

    /// Records an import's keys (and slashing data) and answers with each keystore's status.
    async fn keymanager_import_commit(
        &self,
        ctx: &RequestCtx,
        d: &DomainRecord,
        statuses: Vec<Option<Status>>,
        created: Vec<KeyRecord>,
        mutations: Vec<Mutation>,
        imported_history: usize,
    ) -> Result<serde_json::Value, ApiError> {
        let data: Vec<Status> = statuses
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Status::of("error")))
            .collect();
        let count = |s: &str| data.iter().filter(|x| x.status == s).count();
        ctx.tag(|t| {
            t.domain = Some(d.id);
            t.detail = Some(
                serde_json::json!({"keystores": data.len(), "imported": count("imported"),
                    "duplicate": count("duplicate"), "error": count("error"),
                    "slashing_histories": imported_history,
                    "first": created.first().map(|k| pubkey_hex(&k.public_key))})
                .to_string(),
            );
        });
        if !mutations.is_empty() {
            self.commit(ctx, "keymanager.import", mutations).await?;
        }
        for record in created {
            self.keys.put(record, d.clone());
        }
        Ok(serde_json::json!({ "data": data }))
    }

    /// `DELETE /eth/v1/keystores`: makes each named key cold (so no node signs with it from
    /// the moment this commits), then returns the slashing data of the keys deleted or
    /// already inactive. The keys stay in the vault, cold; destroying them follows the quorum
    /// rule.
    pub(crate) async fn keymanager_delete(
        &self,
        ctx: &RequestCtx,
        req: DeleteRequest,
    ) -> Result<Deleted, ApiError> {
        let d = self.keymanager_domain(ctx)?;
        if req.pubkeys.len() > MAX_DELETE {
            return Err(ApiError::bad(
                "invalid_count",
                format!("at most {MAX_DELETE} public keys per request"),
            ));
        }
        let mut asked = Vec::with_capacity(req.pubkeys.len());
        for p in &req.pubkeys {
            let bytes = p
                .strip_prefix("0x")
                .filter(|h| h.len() == 96)
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| {
                    ApiError::bad("invalid_pubkey", "each public key is 0x and 96 hex digits")
                })?;
            asked.push(bytes);
        }
        let by_pubkey: HashMap<Vec<u8>, KeyRecord> = self
            .validator_records(&d)?
            .into_iter()
            .map(|k| (k.public_key.clone(), k))
            .collect();
        // Demote every active key named, in one transaction.
        let mut mutations = Vec::new();
        let mut demoted = Vec::new();
        let mut active = HashSet::new();
        let mut released = HashSet::new();
        for p in &asked {
            let Some(k) = by_pubkey.get(p) else { continue };
            // Its slashing data goes to the caller, to run it elsewhere: batch promotion
            // passes it over from now on.
            if released.insert(k.id) {
                mutations.push(Mutation::Eth2Release {
                    key: k.id,
                    at: ctx.time,
                    how: "keymanager.delete",
                });
            }
            if k.temperature == Temperature::Cold || !active.insert(p.clone()) {
                continue;
            }
            let mut next = KeyRecord {
                temperature: Temperature::Cold,
                temperature_since: ctx.time,
                hot_idle_secs: None,
                ..k.clone()
            };
            next.temperature_mac = self.keystore.temperature_mac(&next)?;
            mutations.push(Mutation::SetTemperature {
                id: k.id,
                temperature: Temperature::Cold,
                since: ctx.time,
                hot_idle_secs: None,
                mac: next.temperature_mac,
                expected_mac: k.temperature_mac,
            });
            demoted.push(next);
        }
        ctx.tag(|t| {
            t.domain = Some(d.id);
            t.detail = Some(
                serde_json::json!({"pubkeys": asked.len(), "deleted": demoted.len(),
                    "first": asked.first().map(|p| pubkey_hex(p))})
                .to_string(),
            );
        });
        // Durable before the slashing data is read: a duty committed after this (on any node)
        // finds the key cold; one committed before it is in the data.
        self.commit(ctx, "keymanager.delete", mutations).await?;
        for k in demoted {
            self.keystore.evict_key(k.id);
            self.keys.put(k, d.clone());
        }
        let exported = self.store.eth2_export(d.id)?;
        let recorded: HashSet<[u8; 48]> = exported
            .as_ref()
            .map(|ic| ic.data.iter().map(|h| h.pubkey).collect())
            .unwrap_or_default();
        let mut returned = HashSet::new();
        let data = asked
            .iter()
            .map(|p| {
                let known = by_pubkey.contains_key(p)
                    || <[u8; 48]>::try_from(p.as_slice()).is_ok_and(|a| recorded.contains(&a));
                if active.contains(p) {
                    returned.insert(p.clone());
                    Status::of("deleted")
                } else if known {
                    returned.insert(p.clone());
                    Status::of("not_active")
                } else {
                    Status::of("not_found")
                }
            })
            .collect();
        let interchange = Interchange {
            genesis_validators_root: exported
                .as_ref()
                .map(|ic| ic.genesis_validators_root)
                .or(self.eth2_genesis)
                .unwrap_or_default(),
            data: exported
                .map(|ic| {
                    ic.data
                        .into_iter()
                        .filter(|h| returned.contains(h.pubkey.as_slice()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Deleted {
            data,
            slashing_protection: strongroom_chains::slashing::interchange_json(&interchange)
                .to_string(),
        })
    }
}

/// A keystore that could not be imported, as the Keymanager API reports it.
fn error_status(e: strongroom_crypto::Error) -> Status {
    Status {
        status: "error",
        message: Some(crate::eth2::keystore_error(e).message()),
    }
}
