//! The aborted-transaction index of one segment (`<base>.txnindex`, Kafka's
//! format): one 34-byte entry per transaction whose abort marker is in the
//! segment — producer id, first offset, marker offset, last stable offset.
//! A `read_committed` fetch lists the entries overlapping what it returns so
//! the client can drop the aborted records.
//!
//! Entries are appended when an abort marker is written and fsynced when the
//! segment is sealed; at open, entries past the point producer state is
//! replayed from are cut and rebuilt by the replay.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut};

use super::error::{IoContext, LogError};
use super::segment::segment_file_name;

const ENTRY_LEN: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

/// The index file of one segment, with its entries in memory.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    file: Option<File>,
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    pub fn path_for(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(segment_file_name(base_offset, "txnindex"))
    }

    /// Loads the index of the segment at `base_offset` if its file exists. A
    /// partial trailing entry (torn write) is dropped.
    pub fn open(dir: &Path, base_offset: i64) -> Result<TxnIndex, LogError> {
        let path = Self::path_for(dir, base_offset);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io_at(path, e)),
        };
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        let mut buf = &bytes[..];
        while buf.remaining() >= ENTRY_LEN {
            let version = buf.get_i16();
            let entry = AbortedTxn {
                producer_id: buf.get_i64(),
                first_offset: buf.get_i64(),
                last_offset: buf.get_i64(),
                last_stable_offset: buf.get_i64(),
            };
            if version != ENTRY_VERSION {
                break;
            }
            entries.push(entry);
        }
        let mut index = TxnIndex {
            path,
            file: None,
            entries,
        };
        if bytes.len() != index.entries.len() * ENTRY_LEN {
            index.rewrite()?;
        }
        Ok(index)
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends one entry (written, not fsynced).
    pub fn append(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        let mut bytes = Vec::with_capacity(ENTRY_LEN);
        encode(&mut bytes, &entry);
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .at(&self.path)?;
            self.file = Some(f);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&bytes).at(&self.path)?;
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset`.
    pub fn truncate_from(&mut self, offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .iter()
            .filter(|e| e.last_offset < offset)
            .count();
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.retain(|e| e.last_offset < offset);
        self.rewrite()
    }

    /// Writes the in-memory entries as the whole file (or removes it).
    fn rewrite(&mut self) -> Result<(), LogError> {
        self.file = None;
        if self.entries.is_empty() {
            return self.delete();
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            encode(&mut bytes, e);
        }
        fs::write(&self.path, &bytes).at(&self.path)?;
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .at(&self.path)
    }

    pub fn sync(&self) -> Result<(), LogError> {
        match &self.file {
            Some(f) => f.sync_all().at(&self.path),
            None => Ok(()),
        }
    }

    /// Removes the file.
    pub fn delete(&mut self) -> Result<(), LogError> {
        self.file = None;
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io_at(&self.path, e)),
        }
    }
}

fn encode(out: &mut Vec<u8>, e: &AbortedTxn) {
    out.put_i16(ENTRY_VERSION);
    out.put_i64(e.producer_id);
    out.put_i64(e.first_offset);
    out.put_i64(e.last_offset);
    out.put_i64(e.last_stable_offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_persist_and_torn_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TxnIndex::open(dir.path(), 100).unwrap();
        assert!(idx.is_empty());
        assert!(!TxnIndex::path_for(dir.path(), 100).exists());
        idx.append(entry(1, 100, 105)).unwrap();
        idx.append(entry(2, 101, 110)).unwrap();
        drop(idx);
        let path = TxnIndex::path_for(dir.path(), 100);
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(&path, &bytes).unwrap();
        let mut idx = TxnIndex::open(dir.path(), 100).unwrap();
        assert_eq!(idx.entries(), &[entry(1, 100, 105), entry(2, 101, 110)]);
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        idx.truncate_from(106).unwrap();
        assert_eq!(idx.entries(), &[entry(1, 100, 105)]);
        idx.truncate_from(0).unwrap();
        assert!(!path.exists());
    }
}
