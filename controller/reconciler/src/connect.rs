//! Dialling a driver with mutual TLS: the controller presents its replica
//! certificate and accepts only the certificate the CA issued for that provider.

use std::time::Duration;

use yunshu_drivers::DriverPki;
use yunshu_proto::tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use yunshu_proto::v1::driver_client::DriverClient;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad driver endpoint {0:?}")]
    Endpoint(String),
    #[error("cannot connect to the driver of {provider} at {endpoint}")]
    Connect {
        provider: String,
        endpoint: String,
        #[source]
        source: yunshu_proto::tonic::transport::Error,
    },
}

pub async fn connect(
    pki: &DriverPki,
    provider: &str,
    endpoint: &str,
) -> Result<DriverClient<Channel>, ConnectError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.ca.cert_pem()))
        .identity(Identity::from_pem(
            &pki.identity.cert_pem,
            &pki.identity.key_pem,
        ))
        .domain_name(yunshu_pki::driver_dns_name(provider));
    let channel = Endpoint::from_shared(format!("https://{endpoint}"))
        .map_err(|_| ConnectError::Endpoint(endpoint.to_owned()))?
        .tls_config(tls)
        .map_err(|_| ConnectError::Endpoint(endpoint.to_owned()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            provider: provider.to_owned(),
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(DriverClient::new(channel))
}
