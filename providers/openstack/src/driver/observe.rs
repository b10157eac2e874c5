//! Observed state by polling, into the event sink.
//!
//! Every `poll_every`:
//! - Nova: servers tagged `yunshu` changed since the last poll
//!   (`changes-since`, which also returns servers deleted meanwhile), every
//!   such server in full every [`FULL_EVERY`] polls, and each VM not yet
//!   converged read directly; a booted server not in the asked power state is
//!   stopped or started here.
//! - Neutron: networks, subnets, security groups and floating IPs tagged
//!   `yunshu`, compared by `revision_number`.
//! - Placement/Nova inventory every [`FULL_EVERY`] polls: host up/down and
//!   inventory changes.
//!
//! A resource whose OpenStack object is gone while yunshu did not delete it
//! is drift: it is dropped and reported DELETED, so the controller re-applies
//! it (a fresh server, the ports reused by name).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use serde_json::Value;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1::{self, ResourceKind as K};

use super::compute::{self, needs_power, phase_of};
use super::network::str_of;
use super::table::OsIds;
use super::{Inner, Project, TAG, now_ms, os_status};
use crate::cloud::Service;

/// Polls between full listings (and inventory reads).
const FULL_EVERY: u64 = 10;

pub fn spawn(weak: Weak<Inner>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick: u64 = 0;
        // Per project: Nova's `changes-since` is per listing, and each
        // project is listed with its own session.
        let mut since: HashMap<String, String> = HashMap::new();
        let mut hosts: HashMap<String, i32> = HashMap::new();
        let mut revision: u64 = 0;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let every = inner.config.poll_every;
            let full = tick.is_multiple_of(FULL_EVERY);
            // Side by side: one slow project does not hold up the others.
            let projects = inner.all_projects();
            let rounds = projects
                .iter()
                .map(|p| poll(p, since.get(p.key).cloned(), full));
            for (key, next) in futures::future::join_all(rounds).await {
                if let Some(next) = next {
                    since.insert(key.to_owned(), next);
                }
            }
            if full && tick > 0 {
                inventory(&inner, &mut hosts, &mut revision).await;
            }
            drop(projects);
            drop(inner);
            tick += 1;
            tokio::time::sleep(every).await;
        }
    })
}

/// One round over one project's resources; returns its key and the next
/// `changes-since` mark (none when Nova could not be listed).
async fn poll<'a>(
    project: &Project<'a>,
    since: Option<String>,
    full: bool,
) -> (&'a str, Option<String>) {
    let key = project.key;
    let tenant = (!key.is_empty()).then_some(key);
    let next = match servers(project, since.as_deref(), full).await {
        Ok(next) => Some(next),
        Err(e) => {
            tracing::warn!(error = %e.message(), tenant, "polling Nova");
            None
        }
    };
    if let Err(e) = balancers(project, full).await {
        tracing::warn!(error = %e.message(), tenant, "polling Octavia");
    }
    if let Err(e) = volumes(project, full).await {
        tracing::warn!(error = %e.message(), tenant, "polling Cinder");
    }
    if let Err(e) = neutron(project).await {
        tracing::warn!(error = %e.message(), tenant, "polling Neutron");
    }
    (key, next)
}

/// One VM as the observer sees it, copied out of the table.
struct Watched {
    id: String,
    os: OsIds,
    stopped: bool,
    /// (vCPUs, memory MiB, disk GiB) asked for.
    shape: Option<(u32, u64, u64)>,
    deleting: bool,
    converged: bool,
}

