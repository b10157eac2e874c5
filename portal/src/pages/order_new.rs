//! The new application form (SPEC §3; seed 000 attachment 3's resource
//! table): the information system, then one line per server group — name,
//! network zone, architecture, CPU, memory, disks, OS, purpose, quantity —
//! with shape limits checked as you type. Saves the draft and submits it.

use leptos::prelude::*;
use serde_json::json;

use crate::api::{self, ApiError};
use crate::app::{Frame, go, tr, use_lang};

/// What one line may ask for (the simulator's largest host has 64 cores and
/// 512 GiB; a real catalog narrows this per provider).
const VCPU: (u32, u32) = (1, 64);
const MEMORY_GIB: (u32, u32) = (1, 512);
const SYSTEM_DISK_GIB: (u32, u32) = (20, 2_048);
const DATA_DISK_GIB: (u32, u32) = (0, 32_768);
const QUANTITY: (u32, u32) = (1, 100);

/// One line of the form; every field is a signal (`Copy`).
#[derive(Clone, Copy)]
struct LineForm {
    key: usize,
    name: RwSignal<String>,
    area: RwSignal<String>,
    arch: RwSignal<String>,
    vcpu: RwSignal<String>,
    memory: RwSignal<String>,
    system_disk: RwSignal<String>,
    data_disk: RwSignal<String>,
    os: RwSignal<String>,
    purpose: RwSignal<String>,
    quantity: RwSignal<String>,
}

impl LineForm {
    fn new(key: usize) -> Self {
        LineForm {
            key,
            name: RwSignal::new(String::new()),
            area: RwSignal::new("gov_extranet".to_owned()),
            arch: RwSignal::new("x86_64".to_owned()),
            vcpu: RwSignal::new("4".to_owned()),
            memory: RwSignal::new("8".to_owned()),
            system_disk: RwSignal::new("50".to_owned()),
            data_disk: RwSignal::new("100".to_owned()),
            os: RwSignal::new("麒麟 V10".to_owned()),
            purpose: RwSignal::new(String::new()),
            quantity: RwSignal::new("1".to_owned()),
        }
    }

    fn json(&self) -> Option<serde_json::Value> {
        let n = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().ok();
        Some(json!({
            "server": {
                "server_name": self.name.get_untracked().trim(),
                "network_area": self.area.get_untracked(),
                "form": "vm",
                "architecture": self.arch.get_untracked(),
                "vcpu": n(self.vcpu)?,
                "memory_gib": n(self.memory)?,
                "system_disk_gib": n(self.system_disk)?,
                "data_disk_gib": n(self.data_disk)?,
                "os": self.os.get_untracked().trim(),
                "purpose": self.purpose.get_untracked().trim(),
                "backup_gib": 0
            },
            "quantity": n(self.quantity)?
        }))
    }

    /// Whether every field holds an acceptable value.
    fn valid(&self) -> bool {
        text_error(&self.name.get_untracked()).is_none()
            && text_error(&self.os.get_untracked()).is_none()
            && text_error(&self.purpose.get_untracked()).is_none()
            && [
                (self.vcpu, VCPU),
                (self.memory, MEMORY_GIB),
                (self.system_disk, SYSTEM_DISK_GIB),
                (self.data_disk, DATA_DISK_GIB),
                (self.quantity, QUANTITY),
            ]
            .iter()
            .all(|(s, r)| number_error(&s.get_untracked(), *r).is_none())
    }
}

/// The label key of what is wrong with a number field, if anything.
fn number_error(value: &str, (lo, hi): (u32, u32)) -> Option<&'static str> {
    match value.trim().parse::<u32>() {
        _ if value.trim().is_empty() => Some("err.required"),
        Ok(n) if (lo..=hi).contains(&n) => None,
        _ => Some("err.range"),
    }
}

