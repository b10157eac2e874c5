//! Service catalogs as data (服务目录数据): the built-in Beijing and Datong catalogs
//! and the operator import path (SPEC §2: "Data, not code … an operator can load
//! their own").
//!
//! Owns [`Catalog`] (a validated, code-unique list of [`CatalogEntry`]), the flat
//! row format shared by JSON, TOML and CSV (fields listed in [`ROW_FIELDS`],
//! documented in `data/catalog/README.md`), the pricing-unit vocabulary ([`Unit`]),
//! and the mapping from an item to what it meters ([`ResourceMapping`]).
//!
//! The built-in catalogs are embedded with `include_str!`:
//! - `data/catalog/beijing-2023.toml` — seed 003 §3.1.3, items 1001–1023, maximum
//!   unit prices per month, VM shapes 1–16 cores / 1–64 GB (003 §3.2.1.1);
//! - `data/catalog/datong-2023.toml` — seed 000 附件1, the 86 ZW-coded items, no
//!   prices (the seed's 招标价格 column is blank), VM shapes vCPU 2–64 step 2 and
//!   memory 2–512 GB step 2 (ZW010201/ZW010203).
//!
//! Import is all or nothing: [`Catalog::parse`] validates every row and returns
//! every problem at once ([`CatalogImportError`]), each with row, line, field and a
//! stable code, so an operator fixes a file in one pass.
//!
//! This module does no I/O: callers pass the uploaded text in. It does not store
//! catalogs or decide who may import one (the API does).

mod error;
mod formats;
mod rows;
#[cfg(test)]
mod tests;

use std::fmt;

pub use error::{CatalogImportError, ImportIssue, ImportProblem, ResourceReason, ShapeReason};

use crate::{
    arch::Architecture,
    catalog::{ArchTag, BillingMode, CatalogCode, CatalogItem, Fen, ShapeLimits},
    ids::CatalogId,
    resource::ResourceKind,
    text::{Name, Text},
};

/// Beijing 2023 base catalog, seed 003 §3.1.3.
const BEIJING_2023_TOML: &str = include_str!("../../data/catalog/beijing-2023.toml");
/// Datong 2023 catalog, seed 000 附件1.
const DATONG_2023_TOML: &str = include_str!("../../data/catalog/datong-2023.toml");

/// Largest uploaded text accepted, in bytes (the two built-ins are ~12 and ~40 KB).
pub const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Most items accepted in one catalog.
pub const MAX_ROWS: usize = 5_000;

/// Catalog-level fields (the header; `# key: value` lines before a CSV's column row).
pub const HEADER_FIELDS: [&str; 5] = ["id", "name", "source", "price_basis", "note"];

/// Item fields, in CSV column order. Required: `code`, `name`, `unit`, `billing`,
/// `measure`. See `data/catalog/README.md` for each field's meaning.
pub const ROW_FIELDS: [&str; 22] = [
    "code",
    "category",
    "subcategory",
    "name",
    "description",
    "unit",
    "price",
    "billing",
    "arch",
    "weight_percent",
    "vcpu_min",
    "vcpu_max",
    "vcpu_step",
    "memory_min_gib",
    "memory_max_gib",
    "memory_step_gib",
    "vcpu_per_core_max",
    "measure",
    "quantity",
    "class",
    "resource_kind",
    "note",
];

/// Text format of a catalog file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogFormat {
    Json,
    Toml,
    Csv,
}

impl CatalogFormat {
    /// Format from a file name's extension (`json`, `toml`, `csv`; any case).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "json" => Some(CatalogFormat::Json),
            "toml" => Some(CatalogFormat::Toml),
            "csv" => Some(CatalogFormat::Csv),
            _ => None,
        }
    }
}

impl fmt::Display for CatalogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatalogFormat::Json => "JSON",
            CatalogFormat::Toml => "TOML",
            CatalogFormat::Csv => "CSV",
        })
    }
}

