//! Alarms (告警): what the alarm centre shows — time, trigger condition, content,
//! level and acknowledgement state (003 §2.2.1 (5)).
//!
//! Owns the acknowledgement rule (once, by a user, not before the alarm was
//! raised). Deciding when to raise (capacity over 80 %, overdue steps) and
//! notifying are the controller's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    error::ErrorCode,
    ids::{AlarmId, UserId},
    record::Record,
    tenant::TenantCode,
    text::Text,
};

/// Why an alarm operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AlarmError {
    #[error("alarm {id} was already acknowledged by {by}")]
    AlreadyAcknowledged { id: String, by: String },
    #[error("acknowledgement at {at} precedes the alarm raised at {raised_at}")]
    AckBeforeRaised {
        at: DateTime<Utc>,
        raised_at: DateTime<Utc>,
    },
}

impl ErrorCode for AlarmError {
    fn code(&self) -> &'static str {
        match self {
            AlarmError::AlreadyAcknowledged { .. } => "ALARM_ALREADY_ACKNOWLEDGED",
            AlarmError::AckBeforeRaised { .. } => "ALARM_ACK_BEFORE_RAISED",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            AlarmError::AlreadyAcknowledged { id, by } => format!("告警 {id} 已由 {by} 确认"),
            AlarmError::AckBeforeRaised { .. } => "确认时间早于告警产生时间".to_string(),
        }
    }
}

/// Alarm level, most severe last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmLevel {
    /// 提示
    Info,
    /// 一般
    Minor,
    /// 重要
    Major,
    /// 紧急
    Critical,
}

impl AlarmLevel {
    pub fn label_zh(self) -> &'static str {
        match self {
            AlarmLevel::Info => "提示",
            AlarmLevel::Minor => "一般",
            AlarmLevel::Major => "重要",
            AlarmLevel::Critical => "紧急",
        }
    }
}

/// What an alarm is about; decides who sees it and who may acknowledge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmCategory {
    /// A work-order step passed its deadline (SPEC §3; 004 art. 13–14).
    OrderOverdue,
    /// A system's usage period ends within a month (002 art. 14).
    UsageExpiring,
    /// A system's usage period ended without an extension request (002 art. 14).
    UsageExpired,
    /// A resource pool passed its allocation threshold (SPEC §5).
    Capacity,
    /// An exited system's data retention is over: its purge is due (002
    /// art. 13). Cleared when the purge is made.
    PurgeDue,
    /// Everything else raised by an operator or a component.
    Other,
}

impl AlarmCategory {
    pub fn label_zh(self) -> &'static str {
        match self {
            AlarmCategory::OrderOverdue => "工单超时",
            AlarmCategory::UsageExpiring => "使用期即将届满",
            AlarmCategory::UsageExpired => "使用期已满",
            AlarmCategory::Capacity => "资源容量",
            AlarmCategory::PurgeDue => "数据待清除",
            AlarmCategory::Other => "其他",
        }
    }
}

/// Who confirmed an alarm, and when (状态确认).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: UserId,
    pub at: DateTime<Utc>,
}

/// Alarm (告警).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AlarmFields")]
pub struct Alarm {
    id: AlarmId,
    raised_at: DateTime<Utc>,
    level: AlarmLevel,
    trigger: Text,
    content: Text,
    #[serde(default = "other")]
    category: AlarmCategory,
    /// The tenant the alarm concerns, if any: its users see it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantCode>,
    /// The record it is about, e.g. `work_order/WO-…` or `system/110105001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Text>,
    acknowledged: Option<Acknowledgement>,
    /// When the condition stopped holding (the late step finished, the pool fell
    /// back under the line). A cleared alarm stays on record until acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cleared_at: Option<DateTime<Utc>>,
}

fn other() -> AlarmCategory {
    AlarmCategory::Other
}

#[derive(Deserialize)]
struct AlarmFields {
    id: AlarmId,
    raised_at: DateTime<Utc>,
    level: AlarmLevel,
    trigger: Text,
    content: Text,
    #[serde(default = "other")]
    category: AlarmCategory,
    #[serde(default)]
    tenant: Option<TenantCode>,
    #[serde(default)]
    subject: Option<Text>,
    #[serde(default)]
    acknowledged: Option<Acknowledgement>,
    #[serde(default)]
    cleared_at: Option<DateTime<Utc>>,
}

impl TryFrom<AlarmFields> for Alarm {
    type Error = AlarmError;
    fn try_from(f: AlarmFields) -> Result<Self, Self::Error> {
        let mut alarm = Alarm::new(f.id, f.raised_at, f.level, f.trigger, f.content)
            .about(f.category, f.tenant, f.subject);
        alarm.cleared_at = f.cleared_at.map(|at| at.max(alarm.raised_at));
        if let Some(ack) = f.acknowledged {
            alarm.acknowledge(ack.by, ack.at)?;
        }
        Ok(alarm)
    }
}

