//! Slashing protection (EIP-3076) in SQL, shared by both backends: the checks of
//! `strongroom_core::slashing` run inside the write transaction that records the duty, so two
//! conflicting duties (on one node or many) cannot both commit.

use strongroom_core::slashing::{
    Duty, DutyRecord, EXIT_NOT_AUTHORIZED, History, Interchange, KEY_NOT_COLD, KEY_NOT_HOT,
    OTHER_DOMAIN, SLASHABLE, SignedAttestation, SignedBlock, Validator, WRONG_CHAIN,
};
use strongroom_core::{DomainId, Error as CoreError, KeyId};

use super::{Db, Fields, Param, all, bytes, int, one, req_bytes, to_i64};

/// The blind index of a validator: (genesis validators root, public key).
fn validator_index(f: &Fields, v: &Validator) -> Result<Vec<u8>, CoreError> {
    let mut value = v.genesis_validators_root.to_vec();
    value.extend_from_slice(&v.pubkey);
    match f.index("eth2-validator", &value)? {
        Param::Bytes(Some(b)) => Ok(b),
        _ => Err(CoreError::Corrupt("validator index")),
    }
}

fn slashable() -> CoreError {
    CoreError::Conflict(SLASHABLE)
}

fn opt_root(r: &dyn super::Row, i: usize) -> Result<Option<[u8; 32]>, CoreError> {
    r.bytes(i)?
        .map(|b| <[u8; 32]>::try_from(b.as_slice()).map_err(|_| CoreError::Corrupt("signing root")))
        .transpose()
}

fn root_param(root: Option<[u8; 32]>) -> Param {
    Param::Bytes(root.map(|r| r.to_vec()))
}

/// Pins `domain` to `gvr`, or refuses if it is pinned to another chain.
fn pin(db: &mut dyn Db, domain: DomainId, gvr: &[u8; 32]) -> Result<(), CoreError> {
    let pinned = one(
        db,
        "SELECT genesis_validators_root FROM eth2_domains WHERE domain_id = $1",
        &[bytes(domain.as_bytes())],
        |r| req_bytes(r, 0),
    )?;
    match pinned {
        Some(p) if p.as_slice() == gvr => Ok(()),
        Some(_) => Err(CoreError::Conflict(WRONG_CHAIN)),
        None => {
            db.execute(
                "INSERT INTO eth2_domains (domain_id, genesis_validators_root) VALUES ($1, $2)",
                &[bytes(domain.as_bytes()), bytes(gvr)],
            )?;
            Ok(())
        }
    }
}

/// Whether `domain` may add records to the validator: it made it, or signs for it (`join`:
/// a duty, which the server sends only for a key the domain holds, makes it a member).
fn member(db: &mut dyn Db, domain: DomainId, index: &[u8], join: bool) -> Result<(), CoreError> {
    let known = one(
        db,
        "SELECT 1 FROM eth2_memberships WHERE domain_id = $1 AND validator_index = $2",
        &[bytes(domain.as_bytes()), bytes(index)],
        |_| Ok(()),
    )?;
    match (known, join) {
        (Some(()), _) => Ok(()),
        (None, true) => {
            db.execute(
                "INSERT INTO eth2_memberships (domain_id, validator_index) VALUES ($1, $2)",
                &[bytes(domain.as_bytes()), bytes(index)],
            )?;
            Ok(())
        }
        // Another tenant's records are not this domain's to add to (a hostile record could
        // block the validator).
        (None, false) => Err(CoreError::Conflict(OTHER_DOMAIN)),
    }
}

/// The validator's row (made if missing, with `domain` its member) and its lower bounds
/// `(slot, source, target)`. `join`: see [`member`].
fn validator(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
    v: &Validator,
    join: bool,
) -> Result<(Vec<u8>, [Option<u64>; 3]), CoreError> {
    let index = validator_index(f, v)?;
    let bounds = one(
        db,
        "SELECT min_slot, min_source, min_target FROM eth2_validators WHERE validator_index = $1",
        &[bytes(&index)],
        |r| {
            let get = |i| -> Result<Option<u64>, CoreError> {
                r.int(i)?
                    .map(|n| u64::try_from(n).map_err(|_| CoreError::Corrupt("eth2 bound")))
                    .transpose()
            };
            Ok([get(0)?, get(1)?, get(2)?])
        },
    )?;
    if let Some(bounds) = bounds {
        member(db, domain, &index, join)?;
        return Ok((index, bounds));
    }
    let sealed = f.seal("eth2_validators.pubkey", &index, &v.pubkey)?;
    db.execute(
        "INSERT INTO eth2_validators (validator_index, genesis_validators_root, pubkey)
         VALUES ($1, $2, $3)",
        &[bytes(&index), bytes(&v.genesis_validators_root), sealed],
    )?;
    member(db, domain, &index, true)?;
    Ok((index, [None; 3]))
}

