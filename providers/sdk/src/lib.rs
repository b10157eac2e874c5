//! The yunshu driver SDK.
//!
//! Writing a driver means implementing [`Driver`]. The SDK does the rest:
//! - the gRPC service of `yunshu.provider.v1` ([`service::DriverService`]): request
//!   validation, level-based Apply (the same generation twice changes nothing),
//!   idempotency keys (one key never creates two things), per-resource
//!   serialisation, pagination, error mapping;
//! - watch cursors ([`events::EventLog`]): the driver reports changes through an
//!   [`events::EventSink`]; watchers resume from any cursor still in the log;
//! - the protocol's reference graph between specs ([`refs`]), so every driver
//!   enforces the same one;
//! - resource records on the driver's own disk, written atomically
//!   ([`records`]), so a restarted driver still knows what it made;
//! - serving with mutual TLS, bootstrap with a one-time token and certificate
//!   renewal ([`server`]);
//! - the binary's `main`: serving options, logging, runtime, SIGTERM ([`cli`]).
//!
//! Drivers speak the wire types of [`yunshu_proto::v1`] directly: the SDK *is* the
//! edge where the protocol meets a provider's API, so a second set of types would
//! only be copied field by field.

pub mod bootstrap;
pub mod cidr;
pub mod cli;
pub mod driver;
pub mod events;
pub mod records;
pub mod refs;
pub mod server;
pub mod service;
pub mod tls;

pub use driver::Driver;
pub use events::{EventLog, EventSink};
pub use server::{ServeError, ServeOptions, serve, serve_listener};
pub use service::DriverService;
pub use yunshu_proto::errors::{reasons, status, status_with};
pub use yunshu_proto::{tonic, v1};
