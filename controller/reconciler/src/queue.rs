//! The reconciler's work queue, in the manner of client-go's workqueue: a key is
//! queued at most once, never handed to two workers at the same time, and a key
//! added while a worker holds it is handed out again when that worker is done.
//!
//! Two priorities: `Fresh` (a resource whose desired state changed — a newly
//! approved order) always goes before `Resync` (the periodic re-check of every
//! managed resource), so new work is picked up within one worker turn even while
//! 100,000 resources are being resynced (issue 6). Failed keys come back after
//! an exponential backoff with full jitter, and all retries together are held
//! to a token bucket (client-go's `MaxOfRateLimiter(ItemExponential, Bucket)`),
//! so a driver that fails everything at once is retried at a bounded rate,
//! not by a wave of 100,000 calls.
//!
//! Owns ordering, dedupe and backoff. Must not know what a key means.

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How urgent a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Resync,
    Fresh,
}

#[derive(Debug)]
struct Delayed<K> {
    at: Instant,
    key: K,
    priority: Priority,
}

impl<K> PartialEq for Delayed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl<K> Eq for Delayed<K> {}
impl<K> PartialOrd for Delayed<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Delayed<K> {
    // Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

#[derive(Debug)]
struct State<K> {
    fresh: VecDeque<K>,
    resync: VecDeque<K>,
    /// Keys waiting in `fresh` or `resync`, with the queue they are in.
    queued: HashMap<K, Priority>,
    /// Keys a worker holds now.
    processing: HashSet<K>,
    /// Keys added while held: requeued at `done`, with the highest priority asked.
    dirty: HashMap<K, Priority>,
    delayed: BinaryHeap<Delayed<K>>,
    failures: HashMap<K, u32>,
    bucket: Bucket,
    shut_down: bool,
}

/// A token bucket over retries: `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    /// Generous enough that a 10,000-VM order's provisioning polls pass at
    /// once; a failure storm beyond that drains at 1,000 retries a second.
    fn default() -> Self {
        RateLimit {
            per_second: 1_000.0,
            burst: 10_000.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    /// May go negative: a debt that later retries wait out.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Bucket {
            limit,
            tokens: limit.burst,
            at: Instant::now(),
        }
    }

    /// Takes a token; returns how long the caller must wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.limit.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.limit.per_second)
        }
    }
}

/// Backoff of a key that failed `n` times in a row: full jitter over
/// `base · 2ⁿ`, capped.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << failures.min(20))
            .min(self.max);
        // Full jitter: retries of many keys that failed together spread out.
        let ms = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