fn text_error(value: &str) -> Option<&'static str> {
    value.trim().is_empty().then_some("err.required")
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SystemItem {
    number: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Systems {
    items: Vec<SystemItem>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Created {
    id: String,
}

/// A number input with its range shown and its error next to it.
#[component]
fn NumberField(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    range: (u32, u32),
) -> impl IntoView {
    let lang = use_lang();
    let error = move || number_error(&value.get(), range);
    let err_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <input
                id=id
                inputmode="numeric"
                aria-invalid=move || error().is_some().to_string()
                aria-describedby=err_id.clone()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <span id=err_id class="field-error" role="alert">
                {move || error().map(|k| format!("{}（{}–{}）", crate::i18n::t(lang.get(), k), range.0, range.1))}
            </span>
        </div>
    }
}

/// A text input with its error next to it.
#[component]
fn TextField(id: String, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    let lang = use_lang();
    let error = move || text_error(&value.get());
    let err_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <input
                id=id
                aria-invalid=move || error().is_some().to_string()
                aria-describedby=err_id.clone()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <span id=err_id class="field-error" role="alert">
                {move || error().map(|k| crate::i18n::t(lang.get(), k))}
            </span>
        </div>
    }
}

#[component]
fn LineEditor(line: LineForm, index: usize, on_remove: Callback<usize>) -> impl IntoView {
    let lang = use_lang();
    let p = move |f: &str| format!("line{index}-{f}");
    view! {
        <fieldset class="line card">
            <legend>{move || format!("#{}", index + 1)}</legend>
            <TextField id=p("name") label="line.server_name" value=line.name/>
            <div class="field">
                <label for=p("area")>{tr("line.area")}</label>
                <select id=p("area") on:change=move |ev| line.area.set(event_target_value(&ev))>
                    <option value="gov_extranet" selected=move || line.area.get() == "gov_extranet">{tr("area.gov_extranet")}</option>
                    <option value="internet" selected=move || line.area.get() == "internet">{tr("area.internet")}</option>
                </select>
            </div>
            <div class="field">
                <label for=p("arch")>{tr("line.arch")}</label>
                <select id=p("arch") on:change=move |ev| line.arch.set(event_target_value(&ev))>
                    <option value="x86_64">"x86_64"</option>
                    <option value="arm64">{move || if lang.get() == crate::i18n::Lang::Zh { "arm64（鲲鹏/飞腾）" } else { "arm64 (Kunpeng/Phytium)" }}</option>
                    <option value="c86">{move || if lang.get() == crate::i18n::Lang::Zh { "c86（海光）" } else { "c86 (Hygon)" }}</option>
                </select>
            </div>
            <NumberField id=p("vcpu") label="line.vcpu" value=line.vcpu range=VCPU/>
            <NumberField id=p("memory") label="line.memory" value=line.memory range=MEMORY_GIB/>
            <NumberField id=p("system-disk") label="line.system_disk" value=line.system_disk range=SYSTEM_DISK_GIB/>
            <NumberField id=p("data-disk") label="line.data_disk" value=line.data_disk range=DATA_DISK_GIB/>
            <TextField id=p("os") label="line.os" value=line.os/>
            <TextField id=p("purpose") label="line.purpose" value=line.purpose/>
            <NumberField id=p("quantity") label="line.quantity" value=line.quantity range=QUANTITY/>
            <button type="button" class="remove" on:click=move |_| on_remove.run(line.key)>{tr("new.remove_line")}</button>
        </fieldset>
    }
}

