//! Replicated partitions on three nodes (combined roles), from Kafka
//! `server.properties` files: a topic with replication factor 3 keeps every
//! acknowledged record through a kill -9 of its leader (an idempotent
//! librdkafka producer with acks=all carries on by itself), followers end
//! byte-identical to the leader, `min.insync.replicas` refuses writes the
//! ISR cannot keep, and a leader's SIGTERM moves leadership without a single
//! delivery error.
//!
//! With `VLTAVA_CLUSTER_KAFKA_LIBS` set the same tests run against Apache
//! Kafka (the reference run; see `common/cluster.rs`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{find_coordinator, Cluster, GROUP};
use common::raw::{produce_one, RawClient};
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::Message;

/// How long a change may take to reach every node (a fencing waits for
/// `broker.session.timeout.ms`, set to 3 s here).
const SETTLE: Duration = Duration::from_secs(30);

/// Settings every test's nodes share: a short broker session, so a killed
/// broker is fenced (and leaves ISRs) within seconds.
const EXTRA: &str = "broker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500\n";

fn metadata(addr: std::net::SocketAddr, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    RawClient::connect(addr).send(12, &req)
}

/// (leader, isr) of partition 0 of `topic` as node `addr` sees it.
fn leader_and_isr(addr: std::net::SocketAddr, topic: &str) -> Option<(i32, Vec<i32>)> {
    let m = metadata(addr, topic);
    let t = m.topics.first()?;
    let p = t.partitions.iter().find(|p| p.partition_index == 0)?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    (t.error_code == 0).then_some((p.leader_id.0, isr))
}

