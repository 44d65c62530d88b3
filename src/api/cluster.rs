//! DescribeCluster and DescribeTopicPartitions (KIP-966's paged topic
//! description used by newer admin clients).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::authorized_operations::{self, when_requested};
use crate::broker::{Broker, Topic};
use crate::metadata::MetadataImage;

pub fn describe_cluster(broker: &Arc<Broker>, req: DescribeClusterRequest) -> ResponseKind {
    let image = broker.image();
    let brokers = broker
        .live_brokers(&image)
        .into_iter()
        .map(|e| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(e.node_id))
                .with_host(StrBytes::from_string(e.host))
                .with_port(e.port)
                .with_rack(e.rack.map(StrBytes::from_string))
        })
        .collect();
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(when_requested(
            req.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    ResponseKind::DescribeCluster(response)
}

pub fn describe_topic_partitions(
    broker: &Arc<Broker>,
    req: DescribeTopicPartitionsRequest,
) -> ResponseKind {
    let mut budget = usize::try_from(req.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, 2000);
    let requested: Vec<TopicName> = req.topics.iter().map(|t| t.name.clone()).collect();
    let mut names: Vec<TopicName> = if requested.is_empty() {
        broker
            .topics()
            .iter()
            .map(|t| TopicName(StrBytes::from_string(t.name.clone())))
            .collect()
    } else {
        requested
    };
    names.sort();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.clone()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let image = broker.image();
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if start_topic.as_ref().is_some_and(|s| &name < s) {
            continue;
        }
        let first = if start_topic.as_ref() == Some(&name) {
            start_partition
        } else {
            0
        };
        let Some(topic) = broker.topic(&name) else {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(name))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_topic_authorized_operations(authorized_operations::TOPIC),
            );
            continue;
        };
        if budget == 0 {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(first),
            );
            break;
        }
        let (entry, next) = describe_topic(&image, &topic, first, &mut budget);
        response.topics.push(entry);
        if let Some(partition) = next {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(name)
                    .with_partition_index(partition),
            );
            break;
        }
    }
    ResponseKind::DescribeTopicPartitions(response)
}

/// One topic's partitions from `first`, spending `budget`; returns the
/// partition to resume from if the budget ran out.
fn describe_topic(
    image: &MetadataImage,
    topic: &Topic,
    first: i32,
    budget: &mut usize,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let mut partitions = Vec::new();
    let mut next = None;
    let listed = image
        .topic_by_id(&topic.id)
        .into_iter()
        .flat_map(|t| t.partitions.values());
    for p in listed.filter(|p| p.partition >= first) {
        if *budget == 0 {
            next = Some(p.partition);
            break;
        }
        *budget -= 1;
        let mut entry = DescribeTopicPartitionsResponsePartition::default()
            .with_partition_index(p.partition)
            .with_leader_id(BrokerId(p.leader))
            .with_leader_epoch(p.leader_epoch)
            .with_replica_nodes(ids(&p.replicas))
            .with_isr_nodes(ids(&p.isr))
            .with_offline_replicas(ids(&image.offline_replicas(p)))
            .with_eligible_leader_replicas(Some(Vec::new()))
            .with_last_known_elr(Some(Vec::new()));
        if p.leader < 0 {
            entry.error_code = ResponseError::LeaderNotAvailable.code();
        }
        partitions.push(entry);
    }
    let entry = DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.is_internal())
        .with_topic_authorized_operations(authorized_operations::TOPIC)
        .with_partitions(partitions);
    (entry, next)
}
