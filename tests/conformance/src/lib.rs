//! The yunshu driver conformance kit.
//!
//! [`run`] drives any `yunshu.provider.v1` driver through the contract of
//! `proto/yunshu/provider/v1/driver.proto` and `yunshu_proto::errors` and returns a
//! [`Report`] with one [`CheckResult`] per check (names in [`names`]). It is
//! provider-agnostic: everything it creates is placed from the driver's own
//! inventory by a [`SpecFactory`], under a unique run prefix, and deleted again
//! (newest first, until gone).
//!
//! Checks run one after another, each on resources of its own, so one failure does
//! not cascade into the next and a report line points at one behaviour. The
//! generic checks (generations, idempotency, list, watch …) run on
//! [`Options::kinds`]; `lifecycle_<kind>` runs every kind the driver declares in
//! `GetInfo.kinds` end to end, building what it names first; the reference
//! checks probe the graph of `driver.proto` between declared kinds. A kind the
//! driver does not declare is skipped, not failed. The last check,
//! `errors_carry_reason`, judges every error status seen during the whole run.
//!
//! ```no_run
//! # async fn demo(client: yunshu_proto::v1::driver_client::DriverClient<yunshu_proto::tonic::transport::Channel>) {
//! let report = yunshu_conformance::run(client, &yunshu_conformance::Options::default()).await;
//! print!("{report}");
//! assert!(report.passed());
//! # }
//! ```

mod checks;
mod graph;
mod probe;
mod report;
mod spec;

use std::time::Duration;

use tokio::time::Instant;
use yunshu_proto::tonic::transport::Channel;
use yunshu_proto::v1::{self, ResourceKind, driver_client::DriverClient};

pub use report::{CheckResult, Report};
pub use spec::{SetupError, SpecFactory};

use checks::Done;
use probe::{Ctx, Fail, Probe};

/// Stable check names, in the order they run.
pub mod names {
    pub const INFO: &str = "info";
    pub const INVENTORY_CONSISTENT: &str = "inventory_consistent";
    pub const APPLY_IDEMPOTENT: &str = "apply_idempotent";
    pub const REAPPLY_SAME_GENERATION_IS_NOOP: &str = "reapply_same_generation_is_noop";
    pub const APPLY_NEW_GENERATION_UPDATES: &str = "apply_new_generation_updates";
    pub const STALE_GENERATION_REFUSED: &str = "stale_generation_refused";
    pub const IDEMPOTENCY_KEY_NOT_REUSED: &str = "idempotency_key_not_reused";
    pub const DELETE_IDEMPOTENT: &str = "delete_idempotent";
    pub const GET_UNKNOWN_NOT_FOUND: &str = "get_unknown_not_found";
    pub const INVALID_SPEC_REJECTED: &str = "invalid_spec_rejected";
    pub const CONVERGES_TO_RUNNING: &str = "converges_to_running";
    pub const LIST_COMPLETE_PAGINATED: &str = "list_complete_paginated";
    pub const WATCH_CREATE_UPDATE_DELETE_IN_ORDER: &str = "watch_create_update_delete_in_order";
    pub const WATCH_RESUME_FROM_CURSOR: &str = "watch_resume_from_cursor";
    pub const LIFECYCLE_VPC: &str = "lifecycle_vpc";
    pub const LIFECYCLE_SUBNET: &str = "lifecycle_subnet";
    pub const LIFECYCLE_SECURITY_GROUP: &str = "lifecycle_security_group";
    pub const LIFECYCLE_VM: &str = "lifecycle_vm";
    pub const LIFECYCLE_BARE_METAL: &str = "lifecycle_bare_metal";
    pub const LIFECYCLE_VOLUME: &str = "lifecycle_volume";
    pub const LIFECYCLE_EIP: &str = "lifecycle_eip";
    pub const LIFECYCLE_LOAD_BALANCER: &str = "lifecycle_load_balancer";
    pub const LIFECYCLE_WAF_POLICY: &str = "lifecycle_waf_policy";
    pub const LIFECYCLE_BACKUP_POLICY: &str = "lifecycle_backup_policy";
    pub const LIFECYCLE_SNAPSHOT: &str = "lifecycle_snapshot";
    pub const DEPENDENCY_MISSING_REFUSED: &str = "dependency_missing_refused";
    pub const DELETE_IN_USE_REFUSED: &str = "delete_in_use_refused";
    pub const ERRORS_CARRY_REASON: &str = "errors_carry_reason";

