//! A driver's resources on its own disk: one JSON file per resource
//! (`res/<kind>/<id>.json` under the state directory), so a driver that
//! restarts still knows what it made, what it was asked, and what it was in
//! the middle of deleting — the cloud behind it cannot always tell (a BMC has
//! no notion of "this server was lent to resource X"; an OpenStack volume
//! half-way through detach-then-delete looks like any other volume).
//!
//! Writes are atomic (a temporary file, fsync, rename, fsync of the
//! directory): after a crash a file is the old record or the new one, never
//! half of each. What a record holds is the driver's: any serde type.
//! Protocol messages inside it are best kept protobuf-encoded ([`encode`],
//! [`decode`]): the wire type is the record, so nothing is copied field by
//! field and fields added to the protocol later are kept.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use yunshu_proto::v1;

/// Why the state directory failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Io { what, path, source }
}

/// `bare_metal`, `subnet` …: the directory of a kind's records.
pub fn kind_label(kind: i32) -> String {
    v1::ResourceKind::try_from(kind)
        .unwrap_or(v1::ResourceKind::Unspecified)
        .as_str_name()
        .trim_start_matches("RESOURCE_KIND_")
        .to_ascii_lowercase()
}

/// The longest file-name stem: `<stem>.json.tmp` within 255 bytes.
const MAX_NAME: usize = 255 - ".json.tmp".len();

/// The file-name stem of a resource id: the id itself when it is plainly a
/// name (ASCII letters, digits, `-`, `_`, `.` not leading), else every other
/// byte as `%XX` — so no id can name a path outside its kind's directory
/// (`/`, `..`), and two ids never share a file. Records are loaded by their
/// content, so the stem is never decoded.
fn file_name(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A protocol message as record bytes.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Record bytes back into a protocol message (`None`: not one).
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

/// The `res/` tree of a state directory, holding records of type `T`.
pub struct RecordDir<T> {
    root: PathBuf,
    _records: PhantomData<fn() -> T>,
}

// By hand: derives would ask `T` to be `Debug`/`Clone`, and a `RecordDir`
// holds no `T`.
impl<T> std::fmt::Debug for RecordDir<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDir")
            .field("root", &self.root)
            .finish()
    }
}

impl<T> Clone for RecordDir<T> {
    fn clone(&self) -> Self {
        RecordDir {
            root: self.root.clone(),
            _records: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> RecordDir<T> {
    pub fn open(state_dir: &Path) -> Result<RecordDir<T>, RecordError> {
        let root = state_dir.join("res");
        std::fs::create_dir_all(&root).map_err(io("create", &root))?;
        Ok(RecordDir {
            root,
            _records: PhantomData,
        })
    }

    fn path(&self, kind: i32, id: &str) -> Result<PathBuf, RecordError> {
        let name = file_name(id);
        let path = self
            .root
            .join(kind_label(kind))
            .join(format!("{name}.json"));
        // `<name>.json.tmp` must fit a file name (255 bytes on Linux).
        if name.len() > MAX_NAME {
            return Err(RecordError::Io {
                what: "name",
                path,
                source: std::io::Error::other(format!(
                    "resource id of {} bytes is too long for a record file name",
                    id.len()
                )),
            });
        }
        Ok(path)
    }

    /// Writes the record of (kind, id) atomically (≈ two fsyncs).
    pub fn save(&self, kind: i32, id: &str, record: &T) -> Result<(), RecordError> {
        let path = self.path(kind, id)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let body = serde_json::to_vec(record)
            .map_err(|e| io("encode", &path)(std::io::Error::other(e)))?;
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

    /// Forgets (kind, id); forgetting what is not there is fine.
    pub fn remove(&self, kind: i32, id: &str) -> Result<(), RecordError> {
        let path = self.path(kind, id)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Every record that `accept` turns into a value; a file that does not
    /// parse, or that `accept` refuses, is left where it is and logged (an
    /// operator must look at it, the driver must not guess).
    pub fn load<R>(&self, mut accept: impl FnMut(T) -> Option<R>) -> Result<Vec<R>, RecordError> {
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
                match serde_json::from_slice::<T>(&bytes)
                    .ok()
                    .and_then(&mut accept)
                {
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

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        state: Vec<u8>,
        #[serde(default)]
        note: String,
    }

    #[test]
    fn ids_never_name_a_path_outside_their_directory() {
        assert_eq!(file_name("vm-1.a_b"), "vm-1.a_b");
        assert_eq!(file_name("../etc"), "%2E.%2Fetc");
        assert_eq!(file_name("a/b"), "a%2Fb");
        assert_ne!(file_name("a%2Fb"), file_name("a/b"));
        let dir = tempfile::tempdir().expect("tempdir");
        let records = RecordDir::<Rec>::open(dir.path()).expect("open");
        let rec = Rec {
            state: Vec::new(),
            note: "x".into(),
        };
        records
            .save(1, "../../escaped", &rec)
            .expect("saved inside");
        assert!(!dir.path().join("escaped.json").exists());
        assert_eq!(records.load(Some).expect("load"), vec![rec.clone()]);
        let long = "x".repeat(300);
        assert!(records.save(1, &long, &rec).is_err(), "too long is refused");
    }

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = RecordDir::<Rec>::open(dir.path()).expect("open");
        let state = v1::ResourceState {
            kind: v1::ResourceKind::BareMetal as i32,
            id: "bm-1".into(),
            generation: 3,
            ..Default::default()
        };
        let rec = Rec {
            state: encode(&state),
            note: "booted".into(),
        };
        let kind = v1::ResourceKind::BareMetal as i32;
        records.save(kind, "bm-1", &rec).expect("save");
        records.save(kind, "bm-1", &rec).expect("overwrite");
        assert!(dir.path().join("res/bare_metal/bm-1.json").exists());
        let loaded = records
            .load(|r| decode::<v1::ResourceState>(&r.state).map(|s| (s, r.note)))
            .expect("load");
        assert_eq!(loaded, vec![(state, "booted".to_owned())]);
        std::fs::write(dir.path().join("res/bare_metal/junk.json"), b"{").expect("junk");
        assert_eq!(records.load(Some).expect("load").len(), 1, "junk skipped");
        assert!(
            dir.path().join("res/bare_metal/junk.json").exists(),
            "junk left for the operator"
        );
        records.remove(kind, "bm-1").expect("remove");
        records
            .remove(kind, "bm-1")
            .expect("removing twice is fine");
        assert!(records.load(Some).expect("load").is_empty());
    }
}
