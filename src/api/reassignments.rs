//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455):
//! what `kafka-reassign-partitions.sh`, the AdminClient and `vltava topic
//! reassign` use to move replicas between brokers.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::{partition_admin_error_code, partition_admin_error_message};
use crate::broker::Broker;
use crate::metadata::records::PartitionRecord;

/// AlterPartitionReassignments: each partition is moved to its target
/// replicas (or its reassignment cancelled, for null replicas) on its own;
/// the answer comes once the change is in this node's image, not once the
/// data has moved (ListPartitionReassignments shows that).
pub async fn alter(
    broker: &Arc<Broker>,
    req: AlterPartitionReassignmentsRequest,
    version: i16,
) -> ResponseKind {
    let keep_replication_factor = version >= 1 && !req.allow_replication_factor_change;
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let target: Option<Vec<i32>> = p
                .replicas
                .map(|replicas| replicas.into_iter().map(|b| b.0).collect());
            let done = broker
                .reassign_partition(
                    &t.name,
                    p.partition_index,
                    target.as_deref(),
                    keep_replication_factor,
                )
                .await;
            let mut r =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            if let Err(e) = done {
                r.error_code = partition_admin_error_code(&e);
                r.error_message = Some(StrBytes::from_string(partition_admin_error_message(&e)));
            }
            partitions.push(r);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    let mut response = AlterPartitionReassignmentsResponse::default().with_responses(responses);
    if version >= 1 {
        response.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    ResponseKind::AlterPartitionReassignments(response)
}

/// ListPartitionReassignments: the partitions (all, or those asked for)
/// with a reassignment in progress: every replica, and which are being
/// added and removed. Partitions not being moved, and topics not known, are
/// left out, as Kafka does.
pub fn list(broker: &Arc<Broker>, req: ListPartitionReassignmentsRequest) -> ResponseKind {
    let image = broker.image();
    let ongoing = |p: &PartitionRecord| {
        OngoingPartitionReassignment::default()
            .with_partition_index(p.partition)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding_replicas))
            .with_removing_replicas(ids(&p.removing_replicas))
    };
    let mut topics = Vec::new();
    let mut add = |name: &kafka_protocol::messages::TopicName,
                   parts: Vec<OngoingPartitionReassignment>| {
        if !parts.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(name.clone())
                    .with_partitions(parts),
            );
        }
    };
    match req.topics {
        None => {
            for t in image.topics() {
                let parts = t
                    .partitions
                    .values()
                    .filter(|p| p.is_reassigning())
                    .map(ongoing)
                    .collect();
                add(&StrBytes::from_string(t.name.clone()).into(), parts);
            }
        }
        Some(wanted) => {
            for w in wanted {
                let Some(t) = image.topic(&w.name) else {
                    continue;
                };
                let parts = w
                    .partition_indexes
                    .iter()
                    .filter_map(|i| t.partitions.get(i))
                    .filter(|p| p.is_reassigning())
                    .map(ongoing)
                    .collect();
                add(&w.name, parts);
            }
        }
    }
    ResponseKind::ListPartitionReassignments(
        ListPartitionReassignmentsResponse::default().with_topics(topics),
    )
}

fn ids(replicas: &[i32]) -> Vec<BrokerId> {
    replicas.iter().copied().map(BrokerId).collect()
}
