//! Crash safety of the reconciler against the real QEMU driver: a `yunshu
//! serve` process on redb is SIGKILLed 20 times at random moments (seeded,
//! `YUNSHU_TEST_SEED` repeats a run) and restarted on the same data directory
//! while approved onboarding orders on provider `qemu` are turned into real
//! QEMU guests (TCG). Once it has converged: every order is `test_env_ready`,
//! the driver lists every VM asked for exactly once and running, and exactly
//! one live `qemu-system` process per VM names this test's state directory
//! (none extra, none twice: a VM applied twice under two ids, or a guest
//! started again beside a running one, would show here); each system has one
//! VPC and its namespace; the driver never refused an Apply (an overcommit
//! would be `HOST_VCPU_EXHAUSTED`). Then every system exits through the
//! controller: no QEMU process of the state directory and no VPC namespace is
//! left — checked again after the drop guards have run.
//!
//! How many VMs: the issue asks for 20, but the product never puts more than
//! 4 vCPU per physical core on a host (the driver refuses with
//! `HOST_VCPU_EXHAUSTED`), and the order form's smallest server is 1 vCPU /
//! 1 GiB (the Beijing catalog's smallest, 003 §3.2.1.1, which the server
//! applies to orders). So `min(20, cores × 4)` one-vCPU 1 GiB VMs — 8 on a
//! 2-core machine —, fewer only if the host's memory less the driver's
//! reserve cannot hold that many GiB. Every server line is one VM: a line is
//! an anti-affinity group and this driver has one host. Two lines per system,
//! the systems approved one after another between kills, so several orders
//! are in flight when the kills land.
//!
//! The driver runs in this test process, so only the controller dies; it
//! stays registered and the restarted controller dials it again. A SIGKILL
//! mid-`Apply` drops the gRPC call; the SDK runs the driver's change to the
//! end anyway (before it did, a VM was left `booting` with no `qemu.pid` and
//! no process, and the same generation applied again was answered from that
//! stuck state — this test found it). Needs the
//! `yunshu` binary (`cargo build -p yunshu`; `cargo test --workspace` builds
//! it), root (network namespaces, taps, nftables) and QEMU.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{
    CountingDriver, People, RunningDriver, XorShift, YunshuProcess, api_at, list_all, list_vms,
    small_vm_line, try_api_at,
};
use yunshu_proto::v1;
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::Accel;

const KILLS: usize = 20;
/// The figure, before the host's vCPU limit.
const ASKED: usize = 20;
/// vCPU per physical core the driver allows.
const VCPU_PER_CORE: usize = 4;
/// Server lines (one VM each) per system.
const LINES_PER_SYSTEM: usize = 2;
/// Memory the driver keeps for the host.
const RESERVED_MIB: u64 = 1024;

/// The smallest server the order form takes: 1 vCPU, 1 GiB, 1 GiB system disk.
fn tiny_vm_line(name: &str) -> serde_json::Value {
    let mut line = small_vm_line(name, 1);
    line["server"]["vcpu"] = serde_json::json!(1);
    line["server"]["memory_gib"] = serde_json::json!(1);
    line["server"]["system_disk_gib"] = serde_json::json!(1);
    line
}

/// Deletes, when dropped, the namespace of every VPC the driver keeps in
/// `<state>/res/vpc/` (the request is saved before the namespace is made
/// and removed after it is gone, so none is missed however the test ends).
struct VpcNamespacesOnDrop(PathBuf);

impl Drop for VpcNamespacesOnDrop {
    fn drop(&mut self) {
        let ids: Vec<String> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".pb"))
                    .map(str::to_owned)
            })
            .collect();
        drop(yunshu_qemu::net::DeleteOnDrop(ids));
    }
}

/// (pid, `-name`) of every live `qemu-system` process whose command line
/// names `state` (its console and disk live there).
fn qemu_processes(state: &Path) -> Vec<(u32, String)> {
    let needle = format!("{}/", state.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A zombie's command line is empty: it is not counted.
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_qemu = args.first().is_some_and(|a| a.contains("qemu-system"));
        if !is_qemu || !args.iter().any(|a| a.contains(&needle)) {
            continue;
        }
        let name = args
            .iter()
            .position(|a| a == "-name")
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default();
        out.push((pid, name));
    }
    out
}

