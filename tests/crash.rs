//! Durability under SIGKILL: twenty times over one data directory, the broker
//! is killed while an acks=all producer (no retries, so nothing is ever written
//! twice) has messages in flight. After each restart, every acknowledged value
//! must be present exactly once at the offset its ack reported, no value may
//! appear twice, offsets must be contiguous from 0, each partition must hold
//! its values in send order, and nothing seen after an earlier restart may
//! move or vanish.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{Producer, PurgeConfig};

const TOPIC: &str = "crashy";
const PARTITIONS: i32 = 2;
const CYCLES: usize = 20;
/// Minimum acks per cycle before the kill; the actual threshold varies by
/// cycle (200..400) so the kill lands at different points of the stream.
const ACKS_BEFORE_KILL: usize = 200;
/// Upper bound on messages enqueued but not yet reported.
const MAX_OUTSTANDING: usize = 1_000;
/// Messages enqueued per ~1 ms step: a steady stream (a few thousand per
/// second, more than a debug build acks) rather than one burst, so the kill lands while produce requests
/// are on the wire and being written.
const BURST: usize = 25;

fn value_of(seq: usize) -> String {
    format!("seq-{seq:08}")
}

fn seq_of(value: &str) -> usize {
    value
        .strip_prefix("seq-")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected value {value:?}"))
}

