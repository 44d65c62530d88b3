//! Per-partition producer state: for every producer id, its epoch, the last
//! five batches it wrote (sequence range and offsets) and the first offset of
//! its open transaction. This is what makes produce idempotent (a resent
//! batch is found and answered with its original offsets; a gap is refused)
//! and what the last stable offset is computed from.
//!
//! Kafka's `ProducerStateManager`. The state is rebuilt at open from the
//! newest usable snapshot (`<offset>.snapshot`, Kafka's file format, written
//! when a segment rolls and at clean shutdown) plus the batches after it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut};

use super::batch::BatchHeader;
use super::error::{IoContext, LogError};
use super::segment::segment_file_name;

/// Batches remembered per producer for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`, and the most a producer may have in flight).
pub const BATCHES_RETAINED: usize = 5;

/// The producer id of a batch written without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;

const SNAPSHOT_VERSION: i16 = 1;
/// Bytes of one snapshot entry (Kafka's ProducerSnapshot entry schema v1).
const SNAPSHOT_ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// Why a producer's write was refused; each is a Kafka error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProducerError {
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("{0}")]
    OutOfOrderSequence(String),
    /// INVALID_PRODUCER_EPOCH: a produce with an epoch older than the current one.
    #[error("{0}")]
    InvalidProducerEpoch(String),
    /// PRODUCER_FENCED: a transaction marker with an old epoch.
    #[error("{0}")]
    ProducerFenced(String),
    /// INVALID_TXN_STATE: a non-transactional write inside an open transaction.
    #[error("{0}")]
    InvalidTxnState(String),
    /// TRANSACTION_COORDINATOR_FENCED: a marker from an older coordinator epoch.
    #[error("{0}")]
    CoordinatorFenced(String),
}

/// One batch a producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// What the partition knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most [`BATCHES_RETAINED`].
    batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Largest timestamp written (for `producer.id.expiration.ms`).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
        }
    }

    /// The last sequence number written, if any batch is remembered.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction ended in this partition by a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// How a batch stands against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch, to be appended.
    Append,
    /// This exact batch was appended before; answer with its offsets.
    Duplicate(BatchMetadata),
}

