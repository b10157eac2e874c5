//! One module per page, and the pieces several pages show.

pub mod admin;
pub mod admin_drivers;
pub mod admin_rules;
pub mod admin_users;
pub mod audit;
pub mod capacity;
pub mod dashboard;
pub mod login;
pub mod order_detail;
pub mod order_extras;
pub mod order_new;
pub mod profile;
pub mod review;
pub mod system_detail;
pub mod system_new;

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

/// VMs with their live state: id, vCPU, memory, phase (coloured), private IP.
#[component]
pub fn ResourceTable(id: &'static str, items: Vec<Value>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <table id=id>
            <thead><tr>
                <th scope="col">"ID"</th>
                <th scope="col">"vCPU"</th>
                <th scope="col">{tr("line.memory")}</th>
                <th scope="col">{tr("col.phase")}</th>
                <th scope="col">{tr("col.ip")}</th>
            </tr></thead>
            <tbody>
                {items.into_iter().map(|r| {
                    let phase = r["phase"].as_str().unwrap_or_default().to_owned();
                    let cls = format!("phase {phase}");
                    view! {
                        <tr>
                            <td>{r["id"].as_str().unwrap_or_default().to_owned()}</td>
                            <td>{r["vcpu"].as_u64().unwrap_or(0)}</td>
                            <td>{r["memory_gib"].as_u64().unwrap_or(0)}</td>
                            <td class=cls>{move || code_name(lang.get(), &phase)}</td>
                            <td>{r["outputs"]["private_ip"].as_str().unwrap_or("—").to_owned()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
