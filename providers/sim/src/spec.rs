//! Spec checks that need nothing but the spec itself: shapes, ports, CIDRs, enum
//! values left unspecified. A failure is INVALID_ARGUMENT with reason INVALID_SPEC
//! and the offending field in the metadata. Checks that need the datacenter or
//! other resources (storage class known, subnet inside its VPC, capacity) live in
//! `rules`.

use yunshu_proto::errors::{reasons, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;
use yunshu_proto::v1::resource_spec::Spec;

use crate::net::{Cidr, parse_ip};

/// Smallest and largest prefix a VPC or subnet may have: at least 8 addresses, at
/// most a /8 (what real platforms allow, roughly).
pub(crate) const MIN_PREFIX: u8 = 8;
pub(crate) const MAX_PREFIX: u8 = 29;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    status_with(
        Code::InvalidArgument,
        reasons::INVALID_SPEC,
        format!("simulator: invalid spec: {field}: {message}"),
        [("field".to_owned(), field.to_owned())],
    )
}

/// A VPC or subnet CIDR.
pub(crate) fn network_cidr(field: &str, text: &str) -> Result<Cidr, Status> {
    let cidr = Cidr::parse(text).map_err(|e| invalid(field, e))?;
    if !(MIN_PREFIX..=MAX_PREFIX).contains(&cidr.prefix) {
        return Err(invalid(
            field,
            format!(
                "prefix /{} is outside /{MIN_PREFIX} to /{MAX_PREFIX}",
                cidr.prefix
            ),
        ));
    }
    Ok(cidr)
}

fn cidr_list(field: &str, list: &[String]) -> Result<(), Status> {
    for (i, text) in list.iter().enumerate() {
        Cidr::parse(text).map_err(|e| invalid(&format!("{field}[{i}]"), e))?;
    }
    Ok(())
}

fn port(field: &str, port: u32, zero_ok: bool) -> Result<(), Status> {
    if port > 65535 || (port == 0 && !zero_ok) {
        return Err(invalid(field, format!("port {port} is not 1-65535")));
    }
    Ok(())
}

fn known<E: TryFrom<i32>>(field: &str, raw: i32, unspecified_ok: bool) -> Result<(), Status> {
    if E::try_from(raw).is_err() || (raw == 0 && !unspecified_ok) {
        return Err(invalid(
            field,
            format!("value {raw} is not set or not known"),
        ));
    }
    Ok(())
}

fn disk(field: &str, disk: &v1::Disk) -> Result<(), Status> {
    if disk.size_gib == 0 {
        return Err(invalid(&format!("{field}.size_gib"), "must be at least 1"));
    }
    if disk.storage_class.is_empty() {
        return Err(invalid(&format!("{field}.storage_class"), "is required"));
    }
    Ok(())
}

fn nics(field: &str, nics: &[v1::Nic]) -> Result<(), Status> {
    for (i, nic) in nics.iter().enumerate() {
        if nic.subnet.is_empty() {
            return Err(invalid(&format!("{field}[{i}].subnet"), "is required"));
        }
        if !nic.ip.is_empty() && parse_ip(&nic.ip).is_none() {
            return Err(invalid(
                &format!("{field}[{i}].ip"),
                format!("{:?} is not an IPv4 address", nic.ip),
            ));
        }
    }
    Ok(())
}

/// Five-field cron: minute hour day-of-month month day-of-week, digits and `*/,-`.
fn cron(field: &str, text: &str) -> Result<(), Status> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let ok = fields.len() == 5
        && fields.iter().all(|f| {
            f.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '/' | ',' | '-'))
        });
    if !ok {
        return Err(invalid(
            field,
            format!("{text:?} is not a five-field cron expression"),
        ));
    }
    Ok(())
}

