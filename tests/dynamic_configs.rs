//! Dynamic broker configs (this node's, resource name "1", and the
//! cluster-wide default, name "") and KIP-848 group configs: set with
//! AlterConfigs / IncrementalAlterConfigs, described with Kafka's sources
//! and synonyms, persisted across a restart, and acted on (topic defaults,
//! produce size limit, the group's heartbeat interval). Expected errors and
//! messages are Apache Kafka 4.4's.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AlterConfig, ConfigSource, ResourceSpecifier};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;
const MESSAGE_TOO_LARGE: i16 = 10;
// Kafka's ConfigSource codes.
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT_BROKER: i8 = 3;
const DEFAULT: i8 = 5;
const GROUP_CONFIG: i8 = 8;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// IncrementalAlterConfigs on one resource: its (error code, message).
fn incremental(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_config_operation(*op)
                .with_value(v.map(s))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs)]);
    let r = client.send(1, &req).responses.remove(0);
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

/// AlterConfigs (the whole set) on one resource: its (error code, message).
fn alter(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    values: &[(&str, &str)],
) -> (i16, Option<String>) {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let configs = values
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_value(Some(s(v)))
        })
        .collect();
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_configs(configs)]);
    let r = client.send(2, &req).responses.remove(0);
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

type Synonyms = Vec<(String, String, i8)>;
/// One described entry: (name, value, source, read-only, synonyms).
type Entry = (String, String, i8, bool, Synonyms);

/// DescribeConfigs of one resource with synonyms: its error code, and per
/// entry (name, value, source, read-only, synonyms).
fn describe(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> (i16, Vec<Entry>) {
    use describe_configs_request::DescribeConfigsResource;
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(
                keys.map(|k| k.iter().map(|x| s(x)).collect()),
            )]);
    let r = client.send(4, &req).results.remove(0);
    let value = |v: Option<StrBytes>| v.map(|v| v.to_string()).unwrap_or_default();
    let entries = r
        .configs
        .into_iter()
        .map(|e| {
            let synonyms = e
                .synonyms
                .into_iter()
                .map(|y| (y.name.to_string(), value(y.value), y.source))
                .collect();
            (
                e.name.to_string(),
                value(e.value),
                e.config_source,
                e.read_only,
                synonyms,
            )
        })
        .collect();
    (r.error_code, entries)
}

fn syn(list: &[(&str, &str, i8)]) -> Synonyms {
    list.iter()
        .map(|(n, v, src)| (n.to_string(), v.to_string(), *src))
        .collect()
}

fn ok() -> (i16, Option<String>) {
    (0, None)
}

fn err(code: i16, message: &str) -> (i16, Option<String>) {
    (code, Some(message.to_string()))
}

/// The broker's view of retention and segment size, for this node and for
/// the cluster-wide default.
fn broker_views(client: &mut RawClient) -> (Vec<Entry>, Vec<Entry>) {
    let keys: &[&str] = &["log.retention.ms", "log.segment.bytes"];
    let (code, node) = describe(client, BROKER, "1", Some(keys));
    assert_eq!(code, 0);
    let (code, cluster) = describe(client, BROKER, "", Some(keys));
    assert_eq!(code, 0);
    (node, cluster)
}

