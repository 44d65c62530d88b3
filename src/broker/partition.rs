//! One partition replica on this broker: its log, high watermark, durable
//! offset and its role — leader (tracking its followers, see `replica.rs`)
//! or follower (appending what the replica fetcher brings from the leader).
//!
//! The log sits behind a short lock held only to append (assign offsets and
//! write) or to locate a read; file contents are read and fsynced outside it.
//! Fetch long-polls wait on the high-watermark channel (replica fetches on
//! the log-end channel), `acks=all` produces on the high-watermark and
//! durable-offset channels — never on a sleep loop.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::log::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::log::cleaner::{self, CleanStats, CleanerLimits};
use crate::log::retention::RetentionOutcome;
use crate::log::{
    AbortedTxn, AppendInfo, AppendOrigin, ControlMarker, Log, LogConfig, LogError, ProducerError,
};
use crate::metadata::records::PartitionRecord;
use crate::metrics::PartitionStats;

use super::replica::LeaderState;

/// How far the log is known to be on disk, or that making it so failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    pub offset: i64,
    pub failed: bool,
}

/// The fsync of a partition's log failed; its writes cannot be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("fsync of {topic}-{partition} failed")]
pub struct StorageError {
    pub topic: String,
    pub partition: i32,
}

/// The offsets a fetch reports for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The end of what `read_committed` consumers may read.
    pub last_stable_offset: i64,
}

/// What a fetch read from a partition.
#[derive(Debug, Clone)]
pub struct FetchedData {
    pub records: Bytes,
    pub offsets: PartitionOffsets,
    /// Aborted transactions in the range read (`read_committed` only).
    pub aborted: Vec<AbortedTxn>,
}

/// This replica's part in the partition, as the metadata image says.
#[derive(Debug, Clone)]
pub enum Role {
    /// It leads: serves clients and tracks its followers.
    Leader(Box<LeaderState>),
    /// It follows `leader` (-1: the partition has no leader now).
    Follower { leader: i32, leader_epoch: i32 },
}

/// Why an `acks=all` write was not replicated as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReplicated {
    /// This replica stopped leading before the high watermark passed it.
    NotLeader,
    /// The high watermark passed it, but the ISR is smaller than
    /// `min.insync.replicas` (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicas,
}

/// A partition replica on this broker.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    log: Mutex<Log>,
    /// The high watermark: what every in-sync replica has (with one replica,
    /// the log end offset after each append). Only moves forward while this
    /// replica leads; every change of role also wakes its waiters.
    high_watermark: watch::Sender<i64>,
    /// The log end offset, for replica fetches long-polling the leader.
    log_end: watch::Sender<i64>,
    /// Leader or follower, and the leader's view of its followers.
    role: Mutex<Role>,
    /// The leader epoch this replica knows (the image's).
    leader_epoch: AtomicI32,
    /// The offset below which every byte is fsynced.
    durable: watch::Sender<DurableMark>,
    /// Set while this partition waits in the flusher's queue.
    flush_queued: AtomicBool,
    /// Set when an append rolled a segment, until [`Partition::take_roll`].
    rolled: AtomicBool,
    /// The last write to the log failed on I/O (a full disk, say), and none
    /// has succeeded since: Kafka's offline log, whose partitions answer
    /// KAFKA_STORAGE_ERROR.
    write_failed: AtomicBool,
    /// Whether the metadata image names this broker the leader (set by
    /// `Broker::follow_image`); clients are served only while it does.
    leading: AtomicBool,
    /// Bytes and messages produced to and fetched from this partition.
    pub stats: PartitionStats,
    /// Corrupt batches (file, position) already logged and counted, so a
    /// consumer retrying at one does not log it at every fetch.
    corrupt_reported: Mutex<HashSet<(PathBuf, u64)>>,
}

