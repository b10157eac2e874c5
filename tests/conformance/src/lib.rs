//! The yunshu driver conformance kit.
//!
//! [`run`] drives any `yunshu.provider.v1` driver through the contract of
//! `proto/yunshu/provider/v1/driver.proto` and `yunshu_proto::errors` and returns a
//! [`Report`] with one [`CheckResult`] per check (names in [`names`]). It is
//! provider-agnostic: everything it creates is placed from the driver's own
//! inventory by a [`SpecFactory`], under a unique run prefix, and deleted again.
//!
//! Checks run one after another, each on resources of its own, so one failure does
//! not cascade into the next and a report line points at one behaviour. The last
//! check, `errors_carry_reason`, judges every error status seen during the whole
//! run.
//!
//! ```no_run
//! # async fn demo(client: yunshu_proto::v1::driver_client::DriverClient<yunshu_proto::tonic::transport::Channel>) {
//! let report = yunshu_conformance::run(client, &yunshu_conformance::Options::default()).await;
//! print!("{report}");
//! assert!(report.passed());
//! # }
//! ```

mod checks;
mod probe;
mod report;
mod spec;

use std::time::Duration;

use tokio::time::Instant;
use yunshu_proto::tonic::transport::Channel;
use yunshu_proto::v1::{self, ResourceKind, driver_client::DriverClient};

pub use report::{CheckResult, Report};
pub use spec::{SetupError, SpecFactory};

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
    pub const ERRORS_CARRY_REASON: &str = "errors_carry_reason";

    /// The checks that create resources (they need a [`crate::SpecFactory`]).
    pub const RESOURCE_CHECKS: [&str; 12] = [
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
    ];

    /// Every check, in the order of a report.
    pub const ALL: [&str; 15] = [
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
        ERRORS_CARRY_REASON,
    ];
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
    /// The kinds to exercise (those the driver does not declare are skipped).
    /// The kit has specs for VM, VPC, VOLUME and SECURITY_GROUP.
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

    /// A safety net around one check: it waits for convergence a few times per
    /// kind, so its bound grows with the kinds.
    fn check_timeout(&self) -> Duration {
        let waits = 3 * u32::try_from(self.kinds.len()).unwrap_or(u32::MAX / 8) + 2;
        self.patience.saturating_mul(waits) + Duration::from_secs(30)
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn verdict(name: &str, since: Instant, outcome: Result<(), Fail>) -> CheckResult {
    let millis = elapsed_ms(since);
    let result = match outcome {
        Ok(()) => CheckResult::pass(name, millis),
        Err(f) => CheckResult::fail(name, f.0, millis),
    };
    tracing::debug!(check = name, passed = result.passed, detail = %result.detail, "check done");
    result
}

/// The kinds to exercise and where to put them, from what the driver said.
fn setup(
    info: Option<&v1::DriverInfo>,
    inventory: Option<&v1::Inventory>,
    options: &Options,
) -> Result<SpecFactory, SetupError> {
    let kinds: Vec<ResourceKind> = match info {
        Some(info) => options
            .kinds
            .iter()
            .copied()
            .filter(|k| info.kinds.contains(&(*k as i32)))
            .collect(),
        // Without GetInfo the kit cannot tell; try what was asked for.
        None => options.kinds.clone(),
    };
    if kinds.is_empty() {
        let asked: Vec<_> = options.kinds.iter().map(|k| k.as_str_name()).collect();
        return Err(SetupError::NoKinds(asked.join(", ")));
    }
    let inventory =
        inventory.ok_or_else(|| SetupError::Inventory("GetInventory did not answer".to_owned()))?;
    SpecFactory::from_inventory(inventory, &kinds, options)
}

/// Runs every check against the driver behind `client`.
pub async fn run(client: DriverClient<Channel>, options: &Options) -> Report {
    let probe = Probe::new(client, options.call_timeout);
    let mut report = Report::default();

    let started = Instant::now();
    let (info, outcome) = checks::info(&probe, names::INFO).await;
    report.checks.push(verdict(names::INFO, started, outcome));

    let started = Instant::now();
    let (inventory, outcome) = checks::inventory(&probe, names::INVENTORY_CONSISTENT).await;
    report
        .checks
        .push(verdict(names::INVENTORY_CONSISTENT, started, outcome));

    let factory = setup(info.as_ref(), inventory.as_ref(), options);
    for name in names::RESOURCE_CHECKS {
        let started = Instant::now();
        let result = match &factory {
            Err(e) => verdict(name, started, Err(Fail(format!("setup: {e}")))),
            Ok(factory) => {
                let ctx = Ctx::new(&probe, name, factory, options);
                let limit = options.check_timeout();
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
    report
        .checks
        .push(verdict(names::ERRORS_CARRY_REASON, started, outcome));
    if probe.transport_errors() > 0 {
        tracing::warn!(
            count = probe.transport_errors(),
            "transport errors (not sent by the driver) during the run"
        );
    }
    report
}
