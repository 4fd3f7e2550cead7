//! `strongroom bench`: signing throughput of the raw libraries (one core), through the
//! keystore (one core, with verify-before-release), and end to end over HTTP against real dev
//! nodes with the durable audit log, from concurrent clients on the same machine: one node on
//! SQLite and, with `--postgres`, several nodes sharing one PostgreSQL database; then audit
//! appends alone (audited reads) on each.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use ed25519_dalek::Signer as _;
use serde_json::json;
use strongroom_core::record::{DomainRecord, VaultMeta};
use strongroom_core::{Algorithm, DomainId, KeyId, UnixMillis, VaultId};
use strongroom_crypto::{OsEntropy, Payload};
use strongroom_keystore::{Keystore, ShamirSeal};

use crate::client::CliError;
use crate::output::Output;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent HTTP clients for the end-to-end run.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Skip the end-to-end runs.
    #[arg(long)]
    no_http: bool,
    /// Also run several nodes on this PostgreSQL database (an empty one; it is initialised as
    /// a dev vault) and compare them with one node on SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Nodes on PostgreSQL.
    #[arg(long, default_value_t = 2, requires = "postgres")]
    nodes: usize,
    /// Validator keys for the remote-signer run (derived by EIP-2333).
    #[arg(long, default_value_t = 10_000)]
    validators: u32,
    /// Skip the remote-signer run.
    #[arg(long)]
    no_eth2: bool,
    /// EIP-2335 keystores (scrypt, the EIP's parameters) for the import run; 0 skips it.
    #[arg(long, default_value_t = 200)]
    keystores: usize,
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn timed(seconds: u64, mut f: impl FnMut(u64)) -> f64 {
    let end = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            f(n);
            n += 1;
        }
    }
    rate(n, start.elapsed())
}

fn digest(n: u64) -> [u8; 32] {
    let mut d = [0x5au8; 32];
    d[..8].copy_from_slice(&n.to_le_bytes());
    d
}

fn raw_secp256k1(seconds: u64) -> f64 {
    let ctx = secp256k1::Secp256k1::signing_only();
    let sk = secp256k1::SecretKey::from_slice(&[0x42; 32]).unwrap_or_else(|_| unreachable!());
    timed(seconds, |n| {
        std::hint::black_box(
            ctx.sign_ecdsa_recoverable(&secp256k1::Message::from_digest(digest(n)), &sk),
        );
    })
}

fn raw_secp256k1_verify(seconds: u64) -> f64 {
    let ctx = secp256k1::Secp256k1::new();
    let sk = secp256k1::SecretKey::from_slice(&[0x42; 32]).unwrap_or_else(|_| unreachable!());
    let pk = secp256k1::PublicKey::from_secret_key(&ctx, &sk);
    let msg = secp256k1::Message::from_digest(digest(0));
    let sig = ctx.sign_ecdsa(&msg, &sk);
    timed(seconds, |_| {
        std::hint::black_box(ctx.verify_ecdsa(&msg, &sig, &pk).is_ok());
    })
}

fn raw_ed25519_verify(seconds: u64) -> f64 {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let vk = sk.verifying_key();
    let sig = sk.sign(&digest(0));
    timed(seconds, |_| {
        std::hint::black_box(vk.verify_strict(&digest(0), &sig).is_ok());
    })
}

fn raw_ed25519(seconds: u64) -> f64 {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    timed(seconds, |n| {
        std::hint::black_box(sk.sign(&digest(n)));
    })
}

/// ML-DSA-65 with the key expanded once, deterministic, empty context (what strongroom signs).
fn raw_ml_dsa_65(seconds: u64) -> f64 {
    let sk = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&ml_dsa::Seed::from([0x42; 32]));
    timed(seconds, |n| {
        std::hint::black_box(sk.expanded_key().sign_deterministic(&digest(n), &[]).ok());
    })
}

fn raw_ml_dsa_65_verify(seconds: u64) -> f64 {
    let sk = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&ml_dsa::Seed::from([0x42; 32]));
    let vk = sk.expanded_key().verifying_key();
    let Ok(sig) = sk.expanded_key().sign_deterministic(&digest(0), &[]) else {
        return 0.0;
    };
    timed(seconds, |_| {
        std::hint::black_box(vk.verify_with_context(&digest(0), &[], &sig));
    })
}

