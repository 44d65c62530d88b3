//! Cluster timings on this machine, for Vltava and (with
//! `VLTAVA_CLUSTER_KAFKA_LIBS`) Apache Kafka, three combined nodes each from
//! the same `server.properties` files, Kafka's default session timeouts:
//!
//!   cargo test --release --test cluster_bench -- --ignored --nocapture
//!   VLTAVA_CLUSTER_KAFKA_LIBS=/tmp/vltava-kafka-ref-4.4.0/libs \
//!     cargo test --release --test cluster_bench -- --ignored --nocapture
//!
//! Prints CreateTopics latency (1 and 1,000 partitions), the time from a
//! kill -9 of the active controller to the next successful CreateTopics, and
//! from a kill -9 of a broker to Metadata showing it gone and its partitions
//! without a leader. Not a test: nothing is asserted about time.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeQuorumRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};

fn metadata(addr: std::net::SocketAddr, topic: &str) -> Option<MetadataResponse> {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    std::panic::catch_unwind(|| RawClient::connect(addr).send(12, &req)).ok()
}

/// The active controller and its epoch, from DescribeQuorum to node `via`
/// (a Kafka broker forwards it).
fn active_controller(cluster: &Cluster, via: i32) -> (i32, i32) {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let r = RawClient::connect(cluster.addr(via)).send(1, &req);
    let p = &r.topics[0].partitions[0];
    (p.leader_id.0, p.leader_epoch)
}

/// Seconds one CreateTopics takes through `addr`, or None when refused.
fn create(
    addr: std::net::SocketAddr,
    name: &str,
    partitions: i32,
    timeout: Duration,
) -> Option<f64> {
    let admin = admin_client(&addr.to_string());
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = admin_opts()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let started = Instant::now();
    let result = block_on(
        timeout + Duration::from_secs(5),
        admin.create_topics([&topic], &opts),
    );
    match result {
        Ok(r) if r == vec![Ok(name.to_string())] => Some(started.elapsed().as_secs_f64()),
        _ => None,
    }
}

#[test]
#[ignore]
fn cluster_timings() {
    let kafka = std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS").is_some();
    let system = if kafka {
        "Apache Kafka 4.4.0"
    } else {
        "Vltava"
    };
    let mut cluster = Cluster::start(3, "");
    // Warm up: the first CreateTopics also opens connections.
    create(cluster.addr(2), "warm-up", 1, Duration::from_secs(30)).expect("warm-up");

    let ones: Vec<f64> = (0..5)
        .map(|i| {
            create(
                cluster.addr(2),
                &format!("one-{i}"),
                1,
                Duration::from_secs(30),
            )
            .unwrap()
                * 1e3
        })
        .collect();
    println!("{system}: CreateTopics, 1 partition, ms: {ones:.1?}");
    let thousands: Vec<f64> = (0..3)
        .map(|i| {
            create(
                cluster.addr(2),
                &format!("thousand-{i}"),
                1000,
                Duration::from_secs(60),
            )
            .unwrap()
        })
        .collect();
    println!("{system}: CreateTopics, 1,000 partitions, s: {thousands:.2?}");

    // Controller failover: kill -9, then CreateTopics through a survivor
    // until one succeeds.
    let (controller, epoch) = active_controller(&cluster, 1);
    let survivor = (1..=3).find(|id| *id != controller).unwrap();
    let killed = Instant::now();
    cluster.kill9(controller);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let name = format!("after-failover-{attempt}");
        if create(cluster.addr(survivor), &name, 1, Duration::from_secs(10)).is_some() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "no CreateTopics after failover"
        );
    }
    let took = killed.elapsed().as_secs_f64();
    let (elected, new_epoch) = active_controller(&cluster, survivor);
    println!(
        "{system}: kill -9 of the active controller (node {controller}, epoch {epoch}) to the next \
         successful CreateTopics: {took:.2} s (then node {elected} leads, epoch {new_epoch})"
    );
    cluster.restart(controller);

    // Fencing: a topic with a partition on every node; kill -9 a broker
    // that is not the controller; poll a survivor's Metadata.
    create(cluster.addr(survivor), "spread", 6, Duration::from_secs(30)).unwrap();
    let (controller, _) = active_controller(&cluster, survivor);
    let victim = (1..=3).find(|id| *id != controller).unwrap();
    let observer = (1..=3)
        .find(|id| *id != controller && *id != victim)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metadata(cluster.addr(observer), "spread").is_some_and(|m| {
        m.brokers.len() == 3 && m.topics[0].partitions.iter().all(|p| p.leader_id.0 >= 0)
    }) {
        assert!(
            Instant::now() < deadline,
            "the restarted node never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Instant::now();
    cluster.kill9(victim);
    loop {
        let gone = metadata(cluster.addr(observer), "spread").is_some_and(|m| {
            m.brokers.iter().all(|b| b.node_id.0 != victim)
                && m.topics[0]
                    .partitions
                    .iter()
                    .all(|p| p.leader_id.0 != victim)
        });
        if gone {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "node {victim} never fenced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "{system}: kill -9 of a broker (node {victim}) to Metadata without it and its partitions' leaders: {:.2} s",
        killed.elapsed().as_secs_f64()
    );
}
