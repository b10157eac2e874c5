//! VMs as Nova servers.
//!
//! A VM is a server `ys-<id>` (tag `yunshu`, metadata `yunshu_id`) on one
//! Neutron port per NIC (`ys-<id>-<n>`, in the NIC's subnet, with the VM's
//! security groups), booted from a flavor with exactly the order's vCPUs,
//! memory and system disk — found, or made as `ys-<vcpu>c<mem>m<disk>g` with
//! the operator's session — and the Glance image the order's image maps to.
//! Power (`stopped`) is converged by the observer once the server has booted.

use std::collections::HashMap;

use serde_json::{Value, json};
use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;

use super::network::str_of;
use super::table::{Deps, OsIds};
use super::{Built, Project, TAG, invalid, os_name, os_status};
use crate::cloud::Service;

fn placement_invalid(field: &str, value: &str, why: impl Into<String>) -> Status {
    status_with(
        Code::FailedPrecondition,
        reasons::PLACEMENT_INVALID,
        format!("openstack: placement.{field} {value:?}: {}", why.into()),
        [
            ("field".to_owned(), field.to_owned()),
            ("value".to_owned(), value.to_owned()),
        ],
    )
}

/// The flavor with exactly this shape, made if the cloud has none.
async fn flavor(
    project: &Project<'_>,
    vcpu: u32,
    memory_mib: u64,
    disk_gib: u64,
) -> Result<String, Status> {
    let find = || async {
        let v = project
            .cloud
            .get(Service::Compute, "flavors/detail?is_public=None")
            .await
            .map_err(|e| os_status("listing flavors", &e))?;
        Ok::<_, Status>(
            v.get("flavors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|f| {
                    f.get("vcpus").and_then(Value::as_u64) == Some(u64::from(vcpu))
                        && f.get("ram").and_then(Value::as_u64) == Some(memory_mib)
                        && f.get("disk").and_then(Value::as_u64) == Some(disk_gib)
                        && f.get("OS-FLV-EXT-DATA:ephemeral")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            == 0
                })
                .and_then(|f| str_of(f, "id")),
        )
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let name = format!("ys-{vcpu}c{memory_mib}m{disk_gib}g");
    let made = project
        .operator()
        .post(
            Service::Compute,
            "flavors",
            json!({"flavor": {"name": name, "vcpus": vcpu, "ram": memory_mib, "disk": disk_gib,
                    "os-flavor-access:is_public": true}}),
        )
        .await;
    match made {
        Ok(v) => v
            .get("flavor")
            .and_then(|f| str_of(f, "id"))
            .ok_or_else(|| invalid("vm", "Nova made a flavor without an id")),
        // 409: another Apply made it meanwhile.
        Err(e) if e.http_status() == Some(409) => find()
            .await?
            .ok_or_else(|| os_status(&format!("making flavor {name}"), &e)),
        Err(e) => Err(os_status(&format!("making flavor {name}"), &e)),
    }
}

/// The Glance image an order's image names: mapped, else by that name, else
/// the configured default.
async fn image(project: &Project<'_>, wanted: &str) -> Result<String, Status> {
    let cfg = &project.config;
    let mut names: Vec<&str> = Vec::new();
    if let Some(m) = cfg.images.get(wanted) {
        names.push(m);
    }
    if !wanted.is_empty() {
        names.push(wanted);
    }
    names.push(&cfg.default_image);
    for name in names {
        let v = project
            .cloud
            .get(Service::Image, &format!("images?name={name}"))
            .await
            .map_err(|e| os_status("looking up the image", &e))?;
        if let Some(id) = v
            .get("images")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|i| str_of(i, "id"))
        {
            return Ok(id);
        }
    }
    Err(invalid(
        "vm.image",
        format!(
            "no Glance image for {wanted:?} (nor the default {:?})",
            cfg.default_image
        ),
    ))
}

/// The server carrying this yunshu id, if Nova has one (not deleted).
pub async fn find_server(project: &Project<'_>, id: &str) -> Result<Option<Value>, Status> {
    let v = project
        .cloud
        .get(
            Service::Compute,
            &format!("servers/detail?tags={TAG}&name=^{}$", os_name(id)),
        )
        .await
        .map_err(|e| os_status("listing servers", &e))?;
    Ok(v.get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| {
            s.get("metadata")
                .and_then(|m| m.get("yunshu_id"))
                .and_then(Value::as_str)
                == Some(id)
        })
        .cloned())
}

