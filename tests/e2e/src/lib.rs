//! Harness for end-to-end tests: an in-process controller on a loopback port with
//! its admin token, and helpers to mint tokens and start SDK drivers.

pub mod browser;
pub mod sim_cloud;
pub mod three_tier;

pub use sim_cloud::SimCloud;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use yunshu_driver_sdk::{Driver, EventLog, ServeOptions};
use yunshu_server::{ServeConfig, serve};
use yunshu_store::StoreSpec;

/// A running controller, stopped on drop.
pub struct Controller {
    pub url: String,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Controller {
    /// Starts `yunshu serve` in-process on the memory store.
    pub async fn start(driver_cert_ttl: Duration) -> Self {
        Self::start_with(driver_cert_ttl, yunshu_reconciler::Config::default()).await
    }

    /// [`Controller::start`] with a reconciler configuration (e.g. a short
    /// inventory interval, so a test sees a driver's new hosts quickly).
    pub async fn start_with(
        driver_cert_ttl: Duration,
        reconciler: yunshu_reconciler::Config,
    ) -> Self {
        Self::start_on(StoreSpec::Memory, driver_cert_ttl, reconciler).await
    }

    /// Starts `yunshu serve` in-process on `store` (redb: a file in a temp dir).
    pub async fn start_on(
        store: StoreSpec,
        driver_cert_ttl: Duration,
        reconciler: yunshu_reconciler::Config,
    ) -> Self {
        Self::start_configured(store, |config| ServeConfig {
            driver_cert_ttl,
            reconciler,
            ..config
        })
        .await
    }

    /// Starts `yunshu serve` in-process on `store` with the configuration
    /// `edit` makes of the defaults (e.g. TLS); `url` is `https://…` when it
    /// serves TLS. Ready once the driver CA is served.
    pub async fn start_configured(
        store: StoreSpec,
        edit: impl FnOnce(ServeConfig) -> ServeConfig,
    ) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = yunshu_testkit::free_port().expect("port");
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let config = edit(ServeConfig::new(listen, dir.path().to_path_buf(), store));
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serve(config, shutdown).await {
                panic!("controller failed: {e}");
            }
        });
        let url = format!("{scheme}://{listen}");
        // Readiness only: the certificate is checked by the tests that care.
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/api/v1/drivers/ca")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "controller did not come up at {url}");
        let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
            .expect("admin token file")
            .trim()
            .to_owned();
        Self {
            url,
            admin_token,
            dir,
            stop: Some(stop),
        }
    }

    /// `POST /api/v1/admin/driver-tokens`: (status, body).
    pub async fn create_token(&self, provider: &str, ttl_seconds: u64) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/admin/driver-tokens", self.url))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"provider": provider, "ttl_seconds": ttl_seconds}))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("json"))
    }

    /// Creates user `id` with one role (`role` and `scope` as in `POST
    /// /api/v1/users`) and returns an API token carrying every permission the
    /// role grants, for scripted calls with [`Controller::api`].
    pub async fn user_token(
        &self,
        id: &str,
        tenant: Option<&str>,
        role: serde_json::Value,
        scope: serde_json::Value,
    ) -> String {
        user_token_at(&self.url, &self.admin_token, id, tenant, role, scope).await
    }

    /// A JSON call to the API with a bearer token: (status, body).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        api_at(&self.url, method, path, bearer, body).await
    }

    /// Moves work order `order` to `to` as `who`; the API must accept it.
    pub async fn transition(&self, who: &str, order: &str, to: &str) {
        let (s, body) = self
            .api(
                "POST",
                &format!("/api/v1/orders/{order}/transitions"),
                who,
                Some(serde_json::json!({"to": to, "reason": "e2e"})),
            )
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }

    /// An exit order for `system`, filed by its administrator, submitted
    /// and accepted: approving it is left to the test (it times from there).
    pub async fn accepted_exit(&self, people: &People, system: &str) -> String {
        let (s, exit) = self
            .api(
                "POST",
                "/api/v1/orders",
                &people.wang,
                Some(serde_json::json!({"kind": "exit", "system": system, "note": "系统下线"})),
            )
            .await;
        assert_eq!(s, 201, "{exit}");
        let exit = exit["id"].as_str().expect("id").to_owned();
        self.transition(&people.wang, &exit, "submitted").await;
        self.transition(&people.sun, &exit, "accepted").await;
        exit
    }

    /// A new information system of the caller's tenant (minimal valid fields);
    /// returns its number.
    pub async fn create_system(&self, bearer: &str, name: &str) -> String {
        let (status, body) = self
            .api(
                "POST",
                "/api/v1/systems",
                bearer,
                Some(serde_json::json!({
                    "name": name, "system_type": "business_production",
                    "security_level": "level2", "run_schedule": "7x24",
                    "network_nature": "gov_extranet",
                    "contact": {"name": "王管理", "phone": "13800138002"},
                    "description": "端到端测试"
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["number"].as_str().expect("number").to_owned()
    }

    /// A fresh token for `provider`, valid for an hour.
    pub async fn token(&self, provider: &str) -> String {
        let (status, body) = self.create_token(provider, 3600).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `GET /api/v1/admin/drivers`.
    pub async fn drivers(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/admin/drivers", self.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    /// Waits (≤ 30 s) until the controller's health check has recorded
    /// `provider`'s driver as healthy, with what it offers: until then an
    /// approval on it is neither accepted nor refused on a guess.
    pub async fn wait_driver_healthy(&self, provider: &str) {
        let started = std::time::Instant::now();
        loop {
            let body = self.drivers().await;
            let healthy = body.as_array().is_some_and(|l| {
                l.iter().any(|d| {
                    d["provider"] == provider && d["health"].to_string().contains("healthy")
                })
            });
            if healthy {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{provider} never turned healthy: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A controller client identity from the admin API: (cert, key, ca).
    pub async fn client_identity(&self) -> (String, String, String) {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/admin/controller-certificates", self.url))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"ttl_seconds": 600}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 201);
        let body: serde_json::Value = r.json().await.expect("json");
        let field = |k: &str| body[k].as_str().expect("pem").to_owned();
        (field("certificate_pem"), field("key_pem"), field("ca_pem"))
    }

    /// `GET /api/v1/audit` (first page) and `GET /api/v1/audit/verify`, read as an
    /// auditor (the platform admin may not read the audit log).
    pub async fn audit(&self) -> (serde_json::Value, serde_json::Value) {
        let http = reqwest::Client::new();
        let auditor = serde_json::json!({
            "id": "e2e-auditor", "display_name": "审计员",
            "roles": [{"role": {"name": "auditor"}, "scope": {"type": "platform"}}]
        });
        // Created once per controller; a second call finds it already there.
        create_activated_at(&self.url, &self.admin_token, auditor, "Shenji202612").await;
        let login = http
            .post(format!("{}/api/v1/auth/login", self.url))
            .json(&serde_json::json!({"user": "e2e-auditor", "password": "Shenji202612"}))
            .send()
            .await
            .expect("login");
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let get = |path: &'static str| {
            http.get(format!("{}{path}", self.url))
                .header("cookie", cookie.clone())
                .send()
        };
        let list = get("/api/v1/audit")
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let verify = get("/api/v1/audit/verify")
            .await
            .expect("verify")
            .json()
            .await
            .expect("json");
        (list, verify)
    }

    /// The CA PEM drivers trust.
    pub async fn ca_pem(&self) -> String {
        let body: serde_json::Value = reqwest::get(format!("{}/api/v1/drivers/ca", self.url))
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        body["ca_pem"].as_str().expect("ca").to_owned()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Creates a user with `POST /api/v1/users` as `admin_token` (the body with
/// no password: the platform side sets none) and activates it with
/// `password` through its one-time code (`POST /api/v1/activate`). Returns
/// the creation's status (the activation is asserted).
pub async fn create_activated_at(
    url: &str,
    admin_token: &str,
    body: serde_json::Value,
    password: &str,
) -> u16 {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/v1/users"))
        .bearer_auth(admin_token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let created: serde_json::Value = r.json().await.unwrap_or_default();
    if let Some(code) = created["activation"]["code"].as_str() {
        let a = http
            .post(format!("{url}/api/v1/activate"))
            .json(&serde_json::json!({"code": code, "password": password}))
            .send()
            .await
            .expect("activate");
        assert_eq!(a.status().as_u16(), 200, "activate {}", body["id"]);
    }
    status
}

/// [`Controller::user_token`] against any controller at `url` (e.g. a `yunshu`
/// process) whose platform admin token is `admin_token`.
pub async fn user_token_at(
    url: &str,
    admin_token: &str,
    id: &str,
    tenant: Option<&str>,
    role: serde_json::Value,
    scope: serde_json::Value,
) -> String {
    let http = reqwest::Client::new();
    let password = "E2e-Zhengwuyun-2026";
    let body = serde_json::json!({
        "id": id, "display_name": id, "tenant": tenant,
        "roles": [{"role": role, "scope": scope}]
    });
    let status = create_activated_at(url, admin_token, body, password).await;
    assert_eq!(status, 201, "create {id}");
    let login = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"user": id, "password": password}))
        .send()
        .await
        .expect("login");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let body: serde_json::Value = login.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    let me: serde_json::Value = http
        .get(format!("{url}/api/v1/auth/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let r: serde_json::Value = http
        .post(format!("{url}/api/v1/auth/tokens"))
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"name": "e2e", "scopes": me["permissions"]}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    r["token"].as_str().expect("token").to_owned()
}

/// [`Controller::api`] against any controller at `url`. A request that gets no
/// answer at all (the controller is down) panics.
pub async fn api_at(
    url: &str,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    try_api_at(url, method, path, bearer, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}{path}: {e}"))
}

/// [`api_at`] that reports a failed connection instead of panicking (for
/// controllers that are being killed and restarted).
pub async fn try_api_at(
    url: &str,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .timeout(Duration::from_secs(30))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

/// The `yunshu` binary of this build (`target/<profile>/yunshu`, beside the
/// test executable's `deps/`). `cargo test --workspace` builds it; alone, run
/// `cargo build -p yunshu` first.
pub fn yunshu_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("yunshu"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build -p yunshu` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A real `yunshu serve` process on a fixed loopback port and data directory,
/// killed (SIGKILL) on drop. Every start appends its log (stderr) to `log`, so
/// the whole history of a restarted controller is in one file.
pub struct YunshuProcess {
    child: Option<std::process::Child>,
    pub port: u16,
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
}

impl YunshuProcess {
    /// Starts `yunshu serve --listen 127.0.0.1:<free port> --data-dir <data_dir>`
    /// with `extra` serve flags (e.g. `--store=etcd://…`). Returns at once; see
    /// [`YunshuProcess::wait_healthy`].
    pub fn start(data_dir: PathBuf, log: PathBuf, extra: &[&str]) -> Self {
        let port = yunshu_testkit::free_port().expect("port");
        let mut p = YunshuProcess {
            child: None,
            port,
            url: format!("http://127.0.0.1:{port}"),
            data_dir,
            log,
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = std::process::Command::new(yunshu_binary())
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("YUNSHU_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn yunshu");
        self.child = Some(child);
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL (no shutdown, no flush, no lease revoked) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again (same port, data directory and flags).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Waits until `/healthz` answers 200 (panics with the log after `patience`).
    pub async fn wait_healthy(&mut self, patience: Duration) {
        let url = format!("{}/healthz", self.url);
        let http = reqwest::Client::new();
        let started = std::time::Instant::now();
        while started.elapsed() < patience {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("yunshu exited with {status}; log:\n{}", self.log_text());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("yunshu did not serve {url}; log:\n{}", self.log_text());
    }

    /// The platform admin token `yunshu serve` wrote into its data directory.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-token"))
            .expect("admin token file")
            .trim()
            .to_owned()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for YunshuProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small xorshift generator for test randomness (no extra dependency); the
/// seed is printed by the tests that use it so a run can be repeated.
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from `YUNSHU_TEST_SEED` if set, else from the clock.
    pub fn from_env() -> Self {
        let seed = std::env::var("YUNSHU_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        XorShift(seed.max(1))
    }

    /// A generator starting at `seed` (0 is taken as 1).
    pub fn from_seed(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn seed(&self) -> u64 {
        self.0
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        lo + x % (hi - lo + 1)
    }
}

/// Wraps a driver and counts what its `Apply` answered, so a test can assert
/// that the driver never had to refuse (e.g. the simulator's
/// FAILED_PRECONDITION for a host without room: an overcommitting request).
pub struct CountingDriver<D> {
    pub inner: Arc<D>,
    pub applied: std::sync::atomic::AtomicU64,
    /// Applies that failed with a retryable code (UNAVAILABLE, DEADLINE_EXCEEDED,
    /// ABORTED), e.g. the simulator's injected faults.
    pub retryable: std::sync::atomic::AtomicU64,
    /// Refusals other than the retryable codes, with their messages.
    pub refused: std::sync::Mutex<Vec<String>>,
    /// Gets answered (the reconciler's resync reads state this way).
    pub got: std::sync::atomic::AtomicU64,
    /// Every accepted Apply and Delete, in order: `apply <id>` / `delete <id>`.
    pub calls: std::sync::Mutex<Vec<String>>,
    /// VMs applied and not yet asked to be deleted, and the most of them each
    /// system (`vm-<system>-…`) ever had at once.
    live: std::sync::Mutex<(
        std::collections::BTreeSet<String>,
        std::collections::BTreeMap<String, usize>,
    )>,
}

/// The system of a reconciler-made VM id `vm-<system>-<hash>-<n>`.
fn system_of(id: &str) -> Option<&str> {
    id.strip_prefix("vm-")?.split('-').next()
}

impl<D> CountingDriver<D> {
    pub fn new(inner: Arc<D>) -> Self {
        CountingDriver {
            inner,
            applied: std::sync::atomic::AtomicU64::new(0),
            retryable: std::sync::atomic::AtomicU64::new(0),
            refused: std::sync::Mutex::new(Vec::new()),
            got: std::sync::atomic::AtomicU64::new(0),
            calls: std::sync::Mutex::new(Vec::new()),
            live: std::sync::Mutex::new(Default::default()),
        }
    }

    /// The most VMs of `system` that existed (applied, no delete asked) at once.
    pub fn peak_live(&self, system: &str) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.1.get(system).copied().unwrap_or(0)
    }

    fn track(&self, id: &str, alive: bool) {
        let Some(system) = system_of(id) else {
            return;
        };
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let (ids, peaks) = &mut *live;
        if alive {
            ids.insert(id.to_owned());
        } else {
            ids.remove(id);
        }
        let prefix = format!("vm-{system}-");
        let now = ids
            .range(prefix.clone()..)
            .take_while(|i| i.starts_with(&prefix))
            .count();
        let peak = peaks.entry(system.to_owned()).or_default();
        *peak = (*peak).max(now);
    }

    /// The terminal refusals so far.
    pub fn refusals(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl<D: Driver> Driver for CountingDriver<D> {
    fn info(&self) -> yunshu_proto::v1::DriverInfo {
        self.inner.info()
    }

    async fn inventory(&self) -> Result<yunshu_proto::v1::Inventory, yunshu_proto::tonic::Status> {
        self.inner.inventory().await
    }

    async fn apply(
        &self,
        request: &yunshu_proto::v1::ApplyRequest,
    ) -> Result<yunshu_proto::v1::ResourceState, yunshu_proto::tonic::Status> {
        use yunshu_proto::tonic::Code;
        let answer = self.inner.apply(request).await;
        match &answer {
            Ok(_) => {
                self.applied
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.track(&request.id, true);
                self.calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("apply {}", request.id));
            }
            Err(s)
                if !matches!(
                    s.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Aborted
                ) =>
            {
                self.refused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{} {:?}: {}", request.id, s.code(), s.message()));
            }
            Err(_) => {
                self.retryable
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        answer
    }

    async fn get(
        &self,
        kind: yunshu_proto::v1::ResourceKind,
        id: &str,
    ) -> Result<Option<yunshu_proto::v1::ResourceState>, yunshu_proto::tonic::Status> {
        self.got.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.get(kind, id).await
    }

    async fn delete(
        &self,
        kind: yunshu_proto::v1::ResourceKind,
        id: &str,
    ) -> Result<Option<yunshu_proto::v1::ResourceState>, yunshu_proto::tonic::Status> {
        let answer = self.inner.delete(kind, id).await;
        match &answer {
            Ok(_) => {
                self.track(id, false);
                self.calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("delete {id}"));
            }
            // A delete refused because something still names the resource
            // (the simulator's RESOURCE_IN_USE) is the controller's ordering
            // mistake: counted like a refused Apply.
            Err(s) if s.code() == yunshu_proto::tonic::Code::FailedPrecondition => {
                self.refused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("delete {id} {:?}: {}", s.code(), s.message()));
            }
            Err(_) => {}
        }
        answer
    }

    async fn list(
        &self,
        kind: Option<yunshu_proto::v1::ResourceKind>,
        after: Option<(yunshu_proto::v1::ResourceKind, String)>,
        limit: usize,
    ) -> Result<Vec<yunshu_proto::v1::ResourceState>, yunshu_proto::tonic::Status> {
        self.inner.list(kind, after, limit).await
    }
}

/// Every resource of every kind `driver` lists (all pages of its `List`).
pub async fn list_all<D: Driver>(driver: &D) -> Vec<yunshu_proto::v1::ResourceState> {
    let mut out: Vec<yunshu_proto::v1::ResourceState> = Vec::new();
    loop {
        let after = out.last().map(|s| {
            (
                yunshu_proto::v1::ResourceKind::try_from(s.kind)
                    .unwrap_or(yunshu_proto::v1::ResourceKind::Unspecified),
                s.id.clone(),
            )
        });
        let page = driver.list(None, after, 1000).await.expect("list");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Every VM `driver` lists (all pages of its `List`).
pub async fn list_vms<D: Driver>(driver: &D) -> Vec<yunshu_proto::v1::ResourceState> {
    use yunshu_proto::v1::ResourceKind;
    let mut out: Vec<yunshu_proto::v1::ResourceState> = Vec::new();
    loop {
        let after = out.last().map(|v| (ResourceKind::Vm, v.id.clone()));
        let page = driver
            .list(Some(ResourceKind::Vm), after, 500)
            .await
            .expect("list");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// The in-process controller's logs, shown with a failing test's output:
/// `RUST_LOG=yunshu_server=debug,yunshu_api=debug,yunshu_reconciler=debug cargo test …` (default: warnings).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The people of a scripted onboarding: a tenant (110105) and its admin, a
/// platform reviewer and a platform approver, each with an API token.
pub struct People {
    pub tenant: String,
    pub wang: String,
    pub sun: String,
    pub zhou: String,
}

impl People {
    /// Registers the tenant and creates the three users through the API of the
    /// controller at `url` (platform admin token `admin`).
    pub async fn create(url: &str, admin: &str) -> People {
        let (s, body) = api_at(
            url,
            "POST",
            "/api/v1/tenants",
            admin,
            Some(serde_json::json!({"code": "110105", "name": "朝阳区政务服务数据管理局", "supervising_unit": "朝阳区人民政府"})),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let tenant = serde_json::json!({"type": "tenant", "tenant": "110105"});
        let platform = serde_json::json!({"type": "platform"});
        let role = |name: &str| serde_json::json!({"name": name});
        People {
            tenant: "110105".to_owned(),
            wang: user_token_at(
                url,
                admin,
                "wang",
                Some("110105"),
                role("tenant_admin"),
                tenant,
            )
            .await,
            sun: user_token_at(url, admin, "sun", None, role("reviewer"), platform.clone()).await,
            zhou: user_token_at(url, admin, "zhou", None, role("approver"), platform).await,
        }
    }

    /// A new system and an onboarding order for it with `lines` on
    /// `provider`, submitted and accepted (ready for approval): (system, order).
    pub async fn accepted_order(
        &self,
        url: &str,
        system_name: &str,
        provider: &str,
        lines: Vec<serde_json::Value>,
    ) -> (String, String) {
        self.accepted_order_with(
            url,
            system_name,
            provider,
            serde_json::json!({"lines": lines}),
        )
        .await
    }

    /// As [`Self::accepted_order`], the order carrying every field of `items`
    /// (lines, network, load balancers, volumes …).
    pub async fn accepted_order_with(
        &self,
        url: &str,
        system_name: &str,
        provider: &str,
        items: serde_json::Value,
    ) -> (String, String) {
        let (s, body) = api_at(
            url,
            "POST",
            "/api/v1/systems",
            &self.wang,
            Some(serde_json::json!({
                "name": system_name, "system_type": "business_production",
                "security_level": "level2", "run_schedule": "7x24",
                "network_nature": "gov_extranet",
                "contact": {"name": "王管理", "phone": "13800138002"},
                "description": "e2e"
            })),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let system = body["number"].as_str().expect("number").to_owned();
        let mut order = items;
        order["kind"] = serde_json::json!("onboarding");
        order["system"] = serde_json::json!(system);
        order["provider"] = serde_json::json!(provider);
        let (s, body) = api_at(url, "POST", "/api/v1/orders", &self.wang, Some(order)).await;
        assert_eq!(s, 201, "{body}");
        let order = body["id"].as_str().expect("id").to_owned();
        let path = format!("/api/v1/orders/{order}/transitions");
        for (who, to) in [(&self.wang, "submitted"), (&self.sun, "accepted")] {
            let (s, body) = api_at(
                url,
                "POST",
                &path,
                who,
                Some(serde_json::json!({"to": to, "reason": "e2e"})),
            )
            .await;
            assert_eq!(s, 200, "{to}: {body}");
        }
        (system, order)
    }

    /// The approver approves `order`.
    pub async fn approve(&self, url: &str, order: &str) {
        let (s, body) = api_at(
            url,
            "POST",
            &format!("/api/v1/orders/{order}/transitions"),
            &self.zhou,
            Some(serde_json::json!({"to": "approved", "reason": "e2e"})),
        )
        .await;
        assert_eq!(s, 200, "approve {order}: {body}");
    }

    /// The state of `order`, or `None` if the controller did not answer.
    pub async fn order_state(&self, url: &str, order: &str) -> Option<String> {
        match try_api_at(
            url,
            "GET",
            &format!("/api/v1/orders/{order}"),
            &self.wang,
            None,
        )
        .await
        {
            Ok((200, body)) => body["state"].as_str().map(str::to_owned),
            _ => None,
        }
    }
}

/// An order line of `quantity` x86_64 VMs (2 vCPU, 4 GiB, 20 GiB system disk,
/// no data disk) named `name`.
pub fn small_vm_line(name: &str, quantity: u32) -> serde_json::Value {
    serde_json::json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "x86_64", "vcpu": 2, "memory_gib": 4, "system_disk_gib": 20,
            "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 0
        },
        "quantity": quantity
    })
}

/// A driver served by the SDK in-process, stopped on drop.
pub struct RunningDriver {
    pub endpoint: String,
    pub state_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    pub handle: tokio::task::JoinHandle<Result<(), yunshu_driver_sdk::ServeError>>,
}

impl RunningDriver {
    /// Binds a loopback port and serves `driver` for `provider`, bootstrapping with
    /// `token`. Returns once the port is bound; registration happens in the task.
    pub async fn start<D: Driver>(
        driver: Arc<D>,
        events: EventLog,
        controller: &str,
        provider: &str,
        token: Option<String>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = dir.path().join("state");
        let mut running =
            Self::start_at(driver, events, controller, provider, token, state_dir).await;
        running._dir = Some(dir);
        running
    }

    /// Like [`RunningDriver::start`] with a state directory the caller keeps, so a
    /// restart can reuse it.
    pub async fn start_at<D: Driver>(
        driver: Arc<D>,
        events: EventLog,
        controller: &str,
        provider: &str,
        token: Option<String>,
        state_dir: PathBuf,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = listener.local_addr().expect("addr").to_string();
        let options = ServeOptions {
            provider: provider.to_owned(),
            controller: controller.to_owned(),
            controller_ca_pem: None,
            token,
            state_dir: state_dir.clone(),
            advertise: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(yunshu_driver_sdk::serve_listener(
            driver,
            events,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            endpoint,
            state_dir,
            _dir: None,
            stop: Some(stop),
            handle,
        }
    }
}

impl RunningDriver {
    /// A client with a controller identity from `controller`, as the controller
    /// itself dials drivers. Retries briefly: the driver registers before it serves.
    pub async fn client(
        &self,
        controller: &Controller,
        provider: &str,
    ) -> yunshu_proto::v1::driver_client::DriverClient<yunshu_proto::tonic::transport::Channel>
    {
        use yunshu_proto::tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let (cert, key, ca) = controller.client_identity().await;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .identity(Identity::from_pem(&cert, &key))
            .domain_name(yunshu_pki::driver_dns_name(provider));
        let endpoint = Endpoint::from_shared(format!("https://{}", self.endpoint))
            .expect("endpoint")
            .tls_config(tls)
            .expect("tls");
        for _ in 0..100 {
            if let Ok(channel) = endpoint.connect().await {
                return yunshu_proto::v1::driver_client::DriverClient::new(channel);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("driver {provider} never served at {}", self.endpoint);
    }
}

impl Drop for RunningDriver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Dials a driver over mTLS with the given identity (`None`: no client
/// certificate) and trust anchor, and calls `GetInfo` (TLS 1.3 client
/// certificates are checked after the handshake, so only a call proves access).
pub async fn get_info(
    endpoint: &str,
    provider: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<yunshu_proto::v1::DriverInfo, String> {
    use yunshu_proto::tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(yunshu_pki::driver_dns_name(provider));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{endpoint}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = yunshu_proto::v1::driver_client::DriverClient::new(channel);
    client
        .get_info(yunshu_proto::v1::GetInfoRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("GetInfo: {s:?}"))
}

/// Waits until `cond` holds, polling every 100 ms, up to `patience`.
pub async fn eventually<F, Fut>(patience: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < patience {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Every VM the driver holds, all pages, asked over gRPC + mTLS (what the
/// controller sees; [`list_vms`] asks an in-process driver directly).
pub async fn list_vms_grpc(
    client: &mut yunshu_proto::v1::driver_client::DriverClient<
        yunshu_proto::tonic::transport::Channel,
    >,
) -> Vec<yunshu_proto::v1::ResourceState> {
    use yunshu_proto::v1;
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list(v1::ListRequest {
                kind: v1::ResourceKind::Vm as i32,
                page_size: 1000,
                page_token: token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        out.extend(page.items);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}
