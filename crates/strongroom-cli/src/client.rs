//! A small blocking HTTP client for the `/v1` API.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Client as Http;
use serde_json::Value;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The server refused or failed the request.
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached.
    Connect(String),
    /// Bad local input (file, flag).
    Input(String),
    /// The node failed to start or stopped abnormally.
    Server(String),
    /// The audit log failed verification.
    Tampered(String),
    /// Already reported on standard output (JSON mode); only the exit code is left.
    Reported,
    /// The server filed the operation as a request awaiting approvals (HTTP 202).
    Pending(Value),
}

impl CliError {
    pub(crate) fn code(&self) -> &str {
        match self {
            CliError::Api { code, .. } => code,
            CliError::Connect(_) => "connection_failed",
            CliError::Input(_) => "invalid_input",
            CliError::Server(_) => "server_failed",
            CliError::Tampered(_) | CliError::Reported => "audit_verification_failed",
            CliError::Pending(_) => "pending_approval",
        }
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Pending(_) => 3,
            _ => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Api {
                status,
                code,
                message,
            } => write!(f, "{message} ({code}, HTTP {status})"),
            CliError::Connect(m)
            | CliError::Input(m)
            | CliError::Server(m)
            | CliError::Tampered(m) => f.write_str(m),
            CliError::Reported => f.write_str("audit log verification failed"),
            CliError::Pending(v) => write!(
                f,
                "pending approval: request {} needs {} approval(s); it will run once approved",
                v["request_id"].as_str().unwrap_or("?"),
                v["required"]
            ),
        }
    }
}

/// Percent-encodes a path segment.
pub(crate) fn path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) struct Client {
    http: Http,
    base: String,
    token: Option<String>,
    expires: Option<Duration>,
}

impl Client {
    pub(crate) fn new(addr: &str, token: Option<String>) -> Result<Self, CliError> {
        let mut builder = Http::builder().timeout(Duration::from_secs(60));
        // STRONGROOM_CACERT: trust exactly this CA (bundle) for the server's certificate.
        if let Some(path) = std::env::var_os("STRONGROOM_CACERT") {
            let pem = std::fs::read(&path).map_err(|e| {
                CliError::Input(format!("STRONGROOM_CACERT {}: {e}", path.to_string_lossy()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                CliError::Input(format!(
                    "STRONGROOM_CACERT {}: not a PEM certificate bundle",
                    path.to_string_lossy()
                ))
            })?;
            builder = builder.tls_certs_only(certs);
        }
        // STRONGROOM_CLIENT_CERT / _KEY: present a client certificate (mutual TLS).
        match (
            std::env::var_os("STRONGROOM_CLIENT_CERT"),
            std::env::var_os("STRONGROOM_CLIENT_KEY"),
        ) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(&cert).map_err(|e| {
                    CliError::Input(format!(
                        "STRONGROOM_CLIENT_CERT {}: {e}",
                        cert.to_string_lossy()
                    ))
                })?;
                let key_pem = zeroize::Zeroizing::new(std::fs::read(&key).map_err(|e| {
                    CliError::Input(format!(
                        "STRONGROOM_CLIENT_KEY {}: {e}",
                        key.to_string_lossy()
                    ))
                })?);
                pem.push(b'\n');
                pem.extend_from_slice(&key_pem);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                    CliError::Input(
                        "STRONGROOM_CLIENT_CERT/_KEY: not a PEM certificate and key".into(),
                    )
                });
                zeroize::Zeroize::zeroize(&mut pem);
                builder = builder.identity(identity?);
            }
            (None, None) => {}
            _ => {
                return Err(CliError::Input(
                    "set both STRONGROOM_CLIENT_CERT and STRONGROOM_CLIENT_KEY, or neither".into(),
                ));
            }
        }
        let http = builder
            .build()
            .map_err(|e| CliError::Connect(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: addr.trim_end_matches('/').to_owned(),
            token,
            expires: None,
        })
    }

    /// Sets how long a request this client files stays open for approvals.
    pub(crate) fn expiring(mut self, expires: Option<Duration>) -> Self {
        self.expires = expires;
        self
    }

    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = self.expires {
            req = req.header("strongroom-request-expires", e.as_secs());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .map_err(|e| CliError::Connect(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let value: Value = resp.json().unwrap_or(Value::Null);
        if status == reqwest::StatusCode::ACCEPTED {
            return Err(CliError::Pending(value));
        }
        if status.is_success() {
            return Ok(value);
        }
        let err = &value["error"];
        Err(CliError::Api {
            status: status.as_u16(),
            code: err["code"].as_str().unwrap_or("http_error").to_owned(),
            message: err["message"]
                .as_str()
                .unwrap_or("request failed")
                .to_owned(),
        })
    }

    /// Streams a GET response body into `out` (for large exports).
    pub(crate) fn download(
        &self,
        path: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, CliError> {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(3600));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .map_err(|e| CliError::Connect(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        if !status.is_success() {
            let value: Value = resp.json().unwrap_or(Value::Null);
            let err = &value["error"];
            return Err(CliError::Api {
                status: status.as_u16(),
                code: err["code"].as_str().unwrap_or("http_error").to_owned(),
                message: err["message"]
                    .as_str()
                    .unwrap_or("request failed")
                    .to_owned(),
            });
        }
        resp.copy_to(out)
            .map_err(|e| CliError::Connect(format!("download interrupted: {e}")))
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::GET, path, None)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::POST, path, Some(body))
    }

    pub(crate) fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.send(Method::PUT, path, Some(body))
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.send(Method::DELETE, path, None)
    }
}
