//! Deadline policies (时限规则): how long each work-order step may take, as data.
//!
//! Owns the step vocabulary ([`Step`]), the three presets of SPEC §3 (Datong,
//! Yongjia, Beijing; `data/policies/*.toml`), validation of operator-written
//! policies, and turning a step's start into a [`Deadline`]. It does not decide
//! when a step starts or ends — the workflow passes those instants in — and it
//! does not raise alarms.

use std::{collections::BTreeMap, fmt, str::FromStr};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{CHINA_STANDARD_TIME, Calendar, CalendarError, end_of_day, local_date};
use crate::error::ErrorCode;

const DATONG: &str = include_str!("../../data/policies/datong.toml");
const YONGJIA: &str = include_str!("../../data/policies/yongjia.toml");
const BEIJING: &str = include_str!("../../data/policies/beijing.toml");

/// Largest accepted amount in any unit: beyond every real rule, and small enough
/// that no date arithmetic overflows.
const AMOUNT_MAX: i64 = 9999;

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("policy file is not valid TOML for this format: {message}")]
    Parse { message: String },
    #[error("policy name {value:?} must be 1-32 lower-case ASCII letters, digits, '_' or '-'")]
    NameInvalid { value: String },
    #[error("policy {name:?} must have a title")]
    TitleMissing { name: String },
    #[error("unknown step {value:?}")]
    StepUnknown { value: String },
    #[error("step {step}: unknown unit {value:?} (working_days, natural_days, months, years)")]
    UnitUnknown { step: String, value: String },
    #[error("step {step}: amount {value} must be 1..=9999")]
    AmountInvalid { step: String, value: i64 },
    #[error("step {step} must cite the rule it comes from")]
    SourceMissing { step: String },
    #[error(
        "temporary_expansion: need 1 <= max_days_per_grant <= max_days_in_window <= window_days <= 3660 (got {max_days_per_grant}, {max_days_in_window}, {window_days})"
    )]
    ExpansionRuleInvalid {
        max_days_per_grant: i64,
        max_days_in_window: i64,
        window_days: i64,
    },
    #[error("step {step}: {field} = {value:?} is not allowed here ({allowed})")]
    StepOptionInvalid {
        step: String,
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
}

impl ErrorCode for PolicyError {
    fn code(&self) -> &'static str {
        match self {
            PolicyError::Parse { .. } => "POLICY_PARSE_FAILED",
            PolicyError::NameInvalid { .. } => "POLICY_NAME_INVALID",
            PolicyError::TitleMissing { .. } => "POLICY_TITLE_MISSING",
            PolicyError::StepUnknown { .. } => "POLICY_STEP_UNKNOWN",
            PolicyError::UnitUnknown { .. } => "POLICY_UNIT_UNKNOWN",
            PolicyError::AmountInvalid { .. } => "POLICY_AMOUNT_INVALID",
            PolicyError::SourceMissing { .. } => "POLICY_SOURCE_MISSING",
            PolicyError::ExpansionRuleInvalid { .. } => "POLICY_EXPANSION_RULE_INVALID",
            PolicyError::StepOptionInvalid { .. } => "POLICY_STEP_OPTION_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            PolicyError::Parse { message } => format!("时限规则格式错误：{message}"),
            PolicyError::NameInvalid { value } => {
                format!("时限规则标识“{value}”无效：应为 1–32 位小写字母、数字、下划线或连字符")
            }
            PolicyError::TitleMissing { name } => format!("时限规则“{name}”缺少标题"),
            PolicyError::StepUnknown { value } => format!("未知的环节“{value}”"),
            PolicyError::UnitUnknown { step, value } => format!(
                "环节“{step}”的单位“{value}”无效：应为 working_days（工作日）、natural_days（自然日）、months（月）或 years（年）"
            ),
            PolicyError::AmountInvalid { step, value } => {
                format!("环节“{step}”的时限 {value} 无效：应为 1–{AMOUNT_MAX}")
            }
            PolicyError::SourceMissing { step } => {
                format!("环节“{step}”须注明依据（文件及条款）")
            }
            PolicyError::ExpansionRuleInvalid {
                max_days_per_grant,
                max_days_in_window,
                window_days,
            } => format!(
                "临时扩展规则无效：须 1 ≤ 单次天数（{max_days_per_grant}）≤ 期间内累计天数（{max_days_in_window}）≤ 统计期间天数（{window_days}）≤ 3660"
            ),
            PolicyError::StepOptionInvalid {
                step,
                field,
                value,
                allowed,
            } => format!("环节“{step}”的 {field} = “{value}”不允许（{allowed}）"),
        }
    }
}

