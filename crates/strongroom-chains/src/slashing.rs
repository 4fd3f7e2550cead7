//! The EIP-3076 slashing-protection interchange format (version 5), parsed strictly into
//! `strongroom_core::slashing` types and written back.
//!
//! Numbers are decimal strings, roots and keys `0x` hex of their exact lengths; anything else
//! is refused (an interchange that half-parses would leave a validator less protected than
//! its operator believes). Fields the format does not define are ignored.

use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_core::slashing::{History, Interchange, SignedAttestation, SignedBlock};

use crate::Error;

/// The interchange format version written and accepted.
pub const FORMAT_VERSION: &str = "5";

#[derive(Deserialize)]
struct Doc {
    metadata: Metadata,
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Metadata {
    interchange_format_version: String,
    genesis_validators_root: String,
}

#[derive(Deserialize)]
struct Entry {
    pubkey: String,
    #[serde(default)]
    signed_blocks: Vec<Block>,
    #[serde(default)]
    signed_attestations: Vec<Attestation>,
}

#[derive(Deserialize)]
struct Block {
    slot: String,
    #[serde(default)]
    signing_root: Option<String>,
}

#[derive(Deserialize)]
struct Attestation {
    source_epoch: String,
    target_epoch: String,
    #[serde(default)]
    signing_root: Option<String>,
}

fn bad(what: &'static str) -> Error {
    Error::InvalidInterchange(what)
}

fn hex_n<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], Error> {
    let h = s.strip_prefix("0x").ok_or(bad(what))?;
    // The decoder would strip a second prefix: "0x0x..." is not hex.
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(what));
    }
    let v = alloy_primitives::hex::decode(h).map_err(|_| bad(what))?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| bad(what))
}

fn number(s: &str, what: &'static str) -> Result<u64, Error> {
    // Decimal digits only: no sign, no spaces, no hex.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(what));
    }
    // Storage keeps slots and epochs as signed 64-bit integers.
    s.parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or(bad(what))
}

/// Parses an EIP-3076 interchange (version 5).
///
/// # Errors
/// [`Error::InvalidInterchange`] naming what is wrong.
pub fn parse_interchange(bytes: &[u8]) -> Result<Interchange, Error> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|_| bad("not an interchange document"))?;
    if doc.metadata.interchange_format_version != FORMAT_VERSION {
        return Err(bad("interchange_format_version must be \"5\""));
    }
    let genesis_validators_root = hex_n::<32>(
        &doc.metadata.genesis_validators_root,
        "genesis_validators_root",
    )?;
    let data = doc
        .data
        .into_iter()
        .map(|e| {
            Ok(History {
                pubkey: hex_n::<48>(&e.pubkey, "pubkey")?,
                blocks: e
                    .signed_blocks
                    .iter()
                    .map(|b| {
                        Ok(SignedBlock {
                            slot: number(&b.slot, "slot")?,
                            signing_root: b
                                .signing_root
                                .as_deref()
                                .map(|r| hex_n::<32>(r, "signing_root"))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
                attestations: e
                    .signed_attestations
                    .iter()
                    .map(|a| {
                        Ok(SignedAttestation {
                            source: number(&a.source_epoch, "source_epoch")?,
                            target: number(&a.target_epoch, "target_epoch")?,
                            signing_root: a
                                .signing_root
                                .as_deref()
                                .map(|r| hex_n::<32>(r, "signing_root"))
                                .transpose()?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Interchange {
        genesis_validators_root,
        data,
    })
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(b))
}

/// An interchange as the EIP-3076 JSON document.
#[must_use]
pub fn interchange_json(ic: &Interchange) -> Value {
    json!({
        "metadata": {
            "interchange_format_version": FORMAT_VERSION,
            "genesis_validators_root": hex0x(&ic.genesis_validators_root),
        },
        "data": ic.data.iter().map(|h| json!({
            "pubkey": hex0x(&h.pubkey),
            "signed_blocks": h.blocks.iter().map(|b| {
                let mut v = json!({"slot": b.slot.to_string()});
                if let Some(r) = b.signing_root {
                    v["signing_root"] = hex0x(&r).into();
                }
                v
            }).collect::<Vec<_>>(),
            "signed_attestations": h.attestations.iter().map(|a| {
                let mut v = json!({"source_epoch": a.source.to_string(),
                                   "target_epoch": a.target.to_string()});
                if let Some(r) = a.signing_root {
                    v["signing_root"] = hex0x(&r).into();
                }
                v
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
