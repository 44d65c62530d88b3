//! The controller quorum's RPCs over TCP: openraft's messages between voters,
//! and proposals forwarded to the active controller.
//!
//! Each message is one frame: `[length u32][JSON]`, at most `MAX_FRAME` bytes.
//! A connection carries one request at a time and its response. The client
//! side keeps one connection per peer and drops it on any error (or when
//! openraft abandons a call), so a half-read response is never reused.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::image::Refused;
use super::log_store::MAX_FRAME;
use super::records::RecordBatch;
use super::RaftTypes;

#[derive(Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<RaftTypes>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<RaftTypes>),
    /// Records for the active controller to append; answered with the index
    /// of their entry once it is applied there.
    Propose(RecordBatch),
    /// A broker's heartbeat to the active controller; `stopping`: a
    /// controlled shutdown, answered once the broker is fenced;
    /// `want_fence`: writes to its data directory fail (Kafka's
    /// `BrokerHeartbeatRequest.WantFence`), so it must not lead or be in
    /// sync until they succeed again.
    Heartbeat {
        broker: i32,
        incarnation: uuid::Uuid,
        stopping: bool,
        #[serde(default)]
        want_fence: bool,
    },
    /// A broker-only node's long poll for an image past `after`.
    FetchImage {
        after: u64,
    },
}

#[derive(Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Result<u64, ProposeRefused>),
    Heartbeat(Result<(), ProposeRefused>),
    /// The voter's image at `offset` as records (none: nothing past
    /// `after` within the wait), and the active controller it knows.
    Image {
        offset: u64,
        leader: Option<u64>,
        term: u64,
        records: Option<RecordBatch>,
    },
}

/// Why the node a proposal was sent to did not append it.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeRefused {
    #[error("not the active controller")]
    NotLeader,
    /// Appended at `index`, and refused when applied.
    #[error("{why}")]
    Refused { index: u64, why: Refused },
    #[error("{0}")]
    Failed(String),
}

pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, message: &T) -> io::Result<()> {
    let payload = serde_json::to_vec(message).map_err(io::Error::other)?;
    if payload.len() > MAX_FRAME {
        return Err(io::Error::other(format!(
            "frame of {} bytes",
            payload.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(&payload);
    stream.write_all(&buf).await
}

/// Reads one frame; `Ok(None)` when the peer closed the connection cleanly.
pub async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {MAX_FRAME} limit"),
        ));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// One request and its response on a connection to `addr`.
pub struct Peer {
    addr: String,
    conn: Option<TcpStream>,
}

impl Peer {
    pub fn new(addr: String) -> Self {
        Self { addr, conn: None }
    }

    pub async fn call(&mut self, request: &Request, ttl: Duration) -> io::Result<Response> {
        // Taken out for the call: a call abandoned half-way leaves no connection.
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(ttl, TcpStream::connect(&self.addr))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                c.set_nodelay(true)?;
                c
            }
        };
        write_frame(&mut conn, request).await?;
        let response = read_frame(&mut conn)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))?;
        self.conn = Some(conn);
        Ok(response)
    }
}

/// openraft's connection to another voter.
pub struct VoterClient {
    target: u64,
    peer: Peer,
}

/// Makes a `VoterClient` per voter, from its address in the membership.
pub struct Network;

impl RaftNetworkFactory<RaftTypes> for Network {
    type Network = VoterClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> VoterClient {
        VoterClient {
            target,
            peer: Peer::new(node.addr.clone()),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl VoterClient {
    async fn call(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, Unreachable> {
        self.peer
            .call(&request, option.hard_ttl())
            .await
            .map_err(|e| Unreachable::new(&e))
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            "response does not match the request",
        );
        RPCError::Network(NetworkError::new(&e))
    }

    // The error type is openraft's, as `RaftNetwork` returns it.
    #[allow(clippy::result_large_err)]
    fn remote<T, E: std::error::Error>(&self, r: Result<T, RaftError<u64, E>>) -> RpcResult<T, E> {
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<RaftTypes> for VoterClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<RaftTypes>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self.call(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(r) => self.remote(r),
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<RaftTypes>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.call(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(r) => self.remote(r),
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match self.call(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => self.remote(r),
            _ => Err(self.unexpected()),
        }
    }
}
