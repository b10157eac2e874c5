//! The audit log for auditors: filters (who, what, from, until) as a plain
//! GET form, so every filtered view has its own URL; the same filters export
//! CSV with the hash chain for verification outside yunshu.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde_json::Value;

use crate::api;
use crate::app::{Frame, tr};
use crate::format;

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API query for the page's filters; dates are CST calendar days.
fn api_query(actor: &str, action: &str, from: &str, until: &str) -> String {
    let mut q = vec!["limit=200".to_owned()];
    if !actor.is_empty() {
        q.push(format!("actor={}", encode(actor)));
    }
    if !action.is_empty() {
        q.push(format!("action={}", encode(action)));
    }
    if !from.is_empty() {
        q.push(format!(
            "from={}",
            encode(&format!("{from}T00:00:00+08:00"))
        ));
    }
    if !until.is_empty() {
        q.push(format!(
            "until={}",
            encode(&format!("{until}T23:59:59+08:00"))
        ));
    }
    q.join("&")
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Page {
    items: Vec<Value>,
}

#[component]
pub fn Audit() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let filters = move || (get("actor"), get("action"), get("from"), get("until"));
    let entries = Resource::new(filters, |(actor, action, from, until)| {
        api::get::<Page>(&format!(
            "/api/v1/audit?{}",
            api_query(&actor, &action, &from, &until)
        ))
    });
    let export = move || {
        let (actor, action, from, until) = filters();
        format!(
            "/api/v1/audit/export?{}",
            api_query(&actor, &action, &from, &until)
        )
    };
    view! {
        <Frame>
            <h1>{tr("audit.title")}</h1>
            <form method="get" action="/audit" class="filters card">
                <div class="field"><label for="actor">{tr("audit.actor")}</label>
                    <input id="actor" name="actor" value=move || get("actor") placeholder="user:sun"/></div>
                <div class="field"><label for="action">{tr("audit.action")}</label>
                    <input id="action" name="action" value=move || get("action") placeholder="order."/></div>
                <div class="field"><label for="from">{tr("audit.from")}</label>
                    <input id="from" name="from" type="date" value=move || get("from")/></div>
                <div class="field"><label for="until">{tr("audit.until")}</label>
                    <input id="until" name="until" type="date" value=move || get("until")/></div>
                <button type="submit" id="audit-filter">{tr("audit.filter")}</button>
                <a class="export" id="audit-export" href=export>{tr("audit.export")}</a>
            </form>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(page) => view! {
                            <table id="audit">
                                <thead><tr>
                                    <th scope="col">"#"</th>
                                    <th scope="col">{tr("order.when")}</th>
                                    <th scope="col">{tr("audit.actor")}</th>
                                    <th scope="col">{tr("audit.action")}</th>
                                    <th scope="col">{tr("audit.target")}</th>
                                    <th scope="col">{tr("audit.detail")}</th>
                                </tr></thead>
                                <tbody>
                                    {page.items.into_iter().map(|e| view! {
                                        <tr>
                                            <td>{e["seq"].as_u64().unwrap_or(0)}</td>
                                            <td>{e["at"].as_str().map(format::date_time).unwrap_or_default()}</td>
                                            <td>{e["actor"].as_str().unwrap_or_default().to_owned()}</td>
                                            <td>{e["action"].as_str().unwrap_or_default().to_owned()}</td>
                                            <td class="mono">{e["target"].as_str().unwrap_or_default().to_owned()}</td>
                                            <td>{e["detail"].as_str().unwrap_or_default().to_owned()}</td>
                                        </tr>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_an_encoded_api_query() {
        assert_eq!(
            api_query("user:sun", "order.", "2026-11-23", ""),
            "limit=200&actor=user%3Asun&action=order.&from=2026-11-23T00%3A00%3A00%2B08%3A00"
        );
        assert_eq!(api_query("", "", "", ""), "limit=200");
    }
}
