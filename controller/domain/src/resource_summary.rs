//! A one-line, language-neutral description of what a resource is (its
//! size, network or rules), for lists such as the portal's system page:
//! numbers, units and identifiers only, so it reads the same in 中文 and
//! English.

use crate::resource::{
    BackupSchedule, BackupType, LbAlgorithm, ListenerProtocol, ResourceSpec, WafMode,
};

fn protocol(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Tcp => "TCP",
        ListenerProtocol::Udp => "UDP",
        ListenerProtocol::Http => "HTTP",
        ListenerProtocol::Https => "HTTPS",
    }
}

fn algorithm(a: LbAlgorithm) -> &'static str {
    match a {
        LbAlgorithm::RoundRobin => "RR",
        LbAlgorithm::WeightedRoundRobin => "WRR",
        LbAlgorithm::WeightedLeastConnections => "WLC",
    }
}

impl ResourceSpec {
    /// E.g. `4 vCPU / 8 GiB x86_64`, `200 GiB fsc-high`, `10.0.0.0/20`,
    /// `HTTP :80→8080 WRR`, `incremental daily 18:00Z 7d`.
    pub fn summary(&self) -> String {
        match self {
            ResourceSpec::Vm(vm) => format!(
                "{} vCPU / {} GiB {}",
                vm.vcpu,
                vm.memory_mib.get() / 1024,
                vm.arch
            ),
            ResourceSpec::BareMetal(bm) => match &bm.flavor {
                Some(model) => format!("{} {model}", bm.arch),
                None => bm.arch.to_string(),
            },
            ResourceSpec::Volume(v) => format!("{} GiB {}", v.size_gib, v.storage_class.as_str()),
            ResourceSpec::Vpc(v) => v.cidr.to_string(),
            ResourceSpec::Subnet(s) => s.cidr.to_string(),
            ResourceSpec::SecurityGroup(g) => format!("{} rules", g.rules.len()),
            ResourceSpec::Eip(e) => format!("{} Mbps", e.bandwidth_mbps),
            ResourceSpec::LoadBalancer(lb) => lb
                .listeners
                .iter()
                .map(|l| {
                    format!(
                        "{} :{}→{} {}",
                        protocol(l.protocol),
                        l.port,
                        l.backend_port,
                        algorithm(l.algorithm)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            ResourceSpec::WafPolicy(w) => {
                let mode = match w.mode {
                    WafMode::Block => "block",
                    WafMode::Detect => "detect",
                };
                let sets: Vec<String> = w
                    .rule_sets
                    .iter()
                    .map(|s| {
                        let wire = s.wire_name();
                        wire.rsplit('/').next().unwrap_or(wire).to_owned()
                    })
                    .collect();
                let mut out = format!("{mode} {}", sets.join("+"));
                if let Some(cc) = w.cc_limit {
                    out.push_str(&format!(" CC {}/{}s", cc.requests, cc.period_seconds));
                }
                out
            }
            ResourceSpec::BackupPolicy(b) => {
                let kind = match b.backup_type {
                    BackupType::Full => "full",
                    BackupType::Differential => "differential",
                    BackupType::Incremental => "incremental",
                };
                let when = match b.schedule {
                    BackupSchedule::Daily { hour } => format!("daily {hour:02}:00Z"),
                    BackupSchedule::Weekly { weekday, hour } => {
                        format!("weekly d{weekday} {hour:02}:00Z")
                    }
                };
                format!("{kind} {when} {}d {} GiB", b.retention_days, b.capacity_gib)
            }
            ResourceSpec::Snapshot(s) => format!("of {}", s.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::resource::ResourceSpec;

    fn spec(v: serde_json::Value) -> ResourceSpec {
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn summaries_say_size_network_and_rules() {
        let lb = spec(serde_json::json!({"kind": "load_balancer", "spec": {
            "subnet": "subnet-110105001-gov", "members": [],
            "listeners": [{"protocol": "http", "port": 80, "backend_port": 8080}]}}));
        assert_eq!(lb.summary(), "HTTP :80→8080 WRR");
        let backup = spec(serde_json::json!({"kind": "backup_policy", "spec": {
            "targets": [], "backup_type": "incremental", "schedule": {"every": "daily", "hour": 18},
            "retention_days": 7, "capacity_gib": 200}}));
        assert_eq!(backup.summary(), "incremental daily 18:00Z 7d 200 GiB");
        let waf = spec(serde_json::json!({"kind": "waf_policy", "spec": {
            "mode": "block", "rule_sets": ["sqli", "xss"],
            "cc_limit": {"requests": 100, "period_seconds": 60}}}));
        assert_eq!(waf.summary(), "block sqli+xss CC 100/60s");
        let vpc = spec(serde_json::json!({"kind": "vpc", "spec": {"cidr": "10.20.0.0/16"}}));
        assert_eq!(vpc.summary(), "10.20.0.0/16");
    }
}
