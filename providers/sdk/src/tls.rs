//! The driver's TLS server side: it presents its provider certificate (swappable,
//! for renewal without downtime) and requires a client certificate issued by the
//! controller's CA with the clientAuth purpose — which only controller replicas
//! have (driver certificates are serverAuth-only).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate PEM is invalid")]
    Certificate(#[source] rustls_pki_types::pem::Error),
    #[error("private key PEM is invalid")]
    Key(#[source] rustls_pki_types::pem::Error),
    #[error("TLS configuration refused")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier configuration refused")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate + key in rustls' form.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Certificate)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(TlsError::Key)?;
    let signing = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Serves whatever certificate was stored last: renewal swaps it in place, and
/// connections opened afterwards get the new one while open ones carry on.
#[derive(Debug)]
pub struct SwappableCert {
    current: ArcSwap<CertifiedKey>,
}

impl SwappableCert {
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::new(key),
        })
    }

    pub fn swap(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The rustls server configuration: mutual TLS against `ca_pem`, HTTP/2 only.
pub fn server_config(
    ca_pem: &str,
    cert: Arc<SwappableCert>,
) -> Result<rustls::ServerConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.map_err(TlsError::Certificate)?)?;
    }
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
