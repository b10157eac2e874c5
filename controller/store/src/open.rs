//! Choosing a backend from the `--store` flag.

use std::path::Path;
use std::sync::Arc;

use crate::error::StoreError;
use crate::etcd::{EtcdConfig, EtcdStore};
use crate::redb::{RedbOptions, RedbStore};
use crate::store::Store;

/// The name of the store file inside the data directory.
pub const REDB_FILE: &str = "yunshu.redb";

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `redb`: the embedded file `<data-dir>/yunshu.redb`.
    Redb,
    /// `memory`: nothing survives the process (tests, throw-away demos).
    Memory,
    /// `etcd://host:port[,host:port…][/namespace]`.
    Etcd(EtcdConfig),
}

impl std::str::FromStr for StoreSpec {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => return Ok(StoreSpec::Redb),
            "memory" => return Ok(StoreSpec::Memory),
            _ => {}
        }
        let Some(rest) = s.strip_prefix("etcd://") else {
            return Err(StoreError::InvalidArgument(format!(
                "unknown store {s:?}: use `redb`, `memory` or `etcd://host:port[,host:port…][/namespace]`"
            )));
        };
        let (hosts, namespace) = match rest.split_once('/') {
            Some((hosts, ns)) => (hosts, Some(ns)),
            None => (rest, None),
        };
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(StoreError::InvalidArgument(format!(
                "store {s:?} names no etcd endpoint"
            )));
        }
        for e in &endpoints {
            let port_ok = e
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(StoreError::InvalidArgument(format!(
                    "etcd endpoint {e:?} must be host:port"
                )));
            }
        }
        let mut config = EtcdConfig::new(endpoints);
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            config.namespace = format!("/{}/", ns.trim_matches('/'));
        }
        Ok(StoreSpec::Etcd(config))
    }
}

/// Opens the store `spec` names. The redb file lives in `data_dir`, which is created
/// if missing.
pub async fn open_store(spec: &StoreSpec, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match spec {
        StoreSpec::Redb => {
            std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
                path: data_dir.to_path_buf(),
                reason: format!("cannot create the data directory: {e}"),
            })?;
            Arc::new(RedbStore::open(
                &data_dir.join(REDB_FILE),
                RedbOptions::default(),
            )?)
        }
        StoreSpec::Memory => Arc::new(RedbStore::in_memory()?),
        StoreSpec::Etcd(config) => Arc::new(EtcdStore::connect(config.clone()).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<StoreSpec, ()>) {
        let got = input.parse::<StoreSpec>().map_err(|_| ());
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn parses_store_flags() {
        check("redb", Ok(StoreSpec::Redb));
        check("memory", Ok(StoreSpec::Memory));
        let mut one = EtcdConfig::new(vec!["127.0.0.1:2379".into()]);
        check("etcd://127.0.0.1:2379", Ok(StoreSpec::Etcd(one.clone())));
        one.namespace = "/city-a/".into();
        check("etcd://127.0.0.1:2379/city-a", Ok(StoreSpec::Etcd(one)));
        let two = EtcdConfig::new(vec!["a:1".into(), "b:2".into()]);
        check("etcd://a:1,b:2", Ok(StoreSpec::Etcd(two)));
        check("etcd://", Err(()));
        check("etcd://host", Err(()));
        check("etcd://host:notaport", Err(()));
        check("postgres://x", Err(()));
    }
}
