//! Clean shutdown and restart: SIGTERM makes the broker exit with code 0, and
//! everything acknowledged before it is served again, byte for byte and at the
//! same offsets, by a new broker process on the same data directory — under
//! both durability policies.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::message::{Message, Timestamp};

const TOPIC: &str = "persisted";
const COUNT: usize = 500;

fn sigterm_then_restart_serves_everything(extra_args: &[&str]) {
    let mut broker = TestBroker::start_with(extra_args);
    create_topic(&broker.bootstrap(), TOPIC, 2);
    let msgs: Vec<Out> = (0..COUNT)
        .map(|i| Out {
            key: Some(format!("k{i}")),
            value: format!("persisted-{i}"),
            headers: vec![("i".into(), i.to_string())],
            timestamp: Some(1_650_000_000_000 + i as i64),
            partition: Some((i % 2) as i32),
        })
        .collect();
    let acked = produce_all_acked(
        &producer_config(&broker.bootstrap()),
        TOPIC,
        &msgs,
        Duration::from_secs(30),
    );

    let status = broker.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );

    broker.restart();
    let consumed = consume_exactly(
        &broker.bootstrap(),
        TOPIC,
        &BTreeMap::from([(0, COUNT / 2), (1, COUNT / 2)]),
        Duration::from_secs(30),
    );
    for (i, a) in acked.iter().enumerate() {
        let m = &consumed[&a.partition][a.offset as usize];
        assert_eq!(m.offset(), a.offset);
        assert_eq!(key_str(m), Some(format!("k{i}")), "key of #{i}");
        assert_eq!(
            value_str(m),
            Some(format!("persisted-{i}")),
            "value of #{i}"
        );
        assert_eq!(header_str(m, "i"), Some(i.to_string()), "header of #{i}");
        assert_eq!(
            m.timestamp(),
            Timestamp::CreateTime(1_650_000_000_000 + i as i64),
            "timestamp of #{i}"
        );
    }

    // A second clean shutdown of the restarted broker is clean too.
    let status = broker.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status of the restarted broker"
    );
}

#[test]
fn sigterm_exits_zero_and_data_survives_restart_with_fsync_durability() {
    sigterm_then_restart_serves_everything(&[]);
}

#[test]
fn sigterm_exits_zero_and_data_survives_restart_with_page_cache_durability() {
    sigterm_then_restart_serves_everything(&["--durability", "page-cache"]);
}
