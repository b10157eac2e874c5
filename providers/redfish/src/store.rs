//! The state directory: one file per resource (`res/<kind>/<id>.json`)
//! holding its last accepted state — spec, placement (for a bare-metal
//! server: the system it owns), outputs (its addresses) — and the
//! provisioning progress the BMC cannot be asked about.
//!
//! Writes are atomic (a temporary file, fsync, rename, fsync of the
//! directory): after a crash a file is the old record or the new one, never
//! half of each. A record is written before the BMC is touched, so a system
//! is never powered on for a resource the driver could forget.

use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Deserialize, Serialize};
use yunshu_proto::v1;

/// Why the state directory failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One resource as kept on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub state: v1::ResourceState,
    /// A bare-metal server's first power-on from the virtual media has been
    /// asked for: later power-ons only switch it on (its disk is installed).
    pub booted: bool,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    /// `v1::ResourceState`, protobuf-encoded: the wire type is the record,
    /// so nothing is copied field by field.
    state: Vec<u8>,
    #[serde(default)]
    booted: bool,
}

/// The `res/` tree of the state directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

/// `bare_metal`, `subnet` …
pub fn kind_label(kind: i32) -> String {
    v1::ResourceKind::try_from(kind)
        .unwrap_or(v1::ResourceKind::Unspecified)
        .as_str_name()
        .trim_start_matches("RESOURCE_KIND_")
        .to_ascii_lowercase()
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let root = state_dir.join("res");
        std::fs::create_dir_all(&root).map_err(io("create", &root))?;
        Ok(Store { root })
    }

    fn path(&self, kind: i32, id: &str) -> PathBuf {
        self.root.join(kind_label(kind)).join(format!("{id}.json"))
    }

    /// Writes `record` atomically.
    pub fn save(&self, record: &Record) -> Result<(), StoreError> {
        let path = self.path(record.state.kind, &record.state.id);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let body = serde_json::to_vec(&OnDisk {
            state: record.state.encode_to_vec(),
            booted: record.booted,
        })
        .map_err(|e| StoreError::Io {
            what: "encode",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
            f.write_all(&body).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("fsync", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", &dir))
    }

    pub fn remove(&self, kind: i32, id: &str) -> Result<(), StoreError> {
        let path = self.path(kind, id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Every record; an unreadable file is left where it is and reported
    /// (an operator must look at it, the driver must not guess).
    pub fn load(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        let kinds = std::fs::read_dir(&self.root).map_err(io("read", &self.root))?;
        for kind in kinds {
            let kind = kind.map_err(io("read", &self.root))?.path();
            if !kind.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&kind).map_err(io("read", &kind))? {
                let path = file.map_err(io("read", &kind))?.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(io("read", &path))?;
                let decoded = serde_json::from_slice::<OnDisk>(&bytes).ok().and_then(|d| {
                    v1::ResourceState::decode(d.state.as_slice())
                        .ok()
                        .map(|state| Record {
                            state,
                            booted: d.booted,
                        })
                });
                match decoded {
                    Some(r) => out.push(r),
                    None => {
                        tracing::error!(file = %path.display(), "unreadable resource record: left alone")
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut state = v1::ResourceState {
            kind: v1::ResourceKind::BareMetal as i32,
            id: "bm-1".into(),
            generation: 3,
            placement: Some(v1::Placement {
                host: "rack1-sys".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        state.outputs.insert("private_ip".into(), "10.0.0.2".into());
        let record = Record {
            state,
            booted: true,
        };
        store.save(&record).expect("save");
        store.save(&record).expect("overwrite");
        assert!(dir.path().join("res/bare_metal/bm-1.json").exists());
        assert_eq!(store.load().expect("load"), vec![record]);
        std::fs::write(dir.path().join("res/bare_metal/junk.json"), b"{").expect("junk");
        assert_eq!(store.load().expect("load").len(), 1, "junk skipped");
        store
            .remove(v1::ResourceKind::BareMetal as i32, "bm-1")
            .expect("remove");
        store
            .remove(v1::ResourceKind::BareMetal as i32, "bm-1")
            .expect("removing twice is fine");
        assert!(store.load().expect("load").is_empty());
    }
}
