//! Domain resource → driver protocol: the spec of every kind and the placement.
//! The only place the reconciler builds prost messages for Apply.

use yunshu_domain::resource::{
    BackupSchedule, BackupType, Direction, HealthProtocol, IpProtocol, LbAlgorithm,
    ListenerProtocol, Resource, ResourceSpec, RuleRemoteSpec, WafMode,
};
use yunshu_proto::v1;
use yunshu_proto::v1::resource_spec::Spec;

fn direction(d: Direction) -> v1::Direction {
    match d {
        Direction::Ingress => v1::Direction::Ingress,
        Direction::Egress => v1::Direction::Egress,
    }
}

fn ip_protocol(p: IpProtocol) -> v1::Protocol {
    match p {
        IpProtocol::Tcp => v1::Protocol::Tcp,
        IpProtocol::Udp => v1::Protocol::Udp,
        IpProtocol::Icmp => v1::Protocol::Icmp,
        IpProtocol::Any => v1::Protocol::Any,
    }
}

fn listener_protocol(p: ListenerProtocol) -> v1::Protocol {
    match p {
        ListenerProtocol::Tcp => v1::Protocol::Tcp,
        ListenerProtocol::Udp => v1::Protocol::Udp,
        ListenerProtocol::Http => v1::Protocol::Http,
        ListenerProtocol::Https => v1::Protocol::Https,
    }
}

fn algorithm(a: LbAlgorithm) -> v1::LbAlgorithm {
    match a {
        LbAlgorithm::RoundRobin => v1::LbAlgorithm::RoundRobin,
        LbAlgorithm::WeightedRoundRobin => v1::LbAlgorithm::WeightedRoundRobin,
        LbAlgorithm::WeightedLeastConnections => v1::LbAlgorithm::WeightedLeastConnections,
    }
}

/// A five-field cron expression for a UTC schedule.
fn cron(s: BackupSchedule) -> String {
    match s {
        BackupSchedule::Daily { hour } => format!("0 {hour} * * *"),
        // cron counts Sunday as 0; ISO 8601 as 7.
        BackupSchedule::Weekly { weekday, hour } => format!("0 {hour} * * {}", weekday % 7),
    }
}

