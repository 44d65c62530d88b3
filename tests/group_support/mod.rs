//! Helpers for the consumer-group integration tests (`tests/groups*.rs`):
//! subscribed librdkafka consumers that record what they receive and every
//! rebalance / error event, a polling loop over several members with a hard
//! deadline, bounded consumer close, committed-offset lookups, and decoders
//! for the consumer protocol's member metadata and assignment.
//!
//! Every wait here is on an observable condition with a hard deadline; when a
//! deadline passes the panic message carries each member's assignment,
//! received counts and recorded client events.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;

/// Session timeout every group member uses (the broker's default minimum).
pub const SESSION_TIMEOUT_MS: u64 = 6000;
/// How long joining / rebalancing may take (no session expiry involved).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long consuming a few dozen messages may take.
pub const CONSUME_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing a consumer (LeaveGroup included) may take.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);

/// A broker for group tests: no initial rebalance delay.
pub fn group_broker() -> TestBroker {
    TestBroker::start_with(&["--override", "group.initial.rebalance.delay.ms=0"])
}

// ---------------------------------------------------------------------------
// A consumer context that records rebalances, errors and commit results
// ---------------------------------------------------------------------------

/// Records every client event with the time since the consumer was created.
pub struct RecordingConsumerContext {
    pub name: String,
    pub started: Instant,
    pub events: Mutex<Vec<String>>,
}

impl RecordingConsumerContext {
    fn push(&self, what: String) {
        let ms = self.started.elapsed().as_millis();
        self.events.lock().unwrap().push(format!("+{ms}ms {what}"));
    }
}

fn tpl_str(tpl: &TopicPartitionList) -> String {
    let parts: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}/{}@{:?}", e.topic(), e.partition(), e.offset()))
        .collect();
    format!("[{}]", parts.join(", "))
}

impl ClientContext for RecordingConsumerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.push(format!("client error: {error} ({reason})"));
    }
}

impl ConsumerContext for RecordingConsumerContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let what = match rebalance {
            Rebalance::Assign(tpl) => format!("assign {}", tpl_str(tpl)),
            Rebalance::Revoke(tpl) => format!("revoke {}", tpl_str(tpl)),
            Rebalance::Error(e) => format!("rebalance error {e}"),
        };
        self.push(what);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.push(format!("commit failed: {e} for {}", tpl_str(offsets)));
        }
    }
}

pub type GroupConsumer = BaseConsumer<RecordingConsumerContext>;