    /// One check per resource kind, in dependency order: apply (what it names
    /// built first), converge to RUNNING, re-apply as a no-op, for a VM or a
    /// bare-metal server power it off (STOPPED at its generation) and on
    /// again, delete until gone. Skipped for a kind the driver does not
    /// declare.
    pub const LIFECYCLE: [&str; 11] = [
        LIFECYCLE_VPC,
        LIFECYCLE_SUBNET,
        LIFECYCLE_SECURITY_GROUP,
        LIFECYCLE_VM,
        LIFECYCLE_BARE_METAL,
        LIFECYCLE_VOLUME,
        LIFECYCLE_EIP,
        LIFECYCLE_LOAD_BALANCER,
        LIFECYCLE_WAF_POLICY,
        LIFECYCLE_BACKUP_POLICY,
        LIFECYCLE_SNAPSHOT,
    ];

    /// The refusals of the reference graph (DEPENDENCY_NOT_FOUND,
    /// RESOURCE_IN_USE), probed on every reference between declared kinds.
    pub const REFERENCE_CHECKS: [&str; 2] = [DEPENDENCY_MISSING_REFUSED, DELETE_IN_USE_REFUSED];

    /// The checks that create resources (they need a [`crate::SpecFactory`]).
    pub const RESOURCE_CHECKS: [&str; 25] = [
        APPLY_IDEMPOTENT,
        REAPPLY_SAME_GENERATION_IS_NOOP,
        APPLY_NEW_GENERATION_UPDATES,
        STALE_GENERATION_REFUSED,
        IDEMPOTENCY_KEY_NOT_REUSED,
        DELETE_IDEMPOTENT,
        GET_UNKNOWN_NOT_FOUND,
        INVALID_SPEC_REJECTED,
        CONVERGES_TO_RUNNING,
        LIST_COMPLETE_PAGINATED,
        WATCH_CREATE_UPDATE_DELETE_IN_ORDER,
        WATCH_RESUME_FROM_CURSOR,
        LIFECYCLE_VPC,
        LIFECYCLE_SUBNET,
        LIFECYCLE_SECURITY_GROUP,
        LIFECYCLE_VM,
        LIFECYCLE_BARE_METAL,
        LIFECYCLE_VOLUME,
        LIFECYCLE_EIP,
        LIFECYCLE_LOAD_BALANCER,
        LIFECYCLE_WAF_POLICY,
        LIFECYCLE_BACKUP_POLICY,
        LIFECYCLE_SNAPSHOT,
        DEPENDENCY_MISSING_REFUSED,
        DELETE_IN_USE_REFUSED,
    ];

    /// Every check, in the order of a report.
    pub const ALL: [&str; 28] = [
        INFO,
        INVENTORY_CONSISTENT,
        APPLY_IDEMPOTENT,
        REAPPLY_SAME_GENERATION_IS_NOOP,
        APPLY_NEW_GENERATION_UPDATES,
        STALE_GENERATION_REFUSED,
        IDEMPOTENCY_KEY_NOT_REUSED,
        DELETE_IDEMPOTENT,
        GET_UNKNOWN_NOT_FOUND,
        INVALID_SPEC_REJECTED,
        CONVERGES_TO_RUNNING,
        LIST_COMPLETE_PAGINATED,
        WATCH_CREATE_UPDATE_DELETE_IN_ORDER,
        WATCH_RESUME_FROM_CURSOR,
        LIFECYCLE_VPC,
        LIFECYCLE_SUBNET,
        LIFECYCLE_SECURITY_GROUP,
        LIFECYCLE_VM,
        LIFECYCLE_BARE_METAL,
        LIFECYCLE_VOLUME,
        LIFECYCLE_EIP,
        LIFECYCLE_LOAD_BALANCER,
        LIFECYCLE_WAF_POLICY,
        LIFECYCLE_BACKUP_POLICY,
        LIFECYCLE_SNAPSHOT,
        DEPENDENCY_MISSING_REFUSED,
        DELETE_IN_USE_REFUSED,
        ERRORS_CARRY_REASON,
    ];
}