/// Checks a duty by the rules and records it (a repeat is recorded once).
pub(crate) fn duty(db: &mut dyn Db, f: &Fields, rec: &DutyRecord) -> Result<(), CoreError> {
    pin(db, rec.domain, &rec.validator.genesis_validators_root)?;
    let (index, [min_slot, min_source, min_target]) =
        validator(db, f, rec.domain, &rec.validator, true)?;
    let vi = || bytes(&index);
    match rec.duty {
        Duty::Block { slot, signing_root } => {
            let at = int(to_i64(slot).map_err(|_| slashable())?);
            let existing = one(
                db,
                "SELECT signing_root FROM eth2_blocks WHERE validator_index = $1 AND slot = $2",
                &[vi(), at.clone()],
                |r| opt_root(r, 0),
            )?;
            match existing {
                // The same block again: allowed, already recorded.
                Some(Some(root)) if root == signing_root => return Ok(()),
                Some(_) => return Err(slashable()),
                None => {}
            }
            if min_slot.is_some_and(|m| slot <= m) {
                return Err(slashable());
            }
            db.execute(
                "INSERT INTO eth2_blocks (validator_index, slot, signing_root) VALUES ($1, $2, $3)",
                &[vi(), at, bytes(&signing_root)],
            )?;
        }
        Duty::Attestation {
            source,
            target,
            signing_root,
        } => {
            if source > target {
                return Err(slashable());
            }
            let (s, t) = (
                int(to_i64(source).map_err(|_| slashable())?),
                int(to_i64(target).map_err(|_| slashable())?),
            );
            // Same target: only the identical attestation again.
            let same = all(
                db,
                "SELECT source_epoch, signing_root FROM eth2_attestations
                 WHERE validator_index = $1 AND target_epoch = $2",
                &[vi(), t.clone()],
                |r| Ok((super::req_int(r, 0)?, opt_root(r, 1)?)),
            )?;
            if !same.is_empty() {
                let repeat = same.iter().all(|(src, root)| {
                    u64::try_from(*src) == Ok(source) && *root == Some(signing_root)
                });
                return if repeat { Ok(()) } else { Err(slashable()) };
            }
            // Surrounded by one signed: its source before ours and its target after.
            let surrounded = one(
                db,
                "SELECT 1 FROM eth2_attestations WHERE validator_index = $1
                 AND target_epoch > $2 AND source_epoch < $3 LIMIT 1",
                &[vi(), t.clone(), s.clone()],
                |_| Ok(()),
            )?;
            // Surrounding one signed: its source after ours, so its target between ours.
            let surrounding = one(
                db,
                "SELECT 1 FROM eth2_attestations WHERE validator_index = $1
                 AND target_epoch > $2 AND target_epoch < $3 AND source_epoch > $2 LIMIT 1",
                &[vi(), s.clone(), t.clone()],
                |_| Ok(()),
            )?;
            if surrounded.is_some() || surrounding.is_some() {
                return Err(slashable());
            }
            if min_source.is_some_and(|m| source < m) || min_target.is_some_and(|m| target <= m) {
                return Err(slashable());
            }
            db.execute(
                "INSERT INTO eth2_attestations (validator_index, source_epoch, target_epoch, signing_root)
                 VALUES ($1, $2, $3, $4)",
                &[vi(), s, t, bytes(&signing_root)],
            )?;
        }
    }
    Ok(())
}

/// Records an exit authorisation (idempotent).
pub(crate) fn authorize_exit(db: &mut dyn Db, key: KeyId, epoch: u64) -> Result<(), CoreError> {
    let e = int(to_i64(epoch)?);
    let known = one(
        db,
        "SELECT 1 FROM eth2_exits WHERE key_id = $1 AND epoch = $2",
        &[bytes(key.as_bytes()), e.clone()],
        |_| Ok(()),
    )?;
    if known.is_none() {
        db.execute(
            "INSERT INTO eth2_exits (key_id, epoch) VALUES ($1, $2)",
            &[bytes(key.as_bytes()), e],
        )?;
    }
    Ok(())
}

