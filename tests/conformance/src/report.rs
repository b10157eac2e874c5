//! The outcome of a conformance run: one line per check and a summary line that CI
//! runners recognise (`N passed, M failed`).

use std::fmt;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Stable snake_case name (see [`crate::names`]).
    pub name: String,
    pub passed: bool,
    /// Why it failed (empty or informational when it passed). Always one line.
    pub detail: String,
    /// Wall-clock time the check took, cleanup excluded.
    pub millis: u64,
}

impl CheckResult {
    pub fn pass(name: &str, millis: u64) -> Self {
        Self {
            name: name.to_owned(),
            passed: true,
            detail: String::new(),
            millis,
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>, millis: u64) -> Self {
        Self {
            name: name.to_owned(),
            passed: false,
            // One line per check keeps the report greppable.
            detail: one_line(&detail.into()),
            millis,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every check of a run, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn passed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    pub fn failed_count(&self) -> usize {
        self.checks.len() - self.passed_count()
    }

    /// The result of the check called `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            if c.passed {
                writeln!(f, "PASS {} ({} ms)", c.name, c.millis)?;
            } else {
                writeln!(f, "FAIL {}: {}", c.name, c.detail)?;
            }
        }
        writeln!(
            f,
            "{} passed, {} failed",
            self.passed_count(),
            self.failed_count()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_one_line_per_check_and_a_summary() {
        let report = Report {
            checks: vec![
                CheckResult::pass("info", 12),
                CheckResult::fail("delete_idempotent", "boom\nsecond line", 3),
            ],
        };
        assert_eq!(
            report.to_string(),
            "PASS info (12 ms)\nFAIL delete_idempotent: boom; second line\n1 passed, 1 failed\n"
        );
        assert!(!report.passed());
        assert_eq!(report.failures().count(), 1);
        assert!(report.check("info").is_some_and(|c| c.passed));
    }
}
