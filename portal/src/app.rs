//! The page shell, the router and the frame every page shares: header with
//! the product name, role-aware navigation, the language switch and sign-out.

use leptos::prelude::*;
use leptos_meta::{Html, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::i18n::{Lang, t};
use crate::pages::dashboard::{Dashboard, Me};
use crate::pages::{
    activate::Activate, admin::Admin, admin_drivers::AdminDrivers, admin_rules::AdminRules,
    admin_users::AdminUsers, audit::Audit, capacity::Capacity, login::Login,
    order_detail::OrderDetail, order_new::OrderNew, profile::Profile, review::Review,
    system_detail::SystemDetail, system_new::SystemNew,
};

/// The page's Content-Security-Policy: scripts only with this response's
/// nonce (the hydration bootstrap) and what they load (`'strict-dynamic'`),
/// WebAssembly compiled from them; nothing else the API's policy forbids
/// either. An injected `<script>` or `onclick=` in a rendered name does not run.
#[cfg(feature = "ssr")]
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"
    )
}

/// The whole HTML document, rendered on the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) && let Ok(csp) = axum::http::HeaderValue::from_str(&content_security_policy(&nonce))
    {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, csp);
    }
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <style>{include_str!("../style.css")}</style>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The language chosen by the `lang` cookie (简体中文 when there is none).
fn initial_lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .and_then(|p| {
                p.headers
                    .get(axum::http::header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_cookie_header)
            })
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        use wasm_bindgen::JsCast;
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
            .and_then(|d| d.cookie().ok())
            .and_then(|c| Lang::from_cookie_header(&c))
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::default()
    }
}

/// The language of this page (a signal: the switch relabels everything).
pub fn use_lang() -> RwSignal<Lang> {
    use_context::<RwSignal<Lang>>().unwrap_or_else(|| RwSignal::new(Lang::default()))
}

/// A reactive label: `{tr("nav.dashboard")}` in a view.
pub fn tr(key: &'static str) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || t(lang.get(), key)
}

/// Sends the browser to `path` (a full load, so the server renders it with
/// the new session); on the server, answers the page request with a redirect.
pub fn go(path: &str) {
    #[cfg(feature = "ssr")]
    leptos_axum::redirect(path);
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(w) = web_sys::window() {
        let _ = w.location().set_href(path);
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let _ = path;
}

/// What a page shows while its data loads.
#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="loading">{tr("common.loading")}</p> }
}

/// What a page shows when its data could not be read: a session that ended
/// sends the browser to sign in; anything else is said in the page's language.
pub fn failure(e: crate::api::ApiError) -> AnyView {
    if e.needs_login() {
        go("/login");
        return view! { <Loading/> }.into_any();
    }
    let lang = use_lang();
    view! { <p class="form-error" role="alert" id="load-error">{move || e.text(lang.get()).to_owned()}</p> }
        .into_any()
}

