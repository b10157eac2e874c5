//! The simulator's resource table and the rules it enforces itself, so that a
//! scheduler bug in the controller shows up as a refusal instead of hiding:
//! placement consistency, architecture, host state, memory (never overcommitted),
//! vCPU ratio, storage, public IPs, bandwidth, subnet addresses.
//!
//! Owns [`State`]: resources by (kind, id) in a `BTreeMap` (the listing order),
//! what each one holds ([`Alloc`]), VPC/subnet address books, and the phase
//! transitions. Every accepted change is planned first against the current
//! counters (a resource's own old allocation counts as free), then committed, so a
//! refusal changes nothing. No tokio here: `sim` drives time and events.
//!
//! References between resources (the graph in `driver.proto`, listed by `refs`)
//! are enforced whole: an Apply naming a resource the simulator does not hold, or
//! is deleting, is FAILED_PRECONDITION `DEPENDENCY_NOT_FOUND`; one naming a
//! resource of a kind the field does not accept is INVALID_ARGUMENT
//! `INVALID_SPEC`; a Delete of a resource another live (not deleting) resource
//! still names is FAILED_PRECONDITION `RESOURCE_IN_USE` with metadata `used_by`.
//! A reverse index (referenced → referrers) keeps that check from scanning
//! every resource. An accepted Apply replaces the resource's references at once,
//! so an update that drops one frees the resource it named. Two older rules stay
//! on top, since capacity is released only when a deletion completes: a subnet
//! whose addresses are still held (by a resource being deleted) and a VPC whose
//! subnets are still registered cannot be deleted either.
//!
//! A security group may name itself in a rule (traffic among its own members,
//! as real clouds allow); such a self-reference is neither missing on create nor
//! in the way of its own deletion.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use yunshu_proto::convert::spec_kind;
use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;
use yunshu_proto::v1::resource_spec::Spec;

use crate::config::Delays;
use crate::datacenter::{Datacenter, Key};
use crate::net::{AddressBook, Cidr, fmt_ip, parse_ip};
use crate::sim::KINDS;
use crate::spec::{self, invalid, network_cidr};
use yunshu_driver_sdk::refs::references;

/// Reasons the simulator adds to the shared ones in `yunshu_proto::errors::reasons`
/// (`DEPENDENCY_NOT_FOUND`, `RESOURCE_IN_USE` and `MODEL_UNAVAILABLE` are shared
/// ones now: every driver enforces the reference graph).
pub mod sim_reasons {
    /// RESOURCE_EXHAUSTED: no free address left in the subnet.
    pub const SUBNET_EXHAUSTED: &str = "SUBNET_EXHAUSTED";
    /// FAILED_PRECONDITION: the fixed address a NIC asks for belongs to another
    /// resource.
    pub const IP_IN_USE: &str = "IP_IN_USE";
    /// ABORTED (retryable): the resource is being deleted; apply again once it is
    /// gone.
    pub const RESOURCE_DELETING: &str = "RESOURCE_DELETING";
}

/// Short lowercase name of a kind, for messages and address holders.
pub(crate) fn kind_label(kind: v1::ResourceKind) -> &'static str {
    use v1::ResourceKind as K;
    match kind {
        K::Unspecified => "unspecified",
        K::Vm => "vm",
        K::BareMetal => "bare_metal",
        K::Volume => "volume",
        K::Vpc => "vpc",
        K::Subnet => "subnet",
        K::SecurityGroup => "security_group",
        K::Eip => "eip",
        K::LoadBalancer => "load_balancer",
        K::WafPolicy => "waf_policy",
        K::BackupPolicy => "backup_policy",
        K::Snapshot => "snapshot",
    }
}

fn kv(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn placement_invalid(field: &str, value: &str, why: impl Into<String>) -> Status {
    status_with(
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
        format!("simulator: placement.{field} {value:?}: {}", why.into()),
        kv(&[("field", field.to_owned()), ("value", value.to_owned())]),
    )
}

fn dependency_missing(field: &str, what: &str, id: &str) -> Status {
    status_with(
        Code::FailedPrecondition,
        reasons::DEPENDENCY_NOT_FOUND,
        format!("simulator: {field}: no {what} {id:?} (or it is being deleted)"),
        kv(&[
            ("field", field.to_owned()),
            ("id", id.to_owned()),
            ("kind", what.to_owned()),
        ]),
    )
}

/// `vm or bare_metal`, for messages.
fn kinds_text(kinds: &[v1::ResourceKind]) -> String {
    let labels: Vec<&str> = kinds.iter().map(|k| kind_label(*k)).collect();
    labels.join(" or ")
}

fn in_use(key: &Key, referrer: &Key, field: &str) -> Status {
    let kind = v1::ResourceKind::try_from(key.0).unwrap_or_default();
    let by_kind = v1::ResourceKind::try_from(referrer.0).unwrap_or_default();
    status_with(
        Code::FailedPrecondition,
        reasons::RESOURCE_IN_USE,
        format!(
            "simulator: {} {} is named by {} {} ({field}); delete or change that one first",
            kind_label(kind),
            key.1,
            kind_label(by_kind),
            referrer.1
        ),
        kv(&[
            ("used_by", referrer.1.clone()),
            ("used_by_kind", kind_label(by_kind).to_owned()),
            ("field", field.to_owned()),
        ]),
    )
}

/// Capacity one resource holds; released when it is removed or replaced by its
/// next generation.
#[derive(Debug, Clone, Default)]
struct Alloc {
    host: Option<usize>,
    vcpu: u64,
    memory_mib: u64,
    /// (storage class, GiB), one entry per class.
    storage: Vec<(usize, u64)>,
    /// (network area, Mbps).
    bandwidth: Option<(usize, u64)>,
    /// (public IP pool, address).
    public_ip: Option<(usize, u32)>,
    /// (subnet id, address), in NIC order.
    private_ips: Vec<(String, u32)>,
    /// Address given to a VM without NIC or an LB without subnet.
    synthetic_ip: Option<u32>,
}

/// VPC/subnet bookkeeping created when their Apply is accepted.
enum Register {
    Nothing,
    Vpc(Cidr),
    Subnet {
        vpc: String,
        cidr: Cidr,
        gateway: u32,
    },
}

struct Plan {
    alloc: Alloc,
    outputs: HashMap<String, String>,
    register: Register,
}

struct VpcNet {
    cidr: Cidr,
    subnets: BTreeMap<String, Cidr>,
}

struct SubnetNet {
    vpc: String,
    book: AddressBook,
}

/// One resource: its observed state and what it holds.
struct Record {
    state: v1::ResourceState,
    alloc: Alloc,
    /// The resources its spec names (resolved key, spec field), self-references
    /// left out; mirrored in `State::referrers`.
    refs: Vec<(Key, String)>,
    /// Bumped at every phase change; a timer completes a transition only if the
    /// token it carries is still current (a later Apply/Delete wins).
    token: u64,
    /// Stopped because its host went down; restarted when the host comes back.
    stopped_by_host: bool,
}

/// The outcome of an accepted Apply.
pub(crate) enum Applied {
    /// Same generation as held: nothing changed.
    Unchanged(v1::ResourceState),
    Accepted {
        state: v1::ResourceState,
        created: bool,
        token: u64,
    },
}

/// The outcome of a Delete of an existing resource.
pub(crate) enum Deletion {
    AlreadyDeleting(v1::ResourceState),
    Started {
        state: v1::ResourceState,
        token: u64,
    },
}

/// What a host carries now (see `Sim::host_usage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUsage {
    pub state: v1::HostState,
    pub vcpu_used: u64,
    /// cores × the pool's vCPU ratio.
    pub vcpu_capacity: u64,
    pub memory_used_mib: u64,
    /// memory − reserve.
    pub memory_usable_mib: u64,
    /// VMs and bare-metal servers placed on the host.
    pub resources: usize,
}

