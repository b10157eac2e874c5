//! What stands in front of the password hash at sign-in (issue 16 items 3
//! and 10). Each argon2id check costs 19 MiB and a core for tens of
//! milliseconds; before this, 40 parallel wrong passwords were all hashed
//! and the process grew to ≈ 0.9 GB.
//!
//! - Per source address: at most [`SOURCE_MAX`] attempts in a
//!   [`SOURCE_WINDOW`] that did not succeed, counted when they start (so a
//!   parallel burst is cut at the limit, not after it); beyond, 429 with
//!   `Retry-After`. One place can therefore neither flood the hash nor lock
//!   account after account. A success gives its attempt back.
//! - Concurrent hashes: a semaphore of one permit per core (at least two),
//!   so hashing memory is bounded by permits × 19 MiB whatever arrives; a
//!   request that waits [`HASH_WAIT`] for one gets 429 `LOGIN_BUSY`.
//! - Per account: the store-backed lockout (`yunshu_auth::lockout`).
//!
//! Counts live in this replica's memory: a replica set multiplies the
//! per-source allowance by its size, which the account lockout (shared
//! through the store) does not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Unsuccessful sign-in attempts one source address may make per window.
pub const SOURCE_MAX: u32 = 20;
pub const SOURCE_WINDOW: Duration = Duration::from_secs(60);
/// Longest wait for a free hashing slot before answering 429.
pub const HASH_WAIT: Duration = Duration::from_secs(2);
/// Source addresses remembered before stale windows are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
struct Window {
    started: Instant,
    attempts: u32,
}

#[derive(Debug)]
pub struct LoginGate {
    hashes: Semaphore,
    sources: Mutex<HashMap<IpAddr, Window>>,
}

impl Default for LoginGate {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        LoginGate::new(cores.max(2))
    }
}

impl LoginGate {
    pub fn new(hash_permits: usize) -> Self {
        LoginGate {
            hashes: Semaphore::new(hash_permits),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `source`; `Err(retry after)` beyond the limit.
    pub fn admit(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() >= SWEEP_AT {
            sources.retain(|_, w| now.duration_since(w.started) < SOURCE_WINDOW);
        }
        let w = sources.entry(source).or_insert(Window {
            started: now,
            attempts: 0,
        });
        if now.duration_since(w.started) >= SOURCE_WINDOW {
            *w = Window {
                started: now,
                attempts: 0,
            };
        }
        if w.attempts >= SOURCE_MAX {
            let left = SOURCE_WINDOW.saturating_sub(now.duration_since(w.started));
            return Err(left.max(Duration::from_secs(1)));
        }
        w.attempts += 1;
        Ok(())
    }

    /// A successful sign-in gives its attempt back.
    pub fn succeeded(&self, source: IpAddr) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = sources.get_mut(&source) {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }

    /// A slot to hash in, waiting at most [`HASH_WAIT`].
    pub async fn hash_slot(&self) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(HASH_WAIT, self.hashes.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_cut_at_the_limit_and_a_success_gives_its_attempt_back() {
        let gate = LoginGate::new(2);
        let (a, b): (IpAddr, IpAddr) = (
            "127.0.0.2".parse().expect("ip"),
            "127.0.0.3".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..SOURCE_MAX {
            assert!(gate.admit(a, t0).is_ok());
        }
        let retry = gate.admit(a, t0).expect_err("over the limit");
        assert_eq!(retry, SOURCE_WINDOW);
        assert!(gate.admit(b, t0).is_ok(), "another source is not held back");
        gate.succeeded(a);
        assert!(gate.admit(a, t0).is_ok(), "a success frees one attempt");
        assert!(gate.admit(a, t0 + SOURCE_WINDOW).is_ok(), "a new window");
    }

    #[tokio::test]
    async fn hashing_slots_are_bounded() {
        let gate = LoginGate::new(1);
        let held = gate.hash_slot().await.expect("one slot");
        let started = Instant::now();
        assert!(
            gate.hash_slot().await.is_none(),
            "none while the one is held"
        );
        assert!(started.elapsed() >= HASH_WAIT);
        drop(held);
        assert!(gate.hash_slot().await.is_some());
    }
}
