//! The idempotent producer (librdkafka, `enable.idempotence=true`) against a
//! broker that is SIGKILLed and restarted on the same port several times
//! while 100,000 messages are in flight: librdkafka resends what it did not
//! see acknowledged, the broker answers resent batches with their original
//! offsets, and the partition ends holding every message exactly once, in
//! send order, at offsets 0..n with no gaps.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::producer::Producer;

const TOPIC: &str = "exactly-once";
const MESSAGES: usize = 100_000;
/// Kill points: after this many messages were acknowledged.
const KILL_AFTER_ACKS: [usize; 4] = [15_000, 35_000, 60_000, 80_000];
const TIMEOUT: Duration = Duration::from_secs(240);
/// Messages enqueued but not yet acknowledged, at most.
const MAX_UNACKED: usize = 5_000;

fn value_of(seq: usize) -> String {
    format!("seq-{seq:08}")
}

#[test]
fn idempotent_producer_writes_each_message_once_across_broker_kills() {
    let mut broker = TestBroker::start();
    broker.pin_port();
    create_topic(&broker.bootstrap(), TOPIC, 1);

    let mut cfg = producer_config(&broker.bootstrap());
    cfg.set("enable.idempotence", "true")
        .set("message.timeout.ms", "180000")
        .set("linger.ms", "5")
        .set("batch.num.messages", "500")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("retry.backoff.ms", "50");
    let producer = recording_producer(&cfg);
    let deadline = Instant::now() + TIMEOUT;
    let acked = || producer.context().outcomes.lock().unwrap().len();

    let mut kills = KILL_AFTER_ACKS.iter().peekable();
    let mut kills_in_flight = Vec::new();
    let mut next_seq = 0usize;
    loop {
        let done = acked();
        if done == MESSAGES {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {MESSAGES} delivery reports within {TIMEOUT:?}"
        );
        // A steady stream with a bounded number unacknowledged, so every kill
        // lands while batches are on the wire.
        let room = MAX_UNACKED.saturating_sub(next_seq - done);
        for _ in 0..room.min(MESSAGES - next_seq).min(1_000) {
            let msg = Out {
                key: Some(format!("k{}", next_seq % 100)),
                value: value_of(next_seq),
                partition: Some(0),
                ..Out::default()
            };
            send_one(&producer, TOPIC, next_seq, &msg, deadline);
            next_seq += 1;
        }
        producer.poll(Duration::ZERO);
        if let Some(&&at) = kills.peek() {
            let done = acked();
            if done >= at && next_seq > done {
                kills.next();
                kills_in_flight.push(next_seq - done);
                broker.kill9();
                broker.restart();
            }
        }
        producer.poll(Duration::from_millis(1));
    }
    assert_eq!(
        kills_in_flight.len(),
        KILL_AFTER_ACKS.len(),
        "every planned kill happened"
    );
    assert!(
        kills_in_flight.iter().all(|&n| n > 0),
        "each kill landed with messages unacknowledged: {kills_in_flight:?}"
    );
    producer.flush(Duration::from_secs(10)).expect("flush");

    // Every message acknowledged, at offset == its sequence number.
    let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
    for (seq, outcome) in &outcomes {
        let ack = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("message {seq} failed: {e}"));
        assert_eq!(
            (ack.partition, ack.offset),
            (0, *seq as i64),
            "message {seq} acknowledged at the wrong place"
        );
    }
    drop(producer);

    // The log holds each message exactly once, in order, offsets 0..n.
    let expected = BTreeMap::from([(0, MESSAGES)]);
    let got = consume_exactly(
        &broker.bootstrap(),
        TOPIC,
        &expected,
        Duration::from_secs(60),
    );
    let messages = &got[&0];
    assert_eq!(messages.len(), MESSAGES);
    for (i, m) in messages.iter().enumerate() {
        use rdkafka::Message;
        assert_eq!(m.offset(), i as i64, "offsets are contiguous");
        assert_eq!(value_str(m).as_deref(), Some(value_of(i).as_str()));
        assert_eq!(key_str(m), Some(format!("k{}", i % 100)));
    }
    eprintln!("in flight at each kill: {kills_in_flight:?}");
}
