//! Five-field cron schedules (`minute hour day-of-month month day-of-week`)
//! for backup policies: `*`, numbers, lists (`1,15`), ranges (`1-5`) and
//! steps (`*/15`, `0-30/10`). Times are UTC.

/// A parsed schedule: for each field, which values match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    fields: [Vec<bool>; 5],
}

/// (lowest, highest) of each field.
const RANGES: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
const NAMES: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

fn field(text: &str, (lo, hi): (u32, u32), name: &str) -> Result<Vec<bool>, String> {
    let mut set = vec![false; hi as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: step {s:?} is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse::<u32>()
                .map_err(|_| format!("{name}: {a:?} is not a number"))?;
            let b = b
                .parse::<u32>()
                .map_err(|_| format!("{name}: {b:?} is not a number"))?;
            (a, b)
        } else {
            let a = range
                .parse::<u32>()
                .map_err(|_| format!("{name}: {range:?} is not a number"))?;
            (a, a)
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{name}: {range} is outside {lo}–{hi}"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "schedule {text:?}: five fields expected (minute hour day month weekday)"
            ));
        }
        let mut fields: [Vec<bool>; 5] = Default::default();
        for (i, p) in parts.iter().enumerate() {
            fields[i] = field(p, RANGES[i], NAMES[i])?;
        }
        Ok(Schedule { fields })
    }

    /// Whether the minute starting at `unix_seconds` (UTC) is scheduled.
    pub fn matches(&self, unix_seconds: u64) -> bool {
        let minutes = unix_seconds / 60;
        let minute = (minutes % 60) as usize;
        let hour = ((minutes / 60) % 24) as usize;
        let days = minutes / 60 / 24;
        // 1970-01-01 was a Thursday (4).
        let weekday = ((days + 4) % 7) as usize;
        let (_, month, day) = civil_from_days(days as i64);
        self.fields[0][minute]
            && self.fields[1][hour]
            && self.fields[2][day as usize]
            && self.fields[3][month as usize]
            && self.fields[4][weekday]
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (Howard
/// Hinnant's civil-from-days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_at_two_matches_two_oclock_only() {
        let s = Schedule::parse("0 2 * * *").expect("parse");
        // 2026-12-05 02:00 UTC = 1796436000.
        assert!(s.matches(1_796_436_000));
        assert!(!s.matches(1_796_436_000 + 60));
        assert!(!s.matches(1_796_436_000 + 3600));
    }

    #[test]
    fn steps_ranges_and_weekdays() {
        let s = Schedule::parse("*/15 9-17 * * 1-5").expect("parse");
        // Saturday 2026-12-05 09:15 UTC: a weekend, no match.
        assert!(!s.matches(1_796_436_000 + 7 * 3600 + 15 * 60));
        // Monday 2026-12-07 09:15 UTC.
        assert!(s.matches(1_796_436_000 + 2 * 86_400 + 7 * 3600 + 15 * 60));
        assert!(!s.matches(1_796_436_000 + 2 * 86_400 + 7 * 3600 + 16 * 60));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        assert!(
            Schedule::parse("0 2 * *")
                .expect_err("refused")
                .contains("five fields")
        );
        assert!(
            Schedule::parse("61 2 * * *")
                .expect_err("refused")
                .contains("minute")
        );
        assert!(
            Schedule::parse("0 2 * * */0")
                .expect_err("refused")
                .contains("step")
        );
    }
}
