//! Node configuration (`strongroom serve --config FILE`). Unknown keys are an error.
//!
//! ```toml
//! listen = "0.0.0.0:8200"
//! data_dir = "/var/lib/strongroom"
//! [storage]
//! sqlite = "vault.db"            # relative to data_dir; the default
//! # postgres = "postgres://strongroom@db.internal/strongroom"   # several nodes, one database
//! [tls]                          # required unless `listen` is a loopback address
//! cert = "/etc/strongroom/tls.crt"
//! key = "/etc/strongroom/tls.key"
//! client_ca = "/etc/strongroom/clients.pem"   # optional: require client certificates
//! # eth2_client_ca = "/etc/strongroom/validator-clients.pem"  # the eth2 listener's clients
//! [eth2]                         # optional: the Ethereum remote-signing API
//! listen = "127.0.0.1:9000"      # loopback, or any address with [tls] eth2_client_ca
//! domain = "validators"          # the one domain it serves (default: "default")
//! # genesis_fork_version = "0x00000000"   # the chain's, for builder registrations
//! # genesis_validators_root = "0x4b36..."  # refuse requests for any other chain
//! [seal]
//! kind = "shamir"                # or "pkcs11" with the four keys below
//! # module = "/usr/lib/softhsm/libsofthsm2.so"
//! # token_label = "strongroom"
//! # pin_file = "/etc/strongroom/hsm.pin"
//! # key_label = "strongroom-root"
//! [sandbox]                      # least privilege (Landlock + seccomp), on by default
//! # write = ["/var/lib/softhsm/tokens"]   # a PKCS#11 token's own directory
//! # require = true               # refuse to start unconfined
//! # min_landlock_abi = 6         # refuse an older kernel
//! # read = ["/etc/strongroom/extra"]
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServeError;

/// The TOML configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Without `[tls]`, only a loopback address is accepted.
    pub listen: SocketAddr,
    /// Directory for the database, the signed-head file and the lock.
    pub data_dir: PathBuf,
    /// Where vault state lives.
    #[serde(default)]
    pub storage: StorageConfig,
    /// TLS for the API.
    pub tls: Option<TlsConfig>,
    /// How the root key is protected.
    #[serde(default)]
    pub seal: SealConfig,
    /// The Ethereum remote-signing listener.
    pub eth2: Option<Eth2Config>,
    /// The tamper response.
    #[serde(default)]
    pub tamper: TamperConfig,
    /// Authenticated time sources.
    pub time: Option<TimeConfig>,
    /// Least privilege.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// Background re-wrapping during a domain key rotation.
    #[serde(default)]
    pub rotation: RotationConfig,
}

/// `[rotation]`: how fast a domain key rotation moves key blobs in the background (each batch
/// is one write transaction with its audit record; signing goes on between batches).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// Keys re-wrapped per batch (1-10000).
    #[serde(default = "default_rotation_batch")]
    pub batch_size: u32,
    /// Pause between batches, in milliseconds (throttles the work on a busy node).
    #[serde(default)]
    pub batch_interval_ms: u64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            batch_size: default_rotation_batch(),
            batch_interval_ms: 0,
        }
    }
}

fn default_rotation_batch() -> u32 {
    256
}

/// `[time]`: the authenticated NTP sources the vault's clock follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// The sources (`[[time.ntp]]`).
    #[serde(default)]
    pub ntp: Vec<NtpSourceConfig>,
    /// Sources farther than this from the majority are voted out (default `1s`).
    #[serde(default = "default_max_disagreement")]
    pub max_disagreement: String,
    /// How often the sources are asked (default `16s`).
    #[serde(default = "default_poll")]
    pub poll: String,
    /// The clock is trusted only this long after the last successful vote (default `10m`).
    #[serde(default = "default_max_age")]
    pub max_age: String,
}

/// One NTP server with the symmetric key it shares with the vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtpSourceConfig {
    /// `IP:port`.
    pub address: SocketAddr,
    /// A chrony/ntpd key file (`ID SHA256 HEX:...`).
    pub key_file: PathBuf,
    /// The key's id in it.
    pub key_id: u32,
}

fn default_max_disagreement() -> String {
    "1s".to_owned()
}

fn default_poll() -> String {
    "16s".to_owned()
}

fn default_max_age() -> String {
    "10m".to_owned()
}

impl TimeConfig {
    fn duration(name: &str, v: &str) -> Result<std::time::Duration, ServeError> {
        humantime::parse_duration(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ServeError::Config(format!("[time] {name} = {v:?}: not a duration")))
    }

