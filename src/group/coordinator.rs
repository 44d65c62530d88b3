//! The group coordinator: every consumer group on this broker, their
//! committed offsets, and the durable record of both in `__consumer_offsets`.
//!
//! Each group sits behind its own short lock around the classic state machine
//! (`classic.rs`); requests that must wait (JoinGroup, SyncGroup) park a
//! oneshot channel that a later request or the timer task answers. Every
//! change is written to the group's `__consumer_offsets` partition in Kafka's
//! record format, and replayed from there at start. Never touches sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use super::classic::{
    ClassicGroup, GroupConfig, GroupDescription, GroupSnapshot, GroupState, JoinRequest,
    JoinResponse, Output, Reply, SyncRequest, SyncResponse,
};
use super::consumer::{self, ConsumerGroup, ConsumerGroupConfig, TopicsImage};
use super::consumer_records::{self, ConsumerGroupImage};
use super::records::{self, OffsetValue, RecordKey};
use crate::broker::{Partition, Topic};
use crate::clock::now_ms;
use crate::log::AppendOrigin;
use crate::shutdown::Stopping;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Settings of the coordinator, from Kafka's config names.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub group: GroupConfig,
    /// KIP-848 groups (`group.consumer.*`).
    pub consumer: ConsumerGroupConfig,
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

/// A leader's assignment, written to `__consumer_offsets`, that must be
/// durable before the group becomes Stable and its members get it (Kafka's
/// SyncGroup append callback): whoever receives it waits for `write` under
/// the durability policy, then reports to
/// [`GroupCoordinator::assignment_written`]. Always reported, even when the
/// SyncGroup that caused it has gone, or the members wait for ever.
pub struct AssignmentWrite {
    pub group_id: String,
    pub generation: i32,
    /// The write to wait for, or the error code the append failed with.
    pub write: Result<DurableWrite, i16>,
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
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// Why DescribeGroups or ConsumerGroupDescribe has nothing to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescribeError {
    NotFound,
    /// The group exists but is of the other type.
    WrongType,
}

/// A group is either a classic group or a KIP-848 consumer group; an empty
/// group of one type turns into the other when a member of the other joins.
enum Membership {
    Classic(Box<ClassicGroup>),
    Consumer(Box<ConsumerGroup>),
}

impl Membership {
    fn is_empty(&self) -> bool {
        match self {
            Membership::Classic(g) => matches!(g.state(), GroupState::Empty | GroupState::Dead),
            Membership::Consumer(g) => g.member_count() == 0,
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        match self {
            Membership::Classic(g) => g.next_deadline(),
            Membership::Consumer(g) => g.next_deadline(),
        }
    }

    /// Topics the group's members consume (for OffsetDelete).
    fn subscribed_topics(&self) -> BTreeSet<String> {
        match self {
            Membership::Classic(g) => {
                let d = g.describe();
                if d.protocol_type != "consumer" {
                    return BTreeSet::new();
                }
                d.members
                    .iter()
                    .flat_map(|m| super::assignment::subscribed_topics(&m.metadata))
                    .collect()
            }
            Membership::Consumer(g) => g.subscribed_topics(),
        }
    }
}

/// Offsets of a TxnOffsetCommit, by partition, until the transaction ends.
type PendingOffsets = BTreeMap<(String, i32), OffsetValue>;

struct GroupEntry {
    membership: Membership,
    offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Transactional offsets by producer id: applied on a commit marker,
    /// dropped on an abort marker.
    pending_txn: BTreeMap<i64, PendingOffsets>,
    join_waiters: HashMap<String, oneshot::Sender<JoinResponse>>,
    sync_waiters: HashMap<String, oneshot::Sender<SyncResponse>>,
    /// A KIP-848 group's state as last written to `__consumer_offsets`
    /// (empty if none): the next write is the difference.
    persisted_consumer: ConsumerGroupImage,
}

impl GroupEntry {
    fn new(membership: Membership) -> GroupEntry {
        GroupEntry {
            membership,
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
            persisted_consumer: ConsumerGroupImage::default(),
        }
    }

