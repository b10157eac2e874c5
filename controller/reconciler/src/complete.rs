//! Order completion: when every resource an approved onboarding order asks
//! for runs at its desired generation, the provider's step is done and the order moves to
//! `test_env_ready` (000 art. 13; 002 art. 10); when an approved exit order's
//! system has nothing left, it moves to `exited` (000 art. 16; 002 art. 13),
//! and an exited onboarding order's reclaim step is recorded as done.
//! The move goes through the workflow like any other, as the system actor
//! `reconciler`, so it is audited and starts the next step's deadline.
//!
//! Must not decide quantities (`desired.rs`) or call drivers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use yunshu_auth::Principal;
use yunshu_domain::UserId;
use yunshu_domain::order::{OrderKind, OrderState, WorkOrder};
use yunshu_domain::resource::{Phase, Resource, ResourceKind};
use yunshu_domain::user::{Permission, Role, RoleBinding, RoleBindingFields, Scope};
use yunshu_store::records;
use yunshu_workflow::orders;
use yunshu_workflow::resources::StatusRecord;

use super::{ReconcileError, Reconciler, materialize};

/// How often approved orders are checked.
const EVERY: Duration = Duration::from_millis(250);

/// The reconciler as a caller of the workflow: it may read orders and record
/// the provider's steps (the approver's `order_approve` on those steps only).
fn principal() -> Result<Principal, ReconcileError> {
    let invalid = |e: &dyn std::fmt::Display| ReconcileError::Invalid(e.to_string());
    let binding = RoleBinding::new(RoleBindingFields {
        id: "reconciler.system".parse().map_err(|e| invalid(&e))?,
        user: UserId::new("reconciler").map_err(|e| invalid(&e))?,
        role: Role::Approver,
        scope: Scope::Platform,
        permissions: Some([Permission::OrderRead, Permission::OrderApprove].into()),
        granted_by: super::actor(),
        granted_at: Utc::now(),
    })
    .map_err(|e| invalid(&e))?;
    Ok(Principal {
        actor: super::actor(),
        user: None,
        tenant: None,
        bindings: vec![binding],
        scopes: None,
        token_expires_at: None,
        org: Default::default(),
    })
}

pub(super) async fn run(r: Arc<Reconciler>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = pass(&r).await {
            tracing::warn!(error = %e, "order completion pass failed");
        }
    }
}

/// One pass; returns the orders moved.
pub async fn pass(r: &Reconciler) -> Result<usize, ReconcileError> {
    let caller = principal()?;
    let approved = r.book.lock().unwrap_or_else(|e| e.into_inner()).approved();
    let mut moved = 0;
    for id in approved {
        let Some((order, _)) = records::get::<WorkOrder>(&*r.store, id.as_str()).await? else {
            continue;
        };
        if order.kind() == OrderKind::Onboarding && order.state() == OrderState::Exited {
            moved += usize::from(onboarding_reclaim(r, &caller, &order).await?);
            continue;
        }
        if order.state() != OrderState::Approved {
            continue;
        }
        let to = match order.kind() {
            OrderKind::Onboarding if provisioned(r, &order).await? => OrderState::TestEnvReady,
            OrderKind::Exit if reclaimed(r, &order).await? => OrderState::Exited,
            _ => continue,
        };
        match orders::order_transition(
            &*r.store,
            &caller,
            order.id().as_str(),
            to,
            None,
            Utc::now(),
        )
        .await
        {
            Ok(_) => {
                moved += 1;
                tracing::info!(order = %order.id(), %to, "order moved by the reconciler");
            }
            // Someone moved it first, or it changed: the next pass sees it.
            Err(e) => tracing::debug!(order = %order.id(), error = %e, "order not moved"),
        }
    }
    Ok(moved)
}

