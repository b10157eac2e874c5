//! Sign in: user name and password, errors next to the field they concern,
//! the API's refusal (wrong password, locked account) under the form.

use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::app::{LangSwitch, go, tr, use_lang};

#[derive(Debug, Clone, serde::Deserialize)]
struct LoginAnswer {
    csrf_token: String,
}

/// Keeps the session's CSRF token for this tab's later changes.
fn keep_csrf(token: &str) {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(Ok(Some(s))) = web_sys::window().map(|w| w.session_storage()) {
        let _ = s.set_item(api::CSRF_KEY, token);
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    let _ = token;
}

#[component]
pub fn Login() -> impl IntoView {
    let lang = use_lang();
    let user = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let user_missing = RwSignal::new(false);
    let password_missing = RwSignal::new(false);
    let refused = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    // Until the wasm takes over, a click would submit the bare HTML form
    // (a GET carrying the password in the URL) and hydration would then
    // clear what was typed; effects run only in the browser, so the button
    // is server-rendered disabled and enabled once the page is interactive.
    let interactive = RwSignal::new(false);
    Effect::new(move |_| interactive.set(true));

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, p) = (user.get_untracked(), password.get_untracked());
        user_missing.set(u.trim().is_empty());
        password_missing.set(p.is_empty());
        if u.trim().is_empty() || p.is_empty() {
            return;
        }
        busy.set(true);
        refused.set(None);
        leptos::task::spawn_local(async move {
            let answer = api::post::<LoginAnswer>(
                "/api/v1/auth/login",
                &serde_json::json!({"user": u.trim(), "password": p}),
            )
            .await;
            match answer {
                Ok(a) => {
                    keep_csrf(&a.csrf_token);
                    go("/");
                }
                Err(e) => {
                    busy.set(false);
                    refused.set(Some(e));
                }
            }
        });
    };

    view! {
        <header class="top">
            <span class="brand">{tr("app.name")}</span>
            <div class="tools"><LangSwitch/></div>
        </header>
        <main id="main" class="narrow">
            <h1>{tr("login.title")}</h1>
            <p class="hint">{tr("login.hint")}</p>
            <form class="card" method="post" on:submit=submit novalidate=true>
                <label for="user">{tr("login.user")}</label>
                <input
                    id="user"
                    name="user"
                    autocomplete="username"
                    aria-invalid=move || user_missing.get().to_string()
                    aria-describedby="user-error"
                    prop:value=move || user.get()
                    on:input=move |ev| user.set(event_target_value(&ev))
                />
                <p id="user-error" class="field-error" role="alert">
                    {move || user_missing.get().then(tr("login.need_user"))}
                </p>
                <label for="password">{tr("login.password")}</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    aria-invalid=move || password_missing.get().to_string()
                    aria-describedby="password-error"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))
                />
                <p id="password-error" class="field-error" role="alert">
                    {move || password_missing.get().then(tr("login.need_password"))}
                </p>
                <p id="login-error" class="form-error" role="alert">
                    {move || refused.get().map(|e| e.text(lang.get()).to_owned())}
                </p>
                <button type="submit" id="login-submit" disabled=move || busy.get() || !interactive.get()>
                    {move || if busy.get() { tr("login.busy")() } else { tr("login.submit")() }}
                </button>
            </form>
        </main>
    }
}
