//! Checks that create nothing: who the driver is and whether its inventory hangs
//! together.

use std::collections::HashSet;

use yunshu_proto::v1;

use crate::probe::{Fail, Probe, describe, ensure, fail};

/// `info`: GetInfo answers completely. Returns the info for the run's setup.
pub(crate) async fn info(
    probe: &Probe,
    check: &'static str,
) -> (Option<v1::DriverInfo>, Result<(), Fail>) {
    match probe.get_info(check).await {
        Err(s) => (None, Err(Fail(format!("GetInfo: {}", describe(&s))))),
        Ok(info) => {
            let verdict = judge_info(&info);
            (Some(info), verdict)
        }
    }
}

fn judge_info(info: &v1::DriverInfo) -> Result<(), Fail> {
    ensure!(!info.name.is_empty(), "DriverInfo.name is empty");
    ensure!(!info.version.is_empty(), "DriverInfo.version is empty");
    ensure!(
        info.protocol_version == yunshu_proto::PROTOCOL_VERSION as i32,
        "DriverInfo.protocol_version is {}, expected {} (PROTOCOL_VERSION_1)",
        info.protocol_version,
        yunshu_proto::PROTOCOL_VERSION as i32
    );
    ensure!(!info.provider.is_empty(), "DriverInfo.provider is empty");
    ensure!(!info.kinds.is_empty(), "DriverInfo.kinds is empty");
    for k in &info.kinds {
        match v1::ResourceKind::try_from(*k) {
            Ok(v1::ResourceKind::Unspecified) | Err(_) => {
                fail!("DriverInfo.kinds holds {k}, which is not a resource kind")
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// `inventory_consistent`: every reference resolves, ids are unique, numbers are
/// plausible. Returns the inventory for the run's setup.
pub(crate) async fn inventory(
    probe: &Probe,
    check: &'static str,
) -> (Option<v1::Inventory>, Result<(), Fail>) {
    match probe.get_inventory(check).await {
        Err(s) => (None, Err(Fail(format!("GetInventory: {}", describe(&s))))),
        Ok(inv) => {
            let problems = inventory_problems(&inv);
            let verdict = if problems.is_empty() {
                Ok(())
            } else {
                let more = problems.len().saturating_sub(8);
                let mut text = problems.into_iter().take(8).collect::<Vec<_>>().join("; ");
                if more > 0 {
                    text.push_str(&format!("; and {more} more"));
                }
                Err(Fail(text))
            };
            (Some(inv), verdict)
        }
    }
}

/// Everything wrong with `inv`, one sentence each.
pub(crate) fn inventory_problems(inv: &v1::Inventory) -> Vec<String> {
    let mut problems = Vec::new();
    let mut unique = |what: &str, ids: Vec<&str>| -> HashSet<String> {
        let mut set = HashSet::new();
        for id in ids {
            if id.is_empty() {
                problems.push(format!("a {what} has an empty id"));
            } else if !set.insert(id.to_owned()) {
                problems.push(format!("{what} id {id:?} appears twice"));
            }
        }
        set
    };
    let zones = unique("zone", inv.zones.iter().map(|z| z.id.as_str()).collect());
    let areas = unique(
        "network area",
        inv.network_areas.iter().map(|a| a.id.as_str()).collect(),
    );
    let pools = unique("pool", inv.pools.iter().map(|p| p.id.as_str()).collect());
    unique("host", inv.hosts.iter().map(|h| h.id.as_str()).collect());
    unique(
        "storage class",
        inv.storage_classes.iter().map(|s| s.id.as_str()).collect(),
    );
    unique(
        "ip pool",
        inv.ip_pools.iter().map(|p| p.id.as_str()).collect(),
    );

    let area_zone = |area: &str| {
        inv.network_areas
            .iter()
            .find(|a| a.id == area)
            .map(|a| a.zone.as_str())
    };
    for a in &inv.network_areas {
        if !zones.contains(&a.zone) {
            problems.push(format!(
                "network area {} names unknown zone {:?}",
                a.id, a.zone
            ));
        }
    }
    // Something placed in (zone, area) needs both to exist and the area to belong
    // to that zone.
    let mut placed = |what: String, zone: &str, area: &str| {
        if !zones.contains(zone) {
            problems.push(format!("{what} names unknown zone {zone:?}"));
        }
        if !areas.contains(area) {
            problems.push(format!("{what} names unknown network area {area:?}"));
        } else if let Some(z) = area_zone(area)
            && z != zone
        {
            problems.push(format!(
                "{what} is in zone {zone:?} but its network area {area:?} belongs to zone {z:?}"
            ));
        }
    };
    for p in &inv.pools {
        placed(format!("pool {}", p.id), &p.zone, &p.network_area);
    }
    for b in &inv.bandwidth {
        placed(
            format!("bandwidth of {}/{}", b.zone, b.network_area),
            &b.zone,
            &b.network_area,
        );
    }
    for p in &inv.ip_pools {
        placed(format!("ip pool {}", p.id), &p.zone, &p.network_area);
    }
    for p in &inv.pools {
        let min_clock = match v1::Architecture::try_from(p.arch) {
            Ok(v1::Architecture::X8664 | v1::Architecture::C86) => 2200,
            Ok(v1::Architecture::Arm64) => 2400,
            _ => {
                problems.push(format!("pool {} has no architecture ({})", p.id, p.arch));
                continue;
            }
        };
        if p.clock_mhz < min_clock {
            problems.push(format!(
                "pool {} clocks {} MHz, below the {min_clock} MHz its architecture requires",
                p.id, p.clock_mhz
            ));
        }
        if !(1..=4).contains(&p.vcpu_ratio) {
            problems.push(format!(
                "pool {} has vcpu_ratio {}, outside 1..=4",
                p.id, p.vcpu_ratio
            ));
        }
    }
    for h in &inv.hosts {
        if !pools.contains(&h.pool) {
            problems.push(format!("host {} names unknown pool {:?}", h.id, h.pool));
        }
        if h.cores == 0 {
            problems.push(format!("host {} has 0 cores", h.id));
        }
        if h.memory_mib <= h.reserved_memory_mib {
            problems.push(format!(
                "host {} has {} MiB of memory, not more than its {} MiB reserve",
                h.id, h.memory_mib, h.reserved_memory_mib
            ));
        }
        if h.state == v1::HostState::Unspecified as i32 {
            problems.push(format!("host {} has no state", h.id));
        }
    }
    for s in &inv.storage_classes {
        if !zones.contains(&s.zone) {
            problems.push(format!(
                "storage class {} names unknown zone {:?}",
                s.id, s.zone
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_problems_are_found() {
        let inv = v1::Inventory {
            zones: vec![v1::Zone {
                id: "z".into(),
                name: String::new(),
            }],
            network_areas: vec![
                v1::NetworkArea {
                    id: "a".into(),
                    zone: "z".into(),
                    ..Default::default()
                },
                v1::NetworkArea {
                    id: "b".into(),
                    zone: "nowhere".into(),
                    ..Default::default()
                },
            ],
            pools: vec![v1::Pool {
                id: "p".into(),
                zone: "z".into(),
                network_area: "b".into(),
                arch: v1::Architecture::Arm64 as i32,
                clock_mhz: 2300,
                vcpu_ratio: 5,
                ..Default::default()
            }],
            hosts: vec![
                v1::Host {
                    id: "h".into(),
                    pool: "q".into(),
                    cores: 0,
                    memory_mib: 10,
                    reserved_memory_mib: 10,
                    state: v1::HostState::Up as i32,
                    model: String::new(),
                },
                v1::Host {
                    id: "h".into(),
                    pool: "p".into(),
                    cores: 1,
                    memory_mib: 20,
                    reserved_memory_mib: 10,
                    state: v1::HostState::Up as i32,
                    model: String::new(),
                },
            ],
            ..Default::default()
        };
        let p = inventory_problems(&inv).join("\n");
        for needle in [
            "network area b names unknown zone",
            "pool p is in zone \"z\" but its network area \"b\" belongs to zone \"nowhere\"",
            "2300 MHz",
            "vcpu_ratio 5",
            "host h names unknown pool",
            "host h has 0 cores",
            "not more than its 10 MiB reserve",
            "host id \"h\" appears twice",
        ] {
            assert!(p.contains(needle), "missing {needle:?} in:\n{p}");
        }
    }
}
