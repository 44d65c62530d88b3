//! Requests from this broker to another over the Kafka protocol, as Kafka's
//! brokers send them to each other (WriteTxnMarkers, a follower's Fetch):
//! one request and its response at a time, bounded in size and time.
//!
//! A leaf below `broker/`: it knows the wire format (kafka-protocol's
//! messages) and TCP, nothing of Vltava's state.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response read from another broker.
const MAX_RESPONSE: usize = 100 << 20;

/// Sends `request` at `version` to the broker at `host:port` on a
/// connection of its own and returns its response, or why there is none
/// within `timeout`.
pub async fn call<R: Request>(
    host: &str,
    port: u16,
    version: i16,
    request: &R,
    client_id: &str,
    timeout: Duration,
) -> anyhow::Result<R::Response> {
    let mut connection = Connection::connect(host, port, timeout).await?;
    connection.call(version, request, client_id, timeout).await
}

/// A connection to another broker that carries one request at a time (a
/// follower's fetches from its leader).
pub struct Connection {
    stream: TcpStream,
    peer: String,
    correlation_id: i32,
}

impl Connection {
    pub async fn connect(host: &str, port: u16, timeout: Duration) -> anyhow::Result<Connection> {
        let peer = format!("{host}:{port}");
        let stream = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .with_context(|| format!("connecting to {peer}: no answer within {timeout:?}"))?
            .with_context(|| format!("connecting to {peer}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            peer,
            correlation_id: 0,
        })
    }

    /// Sends `request` at `version` and reads its response. After an error
    /// the connection is in an unknown state: drop it.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        client_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<R::Response> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let peer = self.peer.clone();
        let stream = &mut self.stream;
        let exchange = async {
            let header = RequestHeader::default()
                .with_request_api_key(R::KEY)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id)
                .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
            let mut frame = BytesMut::from(&[0u8; 4][..]);
            header.encode(&mut frame, R::header_version(version))?;
            request.encode(&mut frame, version)?;
            let len = u32::try_from(frame.len() - 4)?;
            frame[..4].copy_from_slice(&len.to_be_bytes());
            stream.write_all(&frame).await?;

            let len = stream.read_u32().await? as usize;
            if len > MAX_RESPONSE {
                bail!("a response of {len} bytes from {peer}");
            }
            let mut body = vec![0u8; len];
            stream.read_exact(&mut body).await?;
            let mut body = Bytes::from(body);
            let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
            if header.correlation_id != correlation_id {
                bail!("{peer} answered another request");
            }
            R::Response::decode(&mut body, version)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .with_context(|| format!("{} did not answer within {timeout:?}", self.peer))?
    }
}
