//! The working-day calendar: years of holidays and make-up working days parsed
//! from TOML, and working-day arithmetic over them.
//!
//! Owns the refusal to guess: every query that has to classify a day in a year
//! the calendar does not hold fails with [`CalendarError::YearUnknown`].

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde::Deserialize;
use thiserror::Error;

use crate::error::ErrorCode;

/// Built-in years, one State Council notice each (see the comments in each file
/// for what was verified and where).
const BUILT_IN_YEARS: [(i32, &str); 2] = [
    (2025, include_str!("../../data/calendar/cn-2025.toml")),
    (2026, include_str!("../../data/calendar/cn-2026.toml")),
];

/// Why a calendar year was refused or a day could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    #[error("calendar year file is not valid TOML for this format: {message}")]
    Parse { message: String },
    #[error("calendar year {year} is out of range")]
    YearInvalid { year: i64 },
    #[error("calendar year {year} must cite its source notice")]
    SourceMissing { year: i32 },
    #[error("calendar year {year}: a holiday or make-up day has an empty name")]
    NameEmpty { year: i32 },
    #[error("{value:?} is not a plain date (YYYY-MM-DD without time or offset)")]
    DateInvalid { value: String },
    #[error("date {date} is outside calendar year {year}")]
    DateOutsideYear { year: i32, date: NaiveDate },
    #[error("holiday {name:?} ends ({end}) before it starts ({start})")]
    RangeReversed {
        name: String,
        start: NaiveDate,
        end: NaiveDate,
    },
    #[error("{date} is listed twice")]
    DayDuplicate { date: NaiveDate },
    #[error("{date} is listed both as a holiday and as a make-up working day")]
    DayConflict { date: NaiveDate },
    #[error("make-up working day {date} is a {weekday}, not a Saturday or Sunday")]
    MakeUpNotWeekend { date: NaiveDate, weekday: Weekday },
    #[error("calendar year {year} is already loaded")]
    YearDuplicate { year: i32 },
    #[error("no working-day calendar is loaded for year {year}")]
    YearUnknown { year: i32 },
    #[error("date arithmetic left the supported range")]
    DateOutOfRange,
}

impl ErrorCode for CalendarError {
    fn code(&self) -> &'static str {
        match self {
            CalendarError::Parse { .. } => "CALENDAR_PARSE_FAILED",
            CalendarError::YearInvalid { .. } => "CALENDAR_YEAR_INVALID",
            CalendarError::SourceMissing { .. } => "CALENDAR_SOURCE_MISSING",
            CalendarError::NameEmpty { .. } => "CALENDAR_NAME_EMPTY",
            CalendarError::DateInvalid { .. } => "CALENDAR_DATE_INVALID",
            CalendarError::DateOutsideYear { .. } => "CALENDAR_DATE_OUTSIDE_YEAR",
            CalendarError::RangeReversed { .. } => "CALENDAR_RANGE_REVERSED",
            CalendarError::DayDuplicate { .. } => "CALENDAR_DAY_DUPLICATE",
            CalendarError::DayConflict { .. } => "CALENDAR_DAY_CONFLICT",
            CalendarError::MakeUpNotWeekend { .. } => "CALENDAR_MAKE_UP_NOT_WEEKEND",
            CalendarError::YearDuplicate { .. } => "CALENDAR_YEAR_DUPLICATE",
            CalendarError::YearUnknown { .. } => "CALENDAR_YEAR_UNKNOWN",
            CalendarError::DateOutOfRange => "CALENDAR_DATE_OUT_OF_RANGE",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            CalendarError::Parse { message } => format!("工作日历格式错误：{message}"),
            CalendarError::YearInvalid { year } => format!("工作日历年份 {year} 无效"),
            CalendarError::SourceMissing { year } => {
                format!("{year} 年工作日历须注明依据的放假安排通知")
            }
            CalendarError::NameEmpty { year } => {
                format!("{year} 年工作日历中节假日或调休名称不能为空")
            }
            CalendarError::DateInvalid { value } => {
                format!("“{value}”不是日期：应为不带时间和时区的 YYYY-MM-DD")
            }
            CalendarError::DateOutsideYear { year, date } => {
                format!("日期 {date} 不在 {year} 年内")
            }
            CalendarError::RangeReversed { name, start, end } => {
                format!("节假日“{name}”的结束日期 {end} 早于开始日期 {start}")
            }
            CalendarError::DayDuplicate { date } => format!("日期 {date} 重复列出"),
            CalendarError::DayConflict { date } => {
                format!("日期 {date} 不能既是放假日又是调休上班日")
            }
            CalendarError::MakeUpNotWeekend { date, weekday } => format!(
                "调休上班日 {date} 是{}，应为周六或周日",
                weekday_zh(*weekday)
            ),
            CalendarError::YearDuplicate { year } => format!("{year} 年工作日历已加载"),
            CalendarError::YearUnknown { year } => {
                format!("尚未加载 {year} 年工作日历，无法按工作日计算时限")
            }
            CalendarError::DateOutOfRange => "日期计算超出支持范围".to_string(),
        }
    }
}

