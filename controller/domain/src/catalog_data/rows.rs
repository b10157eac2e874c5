//! Format-independent validation: the readers in `formats` turn JSON, TOML or CSV
//! into [`RawCatalog`] (keys and scalar text), and [`validate`] turns that into a
//! [`Catalog`] or every [`ImportIssue`] found.
//!
//! Rule: a problem in one field never stops the checks of the other fields or
//! rows; only syntax errors (in `formats`) end the import early.

use std::collections::BTreeMap;

use crate::{
    catalog::{ArchTag, BillingMode, CatalogCode, Fen, ShapeLimits, StepRange},
    ids::CatalogId,
    resource::ResourceKind,
    text::{Name, Text, TextError},
};

use super::{
    Catalog, CatalogEntry, CatalogImportError, HEADER_FIELDS, ImportIssue, ImportProblem, MAX_ROWS,
    Measure, PriceBasis, ROW_FIELDS, ResourceMapping, ResourceReason, ServiceClass, ShapeReason,
    Unit,
};

/// A field's value as read: scalar text, or something nested that no field accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Text(String),
    Nested,
}

/// One item as read, before validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawRow {
    /// 1-based item row.
    pub row: usize,
    /// 1-based line of the source text, when known.
    pub line: Option<usize>,
    pub fields: Vec<(String, Cell)>,
}

/// A catalog as read, before validation, with the problems the reader already found
/// (unknown CSV columns, items that are not tables …).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawCatalog {
    pub header: Vec<(String, Cell)>,
    pub rows: Vec<RawRow>,
    pub issues: Vec<ImportIssue>,
    /// Total item count, including items the reader could not use.
    pub row_count: usize,
}

/// Validates everything; `Ok` only when no problem was found.
pub(crate) fn validate(raw: RawCatalog) -> Result<Catalog, CatalogImportError> {
    if raw.row_count > MAX_ROWS {
        return Err(CatalogImportError {
            issues: vec![ImportIssue::file(ImportProblem::TooManyRows {
                count: raw.row_count,
                max: MAX_ROWS,
            })],
        });
    }
    let mut issues = raw.issues;
    let header = validate_header(&raw.header, &mut issues);
    // A missing or malformed `items` list is already reported; "no items" would repeat it.
    if raw.row_count == 0 && !issues.iter().any(|i| i.field.as_deref() == Some("items")) {
        issues.push(ImportIssue::file(ImportProblem::NoItems));
    }
    let mut entries = Vec::with_capacity(raw.rows.len());
    let mut first_row: BTreeMap<CatalogCode, usize> = BTreeMap::new();
    for row in &raw.rows {
        let mut ctx = RowCtx::new(row);
        if let Some(entry) = validate_row(&mut ctx) {
            match first_row.get(&entry.code) {
                Some(&first) => ctx.push(
                    "code",
                    ImportProblem::RowCodeDuplicate {
                        value: entry.code.to_string(),
                        first_row: first,
                    },
                ),
                None => {
                    first_row.insert(entry.code.clone(), row.row);
                    entries.push(entry);
                }
            }
        }
        issues.append(&mut ctx.issues);
    }
    match header {
        Some((id, name, source, price_basis, note)) if issues.is_empty() => Ok(Catalog {
            id,
            name,
            source,
            price_basis,
            note,
            entries,
        }),
        _ => Err(CatalogImportError { issues }),
    }
}

type Header = (CatalogId, Name, Option<Text>, PriceBasis, Option<Text>);

