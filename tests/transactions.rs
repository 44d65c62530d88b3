//! Transactions (exactly-once) against the real binary with librdkafka's
//! transactional producer: commit and abort as seen by read_committed and
//! read_uncommitted consumers, transactional offset commits
//! (`send_offsets_to_transaction`), fencing by a second producer with the
//! same `transactional.id`, the coordinator aborting a transaction past its
//! `transaction.timeout.ms`, broker kills in the middle of a transaction,
//! and a consume-transform-produce loop over 50,000 messages with a broker
//! kill in the middle.

mod common;

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use common::*;

const T: Duration = Duration::from_secs(30);

fn txn_producer(bootstrap: &str, transactional_id: &str, timeout_ms: u32) -> BaseProducer {
    let mut cfg = producer_config(bootstrap);
    cfg.set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("message.timeout.ms", timeout_ms.to_string())
        .set("socket.timeout.ms", timeout_ms.min(10_000).to_string())
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("retry.backoff.ms", "50");
    let producer: BaseProducer = cfg.create().expect("create transactional producer");
    producer.init_transactions(T).expect("init_transactions");
    producer
}

/// Enqueues one record, serving delivery reports while the queue is full.
fn send(producer: &BaseProducer, topic: &str, key: &str, value: &str) {
    let deadline = Instant::now() + T;
    loop {
        match producer.send(BaseRecord::to(topic).key(key).payload(value)) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                assert!(Instant::now() < deadline, "producer queue stayed full");
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("enqueueing to {topic} failed: {e}"),
        }
    }
}

fn consumer(bootstrap: &str, group: &str, isolation: &str) -> BaseConsumer {
    let mut cfg: ClientConfig = consumer_config(bootstrap);
    cfg.set("group.id", group)
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    cfg.create().expect("create consumer")
}

/// Every record of `topic`/`partition` visible under `isolation`, as
/// (offset, value), read until the end the isolation level allows (the last
/// stable offset for read_committed).
fn read_all(bootstrap: &str, topic: &str, partition: i32, isolation: &str) -> Vec<(i64, String)> {
    let c = consumer(bootstrap, "txn-it-reader", isolation);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + T;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of {topic}/{partition} ({isolation}) within {T:?}; read {}",
            out.len()
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => out.push((m.offset(), value_str(&m).unwrap_or_default())),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consuming {topic}/{partition}: {e}"),
        }
    }
}

fn values(records: &[(i64, String)]) -> Vec<String> {
    records.iter().map(|(_, v)| v.clone()).collect()
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// (low, high) watermarks as a consumer of `isolation` sees them: for
/// read_committed, high is the last stable offset.
fn watermarks(bootstrap: &str, topic: &str, isolation: &str) -> (i64, i64) {
    consumer(bootstrap, "txn-it-watermarks", isolation)
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("fetch watermarks")
}

/// The group's committed offset of `topic`/0, if any. Read without
/// `require_stable` (a read_committed librdkafka consumer sets it and
/// retries while a transaction's offsets are pending).
fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let c = consumer(bootstrap, group, "read_uncommitted");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, T).expect("committed offsets");
    match got.find_partition(topic, 0).unwrap().offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

fn group_metadata(bootstrap: &str, group: &str) -> rdkafka::consumer::ConsumerGroupMetadata {
    consumer(bootstrap, group, "read_committed")
        .group_metadata()
        .expect("consumer group metadata")
}

fn offsets(topic: &str, offset: i64) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    tpl
}

