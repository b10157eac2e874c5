//! The yunshu Redfish bare-metal driver (issue 18).
//!
//! A provider's rack of physical servers, driven through their BMCs over DMTF
//! Redfish and served to the controller over the driver protocol:
//!
//! - [`config`]: the BMC endpoints (credentials from a file or the
//!   environment, never argv, never logged), what Redfish does not report
//!   (zone, network area, architecture, model, clock), the image → virtual
//!   media URL map, the state directory.
//! - [`redfish`]: a small Redfish client — service root, Systems, reset,
//!   one-time boot override, virtual media — with session auth (X-Auth-Token)
//!   and a fall back to HTTP basic auth when the BMC has no SessionService.
//! - [`ipam`]: addresses of the rack's provisioning network: VPCs and subnets
//!   are address plans, each bare-metal NIC gets an address from its subnet.
//! - [`store`]: every resource in one file of the state directory, written
//!   atomically before the BMC is touched, so a restarted driver adopts.
//! - [`driver`]: the SDK `Driver` over them: bare-metal servers (virtual
//!   media, boot once from CD, power), VPCs, subnets and security groups.

pub mod config;
pub mod driver;
pub mod ipam;
pub mod redfish;
pub mod store;

pub use config::Config;
pub use driver::RedfishDriver;
