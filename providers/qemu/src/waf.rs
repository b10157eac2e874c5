//! Web application firewalls: one nginx with the ModSecurity module and the
//! OWASP Core Rule Set (Debian's `nginx`, `libnginx-mod-http-modsecurity`,
//! `modsecurity-crs`) per protected load balancer, inside the balancer's VPC
//! namespace, in front of its HAProxy.
//!
//! Where it sits: nginx listens on an address of its own in the namespace
//! (link-local, `169.254.128.0/17`, on the loopback like a balancer's VIP)
//! with the same ports as the balancer's HTTP listeners, and proxies to the
//! balancer's VIP. The public IPs bound to the balancer send those ports to
//! nginx instead of the VIP (one more DNAT rule before the balancer's, see
//! `crate::firewall::render_nat`); TCP listeners and everything inside the
//! VPC still reach HAProxy directly. This leaves HAProxy and its
//! configuration untouched (nothing to move, no port to hand over between
//! two daemons), nginx sees the client's own address (DNAT keeps it) for
//! `allow`/`deny` and the rate limit, and removing the WAF is removing the
//! DNAT rule and the nginx: nothing of it stays in the balancer's path.
//!
//! What a policy becomes:
//! - mode block → `SecRuleEngine On`, detect → `SecRuleEngine DetectionOnly`
//!   (matches are logged, nothing is refused);
//! - rule sets → CRS rule files ([`rule_files`]) between the CRS setup,
//!   `REQUEST-901-INITIALIZATION` and the anomaly-score evaluation
//!   (`REQUEST-949`, `RESPONSE-959`, `RESPONSE-980`); CRS's anomaly scoring
//!   decides, so one match of a critical rule blocks;
//! - deny/allow CIDRs → nginx `deny`/`allow` (denied first; with an allow
//!   list, everything else is denied): 403;
//! - CC limit of `requests` per `period` → `limit_req` per client address at
//!   that rate with a burst of `requests` (a client may send that many at
//!   once, then one more per `period / requests`): 429 beyond it.
//!
//! ModSecurity's audit log (matched requests, with the rule that matched) is
//! `audit.log` in the WAF's directory. The configuration is rendered whole,
//! checked with `nginx -t` before it replaces the running one and loaded by
//! `SIGHUP`; nginx daemonizes and writes its pid file there, so it keeps
//! serving while the driver restarts and is adopted afterwards. It is our
//! own nginx with our own configuration: the packaged `nginx.service` and
//! `/etc/nginx` are not used. Workers run as nginx's default unprivileged
//! user; request bodies (at most 1 MiB, nginx's default limit) stay in
//! memory and responses are not buffered to disk, so workers never need the
//! state directory.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::QemuError;

/// Where Debian's packages put what a WAF needs.
const NGINX: &str = "/usr/sbin/nginx";
const MODULE: &str = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so";
const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules";
const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";

/// The installed pieces a WAF is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    pub nginx: PathBuf,
    pub module: PathBuf,
    pub rules: PathBuf,
    pub setup: PathBuf,
}

impl Packages {
    /// The Debian packages' files, or what is missing (package names).
    pub fn detect() -> Result<Packages, String> {
        let packages = Packages {
            nginx: PathBuf::from(NGINX),
            module: PathBuf::from(MODULE),
            rules: PathBuf::from(CRS_RULES),
            setup: PathBuf::from(CRS_SETUP),
        };
        let mut missing = Vec::new();
        if !packages.nginx.is_file() {
            missing.push(format!("nginx ({NGINX})"));
        }
        if !packages.module.is_file() {
            missing.push(format!("libnginx-mod-http-modsecurity ({MODULE})"));
        }
        if !packages
            .rules
            .join("REQUEST-949-BLOCKING-EVALUATION.conf")
            .is_file()
            || !packages.setup.is_file()
        {
            missing.push(format!("modsecurity-crs ({CRS_RULES}, {CRS_SETUP})"));
        }
        if missing.is_empty() {
            Ok(packages)
        } else {
            Err(missing.join(", "))
        }
    }
}

