//! Group commit: one dedicated thread fsyncs partitions for `acks=all`.
//!
//! Producers that need durability queue their partition here and wait on its
//! durable-offset channel. The thread drains everything queued at that moment
//! and fsyncs each partition once (the partitions of one round in parallel),
//! so one fsync serves every request waiting on it. It never runs on the
//! async runtime and never holds a log lock while syncing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::partition::Partition;

/// Handle to the flusher thread.
pub struct Flusher {
    tx: Option<mpsc::Sender<Arc<Partition>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub fn start() -> std::io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<Arc<Partition>>();
        let thread = std::thread::Builder::new()
            .name("vltava-flusher".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    flush_all(&batch);
                }
            })?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks for `partition` to be fsynced soon; cheap if it already waits.
    pub fn request(&self, partition: &Arc<Partition>) {
        if partition.enqueue_flush() {
            if let Some(tx) = &self.tx {
                if tx.send(partition.clone()).is_err() {
                    tracing::error!("flusher thread is gone");
                }
            }
        }
    }
}

/// fsyncs issued at once, at most: enough for the filesystem to batch them,
/// few enough that a round over 1,000 partitions does not start 1,000 threads.
const MAX_PARALLEL_FSYNCS: usize = 16;

/// Fsyncs every queued partition, up to [`MAX_PARALLEL_FSYNCS`] at a time, so
/// the partitions of a multi-partition request wait for one round of fsyncs
/// (which the filesystem can batch) instead of one after another.
fn flush_all(batch: &[Arc<Partition>]) {
    match batch {
        [] => {}
        [only] => only.flush_now(),
        many => {
            let next = AtomicUsize::new(0);
            let work = || {
                while let Some(p) = many.get(next.fetch_add(1, Ordering::Relaxed)) {
                    p.flush_now();
                }
            };
            std::thread::scope(|scope| {
                for _ in 1..many.len().min(MAX_PARALLEL_FSYNCS) {
                    let spawned = std::thread::Builder::new()
                        .name("vltava-fsync".into())
                        .spawn_scoped(scope, work);
                    if spawned.is_err() {
                        // Out of threads: the ones running (and this one) do the rest.
                        break;
                    }
                }
                work();
            });
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
