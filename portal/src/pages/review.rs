//! The reviewers' and approvers' queue: every order waiting for a platform
//! decision, the most urgent deadline first, overdue in red.

use leptos::prelude::*;
use serde_json::Value;

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, code_name};

/// States waiting for the platform.
const WAITING: [&str; 3] = ["submitted", "accepted", "expert_review"];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Orders {
    items: Vec<Value>,
}

fn load() -> impl std::future::Future<Output = Result<Vec<Value>, ApiError>> + Send + 'static {
    let orders = api::get::<Orders>("/api/v1/orders?limit=500");
    async move {
        let mut items: Vec<Value> = orders
            .await?
            .items
            .into_iter()
            .filter(|o| WAITING.contains(&o["state"].as_str().unwrap_or_default()))
            .collect();
        items.sort_by_key(|o| {
            (
                o["deadline"]["working_days_left"]
                    .as_i64()
                    .unwrap_or(i64::MAX),
                o["deadline"]["due_date"]
                    .as_str()
                    .unwrap_or("9999")
                    .to_owned(),
            )
        });
        Ok(items)
    }
}

fn clock(lang: Lang, o: &Value) -> String {
    let d = &o["deadline"];
    d["due_date"]
        .as_str()
        .map(|due| format::clock(lang, d["working_days_left"].as_i64(), due))
        .unwrap_or_default()
}

#[component]
pub fn Review() -> impl IntoView {
    let lang = use_lang();
    let queue = Resource::new(|| (), |_| load());
    view! {
        <Frame>
            <h1>{tr("review.title")}</h1>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match queue.await {
                        Ok(items) if items.is_empty() => view! { <p>{tr("review.empty")}</p> }.into_any(),
                        Ok(items) => view! {
                            <table id="queue">
                                <thead><tr>
                                    <th scope="col">{tr("col.order")}</th>
                                    <th scope="col">{tr("col.kind")}</th>
                                    <th scope="col">{tr("col.system")}</th>
                                    <th scope="col">{tr("col.state")}</th>
                                    <th scope="col">{tr("col.created")}</th>
                                    <th scope="col">{tr("col.deadline")}</th>
                                </tr></thead>
                                <tbody>
                                    {items.into_iter().map(|o| {
                                        let id = o["id"].as_str().unwrap_or_default().to_owned();
                                        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
                                        let state = o["state"].as_str().unwrap_or_default().to_owned();
                                        let overdue = o["deadline"]["overdue"].as_bool().unwrap_or(false);
                                        let created = o["created_at"].as_str().map(format::date).unwrap_or_default();
                                        let system = o["system"].as_str().unwrap_or_default().to_owned();
                                        view! {
                                            <tr class:overdue=overdue>
                                                <td><a href=format!("/orders/{id}")>{id.clone()}</a></td>
                                                <td>{move || code_name(lang.get(), &kind)}</td>
                                                <td>{system}</td>
                                                <td>{move || code_name(lang.get(), &state)}</td>
                                                <td>{created}</td>
                                                <td class="deadline">{move || clock(lang.get(), &o)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Suspense>
        </Frame>
    }
}
