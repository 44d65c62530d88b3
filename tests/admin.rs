//! Topic administration through rdkafka's AdminClient and Metadata:
//! CreateTopics (incl. validate_only and "already exists"), CreatePartitions,
//! DeleteTopics, and broker-side auto-creation governed by
//! `num.partitions` / `auto.create.topics.enable`.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

fn metadata(bootstrap: &str) -> Metadata {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("Metadata request")
}

/// The single broker's id, after checking it advertises the bound address.
fn broker_id(broker: &TestBroker) -> i32 {
    let md = metadata(&broker.bootstrap());
    let brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    assert_eq!(
        brokers.len(),
        1,
        "exactly one broker in Metadata: {brokers:?}"
    );
    assert_eq!(brokers[0].1, "127.0.0.1", "advertised host");
    assert_eq!(brokers[0].2, broker.addr().port() as i32, "advertised port");
    brokers[0].0
}

/// (partition id, leader) pairs of a topic, sorted; None if not listed.
fn partition_leaders(bootstrap: &str, topic: &str) -> Option<Vec<(i32, i32)>> {
    let md = metadata(bootstrap);
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    assert!(
        t.error().is_none(),
        "topic {topic} listed with error {:?}",
        t.error()
    );
    let mut v: Vec<(i32, i32)> = t
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect();
    v.sort();
    Some(v)
}

#[test]
fn create_grow_and_delete_a_topic() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let id = broker_id(&broker);
    let admin = admin_client(&bootstrap);

    create_topic(&bootstrap, "grow-me", 3);
    assert_eq!(
        partition_leaders(&bootstrap, "grow-me"),
        Some(vec![(0, id), (1, id), (2, id)]),
        "3 partitions, all led by the broker"
    );

    let grow = NewPartitions::new("grow-me", 5);
    let res = block_on(
        Duration::from_secs(20),
        admin.create_partitions([&grow], &admin_opts()),
    )
    .expect("CreatePartitions request");
    assert_eq!(
        res,
        vec![Ok("grow-me".to_string())],
        "CreatePartitions result"
    );
    assert_eq!(
        partition_leaders(&bootstrap, "grow-me"),
        Some((0..5).map(|p| (p, id)).collect::<Vec<_>>()),
        "5 partitions after CreatePartitions"
    );

    let acked = produce_all_acked(
        &producer_config(&bootstrap),
        "grow-me",
        &[Out {
            value: "into the new partition".into(),
            partition: Some(4),
            ..Out::default()
        }],
        Duration::from_secs(30),
    );
    assert_eq!(
        (acked[0].partition, acked[0].offset),
        (4, 0),
        "produce to new partition 4"
    );

    let res = block_on(
        Duration::from_secs(20),
        admin.delete_topics(&["grow-me"], &admin_opts()),
    )
    .expect("DeleteTopics request");
    assert_eq!(res, vec![Ok("grow-me".to_string())], "DeleteTopics result");
    assert_eq!(
        partition_leaders(&bootstrap, "grow-me"),
        None,
        "deleted topic must not be listed"
    );
}

#[test]
fn creating_an_existing_topic_fails_with_topic_already_exists() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "twice", 2);

    let admin = admin_client(&bootstrap);
    let again = NewTopic::new("twice", 2, TopicReplication::Fixed(1));
    let res = block_on(
        Duration::from_secs(20),
        admin.create_topics([&again], &admin_opts()),
    )
    .expect("CreateTopics request");
    assert_eq!(
        res,
        vec![Err((
            "twice".to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );
    assert_eq!(
        topic_partitions(&bootstrap, "twice"),
        Some(vec![0, 1]),
        "original topic unchanged"
    );
}

#[test]
fn validate_only_create_creates_nothing() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let admin = admin_client(&bootstrap);
    let topic = NewTopic::new("dry-run", 3, TopicReplication::Fixed(1));
    let opts = admin_opts().validate_only(true);
    let res = block_on(
        Duration::from_secs(20),
        admin.create_topics([&topic], &opts),
    )
    .expect("CreateTopics request");
    assert_eq!(res, vec![Ok("dry-run".to_string())], "validate_only result");
    assert_eq!(
        topic_partitions(&bootstrap, "dry-run"),
        None,
        "validate_only must not create the topic"
    );

    // The name is still free afterwards.
    create_topic(&bootstrap, "dry-run", 3);
    assert_eq!(topic_partitions(&bootstrap, "dry-run"), Some(vec![0, 1, 2]));
}

#[test]
fn producing_to_an_unknown_topic_auto_creates_it_with_num_partitions() {
    let broker = TestBroker::start_with(&["--override", "num.partitions=3"]);
    let bootstrap = broker.bootstrap();
    assert_eq!(topic_partitions(&bootstrap, "auto-made"), None);

    let acked = produce_all_acked(
        &producer_config(&bootstrap),
        "auto-made",
        &[Out {
            key: Some("k".into()),
            value: "hello".into(),
            ..Out::default()
        }],
        Duration::from_secs(30),
    );
    assert!(
        (0..3).contains(&acked[0].partition),
        "acked on partition {}",
        acked[0].partition
    );
    assert_eq!(acked[0].offset, 0);
    assert_eq!(
        topic_partitions(&bootstrap, "auto-made"),
        Some(vec![0, 1, 2]),
        "auto-created with num.partitions=3"
    );
}

#[test]
fn producing_to_an_unknown_topic_fails_when_auto_create_is_disabled() {
    let broker = TestBroker::start_with(&["--override", "auto.create.topics.enable=false"]);
    let bootstrap = broker.bootstrap();

    let mut cfg = producer_config(&bootstrap);
    cfg.set("message.timeout.ms", "5000")
        .set("topic.metadata.propagation.max.ms", "1000");
    let outcomes = produce_all(
        &cfg,
        "no-such-topic",
        &[Out {
            value: "nowhere".into(),
            ..Out::default()
        }],
        Duration::from_secs(20),
    );
    match &outcomes[0] {
        // librdkafka reports the broker's UNKNOWN_TOPIC_OR_PARTITION either as
        // the wire error or as its local "unknown topic" once metadata says so.
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition))
        | Err(KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopic)) => {}
        other => panic!("expected UnknownTopicOrPartition, got {other:?}"),
    }
    assert_eq!(
        topic_partitions(&bootstrap, "no-such-topic"),
        None,
        "topic must not have been created"
    );
}
