//! The group coordinator: every consumer group on this broker, their
//! committed offsets, and the durable record of both in `__consumer_offsets`.
//!
//! Each group sits behind its own short lock around the classic state machine
//! (`classic.rs`); requests that must wait (JoinGroup, SyncGroup) park a
//! oneshot channel that a later request or the timer task answers. Every
//! change is written to the group's `__consumer_offsets` partition in Kafka's
//! record format, and replayed from there at start. Never touches sockets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch, Notify};

use super::classic::{
    ClassicGroup, GroupConfig, GroupDescription, GroupSnapshot, GroupState, JoinRequest,
    JoinResponse, Output, Reply, SyncRequest, SyncResponse,
};
use super::records::{self, OffsetValue, RecordKey};
use crate::broker::{Partition, Topic};
use crate::clock::now_ms;
use crate::log::batch::BatchHeader;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Settings of the coordinator, from Kafka's config names.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub group: GroupConfig,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

/// A partition the caller must see durable before acknowledging a write.
pub struct DurableWrite {
    pub partition: Arc<Partition>,
    pub offset: i64,
}

/// One offset to commit.
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A group listed by ListGroups.
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

struct GroupEntry {
    group: ClassicGroup,
    offsets: BTreeMap<(String, i32), OffsetValue>,
    join_waiters: HashMap<String, oneshot::Sender<JoinResponse>>,
    sync_waiters: HashMap<String, oneshot::Sender<SyncResponse>>,
}

impl GroupEntry {
    fn new(group: ClassicGroup) -> GroupEntry {
        GroupEntry {
            group,
            offsets: BTreeMap::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
        }
    }

    /// Answers the requests that were waiting on these outputs.
    fn deliver(&mut self, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::Join {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.join_waiters.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
                Output::Sync {
                    member_id,
                    response,
                } => {
                    if let Some(tx) = self.sync_waiters.remove(&member_id) {
                        let _ = tx.send(response);
                    }
                }
            }
        }
    }
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    topic: Arc<Topic>,
    groups: Mutex<BTreeMap<String, Arc<Mutex<GroupEntry>>>>,
    /// Wakes the timer task when a deadline may have moved earlier.
    wake: Notify,
}

/// Kafka's `partitionFor(groupId)`: Java's String.hashCode, made positive.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

impl GroupCoordinator {
    /// Builds the coordinator over `__consumer_offsets`, replaying it.
    pub fn load(config: CoordinatorConfig, topic: Arc<Topic>) -> anyhow::Result<GroupCoordinator> {
        let coordinator = GroupCoordinator {
            config,
            topic,
            groups: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        };
        coordinator.replay()?;
        Ok(coordinator)
    }

    fn partition_of(&self, group_id: &str) -> Option<Arc<Partition>> {
        self.topic
            .partition(partition_for(group_id, self.topic.partition_count()))
    }

    fn entry(&self, group_id: &str) -> Option<Arc<Mutex<GroupEntry>>> {
        self.groups.lock().get(group_id).cloned()
    }

