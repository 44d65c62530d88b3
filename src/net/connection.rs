//! One client connection: read frames, decode the request header, hand the
//! request to `api/`, and write responses back in request order.
//!
//! Requests are handled one after another, as Kafka does, so appends from one
//! connection land in the order they were sent; only the wait for durability
//! of a produce overlaps with later requests. A request that cannot be decoded
//! closes this connection (one rate-limited log line) and touches nothing else.
//!
//! What a connection may hold is bounded by configuration, not by the client:
//! - Kafka reads a connection's next request only once the previous response
//!   is sent. Vltava reads ahead (so a producer's pipelined requests overlap
//!   their fsyncs) only while the responses decided but not yet written total
//!   at most `socket.send.buffer.bytes` (default 100 KiB). A client that never
//!   reads therefore holds that plus one response (a Fetch response is at most
//!   `fetch.max.bytes`, or one batch past it as KIP-74 allows) and one request
//!   (`socket.request.max.bytes`).
//! - `connections.max.idle.ms`: a connection on which no request arrived whole
//!   or was answered and no response byte was written for that long is
//!   closed, as Kafka closes idle connections (a request being served, such
//!   as a long poll, is never cut). Bytes of an unfinished request are not
//!   activity, so a request that trickles in (slowloris) is cut off in that
//!   time too.
//! - No buffer is held between requests (see `frame.rs`), and responses go to
//!   the socket from their own memory, gathered in one vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use super::frame::{FrameError, FrameReader};
use super::header::decode_request_header;
use super::response::ResponseBuf;
use crate::api::{self, Reply, Response};
use crate::broker::Broker;
use crate::logging::{client_warnings, Escaped};

/// Requests read but not yet answered (produces waiting for durability).
const MAX_IN_FLIGHT: usize = 128;

/// Chunks given to one vectored write.
const MAX_IOVECS: usize = 64;

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

/// The limits of one connection, from the broker's configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// `socket.request.max.bytes`.
    max_request: usize,
    /// `socket.send.buffer.bytes`: unsent response bytes before reading stops.
    max_unsent: usize,
    /// `connections.max.idle.ms`.
    idle: Option<Duration>,
}

/// What the reading and the writing side of a connection share.
struct Shared {
    opened: Instant,
    /// Milliseconds after `opened` of the last request read or answered, or
    /// response byte written.
    active_ms: AtomicU64,
    /// Bytes of responses decided and not yet written.
    unsent: AtomicUsize,
    /// Signalled when response bytes are written.
    written: Notify,
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.active_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection counts as idle, unless something happens first.
    fn idle_at(&self, idle: Duration) -> Instant {
        self.opened + Duration::from_millis(self.active_ms.load(Ordering::Relaxed)) + idle
    }

