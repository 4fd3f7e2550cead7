//! Starting and stopping a node: open the data directory, bring up the keystore and the audit
//! writer, bootstrap dev mode, serve HTTP until a signal, then flush the audit log.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strongroom_core::record::Outcome;
use strongroom_core::storage::{Change, Storage};
use strongroom_core::{Clock, EntropySource, Principal, SystemClock};
use strongroom_crypto::HealthCheckedEntropy;
use strongroom_keystore::Keystore;
use strongroom_storage::{DataDir, Opened};
use zeroize::Zeroizing;

use crate::service::{DEFAULT_DOMAIN, Vault};
use crate::writer::Writer;
use crate::{ServeError, limiter, token::Tokens};

const DEV_SHARE: &str = "dev-unseal-share";
const DEV_TOKEN: &str = "dev-token";
/// In the data directory after a tamper response (see `Vault::tamper`).
const TAMPER_MARKER: &str = "tampered";
/// How often the process checks for an attached tracer.
const TRACER_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// Consecutive failed tracer checks that count as a tracer.
const TRACER_CHECK_FAILURES: u32 = 5;

/// How to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Dev mode: initialised, unsealed, with a `default` domain, state in `data_dir`.
    pub dev: bool,
    /// Listen address (loopback only without `tls`).
    pub listen: SocketAddr,
    /// TLS for the API.
    pub tls: Option<crate::config::TlsConfig>,
    /// Where vault state lives (SQLite in the data directory unless PostgreSQL is given).
    pub storage: crate::config::StorageConfig,
    /// Data directory; dev mode makes a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
    /// How the root key is protected (`[seal]`).
    pub seal: crate::config::SealConfig,
    /// The Ethereum remote-signing listener (`[eth2]`).
    pub eth2: Option<crate::config::Eth2Config>,
    /// The tamper response (`[tamper]`).
    pub tamper: crate::config::TamperConfig,
    /// The configuration file as measured (production); dev mode has none and is exempt from
    /// signed configuration.
    pub config_file: Option<crate::measure::ConfigFile>,
    /// Authenticated time sources (`[time]`); without them the system clock is used, with
    /// rollback detection only.
    pub time: Option<crate::config::TimeConfig>,
    /// Least privilege (`[sandbox]`), applied by [`ServeOptions::confine`].
    pub sandbox: crate::config::SandboxConfig,
    /// Domain key rotation pace (`[rotation]`).
    pub rotation: crate::config::RotationConfig,
}

impl ServeOptions {
    /// The data directory: the one given, or in dev mode a fresh temporary one.
    pub(crate) fn data_dir_or_temp(&self) -> Result<PathBuf, ServeError> {
        match (&self.data_dir, self.dev) {
            (Some(d), _) => Ok(d.clone()),
            (None, true) => Ok(tempfile::Builder::new()
                .prefix("strongroom-dev-")
                .tempdir()
                .map_err(|e| ServeError::Io(format!("create temporary directory: {e}")))?
                .keep()),
            (None, false) => Err(ServeError::Config("a data directory is required".into())),
        }
    }
}

/// What a started node tells its operator.
#[derive(Debug)]
pub struct Started {
    /// The bound address (the real port when asked for port 0).
    pub addr: SocketAddr,
    /// The data directory in use.
    pub data_dir: PathBuf,
    /// Whether the API speaks TLS (`https://`).
    pub tls: bool,
    /// The eth2 listener's bound address, when there is one.
    pub eth2_addr: Option<SocketAddr>,
    /// Dev mode's root token (also in `DATA_DIR/dev-token`).
    pub dev_token: Option<Zeroizing<String>>,
}