/// Port `n` of the VM: found by name, else made; its security groups set to
/// the VM's.
async fn port(
    project: &Project<'_>,
    vm: &str,
    n: usize,
    subnet: &OsIds,
    ip: &str,
    groups: &[String],
) -> Result<Value, Status> {
    let name = format!("{}-{n}", os_name(vm));
    let found = project
        .cloud
        .get(Service::Network, &format!("ports?name={name}"))
        .await
        .map_err(|e| os_status("listing ports", &e))?;
    if let Some(p) = found
        .get("ports")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        let have: Vec<String> = p
            .get("security_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect();
        let mut a = have.clone();
        let mut b = groups.to_vec();
        a.sort();
        b.sort();
        if a != b
            && let Some(pid) = str_of(p, "id")
        {
            let v = project
                .cloud
                .put(
                    Service::Network,
                    &format!("ports/{pid}"),
                    json!({"port": {"security_groups": groups}}),
                )
                .await
                .map_err(|e| os_status("setting the port's security groups", &e))?;
            return Ok(v.get("port").cloned().unwrap_or(Value::Null));
        }
        return Ok(p.clone());
    }
    let mut fixed = json!({"subnet_id": subnet.id});
    if !ip.is_empty() {
        fixed["ip_address"] = json!(ip);
    }
    let made = project
        .cloud
        .post(
            Service::Network,
            "ports",
            json!({"port": {"name": name, "network_id": subnet.network, "fixed_ips": [fixed],
                    "security_groups": groups}}),
        )
        .await
        .map_err(|e| os_status("making the VM's port", &e))?;
    let p = made.get("port").cloned().unwrap_or(Value::Null);
    if let Some(pid) = str_of(&p, "id") {
        project
            .cloud
            .put(
                Service::Network,
                &format!("ports/{pid}/tags/{TAG}"),
                Value::Null,
            )
            .await
            .map_err(|e| os_status("tagging the port", &e))?;
    }
    Ok(p)
}

fn port_ips(p: &Value) -> Vec<String> {
    p.get("fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|ip| str_of(ip, "ip_address"))
        .collect()
}

/// Checks the placement against the last inventory: a host this driver
/// offers, up, of the VM's architecture, with the memory Placement still has.
async fn check_placement(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::VmSpec,
    creating: bool,
) -> Result<String, Status> {
    let p = req.placement.clone().unwrap_or_default();
    let mut snap = project.snapshot().await?;
    if !snap.hosts.contains_key(&p.host) {
        // A host added since the last read: read again before refusing.
        snap = project.refresh_snapshot().await?;
    }
    let Some(host) = snap.hosts.get(&p.host) else {
        if let Some(r) = snap.refusals.iter().find(|r| r.host == p.host) {
            return Err(placement_invalid("host", &p.host, r.message.clone()));
        }
        return Err(placement_invalid(
            "host",
            &p.host,
            "no such host in this cloud",
        ));
    };
    if !p.zone.is_empty() && p.zone != host.zone {
        return Err(placement_invalid(
            "zone",
            &p.zone,
            format!("host {} is in zone {}", p.host, host.zone),
        ));
    }
    if !p.pool.is_empty() && p.pool != host.pool {
        return Err(placement_invalid(
            "pool",
            &p.pool,
            format!("host {} is in pool {}", p.host, host.pool),
        ));
    }
    if spec.arch != v1::Architecture::Unspecified as i32 && spec.arch != host.arch {
        return Err(status(
            Code::FailedPrecondition,
            reasons::ARCH_MISMATCH,
            format!("openstack: host {} is not of the VM's architecture", p.host),
        ));
    }
    if creating {
        if !host.up {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_DOWN,
                format!("openstack: host {} is down in Nova", p.host),
            ));
        }
        // Memory is never overcommitted (003 §3.2.1.1): re-checked here
        // against Placement's own count, whatever the scheduler thought.
        let (free, vfree) = crate::inventory::host_free(project, &host.rp).await?;
        if spec.memory_mib > free {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::HOST_MEMORY_EXHAUSTED,
                format!(
                    "openstack: host {} has {free} MiB of memory left in Placement; the VM needs {}",
                    p.host, spec.memory_mib
                ),
                [
                    ("free_mib".to_owned(), free.to_string()),
                    ("needed_mib".to_owned(), spec.memory_mib.to_string()),
                ],
            ));
        }
        if u64::from(spec.vcpu) > vfree {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_VCPU_EXHAUSTED,
                format!(
                    "openstack: host {} has {vfree} vCPUs left in Placement; the VM needs {}",
                    p.host, spec.vcpu
                ),
            ));
        }
    }
    Ok(host.az.clone())
}