/// Config of a subscribed group member: manual commits, earliest reset,
/// 6 s session, 500 ms heartbeats.
pub fn member_config(
    bootstrap: &str,
    group: &str,
    client_id: &str,
    strategy: &str,
) -> ClientConfig {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", group)
        .set("client.id", client_id)
        .set("partition.assignment.strategy", strategy)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "30000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    cfg
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

/// A subscribed consumer plus everything it has received.
pub struct Member {
    pub name: String,
    pub topic: String,
    pub consumer: GroupConsumer,
    pub received: Vec<Rec>,
    /// Commit `offset + 1` synchronously after each received message.
    pub commit_as_you_go: bool,
    pub poll_errors: Vec<String>,
}

impl Member {
    /// Creates a consumer in `group` with `client.id = name` and subscribes it to `topic`.
    pub fn new(bootstrap: &str, group: &str, name: &str, strategy: &str, topic: &str) -> Member {
        Member::with_config(member_config(bootstrap, group, name, strategy), name, topic)
    }

    pub fn with_config(cfg: ClientConfig, name: &str, topic: &str) -> Member {
        let ctx = RecordingConsumerContext {
            name: name.to_string(),
            started: Instant::now(),
            events: Mutex::new(Vec::new()),
        };
        let consumer: GroupConsumer = cfg.create_with_context(ctx).expect("create group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        Member {
            name: name.to_string(),
            topic: topic.to_string(),
            consumer,
            received: Vec::new(),
            commit_as_you_go: false,
            poll_errors: Vec::new(),
        }
    }

    /// Polls once; records a message (and commits it if `commit_as_you_go`).
    pub fn poll_once(&mut self, timeout: Duration) {
        match self.consumer.poll(timeout) {
            None => {}
            Some(Ok(m)) => {
                assert_eq!(
                    m.topic(),
                    self.topic,
                    "{}: message from unexpected topic",
                    self.name
                );
                let rec = Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    value: value_str(&m).unwrap_or_default(),
                };
                drop(m);
                if self.commit_as_you_go {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(
                        &self.topic,
                        rec.partition,
                        Offset::Offset(rec.offset + 1),
                    )
                    .unwrap();
                    if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                        panic!(
                            "{}: synchronous commit of {}/{}@{} failed: {e}\n{}",
                            self.name,
                            self.topic,
                            rec.partition,
                            rec.offset + 1,
                            self.describe()
                        );
                    }
                }
                self.received.push(rec);
            }
            Some(Err(e)) => {
                let ms = self.consumer.context().started.elapsed().as_millis();
                self.poll_errors.push(format!("+{ms}ms {e}"));
            }
        }
    }

    /// Partition ids currently assigned (from `assignment()`).
    pub fn assigned(&self) -> BTreeSet<i32> {
        let tpl = self.consumer.assignment().expect("assignment()");
        tpl.elements()
            .iter()
            .map(|e| {
                assert_eq!(
                    e.topic(),
                    self.topic,
                    "{}: assigned a foreign topic",
                    self.name
                );
                e.partition()
            })
            .collect()
    }

    pub fn received_on(&self, partition: i32) -> Vec<&Rec> {
        self.received
            .iter()
            .filter(|r| r.partition == partition)
            .collect()
    }

    /// Assignment, receive counts per partition, client events and poll errors.
    pub fn describe(&self) -> String {
        let assignment = match self.consumer.assignment() {
            Ok(tpl) => tpl_str(&tpl),
            Err(e) => format!("<assignment() failed: {e}>"),
        };
        let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
        for r in &self.received {
            *counts.entry(r.partition).or_insert(0) += 1;
        }
        let events = self.consumer.context().events.lock().unwrap().clone();
        format!(
            "member {}: assignment {assignment}; received per partition {counts:?}; events {events:#?}; poll errors (first 10) {:?}",
            self.name,
            self.poll_errors.iter().take(10).collect::<Vec<_>>()
        )
    }

    /// Starts closing the consumer (unsubscribe + LeaveGroup) on a thread.
    /// Returns what it received and a handle to wait on.
    pub fn start_close(self) -> (Vec<Rec>, Closing) {
        let (tx, rx) = mpsc::channel();
        let name = self.name.clone();
        let events = self.consumer.context().events.lock().unwrap().clone();
        let consumer = self.consumer;
        std::thread::spawn(move || {
            // BaseConsumer's Drop closes the consumer: revoke, LeaveGroup, wait
            // until closed.
            drop(consumer);
            let _ = tx.send(());
        });
        (
            self.received,
            Closing {
                name,
                rx,
                done: false,
                started: Instant::now(),
                events,
            },
        )
    }

    /// Closes the consumer, panicking if that takes longer than CLOSE_TIMEOUT.
    pub fn close(self) -> Vec<Rec> {
        let (received, mut closing) = self.start_close();
        closing.wait(CLOSE_TIMEOUT);
        received
    }
}

/// A consumer being closed on a background thread.
pub struct Closing {
    pub name: String,
    rx: mpsc::Receiver<()>,
    done: bool,
    pub started: Instant,
    events: Vec<String>,
}

impl Closing {
    pub fn is_done(&mut self) -> bool {
        if !self.done {
            self.done = self.rx.try_recv().is_ok();
        }
        self.done
    }

    pub fn wait(&mut self, timeout: Duration) {
        if self.done {
            return;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(()) => self.done = true,
            Err(_) => panic!(
                "closing consumer {} did not finish within {timeout:?}; its events before close: {:#?}",
                self.name, self.events
            ),
        }
    }
}

