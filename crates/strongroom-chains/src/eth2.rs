//! Ethereum consensus signing requests (the remote-signing API, Web3Signer's `eth2` API):
//! parsed strictly, and their signing roots computed here (SSZ hash tree roots, the
//! fork-aware domain), never taken from the client.
//!
//! SSZ merkleization is written out for the few containers validators sign; each function
//! names the consensus-spec type it hashes. Requests whose version this module does not know
//! are refused rather than guessed.

use alloy_primitives::hex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Error;

/// Slots per epoch (mainnet and every public testnet).
pub const SLOTS_PER_EPOCH: u64 = 32;

// Signature domains (consensus specs, "Domain types").
const DOMAIN_BEACON_PROPOSER: [u8; 4] = [0, 0, 0, 0];
const DOMAIN_BEACON_ATTESTER: [u8; 4] = [1, 0, 0, 0];
const DOMAIN_RANDAO: [u8; 4] = [2, 0, 0, 0];
const DOMAIN_DEPOSIT: [u8; 4] = [3, 0, 0, 0];
const DOMAIN_VOLUNTARY_EXIT: [u8; 4] = [4, 0, 0, 0];
const DOMAIN_SELECTION_PROOF: [u8; 4] = [5, 0, 0, 0];
const DOMAIN_AGGREGATE_AND_PROOF: [u8; 4] = [6, 0, 0, 0];
const DOMAIN_SYNC_COMMITTEE: [u8; 4] = [7, 0, 0, 0];
const DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF: [u8; 4] = [8, 0, 0, 0];
const DOMAIN_CONTRIBUTION_AND_PROOF: [u8; 4] = [9, 0, 0, 0];
const DOMAIN_APPLICATION_BUILDER: [u8; 4] = [0, 0, 0, 1];

// Preset limits (mainnet preset, phase0 and altair).
const MAX_VALIDATORS_PER_COMMITTEE: usize = 2048;
const MAX_PROPOSER_SLASHINGS: usize = 16;
const MAX_ATTESTER_SLASHINGS: usize = 2;
const MAX_ATTESTATIONS: usize = 128;
const MAX_DEPOSITS: usize = 16;
const MAX_VOLUNTARY_EXITS: usize = 16;
const DEPOSIT_PROOF_LENGTH: usize = 33;
/// Sync committee sizes: mainnet, and the minimal preset.
const SYNC_COMMITTEE_SIZE: [usize; 2] = [512, 32];
/// Sync subcommittee sizes (a quarter of the committee).
const SYNC_SUBCOMMITTEE_SIZE: [usize; 2] = [128, 8];

/// What a request signs, for slashing protection and the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A block proposal at `slot` (slashable: one per slot).
    Block {
        /// The slot.
        slot: u64,
    },
    /// An attestation (slashable: double and surround votes).
    Attestation {
        /// Source epoch.
        source: u64,
        /// Target epoch.
        target: u64,
    },
    /// A voluntary exit: irreversible, signed only with an authorisation.
    VoluntaryExit {
        /// The validator's index.
        validator_index: u64,
        /// The exit epoch.
        epoch: u64,
    },
    /// A deposit message: it names who may withdraw the stake.
    Deposit,
    /// A builder registration, for the validator `pubkey` (it names the fee recipient).
    Registration {
        /// The public key the registration names.
        pubkey: [u8; 48],
    },
    /// Anything else (RANDAO reveals, aggregation, sync committee duties): not slashable.
    Other,
}

/// A parsed signing request.
#[derive(Clone, Debug)]
pub struct SigningRequest {
    /// The request `type` (`ATTESTATION`, `BLOCK_V2`, ...).
    pub request_type: String,
    /// What it signs.
    pub kind: Kind,
    /// The signing root this module computed.
    pub signing_root: [u8; 32],
    /// The chain, for requests that carry fork info (deposits and builder registrations do
    /// not).
    pub genesis_validators_root: Option<[u8; 32]>,
    /// The signing root the client sent, if it sent one (it must equal `signing_root`).
    pub claimed_root: Option<[u8; 32]>,
    /// A short description for the audit log.
    pub summary: Value,
}

