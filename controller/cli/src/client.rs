//! The CLI's connection to a controller: the server URL and an API token, saved
//! by `yunshu login` in `$YUNSHU_CONFIG` (default `~/.config/yunshu/credentials.json`,
//! mode 0600), and a small JSON request helper that turns API errors into one
//! readable line in both languages.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
    pub user: String,
}

pub fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("YUNSHU_CONFIG") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".config/yunshu/credentials.json")
}

pub fn save(c: &Credentials) -> Result<PathBuf, String> {
    let path = config_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let bytes = serde_json::to_vec_pretty(c).map_err(|e| e.to_string())?;
    std::io::Write::write_all(
        &mut options
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        &bytes,
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

pub fn load() -> Result<Credentials, String> {
    let path = config_path();
    let bytes = std::fs::read(&path).map_err(|_| {
        format!(
            "not logged in ({} missing): run `yunshu login` first",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is unreadable: {e}", path.display()))
}

/// The HTTP client of every CLI command. An https server is verified against
/// the system's roots plus the PEM file `YUNSHU_CA_FILE` names — e.g. the
/// controller's CA (`curl -k https://…/api/v1/drivers/ca`) when the API serves
/// a certificate from it (`yunshu serve --tls-from-ca`).
pub fn http(cookies: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().cookie_store(cookies);
    if let Some(path) = std::env::var_os("YUNSHU_CA_FILE") {
        let path = PathBuf::from(path);
        let pem = std::fs::read(&path)
            .map_err(|e| format!("cannot read YUNSHU_CA_FILE {}: {e}", path.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "YUNSHU_CA_FILE {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(ca);
    }
    builder.build().map_err(|e| e.to_string())
}

/// One API call; `Err` carries `HTTP <status> <CODE>: message (中文)`.
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
    idempotency_key: Option<&str>,
) -> Result<serde_json::Value, String> {
    let mut req = http.request(method, url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    if let Some(key) = idempotency_key {
        req = req.header("Idempotency-Key", key);
    }
    let response = req
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        Ok(json)
    } else {
        Err(format!(
            "HTTP {} {}: {} ({})",
            status.as_u16(),
            json["code"].as_str().unwrap_or(""),
            json["message"].as_str().unwrap_or(&text),
            json["message_zh"].as_str().unwrap_or("")
        ))
    }
}
