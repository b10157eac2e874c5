//! Information systems (信息系统): what a tenant puts on the cloud, with its
//! [`SystemNumber`] and the fields of the Beijing unified work order part 1
//! (004 附件1-3 第一部分).
//!
//! Owns the number format (tenant code + 3-digit sequence, 003 §2.2.5 (6)), the
//! classification enums and contact validation. Allocating the next sequence number
//! is the workflow's job (it needs the store).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    error::ErrorCode,
    record::Record,
    tenant::TenantCode,
    text::{Name, Text},
};

/// Why an information-system value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SystemError {
    #[error("system number {value:?} must be a tenant code followed by 3 digits 001-999")]
    NumberInvalid { value: String },
    #[error("system sequence {seq} is out of range 1..=999")]
    SeqOutOfRange { seq: u32 },
    #[error("unknown security protection level {value:?}")]
    LevelInvalid { value: String },
    #[error(
        "security protection level {value:?} systems may not be deployed to the government cloud"
    )]
    LevelNotEligible { value: String },
    #[error(
        "phone number {value:?} is neither an 11-digit mobile number nor a landline with area code"
    )]
    PhoneInvalid { value: String },
    #[error("e-mail address {value:?} is invalid")]
    EmailInvalid { value: String },
}

impl ErrorCode for SystemError {
    fn code(&self) -> &'static str {
        match self {
            SystemError::NumberInvalid { .. } => "SYSTEM_NUMBER_INVALID",
            SystemError::SeqOutOfRange { .. } => "SYSTEM_SEQ_OUT_OF_RANGE",
            SystemError::LevelInvalid { .. } => "SYSTEM_LEVEL_INVALID",
            SystemError::LevelNotEligible { .. } => "SYSTEM_LEVEL_NOT_ELIGIBLE",
            SystemError::PhoneInvalid { .. } => "PHONE_INVALID",
            SystemError::EmailInvalid { .. } => "EMAIL_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            SystemError::NumberInvalid { value } => {
                format!("信息系统编号“{value}”无效：应为使用单位编号加 001–999 三位顺序号")
            }
            SystemError::SeqOutOfRange { seq } => {
                format!("信息系统顺序号 {seq} 超出范围 1–999")
            }
            SystemError::LevelInvalid { value } => format!("信息系统定级情况“{value}”无效"),
            SystemError::LevelNotEligible { value } => {
                format!("等级保护“{value}”（四级及以上）信息系统不得部署到政务云")
            }
            SystemError::PhoneInvalid { value } => {
                format!("电话号码“{value}”无效：应为 11 位手机号或带区号的座机号")
            }
            SystemError::EmailInvalid { value } => format!("电子邮箱“{value}”无效"),
        }
    }
}

/// Information-system number (信息系统编号): the tenant code followed by a 3-digit
/// sequence starting at `001`, assigned in order (003 §2.2.5 (6)). Written as one
/// string, e.g. `110105001`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SystemNumber {
    tenant: TenantCode,
    seq: u16,
}

impl SystemNumber {
    pub const MAX_SEQ: u16 = 999;

    /// Refuses `seq` outside 1..=999 (`SYSTEM_SEQ_OUT_OF_RANGE`).
    pub fn new(tenant: &TenantCode, seq: u32) -> Result<Self, SystemError> {
        match u16::try_from(seq) {
            Ok(s) if (1..=Self::MAX_SEQ).contains(&s) => Ok(SystemNumber {
                tenant: tenant.clone(),
                seq: s,
            }),
            _ => Err(SystemError::SeqOutOfRange { seq }),
        }
    }

    /// Parses `110105001`: the last three digits are the sequence, the rest the
    /// tenant code.
    pub fn parse(value: &str) -> Result<Self, SystemError> {
        let invalid = || SystemError::NumberInvalid {
            value: value.to_string(),
        };
        if !value.is_ascii() || value.len() < 4 {
            return Err(invalid());
        }
        let (code, seq) = value.split_at(value.len() - 3);
        let tenant = TenantCode::new(code).map_err(|_| invalid())?;
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let seq: u32 = seq.parse().map_err(|_| invalid())?;
        SystemNumber::new(&tenant, seq).map_err(|_| invalid())
    }

    pub fn tenant(&self) -> &TenantCode {
        &self.tenant
    }

    pub fn seq(&self) -> u16 {
        self.seq
    }
}

