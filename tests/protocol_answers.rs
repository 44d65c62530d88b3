//! Exact answers Kafka gives that librdkafka's suite checks: OffsetCommit
//! and TxnOffsetCommit to topics and partitions that do not exist, the
//! authorized-operations bitfields, and which topics are internal.

mod common;

use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_ID_NOT_FOUND: i16 = 69;
const NOT_REQUESTED: i32 = i32::MIN;
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
/// IDEMPOTENT_WRITE.
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

/// (topic, partition, offset) triples as OffsetCommit topics, in order.
fn commit_topics(
    offsets: &[(&str, i32, i64)],
) -> Vec<offset_commit_request::OffsetCommitRequestTopic> {
    use offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for &(t, p, o) in offsets {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(o);
        match topics.last_mut() {
            Some(last) if last.name.as_str() == t => last.partitions.push(partition),
            _ => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(name(t))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    topics
}

/// The group's committed offsets for `topic`'s partitions `0..n` (-1: none).
fn committed(client: &mut RawClient, group_id: &str, topic: &str, n: i32) -> Vec<i64> {
    use offset_fetch_request::OffsetFetchRequestTopic;
    let resp = client.send(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(group(group_id))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name(topic))
                .with_partition_indexes((0..n).collect())])),
    );
    assert_eq!(resp.error_code, 0);
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect()
}

#[test]
fn offset_commit_to_missing_topics_and_partitions_is_unknown_topic_or_partition() {
    let broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "orders", 2);
    let mut client = RawClient::connect(broker.addr());

    let offsets = [
        ("missing", 0, 5),
        ("missing", 1, 6),
        ("orders", 0, 42),
        ("orders", 2, 7),
        ("orders", -1, 8),
    ];
    for version in [2, 7, 9] {
        let group_id = format!("standalone-v{version}");
        let resp = client.send(
            version,
            &OffsetCommitRequest::default()
                .with_group_id(group(&group_id))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(commit_topics(&offsets)),
        );
        let codes: Vec<(String, i32, i16)> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.to_string(), p.partition_index, p.error_code))
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                ("missing".into(), 0, UNKNOWN_TOPIC_OR_PARTITION),
                ("missing".into(), 1, UNKNOWN_TOPIC_OR_PARTITION),
                ("orders".into(), 0, 0),
                ("orders".into(), 2, UNKNOWN_TOPIC_OR_PARTITION),
                ("orders".into(), -1, UNKNOWN_TOPIC_OR_PARTITION),
            ],
            "OffsetCommit v{version}"
        );
        assert_eq!(committed(&mut client, &group_id, "orders", 2), vec![42, -1]);
        assert_eq!(
            committed(&mut client, &group_id, "missing", 2),
            vec![-1, -1]
        );
    }

    // Only missing partitions: answered without the group coordinator, so
    // not even an empty group id is looked at (as Kafka does).
    let resp = client.send(
        9,
        &OffsetCommitRequest::default()
            .with_group_id(group(""))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(commit_topics(&[("missing", 0, 1)])),
    );
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn txn_offset_commit_to_missing_topics_and_partitions_is_unknown_topic_or_partition() {
    use txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
    let broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "orders", 2);
    let mut client = RawClient::connect(broker.addr());

    let txn = TransactionalId(StrBytes::from_static_str("txn-offsets"));
    let init = client.send(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn.clone()))
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(init.error_code, 0);
    let added = client.send(
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn.clone())
            .with_producer_id(init.producer_id)
            .with_producer_epoch(init.producer_epoch)
            .with_group_id(group("txn-group")),
    );
    assert_eq!(added.error_code, 0);
    let partition = |p: i32| {
        TxnOffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(10)
    };
    let resp = client.send(
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(txn)
            .with_group_id(group("txn-group"))
            .with_producer_id(init.producer_id)
            .with_producer_epoch(init.producer_epoch)
            .with_generation_id(-1)
            .with_topics(vec![
                TxnOffsetCommitRequestTopic::default()
                    .with_name(name("missing"))
                    .with_partitions(vec![partition(0)]),
                TxnOffsetCommitRequestTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(vec![partition(1), partition(9)]),
            ]),
    );
    let codes: Vec<(String, i32, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("missing".into(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ("orders".into(), 1, 0),
            ("orders".into(), 9, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
}

/// Metadata for `topics`, asking (or not) for the authorized operations.
fn metadata(client: &mut RawClient, version: i16, topics: &[&str], ask: bool) -> MetadataResponse {
    use metadata_request::MetadataRequestTopic;
    let mut req = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(false)
        .with_include_topic_authorized_operations(ask);
    if version <= 10 {
        req.include_cluster_authorized_operations = ask;
    }
    client.send(version, &req)
}

#[test]
fn authorized_operations_are_every_operation_when_asked_and_not_requested_otherwise() {
    let broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "orders", 2);
    let mut client = RawClient::connect(broker.addr());

    // Metadata: every topic of the answer (a missing one too) when asked.
    for version in [8, 10, 12] {
        let asked = metadata(&mut client, version, &["orders", "missing"], true);
        let ops: Vec<(i16, i32)> = asked
            .topics
            .iter()
            .map(|t| (t.error_code, t.topic_authorized_operations))
            .collect();
        assert_eq!(
            ops,
            vec![
                (0, TOPIC_OPERATIONS),
                (UNKNOWN_TOPIC_OR_PARTITION, TOPIC_OPERATIONS)
            ],
            "Metadata v{version}"
        );
        let expected_cluster = if version <= 10 {
            CLUSTER_OPERATIONS
        } else {
            NOT_REQUESTED
        };
        assert_eq!(asked.cluster_authorized_operations, expected_cluster);
        let not_asked = metadata(&mut client, version, &["orders"], false);
        assert_eq!(
            not_asked.topics[0].topic_authorized_operations,
            NOT_REQUESTED
        );
        assert_eq!(not_asked.cluster_authorized_operations, NOT_REQUESTED);
    }

    // DescribeCluster.
    for (ask, expected) in [(true, CLUSTER_OPERATIONS), (false, NOT_REQUESTED)] {
        let resp = client.send(
            1,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(ask),
        );
        assert_eq!(resp.cluster_authorized_operations, expected, "asked: {ask}");
    }

    // DescribeTopicPartitions always answers them.
    let resp = client.send(
        0,
        &DescribeTopicPartitionsRequest::default()
            .with_response_partition_limit(100)
            .with_topics(vec![
                describe_topic_partitions_request::TopicRequest::default()
                    .with_name(name("missing")),
                describe_topic_partitions_request::TopicRequest::default()
                    .with_name(name("orders")),
            ]),
    );
    let ops: Vec<(String, i32)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.topic_authorized_operations,
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("missing".to_string(), TOPIC_OPERATIONS),
            ("orders".to_string(), TOPIC_OPERATIONS)
        ]
    );

    // DescribeGroups: a group with committed offsets (Empty) when asked.
    let commit = client.send(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(group("offsets-only"))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(commit_topics(&[("orders", 0, 3)])),
    );
    assert_eq!(commit.topics[0].partitions[0].error_code, 0);
    for (ask, expected) in [(true, GROUP_OPERATIONS), (false, NOT_REQUESTED)] {
        let resp = client.send(
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![group("offsets-only")])
                .with_include_authorized_operations(ask),
        );
        let g = &resp.groups[0];
        assert_eq!(
            (g.error_code, g.authorized_operations),
            (0, expected),
            "asked: {ask}, group {g:?}"
        );
    }
    // A group that does not exist (v6+: an error) gets none.
    let resp = client.send(
        6,
        &DescribeGroupsRequest::default()
            .with_groups(vec![group("nobody")])
            .with_include_authorized_operations(true),
    );
    assert_eq!(
        (
            resp.groups[0].error_code,
            resp.groups[0].authorized_operations
        ),
        (GROUP_ID_NOT_FOUND, NOT_REQUESTED)
    );

    // ConsumerGroupDescribe: a KIP-848 group with one member.
    let joined = client.send(
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group("kip848"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![name("orders")]))
            .with_topic_partitions(Some(Vec::new())),
    );
    assert_eq!(joined.error_code, 0, "{joined:?}");
    for (ask, expected) in [(true, GROUP_OPERATIONS), (false, NOT_REQUESTED)] {
        let resp = client.send(
            0,
            &ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![group("kip848"), group("nobody")])
                .with_include_authorized_operations(ask),
        );
        let ops: Vec<(i16, i32)> = resp
            .groups
            .iter()
            .map(|g| (g.error_code, g.authorized_operations))
            .collect();
        assert_eq!(
            ops,
            vec![(0, expected), (GROUP_ID_NOT_FOUND, NOT_REQUESTED)],
            "asked: {ask}"
        );
    }
}