/// Polls every member in turn (50 ms each) until `cond` holds; panics with
/// `what` and every member's state at the deadline. Returns the time taken.
pub fn wait_for(
    members: &mut [&mut Member],
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&[&mut Member]) -> bool,
) -> Duration {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if cond(members) {
            return start.elapsed();
        }
        if Instant::now() >= deadline {
            let states: Vec<String> = members.iter().map(|m| m.describe()).collect();
            panic!(
                "timed out after {timeout:?} waiting for: {what}\n{}",
                states.join("\n")
            );
        }
        for m in members.iter_mut() {
            m.poll_once(Duration::from_millis(50));
        }
    }
}

// ---------------------------------------------------------------------------
// Producing and checking
// ---------------------------------------------------------------------------

/// Produces `count` messages to each of `partitions` with values
/// `{prefix}-p{p}-{i}` and returns them as the records a consumer should see.
pub fn produce_batch(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    prefix: &str,
    count: usize,
) -> Vec<Rec> {
    let mut msgs = Vec::new();
    for &p in partitions {
        for i in 0..count {
            msgs.push(Out {
                key: Some(format!("k{i}")),
                value: format!("{prefix}-p{p}-{i}"),
                partition: Some(p),
                ..Default::default()
            });
        }
    }
    let acked = produce_all_acked(
        &producer_config(bootstrap),
        topic,
        &msgs,
        Duration::from_secs(30),
    );
    let mut recs: Vec<Rec> = msgs
        .iter()
        .zip(acked)
        .map(|(m, a)| {
            assert_eq!(
                Some(a.partition),
                m.partition,
                "message acked on another partition"
            );
            Rec {
                partition: a.partition,
                offset: a.offset,
                value: m.value.clone(),
            }
        })
        .collect();
    recs.sort();
    recs
}

