//! The order's service catalog, applied by the server at save and submission
//! (issue 17), not only by the portal's form: every VM line must fit the
//! catalog's shape limits and name an architecture one of its compute items
//! offers.
//!
//! Rules (seed file + article):
//! - Beijing base catalog: 1–16 vCPU, 1–64 GB per VM (003 §3.2.1.1 性能范围,
//!   catalog items 1001/1002, 003 §3.1.3);
//! - Datong catalog: vCPU 2–64 in steps of 2, memory 2–512 GB in steps of 2 GB
//!   (000 附件1 ZW010201/ZW010202/ZW010203);
//! - 信创: a catalog whose compute items are all tagged 信创 (000 附件1 备注)
//!   offers no x86_64 server (`CATALOG_ARCH_MISMATCH`); a system whose using
//!   unit requires 信创 (003 §2.1.1 信创改造需求, §3.2.1.1 一云多芯) gets no
//!   x86_64 server, VM or bare metal (`XINCHUANG_ARCH_REQUIRED`): a line's
//!   architecture picks its pool, so its servers are placed only on arm64 or
//!   c86 pools.
//!
//! The catalog of an order is the one it is billed from ([`catalog_for_policy`]):
//! Datong's under Datong's rules, Beijing's base catalog otherwise (the other
//! presets publish none). Bare-metal lines ask for a host model, not a VM
//! shape, and are not checked here.

use serde::Serialize;
use yunshu_domain::ErrorCode;
use yunshu_domain::SystemNumber;
use yunshu_domain::catalog_data::Catalog;
use yunshu_domain::order::OrderRequest;
use yunshu_domain::order_line::ServerForm;
use yunshu_domain::system::InformationSystem;
use yunshu_store::{Store, records};

use super::WorkflowError;
use super::deadline::PolicyName;

/// The catalog whose rules an order under `policy` follows and is billed from.
pub fn catalog_for_policy(policy: &PolicyName) -> Catalog {
    if policy.as_str() == "datong" {
        Catalog::datong_2023()
    } else {
        Catalog::beijing_2023()
    }
}

/// One problem of one line of an order under its catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineIssue {
    /// 1-based line of the order's `lines`.
    pub line: usize,
    pub server_name: String,
    /// `architecture`, `vcpu` or `memory_gib`.
    pub field: &'static str,
    /// `CATALOG_ARCH_MISMATCH`, `SHAPE_VCPU_NOT_ALLOWED` or
    /// `SHAPE_MEMORY_NOT_ALLOWED` (the domain's codes).
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

/// Every problem of `request`'s server lines under `catalog`, and for a
/// system that requires 信创 (`xinchuang`); empty when all fit.
pub fn issues(catalog: &Catalog, xinchuang: bool, request: &OrderRequest) -> Vec<LineIssue> {
    use yunshu_domain::catalog::CatalogError;
    let mut out = Vec::new();
    for (i, line) in request.lines.iter().enumerate() {
        let s = line.server();
        if xinchuang && !s.architecture.is_domestic() {
            out.push(LineIssue {
                line: i + 1,
                server_name: s.server_name.to_string(),
                field: "architecture",
                code: "XINCHUANG_ARCH_REQUIRED",
                message: format!(
                    "the system requires 信创 (domestic chips): {} is not allowed, only arm64 (Kunpeng, Phytium) or c86 (Hygon) (003 §2.1.1, §3.2.1.1)",
                    s.architecture
                ),
                message_zh: format!(
                    "该信息系统要求信创：不能使用 {} 架构，仅限 arm64（鲲鹏、飞腾）或 c86（海光）（003 §2.1.1、§3.2.1.1）",
                    s.architecture
                ),
            });
            continue;
        }
        if s.form != ServerForm::Vm {
            continue;
        }
        for e in catalog.check_vm(s.architecture, s.vcpu.get(), s.memory_gib.get()) {
            let field = match e {
                CatalogError::ShapeVcpu { .. } => "vcpu",
                CatalogError::ShapeMemory { .. } => "memory_gib",
                _ => "architecture",
            };
            out.push(LineIssue {
                line: i + 1,
                server_name: s.server_name.to_string(),
                field,
                code: e.code(),
                message: e.to_string(),
                message_zh: e.message_zh(),
            });
        }
    }
    out
}

/// Refuses `request`, an order of `system`, when any server line is outside
/// the catalog of `policy` or the system's 信创 requirement
/// (`SHAPE_VCPU_NOT_ALLOWED`, `SHAPE_MEMORY_NOT_ALLOWED`,
/// `CATALOG_ARCH_MISMATCH`, `XINCHUANG_ARCH_REQUIRED`: the first problem's
/// code; every problem in the error). A system not found has no requirement
/// (the caller has already refused it where that matters).
pub async fn check(
    store: &dyn Store,
    policy: &PolicyName,
    system: &SystemNumber,
    request: &OrderRequest,
) -> Result<(), WorkflowError> {
    let xinchuang = records::get::<InformationSystem>(store, &system.to_string())
        .await
        .map_err(WorkflowError::store("system read"))?
        .is_some_and(|(s, _)| s.xinchuang);
    let catalog = catalog_for_policy(policy);
    let issues = issues(&catalog, xinchuang, request);
    if issues.is_empty() {
        return Ok(());
    }
    Err(WorkflowError::OutsideCatalog {
        catalog: catalog.id().to_string(),
        issues,
    })
}
