//! DescribeCluster, DescribeTopicPartitions (KIP-966's paged topic
//! description used by newer admin clients) and DescribeQuorum (the
//! controller quorum, as `kafka-metadata-quorum.sh` shows it).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    ResponseKind, TopicName,
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
        // A live broker, as Kafka's KRaft brokers answer (see Metadata).
        .with_controller_id(BrokerId(broker.node_id))
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

/// DescribeQuorum for `__cluster_metadata`-0, the metadata log: the active
/// controller, its term (Kafka's leader epoch), the high watermark, and the
/// voters with their log end offsets where known (-1 otherwise); v2 adds the
/// voters' controller endpoints. Any other partition is unknown.
pub fn describe_quorum(
    broker: &Arc<Broker>,
    req: DescribeQuorumRequest,
    version: i16,
) -> ResponseKind {
    use kafka_protocol::messages::describe_quorum_response::{
        Listener, Node, PartitionData, ReplicaState, TopicData,
    };
    let state = broker.quorum_state();
    let id = |n: u64| BrokerId(i32::try_from(n).unwrap_or(-1));
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let is_metadata = t.topic_name.as_str() == "__cluster_metadata";
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = PartitionData::default().with_partition_index(p.partition_index);
                    if !is_metadata || p.partition_index != 0 {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let voters = state
                        .voters
                        .iter()
                        .map(|(v, _, end)| {
                            ReplicaState::default()
                                .with_replica_id(id(*v))
                                .with_log_end_offset(end.map_or(-1, |e| e as i64))
                                .with_last_fetch_timestamp(-1)
                                .with_last_caught_up_timestamp(-1)
                        })
                        .collect();
                    answer
                        .with_leader_id(state.leader.map_or(BrokerId(-1), id))
                        .with_leader_epoch(i32::try_from(state.term).unwrap_or(i32::MAX))
                        .with_high_watermark(state.high_watermark as i64)
                        .with_current_voters(voters)
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    let nodes = state
        .voters
        .iter()
        .filter(|_| version >= 2)
        .filter_map(|(v, addr, _)| {
            let (host, port) = addr.rsplit_once(':')?;
            let listener = Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port.parse().ok()?);
            Some(
                Node::default()
                    .with_node_id(id(*v))
                    .with_listeners(vec![listener]),
            )
        })
        .collect();
    ResponseKind::DescribeQuorum(
        DescribeQuorumResponse::default()
            .with_topics(topics)
            .with_nodes(nodes),
    )
}
