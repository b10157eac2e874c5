//! Capacity for provider operators and the management unit (issue 6's
//! capacity manager): per pool and resource the allocated share against the
//! 80 % expansion line, the largest VM that still fits (fragmentation), and
//! the expansion orders with their due dates.

use leptos::prelude::*;
use serde_json::Value;

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, t};

fn load() -> impl std::future::Future<Output = Result<(Value, Value), ApiError>> + Send + 'static {
    let capacity = api::get::<Value>("/api/v1/capacity");
    let orders = api::get::<Value>("/api/v1/expansion-orders");
    async move { Ok((capacity.await?, orders.await?)) }
}

/// One resource as a bar with the expansion line drawn at `line` percent.
fn bar(lang: Lang, label_key: &'static str, unit: &str, usage: &Value, line: f64) -> impl IntoView {
    let ratio = usage["ratio"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0);
    let over = usage["over_line"].as_bool().unwrap_or(false);
    // Storage is per class: name it.
    let class = usage["class"]
        .as_str()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    let text = format!(
        "{}{class} {} / {} {unit}（{:.1}%）",
        t(lang, label_key),
        usage["allocated"].as_u64().unwrap_or(0),
        usage["total"].as_u64().unwrap_or(0),
        ratio * 100.0
    );
    view! {
        <div class="usage" class:over=over>
            <span class="usage-label">{text}</span>
            <div class="bar" role="img" aria-label=format!("{:.1}%", ratio * 100.0)>
                <div class="fill" style=format!("width: {:.1}%", ratio * 100.0)></div>
                <div class="line" style=format!("left: {line:.0}%")></div>
            </div>
        </div>
    }
}

#[component]
pub fn Capacity() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    view! {
        <Frame>
            <h1>{tr("cap.title")}</h1>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((capacity, orders)) => {
                            let line = capacity["threshold_percent"].as_f64().unwrap_or(80.0);
                            let pools = capacity["pools"].as_array().cloned().unwrap_or_default();
                            let orders = orders["items"].as_array().cloned().unwrap_or_default();
                            view! {
                                <p class="hint">{move || t(lang.get(), "cap.line").replace("{n}", &format!("{line:.0}"))}</p>
                                <div class="pools" id="pools">
                                    {pools.into_iter().map(|p| {
                                        let title = format!("{} · {} · {} · {}",
                                            p["provider"].as_str().unwrap_or_default(),
                                            p["pool"].as_str().unwrap_or_default(),
                                            p["zone"].as_str().unwrap_or_default(),
                                            p["arch"].as_str().unwrap_or_default());
                                        let largest = &p["largest_vm"]["by_memory"];
                                        let fits = format!("{} vCPU / {} GiB",
                                            largest["vcpu"].as_u64().unwrap_or(0),
                                            largest["memory_mib"].as_u64().unwrap_or(0) / 1024);
                                        let p2 = p.clone();
                                        view! {
                                            <section class="card pool">
                                                <h2>{title}</h2>
                                                {move || {
                                                    let l = lang.get();
                                                    let mut bars = vec![
                                                        bar(l, "cap.vcpu", "", &p2["vcpu"], line).into_any(),
                                                        bar(l, "cap.memory", "MiB", &p2["memory_mib"], line).into_any(),
                                                        bar(l, "cap.bandwidth", "Mbps", &p2["bandwidth_mbps"], line).into_any(),
                                                        bar(l, "cap.ips", "", &p2["public_ips"], line).into_any(),
                                                    ];
                                                    for s in p2["storage_gib"].as_array().cloned().unwrap_or_default() {
                                                        bars.push(bar(l, "cap.storage", "GiB", &s, line).into_any());
                                                    }
                                                    bars
                                                }}
                                                <p class="largest">{tr("cap.largest")} " " <strong>{fits}</strong></p>
                                            </section>
                                        }
                                    }).collect_view()}
                                </div>
                                <h2>{tr("cap.orders")}</h2>
                                <table id="expansion-orders">
                                    <thead><tr>
                                        <th scope="col">{tr("col.order")}</th>
                                        <th scope="col">{tr("cap.pool")}</th>
                                        <th scope="col">{tr("cap.resource")}</th>
                                        <th scope="col">{tr("cap.opened")}</th>
                                        <th scope="col">{tr("cap.due")}</th>
                                        <th scope="col">{tr("col.state")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {orders.into_iter().map(|o| {
                                            let open = o["open"].as_bool().unwrap_or(false);
                                            let breached = o["breached_at"].is_string();
                                            let state_key = match (open, breached) {
                                                (true, true) => "cap.breached",
                                                (true, false) => "cap.open",
                                                (false, _) => "cap.closed",
                                            };
                                            view! {
                                                <tr class:overdue=breached>
                                                    <td>{o["id"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{o["pool"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{o["resource"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{o["opened_at"].as_str().map(format::date).unwrap_or_default()}</td>
                                                    <td class="deadline">{o["due_at"].as_str().map(format::date).unwrap_or_default()}</td>
                                                    <td>{tr(state_key)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Suspense>
        </Frame>
    }
}
