//! OffsetForLeaderEpoch (KIP-101, KIP-320): the end offset of a leader epoch
//! in the leader's log, from its leader-epoch cache. Consumers ask it after a
//! leader change to check their position is still in the log's history; a
//! position past the returned end offset was truncated away.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind,
};

use super::fetch::leader_of;
use crate::broker::Broker;

pub fn handle(broker: &Arc<Broker>, req: OffsetForLeaderEpochRequest) -> ResponseKind {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker
                .topic(&t.topic)
                .ok_or(ResponseError::UnknownTopicOrPartition.code());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    match leader_of(&topic, p.partition, p.current_leader_epoch) {
                        Ok(leader) => {
                            let (epoch, end) = leader.end_offset_for_epoch(p.leader_epoch);
                            answer.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        Err(code) => answer
                            .with_error_code(code)
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
