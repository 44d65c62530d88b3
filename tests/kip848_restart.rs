//! A KIP-848 group (`group.protocol=consumer`) across broker restarts: the
//! group's records in `__consumer_offsets` bring back its members with their
//! ids, epochs and assignments, so after a SIGTERM and after a kill -9 the two
//! librdkafka members carry on where they were: the group and member epochs
//! do not move, and no record is delivered again after its commit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const GROUP: &str = "kip848-restart-group";
const TOPIC: &str = "kip848-restart-topic";

fn member(bootstrap: &str) -> BaseConsumer {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", GROUP)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let c: BaseConsumer = cfg.create().expect("consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    c
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// The group as ConsumerGroupDescribe shows it: group epoch and, per member
/// id, its member epoch and assigned partitions.
#[derive(Debug, PartialEq)]
struct Described {
    group_epoch: i32,
    members: BTreeMap<String, (i32, BTreeSet<i32>)>,
}

fn describe(broker: &TestBroker) -> Described {
    let mut client = raw::RawClient::connect(broker.addr());
    let req = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![GroupId(StrBytes::from_static_str(GROUP))]);
    let resp = client.send(0, &req);
    assert_eq!(resp.groups.len(), 1);
    let g = &resp.groups[0];
    assert_eq!(g.error_code, 0, "{g:?}");
    Described {
        group_epoch: g.group_epoch,
        members: g
            .members
            .iter()
            .map(|m| {
                let parts = m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|tp| tp.partitions.iter().copied())
                    .collect();
                (m.member_id.to_string(), (m.member_epoch, parts))
            })
            .collect(),
    }
}

/// What the two members received, and which records were committed.
#[derive(Default)]
struct Ledger {
    /// (partition, offset) -> value, per delivery.
    deliveries: Vec<((i32, i64), String)>,
    committed: BTreeSet<(i32, i64)>,
}

impl Ledger {
    /// Polls both members until `want` distinct values were delivered; each
    /// delivery is committed synchronously (offset + 1). A record delivered
    /// again after its commit succeeded fails the test.
    fn consume_until(&mut self, members: &[&BaseConsumer], want: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.distinct() < want {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {} of {want} records",
                self.distinct()
            );
            for c in members {
                let Some(Ok(m)) = c.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let at = (m.partition(), m.offset());
                let value = value_str(&m).expect("value");
                assert!(
                    !self.committed.contains(&at),
                    "{at:?} ({value}) delivered again after its commit"
                );
                self.deliveries.push((at, value));
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(TOPIC, at.0, Offset::Offset(at.1 + 1))
                    .expect("offset");
                if c.commit(&tpl, CommitMode::Sync).is_ok() {
                    self.committed.insert(at);
                }
            }
        }
    }

    fn distinct(&self) -> usize {
        self.deliveries
            .iter()
            .map(|(at, _)| *at)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Sends `{round}-0..40`, record i keyed `k{i}` to partition i % PARTITIONS.
fn produce_round(bootstrap: &str, round: &str) {
    let msgs: Vec<Out> = (0..40)
        .map(|i| Out {
            key: Some(format!("k{i}")),
            value: format!("{round}-{i}"),
            partition: Some(i % PARTITIONS),
            ..Out::default()
        })
        .collect();
    produce_all_acked(
        &producer_config(bootstrap),
        TOPIC,
        &msgs,
        Duration::from_secs(30),
    );
}

/// Polls both members until the group is stable with two members owning
/// two partitions each (as the broker and the clients see it).
fn wait_stable(broker: &TestBroker, members: &[&BaseConsumer]) -> Described {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for c in members {
            let _ = c.poll(Duration::from_millis(50));
        }
        let d = describe(broker);
        let split = d.members.len() == 2
            && d.members
                .values()
                .all(|(e, p)| *e == d.group_epoch && p.len() == 2)
            && members.iter().all(|c| assigned(c).len() == 2);
        if split {
            return d;
        }
        assert!(Instant::now() < deadline, "group never settled: {d:?}");
    }
}

#[test]
fn kip848_members_keep_ids_epochs_and_partitions_across_sigterm_and_kill9() {
    let mut broker = TestBroker::start();
    broker.pin_port();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS);

    let a = member(&bootstrap);
    let b = member(&bootstrap);
    let mut ledger = Ledger::default();
    // Settle on an empty topic, so the polls while waiting drop nothing.
    let settled = wait_stable(&broker, &[&a, &b]);
    produce_round(&bootstrap, "before");
    ledger.consume_until(&[&a, &b], 40, "the first round");
    let before = describe(&broker);
    assert_eq!(before, settled, "the group moved while consuming");

    for (round, how) in [("after-sigterm", "SIGTERM"), ("after-kill9", "kill -9")] {
        if how == "kill -9" {
            broker.kill9();
        }
        broker.restart();
        // The restored group is what it was, before any member heartbeats.
        assert_eq!(describe(&broker), before, "the group after {how}");
        produce_round(&bootstrap, round);
        let want = ledger.distinct() + 40;
        ledger.consume_until(&[&a, &b], want, round);
        // The members carried on: same ids, epochs and partitions.
        assert_eq!(
            describe(&broker),
            before,
            "the group after {how} and a round"
        );
    }

    // Every record of the three rounds, each on its partition, in order.
    let mut delivered: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for (at, v) in &ledger.deliveries {
        delivered.insert(*at, v.clone());
    }
    for p in 0..PARTITIONS {
        let got: Vec<&String> = delivered
            .range((p, 0)..(p, i64::MAX))
            .map(|(_, v)| v)
            .collect();
        let want: Vec<String> = ["before", "after-sigterm", "after-kill9"]
            .iter()
            .flat_map(|r| {
                (0..40)
                    .filter(move |i| i % PARTITIONS == p)
                    .map(move |i| format!("{r}-{i}"))
            })
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "partition {p}");
    }
}
