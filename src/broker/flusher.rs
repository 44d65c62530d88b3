//! Group commit: one dedicated thread fsyncs partitions for `acks=all`.
//!
//! Producers that need durability queue their partition here and wait on its
//! durable-offset channel. The thread drains everything queued at that moment
//! and fsyncs each partition once, so one fsync serves every request waiting
//! on it. It never runs on the async runtime and never holds a log lock while
//! syncing.

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
                    for partition in batch {
                        partition.flush_now();
                    }
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

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
