//! yunshu (云枢) placement: which host a VM or a bare-metal server goes on, and
//! what volumes and public IPs take from their zone.
//!
//! Owns the in-memory [`Index`] of pools, hosts and zone-level shared capacities
//! (storage classes, bandwidth, public IPs), the hard rules every placement obeys
//! (memory never overcommitted, vCPU ≤ ratio × cores, storage, bandwidth and IP
//! capacity, architecture / zone / network area match, anti-affinity, schedulable
//! hosts only), the [`Strategy`] that orders candidates, all-or-nothing group
//! placement ([`Index::place_all`]), reasons a human can act on ([`Unschedulable`],
//! English and Chinese with a stable code) and the capacity report
//! ([`PoolCapacity`]).
//!
//! **Architecture Invariant:** no I/O — no tokio, no clock, no files, no network,
//! no randomness. The index is rebuilt by its owner (the scheduler) from the
//! driver inventory and the stored reservations; this crate never reads either.
//! It never sees prost types: callers convert at the driver client.

mod bare_metal;
mod index;
mod model;
mod place;
mod reason;
mod report;
mod shared;

#[cfg(test)]
mod tests;

pub use index::{Index, IndexError, ProviderInventory};
pub use model::{
    AreaKey, BandwidthSpec, BareMetalRequest, DEFAULT_VCPU_RATIO, Disk, HostRef, HostSpec,
    Placement, PoolKey, PoolRef, PoolSpec, PublicIpSpec, SharedRequest, StorageClassSpec,
    StorageKey, Strategy, VmRequest, VmShape,
};
pub use reason::{PoolLabel, Reason, Unschedulable};
pub use report::{HostUsage, LargestShape, PoolCapacity, Resource, ShapeRoom, Usage};
