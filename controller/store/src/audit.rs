//! The append-only, hash-chained audit log (SPEC §8, 003 §3.2.2.15).
//!
//! Entry `n` is stored at `audit_entry/<n, 20 digits>` and carries the hash of
//! entry `n − 1`; its own hash is SHA-256 over [`AuditEntry::canonical_bytes`].
//! A head record (`audit_head/default`) holds the last sequence number and hash.
//! Appending writes the entry, moves the head (compared on its revision, so two
//! appenders can never fork the chain) and — in the **same transaction** — the
//! change being audited, so a change without its audit entry cannot exist.
//! Changing or deleting any entry breaks the chain, which [`verify`] reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use yunshu_domain::audit::{AuditAction, AuditEntry, HexDigest};
use yunshu_domain::{Actor, Record, Text};

use crate::error::StoreError;
use crate::model::{PageRequest, Revision, Txn, TxnOutcome};
use crate::records;
use crate::store::Store;

/// Where the chain ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: HexDigest,
}

impl Record for AuditHead {
    const KIND: &'static str = "audit_head";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        "default".into()
    }
}

/// What the caller says happened; the log adds sequence and hashes.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: AuditAction,
    pub target: Text,
    pub detail: Option<Text>,
}

/// The outcome of an append.
#[derive(Debug, Clone)]
pub enum Appended {
    /// The entry and the audited change were committed together.
    Committed {
        entry: AuditEntry,
        revision: Revision,
    },
    /// A compare of the audited change failed: nothing was written.
    Conflict,
}

/// Appends a transaction that was retried this many times because other
/// appenders moved the head is given up (the store is then very busy). Each
/// retry first waits a random moment that grows with the attempt, so appenders
/// that collided do not collide again in lock step (the reconciler's batches
/// and API requests share one chain).
const MAX_ATTEMPTS: usize = 64;

async fn back_off(attempt: usize) {
    use rand::Rng;
    let cap_us = 200u64.saturating_mul(1 << attempt.min(6));
    let us = rand::rng().random_range(0..=cap_us);
    tokio::time::sleep(std::time::Duration::from_micros(us)).await;
}

fn hash_of(entry: &AuditEntry) -> Result<HexDigest, StoreError> {
    HexDigest::new(hex_lower(&Sha256::digest(entry.canonical_bytes())))
        .map_err(|e| StoreError::InvalidArgument(e.to_string()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn entry_id(seq: u64) -> String {
    format!("{seq:020}")
}

async fn head(store: &dyn Store) -> Result<(AuditHead, Revision), StoreError> {
    Ok(records::get::<AuditHead>(store, "default")
        .await?
        .unwrap_or((
            AuditHead {
                seq: 0,
                hash: HexDigest::zero(),
            },
            0,
        )))
}

/// Appends `draft` and applies `with` (the audited change) atomically.
pub async fn append(
    store: &dyn Store,
    draft: AuditDraft,
    with: Txn,
) -> Result<Appended, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let (current, head_revision) = head(store).await?;
        let mut entry = AuditEntry {
            seq: current.seq + 1,
            at: draft.at,
            actor: draft.actor.clone(),
            action: draft.action.clone(),
            target: draft.target.clone(),
            detail: draft.detail.clone(),
            prev_hash: current.hash.clone(),
            hash: HexDigest::zero(),
        };
        entry.hash = hash_of(&entry)?;
        let new_head = AuditHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        let head_key = records::key::<AuditHead>("default");
        let entry_key = records::key::<AuditEntry>(&entry_id(entry.seq));
        let mut txn = with.clone();
        txn = txn
            .when_mod_revision(head_key.clone(), head_revision)
            .when_mod_revision(entry_key.clone(), 0)
            .put(entry_key, records::encode(&entry))
            .put(head_key, records::encode(&new_head));
        match store.txn(txn).await? {
            TxnOutcome::Committed { revision } => {
                return Ok(Appended::Committed { entry, revision });
            }
            TxnOutcome::Conflict => {
                // Another appender moved the head: retry on the new head. If the
                // head did not move, the audited change's own compare failed.
                let (_, now) = head(store).await?;
                if now == head_revision {
                    return Ok(Appended::Conflict);
                }
            }
        }
    }
    Err(StoreError::Unavailable {
        op: "audit append",
        reason: "the audit head kept moving; too much contention".into(),
    })
}

/// Appends an entry with no other change.
pub async fn record(store: &dyn Store, draft: AuditDraft) -> Result<AuditEntry, StoreError> {
    match append(store, draft, Txn::new()).await? {
        Appended::Committed { entry, .. } => Ok(entry),
        Appended::Conflict => Err(StoreError::Unavailable {
            op: "audit append",
            reason: "unexpected conflict without a guarded change".into(),
        }),
    }
}

/// The page cursor that continues after entry `seq` (what [`list`] returns as
/// `next` when its page ends there).
pub fn cursor_of(seq: u64) -> String {
    records::key::<AuditEntry>(&entry_id(seq))
}

/// One page of entries in sequence order.
pub async fn list(
    store: &dyn Store,
    page: PageRequest,
) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
    records::list::<AuditEntry>(store, page).await
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    /// Entries read.
    pub entries: u64,
    /// True when every entry hashes right, links to its predecessor, sequence
    /// numbers have no gap, and the head names the last entry.
    pub intact: bool,
    /// The first sequence number where the chain breaks, and why.
    pub broken_at: Option<u64>,
    pub reason: Option<String>,
}

