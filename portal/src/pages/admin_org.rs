//! Hierarchical administration (分级管理, 003 §3.2.2.15): the org units the
//! caller sees (a unit admin its own subtree, platform staff all of them),
//! the report of a unit (per tenant at or below it: systems, work orders by
//! state, resources by kind, this month's charge), and the users the caller
//! manages with their role bindings — grant one, adjust which of its role's
//! permissions a binding grants, revoke one. Who may is the server's rule;
//! its refusal (in the page's language) shows above the tables.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::i18n::{Lang, code_name};

/// The roles a unit admin grants, in the order the form lists them.
const ROLES: [&str; 3] = ["tenant_user", "tenant_admin", "unit_admin"];

/// The role and scope objects the API takes for `role` in `scope` (a tenant
/// code, or an org unit id for a unit admin).
fn grant_request(role: &str, scope: &str, permissions: &str) -> Value {
    let scope = if role == "unit_admin" {
        json!({"type": "org_unit", "unit": scope})
    } else {
        json!({"type": "tenant", "tenant": scope})
    };
    let mut body = json!({"role": {"name": role}, "scope": scope});
    if let Some(p) = permission_list(permissions) {
        body["permissions"] = json!(p);
    }
    body
}

/// `a, b` → `["a", "b"]`; nothing typed → `None` (all of the role's).
fn permission_list(typed: &str) -> Option<Vec<String>> {
    let list: Vec<String> = typed
        .split([',', '，', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

/// "角色（范围）" for one binding, with its narrowed permissions if any.
fn binding_text(lang: Lang, b: &Value) -> String {
    let role = code_name(lang, b["role"]["name"].as_str().unwrap_or_default());
    let scope = &b["scope"];
    let at = scope["tenant"]
        .as_str()
        .or_else(|| scope["unit"].as_str())
        .unwrap_or_default();
    let narrowed = b["permissions"]
        .as_array()
        .map(|p| {
            let names: Vec<&str> = p.iter().filter_map(Value::as_str).collect();
            format!(" [{}]", names.join(", "))
        })
        .unwrap_or_default();
    if at.is_empty() {
        format!("{role}{narrowed}")
    } else {
        format!("{role}（{at}）{narrowed}")
    }
}

/// "state: n" pairs of a report's counts, in the page's language.
fn counts(lang: Lang, map: &Value) -> String {
    let parts: Vec<String> = map
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{} {}", code_name(lang, k), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join("，")
    }
}

fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn load() -> impl std::future::Future<Output = Result<(Value, Value), ApiError>> + Send + 'static {
    let units = api::get::<Value>("/api/v1/org-units");
    let users = api::get::<Value>("/api/v1/users");
    async move { Ok((units.await?, users.await?)) }
}

#[component]
pub fn AdminOrg() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    // The unit whose report shows; empty: the first (top) unit the caller sees.
    let selected = RwSignal::new(String::new());
    let report = Resource::new(
        move || selected.get(),
        |unit| async move {
            if unit.is_empty() {
                return Ok(None);
            }
            api::get::<Value>(&format!("/api/v1/org-units/{unit}/report"))
                .await
                .map(Some)
        },
    );
    let problem = RwSignal::new(None::<ApiError>);
    let done = RwSignal::new(None::<String>);
    let run =
        move |call: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ApiError>>>>,
              what: String| {
            problem.set(None);
            done.set(None);
            leptos::task::spawn_local(async move {
                match call.await {
                    Ok(()) => {
                        done.set(Some(what));
                        data.refetch();
                    }
                    Err(e) => problem.set(Some(e)),
                }
            });
        };
    let grant_user = RwSignal::new(String::new());
    let grant_role = RwSignal::new("tenant_user".to_owned());
    let grant_scope = RwSignal::new(String::new());
    let grant_permissions = RwSignal::new(String::new());
    let grant = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let user = grant_user.get_untracked().trim().to_owned();
        let scope = grant_scope.get_untracked().trim().to_owned();
        if user.is_empty() || scope.is_empty() {
            return;
        }
        let body = grant_request(
            &grant_role.get_untracked(),
            &scope,
            &grant_permissions.get_untracked(),
        );
        let call = api::post::<Value>(&format!("/api/v1/users/{user}/bindings"), &body);
        run(Box::pin(async move { call.await.map(|_| ()) }), user);
    };

    view! {
        <Frame>
            <h1>{tr("org.title")}</h1>
            <p class="form-error" role="alert" id="org-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
            <p role="status" id="org-done">{move || done.get().map(|u| format!("{} {u}", crate::i18n::t(lang.get(), "org.done")))}</p>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((units, users)) => {
                            let units = units["items"].as_array().cloned().unwrap_or_default();
                            if selected.get_untracked().is_empty()
                                && let Some(first) = units.first().and_then(|u| u["id"].as_str())
                            {
                                selected.set(first.to_owned());
                            }
                            view! {
                                <section aria-labelledby="org-units-h">
                                    <h2 id="org-units-h">{tr("org.units")}</h2>
                                    <table id="org-units">
                                        <thead><tr>
                                            <th scope="col">{tr("col.name")}</th>
                                            <th scope="col">{tr("org.level")}</th>
                                            <th scope="col">{tr("org.tenants")}</th>
                                            <th scope="col">{tr("org.report")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {units.into_iter().map(|u| {
                                                let id = u["id"].as_str().unwrap_or_default().to_owned();
                                                let depth = u["depth"].as_u64().unwrap_or(1).saturating_sub(1) as usize;
                                                let name = format!("{}{}", "　".repeat(depth), u["name"].as_str().unwrap_or_default());
                                                let tenants: Vec<String> = u["tenants"].as_array().into_iter().flatten()
                                                    .filter_map(|t| t.as_str().map(str::to_owned)).collect();
                                                let show = {
                                                    let id = id.clone();
                                                    move |_| selected.set(id.clone())
                                                };
                                                view! {
                                                    <tr id=format!("unit-{id}")>
                                                        <td>{name}</td>
                                                        <td>{u["level_zh"].as_str().unwrap_or_default().to_owned()}</td>
                                                        <td>{if tenants.is_empty() { "—".to_owned() } else { tenants.join("，") }}</td>
                                                        <td><button type="button" id=format!("report-{id}") on:click=show>{tr("org.show_report")}</button></td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </section>
                                <section aria-labelledby="org-users-h">
                                    <h2 id="org-users-h">{tr("org.bindings")}</h2>
                                    <table id="org-users">
                                        <thead><tr>
                                            <th scope="col">{tr("org.user")}</th>
                                            <th scope="col">{tr("col.name")}</th>
                                            <th scope="col">{tr("org.member")}</th>
                                            <th scope="col">{tr("users.roles")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {users["items"].as_array().cloned().unwrap_or_default().into_iter().map(|u| {
                                                let uid = u["id"].as_str().unwrap_or_default().to_owned();
                                                let member = u["tenant"].as_str().or_else(|| u["org_unit"].as_str()).unwrap_or("—").to_owned();
                                                let bindings = u["bindings"].as_array().cloned().unwrap_or_default();
                                                view! {
                                                    <tr id=format!("org-user-{uid}")>
                                                        <td>{uid.clone()}</td>
                                                        <td>{u["display_name"].as_str().unwrap_or_default().to_owned()}</td>
                                                        <td>{member}</td>
                                                        <td>
                                                            {bindings.into_iter().map(|b| {
                                                                let bid = b["id"].as_str().unwrap_or_default().to_owned();
                                                                let typed = RwSignal::new(String::new());
                                                                let adjust = {
                                                                    let (uid, bid) = (uid.clone(), bid.clone());
                                                                    move |_| {
                                                                        let body = json!({"permissions": permission_list(&typed.get_untracked())});
                                                                        let call = api::patch::<Value>(&format!("/api/v1/users/{uid}/bindings/{bid}"), &body);
                                                                        run(Box::pin(async move { call.await.map(|_| ()) }), uid.clone());
                                                                    }
                                                                };
                                                                let revoke = {
                                                                    let (uid, bid) = (uid.clone(), bid.clone());
                                                                    move |_| run(Box::pin(api::delete(&format!("/api/v1/users/{uid}/bindings/{bid}"))), uid.clone())
                                                                };
                                                                view! {
                                                                    <span class="binding">
                                                                        {move || binding_text(lang.get(), &b)}
                                                                        " "
                                                                        <input id=format!("permissions-{bid}") aria-label=move || crate::i18n::t(lang.get(), "org.permissions")
                                                                            prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev))/>
                                                                        <button type="button" id=format!("adjust-{bid}") on:click=adjust>{tr("org.adjust")}</button>
                                                                        " "
                                                                        <button type="button" class="danger" id=format!("revoke-{bid}") on:click=revoke>{tr("org.revoke")}</button>
                                                                    </span>
                                                                }
                                                            }).collect_view()}
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </section>
                            }.into_any()
                        }
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Transition>
            <section aria-labelledby="org-report-h">
                <h2 id="org-report-h">{tr("org.report")} " " {move || selected.get()}</h2>
                <Transition fallback=crate::app::Loading>
                    {move || Suspend::new(async move {
                        match report.await {
                            Ok(Some(r)) => {
                                let tenants = r["tenants"].as_array().cloned().unwrap_or_default();
                                view! {
                                    <table id="org-report">
                                        <thead><tr>
                                            <th scope="col">{tr("col.number")}</th>
                                            <th scope="col">{tr("col.name")}</th>
                                            <th scope="col">{tr("org.systems")}</th>
                                            <th scope="col">{tr("org.orders")}</th>
                                            <th scope="col">{tr("org.resources")}</th>
                                            <th scope="col">{tr("org.cost")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {tenants.into_iter().map(|t| {
                                                let code = t["tenant"].as_str().unwrap_or_default().to_owned();
                                                let orders = t["orders_by_state"].clone();
                                                let resources = t["resources_by_kind"].clone();
                                                view! {
                                                    <tr id=format!("report-tenant-{code}")>
                                                        <td>{code.clone()}</td>
                                                        <td>{t["name"].as_str().unwrap_or_default().to_owned()}</td>
                                                        <td>{t["systems"].as_u64().unwrap_or(0)}</td>
                                                        <td>{move || counts(lang.get(), &orders)}</td>
                                                        <td>{move || counts(lang.get(), &resources)}</td>
                                                        <td>{format!("{} {}", yuan(t["cost_fen"].as_u64().unwrap_or(0)), t["month"].as_str().unwrap_or_default())}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }
                            Ok(None) => view! { <p>{tr("org.none")}</p> }.into_any(),
                            Err(e) => view! { <p class="form-error" role="alert">{e.text(lang.get()).to_owned()}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            <form class="card wide" id="grant-form" on:submit=grant novalidate=true>
                <h2>{tr("org.grant")}</h2>
                <div class="field">
                    <label for="grant-user">{tr("org.user")}</label>
                    <input id="grant-user" autocomplete="off"
                        prop:value=move || grant_user.get() on:input=move |ev| grant_user.set(event_target_value(&ev))/>
                </div>
                <div class="field">
                    <label for="grant-role">{tr("users.role")}</label>
                    <select id="grant-role" on:change=move |ev| grant_role.set(event_target_value(&ev))>
                        {ROLES.into_iter().map(|r| view! {
                            <option value=r selected=move || grant_role.get() == r>{move || code_name(lang.get(), r)}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="grant-scope">{tr("org.scope")}</label>
                    <input id="grant-scope" autocomplete="off"
                        prop:value=move || grant_scope.get() on:input=move |ev| grant_scope.set(event_target_value(&ev))/>
                </div>
                <div class="field">
                    <label for="grant-permissions">{tr("org.permissions")}</label>
                    <input id="grant-permissions" autocomplete="off"
                        prop:value=move || grant_permissions.get() on:input=move |ev| grant_permissions.set(event_target_value(&ev))/>
                </div>
                <button type="submit" id="grant-submit">{tr("org.grant")}</button>
            </form>
        </Frame>
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn grant_bodies_and_permission_lists() {
        assert_eq!(
            grant_request("unit_admin", "changan-fgw", ""),
            json!({"role": {"name": "unit_admin"}, "scope": {"type": "org_unit", "unit": "changan-fgw"}})
        );
        assert_eq!(
            grant_request("tenant_user", "130102001", "order_read，system_read")["permissions"],
            json!(["order_read", "system_read"])
        );
        assert_eq!(permission_list("  "), None);
        assert_eq!(yuan(12345), "123.45");
        let unique: BTreeSet<&str> = ROLES.into_iter().collect();
        assert_eq!(unique.len(), ROLES.len());
    }
}
