//! What the QEMU driver's tests share: requests, waits, HTTP from inside a
//! namespace, and the reason code of a refusal.
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use yunshu_driver_sdk::Driver;
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::QemuDriver;
use yunshu_qemu::vm::Vm;

/// An Apply of `spec` as resource `id` at `generation` for tenant 110105.
pub fn request(kind: K, id: &str, generation: u64, spec: Spec) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.to_owned(),
        generation,
        idempotency_key: format!("{id}@{generation}"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        tenant: "110105".to_owned(),
        ..Default::default()
    }
}

/// The tiny guest as a VM of `arch` with one vCPU, `memory_mib` and no NIC.
pub fn tiny_vm(arch: v1::Architecture, memory_mib: u64) -> Spec {
    Spec::Vm(v1::VmSpec {
        arch: arch as i32,
        vcpu: 1,
        memory_mib,
        image: "yunshu-tiny".to_owned(),
        ..Default::default()
    })
}

/// Waits (≤ 180 s) until VM `id` runs; fails at once if it failed.
pub async fn running(driver: &QemuDriver, id: &str) -> v1::ResourceState {
    let started = Instant::now();
    loop {
        let s = driver.get(K::Vm, id).await.expect("get").expect("the VM");
        if s.phase == v1::Phase::Running as i32 {
            return s;
        }
        assert_ne!(s.phase, v1::Phase::Failed as i32, "failed: {}", s.message);
        assert!(started.elapsed() < Duration::from_secs(180), "{s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `curl` from inside namespace `ns`: the body, or `None` if nothing answered.
pub async fn fetch(ns: &str, url: &str) -> Option<String> {
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-s", "--max-time", "2", url])
        .output()
        .await
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `n` answers from `url` inside `ns`, retrying silence for up to 60 s.
pub async fn answers(ns: &str, url: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let started = Instant::now();
    while seen.len() < n {
        match fetch(ns, url).await {
            Some(page) => seen.push(page),
            None => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{url}: {seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    seen
}

/// Runs an HMP command on the VM in `dir` (e.g. `qemu-io`); its output.
pub async fn hmp(dir: &Path, command: &str) -> String {
    let vm = Vm::adopt(dir).expect("the VM's QEMU");
    let mut q = vm.qmp().await.expect("qmp");
    q.execute(
        "human-monitor-command",
        Some(json!({ "command-line": command })),
    )
    .await
    .expect("hmp")
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The stable reason code of a refusal.
pub fn reason(e: &yunshu_proto::tonic::Status) -> String {
    yunshu_proto::errors::reason(e)
        .map(|r| r.reason)
        .unwrap_or_default()
}
