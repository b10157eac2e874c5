//! Every resource kind end to end (issue 14), through the simulator over gRPC
//! and mutual TLS: a three-tier system — a VPC with two subnets, security
//! groups, two web VMs behind a WRR load balancer with a health check and a
//! WAF policy, a public IP on the load balancer, a database VM with a 200 GiB
//! 高性能 volume and a daily incremental backup kept 7 days, one bare-metal
//! server — reaches `test_env_ready`; the driver holds exactly those resources
//! wired as asked; a change adds a third web VM and it joins the load
//! balancer; an exit deletes everything in reverse order and the driver ends
//! empty. The simulator refuses an Apply that names something missing and a
//! Delete of something still named: it refused nothing.
//!
//! Also the two bare-metal regressions of issue 14: an order of only a
//! bare-metal server is provisioned (it used to wait at `approved` forever),
//! and it is not moved to `test_env_ready` on another order's running VMs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, CountingDriver, People, RunningDriver, eventually, list_all};
use yunshu_proto::v1;
use yunshu_proto::v1::resource_spec::Spec;
use yunshu_sim::{Delays, Sim, SimConfig};

fn line(name: &str, quantity: u32, form: &str) -> Value {
    yunshu_e2e::three_tier::server_line(name, quantity, form, "arm64")
}

fn three_tier(system: &str) -> Value {
    yunshu_e2e::three_tier::three_tier(system, "arm64")
}

/// Submits, accepts and approves an order; returns its id.
async fn approved(controller: &Controller, people: &People, body: Value) -> String {
    let (s, created) = controller
        .api("POST", "/api/v1/orders", &people.wang, Some(body))
        .await;
    assert_eq!(s, 201, "{created}");
    let order = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/orders/{order}/transitions");
    for (who, to) in [
        (&people.wang, "submitted"),
        (&people.sun, "accepted"),
        (&people.zhou, "approved"),
    ] {
        let (s, body) = controller
            .api("POST", &path, who, Some(json!({"to": to, "reason": "e2e"})))
            .await;
        assert_eq!(s, 200, "{to}: {body}");
    }
    order
}

async fn state_of(controller: &Controller, people: &People, order: &str) -> Value {
    controller
        .api(
            "GET",
            &format!("/api/v1/orders/{order}"),
            &people.wang,
            None,
        )
        .await
        .1
}

/// The live (not deleted) resources of the driver, by kind name.
fn by_kind(all: &[v1::ResourceState]) -> BTreeMap<&'static str, Vec<&v1::ResourceState>> {
    let mut out: BTreeMap<&'static str, Vec<&v1::ResourceState>> = BTreeMap::new();
    for r in all {
        if r.phase == v1::Phase::Deleted as i32 {
            continue;
        }
        let kind = v1::ResourceKind::try_from(r.kind)
            .map(|k| k.as_str_name())
            .unwrap_or("?");
        out.entry(kind).or_default().push(r);
    }
    out
}

fn spec(r: &v1::ResourceState) -> &Spec {
    r.spec
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .expect("state carries its spec")
}