impl Partition {
    /// A replica leading alone (its high watermark the log end offset) until
    /// the image says otherwise: a partition on its own, as tests use it.
    pub fn new(topic: &str, index: i32, log: Log) -> Partition {
        let leo = log.log_end_offset();
        let p = Partition::with_high_watermark(topic, index, log, leo);
        let lone = PartitionRecord {
            topic_id: uuid::Uuid::nil(),
            partition: index,
            replicas: vec![-1],
            isr: vec![-1],
            leader: -1,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        };
        p.lead(-1, &lone, 0);
        p
    }

    /// A replica opened by the broker, whose high watermark is
    /// `high_watermark` (the checkpointed one, for a replicated partition),
    /// within the log. It serves nobody until the image gives it a role
    /// (`Broker::follow_leadership`): a client's write reaching it before
    /// then would fork the partition's history.
    pub fn with_high_watermark(
        topic: &str,
        index: i32,
        log: Log,
        high_watermark: i64,
    ) -> Partition {
        let leo = log.log_end_offset();
        let hw = high_watermark.clamp(log.log_start_offset(), leo);
        let durable = log.recovery_point();
        Partition {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            high_watermark: watch::Sender::new(hw),
            log_end: watch::Sender::new(leo),
            role: Mutex::new(Role::Follower {
                leader: -1,
                leader_epoch: -1,
            }),
            leader_epoch: AtomicI32::new(-1),
            durable: watch::Sender::new(DurableMark {
                offset: durable,
                failed: false,
            }),
            flush_queued: AtomicBool::new(false),
            rolled: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            stats: PartitionStats::default(),
            corrupt_reported: Mutex::new(HashSet::new()),
        }
    }

    /// Whether this broker leads the partition, as the last image it
    /// followed says.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Whether the image has given this replica a role (leader or
    /// follower): only then does it serve consumers (a follower serves
    /// Fetch v11+, KIP-392).
    pub fn has_role(&self) -> bool {
        self.leader_epoch() >= 0
    }

    /// While this replica leads: (its broker id, its log end offset), and
    /// the in-sync followers holding `fetch_offset` as (id, log end offset,
    /// ms since last caught up) — where a consumer fetching from there may
    /// be sent (KIP-392).
    #[allow(clippy::type_complexity)]
    pub fn read_replicas(
        &self,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<((i32, i64), Vec<(i32, i64, i64)>)> {
        let leo = self.log_end_offset();
        match &*self.role.lock() {
            Role::Leader(s) => Some(((s.node_id, leo), s.read_replicas(fetch_offset, now_ms))),
            Role::Follower { .. } => None,
        }
    }

    /// The leader epoch of the image this replica last followed.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The role, as of now (a copy).
    pub fn role(&self) -> Role {
        self.role.lock().clone()
    }

    /// The ISR while this replica leads; empty while it follows.
    pub fn isr(&self) -> Vec<i32> {
        match &*self.role.lock() {
            Role::Leader(s) => s.isr().to_vec(),
            Role::Follower { .. } => Vec::new(),
        }
    }

    /// The image names this broker (`node_id`) leader of `record`'s
    /// partition. A new leader epoch starts at the log end offset; the same
    /// epoch only takes the record's new ISR and replicas. Returns whether
    /// this replica became leader just now.
    pub(super) fn lead(&self, node_id: i32, record: &PartitionRecord, now_ms: i64) -> bool {
        let mut role = self.role.lock();
        let became = match &mut *role {
            Role::Leader(s)
                if s.record.leader_epoch == record.leader_epoch && s.node_id == node_id =>
            {
                s.update(record.clone(), now_ms);
                false
            }
            _ => {
                let leo = {
                    let mut log = self.log.lock();
                    if let Err(e) = log.set_leader_epoch(record.leader_epoch) {
                        tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                            "writing the leader-epoch checkpoint failed");
                    }
                    log.log_end_offset()
                };
                *role = Role::Leader(Box::new(LeaderState::new(
                    node_id,
                    record.clone(),
                    leo,
                    now_ms,
                )));
                true
            }
        };
        self.leader_epoch
            .store(record.leader_epoch, Ordering::Release);
        self.leading.store(true, Ordering::Release);
        drop(role);
        self.advance_high_watermark();
        // Waiters re-check the role (and min.insync against the new ISR).
        self.high_watermark.send_modify(|_| {});
        became
    }

