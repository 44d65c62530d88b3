//! Three Vltava nodes started from Kafka KRaft `server.properties` files
//! (combined roles, `controller.quorum.voters`) form one cluster: every node
//! lists every broker and the same leaders, a topic created through one node
//! spreads its partitions over all three, clients produce and consume across
//! them, and a consumer group finds its coordinator on the leader of its
//! `__consumer_offsets` partition.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{find_coordinator, Cluster, GROUP, TRANSACTION};
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    DescribeQuorumRequest, GroupId, HeartbeatRequest, InitProducerIdRequest, MetadataRequest,
    MetadataResponse, ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

/// How long a change may take to reach every node's metadata image.
const PROPAGATION: Duration = Duration::from_secs(20);

fn metadata(addr: std::net::SocketAddr, topic: &str) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    RawClient::connect(addr).send(12, &req)
}

/// (leader, leader epoch, replicas, isr) per partition, and the brokers
/// (id, port) a node's Metadata lists.
type View = (Vec<(i32, i32, Vec<i32>, Vec<i32>)>, Vec<(i32, i32)>);

fn view(m: &MetadataResponse) -> View {
    let mut brokers: Vec<(i32, i32)> = m.brokers.iter().map(|b| (b.node_id.0, b.port)).collect();
    brokers.sort();
    let mut sorted: Vec<_> = m.topics.iter().flat_map(|t| t.partitions.iter()).collect();
    sorted.sort_by_key(|p| p.partition_index);
    let partitions = sorted
        .into_iter()
        .map(|p| {
            (
                p.leader_id.0,
                p.leader_epoch,
                p.replica_nodes.iter().map(|b| b.0).collect(),
                p.isr_nodes.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    (partitions, brokers)
}

/// Waits until node `addr` lists `topic` with `partitions` partitions.
fn wait_for_topic(addr: std::net::SocketAddr, topic: &str, partitions: usize) -> MetadataResponse {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let m = metadata(addr, topic);
        if m.topics[0].error_code == 0 && m.topics[0].partitions.len() == partitions {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never listed {topic}: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_form_one_cluster_from_kafka_server_properties() {
    let cluster = Cluster::start(3, "");
    let ports: Vec<(i32, i32)> = (1..=3)
        .map(|id| (id, i32::from(cluster.addr(id).port())))
        .collect();

    // Created through node 2 only.
    create_topic(&cluster.addr(2).to_string(), "orders", 12);
    // More replicas than brokers cannot be placed.
    let admin = admin_client(&cluster.addr(3).to_string());
    let four = rdkafka::admin::NewTopic::new("four", 1, rdkafka::admin::TopicReplication::Fixed(4));
    let refused = block_on(
        Duration::from_secs(20),
        admin.create_topics([&four], &admin_opts()),
    )
    .expect("CreateTopics");
    assert_eq!(
        refused,
        vec![Err((
            "four".to_string(),
            rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor
        ))]
    );

    let views: Vec<View> = (1..=3)
        .map(|id| view(&wait_for_topic(cluster.addr(id), "orders", 12)))
        .collect();
    assert_eq!(views[0], views[1], "nodes 1 and 2 agree");
    assert_eq!(views[0], views[2], "nodes 1 and 3 agree");
    let (partitions, brokers) = &views[0];
    assert_eq!(brokers, &ports, "every broker, with its advertised port");
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for (leader, epoch, replicas, isr) in partitions {
        assert_eq!((*epoch, replicas, isr), (0, &vec![*leader], &vec![*leader]));
        *led.entry(*leader).or_default() += 1;
    }
    assert_eq!(
        led,
        BTreeMap::from([(1, 4), (2, 4), (3, 4)]),
        "leaders spread evenly"
    );
    let answers: Vec<MetadataResponse> = (1..=3)
        .map(|id| metadata(cluster.addr(id), "orders"))
        .collect();
    let cluster_id = answers[0].cluster_id.clone().expect("a cluster id");
    assert_eq!(cluster_id.len(), 22, "Kafka's base64 uuid");
    for m in &answers {
        assert_eq!(m.cluster_id.as_ref(), Some(&cluster_id), "one cluster id");
        assert!(
            (1..=3).contains(&m.controller_id.0),
            "{:?}",
            m.controller_id
        );
    }
    // One active controller, the same seen from every node, among the voters.
    let controller_ports: Vec<u16> = cluster.nodes.iter().map(|n| n.controller_port).collect();
    let (leader, voters, ports) = quorum(cluster.addr(1));
    assert!((1..=3).contains(&leader));
    assert_eq!((voters, ports), (vec![1, 2, 3], controller_ports));
    for id in 2..=3 {
        assert_eq!(quorum(cluster.addr(id)).0, leader, "node {id} agrees");
    }

    // A partition another node leads is answered NOT_LEADER_OR_FOLLOWER.
    let elsewhere = partitions.iter().position(|p| p.0 != 1).unwrap() as i32;
    let consumer: BaseConsumer = consumer_config(&cluster.addr(1).to_string())
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks("orders", elsewhere, Duration::from_secs(10))
        .expect("librdkafka follows the leader");
    assert_eq!((low, high), (0, 0));

    // The same through the raw protocol, with KIP-951's current leader and
    // its endpoint in the answer.
    let elsewhere_leader = partitions[elsewhere as usize].0;
    let produced = RawClient::connect(cluster.addr(1)).send(
        12,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(elsewhere)
                    .with_records(Some(common::raw::one_record_batch(b"misdirected")))])]),
    );
    let p = &produced.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (elsewhere_leader, 0)
    );
    let endpoints: Vec<(i32, i32)> = produced
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.port))
        .collect();
    assert_eq!(
        endpoints,
        vec![(
            elsewhere_leader,
            i32::from(cluster.addr(elsewhere_leader).port())
        )]
    );

    // Producer ids come from blocks the controller grants each broker:
    // never the same twice across the cluster.
    let mut ids: Vec<i64> = (1..=3)
        .flat_map(|id| [id, id])
        .map(|id| {
            // COORDINATOR_LOAD_IN_PROGRESS while the broker's first block of
            // ids is being granted (Kafka), asked again.
            let deadline = Instant::now() + PROPAGATION;
            loop {
                let r = RawClient::connect(cluster.addr(id)).send(
                    4,
                    &InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                );
                if r.error_code == 14 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                assert_eq!(r.error_code, 0, "{r:?}");
                break r.producer_id.0;
            }
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "{ids:?}");

    // Keyed records from one producer bootstrapped from every node.
    let bootstrap = cluster.bootstrap();
    let keys = 24;
    let msgs: Vec<Out> = (0..240)
        .map(|i| Out {
            key: Some(format!("key-{}", i % keys)),
            value: format!("value-{i}"),
            ..Out::default()
        })
        .collect();
    let acked = produce_all_acked(
        &producer_config(&bootstrap),
        "orders",
        &msgs,
        Duration::from_secs(30),
    );
    let per_partition = counts_per_partition(&acked);
    assert_eq!(per_partition.values().sum::<usize>(), 240);
    let expected: BTreeMap<i32, usize> = (0..12)
        .map(|p| (p, per_partition.get(&p).copied().unwrap_or(0)))
        .collect();
    let got = consume_exactly(&bootstrap, "orders", &expected, Duration::from_secs(30));
    for (p, messages) in &got {
        // The records each partition acknowledged, in the order sent, at
        // offsets 0, 1, 2, …
        let sent: Vec<(i64, String)> = acked
            .iter()
            .zip(&msgs)
            .filter(|(a, _)| a.partition == *p)
            .map(|(a, m)| (a.offset, m.value.clone()))
            .collect();
        let read: Vec<(i64, String)> = messages
            .iter()
            .map(|m| (m.offset(), value_str(m).unwrap()))
            .collect();
        assert_eq!(read, sent, "partition {p}");
        assert_eq!(
            sent.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            (0..sent.len() as i64).collect::<Vec<_>>()
        );
        for m in messages {
            let value = value_str(m).unwrap();
            let i: usize = value["value-".len()..].parse().unwrap();
            assert_eq!(key_str(m), Some(format!("key-{}", i % keys)));
        }
    }

    let group = "orders-readers";
    let mut config = consumer_config(&bootstrap);
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create().expect("group consumer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < 240 {
        assert!(Instant::now() < deadline, "the group read {read} of 240");
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.expect("group consumer error");
            read += 1;
        }
    }
    // The group's coordinator is the leader of its __consumer_offsets partition.
    let offsets = wait_for_topic(cluster.addr(1), "__consumer_offsets", 50);
    let partition = java_hash_partition(group, 50);
    let leader = offsets.topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .unwrap()
        .leader_id
        .0;
    for id in 1..=3 {
        let found = RawClient::connect(cluster.addr(id)).send(
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str(group))
                .with_key_type(0),
        );
        assert_eq!(
            (found.error_code, found.node_id.0),
            (0, leader),
            "from node {id}"
        );
        assert_eq!(found.port, i32::from(cluster.addr(leader).port()));
        // Only the coordinator answers for the group; the others send the
        // client back to FindCoordinator.
        let beat = RawClient::connect(cluster.addr(id)).send(
            4,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str(group)))
                .with_generation_id(1)
                .with_member_id(StrBytes::from_static_str("not-a-member")),
        );
        let expected = if id == leader { 25 } else { 16 };
        assert_eq!(
            beat.error_code, expected,
            "UNKNOWN_MEMBER_ID / NOT_COORDINATOR from node {id}"
        );
    }
    let position = consumer.position().expect("position");
    consumer
        .commit(&position, rdkafka::consumer::CommitMode::Sync)
        .expect("commit through the coordinator");
    let committed = consumer
        .committed(Duration::from_secs(10))
        .expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            // A partition no record went to has no position to commit.
            rdkafka::Offset::Invalid => 0,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(total, 240);
}