fn weekday_zh(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "周一",
        Weekday::Tue => "周二",
        Weekday::Wed => "周三",
        Weekday::Thu => "周四",
        Weekday::Fri => "周五",
        Weekday::Sat => "周六",
        Weekday::Sun => "周日",
    }
}

/// What kind of day a date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// Monday to Friday, not a holiday.
    Workday,
    /// A Saturday or Sunday worked in exchange for a holiday (调休上班).
    MakeUpWorkday,
    /// A Saturday or Sunday that is not a make-up day.
    Weekend,
    /// A day inside a public-holiday range (法定节假日 and the days swapped to it).
    Holiday,
}

impl DayKind {
    /// Whether staff work on this kind of day.
    pub fn is_working(self) -> bool {
        matches!(self, DayKind::Workday | DayKind::MakeUpWorkday)
    }
}

/// A public holiday (法定节假日): the inclusive range of days off in one notice
/// item, e.g. 春节 2025-01-28..=2025-02-04.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// A make-up working day (调休上班): a weekend day worked for `holiday`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakeUpWorkday {
    pub date: NaiveDate,
    pub holiday: String,
}

/// One validated year of the calendar. Any value of this type is valid: every
/// date lies in [`CalendarYear::year`], ranges are ordered, no day is listed twice
/// or both off and on, and make-up days fall on weekends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarYear {
    year: i32,
    source: String,
    holidays: Vec<Holiday>,
    make_up_workdays: Vec<MakeUpWorkday>,
    /// Every day that differs from the weekday/weekend rule, for O(log n) lookup.
    special: BTreeMap<NaiveDate, DayKind>,
}

/// The file format (see `data/calendar/cn-2025.toml`). Kept apart from
/// [`CalendarYear`] so the domain type never holds unchecked values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i64,
    source: String,
    #[serde(default)]
    holidays: Vec<HolidayFile>,
    #[serde(default)]
    make_up_workdays: Vec<MakeUpFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    name: String,
    start: toml::value::Datetime,
    end: toml::value::Datetime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MakeUpFile {
    date: toml::value::Datetime,
    holiday: String,
}

/// A TOML local date (`2025-10-01`), refusing date-times and offsets: a holiday
/// is a whole day in China, never an instant.
fn plain_date(value: &toml::value::Datetime) -> Result<NaiveDate, CalendarError> {
    let invalid = || CalendarError::DateInvalid {
        value: value.to_string(),
    };
    match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .ok_or_else(invalid)
        }
        _ => Err(invalid()),
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

impl CalendarYear {
    /// Parses and validates one year in the `data/calendar/*.toml` format.
    ///
    /// Errors: `CALENDAR_PARSE_FAILED` (syntax, unknown or missing field),
    /// `CALENDAR_YEAR_INVALID`, `CALENDAR_SOURCE_MISSING`, `CALENDAR_NAME_EMPTY`,
    /// `CALENDAR_DATE_INVALID`, `CALENDAR_DATE_OUTSIDE_YEAR`,
    /// `CALENDAR_RANGE_REVERSED`, `CALENDAR_DAY_DUPLICATE`, `CALENDAR_DAY_CONFLICT`,
    /// `CALENDAR_MAKE_UP_NOT_WEEKEND`.
    pub fn parse_toml(text: &str) -> Result<CalendarYear, CalendarError> {
        let file: YearFile = toml::from_str(text).map_err(|e| CalendarError::Parse {
            message: e.to_string(),
        })?;
        CalendarYear::from_file(file)
    }