/// Waits until node `addr` reports partition 0 of `topic` with a leader
/// that `ok` accepts, and returns it with the ISR.
fn wait_for(
    addr: std::net::SocketAddr,
    topic: &str,
    what: &str,
    ok: impl Fn(i32, &[i32]) -> bool,
) -> (i32, Vec<i32>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = leader_and_isr(addr, topic);
        if let Some((leader, isr)) = &seen {
            if ok(*leader, isr) {
                return (*leader, isr.clone());
            }
        }
        assert!(Instant::now() < deadline, "{what}: last seen {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_replicated(bootstrap: &str, name: &str, min_insync: &str) {
    let admin = admin_client(bootstrap);
    let topic =
        NewTopic::new(name, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", min_insync);
    let results = block_on(
        Duration::from_secs(30),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics request failed");
    assert_eq!(results, vec![Ok(name.to_string())]);
}

/// Creates `name` with one partition on `replicas` (the first preferred).
fn create_assigned(bootstrap: &str, name: &str, replicas: &[i32]) {
    let admin = admin_client(bootstrap);
    let assignment = [replicas];
    let topic = NewTopic::new(name, 1, TopicReplication::Variable(&assignment));
    let results = block_on(
        Duration::from_secs(30),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics request failed");
    assert_eq!(results, vec![Ok(name.to_string())]);
}

fn idempotent_producer(bootstrap: &str) -> RecordingProducer {
    let mut config = producer_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "2");
    recording_producer(&config)
}

/// Produces `count` records `r{i}` to partition 0, calling `midway` once
/// `at` of them are acknowledged; returns every outcome, in order.
fn produce_through(
    producer: &RecordingProducer,
    topic: &str,
    count: usize,
    at: usize,
    mut midway: impl FnMut(),
) -> Vec<Outcome> {
    use rdkafka::producer::Producer;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut fired = false;
    for i in 0..count {
        let msg = Out {
            value: format!("r{i}"),
            partition: Some(0),
            ..Out::default()
        };
        send_one(producer, topic, i, &msg, deadline);
        producer.poll(Duration::ZERO);
        if !fired && producer.context().outcomes.lock().unwrap().len() >= at {
            midway();
            fired = true;
        }
        if i % 100 == 99 {
            // Keep the stream steady rather than one burst.
            producer.poll(Duration::from_millis(5));
        }
    }
    if !fired {
        midway();
    }
    producer
        .flush(Duration::from_secs(90))
        .expect("every record reported within the timeout");
    let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
    assert_eq!(outcomes.len(), count, "one report per record");
    outcomes.into_values().collect()
}

/// Every record acknowledged, at offsets 0..count in produce order, and
/// read back exactly once, in order, at its offset.
fn assert_all_acked_and_read_once(bootstrap: &str, topic: &str, outcomes: &[Outcome]) {
    let mut offsets = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Ok(acked) => offsets.push(acked.offset),
            Err(e) => panic!("record {i} was not acknowledged: {e}"),
        }
    }
    let expected: Vec<i64> = (0..outcomes.len() as i64).collect();
    assert_eq!(offsets, expected, "acknowledged offsets, in produce order");
    let got = consume_exactly(
        bootstrap,
        topic,
        &BTreeMap::from([(0, outcomes.len())]),
        Duration::from_secs(60),
    );
    let read: Vec<(i64, String)> = got[&0]
        .iter()
        .map(|m| (m.offset(), value_str(m).unwrap_or_default()))
        .collect();
    let want: Vec<(i64, String)> = (0..outcomes.len())
        .map(|i| (i as i64, format!("r{i}")))
        .collect();
    assert_eq!(read, want, "records read back");
}

/// The bytes of a replica's log (its segments in order), for comparing
/// replicas once they are in step.
fn log_bytes(data_dir: &std::path::Path, topic: &str) -> Vec<u8> {
    let dir = data_dir.join(format!("{topic}-0"));
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments
        .iter()
        .flat_map(|p| std::fs::read(p).expect("read segment"))
        .collect()
}

#[test]
fn an_idempotent_acks_all_producer_loses_nothing_when_the_leader_is_killed() {
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "replicated";
    create_replicated(&bootstrap, topic, "2");
    let (leader, _) = wait_for(cluster.addr(1), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [1, 2, 3]
    });

    let producer = idempotent_producer(&bootstrap);
    let outcomes = produce_through(&producer, topic, 6_000, 2_000, || cluster.kill9(leader));
    drop(producer);
    let survivor = if leader == 1 { 2 } else { 1 };
    let (new_leader, isr) = wait_for(cluster.addr(survivor), topic, "a new leader", |l, isr| {
        l > 0 && l != leader && !isr.contains(&leader)
    });
    assert_eq!(isr.len(), 2, "the two survivors are in sync: {isr:?}");
    assert_all_acked_and_read_once(&cluster.addr(new_leader).to_string(), topic, &outcomes);

    // The killed leader comes back, cuts whatever tail it had that the
    // others never took, catches up and rejoins the ISR; then every
    // replica's log is the same bytes.
    cluster.restart(leader);
    wait_for(
        cluster.addr(survivor),
        topic,
        "the old leader back in sync",
        |_, isr| isr == [1, 2, 3],
    );
    let logs: Vec<Vec<u8>> = cluster
        .nodes
        .iter()
        .map(|n| log_bytes(&n.data_dir, topic))
        .collect();
    assert!(!logs[0].is_empty());
    assert_eq!(logs[0], logs[1], "replicas on nodes 1 and 2 differ");
    assert_eq!(logs[0], logs[2], "replicas on nodes 1 and 3 differ");
    assert_all_acked_and_read_once(&cluster.addr(leader).to_string(), topic, &outcomes);
}

/// One acks=all produce of one record, straight to `addr`.
fn produce_raw(addr: std::net::SocketAddr, topic: &str, value: &str) -> (i16, i64) {
    produce_one(addr, topic, value, -1)
}

