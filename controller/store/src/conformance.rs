//! The store conformance suite: the promises of [`Store`], as tests every backend runs.
//!
//! Each case is a public `async fn(&dyn Store)` that panics on failure. A backend
//! runs them all with [`crate::store_conformance_tests!`], given an async factory
//! returning `(guard, Arc<dyn Store>)` — the guard keeps whatever the store needs
//! alive (a temp directory, an etcd process) and cleans it up when dropped.
//! Cases use their own key prefix and compare revisions relative to what they read,
//! so they do not depend on a fresh store.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;

use crate::error::StoreError;
use crate::model::{EventKind, PageRequest, Revision, Txn, TxnOutcome, WatchBatch, WatchStream};
use crate::store::Store;
use crate::{MAX_TXN_OPS, MAX_VALUE_BYTES};

/// How long a case waits for an event that must come.
const PATIENCE: Duration = Duration::from_secs(15);

/// Generates one `#[tokio::test]` per conformance case, each calling `$factory`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!(@cases $factory;
            get_missing_is_none,
            put_then_get_returns_value_and_counters,
            overwrite_bumps_version_keeps_create_revision,
            delete_is_idempotent,
            values_are_binary_safe,
            range_returns_only_prefix_in_key_order,
            range_pages_visit_every_key_once,
            range_pagination_stable_under_concurrent_writes,
            txn_is_all_or_nothing,
            txn_create_if_absent,
            concurrent_writers_exactly_one_wins,
            bad_requests_write_nothing,
            watch_replays_history_then_follows_live,
            watch_resume_misses_nothing_repeats_nothing,
            watch_filters_by_prefix,
            watch_batches_one_revision_per_txn,
            watch_from_range_revision_sees_only_later_changes,
            watch_from_compacted_revision_fails,
            lease_expiry_deletes_keys,
            lease_keep_alive_keeps_keys,
            lease_revoke_deletes_keys_now,
            put_with_unknown_lease_is_refused,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store) = $factory().await;
                $crate::conformance::$case(&*store).await;
            }
        )*
    };
}

async fn next_batch(stream: &mut WatchStream) -> WatchBatch {
    match tokio::time::timeout(PATIENCE, stream.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {PATIENCE:?}"),
    }
}

async fn committed(store: &dyn Store, txn: Txn) -> Revision {
    match store.txn(txn).await.expect("txn") {
        TxnOutcome::Committed { revision } => revision,
        TxnOutcome::Conflict => panic!("unexpected conflict"),
    }
}

async fn keys_under(store: &dyn Store, prefix: &str) -> Vec<String> {
    let page = store
        .range(prefix, PageRequest::default())
        .await
        .expect("range");
    page.items.into_iter().map(|kv| kv.key).collect()
}

pub async fn get_missing_is_none(store: &dyn Store) {
    assert!(store.get("c/missing/nothing").await.expect("get").is_none());
}

pub async fn put_then_get_returns_value_and_counters(store: &dyn Store) {
    let before = store.revision().await.expect("revision");
    let rev = store.put("c/put/a", b"hello".to_vec()).await.expect("put");
    assert!(rev > before, "a put moves the revision forward");
    let kv = store.get("c/put/a").await.expect("get").expect("present");
    assert_eq!(kv.key, "c/put/a");
    assert_eq!(kv.value, b"hello");
    assert_eq!(kv.create_revision, rev);
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(kv.version, 1);
    assert_eq!(kv.lease, None);
    assert_eq!(store.revision().await.expect("revision"), rev);
}

pub async fn overwrite_bumps_version_keeps_create_revision(store: &dyn Store) {
    let r1 = store.put("c/over/a", b"1".to_vec()).await.expect("put");
    let r2 = store.put("c/over/a", b"2".to_vec()).await.expect("put");
    assert!(r2 > r1);
    let kv = store.get("c/over/a").await.expect("get").expect("present");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"2"[..], r1, r2, 2)
    );
}

