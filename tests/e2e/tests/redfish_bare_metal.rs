//! Bare metal through the whole controller, on real machines: the tenant
//! files an order for two bare-metal servers on provider `redfish`, the
//! platform accepts and approves it, and the Redfish driver provisions both
//! systems of the test BMC (`tests/redfish`: sushy-tools over libvirt):
//! virtual media inserted, boot once from CD, power on. Each QEMU machine
//! boots the ISO and prints `YUNSHU-BAREMETAL-BOOTED uuid=<its uuid>` on its
//! serial console; the order becomes ready. The system's exit then powers
//! both off (Redfish `PowerState` Off), ejects the media, sets the boot
//! back to the disk and returns both systems to the free pool.
//!
//! Console logs are read from their length before the order, so a boot of
//! an earlier run never counts.

mod redfish_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use redfish_env::{MODEL, RedfishEnv, console_len, console_since};
use serde_json::{Value, json};
use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_proto::v1;
use yunshu_redfish::RedfishDriver;
use yunshu_redfish::redfish::Power;

fn bare_metal_line(name: &str, quantity: u32) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "bare_metal",
            "architecture": "x86_64", "model": MODEL, "vcpu": 2, "memory_gib": 1,
            "system_disk_gib": 1, "data_disk_gib": 0, "os": "麒麟 V10",
            "purpose": "应用服务器", "backup_gib": 0
        },
        "quantity": quantity
    })
}

async fn order_view(c: &Controller, people: &People, order: &str) -> Value {
    c.api(
        "GET",
        &format!("/api/v1/orders/{order}"),
        &people.wang,
        None,
    )
    .await
    .1
}

async fn wait_order(c: &Controller, people: &People, order: &str, state: &str, patience: Duration) {
    let started = Instant::now();
    loop {
        let view = order_view(c, people, order).await;
        if view["state"] == state {
            return;
        }
        assert!(
            started.elapsed() < patience,
            "order {order} not {state} after {patience:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn bare_metal(driver: &RedfishDriver) -> Vec<v1::ResourceState> {
    driver
        .list(Some(v1::ResourceKind::BareMetal), None, 100)
        .await
        .expect("list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_two_bare_metal_servers_boots_both_from_virtual_media_and_exit_frees_them() {
    let env = RedfishEnv::load();
    assert_eq!(
        env.backend, "libvirt",
        "the test BMC runs its fake backend: no machine would boot (see tests/redfish/README.md)"
    );
    let bmc = env.bmc();
    let systems = bmc.systems().await.expect("the test BMC answers");
    assert_eq!(systems.len(), 2, "{systems:?}");
    let state = tempfile::tempdir().expect("tempdir");
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let redfish = RedfishDriver::open(env.config(state.path()), log.sink())
        .await
        .expect("open");
    assert_eq!(redfish.free_hosts().await.len(), 2);
    let token = c.token("redfish").await;
    let _driver = RunningDriver::start(
        Arc::new(redfish.clone()),
        log,
        &c.url,
        "redfish",
        Some(token),
    )
    .await;
    c.wait_driver_healthy("redfish").await;

    // Where each console is now: only what is printed after counts.
    let offsets: Vec<(String, String, u64)> = systems
        .iter()
        .map(|s| {
            let path = env.console(&s.name);
            (
                s.name.clone(),
                s.uuid.to_ascii_lowercase(),
                console_len(&path),
            )
        })
        .collect();

    let (system, order) = people
        .accepted_order_with(
            &c.url,
            "机房裸金属试点",
            "redfish",
            json!({"lines": [bare_metal_line("render", 2)]}),
        )
        .await;
    let approved_at = Instant::now();
    people.approve(&c.url, &order).await;
    wait_order(
        &c,
        &people,
        &order,
        "test_env_ready",
        Duration::from_secs(300),
    )
    .await;
    let ready_after = approved_at.elapsed();
    let servers = bare_metal(&redfish).await;
    assert_eq!(servers.len(), 2, "{servers:?}");
    for s in &servers {
        assert_eq!(s.phase, v1::Phase::Running as i32, "{s:?}");
        assert!(s.outputs.contains_key("private_ip"), "{s:?}");
    }
    assert!(redfish.free_hosts().await.is_empty(), "both systems held");
    for s in bmc.systems().await.expect("systems") {
        assert_eq!(s.power, Power::On, "{} not powered on", s.name);
        let cd = bmc.cd(&s).await.expect("cd");
        assert!(cd.inserted && cd.image == env.media_url, "{cd:?}");
    }
    // Each machine booted the virtual media and says who it is (both
    // watched at once, so each time is its own).
    let mut seen_after: Vec<(String, Duration)> = Vec::new();
    while seen_after.len() < offsets.len() {
        for (name, uuid, offset) in &offsets {
            if seen_after.iter().any(|(n, _)| n == name) {
                continue;
            }
            let want = format!("{} uuid={uuid}", env.marker).to_ascii_lowercase();
            let printed = console_since(&env.console(name), *offset).to_ascii_lowercase();
            if printed.contains(&want) {
                seen_after.push((name.clone(), approved_at.elapsed()));
            }
        }
        assert!(
            approved_at.elapsed() < Duration::from_secs(420),
            "markers seen only for {seen_after:?}; consoles since the order:\n{}",
            offsets
                .iter()
                .map(|(n, _, o)| format!("{n}: {}", console_since(&env.console(n), *o)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The tenant's view: two bare-metal servers running, with addresses.
    let (_, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let bm: Vec<&Value> = items.iter().filter(|r| r["kind"] == "bare_metal").collect();
    assert_eq!(bm.len(), 2, "{list}");

    // Delivered, then the system exits: powered off, ejected, freed.
    c.transition(&people.wang, &order, "delivered").await;
    let exit = c.accepted_exit(&people, &system).await;
    let exit_at = Instant::now();
    c.transition(&people.zhou, &exit, "approved").await;
    wait_order(&c, &people, &exit, "exited", Duration::from_secs(300)).await;
    let exited_after = exit_at.elapsed();
    assert!(bare_metal(&redfish).await.is_empty(), "servers left");
    assert_eq!(
        redfish.free_hosts().await.len(),
        2,
        "both systems free again"
    );
    for s in bmc.systems().await.expect("systems") {
        assert_eq!(s.power, Power::Off, "{} still powered", s.name);
        assert_eq!(
            s.boot_target, "Hdd",
            "{} boots from {}",
            s.name, s.boot_target
        );
        let cd = bmc.cd(&s).await.expect("cd");
        assert!(!cd.inserted, "{} keeps its media: {cd:?}", s.name);
    }
    println!(
        "approve -> order ready (both RUNNING): {:.1} s; markers: {}; exit approve -> exited (off, ejected, free): {:.1} s",
        ready_after.as_secs_f64(),
        seen_after
            .iter()
            .map(|(n, t)| format!("{n} {:.1} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        exited_after.as_secs_f64()
    );
}
