//! Service catalog (服务目录): priced items with a code, unit, billing mode,
//! architecture tag and VM shape limits.
//!
//! Owns money as integer fen ([`Fen`]; never floats) and the shape check
//! ([`ShapeLimits::check_shape`]). The catalogs themselves — Beijing 2023 items
//! 1001–1023 (003 §3.1.3) and Datong (000 附件1) — are data files loaded elsewhere;
//! the two `ShapeLimits` presets here exist for tests and defaults.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    arch::Architecture,
    error::ErrorCode,
    ids::CatalogId,
    record::Record,
    text::{Name, Text},
};

/// Why a catalog value or a requested shape was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    #[error("catalog code {value:?} must be 1-16 ASCII upper-case letters or digits")]
    CodeInvalid { value: String },
    #[error("price {value:?} must be a non-negative amount of yuan with at most 2 decimals")]
    PriceInvalid { value: String },
    #[error("shape limit {min}..={max} step {step} is invalid")]
    LimitsInvalid { min: u32, max: u32, step: u32 },
    #[error("{value} vCPU is not allowed: {min}..={max} in steps of {step}")]
    ShapeVcpu {
        value: u32,
        min: u32,
        max: u32,
        step: u32,
    },
    #[error("{value} GiB memory is not allowed: {min}..={max} GiB in steps of {step}")]
    ShapeMemory {
        value: u32,
        min: u32,
        max: u32,
        step: u32,
    },
    #[error("catalog item {code} ({tag:?}) is not available on {arch}")]
    ArchMismatch {
        code: String,
        tag: ArchTag,
        arch: Architecture,
    },
}

impl ErrorCode for CatalogError {
    fn code(&self) -> &'static str {
        match self {
            CatalogError::CodeInvalid { .. } => "CATALOG_CODE_INVALID",
            CatalogError::PriceInvalid { .. } => "CATALOG_PRICE_INVALID",
            CatalogError::LimitsInvalid { .. } => "CATALOG_LIMITS_INVALID",
            CatalogError::ShapeVcpu { .. } => "SHAPE_VCPU_NOT_ALLOWED",
            CatalogError::ShapeMemory { .. } => "SHAPE_MEMORY_NOT_ALLOWED",
            CatalogError::ArchMismatch { .. } => "CATALOG_ARCH_MISMATCH",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            CatalogError::CodeInvalid { value } => {
                format!("服务目录编码“{value}”无效：应为 1–16 位大写字母或数字")
            }
            CatalogError::PriceInvalid { value } => {
                format!("价格“{value}”无效：应为非负金额（元），最多两位小数")
            }
            CatalogError::LimitsInvalid { min, max, step } => {
                format!("规格范围 {min}–{max}（步长 {step}）无效")
            }
            CatalogError::ShapeVcpu {
                value,
                min,
                max,
                step,
            } => format!("不支持 {value} 核 vCPU：可选 {min}–{max} 核，每次增加 {step} 核"),
            CatalogError::ShapeMemory {
                value,
                min,
                max,
                step,
            } => format!("不支持 {value} GB 内存：可选 {min}–{max} GB，每次增加 {step} GB"),
            CatalogError::ArchMismatch { code, tag, arch } => {
                format!(
                    "服务目录项 {code}（{}）不适用于 {arch} 架构",
                    tag.label_zh()
                )
            }
        }
    }
}

/// Catalog item code, e.g. `1001` (Beijing) or `ZW010201` (Datong).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CatalogCode(String);

impl CatalogCode {
    pub fn new(value: impl Into<String>) -> Result<Self, CatalogError> {
        let value = value.into();
        let ok = (1..=16).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(CatalogCode(value))
        } else {
            Err(CatalogError::CodeInvalid { value })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CatalogCode {
    type Error = CatalogError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CatalogCode::new(value)
    }
}

impl From<CatalogCode> for String {
    fn from(value: CatalogCode) -> String {
        value.0
    }
}

impl fmt::Display for CatalogCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of money in fen (分, 1/100 yuan). Integer so that sums over months
/// and tenants are exact; serialized as the integer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub u64);

impl Fen {
    /// Parses a yuan amount as written in the seeds' price tables, e.g. `"14.02"`
    /// (003 §3.1.3 item 1001) → 1402 fen. Refuses signs, exponents, more than two
    /// decimals and overflow (`CATALOG_PRICE_INVALID`).
    pub fn from_yuan_str(value: &str) -> Result<Self, CatalogError> {
        let invalid = || CatalogError::PriceInvalid {
            value: value.to_string(),
        };
        let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 2 {
            return Err(invalid());
        }
        if value.contains('.') && frac.is_empty() {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let frac: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().map_err(|_| invalid())? * 10,
            _ => frac.parse().map_err(|_| invalid())?,
        };
        whole
            .checked_mul(100)
            .and_then(|f| f.checked_add(frac))
            .map(Fen)
            .ok_or_else(invalid)
    }

