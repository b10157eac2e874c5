//! Volumes as Cinder volumes, attached through Nova.
//!
//! A volume is Cinder volume `ys-<id>` (metadata `yunshu_id`). Cinder works
//! asynchronously (creating → available → attaching → in-use), so an Apply
//! makes or grows the volume and the observer converges the attachment:
//! attach once it is available, detach from a server it should not be on,
//! and on delete detach, then delete, then report it gone.

use std::collections::HashMap;

use serde_json::{Value, json};
use yunshu_proto::tonic::Status;
use yunshu_proto::v1;

use super::network::str_of;
use super::table::{Deps, OsIds};
use super::{Built, Project, invalid, os_name, os_status};
use crate::cloud::Service;
use crate::inventory::{local_class, type_class};

async fn find(project: &Project<'_>, id: &str) -> Result<Option<Value>, Status> {
    let v = project
        .cloud
        .get(
            Service::Volume,
            &format!("volumes/detail?name={}", os_name(id)),
        )
        .await
        .map_err(|e| os_status("listing volumes", &e))?;
    Ok(v.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|vol| {
            vol.get("metadata")
                .and_then(|m| m.get("yunshu_id"))
                .and_then(Value::as_str)
                == Some(id)
        })
        .cloned())
}

/// The server a volume is attached to, if any.
pub fn attached_to(vol: &Value) -> Option<String> {
    vol.get("attachments")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|a| str_of(a, "server_id"))
}

pub async fn volume(
    project: &Project<'_>,
    req: &v1::ApplyRequest,
    spec: &v1::VolumeSpec,
    deps: &Deps,
) -> Result<Built, Status> {
    if !spec.restore_from.is_empty() {
        return Err(invalid(
            "volume.restore_from",
            "restoring is not supported by this driver (it declares no snapshots or backups)",
        ));
    }
    if spec.size_gib == 0 {
        return Err(invalid("volume.size_gib", "must be above 0"));
    }
    let server = match deps.get("volume.attach_to") {
        Some(d) if d.kind == v1::ResourceKind::Vm => Some(d.os.id.clone()),
        Some(d) => {
            return Err(invalid(
                "volume.attach_to",
                format!(
                    "attaching to a {:?} is not supported by this driver",
                    d.kind
                ),
            ));
        }
        None => None,
    };
    let zone = req.placement.as_ref().map_or("", |p| p.zone.as_str());
    let volume_type = volume_type(project, zone, &spec.storage_class).await?;
    let vol = match find(project, &req.id).await? {
        Some(v) => v,
        None => {
            let mut body = json!({"name": os_name(&req.id), "size": spec.size_gib,
                "metadata": {"yunshu_id": req.id}});
            if let Some(t) = &volume_type {
                body["volume_type"] = json!(t);
            }
            let made = project
                .cloud
                .post(Service::Volume, "volumes", json!({ "volume": body }))
                .await
                .map_err(|e| os_status("creating the volume", &e))?;
            made.get("volume").cloned().unwrap_or(Value::Null)
        }
    };
    if let Some(want) = &volume_type
        && let Some(has) = vol.get("volume_type").and_then(Value::as_str)
        && has != want
    {
        return Err(invalid(
            "volume.storage_class",
            format!(
                "the volume is of Cinder type {has:?}, the storage class asks {want:?}: \
                 moving an existing volume to another type (retype) is not supported by this driver"
            ),
        ));
    }
    let id = str_of(&vol, "id").unwrap_or_default();
    let size = vol.get("size").and_then(Value::as_u64).unwrap_or(0);
    if spec.size_gib < size {
        return Err(invalid("volume.size_gib", "Cinder volumes cannot shrink"));
    }
    if spec.size_gib > size {
        // Cinder extends only a detached volume (at the API version used).
        if vol.get("status").and_then(Value::as_str) != Some("available") {
            return Err(invalid(
                "volume.size_gib",
                "growing an attached volume is not supported by this driver: detach it first",
            ));
        }
        project
            .cloud
            .post(
                Service::Volume,
                &format!("volumes/{id}/action"),
                json!({"os-extend": {"new_size": spec.size_gib}}),
            )
            .await
            .map_err(|e| os_status("extending the volume", &e))?;
    }
    let mut outputs = HashMap::from([("volume_id".to_owned(), id.clone())]);
    if let Some(s) = &server {
        outputs.insert("server_id".to_owned(), s.clone());
    }
    Ok(Built {
        os: OsIds {
            id,
            router: server.unwrap_or_default(),
            ..Default::default()
        },
        phase: v1::Phase::Provisioning,
        converged: false,
        message: "Cinder: creating or attaching".to_owned(),
        outputs,
    })
}