pub async fn vm(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::VmSpec,
    prior: Option<OsIds>,
    deps: &Deps,
) -> Result<Built, Status> {
    if spec.vcpu == 0 || spec.memory_mib == 0 {
        return Err(invalid("vm", "vcpu and memory_mib must be above 0"));
    }
    if !spec.data_disks.is_empty() {
        return Err(invalid(
            "vm.data_disks",
            "data disks are not built by this driver (it does not declare volumes)",
        ));
    }
    let disk = spec.system_disk.as_ref().map_or(0, |d| d.size_gib);
    // Looked up in Nova even when the driver holds an id: after a restart
    // or a retried Apply, the server may exist without the driver knowing.
    let _ = prior;
    let existing = find_server(project, &req.id).await?;
    let az = check_placement(project, req, spec, existing.is_none()).await?;
    let mut resizing = false;
    if let Some(server) = &existing
        && shape(server) != Some((spec.vcpu, spec.memory_mib, disk))
    {
        resize(project, req, server, spec, disk).await?;
        resizing = true;
    }
    let mut groups = Vec::new();
    for i in 0..spec.security_groups.len() {
        let field = format!("vm.security_groups[{i}]");
        let d = deps
            .get(&field)
            .ok_or_else(|| invalid(&field, "unresolved"))?;
        groups.push(d.os.id.clone());
    }
    let mut ports = Vec::new();
    let mut ips = Vec::new();
    for (i, nic) in spec.nics.iter().enumerate() {
        let field = format!("vm.nics[{i}].subnet");
        let d = deps
            .get(&field)
            .ok_or_else(|| invalid(&field, "unresolved"))?;
        let p = port(project, &req.id, i, &d.os, &nic.ip, &groups).await?;
        ports.push(str_of(&p, "id").unwrap_or_default());
        ips.extend(port_ips(&p));
    }
    let server = match existing {
        Some(s) => s,
        None => {
            let flavor = flavor(project, spec.vcpu, spec.memory_mib, disk).await?;
            let image = image(project, &spec.image).await?;
            let networks: Value = if ports.is_empty() {
                json!("none")
            } else {
                Value::Array(ports.iter().map(|p| json!({"port": p})).collect())
            };
            let v = project
                .cloud
                .post(
                    Service::Compute,
                    "servers",
                    json!({"server": {
                        "name": os_name(&req.id),
                        "flavorRef": flavor,
                        "imageRef": image,
                        "networks": networks,
                        "availability_zone": az,
                        "metadata": {"yunshu_id": req.id},
                        "tags": [TAG],
                    }}),
                )
                .await
                .map_err(|e| os_status("creating the server", &e))?;
            v.get("server").cloned().unwrap_or(Value::Null)
        }
    };
    let id = str_of(&server, "id").unwrap_or_default();
    let mut outputs = HashMap::from([("server_id".to_owned(), id.clone())]);
    if let Some(ip) = ips.first() {
        outputs.insert("ip".to_owned(), ip.clone());
    }
    let (phase, mut message) = phase_of(&server, spec.stopped);
    if resizing {
        message = format!(
            "resizing to {} vCPU / {} MiB / {disk} GiB",
            spec.vcpu, spec.memory_mib
        );
    }
    Ok(Built {
        os: OsIds {
            id,
            ports,
            ..Default::default()
        },
        converged: !resizing
            && matches!(phase, v1::Phase::Running | v1::Phase::Stopped)
            && !needs_power(&server, spec.stopped),
        phase,
        message,
        outputs,
    })
}

/// The server's flavor as (vCPUs, memory MiB, disk GiB); Nova ≥ 2.47
/// embeds the flavor's figures in the server.
pub fn shape(server: &Value) -> Option<(u32, u64, u64)> {
    let f = server.get("flavor")?;
    Some((
        u32::try_from(f.get("vcpus")?.as_u64()?).ok()?,
        f.get("ram")?.as_u64()?,
        f.get("disk")?.as_u64()?,
    ))
}

/// Asks Nova to resize the server to the spec's shape (the observer confirms
/// it when Nova has finished). Memory is checked against Placement first:
/// the growth must fit what the host has left.
async fn resize(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    server: &Value,
    spec: &v1::VmSpec,
    disk: u64,
) -> Result<(), Status> {
    let status_now = server.get("status").and_then(Value::as_str).unwrap_or("");
    let task = server.get("OS-EXT-STS:task_state").and_then(Value::as_str);
    if !matches!(status_now, "ACTIVE" | "SHUTOFF") || task.is_some() {
        return Err(status(
            Code::Unavailable,
            "SERVER_BUSY",
            format!(
                "openstack: server {} is {status_now} ({}); resize once it settles",
                os_name(&req.id),
                task.unwrap_or("no task")
            ),
        ));
    }
    let (_, old_mem, _) = shape(server).unwrap_or((0, 0, 0));
    let host = req
        .placement
        .as_ref()
        .map(|p| p.host.clone())
        .unwrap_or_default();
    let growth = spec.memory_mib.saturating_sub(old_mem);
    if growth > 0 {
        let snap = project.snapshot().await?;
        let rp = snap
            .hosts
            .get(&host)
            .map(|h| h.rp.clone())
            .unwrap_or_default();
        let (free, _) = crate::inventory::host_free(project, &rp).await?;
        if growth > free {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::HOST_MEMORY_EXHAUSTED,
                format!(
                    "openstack: host {host} has {free} MiB left in Placement; the resize needs {growth} more"
                ),
                [
                    ("free_mib".to_owned(), free.to_string()),
                    ("needed_mib".to_owned(), growth.to_string()),
                ],
            ));
        }
    }
    let flavor = flavor(project, spec.vcpu, spec.memory_mib, disk).await?;
    let id = str_of(server, "id").unwrap_or_default();
    project
        .cloud
        .post(
            Service::Compute,
            &format!("servers/{id}/action"),
            json!({"resize": {"flavorRef": flavor}}),
        )
        .await
        .map_err(|e| os_status("resizing the server", &e))?;
    Ok(())
}