/// Refuses an exit that was not authorised.
pub(crate) fn exit(db: &mut dyn Db, key: KeyId, epoch: u64) -> Result<(), CoreError> {
    let e = int(to_i64(epoch).map_err(|_| CoreError::Conflict(EXIT_NOT_AUTHORIZED))?);
    one(
        db,
        "SELECT 1 FROM eth2_exits WHERE key_id = $1 AND epoch = $2",
        &[bytes(key.as_bytes()), e],
        |_| Ok(()),
    )?
    .ok_or(CoreError::Conflict(EXIT_NOT_AUTHORIZED))
}

/// Records a validator key's release (see `Mutation::Eth2Release`).
pub(crate) fn release(
    db: &mut dyn Db,
    key: KeyId,
    at: strongroom_core::UnixMillis,
    how: &str,
) -> Result<(), CoreError> {
    db.execute(
        "INSERT INTO eth2_released (key_id, released_at, how) VALUES ($1, $2, $3)
         ON CONFLICT (key_id) DO NOTHING",
        &[
            bytes(key.as_bytes()),
            super::millis_param(at)?,
            super::text(how),
        ],
    )?;
    Ok(())
}

/// The released validator keys of a domain (see `Storage::eth2_released`).
pub(crate) fn released(
    db: &mut dyn Db,
    domain: DomainId,
) -> Result<Vec<(KeyId, strongroom_core::UnixMillis, String)>, CoreError> {
    all(
        db,
        "SELECT r.key_id, r.released_at, r.how FROM eth2_released r
         JOIN keys k ON k.id = r.key_id WHERE k.domain_id = $1 ORDER BY r.key_id",
        &[bytes(domain.as_bytes())],
        |r| {
            Ok((
                KeyId::from_bytes(super::arr(r, 0)?),
                super::millis(r, 1)?,
                super::req_text(r, 2)?,
            ))
        },
    )
}

/// Makes `domain` one of the validator's domains (see `Mutation::Eth2Join`).
pub(crate) fn join(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
    v: &Validator,
) -> Result<(), CoreError> {
    pin(db, domain, &v.genesis_validators_root)?;
    validator(db, f, domain, v, true).map(|_| ())
}

/// Fails unless the key is live and at `temperature` (`hot` or `cold`) as stored now (see
/// `Mutation::RequireHotKey` and `Mutation::RequireColdKey`).
pub(crate) fn require_temperature(
    db: &mut dyn Db,
    key: KeyId,
    temperature: &'static str,
) -> Result<(), CoreError> {
    one(
        db,
        "SELECT 1 FROM keys WHERE id = $1 AND temperature = $2 AND destroyed_at IS NULL
         AND sealed_secret IS NOT NULL",
        &[bytes(key.as_bytes()), super::text(temperature)],
        |_| Ok(()),
    )?
    .ok_or(CoreError::Conflict(if temperature == "hot" {
        KEY_NOT_HOT
    } else {
        KEY_NOT_COLD
    }))
}