fn rfc3339_now_minus(secs: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Returns the `changes-since` mark for the next poll.
async fn servers(project: &Project<'_>, since: Option<&str>, full: bool) -> Result<String, Status> {
    // Overlap the window: Nova's timestamps are whole seconds.
    let next = rfc3339_now_minus(5);
    let started_ms = now_ms();
    let watched: Vec<Watched> = {
        let table = project.table.lock().await;
        table
            .entries()
            .filter(|(k, e)| *k == K::Vm && e.project == project.key)
            .map(|(_, e)| Watched {
                id: e.request.id.clone(),
                os: e.os.clone(),
                stopped: matches!(e.spec(), Some(v1::resource_spec::Spec::Vm(v)) if v.stopped),
                shape: match e.spec() {
                    Some(v1::resource_spec::Spec::Vm(v)) => Some((
                        v.vcpu,
                        v.memory_mib,
                        v.system_disk.as_ref().map_or(0, |d| d.size_gib),
                    )),
                    _ => None,
                },
                deleting: e.deleting,
                converged: e.state.observed_generation == e.state.generation,
            })
            .collect()
    };
    if watched.is_empty() {
        return Ok(next);
    }
    let path = match since {
        Some(s) if !full => format!("servers/detail?tags={TAG}&changes-since={s}"),
        _ => format!("servers/detail?tags={TAG}"),
    };
    let listed = project
        .cloud
        .get(Service::Compute, &path)
        .await
        .map_err(|e| os_status("listing servers", &e))?;
    let mut seen: HashMap<String, Value> = HashMap::new();
    for s in listed
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = str_of(s, "id") {
            seen.insert(id, s.clone());
        }
    }
    for w in watched {
        if w.os.id.is_empty() {
            continue;
        }
        let server = match seen.get(&w.os.id) {
            Some(s) => Some(s.clone()),
            // Unchanged servers are not in an incremental listing: read
            // those still converging (or deleting) directly.
            None if !full && (w.converged && !w.deleting) => continue,
            None if !full => match project
                .cloud
                .get(Service::Compute, &format!("servers/{}", w.os.id))
                .await
            {
                Ok(v) => v.get("server").cloned(),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(os_status("reading a server", &e)),
            },
            None => None,
        };
        let gone = server.as_ref().is_none_or(|s| {
            matches!(
                s.get("status").and_then(Value::as_str),
                Some("DELETED") | Some("SOFT_DELETED")
            )
        });
        if gone {
            if w.deleting {
                // Nova has let go of the ports now.
                if let Err(e) = compute::delete_ports(project, &w.os).await {
                    tracing::warn!(vm = %w.id, error = %e.message(), "deleting ports; retried next poll");
                    continue;
                }
            }
            forget(project, K::Vm, &w.id, &w.os.id, started_ms, w.deleting).await;
            continue;
        }
        let Some(server) = server else { continue };
        if !w.deleting
            && needs_power(&server, w.stopped)
            && server
                .get("OS-EXT-STS:task_state")
                .and_then(Value::as_str)
                .is_none()
            && let Err(e) = compute::power(project, &w.os.id, w.stopped).await
        {
            tracing::warn!(vm = %w.id, error = %e.message(), "powering");
        }
        let status = server.get("status").and_then(Value::as_str).unwrap_or("");
        let idle = server
            .get("OS-EXT-STS:task_state")
            .and_then(Value::as_str)
            .is_none();
        if !w.deleting
            && status == "VERIFY_RESIZE"
            && idle
            && let Err(e) = compute::confirm_resize(project, &w.os.id).await
        {
            tracing::warn!(vm = %w.id, error = %e.message(), "confirming the resize");
        }
        if w.deleting {
            continue;
        }
        let (mut phase, mut message) = phase_of(&server, w.stopped);
        if w.shape.is_some() && compute::shape(&server) != w.shape {
            if idle && matches!(status, "ACTIVE" | "SHUTOFF") {
                // Nova put it back at its old size: the resize failed.
                phase = v1::Phase::Failed;
                message = server
                    .get("fault")
                    .and_then(|f| str_of(f, "message"))
                    .map_or_else(
                        || "Nova did not resize the server (see its instance actions)".to_owned(),
                        |m| format!("Nova did not resize the server: {m}"),
                    );
            } else {
                message = format!("resizing (Nova: {status})");
            }
        }
        let converged =
            message.is_empty() && matches!(phase, v1::Phase::Running | v1::Phase::Stopped);
        let mut table = project.table.lock().await;
        let Some(e) = table.get_mut(K::Vm, &w.id) else {
            continue;
        };
        if e.os.id != w.os.id || e.deleting {
            continue;
        }
        // The spec may have moved on since this poll read it.
        let stopped_now = matches!(e.spec(), Some(v1::resource_spec::Spec::Vm(v)) if v.stopped);
        if stopped_now != w.stopped {
            continue;
        }
        let observed = if converged || phase == v1::Phase::Failed {
            e.state.generation
        } else {
            e.state.observed_generation
        };
        if e.state.phase != phase as i32
            || e.state.message != message
            || e.state.observed_generation != observed
        {
            e.state.phase = phase as i32;
            e.state.message = message;
            e.state.observed_generation = observed;
            e.state.updated_unix_ms = now_ms();
            project
                .events
                .resource(v1::ChangeType::Updated, e.state.clone());
        }
    }
    Ok(next)
}

