//! The metadata log on a voter's disk: openraft's log storage.
//!
//! `metadata/raft-log` holds the entries as frames (`[length u32][crc32c u32]
//! [entry as JSON]`), appended and fsynced before openraft is told they are
//! written, so Raft counts an entry only once it is durable on this voter.
//! `metadata/raft-state` holds the vote and the purge point, replaced
//! atomically and fsynced; `metadata/raft-committed` the last known commit,
//! best effort (losing it only delays re-applying the log at start).
//!
//! At open, a frame cut short at the end of the file is a write that was never
//! acknowledged and is cut off; a complete frame whose checksum or content is
//! wrong is corruption, and the node refuses to start rather than vote with a
//! log it cannot trust. The entries are kept in memory too: the metadata log
//! is small and snapshots purge it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, StorageError, StorageIOError,
    Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::RaftTypes;

/// The largest frame read back; an entry is one batch of metadata records.
pub const MAX_FRAME: usize = 64 << 20;
const FRAME_HEADER: usize = 8;

/// The log of one voter. Clones share it (openraft's log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogFile>>,
}

struct LogFile {
    dir: PathBuf,
    file: File,
    /// Entries above the purge point, with the byte position of each frame.
    entries: BTreeMap<u64, (Entry<RaftTypes>, u64)>,
    len: u64,
    state: DurableState,
    committed: Option<LogId<u64>>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct DurableState {
    vote: Option<Vote<u64>>,
    purged: Option<LogId<u64>>,
}

const LOG: &str = "raft-log";
const STATE: &str = "raft-state";
const COMMITTED: &str = "raft-committed";

impl LogStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let state: DurableState = match fs::read(dir.join(STATE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("{}: {e}", dir.join(STATE).display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => DurableState::default(),
            Err(e) => return Err(e),
        };
        // Best effort: a missing or unreadable commit point is no commit point.
        let committed = fs::read(dir.join(COMMITTED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let path = dir.join(LOG);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (frames, end) = read_frames(&bytes).map_err(|(pos, why)| {
            invalid(format!(
                "{} is corrupt at byte {pos}: {why}; refusing to start a voter with a log it cannot trust",
                path.display()
            ))
        })?;
        if end < bytes.len() {
            tracing::warn!(
                file = %path.display(),
                at = end,
                cut = bytes.len() - end,
                "metadata log ends in a frame cut short by a crash; cutting it off"
            );
            file.set_len(end as u64)?;
            file.sync_data()?;
        }
        let purged = state.purged.map_or(0, |l| l.index);
        let mut entries = BTreeMap::new();
        for (entry, pos) in frames {
            let index = entry.log_id.index;
            if purged > 0 && index <= purged {
                continue;
            }
            if let Some((&last, _)) = entries.last_key_value() {
                if index != last + 1 {
                    return Err(invalid(format!(
                        "{}: entry {index} follows entry {last}",
                        path.display()
                    )));
                }
            }
            entries.insert(index, (entry, pos));
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(LogFile {
                dir: dir.to_path_buf(),
                file,
                entries,
                len: end as u64,
                state,
                committed,
            })),
        })
    }

    /// Runs `f` on tokio's blocking pool: it writes and fsyncs.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogFile) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.lock()))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The whole frames in `bytes` and where they end; a complete frame that does
/// not check out is an error at its position.
#[allow(clippy::type_complexity)]
fn read_frames(bytes: &[u8]) -> Result<(Vec<(Entry<RaftTypes>, u64)>, usize), (usize, String)> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= FRAME_HEADER {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_be_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        if len > MAX_FRAME {
            return Err((pos, format!("frame length {len}")));
        }
        let Some(payload) = bytes.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            return Err((pos, "checksum mismatch".into()));
        }
        let entry = serde_json::from_slice(payload).map_err(|e| (pos, e.to_string()))?;
        frames.push((entry, pos as u64));
        pos += FRAME_HEADER + len;
    }
    Ok((frames, pos))
}

fn frame(entry: &Entry<RaftTypes>) -> io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Replaces `path` with `bytes`: a temporary file, fsynced, renamed over it,
/// and the directory fsynced.
fn replace_durably(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    if sync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl LogFile {
    fn save_state(&self) -> io::Result<()> {
        let bytes = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        replace_durably(&self.dir, STATE, &bytes, true)
    }

    fn append(&mut self, entries: Vec<Entry<RaftTypes>>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        for entry in entries {
            let pos = self.len + buf.len() as u64;
            buf.extend_from_slice(&frame(&entry)?);
            placed.push((entry, pos));
        }
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.len += buf.len() as u64;
        for (entry, pos) in placed {
            self.entries.insert(entry.log_id.index, (entry, pos));
        }
        Ok(())
    }

    /// Removes the entries from `index` on.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some((_, pos)) = self.entries.get(&index) else {
            return Ok(());
        };
        let pos = *pos;
        self.file.set_len(pos)?;
        self.file.sync_data()?;
        self.len = pos;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Forgets the entries up to `log_id`: the purge point is made durable
    /// first, then the file is rewritten with what is left.
    fn purge(&mut self, log_id: LogId<u64>) -> io::Result<()> {
        self.state.purged = Some(log_id);
        self.save_state()?;
        let kept = self.entries.split_off(&(log_id.index + 1));
        let mut buf = Vec::new();
        let mut entries = BTreeMap::new();
        for (index, (entry, _)) in kept {
            let pos = buf.len() as u64;
            buf.extend_from_slice(&frame(&entry)?);
            entries.insert(index, (entry, pos));
        }
        replace_durably(&self.dir, LOG, &buf, true)?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(LOG))?;
        self.len = buf.len() as u64;
        self.entries = entries;
        Ok(())
    }
}

