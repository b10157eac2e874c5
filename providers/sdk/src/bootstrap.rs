//! The driver's side of bootstrap and renewal (contract: `yunshu_proto::bootstrap`).
//!
//! Credentials live in `<state-dir>/credentials.json` (mode 0600), so a restarted
//! driver keeps its identity without a new token.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yunshu_proto::bootstrap::{
    BootstrapToken, CA_PATH, CaResponse, CertificateResponse, REGISTER_PATH, RENEW_PATH,
    RegisterRequest, RenewRequest, TokenFormatError,
};

const CREDENTIALS_FILE: &str = "credentials.json";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("bootstrap token is malformed")]
    Token(#[from] TokenFormatError),
    #[error(
        "the controller's API {url:?} must be https:// unless it is on this machine (a loopback address): the bootstrap and renewal secrets must not travel in clear"
    )]
    InsecureController { url: String },
    #[error("the controller's API {url:?} is not a valid http(s) URL")]
    BadControllerUrl { url: String },
    #[error("the operator's CA for the controller's API is not valid PEM")]
    BadControllerCa(#[source] reqwest::Error),
    #[error(
        "the controller answered with another CA (sha256 {got}) than the pinned one ({expected}): refusing it and keeping the current credentials"
    )]
    CaChanged { expected: String, got: String },
    #[error("cannot reach the controller at {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the controller's CA (sha256 {got}) is not the one the token names ({expected}): refusing to trust it"
    )]
    CaMismatch { expected: String, got: String },
    #[error("the controller refused: HTTP {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot create a key or CSR")]
    Pki(#[from] yunshu_pki::PkiError),
    #[error("cannot read or write credentials in {path}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials in {path} are unreadable: {reason}")]
    CorruptState { path: PathBuf, reason: String },
}

/// What a registered driver holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub provider: String,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
    pub renewal_token: String,
    pub issued_unix: i64,
    pub not_after_unix: i64,
}

impl Credentials {
    fn path(dir: &Path) -> PathBuf {
        dir.join(CREDENTIALS_FILE)
    }