/// What a catalog's prices are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceBasis {
    /// 最高限制单价: a ceiling for procurement (Beijing, 003 §3.1.3).
    Maximum,
    /// 招标价格: the tender price (Datong, 000 附件1).
    Tender,
    /// A price agreed with a provider (the default for operator catalogs).
    Agreed,
}

impl PriceBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceBasis::Maximum => "maximum",
            PriceBasis::Tender => "tender",
            PriceBasis::Agreed => "agreed",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "maximum" => Some(PriceBasis::Maximum),
            "tender" => Some(PriceBasis::Tender),
            "agreed" => Some(PriceBasis::Agreed),
            _ => None,
        }
    }
}

/// What one priced unit of an item counts, for metering and capacity (SPEC §4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Virtual CPUs of a VM.
    Vcpu,
    /// Memory of a VM, GiB.
    MemoryGib,
    /// Storage capacity of a class (`class` required), GiB.
    StorageGib,
    /// Backup capacity of a scope (`class` required: `local`, `remote`, …), GiB.
    BackupGib,
    /// Bandwidth, Mbps.
    BandwidthMbps,
    /// Public (Internet) IPv4 addresses.
    PublicIp,
    /// GPU memory, GiB.
    GpuMemoryGib,
    /// GPU half-precision compute, TFLOPS.
    GpuTflops,
    /// Rack units of colocation (机位, U).
    RackUnit,
    /// Instances of the item itself: a server, a load balancer, a licence, a service.
    Count,
}

impl Measure {
    pub const ALL: [Measure; 10] = [
        Measure::Vcpu,
        Measure::MemoryGib,
        Measure::StorageGib,
        Measure::BackupGib,
        Measure::BandwidthMbps,
        Measure::PublicIp,
        Measure::GpuMemoryGib,
        Measure::GpuTflops,
        Measure::RackUnit,
        Measure::Count,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Vcpu => "vcpu",
            Measure::MemoryGib => "memory_gib",
            Measure::StorageGib => "storage_gib",
            Measure::BackupGib => "backup_gib",
            Measure::BandwidthMbps => "bandwidth_mbps",
            Measure::PublicIp => "public_ip",
            Measure::GpuMemoryGib => "gpu_memory_gib",
            Measure::GpuTflops => "gpu_tflops",
            Measure::RackUnit => "rack_unit",
            Measure::Count => "count",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Measure::ALL.into_iter().find(|m| m.as_str() == value)
    }

    /// Storage and backup items must say which class they are.
    pub fn needs_class(self) -> bool {
        matches!(self, Measure::StorageGib | Measure::BackupGib)
    }