#[test]
fn an_isr_smaller_than_min_insync_replicas_refuses_acks_all_and_stores_nothing() {
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "strict";
    create_replicated(&bootstrap, topic, "3");
    let (leader, _) = wait_for(cluster.addr(1), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [1, 2, 3]
    });
    let at = cluster.addr(leader);
    assert_eq!(produce_raw(at, topic, "a"), (0, 0));
    assert_eq!(produce_raw(at, topic, "b"), (0, 1));

    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill9(follower);
    wait_for(at, topic, "the follower out of the ISR", |l, isr| {
        l == leader && isr.len() == 2
    });
    const NOT_ENOUGH_REPLICAS: i16 = 19;
    assert_eq!(produce_raw(at, topic, "refused"), (NOT_ENOUGH_REPLICAS, -1));

    cluster.restart(follower);
    wait_for(at, topic, "the follower back in sync", |l, isr| {
        l == leader && isr == [1, 2, 3]
    });
    assert_eq!(
        produce_raw(at, topic, "c"),
        (0, 2),
        "nothing refused was stored"
    );
    let got = consume_exactly(
        &bootstrap,
        topic,
        &BTreeMap::from([(0, 3)]),
        Duration::from_secs(30),
    );
    let values: Vec<String> = got[&0].iter().filter_map(value_str).collect();
    assert_eq!(values, ["a", "b", "c"]);
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_without_a_delivery_error() {
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "handover";
    create_replicated(&bootstrap, topic, "2");
    let (leader, _) = wait_for(cluster.addr(1), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [1, 2, 3]
    });
    let producer = idempotent_producer(&bootstrap);
    let outcomes = produce_through(&producer, topic, 4_000, 1_500, || cluster.stop(leader));
    drop(producer);
    let survivor = if leader == 1 { 2 } else { 1 };
    let (new_leader, _) = wait_for(cluster.addr(survivor), topic, "a new leader", |l, _| {
        l > 0 && l != leader
    });
    assert_all_acked_and_read_once(&cluster.addr(new_leader).to_string(), topic, &outcomes);
}

#[test]
fn a_consumer_group_keeps_its_offsets_and_carries_on_when_its_coordinator_is_killed() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let extra = format!(
        "{EXTRA}offsets.topic.replication.factor=3\n\
         transaction.state.log.replication.factor=3\n\
         transaction.state.log.min.isr=2\n\
         offsets.topic.num.partitions=3\n"
    );
    let mut cluster = Cluster::start(3, &extra);
    let bootstrap = cluster.bootstrap();
    let topic = "orders";
    create_replicated(&bootstrap, topic, "2");
    wait_for(cluster.addr(1), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [1, 2, 3]
    });
    let producer = idempotent_producer(&bootstrap);
    let outcomes = produce_through(&producer, topic, 2_000, 2_000, || {});
    drop(producer);
    assert!(outcomes.iter().all(|o| o.is_ok()));

    let group = "survivors";
    let coordinator = find_coordinator(cluster.addr(1), group, GROUP);
    let mut config = consumer_config(&bootstrap);
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500");
    let consumer: BaseConsumer = config.create().expect("group consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let poll_until =
        |consumer: &BaseConsumer, n: usize, seen: &mut std::collections::BTreeSet<i64>| {
            while seen.len() < n {
                assert!(
                    Instant::now() < deadline,
                    "the group read {} of {n}",
                    seen.len()
                );
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    assert_eq!(value_str(&m), Some(format!("r{}", m.offset())));
                    seen.insert(m.offset());
                }
            }
        };
    poll_until(&consumer, 800, &mut seen);
    let position = consumer.position().expect("position");
    consumer
        .commit(&position, CommitMode::Sync)
        .expect("commit before the kill");
    let committed_before = position.elements()[0].offset();

    cluster.kill9(coordinator);
    let survivor = if coordinator == 1 { 2 } else { 1 };
    // Another broker coordinates the group now, from the replicated
    // __consumer_offsets: it has the offsets committed before the kill.
    let deadline_moved = Instant::now() + SETTLE;
    let moved = loop {
        let c = find_coordinator(cluster.addr(survivor), group, GROUP);
        if c != coordinator && c > 0 {
            break c;
        }
        assert!(
            Instant::now() < deadline_moved,
            "the coordinator never moved"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let reader: BaseConsumer = consumer_config(&cluster.addr(moved).to_string())
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, 0);
    let deadline_committed = Instant::now() + SETTLE;
    let committed = loop {
        match reader.committed_offsets(wanted.clone(), Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) => assert!(Instant::now() < deadline_committed, "OffsetFetch: {e}"),
        }
    };
    assert_eq!(
        committed.elements()[0].offset(),
        committed_before,
        "the new coordinator has the offsets committed before the kill"
    );

    // The member finds the new coordinator by itself and reads on.
    poll_until(&consumer, 2_000, &mut seen);
    assert_eq!(seen, (0..2_000).collect());
    let end = TopicPartitionList::from_topic_map(
        &[((topic.to_string(), 0), Offset::Offset(2_000))].into(),
    )
    .expect("tpl");
    consumer
        .commit(&end, CommitMode::Sync)
        .expect("commit to the new coordinator");
    let committed = reader
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("OffsetFetch");
    assert_eq!(committed.elements()[0].offset(), Offset::Offset(2_000));
}

