//! Platform administration (平台管理员): departments (使用单位) — listed and
//! registered, the code checked as typed with the domain's rule — and service
//! catalogs — listed and imported from CSV/TOML/JSON, every bad row of a
//! refused file shown with its line and field, nothing written.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::app::{Frame, tr, use_lang};
use crate::i18n::Lang;

fn load() -> impl std::future::Future<Output = Result<(Value, Value), ApiError>> + Send + 'static {
    let tenants = api::get::<Value>("/api/v1/tenants");
    let catalogs = api::get::<Value>("/api/v1/catalogs");
    async move { Ok((tenants.await?, catalogs.await?)) }
}

fn code_error(v: &str) -> Option<&'static str> {
    if v.trim().is_empty() {
        Some("err.required")
    } else if yunshu_domain::TenantCode::new(v.trim()).is_err() {
        Some("err.invalid")
    } else {
        None
    }
}

/// Every reported problem of a refused import, one line each.
fn issues(lang: Lang, e: &ApiError) -> Vec<String> {
    e.details
        .as_ref()
        .and_then(|d| d["issues"].as_array())
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    let text = match lang {
                        Lang::Zh => i["message_zh"].as_str().or(i["zh"].as_str()),
                        Lang::En => i["message"].as_str().or(i["en"].as_str()),
                    }
                    .unwrap_or_default();
                    format!(
                        "#{} {} {}",
                        i["line"].as_u64().or(i["row"].as_u64()).unwrap_or(0),
                        i["field"].as_str().unwrap_or_default(),
                        text
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The administration area's own navigation: departments and catalogs, users
/// and roles, drivers, deadline rules and the calendar.
#[component]
pub fn AdminNav() -> impl IntoView {
    let here = leptos_router::hooks::use_location().pathname;
    let link = move |href: &'static str, id: &'static str, key: &'static str| {
        view! {
            <a href=href id=id aria-current=move || (here.get() == href).then_some("page")>{tr(key)}</a>
        }
    };
    view! {
        <nav class="subnav" aria-label=move || crate::i18n::t(use_lang().get(), "nav.admin")>
            {link("/admin", "admin-home", "admin.home")}
            {link("/admin/users", "admin-users", "admin.users")}
            {link("/admin/drivers", "admin-drivers", "drivers.title")}
            {link("/admin/rules", "admin-rules", "rules.title")}
        </nav>
    }
}

#[component]
pub fn Admin() -> impl IntoView {
    let lang = use_lang();
    let data = Resource::new(|| (), |_| load());
    let code = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let unit = RwSignal::new(String::new());
    let tenant_problem = RwSignal::new(None::<ApiError>);
    let format = RwSignal::new("csv".to_owned());
    let file = RwSignal::new(String::new());
    let import_problem = RwSignal::new(None::<ApiError>);
    let imported = RwSignal::new(None::<String>);

    let add_tenant = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if code_error(&code.get_untracked()).is_some() {
            return;
        }
        let call = api::post::<Value>(
            "/api/v1/tenants",
            &json!({"code": code.get_untracked().trim(), "name": name.get_untracked().trim(),
                    "supervising_unit": unit.get_untracked().trim()}),
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => {
                    tenant_problem.set(None);
                    data.refetch();
                }
                Err(e) => tenant_problem.set(Some(e)),
            }
        });
    };
    let import = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let f = format.get_untracked();
        let content_type = match f.as_str() {
            "json" => "application/json",
            _ => "text/plain",
        };
        let call = api::post_text::<Value>(
            &format!("/api/v1/catalogs/import?format={f}"),
            file.get_untracked(),
            content_type,
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(c) => {
                    import_problem.set(None);
                    imported.set(c["id"].as_str().map(str::to_owned));
                    data.refetch();
                }
                Err(e) => {
                    imported.set(None);
                    import_problem.set(Some(e));
                }
            }
        });
    };

    view! {
        <Frame>
            <h1>{tr("admin.title")}</h1>
            <AdminNav/>
            <Transition fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((tenants, catalogs)) => view! {
                            <section aria-labelledby="tenants-h">
                                <h2 id="tenants-h">{tr("admin.tenants")}</h2>
                                <table id="tenants">
                                    <thead><tr>
                                        <th scope="col">{tr("col.number")}</th>
                                        <th scope="col">{tr("col.name")}</th>
                                        <th scope="col">{tr("admin.supervisor")}</th>
                                    </tr></thead>
                                    <tbody>
                                        {tenants["items"].as_array().cloned().unwrap_or_default().into_iter().map(|t| view! {
                                            <tr>
                                                <td>{t["code"].as_str().unwrap_or_default().to_owned()}</td>
                                                <td>{t["name"].as_str().unwrap_or_default().to_owned()}</td>
                                                <td>{t["supervising_unit"].as_str().unwrap_or_default().to_owned()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </section>
                            <section aria-labelledby="catalogs-h">
                                <h2 id="catalogs-h">{tr("admin.catalogs")}</h2>
                                <ul id="catalogs">
                                    {catalogs["items"].as_array().cloned().unwrap_or_default().into_iter().map(|c| view! {
                                        <li>
                                            <strong>{c["id"].as_str().unwrap_or_default().to_owned()}</strong> " · "
                                            {c["name"].as_str().unwrap_or_default().to_owned()} " · "
                                            {c["items"].as_u64().unwrap_or(0)} " " {tr("admin.items")}
                                        </li>
                                    }).collect_view()}
                                </ul>
                            </section>
                        }.into_any(),
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Transition>
            <form class="card wide" id="tenant-form" on:submit=add_tenant novalidate=true>
                <h2>{tr("admin.add_tenant")}</h2>
                <div class="field">
                    <label for="tenant-code">{tr("admin.code")}</label>
                    <input id="tenant-code" aria-describedby="tenant-code-error"
                        aria-invalid=move || code_error(&code.get()).is_some().to_string()
                        prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
                    <span id="tenant-code-error" class="field-error" role="alert">
                        {move || code_error(&code.get()).map(|k| crate::i18n::t(lang.get(), k))}
                    </span>
                </div>
                <div class="field">
                    <label for="tenant-name">{tr("col.name")}</label>
                    <input id="tenant-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                </div>
                <div class="field">
                    <label for="tenant-unit">{tr("admin.supervisor")}</label>
                    <input id="tenant-unit" prop:value=move || unit.get() on:input=move |ev| unit.set(event_target_value(&ev))/>
                </div>
                <p class="form-error" role="alert" id="tenant-error">{move || tenant_problem.get().map(|e| e.text(lang.get()).to_owned())}</p>
                <button type="submit" id="add-tenant">{tr("admin.add")}</button>
            </form>
            <form class="card wide" id="import-form" on:submit=import novalidate=true>
                <h2>{tr("admin.import")}</h2>
                <div class="field">
                    <label for="import-format">{tr("admin.format")}</label>
                    <select id="import-format" on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="csv">"CSV"</option>
                        <option value="toml">"TOML"</option>
                        <option value="json">"JSON"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="import-file">{tr("admin.file")}</label>
                    <textarea id="import-file" rows="8" class="mono"
                        prop:value=move || file.get() on:input=move |ev| file.set(event_target_value(&ev))></textarea>
                </div>
                <div class="form-error" role="alert" id="import-error">
                    {move || import_problem.get().map(|e| {
                        let l = lang.get();
                        view! {
                            <p>{e.text(l).to_owned()}</p>
                            <ul>{issues(l, &e).into_iter().map(|i| view! { <li>{i}</li> }).collect_view()}</ul>
                        }
                    })}
                </div>
                <p id="import-done">{move || imported.get().map(|id| format!("{} {id}", crate::i18n::t(lang.get(), "admin.imported")))}</p>
                <button type="submit" id="import-submit">{tr("admin.import_submit")}</button>
            </form>
        </Frame>
    }
}
