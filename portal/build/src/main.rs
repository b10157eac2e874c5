//! `yunshu-portal-build`: builds the portal's browser bundle without
//! cargo-leptos (which would download tools this network cannot reach).
//!
//! 1. `cargo rustc -p yunshu-portal --lib --crate-type cdylib --features
//!    hydrate --target wasm32-unknown-unknown` into `<target>/wasm` (the
//!    crate is an rlib for everyone else) — its own target dir, so
//!    the build does not wait on the lock of the cargo that runs this tool;
//! 2. wasm-bindgen in-process (`wasm-bindgen-cli-support`, the same version as
//!    the `wasm-bindgen` crate in Cargo.lock) → `<out>/pkg/yunshu_portal.js`
//!    and `yunshu_portal_bg.wasm`;
//! 3. gzip copies served as is by `yunshu serve` (`precompressed_gzip`).
//!
//! No `wasm-opt`: Debian's binaryen 108 predates the reference types Rust
//! emits since 1.82, and its output fails to start in the browser
//! (`WebAssembly.Table.set(): Argument 1 is invalid`). The size profile alone
//! keeps the bundle well under the 1 MB (gzip) budget.
//!
//! Prints `portal: wasm <bytes> B, gzip <bytes> B`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Build the yunshu portal's browser bundle")]
struct Args {
    /// Optimise for size (profile `wasm-release`); default is a debug build.
    #[arg(long)]
    release: bool,
    /// Output directory (the bundle goes to `<out>/pkg`). Default:
    /// `$CARGO_TARGET_DIR/portal` or `<workspace>/target/portal`.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The workspace to build, read at run time: `cargo run` sets
/// `CARGO_MANIFEST_DIR` to this package's directory. Not `env!`: clones on one
/// machine share the target directory, so this binary may have been compiled
/// from another clone.
fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(|d| PathBuf::from(d).join("../.."))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn gzip(path: &Path) -> anyhow::Result<u64> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&data)?;
    let bytes = gz.finish()?;
    let mut out = path.as_os_str().to_owned();
    out.push(".gz");
    std::fs::write(&out, &bytes).with_context(|| format!("write {}", out.display()))?;
    Ok(bytes.len() as u64)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = target_root();
    let wasm_target = target.join("wasm");
    let (profile, profile_dir) = if args.release {
        ("wasm-release", "wasm-release")
    } else {
        ("dev", "debug")
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "rustc",
            "--locked",
            "-p",
            "yunshu-portal",
            "--lib",
            "--crate-type",
            "cdylib",
            "--target",
            "wasm32-unknown-unknown",
            "--features",
            "hydrate",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(&wasm_target)
        .status()
        .context("run cargo for the wasm build")?;
    if !status.success() {
        bail!("the wasm build failed ({status})");
    }
    let input = wasm_target
        .join("wasm32-unknown-unknown")
        .join(profile_dir)
        .join("yunshu_portal.wasm");
    let out = args
        .out
        .unwrap_or_else(|| target.join("portal"))
        .join("pkg");
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .web(true)?
        .typescript(false)
        // Function names are for debuggers; in a release bundle they are
        // most of the bytes.
        .remove_name_section(args.release)
        .remove_producers_section(args.release)
        .generate(&out)
        .context("wasm-bindgen")?;
    let wasm = out.join("yunshu_portal_bg.wasm");
    let raw = std::fs::metadata(&wasm)?.len();
    let gz = gzip(&wasm)?;
    gzip(&out.join("yunshu_portal.js"))?;
    println!("portal: wasm {raw} B, gzip {gz} B → {}", out.display());
    Ok(())
}