fn validate_header(fields: &[(String, Cell)], issues: &mut Vec<ImportIssue>) -> Option<Header> {
    let mut map: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, cell) in fields {
        if !HEADER_FIELDS.contains(&key.as_str()) {
            issues.push(ImportIssue::header(key, ImportProblem::HeaderFieldUnknown));
            continue;
        }
        match cell {
            Cell::Text(t) if t.trim().is_empty() => {}
            Cell::Text(t) => {
                map.insert(key.as_str(), t.as_str());
            }
            Cell::Nested => issues.push(ImportIssue::header(
                key,
                ImportProblem::HeaderFieldInvalid {
                    value: "(list or table)".to_string(),
                },
            )),
        }
    }
    let mut ok = true;
    let mut invalid = |field: &str, value: &str, issues: &mut Vec<ImportIssue>| {
        ok = false;
        issues.push(ImportIssue::header(
            field,
            ImportProblem::HeaderFieldInvalid {
                value: value.to_string(),
            },
        ));
    };
    let id = match map.get("id") {
        Some(v) => CatalogId::new(*v)
            .map_err(|_| invalid("id", v, issues))
            .ok(),
        None => {
            issues.push(ImportIssue::header("id", ImportProblem::HeaderFieldMissing));
            None
        }
    };
    let name = match map.get("name") {
        Some(v) => Name::new(v).map_err(|_| invalid("name", v, issues)).ok(),
        None => {
            issues.push(ImportIssue::header(
                "name",
                ImportProblem::HeaderFieldMissing,
            ));
            None
        }
    };
    let mut optional_text = |field: &str, issues: &mut Vec<ImportIssue>| match map.get(field) {
        Some(v) => match Text::new(v) {
            Ok(t) => Some(t),
            Err(_) => {
                invalid(field, v, issues);
                None
            }
        },
        None => None,
    };
    let source = optional_text("source", issues);
    let note = optional_text("note", issues);
    let price_basis = match map.get("price_basis") {
        Some(v) => PriceBasis::parse(v).unwrap_or_else(|| {
            invalid("price_basis", v, issues);
            PriceBasis::Agreed
        }),
        None => PriceBasis::Agreed,
    };
    match (id, name) {
        (Some(id), Some(name)) if ok => Some((id, name, source, price_basis, note)),
        _ => None,
    }
}

/// Collects one row's problems.
struct RowCtx<'a> {
    raw: &'a RawRow,
    code: Option<String>,
    values: BTreeMap<&'a str, &'a str>,
    issues: Vec<ImportIssue>,
}

impl<'a> RowCtx<'a> {
    fn new(raw: &'a RawRow) -> Self {
        let mut ctx = RowCtx {
            raw,
            code: None,
            values: BTreeMap::new(),
            issues: Vec::new(),
        };
        for (key, cell) in &raw.fields {
            if !ROW_FIELDS.contains(&key.as_str()) {
                ctx.push(key, ImportProblem::RowFieldUnknown);
                continue;
            }
            match cell {
                Cell::Text(t) => {
                    let t = t.trim();
                    if !t.is_empty() {
                        ctx.values.insert(key.as_str(), t);
                    }
                }
                Cell::Nested => ctx.push(key, ImportProblem::RowFieldType),
            }
        }
        ctx.code = ctx.values.get("code").map(|c| c.to_string());
        ctx
    }

    fn push(&mut self, field: &str, problem: ImportProblem) {
        self.issues.push(ImportIssue {
            row: Some(self.raw.row),
            line: self.raw.line,
            item_code: self.code.clone(),
            field: Some(field.to_string()),
            problem,
        });
    }

    fn get(&self, field: &str) -> Option<&'a str> {
        self.values.get(field).copied()
    }

    fn required(&mut self, field: &str) -> Option<&'a str> {
        let v = self.get(field);
        if v.is_none() {
            self.push(field, ImportProblem::RowFieldMissing);
        }
        v
    }

    fn text_error(&mut self, field: &str, error: TextError) {
        self.push(field, ImportProblem::RowTextInvalid { error });
    }

    /// `Ok(None)` when absent, `Err(())` after recording a problem.
    fn name(&mut self, field: &str) -> Result<Option<Name>, ()> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => Name::new(v)
                .map(Some)
                .map_err(|e| self.text_error(field, e)),
        }
    }

    fn text(&mut self, field: &str) -> Result<Option<Text>, ()> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => Text::new(v)
                .map(Some)
                .map_err(|e| self.text_error(field, e)),
        }
    }

    fn shape_error(&mut self, field: &str, value: &str, reason: ShapeReason) {
        self.push(
            field,
            ImportProblem::RowShapeInvalid {
                value: value.to_string(),
                reason,
            },
        );
    }

    fn resource_error(&mut self, field: &str, value: &str, reason: ResourceReason) {
        self.push(
            field,
            ImportProblem::RowResourceInvalid {
                value: value.to_string(),
                reason,
            },
        );
    }
}

