//! ListOffsets: earliest/latest watermarks and timestamp lookups must be exact.
//! 1,000 records with timestamps T0 + 10*i are written in ten separate batches;
//! a lookup for time t must return the first offset whose timestamp is >= t,
//! including lookups that fall inside a batch and across batch boundaries.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "timed";
const COUNT: usize = 1_000;
const BATCHES: usize = 10;
const T0: i64 = 1_600_000_000_000;

fn produce_timed_records(bootstrap: &str) {
    let cfg = producer_config(bootstrap);
    // One produce_all call per batch: each call waits for all its acks, so the
    // ten groups necessarily land in (at least) ten distinct record batches.
    let per_batch = COUNT / BATCHES;
    for b in 0..BATCHES {
        let msgs: Vec<Out> = (b * per_batch..(b + 1) * per_batch)
            .map(|i| Out {
                value: format!("timed-{i}"),
                timestamp: Some(T0 + 10 * i as i64),
                partition: Some(0),
                ..Out::default()
            })
            .collect();
        let acked = produce_all_acked(&cfg, TOPIC, &msgs, Duration::from_secs(30));
        for (j, a) in acked.iter().enumerate() {
            assert_eq!((a.partition, a.offset), (0, (b * per_batch + j) as i64));
        }
    }
}

fn offset_for_time(consumer: &BaseConsumer, ts: i64) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(ts))
        .unwrap();
    let result = consumer
        .offsets_for_times(tpl, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("ListOffsets for timestamp {ts} failed: {e}"));
    let elem = result
        .find_partition(TOPIC, 0)
        .expect("partition 0 in ListOffsets result");
    elem.error()
        .unwrap_or_else(|e| panic!("ListOffsets for timestamp {ts}: partition error {e}"));
    elem.offset()
}

#[test]
fn watermarks_are_zero_and_record_count() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1);

    let consumer: BaseConsumer = consumer_config(&bootstrap).create().unwrap();
    assert_eq!(
        consumer
            .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
            .unwrap(),
        (0, 0),
        "empty partition"
    );

    produce_timed_records(&bootstrap);
    assert_eq!(
        consumer
            .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
            .unwrap(),
        (0, COUNT as i64),
        "(earliest, latest) after {COUNT} records"
    );
}

#[test]
fn offsets_for_times_return_first_offset_at_or_after_the_timestamp() {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1);
    produce_timed_records(&bootstrap);
    let consumer: BaseConsumer = consumer_config(&bootstrap).create().unwrap();

    // Before the first record, and exactly at it.
    assert_eq!(
        offset_for_time(&consumer, T0 - 1_000),
        Offset::Offset(0),
        "timestamp before all records"
    );
    assert_eq!(
        offset_for_time(&consumer, T0),
        Offset::Offset(0),
        "timestamp of the first record"
    );

    // Between records k and k+1 -> k+1; exactly at record k -> k. Includes
    // batch boundaries (k = 99, 100, 899) and the last record.
    for k in [0usize, 1, 7, 50, 98, 99, 100, 101, 450, 500, 899, 900, 998] {
        assert_eq!(
            offset_for_time(&consumer, T0 + 10 * k as i64 + 5),
            Offset::Offset(k as i64 + 1),
            "timestamp between records {k} and {}",
            k + 1
        );
        assert_eq!(
            offset_for_time(&consumer, T0 + 10 * k as i64),
            Offset::Offset(k as i64),
            "timestamp of record {k}"
        );
    }
    let last = COUNT as i64 - 1;
    assert_eq!(
        offset_for_time(&consumer, T0 + 10 * last),
        Offset::Offset(last),
        "timestamp of the last record"
    );

    // Past the last record: no such offset, reported as -1 (librdkafka's End).
    assert_eq!(
        offset_for_time(&consumer, T0 + 10 * last + 5),
        Offset::End,
        "timestamp just past the last record"
    );
    assert_eq!(
        offset_for_time(&consumer, T0 + 1_000_000_000),
        Offset::End,
        "timestamp far in the future"
    );
}
