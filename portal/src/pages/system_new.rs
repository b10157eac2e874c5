//! A new information system (信息系统), the first part of the application
//! (seed 004 attachment 1 part 1): name, type, 等保 level, run time, network
//! nature, contact, description, and whether the using unit requires 信创
//! (domestic chips only; the server then refuses x86_64 servers for it).
//! Fields are checked as typed with the same domain rules the API applies
//! (`yunshu-domain`, compiled to wasm), so the browser and the server never
//! disagree on what a valid phone number is.

use leptos::prelude::*;
use serde_json::json;

use crate::api::{self, ApiError};
use crate::app::{Frame, go, tr, use_lang};
use crate::i18n::{Lang, code_name};

#[derive(Debug, Clone, serde::Deserialize)]
struct Created {
    number: String,
}

fn name_error(v: &str) -> Option<&'static str> {
    if v.trim().is_empty() {
        Some("err.required")
    } else if yunshu_domain::Name::new(v.trim()).is_err() {
        Some("err.invalid")
    } else {
        None
    }
}

fn phone_error(v: &str) -> Option<&'static str> {
    if v.trim().is_empty() {
        Some("err.required")
    } else if yunshu_domain::system::Phone::new(v.trim()).is_err() {
        Some("err.phone")
    } else {
        None
    }
}

/// A select of API codes shown by their names in the page's language.
#[component]
fn CodeSelect(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    codes: &'static [&'static str],
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <div class="field">
            <label for=id>{tr(label)}</label>
            <select id=id on:change=move |ev| value.set(event_target_value(&ev))>
                {codes.iter().map(|c| {
                    let c = *c;
                    view! { <option value=c selected=move || value.get() == c>{move || code_name(lang.get(), c)}</option> }
                }).collect_view()}
            </select>
        </div>
    }
}

fn checked_input(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    check: fn(&str) -> Option<&'static str>,
    lang: RwSignal<Lang>,
) -> impl IntoView {
    let error = move || check(&value.get());
    let err_id = format!("{id}-error");
    view! {
        <div class="field">
            <label for=id>{tr(label)}</label>
            <input id=id
                aria-invalid=move || error().is_some().to_string()
                aria-describedby=err_id.clone()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))/>
            <span id=err_id class="field-error" role="alert">{move || error().map(|k| crate::i18n::t(lang.get(), k))}</span>
        </div>
    }
}

#[component]
pub fn SystemNew() -> impl IntoView {
    let lang = use_lang();
    let name = RwSignal::new(String::new());
    let system_type = RwSignal::new("business_production".to_owned());
    let level = RwSignal::new("level2".to_owned());
    let schedule = RwSignal::new("7x24".to_owned());
    let nature = RwSignal::new("gov_extranet".to_owned());
    let contact = RwSignal::new(String::new());
    let phone = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let xinchuang = RwSignal::new(false);
    let invalid = RwSignal::new(false);
    let problem = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ok = name_error(&name.get_untracked()).is_none()
            && name_error(&contact.get_untracked()).is_none()
            && phone_error(&phone.get_untracked()).is_none()
            && !description.get_untracked().trim().is_empty();
        invalid.set(!ok);
        if !ok {
            return;
        }
        busy.set(true);
        problem.set(None);
        let call = api::post::<Created>(
            "/api/v1/systems",
            &json!({
                "name": name.get_untracked().trim(),
                "system_type": system_type.get_untracked(),
                "security_level": level.get_untracked(),
                "run_schedule": schedule.get_untracked(),
                "network_nature": nature.get_untracked(),
                "contact": {"name": contact.get_untracked().trim(), "phone": phone.get_untracked().trim()},
                "description": description.get_untracked().trim(),
                "xinchuang": xinchuang.get_untracked(),
            }),
        );
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(s) => go(&format!("/orders/new?system={}", s.number)),
                Err(e) => {
                    busy.set(false);
                    problem.set(Some(e));
                }
            }
        });
    };
    view! {
        <Frame>
            <h1>{tr("sys.title")}</h1>
            <form class="wide card" on:submit=submit novalidate=true>
                {checked_input("sys-name", "col.name", name, name_error, lang)}
                <CodeSelect id="sys-type" label="col.type" value=system_type
                    codes=&["business_production", "internal_office", "public_service", "portal", "mobile_app", "video", "other"]/>
                <CodeSelect id="sys-level" label="col.level" value=level codes=&["unrated", "level1", "level2", "level3"]/>
                <CodeSelect id="sys-schedule" label="sys.schedule" value=schedule codes=&["7x24", "5x8"]/>
                <CodeSelect id="sys-nature" label="sys.nature" value=nature
                    codes=&["gov_extranet", "internet", "gov_extranet_and_internet", "dedicated_line"]/>
                {checked_input("sys-contact", "sys.contact", contact, name_error, lang)}
                {checked_input("sys-phone", "sys.phone", phone, phone_error, lang)}
                <div class="field">
                    <label for="sys-description">{tr("sys.description")}</label>
                    <textarea id="sys-description"
                        prop:value=move || description.get()
                        on:input=move |ev| description.set(event_target_value(&ev))></textarea>
                </div>
                <div class="field check">
                    <label for="sys-xinchuang">
                        <input type="checkbox" id="sys-xinchuang"
                            prop:checked=move || xinchuang.get()
                            on:change=move |ev| xinchuang.set(event_target_checked(&ev))/>
                        " " {tr("sys.xinchuang")}
                    </label>
                </div>
                <p class="form-error" role="alert">
                    {move || invalid.get().then(tr("new.fix"))}
                    {move || problem.get().map(|e| e.text(lang.get()).to_owned())}
                </p>
                <button type="submit" id="submit-system" disabled=move || busy.get()>{tr("sys.submit")}</button>
            </form>
        </Frame>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_rules_check_the_fields() {
        assert_eq!(phone_error("13800138000"), None);
        assert_eq!(phone_error("010-12345678"), None);
        assert_eq!(phone_error("12345"), Some("err.phone"));
        assert_eq!(phone_error(" "), Some("err.required"));
        assert_eq!(name_error("不动产登记系统"), None);
        assert_eq!(name_error(""), Some("err.required"));
    }
}
