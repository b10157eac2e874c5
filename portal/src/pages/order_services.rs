//! The network and service part of an application (SPEC §3; seeds 000 附件3,
//! 003 §3.1–3.2): the system's private network, security groups with their
//! inbound rules, load balancers in front of a server group, WAF policies in
//! front of a load balancer, data volumes, backup policies and snapshots.
//!
//! Every row is checked as typed with the domain's own rules: the row is
//! built as the API will receive it, read into the domain type
//! (`yunshu_domain::order_services`) and that type's `validate()` speaks —
//! in 中文 or English — so the portal never holds a rule the server lacks.
//! Names a row refers to (a server group, a load balancer, a volume) must be
//! on this form for a new application; a change request may also name what
//! the system already has, which only the server can check, and marks an
//! item it names for removal.

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use yunshu_domain::ErrorCode;
use yunshu_domain::order_services::{
    BackupPolicyRequest, LoadBalancerRequest, NetworkRequest, SecurityGroupRequest, ServiceError,
    SnapshotRequest, VolumeRequest, WafPolicyRequest,
};
use yunshu_domain::resource::Cidr;

use crate::app::{tr, use_lang};
use crate::i18n::Lang;

/// What is wrong with a row: a label of the portal, or the domain's own words.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    Key(&'static str),
    Domain { zh: String, en: String },
}

impl Problem {
    fn of<E: ErrorCode>(e: &E) -> Problem {
        Problem::Domain {
            zh: e.message_zh(),
            en: e.to_string(),
        }
    }

    pub fn text(&self, lang: Lang) -> String {
        match (self, lang) {
            (Problem::Key(k), l) => crate::i18n::t(l, k).to_owned(),
            (Problem::Domain { zh, .. }, Lang::Zh) => zh.clone(),
            (Problem::Domain { en, .. }, Lang::En) => en.clone(),
        }
    }

    /// "Required" waits for a save attempt; everything else shows at once.
    fn is_missing(&self) -> bool {
        *self == Problem::Key("err.required")
    }
}

/// The names rows may refer to: this form's server groups, load balancers,
/// volumes and security groups; `change`: a change request (names the system
/// already has are fine too).
#[derive(Clone, Copy)]
pub struct Names {
    pub servers: Signal<Vec<String>>,
    pub lbs: Signal<Vec<String>>,
    pub volumes: Signal<Vec<String>>,
    pub groups: Signal<Vec<String>>,
    pub change: bool,
}

impl Names {
    /// Names that refuse nothing (for building a row already checked).
    fn permissive() -> Names {
        Names {
            servers: Signal::stored(Vec::new()),
            lbs: Signal::stored(Vec::new()),
            volumes: Signal::stored(Vec::new()),
            groups: Signal::stored(Vec::new()),
            change: true,
        }
    }
}

/// The request's value of `row` read as the domain type, then validated.
fn domain<T: DeserializeOwned>(
    row: Value,
    validate: impl Fn(&T) -> Result<(), ServiceError>,
) -> Option<Problem> {
    match serde_json::from_value::<T>(row) {
        Ok(t) => validate(&t).err().map(|e| Problem::of(&e)),
        Err(_) => Some(Problem::Key("svc.invalid")),
    }
}

fn name_problem(value: &str) -> Option<Problem> {
    if value.trim().is_empty() {
        return Some(Problem::Key("err.required"));
    }
    yunshu_domain::Name::new(value.trim())
        .err()
        .map(|e| Problem::of(&e))
}

/// A reference to another item by name: present, and on this form unless it
/// is a change request.
fn reference(value: &str, among: &[String], change: bool) -> Option<Problem> {
    let v = value.trim();
    if v.is_empty() {
        Some(Problem::Key("err.required"))
    } else if !change && !among.iter().any(|n| n == v) {
        Some(Problem::Key("svc.unknown_ref"))
    } else {
        None
    }
}

/// A positive whole number, or a problem.
fn positive(value: &str) -> Result<u32, Problem> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ if value.trim().is_empty() => Err(Problem::Key("err.required")),
        _ => Err(Problem::Key("svc.bad_number")),
    }
}

/// `80` or `8000-8100`; empty = every port.
fn port_range(text: &str) -> Result<Option<Value>, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let (a, b) = t.split_once(['-', '–', '~']).unwrap_or((t, t));
    let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
    match (port(a), port(b)) {
        (Some(from), Some(to)) => Ok(Some(json!({"from": from, "to": to}))),
        _ => Err(Problem::Key("svc.bad_ports")),
    }
}

