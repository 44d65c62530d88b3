//! Compressed record batches: for each codec librdkafka supports (gzip,
//! snappy, lz4, zstd), 1,000 messages produced with `compression.type` set must
//! be stored and fetched back byte-for-byte, at contiguous offsets.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::message::Message;

const COUNT: usize = 1_000;

fn round_trip_with(codec: &str) {
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    let topic = format!("compressed-{codec}");
    create_topic(&bootstrap, &topic, 1);

    // Repetitive values so that every codec actually shrinks the batches.
    let value = |i: usize| format!("{codec}-value-{i}-{}", "abcdefgh".repeat(i % 17));
    let msgs: Vec<Out> = (0..COUNT)
        .map(|i| Out {
            key: Some(format!("k-{i}")),
            value: value(i),
            partition: Some(0),
            ..Out::default()
        })
        .collect();
    let mut cfg = producer_config(&bootstrap);
    cfg.set("compression.type", codec)
        .set("batch.num.messages", "200");
    let acked = produce_all_acked(&cfg, &topic, &msgs, Duration::from_secs(60));
    for (i, a) in acked.iter().enumerate() {
        assert_eq!(
            (a.partition, a.offset),
            (0, i as i64),
            "{codec}: delivery report of #{i}"
        );
    }

    let consumed = consume_exactly(
        &bootstrap,
        &topic,
        &BTreeMap::from([(0, COUNT)]),
        Duration::from_secs(60),
    );
    for (i, m) in consumed[&0].iter().enumerate() {
        assert_eq!(m.offset(), i as i64, "{codec}: offset");
        assert_eq!(
            key_str(m),
            Some(format!("k-{i}")),
            "{codec}: key at offset {i}"
        );
        assert_eq!(value_str(m), Some(value(i)), "{codec}: value at offset {i}");
    }
}

#[test]
fn gzip_batches_round_trip_exactly() {
    round_trip_with("gzip");
}

#[test]
fn snappy_batches_round_trip_exactly() {
    round_trip_with("snappy");
}

#[test]
fn lz4_batches_round_trip_exactly() {
    round_trip_with("lz4");
}

#[test]
fn zstd_batches_round_trip_exactly() {
    round_trip_with("zstd");
}
