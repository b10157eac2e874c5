//! Import errors: one [`ImportIssue`] per problem found, all of them collected into
//! a [`CatalogImportError`] so an operator can fix an uploaded file in one pass.
//!
//! Owns the stable codes of the import path (`CATALOG_ROW_*`, `CATALOG_HEADER_*`,
//! `CATALOG_SYNTAX_INVALID`, …). Codes are API: add new ones, never rename them
//! (STYLE.md, "Errors"). Each issue says where it is — item row (1-based), line of
//! the uploaded text when known, item code when readable, and field — in English
//! (`Display`) and Chinese ([`ErrorCode::message_zh`]).

use std::fmt;

use thiserror::Error;

use crate::{catalog::BillingMode, error::ErrorCode, text::TextError};

use super::CatalogFormat;

/// Why a shape field (`vcpu_*`, `memory_*`, `vcpu_per_core_max`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeReason {
    /// Not a non-negative integer.
    NotANumber,
    /// Some of the six range fields are given but this one is missing.
    Incomplete,
    /// `min = 0`, `step = 0` or `min > max`.
    Range,
    /// Shape fields on an item whose measure is not `vcpu` or `memory_gib`
    /// (`vcpu_per_core_max`: not `vcpu`).
    NotVmItem,
    /// `vcpu_per_core_max` must be at least 1.
    RatioZero,
}

impl ShapeReason {
    fn en(self) -> &'static str {
        match self {
            ShapeReason::NotANumber => "must be a whole number",
            ShapeReason::Incomplete => {
                "is missing: give all six of vcpu_min/max/step and memory_min/max/step_gib, or none"
            }
            ShapeReason::Range => {
                "gives an invalid range: min and step must be at least 1 and min at most max"
            }
            ShapeReason::NotVmItem => {
                "is only allowed on vcpu or memory_gib items (vcpu_per_core_max: vcpu items)"
            }
            ShapeReason::RatioZero => "must be at least 1",
        }
    }

    fn zh(self) -> &'static str {
        match self {
            ShapeReason::NotANumber => "应为整数",
            ShapeReason::Incomplete => {
                "缺失：vcpu_min/max/step 与 memory_min/max/step_gib 六项须全部填写或全部留空"
            }
            ShapeReason::Range => "范围无效：最小值与步长至少为 1，且最小值不大于最大值",
            ShapeReason::NotVmItem => {
                "只适用于计量为 vcpu 或 memory_gib 的服务项（vcpu_per_core_max 只适用于 vcpu）"
            }
            ShapeReason::RatioZero => "至少为 1",
        }
    }
}

/// Why a resource-mapping field (`measure`, `quantity`, `class`, `resource_kind`)
/// was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceReason {
    /// `measure` is not one of [`super::Measure::ALL`].
    MeasureUnknown,
    /// `resource_kind` is not a known resource kind.
    KindUnknown,
    /// `quantity` is not a whole number ≥ 1.
    QuantityInvalid,
    /// `quantity` disagrees with the unit, e.g. unit `100 GB` but quantity 1.
    QuantityUnitMismatch { expected: u32 },
    /// `class` is required for `storage_gib` and `backup_gib` items.
    ClassMissing,
    /// `class` must be 1–40 of `a-z`, `0-9`, `_`, starting with a letter.
    ClassInvalid,
}

impl ResourceReason {
    fn en(self) -> String {
        match self {
            ResourceReason::MeasureUnknown => format!(
                "is not a known measure ({})",
                super::Measure::ALL.map(|m| m.as_str()).join(", ")
            ),
            ResourceReason::KindUnknown => "is not a known resource kind".to_string(),
            ResourceReason::QuantityInvalid => "must be a whole number of at least 1".to_string(),
            ResourceReason::QuantityUnitMismatch { expected } => {
                format!("disagrees with the unit, which holds {expected}")
            }
            ResourceReason::ClassMissing => {
                "is required for storage_gib and backup_gib items".to_string()
            }
            ResourceReason::ClassInvalid => {
                "must be 1-40 lower-case letters, digits or '_', starting with a letter".to_string()
            }
        }
    }

