//! The claim loop that jobs and campaigns share across replicas: take a free local slot, ask the
//! store for claimable work (free or expired lease, whoever created it), start it with the slot,
//! and otherwise wait for a local wake-up (work created here) or the next poll. Database errors
//! back off to 30 s. Each manager keeps its own claim query, metrics and runner.

use crate::store::StoreError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The longest pause between claims while the database is away.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct ClaimLoop {
    /// Work this replica runs at once.
    slots: Arc<Semaphore>,
    max: u32,
    poll: Duration,
    /// Poked when this replica creates work (or a test asks): claim now, not at the next poll.
    wake: Notify,
    /// Set by [`ClaimLoop::stop`]: claim nothing more.
    stopping: AtomicBool,
}

impl ClaimLoop {
    pub fn new(max: usize, poll: Duration) -> ClaimLoop {
        let max = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        ClaimLoop {
            slots: Arc::new(Semaphore::new(max)),
            max: max as u32,
            poll,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claim until [`ClaimLoop::stop`]: `claim()` asks the store for one item, `start` runs it
    /// holding the slot (the slot frees when the run drops it).
    pub async fn run<T, Fut>(
        &self,
        what: &str,
        mut claim: impl FnMut() -> Fut,
        mut start: impl FnMut(T, OwnedSemaphorePermit),
    ) where
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        let mut backoff = self.poll;
        loop {
            let Ok(slot) = self.slots.clone().acquire_owned().await else { return };
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let claimed = claim().await;
            if self.stopping.load(Ordering::SeqCst) {
                // Stopping while this claim was in flight: the item is not started, and the
                // owner's leases are all given back once the slots are (the manager's shutdown).
                return;
            }
            match claimed {
                Ok(Some(item)) => {
                    backoff = self.poll;
                    start(item, slot);
                    continue;
                }
                Ok(None) => backoff = self.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim {what}");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            drop(slot);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// Claim nothing more, then `signal` the running work to stop, and wait up to `grace` for
    /// it (and any claim in flight) to give its slots back. Afterwards nothing of this loop's
    /// runs, so the manager can give back every lease it holds.
    pub async fn stop(&self, grace: Duration, signal: impl FnOnce()) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        signal();
        let _ = tokio::time::timeout(grace, self.slots.acquire_many(self.max)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Items are started while slots are free, the loop waits for a slot before claiming more,
    /// a database error is retried, and `stop` ends it.
    #[tokio::test]
    async fn claims_while_slots_are_free_and_stops() {
        let l = Arc::new(ClaimLoop::new(2, Duration::from_millis(10)));
        let queue = Arc::new(Mutex::new(vec![Err(()), Ok(1), Ok(2), Ok(3)]));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (l2, q2, h2) = (l.clone(), queue.clone(), held.clone());
        let task = tokio::spawn(async move {
            l2.run(
                "items",
                || {
                    let next = q2.lock().unwrap().pop();
                    async move {
                        match next {
                            Some(Ok(n)) => Ok(Some(n)),
                            Some(Err(())) => Err(StoreError::NotFound("database away".into())),
                            None => Ok(None),
                        }
                    }
                },
                |n: i32, slot| h2.lock().unwrap().push((n, slot)),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Popped from the back: 3 and 2 took both slots; 1 waits for a slot.
        let started: Vec<i32> = held.lock().unwrap().iter().map(|(n, _)| *n).collect();
        assert_eq!(started, [3, 2]);
        drop(held.lock().unwrap().remove(0)); // 3 finishes: its slot frees
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started: Vec<i32> = held.lock().unwrap().iter().map(|(n, _)| *n).collect();
        assert_eq!(started, [2, 1]);
        held.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The error was met and retried (the queue drained past it), nothing more started.
        assert_eq!(queue.lock().unwrap().len(), 0);
        assert!(held.lock().unwrap().is_empty());
        let mut signalled = false;
        l.stop(Duration::from_secs(1), || signalled = true).await;
        assert!(signalled);
        tokio::time::timeout(Duration::from_secs(1), task).await.expect("stopped").unwrap();
    }
}