    pub fn checked_mul(self, n: u64) -> Option<Fen> {
        self.0.checked_mul(n).map(Fen)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

/// Shows yuan with two decimals, e.g. `14.02`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// How a price is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingMode {
    /// 元/月 — Beijing's base catalog (003 §3.1.3).
    Monthly,
    /// 元/年 — Datong's tender prices (000 附件1).
    Yearly,
    /// Charged once, e.g. a deployment service (部署费).
    OneOff,
}

/// Architecture tag of a catalog item (000 附件1 备注 column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchTag {
    /// X86 only.
    X86,
    /// 信创: requires a domestic architecture (arm64 or c86).
    Xinchuang,
}

impl ArchTag {
    pub fn admits(self, arch: Architecture) -> bool {
        match self {
            ArchTag::X86 => arch == Architecture::X86_64,
            ArchTag::Xinchuang => arch.is_domestic(),
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ArchTag::X86 => "X86",
            ArchTag::Xinchuang => "信创",
        }
    }
}

/// Allowed values `min, min+step, …` up to `max`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "StepRangeFields")]
pub struct StepRange {
    min: u32,
    max: u32,
    step: u32,
}

#[derive(Deserialize)]
struct StepRangeFields {
    min: u32,
    max: u32,
    step: u32,
}

impl TryFrom<StepRangeFields> for StepRange {
    type Error = CatalogError;
    fn try_from(f: StepRangeFields) -> Result<Self, Self::Error> {
        StepRange::new(f.min, f.max, f.step)
    }
}

impl StepRange {
    /// Refuses `min = 0`, `step = 0` or `min > max` (`CATALOG_LIMITS_INVALID`).
    pub fn new(min: u32, max: u32, step: u32) -> Result<Self, CatalogError> {
        if min == 0 || step == 0 || min > max {
            return Err(CatalogError::LimitsInvalid { min, max, step });
        }
        Ok(StepRange { min, max, step })
    }

    pub fn min(&self) -> u32 {
        self.min
    }
    pub fn max(&self) -> u32 {
        self.max
    }
    pub fn step(&self) -> u32 {
        self.step
    }

    pub fn admits(&self, value: u32) -> bool {
        (self.min..=self.max).contains(&value) && (value - self.min).is_multiple_of(self.step)
    }
}

/// VM shape limits of a catalog: vCPU count and memory in GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShapeLimits {
    pub vcpu: StepRange,
    pub memory_gib: StepRange,
}

impl ShapeLimits {
    /// Beijing: 1–16 cores, 1–64 GB (003 §3.2.1.1 性能范围).
    pub fn beijing_2023() -> Self {
        ShapeLimits {
            vcpu: StepRange {
                min: 1,
                max: 16,
                step: 1,
            },
            memory_gib: StepRange {
                min: 1,
                max: 64,
                step: 1,
            },
        }
    }

    /// Datong: vCPU in steps of 2 up to 64, memory in steps of 2 GB up to 512 GB
    /// (000 附件1 ZW010201, ZW010203).
    pub fn datong_2023() -> Self {
        ShapeLimits {
            vcpu: StepRange {
                min: 2,
                max: 64,
                step: 2,
            },
            memory_gib: StepRange {
                min: 2,
                max: 512,
                step: 2,
            },
        }
    }

    /// Refuses a vCPU count (`SHAPE_VCPU_NOT_ALLOWED`) or memory size
    /// (`SHAPE_MEMORY_NOT_ALLOWED`) outside the limits; vCPU is checked first.
    pub fn check_shape(&self, vcpu: u32, memory_gib: u32) -> Result<(), CatalogError> {
        let r = self.vcpu;
        if !r.admits(vcpu) {
            return Err(CatalogError::ShapeVcpu {
                value: vcpu,
                min: r.min,
                max: r.max,
                step: r.step,
            });
        }
        let r = self.memory_gib;
        if !r.admits(memory_gib) {
            return Err(CatalogError::ShapeMemory {
                value: memory_gib,
                min: r.min,
                max: r.max,
                step: r.step,
            });
        }
        Ok(())
    }
}

/// Catalog item (服务目录项). Every field is a validated type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    /// Which catalog this item belongs to; codes are unique within a catalog.
    pub catalog: CatalogId,
    pub code: CatalogCode,
    pub name: Name,
    /// Pricing unit as printed (计价单位), e.g. `核`, `GB`, `台`.
    pub unit: Name,
    /// Unit price (maximum unit price for Beijing, tender price for Datong).
    pub price: Fen,
    pub billing: BillingMode,
    #[serde(default)]
    pub arch: Option<ArchTag>,
    #[serde(default)]
    pub shape: Option<ShapeLimits>,
    #[serde(default)]
    pub description: Option<Text>,
}

impl CatalogItem {
    /// Checks a requested shape against this item's limits; items without limits
    /// accept any shape.
    pub fn check_shape(&self, vcpu: u32, memory_gib: u32) -> Result<(), CatalogError> {
        match &self.shape {
            Some(limits) => limits.check_shape(vcpu, memory_gib),
            None => Ok(()),
        }
    }

