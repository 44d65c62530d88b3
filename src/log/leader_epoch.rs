//! The leader-epoch cache of one partition and its `leader-epoch-checkpoint`
//! file (Kafka's LeaderEpochFileCache): for every leader epoch that wrote to
//! the log, the offset of its first batch. Followers ask the leader for the end
//! offset of their latest epoch (OffsetsForLeaderEpoch, KIP-101/279) and cut
//! their log there. It knows offsets and epochs only, never segments or bytes.

use std::path::{Path, PathBuf};

use super::checkpoint::{read_entry_lines, write_entry_lines};
use super::error::LogError;

/// The checkpoint file's name in the partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's UNDEFINED_EPOCH: no epoch is known.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's UNDEFINED_EPOCH_OFFSET: no end offset is known.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the offset of its first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// How the checkpoint file was found at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointLoad {
    Loaded,
    Missing,
    /// Unparseable or out of order; the cache starts empty.
    Damaged(String),
}

/// The entries of one partition, strictly increasing in both epoch and start
/// offset, mirrored in the checkpoint file after every change.
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint in the partition directory `dir`. A missing file
    /// is an empty cache; a damaged one is logged and read as empty (the
    /// caller rebuilds it from the log). Only a failing read is an error.
    pub fn open(dir: &Path) -> Result<(LeaderEpochFileCache, CheckpointLoad), LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let (entries, load) = match read_entry_lines(&path) {
            Ok(None) => (Vec::new(), CheckpointLoad::Missing),
            Ok(Some(lines)) => match parse_entries(&lines) {
                Ok(entries) => (entries, CheckpointLoad::Loaded),
                Err(why) => (Vec::new(), CheckpointLoad::Damaged(why)),
            },
            Err(LogError::Corrupt(why)) => (Vec::new(), CheckpointLoad::Damaged(why)),
            Err(e) => return Err(e),
        };
        if let CheckpointLoad::Damaged(why) = &load {
            tracing::warn!(path = %path.display(), reason = %why,
                "ignoring a damaged leader-epoch checkpoint; rebuilding it from the log");
        }
        Ok((LeaderEpochFileCache { path, entries }, load))
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts at `start_offset`, as Kafka's `assign`:
    /// nothing changes when `epoch` is the latest one and starts no later;
    /// otherwise every entry from the end whose epoch is not below `epoch`
    /// or whose start offset is not below `start_offset` is removed first
    /// (they conflict with the new one), then the entry is added. Negative
    /// epochs or offsets (batches written without a leader epoch) are ignored.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(());
        }
        let needed = self
            .latest_entry()
            .is_none_or(|last| epoch != last.epoch || start_offset < last.start_offset);
        if !needed {
            return Ok(());
        }
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.epoch < epoch && e.start_offset < start_offset)
            .map_or(0, |i| i + 1);
        let removed: Vec<EpochEntry> = self.entries.drain(keep..).collect();
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|r| r.start_offset != start_offset)
        {
            tracing::warn!(path = %self.path.display(), epoch, start_offset, removed = ?removed,
                "a new leader epoch entry removed conflicting entries");
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.flush()
    }

    /// The end offset of `requested_epoch` as OffsetsForLeaderEpoch answers
    /// it, with Kafka's rules: the latest epoch ends at the log end offset; an
    /// older one at the start offset of the next higher epoch, reported with
    /// the largest known epoch at or below it; an epoch older than every
    /// entry gets the first entry's start offset under its own number (the
    /// data before it is gone, KIP-279); an undefined or unknown newer epoch
    /// (or an empty cache) is (`UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`).
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested_epoch == UNDEFINED_EPOCH {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => (floor.epoch, next.start_offset),
            None => (requested_epoch, next.start_offset),
        }
    }

    /// Removes the entries starting at or after `end_offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        if end_offset < 0 || !self.entries.iter().any(|e| e.start_offset >= end_offset) {
            return Ok(());
        }
        self.entries.retain(|e| e.start_offset < end_offset);
        self.flush()
    }

    /// The log now starts at `start_offset`: entries starting at or before it
    /// are removed and the last of them is kept, moved up to `start_offset`
    /// (its epoch still wrote the first offsets that remain).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let removed = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        let Some(last_removed) = removed.checked_sub(1).map(|i| self.entries[i]) else {
            return Ok(());
        };
        if removed == 1 && last_removed.start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..removed);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: last_removed.epoch,
                start_offset,
            },
        );
        self.flush()
    }

    /// Removes every entry.
    pub fn clear(&mut self) -> Result<(), LogError> {
        self.entries.clear();
        self.flush()
    }

    /// Writes the checkpoint file (atomically, fsynced) from memory.
    pub fn flush(&self) -> Result<(), LogError> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_entry_lines(&self.path, &lines)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses `epoch startOffset` lines; entries must be non-negative and strictly increasing.
