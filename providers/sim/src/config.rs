//! The simulated datacenter's description ([`SimConfig`]): zones, network areas,
//! pools per architecture with host templates, storage classes, bandwidth, public
//! IP pools, the hardware model of each pool's or host's servers, per-kind
//! provisioning delays and faults to inject. Loaded from TOML or JSON
//! ([`SimConfig::load`]) or built in ([`SimConfig::demo`]).
//!
//! This module owns the file format and its parsing; the rules a config must meet
//! are checked when the datacenter is built (`datacenter`), and `load` runs them so
//! a bad file fails at start-up with a typed [`SimError`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use yunshu_domain::Architecture;
use yunshu_domain::provider::{IopsClass, MAX_VCPU_RATIO, NetworkAreaKind};
use yunshu_proto::v1;

use crate::error::SimError;
use crate::faults::Faults;

/// Server model of the demo's x86_64 pools (Intel Xeon Gold 6348).
pub const DEMO_MODEL_X86_64: &str = "H3C UniServer R4900 G5";
/// Server model of the demo's arm64 pools (Kunpeng 920).
pub const DEMO_MODEL_ARM64: &str = "TaiShan 200 2280";
/// Server model of the demo's c86 pools (Hygon C86 7285).
pub const DEMO_MODEL_C86: &str = "Sugon I620-G30";

/// A simulated datacenter. Every list may be empty except `zones`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub zones: Vec<ZoneConfig>,
    #[serde(default)]
    pub network_areas: Vec<NetworkAreaConfig>,
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    #[serde(default)]
    pub storage_classes: Vec<StorageClassConfig>,
    #[serde(default)]
    pub bandwidth: Vec<BandwidthConfig>,
    #[serde(default)]
    pub ip_pools: Vec<IpPoolConfig>,
    /// Hardware model of the servers (`Host.model`), keyed by host id, pool id
    /// or architecture name (`x86_64`, `arm64`, `c86`); the most specific entry
    /// wins. E.g. `arm64 = "TaiShan 200 2280"`, `"fsc-gov-x86" = "H3C UniServer
    /// R4900 G5"`. Hosts added to a pool later get the pool's model. A
    /// bare-metal spec naming another model than its placed host's is refused
    /// (`MODEL_UNAVAILABLE`); hosts without an entry report no model. A table
    /// beside the pools rather than a pool field, so configs built in code with
    /// struct literals keep compiling.
    #[serde(default)]
    pub host_models: BTreeMap<String, String>,
    #[serde(default)]
    pub delays: Delays,
    #[serde(default)]
    pub faults: FaultsConfig,
}

/// A deployment node (部署节点).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub id: String,
    pub name: String,
}

/// A network area of one zone (政务外网区 / 互联网区 / 专网).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAreaConfig {
    pub id: String,
    pub zone: String,
    pub name: String,
    /// `gov_extranet`, `internet` or `dedicated`.
    pub kind: NetworkAreaKind,
}

/// Hosts of one architecture in one zone and network area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub id: String,
    pub zone: String,
    pub network_area: String,
    /// `x86_64`, `arm64` or `c86`.
    pub arch: Architecture,
    pub cpu_model: String,
    pub clock_mhz: u32,
    #[serde(default = "default_vcpu_ratio")]
    pub vcpu_ratio: u32,
    /// Host templates; each stamps out `count` identical hosts.
    pub hosts: Vec<HostTemplate>,
}

fn default_vcpu_ratio() -> u32 {
    MAX_VCPU_RATIO
}

/// `count` identical hosts named `<id_prefix><number>`, numbered from 1 across the
/// pool's templates (zero-padded to at least 4 digits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTemplate {
    pub count: u32,
    /// Default: `<pool id>-h`.
    #[serde(default)]
    pub id_prefix: Option<String>,
    pub cores: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub reserved_memory_mib: u64,
    #[serde(default)]
    pub state: HostStateConfig,
}

/// The state a host starts in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStateConfig {
    #[default]
    Up,
    Down,
    Maintenance,
}