    /// Refuses an architecture the item's tag excludes (`CATALOG_ARCH_MISMATCH`).
    pub fn check_arch(&self, arch: Architecture) -> Result<(), CatalogError> {
        match self.arch {
            Some(tag) if !tag.admits(arch) => Err(CatalogError::ArchMismatch {
                code: self.code.to_string(),
                tag,
                arch,
            }),
            _ => Ok(()),
        }
    }
}

impl Record for CatalogItem {
    const KIND: &'static str = "catalog_item";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        format!("{}/{}", self.catalog, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limits: ShapeLimits, vcpu: u32, mem: u32, expected: Option<&str>) {
        assert_eq!(
            limits.check_shape(vcpu, mem).err().map(|e| e.code()),
            expected,
            "{vcpu} vCPU {mem} GiB"
        );
    }

    #[test]
    fn beijing_shapes() {
        let b = ShapeLimits::beijing_2023();
        check(b, 1, 1, None);
        check(b, 16, 64, None);
        check(b, 3, 7, None);
        check(b, 0, 4, Some("SHAPE_VCPU_NOT_ALLOWED"));
        check(b, 17, 4, Some("SHAPE_VCPU_NOT_ALLOWED"));
        check(b, 4, 65, Some("SHAPE_MEMORY_NOT_ALLOWED"));
    }

    #[test]
    fn datong_shapes() {
        let d = ShapeLimits::datong_2023();
        check(d, 2, 2, None);
        check(d, 64, 512, None);
        check(d, 3, 4, Some("SHAPE_VCPU_NOT_ALLOWED"));
        check(d, 66, 4, Some("SHAPE_VCPU_NOT_ALLOWED"));
        check(d, 4, 5, Some("SHAPE_MEMORY_NOT_ALLOWED"));
        check(d, 4, 514, Some("SHAPE_MEMORY_NOT_ALLOWED"));
        let e = d.check_shape(3, 4).expect_err("odd");
        assert!(
            e.message_zh().contains("每次增加 2 核"),
            "{}",
            e.message_zh()
        );
    }

    #[test]
    fn step_range_validation() {
        assert!(StepRange::new(0, 4, 1).is_err());
        assert!(StepRange::new(1, 4, 0).is_err());
        assert!(StepRange::new(5, 4, 1).is_err());
        let bad = r#"{"vcpu":{"min":4,"max":2,"step":1},"memory_gib":{"min":1,"max":2,"step":1}}"#;
        assert!(serde_json::from_str::<ShapeLimits>(bad).is_err());
    }

    fn check_price(input: &str, expected: Option<u64>) {
        assert_eq!(
            Fen::from_yuan_str(input).ok().map(|f| f.0),
            expected,
            "{input}"
        );
    }

    #[test]
    fn prices_in_fen() {
        check_price("14.02", Some(1402));
        check_price("41.15", Some(4115));
        check_price("354", Some(35400));
        check_price("0.5", Some(50));
        check_price("0", Some(0));
        check_price("1.234", None);
        check_price("-1", None);
        check_price("1.", None);
        check_price(".5", None);
        check_price("1e3", None);
        check_price("", None);
        check_price("999999999999999999999", None);
        assert_eq!(Fen(1402).to_string(), "14.02");
        assert_eq!(Fen(5).to_string(), "0.05");
    }

    fn item() -> CatalogItem {
        CatalogItem {
            catalog: CatalogId::new("datong-2023").expect("id"),
            code: CatalogCode::new("ZW010202").expect("code"),
            name: Name::new("1核CPU").expect("name"),
            unit: Name::new("核/年").expect("name"),
            price: Fen::from_yuan_str("300").expect("price"),
            billing: BillingMode::Yearly,
            arch: Some(ArchTag::Xinchuang),
            shape: Some(ShapeLimits::datong_2023()),
            description: Some(
                Text::new("XC 云服务器 ARM，每次最小增加单位为 2核，最高上限为64 核")
                    .expect("text"),
            ),
        }
    }

    #[test]
    fn item_checks_and_round_trip() {
        let it = item();
        assert_eq!(Record::id(&it), "datong-2023/ZW010202");
        assert_eq!(it.check_arch(Architecture::Arm64), Ok(()));
        assert_eq!(
            it.check_arch(Architecture::X86_64).map_err(|e| e.code()),
            Err("CATALOG_ARCH_MISMATCH")
        );
        assert!(it.check_shape(4, 8).is_ok());
        let json = serde_json::to_string(&it).expect("ser");
        assert!(json.contains(r#""price":30000"#), "{json}");
        assert_eq!(serde_json::from_str::<CatalogItem>(&json).expect("de"), it);
        assert!(serde_json::from_str::<CatalogItem>(&json.replace("ZW010202", "zw-1")).is_err());
    }

    #[test]
    fn codes() {
        for ok in ["1001", "ZW010201", "ZW0102019"] {
            assert!(CatalogCode::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "zw01", "ZW 01", "ABCDEFGHIJKLMNOPQ"] {
            assert!(CatalogCode::new(bad).is_err(), "{bad}");
        }
    }
}
