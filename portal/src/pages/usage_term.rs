//! A system's usage period (使用期, seed 002 art. 14) on the system page: its
//! start and last day, the notice day, a pending extension request, the
//! expiry and the forced offline. The department asks for an extension
//! before the end (`change_request`: date and reason, confirmed first); the
//! management unit approves the forced offline of an expired system
//! (`order_approve`, confirmed first). The server decides whether either is
//! allowed; its refusal (`USAGE_EXTENSION_REFUSED`, `USAGE_OFFLINE_REFUSED` …)
//! is shown as it says.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{tr, use_lang};
use crate::format;
use crate::pages::dashboard::Me;

/// The usage period of `system`, with the actions the signed-in user may take.
#[component]
pub fn UsageTerm(system: String) -> impl IntoView {
    let path = format!("/api/v1/systems/{system}/usage-term");
    let data = Resource::new(
        || (),
        move |_| {
            let me = api::get::<Me>("/api/v1/auth/me");
            let term = api::get::<Value>(&path);
            async move { (me.await.ok(), term.await) }
        },
    );
    view! {
        <section aria-labelledby="usage-term-h" id="usage-term">
            <h2 id="usage-term-h">{tr("ut.title")}</h2>
            <Suspense fallback=crate::app::Loading>
                {move || {
                    let system = system.clone();
                    Suspend::new(async move {
                        let (me, term) = data.await;
                        let can = |p: &str| me.as_ref().is_some_and(|m| m.permissions.iter().any(|x| x == p));
                        match term {
                            Ok(term) => view! {
                                <TermBody system=system term=term
                                    may_request=can("change_request") may_force=can("order_approve")/>
                            }.into_any(),
                            Err(e) if e.code == "USAGE_TERM_NOT_FOUND" => view! {
                                <p id="usage-term-none">{tr("ut.none")}</p>
                            }.into_any(),
                            Err(e) => {
                                let lang = use_lang();
                                view! { <p class="form-error" role="alert">{move || e.text(lang.get()).to_owned()}</p> }.into_any()
                            }
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[component]
fn TermBody(system: String, term: Value, may_request: bool, may_force: bool) -> impl IntoView {
    let lang = use_lang();
    let term = RwSignal::new(term);
    let field = move |k: &'static str| move || text(&term.with(|t| t[k].clone()));
    let has = move |k: &'static str| move || term.with(|t| !t[k].is_null());
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    // The extension request: date, reason, then a confirmation step.
    let until = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let missing = RwSignal::new(false);
    let confirm_request = RwSignal::new(false);
    let confirm_force = RwSignal::new(false);
    let open = move || {
        term.with(|t| {
            t["expired_at"].is_null() && t["closed_at"].is_null() && t["offline_at"].is_null()
        })
    };
    let forceable = move || {
        term.with(|t| {
            !t["expired_at"].is_null()
                && t["offline_approved"].is_null()
                && t["offline_at"].is_null()
                && t["closed_at"].is_null()
        })
    };
    let send = Callback::new(move |(what, body): (&'static str, Value)| {
        busy.set(true);
        problem.set(None);
        let call = api::post::<Value>(
            &format!("/api/v1/systems/{system}/usage-term/{what}"),
            &body,
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(t) => {
                    term.set(t);
                    confirm_request.set(false);
                    confirm_force.set(false);
                }
                Err(e) => problem.set(Some(e)),
            }
            busy.set(false);
        });
    });
    let ask = move |_| {
        let ok = !until.get_untracked().is_empty() && !reason.get_untracked().trim().is_empty();
        missing.set(!ok);
        confirm_request.set(ok);
    };
    let send_request = move |_| {
        send.run((
            "extension-request",
            json!({"until": until.get_untracked(), "reason": reason.get_untracked().trim()}),
        ));
    };
    let send_force = move |_| send.run(("force-offline", json!({})));
    view! {
        <dl class="term" id="usage-term-dates">
            <dt>{tr("ut.starts")}</dt><dd id="usage-starts">{field("starts_on")}</dd>
            <dt>{tr("ut.expires")}</dt><dd id="usage-expires">{field("expires_on")}</dd>
            <Show when=has("notice_on")>
                <dt>{tr("ut.notice")}</dt><dd>{field("notice_on")}</dd>
            </Show>
            <Show when=has("extension_requested")>
                <dt>{tr("ut.requested")}</dt>
                <dd id="usage-requested">
                    {move || term.with(|t| {
                        let r = &t["extension_requested"];
                        format!("{} · {} · {}", text(&r["until"]), text(&r["by"]).trim_start_matches("user:"), text(&r["reason"]))
                    })}
                </dd>
            </Show>
            <Show when=has("expired_at")>
                <dt>{tr("ut.expired")}</dt>
                <dd id="usage-expired">{move || term.with(|t| t["expired_at"].as_str().map(format::date_time).unwrap_or_default())}</dd>
            </Show>
            <Show when=has("offline_approved")>
                <dt>{tr("ut.offline_approved")}</dt>
                <dd id="usage-offline-due">
                    {field("offline_due")} " · "
                    {move || term.with(|t| text(&t["offline_approved"]["by"]).trim_start_matches("user:").to_owned())}
                </dd>
            </Show>
            <Show when=has("offline_at")>
                <dt>{tr("ut.offline")}</dt>
                <dd>{move || term.with(|t| t["offline_at"].as_str().map(format::date_time).unwrap_or_default())}</dd>
            </Show>
        </dl>
        <Show when=move || may_request && open()>
            <form class="card" id="usage-request" on:submit=|ev| ev.prevent_default()>
                <h3>{tr("ut.request")}</h3>
                <div class="field">
                    <label for="usage-until">{tr("ut.until")}</label>
                    <input type="date" id="usage-until" prop:value=move || until.get()
                        on:input=move |ev| { until.set(event_target_value(&ev)); confirm_request.set(false); }/>
                </div>
                <div class="field">
                    <label for="usage-reason">{tr("ut.reason")}</label>
                    <textarea id="usage-reason" prop:value=move || reason.get()
                        on:input=move |ev| { reason.set(event_target_value(&ev)); confirm_request.set(false); }></textarea>
                </div>
                <span class="field-error" role="alert" id="usage-request-missing">
                    {move || missing.get().then(tr("tp.missing"))}
                </span>
                <Show when=move || !confirm_request.get()
                    fallback=move || view! {
                        <p role="alert" id="usage-request-confirm-text">{tr("ut.confirm_request")}</p>
                        <div class="buttons">
                            <button type="button" id="usage-request-confirm" disabled=move || busy.get()
                                on:click=send_request>{tr("common.confirm")}</button>
                            <button type="button" on:click=move |_| confirm_request.set(false)>{tr("common.cancel")}</button>
                        </div>
                    }>
                    <button type="button" id="usage-request-send" on:click=ask>{tr("ut.send")}</button>
                </Show>
            </form>
        </Show>
        <Show when=move || may_force && forceable()>
            <div class="card" id="usage-force">
                <Show when=move || confirm_force.get()
                    fallback=move || view! {
                        <button type="button" class="danger" id="usage-force-offline"
                            on:click=move |_| confirm_force.set(true)>{tr("ut.force")}</button>
                    }>
                    <p role="alert" id="usage-force-confirm-text">{tr("ut.confirm_force")}</p>
                    <div class="buttons">
                        <button type="button" class="danger" id="usage-force-confirm" disabled=move || busy.get()
                            on:click=send_force>{tr("common.confirm")}</button>
                        <button type="button" on:click=move |_| confirm_force.set(false)>{tr("common.cancel")}</button>
                    </div>
                </Show>
            </div>
        </Show>
        <p class="form-error" role="alert" id="usage-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
    }
}
