//! WAF policies through the QEMU driver's SDK trait, with real processes:
//! two web VMs behind an HAProxy balancer with a public IP, a WAF policy
//! (nginx + ModSecurity + OWASP CRS from Debian's packages) in front of it.
//! From the driver's public namespace ("the internet"): in block mode a
//! normal GET reaches a guest while SQL injection and XSS answer 403 and are
//! in the audit log; detection mode lets the injection through and still
//! logs it; a deny list covering the client answers 403; a rate limit
//! answers 429 beyond it; a driver restart adopts the running nginx (same
//! pid); what a policy names cannot be deleted; deleting the policy restores
//! the direct path and leaves no nginx.

use std::time::{Duration, Instant};

use yunshu_driver_sdk::{Driver, EventLog};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};
use yunshu_qemu::driver::{QemuConfig, QemuDriver};
use yunshu_qemu::guest::{self, GuestArch};
use yunshu_qemu::vm::{Accel, ReapOnDrop};
use yunshu_qemu::{lb, net, waf};

mod common;
use common::{answers, reason, request, running};

const SQLI: &str = "/?id=1%27%20OR%20%271%27=%271";
const XSS: &str = "/?q=%3Cscript%3Ealert(1)%3C/script%3E";

fn vm(id: &str, subnet: &str, group: &str) -> v1::ApplyRequest {
    request(
        K::Vm,
        id,
        1,
        Spec::Vm(v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 1,
            memory_mib: 192,
            image: "yunshu-tiny".to_owned(),
            nics: vec![v1::Nic {
                subnet: subnet.to_owned(),
                ip: String::new(),
            }],
            security_groups: vec![group.to_owned()],
            ..Default::default()
        }),
    )
}

/// The HTTP status and body of a GET from namespace `ns` (status 0: no
/// answer).
async fn get(ns: &str, url: &str) -> (u16, String) {
    let out = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "--max-time",
            "2",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (code.trim().parse().unwrap_or(0), body.trim().to_owned())
}

