//! What a service catalog (服务目录) says about one server line: the VM shape
//! it allows and what a server of that shape costs per month at the
//! catalog's unit prices (Beijing's are maximum prices per month, Datong's
//! tender prices per year). The application form checks lines against the
//! shape as they are typed and shows the estimate; the bill itself is the
//! controller's.

use serde_json::Value;

/// Inclusive range with a step, as the catalog writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub min: u32,
    pub max: u32,
    pub step: u32,
}

impl Limits {
    pub const fn new(min: u32, max: u32) -> Self {
        Limits { min, max, step: 1 }
    }

    pub fn admits(&self, v: u32) -> bool {
        (self.min..=self.max).contains(&v) && (v - self.min).is_multiple_of(self.step.max(1))
    }
}

/// The unit price of one measure: `fen` for `quantity` units, monthly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Price {
    fen_per_month: u64,
    quantity: u64,
}

impl Price {
    /// The cost of `amount` units in fen, rounded to the nearest fen.
    fn of(&self, amount: u64) -> u64 {
        (amount * self.fen_per_month * 2 + self.quantity) / (self.quantity * 2)
    }
}

/// The parts of a catalog one server line needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    pub vcpu: Option<Limits>,
    pub memory_gib: Option<Limits>,
    vcpu_price: Option<Price>,
    memory_price: Option<Price>,
    storage_price: Option<Price>,
    backup_price: Option<Price>,
}

/// One server's shape, as the form holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub vcpu: u32,
    pub memory_gib: u32,
    pub disk_gib: u32,
    pub backup_gib: u32,
}

