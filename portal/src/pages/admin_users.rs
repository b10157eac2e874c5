//! Users and roles (用户与角色): every user with their role bindings and scope,
//! and a form that creates a user with one role — department roles bound to
//! the department, a provider operator to a provider platform, the rest to the
//! platform (SPEC §1). The password rule is the server's; its refusal shows
//! next to the form.

use leptos::prelude::*;
use serde_json::{Value, json};

use super::admin::AdminNav;
use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::i18n::{Lang, code_name};

/// The roles a platform admin grants, in the order the form lists them.
const ROLES: [&str; 7] = [
    "tenant_user",
    "tenant_admin",
    "reviewer",
    "approver",
    "provider_operator",
    "auditor",
    "platform_admin",
];

/// The role and scope objects the API takes for `role`.
fn role_request(role: &str, tenant: &str, provider: &str) -> Value {
    match role {
        "tenant_user" | "tenant_admin" => {
            json!({"role": {"name": role}, "scope": {"type": "tenant", "tenant": tenant}})
        }
        "provider_operator" => json!({
            "role": {"name": role, "provider": provider},
            "scope": {"type": "provider", "provider": provider}
        }),
        _ => json!({"role": {"name": role}, "scope": {"type": "platform"}}),
    }
}

/// "角色（范围）" for one binding.
fn binding_text(lang: Lang, b: &Value) -> String {
    let role = code_name(lang, b["role"]["name"].as_str().unwrap_or_default());
    let scope = &b["scope"];
    match scope["type"].as_str() {
        Some("tenant") => format!("{role}（{}）", scope["tenant"].as_str().unwrap_or_default()),
        Some("provider") => format!(
            "{role}（{}）",
            scope["provider"].as_str().unwrap_or_default()
        ),
        _ => role,
    }
}

fn load() -> impl std::future::Future<Output = Result<(Value, Value), ApiError>> + Send + 'static {
    let users = api::get::<Value>("/api/v1/users");
    let tenants = api::get::<Value>("/api/v1/tenants");
    async move { Ok((users.await?, tenants.await?)) }
}

fn required(v: &str) -> Option<&'static str> {
    v.trim().is_empty().then_some("err.required")
}