/// Kafka's `partitionFor`: Java's String.hashCode, made positive, modulo.
fn java_hash_partition(key: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (h & 0x7fff_ffff) % partitions
}

/// DescribeQuorum of the metadata log from node `addr`: (active
/// controller, voter ids, voters' controller ports).
fn quorum(addr: std::net::SocketAddr) -> (i32, Vec<i32>, Vec<u16>) {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default()])]);
    let r = RawClient::connect(addr).send(2, &req);
    assert_eq!(r.error_code, 0, "{r:?}");
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{r:?}");
    let mut voters: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id.0).collect();
    voters.sort();
    let mut ports: Vec<(i32, u16)> = r
        .nodes
        .iter()
        .map(|n| (n.node_id.0, n.listeners[0].port))
        .collect();
    ports.sort();
    (
        p.leader_id.0,
        voters,
        ports.into_iter().map(|(_, p)| p).collect(),
    )
}

/// Waits until node `addr`'s Metadata satisfies `ready`.
fn wait_until(
    addr: std::net::SocketAddr,
    topic: &str,
    what: &str,
    ready: impl Fn(&MetadataResponse) -> bool,
) -> MetadataResponse {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let m = metadata(addr, topic);
        if ready(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{addr}: never {what}: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn broker_ids(m: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    ids
}

#[test]
fn a_killed_controller_is_replaced_and_a_killed_broker_is_fenced_until_it_returns() {
    let mut cluster = Cluster::start(
        3,
        "broker.session.timeout.ms=2000\nbroker.heartbeat.interval.ms=500\n",
    );
    create_topic(&cluster.addr(1).to_string(), "before", 6);
    for id in 1..=3 {
        wait_for_topic(cluster.addr(id), "before", 6);
    }
    // One record in each partition, on whichever node leads it.
    let msgs: Vec<Out> = (0..6)
        .map(|p| Out {
            value: format!("record-{p}"),
            partition: Some(p),
            ..Out::default()
        })
        .collect();
    produce_all_acked(
        &producer_config(&cluster.bootstrap()),
        "before",
        &msgs,
        Duration::from_secs(30),
    );
    let m = metadata(cluster.addr(1), "before");
    let (controller, _, _) = quorum(cluster.addr(1));
    let led_by_controller: Vec<i32> = m.topics[0]
        .partitions
        .iter()
        .filter(|p| p.leader_id.0 == controller)
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(led_by_controller.len(), 2, "{m:?}");

    cluster.kill9(controller);
    let survivor = (1..=3).find(|id| *id != controller).unwrap();
    let others: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
    // Another controller is elected and fences the silent broker: its
    // partitions have no leader (one replica each) and it is not listed.
    let m = wait_until(
        cluster.addr(survivor),
        "before",
        "fenced the killed controller",
        |m| {
            broker_ids(m) == others
                && m.topics[0].partitions.iter().all(|p| {
                    (p.leader_id.0 == -1) == led_by_controller.contains(&p.partition_index)
                })
        },
    );
    for p in &m.topics[0].partitions {
        if p.leader_id.0 == -1 {
            assert_eq!(p.error_code, 5, "LEADER_NOT_AVAILABLE");
            assert_eq!(p.leader_epoch, 1);
            assert_eq!(
                p.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
                vec![controller]
            );
        }
    }
    let (elected, _, _) = quorum(cluster.addr(survivor));
    assert!(
        others.contains(&elected),
        "a survivor leads the quorum: {elected}"
    );
    // Topic admin works again, through the other survivor, on live brokers.
    let other = *others.iter().find(|id| **id != survivor).unwrap();
    create_topic(&cluster.addr(other).to_string(), "after", 4);
    let m = wait_for_topic(cluster.addr(survivor), "after", 4);
    for p in &m.topics[0].partitions {
        assert!(others.contains(&p.leader_id.0), "{p:?}");
    }

    // Back: it catches up (it sees "after"), is unfenced, and leads its
    // partitions again at the next leader epoch, with their records.
    cluster.restart(controller);
    wait_for_topic(cluster.addr(controller), "after", 4);
    let m = wait_until(
        cluster.addr(survivor),
        "before",
        "took the node back",
        |m| {
            broker_ids(m) == vec![1, 2, 3]
                && m.topics[0].partitions.iter().all(|p| p.leader_id.0 >= 0)
        },
    );
    for p in &m.topics[0].partitions {
        let back = led_by_controller.contains(&p.partition_index);
        assert_eq!(
            (p.leader_id.0 == controller, p.leader_epoch),
            (back, if back { 2 } else { 0 })
        );
    }
    let expected: BTreeMap<i32, usize> = (0..6).map(|p| (p, 1)).collect();
    let got = consume_exactly(
        &cluster.bootstrap(),
        "before",
        &expected,
        Duration::from_secs(30),
    );
    for (p, messages) in got {
        assert_eq!(value_str(&messages[0]), Some(format!("record-{p}")));
    }
}

#[test]
fn a_transaction_over_every_broker_commits_and_aborts_everywhere() {
    use rdkafka::consumer::ConsumerGroupMetadata;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Offset, TopicPartitionList};

    let cluster = Cluster::start(3, "");
    let bootstrap = cluster.bootstrap();
    create_topic(&cluster.addr(1).to_string(), "ledger", 6);
    let m = wait_for_topic(cluster.addr(3), "ledger", 6);
    let leaders: Vec<i32> = m.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect();
    assert_eq!(
        leaders
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    // A transactional id and a group whose coordinators are different brokers.
    let group = "ledger-readers";
    let group_coordinator = find_coordinator(cluster.addr(1), group, GROUP);
    let txn_id = (0..)
        .map(|i| format!("ledger-writer-{i}"))
        .find(|id| find_coordinator(cluster.addr(1), id, TRANSACTION) != group_coordinator)
        .unwrap();

    let mut cfg = producer_config(&bootstrap);
    cfg.set("transactional.id", &txn_id);
    let producer: BaseProducer = cfg.create().expect("transactional producer");
    let t = Duration::from_secs(30);
    producer.init_transactions(t).expect("init_transactions");
    let metadata: ConsumerGroupMetadata = {
        let mut c = consumer_config(&bootstrap);
        c.set("group.id", group);
        let c: BaseConsumer = c.create().expect("consumer");
        c.group_metadata().expect("group metadata")
    };
    for (round, commit) in [("first", true), ("aborted", false), ("second", true)] {
        producer.begin_transaction().expect("begin");
        for p in 0..6 {
            let value = format!("{round}-{p}");
            producer
                .send(
                    BaseRecord::<(), str>::to("ledger")
                        .partition(p)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
        if round == "first" {
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset("ledger", 0, Offset::Offset(42))
                .unwrap();
            producer
                .send_offsets_to_transaction(&offsets, &metadata, t)
                .expect("offsets to the group's coordinator");
        }
        // Delivery reports are served by flush (a BaseProducer has no thread).
        producer.flush(t).expect("flush");
        if commit {
            producer.commit_transaction(t).expect("commit");
        } else {
            producer.abort_transaction(t).expect("abort");
        }
    }

    // Each partition: first (0), its marker (1), aborted (2), marker (3),
    // second (4), marker (5); read_committed sees first and second only.
    let mut cfg = consumer_config(&bootstrap);
    cfg.set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true");
    let reader: BaseConsumer = cfg.create().expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset("ledger", p, Offset::Beginning)
            .unwrap();
    }
    reader.assign(&tpl).expect("assign");
    let mut read: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut ended = std::collections::BTreeSet::new();
    let deadline = Instant::now() + t;
    while ended.len() < 6 {
        assert!(Instant::now() < deadline, "read {read:?}");
        match reader.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => read
                .entry(m.partition())
                .or_default()
                .push((m.offset(), value_str(&m).unwrap())),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => panic!("{e}"),
        }
    }
    for p in 0..6 {
        assert_eq!(
            read[&p],
            vec![(0, format!("first-{p}")), (4, format!("second-{p}"))],
            "partition {p}"
        );
        let (_, end) = reader
            .fetch_watermarks("ledger", p, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(end, 6, "partition {p}: three records, three markers");
    }
    // The group's coordinator took the offset once the commit marker reached it.
    let mut c = consumer_config(&bootstrap);
    c.set("group.id", group);
    let c: BaseConsumer = c.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("ledger", 0);
    let committed = c.committed_offsets(tpl, t).expect("committed");
    assert_eq!(
        committed.find_partition("ledger", 0).unwrap().offset(),
        Offset::Offset(42)
    );
}

#[test]
fn three_controllers_and_two_brokers_with_separate_roles() {
    let mut cluster = Cluster::start_roles(
        &["controller", "controller", "controller", "broker", "broker"],
        "broker.session.timeout.ms=2000\nbroker.heartbeat.interval.ms=500\n",
    );
    create_topic(&cluster.addr(5).to_string(), "split", 4);
    for id in [4, 5] {
        let m = wait_for_topic(cluster.addr(id), "split", 4);
        assert_eq!(broker_ids(&m), vec![4, 5], "only brokers are listed");
        let mut led: Vec<i32> = m.topics[0]
            .partitions
            .iter()
            .map(|p| p.leader_id.0)
            .collect();
        led.sort();
        assert_eq!(led, vec![4, 4, 5, 5]);
    }
    // The quorum is the three controllers, seen through a broker.
    let (controller, voters, _) = quorum(cluster.addr(4));
    assert_eq!(voters, vec![1, 2, 3]);
    assert!((1..=3).contains(&controller), "{controller}");

    let msgs: Vec<Out> = (0..4)
        .map(|p| Out {
            value: format!("split-{p}"),
            partition: Some(p),
            ..Out::default()
        })
        .collect();
    let bootstrap = format!("{},{}", cluster.addr(4), cluster.addr(5));
    produce_all_acked(
        &producer_config(&bootstrap),
        "split",
        &msgs,
        Duration::from_secs(30),
    );

    // The active controller dies: the others elect one, admin works again.
    cluster.kill9(controller);
    create_topic(&cluster.addr(4).to_string(), "after-controller", 2);
    wait_for_topic(cluster.addr(5), "after-controller", 2);
    let (elected, _, _) = quorum(cluster.addr(5));
    assert!(
        elected != controller && (1..=3).contains(&elected),
        "{elected}"
    );
    cluster.restart(controller);

    // A broker dies: it is fenced, its partitions have no leader; back, it
    // leads them again with their records.
    cluster.kill9(5);
    wait_until(cluster.addr(4), "split", "fenced broker 5", |m| {
        broker_ids(m) == vec![4]
            && m.topics[0]
                .partitions
                .iter()
                .all(|p| (p.leader_id.0 == -1) == (p.replica_nodes[0].0 == 5))
    });
    cluster.restart(5);
    wait_until(cluster.addr(4), "split", "took broker 5 back", |m| {
        broker_ids(m) == vec![4, 5] && m.topics[0].partitions.iter().all(|p| p.leader_id.0 >= 0)
    });
    let expected: BTreeMap<i32, usize> = (0..4).map(|p| (p, 1)).collect();
    let got = consume_exactly(&bootstrap, "split", &expected, Duration::from_secs(30));
    for (p, messages) in got {
        assert_eq!(value_str(&messages[0]), Some(format!("split-{p}")));
    }
}

#[test]
fn three_nodes_from_flags_alone() {
    // No config file: --node-id, --listen, --data-dir and the voters as an
    // override; each node listens for the quorum on its voter entry.
    let ports = common::cluster::free_ports(6);
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[2 * i + 1]))
        .collect::<Vec<_>>()
        .join(",");
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<TestBroker> = (0..3)
        .map(|i| {
            let listen = format!("127.0.0.1:{}", ports[2 * i]);
            let data = dirs[i].path().display().to_string();
            let id = (i + 1).to_string();
            let voters = format!("controller.quorum.voters={voters}");
            TestBroker::launch_raw(&[
                "--node-id",
                &id,
                "--listen",
                &listen,
                "--data-dir",
                &data,
                "--override",
                &voters,
            ])
        })
        .collect();
    for node in &mut nodes {
        node.wait_ready();
    }
    create_topic(&nodes[2].bootstrap(), "flags", 3);
    let m = wait_for_topic(nodes[0].addr(), "flags", 3);
    assert_eq!(broker_ids(&m), vec![1, 2, 3]);
    let mut leaders: Vec<i32> = m.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 2, 3]);
}

