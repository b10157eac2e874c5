//! Work orders (工单): kinds, states, the transition table of SPEC §3, the history
//! of who moved an order when and why, and the requested lines under review.
//!
//! Owns which transitions exist and the invariants of a stored order (its state is
//! the end of its history, every step of the history is an allowed transition).
//! Who may perform a transition (permissions), deadlines (working days) and
//! notifications belong to the workflow; this module only needs the caller's
//! actor and time.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    error::ErrorCode,
    ids::{Actor, OrderId, ProviderId, UserId, ZoneId},
    order_line::{
        BastionAccountRequest, CrossZoneAccess, LineError, PublicIpRequest, ResourceLine,
    },
    order_services::{
        BackupPolicyRequest, LoadBalancerRequest, NetworkRequest, SecurityGroupRequest,
        ServiceError, SnapshotRequest, VolumeRequest, WafPolicyRequest,
    },
    record::Record,
    system::SystemNumber,
    tenant::TenantCode,
    text::Text,
};

/// Why a work-order operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    #[error("a {kind} order cannot go from {from} to {to}")]
    TransitionForbidden {
        kind: OrderKind,
        from: OrderState,
        to: OrderState,
    },
    #[error("moving an order to {to} requires a reason")]
    ReasonRequired { to: OrderState },
    #[error("transition time {at} is before the order's last change at {last}")]
    TimeBackwards {
        at: DateTime<Utc>,
        last: DateTime<Utc>,
    },
    #[error("the order can only be edited while draft, refused or rejected; it is {state}")]
    NotEditable { state: OrderState },
    #[error("quantities can only be approved while the order is under review; it is {state}")]
    NotInReview { state: OrderState },
    #[error("the order has no line {index}")]
    LineNotFound { index: usize },
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("stored order history is inconsistent: {detail}")]
    HistoryInconsistent { detail: String },
}

impl ErrorCode for OrderError {
    fn code(&self) -> &'static str {
        match self {
            OrderError::TransitionForbidden { .. } => "ORDER_TRANSITION_FORBIDDEN",
            OrderError::ReasonRequired { .. } => "ORDER_REASON_REQUIRED",
            OrderError::TimeBackwards { .. } => "ORDER_TIME_BACKWARDS",
            OrderError::NotEditable { .. } => "ORDER_NOT_EDITABLE",
            OrderError::NotInReview { .. } => "ORDER_NOT_IN_REVIEW",
            OrderError::LineNotFound { .. } => "ORDER_LINE_NOT_FOUND",
            OrderError::Line(e) => e.code(),
            OrderError::HistoryInconsistent { .. } => "ORDER_HISTORY_INCONSISTENT",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            OrderError::TransitionForbidden { kind, from, to } => format!(
                "{}工单不能从“{}”变为“{}”",
                kind.label_zh(),
                from.label_zh(),
                to.label_zh()
            ),
            OrderError::ReasonRequired { to } => {
                format!("变为“{}”时必须填写理由", to.label_zh())
            }
            OrderError::TimeBackwards { .. } => "操作时间早于工单上次变更时间".to_string(),
            OrderError::NotEditable { state } => {
                format!(
                    "工单当前为“{}”，只有草稿、不予受理或审核不通过时可以修改",
                    state.label_zh()
                )
            }
            OrderError::NotInReview { state } => {
                format!(
                    "工单当前为“{}”，不在审核阶段，不能核定数量",
                    state.label_zh()
                )
            }
            OrderError::LineNotFound { index } => format!("工单没有第 {} 行资源", index + 1),
            OrderError::Line(e) => e.message_zh(),
            OrderError::HistoryInconsistent { detail } => format!("工单历史记录不一致：{detail}"),
        }
    }
}

