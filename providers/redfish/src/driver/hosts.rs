//! Hosts: the Redfish systems of every BMC, read live, and the inventory
//! built from them. A BMC that does not answer keeps its last known systems,
//! reported DOWN, so the controller stops placing on them without forgetting
//! them.

use std::collections::{BTreeMap, BTreeSet};

use yunshu_proto::v1;

use super::{RedfishDriver, error_chain};
use crate::config::{SystemFacts, parse_arch, parse_area_kind};
use crate::redfish::System;

/// One system as the driver knows it.
#[derive(Debug, Clone)]
pub struct HostView {
    /// `<bmc>-<system id>`.
    pub id: String,
    /// Index of its BMC in the configuration.
    pub bmc: usize,
    pub system: System,
    pub facts: SystemFacts,
    pub arch: v1::Architecture,
    /// The configured model, else Redfish's.
    pub model: String,
    pub up: bool,
}

impl HostView {
    pub fn pool_id(&self) -> String {
        pool_id(&self.facts.zone, &self.facts.network_area, self.arch)
    }
}

fn pool_id(zone: &str, area: &str, arch: v1::Architecture) -> String {
    let arch = match arch {
        v1::Architecture::Arm64 => "arm64",
        v1::Architecture::C86 => "c86",
        _ => "x86_64",
    };
    format!("{zone}.{area}.bm-{arch}")
}

#[derive(Debug)]
pub(super) struct Hosts {
    by_id: BTreeMap<String, HostView>,
    /// BMCs (by index) whose last read failed, or that were never read:
    /// their systems may exist and be on even when `by_id` has none.
    unanswered: BTreeSet<usize>,
}

impl Hosts {
    /// Before the first read: every one of `bmcs` BMCs is unanswered.
    pub(super) fn unread(bmcs: usize) -> Hosts {
        Hosts {
            by_id: BTreeMap::new(),
            unanswered: (0..bmcs).collect(),
        }
    }
}

/// A host id from a BMC name and a system id: the controller's id rule
/// (letters, digits, '-', '_', '.'; at most 64).
pub fn host_id(bmc: &str, system: &str) -> String {
    let clean: String = system
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = format!("{bmc}-{clean}");
    id.chars().take(64).collect()
}

impl RedfishDriver {
    /// Reads every BMC's systems; announces hosts that came, went up or went
    /// down, and bumps the inventory revision when anything changed.
    pub(super) async fn refresh_hosts(&self) {
        // All BMCs at once: one that hangs must not hold back the others'
        // hosts (nor GetInventory) for its timeouts.
        let mut reads = tokio::task::JoinSet::new();
        for i in 0..self.inner.bmcs.len() {
            let inner = self.inner.clone();
            reads.spawn(async move {
                (
                    i,
                    inner.bmcs[i].systems().await.map_err(|e| error_chain(&e)),
                )
            });
        }
        let mut seen: Vec<(usize, Result<Vec<System>, String>)> = Vec::new();
        while let Some(joined) = reads.join_next().await {
            match joined {
                Ok(read) => seen.push(read),
                Err(e) => tracing::warn!(error = %e, "reading a BMC's systems failed"),
            }
        }
        seen.sort_by_key(|(i, _)| *i);
        let mut changes: Vec<(String, v1::HostState)> = Vec::new();
        let mut changed = false;
        {
            let mut hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
            for (i, read) in seen {
                let cfg = &self.inner.config.bmcs[i];
                match read {
                    Ok(systems) => {
                        hosts.unanswered.remove(&i);
                        let mut present = BTreeSet::new();
                        for system in systems {
                            if cfg.only_listed && !cfg.systems.contains_key(&system.id) {
                                continue;
                            }
                            let facts = cfg.facts(&system.id);
                            let Some(arch) = parse_arch(&facts.arch) else {
                                continue;
                            };
                            let id = host_id(&cfg.name, &system.id);
                            present.insert(id.clone());
                            let model = if facts.model.is_empty() {
                                system.model.clone()
                            } else {
                                facts.model.clone()
                            };
                            let view = HostView {
                                id: id.clone(),
                                bmc: i,
                                system,
                                facts,
                                arch,
                                model,
                                up: true,
                            };
                            match hosts.by_id.get(&id) {
                                Some(old) if old.up => {
                                    changed |= old.system.cores != view.system.cores
                                        || old.system.memory_mib != view.system.memory_mib
                                        || old.model != view.model;
                                }
                                _ => {
                                    changes.push((id.clone(), v1::HostState::Up));
                                    changed = true;
                                }
                            }
                            hosts.by_id.insert(id, view);
                        }
                        // Systems the BMC no longer lists are gone.
                        let before = hosts.by_id.len();
                        hosts
                            .by_id
                            .retain(|id, h| h.bmc != i || present.contains(id));
                        changed |= hosts.by_id.len() != before;
                    }
                    Err(why) => {
                        hosts.unanswered.insert(i);
                        tracing::warn!(bmc = %cfg.name, error = %why, "cannot read the BMC's systems");
                        for h in hosts.by_id.values_mut().filter(|h| h.bmc == i && h.up) {
                            tracing::warn!(host = %h.id, error = %why, "BMC unreachable: host DOWN");
                            h.up = false;
                            changes.push((h.id.clone(), v1::HostState::Down));
                            changed = true;
                        }
                    }
                }
            }
        }
        for (host, state) in changes {
            self.inner.events.host(&host, state);
        }
        if changed {
            self.bump_revision();
        }
    }