#[test]
fn dynamic_broker_configs_win_by_kafkas_precedence_survive_a_restart_and_reach_topics() {
    let mut broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "plain", 1);
    let mut client = RawClient::connect(broker.addr());

    let ops = [
        ("log.retention.ms", SET, Some("3600000")),
        ("log.segment.bytes", SET, Some("2000000")),
    ];
    assert_eq!(incremental(&mut client, BROKER, "", &ops, false), ok());
    let ops = [("log.retention.ms", SET, Some("7200000"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &ops, false), ok());

    let expected_node = vec![
        (
            "log.segment.bytes".to_string(),
            "2000000".to_string(),
            DYNAMIC_DEFAULT_BROKER,
            false,
            syn(&[
                ("log.segment.bytes", "2000000", DYNAMIC_DEFAULT_BROKER),
                ("log.segment.bytes", "1073741824", DEFAULT),
            ]),
        ),
        (
            "log.retention.ms".to_string(),
            "7200000".to_string(),
            DYNAMIC_BROKER,
            false,
            syn(&[
                ("log.retention.ms", "7200000", DYNAMIC_BROKER),
                ("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER),
                ("log.retention.ms", "604800000", DEFAULT),
            ]),
        ),
    ];
    // The cluster-wide default lists only what it sets.
    let expected_cluster = vec![
        (
            "log.retention.ms".to_string(),
            "3600000".to_string(),
            DYNAMIC_DEFAULT_BROKER,
            false,
            syn(&[("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER)]),
        ),
        (
            "log.segment.bytes".to_string(),
            "2000000".to_string(),
            DYNAMIC_DEFAULT_BROKER,
            false,
            syn(&[("log.segment.bytes", "2000000", DYNAMIC_DEFAULT_BROKER)]),
        ),
    ];
    assert_eq!(
        broker_views(&mut client),
        (expected_node.clone(), expected_cluster.clone())
    );

    // A topic without overrides inherits them, with the broker's sources.
    let topic_view = |client: &mut RawClient| {
        let (code, entries) = describe(
            client,
            TOPIC,
            "plain",
            Some(&["retention.ms", "segment.bytes"]),
        );
        assert_eq!(code, 0);
        entries
            .into_iter()
            .map(|(n, v, src, _, _)| (n, v, src))
            .collect::<Vec<_>>()
    };
    let inherited = vec![
        (
            "segment.bytes".to_string(),
            "2000000".to_string(),
            DYNAMIC_DEFAULT_BROKER,
        ),
        (
            "retention.ms".to_string(),
            "7200000".to_string(),
            DYNAMIC_BROKER,
        ),
    ];
    assert_eq!(topic_view(&mut client), inherited);

    // Read-only entries say so.
    let (_, node_id) = describe(&mut client, BROKER, "1", Some(&["node.id"]));
    assert_eq!(
        node_id,
        vec![(
            "node.id".to_string(),
            "1".to_string(),
            DEFAULT,
            true,
            syn(&[("node.id", "1", DEFAULT)])
        )]
    );

    broker.restart();
    let mut client = RawClient::connect(broker.addr());
    assert_eq!(broker_views(&mut client), (expected_node, expected_cluster));
    assert_eq!(topic_view(&mut client), inherited);

    // validate_only changes nothing.
    let ops = [("log.retention.ms", SET, Some("1000"))];
    assert_eq!(incremental(&mut client, BROKER, "1", &ops, true), ok());
    assert_eq!(topic_view(&mut client), inherited);

    // AlterConfigs replaces this node's whole layer: the default shows through.
    assert_eq!(
        alter(&mut client, BROKER, "1", &[("log.roll.ms", "99999")]),
        ok()
    );
    // DELETE removes a key from the cluster-wide default.
    let ops = [("log.segment.bytes", DELETE, None)];
    assert_eq!(incremental(&mut client, BROKER, "", &ops, false), ok());
    assert_eq!(
        topic_view(&mut client),
        vec![
            (
                "segment.bytes".to_string(),
                "1073741824".to_string(),
                DEFAULT
            ),
            (
                "retention.ms".to_string(),
                "3600000".to_string(),
                DYNAMIC_DEFAULT_BROKER
            ),
        ]
    );
    let (_, roll) = describe(&mut client, BROKER, "1", Some(&["log.roll.ms"]));
    assert_eq!(
        roll,
        vec![(
            "log.roll.ms".to_string(),
            "99999".to_string(),
            DYNAMIC_BROKER,
            false,
            syn(&[
                ("log.roll.ms", "99999", DYNAMIC_BROKER),
                ("log.roll.ms", "604800000", DEFAULT)
            ])
        )]
    );
}

/// One uncompressed batch holding one record of `size` value bytes.
fn batch(size: usize) -> Bytes {
    common::raw::one_record_batch(&vec![b'x'; size])
}

fn produce_error(client: &mut RawClient, topic: &str, size: usize) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(size)))])]);
    let mut resp = client.send(9, &req);
    resp.responses
        .remove(0)
        .partition_responses
        .remove(0)
        .error_code
}

