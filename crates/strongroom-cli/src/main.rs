//! `strongroom`: runs a node (`serve`), administers and uses one over its HTTP API, and
//! verifies an audit log offline (`audit verify`).
//!
//! The client commands hold no key material: they send requests and print answers. Exit codes:
//! 0 success, 1 refused or failed, 2 usage error.
#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool prints.

mod backup;
mod bench;
mod btc;
mod client;
mod config;
mod custodian;
mod eos;
mod eth;
mod eth2;
mod output;
mod policy;
mod qr;
mod rollback;
mod verify;
mod wallet;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::{CliError, Client};

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "A custody vault for digital-asset keys"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Server address.
    #[arg(
        long,
        global = true,
        env = "STRONGROOM_ADDR",
        default_value = "http://127.0.0.1:8200"
    )]
    addr: String,
    /// For operations that need approvals: how long the request stays open, e.g. `1h`, `3d`
    /// (default 24 hours; 1 minute to 30 days).
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    expires: Option<std::time::Duration>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Serve(ServeArgs),
    /// Show seal status.
    Status,
    /// Initialise, unseal and seal the vault.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Manage cryptographic domains.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage application tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Bitcoin signing by HD wallets (PSBTs).
    #[command(subcommand)]
    Btc(btc::BtcCmd),
    /// EOS / Antelope signing by HD wallets.
    #[command(subcommand)]
    Eos(eos::EosCmd),
    /// Ethereum signing by HD wallets (transactions, ERC-20 transfers, messages).
    #[command(subcommand)]
    Eth(eth::EthCmd),
    /// Ethereum validator (BLS) keys.
    #[command(subcommand)]
    Eth2(eth2::Eth2Cmd),
    /// Ethereum validators' slashing protection: EIP-3076 interchange import and export.
    #[command(subcommand)]
    Slashing(eth2::SlashingCmd),
    /// Wallet policies: what a wallet may sign, decided on the decoded transaction.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// HD wallets: Bitcoin, Ethereum and EOS accounts from one BIP-32 seed.
    #[command(subcommand)]
    Wallet(wallet::WalletCmd),
    /// Log in as an operator (password and one-time code) and print a session token.
    Login(LoginArgs),
    /// Manage your approval key.
    #[command(subcommand)]
    ApprovalKey(ApprovalKeyCmd),
    /// Requests awaiting approvals.
    #[command(subcommand)]
    Request(RequestCmd),
    /// Quorum rules.
    #[command(subcommand)]
    Quorum(QuorumCmd),
    /// Security officers' signatures of a node's configuration file.
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Security officers' acceptance of a database rollback (a deliberate restore)
    #[command(subcommand)]
    Rollback(rollback::RollbackCmd),
    /// Encrypted backups of the whole vault: create, verify, restore.
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// Sign with a key.
    Sign(SignArgs),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Measure signing throughput: raw library, keystore, and end to end over HTTP.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Dev mode: initialised, unsealed, `default` domain, plain HTTP on loopback.
    #[arg(long, conflicts_with = "config")]
    dev: bool,
    /// Production configuration file (TOML: listen, data_dir). Starts sealed.
    #[arg(long, required_unless_present = "dev")]
    config: Option<PathBuf>,
    /// Data directory (dev mode; default: a fresh temporary directory).
    #[arg(long, requires = "dev")]
    data: Option<PathBuf>,
    /// Listen address (dev mode).
    #[arg(long, requires = "dev", default_value = "127.0.0.1:8200")]
    listen: SocketAddr,
    /// Dev mode on a PostgreSQL database instead of SQLite (for trials and `bench
    /// --postgres`); a second dev node joins with a copy of the first one's dev files.
    #[arg(long, requires = "dev")]
    postgres: Option<String>,
    /// Dev mode: serve the Ethereum remote-signing API on this (loopback) address, over plain
    /// HTTP (production: the `[eth2]` section of the configuration).
    #[arg(long, requires = "dev")]
    eth2_listen: Option<SocketAddr>,
    /// The domain the eth2 listener serves (dev mode; default `default`).
    #[arg(long, requires = "eth2_listen")]
    eth2_domain: Option<String>,
    /// Dev mode: a further path the confined node may read (production: `[sandbox] read`).
    #[arg(long, requires = "dev")]
    sandbox_read: Vec<PathBuf>,
    /// Dev mode: a further path the confined node may write beneath (production:
    /// `[sandbox] write`).
    #[arg(long, requires = "dev")]
    sandbox_write: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Initialise a fresh vault: generates the root key inside the server and prints the
    /// shares (once) and the root token.
    Init {
        /// Number of shares to issue.
        #[arg(long)]
        shares: u8,
        /// Number of shares needed to unseal.
        #[arg(long)]
        threshold: u8,
        /// A custodian's age recipient (`age1...`), or a file holding one such as the output
        /// of `age-keygen -y`; repeat once per share. Each share is then encrypted to its
        /// custodian and written to --share-dir instead of printed. Give one per share:
        /// `--custodian-keys A B C` or `--custodian-key A --custodian-key B ...`.
        #[arg(long = "custodian-keys", alias = "custodian-key", num_args = 1..)]
        custodian_keys: Vec<String>,
        /// Where to write the encrypted shares (`strongroom-share-N.age`).
        #[arg(long, default_value = ".")]
        share_dir: PathBuf,
    },
    /// Submit one unseal share (hidden prompt, --share-file, or standard input).
    Unseal {
        /// File holding the share string.
        #[arg(long, conflicts_with = "reset")]
        share_file: Option<PathBuf>,
        /// Discard the shares submitted so far (abandon this unseal attempt).
        #[arg(long)]
        reset: bool,
    },
    /// Seal: wipe all key material from the server's memory.
    Seal,
    /// Tamper response (security officer or custodian, no quorum): zeroize every key at once
    /// and seal; automatic (PKCS#11) unseals are held until the shares are presented.
    Tamper {
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Protect the root key as this node's `[seal]` says (needs approval: seal.migrate):
    /// from Shamir shares to the PKCS#11 token, back to shares alone, or to another token
    /// key. The unseal shares stay valid either way. Run on an unsealed node configured for
    /// the target.
    SealMigrate,
    /// Rekey: a new root key and new unseal shares (also the way to change their count and
    /// threshold). `--shares N --threshold M` starts it (security officer); then holders of
    /// the current shares each run `operator rekey` with their share until the threshold is
    /// met, which prints (or, with custodian keys, writes) the new shares once; then holders
    /// of the new shares each submit theirs the same way. The last one commits the rekey:
    /// from then on only the new shares unseal. Until then the current shares stay valid.
    Rekey {
        /// Start: number of new shares.
        #[arg(long, requires = "threshold", conflicts_with_all = ["status", "cancel", "share_file"])]
        shares: Option<u8>,
        /// Start: number of new shares needed to unseal.
        #[arg(long, requires = "shares")]
        threshold: Option<u8>,
        /// Start: a custodian's age recipient (or a file holding one), one per new share;
        /// the new shares are then encrypted to them and written to --share-dir.
        #[arg(long = "custodian-keys", alias = "custodian-key", num_args = 1.., requires = "shares")]
        custodian_keys: Vec<String>,
        /// Where the share that completes authorisation writes encrypted new shares.
        #[arg(long, default_value = ".")]
        share_dir: PathBuf,
        /// Submit: the share (current or new) in this file (else a hidden prompt or stdin).
        #[arg(long)]
        share_file: Option<PathBuf>,
        /// Show the rekey in progress.
        #[arg(long, conflicts_with = "cancel")]
        status: bool,
        /// Abandon the rekey in progress (security officer).
        #[arg(long)]
        cancel: bool,
    },
    /// Add an operator (a person). Prints their one-time password and TOTP enrolment URI.
    Add {
        /// Login name: 1-64 characters from a-z, 0-9, '.', '_' and '-'.
        #[arg(long)]
        name: String,
        /// Role: security-officer, custodian, approver or auditor (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Restrict the operator to one domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Accept the wall clock after it moved backwards (security officers).
    AcknowledgeClock,
    /// List operators.
    List,
    /// Disable an operator: their sessions stop working at once.
    Disable {
        /// Login name.
        name: String,
    },
    /// Set an operator's roles and domain (replacing both; needs approval: operator.roles).
    /// The operator concerned never approves it; the last vault-wide security officer stays.
    Roles {
        /// Login name.
        name: String,
        /// Role: security-officer, custodian, approver or auditor (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Confine the operator to one domain (omit: all domains).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Register your approval key (log in first; approvers and security officers).
    RegisterKey {
        /// The public key file written by `approval-key generate` (F.pub).
        #[arg(long)]
        public_key: PathBuf,
    },
}

#[derive(Subcommand)]
enum ApprovalKeyCmd {
    /// Generate an Ed25519 approval key on this machine: the private key goes to F (mode 0600),
    /// the public key to F.pub. The private key never leaves this machine.
    Generate {
        /// Private key file to create.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct LoginArgs {
    /// Login name.
    #[arg(long)]
    name: String,
    /// File holding the password (otherwise asked for, hidden).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// The current one-time code (otherwise asked for).
    #[arg(long)]
    totp: Option<String>,
    /// First login: file holding the new password that replaces the enrolment one.
    #[arg(long)]
    new_password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DomainCmd {
    /// Create a domain.
    Create {
        /// Name: 1-64 characters from a-z, 0-9, '-' and '_'.
        name: String,
        /// Temperature new keys start at: cold, warm (default) or hot.
        #[arg(long)]
        new_keys: Option<String>,
    },
    /// List domains.
    List,
    /// Show a domain: its master key version and any rotation's progress.
    Show {
        /// Domain name.
        name: String,
    },
    /// Rotate a domain's master key (security officer): a new version seals every new key at
    /// once; existing keys are re-wrapped in the background while they keep signing, and the
    /// old version is erased when none is left under it (keys offline in export bundles wait
    /// for their import). Progress: `domain show`.
    Rotate {
        /// Domain name.
        name: String,
    },
    /// Destroy a domain: its master key is erased, so every key in it is gone for good
    /// (needs approval: domain.destroy).
    Destroy {
        /// Domain name.
        name: String,
    },
    /// Allow, deprecate or disable algorithms in a domain (needs approval:
    /// domain.algorithms). Deprecated: no new keys, existing keys still sign (audited with a
    /// warning). Disabled: no new keys and no signatures. Unnamed algorithms keep their state.
    Algorithms {
        /// Domain name.
        name: String,
        /// Algorithm to allow again (secp256k1, ed25519, p256, bip32-seed, bls12-381,
        /// ml-dsa-65). Disabling secp256k1 also stops HD wallets, whose addresses sign with it.
        #[arg(long)]
        allow: Vec<String>,
        /// Algorithm to deprecate.
        #[arg(long)]
        deprecate: Vec<String>,
        /// Algorithm to disable.
        #[arg(long)]
        disable: Vec<String>,
    },
    /// Set how many approvals an operation needs in this domain. Operations: key.destroy,
    /// key.warm, key.sign, key.export, policy.set, domain.algorithms (the others are
    /// vault-wide: `quorum set`).
    Quorum {
        /// Domain name.
        domain: String,
        /// Operation: key.destroy, key.warm, key.sign, key.export, policy.set or
        /// domain.algorithms.
        #[arg(long)]
        operation: String,
        /// Approvals needed (1-16), from people other than the requester.
        #[arg(long)]
        approvals: u8,
    },
}

#[derive(Subcommand)]
enum QuorumCmd {
    /// Set the vault-wide number of approvals for an operation. Operations: domain.create,
    /// domain.destroy, operator.add, operator.roles, quorum.set, key.destroy, key.warm, key.sign, key.export, seal.migrate, policy.set,
    /// domain.algorithms, backup.create,
    /// config.change (security officers' signatures of a changed node configuration: `config
    /// sign`), rollback.accept (security officers' signatures accepting a rolled-back
    /// database: `rollback sign`). Without a rule, one approval is needed.
    Set {
        /// Operation.
        #[arg(long)]
        operation: String,
        /// Approvals needed (1-16), from people other than the requester.
        #[arg(long)]
        approvals: u8,
    },
    /// List quorum rules.
    List,
}

#[derive(Subcommand)]
enum RequestCmd {
    /// List requests (default: pending ones).
    List {
        /// pending, executed, failed, rejected, expired or all.
        #[arg(long, default_value = "pending")]
        status: String,
    },
    /// Show a request: what will happen, its hash and its approvals.
    Show {
        /// Request id.
        id: String,
        /// For an executed key.export: write the bundle to this file (and each custodian's
        /// encrypted share beside it, FILE.share-N.age).
        #[arg(long)]
        bundle_out: Option<PathBuf>,
    },
    /// Approve a request with your approval key (the hash is recomputed and checked first).
    Approve {
        /// Request id.
        id: String,
        /// Your approval key file (from `approval-key generate`).
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Reject a request.
    Reject {
        /// Request id.
        id: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Issue an application token confined to one domain.
    Create {
        /// Domain (default: `default`).
        #[arg(long)]
        domain: Option<String>,
        /// `sign` (an application token: signs with the domain's keys) or `keymanager` (the
        /// Ethereum Keymanager API only: list, import and delete validator keystores).
        #[arg(long, default_value = "sign")]
        scope: String,
        /// Lifetime, e.g. `30m`, `12h`, `7d`.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `token create`).
        id: String,
    },
}

#[derive(Subcommand)]
enum KeyPolicyCmd {
    /// Set it (needs approval: policy.set). FILE: `{"version": 1, "tokens": [ID...],
    /// "max_per_hour": N, "max_per_day": N}`, every field but `version` optional.
    Set {
        /// Key id.
        id: String,
        /// The policy document.
        #[arg(long)]
        file: PathBuf,
    },
    /// Show it.
    Show {
        /// Key id.
        id: String,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create a key.
    Create {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
        /// secp256k1, ed25519 or p256.
        #[arg(long)]
        algorithm: String,
        /// A label (immutable).
        #[arg(long)]
        label: Option<String>,
    },
    /// List a domain's keys.
    List {
        /// Domain (default: `default`, or the token's own domain).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show a key.
    Show {
        /// Key id.
        id: String,
        /// Print the public key as PEM (SubjectPublicKeyInfo), for OpenSSL.
        #[arg(long)]
        pem: bool,
    },
    /// Export a cold key as a cold-storage bundle: its sealed blob, encrypted again under a key
    /// split among custodians' age keys (needs approval: key.export). Writes FILE and, beside
    /// it, each custodian's encrypted share (FILE.share-N.age).
    Export {
        /// Key id.
        id: String,
        /// Custodians' age recipients (age1...) or files holding one, one per share.
        #[arg(long = "custodian-keys", num_args = 1.., required = true)]
        custodian_keys: Vec<String>,
        /// How many custodians are needed to import it back.
        #[arg(long)]
        threshold: u8,
        /// Take the key offline in the same step (its secret then lives only in the bundle).
        #[arg(long)]
        remove: bool,
        /// Bundle file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Bring an offline key back from its bundle and custodians' decrypted shares (one per
    /// --share-file, or one per line on standard input). It returns cold.
    Import {
        /// The bundle file written by `key export`.
        #[arg(long)]
        bundle: PathBuf,
        /// A decrypted share (`age -d -i KEY FILE.share-N.age`); repeat.
        #[arg(long = "share-file")]
        share_files: Vec<PathBuf>,
    },
    /// Destroy a key (its sealed secret is erased).
    Destroy {
        /// Key id.
        id: String,
    },
    /// Rotate a key: a new key of the same algorithm and label, one version up, naming this
    /// one as its predecessor; this one turns cold (kept for verifying its signatures; warm it
    /// again only by a quorum, or `key destroy` it). Not for wallets or validator keys.
    Rotate {
        /// Key id.
        id: String,
    },
    /// A plain key's policy: which application tokens may sign with it, and at what rate.
    #[command(subcommand)]
    Policy(KeyPolicyCmd),
    /// Set a key's temperature: colder at once (security officer or custodian), warmer only
    /// with a quorum.
    Temperature {
        /// Key id.
        id: String,
        /// cold, warm or hot.
        temperature: String,
        /// Hot only: demote to warm after this long without a signature, e.g. `30m`
        /// (1 minute to 30 days). A tighter limit is a step colder, a looser one warmer.
        #[arg(long, value_parser = humantime::parse_duration)]
        idle: Option<std::time::Duration>,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["digest", "message", "message_file"])))]
struct SignArgs {
    /// Key id.
    #[arg(long)]
    key: String,
    /// 32-byte digest in hex (ECDSA keys).
    #[arg(long)]
    digest: Option<String>,
    /// Message in hex (Ed25519 and ML-DSA-65 keys).
    #[arg(long)]
    message: Option<String>,
    /// File holding the raw message bytes (Ed25519 and ML-DSA-65 keys).
    #[arg(long)]
    message_file: Option<PathBuf>,
    /// Write the DER signature (ECDSA) or raw signature (Ed25519) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Export the audit log, its signed heads and the approval evidence (auditors).
    Export {
        /// File to write (newline-delimited JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify the audit chain offline, without the server. Exits 1 on any tampering.
    Verify {
        /// The node's data directory (SQLite).
        #[arg(long, required_unless_present_any = ["file", "config"], conflicts_with_all = ["file", "config"])]
        data: Option<PathBuf>,
        /// A node's configuration file: its database (SQLite or PostgreSQL) and head file.
        #[arg(long, conflicts_with = "file")]
        config: Option<PathBuf>,
        /// An export written by `audit export` (also checks every approval).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Expected audit public key (hex), as printed by `operator init`.
        #[arg(long)]
        audit_key: Option<String>,
    },
}

fn main() -> ExitCode {
    // One TLS provider for the whole process (the client and `serve` alike). It fails only if
    // one is installed already, which is then just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if matches!(e, CliError::Reported) {
                // Already printed.
            } else if let (CliError::Pending(v), true) = (&e, json) {
                println!("{v}");
            } else if json {
                println!(
                    "{}",
                    json!({"error": {"code": e.code(), "message": e.to_string()}})
                );
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let out = output::Output { json: cli.json };
    let client = || {
        Client::new(&cli.addr, std::env::var("STRONGROOM_TOKEN").ok())
            .map(|c| c.expiring(cli.expires))
    };
    match cli.command {
        Command::Serve(a) => serve(a),
        Command::Status => out.status(&client()?.get("/v1/sys/status")?),
        Command::Operator(OperatorCmd::Init {
            shares,
            threshold,
            custodian_keys,
            share_dir,
        }) if !custodian_keys.is_empty() => {
            let recipients = custodian_keys
                .iter()
                .map(|k| custodian::recipient(k))
                .collect::<Result<Vec<_>, _>>()?;
            // Check the destination before the server creates shares that could be lost.
            let paths = custodian::share_paths(&share_dir, recipients.len())?;
            let v = client()?.post(
                "/v1/sys/init",
                &json!({"shares": shares, "threshold": threshold, "custodian_keys": recipients}),
            )?;
            if out.json {
                return out.raw(&v);
            }
            custodian::write_shares(&v, &paths)?;
            out.init(&v)
        }
        Command::Operator(OperatorCmd::Init {
            shares, threshold, ..
        }) => out.init(&client()?.post(
            "/v1/sys/init",
            &json!({"shares": shares, "threshold": threshold}),
        )?),
        Command::Operator(OperatorCmd::Unseal { reset: true, .. }) => {
            out.status(&client()?.post("/v1/sys/unseal", &json!({"reset": true}))?)
        }
        Command::Operator(OperatorCmd::Unseal { share_file, .. }) => {
            let share = read_share(share_file)?;
            out.status(&client()?.post("/v1/sys/unseal", &json!({"share": share.as_str()}))?)
        }
        Command::Operator(OperatorCmd::Tamper { reason }) => {
            out.status(&client()?.post("/v1/sys/tamper", &json!({"reason": reason}))?)
        }
        Command::Operator(OperatorCmd::Seal) => {
            out.status(&client()?.post("/v1/sys/seal", &json!({}))?)
        }
        Command::Operator(OperatorCmd::Rekey {
            shares: Some(shares),
            threshold: Some(threshold),
            custodian_keys,
            ..
        }) => {
            let recipients = custodian_keys
                .iter()
                .map(|k| custodian::recipient(k))
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = json!({"shares": shares, "threshold": threshold});
            if !recipients.is_empty() {
                body["custodian_keys"] = json!(recipients);
            }
            out.rekey(&client()?.post("/v1/sys/rekey", &body)?)
        }
        Command::Operator(OperatorCmd::Rekey { status: true, .. }) => {
            out.rekey(&client()?.get("/v1/sys/rekey")?)
        }
        Command::Operator(OperatorCmd::Rekey { cancel: true, .. }) => {
            out.object(&client()?.delete("/v1/sys/rekey")?)
        }
        Command::Operator(OperatorCmd::Rekey {
            share_file,
            share_dir,
            ..
        }) => {
            let client = client()?;
            let now = client.get("/v1/sys/rekey")?;
            let nonce = field(&now, "nonce");
            // Checked before the share goes in: new shares that cannot be written are lost.
            let paths = custodian::share_paths_named(
                &share_dir,
                &format!("strongroom-rekey-{}", &nonce[..nonce.len().min(8)]),
                usize::from(
                    now["shares"]
                        .as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .unwrap_or(0),
                ),
            )?;
            let share = read_share(share_file)?;
            let v = client.post(
                "/v1/sys/rekey/share",
                &json!({"nonce": nonce, "share": share.as_str()}),
            )?;
            if v["encrypted_shares"].is_array() {
                custodian::write_shares(&v, &paths)?;
            }
            out.rekey(&v)
        }
        Command::Operator(OperatorCmd::SealMigrate) => {
            out.object(&client()?.post("/v1/sys/seal/migrate", &json!({}))?)
        }
        Command::Operator(OperatorCmd::Add {
            name,
            roles,
            domain,
        }) => {
            let body = json!({"name": name, "roles": roles, "domain": domain});
            let enrolled = client()?.post("/v1/operators", &body)?;
            if !out.json {
                println!(
                    "Operator added. Hand these to {} privately; they are shown once.",
                    field(&enrolled, "name")
                );
                println!(
                    "initial password (change at first login): {}",
                    field(&enrolled, "password")
                );
                println!(
                    "TOTP enrolment URI (add to an authenticator app): {}",
                    field(&enrolled, "otpauth_uri")
                );
                println!(
                    "or scan:\n{}",
                    qr::terminal_qr(field(&enrolled, "otpauth_uri"))?
                );
                return Ok(());
            }
            out.object(&enrolled)
        }
        Command::Operator(OperatorCmd::AcknowledgeClock) => {
            out.object(&client()?.post("/v1/sys/clock/acknowledge", &json!({}))?)
        }
        Command::Operator(OperatorCmd::List) => out.list(
            &client()?.get("/v1/operators")?,
            &["name", "roles", "domain", "disabled", "locked_until"],
        ),
        Command::Operator(OperatorCmd::Disable { name }) => out.object(&client()?.post(
            &format!("/v1/operators/{}/disable", client::path(&name)),
            &json!({}),
        )?),
        Command::Operator(OperatorCmd::Roles {
            name,
            roles,
            domain,
        }) => out.object(&client()?.post(
            &format!("/v1/operators/{}/roles", client::path(&name)),
            &json!({"roles": roles, "domain": domain}),
        )?),
        Command::Login(a) => login(&client()?, &out, a),
        Command::Domain(DomainCmd::Quorum {
            domain,
            operation,
            approvals,
        }) => out.object(&client()?.post(
            "/v1/quorum",
            &json!({"operation": operation, "approvals": approvals, "domain": domain}),
        )?),
        Command::Quorum(QuorumCmd::Set {
            operation,
            approvals,
        }) => out.object(&client()?.post(
            "/v1/quorum",
            &json!({"operation": operation, "approvals": approvals}),
        )?),
        Command::Quorum(QuorumCmd::List) => out.list(
            &client()?.get("/v1/quorum")?,
            &["operation", "domain_id", "approvals"],
        ),
        Command::Request(RequestCmd::List { status }) => {
            let path = if status == "all" {
                "/v1/requests".to_owned()
            } else {
                format!("/v1/requests?status={}", client::path(&status))
            };
            out.list(
                &client()?.get(&path)?,
                &["request_id", "status", "operation", "description"],
            )
        }
        Command::Request(RequestCmd::Show { id, bundle_out }) => {
            let shown = client()?.get(&format!("/v1/requests/{}", client::path(&id)))?;
            if let Some(path) = bundle_out {
                let bundle = &shown["result"]["bundle"];
                if !bundle.is_object() {
                    return Err(CliError::Input(
                        "this request carries no bundle (not an executed key.export)".into(),
                    ));
                }
                let paths = custodian::bundle_paths(
                    &path,
                    bundle["shares"].as_array().map_or(0, Vec::len),
                )?;
                custodian::write_bundle(bundle, &paths)?;
            }
            out.object(&shown)
        }
        Command::Request(RequestCmd::Approve { id, key_file }) => {
            approve(&client()?, &out, &id, &key_file)
        }
        Command::Request(RequestCmd::Reject { id }) => out.object(&client()?.post(
            &format!("/v1/requests/{}/reject", client::path(&id)),
            &json!({}),
        )?),
        Command::ApprovalKey(ApprovalKeyCmd::Generate { out: path }) => {
            generate_approval_key(&out, &path)
        }
        Command::Operator(OperatorCmd::RegisterKey { public_key }) => {
            let hex = std::fs::read_to_string(&public_key).map_err(|e| {
                CliError::Input(format!("cannot read {}: {e}", public_key.display()))
            })?;
            out.object(&client()?.post(
                "/v1/operators/me/approval-key",
                &json!({"public_key": hex.trim()}),
            )?)
        }
        Command::Domain(DomainCmd::Create { name, new_keys }) => out
            .object(&client()?.post("/v1/domains", &json!({"name": name, "new_keys": new_keys}))?),
        Command::Domain(DomainCmd::Destroy { name }) => {
            out.object(&client()?.delete(&format!("/v1/domains/{}", client::path(&name)))?)
        }
        Command::Domain(DomainCmd::Algorithms {
            name,
            allow,
            deprecate,
            disable,
        }) => {
            let mut set = serde_json::Map::new();
            for (names, state) in [
                (allow, "allowed"),
                (deprecate, "deprecated"),
                (disable, "disabled"),
            ] {
                for a in names {
                    if set.insert(a.clone(), state.into()).is_some() {
                        return Err(CliError::Input(format!("{a} is named twice")));
                    }
                }
            }
            out.object(&client()?.post(
                &format!("/v1/domains/{}/algorithms", client::path(&name)),
                &json!({ "set": set }),
            )?)
        }
        Command::Domain(DomainCmd::Show { name }) => {
            out.domain(&client()?.get(&format!("/v1/domains/{}", client::path(&name)))?)
        }
        Command::Domain(DomainCmd::Rotate { name }) => out.domain(&client()?.post(
            &format!("/v1/domains/{}/rotate", client::path(&name)),
            &json!({}),
        )?),
        Command::Domain(DomainCmd::List) => out.list(
            &client()?.get("/v1/domains")?,
            &["name", "id", "state", "created_at"],
        ),
        Command::Token(TokenCmd::Create { domain, ttl, scope }) => {
            let body = json!({"domain": domain, "ttl_seconds": ttl.map(|d| d.as_secs()),
                              "scope": scope});
            out.object(&client()?.post("/v1/tokens", &body)?)
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            out.object(&client()?.delete(&format!("/v1/tokens/{}", client::path(&id)))?)
        }
        Command::Key(KeyCmd::Create {
            domain,
            algorithm,
            label,
        }) => out.object(&client()?.post(
            "/v1/keys",
            &json!({"domain": domain, "algorithm": algorithm, "label": label}),
        )?),
        Command::Key(KeyCmd::List { domain }) => {
            let path = match domain {
                Some(d) => format!("/v1/keys?domain={}", client::path(&d)),
                None => "/v1/keys".to_owned(),
            };
            out.list(
                &client()?.get(&path)?,
                &["id", "algorithm", "state", "label", "public_key"],
            )
        }
        Command::Key(KeyCmd::Show { id, pem }) => {
            let key = client()?.get(&format!("/v1/keys/{}", client::path(&id)))?;
            if pem { out.pem(&key) } else { out.object(&key) }
        }
        Command::Key(KeyCmd::Policy(KeyPolicyCmd::Set { id, file })) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
            let doc: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Input(format!("{} is not JSON: {e}", file.display())))?;
            out.object(&client()?.put(&format!("/v1/keys/{}/policy", client::path(&id)), &doc)?)
        }
        Command::Key(KeyCmd::Policy(KeyPolicyCmd::Show { id })) => {
            out.object(&client()?.get(&format!("/v1/keys/{}/policy", client::path(&id)))?)
        }
        Command::Key(KeyCmd::Temperature {
            id,
            temperature,
            idle,
        }) => out.object(&client()?.post(
            &format!("/v1/keys/{}/temperature", client::path(&id)),
            &json!({"temperature": temperature, "idle_seconds": idle.map(|d| d.as_secs())}),
        )?),
        Command::Key(KeyCmd::Export {
            id,
            custodian_keys,
            threshold,
            remove,
            out: path,
        }) => {
            let recipients = custodian_keys
                .iter()
                .map(|k| custodian::recipient(k))
                .collect::<Result<Vec<_>, _>>()?;
            // Check the destination before the server makes a bundle that could be lost.
            let paths = custodian::bundle_paths(&path, recipients.len())?;
            let body =
                json!({"custodian_keys": recipients, "threshold": threshold, "remove": remove});
            let done = client()?.post(&format!("/v1/keys/{}/export", client::path(&id)), &body)?;
            custodian::write_bundle(&done["bundle"], &paths)?;
            out.object(&done["key"])
        }
        Command::Key(KeyCmd::Import {
            bundle,
            share_files,
        }) => {
            let text = std::fs::read_to_string(&bundle)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", bundle.display())))?;
            let bundle: Value = serde_json::from_str(&text)
                .map_err(|_| CliError::Input(format!("{} is not JSON", bundle.display())))?;
            let shares = custodian::read_shares(&share_files)?;
            let shares: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            out.object(&client()?.post(
                "/v1/keys/import",
                &json!({"bundle": bundle, "shares": shares}),
            )?)
        }
        Command::Key(KeyCmd::Rotate { id }) => out.object(&client()?.post(
            &format!("/v1/keys/{}/rotate", client::path(&id)),
            &json!({}),
        )?),
        Command::Key(KeyCmd::Destroy { id }) => {
            out.object(&client()?.delete(&format!("/v1/keys/{}", client::path(&id)))?)
        }
        Command::Sign(a) => sign(&client()?, &out, a),
        Command::Wallet(cmd) => wallet::run(cmd, &client()?, &out),
        Command::Policy(cmd) => policy::run(cmd, &client()?, &out),
        Command::Eth(cmd) => eth::run(cmd, &client()?, &out),
        Command::Btc(cmd) => btc::run(cmd, &client()?, &out),
        Command::Eos(cmd) => eos::run(cmd, &client()?, &out),
        Command::Config(cmd) => config::run(cmd, client, &out),
        Command::Rollback(cmd) => rollback::run(cmd, client, &out),
        Command::Backup(cmd) => backup::run(cmd, client, &out),
        Command::Eth2(cmd) => eth2::run(cmd, &client()?, &out),
        Command::Slashing(cmd) => eth2::run_slashing(cmd, &client()?, &out),
        Command::Audit(AuditCmd::Export { out: path }) => {
            let mut f = std::fs::File::create(&path)
                .map_err(|e| CliError::Input(format!("cannot create {}: {e}", path.display())))?;
            let n = client()?.download("/v1/audit/export", &mut f)?;
            std::io::Write::flush(&mut f)
                .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
            out.object(&json!({"file": path, "bytes": n}))
        }
        Command::Audit(AuditCmd::Verify {
            file: Some(file),
            audit_key,
            ..
        }) => verify::run_file(&out, &file, audit_key.as_deref()),
        Command::Audit(AuditCmd::Verify {
            config: Some(config),
            audit_key,
            ..
        }) => {
            let cfg = strongroom_server::Config::load(&config)
                .map_err(|e| CliError::Input(e.to_string()))?;
            verify::run(
                &out,
                &cfg.data_dir,
                cfg.storage.postgres.as_deref(),
                audit_key.as_deref(),
            )
        }
        Command::Audit(AuditCmd::Verify {
            data, audit_key, ..
        }) => {
            let data =
                data.ok_or_else(|| CliError::Input("give --data, --config or --file".into()))?;
            verify::run(&out, &data, None, audit_key.as_deref())
        }
        Command::Bench(a) => bench::run(&out, &a),
    }
}

fn sign(client: &Client, out: &output::Output, a: SignArgs) -> Result<(), CliError> {
    let body = match (a.digest, a.message, a.message_file) {
        (Some(d), _, _) => json!({"digest": d}),
        (_, Some(m), _) => json!({"message": m}),
        (_, _, Some(f)) => {
            let bytes = std::fs::read(&f)
                .map_err(|e| CliError::Input(format!("cannot read {}: {e}", f.display())))?;
            json!({"message": hex::encode(bytes)})
        }
        _ => {
            return Err(CliError::Input(
                "give --digest, --message or --message-file".into(),
            ));
        }
    };
    let sig = client.post(&format!("/v1/keys/{}/sign", client::path(&a.key)), &body)?;
    if let Some(path) = a.out {
        let field = if sig.get("signature_der").is_some() {
            "signature_der"
        } else {
            "signature"
        };
        let bytes = hex::decode(sig[field].as_str().unwrap_or_default())
            .map_err(|_| CliError::Input("server returned a malformed signature".into()))?;
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    }
    out.object(&sig)
}

/// An approval key file (`approval-key generate`), read as a secret file.
pub(crate) fn read_approval_key(
    key_file: &PathBuf,
) -> Result<strongroom_crypto::ApprovalKey, CliError> {
    strongroom_crypto::ApprovalKey::from_file_string(&read_secret_file(key_file)?).map_err(|_| {
        CliError::Input(format!(
            "{} is not an approval key file",
            key_file.display()
        ))
    })
}

/// Rebuilds the request from the fields the server shows, recomputes its canonical hash, and
/// refuses to sign unless it matches: an approver signs what they were shown, nothing else.
fn approve(
    client: &Client,
    out: &output::Output,
    id: &str,
    key_file: &PathBuf,
) -> Result<(), CliError> {
    use strongroom_core::record::{PendingRecord, RequestStatus};
    let key = read_approval_key(key_file)?;
    let r = client.get(&format!("/v1/requests/{}", client::path(id)))?;
    let bad = || CliError::Server("the server's request description is malformed".into());
    let id16 = |v: &Value| -> Result<Option<[u8; 16]>, CliError> {
        match v.as_str() {
            None => Ok(None),
            Some(s) => {
                let u: strongroom_core::KeyId = s.parse().map_err(|_| bad())?;
                Ok(Some(*u.as_bytes()))
            }
        }
    };
    let hex32 = |name: &str| -> Result<[u8; 32], CliError> {
        hex::decode(field(&r, name))
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)
    };
    let vault_id: strongroom_core::VaultId = field(&r, "vault_id").parse().map_err(|_| bad())?;
    let rec = PendingRecord {
        id: field(&r, "request_id").parse().map_err(|_| bad())?,
        op: field(&r, "operation").parse().map_err(|_| bad())?,
        params: field(&r, "params_canonical").to_owned(),
        domain: id16(&r["domain_id"])?.map(strongroom_core::DomainId::from_bytes),
        key: id16(&r["key_id"])?.map(strongroom_core::KeyId::from_bytes),
        requester: String::new(),
        requester_operator: None,
        required: r["required"]
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(bad)?,
        created_at: strongroom_core::UnixMillis(0),
        expires_at: strongroom_core::UnixMillis(r["expires_at_ms"].as_u64().ok_or_else(bad)?),
        nonce: hex32("nonce")?,
        hash: [0; 32],
        status: RequestStatus::Pending,
        result: None,
        decided_at: None,
        mac: [0; 32],
    };
    let hash = strongroom_crypto::request_hash(&vault_id, &rec);
    if hex::encode(hash) != field(&r, "hash") {
        return Err(CliError::Server(
            "the request's hash does not match what it describes; not signing".into(),
        ));
    }
    // The canonical parameters must also be the parameters shown.
    let shown: Value = serde_json::from_str(&rec.params).map_err(|_| bad())?;
    if shown != r["params"] {
        return Err(CliError::Server(
            "the request's parameters do not match what it describes; not signing".into(),
        ));
    }
    if !out.json {
        eprintln!(
            "approving request {}: {}",
            field(&r, "request_id"),
            field(&r, "description")
        );
    }
    let sig = key.approve(&hash);
    out.object(&client.post(
        &format!("/v1/requests/{}/approve", client::path(id)),
        &json!({"signature": hex::encode(sig)}),
    )?)
}

fn generate_approval_key(out: &output::Output, path: &PathBuf) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = strongroom_crypto::ApprovalKey::generate(&strongroom_crypto::OsEntropy)
        .map_err(|e| CliError::Input(format!("cannot generate a key: {e}")))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::Input(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(key.to_file_string().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", path.display())))?;
    let public = hex::encode(key.public_key());
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    std::fs::write(&pub_path, format!("{public}\n"))
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", pub_path.display())))?;
    out.object(
        &json!({"public_key": public, "private_key_file": path, "public_key_file": pub_path}),
    )
}

pub(crate) fn read_secret_file(path: &PathBuf) -> Result<zeroize::Zeroizing<String>, CliError> {
    std::fs::read_to_string(path)
        .map(|s| zeroize::Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_owned()))
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))
}

fn login(client: &Client, out: &output::Output, a: LoginArgs) -> Result<(), CliError> {
    let password = match &a.password_file {
        Some(f) => read_secret_file(f)?,
        None => zeroize::Zeroizing::new(
            rpassword::prompt_password("Password: ")
                .map_err(|e| CliError::Input(format!("cannot read the password: {e}")))?,
        ),
    };
    let totp = match a.totp {
        Some(t) => t,
        None => rpassword::prompt_password("One-time code: ")
            .map_err(|e| CliError::Input(format!("cannot read the code: {e}")))?,
    };
    let new_password = a
        .new_password_file
        .as_ref()
        .map(read_secret_file)
        .transpose()?;
    let body = json!({
        "name": a.name,
        "password": password.as_str(),
        "totp": totp.trim(),
        "new_password": new_password.as_ref().map(|p| p.as_str()),
    });
    let session = client.post("/v1/login", &body)?;
    if out.json {
        return out.object(&session);
    }
    println!("{}", field(&session, "token"));
    Ok(())
}

fn read_share(file: Option<PathBuf>) -> Result<zeroize::Zeroizing<String>, CliError> {
    let text = match file {
        Some(f) => std::fs::read_to_string(&f)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", f.display())))?,
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("Unseal share (input hidden): ")
                .map_err(|e| CliError::Input(format!("cannot read the share: {e}")))?
        }
        None => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
            s
        }
    };
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

fn serve(a: ServeArgs) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let opts = if a.dev {
        strongroom_server::ServeOptions {
            dev: true,
            listen: a.listen,
            tls: None,
            storage: strongroom_server::StorageConfig {
                sqlite: None,
                postgres: a.postgres,
            },
            data_dir: a.data,
            seal: strongroom_server::SealConfig::default(),
            eth2: a.eth2_listen.map(|listen| strongroom_server::Eth2Config {
                listen,
                domain: a
                    .eth2_domain
                    .unwrap_or_else(|| strongroom_server::DEFAULT_DOMAIN.to_owned()),
                genesis_fork_version: None,
                genesis_validators_root: None,
            }),
            tamper: strongroom_server::TamperConfig::default(),
            config_file: None,
            time: None,
            sandbox: strongroom_server::SandboxConfig {
                read: a.sandbox_read,
                write: a.sandbox_write,
                ..Default::default()
            },
            rotation: strongroom_server::RotationConfig::default(),
        }
    } else {
        let path = a
            .config
            .ok_or_else(|| CliError::Input("--config is required without --dev".into()))?;
        let (cfg, measured) = strongroom_server::Config::load_measured(&path)
            .map_err(|e| CliError::Server(e.to_string()))?;
        strongroom_server::ServeOptions {
            config_file: Some(measured),
            dev: false,
            listen: cfg.listen,
            tls: cfg.tls,
            storage: cfg.storage,
            data_dir: Some(cfg.data_dir),
            seal: cfg.seal,
            eth2: cfg.eth2,
            tamper: cfg.tamper,
            time: cfg.time,
            sandbox: cfg.sandbox,
            rotation: cfg.rotation,
        }
    };
    // Before the runtime starts any thread: Landlock binds only this thread and its
    // descendants.
    let mut opts = opts;
    opts.confine()
        .map_err(|e| CliError::Server(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Server(format!("cannot start the runtime: {e}")))?;
    rt.block_on(strongroom_server::serve(opts, |s| {
        println!(
            "strongroom {} listening on {}://{}",
            env!("CARGO_PKG_VERSION"),
            if s.tls { "https" } else { "http" },
            s.addr
        );
        println!("data directory: {}", s.data_dir.display());
        if let Some(e) = s.eth2_addr {
            println!("eth2 remote signer listening on {e}");
        }
        if let Some(t) = &s.dev_token {
            println!("dev mode: initialised and unsealed; domain `default` exists");
            println!("root token: {}", t.as_str());
            println!("  export STRONGROOM_ADDR=http://{}", s.addr);
            println!(
                "  export STRONGROOM_TOKEN=$(cat {}/dev-token)",
                s.data_dir.display()
            );
        } else {
            println!(
                "sealed: run `strongroom operator init` (new vault) or `strongroom operator unseal`"
            );
        }
        // Flush so that scripts waiting for the address see it at once.
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }))
    .map_err(|e| CliError::Server(e.to_string()))
}

/// Used by output and bench: a JSON string field, or "".
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use strongroom_core::quorum::GatedOp;

    use super::Cli;

    fn help(path: &[&str]) -> String {
        let mut cmd = Cli::command();
        let mut sub = &mut cmd;
        for p in path {
            sub = sub.find_subcommand_mut(p).unwrap();
        }
        sub.render_long_help().to_string()
    }

    /// `--help` is where operators find operation names: it must name every one.
    #[test]
    fn quorum_help_names_every_gated_operation() {
        let vault = help(&["quorum", "set"]);
        let domain = help(&["domain", "quorum"]);
        for op in GatedOp::ALL {
            assert!(vault.contains(op.as_str()), "quorum set --help lacks {op}");
            assert_eq!(
                domain.contains(op.as_str()),
                !op.vault_wide(),
                "domain quorum --help and {op}"
            );
        }
    }
}