/// A work-order step that a policy may limit. The snake_case names are stable:
/// they appear in policy files and the API. Each variant's doc says which event
/// `started_at` is when asking for its [`Deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Accept or refuse an application (受理或不予受理). From: submission.
    AcceptOrRefuse,
    /// Give the review opinion (审核意见). From: acceptance.
    ReviewOpinion,
    /// Provide resources — or Yongjia's test environment — after approval
    /// (开通云资源 / 提供测试环境). From: approval reaching the provider.
    ProvisionAfterApproval,
    /// Migrate and test (迁移部署和测试 / 测试时间). From: delivery confirmation
    /// (Datong) or the test environment being ready (Yongjia).
    TestPeriod,
    /// Platform configuration for go-live (上线配置, Beijing work order part 2).
    /// From: the go-live work order reaching the provider.
    GoLiveConfiguration,
    /// Review a change application (变更审核). From: submission.
    ChangeReview,
    /// Carry out an approved change (完成变更). From: approval.
    ChangeExecute,
    /// Review an exit application (终止/退出审核). From: submission.
    ExitReview,
    /// Stop the service and reclaim resources (收回资源/终止服务). From: approval.
    ExitReclaim,
    /// Keep data and logs after exit (数据和日志保留). From: service stopped. The
    /// due date is the last day the data must still be kept.
    DataRetention,
    /// Usage period of resources (资源使用期). From: delivery confirmation. The
    /// due date is the expiry day.
    UsagePeriod,
    /// Notify before the usage period expires (期满前通知). Counts **back** from
    /// the expiry: pass the usage period's expiry instant (its
    /// [`Deadline::due_at`]) as `started_at`.
    UsageRenewalNotice,
    /// Forced offline and backup after expiry without renewal (强制下线). From:
    /// the management unit's approval.
    ForcedOfflineAfterExpiry,
    /// Keep backups after a forced offline (备份数据保留). From: offline done.
    OfflineBackupRetention,
    /// Automatic renewal of the service agreement (协议自动续期). From: the
    /// agreement's expiry; the due date is the end of the renewed term.
    AgreementRenewal,
    /// Announce planned maintenance ahead (计划内维护提前通知, 000 art. 18,
    /// 004 art. 19). From: the announcement; the maintenance may start at the
    /// earliest at the step's [`Deadline::due_at`] (the end of the last
    /// notice day), so the notice days are whole days the tenants have.
    MaintenanceNotice,
}

impl Step {
    pub const ALL: [Step; 16] = [
        Step::AcceptOrRefuse,
        Step::ReviewOpinion,
        Step::ProvisionAfterApproval,
        Step::TestPeriod,
        Step::GoLiveConfiguration,
        Step::ChangeReview,
        Step::ChangeExecute,
        Step::ExitReview,
        Step::ExitReclaim,
        Step::DataRetention,
        Step::UsagePeriod,
        Step::UsageRenewalNotice,
        Step::ForcedOfflineAfterExpiry,
        Step::OfflineBackupRetention,
        Step::AgreementRenewal,
        Step::MaintenanceNotice,
    ];

    /// Stable snake_case name, as in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::AcceptOrRefuse => "accept_or_refuse",
            Step::ReviewOpinion => "review_opinion",
            Step::ProvisionAfterApproval => "provision_after_approval",
            Step::TestPeriod => "test_period",
            Step::GoLiveConfiguration => "go_live_configuration",
            Step::ChangeReview => "change_review",
            Step::ChangeExecute => "change_execute",
            Step::ExitReview => "exit_review",
            Step::ExitReclaim => "exit_reclaim",
            Step::DataRetention => "data_retention",
            Step::UsagePeriod => "usage_period",
            Step::UsageRenewalNotice => "usage_renewal_notice",
            Step::ForcedOfflineAfterExpiry => "forced_offline_after_expiry",
            Step::OfflineBackupRetention => "offline_backup_retention",
            Step::AgreementRenewal => "agreement_renewal",
            Step::MaintenanceNotice => "maintenance_notice",
        }
    }

    /// Chinese name for the portal.
    pub fn name_zh(self) -> &'static str {
        match self {
            Step::AcceptOrRefuse => "受理",
            Step::ReviewOpinion => "审核意见",
            Step::ProvisionAfterApproval => "审核通过后开通资源",
            Step::TestPeriod => "迁移测试期",
            Step::GoLiveConfiguration => "上线配置",
            Step::ChangeReview => "变更审核",
            Step::ChangeExecute => "变更实施",
            Step::ExitReview => "退出审核",
            Step::ExitReclaim => "资源回收",
            Step::DataRetention => "数据保留期",
            Step::UsagePeriod => "资源使用期",
            Step::UsageRenewalNotice => "期满前通知",
            Step::ForcedOfflineAfterExpiry => "期满强制下线",
            Step::OfflineBackupRetention => "下线备份保留期",
            Step::AgreementRenewal => "协议自动续期",
            Step::MaintenanceNotice => "计划维护提前通知",
        }
    }

    /// Whether the limit is counted back from `started_at` (a deadline before
    /// an event) rather than forward.
    pub fn counts_backward(self) -> bool {
        matches!(self, Step::UsageRenewalNotice)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Step {
    type Err = PolicyError;

    /// Errors: `POLICY_STEP_UNKNOWN`.
    fn from_str(s: &str) -> Result<Step, PolicyError> {
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| PolicyError::StepUnknown {
                value: s.to_string(),
            })
    }
}

/// The unit a limit is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Working days (工作日) per the [`Calendar`].
    WorkingDays,
    /// Natural days (自然日, "天"); holidays count.
    NaturalDays,
    Months,
    Years,
}

