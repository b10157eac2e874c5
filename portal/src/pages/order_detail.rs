//! One work order: its state and deadline clock, requested vs approved
//! quantities (a reviewer lowers a line here), the timeline of every step
//! (who, when, reason), the actions the signed-in user may take now (submit,
//! accept, approve, refuse with a required reason, 交付确认), the test period
//! and its approved extensions (`test_period.rs`), an exited system's data
//! retention and the approver's early purge (`retention.rs`), and the
//! provisioning progress of its resources, live from the controller's event
//! stream (`…/resources/events`).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde_json::{Value, json};

use super::LiveResources;
use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::format;
use crate::i18n::{Lang, code_name};
use crate::pages::dashboard::Me;

/// What a role may do to an order in a state: (target state, label key,
/// needs a reason).
fn actions(
    state: &str,
    roles: &[String],
    own_tenant: bool,
) -> Vec<(&'static str, &'static str, bool)> {
    let has = |r: &str| roles.iter().any(|x| x == r);
    let tenant = own_tenant && (has("tenant_admin") || has("tenant_user"));
    let mut out = Vec::new();
    match state {
        "draft" | "refused" if tenant => out.push(("submitted", "order.submit", false)),
        "submitted" if has("reviewer") => {
            out.push(("accepted", "order.accept", false));
            out.push(("refused", "order.refuse", true));
        }
        "accepted" | "expert_review" if has("approver") => {
            out.push(("approved", "order.approve", false));
            out.push(("refused", "order.refuse", true));
        }
        "test_env_ready" if tenant => out.push(("delivered", "order.deliver", false)),
        _ => {}
    }
    out
}

