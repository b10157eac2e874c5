//! The three-tier order of `yunshu_e2e::three_tier` against the OpenStack
//! driver, minus what it does not build (bare metal, WAF, backup policy): a
//! VPC with two subnets, security groups, a web VM (one: the test cloud has
//! one compute host and web VMs are kept apart) behind a load balancer
//! with a public IP, a database VM with a volume — Neutron, Nova, Cinder and
//! Octavia objects on the test OpenStack of `tests/openstack` — ready, the
//! public IP bound to the balancer's VIP port in Neutron; then the system's
//! exit leaves nothing of yunshu's in the project. The tenant (110105) has an
//! OpenStack project of its own (`--tenant-project 110105=yunshu-110105`):
//! everything is checked to be there and nothing in the shared project.
//! Needs `tests/openstack/up` (scripts/test runs it).

mod openstack_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, People, RunningDriver};
use yunshu_openstack::cloud::Service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_tier_order_minus_bare_metal_and_waf_runs_to_ready_on_openstack() {
    // Tenant 110105 has a project of its own: everything is made, watched
    // and deleted there, with that project's session; the shared project
    // gets nothing (unmapped tenants are refused).
    let cloud = openstack_env::own_project_cloud().await;
    let shared = openstack_env::tenant_cloud().await;
    assert_ne!(cloud.project_id(), shared.project_id());
    openstack_env::sweep(&cloud).await;
    openstack_env::sweep(&shared).await;
    openstack_env::release_memory(&openstack_env::operator_cloud().await).await;
    let c = Controller::start(Duration::from_secs(3600)).await;
    let people = People::create(&c.url, &c.admin_token).await;
    assert_eq!(people.tenant, openstack_env::OWN_PROJECT.0);
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let driver =
        openstack_env::open_with(openstack_env::config_with_own_project(), log.sink()).await;
    let token = c.token("openstack").await;
    let _running =
        RunningDriver::start(Arc::new(driver), log, &c.url, "openstack", Some(token)).await;
    c.wait_driver_healthy("openstack").await;

    let system = c.create_system(&people.wang, "OpenStack 三层系统").await;
    let mut order = yunshu_e2e::three_tier::three_tier(&system, "x86_64");
    order["provider"] = json!("openstack");
    // What this driver does not build: bare metal, WAF, backup.
    let lines: Vec<_> = order["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["server"]["form"] != "bare_metal")
        .cloned()
        .collect();
    order["lines"] = json!(lines);
    // The test cloud has one compute host, and the web tier's two VMs are
    // kept apart (anti-affinity): one web VM behind the balancer here.
    order["lines"][0]["quantity"] = json!(1);
    order["waf_policies"] = json!([]);
    order["backup_policies"] = json!([]);
    // The test cloud's storage classes are all of the standard tier.
    order["volumes"][0]["tier"] = json!("standard");
    let (s, created) = c
        .api("POST", "/api/v1/orders", &people.wang, Some(order))
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    for (who, to) in [
        (&people.wang, "submitted"),
        (&people.sun, "accepted"),
        (&people.zhou, "approved"),
    ] {
        c.transition(who, &id, to).await;
    }
    let started = Instant::now();
    loop {
        let state = people.order_state(&c.url, &id).await;
        if state.as_deref() == Some("test_env_ready") {
            break;
        }
        if started.elapsed() > Duration::from_secs(420) {
            let (_, o) = c
                .api("GET", &format!("/api/v1/orders/{id}"), &people.wang, None)
                .await;
            let (_, r) = c
                .api(
                    "GET",
                    &format!("/api/v1/systems/{system}/resources"),
                    &people.wang,
                    None,
                )
                .await;
            panic!("order still {state:?}: {o}\n{r}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "three-tier (minus bare metal, WAF, backup) ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (_, list) = c
        .api(
            "GET",
            &format!("/api/v1/systems/{system}/resources"),
            &people.wang,
            None,
        )
        .await;
    let items = list["items"].as_array().expect("items");
    let count = |k: &str| items.iter().filter(|r| r["kind"] == k).count();
    println!(
        "vpc {} subnet {} sg {} vm {} volume {} lb {} eip {}",
        count("vpc"),
        count("subnet"),
        count("security_group"),
        count("vm"),
        count("volume"),
        count("load_balancer"),
        count("eip")
    );
    assert_eq!(
        (count("vpc"), count("subnet"), count("vm"), count("volume")),
        (1, 2, 2, 1),
        "{list}"
    );
    assert_eq!((count("load_balancer"), count("eip")), (1, 1), "{list}");
    for r in items {
        assert_eq!(r["phase"], "running", "{r}");
    }
    // In the tenant's own project, none in the shared one.
    let made = openstack_env::leftovers(&cloud).await;
    assert!(
        made.iter().any(|o| o.starts_with("servers "))
            && made.iter().any(|o| o.starts_with("loadbalancers "))
            && made.iter().any(|o| o.starts_with("volumes ")),
        "not in tenant 110105's project: {made:?}"
    );
    let elsewhere = openstack_env::leftovers(&shared).await;
    assert!(
        elsewhere.is_empty(),
        "made in the shared project: {elsewhere:?}"
    );

    // The public IP is Neutron's floating IP on the balancer's VIP port, a
    // port Neutron knows (the driver makes it: Octavia's no-op network driver
    // names one Neutron has never seen, and the EIP never bound — found when
    // this test first ran).
    let lb = items
        .iter()
        .find(|r| r["kind"] == "load_balancer")
        .expect("lb");
    let lb_id = lb["id"].as_str().expect("lb id");
    let vip = cloud
        .get(Service::Network, &format!("ports?name=ys-{lb_id}-vip"))
        .await
        .expect("ports");
    let vip_port = vip["ports"][0]["id"]
        .as_str()
        .expect("the VIP port in Neutron");
    let fips = cloud
        .get(Service::Network, "floatingips?tags=yunshu")
        .await
        .expect("floating IPs");
    let fips = fips["floatingips"].as_array().expect("floatingips");
    assert_eq!(fips.len(), 1, "{fips:?}");
    assert_eq!(fips[0]["port_id"], vip_port, "{fips:?}");
    let balancer = cloud
        .get(
            Service::LoadBalancer,
            &format!("lbaas/loadbalancers?name=ys-{lb_id}"),
        )
        .await
        .expect("load balancers");
    assert_eq!(balancer["loadbalancers"][0]["vip_port_id"], vip_port);

    // Delivered, then the system exits: everything yunshu made is deleted
    // in OpenStack, the VIP port with its balancer.
    c.transition(&people.wang, &id, "delivered").await;
    let exit = c.accepted_exit(&people, &system).await;
    let exit_at = Instant::now();
    c.transition(&people.zhou, &exit, "approved").await;
    loop {
        if people.order_state(&c.url, &exit).await.as_deref() == Some("exited") {
            break;
        }
        assert!(
            exit_at.elapsed() < Duration::from_secs(300),
            "exit not done: {:?}",
            openstack_env::leftovers(&cloud).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "exit approve -> exited: {:.1}s",
        exit_at.elapsed().as_secs_f64()
    );
    let left = openstack_env::leftovers(&cloud).await;
    assert!(
        left.is_empty(),
        "left in OpenStack after the exit: {left:?}"
    );
}
