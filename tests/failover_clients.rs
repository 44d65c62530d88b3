//! Real client programs through a kill -9 of their coordinator's broker, on
//! three nodes where every partition (and `__consumer_offsets`,
//! `__transaction_state`) has three replicas: a kafkajs consumer group
//! (`tests/compat/failover/group.mjs`) loses no record, and a transactional
//! consume-transform-produce loop of the Java client
//! (`tests/compat/java/src/test/java/vltava/compat/failover/EosLoop.java`)
//! writes every input exactly once. The programs run as child processes and
//! report JSON lines on stdout; `tests/compat/failover/prepare.sh` installs
//! and compiles them (this file builds nothing).
//!
//! With `VLTAVA_CLUSTER_KAFKA_LIBS` set the same tests run against Apache
//! Kafka (the reference run; see `common/cluster.rs`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cluster::{find_coordinator, Cluster, GROUP, TRANSACTION};
use common::programs::{java_main, require, COMPAT};
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

/// How long a change may take to reach every node (a fencing waits for
/// `broker.session.timeout.ms`, set to 3 s here).
const SETTLE: Duration = Duration::from_secs(30);

/// Every test's nodes: a short broker session (a killed broker leaves the
/// ISRs within seconds), the internal topics with three replicas and three
/// partitions (so each of the three nodes coordinates something), and no
/// initial rebalance delay.
const EXTRA: &str = "broker.session.timeout.ms=3000\n\
                     broker.heartbeat.interval.ms=500\n\
                     offsets.topic.replication.factor=3\n\
                     offsets.topic.num.partitions=3\n\
                     transaction.state.log.replication.factor=3\n\
                     transaction.state.log.min.isr=2\n\
                     transaction.state.log.num.partitions=3\n\
                     group.initial.rebalance.delay.ms=0\n";

const PARTITIONS: i32 = 3;
/// Records produced in all; the coordinator is killed once a third of them
/// is committed, while the rest are still being produced.
const TOTAL: usize = 6_000;