/// Walks the whole chain.
pub async fn verify(store: &dyn Store) -> Result<Verification, StoreError> {
    let mut expected_prev = HexDigest::zero();
    let mut expected_seq = 1;
    let mut after = None;
    let broken = |seq: u64, why: String, entries: u64| Verification {
        entries,
        intact: false,
        broken_at: Some(seq),
        reason: Some(why),
    };
    loop {
        let page = store
            .range(
                &records::prefix::<AuditEntry>(),
                PageRequest { after, limit: 1000 },
            )
            .await?;
        for kv in &page.items {
            let entry: AuditEntry = match records::decode(&kv.key, &kv.value) {
                Ok(e) => e,
                Err(e) => return Ok(broken(expected_seq, e.to_string(), expected_seq - 1)),
            };
            if entry.seq != expected_seq {
                return Ok(broken(
                    expected_seq,
                    format!("entry {expected_seq} is missing (found {})", entry.seq),
                    expected_seq - 1,
                ));
            }
            if entry.prev_hash != expected_prev {
                return Ok(broken(
                    entry.seq,
                    "does not link to the previous entry".into(),
                    entry.seq - 1,
                ));
            }
            if hash_of(&entry)? != entry.hash {
                return Ok(broken(
                    entry.seq,
                    "its content does not match its hash".into(),
                    entry.seq - 1,
                ));
            }
            expected_prev = entry.hash.clone();
            expected_seq += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let entries = expected_seq - 1;
    let (head, _) = head(store).await?;
    if head.seq != entries || head.hash != expected_prev {
        return Ok(broken(
            head.seq,
            format!(
                "the head names entry {} but the chain ends at {entries}",
                head.seq
            ),
            entries,
        ));
    }
    Ok(Verification {
        entries,
        intact: true,
        broken_at: None,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RedbStore;

    fn draft(action: &str) -> AuditDraft {
        AuditDraft {
            at: DateTime::from_timestamp(1_763_000_000, 0).unwrap_or_default(),
            actor: "user:admin".parse().expect("actor"),
            action: AuditAction::new(action).expect("action"),
            target: Text::new("driver_token/abc").expect("target"),
            detail: None,
        }
    }

    #[tokio::test]
    async fn chain_appends_links_and_verifies() {
        let store = RedbStore::in_memory().expect("store");
        let a = record(&store, draft("driver_token.create"))
            .await
            .expect("a");
        let b = record(&store, draft("driver.register")).await.expect("b");
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(b.prev_hash, a.hash);
        let v = verify(&store).await.expect("verify");
        assert!(v.intact, "{v:?}");
        assert_eq!(v.entries, 2);
    }

    #[tokio::test]
    async fn the_audited_change_and_its_entry_commit_together() {
        let store = RedbStore::in_memory().expect("store");
        // A guarded change whose compare fails: neither it nor the entry lands.
        let failing = Txn::new()
            .when_mod_revision("thing", 99)
            .put("thing", vec![1]);
        assert!(matches!(
            append(&store, draft("thing.update"), failing)
                .await
                .expect("append"),
            Appended::Conflict
        ));
        assert!(store.get("thing").await.expect("get").is_none());
        assert_eq!(verify(&store).await.expect("verify").entries, 0);
        let ok = Txn::new()
            .when_mod_revision("thing", 0)
            .put("thing", vec![1]);
        assert!(matches!(
            append(&store, draft("thing.create"), ok)
                .await
                .expect("append"),
            Appended::Committed { .. }
        ));
        assert!(store.get("thing").await.expect("get").is_some());
        assert_eq!(verify(&store).await.expect("verify").entries, 1);
    }

    #[tokio::test]
    async fn concurrent_appenders_never_fork_the_chain() {
        let store = RedbStore::in_memory().expect("store");
        let appends = (0..20).map(|_| record(&store, draft("thing.touch")));
        for r in futures::future::join_all(appends).await {
            r.expect("append");
        }
        let v = verify(&store).await.expect("verify");
        assert!(v.intact && v.entries == 20, "{v:?}");
    }

    #[tokio::test]
    async fn tampering_is_detected() {
        let store = RedbStore::in_memory().expect("store");
        for _ in 0..3 {
            record(&store, draft("thing.touch")).await.expect("append");
        }
        // Rewrite entry 2's action behind the log's back.
        let key = records::key::<AuditEntry>(&entry_id(2));
        let kv = store.get(&key).await.expect("get").expect("entry 2");
        let mut entry: AuditEntry = records::decode(&key, &kv.value).expect("decode");
        entry.action = AuditAction::new("thing.nothing_to_see").expect("action");
        store
            .put(&key, records::encode(&entry))
            .await
            .expect("tamper");
        let v = verify(&store).await.expect("verify");
        assert!(!v.intact);
        assert_eq!(v.broken_at, Some(2));
        // Deleting an entry is caught too.
        store.delete(&key).await.expect("delete");
        let v = verify(&store).await.expect("verify");
        assert_eq!(v.broken_at, Some(2), "{v:?}");
    }
}
