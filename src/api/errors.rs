//! The one place where lower layers' errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::broker::leadership::PartitionAdminError;
use crate::broker::{AckError, AdminError};
use crate::config::ConfigError;
use crate::log::{BatchError, LogError, ProducerError};
use crate::metadata::election::NotElected;
use crate::metadata::reassignment::ReassignmentError;

/// The Kafka error code for a log error, logged here once when it is not the
/// client's fault.
pub fn log_error_code(err: &LogError, topic: &str, partition: i32) -> i16 {
    match err {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Batch(b) => batch_error_code(b),
        LogError::Producer(p) => producer_error_code(p),
        // Logged once per batch by the partition that found it.
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage.code(),
        other => {
            tracing::error!(topic, partition, error = %other, "storage error");
            ResponseError::KafkaStorageError.code()
        }
    }
}

pub fn batch_error_code(err: &BatchError) -> i16 {
    match err {
        BatchError::Corrupt(_) => ResponseError::CorruptMessage.code(),
        BatchError::Invalid(_) => ResponseError::InvalidRecord.code(),
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge.code(),
        BatchError::Records(r) if r.invalid_timestamp => ResponseError::InvalidTimestamp.code(),
        BatchError::Records(_) => ResponseError::InvalidRecord.code(),
    }
}

pub fn producer_error_code(err: &ProducerError) -> i16 {
    match err {
        ProducerError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber.code(),
        ProducerError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch.code(),
        ProducerError::ProducerFenced(_) => ResponseError::ProducerFenced.code(),
        ProducerError::InvalidTxnState(_) => ResponseError::InvalidTxnState.code(),
        ProducerError::CoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced.code(),
    }
}

pub fn admin_error_code(err: &AdminError) -> i16 {
    match err {
        AdminError::TopicExists(_) => ResponseError::TopicAlreadyExists.code(),
        AdminError::InvalidTopic(_) => ResponseError::InvalidTopicException.code(),
        AdminError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition.code(),
        AdminError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
        AdminError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor.code(),
        AdminError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment.code(),
        AdminError::InvalidConfig(ConfigError::Unknown(_) | ConfigError::Invalid { .. }) => {
            ResponseError::InvalidConfig.code()
        }
        AdminError::Timeout(_) => ResponseError::RequestTimedOut.code(),
        AdminError::Storage(e) => {
            tracing::error!(error = %e, "storage error in a topic admin operation");
            ResponseError::KafkaStorageError.code()
        }
    }
}

/// The code for a reassignment or leader election not carried out.
pub fn partition_admin_error_code(err: &PartitionAdminError) -> i16 {
    match err {
        PartitionAdminError::UnknownPartition(_) => ResponseError::UnknownTopicOrPartition.code(),
        PartitionAdminError::Reassignment(r) => match r {
            ReassignmentError::InvalidReplicaAssignment(_) => {
                ResponseError::InvalidReplicaAssignment.code()
            }
            ReassignmentError::InvalidReplicationFactor(_) => {
                ResponseError::InvalidReplicationFactor.code()
            }
            ReassignmentError::NoReassignmentInProgress => {
                ResponseError::NoReassignmentInProgress.code()
            }
        },
        PartitionAdminError::NotElected(n) => match n {
            NotElected::NotNeeded => ResponseError::ElectionNotNeeded.code(),
            NotElected::PreferredNotAvailable => ResponseError::PreferredLeaderNotAvailable.code(),
            NotElected::EligibleNotAvailable => ResponseError::EligibleLeadersNotAvailable.code(),
        },
        PartitionAdminError::Admin(e) => admin_error_code(e),
    }
}

/// Kafka's message for a reassignment or election not carried out.
pub fn partition_admin_error_message(err: &PartitionAdminError) -> String {
    match err {
        PartitionAdminError::NotElected(n) => match n {
            NotElected::NotNeeded => "Leader election not needed for topic partition.",
            NotElected::PreferredNotAvailable => "The preferred leader was not available.",
            NotElected::EligibleNotAvailable => {
                "Eligible topic partition leaders are not available."
            }
        }
        .to_string(),
        other => other.to_string(),
    }
}

/// The code for a write that was appended but not acknowledged as asked.
pub fn ack_error_code(err: &AckError) -> i16 {
    match err {
        AckError::Storage(_) => ResponseError::KafkaStorageError.code(),
        AckError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
        AckError::NotEnoughReplicasAfterAppend => {
            ResponseError::NotEnoughReplicasAfterAppend.code()
        }
        AckError::TimedOut => ResponseError::RequestTimedOut.code(),
    }
}

/// The code for a partition this node does not lead (holds no replica of,
/// or its replica lost leadership): NOT_LEADER_OR_FOLLOWER when the topic
/// has it (another broker leads it, or will: the client refreshes its
/// metadata and goes there), UNKNOWN_TOPIC_OR_PARTITION when it does not.
pub fn unhosted_code(topic: Option<&crate::broker::Topic>, partition: i32) -> i16 {
    match topic {
        Some(t) if (0..t.partition_count()).contains(&partition) => {
            ResponseError::NotLeaderOrFollower.code()
        }
        _ => ResponseError::UnknownTopicOrPartition.code(),
    }
}