impl Unit {
    pub const ALL: [Unit; 4] = [
        Unit::WorkingDays,
        Unit::NaturalDays,
        Unit::Months,
        Unit::Years,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::WorkingDays => "working_days",
            Unit::NaturalDays => "natural_days",
            Unit::Months => "months",
            Unit::Years => "years",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated length of time: `amount` (1..=9999) of `unit`. Deserializing
/// runs the same check as [`Period::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PeriodWire")]
pub struct Period {
    amount: u32,
    unit: Unit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodWire {
    amount: i64,
    unit: Unit,
}

impl TryFrom<PeriodWire> for Period {
    type Error = PolicyError;

    fn try_from(wire: PeriodWire) -> Result<Period, PolicyError> {
        Period::checked("-", wire.amount, wire.unit)
    }
}

impl Period {
    /// Errors: `POLICY_AMOUNT_INVALID` (the step is named `"-"` in the error).
    pub fn new(amount: u32, unit: Unit) -> Result<Period, PolicyError> {
        Period::checked("-", i64::from(amount), unit)
    }

    fn checked(step: &str, amount: i64, unit: Unit) -> Result<Period, PolicyError> {
        match u32::try_from(amount) {
            Ok(a) if (1..=AMOUNT_MAX).contains(&amount) => Ok(Period { amount: a, unit }),
            _ => Err(PolicyError::AmountInvalid {
                step: step.to_string(),
                value: amount,
            }),
        }
    }

    pub fn amount(self) -> u32 {
        self.amount
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    /// The last day of this period counted from `from` (not itself counted),
    /// forward or — for [`Step::counts_backward`] steps — backward.
    fn last_day(
        self,
        from: NaiveDate,
        backward: bool,
        calendar: &Calendar,
    ) -> Result<NaiveDate, CalendarError> {
        let n = self.amount;
        match (self.unit, backward) {
            (Unit::WorkingDays, false) => calendar.add_working_days(from, n),
            (Unit::WorkingDays, true) => calendar.sub_working_days(from, n),
            (Unit::NaturalDays, false) => calendar.add_natural_days(from, n),
            (Unit::NaturalDays, true) => calendar.sub_natural_days(from, n),
            (Unit::Months, false) => calendar.add_months(from, n),
            (Unit::Months, true) => calendar.sub_months(from, n),
            (Unit::Years, _) => {
                let months = n.checked_mul(12).ok_or(CalendarError::DateOutOfRange)?;
                if backward {
                    calendar.sub_months(from, months)
                } else {
                    calendar.add_months(from, months)
                }
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit)
    }
}

/// One step's limit in a policy, with the rule it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRule {
    #[serde(flatten)]
    period: Period,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// Test period only: the event its clock starts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    starts: Option<TestPeriodStart>,
    /// Test period only: how far, in the step's unit counted on from the
    /// original due date, an approved extension may move it; `None`: the
    /// policy allows no extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    extension_max: Option<u32>,
}

/// The event a policy's test period (迁移测试期) counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestPeriodStart {
    /// Delivery confirmation (交付确认, 000 art. 14): the default.
    Delivered,
    /// The provider providing the test environment (提供测试环境, 002 art. 10).
    TestEnvReady,
}

/// A policy's permission to file emergency changes (应急变更: change first,
/// paperwork after), with the rule it comes from. Absent: not allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyRule {
    /// Citation, e.g. `"002 art. 12"`.
    pub source: String,
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyFile {
    source: String,
    #[serde(default)]
    note: Option<String>,
}

impl StepRule {
    pub fn period(&self) -> Period {
        self.period
    }

    /// Citation of the rule, e.g. `"002 art. 9"`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Free text for people (e.g. "extendable with approval").
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Test period: the event its clock starts from ([`TestPeriodStart::Delivered`]
    /// unless the policy says otherwise).
    pub fn starts(&self) -> TestPeriodStart {
        self.starts.unwrap_or(TestPeriodStart::Delivered)
    }

    /// Test period: how many of the step's units an approved extension may add
    /// to the original due date; `None` when the policy allows no extension.
    pub fn extension_max(&self) -> Option<u32> {
        self.extension_max
    }

    /// The latest due date an extension may set, counted `extension_max` units
    /// on from `original_due` (the day itself not counted); `Ok(None)` when the
    /// policy allows no extension.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN` for working days beyond the calendar.
    pub fn extension_limit(
        &self,
        original_due: NaiveDate,
        calendar: &Calendar,
    ) -> Result<Option<NaiveDate>, CalendarError> {
        let Some(max) = self.extension_max else {
            return Ok(None);
        };
        let period = Period {
            amount: max,
            unit: self.period.unit,
        };
        period.last_day(original_due, false, calendar).map(Some)
    }
}

/// The three deadline presets of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// 大同市政务云管理办法 2023 (seeds 000/001).
    Datong,
    /// 永嘉县政务云管理办法 2020 (seed 002).
    Yongjia,
    /// 北京市市级政务云管理办法 and service agreement (seed 004).
    Beijing,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Datong, Preset::Yongjia, Preset::Beijing];

    fn text(self) -> &'static str {
        match self {
            Preset::Datong => DATONG,
            Preset::Yongjia => YONGJIA,
            Preset::Beijing => BEIJING,
        }
    }
}

/// A deadline policy (时限规则): for each step it limits, a [`StepRule`]. Steps
/// the policy does not limit are absent. Any value is valid: names known, amounts
/// in range, every rule cited. Deserializing runs the same checks as
/// [`Policy::parse_toml`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyFile")]
pub struct Policy {
    name: String,
    title: String,
    steps: BTreeMap<Step, StepRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temporary_expansion: Option<ExpansionRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emergency_change: Option<EmergencyRule>,
}

/// How long the free temporary expansion (免费临时扩容, 20 % over the approved
/// resources) may run for one system: "短期内" (seed 003 四 4.1.2.2(3), 六 4)
/// made countable. A grant lasts at most `max_days_per_grant` days, and the
/// days of every grant (a renewal is a new grant; an expansion ended early
/// counts the days it ran) inside any `window_days`-day period ending with the
/// new grant add up to at most `max_days_in_window`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpansionRule {
    pub max_days_per_grant: i64,
    pub window_days: i64,
    pub max_days_in_window: i64,
    /// Citation of the rule, e.g. `"003 四 4.1.2.2(3)"`.
    pub source: String,
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpansionFile {
    max_days_per_grant: i64,
    window_days: i64,
    max_days_in_window: i64,
    source: String,
    #[serde(default)]
    note: Option<String>,
}

impl TryFrom<ExpansionFile> for ExpansionRule {
    type Error = PolicyError;

