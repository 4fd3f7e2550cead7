//! Domain master key rotation. `domain rotate` makes a new version of the domain's master key,
//! which seals every new blob at once; the previous version retires. A background task on
//! every node then moves the domain's key blobs to the new version in batches (each batch one
//! write transaction with its audit record, each key by compare-and-swap), while signing goes
//! on: a key opens under whichever version its row names. When no live key is left under the
//! retiring version — keys offline in export bundles included, which wait for their import —
//! it is erased. The state is all in the database, so a crash resumes where it stopped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;
use strongroom_core::id::DomainName;
use strongroom_core::record::DomainRecord;
use strongroom_core::record::Outcome;
use strongroom_core::storage::Mutation;
use strongroom_core::{Operation, Principal};

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

    fn domain_named(&self, name: &str) -> Result<DomainRecord, ApiError> {
        let parsed: DomainName = name.parse().map_err(|_| ApiError::NotFound)?;
        self.store
            .domain_by_name(&parsed)?
            .ok_or(ApiError::NotFound)
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

    /// Moves one batch of one rotating domain's keys, or ends a rotation with none left.
    /// Whether there is more to do at once.
    async fn rotation_step(&self, batch: u32) -> Result<bool, ApiError> {
        if self.keystore.status().sealed {
            return Ok(false);
        }
        for d in self.store.domains()? {
            let Some(retiring) = d.retiring.clone().filter(|_| d.destroyed_at.is_none()) else {
                continue;
            };
            let keys = self.store.keys_to_rewrap(d.id, retiring.version, batch)?;
            let ctx = self.system_ctx(Principal::System)?;
            ctx.tag(|t| t.domain = Some(d.id));
            if keys.is_empty() {
                let (online, offline) = self.store.keys_under(d.id, retiring.version)?;
                if online + offline > 0 {
                    // Offline keys hold the retiring version until they come back.
                    continue;
                }
                ctx.tag(|t| {
                    t.detail =
                        Some(serde_json::json!({"retired_version": retiring.version}).to_string());
                });
                self.commit(
                    &ctx,
                    "domain.rotate_complete",
                    vec![Mutation::FinishDomainRotation {
                        id: d.id,
                        version: retiring.version,
                    }],
                )
                .await?;
                // The retired version leaves this node's memory too.
                self.keystore.forget_domain(d.id, &[]);
                return Ok(true);
            }
            let mut moved = Vec::with_capacity(keys.len());
            for k in &keys {
                let Some(was) = k.sealed_secret.clone() else {
                    continue;
                };
                moved.push((k.id, was, self.keystore.rewrap_key(&d, k)?));
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
            self.commit(
                &ctx,
                "domain.rotate_batch",
                vec![Mutation::RewrapKeys {
                    domain: d.id,
                    from_version: retiring.version,
                    to_version: d.key_version,
                    keys: moved,
                }],
            )
            .await?;
            for id in ids {
                self.keys.forget(id);
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// The background mover: runs batches while there is work, then waits to be woken (by a
/// rotation started here) or for the next poll (one started on another node, or a key
/// imported back).
pub(crate) async fn run(vault: Weak<Vault>, config: crate::config::RotationConfig) {
    let pause = Duration::from_millis(config.batch_interval_ms);
    // A step that keeps failing (a blob that does not open stalls its rotation, keeping the
    // retiring version) is audited when its error changes, not at every poll.
    let mut last_error: Option<&'static str> = None;
    loop {
        let Some(v) = vault.upgrade() else { return };
        let wake = Arc::clone(&v.rotation_wake);
        let more = match v.rotation_step(config.batch_size).await {
            Ok(more) => {
                last_error = None;
                more
            }
            Err(e) => {
                tracing::warn!(error = %e, "domain key rotation step failed; retrying later");
                if last_error != Some(e.code()) {
                    last_error = Some(e.code());
                    let event = v.fixed_ctx(Principal::System).event(
                        "domain.rotate_batch",
                        Outcome::Failed,
                        Some(e.code()),
                    );
                    let _ = v.writer.submit(vec![], event).await;
                }
                false
            }
        };
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
