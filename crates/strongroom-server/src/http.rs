//! The HTTP surface: routes, the request pipeline (authentication, rate limiting, sealed
//! gate, audit), JSON input parsing and handlers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use strongroom_core::record::Outcome;
use strongroom_core::{Principal, RequestId};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::service::{RequestCtx, SignInput, Tags, Vault};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// The largest slashing-protection interchange accepted (about 100,000 validators' minimal
/// histories).
pub const MAX_INTERCHANGE: usize = 32 * 1024 * 1024;

/// One API route: method, path, audit operation name, summary (for OpenAPI).
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Operation name in audit records.
    pub operation: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Whether a token is required.
    pub authenticated: bool,
    /// Whether it answers while the vault is sealed.
    pub while_sealed: bool,
}

const fn route(
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    summary: &'static str,
    authenticated: bool,
    while_sealed: bool,
) -> Route {
    Route {
        method,
        path,
        operation,
        summary,
        authenticated,
        while_sealed,
    }
}

/// Every route the server serves. The router, the audit operation names and the OpenAPI
/// document are all built from this table, so they cannot disagree.
pub const ROUTES: &[Route] = &[
    route(
        "GET",
        "/v1/health",
        "health",
        "Liveness and seal state",
        false,
        true,
    ),
    route(
        "GET",
        "/v1/sys/status",
        "status",
        "Seal status and unseal progress",
        false,
        true,
    ),
    route(
        "POST",
        "/v1/sys/init",
        "operator.init",
        "Initialise a fresh vault: returns the unseal shares and root token once",
        false,
        true,
    ),
    route(
        "POST",
        "/v1/sys/unseal",
        "operator.unseal",
        "Submit one unseal share",
        false,
        true,
    ),
    route(
        "POST",
        "/v1/sys/seal",
        "operator.seal",
        "Seal: wipe all key material from memory",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/tamper",
        "operator.tamper",
        "Tamper response: zeroize every key and seal; automatic unseals wait for the shares",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/config/verify",
        "config.verify",
        "Check a configuration file's security officer signatures (config sign) against this vault",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/seal/migrate",
        "seal.migrate",
        "Protect the root key as this node's [seal] says: move between Shamir shares and a PKCS#11 token (gated: seal.migrate)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/backup",
        "backup.create",
        "An encrypted backup of the whole vault (gated: backup.create); once approved, its requester collects it once",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/rekey",
        "operator.rekey_start",
        "Start a rekey: a new root key and new unseal shares (count, threshold, optional custodian keys); security officers",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/sys/rekey",
        "operator.rekey_status",
        "The rekey in progress on this node: its nonce, phase and progress",
        false,
        false,
    ),
    route(
        "DELETE",
        "/v1/sys/rekey",
        "operator.rekey_cancel",
        "Abandon the rekey in progress (new shares already issued become worthless)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/sys/rekey/share",
        "operator.rekey_share",
        "Submit a share to the rekey: current shares authorise it, then new shares verify and commit it",
        false,
        false,
    ),
    route(
        "POST",
        "/v1/sys/clock/acknowledge",
        "clock.acknowledge",
        "Accept the wall clock after it moved backwards (security officers)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/domains",
        "domain.create",
        "Create a cryptographic domain",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/domains",
        "domain.list",
        "List domains",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/tokens",
        "token.create",
        "Issue an application token for one domain",
        true,
        false,
    ),
    route(
        "DELETE",
        "/v1/tokens/{id}",
        "token.revoke",
        "Revoke a token",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets",
        "wallet.create",
        "Create an HD wallet (bitcoin, ethereum or eos) from fresh entropy or a BIP-39 mnemonic",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/wallets",
        "wallet.list",
        "List a domain's wallets",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/wallets/{id}",
        "wallet.show",
        "Show a wallet",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/wallets/{id}/address",
        "wallet.address",
        "A wallet's address at ?index=I (&change=true for the change branch)",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/wallets/{id}/xpub",
        "wallet.xpub",
        "A wallet's account extended public key, fingerprint and path",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/eth/sign-tx",
        "eth.sign_tx",
        "Sign an Ethereum transaction (JSON-RPC object: legacy EIP-155, EIP-2930 or EIP-1559) with address ?index of a wallet, under policy",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/eth/erc20-transfer",
        "eth.erc20_transfer",
        "Build and sign an EIP-1559 ERC-20 transfer(address,uint256), under policy",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/btc/sign-psbt",
        "btc.sign_psbt",
        "Sign a Bitcoin PSBT (base64) with a wallet: every input must be the wallet's (P2WPKH ECDSA or P2TR key-path Schnorr), change is re-derived, destinations and fee under policy",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/eos/sign",
        "eos.sign",
        "Sign a packed EOS/Antelope transaction for a chain id, under policy (warm wallets and quorum rules: a request): canonical SIG_K1",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/eth/sign-typed-data",
        "eth.sign_typed_data",
        "Sign EIP-712 typed data (eth_signTypedData_v4; hot wallets; permits only if policy allows)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/eth/sign-message",
        "eth.sign_message",
        "Sign an EIP-191 personal_sign message (hot wallets)",
        true,
        false,
    ),
    route(
        "PUT",
        "/v1/wallets/{id}/policy",
        "policy.set",
        "Set a wallet's policy (gated: policy.set); the body is the policy document",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/wallets/{id}/policy",
        "policy.show",
        "A wallet's policy, its version and entries still cooling off",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/wallets/{id}/policy/test",
        "policy.test",
        "Dry run: what the wallet's policy decides on a transaction, and which rule decides",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys",
        "key.create",
        "Create a key",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/keys",
        "key.list",
        "List a domain's keys",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/keys/{id}",
        "key.show",
        "Show a key",
        true,
        false,
    ),
    route(
        "DELETE",
        "/v1/keys/{id}",
        "key.destroy",
        "Destroy a key (crypto-shredding)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys/{id}/sign",
        "key.sign",
        "Sign a digest (ECDSA) or message (Ed25519)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/eth2/derive",
        "eth2.derive",
        "Derive Ethereum validator (BLS) keys from a BIP-39 mnemonic by EIP-2333 at m/12381/3600/i/0/0, skipping those the domain holds",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/eth2/import",
        "eth2.import",
        "Import EIP-2335 keystores (at most 64 per request) into a domain: decrypted in the vault and sealed under the domain key",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/eth2/slashing/import",
        "eth2.slashing_import",
        "Merge an EIP-3076 slashing-protection interchange (?domain=D) into the domain's records; pins the domain to its chain",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/eth2/slashing/export",
        "eth2.slashing_export",
        "The domain's slashing-protection records (?domain=D) as an EIP-3076 interchange",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/eth2/promote",
        "eth2.promote",
        "Make every validator key of a domain colder than `to` that warm, with one approval (key.warm)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys/{id}/eth2-exit",
        "eth2.authorize_exit",
        "Authorise a validator key's voluntary exit at an epoch (a request needing at least one approval); the remote signer then signs that exit",
        true,
        false,
    ),
    route(
        "PUT",
        "/v1/keys/{id}/policy",
        "key.policy_set",
        "Set a plain key's policy: which application tokens may sign with it, and at what rate (gated: policy.set)",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/keys/{id}/policy",
        "key.policy_show",
        "A plain key's policy and its version",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/operators",
        "operator.create",
        "Add an operator: returns the one-time enrolment password and TOTP URI",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/operators",
        "operator.list",
        "List operators",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/operators/{name}/disable",
        "operator.disable",
        "Disable an operator",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/domains/{name}/algorithms",
        "domain.algorithms",
        "Allow, deprecate (no new keys) or disable (no signatures) algorithms in a domain (gated: domain.algorithms)",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/domains/{name}",
        "domain.show",
        "A domain, its master key version and any rotation's progress",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/domains/{name}/rotate",
        "domain.rotate",
        "Rotate a domain's master key: new blobs use the new version at once; existing ones move in the background (security officers)",
        true,
        false,
    ),
    route(
        "DELETE",
        "/v1/domains/{name}",
        "domain.destroy",
        "Destroy a domain: erase its master key and so every key in it (gated: domain.destroy)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys/{id}/export",
        "key.export",
        "Export a cold key as a cold-storage bundle for custodians, optionally taking it offline (gated: key.export)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys/import",
        "key.import",
        "Bring an offline key back from its bundle and custodians' shares",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/operators/{name}/roles",
        "operator.roles",
        "Change an operator's roles and domain (gated: operator.roles)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/operators/me/approval-key",
        "operator.register_key",
        "Register the calling operator's Ed25519 approval key",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/login",
        "operator.login",
        "Log in with password and one-time code: returns a session token",
        false,
        false,
    ),
    route(
        "POST",
        "/v1/keys/{id}/rotate",
        "key.rotate",
        "Rotate a key: a successor of the same algorithm and label, one version up; the old key turns cold (kept for verification)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/keys/{id}/temperature",
        "key.temperature",
        "Make a key colder (at once) or warmer (with a quorum)",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/requests",
        "request.list",
        "List requests awaiting (or done with) approvals",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/requests/{id}",
        "request.show",
        "Show a request: what it will do, its hash and its approvals",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/requests/{id}/approve",
        "request.approve",
        "Approve a request with an Ed25519 signature over its hash",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/requests/{id}/reject",
        "request.reject",
        "Reject a request",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/quorum",
        "quorum.list",
        "List quorum rules",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/quorum",
        "quorum.set",
        "Set how many approvals an operation needs (vault-wide or per domain)",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/audit/export",
        "audit.export",
        "Export the audit log, its signed heads and the approval evidence (NDJSON)",
        true,
        false,
    ),
    route(
        "POST",
        "/v1/eth2/export-keystore",
        "eth2.export_keystore",
        "Write a cold validator key out as an EIP-2335 keystore: files a key.export request, then its requester collects it once approved",
        true,
        false,
    ),
    route(
        "GET",
        "/eth/v1/keystores",
        "keymanager.list",
        "Keymanager API: the domain's active validator keys (key-manager token)",
        true,
        false,
    ),
    route(
        "POST",
        "/eth/v1/keystores",
        "keymanager.import",
        "Keymanager API: import EIP-2335 keystores with their EIP-3076 slashing data",
        true,
        false,
    ),
    route(
        "DELETE",
        "/eth/v1/keystores",
        "keymanager.delete",
        "Keymanager API: make validator keys cold at once and return their slashing data",
        true,
        false,
    ),
    route(
        "GET",
        "/v1/openapi.json",
        "openapi",
        "This OpenAPI document",
        false,
        false,
    ),
];