/// Comma-separated CIDRs.
fn cidr_list(text: &str) -> Result<Vec<String>, Problem> {
    text.split([',', '，', ' ', '、', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Cidr::parse(s)
                .map(|c| c.to_string())
                .map_err(|_| Problem::Key("svc.bad_cidr"))
        })
        .collect()
}

fn input(id: String, label: &'static str, value: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <input id=id prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
        </div>
    }
}

/// A select over fixed codes, each labelled by an i18n key.
fn choice(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <select id=id on:change=move |ev| value.set(event_target_value(&ev))>
                {options.iter().map(|(code, key)| view! {
                    <option value=*code selected=move || value.get() == *code>{tr(key)}</option>
                }).collect_view()}
            </select>
        </div>
    }
}

/// A text input suggesting `names` (a datalist): a change request may name
/// what the system already has.
fn name_ref(
    id: String,
    label: &'static str,
    value: RwSignal<String>,
    names: Signal<Vec<String>>,
) -> impl IntoView {
    let list = format!("{id}-names");
    view! {
        <div class="field">
            <label for=id.clone()>{tr(label)}</label>
            <input id=id list=list.clone() prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
            <datalist id=list>
                {move || names.get().into_iter().map(|n| view! { <option value=n/> }).collect_view()}
            </datalist>
        </div>
    }
}

/// Check boxes over `names`, keeping the picked ones in `picked`.
fn picks(
    id: String,
    label: &'static str,
    picked: RwSignal<Vec<String>>,
    names: Signal<Vec<String>>,
) -> impl IntoView {
    view! {
        <fieldset class="checks">
            <legend>{tr(label)}</legend>
            {move || names.get().into_iter().enumerate().map(|(n, s)| {
                let box_id = format!("{id}{n}");
                let label_for = box_id.clone();
                let (on_name, change_name) = (s.clone(), s.clone());
                view! {
                    <label for=label_for>
                        <input type="checkbox" id=box_id
                            prop:checked=move || picked.get().contains(&on_name)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                let n = change_name.clone();
                                picked.update(|v| {
                                    v.retain(|x| *x != n);
                                    if on { v.push(n); }
                                });
                            }/>
                        " " {s}
                    </label>
                }
            }).collect_view()}
        </fieldset>
    }
}

/// What every row has: its key in the list, its name, and (in a change
/// request) whether it is to be removed.
#[derive(Clone, Copy)]
pub struct RowBase {
    key: usize,
    name: RwSignal<String>,
    remove: RwSignal<bool>,
}

impl RowBase {
    fn new(key: usize) -> Self {
        RowBase {
            key,
            name: RwSignal::new(String::new()),
            remove: RwSignal::new(false),
        }
    }
}

/// One row kind of this part of the form.
pub trait Row: Copy + Send + Sync + 'static {
    /// Prefix of the row's element ids (`sg0-name` …).
    const PREFIX: &'static str;
    fn new(key: usize) -> Self;
    fn base(&self) -> RowBase;
    /// The row as the API takes it, or what keeps it from being one (tracked
    /// reads: callers outside the view wrap them in `untrack`).
    fn value(&self, names: &Names) -> Result<Value, Problem>;
    /// Whether the names it refers to are on the form.
    fn refers(&self, names: &Names) -> Option<Problem>;
    /// The domain type's verdict on the row.
    fn check(row: Value) -> Option<Problem>;
    fn fields(&self, index: usize, names: Names) -> AnyView;

    fn key(&self) -> usize {
        self.base().key
    }

    /// The row as sent (a row with a problem is never sent: the form refuses).
    fn json(&self) -> Value {
        self.value(&Names::permissive()).unwrap_or(Value::Null)
    }

    /// The first thing wrong with it, re-checked as typed.
    fn problem(&self, names: &Names) -> Option<Problem> {
        name_problem(&self.base().name.get())
            .or_else(|| self.refers(names))
            .or_else(|| match self.value(names) {
                Ok(v) => Self::check(v),
                Err(p) => Some(p),
            })
    }
}

