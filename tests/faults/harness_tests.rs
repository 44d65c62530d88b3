//! The harness's own tests: the network, process and disk faults do what
//! they claim, on Vltava (or on Kafka with `VLTAVA_CLUSTER_KAFKA_LIBS`).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use crate::faults::history::{Event, History};
use crate::faults::nemesis::{self, Nemesis};
use crate::faults::net::Net;
use crate::faults::nodes::{self, Flavor, Nodes};

#[test]
fn nemesis_names_round_trip() {
    for n in Nemesis::ALL {
        assert_eq!(Nemesis::parse(n.name()), Some(n));
    }
    assert_eq!(Nemesis::parse("no-such-fault"), None);
}

/// Creates `topic` (1 partition, 3 replicas) through node `via`.
fn create_topic(nodes: &Nodes, via: i32, topic: &str) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(1)
            .with_replication_factor(3)]);
    let r = nodes::ask(nodes.addr(via), 5, &req, Duration::from_secs(15)).expect("CreateTopics");
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
}

#[test]
fn harness_partitions_pauses_kills_and_fills_disks() {
    let began = Instant::now();
    let net = Net::create(3);
    let mut nodes = Nodes::start(&net, Flavor::from_env(), "", Some(3));
    let history = History::new();
    let short = Duration::from_secs(1);
    let (n1, n2, n3) = (nodes.addr(1), nodes.addr(2), nodes.addr(3));

    // Each child is the server itself, not `ip netns exec`.
    for id in nodes.ids() {
        let pid = nodes.pid(id).expect("running");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_ne!(exe.file_name().and_then(|n| n.to_str()), Some("ip"));
    }

    // Partitions: [1] | [2, 3]; the root namespace still reaches node 1.
    net.connect_from(Some(1), n2, short)
        .expect("1 -> 2 before the partition");
    net.partition(&[vec![1], vec![2, 3]]);
    let cut = net
        .connect_from(Some(1), n2, short)
        .expect_err("1 -> 2 partitioned");
    assert_eq!(cut.kind(), ErrorKind::TimedOut, "{cut}");
    let cut = net
        .connect_from(Some(3), n1, short)
        .expect_err("3 -> 1 partitioned");
    assert_eq!(cut.kind(), ErrorKind::TimedOut, "{cut}");
    net.connect_from(Some(2), n3, short)
        .expect("2 -> 3 in the majority");
    net.connect_from(Some(3), n2, short)
        .expect("3 -> 2 in the majority");
    net.connect_from(None, n1, short)
        .expect("clients reach the minority");
    assert!(net.faulty());
    net.heal();
    assert!(!net.faulty());
    net.connect_from(Some(1), n2, short).expect("1 -> 2 healed");
    net.heal(); // idempotent
    net.connect_from(Some(3), n1, short).expect("3 -> 1 healed");

    // A bridge: 2 sees 1 and 3, which do not see each other.
    net.bridge(&[1], &[3], 2);
    net.connect_from(Some(1), n2, short)
        .expect("1 -> 2 over the bridge");
    net.connect_from(Some(3), n2, short)
        .expect("3 -> 2 over the bridge");
    let cut = net
        .connect_from(Some(1), n3, short)
        .expect_err("1 -> 3 across");
    assert_eq!(cut.kind(), ErrorKind::TimedOut, "{cut}");
    net.heal();

    // One way: 2 drops what 1 sends; 1 still hears 2 (a SYN from 2 is
    // answered by 1, but 1's SYN-ACK is dropped).
    net.one_way(1, 2);
    let cut = net
        .connect_from(Some(1), n2, short)
        .expect_err("1 -> 2 one way");
    assert_eq!(cut.kind(), ErrorKind::TimedOut, "{cut}");
    net.connect_from(Some(3), n2, short)
        .expect("3 -> 2 unaffected");
    net.connect_from(Some(1), n3, short)
        .expect("1 -> 3 unaffected");
    net.heal();

    // All packets into node 2 lost, clients' too.
    net.lose(2, 100);
    let cut = net.connect_from(None, n2, short).expect_err("100 % loss");
    assert_eq!(cut.kind(), ErrorKind::TimedOut, "{cut}");
    net.heal();
    net.connect_from(None, n2, short).expect("loss healed");

    // Slow: still connected.
    let how = net.slow(2);
    assert!(how.contains("netem") || how.contains("tbf"), "{how}");
    net.connect_from(Some(1), n2, Duration::from_secs(3))
        .expect("slow, not cut");
    assert!(net.faulty());
    net.heal();
    assert!(!net.faulty());

    // The probes: a topic, its leader, the controller, convergence.
    create_topic(&nodes, 1, "harness");
    nodes
        .wait_converged("harness", 1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let leader = nodes.leader("harness", 0).expect("a leader");
    let controller = nodes.controller().expect("a controller");
    assert!(nodes.ids().contains(&leader) && nodes.running(leader));
    assert!(nodes.ids().contains(&controller) && nodes.running(controller));
    eprintln!("harness: leader {leader}, controller {controller}");
    // Every node answers DescribeQuorum alike (a Kafka broker forwards it).
    for id in nodes.ids() {
        let (active, _) = nodes::describe_quorum(nodes.addr(id)).expect("DescribeQuorum");
        assert_eq!(active, controller, "node {id}'s DescribeQuorum");
    }

    // SIGSTOP: the node stops answering; SIGCONT: it answers again.
    let other = if leader == 1 { 2 } else { 1 };
    let addr = nodes.addr(other);
    nodes::metadata(addr, "harness").expect("answers before the pause");
    assert!(nodes.pause(other));
    assert!(nodes.running(other) && nodes.paused(other));
    let silent = nodes::metadata(addr, "harness").expect_err("a paused node answers nothing");
    assert!(silent.contains("read"), "{silent}");
    assert!(nodes.resume(other));
    nodes::metadata(addr, "harness").expect("answers after SIGCONT");

    // kill -9 of the leader: another node leads; it comes back.
    nodes.kill9(leader);
    assert!(!nodes.running(leader));
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        match nodes.leader("harness", 0) {
            Some(l) if l != leader => break l,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!("no new leader after killing {leader}: {other:?}"),
        }
    };
    assert!(nodes.running(new_leader));
    nodes.start_node(leader).unwrap_or_else(|e| panic!("{e}"));
    nodes
        .wait_converged("harness", 1, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));

    // The small disk: full to the last byte, then freed.
    let before = nodes.available_bytes(3).expect("statvfs");
    assert!(before > 100 << 20, "{before} bytes free on the small disk");
    let written = nodes.fill_disk(3).expect("fill");
    assert_eq!(nodes.available_bytes(3).expect("statvfs"), 0);
    nodes.free_disk(3).expect("free");
    let after = nodes.available_bytes(3).expect("statvfs");
    assert!(
        after + (16 << 20) > before,
        "{after} of {before} bytes free again"
    );
    eprintln!(
        "harness: small disk {} MiB used at rest, filler {} MiB",
        nodes.used_bytes(3).unwrap_or(0) >> 20,
        written >> 20
    );

    // The nemesis records each start and heal, and heal_all leaves a
    // converged cluster.
    let mut rng = crate::faults::Rng::new(17);
    for n in [
        Nemesis::PauseController,
        Nemesis::IsolateLeader,
        Nemesis::DiskFull,
    ] {
        let fault = nemesis::inject(n, &mut nodes, &net, &mut rng, "harness", &history);
        assert_eq!(fault.nodes.len(), 1, "{fault:?}");
        std::thread::sleep(Duration::from_millis(500));
        nemesis::heal(fault, &mut nodes, &net, &history).unwrap_or_else(|e| panic!("{e}"));
    }
    nemesis::heal_all(&mut nodes, &net, &history).unwrap_or_else(|e| panic!("{e}"));
    let faults: Vec<String> = history
        .ops()
        .into_iter()
        .filter_map(|op| match op.event {
            Event::Fault { description } if op.process == nemesis::NEMESIS => Some(description),
            _ => None,
        })
        .collect();
    assert_eq!(faults.len(), 7, "{faults:#?}");
    assert!(
        faults[0].starts_with("start pause-controller: SIGSTOP node"),
        "{faults:#?}"
    );
    assert!(
        faults[1].starts_with("heal pause-controller: SIGCONT node"),
        "{faults:#?}"
    );
    assert!(
        faults[4].starts_with("start disk-full: node 3's disk filled"),
        "{faults:#?}"
    );
    assert!(faults[5].contains("node 3's disk freed"), "{faults:#?}");
    assert!(!net.faulty() && !nodes.disk_filled(3));
    for id in nodes.ids() {
        assert!(nodes.running(id) && !nodes.paused(id), "node {id}");
    }
    nodes
        .wait_converged("harness", 1, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("harness: {:?} in all", began.elapsed());
}

