//! `placement`: single-VM placement decisions per second on the in-memory
//! placement index, at 1,000, 10,000 and 50,000 hosts.
//!
//! Twelve pools (x86_64, arm64 and c86 (Hygon) × 2 zones × 2 network areas), hosts
//! of three sizes, VMs of mixed shapes (2–32 vCPU, 4–128 GiB), 10 % of them in
//! anti-affinity groups, one in four placed with `Pack`, the rest `Spread`. The
//! cluster is first filled to a steady level (about 60 % of memory), then each
//! timed decision places one VM and releases the oldest, so the figure includes
//! one release per decision and the cluster neither fills nor empties.
//! Single-threaded: the index is one `&mut` structure, as the scheduler owns it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use yunshu_domain::{
    Architecture, ErrorCode, ProviderId, ResourceId,
    ids::{AntiAffinityGroup, HostId, NetworkAreaId, PoolId, ZoneId},
    provider::{HostState, NetworkAreaKind},
};
use yunshu_placement::{HostSpec, Index, PoolKey, PoolSpec, Strategy, VmRequest, VmShape};

use crate::report::bench;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Host counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000, 10_000, 50_000])]
    hosts: Vec<usize>,
    /// Minimum timed duration per size, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    min_ms: u64,
    /// Minimum timed decisions per size.
    #[arg(long, default_value_t = 200_000)]
    min_ops: u64,
}

/// (vCPU, GiB): 1:2, 1:4 and 1:8 shapes as catalogs offer them.
const SHAPES: [(u32, u64); 10] = [
    (2, 4),
    (2, 8),
    (4, 8),
    (4, 16),
    (8, 16),
    (8, 32),
    (16, 32),
    (16, 64),
    (32, 64),
    (32, 128),
];

/// (cores, GiB): three host generations.
const HOSTS: [(u32, u64); 3] = [(48, 384), (64, 512), (96, 768)];

/// xorshift64*: fixed seed so every run makes the same requests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn pool_keys(provider: &ProviderId) -> anyhow::Result<Vec<(PoolSpec, PoolKey)>> {
    let mut out = Vec::new();
    for zone in ["fuzhongxin", "yizhuang"] {
        for (area, kind) in [
            ("extranet", NetworkAreaKind::GovExtranet),
            ("internet", NetworkAreaKind::Internet),
        ] {
            for arch in Architecture::ALL {
                let key = PoolKey {
                    provider: provider.clone(),
                    zone: ZoneId::new(zone)?,
                    network_area: NetworkAreaId::new(area)?,
                    arch,
                };
                let spec = PoolSpec {
                    id: PoolId::new(format!("{zone}-{area}-{arch}"))?,
                    key: key.clone(),
                    area_kind: kind,
                    vcpu_ratio: 4,
                };
                out.push((spec, key));
            }
        }
    }
    Ok(out)
}

fn build(hosts: usize) -> anyhow::Result<(Index, Vec<PoolKey>)> {
    let provider = ProviderId::new("bench")?;
    let pools = pool_keys(&provider)?;
    let mut index = Index::new();
    for (spec, _) in &pools {
        index.upsert_pool(spec.clone())?;
    }
    for i in 0..hosts {
        let (spec, _) = &pools[i % pools.len()];
        // `i / pools` so every pool gets all three generations.
        let (cores, gib) = HOSTS[(i / pools.len()) % HOSTS.len()];
        index.upsert_host(HostSpec {
            provider: provider.clone(),
            pool: spec.id.clone(),
            id: HostId::new(format!("host-{i:06}"))?,
            cores,
            memory_mib: gib * 1024,
            reserved_memory_mib: 16 * 1024,
            state: if i % 50 == 0 {
                HostState::Maintenance
            } else {
                HostState::Ready
            },
            model: None,
        })?;
    }
    Ok((index, pools.into_iter().map(|(_, k)| k).collect()))
}

struct Workload {
    rng: Rng,
    keys: Vec<PoolKey>,
    groups: Vec<AntiAffinityGroup>,
    next: u64,
}

impl Workload {
    fn request(&mut self) -> anyhow::Result<(VmRequest, Strategy)> {
        self.next += 1;
        let (vcpu, gib) = SHAPES[self.rng.below(SHAPES.len() as u64) as usize];
        let mut shape = VmShape::new(vcpu, gib * 1024);
        if self.rng.below(10) == 0 {
            let g = self.rng.below(self.groups.len() as u64) as usize;
            shape.anti_affinity = Some(self.groups[g].clone());
        }
        let key = self.keys[self.rng.below(self.keys.len() as u64) as usize].clone();
        let strategy = if self.rng.below(4) == 0 {
            Strategy::Pack
        } else {
            Strategy::Spread
        };
        let request = VmRequest {
            alloc: ResourceId::new(format!("vm-{}", self.next))?,
            key,
            shape,
        };
        Ok((request, strategy))
    }
}

pub fn run(options: Options) -> anyhow::Result<()> {
    for &hosts in &options.hosts {
        let (mut index, keys) = build(hosts)?;
        let mut work = Workload {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            keys,
            groups: (0..1000)
                .map(|g| AntiAffinityGroup::new(format!("g{g}")))
                .collect::<Result<_, _>>()?,
            next: 0,
        };
        // Average host ~555 GiB allocatable, average VM ~37 GiB: 9 VMs per host
        // is about 60 % of memory.
        let steady = hosts * 9;
        let mut live: VecDeque<ResourceId> = VecDeque::with_capacity(steady + 1);
        while live.len() < steady {
            let (request, strategy) = work.request()?;
            if let Ok(p) = index.place(&request, strategy) {
                live.push_back(p.alloc);
            }
        }

        let mut ops = 0u64;
        let mut refused: BTreeMap<&'static str, u64> = BTreeMap::new();
        let min = Duration::from_millis(options.min_ms);
        let start = Instant::now();
        loop {
            // Check the clock every 1,000 decisions, not every one.
            for _ in 0..1_000 {
                let (request, strategy) = work.request()?;
                match index.place(&request, strategy) {
                    Ok(p) => live.push_back(p.alloc),
                    Err(e) => *refused.entry(e.code()).or_default() += 1,
                }
                if live.len() > steady
                    && let Some(oldest) = live.pop_front()
                {
                    index.release(&oldest);
                }
                ops += 1;
            }
            if ops >= options.min_ops && start.elapsed() >= min {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "placement {hosts} hosts: {ops} decisions in {secs:.2} s, refused {refused:?}, {} live allocations",
            index.allocation_count()
        );
        bench(
            &format!("placement_{hosts}_hosts"),
            ops as f64 / secs,
            "ops/s",
        );
    }
    Ok(())
}
