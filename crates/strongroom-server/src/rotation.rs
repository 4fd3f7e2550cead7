//! Domain master key rotation. `domain rotate` makes a new version of the domain's master key,
//! which seals every new blob at once; the previous version retires. A background task on
//! every node then moves the domain's key blobs to the new version in batches (each batch one
//! write transaction with its audit record, each key by compare-and-swap), while signing goes
//! on: a key opens under whichever version its row names. When no live key is left under the
//! retiring version — keys offline in export bundles included, which wait for their import —
//! it is erased. The state is all in the database, so a crash resumes where it stopped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use strongroom_core::record::Outcome;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::storage::Mutation;
use strongroom_core::{DomainId, KeyId, Operation, Principal};

use crate::error::ApiError;
use crate::service::{DomainView, RequestCtx, Vault, allow, live_domain};

/// How often an idle node looks for rotations another node started (it is woken at once for
/// its own).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// A domain with its master key version and any rotation in progress.
#[derive(Serialize)]
pub struct DomainDetail {
    #[serde(flatten)]
    domain: DomainView,
    key_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation: Option<RotationView>,
}

/// A rotation's progress.
#[derive(Serialize)]
pub struct RotationView {
    from_version: u32,
    to_version: u32,
    /// Online keys still under the retiring version (moved in the background).
    remaining: u64,
    /// Keys offline in export bundles under the retiring version: the rotation ends once
    /// each is imported (and moved) or destroyed.
    offline: u64,
}

impl Vault {
    /// Starts rotating `name`'s master key (security officers).
    pub(crate) async fn rotate_domain(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<DomainDetail, ApiError> {
        let d = self.domain_named(name)?;
        allow(ctx, &Operation::RotateDomain(d.id))?;
        ctx.tag(|t| t.domain = Some(d.id));
        live_domain(&d)?;
        if d.retiring.is_some() {
            return Err(ApiError::conflict(
                "rotation_in_progress",
                "this domain's master key is already being rotated; see domain show",
            ));
        }
        // Read before the new key is wrapped, as for a new domain: a rekey landing in between
        // makes the commit fail instead of leaving the key under a retired root.
        let seal = self.keystore.seal_config()?;
        let (version, wrapped) = self.keystore.rotate_domain_key(&d)?;
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({"from_version": d.key_version, "to_version": version})
                    .to_string(),
            );
        });
        self.commit(
            ctx,
            "domain.rotate",
            vec![
                Mutation::ExpectSeal(seal),
                Mutation::RotateDomainKey {
                    id: d.id,
                    from_version: d.key_version,
                    from_wrapped: d.wrapped_key.clone(),
                    to_version: version,
                    to_wrapped: wrapped,
                },
            ],
        )
        .await
        .map_err(|e| match e {
            ApiError::Conflict { .. } => ApiError::conflict(
                "domain_changed",
                "the domain (or the root key) changed while the rotation started; nothing changed, try again",
            ),
            other => other,
        })?;
        self.rotation_wake.notify_one();
        self.domain_detail(&self.domain_named(name)?)
    }

    /// A domain with its key version and rotation progress.
    pub(crate) fn show_domain(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<DomainDetail, ApiError> {
        allow(ctx, &Operation::ListDomains)?;
        let d = self.domain_named(name)?;
        self.domain_detail(&d)
    }

    fn domain_detail(&self, d: &DomainRecord) -> Result<DomainDetail, ApiError> {
        let rotation = match &d.retiring {
            None => None,
            Some(r) => {
                let (remaining, offline) = self.store.keys_under(d.id, r.version)?;
                Some(RotationView {
                    from_version: r.version,
                    to_version: d.key_version,
                    remaining,
                    offline,
                })
            }
        };
        Ok(DomainDetail {
            domain: DomainView::from(d),
            key_version: d.key_version,
            rotation,
        })
    }
}

/// The background mover's state on this node.
struct Mover {
    batch: u32,
    /// Keys whose blob did not open under the retiring version: audited once, then left (the
    /// rotation keeps that version rather than lose them), so they do not block the others.
    stuck: HashSet<KeyId>,
    /// The last failure audited per domain (`None`: reading the domains), so that one that
    /// persists is on the record once, not at every poll.
    reported: HashMap<Option<DomainId>, &'static str>,
}

impl Mover {
    /// One batch for every rotating domain (or its end). Whether there is more to do at once.
    async fn step(&mut self, v: &Vault) -> bool {
        if v.keystore.status().sealed {
            return false;
        }
        let domains = match v.store.domains() {
            Ok(d) => d,
            Err(e) => {
                self.failed(v, None, &e.into()).await;
                return false;
            }
        };
        let mut more = false;
        for d in domains
            .iter()
            .filter(|d| d.retiring.is_some() && d.destroyed_at.is_none())
        {
            match self.domain_step(v, d).await {
                Ok(m) => {
                    self.reported.remove(&Some(d.id));
                    more |= m;
                }
                Err(e) => self.failed(v, Some(d.id), &e).await,
            }
        }
        more
    }