    /// How many of this measure one unit of `base` holds, when the unit is a size
    /// (`GB`, `TB`, `Mbps`, …); `None` when the unit says nothing about it.
    /// 1 TB is read as 1024 GiB, 1 Gbps as 1000 Mbps.
    fn per_unit_base(self, base: &str) -> Option<u32> {
        match self {
            Measure::MemoryGib
            | Measure::StorageGib
            | Measure::BackupGib
            | Measure::GpuMemoryGib => match base {
                "GB" | "GiB" => Some(1),
                "TB" | "TiB" => Some(1024),
                _ => None,
            },
            Measure::BandwidthMbps => match base {
                "Mb" | "Mbps" | "Mb带宽" => Some(1),
                "Gbps" => Some(1000),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage class, backup scope or product variant named by a catalog row, e.g.
/// `standard` (普通, IOPS 2000–5000), `performance` (高性能, 10000–25000; 003
/// §3.1.3 items 1011/1012), `local`/`remote` backup (items 1014/1015).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceClass(String);

impl ServiceClass {
    /// 1–40 of `a-z`, `0-9`, `_`, starting with a letter.
    pub fn new(value: &str) -> Option<Self> {
        let ok = (1..=40).contains(&value.len())
            && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| ServiceClass(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an item meters: `quantity` of `measure` per priced unit, optionally of a
/// `class`, and the resource kind a driver creates for it (none for pure services
/// such as 渗透服务, or kinds yunshu does not model yet such as VPN and SSL
/// certificates — SPEC §2 "later").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceMapping {
    pub measure: Measure,
    /// Amount of `measure` in one priced unit, e.g. 100 for unit `100 GB` (≥ 1).
    pub quantity: u32,
    pub class: Option<ServiceClass>,
    pub kind: Option<ResourceKind>,
}

/// Known pricing units once whitespace, a leading count and a `/年` or `/月`
/// period are removed. Taken from the units printed in 003 §3.1.3 (计价单位) and
/// 000 附件1 (单位), plus a few standard ones (`GiB`, `TiB`, `Gbps`, `vCPU`).
/// `元` is a flat fee (000 附件1 ZW021403 prints 元/年 as its unit).
pub const UNIT_BASES: [&str; 37] = [
    "CPU",
    "vCPU",
    "核",
    "GB",
    "GiB",
    "TB",
    "TiB",
    "Mb",
    "Mbps",
    "Gbps",
    "Mb带宽",
    "TFLOPS",
    "IP",
    "IP（内网）",
    "U",
    "个",
    "台",
    "条",
    "块",
    "套",
    "项",
    "对",
    "次",
    "张",
    "节点",
    "实例",
    "数据库实例",
    "主机",
    "账号",
    "账户",
    "业务",
    "业务数",
    "网站",
    "域名",
    "VM",
    "VM/5个",
    "元",
];

/// A pricing unit (计价单位) as printed, e.g. `100 GB`, `核/年`, `1 IP（内网）`,
/// parsed into a count, a base from [`UNIT_BASES`] and an optional period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    printed: Name,
    count: u32,
    base: &'static str,
    period: Option<BillingMode>,
}

impl Unit {
    /// Parses a printed unit; `None` when its base is not in [`UNIT_BASES`].
    /// Whitespace is ignored and ASCII parentheses count as full-width ones.
    pub fn parse(value: &str) -> Option<Unit> {
        let printed = Name::new(value).ok()?;
        let compact: String = printed
            .as_str()
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                '(' => '（',
                ')' => '）',
                c => c,
            })
            .collect();
        let (rest, period) = if let Some(r) = compact.strip_suffix("/年") {
            (r, Some(BillingMode::Yearly))
        } else if let Some(r) = compact.strip_suffix("/月") {
            (r, Some(BillingMode::Monthly))
        } else {
            (compact.as_str(), None)
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (count, rest) = if digits == 0 {
            (1, rest)
        } else {
            let count: u32 = rest[..digits].parse().ok()?;
            (count, &rest[digits..])
        };
        if count == 0 {
            return None;
        }
        let base = UNIT_BASES.into_iter().find(|b| *b == rest)?;
        Some(Unit {
            printed,
            count,
            base,
            period,
        })
    }

    /// The unit as written in the file.
    pub fn printed(&self) -> &str {
        self.printed.as_str()
    }

    /// Leading count, e.g. 100 for `100 GB`; 1 when none is written.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Base unit from [`UNIT_BASES`], e.g. `GB`.
    pub fn base(&self) -> &'static str {
        self.base
    }

    /// Billing period the unit names (`/年`, `/月`), if any.
    pub fn period(&self) -> Option<BillingMode> {
        self.period
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.printed())
    }
}

/// One validated catalog row (服务目录项). Built only by the import path, so its
/// fields agree with each other: shape limits only on `vcpu`/`memory_gib` items,
/// a class on every storage and backup item, a quantity that matches the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    code: CatalogCode,
    category: Option<Name>,
    subcategory: Option<Name>,
    name: Name,
    description: Option<Text>,
    unit: Unit,
    price: Option<Fen>,
    billing: BillingMode,
    arch: Option<ArchTag>,
    weight_percent: Option<u32>,
    shape: Option<ShapeLimits>,
    vcpu_per_core_max: Option<u32>,
    resource: ResourceMapping,
    note: Option<Text>,
}

impl CatalogEntry {
    pub fn code(&self) -> &CatalogCode {
        &self.code
    }
    /// First-level category (一级目录 / 服务类别).
    pub fn category(&self) -> Option<&Name> {
        self.category.as_ref()
    }
    /// Second-level category (二级目录 / 服务子类).
    pub fn subcategory(&self) -> Option<&Name> {
        self.subcategory.as_ref()
    }
    pub fn name(&self) -> &Name {
        &self.name
    }
    /// The seed's item text (服务项 / 服务说明), verbatim.
    pub fn description(&self) -> Option<&Text> {
        self.description.as_ref()
    }
    pub fn unit(&self) -> &Unit {
        &self.unit
    }
    /// Unit price; `None` when the source gives none (Datong's blank 招标价格).
    pub fn price(&self) -> Option<Fen> {
        self.price
    }
    pub fn billing(&self) -> BillingMode {
        self.billing
    }
    /// `None`: any architecture (Beijing's "包含 X86、ARM、C86", Datong's blank 备注).
    pub fn arch(&self) -> Option<ArchTag> {
        self.arch
    }
    /// Scoring weight in percent (Beijing's 权值 column).
    pub fn weight_percent(&self) -> Option<u32> {
        self.weight_percent
    }
    /// VM shape limits, on vCPU and memory items.
    pub fn shape(&self) -> Option<&ShapeLimits> {
        self.shape.as_ref()
    }
    /// Most vCPUs per physical core, e.g. 4 for "物理 CPU/虚拟 CPU ≥1/4" (003 §3.1.3
    /// item 1001).
    pub fn vcpu_per_core_max(&self) -> Option<u32> {
        self.vcpu_per_core_max
    }
    pub fn resource(&self) -> &ResourceMapping {
        &self.resource
    }
    /// How the row was transcribed, e.g. the seed's wording of an OCR-garbled cell.
    pub fn note(&self) -> Option<&Text> {
        self.note.as_ref()
    }

