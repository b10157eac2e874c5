//! The tenant's dashboard: who is signed in, the department's information
//! systems, this month's charge so far per system and in total (for those who
//! may read bills), and its orders in progress with their deadline clocks
//! (working days left, overdue in red), and the maintenance announced for the
//! providers and zones its systems run on (000 art. 18, 004 art. 19).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, code_name};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub actor: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<serde_json::Value>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Page<T> {
    items: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct System {
    number: String,
    name: String,
    #[serde(default)]
    security_level: String,
    #[serde(default)]
    system_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Deadline {
    due_date: String,
    #[serde(default)]
    overdue: bool,
    #[serde(default)]
    working_days_left: Option<i64>,
    #[serde(default)]
    step_zh: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    kind: String,
    state: String,
    system: String,
    created_at: String,
    #[serde(default)]
    deadline: Option<Deadline>,
}

/// A maintenance window (`GET /api/v1/maintenance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    id: String,
    status: String,
    provider: String,
    #[serde(default)]
    zones: Vec<String>,
    starts_at: String,
    ends_at: String,
    affects: String,
    reason: String,
    #[serde(default)]
    emergency: bool,
    #[serde(default)]
    emergency_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Dash {
    me: Me,
    systems: Vec<System>,
    orders: Vec<Order>,
    /// Windows not over yet, soonest first.
    maintenance: Vec<Window>,
}

/// States an order has finished in.
const DONE: [&str; 6] = [
    "delivered",
    "live",
    "exited",
    "purged",
    "cancelled",
    "refused",
];

/// The four reads, prepared now (see `api::get`), awaited together.
fn load() -> impl std::future::Future<Output = Result<Dash, ApiError>> + Send + 'static {
    let me = api::get::<Me>("/api/v1/auth/me");
    let systems = api::get::<Page<System>>("/api/v1/systems?limit=200");
    let orders = api::get::<Page<Order>>("/api/v1/orders?limit=200");
    let maintenance = api::get::<Page<Window>>("/api/v1/maintenance");
    async move {
        let me = me.await?;
        let systems = systems.await?.items;
        let mut orders: Vec<Order> = orders
            .await?
            .items
            .into_iter()
            .filter(|o| !DONE.contains(&o.state.as_str()))
            .collect();
        // Most urgent first: fewest working days left, then the earliest due date.
        orders.sort_by(|a, b| {
            let key = |o: &Order| {
                o.deadline.as_ref().map_or((i64::MAX, String::new()), |d| {
                    (d.working_days_left.unwrap_or(i64::MAX), d.due_date.clone())
                })
            };
            key(a).cmp(&key(b))
        });
        // The notice is a courtesy on this page: a failed read leaves the
        // section empty rather than hiding the rest of the dashboard.
        let mut maintenance: Vec<Window> = maintenance
            .await
            .map(|p| p.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|w| w.status != "ended")
            .collect();
        maintenance.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
        Ok(Dash {
            me,
            systems,
            orders,
            maintenance,
        })
    }
}