/// The protocol spec of `res`.
pub fn spec(res: &Resource) -> v1::ResourceSpec {
    let ids = |v: &[yunshu_domain::ResourceId]| -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    };
    let nics = |v: &[yunshu_domain::ResourceId]| -> Vec<v1::Nic> {
        v.iter()
            .map(|s| v1::Nic {
                subnet: s.to_string(),
                ip: String::new(),
            })
            .collect()
    };
    let spec = match res.spec() {
        ResourceSpec::Vm(vm) => Spec::Vm(v1::VmSpec {
            stopped: vm.stopped,
            arch: yunshu_proto::convert::arch_to_wire(vm.arch) as i32,
            vcpu: vm.vcpu.get(),
            memory_mib: vm.memory_mib.get(),
            system_disk: Some(v1::Disk {
                size_gib: u64::from(vm.system_disk_gib.get()),
                storage_class: vm
                    .system_disk_class
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
            data_disks: vm
                .data_disks
                .iter()
                .map(|d| v1::Disk {
                    size_gib: u64::from(d.size_gib.get()),
                    storage_class: d.storage_class.to_string(),
                })
                .collect(),
            image: vm.image.to_string(),
            nics: nics(&vm.nics),
            security_groups: ids(&vm.security_groups),
        }),
        ResourceSpec::BareMetal(bm) => Spec::BareMetal(v1::BareMetalSpec {
            stopped: bm.stopped,
            arch: yunshu_proto::convert::arch_to_wire(bm.arch) as i32,
            model: bm
                .flavor
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            image: bm.image.to_string(),
            nics: nics(&bm.nics),
        }),
        ResourceSpec::Volume(v) => Spec::Volume(v1::VolumeSpec {
            size_gib: u64::from(v.size_gib.get()),
            storage_class: v.storage_class.to_string(),
            attach_to: v
                .attached_to
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            restore_from: v
                .restore_from
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }),
        ResourceSpec::Vpc(v) => Spec::Vpc(v1::VpcSpec {
            cidr: v.cidr.to_string(),
        }),
        ResourceSpec::Subnet(s) => Spec::Subnet(v1::SubnetSpec {
            vpc: s.vpc.to_string(),
            cidr: s.cidr.to_string(),
            gateway: String::new(),
        }),
        ResourceSpec::SecurityGroup(g) => Spec::SecurityGroup(v1::SecurityGroupSpec {
            rules: g
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let (remote_cidr, remote_group) = match &r.remote {
                        RuleRemoteSpec::Cidr(c) => (c.to_string(), String::new()),
                        RuleRemoteSpec::Group(id) => (String::new(), id.to_string()),
                    };
                    let (port_min, port_max) = r
                        .ports
                        .map_or((0, 0), |p| (u32::from(p.from.get()), u32::from(p.to.get())));
                    v1::SecurityRule {
                        direction: direction(r.direction) as i32,
                        protocol: ip_protocol(r.protocol) as i32,
                        port_min,
                        port_max,
                        remote_cidr,
                        action: v1::RuleAction::Allow as i32,
                        // Rules are allow rules; their order is their priority.
                        priority: 100 + u32::try_from(i).unwrap_or(u32::MAX - 100),
                        remote_group,
                    }
                })
                .collect(),
        }),
        ResourceSpec::Eip(e) => Spec::Eip(v1::EipSpec {
            bandwidth_mbps: e.bandwidth_mbps.get(),
            bind_to: e
                .bound_to
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }),
        ResourceSpec::LoadBalancer(lb) => Spec::LoadBalancer(v1::LoadBalancerSpec {
            subnet: lb.subnet.to_string(),
            listeners: lb
                .listeners
                .iter()
                .map(|l| v1::Listener {
                    protocol: listener_protocol(l.protocol) as i32,
                    port: u32::from(l.port.get()),
                    algorithm: algorithm(l.algorithm) as i32,
                    health_check: l.health_check.as_ref().map(|h| v1::HealthCheck {
                        protocol: match h.protocol {
                            HealthProtocol::Tcp => v1::Protocol::Tcp,
                            HealthProtocol::Http => v1::Protocol::Http,
                        } as i32,
                        port: u32::from(h.port.unwrap_or(l.backend_port).get()),
                        path: h.path.as_ref().map(ToString::to_string).unwrap_or_default(),
                        interval_seconds: h.interval_seconds,
                        timeout_seconds: h.timeout_seconds,
                        healthy_threshold: h.healthy_threshold,
                        unhealthy_threshold: h.unhealthy_threshold,
                    }),
                    session_persistence: l.session_persistence,
                    members: lb
                        .members
                        .iter()
                        .map(|m| v1::Member {
                            target: m.to_string(),
                            port: u32::from(l.backend_port.get()),
                            weight: 1,
                        })
                        .collect(),
                })
                .collect(),
        }),
        ResourceSpec::WafPolicy(w) => Spec::WafPolicy(v1::WafPolicySpec {
            rule_sets: w
                .rule_sets
                .iter()
                .map(|r| r.wire_name().to_owned())
                .collect(),
            mode: match w.mode {
                WafMode::Detect => v1::WafMode::Detect,
                WafMode::Block => v1::WafMode::Block,
            } as i32,
            allow_cidrs: w.allow_cidrs.iter().map(ToString::to_string).collect(),
            deny_cidrs: w.deny_cidrs.iter().map(ToString::to_string).collect(),
            cc_limit: w.cc_limit.map(|c| v1::CcRateLimit {
                requests: c.requests.get(),
                period_seconds: c.period_seconds.get(),
            }),
            targets: ids(&w.targets),
        }),
        ResourceSpec::BackupPolicy(b) => Spec::BackupPolicy(v1::BackupPolicySpec {
            target: b
                .targets
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            r#type: match b.backup_type {
                BackupType::Full => v1::BackupType::Full,
                BackupType::Differential => v1::BackupType::Differential,
                BackupType::Incremental => v1::BackupType::Incremental,
            } as i32,
            schedule: cron(b.schedule),
            retention_days: b.retention_days.get(),
        }),
        ResourceSpec::Snapshot(s) => Spec::Snapshot(v1::SnapshotSpec {
            source: s.source.to_string(),
        }),
    };
    v1::ResourceSpec { spec: Some(spec) }
}

/// Where `res` was placed, as the driver reads it.
pub fn placement(res: &Resource) -> Option<v1::Placement> {
    res.placement().map(|p| v1::Placement {
        zone: p.zone.to_string(),
        network_area: p
            .network_area
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        pool: p.pool.as_ref().map(ToString::to_string).unwrap_or_default(),
        host: p.host.as_ref().map(ToString::to_string).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::cron;
    use yunshu_domain::resource::BackupSchedule;

    #[test]
    fn schedules_as_cron() {
        assert_eq!(cron(BackupSchedule::Daily { hour: 18 }), "0 18 * * *");
        assert_eq!(
            cron(BackupSchedule::Weekly {
                weekday: 7,
                hour: 19
            }),
            "0 19 * * 0"
        );
        assert_eq!(
            cron(BackupSchedule::Weekly {
                weekday: 1,
                hour: 2
            }),
            "0 2 * * 1"
        );
    }
}
