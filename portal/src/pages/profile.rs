//! The signed-in user's account, roles and permissions.

use leptos::prelude::*;

use crate::api;
use crate::app::{Frame, tr, use_lang};
use crate::i18n::code_name;
use crate::pages::dashboard::Me;

#[component]
pub fn Profile() -> impl IntoView {
    let lang = use_lang();
    let me = Resource::new(|| (), |_| api::get::<Me>("/api/v1/auth/me"));
    view! {
        <Frame>
            <h1>{tr("profile.title")}</h1>
            <Suspense fallback=crate::app::Loading>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(me) => {
                            let roles: Vec<String> = me
                                .roles
                                .iter()
                                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                                .collect();
                            view! {
                                <dl class="card">
                                    <dt>{tr("profile.actor")}</dt>
                                    <dd id="actor">{me.actor.clone()}</dd>
                                    <dt>{tr("profile.roles")}</dt>
                                    <dd>{move || roles.iter().map(|r| code_name(lang.get(), r)).collect::<Vec<_>>().join("、")}</dd>
                                    <dt>{tr("profile.permissions")}</dt>
                                    <dd class="mono">{me.permissions.join(", ")}</dd>
                                </dl>
                            }.into_any()
                        }
                        Err(e) => crate::app::failure(e),
                    }
                })}
            </Suspense>
        </Frame>
    }
}