/// `GET /api/v1/systems/{n}/{tail}` for each system when `enabled` (nothing
/// otherwise): the calls are prepared now (see `api::get`), awaited in turn.
fn per_system(
    systems: &[System],
    enabled: bool,
    tail: &'static str,
) -> impl std::future::Future<Output = Result<Vec<(System, serde_json::Value)>, ApiError>>
+ Send
+ 'static
+ use<> {
    let calls: Vec<_> = systems
        .iter()
        .filter(|_| enabled)
        .map(|s| {
            let call =
                api::get::<serde_json::Value>(&format!("/api/v1/systems/{}/{tail}", s.number));
            (s.clone(), call)
        })
        .collect();
    async move {
        let mut out = Vec::new();
        for (system, call) in calls {
            out.push((system, call.await?));
        }
        Ok(out)
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    view! {
        <Frame>
            <h1>{tr("dash.title")}</h1>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <DashBody dash=d lang=lang/> }.into_any(),
                        Err(e) if e.needs_login() => crate::app::failure(e),
                        Err(e) => view! {
                            <p class="form-error" role="alert">
                                {tr("common.error")} ": " {move || e.text(lang.get()).to_owned()}
                            </p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Frame>
    }
}

#[component]
fn DashBody(dash: Dash, lang: RwSignal<Lang>) -> impl IntoView {
    let Dash {
        me,
        systems,
        orders,
        maintenance,
    } = dash;
    let no_maintenance = maintenance.is_empty();
    let who = me.actor.trim_start_matches("user:").to_owned();
    let tenant = me.tenant.clone().unwrap_or_default();
    let has_tenant = !tenant.is_empty();
    let no_systems = systems.is_empty();
    let no_orders = orders.is_empty();
    let bills = me.permissions.iter().any(|p| p == "bill_read") && !no_systems;
    let sees_resources = me.permissions.iter().any(|p| p == "resource_read");
    // Each system's resources (how many run of how many; live state is on the
    // system's page) and its month so far.
    let states = {
        let systems = systems.clone();
        Resource::new(
            || (),
            move |_| per_system(&systems, sees_resources, "resources"),
        )
    };
    let costs = {
        let systems = systems.clone();
        Resource::new(|| (), move |_| per_system(&systems, bills, "cost"))
    };
    view! {
        <p class="welcome">
            {tr("dash.welcome")} <strong id="who">{who}</strong>
            <Show when=move || has_tenant>
                " · " {tr("dash.tenant")} " " <span id="tenant">{tenant.clone()}</span>
            </Show>
        </p>
        <section aria-labelledby="systems-h">
            <h2 id="systems-h">{tr("dash.systems")}</h2>
            <Show when=move || !no_systems fallback=move || view! { <p>{tr("dash.no_systems")}</p> }>
                <table id="systems">
                    <thead><tr>
                        <th scope="col">{tr("col.number")}</th>
                        <th scope="col">{tr("col.name")}</th>
                        <th scope="col">{tr("col.type")}</th>
                        <th scope="col">{tr("col.level")}</th>
                        <th scope="col">{tr("dash.running")}</th>
                    </tr></thead>
                    <tbody>
                        {systems.clone().into_iter().map(|s| {
                            let (kind, level) = (s.system_type.clone(), s.security_level.clone());
                            view! {
                                <tr>
                                    <td><a href=format!("/systems/{}", s.number)>{s.number.clone()}</a></td>
                                    <td>{s.name}</td>
                                    <td>{move || code_name(lang.get(), &kind)}</td>
                                    <td>{move || code_name(lang.get(), &level)}</td>
                                    <td class="running">
                                        <Suspense fallback=|| "…">
                                            {
                                                let number = s.number.clone();
                                                move || {
                                                    let number = number.clone();
                                                    Suspend::new(async move {
                                                        let list = states.await.unwrap_or_default();
                                                        let items = list
                                                            .iter()
                                                            .find(|(s, _)| s.number == number)
                                                            .and_then(|(_, r)| r["items"].as_array().cloned());
                                                        match items {
                                                            Some(items) => {
                                                                let running = items.iter().filter(|r| r["phase"] == "running").count();
                                                                format!("{running} / {}", items.len())
                                                            }
                                                            None => "—".to_owned(),
                                                        }
                                                    })
                                                }
                                            }
                                        </Suspense>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        </section>
        <Show when=move || bills>
            <section aria-labelledby="cost-h">
                <h2 id="cost-h">{tr("dash.cost")}</h2>
                <Suspense fallback=crate::app::Loading>
                    {move || Suspend::new(async move {
                        match costs.await {
                            Ok(list) => {
                                let list: Vec<(System, serde_json::Value)> = list;
                                let total: u64 = list.iter().filter_map(|(_, c)| c["total_fen"].as_u64()).sum();
                                let unpriced = list.iter().any(|(_, c)| c["priced"] == false);
                                let month = list.first().and_then(|(_, c)| c["month"].as_str()).unwrap_or_default().to_owned();
                                view! {
                                    <p class="cost-total">
                                        {month} " " {tr("dash.cost_total")} " "
                                        <strong id="cost-total">{format::yuan(i64::try_from(total).unwrap_or(i64::MAX))}</strong>
                                    </p>
                                    <table id="costs">
                                        <thead><tr>
                                            <th scope="col">{tr("col.system")}</th>
                                            <th scope="col">{tr("dash.billing_from")}</th>
                                            <th scope="col">{tr("dash.cost_month")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|(s, c)| {
                                                let from = c["billing_from"].as_str().map(format::date);
                                                let amount = format::yuan(c["total_fen"].as_i64().unwrap_or(0));
                                                view! {
                                                    <tr>
                                                        <td>{format!("{} {}", s.number, s.name)}</td>
                                                        <td>{match from {
                                                            Some(d) => view! { <span>{d}</span> }.into_any(),
                                                            None => view! { <span>{tr("dash.not_billed")}</span> }.into_any(),
                                                        }}</td>
                                                        <td class="money">{amount}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    <p class="hint">{tr("dash.cost_hint")} {unpriced.then(tr("dash.unpriced"))}</p>
                                }.into_any()
                            }
                            Err(e) => view! {
                                <p class="form-error" role="alert">{move || e.text(lang.get()).to_owned()}</p>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </Show>
        <section aria-labelledby="orders-h">
            <h2 id="orders-h">{tr("dash.orders")}</h2>
            <Show when=move || !no_orders fallback=move || view! { <p>{tr("dash.no_orders")}</p> }>
                <table id="orders">
                    <thead><tr>
                        <th scope="col">{tr("col.order")}</th>
                        <th scope="col">{tr("col.kind")}</th>
                        <th scope="col">{tr("col.system")}</th>
                        <th scope="col">{tr("col.state")}</th>
                        <th scope="col">{tr("col.created")}</th>
                        <th scope="col">{tr("col.deadline")}</th>
                    </tr></thead>
                    <tbody>
                        {orders.clone().into_iter().map(|o| {
                            let (kind, state, deadline) = (o.kind.clone(), o.state.clone(), o.deadline.clone());
                            let overdue = deadline.as_ref().is_some_and(|d| d.overdue);
                            view! {
                                <tr class:overdue=overdue>
                                    <td>{o.id}</td>
                                    <td>{move || code_name(lang.get(), &kind)}</td>
                                    <td>{o.system}</td>
                                    <td>{move || code_name(lang.get(), &state)}</td>
                                    <td>{format::date(&o.created_at)}</td>
                                    <td class="deadline">{move || deadline.as_ref().map(|d| format::clock(lang.get(), d.working_days_left, &d.due_date)).unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        </section>
        <section aria-labelledby="maintenance-h">
            <h2 id="maintenance-h">{tr("dash.maintenance")}</h2>
            <Show when=move || !no_maintenance fallback=move || view! { <p>{tr("dash.no_maintenance")}</p> }>
                <table id="maintenance">
                    <thead><tr>
                        <th scope="col">{tr("mw.when")}</th>
                        <th scope="col">{tr("mw.where")}</th>
                        <th scope="col">{tr("mw.affects")}</th>
                        <th scope="col">{tr("mw.reason")}</th>
                        <th scope="col">{tr("mw.status")}</th>
                    </tr></thead>
                    <tbody>
                        {maintenance.clone().into_iter().map(|w| {
                            let status = match w.status.as_str() {
                                "in_progress" => tr("mw.in_progress"),
                                "cancelled" => tr("mw.cancelled"),
                                _ => tr("mw.upcoming"),
                            };
                            let zones = if w.zones.is_empty() { None } else { Some(w.zones.join("、")) };
                            let cancelled = w.status == "cancelled";
                            view! {
                                <tr class:cancelled=cancelled data-id=w.id.clone()>
                                    <td>{format!("{} – {}", format::date_time(&w.starts_at), format::date_time(&w.ends_at))}</td>
                                    <td>{w.provider.clone()} " / " {match zones {
                                        Some(z) => view! { <span>{z}</span> }.into_any(),
                                        None => view! { <span>{tr("mw.all_zones")}</span> }.into_any(),
                                    }}</td>
                                    <td>{w.affects.clone()}</td>
                                    <td>
                                        {w.emergency.then(|| view! {
                                            <strong class="emergency">{tr("mw.emergency")}</strong>
                                            {w.emergency_reason.clone().unwrap_or_default()}
                                            <br/>
                                        })}
                                        {w.reason.clone()}
                                    </td>
                                    <td>{status}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
            <p class="hint">{tr("mw.hint")}</p>
        </section>
    }
}