/// What the state directory says of each VM: its pid file, whether that
/// process lives, and the last lines of QEMU's log and the console.
fn vm_files(state: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(state.join("vms"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        let pid = read("qemu.pid");
        let alive = pid.trim().parse().is_ok_and(yunshu_qemu::vm::is_alive);
        out.push_str(&format!(
            "\n{}: pid {pid:?} alive {alive}; qemu.log: {}; console: {}",
            e.file_name().to_string_lossy(),
            tail(&read("qemu.log"), 3),
            tail(&read("serial.log"), 3),
        ));
    }
    out
}

/// The network namespaces that exist now.
fn namespaces() -> BTreeSet<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_twenty_times_the_controller_still_boots_every_qemu_guest_exactly_once() {
    let test_started = Instant::now();
    let mut rng = XorShift::from_env();
    eprintln!(
        "qemu_crash: seed {} (YUNSHU_TEST_SEED repeats it)",
        rng.seed()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_gib = (yunshu_qemu::driver::host_memory_mib().saturating_sub(RESERVED_MIB) / 1024)
        .try_into()
        .unwrap_or(usize::MAX);
    let vms_asked = ASKED.min(cores * VCPU_PER_CORE).min(memory_gib);
    assert!(vms_asked > 0, "no room for a single 1 GiB guest");
    let systems_count = vms_asked.div_ceil(LINES_PER_SYSTEM);
    eprintln!(
        "qemu_crash: {vms_asked} VMs of 1 vCPU / 1 GiB ({cores} cores × {VCPU_PER_CORE}, \
         {memory_gib} GiB for guests) in {systems_count} systems"
    );

    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // Dropped in reverse: QEMUs killed first, then balancers, then namespaces.
    let nets = VpcNamespacesOnDrop(state.join("res/vpc"));
    let lbs = yunshu_qemu::lb::StopOnDrop(state.join("lbs"));
    let reaper = yunshu_qemu::vm::ReapOnDrop(state.join("vms"));
    eprintln!("qemu_crash: state directory {}", state.display());

    let mut yunshu =
        YunshuProcess::start(dir.path().join("data"), dir.path().join("yunshu.log"), &[]);
    yunshu.wait_healthy(Duration::from_secs(30)).await;
    let url = yunshu.url.clone();
    let admin = yunshu.admin_token();
    assert!(
        yunshu_e2e::eventually(Duration::from_secs(30), || async {
            try_api_at(&url, "GET", "/api/v1/drivers/ca", "", None)
                .await
                .is_ok_and(|(s, _)| s == 200)
        })
        .await,
        "driver CA never served; log:\n{}",
        yunshu.log_text()
    );

    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let qemu = Arc::new(
        QemuDriver::open(
            QemuConfig {
                state_dir: state.clone(),
                image,
                accel: Accel::Tcg,
                reserved_memory_mib: RESERVED_MIB,
                c86: None,
                arm64: None,
            },
            log.sink(),
        )
        .await
        .expect("open"),
    );
    let driver = Arc::new(CountingDriver::new(qemu.clone()));
    let (s, body) = api_at(
        &url,
        "POST",
        "/api/v1/admin/driver-tokens",
        &admin,
        Some(serde_json::json!({"provider": "qemu", "ttl_seconds": 3600})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let running = RunningDriver::start(driver.clone(), log, &url, "qemu", Some(token)).await;
    // Healthy: the controller has recorded what the driver offers.
    assert!(
        yunshu_e2e::eventually(Duration::from_secs(30), || async {
            let (_, body) = api_at(&url, "GET", "/api/v1/admin/drivers", &admin, None).await;
            body.as_array().is_some_and(|l| {
                l.iter()
                    .any(|d| d["provider"] == "qemu" && d["health"].to_string().contains("healthy"))
            })
        })
        .await,
        "the QEMU driver never turned healthy"
    );

    // One order per system, two one-VM lines each (the last may have one),
    // accepted now, approved one after another between kills.
    let people = People::create(&url, &admin).await;
    let mut orders = Vec::new();
    // (system, VMs it asks for)
    let mut systems = Vec::new();
    for i in 0..systems_count {
        let lines: Vec<_> = (0..LINES_PER_SYSTEM)
            .filter(|l| i * LINES_PER_SYSTEM + l < vms_asked)
            .map(|l| tiny_vm_line(&format!("app{l}")))
            .collect();
        let n = lines.len();
        let (system, order) = people
            .accepted_order(&url, &format!("QEMU 崩溃测试系统{i}"), "qemu", lines)
            .await;
        orders.push(order);
        systems.push((system, n));
    }
    let approve_at = |i: usize| i * KILLS / (2 * systems_count);

    let mut progress = Vec::new();
    let mut approved = 0;
    for k in 0..KILLS {
        while approved < orders.len() && approve_at(approved) <= k {
            people.approve(&url, &orders[approved]).await;
            approved += 1;
        }
        let leads = yunshu_e2e::eventually(Duration::from_secs(60), || async {
            try_api_at(&url, "GET", "/api/v1/capacity", &people.zhou, None)
                .await
                .is_ok_and(|(s, body)| s == 200 && body["leader"] == true)
        })
        .await;
        assert!(
            leads,
            "the reconciler never started; log:\n{}",
            tail(&yunshu.log_text(), 60)
        );
        tokio::time::sleep(Duration::from_millis(rng.range(50, 400))).await;
        yunshu.kill();
        progress.push((list_vms(&*qemu).await.len(), qemu_processes(&state).len()));
        yunshu.restart();
        yunshu.wait_healthy(Duration::from_secs(30)).await;
    }
    let restarted_at = Instant::now();
    eprintln!(
        "qemu_crash: {KILLS} SIGKILLs; (VMs in the driver, QEMU processes) at each kill: {progress:?}"
    );

    let ready = std::cell::Cell::new(0);
    let converged = yunshu_e2e::eventually(Duration::from_secs(90), || {
        let (people, orders, url, ready) = (&people, &orders, &url, &ready);
        async move {
            let mut n = 0;
            for order in orders {
                if people.order_state(url, order).await.as_deref() == Some("test_env_ready") {
                    n += 1;
                }
            }
            ready.set(n);
            n == orders.len()
        }
    })
    .await;
    let vms = list_vms(&*qemu).await;
    assert!(
        converged,
        "{}/{} orders ready 90 s after the last restart; the driver has {} VMs: {:?}; \
         QEMU processes: {:?}; VM files: {}; log:\n{}",
        ready.get(),
        orders.len(),
        vms.len(),
        vms.iter()
            .map(|v| (&v.id, v.phase, &v.message))
            .collect::<Vec<_>>(),
        qemu_processes(&state),
        vm_files(&state),
        important(&yunshu.log_text())
    );
    eprintln!(
        "qemu_crash: converged {:.1} s after the last restart",
        restarted_at.elapsed().as_secs_f64()
    );

    // Every VM asked for exactly once in the driver, running.
    let ids: BTreeSet<&str> = vms.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), vms.len(), "an id listed twice: {ids:?}");
    assert_eq!(vms.len(), vms_asked, "exactly the approved VMs: {ids:?}");
    for (system, lines) in &systems {
        let lines = *lines;
        let of_system = ids
            .iter()
            .filter(|i| i.starts_with(&format!("vm-{system}-")))
            .count();
        assert_eq!(of_system, lines, "{system}: {ids:?}");
        assert!(
            driver.peak_live(system) <= lines,
            "{system} had {} VMs at once",
            driver.peak_live(system)
        );
    }
    let not_running: Vec<_> = vms
        .iter()
        .filter(|v| v.phase != v1::Phase::Running as i32)
        .map(|v| (&v.id, v.phase, &v.message))
        .collect();
    assert!(not_running.is_empty(), "not running: {not_running:?}");
    let refusals = driver.refusals();
    assert!(refusals.is_empty(), "the driver refused: {refusals:?}");

    // Exactly one live QEMU per VM, the one the driver names; none extra.
    let processes = qemu_processes(&state);
    let mut by_vm: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (pid, name) in &processes {
        by_vm.entry(name.as_str()).or_default().push(*pid);
    }
    assert_eq!(
        by_vm.keys().copied().collect::<BTreeSet<_>>(),
        ids,
        "QEMU processes by VM: {by_vm:?}"
    );
    for v in &vms {
        let pid: u32 = v.outputs["pid"].parse().expect("pid output");
        assert_eq!(by_vm[v.id.as_str()], vec![pid], "{}: {by_vm:?}", v.id);
    }
    assert_eq!(processes.len(), vms_asked, "{processes:?}");

    // One VPC per system, its namespace there.
    let vpcs: Vec<String> = list_all(&*qemu)
        .await
        .into_iter()
        .filter(|r| r.kind == v1::ResourceKind::Vpc as i32)
        .map(|r| r.id)
        .collect();
    assert_eq!(vpcs.len(), systems.len(), "{vpcs:?}");
    let vpc_namespaces: BTreeSet<String> = vpcs
        .iter()
        .map(|v| yunshu_qemu::net::namespace(v))
        .collect();
    let present = namespaces();
    assert!(
        vpc_namespaces.is_subset(&present),
        "{vpc_namespaces:?} not all in {present:?}"
    );

    // Every system exits: nothing of the test is left on the host.
    let mut exits = Vec::new();
    for (system, _) in &systems {
        let (s, body) = api_at(
            &url,
            "POST",
            "/api/v1/orders",
            &people.wang,
            Some(serde_json::json!({"kind": "exit", "system": system, "note": "下线"})),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let exit = body["id"].as_str().expect("id").to_owned();
        for (who, to) in [(&people.wang, "submitted"), (&people.sun, "accepted")] {
            let (s, body) = api_at(
                &url,
                "POST",
                &format!("/api/v1/orders/{exit}/transitions"),
                who,
                Some(serde_json::json!({"to": to, "reason": "e2e"})),
            )
            .await;
            assert_eq!(s, 200, "{to}: {body}");
        }
        people.approve(&url, &exit).await;
        exits.push(exit);
    }
    let exited = yunshu_e2e::eventually(Duration::from_secs(90), || {
        let (people, url, exits) = (&people, &url, &exits);
        async move {
            for exit in exits {
                if people.order_state(url, exit).await.as_deref() != Some("exited") {
                    return false;
                }
            }
            true
        }
    })
    .await;
    let left = list_all(&*qemu).await;
    assert!(
        exited && left.is_empty(),
        "exits not carried out; the driver still has {:?}",
        left.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    let orphans = qemu_processes(&state);
    assert!(orphans.is_empty(), "QEMU left after the exits: {orphans:?}");
    let stale: Vec<_> = namespaces()
        .intersection(&vpc_namespaces)
        .cloned()
        .collect();
    assert!(
        stale.is_empty(),
        "VPC namespaces left after the exits: {stale:?}"
    );

    let log_text = yunshu.log_text();
    assert!(!log_text.contains("panicked"), "{}", tail(&log_text, 60));
    yunshu.kill();
    drop(running);
    drop(reaper);
    drop(lbs);
    drop(nets);
    let orphans = qemu_processes(&state);
    assert!(orphans.is_empty(), "QEMU left at the end: {orphans:?}");
    let stale: Vec<_> = namespaces()
        .intersection(&vpc_namespaces)
        .cloned()
        .collect();
    assert!(
        stale.is_empty(),
        "VPC namespaces left at the end: {stale:?}"
    );
    eprintln!(
        "qemu_crash: {KILLS} kills, {vms_asked} guests exactly once, {} applies accepted, \
         test wall time {:.1} s",
        driver.applied.load(std::sync::atomic::Ordering::Relaxed),
        test_started.elapsed().as_secs_f64()
    );
}

/// The controller log's lines worth reading after a failure (no request lines).
fn important(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("yunshu_api::observe"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
