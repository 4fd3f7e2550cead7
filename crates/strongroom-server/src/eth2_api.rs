//! The Ethereum remote-signing API (Web3Signer's `eth2` API, ethereum/remote-signing-api
//! v1.1.0) on its own listener, bound to one domain.
//!
//! Consensus clients send no credential, so this listener is reachable only by a client
//! certificate (mTLS) or on loopback, and every request is audited on its own, never rate
//! limited. The vault computes each signing root itself (`strongroom_chains::eth2`) and refuses
//! a request whose `signingRoot` disagrees. Blocks and attestations pass slashing protection
//! (`Mutation::Eth2Duty`) in the same storage transaction as their audit record, before the
//! key signs; every request that names a chain is checked against the domain's pinned chain.
//! Voluntary exits are signed only for a key and epoch a quorum authorised (`eth2
//! authorize-exit`): they are irreversible. Answers: `{"signature": ...}` when the client accepts JSON, the bare signature as text
//! otherwise; 412 for a slashing refusal, 404 for an unknown key, 400 for a malformed request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use strongroom_chains::eth2::{Kind, parse_signing_request};
use strongroom_core::id::DomainName;
use strongroom_core::record::{DomainRecord, KeyRecord, Outcome};
use strongroom_core::slashing::{Duty, DutyRecord, Interchange, Validator};
use strongroom_core::storage::Mutation;
use strongroom_core::temperature::{self, Change};
use strongroom_core::{Algorithm, Principal, RequestId};

use crate::error::ApiError;
use crate::service::{RequestCtx, Tags, Vault};

/// The largest signing request accepted (a full phase0 block with every list at its limit is
/// about 400 KB of JSON).
const MAX_REQUEST: usize = 1024 * 1024;

/// What the listener serves.
#[derive(Clone)]
struct Listener {
    vault: Arc<Vault>,
    domain_name: DomainName,
    // Domain names are sealed: the id is found once the vault is unsealed, then kept; the
    // record is read again on every request (a destroyed domain serves nothing).
    domain: Arc<OnceLock<strongroom_core::DomainId>>,
    genesis_fork_version: [u8; 4],
    /// The chain the operator pinned in the configuration, if any.
    genesis_validators_root: Option<[u8; 32]>,
    index: Arc<Mutex<KeyIndex>>,
}

/// Which key holds a public key: public keys are sealed in storage, so finding one means
/// opening every key of the domain. Built once, rebuilt on a miss (at most once a second, so
/// that unknown keys cannot make every request pay for it); each hit is checked against the
/// key's current (MAC-checked) record.
#[derive(Default)]
struct KeyIndex {
    by_pubkey: std::collections::HashMap<Vec<u8>, strongroom_core::KeyId>,
    built: Option<std::time::Instant>,
}

/// The least time between two rebuilds of the index.
const REINDEX_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Listener {
    /// The served domain (refused while sealed, or once destroyed).
    fn domain(&self) -> Result<DomainRecord, ApiError> {
        if self.vault.keystore.status().sealed {
            return Err(ApiError::Sealed);
        }
        if let Some(id) = self.domain.get() {
            return live(self.vault.store.domain(*id)?.ok_or(ApiError::NotFound)?);
        }
        let d = self
            .vault
            .store
            .domain_by_name(&self.domain_name)?
            .ok_or(ApiError::NotFound)?;
        let _ = self.domain.set(d.id);
        live(d)
    }
}

fn live(d: DomainRecord) -> Result<DomainRecord, ApiError> {
    crate::service::live_domain(&d)?;
    Ok(d)
}

/// What the operator says about the chain: its genesis fork version (for builder
/// registrations, which carry no fork info) and, optionally, its genesis validators root (else
/// the first request that names one pins the domain to it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    pub(crate) genesis_fork_version: [u8; 4],
    pub(crate) genesis_validators_root: Option<[u8; 32]>,
}

/// The remote-signing router for the domain `domain_name`.
pub(crate) fn router(vault: Arc<Vault>, chain: Chain, domain_name: DomainName) -> Router {
    let state = Listener {
        vault,
        domain_name,
        domain: Arc::new(OnceLock::new()),
        genesis_fork_version: chain.genesis_fork_version,
        genesis_validators_root: chain.genesis_validators_root,
        index: Arc::new(Mutex::new(KeyIndex::default())),
    };
    Router::new()
        .route("/upcheck", get(upcheck))
        .route("/api/v1/eth2/publicKeys", get(public_keys))
        .route("/api/v1/eth2/sign/{identifier}", post(sign))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .layer(middleware::from_fn_with_state(state.clone(), pipeline))
        .with_state(state)
}