    fn zh(self) -> String {
        match self {
            ResourceReason::MeasureUnknown => format!(
                "不是已知的计量方式（{}）",
                super::Measure::ALL.map(|m| m.as_str()).join("、")
            ),
            ResourceReason::KindUnknown => "不是已知的资源类型".to_string(),
            ResourceReason::QuantityInvalid => "应为不小于 1 的整数".to_string(),
            ResourceReason::QuantityUnitMismatch { expected } => {
                format!("与计价单位不符：该单位对应 {expected}")
            }
            ResourceReason::ClassMissing => "计量为 storage_gib 或 backup_gib 时必填".to_string(),
            ResourceReason::ClassInvalid => {
                "应为 1–40 位小写字母、数字或“_”，以字母开头".to_string()
            }
        }
    }
}

/// `shape value "x"`, or `shape field` when the value is empty (missing).
fn subject_en(what: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{what} field")
    } else {
        format!("{what} value {value:?}")
    }
}

/// `规格值“x”`, or `规格字段` when the value is empty (missing).
fn subject_zh(what: &str, value: &str) -> String {
    if value.is_empty() {
        format!("{what}字段")
    } else {
        format!("{what}值“{value}”")
    }
}

fn billing_str(b: BillingMode) -> &'static str {
    match b {
        BillingMode::Monthly => "monthly",
        BillingMode::Yearly => "yearly",
        BillingMode::OneOff => "one_off",
    }
}

/// What is wrong; where it is wrong is in [`ImportIssue`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportProblem {
    #[error("the text is {len} bytes long; at most {max} are accepted")]
    TooLarge { len: usize, max: usize },
    #[error("the catalog has {count} items; at most {max} are accepted")]
    TooManyRows { count: usize, max: usize },
    #[error("{format} syntax error: {detail}")]
    Syntax {
        format: CatalogFormat,
        detail: String,
    },
    #[error("the catalog has no items")]
    NoItems,
    #[error("required catalog field is missing")]
    HeaderFieldMissing,
    #[error("unknown catalog field or column")]
    HeaderFieldUnknown,
    #[error("catalog field value {value:?} is invalid")]
    HeaderFieldInvalid { value: String },
    #[error("an item must be an object (JSON) or a table (TOML)")]
    RowNotRecord,
    #[error("the row has {found} cells but the header has {expected} columns")]
    RowFieldCount { expected: usize, found: usize },
    #[error("required field is missing")]
    RowFieldMissing,
    #[error("unknown field")]
    RowFieldUnknown,
    #[error("field must be a string or a number, not a list or a table")]
    RowFieldType,
    #[error("code {value:?} must be 1-16 ASCII upper-case letters or digits")]
    RowCodeInvalid { value: String },
    #[error("code {value} already appears in row {first_row}")]
    RowCodeDuplicate { value: String, first_row: usize },
    #[error("{error}")]
    RowTextInvalid { error: TextError },
    #[error("unit {value:?} is not a known pricing unit")]
    RowUnitUnknown { value: String },
    #[error("price {value:?} must be a non-negative amount of yuan with at most 2 decimals")]
    RowPriceInvalid { value: String },
    #[error("billing {value:?} must be monthly, yearly or one_off")]
    RowBillingInvalid { value: String },
    #[error("unit {unit:?} names a billing period that contradicts billing {}", billing_str(*billing))]
    RowBillingMismatch { unit: String, billing: BillingMode },
    #[error("architecture tag {value:?} must be x86, xinchuang (信创) or any")]
    RowArchInvalid { value: String },
    #[error("weight {value:?} must be a whole percentage 0-100")]
    RowWeightInvalid { value: String },
    #[error("{} {}", subject_en("shape", value), reason.en())]
    RowShapeInvalid { value: String, reason: ShapeReason },
    #[error("{} {}", subject_en("resource", value), reason.en())]
    RowResourceInvalid {
        value: String,
        reason: ResourceReason,
    },
    /// Priced above the published maximum unit price of the ceiling catalog's
    /// item `maximum_code` (seed 003 §3.1.3 各服务项最高限制单价), compared per
    /// unit of the measure and per month.
    #[error(
        "price {price} yuan is above the published maximum {maximum} yuan of item {maximum_code} (003 §3.1.3; compared per unit and month)"
    )]
    RowPriceAboveMaximum {
        price: crate::catalog::Fen,
        maximum: crate::catalog::Fen,
        maximum_code: String,
    },
}