impl Alarm {
    /// A new, unacknowledged alarm. `trigger` is the condition (触发条件), e.g.
    /// "资源池 arm-a 内存分配率 > 80%"; `content` says what happened.
    pub fn new(
        id: AlarmId,
        raised_at: DateTime<Utc>,
        level: AlarmLevel,
        trigger: Text,
        content: Text,
    ) -> Self {
        Alarm {
            id,
            raised_at,
            level,
            trigger,
            content,
            category: AlarmCategory::Other,
            tenant: None,
            subject: None,
            acknowledged: None,
            cleared_at: None,
        }
    }

    /// Says what the alarm is about: its category, the tenant it concerns (whose
    /// users may then see it) and the record it names.
    pub fn about(
        mut self,
        category: AlarmCategory,
        tenant: Option<TenantCode>,
        subject: Option<Text>,
    ) -> Self {
        self.category = category;
        self.tenant = tenant;
        self.subject = subject;
        self
    }

    pub fn category(&self) -> AlarmCategory {
        self.category
    }
    pub fn tenant(&self) -> Option<&TenantCode> {
        self.tenant.as_ref()
    }
    pub fn subject(&self) -> Option<&Text> {
        self.subject.as_ref()
    }

    pub fn id(&self) -> &AlarmId {
        &self.id
    }
    pub fn raised_at(&self) -> DateTime<Utc> {
        self.raised_at
    }
    pub fn level(&self) -> AlarmLevel {
        self.level
    }
    pub fn trigger(&self) -> &Text {
        &self.trigger
    }
    pub fn content(&self) -> &Text {
        &self.content
    }
    pub fn acknowledged(&self) -> Option<&Acknowledgement> {
        self.acknowledged.as_ref()
    }
    pub fn cleared_at(&self) -> Option<DateTime<Utc>> {
        self.cleared_at
    }

    /// Records that the condition no longer holds; the first time counts, and
    /// never before the alarm was raised.
    pub fn clear(&mut self, at: DateTime<Utc>) {
        if self.cleared_at.is_none() {
            self.cleared_at = Some(at.max(self.raised_at));
        }
    }

    /// Marks the alarm confirmed. Refuses a second acknowledgement
    /// (`ALARM_ALREADY_ACKNOWLEDGED`) so the first confirmer stays on record, and a
    /// time before the alarm (`ALARM_ACK_BEFORE_RAISED`).
    pub fn acknowledge(&mut self, by: UserId, at: DateTime<Utc>) -> Result<(), AlarmError> {
        if let Some(ack) = &self.acknowledged {
            return Err(AlarmError::AlreadyAcknowledged {
                id: self.id.to_string(),
                by: ack.by.to_string(),
            });
        }
        if at < self.raised_at {
            return Err(AlarmError::AckBeforeRaised {
                at,
                raised_at: self.raised_at,
            });
        }
        self.acknowledged = Some(Acknowledgement { by, at });
        Ok(())
    }
}

impl Record for Alarm {
    const KIND: &'static str = "alarm";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn alarm() -> Alarm {
        Alarm::new(
            AlarmId::new("alm-1").expect("id"),
            Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0)
                .single()
                .expect("date"),
            AlarmLevel::Major,
            Text::new("资源池 arm-a 内存分配率 > 80%").expect("text"),
            Text::new("内存分配率 83%，已生成扩容工单").expect("text"),
        )
    }

    #[test]
    fn acknowledge_once_and_not_before_raised() {
        let mut a = alarm();
        let op = UserId::new("ops1").expect("id");
        let early = a.raised_at() - Duration::minutes(1);
        assert_eq!(
            a.acknowledge(op.clone(), early).map_err(|e| e.code()),
            Err("ALARM_ACK_BEFORE_RAISED")
        );
        let at = a.raised_at() + Duration::minutes(5);
        a.acknowledge(op.clone(), at).expect("first");
        assert_eq!(
            a.acknowledge(op, at).map_err(|e| e.code()),
            Err("ALARM_ALREADY_ACKNOWLEDGED")
        );
        assert_eq!(a.acknowledged().map(|ack| ack.at), Some(at));
    }

    #[test]
    fn serde_round_trip() {
        let mut a = alarm();
        a.acknowledge(UserId::new("ops1").expect("id"), a.raised_at())
            .expect("ack");
        let json = serde_json::to_string(&a).expect("ser");
        assert_eq!(serde_json::from_str::<Alarm>(&json).expect("de"), a);
        let early = json.replace(
            r#""at":"2026-05-01T00:00:00Z""#,
            r#""at":"2026-04-30T00:00:00Z""#,
        );
        assert!(serde_json::from_str::<Alarm>(&early).is_err());
        assert!(AlarmLevel::Critical > AlarmLevel::Info);
    }
}
