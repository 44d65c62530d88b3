//! Produce/Fetch round trip at volume: 100,000 keyed messages with headers and
//! explicit CreateTime timestamps go in with acks=all through librdkafka's own
//! partitioner, and every one must come back exactly where its delivery report
//! said it was written, with identical key, value, header and timestamp.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::*;
use rdkafka::message::{Message, Timestamp};

const TOPIC: &str = "round-trip";
const PARTITIONS: i32 = 4;
const COUNT: usize = 100_000;
const KEYS: usize = 97;
const BASE_TS: i64 = 1_700_000_000_000;

fn message(i: usize) -> Out {
    Out {
        key: Some(format!("key-{}", i % KEYS)),
        value: format!("value-{i}"),
        headers: vec![("seq".to_string(), i.to_string())],
        timestamp: Some(BASE_TS + i as i64),
        partition: None,
    }
}

#[test]
fn hundred_thousand_keyed_messages_round_trip_exactly() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS);

    let msgs: Vec<Out> = (0..COUNT).map(message).collect();
    let mut cfg = producer_config(&bootstrap);
    cfg.set("queue.buffering.max.messages", "200000")
        .set("batch.num.messages", "5000");
    let acked = produce_all_acked(&cfg, TOPIC, &msgs, Duration::from_secs(120));

    // Every delivery report carries the timestamp we set, and every key sticks
    // to a single partition.
    let mut key_partition: HashMap<usize, i32> = HashMap::new();
    for (i, a) in acked.iter().enumerate() {
        assert_eq!(
            a.timestamp,
            Timestamp::CreateTime(BASE_TS + i as i64),
            "delivery report timestamp of #{i}"
        );
        assert!(
            (0..PARTITIONS).contains(&a.partition),
            "delivery partition {} of #{i}",
            a.partition
        );
        let p = *key_partition.entry(i % KEYS).or_insert(a.partition);
        assert_eq!(
            a.partition,
            p,
            "key-{} was delivered to two partitions",
            i % KEYS
        );
    }

    // Delivery reports per partition: offsets 0..n, in production order.
    let mut by_position: HashMap<(i32, i64), usize> = HashMap::new();
    let mut per_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, a) in acked.iter().enumerate() {
        assert!(
            by_position.insert((a.partition, a.offset), i).is_none(),
            "two messages acked at {}/{}",
            a.partition,
            a.offset
        );
        per_partition.entry(a.partition).or_default().push(i);
    }
    for (p, idx) in &per_partition {
        for (n, &i) in idx.iter().enumerate() {
            assert_eq!(
                acked[i].offset, n as i64,
                "partition {p}: the {n}th message produced (#{i}) got offset {}",
                acked[i].offset
            );
        }
    }

    let expected = counts_per_partition(&acked);
    let consumed = consume_exactly(&bootstrap, TOPIC, &expected, Duration::from_secs(120));

    let mut total = 0;
    for (p, messages) in &consumed {
        let mut last_index = None;
        for (n, m) in messages.iter().enumerate() {
            assert_eq!(
                m.offset(),
                n as i64,
                "partition {p}: offsets must be contiguous from 0"
            );
            let i = by_position[&(*p, m.offset())];
            assert_eq!(
                key_str(m),
                Some(format!("key-{}", i % KEYS)),
                "key at {p}/{}",
                m.offset()
            );
            assert_eq!(
                value_str(m),
                Some(format!("value-{i}")),
                "value at {p}/{}",
                m.offset()
            );
            assert_eq!(
                header_str(m, "seq"),
                Some(i.to_string()),
                "seq header at {p}/{}",
                m.offset()
            );
            assert_eq!(
                m.headers().map(rdkafka::message::Headers::count),
                Some(1),
                "header count at {p}/{}",
                m.offset()
            );
            assert_eq!(
                m.timestamp(),
                Timestamp::CreateTime(BASE_TS + i as i64),
                "timestamp at {p}/{}",
                m.offset()
            );
            assert_eq!(m.partition(), acked[i].partition);
            assert!(
                last_index < Some(i),
                "partition {p}: message #{i} at offset {} is out of production order",
                m.offset()
            );
            last_index = Some(i);
            total += 1;
        }
    }
    assert_eq!(total, COUNT);
}
