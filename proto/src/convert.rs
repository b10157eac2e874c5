//! Wire enums ↔ domain enums. The only place both meet.

use yunshu_domain::Architecture;
use yunshu_domain::resource::ResourceKind as DomainKind;

use crate::v1;

pub fn arch_to_wire(a: Architecture) -> v1::Architecture {
    match a {
        Architecture::X86_64 => v1::Architecture::X8664,
        Architecture::Arm64 => v1::Architecture::Arm64,
        Architecture::C86 => v1::Architecture::C86,
    }
}

pub fn arch_from_wire(a: v1::Architecture) -> Option<Architecture> {
    match a {
        v1::Architecture::X8664 => Some(Architecture::X86_64),
        v1::Architecture::Arm64 => Some(Architecture::Arm64),
        v1::Architecture::C86 => Some(Architecture::C86),
        v1::Architecture::Unspecified => None,
    }
}

pub fn kind_to_wire(k: DomainKind) -> v1::ResourceKind {
    match k {
        DomainKind::Vm => v1::ResourceKind::Vm,
        DomainKind::BareMetal => v1::ResourceKind::BareMetal,
        DomainKind::Volume => v1::ResourceKind::Volume,
        DomainKind::Vpc => v1::ResourceKind::Vpc,
        DomainKind::Subnet => v1::ResourceKind::Subnet,
        DomainKind::SecurityGroup => v1::ResourceKind::SecurityGroup,
        DomainKind::Eip => v1::ResourceKind::Eip,
        DomainKind::LoadBalancer => v1::ResourceKind::LoadBalancer,
        DomainKind::WafPolicy => v1::ResourceKind::WafPolicy,
        DomainKind::BackupPolicy => v1::ResourceKind::BackupPolicy,
        DomainKind::Snapshot => v1::ResourceKind::Snapshot,
    }
}

pub fn kind_from_wire(k: v1::ResourceKind) -> Option<DomainKind> {
    Some(match k {
        v1::ResourceKind::Vm => DomainKind::Vm,
        v1::ResourceKind::BareMetal => DomainKind::BareMetal,
        v1::ResourceKind::Volume => DomainKind::Volume,
        v1::ResourceKind::Vpc => DomainKind::Vpc,
        v1::ResourceKind::Subnet => DomainKind::Subnet,
        v1::ResourceKind::SecurityGroup => DomainKind::SecurityGroup,
        v1::ResourceKind::Eip => DomainKind::Eip,
        v1::ResourceKind::LoadBalancer => DomainKind::LoadBalancer,
        v1::ResourceKind::WafPolicy => DomainKind::WafPolicy,
        v1::ResourceKind::BackupPolicy => DomainKind::BackupPolicy,
        v1::ResourceKind::Snapshot => DomainKind::Snapshot,
        v1::ResourceKind::Unspecified => return None,
    })
}

/// The spec variant's kind, to check it against `ApplyRequest.kind`.
pub fn spec_kind(spec: &v1::resource_spec::Spec) -> v1::ResourceKind {
    use v1::resource_spec::Spec;
    match spec {
        Spec::Vm(_) => v1::ResourceKind::Vm,
        Spec::BareMetal(_) => v1::ResourceKind::BareMetal,
        Spec::Volume(_) => v1::ResourceKind::Volume,
        Spec::Vpc(_) => v1::ResourceKind::Vpc,
        Spec::Subnet(_) => v1::ResourceKind::Subnet,
        Spec::SecurityGroup(_) => v1::ResourceKind::SecurityGroup,
        Spec::Eip(_) => v1::ResourceKind::Eip,
        Spec::LoadBalancer(_) => v1::ResourceKind::LoadBalancer,
        Spec::WafPolicy(_) => v1::ResourceKind::WafPolicy,
        Spec::BackupPolicy(_) => v1::ResourceKind::BackupPolicy,
        Spec::Snapshot(_) => v1::ResourceKind::Snapshot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_and_kind_round_trip() {
        for a in [Architecture::X86_64, Architecture::Arm64, Architecture::C86] {
            assert_eq!(arch_from_wire(arch_to_wire(a)), Some(a));
        }
        assert_eq!(
            kind_from_wire(kind_to_wire(DomainKind::Vm)),
            Some(DomainKind::Vm)
        );
        assert_eq!(kind_from_wire(v1::ResourceKind::Unspecified), None);
    }
}
