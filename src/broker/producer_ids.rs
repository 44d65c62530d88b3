//! Producer id allocation for InitProducerId, as Kafka's ProducerIdManager:
//! ids are handed out from blocks the metadata log grants this broker (a
//! `ProducerIds` record, refused if another block was granted first), so an
//! id is never given twice, across restarts and, later, across brokers.
//!
//! Allocation itself never waits: the next block is asked for in the
//! background once 90% of the current one is used. If both are used up
//! before it arrives, the caller gets `NotReady` and answers with a
//! retriable error, as Kafka does.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;

use crate::metadata::{MetadataQuorum, MetadataRecord, ProposeError, Refused};

/// Ids granted per metadata record (Kafka's `ProducerIdsBlock` size).
const BLOCK_SIZE: i64 = 1000;
/// The file a Vltava before the metadata log kept the next block in.
const LEGACY_FILE: &str = "vltava-producer-ids";

#[derive(Debug, thiserror::Error)]
#[error("no producer id block is ready yet; one has been asked for")]
pub struct NotReady;

struct Blocks {
    next: i64,
    end: i64,
    /// The block granted after the current one, if it has arrived.
    prefetched: Option<(i64, i64)>,
    fetching: bool,
}

/// Hands out producer ids; never the same one twice in a cluster.
pub struct ProducerIdManager {
    broker_id: i32,
    metadata: Arc<MetadataQuorum>,
    blocks: Mutex<Blocks>,
    /// Signalled when a prefetched block arrives.
    granted: tokio::sync::Notify,
}

impl ProducerIdManager {
    /// Imports the legacy file's next block start (once), and takes a first
    /// block from the metadata log.
    pub async fn open(
        data_dir: &Path,
        broker_id: i32,
        metadata: Arc<MetadataQuorum>,
    ) -> anyhow::Result<Arc<ProducerIdManager>> {
        import_legacy_file(data_dir, broker_id, &metadata).await?;
        let (next, end) = grant(broker_id, &metadata)
            .await
            .context("taking a block of producer ids")?;
        Ok(Arc::new(ProducerIdManager {
            broker_id,
            metadata,
            blocks: Mutex::new(Blocks {
                next,
                end,
                prefetched: None,
                fetching: false,
            }),
            granted: tokio::sync::Notify::new(),
        }))
    }

    /// The next unused producer id.
    pub fn allocate(self: &Arc<Self>) -> Result<i64, NotReady> {
        let mut blocks = self.blocks.lock();
        if blocks.next >= blocks.end {
            let (next, end) = blocks.prefetched.take().ok_or(NotReady)?;
            blocks.next = next;
            blocks.end = end;
        }
        let id = blocks.next;
        blocks.next += 1;
        let used = BLOCK_SIZE - (blocks.end - blocks.next);
        if used * 10 >= BLOCK_SIZE * 9 && blocks.prefetched.is_none() && !blocks.fetching {
            blocks.fetching = true;
            let manager = self.clone();
            tokio::spawn(async move { manager.prefetch().await });
        }
        Ok(id)
    }

    async fn prefetch(&self) {
        let granted = grant(self.broker_id, &self.metadata).await;
        let mut blocks = self.blocks.lock();
        blocks.fetching = false;
        match granted {
            Ok(block) => {
                blocks.prefetched = Some(block);
                self.granted.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "could not take a block of producer ids"),
        }
    }
}

/// Asks the metadata log for the next block.
async fn grant(broker: i32, metadata: &MetadataQuorum) -> Result<(i64, i64), ProposeError> {
    take(broker, metadata, |start| start.checked_add(BLOCK_SIZE))
        .await?
        .ok_or_else(|| ProposeError::Failed("producer ids exhausted".into()))
}