    pub(crate) fn max_disagreement(&self) -> Result<std::time::Duration, ServeError> {
        Self::duration("max_disagreement", &self.max_disagreement)
    }

    pub(crate) fn poll(&self) -> Result<std::time::Duration, ServeError> {
        Self::duration("poll", &self.poll)
    }

    pub(crate) fn max_age(&self) -> Result<std::time::Duration, ServeError> {
        Self::duration("max_age", &self.max_age)
    }
}

/// `[sandbox]`: what the node may reach once started, besides the paths the rest of the
/// configuration names (see `least_privilege`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Confine the node (the default). `false` only to diagnose; `status` shows it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Extra paths to read beneath.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Extra paths to write beneath: a PKCS#11 token's directory (SoftHSM's `tokendir`).
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Refuse to start unless the kernel enforces both Landlock and seccomp (default: start
    /// with what the kernel offers, and say so).
    #[serde(default)]
    pub require: bool,
    /// Refuse to start on a kernel whose Landlock ABI is older than this (6: signal and
    /// abstract-socket scoping; 9: UNIX socket paths).
    #[serde(default)]
    pub min_landlock_abi: Option<u8>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            read: Vec::new(),
            write: Vec::new(),
            require: false,
            min_landlock_abi: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `[tamper]`: what triggers the tamper response besides `operator tamper`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TamperConfig {
    /// The signal that zeroizes every key and seals: `usr1`, `usr2` (the default) or `off`
    /// (for an enclosure sensor or a watchdog to send).
    #[serde(default = "default_tamper_signal")]
    pub signal: String,
}

impl Default for TamperConfig {
    fn default() -> Self {
        TamperConfig {
            signal: default_tamper_signal(),
        }
    }
}

fn default_tamper_signal() -> String {
    "usr2".to_owned()
}

/// `[eth2]`: the Ethereum remote-signing API on its own listener, bound to one domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eth2Config {
    /// Address to listen on: loopback, or any address when `[tls] eth2_client_ca` makes
    /// clients present a certificate (consensus clients send no other credential).
    pub listen: SocketAddr,
    /// The domain whose validator keys it serves.
    #[serde(default = "default_eth2_domain")]
    pub domain: String,
    /// The chain's genesis fork version (`0x` + 8 hex digits), for builder registrations;
    /// mainnet's by default.
    pub genesis_fork_version: Option<String>,
    /// The chain's genesis validators root (`0x` + 64 hex digits): requests naming another
    /// are refused. Without it, the domain is pinned to the first chain a request names.
    pub genesis_validators_root: Option<String>,
}

fn default_eth2_domain() -> String {
    crate::service::DEFAULT_DOMAIN.to_owned()
}

impl Eth2Config {
    /// The configured genesis validators root as bytes.
    ///
    /// # Errors
    /// [`ServeError::Config`] if it is not `0x` and 64 hex digits.
    pub fn validators_root(&self) -> Result<Option<[u8; 32]>, ServeError> {
        let Some(v) = &self.genesis_validators_root else {
            return Ok(None);
        };
        v.strip_prefix("0x")
            .filter(|h| h.len() == 64)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(Some)
            .ok_or_else(|| {
                ServeError::Config(format!(
                    "[eth2] genesis_validators_root = {v:?}: 0x and 64 hex digits"
                ))
            })
    }

    /// The genesis fork version as bytes.
    ///
    /// # Errors
    /// [`ServeError::Config`] if it is not `0x` and 8 hex digits.
    pub fn fork_version(&self) -> Result<[u8; 4], ServeError> {
        let Some(v) = &self.genesis_fork_version else {
            return Ok([0; 4]);
        };
        v.strip_prefix("0x")
            .filter(|h| h.len() == 8)
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                ServeError::Config(format!(
                    "[eth2] genesis_fork_version = {v:?}: 0x and 8 hex digits"
                ))
            })
    }
}

/// `[storage]`: SQLite in the data directory (the default), or PostgreSQL.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite database file name inside `data_dir` (only `vault.db` for now).
    pub sqlite: Option<PathBuf>,
    /// PostgreSQL connection URL, shared by every node of the vault.
    pub postgres: Option<String>,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("StorageConfig")
            .field("sqlite", &self.sqlite)
            .field("postgres", &self.postgres.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// `[tls]`: certificate chain and key (PEM), and optionally the CA that client certificates
/// must chain to (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificate(s): when set, every client must present a certificate issued by one.
    pub client_ca: Option<PathBuf>,
    /// PEM CA certificate(s) that the eth2 listener's clients' certificates must chain to.
    pub eth2_client_ca: Option<PathBuf>,
}

