//! One client connection: read frames, decode the request header, hand the
//! request to `api/`, and write responses back in request order.
//!
//! Requests are handled one after another, as Kafka does, so appends from one
//! connection land in the order they were sent; only the wait for durability
//! of a produce overlaps with later requests. A request that cannot be decoded
//! closes this connection (one log line) and touches nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::frame::read_frame;
use super::header::decode_request_header;
use super::response::ResponseBuf;
use crate::api::{self, Reply, Response};
use crate::broker::Broker;

/// Responses decided but not yet written, in request order.
const MAX_IN_FLIGHT: usize = 128;

/// What the writer does for one request, once it is decided.
enum Outcome {
    /// A frame, as chunks to write in order.
    Write(Vec<Bytes>),
    /// `acks=0` produce: Kafka sends no response.
    Silent,
    /// The response could not be encoded: close rather than leave the client waiting.
    Close,
}

type PendingResponse = BoxFuture<'static, Outcome>;

/// Serves one connection until the peer closes it or sends something bad.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let _ = stream.set_nodelay(true);
    let metrics = crate::metrics::global();
    metrics.connection_opened();
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<PendingResponse>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_responses(wr, rx, peer));
    let mut reader = BufReader::with_capacity(64 * 1024, rd);
    let max = broker.config.socket_request_max_bytes();
    loop {
        let frame = match read_frame(&mut reader, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let pending = match handle_frame(&broker, frame, peer).await {
            Ok(p) => p,
            Err(reason) => {
                tracing::warn!(%peer, %reason, "closing connection after a bad request");
                break;
            }
        };
        if tx.send(pending).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    metrics.connection_closed();
}

/// Decodes the header, dispatches, and returns the response to write.
async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    peer: SocketAddr,
) -> Result<PendingResponse, String> {
    let (api_key, header) = decode_request_header(&mut frame)?;
    let key = header.request_api_key;
    let correlation_id = header.correlation_id;
    let started = Instant::now();
    let metrics = crate::metrics::global();
    let reply = api::handle(broker, api_key, header, frame, peer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match reply {
        Reply::Ready(response) => {
            metrics.request(key, started.elapsed());
            let encoded = encode_response(correlation_id, response);
            async move { encoded }.boxed()
        }
        Reply::Deferred(fut) => async move {
            let response = fut.await;
            metrics.request(key, started.elapsed());
            encode_response(correlation_id, response)
        }
        .boxed(),
        Reply::None => {
            metrics.request(key, started.elapsed());
            async { Outcome::Silent }.boxed()
        }
    })
}

/// Encodes a response frame; one that cannot be encoded is a broker bug,
/// logged, and the connection is closed. Record data is referenced by the
/// frame, not copied into it.
fn encode_response(correlation_id: i32, response: Response) -> Outcome {
    let mut buf = ResponseBuf::new();
    let Response { kind, version } = response;
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let result = header
        .encode(&mut buf, kind.header_version(version))
        .and_then(|_| match &kind {
            // Encoded through `buf` itself, so that its record data is spliced.
            ResponseKind::Fetch(fetch) => {
                let partitions = fetch.responses.iter().flat_map(|t| &t.partitions);
                for data in partitions.filter_map(|p| p.records.as_ref()) {
                    buf.splice(data);
                }
                fetch.encode(&mut buf, version)
            }
            _ => kind.encode(buf.contiguous(), version),
        });
    match result {
        Ok(()) => Outcome::Write(buf.finish()),
        Err(e) => {
            tracing::error!(error = %e, version, "could not encode a response");
            Outcome::Close
        }
    }
}

/// Writes responses in request order. Written responses are flushed before
/// waiting for anything: for the next request to arrive, or for a response
/// that is not decided yet (a produce waiting for its fsync), so one slow
/// response never holds back those before it.
async fn write_responses(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<PendingResponse>,
    peer: SocketAddr,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    loop {
        let mut pending = match rx.try_recv() {
            Ok(pending) => pending,
            Err(_) => {
                if out.flush().await.is_err() {
                    return;
                }
                match rx.recv().await {
                    Some(pending) => pending,
                    None => break,
                }
            }
        };
        let outcome = match (&mut pending).now_or_never() {
            Some(outcome) => outcome,
            None => {
                if out.flush().await.is_err() {
                    return;
                }
                pending.await
            }
        };
        let chunks = match outcome {
            Outcome::Write(chunks) => chunks,
            Outcome::Silent => continue,
            Outcome::Close => break,
        };
        for chunk in chunks {
            // Small chunks gather in `out`; one as large as its buffer goes
            // straight to the socket.
            if let Err(e) = out.write_all(&chunk).await {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
            }
        }
    }
    let _ = out.flush().await;
}
