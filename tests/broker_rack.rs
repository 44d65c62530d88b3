//! `broker.rack`: Metadata (v1+) and DescribeCluster report it for the broker,
//! DescribeConfigs shows it read-only; unset, all of them say null.

mod common;

use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// (Metadata v12 rack, Metadata v0 rack, DescribeCluster rack,
/// DescribeConfigs value and read-only).
#[allow(clippy::type_complexity)]
fn racks(
    broker: &TestBroker,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    (Option<String>, bool),
) {
    let mut raw = RawClient::connect(broker.addr());
    let rack = |r: &Option<StrBytes>| r.as_ref().map(|s| s.to_string());
    let v12 = raw.send(12, &MetadataRequest::default().with_topics(Some(vec![])));
    let v0 = raw.send(0, &MetadataRequest::default().with_topics(Some(vec![])));
    let cluster = raw.send(0, &DescribeClusterRequest::default());
    let node = v12.brokers[0].node_id.0.to_string();
    let configs = raw.send(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(node))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("broker.rack")]))]),
    );
    let entry = &configs.results[0].configs[0];
    assert_eq!(entry.name.as_str(), "broker.rack");
    (
        rack(&v12.brokers[0].rack),
        rack(&v0.brokers[0].rack),
        rack(&cluster.brokers[0].rack),
        (entry.value.as_ref().map(|v| v.to_string()), entry.read_only),
    )
}

#[test]
fn the_rack_is_reported_where_kafka_reports_it() {
    let broker = TestBroker::start_with(&["--override", "broker.rack=rack-a"]);
    let some = Some("rack-a".to_string());
    assert_eq!(
        racks(&broker),
        (some.clone(), None, some.clone(), (some, true))
    );
}

#[test]
fn no_rack_is_null_everywhere() {
    let broker = TestBroker::start();
    assert_eq!(racks(&broker), (None, None, None, (None, true)));
}
