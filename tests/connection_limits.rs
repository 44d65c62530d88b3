//! What one connection may cost the broker, whatever the client does: a client
//! that pipelines fetches and never reads holds the broker under a bound set
//! by configuration; idle connections and requests that trickle in are closed
//! after `connections.max.idle.ms`; a flood of bad frames is logged once with
//! a count, and client input never splits a log line.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};

const CLOSE_DEADLINE: Duration = Duration::from_secs(30);

/// One request frame: size, header (with `client_id`), body.
fn frame<R: Request>(version: i16, client_id: &str, body: &R) -> Vec<u8> {
    let mut payload = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut payload, R::header_version(version))
        .unwrap();
    body.encode(&mut payload, version).unwrap();
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

/// A frame with a valid Produce v9 header and a body that does not decode.
fn bad_request(client_id: &str) -> Vec<u8> {
    let mut f = frame(9, client_id, &ProduceRequest::default());
    f.truncate(f.len() - 4);
    f.extend_from_slice(&[0xff; 8]);
    let size = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&size.to_be_bytes());
    f
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(CLOSE_DEADLINE)).unwrap();
    s
}

/// Whether the broker closed `stream`: reads until EOF or a reset; `false`
/// if the read times out (still open) after `timeout`.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

fn api_versions_answered(stream: &mut TcpStream) {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("vltava-it"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    stream.write_all(&frame(3, "limits-test", &req)).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("ApiVersions answered");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &1i32.to_be_bytes(), "correlation id");
}

fn vm_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

#[test]
fn a_client_that_pipelines_fetches_and_never_reads_is_held_to_the_configured_bound() {
    const FETCH_MAX_BYTES: u64 = 2 * 1024 * 1024;
    const SEND_BUFFER_BYTES: u64 = 102_400;
    const MESSAGE_MAX_BYTES: u64 = 1_048_588;
    let broker = TestBroker::start_with(&[
        "--override",
        &format!("fetch.max.bytes={FETCH_MAX_BYTES}"),
        "--override",
        &format!("socket.send.buffer.bytes={SEND_BUFFER_BYTES}"),
    ]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "big", 1);
    let msgs: Vec<Out> = (0..40)
        .map(|i| Out {
            value: format!("{i:06}").repeat(100_000 / 6),
            ..Out::default()
        })
        .collect();
    produce_all_acked(
        &producer_config(&bootstrap),
        "big",
        &msgs,
        Duration::from_secs(60),
    );
    let pid = broker.pid().expect("broker runs");
    let before = vm_rss_bytes(pid);

    // Fetch the whole partition (4 MB) again and again, never reading.
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("big")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(i32::MAX)])]);
    let request = frame(12, "never-reads", &fetch);
    let mut attacker = connect(broker.addr());
    attacker
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut sent = 0usize;
    // Until the broker stops taking requests (the socket buffers are full).
    while sent < 1_000_000 {
        match attacker.write_all(&request) {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("writing fetch #{sent}: {e}"),
        }
    }
    let during = vm_rss_bytes(pid);

    // What a connection may hold: the unsent bytes allowed before reading
    // stops, one more response (fetch.max.bytes, plus one batch past it as
    // KIP-74 allows) and one small request; plus room for the allocator
    // and runtime.
    let bound = SEND_BUFFER_BYTES + FETCH_MAX_BYTES + MESSAGE_MAX_BYTES + 24 * 1024 * 1024;
    assert!(
        sent > 128,
        "the client pipelined only {sent} fetches before the broker stopped reading"
    );
    assert!(
        during <= before + bound,
        "broker RSS grew from {before} to {during} bytes with {sent} fetches pipelined; bound {bound}"
    );
    // The broker still serves others.
    let mut other = connect(broker.addr());
    api_versions_answered(&mut other);
    drop(attacker);
    let mut raw = RawClient::connect(broker.addr());
    let _ = raw.send(3, &ApiVersionsRequest::default());
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let broker = TestBroker::start_with(&["--override", "connections.max.idle.ms=500"]);
    let mut used = connect(broker.addr());
    api_versions_answered(&mut used);
    let mut silent = connect(broker.addr());
    assert!(
        closed_within(&mut used, CLOSE_DEADLINE),
        "a connection idle after one request was not closed"
    );
    assert!(
        closed_within(&mut silent, CLOSE_DEADLINE),
        "a connection that never sent anything was not closed"
    );
    // New connections are served as before.
    let mut fresh = connect(broker.addr());
    api_versions_answered(&mut fresh);
}

#[test]
fn a_request_that_trickles_in_is_cut_off_after_connections_max_idle_ms() {
    let broker = TestBroker::start_with(&["--override", "connections.max.idle.ms=1000"]);
    let mut slow = connect(broker.addr());
    // A 100 MB request announced, then a byte every 100 ms.
    slow.write_all(&100_000_000i32.to_be_bytes()).unwrap();
    let deadline = Instant::now() + CLOSE_DEADLINE;
    let mut sent = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "still open after {sent} trickled bytes"
        );
        if closed_within(&mut slow, Duration::from_millis(100)) {
            break;
        }
        match slow.write_all(b"x") {
            Ok(()) => sent += 1,
            Err(_) => break,
        }
    }
    let stderr = broker.stderr();
    let cut: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("a request did not arrive whole within connections.max.idle.ms"))
        .collect();
    assert_eq!(cut.len(), 1, "{stderr}");
}

#[test]
fn a_flood_of_bad_frames_is_logged_once_with_a_count() {
    const FLOOD: u64 = 200;
    let mut broker = TestBroker::start();
    for i in 0..FLOOD {
        let mut s = connect(broker.addr());
        // A size too small for any request.
        s.write_all(&1i32.to_be_bytes()).unwrap();
        assert!(closed_within(&mut s, CLOSE_DEADLINE), "bad frame #{i}");
    }
    let status = broker.terminate();
    assert!(status.success(), "{status}");
    let stderr = broker.stderr();
    let first: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("frame size 1 is too small"))
        .collect();
    assert_eq!(first.len(), 1, "{stderr}");
    let summaries: Vec<u64> = stderr
        .lines()
        .filter(|l| l.contains("repeated warnings suppressed") && l.contains("bad frame"))
        .map(|l| {
            let n = l.split("suppressed=").nth(1).expect("a count");
            let n: String = n.chars().take_while(char::is_ascii_digit).collect();
            n.parse().expect("a number")
        })
        .collect();
    assert_eq!(summaries.iter().sum::<u64>(), FLOOD - 1, "{stderr}");
    assert!(
        !summaries.is_empty() && summaries.len() < 10,
        "{summaries:?}"
    );
}

#[test]
fn a_newline_in_client_input_never_splits_a_log_line() {
    let mut broker = TestBroker::start();
    let mut s = connect(broker.addr());
    s.write_all(&bad_request("evil\nclient\n\nid")).unwrap();
    assert!(closed_within(&mut s, CLOSE_DEADLINE));
    let status = broker.terminate();
    assert!(status.success(), "{status}");
    let stderr = broker.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.iter().all(|l| !l.trim().is_empty()), "{stderr}");
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("closing connection after a bad request"))
        .collect();
    assert_eq!(bad.len(), 1, "{stderr}");
    assert!(
        bad[0].contains(r"client id evil\nclient\n\nid"),
        "{}",
        bad[0]
    );
}