#[test]
fn a_dynamic_message_max_bytes_limits_what_a_produce_may_send() {
    let broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "sized", 1);
    let mut client = RawClient::connect(broker.addr());
    assert_eq!(produce_error(&mut client, "sized", 3000), 0);
    let ops = [("message.max.bytes", SET, Some("2000"))];
    assert_eq!(incremental(&mut client, BROKER, "", &ops, false), ok());
    assert_eq!(produce_error(&mut client, "sized", 3000), MESSAGE_TOO_LARGE);
    assert_eq!(produce_error(&mut client, "sized", 1000), 0);
}

#[test]
fn rdkafka_alters_and_describes_this_brokers_dynamic_configs() {
    let broker = TestBroker::start();
    let admin = admin_client(&broker.bootstrap());
    let change = AlterConfig::new(ResourceSpecifier::Broker(1)).set("log.retention.ms", "86400000");
    let results = block_on(
        Duration::from_secs(10),
        admin.alter_configs([&change], &admin_opts()),
    )
    .expect("alter configs");
    assert_eq!(
        results,
        vec![Ok(rdkafka::admin::OwnedResourceSpecifier::Broker(1))]
    );
    let resource = block_on(
        Duration::from_secs(10),
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts()),
    )
    .expect("describe configs")
    .remove(0)
    .expect("broker configs");
    let retention = resource.get("log.retention.ms").expect("log.retention.ms");
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert_eq!(retention.source, ConfigSource::DynamicBroker);
    assert!(!retention.is_read_only);
    let node_id = resource.get("node.id").expect("node.id");
    assert!(node_id.is_read_only);
}

#[test]
fn read_only_unknown_and_bad_broker_configs_get_kafkas_errors() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr());
    let mut set = |name: &str, key: &str, value: Option<&str>| {
        incremental(&mut client, BROKER, name, &[(key, SET, value)], false)
    };
    let read_only = err(
        INVALID_REQUEST,
        "Cannot update these configs dynamically: [node.id]",
    );
    assert_eq!(set("1", "node.id", Some("5")), read_only);
    assert_eq!(set("", "node.id", Some("5")), read_only);
    assert_eq!(
        set("1", "no.such.key", Some("1")),
        err(INVALID_CONFIG, "Unknown broker config name: no.such.key")
    );
    assert_eq!(
        set("1", "log.retention.ms", Some("abc")),
        err(
            INVALID_REQUEST,
            "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        )
    );
    assert_eq!(
        set("1", "log.retention.ms", None),
        err(
            INVALID_REQUEST,
            "Null value not supported for : log.retention.ms"
        )
    );
    assert_eq!(
        set("7", "log.retention.ms", Some("1")),
        err(
            INVALID_REQUEST,
            "Unexpected broker id, expected 1, but received 7"
        )
    );
    assert_eq!(
        set("x", "log.retention.ms", Some("1")),
        err(INVALID_REQUEST, "Node id must be an integer, but it is: x")
    );
    assert_eq!(set("", "min.insync.replicas", Some("0")).0, INVALID_REQUEST);
    assert_eq!(
        incremental(
            &mut client,
            BROKER,
            "1",
            &[("log.retention.ms", APPEND, Some("1"))],
            false
        ),
        err(
            INVALID_CONFIG,
            "Config value append is not allowed for config key: log.retention.ms"
        )
    );
    let ops = [
        ("node.id", SET, Some("5")),
        ("num.partitions", SET, Some("3")),
        ("log.retention.ms", SET, Some("1")),
    ];
    assert_eq!(
        incremental(&mut client, BROKER, "1", &ops, false),
        err(
            INVALID_REQUEST,
            "Cannot update these configs dynamically: [node.id, num.partitions]"
        )
    );
    assert_eq!(
        alter(&mut client, BROKER, "1", &[("node.id", "3")]),
        read_only
    );
    // Nothing was applied.
    let (_, entries) = describe(&mut client, BROKER, "", None);
    assert_eq!(entries, Vec::new());
    let (_, retention) = describe(&mut client, BROKER, "1", Some(&["log.retention.ms"]));
    assert_eq!(retention[0].2, DEFAULT);
}

