//! Dialling a driver with mutual TLS: the controller presents its replica
//! certificate and accepts only the certificate the registry pins for that
//! provider — issued by the controller's CA for the provider's name **and**
//! with the SHA-256 the registry recorded at registration or the last renewal
//! (the renewed-away one only for a short grace, see
//! `yunshu_drivers::registry::PREVIOUS_CERTIFICATE_GRACE_SECONDS`). Another
//! certificate of the same CA for the same provider — an old one whose key
//! leaked after a renewal — is refused.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use yunshu_domain::error::ErrorCode;
use yunshu_drivers::DriverPki;
use yunshu_drivers::registry::DriverRecord;
use yunshu_proto::tonic::transport::{Channel, ClientTlsConfig, Endpoint, Identity};
use yunshu_proto::v1::driver_client::DriverClient;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad driver endpoint {0:?}")]
    Endpoint(String),
    #[error("cannot set up TLS to the driver of {provider}: {reason}")]
    Tls { provider: String, reason: String },
    #[error("cannot connect to the driver of {provider} at {endpoint}")]
    Connect {
        provider: String,
        endpoint: String,
        #[source]
        source: yunshu_proto::tonic::transport::Error,
    },
    #[error(
        "the driver of {provider} at {endpoint} presented certificate sha256 {presented}, \
         not the one the registry pins (sha256 {pinned}); refused"
    )]
    NotPinned {
        provider: String,
        endpoint: String,
        presented: String,
        pinned: String,
    },
}

impl ErrorCode for ConnectError {
    fn code(&self) -> &'static str {
        match self {
            ConnectError::Endpoint(_) => "DRIVER_ENDPOINT_INVALID",
            ConnectError::Tls { .. } => "DRIVER_TLS_CONFIG",
            ConnectError::Connect { .. } => "DRIVER_UNREACHABLE",
            ConnectError::NotPinned { .. } => "DRIVER_CERTIFICATE_NOT_PINNED",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            ConnectError::Endpoint(e) => format!("驱动地址 {e:?} 无效。"),
            ConnectError::Tls { provider, reason } => {
                format!("无法建立到云服务商 {provider} 驱动的 TLS 配置：{reason}")
            }
            ConnectError::Connect {
                provider, endpoint, ..
            } => format!("无法连接云服务商 {provider} 位于 {endpoint} 的驱动。"),
            ConnectError::NotPinned {
                provider,
                endpoint,
                presented,
                pinned,
            } => format!(
                "云服务商 {provider} 位于 {endpoint} 的驱动出示的证书（SHA-256 {presented}）\
                 不是注册表登记的证书（SHA-256 {pinned}），已拒绝连接。"
            ),
        }
    }
}

/// The certificates a dial accepts: the registry record as last read.
/// Shared with the channel's verifier, so a channel that reconnects after a
/// renewal checks the record read since, not the one it was dialled with.
pub type Pins = Arc<RwLock<DriverRecord>>;

/// Dials the driver `record` names, pinned to its registered certificate.
pub async fn connect(
    pki: &DriverPki,
    record: &DriverRecord,
) -> Result<DriverClient<Channel>, ConnectError> {
    connect_pinned(pki, Arc::new(RwLock::new(record.clone()))).await
}

/// Dials with `pins`, which the caller may update later (a renewal).
pub async fn connect_pinned(
    pki: &DriverPki,
    pins: Pins,
) -> Result<DriverClient<Channel>, ConnectError> {
    let (provider, endpoint) = {
        let r = pins.read().unwrap_or_else(|e| e.into_inner());
        (r.provider.clone(), r.endpoint.clone())
    };
    let tls_error = |reason: String| ConnectError::Tls {
        provider: provider.clone(),
        reason,
    };
    let verifier = Arc::new(PinnedVerifier::new(pki, pins.clone()).map_err(tls_error)?);
    let tls = ClientTlsConfig::new()
        .identity(Identity::from_pem(
            &pki.identity.cert_pem,
            &pki.identity.key_pem,
        ))
        .domain_name(yunshu_pki::driver_dns_name(&provider));
    let channel = Endpoint::from_shared(format!("https://{endpoint}"))
        .map_err(|_| ConnectError::Endpoint(endpoint.clone()))?
        .tls_config_with_verifier(tls, verifier.clone())
        .map_err(|_| ConnectError::Endpoint(endpoint.clone()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|source| {
            match verifier
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                Some(presented) => ConnectError::NotPinned {
                    provider: provider.clone(),
                    endpoint: endpoint.clone(),
                    presented,
                    pinned: pins
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .fingerprint
                        .clone(),
                },
                None => ConnectError::Connect {
                    provider: provider.clone(),
                    endpoint: endpoint.clone(),
                    source,
                },
            }
        })?;
    Ok(DriverClient::new(channel))
}

