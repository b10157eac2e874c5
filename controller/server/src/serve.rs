//! `yunshu serve`: open the store, start the readiness monitor, serve HTTP until
//! told to stop, then drain in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use yunshu_store::{StoreError, StoreSpec, open_store};

use crate::AppState;
use crate::metrics::BuildLabels;

/// Everything `yunshu serve` is told on its command line.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreSpec,
    /// Seed a demo tenant, system and provider topology (idempotent).
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the store")]
    OpenStore(#[source] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// Serves until `shutdown` completes. Returns once in-flight requests are done.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = open_store(&config.store, &config.data_dir)
        .await
        .map_err(ServeError::OpenStore)?;
    let state = AppState::new(store.clone());
    state
        .metrics
        .build_info
        .get_or_create(&BuildLabels {
            version: crate::VERSION.to_owned(),
            store: store.backend().to_owned(),
        })
        .set(1);
    let first = state.readiness.probe(&*store).await;
    if !first.ready {
        tracing::warn!(
            store = store.backend(),
            reason = first.reason.as_deref().unwrap_or(""),
            "store unavailable at start-up; /readyz reports 503 until it answers"
        );
    }
    if config.demo {
        let store = store.clone();
        let readiness = state.readiness.clone();
        tokio::spawn(async move { crate::demo::seed_when_ready(&*store, &readiness).await });
    }
    let monitor = tokio::spawn(state.readiness.clone().monitor(store.clone()));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(
        %addr,
        store = store.backend(),
        data_dir = %config.data_dir.display(),
        demo = config.demo,
        "yunshu {} serving on http://{addr}",
        crate::VERSION
    );
    let result = axum::serve(listener, crate::api::router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    monitor.abort();
    result.map_err(ServeError::Serve)?;
    tracing::info!("stopped cleanly");
    Ok(())
}