/// Waits until node `addr` names a coordinator for `key` other than `gone`.
fn coordinator_moved(addr: std::net::SocketAddr, key: &str, key_type: i8, gone: i32) -> i32 {
    let deadline = Instant::now() + SETTLE;
    loop {
        let c = find_coordinator(addr, key, key_type);
        if c != gone && c > 0 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "the coordinator of {key} never moved"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_replicated(bootstrap: &str, name: &str) {
    let admin = admin_client(bootstrap);
    let topic =
        NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let results = block_on(
        Duration::from_secs(30),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics request failed");
    assert_eq!(results, vec![Ok(name.to_string())]);
}

/// Waits until node `addr` reports every partition of `topic` led, with all
/// three replicas in sync.
fn wait_all_in_sync(addr: std::net::SocketAddr, topic: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let req =
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
        let m: MetadataResponse = RawClient::connect(addr).send(12, &req);
        let in_sync = m.topics.first().is_some_and(|t| {
            t.error_code == 0
                && t.partitions.len() == PARTITIONS as usize
                && t.partitions
                    .iter()
                    .all(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == 3)
        });
        if in_sync {
            return;
        }
        assert!(Instant::now() < deadline, "{topic} never fully in sync");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces `TOTAL` records (`k{i}`, `v{i}`, partitioned by key) with an
/// idempotent acks=all producer, a steady stream of about 2,000 a second;
/// returns each partition's values in offset order, after checking every
/// record was acknowledged and each partition's offsets are 0, 1, 2, ….
fn produce_stream(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<String>> {
    use rdkafka::producer::Producer;
    let mut config = producer_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "2");
    let producer = recording_producer(&config);
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..TOTAL {
        let msg = Out {
            key: Some(format!("k{i}")),
            value: format!("v{i}"),
            ..Out::default()
        };
        send_one(&producer, topic, i, &msg, deadline);
        if i % 50 == 49 {
            // A steady stream rather than one burst.
            producer.poll(Duration::from_millis(25));
        }
    }
    producer
        .flush(Duration::from_secs(90))
        .expect("every record reported within the timeout");
    let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
    assert_eq!(outcomes.len(), TOTAL, "one report per record");
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (i, outcome) in outcomes {
        let acked = outcome.unwrap_or_else(|e| panic!("record {i} was not acknowledged: {e}"));
        by_partition
            .entry(acked.partition)
            .or_default()
            .push((acked.offset, format!("v{i}")));
    }
    by_partition
        .into_iter()
        .map(|(p, mut records)| {
            records.sort();
            let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
            let want: Vec<i64> = (0..records.len() as i64).collect();
            assert_eq!(offsets, want, "acknowledged offsets of partition {p}");
            (p, records.into_iter().map(|r| r.1).collect())
        })
        .collect()
}

/// A client program run as a child process: its stdout JSON lines arrive on
/// a channel, its stderr goes to a file shown when the test fails.
struct Program {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Program {
    fn spawn(name: &'static str, mut cmd: Command) -> Program {
        let dir = tempfile::Builder::new()
            .prefix("vltava-failover-")
            .tempdir()
            .expect("temp dir");
        let stderr = dir.path().join(format!("{name}.stderr"));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "unparsed", "line": line }));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Program {
            name,
            stdin: child.stdin.take(),
            child,
            events,
            stderr,
            _dir: dir,
        }
    }

    /// The next event, or a panic with the program's stderr at `deadline`
    /// or when it exits.
    fn next(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(event) => {
                assert_ne!(event["event"], "unparsed", "{}: {event}", self.name);
                assert_ne!(event["event"], "fatal", "{}: {event}", self.name);
                event
            }
            Err(mpsc::RecvTimeoutError::Timeout) => self.fail(&format!("timed out {waiting_for}")),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().expect("wait");
                self.fail(&format!("exited with {status} {waiting_for}"))
            }
        }
    }

    fn fail(&self, what: &str) -> ! {
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        panic!("{} {what}; its stderr (tail):\n{tail}", self.name)
    }

    /// Writes `command` as a line to the program's stdin.
    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Tells the program to stop (a line on stdin), and returns the events
    /// it reports until `stopped`, once it exited with status 0.
    fn stop(&mut self, deadline: Instant) -> Vec<Value> {
        self.send("stop");
        drop(self.stdin.take());
        let mut events = Vec::new();
        loop {
            let event = self.next(deadline, "stopping");
            if event["event"] == "stopped" {
                break;
            }
            events.push(event);
        }
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if !status.success() {
                    self.fail(&format!("exited with {status}"));
                }
                return events;
            }
            if Instant::now() >= deadline {
                self.fail("did not exit after `stopped`");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // Our own child, by its pid; a no-op once it exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `{"P": O, ...}` of an event, as partition → offset.
fn offsets(event: &Value) -> BTreeMap<i32, i64> {
    event["offsets"]
        .as_object()
        .expect("offsets")
        .iter()
        .map(|(p, o)| (p.parse().expect("partition"), o.as_i64().expect("offset")))
        .collect()
}

fn committed_total(committed: &BTreeMap<i32, i64>) -> usize {
    committed.values().map(|o| *o as usize).sum()
}

fn log_end(produced: &BTreeMap<i32, Vec<String>>) -> BTreeMap<i32, i64> {
    produced.iter().map(|(p, v)| (*p, v.len() as i64)).collect()
}

/// The offsets group `group` has committed for `topic`, as node `addr`
/// answers OffsetFetch.
fn fetch_committed(addr: std::net::SocketAddr, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let reader: BaseConsumer = consumer_config(&addr.to_string())
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut wanted = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        wanted.add_partition(topic, p);
    }
    let committed = reader
        .committed_offsets(wanted, Duration::from_secs(20))
        .expect("OffsetFetch");
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), o),
            other => panic!(
                "partition {} has no committed offset: {other:?}",
                e.partition()
            ),
        })
        .collect()
}

/// The group's stream of one partition, checked as it arrives: it moves
/// forward one offset at a time, and goes back only when the member starts
/// again from the group's committed offset, which is never below the last
/// commit the member saw acknowledged (nor past what it consumed).
#[derive(Default)]
struct PartitionStream {
    next: i64,
    consumed_to: i64,
    last_commit: i64,
    redelivered: usize,
    values: BTreeMap<i64, String>,
}

impl PartitionStream {
    fn consumed(&mut self, p: i32, offset: i64, value: &str) {
        if offset != self.next {
            assert!(
                self.last_commit <= offset && offset <= self.consumed_to,
                "partition {p}: the member jumped from {} to {offset}, outside [last acknowledged \
                 commit {}, consumed up to {}]",
                self.next,
                self.last_commit,
                self.consumed_to
            );
        }
        if offset < self.consumed_to {
            self.redelivered += 1;
        }
        if let Some(before) = self.values.insert(offset, value.to_string()) {
            assert_eq!(
                before, value,
                "partition {p} offset {offset} read twice, differently"
            );
        }
        self.next = offset + 1;
        self.consumed_to = self.consumed_to.max(self.next);
    }
}

