//! The test OpenStack of `tests/openstack` (started by `scripts/test`): where
//! its openrc files are and the driver configured for it.

// Shared by several test binaries; each uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use yunshu_driver_sdk::EventSink;
use yunshu_openstack::OpenStackDriver;
use yunshu_openstack::config::{DriverConfig, OsVars, Unmapped, rescoped_projects};
use yunshu_proto::v1::Architecture;

/// `$YUNSHU_OS_HOME`, else `~/.cache/yunshu-openstack`.
pub fn home() -> PathBuf {
    std::env::var_os("YUNSHU_OS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/yunshu-openstack")
        })
}

fn openrc(name: &str) -> OsVars {
    let path = home().join(name);
    assert!(
        path.exists(),
        "{} is missing: the test OpenStack is not running — start it with `tests/openstack/up` \
         (scripts/test does), then run this test again",
        path.display()
    );
    OsVars::from_openrc(&path).expect("openrc readable")
}

/// The driver's configuration for the test cloud: resources in project
/// `yunshu` as its member, Placement and flavors as admin.
pub fn config() -> DriverConfig {
    DriverConfig {
        tenant: openrc("openrc.yunshu")
            .cloud("tenant")
            .expect("tenant openrc"),
        projects: Vec::new(),
        unmapped: Default::default(),
        operator: Some(openrc("openrc").cloud("operator").expect("admin openrc")),
        zone_prefix: String::new(),
        area_suffix: "gov".to_owned(),
        internet_area_suffix: "internet".to_owned(),
        images: [("麒麟 V10".to_owned(), "fake-image".to_owned())]
            .into_iter()
            .collect(),
        default_image: "fake-image".to_owned(),
        external_network: "public".to_owned(),
        clock_mhz: 2600,
        // Nova's fake virt driver states no architecture.
        default_arch: Some(Architecture::X8664),
        iops_per_disk: 3000,
        bandwidth_mbps: 1000,
        // The test cloud's fake Cinder backend says "infinite".
        infinite_storage_gib: 1000,
        poll_every: Duration::from_secs(1),
        state_dir: None,
    }
}

/// The e2e tenant (`yunshu_e2e::People`, 110105) and the project of its own
/// that `tests/openstack/bootstrap.py` makes for it.
pub const OWN_PROJECT: (&str, &str) = ("110105", "yunshu-110105");

/// [`config`] with tenant 110105 in its own project and every other tenant
/// refused: nothing can fall back to the shared project unseen.
pub fn config_with_own_project() -> DriverConfig {
    let mut config = config();
    let (tenant, project) = OWN_PROJECT;
    config.projects = rescoped_projects(&config.tenant, &[format!("{tenant}={project}")])
        .expect("tenant project mapping");
    config.unmapped = Unmapped::Refuse;
    config
}

/// The session of tenant 110105's own project.
pub async fn own_project_cloud() -> yunshu_openstack::cloud::Cloud {
    let config = config_with_own_project();
    yunshu_openstack::cloud::Cloud::connect(&config.projects[0].cloud)
        .await
        .expect("the own project's session")
}

pub async fn open(events: EventSink) -> OpenStackDriver {
    open_with(config(), events).await
}

pub async fn open_with(config: DriverConfig, events: EventSink) -> OpenStackDriver {
    OpenStackDriver::open(config, events)
        .await
        .unwrap_or_else(|e| {
            let mut msg = e.to_string();
            let mut cur = std::error::Error::source(&e);
            while let Some(s) = cur {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                cur = s.source();
            }
            panic!("opening the test OpenStack ({}): {msg}", home().display())
        })
}

/// The tenant's session, for acting on the cloud behind yunshu's back.
pub async fn tenant_cloud() -> yunshu_openstack::cloud::Cloud {
    yunshu_openstack::cloud::Cloud::connect(&config().tenant)
        .await
        .expect("tenant session")
}