impl ImportProblem {
    pub fn code(&self) -> &'static str {
        match self {
            ImportProblem::TooLarge { .. } => "CATALOG_TOO_LARGE",
            ImportProblem::TooManyRows { .. } => "CATALOG_TOO_MANY_ROWS",
            ImportProblem::Syntax { .. } => "CATALOG_SYNTAX_INVALID",
            ImportProblem::NoItems => "CATALOG_EMPTY",
            ImportProblem::HeaderFieldMissing => "CATALOG_HEADER_FIELD_MISSING",
            ImportProblem::HeaderFieldUnknown => "CATALOG_HEADER_FIELD_UNKNOWN",
            ImportProblem::HeaderFieldInvalid { .. } => "CATALOG_HEADER_FIELD_INVALID",
            ImportProblem::RowNotRecord => "CATALOG_ROW_NOT_RECORD",
            ImportProblem::RowFieldCount { .. } => "CATALOG_ROW_FIELD_COUNT",
            ImportProblem::RowFieldMissing => "CATALOG_ROW_FIELD_MISSING",
            ImportProblem::RowFieldUnknown => "CATALOG_ROW_FIELD_UNKNOWN",
            ImportProblem::RowFieldType => "CATALOG_ROW_FIELD_TYPE",
            ImportProblem::RowCodeInvalid { .. } => "CATALOG_ROW_CODE_INVALID",
            ImportProblem::RowCodeDuplicate { .. } => "CATALOG_ROW_CODE_DUPLICATE",
            ImportProblem::RowTextInvalid { .. } => "CATALOG_ROW_TEXT_INVALID",
            ImportProblem::RowUnitUnknown { .. } => "CATALOG_ROW_UNIT_UNKNOWN",
            ImportProblem::RowPriceInvalid { .. } => "CATALOG_ROW_PRICE_INVALID",
            ImportProblem::RowBillingInvalid { .. } => "CATALOG_ROW_BILLING_INVALID",
            ImportProblem::RowBillingMismatch { .. } => "CATALOG_ROW_BILLING_MISMATCH",
            ImportProblem::RowArchInvalid { .. } => "CATALOG_ROW_ARCH_INVALID",
            ImportProblem::RowWeightInvalid { .. } => "CATALOG_ROW_WEIGHT_INVALID",
            ImportProblem::RowShapeInvalid { .. } => "CATALOG_ROW_SHAPE_INVALID",
            ImportProblem::RowResourceInvalid { .. } => "CATALOG_ROW_RESOURCE_INVALID",
            ImportProblem::RowPriceAboveMaximum { .. } => "CATALOG_ROW_PRICE_ABOVE_MAXIMUM",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            ImportProblem::TooLarge { len, max } => {
                format!("文件过大：{len} 字节，最多 {max} 字节")
            }
            ImportProblem::TooManyRows { count, max } => {
                format!("服务项过多：{count} 项，最多 {max} 项")
            }
            ImportProblem::Syntax { format, detail } => format!("{format} 格式错误：{detail}"),
            ImportProblem::NoItems => "服务目录中没有服务项".to_string(),
            ImportProblem::HeaderFieldMissing => "缺少必填的目录字段".to_string(),
            ImportProblem::HeaderFieldUnknown => "未知的目录字段或列名".to_string(),
            ImportProblem::HeaderFieldInvalid { value } => format!("目录字段值“{value}”无效"),
            ImportProblem::RowNotRecord => "服务项应为对象（JSON）或表（TOML）".to_string(),
            ImportProblem::RowFieldCount { expected, found } => {
                format!("该行有 {found} 个单元格，而表头只有 {expected} 列")
            }
            ImportProblem::RowFieldMissing => "缺少必填字段".to_string(),
            ImportProblem::RowFieldUnknown => "未知字段".to_string(),
            ImportProblem::RowFieldType => "字段应为文字或数字，不能是列表或表".to_string(),
            ImportProblem::RowCodeInvalid { value } => {
                format!("编码“{value}”无效：应为 1–16 位大写字母或数字")
            }
            ImportProblem::RowCodeDuplicate { value, first_row } => {
                format!("编码 {value} 重复：第 {first_row} 项已使用")
            }
            ImportProblem::RowTextInvalid { error } => error.message_zh(),
            ImportProblem::RowUnitUnknown { value } => {
                format!("计价单位“{value}”不是已知单位")
            }
            ImportProblem::RowPriceInvalid { value } => {
                format!("价格“{value}”无效：应为非负金额（元），最多两位小数")
            }
            ImportProblem::RowBillingInvalid { value } => {
                format!(
                    "计费方式“{value}”无效：应为 monthly（按月）、yearly（按年）或 one_off（一次性）"
                )
            }
            ImportProblem::RowBillingMismatch { unit, billing } => format!(
                "计价单位“{unit}”所含计费周期与计费方式 {} 矛盾",
                billing_str(*billing)
            ),
            ImportProblem::RowArchInvalid { value } => {
                format!("架构标签“{value}”无效：应为 x86、xinchuang（信创）或 any")
            }
            ImportProblem::RowWeightInvalid { value } => {
                format!("权值“{value}”无效：应为 0–100 的整数百分比")
            }
            ImportProblem::RowShapeInvalid { value, reason } => {
                format!("{}{}", subject_zh("规格", value), reason.zh())
            }
            ImportProblem::RowResourceInvalid { value, reason } => {
                format!("{}{}", subject_zh("资源映射", value), reason.zh())
            }
            ImportProblem::RowPriceAboveMaximum {
                price,
                maximum,
                maximum_code,
            } => format!(
                "单价 {price} 元高于公布的最高限制单价 {maximum} 元（服务项 {maximum_code}，003 §3.1.3；按单位、按月比较）"
            ),
        }
    }
}

