//! Associated data that binds sealed blobs to their identity (layout in `docs/formats.md`).

use strongroom_core::id::DomainName;
use strongroom_core::record::{DomainRecord, KeyRecord};
use strongroom_core::temperature::Temperature;
use strongroom_core::{DomainId, OperatorId, PendingId, UnixMillis, VaultId};

const DOMAIN_LABEL: &[u8] = b"strongroom/domain-key/v1";
const KEY_LABEL: &[u8] = b"strongroom/key/v1";
const OPERATOR_LABEL: &[u8] = b"strongroom/operator-totp/v1";

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Lengths are bounded by the API (labels <= 256 bytes, keys <= 33 bytes).
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

/// Associated data for version `version` of a domain master key sealed under the
/// root-derived wrapping key. Version 1 (every domain's first key) binds no version; later
/// ones append it, so that a database editor cannot pass one version off as another.
pub(crate) fn domain_aad(
    vault: &VaultId,
    domain: &DomainId,
    name: &DomainName,
    created_at: UnixMillis,
    new_keys: Temperature,
    version: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN_LABEL.len() + 116);
    out.extend_from_slice(DOMAIN_LABEL);
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(domain.as_bytes());
    put_bytes(&mut out, name.as_str().as_bytes());
    out.extend_from_slice(&created_at.0.to_be_bytes());
    put_bytes(&mut out, new_keys.as_str().as_bytes());
    if version > 1 {
        out.extend_from_slice(&version.to_be_bytes());
    }
    out
}

/// [`domain_aad`] of a domain's record.
pub(crate) fn domain_record_aad(vault: &VaultId, d: &DomainRecord, version: u32) -> Vec<u8> {
    domain_aad(
        vault,
        &d.id,
        &d.name,
        d.created_at,
        d.new_key_temperature,
        version,
    )
}

/// Associated data for a key's secret sealed under its domain master key.
pub(crate) fn key_aad(vault: &VaultId, k: &KeyRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(KEY_LABEL.len() + 128);
    out.extend_from_slice(KEY_LABEL);
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(k.domain.as_bytes());
    out.extend_from_slice(k.id.as_bytes());
    out.extend_from_slice(&k.version.to_be_bytes());
    out.push(k.algorithm.code());
    out.extend_from_slice(&k.created_at.0.to_be_bytes());
    put_bytes(&mut out, &k.public_key);
    match &k.label {
        None => out.push(0),
        Some(l) => {
            out.push(1);
            put_bytes(&mut out, l.as_bytes());
        }
    }
    out
}

/// Associated data for an operator's sealed TOTP secret.
pub(crate) fn operator_aad(vault: &VaultId, operator: OperatorId) -> Vec<u8> {
    let mut out = Vec::with_capacity(OPERATOR_LABEL.len() + 32);
    out.extend_from_slice(OPERATOR_LABEL);
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(operator.as_bytes());
    out
}

/// Associated data for the sealed private part of a request's result.
pub(crate) fn request_result_aad(vault: &VaultId, request: PendingId) -> Vec<u8> {
    let mut out = b"strongroom/request-result/v1".to_vec();
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(request.as_bytes());
    out
}

/// What a key's temperature MAC covers: the temperature, when it was set and the idle limit,
/// so that none of them can be edited in the database.
pub(crate) fn temperature_binding(vault: &VaultId, key: &KeyRecord) -> Vec<u8> {
    let mut out = b"strongroom/key-temperature/v2".to_vec();
    out.extend_from_slice(vault.as_bytes());
    out.extend_from_slice(key.id.as_bytes());
    put_bytes(&mut out, key.temperature.as_str().as_bytes());
    out.extend_from_slice(&key.temperature_since.0.to_be_bytes());
    // 0 = no idle limit (a limit of 0 seconds is refused by the API).
    out.extend_from_slice(&key.hot_idle_secs.unwrap_or(0).to_be_bytes());
    // The public part too: what `key show`, `wallet address` and `wallet xpub` hand out
    // (where funds get sent) must be the vault's, even for a cold key whose blob stays shut.
    out.push(key.algorithm.code());
    put_bytes(&mut out, &key.public_key);
    out
}
