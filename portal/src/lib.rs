// Leptos views are deeply nested types; the default limit is too low for
// the release wasm build.
#![recursion_limit = "256"]

//! The yunshu self-service portal (SPEC §1, issue 7): Leptos pages rendered by
//! `yunshu serve` (feature `ssr`) and hydrated in the browser (feature
//! `hydrate`, built for `wasm32-unknown-unknown` by `yunshu-portal-build`).
//!
//! Talks only to the controller's HTTP API (`api.rs`); every label comes from
//! the two-language table in `i18n.rs`.

pub mod api;
pub mod app;
pub mod format;
pub mod i18n;
mod pages;
pub mod pricing;
#[cfg(feature = "ssr")]
pub mod server;

/// The browser entry point: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Marks the page interactive (tests and slow links wait for it).
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
