//! How the portal writes dates and money for Chinese government users:
//! 2026-11-23 (China Standard Time), ¥1,234.56.

use chrono::{DateTime, FixedOffset, Utc};

/// The CST calendar date of an RFC 3339 instant; the input if it is not one.
pub fn date(rfc3339: &str) -> String {
    match (
        DateTime::parse_from_rfc3339(rfc3339),
        FixedOffset::east_opt(8 * 3600),
    ) {
        (Ok(t), Some(cst)) => t
            .with_timezone(&Utc)
            .with_timezone(&cst)
            .format("%Y-%m-%d")
            .to_string(),
        _ => rfc3339.to_owned(),
    }
}

/// The CST date and minute of an RFC 3339 instant: `2026-11-23 14:05`.
pub fn date_time(rfc3339: &str) -> String {
    match (
        DateTime::parse_from_rfc3339(rfc3339),
        FixedOffset::east_opt(8 * 3600),
    ) {
        (Ok(t), Some(cst)) => t
            .with_timezone(&Utc)
            .with_timezone(&cst)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        _ => rfc3339.to_owned(),
    }
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
    fn money() {
        assert_eq!(yuan(123_456), "¥1,234.56");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(100_000_000), "¥1,000,000.00");
        assert_eq!(yuan(-1_050), "-¥10.50");
    }
}
