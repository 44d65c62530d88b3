//! Corrupt data in an old segment (one below the recovery point, not scanned
//! at start): a bad batch length, and flipped bytes inside a batch's records.
//! Fetches get exactly the intact records before the bad batch, then
//! CORRUPT_MESSAGE at its offset; the broker logs it once and counts it in
//! `/metrics`; `vltava log verify` names the file and byte position.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "damaged";
const BATCHES: usize = 12;
const CORRUPT_MESSAGE: i16 = 2;

fn value(batch: usize, record: usize) -> String {
    format!("b{batch}-r{record}")
}

/// Batch `i`: two records, values `b{i}-r0`, `b{i}-r1`.
fn batch(i: usize) -> Bytes {
    let records: Vec<Record> = (0..2)
        .map(|r| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: r as i64,
            sequence: r as i32 - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(value(i, r))),
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

/// A broker holding BATCHES batches of TOPIC-0 in segments of three batches,
/// stopped cleanly (so every segment but the last is below the recovery point).
fn stopped_broker_with_segments() -> TestBroker {
    let mut broker = TestBroker::start();
    let admin = admin_client(&broker.bootstrap());
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1)).set("segment.bytes", "300");
    let created = block_on(
        Duration::from_secs(10),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let mut client = RawClient::connect(broker.addr());
    for i in 0..BATCHES {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(i)))])]);
        let resp = client.send(9, &req);
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, 2 * i as i64));
    }
    drop(client);
    let status = broker.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    broker
}

fn partition_dir(broker: &TestBroker) -> PathBuf {
    broker.data_dir().join(format!("{TOPIC}-0"))
}

/// The partition's `.log` files, in offset order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// `vltava log verify DIR`: (exit code, stdout).
fn verify(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args(["log", "verify"])
        .arg(dir)
        .output()
        .expect("run vltava log verify");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// One Fetch (v12) of TOPIC-0 at `offset`: (error code, (offset, value) of each record).
fn fetch(client: &mut RawClient, offset: i64) -> (i16, Vec<(i64, String)>) {
    let req = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = client.send(12, &req);
    let p = &resp.responses[0].partitions[0];
    let mut records = Vec::new();
    let mut bytes = p.records.clone().unwrap_or_default();
    while !bytes.is_empty() {
        let set = RecordBatchDecoder::decode(&mut bytes).expect("decode fetched batch");
        for r in set.records {
            let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
            records.push((r.offset, v));
        }
    }
    (p.error_code, records)
}

/// GETs `/metrics` from the admin listener; returns the body.
fn metrics(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect admin listener");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    raw.split_once("\r\n\r\n")
        .expect("header/body")
        .1
        .to_string()
}

/// What a librdkafka consumer reading from the beginning sees within
/// `deadline`: the records, then the first error it surfaces.
fn librdkafka_consume(bootstrap: &str) -> (Vec<(i64, String)>, Option<KafkaError>) {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => got.push((
                m.offset(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            )),
            Some(Err(e)) => return (got, Some(e)),
            None => {}
        }
    }
    (got, None)
}

/// The first batch's size: where the second batch (offset 2) starts.
fn second_batch_position(segment: &Path) -> usize {
    let bytes = std::fs::read(segment).unwrap();
    12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize
}

