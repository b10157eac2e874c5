//! Users and roles (用户与角色): every user with their role bindings and scope,
//! and a form that creates a user with one role — department roles bound to
//! the department, a provider operator to a provider platform, the rest to the
//! platform (SPEC §1). No password is typed: the answer's one-time activation
//! link is shown once, and the user sets their own password with it on the
//! public activation page (三员分立, issue 16 item 7). The server's refusal
//! (e.g. ROLES_SEPARATED) shows next to the form.
//!
//! Offboarding (issue 16 item 12), per user row: 停用/启用, 重置密码 (a
//! platform administrator's reset is a new activation link, shown once; a
//! department admin's a typed or generated password), 撤销会话与令牌, and
//! removing one role binding. Who may is the server's rule; its refusal (in
//! the page's language) shows above the table.

use leptos::prelude::*;
use serde_json::{Value, json};

use super::admin::AdminNav;
use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::i18n::{Lang, code_name};

/// The roles a security admin grants, in the order the form lists them.
const ROLES: [&str; 8] = [
    "tenant_user",
    "tenant_admin",
    "reviewer",
    "approver",
    "provider_operator",
    "auditor",
    "platform_admin",
    "security_admin",
];

/// The activation link as the user will open it (`https://host/activate#…`).
fn absolute(link: &str) -> String {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    if let Some(origin) = web_sys::window().and_then(|w| w.location().origin().ok()) {
        return format!("{origin}{link}");
    }
    link.to_owned()
}

/// (user, full link) of an answer carrying a one-time activation.
fn activation_of(user: &str, answer: &Value) -> Option<(String, String)> {
    answer["activation"]["link"]
        .as_str()
        .map(|l| (user.to_owned(), absolute(l)))
}

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

type Data = Resource<Result<(Value, Value), ApiError>>;

/// Where a user action reports: the server's refusal, or what was done to whom.
#[derive(Clone, Copy)]
struct Outcome {
    problem: RwSignal<Option<ApiError>>,
    done: RwSignal<Option<(&'static str, String)>>,
    data: Data,
}

impl Outcome {
    /// Runs `call` on `user`; on success says `done_key` and reloads the list.
    fn run(
        self,
        call: impl std::future::Future<Output = Result<(), ApiError>> + 'static,
        done_key: &'static str,
        user: String,
    ) {
        self.problem.set(None);
        self.done.set(None);
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(()) => {
                    self.done.set(Some((done_key, user)));
                    self.data.refetch();
                }
                Err(e) => self.problem.set(Some(e)),
            }
        });
    }
}

