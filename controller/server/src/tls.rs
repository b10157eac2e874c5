//! The API over TLS (issue 16 item 5): a rustls listener for `axum::serve`
//! whose certificate is either the operator's (PEM files, re-read when they
//! change, as cert-manager or an operator rotates them) or issued from the
//! controller's own CA for the names given — which drivers already pin through
//! their bootstrap token, so the one-time token and renewal secrets never
//! travel in clear and no other trust anchor is needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take before the connection is dropped: a slow
/// or silent client must not hold a task for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often operator files are checked for a rotated certificate.
const FILE_CHECK: Duration = Duration::from_secs(30);
/// Life of a certificate issued from the controller CA; re-issued at two thirds.
pub const CA_CERT_LIFE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where the API's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// An operator's certificate chain and key (PEM files).
    Files { cert: PathBuf, key: PathBuf },
    /// Issued from the controller's CA for these host names / IP addresses.
    ControllerCa { names: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM certificate")]
    Certificate {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no usable PEM private key")]
    Key {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("the TLS key or configuration is refused")]
    Rustls(#[from] rustls::Error),
    #[error("cannot issue the API's certificate from the controller CA")]
    Pki(#[from] yunshu_pki::PkiError),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and key in rustls' form; `origin` names them in errors.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: (&PathBuf, &PathBuf),
) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Certificate {
            path: origin.0.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: origin.0.clone(),
            source: rustls_pki_types::pem::Error::NoItemsFound,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Key {
        path: origin.1.clone(),
        source,
    })?;
    let signing = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// The certificate the API presents now. Empty until the controller CA has
/// loaded (`ControllerCa`): handshakes fail meanwhile, as `/readyz` does.
#[derive(Debug, Default)]
pub struct ApiCertificate {
    current: ArcSwapOption<CertifiedKey>,
}

impl ApiCertificate {
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(Some(key));
    }

    pub fn is_set(&self) -> bool {
        self.current.load().is_some()
    }
}

impl ResolvesServerCert for ApiCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// The rustls server configuration: HTTP/2 and HTTP/1.1, no client certificate
/// (people and scripts authenticate with sessions and tokens).
pub fn server_config(cert: Arc<ApiCertificate>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads the operator's files into `cert` now, then again whenever either
/// file's modification time changes; a rotated pair that does not load keeps
/// the previous one and is logged.
pub fn load_files(
    cert: &ApiCertificate,
    cert_path: &PathBuf,
    key_path: &PathBuf,
) -> Result<(), TlsError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.clone(),
            source,
        })
    };
    let key = certified_key(&read(cert_path)?, &read(key_path)?, (cert_path, key_path))?;
    cert.set(key);
    Ok(())
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads rotated operator files for as long as the server runs.
pub async fn watch_files(cert: Arc<ApiCertificate>, cert_path: PathBuf, key_path: PathBuf) {
    let mut seen = (modified(&cert_path), modified(&key_path));
    loop {
        tokio::time::sleep(FILE_CHECK).await;
        let now = (modified(&cert_path), modified(&key_path));
        if now == seen {
            continue;
        }
        seen = now;
        match load_files(&cert, &cert_path, &key_path) {
            Ok(()) => {
                tracing::info!(cert = %cert_path.display(), "reloaded the API's TLS certificate")
            }
            Err(e) => tracing::error!(
                error = %yunshu_domain::error::chain(&e),
                "the rotated TLS certificate does not load; serving the previous one"
            ),
        }
    }
}

/// Issues the API's certificate from the controller CA now and again at two
/// thirds of its life, for as long as the server runs.
pub async fn issue_from_ca(
    cert: Arc<ApiCertificate>,
    pki: Arc<yunshu_drivers::DriverPki>,
    names: Vec<String>,
) {
    let origin = (
        PathBuf::from("controller CA"),
        PathBuf::from("controller CA"),
    );
    loop {
        let issued = pki
            .ca
            .issue_api_server(&names, CA_CERT_LIFE)
            .map_err(TlsError::from)
            .and_then(|k| {
                certified_key(
                    k.cert_pem.as_bytes(),
                    k.key_pem.as_bytes(),
                    (&origin.0, &origin.1),
                )
            });
        let wait = match issued {
            Ok(key) => {
                cert.set(key);
                tracing::info!(names = ?names, "the API's TLS certificate issued from the controller CA");
                CA_CERT_LIFE * 2 / 3
            }
            Err(e) => {
                tracing::error!(error = %yunshu_domain::error::chain(&e), "cannot issue the API's TLS certificate; retrying");
                Duration::from_secs(30)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// A TCP listener that hands `axum::serve` only connections whose TLS
/// handshake finished. Handshakes run concurrently so one slow client cannot
/// stall everyone else's accept.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(64);
        let accept_task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            local,
            ready,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