/// Asserts `got` contains exactly the records of `expected`, each once
/// (order-insensitive), with a precise diff on failure.
pub fn assert_exactly_once(context: &str, got: &[Rec], expected: &[Rec]) {
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in got {
        *seen.entry((r.partition, r.offset)).or_insert(0) += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let want: BTreeSet<&Rec> = expected.iter().collect();
    let have: BTreeSet<&Rec> = got.iter().collect();
    let missing: Vec<_> = want.difference(&have).collect();
    let unexpected: Vec<_> = have.difference(&want).collect();
    assert!(
        dups.is_empty() && missing.is_empty() && unexpected.is_empty() && got.len() == expected.len(),
        "{context}: received {} records, expected {}; duplicated (partition, offset) -> times: {dups:?}; missing: {missing:?}; unexpected: {unexpected:?}",
        got.len(),
        expected.len()
    );
}

/// Checks that per partition the records arrived in strictly increasing offset order.
pub fn assert_in_order(context: &str, got: &[Rec]) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for r in got {
        if let Some(prev) = last.insert(r.partition, r.offset) {
            assert!(
                r.offset > prev,
                "{context}: partition {} delivered offset {} after {prev}",
                r.partition,
                r.offset
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Committed offsets and group listings, from a non-member client
// ---------------------------------------------------------------------------

/// A consumer with `group.id = group` that never subscribes: used for
/// OffsetFetch (committed_offsets) and group listings.
pub fn group_probe(bootstrap: &str, group: &str) -> BaseConsumer {
    let mut cfg = consumer_config(bootstrap);
    cfg.set("group.id", group);
    cfg.create().expect("create probe consumer")
}

/// Committed offset and metadata per partition (OffsetFetch), as seen by a
/// fresh client of `group`.
pub fn committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, (Offset, String)> {
    let probe = group_probe(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let got = probe
        .committed_offsets(tpl, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("OffsetFetch for group {group} failed: {e}"));
    let mut out = BTreeMap::new();
    for e in got.elements() {
        assert_eq!(e.topic(), topic);
        if let Err(err) = e.error() {
            panic!(
                "OffsetFetch for {group}: partition {} error {err}",
                e.partition()
            );
        }
        out.insert(e.partition(), (e.offset(), e.metadata().to_string()));
    }
    out
}

/// Committed offsets only.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, Offset> {
    committed(bootstrap, group, topic, partitions)
        .into_iter()
        .map(|(p, (o, _))| (p, o))
        .collect()
}

/// Snapshot of one group from ListGroups/DescribeGroups via librdkafka.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub name: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub id: String,
    pub client_id: String,
    pub client_host: String,
    pub subscription: Option<Vec<String>>,
    pub assignment: Option<BTreeMap<String, Vec<i32>>>,
}

fn view_of(g: &rdkafka::groups::GroupInfo) -> GroupView {
    GroupView {
        name: g.name().to_string(),
        state: g.state().to_string(),
        protocol_type: g.protocol_type().to_string(),
        protocol: g.protocol().to_string(),
        members: g
            .members()
            .iter()
            .map(|m| MemberView {
                id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                client_host: m.client_host().to_string(),
                subscription: m.metadata().map(|b| {
                    decode_subscription(b).unwrap_or_else(|e| panic!("member metadata {b:?}: {e}"))
                }),
                assignment: m.assignment().map(|b| {
                    decode_assignment(b).unwrap_or_else(|e| panic!("member assignment {b:?}: {e}"))
                }),
            })
            .collect(),
    }
}

/// `fetch_group_list(None)`: every group (ListGroups + DescribeGroups).
pub fn list_groups(bootstrap: &str) -> Vec<GroupView> {
    let probe: BaseConsumer = consumer_config(bootstrap).create().expect("consumer");
    let list = probe
        .fetch_group_list(None, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("fetch_group_list(None) failed: {e}"));
    list.groups().iter().map(view_of).collect()
}

/// `fetch_group_list(Some(group))`: librdkafka sends ListGroups, then
/// DescribeGroups for the listed groups named `group`.
pub fn describe_groups_matching(bootstrap: &str, group: &str) -> Vec<GroupView> {
    let probe: BaseConsumer = consumer_config(bootstrap).create().expect("consumer");
    let list = probe
        .fetch_group_list(Some(group), Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("fetch_group_list({group}) failed: {e}"));
    list.groups().iter().map(view_of).collect()
}

/// `fetch_group_list(Some(group))`, asserting exactly that group came back.
pub fn describe_group(bootstrap: &str, group: &str) -> GroupView {
    let groups = describe_groups_matching(bootstrap, group);
    assert_eq!(groups.len(), 1, "describe {group} returned {groups:?}");
    assert_eq!(groups[0].name, group);
    groups.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------
// Consumer protocol decoding (ConsumerProtocolSubscription / Assignment)
// ---------------------------------------------------------------------------

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.pos + n > self.buf.len() {
            return Err(format!("truncated at byte {} (wanted {n} more)", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i16()?;
        if n < 0 {
            return Err("null string".into());
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }
}

/// Topics of a ConsumerProtocolSubscription (any version).
pub fn decode_subscription(b: &[u8]) -> Result<Vec<String>, String> {
    let mut c = Cursor { buf: b, pos: 0 };
    let _version = c.i16()?;
    let n = c.i32()?;
    let mut topics = Vec::new();
    for _ in 0..n.max(0) {
        topics.push(c.string()?);
    }
    Ok(topics)
}

/// Partitions per topic of a ConsumerProtocolAssignment (any version).
pub fn decode_assignment(b: &[u8]) -> Result<BTreeMap<String, Vec<i32>>, String> {
    let mut out = BTreeMap::new();
    if b.is_empty() {
        return Ok(out);
    }
    let mut c = Cursor { buf: b, pos: 0 };
    let _version = c.i16()?;
    let n = c.i32()?;
    for _ in 0..n.max(0) {
        let topic = c.string()?;
        let np = c.i32()?;
        let mut ps = Vec::new();
        for _ in 0..np.max(0) {
            ps.push(c.i32()?);
        }
        ps.sort();
        out.insert(topic, ps);
    }
    Ok(out)
}

pub type Shared<T> = Arc<Mutex<T>>;
