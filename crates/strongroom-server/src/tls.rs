//! TLS for the API (rustls, TLS 1.2 and 1.3 only, ring provider), with optional client
//! certificate verification (mutual TLS) against a configured CA.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::ServeError;
use crate::config::TlsConfig;

fn bad(path: &Path, what: &str) -> ServeError {
    ServeError::Config(format!("[tls] {}: {what}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, &format!("cannot read: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(path, &format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// Builds the acceptor.
///
/// # Errors
/// [`ServeError::Config`] for unreadable or mismatched certificates and keys.
pub(crate) fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| bad(&cfg.key, &format!("no usable private key: {e}")))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServeError::Config(format!("[tls]: {e}")))?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| bad(ca, &format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(ca, &format!("cannot verify clients with it: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(&cfg.key, &format!("does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