/// Work-order kind: the four parts of Beijing's unified work order (004 附件1-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// 入云 (part 1): resources for a system.
    Onboarding,
    /// 上线 (part 2): the system goes live after testing.
    GoLive,
    /// 变更 (part 3): change of resources.
    Change,
    /// 退出 (part 4): the system leaves the cloud.
    Exit,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Onboarding => "onboarding",
            OrderKind::GoLive => "go_live",
            OrderKind::Change => "change",
            OrderKind::Exit => "exit",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            OrderKind::Onboarding => "入云",
            OrderKind::GoLive => "上线",
            OrderKind::Change => "变更",
            OrderKind::Exit => "退出",
        }
    }

    /// Whether an order of this kind may move `from` → `to`. The review steps are
    /// shared; after approval each kind has its own path:
    /// - onboarding: approved → test_env_ready → delivered → live → exit_requested →
    ///   exited → purged (the system's lifecycle; exit may be withdrawn back to live);
    /// - go-live: approved → live (filed, then configured within 1 wd, 004 art. 14);
    /// - change: approved → delivered (provider executes the change, 000 art. 15);
    /// - exit: approved → exited → purged (reclaim, then delete data after
    ///   retention; 000 art. 16, 002 art. 13).
    pub fn can_transition(self, from: OrderState, to: OrderState) -> bool {
        use OrderState::*;
        let review = matches!(
            (from, to),
            (Draft, Submitted)
                | (Submitted, Accepted)
                | (Submitted, Refused)
                // the applicant edits and resubmits (000 art. 12)
                | (Refused, Submitted)
                | (Rejected, Submitted)
                // large or complex requests go to experts (000 art. 12)
                | (Accepted, ExpertReview)
                | (Accepted, Approved)
                | (Accepted, Rejected)
                | (ExpertReview, Approved)
                | (ExpertReview, Rejected)
        );
        review
            || match self {
                OrderKind::Onboarding => matches!(
                    (from, to),
                    (Approved, TestEnvReady)
                        | (TestEnvReady, Delivered)
                        | (Delivered, Live)
                        | (Live, ExitRequested)
                        | (ExitRequested, Live)
                        | (ExitRequested, Exited)
                        | (Exited, Purged)
                ),
                OrderKind::GoLive => matches!((from, to), (Approved, Live)),
                OrderKind::Change => matches!((from, to), (Approved, Delivered)),
                OrderKind::Exit => matches!((from, to), (Approved, Exited) | (Exited, Purged)),
            }
    }

    pub const ALL: [OrderKind; 4] = [
        OrderKind::Onboarding,
        OrderKind::GoLive,
        OrderKind::Change,
        OrderKind::Exit,
    ];
}

impl fmt::Display for OrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Work-order state (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// 草稿
    Draft,
    /// 已提交
    Submitted,
    /// 已受理
    Accepted,
    /// 不予受理 (reason required; the applicant may resubmit)
    Refused,
    /// 专家评审
    ExpertReview,
    /// 审核通过
    Approved,
    /// 审核不通过 (reason required; the applicant may resubmit)
    Rejected,
    /// 测试环境就绪
    TestEnvReady,
    /// 已交付 (交付确认: billing starts, 000 art. 14)
    Delivered,
    /// 已上线
    Live,
    /// 申请退出
    ExitRequested,
    /// 已退出 (resources reclaimed, billing stops, 000 art. 16)
    Exited,
    /// 已清除 (data deleted after retention)
    Purged,
}

