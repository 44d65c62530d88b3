//! Fetch: whole batches from each partition's log, as stored, up to the high
//! watermark (`read_committed`: the last stable offset, with the aborted
//! transactions of that range); long-polls on the partitions' high-watermark channels until
//! `min_bytes` are there or `max_wait_ms` has passed.
//!
//! KIP-392, from v11 (the request carries client metadata): a follower
//! serves consumers too, up to its own high watermark; and a leader whose
//! `replica.selector.class` is the rack-aware one answers a consumer in
//! another replica's rack with that `preferred_read_replica` and no records.
//!
//! Size limits follow KIP-74: `max_bytes` for the response and
//! `partition_max_bytes` for each partition, except that the first batch of
//! the first partition with data is returned whole even when larger. No fetch
//! sessions: every answer carries session id 0, so clients send full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, ResponseKind};
use tokio::time::Instant;

use super::errors::{log_error_code, unhosted_code};
use crate::broker::replica_selector::{preferred_read_replica, ReplicaView};
use crate::broker::{Broker, FetchedData, Partition, Topic};
use crate::config::ReplicaSelector;

/// The longest a client may ask us to hold a fetch.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// One requested partition, resolved.
struct Wanted {
    topic: usize,
    partition: Option<Arc<Partition>>,
    index: i32,
    offset: i64,
    max_bytes: usize,
    unknown_code: i16,
}

pub async fn handle(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> ResponseKind {
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    if replica_id >= 0 {
        return super::replica_fetch::handle(broker, req, version, replica_id).await;
    }
    let deadline = Instant::now()
        + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    // Kafka caps the client's limit with the broker's `fetch.max.bytes` (KIP-541).
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(broker.config.fetch_max_bytes());
    let read_committed = req.isolation_level == 1;
    // Kafka takes a v11+ fetch's client metadata as leave to read a follower.
    let any_replica = version >= 11;
    let choice = ReadReplicaChoice::new(broker, version, &req.rack_id);

    let mut shells = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = requested_topic(broker, &t, version);
        for p in &t.partitions {
            let (partition, unknown_code) =
                match readable_replica(&topic, p.partition, p.current_leader_epoch, any_replica) {
                    Ok(leader) => (Some(leader), 0),
                    Err(code) => (None, code),
                };
            wanted.push(Wanted {
                topic: ti,
                partition,
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                unknown_code,
            });
        }
        shells.push(response_shell(t, version));
    }

    // Subscribe before the first read, so no append between the read and the
    // wait can be missed.
    let mut watchers: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.partition.as_ref().map(|p| p.subscribe()))
        .collect();
    let read = |wanted: &[Wanted]| read_all(wanted, max_bytes, read_committed, version, &choice);
    let partitions = loop {
        let (partitions, bytes, answer_now) = read(&wanted);
        if bytes >= min_bytes || answer_now || watchers.is_empty() {
            break partitions;
        }
        let now = Instant::now();
        if now >= deadline {
            break partitions;
        }
        let changed = select_all(watchers.iter_mut().map(|rx| rx.changed().boxed()));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            // Timed out: answer with what there is (usually nothing).
            break read(&wanted).0;
        }
    };

    // Counted once, for what is actually sent.
    let metrics = crate::metrics::global();
    for (w, data) in wanted.iter().zip(partitions) {
        if data.error_code != 0 {
            metrics.fetch_error(data.error_code);
        }
        if let (Some(partition), Some(records)) = (&w.partition, &data.records) {
            partition.stats.record_out(records);
        }
        shells[w.topic].partitions.push(data);
    }
    let mut response = FetchResponse::default().with_responses(shells);
    if version >= 12 {
        name_leaders(broker, &mut response, version);
    }
    ResponseKind::Fetch(response)
}

/// A requested topic as this broker holds it (by topic id from v13, else by
/// name), or the code to answer its partitions when it holds none.
pub(super) fn requested_topic(
    broker: &Broker,
    t: &FetchTopic,
    version: i16,
) -> Result<Arc<Topic>, i16> {
    if version >= 13 {
        broker
            .topic_by_id(t.topic_id)
            .ok_or(ResponseError::UnknownTopicId.code())
    } else {
        broker
            .topic(&t.topic)
            .ok_or(ResponseError::UnknownTopicOrPartition.code())
    }
}