pub async fn delete_is_idempotent(store: &dyn Store) {
    store.put("c/del/a", b"x".to_vec()).await.expect("put");
    assert!(store.delete("c/del/a").await.expect("delete"), "existed");
    let after = store.revision().await.expect("revision");
    assert!(
        !store.delete("c/del/a").await.expect("delete again"),
        "gone"
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        after,
        "deleting a missing key writes nothing"
    );
    assert!(store.get("c/del/a").await.expect("get").is_none());
    // A re-created key starts a new life.
    let r = store.put("c/del/a", b"y".to_vec()).await.expect("put");
    let kv = store.get("c/del/a").await.expect("get").expect("present");
    assert_eq!((kv.create_revision, kv.version), (r, 1));
}

pub async fn values_are_binary_safe(store: &dyn Store) {
    let value: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    store.put("c/bin/中文键", value.clone()).await.expect("put");
    let kv = store
        .get("c/bin/中文键")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(kv.value, value);
    store
        .put("c/bin/empty", Vec::new())
        .await
        .expect("put empty");
    let kv = store
        .get("c/bin/empty")
        .await
        .expect("get")
        .expect("present");
    assert!(kv.value.is_empty());
}

pub async fn range_returns_only_prefix_in_key_order(store: &dyn Store) {
    for key in ["c/rng/b", "c/rng/a", "c/rng/c", "c/rngx/d", "c/rn", "c/rng"] {
        store.put(key, key.as_bytes().to_vec()).await.expect("put");
    }
    assert_eq!(
        keys_under(store, "c/rng/").await,
        vec!["c/rng/a", "c/rng/b", "c/rng/c"]
    );
    let page = store
        .range("c/rng/", PageRequest::default())
        .await
        .expect("range");
    assert!(page.next.is_none(), "one page holds three keys");
    assert!(
        page.revision
            >= page
                .items
                .iter()
                .map(|kv| kv.mod_revision)
                .max()
                .unwrap_or(0)
    );
    assert!(keys_under(store, "c/none/").await.is_empty());
}

pub async fn range_pages_visit_every_key_once(store: &dyn Store) {
    let mut expected = Vec::new();
    for chunk in 0..5 {
        let mut txn = Txn::new();
        for i in 0..50 {
            let key = format!("c/pages/{:04}", chunk * 50 + i);
            txn = txn.put(key.clone(), vec![1]);
            expected.push(key);
        }
        committed(store, txn).await;
    }
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .range("c/pages/", PageRequest { after, limit: 7 })
            .await
            .expect("range");
        assert!(page.items.len() <= 7);
        pages += 1;
        seen.extend(page.items.into_iter().map(|kv| kv.key));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 250usize.div_ceil(7));
}