impl OrderState {
    pub const ALL: [OrderState; 13] = [
        OrderState::Draft,
        OrderState::Submitted,
        OrderState::Accepted,
        OrderState::Refused,
        OrderState::ExpertReview,
        OrderState::Approved,
        OrderState::Rejected,
        OrderState::TestEnvReady,
        OrderState::Delivered,
        OrderState::Live,
        OrderState::ExitRequested,
        OrderState::Exited,
        OrderState::Purged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Draft => "draft",
            OrderState::Submitted => "submitted",
            OrderState::Accepted => "accepted",
            OrderState::Refused => "refused",
            OrderState::ExpertReview => "expert_review",
            OrderState::Approved => "approved",
            OrderState::Rejected => "rejected",
            OrderState::TestEnvReady => "test_env_ready",
            OrderState::Delivered => "delivered",
            OrderState::Live => "live",
            OrderState::ExitRequested => "exit_requested",
            OrderState::Exited => "exited",
            OrderState::Purged => "purged",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            OrderState::Draft => "草稿",
            OrderState::Submitted => "已提交",
            OrderState::Accepted => "已受理",
            OrderState::Refused => "不予受理",
            OrderState::ExpertReview => "专家评审",
            OrderState::Approved => "审核通过",
            OrderState::Rejected => "审核不通过",
            OrderState::TestEnvReady => "测试环境就绪",
            OrderState::Delivered => "已交付",
            OrderState::Live => "已上线",
            OrderState::ExitRequested => "申请退出",
            OrderState::Exited => "已退出",
            OrderState::Purged => "已清除",
        }
    }

    /// The SPEC §3 table: whether any kind of order may move `self` → `to`.
    pub fn can_transition_to(self, to: OrderState) -> bool {
        OrderKind::ALL.iter().any(|k| k.can_transition(self, to))
    }

    /// Refusals and rejections must say why (SPEC §3; 000 art. 12).
    pub fn requires_reason(self) -> bool {
        matches!(self, OrderState::Refused | OrderState::Rejected)
    }

    /// States in which the applicant may edit the request.
    pub fn is_editable(self) -> bool {
        matches!(
            self,
            OrderState::Draft | OrderState::Refused | OrderState::Rejected
        )
    }

    /// States in which a reviewer may set approved quantities.
    pub fn is_under_review(self) -> bool {
        matches!(self, OrderState::Accepted | OrderState::ExpertReview)
    }

    /// No transition leaves this state.
    pub fn is_terminal(self) -> bool {
        OrderState::ALL
            .iter()
            .all(|to| !self.can_transition_to(*to))
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of an order's life: who, when, from where to where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub from: OrderState,
    pub to: OrderState,
    pub reason: Option<Text>,
}

/// What an order asks for. Every field is a validated type; the order decides when
/// it may be edited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Target provider platform (云平台), once chosen.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Deployment node (部署节点), once chosen.
    #[serde(default)]
    pub zone: Option<ZoneId>,
    #[serde(default)]
    pub lines: Vec<ResourceLine>,
    #[serde(default)]
    pub public_ips: Vec<PublicIpRequest>,
    #[serde(default)]
    pub bastion_accounts: Vec<BastionAccountRequest>,
    #[serde(default)]
    pub cross_zone_access: Vec<CrossZoneAccess>,
    /// Free text: change reason, exit reason, other remarks (变更原因, 退出原因, 其他说明).
    #[serde(default)]
    pub note: Option<Text>,
    /// The system's VPC and subnets; `None` keeps what the system has (or the
    /// default network for a new system).
    #[serde(default)]
    pub network: Option<NetworkRequest>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupRequest>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancerRequest>,
    #[serde(default)]
    pub waf_policies: Vec<WafPolicyRequest>,
    #[serde(default)]
    pub volumes: Vec<VolumeRequest>,
    #[serde(default)]
    pub backup_policies: Vec<BackupPolicyRequest>,
    #[serde(default)]
    pub snapshots: Vec<SnapshotRequest>,
}