fn write_secret_file(path: &Path, contents: &str) -> Result<(), ServeError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ServeError::Io(format!("create {}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ServeError::Io(format!("write {}: {e}", path.display())))
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, ServeError> {
    std::fs::read_to_string(path)
        .map(|s| Zeroizing::new(s.trim().to_owned()))
        .map_err(|_| {
            ServeError::Config(format!(
                "{} is missing: this data directory was not created by `serve --dev`",
                path.display()
            ))
        })
}

/// Dev bootstrap: initialise 1-of-1 on first start (keeping the share in the directory),
/// unseal, and create the `default` domain. Every step is audited like any request.
async fn dev_bootstrap(vault: &Vault, dir: &Path) -> Result<Zeroizing<String>, ServeError> {
    let share_path = dir.join(DEV_SHARE);
    let token_path = dir.join(DEV_TOKEN);
    if !vault.keystore.status().initialized {
        let ctx = vault
            .system_ctx(Principal::Anonymous)
            .map_err(ServeError::Api)?;
        let init = vault
            .init(&ctx, 1, 1, None, true)
            .await
            .map_err(ServeError::Api)?;
        let share = init_share(&init)?;
        write_secret_file(&share_path, &share)?;
        write_secret_file(&token_path, init_token(&init))?;
    }
    let share = read_secret_file(&share_path)?;
    let token = read_secret_file(&token_path)?;
    if vault.keystore.status().sealed {
        let ctx = vault
            .system_ctx(Principal::Anonymous)
            .map_err(ServeError::Api)?;
        let outcome = vault.unseal(&ctx, &share);
        let event = match &outcome {
            Ok(_) => ctx.event("operator.unseal", Outcome::Granted, None),
            Err(e) => ctx.event("operator.unseal", e.outcome(), Some(e.code())),
        };
        vault
            .writer
            .submit(vec![], event)
            .await
            .map_err(|_| ServeError::Api(crate::ApiError::AuditUnavailable))?;
        outcome.map_err(ServeError::Api)?;
    }
    let root = vault
        .tokens
        .authenticate(
            vault.store.as_ref(),
            &vault.keystore,
            &vault.vault_id,
            &token,
            vault.clock.now(),
            || true,
        )
        .map_err(ServeError::Api)?;
    let default = DEFAULT_DOMAIN
        .parse()
        .map_err(|_| ServeError::Io("bad default domain name".into()))?;
    if vault
        .store
        .domain_by_name(&default)
        .map_err(|e| ServeError::Api(e.into()))?
        .is_none()
    {
        let ctx = vault.system_ctx(root).map_err(ServeError::Api)?;
        vault
            .create_domain(&ctx, DEFAULT_DOMAIN, Some("hot"))
            .await
            .map_err(ServeError::Api)?;
    }
    Ok(token)
}

fn init_share(init: &crate::service::InitView) -> Result<Zeroizing<String>, ServeError> {
    init.first_share()
        .ok_or_else(|| ServeError::Io("initialisation returned no share".into()))
}

fn init_token(init: &crate::service::InitView) -> &str {
    init.root_token()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs a node until SIGINT/SIGTERM. `on_ready` is called once the listener is bound.
///
/// # Errors
/// Configuration, storage, bootstrap or listener failures.
pub async fn serve(opts: ServeOptions, on_ready: impl FnOnce(&Started)) -> Result<(), ServeError> {
    crate::config::check_listen(opts.listen, opts.tls.is_some())?;
    let pkcs11 = opts.seal.pkcs11()?;
    if opts.dev && pkcs11.is_some() {
        return Err(ServeError::Config(
            "dev mode keeps its share in the data directory; it takes no [seal]".into(),
        ));
    }
    // Certificates are checked before anything else is touched.
    let tls = opts.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let tamper_signal = match opts.tamper.signal.as_str() {
        "usr1" => Some(tokio::signal::unix::SignalKind::user_defined1()),
        "usr2" => Some(tokio::signal::unix::SignalKind::user_defined2()),
        "off" => None,
        other => {
            return Err(ServeError::Config(format!(
                "[tamper] signal = {other:?}: usr1, usr2 or off"
            )));
        }
    };
    let eth2 = match &opts.eth2 {
        None => None,
        Some(e) => {
            let name: strongroom_core::id::DomainName = e.domain.parse().map_err(|_| {
                ServeError::Config(format!("[eth2] domain = {:?}: not a domain name", e.domain))
            })?;
            // Consensus clients send no credential: a client certificate, or loopback only.
            let eth2_tls = match opts.tls.as_ref().filter(|t| t.eth2_client_ca.is_some()) {
                Some(t) => Some(crate::tls::acceptor(&crate::config::TlsConfig {
                    client_ca: t.eth2_client_ca.clone(),
                    ..t.clone()
                })?),
                None if e.listen.ip().is_loopback() => None,
                None => {
                    return Err(ServeError::Config(format!(
                        "[eth2] listen = {}: without [tls] eth2_client_ca the eth2 listener binds only to loopback",
                        e.listen
                    )));
                }
            };
            let chain = crate::eth2_api::Chain {
                genesis_fork_version: e.fork_version()?,
                genesis_validators_root: e.validators_root()?,
            };
            Some((e.listen, name, chain, eth2_tls))
        }
    };
    let data_dir = opts.data_dir_or_temp()?;
    // Before any key exists: no core dumps, not dumpable (no ptrace or /proc/PID/mem for
    // anyone without CAP_SYS_PTRACE), and the lock limit raised for the key slabs.
    let hardening = strongroom_memguard::harden_process();
    if !hardening.non_dumpable || !hardening.no_core_files {
        tracing::warn!(?hardening, "process hardening incomplete");
    }
    // The vault's own clock when time sources are named: voted once before anything reads
    // the time, then kept anchored by a poller (below).
    let trusted_time = match &opts.time {
        None => None,
        Some(cfg) => {
            let t = Arc::new(crate::trusted_time::TrustedTime::new(cfg)?);
            if !t.poll_once().await {
                tracing::warn!(
                    "no majority of the [time] sources answered: time-dependent operations fail closed until they do"
                );
            }
            Some(t)
        }
    };
    let clock: Arc<dyn Clock> = match &trusted_time {
        Some(t) => t.clone(),
        None => Arc::new(SystemClock),
    };
    // Health-tested raw inputs (the OS, and RDSEED where present) through HMAC_DRBG.
    let rng = Arc::new(HealthCheckedEntropy::system());
    let entropy: Arc<dyn EntropySource> = rng.clone();

    let dir = DataDir::open(&data_dir)?;
    // Drawn before it is needed so that an entropy failure stops the start instead of
    // producing a predictable vault id.
    let mut vid = [0u8; 16];
    entropy
        .fill(&mut vid)
        .map_err(|_| ServeError::Io("entropy source failed".into()))?;
    let store: Arc<dyn Storage> = match &opts.storage.postgres {
        None => match dir.open_store(|| strongroom_core::VaultId::from_random(vid), clock.now())? {
            Opened::Existing(s) | Opened::Fresh(s) => Arc::new(s),
        },
        Some(url) => {
            dir.expect_external_database()?;
            let (s, _) = strongroom_storage::PgStore::open(
                url,
                || strongroom_core::VaultId::from_random(vid),
                clock.now(),
            )?;
            Arc::new(s)
        }
    };
    let meta = store.vault().map_err(strongroom_storage::Error::from)?;
    // The clock must not read earlier than the newest audit record (see TimeGuard).
    let newest_audited = match store
        .audit_tail()
        .map_err(strongroom_storage::Error::from)?
    {
        Some((seq, _)) => store
            .audit_records(seq, 1)
            .map_err(strongroom_storage::Error::from)?
            .first()
            .map_or(meta.created_at, |r| r.body.time()),
        None => meta.created_at,
    };
    let keystore = Arc::new(Keystore::new(Arc::clone(&entropy)));
    keystore
        .load(&meta)
        .map_err(|e| ServeError::Api(e.into()))?;
    // Layered encryption: private columns are sealed with keys that exist only while the
    // keystore is unsealed.
    store
        .use_field_cipher(keystore.clone())
        .map_err(strongroom_storage::Error::from)?;
    // Before anything is written: is the database older than the newest head this node
    // signed (a restored old copy would undo slashing records and spent limits)?
    // The newest head is anchored in the PKCS#11 token too, outside the data directory: a
    // copy of the directory put back whole (database and head file) is caught by it.
    let seal = crate::node_seal::NodeSeal::new(pkcs11);
    let anchored = crate::rollback::token_heads(&seal, &entropy, &meta.vault_id);
    let mut rollback = crate::rollback::detect(store.as_ref(), &meta, &dir.head_path(), &anchored)?;
    // A restored vault is held the same way until security officers accept its older state.
    if rollback.is_none()
        && let Some(marker) = crate::rollback::RestoreMarker::read(dir.path())
    {
        rollback = Some(marker.finding().ok_or_else(|| {
            ServeError::Config("the restore marker in the data directory is malformed".into())
        })?);
    }
    let (writer, _thread) = Writer::start(
        Arc::clone(&store),
        Arc::clone(&keystore),
        Arc::clone(&clock),
        &dir.head_path(),
    )?;
    // Over a rolled-back database the head file keeps its high-water mark until security
    // officers accept the rollback: no batch signs a head.
    if rollback.is_some() {
        writer.hold_heads();
    }
    // Power-on self-tests, before anything can unseal: a failure leaves the node answering
    // health and status only.
    let self_test = strongroom_crypto::self_test();
    if strongroom_crypto::DANGER_TEST_BUILD {
        tracing::warn!(
            "this binary was built for tests (feature danger-break-self-test): never deploy it"
        );
    }
    let vault = Arc::new(Vault {
        store,
        keystore,
        writer,
        clock,
        entropy,
        tokens: Tokens::default(),
        limiter: limiter::Limiter::default(),
        vault_id: meta.vault_id,
        keys: crate::service::KeyCache::default(),
        dev: opts.dev,
        time: strongroom_core::TimeGuard::new(
            newest_audited,
            strongroom_core::TimeGuard::DEFAULT_SKEW_MS,
        ),
        last_use: crate::idle::LastUse::default(),
        policies: crate::policy::PolicyCache::default(),
        eth_addresses: crate::eth::AddressCache::default(),
        seal,
        eth2_genesis: eth2
            .as_ref()
            .and_then(|(_, _, chain, _)| chain.genesis_validators_root),
        kdf_gate: Arc::new(tokio::sync::Semaphore::new(1)),
        rekey: tokio::sync::Mutex::default(),
        rotation_wake: Arc::new(tokio::sync::Notify::new()),
        self_test,
        rng,
        entropy_reported: std::sync::atomic::AtomicBool::new(false),
        tamper_marker: dir.path().join(TAMPER_MARKER),
        data_dir: dir.path().to_owned(),
        hardening,
        config: opts
            .config_file
            .clone()
            .map(|f| crate::measure::Admission::new(f, dir.path())),
        binary_sha256: Arc::new(std::sync::OnceLock::new()),
        trusted_time: trusted_time.clone(),
        rollback: std::sync::Mutex::new(rollback.clone()),
    });
    // Other nodes on the same database: forget what they change (see docs/architecture.md).
    let weak = Arc::downgrade(&vault);
    vault
        .store
        .watch(Box::new(move |change| {
            let Some(v) = weak.upgrade() else { return };
            match change {
                Change::Key(id) => v.keys.forget(id),
                Change::Token(id) => v.tokens.forget(id),
                _ => {
                    // Perhaps a seal migration or a rekey on another node: adopted before
                    // the caches go, so that no domain row is read again under a root the
                    // vault no longer has.
                    if let Ok(meta) = v.store.vault()
                        && let Some(init) = meta.init
                    {
                        let _ = v.keystore.adopt_seal(&init.seal_config);
                    }
                    // A rotation ended elsewhere: its retired version leaves memory here too.
                    v.keystore.forget_domain_keys();
                    v.keys.clear();
                    v.tokens.clear();
                }
            }
        }))
        .map_err(|e| ServeError::Api(e.into()))?;
    let lifecycle = |op: &'static str| -> Result<_, ServeError> {
        let ctx = vault
            .system_ctx(Principal::Anonymous)
            .map_err(ServeError::Api)?;
        Ok(ctx.event(op, Outcome::Granted, None))
    };
    vault
        .writer
        .submit(vec![], lifecycle("server.start")?)
        .await
        .map_err(|_| ServeError::Api(crate::ApiError::AuditUnavailable))?;
    vault.remove_used_acceptance();
    if let Some(finding) = &rollback {
        tracing::error!(
            what = finding.what,
            "the database is older than the audit head this node signed: it will not unseal"
        );
        let ctx = vault
            .system_ctx(Principal::System)
            .map_err(ServeError::Api)?;
        ctx.tag(|t| t.detail = Some(serde_json::json!({"rollback": finding}).to_string()));
        vault
            .writer
            .submit(
                vec![],
                ctx.event(
                    "rollback.detected",
                    Outcome::Failed,
                    Some("database_rolled_back"),
                ),
            )
            .await
            .map_err(|_| ServeError::Api(crate::ApiError::AuditUnavailable))?;
    }
    let tested = {
        let ctx = vault
            .system_ctx(Principal::System)
            .map_err(ServeError::Api)?;
        ctx.tag(|t| {
            t.detail = Some(
                serde_json::json!({"tests": strongroom_crypto::SELF_TESTS,
                    "failed": vault.self_test.err()})
                .to_string(),
            );
        });
        match vault.self_test {
            Ok(()) => ctx.event("selftest.power_on", Outcome::Granted, None),
            Err(test) => {
                tracing::error!(
                    test,
                    "a power-on self-test failed: this node serves no cryptographic operation"
                );
                ctx.event(
                    "selftest.power_on",
                    Outcome::Failed,
                    Some("self_test_failed"),
                )
            }
        }
    };
    vault
        .writer
        .submit(vec![], tested)
        .await
        .map_err(|_| ServeError::Api(crate::ApiError::AuditUnavailable))?;
    // Measured start: the configuration's hash now, the binary's when it is read (hundreds
    // of megabytes for a debug build: off the start path).
    {
        let v = Arc::clone(&vault);
        tokio::task::spawn_blocking(move || {
            let binary = crate::measure::binary_sha256();
            let sandbox = crate::least_privilege::current();
            let ctx = v.fixed_ctx(Principal::System);
            ctx.tag(|t| {
                t.detail = Some(
                    serde_json::json!({
                        "version": env!("CARGO_PKG_VERSION"),
                        "binary_sha256": binary.as_ref().ok().map(hex::encode),
                        "config_sha256": v.config.as_ref().map(|a| hex::encode(a.file.sha256)),
                        "dev": v.config.is_none(),
                        "sandbox": {
                            "files": sandbox.files,
                            "landlock_abi": sandbox.landlock_abi,
                            "syscalls": sandbox.syscalls,
                            "missing": sandbox.missing,
                        },
                    })
                    .to_string(),
                );
            });
            let event = match &binary {
                Ok(_) => ctx.event("node.start", Outcome::Granted, None),
                Err(_) => ctx.event("node.start", Outcome::Failed, Some("binary_unreadable")),
            };
            v.writer.submit_detached(event);
            // Shown once the record is on its way to the audit log.
            if let Ok(h) = &binary {
                let _ = v.binary_sha256.set(hex::encode(h));
            }
        });
    }
    // The time sources, asked every poll; a change of trust is audited.
    if let Some(t) = trusted_time {
        let v = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut was = t.trusted();
            if !was {
                v.audit_time(false);
            }
            loop {
                tokio::time::sleep(t.poll).await;
                let now = t.poll_once().await;
                if now != was {
                    v.audit_time(now);
                    was = now;
                }
            }
        });
    }
    // A vault sealed by a PKCS#11 token unseals itself here, or stays sealed and says why.
    vault.auto_unseal();
    if vault.seal.key_label().is_some() {
        tokio::spawn(crate::rollback::anchor_heads(Arc::downgrade(&vault)));
    }
    // Domain key rotations in progress (started here or elsewhere, before a crash or not).
    tokio::spawn(crate::rotation::run(Arc::downgrade(&vault), opts.rotation));

    // The tamper signal: zeroize and seal at once, then audit.
    if let Some(kind) = tamper_signal {
        let mut sig = tokio::signal::unix::signal(kind)
            .map_err(|e| ServeError::Io(format!("tamper signal: {e}")))?;
        let v = Arc::clone(&vault);
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                v.tamper_by_node("signal", None).await;
            }
        });
    }
    // A tracer attached to any thread despite the non-dumpable flag (only CAP_SYS_PTRACE
    // can): the same response, again whenever the vault is unsealed while it stays attached;
    // a check that keeps failing counts as one.
    {
        let v = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TRACER_POLL);
            let mut traced = None;
            let mut failures = 0u32;
            loop {
                tick.tick().await;
                let (now, reason) = match strongroom_memguard::tracer_pid() {
                    Ok(now) => {
                        failures = 0;
                        (now, now.map(|pid| format!("tracer attached: pid {pid}")))
                    }
                    Err(e) => {
                        failures += 1;
                        let reason = (failures == TRACER_CHECK_FAILURES)
                            .then(|| format!("the tracer check keeps failing: {e}"));
                        (traced, reason)
                    }
                };
                let respond = match (now, &reason) {
                    (_, Some(_)) if failures == TRACER_CHECK_FAILURES => true,
                    (Some(_), Some(_)) => now != traced || !v.keystore.status().sealed,
                    _ => false,
                };
                if respond {
                    v.tamper_by_node("tracer", reason.as_deref()).await;
                }
                traced = now;
            }
        });
    }

    let dev_token = if opts.dev && vault.self_test.is_ok() && !vault.rollback_pending() {
        Some(dev_bootstrap(&vault, dir.path()).await?)
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Io(format!("bind {}: {e}", opts.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Io(format!("local address: {e}")))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (eth2_addr, eth2_task) = match eth2 {
        None => (None, None),
        Some((listen, name, chain, eth2_tls)) => {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| ServeError::Io(format!("bind {listen}: {e}")))?;
            let bound = l
                .local_addr()
                .map_err(|e| ServeError::Io(format!("local address: {e}")))?;
            let mut stop = stop_rx.clone();
            let task = tokio::spawn(crate::eth2_api::serve(
                Arc::clone(&vault),
                chain,
                name,
                l,
                eth2_tls,
                async move {
                    let _ = stop.changed().await;
                },
            ));
            (Some(bound), Some(task))
        }
    };
    on_ready(&Started {
        addr,
        data_dir: dir.path().to_owned(),
        tls: tls.is_some(),
        eth2_addr,
        dev_token,
    });

    let flusher = {
        let vault = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(limiter::INTERVAL);
            loop {
                tick.tick().await;
                for event in vault.limiter.drain() {
                    vault.writer.submit_detached(event);
                }
            }
        })
    };
    let sweeper = {
        let vault = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::idle::SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = vault.sweep_idle_keys().await {
                    tracing::warn!(error = %e.code(), "idle-key sweep failed; retrying");
                }
            }
        })
    };
    let app = crate::http::router(Arc::clone(&vault));
    crate::listener::run(listener, tls, app, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(t) = eth2_task {
        let _ = t.await;
    }
    flusher.abort();
    sweeper.abort();
    for event in vault.limiter.drain() {
        vault.writer.submit_detached(event);
    }
    // The writer commits in order, so once this record is durable everything before it is.
    vault
        .writer
        .submit(vec![], lifecycle("server.stop")?)
        .await
        .map_err(|_| ServeError::Api(crate::ApiError::AuditUnavailable))?;
    Ok(())
}
