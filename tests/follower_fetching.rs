//! Follower fetching (KIP-392) on three nodes, each in its own rack
//! (`broker.rack=rack-<id>`) with `replica.selector.class` set to Kafka's
//! `RackAwareReplicaSelector`: a leader sends a consumer whose `client.rack`
//! is a follower's rack to that follower (`preferred_read_replica`, no
//! records), and the follower serves it up to its own high watermark.
//!
//! With `VLTAVA_CLUSTER_KAFKA_LIBS` set the same tests run against Apache
//! Kafka (the reference run; see `common/cluster.rs`); only the Vltava
//! metrics check is skipped there.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::Cluster;
use common::raw::{produce_one, RawClient};
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::Message;

/// Every node in its own rack, consumers sent to their rack's replica, and
/// a short broker session as in the other cluster tests.
const EXTRA: &str = "broker.rack=rack-{node.id}\n\
    replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector\n\
    broker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500\n";

/// How long a change may take to reach every node.
const SETTLE: Duration = Duration::from_secs(30);

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn metadata(addr: SocketAddr, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]));
    RawClient::connect(addr).send(12, &req)
}

/// (leader, leader epoch, sorted ISR) of partition 0 of `topic` as `addr` sees it.
fn leadership(addr: SocketAddr, topic: &str) -> Option<(i32, i32, Vec<i32>)> {
    let m = metadata(addr, topic);
    let t = m.topics.first()?;
    let p = t.partitions.iter().find(|p| p.partition_index == 0)?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    (t.error_code == 0).then_some((p.leader_id.0, p.leader_epoch, isr))
}

/// Creates `topic` (one partition, three replicas) and waits until every
/// node sees all three in sync; returns (leader, leader epoch).
fn create_in_sync(cluster: &Cluster, topic: &str) -> (i32, i32) {
    let admin = admin_client(&cluster.bootstrap());
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(3));
    let results = block_on(SETTLE, admin.create_topics([&new], &admin_opts()))
        .expect("CreateTopics request failed");
    assert_eq!(results, vec![Ok(topic.to_string())]);
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen: Vec<_> = (1..=3)
            .map(|id| leadership(cluster.addr(id), topic))
            .collect();
        if let Some((leader, epoch, isr)) = seen[0].clone() {
            if leader > 0 && isr == [1, 2, 3] && seen.iter().all(|s| s == &seen[0]) {
                return (leader, epoch);
            }
        }
        assert!(Instant::now() < deadline, "all three in sync: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A consumer's Fetch of partition 0 of `topic` from `offset` at `version`,
/// from a client in `rack` ("" for none).
fn consumer_fetch(
    addr: SocketAddr,
    version: i16,
    topic: &str,
    offset: i64,
    rack: &str,
    leader_epoch: i32,
    max_wait_ms: i32,
) -> PartitionData {
    let req = fetch_request(topic, offset, rack, leader_epoch, max_wait_ms);
    fetch_one(addr, version, &req)
}

/// `consumer_fetch` at `isolation_level` (1: read_committed), not waiting.
fn consumer_fetch_isolated(
    addr: SocketAddr,
    version: i16,
    topic: &str,
    offset: i64,
    rack: &str,
    leader_epoch: i32,
    isolation_level: i8,
) -> PartitionData {
    let req =
        fetch_request(topic, offset, rack, leader_epoch, 0).with_isolation_level(isolation_level);
    fetch_one(addr, version, &req)
}

/// Sends a Fetch of one partition to `addr`: that partition's answer.
fn fetch_one(addr: SocketAddr, version: i16, req: &FetchRequest) -> PartitionData {
    let mut resp = RawClient::connect(addr).send(version, req);
    resp.responses.remove(0).partitions.remove(0)
}

fn fetch_request(
    topic: &str,
    offset: i64,
    rack: &str,
    leader_epoch: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_rack_id(StrBytes::from_string(rack.to_string()))
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// (offset, value) of every record in a fetched record set.
fn records(data: &PartitionData) -> Vec<(i64, String)> {
    let mut bytes: Bytes = data.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).expect("decode fetched batch");
        for r in set.records {
            let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).expect("utf-8");
            out.push((r.offset, v));
        }
    }
    out
}

/// What a consumer fetch is answered with, leaving the records aside:
/// (error, preferred read replica, high watermark, last stable offset,
/// log start offset).
fn offsets(data: &PartitionData) -> (i16, i32, i64, i64, i64) {
    (
        data.error_code,
        data.preferred_read_replica.0,
        data.high_watermark,
        data.last_stable_offset,
        data.log_start_offset,
    )
}