    /// Checks a requested VM shape against this item's limits; items without
    /// limits accept any shape. Errors: `SHAPE_VCPU_NOT_ALLOWED`,
    /// `SHAPE_MEMORY_NOT_ALLOWED`.
    pub fn check_shape(
        &self,
        vcpu: u32,
        memory_gib: u32,
    ) -> Result<(), crate::catalog::CatalogError> {
        match &self.shape {
            Some(limits) => limits.check_shape(vcpu, memory_gib),
            None => Ok(()),
        }
    }

    /// Price of `units` priced units over `periods` billing periods (SPEC §6:
    /// unit price × quantity × time). `None` when unpriced or on overflow.
    pub fn charge(&self, units: u64, periods: u64) -> Option<Fen> {
        self.price?.checked_mul(units)?.checked_mul(periods)
    }

    /// This row as a [`CatalogItem`] of catalog `catalog`; `None` when unpriced.
    pub fn to_item(&self, catalog: &CatalogId) -> Option<CatalogItem> {
        Some(CatalogItem {
            catalog: catalog.clone(),
            code: self.code.clone(),
            name: self.name.clone(),
            unit: self.unit.printed.clone(),
            price: self.price?,
            billing: self.billing,
            arch: self.arch,
            shape: self.shape,
            description: self.description.clone(),
        })
    }
}

/// A validated service catalog: header plus entries in file order, codes unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    id: CatalogId,
    name: Name,
    source: Option<Text>,
    price_basis: PriceBasis,
    note: Option<Text>,
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// Beijing municipal base catalog 2023: items 1001–1023 with maximum unit
    /// prices per month (seed 003 §3.1.3).
    pub fn beijing_2023() -> Catalog {
        Catalog::from_toml(BEIJING_2023_TOML)
            .expect("embedded data/catalog/beijing-2023.toml is validated by the tests")
    }

    /// Datong catalog 2023: the 86 ZW-coded items of seed 000 附件1, unpriced.
    pub fn datong_2023() -> Catalog {
        Catalog::from_toml(DATONG_2023_TOML)
            .expect("embedded data/catalog/datong-2023.toml is validated by the tests")
    }

