//! Data volumes, snapshots and backup policies.
//!
//! - A volume is a thin qcow2 in `volumes/<id>.qcow2`, throttled by its
//!   storage class. Attaching to a running VM hot-plugs it (HMP `drive_add`
//!   with the class's I/O throttle, QMP `device_add` of a `virtio-blk-pci`
//!   whose serial is the volume id); detaching unplugs it (`device_del`); a
//!   VM started again gets its attached volumes on its command line. A
//!   volume may start from a snapshot or from a backup policy's latest
//!   backup (`restore_from`).
//! - A snapshot is a full point-in-time copy of a volume or of a VM's system
//!   disk in `snapshots/<id>.qcow2`: QEMU's `drive-backup` (sync full) while
//!   the disk is in use by a running guest, `qemu-img convert` otherwise.
//! - A backup policy takes a copy when it is created and then on its
//!   five-field cron schedule, into `backups/<id>/`, keeping `retention_days`
//!   (whole chains; the newest chain always stays). Full policies copy the
//!   whole disk each time; incremental and differential ones copy only what
//!   a QMP dirty bitmap marked since the previous (or the full) copy, as
//!   qcow2 layers over it (`chain`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio::process::Command;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::{QemuDriver, Resources, internal, invalid, missing, spec_of, storage};
use crate::QemuError;
use crate::vm::{Vm, VmDisk};

mod chain;

use chain::CopyKind;

pub(super) fn volume_spec(request: &v1::ApplyRequest) -> Option<&v1::VolumeSpec> {
    match spec_of(request)? {
        Spec::Volume(v) => Some(v),
        _ => None,
    }
}

/// QEMU's drive id of a volume (letters, digits, '-'; short and stable).
pub(super) fn drive_id(volume_id: &str) -> String {
    format!("v{:012x}", crate::net::fnv1a(volume_id) >> 16)
}

/// The ids of the volumes attached to `vm`, in id order.
pub(super) fn attached_to<'a>(resources: &'a Resources, vm: &str) -> Vec<&'a str> {
    resources
        .values()
        .filter(|e| volume_spec(&e.request).is_some_and(|v| v.attach_to == vm))
        .map(|e| e.request.id.as_str())
        .collect()
}