/// The rows of one kind, each with its fields, its first problem next to it
/// and a remove button; and an add button.
fn rows_of<R: Row>(
    rows: RwSignal<Vec<R>>,
    names: Names,
    title: &'static str,
    add_label: &'static str,
) -> impl IntoView {
    let lang = use_lang();
    let tried = super::order_new::Tried::get();
    let next = RwSignal::new(0usize);
    let add = move |_| {
        let key = next.get_untracked();
        next.set(key + 1);
        rows.update(|r| r.push(R::new(key)));
    };
    let indexed = move || rows.get().into_iter().enumerate().collect::<Vec<_>>();
    let heading = format!("{}-h", R::PREFIX);
    let labelled_by = heading.clone();
    view! {
        <section aria-labelledby=labelled_by>
            <h2 id=heading>{tr(title)}</h2>
            <For each=indexed key=|(i, r)| (*i, r.key()) children=move |(i, row)| {
                let shown = move || {
                    row.problem(&names)
                        .filter(|p| !p.is_missing() || tried.is_some_and(|t| t.get()))
                        .map(|p| p.text(lang.get()))
                };
                view! {
                    <fieldset class="line card">
                        <legend>{format!("#{}", i + 1)}</legend>
                        {row.fields(i, names)}
                        {names.change.then(|| {
                            let id = format!("{}{i}-remove", R::PREFIX);
                            let label_for = id.clone();
                            let removal = row.base().remove;
                            view! {
                                <label for=label_for class="removal">
                                    <input type="checkbox" id=id prop:checked=move || removal.get()
                                        on:change=move |ev| removal.set(event_target_checked(&ev))/>
                                    " " {tr("svc.remove_item")}
                                </label>
                            }
                        })}
                        <span class="field-error" role="alert" id=format!("{}{i}-error", R::PREFIX)>{shown}</span>
                        <button type="button" class="remove"
                            on:click=move |_| rows.update(|r| r.retain(|x| x.key() != row.key()))>
                            {tr("new.remove_line")}
                        </button>
                    </fieldset>
                }
            }/>
            <button type="button" id=format!("add-{}", R::PREFIX) on:click=add>{tr(add_label)}</button>
        </section>
    }
}

/// The system's network: the default (10.0.0.0/16, a /20 per network area)
/// unless the applicant gives addresses.
#[derive(Clone, Copy)]
pub struct NetworkForm {
    pub custom: RwSignal<bool>,
    pub vpc: RwSignal<String>,
    pub gov: RwSignal<String>,
    pub internet: RwSignal<String>,
}

impl NetworkForm {
    pub fn new() -> Self {
        NetworkForm {
            custom: RwSignal::new(false),
            vpc: RwSignal::new(NetworkRequest::DEFAULT_VPC.to_owned()),
            gov: RwSignal::new(String::new()),
            internet: RwSignal::new(String::new()),
        }
    }

    /// `None`: the default network (or, in a change, the one it has).
    pub fn json(&self) -> Option<Value> {
        if !self.custom.get() {
            return None;
        }
        let subnets: Vec<Value> = [("gov_extranet", self.gov), ("internet", self.internet)]
            .into_iter()
            .filter(|(_, c)| !c.get().trim().is_empty())
            .map(|(area, c)| json!({"network_area": area, "cidr": c.get().trim()}))
            .collect();
        Some(json!({"vpc_cidr": self.vpc.get().trim(), "subnets": subnets}))
    }

    pub fn problem(&self) -> Option<Problem> {
        if !self.custom.get() {
            return None;
        }
        for c in [self.vpc.get(), self.gov.get(), self.internet.get()] {
            if !c.trim().is_empty() && Cidr::parse(c.trim()).is_err() {
                return Some(Problem::Key("svc.bad_cidr"));
            }
        }
        domain::<NetworkRequest>(self.json()?, NetworkRequest::validate)
    }
}

/// The network fields: a box to give addresses, then the VPC and a subnet per
/// network area (empty = the next free /20).
#[component]
pub fn NetworkSection(network: NetworkForm) -> impl IntoView {
    let lang = use_lang();
    view! {
        <section aria-labelledby="network-h">
            <h2 id="network-h">{tr("svc.network")}</h2>
            <label for="net-custom">
                <input type="checkbox" id="net-custom" prop:checked=move || network.custom.get()
                    on:change=move |ev| network.custom.set(event_target_checked(&ev))/>
                " " {tr("svc.network_custom")}
            </label>
            {move || network.custom.get().then(|| view! {
                {input("net-vpc".to_owned(), "svc.vpc_cidr", network.vpc)}
                {input("net-gov".to_owned(), "svc.subnet_gov", network.gov)}
                {input("net-internet".to_owned(), "svc.subnet_internet", network.internet)}
                <small class="hint">{tr("svc.subnet_hint")}</small>
            })}
            <span class="field-error" role="alert" id="net-error">
                {move || network.problem().map(|p| p.text(lang.get()))}
            </span>
        </section>
    }
}

/// One inbound rule of a security group.
#[derive(Clone, Copy)]
pub struct RuleForm {
    key: usize,
    protocol: RwSignal<String>,
    ports: RwSignal<String>,
    remote: RwSignal<String>,
}

