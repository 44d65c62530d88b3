//! KIP-467 per-record errors: a produce batch holding records the log refuses
//! (keyless records on a compacted topic) is refused whole with INVALID_RECORD,
//! naming each bad record by its index, so clients fail only those records.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

const INVALID_RECORD: i16 = 87;

fn create_compacted_topic(bootstrap: &str, name: &str) {
    let admin = admin_client(bootstrap);
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let results = block_on(
        Duration::from_secs(20),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics");
    assert_eq!(results, vec![Ok(name.to_string())]);
}

/// One uncompressed batch with a record per key (None: no key).
fn batch(keys: &[Option<&str>]) -> Bytes {
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: key.map(|k| Bytes::from(k.to_string())),
            value: Some(Bytes::from(format!("v{i}"))),
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

fn produce(
    client: &mut common::raw::RawClient,
    version: i16,
    topic: &str,
    batch: Bytes,
) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let mut resp = client.send(version, &req);
    resp.responses.remove(0).partition_responses.remove(0)
}

#[test]
fn produce_to_a_compacted_topic_names_each_keyless_record() {
    let topic = "compacted-raw";
    let broker = TestBroker::start();
    create_compacted_topic(&broker.bootstrap(), topic);
    let mut client = common::raw::RawClient::connect(broker.addr());

    let key_error =
        format!("Compacted topic cannot accept message without key in topic partition {topic}-0.");
    let r = produce(
        &mut client,
        9,
        topic,
        batch(&[Some("a"), None, Some("c"), None, None, Some("f")]),
    );
    let shown: Vec<String> = [1, 3, 4]
        .iter()
        .map(|i| format!("RecordError(batchIndex={i}, message='{key_error}')"))
        .collect();
    let expected = PartitionProduceResponse::default()
        .with_index(0)
        .with_error_code(INVALID_RECORD)
        .with_base_offset(-1)
        .with_record_errors(
            [1, 3, 4]
                .into_iter()
                .map(|i| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(i)
                        .with_batch_index_error_message(Some(StrBytes::from_string(
                            key_error.clone(),
                        )))
                })
                .collect(),
        )
        .with_error_message(Some(StrBytes::from_string(format!(
            "One or more records have been rejected due to 3 record errors in total, and only \
             showing the first three errors at most: [{}]",
            shown.join(", ")
        ))));
    assert_eq!(r, expected);

    // Before v8 there is no field for them: the code alone.
    let r = produce(&mut client, 7, topic, batch(&[None, Some("b")]));
    assert_eq!(
        (r.error_code, r.record_errors.len(), r.error_message),
        (INVALID_RECORD, 0, None)
    );

    // Nothing of the refused batches was written; a keyed batch is.
    let r = produce(&mut client, 9, topic, batch(&[Some("a"), Some("b")]));
    assert_eq!(
        (r.error_code, r.base_offset, r.record_errors.len()),
        (0, 0, 0)
    );
}

/// Produces 100 messages, every tenth without a key, to a compacted topic;
/// returns each message's delivery outcome, in order.
fn produce_with_keyless_tenth(bootstrap: &str, topic: &str, batch_size: &str) -> Vec<Outcome> {
    let mut config = producer_config(bootstrap);
    config.set("batch.size", batch_size).set("linger.ms", "100");
    let msgs: Vec<Out> = (0..100)
        .map(|i| Out {
            key: (i % 10 != 0).then(|| format!("k{i}")),
            value: format!("v{i}"),
            partition: Some(0),
            ..Out::default()
        })
        .collect();
    produce_all(&config, topic, &msgs, Duration::from_secs(30))
}

fn error_code(outcome: &Outcome) -> Option<RDKafkaErrorCode> {
    match outcome {
        Ok(_) => None,
        Err(KafkaError::MessageProduction(code)) => Some(*code),
        Err(e) => panic!("unexpected delivery error {e}"),
    }
}

#[test]
fn librdkafka_fails_only_the_keyless_records_of_one_record_batches() {
    let topic = "compacted-single";
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_compacted_topic(&b, topic);
    // One record per batch (librdkafka's test 0011, variation 1).
    let outcomes = produce_with_keyless_tenth(&b, topic, "1");
    for (i, o) in outcomes.iter().enumerate() {
        let expected = (i % 10 == 0).then_some(RDKafkaErrorCode::InvalidRecord);
        assert_eq!(error_code(o), expected, "message #{i}: {o:?}");
    }
    let delivered: Vec<usize> = (0..100).filter(|i| i % 10 != 0).collect();
    assert_eq!(delivered.len(), 90);
    let consumed = consume_exactly(&b, topic, &[(0, 90)].into(), Duration::from_secs(30));
    let values: Vec<String> = consumed[&0].iter().map(|m| value_str(m).unwrap()).collect();
    let expected: Vec<String> = delivered.iter().map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected);
    let keys: Vec<String> = consumed[&0].iter().map(|m| key_str(m).unwrap()).collect();
    let expected: Vec<String> = delivered.iter().map(|i| format!("k{i}")).collect();
    assert_eq!(keys, expected);
}

#[test]
fn librdkafka_fails_the_keyless_records_and_their_batch_mates_differently() {
    let topic = "compacted-batch";
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    create_compacted_topic(&b, topic);
    // All 100 in one batch (librdkafka's test 0011, variation 0): the keyless
    // ones fail with INVALID_RECORD, the others with _INVALID_DIFFERENT_RECORD.
    let outcomes = produce_with_keyless_tenth(&b, topic, "1000000");
    let codes: Vec<Option<RDKafkaErrorCode>> = outcomes.iter().map(error_code).collect();
    let expected: Vec<Option<RDKafkaErrorCode>> = (0..100)
        .map(|i| {
            Some(if i % 10 == 0 {
                RDKafkaErrorCode::InvalidRecord
            } else {
                RDKafkaErrorCode::InvalidDifferentRecord
            })
        })
        .collect();
    assert_eq!(codes, expected);
}
