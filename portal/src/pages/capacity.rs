//! Capacity for provider operators and the management unit (issue 6's
//! capacity manager): per pool and resource the allocated share against the
//! 80 % expansion line, the largest VM that still fits (fragmentation), and
//! the expansion orders with their due dates; and each pool's vCPU and
//! memory allocation over the last 1, 7, 30 or 90 days against the same line.

use leptos::prelude::*;
use serde_json::Value;

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, t};

type Loaded = (Value, Value, Value);

fn load(days: u32) -> impl std::future::Future<Output = Result<Loaded, ApiError>> + Send + 'static {
    let capacity = api::get::<Value>("/api/v1/capacity");
    let orders = api::get::<Value>("/api/v1/expansion-orders");
    let history = api::get::<Value>(&format!("/api/v1/capacity/history?days={days}"));
    async move { Ok((capacity.await?, orders.await?, history.await?)) }
}

/// The periods the trend offers, in days.
const PERIODS: [u32; 4] = [1, 7, 30, 90];

/// allocated / total of `resource` in one history point, in percent.
fn percent(point: &Value, resource: &str) -> Option<f64> {
    let f = point["figures"]
        .as_array()?
        .iter()
        .find(|f| f["resource"].as_str() == Some(resource))?;
    let total = f["total"].as_f64().filter(|t| *t > 0.0)?;
    Some((f["allocated"].as_f64()? / total * 100.0).clamp(0.0, 100.0))
}

/// A chart of vCPU and memory allocation over time with the expansion line:
/// an SVG of 100 × 40 units, time left to right, 0–100 % bottom to top.
fn trend(lang: Lang, points: &[Value], line: f64) -> impl IntoView + use<> {
    const W: f64 = 100.0;
    const H: f64 = 40.0;
    // Time runs to scale: a gap in sampling (no leader) shows as a gap.
    let secs: Vec<Option<i64>> = points
        .iter()
        .map(|p| {
            p["at"]
                .as_str()
                .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                .map(|t| t.timestamp())
        })
        .collect();
    let lo = secs.iter().flatten().min().copied().unwrap_or(0);
    let hi = secs.iter().flatten().max().copied().unwrap_or(0);
    let x = move |s: i64| {
        if hi > lo {
            (s - lo) as f64 * W / (hi - lo) as f64
        } else {
            W / 2.0
        }
    };
    let y = |pct: f64| H - pct * H / 100.0;
    let path = |resource: &str| {
        points
            .iter()
            .zip(&secs)
            .filter_map(|(p, s)| {
                let v = percent(p, resource)?;
                Some(format!("{:.2},{:.2}", x((*s)?), y(v)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (vcpu, memory) = (path("vcpu"), path("memory"));
    let first = points
        .first()
        .and_then(|p| p["at"].as_str())
        .map(format::date_time)
        .unwrap_or_default();
    let last = points
        .last()
        .and_then(|p| p["at"].as_str())
        .map(format::date_time)
        .unwrap_or_default();
    let label = format!("{}: {} – {}", t(lang, "cap.trend"), first, last);
    let line_y = format!("{:.2}", y(line));
    view! {
        <figure class="trend">
            <svg viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label=label.clone()>
                <line class="limit" x1="0" x2="100" y1=line_y.clone() y2=line_y/>
                <polyline class="vcpu" points=vcpu/>
                <polyline class="memory" points=memory/>
            </svg>
            <figcaption>
                <span class="key vcpu">{t(lang, "cap.vcpu")}</span> " "
                <span class="key memory">{t(lang, "cap.memory")}</span> " "
                <span class="key limit">{format!("{line:.0}%")}</span>
                <br/>{first} " – " {last}
            </figcaption>
        </figure>
    }
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
    let query = leptos_router::hooks::use_query_map();
    // Reactive: choosing a period navigates to `?days=` on the same page.
    let days = Memo::new(move |_| {
        query
            .read()
            .get("days")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| PERIODS.contains(d))
            .unwrap_or(7)
    });
    let data = Resource::new(move || days.get(), load);
    view! {
        <Frame>
            <h1>{tr("cap.title")}</h1>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((capacity, orders, history)) => {
                            let line = capacity["threshold_percent"].as_f64().unwrap_or(80.0);
                            let histories = history["pools"].as_array().cloned().unwrap_or_default();
                            let pools = capacity["pools"].as_array().cloned().unwrap_or_default();
                            let orders = orders["items"].as_array().cloned().unwrap_or_default();
                            view! {
                                <p class="hint">{move || t(lang.get(), "cap.line").replace("{n}", &format!("{line:.0}"))}</p>
                                <nav class="subnav" id="trend-period" aria-label=move || t(lang.get(), "cap.trend")>
                                    {PERIODS.into_iter().map(|d| view! {
                                        <a href=format!("/capacity?days={d}") aria-current=move || (d == days.get()).then_some("page")>
                                            {move || t(lang.get(), "cap.days").replace("{n}", &d.to_string())}
                                        </a>
                                    }).collect_view()}
                                </nav>
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
                                        let points: Vec<Value> = histories
                                            .iter()
                                            .find(|h| h["provider"] == p["provider"] && h["pool"] == p["pool"])
                                            .and_then(|h| h["points"].as_array().cloned())
                                            .unwrap_or_default();
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
                                                {move || if points.is_empty() {
                                                    view! { <p class="hint">{tr("cap.no_trend")}</p> }.into_any()
                                                } else {
                                                    trend(lang.get(), &points, line).into_any()
                                                }}
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
            </Transition>
        </Frame>
    }
}
