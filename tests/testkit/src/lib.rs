//! Test harness for yunshu: real external services on loopback, started per test
//! and stopped when the guard drops.
//!
//! Tests need the real thing (the developers' guide: "real components, not toys"),
//! so a missing binary is a loud failure with the install command, never a skip.

mod etcd;
mod ports;

pub use etcd::{EtcdError, EtcdServer};
pub use ports::free_port;
