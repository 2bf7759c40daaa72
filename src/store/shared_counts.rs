//! Counters every instance on one database adds to — issued tokens per
//! client (quotas) and failed authentications (the brute-force throttle) —
//! without a database round trip per count.
//!
//! Each instance counts in memory and adds its counts to the store every
//! `FLUSH_EVERY`, in one multi-row upsert that also returns the totals, so
//! that it learns the other instances' counts as it writes its own. A flood
//! therefore costs the database one statement per instance per flush, with
//! one row per distinct counter (at most `MAX_BATCH` rows, `MAX_ENTRIES`
//! counters), however many requests it holds.
//!
//! A count heard this way is at most one flush old. Where that matters —
//! a quota's last tokens, more of them the faster it is used
//! (`exact_margin`) — `take` asks the store instead: an atomic conditional
//! increment, so a quota holds exactly from there on.
//! Counts are per fixed window aligned to the Unix epoch, so every instance
//! agrees on which window a count belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CountDelta, Store};

/// How often pending counts are added to the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Counters held in memory at most (about 100 bytes each).
pub const MAX_ENTRIES: usize = 100_000;
/// Counters one statement adds to (four bind parameters each).
const MAX_BATCH: usize = 1000;
/// Statements one flush runs at most; the rest waits for the next flush.
const MAX_BATCHES_PER_FLUSH: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Tally {
    window_start: i64,
    expires_at: i64,
    /// The total as the store last reported it (ours included).
    known: i64,
    /// Ours, not yet added to the store.
    pending: i64,
    /// How many of ours the last flush carried: this instance's rate, per
    /// flush.
    recent: i64,
}

impl Tally {
    fn count(&self) -> i64 {
        self.known + self.pending
    }
}

/// A fixed window: where it starts and how long it lasts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub length: i64,
}

impl Window {
    /// The window of `length` seconds that `now` falls in.
    pub fn at(now: i64, length: i64) -> Self {
        let length = length.max(1);
        Self {
            start: now.div_euclid(length) * length,
            length,
        }
    }

    /// Seconds until it ends, at least one (a `Retry-After`).
    pub fn seconds_left(&self, now: i64) -> u64 {
        u64::try_from(self.start + self.length - now)
            .unwrap_or(0)
            .max(1)
    }
}

pub struct SharedCounts {
    /// `None` counts on this instance only (unit tests).
    store: Option<Arc<dyn Store>>,
    /// Per counter name and window start.
    tallies: Mutex<HashMap<(String, i64), Tally>>,
    max_entries: usize,
}