    /// The saved credentials, if any.
    pub fn load(dir: &Path) -> Result<Option<Self>, BootstrapError> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| BootstrapError::CorruptState {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BootstrapError::State { path, source }),
        }
    }

    /// Writes atomically (temp file + rename), readable by the owner only.
    pub fn save(&self, dir: &Path) -> Result<(), BootstrapError> {
        let state = |source| BootstrapError::State {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(state)?;
        let tmp = dir.join(format!("{CREDENTIALS_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| state(std::io::Error::other(e)))?;
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(state)?;
            file.write_all(&bytes).map_err(state)?;
            file.sync_all().map_err(state)?;
        }
        std::fs::rename(&tmp, Self::path(dir)).map_err(state)?;
        Ok(())
    }

    /// When to renew: two thirds into the certificate's life.
    pub fn renew_at_unix(&self) -> i64 {
        self.issued_unix + (self.not_after_unix - self.issued_unix) * 2 / 3
    }

    fn from_response(provider: &str, key_pem: String, r: CertificateResponse) -> Self {
        Self {
            provider: provider.to_owned(),
            key_pem,
            cert_pem: r.certificate_pem,
            ca_pem: r.ca_pem,
            renewal_token: r.renewal_token,
            issued_unix: now_unix(),
            not_after_unix: r.not_after_unix,
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The controller's HTTP API as a driver may use it (issue 16 item 5): over
/// https, where the API's certificate must chain to the controller CA the
/// bootstrap token pins (or to the operator's CA given with
/// `--controller-ca`); plain http only to a loopback address, since the
/// one-time token and the renewal secret would otherwise travel in clear.
#[derive(Debug, Clone)]
pub struct Controller {
    url: String,
    tls: bool,
    /// The operator's CA, when the API's certificate is not from the controller CA.
    operator_ca: Option<reqwest::Certificate>,
}

/// How long one call to the controller may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl Controller {
    pub fn new(url: &str, operator_ca_pem: Option<&str>) -> Result<Self, BootstrapError> {
        let bad = || BootstrapError::BadControllerUrl {
            url: url.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
        let tls = match parsed.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad()),
        };
        let host = parsed.host_str().ok_or_else(bad)?;
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !tls && !loopback {
            return Err(BootstrapError::InsecureController {
                url: url.to_owned(),
            });
        }
        let operator_ca = operator_ca_pem
            .map(|pem| reqwest::Certificate::from_pem(pem.as_bytes()))
            .transpose()
            .map_err(BootstrapError::BadControllerCa)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            tls,
            operator_ca,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A client that trusts only `ca_pem` (the pinned controller CA) and the
    /// operator's CA — never the public web PKI.
    fn trusting(&self, ca_pem: &str) -> Result<reqwest::Client, BootstrapError> {
        let client = |source| BootstrapError::Http {
            url: self.url.clone(),
            source,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .https_only(self.tls)
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(client)?,
            );
        if let Some(ca) = &self.operator_ca {
            builder = builder.add_root_certificate(ca.clone());
        }
        builder.build().map_err(client)
    }

    /// The client that fetches the CA before anything is trusted. Over https
    /// it cannot verify the server yet, so nothing secret is sent with it and
    /// what it gets is checked against the token's pin.
    fn unverified(&self) -> Result<reqwest::Client, BootstrapError> {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .https_only(self.tls)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|source| BootstrapError::Http {
                url: self.url.clone(),
                source,
            })
    }
}

/// Refuses an answer whose CA is not the pinned one.
fn check_ca(expected: &str, answer: &CertificateResponse) -> Result<(), BootstrapError> {
    let got = yunshu_pki::fingerprint(&answer.ca_pem)?;
    if got != expected {
        return Err(BootstrapError::CaChanged {
            expected: expected.to_owned(),
            got,
        });
    }
    Ok(())
}

async fn post<T: Serialize>(
    http: &reqwest::Client,
    url: String,
    body: &T,
) -> Result<CertificateResponse, BootstrapError> {
    let response =
        http.post(&url)
            .json(body)
            .send()
            .await
            .map_err(|source| BootstrapError::Http {
                url: url.clone(),
                source,
            })?;
    let status = response.status();
    if !status.is_success() {
        // The controller's error body: {code, message, message_zh, details}.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        return Err(BootstrapError::Refused {
            status: status.as_u16(),
            code: body["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: body["message"].as_str().unwrap_or("").to_owned(),
        });
    }
    response
        .json()
        .await
        .map_err(|source| BootstrapError::Http { url, source })
}

/// Registers with a one-time token: pins the CA, sends a CSR, gets a certificate.
pub async fn register(
    controller: &Controller,
    token: &str,
    provider: &str,
    endpoint: &str,
) -> Result<Credentials, BootstrapError> {
    let parsed = BootstrapToken::parse(token)?;
    let ca_url = controller.at(CA_PATH);
    let ca: CaResponse = controller
        .unverified()?
        .get(&ca_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|source| BootstrapError::Http {
            url: ca_url.clone(),
            source,
        })?
        .json()
        .await
        .map_err(|source| BootstrapError::Http {
            url: ca_url,
            source,
        })?;
    // Trust the CA only if it is the one the token was minted under.
    let got = yunshu_pki::fingerprint(&ca.ca_pem)?;
    if got != parsed.ca_fingerprint {
        return Err(BootstrapError::CaMismatch {
            expected: parsed.ca_fingerprint,
            got,
        });
    }
    let (csr_pem, key_pem) = yunshu_pki::driver_csr(provider)?;
    let request = RegisterRequest {
        token: token.trim().to_owned(),
        provider: provider.to_owned(),
        endpoint: endpoint.to_owned(),
        csr_pem,
    };
    // The one-time token goes only to a server that proves the pinned CA
    // (or the operator's) vouches for it.
    let http = controller.trusting(&ca.ca_pem)?;
    let response = post(&http, controller.at(REGISTER_PATH), &request).await?;
    check_ca(&parsed.ca_fingerprint, &response)?;
    Ok(Credentials::from_response(provider, key_pem, response))
}

/// Renews with the current renewal token: a new key, a new certificate, from
/// the same CA — an answer naming another CA is refused.
pub async fn renew(
    controller: &Controller,
    current: &Credentials,
    endpoint: &str,
) -> Result<Credentials, BootstrapError> {
    let (csr_pem, key_pem) = yunshu_pki::driver_csr(&current.provider)?;
    let request = RenewRequest {
        provider: current.provider.clone(),
        renewal_token: current.renewal_token.clone(),
        csr_pem,
        endpoint: endpoint.to_owned(),
    };
    let http = controller.trusting(&current.ca_pem)?;
    let response = post(&http, controller.at(RENEW_PATH), &request).await?;
    check_ca(&yunshu_pki::fingerprint(&current.ca_pem)?, &response)?;
    Ok(Credentials::from_response(
        &current.provider,
        key_pem,
        response,
    ))
}