/// Drops a resource whose OpenStack object is gone and reports it DELETED,
/// unless it changed after the listing that missed it began.
async fn forget(inner: &Inner, kind: K, id: &str, os_id: &str, listed_ms: i64, deleting: bool) {
    let mut table = inner.table.lock().await;
    let Some(e) = table.get(kind, id) else { return };
    if e.os.id != os_id || (e.state.updated_unix_ms > listed_ms && !deleting) {
        return;
    }
    if !e.deleting {
        tracing::warn!(kind = ?kind, id, os_id, "deleted in OpenStack behind yunshu's back; reported gone");
    }
    if let Some(mut e) = table.remove(kind, id) {
        e.state.phase = v1::Phase::Deleted as i32;
        e.state.message = if e.deleting {
            String::new()
        } else {
            "deleted in OpenStack, not by yunshu".to_owned()
        };
        e.state.updated_unix_ms = now_ms();
        inner.events.resource(v1::ChangeType::Deleted, e.state);
    }
}

/// Cinder volumes still converging or deleting (all of them on a full
/// poll): one attach/detach/delete step each.
async fn volumes(project: &Project<'_>, full: bool) -> Result<(), Status> {
    let started_ms = now_ms();
    let watched: Vec<(String, OsIds, bool, bool)> = {
        let table = project.table.lock().await;
        table
            .entries()
            .filter(|(k, e)| *k == K::Volume && e.project == project.key)
            .map(|(_, e)| {
                (
                    e.request.id.clone(),
                    e.os.clone(),
                    e.deleting,
                    e.state.observed_generation == e.state.generation,
                )
            })
            .filter(|(_, _, deleting, converged)| full || *deleting || !*converged)
            .collect()
    };
    for (id, os, deleting, _) in watched {
        if deleting {
            if super::volumes::delete_step(project, &os.id).await? {
                forget(project, K::Volume, &id, &os.id, started_ms, true).await;
            }
            continue;
        }
        let vol = match project
            .cloud
            .get(Service::Volume, &format!("volumes/{}", os.id))
            .await
        {
            Ok(v) => v.get("volume").cloned().unwrap_or(Value::Null),
            Err(e) if e.is_not_found() => {
                forget(project, K::Volume, &id, &os.id, started_ms, false).await;
                continue;
            }
            Err(e) => return Err(os_status("reading a volume", &e)),
        };
        let want = (!os.router.is_empty()).then_some(os.router.as_str());
        let (phase, message) = super::volumes::converge(project, &vol, want).await?;
        let mut table = project.table.lock().await;
        let Some(e) = table.get_mut(K::Volume, &id) else {
            continue;
        };
        if e.os.id != os.id || e.os.router != os.router || e.deleting {
            continue;
        }
        let observed = if matches!(phase, v1::Phase::Running | v1::Phase::Failed) {
            e.state.generation
        } else {
            e.state.observed_generation
        };
        if e.state.phase != phase as i32
            || e.state.message != message
            || e.state.observed_generation != observed
        {
            e.state.phase = phase as i32;
            e.state.message = message;
            e.state.observed_generation = observed;
            e.state.updated_unix_ms = now_ms();
            project
                .events
                .resource(v1::ChangeType::Updated, e.state.clone());
        }
    }
    Ok(())
}