impl HostStateConfig {
    pub fn to_wire(self) -> v1::HostState {
        match self {
            HostStateConfig::Up => v1::HostState::Up,
            HostStateConfig::Down => v1::HostState::Down,
            HostStateConfig::Maintenance => v1::HostState::Maintenance,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageClassConfig {
    pub id: String,
    pub zone: String,
    pub name: String,
    pub capacity_gib: u64,
    /// `standard` (普通, 2000–5000 IOPS per disk) or `high_performance` (高性能,
    /// 10000–25000).
    pub iops_class: IopsClass,
    pub iops_per_disk: u32,
}

/// Total bandwidth of one zone's network area, shared by its EIPs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthConfig {
    pub zone: String,
    pub network_area: String,
    pub total_mbps: u64,
}

/// Public addresses of one zone's network area. Every address of every CIDR is
/// handed out (a provider's EIP range has no network/broadcast of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpPoolConfig {
    pub id: String,
    pub zone: String,
    pub network_area: String,
    pub cidrs: Vec<String>,
}

/// How long each kind stays PROVISIONING (after Apply) or DELETING (after Delete),
/// in milliseconds. 0 = the transition happens within the call, events still in
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delays {
    pub vm: u64,
    pub bare_metal: u64,
    pub volume: u64,
    pub vpc: u64,
    pub subnet: u64,
    pub security_group: u64,
    pub eip: u64,
    pub load_balancer: u64,
    pub waf_policy: u64,
    pub backup_policy: u64,
    pub snapshot: u64,
}

impl Default for Delays {
    /// Roughly the order real platforms take, shrunk so a demo feels alive.
    fn default() -> Self {
        Delays {
            vm: 200,
            bare_metal: 1000,
            volume: 100,
            vpc: 50,
            subnet: 50,
            security_group: 20,
            eip: 50,
            load_balancer: 300,
            waf_policy: 100,
            backup_policy: 50,
            snapshot: 150,
        }
    }
}

impl Delays {
    /// Every transition within the call (tests, scale runs).
    pub fn zero() -> Self {
        Delays {
            vm: 0,
            bare_metal: 0,
            volume: 0,
            vpc: 0,
            subnet: 0,
            security_group: 0,
            eip: 0,
            load_balancer: 0,
            waf_policy: 0,
            backup_policy: 0,
            snapshot: 0,
        }
    }

    /// The same delay for every kind.
    pub fn uniform(ms: u64) -> Self {
        Delays {
            vm: ms,
            bare_metal: ms,
            volume: ms,
            vpc: ms,
            subnet: ms,
            security_group: ms,
            eip: ms,
            load_balancer: ms,
            waf_policy: ms,
            backup_policy: ms,
            snapshot: ms,
        }
    }

    pub fn for_kind(&self, kind: v1::ResourceKind) -> Duration {
        use v1::ResourceKind as K;
        let ms = match kind {
            K::Unspecified => 0,
            K::Vm => self.vm,
            K::BareMetal => self.bare_metal,
            K::Volume => self.volume,
            K::Vpc => self.vpc,
            K::Subnet => self.subnet,
            K::SecurityGroup => self.security_group,
            K::Eip => self.eip,
            K::LoadBalancer => self.load_balancer,
            K::WafPolicy => self.waf_policy,
            K::BackupPolicy => self.backup_policy,
            K::Snapshot => self.snapshot,
        };
        Duration::from_millis(ms)
    }
}

/// Faults injected from the start (see [`Faults`]; changeable later with
/// `Sim::set_faults`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Fraction (0.0–1.0) of Apply/Delete/Get calls failing with UNAVAILABLE.
    pub error_rate: f64,
    /// Added to every call.
    pub added_latency_ms: u64,
    /// Cut every watch stream this often; absent or 0 = never.
    pub drop_watch_every_ms: Option<u64>,
}

impl FaultsConfig {
    pub fn to_faults(self) -> Faults {
        Faults {
            error_rate: self.error_rate,
            added_latency: Duration::from_millis(self.added_latency_ms),
            drop_watch_every: self
                .drop_watch_every_ms
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        }
    }
}