    fn try_from(f: ExpansionFile) -> Result<ExpansionRule, PolicyError> {
        let ordered = 1 <= f.max_days_per_grant
            && f.max_days_per_grant <= f.max_days_in_window
            && f.max_days_in_window <= f.window_days
            && f.window_days <= 3660;
        if !ordered {
            return Err(PolicyError::ExpansionRuleInvalid {
                max_days_per_grant: f.max_days_per_grant,
                max_days_in_window: f.max_days_in_window,
                window_days: f.window_days,
            });
        }
        let source = f.source.trim().to_string();
        if source.is_empty() {
            return Err(PolicyError::SourceMissing {
                step: "temporary_expansion".into(),
            });
        }
        Ok(ExpansionRule {
            max_days_per_grant: f.max_days_per_grant,
            window_days: f.window_days,
            max_days_in_window: f.max_days_in_window,
            source,
            note: f
                .note
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
        })
    }
}

/// The file format (see `data/policies/datong.toml`); names and units are read
/// as strings so that an unknown one gets its own error code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    title: String,
    #[serde(default)]
    steps: BTreeMap<String, StepFile>,
    #[serde(default)]
    temporary_expansion: Option<ExpansionFile>,
    #[serde(default)]
    emergency_change: Option<EmergencyFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    amount: i64,
    unit: String,
    source: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    starts: Option<String>,
    #[serde(default)]
    extension_max: Option<i64>,
}

impl TryFrom<PolicyFile> for Policy {
    type Error = PolicyError;

    fn try_from(file: PolicyFile) -> Result<Policy, PolicyError> {
        let name_ok = (1..=32).contains(&file.name.len())
            && file
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(PolicyError::NameInvalid { value: file.name });
        }
        let title = file.title.trim().to_string();
        if title.is_empty() {
            return Err(PolicyError::TitleMissing { name: file.name });
        }
        let mut steps = BTreeMap::new();
        for (key, rule) in file.steps {
            let step: Step = key.parse()?;
            let unit = Unit::ALL
                .into_iter()
                .find(|u| u.as_str() == rule.unit)
                .ok_or_else(|| PolicyError::UnitUnknown {
                    step: key.clone(),
                    value: rule.unit.clone(),
                })?;
            let period = Period::checked(&key, rule.amount, unit)?;
            let source = rule.source.trim().to_string();
            if source.is_empty() {
                return Err(PolicyError::SourceMissing { step: key });
            }
            let note = rule
                .note
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            let invalid = |field: &'static str, value: String, allowed: &'static str| {
                PolicyError::StepOptionInvalid {
                    step: key.clone(),
                    field,
                    value,
                    allowed,
                }
            };
            let starts = match (rule.starts.as_deref(), step) {
                (None, _) => None,
                (Some("delivered"), Step::TestPeriod) => Some(TestPeriodStart::Delivered),
                (Some("test_env_ready"), Step::TestPeriod) => Some(TestPeriodStart::TestEnvReady),
                (Some(other), _) => {
                    return Err(invalid(
                        "starts",
                        other.to_string(),
                        "test_period only: delivered | test_env_ready",
                    ));
                }
            };
            let extension_max = match (rule.extension_max, step) {
                (None, _) => None,
                (Some(n), Step::TestPeriod) if (1..=AMOUNT_MAX).contains(&n) => {
                    u32::try_from(n).ok()
                }
                (Some(n), _) => {
                    return Err(invalid(
                        "extension_max",
                        n.to_string(),
                        "test_period only: 1..=9999",
                    ));
                }
            };
            // Keys are unique in the map already; TOML refuses duplicate tables.
            steps.insert(
                step,
                StepRule {
                    period,
                    source,
                    note,
                    starts,
                    extension_max,
                },
            );
        }
        let temporary_expansion = file
            .temporary_expansion
            .map(ExpansionRule::try_from)
            .transpose()?;
        let emergency_change = match file.emergency_change {
            None => None,
            Some(e) => {
                let source = e.source.trim().to_string();
                if source.is_empty() {
                    return Err(PolicyError::SourceMissing {
                        step: "emergency_change".into(),
                    });
                }
                Some(EmergencyRule {
                    source,
                    note: e
                        .note
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty()),
                })
            }
        };
        Ok(Policy {
            name: file.name,
            title,
            steps,
            temporary_expansion,
            emergency_change,
        })
    }
}

