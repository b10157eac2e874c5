//! Account activation (账号激活, issue 16 item 7): a user whose account a
//! platform administrator created — or whose password it reset — sets their
//! own password here with the one-time code they were given, so nobody on the
//! platform side ever knows it (三员分立, 003 §3.2.2.15). Public, like the
//! sign-in page.
//!
//! The link is `/activate#<code>`: the code is in the fragment, which the
//! browser never sends, so it reaches no server or proxy log; the page reads
//! it once interactive. The password rule is the server's; its refusal (weak,
//! or a code unknown, used or expired) shows under the form.

use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::app::{LangSwitch, tr, use_lang};

/// The code in the page's fragment (`#<code>`), in the browser.
fn code_in_fragment() -> Option<String> {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .map(|h| h.trim_start_matches('#').trim().to_owned())
            .filter(|h| !h.is_empty())
    }
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    {
        None
    }
}

#[component]
pub fn Activate() -> impl IntoView {
    let lang = use_lang();
    let code = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let code_missing = RwSignal::new(false);
    let mismatch = RwSignal::new(false);
    let refused = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let done = RwSignal::new(None::<String>);
    // Server-rendered disabled, enabled once the page is interactive (as the
    // sign-in page), so a password never goes out in a bare HTML form.
    let interactive = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(c) = code_in_fragment() {
            code.set(c);
        }
        interactive.set(true);
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (c, p) = (code.get_untracked(), password.get_untracked());
        code_missing.set(c.trim().is_empty());
        mismatch.set(p != confirm.get_untracked());
        if c.trim().is_empty() || mismatch.get_untracked() {
            return;
        }
        busy.set(true);
        refused.set(None);
        leptos::task::spawn_local(async move {
            let answer = api::post::<serde_json::Value>(
                "/api/v1/activate",
                &serde_json::json!({"code": c.trim(), "password": p}),
            )
            .await;
            busy.set(false);
            match answer {
                Ok(a) => {
                    password.set(String::new());
                    confirm.set(String::new());
                    done.set(Some(a["user"].as_str().unwrap_or_default().to_owned()));
                }
                Err(e) => refused.set(Some(e)),
            }
        });
    };

    view! {
        <header class="top">
            <span class="brand">{tr("app.name")}</span>
            <div class="tools"><LangSwitch/></div>
        </header>
        <main id="main" class="narrow">
            <h1>{tr("activate.title")}</h1>
            <p class="hint">{tr("activate.hint")}</p>
            <Show
                when=move || done.get().is_none()
                fallback=move || view! {
                    <p id="activate-done" role="status">
                        {move || crate::i18n::t(lang.get(), "activate.done")}
                        " " {move || done.get().unwrap_or_default()} " "
                        <a href="/login" id="activate-login">{tr("activate.login")}</a>
                    </p>
                }
            >
                <form class="card" on:submit=submit novalidate=true>
                    <label for="activate-code">{tr("activate.code")}</label>
                    <input
                        id="activate-code"
                        autocomplete="off"
                        aria-invalid=move || code_missing.get().to_string()
                        aria-describedby="activate-code-error"
                        prop:value=move || code.get()
                        on:input=move |ev| code.set(event_target_value(&ev))
                    />
                    <p id="activate-code-error" class="field-error" role="alert">
                        {move || code_missing.get().then(tr("activate.need_code"))}
                    </p>
                    <label for="activate-password">{tr("activate.password")}</label>
                    <input
                        id="activate-password"
                        type="password"
                        autocomplete="new-password"
                        aria-describedby="activate-rule"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))
                    />
                    <small id="activate-rule">{tr("users.password_rule")}</small>
                    <label for="activate-confirm">{tr("activate.confirm")}</label>
                    <input
                        id="activate-confirm"
                        type="password"
                        autocomplete="new-password"
                        aria-invalid=move || mismatch.get().to_string()
                        aria-describedby="activate-confirm-error"
                        prop:value=move || confirm.get()
                        on:input=move |ev| confirm.set(event_target_value(&ev))
                    />
                    <p id="activate-confirm-error" class="field-error" role="alert">
                        {move || mismatch.get().then(tr("activate.mismatch"))}
                    </p>
                    <p id="activate-error" class="form-error" role="alert">
                        {move || refused.get().map(|e| e.text(lang.get()).to_owned())}
                    </p>
                    <button type="submit" id="activate-submit" disabled=move || busy.get() || !interactive.get()>
                        {move || if busy.get() { tr("activate.busy")() } else { tr("activate.submit")() }}
                    </button>
                </form>
            </Show>
        </main>
    }
}
