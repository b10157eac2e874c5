//! The provider driver protocol, `yunshu.provider.v1` (see `proto/README.md`).
//!
//! Generated tonic/prost code ([`v1`]), the bootstrap HTTP contract ([`bootstrap`]:
//! one-time tokens, registration and renewal), the error contract ([`errors`]: retryable vs
//! terminal codes, machine-readable reasons in status details) and conversions
//! between wire enums and domain enums ([`convert`]).

pub mod bootstrap;
pub mod convert;
pub mod errors;

/// Generated code of `yunshu/provider/v1/driver.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("yunshu.provider.v1");
}

pub use tonic;

/// The protocol version this crate speaks (`DriverInfo.protocol_version`).
pub const PROTOCOL_VERSION: v1::ProtocolVersion = v1::ProtocolVersion::ProtocolVersion1;
