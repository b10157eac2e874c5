//! The driver registry: which driver serves which provider, where, with which
//! certificate, and how it is doing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::Record;

/// One registered driver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DriverRecord {
    pub provider: String,
    /// `host:port` of its gRPC server.
    pub endpoint: String,
    /// SHA-256 of its current certificate (`yunshu_pki::fingerprint`): the
    /// controller dials only a driver presenting this certificate.
    pub fingerprint: String,
    /// The certificate a renewal replaced, still accepted until
    /// `previous_until_unix` ([`PREVIOUS_CERTIFICATE_GRACE_SECONDS`] after the
    /// renewal): the driver swaps certificates only when the renewal's answer
    /// reaches it, after the registry already holds the new one.
    #[serde(default)]
    pub previous_fingerprint: Option<String>,
    #[serde(default)]
    pub previous_until_unix: Option<i64>,
    pub not_after_unix: i64,
    /// Hash of the one-time secret its next renewal must present.
    pub renewal_token_sha256: String,
    pub registered_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub health: Health,
    /// What the driver says about itself (name, version, simulator or not).
    pub driver_name: Option<String>,
    pub driver_version: Option<String>,
    pub simulator: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Health {
    /// Registered; not yet checked.
    Unknown,
    Healthy,
    Unreachable(String),
}

/// How long a renewed driver's previous certificate is still accepted when
/// dialled: long enough for the renewal's answer to reach the driver and the
/// driver to swap (the SDK swaps as soon as it reads the answer), short enough
/// that a certificate whose key leaked is not usable for long after a renewal.
pub const PREVIOUS_CERTIFICATE_GRACE_SECONDS: i64 = 300;

impl DriverRecord {
    /// Whether a driver presenting a certificate with this SHA-256 is the
    /// registered one at `now_unix`: its current certificate, or the one it
    /// renewed within the grace.
    pub fn pins(&self, fingerprint: &str, now_unix: i64) -> bool {
        fingerprint == self.fingerprint
            || matches!(
                (&self.previous_fingerprint, self.previous_until_unix),
                (Some(previous), Some(until)) if fingerprint == previous && now_unix < until
            )
    }

    /// Records a renewal: `fingerprint` becomes current, the one it replaces
    /// stays accepted for the grace.
    pub fn renewed(&mut self, fingerprint: String, now_unix: i64) {
        let previous = std::mem::replace(&mut self.fingerprint, fingerprint);
        if previous != self.fingerprint {
            self.previous_fingerprint = Some(previous);
            self.previous_until_unix = Some(now_unix + PREVIOUS_CERTIFICATE_GRACE_SECONDS);
        }
    }
}

impl Record for DriverRecord {
    const KIND: &'static str = "driver";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.provider.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DriverRecord {
        DriverRecord {
            provider: "sim".into(),
            endpoint: "127.0.0.1:1".into(),
            fingerprint: "aa".into(),
            previous_fingerprint: None,
            previous_until_unix: None,
            not_after_unix: 0,
            renewal_token_sha256: String::new(),
            registered_at: DateTime::UNIX_EPOCH,
            renewed_at: None,
            last_seen: None,
            health: Health::Unknown,
            driver_name: None,
            driver_version: None,
            simulator: None,
        }
    }

    #[test]
    fn a_renewed_certificate_is_pinned_and_the_previous_one_only_for_the_grace() {
        let mut r = record();
        assert!(r.pins("aa", 1_000));
        assert!(!r.pins("bb", 1_000));
        r.renewed("bb".into(), 1_000);
        assert!(r.pins("bb", 1_000));
        assert!(r.pins("aa", 1_000 + PREVIOUS_CERTIFICATE_GRACE_SECONDS - 1));
        assert!(!r.pins("aa", 1_000 + PREVIOUS_CERTIFICATE_GRACE_SECONDS));
        // A second renewal forgets the first certificate at once.
        r.renewed("cc".into(), 1_010);
        assert!(!r.pins("aa", 1_010));
        assert!(r.pins("bb", 1_010));
        // An old record (no previous fields) reads back.
        let old = r#"{"provider":"sim","endpoint":"e:1","fingerprint":"aa","not_after_unix":0,
            "renewal_token_sha256":"","registered_at":"2026-01-01T00:00:00Z","renewed_at":null,
            "last_seen":null,"health":{"state":"unknown"},"driver_name":null,
            "driver_version":null,"simulator":null}"#;
        let r: DriverRecord = serde_json::from_str(old).expect("old record");
        assert!(r.pins("aa", 0) && r.previous_fingerprint.is_none());
    }
}
