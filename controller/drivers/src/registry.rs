//! The driver registry: which driver serves which provider, where, with which
//! certificate, and how it is doing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::Record;

/// One registered driver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DriverRecord {
    pub provider: String,
    /// `host:port` of its gRPC server.
    pub endpoint: String,
    /// SHA-256 of its current certificate.
    pub fingerprint: String,
    pub not_after_unix: i64,
    /// Hash of the one-time secret its next renewal must present.
    pub renewal_token_sha256: String,
    pub registered_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub health: Health,
    /// What the driver says about itself (name, version, simulator or not).
    pub driver_name: Option<String>,
    pub driver_version: Option<String>,
    pub simulator: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Health {
    /// Registered; not yet checked.
    Unknown,
    Healthy,
    Unreachable(String),
}

impl Record for DriverRecord {
    const KIND: &'static str = "driver";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.provider.clone()
    }
}