    /// A response is decided: the request counts as activity until now (a
    /// long poll or a parked JoinGroup is not idleness).
    fn decided(&self, outcome: &Outcome) {
        self.touch();
        if let Outcome::Write(chunks) = outcome {
            let bytes = chunks.iter().map(Bytes::len).sum();
            self.unsent.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn sent(&self, bytes: usize) {
        self.unsent.fetch_sub(bytes, Ordering::Relaxed);
        self.touch();
        self.written.notify_one();
    }
}

/// Why a connection ended.
enum End {
    /// The peer closed it, or the writer stopped (the socket failed).
    Closed,
    Idle,
    /// A request started arriving and was not whole within the idle time.
    SlowRequest,
    BadFrame(FrameError),
    BadRequest(String),
}

/// Serves one connection until the peer closes it, it idles, or it sends
/// something bad.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let _ = stream.set_nodelay(true);
    if let Some(size) = broker.config.socket_send_buffer() {
        set_send_buffer(&stream, size);
    }
    let limits = Limits {
        max_request: broker.config.socket_request_max_bytes(),
        max_unsent: broker.config.max_unsent_bytes(),
        idle: broker.config.connections_max_idle(),
    };
    let metrics = crate::metrics::global();
    metrics.connection_opened();
    let shared = Arc::new(Shared {
        opened: Instant::now(),
        active_ms: AtomicU64::new(0),
        unsent: AtomicUsize::new(0),
        written: Notify::new(),
    });
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel::<PendingResponse>(MAX_IN_FLIGHT);
    let mut writer = tokio::spawn(write_responses(wr, rx, shared.clone(), peer));
    let end = read_requests(rd, tx, &broker, peer, limits, &shared).await;
    log_end(&end, peer, limits);
    // Responses already decided are still written (a client may half-close
    // after its last request), within the same idle bound.
    if until_idle(&shared, limits.idle, &mut writer)
        .await
        .is_none()
    {
        writer.abort();
    }
    metrics.connection_closed();
}

/// Reads and dispatches requests until the connection ends.
async fn read_requests(
    mut rd: impl AsyncRead + Unpin,
    tx: mpsc::Sender<PendingResponse>,
    broker: &Arc<Broker>,
    peer: SocketAddr,
    limits: Limits,
    shared: &Arc<Shared>,
) -> End {
    let mut frames = FrameReader::new(limits.max_request);
    loop {
        // Back-pressure: the next request waits until the responses ahead
        // of it are (nearly) sent.
        while shared.unsent.load(Ordering::Relaxed) > limits.max_unsent {
            let progress = async {
                tokio::select! {
                    _ = shared.written.notified() => true,
                    _ = tx.closed() => false,
                }
            };
            match until_idle(shared, limits.idle, progress).await {
                Some(true) => {}
                Some(false) => return End::Closed,
                None => return End::Idle,
            }
        }
        let frame = match until_idle(shared, limits.idle, frames.next(&mut rd)).await {
            None if frames.in_progress() => return End::SlowRequest,
            None => return End::Idle,
            Some(Ok(Some(frame))) => frame,
            Some(Ok(None)) => return End::Closed,
            Some(Err(e)) => return End::BadFrame(e),
        };
        shared.touch();
        let pending = match handle_frame(broker, frame, peer, shared).await {
            Ok(p) => p,
            Err(reason) => return End::BadRequest(reason),
        };
        shared.touch();
        if tx.send(pending).await.is_err() {
            return End::Closed;
        }
    }
}

/// Runs `fut` until it completes (`Some`) or the connection has been idle
/// for `idle` (`None`); activity elsewhere on the connection pushes the
/// deadline back.
async fn until_idle<F: std::future::Future>(
    shared: &Shared,
    idle: Option<Duration>,
    fut: F,
) -> Option<F::Output> {
    let Some(idle) = idle else {
        return Some(fut.await);
    };
    tokio::pin!(fut);
    loop {
        let deadline = shared.idle_at(idle);
        tokio::select! {
            biased;
            out = &mut fut => return Some(out),
            _ = tokio::time::sleep_until(deadline.into()) => {
                if shared.idle_at(idle) <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// One log line for a connection that ended abnormally; warnings a client
/// can repeat are rate-limited per peer and reason.
fn log_end(end: &End, peer: SocketAddr, limits: Limits) {
    let idle_ms = limits.idle.map_or(0, |d| d.as_millis());
    let reason = match end {
        End::Closed => return,
        End::Idle => {
            tracing::debug!(%peer, idle_ms, "closing idle connection (connections.max.idle.ms)");
            return;
        }
        End::SlowRequest => "slow request",
        End::BadFrame(_) => "bad frame",
        End::BadRequest(_) => "bad request",
    };
    if !client_warnings().admit(peer.ip(), reason) {
        return;
    }
    match end {
        End::SlowRequest => tracing::warn!(
            %peer,
            idle_ms,
            "closing connection: a request did not arrive whole within connections.max.idle.ms"
        ),
        End::BadFrame(e) => tracing::warn!(%peer, error = %e, "closing connection"),
        End::BadRequest(reason) => tracing::warn!(
            %peer,
            reason = %Escaped(reason),
            "closing connection after a bad request"
        ),
        End::Closed | End::Idle => {}
    }
}

/// Decodes the header, dispatches, and returns the response to write.
async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    peer: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<PendingResponse, String> {
    let (api_key, header) = decode_request_header(&mut frame)?;
    let key = header.request_api_key;
    let correlation_id = header.correlation_id;
    let client_id = header.client_id.clone();
    let started = Instant::now();
    let metrics = crate::metrics::global();
    let reply = api::handle(broker, api_key, header, frame, peer)
        .await
        .map_err(|e| match &client_id {
            Some(id) => format!("{e} (client id {})", Escaped(id)),
            None => e.to_string(),
        })?;
    Ok(match reply {
        Reply::Ready(response) => {
            metrics.request(key, started.elapsed());
            let encoded = encode_response(correlation_id, response);
            shared.decided(&encoded);
            async move { encoded }.boxed()
        }
        Reply::Deferred(fut) => {
            // Produce responses are small; they count once decided.
            let shared = shared.clone();
            async move {
                let response = fut.await;
                metrics.request(key, started.elapsed());
                let encoded = encode_response(correlation_id, response);
                shared.decided(&encoded);
                encoded
            }
            .boxed()
        }
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

/// Writes responses in request order. Every response already decided is
/// gathered into one vectored write; then the writer waits for the next one
/// (a produce waiting for its fsync) with nothing of its own buffered, so
/// one slow response never holds back those before it.
async fn write_responses(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<PendingResponse>,
    shared: Arc<Shared>,
    peer: SocketAddr,
) {
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    // The oldest response not decided yet, when responses after it are waiting.
    let mut head: Option<PendingResponse> = None;
    loop {
        let mut close = false;
        if queue.is_empty() {
            let pending = match head.take() {
                Some(pending) => pending,
                None => match rx.recv().await {
                    Some(pending) => pending,
                    None => return,
                },
            };
            match pending.await {
                Outcome::Write(chunks) => enqueue(&mut queue, chunks),
                Outcome::Silent => continue,
                Outcome::Close => return,
            }
        }
        while let Some(mut pending) = head.take().or_else(|| rx.try_recv().ok()) {
            match (&mut pending).now_or_never() {
                Some(Outcome::Write(chunks)) => enqueue(&mut queue, chunks),
                Some(Outcome::Silent) => {}
                Some(Outcome::Close) => {
                    close = true;
                    break;
                }
                None => {
                    head = Some(pending);
                    break;
                }
            }
        }
        if let Err(e) = write_queue(&mut wr, &mut queue, &shared).await {
            tracing::debug!(%peer, error = %e, "write failed");
            return;
        }
        if close {
            return;
        }
    }
}

fn enqueue(queue: &mut VecDeque<Bytes>, chunks: Vec<Bytes>) {
    queue.extend(chunks.into_iter().filter(|c| !c.is_empty()));
}

/// Writes every chunk of `queue`, releasing their bytes as they go.
async fn write_queue(
    wr: &mut OwnedWriteHalf,
    queue: &mut VecDeque<Bytes>,
    shared: &Shared,
) -> std::io::Result<()> {
    while !queue.is_empty() {
        let written = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            for (slice, chunk) in slices.iter_mut().zip(queue.iter()) {
                *slice = IoSlice::new(chunk);
            }
            let n = queue.len().min(MAX_IOVECS);
            wr.write_vectored(&slices[..n]).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        shared.sent(written);
        let mut left = written;
        while left > 0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                queue.pop_front();
            } else {
                front.advance(left);
                left = 0;
            }
        }
    }
    Ok(())
}

/// Sets SO_SNDBUF (`socket.send.buffer.bytes`); a failure leaves the
/// kernel's own size, as it is only a tuning.
fn set_send_buffer(stream: &TcpStream, size: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket descriptor and a c_int option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "setting SO_SNDBUF failed");
    }
}