/// Signing through the keystore (open key, sign, verify before release) on `threads` threads
/// at once; returns the total rate.
fn keystore_rate(alg: Algorithm, seconds: u64, threads: usize) -> Result<f64, CliError> {
    let err = |e: strongroom_keystore::Error| CliError::Server(format!("keystore: {e}"));
    let ks = Keystore::new(Arc::new(OsEntropy));
    let vault_id = VaultId::from_random([9; 16]);
    let init = ks
        .initialize(
            vault_id,
            ShamirSeal {
                shares: 1,
                threshold: 1,
            },
            None,
            UnixMillis(0),
            b"bench",
        )
        .map_err(err)?;
    ks.load(&VaultMeta {
        vault_id,
        created_at: UnixMillis(0),
        init: Some(init.record),
    })
    .map_err(err)?;
    ks.submit_share(&init.shares[0]).map_err(err)?;
    let name = "bench"
        .parse()
        .map_err(|_| CliError::Input("name".into()))?;
    let d: DomainRecord = ks
        .create_domain(
            DomainId::from_random([1; 16]),
            name,
            strongroom_core::temperature::Temperature::Hot,
            UnixMillis(0),
        )
        .map_err(err)?;
    let k = ks
        .create_key(&d, KeyId::from_random([2; 16]), alg, None, UnixMillis(0))
        .map_err(err)?;
    let (ks, d, k) = (&ks, &d, &k);
    let results: Vec<(f64, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut failed = false;
                    let r = timed(seconds, |n| {
                        let dg = digest(n);
                        let p = if matches!(alg, Algorithm::Ed25519 | Algorithm::MlDsa65) {
                            Payload::Message(&dg)
                        } else {
                            Payload::Digest(&dg)
                        };
                        failed |= ks.sign(d, k, p).is_err();
                    });
                    (r, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0.0, true)))
            .collect()
    });
    if results.iter().any(|(_, failed)| *failed) {
        return Err(CliError::Server(
            "keystore signing failed during the benchmark".into(),
        ));
    }
    Ok(results.iter().map(|(r, _)| r).sum())
}

