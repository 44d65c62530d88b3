//! ElectLeaders (KIP-460): a preferred leader election (leadership back to
//! each partition's first replica) or an unclean one (a leader for a
//! partition without one, outside the ISR if need be), as
//! `kafka-leader-election.sh` and the AdminClient ask for it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::{partition_admin_error_code, partition_admin_error_message};
use crate::broker::leadership::{ElectionType, PartitionAdminError};
use crate::broker::Broker;
use crate::metadata::election::NotElected;

pub async fn handle(broker: &Arc<Broker>, req: ElectLeadersRequest, version: i16) -> ResponseKind {
    // v0 has no election type: preferred.
    let election = match (version, req.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        _ => {
            return ResponseKind::ElectLeaders(
                ElectLeadersResponse::default()
                    .with_error_code(ResponseError::InvalidRequest.code()),
            )
        }
    };
    // Null: every partition of every topic, leaving out those that have
    // the leader asked for already (as Kafka does).
    let all = req.topic_partitions.is_none();
    let wanted: Vec<(TopicName, Vec<i32>)> = match req.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect(),
        None => broker
            .image()
            .topics()
            .map(|t| {
                (
                    StrBytes::from_string(t.name.clone()).into(),
                    t.partitions.keys().copied().collect(),
                )
            })
            .collect(),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut partition_result = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let outcome = broker.elect_leader(&topic, partition, election).await;
            let mut r = PartitionResult::default().with_partition_id(partition);
            match outcome {
                Ok(()) => {}
                Err(PartitionAdminError::NotElected(NotElected::NotNeeded)) if all => continue,
                Err(e) => {
                    r.error_code = partition_admin_error_code(&e);
                    r.error_message =
                        Some(StrBytes::from_string(partition_admin_error_message(&e)));
                }
            }
            partition_result.push(r);
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(topic)
                .with_partition_result(partition_result),
        );
    }
    ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_replica_election_results(results),
    )
}