/// The broker FindCoordinator names for the group is killed once a third
/// of the records are committed, while the rest are still produced; kafkajs
/// finds the new coordinator by itself (restarting its consumer if it
/// gives up on the dead one, as it does against Kafka).
#[test]
fn a_kafkajs_group_loses_nothing_when_its_coordinators_broker_is_killed() {
    let compat = Path::new(COMPAT);
    require(&compat.join("node_modules/kafkajs/package.json"));
    let started = Instant::now();
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let topic = "payments";
    create_replicated(&bootstrap, topic);
    wait_all_in_sync(cluster.addr(1), topic);
    let group = "kafkajs-failover";
    let coordinator = find_coordinator(cluster.addr(1), group, GROUP);

    let mut node = Command::new("node");
    node.arg(compat.join("failover/group.mjs"))
        .current_dir(compat)
        .env("KAFKA_BROKERS", &bootstrap)
        .env("TOPIC", topic)
        .env("GROUP_ID", group)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    let mut member = Program::spawn("group.mjs", node);
    let deadline = Instant::now() + Duration::from_secs(90);
    while member.next(deadline, "for the first join")["event"] != "joined" {}

    let mut streams: BTreeMap<i32, PartitionStream> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut crashes = Vec::new();
    let mut handle =
        |event: &Value,
         streams: &mut BTreeMap<i32, PartitionStream>,
         committed: &mut BTreeMap<i32, i64>| match event["event"].as_str() {
            Some("consumed") => {
                let p = event["partition"].as_i64().expect("partition") as i32;
                let o = event["offset"].as_i64().expect("offset");
                let v = event["value"].as_str().expect("value");
                streams.entry(p).or_default().consumed(p, o, v);
            }
            Some("committed") => {
                for (p, o) in offsets(event) {
                    streams.entry(p).or_default().last_commit = o;
                    committed.insert(p, o);
                }
            }
            Some("crash") => crashes.push(event.clone()),
            _ => {}
        };

    let produced = std::thread::scope(|s| {
        let producing = s.spawn(|| produce_stream(&bootstrap, topic));
        while committed_total(&committed) < TOTAL / 3 {
            let event = member.next(deadline, "for a third of the records to be committed");
            handle(&event, &mut streams, &mut committed);
        }
        cluster.kill9(coordinator);
        producing.join().expect("producer thread")
    });
    let end = log_end(&produced);
    let killed_at = committed.clone();
    while committed != end {
        let event = member.next(deadline, "for the commits to reach the log end offsets");
        handle(&event, &mut streams, &mut committed);
    }
    for event in member.stop(Instant::now() + Duration::from_secs(30)) {
        handle(&event, &mut streams, &mut committed);
    }

    // Every produced record consumed (at least once), each at its offset.
    for (p, values) in &produced {
        let got: Vec<&String> = streams[p].values.values().collect();
        let want: Vec<&String> = values.iter().collect();
        assert_eq!(got, want, "partition {p}: the values consumed, by offset");
    }
    assert_eq!(committed, end, "the last acknowledged commits");
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let moved = coordinator_moved(cluster.addr(survivor), group, GROUP, coordinator);
    assert_eq!(
        fetch_committed(cluster.addr(moved), group, topic),
        end,
        "the group's committed offsets are the log end offsets"
    );
    let redelivered: BTreeMap<i32, usize> =
        streams.iter().map(|(p, s)| (*p, s.redelivered)).collect();
    eprintln!(
        "kafkajs group: node {coordinator} killed at commits {killed_at:?}; coordinator now \
         node {moved}; redelivered {redelivered:?}; kafkajs crashes {crashes:?}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Reads `topic` with isolation.level=read_committed from offset 0 until
/// `total` records arrived and every partition is at its end; returns each
/// partition's values in offset order.
fn read_committed(bootstrap: &str, topic: &str, total: usize) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = consumer_config(bootstrap)
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("read_committed consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<String>> = (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    let mut at_end: BTreeMap<i32, bool> = (0..PARTITIONS).map(|p| (p, false)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = |got: &BTreeMap<i32, Vec<String>>| got.values().map(Vec::len).sum::<usize>();
    while count(&got) < total || at_end.values().any(|e| !e) {
        assert!(
            Instant::now() < deadline,
            "read {} of {total} committed records of {topic}",
            count(&got)
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                got.get_mut(&m.partition())
                    .expect("assigned partition")
                    .push(value_str(&m).unwrap_or_default());
                at_end.insert(m.partition(), false);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p, true);
            }
            _ => {}
        }
    }
    got
}

