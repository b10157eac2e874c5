//! Typed records over the key-value store.
//!
//! A domain record `T` is stored at `<T::KIND>/<id>` as JSON in its versioned
//! envelope ([`yunshu_domain::Stored`]), so that `etcdctl get` shows something a
//! person can read, and so that a record written by a newer yunshu is refused with a
//! clear error instead of being misread. Only this module knows that layout.

use serde::Serialize;
use serde::de::DeserializeOwned;
use yunshu_domain::{Record, RecordHeader, Stored};

use crate::error::StoreError;
use crate::model::{PageRequest, Revision, Txn, TxnOutcome};
use crate::store::Store;

/// The key of record `id` of kind `T`.
pub fn key<T: Record>(id: &str) -> String {
    format!("{}/{}", T::KIND, id)
}

/// The key prefix of every record of kind `T`.
pub fn prefix<T: Record>() -> String {
    format!("{}/", T::KIND)
}

/// The stored bytes of `record`.
pub fn encode<T: Record + Serialize>(record: &T) -> Vec<u8> {
    let envelope = Stored {
        kind: T::KIND.to_owned(),
        schema_version: T::SCHEMA_VERSION,
        data: record,
    };
    // Serialising plain data structs into a Vec cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// The record stored at `key`, refusing other kinds and newer schema versions.
pub fn decode<T: Record + DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    // The header first: a record from a newer yunshu may have a body this binary
    // cannot parse, and must be reported as "too new", not as garbage.
    let header: RecordHeader = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    header.check::<T>().map_err(|e| corrupt(e.to_string()))?;
    let envelope: Stored<T> = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    envelope.into_inner().map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Record `id` of kind `T` with its mod revision (for a later compare), if present.
pub async fn get<T: Record + DeserializeOwned>(
    store: &dyn Store,
    id: &str,
) -> Result<Option<(T, Revision)>, StoreError> {
    let key = key::<T>(id);
    match store.get(&key).await? {
        Some(kv) => Ok(Some((decode(&key, &kv.value)?, kv.mod_revision))),
        None => Ok(None),
    }
}

/// Writes `record` only if no record with its id exists. Returns the revision, or
/// `None` if one already existed (nothing written).
pub async fn create<T: Record + Serialize>(
    store: &dyn Store,
    record: &T,
) -> Result<Option<Revision>, StoreError> {
    let key = key::<T>(&record.id());
    let txn = Txn::new()
        .when_mod_revision(key.clone(), 0)
        .put(key, encode(record));
    Ok(match store.txn(txn).await? {
        TxnOutcome::Committed { revision } => Some(revision),
        TxnOutcome::Conflict => None,
    })
}

/// One page of records of kind `T`, in id order, and the cursor of the next page.
pub async fn list<T: Record + DeserializeOwned>(
    store: &dyn Store,
    page: PageRequest,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    let page = store.range(&prefix::<T>(), page).await?;
    let items = page
        .items
        .iter()
        .map(|kv| decode(&kv.key, &kv.value))
        .collect::<Result<Vec<T>, _>>()?;
    Ok((items, page.next))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::RedbStore;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Note {
        id: String,
        text: String,
    }

    impl Record for Note {
        const KIND: &'static str = "note";
        const SCHEMA_VERSION: u32 = 1;
        fn id(&self) -> String {
            self.id.clone()
        }
    }

    #[tokio::test]
    async fn create_get_list_round_trip() {
        let store = RedbStore::in_memory().expect("store");
        let note = Note {
            id: "n1".into(),
            text: "云枢".into(),
        };
        assert!(create(&store, &note).await.expect("create").is_some());
        assert!(
            create(&store, &note).await.expect("create").is_none(),
            "exists"
        );
        let (got, rev) = get::<Note>(&store, "n1")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(got, note);
        assert!(rev > 0);
        let (all, next) = list::<Note>(&store, PageRequest::default())
            .await
            .expect("list");
        assert_eq!((all, next), (vec![note], None));
    }

    #[tokio::test]
    async fn newer_schema_is_refused_not_misread() {
        let store = RedbStore::in_memory().expect("store");
        // Version 9 also changed the body's shape: still reported as too new.
        let future = br#"{"kind":"note","schema_version":9,"data":{"title":["x"]}}"#;
        store.put("note/n1", future.to_vec()).await.expect("put");
        let err = get::<Note>(&store, "n1").await.expect_err("too new");
        assert!(err.to_string().contains("schema version 9"), "{err}");
    }
}
