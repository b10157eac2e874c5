//! The controller's certificate authority for driver mutual TLS (SPEC §5).
//!
//! - The controller holds one CA ([`CertificateAuthority`]); its key lives in the
//!   store.
//! - A driver generates its own key and a CSR ([`driver_csr`]); the controller signs
//!   it for the provider the bootstrap token names ([`CertificateAuthority::sign_driver`]),
//!   whatever names the CSR asks for. Driver certificates are **server-only**
//!   (EKU serverAuth), so a driver cannot use its certificate to call another driver.
//! - Controller replicas get **client-only** certificates (EKU clientAuth,
//!   [`CertificateAuthority::issue_controller`]); drivers accept only those.
//!
//! - Secrets kept in the store (the CA key) are sealed with a master key from
//!   outside it ([`envelope`]).
//!
//! No I/O here: callers store and load PEM.

pub mod envelope;

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The common name of controller client certificates; drivers accept no other.
pub const CONTROLLER_CN: &str = "yunshu-controller";
/// The common name of the API server certificate `issue_api_server` makes.
pub const API_CN: &str = "yunshu-api";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot generate a key pair")]
    KeyGen(#[source] rcgen::Error),
    #[error("cannot build the certificate")]
    Build(#[source] rcgen::Error),
    #[error("the CA certificate or key is not valid PEM")]
    LoadCa(#[source] rcgen::Error),
    #[error("the certificate signing request is invalid or its signature does not verify")]
    BadCsr(#[source] rcgen::Error),
    #[error("not a PEM certificate")]
    BadCertificate,
    #[error("provider name {0:?} is not a valid DNS label (lowercase letters, digits, '-')")]
    BadProviderName(String),
    #[error(
        "{0:?} cannot name the API's certificate: give host names (no wildcard, not *.driver.yunshu.internal) or IP addresses"
    )]
    BadApiName(String),
}

/// The DNS name a driver's certificate carries and the controller verifies.
pub fn driver_dns_name(provider: &str) -> String {
    format!("{provider}.driver.yunshu.internal")
}

/// Provider names become DNS labels in certificates: `[a-z0-9-]{1,63}`, no leading
/// or trailing `-`.
pub fn check_provider_name(provider: &str) -> Result<(), PkiError> {
    let ok = !provider.is_empty()
        && provider.len() <= 63
        && !provider.starts_with('-')
        && !provider.ends_with('-')
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadProviderName(provider.to_owned()))
    }
}

/// An RFC 1123 host name: dot-separated labels of letters, digits and `-`
/// (no wildcard, no empty label), at most 253 characters.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Names the API's certificate may carry: at least one; each an IP address or
/// a host name that is no wildcard and no driver's name.
pub fn check_api_names(names: &[String]) -> Result<(), PkiError> {
    if names.is_empty() {
        return Err(PkiError::BadApiName(String::new()));
    }
    for name in names {
        if name.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if !is_host_name(&lower) || lower.ends_with(".driver.yunshu.internal") {
            return Err(PkiError::BadApiName(name.clone()));
        }
    }
    Ok(())
}

/// SHA-256 of a PEM certificate's DER, lowercase hex.
pub fn fingerprint(cert_pem: &str) -> Result<String, PkiError> {
    Ok(fingerprint_der(&certificate_der(cert_pem)?))
}

/// SHA-256 of a DER certificate, lowercase hex: what [`fingerprint`] gives for
/// its PEM, and what the registry pins (a TLS handshake sees DER).
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The DER inside a PEM certificate.
pub fn certificate_der(cert_pem: &str) -> Result<Vec<u8>, PkiError> {
    let der = pem::parse(cert_pem).map_err(|_| PkiError::BadCertificate)?;
    if der.tag() != "CERTIFICATE" {
        return Err(PkiError::BadCertificate);
    }
    Ok(der.into_contents())
}

/// When a PEM certificate expires, in seconds since the Unix epoch.
pub fn not_after_unix(cert_pem: &str) -> Result<i64, PkiError> {
    let der = pem::parse(cert_pem).map_err(|_| PkiError::BadCertificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.contents())
        .map_err(|_| PkiError::BadCertificate)?;
    Ok(cert.validity().not_after.timestamp())
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = OffsetDateTime::now_utc();
    // Back-dated a minute: clocks of controller and driver hosts are never equal.
    params.not_before = now - time::Duration::minutes(1);
    params.not_after =
        now + time::Duration::seconds(lifetime.as_secs().min(i64::MAX as u64) as i64);
    params.serial_number = Some(random_serial());
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct KeyedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A signed driver certificate.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub fingerprint: String,
    pub not_after_unix: i64,
}

