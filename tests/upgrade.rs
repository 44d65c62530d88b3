//! Upgrade: a data directory written by Vltava before topics moved into the
//! metadata log (`tests/fixtures/data-dir-before-metadata-log.tar.gz`, made by
//! the release binary of 2026-12-04: topic `orders` with 3 partitions and
//! `retention.ms=86400000`, six keyed records, group `g` committed at the end
//! of each partition) opens with its cluster id, topic ids, configs, records
//! and committed offsets intact. Its topic registry is imported into the
//! metadata log once and renamed; later starts read the metadata log alone.

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
use kafka_protocol::messages::{DescribeConfigsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::Offset;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-dir-before-metadata-log.tar.gz"
);
const ORDERS_ID: &str = "956e0193-d34b-4e29-b053-bc8d694b6084";

fn check_everything_is_there(broker: &TestBroker) {
    let mut raw = RawClient::connect(broker.addr());
    let metadata = raw.send(
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))])),
    );
    assert_eq!(
        metadata.cluster_id.as_deref(),
        Some("WcY3TZVGRBmfYH7xRgNixA")
    );
    let orders = &metadata.topics[0];
    assert_eq!(orders.error_code, 0);
    assert_eq!(orders.topic_id.to_string(), ORDERS_ID);
    let partitions: Vec<i32> = orders
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(partitions, vec![0, 1, 2]);

    let configs = raw.send(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("orders"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")]))]),
    );
    let retention = &configs.results[0].configs[0];
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert_eq!(retention.config_source, 1, "a topic override");

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

    broker.restart();
    check_everything_is_there(&broker);
    assert!(!data.join("vltava-topics.toml").exists());
    assert!(data.join("vltava-topics.toml.imported").exists());

    // Later starts take everything from the metadata log.
    assert_eq!(broker.terminate().code(), Some(0));
    broker.restart();
    check_everything_is_there(&broker);
}