impl OrderRequest {
    /// What one order can say about itself: every item's shape, names unique
    /// per kind (server lines by server name), a bare-metal model only on
    /// bare-metal lines. Whether a name an item refers to resolves is checked
    /// against the whole system by the workflow.
    pub fn validate(&self) -> Result<(), ServiceError> {
        use crate::order_line::ServerForm;
        use crate::order_services::unique;
        unique(
            "servers",
            self.lines.iter().map(|l| &l.server().server_name),
        )?;
        crate::order_line::check_ceilings(&self.lines)?;
        for l in &self.lines {
            if l.server().model.is_some() && l.server().form != ServerForm::BareMetal {
                return Err(ServiceError::Invalid {
                    item: "server",
                    name: l.server().server_name.to_string(),
                    field: "model",
                    reason: "is for bare-metal servers only".to_owned(),
                    reason_zh: "仅物理服务器可指定型号".to_owned(),
                });
            }
        }
        if self.public_ips.len() > crate::order_services::MAX_ITEMS {
            return Err(ServiceError::TooMany {
                what: "public IPs",
                max: crate::order_services::MAX_ITEMS,
            });
        }
        if let Some(n) = &self.network {
            n.validate()?;
        }
        unique(
            "security groups",
            self.security_groups.iter().map(|g| &g.name),
        )?;
        for g in &self.security_groups {
            g.validate()?;
        }
        unique(
            "load balancers",
            self.load_balancers.iter().map(|l| &l.name),
        )?;
        for l in &self.load_balancers {
            l.validate()?;
        }
        unique("WAF policies", self.waf_policies.iter().map(|w| &w.name))?;
        for w in &self.waf_policies {
            w.validate()?;
        }
        unique("volumes", self.volumes.iter().map(|v| &v.name))?;
        for v in &self.volumes {
            v.validate()?;
        }
        unique(
            "backup policies",
            self.backup_policies.iter().map(|b| &b.name),
        )?;
        for b in &self.backup_policies {
            b.validate()?;
        }
        unique("snapshots", self.snapshots.iter().map(|s| &s.name))?;
        Ok(())
    }

    /// The resource kinds carrying out this request needs from its provider
    /// (items it removes need nothing): servers by form, the system network
    /// whenever something sits in one, and each kind of item it adds or
    /// changes. A line's backup space means a backup policy.
    pub fn kinds(&self) -> std::collections::BTreeSet<crate::resource::ResourceKind> {
        use crate::order_line::ServerForm;
        use crate::resource::ResourceKind as K;
        let mut out = std::collections::BTreeSet::new();
        for l in &self.lines {
            let s = l.server();
            out.insert(match s.form {
                ServerForm::Vm => K::Vm,
                ServerForm::BareMetal => K::BareMetal,
            });
            if s.backup_gib > 0 {
                out.insert(K::BackupPolicy);
            }
        }
        if self.load_balancers.iter().any(|l| !l.remove) {
            out.insert(K::LoadBalancer);
        }
        if !self.lines.is_empty() || out.contains(&K::LoadBalancer) || self.network.is_some() {
            out.extend([K::Vpc, K::Subnet, K::SecurityGroup]);
        }
        if self.security_groups.iter().any(|g| !g.remove) {
            out.insert(K::SecurityGroup);
        }
        if self.public_ips.iter().any(|p| !p.remove) {
            out.insert(K::Eip);
        }
        if self.waf_policies.iter().any(|w| !w.remove) {
            out.insert(K::WafPolicy);
        }
        if self.volumes.iter().any(|v| !v.remove) {
            out.insert(K::Volume);
        }
        if self.backup_policies.iter().any(|b| !b.remove) {
            out.insert(K::BackupPolicy);
        }
        if self.snapshots.iter().any(|s| !s.remove) {
            out.insert(K::Snapshot);
        }
        out
    }
}

/// Work order (工单): the unit of review. Fields are private so the state only moves
/// through [`WorkOrder::transition`]; deserialization replays the same checks on
/// the stored history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WorkOrderFields")]
pub struct WorkOrder {
    id: OrderId,
    kind: OrderKind,
    system: SystemNumber,
    created_by: UserId,
    created_at: DateTime<Utc>,
    state: OrderState,
    request: OrderRequest,
    history: Vec<HistoryEntry>,
}

#[derive(Deserialize)]
struct WorkOrderFields {
    id: OrderId,
    kind: OrderKind,
    system: SystemNumber,
    created_by: UserId,
    created_at: DateTime<Utc>,
    state: OrderState,
    #[serde(default)]
    request: OrderRequest,
    #[serde(default)]
    history: Vec<HistoryEntry>,
}

