//! `store`: transactions and range reads per second on each backend.
//!
//! Measured per backend, in this order, each for `--seconds`:
//! - `txn1_seq`: one client, a compare-and-put on one key per transaction, one after
//!   another — the durable-commit ceiling (≈ 3 ms fsync here);
//! - `txn1_c64`: 64 clients doing the same on 64 keys — what group commit (redb) and
//!   etcd's batching give concurrent writers;
//! - `txn100_seq`: one client, 100 puts per transaction (keys/s = 100 × txn/s);
//! - `range100`: one client reading a 100-key page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use yunshu_store::{
    EtcdConfig, EtcdStore, PageRequest, RedbOptions, RedbStore, Store, Txn, TxnOutcome,
};
use yunshu_testkit::EtcdServer;

use crate::report::{bench, ratio};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Concurrent clients for the concurrent measurement.
    #[arg(long, default_value_t = 64)]
    clients: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    txn1_seq: f64,
    txn1_concurrent: f64,
    txn100_seq: f64,
    range100: f64,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let redb: Arc<dyn Store> = Arc::new(RedbStore::open(
        &dir.path().join("bench.redb"),
        RedbOptions::default(),
    )?);
    let etcd_server = tokio::task::spawn_blocking(EtcdServer::start).await??;
    let etcd: Arc<dyn Store> =
        Arc::new(EtcdStore::connect(EtcdConfig::new(vec![etcd_server.endpoint()])).await?);

    let r = measure("redb", redb.clone(), &options).await?;
    let e = measure("etcd", etcd.clone(), &options).await?;
    ratio("store_txn1_seq_redb_over_etcd", r.txn1_seq, e.txn1_seq);
    ratio(
        "store_txn1_concurrent_redb_over_etcd",
        r.txn1_concurrent,
        e.txn1_concurrent,
    );
    ratio(
        "store_txn100_seq_redb_over_etcd",
        r.txn100_seq,
        e.txn100_seq,
    );
    ratio("store_range100_redb_over_etcd", r.range100, e.range100);
    Ok(())
}

async fn measure(name: &str, store: Arc<dyn Store>, o: &Options) -> anyhow::Result<Figures> {
    let span = Duration::from_secs_f64(o.seconds);
    let value = vec![0x5a; o.value_size];
    let mut f = Figures::default();
    eprintln!("# {name}: {:.1} s per measurement", o.seconds);

    // One client, compare-and-put on one key.
    let mut rev = 0;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < span {
        match store
            .txn(
                Txn::new()
                    .when_mod_revision("bench/one", rev)
                    .put("bench/one", value.clone()),
            )
            .await?
        {
            TxnOutcome::Committed { revision } => rev = revision,
            TxnOutcome::Conflict => anyhow::bail!("unexpected conflict on a private key"),
        }
        n += 1;
    }
    f.txn1_seq = n as f64 / started.elapsed().as_secs_f64();
    bench(&format!("store_{name}_txn1_seq"), f.txn1_seq, "txn/s");

    // Many clients, each compare-and-put on its own key.
    let started = Instant::now();
    let clients = (0..o.clients).map(|c| {
        let store = store.clone();
        let value = value.clone();
        tokio::spawn(async move {
            let key = format!("bench/c/{c}");
            let mut rev = 0;
            let mut n = 0u64;
            while started.elapsed() < span {
                match store
                    .txn(
                        Txn::new()
                            .when_mod_revision(key.clone(), rev)
                            .put(key.clone(), value.clone()),
                    )
                    .await?
                {
                    TxnOutcome::Committed { revision } => rev = revision,
                    TxnOutcome::Conflict => anyhow::bail!("unexpected conflict on {key}"),
                }
                n += 1;
            }
            anyhow::Ok(n)
        })
    });
    let mut total = 0;
    for handle in futures::future::join_all(clients).await {
        total += handle??;
    }
    f.txn1_concurrent = total as f64 / started.elapsed().as_secs_f64();
    bench(
        &format!("store_{name}_txn1_c{}", o.clients),
        f.txn1_concurrent,
        "txn/s",
    );

    // One client, 100 keys per transaction.
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < span {
        let mut txn = Txn::new();
        for k in 0..100 {
            txn = txn.put(format!("bench/hundred/{k:03}"), value.clone());
        }
        store.txn(txn).await?;
        n += 1;
    }
    f.txn100_seq = n as f64 / started.elapsed().as_secs_f64();
    bench(&format!("store_{name}_txn100_seq"), f.txn100_seq, "txn/s");
    bench(
        &format!("store_{name}_txn100_seq_keys"),
        f.txn100_seq * 100.0,
        "keys/s",
    );

    // One client reading a 100-key page.
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < span {
        let page = store
            .range(
                "bench/hundred/",
                PageRequest {
                    after: None,
                    limit: 100,
                },
            )
            .await?;
        anyhow::ensure!(page.items.len() == 100, "expected 100 keys");
        n += 1;
    }
    f.range100 = n as f64 / started.elapsed().as_secs_f64();
    bench(&format!("store_{name}_range100"), f.range100, "ranges/s");
    Ok(f)
}