/// `POST path` of a user action, its answer dropped.
fn post_action(
    path: String,
) -> impl std::future::Future<Output = Result<(), ApiError>> + Send + 'static {
    let call = api::post::<Value>(&path, &json!({}));
    async move { call.await.map(|_| ()) }
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
    let role = RwSignal::new("tenant_user".to_owned());
    let tenant = RwSignal::new(String::new());
    let provider = RwSignal::new("sim".to_owned());
    let problem = RwSignal::new(None::<ApiError>);
    let created = RwSignal::new(None::<String>);
    let tried = RwSignal::new(false);
    let needs_tenant = move || matches!(role.get().as_str(), "tenant_user" | "tenant_admin");
    let outcome = Outcome {
        problem: RwSignal::new(None),
        done: RwSignal::new(None),
        data,
    };
    let reset_for = RwSignal::new(None::<String>);
    let new_password = RwSignal::new(String::new());
    let generated = RwSignal::new(None::<(String, String)>);
    let activation = RwSignal::new(None::<(String, String)>);
    let reset = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(user) = reset_for.get_untracked() else {
            return;
        };
        let typed = new_password.get_untracked();
        let body = if typed.is_empty() {
            json!({})
        } else {
            json!({"password": typed})
        };
        let call = api::post::<Value>(&format!("/api/v1/users/{user}/password"), &body);
        outcome.problem.set(None);
        outcome.done.set(None);
        generated.set(None);
        activation.set(None);
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(answer) => {
                    activation.set(activation_of(&user, &answer));
                    generated.set(
                        answer["password"]
                            .as_str()
                            .map(|p| (user.clone(), p.to_owned())),
                    );
                    outcome.done.set(Some(("users.reset_done", user)));
                    new_password.set(String::new());
                    reset_for.set(None);
                    data.refetch();
                }
                Err(e) => outcome.problem.set(Some(e)),
            }
        });
    };

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        let r = role.get_untracked();
        let t = tenant.get_untracked();
        let in_tenant = matches!(r.as_str(), "tenant_user" | "tenant_admin");
        if [id, name]
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
            "roles": [role_request(&r, &t, provider.get_untracked().trim())],
        });
        let call = api::post::<Value>("/api/v1/users", &body);
        activation.set(None);
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(u) => {
                    problem.set(None);
                    let uid = u["id"].as_str().unwrap_or_default().to_owned();
                    activation.set(activation_of(&uid, &u));
                    created.set(Some(uid));
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
                                <p class="form-error" role="alert" id="user-action-error">{move || outcome.problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                                <p role="status" id="user-action-done">{move || outcome.done.get().map(|(k, u)| format!("{} {u}", crate::i18n::t(lang.get(), k)))}</p>
                                <table id="users">
                                    <thead><tr>
                                        <th scope="col">{tr("users.id")}</th>
                                        <th scope="col">{tr("col.name")}</th>
                                        <th scope="col">{tr("admin.tenants")}</th>
                                        <th scope="col">{tr("users.roles")}</th>
                                        <th scope="col">{tr("col.state")}</th>
                                        <th scope="col">{tr("users.actions")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {users["items"].as_array().cloned().unwrap_or_default().into_iter().map(|u| {
                                            let bindings = u["bindings"].as_array().cloned().unwrap_or_default();
                                            let state = u["state"].as_str().unwrap_or_default().to_owned();
                                            let uid = u["id"].as_str().unwrap_or_default().to_owned();
                                            let active = state == "active";
                                            let toggle = {
                                                let uid = uid.clone();
                                                move |_| {
                                                    let (verb, done) = if active {
                                                        ("disable", "users.disabled_done")
                                                    } else {
                                                        ("enable", "users.enabled_done")
                                                    };
                                                    outcome.run(post_action(format!("/api/v1/users/{uid}/{verb}")), done, uid.clone());
                                                }
                                            };
                                            let revoke = {
                                                let uid = uid.clone();
                                                move |_| outcome.run(post_action(format!("/api/v1/users/{uid}/revoke-credentials")), "users.revoked_done", uid.clone())
                                            };
                                            let open_reset = {
                                                let uid = uid.clone();
                                                move |_| {
                                                    generated.set(None);
                                                    new_password.set(String::new());
                                                    reset_for.set(Some(uid.clone()));
                                                }
                                            };
                                            view! {
                                                <tr id=format!("user-{uid}")>
                                                    <td>{uid.clone()}</td>
                                                    <td>{u["display_name"].as_str().unwrap_or_default().to_owned()}</td>
                                                    <td>{u["tenant"].as_str().unwrap_or("—").to_owned()}</td>
                                                    <td>
                                                        {bindings.into_iter().map(|b| {
                                                            let bid = b["id"].as_str().unwrap_or_default().to_owned();
                                                            let remove = {
                                                                let (uid, bid) = (uid.clone(), bid.clone());
                                                                move |_| outcome.run(api::delete(&format!("/api/v1/users/{uid}/bindings/{bid}")), "users.binding_removed", uid.clone())
                                                            };
                                                            view! {
                                                                <span class="binding">
                                                                    {move || binding_text(lang.get(), &b)}
                                                                    " "
                                                                    <button type="button" class="remove" id=format!("remove-binding-{bid}") on:click=remove>{tr("users.remove_binding")}</button>
                                                                </span>
                                                            }
                                                        }).collect_view()}
                                                    </td>
                                                    <td>{move || code_name(lang.get(), &state)}</td>
                                                    <td class="actions">
                                                        <button type="button" id=format!("toggle-{uid}") class:danger=active on:click=toggle>
                                                            {if active { tr("users.disable") } else { tr("users.enable") }}
                                                        </button>
                                                        " "
                                                        <button type="button" id=format!("reset-{uid}") on:click=open_reset>{tr("users.reset_password")}</button>
                                                        " "
                                                        <button type="button" id=format!("revoke-{uid}") class="danger" on:click=revoke>{tr("users.revoke")}</button>
                                                    </td>
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
            <p id="activation-link" role="status">
                {move || activation.get().map(|(u, l)| view! {
                    {move || crate::i18n::t(lang.get(), "users.activation_link")}
                    " " {u} " " <code id="activation-url">{l}</code>
                })}
            </p>
            <p id="generated-password" role="status">
                {move || generated.get().map(|(u, p)| view! {
                    {move || crate::i18n::t(lang.get(), "users.generated_password")}
                    " " {u} " " <code>{p}</code>
                })}
            </p>
            <Show when=move || reset_for.get().is_some()>
                <form class="card wide" id="reset-form" on:submit=reset novalidate=true>
                    <h2>{tr("users.reset_password")} " " {move || reset_for.get().unwrap_or_default()}</h2>
                    <div class="field">
                        <label for="reset-password">{tr("users.new_password")}</label>
                        <input id="reset-password" type="password" autocomplete="new-password"
                            prop:value=move || new_password.get() on:input=move |ev| new_password.set(event_target_value(&ev))/>
                        <small>{tr("users.password_rule")}</small>
                    </div>
                    <button type="submit" id="reset-submit">{tr("users.reset_password")}</button>
                    " "
                    <button type="button" id="reset-cancel" on:click=move |_| reset_for.set(None)>{tr("users.cancel")}</button>
                </form>
            </Show>
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
                <p class="hint" id="user-no-password">{tr("users.no_password")}</p>
                <p class="form-error" role="alert" id="user-error">{move || problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                <p id="user-done">{move || created.get().map(|u| format!("{} {u}", crate::i18n::t(lang.get(), "users.created")))}</p>
                <button type="submit" id="add-user">{tr("users.add")}</button>
            </form>
        </Frame>
    }
}
