//! Group commit: a few dedicated threads fsync partitions for `acks=all`.
//!
//! Producers that need durability queue their partitions here (all the
//! partitions of one request at once) and wait on each partition's
//! durable-offset channel. Each fsync thread takes the next queued partition,
//! fsyncs everything it holds unflushed and publishes the new durable
//! offset, so one fsync serves every request waiting on that partition, and
//! the partitions of one request are synced side by side (their writes and
//! the disk's cache flushes overlap instead of queueing one after another).
//! The threads are started once; they
//! never run on the async runtime and never hold a log lock while syncing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::partition::Partition;

/// fsync threads: enough to sync every partition of a busy moment side by
/// side, few enough to cost nothing while idle.
const FSYNC_THREADS: usize = 8;

/// Handle to the fsync threads.
pub struct Flusher {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

/// Notified whenever an fsync moved some partition's durable offset, so the
/// recovery-point checkpoint can follow it (coalesced by its writer).
pub type DurableAdvanced = Arc<tokio::sync::Notify>;

/// Partitions waiting for an fsync thread; each is queued at most once at a
/// time (see [`Partition::enqueue_flush`]).
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    advanced: DurableAdvanced,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Arc<Partition>>,
    closed: bool,
}

impl Flusher {
    pub fn start() -> std::io::Result<Flusher> {
        let queue = Arc::new(Queue::default());
        let mut flusher = Flusher {
            queue,
            threads: Vec::with_capacity(FSYNC_THREADS),
        };
        for _ in 0..FSYNC_THREADS {
            let queue = flusher.queue.clone();
            let thread = std::thread::Builder::new()
                .name("vltava-fsync".into())
                .spawn(move || queue.serve())?;
            flusher.threads.push(thread);
        }
        Ok(flusher)
    }

    /// Notified after each fsync that made more of a partition durable.
    pub fn durable_advanced(&self) -> &DurableAdvanced {
        &self.queue.advanced
    }

    /// Asks for each of `partitions` to be fsynced soon; cheap for one that
    /// already waits. Queued together, they are picked up side by side.
    pub fn request<'a>(&self, partitions: impl IntoIterator<Item = &'a Arc<Partition>>) {
        let mut queued = 0;
        {
            let mut state = self.queue.state.lock();
            for p in partitions {
                if p.enqueue_flush() {
                    state.waiting.push_back(p.clone());
                    queued += 1;
                }
            }
        }
        for _ in 0..queued {
            self.queue.ready.notify_one();
        }
    }
}

impl Queue {
    /// One fsync thread: syncs queued partitions until the flusher is dropped
    /// and the queue is empty.
    fn serve(&self) {
        loop {
            let next = {
                let mut state = self.state.lock();
                loop {
                    if let Some(p) = state.waiting.pop_front() {
                        break p;
                    }
                    if state.closed {
                        return;
                    }
                    self.ready.wait(&mut state);
                }
            };
            if next.flush_now() {
                self.advanced.notify_one();
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.queue.state.lock().closed = true;
        self.queue.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;
    use crate::log::{AppendOrigin, Log, LogConfig};

    /// Partitions t-0, t-1, t-2 holding 1, 2 and 3 records, none fsynced.
    fn partitions(dir: &std::path::Path) -> Vec<Arc<Partition>> {
        (0..3)
            .map(|i| {
                let log =
                    Log::open(&dir.join(format!("t-{i}")), LogConfig::default(), 0, 0).unwrap();
                let p = Arc::new(Partition::new("t", i, log));
                for _ in 0..=i {
                    p.append(&mut batch(1, 1_000), AppendOrigin::Client, 1_000)
                        .unwrap();
                }
                assert_eq!(p.durable_offset(), 0);
                p
            })
            .collect()
    }

    #[tokio::test]
    async fn partitions_queued_together_each_become_durable_to_their_end() {
        let dir = tempfile::tempdir().unwrap();
        let partitions = partitions(dir.path());
        let flusher = Flusher::start().unwrap();
        flusher.request(&partitions);
        for p in &partitions {
            p.wait_durable(i64::from(p.index) + 1).await.unwrap();
        }
        let durable: Vec<i64> = partitions.iter().map(|p| p.durable_offset()).collect();
        assert_eq!(durable, vec![1, 2, 3]);
    }

    #[test]
    fn a_roll_is_reported_once_and_its_flush_moves_the_recovery_point() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        let log = Log::open(&dir.path().join("t-0"), config, 0, 0).unwrap();
        let p = Arc::new(Partition::new("t", 0, log));
        p.append(&mut batch(1, 1_000), AppendOrigin::Client, 1_000)
            .unwrap();
        assert!(!p.take_roll());
        let mut appended = 1;
        while !p.take_roll() {
            p.append(&mut batch(1, 1_000), AppendOrigin::Client, 1_000)
                .unwrap();
            appended += 1;
            assert!(appended < 100, "no roll after {appended} appends");
        }
        assert!(!p.take_roll());
        assert_eq!(p.checkpoint_offsets().0, 0);
        let flusher = Flusher::start().unwrap();
        flusher.request([&p]);
        drop(flusher);
        assert_eq!(p.checkpoint_offsets().0, appended);
    }

    #[test]
    fn a_dropped_flusher_first_syncs_everything_queued() {
        let dir = tempfile::tempdir().unwrap();
        let partitions = partitions(dir.path());
        let flusher = Flusher::start().unwrap();
        flusher.request(&partitions);
        flusher.request(&partitions[..1]);
        drop(flusher);
        let durable: Vec<i64> = partitions.iter().map(|p| p.durable_offset()).collect();
        assert_eq!(durable, vec![1, 2, 3]);
    }
}
