//! The etcd backend against the conformance suite, each test on its own real etcd.

use std::sync::Arc;
use std::time::Duration;

use yunshu_testkit::EtcdServer;

use super::{EtcdConfig, EtcdStore};
use crate::error::StoreError;
use crate::store::Store;

async fn etcd_store() -> (EtcdServer, Arc<dyn Store>) {
    let server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{e}"));
    let store = EtcdStore::connect(EtcdConfig::new(vec![server.endpoint()]))
        .await
        .expect("connect");
    (server, Arc::new(store))
}

crate::store_conformance_tests!(etcd_store);

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let (server, a) = etcd_store().await;
    let mut config = EtcdConfig::new(vec![server.endpoint()]);
    config.namespace = "/other/".into();
    let b = EtcdStore::connect(config).await.expect("connect");
    a.put("k", b"a".to_vec()).await.expect("put");
    assert!(b.get("k").await.expect("get").is_none());
    assert!(
        b.range("", Default::default())
            .await
            .expect("range")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn unreachable_etcd_is_unavailable_not_a_hang() {
    let (mut server, store) = etcd_store().await;
    store.health().await.expect("healthy while running");
    server.kill();
    let started = std::time::Instant::now();
    let err = store.health().await.expect_err("down");
    assert!(err.is_retryable(), "{err:?}");
    assert!(matches!(err, StoreError::Unavailable { .. }));
    assert!(started.elapsed() < Duration::from_secs(15));
}