#[component]
pub fn AdminUsers() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    let id = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new("tenant_user".to_owned());
    let tenant = RwSignal::new(String::new());
    let provider = RwSignal::new("sim".to_owned());
    let problem = RwSignal::new(None::<ApiError>);
    let created = RwSignal::new(None::<String>);
    let tried = RwSignal::new(false);
    let needs_tenant = move || matches!(role.get().as_str(), "tenant_user" | "tenant_admin");

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        let r = role.get_untracked();
        let t = tenant.get_untracked();
        let in_tenant = matches!(r.as_str(), "tenant_user" | "tenant_admin");
        if [id, name, password]
            .iter()
            .any(|s| required(&s.get_untracked()).is_some())
            || (in_tenant && t.is_empty())
        {
            return;
        }
        let body = json!({
            "id": id.get_untracked().trim(),
            "display_name": name.get_untracked().trim(),
            "tenant": in_tenant.then_some(t.clone()),
            "password": password.get_untracked(),
            "roles": [role_request(&r, &t, provider.get_untracked().trim())],
        });
        let call = api::post::<Value>("/api/v1/users", &body);
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(u) => {
                    problem.set(None);
                    created.set(u["id"].as_str().map(str::to_owned));
                    password.set(String::new());
                    tried.set(false);
                    data.refetch();
                }
                Err(e) => {
                    created.set(None);
                    problem.set(Some(e));
                }
            }
        });
    };
    let field_error = move |s: RwSignal<String>| {
        move || {
            (tried.get())
                .then(|| required(&s.get()))
                .flatten()
                .map(|k| crate::i18n::t(lang.get(), k))
        }
    };

    view! {
        <Frame>
            <h1>{tr("admin.users")}</h1>
            <AdminNav/>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((users, tenants)) => {
                            let tenants = tenants["items"].as_array().cloned().unwrap_or_default();
                            if tenant.get_untracked().is_empty()
                                && let Some(first) = tenants.first().and_then(|t| t["code"].as_str())
                            {
                                tenant.set(first.to_owned());
                            }
                            view! {
                                <table id="users">
                                    <thead><tr>
                                        <th scope="col">{tr("users.id")}</th>
                                        <th scope="col">{tr("col.name")}</th>
                                        <th scope="col">{tr("admin.tenants")}</th>
                                        <th scope="col">{tr("users.roles")}</th>
                                        <th scope="col">{tr("col.state")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {users["items"].as_array().cloned().unwrap_or_default().into_iter().map(|u| {
                                            let bindings = u["bindings"].as_array().cloned().unwrap_or_default();
                                            let state = u["state"].as_str().unwrap_or_default().to_owned();
                                            view! {
                                                <tr>
                                                    <td>{u["id"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{u["display_name"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{u["tenant"].as_str().unwrap_or("—").to_owned()}</td>
                                                    <td>{move || bindings.iter().map(|b| binding_text(lang.get(), b)).collect::<Vec<_>>().join("、")}</td>
                                                    <td>{move || code_name(lang.get(), &state)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <datalist id="tenant-codes">
                                    {tenants.into_iter().map(|t| {
                                        let code = t["code"].as_str().unwrap_or_default().to_owned();
                                        let label = t["name"].as_str().unwrap_or_default().to_owned();
                                        view! { <option value=code>{label}</option> }
                                    }).collect_view()}
                                </datalist>
                            }.into_any()
                        }
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Transition>
            <form class="card wide" id="user-form" on:submit=create novalidate=true>
                <h2>{tr("users.add")}</h2>
                <div class="field">
                    <label for="user-id">{tr("users.id")}</label>
                    <input id="user-id" autocomplete="off" aria-describedby="user-id-error"
                        prop:value=move || id.get() on:input=move |ev| id.set(event_target_value(&ev))/>
                    <span id="user-id-error" class="field-error" role="alert">{field_error(id)}</span>
                </div>
                <div class="field">
                    <label for="user-name">{tr("col.name")}</label>
                    <input id="user-name" aria-describedby="user-name-error"
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                    <span id="user-name-error" class="field-error" role="alert">{field_error(name)}</span>
                </div>
                <div class="field">
                    <label for="user-role">{tr("users.role")}</label>
                    <select id="user-role" on:change=move |ev| role.set(event_target_value(&ev))>
                        {ROLES.into_iter().map(|r| view! {
                            <option value=r selected=move || role.get() == r>{move || code_name(lang.get(), r)}</option>
                        }).collect_view()}
                    </select>
                </div>
                <Show when=needs_tenant>
                    <div class="field">
                        <label for="user-tenant">{tr("admin.code")}</label>
                        <input id="user-tenant" list="tenant-codes" aria-describedby="user-tenant-error"
                            prop:value=move || tenant.get() on:input=move |ev| tenant.set(event_target_value(&ev))/>
                        <span id="user-tenant-error" class="field-error" role="alert">{field_error(tenant)}</span>
                    </div>
                </Show>
                <Show when=move || role.get() == "provider_operator">
                    <div class="field">
                        <label for="user-provider">{tr("users.provider")}</label>
                        <input id="user-provider" prop:value=move || provider.get() on:input=move |ev| provider.set(event_target_value(&ev))/>
                    </div>
                </Show>
                <div class="field">
                    <label for="user-password">{tr("login.password")}</label>
                    <input id="user-password" type="password" autocomplete="new-password" aria-describedby="user-password-error"
                        prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/>
                    <span id="user-password-error" class="field-error" role="alert">{field_error(password)}</span>
                    <small>{tr("users.password_rule")}</small>
                </div>
                <p class="form-error" role="alert" id="user-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                <p id="user-done">{move || created.get().map(|u| format!("{} {u}", crate::i18n::t(lang.get(), "users.created")))}</p>
                <button type="submit" id="add-user">{tr("users.add")}</button>
            </form>
        </Frame>
    }
}