/// The CA's verification (chain, validity, the provider's DNS name, server
/// EKU), then the pin.
#[derive(Debug)]
struct PinnedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pins: Pins,
    /// The fingerprint of the last certificate refused for its pin.
    refused: Mutex<Option<String>>,
}

impl PinnedVerifier {
    fn new(pki: &DriverPki, pins: Pins) -> Result<Self, String> {
        let ca = yunshu_pki::certificate_der(pki.ca.cert_pem()).map_err(|e| e.to_string())?;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca))
            .map_err(|e| format!("the driver CA certificate is unusable: {e}"))?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PinnedVerifier {
            webpki,
            pins,
            refused: Mutex::new(None),
        })
    }
}

/// The refusal inside the TLS error, for reconnects of a live channel (their
/// failures surface as call errors, not as a `ConnectError`).
#[derive(Debug, thiserror::Error)]
#[error("certificate sha256 {presented} is not the registered sha256 {pinned}")]
struct NotPinned {
    presented: String,
    pinned: String,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let presented = yunshu_pki::fingerprint_der(end_entity.as_ref());
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let pins = self.pins.read().unwrap_or_else(|e| e.into_inner());
        if pins.pins(&presented, now_unix) {
            return Ok(verified);
        }
        let pinned = pins.fingerprint.clone();
        drop(pins);
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented.clone());
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(NotPinned { presented, pinned })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use chrono::Utc;
    use yunshu_drivers::registry::Health;
    use yunshu_pki::{CertificateAuthority, IssuedCertificate};
    use yunshu_proto::tonic::service::Routes;
    use yunshu_proto::tonic::transport::{Certificate, Server, ServerTlsConfig};

    use super::*;

    fn pki() -> DriverPki {
        let ca = CertificateAuthority::generate().expect("ca");
        let identity = ca
            .issue_controller(Duration::from_secs(3600))
            .expect("controller certificate");
        DriverPki {
            ca,
            identity,
            driver_cert_ttl: Duration::from_secs(3600),
        }
    }

    /// A certificate the CA issues for `provider`, with its key.
    fn driver_certificate(pki: &DriverPki, provider: &str) -> (IssuedCertificate, String) {
        let (csr, key) = yunshu_pki::driver_csr(provider).expect("csr");
        let issued = pki
            .ca
            .sign_driver(
                &csr,
                provider,
                &["127.0.0.1".into()],
                Duration::from_secs(3600),
            )
            .expect("sign");
        (issued, key)
    }

    /// A gRPC server speaking mTLS with `cert` (no services: dialling is all
    /// these tests do); its address.
    async fn serve(pki: &DriverPki, cert: &IssuedCertificate, key: &str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&cert.cert_pem, key))
            .client_ca_root(Certificate::from_pem(pki.ca.cert_pem()));
        let incoming = futures::stream::unfold(listener, |l| async move {
            Some((l.accept().await.map(|(s, _)| s), l))
        });
        // tonic's server TLS asks rustls for the process's provider; in a
        // workspace test build rustls has both ring and aws-lc-rs (the
        // OpenStack SDK's reqwest brings the latter), so none is implied.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut server = Server::builder().tls_config(tls).expect("server tls");
        let router = server.add_routes(Routes::default());
        tokio::spawn(router.serve_with_incoming(incoming));
        addr
    }

    fn record(provider: &str, addr: SocketAddr, fingerprint: &str) -> DriverRecord {
        DriverRecord {
            provider: provider.into(),
            endpoint: addr.to_string(),
            fingerprint: fingerprint.into(),
            previous_fingerprint: None,
            previous_until_unix: None,
            not_after_unix: 0,
            renewal_token_sha256: String::new(),
            registered_at: Utc::now(),
            renewed_at: None,
            last_seen: None,
            health: Health::Unknown,
            driver_name: None,
            driver_version: None,
            simulator: None,
        }
    }

    #[tokio::test]
    async fn a_certificate_of_the_same_ca_and_provider_but_not_the_registered_one_is_refused() {
        let pki = pki();
        let (registered, _) = driver_certificate(&pki, "sim");
        // Issued by the same CA for the same provider — say the one a renewal
        // replaced, whose key leaked — but not the one the registry pins.
        let (other, other_key) = driver_certificate(&pki, "sim");
        let addr = serve(&pki, &other, &other_key).await;
        let refused = connect(&pki, &record("sim", addr, &registered.fingerprint)).await;
        match refused {
            Err(ConnectError::NotPinned {
                presented, pinned, ..
            }) => {
                assert_eq!(presented, other.fingerprint);
                assert_eq!(pinned, registered.fingerprint);
            }
            Err(e) => panic!(
                "refused for another reason: {}",
                yunshu_domain::error::chain(&e)
            ),
            Ok(_) => panic!("an unregistered certificate was accepted"),
        }
        let Err(e) = connect(&pki, &record("sim", addr, &registered.fingerprint)).await else {
            panic!("an unregistered certificate was accepted");
        };
        assert_eq!(e.code(), "DRIVER_CERTIFICATE_NOT_PINNED");
        assert!(e.to_string().contains(&other.fingerprint) && e.message_zh().contains("已拒绝"));

        // The registered certificate passes, and so does the CA check: the
        // pin adds to it, never replaces it.
        assert!(
            connect(&pki, &record("sim", addr, &other.fingerprint))
                .await
                .is_ok(),
            "the pinned certificate is accepted"
        );
        let stranger = self::pki();
        let (foreign, foreign_key) = driver_certificate(&stranger, "sim");
        let foreign_addr = serve(&stranger, &foreign, &foreign_key).await;
        assert!(matches!(
            connect(&pki, &record("sim", foreign_addr, &foreign.fingerprint)).await,
            Err(ConnectError::Connect { .. })
        ));
    }

    #[tokio::test]
    async fn a_driver_presenting_an_unregistered_certificate_shows_why_in_its_health() {
        use yunshu_store::{RedbStore, Store, Txn, records};
        let pki = pki();
        let (registered, _) = driver_certificate(&pki, "sim");
        let (other, other_key) = driver_certificate(&pki, "sim");
        let addr = serve(&pki, &other, &other_key).await;
        let store = RedbStore::in_memory().expect("store");
        let r = record("sim", addr, &registered.fingerprint);
        store
            .txn(Txn::new().put(records::key::<DriverRecord>("sim"), records::encode(&r)))
            .await
            .expect("register");
        assert!(!crate::health::check_all(&store, &pki).await);
        let (after, _) = records::get::<DriverRecord>(&store, "sim")
            .await
            .expect("read")
            .expect("record");
        match after.health {
            Health::Unreachable(reason) => assert!(
                reason.contains("not the one the registry pins")
                    && reason.contains(&other.fingerprint)
                    && reason.contains(&registered.fingerprint),
                "{reason}"
            ),
            h => panic!("health {h:?}"),
        }
    }

    #[tokio::test]
    async fn a_renewed_drivers_previous_certificate_is_accepted_only_within_the_grace() {
        let pki = pki();
        let (old, old_key) = driver_certificate(&pki, "sim");
        let (new, _) = driver_certificate(&pki, "sim");
        // The driver still serves the old certificate: the renewal's answer has
        // not reached it yet.
        let addr = serve(&pki, &old, &old_key).await;
        let now = Utc::now().timestamp();
        let mut r = record("sim", addr, &old.fingerprint);
        r.renewed(new.fingerprint.clone(), now);
        assert!(connect(&pki, &r).await.is_ok(), "within the grace");
        r.previous_until_unix = Some(now - 1);
        assert!(matches!(
            connect(&pki, &r).await,
            Err(ConnectError::NotPinned { .. })
        ));
        r.renewed(new.fingerprint.clone(), now);
        assert_eq!(
            r.previous_until_unix,
            Some(now - 1),
            "the same fingerprint again opens no new grace"
        );
    }
}