/// Waits (≤ 5 s: an nginx reload) until `url` answers `code`.
async fn until(ns: &str, url: &str, code: u16) -> String {
    let started = Instant::now();
    loop {
        let (got, body) = get(ns, url).await;
        if got == code {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{url}: {got} (wanted {code}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waf_policy_blocks_attacks_before_the_balancer_and_goes_without_a_trace() {
    if let Err(missing) = waf::Packages::detect() {
        panic!("the WAF packages are needed (scripts/install-deps): {missing}");
    }
    let image = guest::build(&guest::default_cache_dir(), GuestArch::X86_64)
        .await
        .expect("guest image");
    let state = tempfile::tempdir().expect("tempdir");
    let run = std::process::id();
    let (vpc, subnet, group) = (
        format!("vpc-waf-{run}"),
        format!("subnet-waf-{run}"),
        format!("sg-waf-{run}"),
    );
    let _reaper = ReapOnDrop(state.path().join("vms"));
    let _balancers = lb::StopOnDrop(state.path().join("lbs"));
    let _wafs = waf::StopOnDrop(state.path().join("waf"));
    let _services = yunshu_qemu::dhcp::StopOnDrop(state.path().join("dhcp"));
    let _nets = net::DeleteOnDrop(vec![vpc.clone()]);
    let config = QemuConfig {
        state_dir: state.path().to_path_buf(),
        image,
        accel: Accel::Tcg,
        reserved_memory_mib: 1024,
        c86: None,
        arm64: None,
    };
    let public = net::public_namespace(&state.path().display().to_string());
    struct DropNs(String);
    impl Drop for DropNs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .output();
        }
    }
    let _public = DropNs(public.clone());
    let log = EventLog::new(1000);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("open");
    assert!(
        driver.info().kinds.contains(&(K::WafPolicy as i32)),
        "waf_policy declared when its packages are installed"
    );

    driver
        .apply(&request(
            K::Vpc,
            &vpc,
            1,
            Spec::Vpc(v1::VpcSpec {
                cidr: "10.0.0.0/16".to_owned(),
            }),
        ))
        .await
        .expect("vpc");
    driver
        .apply(&request(
            K::Subnet,
            &subnet,
            1,
            Spec::Subnet(v1::SubnetSpec {
                vpc: vpc.clone(),
                cidr: "10.0.1.0/24".to_owned(),
                gateway: String::new(),
            }),
        ))
        .await
        .expect("subnet");
    driver
        .apply(&request(
            K::SecurityGroup,
            &group,
            1,
            Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![v1::SecurityRule {
                    direction: v1::Direction::Ingress as i32,
                    protocol: v1::Protocol::Tcp as i32,
                    port_min: 80,
                    port_max: 80,
                    remote_cidr: "0.0.0.0/0".to_owned(),
                    action: v1::RuleAction::Allow as i32,
                    priority: 100,
                    remote_group: String::new(),
                }],
            }),
        ))
        .await
        .expect("group");
    let (w1, w2) = (format!("vm-waf1-{run}"), format!("vm-waf2-{run}"));
    driver
        .apply(&vm(&w1, &subnet, &group))
        .await
        .expect("web 1");
    driver
        .apply(&vm(&w2, &subnet, &group))
        .await
        .expect("web 2");
    let member = |target: &str| v1::Member {
        target: target.to_owned(),
        port: 80,
        weight: 1,
    };
    let lb_id = format!("lb-waf-{run}");
    driver
        .apply(&request(
            K::LoadBalancer,
            &lb_id,
            1,
            Spec::LoadBalancer(v1::LoadBalancerSpec {
                subnet: subnet.clone(),
                listeners: vec![v1::Listener {
                    protocol: v1::Protocol::Http as i32,
                    port: 80,
                    algorithm: v1::LbAlgorithm::WeightedRoundRobin as i32,
                    health_check: Some(v1::HealthCheck {
                        protocol: v1::Protocol::Http as i32,
                        port: 0,
                        path: "/".to_owned(),
                        interval_seconds: 1,
                        timeout_seconds: 1,
                        healthy_threshold: 1,
                        unhealthy_threshold: 2,
                    }),
                    session_persistence: false,
                    members: vec![member(&w1), member(&w2)],
                }],
            }),
        ))
        .await
        .expect("balancer");
    let eip_id = format!("eip-waf-{run}");
    let eip = driver
        .apply(&request(
            K::Eip,
            &eip_id,
            1,
            Spec::Eip(v1::EipSpec {
                bandwidth_mbps: 20,
                bind_to: lb_id.clone(),
            }),
        ))
        .await
        .expect("public ip");
    let public_ip = eip.outputs["public_ip"].clone();
    running(&driver, &w1).await;
    running(&driver, &w2).await;
    let url = |path: &str| format!("http://{public_ip}{path}");
    // Both guests up behind the balancer before any WAF.
    let started = Instant::now();
    loop {
        let seen = answers(&public, &url("/"), 4).await;
        if seen.contains(&w1) && seen.contains(&w2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(get(&public, &url(SQLI)).await.0, 200, "no WAF yet");

    let policy_id = format!("waf-{run}");
    let policy = |generation: u64, spec: v1::WafPolicySpec| {
        request(K::WafPolicy, &policy_id, generation, Spec::WafPolicy(spec))
    };
    let block = v1::WafPolicySpec {
        rule_sets: vec!["owasp-crs-4/sqli".to_owned(), "owasp-crs-4/xss".to_owned()],
        mode: v1::WafMode::Block as i32,
        allow_cidrs: Vec::new(),
        deny_cidrs: Vec::new(),
        cc_limit: None,
        // The public IP: the balancer it is bound to.
        targets: vec![eip_id.clone()],
    };

    // Refusals: an unknown rule set, a target that does not exist.
    let e = driver
        .apply(&policy(
            1,
            v1::WafPolicySpec {
                rule_sets: vec!["owasp-crs-4/nope".to_owned()],
                ..block.clone()
            },
        ))
        .await
        .expect_err("unknown rule set");
    assert_eq!(reason(&e), "INVALID_SPEC", "{e:?}");
    let e = driver
        .apply(&policy(
            1,
            v1::WafPolicySpec {
                targets: vec!["lb-nope".to_owned()],
                ..block.clone()
            },
        ))
        .await
        .expect_err("no such target");
    assert_eq!(reason(&e), "DEPENDENCY_NOT_FOUND", "{e:?}");

    // Block mode: a normal GET reaches a guest, attacks get 403 and are
    // logged.
    let made = driver.apply(&policy(1, block.clone())).await.expect("waf");
    assert_eq!(made.outputs["protects"], lb_id, "{made:?}");
    assert_eq!(made.outputs["mode"], "block");
    let audit = std::path::PathBuf::from(&made.outputs[&format!("audit_log.{lb_id}")]);
    let waf_dir = state.path().join("waf").join(&lb_id);
    let pid = waf::running_pid(&waf_dir).expect("nginx runs");
    let page = until(&public, &url("/"), 200).await;
    assert!(page == w1 || page == w2, "a guest's page: {page}");
    until(&public, &url(SQLI), 403).await;
    until(&public, &url(XSS), 403).await;
    let logged = std::fs::read_to_string(&audit).expect("audit log");
    assert!(logged.contains("id \"942"), "SQLi rule in the audit log");
    assert!(logged.contains("id \"941"), "XSS rule in the audit log");
    assert!(logged.contains("%3Cscript%3E"), "the XSS request logged");

    // What the policy names stays.
    let e = driver.delete(K::Eip, &eip_id).await.expect_err("named");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");

    // Detection mode on the balancer itself: let through, still logged.
    let detect = v1::WafPolicySpec {
        mode: v1::WafMode::Detect as i32,
        targets: vec![lb_id.clone()],
        ..block.clone()
    };
    driver
        .apply(&policy(2, detect.clone()))
        .await
        .expect("detect");
    let marked = format!("{SQLI}&detect={run}");
    until(&public, &url(&marked), 200).await;
    let logged = std::fs::read_to_string(&audit).expect("audit log");
    assert!(
        logged.contains(&format!("detect={run}")),
        "detected, logged, let through"
    );
    let e = driver
        .delete(K::LoadBalancer, &lb_id)
        .await
        .expect_err("named");
    assert_eq!(reason(&e), "RESOURCE_IN_USE", "{e:?}");

    // A driver restart adopts the running nginx.
    assert_eq!(
        waf::running_pid(&waf_dir),
        Some(pid),
        "reloaded, not restarted"
    );
    drop(driver);
    let driver = QemuDriver::open(config.clone(), log.sink())
        .await
        .expect("reopen");
    assert_eq!(waf::running_pid(&waf_dir), Some(pid), "adopted");
    let again = driver
        .get(K::WafPolicy, &policy_id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(again.outputs["protects"], lb_id);
    until(&public, &url(&marked), 200).await;

    // A deny list covering the client (the public side's uplink address).
    driver
        .apply(&policy(
            3,
            v1::WafPolicySpec {
                deny_cidrs: vec!["169.254.0.0/24".to_owned()],
                ..block.clone()
            },
        ))
        .await
        .expect("deny");
    until(&public, &url("/"), 403).await;

    // A rate limit: 3 a second, answered 429 beyond it.
    driver
        .apply(&policy(
            4,
            v1::WafPolicySpec {
                cc_limit: Some(v1::CcRateLimit {
                    requests: 3,
                    period_seconds: 1,
                }),
                ..block.clone()
            },
        ))
        .await
        .expect("rate limit");
    until(&public, &url("/"), 200).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(get(&public, &url("/")).await.0);
    }
    assert_eq!(codes[..3], [200, 200, 200], "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.iter().all(|c| [200, 429].contains(c)), "{codes:?}");

    // Deleting the policy: no nginx, the direct path back.
    driver
        .delete(K::WafPolicy, &policy_id)
        .await
        .expect("delete policy")
        .expect("it existed");
    let left = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        left.is_empty() || left.split_whitespace().nth(2) == Some("Z"),
        "nginx left: {left}"
    );
    assert!(!waf_dir.exists(), "WAF directory left");
    assert_eq!(get(&public, &url(SQLI)).await.0, 200, "direct again");
    let seen = answers(&public, &url("/"), 4).await;
    assert!(seen.contains(&w1) && seen.contains(&w2), "{seen:?}");

    for (kind, id) in [
        (K::Eip, eip_id.clone()),
        (K::LoadBalancer, lb_id.clone()),
        (K::Vm, w1.clone()),
        (K::Vm, w2.clone()),
        (K::SecurityGroup, group.clone()),
        (K::Subnet, subnet.clone()),
        (K::Vpc, vpc.clone()),
    ] {
        driver
            .delete(kind, &id)
            .await
            .unwrap_or_else(|e| panic!("delete {id}: {e:?}"))
            .expect("it existed");
    }
}