impl RuleForm {
    fn new(key: usize) -> Self {
        RuleForm {
            key,
            protocol: RwSignal::new("tcp".to_owned()),
            ports: RwSignal::new("443".to_owned()),
            remote: RwSignal::new("0.0.0.0/0".to_owned()),
        }
    }

    fn value(&self, groups: &[String], change: bool) -> Result<Value, Problem> {
        let ports = port_range(&self.ports.get())?;
        let remote = self.remote.get().trim().to_owned();
        let remote = if let Ok(c) = Cidr::parse(&remote) {
            json!({"cidr": c.to_string()})
        } else if change
            || remote == yunshu_domain::order_services::DEFAULT_SECURITY_GROUP
            || groups.contains(&remote)
        {
            json!({"group": remote})
        } else {
            return Err(Problem::Key("svc.bad_remote"));
        };
        Ok(json!({"protocol": self.protocol.get(), "ports": ports, "remote": remote}))
    }
}

const PROTOCOLS: &[(&str, &str)] = &[
    ("tcp", "proto.tcp"),
    ("udp", "proto.udp"),
    ("icmp", "proto.icmp"),
    ("any", "svc.any"),
];

/// A security group and its rules.
#[derive(Clone, Copy)]
pub struct GroupForm {
    base: RowBase,
    servers: RwSignal<Vec<String>>,
    rules: RwSignal<Vec<RuleForm>>,
    next_rule: RwSignal<usize>,
}

impl Row for GroupForm {
    fn value(&self, names: &Names) -> Result<Value, Problem> {
        let groups = names.groups.get();
        let rules = self
            .rules
            .get()
            .iter()
            .map(|r| r.value(&groups, names.change))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "name": self.base.name.get().trim(),
            "servers": self.servers.get(),
            "rules": rules,
            "remove": self.base.remove.get(),
        }))
    }
    const PREFIX: &'static str = "sg";

    fn new(key: usize) -> Self {
        GroupForm {
            base: RowBase::new(key),
            servers: RwSignal::new(Vec::new()),
            rules: RwSignal::new(vec![RuleForm::new(0)]),
            next_rule: RwSignal::new(1),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        if names.change {
            return None;
        }
        let servers = names.servers.get();
        self.servers
            .get()
            .into_iter()
            .find(|s| !servers.contains(s))
            .and_then(|s| reference(&s, &servers, false))
    }

    fn check(row: Value) -> Option<Problem> {
        domain::<SecurityGroupRequest>(row, SecurityGroupRequest::validate)
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("sg{i}-{f}");
        let rules = move || row.rules.get().into_iter().enumerate().collect::<Vec<_>>();
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {picks(p("server"), "svc.members", row.servers, names.servers)}
            <fieldset class="rules">
                <legend>{tr("svc.rules")}</legend>
                <For each=rules key=|(n, r)| (*n, r.key) children=move |(n, rule)| {
                    let q = move |f: &str| format!("sg{i}-rule{n}-{f}");
                    view! {
                        <div class="rule">
                            {choice(q("protocol"), "svc.protocol", rule.protocol, PROTOCOLS)}
                            {input(q("ports"), "svc.port_range", rule.ports)}
                            {input(q("remote"), "svc.remote", rule.remote)}
                            <button type="button" class="remove"
                                on:click=move |_| row.rules.update(|r| r.retain(|x| x.key != rule.key))>
                                {tr("new.remove_line")}
                            </button>
                        </div>
                    }
                }/>
                <button type="button" id=p("add-rule") on:click=move |_| {
                    let key = row.next_rule.get_untracked();
                    row.next_rule.set(key + 1);
                    row.rules.update(|r| r.push(RuleForm::new(key)));
                }>{tr("svc.add_rule")}</button>
            </fieldset>
        }
        .into_any()
    }
}

const AREAS: &[(&str, &str)] = &[
    ("gov_extranet", "area.gov_extranet"),
    ("internet", "area.internet"),
];
const LISTENER_PROTOCOLS: &[(&str, &str)] = &[
    ("http", "proto.http"),
    ("https", "proto.https"),
    ("tcp", "proto.tcp"),
    ("udp", "proto.udp"),
];
const ALGORITHMS: &[(&str, &str)] = &[
    ("weighted_round_robin", "algo.weighted_round_robin"),
    (
        "weighted_least_connections",
        "algo.weighted_least_connections",
    ),
    ("round_robin", "algo.round_robin"),
];
const HEALTH: &[(&str, &str)] = &[
    ("http", "proto.http"),
    ("tcp", "proto.tcp"),
    ("none", "svc.health_none"),
];