pub async fn range_pagination_stable_under_concurrent_writes(store: &dyn Store) {
    // Stable keys exist for the whole listing; volatile keys come and go between
    // (and during) page reads. Every stable key must be listed exactly once, in order.
    let stable: Vec<String> = (0..200).map(|i| format!("c/stable/k{i:04}")).collect();
    for chunk in stable.chunks(100) {
        let mut txn = Txn::new();
        for key in chunk {
            txn = txn.put(key.clone(), vec![0]);
        }
        committed(store, txn).await;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut after = None;
    let mut step = 0u32;
    loop {
        // Writers and the reader run at once, not just in turn.
        let writes = async {
            for j in 0..6u32 {
                let n = (step * 37 + j * 53) % 200;
                let key = format!("c/stable/k{n:04}v{step}");
                store.put(&key, vec![1]).await.expect("volatile put");
                if j % 2 == 0 {
                    store.delete(&key).await.expect("volatile delete");
                }
            }
            // A stable key is rewritten too: it must still appear once.
            let n = (step * 11) % 200;
            store
                .put(&format!("c/stable/k{n:04}"), vec![2])
                .await
                .expect("rewrite");
        };
        let read = store.range(
            "c/stable/",
            PageRequest {
                after: after.clone(),
                limit: 13,
            },
        );
        let ((), page) = futures::join!(writes, read);
        let page = page.expect("range");
        seen.extend(page.items.into_iter().map(|kv| kv.key));
        step += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "keys strictly ascending: no key listed twice"
    );
    let seen: BTreeSet<_> = seen.into_iter().collect();
    for key in &stable {
        assert!(seen.contains(key), "stable key {key} missing");
    }
}

pub async fn txn_is_all_or_nothing(store: &dyn Store) {
    let r = store.put("c/txn/guard", b"v1".to_vec()).await.expect("put");
    store.put("c/txn/b", b"old".to_vec()).await.expect("put");
    // A stale compare: nothing of the transaction is applied.
    let outcome = store
        .txn(
            Txn::new()
                .when_mod_revision("c/txn/guard", r - 1)
                .put("c/txn/a", b"new".to_vec())
                .delete("c/txn/b")
                .put("c/txn/guard", b"v2".to_vec()),
        )
        .await
        .expect("txn");
    assert_eq!(outcome, TxnOutcome::Conflict);
    assert!(store.get("c/txn/a").await.expect("get").is_none());
    assert!(store.get("c/txn/b").await.expect("get").is_some());
    assert_eq!(
        store
            .get("c/txn/guard")
            .await
            .expect("get")
            .expect("guard")
            .value,
        b"v1"
    );
    // The right compare: everything is applied, at one revision.
    let rev = committed(
        store,
        Txn::new()
            .when_mod_revision("c/txn/guard", r)
            .put("c/txn/a", b"new".to_vec())
            .delete("c/txn/b")
            .put("c/txn/guard", b"v2".to_vec()),
    )
    .await;
    let a = store.get("c/txn/a").await.expect("get").expect("a");
    let guard = store.get("c/txn/guard").await.expect("get").expect("guard");
    assert_eq!((a.mod_revision, guard.mod_revision), (rev, rev));
    assert!(store.get("c/txn/b").await.expect("get").is_none());
}

pub async fn txn_create_if_absent(store: &dyn Store) {
    let create = || {
        Txn::new()
            .when_mod_revision("c/create/a", 0)
            .put("c/create/a", b"first".to_vec())
    };
    assert!(store.txn(create()).await.expect("txn").is_committed());
    assert_eq!(
        store.txn(create()).await.expect("txn"),
        TxnOutcome::Conflict
    );
    assert_eq!(
        store
            .get("c/create/a")
            .await
            .expect("get")
            .expect("a")
            .value,
        b"first"
    );
}

pub async fn concurrent_writers_exactly_one_wins(store: &dyn Store) {
    let r = store.put("c/race/k", b"0".to_vec()).await.expect("put");
    // Sixteen writers all read revision r, then all try to write on top of it.
    let writers = (0..16).map(|i| async move {
        store
            .txn(
                Txn::new()
                    .when_mod_revision("c/race/k", r)
                    .put("c/race/k", format!("writer-{i}").into_bytes()),
            )
            .await
            .expect("txn")
    });
    let outcomes = futures::future::join_all(writers).await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_committed())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {outcomes:?}");
    let kv = store.get("c/race/k").await.expect("get").expect("k");
    assert_eq!(kv.value, format!("writer-{}", winners[0]).into_bytes());
    assert_eq!(kv.version, 2);
}

