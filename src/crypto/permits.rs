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
    waiting: [VecDeque<oneshot::Sender<()>>; 3],
}

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

    pub async fn acquire(&self, lane: Lane) -> Permit {
        let receiver = {
            let mut state = lock(&self.state);
            if state.free > 0 {
                state.free -= 1;
                return Permit {
                    state: self.state.clone(),
                };
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
            Some(receiver) => receiver.await.is_ok(),
            None => false,
        };
        wait.receiver = None;
        debug_assert!(granted);
        Permit {
            state: self.state.clone(),
        }
    }
}

/// A waiter that is dropped (its request cancelled) after a permit was
/// handed to it passes the permit on, so no permit is ever lost.
struct Wait<'a> {
    receiver: Option<oneshot::Receiver<()>>,
    state: &'a Arc<Mutex<State>>,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if receiver.try_recv().is_ok() {
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
            if waiter.send(()).is_ok() {
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
        let held = permits.acquire(Lane::Clean).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, lane) in [
            ("suspect", Lane::Suspect),
            ("crowd", Lane::Crowd),
            ("clean", Lane::Clean),
        ] {
            let (permits, order) = (permits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire(lane).await;
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
}
