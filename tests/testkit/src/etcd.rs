//! A real single-member etcd (Debian `etcd-server`) on loopback ephemeral ports with
//! a temporary data directory; optionally over TLS with client certificates
//! required ([`EtcdServer::start_tls`]) and with etcd users
//! ([`EtcdServer::enable_auth`]).

use std::ffi::{OsStr, OsString};
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
    #[error("cannot make the test certificates")]
    Certificates(#[source] rcgen::Error),
    #[error("cannot enable authentication")]
    Auth(#[source] etcd_client::Error),
}

/// The TLS material of a TLS etcd, as PEM files in its temporary directory.
#[derive(Debug, Clone)]
pub struct EtcdTlsFiles {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A client certificate (CN `yunshu-test-client`, not an etcd user name, so
    /// that it alone authenticates no one) and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from another CA, which etcd must refuse.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
}

/// A running etcd. Killed (and its data removed) on drop.
pub struct EtcdServer {
    child: Child,
    /// How it was started, for [`EtcdServer::restart`].
    binary: PathBuf,
    args: Vec<OsString>,
    client_port: u16,
    /// Where `/health` answers over plain HTTP (the client port may be TLS).
    health_port: u16,
    tls: Option<EtcdTlsFiles>,
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
            match Self::try_start(&binary, None, false) {
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

    /// Starts etcd serving clients over TLS only (`https://`), requiring a
    /// client certificate from [`EtcdServer::tls`]'s CA (`--client-cert-auth`).
    pub fn start_tls() -> Result<Self, EtcdError> {
        let binary = etcd_binary()?;
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(&binary, None, true) {
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

    /// The TLS files of a server from [`EtcdServer::start_tls`].
    pub fn tls(&self) -> Option<&EtcdTlsFiles> {
        self.tls.as_ref()
    }

    /// Turns on etcd's authentication: a `root` user (etcd requires it) with
    /// `root_password`, and `user` with `password` and read-write access to
    /// every key. Connects with the client certificate when the server is TLS.
    pub async fn enable_auth(
        &self,
        root_password: &str,
        user: &str,
        password: &str,
    ) -> Result<(), EtcdError> {
        use etcd_client::{Client, ConnectOptions, Permission, TlsOptions};
        let mut options = ConnectOptions::new().with_timeout(Duration::from_secs(5));
        let scheme = match &self.tls {
            Some(tls) => {
                let read = |p: &PathBuf| std::fs::read(p).map_err(EtcdError::TempDir);
                options = options.with_tls(
                    TlsOptions::new()
                        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)?))
                        .identity(etcd_client::Identity::from_pem(
                            read(&tls.client_cert)?,
                            read(&tls.client_key)?,
                        )),
                );
                "https"
            }
            None => "http",
        };
        let endpoint = format!("{scheme}://{}", self.endpoint());
        let mut client = Client::connect([endpoint], Some(options))
            .await
            .map_err(EtcdError::Auth)?;
        client
            .user_add("root", root_password, None)
            .await
            .map_err(EtcdError::Auth)?;
        client
            .user_grant_role("root", "root")
            .await
            .map_err(EtcdError::Auth)?;
        client.role_add(user).await.map_err(EtcdError::Auth)?;
        // Every key: an empty key with the range end "\0" means all of them.
        client
            .role_grant_permission(user, Permission::read_write(vec![0u8]).with_from_key())
            .await
            .map_err(EtcdError::Auth)?;
        client
            .user_add(user, password, None)
            .await
            .map_err(EtcdError::Auth)?;
        client
            .user_grant_role(user, user)
            .await
            .map_err(EtcdError::Auth)?;
        client.auth_enable().await.map_err(EtcdError::Auth)?;
        Ok(())
    }

    /// Starts etcd serving clients on `client_port` (tests of a client that was
    /// configured before etcd came up).
    pub fn start_on(client_port: u16) -> Result<Self, EtcdError> {
        let binary = etcd_binary()?;
        Self::try_start(&binary, Some(client_port), false)
    }

    fn try_start(binary: &PathBuf, client_port: Option<u16>, tls: bool) -> Result<Self, EtcdError> {
        let data = tempfile::Builder::new()
            .prefix("yunshu-etcd-")
            .tempdir()
            .map_err(EtcdError::TempDir)?;
        let client_port = match client_port {
            Some(p) => p,
            None => free_port().map_err(EtcdError::TempDir)?,
        };
        let peer_port = free_port().map_err(EtcdError::TempDir)?;
        let client_scheme = if tls { "https" } else { "http" };
        let client_url = format!("{client_scheme}://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log_path = data.path().join("etcd.log");
        let mut command = Command::new(binary);
        let (health_port, tls_files) = if tls {
            let dir = data.path().join("tls");
            let files = write_certificates(&dir)?;
            let health_port = free_port().map_err(EtcdError::TempDir)?;
            command
                .arg(format!("--cert-file={}", dir.join("server.pem").display()))
                .arg(format!(
                    "--key-file={}",
                    dir.join("server-key.pem").display()
                ))
                .arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", files.ca.display()))
                .arg(format!(
                    "--listen-metrics-urls=http://127.0.0.1:{health_port}"
                ));
            (health_port, Some(files))
        } else {
            (client_port, None)
        };
        command
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
            .arg("--quota-backend-bytes=268435456");
        let args: Vec<OsString> = command.get_args().map(OsStr::to_owned).collect();
        let child = spawn(binary, &args, &log_path)?;
        let mut server = Self {
            child,
            binary: binary.clone(),
            args,
            client_port,
            health_port,
            tls: tls_files,
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
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.health_port)) else {
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

    /// Starts the killed server again, with its data, ports and certificates
    /// (tests of a client that opened the store while etcd was down).
    pub fn restart(&mut self) -> Result<(), EtcdError> {
        self.kill();
        self.child = spawn(&self.binary, &self.args, &self.log_path)?;
        self.wait_ready(Duration::from_secs(20))
    }

    /// Kills the server now (tests of an etcd outage).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a CA, a server certificate for 127.0.0.1 and `localhost`, a client
/// certificate, and a stranger's client certificate from another CA into `dir`.
fn write_certificates(dir: &std::path::Path) -> Result<EtcdTlsFiles, EtcdError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    std::fs::create_dir_all(dir).map_err(EtcdError::TempDir)?;
    let write = |name: &str, pem: String| -> Result<PathBuf, EtcdError> {
        let path = dir.join(name);
        std::fs::write(&path, pem).map_err(EtcdError::TempDir)?;
        Ok(path)
    };
    let ca = |cn: &str| -> Result<(String, Issuer<'static, KeyPair>), EtcdError> {
        let key = KeyPair::generate().map_err(EtcdError::Certificates)?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).map_err(EtcdError::Certificates)?;
        Ok((cert.pem(), Issuer::new(params, key)))
    };
    let leaf = |issuer: &Issuer<'static, KeyPair>,
                names: Vec<String>,
                cn: &str,
                usage: ExtendedKeyUsagePurpose|
     -> Result<(String, String), EtcdError> {
        let key = KeyPair::generate().map_err(EtcdError::Certificates)?;
        let mut params = CertificateParams::new(names).map_err(EtcdError::Certificates)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, issuer)
            .map_err(EtcdError::Certificates)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (ca_pem, issuer) = ca("yunshu test etcd CA")?;
    let (server, server_key) = leaf(
        &issuer,
        vec!["127.0.0.1".into(), "localhost".into()],
        "etcd",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client, client_key) = leaf(
        &issuer,
        vec![],
        "yunshu-test-client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let (_, stranger_issuer) = ca("another CA")?;
    let (stranger, stranger_key) = leaf(
        &stranger_issuer,
        vec![],
        "yunshu-test-client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    write("server.pem", server)?;
    write("server-key.pem", server_key)?;
    Ok(EtcdTlsFiles {
        ca: write("ca.pem", ca_pem)?,
        client_cert: write("client.pem", client)?,
        client_key: write("client-key.pem", client_key)?,
        stranger_cert: write("stranger.pem", stranger)?,
        stranger_key: write("stranger-key.pem", stranger_key)?,
    })
}

/// Spawns etcd with `args`, its output appended to `log_path`.
fn spawn(
    binary: &PathBuf,
    args: &[OsString],
    log_path: &std::path::Path,
) -> Result<Child, EtcdError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(EtcdError::TempDir)?;
    let log_err = log.try_clone().map_err(EtcdError::TempDir)?;
    Command::new(binary)
        .args(args)
        .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| EtcdError::Spawn {
            binary: binary.clone(),
            source,
        })
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