/// `"14.02"` → 1402 fen.
fn fen(price: &str) -> Option<u64> {
    let (yuan, cents) = price.split_once('.').unwrap_or((price, "0"));
    let cents = match cents.len() {
        1 => cents.parse::<u64>().ok()? * 10,
        2 => cents.parse::<u64>().ok()?,
        _ => return None,
    };
    yuan.parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

/// Whether a catalog item's `arch` tag covers the form's architecture.
fn arch_matches(tag: &str, arch: &str) -> bool {
    match tag {
        "any" | "" => true,
        "x86" => arch == "x86_64",
        // 信创: a domestic architecture (Kunpeng/Phytium arm64, Hygon c86).
        "xinchuang" => matches!(arch, "arm64" | "c86"),
        _ => false,
    }
}

impl Pricing {
    /// Reads the catalog document (`GET /api/v1/catalogs/{id}`) for a server of
    /// architecture `arch`: an item for that architecture wins over an `any`
    /// item; for storage the standard class is the one a plain disk gets.
    pub fn from_catalog(catalog: &Value, arch: &str) -> Pricing {
        let items = catalog["items"].as_array().cloned().unwrap_or_default();
        let pick = |measure: &str| -> Option<&Value> {
            let mut fitting = items.iter().filter(|i| {
                i["measure"].as_str() == Some(measure)
                    && arch_matches(i["arch"].as_str().unwrap_or("any"), arch)
                    && (measure != "storage_gib"
                        || matches!(i["class"].as_str(), None | Some("standard")))
            });
            let first = fitting.next()?;
            // An item for this very architecture is more specific than `any`.
            Some(
                std::iter::once(first)
                    .chain(fitting)
                    .find(|i| i["arch"].as_str() != Some("any"))
                    .unwrap_or(first),
            )
        };
        let price = |measure: &str| -> Option<Price> {
            let item = pick(measure)?;
            let fen = fen(item["price"].as_str()?)?;
            let quantity = item["quantity"].as_u64().filter(|q| *q > 0).unwrap_or(1);
            let fen_per_month = match item["billing"].as_str() {
                Some("yearly") => fen.div_ceil(12),
                _ => fen,
            };
            Some(Price {
                fen_per_month,
                quantity,
            })
        };
        let limits = |lo: &str, hi: &str, step: &str| -> Option<Limits> {
            let item = pick("vcpu")?;
            Some(Limits {
                min: u32::try_from(item[lo].as_u64()?).ok()?,
                max: u32::try_from(item[hi].as_u64()?).ok()?,
                step: item[step]
                    .as_u64()
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(1),
            })
        };
        Pricing {
            vcpu: limits("vcpu_min", "vcpu_max", "vcpu_step"),
            memory_gib: limits("memory_min_gib", "memory_max_gib", "memory_step_gib"),
            vcpu_price: price("vcpu"),
            memory_price: price("memory_gib"),
            storage_price: price("storage_gib"),
            backup_price: price("backup_gib"),
        }
    }

    /// One server's monthly cost in fen, if the catalog prices vCPU and
    /// memory (disks and backup are added where it prices them).
    pub fn monthly_fen(&self, s: Shape) -> Option<u64> {
        let vcpu = self.vcpu_price?.of(u64::from(s.vcpu));
        let memory = self.memory_price?.of(u64::from(s.memory_gib));
        let disk = self
            .storage_price
            .map_or(0, |p| p.of(u64::from(s.disk_gib)));
        let backup = self
            .backup_price
            .map_or(0, |p| p.of(u64::from(s.backup_gib)));
        Some(vcpu + memory + disk + backup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn beijing() -> Value {
        json!({"items": [
            {"code": "1001", "measure": "vcpu", "arch": "any", "price": "14.02", "quantity": 1,
             "billing": "monthly", "vcpu_min": 1, "vcpu_max": 16, "vcpu_step": 1,
             "memory_min_gib": 1, "memory_max_gib": 64, "memory_step_gib": 1},
            {"code": "1002", "measure": "memory_gib", "arch": "any", "price": "41.15", "quantity": 1, "billing": "monthly"},
            {"code": "1011", "measure": "storage_gib", "class": "standard", "arch": "any", "price": "28.60", "quantity": 100, "billing": "monthly"},
            {"code": "1012", "measure": "storage_gib", "class": "performance", "arch": "any", "price": "64.25", "quantity": 100, "billing": "monthly"},
            {"code": "1016", "measure": "backup_gib", "arch": "any", "price": "10.00", "quantity": 100, "billing": "monthly"}
        ]})
    }

    #[test]
    fn beijing_prices_a_server_per_month() {
        let p = Pricing::from_catalog(&beijing(), "arm64");
        assert_eq!(p.vcpu, Some(Limits::new(1, 16)));
        assert_eq!(p.memory_gib, Some(Limits::new(1, 64)));
        let shape = Shape {
            vcpu: 4,
            memory_gib: 8,
            disk_gib: 150,
            backup_gib: 0,
        };
        // 4 × 14.02 + 8 × 41.15 + 150/100 × 28.60 (standard, not performance)
        // = 56.08 + 329.20 + 42.90 = 428.18
        assert_eq!(p.monthly_fen(shape), Some(42_818));
    }

    #[test]
    fn yearly_prices_are_spread_over_twelve_months_and_unpriced_items_give_no_estimate() {
        let datong = json!({"items": [
            {"measure": "vcpu", "arch": "any", "price": "120", "quantity": 1, "billing": "yearly"},
            {"measure": "memory_gib", "arch": "any", "quantity": 1, "billing": "yearly"}
        ]});
        let p = Pricing::from_catalog(&datong, "x86_64");
        assert_eq!(p.vcpu_price.map(|v| v.fen_per_month), Some(1_000));
        let shape = Shape {
            vcpu: 2,
            memory_gib: 4,
            disk_gib: 0,
            backup_gib: 0,
        };
        assert_eq!(p.monthly_fen(shape), None, "memory has no price");
        assert_eq!(p.vcpu, None, "no shape limits in this catalog");
    }

    #[test]
    fn an_item_for_the_architecture_wins_over_any() {
        let c = json!({"items": [
            {"measure": "vcpu", "arch": "any", "price": "10.00", "quantity": 1},
            {"measure": "vcpu", "arch": "xinchuang", "price": "8.00", "quantity": 1},
            {"measure": "memory_gib", "arch": "any", "price": "1.00", "quantity": 1}
        ]});
        let one = Shape {
            vcpu: 1,
            memory_gib: 1,
            disk_gib: 0,
            backup_gib: 0,
        };
        assert_eq!(
            Pricing::from_catalog(&c, "arm64").monthly_fen(one),
            Some(900)
        );
        assert_eq!(
            Pricing::from_catalog(&c, "x86_64").monthly_fen(one),
            Some(1_100)
        );
    }

    #[test]
    fn limits_and_prices_parse_strictly() {
        assert!(
            Limits {
                min: 2,
                max: 16,
                step: 2
            }
            .admits(8)
        );
        assert!(
            !Limits {
                min: 2,
                max: 16,
                step: 2
            }
            .admits(7)
        );
        assert!(!Limits::new(1, 16).admits(17));
        assert_eq!(fen("14.02"), Some(1402));
        assert_eq!(fen("354"), Some(35_400));
        assert_eq!(fen("0.5"), Some(50));
        assert_eq!(fen("1.234"), None);
        assert_eq!(fen("x"), None);
    }
}