/// Beyond Kafka, so Vltava only (Kafka waits out the session): a leader
/// killed with kill -9 is fenced, and its partition led by another replica,
/// as soon as the active controller finds its listener refusing connections
/// (probed once its heartbeat is a quarter of a session late), long before
/// the 40 s session would end.
#[test]
fn a_killed_leader_is_replaced_long_before_its_session_ends() {
    if std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS").is_some() {
        return;
    }
    let mut cluster = Cluster::start(
        3,
        "broker.session.timeout.ms=40000\nbroker.heartbeat.interval.ms=500\n",
    );
    let topic = "probed";
    create_replicated(&cluster.bootstrap(), topic, "2");
    let (leader, _) = wait_for(cluster.addr(1), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [1, 2, 3]
    });
    cluster.kill9(leader);
    let survivor = if leader == 1 { 2 } else { 1 };
    // SETTLE (30 s) is shorter than the session: only the probe fences in time.
    let (_, isr) = wait_for(cluster.addr(survivor), topic, "a new leader", |l, isr| {
        l > 0 && l != leader && !isr.contains(&leader)
    });
    assert_eq!(isr.len(), 2, "{isr:?}");
}

/// (offset, value) of every record a consumer's Fetch from `addr` gets from
/// partition 0 of `topic`, from offset 0 up to the high watermark.
fn read_visible(addr: std::net::SocketAddr, topic: &str) -> Vec<(i64, String)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    use kafka_protocol::records::RecordBatchDecoder;
    let mut client = RawClient::connect(addr);
    let mut records = Vec::new();
    loop {
        let offset = records.last().map_or(0, |(o, _): &(i64, String)| o + 1);
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp = client.send(12, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch from {addr}");
        let mut bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return records;
        }
        while !bytes.is_empty() {
            let set = RecordBatchDecoder::decode(&mut bytes).expect("decode fetched batch");
            for r in set.records {
                let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
                records.push((r.offset, v));
            }
        }
    }
}

