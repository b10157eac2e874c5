//! The security part of an application (seed 000 attachment 3, 安全防护需求):
//! public IPs with the server group or load balancer they map to, their ports
//! and bandwidth, and bastion-host
//! accounts (堡垒机账号) with the servers each may reach. Servers are picked
//! from the form's own lines, so a request never names a server it does not
//! ask for.

use leptos::prelude::*;
use serde_json::{Value, json};

use crate::app::{tr, use_lang};

/// The ports of `text` ("80, 443" or "80 443"), if every one is 1–65535 and
/// there is at least one.
pub fn parse_ports(text: &str) -> Option<Vec<u16>> {
    let ports: Option<Vec<u16>> = text
        .split([',', '，', ' ', '、'])
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<u16>().ok().filter(|p| *p > 0))
        .collect();
    ports.filter(|p| !p.is_empty())
}

/// One public IP row.
#[derive(Clone, Copy)]
pub struct IpForm {
    pub key: usize,
    pub purpose: RwSignal<String>,
    pub server: RwSignal<String>,
    pub ports: RwSignal<String>,
    /// Internet bandwidth of the address, Mbps (billed; the domain's default
    /// is 5).
    pub bandwidth: RwSignal<String>,
}

impl IpForm {
    pub fn new(key: usize) -> Self {
        IpForm {
            key,
            purpose: RwSignal::new(String::new()),
            server: RwSignal::new(String::new()),
            ports: RwSignal::new("443".to_owned()),
            bandwidth: RwSignal::new(
                yunshu_domain::order_line::PublicIpRequest::DEFAULT_MBPS.to_string(),
            ),
        }
    }

    /// The label key of the first problem, if any, given the lines' names.
    fn problem(&self, servers: &[String]) -> Option<&'static str> {
        if self.purpose.get().trim().is_empty() {
            Some("err.required")
        } else if !servers.contains(&self.server.get()) {
            Some("extras.pick_server")
        } else if parse_ports(&self.ports.get()).is_none() {
            Some("extras.bad_ports")
        } else if !matches!(self.bandwidth.get().trim().parse::<u32>(), Ok(n) if n > 0) {
            Some("svc.bad_number")
        } else {
            None
        }
    }

    pub fn valid(&self, servers: &[String]) -> bool {
        self.problem(servers).is_none()
    }

    pub fn json(&self) -> Value {
        json!({
            "purpose": self.purpose.get_untracked().trim(),
            "server_name": self.server.get_untracked(),
            "ports": parse_ports(&self.ports.get_untracked()).unwrap_or_default(),
            "bandwidth_mbps": self.bandwidth.get_untracked().trim().parse::<u32>().ok(),
        })
    }
}

/// One bastion account row.
#[derive(Clone, Copy)]
pub struct BastionForm {
    pub key: usize,
    pub holder: RwSignal<String>,
    pub account: RwSignal<String>,
    pub department: RwSignal<String>,
    pub servers: RwSignal<Vec<String>>,
}

impl BastionForm {
    pub fn new(key: usize) -> Self {
        BastionForm {
            key,
            holder: RwSignal::new(String::new()),
            account: RwSignal::new(String::new()),
            department: RwSignal::new(String::new()),
            servers: RwSignal::new(Vec::new()),
        }
    }

    fn problem(&self, servers: &[String]) -> Option<&'static str> {
        if [self.holder, self.account, self.department]
            .iter()
            .any(|s| s.get().trim().is_empty())
        {
            Some("err.required")
        } else if self.servers.get().iter().all(|s| !servers.contains(s)) {
            Some("extras.pick_server")
        } else {
            None
        }
    }

    pub fn valid(&self, servers: &[String]) -> bool {
        self.problem(servers).is_none()
    }

    /// Only servers still on the form are sent (a line may have been renamed).
    pub fn json(&self, servers: &[String]) -> Value {
        let picked: Vec<String> = self
            .servers
            .get_untracked()
            .into_iter()
            .filter(|s| servers.contains(s))
            .collect();
        json!({
            "holder": self.holder.get_untracked().trim(),
            "account": self.account.get_untracked().trim(),
            "department": self.department.get_untracked().trim(),
            "servers": picked,
        })
    }
}

fn text_input(id: String, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <input id=id prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
        </div>
    }
}

/// A row's first problem, next to it, and its remove button.
#[component]
fn RowEnd(
    id: String,
    problem: Signal<Option<&'static str>>,
    on_remove: Callback<()>,
) -> impl IntoView {
    let lang = use_lang();
    let tried = super::order_new::Tried::get();
    // A missing field waits for a save attempt; a wrong value shows at once.
    let shown = move || {
        problem
            .get()
            .filter(|k| *k != "err.required" || tried.is_some_and(|t| t.get()))
    };
    view! {
        <span class="field-error" role="alert" id=id>
            {move || shown().map(|k| crate::i18n::t(lang.get(), k))}
        </span>
        <button type="button" class="remove" on:click=move |_| on_remove.run(())>
            {tr("new.remove_line")}
        </button>
    }
}

