//! The sparse per-segment indexes in Kafka's file format: `.index` (offset ->
//! file position, 8-byte entries) and `.timeindex` (timestamp -> offset, 12 bytes).
//! Entries live in memory and are appended to the file; this module never reads the `.log`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{IoContext, LogError};

/// Index files larger than this are not loaded (they are rebuilt from the log instead).
const MAX_LOADABLE_INDEX_BYTES: u64 = 1 << 30;

/// How an index file was found at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLoad {
    /// Read and self-consistent (it may still disagree with the log).
    Loaded,
    /// There was no file; the index is empty.
    Missing,
    /// The file was unusable (size, order); the index is empty and must be rebuilt.
    Invalid(String),
}

trait Entry: Copy + PartialEq + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
    /// Whether `next` may follow `self` in the file.
    fn may_precede(&self, next: &Self) -> bool;
}

/// One file of fixed-size entries, mirrored in memory.
#[derive(Debug)]
struct IndexFile<E: Entry> {
    path: PathBuf,
    file: File,
    entries: Vec<E>,
    /// How many leading entries are known to be written to the file.
    persisted: usize,
    max_entries: usize,
}

impl<E: Entry> IndexFile<E> {
    fn open(path: &Path, max_index_bytes: u32) -> Result<(Self, IndexLoad), LogError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let max_entries = (max_index_bytes as usize / E::SIZE).max(1);
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            persisted: 0,
            max_entries,
        };
        if !existed {
            return Ok((index, IndexLoad::Missing));
        }
        let len = index.file.metadata().at(path)?.len();
        if len % E::SIZE as u64 != 0 {
            let why = format!("size {len} is not a multiple of the entry size {}", E::SIZE);
            return index.invalid(why);
        }
        if len > MAX_LOADABLE_INDEX_BYTES {
            return index.invalid(format!("size {len} is too large"));
        }
        // `len` is the real file size and bounded above, so this allocation is bounded.
        let mut buf = vec![0u8; len as usize];
        index.file.read_exact_at(&mut buf, 0).at(path)?;
        let mut entries: Vec<E> = Vec::with_capacity(buf.len() / E::SIZE);
        for chunk in buf.chunks_exact(E::SIZE) {
            let e = E::decode(chunk);
            if let Some(prev) = entries.last() {
                if !prev.may_precede(&e) {
                    let why = format!(
                        "entry {} ({e:?}) is out of order after {prev:?}",
                        entries.len()
                    );
                    return index.invalid(why);
                }
            }
            entries.push(e);
        }
        index.persisted = entries.len();
        index.entries = entries;
        Ok((index, IndexLoad::Loaded))
    }

    /// Empties an unusable index file so that the file matches the (empty)
    /// memory; the caller rebuilds it from the log.
    fn invalid(self, why: String) -> Result<(Self, IndexLoad), LogError> {
        self.file.set_len(0).at(&self.path)?;
        Ok((self, IndexLoad::Invalid(why)))
    }

    fn push(&mut self, e: E) -> Result<(), LogError> {
        debug_assert!(self.entries.last().is_none_or(|p| p.may_precede(&e)));
        self.entries.push(e);
        self.persist()
    }

    /// Writes entries not yet in the file at their exact position, so a failed
    /// or partial write is simply redone by the next call.
    fn persist(&mut self) -> Result<(), LogError> {
        if self.persisted >= self.entries.len() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * E::SIZE);
        for e in &self.entries[self.persisted..] {
            e.encode(&mut buf);
        }
        self.file
            .write_all_at(&buf, (self.persisted * E::SIZE) as u64)
            .at(&self.path)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Replaces the whole index (memory and file) with `entries`.
    fn reset(&mut self, entries: Vec<E>) -> Result<(), LogError> {
        self.entries = entries;
        self.persisted = 0;
        self.file.set_len(0).at(&self.path)?;
        self.persist()?;
        self.file
            .set_len((self.entries.len() * E::SIZE) as u64)
            .at(&self.path)
    }

    fn sync(&mut self) -> Result<(), LogError> {
        self.persist()?;
        self.file.sync_all().at(&self.path)
    }

    fn is_full(&self, incoming: usize) -> bool {
        self.entries.len() + incoming > self.max_entries
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OffsetEntry {
    relative_offset: u32,
    position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.relative_offset < next.relative_offset && self.position < next.position
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeEntry {
    timestamp: i64,
    relative_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
    fn may_precede(&self, next: &Self) -> bool {
        self.timestamp < next.timestamp && self.relative_offset <= next.relative_offset
    }
}

fn relative(base_offset: i64, offset: i64) -> u32 {
    debug_assert!(offset >= base_offset && offset - base_offset <= i64::from(u32::MAX));
    (offset - base_offset).clamp(0, i64::from(u32::MAX)) as u32
}

/// Sparse map from offset to the file position of a batch at or before it.
/// Entry (offset, position): the batch starting at `position` has last offset `offset`.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    inner: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
    pub const ENTRY_SIZE: usize = 8;

    /// Opens (creating if missing) and loads the index file at `path`.
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> Result<(OffsetIndex, IndexLoad), LogError> {
        let (inner, load) = IndexFile::open(path, max_index_bytes)?;
        Ok((OffsetIndex { base_offset, inner }, load))
    }

    /// The entry with the largest offset <= `offset` as (offset, position),
    /// or (base offset, 0) when there is none.
    pub fn lookup(&self, offset: i64) -> (i64, u64) {
        if offset < self.base_offset {
            return (self.base_offset, 0);
        }
        let rel = (offset - self.base_offset).min(i64::from(u32::MAX)) as u32;
        let n = self
            .inner
            .entries
            .partition_point(|e| e.relative_offset <= rel);
        match n.checked_sub(1).map(|i| self.inner.entries[i]) {
            Some(e) => (
                self.base_offset + i64::from(e.relative_offset),
                u64::from(e.position),
            ),
            None => (self.base_offset, 0),
        }
    }

    /// Appends (offset, position); the file write is retried by later appends if it fails.
    pub fn append(&mut self, offset: i64, position: u64) -> Result<(), LogError> {
        debug_assert!(position <= u64::from(u32::MAX));
        self.inner.push(OffsetEntry {
            relative_offset: relative(self.base_offset, offset),
            position: position.min(u64::from(u32::MAX)) as u32,
        })
    }

    /// All entries as (offset, position).
    pub fn entries(&self) -> Vec<(i64, u64)> {
        self.inner
            .entries
            .iter()
            .map(|e| {
                (
                    self.base_offset + i64::from(e.relative_offset),
                    u64::from(e.position),
                )
            })
            .collect()
    }

    pub fn last_entry(&self) -> Option<(i64, u64)> {
        self.inner.entries.last().map(|e| {
            (
                self.base_offset + i64::from(e.relative_offset),
                u64::from(e.position),
            )
        })
    }

    pub fn len(&self) -> usize {
        self.inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries.is_empty()
    }

    /// Whether `incoming` more entries would exceed the configured index size.
    pub fn is_full(&self, incoming: usize) -> bool {
        self.inner.is_full(incoming)
    }

    /// Replaces memory and file contents with `entries` (offset, position).
    pub fn reset(&mut self, entries: &[(i64, u64)]) -> Result<(), LogError> {
        let v = entries
            .iter()
            .map(|&(o, p)| OffsetEntry {
                relative_offset: relative(self.base_offset, o),
                position: p.min(u64::from(u32::MAX)) as u32,
            })
            .collect();
        self.inner.reset(v)
    }

    pub fn set_max_index_bytes(&mut self, max_index_bytes: u32) {
        self.inner.max_entries = (max_index_bytes as usize / Self::ENTRY_SIZE).max(1);
    }

    pub fn sync(&mut self) -> Result<(), LogError> {
        self.inner.sync()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// Sparse map from timestamp to offset: entry (ts, offset) says the largest
/// timestamp up to and including the batch ending at `offset` is `ts`.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    inner: IndexFile<TimeEntry>,
}

impl TimeIndex {
    pub const ENTRY_SIZE: usize = 12;

    /// Opens (creating if missing) and loads the time index file at `path`.
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
    ) -> Result<(TimeIndex, IndexLoad), LogError> {
        let (inner, load) = IndexFile::open(path, max_index_bytes)?;
        Ok((TimeIndex { base_offset, inner }, load))
    }

    /// The entry with the largest timestamp <= `timestamp` as (timestamp, offset),
    /// or (-1, base offset) when there is none.
    pub fn lookup(&self, timestamp: i64) -> (i64, i64) {
        let n = self
            .inner
            .entries
            .partition_point(|e| e.timestamp <= timestamp);
        match n.checked_sub(1).map(|i| self.inner.entries[i]) {
            Some(e) => (e.timestamp, self.base_offset + i64::from(e.relative_offset)),
            None => (-1, self.base_offset),
        }
    }

    /// Appends (timestamp, offset) if `timestamp` is larger than the last entry's
    /// (and than -1 for an empty index), as Kafka does.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<(), LogError> {
        let (last_ts, last_off) = self.last_entry().unwrap_or((-1, self.base_offset));
        if timestamp <= last_ts || offset < last_off {
            return Ok(());
        }
        self.inner.push(TimeEntry {
            timestamp,
            relative_offset: relative(self.base_offset, offset),
        })
    }

    /// All entries as (timestamp, offset).
    pub fn entries(&self) -> Vec<(i64, i64)> {
        self.inner
            .entries
            .iter()
            .map(|e| (e.timestamp, self.base_offset + i64::from(e.relative_offset)))
            .collect()
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.inner
            .entries
            .last()
            .map(|e| (e.timestamp, self.base_offset + i64::from(e.relative_offset)))
    }

    pub fn len(&self) -> usize {
        self.inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.entries.is_empty()
    }

    pub fn is_full(&self, incoming: usize) -> bool {
        self.inner.is_full(incoming)
    }

    /// Replaces memory and file contents with `entries` (timestamp, offset).
    pub fn reset(&mut self, entries: &[(i64, i64)]) -> Result<(), LogError> {
        let v = entries
            .iter()
            .map(|&(t, o)| TimeEntry {
                timestamp: t,
                relative_offset: relative(self.base_offset, o),
            })
            .collect();
        self.inner.reset(v)
    }

    pub fn set_max_index_bytes(&mut self, max_index_bytes: u32) {
        self.inner.max_entries = (max_index_bytes as usize / Self::ENTRY_SIZE).max(1);
    }

    pub fn sync(&mut self) -> Result<(), LogError> {
        self.inner.sync()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_finds_floor_entry_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let (mut idx, load) = OffsetIndex::open(&path, 100, 1024).unwrap();
        assert_eq!(load, IndexLoad::Missing);
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(110, 4000).unwrap();
        idx.append(120, 8000).unwrap();
        assert_eq!(idx.lookup(50), (100, 0));
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4000));
        assert_eq!(idx.lookup(119), (110, 4000));
        assert_eq!(idx.lookup(1000), (120, 8000));
        drop(idx);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let (idx, load) = OffsetIndex::open(&path, 100, 1024).unwrap();
        assert_eq!(load, IndexLoad::Loaded);
        assert_eq!(idx.entries(), vec![(110, 4000), (120, 8000)]);
    }

    #[test]
    fn offset_index_of_wrong_size_or_order_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0u8; 12]).unwrap();
        let (idx, load) = OffsetIndex::open(&path, 0, 1024).unwrap();
        assert!(matches!(load, IndexLoad::Invalid(_)));
        assert!(idx.is_empty());
        std::fs::write(&path, [0u8; 16]).unwrap();
        let (_, load) = OffsetIndex::open(&path, 0, 1024).unwrap();
        assert!(matches!(load, IndexLoad::Invalid(_)));
    }

    #[test]
    fn time_index_appends_only_growing_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let (mut idx, _) = TimeIndex::open(&path, 10, 1024).unwrap();
        idx.maybe_append(-1, 10).unwrap();
        assert!(idx.is_empty());
        idx.maybe_append(1000, 12).unwrap();
        idx.maybe_append(900, 14).unwrap();
        idx.maybe_append(1000, 15).unwrap();
        idx.maybe_append(2000, 20).unwrap();
        assert_eq!(idx.entries(), vec![(1000, 12), (2000, 20)]);
        assert_eq!(idx.lookup(5), (-1, 10));
        assert_eq!(idx.lookup(1500), (1000, 12));
        assert_eq!(idx.lookup(2000), (2000, 20));
        assert!(idx.is_full(84));
        assert!(!idx.is_full(83));
        drop(idx);
        let (idx, load) = TimeIndex::open(&path, 10, 1024).unwrap();
        assert_eq!(load, IndexLoad::Loaded);
        assert_eq!(idx.entries(), vec![(1000, 12), (2000, 20)]);
    }

    #[test]
    fn reset_rewrites_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let (mut idx, _) = OffsetIndex::open(&path, 0, 1024).unwrap();
        for i in 1..10 {
            idx.append(i * 10, (i * 100) as u64).unwrap();
        }
        idx.reset(&[(5, 50)]).unwrap();
        drop(idx);
        let (idx, _) = OffsetIndex::open(&path, 0, 1024).unwrap();
        assert_eq!(idx.entries(), vec![(5, 50)]);
    }
}
