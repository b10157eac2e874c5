//! The redb tables, the format marker and start-up checks.

use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};

use crate::error::StoreError;
use crate::model::Revision;

/// key → postcard(StoredKv)
pub(crate) const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// revision → postcard(Vec<WatchEvent>): the history watches replay.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// lease id → TTL in milliseconds.
pub(crate) const LEASES: TableDefinition<u64, u64> = TableDefinition::new("leases");
/// lease id (8 bytes BE) ++ key → ()
pub(crate) const LEASE_KEYS: TableDefinition<&[u8], ()> = TableDefinition::new("lease_keys");
/// Counters and the format marker.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("yunshu_meta");

pub(crate) const META_FORMAT: &str = "format";
pub(crate) const META_REVISION: &str = "revision";
pub(crate) const META_COMPACT: &str = "compact_revision";
pub(crate) const META_NEXT_LEASE: &str = "next_lease";

/// Layout version of this file. Bump it when the layout changes and teach
/// [`initialise`] to migrate the old one.
pub(crate) const FORMAT: u64 = 1;

/// Counters the writer keeps in memory and persists with every commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    pub revision: Revision,
    pub compact_revision: Revision,
    pub next_lease: i64,
}

/// Creates the tables in a new file, or checks that an existing file is a yunshu
/// store of a format this binary reads; returns the persisted counters.
pub(crate) fn initialise(db: &Database, path: &Path) -> Result<State, StoreError> {
    let open_err = |reason: String| StoreError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let be = |e: redb::Error| open_err(format!("redb error while checking the file: {e}"));
    {
        let rtx = db.begin_read().map_err(|e| be(e.into()))?;
        let names: Vec<String> = rtx
            .list_tables()
            .map_err(|e| be(e.into()))?
            .map(|t| t.name().to_owned())
            .collect();
        if !names.is_empty() && !names.iter().any(|n| n == META.name()) {
            return Err(open_err(format!(
                "it is a redb file but not a yunshu store (tables: {})",
                names.join(", ")
            )));
        }
        if !names.is_empty() {
            let format = read_meta(&rtx, META_FORMAT).map_err(be)?;
            if format > FORMAT as i64 {
                return Err(open_err(format!(
                    "it was written by a newer yunshu (store format {format}; this build reads up to {FORMAT})"
                )));
            }
            if format == 0 {
                return Err(open_err("its format marker is missing".into()));
            }
        }
    }
    let wtx = db.begin_write().map_err(|e| be(e.into()))?;
    let state = {
        wtx.open_table(KV).map_err(|e| be(e.into()))?;
        wtx.open_table(LOG).map_err(|e| be(e.into()))?;
        wtx.open_table(LEASES).map_err(|e| be(e.into()))?;
        wtx.open_table(LEASE_KEYS).map_err(|e| be(e.into()))?;
        let mut meta = wtx.open_table(META).map_err(|e| be(e.into()))?;
        let mut get = |name: &str, default: u64| -> Result<u64, redb::Error> {
            let current = meta.get(name)?.map(|v| v.value());
            match current {
                Some(v) => Ok(v),
                None => {
                    meta.insert(name, default)?;
                    Ok(default)
                }
            }
        };
        get(META_FORMAT, FORMAT).map_err(be)?;
        // etcd starts at revision 1 with no keys; so do we.
        let revision = get(META_REVISION, 1).map_err(be)?;
        let compact_revision = get(META_COMPACT, 0).map_err(be)?;
        let next_lease = get(META_NEXT_LEASE, 1).map_err(be)?;
        State {
            revision: revision as i64,
            compact_revision: compact_revision as i64,
            next_lease: next_lease as i64,
        }
    };
    wtx.commit().map_err(|e| be(e.into()))?;
    Ok(state)
}

/// A counter from the meta table (0 if absent).
pub(crate) fn read_meta(rtx: &ReadTransaction, name: &str) -> Result<i64, redb::Error> {
    let meta = rtx.open_table(META)?;
    Ok(meta.get(name)?.map(|v| v.value() as i64).unwrap_or(0))
}