/// Waits (bounded) until read_committed's end reaches the log end offset:
/// no transaction is open in `topic`/0 any more.
fn wait_stable(bootstrap: &str, topic: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (_, lso) = watermarks(bootstrap, topic, "read_committed");
        let (_, hw) = watermarks(bootstrap, topic, "read_uncommitted");
        if lso == hw {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: last stable offset {lso} still below the high watermark {hw} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_fenced(e: &KafkaError) -> bool {
    let code = match e {
        KafkaError::Transaction(e) => e.code(),
        other => other
            .rdkafka_error_code()
            .unwrap_or(RDKafkaErrorCode::Unknown),
    };
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

#[test]
fn commit_makes_records_and_offsets_visible_to_read_committed() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    for t in ["orders", "audit", "input"] {
        create_topic(&b, t, 1);
    }
    let producer = txn_producer(&b, "commit-tx", 60_000);
    producer.begin_transaction().unwrap();
    for i in 0..10 {
        send(&producer, "orders", "k", &format!("order-{i}"));
        send(&producer, "audit", "k", &format!("audit-{i}"));
    }
    producer.flush(T).unwrap();
    producer
        .send_offsets_to_transaction(&offsets("input", 42), &group_metadata(&b, "app"), T)
        .unwrap();
    // Written but undecided: read_committed sees nothing, nor the offset.
    assert_eq!(watermarks(&b, "orders", "read_committed"), (0, 0));
    assert_eq!(watermarks(&b, "orders", "read_uncommitted"), (0, 10));
    assert_eq!(read_all(&b, "orders", 0, "read_committed"), vec![]);
    assert_eq!(committed(&b, "app", "input"), None);

    producer.commit_transaction(T).unwrap();
    for (topic, prefix) in [("orders", "order"), ("audit", "audit")] {
        let got = read_all(&b, topic, 0, "read_committed");
        assert_eq!(values(&got), numbered(prefix, 0..10), "{topic}");
        let offs: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offs, (0..10).collect::<Vec<_>>(), "{topic}");
        // Ten records and the commit marker.
        assert_eq!(watermarks(&b, topic, "read_committed"), (0, 11), "{topic}");
    }
    assert_eq!(committed(&b, "app", "input"), Some(42));
}

#[test]
fn abort_hides_records_from_read_committed_but_not_read_uncommitted() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, "events", 1);
    create_topic(&b, "input", 1);
    let producer = txn_producer(&b, "abort-tx", 60_000);

    producer.begin_transaction().unwrap();
    for i in 0..5 {
        send(&producer, "events", "k", &format!("aborted-{i}"));
    }
    producer.flush(T).unwrap();
    producer
        .send_offsets_to_transaction(&offsets("input", 7), &group_metadata(&b, "app"), T)
        .unwrap();
    producer.abort_transaction(T).unwrap();

    producer.begin_transaction().unwrap();
    for i in 0..3 {
        send(&producer, "events", "k", &format!("kept-{i}"));
    }
    producer.commit_transaction(T).unwrap();

    // 5 aborted records, the abort marker at 5, 3 committed, the commit marker.
    let committed_view = read_all(&b, "events", 0, "read_committed");
    assert_eq!(
        committed_view,
        vec![
            (6, "kept-0".into()),
            (7, "kept-1".into()),
            (8, "kept-2".into())
        ]
    );
    let all = read_all(&b, "events", 0, "read_uncommitted");
    let mut expected = numbered("aborted", 0..5);
    expected.extend(numbered("kept", 0..3));
    assert_eq!(values(&all), expected);
    assert_eq!(committed(&b, "app", "input"), None);
}

#[test]
fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, "fenced", 1);
    let first = txn_producer(&b, "shared-id", 60_000);
    first.begin_transaction().unwrap();
    for i in 0..4 {
        send(&first, "fenced", "k", &format!("zombie-{i}"));
    }
    first.flush(T).unwrap();

    // The new producer's InitProducerId aborts the zombie's transaction.
    let second = txn_producer(&b, "shared-id", 60_000);
    let err = first
        .commit_transaction(T)
        .expect_err("the fenced producer's commit must fail");
    assert!(is_fenced(&err), "expected a fencing error, got {err:?}");

    second.begin_transaction().unwrap();
    for i in 0..3 {
        send(&second, "fenced", "k", &format!("live-{i}"));
    }
    second.commit_transaction(T).unwrap();
    let got = read_all(&b, "fenced", 0, "read_committed");
    assert_eq!(values(&got), numbered("live", 0..3));
    let all = read_all(&b, "fenced", 0, "read_uncommitted");
    let mut expected = numbered("zombie", 0..4);
    expected.extend(numbered("live", 0..3));
    assert_eq!(values(&all), expected);
}

#[test]
fn a_transaction_left_open_past_its_timeout_is_aborted_by_the_broker() {
    let broker = TestBroker::start_with(&[
        "--override",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    ]);
    let b = broker.bootstrap();
    create_topic(&b, "slow", 1);
    let producer = txn_producer(&b, "slow-tx", 2_000);
    producer.begin_transaction().unwrap();
    for i in 0..5 {
        send(&producer, "slow", "k", &format!("late-{i}"));
    }
    producer.flush(T).unwrap();
    assert_eq!(watermarks(&b, "slow", "read_committed"), (0, 0));
    // The coordinator aborts it: an abort marker at 5 makes the log stable.
    wait_stable(&b, "slow", Duration::from_secs(20));
    assert_eq!(watermarks(&b, "slow", "read_committed"), (0, 6));
    assert_eq!(read_all(&b, "slow", 0, "read_committed"), vec![]);
    assert_eq!(
        values(&read_all(&b, "slow", 0, "read_uncommitted")),
        numbered("late", 0..5)
    );
    let err = producer
        .commit_transaction(T)
        .expect_err("committing an aborted transaction must fail");
    assert!(is_fenced(&err), "expected a fencing error, got {err:?}");
}