fn lookup(method: &Method, path: Option<&str>) -> Option<&'static Route> {
    let path = path?;
    ROUTES
        .iter()
        .find(|r| r.method == method.as_str() && r.path == path)
}

/// A query string, or 400 `malformed_query`.
fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|_| ApiError::bad("malformed_query", "unknown or invalid query parameters"))
}

/// Builds the router.
pub fn router(vault: Arc<Vault>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/sys/status", get(status))
        .route("/v1/sys/init", post(init))
        .route("/v1/sys/unseal", post(unseal))
        .route("/v1/sys/seal", post(seal))
        .route("/v1/sys/tamper", post(tamper))
        .route("/v1/sys/seal/migrate", post(migrate_seal))
        .route(
            "/v1/sys/rekey",
            post(rekey_start).get(rekey_status).delete(rekey_cancel),
        )
        .route("/v1/sys/rekey/share", post(rekey_share))
        .route("/v1/sys/backup", post(create_backup))
        .route("/v1/sys/config/verify", post(verify_config))
        .route("/v1/sys/clock/acknowledge", post(acknowledge_clock))
        .route("/v1/domains", post(create_domain).get(list_domains))
        .route("/v1/tokens", post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/wallets", post(create_wallet).get(list_wallets))
        .route("/v1/wallets/{id}", get(show_wallet))
        .route("/v1/wallets/{id}/address", get(wallet_address))
        .route("/v1/wallets/{id}/xpub", get(wallet_xpub))
        .route("/v1/wallets/{id}/policy", put(set_policy).get(show_policy))
        .route("/v1/wallets/{id}/policy/test", post(test_policy))
        .route("/v1/wallets/{id}/eth/sign-tx", post(eth_sign_tx))
        .route(
            "/v1/wallets/{id}/eth/erc20-transfer",
            post(eth_erc20_transfer),
        )
        .route("/v1/wallets/{id}/eth/sign-message", post(eth_sign_message))
        .route("/v1/wallets/{id}/eos/sign", post(eos_sign))
        .route("/v1/wallets/{id}/btc/sign-psbt", post(btc_sign_psbt))
        .route(
            "/v1/wallets/{id}/eth/sign-typed-data",
            post(eth_sign_typed_data),
        )
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{id}", get(show_key).delete(destroy_key))
        .route("/v1/keys/{id}/sign", post(sign))
        .route("/v1/eth2/derive", post(eth2_derive))
        .route("/v1/keys/{id}/eth2-exit", post(eth2_authorize_exit))
        .route("/v1/eth2/promote", post(eth2_promote))
        .route("/v1/eth2/export-keystore", post(eth2_export_keystore))
        .route(
            "/v1/eth2/import",
            post(eth2_import).layer(axum::extract::DefaultBodyLimit::max(MAX_INTERCHANGE)),
        )
        .route(
            "/v1/eth2/slashing/import",
            // Interchanges of thousands of validators are megabytes.
            post(eth2_slashing_import).layer(axum::extract::DefaultBodyLimit::max(MAX_INTERCHANGE)),
        )
        .route("/v1/eth2/slashing/export", get(eth2_slashing_export))
        .route(
            "/v1/keys/{id}/policy",
            put(set_key_policy).get(show_key_policy),
        )
        .route("/v1/operators", post(create_operator).get(list_operators))
        .route("/v1/operators/{name}/disable", post(disable_operator))
        .route("/v1/operators/{name}/roles", post(change_roles))
        .route("/v1/operators/me/approval-key", post(register_key))
        .route("/v1/login", post(login))
        .route("/v1/keys/{id}/temperature", post(set_temperature))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/keys/{id}/export", post(export_key))
        .route(
            "/v1/domains/{name}",
            delete(destroy_domain).get(show_domain),
        )
        .route("/v1/domains/{name}/rotate", post(rotate_domain))
        .route("/v1/domains/{name}/algorithms", post(set_domain_algorithms))
        .route("/v1/keys/import", post(import_key))
        .route("/v1/requests", get(list_requests))
        .route("/v1/requests/{id}", get(show_request))
        .route("/v1/requests/{id}/approve", post(approve_request))
        .route("/v1/requests/{id}/reject", post(reject_request))
        .route("/v1/quorum", get(list_quorum).post(set_quorum))
        .route("/v1/audit/export", get(export_audit))
        .route(
            "/eth/v1/keystores",
            get(keymanager_list)
                .post(keymanager_import)
                .delete(keymanager_delete)
                // Hundreds of keystores and their slashing data.
                .layer(axum::extract::DefaultBodyLimit::max(MAX_INTERCHANGE)),
        )
        .route("/v1/openapi.json", get(openapi))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async {
            ApiError::bad(
                "method_not_allowed",
                "this path does not accept that method",
            )
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&vault), pipeline))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(vault)
}

