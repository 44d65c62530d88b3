//! One partition's leader state: its log, high watermark and durable offset.
//!
//! The log sits behind a short lock held only to append (assign offsets and
//! write) or to locate a read; file contents are read and fsynced outside it.
//! Fetch long-polls wait on the high-watermark channel, `acks=all` produces on
//! the durable-offset channel — never on a sleep loop.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::log::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::log::cleaner::{self, CleanStats, CleanerLimits};
use crate::log::retention::RetentionOutcome;
use crate::log::{AbortedTxn, AppendInfo, AppendOrigin, ControlMarker, Log, LogConfig, LogError};
use crate::metrics::PartitionStats;

/// How far the log is known to be on disk, or that making it so failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    pub offset: i64,
    pub failed: bool,
}

/// The fsync of a partition's log failed; its writes cannot be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("fsync of {topic}-{partition} failed")]
pub struct StorageError {
    pub topic: String,
    pub partition: i32,
}

/// The offsets a fetch reports for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The end of what `read_committed` consumers may read.
    pub last_stable_offset: i64,
}

/// What a fetch read from a partition.
#[derive(Debug, Clone)]
pub struct FetchedData {
    pub records: Bytes,
    pub offsets: PartitionOffsets,
    /// Aborted transactions in the range read (`read_committed` only).
    pub aborted: Vec<AbortedTxn>,
}

/// A leader partition on this broker.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    log: Mutex<Log>,
    /// The high watermark: on one node, the log end offset after each append.
    high_watermark: watch::Sender<i64>,
    /// The offset below which every byte is fsynced.
    durable: watch::Sender<DurableMark>,
    /// Set while this partition waits in the flusher's queue.
    flush_queued: AtomicBool,
    /// Set when an append rolled a segment, until [`Partition::take_roll`].
    rolled: AtomicBool,
    /// Whether the metadata image names this broker the leader (set by
    /// `Broker::follow_image`); clients are served only while it does.
    leading: AtomicBool,
    /// Bytes and messages produced to and fetched from this partition.
    pub stats: PartitionStats,
    /// Corrupt batches (file, position) already logged and counted, so a
    /// consumer retrying at one does not log it at every fetch.
    corrupt_reported: Mutex<HashSet<(PathBuf, u64)>>,
}

impl Partition {
    pub fn new(topic: &str, index: i32, log: Log) -> Partition {
        let leo = log.log_end_offset();
        let durable = log.recovery_point();
        Partition {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            high_watermark: watch::Sender::new(leo),
            durable: watch::Sender::new(DurableMark {
                offset: durable,
                failed: false,
            }),
            flush_queued: AtomicBool::new(false),
            rolled: AtomicBool::new(false),
            leading: AtomicBool::new(true),
            stats: PartitionStats::default(),
            corrupt_reported: Mutex::new(HashSet::new()),
        }
    }

