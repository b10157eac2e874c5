//! How keys, values and history are laid out in the redb file.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::{KeyValue, LeaseId, Revision, WatchEvent};

/// A key's value and counters as stored (the key itself is the table key).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredKv {
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub lease: Option<LeaseId>,
}

impl StoredKv {
    pub fn into_kv(self, key: String) -> KeyValue {
        KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }
}

pub(crate) fn encode<T: Serialize>(what: &T) -> Vec<u8> {
    // postcard only fails on writers that run out of room; a Vec never does.
    postcard::to_stdvec(what).unwrap_or_default()
}

pub(crate) fn decode_stored(key: &str, bytes: &[u8]) -> Result<StoredKv, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode_kv(key: &str, bytes: &[u8]) -> Result<KeyValue, StoreError> {
    Ok(decode_stored(key, bytes)?.into_kv(key.to_owned()))
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(bytes).into_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode_log(revision: Revision, bytes: &[u8]) -> Result<Vec<WatchEvent>, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("history@{revision}"),
        reason: e.to_string(),
    })
}

/// Index key of "key belongs to lease": the lease id big-endian, then the key, so
/// that one lease's keys are one contiguous range.
pub(crate) fn lease_index_key(lease: LeaseId, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&lease.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}