struct Http {
    /// Requests answered with success.
    requests: u64,
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    records: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// What the clients ask for.
#[derive(Clone, Copy)]
enum Workload {
    /// Sign fresh digests (ECDSA) or messages (Ed25519) with one hot key.
    Sign(Algorithm),
    /// Read one key's record: no cryptography, but every read is an audit record, so this
    /// measures the audit log's appends under concurrency.
    Audited,
    /// Sign EIP-1559 transfers with a hot Ethereum wallet under a policy with a daily limit:
    /// parse, decode, policy, HD signing, and the spend counted with the audit record.
    EthTx,
}

/// The body each request carries.
#[derive(Clone, Copy)]
enum Body {
    None,
    Digest,
    Message,
    EthTx,
}

/// The destination of the benchmark's Ethereum transfers.
const BENCH_PAYEE: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

/// Dev nodes as child processes on free ports: one on SQLite, or several on one PostgreSQL
/// database (the first initialises it; the others get copies of its dev files).
struct Cluster {
    children: Vec<std::process::Child>,
    addrs: Vec<String>,
    token: String,
    postgres: Option<String>,
    sqlite: Option<std::path::PathBuf>,
    dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    fn start(postgres: Option<&str>, nodes: usize) -> Result<Self, CliError> {
        let exe =
            std::env::current_exe().map_err(|e| CliError::Server(format!("own path: {e}")))?;
        let mut c = Cluster {
            children: vec![],
            addrs: vec![],
            token: String::new(),
            postgres: postgres.map(str::to_owned),
            sqlite: None,
            dirs: vec![],
        };
        for n in 0..nodes {
            let dir =
                tempfile::tempdir().map_err(|e| CliError::Server(format!("temp dir: {e}")))?;
            if let Some(first) = c.dirs.first() {
                for f in ["dev-unseal-share", "dev-token"] {
                    std::fs::copy(first.path().join(f), dir.path().join(f))
                        .map_err(|e| CliError::Server(format!("copy {f}: {e}")))?;
                }
            }
            let mut cmd = Command::new(&exe);
            cmd.args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data"])
                .arg(dir.path());
            if let Some(url) = postgres {
                cmd.args(["--postgres", url]);
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| CliError::Server(format!("start node: {e}")))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| CliError::Server("no stdout".into()))?;
            c.children.push(child);
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                match lines.next() {
                    Some(Ok(l)) => {
                        if let Some(a) = l.split("listening on ").nth(1) {
                            break a.trim().to_owned();
                        }
                    }
                    _ => return Err(CliError::Server(format!("node {n} did not start"))),
                }
            };
            std::thread::spawn(move || for _ in lines {});
            c.addrs.push(addr);
            if n == 0 {
                c.token = std::fs::read_to_string(dir.path().join("dev-token"))
                    .map_err(|e| CliError::Server(format!("dev token: {e}")))?
                    .trim()
                    .to_owned();
                c.sqlite = postgres.is_none().then(|| dir.path().join("vault.db"));
            }
            c.dirs.push(dir);
        }
        Ok(c)
    }

    /// The length of the audit chain, read from the database as an auditor would.
    fn records(&self) -> Result<u64, CliError> {
        let err = |e: strongroom_storage::Error| CliError::Server(e.to_string());
        let tail = match (&self.postgres, &self.sqlite) {
            (Some(url), _) => strongroom_core::storage::Storage::audit_tail(
                &strongroom_storage::PgStore::open_existing(url).map_err(err)?,
            ),
            (None, Some(db)) => strongroom_core::storage::Storage::audit_tail(
                &strongroom_storage::SqliteStore::open_read_only(db).map_err(err)?,
            ),
            (None, None) => return Err(CliError::Server("no database".into())),
        };
        Ok(tail
            .map_err(|e| CliError::Server(e.to_string()))?
            .map_or(0, |(seq, _)| seq))
    }

    /// Drives `workload` from `clients` connections spread over the nodes; counts the audit
    /// records it added.
    fn measure(&self, w: Workload, seconds: u64, clients: usize) -> Result<Http, CliError> {
        let client = crate::client::Client::new(&self.addrs[0], Some(self.token.clone()))?;
        let key = match w {
            Workload::Sign(alg) => client.post(
                "/v1/keys",
                &json!({"algorithm": alg.as_str(), "label": "bench"}),
            )?,
            Workload::Audited => client.post(
                "/v1/keys",
                &json!({"algorithm": "ed25519", "label": "bench"}),
            )?,
            Workload::EthTx => {
                let w = client.post("/v1/wallets", &json!({"chain": "ethereum"}))?;
                client.put(
                    &format!("/v1/wallets/{}/policy", crate::field(&w, "id")),
                    &json!({"version": 1, "max_fee": "1000000000000000000", "lists": {"payees": [BENCH_PAYEE]}, "rules": [
                        {"name": "bench", "effect": "allow", "call": "transfer", "to": "@payees",
                         "max_amount": "1000000", "daily_limit": "1000000000000000000000000"}]}),
                )?;
                w
            }
        };
        let before = self.records()?;
        let mut r = drive(
            &self.addrs,
            &self.token,
            crate::field(&key, "id"),
            w,
            seconds,
            clients,
        )?;
        r.records = self.records()? - before;
        Ok(r)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 keep-alive connection per client, driven with hyper's connection API so that
/// the load generator spends as little of the shared CPU as possible.
async fn connect(authority: &str) -> Result<Sender, CliError> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| CliError::Server(format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| CliError::Server(format!("handshake: {e}")))?;
    tokio::spawn(conn);
    Ok(sender)
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>;

fn drive(
    addrs: &[String],
    token: &str,
    key: &str,
    w: Workload,
    seconds: u64,
    clients: usize,
) -> Result<Http, CliError> {
    let (path, field) = match w {
        Workload::Sign(Algorithm::Ed25519) => (format!("/v1/keys/{key}/sign"), Body::Message),
        Workload::Sign(_) => (format!("/v1/keys/{key}/sign"), Body::Digest),
        Workload::Audited => (format!("/v1/keys/{key}"), Body::None),
        Workload::EthTx => (format!("/v1/wallets/{key}/eth/sign-tx"), Body::EthTx),
    };
    let authorities: Vec<String> = addrs
        .iter()
        .map(|a| a.trim_start_matches("http://").to_owned())
        .collect();
    let auth = format!("Bearer {token}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Server(format!("runtime: {e}")))?;
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut tasks = vec![];
        for c in 0..clients {
            let authority = authorities[c % authorities.len()].clone();
            let sender = connect(&authority).await?;
            let (path, auth) = (path.clone(), auth.clone());
            tasks.push(tokio::spawn(client_loop(
                sender, path, auth, authority, field, c as u64, deadline,
            )));
        }
        collect(tasks, start).await
    })
}

