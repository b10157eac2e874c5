//! `yunshu serve` as operators run it: the real binary, real ports, real files,
//! and a real etcd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use yunshu_testkit::{EtcdServer, free_port, http_get, wait_until};

/// A running `yunshu` process, killed on drop; its stderr (the log) goes to a file.
struct Yunshu {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Yunshu {
    fn start(data_dir: Option<&Path>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port().expect("port");
        let log = dir.path().join("yunshu.log");
        let data = data_dir.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        let child = Command::new(env!("CARGO_BIN_EXE_yunshu"))
            .args(extra)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn yunshu");
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn with_args(args: &[&str]) -> Self {
        let mut s = Self::start(None, &[]);
        s.child.kill().ok();
        s.child.wait().ok();
        let child = Command::new(env!("CARGO_BIN_EXE_yunshu"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", s.port))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&s.log).expect("log file"))
            .spawn()
            .expect("spawn yunshu");
        s.child = child;
        s
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path).ok()
    }

    fn wait_healthy(&self) {
        let ok = wait_until(Duration::from_secs(30), || {
            self.get("/healthz").is_some_and(|(s, _)| s == 200)
        });
        assert!(
            ok,
            "yunshu did not serve /healthz; log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself.
    fn wait_exit(&mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(patience, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    }
}

impl Drop for Yunshu {
    fn drop(&mut self) {
        // SIGTERM first, so `yunshu` stops its children (the demo's simulator).
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            if self.wait_exit(Duration::from_secs(5)).is_some() {
                return;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn demo_serves_health_version_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "scrape-me\n").expect("token file");
    let token_arg = token_file.to_str().expect("utf-8 path");
    let mut y = Yunshu::with_args(&[
        "--demo",
        "--data-dir",
        data,
        "--metrics-token-file",
        token_arg,
    ]);
    y.wait_healthy();
    assert!(
        wait_until(Duration::from_secs(10), || y
            .log_text()
            .contains("demo data seeded")),
        "{}",
        y.log_text()
    );
    let (status, body) = y.get("/readyz").expect("readyz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = y.get("/api/v1/version").expect("version");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["name"], "yunshu");
    assert_eq!(json["store"], "redb");
    // Metrics carry every provider's capacity: the scrape token, not anyone.
    let (status, _) = y.get("/metrics").expect("metrics");
    assert_eq!(status, 401);
    let (status, _) =
        yunshu_testkit::http_get_bearer(y.port, "/metrics", Some("wrong")).expect("metrics");
    assert_eq!(status, 401);
    let (status, body) =
        yunshu_testkit::http_get_bearer(y.port, "/metrics", Some("scrape-me")).expect("metrics");
    assert_eq!(status, 200);
    assert!(body.contains("yunshu_build_info"), "{body}");
    y.terminate();
    let exit = y
        .wait_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", y.log_text());
    assert!(
        y.log_text().contains("SIGTERM received"),
        "{}",
        y.log_text()
    );
}

#[test]
fn corrupt_store_file_fails_fast_with_a_message_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("yunshu.redb"),
        b"garbage, not a database".repeat(100),
    )
    .expect("write");
    let mut y = Yunshu::start(Some(dir.path()), &[]);
    let exit = y.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(!exit.success());
    let log = y.log_text();
    assert!(log.contains("cannot open store file"), "{log}");
    assert!(log.contains("yunshu.redb"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_second_serve_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Yunshu::start(Some(dir.path()), &[]);
    first.wait_healthy();
    let mut second = Yunshu::start(Some(dir.path()), &[]);
    let exit = second.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(!exit.success());
    let log = second.log_text();
    assert!(log.contains("locked by another process"), "{log}");
    // The first one is unharmed.
    assert_eq!(first.get("/readyz").expect("readyz").0, 200);
}

#[test]
fn unreachable_etcd_fails_readyz_logs_it_and_recovers() {
    let etcd_port = free_port().expect("port");
    let store = format!("--store=etcd://127.0.0.1:{etcd_port}");
    let y = Yunshu::with_args(&[&store]);
    y.wait_healthy();
    let (status, body) = y.get("/readyz").expect("readyz");
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["ready"], false);
    assert_eq!(json["store"], "etcd");
    assert!(
        json["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || y
            .log_text()
            .contains("store unavailable")),
        "{}",
        y.log_text()
    );
    // etcd comes up: the retry loop notices and readiness recovers.
    let _etcd = EtcdServer::start_on(etcd_port).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wait_until(Duration::from_secs(30), || {
            y.get("/readyz").is_some_and(|(s, _)| s == 200)
        }),
        "readyz never recovered; log:\n{}",
        y.log_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || y
            .log_text()
            .contains("store reachable again")),
        "{}",
        y.log_text()
    );
}

#[test]
fn json_log_format_writes_json_lines() {
    let y = Yunshu::start(None, &["--log-format", "json"]);
    y.wait_healthy();
    let log = y.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "some log lines");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn a_bad_store_flag_is_refused_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_yunshu"))
        .args(["serve", "--store", "postgres://nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown store"), "{err}");
}

#[test]
fn driver_token_create_prints_a_one_time_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let y = Yunshu::with_args(&["--data-dir", data]);
    y.wait_healthy();
    // The driver CA is loaded in the background once the store answers.
    assert!(wait_until(Duration::from_secs(10), || {
        y.get("/api/v1/drivers/ca").is_some_and(|(s, _)| s == 200)
    }));
    let server = format!("http://127.0.0.1:{}", y.port);
    let run = |provider: &str, ttl: &str| {
        Command::new(env!("CARGO_BIN_EXE_yunshu"))
            .args([
                "driver-token",
                "create",
                "--provider",
                provider,
                "--ttl",
                ttl,
            ])
            .args(["--server", &server, "--data-dir", data])
            .output()
            .expect("run")
    };
    let out = run("acme", "1h");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("ysdt1."), "{token}");
    assert_eq!(token.split('.').count(), 4);
    // Bad input: a clear message and a non-zero exit, nothing minted.
    let out = run("Not_A_Label", "1h");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROVIDER_NAME_INVALID"));
    let out = run("acme", "1y");
    assert!(!out.status.success());
}

#[test]
fn an_sre_scripts_login_apply_and_list_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_str = data.to_str().expect("utf-8 path");
    let y = Yunshu::with_args(&["--demo", "--data-dir", data_str]);
    y.wait_healthy();
    assert!(wait_until(Duration::from_secs(10), || y
        .log_text()
        .contains("demo data")));
    let admin = std::fs::read_to_string(data.join("admin-token")).expect("admin token");
    // The platform side sets no password: li activates with the one-time code.
    let user = r#"{"id":"li","display_name":"李经办","tenant":"110105",
        "roles":[{"role":{"name":"tenant_user"},"scope":{"type":"tenant","tenant":"110105"}}]}"#;
    let (status, body) =
        yunshu_testkit::http_post_json(y.port, "/api/v1/users", Some(admin.trim()), user)
            .expect("create user");
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).expect("json");
    let code = created["activation"]["code"]
        .as_str()
        .expect("activation code");
    let activate = serde_json::json!({"code": code, "password": "Jingban20261"}).to_string();
    let (status, body) =
        yunshu_testkit::http_post_json(y.port, "/api/v1/activate", None, &activate)
            .expect("activate");
    assert_eq!(status, 200, "{body}");

    let config = dir.path().join("credentials.json");
    let server = format!("http://127.0.0.1:{}", y.port);
    let yunshu = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_yunshu"))
            .args(args)
            .env("YUNSHU_CONFIG", &config)
            .env("YUNSHU_SERVER", &server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write");
        }
        child.wait_with_output().expect("wait")
    };
    let out = yunshu(
        &["login", "--user", "li", "--password-stdin"],
        Some("Jingban20261\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config)
            .expect("config")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the saved token is private");
    }

    let order = dir.path().join("order.json");
    std::fs::write(
        &order,
        r#"{"kind":"onboarding","system":"110105001","policy":"beijing","lines":[{"server":{
            "server_name":"app-01","network_area":"gov_extranet","form":"vm","architecture":"arm64",
            "vcpu":4,"memory_gib":8,"system_disk_gib":100,"data_disk_gib":500,"os":"麒麟 V10",
            "purpose":"应用服务器","backup_gib":200},"quantity":2}]}"#,
    )
    .expect("write order");
    let order_path = order.to_str().expect("utf-8");
    let first = yunshu(&["orders", "apply", "-f", order_path], None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let id = String::from_utf8_lossy(&first.stdout).trim().to_owned();
    assert!(id.starts_with("WO-"), "{id}");
    // Applying the same file again (a retried script) is the same order.
    let again = yunshu(&["orders", "apply", "-f", order_path], None);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), id);
    let list = yunshu(&["orders", "list"], None);
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains(&id) && listing.contains("draft"),
        "{listing}"
    );
    assert_eq!(
        listing.matches("WO-").count(),
        1,
        "one order, not two: {listing}"
    );
    // A tenant user cannot approve: a clear error and a non-zero exit.
    let submit = yunshu(&["orders", "transition", &id, "--to", "submitted"], None);
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let approve = yunshu(&["orders", "approve", &id], None);
    assert!(!approve.status.success());
    assert!(String::from_utf8_lossy(&approve.stderr).contains("FORBIDDEN"));
}
