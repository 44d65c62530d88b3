//! Upgrade: a data directory written by Vltava before topics, producer-id
//! blocks and dynamic configs moved into the metadata log
//! (`tests/fixtures/data-dir-before-metadata-log.tar.gz`, made by
//! `tests/fixtures/make-data-dir-before-metadata-log.sh` with the broker of
//! commit 1751798) opens with its cluster id, topic ids, topic and broker
//! configs, records, committed offsets, transactions and producer ids
//! intact. Its files are imported into the metadata log once and renamed
//! `*.imported`; later starts read the metadata log alone.

mod common;
mod group_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::raw::RawClient;
use common::*;
use group_support::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeConfigsRequest, InitProducerIdRequest, MetadataRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::time::Instant;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-dir-before-metadata-log.tar.gz"
);
const CLUSTER_ID: &str = "X1i2WyHiSjqWiMMZ7_xgpQ";
const ORDERS_ID: &str = "84870558-3476-41c3-ad5a-7627da62eb25";
/// The producer id `tx1` was given, kept in `__transaction_state`.
const TX1_PRODUCER_ID: i64 = 1;
/// The old broker had reserved producer ids below this (`vltava-producer-ids`).
const OLD_BLOCK_END: i64 = 1000;

fn describe(raw: &mut RawClient, resource_type: i8, name: &str, key: &str) -> (Option<String>, i8) {
    let configs = raw.send(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))]),
    );
    let entry = &configs.results[0].configs[0];
    (
        entry.value.as_ref().map(|v| v.to_string()),
        entry.config_source,
    )
}

fn check_everything_is_there(broker: &TestBroker) {
    let mut raw = RawClient::connect(broker.addr());
    let metadata = raw.send(
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))])),
    );
    assert_eq!(metadata.cluster_id.as_deref(), Some(CLUSTER_ID));
    let orders = &metadata.topics[0];
    assert_eq!(orders.error_code, 0);
    assert_eq!(orders.topic_id.to_string(), ORDERS_ID);
    let partitions: Vec<i32> = orders
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(partitions, vec![0, 1, 2]);

    // A topic override, and a dynamic config of this broker (source 1 and 2).
    assert_eq!(
        describe(&mut raw, 2, "orders", "retention.ms"),
        (Some("86400000".into()), 1)
    );
    assert_eq!(
        describe(&mut raw, 4, "1", "log.retention.ms"),
        (Some("7200000".into()), 2)
    );

    let records = consume_exactly(
        &broker.bootstrap(),
        "orders",
        &BTreeMap::from([(0, 2), (1, 2), (2, 2)]),
        Duration::from_secs(30),
    );
    let keys: BTreeMap<i32, Vec<String>> = records
        .iter()
        .map(|(p, ms)| (*p, ms.iter().map(|m| key_str(m).unwrap()).collect()))
        .collect();
    assert_eq!(
        keys,
        BTreeMap::from([
            (0, vec!["k2".to_string(), "k6".to_string()]),
            (1, vec!["k1".to_string(), "k5".to_string()]),
            (2, vec!["k3".to_string(), "k4".to_string()]),
        ])
    );
    assert_eq!(
        committed_offsets(&broker.bootstrap(), "g", "orders", &[0, 1, 2]),
        BTreeMap::from([
            (0, Offset::Offset(2)),
            (1, Offset::Offset(2)),
            (2, Offset::Offset(2)),
        ])
    );
    // The committed transaction reads back under read_committed, its commit
    // marker after it.
    assert_eq!(
        read_committed(&broker.bootstrap(), "payments"),
        vec![(0, "paid-1".to_string()), (1, "paid-2".to_string())]
    );
}

/// Every record of `topic`/0 a read_committed consumer sees, as (offset,
/// value), up to the end it may read.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<(i64, String)> {
    let mut cfg = consumer_config(bootstrap);
    cfg.set("group.id", "upgrade-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    let c: BaseConsumer = cfg.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of {topic}/0; read {out:?}"
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => out.push((m.offset(), value_str(&m).unwrap())),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consuming {topic}/0: {e}"),
        }
    }
}

/// InitProducerId for `tx1` keeps its producer id with the next epoch; a
/// new idempotent producer gets an id no earlier broker handed out.
fn check_producer_ids(broker: &TestBroker, tx1_epoch: i16, fresh: i64) {
    let mut raw = RawClient::connect(broker.addr());
    let tx = raw.send(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx1"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(tx.error_code, 0);
    assert_eq!(
        (tx.producer_id.0, tx.producer_epoch),
        (TX1_PRODUCER_ID, tx1_epoch)
    );
    let idempotent = raw.send(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(idempotent.error_code, 0);
    assert_eq!(idempotent.producer_id.0, fresh);
}

#[test]
fn a_data_dir_from_before_the_metadata_log_opens_intact() {
    let mut broker = TestBroker::start();
    assert_eq!(broker.terminate().code(), Some(0));
    let data = broker.data_dir();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(FIXTURE)
        .arg("-C")
        .arg(&data)
        .status()
        .unwrap();
    assert!(tar.success());
    let old_files = [
        "vltava-topics.toml",
        "vltava-producer-ids",
        "vltava-dynamic-configs.toml",
    ];
    for f in old_files {
        assert!(data.join(f).exists(), "the fixture has {f}");
    }

    broker.restart();
    check_everything_is_there(&broker);
    check_producer_ids(&broker, 1, OLD_BLOCK_END);
    for f in old_files {
        assert!(!data.join(f).exists(), "{f} is still there");
        assert!(data.join(format!("{f}.imported")).exists(), "{f}.imported");
    }

    // Later starts take everything from the metadata log; the block the
    // first start took is skipped.
    assert_eq!(broker.terminate().code(), Some(0));
    broker.restart();
    check_everything_is_there(&broker);
    check_producer_ids(&broker, 2, OLD_BLOCK_END + 1000);
}