/// The kind each `lifecycle_<kind>` check runs.
const LIFECYCLE_KINDS: [(&str, ResourceKind); 11] = [
    (names::LIFECYCLE_VPC, ResourceKind::Vpc),
    (names::LIFECYCLE_SUBNET, ResourceKind::Subnet),
    (names::LIFECYCLE_SECURITY_GROUP, ResourceKind::SecurityGroup),
    (names::LIFECYCLE_VM, ResourceKind::Vm),
    (names::LIFECYCLE_BARE_METAL, ResourceKind::BareMetal),
    (names::LIFECYCLE_VOLUME, ResourceKind::Volume),
    (names::LIFECYCLE_EIP, ResourceKind::Eip),
    (names::LIFECYCLE_LOAD_BALANCER, ResourceKind::LoadBalancer),
    (names::LIFECYCLE_WAF_POLICY, ResourceKind::WafPolicy),
    (names::LIFECYCLE_BACKUP_POLICY, ResourceKind::BackupPolicy),
    (names::LIFECYCLE_SNAPSHOT, ResourceKind::Snapshot),
];

/// The kind the check called `name` runs end to end, if it is a lifecycle check.
pub fn lifecycle_kind(name: &str) -> Option<ResourceKind> {
    LIFECYCLE_KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
}

/// Whether the check called `name` works from the kinds the driver declares
/// (lifecycle and reference checks) rather than from [`Options::kinds`].
fn covers_declared_kinds(name: &str) -> bool {
    lifecycle_kind(name).is_some() || names::REFERENCE_CHECKS.contains(&name)
}

/// How to run the kit.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prefix of every resource id the run creates, unique per run so that runs
    /// against a shared driver never collide (default `conf-<8 hex>-`).
    pub run_prefix: String,
    /// How long to wait for asynchronous convergence (RUNNING, gone, an event).
    pub patience: Duration,
    /// Bound on one RPC; a driver that does not answer fails the check instead of
    /// hanging the run.
    pub call_timeout: Duration,
    /// The kinds the generic checks exercise (those the driver does not
    /// declare are left out). They need specs that name nothing: VM, VPC,
    /// VOLUME and SECURITY_GROUP. The lifecycle and reference checks cover every
    /// kind the driver declares, whatever this says.
    pub kinds: Vec<ResourceKind>,
    /// Tenant code put on every request.
    pub tenant: String,
    /// VM image.
    pub vm_image: String,
    /// VM shape: small, because the kit cannot see what hosts have allocated.
    pub vm_vcpu: u32,
    pub vm_memory_mib: u64,
    /// System disk and volume size.
    pub disk_gib: u64,
    /// Resources created for the pagination check, and its page size.
    pub list_count: usize,
    pub list_page_size: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            run_prefix: Self::random_prefix(),
            patience: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
            kinds: vec![ResourceKind::Vm, ResourceKind::Vpc],
            tenant: "conformance".to_owned(),
            vm_image: "openEuler-22.03-LTS".to_owned(),
            vm_vcpu: 1,
            vm_memory_mib: 512,
            disk_gib: 20,
            list_count: 25,
            list_page_size: 7,
        }
    }
}

impl Options {
    /// `conf-<8 random hex digits>-`.
    pub fn random_prefix() -> String {
        format!("conf-{:08x}-", rand::random::<u32>())
    }

