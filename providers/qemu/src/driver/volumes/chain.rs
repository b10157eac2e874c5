//! Backup copies as chains: a full copy, then incremental or differential
//! copies that hold only the clusters a QMP dirty bitmap marked, each a
//! qcow2 whose backing file is the copy it builds on (the previous copy for
//! incremental, the chain's full copy for differential). Reading the newest
//! copy through its backing files gives the whole disk at that moment, so a
//! restore is one `qemu-img convert`.
//!
//! The bitmap (`ys-<hash of the policy>`) is persistent, created in the same
//! QMP transaction as the full copy so it starts exactly at that copy. A copy
//! built on a bitmap that marks more than changed (a superset) is still
//! right; one that marks less would not be, so when the bitmap is missing or
//! inconsistent (QEMU was killed and never wrote it back) the chain restarts
//! with a full copy. Retention drops whole chains only: a copy is never
//! deleted while a later one reads through it.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::QemuError;
use crate::vm::Vm;

/// A chain restarts with a full copy after this many copies on top of it,
/// so a restore reads through at most this many backing files and retention
/// can free space at least once a week on a daily schedule.
pub(super) const MAX_CHAIN: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyKind {
    Full,
    Incremental,
    Differential,
}

impl CopyKind {
    fn suffix(self) -> &'static str {
        match self {
            CopyKind::Full => ".qcow2",
            CopyKind::Incremental => ".inc.qcow2",
            CopyKind::Differential => ".diff.qcow2",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CopyKind::Full => "full",
            CopyKind::Incremental => "incremental",
            CopyKind::Differential => "differential",
        }
    }
}

/// One finished copy of a backup policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupCopy {
    /// When it was taken, unix seconds (also its name).
    pub(crate) at: u64,
    pub(crate) kind: CopyKind,
    pub(crate) path: PathBuf,
}

/// The file name of a copy taken at `at`.
pub(super) fn file_name(at: u64, kind: CopyKind) -> String {
    format!("{at}{}", kind.suffix())
}

fn parse(name: &str) -> Option<(u64, CopyKind)> {
    // Longest suffix first: ".qcow2" ends the other two.
    for kind in [
        CopyKind::Incremental,
        CopyKind::Differential,
        CopyKind::Full,
    ] {
        if let Some(at) = name.strip_suffix(kind.suffix()) {
            return at.parse().ok().map(|at| (at, kind));
        }
    }
    None
}

