//! The log's producer and transaction bookkeeping: rebuilding producer state
//! at open (newest usable snapshot + the batch headers after it), snapshots at roll
//! and close, the last stable offset, the aborted transactions a
//! `read_committed` fetch must list, and producer-id expiration.

use std::os::unix::fs::FileExt;

use super::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use super::error::LogError;
use super::partition_log::Log;
use super::producer_state::{delete_snapshot, list_snapshots, snapshot_path, ProducerStateManager};
use super::txn_index::{AbortedTxn, TxnIndex};

/// Snapshots kept per partition; older ones are deleted as new ones are taken.
const SNAPSHOTS_RETAINED: usize = 3;
/// The largest control batch read back while replaying (a marker is ~80 bytes).
const MAX_CONTROL_BATCH: usize = 4096;

impl Log {
    /// The last stable offset: nothing at or after the first offset of an
    /// open transaction is visible to `read_committed` consumers.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Aborted transactions overlapping `[from, upper)`: those whose marker is
    /// at or after `from` and whose first offset is below `upper`.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let first_base = self
            .segments
            .iter()
            .rev()
            .find(|s| s.base_offset() <= from)
            .map_or(i64::MIN, |s| s.base_offset());
        self.txn_indexes
            .range(first_base..)
            .flat_map(|(_, index)| index.entries())
            .filter(|e| e.last_offset >= from && e.first_offset < upper)
            .copied()
            .collect()
    }

    /// The producer state (for tests and DescribeProducers).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms`.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// Writes a snapshot at the log end offset and deletes the oldest ones,
    /// except the newest at or below the recovery point: snapshots are not
    /// fsynced and may lie past what a power loss leaves of the log, and the
    /// one below the durable data keeps the replay at open short then too.
    pub(super) fn take_producer_snapshot(&mut self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        self.producers.write_snapshot(&self.dir, leo)?;
        self.bytes_since_snapshot = 0;
        let snapshots = list_snapshots(&self.dir)?;
        let excess = snapshots.len().saturating_sub(SNAPSHOTS_RETAINED);
        let durable = snapshots
            .iter()
            .rev()
            .find(|&&offset| offset <= self.recovery_point());
        for offset in &snapshots[..excess] {
            if Some(offset) != durable {
                delete_snapshot(&self.dir, *offset)?;
            }
        }
        Ok(())
    }

    /// A snapshot at the log end offset if at least `min_bytes` were appended
    /// since the last one (taken while the broker runs, so the replay after
    /// a crash is bounded by that, not by the segment size).
    pub fn snapshot_producers_if_grown(&mut self, min_bytes: u64) -> Result<(), LogError> {
        if self.bytes_since_snapshot < min_bytes.max(1) {
            return Ok(());
        }
        self.take_producer_snapshot()
    }

    /// A snapshot at the log end offset, so the next open replays nothing
    /// (clean shutdown).
    pub fn write_producer_snapshot(&mut self) -> Result<(), LogError> {
        for index in self.txn_indexes.values() {
            index.sync()?;
        }
        self.take_producer_snapshot()
    }

    /// Drops the transaction indexes of segments that no longer exist.
    pub(super) fn prune_txn_indexes(&mut self) {
        let bases: Vec<i64> = self.segments.iter().map(|s| s.base_offset()).collect();
        let dir = self.dir.display().to_string();
        self.txn_indexes.retain(|base, index| {
            let keep = bases.binary_search(base).is_ok();
            if !keep {
                if let Err(e) = index.delete() {
                    tracing::warn!(dir = %dir, error = %e, "could not delete a transaction index");
                }
            }
            keep
        });
    }

    /// Rebuilds producer state: the newest snapshot at or below the log end
    /// offset that reads back whole, then every batch after it. Transaction
    /// index entries past the snapshot are rebuilt by the same replay.
    pub(super) fn load_producer_state(&mut self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let mut start = None;
        for offset in list_snapshots(&self.dir)?.into_iter().rev() {
            if offset > leo {
                delete_snapshot(&self.dir, offset)?;
                continue;
            }
            match ProducerStateManager::read_snapshot(&snapshot_path(&self.dir, offset)) {
                Ok(state) => {
                    self.producers = state;
                    start = Some(offset);
                    break;
                }
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "ignoring a damaged producer snapshot");
                    delete_snapshot(&self.dir, offset)?;
                }
            }
        }
        let start = start.unwrap_or(i64::MIN);
        for index in self.txn_indexes.values_mut() {
            index.truncate_from(start)?;
        }
        self.txn_indexes.retain(|_, index| !index.is_empty());
        let mut replayed = 0usize;
        for i in 0..self.segments.len() {
            let seg = &self.segments[i];
            if seg.next_offset() <= start || seg.is_empty() {
                continue;
            }
            let base = seg.base_offset();
            // Headers only (61 bytes a batch), not the records: the segment's
            // bytes were validated by recovery or are below the recovery point.
            let mut batches: Vec<(BatchHeader, Option<Marker>)> = Vec::new();
            let mut headers = seg.headers_from(0);
            for (h, position) in &mut headers {
                if h.last_offset() >= start && h.producer_id >= 0 {
                    let marker = if h.is_control() {
                        read_marker(seg.log_file(), &h, position)
                    } else {
                        None
                    };
                    batches.push((h, marker));
                }
                self.recovery.headers_replayed += 1;
            }
            if let Some(e) = headers.error() {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "stopped replaying producer state in a damaged segment");
            }
            replayed += batches.len();
            for (h, marker) in batches {
                let applied = self.producers.apply(&h, marker.map(|(commit, _)| commit));
                if let Some((_, Some(coordinator_epoch))) = marker {
                    self.producers
                        .set_coordinator_epoch(h.producer_id, coordinator_epoch);
                }
                if let Some(done) = applied {
                    if done.aborted {
                        let lso = self
                            .producers
                            .first_unstable_offset()
                            .unwrap_or(done.last_offset + 1);
                        if !self.txn_indexes.contains_key(&base) {
                            self.txn_indexes
                                .insert(base, TxnIndex::open(&self.dir, base)?);
                        }
                        if let Some(index) = self.txn_indexes.get_mut(&base) {
                            index.append(AbortedTxn {
                                producer_id: done.producer_id,
                                first_offset: done.first_offset,
                                last_offset: done.last_offset,
                                last_stable_offset: lso,
                            })?;
                        }
                    }
                }
            }
        }
        if replayed > 0 || self.producers.producer_count() > 0 {
            tracing::debug!(dir = %self.dir.display(), snapshot = start, replayed,
                producers = self.producers.producer_count(), "loaded producer state");
        }
        Ok(())
    }
}