/// The clients' latencies and failures, as one run since `start`.
async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, u64)>>,
    start: Instant,
) -> Result<Http, CliError> {
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.map_err(|e| CliError::Server(e.to_string()))?;
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    Ok(Http {
        requests: all.len() as u64,
        ops_per_sec: rate(all.len() as u64, elapsed),
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        errors,
        records: 0,
    })
}

async fn client_loop(
    sender: Sender,
    path: String,
    auth: String,
    authority: String,
    field: Body,
    client: u64,
    deadline: Instant,
) -> (Vec<Duration>, u64) {
    let mut n = client * 1_000_000_000;
    let next = move || {
        let (method, body) = match field {
            Body::Digest | Body::Message => (
                hyper::Method::POST,
                format!(
                    r#"{{"{}":"{}"}}"#,
                    if matches!(field, Body::Digest) {
                        "digest"
                    } else {
                        "message"
                    },
                    hex::encode(digest(n))
                ),
            ),
            Body::EthTx => (
                hyper::Method::POST,
                format!(
                    r#"{{"tx":{{"type":"0x2","chainId":"0x1","nonce":"{n:#x}","gas":"0x5208","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x3b9aca00","to":"{BENCH_PAYEE}","value":"0x1"}}}}"#
                ),
            ),
            Body::None => (hyper::Method::GET, String::new()),
        };
        n += 1;
        Some((method, path.clone(), body))
    };
    request_loop(sender, authority, Some(auth), next, deadline).await
}

/// Sends the requests `next` makes on one connection until `deadline` or until `next` has no
/// more (reconnecting after a failure): the latencies of the successful ones, and the number
/// that failed.
async fn request_loop(
    mut sender: Sender,
    authority: String,
    auth: Option<String>,
    mut next: impl FnMut() -> Option<(hyper::Method, String, String)>,
    deadline: Instant,
) -> (Vec<Duration>, u64) {
    use http_body_util::BodyExt as _;
    let mut lat = Vec::with_capacity(8192);
    let mut errors = 0u64;
    while Instant::now() < deadline {
        let Some((method, path, body)) = next() else {
            break;
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path.as_str())
            .header("host", authority.as_str())
            .header("accept", "application/json")
            .header("content-type", "application/json");
        if let Some(a) = &auth {
            req = req.header("authorization", a.as_str());
        }
        let Ok(req) = req.body(http_body_util::Full::new(hyper::body::Bytes::from(body))) else {
            errors += 1;
            continue;
        };
        let t = Instant::now();
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await;
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                match connect(&authority).await {
                    Ok(s) => sender = s,
                    Err(_) => break,
                }
            }
        }
    }
    (lat, errors)
}

fn http_line(label: &str, h: &Http, raw: Option<f64>) {
    let ratio = raw.map(|r| format!("  ({:.2}x raw)", h.ops_per_sec / r));
    println!(
        "  {label:<30}{:>10.0} op/s{}  p50 {:.2} ms  p99 {:.2} ms  errors {}  audit records {}",
        h.ops_per_sec,
        ratio.unwrap_or_default(),
        h.p50_ms,
        h.p99_ms,
        h.errors,
        h.records
    );
}

fn http_json(h: &Http, clients: usize, raw: Option<f64>) -> serde_json::Value {
    json!({"clients": clients, "requests": h.requests, "per_sec": h.ops_per_sec, "ratio": raw.map(|r| h.ops_per_sec / r),
        "p50_ms": h.p50_ms, "p99_ms": h.p99_ms, "errors": h.errors, "audit_records": h.records})
}

