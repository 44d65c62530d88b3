//! One Kafka request over a plain connection, for what librdkafka does not
//! expose to its users (each broker's API version ranges, partitions' leader
//! epochs, reassignments and leader elections). The answer is untrusted: its
//! size is bounded before it is read.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The largest response the CLI reads.
const MAX_RESPONSE: usize = 16 << 20;

/// Sends `request` at `version` to `host:port` and returns the answer.
pub fn request<R: Request>(
    host: &str,
    port: i32,
    version: i16,
    request: &R,
    timeout: Duration,
) -> anyhow::Result<R::Response> {
    let addr = format!("{host}:{port}")
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{host}:{port} does not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("vltava-cli")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, R::header_version(version))?;
    request.encode(&mut buf, version)?;
    stream.write_all(&(buf.len() as i32).to_be_bytes())?;
    stream.write_all(&buf)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(usize::MAX);
    if size > MAX_RESPONSE {
        bail!("a response of {size} bytes from {host}:{port} is implausible");
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body)?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
    if header.correlation_id != 1 {
        bail!("{host}:{port} answered another request");
    }
    R::Response::decode(&mut body, version)
}

/// The first bootstrap broker of `--brokers` as (host, port): where the
/// admin requests librdkafka lacks go (any broker takes them, as in Kafka).
pub fn first_broker(brokers: &str) -> anyhow::Result<(&str, i32)> {
    let address = brokers
        .split(',')
        .map(str::trim)
        .map(|s| s.rsplit_once("://").map_or(s, |(_, a)| a))
        .find(|a| !a.is_empty())
        .context("no broker address given")?;
    let (host, port) = address
        .rsplit_once(':')
        .with_context(|| format!("{address} is not HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("{address}: the port is not a number"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}
