//! Every Kafka 4.x topic config name: reported by DescribeConfigs of a fresh
//! topic with Kafka's default, and accepted by CreateTopics and
//! IncrementalAlterConfigs (no-ops are listed in docs/COMPATIBILITY.md).

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};

const LONG_MAX: &str = "9223372036854775807";

/// Kafka 4.4's topic configs (LogConfig) and their defaults, by name, plus
/// `message.downconversion.enable` (Kafka 3.x; still accepted for old tools).
const KAFKA_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.gzip.level", "-1"),
    ("compression.lz4.level", "9"),
    ("compression.type", "producer"),
    ("compression.zstd.level", "3"),
    ("delete.retention.ms", "86400000"),
    ("errors.deadletterqueue.group.enable", "false"),
    ("file.delete.delay.ms", "60000"),
    ("flush.messages", LONG_MAX),
    ("flush.ms", LONG_MAX),
    ("follower.replication.throttled.replicas", ""),
    ("index.interval.bytes", "4096"),
    ("leader.replication.throttled.replicas", ""),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("max.compaction.lag.ms", LONG_MAX),
    ("max.decompressed.message.bytes", "2147483639"),
    ("max.message.bytes", "1048588"),
    ("message.downconversion.enable", "true"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", LONG_MAX),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("remote.copy.lag.bytes", "-1"),
    ("remote.copy.lag.ms", "0"),
    ("remote.log.copy.disable", "false"),
    ("remote.log.delete.on.disable", "false"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.jitter.ms", "0"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

/// (name, value, source) of every config DescribeConfigs reports for `topic`.
fn describe(bootstrap: &str, topic: &str) -> Vec<(String, String, ConfigSource)> {
    let admin = admin_client(bootstrap);
    let resource = block_on(
        Duration::from_secs(10),
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts()),
    )
    .expect("describe configs")
    .into_iter()
    .next()
    .expect("one resource")
    .expect("topic configs");
    let mut entries: Vec<_> = resource
        .entries
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default(), e.source))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn a_fresh_topic_reports_every_kafka_topic_config_with_its_default() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, "fresh", 1);
    let want: Vec<(String, String, ConfigSource)> = KAFKA_TOPIC_CONFIGS
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string(), ConfigSource::Default))
        .collect();
    assert_eq!(describe(&b, "fresh"), want);
}

#[test]
fn create_topics_and_alter_configs_accept_every_kafka_topic_config_name() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    // A value other than the default for each name Vltava accepts but does
    // not act on, and for the compression levels.
    let set: &[(&str, &str)] = &[
        ("compression.gzip.level", "5"),
        ("compression.lz4.level", "3"),
        ("compression.zstd.level", "10"),
        ("errors.deadletterqueue.group.enable", "true"),
        ("max.decompressed.message.bytes", "1000000"),
        ("remote.copy.lag.ms", "-1"),
        ("remote.copy.lag.bytes", "1024"),
        ("file.delete.delay.ms", "1000"),
        ("flush.messages", "1"),
        ("flush.ms", "1000"),
        ("follower.replication.throttled.replicas", "*"),
        ("leader.replication.throttled.replicas", "0:1"),
        ("local.retention.bytes", "-1"),
        ("local.retention.ms", "-1"),
        ("message.downconversion.enable", "false"),
        ("preallocate", "true"),
        ("remote.log.copy.disable", "true"),
        ("remote.log.delete.on.disable", "true"),
        ("remote.storage.enable", "false"),
        ("segment.jitter.ms", "100"),
        ("unclean.leader.election.enable", "true"),
    ];
    let admin = admin_client(&b);
    let mut topic = NewTopic::new("all-names", 1, TopicReplication::Fixed(1));
    for (k, v) in set {
        topic = topic.set(k, v);
    }
    let created = block_on(
        Duration::from_secs(10),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("create topics");
    assert_eq!(created, vec![Ok("all-names".to_string())]);
    let described = describe(&b, "all-names");
    for (k, v) in set {
        assert!(
            described.contains(&(k.to_string(), v.to_string(), ConfigSource::DynamicTopic)),
            "{k}={v} in {described:?}"
        );
    }
    assert_eq!(described.len(), KAFKA_TOPIC_CONFIGS.len());

    // AlterConfigs takes them too.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("all-names"))
        .set("segment.jitter.ms", "7")
        .set("preallocate", "false");
    let altered = block_on(
        Duration::from_secs(10),
        admin.alter_configs([&alter], &admin_opts()),
    )
    .expect("alter configs");
    assert!(altered.iter().all(|r| r.is_ok()), "{altered:?}");
    let described = describe(&b, "all-names");
    assert!(described.contains(&(
        "segment.jitter.ms".into(),
        "7".into(),
        ConfigSource::DynamicTopic
    )));

    // Tiered storage is refused as Kafka refuses it when it is off.
    let tiered =
        NewTopic::new("tiered", 1, TopicReplication::Fixed(1)).set("remote.storage.enable", "true");
    let created = block_on(
        Duration::from_secs(10),
        admin.create_topics([&tiered], &admin_opts()),
    )
    .expect("create topics");
    match &created[..] {
        [Err((name, code))] => {
            assert_eq!(name, "tiered");
            assert_eq!(*code, rdkafka::types::RDKafkaErrorCode::InvalidConfig);
        }
        other => panic!("{other:?}"),
    }
}
