//! The new application form (SPEC §3; seed 000 attachment 3): the
//! information system; the service catalog the lines are picked from; one
//! line per server group — name, network zone, architecture, CPU, memory,
//! disks, OS, purpose, backup space, quantity — with the catalog's shape
//! limits checked as you type and each line's monthly estimate at the
//! catalog's unit prices; the network and services (module
//! `order_services`); public IPs and ports; bastion accounts. Saves the
//! draft or saves and submits it.

use leptos::prelude::*;
use serde_json::{Value, json};

use super::order_extras::{BastionAccounts, BastionForm, IpForm, PublicIps};
use super::order_services::{Services, ServicesSection};
use crate::api::{self, ApiError};
use crate::app::{Frame, go, tr, use_lang};
use crate::format;
use crate::pricing::{Limits, Pricing, Shape};

/// What one line may ask for where the catalog says nothing (the simulator's
/// largest host has 64 cores and 512 GiB).
const VCPU: Limits = Limits::new(1, 64);
const MEMORY_GIB: Limits = Limits::new(1, 512);
const SYSTEM_DISK_GIB: Limits = Limits::new(20, 2_048);
const DATA_DISK_GIB: Limits = Limits {
    min: 0,
    max: 32_768,
    step: 1,
};
const BACKUP_GIB: Limits = Limits {
    min: 0,
    max: 32_768,
    step: 1,
};
const QUANTITY: Limits = Limits::new(1, 100);

/// The catalog a new application starts with (the demo's policy is Beijing's).
const DEFAULT_CATALOG: &str = "beijing-2023";

/// One line of the form; every field is a signal (`Copy`).
#[derive(Clone, Copy)]
struct LineForm {
    key: usize,
    name: RwSignal<String>,
    area: RwSignal<String>,
    /// `vm` or `bare_metal`.
    form: RwSignal<String>,
    /// Bare metal only: the host model; empty = any with the cores asked for.
    model: RwSignal<String>,
    arch: RwSignal<String>,
    vcpu: RwSignal<String>,
    memory: RwSignal<String>,
    system_disk: RwSignal<String>,
    data_disk: RwSignal<String>,
    os: RwSignal<String>,
    purpose: RwSignal<String>,
    backup: RwSignal<String>,
    /// "hard" or "soft" (反亲和): how the line's servers are kept apart.
    anti_affinity: RwSignal<String>,
    quantity: RwSignal<String>,
}

impl LineForm {
    fn new(key: usize) -> Self {
        LineForm {
            key,
            name: RwSignal::new(String::new()),
            area: RwSignal::new("gov_extranet".to_owned()),
            form: RwSignal::new("vm".to_owned()),
            model: RwSignal::new(String::new()),
            arch: RwSignal::new("x86_64".to_owned()),
            vcpu: RwSignal::new("4".to_owned()),
            memory: RwSignal::new("8".to_owned()),
            system_disk: RwSignal::new("50".to_owned()),
            data_disk: RwSignal::new("100".to_owned()),
            os: RwSignal::new("麒麟 V10".to_owned()),
            purpose: RwSignal::new(String::new()),
            backup: RwSignal::new("0".to_owned()),
            anti_affinity: RwSignal::new("hard".to_owned()),
            quantity: RwSignal::new("1".to_owned()),
        }
    }

    fn json(&self) -> Option<serde_json::Value> {
        let n = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().ok();
        let form = self.form.get_untracked();
        let model = self.model.get_untracked().trim().to_owned();
        let model = (form == "bare_metal" && !model.is_empty()).then_some(model);
        Some(json!({
            "server": {
                "server_name": self.name.get_untracked().trim(),
                "network_area": self.area.get_untracked(),
                "form": form,
                "model": model,
                "architecture": self.arch.get_untracked(),
                "vcpu": n(self.vcpu)?,
                "memory_gib": n(self.memory)?,
                "system_disk_gib": n(self.system_disk)?,
                "data_disk_gib": n(self.data_disk)?,
                "os": self.os.get_untracked().trim(),
                "purpose": self.purpose.get_untracked().trim(),
                "backup_gib": n(self.backup)?,
                "anti_affinity": self.anti_affinity.get_untracked()
            },
            "quantity": n(self.quantity)?
        }))
    }

