//! Retention, compaction, topic configs and DeleteRecords, end to end through
//! librdkafka against the real binary.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const DEADLINE: Duration = Duration::from_secs(90);

/// A record to produce: key, value (None: a tombstone), timestamp.
type ToSend = (String, Option<String>, Option<i64>);

fn create_topic_with(bootstrap: &str, name: &str, configs: &[(&str, &str)]) {
    let admin = admin_client(bootstrap);
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = block_on(
        Duration::from_secs(20),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics");
    assert_eq!(results, vec![Ok(name.to_string())]);
}

/// Produces `(key, value, timestamp)` records in order, one flush per `batch`
/// records; `None` values are tombstones. Panics unless all are acknowledged.
fn produce(bootstrap: &str, topic: &str, records: &[ToSend], batch: usize) {
    let producer: BaseProducer = producer_config(bootstrap)
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("producer");
    for chunk in records.chunks(batch.max(1)) {
        for (k, v, ts) in chunk {
            let mut r: BaseRecord<'_, str, str> = BaseRecord::to(topic).key(k.as_str());
            if let Some(v) = v {
                r = r.payload(v.as_str());
            }
            if let Some(ts) = ts {
                r = r.timestamp(*ts);
            }
            producer.send(r).map_err(|(e, _)| e).expect("enqueue");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
}

fn watermarks(bootstrap: &str, topic: &str) -> (i64, i64) {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().expect("consumer");
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("ListOffsets")
}

/// Polls `check` until it returns Some, failing at the deadline with `what`.
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every record of partition 0 from the earliest offset to the high
/// watermark, as (offset, key, value).
fn read_all(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let (_, high) = watermarks(bootstrap, topic);
    let consumer: BaseConsumer = consumer_config(bootstrap)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    // Offset 0 may lie before the log start offset: the broker answers
    // OFFSET_OUT_OF_RANGE and the consumer resets to the earliest offset.
    tpl.add_partition_offset(topic, 0, Offset::Offset(0))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|(o, _, _)| o + 1 < high) && high > 0 {
        assert!(
            Instant::now() < deadline,
            "read_all timed out at {:?}",
            out.last()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((m.offset(), key_str(&m).unwrap_or_default(), value_str(&m))),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

fn partition_files(dir: &Path, topic: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(format!("{topic}-0")))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn log_bytes(dir: &Path, topic: &str) -> u64 {
    partition_files(dir, topic)
        .iter()
        .filter(|n| n.ends_with(".log"))
        .map(|n| {
            std::fs::metadata(dir.join(format!("{topic}-0")).join(n))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

fn fast_log_manager() -> Vec<&'static str> {
    vec![
        "--override",
        "log.retention.check.interval.ms=100",
        "--override",
        "log.cleaner.backoff.ms=100",
    ]
}

#[test]
fn time_retention_deletes_expired_segments_and_earliest_offset_follows() {
    let broker = TestBroker::start_with(&fast_log_manager());
    let b = broker.bootstrap();
    // Every one-record batch fills its own 100-byte segment.
    create_topic_with(
        &b,
        "aged",
        &[("segment.bytes", "100"), ("retention.ms", "3600000")],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 24 * 3600 * 1000;
    let records: Vec<_> = (0..10)
        .map(|i| {
            let ts = if i < 5 { now - day } else { now };
            (format!("k{i}"), Some(format!("v{i}")), Some(ts))
        })
        .collect();
    produce(&b, "aged", &records, 1);
    let (low, high) = wait_for("old segments to be deleted", DEADLINE, || {
        let w = watermarks(&b, "aged");
        (w.0 > 0).then_some(w)
    });
    assert_eq!((low, high), (5, 10));
    let logs: Vec<String> = partition_files(&broker.data_dir(), "aged")
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(
        logs.first().map(String::as_str),
        Some("00000000000000000005.log")
    );
    // A consumer starting before the log start offset resets to it.
    let got = read_all(&b, "aged");
    let expected: Vec<_> = (5..10)
        .map(|i| (i, format!("k{i}"), Some(format!("v{i}"))))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn size_retention_keeps_the_partition_under_the_bound_plus_one_segment() {
    let broker = TestBroker::start_with(&fast_log_manager());
    let b = broker.bootstrap();
    create_topic_with(
        &b,
        "sized",
        &[("segment.bytes", "300"), ("retention.bytes", "1000")],
    );
    let records: Vec<_> = (0..60)
        .map(|i| (format!("k{i}"), Some(format!("value-{i:04}")), None))
        .collect();
    produce(&b, "sized", &records, 1);
    let dir = broker.data_dir();
    let size = wait_for("size retention", DEADLINE, || {
        let s = log_bytes(&dir, "sized");
        (s <= 1000 + 300).then_some(s)
    });
    let (low, high) = watermarks(&b, "sized");
    assert!(low > 0 && high == 60, "low {low} high {high} size {size}");
    let got = read_all(&b, "sized");
    let expected: Vec<_> = (low..60)
        .map(|i| (i, format!("k{i}"), Some(format!("value-{i:04}"))))
        .collect();
    assert_eq!(got, expected);
}

/// 100k records over 1k keys: 100 rounds of updates; in round 50 the keys
/// `k % 10 == 1` are deleted (and later rewritten), in the last round the
/// keys `k % 10 == 0` are deleted for good. A sentinel record rolls the
/// segment so that every one of them is in the cleanable part.
fn compaction_dataset() -> (Vec<ToSend>, BTreeMap<String, String>) {
    let mut records = Vec::with_capacity(100_001);
    let mut latest = BTreeMap::new();
    for round in 0..100 {
        for k in 0..1000 {
            let key = format!("key-{k:04}");
            let tombstone = (round == 50 && k % 10 == 1) || (round == 99 && k % 10 == 0);
            let value = (!tombstone).then(|| format!("r{round}-{k}"));
            match &value {
                Some(v) => latest.insert(key.clone(), v.clone()),
                None => latest.remove(&key),
            };
            records.push((key, value, None));
        }
    }
    // Larger than segment.bytes: it always starts a new active segment.
    let sentinel = "s".repeat(200_001);
    records.push(("zz-sentinel".to_string(), Some(sentinel.clone()), None));
    latest.insert("zz-sentinel".to_string(), sentinel);
    (records, latest)
}

/// Waits until a full read is exactly the latest value of each live key
/// with strictly increasing offsets.
fn wait_until_compacted(b: &str, topic: &str, latest: &BTreeMap<String, String>) {
    wait_for("a fully compacted log", DEADLINE, || {
        let got = read_all(b, topic);
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "offsets must increase"
        );
        let mut map = BTreeMap::new();
        for (_, k, v) in &got {
            map.insert(k.clone(), v.clone());
        }
        let exact = got.len() == latest.len()
            && map
                .iter()
                .all(|(k, v)| v.as_ref() == latest.get(k) && v.is_some());
        exact.then_some(())
    });
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_survives_kill9_mid_clean() {
    let mut args = fast_log_manager();
    // Throttle the cleaner so that the kill lands while it is writing.
    args.extend(["--override", "log.cleaner.io.max.bytes.per.second=3000000"]);
    let mut broker = TestBroker::start_with(&args);
    let b = broker.bootstrap();
    create_topic_with(
        &b,
        "compacted",
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "200000"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "1000"),
        ],
    );
    let (records, latest) = compaction_dataset();
    produce(&b, "compacted", &records, 20_000);
    let dir = broker.data_dir();
    wait_for(
        "the cleaner to be writing a .cleaned segment",
        DEADLINE,
        || {
            partition_files(&dir, "compacted")
                .iter()
                .any(|n| n.ends_with(".cleaned"))
                .then_some(())
        },
    );
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    wait_until_compacted(&b, "compacted", &latest);
    let (_, high) = watermarks(&b, "compacted");
    assert_eq!(high, 100_001, "the log end offset never moves back");
    broker.assert_alive();
}

#[test]
fn keyless_records_on_a_compacted_topic_are_rejected_with_invalid_record() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic_with(&b, "keyed", &[("cleanup.policy", "compact")]);
    let mut config = producer_config(&b);
    config
        .set("message.timeout.ms", "10000")
        .set("retries", "0");
    let outcomes = produce_all(
        &config,
        "keyed",
        &[Out {
            key: None,
            value: "no key".into(),
            ..Out::default()
        }],
        Duration::from_secs(30),
    );
    let text = format!("{outcomes:?}");
    assert!(
        matches!(
            outcomes.as_slice(),
            [Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::InvalidRecord
            ))]
        ),
        "{text}"
    );
}

#[test]
fn delete_records_moves_the_log_start_offset_durably() {
    let mut broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic_with(&b, "trimmed", &[]);
    let records: Vec<_> = (0..20)
        .map(|i| (format!("k{i}"), Some(format!("v{i}")), None))
        .collect();
    produce(&b, "trimmed", &records, 20);
    let admin = admin_client(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trimmed", 0, Offset::Offset(12))
        .unwrap();
    let result = block_on(
        Duration::from_secs(20),
        admin.delete_records(&tpl, &admin_opts()),
    )
    .expect("DeleteRecords");
    let e = result.find_partition("trimmed", 0).unwrap();
    assert_eq!(e.offset(), Offset::Offset(12));
    assert_eq!(watermarks(&b, "trimmed"), (12, 20));
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(watermarks(&b, "trimmed"), (12, 20));
    let got = read_all(&b, "trimmed");
    assert_eq!(got.first().map(|r| r.0), Some(12));
    assert_eq!(got.len(), 8);
}

#[test]
fn topic_configs_round_trip_through_the_admin_client_and_survive_restart() {
    let mut broker = TestBroker::start_with(&["--override", "log.retention.bytes=123456"]);
    let b = broker.bootstrap();
    create_topic_with(&b, "tuned", &[]);
    let admin = admin_client(&b);
    let alter = AlterConfig::new(ResourceSpecifier::Topic("tuned"))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "compact,delete")
        .set("min.cleanable.dirty.ratio", "0.25")
        .set("compression.type", "gzip");
    let res = block_on(
        Duration::from_secs(20),
        admin.alter_configs([&alter], &admin_opts()),
    )
    .expect("AlterConfigs");
    assert!(res[0].is_ok(), "{res:?}");

    // rdkafka's alter_configs reports every resource as Ok (it drops the
    // per-resource error), so bad values are checked through CreateTopics,
    // and below by describing: the refused alteration changed nothing.
    let bad = AlterConfig::new(ResourceSpecifier::Topic("tuned")).set("retention.ms", "soon");
    block_on(
        Duration::from_secs(20),
        admin.alter_configs([&bad], &admin_opts()),
    )
    .expect("AlterConfigs");
    for (k, v) in [
        ("retention.ms", "soon"),
        ("cleanup.policy", "forever"),
        ("segment.bytes", "1"),
    ] {
        let topic = NewTopic::new("refused", 1, TopicReplication::Fixed(1)).set(k, v);
        let res = block_on(
            Duration::from_secs(20),
            admin.create_topics([&topic], &admin_opts()),
        )
        .expect("CreateTopics");
        assert_eq!(
            res,
            vec![Err((
                "refused".to_string(),
                RDKafkaErrorCode::InvalidConfig
            ))],
            "{k}={v}"
        );
    }

    let check = |b: &str| {
        let admin = admin_client(b);
        let res = block_on(
            Duration::from_secs(20),
            admin.describe_configs([&ResourceSpecifier::Topic("tuned")], &admin_opts()),
        )
        .expect("DescribeConfigs");
        let resource = res[0].as_ref().expect("topic described");
        let get = |n: &str| {
            let e = resource
                .get(n)
                .unwrap_or_else(|| panic!("{n} not described"));
            (
                e.value.clone().unwrap_or_default(),
                format!("{:?}", e.source),
            )
        };
        assert_eq!(
            get("retention.ms"),
            ("3600000".into(), "DynamicTopic".into())
        );
        assert_eq!(
            get("cleanup.policy"),
            ("compact,delete".into(), "DynamicTopic".into())
        );
        assert_eq!(
            get("min.cleanable.dirty.ratio"),
            ("0.25".into(), "DynamicTopic".into())
        );
        assert_eq!(
            get("compression.type"),
            ("gzip".into(), "DynamicTopic".into())
        );
        assert_eq!(
            get("retention.bytes"),
            ("123456".into(), "StaticBroker".into())
        );
        assert_eq!(
            get("delete.retention.ms"),
            ("86400000".into(), "Default".into())
        );
        assert_eq!(
            get("message.timestamp.after.max.ms"),
            ("3600000".into(), "Default".into())
        );
        assert_eq!(
            get("unclean.leader.election.enable"),
            ("false".into(), "Default".into())
        );
    };
    check(&b);
    broker.restart();
    let b = broker.bootstrap();
    check(&b);

    // compression.type=gzip: a record produced uncompressed is stored gzipped.
    produce(&b, "tuned", &[("k".into(), Some("v".repeat(100)), None)], 1);
    let log = std::fs::read(broker.data_dir().join("tuned-0/00000000000000000000.log")).unwrap();
    assert!(log.len() > 61, "{} bytes", log.len());
    let attributes = i16::from_be_bytes([log[21], log[22]]);
    assert_eq!(attributes & 7, 1, "stored batch codec is gzip");
    let got = read_all(&b, "tuned");
    assert_eq!(got, vec![(0, "k".to_string(), Some("v".repeat(100)))]);
}