/// The finished copies in `dir`, oldest first.
pub(super) async fn list(dir: &Path) -> Vec<BackupCopy> {
    let mut out = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((at, kind)) = parse(&name) {
                out.push(BackupCopy {
                    at,
                    kind,
                    path: e.path(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.at, a.path.as_path()).cmp(&(b.at, b.path.as_path())));
    out
}

/// `copies` (oldest first) cut into chains, each starting at a full copy.
/// Copies before the first full one (a full copy lost by hand) form a chain
/// of their own that nothing can restore; it goes with the next retention.
pub(super) fn chains(copies: &[BackupCopy]) -> Vec<&[BackupCopy]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in copies.iter().enumerate() {
        if c.kind == CopyKind::Full && i > start {
            out.push(&copies[start..i]);
            start = i;
        }
    }
    if start < copies.len() {
        out.push(&copies[start..]);
    }
    out
}

/// The copies to delete under retention: every chain whose newest copy is
/// older than `keep_after`, never the newest chain.
pub(super) fn expired(copies: &[BackupCopy], keep_after: u64) -> Vec<PathBuf> {
    let all = chains(copies);
    let Some((_newest, older)) = all.split_last() else {
        return Vec::new();
    };
    older
        .iter()
        .filter(|chain| chain.last().is_some_and(|c| c.at < keep_after))
        .flat_map(|chain| chain.iter().map(|c| c.path.clone()))
        .collect()
}

/// What the next copy of a `wanted` policy is and the copy it builds on:
/// full when there is no chain yet or the chain is long enough.
pub(super) fn next(wanted: CopyKind, copies: &[BackupCopy]) -> (CopyKind, Option<&BackupCopy>) {
    let Some(chain) = chains(copies).pop() else {
        return (CopyKind::Full, None);
    };
    if wanted == CopyKind::Full || chain[0].kind != CopyKind::Full || chain.len() > MAX_CHAIN {
        return (CopyKind::Full, None);
    }
    match wanted {
        CopyKind::Incremental => (wanted, chain.last()),
        _ => (wanted, chain.first()),
    }
}

/// The dirty bitmap of `policy` on a drive.
pub(super) fn bitmap_name(policy: &str) -> String {
    format!("ys-{:012x}", crate::net::fnv1a(policy) >> 16)
}

/// A full copy of `device` in the running `vm` at `to`, starting the
/// policy's bitmap (afresh) at the same instant when `bitmap` is given.
pub(super) async fn full_live(
    vm: &Vm,
    device: &str,
    to: &Path,
    bitmap: Option<&str>,
) -> Result<(), QemuError> {
    let backup = json!({
        "type": "drive-backup",
        "data": {"device": device, "job-id": device, "sync": "full",
            "target": to.display().to_string(), "format": "qcow2", "auto-dismiss": true},
    });
    let mut q = vm.qmp().await?;
    let actions = match bitmap {
        Some(name) => {
            // A stale or inconsistent bitmap of the same name cannot be
            // cleared, only removed; it may not exist at all.
            let _ = q
                .execute(
                    "block-dirty-bitmap-remove",
                    Some(json!({"node": device, "name": name})),
                )
                .await;
            vec![
                json!({"type": "block-dirty-bitmap-add",
                    "data": {"node": device, "name": name, "persistent": true}}),
                backup,
            ]
        }
        None => vec![backup],
    };
    q.execute("transaction", Some(json!({ "actions": actions })))
        .await?;
    drop(q);
    super::wait_job(vm, device).await
}

/// An incremental or differential copy of `device` at `to` on top of
/// `base`: `to` is created backed by `base`, then QEMU writes into it only
/// the clusters the bitmap marks. Incremental copies clear the bitmap when
/// they succeed; differential ones leave it growing from the full copy.
pub(super) async fn partial_live(
    vm: &Vm,
    device: &str,
    to: &Path,
    base: &Path,
    kind: CopyKind,
    bitmap: &str,
) -> Result<(), QemuError> {
    // The backing file by name: the chain moves with its directory.
    let base_name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = image_size(base).await?;
    super::qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &base_name,
        "-F",
        "qcow2",
        &to.display().to_string(),
        &size.to_string(),
    ])
    .await?;
    let (sync, mode) = match kind {
        CopyKind::Incremental => ("incremental", "on-success"),
        _ => ("bitmap", "never"),
    };
    let mut q = vm.qmp().await?;
    q.execute(
        "drive-backup",
        Some(json!({
            "device": device, "job-id": device, "sync": sync, "bitmap": bitmap,
            "bitmap-mode": mode, "mode": "existing", "format": "qcow2",
            "target": to.display().to_string(), "auto-dismiss": true,
        })),
    )
    .await?;
    drop(q);
    super::wait_job(vm, device).await
}

/// The virtual size of a qcow2 image, bytes.
async fn image_size(path: &Path) -> Result<u64, QemuError> {
    let out = tokio::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(path)
        .output()
        .await
        .map_err(QemuError::io("qemu-img info"))?;
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["virtual-size"].as_u64())
        .ok_or_else(|| QemuError::Command {
            command: format!("qemu-img info {}", path.display()),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(at: u64, kind: CopyKind) -> BackupCopy {
        BackupCopy {
            at,
            kind,
            path: PathBuf::from(file_name(at, kind)),
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            CopyKind::Full,
            CopyKind::Incremental,
            CopyKind::Differential,
        ] {
            assert_eq!(parse(&file_name(42, kind)), Some((42, kind)));
        }
        assert_eq!(parse("42.partial"), None);
    }

    #[test]
    fn retention_drops_whole_chains_and_never_the_newest() {
        use CopyKind::*;
        let copies = [
            copy(10, Full),
            copy(20, Incremental),
            copy(30, Full),
            copy(40, Incremental),
            copy(50, Full),
        ];
        // Keep what is newer than 35: the first chain goes, the second stays
        // whole (its incremental at 40 reads through the full at 30).
        let gone = expired(&copies, 35);
        assert_eq!(
            gone,
            [PathBuf::from("10.qcow2"), PathBuf::from("20.inc.qcow2")]
        );
        // Everything expired: still not the newest chain.
        assert_eq!(expired(&copies, 1000).len(), 4);
    }

    #[test]
    fn the_next_copy_builds_on_the_right_one() {
        use CopyKind::*;
        assert_eq!(next(Incremental, &[]).0, Full);
        let copies = [copy(10, Full), copy(20, Incremental), copy(30, Incremental)];
        let (kind, base) = next(Incremental, &copies);
        assert_eq!((kind, base.map(|c| c.at)), (Incremental, Some(30)));
        let (kind, base) = next(Differential, &copies);
        assert_eq!((kind, base.map(|c| c.at)), (Differential, Some(10)));
        assert_eq!(next(Full, &copies).0, Full);
        let long: Vec<BackupCopy> = std::iter::once(copy(0, Full))
            .chain((1..=MAX_CHAIN as u64).map(|t| copy(t, Incremental)))
            .collect();
        assert_eq!(next(Incremental, &long).0, Full, "a long chain restarts");
    }
}
