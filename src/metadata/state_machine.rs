//! openraft's state machine: committed entries applied to the metadata image.
//!
//! Each applied batch publishes a new `Arc<MetadataImage>` on a watch channel.
//! The image itself is not written to disk at each apply: the log is, and a
//! snapshot (`metadata/snapshot`, the image as records, with the last log id
//! and membership it covers) is written whenever openraft asks for one, so a
//! restart loads the snapshot and re-applies the committed log after it.

use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::image::{MetadataImage, Refused};
use super::records::MetadataRecord;
use super::RaftTypes;

const SNAPSHOT: &str = "snapshot";

/// The applied state of one node. Clones share it (the snapshot builder is a
/// clone).
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Applied>>,
    published: Arc<watch::Sender<Arc<MetadataImage>>>,
}

struct Applied {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<StoredSnapshot>,
}

/// A snapshot as it is kept on disk; `data` is what is sent to a follower.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<u64, BasicNode>,
    data: Vec<u8>,
}

impl StateMachine {
    /// Opens the state in `dir`: the latest snapshot, if there is one.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(SNAPSHOT);
        let snapshot: Option<StoredSnapshot> = match fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut applied = Applied {
            dir: dir.to_path_buf(),
            image: Arc::default(),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
        };
        if let Some(s) = snapshot {
            applied.load(&s).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            applied.snapshot = Some(s);
        }
        let (published, _) = watch::channel(applied.image.clone());
        Ok(Self {
            inner: Arc::new(Mutex::new(applied)),
            published: Arc::new(published),
        })
    }

    /// Every image this node publishes, from the current one on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        self.published.send_replace(image);
    }
}

impl Applied {
    /// Replaces the state with a snapshot's.
    fn load(&mut self, s: &StoredSnapshot) -> Result<(), serde_json::Error> {
        let records: Vec<MetadataRecord> = serde_json::from_slice(&s.data)?;
        let mut image = MetadataImage::default();
        for r in &records {
            image.apply(r);
        }
        image.offset = s.meta.last_log_id.map_or(0, |l| l.index);
        self.image = Arc::new(image);
        self.last_applied = s.meta.last_log_id;
        self.membership = s.meta.last_membership.clone();
        Ok(())
    }

    /// Makes `s` the current snapshot, on disk first.
    fn keep(&mut self, s: StoredSnapshot) -> io::Result<()> {
        let bytes = serde_json::to_vec(&s).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        fs::write(&tmp, &bytes)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, self.dir.join(SNAPSHOT))?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.snapshot = Some(s);
        Ok(())
    }
}

fn to_snapshot(s: &StoredSnapshot) -> Snapshot<RaftTypes> {
    Snapshot {
        meta: s.meta.clone(),
        snapshot: Box::new(Cursor::new(s.data.clone())),
    }
}

impl RaftSnapshotBuilder<RaftTypes> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<RaftTypes>, StorageError<u64>> {
        let mut applied = self.inner.lock();
        let data = serde_json::to_vec(&applied.image.records())
            .map_err(|e| StorageIOError::read_state_machine(&e))?;
        let last = applied.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "0".to_string(),
        };
        let s = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: applied.membership.clone(),
                snapshot_id,
            },
            data,
        };
        let snapshot = to_snapshot(&s);
        applied
            .keep(s)
            .map_err(|e| StorageIOError::write_snapshot(Some(snapshot.meta.signature()), &e))?;
        Ok(snapshot)
    }
}

impl RaftStateMachine<RaftTypes> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let applied = self.inner.lock();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Result<(), Refused>>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<RaftTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.inner.lock();
        let mut image = (*applied.image).clone();
        let mut responses = Vec::new();
        for entry in entries {
            let response = match &entry.payload {
                EntryPayload::Blank => Ok(()),
                EntryPayload::Normal(batch) => image.apply_batch(batch),
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Ok(())
                }
            };
            image.offset = entry.log_id.index;
            applied.last_applied = Some(entry.log_id);
            responses.push(response);
        }
        let image = Arc::new(image);
        applied.image = image.clone();
        drop(applied);
        self.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let s = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let mut applied = self.inner.lock();
        applied
            .load(&s)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        applied
            .keep(s)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let image = applied.image.clone();
        drop(applied);
        self.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<RaftTypes>>, StorageError<u64>> {
        Ok(self.inner.lock().snapshot.as_ref().map(to_snapshot))
    }
}