fn roles_of(me: &Me) -> Vec<String> {
    me.roles
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

#[component]
pub fn OrderDetail() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let order = Resource::new(id, |id| {
        let me = api::get::<Me>("/api/v1/auth/me");
        let order = api::get::<Value>(&format!("/api/v1/orders/{id}"));
        async move { Ok::<_, ApiError>((me.await?, order.await?)) }
    });
    view! {
        <Frame>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match order.await {
                        Ok((me, o)) => view! { <OrderBody me=me order=o refresh=Callback::new(move |()| order.refetch())/> }.into_any(),
                        Err(e) if e.needs_login() => crate::app::failure(e),
                        Err(e) => {
                            #[cfg(feature = "ssr")]
                            if e.status == 404 && let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                                resp.set_status(axum::http::StatusCode::NOT_FOUND);
                            }
                            let lang = use_lang();
                            view! {
                                <h1>{tr("notfound.title")}</h1>
                                <p class="form-error" role="alert" id="order-error">{move || e.text(lang.get()).to_owned()}</p>
                                <p><a href="/">{tr("notfound.back")}</a></p>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </Frame>
    }
}

#[component]
fn OrderBody(me: Me, order: Value, refresh: Callback<()>) -> impl IntoView {
    let lang = use_lang();
    let id = order["id"].as_str().unwrap_or_default().to_owned();
    let state = order["state"].as_str().unwrap_or_default().to_owned();
    let kind = order["kind"].as_str().unwrap_or_default().to_owned();
    let system = order["system"].as_str().unwrap_or_default().to_owned();
    let roles = roles_of(&me);
    let own = me.tenant.as_deref() == order["tenant"].as_str();
    let can_lower = state == "accepted" && roles.iter().any(|r| r == "reviewer");
    let acts = actions(&state, &roles, own);
    let reason = RwSignal::new(String::new());
    let reason_missing = RwSignal::new(false);
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);

    let act = {
        let id = id.clone();
        move |to: &'static str, needs_reason: bool| {
            let text = reason.get_untracked();
            if needs_reason && text.trim().is_empty() {
                reason_missing.set(true);
                return;
            }
            reason_missing.set(false);
            busy.set(true);
            let body = if text.trim().is_empty() {
                json!({"to": to, "reason": null})
            } else {
                json!({"to": to, "reason": text.trim()})
            };
            let call = api::post::<Value>(&format!("/api/v1/orders/{id}/transitions"), &body);
            leptos::task::spawn_local(async move {
                match call.await {
                    Ok(_) => refresh.run(()),
                    Err(e) => problem.set(Some(e)),
                }
                busy.set(false);
            });
        }
    };

    let lines: Vec<Value> = order["request"]["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let history: Vec<Value> = order["history"].as_array().cloned().unwrap_or_default();
    let deadline = order["deadline"].clone();
    let has_acts = !acts.is_empty();
    let may_extend = me.permissions.iter().any(|p| p == "order_approve");
    let (state_c, kind_c) = (state.clone(), kind.clone());
    view! {
        <h1>{tr("order.title")} " " <span id="order-id">{id.clone()}</span></h1>
        <p class="summary">
            <span id="order-kind">{move || code_name(lang.get(), &kind_c)}</span>
            " · " {tr("col.system")} " " {system.clone()}
            " · " {tr("col.state")} ": " <strong id="order-state">{move || code_name(lang.get(), &state_c)}</strong>
            <span class="deadline">{move || deadline_text(lang.get(), &deadline)}</span>
        </p>
        <section aria-labelledby="lines-h">
            <h2 id="lines-h">{tr("new.lines")}</h2>
            <table id="lines">
                <thead><tr>
                    <th scope="col">{tr("line.server_name")}</th>
                    <th scope="col">{tr("line.arch")}</th>
                    <th scope="col">"vCPU"</th>
                    <th scope="col">{tr("line.memory")}</th>
                    <th scope="col">{tr("line.requested")}</th>
                    <th scope="col">{tr("line.approved")}</th>
                </tr></thead>
                <tbody>
                    {lines.into_iter().enumerate().map(|(i, l)| view! {
                        <LineRow index=i line=l order=id.clone() can_lower=can_lower refresh=refresh problem=problem/>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <super::order_services_view::RequestedServices request=order["request"].clone()/>
        <Security request=order["request"].clone()/>
        <super::test_period::TestPeriod order=order.clone() may_extend=may_extend refresh=refresh/>
        <super::retention::Retention order=order.clone() may_purge=may_extend refresh=refresh/>
        <Show when=move || has_acts>
            <section class="card actions" aria-label=move || crate::i18n::t(lang.get(), "order.actions")>
                <label for="reason">{tr("order.reason")}</label>
                <textarea
                    id="reason"
                    aria-invalid=move || reason_missing.get().to_string()
                    aria-describedby="reason-error"
                    prop:value=move || reason.get()
                    on:input=move |ev| reason.set(event_target_value(&ev))
                ></textarea>
                <span id="reason-error" class="field-error" role="alert">
                    {move || reason_missing.get().then(tr("order.reason_needed"))}
                </span>
                <div class="buttons">
                    {acts.clone().into_iter().map(|(to, label, needs)| {
                        let act = act.clone();
                        view! {
                            <button type="button" id=format!("act-{to}") disabled=move || busy.get()
                                class:danger=needs on:click=move |_| act(to, needs)>{tr(label)}</button>
                        }
                    }).collect_view()}
                </div>
            </section>
        </Show>
        <p class="form-error" role="alert" id="action-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
        <Progress system=system.clone() order=id.clone()/>
        <section aria-labelledby="timeline-h">
            <h2 id="timeline-h">{tr("order.timeline")}</h2>
            <ol class="timeline" id="timeline">
                {history.into_iter().map(|h| {
                    let to = h["to"].as_str().unwrap_or_default().to_owned();
                    let who = h["actor"].as_str().unwrap_or_default().trim_start_matches("user:").to_owned();
                    let at = h["at"].as_str().map(format::date_time).unwrap_or_default();
                    let why = h["reason"].as_str().unwrap_or_default().to_owned();
                    view! {
                        <li>
                            <time>{at}</time> " "
                            <strong>{move || code_name(lang.get(), &to)}</strong> " · " {who}
                            {(!why.is_empty()).then(|| view! { <q>{why.clone()}</q> })}
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}

/// The security part of the request: public IPs and bastion accounts (shown
/// only when asked for).
#[component]
fn Security(request: Value) -> impl IntoView {
    let ips = request["public_ips"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bastions = request["bastion_accounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    view! {
        {(!ips.is_empty()).then(|| view! {
            <section aria-labelledby="ips-h">
                <h2 id="ips-h">{tr("extras.public_ips")}</h2>
                <table id="public-ips">
                    <thead><tr>
                        <th scope="col">{tr("extras.purpose")}</th>
                        <th scope="col">{tr("extras.server")}</th>
                        <th scope="col">{tr("extras.ports")}</th>
                    </tr></thead>
                    <tbody>
                        {ips.iter().map(|ip| view! {
                            <tr><td>{text(&ip["purpose"])}</td><td>{text(&ip["server_name"])}</td><td>{list(&ip["ports"])}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
        {(!bastions.is_empty()).then(|| view! {
            <section aria-labelledby="bastion-h">
                <h2 id="bastion-h">{tr("extras.bastion")}</h2>
                <table id="bastion-accounts">
                    <thead><tr>
                        <th scope="col">{tr("extras.holder")}</th>
                        <th scope="col">{tr("extras.account")}</th>
                        <th scope="col">{tr("extras.department")}</th>
                        <th scope="col">{tr("extras.servers")}</th>
                    </tr></thead>
                    <tbody>
                        {bastions.iter().map(|b| view! {
                            <tr><td>{text(&b["holder"])}</td><td>{text(&b["account"])}</td><td>{text(&b["department"])}</td><td>{list(&b["servers"])}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        })}
    }
}

fn deadline_text(lang: Lang, d: &Value) -> String {
    d["due_date"]
        .as_str()
        .map(|due| {
            format!(
                " · {}",
                format::clock(lang, d["working_days_left"].as_i64(), due)
            )
        })
        .unwrap_or_default()
}

#[component]
fn LineRow(
    index: usize,
    line: Value,
    order: String,
    can_lower: bool,
    refresh: Callback<()>,
    problem: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let s = &line["server"];
    let name = s["server_name"].as_str().unwrap_or_default().to_owned();
    let arch = s["architecture"].as_str().unwrap_or_default().to_owned();
    let vcpu = s["vcpu"].as_u64().unwrap_or(0);
    let mem = s["memory_gib"].as_u64().unwrap_or(0);
    let requested = line["requested_qty"].as_u64().unwrap_or(0);
    let approved = line["approved_qty"].as_u64();
    let lowered = RwSignal::new(approved.unwrap_or(requested).to_string());
    let lower = move |_| {
        let Ok(q) = lowered.get_untracked().trim().parse::<u32>() else {
            return;
        };
        let call = api::post::<Value>(
            &format!("/api/v1/orders/{order}/lines/{index}/approve"),
            &json!({"quantity": q}),
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => refresh.run(()),
                Err(e) => problem.set(Some(e)),
            }
        });
    };
    view! {
        <tr>
            <td>{name}</td>
            <td>{arch}</td>
            <td>{vcpu}</td>
            <td>{mem}</td>
            <td>{requested}</td>
            <td>
                {if can_lower {
                    view! {
                        <span class="lower">
                            <input id=format!("approve-{index}") inputmode="numeric" size="4"
                                aria-label=tr("line.approved")
                                prop:value=move || lowered.get()
                                on:input=move |ev| lowered.set(event_target_value(&ev))/>
                            <button type="button" id=format!("lower-{index}") on:click=lower>{tr("order.lower")}</button>
                        </span>
                    }.into_any()
                } else {
                    view! { <span id=format!("approved-{index}")>{approved.map(|a| a.to_string()).unwrap_or_else(|| "—".to_owned())}</span> }.into_any()
                }}
            </td>
        </tr>
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Resources {
    items: Vec<Value>,
}

/// The order's resources and their live state, followed as they change.
#[component]
fn Progress(system: String, order: String) -> impl IntoView {
    let path = format!("/api/v1/systems/{system}/resources");
    // The server renders the list as it is now; the browser then follows the
    // controller's event stream, which sends the list again on every change.
    let resources = Resource::new(|| (), move |_| api::get::<Resources>(&path));
    view! {
        <section aria-labelledby="progress-h">
            <h2 id="progress-h">{tr("order.resources")}</h2>
            <Transition fallback=crate::app::Loading>
                {move || {
                    let (system, order) = (system.clone(), order.clone());
                    Suspend::new(async move {
                        let first = resources.await.map(|r| r.items).unwrap_or_default();
                        view! { <LiveResources id="resources" system=system initial=first order=order/> }
                    })
                }}
            </Transition>
        </section>
    }
}