impl TryFrom<WorkOrderFields> for WorkOrder {
    type Error = OrderError;
    fn try_from(f: WorkOrderFields) -> Result<Self, Self::Error> {
        let inconsistent = |detail: String| OrderError::HistoryInconsistent { detail };
        let mut state = OrderState::Draft;
        let mut last = f.created_at;
        for (i, h) in f.history.iter().enumerate() {
            if h.from != state {
                return Err(inconsistent(format!(
                    "entry {i} starts at {} but the order was {state}",
                    h.from
                )));
            }
            check_step(f.kind, h.from, h.to, h.reason.as_ref())
                .map_err(|e| inconsistent(format!("entry {i}: {e}")))?;
            if h.at < last {
                return Err(inconsistent(format!("entry {i} goes back in time")));
            }
            state = h.to;
            last = h.at;
        }
        if state != f.state {
            return Err(inconsistent(format!(
                "state is {} but the history ends at {state}",
                f.state
            )));
        }
        Ok(WorkOrder {
            id: f.id,
            kind: f.kind,
            system: f.system,
            created_by: f.created_by,
            created_at: f.created_at,
            state: f.state,
            request: f.request,
            history: f.history,
        })
    }
}

fn check_step(
    kind: OrderKind,
    from: OrderState,
    to: OrderState,
    reason: Option<&Text>,
) -> Result<(), OrderError> {
    if !kind.can_transition(from, to) {
        return Err(OrderError::TransitionForbidden { kind, from, to });
    }
    if to.requires_reason() && reason.is_none() {
        return Err(OrderError::ReasonRequired { to });
    }
    Ok(())
}

impl WorkOrder {
    /// A new draft order with an empty request.
    pub fn new(
        id: OrderId,
        kind: OrderKind,
        system: SystemNumber,
        created_by: UserId,
        created_at: DateTime<Utc>,
    ) -> Self {
        WorkOrder {
            id,
            kind,
            system,
            created_by,
            created_at,
            state: OrderState::Draft,
            request: OrderRequest::default(),
            history: Vec::new(),
        }
    }

    pub fn id(&self) -> &OrderId {
        &self.id
    }
    pub fn kind(&self) -> OrderKind {
        self.kind
    }
    pub fn system(&self) -> &SystemNumber {
        &self.system
    }
    /// The tenant, derived from the system number so the two never disagree.
    pub fn tenant(&self) -> &TenantCode {
        self.system.tenant()
    }
    pub fn created_by(&self) -> &UserId {
        &self.created_by
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn state(&self) -> OrderState {
        self.state
    }
    pub fn request(&self) -> &OrderRequest {
        &self.request
    }
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Time of the last change (creation if none).
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.history.last().map_or(self.created_at, |h| h.at)
    }

    /// The request, for the applicant to edit. Only while draft, refused or rejected
    /// (`ORDER_NOT_EDITABLE`); approvals on lines are cleared at resubmission.
    pub fn request_edit(&mut self) -> Result<&mut OrderRequest, OrderError> {
        if !self.state.is_editable() {
            return Err(OrderError::NotEditable { state: self.state });
        }
        Ok(&mut self.request)
    }

    /// Sets the approved quantity of line `index` (0-based). Only while accepted or
    /// in expert review (`ORDER_NOT_IN_REVIEW`); never above the requested quantity
    /// (`LINE_APPROVE_RAISES`, 000 art. 12).
    pub fn line_approve(&mut self, index: usize, qty: u32) -> Result<(), OrderError> {
        if !self.state.is_under_review() {
            return Err(OrderError::NotInReview { state: self.state });
        }
        let line = self
            .request
            .lines
            .get_mut(index)
            .ok_or(OrderError::LineNotFound { index })?;
        line.approve(qty)?;
        Ok(())
    }

