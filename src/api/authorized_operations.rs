//! The authorized-operations bitfields that Metadata, DescribeCluster,
//! DescribeGroups, ConsumerGroupDescribe and DescribeTopicPartitions answer.
//!
//! Vltava has no authorizer, and without one Kafka allows every operation a
//! resource type supports (`AclEntry.supportedOperations`): one bit per
//! `AclOperation` code. A client that did not ask gets the schema's "not
//! requested" value. Pure values: never decides access.

/// Kafka's `AclOperation` codes (the ones resource types support).
#[derive(Clone, Copy)]
enum AclOperation {
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
}

use AclOperation::*;

/// One bit per operation code (Kafka's `Utils.to32BitField`).
const fn bitfield(operations: &[AclOperation]) -> i32 {
    let mut bits = 0;
    let mut i = 0;
    while i < operations.len() {
        bits |= 1 << operations[i] as u32;
        i += 1;
    }
    bits
}

/// What a TOPIC resource supports.
pub const TOPIC: i32 = bitfield(&[
    Read,
    Write,
    Create,
    Describe,
    Delete,
    Alter,
    DescribeConfigs,
    AlterConfigs,
]);

/// What a GROUP resource supports.
pub const GROUP: i32 = bitfield(&[Read, Describe, Delete, DescribeConfigs, AlterConfigs]);

/// What the CLUSTER resource supports.
pub const CLUSTER: i32 = bitfield(&[
    Create,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    Alter,
    Describe,
]);

/// The schemas' default: the client did not ask.
pub const NOT_REQUESTED: i32 = i32::MIN;

/// `operations` when the client asked for them, else "not requested".
pub fn when_requested(requested: bool, operations: i32) -> i32 {
    if requested {
        operations
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_match_kafka_without_an_authorizer() {
        // READ..DESCRIBE (3-8) and DESCRIBE_CONFIGS, ALTER_CONFIGS (10, 11).
        assert_eq!(TOPIC, 0b1101_1111_1000);
        assert_eq!(TOPIC, 3576);
        // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(GROUP, 3400);
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
        // ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(CLUSTER, 8096);
        assert_eq!(when_requested(false, TOPIC), -2147483648);
    }
}