    /// The image names another broker leader (or none: -1). Returns whether
    /// the leader or its epoch changed, so the replica fetcher must follow.
    pub(super) fn follow(&self, leader: i32, leader_epoch: i32) -> bool {
        let mut role = self.role.lock();
        let changed = !matches!(&*role, Role::Follower { leader: l, leader_epoch: e }
            if *l == leader && *e == leader_epoch);
        *role = Role::Follower {
            leader,
            leader_epoch,
        };
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.leading.store(false, Ordering::Release);
        drop(role);
        // Produces waiting for replication learn they lost leadership.
        self.high_watermark.send_modify(|_| {});
        changed
    }

    /// Moves the high watermark to what the ISR allows, if that is further.
    /// Only a leader moves it this way.
    fn advance_high_watermark(&self) {
        let leo = self.log.lock().log_end_offset();
        let allowed = match &*self.role.lock() {
            Role::Leader(s) => s.high_watermark(leo),
            Role::Follower { .. } => None,
        };
        if let Some(hw) = allowed {
            self.raise_high_watermark(hw);
        }
    }

    /// Moves the high watermark to `hw` if that is further (it never goes
    /// back), waking whoever waits on it.
    fn raise_high_watermark(&self, hw: i64) {
        self.high_watermark.send_if_modified(|cur| {
            let moved = hw > *cur;
            if moved {
                *cur = hw;
            }
            moved
        });
    }

    /// A follower's fetch from `fetch_offset` (its log end offset) reached
    /// this leader: its state, the high watermark, and the ISR it suggests
    /// (a change to propose to the controller), if any.
    pub fn follower_fetched(
        &self,
        follower: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Option<PartitionRecord> {
        let leo = self.log.lock().log_end_offset();
        let change = {
            let mut role = self.role.lock();
            let Role::Leader(s) = &mut *role else {
                return None;
            };
            s.fetched(follower, fetch_offset, log_start_offset, leo, now_ms);
            s.isr_to_expand(self.high_watermark())
                .map(|isr| s.propose_isr(isr))
        };
        self.advance_high_watermark();
        change
    }

    /// The ISR without followers that lagged past `max_lag_ms`, as a change
    /// to propose, if any (the leader's periodic ISR check).
    pub fn isr_shrink(&self, now_ms: i64, max_lag_ms: i64) -> Option<PartitionRecord> {
        let mut role = self.role.lock();
        let Role::Leader(s) = &mut *role else {
            return None;
        };
        let isr = s.isr_to_shrink(now_ms, max_lag_ms)?;
        Some(s.propose_isr(isr))
    }

    /// A proposed ISR change was not taken (refused as stale, or the
    /// controller did not answer): the next check may propose again, and
    /// the high watermark counts the image's ISR alone. (A change the
    /// controller committed after its proposal timed out goes uncounted
    /// until the image brings it: see `replication_model.rs`.)
    pub fn isr_change_failed(&self) {
        if let Role::Leader(s) = &mut *self.role.lock() {
            s.pending_isr = None;
        }
    }

    /// Waits until the high watermark passes `offset` (every in-sync replica
    /// has the write), while this replica leads in `leader_epoch`; then
    /// checks the ISR against `min_insync`.
    pub async fn wait_replicated(
        &self,
        offset: i64,
        leader_epoch: i32,
        min_insync: usize,
    ) -> Result<(), NotReplicated> {
        let mut rx = self.high_watermark.subscribe();
        loop {
            if !self.is_leading() || self.leader_epoch() != leader_epoch {
                return Err(NotReplicated::NotLeader);
            }
            if *rx.borrow_and_update() >= offset {
                return if self.isr().len() >= min_insync {
                    Ok(())
                } else {
                    Err(NotReplicated::NotEnoughReplicas)
                };
            }
            if rx.changed().await.is_err() {
                return Err(NotReplicated::NotLeader);
            }
        }
    }

    /// A receiver that changes whenever the log end offset moves (replica
    /// fetches long-poll on it).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// (log start offset, log end offset), read together.
    pub fn log_bounds(&self) -> (i64, i64) {
        let log = self.log.lock();
        (log.log_start_offset(), log.log_end_offset())
    }

    /// The log end offset.
    pub fn log_end_offset(&self) -> i64 {
        *self.log_end.borrow()
    }

    /// A replica fetch's read: whole batches from `offset` up to the log end
    /// offset, copied (never mapped: the bytes above the high watermark may
    /// be cut if this replica later follows another leader).
    pub fn read_for_follower(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        let mut slice = {
            let log = self.log.lock();
            let leo = log.log_end_offset();
            log.read(offset, max_bytes, leo, true)?
        };
        slice.may_map = false;
        slice.read()
    }

    /// The (epoch, end offset) of `epoch` in this log, Kafka's
    /// OffsetsForLeaderEpoch answer: (-1, -1) when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.log.lock().end_offset_for_epoch(epoch)
    }