/// A load balancer with one listener in front of a server group.
#[derive(Clone, Copy)]
pub struct LbForm {
    base: RowBase,
    area: RwSignal<String>,
    members: RwSignal<String>,
    protocol: RwSignal<String>,
    port: RwSignal<String>,
    backend_port: RwSignal<String>,
    algorithm: RwSignal<String>,
    health: RwSignal<String>,
    path: RwSignal<String>,
}

impl Row for LbForm {
    fn value(&self, _names: &Names) -> Result<Value, Problem> {
        let port = |s: RwSignal<String>| match s.get().trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(Problem::Key("svc.bad_ports")),
        };
        let health = match self.health.get().as_str() {
            "none" => Value::Null,
            "http" => json!({"protocol": "http", "path": self.path.get().trim()}),
            other => json!({"protocol": other}),
        };
        Ok(json!({
            "name": self.base.name.get().trim(),
            "network_area": self.area.get(),
            "members": self.members.get().trim(),
            "listeners": [{
                "protocol": self.protocol.get(),
                "port": port(self.port)?,
                "backend_port": port(self.backend_port)?,
                "algorithm": self.algorithm.get(),
                "health_check": health,
            }],
            "remove": self.base.remove.get(),
        }))
    }
    const PREFIX: &'static str = "lb";

    fn new(key: usize) -> Self {
        LbForm {
            base: RowBase::new(key),
            area: RwSignal::new("internet".to_owned()),
            members: RwSignal::new(String::new()),
            protocol: RwSignal::new("http".to_owned()),
            port: RwSignal::new("80".to_owned()),
            backend_port: RwSignal::new("8080".to_owned()),
            algorithm: RwSignal::new("weighted_round_robin".to_owned()),
            health: RwSignal::new("http".to_owned()),
            path: RwSignal::new("/".to_owned()),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        reference(&self.members.get(), &names.servers.get(), names.change)
    }

    fn check(row: Value) -> Option<Problem> {
        domain::<LoadBalancerRequest>(row, LoadBalancerRequest::validate)
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("lb{i}-{f}");
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {choice(p("area"), "line.area", row.area, AREAS)}
            {name_ref(p("members"), "svc.lb_members", row.members, names.servers)}
            {choice(p("protocol"), "svc.protocol", row.protocol, LISTENER_PROTOCOLS)}
            {input(p("port"), "svc.listener_port", row.port)}
            {input(p("backend-port"), "svc.backend_port", row.backend_port)}
            {choice(p("algorithm"), "svc.algorithm", row.algorithm, ALGORITHMS)}
            {choice(p("health"), "svc.health", row.health, HEALTH)}
            {move || (row.health.get() == "http").then(|| input(p("path"), "svc.health_path", row.path))}
        }
        .into_any()
    }
}

const WAF_MODES: &[(&str, &str)] = &[("block", "waf.block"), ("detect", "waf.detect")];
const RULE_SETS: &[(&str, &str)] = &[
    ("sqli", "waf.sqli"),
    ("xss", "waf.xss"),
    ("rce", "waf.rce"),
    ("lfi", "waf.lfi"),
    ("rfi", "waf.rfi"),
    ("scanner", "waf.scanner"),
    ("protocol", "waf.protocol"),
];

/// A WAF policy in front of a load balancer.
#[derive(Clone, Copy)]
pub struct WafForm {
    base: RowBase,
    lb: RwSignal<String>,
    mode: RwSignal<String>,
    rule_sets: RwSignal<Vec<String>>,
    cc_requests: RwSignal<String>,
    cc_period: RwSignal<String>,
    allow: RwSignal<String>,
    deny: RwSignal<String>,
}

impl Row for WafForm {
    fn value(&self, _names: &Names) -> Result<Value, Problem> {
        let (r, p) = (self.cc_requests.get(), self.cc_period.get());
        let cc = if r.trim().is_empty() && p.trim().is_empty() {
            Value::Null
        } else {
            json!({"requests": positive(&r)?, "period_seconds": positive(&p)?})
        };
        Ok(json!({
            "name": self.base.name.get().trim(),
            "load_balancer": self.lb.get().trim(),
            "mode": self.mode.get(),
            "rule_sets": self.rule_sets.get(),
            "cc_limit": cc,
            "allow_cidrs": cidr_list(&self.allow.get())?,
            "deny_cidrs": cidr_list(&self.deny.get())?,
            "remove": self.base.remove.get(),
        }))
    }
    const PREFIX: &'static str = "waf";

