//! The test period on the order page (测试期, seed 002 art. 10: "测试时间一般
//! 不超过 15 天；经政务云平台主管部门同意，确有必要的可以延长测试时间"): while it
//! runs, its last day and every recorded extension (who, when, why, the
//! previous and the new last day); for the management unit's approver
//! (`order_approve`) a form — new last day and reason — that sends
//! `POST /api/v1/orders/{id}/test-period/extensions`. The server decides the
//! bounds; its refusal (`TEST_PERIOD_NOT_RUNNING`,
//! `TEST_PERIOD_NOT_EXTENDABLE`, `TEST_PERIOD_EXTENSION_REFUSED`) is shown as
//! it says. Once the period is over, the extensions kept with the past step
//! are still listed.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{tr, use_lang};
use crate::format;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The order's test period, if it runs or ran with extensions; `may_extend`:
/// the signed-in user holds `order_approve`.
#[component]
pub fn TestPeriod(order: Value, may_extend: bool, refresh: Callback<()>) -> impl IntoView {
    let lang = use_lang();
    let id = text(&order["id"]);
    let running = order["deadline"]["step"].as_str() == Some("test_period");
    let (due, extensions) = if running {
        (
            Some(text(&order["deadline"]["due_date"])),
            order["deadline_extensions"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    } else {
        let past = order["past_steps"]
            .as_array()
            .and_then(|p| p.iter().rev().find(|s| s["step"] == "test_period"))
            .and_then(|s| s["extensions"].as_array().cloned())
            .unwrap_or_default();
        (None, past)
    };
    if due.is_none() && extensions.is_empty() {
        return ().into_any();
    }
    let until = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let missing = RwSignal::new(false);
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let extend = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (u, r) = (until.get_untracked(), reason.get_untracked());
        let ok = !u.is_empty() && !r.trim().is_empty();
        missing.set(!ok);
        if !ok {
            return;
        }
        busy.set(true);
        problem.set(None);
        let call = api::post::<Value>(
            &format!("/api/v1/orders/{id}/test-period/extensions"),
            &json!({"until": u, "reason": r.trim()}),
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
        <section aria-labelledby="test-period-h" id="test-period">
            <h2 id="test-period-h">{tr("tp.title")}</h2>
            {due.map(|d| view! {
                <p>{tr("tp.due")} ": " <strong id="test-period-due">{d}</strong></p>
            })}
            {(!extensions.is_empty()).then(|| view! {
                <table id="test-period-extensions">
                    <caption>{tr("tp.extensions")}</caption>
                    <thead><tr>
                        <th scope="col">{tr("order.who")}</th>
                        <th scope="col">{tr("order.when")}</th>
                        <th scope="col">{tr("order.reason")}</th>
                        <th scope="col">{tr("tp.previous")}</th>
                        <th scope="col">{tr("tp.until")}</th>
                    </tr></thead>
                    <tbody>
                        {extensions.iter().map(|e| view! {
                            <tr>
                                <td>{text(&e["by"]).trim_start_matches("user:").to_owned()}</td>
                                <td>{e["at"].as_str().map(format::date_time).unwrap_or_default()}</td>
                                <td>{text(&e["reason"])}</td>
                                <td>{text(&e["previous_due"])}</td>
                                <td>{text(&e["until"])}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {(running && may_extend).then(|| view! {
                <form class="card" id="test-period-form" on:submit=extend novalidate=true>
                    <h3>{tr("tp.extend")}</h3>
                    <div class="field">
                        <label for="test-period-until">{tr("tp.new_due")}</label>
                        <input type="date" id="test-period-until" prop:value=move || until.get()
                            on:input=move |ev| until.set(event_target_value(&ev))/>
                    </div>
                    <div class="field">
                        <label for="test-period-reason">{tr("tp.reason")}</label>
                        <textarea id="test-period-reason" prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))></textarea>
                    </div>
                    <span class="field-error" role="alert" id="test-period-missing">
                        {move || missing.get().then(tr("tp.missing"))}
                    </span>
                    <button type="submit" id="test-period-submit" disabled=move || busy.get()>{tr("tp.submit")}</button>
                    <p class="form-error" role="alert" id="test-period-error">
                        {move || problem.get().map(|e| e.text(lang.get()).to_owned())}
                    </p>
                </form>
            })}
        </section>
    }
    .into_any()
}
