//! Why a workflow operation was refused or failed. Each variant has a stable code
//! (API: add codes, never rename them) and a Chinese message; the `api` crate
//! alone decides the HTTP status.

use thiserror::Error;
use yunshu_domain::order::OrderError;
use yunshu_domain::{DomainError, ErrorCode};
use yunshu_store::StoreError;

#[derive(Debug, Error)]
pub enum WorkflowError {
    /// Missing, or belonging to a tenant the caller may not see (SPEC §1: probing
    /// another tenant's object gives "not found", never "forbidden").
    #[error("no information system {number}")]
    SystemNotFound { number: String },
    /// Missing, or outside the caller's scope (as above).
    #[error("no work order {id}")]
    OrderNotFound { id: String },
    /// The caller sees the object but their roles do not allow this step.
    #[error("your roles do not allow this")]
    Forbidden,
    /// Someone else changed the order between our read and our write.
    #[error("work order {id} was changed by someone else; reload it and try again")]
    OrderConflict { id: String },
    #[error("tenant {tenant} has used all 999 information-system numbers")]
    SystemNumbersExhausted { tenant: String },
    #[error("could not allocate a system number for tenant {tenant}: too much contention")]
    SystemNumberBusy { tenant: String },
    /// No preset or operator policy has this name.
    #[error("no deadline policy {name:?}")]
    PolicyUnknown { name: String },
    #[error(
        "policy {name:?} is a built-in preset and cannot be overwritten; write a policy with another name"
    )]
    PolicyPresetReadOnly { name: String },
    #[error("no alarm {id}")]
    AlarmNotFound { id: String },
    /// The system has no usage period on record yet (it starts at delivery).
    #[error("system {number} has no usage period yet")]
    UsageTermNotFound { number: String },
    /// An extension that does not extend, goes beyond the policy's period (3
    /// years, 002 art. 14), is asked for after the period ended, or comes after
    /// the system was taken offline or exited.
    #[error("the usage period of system {number} cannot be extended like this")]
    UsageExtensionRefused { number: String },
    /// A forced offline approved for a system whose period has not expired,
    /// with an extension pending, already approved, offline or exited, or
    /// under a policy without `forced_offline_after_expiry` (002 art. 14).
    #[error("system {number} cannot be forced offline now")]
    UsageOfflineRefused { number: String },
    /// A suspension (002 art. 18, 004 art. 27) of a system already suspended.
    #[error("system {number} is already suspended")]
    SystemAlreadySuspended { number: String },
    /// A resumption of a system that is not suspended.
    #[error("system {number} is not suspended")]
    SystemNotSuspended { number: String },
    #[error("no service catalog {id}")]
    CatalogNotFound { id: String },
    #[error("catalog {id:?} ships with yunshu and cannot be replaced; import it under another id")]
    CatalogBuiltInReadOnly { id: String },
    #[error(
        "work order {id} cannot be filed as an emergency change: only a change order in review, once"
    )]
    EmergencyNotAllowed { id: String },
    /// The order's policy does not allow emergency changes (no
    /// `[emergency_change]` table; seed 002 art. 12 is Yongjia's).
    #[error(
        "work order {id} cannot be filed as an emergency change: its policy {policy:?} does not allow emergency changes"
    )]
    EmergencyNotInPolicy { id: String, policy: String },
    /// A purge before the data retention is over (002 art. 13), without the
    /// explicit early decision.
    #[error(
        "the data of work order {id}'s system is kept {}: purge it earlier only by an explicit decision with a reason (POST /api/v1/orders/{id}/purge)", until.map(|d| format!("until {d}")).unwrap_or_else(|| "until its retention is over".to_owned())
    )]
    RetentionRunning {
        id: String,
        until: Option<chrono::NaiveDate>,
    },
    /// The order is not in a running test period.
    #[error("work order {id} is not in its test period")]
    TestPeriodNotRunning { id: String },
    /// The order's policy allows no extension of the test period.
    #[error("the test period of work order {id} cannot be extended under policy {policy:?}")]
    TestPeriodNotExtendable { id: String, policy: String },
    /// The new due date is not later than the current one, or beyond the
    /// policy's bound.
    #[error(
        "the test period of work order {id} can only be extended beyond {current_due} and until {latest} at the latest"
    )]
    TestPeriodExtensionRefused {
        id: String,
        current_due: chrono::NaiveDate,
        latest: chrono::NaiveDate,
    },
    /// Beyond 20 % of the approved vCPU or memory, longer than 90 days, or
    /// naming a server group the system does not have.
    #[error(
        "the temporary expansion of system {number} is refused: at most 20 % over the approved vCPU and memory, at most 90 days, existing server groups only"
    )]
    ExpansionRefused {
        number: String,
        totals: Option<super::expansion::Totals>,
    },
    /// A grant (a renewal is one) that would take the system's free expansion
    /// days within the policy's period beyond its limit ("短期内", seed 003).
    #[error(
        "the temporary expansion of system {number} cannot be renewed: {used_days} of the {max_days_in_window} free days allowed in any {window_days} days are used, {requested_days} more asked ({citation})"
    )]
    ExpansionWindowExceeded {
        number: String,
        used_days: i64,
        requested_days: i64,
        max_days_in_window: i64,
        window_days: i64,
        citation: String,
    },
    /// The order needs resource kinds its provider's driver does not offer
    /// (`GetInfo`): approving it would leave it waiting forever.
    #[error(
        "provider {provider} cannot carry out this order: its driver does not offer {}; choose another provider or drop those items",
        kinds_en(kinds)
    )]
    ProviderLacksKinds {
        provider: String,
        kinds: Vec<yunshu_domain::resource::ResourceKind>,
    },
    /// Items of the order name what the system does not have (a volume for
    /// servers it lacks, a restore from no backup, …): approved, they would
    /// never be carried out. One (English, Chinese) reason per problem.
    #[error(
        "the order's items do not fit the system: {}",
        problems.iter().map(|(en, _)| en.as_str()).collect::<Vec<_>>().join("; ")
    )]
    OrderItemsUnresolved { problems: Vec<(String, String)> },
    /// VM lines outside the order's service catalog: shape limits or
    /// architecture (003 §3.2.1.1; 000 附件1 ZW010201/ZW010203). The code is
    /// the first problem's; every problem is listed.
    #[error(
        "the order does not fit service catalog {catalog}: {}",
        issues.iter().map(|i| format!("line {} ({}): {}", i.line, i.server_name, i.message)).collect::<Vec<_>>().join("; ")
    )]
    OutsideCatalog {
        catalog: String,
        issues: Vec<super::order_catalog::LineIssue>,
    },
    /// Too many concurrent writers; nothing was written.
    #[error("too many concurrent changes; try again")]
    Busy,
    /// A refusal by the domain (state machine, validation), with its own code.
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// A maintenance window that ends before it starts.
    #[error("a maintenance window must end after it starts ({starts_at} .. {ends_at})")]
    MaintenanceEndNotAfterStart {
        starts_at: chrono::DateTime<chrono::Utc>,
        ends_at: chrono::DateTime<chrono::Utc>,
    },
    /// An emergency repair (故障抢修) without saying why it cannot wait.
    #[error("an emergency repair is exempt from the notice only with a reason")]
    MaintenanceEmergencyReasonRequired,
    /// Planned maintenance starting before the notice is over (000 art. 18,
    /// 004 art. 19: 3 working days).
    #[error(
        "planned maintenance must be announced {working_days} working days ahead ({citation}): announced now, it may start at {earliest_start} at the earliest"
    )]
    MaintenanceNoticeTooShort {
        earliest_start: chrono::DateTime<chrono::Utc>,
        working_days: u32,
        citation: String,
    },
    /// Missing, or outside what the caller may see.
    #[error("no maintenance window {id}")]
    MaintenanceNotFound { id: String },
    /// Cancelled already, or over.
    #[error("maintenance window {id} is cancelled already or over")]
    MaintenanceCancelRefused { id: String },
    #[error("store operation {op} failed")]
    Store {
        op: &'static str,
        #[source]
        source: StoreError,
    },
}