    /// Moves the order to `to` and records who, when and why.
    ///
    /// Errors: `ORDER_TRANSITION_FORBIDDEN` if the kind's table has no such edge,
    /// `ORDER_REASON_REQUIRED` for refused/rejected without a reason,
    /// `ORDER_TIME_BACKWARDS` if `at` precedes the last change. On error nothing
    /// changes. Side effects on lines: submitting clears earlier approvals (the
    /// request is reviewed afresh); approving fills lines the reviewer did not touch
    /// with their requested quantity.
    pub fn transition(
        &mut self,
        to: OrderState,
        actor: Actor,
        at: DateTime<Utc>,
        reason: Option<Text>,
    ) -> Result<(), OrderError> {
        check_step(self.kind, self.state, to, reason.as_ref())?;
        let last = self.updated_at();
        if at < last {
            return Err(OrderError::TimeBackwards { at, last });
        }
        match to {
            OrderState::Submitted => self
                .request
                .lines
                .iter_mut()
                .for_each(ResourceLine::clear_approval),
            OrderState::Approved => self
                .request
                .lines
                .iter_mut()
                .for_each(ResourceLine::approve_in_full_if_unset),
            _ => {}
        }
        self.history.push(HistoryEntry {
            actor,
            at,
            from: self.state,
            to,
            reason,
        });
        self.state = to;
        Ok(())
    }
}

impl Record for WorkOrder {
    const KIND: &'static str = "work_order";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::order_line::tests::server;