/// KIP-101/279: a leader that took writes its followers never fetched
/// (acks=1, the followers stopped with SIGSTOP) is killed; the others elect
/// a leader and take new writes at offsets the old one had filled; the old
/// leader comes back, cuts its divergent tail and catches up. No consumer ever saw the lost records
/// (they never passed the high watermark), and every replica ends with the
/// same bytes. Three controllers and three brokers, so stopping two
/// brokers leaves the controller quorum whole.
#[test]
fn a_returning_leader_cuts_the_tail_nobody_else_took_and_no_reader_saw() {
    let mut cluster = Cluster::start_roles(
        &[
            "controller",
            "controller",
            "controller",
            "broker",
            "broker",
            "broker",
        ],
        EXTRA,
    );
    let bootstrap = [4, 5, 6].map(|id| cluster.addr(id).to_string()).join(",");
    let topic = "diverging";
    create_replicated(&bootstrap, topic, "1");
    let (leader, _) = wait_for(cluster.addr(4), topic, "all three in sync", |l, isr| {
        l > 0 && isr == [4, 5, 6]
    });
    let at = cluster.addr(leader);
    for i in 0..10 {
        assert_eq!(produce_raw(at, topic, &format!("kept-{i}")), (0, i));
    }
    let mut seen: Vec<Vec<(i64, String)>> = vec![read_visible(at, topic)];

    // The followers stop fetching; the leader takes five acks=1 writes only
    // it will ever have. Readers see none of them: the high watermark stays.
    let followers: Vec<i32> = [4, 5, 6].into_iter().filter(|id| *id != leader).collect();
    for f in &followers {
        cluster.signal(*f, "STOP");
    }
    for i in 0..5 {
        assert_eq!(produce_one(at, topic, &format!("lost-{i}"), 1), (0, 10 + i));
    }
    seen.push(read_visible(at, topic));
    cluster.kill9(leader);
    for f in &followers {
        cluster.signal(*f, "CONT");
    }

    // A follower leads now and takes new writes after what it has. A
    // stopped follower may still take the one answer to a fetch that was
    // waiting when it stopped, so it can hold the first lost records; it
    // cannot hold all five.
    let (new_leader, isr) = wait_for(
        cluster.addr(followers[0]),
        topic,
        "a new leader",
        |l, isr| l > 0 && l != leader && !isr.contains(&leader),
    );
    assert_eq!(isr, followers);
    let at = cluster.addr(new_leader);
    let (code, end) = produce_raw(at, topic, "new-0");
    assert_eq!(code, 0);
    assert!(
        (10..15).contains(&end),
        "the new leader's log ends at {end}"
    );
    for i in 1..3 {
        assert_eq!(produce_raw(at, topic, &format!("new-{i}")), (0, end + i));
    }
    seen.push(read_visible(at, topic));

    // The old leader returns, truncates, catches up and rejoins the ISR.
    cluster.restart(leader);
    wait_for(at, topic, "the old leader back in sync", |_, isr| {
        isr == [4, 5, 6]
    });
    let want: Vec<(i64, String)> = (0..10)
        .map(|i| (i, format!("kept-{i}")))
        .chain((10..end).map(|o| (o, format!("lost-{}", o - 10))))
        .chain((0..3).map(|i| (end + i, format!("new-{i}"))))
        .collect();
    for id in [4, 5, 6] {
        assert_eq!(
            log_bytes(&cluster.nodes[id as usize - 1].data_dir, topic),
            log_bytes(&cluster.nodes[new_leader as usize - 1].data_dir, topic),
            "node {id}'s replica"
        );
    }
    seen.push(read_visible(cluster.addr(new_leader), topic));
    // Every read saw a prefix of the final log: no offset ever held two records.
    for (i, read) in seen.iter().enumerate() {
        assert_eq!(read[..], want[..read.len()], "read {i}");
    }
    assert_eq!(seen[1].len(), 10, "the lost records were never visible");
    assert_eq!(seen.last().unwrap(), &want);
}

/// Partition 0 of `topic` as node `addr` sees it: (leader, replicas, isr).
fn replicas_of(addr: std::net::SocketAddr, topic: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let m = metadata(addr, topic);
    let t = m.topics.first()?;
    let p = t.partitions.iter().find(|p| p.partition_index == 0)?;
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let mut isr = ids(&p.isr_nodes);
    isr.sort();
    (t.error_code == 0).then_some((p.leader_id.0, ids(&p.replica_nodes), isr))
}

