//! The three-tier system of issue 14's acceptance, as an order body: the e2e
//! test and the `reconcile --mix` bench file the same one.

use serde_json::{Value, json};

/// A server line of `quantity` servers of 4 vCPU / 8 GiB in the government
/// extranet; bare metal is arm64 of the simulator's demo model.
pub fn server_line(name: &str, quantity: u32, form: &str, arch: &str) -> Value {
    let mut line = json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": form,
            "architecture": arch, "vcpu": 4, "memory_gib": 8, "system_disk_gib": 50,
            "data_disk_gib": 0, "os": "麒麟 V10", "purpose": "应用服务器", "backup_gib": 0
        },
        "quantity": quantity
    });
    if form == "bare_metal" {
        line["server"]["architecture"] = json!("arm64");
        line["server"]["model"] = json!(yunshu_sim::DEMO_MODEL_ARM64);
    }
    line
}

/// Resources the three-tier order makes: VPC, 2 subnets, 3 security groups
/// (the default one, web, db), 3 VMs, bare metal, volume, LB, EIP, WAF, backup.
pub const THREE_TIER_RESOURCES: usize = 15;

/// An onboarding order for `system` on provider `sim`: a VPC with two subnets,
/// security groups, two web VMs behind a WRR load balancer with a health check
/// and a WAF policy, a public IP on the load balancer, a database VM with a
/// 200 GiB 高性能 volume and a daily incremental backup kept 7 days, one
/// bare-metal server. VMs are of `vm_arch`.
pub fn three_tier(system: &str, vm_arch: &str) -> Value {
    json!({
        "kind": "onboarding", "system": system, "provider": "sim",
        "lines": [server_line("web", 2, "vm", vm_arch), server_line("db", 1, "vm", vm_arch),
            server_line("bm", 1, "bare_metal", "arm64")],
        "network": {"vpc_cidr": "10.20.0.0/16", "subnets": [
            {"network_area": "gov_extranet", "cidr": "10.20.1.0/24"},
            {"network_area": "internet", "cidr": "10.20.2.0/24"}]},
        "security_groups": [
            {"name": "web", "servers": ["web"], "rules": [
                {"protocol": "tcp", "ports": {"from": 8080, "to": 8080}, "remote": {"cidr": "10.20.2.0/24"}}]},
            {"name": "db", "servers": ["db"], "rules": [
                {"protocol": "tcp", "ports": {"from": 3306, "to": 3306}, "remote": {"group": "web"}}]}],
        "load_balancers": [{"name": "web-lb", "network_area": "internet", "members": "web",
            "listeners": [{"protocol": "http", "port": 80, "backend_port": 8080,
                "algorithm": "weighted_round_robin",
                "health_check": {"protocol": "http", "path": "/healthz"}}]}],
        "waf_policies": [{"name": "web-waf", "load_balancer": "web-lb", "mode": "block",
            "rule_sets": ["sqli", "xss"], "cc_limit": {"requests": 100, "period_seconds": 60}}],
        "public_ips": [{"purpose": "门户访问", "server_name": "web-lb", "ports": [80], "bandwidth_mbps": 20}],
        "volumes": [{"name": "db-data", "server_name": "db", "size_gib": 200, "tier": "high_performance"}],
        "backup_policies": [{"name": "db-nightly", "target": "db", "backup_type": "incremental",
            "window": {"every": "daily", "hour": 2}, "retention_days": 7, "capacity_gib": 200}]
    })
}