    /// Whether every field holds an acceptable value under `pricing`'s limits.
    fn valid(&self, pricing: &Pricing) -> bool {
        text_error(&self.name.get_untracked()).is_none()
            && text_error(&self.os.get_untracked()).is_none()
            && text_error(&self.purpose.get_untracked()).is_none()
            && [
                (self.vcpu, pricing.vcpu.unwrap_or(VCPU)),
                (self.memory, pricing.memory_gib.unwrap_or(MEMORY_GIB)),
                (self.system_disk, SYSTEM_DISK_GIB),
                (self.data_disk, DATA_DISK_GIB),
                (self.backup, BACKUP_GIB),
                (self.quantity, QUANTITY),
            ]
            .iter()
            .all(|(s, r)| number_error(&s.get_untracked(), *r).is_none())
    }

    /// One server's shape, if the numbers parse.
    fn shape(&self) -> Option<Shape> {
        let n = |s: RwSignal<String>| s.get().trim().parse::<u32>().ok();
        Some(Shape {
            vcpu: n(self.vcpu)?,
            memory_gib: n(self.memory)?,
            disk_gib: n(self.system_disk)?.checked_add(n(self.data_disk)?)?,
            backup_gib: n(self.backup)?,
        })
    }

    /// This line's monthly estimate in fen (all its servers).
    fn monthly_fen(&self, pricing: &Pricing) -> Option<u64> {
        let qty = u64::from(self.quantity.get().trim().parse::<u32>().ok()?);
        Some(pricing.monthly_fen(self.shape()?)? * qty)
    }
}

/// The label key of what is wrong with a number field, if anything.
fn number_error(value: &str, limits: Limits) -> Option<&'static str> {
    match value.trim().parse::<u32>() {
        _ if value.trim().is_empty() => Some("err.required"),
        Ok(n) if limits.admits(n) => None,
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
    /// 信创: the server refuses x86_64 servers for this system.
    #[serde(default)]
    xinchuang: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Systems {
    items: Vec<SystemItem>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Created {
    id: String,
}

/// Set once the applicant tried to save or submit: from then on every
/// missing field says so.
#[derive(Clone, Copy)]
pub struct Tried(pub RwSignal<bool>);

impl Tried {
    pub fn get() -> Option<RwSignal<bool>> {
        use_context::<Tried>().map(|t| t.0)
    }
}

/// A number input with its range shown and its error next to it.
#[component]
fn NumberField(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] range: Signal<Limits>,
) -> impl IntoView {
    let lang = use_lang();
    let error = move || number_error(&value.get(), range.get());
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
                {move || error().map(|k| {
                    let r = range.get();
                    format!("{}（{}–{}）", crate::i18n::t(lang.get(), k), r.min, r.max)
                })}
            </span>
        </div>
    }
}

/// A text input with its error next to it.
#[component]
fn TextField(id: String, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    let lang = use_lang();
    // "Required" waits until the field was left or the form was sent: an
    // empty form is not an error yet.
    let touched = RwSignal::new(false);
    let tried = Tried::get();
    let error = move || {
        text_error(&value.get()).filter(|_| touched.get() || tried.is_some_and(|t| t.get()))
    };
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
                on:blur=move |_| touched.set(true)
            />
            <span id=err_id class="field-error" role="alert">
                {move || error().map(|k| crate::i18n::t(lang.get(), k))}
            </span>
        </div>
    }
}

