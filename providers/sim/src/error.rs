//! Errors of the simulator's own API: loading and checking a datacenter config, and
//! the operator controls (`Sim::set_host_state`). Errors the driver returns to the
//! controller are `tonic::Status` values built in `rules` and `sim`, not these.

use std::path::PathBuf;

use thiserror::Error;

/// Why a simulator config or an operator control was refused.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("simulator config {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The text is not valid TOML/JSON, or does not match the config schema
    /// (unknown field, wrong type, unknown enum value …).
    #[error("simulator config {origin}: {message}")]
    Parse { origin: String, message: String },

    #[error("simulator config {path}: unsupported file extension (use .toml or .json)")]
    UnsupportedFormat { path: PathBuf },

    /// A value breaks a rule, e.g. a reserve larger than the host's memory.
    #[error("simulator config: {field}: {reason}")]
    Invalid { field: String, reason: String },

    #[error("simulator config: duplicate {what} id {id:?}")]
    Duplicate { what: &'static str, id: String },

    #[error("simulator config: {field} refers to unknown {what} {id:?}")]
    UnknownReference {
        field: String,
        what: &'static str,
        id: String,
    },

    #[error("simulator: no host {0:?}")]
    UnknownHost(String),

    #[error("simulator: a host can only be set UP, DOWN or MAINTENANCE")]
    InvalidHostState,
}

impl SimError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SimError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
