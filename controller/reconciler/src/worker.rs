//! One resource at a time: make the driver agree with the stored intent.
//!
//! - Placed and wanted: `Apply` with the idempotency key `<id>@<generation>`,
//!   so a retry after a crash or a timeout never creates a second thing; the
//!   driver's answer is the observed status.
//! - Deletion requested: `Delete`; once the driver has nothing left, the record
//!   goes and the capacity is released.
//!
//! Retryable driver errors (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
//! RESOURCE_EXHAUSTED, CANCELLED) come back with backoff; terminal ones mark the resource
//! Failed with the driver's reason. Must not decide what should exist
//! (`materialize.rs` does).

use chrono::Utc;
use yunshu_domain::ResourceId;
use yunshu_domain::resource::{Phase, Resource, ResourceStatus};
use yunshu_proto::errors::reasons;
use yunshu_proto::tonic::Code;
use yunshu_proto::v1;
use yunshu_store::{Txn, records};
use yunshu_workflow::resources::StatusRecord;

use super::{ReconcileError, Reconciler};

/// What became of one turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// The driver agrees; nothing to do until something changes.
    Converged,
    /// Still moving (provisioning, deleting): look again soon.
    Pending,
    /// The driver refused for good; the resource is marked Failed.
    Failed,
}

/// The protocol's retryable codes (proto/README.md), plus RESOURCE_EXHAUSTED:
/// a driver's rate limit passes with time.
fn retryable(code: Code) -> bool {
    // CANCELLED: the call was abandoned (this side shutting down, a dropped
    // connection), not refused by the driver.
    yunshu_proto::errors::is_retryable(code)
        || matches!(code, Code::ResourceExhausted | Code::Cancelled)
}

pub(super) fn phase_from_wire(p: i32) -> Phase {
    match v1::Phase::try_from(p) {
        Ok(v1::Phase::Provisioning) => Phase::Provisioning,
        Ok(v1::Phase::Running) => Phase::Running,
        Ok(v1::Phase::Stopped) => Phase::Stopped,
        Ok(v1::Phase::Failed) => Phase::Failed,
        Ok(v1::Phase::Deleting) => Phase::Deleting,
        Ok(v1::Phase::Deleted) => Phase::Deleted,
        _ => Phase::Pending,
    }
}

async fn report(
    r: &Reconciler,
    res: &Resource,
    phase: Phase,
    message: Option<String>,
    observed: u64,
) {
    r.status
        .put(StatusRecord {
            id: res.id().clone(),
            status: ResourceStatus {
                phase,
                message,
                observed_generation: observed,
            },
            outputs: Default::default(),
            observed_at: Utc::now(),
        })
        .await;
}