/// Every nemesis injects and heals without a harness error, and the
/// cluster converges after each (no workload: this checks the harness, not
/// the broker). About a minute on Vltava; ignored in the short suite,
/// which runs every nemesis under its workload anyway.
#[test]
#[ignore]
fn every_nemesis_injects_and_heals() {
    let net = Net::create(3);
    let mut nodes = Nodes::start(&net, Flavor::from_env(), "", Some(2));
    let history = History::new();
    let mut rng = crate::faults::Rng::new(4);
    create_topic(&nodes, 1, "harness");
    nodes
        .wait_converged("harness", 1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    for n in Nemesis::ALL {
        let began = Instant::now();
        let fault = nemesis::inject(n, &mut nodes, &net, &mut rng, "harness", &history);
        assert!(!fault.nodes.is_empty(), "{fault:?}");
        std::thread::sleep(Duration::from_secs(1));
        nemesis::heal(fault, &mut nodes, &net, &history).unwrap_or_else(|e| panic!("{e}"));
        nodes
            .wait_converged("harness", 1, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("after {n}: {e}"));
        eprintln!("harness: {n} in {:?}", began.elapsed());
    }
    nemesis::heal_all(&mut nodes, &net, &history).unwrap_or_else(|e| panic!("{e}"));
    assert!(!net.faulty());
}
