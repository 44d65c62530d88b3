//! ListOffsets: earliest, latest (the last stable offset for `read_committed`),
//! max timestamp, and offset by timestamp.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::errors::{log_error_code, unhosted_code};
use crate::broker::{Broker, Partition};

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(broker: &Arc<Broker>, req: ListOffsetsRequest, version: i16) -> ResponseKind {
    let read_committed = req.isolation_level == 1;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match topic.as_ref().and_then(|x| x.leader(p.partition_index)) {
                        Some(partition) => {
                            lookup(&partition, p.timestamp, read_committed, base, version)
                        }
                        None => base
                            .with_error_code(unhosted_code(topic.as_deref(), p.partition_index))
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
}

fn lookup(
    partition: &Partition,
    timestamp: i64,
    read_committed: bool,
    base: ListOffsetsPartitionResponse,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let offsets = partition.offsets();
    let found = match timestamp {
        LATEST if read_committed => Ok(Some((offsets.last_stable_offset, -1))),
        LATEST => Ok(Some((offsets.high_watermark, -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((offsets.log_start_offset, -1))),
        LATEST_TIERED => Ok(Some((-1, -1))),
        MAX_TIMESTAMP => partition.with_log(|log| log.max_timestamp_offset()),
        t if t >= 0 => partition.with_log(|log| log.offset_for_timestamp(t)),
        _ => {
            return base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_offset(-1)
                .with_timestamp(-1)
        }
    };
    let mut r = match found {
        Ok(Some((offset, ts))) => base.with_offset(offset).with_timestamp(ts),
        Ok(None) => base.with_offset(-1).with_timestamp(-1),
        Err(e) => {
            return base
                .with_error_code(log_error_code(&e, &partition.topic, partition.index))
                .with_offset(-1)
                .with_timestamp(-1)
        }
    };
    if version >= 4 {
        r.leader_epoch = 0;
    }
    r
}
