//! Serving a driver: bind, obtain credentials (saved ones, or bootstrap with a
//! token), serve gRPC over mutual TLS, renew the certificate before it expires
//! without closing the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use yunshu_proto::tonic::transport::Server;

use crate::bootstrap::{self, BootstrapError, Credentials, now_unix};
use crate::driver::Driver;
use crate::events::EventLog;
use crate::service::DriverService;
use crate::tls::{self, SwappableCert, TlsError};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The provider this driver serves (a DNS label: `[a-z0-9-]`).
    pub provider: String,
    /// The controller's HTTP API, e.g. `https://yunshu.example.gov.cn` (plain
    /// `http://` only on a loopback address).
    pub controller: String,
    /// PEM of the operator's CA when the API's certificate does not come from
    /// the controller CA (`yunshu serve --tls-cert`).
    pub controller_ca_pem: Option<String>,
    /// One-time bootstrap token; needed only when `state_dir` holds no credentials.
    pub token: Option<String>,
    /// Where credentials are kept across restarts.
    pub state_dir: PathBuf,
    /// `host:port` the controller should dial; default: the bound address.
    pub advertise: Option<String>,
}

/// Reads the `--controller-ca` file a driver binary was given, if any.
pub fn read_controller_ca(path: Option<&std::path::Path>) -> Result<Option<String>, String> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("reading --controller-ca {}: {e}", path.display()))
    })
    .transpose()
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen")]
    Bind(#[source] std::io::Error),
    #[error("bootstrap failed")]
    Bootstrap(#[from] BootstrapError),
    #[error(
        "no credentials in {0} and no bootstrap token: create one with `yunshu driver-token create --provider NAME`"
    )]
    NoCredentials(PathBuf),
    #[error("saved credentials are for provider {saved:?}, not {wanted:?}")]
    ProviderMismatch { saved: String, wanted: String },
    #[error("TLS set-up failed")]
    Tls(#[from] TlsError),
    #[error("the gRPC server failed")]
    Serve(#[source] yunshu_proto::tonic::transport::Error),
}

/// Binds `listen` and serves until `shutdown`.
pub async fn serve<D: Driver>(
    driver: Arc<D>,
    events: EventLog,
    listen: SocketAddr,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(listen).await.map_err(ServeError::Bind)?;
    serve_listener(driver, events, listener, options, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and read the port).
pub async fn serve_listener<D: Driver>(
    driver: Arc<D>,
    events: EventLog,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr().map_err(ServeError::Bind)?;
    let endpoint = options
        .advertise
        .clone()
        .unwrap_or_else(|| local.to_string());
    let controller =
        bootstrap::Controller::new(&options.controller, options.controller_ca_pem.as_deref())?;
    let credentials = obtain_credentials(&controller, &options, &endpoint).await?;
    tracing::info!(
        provider = %options.provider,
        %endpoint,
        not_after_unix = credentials.not_after_unix,
        "driver identity ready"
    );
    let cert = SwappableCert::new(tls::certified_key(
        &credentials.cert_pem,
        &credentials.key_pem,
    )?);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(
        &credentials.ca_pem,
        cert.clone(),
    )?));

    let renewal = tokio::spawn(renew_forever(
        controller,
        options.clone(),
        endpoint.clone(),
        credentials,
        cert,
    ));

    let (tx, rx) = mpsc::channel(64);
    let accept = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Small request/response frames: without TCP_NODELAY, Nagle and delayed
            // ACKs add ~40 ms to every call.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            // Handshakes run concurrently so a slow or hostile client cannot stall
            // everyone else's.
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });

    tracing::info!(provider = %options.provider, %local, "driver serving gRPC with mutual TLS");
    let service = DriverService::new(driver, events, options.provider.clone()).into_server();
    let result = Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
        .await;
    accept.abort();
    renewal.abort();
    result.map_err(ServeError::Serve)
}

async fn obtain_credentials(
    controller: &bootstrap::Controller,
    options: &ServeOptions,
    endpoint: &str,
) -> Result<Credentials, ServeError> {
    if let Some(saved) = Credentials::load(&options.state_dir)? {
        if saved.provider != options.provider {
            return Err(ServeError::ProviderMismatch {
                saved: saved.provider,
                wanted: options.provider.clone(),
            });
        }
        if saved.not_after_unix > now_unix() {
            // Renew at once so the registry learns a moved endpoint; if the
            // controller is away, the saved certificate still serves.
            match bootstrap::renew(controller, &saved, endpoint).await {
                Ok(fresh) => {
                    fresh.save(&options.state_dir)?;
                    return Ok(fresh);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewal at start-up failed; serving the saved certificate");
                    return Ok(saved);
                }
            }
        }
        tracing::warn!("saved certificate has expired; a new bootstrap token is needed");
    }
    let token = options
        .token
        .as_deref()
        .ok_or_else(|| ServeError::NoCredentials(options.state_dir.clone()))?;
    let fresh = bootstrap::register(controller, token, &options.provider, endpoint).await?;
    fresh.save(&options.state_dir)?;
    Ok(fresh)
}

/// Renews two thirds into each certificate's life; retries with backoff until it
/// works or the certificate expires.
async fn renew_forever(
    controller: bootstrap::Controller,
    options: ServeOptions,
    endpoint: String,
    mut current: Credentials,
    cert: Arc<SwappableCert>,
) {
    loop {
        let wait = (current.renew_at_unix() - now_unix()).max(0) as u64;
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let mut backoff = Duration::from_secs(1);
        loop {
            match bootstrap::renew(&controller, &current, &endpoint).await {
                Ok(fresh) => {
                    match tls::certified_key(&fresh.cert_pem, &fresh.key_pem) {
                        Ok(key) => cert.swap(key),
                        Err(e) => {
                            tracing::error!(error = %e, "renewed certificate unusable; keeping the old one");
                            break;
                        }
                    }
                    if let Err(e) = fresh.save(&options.state_dir) {
                        tracing::error!(error = %e, "cannot save renewed credentials");
                    }
                    tracing::info!(not_after_unix = fresh.not_after_unix, "certificate renewed");
                    current = fresh;
                    break;
                }
                Err(e) => {
                    let left = current.not_after_unix - now_unix();
                    tracing::warn!(error = %e, seconds_left = left, "certificate renewal failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}
