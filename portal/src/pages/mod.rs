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

use crate::app::{tr, use_lang};
use crate::i18n::code_name;

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