    use OrderState::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0)
            .single()
            .expect("date")
    }

    fn actor() -> Actor {
        "user:reviewer1".parse().expect("actor")
    }

    fn order(kind: OrderKind) -> WorkOrder {
        WorkOrder::new(
            OrderId::new("WO-1").expect("id"),
            kind,
            "110105001".parse().expect("number"),
            UserId::new("zhangsan").expect("id"),
            t0(),
        )
    }

    fn reason() -> Option<Text> {
        Some(Text::new("材料不全").expect("text"))
    }

    /// Walks `path` and returns the first error, if any.
    fn walk(o: &mut WorkOrder, path: &[OrderState]) -> Result<(), OrderError> {
        for to in path {
            let r = if to.requires_reason() { reason() } else { None };
            let at = o.updated_at() + Duration::hours(1);
            o.transition(*to, actor(), at, r)?;
        }
        Ok(())
    }

    fn check(kind: OrderKind, path: &[OrderState], expected: Result<(), &str>) {
        let mut o = order(kind);
        assert_eq!(
            walk(&mut o, path).map_err(|e| e.code()),
            expected,
            "{kind} {path:?}"
        );
    }

    #[test]
    fn spec_table() {
        let allowed = [
            (Draft, Submitted),
            (Submitted, Accepted),
            (Submitted, Refused),
            (Refused, Submitted),
            (Accepted, ExpertReview),
            (Accepted, Approved),
            (Accepted, Rejected),
            (ExpertReview, Approved),
            (ExpertReview, Rejected),
            (Rejected, Submitted),
            (Approved, TestEnvReady),
            (Approved, Live),
            (Approved, Delivered),
            (Approved, Exited),
            (TestEnvReady, Delivered),
            (Delivered, Live),
            (Live, ExitRequested),
            (ExitRequested, Live),
            (ExitRequested, Exited),
            (Exited, Purged),
        ];
        for from in OrderState::ALL {
            for to in OrderState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Purged.is_terminal());
        assert!(!Live.is_terminal());
    }

    #[test]
    fn paths_per_kind() {
        let review = [Submitted, Accepted, Approved];
        let onboarding = [
            &review[..],
            &[TestEnvReady, Delivered, Live, ExitRequested, Exited, Purged],
        ]
        .concat();
        check(OrderKind::Onboarding, &onboarding, Ok(()));
        check(OrderKind::GoLive, &[&review[..], &[Live]].concat(), Ok(()));
        check(
            OrderKind::Change,
            &[&review[..], &[Delivered]].concat(),
            Ok(()),
        );
        check(
            OrderKind::Exit,
            &[&review[..], &[Exited, Purged]].concat(),
            Ok(()),
        );
        check(
            OrderKind::Exit,
            &[&review[..], &[TestEnvReady]].concat(),
            Err("ORDER_TRANSITION_FORBIDDEN"),
        );
        check(
            OrderKind::Onboarding,
            &[Approved],
            Err("ORDER_TRANSITION_FORBIDDEN"),
        );
        check(
            OrderKind::Onboarding,
            &[
                Submitted,
                Accepted,
                ExpertReview,
                Rejected,
                Submitted,
                Refused,
                Submitted,
            ],
            Ok(()),
        );
    }

    #[test]
    fn refusal_needs_reason_and_changes_nothing_on_error() {
        let mut o = order(OrderKind::Onboarding);
        walk(&mut o, &[Submitted]).expect("submit");
        let err = o
            .transition(Refused, actor(), t0() + Duration::days(1), None)
            .expect_err("no reason");
        assert_eq!(err, OrderError::ReasonRequired { to: Refused });
        assert_eq!(o.state(), Submitted);
        assert_eq!(o.history().len(), 1);
        let err = o
            .transition(Accepted, actor(), t0() - Duration::days(1), None)
            .expect_err("backwards");
        assert_eq!(err.code(), "ORDER_TIME_BACKWARDS");
    }

    #[test]
    fn editing_and_approving_follow_state() {
        let mut o = order(OrderKind::Onboarding);
        let three = NonZeroU32::new(3).expect("nz");
        o.request_edit()
            .expect("draft is editable")
            .lines
            .push(ResourceLine::new(server(), three));
        assert_eq!(
            o.line_approve(0, 1).map_err(|e| e.code()),
            Err("ORDER_NOT_IN_REVIEW")
        );
        walk(&mut o, &[Submitted, Accepted]).expect("accept");
        assert_eq!(
            o.request_edit().map(|_| ()).map_err(|e| e.code()),
            Err("ORDER_NOT_EDITABLE")
        );
        assert_eq!(
            o.line_approve(0, 4).map_err(|e| e.code()),
            Err("LINE_APPROVE_RAISES")
        );
        assert_eq!(
            o.line_approve(5, 1).map_err(|e| e.code()),
            Err("ORDER_LINE_NOT_FOUND")
        );
        o.line_approve(0, 2).expect("lower");
        o.transition(Rejected, actor(), t0() + Duration::days(1), reason())
            .expect("reject");
        o.transition(Submitted, actor(), t0() + Duration::days(2), None)
            .expect("resubmit");
        assert_eq!(
            o.request().lines[0].approved_qty(),
            None,
            "cleared on resubmit"
        );
        o.transition(Accepted, actor(), t0() + Duration::days(3), None)
            .expect("accept");
        o.transition(Approved, actor(), t0() + Duration::days(4), None)
            .expect("approve");
        assert_eq!(
            o.request().lines[0].approved_qty(),
            Some(3),
            "untouched line approved in full"
        );
    }

    #[test]
    fn serde_round_trip_and_history_check() {
        let mut o = order(OrderKind::Onboarding);
        o.request_edit()
            .expect("draft")
            .lines
            .push(ResourceLine::new(server(), NonZeroU32::new(2).expect("nz")));
        walk(&mut o, &[Submitted, Accepted]).expect("walk");
        o.line_approve(0, 1).expect("lower");
        walk(&mut o, &[Approved]).expect("approve");
        let json = serde_json::to_string(&o).expect("ser");
        assert_eq!(serde_json::from_str::<WorkOrder>(&json).expect("de"), o);
        assert_eq!(o.tenant().as_str(), "110105");

        let forged = json.replace(r#""state":"approved""#, r#""state":"live""#);
        let err = serde_json::from_str::<WorkOrder>(&forged).expect_err("forged");
        assert!(err.to_string().contains("inconsistent"), "{err}");
        let skipped = json.replace(
            r#""from":"submitted","to":"accepted""#,
            r#""from":"submitted","to":"approved""#,
        );
        assert!(serde_json::from_str::<WorkOrder>(&skipped).is_err());
    }
}