/// Deletes what yunshu made in the tenant's project (objects tagged
/// `yunshu`), so a test leaves the shared test cloud as it found it.
pub async fn sweep(cloud: &yunshu_openstack::cloud::Cloud) {
    use serde_json::Value;
    use yunshu_openstack::cloud::Service;
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect()
    };
    let list = |service, path: &'static str| async move {
        cloud.get(service, path).await.unwrap_or(Value::Null)
    };
    let servers = list(Service::Compute, "servers?tags=yunshu").await;
    for id in ids(&servers, "servers") {
        let _ = cloud
            .delete(Service::Compute, &format!("servers/{id}"))
            .await;
    }
    // Ports are released by Nova once their server is gone.
    for _ in 0..60 {
        let left = list(Service::Compute, "servers?tags=yunshu").await;
        if ids(&left, "servers").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Load balancers (cascade: listeners, pools, members), before the
    // subnets their VIPs are on.
    let lbs = list(Service::LoadBalancer, "lbaas/loadbalancers").await;
    let ours: Vec<String> = lbs["loadbalancers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["name"].as_str().is_some_and(|n| n.starts_with("ys-")))
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect();
    for id in &ours {
        let _ = cloud
            .call(
                Service::LoadBalancer,
                yunshu_openstack::cloud::Method::Delete,
                &format!("lbaas/loadbalancers/{id}?cascade=true"),
                None,
            )
            .await;
    }
    for _ in 0..120 {
        let left = list(Service::LoadBalancer, "lbaas/loadbalancers").await;
        let any = left["loadbalancers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| {
                l["id"]
                    .as_str()
                    .is_some_and(|i| ours.iter().any(|o| o == i))
            });
        if !any {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Volumes yunshu made (metadata yunshu_id); detached by their server's
    // deletion above.
    let vols = list(Service::Volume, "volumes/detail").await;
    for v in vols["volumes"].as_array().into_iter().flatten() {
        if v["metadata"]["yunshu_id"].is_string()
            && let Some(id) = v["id"].as_str()
        {
            let _ = cloud
                .delete(Service::Volume, &format!("volumes/{id}"))
                .await;
        }
    }
    for (path, key) in [
        ("floatingips?tags=yunshu", "floatingips"),
        ("ports?tags=yunshu", "ports"),
    ] {
        let v = list(Service::Network, path).await;
        let collection = path.split('?').next().unwrap_or_default();
        for id in ids(&v, key) {
            let _ = cloud
                .delete(Service::Network, &format!("{collection}/{id}"))
                .await;
        }
    }
    let routers = list(Service::Network, "routers?tags=yunshu").await;
    let subnets = list(Service::Network, "subnets?tags=yunshu").await;
    for r in ids(&routers, "routers") {
        for s in ids(&subnets, "subnets") {
            let _ = cloud
                .put(
                    Service::Network,
                    &format!("routers/{r}/remove_router_interface"),
                    serde_json::json!({"subnet_id": s}),
                )
                .await;
        }
        let _ = cloud
            .delete(Service::Network, &format!("routers/{r}"))
            .await;
    }
    for s in ids(&subnets, "subnets") {
        let _ = cloud
            .delete(Service::Network, &format!("subnets/{s}"))
            .await;
    }
    for (path, key, collection) in [
        ("networks?tags=yunshu", "networks", "networks"),
        (
            "security-groups?tags=yunshu",
            "security_groups",
            "security-groups",
        ),
    ] {
        let v = list(Service::Network, path).await;
        for id in ids(&v, key) {
            let _ = cloud
                .delete(Service::Network, &format!("{collection}/{id}"))
                .await;
        }
    }
}

/// What yunshu made in the tenant's project and is still there, as
/// `"<collection> <name or id>"`: empty once an exit has freed everything.
pub async fn leftovers(cloud: &yunshu_openstack::cloud::Cloud) -> Vec<String> {
    use serde_json::Value;
    use yunshu_openstack::cloud::Service;
    let mut left = Vec::new();
    let label = |o: &Value| {
        o["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .or(o["id"].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    for (service, path, key) in [
        (Service::Compute, "servers?tags=yunshu", "servers"),
        (Service::Network, "floatingips?tags=yunshu", "floatingips"),
        (Service::Network, "ports?tags=yunshu", "ports"),
        (Service::Network, "routers?tags=yunshu", "routers"),
        (Service::Network, "subnets?tags=yunshu", "subnets"),
        (Service::Network, "networks?tags=yunshu", "networks"),
        (
            Service::Network,
            "security-groups?tags=yunshu",
            "security_groups",
        ),
        (
            Service::LoadBalancer,
            "lbaas/loadbalancers",
            "loadbalancers",
        ),
        (Service::Volume, "volumes/detail", "volumes"),
    ] {
        let v = cloud.get(service, path).await.expect("listing");
        for o in v[key].as_array().into_iter().flatten() {
            let ours = match key {
                "loadbalancers" => o["name"].as_str().is_some_and(|n| n.starts_with("ys-")),
                "volumes" => o["metadata"]["yunshu_id"].is_string(),
                _ => true,
            };
            if ours {
                left.push(format!("{key} {}", label(o)));
            }
        }
    }
    left
}

/// The operator's (admin) session: Placement.
pub async fn operator_cloud() -> yunshu_openstack::cloud::Cloud {
    let op = config().operator.expect("operator openrc");
    yunshu_openstack::cloud::Cloud::connect(&op)
        .await
        .expect("operator session")
}

/// A Placement consumer that is not a Nova server: memory held by someone
/// else on the compute node (Nova leaves foreign allocations alone).
pub const BLOCKER: &str = "7e57b10c-0000-4000-8000-000000000018";

/// Allocates memory in Placement to [`BLOCKER`] so that only `leave_mib`
/// stays free on the first compute node; returns that node's provider.
pub async fn hold_memory(op: &yunshu_openstack::cloud::Cloud, leave_mib: u64) -> String {
    use yunshu_openstack::cloud::Service;
    release_memory(op).await;
    let rps = op
        .get(
            Service::Placement,
            "resource_providers?resources=MEMORY_MB:1",
        )
        .await
        .expect("resource providers");
    let rp = rps["resource_providers"][0]["uuid"]
        .as_str()
        .expect("a compute node")
        .to_owned();
    let inv = op
        .get(
            Service::Placement,
            &format!("resource_providers/{rp}/inventories"),
        )
        .await
        .expect("inventories");
    let usage = op
        .get(
            Service::Placement,
            &format!("resource_providers/{rp}/usages"),
        )
        .await
        .expect("usages");
    let mem = &inv["inventories"]["MEMORY_MB"];
    let total = mem["total"].as_u64().expect("total");
    let reserved = mem["reserved"].as_u64().unwrap_or(0);
    let used = usage["usages"]["MEMORY_MB"].as_u64().unwrap_or(0);
    let free = total - reserved - used;
    assert!(free > leave_mib, "only {free} MiB free already");
    op.put(
        Service::Placement,
        &format!("allocations/{BLOCKER}"),
        serde_json::json!({
            "allocations": {rp.as_str(): {"resources": {"MEMORY_MB": free - leave_mib}}},
            "project_id": "e2e-blocker",
            "user_id": "e2e-blocker",
        }),
    )
    .await
    .expect("allocating the blocker");
    rp
}

pub async fn release_memory(op: &yunshu_openstack::cloud::Cloud) {
    let _ = op
        .delete(
            yunshu_openstack::cloud::Service::Placement,
            &format!("allocations/{BLOCKER}"),
        )
        .await;
}
