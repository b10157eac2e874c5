//! yunshu (云枢) domain model: tenants, users and roles, information systems, work
//! orders, resources, provider inventory, the service catalog, alarms and audit
//! entries (SPEC §1–3).
//!
//! **Architecture Invariant:** this crate does no I/O — no tokio, no files, no
//! network, no clock reads (callers pass times in), no randomness — so the portal
//! can compile it to `wasm32-unknown-unknown`.
//!
//! Validation lives with the types: constructors and serde deserialization run the
//! same checks, so a value of a domain type is valid however it was made. Every
//! error implements [`ErrorCode`] with a stable code and a Chinese message.
//! Every top-level stored type implements [`Record`] and is stored inside a
//! [`Stored`] envelope carrying its schema version.

pub mod alarm;
pub mod arch;
pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod catalog_data;
pub mod error;
pub mod ids;
pub mod order;
pub mod order_line;
pub mod order_services;
pub mod org_unit;
pub mod provider;
pub mod record;
pub mod resource;
mod resource_summary;
pub mod system;
pub mod tenant;
pub mod text;
pub mod user;

pub use arch::Architecture;
pub use error::{DomainError, ErrorCode};
pub use ids::{Actor, OrderId, ProviderId, ResourceId, UserId};
pub use record::{Record, RecordError, RecordHeader, Stored};
pub use system::SystemNumber;
pub use tenant::TenantCode;
pub use text::{Name, Text};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_kinds_are_unique_snake_case_and_versioned() {
        let kinds = [
            (tenant::Tenant::KIND, tenant::Tenant::SCHEMA_VERSION),
            (user::User::KIND, user::User::SCHEMA_VERSION),
            (org_unit::OrgUnit::KIND, org_unit::OrgUnit::SCHEMA_VERSION),
            (user::RoleBinding::KIND, user::RoleBinding::SCHEMA_VERSION),
            (
                system::InformationSystem::KIND,
                system::InformationSystem::SCHEMA_VERSION,
            ),
            (order::WorkOrder::KIND, order::WorkOrder::SCHEMA_VERSION),
            (resource::Resource::KIND, resource::Resource::SCHEMA_VERSION),
            (provider::Provider::KIND, provider::Provider::SCHEMA_VERSION),
            (provider::Zone::KIND, provider::Zone::SCHEMA_VERSION),
            (
                provider::NetworkArea::KIND,
                provider::NetworkArea::SCHEMA_VERSION,
            ),
            (provider::Pool::KIND, provider::Pool::SCHEMA_VERSION),
            (provider::Host::KIND, provider::Host::SCHEMA_VERSION),
            (
                provider::StorageClass::KIND,
                provider::StorageClass::SCHEMA_VERSION,
            ),
            (
                catalog::CatalogItem::KIND,
                catalog::CatalogItem::SCHEMA_VERSION,
            ),
            (alarm::Alarm::KIND, alarm::Alarm::SCHEMA_VERSION),
            (audit::AuditEntry::KIND, audit::AuditEntry::SCHEMA_VERSION),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (kind, version) in kinds {
            assert!(seen.insert(kind), "duplicate kind {kind}");
            assert!(
                kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{kind}"
            );
            assert!(version >= 1, "{kind}");
        }
    }
}