/// A storage class's use (see `Sim::storage_usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageUsage {
    pub used_gib: u64,
    pub capacity_gib: u64,
}

/// Placement resolved to table positions.
#[derive(Default)]
struct Where {
    zone: Option<usize>,
    area: Option<usize>,
    host: Option<usize>,
}

fn taken(picked: &[(String, u32)], subnet: &str, addr: u32) -> bool {
    picked.iter().any(|(s, a)| s == subnet && *a == addr)
}

fn add_demand(demand: &mut Vec<(usize, u64)>, class: usize, gib: u64) {
    match demand.iter_mut().find(|(c, _)| *c == class) {
        Some((_, total)) => *total += gib,
        None => demand.push((class, gib)),
    }
}

/// 10.x.y.z for the n-th synthetic address: 254 hosts per /24 (no .0, no .255),
/// wrapping after 10.255.255.254.
fn synthetic_addr(n: u32) -> u32 {
    let block = (n / 254) % (1 << 16);
    let host = n % 254 + 1;
    (10 << 24) | (block << 8) | host
}

pub(crate) struct State {
    pub dc: Datacenter,
    pub delays: Delays,
    resources: BTreeMap<Key, Record>,
    vpcs: HashMap<String, VpcNet>,
    subnets: HashMap<String, SubnetNet>,
    /// Referenced resource → the resources naming it (with the field), from
    /// every held record's `refs`; a deleting referrer stays until it is gone.
    referrers: HashMap<Key, BTreeMap<Key, String>>,
    synthetic_next: u32,
    next_token: u64,
}