/// The CRS files of one rule set, by the name after an optional
/// `owasp-crs-N/` prefix (the controller sends `owasp-crs-4/sqli`; the
/// families are the same in CRS 3.3, which Debian ships).
pub fn rule_files(rule_set: &str) -> Option<&'static [&'static str]> {
    let family = match rule_set.split_once('/') {
        Some((prefix, family)) if prefix.starts_with("owasp-crs") => family,
        Some(_) => return None,
        None => rule_set,
    };
    Some(match family {
        "sqli" => &["REQUEST-942-APPLICATION-ATTACK-SQLI.conf"],
        "xss" => &["REQUEST-941-APPLICATION-ATTACK-XSS.conf"],
        "rce" => &["REQUEST-932-APPLICATION-ATTACK-RCE.conf"],
        "lfi" => &["REQUEST-930-APPLICATION-ATTACK-LFI.conf"],
        "rfi" => &["REQUEST-931-APPLICATION-ATTACK-RFI.conf"],
        "scanner" => &["REQUEST-913-SCANNER-DETECTION.conf"],
        "protocol" => &[
            "REQUEST-920-PROTOCOL-ENFORCEMENT.conf",
            "REQUEST-921-PROTOCOL-ATTACK.conf",
        ],
        _ => return None,
    })
}

/// What a WAF policy asks of one nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `SecRuleEngine On`; `false`: `DetectionOnly`.
    pub block: bool,
    /// CRS rule files (names in the CRS rules directory).
    pub rule_files: Vec<&'static str>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// (requests, period in seconds).
    pub cc_limit: Option<(u32, u32)>,
}

/// Where one nginx listens and what it protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// nginx's own address in the namespace.
    pub listen: Ipv4Addr,
    /// The balancer's VIP.
    pub upstream: Ipv4Addr,
    /// The balancer's HTTP listener ports (same on both).
    pub ports: Vec<u16>,
}

/// The ModSecurity configuration of `policy` for the WAF in `dir`.
pub fn render_modsecurity(packages: &Packages, policy: &Policy, dir: &Path) -> String {
    let mut out = String::new();
    let engine = if policy.block { "On" } else { "DetectionOnly" };
    let _ = writeln!(out, "# yunshu WAF (generated)");
    let _ = writeln!(out, "SecRuleEngine {engine}");
    let _ = writeln!(out, "SecRequestBodyAccess On");
    let _ = writeln!(out, "SecRequestBodyLimit 1048576");
    let _ = writeln!(out, "SecRequestBodyNoFilesLimit 131072");
    let _ = writeln!(out, "SecRequestBodyLimitAction Reject");
    let _ = writeln!(out, "SecResponseBodyAccess Off");
    let _ = writeln!(out, "SecAuditEngine RelevantOnly");
    let _ = writeln!(out, "SecAuditLogRelevantStatus \"^(?:5|4(?!04))\"");
    let _ = writeln!(out, "SecAuditLogParts ABFHZ");
    let _ = writeln!(out, "SecAuditLogType Serial");
    let _ = writeln!(out, "SecAuditLog {}", dir.join("audit.log").display());
    let _ = writeln!(out, "Include {}", packages.setup.display());
    let mut files = vec!["REQUEST-901-INITIALIZATION.conf"];
    files.extend(policy.rule_files.iter().copied());
    files.extend([
        "REQUEST-949-BLOCKING-EVALUATION.conf",
        "RESPONSE-959-BLOCKING-EVALUATION.conf",
        "RESPONSE-980-CORRELATION.conf",
    ]);
    // CRS files run in their numbered order.
    files.sort_unstable();
    files.dedup();
    for f in files {
        let _ = writeln!(out, "Include {}", packages.rules.join(f).display());
    }
    out
}

