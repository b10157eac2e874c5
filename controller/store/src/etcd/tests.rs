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

/// Issue 16 item 6: an etcd that serves clients over TLS only, requires a
/// client certificate from its CA, and has authentication enabled.
mod secured {
    use std::sync::Arc;

    use yunshu_testkit::EtcdServer;

    use super::super::{EtcdAuth, EtcdConfig, EtcdStore, EtcdTls};
    use crate::store::Store;

    pub const USER: &str = "yunshu";
    pub const PASSWORD: &str = "correct horse battery staple";

    /// The server and the directory of the password files.
    pub struct Secured {
        pub server: EtcdServer,
        pub dir: tempfile::TempDir,
    }

    impl Secured {
        /// The configuration `--store etcds://… --etcd-ca … --etcd-cert …
        /// --etcd-key … --etcd-user … --etcd-password-file …` makes.
        pub fn config(&self) -> EtcdConfig {
            let files = self.server.tls().expect("a TLS server");
            let mut config = EtcdConfig::new(vec![self.server.endpoint()]);
            config.tls = Some(EtcdTls {
                ca_file: Some(files.ca.clone()),
                cert_file: Some(files.client_cert.clone()),
                key_file: Some(files.client_key.clone()),
            });
            config.auth = Some(EtcdAuth {
                user: USER.into(),
                password_file: self.password_file("good", &format!("{PASSWORD}\n")),
            });
            config
        }

        pub fn password_file(&self, name: &str, password: &str) -> std::path::PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, password).expect("write the password file");
            path
        }
    }

    pub async fn start() -> Secured {
        let server = tokio::task::spawn_blocking(EtcdServer::start_tls)
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{e}"));
        server
            .enable_auth("root password for tests", USER, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{}", crate::etcd::tests::chain(&e)));
        Secured {
            server,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub async fn secured_store() -> (Secured, Arc<dyn Store>) {
        let secured = start().await;
        let store = EtcdStore::connect(secured.config())
            .await
            .expect("connect over TLS as the user");
        (secured, Arc::new(store))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

mod etcd_over_tls_with_client_certificates_and_users_passes_the_conformance_suite {
    use super::secured::secured_store;

    crate::store_conformance_tests!(secured_store);
}

/// Issue 16 item 6: no client certificate, another CA's certificate, a wrong
/// password, or a certificate without a user are each refused, with an error
/// that says which.
#[tokio::test]
async fn a_secured_etcd_refuses_clients_without_a_certificate_or_with_a_wrong_password() {
    let secured = secured::start().await;

    // The right user, the right password: works.
    let good = EtcdStore::connect(secured.config()).await.expect("connect");
    good.put("k", b"v".to_vec()).await.expect("put");

    // No client certificate: the TLS handshake is refused.
    let mut config = secured.config();
    if let Some(tls) = config.tls.as_mut() {
        tls.cert_file = None;
        tls.key_file = None;
    }
    config.auth = None;
    let store = EtcdStore::connect(config).await.expect("lazy connect");
    let err = store.health().await.expect_err("no certificate");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string()
            .contains("refused this client's certificate"),
        "{err}"
    );

    // A certificate from another CA.
    let files = secured.server.tls().expect("tls").clone();
    let mut config = secured.config();
    if let Some(tls) = config.tls.as_mut() {
        tls.cert_file = Some(files.stranger_cert.clone());
        tls.key_file = Some(files.stranger_key.clone());
    }
    config.auth = None;
    let store = EtcdStore::connect(config).await.expect("lazy connect");
    let err = store.health().await.expect_err("stranger");
    assert!(err.to_string().contains("--etcd-cert"), "{err}");

    // The right certificate and a wrong password: refused when opening.
    let mut config = secured.config();
    if let Some(auth) = config.auth.as_mut() {
        auth.password_file = secured.password_file("wrong", "guess");
    }
    let err = match EtcdStore::connect(config).await {
        Ok(_) => panic!("a wrong password was accepted"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::EtcdAuth { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("invalid user ID or password") && message.contains("--etcd-password-file"),
        "{message}"
    );
    assert!(!err.is_retryable());

    // The right certificate and no user: nothing readable.
    let mut config = secured.config();
    config.auth = None;
    let store = EtcdStore::connect(config).await.expect("lazy connect");
    let err = store.get("k").await.expect_err("no user");
    assert!(chain(&err).contains("permission denied"), "{}", chain(&err));

    // etcd's server CA not trusted: the handshake names the unknown issuer.
    let mut config = secured.config();
    if let Some(tls) = config.tls.as_mut() {
        tls.ca_file = Some(files.stranger_cert.clone());
    }
    config.auth = None;
    let store = EtcdStore::connect(config).await.expect("lazy connect");
    let err = store.health().await.expect_err("untrusted server");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

/// The path of `yunshu serve --store etcds://… --etcd-ca … --etcd-cert …
/// --etcd-key … --etcd-user … --etcd-password-file …`: the flags reach the
/// store crate as [`crate::EtcdOptions`] and open the secured etcd.
#[tokio::test]
async fn the_serve_flags_open_a_secured_etcd() {
    let secured = secured::start().await;
    let files = secured.server.tls().expect("tls").clone();
    let spec: crate::StoreSpec = format!("etcds://{}/flags", secured.server.endpoint())
        .parse()
        .expect("spec");
    let spec = spec
        .with_etcd_options(crate::EtcdOptions {
            ca_file: Some(files.ca),
            cert_file: Some(files.client_cert),
            key_file: Some(files.client_key),
            user: Some(secured::USER.into()),
            password_file: Some(secured.password_file("pw", &format!("{}\n", secured::PASSWORD))),
        })
        .expect("options");
    let store = crate::open_store(&spec, secured.dir.path())
        .await
        .expect("open");
    store.health().await.expect("healthy");
    store.put("k", b"v".to_vec()).await.expect("put");
    assert_eq!(store.get("k").await.expect("get").expect("kv").value, b"v");
}

/// An etcd user configured while etcd is down does not stop the start: the
/// store opens, reports unavailable, and signs in once etcd answers.
#[tokio::test]
async fn a_user_given_while_etcd_is_down_signs_in_once_it_answers() {
    let mut secured = secured::start().await;
    secured.server.kill();
    let store = EtcdStore::connect(secured.config())
        .await
        .expect("opens while etcd is down");
    let down = store.health().await.expect_err("down");
    assert!(down.is_retryable(), "{down:?}");
    let mut server = secured.server;
    let server = tokio::task::spawn_blocking(move || server.restart().map(|()| server))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    while let Err(e) = store.health().await {
        assert!(e.is_retryable(), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(20), "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store
        .put("k", b"v".to_vec())
        .await
        .expect("put as the user");
    drop(server);
}
