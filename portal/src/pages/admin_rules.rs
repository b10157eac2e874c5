//! Deadline rules (办理时限) and the working-day calendar (工作日历): every
//! policy with its steps, limits and sources; every calendar year with its
//! holidays and make-up working days (调休). An operator adds its own policy or
//! next year's calendar (when the State Council notice is published) as a TOML
//! file; a refused file shows the server's reason and nothing is written.

use leptos::prelude::*;
use serde_json::Value;

use super::admin::AdminNav;
use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::i18n::{Lang, code_name};

fn load() -> impl std::future::Future<Output = Result<(Value, Value), ApiError>> + Send + 'static {
    let policies = api::get::<Value>("/api/v1/policies");
    let calendar = api::get::<Value>("/api/v1/calendar");
    async move { Ok((policies.await?, calendar.await?)) }
}

fn limit_text(lang: Lang, step: &Value) -> String {
    let amount = step["amount"].as_u64().unwrap_or(0);
    let unit = code_name(
        lang,
        &format!("unit.{}", step["unit"].as_str().unwrap_or_default()),
    );
    match lang {
        Lang::Zh => format!("{amount} {unit}"),
        Lang::En => format!("{amount} {unit}"),
    }
}

/// One upload form: a name (policy) or year (calendar) and the TOML file.
#[component]
fn Upload(
    id: &'static str,
    title: &'static str,
    what: &'static str,
    path: fn(&str) -> String,
    on_done: Callback<()>,
) -> impl IntoView {
    let lang = use_lang();
    let key = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<ApiError>);
    let done = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if key.get_untracked().trim().is_empty() {
            return;
        }
        let call = api::put_text::<Value>(&path(key.get_untracked().trim()), file.get_untracked());
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => {
                    problem.set(None);
                    done.set(true);
                    on_done.run(());
                }
                Err(e) => {
                    done.set(false);
                    problem.set(Some(e));
                }
            }
        });
    };
    view! {
        <form class="card wide" id=format!("{id}-form") on:submit=submit novalidate=true>
            <h2>{tr(title)}</h2>
            <div class="field">
                <label for=format!("{id}-key")>{tr(what)}</label>
                <input id=format!("{id}-key") prop:value=move || key.get() on:input=move |ev| key.set(event_target_value(&ev))/>
            </div>
            <div class="field">
                <label for=format!("{id}-file")>{tr("rules.file")}</label>
                <textarea id=format!("{id}-file") rows="8" class="mono"
                    prop:value=move || file.get() on:input=move |ev| file.set(event_target_value(&ev))></textarea>
            </div>
            <p class="form-error" role="alert" id=format!("{id}-error")>{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
            <p role="status" id=format!("{id}-done")>{move || done.get().then(tr("rules.saved"))}</p>
            <button type="submit" id=format!("{id}-submit")>{tr("rules.save")}</button>
        </form>
    }
}

#[component]
pub fn AdminRules() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    let refetch = Callback::new(move |()| data.refetch());
    view! {
        <Frame>
            <h1>{tr("rules.title")}</h1>
            <AdminNav/>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((policies, calendar)) => view! {
                            <section aria-labelledby="policies-h">
                                <h2 id="policies-h">{tr("rules.policies")}</h2>
                                {policies["items"].as_array().cloned().unwrap_or_default().into_iter().map(|p| {
                                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                                    let origin = p["origin"].as_str().unwrap_or_default().to_owned();
                                    view! {
                                        <details class="policy" id=format!("policy-{name}")>
                                            <summary>
                                                <strong>{name.clone()}</strong> " · " {p["title"].as_str().unwrap_or_default().to_owned()}
                                                " · " {move || code_name(lang.get(), &format!("origin.{origin}"))}
                                            </summary>
                                            <table>
                                                <thead><tr>
                                                    <th scope="col">{tr("rules.step")}</th>
                                                    <th scope="col">{tr("rules.limit")}</th>
                                                    <th scope="col">{tr("rules.source")}</th>
                                                </tr></thead>
                                                <tbody>
                                                    {p["steps"].as_array().cloned().unwrap_or_default().into_iter().map(|s| {
                                                        let step = s.clone();
                                                        let source = s["source"].as_str().unwrap_or_default().to_owned();
                                                        view! {
                                                            <tr>
                                                                <td>{move || match lang.get() {
                                                                    Lang::Zh => step["step_zh"].as_str().unwrap_or_default().to_owned(),
                                                                    Lang::En => step["step"].as_str().unwrap_or_default().replace('_', " "),
                                                                }}</td>
                                                                <td>{move || limit_text(lang.get(), &s)}</td>
                                                                <td>{source}</td>
                                                            </tr>
                                                        }
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        </details>
                                    }
                                }).collect_view()}
                            </section>
                            <section aria-labelledby="calendar-h">
                                <h2 id="calendar-h">{tr("rules.calendar")}</h2>
                                {calendar["years"].as_array().cloned().unwrap_or_default().into_iter().map(|y| {
                                    let year = y["year"].as_i64().unwrap_or(0);
                                    view! {
                                        <details class="year" id=format!("year-{year}")>
                                            <summary><strong>{year}</strong> " · " {y["source"].as_str().unwrap_or_default().to_owned()}</summary>
                                            <h3>{tr("rules.holidays")}</h3>
                                            <ul>
                                                {y["holidays"].as_array().cloned().unwrap_or_default().into_iter().map(|h| view! {
                                                    <li>
                                                        {h["name"].as_str().unwrap_or_default().to_owned()} " "
                                                        {h["start"].as_str().unwrap_or_default().to_owned()} " – "
                                                        {h["end"].as_str().unwrap_or_default().to_owned()}
                                                    </li>
                                                }).collect_view()}
                                            </ul>
                                            <h3>{tr("rules.make_up")}</h3>
                                            <ul>
                                                {y["make_up_workdays"].as_array().cloned().unwrap_or_default().into_iter().map(|d| view! {
                                                    <li>{d["date"].as_str().unwrap_or_default().to_owned()} " (" {d["holiday"].as_str().unwrap_or_default().to_owned()} ")"</li>
                                                }).collect_view()}
                                            </ul>
                                        </details>
                                    }
                                }).collect_view()}
                            </section>
                        }.into_any(),
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Transition>
            <Upload id="policy" title="rules.add_policy" what="rules.policy_name"
                path=|name| format!("/api/v1/policies/{name}") on_done=refetch/>
            <Upload id="year" title="rules.add_year" what="rules.year"
                path=|year| format!("/api/v1/calendar/{year}") on_done=refetch/>
        </Frame>
    }
}