/// The leader replica of a requested partition, its leader epoch checked
/// against the one the fetcher knows, or the code to answer instead.
pub(super) fn leader_of(
    topic: &Result<Arc<Topic>, i16>,
    partition: i32,
    current_leader_epoch: i32,
) -> Result<Arc<Partition>, i16> {
    let topic = topic.as_ref().map_err(|code| *code)?;
    let leader = topic
        .leader(partition)
        .ok_or_else(|| unhosted_code(Some(topic), partition))?;
    check_epoch(leader.leader_epoch(), current_leader_epoch)?;
    Ok(leader)
}

/// The replica a consumer's fetch reads: the leader, or with `any_replica`
/// (v11+, KIP-392) this node's replica whatever its role; its leader epoch
/// checked first, as Kafka does, or the code to answer instead.
fn readable_replica(
    topic: &Result<Arc<Topic>, i16>,
    partition: i32,
    current_leader_epoch: i32,
    any_replica: bool,
) -> Result<Arc<Partition>, i16> {
    let topic = topic.as_ref().map_err(|code| *code)?;
    let unhosted = || unhosted_code(Some(topic), partition);
    let replica = topic.replica(partition).ok_or_else(unhosted)?;
    check_epoch(replica.leader_epoch(), current_leader_epoch)?;
    if !any_replica && !replica.is_leading() {
        return Err(unhosted());
    }
    Ok(replica)
}

/// What a leader needs to send a consumer to another replica (KIP-392):
/// present only for a v11+ fetch with a client rack under the rack-aware
/// `replica.selector.class`. The racks are the image's, taken once.
struct ReadReplicaChoice {
    selector: ReplicaSelector,
    client_rack: String,
    /// Each broker that could serve the client: registered, not fenced,
    /// with an endpoint (Kafka's `getPartitionReplicaEndpoints`).
    racks: std::collections::BTreeMap<i32, Option<String>>,
}

impl ReadReplicaChoice {
    fn new(broker: &Broker, version: i16, rack_id: &str) -> Option<ReadReplicaChoice> {
        let selector = broker.config.replica_selector();
        if version < 11 || rack_id.is_empty() || selector == ReplicaSelector::Leader {
            return None;
        }
        let image = broker.image();
        let racks = image
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| broker.endpoint_of(&image, b.id))
            .map(|e| (e.node_id, e.rack))
            .collect();
        Some(ReadReplicaChoice {
            selector,
            client_rack: rack_id.to_string(),
            racks,
        })
    }

    /// The replica other than this leader that should serve a fetch from
    /// `offset`, if any (Kafka's `findPreferredReadReplica`).
    fn pick(&self, leader: &Partition, offset: i64) -> Option<i32> {
        let now = crate::clock::now_ms();
        let ((leader_id, leader_end), followers) = leader.read_replicas(offset, now)?;
        let rack = |id: i32| self.racks.get(&id).cloned().flatten();
        let leader_view = ReplicaView {
            id: leader_id,
            rack: rack(leader_id),
            log_end_offset: leader_end,
            time_since_caught_up_ms: 0,
        };
        let followers: Vec<ReplicaView> = followers
            .into_iter()
            .map(|(id, log_end_offset, since)| ReplicaView {
                id,
                rack: rack(id),
                log_end_offset,
                time_since_caught_up_ms: since,
            })
            .collect();
        preferred_read_replica(self.selector, &self.client_rack, &leader_view, &followers)
    }
}

/// Kafka's leader epoch check of a fetch: an older epoch than the leader's
/// is fenced, a newer one is not known here yet (-1: not checked).
fn check_epoch(leader_epoch: i32, requested: i32) -> Result<(), i16> {
    if requested < 0 || requested == leader_epoch {
        Ok(())
    } else if requested < leader_epoch {
        Err(ResponseError::FencedLeaderEpoch.code())
    } else {
        Err(ResponseError::UnknownLeaderEpoch.code())
    }
}

