//! For `yunshu serve --demo`: starts the simulator driver (`yunshu-sim-driver`,
//! built next to `yunshu`) as a child process and bootstraps it with a one-time
//! token, so the demo has a provider with capacity. The child dies with us.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

const PROVIDER: &str = "sim";

/// Runs until the process exits; keeps the child alive meanwhile.
pub async fn run(listen: SocketAddr, data_dir: PathBuf, admin_token_file: PathBuf) {
    let Some(exe) = std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("yunshu-sim-driver"))
        .filter(|p| p.exists())
    else {
        tracing::warn!(
            "yunshu-sim-driver is not built next to yunshu; the demo runs without a provider \
             (build it with `cargo build -p yunshu-sim`)"
        );
        return;
    };
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    let controller = format!("http://{host}:{}", listen.port());
    let http = reqwest::Client::new();
    if !wait_for_controller(&http, &controller).await {
        tracing::warn!("the controller did not come up; not starting the simulator driver");
        return;
    }
    let state_dir = data_dir.join("sim-driver");
    let token = if state_dir.join("credentials.json").exists() {
        None
    } else {
        match mint_token(&http, &controller, &admin_token_file).await {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::warn!(error = %e, "cannot mint a token for the simulator driver");
                return;
            }
        }
    };
    match spawn(&exe, &controller, &state_dir, token.as_deref()) {
        Ok(mut child) => {
            tracing::info!(
                provider = PROVIDER,
                "started the simulator driver for the demo"
            );
            match child.wait().await {
                Ok(status) => tracing::warn!(%status, "the simulator driver exited"),
                Err(e) => tracing::warn!(error = %e, "lost the simulator driver"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot start the simulator driver"),
    }
}

async fn wait_for_controller(http: &reqwest::Client, controller: &str) -> bool {
    for _ in 0..600 {
        if let Ok(r) = http
            .get(format!("{controller}/api/v1/drivers/ca"))
            .send()
            .await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn mint_token(
    http: &reqwest::Client,
    controller: &str,
    admin_token_file: &Path,
) -> Result<String, String> {
    let admin = std::fs::read_to_string(admin_token_file)
        .map_err(|e| format!("cannot read {}: {e}", admin_token_file.display()))?;
    let body: serde_json::Value = http
        .post(format!("{controller}/api/v1/admin/driver-tokens"))
        .bearer_auth(admin.trim())
        .json(&serde_json::json!({"provider": PROVIDER, "ttl_seconds": 600}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("unexpected answer: {body}"))
}

fn spawn(
    exe: &Path,
    controller: &str,
    state_dir: &Path,
    token: Option<&str>,
) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.arg("--provider")
        .arg(PROVIDER)
        .arg("--controller")
        .arg(controller)
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--exit-with-parent")
        .kill_on_drop(true);
    if let Some(token) = token {
        // Through the environment, not argv: other users can read argv in ps.
        cmd.env("YUNSHU_DRIVER_TOKEN", token);
    }
    cmd.spawn()
}
