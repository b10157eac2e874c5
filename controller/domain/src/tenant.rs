//! Tenants (使用单位): government departments that apply for cloud resources, and
//! their numeric [`TenantCode`].
//!
//! Owns the code format. A tenant code is the prefix of every information-system
//! number (003 §2.2.5 (6)), so it is digits only and of bounded length; the
//! supervision export carries it as `使用单位编号` (003 §2.2.5 (6), an1..50).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{error::ErrorCode, ids::OrgUnitId, record::Record, text::Name};

/// Why a tenant value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TenantError {
    #[error("tenant code {value:?} must be 3 to 12 ASCII digits")]
    CodeInvalid { value: String },
}

impl ErrorCode for TenantError {
    fn code(&self) -> &'static str {
        match self {
            TenantError::CodeInvalid { .. } => "TENANT_CODE_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            TenantError::CodeInvalid { value } => {
                format!("使用单位编号“{value}”无效：应为 3–12 位数字")
            }
        }
    }
}

/// A tenant's numeric code (使用单位编号), e.g. `110105`. Leading zeros are kept:
/// this is a string of digits, not a number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantCode(String);

impl TenantCode {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 12;

    /// Accepts 3–12 ASCII digits; anything else is `TENANT_CODE_INVALID`.
    pub fn new(value: impl Into<String>) -> Result<Self, TenantError> {
        let value = value.into();
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(TenantCode(value))
        } else {
            Err(TenantError::CodeInvalid { value })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantCode {
    type Error = TenantError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TenantCode::new(value)
    }
}

impl TryFrom<&str> for TenantCode {
    type Error = TenantError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        TenantCode::new(value)
    }
}

impl std::str::FromStr for TenantCode {
    type Err = TenantError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        TenantCode::new(value)
    }
}

impl From<TenantCode> for String {
    fn from(value: TenantCode) -> String {
        value.0
    }
}

impl AsRef<str> for TenantCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tenant (使用单位): a government department using the cloud.
///
/// Every field is a validated type, so any value of this struct is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub code: TenantCode,
    /// Full name of the department (使用单位全称, 004 part 1 notes).
    pub name: Name,
    /// Supervising unit (主管单位): the department's parent 委办局 (004 part 1).
    pub supervising_unit: Name,
    pub created_at: DateTime<Utc>,
    /// The unit of the administration tree this department belongs to
    /// (module `org_unit`); its unit admins and those above manage its users
    /// and read its reports. Absent in records written before: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<OrgUnitId>,
}

impl Record for Tenant {
    const KIND: &'static str = "tenant";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.code.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn check(input: &str, ok: bool) {
        let got = TenantCode::new(input);
        assert_eq!(got.is_ok(), ok, "{input:?} -> {got:?}");
        if let Err(e) = got {
            assert_eq!(e.code(), "TENANT_CODE_INVALID");
        }
    }

    #[test]
    fn code_validation() {
        check("110105", true);
        check("001", true);
        check("123456789012", true);
        check("12", false);
        check("1234567890123", false);
        check("11010a", false);
        check("", false);
        check(" 110105", false);
        check("１１０", false); // full-width digits are not ASCII
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let t = Tenant {
            code: TenantCode::new("110105").expect("valid"),
            name: Name::new("北京市朝阳区政务服务管理局").expect("valid"),
            supervising_unit: Name::new("北京市朝阳区人民政府").expect("valid"),
            created_at: Utc
                .with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
                .single()
                .expect("date"),
            org_unit: None,
        };
        let json = serde_json::to_string(&t).expect("ser");
        assert_eq!(serde_json::from_str::<Tenant>(&json).expect("de"), t);
        assert_eq!(t.id(), "110105");

        let bad = json.replace("110105", "11x105");
        let err = serde_json::from_str::<Tenant>(&bad).expect_err("bad code");
        assert!(err.to_string().contains("tenant code"), "{err}");
    }
}
