//! `yunshu serve`: open the store, start the readiness monitor, serve HTTP until
//! told to stop, then drain in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use yunshu_api::AppState;
use yunshu_api::metrics::BuildLabels;
use yunshu_store::{StoreError, StoreSpec, open_store};

use crate::readiness;

/// Everything `yunshu serve` is told on its command line.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreSpec,
    /// Seed a demo tenant, system and provider topology (idempotent).
    pub demo: bool,
    /// Platform admin bearer token file; created (mode 0600) if missing.
    /// Default: `<data-dir>/admin-token`.
    pub admin_token_file: Option<PathBuf>,
    /// Lifetime of driver certificates.
    pub driver_cert_ttl: std::time::Duration,
    /// How the reconciler runs on the leader (the CLI uses the default; tests
    /// shorten the intervals).
    pub reconciler: yunshu_reconciler::Config,
    /// The portal's browser bundle (`<dir>/pkg/…`, from `yunshu-portal-build`);
    /// `None`: [`yunshu_portal::server::default_assets_dir`].
    pub portal_assets: Option<PathBuf>,
    /// The sign-in rate limit reads the client from `X-Forwarded-For`
    /// (behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Serve the API over TLS (issue 16 item 5); `None`: plain HTTP, which
    /// drivers accept only on a loopback address.
    pub tls: Option<crate::tls::TlsSource>,
    /// Mark the session cookie `Secure` with the `__Host-` prefix although
    /// this process serves plain HTTP: TLS ends at a proxy in front. Implied
    /// by `tls`.
    pub secure_cookies: bool,
    /// The store key that seals the driver CA's private key in the store
    /// (issue 16 item 6); `None`: the key is stored in clear (a warning).
    pub store_key: Option<yunshu_pki::envelope::MasterKey>,
    /// The bearer token Prometheus presents for `/metrics` (a file, like the
    /// admin token's); `None`: only signed-in callers who may see capacity.
    pub metrics_token_file: Option<PathBuf>,
}

impl ServeConfig {
    /// Defaults for everything but where to listen, where the data lives and
    /// which store: no demo, the admin token in the data directory, one-day
    /// driver certificates, plain HTTP. Callers set what they need with
    /// `ServeConfig { field, ..ServeConfig::new(…) }`, so a new option does
    /// not touch every caller.
    pub fn new(listen: SocketAddr, data_dir: PathBuf, store: StoreSpec) -> Self {
        Self {
            listen,
            data_dir,
            store,
            demo: false,
            admin_token_file: None,
            driver_cert_ttl: std::time::Duration::from_secs(86_400),
            reconciler: yunshu_reconciler::Config::default(),
            portal_assets: None,
            trust_forwarded_for: false,
            tls: None,
            secure_cookies: false,
            store_key: None,
            metrics_token_file: None,
        }
    }
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
    #[error("the driver CA cannot be used with the store key given")]
    StoreKey(#[source] yunshu_drivers::DriversError),
    #[error("cannot read the metrics token from {path} (or it is empty)")]
    MetricsToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve TLS")]
    Tls(#[from] crate::tls::TlsError),
    #[error(
        "the admin token in {path} is not this installation's (the store knows another): supply the installation's token file (e.g. the Kubernetes Secret of the chart's adminToken.existingSecret); a token is never minted twice"
    )]
    AdminTokenMismatch { path: PathBuf },
    #[error(
        "--demo listens only on a loopback address (127.0.0.1, ::1), not {addr}: its accounts have a published password"
    )]
    DemoNotLoopback { addr: SocketAddr },
    #[error(transparent)]
    Demo(yunshu_workflow::demo::DemoError),
    #[error("cannot read or create the admin token file {path}")]
    AdminToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the admin token file, or creates it with a fresh random token (0600).
/// Where the installation's admin token hash is kept: every replica, and a
/// restart on a fresh volume, must present the same token (issue 16 item 15).
const ADMIN_TOKEN_HASH_KEY: &str = "admin/token-sha256";

