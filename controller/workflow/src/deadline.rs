//! Step deadlines (时限) of a work order: which policy step an order enters with
//! each transition, and when that step is due under the order's policy preset,
//! counted on the working-day calendar (SPEC §3 table).
//!
//! Owns the mapping (order kind, state entered) → policy step, and the one place a
//! deadline is computed ([`step_due`]). The counting rules themselves (start day
//! not counted, due by 24:00 China Standard Time, 调休) belong to
//! `yunshu_domain::calendar`. Must not read the clock: callers pass the step's
//! start and `now`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::ErrorCode;
use yunshu_domain::calendar::{Calendar, Deadline, Policy, Preset, Step, TestPeriodStart};
use yunshu_domain::order::{OrderKind, OrderState};

pub use super::rules::PolicyName;

/// The policy used when a request names none: this deployment follows Beijing's
/// rules (004) unless told otherwise.
pub fn default_policy() -> PolicyName {
    PolicyName::preset(Preset::Beijing)
}

/// The policy step an order of `kind` starts when it enters `state`, if any.
///
/// Review steps (Yongjia 002 art. 9, 12, 13) start on submission and acceptance;
/// a change or exit review (002 art. 12, 13: "在 5 个工作日内完成变更/终止审核")
/// runs on from submission through acceptance and expert review until the
/// decision — entering those states returns the same step, whose clock
/// [`continues`]; the onboarding order's own exit (live → exit requested) is
/// reviewed like an exit order;
/// the provider's step starts on approval (000 art. 13, 002 art. 10, 004 art. 13
/// and 14); the test period on delivery confirmation (000 art. 14); data retention
/// when the system has exited (002 art. 13).
pub fn step_entered(kind: OrderKind, state: OrderState) -> Option<Step> {
    use OrderKind::*;
    use OrderState::*;
    match (kind, state) {
        (Onboarding | GoLive, Submitted) => Some(Step::AcceptOrRefuse),
        (Change, Submitted) => Some(Step::ChangeReview),
        (Exit, Submitted) => Some(Step::ExitReview),
        (Onboarding | GoLive, Accepted) => Some(Step::ReviewOpinion),
        (Change, Accepted | ExpertReview) => Some(Step::ChangeReview),
        (Exit, Accepted | ExpertReview) => Some(Step::ExitReview),
        (Onboarding, ExitRequested) => Some(Step::ExitReview),
        (Onboarding, Approved) => Some(Step::ProvisionAfterApproval),
        (GoLive, Approved) => Some(Step::GoLiveConfiguration),
        (Change, Approved) => Some(Step::ChangeExecute),
        (Exit, Approved) => Some(Step::ExitReclaim),
        (Onboarding, Delivered) => Some(Step::TestPeriod),
        (Onboarding | Exit, Exited) => Some(Step::DataRetention),
        _ => None,
    }
}

/// [`step_entered`] under `policy`: where the policy's test period counts from
/// the test environment (002 art. 10: "提供测试环境，测试时间一般不超过 15
/// 天"), it starts at `test_env_ready` and runs on through delivery
/// confirmation until the system goes live; otherwise (000 art. 14) it starts
/// at delivery confirmation. The onboarding order's own exit, once decided
/// (`exited`), is reclaimed on the policy's `exit_reclaim` clock like an exit
/// order (000 art. 16, 002 art. 13; see `reclaim`), the data retention
/// starting when it is done.
pub fn step_entered_under(policy: &Policy, kind: OrderKind, state: OrderState) -> Option<Step> {
    let from_env = policy.test_period_starts() == TestPeriodStart::TestEnvReady;
    match (kind, state) {
        (OrderKind::Onboarding, OrderState::TestEnvReady) if from_env => Some(Step::TestPeriod),
        (OrderKind::Onboarding, OrderState::Exited) if policy.step(Step::ExitReclaim).is_some() => {
            Some(Step::ExitReclaim)
        }
        _ => step_entered(kind, state),
    }
}

/// Whether entering `to`, whose step is `next`, keeps the clock of `current`
/// running instead of starting a new one: a change or exit review moving on
/// within the review (submitted → accepted → expert review) is still the one
/// review the policy times from submission (002 art. 12, 13); a test period
/// started at the test environment runs on through delivery confirmation.
pub fn continues(
    kind: OrderKind,
    current: Option<&StepClock>,
    to: OrderState,
    next: Option<Step>,
) -> bool {
    let within = matches!(
        (kind, to),
        (
            OrderKind::Change | OrderKind::Exit,
            OrderState::Accepted | OrderState::ExpertReview
        ) | (OrderKind::Onboarding, OrderState::Delivered)
    );
    within && next.is_some() && current.is_some_and(|c| Some(c.step) == next)
}