#[test]
fn a_node_stopped_with_sigterm_is_fenced_before_it_exits() {
    // A session long enough that only the controlled shutdown can fence
    // the node while the test waits (Vltava probes a silent broker's
    // listener only after a quarter of it).
    let mut cluster = Cluster::start(3, "broker.session.timeout.ms=600000\n");
    create_topic(&cluster.addr(1).to_string(), "graceful", 3);
    let m = wait_for_topic(cluster.addr(1), "graceful", 3);
    let on_three: Vec<i32> = m.topics[0]
        .partitions
        .iter()
        .filter(|p| p.leader_id.0 == 3)
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(on_three.len(), 1, "{m:?}");
    cluster.stop(3);
    wait_until(
        cluster.addr(1),
        "graceful",
        "fenced the stopped node",
        |m| {
            broker_ids(m) == vec![1, 2]
                && m.topics[0]
                    .partitions
                    .iter()
                    .all(|p| (p.leader_id.0 == -1) == on_three.contains(&p.partition_index))
        },
    );
    cluster.restart(3);
    wait_until(cluster.addr(1), "graceful", "took node 3 back", |m| {
        broker_ids(m) == vec![1, 2, 3] && m.topics[0].partitions.iter().all(|p| p.leader_id.0 >= 0)
    });
}
