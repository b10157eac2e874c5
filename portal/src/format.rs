//! How the portal writes dates and money for Chinese government users:
//! 2026-11-23 (China Standard Time), ¥1,234.56.

use chrono::{DateTime, FixedOffset, Utc};

/// An RFC 3339 instant in China Standard Time with `pattern`; the input if it
/// is not one.
fn cst(rfc3339: &str, pattern: &str) -> String {
    match (
        DateTime::parse_from_rfc3339(rfc3339),
        FixedOffset::east_opt(8 * 3600),
    ) {
        (Ok(t), Some(zone)) => t
            .with_timezone(&Utc)
            .with_timezone(&zone)
            .format(pattern)
            .to_string(),
        _ => rfc3339.to_owned(),
    }
}

/// The CST calendar date: `2026-11-23`.
pub fn date(rfc3339: &str) -> String {
    cst(rfc3339, "%Y-%m-%d")
}

/// The CST date and minute: `2026-11-23 14:05`.
pub fn date_time(rfc3339: &str) -> String {
    cst(rfc3339, "%Y-%m-%d %H:%M")
}

/// A deadline clock: "剩余 3 个工作日 · 截止 2026-11-26" (overdue, due today,
/// or only the date when the calendar does not cover the days between).
pub fn clock(lang: crate::i18n::Lang, working_days_left: Option<i64>, due_date: &str) -> String {
    use crate::i18n::t;
    let due = t(lang, "deadline.due").replace("{date}", due_date);
    let left = match working_days_left {
        Some(n) if n > 0 => t(lang, "deadline.left").replace("{n}", &n.to_string()),
        Some(0) => t(lang, "deadline.today").to_owned(),
        Some(n) => t(lang, "deadline.overdue").replace("{n}", &(-n).to_string()),
        None => return due,
    };
    format!("{left} · {due}")
}

/// Yuan with two decimals and thousands separators: `¥1,234.56`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let (whole, cents) = (fen / 100, fen % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}¥{grouped}.{cents:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_china_standard_time() {
        // 16:30 UTC is 00:30 the next day in Beijing.
        assert_eq!(date("2026-11-22T16:30:00Z"), "2026-11-23");
        assert_eq!(date("2026-11-23T09:00:00+08:00"), "2026-11-23");
        assert_eq!(date("soon"), "soon");
    }

    #[test]
    fn deadline_clocks() {
        use crate::i18n::Lang;
        assert_eq!(
            clock(Lang::Zh, Some(3), "2026-11-26"),
            "剩余 3 个工作日 · 截止 2026-11-26"
        );
        assert_eq!(
            clock(Lang::En, Some(-2), "2026-11-20"),
            "Overdue by 2 working days · due 2026-11-20"
        );
        assert_eq!(clock(Lang::Zh, None, "2027-01-04"), "截止 2027-01-04");
    }

    #[test]
    fn money() {
        assert_eq!(yuan(123_456), "¥1,234.56");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(100_000_000), "¥1,000,000.00");
        assert_eq!(yuan(-1_050), "-¥10.50");
    }
}
