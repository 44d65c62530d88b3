//! What replication needs of a partition's log besides truncation: the
//! leader epoch this replica stamps into its appends as leader, the
//! leader-epoch cache kept in step with the batches in the log, and appends
//! of a leader's batches on a follower (Kafka's `appendAsFollower`), which
//! keep the leader's offsets, epochs and timestamps. It never assigns offsets.

use super::batch::{self, validate_replicated_batches, BatchHeader};
use super::error::LogError;
use super::leader_epoch::{CheckpointLoad, LeaderEpochFileCache};
use super::partition_log::{AppendInfo, Log};

impl Log {
    /// This replica became leader in `epoch`: the epoch starts at the log
    /// end offset (Kafka assigns it there when the replica becomes leader,
    /// even before it appends anything), and every batch this log appends
    /// from now on (clients', coordinators', transaction markers) carries
    /// it as its partition leader epoch. Negative epochs are ignored.
    pub fn set_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if epoch < 0 {
            tracing::warn!(dir = %self.dir.display(), epoch, "ignoring a negative leader epoch");
            return Ok(());
        }
        let leo = self.log_end_offset();
        self.leader_epochs.assign(epoch, leo)?;
        self.leader_epoch = epoch;
        Ok(())
    }

    /// The epoch stamped into batches this log appends as leader: the last
    /// one set, else the latest epoch in the cache at open, else 0.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The latest leader epoch that wrote to (or leads) this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.leader_epochs.latest_epoch()
    }

    /// OffsetsForLeaderEpoch for `epoch`: (epoch, end offset), see
    /// [`LeaderEpochFileCache::end_offset_for`].
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.leader_epochs
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch cache (for inspection; the log keeps it in step).
    pub fn leader_epoch_cache(&self) -> &LeaderEpochFileCache {
        &self.leader_epochs
    }

    /// Appends the leader's batches as they are (Kafka's `appendAsFollower`):
    /// checks their structure and CRC, that the first starts at or after the
    /// log end offset and each after the one before it (offsets may skip
    /// what the leader's cleaner removed), never reassigns offsets, epochs or
    /// timestamps, rolls and indexes as usual, records the new leader epochs
    /// they start, and applies them to producer state as a replica does: no
    /// sequence or epoch checks, but producers, sequences, open transactions
    /// and markers (with their coordinator epoch, and aborted transactions
    /// in the transaction index) end up as on the leader. Empty `records`
    /// append nothing. On an error nothing was written.
    pub fn append_as_follower(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let leo = self.log_end_offset();
        if records.is_empty() {
            return Ok(AppendInfo {
                base_offset: leo,
                last_offset: leo - 1,
                log_append_time: -1,
                max_timestamp: -1,
                duplicate: false,
            });
        }
        let headers = validate_replicated_batches(records)?;
        let mut expected = leo;
        let mut max_timestamp = -1i64;
        for h in &headers {
            if h.base_offset < expected {
                return Err(LogError::UnexpectedAppendOffset {
                    expected,
                    got: h.base_offset,
                });
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            expected = h.last_offset().saturating_add(1);
        }
        let base_offset = headers[0].base_offset;
        self.write_batches(records, &headers, now_ms)?;
        let mut pos = 0usize;
        for h in &headers {
            let b = &records[pos..pos + h.total_size()];
            pos += h.total_size();
            let marker = if h.is_control() {
                batch::control_marker_type(b)
            } else {
                None
            };
            self.apply_producer_batch(h, marker)?;
            if marker.is_some() {
                if let Some(coordinator_epoch) = batch::control_coordinator_epoch(b) {
                    self.producers
                        .set_coordinator_epoch(h.producer_id, coordinator_epoch);
                }
            }
        }
        Ok(AppendInfo {
            base_offset,
            last_offset: expected - 1,
            log_append_time: -1,
            max_timestamp,
            duplicate: false,
        })
    }

    /// Records the epoch of a batch about to be written if it starts a newer
    /// one (Kafka's rule: epoch >= 0 and above the latest in the cache).
    pub(super) fn assign_batch_epoch(&mut self, h: &BatchHeader) -> Result<(), LogError> {
        let epoch = h.partition_leader_epoch;
        if epoch >= 0 && self.leader_epochs.latest_epoch().is_none_or(|l| epoch > l) {
            self.leader_epochs.assign(epoch, h.base_offset)?;
        }
        Ok(())
    }

    /// Drops epoch entries for batches that were not written after all.
    pub(super) fn undo_epochs_past(&mut self, log_end_offset: i64) {
        if let Err(e) = self.leader_epochs.truncate_from_end(log_end_offset) {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "could not rewrite the leader-epoch checkpoint after a failed append");
        }
    }

    /// The log start offset moved up: so does the first epoch entry. A failed
    /// write is only logged: the next open truncates the cache the same way.
    pub(super) fn leader_epochs_follow_log_start(&mut self) {
        if let Err(e) = self
            .leader_epochs
            .truncate_from_start(self.log_start_offset)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "could not rewrite the leader-epoch checkpoint after the log start offset moved");
        }
    }

    /// Brings the cache loaded at open in step with the recovered log: entries
    /// past the log end go, the epochs of batches from the recovery point on
    /// (all batches, when the checkpoint was missing or damaged) are added,
    /// and the first entry moves up to the log start offset. The epoch for
    /// leader appends starts as the latest one.
    pub(super) fn load_leader_epochs(
        &mut self,
        load: CheckpointLoad,
        recovery_point: i64,
    ) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        self.leader_epochs.truncate_from_end(leo)?;
        let loaded = load == CheckpointLoad::Loaded;
        let from = if loaded {
            recovery_point.clamp(0, leo)
        } else {
            i64::MIN
        };
        self.assign_epochs_from(from)?;
        self.leader_epochs
            .truncate_from_start(self.log_start_offset)?;
        let has_data = self.segments.iter().any(|s| !s.is_empty());
        if !loaded && (has_data || matches!(load, CheckpointLoad::Damaged(_))) {
            // Written once, so the next open does not walk the log again.
            self.leader_epochs.flush()?;
        }
        self.leader_epoch = self.leader_epochs.latest_epoch().unwrap_or(0).max(0);
        Ok(())
    }

    /// Walks the batch headers of the batches ending at or after `from` and
    /// records the epochs they start.
    fn assign_epochs_from(&mut self, from: i64) -> Result<(), LogError> {
        let first = self
            .segments
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        let cache = &mut self.leader_epochs;
        for seg in &self.segments[first..] {
            let position = if from > seg.base_offset() {
                seg.offset_index().lookup(from).1
            } else {
                0
            };
            let mut headers = seg.headers_from(position);
            for (h, _) in &mut headers {
                let epoch = h.partition_leader_epoch;
                if h.last_offset() >= from
                    && epoch >= 0
                    && cache.latest_epoch().is_none_or(|l| epoch > l)
                {
                    cache.assign(epoch, h.base_offset)?;
                }
            }
            if let Some(e) = headers.error() {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "stopped reading leader epochs in a damaged segment");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::log::batch::test_util::{batch, producer_batch};
    use crate::log::batch::{BatchError, ControlMarker};
    use crate::log::leader_epoch::LEADER_EPOCH_CHECKPOINT;
    use crate::log::partition_log::AppendOrigin;
    use crate::log::producer_state::ProducerEntry;
    use crate::log::txn_index::AbortedTxn;
    use crate::log::LogConfig;
    use std::fs;
    use std::path::Path;

    pub fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 100,
            ..LogConfig::default()
        }
    }

    pub fn marker(pid: i64, commit: bool, coordinator_epoch: i32) -> ControlMarker {
        ControlMarker {
            producer_id: pid,
            producer_epoch: 0,
            coordinator_epoch,
            commit,
        }
    }

    /// Every batch from the log start to the log end, each as stored.
    pub fn all_batches(log: &Log) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let bytes = log
                .read(offset, usize::MAX, log.log_end_offset(), true)
                .unwrap()
                .read()
                .unwrap();
            if bytes.is_empty() {
                break;
            }
            let mut pos = 0;
            while pos < bytes.len() {
                let h = BatchHeader::parse(&bytes[pos..]).unwrap();
                out.push(bytes[pos..pos + h.total_size()].to_vec());
                pos += h.total_size();
                offset = h.last_offset() + 1;
            }
        }
        out
    }

    pub fn epochs(log: &Log) -> Vec<(i32, i64)> {
        log.leader_epoch_cache()
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    pub fn producers(log: &Log) -> Vec<(i64, ProducerEntry)> {
        let mut v: Vec<(i64, ProducerEntry)> = log
            .producer_state()
            .producers()
            .map(|(id, e)| (id, e.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    pub fn aborted(log: &Log) -> Vec<AbortedTxn> {
        log.aborted_transactions(0, log.log_end_offset())
    }

    /// A leader log with plain, idempotent and transactional batches, markers
    /// that commit and abort, coordinator writes and two leader epochs,
    /// across several segments.
    pub fn leader_history(dir: &Path) -> Log {
        let mut log = Log::open(dir, config(400), 0, 0).unwrap();
        log.set_leader_epoch(1).unwrap();
        log.append(&mut batch(2, 1_000), 1).unwrap(); // 0-1
        log.append(&mut producer_batch(5, 0, 0, 3, false), 1)
            .unwrap(); // 2-4
        log.append(&mut producer_batch(5, 0, 3, 2, false), 1)
            .unwrap(); // 5-6
        log.append(&mut producer_batch(7, 0, 0, 2, true), 1)
            .unwrap(); // 7-8
        log.set_leader_epoch(2).unwrap();
        log.append(&mut producer_batch(8, 0, 0, 1, true), 1)
            .unwrap(); // 9
        log.append(&mut producer_batch(7, 0, 2, 1, true), 1)
            .unwrap(); // 10
        log.append_marker(&marker(7, false, 3), 1).unwrap(); // 11
        log.append(&mut batch(3, 1_100), 1).unwrap(); // 12-14
        log.append_marker(&marker(8, true, 4), 1).unwrap(); // 15
        log.set_leader_epoch(5).unwrap();
        log.append_from(
            &mut producer_batch(9, 0, -1, 2, true),
            AppendOrigin::Coordinator,
            1,
        )
        .unwrap(); // 16-17
        log.append(&mut producer_batch(5, 0, 5, 1, false), 1)
            .unwrap(); // 18
        log.append(&mut batch(1, 1_200), 1).unwrap(); // 19
        assert_eq!(log.log_end_offset(), 20);
        assert!(log.segment_count() >= 3, "{:?}", log.segment_base_offsets());
        log
    }

    /// Copies the leader's log to `follower` in fetches of at most `max_bytes`.
    pub fn replicate(leader: &Log, follower: &mut Log, max_bytes: usize) {
        while follower.log_end_offset() < leader.log_end_offset() {
            let slice = leader
                .read(
                    follower.log_end_offset(),
                    max_bytes,
                    leader.log_end_offset(),
                    true,
                )
                .unwrap();
            let mut bytes = slice.read().unwrap().to_vec();
            assert!(!bytes.is_empty());
            follower.append_as_follower(&mut bytes, 2).unwrap();
        }
    }

    pub fn assert_same_state(a: &Log, b: &Log) {
        assert_eq!(a.log_start_offset(), b.log_start_offset());
        assert_eq!(a.log_end_offset(), b.log_end_offset());
        assert_eq!(all_batches(a), all_batches(b));
        assert_eq!(epochs(a), epochs(b));
        assert_eq!(producers(a), producers(b));
        assert_eq!(aborted(a), aborted(b));
        let leo = a.log_end_offset();
        assert_eq!(a.last_stable_offset(leo), b.last_stable_offset(leo));
        assert_eq!(
            a.max_timestamp_offset().unwrap(),
            b.max_timestamp_offset().unwrap()
        );
    }

    #[test]
    fn a_single_node_log_stamps_epoch_zero_and_keeps_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        assert_eq!((log.leader_epoch(), log.latest_epoch()), (0, None));
        assert!(!dir.path().join(LEADER_EPOCH_CHECKPOINT).exists());
        let mut b = batch(2, 10);
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // as clients send it
        log.append(&mut b, 1).unwrap();
        log.append(&mut batch(1, 10), 1).unwrap();
        for stored in all_batches(&log) {
            assert_eq!(
                BatchHeader::parse(&stored).unwrap().partition_leader_epoch,
                0
            );
        }
        assert_eq!(epochs(&log), [(0, 0)]);
        assert_eq!(
            fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap(),
            "0\n1\n0 0\n"
        );
        assert_eq!(log.end_offset_for_epoch(0), (0, 3));
    }

    #[test]
    fn leader_appends_carry_the_leader_epoch_and_start_cache_entries() {
        let dir = tempfile::tempdir().unwrap();
        let log = leader_history(dir.path());
        let stamped: Vec<(i64, i32)> = all_batches(&log)
            .iter()
            .map(|b| {
                let h = BatchHeader::parse(b).unwrap();
                (h.base_offset, h.partition_leader_epoch)
            })
            .collect();
        assert_eq!(
            stamped,
            [
                (0, 1),
                (2, 1),
                (5, 1),
                (7, 1),
                (9, 2),
                (10, 2),
                (11, 2),
                (12, 2),
                (15, 2),
                (16, 5),
                (18, 5),
                (19, 5)
            ]
        );
        assert_eq!(epochs(&log), [(1, 0), (2, 9), (5, 16)]);
        assert_eq!(log.latest_epoch(), Some(5));
        assert_eq!(log.end_offset_for_epoch(5), (5, 20));
        assert_eq!(log.end_offset_for_epoch(4), (2, 16));
        assert_eq!(log.end_offset_for_epoch(1), (1, 9));
        assert_eq!(log.end_offset_for_epoch(0), (0, 0));
        assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
        drop(log);
        let log = Log::open(dir.path(), config(400), 0, 0).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (2, 9), (5, 16)]);
        assert_eq!(log.leader_epoch(), 5, "appends go on in the latest epoch");
    }

    #[test]
    fn a_new_leader_epoch_starts_at_the_log_end_before_any_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        log.append(&mut batch(2, 10), 1).unwrap();
        log.set_leader_epoch(4).unwrap();
        assert_eq!(epochs(&log), [(0, 0), (4, 2)]);
        assert_eq!(log.end_offset_for_epoch(0), (0, 2));
        log.set_leader_epoch(4).unwrap();
        assert_eq!(epochs(&log), [(0, 0), (4, 2)]);
        let info = log.append(&mut batch(1, 10), 1).unwrap();
        assert_eq!(info.base_offset, 2);
        assert_eq!(epochs(&log), [(0, 0), (4, 2)]);
        assert_eq!(log.end_offset_for_epoch(4), (4, 3));
    }

    #[test]
    fn a_follower_holds_the_leaders_bytes_epochs_and_producer_state() {
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = leader_history(leader_dir.path());
        for max_bytes in [1, 250, usize::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let mut follower = Log::open(dir.path(), config(400), 0, 0).unwrap();
            replicate(&leader, &mut follower, max_bytes);
            assert_same_state(&leader, &follower);
            assert_eq!(
                aborted(&follower),
                [AbortedTxn {
                    producer_id: 7,
                    first_offset: 7,
                    last_offset: 11,
                    last_stable_offset: 9
                }]
            );
            assert_eq!(follower.last_stable_offset(20), 16, "producer 9 is open");
            let entry = follower.producer_state().entry(8).unwrap();
            assert_eq!(entry.coordinator_epoch, 4);
            // The follower's files tell the same story after a restart.
            follower.flush().unwrap();
            let leo = follower.log_end_offset();
            drop(follower);
            let follower = Log::open(dir.path(), config(400), leo, 0).unwrap();
            assert_same_state(&leader, &follower);
            // Replicated batches from a producer keep working as idempotent ones.
            let mut follower = follower;
            follower.set_leader_epoch(6).unwrap();
            let again = follower
                .append(&mut producer_batch(5, 0, 5, 1, false), 1)
                .unwrap();
            assert_eq!((again.base_offset, again.duplicate), (18, true));
            let next = follower
                .append(&mut producer_batch(5, 0, 6, 1, false), 1)
                .unwrap();
            assert_eq!((next.base_offset, next.duplicate), (20, false));
            assert_eq!(epochs(&follower), [(1, 0), (2, 9), (5, 16), (6, 20)]);
        }
    }

    #[test]
    fn a_follower_append_that_does_not_follow_the_log_is_refused_and_writes_nothing() {
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = leader_history(leader_dir.path());
        let batches = all_batches(&leader);
        let dir = tempfile::tempdir().unwrap();
        let mut follower = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        follower
            .append_as_follower(&mut batches[..3].concat(), 1)
            .unwrap();
        assert_eq!(follower.log_end_offset(), 7);
        let size = follower.size_bytes();
        let before = epochs(&follower);
        let refuse =
            |follower: &mut Log, mut bytes: Vec<u8>, expected: i64, got: i64| match follower
                .append_as_follower(&mut bytes, 1)
            {
                Err(LogError::UnexpectedAppendOffset {
                    expected: e,
                    got: g,
                }) => {
                    assert_eq!((e, g), (expected, got))
                }
                other => panic!("expected a refusal, got {other:?}"),
            };
        // Starts below the log end (already there).
        refuse(&mut follower, batches[2].clone(), 7, 5);
        // The second batch overlaps the first.
        refuse(
            &mut follower,
            [batches[3].clone(), batches[3].clone()].concat(),
            9,
            7,
        );
        // Out of order.
        refuse(
            &mut follower,
            [batches[4].clone(), batches[3].clone()].concat(),
            10,
            7,
        );
        // A torn or flipped batch.
        let mut torn = batches[3].clone();
        torn.pop();
        assert!(matches!(
            follower.append_as_follower(&mut torn, 1),
            Err(LogError::Batch(BatchError::Corrupt(_)))
        ));
        let mut flipped = batches[3].clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            follower.append_as_follower(&mut flipped, 1),
            Err(LogError::Batch(BatchError::Corrupt(_)))
        ));
        assert_eq!(follower.log_end_offset(), 7);
        assert_eq!(follower.size_bytes(), size);
        assert_eq!(
            fs::metadata(dir.path().join("00000000000000000000.log"))
                .unwrap()
                .len(),
            size
        );
        assert_eq!(epochs(&follower), before);
        // Empty records append nothing.
        let info = follower.append_as_follower(&mut [], 1).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (7, 6));
        // A gap the leader's cleaner left is accepted, as in Kafka.
        let info = follower
            .append_as_follower(&mut batches[4].clone(), 1)
            .unwrap();
        assert_eq!((info.base_offset, info.last_offset), (9, 9));
        assert_eq!(follower.log_end_offset(), 10);
        assert_eq!(epochs(&follower), [(1, 0), (2, 9)]);
    }

    #[test]
    fn open_after_a_crash_rebuilds_the_epochs_of_the_recovered_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        let mut log = Log::open(dir.path(), config(1 << 20), 0, 0).unwrap();
        log.set_leader_epoch(1).unwrap();
        log.append(&mut batch(2, 10), 1).unwrap();
        log.flush().unwrap();
        let rp = log.recovery_point();
        let durable = fs::read(&path).unwrap();
        log.set_leader_epoch(3).unwrap();
        log.append(&mut batch(2, 10), 1).unwrap();
        log.set_leader_epoch(4).unwrap();
        log.append(&mut batch(1, 10), 1).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (3, 2), (4, 4)]);
        drop(log);

        // The checkpoint lost its last writes: the tail past the recovery
        // point puts them back.
        fs::write(&path, &durable).unwrap();
        let log = Log::open(dir.path(), config(1 << 20), rp, 0).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (3, 2), (4, 4)]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n3\n1 0\n3 2\n4 4\n");
        drop(log);

        // The log lost its tail (torn write): epochs starting past it go.
        let seg = dir.path().join("00000000000000000000.log");
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut log = Log::open(dir.path(), config(1 << 20), rp, 0).unwrap();
        assert_eq!(log.log_end_offset(), 4);
        assert_eq!(epochs(&log), [(1, 0), (3, 2)]);
        assert_eq!(log.leader_epoch(), 3);
        assert_eq!(log.append(&mut batch(1, 10), 1).unwrap().base_offset, 4);
        drop(log);

        // A damaged checkpoint is rebuilt from every batch.
        fs::write(&path, "0\n7\ngarbage").unwrap();
        let log = Log::open(dir.path(), config(1 << 20), 5, 0).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (3, 2)]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n1 0\n3 2\n");
        drop(log);
        // So is a missing one.
        fs::remove_file(&path).unwrap();
        let log = Log::open(dir.path(), config(1 << 20), 5, 0).unwrap();
        assert_eq!(epochs(&log), [(1, 0), (3, 2)]);
    }

    #[test]
    fn the_first_epoch_follows_the_log_start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 10).len() as u64;
        let mut log = Log::open(dir.path(), config(one * 2), 0, 0).unwrap();
        log.set_leader_epoch(1).unwrap();
        log.append(&mut batch(2, 10), 1).unwrap(); // 0-1
        log.append(&mut batch(2, 10), 1).unwrap(); // 2-3
        log.set_leader_epoch(2).unwrap();
        log.append(&mut batch(2, 10), 1).unwrap(); // 4-5
        log.append(&mut batch(2, 10), 1).unwrap(); // 6-7
        log.advance_log_start_offset(3).unwrap();
        assert_eq!(epochs(&log), [(1, 3), (2, 4)]);
        log.advance_log_start_offset(5).unwrap();
        assert_eq!(epochs(&log), [(2, 5)]);
        assert_eq!(log.end_offset_for_epoch(1), (1, 5));
        drop(log);
        // Reopened with an older checkpoint of the cache, the start offset still wins.
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n2\n1 0\n2 4\n").unwrap();
        let log = Log::open(dir.path(), config(one * 2), 8, 5).unwrap();
        assert_eq!(epochs(&log), [(2, 5)]);
    }
}
