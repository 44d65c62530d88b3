//! Transactions: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
//! EndTxn, DescribeTransactions, ListTransactions, and WriteTxnMarkers
//! between brokers (InitProducerId is in
//! `producer.rs`, FindCoordinator in `groups.rs`).
//!
//! Translates protocol structs to and from the transaction coordinator's
//! (`txn/`) and group coordinator's (`group/`) types; the semantics live there.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::errors::{ack_error_code, log_error_code, unhosted_code};
use super::groups::{partition_exists, with_unknown_partitions};
use crate::broker::Broker;
use crate::group::coordinator::{partition_for, CommitOffset};
use crate::group::OFFSETS_TOPIC;
use crate::log::ControlMarker;
use crate::txn::coordinator::{write_local_markers, MarkerError};
use crate::txn::metadata::{fenced_for_version, TxnMetadata, TxnState};

/// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn know PRODUCER_FENCED from v2.
const FENCED_SINCE: i16 = 2;

/// The partitions of one AddPartitionsToTxn transaction, and the code of
/// each: UNKNOWN_TOPIC_OR_PARTITION for those that do not exist and then
/// OPERATION_NOT_ATTEMPTED for the rest, as Kafka answers.
fn resolve(
    broker: &Broker,
    topics: &[AddPartitionsToTxnTopic],
) -> (Vec<(String, i32)>, Option<Vec<i16>>) {
    let mut partitions = Vec::new();
    let mut known = Vec::new();
    for t in topics {
        let topic = broker.topic(&t.name);
        for &p in &t.partitions {
            partitions.push((t.name.to_string(), p));
            known.push(
                topic
                    .as_ref()
                    .is_some_and(|topic| p >= 0 && p < topic.partition_count()),
            );
        }
    }
    if known.iter().all(|k| *k) {
        return (partitions, None);
    }
    let codes = known
        .iter()
        .map(|&k| {
            if k {
                ResponseError::OperationNotAttempted.code()
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            }
        })
        .collect();
    (partitions, Some(codes))
}

/// Per-topic results in request order, one code per partition.
fn topic_results(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut codes = codes.iter().copied();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// One transaction of an AddPartitionsToTxn: a code per partition.
async fn add_partitions_one(
    broker: &Arc<Broker>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> Vec<i16> {
    let (partitions, refused) = resolve(broker, topics);
    if let Some(codes) = refused {
        return codes;
    }
    if transactional_id.is_empty() {
        return vec![ResponseError::InvalidRequest.code(); partitions.len()];
    }
    let txns = &broker.txns;
    let answer = if verify_only {
        txns.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions)
            .await
    } else {
        txns.add_partitions(
            broker,
            transactional_id,
            producer_id,
            producer_epoch,
            &partitions,
        )
        .await
        .map(|()| vec![0; partitions.len()])
    };
    answer.unwrap_or_else(|code| {
        vec![fenced_for_version(code, version, FENCED_SINCE); partitions.len()]
    })
}

pub async fn add_partitions_to_txn(
    broker: &Arc<Broker>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> ResponseKind {
    let mut response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let codes = add_partitions_one(
            broker,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
            version,
        )
        .await;
        response.results_by_topic_v3_and_below = topic_results(&req.v3_and_below_topics, &codes);
    } else {
        // v4+ batches transactions (Kafka's broker-to-broker form); each is
        // handled as a client's would be, verify-only ones just checked.
        for t in &req.transactions {
            let codes = add_partitions_one(
                broker,
                &t.transactional_id,
                t.producer_id.0,
                t.producer_epoch,
                t.verify_only,
                &t.topics,
                version,
            )
            .await;
            response.results_by_transaction.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(topic_results(&t.topics, &codes)),
            );
        }
    }
    ResponseKind::AddPartitionsToTxn(response)
}

pub async fn add_offsets_to_txn(
    broker: &Arc<Broker>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> ResponseKind {
    let code = if req.transactional_id.is_empty() {
        ResponseError::InvalidRequest.code()
    } else if req.group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        let partition = offsets_partition(broker, &req.group_id);
        broker
            .txns
            .add_partitions(
                broker,
                &req.transactional_id,
                req.producer_id.0,
                req.producer_epoch,
                &[partition],
            )
            .await
            .err()
            .map_or(0, |c| fenced_for_version(c, version, FENCED_SINCE))
    };
    ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
}

/// The group's `__consumer_offsets` partition, as the transaction records it.
fn offsets_partition(broker: &Broker, group_id: &str) -> (String, i32) {
    let count = broker
        .topic(OFFSETS_TOPIC)
        .map_or(1, |t| t.partition_count());
    (OFFSETS_TOPIC.to_string(), partition_for(group_id, count))
}