/// Pins the admin token to the store: the first start records its hash; a
/// later start with another token (a replica that minted its own, a fresh
/// volume) is refused instead of silently creating a second credential. A
/// token this start minted (`minted`) and that the store does not know is
/// removed again, so the operator supplies the real one.
async fn pin_admin_token(
    store: &dyn yunshu_store::Store,
    token: &str,
    token_path: &std::path::Path,
    minted: bool,
) -> Result<(), ServeError> {
    let hash = yunshu_pki::sha256_hex(token.as_bytes());
    let stored = store
        .get(ADMIN_TOKEN_HASH_KEY)
        .await
        .map_err(ServeError::OpenStore)?;
    match stored {
        Some(kv) if kv.value == hash.as_bytes() => Ok(()),
        Some(_) => {
            if minted {
                let _ = std::fs::remove_file(token_path);
            }
            Err(ServeError::AdminTokenMismatch {
                path: token_path.to_path_buf(),
            })
        }
        None => {
            let txn = yunshu_store::Txn::new()
                .when_mod_revision(ADMIN_TOKEN_HASH_KEY, 0)
                .put(ADMIN_TOKEN_HASH_KEY, hash.into_bytes());
            match store.txn(txn).await.map_err(ServeError::OpenStore)? {
                yunshu_store::TxnOutcome::Committed { .. } => {
                    tracing::info!(
                        "recorded the installation's admin token (its hash) in the store"
                    );
                    Ok(())
                }
                // Another replica pinned its token first: check against it.
                yunshu_store::TxnOutcome::Conflict => {
                    Box::pin(pin_admin_token(store, token, token_path, minted)).await
                }
            }
        }
    }
}

