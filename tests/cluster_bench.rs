//! Cluster timings on this machine, for Vltava and (with
//! `VLTAVA_CLUSTER_KAFKA_LIBS`) Apache Kafka, three combined nodes each from
//! the same `server.properties` files, Kafka's default session timeouts:
//!
//!   cargo test --release --test cluster_bench -- --ignored --nocapture
//!   VLTAVA_CLUSTER_KAFKA_LIBS=/tmp/vltava-kafka-ref-4.4.0/libs \
//!     cargo test --release --test cluster_bench -- --ignored --nocapture
//!
//! `cluster_timings` prints CreateTopics latency (1 and 1,000 partitions),
//! the time from a kill -9 of the active controller to the next successful
//! CreateTopics, and from a kill -9 of a broker to Metadata showing it gone
//! and its partitions without a leader. `replicated_produce` prints, with
//! replication factor 3 and acks=all, producer throughput, ack latency at a
//! fixed rate and the time from a kill -9 of a leader to the next
//! acknowledged record. Not tests: nothing is asserted about time.

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

/// When each message was sent and acknowledged, by delivery index.
#[derive(Default)]
struct Timing {
    sent: std::sync::Mutex<Vec<Instant>>,
    acked: std::sync::Mutex<Vec<Option<(Instant, bool)>>>,
}

impl rdkafka::ClientContext for Timing {}

impl rdkafka::producer::ProducerContext for Timing {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, index: usize) {
        let mut acked = self.acked.lock().unwrap();
        if acked.len() <= index {
            acked.resize(index + 1, None);
        }
        acked[index] = Some((Instant::now(), result.is_ok()));
    }
}

type TimedProducer = rdkafka::producer::BaseProducer<Timing>;

fn timed_producer(bootstrap: &str, idempotent: bool) -> TimedProducer {
    let mut config = client_config(bootstrap);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("message.timeout.ms", "120000")
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        );
    config
        .create_with_context(Timing::default())
        .expect("producer")
}

/// Sends `count` records of `size` bytes round-robin over `partitions`, at
/// `rate` per second (None: as fast as the client takes them), calling
/// `at_half` once half are sent; waits for every report.
fn send_timed(
    producer: &TimedProducer,
    topic: &str,
    partitions: i32,
    count: usize,
    size: usize,
    rate: Option<f64>,
    mut at_half: impl FnMut(),
) {
    use rdkafka::producer::{BaseRecord, Producer};
    let payload = vec![b'v'; size];
    let started = Instant::now();
    for i in 0..count {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            while Instant::now() < due {
                producer.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        if i == count / 2 {
            at_half();
        }
        producer.context().sent.lock().unwrap().push(Instant::now());
        let mut record = BaseRecord::with_opaque_to(topic, i)
            .payload(&payload[..])
            .partition(i as i32 % partitions);
        loop {
            match producer.send::<(), [u8]>(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("every record reported");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Replication factor 3, `min.insync.replicas` 2, acks=all: producer
/// throughput (librdkafka in this process, 1 KiB records over 6
/// partitions), ack latency at `BENCH_RATE` msgs/s (default 20,000), and
/// the time from a kill -9 of a partition's leader to the first
/// acknowledgement of a record sent after it (idempotent producer, 2,000
/// msgs/s). Vltava runs with its default `--durability fsync`, Kafka with
/// its default (page cache).
#[test]
#[ignore]
fn replicated_produce() {
    use rdkafka::producer::Producer;
    let kafka = std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS").is_some();
    let system = if kafka {
        "Apache Kafka 4.4.0"
    } else {
        "Vltava (fsync)"
    };
    let rate: f64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000.0);
    let mut cluster = Cluster::start(3, "min.insync.replicas=2\n");
    let bootstrap = cluster.bootstrap();
    let admin = admin_client(&bootstrap);
    for (name, partitions) in [("rf3", 6), ("rf3-rate", 6), ("rf3-failover", 1)] {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(3));
        let created = block_on(
            Duration::from_secs(60),
            admin.create_topics([&topic], &admin_opts()),
        )
        .expect("CreateTopics");
        assert_eq!(created, vec![Ok(name.to_string())]);
    }
    // Warm up: connections, metadata, the first appends.
    let producer = timed_producer(&bootstrap, false);
    send_timed(&producer, "rf3", 6, 20_000, 1024, None, || {});
    drop(producer);

    let count = 300_000;
    let producer = timed_producer(&bootstrap, false);
    let started = Instant::now();
    send_timed(&producer, "rf3", 6, count, 1024, None, || {});
    let took = started.elapsed().as_secs_f64();
    println!(
        "{system}: RF 3 acks=all produce, {count} x 1 KiB: {:.0} msgs/s ({:.1} MB/s)",
        count as f64 / took,
        count as f64 * 1024.0 / took / 1e6
    );
    drop(producer);

    let count = (rate * 30.0) as usize;
    let producer = timed_producer(&bootstrap, false);
    send_timed(&producer, "rf3-rate", 6, count, 1024, Some(rate), || {});
    let sent = producer.context().sent.lock().unwrap().clone();
    let acked = producer.context().acked.lock().unwrap().clone();
    // The steady part: past the first 5 s.
    let skip = (rate * 5.0) as usize;
    let mut latencies: Vec<f64> = sent
        .iter()
        .zip(&acked)
        .skip(skip)
        .filter_map(|(s, a)| a.and_then(|(at, ok)| ok.then(|| (at - *s).as_secs_f64() * 1e3)))
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{system}: RF 3 acks=all ack latency at {rate:.0} msgs/s (steady 25 s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    drop(producer);

    let leader = {
        let m = metadata(cluster.addr(1), "rf3-failover").expect("metadata");
        m.topics[0].partitions[0].leader_id.0
    };
    let producer = timed_producer(&bootstrap, true);
    let mut killed_at = None;
    send_timed(
        &producer,
        "rf3-failover",
        1,
        40_000,
        1024,
        Some(2_000.0),
        || {
            killed_at = Some(Instant::now());
            cluster.kill9(leader);
        },
    );
    let killed_at = killed_at.expect("killed");
    let sent = producer.context().sent.lock().unwrap().clone();
    let acked = producer.context().acked.lock().unwrap().clone();
    let first_after = sent
        .iter()
        .zip(&acked)
        .filter(|(s, _)| **s >= killed_at)
        .filter_map(|(_, a)| a.and_then(|(at, ok)| ok.then_some(at)))
        .min()
        .expect("a record sent after the kill was acknowledged");
    let failed = acked
        .iter()
        .filter(|a| !matches!(a, Some((_, true))))
        .count();
    println!(
        "{system}: kill -9 of the leader (node {leader}) to the first acknowledged record sent after it: {:.2} s ({failed} records not acknowledged)",
        (first_after - killed_at).as_secs_f64()
    );
}
