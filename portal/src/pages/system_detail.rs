//! One information system: its record (and whether it is a 信创 system),
//! whether it is suspended (`suspension.rs`), its usage period (`usage_term.rs`), its resources with their live state
//! (followed as they change),
//! its orders, and the tenant's next steps — a change request (变更) or an
//! exit request (退出), both filed from here.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde_json::{Value, json};

use super::LiveResources;
use super::suspension::Suspension;
use super::usage_term::UsageTerm;
use crate::api::{self, ApiError};
use crate::app::{Frame, go, tr, use_lang};
use crate::format;
use crate::i18n::code_name;

fn load(
    number: String,
) -> impl std::future::Future<Output = Result<(Value, Value, Vec<Value>), ApiError>> + Send + 'static
{
    let system = api::get::<Value>(&format!("/api/v1/systems/{number}"));
    let resources = api::get::<Value>(&format!("/api/v1/systems/{number}/resources"));
    let orders = api::get::<Value>("/api/v1/orders?limit=500");
    async move {
        let orders = orders.await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o["system"].as_str() == Some(number.as_str()))
            .collect();
        Ok((system.await?, resources.await?, orders))
    }
}

#[component]
pub fn SystemDetail() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let number = move || params.read().get("number").unwrap_or_default();
    let data = Resource::new(number, load);
    let problem = RwSignal::new(None::<ApiError>);
    let exit = move |_| {
        let n = number();
        let create = api::post::<Value>("/api/v1/orders", &json!({"kind": "exit", "system": n}));
        leptos::task::spawn_local(async move {
            let result = async {
                let o = create.await?;
                let id = o["id"].as_str().unwrap_or_default().to_owned();
                api::post::<Value>(
                    &format!("/api/v1/orders/{id}/transitions"),
                    &json!({"to": "submitted", "reason": null}),
                )
                .await?;
                Ok::<_, ApiError>(id)
            }
            .await;
            match result {
                Ok(id) => go(&format!("/orders/{id}")),
                Err(e) => problem.set(Some(e)),
            }
        });
    };
    view! {
        <Frame>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((system, resources, orders)) => {
                            let n = system["number"].as_str().unwrap_or_default().to_owned();
                            let level = system["security_level"].as_str().unwrap_or_default().to_owned();
                            let kind = system["system_type"].as_str().unwrap_or_default().to_owned();
                            let items = resources["items"].as_array().cloned().unwrap_or_default();
                            let xinchuang = system["xinchuang"].as_bool() == Some(true);
                            view! {
                                <h1 id="system-name">{system["name"].as_str().unwrap_or_default().to_owned()}</h1>
                                <p class="summary">
                                    {tr("col.number")} " " {n.clone()} " · "
                                    {move || code_name(lang.get(), &kind)} " · "
                                    {move || code_name(lang.get(), &level)}
                                    {xinchuang.then(|| view! { " · " <strong id="system-xinchuang">{tr("sys.xinchuang_badge")}</strong> })}
                                </p>
                                <div class="buttons">
                                    <a class="button" id="request-change" href=format!("/orders/new?system={n}&kind=change")>{tr("sys.change")}</a>
                                    <button type="button" class="danger" id="request-exit" on:click=exit>{tr("sys.exit")}</button>
                                </div>
                                <p class="form-error" role="alert">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                                <Suspension system=n.clone()/>
                                <UsageTerm system=n.clone()/>
                                <h2>{tr("sys.resources")}</h2>
                                <LiveResources id="system-resources" system=n.clone() initial=items/>
                                <h2>{tr("sys.orders")}</h2>
                                <ul id="system-orders">
                                    {orders.into_iter().map(|o| {
                                        let id = o["id"].as_str().unwrap_or_default().to_owned();
                                        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
                                        let state = o["state"].as_str().unwrap_or_default().to_owned();
                                        let created = o["created_at"].as_str().map(format::date).unwrap_or_default();
                                        view! {
                                            <li>
                                                <a href=format!("/orders/{id}")>{id.clone()}</a> " · "
                                                {move || code_name(lang.get(), &kind)} " · "
                                                {move || code_name(lang.get(), &state)} " · " {created}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }
                        Err(e) if e.needs_login() => crate::app::failure(e),
                        Err(e) => view! {
                            <h1>{tr("notfound.title")}</h1>
                            <p class="form-error" role="alert">{move || e.text(lang.get()).to_owned()}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Frame>
    }
}