/// Optional header: seconds until a request filed by this call expires (default 24 hours).
pub(crate) const REQUEST_EXPIRES: &str = "strongroom-request-expires";

fn bearer(req: &Request) -> Option<&str> {
    let v = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    v.strip_prefix("Bearer ").map(str::trim)
}

/// The request pipeline around every handler: identify the caller, rate-limit anonymous and
/// failed-auth traffic, refuse while sealed, run the handler, then make sure an audit record
/// is durable before the response leaves (or replace the response with 503).
async fn pipeline(
    State(vault): State<Arc<Vault>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let route = lookup(
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let request_id = {
        let mut b = [0u8; 16];
        if vault.entropy.fill(&mut b).is_err() {
            vault.entropy_failed().await;
            // Health and status still answer (and say why); nothing else is done.
            if route.is_none_or(|r| !matches!(r.operation, "health" | "status")) {
                return ApiError::EntropyFailed.into_response();
            }
        }
        RequestId::from_random(b)
    };
    let wall = vault.clock.now();
    let observed = vault.time.observe(wall);
    let time = observed.effective;
    let operation = route.map_or("http.unrouted", |r| r.operation);
    let source = peer.ip();

    let auth = match bearer(&req) {
        None => Ok(Principal::Anonymous),
        // While sealed a token cannot be checked (its MAC key is derived from the root), and
        // nothing that needs one answers: treat the caller as anonymous.
        Some(_) if vault.keystore.status().sealed => Ok(Principal::Anonymous),
        Some(t) => vault.tokens.authenticate(
            vault.store.as_ref(),
            &vault.keystore,
            &vault.vault_id,
            t,
            time,
            || vault.limiter.allow(source, Instant::now()),
        ),
    };
    let principal = *auth.as_ref().unwrap_or(&Principal::Anonymous);
    let request_expiry = req
        .headers()
        .get(REQUEST_EXPIRES)
        .map(|v| crate::requests::parse_expiry(v.as_bytes()))
        .transpose();
    let ctx = Arc::new(RequestCtx {
        request_id,
        time,
        wall,
        source,
        principal,
        request_expiry: request_expiry.as_ref().ok().copied().flatten(),
        tags: Mutex::new(Tags::default()),
    });

    if observed.newly_untrusted {
        tracing::error!(
            "the wall clock moved backwards beyond the allowed skew; time-dependent operations are refused until acknowledged"
        );
        let event = ctx.event("clock.jump", Outcome::Failed, Some("clock_untrusted"));
        if vault.writer.submit(vec![], event).await.is_err() {
            return ApiError::AuditUnavailable.into_response();
        }
    }
    // Operations whose meaning depends on the time (one-time codes, expiries).
    let time_dependent = matches!(
        operation,
        "operator.login" | "request.approve" | "request.reject" | "token.create"
    );
    let anonymous = matches!(principal, Principal::Anonymous);
    let rate_limited = matches!(auth, Err(ApiError::RateLimited))
        || (anonymous && !vault.limiter.allow(source, Instant::now()));
    // Read once: a request must not see "sealed" for one check and "unsealed" for the next
    // (an unseal landing in between would skip the configuration gate).
    let sealed_now = vault.keystore.status().sealed;
    let mut response = if rate_limited {
        ApiError::RateLimited.into_response()
    } else if let Err(e) = auth {
        e.into_response()
    } else if let Err(e) = request_expiry {
        e.into_response()
    } else if vault.writer.has_failed()
        && route.is_none_or(|r| !matches!(r.operation, "health" | "operator.tamper"))
    {
        ApiError::AuditUnavailable.into_response()
    } else if let Err(test) = vault.self_test
        && route.is_none_or(|r| !matches!(r.operation, "health" | "status"))
    {
        ApiError::SelfTestFailed(test).into_response()
    } else if time_dependent && !vault.clock_trusted() {
        ApiError::ClockUntrusted.into_response()
    } else if route.is_some_and(|r| !r.while_sealed && r.operation != "operator.tamper")
        && vault.config_pending()
        && !sealed_now
    {
        // Unsealed a moment ago, configuration not yet admitted (or just refused). The
        // tamper response is never held up.
        ApiError::ConfigUnauthorized("this node's configuration is not admitted".into())
            .into_response()
    } else if route.is_some_and(|r| !r.while_sealed && r.operation != "operator.tamper")
        && !sealed_now
        && vault.rollback_pending()
    {
        // Unsealed a moment ago over a rolled-back database, acceptance not yet checked.
        ApiError::RolledBack(vault.rollback().map(|f| f.what).unwrap_or_default()).into_response()
    } else if route.is_some_and(|r| !r.while_sealed) && sealed_now {
        if vault.keystore.status().initialized {
            ApiError::Sealed
        } else {
            ApiError::NotInitialized
        }
        .into_response()
    } else {
        req.extensions_mut().insert(Arc::clone(&ctx));
        let idempotent =
            route.is_some_and(|r| crate::idempotency::OPERATIONS.contains(&r.operation));
        match idempotent.then(|| crate::idempotency::key_of(req.headers())) {
            Some(Err(e)) => e.into_response(),
            Some(Ok(Some(key))) => crate::idempotency::run(&vault, &ctx, key, req, next).await,
            _ => next.run(req).await,
        }
    };

    let tags = ctx.tags();
    // An answer kept for an Idempotency-Key: with the request's record, or right after the
    // record the operation wrote itself.
    let store_answer: Vec<_> = tags.idempotent.clone().into_iter().collect();
    if tags.audited
        && !store_answer.is_empty()
        && vault
            .writer
            .submit(
                store_answer.clone(),
                ctx.event("idempotency.store", Outcome::Granted, None),
            )
            .await
            .is_err()
    {
        response = ApiError::AuditUnavailable.into_response();
    }
    if !tags.audited {
        let (outcome, code) = match response.extensions().get::<ApiError>() {
            Some(e) => (e.outcome(), Some(e.code())),
            None if response.status().is_success() => (Outcome::Granted, None),
            None => (Outcome::Failed, Some("internal_error")),
        };
        let event = ctx.event(operation, outcome, code);
        // Init and unseal carry their own credential (the shares), so each is recorded on its
        // own — within a vault-wide budget, so that a flood (from many loopback addresses, say)
        // cannot fill the disk. Other anonymous traffic, and anything rate limited, is
        // aggregated per source and interval.
        let individual = !anonymous
            || (matches!(
                operation,
                "operator.init"
                    | "operator.unseal"
                    | "operator.rekey_share"
                    | "operator.rekey_status"
                    | "operator.login"
            ) && !rate_limited
                && vault.limiter.allow_individual(Instant::now()));
        let to_write = if individual {
            Some(event)
        } else {
            vault.limiter.record(Some(source), event)
        };
        if let Some(event) = to_write
            && vault.writer.submit(store_answer, event).await.is_err()
        {
            response = ApiError::AuditUnavailable.into_response();
        }
    }
    // A health test that failed while this request drew randomness: seal and audit it.
    if vault.rng.failure().is_some() {
        vault.entropy_failed().await;
    }
    // The sealed state failed its integrity check while this request ran: tamper response.
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
    // The Keymanager API's own error shape: `{"message": ...}` (with our stable code).
    if operation.starts_with("keymanager.")
        && let Some(e) = response.extensions_mut().remove::<ApiError>()
    {
        let status = response.status();
        response = (
            status,
            Json(serde_json::json!({"message": e.message(), "code": e.code()})),
        )
            .into_response();
        response.extensions_mut().insert(e);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// JSON body extractor with strongroom's error format: 413 for bodies over [`MAX_BODY`], 400
/// (without echoing the input) for anything that does not parse into `T`.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "has the wrong fields or types",
                _ => "is not valid JSON",
            };
            ApiError::bad(
                "malformed_json",
                format!(
                    "request body {what} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })
    }
}

type Ctx = axum::Extension<Arc<RequestCtx>>;

/// Parses hex with or without `0x`.
pub(crate) fn parse_hex(field: &'static str, s: &str) -> Result<Vec<u8>, ApiError> {
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(s).map_err(|_| {
        ApiError::bad(
            "invalid_hex",
            format!("{field} must be hex (optionally 0x-prefixed)"),
        )
    })
}

async fn health(State(vault): State<Arc<Vault>>) -> Json<serde_json::Value> {
    let s = vault.keystore.status();
    let audit = if vault.writer.has_failed() {
        "failed"
    } else {
        "ok"
    };
    Json(serde_json::json!({
        "status": if audit == "ok" { "ok" } else { "degraded" },
        "initialized": s.initialized,
        "sealed": s.sealed,
        "audit": audit,
    }))
}

async fn status(State(vault): State<Arc<Vault>>) -> impl IntoResponse {
    Json(vault.status())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitBody {
    shares: u8,
    threshold: u8,
    /// One age recipient (`age1...`) per share: each share is returned encrypted to its
    /// custodian instead of in the clear.
    #[serde(default)]
    custodian_keys: Option<Vec<String>>,
}

async fn init(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<InitBody>,
) -> Result<impl IntoResponse, ApiError> {
    let custodians = b
        .custodian_keys
        .map(|keys| crate::bundles::parse_custodian_keys(&keys, usize::from(b.shares)))
        .transpose()?;
    Ok(Json(
        v.init(&ctx, b.shares, b.threshold, custodians, false)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealBody {
    share: Option<String>,
    #[serde(default)]
    reset: bool,
}

async fn unseal(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<UnsealBody>,
) -> Result<impl IntoResponse, ApiError> {
    match (b.share.map(Zeroizing::new), b.reset) {
        (Some(share), false) => Ok(Json(v.unseal(&ctx, &share)?)),
        (None, true) => Ok(Json(v.reset_unseal(&ctx)?)),
        _ => Err(ApiError::bad(
            "invalid_parameters",
            "give either share or reset: true",
        )),
    }
}

async fn seal(State(v): State<Arc<Vault>>, ctx: Ctx) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.seal(&ctx)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TamperBody {
    reason: Option<String>,
}

async fn tamper(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<TamperBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.tamper(&ctx, "api", b.reason.as_deref())?))
}

async fn migrate_seal(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    v.migrate_seal(&ctx).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeyBody {
    shares: u8,
    threshold: u8,
    /// One age recipient per new share: each is returned encrypted to its custodian.
    #[serde(default)]
    custodian_keys: Option<Vec<String>>,
}

async fn rekey_start(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<RekeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let custodians = b
        .custodian_keys
        .map(|keys| crate::bundles::parse_custodian_keys(&keys, usize::from(b.shares)))
        .transpose()?;
    let target = strongroom_keystore::ShamirSeal {
        shares: b.shares,
        threshold: b.threshold,
    };
    Ok(Json(v.rekey_start(&ctx, target, custodians).await?))
}

async fn rekey_status(State(v): State<Arc<Vault>>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.rekey_status().await?))
}

async fn rekey_cancel(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.rekey_cancel(&ctx).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    shares: Option<u8>,
    threshold: Option<u8>,
    #[serde(default)]
    custodian_keys: Option<Vec<String>>,
    request: Option<String>,
}

async fn create_backup(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<BackupBody>,
) -> Result<impl IntoResponse, ApiError> {
    let params = match (b.shares, b.threshold) {
        (Some(shares), Some(threshold)) => Some(crate::backup::BackupParams {
            split: strongroom_keystore::ShamirSeal { shares, threshold },
            custodians: b
                .custodian_keys
                .map(|k| crate::bundles::parse_custodian_keys(&k, usize::from(shares)))
                .transpose()?,
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad(
                "invalid_parameters",
                "give both shares and threshold",
            ));
        }
    };
    v.create_backup(&ctx, params, b.request.as_deref()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeyShareBody {
    nonce: String,
    share: String,
}

async fn rekey_share(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<RekeyShareBody>,
) -> Result<impl IntoResponse, ApiError> {
    let share = Zeroizing::new(b.share);
    Ok(Json(v.rekey_submit(&ctx, &b.nonce, &share).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    name: String,
    new_keys: Option<String>,
}

async fn create_domain(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<DomainBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.create_domain(&ctx, &b.name, b.new_keys.as_deref()).await
}

async fn show_domain(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_domain(&ctx, &name)?))
}

async fn rotate_domain(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.rotate_domain(&ctx, &name).await?))
}

async fn list_domains(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.list_domains(&ctx)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    domain: Option<String>,
    ttl_seconds: Option<u64>,
    /// `sign` (the default: an application token) or `keymanager`.
    scope: Option<String>,
}

async fn create_token(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<impl IntoResponse, ApiError> {
    let ttl = b.ttl_seconds.map(std::time::Duration::from_secs);
    Ok(Json(
        v.create_token(&ctx, b.domain.as_deref(), ttl, b.scope.as_deref())
            .await?,
    ))
}

async fn revoke_token(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.revoke_token(&ctx, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    domain: Option<String>,
    algorithm: String,
    label: Option<String>,
}

async fn create_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<KeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        v.create_key(&ctx, b.domain.as_deref(), &b.algorithm, b.label)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    domain: Option<String>,
}

async fn list_keys(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    Ok(Json(v.list_keys(&ctx, q.domain.as_deref())?))
}

async fn show_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_key(&ctx, &id)?))
}

async fn destroy_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    v.destroy_key(&ctx, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeriveBody {
    domain: Option<String>,
    mnemonic: Zeroizing<String>,
    passphrase: Option<Zeroizing<String>>,
    #[serde(default)]
    start: u32,
    count: u32,
}

async fn eth2_slashing_import(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    let body = body?;
    Ok(Json(
        v.eth2_slashing_import(&ctx, q.domain.as_deref(), &body)
            .await?,
    ))
}

async fn eth2_slashing_export(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    Ok(Json(v.eth2_slashing_export(&ctx, q.domain.as_deref())?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoreBody {
    domain: Option<String>,
    password: Zeroizing<String>,
    /// `[name, keystore]` pairs.
    keystores: Vec<(String, serde_json::Value)>,
}

async fn eth2_import(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body?;
    let b: KeystoreBody = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad("malformed_json", "the request body is not an import"))?;
    let req = crate::eth2::Import {
        domain: b.domain,
        password: b.password,
        keystores: b.keystores,
    };
    Ok(Json(v.eth2_import(&ctx, req).await?))
}

async fn keymanager_list(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.keymanager_list(&ctx)?))
}

/// A Keymanager API body (up to [`MAX_INTERCHANGE`]).
fn keymanager_body<T: DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad(
            "malformed_json",
            "the request body is not what the Keymanager API expects",
        )
    })
}

