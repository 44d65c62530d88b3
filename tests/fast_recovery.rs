//! Restart after kill -9 under `--durability fsync`: the recovery-point
//! checkpoint follows the durable offset while the broker runs, so recovery
//! at open validates only what lies past it, and a torn tail past it is
//! still found and cut.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const TOPIC: &str = "recovering";
const DEADLINE: Duration = Duration::from_secs(30);

fn value_of(i: usize) -> String {
    format!("value-{i:06}-{}", "x".repeat(100))
}

fn produce(bootstrap: &str, from: usize, count: usize) {
    let msgs: Vec<Out> = (from..from + count)
        .map(|i| Out {
            key: Some(format!("k{i}")),
            value: value_of(i),
            partition: Some(0),
            ..Out::default()
        })
        .collect();
    let acked = produce_all_acked(&producer_config(bootstrap), TOPIC, &msgs, DEADLINE);
    let offsets: Vec<i64> = acked.iter().map(|a| a.offset).collect();
    let expected: Vec<i64> = (from as i64..(from + count) as i64).collect();
    assert_eq!(offsets, expected);
}

/// The recovery point the checkpoint file holds for `TOPIC`-0, if any.
fn checkpointed_recovery_point(data_dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(data_dir.join("recovery-point-offset-checkpoint")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{TOPIC} 0 ")))
        .and_then(|o| o.parse().ok())
}

fn wait_for_checkpoint(data_dir: &Path, offset: i64) {
    let deadline = Instant::now() + DEADLINE;
    while checkpointed_recovery_point(data_dir) != Some(offset) {
        assert!(
            Instant::now() < deadline,
            "the recovery-point checkpoint did not reach {offset} within {DEADLINE:?} (it holds {:?})",
            checkpointed_recovery_point(data_dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The numbers of the "opened logs" line of the broker's current start.
fn recovery_summary(broker: &TestBroker) -> (u64, u64) {
    let stderr = broker.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("opened logs"))
        .unwrap_or_else(|| panic!("no \"opened logs\" line in:\n{stderr}"));
    let field = |name: &str| -> u64 {
        let rest = line
            .split(&format!("{name}="))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {line:?}"));
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad {name} in {line:?}"))
    };
    (field("bytes_validated"), field("batches_validated"))
}

fn consume_values(bootstrap: &str, count: usize) -> Vec<String> {
    let got = consume_exactly(bootstrap, TOPIC, &BTreeMap::from([(0, count)]), DEADLINE);
    got[&0].iter().map(|m| value_str(m).unwrap()).collect()
}

fn segment_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir
        .join(format!("{TOPIC}-0"))
        .join("00000000000000000000.log")
}

/// (position, length) of every batch in a segment file.
fn batches(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        out.push((pos, len));
        pos += len;
    }
    assert_eq!(pos, bytes.len(), "the segment holds whole batches");
    out
}

#[test]
fn restart_after_kill9_validates_nothing_below_the_checkpointed_durable_offset() {
    let mut broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, TOPIC, 1);
    produce(&b, 0, 500);
    produce(&b, 500, 500);
    let dir = broker.data_dir();
    wait_for_checkpoint(&dir, 1000);
    broker.kill9();
    broker.restart();
    assert_eq!(recovery_summary(&broker), (0, 0));
    let expected: Vec<String> = (0..1000).map(value_of).collect();
    assert_eq!(consume_values(&broker.bootstrap(), 1000), expected);
}

#[test]
fn a_torn_tail_past_the_checkpointed_recovery_point_is_validated_and_cut() {
    let mut broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, TOPIC, 1);
    produce(&b, 0, 1000);
    let dir = broker.data_dir();
    wait_for_checkpoint(&dir, 1000);
    broker.kill9();

    // Past the recovery point: one whole batch (a copy of the last one at the
    // next offset; the CRC does not cover the base offset), then half of one.
    let path = segment_file(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let &(pos, len) = batches(&bytes).last().unwrap();
    let mut copy = bytes[pos..pos + len].to_vec();
    let last_offset_delta = i32::from_be_bytes(copy[23..27].try_into().unwrap()) as usize;
    copy[..8].copy_from_slice(&1000i64.to_be_bytes());
    let torn = copy[..len / 2].to_vec();
    bytes.extend_from_slice(&copy);
    bytes.extend_from_slice(&torn);
    std::fs::write(&path, &bytes).unwrap();

    broker.restart();
    assert_eq!(recovery_summary(&broker), (len as u64, 1));
    assert!(
        broker
            .stderr()
            .contains("log recovery truncated a torn or corrupt tail"),
        "no truncation logged"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        bytes.len() - torn.len()
    );
    let copied = 1000 + last_offset_delta + 1;
    let b = broker.bootstrap();
    let values = consume_values(&b, copied);
    let expected: Vec<String> = (0..1000)
        .chain(1000 - last_offset_delta - 1..1000)
        .map(value_of)
        .collect();
    assert_eq!(values, expected);
}