    fn entry_or_create(&self, group_id: &str) -> Arc<Mutex<GroupEntry>> {
        self.groups
            .lock()
            .entry(group_id.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(GroupEntry::new(ClassicGroup::new(
                    group_id.to_string(),
                    self.config.group.clone(),
                ))))
            })
            .clone()
    }

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResponse {
        let rx = {
            let entry = self.entry_or_create(group_id);
            let mut e = entry.lock();
            let now = now_ms();
            // A pending join is keyed by the member id the group knows: the
            // one sent, or for a new member the one it minted.
            let (reply, key, outputs) = e.group.join_keyed(now, req);
            e.deliver(outputs);
            self.persist_snapshot(group_id, &mut e, now);
            match reply {
                Reply::Now(response) => {
                    self.wake.notify_one();
                    return response;
                }
                Reply::Pending => {
                    let (tx, rx) = oneshot::channel();
                    e.join_waiters.insert(key, tx);
                    rx
                }
            }
        };
        self.wake.notify_one();
        rx.await.unwrap_or_else(|_| JoinResponse {
            error_code: ResponseError::RebalanceInProgress.code(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: String::new(),
            members: Vec::new(),
        })
    }

    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResponse {
        let failed = |code: i16| SyncResponse {
            error_code: code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        };
        let Some(entry) = self.entry(group_id) else {
            return failed(ResponseError::UnknownMemberId.code());
        };
        let member_id = req.member_id.clone();
        let rx = {
            let mut e = entry.lock();
            let now = now_ms();
            let (reply, outputs) = e.group.sync(now, req);
            e.deliver(outputs);
            self.persist_snapshot(group_id, &mut e, now);
            match reply {
                Reply::Now(response) => {
                    self.wake.notify_one();
                    return response;
                }
                Reply::Pending => {
                    let (tx, rx) = oneshot::channel();
                    e.sync_waiters.insert(member_id, tx);
                    rx
                }
            }
        };
        self.wake.notify_one();
        rx.await
            .unwrap_or_else(|_| failed(ResponseError::RebalanceInProgress.code()))
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> i16 {
        let Some(entry) = self.entry(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        let mut e = entry.lock();
        let now = now_ms();
        let (code, outputs) = e
            .group
            .heartbeat(now, member_id, instance_id, generation_id);
        e.deliver(outputs);
        self.persist_snapshot(group_id, &mut e, now);
        self.wake.notify_one();
        code
    }

    /// Removes members; one error code per member, in order.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        let Some(entry) = self.entry(group_id) else {
            return Err(ResponseError::UnknownMemberId.code());
        };
        let mut e = entry.lock();
        let now = now_ms();
        let (codes, outputs) = e.group.leave(now, members);
        e.deliver(outputs);
        self.persist_snapshot(group_id, &mut e, now);
        self.wake.notify_one();
        Ok(codes)
    }

    /// Validates and stores offsets; returns one code per offset and the
    /// write that must be durable before the commit is acknowledged.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<CommitOffset>,
    ) -> (Vec<i16>, Option<DurableWrite>) {
        let fail_all = |code: i16| (vec![code; offsets.len()], None);
        let entry = match self.entry(group_id) {
            Some(e) => e,
            // Kafka creates an empty group for a "simple" commit (no member).
            None if generation_id < 0 && member_id.is_empty() => self.entry_or_create(group_id),
            None => return fail_all(ResponseError::IllegalGeneration.code()),
        };
        let mut e = entry.lock();
        if let Err(code) = e
            .group
            .validate_offset_commit(member_id, instance_id, generation_id)
        {
            return fail_all(code);
        }
        let now = now_ms();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                codes.push(ResponseError::OffsetMetadataTooLarge.code());
                continue;
            }
            codes.push(0);
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now,
            };
            let key = RecordKey::Offset {
                group: group_id.to_string(),
                topic: o.topic.clone(),
                partition: o.partition,
            };
            records.push((
                records::encode_key(&key),
                Some(records::encode_offset(&value)),
            ));
            accepted.push(((o.topic, o.partition), value));
        }
        if records.is_empty() {
            return (codes, None);
        }
        match self.write(group_id, records, now) {
            Ok(durable) => {
                e.offsets.extend(accepted);
                (codes, durable)
            }
            Err(code) => (
                codes
                    .iter()
                    .map(|&c| if c == 0 { code } else { c })
                    .collect(),
                None,
            ),
        }
    }

    /// Committed offsets of a group: the requested partitions (None for
    /// those without a commit), or every committed partition.
    pub fn committed(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, i32, Option<OffsetValue>)> {
        let entry = self.entry(group_id);
        let guard = entry.as_ref().map(|e| e.lock());
        let offsets = guard.as_ref().map(|e| &e.offsets);
        match wanted {
            Some(wanted) => wanted
                .iter()
                .flat_map(|(topic, parts)| {
                    parts.iter().map(move |&p| {
                        let v = offsets.and_then(|o| o.get(&(topic.clone(), p)).cloned());
                        (topic.clone(), p, v)
                    })
                })
                .collect(),
            None => offsets
                .map(|o| {
                    o.iter()
                        .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn list(&self) -> Vec<GroupListing> {
        let entries: Vec<_> = self
            .groups
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries
            .into_iter()
            .map(|(group_id, entry)| {
                let e = entry.lock();
                GroupListing {
                    group_id,
                    protocol_type: e.group.protocol_type().unwrap_or_default().to_string(),
                    state: e.group.state(),
                }
            })
            .collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.entry(group_id).map(|e| e.lock().group.describe())
    }

    /// DeleteGroups for one group: only an empty group can be deleted.
    pub fn delete(&self, group_id: &str) -> i16 {
        let Some(entry) = self.entry(group_id) else {
            return ResponseError::GroupIdNotFound.code();
        };
        let mut e = entry.lock();
        match e.group.state() {
            GroupState::Empty => {}
            GroupState::Dead => return ResponseError::GroupIdNotFound.code(),
            _ => return ResponseError::NonEmptyGroup.code(),
        }
        let now = now_ms();
        let mut tombstones: Vec<(Bytes, Option<Bytes>)> = e
            .offsets
            .keys()
            .map(|(topic, partition)| {
                let key = RecordKey::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (records::encode_key(&key), None)
            })
            .collect();
        tombstones.push((
            records::encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            }),
            None,
        ));
        if let Err(code) = self.write(group_id, tombstones, now) {
            return code;
        }
        let outputs = e.group.mark_dead();
        e.deliver(outputs);
        e.offsets.clear();
        drop(e);
        self.groups.lock().remove(group_id);
        0
    }

    /// OffsetDelete: removes committed offsets of partitions the group does
    /// not consume right now. Returns a code per partition.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&GroupDescription, &str) -> bool,
    ) -> Result<Vec<i16>, i16> {
        let Some(entry) = self.entry(group_id) else {
            return Err(ResponseError::GroupIdNotFound.code());
        };
        let mut e = entry.lock();
        let description = e.group.describe();
        let now = now_ms();
        let mut codes = Vec::new();
        let mut tombstones = Vec::new();
        let mut removed = Vec::new();
        for (topic, partition) in partitions {
            if e.group.state() != GroupState::Empty && subscribed(&description, topic) {
                codes.push(ResponseError::GroupSubscribedToTopic.code());
                continue;
            }
            codes.push(0);
            if e.offsets.contains_key(&(topic.clone(), *partition)) {
                let key = RecordKey::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                tombstones.push((records::encode_key(&key), None));
                removed.push((topic.clone(), *partition));
            }
        }
        if !tombstones.is_empty() {
            self.write(group_id, tombstones, now)?;
            for k in removed {
                e.offsets.remove(&k);
            }
        }
        Ok(codes)
    }

    /// Writes the group's snapshot if the state machine says it changed.
    fn persist_snapshot(&self, group_id: &str, e: &mut GroupEntry, now: i64) {
        if let Some(snapshot) = e.group.take_snapshot_if_changed(now) {
            let key = records::encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            });
            let _ = self.write(
                group_id,
                vec![(key, Some(records::encode_group(&snapshot)))],
                now,
            );
        }
    }

    /// Appends records to the group's `__consumer_offsets` partition.
    fn write(
        &self,
        group_id: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
        now: i64,
    ) -> Result<Option<DurableWrite>, i16> {
        let Some(partition) = self.partition_of(group_id) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        if let Err(e) = RecordBatchEncoder::encode(&mut buf, records.iter(), &options) {
            tracing::error!(group = group_id, error = %e, "could not encode a __consumer_offsets batch");
            return Err(ResponseError::UnknownServerError.code());
        }
        match partition.append(&mut buf, now) {
            Ok(info) => Ok(Some(DurableWrite {
                partition,
                offset: info.last_offset + 1,
            })),
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "writing to __consumer_offsets failed");
                Err(ResponseError::CoordinatorNotAvailable.code())
            }
        }
    }

    /// Rebuilds groups and offsets from `__consumer_offsets`.
    fn replay(&self) -> anyhow::Result<()> {
        let mut offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetValue>> = BTreeMap::new();
        let mut snapshots: BTreeMap<String, Option<GroupSnapshot>> = BTreeMap::new();
        let mut skipped = 0usize;
        for partition in self.topic.partitions() {
            let mut offset = partition.offsets().log_start_offset;
            let end = partition.high_watermark();
            while offset < end {
                let (chunk, _) = partition.read(offset, 1 << 20, true)?;
                if chunk.is_empty() {
                    break;
                }
                let mut rest = &chunk[..];
                while rest.len() >= crate::log::batch::BATCH_HEADER_LEN {
                    let header = BatchHeader::parse(rest)?;
                    let size = header.total_size().min(rest.len());
                    offset = header.last_offset() + 1;
                    if !header.is_control() {
                        let mut batch = Bytes::copy_from_slice(&rest[..size]);
                        match RecordBatchDecoder::decode(&mut batch) {
                            Ok(set) => {
                                for r in set.records {
                                    if apply(&mut offsets, &mut snapshots, &r).is_err() {
                                        skipped += 1;
                                    }
                                }
                            }
                            Err(_) => skipped += 1,
                        }
                    }
                    rest = &rest[size..];
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "skipped unreadable records while loading __consumer_offsets"
            );
        }
        let now = now_ms();
        let mut groups = self.groups.lock();
        let mut names: Vec<String> = offsets.keys().cloned().collect();
        names.extend(snapshots.keys().cloned());
        names.sort();
        names.dedup();
        for name in names {
            let snapshot = snapshots.remove(&name).flatten();
            let group_offsets = offsets.remove(&name).unwrap_or_default();
            if snapshot.is_none() && group_offsets.is_empty() {
                continue;
            }
            let group = match snapshot {
                Some(s) => ClassicGroup::restore(name.clone(), self.config.group.clone(), s, now),
                None => ClassicGroup::new(name.clone(), self.config.group.clone()),
            };
            let mut entry = GroupEntry::new(group);
            entry.offsets = group_offsets;
            groups.insert(name, Arc::new(Mutex::new(entry)));
        }
        tracing::info!(groups = groups.len(), "loaded consumer groups");
        Ok(())
    }

    /// Expires session/rebalance timeouts and stale offsets until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut next_retention_check = now_ms() + self.config.retention_check_interval_ms;
        loop {
            let next = self
                .next_deadline()
                .unwrap_or(i64::MAX)
                .min(next_retention_check);
            let wait = Duration::from_millis((next - now_ms()).clamp(0, 60_000) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = crate::net::listener::stopped(&mut stop) => return,
            }
            let now = now_ms();
            let entries: Vec<_> = self
                .groups
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (group_id, entry) in &entries {
                let mut e = entry.lock();
                if e.group.next_deadline().is_some_and(|d| d <= now) {
                    let outputs = e.group.tick(now);
                    e.deliver(outputs);
                    self.persist_snapshot(group_id, &mut e, now);
                }
            }
            if now >= next_retention_check {
                self.expire_offsets(&entries, now);
                next_retention_check = now + self.config.retention_check_interval_ms;
            }
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        let entries: Vec<_> = self.groups.lock().values().cloned().collect();
        entries
            .iter()
            .filter_map(|e| e.lock().group.next_deadline())
            .min()
    }

    /// Drops the offsets of empty groups not committed to within
    /// `offsets.retention.minutes` (Kafka's rule since KIP-211).
    fn expire_offsets(&self, entries: &[(String, Arc<Mutex<GroupEntry>>)], now: i64) {
        for (group_id, entry) in entries {
            let mut e = entry.lock();
            if e.group.state() != GroupState::Empty {
                continue;
            }
            let expired: Vec<(String, i32)> = e
                .offsets
                .iter()
                .filter(|(_, v)| now - v.commit_timestamp > self.config.offsets_retention_ms)
                .map(|(k, _)| k.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let tombstones = expired
                .iter()
                .map(|(topic, partition)| {
                    let key = RecordKey::Offset {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    };
                    (records::encode_key(&key), None)
                })
                .collect();
            if self.write(group_id, tombstones, now).is_ok() {
                for k in &expired {
                    e.offsets.remove(k);
                }
                tracing::info!(group = %group_id, expired = expired.len(), "expired committed offsets");
            }
        }
    }
}

/// Applies one replayed record to the maps being rebuilt.
fn apply(
    offsets: &mut BTreeMap<String, BTreeMap<(String, i32), OffsetValue>>,
    snapshots: &mut BTreeMap<String, Option<GroupSnapshot>>,
    r: &Record,
) -> Result<(), records::RecordError> {
    let Some(key) = &r.key else {
        return Ok(());
    };
    match records::decode_key(key)? {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            let group_offsets = offsets.entry(group).or_default();
            match &r.value {
                Some(v) => {
                    group_offsets.insert((topic, partition), records::decode_offset(v)?);
                }
                None => {
                    group_offsets.remove(&(topic, partition));
                }
            }
        }
        RecordKey::Group { group } => {
            let snapshot = match &r.value {
                Some(v) => Some(records::decode_group(v)?),
                None => {
                    offsets.remove(&group);
                    None
                }
            };
            snapshots.insert(group, snapshot);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_partition_matches_kafkas_java_hash() {
        // "test-group".hashCode() == 627841412 in Java; 627841412 % 50 == 12.
        assert_eq!(partition_for("test-group", 50), 12);
        // Negative hash codes are masked positive, as Utils.abs does.
        let negative = "polygenelubricants"; // hashCode == Integer.MIN_VALUE
        assert_eq!(partition_for(negative, 50), 0);
        assert_eq!(partition_for("", 50), 0);
    }
}