/// The CA.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// A new CA valid for ten years.
    pub fn generate() -> Result<Self, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::KeyGen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "yunshu driver CA");
        dn.push(DnType::OrganizationName, "yunshu 云枢");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, Duration::from_secs(10 * 365 * 24 * 3600));
        let cert = params.self_signed(&key).map_err(PkiError::Build)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// The CA as stored.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(PkiError::LoadCa)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(PkiError::LoadCa)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// What a bootstrap token pins: SHA-256 of the CA certificate.
    pub fn fingerprint(&self) -> Result<String, PkiError> {
        fingerprint(&self.cert_pem)
    }

    /// Signs a driver's CSR for `provider`. The CSR proves possession of the key; its
    /// requested names are ignored: the certificate names the provider the token was
    /// issued for, plus `extra_names` (the driver's endpoint host).
    pub fn sign_driver(
        &self,
        csr_pem: &str,
        provider: &str,
        extra_names: &[String],
        lifetime: Duration,
    ) -> Result<IssuedCertificate, PkiError> {
        check_provider_name(provider)?;
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::BadCsr)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, provider);
        dn.push(DnType::OrganizationalUnitName, "yunshu driver");
        params.distinguished_name = dn;
        let mut sans = vec![SanType::DnsName(
            driver_dns_name(provider)
                .try_into()
                .map_err(PkiError::Build)?,
        )];
        for name in extra_names {
            if let Ok(ip) = name.parse::<std::net::IpAddr>() {
                sans.push(SanType::IpAddress(ip));
            } else if let Ok(dns) = name.clone().try_into() {
                sans.push(SanType::DnsName(dns));
            }
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, lifetime);
        csr.params = params;
        let cert = csr.signed_by(&self.issuer).map_err(PkiError::Build)?;
        let cert_pem = cert.pem();
        Ok(IssuedCertificate {
            fingerprint: fingerprint(&cert_pem)?,
            not_after_unix: not_after_unix(&cert_pem)?,
            cert_pem,
        })
    }

    /// A client certificate for a controller replica.
    pub fn issue_controller(&self, lifetime: Duration) -> Result<KeyedCertificate, PkiError> {
        let key = KeyPair::generate().map_err(PkiError::KeyGen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CONTROLLER_CN);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign_with_new_key(params, key, lifetime)
    }

    /// Signs `params` for `key` with this CA, valid for `lifetime`.
    fn sign_with_new_key(
        &self,
        mut params: CertificateParams,
        key: KeyPair,
        lifetime: Duration,
    ) -> Result<KeyedCertificate, PkiError> {
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, lifetime);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Build)?;
        Ok(KeyedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for the controller's own HTTPS API (`yunshu serve
    /// --tls-from-ca`), for `names` (DNS names or IP addresses). Drivers pin
    /// this CA through their bootstrap token, so they can verify the API
    /// without any other trust anchor. ServerAuth only, and never a driver's
    /// name: it must not pass for a driver nor act as the controller's client.
    pub fn issue_api_server(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<KeyedCertificate, PkiError> {
        check_api_names(names)?;
        let key = KeyPair::generate().map_err(PkiError::KeyGen)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, API_CN);
        dn.push(DnType::OrganizationName, "yunshu 云枢");
        params.distinguished_name = dn;
        let mut sans = Vec::with_capacity(names.len());
        for name in names {
            sans.push(match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.to_ascii_lowercase()
                        .try_into()
                        .map_err(|_| PkiError::BadApiName(name.clone()))?,
                ),
            });
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_with_new_key(params, key, lifetime)
    }
}

/// A new driver key and a CSR for `provider`.
pub fn driver_csr(provider: &str) -> Result<(String, String), PkiError> {
    check_provider_name(provider)?;
    let key = KeyPair::generate().map_err(PkiError::KeyGen)?;
    let mut params =
        CertificateParams::new(vec![driver_dns_name(provider)]).map_err(PkiError::Build)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, provider);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).map_err(PkiError::Build)?;
    let csr_pem = csr.pem().map_err(PkiError::Build)?;
    Ok((csr_pem, key.serialize_pem()))
}

/// SHA-256 of `data`, lowercase hex: how secrets (tokens) are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only, not on where they first differ (secrets echoed by clients).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// `n` random bytes, lowercase hex.
pub fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security issue item 16 (low): the CSRF token is compared in constant time.
    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn ca_signs_a_driver_csr_for_the_named_provider_only() {
        let ca = CertificateAuthority::generate().expect("ca");
        let reloaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).expect("reload");
        let (csr, _key) = driver_csr("evil").expect("csr");
        let issued = reloaded
            .sign_driver(
                &csr,
                "sim",
                &["127.0.0.1".into()],
                Duration::from_secs(3600),
            )
            .expect("sign");
        let der = pem::parse(&issued.cert_pem).expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(der.contents()).expect("x509");
        let cn = cert.subject().iter_common_name().next().expect("cn");
        assert_eq!(
            cn.as_str().expect("utf8"),
            "sim",
            "the CSR's name is ignored"
        );
        assert_eq!(issued.fingerprint.len(), 64);
        assert!(issued.not_after_unix > 0);
    }

    /// Security issue item 5: the API's certificate from the controller CA
    /// names what it is told, serves only as a server, and never a driver's
    /// name nor a wildcard.
    #[test]
    fn api_server_certificates_name_hosts_and_never_a_driver() {
        let ca = CertificateAuthority::generate().expect("ca");
        let issued = ca
            .issue_api_server(
                &["yunshu.example.gov.cn".into(), "127.0.0.1".into()],
                Duration::from_secs(3600),
            )
            .expect("issue");
        let der = pem::parse(&issued.cert_pem).expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(der.contents()).expect("x509");
        let eku = cert
            .extended_key_usage()
            .expect("eku")
            .expect("present")
            .value;
        assert!(eku.server_auth && !eku.client_auth);
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name()
                .expect("san")
                .expect("present")
                .value
        );
        assert!(
            sans.contains("yunshu.example.gov.cn") && sans.contains("127"),
            "{sans}"
        );
        for bad in ["*.example.gov.cn", "sim.driver.yunshu.internal", "bad name"] {
            assert!(
                ca.issue_api_server(&[bad.into()], Duration::from_secs(60))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(ca.issue_api_server(&[], Duration::from_secs(60)).is_err());
    }

    #[test]
    fn garbage_csr_and_bad_provider_are_refused() {
        let ca = CertificateAuthority::generate().expect("ca");
        assert!(matches!(
            ca.sign_driver("not a csr", "sim", &[], Duration::from_secs(60)),
            Err(PkiError::BadCsr(_))
        ));
        assert!(matches!(
            driver_csr("Bad_Name"),
            Err(PkiError::BadProviderName(_))
        ));
    }
}
