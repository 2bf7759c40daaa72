//! The single-use ledger of client-assertion ids (RFC 7523 §3, item 7),
//! written in batches: each request waits for its own answer, but requests
//! that arrive while a write is in flight share the next one. One commit (and
//! one WAL flush) then serves many assertions, which is what lets
//! `private_key_jwt` run near the speed of a cached secret while every `jti`
//! is still recorded, across instances, before its token is issued.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// The most ids one write carries (3 bind parameters each, far under both
/// databases' limits).
pub const MAX_BATCH: usize = 256;
/// Requests waiting for a write; more wait to enqueue (back-pressure), each
/// within its request deadline.
const QUEUE: usize = 4096;

/// An assertion id to spend: kept until `expires_at`, then pruned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsedAssertion {
    pub client_id: String,
    pub jti: String,
    pub expires_at: i64,
}

struct Job {
    used: UsedAssertion,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

pub struct AssertionLedger {
    jobs: mpsc::Sender<Job>,
}

impl AssertionLedger {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, queue));
        Self { jobs }
    }

    /// `true` the first time this client presents this `jti`; `false` for a
    /// replay, here or on any instance sharing the database.
    pub async fn spend(&self, used: UsedAssertion) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the assertion ledger stopped".into());
        self.jobs
            .send(Job { used, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn write_batches(store: Arc<dyn Store>, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // The first occurrence of an id in a batch goes to the database;
        // a second one in the same batch is a replay of it.
        let mut seen = HashSet::with_capacity(jobs.len());
        let first: Vec<bool> = jobs
            .iter()
            .map(|j| seen.insert((j.used.client_id.as_str(), j.used.jti.as_str())))
            .collect();
        let batch: Vec<UsedAssertion> = jobs
            .iter()
            .zip(&first)
            .filter(|(_, first)| **first)
            .map(|(j, _)| j.used.clone())
            .collect();
        let written = store.use_assertions(&batch).await;
        let mut fresh = match &written {
            Ok(fresh) => fresh.iter().copied(),
            Err(_) => [].iter().copied(),
        };
        for (job, first) in jobs.drain(..).zip(first) {
            let answer = match (&written, first) {
                (Err(e), true) => Err(e.duplicate()),
                (Ok(_), true) => Ok(fresh.next().unwrap_or(false)),
                (_, false) => Ok(false),
            };
            let _ = job.reply.send(answer);
        }
    }
}