/// One problem in an uploaded catalog, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssue {
    /// 1-based item row (first item = 1; for CSV the first data row after the
    /// header). `None` for problems of the whole file or its header.
    pub row: Option<usize>,
    /// 1-based line of the uploaded text, when the format reader knows it (CSV
    /// rows, syntax errors).
    pub line: Option<usize>,
    /// The item's code, when it could be read.
    pub item_code: Option<String>,
    /// The field (column) at fault, if one is.
    pub field: Option<String>,
    pub problem: ImportProblem,
}

impl ImportIssue {
    pub(crate) fn file(problem: ImportProblem) -> Self {
        ImportIssue {
            row: None,
            line: None,
            item_code: None,
            field: None,
            problem,
        }
    }

    pub(crate) fn header(field: &str, problem: ImportProblem) -> Self {
        ImportIssue {
            field: Some(field.to_string()),
            ..ImportIssue::file(problem)
        }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for ImportIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(row) = self.row {
            parts.push(format!("row {row}"));
        }
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if let Some(code) = &self.item_code {
            parts.push(format!("item {code}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field `{field}`"));
        }
        if parts.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.problem)
        }
    }
}

impl std::error::Error for ImportIssue {}

impl ErrorCode for ImportIssue {
    fn code(&self) -> &'static str {
        self.problem.code()
    }

    fn message_zh(&self) -> String {
        let mut place = String::new();
        if let Some(row) = self.row {
            place.push_str(&format!("第 {row} 项"));
        }
        if let Some(line) = self.line {
            place.push_str(&format!("（文件第 {line} 行）"));
        }
        if let Some(code) = &self.item_code {
            place.push_str(&format!("编码 {code} "));
        }
        if let Some(field) = &self.field {
            place.push_str(&format!("字段 {field}"));
        }
        if place.is_empty() {
            self.problem.message_zh()
        } else {
            format!("{}：{}", place.trim_end(), self.problem.message_zh())
        }
    }
}

/// A refused catalog: every problem found, in file order. Nothing of the
/// catalog was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogImportError {
    pub issues: Vec<ImportIssue>,
}

impl fmt::Display for CatalogImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "catalog refused with {} problem(s)", self.issues.len())?;
        if let Some(first) = self.issues.first() {
            write!(f, "; first: {first}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CatalogImportError {}

impl ErrorCode for CatalogImportError {
    fn code(&self) -> &'static str {
        "CATALOG_IMPORT_INVALID"
    }

    fn message_zh(&self) -> String {
        let mut msg = format!("服务目录有 {} 处错误，未导入", self.issues.len());
        if let Some(first) = self.issues.first() {
            msg.push_str(&format!("；第一处：{}", first.message_zh()));
        }
        msg
    }
}