pub async fn bad_requests_write_nothing(store: &dyn Store) {
    let before = store.revision().await.expect("revision");
    let invalid = |r: Result<TxnOutcome, StoreError>| {
        assert!(
            matches!(r, Err(StoreError::InvalidArgument(_))),
            "expected InvalidArgument, got {r:?}"
        )
    };
    invalid(store.txn(Txn::new().put("", b"x".to_vec())).await);
    invalid(
        store
            .txn(Txn::new().put("c/bad/big", vec![0; MAX_VALUE_BYTES + 1]))
            .await,
    );
    let mut many = Txn::new();
    for i in 0..=MAX_TXN_OPS {
        many = many.put(format!("c/bad/{i}"), vec![1]);
    }
    invalid(store.txn(many).await);
    invalid(
        store
            .txn(
                Txn::new()
                    .put("c/bad/dup", vec![1])
                    .put("c/bad/dup", vec![2]),
            )
            .await,
    );
    // A good op beside a bad one does not slip through either.
    invalid(
        store
            .txn(Txn::new().put("c/bad/ok", vec![1]).put("", vec![2]))
            .await,
    );
    assert!(matches!(
        store.get("").await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(keys_under(store, "c/bad/").await.is_empty());
    assert_eq!(store.revision().await.expect("revision"), before);
}

pub async fn watch_replays_history_then_follows_live(store: &dyn Store) {
    let r1 = store.put("c/w1/a", b"1".to_vec()).await.expect("put");
    let r2 = store.put("c/w1/b", b"2".to_vec()).await.expect("put");
    let mut watch = store.watch("c/w1/", r1).await.expect("watch");
    let b1 = next_batch(&mut watch).await;
    let b2 = next_batch(&mut watch).await;
    assert_eq!((b1.revision, b1.events[0].kv.key.as_str()), (r1, "c/w1/a"));
    assert_eq!((b2.revision, b2.events[0].kv.key.as_str()), (r2, "c/w1/b"));
    store.delete("c/w1/a").await.expect("delete");
    let b3 = next_batch(&mut watch).await;
    assert!(b3.revision > r2);
    assert_eq!(b3.events.len(), 1);
    assert_eq!(b3.events[0].kind, EventKind::Delete);
    assert_eq!(b3.events[0].kv.key, "c/w1/a");
    assert_eq!(b3.events[0].kv.mod_revision, b3.revision);
}

pub async fn watch_resume_misses_nothing_repeats_nothing(store: &dyn Store) {
    let mut expected = Vec::new();
    for i in 0..10 {
        let key = format!("c/resume/{i}");
        let rev = store.put(&key, vec![i]).await.expect("put");
        expected.push((rev, key));
    }
    let start = expected[0].0;
    let mut seen = Vec::new();
    let mut watch = store.watch("c/resume/", start).await.expect("watch");
    for _ in 0..4 {
        let b = next_batch(&mut watch).await;
        seen.extend(b.events.into_iter().map(|e| (b.revision, e.kv.key)));
    }
    drop(watch); // the "disconnect"
    for i in 10..15 {
        let key = format!("c/resume/{i}");
        let rev = store.put(&key, vec![i]).await.expect("put");
        expected.push((rev, key));
    }
    let last = seen.last().map(|(r, _)| *r).expect("seen four");
    let mut watch = store.watch("c/resume/", last + 1).await.expect("resume");
    while seen.len() < expected.len() {
        let b = next_batch(&mut watch).await;
        seen.extend(b.events.into_iter().map(|e| (b.revision, e.kv.key)));
    }
    assert_eq!(seen, expected);
    // And nothing more is pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.next())
            .await
            .is_err(),
        "no extra event after the last write"
    );
}

pub async fn watch_filters_by_prefix(store: &dyn Store) {
    let mut watch = store.watch("c/wf/in/", 0).await.expect("watch");
    store.put("c/wf/out/a", vec![1]).await.expect("put");
    store.put("c/wf/inx", vec![1]).await.expect("put");
    let r = store.put("c/wf/in/a", vec![1]).await.expect("put");
    let b = next_batch(&mut watch).await;
    assert_eq!(b.revision, r);
    assert_eq!(b.events.len(), 1);
    assert_eq!(b.events[0].kv.key, "c/wf/in/a");
}

pub async fn watch_batches_one_revision_per_txn(store: &dyn Store) {
    store.put("c/wb/gone", vec![0]).await.expect("put");
    let mut watch = store.watch("c/wb/", 0).await.expect("watch");
    let rev = committed(
        store,
        Txn::new()
            .put("c/wb/a", vec![1])
            .put("c/wb/b", vec![2])
            .delete("c/wb/gone"),
    )
    .await;
    let b = next_batch(&mut watch).await;
    assert_eq!(b.revision, rev);
    let got: Vec<_> = b
        .events
        .iter()
        .map(|e| (e.kind, e.kv.key.as_str(), e.kv.mod_revision))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Put, "c/wb/a", rev),
            (EventKind::Put, "c/wb/b", rev),
            (EventKind::Delete, "c/wb/gone", rev),
        ]
    );
}

pub async fn watch_from_range_revision_sees_only_later_changes(store: &dyn Store) {
    store.put("c/lw/a", vec![1]).await.expect("put");
    let page = store
        .range("c/lw/", PageRequest::default())
        .await
        .expect("range");
    let mut watch = store
        .watch("c/lw/", page.revision + 1)
        .await
        .expect("watch");
    let r = store.put("c/lw/b", vec![2]).await.expect("put");
    let b = next_batch(&mut watch).await;
    assert_eq!((b.revision, b.events[0].kv.key.as_str()), (r, "c/lw/b"));
}