pub(crate) fn run(out: &Output, a: &BenchArgs) -> Result<(), CliError> {
    let sqlite = (!a.no_http).then(|| Cluster::start(None, 1)).transpose()?;
    let pg = match (&a.postgres, a.no_http) {
        (Some(url), false) => Some(Cluster::start(Some(url), a.nodes.max(1))?),
        _ => None,
    };
    let pg_label = format!("{} nodes, PostgreSQL", a.nodes);
    let mut report = vec![];
    for alg in [Algorithm::Secp256k1, Algorithm::Ed25519] {
        let (raw, raw_verify) = if alg == Algorithm::Ed25519 {
            (raw_ed25519(a.seconds), raw_ed25519_verify(a.seconds))
        } else {
            (raw_secp256k1(a.seconds), raw_secp256k1_verify(a.seconds))
        };

        let ks = keystore_rate(alg, a.seconds, 1)?;
        // Both cores doing nothing but keystore signing: the most any end-to-end path could
        // reach on this machine (the cores do not scale 2x under load).
        let ceiling = keystore_rate(alg, a.seconds, 2)?;
        let sign = Workload::Sign(alg);
        let http = sqlite
            .as_ref()
            .map(|c| c.measure(sign, a.seconds, a.clients))
            .transpose()?;
        let http_pg = pg
            .as_ref()
            .map(|c| c.measure(sign, a.seconds, a.clients))
            .transpose()?;
        if !out.json {
            println!("{alg}:");
            println!("  raw library, 1 core:          {raw:>10.0} sign/s");
            println!("  raw library verify, 1 core:   {raw_verify:>10.0} verify/s");
            println!(
                "  keystore (+verify), 1 core:   {ks:>10.0} sign/s  ({:.2}x raw)",
                ks / raw
            );
            println!(
                "  keystore, 2 threads (ceiling):{ceiling:>10.0} sign/s  ({:.2}x raw)",
                ceiling / raw
            );
            println!("  HTTP end to end, {} clients:", a.clients);
            if let Some(h) = &http {
                http_line("1 node, SQLite", h, Some(raw));
            }
            if let Some(h) = &http_pg {
                http_line(&pg_label, h, Some(raw));
            }
        }
        report.push(json!({
            "algorithm": alg.as_str(),
            "raw_sign_per_sec": raw,
            "raw_verify_per_sec": raw_verify,
            "keystore_two_threads_per_sec": ceiling,
            "keystore_sign_per_sec": ks,
            "keystore_ratio": ks / raw,
            "http": http.map(|h| http_json(&h, a.clients, Some(raw))),
            "http_postgres": http_pg.map(|h| json!({"nodes": a.nodes, "run": http_json(&h, a.clients, Some(raw))})),
        }));
    }
    // ML-DSA-65 through the keystore: the seed is expanded for every signature (only 32
    // bytes stay in memory, encrypted) and each signature is verified before release.
    {
        let alg = Algorithm::MlDsa65;
        let (raw, raw_verify) = (raw_ml_dsa_65(a.seconds), raw_ml_dsa_65_verify(a.seconds));
        let ks = keystore_rate(alg, a.seconds, 1)?;
        if !out.json {
            println!("{alg}:");
            println!("  raw library, 1 core:          {raw:>10.0} sign/s");
            println!("  raw library verify, 1 core:   {raw_verify:>10.0} verify/s");
            println!(
                "  keystore (+verify), 1 core:   {ks:>10.0} sign/s  ({:.2}x raw)",
                ks / raw
            );
        }
        report.push(json!({
            "algorithm": alg.as_str(),
            "raw_sign_per_sec": raw,
            "raw_verify_per_sec": raw_verify,
            "keystore_sign_per_sec": ks,
            "keystore_ratio": ks / raw,
        }));
    }
    // Ethereum transactions end to end, against raw secp256k1 signing.
    let eth = sqlite
        .as_ref()
        .map(|c| c.measure(Workload::EthTx, a.seconds, a.clients))
        .transpose()?;
    let eth_pg = pg
        .as_ref()
        .map(|c| c.measure(Workload::EthTx, a.seconds, a.clients))
        .transpose()?;
    if eth.is_some() || eth_pg.is_some() {
        let raw = raw_secp256k1(a.seconds);
        if !out.json {
            println!(
                "ethereum transactions (EIP-1559, policy with a daily limit, hot HD wallet), {} clients:",
                a.clients
            );
            println!("  raw secp256k1 sign, 1 core:   {raw:>10.0} sign/s");
            if let Some(h) = &eth {
                http_line("1 node, SQLite", h, Some(raw));
            }
            if let Some(h) = &eth_pg {
                http_line(&pg_label, h, Some(raw));
            }
        }
        report.push(json!({
            "ethereum_transactions": eth.map(|h| http_json(&h, a.clients, Some(raw))),
            "ethereum_transactions_postgres": eth_pg.map(|h| json!({"nodes": a.nodes, "run": http_json(&h, a.clients, Some(raw))})),
            "raw_sign_per_sec": raw,
        }));
    }
    // The audit log alone: every authenticated read is one durable audit record.
    let audited = sqlite
        .as_ref()
        .map(|c| c.measure(Workload::Audited, a.seconds, a.clients))
        .transpose()?;
    let audited_pg = pg
        .as_ref()
        .map(|c| c.measure(Workload::Audited, a.seconds, a.clients))
        .transpose()?;
    if !out.json && (audited.is_some() || audited_pg.is_some()) {
        println!("audit appends (audited key reads), {} clients:", a.clients);
        if let Some(h) = &audited {
            http_line("1 node, SQLite", h, None);
        }
        if let Some(h) = &audited_pg {
            http_line(&pg_label, h, None);
        }
    }
    if !a.no_http && !a.no_eth2 && a.validators > 0 {
        report.push(eth2_bench(out, a)?);
    }
    if !a.no_http && !a.no_eth2 && a.keystores > 0 {
        report.push(import_bench(out, a.keystores)?);
    }
    report.push(json!({
        "audit_appends": audited.map(|h| http_json(&h, a.clients, None)),
        "audit_appends_postgres": audited_pg.map(|h| json!({"nodes": a.nodes, "run": http_json(&h, a.clients, None)})),
    }));
    if out.json {
        println!("{}", serde_json::Value::Array(report));
    }
    Ok(())
}