    /// The classic group, converting an empty consumer group; None if a
    /// non-empty consumer group holds the id.
    fn classic(&mut self, group_id: &str, config: &GroupConfig) -> Option<&mut ClassicGroup> {
        if matches!(self.membership, Membership::Consumer(_)) && self.membership.is_empty() {
            self.membership = Membership::Classic(Box::new(ClassicGroup::new(
                group_id.to_string(),
                config.clone(),
            )));
        }
        match &mut self.membership {
            Membership::Classic(g) => Some(g),
            Membership::Consumer(_) => None,
        }
    }

    /// The consumer group, converting an empty classic group; None if a
    /// non-empty classic group holds the id.
    fn consumer(
        &mut self,
        group_id: &str,
        config: &ConsumerGroupConfig,
    ) -> Option<&mut ConsumerGroup> {
        if matches!(self.membership, Membership::Classic(_)) && self.membership.is_empty() {
            self.membership = Membership::Consumer(Box::new(ConsumerGroup::new(
                group_id.to_string(),
                config.clone(),
            )));
        }
        match &mut self.membership {
            Membership::Consumer(g) => Some(g),
            Membership::Classic(_) => None,
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
    /// Topic names, ids and partition counts, for KIP-848 assignors.
    topics_image: Mutex<TopicsImage>,
    groups: Mutex<BTreeMap<String, Arc<Mutex<GroupEntry>>>>,
    /// Groups' own configs (KIP-848 group configs), set before or after the
    /// group exists.
    overrides: Mutex<BTreeMap<String, consumer::GroupOverrides>>,
    /// Wakes the timer task when a deadline may have moved earlier.
    wake: Notify,
    /// The `__consumer_offsets` partitions this broker leads and has loaded:
    /// it coordinates exactly their groups.
    loaded: Mutex<std::collections::BTreeSet<i32>>,
}

/// One uncompressed v2 batch of key/value records stamped `now`, written
/// by a coordinator: transactional for `producer` (id, epoch, sequence -1)
/// when given, else without a producer.
pub fn encode_batch(
    records: Vec<(Bytes, Option<Bytes>)>,
    producer: Option<(i64, i16)>,
    now: i64,
) -> Result<bytes::BytesMut, String> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
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
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Offsets of one commit, turned into records (see `offset_records`).
struct OffsetRecords {
    codes: Vec<i16>,
    records: Vec<(Bytes, Option<Bytes>)>,
    accepted: Vec<((String, i32), OffsetValue)>,
}

/// The codes of a commit whose write failed: every accepted offset gets `code`.
fn fail_accepted(codes: &[i16], code: i16) -> Vec<i16> {
    codes
        .iter()
        .map(|&c| if c == 0 { code } else { c })
        .collect()
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
    /// The coordinator over `__consumer_offsets`, with no partition loaded:
    /// the broker loads each one it becomes leader of
    /// ([`load_partition`](Self::load_partition)).
    pub fn new(config: CoordinatorConfig, topic: Arc<Topic>) -> GroupCoordinator {
        GroupCoordinator {
            config,
            topic,
            topics_image: Mutex::new(TopicsImage::new()),
            groups: Mutex::new(BTreeMap::new()),
            overrides: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            loaded: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// This broker became leader of `__consumer_offsets` partition `index`:
    /// its groups and offsets are rebuilt from the log (Kafka's
    /// `onElection`), and from then on coordinated here.
    pub fn load_partition(&self, index: i32) -> anyhow::Result<()> {
        self.unload_partition(index);
        let Some(partition) = self.topic.leader(index) else {
            return Ok(());
        };
        self.replay(&[partition])?;
        self.loaded.lock().insert(index);
        self.wake.notify_one();
        Ok(())
    }

    /// This broker no longer leads partition `index` (Kafka's
    /// `onResignation`): its groups are forgotten here; their members find
    /// the new coordinator.
    pub fn unload_partition(&self, index: i32) {
        if !self.loaded.lock().remove(&index) {
            return;
        }
        let count = self.topic.partition_count();
        let mut groups = self.groups.lock();
        let before = groups.len();
        groups.retain(|name, _| partition_for(name, count) != index);
        tracing::info!(
            partition = index,
            groups = before - groups.len(),
            "unloaded the groups of a __consumer_offsets partition"
        );
    }

    /// Whether the groups of partition `index` are loaded here.
    pub fn is_loaded(&self, index: i32) -> bool {
        self.loaded.lock().contains(&index)
    }

    fn partition_of(&self, group_id: &str) -> Option<Arc<Partition>> {
        self.topic
            .leader(partition_for(group_id, self.topic.partition_count()))
    }

    fn entry(&self, group_id: &str) -> Option<Arc<Mutex<GroupEntry>>> {
        self.groups.lock().get(group_id).cloned()
    }

    fn entry_or_create(&self, group_id: &str) -> Arc<Mutex<GroupEntry>> {
        self.groups
            .lock()
            .entry(group_id.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(GroupEntry::new(Membership::Classic(Box::new(
                    ClassicGroup::new(group_id.to_string(), self.config.group.clone()),
                )))))
            })
            .clone()
    }

    /// Runs `f` on the group's classic state machine, delivers the outputs to
    /// waiting requests and persists the group if it changed. Err(code) if a
    /// non-empty KIP-848 group holds the id.
    ///
    /// Also returns the leader assignment `f` accepted, which only SyncGroup
    /// can: see [`AssignmentWrite`].
    fn with_classic<T>(
        &self,
        group_id: &str,
        e: &mut GroupEntry,
        code_if_consumer: i16,
        f: impl FnOnce(&mut ClassicGroup, i64) -> (T, Vec<Output>),
    ) -> Result<(T, Option<AssignmentWrite>), i16> {
        let now = now_ms();
        if matches!(e.membership, Membership::Consumer(_)) && e.membership.is_empty() {
            // The empty KIP-848 group becomes a classic one: its records go.
            self.delete_consumer_records(group_id, e, now)?;
        }
        let Some(group) = e.classic(group_id, &self.config.group) else {
            return Err(code_if_consumer);
        };
        let (result, outputs) = f(group, now);
        let assigned = group.take_assignment_to_write();
        e.deliver(outputs);
        let written = self.persist_snapshot(group_id, e, now);
        self.wake.notify_one();
        let assignment = assigned.map(|generation| AssignmentWrite {
            group_id: group_id.to_string(),
            generation,
            // The leader's sync marks the group changed, so a snapshot was written.
            write: written.unwrap_or(Err(ResponseError::UnknownServerError.code())),
        });
        Ok((result, assignment))
    }

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResponse {
        let failed = |code: i16| JoinResponse {
            error_code: code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: String::new(),
            members: Vec::new(),
        };
        let entry = self.entry_or_create(group_id);
        let waiting = {
            let mut e = entry.lock();
            // A pending join is keyed by the member id the group knows: the
            // one sent, or for a new member the one it minted.
            let joined = self.with_classic(
                group_id,
                &mut e,
                ResponseError::InconsistentGroupProtocol.code(),
                |g, now| {
                    let (reply, key, outputs) = g.join_keyed(now, req);
                    ((reply, key), outputs)
                },
            );
            match joined {
                Err(code) => return failed(code),
                Ok(((Reply::Now(response), _), _)) => return response,
                Ok(((Reply::Pending, key), _)) => {
                    let (tx, rx) = oneshot::channel();
                    e.join_waiters.insert(key, tx);
                    rx
                }
            }
        };
        waiting
            .await
            .unwrap_or_else(|_| failed(ResponseError::RebalanceInProgress.code()))
    }

    /// SyncGroup. A leader's assignment is handed to `on_assignment` (see
    /// [`AssignmentWrite`]) before this waits for the response.
    pub async fn sync(
        &self,
        group_id: &str,
        req: SyncRequest,
        on_assignment: impl FnOnce(AssignmentWrite),
    ) -> SyncResponse {
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
        let waiting = {
            let mut e = entry.lock();
            let synced = self.with_classic(
                group_id,
                &mut e,
                ResponseError::UnknownMemberId.code(),
                |g, now| (g.sync(now, req), Vec::new()),
            );
            match synced {
                Err(code) => return failed(code),
                Ok((reply, assignment)) => {
                    let waiting = match reply {
                        Reply::Now(response) => Err(response),
                        Reply::Pending => {
                            let (tx, rx) = oneshot::channel();
                            e.sync_waiters.insert(member_id, tx);
                            Ok(rx)
                        }
                    };
                    (waiting, assignment)
                }
            }
        };
        let (waiting, assignment) = waiting;
        if let Some(assignment) = assignment {
            on_assignment(assignment);
        }
        let waiting = match waiting {
            Ok(rx) => rx,
            Err(response) => return response,
        };
        waiting
            .await
            .unwrap_or_else(|_| failed(ResponseError::RebalanceInProgress.code()))
    }

    /// The leader's assignment for `generation` is durable (`Ok`) or could
    /// not be written (`Err(code)`): the members waiting in SyncGroup get
    /// their assignments (or the error) if the group is still completing
    /// that generation.
    pub fn assignment_written(&self, group_id: &str, generation: i32, result: Result<(), i16>) {
        let Some(entry) = self.entry(group_id) else {
            return;
        };
        let mut e = entry.lock();
        let now = now_ms();
        let Membership::Classic(group) = &mut e.membership else {
            return;
        };
        let outputs = group.assignment_written(now, generation, result);
        e.deliver(outputs);
        let _ = self.persist_snapshot(group_id, &mut e, now);
        self.wake.notify_one();
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
        self.with_classic(
            group_id,
            &mut e,
            ResponseError::UnknownMemberId.code(),
            |g, now| g.heartbeat(now, member_id, instance_id, generation_id),
        )
        .map_or_else(|code| code, |(code, _)| code)
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
        self.with_classic(
            group_id,
            &mut e,
            ResponseError::UnknownMemberId.code(),
            |g, now| g.leave(now, members),
        )
        .map(|(codes, _)| codes)
    }

    /// A KIP-848 group's config: the broker's with the group's own values.
    fn consumer_config(&self, group_id: &str) -> ConsumerGroupConfig {
        let overrides = self.overrides.lock().get(group_id).copied();
        self.config.consumer.with(overrides.unwrap_or_default())
    }

    /// Sets a group's own configs (validated by the caller); an existing
    /// KIP-848 group uses them from its members' next heartbeats.
    pub fn set_group_config(&self, group_id: &str, overrides: consumer::GroupOverrides) {
        self.overrides
            .lock()
            .insert(group_id.to_string(), overrides);
        let entry = self.groups.lock().get(group_id).cloned();
        if let Some(entry) = entry {
            if let Membership::Consumer(g) = &mut entry.lock().membership {
                g.set_config(self.consumer_config(group_id));
            }
        }
    }

    /// One KIP-848 ConsumerGroupHeartbeat.
    /// Returns the response and the write that must be durable before it is
    /// sent (the group's changed records).
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        req: consumer::HeartbeatRequest,
    ) -> (consumer::HeartbeatResponse, Option<DurableWrite>) {
        let entry = self
            .groups
            .lock()
            .entry(group_id.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(GroupEntry::new(Membership::Consumer(Box::new(
                    ConsumerGroup::new(group_id.to_string(), self.consumer_config(group_id)),
                )))))
            })
            .clone();
        let mut e = entry.lock();
        let config = self.consumer_config(group_id);
        let interval = config.heartbeat_interval_ms;
        let failed = |code: i16, message: String| consumer::HeartbeatResponse {
            error_code: code,
            error_message: Some(message),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: interval,
            assignment: None,
        };
        let now = now_ms();
        if matches!(e.membership, Membership::Classic(_)) && e.membership.is_empty() {
            // The empty classic group becomes a KIP-848 one: its record goes.
            let tombstone = records::encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            });
            if let Err(code) = self.write(group_id, vec![(tombstone, None)], now) {
                return (failed(code, "Could not convert the group.".into()), None);
            }
        }
        let Some(group) = e.consumer(group_id, &config) else {
            let message = format!("Group {group_id} is not a consumer group.");
            return (failed(ResponseError::GroupIdNotFound.code(), message), None);
        };
        let topics = self.topics_image.lock().clone();
        let minted = uuid::Uuid::new_v4().to_string();
        let response = group.heartbeat(now, req, &topics, &minted);
        self.wake.notify_one();
        match self.persist_consumer(group_id, &mut e, now) {
            Ok(durable) => (response, durable),
            Err(code) => (
                failed(code, "Could not write the group's state.".into()),
                None,
            ),
        }
    }

    /// Tells KIP-848 groups about created, deleted or grown topics.
    pub fn set_topics(&self, image: TopicsImage) {
        *self.topics_image.lock() = image.clone();
        let now = now_ms();
        for (group_id, entry) in self.entries() {
            let mut e = entry.lock();
            if let Membership::Consumer(g) = &mut e.membership {
                g.on_topics_changed(now, &image);
                let _ = self.persist_consumer(&group_id, &mut e, now);
            }
        }
        self.wake.notify_one();
    }

    fn entries(&self) -> Vec<(String, Arc<Mutex<GroupEntry>>)> {
        self.groups
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
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
        let valid = match &e.membership {
            Membership::Classic(g) => {
                g.validate_offset_commit(member_id, instance_id, generation_id)
            }
            Membership::Consumer(g) => g.validate_offset_commit(member_id, generation_id),
        };
        if let Err(code) = valid {
            return fail_all(code);
        }
        let now = now_ms();
        let OffsetRecords {
            codes,
            records,
            accepted,
        } = self.offset_records(group_id, offsets, now);
        if records.is_empty() {
            return (codes, None);
        }
        match self.write(group_id, records, now) {
            Ok(durable) => {
                e.offsets.extend(accepted);
                (codes, durable)
            }
            Err(code) => (fail_accepted(&codes, code), None),
        }
    }

    /// The `__consumer_offsets` records for `offsets`: one code per offset
    /// (OFFSET_METADATA_TOO_LARGE or 0), the records of the accepted ones, and
    /// what to apply once they are written.
    fn offset_records(
        &self,
        group_id: &str,
        offsets: Vec<CommitOffset>,
        now: i64,
    ) -> OffsetRecords {
        let mut out = OffsetRecords {
            codes: Vec::with_capacity(offsets.len()),
            records: Vec::new(),
            accepted: Vec::new(),
        };
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                out.codes.push(ResponseError::OffsetMetadataTooLarge.code());
                continue;
            }
            out.codes.push(0);
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
            out.records.push((
                records::encode_key(&key),
                Some(records::encode_offset(&value)),
            ));
            out.accepted.push(((o.topic, o.partition), value));
        }
        out
    }

    /// TxnOffsetCommit: validates like Kafka (member and generation only when
    /// given; an unknown group is created), writes the offsets as a
    /// transactional batch of the producer and keeps them pending until the
    /// transaction's marker. Returns one code per offset and the write that
    /// must be durable before answering.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        offsets: Vec<CommitOffset>,
    ) -> (Vec<i16>, Option<DurableWrite>) {
        let fail_all = |code: i16| (vec![code; offsets.len()], None);
        let entry = self.entry_or_create(group_id);
        let mut e = entry.lock();
        let anonymous = generation_id < 0 && member_id.is_empty() && instance_id.is_none();
        let valid = match &e.membership {
            Membership::Classic(g) if g.state() == GroupState::Dead => {
                Err(ResponseError::CoordinatorNotAvailable.code())
            }
            Membership::Classic(_) if anonymous => Ok(()),
            Membership::Classic(g) => {
                match g.validate_offset_commit(member_id, instance_id, generation_id) {
                    // A transactional commit is not refused during a rebalance.
                    Err(c) if c == ResponseError::RebalanceInProgress.code() => Ok(()),
                    other => other,
                }
            }
            Membership::Consumer(_) if generation_id < 0 => Ok(()),
            Membership::Consumer(g) => g.validate_offset_commit(member_id, generation_id),
        };
        if let Err(code) = valid {
            return fail_all(code);
        }
        let now = now_ms();
        let OffsetRecords {
            codes,
            records,
            accepted,
        } = self.offset_records(group_id, offsets, now);
        if records.is_empty() {
            return (codes, None);
        }
        match self.write_as(group_id, records, now, Some((producer_id, producer_epoch))) {
            Ok(durable) => {
                e.pending_txn
                    .entry(producer_id)
                    .or_default()
                    .extend(accepted);
                (codes, durable)
            }
            Err(code) => (fail_accepted(&codes, code), None),
        }
    }

    /// A transaction marker for `producer_id` was written (and is durable)
    /// in `__consumer_offsets` partition `partition`: applies (commit) or
    /// drops (abort) that producer's pending offsets in the groups there.
    pub fn complete_txn(&self, producer_id: i64, partition: i32, commit: bool) {
        let count = self.topic.partition_count();
        for (group_id, entry) in self.entries() {
            if partition_for(&group_id, count) != partition {
                continue;
            }
            let mut e = entry.lock();
            if let Some(pending) = e.pending_txn.remove(&producer_id) {
                if commit {
                    e.offsets.extend(pending);
                }
            }
        }
    }

    /// Partitions of the group with transactional offsets not yet committed
    /// or aborted (OffsetFetch answers UNSTABLE_OFFSET_COMMIT for them when
    /// asked for stable offsets).
    pub fn pending_txn_partitions(&self, group_id: &str) -> BTreeSet<(String, i32)> {
        let Some(entry) = self.entry(group_id) else {
            return BTreeSet::new();
        };
        let e = entry.lock();
        e.pending_txn
            .values()
            .flat_map(|p| p.keys().cloned())
            .collect()
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
        self.entries()
            .into_iter()
            .map(|(group_id, entry)| {
                let e = entry.lock();
                match &e.membership {
                    Membership::Classic(g) => GroupListing {
                        group_id,
                        protocol_type: g.protocol_type().unwrap_or_default().to_string(),
                        state: g.state().as_str(),
                        group_type: "classic",
                    },
                    Membership::Consumer(g) => GroupListing {
                        group_id,
                        protocol_type: "consumer".to_string(),
                        state: g.state().as_str(),
                        group_type: "consumer",
                    },
                }
            })
            .collect()
    }

    /// A classic group, for DescribeGroups.
    pub fn describe(&self, group_id: &str) -> Result<GroupDescription, DescribeError> {
        let entry = self.entry(group_id).ok_or(DescribeError::NotFound)?;
        let e = entry.lock();
        match &e.membership {
            Membership::Classic(g) => Ok(g.describe()),
            Membership::Consumer(_) => Err(DescribeError::WrongType),
        }
    }

    /// A KIP-848 group, for ConsumerGroupDescribe.
    pub fn describe_consumer(
        &self,
        group_id: &str,
    ) -> Result<consumer::GroupDescription, DescribeError> {
        let entry = self.entry(group_id).ok_or(DescribeError::NotFound)?;
        let e = entry.lock();
        match &e.membership {
            Membership::Consumer(g) => Ok(g.describe()),
            Membership::Classic(_) => Err(DescribeError::WrongType),
        }
    }

    /// DeleteGroups for one group: only an empty group can be deleted.
    pub fn delete(&self, group_id: &str) -> i16 {
        let Some(entry) = self.entry(group_id) else {
            return ResponseError::GroupIdNotFound.code();
        };
        let mut e = entry.lock();
        if !e.membership.is_empty() {
            return ResponseError::NonEmptyGroup.code();
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
        tombstones.extend(consumer_records::records_between(
            group_id,
            &e.persisted_consumer,
            None,
        ));
        tombstones.push((
            records::encode_key(&RecordKey::Group {
                group: group_id.to_string(),
            }),
            None,
        ));
        if let Err(code) = self.write(group_id, tombstones, now) {
            return code;
        }
        match &mut e.membership {
            Membership::Classic(g) => {
                let outputs = g.mark_dead();
                e.deliver(outputs);
            }
            Membership::Consumer(g) => g.mark_dead(),
        }
        e.persisted_consumer = ConsumerGroupImage::default();
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
    ) -> Result<Vec<i16>, i16> {
        let Some(entry) = self.entry(group_id) else {
            return Err(ResponseError::GroupIdNotFound.code());
        };
        let mut e = entry.lock();
        let subscribed = e.membership.subscribed_topics();
        let now = now_ms();
        let mut codes = Vec::new();
        let mut tombstones = Vec::new();
        let mut removed = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
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

    /// Writes the records that bring a KIP-848 group's persisted state up to
    /// date with its state machine; returns the write to wait for, if any.
    fn persist_consumer(
        &self,
        group_id: &str,
        e: &mut GroupEntry,
        now: i64,
    ) -> Result<Option<DurableWrite>, i16> {
        let Membership::Consumer(group) = &e.membership else {
            return Ok(None);
        };
        let image = group.image();
        let records =
            consumer_records::records_between(group_id, &e.persisted_consumer, Some(&image));
        if records.is_empty() {
            return Ok(None);
        }
        let durable = self.write(group_id, records, now)?;
        e.persisted_consumer = image;
        Ok(durable)
    }

    /// Tombstones every KIP-848 record the group has written.
    fn delete_consumer_records(
        &self,
        group_id: &str,
        e: &mut GroupEntry,
        now: i64,
    ) -> Result<(), i16> {
        if e.persisted_consumer == ConsumerGroupImage::default() {
            return Ok(());
        }
        let tombstones = consumer_records::records_between(group_id, &e.persisted_consumer, None);
        self.write(group_id, tombstones, now)?;
        e.persisted_consumer = ConsumerGroupImage::default();
        Ok(())
    }

    /// Writes the group's snapshot if the state machine says it changed; the
    /// write (or the error code it failed with) when it did.
    fn persist_snapshot(
        &self,
        group_id: &str,
        e: &mut GroupEntry,
        now: i64,
    ) -> Option<Result<DurableWrite, i16>> {
        let Membership::Classic(group) = &mut e.membership else {
            return None;
        };
        let snapshot = group.take_snapshot_if_changed(now)?;
        let key = records::encode_key(&RecordKey::Group {
            group: group_id.to_string(),
        });
        let written = self.write(
            group_id,
            vec![(key, Some(records::encode_group(&snapshot)))],
            now,
        );
        Some(written.and_then(|w| w.ok_or(ResponseError::UnknownServerError.code())))
    }

    /// Appends records to the group's `__consumer_offsets` partition.
    fn write(
        &self,
        group_id: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
        now: i64,
    ) -> Result<Option<DurableWrite>, i16> {
        self.write_as(group_id, records, now, None)
    }

    /// [`write`](Self::write), as a transactional batch of `producer` (id,
    /// epoch) when given.
    fn write_as(
        &self,
        group_id: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
        now: i64,
        producer: Option<(i64, i16)>,
    ) -> Result<Option<DurableWrite>, i16> {
        let Some(partition) = self.partition_of(group_id) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        let mut buf = match encode_batch(records, producer, now) {
            Ok(buf) => buf,
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "could not encode a __consumer_offsets batch");
                return Err(ResponseError::UnknownServerError.code());
            }
        };
        match partition.append(&mut buf, AppendOrigin::Coordinator, now) {
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

    /// Rebuilds the groups and offsets kept in `partitions` of
    /// `__consumer_offsets`.
    fn replay(&self, partitions: &[Arc<Partition>]) -> anyhow::Result<()> {
        let mut offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetValue>> = BTreeMap::new();
        let mut snapshots: BTreeMap<String, Option<GroupSnapshot>> = BTreeMap::new();
        let mut consumers: BTreeMap<String, ConsumerGroupImage> = BTreeMap::new();
        let mut skipped = 0usize;
        // Transactional offset records wait for their producer's marker.
        let mut pending: BTreeMap<String, BTreeMap<i64, PendingOffsets>> = BTreeMap::new();
        for partition in partitions {
            // Records of open transactions in this partition, by producer id.
            let mut open: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
            partition.for_each_batch(|header, bytes| {
                if header.is_control() {
                    let records = open.remove(&header.producer_id).unwrap_or_default();
                    match crate::log::batch::control_marker_type(bytes) {
                        Some(true) => {
                            for r in &records {
                                if apply(&mut offsets, &mut snapshots, &mut consumers, r).is_err() {
                                    skipped += 1;
                                }
                            }
                        }
                        Some(false) => {}
                        None => skipped += 1,
                    }
                    return;
                }
                match RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(bytes)) {
                    Ok(set) if header.is_transactional() => open
                        .entry(header.producer_id)
                        .or_default()
                        .extend(set.records),
                    Ok(set) => {
                        for r in set.records {
                            if apply(&mut offsets, &mut snapshots, &mut consumers, &r).is_err() {
                                skipped += 1;
                            }
                        }
                    }
                    Err(_) => skipped += 1,
                }
            })?;
            // Still open: the transaction coordinator's recovery ends them.
            for (producer_id, records) in open {
                for r in records {
                    if pend(&mut pending, producer_id, &r).is_err() {
                        skipped += 1;
                    }
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
        names.extend(pending.keys().cloned());
        names.extend(consumers.keys().cloned());
        names.sort();
        names.dedup();
        for name in names {
            let snapshot = snapshots.remove(&name).flatten();
            let group_offsets = offsets.remove(&name).unwrap_or_default();
            let group_pending = pending.remove(&name).unwrap_or_default();
            let consumer = consumers
                .remove(&name)
                .filter(|image| *image != ConsumerGroupImage::default());
            if snapshot.is_none()
                && consumer.is_none()
                && group_offsets.is_empty()
                && group_pending.is_empty()
            {
                continue;
            }
            // A group id is one type at a time; a conversion tombstones the
            // other type's records, so at most one is left (a KIP-848 group
            // with members wins should both be).
            let restored = match (snapshot, consumer) {
                (s, Some(image)) if !image.members.is_empty() || s.is_none() => {
                    let g = ConsumerGroup::restore(
                        name.clone(),
                        self.consumer_config(&name),
                        &image,
                        now,
                    );
                    (Membership::Consumer(Box::new(g)), image)
                }
                (Some(s), _) => {
                    let g = ClassicGroup::restore(name.clone(), self.config.group.clone(), s, now);
                    (
                        Membership::Classic(Box::new(g)),
                        ConsumerGroupImage::default(),
                    )
                }
                (None, _) => {
                    let g = ClassicGroup::new(name.clone(), self.config.group.clone());
                    (
                        Membership::Classic(Box::new(g)),
                        ConsumerGroupImage::default(),
                    )
                }
            };
            let mut entry = GroupEntry::new(restored.0);
            entry.persisted_consumer = restored.1;
            entry.offsets = group_offsets;
            entry.pending_txn = group_pending;
            groups.insert(name, Arc::new(Mutex::new(entry)));
        }
        tracing::info!(
            partitions = ?partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
            groups = groups.len(),
            "loaded consumer groups"
        );
        Ok(())
    }

    /// Expires session/rebalance timeouts and stale offsets until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut stopping: Stopping) {
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
                _ = stopping.wait() => return,
            }
            let now = now_ms();
            let entries = self.entries();
            let topics = self.topics_image.lock().clone();
            for (group_id, entry) in &entries {
                let mut e = entry.lock();
                if e.membership.next_deadline().is_none_or(|d| d > now) {
                    continue;
                }
                match &mut e.membership {
                    Membership::Classic(g) => {
                        let outputs = g.tick(now);
                        e.deliver(outputs);
                        let _ = self.persist_snapshot(group_id, &mut e, now);
                    }
                    Membership::Consumer(g) => {
                        g.tick(now, &topics);
                        let _ = self.persist_consumer(group_id, &mut e, now);
                    }
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
            .filter_map(|e| e.lock().membership.next_deadline())
            .min()
    }

    /// Drops the offsets of empty groups not committed to within
    /// `offsets.retention.minutes` (Kafka's rule since KIP-211).
    fn expire_offsets(&self, entries: &[(String, Arc<Mutex<GroupEntry>>)], now: i64) {
        for (group_id, entry) in entries {
            let mut e = entry.lock();
            if !e.membership.is_empty() {
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

/// Keeps one replayed offset record of a still-open transaction pending.
fn pend(
    pending: &mut BTreeMap<String, BTreeMap<i64, PendingOffsets>>,
    producer_id: i64,
    r: &Record,
) -> Result<(), records::RecordError> {
    let (Some(key), Some(value)) = (&r.key, &r.value) else {
        return Ok(());
    };
    if let RecordKey::Offset {
        group,
        topic,
        partition,
    } = records::decode_key(key)?
    {
        pending
            .entry(group)
            .or_default()
            .entry(producer_id)
            .or_default()
            .insert((topic, partition), records::decode_offset(value)?);
    }
    Ok(())
}

/// Applies one replayed record to the maps being rebuilt.
fn apply(
    offsets: &mut BTreeMap<String, BTreeMap<(String, i32), OffsetValue>>,
    snapshots: &mut BTreeMap<String, Option<GroupSnapshot>>,
    consumers: &mut BTreeMap<String, ConsumerGroupImage>,
    r: &Record,
) -> Result<(), records::RecordError> {
    let Some(key) = &r.key else {
        return Ok(());
    };
    let key = records::decode_key(key)?;
    if consumer_records::apply(consumers, &key, r.value.as_deref())? {
        return Ok(());
    }
    match key {
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
        // Folded by consumer_records::apply above.
        _ => {}
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
