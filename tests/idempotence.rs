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

/// One batch of `n` records from producer `pid` at `epoch`, sequences from `seq`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from(format!("e{epoch}-s{}", seq + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

/// Produces one batch (v9) and returns (error code, base offset).
fn produce(client: &mut common::raw::RawClient, topic: &str, batch: bytes::Bytes) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let resp = client.send(9, &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn produce_answers_resends_gaps_and_old_epochs_with_kafkas_codes() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, InitProducerIdRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    const INVALID_PRODUCER_EPOCH: i16 = 47;
    let topic = "sequences";
    let mut broker = TestBroker::start();
    create_topic(&broker.bootstrap(), topic, 1);
    let mut client = common::raw::RawClient::connect(broker.addr());

    let init = client.send(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!((init.error_code, init.producer_epoch), (0, 0));
    let pid = init.producer_id.0;
    let other = client.send(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_ne!(
        other.producer_id.0, pid,
        "every InitProducerId gets a new id"
    );

    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    // The same batch again: its original offset, nothing written.
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 0, 0, 3)),
        (0, 0)
    );
    // A gap.
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 0, 5, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 0, 3, 2)),
        (0, 3)
    );
    // A new epoch starts at sequence 0; the old epoch is then refused.
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 1, 0, 1)),
        (0, 5)
    );
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 0, 5, 1)).0,
        INVALID_PRODUCER_EPOCH
    );

    // After a restart (state rebuilt from the log) the same answers.
    broker.kill9();
    broker.restart();
    let mut client = common::raw::RawClient::connect(broker.addr());
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 1, 0, 1)),
        (0, 5)
    );
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 1, 2, 1)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(&mut client, topic, producer_batch(pid, 1, 1, 1)),
        (0, 6)
    );

    let described = client.send(
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_indexes(vec![0, 3])]),
    );
    let partitions = &described.topics[0].partitions;
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[0].error_code, 0);
    let active = &partitions[0].active_producers;
    assert_eq!(active.len(), 1);
    assert_eq!(
        (
            active[0].producer_id.0,
            active[0].producer_epoch,
            active[0].last_sequence,
            active[0].current_txn_start_offset
        ),
        (pid, 1, 1, -1)
    );
    assert_eq!(partitions[1].error_code, 3, "partition 3 does not exist");

    // The log holds exactly the accepted batches: offsets 0..7.
    let expected = BTreeMap::from([(0, 7)]);
    let got = consume_exactly(
        &broker.bootstrap(),
        topic,
        &expected,
        Duration::from_secs(30),
    );
    let values: Vec<String> = got[&0].iter().filter_map(value_str).collect();
    assert_eq!(
        values,
        ["e0-s0", "e0-s1", "e0-s2", "e0-s3", "e0-s4", "e1-s0", "e1-s1"]
    );
}
