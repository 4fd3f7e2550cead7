//! Measured start and signed configuration.
//!
//! At start a node hashes its configuration file (the bytes it parsed) and, in the background,
//! its own binary, and audits both (`node.start`). Once the vault has security officers, a
//! node unseals only under a configuration that this node has accepted before (a record in
//! its data directory, MAC'd under a root-derived key) or that carries the signatures of as
//! many vault-wide security officers as the `config.change` quorum rule asks (a `FILE.sig`
//! document next to it, made by `strongroom config sign`). The first configuration before any
//! officer exists, and dev mode, are accepted as they are. Layouts in `docs/formats.md`.
//!
//! The check runs when the vault unseals, because only then can the officers' rows and the
//! accepted record be authenticated; a refused configuration seals the vault again at once, and
//! until a configuration is admitted the pipelines refuse everything but status.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strongroom_core::VaultId;
use strongroom_core::authz::Principal;
use strongroom_core::operator::Role;
use strongroom_core::quorum::{GatedOp, required_approvals};
use strongroom_core::record::Outcome;

use crate::error::ApiError;
use crate::service::Vault;

/// The signatures document's `format`.
pub const SIGNATURES_FORMAT: &str = "strongroom-config-signatures-v1";
/// The accepted-configuration record in the data directory.
const ACCEPTED_FILE: &str = "config-accepted";

/// A node's configuration file as measured at start.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// Where it was read from (its signatures are `PATH.sig`).
    pub path: PathBuf,
    /// SHA-256 of the bytes that were parsed.
    pub sha256: [u8; 32],
}

impl ConfigFile {
    /// Measures the configuration `bytes` read from `path`, with the files it names:
    /// `public` ones by their contents (certificates, CA bundles, the PKCS#11 module),
    /// `secret` ones by their paths only (layout in `docs/formats.md`).
    #[must_use]
    pub fn measure(path: &Path, bytes: &[u8], public: &[&Path], secret: &[&Path]) -> Self {
        fn put(h: &mut Sha256, b: &[u8]) {
            h.update(u64::try_from(b.len()).unwrap_or(u64::MAX).to_be_bytes());
            h.update(b);
        }
        let mut h = Sha256::new();
        h.update(b"strongroom/config-measure/v1");
        put(&mut h, bytes);
        for p in public {
            put(&mut h, p.as_os_str().as_encoded_bytes());
            match std::fs::read(p) {
                Ok(content) => put(&mut h, &Sha256::digest(&content)),
                Err(_) => put(&mut h, b"unreadable"),
            }
        }
        for p in secret {
            put(&mut h, p.as_os_str().as_encoded_bytes());
        }
        Self {
            path: path.to_owned(),
            sha256: h.finalize().into(),
        }
    }
}

/// Where a configuration file's signatures are kept: `FILE.sig`.
#[must_use]
pub fn signatures_path(config: &Path) -> PathBuf {
    let mut p = config.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

/// Security officers' signatures of one configuration file for one vault.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// [`SIGNATURES_FORMAT`].
    pub format: String,
    /// The vault (UUID).
    pub vault_id: String,
    /// SHA-256 of the configuration file, hex.
    pub config_sha256: String,
    /// One per officer.
    pub signatures: Vec<Signature>,
}

/// One officer's signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The officer's registered approval key (Ed25519, hex).
    pub public_key: String,
    /// Ed25519 over `"strongroom/config/v1" || vault id || config SHA-256`, hex.
    pub signature: String,
}

/// This node's configuration admission state (absent in dev mode, which is exempt).
pub(crate) struct Admission {
    pub(crate) file: ConfigFile,
    accepted_path: PathBuf,
    admitted: AtomicBool,
    refused: Mutex<Option<String>>,
}

impl Admission {
    pub(crate) fn new(file: ConfigFile, data_dir: &Path) -> Self {
        Self {
            file,
            accepted_path: data_dir.join(ACCEPTED_FILE),
            admitted: AtomicBool::new(false),
            refused: Mutex::new(None),
        }
    }

    fn refuse(&self, why: &str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_owned());
    }
}

