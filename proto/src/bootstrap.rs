//! Driver bootstrap and renewal: the small HTTP/JSON contract on the controller's
//! API, shared by the controller and the driver SDK so neither can drift.
//!
//! 1. An operator runs `yunshu driver-token create --provider NAME --ttl 1h` and gets
//!    a one-time token `ysdt1.<id>.<secret>.<ca-sha256>`.
//! 2. The driver fetches `GET /api/v1/drivers/ca` and checks the CA certificate's
//!    SHA-256 against the token (so a man in the middle cannot hand it another CA).
//! 3. It generates its key and posts a CSR to `POST /api/v1/drivers/register` with
//!    the token; the controller signs a certificate for the token's provider and
//!    returns it with a renewal token.
//! 4. Before the certificate expires the driver posts a new CSR to
//!    `POST /api/v1/drivers/renew` with the renewal token (one-time; each renewal
//!    returns the next one).

use serde::{Deserialize, Serialize};

pub const CA_PATH: &str = "/api/v1/drivers/ca";
pub const REGISTER_PATH: &str = "/api/v1/drivers/register";
pub const RENEW_PATH: &str = "/api/v1/drivers/renew";

const TOKEN_PREFIX: &str = "ysdt1";

/// A parsed bootstrap token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// Public id: names the token in the store and in audit logs.
    pub id: String,
    /// The secret half; only its hash is stored.
    pub secret: String,
    /// SHA-256 (hex) of the controller CA certificate the driver must trust.
    pub ca_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormatError;

impl std::fmt::Display for TokenFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not a yunshu driver token (expected ysdt1.<id>.<secret>.<ca-sha256>)"
        )
    }
}

impl std::error::Error for TokenFormatError {}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl BootstrapToken {
    pub fn parse(token: &str) -> Result<Self, TokenFormatError> {
        let mut parts = token.trim().split('.');
        let (Some(TOKEN_PREFIX), Some(id), Some(secret), Some(ca), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenFormatError);
        };
        if !is_hex(id, 16) || !is_hex(secret, 64) || !is_hex(ca, 64) {
            return Err(TokenFormatError);
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            ca_fingerprint: ca.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}.{}.{}.{}",
            self.id, self.secret, self.ca_fingerprint
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaResponse {
    pub ca_pem: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The whole token string.
    pub token: String,
    /// The provider the driver claims to serve: must be the token's.
    pub provider: String,
    /// `host:port` where the controller reaches the driver's gRPC server.
    pub endpoint: String,
    pub csr_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RenewRequest {
    pub provider: String,
    pub renewal_token: String,
    pub csr_pem: String,
    /// The endpoint may move with a restart; the registry follows it.
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateResponse {
    pub certificate_pem: String,
    pub ca_pem: String,
    /// One-time secret for the next renewal.
    pub renewal_token: String,
    pub not_after_unix: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_refuses_garbage() {
        let t = BootstrapToken {
            id: "0123456789abcdef".into(),
            secret: "a".repeat(64),
            ca_fingerprint: "b".repeat(64),
        };
        assert_eq!(BootstrapToken::parse(&t.to_string()), Ok(t));
        for bad in [
            "",
            "ysdt1.x.y.z",
            "ysdt2.0123456789abcdef.aa.bb",
            "ysdt1....",
        ] {
            assert!(BootstrapToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_serialise_as_documented() {
        let r = RenewRequest {
            provider: "sim".into(),
            renewal_token: "t".into(),
            csr_pem: "c".into(),
            endpoint: "127.0.0.1:1".into(),
        };
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["provider"], "sim");
    }
}
