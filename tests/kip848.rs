//! KIP-848, the consumer group protocol (`group.protocol=consumer`), driven by
//! librdkafka: members join with ConsumerGroupHeartbeat, the broker assigns
//! partitions, and a second member joining takes over half of them without
//! any partition being consumed twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

const PARTITIONS: i32 = 4;

fn kip848_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    cfg.create().expect("consumer")
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every consumer until `done` holds, collecting (partition, offset, value).
fn poll_until(
    consumers: &[&BaseConsumer],
    seen: &mut [BTreeMap<(i32, i64), String>],
    deadline: Instant,
    what: &str,
    done: impl Fn(&[&BaseConsumer], &[BTreeMap<(i32, i64), String>]) -> bool,
) {
    while !done(consumers, seen) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for (i, c) in consumers.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(50)) {
                let m = m.expect("consumer error");
                let value = value_str(&m).expect("value");
                let previous = seen[i].insert((m.partition(), m.offset()), value);
                assert!(
                    previous.is_none(),
                    "consumer {i} got {}/{} twice",
                    m.partition(),
                    m.offset()
                );
            }
        }
    }
}

/// Sends `{prefix}-0..40`, message i to partition i % PARTITIONS.
fn produce_round(bootstrap: &str, topic: &str, prefix: &str) {
    let msgs: Vec<Out> = (0..40)
        .map(|i| Out {
            value: format!("{prefix}-{i}"),
            partition: Some(i % PARTITIONS),
            ..Out::default()
        })
        .collect();
    produce_all_acked(
        &producer_config(bootstrap),
        topic,
        &msgs,
        Duration::from_secs(30),
    );
}

#[test]
fn consumer_protocol_members_join_and_split_partitions_on_rebalance() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = "kip848-topic";
    create_topic(&bootstrap, topic, PARTITIONS);
    produce_round(&bootstrap, topic, "first");

    let deadline = Instant::now() + Duration::from_secs(60);
    let a = kip848_consumer(&bootstrap, "kip848-group");
    a.subscribe(&[topic]).unwrap();
    let mut seen = vec![BTreeMap::new(), BTreeMap::new()];
    // The lone member owns every partition and reads the first batch.
    poll_until(
        &[&a],
        &mut seen[..1],
        deadline,
        "the first member's assignment and batch",
        |c, s| assigned(c[0]).len() == PARTITIONS as usize && s[0].len() == 40,
    );

    // Commit, so partitions that move to the second member resume here.
    a.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");

    let b = kip848_consumer(&bootstrap, "kip848-group");
    b.subscribe(&[topic]).unwrap();
    poll_until(
        &[&a, &b],
        &mut seen,
        deadline,
        "the rebalance to two members",
        |c, _| {
            let (pa, pb) = (assigned(c[0]), assigned(c[1]));
            pa.len() == 2 && pb.len() == 2 && pa.is_disjoint(&pb)
        },
    );

    produce_round(&bootstrap, topic, "second");
    poll_until(
        &[&a, &b],
        &mut seen,
        deadline,
        "the second batch",
        |_, s| s[0].len() + s[1].len() == 80,
    );

    // Every message exactly once across the two members, each on the
    // partition it was sent to, and the second batch split by ownership.
    let (pa, pb) = (assigned(&a), assigned(&b));
    let mut all: BTreeMap<(i32, i64), String> = BTreeMap::new();
    for (i, s) in seen.iter().enumerate() {
        for (k, v) in s {
            assert!(all.insert(*k, v.clone()).is_none(), "{k:?} consumed twice");
            if v.starts_with("second-") {
                let owner = if i == 0 { &pa } else { &pb };
                assert!(
                    owner.contains(&k.0),
                    "consumer {i} read {v} from {k:?} it does not own"
                );
            }
        }
    }
    for p in 0..PARTITIONS {
        let values: Vec<&String> = all.range((p, 0)..(p, i64::MAX)).map(|(_, v)| v).collect();
        let expected: Vec<String> = (0..40)
            .filter(|i| i % PARTITIONS == p)
            .map(|i| format!("first-{i}"))
            .chain(
                (0..40)
                    .filter(|i| i % PARTITIONS == p)
                    .map(|i| format!("second-{i}")),
            )
            .collect();
        assert_eq!(values, expected.iter().collect::<Vec<_>>(), "partition {p}");
    }
}