async fn start() -> (Controller, Arc<CountingDriver<Sim>>, RunningDriver, People) {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let mut config = SimConfig::demo();
    config.delays = Delays::uniform(10);
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Arc::new(CountingDriver::new(Arc::new(
        Sim::new(config, log.sink()).expect("simulator"),
    )));
    let token = controller.token("sim").await;
    let driver = RunningDriver::start(sim.clone(), log, &controller.url, "sim", Some(token)).await;
    let people = People::create(&controller.url, &controller.admin_token).await;
    (controller, sim, driver, people)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_tier_system_is_built_wired_grown_and_taken_down_in_order() {
    let (controller, sim, _driver, people) = start().await;
    let system = controller.create_system(&people.wang, "门户网站").await;
    let order = approved(&controller, &people, three_tier(&system)).await;
    let ready = eventually(Duration::from_secs(60), || {
        let (controller, people, order) = (&controller, &people, &order);
        async move { state_of(controller, people, order).await["state"] == "test_env_ready" }
    })
    .await;
    let all = list_all(&*sim).await;
    assert!(
        ready,
        "not ready: {}\ndriver: {:?}",
        state_of(&controller, &people, &order).await,
        all.iter().map(|r| (&r.id, r.phase)).collect::<Vec<_>>()
    );

    // Exactly what was asked for, every one of it running.
    let kinds = by_kind(&all);
    let count = |k: &str| kinds.get(k).map_or(0, Vec::len);
    assert_eq!(
        [
            count("RESOURCE_KIND_VPC"),
            count("RESOURCE_KIND_SUBNET"),
            count("RESOURCE_KIND_SECURITY_GROUP"),
            count("RESOURCE_KIND_VM"),
            count("RESOURCE_KIND_BARE_METAL"),
            count("RESOURCE_KIND_VOLUME"),
            count("RESOURCE_KIND_LOAD_BALANCER"),
            count("RESOURCE_KIND_EIP"),
            count("RESOURCE_KIND_WAF_POLICY"),
            count("RESOURCE_KIND_BACKUP_POLICY"),
        ],
        [1, 2, 3, 3, 1, 1, 1, 1, 1, 1],
        "{:?}",
        all.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert_eq!(count("RESOURCE_KIND_SNAPSHOT"), 0);
    assert!(
        all.iter().all(|r| r.phase == v1::Phase::Running as i32),
        "{:?}",
        all.iter().map(|r| (&r.id, r.phase)).collect::<Vec<_>>()
    );
    assert!(all.iter().all(|r| r.tenant == "110105"));

    // Wired as asked.
    let one = |k: &str| kinds[k][0];
    let vpc = one("RESOURCE_KIND_VPC");
    let lb = one("RESOURCE_KIND_LOAD_BALANCER");
    let Spec::Vpc(v) = spec(vpc) else { panic!() };
    assert_eq!(v.cidr, "10.20.0.0/16");
    let subnets: BTreeMap<String, &v1::SubnetSpec> = kinds["RESOURCE_KIND_SUBNET"]
        .iter()
        .map(|s| match spec(s) {
            Spec::Subnet(sub) => (sub.cidr.clone(), sub),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        subnets.keys().collect::<Vec<_>>(),
        ["10.20.1.0/24", "10.20.2.0/24"]
    );
    assert!(subnets.values().all(|s| s.vpc == vpc.id));
    let Spec::LoadBalancer(lbs) = spec(lb) else {
        panic!()
    };
    let listener = &lbs.listeners[0];
    assert_eq!(
        listener.algorithm,
        v1::LbAlgorithm::WeightedRoundRobin as i32
    );
    let check = listener.health_check.as_ref().expect("health check");
    assert_eq!((check.path.as_str(), check.port), ("/healthz", 8080));
    let web: Vec<&str> = kinds["RESOURCE_KIND_VM"]
        .iter()
        .filter(|vm| match spec(vm) {
            Spec::Vm(v) => {
                v.security_groups.len() == 2
                    && lbs.listeners[0].members.iter().any(|m| m.target == vm.id)
            }
            _ => false,
        })
        .map(|vm| vm.id.as_str())
        .collect();
    assert_eq!(web.len(), 2, "two web VMs behind the LB, in two groups");
    let Spec::Eip(eip) = spec(one("RESOURCE_KIND_EIP")) else {
        panic!()
    };
    assert_eq!(
        (eip.bind_to.as_str(), eip.bandwidth_mbps),
        (lb.id.as_str(), 20)
    );
    let Spec::WafPolicy(waf) = spec(one("RESOURCE_KIND_WAF_POLICY")) else {
        panic!()
    };
    assert_eq!(waf.targets, std::slice::from_ref(&lb.id));
    assert_eq!(waf.rule_sets, ["owasp-crs-4/sqli", "owasp-crs-4/xss"]);
    let Spec::Volume(vol) = spec(one("RESOURCE_KIND_VOLUME")) else {
        panic!()
    };
    assert_eq!(
        (vol.size_gib, vol.storage_class.as_str()),
        (200, "fsc-high")
    );
    // System disks on the standard (普通) class, what the catalog prices.
    assert!(
        kinds["RESOURCE_KIND_VM"].iter().all(|vm| matches!(spec(vm),
            Spec::Vm(v) if v.system_disk.as_ref().is_some_and(|d| d.storage_class == "fsc-standard"))),
        "system disks not on the standard class"
    );
    let db = vol.attach_to.clone();
    assert!(!web.contains(&db.as_str()), "the volume is the database's");
    let Spec::BackupPolicy(bak) = spec(one("RESOURCE_KIND_BACKUP_POLICY")) else {
        panic!()
    };
    assert_eq!(
        (
            bak.target.as_str(),
            bak.r#type,
            bak.schedule.as_str(),
            bak.retention_days
        ),
        (
            db.as_str(),
            v1::BackupType::Incremental as i32,
            "0 18 * * *",
            7
        )
    );
    let Spec::BareMetal(bm) = spec(one("RESOURCE_KIND_BARE_METAL")) else {
        panic!()
    };
    assert_eq!(bm.model, yunshu_sim::DEMO_MODEL_ARM64);
    let db_group = kinds["RESOURCE_KIND_SECURITY_GROUP"]
        .iter()
        .find_map(|g| match spec(g) {
            Spec::SecurityGroup(sg) if sg.rules.iter().any(|r| r.port_min == 3306) => Some(sg),
            _ => None,
        })
        .expect("the db group");
    let web_group = &db_group
        .rules
        .iter()
        .find(|r| r.port_min == 3306)
        .expect("rule")
        .remote_group;
    assert!(
        kinds["RESOURCE_KIND_SECURITY_GROUP"]
            .iter()
            .any(|g| &g.id == web_group),
        "the db group lets the web group in"
    );

    // A change adds a third web VM: it joins the load balancer.
    let (s, body) = controller
        .api(
            "POST",
            &format!("/api/v1/orders/{order}/transitions"),
            &people.wang,
            Some(json!({"to": "delivered"})),
        )
        .await;
    assert_eq!(s, 200, "交付确认: {body}");
    let change = approved(
        &controller,
        &people,
        json!({"kind": "change", "system": system, "provider": "sim",
            "lines": [line("web", 3, "vm")], "note": "扩容"}),
    )
    .await;
    let grown = eventually(Duration::from_secs(60), || {
        let sim = sim.clone();
        async move {
            let all = list_all(&*sim).await;
            let kinds = by_kind(&all);
            let members = kinds
                .get("RESOURCE_KIND_LOAD_BALANCER")
                .and_then(|l| match spec(l[0]) {
                    Spec::LoadBalancer(lb) => Some(lb.listeners[0].members.len()),
                    _ => None,
                });
            let running = kinds.get("RESOURCE_KIND_VM").map_or(0, |v| {
                v.iter()
                    .filter(|vm| vm.phase == v1::Phase::Running as i32)
                    .count()
            });
            members == Some(3) && running == 4
        }
    })
    .await;
    assert!(
        grown,
        "the third web VM never joined: {}",
        state_of(&controller, &people, &change).await
    );

    // Exit: everything goes, in reverse order of what names what.
    let before_exit: BTreeMap<String, Vec<String>> = list_all(&*sim)
        .await
        .iter()
        .map(|r| (r.id.clone(), references(r)))
        .collect();
    let exit = approved(
        &controller,
        &people,
        json!({"kind": "exit", "system": system, "note": "系统下线"}),
    )
    .await;
    let exited = eventually(Duration::from_secs(60), || {
        let (controller, people, exit) = (&controller, &people, &exit);
        async move { state_of(controller, people, exit).await["state"] == "exited" }
    })
    .await;
    let left = by_kind(&list_all(&*sim).await)
        .into_values()
        .flatten()
        .map(|r| r.id.clone())
        .collect::<Vec<_>>();
    assert!(exited, "exit not done; driver still has {left:?}");
    assert!(left.is_empty(), "the driver ends empty: {left:?}");
    let calls = sim.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let deleted_at = |id: &str| calls.iter().position(|c| c == &format!("delete {id}"));
    for (id, names) in &before_exit {
        let Some(mine) = deleted_at(id) else {
            panic!("{id} was never deleted: {calls:?}");
        };
        for target in names {
            let theirs = deleted_at(target).expect("deleted");
            assert!(
                mine < theirs,
                "{id} names {target} but was deleted after it: {calls:?}"
            );
        }
    }
    assert!(
        sim.refusals().is_empty(),
        "the simulator refused: {:?}",
        sim.refusals()
    );
}

/// The ids a driver-side resource names (proto "References between resources").
fn references(r: &v1::ResourceState) -> Vec<String> {
    let mut out: Vec<String> = match spec(r) {
        Spec::Vm(v) => v
            .nics
            .iter()
            .map(|n| n.subnet.clone())
            .chain(v.security_groups.iter().cloned())
            .collect(),
        Spec::BareMetal(b) => b.nics.iter().map(|n| n.subnet.clone()).collect(),
        Spec::Volume(v) => vec![v.attach_to.clone()],
        Spec::Subnet(s) => vec![s.vpc.clone()],
        Spec::SecurityGroup(g) => g.rules.iter().map(|r| r.remote_group.clone()).collect(),
        Spec::Eip(e) => vec![e.bind_to.clone()],
        Spec::LoadBalancer(l) => std::iter::once(l.subnet.clone())
            .chain(
                l.listeners
                    .iter()
                    .flat_map(|x| x.members.iter().map(|m| m.target.clone())),
            )
            .collect(),
        Spec::WafPolicy(w) => w.targets.clone(),
        Spec::BackupPolicy(b) => vec![b.target.clone()],
        Spec::Snapshot(s) => vec![s.source.clone()],
        Spec::Vpc(_) => Vec::new(),
    };
    out.retain(|t| !t.is_empty() && t != &r.id);
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_metal_only_order_is_provisioned_and_not_completed_by_another_orders_vms() {
    let (controller, sim, _driver, people) = start().await;
    let system = controller.create_system(&people.wang, "视频会商").await;
    // A VM order of the same system first, running.
    let vms = approved(
        &controller,
        &people,
        json!({"kind": "onboarding", "system": system, "provider": "sim",
            "lines": [line("app", 1, "vm")]}),
    )
    .await;
    let vm_ready = eventually(Duration::from_secs(30), || {
        let (controller, people, vms) = (&controller, &people, &vms);
        async move { state_of(controller, people, vms).await["state"] == "test_env_ready" }
    })
    .await;
    assert!(vm_ready, "{}", state_of(&controller, &people, &vms).await);
    // The bare-metal order: its server is created and runs, and only then is
    // the order ready (it used to wait at approved forever).
    let bm = approved(
        &controller,
        &people,
        json!({"kind": "onboarding", "system": system, "provider": "sim",
            "lines": [line("render", 1, "bare_metal")]}),
    )
    .await;
    let created = eventually(Duration::from_secs(30), || {
        let sim = sim.clone();
        async move {
            by_kind(&list_all(&*sim).await)
                .get("RESOURCE_KIND_BARE_METAL")
                .is_some_and(|b| b.iter().all(|s| s.phase == v1::Phase::Running as i32))
        }
    })
    .await;
    let view = state_of(&controller, &people, &bm).await;
    assert!(created, "the bare-metal server was never created: {view}");
    let ready = eventually(Duration::from_secs(30), || {
        let (controller, people, bm) = (&controller, &people, &bm);
        async move { state_of(controller, people, bm).await["state"] == "test_env_ready" }
    })
    .await;
    assert!(ready, "{}", state_of(&controller, &people, &bm).await);
    assert!(sim.refusals().is_empty(), "{:?}", sim.refusals());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_not_ready_while_its_bare_metal_cannot_be_placed() {
    let (controller, sim, _driver, people) = start().await;
    let system = controller.create_system(&people.wang, "渲染平台").await;
    let vms = approved(
        &controller,
        &people,
        json!({"kind": "onboarding", "system": system, "provider": "sim",
            "lines": [line("app", 1, "vm")]}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || {
            let (controller, people, vms) = (&controller, &people, &vms);
            async move { state_of(controller, people, vms).await["state"] == "test_env_ready" }
        })
        .await
    );
    // A model no host has: the order waits with a reason, and is never moved
    // to test_env_ready on the other order's running VM.
    let mut bm = line("render", 1, "bare_metal");
    bm["server"]["model"] = json!("No Such Model 9000");
    let order = approved(
        &controller,
        &people,
        json!({"kind": "onboarding", "system": system, "provider": "sim", "lines": [bm]}),
    )
    .await;
    let waits = eventually(Duration::from_secs(30), || {
        let (controller, people, order) = (&controller, &people, &order);
        async move {
            state_of(controller, people, order).await["unschedulable"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("No Such Model 9000"))
        }
    })
    .await;
    let view = state_of(&controller, &people, &order).await;
    assert!(waits, "no reason on the order: {view}");
    // Never moved on the other order's running VM.
    let moved = eventually(Duration::from_secs(2), || {
        let (controller, people, order) = (&controller, &people, &order);
        async move { state_of(controller, people, order).await["state"] != "approved" }
    })
    .await;
    assert!(!moved, "{}", state_of(&controller, &people, &order).await);
    assert!(!by_kind(&list_all(&*sim).await).contains_key("RESOURCE_KIND_BARE_METAL"));
}