    fn new(key: usize) -> Self {
        WafForm {
            base: RowBase::new(key),
            lb: RwSignal::new(String::new()),
            mode: RwSignal::new("block".to_owned()),
            rule_sets: RwSignal::new(vec!["sqli".to_owned(), "xss".to_owned()]),
            cc_requests: RwSignal::new(String::new()),
            cc_period: RwSignal::new(String::new()),
            allow: RwSignal::new(String::new()),
            deny: RwSignal::new(String::new()),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        reference(&self.lb.get(), &names.lbs.get(), names.change)
    }

    fn check(row: Value) -> Option<Problem> {
        domain::<WafPolicyRequest>(row, WafPolicyRequest::validate)
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("waf{i}-{f}");
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {name_ref(p("lb"), "svc.waf_lb", row.lb, names.lbs)}
            {choice(p("mode"), "svc.waf_mode", row.mode, WAF_MODES)}
            <fieldset class="checks">
                <legend>{tr("svc.rule_sets")}</legend>
                {RULE_SETS.iter().map(|(code, key)| {
                    let id = p(&format!("set-{code}"));
                    let label_for = id.clone();
                    view! {
                        <label for=label_for>
                            <input type="checkbox" id=id
                                prop:checked=move || row.rule_sets.get().iter().any(|s| s == code)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    row.rule_sets.update(|v| {
                                        v.retain(|s| s != code);
                                        if on { v.push((*code).to_owned()); }
                                    });
                                }/>
                            " " {tr(key)}
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <small class="hint">{tr("svc.cc")}</small>
            {input(p("cc-requests"), "svc.cc_requests", row.cc_requests)}
            {input(p("cc-period"), "svc.cc_period", row.cc_period)}
            {input(p("allow"), "svc.allow", row.allow)}
            {input(p("deny"), "svc.deny", row.deny)}
        }
        .into_any()
    }
}

const TIERS: &[(&str, &str)] = &[
    ("standard", "tier.standard"),
    ("high_performance", "tier.high_performance"),
];

/// A data volume for every member of a server group.
#[derive(Clone, Copy)]
pub struct VolumeForm {
    base: RowBase,
    server: RwSignal<String>,
    size: RwSignal<String>,
    tier: RwSignal<String>,
    /// A backup policy or snapshot of the system to restore from; empty:
    /// a new, empty volume. The server checks the name against the system.
    restore: RwSignal<String>,
}

impl Row for VolumeForm {
    fn value(&self, _names: &Names) -> Result<Value, Problem> {
        let mut v = json!({
            "name": self.base.name.get().trim(),
            "server_name": self.server.get().trim(),
            "size_gib": positive(&self.size.get())?,
            "tier": self.tier.get(),
            "remove": self.base.remove.get(),
        });
        let restore = self.restore.get().trim().to_owned();
        if !restore.is_empty() {
            v["restore_from"] = json!(restore);
        }
        Ok(v)
    }
    const PREFIX: &'static str = "vol";

    fn new(key: usize) -> Self {
        VolumeForm {
            base: RowBase::new(key),
            server: RwSignal::new(String::new()),
            size: RwSignal::new("100".to_owned()),
            tier: RwSignal::new("standard".to_owned()),
            restore: RwSignal::new(String::new()),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        reference(&self.server.get(), &names.servers.get(), names.change)
    }

    fn check(row: Value) -> Option<Problem> {
        domain::<VolumeRequest>(row, VolumeRequest::validate)
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("vol{i}-{f}");
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {name_ref(p("server"), "svc.volume_server", row.server, names.servers)}
            {input(p("size"), "svc.size", row.size)}
            {choice(p("tier"), "svc.tier", row.tier, TIERS)}
            {input(p("restore"), "svc.restore_from", row.restore)}
        }
        .into_any()
    }
}

const BACKUP_TYPES: &[(&str, &str)] = &[
    ("incremental", "backup.incremental"),
    ("differential", "backup.differential"),
    ("full", "backup.full"),
];
const EVERY: &[(&str, &str)] = &[("daily", "every.daily"), ("weekly", "every.weekly")];

/// A backup policy for every member of a server group or every volume of a
/// volume item.
#[derive(Clone, Copy)]
pub struct BackupForm {
    base: RowBase,
    target: RwSignal<String>,
    backup_type: RwSignal<String>,
    every: RwSignal<String>,
    weekday: RwSignal<String>,
    hour: RwSignal<String>,
    retention: RwSignal<String>,
    capacity: RwSignal<String>,
}

impl Row for BackupForm {
    fn value(&self, _names: &Names) -> Result<Value, Problem> {
        let small = |s: RwSignal<String>| {
            s.get()
                .trim()
                .parse::<u8>()
                .map_err(|_| Problem::Key("svc.bad_number"))
        };
        let window = if self.every.get() == "weekly" {
            json!({"every": "weekly", "weekday": small(self.weekday)?, "hour": small(self.hour)?})
        } else {
            json!({"every": "daily", "hour": small(self.hour)?})
        };
        Ok(json!({
            "name": self.base.name.get().trim(),
            "target": self.target.get().trim(),
            "backup_type": self.backup_type.get(),
            "window": window,
            "retention_days": positive(&self.retention.get())?,
            "capacity_gib": positive(&self.capacity.get())?,
            "remove": self.base.remove.get(),
        }))
    }
    const PREFIX: &'static str = "bk";

    fn new(key: usize) -> Self {
        BackupForm {
            base: RowBase::new(key),
            target: RwSignal::new(String::new()),
            backup_type: RwSignal::new("incremental".to_owned()),
            every: RwSignal::new("daily".to_owned()),
            weekday: RwSignal::new("7".to_owned()),
            hour: RwSignal::new("2".to_owned()),
            retention: RwSignal::new("7".to_owned()),
            capacity: RwSignal::new("100".to_owned()),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        let mut targets = names.servers.get();
        targets.extend(names.volumes.get());
        reference(&self.target.get(), &targets, names.change)
    }

    fn check(row: Value) -> Option<Problem> {
        domain::<BackupPolicyRequest>(row, BackupPolicyRequest::validate)
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("bk{i}-{f}");
        let targets = Signal::derive(move || {
            let mut t = names.servers.get();
            t.extend(names.volumes.get());
            t
        });
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {name_ref(p("target"), "svc.backup_target", row.target, targets)}
            {choice(p("type"), "svc.backup_type", row.backup_type, BACKUP_TYPES)}
            {choice(p("every"), "svc.every", row.every, EVERY)}
            {move || (row.every.get() == "weekly").then(|| input(p("weekday"), "svc.weekday", row.weekday))}
            {input(p("hour"), "svc.hour", row.hour)}
            {input(p("retention"), "svc.retention", row.retention)}
            {input(p("capacity"), "svc.capacity", row.capacity)}
        }
        .into_any()
    }
}

/// A one-off snapshot of every member of a server group or every volume of a
/// volume item.
#[derive(Clone, Copy)]
pub struct SnapshotForm {
    base: RowBase,
    source: RwSignal<String>,
}

impl Row for SnapshotForm {
    const PREFIX: &'static str = "snap";

    fn new(key: usize) -> Self {
        SnapshotForm {
            base: RowBase::new(key),
            source: RwSignal::new(String::new()),
        }
    }

    fn base(&self) -> RowBase {
        self.base
    }

    fn value(&self, _names: &Names) -> Result<Value, Problem> {
        Ok(json!({
            "name": self.base.name.get().trim(),
            "source": self.source.get().trim(),
            "remove": self.base.remove.get(),
        }))
    }

    fn refers(&self, names: &Names) -> Option<Problem> {
        let mut sources = names.servers.get();
        sources.extend(names.volumes.get());
        reference(&self.source.get(), &sources, names.change)
    }

    fn check(row: Value) -> Option<Problem> {
        // A snapshot's only rules are its names (checked above) and its
        // shape; the domain type has no further validate().
        domain::<SnapshotRequest>(row, |_| Ok(()))
    }

    fn fields(&self, i: usize, names: Names) -> AnyView {
        let row = *self;
        let p = move |f: &str| format!("snap{i}-{f}");
        let sources = Signal::derive(move || {
            let mut t = names.servers.get();
            t.extend(names.volumes.get());
            t
        });
        view! {
            {input(p("name"), "svc.name", row.base.name)}
            {name_ref(p("source"), "svc.snapshot_source", row.source, sources)}
        }
        .into_any()
    }
}

/// Every service row of an application.
#[derive(Clone, Copy)]
pub struct Services {
    pub network: NetworkForm,
    pub groups: RwSignal<Vec<GroupForm>>,
    pub lbs: RwSignal<Vec<LbForm>>,
    pub wafs: RwSignal<Vec<WafForm>>,
    pub volumes: RwSignal<Vec<VolumeForm>>,
    pub backups: RwSignal<Vec<BackupForm>>,
    pub snapshots: RwSignal<Vec<SnapshotForm>>,
}

fn names_of<R: Row>(
    rows: RwSignal<Vec<R>>,
    name: fn(&R) -> RwSignal<String>,
) -> Signal<Vec<String>> {
    Signal::derive(move || {
        rows.get()
            .iter()
            .map(|r| name(r).get().trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    })
}

impl Services {
    pub fn new() -> Self {
        Services {
            network: NetworkForm::new(),
            groups: RwSignal::new(Vec::new()),
            lbs: RwSignal::new(Vec::new()),
            wafs: RwSignal::new(Vec::new()),
            volumes: RwSignal::new(Vec::new()),
            backups: RwSignal::new(Vec::new()),
            snapshots: RwSignal::new(Vec::new()),
        }
    }

    /// The names rows may refer to, given the form's server groups.
    pub fn names(&self, servers: Signal<Vec<String>>, change: bool) -> Names {
        Names {
            servers,
            lbs: names_of(self.lbs, |r| r.base.name),
            volumes: names_of(self.volumes, |r| r.base.name),
            groups: names_of(self.groups, |r| r.base.name),
            change,
        }
    }

    /// Whether every row holds, and the rows together (names unique per
    /// kind) pass the domain's whole-order check.
    pub fn valid(&self, names: &Names) -> bool {
        untrack(|| self.row_problem(names).is_none() && self.whole_problem(names).is_none())
    }

    fn row_problem(&self, names: &Names) -> Option<Problem> {
        fn first<R: Row>(rows: RwSignal<Vec<R>>, names: &Names) -> Option<Problem> {
            rows.get().iter().find_map(|r| r.problem(names))
        }
        self.network
            .problem()
            .or_else(|| first(self.groups, names))
            .or_else(|| first(self.lbs, names))
            .or_else(|| first(self.wafs, names))
            .or_else(|| first(self.volumes, names))
            .or_else(|| first(self.backups, names))
            .or_else(|| first(self.snapshots, names))
    }

    /// What the domain says of the rows together (two volumes of one name …),
    /// once every row holds on its own.
    fn whole_problem(&self, names: &Names) -> Option<Problem> {
        if self.row_problem(names).is_some() {
            return None;
        }
        let mut body = json!({});
        self.fill(&mut body);
        domain::<yunshu_domain::order::OrderRequest>(body, |r| r.validate())
    }

    /// Adds the rows to an order body (tracked reads).
    pub fn fill(&self, body: &mut Value) {
        fn all<R: Row>(rows: RwSignal<Vec<R>>) -> Vec<Value> {
            rows.get().iter().map(Row::json).collect()
        }
        body["network"] = self.network.json().unwrap_or(Value::Null);
        body["security_groups"] = Value::Array(all(self.groups));
        body["load_balancers"] = Value::Array(all(self.lbs));
        body["waf_policies"] = Value::Array(all(self.wafs));
        body["volumes"] = Value::Array(all(self.volumes));
        body["backup_policies"] = Value::Array(all(self.backups));
        body["snapshots"] = Value::Array(all(self.snapshots));
    }
}

impl Default for Services {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for NetworkForm {
    fn default() -> Self {
        Self::new()
    }
}

/// The network and service part of the form, with the whole-part problem
/// (e.g. two volumes of one name) under it.
#[component]
pub fn ServicesSection(services: Services, names: Names) -> impl IntoView {
    let lang = use_lang();
    view! {
        <NetworkSection network=services.network/>
        {rows_of(services.groups, names, "svc.security_groups", "svc.add_group")}
        {rows_of(services.lbs, names, "svc.load_balancers", "svc.add_lb")}
        {rows_of(services.wafs, names, "svc.waf", "svc.add_waf")}
        {rows_of(services.volumes, names, "svc.volumes", "svc.add_volume")}
        {rows_of(services.backups, names, "svc.backups", "svc.add_backup")}
        {rows_of(services.snapshots, names, "svc.snapshots", "svc.add_snapshot")}
        <p class="field-error" role="alert" id="services-error">
            {move || services.whole_problem(&names).map(|p| p.text(lang.get()))}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::{Problem, cidr_list, port_range};

    #[test]
    fn port_ranges_and_cidr_lists_parse_as_the_api_reads_them() {
        assert_eq!(port_range("").ok(), Some(None));
        assert_eq!(
            port_range("8000-8100").ok().flatten(),
            Some(serde_json::json!({"from": 8000, "to": 8100}))
        );
        assert_eq!(
            port_range("80").ok().flatten(),
            Some(serde_json::json!({"from": 80, "to": 80}))
        );
        assert_eq!(port_range("0"), Err(Problem::Key("svc.bad_ports")));
        assert_eq!(port_range("70000"), Err(Problem::Key("svc.bad_ports")));
        assert_eq!(
            cidr_list("10.0.0.0/8, 192.168.1.0/24").ok(),
            Some(vec!["10.0.0.0/8".to_owned(), "192.168.1.0/24".to_owned()])
        );
        assert_eq!(cidr_list("10.0.0.1/8"), Err(Problem::Key("svc.bad_cidr")));
    }
}
