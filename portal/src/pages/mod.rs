//! One module per page, and the pieces several pages show.

pub mod activate;
pub mod admin;
pub mod admin_drivers;
pub mod admin_org;
pub mod admin_rules;
pub mod admin_users;
pub mod audit;
pub mod capacity;
pub mod dashboard;
pub mod login;
pub mod order_detail;
pub mod order_extras;
pub mod order_new;
pub mod order_services;
pub mod order_services_view;
pub mod profile;
pub mod retention;
pub mod review;
pub mod suspension;
pub mod system_detail;
pub mod system_new;
pub mod test_period;
pub mod usage_term;

use leptos::prelude::*;
use serde_json::Value;

use crate::api;
use crate::app::{tr, use_lang};
use crate::i18n::code_name;

/// A system's resources, starting from `initial` (what the server rendered)
/// and following the controller's event stream from then on; with `order`,
/// only that order's.
#[component]
pub fn LiveResources(
    id: &'static str,
    system: String,
    initial: Vec<Value>,
    #[prop(optional)] order: Option<String>,
) -> impl IntoView {
    let live = RwSignal::new(None::<Vec<Value>>);
    api::follow(
        &format!("/api/v1/systems/{system}/resources/events"),
        "resources",
        move |list: Value| live.set(list["items"].as_array().cloned()),
    );
    move || {
        let items: Vec<Value> = live
            .get()
            .unwrap_or_else(|| initial.clone())
            .into_iter()
            .filter(|r| {
                order
                    .as_deref()
                    .is_none_or(|o| r["order"].as_str() == Some(o))
            })
            .collect();
        if items.is_empty() {
            return view! { <p id=format!("{id}-none")>{tr("order.no_resources")}</p> }.into_any();
        }
        view! { <ResourceTable id=id items=items/> }.into_any()
    }
}

/// Every resource with its live state: id, kind, what it is (size, network,
/// rules), phase (coloured, with the driver's reason when it failed), its
/// address, and what it is wired to (its subnet and groups, the servers
/// behind a load balancer, the server a volume or public IP serves …).
#[component]
pub fn ResourceTable(id: &'static str, items: Vec<Value>) -> impl IntoView {
    let lang = use_lang();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    view! {
        <table id=id>
            <thead><tr>
                <th scope="col">"ID"</th>
                <th scope="col">{tr("col.kind")}</th>
                <th scope="col">{tr("col.summary")}</th>
                <th scope="col">{tr("col.phase")}</th>
                <th scope="col">{tr("col.address")}</th>
                <th scope="col">{tr("col.connects")}</th>
            </tr></thead>
            <tbody>
                {items.into_iter().map(|r| {
                    let phase = text(&r["phase"]);
                    let cls = format!("phase {phase}");
                    let kind = text(&r["kind"]);
                    let kind_key = format!("kind.{kind}");
                    let outputs = &r["outputs"];
                    let address = ["private_ip", "public_ip", "vip", "cidr"]
                        .iter()
                        .find_map(|k| outputs[*k].as_str())
                        .unwrap_or("—")
                        .to_owned();
                    let connects = r["connects_to"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default();
                    let message = r["message"].as_str().filter(|_| phase == "failed").map(str::to_owned);
                    view! {
                        <tr data-kind=kind>
                            <td>{text(&r["id"])}</td>
                            <td>{move || crate::i18n::t(lang.get(), &kind_key)}</td>
                            <td>{text(&r["summary"])}</td>
                            <td class=cls>
                                {move || code_name(lang.get(), &phase)}
                                {message.clone().map(|m| view! { <small class="reason">" " {m}</small> })}
                            </td>
                            <td>{address}</td>
                            <td class="connects">{connects}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