impl RaftLogReader<RaftTypes> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<RaftTypes>>, StorageError<u64>> {
        let inner = self.inner.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<RaftTypes> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<RaftTypes>, StorageError<u64>> {
        let inner = self.inner.lock();
        let last_purged_log_id = inner.state.purged;
        let last_log_id = inner
            .entries
            .last_key_value()
            .map(|(_, (e, _))| *e.get_log_id())
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let vote = *vote;
        self.blocking(move |f| {
            f.state.vote = Some(vote);
            f.save_state()
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().state.vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.blocking(move |f| {
            f.committed = committed;
            let bytes = serde_json::to_vec(&committed).map_err(io::Error::other)?;
            replace_durably(&f.dir, COMMITTED, &bytes, false)
        })
        .await
        .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<RaftTypes>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<RaftTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let result = self.blocking(move |f| f.append(entries)).await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |f| f.truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |f| f.purge(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, EntryPayload};
    use tempfile::TempDir;

    use super::*;
    use crate::metadata::records::{MetadataRecord, TopicRecord};
    use crate::metadata::state_machine::StateMachine;

    struct Builder;

    impl StoreBuilder<RaftTypes, LogStore, StateMachine, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let log = LogStore::open(dir.path()).map_err(|e| StorageIOError::read_logs(&e))?;
            let sm = StateMachine::open(dir.path()).map_err(|e| StorageIOError::read(&e))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_storage_suite_passes() {
        Suite::test_all(Builder).unwrap();
    }

    fn entry(index: u64, name: &str) -> Entry<RaftTypes> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(vec![MetadataRecord::Topic(TopicRecord {
                id: uuid::Uuid::nil(),
                name: name.into(),
            })]),
        }
    }

    fn names(store: &LogStore) -> Vec<(u64, String)> {
        let inner = store.inner.lock();
        inner
            .entries
            .values()
            .map(|(e, _)| match &e.payload {
                EntryPayload::Normal(records) => match &records[0] {
                    MetadataRecord::Topic(t) => (e.log_id.index, t.name.clone()),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn entries_truncation_and_purge_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let all: Vec<_> = (1..=6).map(|i| entry(i, &format!("t{i}"))).collect();
        store.inner.lock().append(all).unwrap();
        store.inner.lock().truncate(5).unwrap();
        store
            .inner
            .lock()
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 2))
            .unwrap();
        store.inner.lock().append(vec![entry(5, "new5")]).unwrap();
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            names(&store),
            vec![(3, "t3".into()), (4, "t4".into()), (5, "new5".into())]
        );
        assert_eq!(store.inner.lock().state.purged.map(|l| l.index), Some(2));
    }

    #[test]
    fn a_frame_cut_short_is_cut_off_and_a_corrupt_one_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store
            .inner
            .lock()
            .append(vec![entry(1, "a"), entry(2, "b")])
            .unwrap();
        let len = store.inner.lock().len;
        let second = store.inner.lock().entries[&2].1;
        drop(store);
        let path = dir.path().join(LOG);

        // A crash in the middle of writing entry 2: only entry 1 is left.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(names(&store), vec![(1, "a".into())]);
        assert_eq!(fs::metadata(&path).unwrap().len(), second);
        store.inner.lock().append(vec![entry(2, "c")]).unwrap();
        drop(store);
        assert_eq!(
            names(&LogStore::open(dir.path()).unwrap()),
            vec![(1, "a".into()), (2, "c".into())]
        );

        // A flipped byte inside entry 1: the voter must not start.
        let mut bytes = fs::read(&path).unwrap();
        bytes[FRAME_HEADER + 3] ^= 0x20;
        fs::write(&path, &bytes).unwrap();
        let e = LogStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            e.ends_with(
                "raft-log is corrupt at byte 0: checksum mismatch; \
                 refusing to start a voter with a log it cannot trust"
            ),
            "{e}"
        );
        // A length no frame can have is corruption too, not a cut.
        bytes[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        fs::write(&path, &bytes).unwrap();
        let e = LogStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("corrupt at byte 0: frame length 4294967295"),
            "{e}"
        );
    }
}