/// A topic's response, its partitions still to fill, named as it was asked.
pub(super) fn response_shell(t: FetchTopic, version: i16) -> FetchableTopicResponse {
    let mut shell = FetchableTopicResponse::default();
    if version >= 13 {
        shell.topic_id = t.topic_id;
    } else {
        shell.topic = t.topic;
    }
    shell
}

/// KIP-951: each partition answered NOT_LEADER_OR_FOLLOWER carries its
/// current leader and epoch (v12+), and the response those leaders'
/// endpoints (v16+).
fn name_leaders(broker: &Broker, response: &mut FetchResponse, version: i16) {
    use kafka_protocol::messages::fetch_response::{LeaderIdAndEpoch, NodeEndpoint};
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::StrBytes;
    let image = broker.image();
    let mut leaders = std::collections::BTreeSet::new();
    for t in &mut response.responses {
        for p in &mut t.partitions {
            if p.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            let found = broker.partition_leader(&image, &t.topic, t.topic_id, p.partition_index);
            if let Some((leader, epoch)) = found {
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
                leaders.insert(leader);
            }
        }
    }
    if version >= 16 {
        response.node_endpoints = leaders
            .into_iter()
            .filter_map(|id| broker.endpoint_of(&image, id))
            .map(|e| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(e.node_id))
                    .with_host(StrBytes::from_string(e.host))
                    .with_port(e.port)
                    .with_rack(e.rack.map(StrBytes::from_string))
            })
            .collect();
    }
}

/// Reads every wanted partition once. Returns the partition answers, the
/// record bytes gathered, and whether the fetch must be answered now (a
/// partition answered with an error, or with another replica to read).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    version: i16,
    choice: &Option<ReadReplicaChoice>,
) -> (Vec<PartitionData>, usize, bool) {
    let mut total = 0usize;
    let mut answer_now = false;
    let answers = wanted
        .iter()
        .map(|w| {
            let mut data = PartitionData::default().with_partition_index(w.index);
            let Some(partition) = &w.partition else {
                answer_now = true;
                return data.with_error_code(w.unknown_code).with_high_watermark(-1);
            };
            let preferred = choice.as_ref().and_then(|c| c.pick(partition, w.offset));
            if let Some(replica) = preferred {
                // Kafka skips the read: the offsets, no records, and the
                // response goes out at once.
                answer_now = true;
                let offsets = partition.offsets();
                data.high_watermark = offsets.high_watermark;
                data.last_stable_offset = offsets.last_stable_offset;
                data.log_start_offset = offsets.log_start_offset;
                data.preferred_read_replica = kafka_protocol::messages::BrokerId(replica);
                data.records = Some(Bytes::new());
                // Nothing was read, so no aborted transactions: null, as Kafka sends.
                data.aborted_transactions = None;
                return data;
            }
            let remaining = max_bytes.saturating_sub(total);
            let limit = w.max_bytes.min(remaining);
            let min_one = total == 0;
            let result = if limit == 0 && !min_one {
                Ok(FetchedData {
                    records: Bytes::new(),
                    offsets: partition.offsets(),
                    aborted: Vec::new(),
                })
            } else {
                partition.fetch(w.offset, limit, min_one, read_committed)
            };
            let FetchedData {
                records,
                offsets,
                aborted,
            } = match result {
                Ok(r) => r,
                Err(e) => {
                    answer_now = true;
                    data.error_code = log_error_code(&e, &partition.topic, partition.index);
                    FetchedData {
                        records: Bytes::new(),
                        offsets: partition.offsets(),
                        aborted: Vec::new(),
                    }
                }
            };
            total += records.len();
            data.high_watermark = offsets.high_watermark;
            data.last_stable_offset = offsets.last_stable_offset;
            if version >= 5 {
                data.log_start_offset = offsets.log_start_offset;
            }
            if read_committed {
                data.aborted_transactions = Some(
                    aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect(),
                );
            }
            data.records = Some(records);
            data
        })
        .collect();
    (answers, total, answer_now)
}