    fn from_file(file: YearFile) -> Result<CalendarYear, CalendarError> {
        // Notices exist since 1949; 9999 keeps every date formattable as YYYY.
        let year = i32::try_from(file.year)
            .ok()
            .filter(|y| (1949..=9999).contains(y))
            .ok_or(CalendarError::YearInvalid { year: file.year })?;
        let source = file.source.trim().to_string();
        if source.is_empty() {
            return Err(CalendarError::SourceMissing { year });
        }
        let inside = |date: NaiveDate| {
            if date.year() == year {
                Ok(date)
            } else {
                Err(CalendarError::DateOutsideYear { year, date })
            }
        };
        let named = |name: &str| {
            let name = name.trim();
            if name.is_empty() {
                Err(CalendarError::NameEmpty { year })
            } else {
                Ok(name.to_string())
            }
        };

        let mut special = BTreeMap::new();
        let mut holidays = Vec::with_capacity(file.holidays.len());
        for h in &file.holidays {
            let name = named(&h.name)?;
            let start = inside(plain_date(&h.start)?)?;
            let end = inside(plain_date(&h.end)?)?;
            if end < start {
                return Err(CalendarError::RangeReversed { name, start, end });
            }
            for date in start.iter_days().take_while(|d| *d <= end) {
                // Overlapping ranges are almost always a typo in a copied date.
                if special.insert(date, DayKind::Holiday).is_some() {
                    return Err(CalendarError::DayDuplicate { date });
                }
            }
            holidays.push(Holiday { name, start, end });
        }

        let mut make_up_workdays = Vec::with_capacity(file.make_up_workdays.len());
        for m in &file.make_up_workdays {
            let holiday = named(&m.holiday)?;
            let date = inside(plain_date(&m.date)?)?;
            // Every notice since 1999 swaps weekend days only; a weekday here
            // means a mistyped date, which would silently do nothing.
            if !is_weekend(date) {
                return Err(CalendarError::MakeUpNotWeekend {
                    date,
                    weekday: date.weekday(),
                });
            }
            match special.insert(date, DayKind::MakeUpWorkday) {
                None => {}
                Some(DayKind::Holiday) => return Err(CalendarError::DayConflict { date }),
                Some(_) => return Err(CalendarError::DayDuplicate { date }),
            }
            make_up_workdays.push(MakeUpWorkday { date, holiday });
        }

        Ok(CalendarYear {
            year,
            source,
            holidays,
            make_up_workdays,
            special,
        })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// The notice this year was copied from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    pub fn make_up_workdays(&self) -> &[MakeUpWorkday] {
        &self.make_up_workdays
    }

    /// Kind of `date`, which the caller has checked lies in this year.
    fn kind(&self, date: NaiveDate) -> DayKind {
        match self.special.get(&date) {
            Some(kind) => *kind,
            None if is_weekend(date) => DayKind::Weekend,
            None => DayKind::Workday,
        }
    }
}

/// The working-day calendar (工作日历): a set of [`CalendarYear`]s, at most one
/// per year.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calendar {
    years: BTreeMap<i32, CalendarYear>,
}

impl Calendar {
    /// The built-in Chinese calendar: every year under `data/calendar/` (2025 and
    /// 2026). Add later years with [`Calendar::add_year`] as the State Council
    /// publishes them (usually in November of the year before).
    pub fn china() -> Calendar {
        let mut years = BTreeMap::new();
        for (year, text) in BUILT_IN_YEARS {
            // The built-in files are covered by the `built_in_years_load` test,
            // so a failure here is a build defect, not bad input.
            let parsed = CalendarYear::parse_toml(text)
                .unwrap_or_else(|e| panic!("built-in calendar {year} is invalid: {e}"));
            years.insert(year, parsed);
        }
        Calendar { years }
    }

    /// A calendar of exactly these years.
    ///
    /// Errors: `CALENDAR_YEAR_DUPLICATE` if two share a year.
    pub fn from_years(
        years: impl IntoIterator<Item = CalendarYear>,
    ) -> Result<Calendar, CalendarError> {
        let mut calendar = Calendar::default();
        for year in years {
            calendar.add_year(year)?;
        }
        Ok(calendar)
    }