/// Checks `spec` on its own.
pub(crate) fn validate(spec: &Spec) -> Result<(), Status> {
    match spec {
        Spec::Vm(vm) => {
            known::<v1::Architecture>("vm.arch", vm.arch, false)?;
            if vm.vcpu == 0 {
                return Err(invalid("vm.vcpu", "must be at least 1"));
            }
            if vm.memory_mib == 0 {
                return Err(invalid("vm.memory_mib", "must be at least 1"));
            }
            if let Some(d) = &vm.system_disk {
                disk("vm.system_disk", d)?;
            }
            for (i, d) in vm.data_disks.iter().enumerate() {
                disk(&format!("vm.data_disks[{i}]"), d)?;
            }
            nics("vm.nics", &vm.nics)?;
            if vm.security_groups.iter().any(String::is_empty) {
                return Err(invalid("vm.security_groups", "empty id"));
            }
        }
        Spec::BareMetal(bm) => {
            known::<v1::Architecture>("bare_metal.arch", bm.arch, false)?;
            nics("bare_metal.nics", &bm.nics)?;
        }
        Spec::Volume(v) => {
            if v.size_gib == 0 {
                return Err(invalid("volume.size_gib", "must be at least 1"));
            }
            if v.storage_class.is_empty() {
                return Err(invalid("volume.storage_class", "is required"));
            }
        }
        Spec::Vpc(vpc) => {
            network_cidr("vpc.cidr", &vpc.cidr)?;
        }
        Spec::Subnet(s) => {
            if s.vpc.is_empty() {
                return Err(invalid("subnet.vpc", "is required"));
            }
            let cidr = network_cidr("subnet.cidr", &s.cidr)?;
            if !s.gateway.is_empty() {
                let gw = parse_ip(&s.gateway).ok_or_else(|| {
                    invalid(
                        "subnet.gateway",
                        format!("{:?} is not an IPv4 address", s.gateway),
                    )
                })?;
                if !cidr.contains(gw) || gw == cidr.net || gw == cidr.last() {
                    return Err(invalid(
                        "subnet.gateway",
                        format!("{} is not a host address of {cidr}", s.gateway),
                    ));
                }
            }
        }
        Spec::SecurityGroup(sg) => {
            for (i, r) in sg.rules.iter().enumerate() {
                let f = |name: &str| format!("security_group.rules[{i}].{name}");
                known::<v1::Direction>(&f("direction"), r.direction, false)?;
                known::<v1::Protocol>(&f("protocol"), r.protocol, false)?;
                known::<v1::RuleAction>(&f("action"), r.action, false)?;
                port(&f("port_min"), r.port_min, true)?;
                port(&f("port_max"), r.port_max, true)?;
                if r.port_min > r.port_max {
                    return Err(invalid(
                        &f("port_min"),
                        format!("port_min {} > port_max {}", r.port_min, r.port_max),
                    ));
                }
                // driver.proto: exactly one of remote_cidr and remote_group.
                match (r.remote_cidr.is_empty(), r.remote_group.is_empty()) {
                    (false, true) => {
                        Cidr::parse(&r.remote_cidr).map_err(|e| invalid(&f("remote_cidr"), e))?;
                    }
                    (true, false) => {}
                    (false, false) => {
                        return Err(invalid(
                            &f("remote_group"),
                            "set together with remote_cidr; a rule names one remote",
                        ));
                    }
                    (true, true) => {
                        return Err(invalid(
                            &f("remote_cidr"),
                            "a rule needs remote_cidr or remote_group",
                        ));
                    }
                }
            }
        }
        Spec::Eip(eip) => {
            if eip.bandwidth_mbps == 0 {
                return Err(invalid("eip.bandwidth_mbps", "must be at least 1"));
            }
        }
        Spec::LoadBalancer(lb) => {
            for (i, l) in lb.listeners.iter().enumerate() {
                let f = |name: &str| format!("load_balancer.listeners[{i}].{name}");
                known::<v1::Protocol>(&f("protocol"), l.protocol, false)?;
                port(&f("port"), l.port, false)?;
                known::<v1::LbAlgorithm>(&f("algorithm"), l.algorithm, true)?;
                if let Some(hc) = &l.health_check {
                    known::<v1::Protocol>(&f("health_check.protocol"), hc.protocol, true)?;
                    // 0 = the listener's port.
                    port(&f("health_check.port"), hc.port, true)?;
                }
                for (k, m) in l.members.iter().enumerate() {
                    if m.target.is_empty() {
                        return Err(invalid(&f(&format!("members[{k}].target")), "is required"));
                    }
                    port(&f(&format!("members[{k}].port")), m.port, true)?;
                }
            }
        }
        Spec::WafPolicy(waf) => {
            known::<v1::WafMode>("waf_policy.mode", waf.mode, false)?;
            if waf.rule_sets.iter().any(String::is_empty) {
                return Err(invalid("waf_policy.rule_sets", "empty rule set name"));
            }
            if waf.targets.iter().any(String::is_empty) {
                return Err(invalid("waf_policy.targets", "empty id"));
            }
            cidr_list("waf_policy.allow_cidrs", &waf.allow_cidrs)?;
            cidr_list("waf_policy.deny_cidrs", &waf.deny_cidrs)?;
            if let Some(cc) = &waf.cc_limit
                && (cc.requests == 0 || cc.period_seconds == 0)
            {
                return Err(invalid(
                    "waf_policy.cc_limit",
                    "requests and period_seconds must be at least 1",
                ));
            }
        }
        Spec::BackupPolicy(b) => {
            if b.target.is_empty() {
                return Err(invalid("backup_policy.target", "is required"));
            }
            known::<v1::BackupType>("backup_policy.type", b.r#type, false)?;
            cron("backup_policy.schedule", &b.schedule)?;
            if b.retention_days == 0 {
                return Err(invalid(
                    "backup_policy.retention_days",
                    "must be at least 1",
                ));
            }
        }
        Spec::Snapshot(s) => {
            if s.source.is_empty() {
                return Err(invalid("snapshot.source", "is required"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(spec: Spec) -> Option<Code> {
        validate(&spec).err().map(|s| s.code())
    }

    #[test]
    fn shapes_and_ports() {
        let vm = v1::VmSpec {
            arch: v1::Architecture::X8664 as i32,
            vcpu: 2,
            memory_mib: 4096,
            ..Default::default()
        };
        assert_eq!(code_of(Spec::Vm(vm.clone())), None);
        assert_eq!(
            code_of(Spec::Vm(v1::VmSpec {
                vcpu: 0,
                ..vm.clone()
            })),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code_of(Spec::Vm(v1::VmSpec {
                memory_mib: 0,
                ..vm.clone()
            })),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code_of(Spec::Vm(v1::VmSpec { arch: 0, ..vm })),
            Some(Code::InvalidArgument)
        );
        let rule = v1::SecurityRule {
            direction: v1::Direction::Ingress as i32,
            protocol: v1::Protocol::Tcp as i32,
            port_min: 443,
            port_max: 80,
            remote_cidr: "0.0.0.0/0".into(),
            action: v1::RuleAction::Allow as i32,
            priority: 1,
            remote_group: String::new(),
        };
        assert_eq!(
            code_of(Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![rule.clone()]
            })),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            code_of(Spec::SecurityGroup(v1::SecurityGroupSpec {
                rules: vec![v1::SecurityRule {
                    port_min: 80,
                    port_max: 443,
                    ..rule
                }]
            })),
            None
        );
        let listener = v1::Listener {
            protocol: v1::Protocol::Http as i32,
            port: 0,
            ..Default::default()
        };
        assert_eq!(
            code_of(Spec::LoadBalancer(v1::LoadBalancerSpec {
                subnet: String::new(),
                listeners: vec![listener],
            })),
            Some(Code::InvalidArgument)
        );
    }

    #[test]
    fn cidrs() {
        for bad in [
            "10.0.0.0",
            "10.0.0.1/16",
            "10.0.0.0/30",
            "10.0.0.0/4",
            "x/8",
        ] {
            assert!(
                validate(&Spec::Vpc(v1::VpcSpec { cidr: bad.into() })).is_err(),
                "{bad}"
            );
        }
        assert!(
            validate(&Spec::Vpc(v1::VpcSpec {
                cidr: "10.0.0.0/16".into()
            }))
            .is_ok()
        );
        let subnet = |gateway: &str| {
            Spec::Subnet(v1::SubnetSpec {
                vpc: "v".into(),
                cidr: "10.0.1.0/24".into(),
                gateway: gateway.into(),
            })
        };
        assert!(validate(&subnet("")).is_ok());
        assert!(validate(&subnet("10.0.1.254")).is_ok());
        assert!(validate(&subnet("10.0.1.255")).is_err());
        assert!(validate(&subnet("10.0.2.1")).is_err());
    }

    #[test]
    fn backup_cron() {
        let b = |schedule: &str| {
            Spec::BackupPolicy(v1::BackupPolicySpec {
                target: "vm-1".into(),
                r#type: v1::BackupType::Full as i32,
                schedule: schedule.into(),
                retention_days: 7,
            })
        };
        assert!(validate(&b("0 2 * * *")).is_ok());
        assert!(validate(&b("*/15 0-6 1,15 * 1-5")).is_ok());
        assert!(validate(&b("daily")).is_err());
        assert!(validate(&b("0 2 * *")).is_err());
    }
}