/// The configuration as `status` shows it.
#[derive(Serialize)]
pub struct ConfigView {
    sha256: String,
    /// Admitted: this node may unseal under it.
    admitted: bool,
    /// Why it was last refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// What a set of signatures amounts to against the vault's officers.
#[derive(Serialize, Debug)]
pub struct Verdict {
    /// Signatures needed (the vault-wide `config.change` rule).
    pub required: u8,
    /// Names of the security officers whose signatures verify.
    pub signed_by: Vec<String>,
    /// Signatures that are not a current vault-wide security officer's valid signature.
    pub rejected: usize,
    /// Whether the document is for this vault and this configuration, with enough signatures.
    pub sufficient: bool,
}

/// The accepted-configuration record.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    config_sha256: String,
    how: String,
    /// Security officers existed when it was written: no later configuration of this node is
    /// a first boot.
    armed: bool,
    accepted_at: u64,
    mac: String,
}

fn accepted_binding(vault: &VaultId, sha256: &[u8; 32], armed: bool) -> Vec<u8> {
    let mut b = b"strongroom/config-accepted/v2".to_vec();
    b.extend_from_slice(vault.as_bytes());
    b.extend_from_slice(sha256);
    b.push(u8::from(armed));
    b
}

/// SHA-256 of this process's own executable (`/proc/self/exe`).
pub(crate) fn binary_sha256() -> std::io::Result<[u8; 32]> {
    use std::io::Read as _;
    let mut f = std::fs::File::open("/proc/self/exe")?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

impl Vault {
    /// Whether this node is waiting for its configuration to be admitted (the pipelines
    /// refuse everything but status while it is unsealed and waiting).
    pub(crate) fn config_pending(&self) -> bool {
        self.config
            .as_ref()
            .is_some_and(|a| !a.admitted.load(Ordering::Acquire))
    }

    pub(crate) fn config_view(&self) -> Option<ConfigView> {
        self.config.as_ref().map(|a| ConfigView {
            sha256: hex::encode(a.file.sha256),
            admitted: a.admitted.load(Ordering::Acquire),
            refused: a
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        })
    }

    /// `config verify`: what `signatures` amount to for the configuration `config_sha256`
    /// (hex), and whether that is this node's own configuration.
    ///
    /// # Errors
    /// Not permitted, a malformed hash, the vault sealed, storage failures.
    pub(crate) fn verify_config(
        &self,
        ctx: &crate::service::RequestCtx,
        config_sha256: &str,
        signatures: &Signatures,
    ) -> Result<serde_json::Value, ApiError> {
        crate::service::allow(ctx, &strongroom_core::authz::Operation::VerifyConfig)?;
        let sha: [u8; 32] = hex::decode(config_sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::bad("invalid_parameters", "config_sha256: 64 hex digits"))?;
        let verdict = self.judge(signatures, &sha, &self.security_officers()?)?;
        Ok(serde_json::json!({
            "vault_id": self.vault_id.to_string(),
            "config_sha256": config_sha256,
            "required": verdict.required,
            "signed_by": verdict.signed_by,
            "rejected": verdict.rejected,
            "sufficient": verdict.sufficient,
            "this_node": self.config.as_ref().is_some_and(|a| a.file.sha256 == sha),
        }))
    }

    /// Called as soon as the vault unseals: admits this node's configuration or seals again.
    ///
    /// # Errors
    /// [`ApiError::ConfigUnauthorized`] (the vault is sealed again), or storage failures (also
    /// sealed again: nothing runs under a configuration that was not checked).
    pub(crate) fn admit_config(&self) -> Result<(), ApiError> {
        let Some(a) = &self.config else {
            return Ok(());
        };
        if a.admitted.load(Ordering::Acquire) {
            return Ok(());
        }
        let outcome = self.check_config(a);
        match &outcome {
            Ok(()) => {
                a.admitted.store(true, Ordering::Release);
                *a.refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            Err(e) => {
                self.zeroize_keys();
                a.refuse(&e.message());
                tracing::error!(error = %e.message(), "configuration refused; the vault is sealed again");
            }
        }
        outcome
    }

    fn check_config(&self, a: &Admission) -> Result<(), ApiError> {
        let sha = a.file.sha256;
        let officers = self.security_officers()?;
        let armed = self.accepted_armed(a);
        if let Some(rec_armed) = self.accepted_before(a) {
            // Remember, once, that officers existed: from then on no configuration of this
            // node is a first boot, even if the officers' rows vanish from the database.
            if !rec_armed && !officers.is_empty() {
                let at = self.fixed_ctx(Principal::System).wall.0;
                self.write_accepted(a, "first_boot", true, at)?;
            }
            return Ok(());
        }
        let how = if officers.is_empty() && !armed {
            // First boot: nobody can sign yet.
            serde_json::json!({"how": "first_boot"})
        } else {
            let path = signatures_path(&a.file.path);
            let doc = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<Signatures>(&bytes).map_err(|_| {
                    ApiError::ConfigUnauthorized(format!(
                        "{} is not a signatures document",
                        path.display()
                    ))
                })?,
                Err(_) => {
                    return Err(ApiError::ConfigUnauthorized(format!(
                        "the configuration changed (sha256 {}) and {} is missing: security officers must sign it (strongroom config sign)",
                        hex::encode(sha),
                        path.display()
                    )));
                }
            };
            let verdict = self.judge(&doc, &sha, &officers)?;
            if !verdict.sufficient {
                return Err(ApiError::ConfigUnauthorized(format!(
                    "the configuration (sha256 {}) has {} valid security officer signature(s) for this vault; {} needed",
                    hex::encode(sha),
                    verdict.signed_by.len(),
                    verdict.required
                )));
            }
            serde_json::json!({"how": "signed", "signed_by": verdict.signed_by})
        };
        let ctx = self.fixed_ctx(Principal::System);
        let label = how["how"].as_str().unwrap_or("signed");
        self.write_accepted(a, label, armed || !officers.is_empty(), ctx.wall.0)?;
        ctx.tag(|t| {
            let mut detail = how.clone();
            detail["config_sha256"] = hex::encode(sha).into();
            t.detail = Some(detail.to_string());
        });
        self.writer
            .submit_detached(ctx.event("config.accepted", Outcome::Granted, None));
        Ok(())
    }

    /// The accepted record, if its MAC verifies (root-derived record key, so a database or
    /// file editor cannot make one).
    fn accepted_record(&self, a: &Admission) -> Option<Accepted> {
        let bytes = std::fs::read(&a.accepted_path).ok()?;
        let rec = serde_json::from_slice::<Accepted>(&bytes).ok()?;
        let sha: [u8; 32] = hex::decode(&rec.config_sha256).ok()?.try_into().ok()?;
        let mac: [u8; 32] = hex::decode(&rec.mac).ok()?.try_into().ok()?;
        self.keystore
            .verify_record_mac(&accepted_binding(&self.vault_id, &sha, rec.armed), &mac)
            .unwrap_or(false)
            .then_some(rec)
    }

    /// Whether this node accepted exactly this configuration before: `Some(armed)`.
    fn accepted_before(&self, a: &Admission) -> Option<bool> {
        self.accepted_record(a)
            .filter(|r| r.config_sha256 == hex::encode(a.file.sha256))
            .map(|r| r.armed)
    }

    /// Whether this node has seen security officers before (whatever the configuration).
    fn accepted_armed(&self, a: &Admission) -> bool {
        self.accepted_record(a).is_some_and(|r| r.armed)
    }

    fn write_accepted(
        &self,
        a: &Admission,
        how: &str,
        armed: bool,
        at: u64,
    ) -> Result<(), ApiError> {
        let mac =
            self.keystore
                .record_mac(&accepted_binding(&self.vault_id, &a.file.sha256, armed))?;
        let rec = Accepted {
            config_sha256: hex::encode(a.file.sha256),
            how: how.to_owned(),
            armed,
            accepted_at: at,
            mac: hex::encode(mac),
        };
        let text = serde_json::to_vec_pretty(&rec).map_err(|_| ApiError::Internal)?;
        write_durably(&a.accepted_path, &text).map_err(|e| {
            tracing::error!(error = %e, "cannot record the accepted configuration");
            ApiError::Internal
        })
    }

    /// Enabled vault-wide security officers. Any operator row that fails its MAC check
    /// refuses the whole check: an editor of the database must not be able to make officers
    /// disappear (and the vault look like a first boot) by corrupting their rows.
    pub(crate) fn security_officers(
        &self,
    ) -> Result<Vec<strongroom_core::record::OperatorRecord>, ApiError> {
        let mut out = Vec::new();
        for o in self.store.operators()? {
            if !self
                .keystore
                .verify_record_mac(&crate::operators::binding(&self.vault_id, &o), &o.mac)?
            {
                tracing::error!(operator = %o.id, "operator row failed its MAC check (forged or edited row)");
                return Err(ApiError::StoredDataCorrupt);
            }
            if o.disabled_at.is_none() && o.domain.is_none() && o.roles.has(Role::SecurityOfficer) {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// Counts the valid signatures of distinct vault-wide security officers in `doc` for
    /// this vault and the configuration `sha` (the vault must be unsealed).
    pub(crate) fn judge(
        &self,
        doc: &Signatures,
        sha: &[u8; 32],
        officers: &[strongroom_core::record::OperatorRecord],
    ) -> Result<Verdict, ApiError> {
        let required = required_approvals(&self.store.quorum_rules()?, GatedOp::ChangeConfig, None);
        let for_us = doc.format == SIGNATURES_FORMAT
            && doc.vault_id == self.vault_id.to_string()
            && doc.config_sha256 == hex::encode(sha);
        let (signed_by, rejected) = officers_who_signed(officers, &doc.signatures, |pk, sig| {
            for_us
                && strongroom_crypto::verify_config_signature(
                    pk,
                    self.vault_id.as_bytes(),
                    sha,
                    sig,
                )
        });
        Ok(Verdict {
            required,
            sufficient: for_us && signed_by.len() >= usize::from(required),
            signed_by,
            rejected,
        })
    }
}

/// The distinct `officers` (by name) with a signature in `signatures` that `verify`
/// accepts under their registered approval key, and how many signatures did not count
/// (malformed, not an officer's, or not verifying).
pub(crate) fn officers_who_signed(
    officers: &[strongroom_core::record::OperatorRecord],
    signatures: &[Signature],
    verify: impl Fn(&[u8; 32], &[u8; 64]) -> bool,
) -> (Vec<String>, usize) {
    let mut signed_by: Vec<String> = Vec::new();
    let mut rejected = 0;
    for s in signatures {
        let pk: Option<[u8; 32]> = hex::decode(&s.public_key)
            .ok()
            .and_then(|b| b.try_into().ok());
        let sig: Option<[u8; 64]> = hex::decode(&s.signature)
            .ok()
            .and_then(|b| b.try_into().ok());
        let officer = pk.and_then(|pk| {
            officers
                .iter()
                .find(|o| o.approval_key.as_ref().is_some_and(|k| *k == pk))
        });
        match (officer, pk, sig) {
            (Some(o), Some(pk), Some(sig)) if verify(&pk, &sig) => {
                let name = o.name.as_str().to_owned();
                if !signed_by.contains(&name) {
                    signed_by.push(name);
                }
            }
            _ => rejected += 1,
        }
    }
    (signed_by, rejected)
}

/// Writes `bytes` to `path` through a synced temporary file and rename.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measurement_covers_named_files_but_reveals_no_secret_content() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "cert one").unwrap();
        std::fs::write(&key, "key one").unwrap();
        let cfg = dir.path().join("node.toml");
        let m = |bytes: &[u8]| {
            ConfigFile::measure(&cfg, bytes, &[cert.as_path()], &[key.as_path()]).sha256
        };
        let first = m(b"listen = 1");
        assert_eq!(first, m(b"listen = 1"));
        assert_ne!(first, m(b"listen = 2"), "the bytes");
        std::fs::write(&cert, "cert two").unwrap();
        let second = m(b"listen = 1");
        assert_ne!(first, second, "a public file's contents");
        // A secret file counts by its path only: its contents never reach the published hash.
        std::fs::write(&key, "key two").unwrap();
        assert_eq!(second, m(b"listen = 1"));
        let elsewhere =
            ConfigFile::measure(&cfg, b"listen = 1", &[cert.as_path()], &[cert.as_path()]);
        assert_ne!(second, elsewhere.sha256, "a secret file's path");
    }
}