/// A transaction marker read back: commit (or abort), and the coordinator
/// epoch it carries when readable.
type Marker = (bool, Option<i32>);

/// The marker of the control batch at `pos`, read back from the file.
fn read_marker(file: &std::fs::File, h: &BatchHeader, pos: u64) -> Option<Marker> {
    let size = h.total_size();
    if !(BATCH_HEADER_LEN..=MAX_CONTROL_BATCH).contains(&size) {
        return None;
    }
    let mut buf = vec![0u8; size];
    file.read_exact_at(&mut buf, pos).ok()?;
    let commit = batch::control_marker_type(&buf)?;
    Some((commit, batch::control_coordinator_epoch(&buf)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::{batch, producer_batch};
    use crate::log::batch::ControlMarker;
    use crate::log::partition_log::AppendOrigin;
    use crate::log::producer_state::ProducerError;
    use crate::log::LogConfig;

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            ..LogConfig::default()
        }
    }

    fn marker(pid: i64, commit: bool) -> ControlMarker {
        ControlMarker {
            producer_id: pid,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit,
        }
    }

    #[test]
    fn resent_batches_get_their_original_offsets_before_and_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        log.append(&mut batch(2, 1_000), 1).unwrap();
        let first = log
            .append(&mut producer_batch(5, 0, 0, 3, false), 1)
            .unwrap();
        assert_eq!(
            (first.base_offset, first.last_offset, first.duplicate),
            (2, 4, false)
        );
        let again = log
            .append(&mut producer_batch(5, 0, 0, 3, false), 1)
            .unwrap();
        assert_eq!(
            (again.base_offset, again.last_offset, again.duplicate),
            (2, 4, true)
        );
        assert_eq!(log.log_end_offset(), 5);
        let gap = log.append(&mut producer_batch(5, 0, 4, 1, false), 1);
        assert!(matches!(
            gap,
            Err(LogError::Producer(ProducerError::OutOfOrderSequence(_)))
        ));
        log.append(&mut producer_batch(5, 0, 3, 2, false), 1)
            .unwrap();
        drop(log);

        // Crash-like reopen: no snapshot, state rebuilt from the log.
        for s in list_snapshots(dir.path()).unwrap() {
            delete_snapshot(dir.path(), s).unwrap();
        }
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        let again = log
            .append(&mut producer_batch(5, 0, 3, 2, false), 1)
            .unwrap();
        assert_eq!((again.base_offset, again.duplicate), (5, true));
        assert!(log
            .append(&mut producer_batch(5, 0, 9, 1, false), 1)
            .is_err());
        assert_eq!(
            log.append(&mut producer_batch(5, 0, 5, 1, false), 1)
                .unwrap()
                .base_offset,
            7
        );
        // An older epoch is refused.
        log.append(&mut producer_batch(6, 3, 0, 1, false), 1)
            .unwrap();
        assert!(matches!(
            log.append(&mut producer_batch(6, 2, 1, 1, false), 1),
            Err(LogError::Producer(ProducerError::InvalidProducerEpoch(_)))
        ));
    }

    #[test]
    fn open_transactions_hold_back_the_last_stable_offset_and_aborts_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: the transaction spans several of them.
        let seg = batch(1, 1).len() as u64 * 3;
        let mut log = Log::open(dir.path(), config(seg), 0, 0).unwrap();
        log.append(&mut batch(1, 1_000), 1).unwrap(); // 0
        log.append(&mut producer_batch(7, 0, 0, 1, true), 1)
            .unwrap(); // 1
        log.append(&mut producer_batch(8, 0, 0, 1, true), 1)
            .unwrap(); // 2
        log.append(&mut producer_batch(7, 0, 1, 1, true), 1)
            .unwrap(); // 3
        log.append(&mut batch(1, 1_000), 1).unwrap(); // 4
        assert_eq!(log.last_stable_offset(5), 1);
        let m = log.append_marker(&marker(7, false), 1).unwrap(); // 5
        assert_eq!(m.base_offset, 5);
        assert_eq!(log.last_stable_offset(6), 2);
        log.append_marker(&marker(8, true), 1).unwrap(); // 6
        assert_eq!(log.last_stable_offset(7), 7);
        let aborted = vec![AbortedTxn {
            producer_id: 7,
            first_offset: 1,
            last_offset: 5,
            last_stable_offset: 2,
        }];
        assert_eq!(log.aborted_transactions(0, 7), aborted);
        assert_eq!(log.aborted_transactions(1, 2), aborted);
        assert_eq!(log.aborted_transactions(6, 7), vec![]);
        assert!(log.segment_count() > 2, "the test wants several segments");
        // A client cannot write markers; a non-transactional write inside
        // an open transaction is refused; a fenced marker is refused.
        let mut ctl = crate::log::batch::control_batch(&marker(9, true), 1).unwrap();
        assert!(log.append(&mut ctl, 1).is_err());
        log.append(&mut producer_batch(9, 0, 0, 1, true), 1)
            .unwrap(); // 7
        assert!(matches!(
            log.append(&mut producer_batch(9, 0, 1, 1, false), 1),
            Err(LogError::Producer(ProducerError::InvalidTxnState(_)))
        ));
        let fenced = ControlMarker {
            producer_epoch: 1,
            ..marker(9, false)
        };
        log.append_marker(&fenced, 1).unwrap(); // 8
        assert!(matches!(
            log.append_marker(&marker(9, false), 1),
            Err(LogError::Producer(ProducerError::ProducerFenced(_)))
        ));
        let leo = log.log_end_offset();
        drop(log);

        // Reopened with and without snapshots: the same state and index.
        for drop_snapshots in [false, true] {
            if drop_snapshots {
                for s in list_snapshots(dir.path()).unwrap() {
                    delete_snapshot(dir.path(), s).unwrap();
                }
            }
            let log = Log::open(dir.path(), config(seg), 0, 0).unwrap();
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(log.last_stable_offset(leo), leo);
            let got = log.aborted_transactions(0, leo);
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0], aborted[0]);
            assert_eq!(
                (got[1].producer_id, got[1].first_offset, got[1].last_offset),
                (9, 7, 8)
            );
        }
    }

    #[test]
    fn coordinator_writes_skip_sequence_checks_but_join_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        let mut b = producer_batch(3, 0, -1, 2, true);
        log.append_from(&mut b, AppendOrigin::Coordinator, 1)
            .unwrap();
        assert_eq!(log.last_stable_offset(2), 0);
        log.append_marker(&marker(3, true), 1).unwrap();
        assert_eq!(log.last_stable_offset(3), 3);
        assert!(log.aborted_transactions(0, 3).is_empty());
    }

    #[test]
    fn snapshots_are_taken_at_roll_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let seg = producer_batch(1, 0, 0, 1, false).len() as u64;
        let mut log = Log::open(dir.path(), config(seg), 0, 0).unwrap();
        for i in 0..10 {
            log.append(&mut producer_batch(1, 0, i, 1, false), 1)
                .unwrap();
        }
        let snaps = list_snapshots(dir.path()).unwrap();
        assert_eq!(snaps, vec![7, 8, 9]);
    }
}