impl fmt::Display for SystemNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:03}", self.tenant, self.seq)
    }
}

impl std::str::FromStr for SystemNumber {
    type Err = SystemError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        SystemNumber::parse(value)
    }
}

impl TryFrom<String> for SystemNumber {
    type Error = SystemError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SystemNumber::parse(&value)
    }
}

impl From<SystemNumber> for String {
    fn from(value: SystemNumber) -> String {
        value.to_string()
    }
}

/// System type (系统类型, 004 part 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemType {
    /// 业务生产系统
    BusinessProduction,
    /// 内部办公
    InternalOffice,
    /// 公众服务
    PublicService,
    /// 门户网站
    Portal,
    /// 移动APP
    MobileApp,
    /// 视频系统
    Video,
    /// 其他
    Other,
}

impl SystemType {
    pub fn label_zh(self) -> &'static str {
        match self {
            SystemType::BusinessProduction => "业务生产系统",
            SystemType::InternalOffice => "内部办公",
            SystemType::PublicService => "公众服务",
            SystemType::Portal => "门户网站",
            SystemType::MobileApp => "移动APP",
            SystemType::Video => "视频系统",
            SystemType::Other => "其他",
        }
    }
}

/// Security protection level (等保定级, 004 part 1 "信息系统定级情况").
///
/// There is no level 4: systems at 等保四级 or above stay off the government cloud
/// (004 art. 4), so parsing "四级"/`level4` yields `SYSTEM_LEVEL_NOT_ELIGIBLE` rather
/// than a value. Datong's form says 未备案 (not filed) where Beijing says 未定级;
/// both parse to [`SecurityLevel::Unrated`] (000 附件3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SecurityLevel {
    /// 未定级
    Unrated,
    /// 一级
    Level1,
    /// 二级
    Level2,
    /// 三级
    Level3,
}

impl SecurityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Unrated => "unrated",
            SecurityLevel::Level1 => "level1",
            SecurityLevel::Level2 => "level2",
            SecurityLevel::Level3 => "level3",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            SecurityLevel::Unrated => "未定级",
            SecurityLevel::Level1 => "一级",
            SecurityLevel::Level2 => "二级",
            SecurityLevel::Level3 => "三级",
        }
    }
}

impl std::str::FromStr for SecurityLevel {
    type Err = SystemError;
    /// Accepts the English names and the Chinese labels of both seed forms.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "unrated" | "未定级" | "未备案" => Ok(SecurityLevel::Unrated),
            "level1" | "一级" => Ok(SecurityLevel::Level1),
            "level2" | "二级" => Ok(SecurityLevel::Level2),
            "level3" | "三级" => Ok(SecurityLevel::Level3),
            "level4" | "level5" | "四级" | "五级" => Err(SystemError::LevelNotEligible {
                value: value.to_string(),
            }),
            _ => Err(SystemError::LevelInvalid {
                value: value.to_string(),
            }),
        }
    }
}

impl TryFrom<String> for SecurityLevel {
    type Error = SystemError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<SecurityLevel> for &'static str {
    fn from(value: SecurityLevel) -> &'static str {
        value.as_str()
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Run time (信息系统运行时间, 004 part 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunSchedule {
    /// 7×24 小时
    #[serde(rename = "7x24")]
    AllDay,
    /// 5×8 小时
    #[serde(rename = "5x8")]
    WorkingHours,
    /// 其它, described in words.
    #[serde(rename = "other")]
    Other(Name),
}

/// Network nature (网络性质, 004 part 1; 000 附件3 adds other private networks 专网).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkNature {
    /// 政务外网
    GovExtranet,
    /// 互联网
    Internet,
    /// 政务外网及互联网
    GovExtranetAndInternet,
    /// 专线 / 其它专网
    DedicatedLine,
}

/// A phone number: an 11-digit mainland mobile number (`13800138000`) or a landline
/// with area code (`010-12345678`, `0352-1234567`). Spaces and hyphens in the input
/// are ignored; the stored form is normalised (landlines as `area-number`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn new(value: &str) -> Result<Self, SystemError> {
        let invalid = || SystemError::PhoneInvalid {
            value: value.to_string(),
        };
        let digits: String = value.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let b = digits.as_bytes();
        // Mobile: 1 followed by 3–9, 11 digits in all.
        if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
            return Ok(Phone(digits));
        }
        // Landline: area codes 010 and 020–029 have 3 digits, the rest 4; the local
        // number has 7 or 8 digits.
        if b[0] == b'0' && b.len() >= 3 {
            let area_len = if matches!(b[1], b'1' | b'2') { 3 } else { 4 };
            let local_len = b.len().saturating_sub(area_len);
            if b.len() > area_len && (7..=8).contains(&local_len) && b[area_len] != b'0' {
                let (area, local) = digits.split_at(area_len);
                return Ok(Phone(format!("{area}-{local}")));
            }
        }
        Err(invalid())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_mobile(&self) -> bool {
        !self.0.contains('-')
    }
}