/// A whole number written with digits only (no sign, no decimals).
fn parse_u32(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn parse_billing(value: &str) -> Option<BillingMode> {
    match value {
        "monthly" | "元/月" => Some(BillingMode::Monthly),
        "yearly" | "元/年" => Some(BillingMode::Yearly),
        "one_off" | "一次性" => Some(BillingMode::OneOff),
        _ => None,
    }
}

/// `Ok(None)` means "any architecture".
fn parse_arch(value: &str) -> Result<Option<ArchTag>, ()> {
    match value {
        "any" => Ok(None),
        "x86" | "X86" => Ok(Some(ArchTag::X86)),
        "xinchuang" | "信创" => Ok(Some(ArchTag::Xinchuang)),
        _ => Err(()),
    }
}

pub(crate) fn resource_kind_parse(value: &str) -> Option<ResourceKind> {
    const KINDS: [ResourceKind; 11] = [
        ResourceKind::Vm,
        ResourceKind::BareMetal,
        ResourceKind::Volume,
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::SecurityGroup,
        ResourceKind::Eip,
        ResourceKind::LoadBalancer,
        ResourceKind::WafPolicy,
        ResourceKind::BackupPolicy,
        ResourceKind::Snapshot,
    ];
    KINDS.into_iter().find(|k| k.as_str() == value)
}

const SHAPE_FIELDS: [&str; 6] = [
    "vcpu_min",
    "vcpu_max",
    "vcpu_step",
    "memory_min_gib",
    "memory_max_gib",
    "memory_step_gib",
];

/// Validates every field of one row; `None` when any problem was recorded.
fn validate_row(ctx: &mut RowCtx<'_>) -> Option<CatalogEntry> {
    let code = ctx.required("code").and_then(|v| {
        CatalogCode::new(v)
            .map_err(|_| {
                ctx.push(
                    "code",
                    ImportProblem::RowCodeInvalid {
                        value: v.to_string(),
                    },
                )
            })
            .ok()
    });

    let name = match ctx.required("name") {
        Some(v) => Name::new(v).map_err(|e| ctx.text_error("name", e)).ok(),
        None => None,
    };
    let category = ctx.name("category");
    let subcategory = ctx.name("subcategory");
    let description = ctx.text("description");
    let note = ctx.text("note");

    let unit = ctx.required("unit").and_then(|v| {
        let unit = Unit::parse(v);
        if unit.is_none() {
            ctx.push(
                "unit",
                ImportProblem::RowUnitUnknown {
                    value: v.to_string(),
                },
            );
        }
        unit
    });

    let price = match ctx.get("price") {
        None => Ok(None),
        Some(v) => Fen::from_yuan_str(v).map(Some).map_err(|_| {
            ctx.push(
                "price",
                ImportProblem::RowPriceInvalid {
                    value: v.to_string(),
                },
            )
        }),
    };

    let billing = ctx.required("billing").and_then(|v| {
        let b = parse_billing(v);
        if b.is_none() {
            ctx.push(
                "billing",
                ImportProblem::RowBillingInvalid {
                    value: v.to_string(),
                },
            );
        }
        b
    });
    // 核/年 with monthly billing would bill twelve times too much or too little.
    let mut billing_ok = true;
    if let (Some(unit), Some(billing)) = (&unit, billing)
        && let Some(period) = unit.period()
        && period != billing
    {
        billing_ok = false;
        ctx.push(
            "unit",
            ImportProblem::RowBillingMismatch {
                unit: unit.printed().to_string(),
                billing,
            },
        );
    }

    let arch = match ctx.get("arch") {
        None => Ok(None),
        Some(v) => parse_arch(v).map_err(|()| {
            ctx.push(
                "arch",
                ImportProblem::RowArchInvalid {
                    value: v.to_string(),
                },
            )
        }),
    };

    let weight = match ctx.get("weight_percent") {
        None => Ok(None),
        Some(v) => match parse_u32(v).filter(|w| *w <= 100) {
            Some(w) => Ok(Some(w)),
            None => {
                ctx.push(
                    "weight_percent",
                    ImportProblem::RowWeightInvalid {
                        value: v.to_string(),
                    },
                );
                Err(())
            }
        },
    };

    let resource = validate_resource(ctx, unit.as_ref());
    let measure = resource.as_ref().ok().map(|r| r.measure);
    let shape = validate_shape(ctx, measure);
    let ratio = validate_ratio(ctx, measure);

    Some(CatalogEntry {
        code: code?,
        category: category.ok()?,
        subcategory: subcategory.ok()?,
        name: name?,
        description: description.ok()?,
        unit: unit?,
        price: price.ok()?,
        billing: billing.filter(|_| billing_ok)?,
        arch: arch.ok()?,
        weight_percent: weight.ok()?,
        shape: shape.ok()?,
        vcpu_per_core_max: ratio.ok()?,
        resource: resource.ok()?,
        note: note.ok()?,
    })
}

fn validate_resource(ctx: &mut RowCtx<'_>, unit: Option<&Unit>) -> Result<ResourceMapping, ()> {
    let measure = match ctx.required("measure") {
        Some(v) => Measure::parse(v).ok_or_else(|| {
            ctx.resource_error("measure", v, ResourceReason::MeasureUnknown);
        }),
        None => Err(()),
    };
    let quantity = match ctx.get("quantity") {
        None => Ok(1),
        Some(v) => parse_u32(v).filter(|q| *q >= 1).ok_or_else(|| {
            ctx.resource_error("quantity", v, ResourceReason::QuantityInvalid);
        }),
    };
    let class = match ctx.get("class") {
        None => Ok(None),
        Some(v) => ServiceClass::new(v).map(Some).ok_or_else(|| {
            ctx.resource_error("class", v, ResourceReason::ClassInvalid);
        }),
    };
    let kind = match ctx.get("resource_kind") {
        None => Ok(None),
        Some(v) => resource_kind_parse(v).map(Some).ok_or_else(|| {
            ctx.resource_error("resource_kind", v, ResourceReason::KindUnknown);
        }),
    };
    let (measure, quantity, class, kind) = (measure?, quantity?, class?, kind?);
    if measure.needs_class() && class.is_none() {
        ctx.resource_error("class", "", ResourceReason::ClassMissing);
        return Err(());
    }
    // Unit `100 GB` holds 100 GiB: a quantity of 1 would under-count a hundredfold.
    if let Some(unit) = unit
        && let Some(per_base) = measure.per_unit_base(unit.base())
    {
        let expected = unit.count().checked_mul(per_base);
        if expected != Some(quantity) {
            ctx.resource_error(
                "quantity",
                &quantity.to_string(),
                ResourceReason::QuantityUnitMismatch {
                    expected: expected.unwrap_or(u32::MAX),
                },
            );
            return Err(());
        }
    }
    Ok(ResourceMapping {
        measure,
        quantity,
        class,
        kind,
    })
}

fn validate_shape(
    ctx: &mut RowCtx<'_>,
    measure: Option<Measure>,
) -> Result<Option<ShapeLimits>, ()> {
    let given: Vec<(&str, Option<&str>)> = SHAPE_FIELDS.iter().map(|f| (*f, ctx.get(f))).collect();
    if given.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    let mut numbers = [0u32; 6];
    let mut ok = true;
    for (i, (field, value)) in given.iter().enumerate() {
        match value {
            None => {
                ctx.shape_error(field, "", ShapeReason::Incomplete);
                ok = false;
            }
            Some(v) => match parse_u32(v) {
                Some(n) => numbers[i] = n,
                None => {
                    ctx.shape_error(field, v, ShapeReason::NotANumber);
                    ok = false;
                }
            },
        }
    }
    if !ok {
        return Err(());
    }
    let [vmin, vmax, vstep, mmin, mmax, mstep] = numbers;
    let range = |field: &str, ctx: &mut RowCtx<'_>, min, max, step| {
        StepRange::new(min, max, step).map_err(|_| {
            ctx.shape_error(
                field,
                &format!("{min}..={max} step {step}"),
                ShapeReason::Range,
            )
        })
    };
    let vcpu = range("vcpu_min", ctx, vmin, vmax, vstep);
    let memory = range("memory_min_gib", ctx, mmin, mmax, mstep);
    if let Some(m) = measure
        && !matches!(m, Measure::Vcpu | Measure::MemoryGib)
    {
        ctx.shape_error("vcpu_min", &vmin.to_string(), ShapeReason::NotVmItem);
        return Err(());
    }
    Ok(Some(ShapeLimits {
        vcpu: vcpu?,
        memory_gib: memory?,
    }))
}

fn validate_ratio(ctx: &mut RowCtx<'_>, measure: Option<Measure>) -> Result<Option<u32>, ()> {
    let Some(v) = ctx.get("vcpu_per_core_max") else {
        return Ok(None);
    };
    let field = "vcpu_per_core_max";
    let Some(n) = parse_u32(v) else {
        ctx.shape_error(field, v, ShapeReason::NotANumber);
        return Err(());
    };
    if n == 0 {
        ctx.shape_error(field, v, ShapeReason::RatioZero);
        return Err(());
    }
    if measure.is_some_and(|m| m != Measure::Vcpu) {
        ctx.shape_error(field, v, ShapeReason::NotVmItem);
        return Err(());
    }
    Ok(Some(n))
}