// ---- Ethereum validators: attestations through the remote signer ------------------------

/// The chain the benchmark's attestations are for.
const BENCH_GVR: &str = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

fn raw_bls(seconds: u64, threads: usize) -> f64 {
    let dst = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
    let rates: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let sk = blst::min_pk::SecretKey::key_gen(&[0x42 + t as u8; 32], &[])
                        .unwrap_or_else(|_| unreachable!());
                    timed(seconds, |n| {
                        std::hint::black_box(sk.sign(&digest(n), dst, &[]));
                    })
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    rates.iter().sum()
}

/// A dev node with the eth2 listener: (child, API address, eth2 address).
fn eth2_node(
    data: &std::path::Path,
) -> Result<(std::process::Child, String, String, Duration), CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Server(format!("own path: {e}")))?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--eth2-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::Server(format!("start node: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| CliError::Server("no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut api = None;
    let eth2 = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.split("eth2 remote signer listening on ").nth(1) {
                    break a.trim().to_owned();
                }
                if let Some(a) = l.split("listening on ").nth(1) {
                    api = Some(a.trim().to_owned());
                }
            }
            _ => return Err(CliError::Server("the eth2 node did not start".into())),
        }
    };
    let up = started.elapsed();
    std::thread::spawn(move || for _ in lines {});
    let api = api.ok_or_else(|| CliError::Server("no API address".into()))?;
    Ok((child, api, eth2, up))
}

/// CPU seconds (user and system) process `pid` has used, where `/proc` tells.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The attestation request for validator round `n` (validator `n % count`, target epoch
/// `n / count + 1`): every validator's targets rise by one, so nothing is slashable.
fn attestation_body(n: u64, count: u64) -> String {
    let epoch = n / count + 1;
    format!(
        r#"{{"type":"ATTESTATION","fork_info":{{"fork":{{"previous_version":"0x04000000","current_version":"0x05000000","epoch":"1"}},"genesis_validators_root":"{BENCH_GVR}"}},"attestation":{{"slot":"{}","index":"0","beacon_block_root":"0x{}","source":{{"epoch":"{}","root":"0x{}"}},"target":{{"epoch":"{epoch}","root":"0x{}"}}}}}}"#,
        epoch * 32,
        hex::encode(digest(n)),
        epoch - 1,
        "11".repeat(32),
        "22".repeat(32)
    )
}

async fn eth2_client_loop(
    sender: Sender,
    authority: String,
    keys: Arc<Vec<String>>,
    rounds: std::ops::Range<u64>,
    client: u64,
    clients: u64,
    deadline: Instant,
) -> (Vec<Duration>, u64) {
    let count = keys.len() as u64;
    let mut n = rounds.start + client;
    let next = move || {
        if n >= rounds.end {
            return None;
        }
        let key = &keys[(n % count) as usize];
        let request = (
            hyper::Method::POST,
            format!("/api/v1/eth2/sign/{key}"),
            attestation_body(n, count),
        );
        n += clients;
        Some(request)
    };
    request_loop(sender, authority, None, next, deadline).await
}

/// Attestation rounds `rounds` (round `n`: validator `n % count`, whose target epoch is
/// `n / count + 1`) from `clients` connections, until done or `seconds` pass.
fn drive_eth2(
    authority: &str,
    keys: Vec<String>,
    rounds: std::ops::Range<u64>,
    seconds: u64,
    clients: usize,
) -> Result<Http, CliError> {
    let keys = Arc::new(keys);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Server(format!("runtime: {e}")))?;
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let start = Instant::now();
        let mut tasks = vec![];
        for c in 0..clients {
            let sender = connect(authority).await?;
            tasks.push(tokio::spawn(eth2_client_loop(
                sender,
                authority.to_owned(),
                Arc::clone(&keys),
                rounds.clone(),
                c as u64,
                clients as u64,
                deadline,
            )));
        }
        collect(tasks, start).await
    })
}