/// nginx's per-minute rate of `requests` per `period` seconds (nginx knows
/// r/s and r/m only; slower than one a minute becomes one a minute).
fn rate(requests: u32, period: u32) -> String {
    let period = period.max(1);
    if requests.is_multiple_of(period) {
        format!("{}r/s", (requests / period).max(1))
    } else {
        format!(
            "{}r/m",
            (u64::from(requests) * 60)
                .div_ceil(u64::from(period))
                .max(1)
        )
    }
}

/// The nginx configuration of the WAF in `dir`, its ModSecurity rules in
/// `modsecurity` (a path, so a candidate can be checked before it is
/// installed).
pub fn render_nginx(
    packages: &Packages,
    policy: &Policy,
    site: &Site,
    dir: &Path,
    modsecurity: &Path,
) -> String {
    let d = dir.display();
    let mut out = String::new();
    let _ = writeln!(out, "# yunshu WAF (generated)");
    let _ = writeln!(out, "load_module {};", packages.module.display());
    let _ = writeln!(out, "pid {d}/nginx.pid;");
    let _ = writeln!(out, "error_log {d}/error.log warn;");
    let _ = writeln!(out, "worker_processes 1;");
    let _ = writeln!(out, "events {{ worker_connections 1024; }}");
    let _ = writeln!(out, "http {{");
    let _ = writeln!(out, "  access_log off;");
    let _ = writeln!(out, "  server_tokens off;");
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(out, "  {t}_temp_path {d}/tmp/{t};");
    }
    let _ = writeln!(out, "  client_max_body_size 1m;");
    let _ = writeln!(out, "  client_body_buffer_size 1m;");
    let _ = writeln!(out, "  proxy_buffering off;");
    let _ = writeln!(out, "  proxy_http_version 1.1;");
    let _ = writeln!(out, "  proxy_set_header Connection \"\";");
    let _ = writeln!(out, "  proxy_set_header Host $http_host;");
    let _ = writeln!(out, "  proxy_set_header X-Real-IP $remote_addr;");
    let _ = writeln!(
        out,
        "  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    );
    if let Some((requests, period)) = policy.cc_limit {
        let _ = writeln!(
            out,
            "  limit_req_zone $binary_remote_addr zone=cc:1m rate={};",
            rate(requests, period)
        );
        let _ = writeln!(out, "  limit_req_status 429;");
    }
    let _ = writeln!(out, "  modsecurity on;");
    let _ = writeln!(out, "  modsecurity_rules_file {};", modsecurity.display());
    for port in &site.ports {
        let _ = writeln!(out, "  server {{");
        let _ = writeln!(out, "    listen {}:{port};", site.listen);
        for c in &policy.deny {
            let _ = writeln!(out, "    deny {c};");
        }
        if !policy.allow.is_empty() {
            for c in &policy.allow {
                let _ = writeln!(out, "    allow {c};");
            }
            let _ = writeln!(out, "    deny all;");
        }
        if let Some((requests, _)) = policy.cc_limit {
            let _ = writeln!(
                out,
                "    limit_req zone=cc burst={} nodelay;",
                requests.max(1) - 1
            );
        }
        let _ = writeln!(out, "    location / {{");
        let _ = writeln!(out, "      proxy_pass http://{}:{port};", site.upstream);
        let _ = writeln!(out, "    }}");
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");
    out
}

async fn nginx(ns: &str, dir: &Path, args: &[&str]) -> Result<(), QemuError> {
    let error_log = dir.join("error.log").display().to_string();
    let out = Command::new("ip")
        .args(["netns", "exec", ns, NGINX, "-e", &error_log])
        .args(args)
        .output()
        .await
        .map_err(QemuError::io("nginx"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("nginx {}", args.join(" ")),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// The pid of the WAF's nginx (its master) if it runs.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("nginx.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (crate::vm::is_alive(pid) && String::from_utf8_lossy(&cmdline).contains("nginx")).then_some(pid)
}

/// Makes the nginx in namespace `ns` run `nginx_conf` (rendered with
/// `dir/modsecurity.conf`) and `modsecurity_conf` from `dir`: nothing if it
/// already runs exactly these (an adopted nginx keeps its pid), otherwise
/// checked with `nginx -t` first, then started or reloaded (`SIGHUP`).
/// `render` gives the nginx configuration for a ModSecurity file path.
pub async fn apply(
    ns: &str,
    dir: &Path,
    render: impl Fn(&Path) -> String,
    modsecurity_conf: &str,
) -> Result<u32, QemuError> {
    for d in [dir.to_path_buf(), dir.join("tmp")] {
        tokio::fs::create_dir_all(&d)
            .await
            .map_err(QemuError::io("WAF dir"))?;
    }
    let conf = dir.join("nginx.conf");
    let modsec = dir.join("modsecurity.conf");
    let nginx_conf = render(&modsec);
    let running = running_pid(dir);
    if let Some(pid) = running
        && tokio::fs::read_to_string(&conf).await.ok().as_deref() == Some(nginx_conf.as_str())
        && tokio::fs::read_to_string(&modsec).await.ok().as_deref() == Some(modsecurity_conf)
    {
        return Ok(pid);
    }
    let (next_conf, next_modsec) = (
        dir.join("nginx.conf.next"),
        dir.join("modsecurity.conf.next"),
    );
    tokio::fs::write(&next_modsec, modsecurity_conf)
        .await
        .map_err(QemuError::io("write modsecurity.conf"))?;
    tokio::fs::write(&next_conf, render(&next_modsec))
        .await
        .map_err(QemuError::io("write nginx.conf"))?;
    nginx(
        ns,
        dir,
        &["-t", "-q", "-c", &next_conf.display().to_string()],
    )
    .await?;
    tokio::fs::write(&conf, &nginx_conf)
        .await
        .map_err(QemuError::io("install nginx.conf"))?;
    tokio::fs::rename(&next_modsec, &modsec)
        .await
        .map_err(QemuError::io("install modsecurity.conf"))?;
    let _ = tokio::fs::remove_file(&next_conf).await;
    match running {
        Some(pid) => {
            signal("-HUP", pid).await;
            Ok(pid)
        }
        None => {
            nginx(ns, dir, &["-c", &conf.display().to_string()]).await?;
            for _ in 0..40 {
                if let Some(pid) = running_pid(dir) {
                    return Ok(pid);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(QemuError::Guest("nginx (WAF) did not stay up".to_owned()))
        }
    }
}

async fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .await;
}

/// Stops the WAF's nginx (idempotent).
pub async fn stop(dir: &Path) -> Result<(), QemuError> {
    let Some(pid) = running_pid(dir) else {
        return Ok(());
    };
    signal("-TERM", pid).await;
    for _ in 0..100 {
        if running_pid(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    signal("-KILL", pid).await;
    Ok(())
}

/// Kills every nginx named by a `<dir>/<balancer>/nginx.pid` when dropped:
/// a driver's WAFs outlive it on purpose, a test's must not.
pub struct StopOnDrop(pub PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for e in entries.flatten() {
            if let Some(pid) = running_pid(&e.path()) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages() -> Packages {
        Packages {
            nginx: PathBuf::from(NGINX),
            module: PathBuf::from(MODULE),
            rules: PathBuf::from(CRS_RULES),
            setup: PathBuf::from(CRS_SETUP),
        }
    }

    #[test]
    fn rule_sets_map_to_crs_files_and_unknown_ones_do_not() {
        assert_eq!(
            rule_files("owasp-crs-4/sqli"),
            Some(&["REQUEST-942-APPLICATION-ATTACK-SQLI.conf"][..])
        );
        assert_eq!(
            rule_files("xss"),
            Some(&["REQUEST-941-APPLICATION-ATTACK-XSS.conf"][..])
        );
        assert_eq!(rule_files("owasp-crs-4/protocol").map(<[_]>::len), Some(2));
        assert_eq!(rule_files("owasp-crs-4/nope"), None);
        assert_eq!(rule_files("other/sqli"), None);
    }

    #[test]
    fn block_mode_loads_the_chosen_files_between_setup_and_evaluation() {
        let policy = Policy {
            block: true,
            rule_files: vec![
                "REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
                "REQUEST-941-APPLICATION-ATTACK-XSS.conf",
            ],
            allow: Vec::new(),
            deny: Vec::new(),
            cc_limit: None,
        };
        let cfg = render_modsecurity(&packages(), &policy, Path::new("/s/waf/lb1"));
        assert!(cfg.contains("SecRuleEngine On\n"), "{cfg}");
        assert!(cfg.contains("SecAuditLog /s/waf/lb1/audit.log"), "{cfg}");
        let includes: Vec<&str> = cfg
            .lines()
            .filter_map(|l| l.strip_prefix("Include "))
            .collect();
        assert_eq!(includes[0], CRS_SETUP);
        let names: Vec<&str> = includes[1..]
            .iter()
            .map(|p| p.rsplit('/').next().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "REQUEST-901-INITIALIZATION.conf",
                "REQUEST-941-APPLICATION-ATTACK-XSS.conf",
                "REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
                "REQUEST-949-BLOCKING-EVALUATION.conf",
                "RESPONSE-959-BLOCKING-EVALUATION.conf",
                "RESPONSE-980-CORRELATION.conf",
            ]
        );
        let detect = render_modsecurity(
            &packages(),
            &Policy {
                block: false,
                ..policy
            },
            Path::new("/s"),
        );
        assert!(detect.contains("SecRuleEngine DetectionOnly\n"), "{detect}");
    }

    #[test]
    fn nginx_listens_on_its_address_per_port_with_lists_and_the_rate_limit() {
        let policy = Policy {
            block: true,
            rule_files: Vec::new(),
            allow: vec!["10.0.0.0/8".to_owned()],
            deny: vec!["10.9.0.0/16".to_owned()],
            cc_limit: Some((5, 1)),
        };
        let site = Site {
            listen: Ipv4Addr::new(169, 254, 128, 1),
            upstream: Ipv4Addr::new(10, 0, 1, 5),
            ports: vec![80, 8080],
        };
        let cfg = render_nginx(
            &packages(),
            &policy,
            &site,
            Path::new("/s/waf/lb1"),
            Path::new("/s/waf/lb1/modsecurity.conf"),
        );
        assert!(cfg.starts_with("# yunshu WAF"), "{cfg}");
        assert!(cfg.contains(&format!("load_module {MODULE};")), "{cfg}");
        assert!(cfg.contains("pid /s/waf/lb1/nginx.pid;"), "{cfg}");
        assert!(
            cfg.contains("modsecurity_rules_file /s/waf/lb1/modsecurity.conf;"),
            "{cfg}"
        );
        assert!(cfg.contains("listen 169.254.128.1:80;"), "{cfg}");
        assert!(cfg.contains("proxy_pass http://10.0.1.5:8080;"), "{cfg}");
        // Denied first, then the allow list, then nothing else.
        let deny = cfg.find("deny 10.9.0.0/16;").expect("deny");
        let allow = cfg.find("allow 10.0.0.0/8;").expect("allow");
        let all = cfg.find("deny all;").expect("deny all");
        assert!(deny < allow && allow < all, "{cfg}");
        assert!(cfg.contains("rate=5r/s;"), "{cfg}");
        assert!(cfg.contains("limit_req zone=cc burst=4 nodelay;"), "{cfg}");
        assert!(cfg.contains("limit_req_status 429;"), "{cfg}");
    }

    #[test]
    fn rates_nginx_cannot_say_per_second_are_per_minute() {
        assert_eq!(rate(100, 60), "100r/m");
        assert_eq!(rate(10, 1), "10r/s");
        assert_eq!(rate(1, 3600), "1r/m");
        assert_eq!(rate(3, 2), "90r/m");
    }
}