#[component]
pub fn OrderNew() -> impl IntoView {
    let lang = use_lang();
    let systems = Resource::new(|| (), |_| api::get::<Systems>("/api/v1/systems?limit=200"));
    // `?system=` preselects (the new-system form sends the tenant here).
    let preset = leptos_router::hooks::use_query_map()
        .read_untracked()
        .get("system")
        .unwrap_or_default();
    let system = RwSignal::new(preset);
    // `?kind=change`: the same form files a change request (groups by name).
    let kind = if leptos_router::hooks::use_query_map()
        .read_untracked()
        .get("kind")
        .as_deref()
        == Some("change")
    {
        "change"
    } else {
        "onboarding"
    };
    let next_key = RwSignal::new(1usize);
    let lines = RwSignal::new(vec![LineForm::new(0)]);
    let problem = RwSignal::new(None::<ApiError>);
    let invalid = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let remove = Callback::new(move |key: usize| {
        lines.update(|ls| {
            if ls.len() > 1 {
                ls.retain(|l| l.key != key);
            }
        });
    });
    let indexed = move || lines.get().into_iter().enumerate().collect::<Vec<_>>();
    let add = move |_| {
        let key = next_key.get_untracked();
        next_key.set(key + 1);
        lines.update(|ls| ls.push(LineForm::new(key)));
    };
    // Saves the order; with `and_submit` also submits it for review (a draft
    // waits on its order page, where the tenant submits it later).
    let file = move |and_submit: bool| {
        let ls = lines.get_untracked();
        let sys = system.get_untracked();
        let bodies: Option<Vec<_>> = ls.iter().map(LineForm::json).collect();
        let ok = !sys.is_empty() && ls.iter().all(LineForm::valid);
        invalid.set(!ok);
        let (true, Some(bodies)) = (ok, bodies) else {
            return;
        };
        busy.set(true);
        problem.set(None);
        let create = api::post::<Created>(
            "/api/v1/orders",
            &json!({"kind": kind, "system": sys, "lines": bodies}),
        );
        leptos::task::spawn_local(async move {
            let result = async {
                let created = create.await?;
                if and_submit {
                    api::post::<serde_json::Value>(
                        &format!("/api/v1/orders/{}/transitions", created.id),
                        &json!({"to": "submitted", "reason": null}),
                    )
                    .await?;
                }
                Ok::<_, ApiError>(created.id)
            }
            .await;
            match result {
                Ok(id) => go(&format!("/orders/{id}")),
                Err(e) => {
                    busy.set(false);
                    problem.set(Some(e));
                }
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        file(true);
    };
    view! {
        <Frame>
            <h1>{if kind == "change" { tr("new.title_change")() } else { tr("new.title")() }}</h1>
            <form class="wide" on:submit=submit novalidate=true>
                <div class="field">
                    <label for="system">{tr("new.system")}</label>
                    <Suspense fallback=move || view! { <span>{tr("common.loading")}</span> }>
                        {move || Suspend::new(async move {
                            let items = match systems.await {
                                Ok(s) => s.items,
                                Err(e) if e.needs_login() => { go("/login"); Vec::new() }
                                Err(_) => Vec::new(),
                            };
                            let current = system.get_untracked();
                            if !items.iter().any(|s| s.number == current)
                                && let Some(first) = items.first()
                            {
                                system.set(first.number.clone());
                            }
                            view! {
                                <select id="system" on:change=move |ev| system.set(event_target_value(&ev))>
                                    {items.into_iter().map(|s| {
                                        let label = format!("{} {}", s.number, s.name);
                                        let number = s.number.clone();
                                        view! { <option value=s.number selected=move || system.get() == number>{label}</option> }
                                    }).collect_view()}
                                </select>
                            }
                        })}
                    </Suspense>
                    <a href="/systems/new" id="new-system">{tr("sys.new")}</a>
                </div>
                <h2>{tr("new.lines")}</h2>
                <For
                    each=indexed
                    key=|(i, l)| (*i, l.key)
                    children=move |(i, l)| view! { <LineEditor line=l index=i on_remove=remove/> }
                />
                <button type="button" id="add-line" on:click=add>{tr("new.add_line")}</button>
                <p class="form-error" role="alert">
                    {move || invalid.get().then(tr("new.fix"))}
                    {move || problem.get().map(|e| e.text(lang.get()).to_owned())}
                </p>
                <div class="buttons">
                <button type="button" id="save-draft" disabled=move || busy.get() on:click=move |_| file(false)>
                    {tr("new.save")}
                </button>
                <button type="submit" id="submit-order" disabled=move || busy.get()>
                    {move || if busy.get() { tr("new.busy")() } else { tr("new.submit")() }}
                </button>
                </div>
            </form>
        </Frame>
    }
}