/// The Cinder volume type of a storage class. The inventory offers each
/// type as the class `<zone>-<type>` (slugged), so the class is matched
/// against the types this project sees, read now with its own session (a
/// private type is the project's; a stale inventory is not trusted). Empty,
/// or Nova's `<zone>-local`: the default type (`None`). A class matching no
/// type is refused; a Cinder that does not answer is retried.
async fn volume_type(
    project: &Project<'_>,
    zone: &str,
    class: &str,
) -> Result<Option<String>, Status> {
    if class.is_empty() || class == local_class(zone) {
        return Ok(None);
    }
    let types = project
        .cloud
        .get(Service::Volume, "types")
        .await
        .map_err(|e| os_status("listing volume types", &e))?;
    let found = types
        .get("volume_types")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| str_of(t, "name"))
        .find(|name| type_class(zone, name) == class);
    match found {
        Some(name) => Ok(Some(name)),
        None => Err(invalid(
            "volume.storage_class",
            format!("no Cinder volume type offered as storage class {class:?} in zone {zone:?}"),
        )),
    }
}

/// One step towards the wanted attachment (`want`: a server id, or none);
/// returns the phase and message to report (RUNNING once converged).
pub async fn converge(
    project: &Project<'_>,
    vol: &Value,
    want: Option<&str>,
) -> Result<(v1::Phase, String), Status> {
    let id = str_of(vol, "id").unwrap_or_default();
    let status = vol.get("status").and_then(Value::as_str).unwrap_or("");
    let on = attached_to(vol);
    match status {
        "available" => match want {
            None => Ok((v1::Phase::Running, String::new())),
            Some(server) => {
                attach(project, server, &id).await?;
                Ok((v1::Phase::Provisioning, "attaching".to_owned()))
            }
        },
        "in-use" => match (on.as_deref(), want) {
            (Some(a), Some(w)) if a == w => Ok((v1::Phase::Running, String::new())),
            (Some(a), _) => {
                detach(project, a, &id).await?;
                Ok((v1::Phase::Provisioning, "detaching".to_owned()))
            }
            (None, _) => Ok((
                v1::Phase::Provisioning,
                "in-use without attachment".to_owned(),
            )),
        },
        s if s.starts_with("error") => Ok((v1::Phase::Failed, format!("Cinder: {s}"))),
        other => Ok((v1::Phase::Provisioning, format!("Cinder: {other}"))),
    }
}

async fn attach(project: &Project<'_>, server: &str, volume: &str) -> Result<(), Status> {
    match project
        .cloud
        .post(
            Service::Compute,
            &format!("servers/{server}/os-volume_attachments"),
            json!({"volumeAttachment": {"volumeId": volume}}),
        )
        .await
    {
        Ok(_) => Ok(()),
        // 409: the server or volume is busy; the next poll tries again.
        Err(e) if e.http_status() == Some(409) => Ok(()),
        Err(e) => Err(os_status("attaching the volume", &e)),
    }
}

async fn detach(project: &Project<'_>, server: &str, volume: &str) -> Result<(), Status> {
    match project
        .cloud
        .call(
            Service::Compute,
            crate::cloud::Method::Delete,
            &format!("servers/{server}/os-volume_attachments/{volume}"),
            None,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.http_status(), Some(404) | Some(409)) => Ok(()),
        Err(e) => Err(os_status("detaching the volume", &e)),
    }
}

/// A step of deleting: detach, then delete; `true` once Cinder has no such
/// volume.
pub async fn delete_step(project: &Project<'_>, volume: &str) -> Result<bool, Status> {
    if volume.is_empty() {
        return Ok(true);
    }
    let vol = match project
        .cloud
        .get(Service::Volume, &format!("volumes/{volume}"))
        .await
    {
        Ok(v) => v.get("volume").cloned().unwrap_or(Value::Null),
        Err(e) if e.is_not_found() => return Ok(true),
        Err(e) => return Err(os_status("reading the volume", &e)),
    };
    match vol.get("status").and_then(Value::as_str).unwrap_or("") {
        "in-use" => {
            if let Some(s) = attached_to(&vol) {
                detach(project, &s, volume).await?;
            }
        }
        "available" | "error" | "error_extending" => {
            match project
                .cloud
                .delete(Service::Volume, &format!("volumes/{volume}"))
                .await
            {
                Ok(()) => {}
                Err(e) if e.http_status() == Some(400) || e.http_status() == Some(409) => {}
                Err(e) => return Err(os_status("deleting the volume", &e)),
            }
        }
        _ => {}
    }
    Ok(false)
}
