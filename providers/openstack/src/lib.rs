//! The yunshu OpenStack driver (issue 18): one OpenStack project served over
//! the driver protocol.
//!
//! - [`cloud`]: the authenticated session (`openstack_sdk`: Keystone v3,
//!   catalog, token renewal) and the REST calls.
//! - [`config`]: credentials from openrc files or the environment, and the
//!   name mappings.
//! - [`driver`]: the SDK `Driver` — VPC, subnet, security group, VM, volume,
//!   load balancer and EIP as Neutron, Nova, Cinder and Octavia objects,
//!   observed by polling.
//! - [`inventory`]: Placement and Nova hypervisors as zones, pools and hosts;
//!   memory-overcommitted hosts refused.
//!
//! Must not keep secrets anywhere but memory, nor log them.

pub mod cloud;
pub mod config;
pub mod driver;
pub mod inventory;

pub use driver::{KINDS, OpenError, OpenStackDriver};