    /// Every host known now.
    pub fn host_views(&self) -> Vec<HostView> {
        let hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.by_id.values().cloned().collect()
    }

    pub(super) fn host_view(&self, id: &str) -> Option<HostView> {
        let hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.by_id.get(id).cloned()
    }

    /// Whether the BMC named `bmc` has not answered its last read (or any
    /// since the driver started).
    pub(super) fn bmc_unanswered(&self, bmc: &str) -> bool {
        let hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
        self.inner
            .config
            .bmcs
            .iter()
            .enumerate()
            .any(|(i, b)| b.name == bmc && hosts.unanswered.contains(&i))
    }

    /// Whether host id `host` would be a system of a BMC that has not
    /// answered (host ids are `<bmc>-<system id>`).
    pub(super) fn host_bmc_unanswered(&self, host: &str) -> bool {
        let hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.config.bmcs.iter().enumerate().any(|(i, b)| {
            hosts.unanswered.contains(&i)
                && host
                    .strip_prefix(b.name.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    }

    /// The inventory from the hosts known now: one pool per (zone, network
    /// area, architecture); a bare-metal server takes a whole host, so the
    /// vCPU ratio is 1 and nothing is reserved.
    pub(super) fn inventory_now(&self) -> v1::Inventory {
        let views = self.host_views();
        let mut zones = BTreeSet::new();
        let mut areas: BTreeMap<(String, String), i32> = BTreeMap::new();
        let mut pools: BTreeMap<String, v1::Pool> = BTreeMap::new();
        let mut hosts = Vec::new();
        for h in &views {
            let f = &h.facts;
            zones.insert(f.zone.clone());
            let kind = parse_area_kind(&f.network_area_kind).unwrap_or_default();
            areas.insert((f.zone.clone(), f.network_area.clone()), kind as i32);
            let pool = h.pool_id();
            pools.entry(pool.clone()).or_insert_with(|| v1::Pool {
                id: pool.clone(),
                zone: f.zone.clone(),
                network_area: f.network_area.clone(),
                arch: h.arch as i32,
                cpu_model: f.cpu_model.clone(),
                clock_mhz: f.clock_mhz,
                vcpu_ratio: 1,
            });
            hosts.push(v1::Host {
                id: h.id.clone(),
                pool,
                cores: h.system.cores,
                memory_mib: h.system.memory_mib,
                reserved_memory_mib: 0,
                state: if h.up {
                    v1::HostState::Up
                } else {
                    v1::HostState::Down
                } as i32,
                model: h.model.clone(),
            });
        }
        // Configured zones and areas are served even before a BMC answers:
        // networks can be planned while the rack boots.
        for b in &self.inner.config.bmcs {
            let ids = std::iter::once(None).chain(b.systems.keys().map(Some));
            for id in ids {
                let f = id.map_or_else(|| b.defaults.clone(), |id| b.facts(id));
                zones.insert(f.zone.clone());
                let kind = parse_area_kind(&f.network_area_kind).unwrap_or_default();
                areas.entry((f.zone, f.network_area)).or_insert(kind as i32);
            }
        }
        v1::Inventory {
            zones: zones
                .into_iter()
                .map(|z| v1::Zone {
                    id: z.clone(),
                    name: z,
                })
                .collect(),
            network_areas: areas
                .into_iter()
                .map(|((zone, id), kind)| v1::NetworkArea {
                    name: id.clone(),
                    id,
                    zone,
                    kind,
                })
                .collect(),
            pools: pools.into_values().collect(),
            hosts,
            revision: self
                .inner
                .revision
                .load(std::sync::atomic::Ordering::SeqCst),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_follow_the_controllers_rule() {
        assert_eq!(
            host_id("rack1", "5e1f0000-0000-4000-8000-000000000000"),
            "rack1-5e1f0000-0000-4000-8000-000000000000"
        );
        assert_eq!(host_id("r", "System.Embedded.1"), "r-System.Embedded.1");
        assert_eq!(host_id("r", "a/b c"), "r-a-b-c");
        assert_eq!(host_id("r", &"x".repeat(100)).len(), 64);
    }
}