/// Octavia load balancers still provisioning or deleting (all of them on a
/// full poll).
async fn balancers(project: &Project<'_>, full: bool) -> Result<(), Status> {
    let started_ms = now_ms();
    let watched: Vec<(String, OsIds, bool)> = {
        let table = project.table.lock().await;
        table
            .entries()
            .filter(|(k, e)| {
                *k == K::LoadBalancer
                    && e.project == project.key
                    && (full || e.deleting || e.state.observed_generation != e.state.generation)
            })
            .map(|(_, e)| (e.request.id.clone(), e.os.clone(), e.deleting))
            .collect()
    };
    for (id, os, deleting) in watched {
        let found = match project
            .cloud
            .get(
                Service::LoadBalancer,
                &format!("lbaas/loadbalancers/{}", os.id),
            )
            .await
        {
            Ok(v) => Some(v["loadbalancer"].clone()),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(os_status("reading a load balancer", &e)),
        };
        let phase = found
            .as_ref()
            .map_or(v1::Phase::Deleted, super::balancers::phase_of);
        if deleting || found.is_none() {
            if phase == v1::Phase::Deleted {
                // A balancer yunshu deleted leaves the VIP port the driver
                // made; one deleted behind its back keeps it for re-creation.
                if deleting && let Err(e) = super::balancers::delete_vip_port(project, &id).await {
                    tracing::warn!(lb = %id, error = %e.message(), "deleting the VIP port; retried next poll");
                    continue;
                }
                forget(project, K::LoadBalancer, &id, &os.id, started_ms, deleting).await;
            }
            continue;
        }
        let mut table = project.table.lock().await;
        let Some(e) = table.get_mut(K::LoadBalancer, &id) else {
            continue;
        };
        if e.os.id != os.id || e.deleting {
            continue;
        }
        let observed = if matches!(phase, v1::Phase::Running | v1::Phase::Failed) {
            e.state.generation
        } else {
            e.state.observed_generation
        };
        // A note about members left out stays; Octavia's progress does not.
        let message = if e.state.message.starts_with("Octavia:") || phase == v1::Phase::Failed {
            match phase {
                v1::Phase::Running => String::new(),
                v1::Phase::Failed => "Octavia put the load balancer in ERROR".to_owned(),
                _ => e.state.message.clone(),
            }
        } else {
            e.state.message.clone()
        };
        if e.state.phase != phase as i32
            || e.state.observed_generation != observed
            || e.state.message != message
        {
            e.state.phase = phase as i32;
            e.state.observed_generation = observed;
            e.state.message = message;
            e.state.updated_unix_ms = now_ms();
            project
                .events
                .resource(v1::ChangeType::Updated, e.state.clone());
        }
    }
    Ok(())
}

/// Neutron objects by `revision_number`.
async fn neutron(project: &Project<'_>) -> Result<(), Status> {
    let started_ms = now_ms();
    let watched: Vec<(K, String, OsIds)> = {
        let table = project.table.lock().await;
        table
            .entries()
            .filter(|(k, e)| {
                matches!(k, K::Vpc | K::Subnet | K::SecurityGroup | K::Eip)
                    && !e.deleting
                    && e.project == project.key
            })
            .map(|(k, e)| (k, e.request.id.clone(), e.os.clone()))
            .collect()
    };
    if watched.is_empty() {
        return Ok(());
    }
    let mut revisions: HashMap<String, i64> = HashMap::new();
    for (collection, key) in [
        ("networks", "networks"),
        ("subnets", "subnets"),
        ("security-groups", "security_groups"),
        ("floatingips", "floatingips"),
    ] {
        let v = project
            .cloud
            .get(Service::Network, &format!("{collection}?tags={TAG}"))
            .await
            .map_err(|e| os_status(&format!("listing {collection}"), &e))?;
        for o in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = str_of(o, "id") {
                revisions.insert(
                    id,
                    o.get("revision_number")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                );
            }
        }
    }
    for (kind, id, os) in watched {
        if os.id.is_empty() {
            continue;
        }
        match revisions.get(&os.id) {
            None => forget(project, kind, &id, &os.id, started_ms, false).await,
            Some(rev) if *rev != os.revision => {
                let mut table = project.table.lock().await;
                if let Some(e) = table.get_mut(kind, &id)
                    && e.os.id == os.id
                    && !e.deleting
                {
                    e.os.revision = *rev;
                    e.state.updated_unix_ms = now_ms();
                    project
                        .events
                        .resource(v1::ChangeType::Updated, e.state.clone());
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Host up/down and inventory revision changes.
async fn inventory(inner: &Arc<Inner>, hosts: &mut HashMap<String, i32>, revision: &mut u64) {
    let snap = match inner.refresh_snapshot().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e.message(), "reading the inventory");
            return;
        }
    };
    for h in &snap.inventory.hosts {
        if hosts.insert(h.id.clone(), h.state) != Some(h.state) && *revision != 0 {
            inner.events.host(
                &h.id,
                v1::HostState::try_from(h.state).unwrap_or(v1::HostState::Unspecified),
            );
        }
    }
    if snap.inventory.revision != *revision {
        if *revision != 0 {
            inner.events.inventory(snap.inventory.revision);
        }
        *revision = snap.inventory.revision;
    }
}