impl SharedCounts {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store: Some(store),
            tallies: Mutex::new(HashMap::new()),
            max_entries: MAX_ENTRIES,
        })
    }

    /// Counters of this instance alone, for unit tests.
    #[cfg(test)]
    pub fn local(max_entries: usize) -> Self {
        Self {
            store: None,
            tallies: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    fn tallies(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Tally>> {
        self.tallies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The count of `name` in `window`, as far as this instance knows.
    pub fn count(&self, name: &str, window: Window) -> i64 {
        self.tallies()
            .get(&(name.to_owned(), window.start))
            .map_or(0, Tally::count)
    }

    /// Adds one to `name` in `window`; the store hears of it at the next flush.
    pub fn add(&self, name: &str, window: Window) {
        let mut tallies = self.tallies();
        let tally = self.entry(&mut tallies, name, window);
        tally.pending += 1;
    }

    /// Takes one of `limit` for `name` in `window`: the count with it, or
    /// `Err(count)` when none is left. Far from the limit it is counted in
    /// memory; the first time in a window, and within `exact_margin` of the
    /// limit, the store decides, so that instances cannot overshoot
    /// together. A store that cannot be reached leaves the decision to
    /// memory (a quota is a fairness rule, not a lock: it never turns an
    /// outage into refusals).
    pub async fn take(&self, name: &str, window: Window, limit: i64) -> Result<i64, i64> {
        let flushed = {
            let mut tallies = self.tallies();
            let first = !tallies.contains_key(&(name.to_owned(), window.start));
            let tally = self.entry(&mut tallies, name, window);
            if tally.count() >= limit {
                return Err(tally.count());
            }
            if !first && tally.count() < limit - exact_margin(limit, tally.recent)
                || self.store.is_none()
            {
                tally.pending += 1;
                return Ok(tally.count());
            }
            std::mem::take(&mut tally.pending)
        };
        match self.take_in_store(name, window, limit, flushed).await {
            Ok(total) => {
                let mut tallies = self.tallies();
                let tally = self.entry(&mut tallies, name, window);
                tally.known = tally.known.max(total.unwrap_or(limit));
                total.ok_or(tally.count())
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared counter unavailable; counting in memory");
                let mut tallies = self.tallies();
                let tally = self.entry(&mut tallies, name, window);
                tally.pending += flushed;
                if tally.count() >= limit {
                    return Err(tally.count());
                }
                tally.pending += 1;
                Ok(tally.count())
            }
        }
    }

    /// Adds what this instance counted before, then takes one in the store.
    async fn take_in_store(
        &self,
        name: &str,
        window: Window,
        limit: i64,
        flushed: i64,
    ) -> Result<Option<i64>, super::StoreError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let mut delta = CountDelta {
            name: name.to_owned(),
            window_start: window.start,
            expires_at: window.start + window.length,
            count: flushed,
        };
        if flushed > 0 {
            store.add_counts(std::slice::from_ref(&delta)).await?;
        }
        delta.count = 1;
        store.take_count(&delta, limit).await
    }

    /// The tally of `name` for `window`, made as needed. An ended window's
    /// tally stays until its counts are sent.
    fn entry<'a>(
        &self,
        tallies: &'a mut HashMap<(String, i64), Tally>,
        name: &str,
        window: Window,
    ) -> &'a mut Tally {
        let key = (name.to_owned(), window.start);
        if !tallies.contains_key(&key) && tallies.len() >= self.max_entries {
            make_room(tallies, window.start, self.max_entries);
        }
        tallies.entry(key).or_insert(Tally {
            window_start: window.start,
            expires_at: window.start + window.length,
            known: 0,
            pending: 0,
            recent: 0,
        })
    }

    /// Adds every pending count to the store and learns the totals.
    pub async fn flush(&self) {
        let Some(store) = &self.store else {
            return;
        };
        for _ in 0..MAX_BATCHES_PER_FLUSH {
            let batch: Vec<CountDelta> = self
                .tallies()
                .iter()
                .filter(|(_, t)| t.pending > 0)
                .take(MAX_BATCH)
                .map(|((name, _), t)| CountDelta {
                    name: name.clone(),
                    window_start: t.window_start,
                    expires_at: t.expires_at,
                    count: t.pending,
                })
                .collect();
            if batch.is_empty() {
                return;
            }
            let totals = match store.add_counts(&batch).await {
                Ok(totals) => totals,
                Err(e) => {
                    // Kept pending: the next flush sends them again.
                    tracing::warn!(error = %e, "could not add to the shared counters");
                    return;
                }
            };
            let mut tallies = self.tallies();
            for (sent, total) in batch.iter().zip(totals) {
                if let Some(t) = tallies.get_mut(&(sent.name.clone(), sent.window_start)) {
                    t.pending -= sent.count;
                    t.known = t.known.max(total);
                    t.recent = sent.count;
                }
            }
            if batch.len() < MAX_BATCH {
                return;
            }
        }
    }

    /// Flushes every `FLUSH_EVERY` until the process ends.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.flush().await;
        }
    }
}

/// How close to its limit a count is decided by the store: the last 5 % of
/// a quota, at least its last ten tokens (all of a small quota), and at
/// least what four instances at this one's rate take between two flushes —
/// so that, by the time any instance's count could reach the limit,
/// every instance decides in the store.
fn exact_margin(limit: i64, recent: i64) -> i64 {
    (limit / 20)
        .max(10)
        .max(recent.saturating_mul(4))
        .min(limit)
}

/// Makes room for one more tally: ended windows go first; when every
/// window is live (more sources than we track), the oldest one goes —
/// the newcomer is tracked all the same, never let through uncounted.
fn make_room(tallies: &mut HashMap<(String, i64), Tally>, now: i64, max_entries: usize) {
    tallies.retain(|_, t| t.expires_at > now || t.pending > 0);
    if tallies.len() < max_entries {
        return;
    }
    let oldest = tallies
        .iter()
        .min_by_key(|(_, t)| (t.window_start, t.count()))
        .map(|(key, _)| key.clone());
    if let Some(oldest) = oldest {
        tallies.remove(&oldest);
        tracing::warn!("shared counter table full; forgot the oldest window");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_epoch() {
        let w = Window::at(125, 60);
        assert_eq!(
            w,
            Window {
                start: 120,
                length: 60
            }
        );
        assert_eq!(w.seconds_left(125), 55);
        assert_eq!(w.seconds_left(180), 1);
    }

    #[tokio::test]
    async fn takes_up_to_the_limit_per_window() {
        let counts = SharedCounts::local(10);
        let w = Window::at(0, 60);
        for n in 1..=3 {
            assert_eq!(counts.take("q", w, 3).await, Ok(n));
        }
        assert_eq!(counts.take("q", w, 3).await, Err(3));
        assert_eq!(counts.take("q", Window::at(60, 60), 3).await, Ok(1));
    }

    #[test]
    fn bounded_and_never_open() {
        let counts = SharedCounts::local(3);
        let w = Window::at(0, 60);
        for k in 0..10 {
            counts.add(&k.to_string(), w);
        }
        assert!(counts.tallies().len() <= 3);
        assert_eq!(counts.count("9", w), 1, "the newest source is tracked");
    }
}
