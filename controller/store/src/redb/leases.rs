//! Lease deadlines, kept in memory.
//!
//! Only a lease's TTL is persisted; its deadline lives here. After a restart every
//! lease gets a full TTL again (etcd does the same), so a restart never expires a
//! lease early.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable};

use super::tables;
use crate::error::StoreError;
use crate::model::LeaseId;

#[derive(Debug, Clone, Copy)]
struct Deadline {
    ttl: Duration,
    at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    leases: Mutex<HashMap<LeaseId, Deadline>>,
}

impl LeaseTable {
    pub fn load(db: &Database, path: &Path) -> Result<Self, StoreError> {
        let be = |e: redb::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: format!("cannot read leases: {e}"),
        };
        let rtx = db.begin_read().map_err(|e| be(e.into()))?;
        let table = rtx.open_table(tables::LEASES).map_err(|e| be(e.into()))?;
        let now = Instant::now();
        let mut leases = HashMap::new();
        for entry in table.iter().map_err(|e| be(e.into()))? {
            let (id, ttl_ms) = entry.map_err(|e| be(e.into()))?;
            let ttl = Duration::from_millis(ttl_ms.value());
            leases.insert(id.value() as LeaseId, Deadline { ttl, at: now + ttl });
        }
        Ok(Self {
            leases: Mutex::new(leases),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseId, Deadline>> {
        // A panic while holding this lock leaves the map consistent (single inserts
        // and removes), so a poisoned lock is still safe to use.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the lease exists and has not passed its deadline.
    pub fn is_alive(&self, id: LeaseId, now: Instant) -> bool {
        self.lock().get(&id).is_some_and(|d| d.at > now)
    }

    pub fn keep_alive(&self, id: LeaseId) -> Result<Duration, StoreError> {
        let now = Instant::now();
        let mut leases = self.lock();
        match leases.get_mut(&id) {
            Some(d) if d.at > now => {
                d.at = now + d.ttl;
                Ok(d.ttl)
            }
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    /// Leases whose deadline has passed (the writer revokes them).
    pub fn expired(&self, now: Instant) -> Vec<LeaseId> {
        self.lock()
            .iter()
            .filter(|(_, d)| d.at <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn insert(&self, id: LeaseId, ttl: Duration) {
        self.lock().insert(
            id,
            Deadline {
                ttl,
                at: Instant::now() + ttl,
            },
        );
    }

    pub fn remove(&self, id: LeaseId) {
        self.lock().remove(&id);
    }
}