/// Stores the language choice for the next page loads.
fn remember_lang(lang: Lang) {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        use wasm_bindgen::JsCast;
        if let Some(doc) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
        {
            let _ = doc.set_cookie(&format!(
                "lang={}; path=/; max-age=31536000; samesite=strict",
                lang.code()
            ));
        }
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    let _ = lang;
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang = RwSignal::new(initial_lang());
    provide_context(lang);
    view! {
        <Html {..} lang=move || lang.get().code()/>
        <Title text=move || t(lang.get(), "app.name")/>
        <Router>
            <Routes fallback=NotFound>
                // Data pages render once their API reads are done (in-process,
                // milliseconds), so a redirect to sign-in is a real 302.
                <Route path=path!("/") view=Dashboard ssr=SsrMode::Async/>
                <Route path=path!("/login") view=Login/>
                <Route path=path!("/activate") view=Activate/>
                <Route path=path!("/profile") view=Profile ssr=SsrMode::Async/>
                <Route path=path!("/orders/new") view=OrderNew ssr=SsrMode::Async/>
                <Route path=path!("/systems/new") view=SystemNew/>
                <Route path=path!("/systems/:number") view=SystemDetail ssr=SsrMode::Async/>
                <Route path=path!("/orders/:id") view=OrderDetail ssr=SsrMode::Async/>
                <Route path=path!("/review") view=Review ssr=SsrMode::Async/>
                <Route path=path!("/capacity") view=Capacity ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=Audit ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=Admin ssr=SsrMode::Async/>
                <Route path=path!("/admin/users") view=AdminUsers ssr=SsrMode::Async/>
                <Route path=path!("/org") view=crate::pages::admin_org::AdminOrg ssr=SsrMode::Async/>
                <Route path=path!("/admin/drivers") view=AdminDrivers ssr=SsrMode::Async/>
                <Route path=path!("/admin/rules") view=AdminRules ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

/// The language switch: relabels the page at once and remembers the choice.
#[component]
pub fn LangSwitch() -> impl IntoView {
    let lang = use_lang();
    view! {
        <button
            type="button"
            class="lang"
            id="lang-switch"
            on:click=move |_| {
                let next = lang.get_untracked().other();
                lang.set(next);
                remember_lang(next);
            }
        >
            {tr("lang.switch")}
        </button>
    }
}

/// Header and navigation around a signed-in page.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    // Which links to show depends on the roles (a tenant files applications,
    // reviewers and approvers work the queue).
    let me = Resource::new(|| (), |_| crate::api::get::<Me>("/api/v1/auth/me"));
    let lang = use_lang();
    let logout = move |_| {
        leptos::task::spawn_local(async move {
            let _ = crate::api::post::<serde_json::Value>(
                "/api/v1/auth/logout",
                &serde_json::json!({}),
            )
            .await;
            go("/login");
        });
    };
    view! {
        <a class="skip" href="#main">{tr("nav.skip")}</a>
        <header class="top">
            <a class="brand" href="/">{tr("app.name")}</a>
            <nav aria-label=move || crate::i18n::t(lang.get(), "nav.main")>
                <a href="/">{tr("nav.dashboard")}</a>
                <Suspense>
                    {move || Suspend::new(async move {
                        let roles: Vec<String> = me
                            .await
                            .map(|m| m.roles.iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        let has = |r: &str| roles.iter().any(|x| x == r);
                        let tenant = has("tenant_admin") || has("tenant_user");
                        let platform = has("reviewer") || has("approver");
                        let capacity = has("approver") || has("platform_admin")
                            || roles.iter().any(|r| r.starts_with("provider_operator"));
                        let auditor = has("auditor");
                        // 三员分立: the system administrator runs the platform,
                        // the security administrator manages users.
                        let admin = has("platform_admin");
                        let users = has("security_admin") && !admin;
                        // 分级管理: unit admins, and the security
                        // administrator who appoints them.
                        let org = has("unit_admin") || users;
                        view! {
                            <Show when=move || tenant><a href="/orders/new" id="nav-new">{tr("nav.new")}</a></Show>
                            <Show when=move || platform><a href="/review" id="nav-review">{tr("nav.review")}</a></Show>
                            <Show when=move || capacity><a href="/capacity" id="nav-capacity">{tr("nav.capacity")}</a></Show>
                            <Show when=move || auditor><a href="/audit" id="nav-audit">{tr("nav.audit")}</a></Show>
                            <Show when=move || admin><a href="/admin" id="nav-admin">{tr("nav.admin")}</a></Show>
                            <Show when=move || users><a href="/admin/users" id="nav-users">{tr("admin.users")}</a></Show>
                            <Show when=move || org><a href="/org" id="nav-org">{tr("org.title")}</a></Show>
                        }
                    })}
                </Suspense>
                <a href="/profile">{tr("nav.profile")}</a>
            </nav>
            <div class="tools">
                <LangSwitch/>
                <button type="button" id="logout" on:click=logout>{tr("nav.logout")}</button>
            </div>
        </header>
        <main id="main">{children()}</main>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main id="main" class="narrow">
            <h1>{tr("notfound.title")}</h1>
            <p><a href="/">{tr("notfound.back")}</a></p>
        </main>
    }
}
