//! Hostile and malformed input over raw TCP. Garbage, oversized length
//! prefixes, truncated frames, unknown API keys and malformed bodies must close
//! the offending connection (and nothing else); ApiVersions with an unsupported
//! version must get a v0-format UNSUPPORTED_VERSION reply that still lists the
//! supported APIs (KIP-511). Afterwards an untouched connection and a real
//! rdkafka client must still work, and the broker must still be alive.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::message::Message;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const UNSUPPORTED_VERSION: i16 = 35;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to broker");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Asserts the broker closes `stream` within IO_TIMEOUT without sending anything.
fn assert_closed_by_broker(mut stream: TcpStream, what: &str) {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => panic!(
                "{what}: expected the connection to be closed, but the broker sent {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: connection still open after {IO_TIMEOUT:?}")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted && Instant::now() < deadline => continue,
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
    }
}

/// Writes `bytes`, tolerating the broker closing the socket mid-write.
fn write_tolerant(stream: &mut TcpStream, bytes: &[u8]) {
    match stream.write_all(bytes) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
        Err(e) => panic!("write failed: {e}"),
    }
}

fn header(api_key: i16, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("vltava-bad-input-test")))
}

/// Length-prefixes a header (encoded at `header_version`) plus a raw body.
fn frame(h: &RequestHeader, header_version: i16, body: &[u8]) -> Vec<u8> {
    let mut payload = BytesMut::new();
    h.encode(&mut payload, header_version)
        .expect("encode header");
    payload.extend_from_slice(body);
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

/// Reads one length-prefixed response frame.
fn read_frame(stream: &mut TcpStream, what: &str) -> Bytes {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .unwrap_or_else(|e| panic!("{what}: reading response length: {e}"));
    let len = i32::from_be_bytes(len);
    assert!(
        (0..10_000_000).contains(&len),
        "{what}: implausible response length {len}"
    );
    let mut body = vec![0u8; len as usize];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: reading response body: {e}"));
    Bytes::from(body)
}

/// Sends ApiVersions v3 and returns the decoded response (checking the correlation id).
fn api_versions_v3(stream: &mut TcpStream, correlation_id: i32) -> ApiVersionsResponse {
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("vltava-it"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let mut b = BytesMut::new();
    body.encode(&mut b, 3).unwrap();
    stream
        .write_all(&frame(
            &header(ApiKey::ApiVersions as i16, 3, correlation_id),
            2,
            &b,
        ))
        .unwrap();
    let mut resp = read_frame(stream, "ApiVersions v3");
    // ApiVersions responses always use response header v0: just the correlation id.
    assert_eq!(
        resp.get_i32(),
        correlation_id,
        "ApiVersions v3 correlation id"
    );
    ApiVersionsResponse::decode(&mut resp, 3).expect("decode ApiVersionsResponse v3")
}

fn max_version(resp: &ApiVersionsResponse, key: ApiKey) -> Option<i16> {
    resp.api_keys
        .iter()
        .find(|k| k.api_key == key as i16)
        .map(|k| k.max_version)
}

fn assert_lists_supported_apis(resp: &ApiVersionsResponse, what: &str) {
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
        ApiKey::DescribeConfigs,
        ApiKey::DescribeCluster,
    ] {
        assert!(
            max_version(resp, key).is_some(),
            "{what}: {key:?} missing from {:?}",
            resp.api_keys
        );
    }
}

/// A quick health probe: a fresh connection still gets ApiVersions answered.
fn assert_broker_serves_new_connections(broker: &mut TestBroker, after: &str) {
    broker.assert_alive();
    let mut s = connect(broker.addr());
    let resp = api_versions_v3(&mut s, 77);
    assert_eq!(
        resp.error_code, 0,
        "ApiVersions on a fresh connection after {after}"
    );
}

#[test]
fn bad_input_closes_only_the_offending_connection() {
    let mut broker = TestBroker::start();
    let addr = broker.addr();

    // A well-behaved connection opened first, used again at the very end.
    let mut bystander = connect(addr);
    assert_eq!(api_versions_v3(&mut bystander, 1).error_code, 0);

    // (a) Pure garbage: an HTTP request (its first four bytes read as a ~1.2 GB length).
    let mut s = connect(addr);
    write_tolerant(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: vltava\r\nUser-Agent: curl\r\n\r\n",
    );
    assert_closed_by_broker(s, "HTTP garbage");
    assert_broker_serves_new_connections(&mut broker, "HTTP garbage");

    // (a') A plausibly framed request whose header/body is garbage: Metadata v12
    // with 0xFF bytes where a compact array / tagged fields should be.
    let mut s = connect(addr);
    let mut garbage = Vec::new();
    garbage.extend_from_slice(&(ApiKey::Metadata as i16).to_be_bytes());
    garbage.extend_from_slice(&12i16.to_be_bytes());
    garbage.extend_from_slice(&5i32.to_be_bytes());
    garbage.extend_from_slice(&[0xFF; 40]);
    let mut framed = (garbage.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&garbage);
    write_tolerant(&mut s, &framed);
    assert_closed_by_broker(s, "malformed Metadata body");
    assert_broker_serves_new_connections(&mut broker, "malformed Metadata body");

    // (b) A length prefix of 2,000,000,000 (> socket.request.max.bytes).
    let mut s = connect(addr);
    let mut huge = 2_000_000_000i32.to_be_bytes().to_vec();
    huge.extend_from_slice(&frame(&header(ApiKey::ApiVersions as i16, 3, 2), 2, &[])[4..]);
    write_tolerant(&mut s, &huge);
    assert_closed_by_broker(s, "2 GB length prefix");
    assert_broker_serves_new_connections(&mut broker, "2 GB length prefix");

    // (b') A negative length prefix.
    let mut s = connect(addr);
    write_tolerant(&mut s, &(-1i32).to_be_bytes());
    assert_closed_by_broker(s, "negative length prefix");
    assert_broker_serves_new_connections(&mut broker, "negative length prefix");

    // (c) A truncated frame: length says 100, only 10 bytes arrive, then EOF.
    let mut s = connect(addr);
    let mut truncated = 100i32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&frame(&header(ApiKey::ApiVersions as i16, 3, 3), 2, &[])[4..14]);
    write_tolerant(&mut s, &truncated);
    s.shutdown(Shutdown::Write).unwrap();
    assert_closed_by_broker(s, "truncated frame");
    assert_broker_serves_new_connections(&mut broker, "truncated frame");

    // (d) Unknown API key 9999.
    let mut s = connect(addr);
    write_tolerant(&mut s, &frame(&header(9999, 0, 4), 1, &[]));
    assert_closed_by_broker(s, "unknown api key 9999");
    assert_broker_serves_new_connections(&mut broker, "unknown api key 9999");

    // (e) ApiVersions v99 -> v0-format UNSUPPORTED_VERSION listing the real APIs.
    let mut s = connect(addr);
    // Header v1 fields, then one zero byte: to a broker that parses the header as
    // v2 that byte is the empty tagged-field section; to a v1 parser it is body.
    s.write_all(&frame(
        &header(ApiKey::ApiVersions as i16, 99, 4242),
        1,
        &[0],
    ))
    .unwrap();
    let mut resp = read_frame(&mut s, "ApiVersions v99");
    assert_eq!(
        resp.get_i32(),
        4242,
        "ApiVersions v99: correlation id echoed"
    );
    let v0 = ApiVersionsResponse::decode(&mut resp, 0)
        .expect("ApiVersions v99 reply decodes as ApiVersionsResponse v0");
    assert_eq!(
        resp.remaining(),
        0,
        "ApiVersions v99 reply has trailing bytes beyond the v0 format"
    );
    assert_eq!(
        v0.error_code, UNSUPPORTED_VERSION,
        "ApiVersions v99 error code"
    );
    assert_lists_supported_apis(&v0, "ApiVersions v99 reply");
    assert_eq!(
        max_version(&v0, ApiKey::ApiVersions).map(|v| v >= 3),
        Some(true),
        "ApiVersions v99 reply must advertise ApiVersions up to at least v3: {:?}",
        v0.api_keys
    );
    drop(s);
    assert_broker_serves_new_connections(&mut broker, "ApiVersions v99");

    // (f) A valid ApiVersions v3.
    let mut s = connect(addr);
    let v3 = api_versions_v3(&mut s, 5);
    assert_eq!(v3.error_code, 0, "ApiVersions v3 error code");
    assert_lists_supported_apis(&v3, "ApiVersions v3");
    let produce_max = max_version(&v3, ApiKey::Produce).unwrap();
    assert!(produce_max >= 9, "Produce max version {produce_max} < 9");
    for k in &v3.api_keys {
        assert!(
            k.min_version <= k.max_version,
            "api key {}: min {} > max {}",
            k.api_key,
            k.min_version,
            k.max_version
        );
    }
    drop(s);

    // The connection opened before all of this is still served.
    let again = api_versions_v3(&mut bystander, 6);
    assert_eq!(again.error_code, 0, "bystander connection after bad input");
    drop(bystander);

    // And a real client round trip works.
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "still-works", 1);
    let msgs: Vec<Out> = (0..10)
        .map(|i| Out {
            key: Some(format!("k{i}")),
            value: format!("v{i}"),
            partition: Some(0),
            ..Out::default()
        })
        .collect();
    let acked = produce_all_acked(
        &producer_config(&bootstrap),
        "still-works",
        &msgs,
        Duration::from_secs(30),
    );
    for (i, a) in acked.iter().enumerate() {
        assert_eq!((a.partition, a.offset), (0, i as i64));
    }
    let consumed = consume_exactly(
        &bootstrap,
        "still-works",
        &BTreeMap::from([(0, 10)]),
        Duration::from_secs(30),
    );
    let got: Vec<(i64, Option<String>, Option<String>)> = consumed[&0]
        .iter()
        .map(|m| (m.offset(), key_str(m), value_str(m)))
        .collect();
    let want: Vec<(i64, Option<String>, Option<String>)> = (0..10)
        .map(|i| (i as i64, Some(format!("k{i}")), Some(format!("v{i}"))))
        .collect();
    assert_eq!(got, want);
    broker.assert_alive();
}