/// The sequence after `seq`, wrapping at `i32::MAX` as Kafka does.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every known producer, by id.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, e)| (id, e))
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// First offset of the earliest open transaction: the last stable offset
    /// cannot pass it.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Checks a client's batch (header as produced, before offsets are
    /// assigned) against the state, as Kafka's `ProducerAppendInfo` does.
    /// `pending` is the (epoch, last sequence) of earlier batches of the same
    /// producer in the same request.
    pub fn check(
        &self,
        h: &BatchHeader,
        pending: Option<(i16, i32)>,
    ) -> Result<SequenceCheck, ProducerError> {
        let pid = h.producer_id;
        let first_seq = h.base_sequence;
        let last_seq = last_sequence(h);
        let entry = self.producers.get(&pid);
        if pending.is_none() {
            if let Some(dup) =
                entry.and_then(|e| e.find_duplicate(h.producer_epoch, first_seq, last_seq))
            {
                return Ok(SequenceCheck::Duplicate(dup));
            }
        }
        let (current_epoch, current_last_seq) = match (pending, entry) {
            (Some((epoch, seq)), _) => (epoch, Some(seq)),
            (None, Some(e)) => (e.epoch, e.last_seq()),
            (None, None) => (NO_PRODUCER_EPOCH, None),
        };
        if current_epoch != NO_PRODUCER_EPOCH && h.producer_epoch < current_epoch {
            return Err(ProducerError::InvalidProducerEpoch(format!(
                "epoch {} of producer {pid} is older than its current epoch {current_epoch}",
                h.producer_epoch
            )));
        }
        if h.producer_epoch != current_epoch {
            if first_seq != 0 && current_epoch != NO_PRODUCER_EPOCH {
                return Err(ProducerError::OutOfOrderSequence(format!(
                    "producer {pid} starts epoch {} at sequence {first_seq}, not 0",
                    h.producer_epoch
                )));
            }
        } else if let Some(last) = current_last_seq {
            if first_seq != next_seq(last) {
                return Err(ProducerError::OutOfOrderSequence(format!(
                    "producer {pid} sent sequence {first_seq} after {last} (epoch {current_epoch})"
                )));
            }
        }
        if !h.is_transactional() && entry.is_some_and(|e| e.current_txn_first_offset.is_some()) {
            return Err(ProducerError::InvalidTxnState(format!(
                "producer {pid} wrote a non-transactional batch inside an open transaction"
            )));
        }
        Ok(SequenceCheck::Append)
    }

    /// Checks a transaction marker from the coordinator.
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(ProducerError::ProducerFenced(format!(
                "marker epoch {epoch} of producer {producer_id} is older than its epoch {}",
                entry.epoch
            )));
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced(format!(
                "marker from coordinator epoch {coordinator_epoch} for producer {producer_id}; current is {}",
                entry.coordinator_epoch
            )));
        }
        Ok(())
    }

    /// Records a batch written to the log (offsets assigned). `marker` is the
    /// control type of a control batch (`Some(true)` commit). Used both on
    /// append and when replaying the log at open; it validates nothing.
    pub fn apply(&mut self, h: &BatchHeader, marker: Option<bool>) -> Option<CompletedTxn> {
        let pid = h.producer_id;
        if pid < 0 {
            return None;
        }
        let entry = self
            .producers
            .entry(pid)
            .or_insert_with(|| ProducerEntry::new(h.producer_epoch));
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
        if h.is_control() {
            let commit = marker?;
            let completed = entry
                .current_txn_first_offset
                .take()
                .map(|first| CompletedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: h.base_offset,
                    aborted: !commit,
                });
            if let Some(c) = &completed {
                self.ongoing.remove(&c.first_offset);
            }
            return completed;
        }
        if h.base_sequence != NO_SEQUENCE {
            if entry.batches.len() == BATCHES_RETAINED {
                entry.batches.pop_front();
            }
            entry.batches.push_back(BatchMetadata {
                first_seq: h.base_sequence,
                last_seq: last_sequence(h),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                timestamp: h.max_timestamp,
            });
        }
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, pid);
        }
        None
    }

    /// Records the coordinator epoch a marker carried.
    pub fn set_coordinator_epoch(&mut self, producer_id: i64, coordinator_epoch: i32) {
        if let Some(e) = self.producers.get_mut(&producer_id) {
            e.coordinator_epoch = e.coordinator_epoch.max(coordinator_epoch);
        }
    }

    /// Forgets producers idle past `producer.id.expiration.ms` (by their last
    /// timestamp) that have no open transaction. Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Writes the state as `<offset>.snapshot` in `dir` (temp file, rename).
    /// Every retained batch is one entry, oldest first, so a reader that keeps
    /// the last entry per producer (Kafka's) sees the newest batch.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), LogError> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * SNAPSHOT_ENTRY_LEN);
        let entries: Vec<(i64, &ProducerEntry, Option<&BatchMetadata>)> = self
            .producers
            .iter()
            .flat_map(|(&pid, e)| {
                let batches: Vec<Option<&BatchMetadata>> = if e.batches.is_empty() {
                    vec![None]
                } else {
                    e.batches.iter().map(Some).collect()
                };
                batches.into_iter().map(move |b| (pid, e, b))
            })
            .collect();
        body.put_i32(entries.len() as i32);
        for (pid, e, b) in entries {
            body.put_i64(pid);
            body.put_i16(e.epoch);
            body.put_i32(b.map_or(NO_SEQUENCE, |b| b.last_seq));
            body.put_i64(b.map_or(-1, |b| b.last_offset));
            body.put_i32(b.map_or(0, |b| (b.last_offset - b.first_offset) as i32));
            body.put_i64(b.map_or(e.last_timestamp, |b| b.timestamp));
            body.put_i32(e.coordinator_epoch);
            body.put_i64(e.current_txn_first_offset.unwrap_or(-1));
        }
        let mut file = Vec::with_capacity(6 + body.len());
        file.put_i16(SNAPSHOT_VERSION);
        file.put_u32(crc32c::crc32c(&body));
        file.extend_from_slice(&body);
        let path = snapshot_path(dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        fs::write(&tmp, &file).at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)?;
        Ok(())
    }

    /// Reads a snapshot file; any damage is an error (the caller falls back
    /// to an older snapshot or to the log).
    pub fn read_snapshot(path: &Path) -> Result<ProducerStateManager, LogError> {
        let bytes = fs::read(path).at(path)?;
        let corrupt = |what: &str| LogError::Corrupt(format!("{}: {what}", path.display()));
        let mut buf = &bytes[..];
        if buf.remaining() < 6 {
            return Err(corrupt("shorter than its header"));
        }
        if buf.get_i16() != SNAPSHOT_VERSION {
            return Err(corrupt("unknown snapshot version"));
        }
        let crc = buf.get_u32();
        if crc32c::crc32c(buf) != crc {
            return Err(corrupt("CRC mismatch"));
        }
        if buf.remaining() < 4 {
            return Err(corrupt("no entry count"));
        }
        let count = buf.get_i32();
        if count < 0 || buf.remaining() != count as usize * SNAPSHOT_ENTRY_LEN {
            return Err(corrupt("entry count does not match the file size"));
        }
        let mut state = ProducerStateManager::new();
        for _ in 0..count {
            let pid = buf.get_i64();
            let epoch = buf.get_i16();
            let last_seq = buf.get_i32();
            let last_offset = buf.get_i64();
            let offset_delta = buf.get_i32();
            let timestamp = buf.get_i64();
            let coordinator_epoch = buf.get_i32();
            let txn_first = buf.get_i64();
            let entry = state
                .producers
                .entry(pid)
                .or_insert_with(|| ProducerEntry::new(epoch));
            entry.epoch = epoch;
            entry.coordinator_epoch = coordinator_epoch;
            entry.last_timestamp = entry.last_timestamp.max(timestamp);
            if last_seq != NO_SEQUENCE && offset_delta >= 0 {
                if entry.batches.len() == BATCHES_RETAINED {
                    entry.batches.pop_front();
                }
                entry.batches.push_back(BatchMetadata {
                    first_seq: last_seq.wrapping_sub(offset_delta).max(0),
                    last_seq,
                    first_offset: last_offset - i64::from(offset_delta),
                    last_offset,
                    timestamp,
                });
            }
            if txn_first >= 0 && entry.current_txn_first_offset.is_none() {
                entry.current_txn_first_offset = Some(txn_first);
                state.ongoing.insert(txn_first, pid);
            }
        }
        Ok(state)
    }
}

