//! InitProducerId: a producer id and epoch for an idempotent producer (no
//! transactional id) or, through the transaction coordinator (`txn/`), for a
//! transactional id; and DescribeProducers: each partition's active producers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, ResponseKind,
};

use super::errors::unhosted_code;
use crate::broker::Broker;
use crate::txn::metadata::fenced_for_version;

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    req: InitProducerIdRequest,
    version: i16,
) -> ResponseKind {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(id) = &req.transactional_id {
        if id.is_empty() {
            return ResponseKind::InitProducerId(
                response.with_error_code(ResponseError::InvalidRequest.code()),
            );
        }
        // KIP-360: both the producer id and epoch, or neither.
        let expected = match (req.producer_id.0, req.producer_epoch) {
            (-1, -1) => None,
            (id, epoch) if id >= 0 && epoch >= 0 => Some((id, epoch)),
            _ => {
                return ResponseKind::InitProducerId(
                    response.with_error_code(ResponseError::InvalidRequest.code()),
                )
            }
        };
        let answer = broker
            .txns
            .init_producer_id(broker, id, req.transaction_timeout_ms, expected)
            .await;
        let response = match answer {
            Ok((id, epoch)) => response
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(code) => response.with_error_code(fenced_for_version(code, version, 4)),
        };
        return ResponseKind::InitProducerId(response);
    }
    // Kafka gives an idempotent producer a fresh id (epoch 0) on every call,
    // also when it names its previous id and epoch (KIP-360).
    let response = match broker.allocate_producer_id() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        // While a block of ids is being granted: retriable, as in Kafka.
        Err(_) => response.with_error_code(ResponseError::CoordinatorLoadInProgress.code()),
    };
    ResponseKind::InitProducerId(response)
}

/// DescribeProducers (what `kafka-transactions.sh describe-producers` shows).
pub fn describe_producers(broker: &Arc<Broker>, req: DescribeProducersRequest) -> ResponseKind {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    let Some(partition) = topic.as_ref().and_then(|x| x.leader(index)) else {
                        return response.with_error_code(unhosted_code(topic.as_deref(), index));
                    };
                    let mut active: Vec<ProducerState> = partition.with_log(|log| {
                        log.producer_state()
                            .producers()
                            .map(|(id, e)| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(id))
                                    .with_producer_epoch(i32::from(e.epoch))
                                    .with_last_sequence(e.last_seq().unwrap_or(-1))
                                    .with_last_timestamp(e.last_timestamp)
                                    .with_coordinator_epoch(e.coordinator_epoch)
                                    .with_current_txn_start_offset(
                                        e.current_txn_first_offset.unwrap_or(-1),
                                    )
                            })
                            .collect()
                    });
                    active.sort_by_key(|p| p.producer_id.0);
                    response.with_active_producers(active)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ResponseKind::DescribeProducers(DescribeProducersResponse::default().with_topics(topics))
}
