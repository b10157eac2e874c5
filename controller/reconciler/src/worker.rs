//! One resource at a time: make the driver agree with the stored intent.
//!
//! - Placed and wanted: `Apply` with the idempotency key `<id>@<generation>`,
//!   so a retry after a crash or a timeout never creates a second thing; the
//!   driver's answer is the observed status.
//! - Deletion requested: `Delete`; once the driver has nothing left, the record
//!   goes and the capacity is released.
//!
//! Retryable driver errors (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
//! RESOURCE_EXHAUSTED) come back with backoff; terminal ones mark the resource
//! Failed with the driver's reason. Must not decide what should exist
//! (`materialize.rs` does).

use chrono::Utc;
use yunshu_domain::ResourceId;
use yunshu_domain::resource::{Phase, Resource, ResourceSpec, ResourceStatus};
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
    yunshu_proto::errors::is_retryable(code) || code == Code::ResourceExhausted
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

fn wire_spec(res: &Resource) -> Option<v1::ResourceSpec> {
    let ResourceSpec::Vm(vm) = res.spec() else {
        return None;
    };
    Some(v1::ResourceSpec {
        spec: Some(v1::resource_spec::Spec::Vm(v1::VmSpec {
            arch: yunshu_proto::convert::arch_to_wire(vm.arch) as i32,
            vcpu: vm.vcpu.get(),
            memory_mib: vm.memory_mib.get(),
            system_disk: Some(v1::Disk {
                size_gib: u64::from(vm.system_disk_gib.get()),
                storage_class: vm
                    .system_disk_class
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
            data_disks: vm
                .data_disks
                .iter()
                .map(|d| v1::Disk {
                    size_gib: u64::from(d.size_gib.get()),
                    storage_class: d.storage_class.to_string(),
                })
                .collect(),
            image: vm.image.to_string(),
            nics: Vec::new(),
            security_groups: Vec::new(),
        })),
    })
}

fn wire_placement(res: &Resource) -> Option<v1::Placement> {
    res.placement().map(|p| v1::Placement {
        zone: p.zone.to_string(),
        network_area: p
            .network_area
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        pool: p.pool.as_ref().map(ToString::to_string).unwrap_or_default(),
        host: p.host.as_ref().map(ToString::to_string).unwrap_or_default(),
    })
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
                .release(id);
            r.capacity.changed();
            r.status.delete(id.clone()).await;
            // New members of the system may have waited for this one to go.
            r.systems
                .add(res.system().clone(), super::queue::Priority::Fresh);
            return Ok(Turn::Converged);
        }
        return Err(ReconcileError::Conflict);
    }
    let Some(spec) = wire_spec(&res) else {
        return Ok(Turn::Converged);
    };
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
                if phase_from_wire(state.phase) == Phase::Running
                    && state.observed_generation == res.generation()
                {
                    // Record it unless already on record (an Apply answer lost
                    // in a crash leaves the status behind the driver).
                    let recorded = records::get::<StatusRecord>(&*r.store, id.as_str())
                        .await?
                        .is_some_and(|(st, _)| {
                            st.status.phase == Phase::Running
                                && st.status.observed_generation == res.generation()
                        });
                    if !recorded {
                        r.status
                            .put(StatusRecord {
                                id: id.clone(),
                                status: ResourceStatus {
                                    phase: Phase::Running,
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
                tracing::warn!(resource = %id, "drift: gone from the driver; re-creating");
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
        placement: wire_placement(&res),
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
                Phase::Running if observed == res.generation() => Turn::Converged,
                Phase::Failed => Turn::Failed,
                _ => Turn::Pending,
            })
        }
        Err(s) if retryable(s.code()) => Err(call_failed(r, &provider, s)),
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
