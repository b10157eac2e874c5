//! The embedded backend against the conformance suite, plus what only a file has:
//! persistence across restarts, the file lock, corrupt and foreign files.

use std::sync::Arc;

use super::{RedbOptions, RedbStore};
use crate::error::StoreError;
use crate::store::Store;

async fn file_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("t.redb"), RedbOptions::default()).expect("open");
    (dir, Arc::new(store))
}

async fn memory_store() -> ((), Arc<dyn Store>) {
    ((), Arc::new(RedbStore::in_memory().expect("memory")))
}

mod file {
    crate::store_conformance_tests!(super::file_store);
}

mod memory {
    crate::store_conformance_tests!(super::memory_store);
}

#[tokio::test]
async fn data_and_revision_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    let (rev, lease) = {
        let store = RedbStore::open(&path, RedbOptions::default()).expect("open");
        store.put("a", b"1".to_vec()).await.expect("put");
        let lease = store
            .lease_grant(std::time::Duration::from_secs(60))
            .await
            .expect("grant");
        let rev = store
            .put_with_lease("b", b"2".to_vec(), lease)
            .await
            .expect("put");
        (rev, lease)
    };
    let store = RedbStore::open(&path, RedbOptions::default()).expect("reopen");
    assert_eq!(store.revision().await.expect("rev"), rev);
    assert_eq!(store.get("a").await.expect("get").expect("a").value, b"1");
    // Leases survive too, with a fresh TTL.
    store.lease_keep_alive(lease).await.expect("lease kept");
    let next = store.put("c", vec![]).await.expect("put");
    assert_eq!(next, rev + 1, "revisions continue where they stopped");
}

#[tokio::test]
async fn second_open_is_refused_with_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    let _first = RedbStore::open(&path, RedbOptions::default()).expect("open");
    match RedbStore::open(&path, RedbOptions::default()) {
        Err(StoreError::Locked { path: p }) => assert_eq!(p, path),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a second open must be refused"),
    }
}

#[test]
fn corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    std::fs::write(
        &path,
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .expect("write");
    match RedbStore::open(&path, RedbOptions::default()) {
        Err(e @ StoreError::Open { .. }) => {
            let text = e.to_string();
            assert!(text.contains("t.redb"), "{text}");
        }
        Err(other) => panic!("expected Open, got {other}"),
        Ok(_) => panic!("a corrupt file must be refused"),
    }
}

#[test]
fn foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    {
        let db = redb::Database::create(&path).expect("create");
        let wtx = db.begin_write().expect("write");
        {
            let table: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("recipes");
            let mut t = wtx.open_table(table).expect("table");
            t.insert("noodles", "flour, water").expect("insert");
        }
        wtx.commit().expect("commit");
    }
    match RedbStore::open(&path, RedbOptions::default()) {
        Err(e @ StoreError::Open { .. }) => {
            assert!(e.to_string().contains("not a yunshu store"), "{e}");
        }
        Err(other) => panic!("expected Open, got {other}"),
        Ok(_) => panic!("a foreign file must be refused"),
    }
}

#[tokio::test]
async fn history_is_compacted_automatically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = RedbOptions {
        history: 10,
        durable: false,
    };
    let store = RedbStore::open(&dir.path().join("t.redb"), options).expect("open");
    let first = store.put("k", vec![0]).await.expect("put");
    for i in 0..1100u32 {
        store.put("k", i.to_le_bytes().to_vec()).await.expect("put");
    }
    assert!(matches!(
        store.watch("k", first).await,
        Err(StoreError::Compacted { .. })
    ));
}

/// Security issue (low): the store file holds the CA key, password hashes
/// and sessions; it was created 0644. Now it is 0600, and an existing file
/// readable by others is narrowed when opened.
#[tokio::test]
async fn the_store_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.redb");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    {
        let store = RedbStore::open(&path, RedbOptions::default()).expect("open");
        store.put("a", b"1".to_vec()).await.expect("put");
    }
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = RedbStore::open(&path, RedbOptions::default()).expect("reopen");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.get("a").await.expect("get").expect("a").value, b"1");
}