    /// The epoch of the last batch in the log, -1 if none.
    pub fn latest_epoch(&self) -> i32 {
        self.log.lock().latest_epoch().unwrap_or(-1)
    }

    /// On the leader: whether a follower whose last batch is of
    /// `last_fetched_epoch` and whose log ends at `fetch_offset` left this
    /// log's history (KIP-279): the (epoch, end offset) it must truncate to
    /// if so. A follower with no epoch (an empty log) has not diverged.
    pub fn diverging_epoch(
        &self,
        last_fetched_epoch: i32,
        fetch_offset: i64,
    ) -> Option<(i32, i64)> {
        if last_fetched_epoch < 0 {
            return None;
        }
        let (epoch, end) = self.end_offset_for_epoch(last_fetched_epoch);
        (epoch != last_fetched_epoch || end < fetch_offset).then_some((epoch, end))
    }

    /// On a follower: where to cut its log when the leader answered a fetch
    /// with the diverging `(epoch, end_offset)` (Kafka's
    /// `getOffsetTruncationState`): the end of that epoch here and there,
    /// whichever is lower; this log's end of its largest epoch below it if it
    /// lacks that epoch (the next fetch refines it); the leader's end if it
    /// knows no epoch at or below it. Never past the log end offset.
    pub fn diverging_truncation_offset(&self, epoch: i32, end_offset: i64) -> i64 {
        let (local_epoch, local_end) = self.end_offset_for_epoch(epoch);
        let to = if local_epoch == epoch {
            local_end.min(end_offset)
        } else if local_epoch < 0 {
            end_offset
        } else {
            local_end
        };
        to.min(self.log_end_offset())
    }

    /// A follower appends the leader's batches as they are (offsets and
    /// epochs kept) and takes the leader's high watermark, capped at its
    /// own log end offset.
    pub fn append_as_follower(&self, records: &mut [u8], leader_hw: i64) -> Result<(), LogError> {
        let leo = if records.is_empty() {
            self.log_end_offset()
        } else {
            let now = crate::clock::now_ms();
            self.write(|log| log.append_as_follower(records, now))?.1
        };
        self.raise_high_watermark(leader_hw.min(leo));
        Ok(())
    }