/// A deduplicating, two-priority work queue with per-key backoff.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
    backoff: Backoff,
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    pub fn new(backoff: Backoff) -> Self {
        Self::with_rate_limit(backoff, RateLimit::default())
    }

    pub fn with_rate_limit(backoff: Backoff, limit: RateLimit) -> Self {
        WorkQueue {
            state: Mutex::new(State {
                fresh: VecDeque::new(),
                resync: VecDeque::new(),
                queued: HashMap::new(),
                processing: HashSet::new(),
                dirty: HashMap::new(),
                delayed: BinaryHeap::new(),
                failures: HashMap::new(),
                bucket: Bucket::new(limit),
                shut_down: false,
            }),
            ready: Notify::new(),
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A panic while holding the lock leaves consistent collections behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` (no effect if it is already queued at this priority or
    /// higher; raised to `Fresh` if it waits as `Resync`).
    pub fn add(&self, key: K, priority: Priority) {
        let mut s = self.lock();
        if s.shut_down {
            return;
        }
        if s.processing.contains(&key) {
            let p = s.dirty.entry(key).or_insert(priority);
            *p = (*p).max(priority);
            return;
        }
        match s.queued.get(&key).copied() {
            Some(p) if p >= priority => return,
            // Raised: the stale entry in `resync` is skipped when popped.
            Some(_) | None => {}
        }
        s.queued.insert(key.clone(), priority);
        match priority {
            Priority::Fresh => s.fresh.push_back(key),
            Priority::Resync => s.resync.push_back(key),
        }
        drop(s);
        self.ready.notify_one();
    }

    /// Queues `key` again after its backoff; counts a failure.
    pub fn retry(&self, key: K, priority: Priority) -> Duration {
        let mut s = self.lock();
        let n = s.failures.entry(key.clone()).or_insert(0);
        let backoff = self.backoff.delay(*n);
        *n = n.saturating_add(1);
        let now = Instant::now();
        let delay = backoff.max(s.bucket.reserve(now));
        s.delayed.push(Delayed {
            at: now + delay,
            key,
            priority,
        });
        drop(s);
        // A waiting worker recomputes its sleep to the earliest delayed key.
        self.ready.notify_one();
        delay
    }

    /// Forgets the key's failures (it succeeded).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Failures of `key` in a row so far.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Keys waiting (not delayed, not held).
    pub fn len(&self) -> usize {
        self.lock().queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Releases a key handed out by [`WorkQueue::next`]; requeues it if it was
    /// added meanwhile.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if let Some(p) = s.dirty.remove(key) {
            drop(s);
            self.add(key.clone(), p);
        }
    }

    /// Stops handing out keys; waiting workers get `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.ready.notify_waiters();
    }

    /// Moves due delayed keys into the queues; returns when the next one is due.
    fn promote(&self, s: &mut State<K>) -> Option<Instant> {
        let now = Instant::now();
        let mut due = Vec::new();
        while s.delayed.peek().is_some_and(|d| d.at <= now) {
            if let Some(d) = s.delayed.pop() {
                due.push(d);
            }
        }
        for d in due {
            if s.processing.contains(&d.key) {
                let p = s.dirty.entry(d.key).or_insert(d.priority);
                *p = (*p).max(d.priority);
            } else if s.queued.get(&d.key).is_none_or(|p| *p < d.priority) {
                s.queued.insert(d.key.clone(), d.priority);
                match d.priority {
                    Priority::Fresh => s.fresh.push_back(d.key),
                    Priority::Resync => s.resync.push_back(d.key),
                }
            }
        }
        s.delayed.peek().map(|d| d.at)
    }

    fn pop(&self) -> Result<(K, Priority), Option<Instant>> {
        let mut s = self.lock();
        if s.shut_down {
            return Err(None);
        }
        let next_due = self.promote(&mut s);
        loop {
            let (key, from) = if let Some(k) = s.fresh.pop_front() {
                (k, Priority::Fresh)
            } else if let Some(k) = s.resync.pop_front() {
                (k, Priority::Resync)
            } else {
                return Err(Some(
                    next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
                ));
            };
            // Skip an entry left behind when the key was raised to Fresh.
            if s.queued.get(&key) != Some(&from) {
                continue;
            }
            s.queued.remove(&key);
            s.processing.insert(key.clone());
            return Ok((key, from));
        }
    }

    /// The next key, highest priority first, waiting if none is ready; `None`
    /// after [`WorkQueue::shut_down`]. Call [`WorkQueue::done`] when finished.
    pub async fn next(&self) -> Option<(K, Priority)> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Register before checking, so an `add` in between is not missed.
            notified.as_mut().enable();
            match self.pop() {
                Ok(item) => return Some(item),
                Err(None) => return None,
                Err(Some(until)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<u32> {
        WorkQueue::new(Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        })
    }

    #[test]
    fn retries_beyond_the_burst_wait_for_the_bucket() {
        let q = WorkQueue::with_rate_limit(
            Backoff {
                base: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            RateLimit {
                per_second: 10.0,
                burst: 2.0,
            },
        );
        let delays: Vec<Duration> = (0..5).map(|k| q.retry(k, Priority::Fresh)).collect();
        assert!(delays[0] <= Duration::from_millis(1) && delays[1] <= Duration::from_millis(1));
        // Third, fourth, fifth: 100, 200, 300 ms of debt at 10 a second.
        for (i, d) in delays[2..].iter().enumerate() {
            let want = Duration::from_millis(100 * (i as u64 + 1));
            assert!(
                *d + Duration::from_millis(5) >= want && *d <= want + Duration::from_millis(5),
                "retry {}: {d:?}, want ≈ {want:?}",
                i + 3
            );
        }
    }

    #[tokio::test]
    async fn fresh_goes_before_resync_and_keys_are_deduplicated() {
        let q = queue();
        for k in 0..1000 {
            q.add(k, Priority::Resync);
        }
        q.add(5, Priority::Resync);
        q.add(2000, Priority::Fresh);
        q.add(7, Priority::Fresh); // raised from resync
        assert_eq!(q.len(), 1001);
        assert_eq!(q.next().await, Some((2000, Priority::Fresh)));
        assert_eq!(q.next().await, Some((7, Priority::Fresh)));
        let mut seen = HashSet::new();
        while !q.is_empty() {
            let (k, p) = q.next().await.expect("key");
            assert_eq!(p, Priority::Resync);
            assert!(seen.insert(k), "{k} handed out twice");
            q.done(&k);
        }
        assert_eq!(seen.len(), 999, "7 went out as fresh, not again as resync");
    }

    #[tokio::test]
    async fn a_key_added_while_held_comes_back_after_done() {
        let q = queue();
        q.add(1, Priority::Resync);
        let (k, _) = q.next().await.expect("key");
        q.add(1, Priority::Fresh);
        assert!(q.is_empty(), "not handed to a second worker");
        q.done(&k);
        assert_eq!(q.next().await, Some((1, Priority::Fresh)));
    }

    #[tokio::test]
    async fn a_retried_key_returns_after_its_backoff_which_grows() {
        let q = queue();
        q.add(1, Priority::Fresh);
        let (k, p) = q.next().await.expect("key");
        q.done(&k);
        let first = q.retry(k, p);
        assert!(first <= Duration::from_millis(10), "{first:?}");
        let t = Instant::now();
        assert_eq!(q.next().await, Some((1, Priority::Fresh)));
        assert!(t.elapsed() >= first);
        q.done(&1);
        for _ in 0..5 {
            q.retry(1, Priority::Fresh);
        }
        assert_eq!(q.failures(&1), 6);
        q.forget(&1);
        assert_eq!(q.failures(&1), 0);
        assert!(Backoff::default().delay(30) <= Duration::from_secs(60));
    }

    #[tokio::test]
    async fn shut_down_wakes_waiting_workers() {
        let q = std::sync::Arc::new(queue());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shut_down();
        assert_eq!(waiter.await.expect("join"), None);
    }
}
