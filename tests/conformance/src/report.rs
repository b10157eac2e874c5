//! The outcome of a conformance run: one line per check and a summary line that CI
//! runners recognise (`N passed, M failed, K skipped`; the first two figures as
//! before skipped checks existed).

use std::fmt;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Stable snake_case name (see [`crate::names`]).
    pub name: String,
    /// True when the check ran and passed (false when it failed or was skipped).
    pub passed: bool,
    /// True when the check did not apply to this driver (a kind it does not
    /// declare): neither passed nor failed.
    pub skipped: bool,
    /// Why it failed or was skipped (empty when it passed). Always one line.
    pub detail: String,
    /// Wall-clock time the check took, cleanup excluded.
    pub millis: u64,
}

impl CheckResult {
    pub fn pass(name: &str, millis: u64) -> Self {
        Self {
            name: name.to_owned(),
            passed: true,
            skipped: false,
            detail: String::new(),
            millis,
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>, millis: u64) -> Self {
        Self {
            name: name.to_owned(),
            passed: false,
            skipped: false,
            // One line per check keeps the report greppable.
            detail: one_line(&detail.into()),
            millis,
        }
    }

    pub fn skip(name: &str, why: impl Into<String>, millis: u64) -> Self {
        Self {
            name: name.to_owned(),
            passed: false,
            skipped: true,
            detail: one_line(&why.into()),
            millis,
        }
    }

    /// Ran and did not pass.
    pub fn failed(&self) -> bool {
        !self.passed && !self.skipped
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
    /// True when no check failed (skipped ones do not count against it).
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(CheckResult::failed)
    }

    pub fn passed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    pub fn failed_count(&self) -> usize {
        self.checks.iter().filter(|c| c.failed()).count()
    }

    pub fn skipped_count(&self) -> usize {
        self.checks.iter().filter(|c| c.skipped).count()
    }

    /// The result of the check called `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.failed())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            if c.passed {
                writeln!(f, "PASS {} ({} ms)", c.name, c.millis)?;
            } else if c.skipped {
                writeln!(f, "SKIP {}: {}", c.name, c.detail)?;
            } else {
                writeln!(f, "FAIL {}: {}", c.name, c.detail)?;
            }
        }
        writeln!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed_count(),
            self.failed_count(),
            self.skipped_count()
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
                CheckResult::skip("lifecycle_eip", "not declared", 0),
            ],
        };
        assert_eq!(
            report.to_string(),
            "PASS info (12 ms)\nFAIL delete_idempotent: boom; second line\nSKIP lifecycle_eip: not declared\n1 passed, 1 failed, 1 skipped\n"
        );
        assert!(!report.passed());
        assert_eq!(report.failures().count(), 1);
        let skipped_only = Report {
            checks: vec![
                CheckResult::pass("info", 1),
                CheckResult::skip("lifecycle_eip", "not declared", 0),
            ],
        };
        assert!(skipped_only.passed(), "a skip is no failure");
        assert_eq!(skipped_only.failed_count(), 0);
        assert!(report.check("info").is_some_and(|c| c.passed));
    }
}