async fn qemu_img(args: &[&str]) -> Result<(), QemuError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .await
        .map_err(QemuError::io("qemu-img"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("qemu-img {}", args.join(" ")),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// A standalone full copy of qcow2 `from` at `to` (no backing file).
async fn copy_image(from: &Path, to: &Path) -> Result<(), QemuError> {
    let (f, t) = (from.display().to_string(), to.display().to_string());
    qemu_img(&["convert", "-O", "qcow2", &f, &t]).await
}

/// Waits for the block job on `device` to finish; its error if it failed.
async fn wait_job(vm: &Vm, device: &str) -> Result<(), QemuError> {
    for _ in 0..1200 {
        let mut q = vm.qmp().await?;
        let jobs = q.execute("query-block-jobs", None).await?;
        let running = jobs
            .as_array()
            .is_some_and(|l| l.iter().any(|j| j["device"] == device));
        if !running {
            let all = q.execute("query-jobs", None).await?;
            if let Some(err) = all
                .as_array()
                .and_then(|l| l.iter().find(|j| j["id"] == device))
                .and_then(|j| j["error"].as_str())
            {
                return Err(QemuError::Qmp(format!("backup of {device}: {err}")));
            }
            return Ok(());
        }
        drop(q);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(QemuError::Timeout {
        what: format!("block job on {device}"),
        seconds: 120,
    })
}

impl QemuDriver {
    fn volume_path(&self, id: &str) -> PathBuf {
        self.inner
            .config
            .state_dir
            .join("volumes")
            .join(format!("{id}.qcow2"))
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.inner
            .config
            .state_dir
            .join("snapshots")
            .join(format!("{id}.qcow2"))
    }

    pub(super) fn backup_dir(&self, id: &str) -> PathBuf {
        self.inner.config.state_dir.join("backups").join(id)
    }

    /// The disks a VM starts with besides its system disk: its volumes.
    pub(super) fn volume_disks(&self, resources: &Resources, vm: &str) -> Vec<VmDisk> {
        attached_to(resources, vm)
            .into_iter()
            .filter_map(|id| {
                let e = Self::get_entry(resources, K::Volume, id)?;
                let v = volume_spec(&e.request)?;
                Some(VmDisk {
                    id: drive_id(id),
                    path: self.volume_path(id),
                    iops: storage::iops_of(&v.storage_class),
                })
            })
            .collect()
    }

    /// The image a snapshot or backup copies, and the running VM (and its
    /// drive id) holding it if there is one.
    fn source_image(
        &self,
        resources: &Resources,
        id: &str,
    ) -> Option<(PathBuf, Option<(Vm, String)>)> {
        if let Some(e) = Self::get_entry(resources, K::Volume, id) {
            let v = volume_spec(&e.request)?;
            let live = (!v.attach_to.is_empty())
                .then(|| Vm::adopt(&self.vm_dir(&v.attach_to)))
                .flatten()
                .map(|vm| (vm, drive_id(id)));
            return Some((self.volume_path(id), live));
        }
        Self::get_entry(resources, K::Vm, id)?;
        let dir = self.vm_dir(id);
        let live = Vm::adopt(&dir).map(|vm| (vm, "system".to_owned()));
        Some((dir.join("system.qcow2"), live))
    }

    /// A full, consistent copy of resource `source`'s disk at `to`.
    async fn take_copy(
        &self,
        resources: &Resources,
        source: &str,
        to: &Path,
    ) -> Result<(), QemuError> {
        let (image, live) = self
            .source_image(resources, source)
            .ok_or_else(|| QemuError::Guest(format!("{source} has no disk")))?;
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(QemuError::io("copy dir"))?;
        }
        let _ = tokio::fs::remove_file(to).await;
        match live {
            Some((vm, device)) => {
                // The guest writes while we copy: QEMU's own point-in-time copy.
                let mut q = vm.qmp().await?;
                q.execute(
                    "drive-backup",
                    Some(json!({
                        "device": device, "job-id": device, "sync": "full",
                        "target": to.display().to_string(), "format": "qcow2",
                        "auto-dismiss": true,
                    })),
                )
                .await?;
                drop(q);
                wait_job(&vm, &device).await
            }
            None => copy_image(&image, to).await,
        }
    }

    /// Checks a volume, snapshot or backup policy against what exists.
    pub(super) fn check_storage(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<(), Status> {
        match spec_of(request) {
            Some(Spec::Volume(v)) => {
                if v.size_gib == 0 || v.size_gib > 64 * 1024 {
                    return Err(invalid(format!("a volume of {} GiB (1–65536)", v.size_gib)));
                }
                if !v.storage_class.is_empty() && storage::iops_of(&v.storage_class).is_none() {
                    return Err(invalid(format!(
                        "storage class {:?} is not one of this driver's",
                        v.storage_class
                    )));
                }
                if let Some(old) = Self::get_entry(resources, K::Volume, &request.id)
                    .and_then(|e| volume_spec(&e.request))
                    && v.size_gib < old.size_gib
                {
                    return Err(invalid(format!(
                        "a volume only grows: {} GiB is less than {} GiB",
                        v.size_gib, old.size_gib
                    )));
                }
                if !v.attach_to.is_empty()
                    && Self::get_entry(resources, K::Vm, &v.attach_to).is_none()
                {
                    return Err(missing("vm", &v.attach_to));
                }
                if !v.restore_from.is_empty()
                    && Self::get_entry(resources, K::Snapshot, &v.restore_from).is_none()
                    && Self::get_entry(resources, K::BackupPolicy, &v.restore_from).is_none()
                {
                    return Err(missing("snapshot or backup_policy", &v.restore_from));
                }
            }
            Some(Spec::Snapshot(s)) => {
                if Self::get_entry(resources, K::Volume, &s.source).is_none()
                    && Self::get_entry(resources, K::Vm, &s.source).is_none()
                {
                    return Err(missing("volume or vm", &s.source));
                }
            }
            Some(Spec::BackupPolicy(b)) => {
                if Self::get_entry(resources, K::Volume, &b.target).is_none()
                    && Self::get_entry(resources, K::Vm, &b.target).is_none()
                {
                    return Err(missing("volume or vm", &b.target));
                }
                crate::cron::Schedule::parse(&b.schedule).map_err(invalid)?;
                if b.retention_days == 0 {
                    return Err(invalid("retention_days must be at least 1"));
                }
            }
            _ => return Err(invalid("not a volume, snapshot or backup policy")),
        }
        Ok(())
    }

    /// Builds a checked volume, snapshot or backup policy.
    pub(super) async fn build_storage(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        let mut state = self.state_of(request, v1::Phase::Running, "");
        match spec_of(request) {
            Some(Spec::Volume(v)) => {
                let path = self.volume_path(&request.id);
                let existed = tokio::fs::try_exists(&path).await.unwrap_or(false);
                if !existed && !v.restore_from.is_empty() {
                    let from = self.latest_copy(&v.restore_from).await.ok_or_else(|| {
                        invalid(format!(
                            "{} has no copy to restore from yet",
                            v.restore_from
                        ))
                    })?;
                    copy_image(&from, &path).await.map_err(internal)?;
                    let p = path.display().to_string();
                    qemu_img(&["resize", &p, &format!("{}G", v.size_gib)])
                        .await
                        .map_err(internal)?;
                    state
                        .outputs
                        .insert("restored_from".to_owned(), v.restore_from.clone());
                } else {
                    if let Some(parent) = path.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(|e| internal(QemuError::io("volumes dir")(e)))?;
                    }
                    storage::create_image(&path, v.size_gib)
                        .await
                        .map_err(internal)?;
                }
                self.attach(resources, request, v).await.map_err(internal)?;
                if !v.attach_to.is_empty() {
                    state
                        .outputs
                        .insert("attached_to".to_owned(), v.attach_to.clone());
                    state.outputs.insert(
                        "device".to_owned(),
                        format!("/dev/disk/by-id/virtio-{}", drive_id(&request.id)),
                    );
                }
            }
            Some(Spec::Snapshot(s)) => {
                let path = self.snapshot_path(&request.id);
                if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                    self.take_copy(resources, &s.source, &path)
                        .await
                        .map_err(internal)?;
                }
                state.outputs.insert("source".to_owned(), s.source.clone());
            }
            Some(Spec::BackupPolicy(b)) => {
                if self.backups(&request.id).await.is_empty() {
                    self.back_up(resources, &request.id, &b.target, b.r#type)
                        .await
                        .map_err(internal)?;
                }
                let copies = self.backups(&request.id).await;
                state
                    .outputs
                    .insert("backups".to_owned(), copies.len().to_string());
                if let Some(last) = copies.last() {
                    state
                        .outputs
                        .insert("last_backup_kind".to_owned(), last.kind.as_str().to_owned());
                }
            }
            _ => return Err(invalid("not a volume, snapshot or backup policy")),
        }
        Ok(state)
    }

    /// Plugs the volume into the VM it names (if running) and out of the
    /// one it named before.
    async fn attach(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
        v: &v1::VolumeSpec,
    ) -> Result<(), QemuError> {
        let drive = drive_id(&request.id);
        let before = Self::get_entry(resources, K::Volume, &request.id)
            .and_then(|e| volume_spec(&e.request))
            .map(|o| o.attach_to.clone())
            .unwrap_or_default();
        if !before.is_empty()
            && before != v.attach_to
            && let Some(vm) = Vm::adopt(&self.vm_dir(&before))
        {
            let mut q = vm.qmp().await?;
            q.execute("device_del", Some(json!({"id": format!("dev-{drive}")})))
                .await?;
        }
        if v.attach_to.is_empty() || before == v.attach_to {
            return Ok(());
        }
        let Some(vm) = Vm::adopt(&self.vm_dir(&v.attach_to)) else {
            return Ok(()); // plugged in when the VM starts
        };
        let mut q = vm.qmp().await?;
        let mut spec = format!(
            "drive_add 0 if=none,id={drive},file={},format=qcow2,cache=none,aio=threads",
            self.volume_path(&request.id).display()
        );
        if let Some(iops) = storage::iops_of(&v.storage_class) {
            spec.push_str(&format!(",throttling.iops-total={iops}"));
        }
        let said = q
            .execute("human-monitor-command", Some(json!({"command-line": spec})))
            .await?;
        if said
            .as_str()
            .is_some_and(|s| !s.trim().is_empty() && !s.contains("OK"))
        {
            return Err(QemuError::Qmp(format!("drive_add: {said}")));
        }
        q.execute(
            "device_add",
            Some(json!({"driver": "virtio-blk-pci", "drive": drive, "id": format!("dev-{drive}"), "serial": drive})),
        )
        .await?;
        Ok(())
    }

    /// Unplugs a volume being deleted and removes its image; removes a
    /// snapshot's copy or a policy's backups.
    pub(super) async fn destroy_storage(&self, request: &v1::ApplyRequest) -> Result<(), Status> {
        let gone = |r: std::io::Result<()>| r.or_else(super::not_found_ok);
        match spec_of(request) {
            Some(Spec::Volume(v)) => {
                if !v.attach_to.is_empty()
                    && let Some(vm) = Vm::adopt(&self.vm_dir(&v.attach_to))
                {
                    let mut q = vm.qmp().await.map_err(internal)?;
                    let _ = q
                        .execute(
                            "device_del",
                            Some(json!({"id": format!("dev-{}", drive_id(&request.id))})),
                        )
                        .await;
                }
                gone(tokio::fs::remove_file(self.volume_path(&request.id)).await)
                    .map_err(|e| internal(QemuError::io("remove the volume")(e)))
            }
            Some(Spec::Snapshot(_)) => {
                gone(tokio::fs::remove_file(self.snapshot_path(&request.id)).await)
                    .map_err(|e| internal(QemuError::io("remove the snapshot")(e)))
            }
            Some(Spec::BackupPolicy(_)) => {
                gone(tokio::fs::remove_dir_all(self.backup_dir(&request.id)).await)
                    .map_err(|e| internal(QemuError::io("remove the backups")(e)))
            }
            _ => Ok(()),
        }
    }

    /// The policy's finished copies, oldest first.
    pub(super) async fn backups(&self, policy: &str) -> Vec<chain::BackupCopy> {
        chain::list(&self.backup_dir(policy)).await
    }

    /// Takes one copy of `target` for `policy` now: full, or — for an
    /// incremental or differential policy with a chain to build on and the
    /// disk in a running guest — only what changed. A partial copy that
    /// cannot be taken (no bitmap after QEMU was killed, …) becomes a full
    /// one that starts the chain again.
    pub(super) async fn back_up(
        &self,
        resources: &Resources,
        policy: &str,
        target: &str,
        backup_type: i32,
    ) -> Result<(PathBuf, CopyKind), QemuError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let wanted = match v1::BackupType::try_from(backup_type) {
            Ok(v1::BackupType::Incremental) => CopyKind::Incremental,
            Ok(v1::BackupType::Differential) => CopyKind::Differential,
            _ => CopyKind::Full,
        };
        let dir = self.backup_dir(policy);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(QemuError::io("backup dir"))?;
        let copies = self.backups(policy).await;
        // Never two copies under one name (two backups within a second).
        let now = copies.last().map_or(now, |c| now.max(c.at + 1));
        let tmp = dir.join(format!("{now}.partial"));
        let _ = tokio::fs::remove_file(&tmp).await;
        let (kind, base) = chain::next(wanted, &copies);
        let live = self
            .source_image(resources, target)
            .and_then(|(_, live)| live);
        let bitmap = (wanted != CopyKind::Full).then(|| chain::bitmap_name(policy));
        let taken = match (&live, base, &bitmap) {
            (Some((vm, device)), Some(base), Some(bitmap)) => {
                match chain::partial_live(vm, device, &tmp, &base.path, kind, bitmap).await {
                    Ok(()) => Some(kind),
                    Err(e) => {
                        tracing::warn!(policy, error = %e, "partial backup failed; taking a full copy");
                        let _ = tokio::fs::remove_file(&tmp).await;
                        None
                    }
                }
            }
            _ => None,
        };
        let kind = match taken {
            Some(kind) => kind,
            None => {
                match &live {
                    Some((vm, device)) => {
                        chain::full_live(vm, device, &tmp, bitmap.as_deref()).await?
                    }
                    None => self.take_copy(resources, target, &tmp).await?,
                }
                CopyKind::Full
            }
        };
        // Only a finished copy gets a backup's name.
        let path = dir.join(chain::file_name(now, kind));
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(QemuError::io("name the backup"))?;
        Ok((path, kind))
    }

    /// Takes a backup of `policy` now, outside its schedule (an operator's
    /// "back up now"); the copy's kind (`full`, `incremental`,
    /// `differential`).
    pub async fn back_up_now(&self, policy: &str) -> Result<&'static str, QemuError> {
        let resources = self.inner.resources.lock().await;
        let Some(Spec::BackupPolicy(b)) = resources
            .get(&(K::BackupPolicy as i32, policy.to_owned()))
            .and_then(|e| spec_of(&e.request))
        else {
            return Err(QemuError::Guest(format!("no backup policy {policy}")));
        };
        let (target, backup_type) = (b.target.clone(), b.r#type);
        let (_, kind) = self
            .back_up(&resources, policy, &target, backup_type)
            .await?;
        Ok(kind.as_str())
    }

    /// Runs every backup policy on its schedule while the driver lives: once
    /// a minute, each policy whose schedule names that minute (UTC) takes a
    /// backup, then drops copies older than its retention (never the
    /// newest).
    pub(super) fn schedule_backups(&self) {
        let inner = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut last_minute = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let Some(inner) = inner.upgrade() else {
                    return; // the driver is gone
                };
                let me = QemuDriver { inner };
                let now = super::now_ms().max(0) as u64 / 1000;
                if now / 60 == last_minute {
                    continue;
                }
                last_minute = now / 60;
                me.run_due_backups(last_minute * 60).await;
            }
        });
    }

    async fn run_due_backups(&self, minute: u64) {
        let mut resources = self.inner.resources.lock().await;
        let due: Vec<(String, String, u32, i32)> = resources
            .values()
            .filter_map(|e| match spec_of(&e.request) {
                Some(Spec::BackupPolicy(b)) => crate::cron::Schedule::parse(&b.schedule)
                    .ok()
                    .filter(|s| s.matches(minute))
                    .map(|_| {
                        (
                            e.request.id.clone(),
                            b.target.clone(),
                            b.retention_days,
                            b.r#type,
                        )
                    }),
                _ => None,
            })
            .collect();
        for (policy, target, retention_days, backup_type) in due {
            let outcome = self
                .back_up(&resources, &policy, &target, backup_type)
                .await;
            let keep_after = minute.saturating_sub(u64::from(retention_days) * 86_400);
            for path in chain::expired(&self.backups(&policy).await, keep_after) {
                let _ = tokio::fs::remove_file(path).await;
            }
            let count = self.backups(&policy).await.len();
            if let Some(e) = resources.get_mut(&(K::BackupPolicy as i32, policy.clone())) {
                e.state
                    .outputs
                    .insert("backups".to_owned(), count.to_string());
                match outcome {
                    Ok((_, kind)) => {
                        e.state.phase = v1::Phase::Running as i32;
                        e.state.message.clear();
                        e.state
                            .outputs
                            .insert("last_backup_unix".to_owned(), minute.to_string());
                        e.state
                            .outputs
                            .insert("last_backup_kind".to_owned(), kind.as_str().to_owned());
                    }
                    Err(err) => {
                        tracing::warn!(policy = %policy, error = %err, "scheduled backup failed");
                        e.state.message = format!("the backup at {minute} failed: {err}");
                    }
                }
                e.state.updated_unix_ms = super::now_ms();
                self.inner
                    .events
                    .resource(v1::ChangeType::Updated, e.state.clone());
            }
        }
    }

    /// The newest copy a volume can be restored from: a snapshot's image or
    /// a backup policy's latest backup.
    async fn latest_copy(&self, from: &str) -> Option<PathBuf> {
        let snapshot = self.snapshot_path(from);
        if tokio::fs::try_exists(&snapshot).await.unwrap_or(false) {
            return Some(snapshot);
        }
        self.backups(from).await.pop().map(|c| c.path)
    }
}