    /// Whether this broker leads the partition, as the last image it
    /// followed says.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    pub(super) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
    }

    /// Validates and appends one produce request's batches for this partition.
    pub fn append(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(|log| log.append_from(records, origin, now_ms))
    }

    /// Appends the control batch that commits or aborts `marker`'s producer's
    /// transaction here; the last stable offset moves past it.
    pub fn append_marker(
        &self,
        marker: &ControlMarker,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(|log| log.append_marker(marker, now_ms))
    }

    fn append_with(
        &self,
        append: impl FnOnce(&mut Log) -> Result<AppendInfo, LogError>,
    ) -> Result<AppendInfo, LogError> {
        let (info, leo) = {
            let mut log = self.log.lock();
            let segments = log.segment_count();
            let info = append(&mut log).inspect_err(|e| {
                if matches!(e, LogError::Io(_) | LogError::IoAt { .. }) {
                    let what = format!("appending to {}-{}: {e}", self.topic, self.index);
                    crate::health::global().write_failed(what);
                }
            })?;
            if log.segment_count() > segments {
                self.rolled.store(true, Ordering::Release);
            }
            (info, log.log_end_offset())
        };
        crate::health::global().write_succeeded();
        debug_assert!(leo > info.last_offset);
        self.high_watermark.send_replace(leo);
        Ok(info)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn offsets(&self) -> PartitionOffsets {
        let hw = self.high_watermark();
        let log = self.log.lock();
        PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            high_watermark: hw,
            last_stable_offset: log.last_stable_offset(hw),
        }
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Reads whole batches from `offset` up to the high watermark. The lock is
    /// held only to find the byte range; the bytes are read after it is freed.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(Bytes, PartitionOffsets), LogError> {
        let fetched = self.fetch(offset, max_bytes, min_one, false)?;
        Ok((fetched.records, fetched.offsets))
    }

    /// A fetch's read: up to the high watermark, or with `read_committed` up to
    /// the last stable offset, listing the aborted transactions in that range.
    /// Reads stop before a corrupt batch; a read starting at one fails with
    /// [`LogError::CorruptBatch`], logged and counted once per batch.
    pub fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<FetchedData, LogError> {
        let fetched = self.fetch_unreported(offset, max_bytes, min_one, read_committed);
        if let Err(LogError::CorruptBatch {
            offset,
            path,
            position,
            reason,
        }) = &fetched
        {
            if self
                .corrupt_reported
                .lock()
                .insert((path.clone(), *position))
            {
                tracing::error!(
                    topic = %self.topic,
                    partition = self.index,
                    offset,
                    file = %path.display(),
                    position,
                    reason = %reason,
                    "corrupt record batch; fetches at this offset answer CORRUPT_MESSAGE"
                );
                crate::metrics::global().corrupt_batch();
            }
        }
        fetched
    }

    fn fetch_unreported(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<FetchedData, LogError> {
        let hw = self.high_watermark();
        let (slice, offsets, aborted) = {
            let log = self.log.lock();
            let offsets = PartitionOffsets {
                log_start_offset: log.log_start_offset(),
                high_watermark: hw,
                last_stable_offset: log.last_stable_offset(hw),
            };
            let max_offset = if read_committed {
                offsets.last_stable_offset
            } else {
                hw
            };
            let slice = log.read(offset, max_bytes, max_offset, min_one)?;
            let aborted = if read_committed && slice.len > 0 {
                log.aborted_transactions(offset, max_offset)
            } else {
                Vec::new()
            };
            (slice, offsets, aborted)
        };
        Ok(FetchedData {
            records: slice.read()?,
            offsets,
            aborted,
        })
    }

    /// Calls `f` with every whole batch (header and bytes) from the log start
    /// offset to the high watermark, in order: how a coordinator replays its
    /// internal topic at start.
    /// A corrupt batch (logged by the read) is skipped with the rest of its
    /// segment, whose batch boundaries may be lost.
    pub fn for_each_batch(&self, mut f: impl FnMut(&BatchHeader, &[u8])) -> Result<(), LogError> {
        let mut offset = self.offsets().log_start_offset;
        let end = self.high_watermark();
        while offset < end {
            let (chunk, _) = match self.read(offset, 1 << 20, true) {
                Ok(read) => read,
                Err(LogError::CorruptBatch { .. }) => {
                    let next = self.with_log(|log| {
                        log.segment_base_offsets()
                            .into_iter()
                            .find(|&base| base > offset)
                    });
                    tracing::warn!(topic = %self.topic, partition = self.index, offset,
                        resume = next, "replay skips the rest of a segment with a corrupt batch");
                    match next {
                        Some(next) => {
                            offset = next;
                            continue;
                        }
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let mut rest = &chunk[..];
            while rest.len() >= BATCH_HEADER_LEN {
                let header = BatchHeader::parse(rest)?;
                let size = header.total_size().min(rest.len());
                offset = header.last_offset() + 1;
                f(&header, &rest[..size]);
                rest = &rest[size..];
            }
        }
        Ok(())
    }

    /// Runs `f` with the log locked, for lookups that need the whole log.
    /// Bytes of record batches in the log (all segments).
    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }

    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.log.lock())
    }

    pub fn set_log_config(&self, config: LogConfig) {
        self.log.lock().set_config(config);
    }

    /// Forgets producers idle past `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.log.lock().expire_producers(now_ms, expiration_ms)
    }

    /// Deletes segments past retention or below the log start offset.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        self.log.lock().delete_old_segments(now_ms)
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high
    /// watermark). Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let hw = self.high_watermark();
        let mut log = self.log.lock();
        let offset = if offset == -1 { hw } else { offset };
        if offset > hw || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset(),
                log_end_offset: hw,
            });
        }
        log.advance_log_start_offset(offset)?;
        Ok(log.log_start_offset())
    }

    /// One compaction pass if one is due: planned and installed under the
    /// lock, the segments cleaned outside it so appends and fetches go on.
    pub fn clean(
        &self,
        now_ms: i64,
        limits: CleanerLimits,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.log.lock().cleaner_plan(now_ms)? else {
            return Ok(None);
        };
        tracing::debug!(topic = %self.topic, partition = self.index, "log cleaner started cleaning");
        let Some(cleaned) = cleaner::clean(&plan, limits, stop)? else {
            return Ok(None);
        };
        let stats = cleaned.stats;
        self.log.lock().install_cleaned(cleaned)?;
        Ok(Some(stats))
    }

    /// Whether an append rolled a segment since the last call: the caller
    /// then has the log flushed, as Kafka flushes a log when it rolls, so
    /// the recovery point moves past the segment just closed whatever the
    /// producers' acks and the durability policy.
    pub fn take_roll(&self) -> bool {
        self.rolled.swap(false, Ordering::AcqRel)
    }

    /// Marks the partition as waiting for the flusher; false if it already was.
    pub(crate) fn enqueue_flush(&self) -> bool {
        !self.flush_queued.swap(true, Ordering::AcqRel)
    }

    /// Fsyncs whatever is unflushed (outside the log lock) and publishes the
    /// new durable offset to every waiter; true if it moved. Called by the
    /// flusher only.
    pub(crate) fn flush_now(&self) -> bool {
        self.flush_queued.store(false, Ordering::Release);
        let (files, offset) = self.log.lock().unflushed();
        let started = std::time::Instant::now();
        let synced = files.iter().try_for_each(|f| f.sync_data());
        crate::metrics::global().fsync(started.elapsed());
        match synced {
            Ok(()) => {
                crate::health::global().write_succeeded();
                self.log.lock().mark_flushed(offset);
                let mut moved = false;
                self.durable.send_modify(|m| {
                    moved = offset > m.offset;
                    m.offset = m.offset.max(offset);
                });
                moved
            }
            Err(e) => {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                    "fsync failed; acks=all writes on this partition will fail");
                let what = format!("fsync of {}-{}: {e}", self.topic, self.index);
                crate::health::global().write_failed(what);
                self.durable.send_modify(|m| m.failed = true);
                false
            }
        }
    }

    /// Writes a producer-state snapshot at the log end offset if at least
    /// `min_bytes` were appended since the last one, so a restart replays at
    /// most that much after it.
    pub fn snapshot_producers_if_grown(&self, min_bytes: u64) -> Result<(), LogError> {
        self.log.lock().snapshot_producers_if_grown(min_bytes)
    }

    /// What recovery at open validated and replayed for this partition.
    pub fn recovery_stats(&self) -> crate::log::recovery::RecoveryStats {
        self.log.lock().recovery_stats()
    }

    /// Waits until every offset below `offset` is durable.
    pub async fn wait_durable(&self, offset: i64) -> Result<(), StorageError> {
        let mut rx = self.durable.subscribe();
        let mark = rx
            .wait_for(|m| m.failed || m.offset >= offset)
            .await
            .map(|m| *m)
            .unwrap_or(DurableMark {
                offset: 0,
                failed: true,
            });
        if mark.failed {
            return Err(StorageError {
                topic: self.topic.clone(),
                partition: self.index,
            });
        }
        Ok(())
    }

    pub fn durable_offset(&self) -> i64 {
        self.durable.borrow().offset
    }

    /// Fsyncs everything and returns the recovery point (clean shutdown).
    pub fn close(&self) -> Result<i64, LogError> {
        let mut log = self.log.lock();
        log.flush()?;
        log.write_producer_snapshot()?;
        Ok(log.recovery_point())
    }

    /// The numbers the checkpoint files keep: (recovery point, log start offset, high watermark).
    pub fn checkpoint_offsets(&self) -> (i64, i64, i64) {
        let log = self.log.lock();
        (
            log.recovery_point(),
            log.log_start_offset(),
            self.high_watermark(),
        )
    }

    /// Removes the partition's directory (topic deletion). Requests still
    /// holding this partition finish against unlinked files.
    pub fn delete(&self) -> std::io::Result<()> {
        let log = self.log.lock();
        std::fs::remove_dir_all(log.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;
    use crate::log::segment::segment_file_name;

    #[test]
    fn replay_skips_the_rest_of_a_segment_with_a_corrupt_batch() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 400,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        let mut sizes = Vec::new();
        for i in 0..12 {
            let mut b = batch(2, 1_000 + i);
            sizes.push(b.len());
            log.append(&mut b, 1_000).unwrap();
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        let leo = log.log_end_offset();
        log.flush().unwrap();
        drop(log);
        let path = dir.path().join(segment_file_name(0, "log"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[sizes[0] + sizes[1] - 1] ^= 0x01; // the second batch's records
        std::fs::write(&path, &bytes).unwrap();

        let partition = Partition::new("t", 0, Log::open(dir.path(), config, leo, 0).unwrap());
        let mut seen = Vec::new();
        partition
            .for_each_batch(|h, _| seen.push(h.base_offset))
            .unwrap();
        let expected: Vec<i64> = std::iter::once(0)
            .chain((bases[1]..leo).step_by(2))
            .collect();
        assert_eq!(seen, expected);
    }
}