/// A kill -9 in the middle of a transaction whose records span several
/// segments: after the restart the new producer instance fences and aborts
/// it, its records never reach read_committed (also after a further clean
/// restart), and the next transaction commits.
#[test]
fn kill9_mid_transaction_then_abort_across_segments_and_restarts() {
    let mut broker = TestBroker::start();
    let b = broker.bootstrap();
    create_topic(&b, "seg", 1);
    let admin = admin_client(&b);
    let cfg = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic("seg"))
        .set("segment.bytes", "1024");
    block_on(T, admin.alter_configs([&cfg], &admin_opts()))
        .expect("AlterConfigs")
        .into_iter()
        .for_each(|r| {
            r.expect("segment.bytes set");
        });

    let producer = txn_producer(&b, "crash-tx", 60_000);
    producer.begin_transaction().unwrap();
    for i in 0..200 {
        send(
            &producer,
            "seg",
            &format!("k{i}"),
            &format!("doomed-{i:03}-{}", "x".repeat(40)),
        );
        if i % 20 == 19 {
            producer.flush(T).unwrap();
        }
    }
    producer.flush(T).unwrap();
    drop(producer);
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();

    // Still undecided after the restart, until the next producer fences it.
    assert_eq!(watermarks(&b, "seg", "read_committed"), (0, 0));
    let producer = txn_producer(&b, "crash-tx", 60_000);
    wait_stable(&b, "seg", T);
    producer.begin_transaction().unwrap();
    for i in 0..30 {
        send(&producer, "seg", "k", &format!("good-{i}"));
    }
    producer.commit_transaction(T).unwrap();
    drop(producer);

    let check = |b: &str| {
        let got = read_all(b, "seg", 0, "read_committed");
        assert_eq!(values(&got), numbered("good", 0..30));
        // 200 aborted records, the abort marker, then the new transaction.
        assert_eq!(got[0].0, 201);
        let all = read_all(b, "seg", 0, "read_uncommitted");
        assert_eq!(all.len(), 230);
    };
    check(&b);
    broker.restart();
    check(&broker.bootstrap());
    broker.kill9();
    broker.restart();
    check(&broker.bootstrap());
}

const LOOP_MESSAGES: usize = 50_000;
const PER_TXN: usize = 1_000;

/// Consume-transform-produce: read `input` (read_committed), write each
/// value transformed to `output` and the consumed offset to the group in one
/// transaction per 1,000 messages. The broker is SIGKILLed in the middle of
/// a transaction; the loop aborts or re-creates its producer as librdkafka
/// asks and rewinds to the committed offset. Every input appears exactly
/// once in the read_committed output, in order.
#[test]
fn consume_transform_produce_is_exactly_once_across_a_broker_kill() {
    let mut broker = TestBroker::start();
    broker.pin_port();
    let b = broker.bootstrap();
    create_topic(&b, "input", 1);
    create_topic(&b, "output", 1);
    let msgs: Vec<Out> = (0..LOOP_MESSAGES)
        .map(|i| Out {
            value: format!("in-{i:05}"),
            partition: Some(0),
            ..Default::default()
        })
        .collect();
    produce_all_acked(
        &producer_config(&b),
        "input",
        &msgs,
        Duration::from_secs(120),
    );

    let group = "eos-app";
    let input = consumer(&b, group, "read_committed");
    let rewind = |c: &BaseConsumer| {
        let start = committed(&b, group, "input").unwrap_or(0);
        c.assign(&offsets("input", start)).unwrap();
        start
    };
    let mut next = rewind(&input);
    let mut producer = txn_producer(&b, "eos-tx", 30_000);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut killed = false;
    let mut recoveries = 0;
    while next < LOOP_MESSAGES as i64 {
        assert!(
            Instant::now() < deadline,
            "loop stuck at input offset {next}"
        );
        producer.begin_transaction().unwrap();
        let mut last = None;
        let mut count = 0;
        while count < PER_TXN && next + (count as i64) < LOOP_MESSAGES as i64 {
            assert!(
                Instant::now() < deadline,
                "no input at offset {next}+{count}"
            );
            match input.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let v = value_str(&m).unwrap();
                    send(&producer, "output", "k", &format!("{v}-out"));
                    last = Some(m.offset());
                    count += 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => panic!("consuming input: {e}"),
            }
            if !killed && next >= (LOOP_MESSAGES / 2) as i64 && count == PER_TXN / 2 {
                producer.flush(T).unwrap();
                broker.kill9();
                broker.restart();
                killed = true;
            }
        }
        let Some(last) = last else { continue };
        let outcome = producer
            .send_offsets_to_transaction(
                &offsets("input", last + 1),
                &input.group_metadata().unwrap(),
                T,
            )
            .and_then(|()| producer.commit_transaction(T));
        match outcome {
            Ok(()) => next = last + 1,
            Err(e) => {
                recoveries += 1;
                assert!(recoveries <= 5, "too many failed transactions: {e}");
                let abortable = matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
                if abortable && producer.abort_transaction(T).is_ok() {
                    // Aborted: retry the same input.
                } else {
                    // Fatal (e.g. fenced): a new instance fences the old one.
                    drop(producer);
                    producer = txn_producer(&b, "eos-tx", 30_000);
                }
                next = rewind(&input);
            }
        }
    }
    assert!(killed, "the broker was never killed");
    let out = read_all(&b, "output", 0, "read_committed");
    let expected: Vec<String> = (0..LOOP_MESSAGES)
        .map(|i| format!("in-{i:05}-out"))
        .collect();
    let got = values(&out);
    assert_eq!(got.len(), expected.len(), "output count");
    assert!(
        got == expected,
        "output differs from input transformed once"
    );
    assert_eq!(committed(&b, group, "input"), Some(LOOP_MESSAGES as i64));
}