/// The admin token from `path`, or a new one written there; whether it was
/// minted now.
fn admin_token(path: &std::path::Path) -> Result<(String, bool), ServeError> {
    let fail = |source| ServeError::AdminToken {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => return Ok((token.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let token = yunshu_pki::random_hex(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes()).map_err(fail)?;
    tracing::info!(path = %path.display(), "created the platform admin token file");
    Ok((token, true))
}

/// Loads the driver PKI once the store answers, then checks drivers forever.
/// A store key that cannot open the CA is sent to `fatal` (the server stops):
/// retrying cannot help.
async fn start_drivers(
    state: AppState,
    cert_ttl: std::time::Duration,
    reconciler: yunshu_reconciler::Config,
    store_key: Option<yunshu_pki::envelope::MasterKey>,
    fatal: tokio::sync::oneshot::Sender<yunshu_drivers::DriversError>,
) {
    let mut delay = std::time::Duration::from_millis(100);
    let pki = loop {
        if state.readiness.status().ready {
            match yunshu_drivers::DriverPki::load(&*state.store, cert_ttl, store_key.as_ref()).await
            {
                Ok(pki) => break std::sync::Arc::new(pki),
                Err(e) if e.is_fatal() => {
                    let _ = fatal.send(e);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %yunshu_domain::error::chain(&e), "cannot load the driver CA yet")
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    };
    let _ = state.pki.set(pki.clone());
    tokio::join!(
        yunshu_reconciler::health::run(
            state.store.clone(),
            pki.clone(),
            state.driver_changed.clone()
        ),
        lead(
            state.store.clone(),
            pki,
            reconciler,
            state.capacity.clone(),
            state.resync.clone(),
        ),
    );
}

/// The election key of the controller's leader.
const LEADER_KEY: &str = "leader/controller";

/// Campaigns for leadership; while this replica leads, runs the reconciler and
/// the workflow timers, and stops them the moment it does not (every replica
/// serves the API). With redb there is one replica and it leads at once.
async fn lead(
    store: std::sync::Arc<dyn yunshu_store::Store>,
    pki: std::sync::Arc<yunshu_drivers::DriverPki>,
    config: yunshu_reconciler::Config,
    capacity: yunshu_workflow::capacity::SharedSnapshot,
    resync: std::sync::Arc<tokio::sync::Notify>,
) {
    use yunshu_store::election::{DEFAULT_TTL, Election};
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "yunshu".to_owned());
    // Unique per live replica (the election relies on it).
    let candidate = format!("{host}-{}", yunshu_pki::random_hex(4));
    let election = Election::new(store.clone(), LEADER_KEY, candidate, DEFAULT_TTL);
    let mut leadership = election.leadership();
    // The term the running tasks were started for, and the tasks.
    let mut running: Option<(yunshu_store::Revision, [tokio::task::JoinHandle<()>; 2])> = None;
    loop {
        let term = leadership.borrow_and_update().term();
        let current = running.as_ref().map(|(t, _)| *t);
        if current.is_some() && current != term {
            tracing::warn!("leadership lost: stopping the reconciler and timers");
            if let Some((_, tasks)) = running.take() {
                for task in tasks {
                    task.abort();
                }
            }
            // The figures stay readable but say they are no longer kept.
            yunshu_workflow::capacity::mark_follower(&capacity);
        }
        if let (Some(term), None) = (term, &running) {
            tracing::info!(
                term,
                "this replica leads: starting the reconciler and timers"
            );
            // Every write of this term's tasks is fenced on the election key:
            // once another replica wins, they change nothing.
            let fenced: std::sync::Arc<dyn yunshu_store::Store> = std::sync::Arc::new(
                yunshu_store::fenced::Fenced::new(store.clone(), LEADER_KEY, term),
            );
            running = Some((
                term,
                [
                    tokio::spawn(yunshu_reconciler::run(
                        fenced.clone(),
                        pki.clone(),
                        config.clone(),
                        capacity.clone(),
                        resync.clone(),
                    )),
                    // Overdue steps and usage periods are checked each minute:
                    // deadlines fall at 24:00 China Standard Time, so a minute's
                    // delay is far inside any limit.
                    tokio::spawn(yunshu_workflow::timers::run(
                        fenced,
                        yunshu_workflow::Clock::System,
                        std::time::Duration::from_secs(60),
                    )),
                ],
            ));
        }
        if leadership.changed().await.is_err() {
            break;
        }
    }
    if let Some((_, tasks)) = running.take() {
        for task in tasks {
            task.abort();
        }
    }
}

/// Serves until `shutdown` completes. Returns once in-flight requests are done.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    tune_allocator();
    // The demo's six accounts share a published password: never on an address
    // others can reach (issue 16 item 14).
    if config.demo && !config.listen.ip().is_loopback() {
        return Err(ServeError::DemoNotLoopback {
            addr: config.listen,
        });
    }
    let store = open_store(&config.store, &config.data_dir)
        .await
        .map_err(ServeError::OpenStore)?;
    let token_path = config
        .admin_token_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("admin-token"));
    let (token, minted) = admin_token(&token_path)?;
    let mut state = AppState::new(
        store.clone(),
        Some(yunshu_pki::sha256_hex(token.as_bytes())),
    );
    state.trust_forwarded_for = config.trust_forwarded_for;
    state.secure_cookies = config.secure_cookies || config.tls.is_some();
    if let Some(path) = &config.metrics_token_file {
        state.metrics_token_sha256 = Some(metrics_token_hash(path)?);
    }
    state
        .metrics
        .build_info
        .get_or_create(&BuildLabels {
            version: crate::VERSION.to_owned(),
            store: store.backend().to_owned(),
        })
        .set(1);
    let first = readiness::probe(&state.readiness, &*store).await;
    if first.ready {
        pin_admin_token(&*store, &token, &token_path, minted).await?;
    } else {
        tracing::warn!(
            "the store is not answering: the admin token is not checked against the installation's"
        );
    }
    if first.ready {
        // A store key that does not fit the stored CA stops the start here,
        // before the port opens; this also seals a CA key found in clear.
        if let Err(e) = yunshu_drivers::ca::load_or_create(&*store, config.store_key.as_ref()).await
            && e.is_fatal()
        {
            return Err(ServeError::StoreKey(e));
        }
    }
    if !first.ready {
        tracing::warn!(
            store = store.backend(),
            reason = first.reason.as_deref().unwrap_or(""),
            "store unavailable at start-up; /readyz reports 503 until it answers"
        );
    }
    if config.demo && first.ready {
        // A store that answers now is checked now: a refusal stops the start.
        yunshu_workflow::demo::check_store(&*store)
            .await
            .map_err(ServeError::Demo)?;
    }
    if config.demo {
        let store = store.clone();
        let readiness = state.readiness.clone();
        tokio::spawn(async move { crate::demo::seed_when_ready(&*store, &readiness).await });
    }
    let monitor = tokio::spawn(readiness::monitor(state.readiness.clone(), store.clone()));
    let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel();
    let drivers = tokio::spawn(start_drivers(
        state.clone(),
        config.driver_cert_ttl,
        config.reconciler.clone(),
        config.store_key.clone(),
        fatal_tx,
    ));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        %addr,
        store = store.backend(),
        data_dir = %config.data_dir.display(),
        demo = config.demo,
        "yunshu {} serving on {scheme}://{addr}",
        crate::VERSION
    );
    let assets = config
        .portal_assets
        .clone()
        .unwrap_or_else(yunshu_portal::server::default_assets_dir);
    let stopping = state.stopping.clone();
    // The store key refused after start-up (the store was down then) stops
    // the server like a signal, and is its error.
    let fatal = std::sync::Arc::new(std::sync::Mutex::new(None));
    let fatal_slot = fatal.clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            Ok(e) = fatal_rx => {
                if let Ok(mut slot) = fatal_slot.lock() {
                    *slot = Some(e);
                }
            }
        }
        stopping.send_replace(true);
    };
    let certificate_task = match &config.tls {
        Some(source) => Some(start_certificate(source, &state)?),
        None => None,
    };
    // The peer's address reaches handlers (the sign-in rate limit).
    let app = yunshu_api::router_with_portal(state.clone(), &assets)
        .into_make_service_with_connect_info::<SocketAddr>();
    let result = match certificate_task {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some((certificate, task)) => {
            use axum::serve::ListenerExt;
            let config = crate::tls::server_config(certificate)?;
            let listener = crate::tls::TlsListener::new(listener, config)
                .map_err(ServeError::Serve)?
                // `tap_io` gives the listener axum's connect-info for its address.
                .tap_io(|_| {});
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
            task.abort();
            served
        }
    };
    monitor.abort();
    drivers.abort();
    if let Some(e) = fatal.lock().ok().and_then(|mut slot| slot.take()) {
        return Err(ServeError::StoreKey(e));
    }
    result.map_err(ServeError::Serve)?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// SHA-256 of the metrics scrape token in `path`; an empty file is refused