/// The last sequence number of a batch (sequence wraps past `i32::MAX`).
fn last_sequence(h: &BatchHeader) -> i32 {
    if h.base_sequence == NO_SEQUENCE {
        return NO_SEQUENCE;
    }
    let last = i64::from(h.base_sequence) + i64::from(h.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(segment_file_name(offset, "snapshot"))
}

/// The offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".snapshot")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(offset) = stem.parse() {
                offsets.push(offset);
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Removes the snapshot at `offset` if it exists.
pub fn delete_snapshot(dir: &Path, offset: i64) -> Result<(), LogError> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io_at(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header for producer `pid`, `count` records from `seq`, at `offset`.
    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn txn(mut h: BatchHeader) -> BatchHeader {
        h.attributes |= 0x10;
        h
    }

    fn marker(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, -1, 1, offset);
        h.attributes = 0x30;
        h
    }

    #[test]
    fn in_order_batches_append_and_resends_are_duplicates() {
        let mut s = ProducerStateManager::new();
        let a = header(7, 0, 0, 3, 0);
        assert_eq!(s.check(&a, None), Ok(SequenceCheck::Append));
        s.apply(&a, None);
        let b = header(7, 0, 3, 2, 3);
        assert_eq!(s.check(&b, None), Ok(SequenceCheck::Append));
        s.apply(&b, None);
        // The first batch resent: its original offsets.
        match s.check(&header(7, 0, 0, 3, 99), None) {
            Ok(SequenceCheck::Duplicate(m)) => {
                assert_eq!((m.first_offset, m.last_offset), (0, 2));
            }
            other => panic!("expected duplicate, got {other:?}"),
        }
    }

    #[test]
    fn gaps_old_epochs_and_new_epochs_follow_kafkas_rules() {
        let mut s = ProducerStateManager::new();
        s.apply(&header(7, 3, 0, 1, 0), None);
        assert!(matches!(
            s.check(&header(7, 3, 2, 1, 1), None),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            s.check(&header(7, 2, 1, 1, 1), None),
            Err(ProducerError::InvalidProducerEpoch(_))
        ));
        // A new epoch must start at sequence 0.
        assert!(matches!(
            s.check(&header(7, 4, 5, 1, 1), None),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
        assert_eq!(
            s.check(&header(7, 4, 0, 1, 1), None),
            Ok(SequenceCheck::Append)
        );
        // An unknown producer (e.g. expired) may start anywhere.
        assert_eq!(
            s.check(&header(8, 0, 42, 1, 1), None),
            Ok(SequenceCheck::Append)
        );
        // Later batches of one request continue the earlier ones.
        assert_eq!(
            s.check(&header(7, 3, 1, 1, 1), Some((3, 0))),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStateManager::new();
        s.apply(&header(1, 0, i32::MAX - 1, 2, 0), None);
        assert_eq!(
            s.check(&header(1, 0, 0, 1, 2), None),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerStateManager::new();
        for i in 0..6 {
            s.apply(&header(1, 0, i, 1, i64::from(i)), None);
        }
        assert!(matches!(
            s.check(&header(1, 0, 0, 1, 0), None),
            Err(ProducerError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            s.check(&header(1, 0, 1, 1, 0), None),
            Ok(SequenceCheck::Duplicate(_))
        ));
    }

    #[test]
    fn transactions_bound_the_first_unstable_offset() {
        let mut s = ProducerStateManager::new();
        assert_eq!(s.first_unstable_offset(), None);
        s.apply(&txn(header(1, 0, 0, 2, 10)), None);
        s.apply(&txn(header(2, 0, 0, 1, 12)), None);
        s.apply(&txn(header(1, 0, 2, 1, 13)), None);
        assert_eq!(s.first_unstable_offset(), Some(10));
        assert!(matches!(
            s.check(&header(1, 0, 3, 1, 14), None),
            Err(ProducerError::InvalidTxnState(_))
        ));
        let done = s.apply(&marker(1, 0, 14), Some(false)).unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14,
                aborted: true
            }
        );
        assert_eq!(s.first_unstable_offset(), Some(12));
        assert!(s
            .apply(&marker(2, 0, 15), Some(true))
            .is_some_and(|c| !c.aborted));
        assert_eq!(s.first_unstable_offset(), None);
        // A marker for a producer with nothing open completes nothing.
        assert_eq!(s.apply(&marker(2, 0, 16), Some(true)), None);
        // Markers with older epochs are fenced.
        s.apply(&marker(2, 3, 17), Some(false));
        assert!(matches!(
            s.check_marker(2, 2, 0),
            Err(ProducerError::ProducerFenced(_))
        ));
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            s.apply(&header(1, 2, i * 2, 2, i64::from(i) * 2), None);
        }
        s.apply(&txn(header(9, 0, 0, 1, 14)), None);
        s.write_snapshot(dir.path(), 15).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![15]);
        let back = ProducerStateManager::read_snapshot(&snapshot_path(dir.path(), 15)).unwrap();
        assert_eq!(back.entry(1), s.entry(1));
        assert_eq!(back.entry(9), s.entry(9));
        assert_eq!(back.first_unstable_offset(), Some(14));
        assert!(matches!(
            back.check(&header(1, 2, 14, 1, 15), None),
            Ok(SequenceCheck::Append)
        ));

        let path = snapshot_path(dir.path(), 15);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(ProducerStateManager::read_snapshot(&path).is_err());
        fs::write(&path, &bytes[..3]).unwrap();
        assert!(ProducerStateManager::read_snapshot(&path).is_err());
    }

    #[test]
    fn idle_producers_expire_unless_in_a_transaction() {
        let mut s = ProducerStateManager::new();
        s.apply(&header(1, 0, 0, 1, 0), None);
        s.apply(&txn(header(2, 0, 0, 1, 1)), None);
        assert_eq!(s.expire(1_000 + 500, 1_000), 0);
        assert_eq!(s.expire(1_000 + 1_000, 1_000), 1);
        assert!(s.entry(1).is_none() && s.entry(2).is_some());
    }
}