#[component]
fn LineEditor(
    line: LineForm,
    index: usize,
    on_remove: Callback<usize>,
    catalog: RwSignal<Option<Value>>,
    xinchuang: Signal<bool>,
) -> impl IntoView {
    let lang = use_lang();
    let p = move |f: &str| format!("line{index}-{f}");
    // The catalog's limits and prices for this line's architecture.
    let pricing = Memo::new(move |_| {
        let arch = line.arch.get();
        catalog.with(|c| {
            c.as_ref()
                .map(|c| Pricing::from_catalog(c, &arch))
                .unwrap_or_default()
        })
    });
    let vcpu_range = Signal::derive(move || pricing.with(|p| p.vcpu.unwrap_or(VCPU)));
    let memory_range = Signal::derive(move || pricing.with(|p| p.memory_gib.unwrap_or(MEMORY_GIB)));
    let estimate = move || {
        let l = lang.get();
        match pricing.with(|p| line.monthly_fen(p)) {
            Some(fen) => format!(
                "{} {}",
                crate::i18n::t(l, "new.estimate"),
                format::yuan(i64::try_from(fen).unwrap_or(i64::MAX))
            ),
            None => crate::i18n::t(l, "new.no_estimate").to_owned(),
        }
    };
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
                <label for=p("form")>{tr("line.form")}</label>
                <select id=p("form") on:change=move |ev| line.form.set(event_target_value(&ev))>
                    <option value="vm" selected=move || line.form.get() == "vm">{tr("form.vm")}</option>
                    <option value="bare_metal" selected=move || line.form.get() == "bare_metal">{tr("form.bare_metal")}</option>
                </select>
            </div>
            {move || (line.form.get() == "bare_metal").then(|| view! {
                <div class="field">
                    <label for=p("model")>{tr("line.model")}</label>
                    <input id=p("model") prop:value=move || line.model.get()
                        on:input=move |ev| line.model.set(event_target_value(&ev))/>
                </div>
            })}
            <div class="field">
                <label for=p("arch")>{tr("line.arch")}</label>
                <select id=p("arch") on:change=move |ev| line.arch.set(event_target_value(&ev))>
                    // A 信创 system gets no x86_64 servers (the server refuses
                    // them too: XINCHUANG_ARCH_REQUIRED).
                    {move || (!xinchuang.get()).then(|| view! {
                        <option value="x86_64" selected=move || line.arch.get() == "x86_64">"x86_64"</option>
                    })}
                    <option value="arm64" selected=move || line.arch.get() == "arm64">{move || if lang.get() == crate::i18n::Lang::Zh { "arm64（鲲鹏/飞腾）" } else { "arm64 (Kunpeng/Phytium)" }}</option>
                    <option value="c86" selected=move || line.arch.get() == "c86">{move || if lang.get() == crate::i18n::Lang::Zh { "c86（海光）" } else { "c86 (Hygon)" }}</option>
                </select>
            </div>
            <NumberField id=p("vcpu") label="line.vcpu" value=line.vcpu range=vcpu_range/>
            <NumberField id=p("memory") label="line.memory" value=line.memory range=memory_range/>
            <NumberField id=p("system-disk") label="line.system_disk" value=line.system_disk range=Signal::stored(SYSTEM_DISK_GIB)/>
            <NumberField id=p("data-disk") label="line.data_disk" value=line.data_disk range=Signal::stored(DATA_DISK_GIB)/>
            <TextField id=p("os") label="line.os" value=line.os/>
            <TextField id=p("purpose") label="line.purpose" value=line.purpose/>
            <NumberField id=p("backup") label="line.backup" value=line.backup range=Signal::stored(BACKUP_GIB)/>
            <NumberField id=p("quantity") label="line.quantity" value=line.quantity range=Signal::stored(QUANTITY)/>
            <div class="field">
                <label for=p("anti-affinity")>{tr("line.anti_affinity")}</label>
                <select id=p("anti-affinity") on:change=move |ev| line.anti_affinity.set(event_target_value(&ev))>
                    <option value="hard" selected=move || line.anti_affinity.get() == "hard">{tr("anti_affinity.hard")}</option>
                    <option value="soft" selected=move || line.anti_affinity.get() == "soft">{tr("anti_affinity.soft")}</option>
                </select>
            </div>
            <p class="estimate" id=p("estimate") aria-live="polite">{estimate}</p>
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
    // The tenant's 信创 systems (from the system list): their lines default
    // to arm64 and are not offered x86_64.
    let xinchuang_systems = RwSignal::new(Vec::<String>::new());
    let xinchuang = Signal::derive(move || xinchuang_systems.with(|v| v.contains(&system.get())));
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
    let ips = RwSignal::new(Vec::<IpForm>::new());
    let bastions = RwSignal::new(Vec::<BastionForm>::new());
    let services = Services::new();
    // The servers the security part may name: this form's line names.
    let servers = Signal::derive(move || {
        let mut names: Vec<String> = lines
            .get()
            .iter()
            .map(|l| l.name.get().trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        names.dedup();
        names
    });
    let names = services.names(servers, kind == "change");
    // A public IP maps to a server group or to a load balancer.
    let ip_targets = Signal::derive(move || {
        let mut t = servers.get();
        t.extend(names.lbs.get());
        t
    });
    let catalogs = Resource::new(|| (), |_| api::get::<Value>("/api/v1/catalogs"));
    let catalog_id = RwSignal::new(DEFAULT_CATALOG.to_owned());
    let catalog = RwSignal::new(None::<Value>);
    let catalog_doc = Resource::new(
        move || catalog_id.get(),
        |id| api::get::<Value>(&format!("/api/v1/catalogs/{id}")),
    );
    Effect::new(move |_| {
        if let Some(doc) = catalog_doc.get() {
            catalog.set(doc.ok());
        }
    });
    let total = move || {
        let ls = lines.get();
        let mut sum = 0u64;
        for l in &ls {
            let pricing = catalog.with(|c| {
                c.as_ref()
                    .map(|c| Pricing::from_catalog(c, &l.arch.get()))
                    .unwrap_or_default()
            });
            sum += l.monthly_fen(&pricing)?;
        }
        Some(sum)
    };
    let problem = RwSignal::new(None::<ApiError>);
    let invalid = RwSignal::new(false);
    let tried = RwSignal::new(false);
    provide_context(Tried(tried));
    let busy = RwSignal::new(false);
    let remove = Callback::new(move |key: usize| {
        lines.update(|ls| {
            if ls.len() > 1 {
                ls.retain(|l| l.key != key);
            }
        });
    });
    // A line of a 信创 system asks for arm64 where it said x86_64 (the
    // default of a new line, or what was chosen before the system changed).
    Effect::new(move |_| {
        if xinchuang.get() {
            for l in lines.get() {
                if l.arch.get_untracked() == "x86_64" {
                    l.arch.set("arm64".to_owned());
                }
            }
        }
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
        let names_now = servers.get_untracked();
        let targets = ip_targets.get_untracked();
        let ip_rows = ips.get_untracked();
        let bastion_rows = bastions.get_untracked();
        let ok = !sys.is_empty()
            && ls.iter().all(|l| {
                let pricing = catalog.with_untracked(|c| {
                    c.as_ref()
                        .map(|c| Pricing::from_catalog(c, &l.arch.get_untracked()))
                        .unwrap_or_default()
                });
                l.valid(&pricing)
            })
            && ip_rows.iter().all(|r| r.valid(&targets))
            && bastion_rows.iter().all(|r| r.valid(&names_now))
            && services.valid(&names);
        invalid.set(!ok);
        tried.set(true);
        let (true, Some(bodies)) = (ok, bodies) else {
            return;
        };
        busy.set(true);
        problem.set(None);
        let mut body = json!({
            "kind": kind, "system": sys, "lines": bodies,
            "public_ips": ip_rows.iter().map(IpForm::json).collect::<Vec<_>>(),
            "bastion_accounts": bastion_rows.iter().map(|b| b.json(&names_now)).collect::<Vec<_>>(),
        });
        untrack(|| services.fill(&mut body));
        let create = api::post::<Created>("/api/v1/orders", &body);
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
                            xinchuang_systems.set(
                                items.iter().filter(|s| s.xinchuang).map(|s| s.number.clone()).collect(),
                            );
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
                    {move || xinchuang.get().then(|| view! {
                        <small class="hint" id="xinchuang-hint">{tr("new.xinchuang_hint")}</small>
                    })}
                </div>
                <div class="field">
                    <label for="catalog">{tr("new.catalog")}</label>
                    <Suspense fallback=move || view! { <span>{tr("common.loading")}</span> }>
                        {move || Suspend::new(async move {
                            let items = catalogs.await.ok().and_then(|c| c["items"].as_array().cloned()).unwrap_or_default();
                            view! {
                                <select id="catalog" on:change=move |ev| catalog_id.set(event_target_value(&ev))>
                                    {items.into_iter().map(|c| {
                                        let id = c["id"].as_str().unwrap_or_default().to_owned();
                                        let label = format!("{} {}", id, c["name"].as_str().unwrap_or_default());
                                        let this = id.clone();
                                        view! { <option value=id selected=move || catalog_id.get() == this>{label}</option> }
                                    }).collect_view()}
                                </select>
                            }
                        })}
                    </Suspense>
                    <small class="hint">{tr("new.catalog_hint")}</small>
                </div>
                <h2>{tr("new.lines")}</h2>
                <For
                    each=indexed
                    key=|(i, l)| (*i, l.key)
                    children=move |(i, l)| view! { <LineEditor line=l index=i on_remove=remove catalog=catalog xinchuang=xinchuang/> }
                />
                <button type="button" id="add-line" on:click=add>{tr("new.add_line")}</button>
                <p class="estimate total" id="estimate-total" aria-live="polite">
                    {move || total().map(|fen| format!(
                        "{} {}",
                        crate::i18n::t(lang.get(), "new.estimate_total"),
                        format::yuan(i64::try_from(fen).unwrap_or(i64::MAX))
                    ))}
                </p>
                <ServicesSection services=services names=names/>
                <PublicIps rows=ips servers=ip_targets/>
                <BastionAccounts rows=bastions servers=servers/>
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
