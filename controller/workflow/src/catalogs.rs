//! Service catalogs (服务目录) as the API serves them: the two shipped with
//! yunshu (Beijing 2023 base catalog, 003 §3.1.3; Datong 2023, 000 附件1) and
//! those an operator imports.
//!
//! Owns the record `catalog/<id>` (the imported catalog in the canonical TOML
//! form, re-validated on every read) and who may import (`CatalogManage`).
//! Parsing, validation and the per-row problems are the domain's
//! (`yunshu_domain::catalog_data`): an import with any bad row writes nothing.
//! Must not change the shipped catalogs: their ids are reserved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_auth::Principal;
use yunshu_domain::catalog_data::{Catalog, CatalogFormat};
use yunshu_domain::ids::CatalogId;
use yunshu_domain::user::Permission;
use yunshu_domain::{Actor, Record};
use yunshu_store::audit::{self, Appended};
use yunshu_store::{Store, Txn, page, records};

use super::rules::Origin;
use super::{WorkflowError, audit_draft};

/// An imported catalog as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRecord {
    pub id: CatalogId,
    /// `Catalog::write(Toml)` of the validated import.
    pub toml: String,
    pub imported_by: Actor,
    pub imported_at: DateTime<Utc>,
}

impl Record for CatalogRecord {
    const KIND: &'static str = "catalog";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

fn built_in() -> [Catalog; 2] {
    [Catalog::beijing_2023(), Catalog::datong_2023()]
}

/// Every catalog any signed-in user may read (tenants pick lines from them).
pub async fn list(store: &dyn Store) -> Result<Vec<(Catalog, Origin)>, WorkflowError> {
    let mut out: Vec<(Catalog, Origin)> = built_in()
        .into_iter()
        .map(|c| (c, Origin::BuiltIn))
        .collect();
    let stored = page::scan_all::<CatalogRecord>(store)
        .await
        .map_err(WorkflowError::store("catalog list"))?;
    for (record, _) in stored {
        match Catalog::from_toml(&record.toml) {
            Ok(c) => out.push((c, Origin::Operator)),
            Err(e) => tracing::warn!(catalog = %record.id, error = %e, "stored catalog unreadable"),
        }
    }
    Ok(out)
}

/// One catalog by id; `CATALOG_NOT_FOUND` otherwise.
pub async fn get(store: &dyn Store, id: &str) -> Result<(Catalog, Origin), WorkflowError> {
    let not_found = || WorkflowError::CatalogNotFound {
        id: id.chars().take(64).collect(),
    };
    if let Some(c) = built_in().into_iter().find(|c| c.id().as_str() == id) {
        return Ok((c, Origin::BuiltIn));
    }
    let Ok(cid) = CatalogId::new(id) else {
        return Err(not_found());
    };
    let (record, _) = records::get::<CatalogRecord>(store, cid.as_str())
        .await
        .map_err(WorkflowError::store("catalog read"))?
        .ok_or_else(not_found)?;
    let catalog = Catalog::from_toml(&record.toml).map_err(WorkflowError::invalid)?;
    Ok((catalog, Origin::Operator))
}

/// Imports (or replaces) an operator catalog. Every problem of the upload is
/// reported at once (`CATALOG_IMPORT_INVALID`, one issue per bad row) and then
/// nothing is written — a row priced above Beijing's published maximum
/// (003 §3.1.3) is one (`CATALOG_ROW_PRICE_ABOVE_MAXIMUM`); a shipped
/// catalog's id is `CATALOG_BUILTIN_READONLY`.
pub async fn import(
    store: &dyn Store,
    caller: &Principal,
    format: CatalogFormat,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Catalog, WorkflowError> {
    if !caller.can(Permission::CatalogManage, None) {
        return Err(WorkflowError::Forbidden);
    }
    let catalog = Catalog::parse(format, text).map_err(WorkflowError::invalid)?;
    // No item above the published maximum unit prices of Beijing's base
    // catalog (003 §3.1.3 各服务项最高限制单价; a price above it is invalid).
    let over = catalog.above_maximum(&Catalog::beijing_2023());
    if !over.is_empty() {
        return Err(WorkflowError::invalid(
            yunshu_domain::catalog_data::CatalogImportError { issues: over },
        ));
    }
    if built_in().iter().any(|c| c.id() == catalog.id()) {
        return Err(WorkflowError::CatalogBuiltInReadOnly {
            id: catalog.id().to_string(),
        });
    }
    let record = CatalogRecord {
        id: catalog.id().clone(),
        toml: catalog.write(CatalogFormat::Toml),
        imported_by: caller.actor.clone(),
        imported_at: now,
    };
    let key = records::key::<CatalogRecord>(&record.id());
    let txn = Txn::new().put(key.clone(), records::encode(&record));
    let detail = format!("{} ({} items)", catalog.name(), catalog.len());
    let draft = audit_draft(caller, "catalog.import", &key, Some(detail), now)?;
    match audit::append(store, draft, txn)
        .await
        .map_err(WorkflowError::store("catalog import"))?
    {
        Appended::Committed { .. } => Ok(catalog),
        Appended::Conflict => Err(WorkflowError::Busy),
    }
}
