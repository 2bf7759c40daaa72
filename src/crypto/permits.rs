//! Permits to run argon2, handed out by lane: when one frees, the waiter of
//! the best lane gets it (first come, first served within a lane). A plain
//! FIFO semaphore would make a real client wait behind every request a
//! flood queued before it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which waiters go first. `Clean` before `Crowd` before `Suspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// No failures on record, and the only verification in flight from its
    /// address: a real client, new or restarted, looks like this.
    Clean,
    /// No failures on record, but another verification from the same
    /// address is in flight (a connection pool, or callers behind one NAT).
    Crowd,
    /// Failures on record for its address, or for this id from it.
    Suspect,
}

impl Lane {
    fn index(self) -> usize {
        match self {
            Self::Clean => 0,
            Self::Crowd => 1,
            Self::Suspect => 2,
        }
    }
}

pub struct Permits {
    state: Arc<Mutex<State>>,
}

struct State {
    free: usize,
    /// Per lane; a waiter is sent `true` with a permit, `false` when evicted.
    waiting: [VecDeque<oneshot::Sender<bool>>; 3],
}

/// A waiter of the `Suspect` lane made room for a better one.
#[derive(Debug)]
pub struct Evicted;

/// The right to run one argon2 computation; handed on when dropped.
pub struct Permit {
    state: Arc<Mutex<State>>,
}

impl Permits {
    pub fn new(count: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                free: count.max(1),
                waiting: Default::default(),
            })),
        }
    }

    /// Makes room in a full queue for a caller of a better lane: the newest
    /// `Suspect` waiter is told `Evicted`. `false` when there is none.
    pub fn evict_suspect(&self) -> bool {
        let mut state = lock(&self.state);
        while let Some(waiter) = state.waiting[Lane::Suspect.index()].pop_back() {
            if waiter.send(false).is_ok() {
                return true;
            }
        }
        false
    }

    pub async fn acquire(&self, lane: Lane) -> Result<Permit, Evicted> {
        let receiver = {
            let mut state = lock(&self.state);
            if state.free > 0 {
                state.free -= 1;
                return Ok(Permit {
                    state: self.state.clone(),
                });
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting[lane.index()].push_back(sender);
            receiver
        };
        let mut wait = Wait {
            receiver: Some(receiver),
            state: &self.state,
        };
        // The sender is only dropped after a send; a closed channel cannot
        // happen while `Permits` lives, which it does while we borrow it.
        let granted = match wait.receiver.as_mut() {
            Some(receiver) => receiver.await.unwrap_or(false),
            None => false,
        };
        wait.receiver = None;
        if !granted {
            return Err(Evicted);
        }
        Ok(Permit {
            state: self.state.clone(),
        })
    }
}

/// A waiter that is dropped (its request cancelled) after a permit was
/// handed to it passes the permit on, so no permit is ever lost.
struct Wait<'a> {
    receiver: Option<oneshot::Receiver<bool>>,
    state: &'a Arc<Mutex<State>>,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if receiver.try_recv() == Ok(true) {
                release(self.state);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        release(&self.state);
    }
}

/// Hands a permit to the first live waiter of the best lane, or frees it.
fn release(state: &Arc<Mutex<State>>) {
    let mut state = lock(state);
    for lane in 0..3 {
        while let Some(waiter) = state.waiting[lane].pop_front() {
            if waiter.send(true).is_ok() {
                return;
            }
        }
    }
    state.free += 1;
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_best_lane_goes_first_and_cancelled_waiters_lose_nothing() {
        let permits = Arc::new(Permits::new(1));
        let held = permits.acquire(Lane::Clean).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, lane) in [
            ("suspect", Lane::Suspect),
            ("crowd", Lane::Crowd),
            ("clean", Lane::Clean),
        ] {
            let (permits, order) = (permits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire(lane).await.unwrap();
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        // A waiter that gives up must not take a permit with it.
        let cancelled = {
            let permits = permits.clone();
            tokio::spawn(async move {
                let _ = permits.acquire(Lane::Clean).await;
            })
        };
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["clean", "crowd", "suspect"]);
        assert_eq!(lock(&permits.state).free, 1, "every permit came back");
    }

    #[tokio::test]
    async fn a_suspect_waiter_can_be_made_to_give_way() {
        let permits = Arc::new(Permits::new(1));
        let held = permits.acquire(Lane::Clean).await.unwrap();
        assert!(!permits.evict_suspect(), "no suspect waits yet");
        let waiter = {
            let permits = permits.clone();
            tokio::spawn(async move { permits.acquire(Lane::Suspect).await.is_err() })
        };
        tokio::task::yield_now().await;
        assert!(permits.evict_suspect(), "the waiting suspect gives way");
        assert!(waiter.await.unwrap(), "and is told it was evicted");
        drop(held);
        assert_eq!(lock(&permits.state).free, 1);
    }
}
