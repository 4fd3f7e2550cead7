//! Node configuration (`strongroom serve --config FILE`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServeError;

/// The TOML configuration. Unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Plain HTTP is allowed on loopback addresses only.
    pub listen: SocketAddr,
    /// Directory for the database, the signed-head file and the lock.
    pub data_dir: PathBuf,
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// [`ServeError::Config`] for unreadable, malformed or unsafe configurations.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", path.display())))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| ServeError::Config(format!("{}: {}", path.display(), e.message())))?;
        check_listen(cfg.listen)?;
        Ok(cfg)
    }
}

/// Refuses plain HTTP on anything but loopback.
///
/// # Errors
/// [`ServeError::Config`] for a non-loopback address.
pub fn check_listen(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::Config(format!(
            "listen = {addr}: plain HTTP is only allowed on a loopback address (TLS is not available yet)"
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
    fn accepts_loopback_and_refuses_the_rest() {
        assert!(parse("listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\n").is_ok());
        assert!(parse("listen = \"[::1]:8200\"\ndata_dir = \"/tmp/x\"\n").is_ok());
        assert!(parse("listen = \"0.0.0.0:8200\"\ndata_dir = \"/tmp/x\"\n").is_err());
        assert!(parse("listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\nextra = 1\n").is_err());
        assert!(parse("listen = \"127.0.0.1:8200\"\n").is_err());
    }
}