/// One turn for `id`. A `resync` turn of a resource last seen converged reads
/// it back with `Get` first: the driver's idempotency cache would answer a
/// repeated `Apply` from memory, so only a read shows drift (gone, stopped,
/// older generation), which is then corrected with an `Apply` under a fresh
/// key.
pub async fn turn(r: &Reconciler, id: &ResourceId, resync: bool) -> Result<Turn, ReconcileError> {
    let Some((res, rev)) = records::get::<Resource>(&*r.store, id.as_str()).await? else {
        // Gone (deleted by an earlier turn): make sure nothing is held for it.
        let released = r
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(id);
        if released.is_some() {
            r.capacity.changed();
        }
        return Ok(Turn::Converged);
    };
    let Some(placement) = res.placement() else {
        // Not placed yet: the materializer's business.
        return Ok(Turn::Converged);
    };
    let provider = placement.provider.to_string();
    let mut client = r.providers.client(&provider).await?;
    let kind = yunshu_proto::convert::kind_to_wire(res.kind()) as i32;
    if res.deletion_requested_at().is_some() {
        // Delete in reverse order: never while a stored resource still names
        // this one (it is deleted, or changed to drop the name, first).
        let users = r.refs.lock().unwrap_or_else(|e| e.into_inner()).users(id);
        if let Some(user) = users.first() {
            tracing::debug!(resource = %id, %user, "deletion waits for what names it");
            return Ok(Turn::Pending);
        }
        let answer = client
            .delete(v1::DeleteRequest {
                kind,
                id: id.to_string(),
            })
            .await;
        let done = match answer {
            Ok(a) => {
                let a = a.into_inner();
                !a.existed
                    || a.state
                        .as_ref()
                        .is_some_and(|s| phase_from_wire(s.phase) == Phase::Deleted)
            }
            Err(s) if s.code() == Code::NotFound => true,
            // The driver still sees a reference (an update dropping it is not
            // applied yet): wait, it is not a failure.
            Err(s) if has_reason(&s, reasons::RESOURCE_IN_USE) => return Ok(Turn::Pending),
            Err(s) => return Err(call_failed(r, &provider, s)),
        };
        if !done {
            report(r, &res, Phase::Deleting, None, res.generation()).await;
            return Ok(Turn::Pending);
        }
        let key = records::key::<Resource>(id.as_str());
        let txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
        if r.store.txn(txn).await?.is_committed() {
            r.index
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release_any(id);
            r.capacity.changed();
            // What this one named may be waiting to be deleted after it.
            let named = r.refs.lock().unwrap_or_else(|e| e.into_inner()).forget(id);
            for n in named {
                r.resources.add(n, super::queue::Priority::Fresh);
            }
            r.status.delete(id.clone()).await;
            // New members of the system may have waited for this one to go.
            r.systems
                .add(res.system().clone(), super::queue::Priority::Fresh);
            return Ok(Turn::Converged);
        }
        return Err(ReconcileError::Conflict);
    }
    // Create in dependency order: everything the spec names must exist and
    // run at its own generation first (the driver would refuse it anyway).
    if let Some(dep) = first_unready(r, &res).await? {
        let never_applied = records::get::<StatusRecord>(&*r.store, id.as_str())
            .await?
            .is_none_or(|(st, _)| st.status.observed_generation == 0);
        if never_applied {
            report(
                r,
                &res,
                Phase::Pending,
                Some(format!("waiting for {dep}")),
                0,
            )
            .await;
        }
        return Ok(Turn::Pending);
    }
    let spec = super::wire::spec(&res);
    let mut key = format!("{}@{}", id, res.generation());
    if resync {
        match client
            .get(v1::GetRequest {
                kind,
                id: id.to_string(),
            })
            .await
        {
            Ok(state) => {
                let state = state.into_inner();
                let settled = settled_phase(&res);
                if phase_from_wire(state.phase) == settled
                    && state.observed_generation == res.generation()
                {
                    // Record it unless already on record (an Apply answer lost
                    // in a crash leaves the status behind the driver).
                    let recorded = records::get::<StatusRecord>(&*r.store, id.as_str())
                        .await?
                        .is_some_and(|(st, _)| {
                            st.status.phase == settled
                                && st.status.observed_generation == res.generation()
                        });
                    if !recorded {
                        r.status
                            .put(StatusRecord {
                                id: id.clone(),
                                status: ResourceStatus {
                                    phase: settled,
                                    message: None,
                                    observed_generation: res.generation(),
                                },
                                outputs: state.outputs.into_iter().collect(),
                                observed_at: Utc::now(),
                            })
                            .await;
                    }
                    return Ok(Turn::Converged);
                }
                tracing::warn!(resource = %id, phase = state.phase, "drift: re-applying");
            }
            Err(s) if s.code() == Code::NotFound => {
                // Never seen by the driver (a crash between the intent and
                // the first Apply) is not drift, just work still to do.
                let seen = records::get::<StatusRecord>(&*r.store, id.as_str())
                    .await?
                    .is_some_and(|(st, _)| st.status.observed_generation > 0);
                if seen {
                    tracing::warn!(resource = %id, "drift: gone from the driver; re-creating");
                } else {
                    tracing::debug!(resource = %id, "not created yet; applying");
                }
            }
            Err(s) => return Err(call_failed(r, &provider, s)),
        }
        // A new key, so the driver evaluates the spec again instead of replaying.
        key = format!("{key}-r{}", Utc::now().timestamp_millis());
    }
    let request = v1::ApplyRequest {
        kind,
        id: id.to_string(),
        generation: res.generation(),
        idempotency_key: key,
        spec: Some(spec),
        placement: super::wire::placement(&res),
        tenant: res.tenant().to_string(),
    };
    match client.apply(request).await {
        Ok(a) => {
            let state = a.into_inner().state.unwrap_or_default();
            let phase = phase_from_wire(state.phase);
            let observed = state.observed_generation.min(res.generation());
            let message = (!state.message.is_empty()).then_some(state.message);
            r.status
                .put(StatusRecord {
                    id: id.clone(),
                    status: ResourceStatus {
                        phase,
                        message,
                        observed_generation: observed,
                    },
                    outputs: state.outputs.into_iter().collect(),
                    observed_at: Utc::now(),
                })
                .await;
            Ok(match phase {
                p if p == settled_phase(&res) && observed == res.generation() => {
                    r.wake_users_when_recorded(id).await;
                    Turn::Converged
                }
                Phase::Failed => Turn::Failed,
                _ => Turn::Pending,
            })
        }
        Err(s) if retryable(s.code()) => {
            note_retry(r, &res, &s).await;
            Err(call_failed(r, &provider, s))
        }
        // Something it names is not there yet (or went): wait for it.
        Err(s) if has_reason(&s, reasons::DEPENDENCY_NOT_FOUND) => Ok(Turn::Pending),
        Err(s) => {
            let reason = yunshu_proto::errors::reason(&s)
                .map(|i| i.reason)
                .unwrap_or_default();
            report(
                r,
                &res,
                Phase::Failed,
                Some(format!("{reason} {}", s.message()).trim().to_owned()),
                res.status().observed_generation,
            )
            .await;
            tracing::warn!(resource = %id, code = ?s.code(), %reason, "driver refused the resource");
            Ok(Turn::Failed)
        }
    }
}