    /// Parses and validates a catalog in `format`. All or nothing: on any problem
    /// returns every problem found (`CATALOG_IMPORT_INVALID` wrapping one
    /// [`ImportIssue`] per problem) and no catalog.
    pub fn parse(format: CatalogFormat, text: &str) -> Result<Catalog, CatalogImportError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(CatalogImportError {
                issues: vec![ImportIssue::file(ImportProblem::TooLarge {
                    len: text.len(),
                    max: MAX_TEXT_BYTES,
                })],
            });
        }
        let raw = match format {
            CatalogFormat::Json => formats::read_json(text),
            CatalogFormat::Toml => formats::read_toml(text),
            CatalogFormat::Csv => formats::read_csv(text),
        }
        .map_err(|issue| CatalogImportError {
            issues: vec![issue],
        })?;
        rows::validate(raw)
    }

    /// `{"id": …, "name": …, "items": [{"code": …}, …]}`; see [`Catalog::parse`].
    pub fn from_json(text: &str) -> Result<Catalog, CatalogImportError> {
        Catalog::parse(CatalogFormat::Json, text)
    }

    /// Header keys at top level and one `[[items]]` table per item; see [`Catalog::parse`].
    pub fn from_toml(text: &str) -> Result<Catalog, CatalogImportError> {
        Catalog::parse(CatalogFormat::Toml, text)
    }

    /// Optional `# key: value` header lines, then a header row naming columns from
    /// [`ROW_FIELDS`] (any order, any subset that includes the required ones), then
    /// one row per item; see [`Catalog::parse`].
    pub fn from_csv(text: &str) -> Result<Catalog, CatalogImportError> {
        Catalog::parse(CatalogFormat::Csv, text)
    }

    /// Writes the catalog in `format`; parsing the result gives an equal catalog
    /// (CSV header values lose line breaks).
    pub fn write(&self, format: CatalogFormat) -> String {
        match format {
            CatalogFormat::Json => formats::write_json(self),
            CatalogFormat::Toml => formats::write_toml(self),
            CatalogFormat::Csv => formats::write_csv(self),
        }
    }

    pub fn id(&self) -> &CatalogId {
        &self.id
    }
    pub fn name(&self) -> &Name {
        &self.name
    }
    /// Where the catalog comes from (seed file and section for the built-ins).
    pub fn source(&self) -> Option<&Text> {
        self.source.as_ref()
    }
    pub fn price_basis(&self) -> PriceBasis {
        self.price_basis
    }
    pub fn note(&self) -> Option<&Text> {
        self.note.as_ref()
    }
    /// Entries in file order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Always false for a parsed catalog (`CATALOG_EMPTY` refuses empty files).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry with code `code`, if any.
    pub fn get(&self, code: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.code.as_str() == code)
    }

    /// VM shape limits for `arch`: those of the first vCPU item that carries
    /// limits and whose tag admits `arch` (SPEC §4 "shape limits are catalog data").
    pub fn vm_shape(&self, arch: Architecture) -> Option<ShapeLimits> {
        self.entries
            .iter()
            .filter(|e| e.resource.measure == Measure::Vcpu)
            .filter(|e| e.arch.is_none_or(|tag| tag.admits(arch)))
            .find_map(|e| e.shape)
    }

    /// What this catalog refuses in one VM of `arch` with `vcpu` and
    /// `memory_gib`, every problem at once (seed 003 §3.2.1.1 性能范围 1–16 核 /
    /// 1–64 GB for Beijing; seed 000 附件1 ZW010201/ZW010203 steps of 2 for
    /// Datong):
    /// - `CATALOG_ARCH_MISMATCH` when the catalog has vCPU items but none whose
    ///   architecture tag admits `arch` (an x86_64 server under a catalog whose
    ///   compute is only 信创, 000 附件1 备注);
    /// - `SHAPE_VCPU_NOT_ALLOWED` and `SHAPE_MEMORY_NOT_ALLOWED`, each checked on
    ///   its own, against [`Catalog::vm_shape`] for `arch`.
    ///
    /// A catalog without vCPU items or shape limits says nothing: empty.
    pub fn check_vm(
        &self,
        arch: Architecture,
        vcpu: u32,
        memory_gib: u32,
    ) -> Vec<crate::catalog::CatalogError> {
        use crate::catalog::CatalogError;
        let vcpu_items: Vec<&CatalogEntry> = self
            .entries
            .iter()
            .filter(|e| e.resource.measure == Measure::Vcpu)
            .collect();
        let admitted = vcpu_items
            .iter()
            .any(|e| e.arch.is_none_or(|tag| tag.admits(arch)));
        if !admitted {
            return vcpu_items
                .iter()
                .find_map(|e| {
                    e.arch.map(|tag| CatalogError::ArchMismatch {
                        code: e.code.to_string(),
                        tag,
                        arch,
                    })
                })
                .into_iter()
                .collect();
        }
        let Some(limits) = self.vm_shape(arch) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let r = limits.vcpu;
        if !r.admits(vcpu) {
            problems.push(CatalogError::ShapeVcpu {
                value: vcpu,
                min: r.min(),
                max: r.max(),
                step: r.step(),
            });
        }
        let r = limits.memory_gib;
        if !r.admits(memory_gib) {
            problems.push(CatalogError::ShapeMemory {
                value: memory_gib,
                min: r.min(),
                max: r.max(),
                step: r.step(),
            });
        }
        problems
    }

    /// Rows of this catalog priced above `ceiling`'s published maximum unit
    /// prices (seed 003 §3.1.3 各服务项最高限制单价; 注: a response above it is
    /// invalid), one `CATALOG_ROW_PRICE_ABOVE_MAXIMUM` issue per row. Only when
    /// `ceiling`'s basis is [`PriceBasis::Maximum`]. A row is compared with the
    /// ceiling's row of the same code, or else with the one ceiling row of the
    /// same measure and class; per unit of the measure and per month (a yearly
    /// price is twelve months). One-off prices and rows without a counterpart
    /// are not compared.
    pub fn above_maximum(&self, ceiling: &Catalog) -> Vec<ImportIssue> {
        if ceiling.price_basis != PriceBasis::Maximum {
            return Vec::new();
        }
        let months = |b: BillingMode| match b {
            BillingMode::Monthly => Some(1u128),
            BillingMode::Yearly => Some(12),
            BillingMode::OneOff => None,
        };
        let mut issues = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(price) = e.price else { continue };
            let counterpart = ceiling.get(e.code.as_str()).or_else(|| {
                let same: Vec<&CatalogEntry> = ceiling
                    .entries
                    .iter()
                    .filter(|c| {
                        c.resource.measure == e.resource.measure
                            && c.resource.class == e.resource.class
                            && (c.resource.measure != Measure::Count || c.resource.class.is_some())
                    })
                    .collect();
                match same.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                }
            });
            let Some(max) = counterpart else { continue };
            let (Some(max_price), Some(m_e), Some(m_c)) =
                (max.price, months(e.billing), months(max.billing))
            else {
                continue;
            };
            // price / (quantity × months) > max / (max quantity × max months),
            // cross-multiplied in u128 so nothing rounds or overflows.
            let lhs = u128::from(price.0) * u128::from(max.resource.quantity) * m_c;
            let rhs = u128::from(max_price.0) * u128::from(e.resource.quantity) * m_e;
            if lhs > rhs {
                issues.push(ImportIssue {
                    row: Some(i + 1),
                    line: None,
                    item_code: Some(e.code.to_string()),
                    field: Some("price".to_string()),
                    problem: ImportProblem::RowPriceAboveMaximum {
                        price,
                        maximum: max_price,
                        maximum_code: format!("{} ({})", max.code, ceiling.id),
                    },
                });
            }
        }
        issues
    }

    /// The priced entries as [`CatalogItem`]s.
    pub fn items(&self) -> Vec<CatalogItem> {
        self.entries
            .iter()
            .filter_map(|e| e.to_item(&self.id))
            .collect()
    }
}