/// Restarts on the damaged data and checks what fetches, the log, the
/// metrics and a librdkafka consumer see, then stops the broker.
fn corrupt_batch_is_served_up_to_then_refused(broker: &mut TestBroker, reason_start: &str) {
    let dir = partition_dir(broker);
    let segment = segment_files(&dir)[0].clone();
    let position = second_batch_position(&segment);
    broker.restart();

    let mut client = RawClient::connect(broker.addr());
    assert_eq!(
        fetch(&mut client, 0),
        (0, vec![(0, value(0, 0)), (1, value(0, 1))])
    );
    assert_eq!(fetch(&mut client, 2), (CORRUPT_MESSAGE, vec![]));
    assert_eq!(fetch(&mut client, 3), (CORRUPT_MESSAGE, vec![]));
    assert_eq!(fetch(&mut client, 2), (CORRUPT_MESSAGE, vec![]));
    // The second segment starts with batch 3 (offset 6) and is intact.
    assert_eq!(
        fetch(&mut client, 6),
        (
            0,
            (3..6)
                .flat_map(|b| [(2 * b as i64, value(b, 0)), (2 * b as i64 + 1, value(b, 1))])
                .collect()
        )
    );

    let (records, error) = librdkafka_consume(&broker.bootstrap());
    assert_eq!(records, vec![(0, value(0, 0)), (1, value(0, 1))]);
    match error {
        Some(KafkaError::MessageConsumption(code)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidMessage)
        }
        other => panic!("librdkafka surfaced {other:?}, expected InvalidMessage (Kafka code 2, CORRUPT_MESSAGE)"),
    }

    let admin = broker.admin_addr();
    let body = metrics(admin);
    assert!(
        body.lines()
            .any(|l| l == "vltava_log_corrupt_batches_total 1"),
        "{body}"
    );
    let stderr = broker.stderr();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("corrupt record batch"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for part in [
        format!("topic={TOPIC}"),
        "partition=0".to_string(),
        "offset=2".to_string(),
        format!("file={}", segment.display()),
        format!("position={position}"),
        format!("reason={reason_start}"),
    ] {
        assert!(
            lines[0].contains(&part),
            "{part} missing from: {}",
            lines[0]
        );
    }
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains(&segment.display().to_string()))
            .count(),
        1,
        "{stderr}"
    );
    let status = broker.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bad_batch_length_in_an_old_segment_serves_the_records_before_it_then_corrupt_message() {
    let mut broker = stopped_broker_with_segments();
    let dir = partition_dir(&broker);
    let segments = segment_files(&dir);
    assert!(segments.len() >= 3, "{segments:?}");
    assert_eq!(
        verify(&dir),
        (
            Some(0),
            format!(
                "checked 1 partition, {} segments, {BATCHES} batches: 0 problems\n",
                segments.len()
            )
        )
    );
    let (code, out) = verify(&broker.data_dir());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.ends_with(&format!(" {BATCHES} batches: 0 problems\n")),
        "{out}"
    );

    let position = second_batch_position(&segments[0]);
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    bytes[position + 8..position + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    std::fs::write(&segments[0], &bytes).unwrap();
    let remaining = bytes.len() - position;

    let expected = format!(
        "{}: position {position}: batch length 2147418112 is out of bounds ({remaining} bytes remain in the file)\n\
         checked 1 partition, {} segments, {} batches: 1 problem\n",
        segments[0].display(),
        segments.len(),
        BATCHES - 2
    );
    assert_eq!(verify(&dir), (Some(1), expected.clone()));

    corrupt_batch_is_served_up_to_then_refused(&mut broker, "batch length 2147418112");
    assert_eq!(
        verify(&dir),
        (Some(1), expected),
        "the broker changed nothing"
    );
}

#[test]
fn flipped_record_bytes_in_an_old_segment_serve_the_records_before_them_then_corrupt_message() {
    let mut broker = stopped_broker_with_segments();
    let dir = partition_dir(&broker);
    let segments = segment_files(&dir);
    assert!(segments.len() >= 3, "{segments:?}");

    let position = second_batch_position(&segments[0]);
    let mut bytes = std::fs::read(&segments[0]).unwrap();
    let size =
        12 + i32::from_be_bytes(bytes[position + 8..position + 12].try_into().unwrap()) as usize;
    bytes[position + size - 3] ^= 0x20; // inside the last record's value
    std::fs::write(&segments[0], &bytes).unwrap();
    let stored = u32::from_be_bytes(bytes[position + 17..position + 21].try_into().unwrap());
    let computed = crc32c::crc32c(&bytes[position + 21..position + size]);

    let expected = format!(
        "{}: position {position}: CRC mismatch in the batch at offset 2: stored {stored:#010x}, computed {computed:#010x}\n\
         checked 1 partition, {} segments, {BATCHES} batches: 1 problem\n",
        segments[0].display(),
        segments.len(),
    );
    assert_eq!(verify(&dir), (Some(1), expected.clone()));
    let (code, out) = verify(&broker.data_dir());
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with(&expected[..expected.find('\n').unwrap() + 1]),
        "{out}"
    );

    corrupt_batch_is_served_up_to_then_refused(&mut broker, "CRC mismatch");
    assert_eq!(
        verify(&dir),
        (Some(1), expected),
        "the broker changed nothing"
    );
}