/// The killed broker coordinates both the loop's group and its
/// transactional id (names are picked until FindCoordinator names one node
/// for both), and dies while a transaction is open: its records sent to the
/// output leaders and its offsets added (AddOffsetsToTxn, TxnOffsetCommit)
/// on that broker. The loop commits it through the new coordinators once
/// FindCoordinator names them, then carries on with the rest of the input.
#[test]
fn a_transactional_loop_writes_every_input_exactly_once_when_its_coordinators_broker_is_killed() {
    let started = Instant::now();
    let mut cluster = Cluster::start(3, EXTRA);
    let bootstrap = cluster.bootstrap();
    let (input, output) = ("orders", "orders-checked");
    create_replicated(&bootstrap, input);
    create_replicated(&bootstrap, output);
    wait_all_in_sync(cluster.addr(1), input);
    wait_all_in_sync(cluster.addr(1), output);
    // A group and a transactional id that one broker coordinates both (with
    // three partitions of each internal topic, a few names suffice).
    let (group, transactional_id, coordinator) = (0..30)
        .map(|i| (format!("eos-{i}"), format!("eos-{i}-tx")))
        .find_map(|(g, t)| {
            let c = find_coordinator(cluster.addr(1), &g, GROUP);
            (find_coordinator(cluster.addr(1), &t, TRANSACTION) == c).then_some((g, t, c))
        })
        .expect("a group and a transactional id with one coordinator");

    let mut cmd = java_main("vltava.compat.failover.EosLoop");
    cmd.env("BOOTSTRAP", &bootstrap)
        .env("INPUT", input)
        .env("OUTPUT", output)
        .env("GROUP_ID", &group)
        .env("TRANSACTIONAL_ID", &transactional_id);
    let mut eos = Program::spawn("EosLoop", cmd);
    let deadline = Instant::now() + Duration::from_secs(90);
    while eos.next(deadline, "for its partitions")["event"] != "assigned" {}

    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut aborted = Vec::new();
    let mut commit_retries = 0;
    let mut handle =
        |event: &Value, committed: &mut BTreeMap<i32, i64>| match event["event"].as_str() {
            Some("committed") => committed.extend(offsets(event)),
            Some("aborted") => aborted.push(event["error"].clone()),
            Some("commit_retry") => commit_retries += 1,
            _ => {}
        };
    let survivor = if coordinator == 1 { 2 } else { 1 };
    let (produced, held, moved_group, moved_txn) = std::thread::scope(|s| {
        let producing = s.spawn(|| produce_stream(&bootstrap, input));
        while committed_total(&committed) < TOTAL / 3 {
            let event = eos.next(deadline, "for a third of the input to be committed");
            handle(&event, &mut committed);
        }
        // The next transaction waits, records sent and offsets added, while
        // its coordinators' broker is killed and others take over.
        eos.send("hold");
        let held = loop {
            let event = eos.next(deadline, "for a transaction to hold");
            if event["event"] == "holding" {
                break offsets(&event);
            }
            handle(&event, &mut committed);
        };
        cluster.kill9(coordinator);
        let moved_group = coordinator_moved(cluster.addr(survivor), &group, GROUP, coordinator);
        let moved_txn = coordinator_moved(
            cluster.addr(survivor),
            &transactional_id,
            TRANSACTION,
            coordinator,
        );
        eos.send("go");
        // The new coordinators commit it.
        let event = loop {
            let event = eos.next(deadline, "for the held transaction to end");
            handle(&event, &mut committed);
            if event["event"] != "commit_retry" {
                break event;
            }
        };
        assert_eq!(event["event"], "committed", "the held transaction: {event}");
        assert_eq!(offsets(&event), held, "the held transaction's offsets");
        let produced = producing.join().expect("producer thread");
        (produced, held, moved_group, moved_txn)
    });
    let end = log_end(&produced);
    while committed != end {
        let event = eos.next(deadline, "for its commits to reach the input's end");
        handle(&event, &mut committed);
    }
    for event in eos.stop(Instant::now() + Duration::from_secs(30)) {
        handle(&event, &mut committed);
    }
    assert_eq!(
        fetch_committed(cluster.addr(moved_group), &group, input),
        end,
        "the group's committed offsets are the input's log end offsets"
    );

    // Every input exactly once, transformed, in its partition's order.
    let got = read_committed(&bootstrap, output, TOTAL);
    let want: BTreeMap<i32, Vec<String>> = produced
        .iter()
        .map(|(p, values)| (*p, values.iter().map(|v| format!("{v}!")).collect()))
        .collect();
    assert_eq!(got, want, "the committed output, by partition, in order");
    eprintln!(
        "EOS loop: node {coordinator} (group and transaction coordinator) killed holding a \
         transaction to {held:?}; now group node {moved_group}, transactions node {moved_txn}; \
         {} aborts {aborted:?}; {commit_retries} commit retries; {:.1} s",
        aborted.len(),
        started.elapsed().as_secs_f64()
    );
}