/// One attestation (round `n`) on a fresh connection: milliseconds until it is signed.
fn one_duty(authority: &str, key: &str, n: u64) -> Result<f64, CliError> {
    use http_body_util::BodyExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Server(format!("runtime: {e}")))?;
    rt.block_on(async {
        let t = Instant::now();
        let mut sender = connect(authority).await?;
        let req = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(format!("/api/v1/eth2/sign/{key}"))
            .header("host", authority)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(
                attestation_body(n, 1),
            )))
            .map_err(|e| CliError::Server(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CliError::Server(e.to_string()))?;
        let ok = resp.status().is_success();
        let _ = resp.into_body().collect().await;
        if !ok {
            return Err(CliError::Server(
                "the first duty after restart failed".into(),
            ));
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    })
}

/// Attestations end to end through the remote signer with slashing protection, for
/// `validators` keys, against raw blst signing; EIP-2333 derivation rate; restart time.
fn eth2_bench(out: &Output, a: &BenchArgs) -> Result<serde_json::Value, CliError> {
    let raw1 = raw_bls(a.seconds, 1);
    let raw2 = raw_bls(a.seconds, 2);
    let dir = tempfile::tempdir().map_err(|e| CliError::Server(format!("temp dir: {e}")))?;
    let (child, api, eth2, _) = eth2_node(dir.path())?;
    let token = std::fs::read_to_string(dir.path().join("dev-token"))
        .map_err(|e| CliError::Server(format!("dev token: {e}")))?
        .trim()
        .to_owned();
    let client = crate::client::Client::new(&api, Some(token))?;
    let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let t = Instant::now();
    let mut made = 0u32;
    while made < a.validators {
        let count = (a.validators - made).min(10_000);
        client.post(
            "/v1/eth2/derive",
            &json!({"mnemonic": words, "start": made, "count": count}),
        )?;
        made += count;
    }
    let derive_rate = f64::from(a.validators) / t.elapsed().as_secs_f64();
    let keys_client = crate::client::Client::new(&format!("http://{eth2}"), None)?;
    let keys: Vec<String> = serde_json::from_value(keys_client.get("/api/v1/eth2/publicKeys")?)
        .map_err(|e| CliError::Server(format!("public keys: {e}")))?;
    // First, one attestation by every validator (each key is opened on its first duty, as on
    // a node's first epoch); then the steady state, every validator attesting once an epoch.
    let count = keys.len() as u64;
    let first = drive_eth2(&eth2, keys.clone(), 0..count, 3600, a.clients)?;
    let cpu_before = cpu_seconds(child.id());
    let started = Instant::now();
    let run = drive_eth2(&eth2, keys.clone(), count..u64::MAX, a.seconds, a.clients)?;
    let server_cores = cpu_seconds(child.id())
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / started.elapsed().as_secs_f64());
    stop(child);
    // Restart with every validator key: until the listener answers, then until the first
    // duty is signed (which builds the public-key index).
    let (child, _, eth2, up) = eth2_node(dir.path())?;
    let first_ms = one_duty(&eth2, &keys[0], u64::from(a.validators) * 1_000)?;
    stop(child);
    if !out.json {
        println!(
            "ethereum attestations (remote signer, slashing protection, {} validators), {} clients:",
            a.validators, a.clients
        );
        println!("  raw blst sign, 1 core:        {raw1:>10.0} sign/s");
        println!("  raw blst sign, 2 threads:     {raw2:>10.0} sign/s");
        http_line("first epoch (keys opened)", &first, Some(raw2));
        http_line("steady state", &run, Some(raw2));
        if let Some(c) = server_cores {
            println!("  node CPU during the run:      {c:>10.2} cores");
        }
        println!("  EIP-2333 derivation:          {derive_rate:>10.0} keys/s");
        println!(
            "  restart with {} keys:        {:>10.0} ms to listen, first duty {first_ms:.0} ms later",
            a.validators,
            up.as_secs_f64() * 1000.0
        );
    }
    Ok(json!({
        "eth2_attestations": http_json(&run, a.clients, Some(raw2)),
        "eth2_attestations_first_epoch": http_json(&first, a.clients, Some(raw2)),
        "validators": a.validators,
        "raw_bls_1_core": raw1, "raw_bls_2_threads": raw2,
        "node_cpu_cores": server_cores,
        "eip2333_keys_per_sec": derive_rate,
        "restart_listen_ms": up.as_secs_f64() * 1000.0,
        "restart_first_duty_ms": first_ms,
    }))
}

