//! Working-day calendar (工作日历) and deadline policies (时限规则) for work-order
//! steps (SPEC §3).
//!
//! Owns two things, both loaded as data rather than written as code:
//!
//! - [`Calendar`]: which days are working days in China — weekends are off, public
//!   holidays (法定节假日) are off, make-up working days (调休上班) are on. One
//!   TOML file per year under `data/calendar/`, copied from the State Council
//!   notice for that year; an operator adds a year with
//!   [`CalendarYear::parse_toml`] + [`Calendar::add_year`]. A date in a year the
//!   calendar does not know is refused (`CALENDAR_YEAR_UNKNOWN`): a deadline
//!   computed on a guessed calendar is silently wrong, a refusal is visible.
//! - [`Policy`]: how long each step may take — the Datong (seed 000/001), Yongjia
//!   (seed 002) and Beijing (seed 004) presets under `data/policies/`, or an
//!   operator's own policy in the same format ([`Policy::parse_toml`]).
//!
//! Counting rules (applied by [`Calendar`] and [`Policy::deadline`]):
//!
//! - The day a step starts is not counted; a limit of *n* units ends at 24:00 of
//!   the last counted day (民法典 arts. 201–203; common 政务 practice for
//!   "N个工作日内"). So *n* working days from day D end at the end of the *n*-th
//!   working day **after** D.
//! - Months and years end on the corresponding day of the final month, or the
//!   last day of that month when it has no such day (民法典 art. 202).
//! - Natural-day, month and year limits are **not** moved past a holiday that
//!   their last day falls on (the extension 民法典 art. 203 allows): the earlier
//!   date is the safe side for an alarm, and a 3-year usage period must not need
//!   a calendar for years no notice has published yet.
//!
//! Times: every instant is a `DateTime<Utc>` as elsewhere in this crate; days are
//! counted in China Standard Time ([`CHINA_STANDARD_TIME`], UTC+08:00, what
//! Asia/Shanghai has been without daylight saving since 1991). [`local_date`] and
//! [`end_of_day`] are the only conversions.
//!
//! **Architecture Invariant:** no I/O and no clock reads — the data files are
//! embedded with `include_str!`, and callers pass `now` in.

mod policy;
mod workday;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};

pub use policy::{
    Deadline, EmergencyRule, ExpansionRule, Period, Policy, PolicyError, Preset, Step, StepRule,
    TestPeriodStart, Unit,
};
pub use workday::{Calendar, CalendarError, CalendarYear, DayKind, Holiday, MakeUpWorkday};

/// China Standard Time (北京时间), UTC+08:00, in which working days are counted.
pub const CHINA_STANDARD_TIME: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    // 8 hours is inside FixedOffset's ±24 h range, so this arm is never taken;
    // being a const, a mistake here would fail the build, not a request.
    None => panic!("UTC+08:00 is a valid offset"),
};

/// The day (China Standard Time) that the instant `at` falls in.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&CHINA_STANDARD_TIME).date_naive()
}

/// 24:00 China Standard Time at the end of `date` (= 00:00 of the next day), the
/// first instant at which a limit whose last day is `date` is overdue.
///
/// Saturates at chrono's maximum date, which no real deadline reaches.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    let local = next.and_time(NaiveTime::MIN);
    match CHINA_STANDARD_TIME.from_local_datetime(&local).single() {
        Some(t) => t.with_timezone(&Utc),
        // A fixed offset maps every local time to exactly one instant; fall back
        // to reading the local time as UTC shifted by the offset.
        None => local.and_utc() - TimeDelta::hours(8),
    }
}
