//! Test harness for yunshu: real external services on loopback, started per test
//! and stopped when the guard drops, and small helpers to talk to them.
//!
//! Tests need the real thing (the developers' guide: "real components, not toys"),
//! so a missing binary is a loud failure with the install command, never a skip.

mod etcd;
mod http;
mod ports;

pub use etcd::{EtcdError, EtcdServer, EtcdTlsFiles};
pub use http::{http_get, http_get_bearer, http_post_json, wait_until};
pub use ports::free_port;