    /// A follower cuts its log at `offset` (its tail diverged from the
    /// leader's history, KIP-101/279). Only offsets above the high watermark
    /// are ever cut, so no fetch can hold bytes that vanish.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        let offset = offset.max(self.high_watermark());
        let leo = {
            let mut log = self.log.lock();
            log.truncate_to(offset)?;
            log.log_end_offset()
        };
        tracing::info!(topic = %self.topic, partition = self.index, offset = leo,
            "truncated the log to the leader's history");
        self.log_end.send_replace(leo);
        self.durable.send_modify(|m| m.offset = m.offset.min(leo));
        Ok(())
    }

    /// This follower's log ends below the leader's log start offset
    /// `leader_log_start` (it is new, or was away longer than the leader's
    /// retention): it empties its log and fetches from there. Its high
    /// watermark is at most its log end, so nothing a reader was served is
    /// cut; whole segments are unlinked, never shortened under a mapping.
    pub fn restart_at(&self, leader_log_start: i64) -> Result<(), LogError> {
        self.log.lock().restart_at(leader_log_start)?;
        tracing::info!(topic = %self.topic, partition = self.index, offset = leader_log_start,
            "a follower below the leader's log start starts over there");
        self.log_end.send_replace(leader_log_start);
        self.durable
            .send_modify(|m| m.offset = m.offset.max(leader_log_start));
        Ok(())
    }

    /// The leader's log start offset moved past this follower's (retention
    /// or DeleteRecords on the leader).
    pub fn follow_log_start_offset(&self, leader_log_start: i64) -> Result<(), LogError> {
        let hw = self.high_watermark();
        let mut log = self.log.lock();
        if leader_log_start > log.log_start_offset() && leader_log_start <= hw {
            log.advance_log_start_offset(leader_log_start)?;
        }
        Ok(())
    }

    /// Validates and appends one produce request's batches for this partition.
    pub fn append(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(|log| log.append_from(records, origin, now_ms))
    }

    /// Appends the control batch that commits or aborts `marker`'s producer's
    /// transaction here; the last stable offset moves past it.
    pub fn append_marker(
        &self,
        marker: &ControlMarker,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(|log| log.append_marker(marker, now_ms))
    }

    fn append_with(
        &self,
        append: impl FnOnce(&mut Log) -> Result<AppendInfo, LogError>,
    ) -> Result<AppendInfo, LogError> {
        let (info, leo) = self.write(append)?;
        debug_assert!(leo > info.last_offset);
        self.advance_high_watermark();
        Ok(info)
    }

    /// One write to the log, a leader's or a follower's, under the lock:
    /// notes a roll, keeps `/health` in step, and publishes the new log end
    /// offset, which it returns with what `write` returned.
    fn write(
        &self,
        write: impl FnOnce(&mut Log) -> Result<AppendInfo, LogError>,
    ) -> Result<(AppendInfo, i64), LogError> {
        let (info, leo) = {
            let mut log = self.log.lock();
            let segments = log.segment_count();
            let info = write(&mut log).map_err(|e| self.write_error(e))?;
            if log.segment_count() > segments {
                self.rolled.store(true, Ordering::Release);
            }
            (info, log.log_end_offset())
        };
        self.write_failed.store(false, Ordering::Release);
        crate::health::global().write_succeeded();
        self.log_end.send_replace(leo);
        Ok((info, leo))
    }

    /// An append that failed on I/O degrades `/health` until a write
    /// succeeds, and marks the log as failed until then.
    ///
    /// While it is, a batch refused for its sequence is answered with the
    /// storage error instead: it is out of order only because an earlier
    /// batch of its producer failed to be written (the client sends up to
    /// five at once). Kafka, whose log is offline after such a failure,
    /// answers KAFKA_STORAGE_ERROR before it looks at sequences; an
    /// OUT_OF_ORDER_SEQUENCE_NUMBER would make an idempotent client bump
    /// its epoch and send again, under new sequences, batches it could not
    /// know were written — a duplicate in another partition.
    fn write_error(&self, e: LogError) -> LogError {
        match e {
            LogError::Io(_) | LogError::IoAt { .. } => {
                let what = format!("appending to {}-{}: {e}", self.topic, self.index);
                crate::health::global().write_failed(what);
                self.write_failed.store(true, Ordering::Release);
                e
            }
            LogError::Producer(ProducerError::OutOfOrderSequence(why))
                if self.write_failed.load(Ordering::Acquire) =>
            {
                LogError::Io(std::io::Error::other(format!(
                    "the previous write to this log failed, so this batch was not written ({why})"
                )))
            }
            other => other,
        }
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn offsets(&self) -> PartitionOffsets {
        let hw = self.high_watermark();
        let log = self.log.lock();
        PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            high_watermark: hw,
            last_stable_offset: log.last_stable_offset(hw),
        }
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A fetch's read: up to the high watermark, or with `read_committed` up to
    /// the last stable offset, listing the aborted transactions in that range.
    /// Reads stop before a corrupt batch; a read starting at one fails with
    /// [`LogError::CorruptBatch`], logged and counted once per batch.
    pub fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<FetchedData, LogError> {
        let fetched = self.fetch_unreported(offset, max_bytes, min_one, read_committed);
        if let Err(LogError::CorruptBatch {
            offset,
            path,
            position,
            reason,
        }) = &fetched
        {
            if self
                .corrupt_reported
                .lock()
                .insert((path.clone(), *position))
            {
                tracing::error!(
                    topic = %self.topic,
                    partition = self.index,
                    offset,
                    file = %path.display(),
                    position,
                    reason = %reason,
                    "corrupt record batch; fetches at this offset answer CORRUPT_MESSAGE"
                );
                crate::metrics::global().corrupt_batch();
            }
        }
        fetched
    }

    fn fetch_unreported(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<FetchedData, LogError> {
        let hw = self.high_watermark();
        let (slice, offsets, aborted) = {
            let log = self.log.lock();
            let offsets = PartitionOffsets {
                log_start_offset: log.log_start_offset(),
                high_watermark: hw,
                last_stable_offset: log.last_stable_offset(hw),
            };
            let max_offset = if read_committed {
                offsets.last_stable_offset
            } else {
                hw
            };
            let slice = log.read(offset, max_bytes, max_offset, min_one)?;
            let aborted = if read_committed && slice.len > 0 {
                log.aborted_transactions(offset, max_offset)
            } else {
                Vec::new()
            };
            (slice, offsets, aborted)
        };
        Ok(FetchedData {
            records: slice.read()?,
            offsets,
            aborted,
        })
    }

    /// Calls `f` with every whole batch (header and bytes) from the log start
    /// offset to the log end offset, in order: how a coordinator replays its
    /// partition of an internal topic when its broker becomes the leader
    /// (whose whole log is the partition's history from then on).
    /// A corrupt batch is skipped with the rest of its segment, whose batch
    /// boundaries may be lost.
    pub fn for_each_batch(&self, mut f: impl FnMut(&BatchHeader, &[u8])) -> Result<(), LogError> {
        let (mut offset, end) = self.log_bounds();
        while offset < end {
            let chunk = match self.read_for_follower(offset, 1 << 20) {
                Ok(read) => read,
                Err(LogError::CorruptBatch { .. }) => {
                    let next = self.with_log(|log| {
                        log.segment_base_offsets()
                            .into_iter()
                            .find(|&base| base > offset)
                    });
                    tracing::warn!(topic = %self.topic, partition = self.index, offset,
                        resume = next, "replay skips the rest of a segment with a corrupt batch");
                    match next {
                        Some(next) => {
                            offset = next;
                            continue;
                        }
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            let mut rest = &chunk[..];
            while rest.len() >= BATCH_HEADER_LEN {
                let header = BatchHeader::parse(rest)?;
                let size = header.total_size().min(rest.len());
                offset = header.last_offset() + 1;
                f(&header, &rest[..size]);
                rest = &rest[size..];
            }
        }
        Ok(())
    }

    /// Runs `f` with the log locked, for lookups that need the whole log.
    /// Bytes of record batches in the log (all segments).
    pub fn size_bytes(&self) -> u64 {
        self.log.lock().size_bytes()
    }

    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.log.lock())
    }

    pub fn set_log_config(&self, config: LogConfig) {
        self.log.lock().set_config(config);
    }

    /// Forgets producers idle past `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.log.lock().expire_producers(now_ms, expiration_ms)
    }

    /// Deletes segments past retention or below the log start offset.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        self.log.lock().delete_old_segments(now_ms)
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high
    /// watermark). Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let hw = self.high_watermark();
        let mut log = self.log.lock();
        let offset = if offset == -1 { hw } else { offset };
        if offset > hw || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset(),
                log_end_offset: hw,
            });
        }
        log.advance_log_start_offset(offset)?;
        Ok(log.log_start_offset())
    }

    /// One compaction pass if one is due: planned and installed under the
    /// lock, the segments cleaned outside it so appends and fetches go on.
    pub fn clean(
        &self,
        now_ms: i64,
        limits: CleanerLimits,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.log.lock().cleaner_plan(now_ms)? else {
            return Ok(None);
        };
        tracing::debug!(topic = %self.topic, partition = self.index, "log cleaner started cleaning");
        let Some(cleaned) = cleaner::clean(&plan, limits, stop)? else {
            return Ok(None);
        };
        let stats = cleaned.stats;
        self.log.lock().install_cleaned(cleaned)?;
        Ok(Some(stats))
    }

    /// Whether an append rolled a segment since the last call: the caller
    /// then has the log flushed, as Kafka flushes a log when it rolls, so
    /// the recovery point moves past the segment just closed whatever the
    /// producers' acks and the durability policy.
    pub fn take_roll(&self) -> bool {
        self.rolled.swap(false, Ordering::AcqRel)
    }

    /// Marks the partition as waiting for the flusher; false if it already was.
    pub(crate) fn enqueue_flush(&self) -> bool {
        !self.flush_queued.swap(true, Ordering::AcqRel)
    }

    /// Fsyncs whatever is unflushed (outside the log lock) and publishes the
    /// new durable offset to every waiter; true if it moved. Called by the
    /// flusher only.
    pub(crate) fn flush_now(&self) -> bool {
        self.flush_queued.store(false, Ordering::Release);
        let (files, offset) = self.log.lock().unflushed();
        let started = std::time::Instant::now();
        let synced = files.iter().try_for_each(|f| f.sync_data());
        crate::metrics::global().fsync(started.elapsed());
        match synced {
            Ok(()) => {
                crate::health::global().write_succeeded();
                self.log.lock().mark_flushed(offset);
                let mut moved = false;
                self.durable.send_modify(|m| {
                    moved = offset > m.offset;
                    m.offset = m.offset.max(offset);
                });
                moved
            }
            Err(e) => {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                    "fsync failed; acks=all writes on this partition will fail");
                let what = format!("fsync of {}-{}: {e}", self.topic, self.index);
                crate::health::global().write_failed(what);
                self.durable.send_modify(|m| m.failed = true);
                false
            }
        }
    }

    /// Writes a producer-state snapshot at the log end offset if at least
    /// `min_bytes` were appended since the last one, so a restart replays at
    /// most that much after it.
    pub fn snapshot_producers_if_grown(&self, min_bytes: u64) -> Result<(), LogError> {
        self.log.lock().snapshot_producers_if_grown(min_bytes)
    }

    /// What recovery at open validated and replayed for this partition.
    pub fn recovery_stats(&self) -> crate::log::recovery::RecoveryStats {
        self.log.lock().recovery_stats()
    }

    /// Waits until every offset below `offset` is durable.
    pub async fn wait_durable(&self, offset: i64) -> Result<(), StorageError> {
        let mut rx = self.durable.subscribe();
        let mark = rx
            .wait_for(|m| m.failed || m.offset >= offset)
            .await
            .map(|m| *m)
            .unwrap_or(DurableMark {
                offset: 0,
                failed: true,
            });
        if mark.failed {
            return Err(StorageError {
                topic: self.topic.clone(),
                partition: self.index,
            });
        }
        Ok(())
    }

    pub fn durable_offset(&self) -> i64 {
        self.durable.borrow().offset
    }

    /// Fsyncs everything and returns the recovery point (clean shutdown).
    pub fn close(&self) -> Result<i64, LogError> {
        let mut log = self.log.lock();
        log.flush()?;
        log.write_producer_snapshot()?;
        Ok(log.recovery_point())
    }

    /// The numbers the checkpoint files keep: (recovery point, log start offset, high watermark).
    pub fn checkpoint_offsets(&self) -> (i64, i64, i64) {
        let log = self.log.lock();
        (
            log.recovery_point(),
            log.log_start_offset(),
            self.high_watermark(),
        )
    }

    /// Removes the partition's directory (topic deletion). Requests still
    /// holding this partition finish against unlinked files.
    pub fn delete(&self) -> std::io::Result<()> {
        let log = self.log.lock();
        std::fs::remove_dir_all(log.dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;
    use crate::log::segment::segment_file_name;

    #[test]
    fn replay_skips_the_rest_of_a_segment_with_a_corrupt_batch() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 400,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        let mut sizes = Vec::new();
        for i in 0..12 {
            let mut b = batch(2, 1_000 + i);
            sizes.push(b.len());
            log.append(&mut b, 1_000).unwrap();
        }
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        let leo = log.log_end_offset();
        log.flush().unwrap();
        drop(log);
        let path = dir.path().join(segment_file_name(0, "log"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[sizes[0] + sizes[1] - 1] ^= 0x01; // the second batch's records
        std::fs::write(&path, &bytes).unwrap();

        let partition = Partition::new("t", 0, Log::open(dir.path(), config, leo, 0).unwrap());
        let mut seen = Vec::new();
        partition
            .for_each_batch(|h, _| seen.push(h.base_offset))
            .unwrap();
        let expected: Vec<i64> = std::iter::once(0)
            .chain((bases[1]..leo).step_by(2))
            .collect();
        assert_eq!(seen, expected);
    }

    fn record(replicas: &[i32], isr: &[i32], leader: i32, leader_epoch: i32) -> PartitionRecord {
        PartitionRecord {
            topic_id: uuid::Uuid::nil(),
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch: 0,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_high_watermark_follows_the_slowest_in_sync_follower_and_acks_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), 0, 0).unwrap();
        let p = std::sync::Arc::new(Partition::new("t", 0, log));
        assert!(p.lead(1, &record(&[1, 2, 3], &[1, 2, 3], 1, 4), 0));
        let mut b = batch(3, 1_000);
        let info = p.append(&mut b, AppendOrigin::Client, 1_000).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 2));
        // The batch carries the leader epoch it was appended in.
        let (read, _) = p.with_log(|l| (l.read(0, 1 << 20, 3, true).unwrap(), ()));
        let read = read.read().unwrap();
        assert_eq!(BatchHeader::parse(&read).unwrap().partition_leader_epoch, 4);
        assert_eq!(p.high_watermark(), 0, "no follower has it yet");

        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_replicated(3, 4, 2).await })
        };
        assert_eq!(p.follower_fetched(2, 3, 0, 10), None);
        assert_eq!(p.high_watermark(), 0, "follower 3 has not fetched");
        assert_eq!(p.follower_fetched(3, 1, 0, 10), None);
        assert_eq!(p.high_watermark(), 1);
        assert!(!waiter.is_finished());
        assert_eq!(p.follower_fetched(3, 3, 0, 20), None);
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(waiter.await.unwrap(), Ok(()));

        // Leadership moves away: a write waiting for replication hears so.
        let mut b = batch(1, 2_000);
        p.append(&mut b, AppendOrigin::Client, 2_000).unwrap();
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_replicated(4, 4, 2).await })
        };
        tokio::task::yield_now().await;
        assert!(p.follow(2, 5));
        assert_eq!(waiter.await.unwrap(), Err(NotReplicated::NotLeader));
        assert!(!p.is_leading());
    }

    #[test]
    fn a_caught_up_follower_outside_the_isr_is_proposed_for_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), 0, 0).unwrap();
        let p = Partition::new("t", 0, log);
        p.lead(1, &record(&[1, 2], &[1], 1, 0), 0);
        let mut b = batch(2, 1_000);
        p.append(&mut b, AppendOrigin::Client, 1_000).unwrap();
        assert_eq!(p.high_watermark(), 2, "alone in the ISR");
        assert_eq!(p.follower_fetched(2, 1, 0, 5), None, "behind");
        let change = p.follower_fetched(2, 2, 0, 6).expect("caught up");
        assert_eq!((change.isr, change.partition_epoch), (vec![1, 2], 1));
        assert_eq!(p.follower_fetched(2, 2, 0, 7), None, "already proposed");
        p.isr_change_failed();
        assert!(p.follower_fetched(2, 2, 0, 8).is_some(), "proposed again");
    }
}
