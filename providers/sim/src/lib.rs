//! `yunshu-sim`, the yunshu **simulator** driver: a datacenter in memory, for
//! demos, development and scale tests. It reports `simulator = true` and the name
//! `yunshu-sim`; it is never presented as a real cloud.
//!
//! It implements [`yunshu_driver_sdk::Driver`], so it speaks the same protocol as
//! the real drivers and goes through the same SDK (validation, idempotency,
//! per-resource locking, watch cursors). What it adds:
//! - a configurable datacenter ([`SimConfig`], TOML or JSON; [`SimConfig::demo`]
//!   built in): zones, 政务外网区/互联网区 network areas, pools per architecture
//!   (x86_64, arm64, c86) with hosts stamped from templates, storage classes,
//!   bandwidth and public IP pools — 10,000 hosts in a few lines;
//! - realistic phases with per-kind delays: Apply → PROVISIONING → RUNNING,
//!   Delete → DELETING → gone, each step an event;
//! - its own enforcement of the capacity rules (memory never overcommitted, vCPU
//!   ratio, architecture, host state, bare-metal server model, storage, public
//!   IPs, bandwidth), so a scheduler bug in the controller surfaces as a refusal
//!   with a stable reason;
//! - the whole reference graph between specs (`refs`): nothing is created
//!   naming a resource that is missing, nothing deleted that another resource
//!   still names;
//! - fault injection ([`Faults`]: random UNAVAILABLE, added latency, dropped watch
//!   streams) and host failures ([`Sim::set_host_state`]).
//!
//! Modules: [`config`] the file format and the demo datacenter; `datacenter` the
//! checked, indexed inventory and its live counters; `spec` spec-only checks;
//! `refs` which spec fields name other resources; `rules` the resource table,
//! placement, capacity and reference rules and phase changes;
//! [`faults`] fault injection; [`sim`] the driver, timers and events; `net` IPv4
//! CIDRs and address allocation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), yunshu_sim::SimError> {
//! use std::sync::Arc;
//! use yunshu_driver_sdk::{DriverService, EventLog};
//! use yunshu_sim::{Sim, SimConfig};
//!
//! let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
//! let sim = Sim::new(SimConfig::demo(), log.sink())?;
//! let service = DriverService::new(Arc::new(sim.clone()), log, "sim").into_server();
//! # let _ = service;
//! # Ok(()) }
//! ```

pub mod config;
mod datacenter;
pub mod error;
pub mod faults;
mod net;
mod rules;
pub mod sim;
mod spec;

pub use config::{
    DEMO_MODEL_ARM64, DEMO_MODEL_C86, DEMO_MODEL_X86_64, Delays, FaultsConfig, SimConfig,
};
pub use datacenter::MAX_HOSTS;
pub use error::SimError;
pub use faults::Faults;
pub use rules::{HostUsage, StorageUsage, sim_reasons};
pub use sim::{DRIVER_NAME, Sim};
