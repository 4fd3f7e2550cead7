//! Rekey over the API: a security officer starts it (the new share count and threshold, and
//! optionally the custodians' keys to encrypt the new shares to); share holders submit a
//! threshold of the current shares, get the new shares, and submit a threshold of those
//! back; then the new seal and every domain master key re-wrapped under the new root commit
//! in one transaction with the audit record. Until that commit the current shares are the
//! vault's, whatever happens to this node.

use serde::Serialize;
use strongroom_core::Operation;
use strongroom_core::storage::Mutation;
use strongroom_crypto::AgeRecipient;
use strongroom_keystore::{RekeyStatus, ShamirSeal};

use crate::error::ApiError;
use crate::service::{EncryptedShareView, RequestCtx, Vault, allow, share_views};

/// How many times a commit is rebuilt when the domains change under it.
const COMMIT_ATTEMPTS: usize = 3;

/// A rekey's progress, and (once) its new shares.
#[derive(Serialize)]
pub struct RekeyView {
    nonce: String,
    /// `authorise`, `verify`, `commit`, or `complete`.
    phase: &'static str,
    progress: u8,
    required: u8,
    shares: u8,
    threshold: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    new_shares: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    encrypted_shares: Vec<EncryptedShareView>,
    /// After completion: how many times the root has been replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<u32>,
    /// After completion: the domain master keys re-wrapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    domains_rewrapped: Option<usize>,
    /// The custodians' keys the new shares are encrypted to (none: handed out in the clear
    /// to whoever submits the last current share). Shown so that holders see where the new
    /// shares go before they authorise.
    custodian_keys: Vec<String>,
}

impl From<RekeyStatus> for RekeyView {
    fn from(s: RekeyStatus) -> Self {
        Self {
            nonce: s.nonce,
            phase: s.phase,
            progress: s.progress,
            required: s.required,
            shares: s.shares,
            threshold: s.threshold,
            new_shares: vec![],
            encrypted_shares: vec![],
            epoch: None,
            domains_rewrapped: None,
            custodian_keys: vec![],
        }
    }
}

/// The rekey this node runs, as the API sees it: held across each step, the commit included,
/// so that a cancel or a second commit cannot interleave with one in flight.
#[derive(Default)]
pub(crate) struct RekeyDesk {
    /// The custodians' keys the new shares are encrypted to, by the rekey's nonce.
    custodians: Option<(String, Vec<AgeRecipient>)>,
}