// ---- Ethereum validators: EIP-2335 keystore import ---------------------------------------

/// `n` keystores of distinct random validator keys under `password` (scrypt), made on every
/// core.
fn make_keystores(n: usize, password: &str) -> Result<Vec<serde_json::Value>, CliError> {
    use strongroom_core::EntropySource as _;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut made: Vec<(usize, Result<Vec<u8>, CliError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break out;
                        }
                        let one = || -> Result<Vec<u8>, CliError> {
                            let fail = |e: &dyn std::fmt::Display| {
                                CliError::Server(format!("keystore fixture: {e}"))
                            };
                            // Below 2^248, so below the group order.
                            let mut secret = [0u8; 32];
                            OsEntropy.fill(&mut secret[1..]).map_err(|e| fail(&e))?;
                            let key = strongroom_crypto::SigningKey::from_secret_bytes(
                                Algorithm::Bls12381,
                                &secret,
                            )
                            .map_err(|e| fail(&e))?;
                            let mut random = [0u8; strongroom_crypto::EIP2335_RANDOM_LEN];
                            OsEntropy.fill(&mut random).map_err(|e| fail(&e))?;
                            strongroom_crypto::encrypt_eip2335(
                                &key,
                                password,
                                strongroom_crypto::Eip2335Kdf::Scrypt,
                                &format!("m/12381/3600/{i}/0/0"),
                                &random,
                            )
                            .map_err(|e| fail(&e))
                        };
                        out.push((i, one()));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    made.sort_by_key(|(i, _)| *i);
    made.into_iter()
        .map(|(_, ks)| {
            serde_json::from_slice(&ks?)
                .map_err(|e| CliError::Server(format!("keystore fixture: {e}")))
        })
        .collect()
}

/// Keystores imported end to end (over HTTP, in the CLI's batches of 16, decrypted on every
/// core inside the node) against the raw KDF: one keystore decrypted at a time on one core,
/// times the cores.
fn import_bench(out: &Output, n: usize) -> Result<serde_json::Value, CliError> {
    let password = "bench keystore password";
    let keystores = make_keystores(n, password)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let sample = keystores.len().min(6);
    let t = Instant::now();
    for ks in &keystores[..sample] {
        let bytes = serde_json::to_vec(ks).map_err(|e| CliError::Server(e.to_string()))?;
        strongroom_crypto::decrypt_eip2335(&bytes, password)
            .map_err(|e| CliError::Server(format!("raw decrypt: {e}")))?;
    }
    let raw1 = sample as f64 / t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().map_err(|e| CliError::Server(format!("temp dir: {e}")))?;
    let (child, api, _, _) = eth2_node(dir.path())?;
    let token = std::fs::read_to_string(dir.path().join("dev-token"))
        .map_err(|e| CliError::Server(format!("dev token: {e}")))?
        .trim()
        .to_owned();
    let client = crate::client::Client::new(&api, Some(token))?;
    let t = Instant::now();
    let mut created = 0;
    for (b, batch) in keystores.chunks(16).enumerate() {
        let items: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, ks)| json!([format!("keystore-{}.json", b * 16 + i), ks]))
            .collect();
        let v = client.post(
            "/v1/eth2/import",
            &json!({"password": password, "keystores": items}),
        )?;
        created += v["created"].as_array().map_or(0, Vec::len);
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    stop(child);
    if created != n {
        return Err(CliError::Server(format!(
            "imported {created} of {n} keystores"
        )));
    }
    let ideal = raw1 * cores as f64;
    if !out.json {
        println!("EIP-2335 keystore import (scrypt N=2^18, {n} keystores, batches of 16):");
        println!("  raw KDF + decrypt, 1 core:    {raw1:>10.2} keystores/s");
        println!(
            "  imported, {cores} cores:          {rate:>10.2} keystores/s ({:.2}x of {cores} x raw)",
            rate / ideal
        );
    }
    Ok(json!({
        "eip2335_import": {"keystores": n, "kdf": "scrypt", "raw_1_core_per_sec": raw1,
                           "cores": cores, "imported_per_sec": rate, "ratio_to_cores_x_raw": rate / ideal},
    }))
}
