//! Audit entries: the append-only log of every change and every permission change
//! (SPEC §8; 003 §3.2.2.15).
//!
//! Owns the entry shape and [`AuditEntry::canonical_bytes`], the exact bytes the
//! hash chain covers. Computing hashes (so this crate needs no hash dependency),
//! appending and verifying the chain are the store's.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{error::ErrorCode, ids::Actor, record::Record, text::Text};

/// Why an audit value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditError {
    #[error("hash {value:?} must be 64 lower-case hex digits")]
    HashInvalid { value: String },
    #[error(
        "audit action {value:?} must be lower-case words joined by '.' or '_', e.g. order.approve"
    )]
    ActionInvalid { value: String },
}

impl ErrorCode for AuditError {
    fn code(&self) -> &'static str {
        match self {
            AuditError::HashInvalid { .. } => "AUDIT_HASH_INVALID",
            AuditError::ActionInvalid { .. } => "AUDIT_ACTION_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            AuditError::HashInvalid { value } => {
                format!("哈希值“{value}”无效：应为 64 位小写十六进制")
            }
            AuditError::ActionInvalid { value } => format!("审计操作名“{value}”无效"),
        }
    }
}

/// A SHA-256 digest as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HexDigest(String);

impl HexDigest {
    pub const LEN: usize = 64;

    pub fn new(value: impl Into<String>) -> Result<Self, AuditError> {
        let value = value.into();
        let ok = value.len() == Self::LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(HexDigest(value))
        } else {
            Err(AuditError::HashInvalid { value })
        }
    }

    /// The `prev_hash` of the first entry.
    pub fn zero() -> Self {
        HexDigest("0".repeat(Self::LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HexDigest {
    type Error = AuditError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        HexDigest::new(value)
    }
}

impl From<HexDigest> for String {
    fn from(value: HexDigest) -> String {
        value.0
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was done, as `noun.verb` (noun first so a grep finds a resource's whole
/// life, STYLE.md "Naming"), e.g. `order.approve`, `role_binding.grant`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AuditAction(String);

impl AuditAction {
    /// 1–64 characters of `a-z`, `_` and `.`, not starting or ending with `.`.
    pub fn new(value: impl Into<String>) -> Result<Self, AuditError> {
        let value = value.into();
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
            && !value.starts_with('.')
            && !value.ends_with('.')
            && !value.contains("..");
        if ok {
            Ok(AuditAction(value))
        } else {
            Err(AuditError::ActionInvalid { value })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AuditAction {
    type Error = AuditError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AuditAction::new(value)
    }
}

impl From<AuditAction> for String {
    fn from(value: AuditAction) -> String {
        value.0
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of the audit log. `hash` = H(`canonical_bytes()`), and `prev_hash` is
/// the previous entry's `hash` ([`HexDigest::zero`] for seq 0), so removing or
/// editing an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: AuditAction,
    /// The object acted on, as `kind/id`, e.g. `work_order/WO-1`.
    pub target: Text,
    /// Free detail (often JSON written by the caller), if any.
    #[serde(default)]
    pub detail: Option<Text>,
    pub prev_hash: HexDigest,
    pub hash: HexDigest,
}

impl AuditEntry {
    /// Version tag that starts the canonical bytes; bump it if the layout changes.
    pub const CANONICAL_TAG: &'static str = "yunshu-audit-v1";

    /// The exact bytes the hash covers: every field except `hash`, in a fixed
    /// order, each written as `<byte length>:<bytes>\n` so that no field value can
    /// imitate a boundary. Time is RFC 3339 UTC with nanoseconds and `Z`. An absent
    /// detail is written as length 0 (a present `Text` is never empty).
    /// Deterministic: independent of serde, platform and map ordering.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(Self::CANONICAL_TAG.as_bytes());
        out.push(b'\n');
        let at = self.at.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let fields: [&str; 7] = [
            &self.seq.to_string(),
            &at,
            &self.actor.to_string(),
            self.action.as_str(),
            self.target.as_str(),
            self.detail.as_ref().map_or("", Text::as_str),
            self.prev_hash.as_str(),
        ];
        for field in fields {
            out.extend_from_slice(field.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(field.as_bytes());
            out.push(b'\n');
        }
        out
    }
}

impl Record for AuditEntry {
    const KIND: &'static str = "audit_entry";
    const SCHEMA_VERSION: u32 = 1;
    /// Zero-padded so that keys sort in sequence order.
    fn id(&self) -> String {
        format!("{:020}", self.seq)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            seq: 7,
            at: Utc
                .with_ymd_and_hms(2026, 6, 1, 8, 30, 0)
                .single()
                .expect("date"),
            actor: "user:approver1".parse().expect("actor"),
            action: AuditAction::new("order.approve").expect("action"),
            target: Text::new("work_order/WO-1").expect("text"),
            detail: Some(Text::new("核定 2 台").expect("text")),
            prev_hash: HexDigest::zero(),
            hash: HexDigest::new("ab".repeat(32)).expect("hash"),
        }
    }

    #[test]
    fn canonical_bytes_exact() {
        let expected = format!(
            "yunshu-audit-v1\n1:7\n30:2026-06-01T08:30:00.000000000Z\n14:user:approver1\n13:order.approve\n15:work_order/WO-1\n{}:核定 2 台\n64:{}\n",
            "核定 2 台".len(),
            "0".repeat(64)
        );
        assert_eq!(
            String::from_utf8(entry().canonical_bytes()).expect("utf8"),
            expected
        );
    }

    #[test]
    fn canonical_bytes_cover_every_field_but_hash() {
        let base = entry().canonical_bytes();
        let mut e = entry();
        e.hash = HexDigest::new("cd".repeat(32)).expect("hash");
        assert_eq!(e.canonical_bytes(), base, "hash is not covered");
        let variants: [fn(&mut AuditEntry); 7] = [
            |e| e.seq = 8,
            |e| e.at += chrono::Duration::nanoseconds(1),
            |e| e.actor = "system:reconciler".parse().expect("actor"),
            |e| e.action = AuditAction::new("order.reject").expect("action"),
            |e| e.target = Text::new("work_order/WO-2").expect("text"),
            |e| e.detail = None,
            |e| e.prev_hash = HexDigest::new("1".repeat(64)).expect("hash"),
        ];
        for change in variants {
            let mut e = entry();
            change(&mut e);
            assert_ne!(e.canonical_bytes(), base);
        }
    }

    #[test]
    fn validation_and_round_trip() {
        assert!(HexDigest::new("AB".repeat(32)).is_err());
        assert!(HexDigest::new("ab".repeat(31)).is_err());
        for bad in ["", "Order.approve", ".x", "x.", "a..b", "a b"] {
            assert!(AuditAction::new(bad).is_err(), "{bad}");
        }
        let e = entry();
        assert_eq!(e.id(), "00000000000000000007");
        let json = serde_json::to_string(&e).expect("ser");
        assert_eq!(serde_json::from_str::<AuditEntry>(&json).expect("de"), e);
        assert!(serde_json::from_str::<AuditEntry>(&json.replace("abab", "ABAB")).is_err());
    }
}