/// Produces sequential values until at least ACKS_BEFORE_KILL of them are
/// acknowledged with more still in flight, then SIGKILLs the broker. Returns
/// the outcome (Some(ack) or None for failed/unknown) of every value sent.
fn produce_then_kill(
    broker: &mut TestBroker,
    cycle: usize,
    next_seq: &mut usize,
) -> BTreeMap<usize, Option<Acked>> {
    let kill_after = ACKS_BEFORE_KILL + (cycle * 53) % 200;
    let mut cfg = producer_config(&broker.bootstrap());
    cfg.set("message.send.max.retries", "0")
        .set("retries", "0")
        .set("enable.idempotence", "false")
        .set("linger.ms", "2")
        .set("batch.num.messages", "20")
        .set("message.timeout.ms", "10000");
    let producer = recording_producer(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = *next_seq;

    loop {
        let (acked, reported) = {
            let o = producer.context().outcomes.lock().unwrap();
            if let Some((seq, Err(e))) = o.iter().find(|(_, r)| r.is_err()) {
                panic!("message seq {seq} failed before the broker was killed: {e}");
            }
            (o.len(), o.len())
        };
        let sent = *next_seq - first;
        if acked >= kill_after && sent > reported {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {acked} of {sent} messages acknowledged within 30s (cycle start seq {first})"
        );
        for _ in 0..BURST.min(MAX_OUTSTANDING - (sent - reported)) {
            let seq = *next_seq;
            let msg = Out {
                value: value_of(seq),
                partition: Some((seq % PARTITIONS as usize) as i32),
                ..Out::default()
            };
            send_one(&producer, TOPIC, seq, &msg, deadline);
            *next_seq += 1;
        }
        producer.poll(Duration::from_millis(1));
    }

    broker.kill9();

    // Fail everything still queued or in flight rather than waiting out
    // message.timeout.ms; their fate on disk is unknown either way.
    producer.purge(PurgeConfig::default().queue().inflight());
    let sent = *next_seq - first;
    let deadline = Instant::now() + Duration::from_secs(15);
    while producer.context().outcomes.lock().unwrap().len() < sent {
        assert!(
            Instant::now() < deadline,
            "delivery reports still missing 15s after the kill"
        );
        producer.poll(Duration::from_millis(20));
    }
    let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
    outcomes.into_iter().map(|(seq, o)| (seq, o.ok())).collect()
}

/// Reads the whole topic from offset 0 (up to the high watermarks).
fn read_everything(bootstrap: &str) -> BTreeMap<i32, Vec<(i64, String)>> {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().unwrap();
    let mut expected = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .expect("watermarks");
        assert_eq!(low, 0, "low watermark of partition {p}");
        expected.insert(p, high as usize);
    }
    consume_exactly(bootstrap, TOPIC, &expected, Duration::from_secs(60))
        .into_iter()
        .map(|(p, msgs)| {
            (
                p,
                msgs.iter()
                    .map(|m| (m.offset(), value_str(m).expect("value")))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn acked_messages_survive_sigkill_twenty_cycles() {
    let started = Instant::now();
    let mut broker = TestBroker::start();
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);

    let mut next_seq = 0usize;
    // seq -> (partition, offset) for every acknowledged value, ever.
    let mut acked: HashMap<usize, (i32, i64)> = HashMap::new();
    // What the log looked like after the previous restart.
    let mut previous: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    // Messages whose outcome the kill left unknown, over all cycles.
    let mut unacked_total = 0usize;

    for cycle in 1..=CYCLES {
        let outcomes = produce_then_kill(&mut broker, cycle, &mut next_seq);
        let acked_now = outcomes.values().filter(|o| o.is_some()).count();
        let unacked_now = outcomes.len() - acked_now;
        unacked_total += unacked_now;
        assert!(
            acked_now >= ACKS_BEFORE_KILL,
            "cycle {cycle}: {acked_now} acked"
        );
        for (seq, o) in outcomes {
            if let Some(a) = o {
                assert_eq!(a.partition, (seq % PARTITIONS as usize) as i32);
                acked.insert(seq, (a.partition, a.offset));
            }
        }

        broker.restart();
        let log = read_everything(&broker.bootstrap());

        let mut seen: HashSet<usize> = HashSet::new();
        for (&p, entries) in &log {
            let mut last_seq = None;
            for (n, (offset, value)) in entries.iter().enumerate() {
                assert_eq!(
                    *offset, n as i64,
                    "cycle {cycle}: partition {p} offsets must be contiguous from 0"
                );
                let seq = seq_of(value);
                assert!(
                    seen.insert(seq),
                    "cycle {cycle}: value {value} appears more than once"
                );
                assert_eq!(
                    (seq % PARTITIONS as usize) as i32,
                    p,
                    "cycle {cycle}: {value} in the wrong partition"
                );
                assert!(seq < next_seq, "cycle {cycle}: {value} was never sent");
                assert!(
                    last_seq < Some(seq),
                    "cycle {cycle}: partition {p} has {value} at offset {offset} out of send order"
                );
                last_seq = Some(seq);
                if let Some(&(ap, ao)) = acked.get(&seq) {
                    assert_eq!(
                        (ap, ao),
                        (p, *offset),
                        "cycle {cycle}: {value} found at {p}/{offset} but was acked at {ap}/{ao}"
                    );
                }
            }
        }
        let mut lost: Vec<usize> = acked
            .keys()
            .filter(|s| !seen.contains(s))
            .copied()
            .collect();
        lost.sort();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: {} acknowledged values lost after SIGKILL + restart, first few: {:?}",
            lost.len(),
            lost.iter()
                .take(10)
                .map(|&s| (value_of(s), acked[&s]))
                .collect::<Vec<_>>()
        );
        for (p, before) in &previous {
            let now = &log[p];
            assert!(
                now.len() >= before.len() && now[..before.len()] == before[..],
                "cycle {cycle}: partition {p} no longer starts with what was readable after the previous restart \
                 (had {} records, now {})",
                before.len(),
                now.len()
            );
        }
        previous = log;
        eprintln!(
            "cycle {cycle}: {acked_now} acked and {unacked_now} unacknowledged at the kill, {} acked total, {} sent, log sizes {:?}, {:?} elapsed",
            acked.len(),
            next_seq,
            previous.iter().map(|(p, v)| (*p, v.len())).collect::<Vec<_>>(),
            started.elapsed()
        );
    }
    // Guard against a vacuous run: the kills must have cut some messages off.
    assert!(
        unacked_total > 0,
        "every message was acknowledged before its kill; the test never killed mid-stream"
    );
    broker.assert_alive();
}