    /// A safety net around one check, grown with the convergence waits it may
    /// make: a few per kind for the generic checks; building and tearing down a
    /// dependency chain (at most five resources) for a lifecycle check; that per
    /// reference of the graph for the reference checks.
    fn check_timeout(&self, name: &str) -> Duration {
        let waits = if lifecycle_kind(name).is_some() {
            2 * 5 + 2
        } else if names::REFERENCE_CHECKS.contains(&name) {
            2 * 5 * graph::EDGES.len() + 2
        } else {
            3 * self.kinds.len() + 2
        };
        let waits = u32::try_from(waits).unwrap_or(u32::MAX / 8);
        self.patience.saturating_mul(waits) + Duration::from_secs(30)
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn verdict(name: &str, since: Instant, outcome: Result<Done, Fail>) -> CheckResult {
    let millis = elapsed_ms(since);
    let result = match outcome {
        Ok(Done::Passed) => CheckResult::pass(name, millis),
        Ok(Done::Skipped(why)) => CheckResult::skip(name, why, millis),
        Err(f) => CheckResult::fail(name, f.0, millis),
    };
    tracing::debug!(check = name, passed = result.passed, skipped = result.skipped, detail = %result.detail, "check done");
    result
}

/// What the run works from: the factory (placements from the inventory, the
/// declared kinds) and whether the generic checks can run on their kinds.
fn setup(
    info: Option<&v1::DriverInfo>,
    inventory: Option<&v1::Inventory>,
    options: &Options,
) -> (Result<SpecFactory, SetupError>, Result<(), SetupError>) {
    let declared: Option<Vec<ResourceKind>> = info.map(|info| {
        info.kinds
            .iter()
            .filter_map(|k| ResourceKind::try_from(*k).ok())
            .filter(|k| *k != ResourceKind::Unspecified)
            .collect()
    });
    let kinds: Vec<ResourceKind> = match &declared {
        Some(declared) => options
            .kinds
            .iter()
            .copied()
            .filter(|k| declared.contains(k))
            .collect(),
        // Without GetInfo the kit cannot tell; try what was asked for.
        None => options.kinds.clone(),
    };
    let Some(inventory) = inventory else {
        let e = SetupError::Inventory("GetInventory did not answer".to_owned());
        return (Err(e.clone()), Err(e));
    };
    let mut factory = SpecFactory::build(inventory, &kinds, options);
    if let Some(declared) = &declared {
        factory = factory.with_declared(declared);
    }
    let generic = if kinds.is_empty() {
        let asked: Vec<_> = options.kinds.iter().map(|k| k.as_str_name()).collect();
        Err(SetupError::NoKinds(asked.join(", ")))
    } else {
        factory.check_kinds()
    };
    (Ok(factory), generic)
}

/// Runs every check against the driver behind `client`.
pub async fn run(client: DriverClient<Channel>, options: &Options) -> Report {
    let probe = Probe::new(client, options.call_timeout);
    let mut report = Report::default();

    let started = Instant::now();
    let (info, outcome) = checks::info(&probe, names::INFO).await;
    report.checks.push(verdict(
        names::INFO,
        started,
        outcome.map(|()| Done::Passed),
    ));

    let started = Instant::now();
    let (inventory, outcome) = checks::inventory(&probe, names::INVENTORY_CONSISTENT).await;
    report.checks.push(verdict(
        names::INVENTORY_CONSISTENT,
        started,
        outcome.map(|()| Done::Passed),
    ));

    let (factory, generic) = setup(info.as_ref(), inventory.as_ref(), options);
    for name in names::RESOURCE_CHECKS {
        let started = Instant::now();
        // A kind the driver does not declare is skipped even when nothing else
        // could be set up: there is nothing to fail.
        let undeclared = lifecycle_kind(name).filter(|k| {
            info.as_ref()
                .is_some_and(|info| !info.kinds.contains(&(*k as i32)))
        });
        let ready: Result<&SpecFactory, SetupError> = match &factory {
            Err(e) => Err(e.clone()),
            Ok(f) if covers_declared_kinds(name) => Ok(f),
            Ok(f) => generic.clone().map(|()| f),
        };
        let result = match (ready, undeclared) {
            (_, Some(kind)) => verdict(
                name,
                started,
                Ok(Done::Skipped(format!(
                    "the driver does not declare {}",
                    kind.as_str_name()
                ))),
            ),
            (Err(e), None) => verdict(name, started, Err(Fail(format!("setup: {e}")))),
            (Ok(factory), None) => {
                let ctx = Ctx::new(&probe, name, factory, options);
                let limit = options.check_timeout(name);
                let outcome =
                    match tokio::time::timeout(limit, checks::run_resource_check(name, &ctx)).await
                    {
                        Ok(outcome) => outcome,
                        Err(_) => Err(Fail(format!("did not finish within {} s", limit.as_secs()))),
                    };
                let result = verdict(name, started, outcome);
                // Outside the timeout: what a timed-out check created goes too.
                ctx.cleanup().await;
                result
            }
        };
        report.checks.push(result);
    }

    let started = Instant::now();
    let outcome = checks::errors_carry_reason(&probe.seen());
    report.checks.push(verdict(
        names::ERRORS_CARRY_REASON,
        started,
        outcome.map(|()| Done::Passed),
    ));
    if probe.transport_errors() > 0 {
        tracing::warn!(
            count = probe.transport_errors(),
            "transport errors (not sent by the driver) during the run"
        );
    }
    report
}