    async fn domain_step(&mut self, v: &Vault, d: &DomainRecord) -> Result<bool, ApiError> {
        let Some(retiring) = &d.retiring else {
            return Ok(false);
        };
        let limit = self
            .batch
            .saturating_add(u32::try_from(self.stuck.len()).unwrap_or(u32::MAX));
        let keys: Vec<KeyRecord> = v
            .store
            .keys_to_rewrap(d.id, retiring.version, limit)?
            .into_iter()
            .filter(|k| !self.stuck.contains(&k.id))
            .take(usize::try_from(self.batch).unwrap_or(usize::MAX))
            .collect();
        let ctx = v.system_ctx(Principal::System)?;
        ctx.tag(|t| t.domain = Some(d.id));
        if keys.is_empty() {
            let (online, offline) = v.store.keys_under(d.id, retiring.version)?;
            if online + offline > 0 {
                // Offline keys (and any stuck one) hold the retiring version.
                return Ok(false);
            }
            ctx.tag(|t| {
                t.detail =
                    Some(serde_json::json!({"retired_version": retiring.version}).to_string());
            });
            let finished = v
                .commit(
                    &ctx,
                    "domain.rotate_complete",
                    vec![Mutation::FinishDomainRotation {
                        id: d.id,
                        version: retiring.version,
                    }],
                )
                .await;
            return match finished {
                // This node's cached copy goes (a request that read its key before the move
                // may still open the old version once, from the row it holds).
                Ok(()) => {
                    v.keystore.forget_domain(d.id, &[]);
                    Ok(true)
                }
                // Another node finished it, or a key came back: looked at again next time.
                Err(ApiError::Conflict { .. }) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let mut moved = Vec::with_capacity(keys.len());
        for k in &keys {
            let Some(was) = k.sealed_secret.clone() else {
                continue;
            };
            match v.keystore.rewrap_key(d, k) {
                Ok(now) => moved.push((k.id, was, now)),
                Err(strongroom_keystore::Error::SealedStateCorrupt) => {
                    // The retiring master key itself does not open: tampering.
                    v.integrity_failed().await;
                    return Err(ApiError::SealedStateCorrupt);
                }
                Err(e) => {
                    tracing::error!(key = %k.id, error = %e, "a key blob does not open under the retiring domain key; it stays under it");
                    self.stuck.insert(k.id);
                    let stuck = v.system_ctx(Principal::System)?;
                    stuck.tag(|t| {
                        t.domain = Some(d.id);
                        t.key = Some(k.id);
                    });
                    let _ = v
                        .writer
                        .submit(
                            vec![],
                            stuck.event(
                                "domain.rotate_batch",
                                Outcome::Failed,
                                Some("key_unavailable"),
                            ),
                        )
                        .await;
                }
            }
        }
        if moved.is_empty() {
            return Ok(true);
        }
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({
                    "from_version": retiring.version,
                    "to_version": d.key_version,
                    "keys": moved.len(),
                })
                .to_string(),
            );
        });
        let ids: Vec<_> = moved.iter().map(|(id, _, _)| *id).collect();
        let committed = v
            .commit(
                &ctx,
                "domain.rotate_batch",
                vec![Mutation::RewrapKeys {
                    domain: d.id,
                    from_version: retiring.version,
                    to_version: d.key_version,
                    keys: moved,
                }],
            )
            .await;
        match committed {
            Ok(()) => {
                for id in ids {
                    v.keys.forget(id);
                }
                Ok(true)
            }
            // A key changed meanwhile (another node moved it, say): nothing of this batch
            // moved, and the failed attempt is on the record; read again.
            Err(ApiError::Conflict { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn failed(&mut self, v: &Vault, domain: Option<DomainId>, e: &ApiError) {
        tracing::warn!(error = %e, "domain key rotation step failed; retrying later");
        if self.reported.insert(domain, e.code()) == Some(e.code()) {
            return;
        }
        let ctx = v.fixed_ctx(Principal::System);
        ctx.tag(|t| t.domain = domain);
        let _ = v
            .writer
            .submit(
                vec![],
                ctx.event("domain.rotate_batch", Outcome::Failed, Some(e.code())),
            )
            .await;
    }
}

/// The background mover: runs batches while there is work, then waits to be woken (by a
/// rotation started here) or for the next poll (one started on another node, or a key
/// imported back).
pub(crate) async fn run(vault: Weak<Vault>, config: crate::config::RotationConfig) {
    let pause = Duration::from_millis(config.batch_interval_ms);
    let mut mover = Mover {
        batch: config.batch_size,
        stuck: HashSet::new(),
        reported: HashMap::new(),
    };
    loop {
        let Some(v) = vault.upgrade() else { return };
        let wake = Arc::clone(&v.rotation_wake);
        let more = mover.step(&v).await;
        drop(v);
        if more {
            tokio::time::sleep(pause).await;
        } else {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
}