/// Confirms a finished resize (Nova waits in VERIFY_RESIZE for it).
pub async fn confirm_resize(project: &Project<'_>, server_id: &str) -> Result<(), Status> {
    match project
        .cloud
        .post(
            Service::Compute,
            &format!("servers/{server_id}/action"),
            json!({"confirmResize": null}),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.http_status() == Some(409) => Ok(()),
        Err(e) => Err(os_status("confirming the resize", &e)),
    }
}

/// The protocol's phase of a Nova server, as the VM asked to be powered.
pub fn phase_of(server: &Value, want_stopped: bool) -> (v1::Phase, String) {
    let status = server.get("status").and_then(Value::as_str).unwrap_or("");
    let task = server.get("OS-EXT-STS:task_state").and_then(Value::as_str);
    match status {
        "ACTIVE" if task.is_none() && !want_stopped => (v1::Phase::Running, String::new()),
        "SHUTOFF" if task.is_none() && want_stopped => (v1::Phase::Stopped, String::new()),
        "ACTIVE" | "SHUTOFF" => (
            // Powering to what was asked: still provisioning that generation.
            if status == "ACTIVE" {
                v1::Phase::Running
            } else {
                v1::Phase::Stopped
            },
            format!("powering {}", if want_stopped { "off" } else { "on" }),
        ),
        "ERROR" => (
            v1::Phase::Failed,
            server
                .get("fault")
                .and_then(|f| str_of(f, "message"))
                .unwrap_or_else(|| "Nova put the server in ERROR".to_owned()),
        ),
        "DELETED" | "SOFT_DELETED" => (v1::Phase::Deleted, String::new()),
        other => (v1::Phase::Provisioning, format!("Nova: {other}")),
    }
}

/// Whether the server must still be stopped or started to match the spec.
pub fn needs_power(server: &Value, want_stopped: bool) -> bool {
    let status = server.get("status").and_then(Value::as_str).unwrap_or("");
    (status == "ACTIVE" && want_stopped) || (status == "SHUTOFF" && !want_stopped)
}

/// Starts deleting the server; `true` when nothing is left (no server, ports
/// deleted), `false` while Nova is still deleting (the observer finishes).
pub async fn delete(project: &Project<'_>, os: &OsIds, id: &str) -> Result<bool, Status> {
    let server = if os.id.is_empty() {
        find_server(project, id)
            .await?
            .and_then(|s| str_of(&s, "id"))
    } else {
        Some(os.id.clone())
    };
    if let Some(sid) = server {
        let here = project
            .cloud
            .get(Service::Compute, &format!("servers/{sid}"))
            .await;
        match here {
            Ok(_) => {
                project
                    .cloud
                    .delete(Service::Compute, &format!("servers/{sid}"))
                    .await
                    .map_err(|e| os_status("deleting the server", &e))?;
                return Ok(false);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(os_status("reading the server", &e)),
        }
    }
    delete_ports(project, os).await?;
    Ok(true)
}

/// The VM's ports, once Nova has let go of them (it keeps ports it did not
/// make).
pub async fn delete_ports(project: &Project<'_>, os: &OsIds) -> Result<(), Status> {
    for p in &os.ports {
        project
            .cloud
            .delete(Service::Network, &format!("ports/{p}"))
            .await
            .map_err(|e| os_status("deleting the VM's port", &e))?;
    }
    Ok(())
}

/// Powers the server to the spec (the observer calls this once it has
/// booted; Nova refuses a stop while it builds).
pub async fn power(
    project: &Project<'_>,
    server_id: &str,
    want_stopped: bool,
) -> Result<(), Status> {
    let action = if want_stopped {
        json!({"os-stop": null})
    } else {
        json!({"os-start": null})
    };
    match project
        .cloud
        .post(
            Service::Compute,
            &format!("servers/{server_id}/action"),
            action,
        )
        .await
    {
        Ok(_) => Ok(()),
        // 409: already in that state or busy; the next poll looks again.
        Err(e) if e.http_status() == Some(409) => Ok(()),
        Err(e) => Err(os_status("powering the server", &e)),
    }
}