/// Every request: a context whose principal is this listener, refused while sealed, and an
/// audit record of its own unless the handler committed one.
async fn pipeline(
    State(l): State<Listener>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let vault = &l.vault;
    let mut id = [0u8; 16];
    if vault.entropy.fill(&mut id).is_err() {
        vault.entropy_failed().await;
        return ApiError::EntropyFailed.into_response();
    }
    let wall = vault.clock.now();
    let time = vault.time.observe(wall).effective;
    let operation = match req.uri().path() {
        "/upcheck" => "eth2.upcheck",
        "/api/v1/eth2/publicKeys" => "eth2.public_keys",
        p if p.starts_with("/api/v1/eth2/sign/") => "eth2.sign",
        _ => "eth2.unrouted",
    };
    let ctx = Arc::new(RequestCtx {
        request_id: RequestId::from_random(id),
        time,
        wall,
        source: peer.ip(),
        principal: Principal::Eth2Listener,
        request_expiry: None,
        tags: Mutex::new(Tags::default()),
    });
    let domain = l.domain();
    if let Ok(d) = &domain {
        ctx.tag(|t| t.domain = Some(d.id));
    }
    let mut response = if vault.writer.has_failed() {
        ApiError::AuditUnavailable.into_response()
    } else if let Err(test) = vault.self_test {
        // Upcheck too: the consensus client must see this signer is down.
        ApiError::SelfTestFailed(test).into_response()
    } else if vault.config_pending() || vault.rollback_pending() {
        // Sealed or not: nothing signs before the configuration is admitted, and a check of
        // the seal here could race an unseal.
        ApiError::ConfigUnauthorized("this node's configuration is not admitted".into())
            .into_response()
    } else if let (Err(e), false) = (&domain, operation == "eth2.upcheck") {
        e.clone().into_response()
    } else {
        req.extensions_mut().insert(Arc::clone(&ctx));
        next.run(req).await
    };
    if !ctx.tags().audited {
        let (outcome, code) = match response.extensions().get::<ApiError>() {
            Some(e) => (e.outcome(), Some(e.code())),
            None if response.status().is_success() => (Outcome::Granted, None),
            None if response.status().is_client_error() => (Outcome::Denied, Some("not_routed")),
            None => (Outcome::Failed, Some("internal_error")),
        };
        if vault
            .writer
            .submit(vec![], ctx.event(operation, outcome, code))
            .await
            .is_err()
        {
            response = ApiError::AuditUnavailable.into_response();
        }
    }
    if matches!(
        response.extensions().get::<ApiError>(),
        Some(ApiError::SealedStateCorrupt)
    ) && !vault.integrity_failed().await
    {
        // Not tampering: the root was replaced while this request ran.
        response = ApiError::conflict(
            "root_changed",
            "the root key was replaced (rekey) while this request ran; retry (a node that did not make the rekey is now sealed)",
        )
        .into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn upcheck() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "OK")
}

/// The domain's live validator keys.
fn validator_keys(l: &Listener) -> Result<Vec<KeyRecord>, ApiError> {
    let keys = l.vault.store.keys(l.domain()?.id)?;
    let mut out = Vec::new();
    for k in keys {
        if k.algorithm == Algorithm::Bls12381 && k.destroyed_at.is_none() {
            l.vault.check_public(&k)?;
            out.push(k);
        }
    }
    Ok(out)
}

async fn public_keys(State(l): State<Listener>) -> Result<impl IntoResponse, ApiError> {
    // Listing opens every key of the domain: off the async workers, and it refreshes the
    // index.
    let keys = tokio::task::spawn_blocking(move || reindex(&l, true))
        .await
        .map_err(|_| ApiError::Internal)??;
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("0x{}", hex::encode(k)))
        .collect();
    Ok(axum::Json(keys))
}

/// Rebuilds the public-key index (unless `force` is false and it was rebuilt within
/// [`REINDEX_AFTER`]), holding its lock so that concurrent misses build it once; the domain's
/// validator public keys.
fn reindex(l: &Listener, force: bool) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut index = l
        .index
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !force && index.built.is_some_and(|t| t.elapsed() < REINDEX_AFTER) {
        return Ok(index.by_pubkey.keys().cloned().collect());
    }
    let keys = validator_keys(l)?;
    index.by_pubkey = keys.iter().map(|k| (k.public_key.clone(), k.id)).collect();
    index.built = Some(std::time::Instant::now());
    Ok(keys.into_iter().map(|k| k.public_key).collect())
}