/// Merges an interchange (see `Mutation::Eth2Import`).
pub(crate) fn import(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
    ic: &Interchange,
) -> Result<(), CoreError> {
    pin(db, domain, &ic.genesis_validators_root)?;
    for h in &ic.data {
        let v = Validator {
            genesis_validators_root: ic.genesis_validators_root,
            pubkey: h.pubkey,
        };
        let (index, [min_slot, min_source, min_target]) = validator(db, f, domain, &v, false)?;
        let vi = || bytes(&index);
        for b in &h.blocks {
            let slot = int(to_i64(b.slot)?);
            let existing = one(
                db,
                "SELECT signing_root FROM eth2_blocks WHERE validator_index = $1 AND slot = $2",
                &[vi(), slot.clone()],
                |r| opt_root(r, 0),
            )?;
            match existing {
                None => {
                    db.execute(
                        "INSERT INTO eth2_blocks (validator_index, slot, signing_root)
                         VALUES ($1, $2, $3)",
                        &[vi(), slot, root_param(b.signing_root)],
                    )?;
                }
                Some(known) if known.is_some() && known == b.signing_root => {}
                // Two different (or unknown) blocks at one slot: only refusals from now on.
                Some(_) => {
                    db.execute(
                        "UPDATE eth2_blocks SET signing_root = NULL
                         WHERE validator_index = $1 AND slot = $2",
                        &[vi(), slot],
                    )?;
                }
            }
        }
        for a in &h.attestations {
            let (s, t) = (int(to_i64(a.source)?), int(to_i64(a.target)?));
            let existing = one(
                db,
                "SELECT signing_root FROM eth2_attestations
                 WHERE validator_index = $1 AND target_epoch = $2 AND source_epoch = $3",
                &[vi(), t.clone(), s.clone()],
                |r| opt_root(r, 0),
            )?;
            match existing {
                None => {
                    db.execute(
                        "INSERT INTO eth2_attestations
                         (validator_index, source_epoch, target_epoch, signing_root)
                         VALUES ($1, $2, $3, $4)",
                        &[vi(), s, t, root_param(a.signing_root)],
                    )?;
                }
                Some(known) if known.is_some() && known == a.signing_root => {}
                Some(_) => {
                    db.execute(
                        "UPDATE eth2_attestations SET signing_root = NULL
                         WHERE validator_index = $1 AND target_epoch = $2 AND source_epoch = $3",
                        &[vi(), t, s],
                    )?;
                }
            }
        }
        // Before the earliest imported history nothing is known, so nothing is signed there;
        // after it, the complete history decides.
        let lowest = |xs: &mut dyn Iterator<Item = u64>| xs.min();
        let raise = |old: Option<u64>, new: Option<u64>| match (old, new) {
            (Some(o), Some(n)) => Some(o.min(n)),
            (o, n) => o.or(n),
        };
        let bounds = [
            raise(min_slot, lowest(&mut h.blocks.iter().map(|b| b.slot))),
            raise(
                min_source,
                lowest(&mut h.attestations.iter().map(|a| a.source)),
            ),
            raise(
                min_target,
                lowest(&mut h.attestations.iter().map(|a| a.target)),
            ),
        ];
        let param = |b: Option<u64>| -> Result<Param, CoreError> {
            Ok(Param::Int(b.map(to_i64).transpose()?))
        };
        db.execute(
            "UPDATE eth2_validators SET min_slot = $2, min_source = $3, min_target = $4
             WHERE validator_index = $1",
            &[
                vi(),
                param(bounds[0])?,
                param(bounds[1])?,
                param(bounds[2])?,
            ],
        )?;
    }
    Ok(())
}

/// The records of the validators `domain` recorded, for the chain it is pinned to.
pub(crate) fn export(
    db: &mut dyn Db,
    f: &Fields,
    domain: DomainId,
) -> Result<Option<Interchange>, CoreError> {
    let Some(gvr) = one(
        db,
        "SELECT genesis_validators_root FROM eth2_domains WHERE domain_id = $1",
        &[bytes(domain.as_bytes())],
        |r| super::arr::<32>(r, 0),
    )?
    else {
        return Ok(None);
    };
    let validators = all(
        db,
        "SELECT v.validator_index, v.pubkey FROM eth2_validators v
         JOIN eth2_memberships m ON m.validator_index = v.validator_index
         WHERE m.domain_id = $1 AND v.genesis_validators_root = $2 ORDER BY v.validator_index",
        &[bytes(domain.as_bytes()), bytes(&gvr)],
        |r| Ok((req_bytes(r, 0)?, req_bytes(r, 1)?)),
    )?;
    let mut data = Vec::with_capacity(validators.len());
    for (index, sealed) in validators {
        let pubkey = <[u8; 48]>::try_from(
            f.open("eth2_validators.pubkey", &index, &sealed)?
                .as_slice(),
        )
        .map_err(|_| CoreError::Corrupt("eth2_validators.pubkey"))?;
        let blocks = all(
            db,
            "SELECT slot, signing_root FROM eth2_blocks WHERE validator_index = $1 ORDER BY slot",
            &[bytes(&index)],
            |r| {
                Ok(SignedBlock {
                    slot: super::small(r, 0, "eth2 slot")?,
                    signing_root: opt_root(r, 1)?,
                })
            },
        )?;
        let attestations = all(
            db,
            "SELECT source_epoch, target_epoch, signing_root FROM eth2_attestations
             WHERE validator_index = $1 ORDER BY target_epoch, source_epoch",
            &[bytes(&index)],
            |r| {
                Ok(SignedAttestation {
                    source: super::small(r, 0, "eth2 epoch")?,
                    target: super::small(r, 1, "eth2 epoch")?,
                    signing_root: opt_root(r, 2)?,
                })
            },
        )?;
        data.push(History {
            pubkey,
            blocks,
            attestations,
        });
    }
    Ok(Some(Interchange {
        genesis_validators_root: gvr,
        data,
    }))
}