impl Policy {
    /// Parses and validates a policy in the `data/policies/*.toml` format.
    ///
    /// Errors: `POLICY_PARSE_FAILED` (syntax, unknown or missing field, wrong
    /// type), `POLICY_NAME_INVALID`, `POLICY_TITLE_MISSING`,
    /// `POLICY_STEP_UNKNOWN`, `POLICY_UNIT_UNKNOWN`, `POLICY_AMOUNT_INVALID`,
    /// `POLICY_SOURCE_MISSING`.
    pub fn parse_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            message: e.to_string(),
        })?;
        Policy::try_from(file)
    }

    /// One of the built-in presets.
    pub fn preset(preset: Preset) -> Policy {
        // Every preset is parsed by the `presets_match_spec_table` test, so a
        // failure here is a build defect, not bad input.
        Policy::parse_toml(preset.text())
            .unwrap_or_else(|e| panic!("built-in policy {preset:?} is invalid: {e}"))
    }

    /// Policy id, e.g. `"yongjia"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules the policy follows, e.g. 永嘉县政务云管理办法（2020）.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The rule for `step`, or `None` if this policy sets no limit for it.
    pub fn step(&self, step: Step) -> Option<&StepRule> {
        self.steps.get(&step)
    }

    /// How long the free temporary expansion may run, when this policy says.
    pub fn temporary_expansion(&self) -> Option<&ExpansionRule> {
        self.temporary_expansion.as_ref()
    }

    /// Whether, and under which rule, this policy allows emergency changes
    /// (应急变更, 002 art. 12); `None`: it does not.
    pub fn emergency_change(&self) -> Option<&EmergencyRule> {
        self.emergency_change.as_ref()
    }

    /// The event the test period counts from under this policy.
    pub fn test_period_starts(&self) -> TestPeriodStart {
        self.step(Step::TestPeriod)
            .map_or(TestPeriodStart::Delivered, StepRule::starts)
    }

    /// Every limited step, in [`Step`] order.
    pub fn steps(&self) -> impl Iterator<Item = (Step, &StepRule)> + '_ {
        self.steps.iter().map(|(step, rule)| (*step, rule))
    }

    /// The last day of `step` counted from the day `from` (not itself counted;
    /// back from it for [`Step::counts_backward`] steps), or `Ok(None)` when
    /// this policy sets no limit for the step. For steps anchored on a day
    /// rather than an instant (the usage period's expiry, 002 art. 14).
    ///
    /// Errors: as [`Policy::deadline`].
    pub fn last_day(
        &self,
        step: Step,
        from: NaiveDate,
        calendar: &Calendar,
    ) -> Result<Option<NaiveDate>, CalendarError> {
        self.steps
            .get(&step)
            .map(|rule| rule.period.last_day(from, step.counts_backward(), calendar))
            .transpose()
    }

    /// The deadline of `step` started at `started_at`, or `Ok(None)` when this
    /// policy sets no limit for the step.
    ///
    /// The start day (China Standard Time) is not counted; the step is due by
    /// 24:00 of the last counted day (see the module docs). For
    /// [`Step::UsageRenewalNotice`], `started_at` is the expiry instant and the
    /// count runs back from the day holding the last moment before it, so an
    /// expiry at 24:00 of 10 March gives a one-month notice due on 10 February.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN` when a working-day count needs a year the
    /// calendar does not hold; `CALENDAR_DATE_OUT_OF_RANGE` never in practice.
    pub fn deadline(
        &self,
        step: Step,
        started_at: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<Option<Deadline>, CalendarError> {
        let Some(rule) = self.steps.get(&step) else {
            return Ok(None);
        };
        let backward = step.counts_backward();
        let anchor = if backward {
            // An expiry at exactly 24:00 belongs to the day that just ended.
            let last_moment = started_at
                .checked_sub_signed(TimeDelta::nanoseconds(1))
                .unwrap_or(started_at);
            local_date(last_moment)
        } else {
            local_date(started_at)
        };
        let due_date = rule.period.last_day(anchor, backward, calendar)?;
        Ok(Some(Deadline {
            step,
            started_at,
            due_date,
            period: rule.period,
            source: rule.source.clone(),
        }))
    }
}

/// When a started step is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub step: Step,
    pub started_at: DateTime<Utc>,
    /// The last day (China Standard Time) on which the step is on time.
    pub due_date: NaiveDate,
    /// The limit that produced `due_date`.
    pub period: Period,
    /// Citation of the rule, e.g. `"002 art. 9"`, for alarms and reports.
    pub source: String,
}

impl Deadline {
    /// The first overdue instant: 24:00 China Standard Time at the end of
    /// `due_date` (民法典 art. 203: a period ends at 24:00 of its last day).
    pub fn due_at(&self) -> DateTime<Utc> {
        end_of_day(self.due_date)
    }

    /// [`Deadline::due_at`] in China Standard Time, for display.
    pub fn due_at_local(&self) -> DateTime<FixedOffset> {
        self.due_at().with_timezone(&CHINA_STANDARD_TIME)
    }