impl TryFrom<String> for Phone {
    type Error = SystemError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::new(&value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, checked for shape only (one `@`, a dotted domain, no spaces,
/// at most 254 bytes). Whether it receives mail is not our business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn new(value: &str) -> Result<Self, SystemError> {
        let invalid = || SystemError::EmailInvalid {
            value: value.to_string(),
        };
        let v = value.trim();
        if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = v.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(v.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = SystemError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::new(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A contact person (联系人, 004 part 1: name, mobile, e-mail, landline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: Name,
    pub phone: Phone,
    pub email: Option<Email>,
    /// Desk phone (联系人座机), optional on the form.
    pub landline: Option<Phone>,
}

/// Pre-approval (前置审批情况): the project approval reply or budget approval that
/// entitles the system to go on the cloud (004 art. 12 and part 1 notes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PreApproval {
    None,
    Document {
        /// Document number (文号), e.g. `京经信函〔2023〕12号`.
        number: Name,
        /// Document title (名称).
        title: Name,
    },
}

/// Information system (信息系统): one application a tenant runs on the cloud.
/// All fields are validated types; the tenant is derived from the number, so the
/// two can never disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationSystem {
    pub number: SystemNumber,
    pub name: Name,
    pub system_type: SystemType,
    pub security_level: SecurityLevel,
    pub run_schedule: RunSchedule,
    pub network_nature: NetworkNature,
    /// Required contact (联系人).
    pub contact: Contact,
    /// Technical contact (技术联系人), optional.
    pub technical_contact: Option<Contact>,
    /// Function description (功能描述).
    pub description: Text,
    pub pre_approval: PreApproval,
    pub created_at: DateTime<Utc>,
    /// The using unit requires 信创 (domestic chips, 一云多芯): its servers
    /// run only on arm64 (Kunpeng, Phytium) or c86 (Hygon) — "提供云服务要满足
    /// 用户单位提出的信创改造需求" (003 §2.1.1); "按需提供鲲鹏、飞腾、海光等各技术
    /// 路线的计算资源" (003 §3.2.1.1). Absent in records written before: `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xinchuang: bool,
}

impl InformationSystem {
    pub fn tenant(&self) -> &TenantCode {
        self.number.tenant()
    }
}

impl Record for InformationSystem {
    const KIND: &'static str = "information_system";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn tenant() -> TenantCode {
        TenantCode::new("110105").expect("code")
    }

    #[test]
    fn number_formatting() {
        let n = SystemNumber::new(&tenant(), 1).expect("valid");
        assert_eq!(n.to_string(), "110105001");
        assert_eq!(
            SystemNumber::new(&tenant(), 999)
                .expect("valid")
                .to_string(),
            "110105999"
        );
        assert_eq!(
            SystemNumber::new(&tenant(), 0),
            Err(SystemError::SeqOutOfRange { seq: 0 })
        );
        assert_eq!(
            SystemNumber::new(&tenant(), 1000),
            Err(SystemError::SeqOutOfRange { seq: 1000 })
        );
        assert!(SystemNumber::new(&tenant(), 70_000).is_err());
    }

    fn check_number(input: &str, expected: Option<(&str, u16)>) {
        let got = SystemNumber::parse(input)
            .ok()
            .map(|n| (n.tenant().to_string(), n.seq()));
        assert_eq!(got, expected.map(|(t, s)| (t.to_string(), s)), "{input:?}");
    }

    #[test]
    fn number_parsing() {
        check_number("110105001", Some(("110105", 1)));
        check_number("110105042", Some(("110105", 42)));
        check_number("001999", Some(("001", 999)));
        check_number("110105000", None);
        check_number("11010500a", None);
        check_number("12001", None); // tenant code "12" too short
        check_number("", None);
        check_number("１１０１０５００１", None);
        let n: SystemNumber = serde_json::from_str("\"110105007\"").expect("de");
        assert_eq!(serde_json::to_string(&n).expect("ser"), "\"110105007\"");
        assert!(serde_json::from_str::<SystemNumber>("\"110105000\"").is_err());
    }

    #[test]
    fn security_levels() {
        assert_eq!("三级".parse::<SecurityLevel>(), Ok(SecurityLevel::Level3));
        assert_eq!(
            "未备案".parse::<SecurityLevel>(),
            Ok(SecurityLevel::Unrated)
        );
        assert_eq!(
            "四级".parse::<SecurityLevel>().map_err(|e| e.code()),
            Err("SYSTEM_LEVEL_NOT_ELIGIBLE")
        );
        assert_eq!(
            "level9".parse::<SecurityLevel>().map_err(|e| e.code()),
            Err("SYSTEM_LEVEL_INVALID")
        );
        assert_eq!(
            serde_json::to_string(&SecurityLevel::Level2).expect("ser"),
            "\"level2\""
        );
        let err = serde_json::from_str::<SecurityLevel>("\"level4\"").expect_err("refused");
        assert!(err.to_string().contains("may not be deployed"), "{err}");
    }

    fn check_phone(input: &str, expected: Option<&str>) {
        assert_eq!(
            Phone::new(input).ok().map(String::from).as_deref(),
            expected,
            "{input:?}"
        );
    }

    #[test]
    fn phones() {
        check_phone("13800138000", Some("13800138000"));
        check_phone("138 0013 8000", Some("13800138000"));
        check_phone("010-12345678", Some("010-12345678"));
        check_phone("01012345678", Some("010-12345678"));
        check_phone("0352-1234567", Some("0352-1234567"));
        check_phone("0577-87654321", Some("0577-87654321"));
        check_phone("12800138000", None); // 12x is not a mobile prefix
        check_phone("1380013800", None); // 10 digits
        check_phone("12345678", None); // landline without area code
        check_phone("010-0234567", None); // local number cannot start with 0
        check_phone("010-123456789", None);
        check_phone("phone", None);
        check_phone("", None);
    }

    #[test]
    fn emails() {
        for ok in ["zhangsan@bj.gov.cn", "a.b+c@example.com"] {
            assert!(Email::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "zhangsan",
            "@bj.gov.cn",
            "a@b",
            "a@@b.cn",
            "a b@c.cn",
            "a@b..cn",
        ] {
            assert_eq!(
                Email::new(bad).map_err(|e| e.code()),
                Err("EMAIL_INVALID"),
                "{bad}"
            );
        }
    }

    pub(crate) fn sample_system() -> InformationSystem {
        InformationSystem {
            number: SystemNumber::new(&tenant(), 1).expect("valid"),
            name: Name::new("政务服务事项管理系统").expect("valid"),
            system_type: SystemType::PublicService,
            security_level: SecurityLevel::Level3,
            run_schedule: RunSchedule::AllDay,
            network_nature: NetworkNature::GovExtranetAndInternet,
            contact: Contact {
                name: Name::new("张三").expect("valid"),
                phone: Phone::new("13800138000").expect("valid"),
                email: Some(Email::new("zhangsan@bj.gov.cn").expect("valid")),
                landline: Some(Phone::new("010-12345678").expect("valid")),
            },
            technical_contact: None,
            description: Text::new("办事指南发布与事项受理").expect("valid"),
            pre_approval: PreApproval::Document {
                number: Name::new("京经信函〔2023〕12号").expect("valid"),
                title: Name::new("关于政务服务事项管理系统项目的复函").expect("valid"),
            },
            created_at: Utc
                .with_ymd_and_hms(2026, 2, 1, 10, 0, 0)
                .single()
                .expect("date"),
            xinchuang: false,
        }
    }

    #[test]
    fn system_round_trip() {
        let s = sample_system();
        assert_eq!(s.tenant().as_str(), "110105");
        assert_eq!(s.id(), "110105001");
        let json = serde_json::to_string(&s).expect("ser");
        assert!(json.contains(r#""run_schedule":"7x24""#), "{json}");
        assert_eq!(
            serde_json::from_str::<InformationSystem>(&json).expect("de"),
            s
        );
        let bad = json.replace("13800138000", "12345");
        assert!(serde_json::from_str::<InformationSystem>(&bad).is_err());
    }
}
