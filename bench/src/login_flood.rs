//! `login-flood`: 1,000 parallel wrong-password sign-ins against a release
//! `yunshu serve`, from one address, while other users sign in from other
//! addresses (issue 16 items 3 and 10). The server runs in a child process
//! (this binary again, `--serve`), so its resident memory is measured alone,
//! not with the 1,000 clients'. Reports the server's peak resident memory
//! during the flood, how the flood was answered, and how long the legitimate
//! sign-ins took.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use yunshu_e2e::People;

use crate::report::bench;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Parallel wrong-password sign-ins.
    #[arg(long, default_value_t = 1000)]
    attempts: usize,
    /// Addresses the flood comes from (127.0.1.x), spread evenly: 1 is one
    /// client; 50 lets every attempt past the per-address limit, so only the
    /// hashing slots stand between the flood and the memory.
    #[arg(long, default_value_t = 1)]
    sources: usize,
    /// Legitimate sign-ins during the flood, each from its own address.
    #[arg(long, default_value_t = 10)]
    legitimate: usize,
    /// Internal: run the server under test on this port, in this data dir.
    #[arg(long, hide = true, num_args = 2, value_names = ["PORT", "DIR"])]
    serve: Option<Vec<String>>,
}

/// Resident memory of process `pid`, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The child: `yunshu serve` on redb in `dir` until killed.
async fn serve(port: &str, dir: &str) -> anyhow::Result<()> {
    let config = yunshu_server::ServeConfig::new(
        format!("127.0.0.1:{port}").parse()?,
        dir.into(),
        yunshu_store::StoreSpec::Redb,
    );
    yunshu_server::serve(config, std::future::pending()).await?;
    Ok(())
}

/// Kills the server child when the bench ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    if let Some(args) = &options.serve {
        return serve(&args[0], &args[1]).await;
    }
    let dir = tempfile::tempdir()?;
    let port = yunshu_testkit::free_port()?.to_string();
    let child = Child(
        std::process::Command::new(std::env::current_exe()?)
            .args(["login-flood", "--serve", &port])
            .arg(dir.path())
            .spawn()?,
    );
    let pid = child.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let token_file = dir.path().join("admin-token");
    loop {
        let up = reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if up && token_file.exists() {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = std::fs::read_to_string(&token_file)?.trim().to_owned();
    let _people = People::create(&base, &admin).await;
    let url = format!("{base}/api/v1/auth/login");
    let baseline = rss_mib(pid);

    // Sample memory while the flood runs.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut peak = 0.0f64;
        loop {
            peak = peak.max(rss_mib(pid));
            tokio::select! {
                _ = stopped.changed() => return peak,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });

    let flood_clients = (0..options.sources.clamp(1, 250))
        .map(|i| {
            let source: IpAddr = format!("127.0.1.{}", 1 + i).parse()?;
            Ok(reqwest::Client::builder()
                .local_address(source)
                .pool_max_idle_per_host(0)
                .build()?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let flood = futures::future::join_all((0..options.attempts).map(|i| {
        let (client, url) = (flood_clients[i % flood_clients.len()].clone(), url.clone());
        async move {
            // Half at a real account, half at names that do not exist.
            let user = if i % 2 == 0 {
                "wang".to_owned()
            } else {
                format!("guess{i}")
            };
            client
                .post(&url)
                .json(&json!({"user": user, "password": format!("wrong-{i}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }));
    let legit = async {
        let mut slowest = Duration::ZERO;
        let mut failed = 0;
        for i in 0..options.legitimate {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let source: IpAddr = format!("127.0.0.{}", 2 + i).parse()?;
            let client = reqwest::Client::builder().local_address(source).build()?;
            let user = if i % 2 == 0 { "sun" } else { "zhou" };
            let t = Instant::now();
            let status = client
                .post(&url)
                .json(&json!({"user": user, "password": "E2e-Zhengwuyun-2026"}))
                .send()
                .await?
                .status();
            slowest = slowest.max(t.elapsed());
            if !status.is_success() {
                failed += 1;
            }
        }
        anyhow::Ok((slowest, failed))
    };
    let (statuses, legit) = tokio::join!(flood, legit);
    let flood_secs = started.elapsed().as_secs_f64();
    let (slowest, failed) = legit?;
    let _ = stop.send(true);
    let peak = sampler.await?;

    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    println!(
        "# server (pid {pid}) resident memory: {baseline:.0} MiB before, {peak:.0} MiB at most during the flood\n# {} wrong sign-ins from {} address(es): {} checked (401), {} locked (423), {} rate-limited or busy (429), {} other; flood answered in {flood_secs:.2} s",
        options.attempts,
        flood_clients.len(),
        count(401),
        count(423),
        count(429),
        statuses.len() - count(401) - count(423) - count(429),
    );
    println!(
        "# {} legitimate sign-ins from other addresses during it: {failed} failed, slowest {} ms",
        options.legitimate,
        slowest.as_millis()
    );
    bench("login_flood_rss_baseline", baseline, "MiB");
    bench("login_flood_rss_peak", peak, "MiB");
    bench("login_flood_hashed", count(401) as f64, "attempts");
    bench("login_flood_answered", flood_secs, "s");
    bench(
        "login_flood_legit_slowest",
        slowest.as_secs_f64() * 1000.0,
        "ms",
    );
    bench("login_flood_legit_failed", failed as f64, "logins");
    drop(child);
    Ok(())
}