pub async fn watch_from_compacted_revision_fails(store: &dyn Store) {
    let r1 = store.put("c/cmp/a", vec![1]).await.expect("put");
    store.put("c/cmp/a", vec![2]).await.expect("put");
    let r3 = store.put("c/cmp/a", vec![3]).await.expect("put");
    store.compact(r3).await.expect("compact");
    store.compact(r3).await.expect("compacting twice is fine");
    let failed = match store.watch("c/cmp/", r1).await {
        Err(e) => e,
        Ok(mut watch) => match tokio::time::timeout(PATIENCE, watch.next()).await {
            Ok(Some(Err(e))) => e,
            other => panic!("a compacted start must fail, got {other:?}"),
        },
    };
    assert!(matches!(failed, StoreError::Compacted { .. }), "{failed:?}");
    // From the compaction point on, history is still there.
    let mut watch = store
        .watch("c/cmp/", r3)
        .await
        .expect("watch at compaction");
    assert_eq!(next_batch(&mut watch).await.revision, r3);
    // The current value survives compaction.
    assert_eq!(
        store.get("c/cmp/a").await.expect("get").expect("a").value,
        vec![3]
    );
}

pub async fn lease_expiry_deletes_keys(store: &dyn Store) {
    let lease = store
        .lease_grant(Duration::from_secs(1))
        .await
        .expect("grant");
    let mut watch = store.watch("c/lexp/", 0).await.expect("watch");
    store
        .put_with_lease("c/lexp/a", vec![1], lease)
        .await
        .expect("put a");
    store
        .put_with_lease("c/lexp/b", vec![1], lease)
        .await
        .expect("put b");
    store.put("c/lexp/keep", vec![1]).await.expect("put keep");
    let kv = store.get("c/lexp/a").await.expect("get").expect("a");
    assert_eq!(kv.lease, Some(lease));
    let mut deleted = BTreeSet::new();
    while deleted.len() < 2 {
        let b = next_batch(&mut watch).await;
        for e in b.events {
            if e.kind == EventKind::Delete {
                deleted.insert(e.kv.key);
            }
        }
    }
    assert_eq!(
        deleted.into_iter().collect::<Vec<_>>(),
        vec!["c/lexp/a", "c/lexp/b"]
    );
    assert_eq!(keys_under(store, "c/lexp/").await, vec!["c/lexp/keep"]);
    let renewed = store.lease_keep_alive(lease).await;
    assert!(
        matches!(renewed, Err(StoreError::LeaseNotFound(id)) if id == lease),
        "{renewed:?}"
    );
}

pub async fn lease_keep_alive_keeps_keys(store: &dyn Store) {
    // A generous TTL: on a loaded 2-core CI machine a keep-alive can be late.
    let lease = store
        .lease_grant(Duration::from_secs(3))
        .await
        .expect("grant");
    store
        .put_with_lease("c/lka/a", vec![1], lease)
        .await
        .expect("put");
    // Renew well inside the TTL for twice the TTL: the key must stay.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ttl = store.lease_keep_alive(lease).await.expect("keep alive");
        assert!(ttl >= Duration::from_secs(1));
        assert!(store.get("c/lka/a").await.expect("get").is_some());
    }
    store.lease_revoke(lease).await.expect("revoke");
}

pub async fn lease_revoke_deletes_keys_now(store: &dyn Store) {
    let lease = store
        .lease_grant(Duration::from_secs(60))
        .await
        .expect("grant");
    store
        .put_with_lease("c/lrev/a", vec![1], lease)
        .await
        .expect("put");
    // Re-putting without the lease detaches the key from it.
    store
        .put_with_lease("c/lrev/b", vec![1], lease)
        .await
        .expect("put");
    store.put("c/lrev/b", vec![2]).await.expect("detach");
    store.lease_revoke(lease).await.expect("revoke");
    assert_eq!(keys_under(store, "c/lrev/").await, vec!["c/lrev/b"]);
    assert!(matches!(
        store.lease_revoke(lease).await,
        Err(StoreError::LeaseNotFound(_))
    ));
}

pub async fn put_with_unknown_lease_is_refused(store: &dyn Store) {
    let before = store.revision().await.expect("revision");
    let r = store.put_with_lease("c/lnf/a", vec![1], 987_654_321).await;
    assert!(matches!(r, Err(StoreError::LeaseNotFound(_))), "{r:?}");
    assert!(store.get("c/lnf/a").await.expect("get").is_none());
    assert_eq!(store.revision().await.expect("revision"), before);
}
