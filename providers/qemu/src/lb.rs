//! Load balancers: one HAProxy process per balancer, inside its VPC's
//! namespace, listening on the balancer's address (VIP) and reaching its
//! members from that address. The proto's algorithms map onto HAProxy's:
//! round robin and weighted round robin → `roundrobin` (weights on the
//! servers), weighted least connections → `leastconn`. Health checks are
//! HAProxy's (`option httpchk` for HTTP, a TCP connect otherwise): a member
//! that fails them leaves the rotation until it passes again.
//!
//! The configuration is rendered whole from the spec, checked with
//! `haproxy -c` before it replaces the running one, and reloaded with `-sf`
//! (the old process finishes its connections). HAProxy daemonizes, so a
//! balancer keeps serving while the driver restarts; the pid file finds it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use tokio::process::Command;

use crate::QemuError;

/// Layer of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConnections,
}

/// A member's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `Some(path)`: an HTTP GET that must answer 2xx/3xx; `None`: connect.
    pub http_path: Option<String>,
    /// Port checked (`None` = the member's own).
    pub port: Option<u16>,
    pub interval_s: u32,
    pub timeout_s: u32,
    pub rise: u32,
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub mode: Mode,
    pub balance: Balance,
    pub check: Option<Check>,
    /// Same client, same member (source-address stickiness).
    pub sticky: bool,
    pub servers: Vec<Server>,
}

/// The HAProxy configuration of a balancer at `vip`.
pub fn render(vip: Ipv4Addr, listeners: &[Listener], admin_socket: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "global");
    let _ = writeln!(out, "  maxconn 4096");
    let _ = writeln!(
        out,
        "  stats socket {} mode 600 level admin",
        admin_socket.display()
    );
    let _ = writeln!(out, "defaults");
    let _ = writeln!(out, "  timeout connect 5s");
    let _ = writeln!(out, "  timeout client 60s");
    let _ = writeln!(out, "  timeout server 60s");
    let _ = writeln!(out, "  timeout check 5s");
    for l in listeners {
        let mode = match l.mode {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        };
        let _ = writeln!(out, "frontend f{}", l.port);
        let _ = writeln!(out, "  mode {mode}");
        let _ = writeln!(out, "  bind {vip}:{}", l.port);
        let _ = writeln!(out, "  default_backend b{}", l.port);
        let _ = writeln!(out, "backend b{}", l.port);
        let _ = writeln!(out, "  mode {mode}");
        let balance = match l.balance {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConnections => "leastconn",
        };
        let _ = writeln!(out, "  balance {balance}");
        // Members see the balancer's own address: what their groups allow.
        let _ = writeln!(out, "  source {vip}");
        if l.sticky {
            let _ = writeln!(out, "  stick-table type ip size 100k expire 30m");
            let _ = writeln!(out, "  stick on src");
        }
        let mut server_opts = String::new();
        if let Some(c) = &l.check {
            if let Some(path) = &c.http_path {
                let _ = writeln!(out, "  option httpchk GET {path}");
            }
            let _ = write!(
                server_opts,
                " check inter {}s rise {} fall {}",
                c.interval_s.max(1),
                c.rise.max(1),
                c.fall.max(1)
            );
            if let Some(p) = c.port {
                let _ = write!(server_opts, " port {p}");
            }
            let _ = writeln!(out, "  timeout check {}s", c.timeout_s.max(1));
        }
        for s in &l.servers {
            let _ = writeln!(
                out,
                "  server {} {}:{} weight {}{server_opts}",
                s.name,
                s.address,
                s.port,
                s.weight.clamp(1, 256)
            );
        }
    }
    out
}

async fn haproxy(ns: &str, args: &[&str]) -> Result<(), QemuError> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "haproxy"])
        .args(args)
        .output()
        .await
        .map_err(QemuError::io("haproxy"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("haproxy {}", args.join(" ")),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// The pid of the balancer's HAProxy if it runs.
pub fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("haproxy.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (crate::vm::is_alive(pid) && String::from_utf8_lossy(&cmdline).contains("haproxy"))
        .then_some(pid)
}

/// Writes `config` as the balancer's configuration in `dir` and makes the
/// HAProxy in namespace `ns` run it: checked first, started if none runs,
/// reloaded (old process drains) if one does.
pub async fn apply(ns: &str, dir: &Path, config: &str) -> Result<u32, QemuError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(QemuError::io("balancer dir"))?;
    let next = dir.join("haproxy.cfg.next");
    tokio::fs::write(&next, config)
        .await
        .map_err(QemuError::io("write haproxy.cfg"))?;
    let next_s = next.display().to_string();
    haproxy(ns, &["-c", "-q", "-f", &next_s]).await?;
    let cfg = dir.join("haproxy.cfg");
    tokio::fs::rename(&next, &cfg)
        .await
        .map_err(QemuError::io("install haproxy.cfg"))?;
    let cfg_s = cfg.display().to_string();
    let pid_s = dir.join("haproxy.pid").display().to_string();
    match running_pid(dir) {
        Some(old) => {
            haproxy(
                ns,
                &["-D", "-f", &cfg_s, "-p", &pid_s, "-sf", &old.to_string()],
            )
            .await?
        }
        None => haproxy(ns, &["-D", "-f", &cfg_s, "-p", &pid_s]).await?,
    }
    running_pid(dir).ok_or_else(|| QemuError::Guest("HAProxy did not stay up".to_owned()))
}

/// Stops the balancer's HAProxy (idempotent).
pub async fn stop(dir: &Path) -> Result<(), QemuError> {
    let Some(pid) = running_pid(dir) else {
        return Ok(());
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    for _ in 0..100 {
        if running_pid(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await;
    Ok(())
}

/// Kills every HAProxy named by a `<dir>/<balancer>/haproxy.pid` when
/// dropped: a driver's balancers outlive it on purpose, a test's must not.
pub struct StopOnDrop(pub std::path::PathBuf);

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

    #[test]
    fn weighted_round_robin_with_an_http_check_renders_weights_and_the_check() {
        let cfg = render(
            Ipv4Addr::new(10, 0, 1, 5),
            &[Listener {
                port: 80,
                mode: Mode::Http,
                balance: Balance::RoundRobin,
                check: Some(Check {
                    http_path: Some("/healthz".to_owned()),
                    port: None,
                    interval_s: 2,
                    timeout_s: 1,
                    rise: 2,
                    fall: 3,
                }),
                sticky: false,
                servers: vec![
                    Server {
                        name: "web-1".to_owned(),
                        address: Ipv4Addr::new(10, 0, 1, 2),
                        port: 8080,
                        weight: 3,
                    },
                    Server {
                        name: "web-2".to_owned(),
                        address: Ipv4Addr::new(10, 0, 1, 3),
                        port: 8080,
                        weight: 1,
                    },
                ],
            }],
            Path::new("/run/lb/admin.sock"),
        );
        assert!(cfg.contains("bind 10.0.1.5:80"), "{cfg}");
        assert!(cfg.contains("balance roundrobin"), "{cfg}");
        assert!(cfg.contains("source 10.0.1.5"), "{cfg}");
        assert!(cfg.contains("option httpchk GET /healthz"), "{cfg}");
        assert!(
            cfg.contains("server web-1 10.0.1.2:8080 weight 3 check inter 2s rise 2 fall 3"),
            "{cfg}"
        );
        assert!(
            cfg.contains("server web-2 10.0.1.3:8080 weight 1 check"),
            "{cfg}"
        );
    }
}
