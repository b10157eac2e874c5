//! The data retention on an exited order's page (seed 002 art. 13: "所涉及的
//! 数据资源和日志应保留 3 个月以备政府监管部门监管审计需要"): while it runs, the
//! last day the system's data is kept (its servers powered off, nothing
//! charged); on that day the platform purges it by itself. For the management
//! unit's approver (`order_approve`) a form to purge earlier — an explicit
//! decision with a reason and a confirmation — that sends
//! `POST /api/v1/orders/{id}/purge`; the server records and audits it, and its
//! refusal is shown as it says.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{tr, use_lang};

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The retention of an exited order; `may_purge`: the signed-in user holds
/// `order_approve`.
#[component]
pub fn Retention(order: Value, may_purge: bool, refresh: Callback<()>) -> impl IntoView {
    let lang = use_lang();
    if order["state"].as_str() != Some("exited") {
        return ().into_any();
    }
    let id = text(&order["id"]);
    let due = (order["deadline"]["step"].as_str() == Some("data_retention"))
        .then(|| text(&order["deadline"]["due_date"]));
    let reason = RwSignal::new(String::new());
    let confirmed = RwSignal::new(false);
    let missing = RwSignal::new(false);
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let purge = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let r = reason.get_untracked();
        let ok = !r.trim().is_empty() && confirmed.get_untracked();
        missing.set(!ok);
        if !ok {
            return;
        }
        busy.set(true);
        problem.set(None);
        let call = api::post::<Value>(
            &format!("/api/v1/orders/{id}/purge"),
            &json!({"reason": r.trim()}),
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => refresh.run(()),
                Err(e) => problem.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <section aria-labelledby="retention-h" id="retention">
            <h2 id="retention-h">{tr("rt.title")}</h2>
            {match due {
                Some(d) => view! {
                    <p>{tr("rt.kept_until")} ": " <strong id="retention-due">{d}</strong>
                       " " {tr("rt.then")}</p>
                }.into_any(),
                None => view! { <p id="retention-due-none">{tr("rt.no_period")}</p> }.into_any(),
            }}
            {may_purge.then(|| view! {
                <form class="card" id="purge-form" on:submit=purge novalidate=true>
                    <h3>{tr("rt.early")}</h3>
                    <div class="field">
                        <label for="purge-reason">{tr("rt.reason")}</label>
                        <textarea id="purge-reason" prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))></textarea>
                    </div>
                    <div class="field">
                        <label>
                            <input type="checkbox" id="purge-confirm" prop:checked=move || confirmed.get()
                                on:change=move |ev| confirmed.set(event_target_checked(&ev))/>
                            " " {tr("rt.confirm")}
                        </label>
                    </div>
                    <span class="field-error" role="alert" id="purge-missing">
                        {move || missing.get().then(tr("rt.missing"))}
                    </span>
                    <button type="submit" id="purge-submit" class="danger" disabled=move || busy.get()>{tr("rt.submit")}</button>
                    <p class="form-error" role="alert" id="purge-error">
                        {move || problem.get().map(|e| e.text(lang.get()).to_owned())}
                    </p>
                </form>
            })}
        </section>
    }
    .into_any()
}