fn bad(what: &'static str) -> Error {
    Error::InvalidEth2Request(what)
}

/// A field by its snake_case name, or its camelCase spelling (some clients, and the
/// specification's own examples, use it); both at once are refused as ambiguous.
fn field<'a>(v: &'a Value, name: &'static str) -> Result<&'a Value, Error> {
    let camel = camel_case(name);
    match (v.get(name), camel.as_deref().and_then(|c| v.get(c))) {
        (Some(x), None) | (None, Some(x)) => Ok(x),
        _ => Err(bad(name)),
    }
}

fn camel_case(name: &str) -> Option<String> {
    if !name.contains('_') {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A uint64 as the API writes it: a decimal string (a JSON number is accepted too).
fn u64_of(v: &Value, name: &'static str) -> Result<u64, Error> {
    match field(v, name)? {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad(name))
        }
        Value::Number(n) => n.as_u64().ok_or(bad(name)),
        _ => Err(bad(name)),
    }
}

fn bytes_of<const N: usize>(v: &Value, name: &'static str) -> Result<[u8; N], Error> {
    let s = field(v, name)?.as_str().ok_or(bad(name))?;
    let h = s.strip_prefix("0x").ok_or(bad(name))?;
    // The decoder would strip a second prefix: "0x0x..." is not hex.
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(name));
    }
    let b = hex::decode(h).map_err(|_| bad(name))?;
    <[u8; N]>::try_from(b.as_slice()).map_err(|_| bad(name))
}

fn hex_bytes(v: &Value, name: &'static str) -> Result<Vec<u8>, Error> {
    let s = field(v, name)?.as_str().ok_or(bad(name))?;
    let h = s.strip_prefix("0x").ok_or(bad(name))?;
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(name));
    }
    hex::decode(h).map_err(|_| bad(name))
}

fn array<'a>(v: &'a Value, name: &'static str, limit: usize) -> Result<&'a [Value], Error> {
    let a = field(v, name)?.as_array().ok_or(bad(name))?;
    if a.len() > limit {
        return Err(bad(name));
    }
    Ok(a)
}

// ---- SSZ merkleization -----------------------------------------------------------------

fn hash2(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// Merkleizes `chunks` padded with zero chunks to the next power of two of `limit` chunks.
fn merkleize(chunks: &[[u8; 32]], limit: usize) -> [u8; 32] {
    let width = limit.max(chunks.len()).max(1).next_power_of_two();
    let mut layer: Vec<[u8; 32]> = chunks.to_vec();
    let mut zero = [0u8; 32];
    let mut size = width;
    while size > 1 {
        if layer.len() % 2 == 1 {
            layer.push(zero);
        }
        layer = layer.chunks(2).map(|p| hash2(&p[0], &p[1])).collect();
        zero = hash2(&zero, &zero);
        size /= 2;
    }
    layer.first().copied().unwrap_or(zero)
}

fn mix_in_length(root: &[u8; 32], len: usize) -> [u8; 32] {
    let mut l = [0u8; 32];
    l[..8].copy_from_slice(&(len as u64).to_le_bytes());
    hash2(root, &l)
}

fn pack(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks(32)
        .map(|c| {
            let mut out = [0u8; 32];
            out[..c.len()].copy_from_slice(c);
            out
        })
        .collect()
}

fn uint64(v: u64) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..8].copy_from_slice(&v.to_le_bytes());
    c
}

/// A fixed-length byte vector (`Bytes4`, `Bytes32`, `BLSPubkey`, `BLSSignature`, ...).
fn byte_vector(b: &[u8]) -> [u8; 32] {
    merkleize(&pack(b), b.len().div_ceil(32))
}

fn container(fields: &[[u8; 32]]) -> [u8; 32] {
    merkleize(fields, fields.len())
}