#[test]
fn only_kafkas_internal_topics_are_internal() {
    use produce_request::{PartitionProduceData, TopicProduceData};
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, "__debezium-heartbeat.x", 1);
    // The group coordinator creates __consumer_offsets on first use.
    let mut client = RawClient::connect(broker.addr());
    let commit = client.send(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(group("g"))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(commit_topics(&[("__debezium-heartbeat.x", 0, 0)])),
    );
    assert_eq!(commit.topics[0].partitions[0].error_code, 0);

    let resp = metadata(
        &mut client,
        12,
        &["__debezium-heartbeat.x", "__consumer_offsets"],
        false,
    );
    let internal: Vec<(String, i16, bool)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.is_internal,
            )
        })
        .collect();
    assert_eq!(
        internal,
        vec![
            ("__debezium-heartbeat.x".to_string(), 0, false),
            ("__consumer_offsets".to_string(), 0, true),
        ]
    );

    // Produce: an ordinary `__` topic takes records, an internal one refuses.
    let batch = |value: &str| {
        let mut out = bytes::BytesMut::new();
        kafka_protocol::records::RecordBatchEncoder::encode(
            &mut out,
            &[kafka_protocol::records::Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: kafka_protocol::records::TimestampType::Creation,
                offset: 0,
                sequence: -1,
                timestamp: 0,
                key: None,
                value: Some(bytes::Bytes::from(value.to_string())),
                headers: Default::default(),
            }],
            &kafka_protocol::records::RecordEncodeOptions {
                version: 2,
                compression: kafka_protocol::records::Compression::None,
            },
        )
        .expect("encode batch");
        out.freeze()
    };
    let produce = |client: &mut RawClient, topic: &str| {
        let resp = client.send(
            9,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch("beat")))])]),
        );
        let p = &resp.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    const INVALID_TOPIC_EXCEPTION: i16 = 17;
    assert_eq!(produce(&mut client, "__debezium-heartbeat.x"), (0, 0));
    assert_eq!(
        produce(&mut client, "__consumer_offsets").0,
        INVALID_TOPIC_EXCEPTION
    );
}