    /// Adds a year the calendar does not hold yet.
    ///
    /// Errors: `CALENDAR_YEAR_DUPLICATE` — to correct a loaded year on purpose,
    /// use [`Calendar::replace_year`].
    pub fn add_year(&mut self, year: CalendarYear) -> Result<(), CalendarError> {
        match self.years.entry(year.year) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(CalendarError::YearDuplicate { year: year.year })
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(year);
                Ok(())
            }
        }
    }

    /// Adds or replaces a year (e.g. after the State Council amends a notice) and
    /// returns the replaced one.
    pub fn replace_year(&mut self, year: CalendarYear) -> Option<CalendarYear> {
        self.years.insert(year.year, year)
    }

    /// The years this calendar can answer for, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    pub fn year(&self, year: i32) -> Option<&CalendarYear> {
        self.years.get(&year)
    }

    /// What kind of day `date` is.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN` if `date`'s year is not loaded.
    pub fn day_kind(&self, date: NaiveDate) -> Result<DayKind, CalendarError> {
        let year = date.year();
        self.years
            .get(&year)
            .map(|y| y.kind(date))
            .ok_or(CalendarError::YearUnknown { year })
    }

    /// Whether `date` is a working day: a weekday that is not a holiday, or a
    /// make-up working day.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN`.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.day_kind(date).map(DayKind::is_working)
    }

    /// The `n`-th working day strictly after `start`: a step starting on day D
    /// with a limit of `n` working days is due by the end of this day. `start`
    /// itself never counts, whatever kind of day it is; `n == 0` returns `start`.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN` if a day that has to be classified lies in
    /// a year that is not loaded (the search stops at the first such day).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        self.step_working_days(start, n, Direction::Forward)
    }

    /// The `n`-th working day strictly before `end` (the mirror of
    /// [`Calendar::add_working_days`]), for limits counted back from an expiry.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN`.
    pub fn sub_working_days(&self, end: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        self.step_working_days(end, n, Direction::Backward)
    }

    fn step_working_days(
        &self,
        from: NaiveDate,
        n: u32,
        direction: Direction,
    ) -> Result<NaiveDate, CalendarError> {
        let mut day = from;
        let mut counted = 0;
        while counted < n {
            day = direction.next(day)?;
            if self.is_working_day(day)? {
                counted += 1;
            }
        }
        Ok(day)
    }

    /// Working days in `(a, b]` — `a` excluded, `b` included — or minus the
    /// working days in `(b, a]` when `b` is before `a`. So
    /// `working_days_between(d, add_working_days(d, n)?) == n`, and with `a` =
    /// today and `b` = a due date it is the working days left: 0 on the due day
    /// itself, negative once overdue.
    ///
    /// Errors: `CALENDAR_YEAR_UNKNOWN` for any day in the range.
    pub fn working_days_between(&self, a: NaiveDate, b: NaiveDate) -> Result<i64, CalendarError> {
        let (from, to, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
        let mut count = 0i64;
        for day in from.iter_days().skip(1).take_while(|d| *d <= to) {
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(sign * count)
    }

    /// `start` plus `n` natural days (自然日): the last day of an `n`-day limit
    /// that starts on `start` (start day not counted). Does not consult the
    /// holiday data, so it works in any year.
    ///
    /// Errors: `CALENDAR_DATE_OUT_OF_RANGE`.
    pub fn add_natural_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        start
            .checked_add_days(Days::new(u64::from(n)))
            .ok_or(CalendarError::DateOutOfRange)
    }

    /// `start` plus `n` months: the corresponding day of the final month, or its
    /// last day if it has none (2025-01-31 + 1 month = 2025-02-28; 民法典 art.
    /// 202). Does not consult the holiday data.
    ///
    /// Errors: `CALENDAR_DATE_OUT_OF_RANGE`.
    pub fn add_months(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        start
            .checked_add_months(Months::new(n))
            .ok_or(CalendarError::DateOutOfRange)
    }

    /// `end` minus `n` months, clamped to the month's last day like
    /// [`Calendar::add_months`].
    ///
    /// Errors: `CALENDAR_DATE_OUT_OF_RANGE`.
    pub fn sub_months(&self, end: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        end.checked_sub_months(Months::new(n))
            .ok_or(CalendarError::DateOutOfRange)
    }

    /// `end` minus `n` natural days.
    ///
    /// Errors: `CALENDAR_DATE_OUT_OF_RANGE`.
    pub fn sub_natural_days(&self, end: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        end.checked_sub_days(Days::new(u64::from(n)))
            .ok_or(CalendarError::DateOutOfRange)
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Forward,
    Backward,
}

impl Direction {
    fn next(self, day: NaiveDate) -> Result<NaiveDate, CalendarError> {
        match self {
            Direction::Forward => day.succ_opt(),
            Direction::Backward => day.pred_opt(),
        }
        .ok_or(CalendarError::DateOutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    /// One helper for the working-day arithmetic: `n` working days from `start`
    /// end on `due`, and counting back gives `n` again.
    fn check(start: NaiveDate, n: u32, due: NaiveDate) {
        let cal = Calendar::china();
        assert_eq!(cal.add_working_days(start, n), Ok(due), "{start} + {n} wd");
        assert_eq!(
            cal.working_days_between(start, due),
            Ok(i64::from(n)),
            "({start}, {due}]"
        );
    }

    fn parse_err(text: &str) -> &'static str {
        match CalendarYear::parse_toml(text) {
            Ok(y) => panic!("expected an error, got {y:?}"),
            Err(e) => {
                assert!(!e.message_zh().is_empty());
                e.code()
            }
        }
    }

    #[test]
    fn built_in_years_load() {
        let cal = Calendar::china();
        let expected: BTreeSet<i32> = BUILT_IN_YEARS.iter().map(|(y, _)| *y).collect();
        assert_eq!(cal.years().collect::<BTreeSet<_>>(), expected);
        for (year, _) in BUILT_IN_YEARS {
            let y = cal.year(year).expect("loaded");
            assert_eq!(y.year(), year);
            assert!(y.source().contains(&year.to_string()));
            // The notices have 6 (2025: 国庆 and 中秋 merged) or 7 items.
            assert!(y.holidays().len() >= 6, "{year}");
        }
        assert!(
            cal.year(2025)
                .expect("2025")
                .source()
                .contains("国办发明电〔2024〕12号")
        );
    }

    #[test]
    fn day_kinds_2025() {
        let cal = Calendar::china();
        let kind = |date| cal.day_kind(date).expect("known year");
        assert_eq!(kind(d(2025, 1, 1)), DayKind::Holiday); // 元旦, a Wednesday
        assert_eq!(kind(d(2025, 1, 26)), DayKind::MakeUpWorkday); // Sunday before 春节
        assert_eq!(kind(d(2025, 2, 8)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2025, 2, 4)), DayKind::Holiday); // 正月初七
        assert_eq!(kind(d(2025, 2, 5)), DayKind::Workday);
        assert_eq!(kind(d(2025, 4, 27)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2025, 5, 5)), DayKind::Holiday);
        assert_eq!(kind(d(2025, 6, 2)), DayKind::Holiday); // 端午 Monday
        assert_eq!(kind(d(2025, 9, 27)), DayKind::Weekend);
        assert_eq!(kind(d(2025, 9, 28)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2025, 10, 8)), DayKind::Holiday);
        assert_eq!(kind(d(2025, 10, 11)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2025, 10, 12)), DayKind::Weekend);
        assert!(cal.is_working_day(d(2025, 9, 28)).expect("known"));
        assert!(!cal.is_working_day(d(2025, 10, 3)).expect("known"));
    }

    #[test]
    fn day_kinds_2026() {
        let cal = Calendar::china();
        let kind = |date| cal.day_kind(date).expect("known year");
        assert_eq!(kind(d(2026, 1, 3)), DayKind::Holiday); // Saturday inside 元旦
        assert_eq!(kind(d(2026, 1, 4)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2026, 2, 14)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2026, 2, 23)), DayKind::Holiday);
        assert_eq!(kind(d(2026, 2, 28)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2026, 5, 9)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2026, 6, 19)), DayKind::Holiday);
        assert_eq!(kind(d(2026, 9, 20)), DayKind::MakeUpWorkday);
        assert_eq!(kind(d(2026, 9, 25)), DayKind::Holiday); // 中秋
        assert_eq!(kind(d(2026, 10, 7)), DayKind::Holiday);
        assert_eq!(kind(d(2026, 10, 10)), DayKind::MakeUpWorkday);
    }

    #[test]
    fn national_day_2025() {
        // Fri 26 Sep; Sat 27 off; Sun 28 make-up (1); Mon 29 (2); Tue 30 (3).
        check(d(2025, 9, 26), 3, d(2025, 9, 30));
        // Tue 30 Sep; 1–8 Oct off; Thu 9 (1), Fri 10 (2), Sat 11 make-up (3),
        // Sun 12 off, Mon 13 (4), Tue 14 (5).
        check(d(2025, 9, 30), 5, d(2025, 10, 14));
        // Starting on a holiday: the start day never counts anyway.
        check(d(2025, 10, 3), 1, d(2025, 10, 9));
    }

    #[test]
    fn spring_festival_2026() {
        // Fri 13 Feb; Sat 14 make-up (1); 15–23 off; Tue 24 (2), Wed 25 (3).
        check(d(2026, 2, 13), 3, d(2026, 2, 25));
        // Mon 23 Feb (last holiday) + 5: 24, 25, 26, 27, Sat 28 make-up.
        check(d(2026, 2, 23), 5, d(2026, 2, 28));
        // Across 元旦 2026 from the end of 2025: Wed 31 Dec; 1–3 Jan off; Sun 4
        // make-up (1); Mon 5 (2).
        check(d(2025, 12, 31), 2, d(2026, 1, 5));
    }

    #[test]
    fn zero_and_backward() {
        let cal = Calendar::china();
        assert_eq!(cal.add_working_days(d(2025, 10, 3), 0), Ok(d(2025, 10, 3)));
        assert_eq!(cal.sub_working_days(d(2025, 10, 9), 1), Ok(d(2025, 9, 30)));
        assert_eq!(cal.sub_working_days(d(2025, 10, 14), 5), Ok(d(2025, 9, 30)));
        assert_eq!(
            cal.working_days_between(d(2025, 10, 14), d(2025, 9, 30)),
            Ok(-5)
        );
        assert_eq!(
            cal.working_days_between(d(2025, 10, 2), d(2025, 10, 2)),
            Ok(0)
        );
    }

    #[test]
    fn natural_days_and_months() {
        let cal = Calendar::china();
        // Natural days ignore holidays: 15 days from 30 Sep end on 15 Oct.
        assert_eq!(
            cal.add_natural_days(d(2025, 9, 30), 15),
            Ok(d(2025, 10, 15))
        );
        // Month-end clamping (民法典 art. 202), including a leap year.
        assert_eq!(cal.add_months(d(2025, 1, 31), 1), Ok(d(2025, 2, 28)));
        assert_eq!(cal.add_months(d(2027, 11, 30), 3), Ok(d(2028, 2, 29)));
        assert_eq!(cal.sub_months(d(2028, 3, 31), 1), Ok(d(2028, 2, 29)));
        // No calendar needed for years no notice covers yet.
        assert_eq!(cal.add_months(d(2025, 3, 10), 36), Ok(d(2028, 3, 10)));
        assert_eq!(cal.sub_natural_days(d(2025, 3, 10), 10), Ok(d(2025, 2, 28)));
    }

    #[test]
    fn unknown_year_is_refused() {
        let cal = Calendar::china();
        let err = cal.is_working_day(d(2027, 3, 1)).expect_err("2027 unknown");
        assert_eq!(err, CalendarError::YearUnknown { year: 2027 });
        assert_eq!(err.code(), "CALENDAR_YEAR_UNKNOWN");
        assert!(err.message_zh().contains("2027"));
        // A count that runs off the end of 2026 is refused, not guessed.
        let err = cal
            .add_working_days(d(2026, 12, 28), 10)
            .expect_err("runs into 2027");
        assert_eq!(err.code(), "CALENDAR_YEAR_UNKNOWN");
        assert_eq!(
            cal.working_days_between(d(2024, 12, 30), d(2025, 1, 2))
                .map_err(|e| e.code()),
            Err("CALENDAR_YEAR_UNKNOWN")
        );
        // …but a count that only looks at known days works from 31 Dec 2024.
        assert_eq!(cal.add_working_days(d(2024, 12, 31), 1), Ok(d(2025, 1, 2)));
    }

    const MINIMAL: &str = r#"
        year = 2027
        source = "test notice"
        [[holidays]]
        name = "元旦"
        start = 2027-01-01
        end = 2027-01-03
        [[make_up_workdays]]
        date = 2027-01-09
        holiday = "元旦"
    "#;

    #[test]
    fn operator_adds_a_year() {
        let mut cal = Calendar::china();
        let y = CalendarYear::parse_toml(MINIMAL).expect("valid");
        assert_eq!(y.holidays()[0].name, "元旦");
        assert_eq!(y.make_up_workdays()[0].date, d(2027, 1, 9));
        cal.add_year(y.clone()).expect("new year");
        assert_eq!(cal.is_working_day(d(2027, 1, 9)), Ok(true)); // Saturday, make-up
        assert_eq!(cal.is_working_day(d(2027, 1, 1)), Ok(false));
        // Mon 28 Dec: 29, 30, 31 (3); 1–3 Jan off; 4–8 (8); Sat 9 make-up (9);
        // Sun 10 off; Mon 11 (10).
        assert_eq!(
            cal.add_working_days(d(2026, 12, 28), 10),
            Ok(d(2027, 1, 11))
        );

        let err = cal.add_year(y.clone()).expect_err("duplicate");
        assert_eq!(err.code(), "CALENDAR_YEAR_DUPLICATE");
        assert!(cal.replace_year(y.clone()).is_some());
        let err = Calendar::from_years([y.clone(), y]).expect_err("duplicate");
        assert_eq!(err.code(), "CALENDAR_YEAR_DUPLICATE");
    }

    #[test]
    fn bad_years_give_typed_errors() {
        let base = MINIMAL;
        assert_eq!(parse_err("year = "), "CALENDAR_PARSE_FAILED");
        assert_eq!(
            parse_err(&base.replace("source =", "sauce =")),
            "CALENDAR_PARSE_FAILED"
        );
        assert_eq!(
            parse_err(&base.replace("year = 2027", "year = 99999")),
            "CALENDAR_YEAR_INVALID"
        );
        assert_eq!(
            parse_err(&base.replace("\"test notice\"", "\" \"")),
            "CALENDAR_SOURCE_MISSING"
        );
        assert_eq!(
            parse_err(&base.replace("name = \"元旦\"", "name = \"\"")),
            "CALENDAR_NAME_EMPTY"
        );
        assert_eq!(
            parse_err(&base.replace("end = 2027-01-03", "end = 2028-01-03")),
            "CALENDAR_DATE_OUTSIDE_YEAR"
        );
        assert_eq!(
            parse_err(&base.replace("end = 2027-01-03", "end = 2026-12-31")),
            "CALENDAR_DATE_OUTSIDE_YEAR"
        );
        assert_eq!(
            parse_err(&base.replace("start = 2027-01-01", "start = 2027-01-05")),
            "CALENDAR_RANGE_REVERSED"
        );
        assert_eq!(
            parse_err(&base.replace("end = 2027-01-03", "end = 2027-01-03T08:00:00")),
            "CALENDAR_DATE_INVALID"
        );
        assert_eq!(
            parse_err(&base.replace("date = 2027-01-09", "date = 2027-01-02")),
            "CALENDAR_DAY_CONFLICT"
        );
        assert_eq!(
            parse_err(&base.replace("date = 2027-01-09", "date = 2027-01-08")),
            "CALENDAR_MAKE_UP_NOT_WEEKEND"
        );
        let overlapping =
            format!("{base}\n[[holidays]]\nname = \"x\"\nstart = 2027-01-03\nend = 2027-01-04\n");
        assert_eq!(parse_err(&overlapping), "CALENDAR_DAY_DUPLICATE");
        let twice = format!("{base}\n[[make_up_workdays]]\ndate = 2027-01-09\nholiday = \"x\"\n");
        assert_eq!(parse_err(&twice), "CALENDAR_DAY_DUPLICATE");
    }
}