fn list_of_roots(roots: &[[u8; 32]], limit: usize) -> [u8; 32] {
    mix_in_length(&merkleize(roots, limit), roots.len())
}

/// `Bitlist[limit]` from its SSZ bytes (the highest set bit is the length delimiter).
fn bitlist(ssz: &[u8], limit: usize, name: &'static str) -> Result<[u8; 32], Error> {
    let last = *ssz.last().ok_or(bad(name))?;
    if last == 0 {
        return Err(bad(name));
    }
    let top = 7 - last.leading_zeros() as usize;
    let len = (ssz.len() - 1) * 8 + top;
    if len > limit {
        return Err(bad(name));
    }
    let mut bits = ssz.to_vec();
    if let Some(b) = bits.last_mut() {
        *b &= !(1u8 << top);
    }
    // Bytes past the last bit are not part of the packed data.
    bits.truncate(len.div_ceil(8));
    Ok(mix_in_length(
        &merkleize(&pack(&bits), limit.div_ceil(256)),
        len,
    ))
}

/// `Bitvector[n]` from its SSZ bytes, for `n` the mainnet size or the minimal preset's (which
/// test networks and the specification's examples use); the length says which.
fn bitvector(ssz: &[u8], sizes: [usize; 2], name: &'static str) -> Result<[u8; 32], Error> {
    let n = sizes
        .into_iter()
        .find(|n| ssz.len() == n.div_ceil(8))
        .ok_or(bad(name))?;
    Ok(merkleize(&pack(ssz), n.div_ceil(256)))
}

// ---- Containers ------------------------------------------------------------------------

/// `Checkpoint`.
fn checkpoint(v: &Value) -> Result<(u64, [u8; 32]), Error> {
    Ok((u64_of(v, "epoch")?, bytes_of::<32>(v, "root")?))
}

/// `AttestationData`: its root, and (source epoch, target epoch).
fn attestation_data(v: &Value) -> Result<([u8; 32], u64, u64, u64), Error> {
    let slot = u64_of(v, "slot")?;
    let (se, sr) = checkpoint(field(v, "source")?)?;
    let (te, tr) = checkpoint(field(v, "target")?)?;
    let root = container(&[
        uint64(slot),
        uint64(u64_of(v, "index")?),
        bytes_of::<32>(v, "beacon_block_root")?,
        container(&[uint64(se), sr]),
        container(&[uint64(te), tr]),
    ]);
    Ok((root, slot, se, te))
}

/// `BeaconBlockHeader`: its root and slot.
fn block_header(v: &Value) -> Result<([u8; 32], u64), Error> {
    let slot = u64_of(v, "slot")?;
    Ok((
        container(&[
            uint64(slot),
            uint64(u64_of(v, "proposer_index")?),
            bytes_of::<32>(v, "parent_root")?,
            bytes_of::<32>(v, "state_root")?,
            bytes_of::<32>(v, "body_root")?,
        ]),
        slot,
    ))
}

/// `Attestation` (phase0 to Deneb).
fn attestation(v: &Value) -> Result<[u8; 32], Error> {
    Ok(container(&[
        bitlist(
            &hex_bytes(v, "aggregation_bits")?,
            MAX_VALIDATORS_PER_COMMITTEE,
            "aggregation_bits",
        )?,
        attestation_data(field(v, "data")?)?.0,
        byte_vector(&bytes_of::<96>(v, "signature")?),
    ]))
}

/// `IndexedAttestation`.
fn indexed_attestation(v: &Value) -> Result<[u8; 32], Error> {
    let indices = array(v, "attesting_indices", MAX_VALIDATORS_PER_COMMITTEE)?;
    let mut packed = Vec::with_capacity(indices.len() * 8);
    for i in indices {
        let n = match i {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().map_err(|_| bad("attesting_indices"))?
            }
            _ => return Err(bad("attesting_indices")),
        };
        packed.extend_from_slice(&n.to_le_bytes());
    }
    let indices_root = mix_in_length(
        &merkleize(
            &pack(&packed),
            (MAX_VALIDATORS_PER_COMMITTEE * 8).div_ceil(32),
        ),
        indices.len(),
    );
    Ok(container(&[
        indices_root,
        attestation_data(field(v, "data")?)?.0,
        byte_vector(&bytes_of::<96>(v, "signature")?),
    ]))
}