/// `[seal]`: how the root key is protected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    /// `shamir` (the default): M-of-N operator shares. `pkcs11`: also wrapped by a key in a
    /// hardware token, so the node unseals itself at start.
    #[serde(default)]
    pub kind: SealKind,
    /// PKCS#11 module (shared library) path.
    pub module: Option<PathBuf>,
    /// Label of the token.
    pub token_label: Option<String>,
    /// File holding the token's user PIN (mode 0600).
    pub pin_file: Option<PathBuf>,
    /// Label of the AES wrapping key in the token (created at `operator init` if absent).
    pub key_label: Option<String>,
}

/// Root-key protection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SealKind {
    /// Shamir shares held by custodians.
    #[default]
    Shamir,
    /// A non-extractable AES key in a PKCS#11 token (shares remain the recovery path).
    Pkcs11,
}

impl SealConfig {
    /// The token parameters for a `pkcs11` seal, `None` for `shamir`.
    ///
    /// # Errors
    /// [`ServeError::Config`] when a `pkcs11` key is missing, or given for `shamir`.
    pub fn pkcs11(&self) -> Result<Option<strongroom_pkcs11::Pkcs11Params>, ServeError> {
        let given = [
            self.module.is_some(),
            self.token_label.is_some(),
            self.pin_file.is_some(),
            self.key_label.is_some(),
        ];
        match self.kind {
            SealKind::Shamir if given.iter().any(|g| *g) => Err(ServeError::Config(
                "[seal]: module, token_label, pin_file and key_label belong to kind = \"pkcs11\""
                    .into(),
            )),
            SealKind::Shamir => Ok(None),
            SealKind::Pkcs11 => {
                let (Some(module), Some(token_label), Some(pin_file), Some(key_label)) = (
                    self.module.clone(),
                    self.token_label.clone(),
                    self.pin_file.clone(),
                    self.key_label.clone(),
                ) else {
                    return Err(ServeError::Config(
                        "[seal] kind = \"pkcs11\" needs module, token_label, pin_file and key_label"
                            .into(),
                    ));
                };
                if key_label.is_empty() || key_label.len() > 64 || token_label.is_empty() {
                    return Err(ServeError::Config(
                        "[seal]: token_label must be set and key_label be 1 to 64 bytes".into(),
                    ));
                }
                Ok(Some(strongroom_pkcs11::Pkcs11Params {
                    module,
                    token_label,
                    pin_file,
                    key_label,
                }))
            }
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// [`ServeError::Config`] for unreadable, malformed or unsafe configurations.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        Self::load_measured(path).map(|(cfg, _)| cfg)
    }

    /// [`Config::load`], with the measurement (SHA-256) of exactly the bytes parsed.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_measured(path: &Path) -> Result<(Self, crate::measure::ConfigFile), ServeError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| ServeError::Config(format!("{}: not UTF-8", path.display())))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| ServeError::Config(format!("{}: {}", path.display(), e.message())))?;
        check_listen(cfg.listen, cfg.tls.is_some())?;
        cfg.seal.pkcs11()?;
        if cfg.storage.sqlite.is_some() && cfg.storage.postgres.is_some() {
            return Err(ServeError::Config(
                "[storage]: give sqlite or postgres, not both".into(),
            ));
        }
        if !(1..=10_000).contains(&cfg.rotation.batch_size) {
            return Err(ServeError::Config(
                "[rotation] batch_size: 1 to 10000 keys".into(),
            ));
        }
        if let Some(db) = &cfg.storage.sqlite
            && db != Path::new("vault.db")
        {
            return Err(ServeError::Config(format!(
                "[storage] sqlite = {}: the database is always vault.db in data_dir",
                db.display()
            )));
        }
        // The files it names are part of what it configures: public ones by content, secret
        // ones (keys, PINs) by path only, so the published hash reveals nothing about them.
        let mut public: Vec<&Path> = Vec::new();
        let mut secret: Vec<&Path> = Vec::new();
        if let Some(t) = &cfg.tls {
            public.push(&t.cert);
            public.extend(t.client_ca.as_deref());
            public.extend(t.eth2_client_ca.as_deref());
            secret.push(&t.key);
        }
        public.extend(cfg.seal.module.as_deref());
        secret.extend(cfg.seal.pin_file.as_deref());
        if let Some(time) = &cfg.time {
            secret.extend(time.ntp.iter().map(|n| n.key_file.as_path()));
        }
        let measured = crate::measure::ConfigFile::measure(path, &bytes, &public, &secret);
        Ok((cfg, measured))
    }
}

