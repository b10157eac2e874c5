//! Prometheus metrics of this process, in a registry owned by the server (no
//! globals, so several servers in one test process do not mix their numbers).
//! The capacity gauges are set from the capacity snapshot at each scrape, so
//! they show exactly what `GET /api/v1/capacity` shows.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route (`/api/v1/version`), never the raw path, so that ids in
    /// paths cannot explode the label set.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub store: String,
}

/// One resource of one pool (`resource`: `vcpu`, `memory`, `storage:<class>`,
/// `bandwidth`, `public_ips`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolResourceLabels {
    pub provider: String,
    pub pool: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub provider: String,
    pub pool: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RequestLabels, Histogram>,
    pub store_ready: Gauge,
    pub store_revision: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    pub pool_allocated_ratio: Family<PoolResourceLabels, Gauge<f64, AtomicU64>>,
    pub pool_capacity: Family<PoolResourceLabels, Gauge>,
    pub pool_allocated: Family<PoolResourceLabels, Gauge>,
    pub pool_largest_vm_vcpu: Family<PoolLabels, Gauge>,
    pub pool_largest_vm_memory_mib: Family<PoolLabels, Gauge>,
    pub expansion_orders_open: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("yunshu");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms … ~16 s
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to serve an HTTP request",
            http_duration.clone(),
        );
        let store_ready = Gauge::default();
        registry.register(
            "store_ready",
            "1 when the last store probe succeeded",
            store_ready.clone(),
        );
        let store_revision = Gauge::default();
        registry.register(
            "store_revision",
            "Store revision seen at the last scrape",
            store_revision.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Version and store backend",
            build_info.clone(),
        );
        let pool_allocated_ratio = Family::<PoolResourceLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pool_allocated_ratio",
            "Allocated / total of one resource of a pool (expansion line: 0.8)",
            pool_allocated_ratio.clone(),
        );
        let pool_capacity = Family::<PoolResourceLabels, Gauge>::default();
        registry.register(
            "pool_capacity",
            "Total of one resource of a pool (vCPU: ratio x cores; memory MiB less reserve; storage GiB; bandwidth Mbps; public IPs)",
            pool_capacity.clone(),
        );
        let pool_allocated = Family::<PoolResourceLabels, Gauge>::default();
        registry.register(
            "pool_allocated",
            "Allocated amount of one resource of a pool",
            pool_allocated.clone(),
        );
        let pool_largest_vm_vcpu = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pool_largest_vm_vcpu",
            "Most vCPU one new VM can get in the pool now (fragmentation)",
            pool_largest_vm_vcpu.clone(),
        );
        let pool_largest_vm_memory_mib = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "pool_largest_vm_memory_mib",
            "Most memory (MiB) one new VM can get in the pool now (fragmentation)",
            pool_largest_vm_memory_mib.clone(),
        );
        let expansion_orders_open = Gauge::default();
        registry.register(
            "expansion_orders_open",
            "Expansion orders (80% rule) not closed yet",
            expansion_orders_open.clone(),
        );
        Self {
            registry,
            pool_allocated_ratio,
            pool_capacity,
            pool_allocated,
            pool_largest_vm_vcpu,
            pool_largest_vm_memory_mib,
            expansion_orders_open,
            http_requests,
            http_duration,
            store_ready,
            store_revision,
            build_info,
        }
    }

    /// Sets the capacity gauges to `snapshot`, dropping series of pools that
    /// are gone.
    pub fn observe_capacity(&self, snapshot: &yunshu_workflow::capacity::Snapshot) {
        use yunshu_workflow::capacity::{resource_label, resources};
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.pool_allocated_ratio.clear();
        self.pool_capacity.clear();
        self.pool_allocated.clear();
        self.pool_largest_vm_vcpu.clear();
        self.pool_largest_vm_memory_mib.clear();
        for pool in &snapshot.pools {
            let (provider, id) = (pool.pool.provider.to_string(), pool.pool.pool.to_string());
            for (resource, usage) in resources(pool) {
                let labels = PoolResourceLabels {
                    provider: provider.clone(),
                    pool: id.clone(),
                    resource: resource_label(&resource),
                };
                self.pool_allocated_ratio
                    .get_or_create(&labels)
                    .set(usage.ratio());
                self.pool_capacity
                    .get_or_create(&labels)
                    .set(gauge(usage.total));
                self.pool_allocated
                    .get_or_create(&labels)
                    .set(gauge(usage.allocated));
            }
            let labels = PoolLabels { provider, pool: id };
            self.pool_largest_vm_vcpu.get_or_create(&labels).set(gauge(
                pool.largest.by_vcpu.as_ref().map_or(0, |r| r.free_vcpu),
            ));
            self.pool_largest_vm_memory_mib
                .get_or_create(&labels)
                .set(gauge(
                    pool.largest
                        .by_memory
                        .as_ref()
                        .map_or(0, |r| r.free_memory_mib),
                ));
        }
        self.expansion_orders_open
            .set(gauge(snapshot.expansion_orders_open as u64));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