pub async fn txn_offset_commit(
    broker: &Arc<Broker>,
    req: TxnOffsetCommitRequest,
    _version: i16,
) -> ResponseKind {
    let mut shape = Vec::new();
    let mut offsets = Vec::new();
    let mut exists = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for p in &t.partitions {
            parts.push(p.partition_index);
            let known = partition_exists(broker, &t.name, p.partition_index);
            exists.push(known);
            if !known {
                continue;
            }
            offsets.push(CommitOffset {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
        shape.push((t.name.clone(), parts));
    }
    let count = offsets.len();
    let (mut codes, durable) = if offsets.is_empty() {
        (Vec::new(), None)
    } else if req.group_id.is_empty() {
        (vec![ResponseError::InvalidGroupId.code(); count], None)
    } else {
        let partition = offsets_partition(broker, &req.group_id);
        let written = broker
            .txns
            .with_ongoing(
                broker,
                &req.transactional_id,
                req.producer_id.0,
                req.producer_epoch,
                &partition,
                || {
                    broker.groups.txn_commit(
                        &req.group_id,
                        req.producer_id.0,
                        req.producer_epoch,
                        &req.member_id,
                        req.group_instance_id.as_deref(),
                        req.generation_id,
                        offsets,
                    )
                },
            )
            .await;
        match written {
            Ok(w) => w,
            // A stale epoch is what the partition's producer check reports
            // in Kafka: INVALID_PRODUCER_EPOCH.
            Err(c) if c == ResponseError::ProducerFenced.code() => (
                vec![ResponseError::InvalidProducerEpoch.code(); count],
                None,
            ),
            Err(c) => (vec![c; count], None),
        }
    };
    super::groups::wait_commit_durable(broker, durable, &mut codes).await;
    let mut codes = with_unknown_partitions(&exists, codes).into_iter();
    let topics = shape
        .into_iter()
        .map(|(name, parts)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect();
    ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
}

/// EndTxn; answered once the markers are durable and the transaction is
/// complete (Kafka answers after PrepareCommit/PrepareAbort).
pub async fn end_txn(broker: &Arc<Broker>, req: EndTxnRequest, version: i16) -> ResponseKind {
    let result = if req.transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest.code())
    } else {
        broker
            .txns
            .end_txn(
                broker,
                &req.transactional_id,
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
            )
            .await
    };
    let mut response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match result {
        Ok(()) => {
            if version >= 5 {
                response.producer_id = req.producer_id;
                response.producer_epoch = req.producer_epoch;
            }
        }
        Err(code) => response.error_code = fenced_for_version(code, version, FENCED_SINCE),
    }
    ResponseKind::EndTxn(response)
}

fn topics_of(m: &TxnMetadata) -> Vec<describe_transactions_response::TopicData> {
    let mut out: Vec<describe_transactions_response::TopicData> = Vec::new();
    for (topic, p) in &m.partitions {
        match out.last_mut() {
            Some(t) if t.topic.as_str() == topic => t.partitions.push(*p),
            _ => out.push(
                describe_transactions_response::TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    out
}

pub async fn describe_transactions(
    broker: &Arc<Broker>,
    req: DescribeTransactionsRequest,
) -> ResponseKind {
    let mut states = Vec::new();
    for id in req.transactional_ids {
        let state = describe_transactions_response::TransactionState::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        let state = match broker.txns.describe(&id).await {
            None => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Some(m) => state
                .with_transaction_state(StrBytes::from_static_str(m.state.as_str()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics_of(&m)),
        };
        states.push(state);
    }
    ResponseKind::DescribeTransactions(
        DescribeTransactionsResponse::default().with_transaction_states(states),
    )
}

pub async fn list_transactions(
    broker: &Arc<Broker>,
    req: ListTransactionsRequest,
    version: i16,
) -> ResponseKind {
    let known: Vec<&str> = TxnState::ALL.iter().map(|s| s.as_str()).collect();
    let unknown_state_filters: Vec<StrBytes> = req
        .state_filters
        .iter()
        .filter(|f| !known.contains(&f.as_str()))
        .cloned()
        .collect();
    let states: BTreeSet<&str> = req.state_filters.iter().map(|f| f.as_str()).collect();
    let producers: BTreeSet<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let now = crate::clock::now_ms();
    let listed = broker
        .txns
        .list()
        .await
        .into_iter()
        .filter(|m| states.is_empty() || states.contains(m.state.as_str()))
        .filter(|m| producers.is_empty() || producers.contains(&m.producer_id))
        // KIP-994: only transactions running for longer than the duration.
        .filter(|m| duration < 0 || (m.start_ms >= 0 && now - m.start_ms >= duration))
        .map(|m| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    m.transactional_id.clone(),
                )))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.state.as_str()))
        })
        .collect();
    ResponseKind::ListTransactions(
        ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown_state_filters)
            .with_transaction_states(listed),
    )
}

/// WriteTxnMarkers, from the transaction coordinator on another broker:
/// writes each marker to this broker's replicas of its partitions and
/// answers once they are durable (a partition held elsewhere:
/// NOT_LEADER_OR_FOLLOWER).
pub async fn write_txn_markers(broker: &Arc<Broker>, req: WriteTxnMarkersRequest) -> ResponseKind {
    use kafka_protocol::messages::write_txn_markers_response::{
        WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    };
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let marker = ControlMarker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit: m.transaction_result,
        };
        let partitions: Vec<(String, i32)> = m
            .topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect();
        let mut results = write_local_markers(broker, &marker, &partitions)
            .await
            .into_iter();
        let topics = m
            .topics
            .into_iter()
            .map(|t| {
                let hosted = broker.topic(&t.name);
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|&p| {
                        let code = match results.next() {
                            Some(Ok(())) => 0,
                            Some(Err(MarkerError::NotHosted)) | None => {
                                unhosted_code(hosted.as_deref(), p)
                            }
                            Some(Err(MarkerError::Log(e))) => log_error_code(&e, &t.name, p),
                            Some(Err(MarkerError::Ack(e))) => ack_error_code(&e),
                        };
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(code)
                    })
                    .collect();
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default().with_markers(markers))
}
