//! What an order asks for besides servers, as its reviewers read it: the
//! network, security groups and their rules, load balancers, WAF policies,
//! volumes and backup policies, one line each (shown only when asked for).

use leptos::prelude::*;
use serde_json::Value;

use crate::app::{tr, use_lang};
use crate::i18n::{Lang, t};

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn removed(item: &Value, lang: Lang) -> String {
    if item["remove"].as_bool() == Some(true) {
        format!(" ({})", t(lang, "svc.removed"))
    } else {
        String::new()
    }
}

fn rule(r: &Value) -> String {
    let ports = match (&r["ports"]["from"], &r["ports"]["to"]) {
        (Value::Number(a), Value::Number(b)) if a == b => format!(":{a}"),
        (Value::Number(a), Value::Number(b)) => format!(":{a}-{b}"),
        _ => String::new(),
    };
    let remote = r["remote"]["cidr"]
        .as_str()
        .or_else(|| r["remote"]["group"].as_str())
        .unwrap_or("?");
    format!("{}{ports} ← {remote}", s(&r["protocol"]).to_uppercase())
}

/// One `<li>` per item of `key` in `request`, described by `line`.
fn items(request: &Value, key: &str, lang: Lang, line: impl Fn(&Value) -> String) -> Vec<String> {
    request[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| format!("{}{}", line(i), removed(i, lang)))
                .collect()
        })
        .unwrap_or_default()
}

/// How one item of a kind is described.
type Describe = Box<dyn Fn(&Value) -> String>;

#[component]
pub fn RequestedServices(request: Value) -> impl IntoView {
    let lang = use_lang();
    move || {
        let l = lang.get();
        let mut rows: Vec<(&'static str, String)> = Vec::new();
        if let Some(n) = request["network"].as_object() {
            let subnets: Vec<String> = n
                .get("subnets")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            format!(
                                "{} {}",
                                crate::i18n::code_name(l, s(&x["network_area"])),
                                s(&x["cidr"])
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let vpc = n.get("vpc_cidr").map(s).unwrap_or_default();
            rows.push(("svc.network", format!("{vpc} {}", subnets.join(", "))));
        }
        let sections: [(&'static str, &str, Describe); 6] = [
            (
                "svc.security_groups",
                "security_groups",
                Box::new(|g: &Value| {
                    let rules: Vec<String> = g["rules"]
                        .as_array()
                        .map(|a| a.iter().map(rule).collect())
                        .unwrap_or_default();
                    let servers: Vec<&str> = g["servers"]
                        .as_array()
                        .map(|a| a.iter().map(s).collect())
                        .unwrap_or_default();
                    format!(
                        "{} [{}] {}",
                        s(&g["name"]),
                        servers.join(", "),
                        rules.join("; ")
                    )
                }),
            ),
            (
                "svc.load_balancers",
                "load_balancers",
                Box::new(move |b: &Value| {
                    let listeners: Vec<String> = b["listeners"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| {
                                    format!(
                                        "{} :{}→{} {}",
                                        s(&x["protocol"]).to_uppercase(),
                                        x["port"],
                                        x["backend_port"],
                                        t(
                                            l,
                                            &format!(
                                                "algo.{}",
                                                x["algorithm"]
                                                    .as_str()
                                                    .unwrap_or("weighted_round_robin")
                                            )
                                        )
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!(
                        "{} → {} · {}",
                        s(&b["name"]),
                        s(&b["members"]),
                        listeners.join(", ")
                    )
                }),
            ),
            (
                "svc.waf",
                "waf_policies",
                Box::new(move |w: &Value| {
                    let sets: Vec<&str> = w["rule_sets"]
                        .as_array()
                        .map(|a| a.iter().map(|x| t(l, &format!("waf.{}", s(x)))).collect())
                        .unwrap_or_default();
                    let cc = w["cc_limit"]
                        .as_object()
                        .map(|c| format!(" · CC {}/{}s", c["requests"], c["period_seconds"]))
                        .unwrap_or_default();
                    format!(
                        "{} → {} · {} · {}{cc}",
                        s(&w["name"]),
                        s(&w["load_balancer"]),
                        t(l, &format!("waf.{}", s(&w["mode"]))),
                        sets.join(", ")
                    )
                }),
            ),
            (
                "svc.volumes",
                "volumes",
                Box::new(move |v: &Value| {
                    format!(
                        "{} → {} · {} GB {}",
                        s(&v["name"]),
                        s(&v["server_name"]),
                        v["size_gib"],
                        t(l, &format!("tier.{}", s(&v["tier"])))
                    )
                }),
            ),
            (
                "svc.backups",
                "backup_policies",
                Box::new(move |b: &Value| {
                    let w = &b["window"];
                    let when = match s(&w["every"]) {
                        "weekly" => {
                            format!("{} {} {}:00", t(l, "every.weekly"), w["weekday"], w["hour"])
                        }
                        _ => format!("{} {}:00", t(l, "every.daily"), w["hour"]),
                    };
                    format!(
                        "{} → {} · {} · {when} · {} {} · {} GB",
                        s(&b["name"]),
                        s(&b["target"]),
                        t(l, &format!("backup.{}", s(&b["backup_type"]))),
                        t(l, "svc.retention"),
                        b["retention_days"],
                        b["capacity_gib"]
                    )
                }),
            ),
            (
                "svc.snapshots",
                "snapshots",
                Box::new(|x: &Value| format!("{} ← {}", s(&x["name"]), s(&x["source"]))),
            ),
        ];
        for (label, key, line) in sections {
            for text in items(&request, key, l, line) {
                rows.push((label, text));
            }
        }
        (!rows.is_empty()).then(|| {
            view! {
                <section aria-labelledby="services-h">
                    <h2 id="services-h">{tr("order.services")}</h2>
                    <table id="order-services">
                        <tbody>
                            {rows.into_iter().map(|(label, text)| view! {
                                <tr><th scope="row">{t(l, label)}</th><td>{text}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            }
        })
    }
}
