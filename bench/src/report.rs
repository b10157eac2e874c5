//! The `BENCH <name> <value> <unit>` lines.

pub fn bench(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.1} {unit}");
}

pub fn ratio(name: &str, a: f64, b: f64) {
    if b > 0.0 {
        println!("BENCH {name} {:.2} ratio", a / b);
    }
}
