//! Serving the portal from `yunshu serve`: the page routes (server-side
//! rendered with the API router in context) and the browser bundle under
//! `/pkg` (precompressed gzip when present).

use std::path::{Path, PathBuf};

use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::api::ApiRouter;
use crate::app::{App, shell};

/// The bundle's file stem (`yunshu_portal.js`, `yunshu_portal_bg.wasm`).
pub const OUTPUT_NAME: &str = "yunshu_portal";

/// Where the bundle is looked for when nothing says otherwise:
/// `$YUNSHU_PORTAL_ASSETS`, else `$CARGO_TARGET_DIR/portal`, else
/// `target/portal` under the working directory (what `yunshu-portal-build`
/// writes).
pub fn default_assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("YUNSHU_PORTAL_ASSETS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("portal")
}

/// Whether `assets` holds a built bundle.
pub fn has_bundle(assets: &Path) -> bool {
    assets
        .join("pkg")
        .join(format!("{OUTPUT_NAME}_bg.wasm"))
        .is_file()
}

/// The portal's routes. `api` is the controller's API router: pages call it
/// in-process while rendering.
pub fn router(api: axum::Router, assets: &Path) -> axum::Router {
    if !has_bundle(assets) {
        tracing::warn!(
            assets = %assets.display(),
            "portal bundle not found: pages render on the server but stay static; \
             build it with `cargo run -p yunshu-portal-build`"
        );
    }
    let options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(assets.display().to_string())
        .site_pkg_dir("pkg")
        .build();
    let routes = generate_route_list(App);
    let context = {
        let api = api.clone();
        move || {
            provide_context(ApiRouter(api.clone()));
            leptos::nonce::provide_nonce();
        }
    };
    let pkg = tower_http::services::ServeDir::new(assets.join("pkg")).precompressed_gzip();
    axum::Router::new()
        .leptos_routes_with_context(&options, routes, context, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", pkg)
        .fallback(leptos_axum::file_and_error_handler_with_context(
            {
                let api = api.clone();
                move || {
                    provide_context(ApiRouter(api.clone()));
                    leptos::nonce::provide_nonce();
                }
            },
            shell,
        ))
        .with_state(options)
}
