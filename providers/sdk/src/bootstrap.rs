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

fn url(controller: &str, path: &str) -> String {
    format!("{}{path}", controller.trim_end_matches('/'))
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
    http: &reqwest::Client,
    controller: &str,
    token: &str,
    provider: &str,
    endpoint: &str,
) -> Result<Credentials, BootstrapError> {
    let parsed = BootstrapToken::parse(token)?;
    let ca_url = url(controller, CA_PATH);
    let ca: CaResponse = http
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
    let response = post(http, url(controller, REGISTER_PATH), &request).await?;
    Ok(Credentials::from_response(provider, key_pem, response))
}

/// Renews with the current renewal token: a new key, a new certificate.
pub async fn renew(
    http: &reqwest::Client,
    controller: &str,
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
    let response = post(http, url(controller, RENEW_PATH), &request).await?;
    Ok(Credentials::from_response(
        &current.provider,
        key_pem,
        response,
    ))
}
