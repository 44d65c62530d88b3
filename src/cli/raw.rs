//! One Kafka request over its own TCP connection, for the admin APIs
//! librdkafka does not expose (AlterPartitionReassignments,
//! ListPartitionReassignments, ElectLeaders) and for asking one broker
//! directly (ApiVersions). Messages are kafka-protocol's.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The largest response the CLI reads.
const MAX_RESPONSE: usize = 64 << 20;

/// Sends `req` at `version` to `address` (HOST:PORT) and returns the
/// decoded response, within `timeout` per step.
pub fn exchange<R: Request>(
    address: &str,
    version: i16,
    req: &R,
    timeout: Duration,
) -> anyhow::Result<R::Response> {
    let addr = address
        .to_socket_addrs()
        .with_context(|| format!("{address} does not resolve"))?
        .next()
        .with_context(|| format!("{address} does not resolve"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("vltava-cli")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, R::header_version(version))?;
    req.encode(&mut buf, version)?;
    let len = i32::try_from(buf.len()).context("request too large")?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&buf)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(usize::MAX);
    if size > MAX_RESPONSE {
        bail!("a response of {size} bytes from {address} is implausible");
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body)?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
    Ok(R::Response::decode(&mut body, version)?)
}

/// The first bootstrap address of `--brokers` (any broker forwards admin
/// requests to the controller).
pub fn first_broker(brokers: &str) -> anyhow::Result<&str> {
    brokers
        .split(',')
        .map(str::trim)
        .map(|s| s.rsplit_once("://").map_or(s, |(_, a)| a))
        .find(|a| !a.is_empty())
        .context("no broker address given")
}
