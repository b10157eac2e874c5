//! `yunshu driver-token create`: asks a running controller for a one-time driver
//! bootstrap token, authenticating with the platform admin token file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mint a one-time token a driver uses to obtain its certificate.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The provider the driver will serve (lowercase letters, digits, '-').
    #[arg(long)]
    provider: String,
    /// How long the token stays valid: e.g. 1h, 30m, 90s, 2d.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// The controller's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "YUNSHU_SERVER")]
    server: String,
    /// The admin token file `yunshu serve` wrote. Default: <data-dir>/admin-token.
    #[arg(long, env = "YUNSHU_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// The data directory of the `yunshu serve` to ask.
    #[arg(long, default_value = "yunshu-data", env = "YUNSHU_DATA_DIR")]
    data_dir: PathBuf,
}

/// `90s`, `30m`, `1h`, `2d` or plain seconds.
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 1h or 2d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    if secs == 0 {
        return Err("the TTL must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

pub fn run(cmd: Command) -> ExitCode {
    let Command::Create(args) = cmd;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(create(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn create(args: CreateArgs) -> Result<(), String> {
    let token_path = args
        .admin_token_file
        .unwrap_or_else(|| args.data_dir.join("admin-token"));
    let admin = std::fs::read_to_string(&token_path).map_err(|e| {
        format!(
            "cannot read the admin token file {} ({e}); pass --admin-token-file or --data-dir",
            token_path.display()
        )
    })?;
    let url = format!(
        "{}/api/v1/admin/driver-tokens",
        args.server.trim_end_matches('/')
    );
    let response = crate::client::http(false)?
        .post(&url)
        .bearer_auth(admin.trim())
        .json(&serde_json::json!({
            "provider": args.provider,
            "ttl_seconds": args.ttl.as_secs(),
        }))
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("unexpected answer from {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{} {}: {} ({})",
            status.as_u16(),
            body["code"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or(""),
            body["message_zh"].as_str().unwrap_or("")
        ));
    }
    // The token alone on stdout, so scripts can capture it.
    println!("{}", body["token"].as_str().unwrap_or_default());
    eprintln!(
        "one-time token for provider {} (expires {})",
        body["provider"].as_str().unwrap_or_default(),
        body["expires_at"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
