//! Produce: append each partition's batches, then answer per `acks`.
//!
//! `acks=0` gets no response, `acks=1` is answered once appended, `acks=all`
//! once appended and — under the default durability policy — fsynced by the
//! group-commit flusher. Appends happen in request order; only the wait for
//! fsync is deferred. A batch with refused records is answered with each
//! one's index and reason (KIP-467, v8+), so clients fail only those.

use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::errors::{ack_error_code, log_error_code, unhosted_code};
use super::{Reply, Response};
use crate::broker::{Broker, Partition, Topic};
use crate::clock::now_ms;
use crate::log::{AppendOrigin, BatchError, LogError};

/// Where an appended partition's answer is in the response.
struct Appended {
    topic: usize,
    partition: usize,
}

pub fn handle(broker: &Arc<Broker>, req: ProduceRequest, version: i16) -> Reply {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    let valid_acks = matches!(acks, -1..=1);
    let now = now_ms();
    let mut appended_at = Vec::new();
    let mut writes = Vec::new();
    let responses: Vec<TopicProduceResponse> = req
        .topic_data
        .into_iter()
        .enumerate()
        .map(|(ti, topic_data)| {
            let TopicProduceData {
                name,
                topic_id,
                partition_data,
                ..
            } = topic_data;
            let topic = if version >= 13 {
                broker.topic_by_id(topic_id)
            } else {
                broker.topic(&name)
            };
            let partitions = partition_data
                .into_iter()
                .enumerate()
                .map(|(pi, data)| {
                    let index = data.index;
                    let (mut response, appended) = if !valid_acks {
                        (
                            error(index, ResponseError::InvalidRequiredAcks.code()),
                            None,
                        )
                    } else {
                        append(topic.as_deref(), data, acks, now, version)
                    };
                    response.index = index;
                    if let Some((log, offset)) = &appended {
                        if log.take_roll() {
                            broker.request_durable([(log, *offset)]);
                        }
                    }
                    if let Some(write) = appended {
                        appended_at.push(Appended {
                            topic: ti,
                            partition: pi,
                        });
                        writes.push(write);
                    }
                    response
                })
                .collect();
            let mut r = TopicProduceResponse::default().with_partition_responses(partitions);
            if version >= 13 {
                r.topic_id = topic_id;
            } else {
                r.name = name;
            }
            r
        })
        .collect();
    let mut response = ProduceResponse::default().with_responses(responses);
    if version >= 10 {
        name_leaders(broker, &mut response);
    }
    count_errors(&response);
    if acks == 0 && valid_acks {
        return Reply::None;
    }
    let timeout = std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    let ack = broker.acknowledgement(acks, writes, timeout);
    if ack.is_immediate() {
        return Reply::Ready(Response {
            kind: ResponseKind::Produce(response),
            version,
        });
    }
    Reply::Deferred(
        async move {
            let mut response = response;
            for (at, result) in appended_at.iter().zip(ack.wait().await) {
                if let Err(e) = result {
                    let r = &mut response.responses[at.topic].partition_responses[at.partition];
                    r.error_code = ack_error_code(&e);
                    crate::metrics::global().produce_error(r.error_code);
                    r.base_offset = -1;
                }
            }
            Response {
                kind: ResponseKind::Produce(response),
                version,
            }
        }
        .boxed(),
    )
}

/// KIP-951: each partition answered NOT_LEADER_OR_FOLLOWER carries its
/// current leader and epoch, and the response those leaders' endpoints, so
/// the client goes there without a Metadata round trip.
fn name_leaders(broker: &Broker, response: &mut ProduceResponse) {
    use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint};
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::StrBytes;
    let image = broker.image();
    let mut leaders = std::collections::BTreeSet::new();
    for t in &mut response.responses {
        for p in &mut t.partition_responses {
            if p.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            if let Some((leader, epoch)) =
                broker.partition_leader(&image, &t.name, t.topic_id, p.index)
            {
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
                leaders.insert(leader);
            }
        }
    }
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

/// Counts each partition answered with an error, by code.
fn count_errors(response: &ProduceResponse) {
    let metrics = crate::metrics::global();
    response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .filter(|p| p.error_code != 0)
        .for_each(|p| metrics.produce_error(p.error_code));
}

fn error(index: i32, code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
}

/// Appends one partition's batches; on success also returns the partition
/// and the offset it must be durable up to for `acks=all`.
fn append(
    topic: Option<&Topic>,
    data: PartitionProduceData,
    acks: i16,
    now: i64,
    version: i16,
) -> (PartitionProduceResponse, Option<(Arc<Partition>, i64)>) {
    let Some(partition) = topic.and_then(|t| t.leader(data.index)) else {
        return (error(data.index, unhosted_code(topic, data.index)), None);
    };
    if topic.is_some_and(|t| t.is_internal()) {
        // Only the coordinators write to internal topics.
        return (
            error(data.index, ResponseError::InvalidTopicException.code()),
            None,
        );
    }
    let Some(records) = data.records.filter(|r| !r.is_empty()) else {
        return (error(data.index, ResponseError::InvalidRecord.code()), None);
    };
    // Kafka refuses an acks=all write before appending it when the ISR is
    // already too small to ever acknowledge it.
    if acks == -1 {
        let min_insync = topic.map_or(1, |t| t.min_insync_replicas());
        if partition.isr().len() < min_insync {
            return (
                error(data.index, ResponseError::NotEnoughReplicas.code()),
                None,
            );
        }
    }
    // The request buffer is shared; offsets are patched in a private copy,
    // which is then written as is.
    let mut records = records.to_vec();
    match partition.append(&mut records, AppendOrigin::Client, now) {
        Ok(info) => {
            if !info.duplicate {
                let messages = u64::try_from(info.last_offset - info.base_offset + 1).unwrap_or(0);
                partition.stats.record_in(records.len(), messages);
            }
            let mut r = PartitionProduceResponse::default()
                .with_base_offset(info.base_offset)
                .with_log_append_time_ms(info.log_append_time);
            if version >= 5 {
                r.log_start_offset = partition.offsets().log_start_offset;
            }
            (r, Some((partition, info.last_offset + 1)))
        }
        Err(e) => {
            let code = log_error_code(&e, &partition.topic, partition.index);
            let mut r = error(data.index, code);
            if version >= 8 {
                r.error_message = Some(StrBytes::from_string(e.to_string()));
                if let LogError::Batch(BatchError::Records(refused)) = &e {
                    r.record_errors = refused
                        .errors
                        .iter()
                        .map(|e| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(e.batch_index)
                                .with_batch_index_error_message(Some(StrBytes::from_string(
                                    e.message.clone(),
                                )))
                        })
                        .collect();
                }
            }
            (r, None)
        }
    }
}