    /// Whether the step is late at `now`: at or after [`Deadline::due_at`].
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        now >= self.due_at()
    }

    /// Working days left at `now`: working days after today up to and including
    /// `due_date`. 0 on the due day itself (due by tonight), negative once
    /// overdue (working days late). See [`Calendar::working_days_between`].
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN`.
    pub fn working_days_left(
        &self,
        now: DateTime<Utc>,
        calendar: &Calendar,
    ) -> Result<i64, CalendarError> {
        calendar.working_days_between(local_date(now), self.due_date)
    }

    /// Natural days left at `now`, counted like [`Deadline::working_days_left`].
    pub fn natural_days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.due_date - local_date(now)).num_days()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::calendar::CalendarYear;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    /// An instant given in China Standard Time.
    fn cst(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        CHINA_STANDARD_TIME
            .with_ymd_and_hms(y, m, day, h, min, 0)
            .single()
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    /// One helper: `step` of `preset` started at `started` is due on `due`.
    fn check(preset: Preset, step: Step, started: DateTime<Utc>, due: NaiveDate) {
        let policy = Policy::preset(preset);
        let got = policy
            .deadline(step, started, &Calendar::china())
            .expect("calendar covers it")
            .expect("preset limits this step");
        assert_eq!(got.due_date, due, "{preset:?} {step} from {started}");
        assert_eq!(got.step, step);
    }

    fn period(amount: u32, unit: Unit) -> Period {
        Period::new(amount, unit).expect("valid period")
    }

    /// The preset's steps, as (step, amount, unit, source), in Step order.
    fn table(preset: Preset) -> Vec<(Step, u32, Unit, String)> {
        Policy::preset(preset)
            .steps()
            .map(|(s, r)| {
                (
                    s,
                    r.period().amount(),
                    r.period().unit(),
                    r.source().to_string(),
                )
            })
            .collect()
    }

    fn row(step: Step, amount: u32, unit: Unit, source: &str) -> (Step, u32, Unit, String) {
        (step, amount, unit, source.to_string())
    }

    #[test]
    fn presets_match_spec_table() {
        use Step::*;
        use Unit::*;
        assert_eq!(
            table(Preset::Datong),
            vec![
                row(ProvisionAfterApproval, 2, WorkingDays, "000 art. 13"),
                row(TestPeriod, 30, WorkingDays, "000 art. 14"),
                row(ChangeExecute, 2, WorkingDays, "000 art. 15"),
                row(ExitReclaim, 2, WorkingDays, "000 art. 16"),
                row(MaintenanceNotice, 3, WorkingDays, "000 art. 18"),
            ]
        );
        assert_eq!(
            table(Preset::Yongjia),
            vec![
                row(AcceptOrRefuse, 3, WorkingDays, "002 art. 9"),
                row(ReviewOpinion, 5, WorkingDays, "002 art. 9"),
                row(ProvisionAfterApproval, 3, WorkingDays, "002 art. 10"),
                row(TestPeriod, 15, NaturalDays, "002 art. 10"),
                row(ChangeReview, 5, WorkingDays, "002 art. 12"),
                row(ChangeExecute, 3, WorkingDays, "002 art. 12"),
                row(ExitReview, 5, WorkingDays, "002 art. 13"),
                row(ExitReclaim, 3, WorkingDays, "002 art. 13"),
                row(DataRetention, 3, Months, "002 art. 13"),
                row(UsagePeriod, 3, Years, "002 art. 14"),
                row(UsageRenewalNotice, 1, Months, "002 art. 14"),
                row(ForcedOfflineAfterExpiry, 15, WorkingDays, "002 art. 14"),
                row(OfflineBackupRetention, 3, Months, "002 art. 14"),
            ]
        );
        assert_eq!(
            table(Preset::Beijing),
            vec![
                row(ProvisionAfterApproval, 3, WorkingDays, "004 art. 13"),
                row(GoLiveConfiguration, 1, WorkingDays, "004 art. 14"),
                row(AgreementRenewal, 1, Years, "004 agreement art. 5(3)"),
                row(MaintenanceNotice, 3, WorkingDays, "004 art. 19"),
            ]
        );
        for preset in Preset::ALL {
            let p = Policy::preset(preset);
            assert!(!p.title().is_empty());
            assert_eq!(serde_json::to_value(preset).expect("ser"), p.name());
        }
    }

    #[test]
    fn absent_step_has_no_deadline() {
        let beijing = Policy::preset(Preset::Beijing);
        let got = beijing.deadline(
            Step::AcceptOrRefuse,
            cst(2025, 9, 26, 10, 0),
            &Calendar::china(),
        );
        assert_eq!(got, Ok(None));
        assert!(beijing.step(Step::ChangeExecute).is_none());
    }

    #[test]
    fn yongjia_national_day_2025() {
        // Fri 26 Sep: Sat 27 off, Sun 28 make-up (1), Mon 29 (2), Tue 30 (3).
        check(
            Preset::Yongjia,
            Step::AcceptOrRefuse,
            cst(2025, 9, 26, 16, 30),
            d(2025, 9, 30),
        );
        // Tue 30 Sep: 1–8 Oct off; 9 (1), 10 (2), Sat 11 make-up (3), 13 (4), 14 (5).
        check(
            Preset::Yongjia,
            Step::ReviewOpinion,
            cst(2025, 9, 30, 9, 0),
            d(2025, 10, 14),
        );
        // The local day counts, not the UTC one: 00:30 on 27 Sep in Beijing is
        // still 26 Sep in UTC, and 27 Sep (Sat) as start day gives 28, 29, 30.
        let started = cst(2025, 9, 27, 0, 30);
        assert_eq!(started.date_naive(), d(2025, 9, 26));
        check(
            Preset::Yongjia,
            Step::AcceptOrRefuse,
            started,
            d(2025, 9, 30),
        );
        // Natural days ignore the holiday: 15 days of testing from 30 Sep.
        check(
            Preset::Yongjia,
            Step::TestPeriod,
            cst(2025, 9, 30, 9, 0),
            d(2025, 10, 15),
        );
    }

    #[test]
    fn spring_festival_2026() {
        // Beijing: provision within 3 wd of Fri 13 Feb: Sat 14 make-up (1),
        // 15–23 off, Tue 24 (2), Wed 25 (3).
        check(
            Preset::Beijing,
            Step::ProvisionAfterApproval,
            cst(2026, 2, 13, 17, 0),
            d(2026, 2, 25),
        );
        // Go-live configuration 1 wd from Fri 13 Feb: the make-up Saturday.
        check(
            Preset::Beijing,
            Step::GoLiveConfiguration,
            cst(2026, 2, 13, 17, 0),
            d(2026, 2, 14),
        );
        // Datong: 2 wd from Sat 14 Feb (make-up day; start never counts): 24, 25.
        check(
            Preset::Datong,
            Step::ProvisionAfterApproval,
            cst(2026, 2, 14, 11, 0),
            d(2026, 2, 25),
        );
    }

    #[test]
    fn overdue_and_days_left() {
        let cal = Calendar::china();
        let dl = Policy::preset(Preset::Yongjia)
            .deadline(Step::ReviewOpinion, cst(2025, 9, 30, 9, 0), &cal)
            .expect("known")
            .expect("limited");
        assert_eq!(dl.due_at(), cst(2025, 10, 15, 0, 0));
        assert_eq!(dl.due_at_local().to_rfc3339(), "2025-10-15T00:00:00+08:00");
        assert_eq!(dl.source, "002 art. 9");
        assert_eq!(dl.period, period(5, Unit::WorkingDays));
        assert!(!dl.is_overdue(cst(2025, 10, 14, 23, 59)));
        assert!(dl.is_overdue(cst(2025, 10, 15, 0, 0)));
        assert_eq!(dl.working_days_left(cst(2025, 9, 30, 18, 0), &cal), Ok(5));
        assert_eq!(dl.working_days_left(cst(2025, 10, 5, 12, 0), &cal), Ok(5));
        assert_eq!(dl.working_days_left(cst(2025, 10, 11, 12, 0), &cal), Ok(2));
        assert_eq!(dl.working_days_left(cst(2025, 10, 14, 12, 0), &cal), Ok(0));
        assert_eq!(dl.working_days_left(cst(2025, 10, 16, 8, 0), &cal), Ok(-2));
        assert_eq!(dl.natural_days_left(cst(2025, 10, 5, 12, 0)), 9);

        let json = serde_json::to_string(&dl).expect("ser");
        assert_eq!(serde_json::from_str::<Deadline>(&json).expect("de"), dl);
    }

    #[test]
    fn usage_period_and_notice() {
        let cal = Calendar::china();
        let yongjia = Policy::preset(Preset::Yongjia);
        // Three years from delivery on 10 Mar 2025 expire at the end of 10 Mar
        // 2028 — no 2028 calendar is needed for a year-based limit.
        let usage = yongjia
            .deadline(Step::UsagePeriod, cst(2025, 3, 10, 15, 0), &cal)
            .expect("no calendar needed")
            .expect("limited");
        assert_eq!(usage.due_date, d(2028, 3, 10));
        // The notice counts back one month from the expiry day.
        let notice = yongjia
            .deadline(Step::UsageRenewalNotice, usage.due_at(), &cal)
            .expect("no calendar needed")
            .expect("limited");
        assert_eq!(notice.due_date, d(2028, 2, 10));
        assert!(notice.due_at() < usage.due_at());
        // Data kept 3 months after exit on 30 Nov: until 28 Feb (month end).
        check(
            Preset::Yongjia,
            Step::DataRetention,
            cst(2025, 11, 30, 10, 0),
            d(2026, 2, 28),
        );
    }

    #[test]
    fn unknown_year_is_refused() {
        let err = Policy::preset(Preset::Yongjia)
            .deadline(
                Step::ForcedOfflineAfterExpiry,
                cst(2026, 12, 20, 10, 0),
                &Calendar::china(),
            )
            .expect_err("15 wd from 20 Dec 2026 runs into 2027");
        assert_eq!(err.code(), "CALENDAR_YEAR_UNKNOWN");
        assert_eq!(err, CalendarError::YearUnknown { year: 2027 });
    }

    #[test]
    fn deadline_uses_an_operator_calendar() {
        let mut cal = Calendar::china();
        let y2027 = r#"
            year = 2027
            source = "operator test"
            [[holidays]]
            name = "元旦"
            start = 2027-01-01
            end = 2027-01-03
        "#;
        cal.add_year(CalendarYear::parse_toml(y2027).expect("valid"))
            .expect("new");
        // Sun 20 Dec 2026 + 15 wd: 21–25 (5), 28–31 (9), 1–3 Jan off, 4–8 (14), 11 (15).
        check_with(&cal, cst(2026, 12, 20, 10, 0), d(2027, 1, 11));
    }

    fn check_with(cal: &Calendar, started: DateTime<Utc>, due: NaiveDate) {
        let dl = Policy::preset(Preset::Yongjia)
            .deadline(Step::ForcedOfflineAfterExpiry, started, cal)
            .expect("calendar covers it")
            .expect("limited");
        assert_eq!(dl.due_date, due);
    }

    const OPERATOR: &str = r#"
        name = "shanghai-test"
        title = "某市政务云时限规则（测试）"
        [steps.accept_or_refuse]
        amount = 2
        unit = "working_days"
        source = "某市办法 第九条"
        [steps.usage_period]
        amount = 1
        unit = "years"
        source = "某市办法 第十四条"
        note = "  "
    "#;

    fn policy_err(text: &str) -> &'static str {
        match Policy::parse_toml(text) {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => {
                assert!(!e.message_zh().is_empty());
                assert!(!e.to_string().is_empty());
                e.code()
            }
        }
    }

    #[test]
    fn operator_policy_parses() {
        let p = Policy::parse_toml(OPERATOR).expect("valid");
        assert_eq!(p.name(), "shanghai-test");
        let rule = p.step(Step::AcceptOrRefuse).expect("present");
        assert_eq!(rule.period(), period(2, Unit::WorkingDays));
        assert_eq!(rule.source(), "某市办法 第九条");
        assert_eq!(p.step(Step::UsagePeriod).and_then(StepRule::note), None);
        assert!(p.step(Step::ReviewOpinion).is_none());

        // JSON (e.g. from the API or the store) runs the same checks.
        let json = serde_json::to_string(&p).expect("ser");
        assert!(json.contains(r#""accept_or_refuse":{"amount":2,"unit":"working_days""#));
        assert_eq!(serde_json::from_str::<Policy>(&json).expect("de"), p);
        let bad = json.replace("accept_or_refuse", "accept_or_reject");
        let err = serde_json::from_str::<Policy>(&bad).expect_err("unknown step");
        assert!(err.to_string().contains("accept_or_reject"), "{err}");
    }

    #[test]
    fn bad_operator_policies_give_typed_errors() {
        let base = OPERATOR;
        assert_eq!(policy_err("name = "), "POLICY_PARSE_FAILED");
        assert_eq!(
            policy_err(&base.replace("amount = 2", "amount = \"2\"")),
            "POLICY_PARSE_FAILED"
        );
        assert_eq!(
            policy_err(&base.replace("note =", "remark =")),
            "POLICY_PARSE_FAILED"
        );
        assert_eq!(
            policy_err(&base.replace("shanghai-test", "Shanghai Test")),
            "POLICY_NAME_INVALID"
        );
        assert_eq!(
            policy_err(&base.replace("某市政务云时限规则（测试）", " ")),
            "POLICY_TITLE_MISSING"
        );
        assert_eq!(
            policy_err(&base.replace("steps.accept_or_refuse", "steps.accept_or_reject")),
            "POLICY_STEP_UNKNOWN"
        );
        assert_eq!(
            policy_err(&base.replace("\"working_days\"", "\"business_days\"")),
            "POLICY_UNIT_UNKNOWN"
        );
        assert_eq!(
            policy_err(&base.replace("amount = 2", "amount = 0")),
            "POLICY_AMOUNT_INVALID"
        );
        assert_eq!(
            policy_err(&base.replace("amount = 2", "amount = -3")),
            "POLICY_AMOUNT_INVALID"
        );
        assert_eq!(
            policy_err(&base.replace("amount = 2", "amount = 100000")),
            "POLICY_AMOUNT_INVALID"
        );
        assert_eq!(
            policy_err(&base.replace("\"某市办法 第九条\"", "\"\"")),
            "POLICY_SOURCE_MISSING"
        );
        assert_eq!(
            Period::new(0, Unit::Months).map_err(|e| e.code()),
            Err("POLICY_AMOUNT_INVALID")
        );
    }

    #[test]
    fn step_names_are_stable_and_round_trip() {
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>(), Ok(step));
            assert_eq!(
                serde_json::to_value(step).expect("ser"),
                serde_json::Value::String(step.as_str().to_string())
            );
            assert!(
                step.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert!(!step.name_zh().is_empty());
        }
        assert_eq!(
            "nope".parse::<Step>().map_err(|e| e.code()),
            Err("POLICY_STEP_UNKNOWN")
        );
    }

    /// Seed 002 art. 10 and 12 as data: Yongjia's test period counts from the
    /// test environment and may be extended by at most 15 more days; only
    /// Yongjia allows emergency changes; Datong's test period counts from
    /// delivery confirmation (000 art. 14) and cannot be extended.
    #[test]
    fn seed_002_art_10_and_12_test_period_start_extension_and_emergency_as_policy_data() {
        let yongjia = Policy::preset(Preset::Yongjia);
        let datong = Policy::preset(Preset::Datong);
        assert_eq!(yongjia.test_period_starts(), TestPeriodStart::TestEnvReady);
        assert_eq!(datong.test_period_starts(), TestPeriodStart::Delivered);
        let rule = yongjia.step(Step::TestPeriod).expect("limited");
        assert_eq!(rule.extension_max(), Some(15));
        assert_eq!(
            rule.extension_limit(d(2025, 11, 19), &Calendar::china()),
            Ok(Some(d(2025, 12, 4)))
        );
        let datong_test = datong.step(Step::TestPeriod).expect("limited");
        assert_eq!(
            datong_test.extension_limit(d(2025, 12, 15), &Calendar::china()),
            Ok(None)
        );
        assert_eq!(
            yongjia.emergency_change().map(|e| e.source.as_str()),
            Some("002 art. 12")
        );
        assert!(datong.emergency_change().is_none());
        assert!(Policy::preset(Preset::Beijing).emergency_change().is_none());
        // JSON round trip keeps the options.
        let json = serde_json::to_string(&yongjia).expect("ser");
        assert_eq!(serde_json::from_str::<Policy>(&json).expect("de"), yongjia);
        // The options belong to the test period only, with known values.
        let base = "name = \"x\"\ntitle = \"X\"\n";
        for bad in [
            "[steps.test_period]\namount = 5\nunit = \"natural_days\"\nsource = \"s\"\nstarts = \"approved\"",
            "[steps.change_review]\namount = 5\nunit = \"working_days\"\nsource = \"s\"\nstarts = \"delivered\"",
            "[steps.change_review]\namount = 5\nunit = \"working_days\"\nsource = \"s\"\nextension_max = 3",
            "[steps.test_period]\namount = 5\nunit = \"natural_days\"\nsource = \"s\"\nextension_max = 0",
        ] {
            assert_eq!(
                policy_err(&format!("{base}{bad}")),
                "POLICY_STEP_OPTION_INVALID",
                "{bad}"
            );
        }
        assert_eq!(
            policy_err(&format!("{base}[emergency_change]\nsource = \" \"")),
            "POLICY_SOURCE_MISSING"
        );
    }

    #[test]
    fn the_beijing_preset_limits_renewals_of_the_free_expansion() {
        let rule = Policy::preset(Preset::Beijing)
            .temporary_expansion()
            .cloned()
            .expect("rule");
        assert_eq!(
            (
                rule.max_days_per_grant,
                rule.window_days,
                rule.max_days_in_window
            ),
            (90, 365, 90)
        );
        assert!(rule.source.starts_with("003"));
        assert!(
            rule.note
                .is_some_and(|n| n.contains("不超过原有资源的 20%"))
        );
        assert!(
            Policy::preset(Preset::Datong)
                .temporary_expansion()
                .is_none()
        );
        let with = |table: &str| {
            Policy::parse_toml(&format!(
                "name = \"x\"\ntitle = \"X\"\n[temporary_expansion]\n{table}"
            ))
        };
        let ok = with(
            "max_days_per_grant = 30\nwindow_days = 365\nmax_days_in_window = 60\nsource = \"op\"",
        )
        .expect("valid");
        assert_eq!(
            ok.temporary_expansion().map(|r| r.max_days_in_window),
            Some(60)
        );
        for bad in [
            "max_days_per_grant = 0\nwindow_days = 365\nmax_days_in_window = 60\nsource = \"op\"",
            "max_days_per_grant = 90\nwindow_days = 365\nmax_days_in_window = 60\nsource = \"op\"",
            "max_days_per_grant = 30\nwindow_days = 30\nmax_days_in_window = 60\nsource = \"op\"",
        ] {
            assert_eq!(
                with(bad).map_err(|e| e.code()),
                Err("POLICY_EXPANSION_RULE_INVALID")
            );
        }
        assert_eq!(
            with("max_days_per_grant = 30\nwindow_days = 365\nmax_days_in_window = 60\nsource = \" \"")
                .map_err(|e| e.code()),
            Err("POLICY_SOURCE_MISSING")
        );
    }
}