fn kinds_en(kinds: &[yunshu_domain::resource::ResourceKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl WorkflowError {
    pub(crate) fn store(op: &'static str) -> impl FnOnce(StoreError) -> WorkflowError {
        move |source| WorkflowError::Store { op, source }
    }

    pub(crate) fn invalid(e: impl Into<DomainError>) -> WorkflowError {
        WorkflowError::Invalid(e.into())
    }
}

impl ErrorCode for WorkflowError {
    fn code(&self) -> &'static str {
        match self {
            WorkflowError::SystemNotFound { .. } => "SYSTEM_NOT_FOUND",
            WorkflowError::OrderNotFound { .. } => "ORDER_NOT_FOUND",
            WorkflowError::Forbidden => "FORBIDDEN",
            WorkflowError::OrderConflict { .. } => "ORDER_CONFLICT",
            WorkflowError::SystemNumbersExhausted { .. } => "SYSTEM_NUMBERS_EXHAUSTED",
            WorkflowError::SystemNumberBusy { .. } => "SYSTEM_NUMBER_BUSY",
            WorkflowError::PolicyUnknown { .. } => "POLICY_UNKNOWN",
            WorkflowError::PolicyPresetReadOnly { .. } => "POLICY_PRESET_READONLY",
            WorkflowError::AlarmNotFound { .. } => "ALARM_NOT_FOUND",
            WorkflowError::UsageTermNotFound { .. } => "USAGE_TERM_NOT_FOUND",
            WorkflowError::UsageExtensionRefused { .. } => "USAGE_EXTENSION_REFUSED",
            WorkflowError::UsageOfflineRefused { .. } => "USAGE_OFFLINE_REFUSED",
            WorkflowError::SystemAlreadySuspended { .. } => "SYSTEM_ALREADY_SUSPENDED",
            WorkflowError::SystemNotSuspended { .. } => "SYSTEM_NOT_SUSPENDED",
            WorkflowError::CatalogNotFound { .. } => "CATALOG_NOT_FOUND",
            WorkflowError::CatalogBuiltInReadOnly { .. } => "CATALOG_BUILTIN_READONLY",
            WorkflowError::EmergencyNotAllowed { .. } => "ORDER_EMERGENCY_NOT_ALLOWED",
            WorkflowError::EmergencyNotInPolicy { .. } => "ORDER_EMERGENCY_NOT_IN_POLICY",
            WorkflowError::RetentionRunning { .. } => "ORDER_RETENTION_RUNNING",
            WorkflowError::TestPeriodNotRunning { .. } => "TEST_PERIOD_NOT_RUNNING",
            WorkflowError::TestPeriodNotExtendable { .. } => "TEST_PERIOD_NOT_EXTENDABLE",
            WorkflowError::TestPeriodExtensionRefused { .. } => "TEST_PERIOD_EXTENSION_REFUSED",
            WorkflowError::ExpansionRefused { .. } => "EXPANSION_REFUSED",
            WorkflowError::ExpansionWindowExceeded { .. } => "EXPANSION_WINDOW_EXCEEDED",
            WorkflowError::ProviderLacksKinds { .. } => "PROVIDER_KINDS_UNSUPPORTED",
            WorkflowError::OrderItemsUnresolved { .. } => "ORDER_ITEMS_UNRESOLVED",
            WorkflowError::OutsideCatalog { issues, .. } => issues
                .first()
                .map(|i| i.code)
                .unwrap_or("SHAPE_VCPU_NOT_ALLOWED"),
            WorkflowError::Busy => "BUSY",
            WorkflowError::Order(e) => e.code(),
            WorkflowError::Invalid(e) => e.code(),
            WorkflowError::MaintenanceEndNotAfterStart { .. } => "MAINTENANCE_END_NOT_AFTER_START",
            WorkflowError::MaintenanceEmergencyReasonRequired => {
                "MAINTENANCE_EMERGENCY_REASON_REQUIRED"
            }
            WorkflowError::MaintenanceNoticeTooShort { .. } => "MAINTENANCE_NOTICE_TOO_SHORT",
            WorkflowError::MaintenanceNotFound { .. } => "MAINTENANCE_NOT_FOUND",
            WorkflowError::MaintenanceCancelRefused { .. } => "MAINTENANCE_CANCEL_REFUSED",
            WorkflowError::Store { .. } => "STORE_UNAVAILABLE",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            WorkflowError::SystemNotFound { number } => format!("未找到信息系统 {number}。"),
            WorkflowError::OrderNotFound { id } => format!("未找到工单 {id}。"),
            WorkflowError::Forbidden => "您的角色无权执行此操作。".to_string(),
            WorkflowError::OrderConflict { id } => {
                format!("工单 {id} 已被他人修改，请刷新后重试。")
            }
            WorkflowError::SystemNumbersExhausted { tenant } => {
                format!("使用单位 {tenant} 的 999 个信息系统编号已全部使用。")
            }
            WorkflowError::SystemNumberBusy { tenant } => {
                format!("为使用单位 {tenant} 分配信息系统编号时冲突过多，请稍后重试。")
            }
            WorkflowError::PolicyUnknown { name } => format!("未找到时限规则“{name}”。"),
            WorkflowError::PolicyPresetReadOnly { name } => {
                format!("“{name}”是内置时限规则，不能覆盖；请以其他名称新建规则。")
            }
            WorkflowError::AlarmNotFound { id } => format!("未找到告警 {id}。"),
            WorkflowError::UsageTermNotFound { number } => {
                format!("信息系统 {number} 尚无使用期记录（交付确认后开始计算）。")
            }
            WorkflowError::UsageExtensionRefused { number } => format!(
                "信息系统 {number} 的使用期不能这样延长：新的到期日须晚于当前到期日、自今日起不超过规则规定的使用期（永嘉 002 第十四条为 3 年），且系统尚未下线或退出。"
            ),
            WorkflowError::UsageOfflineRefused { number } => format!(
                "信息系统 {number} 现在不能强制下线：须使用期已满、未申请延期、尚未批准下线、未下线或退出，且所适用的规则规定了期满强制下线（永嘉 002 第十四条）。"
            ),
            WorkflowError::SystemAlreadySuspended { number } => {
                format!("信息系统 {number} 已暂停服务，不能重复暂停。")
            }
            WorkflowError::SystemNotSuspended { number } => {
                format!("信息系统 {number} 未处于暂停服务状态，无需恢复。")
            }
            WorkflowError::CatalogNotFound { id } => format!("未找到服务目录 {id}。"),
            WorkflowError::CatalogBuiltInReadOnly { id } => {
                format!("服务目录“{id}”为系统内置，不能覆盖；请使用其他标识导入。")
            }
            WorkflowError::EmergencyNotAllowed { id } => format!(
                "工单 {id} 不能报备为应急变更：仅审核中的变更工单可以报备，且只能报备一次。"
            ),
            WorkflowError::EmergencyNotInPolicy { id, policy } => format!(
                "工单 {id} 不能报备为应急变更：其时限规则“{policy}”不允许应急变更（先行变更、后补手续）。"
            ),
            WorkflowError::RetentionRunning { id, until } => format!(
                "工单 {id} 所属信息系统的数据资源和日志{}，保留期内不清除；确需提前清除的，须由政务云管理部门明确决定并说明理由（POST /api/v1/orders/{id}/purge）。",
                until
                    .map(|d| format!("保留至 {d}"))
                    .unwrap_or_else(|| "尚在保留期内".to_owned())
            ),
            WorkflowError::TestPeriodNotRunning { id } => {
                format!("工单 {id} 不在测试期内。")
            }
            WorkflowError::TestPeriodNotExtendable { id, policy } => {
                format!("工单 {id} 的时限规则“{policy}”不允许延长测试期。")
            }
            WorkflowError::TestPeriodExtensionRefused {
                id,
                current_due,
                latest,
            } => format!("工单 {id} 的测试期只能延长至 {current_due} 之后、最迟 {latest}。"),
            WorkflowError::ExpansionRefused { number, .. } => format!(
                "信息系统 {number} 的临时扩展不予受理：免费扩展不超过已批准 vCPU 与内存的 20%，期限不超过 90 天，且只能扩展已有的服务器组。"
            ),
            WorkflowError::ExpansionWindowExceeded {
                number,
                used_days,
                requested_days,
                max_days_in_window,
                window_days,
                citation,
            } => format!(
                "信息系统 {number} 的免费临时扩展不能再续期：任意 {window_days} 天内累计不超过 {max_days_in_window} 天，已用 {used_days} 天，本次申请 {requested_days} 天（依据 {citation}）。"
            ),
            WorkflowError::ProviderLacksKinds { provider, kinds } => format!(
                "云服务商 {provider} 的驱动不提供{}，无法实施本工单；请更换云服务商或删除相应申请项。",
                kinds
                    .iter()
                    .map(|k| k.label_zh())
                    .collect::<Vec<_>>()
                    .join("、")
            ),
            WorkflowError::OrderItemsUnresolved { problems } => format!(
                "工单的申请项与信息系统不符：{}。请修改后重新提交。",
                problems
                    .iter()
                    .map(|(_, zh)| zh.as_str())
                    .collect::<Vec<_>>()
                    .join("；")
            ),
            WorkflowError::OutsideCatalog { catalog, issues } => format!(
                "工单不符合服务目录 {catalog}：{}。请修改后重新保存。",
                issues
                    .iter()
                    .map(|i| format!("第 {} 行（{}）：{}", i.line, i.server_name, i.message_zh))
                    .collect::<Vec<_>>()
                    .join("；")
            ),
            WorkflowError::Busy => "并发修改过多，请稍后重试。".to_string(),
            WorkflowError::Order(e) => e.message_zh(),
            WorkflowError::Invalid(e) => e.message_zh(),
            WorkflowError::MaintenanceEndNotAfterStart { starts_at, ends_at } => format!(
                "维护结束时间须晚于开始时间（{} 至 {}）。",
                starts_at.with_timezone(&yunshu_domain::calendar::CHINA_STANDARD_TIME),
                ends_at.with_timezone(&yunshu_domain::calendar::CHINA_STANDARD_TIME)
            ),
            WorkflowError::MaintenanceEmergencyReasonRequired => {
                "故障抢修不受提前通知时限约束，但须说明原因。".to_string()
            }
            WorkflowError::MaintenanceNoticeTooShort {
                earliest_start,
                working_days,
                citation,
            } => format!(
                "计划内维护须提前至少 {working_days} 个工作日通知使用单位（依据 {citation}）：现在发布的，最早可于 {} 开始。",
                earliest_start.with_timezone(&yunshu_domain::calendar::CHINA_STANDARD_TIME)
            ),
            WorkflowError::MaintenanceNotFound { id } => format!("未找到维护公告 {id}。"),
            WorkflowError::MaintenanceCancelRefused { id } => {
                format!("维护公告 {id} 已取消或已结束，不能取消。")
            }
            WorkflowError::Store { .. } => "数据存储暂不可用，请稍后重试。".to_string(),
        }
    }
}
