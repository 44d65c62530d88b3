//! Truncation of a log's tail (Kafka's `UnifiedLog.truncateTo`): a follower
//! cuts the batches where its log diverges from the leader's (KIP-101/279)
//! before it fetches again. Everything at and above the cut goes — segments,
//! index entries, aborted transactions, leader epochs, producer state — and
//! what changed is fsynced, so a crash never brings the tail back. It never
//! changes a byte below the cut.

use super::checkpoint::sync_dir;
use super::error::LogError;
use super::partition_log::Log;
use super::producer_state::{delete_snapshot, list_snapshots, ProducerStateManager};
use super::segment::LogSegment;

impl Log {
    /// Removes every batch holding an offset at or above `offset`. A batch
    /// holding `offset` in its middle goes whole, so the log end offset
    /// becomes its base offset. Nothing happens when `offset` is at or past
    /// the log end (but an epoch entry at the log end with no batch yet is
    /// dropped, as Kafka does). Below the first segment everything goes and
    /// the log restarts, empty, at `offset`; otherwise the log start offset
    /// comes down to the new log end if it was above it. The recovery point
    /// and the cleaner's position come down to the new log end too, and
    /// producer state is rebuilt from the newest snapshot at or below it.
    ///
    /// The broker must only cut above the high watermark of data it has
    /// served (see [`super::FetchSlice`]'s mapping rule), and should write
    /// its recovery-point checkpoint before appending again: a recovery
    /// point above the cut would leave new, unflushed batches unchecked by
    /// recovery after a crash.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset >= leo {
            self.leader_epochs.truncate_from_end(leo)?;
            return Ok(());
        }
        self.check_online()?;
        let first_base = self.segments.first().map_or(0, |s| s.base_offset());
        let bytes_before = self.size_bytes();
        if offset < first_base {
            self.truncate_fully_and_start_at(offset)?;
        } else {
            // Newest first, so a crash part-way leaves a prefix of the old log.
            while self.segments.len() > 1
                && self
                    .segments
                    .last()
                    .is_some_and(|s| s.base_offset() > offset)
            {
                if let Some(seg) = self.segments.pop() {
                    seg.delete()?;
                }
            }
            let last = self.segments.len() - 1;
            self.segments[last].truncate_to(offset)?;
            sync_dir(&self.dir)?;
            self.prune_txn_indexes();
            let new_leo = self.log_end_offset();
            self.log_start_offset = self.log_start_offset.min(new_leo);
        }
        let new_leo = self.log_end_offset();
        debug_assert!(
            new_leo <= offset,
            "truncation leaves nothing at or above the cut"
        );
        self.leader_epochs.truncate_from_end(new_leo)?;
        self.recovery_point = self.recovery_point.min(new_leo);
        self.first_dirty_offset = self
            .first_dirty_offset
            .min(new_leo)
            .max(self.log_start_offset);
        // Snapshots past the new end describe batches that are gone; the
        // replay from the newest one left also rebuilds the transaction
        // indexes from there.
        for snapshot in list_snapshots(&self.dir)? {
            if snapshot > new_leo {
                delete_snapshot(&self.dir, snapshot)?;
            }
        }
        self.producers = ProducerStateManager::new();
        self.load_producer_state()?;
        self.bytes_since_snapshot = 0;
        sync_dir(&self.dir)?;
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = new_leo,
            previous_log_end_offset = leo, bytes_cut = bytes_before.saturating_sub(self.size_bytes()),
            "truncated the log");
        Ok(())
    }

    /// Empties the log and starts it again at `offset`, past its end: a
    /// follower whose log ends below the leader's log start offset (new, or
    /// away longer than the leader's retention) cannot catch up by fetching
    /// and takes the leader's log from its start (Kafka's
    /// `truncateFullyAndStartAt` on OFFSET_OUT_OF_RANGE). Everything it held
    /// goes: segments, indexes, producer state, leader epochs.
    pub fn restart_at(&mut self, offset: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if offset <= leo {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        self.check_online()?;
        self.truncate_fully_and_start_at(offset)?;
        self.recovery_point = offset;
        self.first_dirty_offset = offset;
        self.producers = ProducerStateManager::new();
        self.bytes_since_snapshot = 0;
        tracing::info!(dir = %self.dir.display(), offset, previous_log_end_offset = leo,
            "restarted the log at the leader's log start offset");
        Ok(())
    }

    /// Replaces every segment with one empty segment at `offset`, below or
    /// past all of them, which becomes the log start offset (Kafka's
    /// `truncateFullyAndStartAt`).
    fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        let fresh = LogSegment::create(&self.dir, offset, &self.config)?;
        self.segments.insert(0, fresh);
        sync_dir(&self.dir)?;
        while self.segments.len() > 1 {
            if let Some(seg) = self.segments.pop() {
                seg.delete()?;
            }
        }
        for snapshot in list_snapshots(&self.dir)? {
            delete_snapshot(&self.dir, snapshot)?;
        }
        for index in self.txn_indexes.values_mut() {
            index.delete()?;
        }
        self.txn_indexes.clear();
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.leader_epochs.clear()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::{batch, producer_batch};
    use crate::log::batch::BatchHeader;
    use crate::log::replication::tests::{
        all_batches, assert_same_state, config, epochs, leader_history, replicate,
    };
    use crate::log::segment::segment_file_name;
    use std::fs;
    use std::path::Path;

    /// A log holding exactly `batches`, written as a follower would.
    fn reference(dir: &Path, batches: &[Vec<u8>]) -> Log {
        let mut log = Log::open(dir, config(400), 0, 0).unwrap();
        if !batches.is_empty() {
            log.append_as_follower(&mut batches.concat(), 1).unwrap();
        }
        log
    }

    /// Every offset reads back as the batch holding it (index lookups included).
    fn assert_offsets_read_their_batch(log: &Log) {
        for offset in log.log_start_offset()..log.log_end_offset() {
            let bytes = log
                .read(offset, 1, log.log_end_offset(), true)
                .unwrap()
                .read()
                .unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert!(
                (h.base_offset..=h.last_offset()).contains(&offset),
                "offset {offset}"
            );
        }
    }

    fn reopen(dir: &Path, log: Log) -> Log {
        let (rp, start) = (log.recovery_point(), log.log_start_offset());
        drop(log);
        Log::open(dir, config(400), rp, start).unwrap()
    }

    /// Cuts the leader history at every offset: the result equals a log that
    /// only ever held the batches below the cut, before and after a reopen,
    /// and fetching from the leader again restores the leader's log.
    #[test]
    fn truncation_at_every_offset_leaves_exactly_the_batches_below_it() {
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = leader_history(leader_dir.path());
        let batches = all_batches(&leader);
        let bases = leader.segment_base_offsets();
        for offset in 0..=leader.log_end_offset() + 1 {
            let dir = tempfile::tempdir().unwrap();
            let mut log = leader_history(dir.path());
            log.flush().unwrap();
            log.truncate_to(offset).unwrap();
            let kept: Vec<Vec<u8>> = batches
                .iter()
                .filter(|b| BatchHeader::parse(b).unwrap().last_offset() < offset)
                .cloned()
                .collect();
            let new_leo = kept
                .last()
                .map_or(0, |b| BatchHeader::parse(b).unwrap().last_offset() + 1);
            assert_eq!(log.log_end_offset(), new_leo, "cut at {offset}");
            assert_eq!(log.recovery_point(), new_leo);
            let ref_dir = tempfile::tempdir().unwrap();
            let expected = reference(ref_dir.path(), &kept);
            assert_same_state(&log, &expected);
            assert_offsets_read_their_batch(&log);
            // No segment starts past the new end; files agree with memory.
            let live = log.segment_base_offsets();
            assert!(live.iter().all(|&b| b <= new_leo.max(0)), "{live:?}");
            for &b in &bases {
                assert_eq!(
                    dir.path().join(segment_file_name(b, "log")).exists(),
                    live.contains(&b),
                    "segment {b} after a cut at {offset}"
                );
            }
            let on_disk: u64 = live
                .iter()
                .map(|&b| {
                    fs::metadata(dir.path().join(segment_file_name(b, "log")))
                        .unwrap()
                        .len()
                })
                .sum();
            assert_eq!(on_disk, kept.iter().map(|b| b.len() as u64).sum::<u64>());
            let active = *live.last().unwrap();
            if let Some(mark) = log
                .read(
                    active.max(log.log_start_offset()),
                    usize::MAX,
                    i64::MAX,
                    true,
                )
                .unwrap()
                .verified
            {
                let size = fs::metadata(dir.path().join(segment_file_name(active, "log")))
                    .unwrap()
                    .len();
                assert!(mark.range_now().1 <= size, "the mark stays inside the file");
            }

            let mut log = reopen(dir.path(), log);
            assert_same_state(&log, &expected);
            assert_offsets_read_their_batch(&log);

            // Fetching again from the leader gives back the leader's log.
            replicate(&leader, &mut log, 300);
            assert_same_state(&log, &leader);
            let log = reopen(dir.path(), log);
            assert_same_state(&log, &leader);
        }
    }

    /// A follower below the leader's log start takes the leader's log from
    /// there: nothing of its own stays, before or after a reopen.
    #[test]
    fn a_restart_past_the_end_empties_the_log_and_takes_the_leaders_from_its_start() {
        let leader_dir = tempfile::tempdir().unwrap();
        let mut leader = leader_history(leader_dir.path());
        let start = *leader.segment_base_offsets().last().unwrap();
        leader.advance_log_start_offset(start).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut log = reference(
            dir.path(),
            &all_batches(&leader_history(leader_dir.path().join("x").as_path()))[..2],
        );
        assert!(log.log_end_offset() < start, "{start}");
        assert!(
            log.restart_at(log.log_end_offset()).is_err(),
            "only past the end"
        );
        log.restart_at(start).unwrap();
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.recovery_point()
            ),
            (start, start, start)
        );
        assert!(epochs(&log).is_empty());
        assert!(log.producer_state().entry(5).is_none());
        replicate(&leader, &mut log, 300);
        let same = |log: &Log| {
            assert_eq!(
                (log.log_start_offset(), log.log_end_offset()),
                (leader.log_start_offset(), leader.log_end_offset())
            );
            assert_eq!(all_batches(log), all_batches(&leader));
            assert_eq!(epochs(log), epochs(&leader));
        };
        same(&log);
        let log = reopen(dir.path(), log);
        same(&log);
        assert_offsets_read_their_batch(&log);
    }

    #[test]
    fn a_cut_in_the_middle_of_a_batch_removes_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_history(dir.path());
        // Batch 12-14 holds offset 13.
        log.truncate_to(13).unwrap();
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(epochs(&log), [(1, 0), (2, 9)]);
        // Appending as leader goes on at the new log end, in the leader's epoch.
        log.set_leader_epoch(7).unwrap();
        let info = log.append(&mut batch(1, 5), 1).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (12, 12));
        assert_eq!(epochs(&log), [(1, 0), (2, 9), (7, 12)]);
        let last = all_batches(&log).pop().unwrap();
        assert_eq!(BatchHeader::parse(&last).unwrap().partition_leader_epoch, 7);
    }

    #[test]
    fn producer_state_after_truncation_forgets_what_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_history(dir.path());
        // Cut before producer 7's abort marker (11): its transaction is open again.
        log.truncate_to(11).unwrap();
        assert_eq!(log.last_stable_offset(11), 7);
        assert!(log.aborted_transactions(0, 11).is_empty());
        assert_eq!(
            log.producer_state().entry(5).unwrap().last_seq(),
            Some(4),
            "producer 5's batch at 18 is gone"
        );
        assert!(log.producer_state().entry(9).is_none());
        // Producer 5 may write sequence 5 again, at the new end.
        let info = log
            .append(&mut producer_batch(5, 0, 5, 1, false), 1)
            .unwrap();
        assert_eq!((info.base_offset, info.duplicate), (11, false));
        // No snapshot describes offsets past the cut.
        let snapshots = crate::log::producer_state::list_snapshots(dir.path()).unwrap();
        assert!(snapshots.iter().all(|&s| s <= 11), "{snapshots:?}");
    }

    #[test]
    fn a_cut_below_every_segment_restarts_an_empty_log_at_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_history(dir.path());
        let bases = log.segment_base_offsets();
        log.advance_log_start_offset(bases[2]).unwrap();
        assert_eq!(log.segment_base_offsets()[0], bases[2]);
        let below = bases[2] - 1;
        log.truncate_to(below).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![below]);
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (below, below)
        );
        assert_eq!(epochs(&log), []);
        assert_eq!(log.producer_state().producer_count(), 0);
        assert!(log.aborted_transactions(0, 100).is_empty());
        assert!(crate::log::producer_state::list_snapshots(dir.path())
            .unwrap()
            .is_empty());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log") || n.ends_with(".txnindex"))
            .collect();
        assert_eq!(names, [segment_file_name(below, "log")]);
        let mut log = reopen(dir.path(), log);
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (below, below)
        );
        assert_eq!(epochs(&log), []);
        // Nothing on disk names an epoch any more; the broker sets the next one.
        assert_eq!(log.leader_epoch(), 0);
        log.set_leader_epoch(6).unwrap();
        let info = log.append(&mut batch(2, 5), 1).unwrap();
        assert_eq!(info.base_offset, below);
        assert_eq!(epochs(&log), [(6, below)]);
    }

    #[test]
    fn a_cut_at_or_past_the_log_end_changes_nothing_but_an_empty_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = leader_history(dir.path());
        let before = all_batches(&log);
        log.set_leader_epoch(8).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (2, 9), (5, 16), (8, 20)]);
        log.truncate_to(25).unwrap();
        log.truncate_to(20).unwrap();
        assert_eq!(all_batches(&log), before);
        assert_eq!(epochs(&log), [(1, 0), (2, 9), (5, 16)]);
        assert!(log.truncate_to(-1).is_err());
    }
}
