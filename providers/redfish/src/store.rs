//! The state directory: one file per resource (`res/<kind>/<id>.json`)
//! holding its last accepted state — spec, placement (for a bare-metal
//! server: the system it owns), outputs (its addresses) — and the
//! provisioning progress the BMC cannot be asked about.
//!
//! Writes are atomic (the SDK's [`RecordDir`]). A record is written before
//! the BMC is touched, so a system is never powered on for a resource the
//! driver could forget.

use std::path::Path;

use serde::{Deserialize, Serialize};
use yunshu_driver_sdk::records::{self, RecordDir};
use yunshu_proto::v1;

pub use yunshu_driver_sdk::records::{RecordError as StoreError, kind_label};

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
    /// `v1::ResourceState`, protobuf-encoded.
    state: Vec<u8>,
    #[serde(default)]
    booted: bool,
}

/// The `res/` tree of the state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: RecordDir<OnDisk>,
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            dir: RecordDir::open(state_dir)?,
        })
    }

    /// Writes `record` atomically.
    pub fn save(&self, record: &Record) -> Result<(), StoreError> {
        self.dir.save(
            record.state.kind,
            &record.state.id,
            &OnDisk {
                state: records::encode(&record.state),
                booted: record.booted,
            },
        )
    }

    pub fn remove(&self, kind: i32, id: &str) -> Result<(), StoreError> {
        self.dir.remove(kind, id)
    }

    /// Every record; an unreadable file is left where it is and reported
    /// (an operator must look at it, the driver must not guess).
    pub fn load(&self) -> Result<Vec<Record>, StoreError> {
        self.dir.load(|d| {
            records::decode(&d.state).map(|state| Record {
                state,
                booted: d.booted,
            })
        })
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
