//! NOT_COORDINATOR for a request that reached a broker which does not
//! coordinate its group or transactional id (the leader of the key's
//! `__consumer_offsets` / `__transaction_state` partition coordinates it):
//! the client asks FindCoordinator again and goes there, as with Kafka.
//! COORDINATOR_LOAD_IN_PROGRESS while this broker, just made leader of the
//! key's partition, is still loading it.
//!
//! Checked before the handlers, for the requests a client sends to one
//! coordinator with one key. The multi-key admin requests (DescribeGroups,
//! DeleteGroups, OffsetFetch v8+, ConsumerGroupDescribe,
//! DescribeTransactions) are answered from what this broker holds.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use crate::broker::{Broker, Coordination};
use crate::group::OFFSETS_TOPIC;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// The NOT_COORDINATOR answer to `request`, if this broker does not
/// coordinate its key.
pub fn not_coordinator(
    broker: &Broker,
    request: &RequestKind,
    version: i16,
) -> Option<ResponseKind> {
    // The first key found not coordinated here sets the code.
    let code = std::cell::Cell::new(ResponseError::NotCoordinator.code());
    let elsewhere = |topic: &str, key: &str| {
        if key.is_empty() {
            return false;
        }
        match broker.coordination(topic, key) {
            Coordination::Here => false,
            Coordination::Loading => {
                code.set(ResponseError::CoordinatorLoadInProgress.code());
                true
            }
            Coordination::Elsewhere => true,
        }
    };
    let group = |key: &str| elsewhere(OFFSETS_TOPIC, key);
    let txn = |key: &str| elsewhere(TRANSACTION_STATE_TOPIC, key);
    let answer = match request {
        RequestKind::JoinGroup(r) if group(&r.group_id) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code.get())
                .with_generation_id(-1),
        ),
        RequestKind::SyncGroup(r) if group(&r.group_id) => {
            ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code.get()))
        }
        RequestKind::Heartbeat(r) if group(&r.group_id) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code.get()))
        }
        RequestKind::LeaveGroup(r) if group(&r.group_id) => {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code.get()))
        }
        RequestKind::ConsumerGroupHeartbeat(r) if group(&r.group_id) => {
            ResponseKind::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(code.get())
                    .with_heartbeat_interval_ms(0),
            )
        }
        RequestKind::OffsetDelete(r) if group(&r.group_id) => {
            ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code.get()))
        }
        RequestKind::OffsetFetch(r) if (2..8).contains(&version) && group(&r.group_id) => {
            ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_error_code(code.get()))
        }
        RequestKind::OffsetCommit(r) if group(&r.group_id) => {
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code.get())
                                })
                                .collect(),
                        )
                })
                .collect();
            ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
        }
        RequestKind::TxnOffsetCommit(r) if group(&r.group_id) => {
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code.get())
                                })
                                .collect(),
                        )
                })
                .collect();
            ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
        }
        RequestKind::InitProducerId(r) if r.transactional_id.as_ref().is_some_and(|id| txn(id)) => {
            ResponseKind::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(code.get())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
        }
        RequestKind::AddOffsetsToTxn(r) if txn(&r.transactional_id) => {
            ResponseKind::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(code.get()),
            )
        }
        RequestKind::EndTxn(r) if txn(&r.transactional_id) => {
            ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code.get()))
        }
        _ => return None,
    };
    Some(answer)
}
