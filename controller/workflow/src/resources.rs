//! A system's resources as users see them, beside their desired state
//! (`resource/<id>`, written by the reconciler's materializer): what the driver
//! last reported about each (`resource_status/<id>`) and why an approved
//! order's resources wait (`schedule_note/<order>`).
//!
//! Only the reconciler writes these records; the API reads them. Kept apart
//! from the resource's desired state so that the status writer never races the
//! materializer on one key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::resource::ResourceStatus;
use yunshu_domain::{Record, ResourceId};

/// What the driver last said about one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub id: ResourceId,
    pub status: ResourceStatus,
    /// What the tenant needs: addresses, endpoints … (driver `outputs`).
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, String>,
    pub observed_at: DateTime<Utc>,
}

impl Record for StatusRecord {
    const KIND: &'static str = "resource_status";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// Why an approved order's resources wait (SPEC §4: the whole order waits as
/// unschedulable, with a reason a human can act on). Written by the
/// reconciler when placement fails, deleted when the order's system places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleNote {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub order: yunshu_domain::OrderId,
    pub reason: String,
    pub reason_zh: String,
    pub at: DateTime<Utc>,
}

impl Record for ScheduleNote {
    const KIND: &'static str = "schedule_note";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.order.to_string()
    }
}
