//! Typed scans of one record kind: cursor pagination over a filtered scan, and
//! whole-kind passes. The cursor is the last returned record's id, so a page
//! boundary survives concurrent writes the same way the store's own key cursor
//! does.

use crate::{PageRequest, Revision, Store, StoreError, records};
use serde::de::DeserializeOwned;
use yunshu_domain::Record;

/// Largest page a caller may ask for.
pub const MAX_LIMIT: usize = 500;
/// Page size when the caller does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// One page of records and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Clamps a requested limit to `1..=MAX_LIMIT`.
pub fn limit(requested: Option<usize>) -> usize {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// Records of kind `T` under `range_prefix` (a prefix of `T`'s keys) with an id
/// after `after`, keeping those `keep` accepts, at most `limit` of them.
///
/// TODO-perf: filtering scans records the caller cannot see; a per-tenant index
/// key would make tenant pages proportional to the tenant's own records.
pub async fn scan<T: Record + DeserializeOwned>(
    store: &dyn Store,
    range_prefix: &str,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>, StoreError> {
    let kind_prefix = records::prefix::<T>();
    let mut cursor = after.map(|id| format!("{kind_prefix}{id}"));
    let mut items = Vec::new();
    loop {
        let page = store
            .range(
                range_prefix,
                PageRequest {
                    after: cursor.clone(),
                    limit,
                },
            )
            .await?;
        let count = page.items.len();
        for (i, kv) in page.items.iter().enumerate() {
            let record: T = records::decode(&kv.key, &kv.value)?;
            if !keep(&record) {
                continue;
            }
            items.push(record);
            if items.len() == limit {
                let more = i + 1 < count || page.next.is_some();
                let next = more.then(|| {
                    kv.key
                        .strip_prefix(&kind_prefix)
                        .unwrap_or(&kv.key)
                        .to_owned()
                });
                return Ok(Page { items, next });
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(Page { items, next: None }),
        }
    }
}

/// Every record of kind `T` with its mod revision, for passes over a whole kind
/// (timers, rules, the reconciler). Reads in store-sized pages.
pub async fn scan_all<T: Record + DeserializeOwned>(
    store: &dyn Store,
) -> Result<Vec<(T, Revision)>, StoreError> {
    scan_all_under(store, &records::prefix::<T>()).await
}

/// Every record of kind `T` whose key starts with `prefix` (a prefix of `T`'s
/// keys, e.g. one system's resources), with its mod revision.
pub async fn scan_all_under<T: Record + DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<(T, Revision)>, StoreError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .range(
                prefix,
                PageRequest {
                    after: after.take(),
                    limit: 0,
                },
            )
            .await?;
        for kv in &page.items {
            out.push((records::decode(&kv.key, &kv.value)?, kv.mod_revision));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}