/// The indexed key for `pubkey`, if it is still the domain's live validator key with it.
fn indexed(
    l: &Listener,
    domain: &DomainRecord,
    pubkey: &[u8],
) -> Result<Option<KeyRecord>, ApiError> {
    let id = l
        .index
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .by_pubkey
        .get(pubkey)
        .copied();
    let Some(id) = id else {
        return Ok(None);
    };
    let Some(found) = l.vault.keys.get(l.vault.store.as_ref(), id)? else {
        return Ok(None);
    };
    let (k, d) = (&found.0, &found.1);
    if d.id != domain.id
        || k.algorithm != Algorithm::Bls12381
        || k.destroyed_at.is_some()
        || k.public_key != pubkey
    {
        return Ok(None);
    }
    l.vault.check_public(k)?;
    Ok(Some(k.clone()))
}

/// The public key an identifier names (`0x` + 96 hex digits).
fn identifier_pubkey(identifier: &str) -> Result<Vec<u8>, ApiError> {
    identifier
        .strip_prefix("0x")
        .filter(|h| h.len() == 96 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_identifier",
                "the identifier is a BLS public key: 0x and 96 hex digits",
            )
        })
}

/// The domain's validator key with this public key, and the domain, if the index and the
/// key cache hold them: no database read. (A key or domain changed on another node is
/// forgotten by the cache; a destroyed or demoted key is refused again in the transaction
/// that records its duty.) `None`: take the slow path.
fn indexed_identifier(
    l: &Listener,
    identifier: &str,
) -> Result<Option<(KeyRecord, DomainRecord)>, ApiError> {
    let pubkey = identifier_pubkey(identifier)?;
    if l.vault.keystore.status().sealed {
        return Err(ApiError::Sealed);
    }
    let Some(served) = l.domain.get().copied() else {
        return Ok(None);
    };
    let id = l
        .index
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .by_pubkey
        .get(&pubkey)
        .copied();
    let Some(id) = id else { return Ok(None) };
    let Some(found) = l.vault.keys.get(l.vault.store.as_ref(), id)? else {
        return Ok(None);
    };
    let (k, d) = (&found.0, &found.1);
    if d.id != served
        || d.destroyed_at.is_some()
        || k.algorithm != Algorithm::Bls12381
        || k.destroyed_at.is_some()
        || k.public_key != pubkey
    {
        return Ok(None);
    }
    l.vault.check_public(k)?;
    Ok(Some((k.clone(), d.clone())))
}

/// The domain's validator key with this public key (`0x` + 96 hex digits), and the domain.
fn key_by_identifier(
    l: &Listener,
    identifier: &str,
) -> Result<(KeyRecord, DomainRecord), ApiError> {
    let pubkey = identifier_pubkey(identifier)?;
    let domain = l.domain()?;
    if let Some(k) = indexed(l, &domain, &pubkey)? {
        return Ok((k, domain));
    }
    reindex(l, false)?;
    let k = indexed(l, &domain, &pubkey)?.ok_or(ApiError::NotFound)?;
    Ok((k, domain))
}

async fn sign(
    State(l): State<Listener>,
    Path(identifier): Path<String>,
    axum::Extension(ctx): axum::Extension<Arc<RequestCtx>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    // The key asked for, in the record even if it is not found.
    ctx.tag(|t| t.detail = Some(json!({"identifier": identifier}).to_string()));
    // The index answers from memory; only a miss (which rebuilds it from the database) goes
    // off the async workers.
    let (k, domain) = match indexed_identifier(&l, &identifier)? {
        Some(found) => found,
        None => {
            let l = l.clone();
            let identifier = identifier.clone();
            tokio::task::spawn_blocking(move || key_by_identifier(&l, &identifier))
                .await
                .map_err(|_| ApiError::Internal)??
        }
    };
    ctx.tag(|t| t.key = Some(k.id));
    let signature = sign_for(&l, &ctx, &k, &domain, &body).await?;
    let hex_sig = format!("0x{}", hex::encode(signature));
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    Ok(if wants_json {
        axum::Json(json!({"signature": hex_sig})).into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain")], hex_sig).into_response()
    })
}

