//! Hot keys that demote themselves to warm after an idle time (`hot_idle_secs`, set when a
//! key is made hot and covered by its temperature MAC).
//!
//! A key's idle clock starts at the latest of: when it became hot, its last signature on this
//! node (kept in memory, so the signing path never reads the database for it), and its last
//! signature on any node (the newest granted `key.sign` audit record, read only when the
//! in-memory view says the key is idle). The check runs on the signing path, so an idle key
//! never signs without a quorum, and in a sweeper, so a key nobody uses is seen demoted.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use strongroom_core::record::KeyRecord;
use strongroom_core::temperature::Temperature;
use strongroom_core::{KeyId, Principal, UnixMillis};

use crate::error::ApiError;
use crate::service::Vault;

/// How often the sweeper looks for idle keys.
pub(crate) const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Bounds for an idle limit: under a minute would demote keys between two requests of a
/// normal client; beyond 30 days it is not an idle limit.
pub(crate) const MIN_IDLE_SECS: u32 = 60;
/// See [`MIN_IDLE_SECS`].
pub(crate) const MAX_IDLE_SECS: u32 = 30 * 24 * 3600;

/// The last signature by each idle-limited key on this node.
#[derive(Default)]
pub(crate) struct LastUse {
    map: RwLock<HashMap<KeyId, AtomicU64>>,
}

impl LastUse {
    fn get(&self, id: KeyId) -> UnixMillis {
        UnixMillis(
            self.map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&id)
                .map_or(0, |t| t.load(Ordering::Relaxed)),
        )
    }

    /// Records a signature (or a newer signature seen in the audit log).
    pub(crate) fn touch(&self, id: KeyId, at: UnixMillis) {
        if let Some(t) = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            t.fetch_max(at.0, Ordering::Relaxed);
            return;
        }
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id)
            .or_default()
            .fetch_max(at.0, Ordering::Relaxed);
    }
}

/// The idle limit of a key that has one and is hot.
fn limit_ms(k: &KeyRecord) -> Option<u64> {
    match (k.temperature, k.hot_idle_secs) {
        (Temperature::Hot, Some(s)) => Some(u64::from(s) * 1000),
        _ => None,
    }
}

impl Vault {
    /// If `k` is hot and has been idle past its limit, demotes it to warm (audited as
    /// `key.demote` by `system`) and returns the key's record as it now stands; `None` when
    /// `k` is not idle.
    pub(crate) async fn demote_if_idle(
        &self,
        k: &KeyRecord,
        now: UnixMillis,
    ) -> Result<Option<KeyRecord>, ApiError> {
        let Some(limit) = limit_ms(k) else {
            return Ok(None);
        };
        let idle_since = |t: UnixMillis| k.temperature_since.max(t);
        if now.0.saturating_sub(idle_since(self.last_use.get(k.id)).0) <= limit {
            return Ok(None);
        }
        // Another node may have signed with it: the audit chain knows.
        if let Some(t) = self.store.last_signature(k.id)? {
            self.last_use.touch(k.id, t);
        }
        if now.0.saturating_sub(idle_since(self.last_use.get(k.id)).0) <= limit {
            return Ok(None);
        }
        let ctx = self.system_ctx(Principal::System)?;
        match self
            .set_temperature_prepared(&ctx, k.id, Temperature::Warm, None, "key.demote", |_| {
                Ok(None)
            })
            .await
        {
            Ok(_) => {}
            // Someone else changed it first (another node's sweeper, an operator): re-read.
            Err(ApiError::Conflict { .. }) => self.keys.forget(k.id),
            Err(e) => return Err(e),
        }
        Ok(self
            .keys
            .get(self.store.as_ref(), k.id)?
            .map(|found| found.0.clone()))
    }

    /// One pass of the sweeper: demotes every idle hot key.
    pub(crate) async fn sweep_idle_keys(&self) -> Result<(), ApiError> {
        if self.keystore.status().sealed || self.writer.has_failed() {
            return Ok(());
        }
        let now = self.time.observe(self.clock.now()).effective;
        for k in self.store.idle_limited_keys()? {
            // A record whose MAC fails is not acted on (nor would it sign).
            if self.keystore.verify_temperature(&k)? {
                self.demote_if_idle(&k, now).await?;
            }
        }
        Ok(())
    }
}