/// Refuses plain HTTP on anything but loopback.
///
/// # Errors
/// [`ServeError::Config`] for a non-loopback address without TLS.
pub fn check_listen(addr: SocketAddr, tls: bool) -> Result<(), ServeError> {
    if tls || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::Config(format!(
            "listen = {addr}: plain HTTP is only allowed on a loopback address; add a [tls] section"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ServeError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, s).unwrap();
        Config::load(&p)
    }

    #[test]
    fn plain_http_only_on_loopback_and_unknown_keys_refused() {
        let base = "data_dir = \"/tmp/x\"\n";
        assert!(parse(&format!("listen = \"127.0.0.1:8200\"\n{base}")).is_ok());
        assert!(parse(&format!("listen = \"[::1]:8200\"\n{base}")).is_ok());
        assert!(parse(&format!("listen = \"0.0.0.0:8200\"\n{base}")).is_err());
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let cfg = parse(&format!("listen = \"0.0.0.0:8200\"\n{base}{tls}")).unwrap();
        assert_eq!(cfg.tls.unwrap().client_ca, None);
        assert!(parse(&format!("listen = \"127.0.0.1:8200\"\n{base}extra = 1\n")).is_err());
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}{tls}hsts = true\n"
            ))
            .is_err()
        );
        assert!(parse("listen = \"127.0.0.1:8200\"\n").is_err());
        let seal = parse(&format!(
            "listen = \"127.0.0.1:8200\"\n{base}[seal]\nkind = \"shamir\"\n"
        ));
        assert_eq!(seal.unwrap().seal.kind, SealKind::Shamir);
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}[seal]\nkind = \"magic\"\n"
            ))
            .is_err()
        );
        let hsm = "module = \"/m.so\"\ntoken_label = \"t\"\npin_file = \"/p\"\nkey_label = \"k\"\n";
        let cfg = parse(&format!(
            "listen = \"127.0.0.1:8200\"\n{base}[seal]\nkind = \"pkcs11\"\n{hsm}"
        ))
        .unwrap();
        assert_eq!(cfg.seal.pkcs11().unwrap().unwrap().key_label, "k");
        // Every key is needed; none belongs to a Shamir seal.
        for line in hsm.lines() {
            let partial = hsm.replace(&format!("{line}\n"), "");
            assert!(
                parse(&format!(
                    "listen = \"127.0.0.1:8200\"\n{base}[seal]\nkind = \"pkcs11\"\n{partial}"
                ))
                .is_err(),
                "{line}"
            );
        }
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}[seal]\nkind = \"shamir\"\n{hsm}"
            ))
            .is_err()
        );
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}[storage]\nsqlite = \"vault.db\"\n"
            ))
            .is_ok()
        );
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}[storage]\nsqlite = \"other.db\"\n"
            ))
            .is_err()
        );
        let pg = "[storage]\npostgres = \"postgres://u:secret@db/x\"\n";
        let cfg = parse(&format!("listen = \"127.0.0.1:8200\"\n{base}{pg}")).unwrap();
        assert!(
            !format!("{cfg:?}").contains("secret"),
            "the URL's password leaked"
        );
        assert!(
            parse(&format!(
                "listen = \"127.0.0.1:8200\"\n{base}{pg}sqlite = \"vault.db\"\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn eth2_section() {
        let base = "listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\n";
        let cfg = parse(&format!("{base}[eth2]\nlisten = \"127.0.0.1:9000\"\n")).unwrap();
        let e = cfg.eth2.unwrap();
        assert_eq!(e.domain, "default");
        assert_eq!(e.fork_version().unwrap(), [0; 4]);
        let cfg = parse(&format!(
            "{base}[eth2]\nlisten = \"127.0.0.1:9000\"\ndomain = \"validators\"\ngenesis_fork_version = \"0x01017000\"\n"
        ))
        .unwrap();
        assert_eq!(cfg.eth2.unwrap().fork_version().unwrap(), [1, 1, 0x70, 0]);
        for bad in ["0x010170", "01017000", "0xzz017000"] {
            let cfg = parse(&format!(
                "{base}[eth2]\nlisten = \"127.0.0.1:9000\"\ngenesis_fork_version = \"{bad}\"\n"
            ))
            .unwrap();
            assert!(cfg.eth2.unwrap().fork_version().is_err(), "{bad}");
        }
        assert!(
            parse(&format!(
                "{base}[eth2]\nlisten = \"127.0.0.1:9000\"\ntoken = 1\n"
            ))
            .is_err()
        );
    }
}