/// Parses, checks and signs one request with validator key `k`.
async fn sign_for(
    l: &Listener,
    ctx: &RequestCtx,
    k: &KeyRecord,
    domain: &DomainRecord,
    body: &Bytes,
) -> Result<[u8; 96], ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad("malformed_json", "the request body is not JSON"))?;
    let request = parse_signing_request(&value, l.genesis_fork_version)?;
    ctx.tag(|t| {
        t.detail = Some(
            json!({"type": request.request_type, "signing_root": format!("0x{}", hex::encode(request.signing_root)),
                   "request": request.summary})
            .to_string(),
        );
    });
    if request
        .claimed_root
        .is_some_and(|c| c != request.signing_root)
    {
        return Err(ApiError::bad(
            "signing_root_mismatch",
            "signingRoot is not the signing root of the request",
        ));
    }
    match request.kind {
        // A deposit names who may withdraw the stake: signed for the wrong credentials (before
        // the validator's own deposit lands) it hands the stake to someone else.
        Kind::Deposit => return Err(ApiError::NotAllowed("deposit_not_authorized")),
        Kind::Registration { pubkey } if pubkey.as_slice() != k.public_key.as_slice() => {
            return Err(ApiError::bad(
                "pubkey_mismatch",
                "the registration names another validator's public key",
            ));
        }
        _ => {}
    }
    if let (Some(pinned), Some(asked)) =
        (l.genesis_validators_root, request.genesis_validators_root)
        && pinned != asked
    {
        return Err(ApiError::conflict(
            "wrong_chain",
            "the request names another chain than the configured genesis validators root",
        ));
    }
    // A validator key signs duties only while hot; demoting it stops them at once.
    let k = match l.vault.demote_if_idle(k, ctx.time).await? {
        Some(k) => k,
        None => k.clone(),
    };
    if temperature::signing(k.temperature) != Change::Now {
        return Err(ApiError::conflict(
            "key_not_hot",
            "a validator key signs duties only while hot",
        ));
    }
    // Before the duty is recorded: a domain that disabled BLS records nothing.
    domain
        .algorithms
        .may_sign(k.algorithm)
        .map_err(|r| ApiError::NotAllowed(r.code()))?;
    crate::service::note_deprecated(ctx, &k, domain);
    let pubkey: [u8; 48] = k
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::StoredDataCorrupt)?;
    let mutations = match (request.kind, request.genesis_validators_root) {
        (Kind::Block { slot }, Some(gvr)) => vec![Mutation::Eth2Duty(DutyRecord {
            domain: domain.id,
            validator: Validator {
                genesis_validators_root: gvr,
                pubkey,
            },
            duty: Duty::Block {
                slot,
                signing_root: request.signing_root,
            },
        })],
        (Kind::Attestation { source, target }, Some(gvr)) => {
            vec![Mutation::Eth2Duty(DutyRecord {
                domain: domain.id,
                validator: Validator {
                    genesis_validators_root: gvr,
                    pubkey,
                },
                duty: Duty::Attestation {
                    source,
                    target,
                    signing_root: request.signing_root,
                },
            })]
        }
        // Irreversible: only with a quorum-approved authorisation for this key and epoch.
        (Kind::VoluntaryExit { epoch, .. }, Some(gvr)) => vec![
            Mutation::Eth2Exit { key: k.id, epoch },
            Mutation::Eth2Import {
                domain: domain.id,
                interchange: Interchange {
                    genesis_validators_root: gvr,
                    data: vec![],
                },
            },
        ],
        // Other duties: the chain must be the domain's (an empty import pins or checks it).
        (_, Some(gvr)) => vec![Mutation::Eth2Import {
            domain: domain.id,
            interchange: Interchange {
                genesis_validators_root: gvr,
                data: vec![],
            },
        }],
        (_, None) => vec![],
    };
    // Still hot as stored, in the transaction (a keymanager delete or a freeze on any node
    // that committed first stops it); durable (and, for duties, checked) with the audit
    // record before the key signs.
    let mutations = std::iter::once(Mutation::RequireHotKey { key: k.id })
        .chain(mutations)
        .collect();
    l.vault.commit(ctx, "eth2.sign", mutations).await?;
    if k.hot_idle_secs.is_some() {
        l.vault.last_use.touch(k.id, ctx.time);
    }
    // Demoted (or frozen) while the duty was being recorded: the record stays, nothing is
    // signed.
    let current = l
        .vault
        .keys
        .get(l.vault.store.as_ref(), k.id)?
        .ok_or(ApiError::NotFound)?;
    let signed = if temperature::signing(current.0.temperature) == Change::Now {
        l.vault
            .keystore
            .sign_validator(&current.1, &current.0, &request.signing_root)
            .map_err(ApiError::from)
    } else {
        Err(ApiError::conflict(
            "key_not_hot",
            "the key was demoted while the duty was recorded",
        ))
    };
    if let Err(e) = &signed {
        // The granted record is written; say that no signature followed.
        let _ = l
            .vault
            .writer
            .submit(
                vec![],
                ctx.event("eth2.sign_failed", e.outcome(), Some(e.code())),
            )
            .await;
    }
    signed
}

/// Serves the remote-signing API for `domain` on `listener` until `shutdown`.
pub(crate) async fn serve(
    vault: Arc<Vault>,
    chain: Chain,
    domain_name: DomainName,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let app = router(vault, chain, domain_name);
    crate::listener::run(listener, tls, app, shutdown).await;
}