/// The onboarding order's own exit (000 art. 16, 002 art. 13): once the
/// system has nothing left, its `exit_reclaim` step is recorded as done and
/// the order leaves the candidates; one whose reclaim is not timed leaves at
/// once.
async fn onboarding_reclaim(
    r: &Reconciler,
    caller: &Principal,
    order: &WorkOrder,
) -> Result<bool, ReconcileError> {
    let id = order.id();
    let waits = match orders::order_get(&*r.store, caller, id.as_str()).await {
        Ok(loaded) => yunshu_workflow::reclaim::waits(&loaded),
        Err(e) => {
            tracing::debug!(order = %id, error = %e, "exited order not read");
            return Ok(false);
        }
    };
    if waits && !reclaimed(r, order).await? {
        return Ok(false);
    }
    let done = if waits {
        match yunshu_workflow::reclaim::finish(&*r.store, caller, id.as_str(), Utc::now()).await {
            Ok(done) => done,
            // Someone changed it first: the next pass sees it.
            Err(e) => {
                tracing::debug!(order = %id, error = %e, "reclaim not recorded");
                return Ok(false);
            }
        }
    } else {
        false
    };
    if done {
        tracing::info!(order = %id, "onboarding exit reclaimed");
    }
    r.book.lock().unwrap_or_else(|e| e.into_inner()).settle(id);
    Ok(done)
}

/// Whether every resource `order` asked for — of every kind, as the system's
/// orders want them now (a later change counts) — runs at its desired
/// generation. An order with nothing of its own wanted, or with an item that
/// resolves to nothing, is not done: it never borrows another order's
/// running servers.
async fn provisioned(r: &Reconciler, order: &WorkOrder) -> Result<bool, ReconcileError> {
    let system = order.system();
    let now = Utc::now();
    let asks = materialize::Asks::read(r, system, now).await?;
    let existing = materialize::resources_of(r, system).await?;
    let main = materialize::main_site(system, &existing);
    let d = asks.desired(
        system,
        now,
        main.as_ref().map(|m| &m.zone),
        &materialize::placed_zones(&existing),
    );
    if let Some(p) = d.problems.iter().find(|p| &p.order == order.id()) {
        tracing::debug!(order = %order.id(), problem = ?p, "order not provisioned: a problem");
        return Ok(false);
    }
    let mine: Vec<&yunshu_domain::ResourceId> = d
        .wants
        .iter()
        .filter(|(_, w)| &w.order == order.id())
        .map(|(id, _)| id)
        .collect();
    if mine.is_empty() {
        return Ok(false);
    }
    for id in mine {
        let Some((res, _)) = records::get::<Resource>(&*r.store, id.as_str()).await? else {
            tracing::debug!(order = %order.id(), resource = %id, "order not provisioned: not materialized");
            return Ok(false);
        };
        let Some((st, _)) = records::get::<StatusRecord>(&*r.store, id.as_str()).await? else {
            tracing::debug!(order = %order.id(), resource = %id, "order not provisioned: no status");
            return Ok(false);
        };
        if st.status.phase != super::worker::settled_phase(&res)
            || st.status.observed_generation != res.generation()
        {
            tracing::debug!(
                order = %order.id(),
                resource = %id,
                phase = ?st.status.phase,
                observed = st.status.observed_generation,
                generation = res.generation(),
                "order not provisioned: not running at its generation"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the service of an exit order's system is terminated (000 art. 16
/// "收回云资源"; 002 art. 13 "终止有关服务"): nothing is still being deleted and
/// every server is observed powered off at the generation that asked for it.
/// Under a policy that keeps the data (002 art. 13) that is the servers off
/// with everything else kept — the retention starts when the order moves to
/// `exited`, the purge removes the rest; under one that keeps nothing (000
/// art. 16, Beijing) every resource was asked to go, so it means the system
/// has nothing left.
async fn reclaimed(r: &Reconciler, order: &WorkOrder) -> Result<bool, ReconcileError> {
    let existing = materialize::resources_of(r, order.system()).await?;
    let orders = r.orders_of(order.system()).await?;
    if !materialize::exit_keeps_data(r, &orders).await? {
        return Ok(existing.is_empty());
    }
    for (res, _) in existing {
        if res.deletion_requested_at().is_some() {
            return Ok(false);
        }
        if !matches!(res.kind(), ResourceKind::Vm | ResourceKind::BareMetal) {
            continue;
        }
        if !res.spec().stopped() {
            return Ok(false);
        }
        let Some((st, _)) = records::get::<StatusRecord>(&*r.store, res.id().as_str()).await?
        else {
            return Ok(false);
        };
        if st.status.phase != Phase::Stopped || st.status.observed_generation != res.generation() {
            return Ok(false);
        }
    }
    Ok(true)
}