/// AlterPartitionReassignments of `topic`'s `(partition, replicas)`
/// (`None`: cancel) at `addr`: each partition's error code.
fn reassign_raw(
    addr: std::net::SocketAddr,
    topic: &str,
    moves: &[(i32, Option<Vec<i32>>)],
) -> Vec<(i32, i16)> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId};
    let partitions = moves
        .iter()
        .map(|(p, replicas)| {
            ReassignablePartition::default()
                .with_partition_index(*p)
                .with_replicas(
                    replicas
                        .as_ref()
                        .map(|r| r.iter().copied().map(BrokerId).collect()),
                )
        })
        .collect();
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(partitions)]);
    let response = RawClient::connect(addr).send(0, &req);
    assert_eq!(response.error_code, 0, "{response:?}");
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        })
        .collect()
}

/// The `vltava` CLI against `bootstrap`: (exit success, stdout).
fn vltava_cli(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args(args)
        .args(["-b", bootstrap, "--timeout-ms", "30000"])
        .output()
        .expect("run vltava");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty() || out.status.success(),
        "{args:?}: {stderr}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The acceptance's reassignment, through the Java AdminClient (the calls
/// kafka-reassign-partitions.sh makes) while an idempotent producer runs:
/// partition 0 moves from brokers [1, 2] to [3, 2]. Broker 3 is down when
/// the move starts, so ListPartitionReassignments shows it in progress
/// (3 being added, 1 removed); once 3 is back it copies the partition from
/// the leader, joins the ISR, and the controller drops 1, whose copy is
/// deleted. Every acknowledged record is there once, in order, and the
/// new replicas hold the same bytes. Then `vltava topic reassign` reorders
/// the replicas and `vltava topic elect-leaders` hands leadership to the
/// new preferred replica.
#[test]
fn a_partition_moves_to_new_replicas_under_a_running_producer() {
    use common::programs::java_main;
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "moving";
    create_assigned(&bootstrap, topic, &[1, 2]);
    wait_for(
        cluster.addr(1),
        topic,
        "1 leading, 1 and 2 in sync",
        |l, isr| l == 1 && isr == [1, 2],
    );
    // Kafka's answers to what cannot be done.
    assert_eq!(
        reassign_raw(
            cluster.addr(1),
            topic,
            &[(0, Some(vec![1, 9])), (1, Some(vec![1]))]
        ),
        vec![
            (0, ResponseError::InvalidReplicaAssignment.code()),
            (1, ResponseError::UnknownTopicOrPartition.code())
        ]
    );
    assert_eq!(
        reassign_raw(cluster.addr(1), topic, &[(0, Some(vec![2, 2])), (0, None)]),
        vec![
            (0, ResponseError::InvalidReplicaAssignment.code()),
            (0, ResponseError::NoReassignmentInProgress.code())
        ]
    );
    cluster.stop(3);

    let producer = idempotent_producer(&bootstrap);
    let mut listed = String::new();
    let outcomes = produce_through(&producer, topic, 6_000, 2_000, || {
        let out = java_main("vltava.compat.cluster.Reassign")
            .env("BOOTSTRAP", cluster.addr(1).to_string())
            .env("TOPIC", topic)
            .env("PARTITION", "0")
            .env("REPLICAS", "3,2")
            .output()
            .expect("run Reassign");
        listed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "{listed} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.restart(3);
    });
    drop(producer);
    assert_eq!(
        listed,
        r#"{"event":"reassigning","replicas":[3, 2, 1],"adding":[3],"removing":[1]}"#
    );

    let deadline = Instant::now() + SETTLE;
    let moved = loop {
        let seen = replicas_of(cluster.addr(2), topic);
        if let Some((leader, replicas, isr)) = &seen {
            if replicas == &[3, 2] && isr == &[2, 3] && *leader != 1 {
                break seen;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the move never completed: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (leader, _, _) = moved.expect("moved");
    assert_eq!(
        leader, 3,
        "the leader left; the first in-sync target replica leads"
    );
    assert_all_acked_and_read_once(&bootstrap, topic, &outcomes);
    let removed = cluster.nodes[0].data_dir.join(format!("{topic}-0"));
    let deadline = Instant::now() + SETTLE;
    while removed.exists() {
        assert!(Instant::now() < deadline, "broker 1 kept its copy");
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs: Vec<Vec<u8>> = [1, 2]
        .iter()
        .map(|i| log_bytes(&cluster.nodes[*i].data_dir, topic))
        .collect();
    assert!(!logs[0].is_empty());
    assert_eq!(logs[0], logs[1], "replicas on nodes 2 and 3 differ");

    // The CLI: a reorder completes at once (3 stays leader), then a
    // preferred election makes 2, now first, the leader.
    let addr = cluster.addr(2).to_string();
    assert_eq!(
        vltava_cli(&addr, &["topic", "reassign", topic, "0=2,3", "--wait"]),
        (
            true,
            format!("Reassigning {topic}-0 to [2, 3].\nReassignment of {topic} complete.\n")
        )
    );
    assert_eq!(
        vltava_cli(&addr, &["topic", "reassignments"]),
        (
            true,
            "No partition reassignment is in progress.\n".to_string()
        )
    );
    assert_eq!(
        replicas_of(cluster.addr(2), topic).map(|(l, r, _)| (l, r)),
        Some((3, vec![2, 3]))
    );
    assert_eq!(
        vltava_cli(&addr, &["topic", "elect-leaders", topic]),
        (
            true,
            format!(
                "Successfully completed leader election (PREFERRED) for partitions {topic}-0\n"
            )
        )
    );
    wait_for(cluster.addr(3), topic, "2 leading", |l, _| l == 2);
    assert_eq!(
        vltava_cli(&addr, &["topic", "elect-leaders", topic]),
        (
            true,
            format!("Valid replica already elected for partitions {topic}-0\n")
        )
    );
    assert_all_acked_and_read_once(&bootstrap, topic, &outcomes);
}

/// `auto.leader.rebalance.enable` (on by default, checked every
/// `leader.imbalance.check.interval.seconds`): partition 0's preferred
/// replica, stopped, loses leadership; back and in sync, the controller
/// hands it leadership again by itself.
#[test]
fn a_preferred_replica_back_in_sync_gets_its_leadership_back() {
    let extra = format!("{EXTRA}leader.imbalance.check.interval.seconds=1\n");
    let mut cluster = Cluster::start(3, &extra);
    let bootstrap = cluster.bootstrap();
    let topic = "balanced";
    create_assigned(&bootstrap, topic, &[2, 3, 1]);
    wait_for(
        cluster.addr(1),
        topic,
        "2 leading, all in sync",
        |l, isr| l == 2 && isr == [1, 2, 3],
    );
    cluster.stop(2);
    let (interim, _) = wait_for(cluster.addr(1), topic, "another leader", |l, isr| {
        l > 0 && l != 2 && !isr.contains(&2)
    });
    assert_eq!(interim, 3, "the next in-sync replica in replica order");
    // A client (which follows NOT_LEADER_OR_FOLLOWER to the leader a node
    // that has not applied the change yet points it to) writes on.
    let acked_offset = |value: &str| {
        use rdkafka::producer::Producer;
        let producer = idempotent_producer(&bootstrap);
        let deadline = Instant::now() + SETTLE;
        let msg = Out {
            value: value.to_string(),
            partition: Some(0),
            ..Out::default()
        };
        send_one(&producer, topic, 0, &msg, deadline);
        producer.flush(Duration::from_secs(30)).expect("flush");
        let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
        match outcomes.into_values().next() {
            Some(Ok(acked)) => acked.offset,
            other => panic!("{value}: {other:?}"),
        }
    };
    assert_eq!(acked_offset("while 2 was away"), 0);
    cluster.restart(2);
    wait_for(cluster.addr(1), topic, "2 leading again", |l, isr| {
        l == 2 && isr == [1, 2, 3]
    });
    assert_eq!(acked_offset("back"), 1);
    assert_eq!(
        leader_and_isr(cluster.addr(2), topic),
        Some((2, vec![1, 2, 3]))
    );
}