impl State {
    pub fn new(dc: Datacenter, delays: Delays) -> Self {
        State {
            dc,
            delays,
            resources: BTreeMap::new(),
            vpcs: HashMap::new(),
            subnets: HashMap::new(),
            referrers: HashMap::new(),
            synthetic_next: 0,
            next_token: 0,
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn get(&self, kind: v1::ResourceKind, id: &str) -> Option<v1::ResourceState> {
        self.resources
            .get(&(kind as i32, id.to_owned()))
            .map(|r| r.state.clone())
    }

    /// Up to `limit` states ordered by (kind, id), strictly after `after`.
    pub fn list(
        &self,
        kind: Option<v1::ResourceKind>,
        after: Option<(v1::ResourceKind, String)>,
        limit: usize,
    ) -> Vec<v1::ResourceState> {
        let kind = kind.map(|k| k as i32);
        let start = match (after, kind) {
            (Some((ak, id)), Some(k)) if (ak as i32) == k => Bound::Excluded((k, id)),
            (Some((ak, _)), Some(k)) if (ak as i32) > k => return Vec::new(),
            (_, Some(k)) => Bound::Included((k, String::new())),
            (Some((ak, id)), None) => Bound::Excluded((ak as i32, id)),
            (None, None) => Bound::Unbounded,
        };
        self.resources
            .range((start, Bound::Unbounded))
            .take_while(|((k, _), _)| kind.is_none_or(|want| *k == want))
            .take(limit)
            .map(|(_, r)| r.state.clone())
            .collect()
    }

    pub fn host_usage(&self, host: &str) -> Option<HostUsage> {
        let i = self.dc.host(host)?;
        let h = &self.dc.hosts[i];
        Some(HostUsage {
            state: h.state,
            vcpu_used: h.vcpu_used,
            vcpu_capacity: self.dc.vcpu_capacity(i),
            memory_used_mib: h.memory_used_mib,
            memory_usable_mib: h.usable_memory_mib(),
            resources: h.residents.len(),
        })
    }

    pub fn storage_usage(&self, class: &str) -> Option<StorageUsage> {
        let s = &self.dc.storage[self.dc.storage_class(class)?];
        Some(StorageUsage {
            used_gib: s.used_gib,
            capacity_gib: s.capacity_gib,
        })
    }

    // ------------------------------------------------------------ apply

    /// Accepts `req` (PROVISIONING) or refuses it without changing anything.
    pub fn apply(&mut self, req: &v1::ApplyRequest, now_ms: i64) -> Result<Applied, Status> {
        let kind = match v1::ResourceKind::try_from(req.kind) {
            Ok(v1::ResourceKind::Unspecified) | Err(_) => {
                return Err(invalid("kind", format!("{} is not a known kind", req.kind)));
            }
            Ok(k) => k,
        };
        let spec = req
            .spec
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .ok_or_else(|| invalid("spec", "is required"))?;
        if spec_kind(spec) != kind {
            return Err(invalid(
                "spec",
                format!("is for {:?} but kind is {kind:?}", spec_kind(spec)),
            ));
        }
        let key: Key = (req.kind, req.id.clone());
        let existing = self.resources.get(&key);
        if let Some(rec) = existing {
            if rec.state.phase == v1::Phase::Deleting as i32 {
                return Err(status(
                    Code::Aborted,
                    sim_reasons::RESOURCE_DELETING,
                    format!(
                        "simulator: {} {} is being deleted; apply again once it is gone",
                        kind_label(kind),
                        req.id
                    ),
                ));
            }
            // The SDK already filters these; kept so direct callers get the same
            // level-based behaviour.
            if req.generation == rec.state.generation {
                return Ok(Applied::Unchanged(rec.state.clone()));
            }
            if req.generation < rec.state.generation {
                return Err(status(
                    Code::FailedPrecondition,
                    reasons::STALE_GENERATION,
                    format!(
                        "simulator: {} is at generation {}; generation {} is older",
                        req.id, rec.state.generation, req.generation
                    ),
                ));
            }
        }
        spec::validate(spec)?;
        // What the spec names comes before capacity: a missing dependency is the
        // more basic refusal, and the answer the controller re-plans on.
        let refs = self.resolve_refs(&key, spec)?;
        let placement = req.placement.clone().unwrap_or_default();
        let holder = format!("{}/{}", kind_label(kind), req.id);
        let plan = self.plan(kind, &holder, spec, &placement, existing)?;

        let (old_alloc, old_refs, observed, created) = match self.resources.remove(&key) {
            Some(r) => (Some(r.alloc), r.refs, r.state.observed_generation, false),
            None => (None, Vec::new(), 0, true),
        };
        if let Some(old) = &old_alloc {
            self.release(&holder, &key, old);
        }
        self.unlink(&key, &old_refs);
        self.link(&key, &refs);
        self.acquire(&holder, &key, &plan.alloc);
        match plan.register {
            Register::Nothing => {}
            Register::Vpc(cidr) => {
                self.vpcs.insert(
                    req.id.clone(),
                    VpcNet {
                        cidr,
                        subnets: BTreeMap::new(),
                    },
                );
            }
            Register::Subnet { vpc, cidr, gateway } => {
                if let Some(v) = self.vpcs.get_mut(&vpc) {
                    v.subnets.insert(req.id.clone(), cidr);
                }
                self.subnets.insert(
                    req.id.clone(),
                    SubnetNet {
                        vpc,
                        book: AddressBook::for_subnet(&cidr, gateway),
                    },
                );
            }
        }
        let token = self.token();
        let state = v1::ResourceState {
            kind: req.kind,
            id: req.id.clone(),
            generation: req.generation,
            observed_generation: observed,
            phase: v1::Phase::Provisioning as i32,
            message: format!(
                "simulator: provisioning {} generation {}",
                kind_label(kind),
                req.generation
            ),
            placement: Some(placement),
            outputs: plan.outputs,
            idempotency_key: req.idempotency_key.clone(),
            tenant: req.tenant.clone(),
            spec: req.spec.clone(),
            updated_unix_ms: now_ms,
        };
        self.resources.insert(
            key,
            Record {
                state: state.clone(),
                alloc: plan.alloc,
                refs,
                token,
                stopped_by_host: false,
            },
        );
        Ok(Applied::Accepted {
            state,
            created,
            token,
        })
    }

    fn live(&self, key: &Key) -> bool {
        self.resources
            .get(key)
            .is_some_and(|r| r.state.phase != v1::Phase::Deleting as i32)
    }

    /// The resources `spec` names, resolved to keys; refuses a missing (or
    /// deleting) one with DEPENDENCY_NOT_FOUND and one of a kind the field does
    /// not accept with INVALID_SPEC. `own` may name itself (a security group's
    /// rule on its own members); that is not recorded.
    fn resolve_refs(&self, own: &Key, spec: &Spec) -> Result<Vec<(Key, String)>, Status> {
        let mut resolved: Vec<(Key, String)> = Vec::new();
        for r in references(spec) {
            let mut found = None;
            for kind in r.kinds {
                let key: Key = (*kind as i32, r.id.clone());
                if key == *own || self.live(&key) {
                    found = Some(key);
                    break;
                }
            }
            let Some(key) = found else {
                // Not there as an acceptable kind: another kind under that id is
                // a wrong spec, nothing at all is a dependency still to come.
                if let Some(other) = KINDS
                    .iter()
                    .find(|k| self.live(&(**k as i32, r.id.clone())))
                {
                    return Err(invalid(
                        &r.field,
                        format!(
                            "{:?} is a {}; the field names a {}",
                            r.id,
                            kind_label(*other),
                            kinds_text(r.kinds)
                        ),
                    ));
                }
                return Err(dependency_missing(&r.field, &kinds_text(r.kinds), &r.id));
            };
            if key != *own && !resolved.iter().any(|(k, _)| *k == key) {
                resolved.push((key, r.field));
            }
        }
        Ok(resolved)
    }

    fn link(&mut self, referrer: &Key, refs: &[(Key, String)]) {
        for (target, field) in refs {
            self.referrers
                .entry(target.clone())
                .or_default()
                .insert(referrer.clone(), field.clone());
        }
    }

    fn unlink(&mut self, referrer: &Key, refs: &[(Key, String)]) {
        for (target, _) in refs {
            if let Some(by) = self.referrers.get_mut(target) {
                by.remove(referrer);
                if by.is_empty() {
                    self.referrers.remove(target);
                }
            }
        }
    }

    /// Why `key` cannot be deleted now, if it cannot: a live resource names it,
    /// a subnet address is still held, a VPC still has subnets registered.
    fn delete_refusal(&self, kind: v1::ResourceKind, key: &Key) -> Option<Status> {
        let id = key.1.as_str();
        if let Some((referrer, field)) = self
            .referrers
            .get(key)
            .and_then(|by| by.iter().find(|(r, _)| *r != key && self.live(r)))
        {
            return Some(in_use(key, referrer, field));
        }
        match kind {
            v1::ResourceKind::Subnet => {
                let subnet = self.subnets.get(id)?;
                let in_use = subnet.book.in_use();
                let holder = subnet.book.any_holder()?;
                // Holders are "<kind>/<id>"; the id is what a caller acts on.
                let used_by = holder.split_once('/').map_or(holder, |(_, i)| i);
                Some(status_with(
                    Code::FailedPrecondition,
                    reasons::RESOURCE_IN_USE,
                    format!(
                        "simulator: subnet {id} still has {in_use} address(es) in use (e.g. by {holder}, being deleted); delete again once it is gone"
                    ),
                    kv(&[
                        ("in_use", in_use.to_string()),
                        ("used_by", used_by.to_owned()),
                    ]),
                ))
            }
            v1::ResourceKind::Vpc => {
                let first = self.vpcs.get(id)?.subnets.keys().next()?;
                Some(status_with(
                    Code::FailedPrecondition,
                    reasons::RESOURCE_IN_USE,
                    format!(
                        "simulator: vpc {id} still has subnets (e.g. {first}, being deleted); delete again once they are gone"
                    ),
                    kv(&[("subnet", first.clone()), ("used_by", first.clone())]),
                ))
            }
            _ => None,
        }
    }

    /// PROVISIONING → RUNNING (or STOPPED for a server asked to be powered
    /// off), if `token` is still the resource's current one.
    pub fn complete_apply(
        &mut self,
        key: &Key,
        token: u64,
        now_ms: i64,
    ) -> Option<v1::ResourceState> {
        let rec = self.resources.get_mut(key)?;
        if rec.token != token || rec.state.phase != v1::Phase::Provisioning as i32 {
            return None;
        }
        rec.state.observed_generation = rec.state.generation;
        if powered_off(&rec.state.spec) {
            rec.state.phase = v1::Phase::Stopped as i32;
            rec.stopped_by_host = false;
            rec.state.message = format!(
                "simulator: powered off at generation {}, disks kept",
                rec.state.generation
            );
        } else {
            rec.state.phase = v1::Phase::Running as i32;
            rec.state.message =
                format!("simulator: running at generation {}", rec.state.generation);
        }
        rec.state.updated_unix_ms = now_ms;
        Some(rec.state.clone())
    }

    fn resolve(&self, kind: v1::ResourceKind, p: &v1::Placement) -> Result<Where, Status> {
        let dc = &self.dc;
        let mut w = Where::default();
        if !p.zone.is_empty() {
            w.zone = Some(
                dc.zone(&p.zone)
                    .ok_or_else(|| placement_invalid("zone", &p.zone, "no such zone"))?,
            );
        }
        if !p.network_area.is_empty() {
            let a = dc.area(&p.network_area).ok_or_else(|| {
                placement_invalid("network_area", &p.network_area, "no such network area")
            })?;
            if w.zone.is_some_and(|z| z != dc.areas[a].zone) {
                return Err(placement_invalid(
                    "network_area",
                    &p.network_area,
                    format!("belongs to another zone than {:?}", p.zone),
                ));
            }
            w.zone = Some(dc.areas[a].zone);
            w.area = Some(a);
        }
        let mut pool = None;
        if !p.pool.is_empty() {
            let i = dc
                .pool(&p.pool)
                .ok_or_else(|| placement_invalid("pool", &p.pool, "no such pool"))?;
            let pr = &dc.pools[i];
            if w.zone.is_some_and(|z| z != pr.zone) || w.area.is_some_and(|a| a != pr.area) {
                return Err(placement_invalid(
                    "pool",
                    &p.pool,
                    format!(
                        "is in zone {:?} / network area {:?}, not the placement's",
                        dc.zones[pr.zone].id, dc.areas[pr.area].id
                    ),
                ));
            }
            w.zone = Some(pr.zone);
            w.area = Some(pr.area);
            pool = Some(i);
        }
        if !p.host.is_empty() {
            if !matches!(kind, v1::ResourceKind::Vm | v1::ResourceKind::BareMetal) {
                return Err(placement_invalid(
                    "host",
                    &p.host,
                    format!("a {} is not placed on a host", kind_label(kind)),
                ));
            }
            let h = dc
                .host(&p.host)
                .ok_or_else(|| placement_invalid("host", &p.host, "no such host"))?;
            let hp = dc.hosts[h].pool;
            if pool.is_some_and(|pl| pl != hp) {
                return Err(placement_invalid(
                    "host",
                    &p.host,
                    format!("belongs to pool {:?}, not {:?}", dc.pools[hp].id, p.pool),
                ));
            }
            w.host = Some(h);
        }
        let required: &[(&str, bool)] = match kind {
            v1::ResourceKind::Vm | v1::ResourceKind::BareMetal => &[
                ("zone", p.zone.is_empty()),
                ("network_area", p.network_area.is_empty()),
                ("pool", p.pool.is_empty()),
                ("host", p.host.is_empty()),
            ],
            v1::ResourceKind::Eip => &[
                ("zone", p.zone.is_empty()),
                ("network_area", p.network_area.is_empty()),
            ],
            _ => &[],
        };
        if let Some((field, _)) = required.iter().find(|(_, missing)| *missing) {
            return Err(placement_invalid(
                field,
                "",
                format!("is required for a {}", kind_label(kind)),
            ));
        }
        Ok(w)
    }

    /// Checks the host can take `memory_mib` and `vcpu` on top of what it holds
    /// (minus `old`'s share if `old` sits on the same host).
    fn check_host(
        &self,
        host: usize,
        memory_mib: u64,
        vcpu: u64,
        old: Option<&Alloc>,
    ) -> Result<(), Status> {
        let h = &self.dc.hosts[host];
        let state = h.state;
        if state != v1::HostState::Up {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::HOST_DOWN,
                format!("simulator: host {} is {}", h.id, state.as_str_name()),
                kv(&[
                    ("host", h.id.clone()),
                    ("state", state.as_str_name().to_owned()),
                ]),
            ));
        }
        let (old_mem, old_vcpu) = match old {
            Some(a) if a.host == Some(host) => (a.memory_mib, a.vcpu),
            _ => (0, 0),
        };
        let free_mib = h
            .usable_memory_mib()
            .saturating_sub(h.memory_used_mib.saturating_sub(old_mem));
        if memory_mib > free_mib {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::HOST_MEMORY_EXHAUSTED,
                format!(
                    "simulator: host {} has {free_mib} MiB free, {memory_mib} MiB requested (memory is never overcommitted)",
                    h.id
                ),
                kv(&[
                    ("host", h.id.clone()),
                    ("free_mib", free_mib.to_string()),
                    ("requested_mib", memory_mib.to_string()),
                ]),
            ));
        }
        let free_vcpu = self
            .dc
            .vcpu_capacity(host)
            .saturating_sub(h.vcpu_used.saturating_sub(old_vcpu));
        if vcpu > free_vcpu {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::HOST_VCPU_EXHAUSTED,
                format!(
                    "simulator: host {} has {free_vcpu} vCPU free (cores x ratio), {vcpu} requested",
                    h.id
                ),
                kv(&[
                    ("host", h.id.clone()),
                    ("free_vcpu", free_vcpu.to_string()),
                    ("requested_vcpu", vcpu.to_string()),
                ]),
            ));
        }
        Ok(())
    }

    fn check_arch(&self, host: usize, arch: i32) -> Result<(), Status> {
        let h = &self.dc.hosts[host];
        let pool = &self.dc.pools[h.pool];
        if pool.arch as i32 != arch {
            let wanted = v1::Architecture::try_from(arch)
                .map(|a| a.as_str_name())
                .unwrap_or("unknown");
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::ARCH_MISMATCH,
                format!(
                    "simulator: host {} is in {} pool {}, the spec asks for {wanted}",
                    h.id,
                    pool.arch.as_str_name(),
                    pool.id
                ),
                kv(&[
                    ("host", h.id.clone()),
                    ("pool", pool.id.clone()),
                    ("pool_arch", pool.arch.as_str_name().to_owned()),
                    ("requested_arch", wanted.to_owned()),
                ]),
            ));
        }
        Ok(())
    }

    /// A bare-metal spec naming a model gets a host of that model, never a
    /// look-alike; an empty model takes whatever the host is.
    fn check_model(&self, host: usize, model: &str) -> Result<(), Status> {
        let h = &self.dc.hosts[host];
        if model.is_empty() || model == h.model {
            return Ok(());
        }
        let has = if h.model.is_empty() {
            "no model on record".to_owned()
        } else {
            format!("a {}", h.model)
        };
        Err(status_with(
            Code::FailedPrecondition,
            reasons::MODEL_UNAVAILABLE,
            format!(
                "simulator: host {} is {has}; the spec asks for a {model}",
                h.id
            ),
            kv(&[
                ("host", h.id.clone()),
                ("host_model", h.model.clone()),
                ("requested_model", model.to_owned()),
            ]),
        ))
    }

    /// Disks' storage classes resolved and their zone checked.
    fn disk_demand(
        &self,
        zone: Option<usize>,
        disks: &[(String, &v1::Disk)],
    ) -> Result<Vec<(usize, u64)>, Status> {
        let mut demand = Vec::new();
        for (field, d) in disks {
            let class = self.dc.storage_class(&d.storage_class).ok_or_else(|| {
                invalid(
                    &format!("{field}.storage_class"),
                    format!("no storage class {:?}", d.storage_class),
                )
            })?;
            let sc = &self.dc.storage[class];
            if zone.is_some_and(|z| z != sc.zone) {
                return Err(placement_invalid(
                    "zone",
                    &self.dc.zones[zone.unwrap_or(sc.zone)].id,
                    format!(
                        "storage class {} is in zone {}",
                        sc.id, self.dc.zones[sc.zone].id
                    ),
                ));
            }
            add_demand(&mut demand, class, d.size_gib);
        }
        Ok(demand)
    }

    fn check_storage(&self, demand: &[(usize, u64)], old: Option<&Alloc>) -> Result<(), Status> {
        for &(class, gib) in demand {
            let sc = &self.dc.storage[class];
            let old_gib: u64 = old
                .map(|a| {
                    a.storage
                        .iter()
                        .filter(|(c, _)| *c == class)
                        .map(|(_, g)| g)
                        .sum()
                })
                .unwrap_or(0);
            let free = sc
                .capacity_gib
                .saturating_sub(sc.used_gib.saturating_sub(old_gib));
            if gib > free {
                return Err(status_with(
                    Code::ResourceExhausted,
                    reasons::STORAGE_EXHAUSTED,
                    format!(
                        "simulator: storage class {} has {free} GiB free, {gib} GiB requested",
                        sc.id
                    ),
                    kv(&[
                        ("storage_class", sc.id.clone()),
                        ("free_gib", free.to_string()),
                        ("requested_gib", gib.to_string()),
                    ]),
                ));
            }
        }
        Ok(())
    }

    /// A subnet that exists and is not being deleted.
    fn live_subnet(&self, field: &str, id: &str) -> Result<&SubnetNet, Status> {
        let deleting = self
            .resources
            .get(&(v1::ResourceKind::Subnet as i32, id.to_owned()))
            .is_none_or(|r| r.state.phase == v1::Phase::Deleting as i32);
        match self.subnets.get(id) {
            Some(s) if !deleting => Ok(s),
            _ => Err(dependency_missing(field, "subnet", id)),
        }
    }

    /// Addresses for NICs: a fixed one if asked, else the NIC's old one, else the
    /// next free one.
    fn plan_nics(
        &self,
        holder: &str,
        field: &str,
        nics: &[v1::Nic],
        old: Option<&Alloc>,
    ) -> Result<Vec<(String, u32)>, Status> {
        let mut picked: Vec<(String, u32)> = Vec::new();
        for (i, nic) in nics.iter().enumerate() {
            let nic_field = format!("{field}[{i}]");
            let subnet = self.live_subnet(&format!("{nic_field}.subnet"), &nic.subnet)?;
            let addr = if let Some(fixed) = parse_ip(&nic.ip) {
                if !subnet.book.allocatable(fixed) {
                    return Err(invalid(
                        &format!("{nic_field}.ip"),
                        format!("{} is not a host address of subnet {}", nic.ip, nic.subnet),
                    ));
                }
                if taken(&picked, &nic.subnet, fixed) {
                    return Err(invalid(
                        &format!("{nic_field}.ip"),
                        format!("{} is given to two NICs", nic.ip),
                    ));
                }
                if let Some(other) = subnet.book.holder(fixed).filter(|h| *h != holder) {
                    return Err(status_with(
                        Code::FailedPrecondition,
                        sim_reasons::IP_IN_USE,
                        format!(
                            "simulator: {} in subnet {} is used by {other}",
                            nic.ip, nic.subnet
                        ),
                        kv(&[
                            ("subnet", nic.subnet.clone()),
                            ("ip", nic.ip.clone()),
                            ("holder", other.to_owned()),
                        ]),
                    ));
                }
                fixed
            } else if let Some(kept) = old
                .and_then(|a| a.private_ips.get(i))
                .filter(|(s, a)| *s == nic.subnet && !taken(&picked, s, *a))
                .map(|(_, a)| *a)
            {
                kept
            } else {
                subnet
                    .book
                    .pick(|a| taken(&picked, &nic.subnet, a))
                    .ok_or_else(|| {
                        status_with(
                            Code::ResourceExhausted,
                            sim_reasons::SUBNET_EXHAUSTED,
                            format!("simulator: subnet {} has no free address", nic.subnet),
                            kv(&[
                                ("subnet", nic.subnet.clone()),
                                ("total", subnet.book.total().to_string()),
                            ]),
                        )
                    })?
            };
            picked.push((nic.subnet.clone(), addr));
        }
        Ok(picked)
    }

    fn synthetic(&self, old: Option<&Alloc>) -> u32 {
        old.and_then(|a| a.synthetic_ip)
            .unwrap_or_else(|| synthetic_addr(self.synthetic_next))
    }

    fn plan_public_ip(&self, area: usize, old: Option<&Alloc>) -> Result<(usize, u32), Status> {
        if let Some((pool, addr)) = old.and_then(|a| a.public_ip)
            && self.dc.ip_pools[pool].area == area
        {
            return Ok((pool, addr));
        }
        let a = &self.dc.areas[area];
        for &p in &a.ip_pools {
            if let Some(addr) = self.dc.ip_pools[p].book.pick(|_| false) {
                return Ok((p, addr));
            }
        }
        let total: u64 = a
            .ip_pools
            .iter()
            .map(|&p| self.dc.ip_pools[p].book.total())
            .sum();
        Err(status_with(
            Code::ResourceExhausted,
            reasons::IP_POOL_EXHAUSTED,
            format!(
                "simulator: no free public address in network area {} ({total} in total)",
                a.id
            ),
            kv(&[
                ("zone", self.dc.zones[a.zone].id.clone()),
                ("network_area", a.id.clone()),
                ("total", total.to_string()),
            ]),
        ))
    }

    fn check_bandwidth(&self, area: usize, mbps: u64, old: Option<&Alloc>) -> Result<(), Status> {
        let a = &self.dc.areas[area];
        let old_mbps = match old.and_then(|o| o.bandwidth) {
            Some((old_area, m)) if old_area == area => m,
            _ => 0,
        };
        let free = a
            .bandwidth_total
            .unwrap_or(0)
            .saturating_sub(a.bandwidth_used.saturating_sub(old_mbps));
        if mbps > free {
            return Err(status_with(
                Code::ResourceExhausted,
                reasons::BANDWIDTH_EXHAUSTED,
                format!(
                    "simulator: network area {} has {free} Mbps free, {mbps} Mbps requested",
                    a.id
                ),
                kv(&[
                    ("zone", self.dc.zones[a.zone].id.clone()),
                    ("network_area", a.id.clone()),
                    ("free_mbps", free.to_string()),
                    ("requested_mbps", mbps.to_string()),
                ]),
            ));
        }
        Ok(())
    }

    /// Everything `spec` would hold, checked against the counters.
    fn plan(
        &self,
        kind: v1::ResourceKind,
        holder: &str,
        spec: &Spec,
        placement: &v1::Placement,
        existing: Option<&Record>,
    ) -> Result<Plan, Status> {
        let old = existing.map(|r| &r.alloc);
        let old_spec = existing
            .and_then(|r| r.state.spec.as_ref())
            .and_then(|s| s.spec.as_ref());
        let w = self.resolve(kind, placement)?;
        let mut alloc = Alloc::default();
        let mut outputs = HashMap::new();
        let mut register = Register::Nothing;
        outputs.insert("simulated".to_owned(), "true".to_owned());
        match spec {
            Spec::Vm(vm) => {
                let host = w
                    .host
                    .ok_or_else(|| placement_invalid("host", "", "is required"))?;
                self.check_arch(host, vm.arch)?;
                self.check_host(host, vm.memory_mib, u64::from(vm.vcpu), old)?;
                let mut disks = Vec::new();
                if let Some(d) = &vm.system_disk {
                    disks.push(("vm.system_disk".to_owned(), d));
                }
                for (i, d) in vm.data_disks.iter().enumerate() {
                    disks.push((format!("vm.data_disks[{i}]"), d));
                }
                let demand = self.disk_demand(w.zone, &disks)?;
                self.check_storage(&demand, old)?;
                alloc.host = Some(host);
                alloc.memory_mib = vm.memory_mib;
                alloc.vcpu = u64::from(vm.vcpu);
                alloc.storage = demand;
                self.plan_addresses(holder, "vm.nics", &vm.nics, old, &mut alloc, &mut outputs)?;
                outputs.insert("host".to_owned(), self.dc.hosts[host].id.clone());
            }
            Spec::BareMetal(bm) => {
                let host = w
                    .host
                    .ok_or_else(|| placement_invalid("host", "", "is required"))?;
                self.check_arch(host, bm.arch)?;
                self.check_model(host, &bm.model)?;
                // A bare-metal server is the whole machine.
                let memory = self.dc.hosts[host].usable_memory_mib();
                let vcpu = self.dc.vcpu_capacity(host);
                self.check_host(host, memory, vcpu, old)?;
                alloc.host = Some(host);
                alloc.memory_mib = memory;
                alloc.vcpu = vcpu;
                self.plan_addresses(
                    holder,
                    "bare_metal.nics",
                    &bm.nics,
                    old,
                    &mut alloc,
                    &mut outputs,
                )?;
                outputs.insert("host".to_owned(), self.dc.hosts[host].id.clone());
            }
            Spec::Volume(v) => {
                let disk = v1::Disk {
                    size_gib: v.size_gib,
                    storage_class: v.storage_class.clone(),
                };
                let demand = self.disk_demand(w.zone, &[("volume".to_owned(), &disk)])?;
                self.check_storage(&demand, old)?;
                alloc.storage = demand;
                if !v.attach_to.is_empty() {
                    outputs.insert("attached_to".to_owned(), v.attach_to.clone());
                }
            }
            Spec::Vpc(vpc) => {
                let cidr = network_cidr("vpc.cidr", &vpc.cidr)?;
                match old_spec {
                    Some(Spec::Vpc(before)) if before.cidr != vpc.cidr => {
                        return Err(invalid("vpc.cidr", "cannot change once created"));
                    }
                    Some(_) => {}
                    None => register = Register::Vpc(cidr),
                }
                outputs.insert("cidr".to_owned(), cidr.to_string());
            }
            Spec::Subnet(s) => {
                let cidr = network_cidr("subnet.cidr", &s.cidr)?;
                let gateway = parse_ip(&s.gateway).unwrap_or(cidr.net + 1);
                match old_spec {
                    Some(Spec::Subnet(before)) => {
                        if before != s {
                            return Err(invalid(
                                "subnet",
                                "vpc, cidr and gateway cannot change once created",
                            ));
                        }
                    }
                    Some(_) => {}
                    None => {
                        register = self.plan_subnet(holder, s, cidr, gateway)?;
                    }
                }
                outputs.insert("cidr".to_owned(), cidr.to_string());
                outputs.insert("gateway".to_owned(), fmt_ip(gateway));
            }
            Spec::SecurityGroup(_) | Spec::WafPolicy(_) | Spec::BackupPolicy(_) => {}
            Spec::Eip(eip) => {
                let area = w
                    .area
                    .ok_or_else(|| placement_invalid("network_area", "", "is required"))?;
                let (pool, addr) = self.plan_public_ip(area, old)?;
                let mbps = u64::from(eip.bandwidth_mbps);
                self.check_bandwidth(area, mbps, old)?;
                alloc.public_ip = Some((pool, addr));
                alloc.bandwidth = Some((area, mbps));
                outputs.insert("public_ip".to_owned(), fmt_ip(addr));
                if !eip.bind_to.is_empty() {
                    outputs.insert("bound_to".to_owned(), eip.bind_to.clone());
                }
            }
            Spec::LoadBalancer(lb) => {
                let vip = if lb.subnet.is_empty() {
                    let a = self.synthetic(old);
                    alloc.synthetic_ip = Some(a);
                    a
                } else {
                    let nic = v1::Nic {
                        subnet: lb.subnet.clone(),
                        ip: String::new(),
                    };
                    let ips = self.plan_nics(holder, "load_balancer.subnet", &[nic], old)?;
                    let a = ips.first().map(|(_, a)| *a).unwrap_or_default();
                    alloc.private_ips = ips;
                    a
                };
                outputs.insert("vip".to_owned(), fmt_ip(vip));
            }
            Spec::Snapshot(s) => {
                outputs.insert("source".to_owned(), s.source.clone());
            }
        }
        Ok(Plan {
            alloc,
            outputs,
            register,
        })
    }

    fn plan_addresses(
        &self,
        holder: &str,
        field: &str,
        nics: &[v1::Nic],
        old: Option<&Alloc>,
        alloc: &mut Alloc,
        outputs: &mut HashMap<String, String>,
    ) -> Result<(), Status> {
        if nics.is_empty() {
            let a = self.synthetic(old);
            alloc.synthetic_ip = Some(a);
            outputs.insert("private_ip".to_owned(), fmt_ip(a));
            return Ok(());
        }
        let ips = self.plan_nics(holder, field, nics, old)?;
        if let Some((_, first)) = ips.first() {
            outputs.insert("private_ip".to_owned(), fmt_ip(*first));
        }
        if ips.len() > 1 {
            let all: Vec<String> = ips.iter().map(|(_, a)| fmt_ip(*a)).collect();
            outputs.insert("private_ips".to_owned(), all.join(","));
        }
        alloc.private_ips = ips;
        Ok(())
    }

    fn plan_subnet(
        &self,
        holder: &str,
        s: &v1::SubnetSpec,
        cidr: Cidr,
        gateway: u32,
    ) -> Result<Register, Status> {
        let vpc_deleting = self
            .resources
            .get(&(v1::ResourceKind::Vpc as i32, s.vpc.clone()))
            .is_none_or(|r| r.state.phase == v1::Phase::Deleting as i32);
        let vpc = match self.vpcs.get(&s.vpc) {
            Some(v) if !vpc_deleting => v,
            _ => return Err(dependency_missing("subnet.vpc", "vpc", &s.vpc)),
        };
        if !vpc.cidr.contains_cidr(&cidr) {
            return Err(invalid(
                "subnet.cidr",
                format!("{cidr} is outside VPC {} ({})", s.vpc, vpc.cidr),
            ));
        }
        if let Some((other, c)) = vpc
            .subnets
            .iter()
            .find(|(id, c)| c.overlaps(&cidr) && format!("subnet/{id}") != holder)
        {
            return Err(invalid(
                "subnet.cidr",
                format!("{cidr} overlaps subnet {other} ({c}) of VPC {}", s.vpc),
            ));
        }
        Ok(Register::Subnet {
            vpc: s.vpc.clone(),
            cidr,
            gateway,
        })
    }

    fn acquire(&mut self, holder: &str, key: &Key, alloc: &Alloc) {
        if let Some(h) = alloc.host {
            let host = &mut self.dc.hosts[h];
            host.vcpu_used += alloc.vcpu;
            host.memory_used_mib += alloc.memory_mib;
            host.residents.insert(key.clone());
        }
        for &(class, gib) in &alloc.storage {
            self.dc.storage[class].used_gib += gib;
        }
        if let Some((area, mbps)) = alloc.bandwidth {
            self.dc.areas[area].bandwidth_used += mbps;
        }
        if let Some((pool, addr)) = alloc.public_ip {
            self.dc.ip_pools[pool].book.take(addr, holder);
        }
        for (subnet, addr) in &alloc.private_ips {
            if let Some(s) = self.subnets.get_mut(subnet) {
                s.book.take(*addr, holder);
            }
        }
        if let Some(a) = alloc.synthetic_ip
            && a == synthetic_addr(self.synthetic_next)
        {
            self.synthetic_next = self.synthetic_next.wrapping_add(1);
        }
    }

    fn release(&mut self, holder: &str, key: &Key, alloc: &Alloc) {
        if let Some(h) = alloc.host {
            let host = &mut self.dc.hosts[h];
            host.vcpu_used = host.vcpu_used.saturating_sub(alloc.vcpu);
            host.memory_used_mib = host.memory_used_mib.saturating_sub(alloc.memory_mib);
            host.residents.remove(key);
        }
        for &(class, gib) in &alloc.storage {
            let s = &mut self.dc.storage[class];
            s.used_gib = s.used_gib.saturating_sub(gib);
        }
        if let Some((area, mbps)) = alloc.bandwidth {
            let a = &mut self.dc.areas[area];
            a.bandwidth_used = a.bandwidth_used.saturating_sub(mbps);
        }
        if let Some((pool, addr)) = alloc.public_ip {
            self.dc.ip_pools[pool].book.release(addr, holder);
        }
        for (subnet, addr) in &alloc.private_ips {
            if let Some(s) = self.subnets.get_mut(subnet) {
                s.book.release(*addr, holder);
            }
        }
    }

    // ------------------------------------------------------------ delete

    /// Starts deleting (DELETING); `None` if there is no such resource.
    pub fn begin_delete(
        &mut self,
        kind: v1::ResourceKind,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Deletion>, Status> {
        let key: Key = (kind as i32, id.to_owned());
        let Some(rec) = self.resources.get(&key) else {
            return Ok(None);
        };
        if rec.state.phase == v1::Phase::Deleting as i32 {
            return Ok(Some(Deletion::AlreadyDeleting(rec.state.clone())));
        }
        if let Some(refusal) = self.delete_refusal(kind, &key) {
            return Err(refusal);
        }
        let token = self.token();
        let Some(rec) = self.resources.get_mut(&key) else {
            return Ok(None);
        };
        rec.token = token;
        rec.stopped_by_host = false;
        rec.state.phase = v1::Phase::Deleting as i32;
        rec.state.message = format!("simulator: deleting {}", kind_label(kind));
        rec.state.updated_unix_ms = now_ms;
        Ok(Some(Deletion::Started {
            state: rec.state.clone(),
            token,
        }))
    }

    /// DELETING → gone (capacity released), if `token` is still current. Returns
    /// the last state, phase DELETED.
    pub fn complete_delete(
        &mut self,
        key: &Key,
        token: u64,
        now_ms: i64,
    ) -> Option<v1::ResourceState> {
        let current = self.resources.get(key)?;
        if current.token != token || current.state.phase != v1::Phase::Deleting as i32 {
            return None;
        }
        let rec = self.resources.remove(key)?;
        let kind = v1::ResourceKind::try_from(key.0).unwrap_or(v1::ResourceKind::Unspecified);
        let holder = format!("{}/{}", kind_label(kind), key.1);
        self.release(&holder, key, &rec.alloc);
        self.unlink(key, &rec.refs);
        match kind {
            v1::ResourceKind::Subnet => {
                if let Some(s) = self.subnets.remove(&key.1)
                    && let Some(v) = self.vpcs.get_mut(&s.vpc)
                {
                    v.subnets.remove(&key.1);
                }
            }
            v1::ResourceKind::Vpc => {
                self.vpcs.remove(&key.1);
            }
            _ => {}
        }
        let mut state = rec.state;
        state.phase = v1::Phase::Deleted as i32;
        state.message = format!("simulator: {} deleted", kind_label(kind));
        state.updated_unix_ms = now_ms;
        Some(state)
    }

    // ------------------------------------------------------------ hosts

    /// Sets a host's state; returns `None` if it already was in it, else the new
    /// inventory revision and the resources whose phase changed (a host going DOWN
    /// stops what runs on it; coming back restarts what it stopped).
    pub fn set_host_state(
        &mut self,
        host: usize,
        new: v1::HostState,
        now_ms: i64,
    ) -> Option<(u64, Vec<v1::ResourceState>)> {
        let old = self.dc.hosts[host].state;
        if old == new {
            return None;
        }
        self.dc.hosts[host].state = new;
        self.dc.revision += 1;
        let host_id = self.dc.hosts[host].id.clone();
        let residents: Vec<Key> = self.dc.hosts[host].residents.iter().cloned().collect();
        let mut changed = Vec::new();
        for key in residents {
            let token = self.token();
            let Some(rec) = self.resources.get_mut(&key) else {
                continue;
            };
            let phase = rec.state.phase;
            if new == v1::HostState::Down
                && (phase == v1::Phase::Running as i32 || phase == v1::Phase::Provisioning as i32)
            {
                rec.state.phase = v1::Phase::Stopped as i32;
                rec.state.message = format!("simulator: stopped: host {host_id} is down");
            } else if old == v1::HostState::Down
                && rec.stopped_by_host
                && phase == v1::Phase::Stopped as i32
                && !powered_off(&rec.state.spec)
            {
                rec.state.phase = v1::Phase::Running as i32;
                rec.state.observed_generation = rec.state.generation;
                rec.state.message = format!("simulator: running again: host {host_id} is back");
            } else {
                continue;
            }
            rec.stopped_by_host = new == v1::HostState::Down;
            rec.token = token;
            rec.state.updated_unix_ms = now_ms;
            changed.push(rec.state.clone());
        }
        Some((self.dc.revision, changed))
    }
}

/// Whether `spec` asks for a server powered off (VM or bare metal).
fn powered_off(spec: &Option<v1::ResourceSpec>) -> bool {
    use v1::resource_spec::Spec;
    match spec.as_ref().and_then(|s| s.spec.as_ref()) {
        Some(Spec::Vm(vm)) => vm.stopped,
        Some(Spec::BareMetal(bm)) => bm.stopped,
        _ => false,
    }
}
