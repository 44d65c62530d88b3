//! Deletion of whole segments from the front of a log: by `retention.ms`
//! (a segment's largest timestamp), by `retention.bytes`, and below a log
//! start offset moved by DeleteRecords. Kafka's `UnifiedLog.deleteOldSegments`.
//! It only removes whole segments and never data newer than a retention bound.

use super::error::LogError;
use super::partition_log::Log;

/// What one retention pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
}

impl Log {
    /// Deletes segments past `retention.ms` or beyond `retention.bytes` (with
    /// `cleanup.policy=delete`) and segments wholly below the log start offset.
    /// An expired active segment is rolled first, so the log always keeps an
    /// active segment at the log end offset.
    pub fn delete_old_segments(&mut self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        let mut count = 0usize;
        if self.config.delete {
            if self.config.retention_ms >= 0 {
                let limit = self.config.retention_ms;
                count = self
                    .segments
                    .iter()
                    .take_while(|s| {
                        !s.is_empty() && now_ms.saturating_sub(s.max_timestamp()) > limit
                    })
                    .count();
            }
            if self.config.retention_bytes >= 0 {
                let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
                let by_size = self
                    .segments
                    .iter()
                    .take_while(|s| {
                        let fits = excess - s.size() as i64 >= 0;
                        if fits {
                            excess -= s.size() as i64;
                        }
                        fits && !s.is_empty()
                    })
                    .count();
                count = count.max(by_size);
            }
        }
        // Segments holding nothing at or after the log start offset.
        let below_start = self
            .segments
            .windows(2)
            .take_while(|w| w[1].base_offset() <= self.log_start_offset)
            .count();
        count = count.max(below_start);
        if count == 0 {
            return Ok(RetentionOutcome::default());
        }
        if count >= self.segments.len() {
            self.roll()?;
            count = self.segments.len() - 1;
        }
        Ok(self.delete_first_segments(count))
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords) and
    /// deletes the segments wholly below it. `offset` must not pass the log end.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if offset > leo || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.first_dirty_offset = self.first_dirty_offset.max(offset);
            self.delete_old_segments_below_start();
        }
        Ok(())
    }

    fn delete_old_segments_below_start(&mut self) {
        let count = self
            .segments
            .windows(2)
            .take_while(|w| w[1].base_offset() <= self.log_start_offset)
            .count();
        self.delete_first_segments(count);
    }

    /// Removes the first `count` segments (never the active one) and moves the
    /// log start offset to the first remaining segment if it lies behind it.
    fn delete_first_segments(&mut self, count: usize) -> RetentionOutcome {
        let count = count.min(self.segments.len() - 1);
        let mut outcome = RetentionOutcome::default();
        for seg in self.segments.drain(..count) {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += seg.size();
            let path = seg.log_path().to_path_buf();
            // Readers still holding the file keep reading it; unlink failures
            // leave a file the next start deletes as below the log start offset.
            if let Err(e) = seg.delete() {
                tracing::warn!(segment = %path.display(), error = %e, "could not delete a segment");
            }
        }
        self.prune_txn_indexes();
        if let Some(first) = self.segments.first() {
            self.log_start_offset = self.log_start_offset.max(first.base_offset());
        }
        self.first_dirty_offset = self.first_dirty_offset.max(self.log_start_offset);
        self.leader_epochs_follow_log_start();
        if outcome.segments_deleted > 0 {
            tracing::info!(dir = %self.dir.display(), segments = outcome.segments_deleted,
                bytes = outcome.bytes_deleted, log_start_offset = self.log_start_offset,
                "deleted old segments");
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::test_util::batch;
    use crate::log::{Log, LogConfig};

    fn config(retention_ms: i64, retention_bytes: i64, segment_bytes: u64) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            segment_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_retention_deletes_whole_expired_segments_and_moves_the_start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 0).len() as u64;
        let mut log = Log::open(dir.path(), config(1_000, -1, one * 2), 0, 0).unwrap();
        // Segments [0..4) ts 100, [4..8) ts 100 and 5_000, [8..10) ts 5_000.
        for ts in [100, 100, 100, 5_000, 5_000] {
            log.append(&mut batch(2, ts), 1).unwrap();
        }
        assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
        let out = log.delete_old_segments(5_500).unwrap();
        assert_eq!(out.segments_deleted, 1);
        assert_eq!(log.segment_base_offsets(), vec![4, 8]);
        assert_eq!(log.log_start_offset(), 4);
        assert!(log.read(3, 100, 10, true).is_err());
        // Everything expired: the active segment is rolled, then deleted.
        log.delete_old_segments(7_000).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![10]);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
        assert_eq!(log.append(&mut batch(1, 7_000), 1).unwrap().base_offset, 10);
    }

    #[test]
    fn size_retention_keeps_the_log_under_the_bound_plus_one_segment() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 0).len() as u64;
        let mut log = Log::open(dir.path(), config(-1, (one * 5) as i64, one * 2), 0, 0).unwrap();
        for _ in 0..11 {
            log.append(&mut batch(2, 1), 1).unwrap();
        }
        log.delete_old_segments(1).unwrap();
        assert!(log.size_bytes() <= one * 5, "{}", log.size_bytes());
        assert_eq!(log.segment_base_offsets(), vec![12, 16, 20]);
        assert_eq!(log.log_start_offset(), 12);
        assert_eq!(log.log_end_offset(), 22);
    }

    #[test]
    fn delete_records_moves_the_start_offset_and_drops_segments_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 0).len() as u64;
        let mut log = Log::open(dir.path(), config(-1, -1, one * 2), 0, 0).unwrap();
        for _ in 0..5 {
            log.append(&mut batch(2, 1), 1).unwrap();
        }
        log.advance_log_start_offset(5).unwrap();
        assert_eq!(log.log_start_offset(), 5);
        assert_eq!(log.segment_base_offsets(), vec![4, 8]);
        assert!(log.read(4, 100, 10, true).is_err());
        assert!(log.read(5, 100, 10, true).is_ok());
        // Never backwards, never past the end.
        log.advance_log_start_offset(2).unwrap();
        assert_eq!(log.log_start_offset(), 5);
        assert!(log.advance_log_start_offset(11).is_err());
        drop(log);
        let log = Log::open(dir.path(), config(-1, -1, one * 2), 0, 5).unwrap();
        assert_eq!(log.log_start_offset(), 5);
    }
}