/// The public IP rows, with add and remove.
#[component]
pub fn PublicIps(rows: RwSignal<Vec<IpForm>>, servers: Signal<Vec<String>>) -> impl IntoView {
    let next = RwSignal::new(0usize);
    let add = move |_| {
        let key = next.get_untracked();
        next.set(key + 1);
        let row = IpForm::new(key);
        if let Some(first) = servers.get_untracked().first() {
            row.server.set(first.clone());
        }
        rows.update(|r| r.push(row));
    };
    let indexed = move || rows.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <section aria-labelledby="ips-h">
            <h2 id="ips-h">{tr("extras.public_ips")}</h2>
            <For each=indexed key=|(i, r)| (*i, r.key) children=move |(i, row)| {
                let p = move |f: &str| format!("ip{i}-{f}");
                view! {
                    <fieldset class="line card">
                        <legend>{format!("IP #{}", i + 1)}</legend>
                        {text_input(p("purpose"), "extras.purpose", row.purpose)}
                        <div class="field">
                            <label for=p("server")>{tr("extras.server")}</label>
                            <select id=p("server") on:change=move |ev| row.server.set(event_target_value(&ev))>
                                {move || servers.get().into_iter().map(|s| {
                                    let (v, value) = (s.clone(), s.clone());
                                    view! { <option value=value selected=move || row.server.get() == v>{s}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <div class="field">
                            <label for=p("ports")>{tr("extras.ports")}</label>
                            <input id=p("ports") inputmode="numeric" placeholder="80, 443"
                                prop:value=move || row.ports.get() on:input=move |ev| row.ports.set(event_target_value(&ev))/>
                        </div>
                        {text_input(p("bandwidth"), "extras.bandwidth", row.bandwidth)}
                        <RowEnd id=p("error") problem=Signal::derive(move || row.problem(&servers.get()))
                            on_remove=Callback::new(move |()| rows.update(|r| r.retain(|x| x.key != row.key)))/>
                    </fieldset>
                }
            }/>
            <button type="button" id="add-ip" on:click=add>{tr("extras.add_ip")}</button>
        </section>
    }
}

/// The bastion account rows, with add and remove.
#[component]
pub fn BastionAccounts(
    rows: RwSignal<Vec<BastionForm>>,
    servers: Signal<Vec<String>>,
) -> impl IntoView {
    let next = RwSignal::new(0usize);
    let add = move |_| {
        let key = next.get_untracked();
        next.set(key + 1);
        rows.update(|r| r.push(BastionForm::new(key)));
    };
    let indexed = move || rows.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <section aria-labelledby="bastion-h">
            <h2 id="bastion-h">{tr("extras.bastion")}</h2>
            <For each=indexed key=|(i, r)| (*i, r.key) children=move |(i, row)| {
                let p = move |f: &str| format!("bastion{i}-{f}");
                view! {
                    <fieldset class="line card">
                        <legend>{format!("#{}", i + 1)}</legend>
                        {text_input(p("holder"), "extras.holder", row.holder)}
                        {text_input(p("account"), "extras.account", row.account)}
                        {text_input(p("department"), "extras.department", row.department)}
                        <fieldset class="checks">
                            <legend>{tr("extras.servers")}</legend>
                            {move || servers.get().into_iter().enumerate().map(|(n, s)| {
                                let id = format!("bastion{i}-server{n}");
                                let label_for = id.clone();
                                let name = s.clone();
                                let name2 = s.clone();
                                view! {
                                    <label for=label_for>
                                        <input type="checkbox" id=id
                                            prop:checked=move || row.servers.get().contains(&name)
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                let n = name2.clone();
                                                row.servers.update(|v| {
                                                    v.retain(|x| *x != n);
                                                    if on { v.push(n); }
                                                });
                                            }/>
                                        " " {s}
                                    </label>
                                }
                            }).collect_view()}
                        </fieldset>
                        <RowEnd id=p("error") problem=Signal::derive(move || row.problem(&servers.get()))
                            on_remove=Callback::new(move |()| rows.update(|r| r.retain(|x| x.key != row.key)))/>
                    </fieldset>
                }
            }/>
            <button type="button" id="add-bastion" on:click=add>{tr("extras.add_bastion")}</button>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ports;

    #[test]
    fn ports_are_a_list_of_1_to_65535() {
        assert_eq!(parse_ports("80, 443"), Some(vec![80, 443]));
        assert_eq!(parse_ports("80，443、8080"), Some(vec![80, 443, 8080]));
        assert_eq!(parse_ports("0"), None);
        assert_eq!(parse_ports("65536"), None);
        assert_eq!(parse_ports("http"), None);
        assert_eq!(parse_ports(" "), None);
    }
}
