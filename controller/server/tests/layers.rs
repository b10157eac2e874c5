//! The controller's walls, as ARCHITECTURE.md states them, checked against the
//! crates' manifests: which workspace crates each controller crate may depend
//! on, and that HTTP and gRPC stay out of the layers that must not speak them.
//! The compiler already refuses an import of a crate that is not a dependency;
//! this test refuses the dependency itself, so a wall cannot be removed by
//! editing a `Cargo.toml` in passing.

use std::collections::BTreeSet;
use std::path::Path;

/// The controller crates (folder under `controller/`) and the workspace crates
/// each may depend on (ARCHITECTURE.md, "may depend on").
const ALLOWED: &[(&str, &[&str])] = &[
    ("auth", &["yunshu-domain", "yunshu-store", "yunshu-pki"]),
    (
        "workflow",
        &[
            "yunshu-auth",
            "yunshu-domain",
            "yunshu-store",
            "yunshu-placement",
            "yunshu-pki",
        ],
    ),
    (
        "drivers",
        &[
            "yunshu-domain",
            "yunshu-store",
            "yunshu-pki",
            "yunshu-proto",
        ],
    ),
    (
        "reconciler",
        &[
            "yunshu-workflow",
            "yunshu-drivers",
            "yunshu-auth",
            "yunshu-domain",
            "yunshu-store",
            "yunshu-placement",
            "yunshu-proto",
            "yunshu-pki",
        ],
    ),
    (
        "api",
        &[
            "yunshu-workflow",
            "yunshu-auth",
            "yunshu-drivers",
            "yunshu-domain",
            "yunshu-store",
            "yunshu-placement",
            "yunshu-proto",
            "yunshu-pki",
            "yunshu-portal",
        ],
    ),
    (
        "server",
        &[
            "yunshu-api",
            "yunshu-reconciler",
            "yunshu-workflow",
            "yunshu-drivers",
            "yunshu-domain",
            "yunshu-store",
            "yunshu-pki",
            "yunshu-portal",
        ],
    ),
];

/// Crates that speak HTTP or gRPC: none of them in the layers below the API
/// and the reconciler (utoipa may come only as an optional dependency, behind
/// the `openapi` feature the api crate turns on).
const WIRE: &[&str] = &[
    "axum",
    "http",
    "hyper",
    "tower",
    "tower-http",
    "tonic",
    "prost",
    "reqwest",
];

struct Manifest {
    /// Non-optional normal dependencies.
    required: BTreeSet<String>,
    /// Every normal dependency, optional ones included.
    all: BTreeSet<String>,
}

fn manifest(folder: &str) -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read Cargo.toml");
    let doc: toml::Table = toml::from_str(&text).expect("parse Cargo.toml");
    let deps = doc
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let optional = |v: &toml::Value| {
        v.as_table()
            .and_then(|t| t.get("optional"))
            .and_then(toml::Value::as_bool)
            .unwrap_or(false)
    };
    Manifest {
        required: deps
            .iter()
            .filter(|(_, v)| !optional(v))
            .map(|(k, _)| k.clone())
            .collect(),
        all: deps.keys().cloned().collect(),
    }
}

#[test]
fn controller_crates_depend_only_downwards() {
    for (folder, allowed) in ALLOWED {
        let deps = manifest(folder);
        let workspace: BTreeSet<&str> = deps
            .all
            .iter()
            .map(String::as_str)
            .filter(|d| d.starts_with("yunshu-"))
            .collect();
        let extra: Vec<&&str> = workspace.iter().filter(|d| !allowed.contains(d)).collect();
        assert!(
            extra.is_empty(),
            "controller/{folder} depends on {extra:?}, which ARCHITECTURE.md does not allow \
             (allowed: {allowed:?})"
        );
    }
}

#[test]
fn api_and_reconciler_do_not_know_each_other() {
    assert!(!manifest("api").all.contains("yunshu-reconciler"));
    assert!(!manifest("reconciler").all.contains("yunshu-api"));
}

#[test]
fn no_http_or_grpc_below_the_api() {
    for folder in ["auth", "workflow", "drivers"] {
        let deps = manifest(folder);
        let wire: Vec<&&str> = WIRE.iter().filter(|w| deps.all.contains(**w)).collect();
        assert!(wire.is_empty(), "controller/{folder} depends on {wire:?}");
        assert!(
            !deps.required.contains("utoipa"),
            "controller/{folder}: utoipa only as an optional dependency (feature openapi)"
        );
    }
    // The reconciler speaks gRPC to drivers (through yunshu-proto), never HTTP.
    let reconciler = manifest("reconciler");
    for http in ["axum", "http", "hyper", "tower-http", "utoipa", "reqwest"] {
        assert!(
            !reconciler.all.contains(http),
            "controller/reconciler depends on {http}"
        );
    }
}
