//! Provider drivers (驱动): the registry — which provider, where, health, the
//! driver's name and version, whether it is the simulator, when its
//! certificate expires — and a one-time bootstrap token for a new driver,
//! shown once, with the command that uses it.

use leptos::prelude::*;
use serde_json::{Value, json};

use super::admin::AdminNav;
use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, code_name};

/// Default and largest token lifetime the form offers, in hours (the API
/// allows up to a day).
const TTL_HOURS: (u32, u32) = (1, 24);

fn ttl_error(v: &str) -> Option<&'static str> {
    match v.trim().parse::<u32>() {
        Ok(h) if (TTL_HOURS.0..=TTL_HOURS.1).contains(&h) => None,
        _ if v.trim().is_empty() => Some("err.required"),
        _ => Some("err.range"),
    }
}

fn health_text(lang: Lang, h: &Value) -> String {
    let state = h["state"].as_str().unwrap_or("unknown");
    let name = code_name(lang, &format!("health.{state}"));
    match h["reason"].as_str() {
        Some(reason) => format!("{name}: {reason}"),
        None => name,
    }
}

#[component]
pub fn AdminDrivers() -> impl IntoView {
    let lang = use_lang();
    let drivers = Resource::new(|| (), |_| api::get::<Vec<Value>>("/api/v1/admin/drivers"));
    let provider = RwSignal::new(String::new());
    let hours = RwSignal::new(TTL_HOURS.0.to_string());
    let problem = RwSignal::new(None::<ApiError>);
    let token = RwSignal::new(None::<Value>);

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if provider.get_untracked().trim().is_empty() || ttl_error(&hours.get_untracked()).is_some()
        {
            return;
        }
        let h: u64 = hours.get_untracked().trim().parse().unwrap_or(1);
        let call = api::post::<Value>(
            "/api/v1/admin/driver-tokens",
            &json!({"provider": provider.get_untracked().trim(), "ttl_seconds": h * 3600}),
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(t) => {
                    problem.set(None);
                    token.set(Some(t));
                }
                Err(e) => {
                    token.set(None);
                    problem.set(Some(e));
                }
            }
        });
    };

    view! {
        <Frame>
            <h1>{tr("drivers.title")}</h1>
            <AdminNav/>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match drivers.await {
                        Ok(list) if list.is_empty() => view! { <p id="no-drivers">{tr("drivers.none")}</p> }.into_any(),
                        Ok(list) => view! {
                            <table id="drivers">
                                <thead><tr>
                                    <th scope="col">{tr("drivers.provider")}</th>
                                    <th scope="col">{tr("drivers.endpoint")}</th>
                                    <th scope="col">{tr("drivers.driver")}</th>
                                    <th scope="col">{tr("drivers.health")}</th>
                                    <th scope="col">{tr("drivers.last_seen")}</th>
                                    <th scope="col">{tr("drivers.cert_until")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|d| {
                                        let simulator = d["simulator"].as_bool() == Some(true);
                                        let driver = format!(
                                            "{} {}",
                                            d["driver_name"].as_str().unwrap_or("—"),
                                            d["driver_version"].as_str().unwrap_or("")
                                        );
                                        let health = d["health"].clone();
                                        let cls = format!("health {}", health["state"].as_str().unwrap_or("unknown"));
                                        let until = chrono::DateTime::from_timestamp(d["not_after_unix"].as_i64().unwrap_or(0), 0)
                                            .map(|t| t.to_rfc3339())
                                            .unwrap_or_default();
                                        let seen = d["last_seen"].as_str().unwrap_or_default().to_owned();
                                        view! {
                                            <tr>
                                                <td>{d["provider"].as_str().unwrap_or_default().to_owned()}</td>
                                                <td class="mono">{d["endpoint"].as_str().unwrap_or_default().to_owned()}</td>
                                                <td>
                                                    {driver}
                                                    {simulator.then(|| view! { " " <span class="badge">{tr("drivers.simulator")}</span> })}
                                                </td>
                                                <td class=cls>{move || health_text(lang.get(), &health)}</td>
                                                <td>{format::date_time(&seen)}</td>
                                                <td>{format::date_time(&until)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Transition>
            <form class="card wide" id="token-form" on:submit=create novalidate=true>
                <h2>{tr("drivers.token")}</h2>
                <p>{tr("drivers.token_help")}</p>
                <div class="field">
                    <label for="token-provider">{tr("drivers.provider")}</label>
                    <input id="token-provider" aria-describedby="token-provider-error"
                        prop:value=move || provider.get() on:input=move |ev| provider.set(event_target_value(&ev))/>
                    <span id="token-provider-error" class="field-error" role="alert"></span>
                </div>
                <div class="field">
                    <label for="token-hours">{tr("drivers.ttl_hours")}</label>
                    <input id="token-hours" inputmode="numeric" aria-describedby="token-hours-error"
                        aria-invalid=move || ttl_error(&hours.get()).is_some().to_string()
                        prop:value=move || hours.get() on:input=move |ev| hours.set(event_target_value(&ev))/>
                    <span id="token-hours-error" class="field-error" role="alert">
                        {move || ttl_error(&hours.get()).map(|k| format!("{}（{}–{}）", crate::i18n::t(lang.get(), k), TTL_HOURS.0, TTL_HOURS.1))}
                    </span>
                </div>
                <p class="form-error" role="alert" id="token-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                {move || token.get().map(|t| {
                    let secret = t["token"].as_str().unwrap_or_default().to_owned();
                    let command = format!(
                        "<driver> --provider {} --controller <URL> --token {secret}",
                        t["provider"].as_str().unwrap_or_default()
                    );
                    view! {
                        <div class="notice" id="token-done" role="status">
                            <p>{tr("drivers.token_once")} " " {format::date_time(t["expires_at"].as_str().unwrap_or_default())}</p>
                            <pre class="mono" id="token-value">{secret}</pre>
                            <pre class="mono">{command}</pre>
                        </div>
                    }
                })}
                <button type="submit" id="create-token">{tr("drivers.create_token")}</button>
            </form>
        </Frame>
    }
}
