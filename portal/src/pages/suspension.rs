//! A system's suspension (暂停服务, seed 002 art. 18; 004 art. 27 "暂时中断该系统
//! 的云服务…恢复服务") on the system page: everyone who sees the system sees
//! whether it is suspended and why (the department is told, 004 art. 27
//! "同步通知该单位"); the management unit (`order_approve`) suspends or
//! resumes it with a reason, confirmed first. The server decides; its refusal
//! (`SYSTEM_ALREADY_SUSPENDED`, `SYSTEM_NOT_SUSPENDED` …) is shown as it says.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{tr, use_lang};
use crate::format;
use crate::i18n;
use crate::pages::dashboard::Me;

/// The suspension state of `system`, with the approver's actions.
#[component]
pub fn Suspension(system: String) -> impl IntoView {
    let path = format!("/api/v1/systems/{system}/suspension");
    let data = Resource::new(
        || (),
        move |_| {
            let me = api::get::<Me>("/api/v1/auth/me");
            let state = api::get::<Value>(&path);
            async move { (me.await.ok(), state.await) }
        },
    );
    view! {
        <section aria-labelledby="suspension-h" id="suspension">
            <h2 id="suspension-h">{tr("su.title")}</h2>
            <Suspense fallback=crate::app::Loading>
                {move || {
                    let system = system.clone();
                    Suspend::new(async move {
                        let (me, state) = data.await;
                        let may_decide = me
                            .as_ref()
                            .is_some_and(|m| m.permissions.iter().any(|x| x == "order_approve"));
                        match state {
                            Ok(state) => view! {
                                <SuspensionBody system=system state=state may_decide=may_decide/>
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
fn SuspensionBody(system: String, state: Value, may_decide: bool) -> impl IntoView {
    let lang = use_lang();
    // Stored, so the send handler stays `Copy` for the confirmation view.
    let system = StoredValue::new(system);
    let state = RwSignal::new(state);
    let suspended = move || state.with(|s| s["suspended"].as_bool() == Some(true));
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let missing = RwSignal::new(false);
    let confirm = RwSignal::new(false);
    // "已暂停（原因：…）" with when and by whom; the reason is the approver's words.
    let status = move || {
        let l = lang.get();
        state.with(|s| {
            let c = &s["current"];
            if suspended() {
                format!(
                    "{}{}{}{} · {} · {}",
                    i18n::t(l, "su.suspended"),
                    i18n::t(l, "su.because"),
                    text(&c["reason"]),
                    i18n::t(l, "su.close"),
                    c["at"].as_str().map(format::date_time).unwrap_or_default(),
                    text(&c["by"]).trim_start_matches("user:"),
                )
            } else {
                i18n::t(l, "su.normal").to_owned()
            }
        })
    };
    let ask = move |_| {
        let ok = !reason.get_untracked().trim().is_empty();
        missing.set(!ok);
        confirm.set(ok);
    };
    let send = move |_| {
        busy.set(true);
        problem.set(None);
        let base = format!("/api/v1/systems/{}/suspension", system.get_value());
        let path = if suspended() {
            format!("{base}/resume")
        } else {
            base
        };
        let call = api::post::<Value>(&path, &json!({"reason": reason.get_untracked().trim()}));
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(s) => {
                    state.set(s);
                    reason.set(String::new());
                    confirm.set(false);
                }
                Err(e) => problem.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let action = move || {
        if suspended() {
            tr("su.resume")()
        } else {
            tr("su.suspend")()
        }
    };
    let confirm_text = move || {
        if suspended() {
            tr("su.confirm_resume")()
        } else {
            tr("su.confirm_suspend")()
        }
    };
    view! {
        <p id="suspension-state" class=move || if suspended() { "notice" } else { "" }>{status}</p>
        <Show when=move || may_decide>
            <form class="card" id="suspension-form" on:submit=|ev| ev.prevent_default()>
                <h3>{action}</h3>
                <div class="field">
                    <label for="suspension-reason">{tr("su.reason")}</label>
                    <textarea id="suspension-reason" prop:value=move || reason.get()
                        on:input=move |ev| { reason.set(event_target_value(&ev)); confirm.set(false); }></textarea>
                </div>
                <span class="field-error" role="alert" id="suspension-missing">
                    {move || missing.get().then(tr("su.missing"))}
                </span>
                <Show when=move || !confirm.get()
                    fallback=move || view! {
                        <p role="alert" id="suspension-confirm-text">{confirm_text}</p>
                        <div class="buttons">
                            <button type="button" class="danger" id="suspension-confirm" disabled=move || busy.get()
                                on:click=send>{tr("common.confirm")}</button>
                            <button type="button" on:click=move |_| confirm.set(false)>{tr("common.cancel")}</button>
                        </div>
                    }>
                    <button type="button" class="danger" id="suspension-send" on:click=ask>{action}</button>
                </Show>
            </form>
        </Show>
        <p class="form-error" role="alert" id="suspension-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
    }
}