impl RekeyDesk {
    fn view(&self, status: RekeyStatus) -> RekeyView {
        let custodian_keys = self
            .custodians
            .as_ref()
            .filter(|(n, _)| *n == status.nonce)
            .map(|(_, c)| c.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        RekeyView {
            custodian_keys,
            ..RekeyView::from(status)
        }
    }
}

impl Vault {
    /// Starts a rekey on this node.
    pub(crate) async fn rekey_start(
        &self,
        ctx: &RequestCtx,
        target: ShamirSeal,
        custodians: Option<Vec<AgeRecipient>>,
    ) -> Result<RekeyView, ApiError> {
        allow(ctx, &Operation::Rekey)?;
        if self.dev {
            // Dev mode unseals itself from the one share in its data directory.
            return Err(ApiError::conflict(
                "dev_mode",
                "dev mode keeps its single unseal share in the data directory; rekey a production vault",
            ));
        }
        let mut desk = self.rekey.lock().await;
        let status = self.keystore.rekey_start(target)?;
        desk.custodians = custodians.map(|c| (status.nonce.clone(), c));
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({"shares": target.shares, "threshold": target.threshold})
                    .to_string(),
            );
        });
        if let Err(e) = self.commit(ctx, "operator.rekey_start", vec![]).await {
            // Not on the record, so not started.
            self.keystore.rekey_cancel();
            desk.custodians = None;
            return Err(e);
        }
        Ok(desk.view(status))
    }

    /// The rekey in progress on this node.
    pub(crate) async fn rekey_status(&self) -> Result<RekeyView, ApiError> {
        let desk = self.rekey.lock().await;
        let status = self.keystore.rekey_status().ok_or(ApiError::NotFound)?;
        Ok(desk.view(status))
    }

    /// Abandons the rekey in progress: any new shares issued are worthless. Never while a
    /// commit is in flight (the desk is held across it).
    pub(crate) async fn rekey_cancel(
        &self,
        ctx: &RequestCtx,
    ) -> Result<serde_json::Value, ApiError> {
        allow(ctx, &Operation::Rekey)?;
        let mut desk = self.rekey.lock().await;
        desk.custodians = None;
        if !self.keystore.rekey_cancel() {
            return Err(ApiError::NotFound);
        }
        Ok(serde_json::json!({"cancelled": true}))
    }

    /// Submits one share (current ones, then new ones). The share that completes the
    /// verification also commits the rekey; once verified, a valid new share asks for the
    /// commit again (it failed before: the audit log was unavailable, say).
    pub(crate) async fn rekey_submit(
        &self,
        ctx: &RequestCtx,
        nonce: &str,
        share: &str,
    ) -> Result<RekeyView, ApiError> {
        allow(ctx, &Operation::RekeyShare)?;
        let mut desk = self.rekey.lock().await;
        let step = self.keystore.rekey_submit(nonce, share)?;
        ctx.tag(|t| t.detail = Some(serde_json::json!({"phase": step.status.phase}).to_string()));
        if step.status.phase == "commit" {
            let done = self.rekey_commit(ctx, nonce, step.status).await?;
            desk.custodians = None;
            return Ok(done);
        }
        let mut view = desk.view(step.status);
        if !step.new_shares.is_empty() {
            let custodians = desk
                .custodians
                .as_ref()
                .filter(|(n, _)| n == nonce)
                .map(|(_, c)| c.clone());
            let encrypted = share_views(
                &step.new_shares,
                custodians.as_deref(),
                self.entropy.as_ref(),
            );
            match encrypted {
                Ok((clear, encrypted)) => {
                    view.new_shares = clear;
                    view.encrypted_shares = encrypted;
                }
                Err(e) => {
                    // The shares cannot be handed out: nothing may be verified against them.
                    self.keystore.rekey_cancel();
                    return Err(e);
                }
            }
        }
        Ok(view)
    }

    async fn rekey_commit(
        &self,
        ctx: &RequestCtx,
        nonce: &str,
        status: RekeyStatus,
    ) -> Result<RekeyView, ApiError> {
        let token = self.seal.token(&self.entropy).transpose()?;
        let mut last = ApiError::Internal;
        for _ in 0..COMMIT_ATTEMPTS {
            let domains = self.store.domains()?;
            let commit = self.keystore.rekey_prepare(
                nonce,
                &domains,
                token
                    .as_deref()
                    .map(|t| t as &dyn strongroom_keystore::RootWrapper),
            )?;
            let rewrapped = commit.wraps.len();
            ctx.tag(|t| {
                t.detail = Some(
                    serde_json::json!({
                        "epoch": commit.epoch,
                        "shares": status.shares,
                        "threshold": status.threshold,
                        "domains_rewrapped": rewrapped,
                    })
                    .to_string(),
                );
            });
            let mutation = Mutation::Rekey {
                from: commit.from.clone(),
                to: commit.to.clone(),
                wraps: commit.wraps.clone(),
                retiring_wraps: commit.retiring_wraps.clone(),
            };
            match self.commit(ctx, "operator.rekey", vec![mutation]).await {
                Ok(()) => {
                    self.keystore.rekey_finish(&commit)?;
                    self.keys.clear();
                    return Ok(RekeyView {
                        phase: "complete",
                        epoch: Some(commit.epoch),
                        domains_rewrapped: Some(rewrapped),
                        ..RekeyView::from(status)
                    });
                }
                // A domain created or destroyed meanwhile (each attempt is on the record):
                // read them again.
                Err(e @ ApiError::Conflict { .. }) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}