#[test]
fn group_configs_are_validated_described_persisted_and_used_by_heartbeats() {
    let mut broker = TestBroker::start();
    create_topic(&broker.bootstrap(), "orders", 1);
    let mut client = RawClient::connect(broker.addr());
    let mut set = |group: &str, key: &str, value: &str| {
        incremental(&mut client, GROUP, group, &[(key, SET, Some(value))], false)
    };
    // Set before the group exists.
    assert_eq!(set("g1", "consumer.session.timeout.ms", "50000"), ok());
    assert_eq!(set("g1", "consumer.heartbeat.interval.ms", "7000"), ok());
    assert_eq!(
        set("g1", "consumer.session.timeout.ms", "1000"),
        err(
            INVALID_CONFIG,
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive."
        )
    );
    assert_eq!(
        set("g1", "consumer.heartbeat.interval.ms", "20000"),
        err(
            INVALID_CONFIG,
            "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive."
        )
    );
    assert_eq!(
        set("g1", "consumer.session.timeout.ms", "abc"),
        err(
            INVALID_CONFIG,
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        )
    );
    assert_eq!(
        set("g1", "foo", "1"),
        err(INVALID_CONFIG, "Unknown group config name: foo")
    );
    assert_eq!(
        set("", "consumer.session.timeout.ms", "50000"),
        err(INVALID_REQUEST, "Default group resources are not allowed.")
    );
    assert_eq!(describe(&mut client, GROUP, "", None).0, INVALID_REQUEST);

    let expected = vec![
        (
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
            GROUP_CONFIG,
            false,
            syn(&[
                ("consumer.session.timeout.ms", "50000", GROUP_CONFIG),
                ("group.consumer.session.timeout.ms", "45000", DEFAULT),
            ]),
        ),
        (
            "consumer.heartbeat.interval.ms".to_string(),
            "7000".to_string(),
            GROUP_CONFIG,
            false,
            syn(&[
                ("consumer.heartbeat.interval.ms", "7000", GROUP_CONFIG),
                ("group.consumer.heartbeat.interval.ms", "5000", DEFAULT),
            ]),
        ),
    ];
    assert_eq!(
        describe(&mut client, GROUP, "g1", None),
        (0, expected.clone())
    );
    // A group without configs reports the broker's.
    let (code, other) = describe(&mut client, GROUP, "other", None);
    assert_eq!(code, 0);
    assert_eq!(
        other
            .into_iter()
            .map(|(n, v, src, _, _)| (n, v, src))
            .collect::<Vec<_>>(),
        vec![
            (
                "consumer.session.timeout.ms".to_string(),
                "45000".to_string(),
                DEFAULT
            ),
            (
                "consumer.heartbeat.interval.ms".to_string(),
                "5000".to_string(),
                DEFAULT
            ),
        ]
    );

    broker.restart();
    let mut client = RawClient::connect(broker.addr());
    assert_eq!(describe(&mut client, GROUP, "g1", None), (0, expected));

    // The group's members are told the group's heartbeat interval, and a
    // change reaches them at their next heartbeat.
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("orders"))]))
        .with_topic_partitions(Some(Vec::new()));
    let joined = client.send(0, &join);
    assert_eq!((joined.error_code, joined.heartbeat_interval_ms), (0, 7000));
    let ops = [("consumer.heartbeat.interval.ms", "6000")];
    assert_eq!(alter(&mut client, GROUP, "g1", &ops), ok());
    let again = client.send(
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g1")))
            .with_member_id(joined.member_id.clone().expect("member id"))
            .with_member_epoch(joined.member_epoch),
    );
    assert_eq!((again.error_code, again.heartbeat_interval_ms), (0, 6000));
    // AlterConfigs replaced the set: the session timeout is the broker's again.
    let (_, entries) = describe(
        &mut client,
        GROUP,
        "g1",
        Some(&["consumer.session.timeout.ms"]),
    );
    assert_eq!(entries[0].1, "45000");
    assert_eq!(entries[0].2, DEFAULT);
}
