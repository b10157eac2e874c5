//! Choosing a backend from the `--store` flag.

use std::path::Path;
use std::sync::Arc;

use crate::error::StoreError;
use crate::etcd::{EtcdConfig, EtcdOptions, EtcdStore, EtcdTls};
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
    /// `etcd://host:port[,host:port…][/namespace]`, or `etcds://…` for TLS.
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
        let (rest, tls) = if let Some(rest) = s.strip_prefix("etcd://") {
            (rest, None)
        } else if let Some(rest) = s.strip_prefix("etcds://") {
            (rest, Some(EtcdTls::default()))
        } else {
            return Err(StoreError::InvalidArgument(format!(
                "unknown store {s:?}: use `redb`, `memory`, `etcd://host:port[,host:port…][/namespace]` or `etcds://…` (TLS)"
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
        config.tls = tls;
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            config.namespace = format!("/{}/", ns.trim_matches('/'));
        }
        Ok(StoreSpec::Etcd(config))
    }
}

impl StoreSpec {
    /// The store with the etcd flags of `yunshu serve` (TLS files, user):
    /// refused for a store that is not etcd, and see [`EtcdConfig::apply`].
    pub fn with_etcd_options(mut self, options: EtcdOptions) -> Result<Self, StoreError> {
        match &mut self {
            StoreSpec::Etcd(config) => config.apply(options)?,
            _ if options.is_empty() => {}
            _ => {
                return Err(StoreError::InvalidArgument(
                    "--etcd-ca, --etcd-cert, --etcd-key, --etcd-user and --etcd-password-file are for an etcd store (--store etcds://…)".into(),
                ));
            }
        }
        Ok(self)
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
        let mut tls = EtcdConfig::new(vec!["a:1".into()]);
        tls.tls = Some(EtcdTls::default());
        check("etcds://a:1", Ok(StoreSpec::Etcd(tls)));
    }

    /// Issue 16 item 6: the etcd flags are refused where they cannot work or
    /// would weaken what was asked (a password over plain etcd://).
    #[test]
    fn etcd_tls_and_user_flags_refuse_unusable_combinations() {
        let spec = |s: &str| s.parse::<StoreSpec>().expect("spec");
        let opts = |f: &dyn Fn(&mut EtcdOptions)| {
            let mut o = EtcdOptions::default();
            f(&mut o);
            o
        };
        let ca = |o: &mut EtcdOptions| o.ca_file = Some("ca.pem".into());
        let refused = |s: &str, o: EtcdOptions, says: &str| {
            let err = spec(s).with_etcd_options(o).expect_err(says);
            assert!(err.to_string().contains(says), "{s}: {err}");
        };
        refused("redb", opts(&ca), "etcd store");
        refused("etcd://a:1", opts(&ca), "etcds://");
        refused(
            "etcd://a:1",
            opts(&|o| {
                o.user = Some("yunshu".into());
                o.password_file = Some("pw".into());
            }),
            "in clear",
        );
        refused("etcds://a:1", EtcdOptions::default(), "--etcd-ca");
        refused(
            "etcds://a:1",
            opts(&|o| {
                ca(o);
                o.cert_file = Some("c.pem".into());
            }),
            "--etcd-key go together",
        );
        refused(
            "etcds://a:1",
            opts(&|o| {
                ca(o);
                o.user = Some("yunshu".into());
            }),
            "--etcd-password-file go together",
        );
        let full = opts(&|o| {
            ca(o);
            o.cert_file = Some("c.pem".into());
            o.key_file = Some("k.pem".into());
            o.user = Some("yunshu".into());
            o.password_file = Some("pw".into());
        });
        let StoreSpec::Etcd(config) = spec("etcds://a:1/ns").with_etcd_options(full).expect("ok")
        else {
            panic!("etcd")
        };
        assert_eq!(config.namespace, "/ns/");
        assert_eq!(config.auth.expect("user").user, "yunshu");
        assert!(config.tls.expect("tls").key_file.is_some());
        assert_eq!(
            spec("redb")
                .with_etcd_options(EtcdOptions::default())
                .expect("ok"),
            StoreSpec::Redb
        );
    }
}
