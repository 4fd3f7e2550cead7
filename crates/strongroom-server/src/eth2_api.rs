//! The Ethereum remote-signing API (Web3Signer's `eth2` API, ethereum/remote-signing-api
//! v1.1.0) on its own listener, bound to one domain.
//!
//! Consensus clients send no credential, so this listener is reachable only by a client
//! certificate (mTLS) or on loopback, and every request is audited on its own, never rate
//! limited. The vault computes each signing root itself (`strongroom_chains::eth2`) and refuses
//! a request whose `signingRoot` disagrees. Blocks and attestations pass slashing protection
//! (`Mutation::Eth2Duty`) in the same storage transaction as their audit record, before the
//! key signs; every request that names a chain is checked against the domain's pinned chain.
//! Voluntary exits are refused: they are irreversible, and exit authorisations are not built
//! yet. Answers: `{"signature": ...}` when the client accepts JSON, the bare signature as text
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

/// The largest signing request accepted (a full phase0 block with every list at its limit
/// stays well under it).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// What the listener serves.
#[derive(Clone)]
struct Listener {
    vault: Arc<Vault>,
    domain_name: DomainName,
    // Domain names are sealed: found once the vault is unsealed, then kept.
    domain: Arc<OnceLock<DomainRecord>>,
    genesis_fork_version: [u8; 4],
}

impl Listener {
    /// The served domain (refused while sealed, or once destroyed).
    fn domain(&self) -> Result<DomainRecord, ApiError> {
        if let Some(d) = self.domain.get() {
            return live(d.clone());
        }
        if self.vault.keystore.status().sealed {
            return Err(ApiError::Sealed);
        }
        let d = self
            .vault
            .store
            .domain_by_name(&self.domain_name)?
            .ok_or(ApiError::NotFound)?;
        let _ = self.domain.set(d.clone());
        live(d)
    }
}

fn live(d: DomainRecord) -> Result<DomainRecord, ApiError> {
    crate::service::live_domain(&d)?;
    Ok(d)
}

/// The remote-signing router for the domain `domain_name`. `genesis_fork_version` is the
/// chain's, for builder registrations (which carry no fork info).
pub(crate) fn router(
    vault: Arc<Vault>,
    domain_name: DomainName,
    genesis_fork_version: [u8; 4],
) -> Router {
    let state = Listener {
        vault,
        domain_name,
        domain: Arc::new(OnceLock::new()),
        genesis_fork_version,
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
        return ApiError::Internal.into_response();
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
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn ctx_of(headers: &axum::http::Extensions) -> Result<Arc<RequestCtx>, ApiError> {
    headers
        .get::<Arc<RequestCtx>>()
        .cloned()
        .ok_or(ApiError::Internal)
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
    let keys: Vec<String> = validator_keys(&l)?
        .iter()
        .map(|k| format!("0x{}", hex::encode(&k.public_key)))
        .collect();
    Ok(axum::Json(keys))
}

/// The domain's validator key with this public key (`0x` + 96 hex digits).
fn key_by_identifier(l: &Listener, identifier: &str) -> Result<KeyRecord, ApiError> {
    let pubkey = identifier
        .strip_prefix("0x")
        .filter(|h| h.len() == 96 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_identifier",
                "the identifier is a BLS public key: 0x and 96 hex digits",
            )
        })?;
    validator_keys(l)?
        .into_iter()
        .find(|k| k.public_key == pubkey)
        .ok_or(ApiError::NotFound)
}

async fn sign(
    State(l): State<Listener>,
    Path(identifier): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let ctx = ctx_of(req.extensions())?;
    let body = axum::body::to_bytes(req.into_body(), MAX_REQUEST)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let k = key_by_identifier(&l, &identifier)?;
    ctx.tag(|t| t.key = Some(k.id));
    let signature = sign_for(&l, &ctx, &k, &body).await?;
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
    body: &Bytes,
) -> Result<[u8; 96], ApiError> {
    let domain = l.domain()?;
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
    if let Kind::VoluntaryExit { .. } = request.kind {
        return Err(ApiError::NotAllowed("exit_not_authorized"));
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
    // Durable (and, for duties, checked) with the audit record before the key signs.
    l.vault.commit(ctx, "eth2.sign", mutations).await?;
    if k.hot_idle_secs.is_some() {
        l.vault.last_use.touch(k.id, ctx.time);
    }
    Ok(l.vault
        .keystore
        .sign_validator(&domain, &k, &request.signing_root)?)
}

/// Serves the remote-signing API for `domain` on `listener` until `shutdown`.
pub(crate) async fn serve(
    vault: Arc<Vault>,
    domain_name: DomainName,
    genesis_fork_version: [u8; 4],
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let app = router(vault, domain_name, genesis_fork_version);
    crate::listener::run(listener, tls, app, shutdown).await;
}
