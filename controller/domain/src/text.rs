//! Validated free text: [`Name`] (one line, short) and [`Text`] (multi-line, bounded).
//!
//! Owns the rule that every human-entered string is bounded, trimmed and free of
//! control characters, so bad input is refused at the edge (SPEC §8: "bad input gets
//! a clear error and changes nothing") instead of deep inside a report or an Excel
//! export.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorCode;

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("text must not be empty")]
    Empty,
    #[error("text is {len} characters long; at most {max} are allowed")]
    TooLong { max: usize, len: usize },
    #[error("text contains a control character (U+{code:04X})")]
    ControlChar { code: u32 },
}

impl ErrorCode for TextError {
    fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "TEXT_EMPTY",
            TextError::TooLong { .. } => "TEXT_TOO_LONG",
            TextError::ControlChar { .. } => "TEXT_CONTROL_CHAR",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            TextError::Empty => "内容不能为空".to_string(),
            TextError::TooLong { max, len } => format!("内容过长：{len} 个字符，最多 {max} 个"),
            TextError::ControlChar { code } => format!("内容含有控制字符 U+{code:04X}"),
        }
    }
}

fn check(value: &str, max: usize, allow_newlines: bool) -> Result<String, TextError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    let len = trimmed.chars().count();
    if len > max {
        return Err(TextError::TooLong { max, len });
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(TextError::ControlChar { code: c as u32 });
    }
    Ok(trimmed.to_string())
}

/// A short single-line name: 1–100 characters after trimming, no control characters.
/// Used for names of tenants, systems, servers, people and catalog items.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Longest name accepted, in characters (not bytes: names are mostly Chinese).
    pub const MAX_CHARS: usize = 100;

    /// Trims `value` and refuses empty, over-long or multi-line input.
    pub fn new(value: impl AsRef<str>) -> Result<Self, TextError> {
        check(value.as_ref(), Self::MAX_CHARS, false).map(Name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Multi-line free text (descriptions, reasons, alarm content): 1–4000 characters
/// after trimming; newlines and tabs allowed, other control characters refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// Longest text accepted, in characters.
    pub const MAX_CHARS: usize = 4000;

    /// Trims `value` and refuses empty or over-long input.
    pub fn new(value: impl AsRef<str>) -> Result<Self, TextError> {
        check(value.as_ref(), Self::MAX_CHARS, true).map(Text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_impls {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = TextError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $t::new(value)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = TextError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                $t::new(value)
            }
        }
        impl std::str::FromStr for $t {
            type Err = TextError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $t::new(value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_impls!(Name);
string_impls!(Text);

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(input: &str, expected: Result<&str, TextError>) {
        assert_eq!(
            Name::new(input).map(String::from),
            expected.map(str::to_string),
            "{input:?}"
        );
    }

    #[test]
    fn name_validation() {
        check_name("  北京市经济和信息化局 ", Ok("北京市经济和信息化局"));
        check_name("", Err(TextError::Empty));
        check_name("   ", Err(TextError::Empty));
        check_name("a\nb", Err(TextError::ControlChar { code: 10 }));
        let long = "字".repeat(101);
        check_name(&long, Err(TextError::TooLong { max: 100, len: 101 }));
        check_name(&"字".repeat(100), Ok(&"字".repeat(100)));
    }

    #[test]
    fn text_allows_newlines_but_not_other_controls() {
        assert_eq!(
            Text::new("第一行\n第二行").map(String::from),
            Ok("第一行\n第二行".to_string())
        );
        assert_eq!(
            Text::new("a\u{7}b"),
            Err(TextError::ControlChar { code: 7 })
        );
    }

    #[test]
    fn serde_goes_through_validation() {
        let n: Name = serde_json::from_str("\"政务云\"").expect("valid");
        assert_eq!(serde_json::to_string(&n).expect("ser"), "\"政务云\"");
        assert!(serde_json::from_str::<Name>("\"\"").is_err());
        assert!(serde_json::from_str::<Text>("\"  \"").is_err());
    }
}
