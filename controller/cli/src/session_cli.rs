//! `yunshu login` and the work-order commands an SRE scripts:
//! `yunshu orders list|show|apply|transition|review|approve`.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::Method;

use crate::client::{self, Credentials};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The controller's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "YUNSHU_SERVER")]
    server: String,
    #[arg(long)]
    user: String,
    /// Read the password from standard input (otherwise from YUNSHU_PASSWORD).
    #[arg(long)]
    password_stdin: bool,
    /// Days the saved API token stays valid.
    #[arg(long, default_value_t = 30)]
    days: i64,
}

#[derive(Debug, clap::Subcommand)]
pub enum OrdersCommand {
    /// Orders you may see, newest state first.
    List,
    /// One order as JSON.
    Show { id: String },
    /// Create a draft order from a JSON file (retries never create two: the
    /// request carries an Idempotency-Key derived from the file).
    Apply {
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Move an order to another state (submitted, accepted, refused, approved …).
    Transition {
        id: String,
        #[arg(long)]
        to: String,
        /// Required when refusing or rejecting.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reviewer: lower the approved quantity of one line (never raise it).
    Review {
        id: String,
        #[arg(long)]
        line: usize,
        #[arg(long)]
        quantity: u32,
    },
    /// Approver: approve an order.
    Approve { id: String },
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

pub fn login(args: LoginArgs) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(login_async(args))))
}

async fn login_async(args: LoginArgs) -> Result<(), String> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var("YUNSHU_PASSWORD").map_err(|_| {
            "give the password on stdin (--password-stdin) or in YUNSHU_PASSWORD".to_owned()
        })?
    };
    let server = args.server.trim_end_matches('/').to_owned();
    // A cookie jar: the session cookie of the login is needed to mint the token.
    let http = client::http(true)?;
    let session = client::call(
        &http,
        Method::POST,
        &format!("{server}/api/v1/auth/login"),
        None,
        Some(&serde_json::json!({"user": args.user, "password": password})),
        None,
    )
    .await?;
    let csrf = session["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let me = http
        .get(format!("{server}/api/v1/auth/me"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| e.to_string())?;
    let token = http
        .post(format!("{server}/api/v1/auth/tokens"))
        .header("X-CSRF-Token", csrf)
        .json(&serde_json::json!({
            "name": format!("yunshu CLI on {}", std::env::var("HOSTNAME").unwrap_or_else(|_| "this host".into())),
            "scopes": me["permissions"],
            "days": args.days,
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| e.to_string())?;
    let token = token["token"]
        .as_str()
        .ok_or_else(|| format!("the controller did not issue a token: {token}"))?
        .to_owned();
    let path = client::save(&Credentials {
        server,
        token,
        user: args.user.clone(),
    })?;
    eprintln!(
        "logged in as {}; API token saved in {}",
        args.user,
        path.display()
    );
    Ok(())
}

pub fn orders(cmd: OrdersCommand) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(orders_async(cmd))))
}

async fn orders_async(cmd: OrdersCommand) -> Result<(), String> {
    let c = client::load()?;
    let http = client::http(false)?;
    let url = |path: &str| format!("{}/api/v1{path}", c.server);
    let call =
        |method: Method, path: String, body: Option<serde_json::Value>, key: Option<String>| {
            let http = http.clone();
            let token = c.token.clone();
            let full = url(&path);
            async move {
                client::call(
                    &http,
                    method,
                    &full,
                    Some(&token),
                    body.as_ref(),
                    key.as_deref(),
                )
                .await
            }
        };
    match cmd {
        OrdersCommand::List => {
            let mut after: Option<String> = None;
            println!(
                "{:<24} {:<12} {:<16} {:<12} deadline",
                "id", "kind", "state", "system"
            );
            loop {
                let path = match &after {
                    Some(a) => format!("/orders?limit=200&after={a}"),
                    None => "/orders?limit=200".to_owned(),
                };
                let page = call(Method::GET, path, None, None).await?;
                for o in page["items"].as_array().into_iter().flatten() {
                    let deadline = match (
                        &o["deadline"]["due_date"],
                        &o["deadline"]["working_days_left"],
                    ) {
                        (serde_json::Value::String(d), left) if left.is_i64() => {
                            format!("{d} ({left} wd left)")
                        }
                        (serde_json::Value::String(d), _) => d.clone(),
                        _ => "-".into(),
                    };
                    println!(
                        "{:<24} {:<12} {:<16} {:<12} {deadline}",
                        o["id"].as_str().unwrap_or(""),
                        o["kind"].as_str().unwrap_or(""),
                        o["state"].as_str().unwrap_or(""),
                        o["system"].as_str().unwrap_or("")
                    );
                }
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        OrdersCommand::Show { id } => {
            let order = call(Method::GET, format!("/orders/{id}"), None, None).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&order).unwrap_or_default()
            );
        }
        OrdersCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
            let key = content_key(&text);
            let order = call(Method::POST, "/orders".into(), Some(body), Some(key)).await?;
            println!("{}", order["id"].as_str().unwrap_or_default());
        }
        OrdersCommand::Transition { id, to, reason } => {
            let body = serde_json::json!({"to": to, "reason": reason});
            let order = call(
                Method::POST,
                format!("/orders/{id}/transitions"),
                Some(body),
                None,
            )
            .await?;
            println!(
                "{} {}",
                order["id"].as_str().unwrap_or(""),
                order["state"].as_str().unwrap_or("")
            );
        }
        OrdersCommand::Review { id, line, quantity } => {
            let body = serde_json::json!({"quantity": quantity});
            call(
                Method::POST,
                format!("/orders/{id}/lines/{line}/approve"),
                Some(body),
                None,
            )
            .await?;
            println!("{id} line {line}: approved quantity {quantity}");
        }
        OrdersCommand::Approve { id } => {
            let body = serde_json::json!({"to": "approved"});
            let order = call(
                Method::POST,
                format!("/orders/{id}/transitions"),
                Some(body),
                None,
            )
            .await?;
            println!(
                "{} {}",
                order["id"].as_str().unwrap_or(""),
                order["state"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// A stable key for a file's content (FNV-1a, 64 bit): the same file applied
/// twice is one order. Not a security boundary, only deduplication.
fn content_key(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("cli-apply-{h:016x}")
}