impl SimConfig {
    /// Reads and checks a config file: `.toml` or `.json` by extension.
    pub fn load(path: impl AsRef<Path>) -> Result<SimConfig, SimError> {
        let path = path.as_ref();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let parse: fn(&str, &str) -> Result<SimConfig, SimError> = match ext.as_deref() {
            Some("toml") => parse_toml,
            Some("json") => parse_json,
            _ => {
                return Err(SimError::UnsupportedFormat {
                    path: path.to_owned(),
                });
            }
        };
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = parse(&text, &path.display().to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and checks TOML text.
    pub fn from_toml_str(text: &str) -> Result<SimConfig, SimError> {
        let config = parse_toml(text, "<toml>")?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and checks JSON text.
    pub fn from_json_str(text: &str) -> Result<SimConfig, SimError> {
        let config = parse_json(text, "<json>")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule (ids, references, compliance limits, CIDRs) by building
    /// the datacenter once.
    pub fn validate(&self) -> Result<(), SimError> {
        crate::datacenter::Datacenter::build(self).map(|_| ())
    }

    /// The built-in demo datacenter: two zones (城市副中心, 政务服务中心), each with
    /// a 政务外网区 and a 互联网区, one pool per architecture per area with three
    /// hosts (so a bare-metal server and VMs share a pool: the server takes one
    /// whole host, VMs the others), a server model per architecture (H3C
    /// UniServer R4900 G5, Huawei TaiShan 200 2280, Sugon I620-G30), a standard
    /// and a high-performance storage class per zone, bandwidth per area and a
    /// small public IP pool per area (documentation ranges, so no address can be
    /// mistaken for a real one).
    pub fn demo() -> SimConfig {
        let zones = [("fsc", "城市副中心"), ("zwc", "政务服务中心")];
        let areas = [
            ("gov", "政务外网区", NetworkAreaKind::GovExtranet),
            ("net", "互联网区", NetworkAreaKind::Internet),
        ];
        // Two-socket servers that ship with these CPUs.
        let arches = [
            (
                Architecture::X86_64,
                "Intel Xeon Gold 6348",
                2600,
                DEMO_MODEL_X86_64,
            ),
            (
                Architecture::Arm64,
                "Kunpeng 920-7260",
                2600,
                DEMO_MODEL_ARM64,
            ),
            (Architecture::C86, "Hygon C86 7285", 2500, DEMO_MODEL_C86),
        ];
        let ip_ranges = [
            ["198.51.100.0/25", "203.0.113.0/25"],
            ["198.51.100.128/25", "203.0.113.128/25"],
        ];
        let mut config = SimConfig {
            zones: Vec::new(),
            network_areas: Vec::new(),
            pools: Vec::new(),
            storage_classes: Vec::new(),
            bandwidth: Vec::new(),
            ip_pools: Vec::new(),
            host_models: BTreeMap::new(),
            delays: Delays::default(),
            faults: FaultsConfig::default(),
        };
        for ((zone, zone_name), ranges) in zones.iter().zip(ip_ranges) {
            config.zones.push(ZoneConfig {
                id: (*zone).to_owned(),
                name: (*zone_name).to_owned(),
            });
            for ((area, area_name, kind), cidr) in areas.iter().zip(ranges) {
                let area_id = format!("{zone}-{area}");
                config.network_areas.push(NetworkAreaConfig {
                    id: area_id.clone(),
                    zone: (*zone).to_owned(),
                    name: (*area_name).to_owned(),
                    kind: *kind,
                });
                for (arch, cpu_model, clock_mhz, host_model) in arches {
                    // Keyed by architecture, so a test that swaps the demo's
                    // pools for its own keeps a valid config.
                    config
                        .host_models
                        .insert(arch.as_str().to_owned(), host_model.to_owned());
                    config.pools.push(PoolConfig {
                        id: format!("{area_id}-{arch}"),
                        zone: (*zone).to_owned(),
                        network_area: area_id.clone(),
                        arch,
                        cpu_model: cpu_model.to_owned(),
                        clock_mhz,
                        vcpu_ratio: MAX_VCPU_RATIO,
                        hosts: vec![HostTemplate {
                            count: 3,
                            id_prefix: None,
                            cores: 64,
                            memory_mib: 512 * 1024,
                            reserved_memory_mib: 16 * 1024,
                            state: HostStateConfig::Up,
                        }],
                    });
                }
                config.bandwidth.push(BandwidthConfig {
                    zone: (*zone).to_owned(),
                    network_area: area_id.clone(),
                    total_mbps: 10_000,
                });
                config.ip_pools.push(IpPoolConfig {
                    id: format!("{area_id}-eip"),
                    zone: (*zone).to_owned(),
                    network_area: area_id,
                    cidrs: vec![cidr.to_owned()],
                });
            }
            config.storage_classes.push(StorageClassConfig {
                id: format!("{zone}-standard"),
                zone: (*zone).to_owned(),
                name: "普通性能云盘".to_owned(),
                capacity_gib: 200_000,
                iops_class: IopsClass::Standard,
                iops_per_disk: 5_000,
            });
            config.storage_classes.push(StorageClassConfig {
                id: format!("{zone}-high"),
                zone: (*zone).to_owned(),
                name: "高性能云盘".to_owned(),
                capacity_gib: 50_000,
                iops_class: IopsClass::HighPerformance,
                iops_per_disk: 20_000,
            });
        }
        config
    }
}

fn parse_toml(text: &str, origin: &str) -> Result<SimConfig, SimError> {
    toml::from_str(text).map_err(|e| SimError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })
}

fn parse_json(text: &str, origin: &str) -> Result<SimConfig, SimError> {
    serde_json::from_str(text).map_err(|e| SimError::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/datacenter.toml");

    fn minimal() -> String {
        r#"
[[zones]]
id = "z1"
name = "城市副中心"

[[network_areas]]
id = "z1-gov"
zone = "z1"
name = "政务外网区"
kind = "gov_extranet"

[[pools]]
id = "p1"
zone = "z1"
network_area = "z1-gov"
arch = "x86_64"
cpu_model = "Intel Xeon"
clock_mhz = 2600
hosts = [{ count = 3, cores = 8, memory_mib = 65536, reserved_memory_mib = 4096 }]
"#
        .to_owned()
    }

    #[test]
    fn example_file_loads_with_ten_thousand_hosts() {
        let config = SimConfig::load(EXAMPLE).expect("example loads");
        let dc = crate::datacenter::Datacenter::build(&config).expect("builds");
        assert_eq!(dc.hosts.len(), 10_000);
        assert_eq!(dc.zones.len(), 2);
        assert!(dc.host("fsc-gov-x86-h0001").is_some());
        assert!(
            dc.host("fsc-gov-x86-h3000").is_some(),
            "numbering spans templates"
        );
        assert!(dc.host("zwc-net-c86-spare-0050").is_some());
        let inv = dc.inventory();
        let model = |host: &str| {
            inv.hosts
                .iter()
                .find(|h| h.id == host)
                .map(|h| h.model.as_str())
        };
        assert_eq!(model("fsc-gov-x86-h0001"), Some(DEMO_MODEL_X86_64));
        assert_eq!(model("fsc-gov-arm-h0001"), Some(DEMO_MODEL_ARM64));
        assert_eq!(model("zwc-net-c86-spare-0050"), Some(DEMO_MODEL_C86));
        assert_eq!(
            model("zwc-gov-arm-h0002"),
            Some("Great Wall GF7280 V5"),
            "a pool entry wins over the architecture's"
        );
        assert_eq!(
            model("zwc-gov-arm-h0001"),
            Some("Great Wall GF7280 V5 (sample)"),
            "a host entry wins over its pool's"
        );
        assert_eq!(inv.ip_pools[0].total, 256 + 128);
        assert_eq!(config.delays.vm, 200);
        assert_eq!(
            config.delays.vpc,
            Delays::default().vpc,
            "omitted kinds keep defaults"
        );
    }

    #[test]
    fn demo_is_valid_and_small() {
        let config = SimConfig::demo();
        config.validate().expect("demo is valid");
        let dc = crate::datacenter::Datacenter::build(&config).expect("builds");
        assert_eq!(dc.zones.len(), 2);
        assert_eq!(dc.areas.len(), 4);
        assert_eq!(dc.pools.len(), 12);
        assert_eq!(dc.hosts.len(), 36);
        assert_eq!(dc.architectures().len(), 3);
        // Every demo host has its architecture's model, and every pool has three
        // hosts: a bare-metal server can take one while VMs use the others.
        for h in &dc.hosts {
            let want = match dc.pools[h.pool].arch {
                v1::Architecture::Arm64 => DEMO_MODEL_ARM64,
                v1::Architecture::C86 => DEMO_MODEL_C86,
                _ => DEMO_MODEL_X86_64,
            };
            assert_eq!(h.model, want, "{}", h.id);
        }
        for p in 0..dc.pools.len() {
            assert_eq!(dc.hosts.iter().filter(|h| h.pool == p).count(), 3);
        }
    }

    #[test]
    fn host_models_by_architecture_pool_and_host() {
        let base = minimal();
        let with = |table: &str| format!("{base}\n[host_models]\n{table}\n");
        let config = SimConfig::from_toml_str(&with(
            "x86_64 = \"R4900 G5\"\n\"p1-h0002\" = \"R4900 G5 (GPU)\"",
        ))
        .expect("valid");
        let mut dc = crate::datacenter::Datacenter::build(&config).expect("builds");
        let models: Vec<&str> = dc.hosts.iter().map(|h| h.model.as_str()).collect();
        assert_eq!(models, ["R4900 G5", "R4900 G5 (GPU)", "R4900 G5"]);
        let added = dc.add_hosts("p1", 1, 8, 65536, 0).expect("added");
        let new = dc.host(&added[0]).expect("new host");
        assert_eq!(dc.hosts[new].model, "R4900 G5", "racked like its pool");
        let pool_wins = SimConfig::from_toml_str(&with("x86_64 = \"R4900 G5\"\np1 = \"2288H V6\""))
            .expect("valid");
        let dc = crate::datacenter::Datacenter::build(&pool_wins).expect("builds");
        assert!(dc.hosts.iter().all(|h| h.model == "2288H V6"));
        // An architecture without pools is no error: the demo's table survives
        // a test replacing the demo's pools.
        SimConfig::from_toml_str(&with("c86 = \"I620-G30\"")).expect("valid");

        match err(&with("nowhere = \"X\"")) {
            SimError::UnknownReference { field, what, .. } => {
                assert_eq!(field, "host_models.nowhere");
                assert_eq!(what, "host, pool or architecture");
            }
            other => panic!("unexpected {other}"),
        }
        for bad in ["p1 = \"\"", "p1 = \" R4900\"", "p1 = \"a\\nb\""] {
            assert!(matches!(err(&with(bad)), SimError::Invalid { .. }), "{bad}");
        }
        let ambiguous = base.replace("id = \"p1\"", "id = \"arm64\"");
        assert!(matches!(
            err(&format!("{ambiguous}\n[host_models]\narm64 = \"X\"\n")),
            SimError::Invalid { .. }
        ));
    }

    #[test]
    fn json_round_trip_through_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dc.json");
        let json = serde_json::to_string_pretty(&SimConfig::demo()).expect("serialize");
        std::fs::write(&path, json).expect("write");
        assert_eq!(SimConfig::load(&path).expect("loads"), SimConfig::demo());
    }

    #[test]
    fn minimal_toml_uses_defaults() {
        let config = SimConfig::from_toml_str(&minimal()).expect("valid");
        assert_eq!(config.pools[0].vcpu_ratio, MAX_VCPU_RATIO);
        assert_eq!(config.delays, Delays::default());
        assert_eq!(config.faults.to_faults(), Faults::default());
    }

    fn err(text: &str) -> SimError {
        SimConfig::from_toml_str(text).expect_err("must be refused")
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let base = minimal();
        assert!(matches!(
            err(&base.replace("clock_mhz = 2600", "clock_mhz = 2600\ncolour = 1")),
            SimError::Parse { .. }
        ));
        assert!(matches!(
            err(&base.replace("\"x86_64\"", "\"sparc\"")),
            SimError::Parse { .. }
        ));
        assert!(matches!(err("zones = []"), SimError::Invalid { .. }));
        match err(&base.replace("reserved_memory_mib = 4096", "reserved_memory_mib = 65536")) {
            SimError::Invalid { field, .. } => {
                assert_eq!(field, "pools[0].hosts[0].reserved_memory_mib")
            }
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            err(&base.replace("clock_mhz = 2600", "clock_mhz = 2000")),
            SimError::Invalid { .. }
        ));
        assert!(matches!(
            err(&base.replace("clock_mhz = 2600", "clock_mhz = 2600\nvcpu_ratio = 5")),
            SimError::Invalid { .. }
        ));
        assert!(matches!(
            err(&base.replace("cores = 8", "cores = 0")),
            SimError::Invalid { .. }
        ));
        match err(&base.replace("network_area = \"z1-gov\"", "network_area = \"nowhere\"")) {
            SimError::UnknownReference { what, id, .. } => {
                assert_eq!(what, "network area");
                assert_eq!(id, "nowhere");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            err(&format!(
                "{base}\n[[zones]]\nid = \"z1\"\nname = \"again\"\n"
            )),
            SimError::Duplicate { what: "zone", .. }
        ));
        assert!(matches!(
            err(&base.replace("id = \"p1\"", "id = \"p 1\"")),
            SimError::Invalid { .. }
        ));
        let two_templates_same_prefix = base.replace(
            "hosts = [{ count = 3,",
            "hosts = [{ count = 1, id_prefix = \"h\", cores = 8, memory_mib = 65536 }, { count = 1, id_prefix = \"h\", cores = 8, memory_mib = 65536 }, { count = 3,",
        );
        SimConfig::from_toml_str(&two_templates_same_prefix).expect("numbering continues");
        let storage = |iops: u32| {
            format!(
                "{base}\n[[storage_classes]]\nid = \"s\"\nzone = \"z1\"\nname = \"高性能\"\ncapacity_gib = 10\niops_class = \"high_performance\"\niops_per_disk = {iops}\n"
            )
        };
        SimConfig::from_toml_str(&storage(20_000)).expect("in range");
        assert!(matches!(err(&storage(3_000)), SimError::Invalid { .. }));
        let ip_pools = |a: &str, b: &str| {
            format!(
                "{base}\n[[ip_pools]]\nid = \"a\"\nzone = \"z1\"\nnetwork_area = \"z1-gov\"\ncidrs = [\"{a}\"]\n[[ip_pools]]\nid = \"b\"\nzone = \"z1\"\nnetwork_area = \"z1-gov\"\ncidrs = [\"{b}\"]\n"
            )
        };
        SimConfig::from_toml_str(&ip_pools("203.0.113.0/25", "203.0.113.128/25"))
            .expect("disjoint");
        assert!(matches!(
            err(&ip_pools("203.0.113.0/24", "203.0.113.128/25")),
            SimError::Invalid { .. }
        ));
        assert!(matches!(
            err(&ip_pools("203.0.113.1/24", "198.51.100.0/24")),
            SimError::Invalid { .. }
        ));
        let bandwidth = format!(
            "{base}\n[[zones]]\nid = \"z2\"\nname = \"二\"\n[[bandwidth]]\nzone = \"z2\"\nnetwork_area = \"z1-gov\"\ntotal_mbps = 1\n"
        );
        assert!(matches!(err(&bandwidth), SimError::Invalid { .. }));
        assert!(matches!(
            err(&format!("{base}\n[faults]\nerror_rate = 1.5\n")),
            SimError::Invalid { .. }
        ));
        assert!(matches!(
            err(&base.replace("count = 3", "count = 2000000")),
            SimError::Invalid { .. }
        ));
    }

    #[test]
    fn file_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            SimConfig::load(dir.path().join("missing.toml")),
            Err(SimError::Read { .. })
        ));
        assert!(matches!(
            SimConfig::load(dir.path().join("dc.yaml")),
            Err(SimError::UnsupportedFormat { .. })
        ));
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{ not json").expect("write");
        let e = SimConfig::load(&broken).expect_err("broken");
        assert!(matches!(e, SimError::Parse { .. }));
        assert!(e.to_string().contains("broken.json"), "{e}");
    }
}
