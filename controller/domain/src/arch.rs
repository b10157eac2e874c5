//! CPU architectures (一云多芯): which instruction sets a pool, a catalog item or a
//! request names, and their minimum clock (003 §3.2.1.1).

use std::fmt;

use serde::{Deserialize, Serialize};

/// CPU architecture of a pool or a requested server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// Intel/AMD x86-64.
    #[serde(rename = "x86_64")]
    X86_64,
    /// ARM64: Kunpeng 鲲鹏, Phytium 飞腾.
    #[serde(rename = "arm64")]
    Arm64,
    /// Hygon 海光: x86-compatible but its own pool.
    #[serde(rename = "c86")]
    C86,
}

impl Architecture {
    pub const ALL: [Architecture; 3] =
        [Architecture::X86_64, Architecture::Arm64, Architecture::C86];

    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
            Architecture::C86 => "c86",
        }
    }

    /// Minimum CPU clock in MHz: ARM ≥ 2.4 GHz, C86 and x86 ≥ 2.2 GHz (003 §3.2.1.1).
    /// Integer MHz so that no float comparison decides compliance.
    pub fn min_clock_mhz(self) -> u32 {
        match self {
            Architecture::Arm64 => 2400,
            Architecture::X86_64 | Architecture::C86 => 2200,
        }
    }

    /// Whether this is a domestic (信创) architecture.
    pub fn is_domestic(self) -> bool {
        matches!(self, Architecture::Arm64 | Architecture::C86)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names() {
        for a in Architecture::ALL {
            let json = serde_json::to_string(&a).expect("ser");
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<Architecture>(&json).expect("de"), a);
        }
        assert!(serde_json::from_str::<Architecture>("\"X86_64\"").is_err());
    }

    #[test]
    fn clocks_and_domestic() {
        assert_eq!(Architecture::Arm64.min_clock_mhz(), 2400);
        assert_eq!(Architecture::C86.min_clock_mhz(), 2200);
        assert!(Architecture::C86.is_domestic());
        assert!(!Architecture::X86_64.is_domestic());
    }
}