/// A step of one order and its deadline clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepClock {
    pub step: Step,
    pub started_at: DateTime<Utc>,
    /// `None` when the policy sets no limit for this step, or when it could not
    /// be computed (see `unknown`).
    pub deadline: Option<Deadline>,
    /// Error code when the calendar could not answer (e.g. `CALENDAR_YEAR_UNKNOWN`
    /// for a year whose holiday notice is not loaded yet). Kept visible rather
    /// than guessed: a deadline on a guessed calendar is silently wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Approved extensions of this step's deadline, oldest first (the test
    /// period, 002 art. 10: "经政务云平台主管部门同意…可以延长"); `deadline`
    /// holds the due date the last one set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<StepExtension>,
}

/// One approved extension of a step's deadline: who approved it, when, why,
/// and the due dates before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepExtension {
    pub by: yunshu_domain::Actor,
    pub at: DateTime<Utc>,
    pub reason: yunshu_domain::Text,
    pub previous_due: chrono::NaiveDate,
    pub until: chrono::NaiveDate,
}

/// When `step`, started at `started_at`, is due under `policy` on `calendar`.
/// The ONE function that computes a deadline; everything else stores or shows
/// its answer.
pub fn step_due(
    policy: &Policy,
    calendar: &Calendar,
    step: Step,
    started_at: DateTime<Utc>,
) -> Result<Option<Deadline>, yunshu_domain::calendar::CalendarError> {
    policy.deadline(step, started_at, calendar)
}

/// Starts the clock of `step` at `started_at`. Never fails: a deadline the
/// calendar cannot compute is recorded as unknown with the reason, and the order
/// still moves (a missing holiday notice must not stop approvals).
pub fn step_start(
    policy: &Policy,
    calendar: &Calendar,
    step: Step,
    started_at: DateTime<Utc>,
) -> StepClock {
    let (deadline, unknown) = match step_due(policy, calendar, step, started_at) {
        Ok(d) => (d, None),
        Err(e) => {
            tracing::warn!(error = %e, step = %step, "deadline could not be computed");
            (None, Some(e.code().to_owned()))
        }
    };
    StepClock {
        step,
        started_at,
        deadline,
        unknown,
        finished_at: None,
        extensions: Vec::new(),
    }
}

/// Working days left until `deadline` at `now` (0 on the due day, negative when
/// late), or `None` if the calendar does not cover the range.
pub fn working_days_left(
    deadline: &Deadline,
    now: DateTime<Utc>,
    calendar: &Calendar,
) -> Option<i64> {
    deadline.working_days_left(now, calendar).ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn cst(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        chrono::FixedOffset::east_opt(8 * 3600)
            .and_then(|tz| tz.with_ymd_and_hms(y, m, d, h, 0, 0).single())
            .expect("valid time")
            .with_timezone(&Utc)
    }

    /// Seed 000 art. 13 (2 个工作日内开通), 15 (2 个工作日内完成调整变更), 16
    /// (2 个工作日内收回云资源) and 004 art. 13 (3 个工作日内完成云资源配置), 14
    /// (接到工单第二部分后 1 个工作日内完成平台相关资源配置): approving an order
    /// starts the provider's step of its kind, due under the order's policy;
    /// Beijing sets no limit for a change ("在规定时间内").
    #[test]
    fn seed_000_art_13_15_16_and_004_art_13_14_approval_starts_the_providers_step() {
        let cal = Calendar::china();
        // Friday 14 November 2025, no holiday near: Mon 17, Tue 18, Wed 19.
        let approved_at = cst(2025, 11, 14, 10);
        let due = |preset: Preset, kind: OrderKind| {
            let step = step_entered(kind, OrderState::Approved).expect("a step");
            step_due(&Policy::preset(preset), &cal, step, approved_at)
                .expect("known year")
                .map(|d| (step, d.due_date.to_string(), d.source))
        };
        let row =
            |step: Step, date: &str, source: &str| Some((step, date.to_owned(), source.to_owned()));
        use OrderKind::*;
        use Preset::*;
        assert_eq!(
            due(Datong, Onboarding),
            row(Step::ProvisionAfterApproval, "2025-11-18", "000 art. 13")
        );
        assert_eq!(
            due(Datong, Change),
            row(Step::ChangeExecute, "2025-11-18", "000 art. 15")
        );
        assert_eq!(
            due(Datong, Exit),
            row(Step::ExitReclaim, "2025-11-18", "000 art. 16")
        );
        assert_eq!(
            due(Beijing, Onboarding),
            row(Step::ProvisionAfterApproval, "2025-11-19", "004 art. 13")
        );
        assert_eq!(
            due(Beijing, GoLive),
            row(Step::GoLiveConfiguration, "2025-11-17", "004 art. 14")
        );
        assert_eq!(due(Beijing, Change), None);
    }
}