#[test]
fn a_leader_sends_a_consumer_to_its_racks_follower_which_serves_it_up_to_its_high_watermark() {
    let cluster = Cluster::start(3, EXTRA);
    let topic = "racked";

    // Each broker's rack reaches the metadata image and every node's Metadata.
    let brokers = MetadataRequest::default().with_topics(Some(vec![]));
    let racks: BTreeMap<i32, Option<String>> = RawClient::connect(cluster.addr(1))
        .send(12, &brokers)
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect();
    let want: BTreeMap<i32, Option<String>> =
        (1..=3).map(|id| (id, Some(format!("rack-{id}")))).collect();
    assert_eq!(racks, want);

    let (leader, epoch) = create_in_sync(&cluster, topic);
    let at = cluster.addr(leader);
    for i in 0..10 {
        assert_eq!(produce_one(at, topic, &format!("v{i}"), -1), (NONE, i));
    }
    let want: Vec<(i64, String)> = (0..10).map(|i| (i, format!("v{i}"))).collect();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let rack = format!("rack-{follower}");

    // The leader answers a consumer in the follower's rack with the
    // follower and no records, the offsets as usual.
    let sent_away = consumer_fetch(at, 12, topic, 0, &rack, epoch, 500);
    assert_eq!(offsets(&sent_away), (NONE, follower, 10, 10, 0));
    assert_eq!(sent_away.records.as_deref().map(<[u8]>::len), Some(0));
    // read_committed alike: the last stable offset, and no aborted
    // transactions (null: nothing was read).
    let committed = consumer_fetch_isolated(at, 12, topic, 0, &rack, epoch, 1);
    assert_eq!(offsets(&committed), (NONE, follower, 10, 10, 0));
    assert_eq!(committed.aborted_transactions, None);
    // Without a rack, or in a rack no replica is in, the leader serves it.
    for rack in ["", "rack-9"] {
        let served = consumer_fetch(at, 12, topic, 0, rack, epoch, 500);
        assert_eq!(offsets(&served), (NONE, -1, 10, 10, 0), "rack {rack:?}");
        assert_eq!(records(&served), want, "rack {rack:?}");
    }

    // The follower serves the same fetch once its high watermark, learnt
    // from the leader's fetch responses, has reached the end; each fetch
    // long-polls until it moves.
    let there = cluster.addr(follower);
    let deadline = Instant::now() + SETTLE;
    let mut hw = 0;
    while hw < 10 {
        let data = consumer_fetch(there, 12, topic, hw, &rack, epoch, 1_000);
        assert_eq!(data.error_code, NONE, "fetch from the follower at {hw}");
        hw = data.high_watermark;
        assert!(
            Instant::now() < deadline,
            "the follower's high watermark: {hw}"
        );
    }
    let served = consumer_fetch(there, 12, topic, 0, &rack, epoch, 500);
    assert_eq!(offsets(&served), (NONE, -1, 10, 10, 0));
    assert_eq!(records(&served), want);
    let tail = consumer_fetch(there, 12, topic, 7, &rack, epoch, 500);
    assert_eq!(records(&tail), want[7..].to_vec());

    // An offset past the follower's log: OFFSET_OUT_OF_RANGE, as from a
    // leader. A leader epoch the follower does not know yet: retriable.
    // Before v11 (no client metadata) only the leader serves.
    let past = consumer_fetch(there, 12, topic, 11, &rack, epoch, 0);
    assert_eq!(past.error_code, OFFSET_OUT_OF_RANGE);
    let newer = consumer_fetch(there, 12, topic, 0, &rack, epoch + 1, 0);
    assert_eq!(newer.error_code, UNKNOWN_LEADER_EPOCH);
    let old = consumer_fetch(there, 10, topic, 0, "", -1, 0);
    assert_eq!(old.error_code, NOT_LEADER_OR_FOLLOWER);
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect admin listener");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    raw.split_once("\r\n\r\n")
        .expect("header/body split")
        .1
        .to_string()
}

/// The records node `id` sent to consumers of `topic`, from its /metrics.
fn messages_out(cluster: &mut Cluster, id: i32, topic: &str) -> u64 {
    let admin = cluster.broker(id).admin_addr();
    let sample = format!("vltava_topic_messages_out_total{{topic=\"{topic}\"}} ");
    http_get(admin, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(sample.as_str()))
        .map_or(0, |v| v.trim().parse().expect("a counter"))
}

#[test]
fn a_consumer_with_a_client_rack_reads_every_record_once_in_order_from_its_racks_follower() {
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "near";
    let (leader, _) = create_in_sync(&cluster, topic);
    let msgs: Vec<Out> = (0..500)
        .map(|i| Out {
            value: format!("m{i}"),
            partition: Some(0),
            ..Out::default()
        })
        .collect();
    let acked = produce_all_acked(&producer_config(&bootstrap), topic, &msgs, SETTLE);
    let acked: Vec<i64> = acked.iter().map(|a| a.offset).collect();
    assert_eq!(acked, (0..500).collect::<Vec<i64>>());

    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let mut config = consumer_config(&bootstrap);
    config.set("client.rack", format!("rack-{follower}"));
    let got = consume_exactly_with(config, topic, &BTreeMap::from([(0, 500)]), SETTLE);
    let read: Vec<(i64, String)> = got[&0]
        .iter()
        .map(|m| (m.offset(), value_str(m).unwrap_or_default()))
        .collect();
    let want: Vec<(i64, String)> = (0..500).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(read, want);

    // Vltava's per-topic fetch counters (consumer fetches only) show where
    // the records came from: all from the follower, none from the leader.
    if std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS").is_none() {
        assert_eq!(messages_out(&mut cluster, follower, topic), 500);
        assert_eq!(messages_out(&mut cluster, leader, topic), 0);
    }
}