/// rather than letting an empty bearer through.
fn metrics_token_hash(path: &std::path::Path) -> Result<String, ServeError> {
    let fail = |source| ServeError::MetricsToken {
        path: path.to_path_buf(),
        source,
    };
    let token = std::fs::read_to_string(path).map_err(fail)?;
    let token = token.trim();
    if token.is_empty() {
        return Err(fail(std::io::Error::from(std::io::ErrorKind::InvalidData)));
    }
    Ok(yunshu_pki::sha256_hex(token.as_bytes()))
}

/// Loads or issues the API's certificate and keeps it current: operator files
/// are read now (a start with unusable files fails) and re-read when rotated;
/// a certificate from the controller CA is issued as soon as the CA loads.
fn start_certificate(
    source: &crate::tls::TlsSource,
    state: &AppState,
) -> Result<
    (
        std::sync::Arc<crate::tls::ApiCertificate>,
        tokio::task::JoinHandle<()>,
    ),
    ServeError,
> {
    use crate::tls::{ApiCertificate, TlsSource};
    let certificate = std::sync::Arc::new(ApiCertificate::default());
    let task = match source.clone() {
        TlsSource::Files { cert, key } => {
            crate::tls::load_files(&certificate, &cert, &key)?;
            tokio::spawn(crate::tls::watch_files(certificate.clone(), cert, key))
        }
        TlsSource::ControllerCa { names } => {
            // Refuse bad names at start, not on the first handshake.
            yunshu_pki::check_api_names(&names).map_err(crate::tls::TlsError::from)?;
            let pki = state.pki.clone();
            let certificate = certificate.clone();
            tokio::spawn(async move {
                let pki = loop {
                    if let Some(pki) = pki.get() {
                        break pki.clone();
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                };
                crate::tls::issue_from_ca(certificate, pki, names).await;
            })
        }
    };
    Ok((certificate, task))
}

/// Makes glibc return large freed blocks to the system. Its default mmap
/// threshold rises to the largest block freed (up to 32 MiB), so after the
/// first sign-ins every 19 MiB argon2 buffer came from the heap and stayed in
/// one of many per-thread arenas: the server sat at 119 MiB after three
/// sign-ins and reached 306 MiB under a sign-in flood; with the threshold
/// fixed at 128 KiB, 24 MiB and 76 MiB (`yunshu-bench -- login-flood`).
/// The one `unsafe` of the server: a C call with no pointer in it.
#[allow(unsafe_code)]
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; any value is safe.
        let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security issue item 14: `--demo` refuses a non-loopback listen address
    /// before it opens anything.
    #[tokio::test]
    async fn demo_refuses_a_non_loopback_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ServeConfig {
            demo: true,
            ..ServeConfig::new(
                "0.0.0.0:0".parse().expect("addr"),
                dir.path().to_path_buf(),
                StoreSpec::Memory,
            )
        };
        let refused = serve(config, async {}).await.expect_err("not loopback");
        assert!(
            matches!(refused, ServeError::DemoNotLoopback { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("loopback"));
        assert!(
            !dir.path().join("admin-token").exists(),
            "refused before anything was written"
        );
    }

    /// Security issue item 15: one admin credential per installation. The
    /// first start pins its token's hash in the store; a start with another
    /// token file — or one that would mint a new token because the file is
    /// gone (a fresh volume, a second replica) — is refused, and a minted
    /// file is removed again.
    #[tokio::test]
    async fn one_admin_token_per_installation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = yunshu_store::RedbStore::in_memory().expect("store");
        let path = dir.path().join("admin-token");
        let (token, minted) = admin_token(&path).expect("mint");
        assert!(minted);
        pin_admin_token(&store, &token, &path, minted)
            .await
            .expect("first start pins");
        let (again, minted) = admin_token(&path).expect("read");
        assert!(!minted);
        pin_admin_token(&store, &again, &path, minted)
            .await
            .expect("same token");
        // A fresh volume: the file is gone, a new one would be minted.
        std::fs::remove_file(&path).expect("rm");
        let (other, minted) = admin_token(&path).expect("mint another");
        let refused = pin_admin_token(&store, &other, &path, minted)
            .await
            .expect_err("another token");
        assert!(
            matches!(refused, ServeError::AdminTokenMismatch { .. }),
            "{refused}"
        );
        assert!(!path.exists(), "the minted file is removed again");
        // An operator-supplied file with another token: refused, left alone.
        std::fs::write(&path, "not-the-installations-token\n").expect("write");
        let (supplied, minted) = admin_token(&path).expect("read");
        assert!(
            pin_admin_token(&store, &supplied, &path, minted)
                .await
                .is_err()
        );
        assert!(path.exists());
    }

    /// Issue 16 item 6: a start with a store key seals the driver CA key; a
    /// later start without the key or with another one is refused before the
    /// port opens, naming the fix; the right key starts again.
    #[tokio::test]
    async fn a_sealed_ca_refuses_a_start_without_or_with_another_store_key() {
        use yunshu_pki::envelope::MasterKey;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = MasterKey::generate();
        let start = |store_key: Option<MasterKey>| ServeConfig {
            store_key,
            ..ServeConfig::new(
                "127.0.0.1:0".parse().expect("addr"),
                dir.path().to_path_buf(),
                StoreSpec::Redb,
            )
        };
        // The previous start's tasks let go of the redb file a moment after
        // `serve` returns: a start that finds it locked tries again.
        let run = |config: ServeConfig| async move {
            for _ in 0..100 {
                match serve(config.clone(), async {}).await {
                    Err(ServeError::OpenStore(StoreError::Locked { .. })) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await
                    }
                    other => return other,
                }
            }
            serve(config, async {}).await
        };
        run(start(Some(key.clone())))
            .await
            .expect("a start with a store key");
        for (store_key, says) in [
            (None, "YUNSHU_STORE_KEY"),
            (Some(MasterKey::generate()), "--store-key-file"),
        ] {
            let refused = run(start(store_key)).await.expect_err("refused");
            assert!(matches!(refused, ServeError::StoreKey(_)), "{refused}");
            let chain = yunshu_domain::error::chain(&refused);
            assert!(chain.contains(says), "{chain}");
        }
        run(start(Some(key)))
            .await
            .expect("the right key starts again");
        let path = dir.path().join(yunshu_store::REDB_FILE);
        let mut opened = yunshu_store::RedbStore::open(&path, Default::default());
        for _ in 0..100 {
            if !matches!(opened, Err(StoreError::Locked { .. })) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            opened = yunshu_store::RedbStore::open(&path, Default::default());
        }
        let store = opened.expect("open the store file");
        let raw = yunshu_store::Store::get(&store, "driver_ca/default")
            .await
            .expect("get")
            .expect("the CA");
        assert!(!String::from_utf8_lossy(&raw.value).contains("PRIVATE KEY"));
    }
}