fn parse_entries(lines: &[String]) -> Result<Vec<EpochEntry>, String> {
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(lines.len());
    for line in lines {
        let mut fields = line.split(' ');
        let (Some(epoch), Some(offset), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("bad entry line {line:?}"));
        };
        let (Ok(epoch), Ok(start_offset)) = (epoch.parse::<i32>(), offset.parse::<i64>()) else {
            return Err(format!("bad entry line {line:?}"));
        };
        if epoch < 0 || start_offset < 0 {
            return Err(format!("negative epoch or offset in {line:?}"));
        }
        if let Some(prev) = entries.last() {
            if epoch <= prev.epoch || start_offset <= prev.start_offset {
                return Err(format!(
                    "entry {line:?} does not follow {} {}",
                    prev.epoch, prev.start_offset
                ));
            }
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs;

    fn entries(cache: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    fn cache_with(dir: &Path, pairs: &[(i32, i64)]) -> LeaderEpochFileCache {
        let (mut cache, _) = LeaderEpochFileCache::open(dir).unwrap();
        for &(epoch, offset) in pairs {
            cache.assign(epoch, offset).unwrap();
        }
        assert_eq!(entries(&cache), pairs);
        cache
    }

    fn file_text(dir: &Path) -> String {
        fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT)).unwrap()
    }

    #[test]
    fn a_kafka_checkpoint_reads_and_writes_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        // As Kafka's LeaderEpochCheckpointFile writes it.
        let kafka = "0\n3\n0 0\n4 1250\n7 98765432100\n";
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), kafka).unwrap();
        let (cache, load) = LeaderEpochFileCache::open(dir.path()).unwrap();
        assert_eq!(load, CheckpointLoad::Loaded);
        assert_eq!(entries(&cache), [(0, 0), (4, 1250), (7, 98_765_432_100)]);
        fs::remove_file(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        cache.flush().unwrap();
        assert_eq!(file_text(dir.path()), kafka);
        assert!(!dir.path().join("leader-epoch-checkpoint.tmp").exists());
    }

    #[test]
    fn every_change_is_persisted_and_an_empty_cache_writes_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, load) = LeaderEpochFileCache::open(dir.path()).unwrap();
        assert_eq!(load, CheckpointLoad::Missing);
        cache.assign(2, 10).unwrap();
        assert_eq!(file_text(dir.path()), "0\n1\n2 10\n");
        cache.assign(5, 30).unwrap();
        assert_eq!(file_text(dir.path()), "0\n2\n2 10\n5 30\n");
        cache.truncate_from_end(30).unwrap();
        assert_eq!(file_text(dir.path()), "0\n1\n2 10\n");
        cache.truncate_from_start(12).unwrap();
        assert_eq!(file_text(dir.path()), "0\n1\n2 12\n");
        cache.clear().unwrap();
        assert_eq!(file_text(dir.path()), "0\n0\n");
        let (cache, load) = LeaderEpochFileCache::open(dir.path()).unwrap();
        assert_eq!((entries(&cache), load), (vec![], CheckpointLoad::Loaded));
    }

    #[test]
    fn a_damaged_checkpoint_opens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        for bad in [
            &b""[..],
            b"1\n1\n0 0\n",
            b"0\n2\n0 0\n",
            b"0\n1\n0\n",
            b"0\n1\n0 x\n",
            b"0\n1\n0 0 0\n",
            b"0\n2\n3 10\n2 20\n",
            b"0\n2\n2 10\n3 10\n",
            b"0\n1\n-1 5\n",
            b"0\n1\n0 0\n1 1\n",
            b"\xff\xfe",
        ] {
            fs::write(&path, bad).unwrap();
            let (cache, load) = LeaderEpochFileCache::open(dir.path()).unwrap();
            assert!(matches!(load, CheckpointLoad::Damaged(_)), "{bad:?}");
            assert!(cache.entries().is_empty());
        }
    }

    #[test]
    fn assign_follows_kafkas_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(dir.path(), &[(1, 0), (3, 10), (5, 20)]);
        // The latest epoch again, at or after its start: nothing changes.
        cache.assign(5, 20).unwrap();
        cache.assign(5, 25).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10), (5, 20)]);
        // The latest epoch, earlier: it moves back.
        cache.assign(5, 18).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10), (5, 18)]);
        // A newer epoch starting before the latest entry removes it.
        cache.assign(6, 15).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10), (6, 15)]);
        // An older epoch removes every entry at or above it.
        cache.assign(2, 12).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (2, 12)]);
        // A newer epoch at the same offset as the latest replaces it.
        cache.assign(4, 12).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (4, 12)]);
        // Negative epochs or offsets are ignored.
        cache.assign(-1, 50).unwrap();
        cache.assign(9, -1).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (4, 12)]);
        assert_eq!(file_text(dir.path()), "0\n2\n1 0\n4 12\n");
        assert_eq!(cache.latest_epoch(), Some(4));
        assert_eq!(cache.earliest_entry().map(|e| e.start_offset), Some(0));
    }

    #[test]
    fn end_offset_for_follows_offsets_for_leader_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, _) = LeaderEpochFileCache::open(dir.path()).unwrap();
        assert_eq!(empty.end_offset_for(0, 7), (-1, -1));
        let cache = cache_with(dir.path(), &[(2, 5), (4, 10), (7, 30)]);
        let leo = 42;
        assert_eq!(cache.end_offset_for(7, leo), (7, 42), "latest: the log end");
        assert_eq!(cache.end_offset_for(4, leo), (4, 30));
        assert_eq!(cache.end_offset_for(2, leo), (2, 10));
        assert_eq!(cache.end_offset_for(5, leo), (4, 30), "between: the floor");
        assert_eq!(cache.end_offset_for(6, leo), (4, 30));
        assert_eq!(cache.end_offset_for(3, leo), (2, 10));
        assert_eq!(
            cache.end_offset_for(1, leo),
            (1, 5),
            "older than all: the first start offset (KIP-279)"
        );
        assert_eq!(cache.end_offset_for(0, leo), (0, 5));
        assert_eq!(cache.end_offset_for(8, leo), (-1, -1), "newer than all");
        assert_eq!(cache.end_offset_for(UNDEFINED_EPOCH, leo), (-1, -1));
    }

    #[test]
    fn truncation_from_either_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = cache_with(dir.path(), &[(1, 0), (3, 10), (5, 20), (6, 30)]);
        cache.truncate_from_end(31).unwrap();
        assert_eq!(cache.entries().len(), 4);
        cache.truncate_from_end(30).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10), (5, 20)]);
        cache.truncate_from_end(11).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10)]);
        cache.truncate_from_end(-1).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10)]);

        let mut cache = cache_with(dir.path(), &[(1, 0), (3, 10), (5, 20), (6, 30)]);
        cache.truncate_from_start(0).unwrap();
        assert_eq!(entries(&cache), [(1, 0), (3, 10), (5, 20), (6, 30)]);
        cache.truncate_from_start(9).unwrap();
        assert_eq!(entries(&cache), [(1, 9), (3, 10), (5, 20), (6, 30)]);
        cache.truncate_from_start(10).unwrap();
        assert_eq!(entries(&cache), [(3, 10), (5, 20), (6, 30)]);
        cache.truncate_from_start(25).unwrap();
        assert_eq!(entries(&cache), [(5, 25), (6, 30)]);
        cache.truncate_from_start(99).unwrap();
        assert_eq!(entries(&cache), [(6, 99)]);
        assert_eq!(file_text(dir.path()), "0\n1\n6 99\n");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Whatever is assigned and cut, the entries stay strictly increasing
        /// and the file always reads back as the cache.
        #[test]
        fn entries_stay_monotonic_and_match_the_file(
            ops in proptest::collection::vec((0u8..4, 0i32..20, 0i64..200), 1..40),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut cache, _) = LeaderEpochFileCache::open(dir.path()).unwrap();
            for (op, epoch, offset) in ops {
                match op {
                    0 | 1 => cache.assign(epoch, offset).unwrap(),
                    2 => cache.truncate_from_end(offset).unwrap(),
                    _ => cache.truncate_from_start(offset).unwrap(),
                }
                for w in cache.entries().windows(2) {
                    prop_assert!(w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
                }
                if op < 2 && epoch >= 0 {
                    prop_assert_eq!(cache.latest_entry().map(|e| e.epoch), Some(epoch));
                }
            }
            let (reread, load) = LeaderEpochFileCache::open(dir.path()).unwrap();
            if load == CheckpointLoad::Loaded {
                prop_assert_eq!(reread.entries(), cache.entries());
            } else {
                prop_assert!(cache.entries().is_empty());
            }
        }
    }
}