/// `SignedBeaconBlockHeader`.
fn signed_header(v: &Value) -> Result<[u8; 32], Error> {
    Ok(container(&[
        block_header(field(v, "message")?)?.0,
        byte_vector(&bytes_of::<96>(v, "signature")?),
    ]))
}

/// `BeaconBlockBody` (phase0; `altair` adds the sync aggregate).
fn block_body(v: &Value, altair: bool) -> Result<[u8; 32], Error> {
    let eth1 = field(v, "eth1_data")?;
    let list = |name: &'static str,
                limit: usize,
                each: fn(&Value) -> Result<[u8; 32], Error>|
     -> Result<[u8; 32], Error> {
        let roots = array(v, name, limit)?
            .iter()
            .map(each)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_of_roots(&roots, limit))
    };
    let mut fields = vec![
        byte_vector(&bytes_of::<96>(v, "randao_reveal")?),
        container(&[
            bytes_of::<32>(eth1, "deposit_root")?,
            uint64(u64_of(eth1, "deposit_count")?),
            bytes_of::<32>(eth1, "block_hash")?,
        ]),
        bytes_of::<32>(v, "graffiti")?,
        list("proposer_slashings", MAX_PROPOSER_SLASHINGS, |s| {
            Ok(container(&[
                signed_header(field(s, "signed_header_1")?)?,
                signed_header(field(s, "signed_header_2")?)?,
            ]))
        })?,
        list("attester_slashings", MAX_ATTESTER_SLASHINGS, |s| {
            Ok(container(&[
                indexed_attestation(field(s, "attestation_1")?)?,
                indexed_attestation(field(s, "attestation_2")?)?,
            ]))
        })?,
        list("attestations", MAX_ATTESTATIONS, attestation)?,
        list("deposits", MAX_DEPOSITS, |d| {
            let proof = array(d, "proof", DEPOSIT_PROOF_LENGTH)?;
            if proof.len() != DEPOSIT_PROOF_LENGTH {
                return Err(bad("proof"));
            }
            let proof = proof
                .iter()
                .map(|p| {
                    let s = p
                        .as_str()
                        .and_then(|s| s.strip_prefix("0x"))
                        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                        .ok_or(bad("proof"))?;
                    let b = hex::decode(s).map_err(|_| bad("proof"))?;
                    <[u8; 32]>::try_from(b.as_slice()).map_err(|_| bad("proof"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let data = field(d, "data")?;
            Ok(container(&[
                merkleize(&proof, DEPOSIT_PROOF_LENGTH),
                container(&[
                    byte_vector(&bytes_of::<48>(data, "pubkey")?),
                    bytes_of::<32>(data, "withdrawal_credentials")?,
                    uint64(u64_of(data, "amount")?),
                    byte_vector(&bytes_of::<96>(data, "signature")?),
                ]),
            ]))
        })?,
        list("voluntary_exits", MAX_VOLUNTARY_EXITS, |e| {
            let m = field(e, "message")?;
            Ok(container(&[
                container(&[
                    uint64(u64_of(m, "epoch")?),
                    uint64(u64_of(m, "validator_index")?),
                ]),
                byte_vector(&bytes_of::<96>(e, "signature")?),
            ]))
        })?,
    ];
    if altair {
        let s = field(v, "sync_aggregate")?;
        fields.push(container(&[
            bitvector(
                &hex_bytes(s, "sync_committee_bits")?,
                SYNC_COMMITTEE_SIZE,
                "sync_committee_bits",
            )?,
            byte_vector(&bytes_of::<96>(s, "sync_committee_signature")?),
        ]));
    }
    Ok(container(&fields))
}

/// A full `BeaconBlock`: its root and slot.
fn full_block(v: &Value, altair: bool) -> Result<([u8; 32], u64), Error> {
    let slot = u64_of(v, "slot")?;
    Ok((
        container(&[
            uint64(slot),
            uint64(u64_of(v, "proposer_index")?),
            bytes_of::<32>(v, "parent_root")?,
            bytes_of::<32>(v, "state_root")?,
            block_body(field(v, "body")?, altair)?,
        ]),
        slot,
    ))
}

/// `compute_domain`: the domain type and `ForkData(version, genesis_validators_root)`'s root.
fn compute_domain(domain_type: [u8; 4], version: [u8; 4], gvr: &[u8; 32]) -> [u8; 32] {
    let fork_data = container(&[byte_vector(&version), *gvr]);
    let mut d = [0u8; 32];
    d[..4].copy_from_slice(&domain_type);
    d[4..].copy_from_slice(&fork_data[..28]);
    d
}

/// `compute_signing_root`: `SigningData(object_root, domain)`'s root.
fn signing_root(object_root: &[u8; 32], domain: &[u8; 32]) -> [u8; 32] {
    container(&[*object_root, *domain])
}

/// The fork info of a request: the version in force at `epoch`, and the chain.
struct ForkInfo {
    previous: [u8; 4],
    current: [u8; 4],
    epoch: u64,
    gvr: [u8; 32],
}

impl ForkInfo {
    fn parse(v: &Value) -> Result<Self, Error> {
        let info = field(v, "fork_info")?;
        let fork = field(info, "fork")?;
        Ok(Self {
            previous: bytes_of::<4>(fork, "previous_version")?,
            current: bytes_of::<4>(fork, "current_version")?,
            epoch: u64_of(fork, "epoch")?,
            gvr: bytes_of::<32>(info, "genesis_validators_root")?,
        })
    }

    /// `get_domain` for a message of `epoch`.
    fn domain(&self, domain_type: [u8; 4], epoch: u64) -> [u8; 32] {
        let version = if epoch < self.epoch {
            self.previous
        } else {
            self.current
        };
        compute_domain(domain_type, version, &self.gvr)
    }
}

/// Parses a signing request and computes its signing root. `genesis_fork_version` is the
/// chain's, for builder registrations (which carry no fork info).
///
/// # Errors
/// [`Error::InvalidEth2Request`] naming the field that is missing or malformed (or `type` for
/// an unknown request type or block version).
pub fn parse_signing_request(
    body: &Value,
    genesis_fork_version: [u8; 4],
) -> Result<SigningRequest, Error> {
    let request_type = field(body, "type")?.as_str().ok_or(bad("type"))?.to_owned();
    let claimed_root = match body.get("signingRoot") {
        None | Some(Value::Null) => None,
        Some(_) => Some(bytes_of::<32>(body, "signingRoot")?),
    };
    let epoch_of = |slot: u64| slot / SLOTS_PER_EPOCH;
    let (kind, root, gvr, summary) = match request_type.as_str() {
        "ATTESTATION" => {
            let f = ForkInfo::parse(body)?;
            let (root, slot, source, target) = attestation_data(field(body, "attestation")?)?;
            (
                Kind::Attestation { source, target },
                signing_root(&root, &f.domain(DOMAIN_BEACON_ATTESTER, target)),
                Some(f.gvr),
                json!({"slot": slot, "source": source, "target": target}),
            )
        }
        "BLOCK_V2" | "BLOCK" => {
            let f = ForkInfo::parse(body)?;
            let (root, slot, version) = if request_type == "BLOCK" {
                let (r, s) = full_block(field(body, "block")?, false)?;
                (r, s, "PHASE0".to_owned())
            } else {
                let b = field(body, "beacon_block")?;
                let version = field(b, "version")?
                    .as_str()
                    .ok_or(bad("version"))?
                    .to_ascii_uppercase();
                let (r, s) = match version.as_str() {
                    "PHASE0" => full_block(field(b, "block")?, false)?,
                    "ALTAIR" => full_block(field(b, "block")?, true)?,
                    // From Bellatrix on, clients send the header: its root is the block's.
                    "BELLATRIX" | "CAPELLA" | "DENEB" | "ELECTRA" | "FULU" => {
                        block_header(field(b, "block_header")?)?
                    }
                    _ => return Err(bad("version")),
                };
                (r, s, version)
            };
            (
                Kind::Block { slot },
                signing_root(&root, &f.domain(DOMAIN_BEACON_PROPOSER, epoch_of(slot))),
                Some(f.gvr),
                json!({"slot": slot, "version": version}),
            )
        }
        "RANDAO_REVEAL" => {
            let f = ForkInfo::parse(body)?;
            let epoch = u64_of(field(body, "randao_reveal")?, "epoch")?;
            (
                Kind::Other,
                signing_root(&uint64(epoch), &f.domain(DOMAIN_RANDAO, epoch)),
                Some(f.gvr),
                json!({"epoch": epoch}),
            )
        }
        "AGGREGATION_SLOT" => {
            let f = ForkInfo::parse(body)?;
            let slot = u64_of(field(body, "aggregation_slot")?, "slot")?;
            (
                Kind::Other,
                signing_root(
                    &uint64(slot),
                    &f.domain(DOMAIN_SELECTION_PROOF, epoch_of(slot)),
                ),
                Some(f.gvr),
                json!({"slot": slot}),
            )
        }
        "AGGREGATE_AND_PROOF" => {
            let f = ForkInfo::parse(body)?;
            let a = field(body, "aggregate_and_proof")?;
            let aggregate = field(a, "aggregate")?;
            let slot = u64_of(field(aggregate, "data")?, "slot")?;
            let root = container(&[
                uint64(u64_of(a, "aggregator_index")?),
                attestation(aggregate)?,
                byte_vector(&bytes_of::<96>(a, "selection_proof")?),
            ]);
            (
                Kind::Other,
                signing_root(&root, &f.domain(DOMAIN_AGGREGATE_AND_PROOF, epoch_of(slot))),
                Some(f.gvr),
                json!({"slot": slot}),
            )
        }
        "VOLUNTARY_EXIT" => {
            let f = ForkInfo::parse(body)?;
            let e = field(body, "voluntary_exit")?;
            let (epoch, validator_index) = (u64_of(e, "epoch")?, u64_of(e, "validator_index")?);
            (
                Kind::VoluntaryExit {
                    validator_index,
                    epoch,
                },
                signing_root(
                    &container(&[uint64(epoch), uint64(validator_index)]),
                    &f.domain(DOMAIN_VOLUNTARY_EXIT, epoch),
                ),
                Some(f.gvr),
                json!({"epoch": epoch, "validator_index": validator_index}),
            )
        }
        "SYNC_COMMITTEE_MESSAGE" => {
            let f = ForkInfo::parse(body)?;
            let m = field(body, "sync_committee_message")?;
            let slot = u64_of(m, "slot")?;
            (
                Kind::Other,
                signing_root(
                    &bytes_of::<32>(m, "beacon_block_root")?,
                    &f.domain(DOMAIN_SYNC_COMMITTEE, epoch_of(slot)),
                ),
                Some(f.gvr),
                json!({"slot": slot}),
            )
        }
        "SYNC_COMMITTEE_SELECTION_PROOF" => {
            let f = ForkInfo::parse(body)?;
            let d = field(body, "sync_aggregator_selection_data")?;
            let slot = u64_of(d, "slot")?;
            (
                Kind::Other,
                signing_root(
                    &container(&[uint64(slot), uint64(u64_of(d, "subcommittee_index")?)]),
                    &f.domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch_of(slot)),
                ),
                Some(f.gvr),
                json!({"slot": slot}),
            )
        }
        "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF" => {
            let f = ForkInfo::parse(body)?;
            let c = field(body, "contribution_and_proof")?;
            let contribution = field(c, "contribution")?;
            let slot = u64_of(contribution, "slot")?;
            let root = container(&[
                uint64(u64_of(c, "aggregator_index")?),
                container(&[
                    uint64(slot),
                    bytes_of::<32>(contribution, "beacon_block_root")?,
                    uint64(u64_of(contribution, "subcommittee_index")?),
                    bitvector(
                        &hex_bytes(contribution, "aggregation_bits")?,
                        SYNC_SUBCOMMITTEE_SIZE,
                        "aggregation_bits",
                    )?,
                    byte_vector(&bytes_of::<96>(contribution, "signature")?),
                ]),
                byte_vector(&bytes_of::<96>(c, "selection_proof")?),
            ]);
            (
                Kind::Other,
                signing_root(
                    &root,
                    &f.domain(DOMAIN_CONTRIBUTION_AND_PROOF, epoch_of(slot)),
                ),
                Some(f.gvr),
                json!({"slot": slot}),
            )
        }
        "VALIDATOR_REGISTRATION" => {
            let r = field(body, "validator_registration")?;
            let pubkey = bytes_of::<48>(r, "pubkey")?;
            let root = container(&[
                byte_vector(&bytes_of::<20>(r, "fee_recipient")?),
                uint64(u64_of(r, "gas_limit")?),
                uint64(u64_of(r, "timestamp")?),
                byte_vector(&pubkey),
            ]);
            (
                Kind::Registration { pubkey },
                signing_root(
                    &root,
                    &compute_domain(DOMAIN_APPLICATION_BUILDER, genesis_fork_version, &[0; 32]),
                ),
                None,
                json!({"fee_recipient": field(r, "fee_recipient")?}),
            )
        }
        "DEPOSIT" => {
            let d = field(body, "deposit")?;
            let root = container(&[
                byte_vector(&bytes_of::<48>(d, "pubkey")?),
                bytes_of::<32>(d, "withdrawal_credentials")?,
                uint64(u64_of(d, "amount")?),
            ]);
            (
                Kind::Deposit,
                signing_root(
                    &root,
                    &compute_domain(
                        DOMAIN_DEPOSIT,
                        bytes_of::<4>(d, "genesis_fork_version")?,
                        &[0; 32],
                    ),
                ),
                None,
                json!({"amount": u64_of(d, "amount")?,
                       "withdrawal_credentials": field(d, "withdrawal_credentials")?}),
            )
        }
        _ => return Err(bad("type")),
    };
    Ok(SigningRequest {
        request_type,
        kind,
        signing_root: root,
        genesis_validators_root: gvr,
        claimed_root,
        summary,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The zero hashes of SSZ: merkleizing nothing to 2^k chunks gives zerohash(k).
    #[test]
    fn zero_chunks_merkleize_to_zero_hashes() {
        let z1 = hash2(&[0; 32], &[0; 32]);
        assert_eq!(merkleize(&[], 2), z1);
        assert_eq!(merkleize(&[], 4), hash2(&z1, &z1));
        assert_eq!(merkleize(&[[1; 32]], 1), [1; 32]);
    }

    /// A bitlist's delimiter is not data, and its length is mixed in.
    #[test]
    fn bitlists() {
        // Three bits 1,0,1 and the delimiter: 0b1101.
        let root = bitlist(&[0b1101], 2048, "b").unwrap();
        assert_eq!(root, mix_in_length(&merkleize(&pack(&[0b101]), 8), 3));
        assert!(bitlist(&[0], 2048, "b").is_err());
        assert!(bitlist(&[], 2048, "b").is_err());
        assert!(bitlist(&[0xff, 0xff, 0x01], 8, "b").is_err());
    }
}
