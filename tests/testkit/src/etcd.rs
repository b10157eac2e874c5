//! A real single-member etcd (Debian `etcd-server`) on loopback ephemeral ports with
//! a temporary data directory.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

const INSTALL_HINT: &str = "etcd is not installed: run `apt-get install -y etcd-server` \
     (the README's test command installs it), or set YUNSHU_ETCD_BIN to an etcd binary";

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{INSTALL_HINT} (looked for {0})")]
    NotInstalled(PathBuf),
    #[error("cannot create a temporary data directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot start {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd did not become ready within {waited:?}; its log:\n{log}")]
    NotReady { waited: Duration, log: String },
}

/// A running etcd. Killed (and its data removed) on drop.
pub struct EtcdServer {
    child: Child,
    client_port: u16,
    _data: tempfile::TempDir,
    log_path: PathBuf,
}

impl EtcdServer {
    /// Starts etcd and waits until it serves clients.
    ///
    /// Heartbeat and election timeouts are shortened so that the minimum lease TTL
    /// is one second (etcd's is 1.5 × election timeout), which keeps lease tests
    /// fast.
    pub fn start() -> Result<Self, EtcdError> {
        let binary = etcd_binary()?;
        let mut last = None;
        // Ports are picked then bound by etcd: another process may win the race, so
        // try a few times.
        for _ in 0..5 {
            match Self::try_start(&binary, None) {
                Ok(server) => return Ok(server),
                Err(e @ EtcdError::NotReady { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(EtcdError::NotReady {
            waited: Duration::ZERO,
            log: String::new(),
        }))
    }

    /// Starts etcd serving clients on `client_port` (tests of a client that was
    /// configured before etcd came up).
    pub fn start_on(client_port: u16) -> Result<Self, EtcdError> {
        let binary = etcd_binary()?;
        Self::try_start(&binary, Some(client_port))
    }

    fn try_start(binary: &PathBuf, client_port: Option<u16>) -> Result<Self, EtcdError> {
        let data = tempfile::Builder::new()
            .prefix("yunshu-etcd-")
            .tempdir()
            .map_err(EtcdError::TempDir)?;
        let client_port = match client_port {
            Some(p) => p,
            None => free_port().map_err(EtcdError::TempDir)?,
        };
        let peer_port = free_port().map_err(EtcdError::TempDir)?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log_path = data.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(EtcdError::TempDir)?;
        let log_err = log.try_clone().map_err(EtcdError::TempDir)?;
        let child = Command::new(binary)
            .arg("--name=yunshu-test")
            .arg(format!("--data-dir={}", data.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=yunshu-test={peer_url}"))
            .arg("--initial-cluster-state=new")
            .arg("--heartbeat-interval=10")
            .arg("--election-timeout=100")
            .arg("--log-level=warn")
            // Tests write small values; a small backend keeps the temp dir small.
            .arg("--quota-backend-bytes=268435456")
            .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| EtcdError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let mut server = Self {
            child,
            client_port,
            _data: data,
            log_path,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    fn wait_ready(&mut self, patience: Duration) -> Result<(), EtcdError> {
        let started = Instant::now();
        while started.elapsed() < patience {
            if let Ok(Some(_)) = self.child.try_wait() {
                break; // exited: port taken or bad flags
            }
            if self.health_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(EtcdError::NotReady {
            waited: started.elapsed(),
            log: std::fs::read_to_string(&self.log_path).unwrap_or_default(),
        })
    }

    /// etcd's `/health` says `"health":"true"` once it has a leader.
    fn health_ok(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if std::io::Write::write_all(&mut stream, request.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    /// `127.0.0.1:port`, as `--store etcd://…` wants it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Kills the server now (tests of an etcd outage).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_binary() -> Result<PathBuf, EtcdError> {
    let binary = std::env::var_os("YUNSHU_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    if binary.exists() {
        Ok(binary)
    } else {
        Err(EtcdError::NotInstalled(binary))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}
