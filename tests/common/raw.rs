//! A minimal Kafka protocol client for tests that need exact requests (fields
//! no client library lets us set, such as a batch's producer id and
//! sequence) and exact responses (error codes, offsets).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// One connection; requests are sent and answered one at a time.
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        RawClient {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends `req` at `version` and returns the decoded response.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("vltava-raw-test")));
        let mut payload = BytesMut::new();
        header
            .encode(&mut payload, R::header_version(version))
            .expect("encode request header");
        req.encode(&mut payload, version).expect("encode request");
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        self.stream.write_all(&frame).expect("write request");

        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .expect("read response length");
        let len = i32::from_be_bytes(len);
        assert!(
            (0..100_000_000).contains(&len),
            "implausible response length {len}"
        );
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body).expect("read response");
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .expect("decode response header");
        assert_eq!(header.correlation_id, self.correlation_id, "correlation id");
        R::Response::decode(&mut body, version).expect("decode response")
    }
}

/// A record batch of one record holding `value` (no key, no producer id).
pub fn one_record_batch(value: &[u8]) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[record], &options).expect("encode batch");
    buf.freeze()
}

/// One Produce (v9) of one record holding `value` to partition 0 of
/// `topic`, straight to `addr`, with `acks`: (error code, base offset).
pub fn produce_one(addr: SocketAddr, topic: &str, value: &str, acks: i16) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(one_record_batch(value.as_bytes())))])]);
    let resp = RawClient::connect(addr).send(9, &req);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}