/// Shows a retryable refusal on the resource while it is retried — out of
/// something that may come back (RESOURCE_EXHAUSTED), the cloud busy or
/// unreachable (UNAVAILABLE) — so the order page says what it waits for
/// instead of an older "waiting for …". Phase, generation and outputs stay
/// as last observed (a running balancer being changed keeps its address);
/// the status writer skips a repeat of what it last wrote.
async fn note_retry(r: &Reconciler, res: &Resource, s: &yunshu_proto::tonic::Status) {
    let reason = yunshu_proto::errors::reason(s)
        .map(|i| i.reason)
        .unwrap_or_else(|| format!("{:?}", s.code()).to_uppercase());
    let message = format!("{reason} {}", s.message()).trim().to_owned();
    let prior = records::get::<StatusRecord>(&*r.store, res.id().as_str())
        .await
        .ok()
        .flatten()
        .map(|(st, _)| st);
    let record = match prior {
        Some(p) => StatusRecord {
            status: ResourceStatus {
                message: Some(message),
                ..p.status
            },
            ..p
        },
        None => StatusRecord {
            id: res.id().clone(),
            status: ResourceStatus {
                phase: Phase::Pending,
                message: Some(message),
                observed_generation: 0,
            },
            outputs: Default::default(),
            observed_at: Utc::now(),
        },
    };
    r.status.put(record).await;
}

fn has_reason(s: &yunshu_proto::tonic::Status, reason: &str) -> bool {
    s.code() == Code::FailedPrecondition
        && yunshu_proto::errors::reason(s).is_some_and(|i| i.reason == reason)
}

/// The first resource `res` names that does not run at its own generation
/// yet (missing, being deleted, or not converged); `None` when all do.
async fn first_unready(
    r: &Reconciler,
    res: &Resource,
) -> Result<Option<ResourceId>, ReconcileError> {
    for dep in res.spec().references() {
        if dep == res.id() {
            continue;
        }
        let Some((d, _)) = records::get::<Resource>(&*r.store, dep.as_str()).await? else {
            return Ok(Some(dep.clone()));
        };
        if d.deletion_requested_at().is_some() {
            return Ok(Some(dep.clone()));
        }
        let running = records::get::<StatusRecord>(&*r.store, dep.as_str())
            .await?
            .is_some_and(|(st, _)| {
                st.status.phase == settled_phase(&d)
                    && st.status.observed_generation == d.generation()
            });
        if !running {
            return Ok(Some(dep.clone()));
        }
    }
    Ok(None)
}

fn call_failed(r: &Reconciler, provider: &str, s: yunshu_proto::tonic::Status) -> ReconcileError {
    if s.code() == Code::Unavailable {
        // The connection may be stale (driver restarted elsewhere): re-dial.
        r.providers.forget(provider);
    }
    ReconcileError::Driver(s)
}

/// For tests and the API: the status record of `id`.
pub async fn status_of(
    r: &Reconciler,
    id: &ResourceId,
) -> Result<Option<StatusRecord>, ReconcileError> {
    Ok(records::get::<StatusRecord>(&*r.store, id.as_str())
        .await?
        .map(|(s, _)| s))
}

/// The phase a resource shows once it is what its spec asks: a server asked
/// to be powered off (002 art. 13, 14) shows `stopped`, everything else
/// `running`. A stopped server is settled, not waiting: what names it (its
/// volumes, addresses, backups) may go ahead.
pub(crate) fn settled_phase(res: &Resource) -> Phase {
    if res.spec().stopped() {
        Phase::Stopped
    } else {
        Phase::Running
    }
}