/// Hands `[start, end(start))` to `broker`, `start` being the first free id;
/// another broker taking a block first means asking again from the new first
/// free id. `None` from `end`: nothing is taken.
async fn take(
    broker: i32,
    metadata: &MetadataQuorum,
    end: impl Fn(i64) -> Option<i64>,
) -> Result<Option<(i64, i64)>, ProposeError> {
    loop {
        let start = metadata.image().next_producer_id();
        let Some(end) = end(start) else {
            return Ok(None);
        };
        let record = MetadataRecord::ProducerIds {
            broker,
            block_start: start,
            next_producer_id: end,
        };
        match metadata
            .propose(vec![record], super::METADATA_TIMEOUT)
            .await
        {
            Ok(_) => return Ok(Some((start, end))),
            // Applied here by now: the image has the new first free id.
            Err(ProposeError::Refused(Refused::ProducerIdsTaken(_))) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A data directory from before the metadata log kept the end of its last
/// block in `vltava-producer-ids`: the log's first free id is moved past it,
/// and the file renamed `vltava-producer-ids.imported`.
async fn import_legacy_file(
    data_dir: &Path,
    broker: i32,
    metadata: &MetadataQuorum,
) -> anyhow::Result<()> {
    let path = data_dir.join(LEGACY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let legacy = parse(&text).with_context(|| format!("reading {}", path.display()))?;
    take(broker, metadata, |start| (start < legacy).then_some(legacy)).await?;
    let imported = data_dir.join(format!("{LEGACY_FILE}.imported"));
    std::fs::rename(&path, &imported).with_context(|| format!("renaming {}", path.display()))?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

fn parse(text: &str) -> anyhow::Result<i64> {
    let Some(value) = text.trim().strip_prefix("next.block.start=") else {
        anyhow::bail!("expected next.block.start=N");
    };
    let next: i64 = value.parse().context("next.block.start is not a number")?;
    if next < 0 {
        anyhow::bail!("next.block.start is negative");
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::QuorumConfig;

    async fn quorum(dir: &Path) -> Arc<MetadataQuorum> {
        let config = QuorumConfig::new(1, [(1, "127.0.0.1:0".to_string())].into(), dir.join("m"));
        Arc::new(MetadataQuorum::start(config, None).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_are_never_reused_across_blocks_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let q = quorum(dir.path()).await;
        let ids = ProducerIdManager::open(dir.path(), 1, q.clone())
            .await
            .unwrap();
        let first: Vec<i64> = (0..900).map(|_| ids.allocate().unwrap()).collect();
        assert_eq!(first, (0..900).collect::<Vec<_>>());
        // The 900th id asked for the next block; once it is there the ids
        // run on into it.
        ids.granted.notified().await;
        let next: Vec<i64> = (0..200).map(|_| ids.allocate().unwrap()).collect();
        assert_eq!(next, (900..1100).collect::<Vec<_>>());
        assert_eq!(q.image().next_producer_id(), 2000);
        drop(ids);
        q.shutdown().await;
        drop(q);

        // A restart skips what is left of the granted blocks.
        let q = quorum(dir.path()).await;
        let ids = ProducerIdManager::open(dir.path(), 1, q.clone())
            .await
            .unwrap();
        assert_eq!(ids.allocate().unwrap(), 2000);
        drop(ids);
        q.shutdown().await;
    }

    // One thread: the prefetch cannot run before the test awaits.
    #[tokio::test(flavor = "current_thread")]
    async fn all_ids_used_before_the_next_block_arrives_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let q = quorum(dir.path()).await;
        let ids = ProducerIdManager::open(dir.path(), 1, q.clone())
            .await
            .unwrap();
        // Nothing is prefetched while the block is below 90% used: drain it
        // by hand as a burst would.
        ids.blocks.lock().next = 999;
        assert_eq!(ids.allocate().unwrap(), 999);
        assert!(matches!(ids.allocate(), Err(NotReady)));
        ids.granted.notified().await;
        assert_eq!(ids.allocate().unwrap(), 1000);
        drop(ids);
        q.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_of_a_vltava_before_the_metadata_log_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_FILE), "next.block.start=5000\n").unwrap();
        let q = quorum(dir.path()).await;
        let ids = ProducerIdManager::open(dir.path(), 1, q.clone())
            .await
            .unwrap();
        assert_eq!(ids.allocate().unwrap(), 5000);
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(dir.path().join("vltava-producer-ids.imported").exists());
        drop(ids);
        q.shutdown().await;

        // A damaged file is an error, never a reset to 0.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_FILE), "garbage").unwrap();
        let q = quorum(dir.path()).await;
        assert!(ProducerIdManager::open(dir.path(), 1, q.clone())
            .await
            .is_err());
        q.shutdown().await;
    }
}