async fn keymanager_import(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req = keymanager_body(body)?;
    Ok(Json(v.keymanager_import(&ctx, req).await?))
}

async fn keymanager_delete(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req = keymanager_body(body)?;
    Ok(Json(v.keymanager_delete(&ctx, req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportKeystoreBody {
    key: Option<String>,
    request: Option<String>,
    password: Zeroizing<String>,
    kdf: Option<String>,
}

async fn eth2_export_keystore(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<ExportKeystoreBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.eth2_export_keystore(
        &ctx,
        crate::eth2::ExportKeystore {
            key: b.key,
            request: b.request,
            password: b.password,
            kdf: b.kdf,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    domain: Option<String>,
    to: String,
    idle_seconds: Option<u32>,
}

async fn eth2_promote(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<PromoteBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.eth2_promote(&ctx, b.domain.as_deref(), &b.to, b.idle_seconds)
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExitBody {
    epoch: u64,
}

async fn eth2_authorize_exit(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExitBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.eth2_authorize_exit(&ctx, &id, b.epoch).await
}

async fn eth2_derive(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<DeriveBody>,
) -> Result<impl IntoResponse, ApiError> {
    let req = crate::eth2::Derive {
        domain: b.domain,
        mnemonic: b.mnemonic,
        passphrase: b.passphrase,
        start: b.start,
        count: b.count,
    };
    Ok(Json(v.eth2_derive(&ctx, req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletBody {
    domain: Option<String>,
    chain: String,
    network: Option<String>,
    address_type: Option<String>,
    chain_id: Option<u64>,
    eos_chain_id: Option<String>,
    label: Option<String>,
    mnemonic: Option<Zeroizing<String>>,
    passphrase: Option<Zeroizing<String>>,
}

async fn create_wallet(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<WalletBody>,
) -> Result<impl IntoResponse, ApiError> {
    let w = crate::wallets::NewWallet {
        domain: b.domain,
        chain: b.chain,
        network: b.network,
        address_type: b.address_type,
        chain_id: b.chain_id,
        eos_chain_id: b.eos_chain_id,
        label: b.label,
        mnemonic: b.mnemonic,
        passphrase: b.passphrase,
    };
    Ok(Json(v.create_wallet(&ctx, w).await?))
}

async fn list_wallets(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    Ok(Json(v.list_wallets(&ctx, q.domain.as_deref())?))
}

async fn show_wallet(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_wallet(&ctx, &id)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressQuery {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    change: bool,
}

async fn wallet_address(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    q: Result<Query<AddressQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    Ok(Json(v.wallet_address(&ctx, &id, q.change, q.index)?))
}

async fn wallet_xpub(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.wallet_xpub(&ctx, &id)?))
}

async fn set_key_policy(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(document): ApiJson<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    v.set_key_policy(&ctx, &id, document).await
}

async fn show_key_policy(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_key_policy(&ctx, &id)?))
}

async fn set_policy(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(document): ApiJson<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    v.set_policy(&ctx, &id, document).await
}

async fn show_policy(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_policy(&ctx, &id)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyTestBody {
    tx: serde_json::Value,
}

async fn test_policy(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PolicyTestBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.test_policy(&ctx, &id, &b.tx)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EthTxBody {
    #[serde(default)]
    index: u32,
    tx: serde_json::Value,
}

async fn eth_sign_tx(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EthTxBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.eth_sign_tx(&ctx, "eth.sign_tx", &id, b.index, b.tx).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Erc20Body {
    #[serde(default)]
    index: u32,
    token: String,
    to: String,
    /// Base units, decimal.
    amount: String,
    nonce: u64,
    gas: u64,
    max_fee_per_gas: String,
    max_priority_fee_per_gas: String,
}

async fn eth_erc20_transfer(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Erc20Body>,
) -> Result<impl IntoResponse, ApiError> {
    use strongroom_chains::ethereum::{erc20_transfer_data, parse_address};
    let decimal = |name: &'static str, s: &str| {
        alloy_primitives::U256::from_str_radix(s, 10).map_err(|_| {
            ApiError::bad(
                "invalid_parameters",
                format!("{name} must be a decimal integer"),
            )
        })
    };
    let token = parse_address(&b.token)?;
    let to = parse_address(&b.to)?;
    let amount = decimal("amount", &b.amount)?;
    let data = erc20_transfer_data(to, amount);
    // The same strict parser as any transaction: fee rules and the chain are checked there.
    let tx = serde_json::json!({
        "type": "0x2",
        "to": token.to_checksum(None),
        "value": "0x0",
        "nonce": format!("{:#x}", b.nonce),
        "gas": format!("{:#x}", b.gas),
        "maxFeePerGas": format!("{:#x}", decimal("max_fee_per_gas", &b.max_fee_per_gas)?),
        "maxPriorityFeePerGas": format!("{:#x}", decimal("max_priority_fee_per_gas", &b.max_priority_fee_per_gas)?),
        "data": format!("0x{}", hex::encode(data)),
    });
    v.eth_sign_tx(&ctx, "eth.erc20_transfer", &id, b.index, tx)
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EosBody {
    #[serde(default)]
    index: u32,
    /// The chain id, 32 bytes hex.
    chain_id: String,
    /// The packed transaction, hex.
    tx: String,
    /// Packed context-free data, hex (usually none).
    #[serde(default)]
    context_free_data: Option<String>,
}

async fn eos_sign(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EosBody>,
) -> Result<impl IntoResponse, ApiError> {
    let chain_id: [u8; 32] = parse_hex("chain_id", &b.chain_id)?
        .try_into()
        .map_err(|_| ApiError::bad("invalid_chain_id", "chain_id is 32 bytes (64 hex digits)"))?;
    let tx = parse_hex("tx", &b.tx)?;
    let cfd = match b.context_free_data {
        Some(h) => parse_hex("context_free_data", &h)?,
        None => Vec::new(),
    };
    v.eos_sign(&ctx, &id, b.index, chain_id, &tx, &cfd).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PsbtBody {
    /// The PSBT, base64.
    psbt: String,
}

async fn btc_sign_psbt(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PsbtBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.btc_sign_psbt(&ctx, &id, &b.psbt).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedDataBody {
    #[serde(default)]
    index: u32,
    data: serde_json::Value,
}

async fn eth_sign_typed_data(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<TypedDataBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        v.eth_sign_typed_data(&ctx, &id, b.index, &b.data).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EthMessageBody {
    #[serde(default)]
    index: u32,
    /// UTF-8 text.
    message: Option<String>,
    /// Or bytes, hex.
    message_hex: Option<String>,
}

async fn eth_sign_message(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EthMessageBody>,
) -> Result<impl IntoResponse, ApiError> {
    let message = match (b.message, b.message_hex) {
        (Some(m), None) => m.into_bytes(),
        (None, Some(h)) => parse_hex("message_hex", &h)?,
        _ => {
            return Err(ApiError::bad(
                "invalid_parameters",
                "give exactly one of message and message_hex",
            ));
        }
    };
    Ok(Json(
        v.eth_sign_message(&ctx, &id, b.index, &message).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    digest: Option<String>,
    message: Option<String>,
}

async fn sign(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SignBody>,
) -> Result<impl IntoResponse, ApiError> {
    let input = match (b.digest, b.message) {
        (Some(d), None) => {
            let bytes = parse_hex("digest", &d)?;
            let digest: [u8; 32] = bytes.try_into().map_err(|_| {
                ApiError::bad(
                    "invalid_digest",
                    "digest must be exactly 32 bytes (64 hex digits)",
                )
            })?;
            SignInput::Digest(digest)
        }
        (None, Some(m)) => SignInput::Message(parse_hex("message", &m)?),
        _ => {
            return Err(ApiError::bad(
                "invalid_parameters",
                "give exactly one of digest or message",
            ));
        }
    };
    v.sign(&ctx, &id, &input).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorBody {
    name: String,
    roles: Vec<String>,
    domain: Option<String>,
}

async fn create_operator(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<OperatorBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.create_operator(&ctx, &b.name, &b.roles, b.domain.as_deref())
        .await
}

async fn list_operators(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.list_operators(&ctx)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    roles: Vec<String>,
    domain: Option<String>,
}

async fn change_roles(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<RolesBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.change_roles(&ctx, &name, &b.roles, b.domain.as_deref())
        .await
}

async fn disable_operator(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.disable_operator(&ctx, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterKeyBody {
    public_key: String,
}

async fn register_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<RegisterKeyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let key = parse_hex("public_key", &b.public_key)?;
    Ok(Json(v.register_approval_key(&ctx, &key).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    name: String,
    password: String,
    totp: String,
    new_password: Option<String>,
}

async fn login(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let password = Zeroizing::new(b.password);
    let new_password = b.new_password.map(Zeroizing::new);
    let creds = crate::operators::Credentials {
        name: &b.name,
        password: &password,
        totp: &b.totp,
        new_password: new_password.as_ref().map(|p| p.as_str()),
    };
    Ok(Json(v.login(&ctx, &creds).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemperatureBody {
    temperature: String,
    /// Hot only: demote to warm after this many seconds without a signature.
    idle_seconds: Option<u32>,
}

async fn rotate_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.rotate_key(&ctx, &id).await?))
}

async fn set_temperature(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<TemperatureBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.set_temperature(&ctx, &id, &b.temperature, b.idle_seconds)
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlgorithmsBody {
    /// Algorithm name -> `allowed`, `deprecated` or `disabled`.
    set: std::collections::BTreeMap<String, String>,
}

async fn set_domain_algorithms(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
    Json(body): Json<AlgorithmsBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.set_domain_algorithms(&ctx, &name, &body.set).await
}

async fn destroy_domain(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    v.destroy_domain(&ctx, &name).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    custodian_keys: Vec<String>,
    threshold: u8,
    #[serde(default)]
    remove: bool,
}

async fn export_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExportBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.export_key(&ctx, &id, &b.custodian_keys, b.threshold, b.remove)
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    bundle: serde_json::Value,
    shares: Vec<String>,
}

async fn import_key(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<ImportBody>,
) -> Result<impl IntoResponse, ApiError> {
    let shares: Vec<Zeroizing<String>> = b.shares.into_iter().map(Zeroizing::new).collect();
    Ok(Json(v.import_key(&ctx, b.bundle, &shares).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    status: Option<String>,
}

async fn list_requests(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query(q)?;
    Ok(Json(v.list_requests(&ctx, q.status.as_deref())?))
}

async fn show_request(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.show_request(&ctx, &id)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    signature: String,
}

async fn approve_request(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApproveBody>,
) -> Result<impl IntoResponse, ApiError> {
    let sig = parse_hex("signature", &b.signature)?;
    Ok(Json(v.approve(&ctx, &id, &sig).await?))
}

async fn reject_request(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.reject(&ctx, &id).await?))
}

async fn list_quorum(State(v): State<Arc<Vault>>, ctx: Ctx) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.list_quorum(&ctx)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuorumBody {
    operation: String,
    approvals: u8,
    domain: Option<String>,
}

async fn set_quorum(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<QuorumBody>,
) -> Result<impl IntoResponse, ApiError> {
    v.set_quorum(&ctx, &b.operation, b.approvals, b.domain.as_deref())
        .await
}

async fn export_audit(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    let body = v.export_audit(&ctx)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyConfigBody {
    config_sha256: String,
    signatures: crate::measure::Signatures,
}

async fn verify_config(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
    ApiJson(b): ApiJson<VerifyConfigBody>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.verify_config(
        &ctx,
        &b.config_sha256,
        &b.signatures,
    )?))
}

async fn acknowledge_clock(
    State(v): State<Arc<Vault>>,
    ctx: Ctx,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(v.acknowledge_clock(&ctx)?))
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}
