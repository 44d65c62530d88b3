//! `MetadataQuorum`: this node's part in the controller quorum.
//!
//! It runs openraft over the metadata log (`log_store.rs`), the state machine
//! (`state_machine.rs`) and the voters' TCP RPCs (`network.rs`), serves those
//! RPCs on the controller listener, and offers the rest of the broker two
//! things: the current image (and every new one), and `propose`, which appends
//! records wherever the active controller is and returns once this node has
//! applied them.
//!
//! The voters are fixed by configuration (`controller.quorum.voters`). A node
//! whose log is empty initializes the quorum with them; every voter doing so
//! with the same set is safe (openraft commits that membership at log index 0
//! on whichever node wins the first election).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::controller::{self, Liveness};
use super::election;
use super::image::{MetadataImage, Refused};
use super::log_store::LogStore;
use super::network::{read_frame, write_frame, Network, Peer, ProposeRefused, Request, Response};
use super::observer::{Observer, FETCH_WAIT};
use super::records::RecordBatch;
use super::state_machine::StateMachine;
use super::RaftTypes;

/// How one node takes part in the quorum.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    pub node_id: u64,
    /// Every voter's id and controller address (`host:port`), this node's too.
    pub voters: BTreeMap<u64, String>,
    /// Where the metadata log and snapshots live.
    pub dir: PathBuf,
    /// A snapshot is taken after this many entries since the last one.
    pub snapshot_every: u64,
    /// Kafka's `controller.quorum.election.timeout.ms`: a follower that hears
    /// nothing from a leader for between this and twice this starts an election.
    pub election_timeout: Duration,
    /// Kafka's `broker.session.timeout.ms`: the active controller fences a
    /// broker it has not heard from for this long (only when the quorum
    /// serves other nodes: a lone combined node is alive while it runs).
    pub session_timeout: Duration,
    /// Kafka's `unclean.leader.election.enable`: the cluster's default for
    /// topics that set nothing.
    pub unclean_leader_election: bool,
    /// Kafka's `leader.imbalance.check.interval.seconds` when
    /// `auto.leader.rebalance.enable`: how often the active controller hands
    /// leadership back to preferred replicas. `None`: never.
    pub leader_rebalance: Option<Duration>,
}

impl QuorumConfig {
    pub fn new(node_id: u64, voters: BTreeMap<u64, String>, dir: PathBuf) -> Self {
        Self {
            node_id,
            voters,
            dir,
            snapshot_every: 10_000,
            election_timeout: Duration::from_millis(1000),
            session_timeout: Duration::from_millis(9000),
            unclean_leader_election: false,
            leader_rebalance: Some(Duration::from_secs(300)),
        }
    }
}

/// `MetadataQuorum::state`.
#[derive(Clone, Debug)]
pub struct QuorumState {
    pub leader: Option<u64>,
    pub term: u64,
    pub high_watermark: u64,
    /// (id, controller address, last index in its log, if known).
    pub voters: Vec<(u64, String, Option<u64>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("no active controller answered within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("the metadata quorum failed: {0}")]
    Failed(String),
}

pub struct MetadataQuorum {
    node_id: u64,
    voters: BTreeMap<u64, String>,
    member: Member,
    images: watch::Receiver<Arc<MetadataImage>>,
    liveness: Arc<Liveness>,
    /// The RPC server and the controller's watch over the brokers.
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

/// How this node takes part: a voter runs Raft over its own copy of the
/// log; an observer (a broker-only node) fetches the image from the voters.
enum Member {
    Voter(Raft<RaftTypes>),
    Observer(Arc<Observer>),
}

impl MetadataQuorum {
    /// A broker-only node's part: no vote and no log of its own, the image
    /// fetched from the `voters` (`observer.rs`).
    pub fn observe(node_id: u64, voters: BTreeMap<u64, String>) -> Self {
        let observer = Arc::new(Observer::new(voters.clone()));
        let (tx, images) = watch::channel(Arc::new(MetadataImage::default()));
        let task = tokio::spawn(observer.clone().follow(tx));
        Self {
            node_id,
            voters,
            member: Member::Observer(observer),
            images,
            liveness: Arc::new(Liveness::new(Duration::from_secs(9), false)),
            tasks: parking_lot::Mutex::new(vec![task]),
        }
    }

    /// Opens this node's metadata log and joins the quorum, serving its RPCs on
    /// `listener` (bound by the caller, so tests can use port 0). A lone
    /// combined node needs no listener: nobody else votes, appends or
    /// fetches; with one, it also watches the brokers' heartbeats.
    pub async fn start(
        config: QuorumConfig,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<Self> {
        let log = LogStore::open(&config.dir)?;
        let state = StateMachine::open(&config.dir)?;
        let images = state.subscribe();
        let timeout = config.election_timeout.as_millis() as u64;
        let raft_config = Config {
            cluster_name: "vltava".into(),
            heartbeat_interval: (timeout / 10).max(1),
            election_timeout_min: timeout,
            election_timeout_max: timeout * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            // What a snapshot covers is kept for lagging followers up to
            // this many entries; further behind, they get the snapshot.
            max_in_snapshot_log_to_keep: config.snapshot_every.min(1_000),
            ..Default::default()
        }
        .validate()?;
        let raft = Raft::new(config.node_id, Arc::new(raft_config), Network, log, state).await?;
        let liveness = Arc::new(Liveness::new(
            config.session_timeout,
            config.unclean_leader_election,
        ));
        let mut tasks = vec![tokio::spawn(halt_on_fatal(raft.clone()))];
        // Served to other nodes, so there are brokers to watch (a lone
        // combined node, with no listener, is alive while it runs).
        let watches_brokers = listener.is_some();
        if let Some(l) = listener {
            let handler = Handler {
                raft: raft.clone(),
                liveness: liveness.clone(),
                images: images.clone(),
            };
            tasks.push(tokio::spawn(serve(l, handler)));
        }
        if watches_brokers {
            tasks.push(tokio::spawn(watch_brokers(
                raft.clone(),
                liveness.clone(),
                images.clone(),
                config.leader_rebalance,
            )));
        }
        if !raft.is_initialized().await? {
            let voters: BTreeMap<u64, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(voters).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(e.into()),
            }
        } else if config.voters.len() == 1 {
            // The only voter need not wait out an election timeout to lead.
            raft.trigger().elect().await?;
        }
        Ok(Self {
            node_id: config.node_id,
            voters: config.voters,
            member: Member::Voter(raft),
            images,
            liveness,
            tasks: parking_lot::Mutex::new(tasks),
        })
    }

    /// Whether other nodes share the metadata log.
    pub fn is_clustered(&self) -> bool {
        self.voters.len() > 1 || matches!(self.member, Member::Observer(_))
    }

    /// A broker's heartbeat, to the active controller wherever it is;
    /// `stopping` (controlled shutdown) returns once the broker is fenced
    /// and its leadership moved; `want_fence` asks to be fenced while it
    /// holds (writes to the data directory fail).
    pub async fn heartbeat(
        &self,
        broker: i32,
        incarnation: uuid::Uuid,
        stopping: bool,
        want_fence: bool,
        timeout: Duration,
    ) -> Result<(), ProposeError> {
        let local = match &self.member {
            Member::Voter(raft) => {
                let handler = Handler {
                    raft: raft.clone(),
                    liveness: self.liveness.clone(),
                    images: self.images.clone(),
                };
                handler
                    .heartbeat(broker, incarnation, stopping, want_fence)
                    .await
            }
            Member::Observer(_) => Err(ProposeRefused::NotLeader),
        };
        let refused = match local {
            Err(ProposeRefused::NotLeader) => {
                let addr = match &self.member {
                    Member::Observer(o) => Some(o.target()),
                    Member::Voter(_) => self.leader().and_then(|l| self.voters.get(&l)).cloned(),
                };
                let Some(addr) = addr else {
                    return Err(ProposeError::Timeout(timeout));
                };
                let request = Request::Heartbeat {
                    broker,
                    incarnation,
                    stopping,
                    want_fence,
                };
                let answer = match Peer::new(addr).call(&request, timeout).await {
                    Ok(Response::Heartbeat(r)) => r,
                    Ok(_) => Err(ProposeRefused::Failed("unexpected response".into())),
                    Err(e) => Err(ProposeRefused::Failed(e.to_string())),
                };
                if let (Member::Observer(o), Err(_)) = (&self.member, &answer) {
                    o.forget_leader();
                }
                answer
            }
            other => other,
        };
        refused.map_err(|e| match e {
            ProposeRefused::Refused { why, .. } => ProposeError::Refused(why),
            other => ProposeError::Failed(other.to_string()),
        })
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The latest image this node has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    /// Every image from the current one on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }

    /// openraft's view of this node: its role, the leader, the log, the last
    /// snapshot and purge point.
    /// (A voter's only.)
    pub fn raft_metrics(&self) -> Option<watch::Receiver<RaftMetrics<u64, BasicNode>>> {
        match &self.member {
            Member::Voter(raft) => Some(raft.metrics()),
            Member::Observer(_) => None,
        }
    }

    /// The quorum as this node sees it (Kafka's DescribeQuorum): the active
    /// controller, its term, the last index applied here, and each voter's
    /// controller address with its last replicated index (known on the
    /// active controller only).
    pub fn state(&self) -> QuorumState {
        let raft = match &self.member {
            Member::Voter(raft) => raft,
            Member::Observer(o) => {
                return QuorumState {
                    leader: o.leader(),
                    term: o.term(),
                    high_watermark: self.image().offset,
                    voters: self
                        .voters
                        .iter()
                        .map(|(id, addr)| (*id, addr.clone(), None))
                        .collect(),
                }
            }
        };
        let m = raft.metrics().borrow().clone();
        let replicated = m.replication.unwrap_or_default();
        QuorumState {
            leader: m.current_leader,
            term: m.current_term,
            high_watermark: m.last_applied.map_or(0, |l| l.index),
            voters: self
                .voters
                .iter()
                .map(|(id, addr)| {
                    let end = if *id == self.node_id {
                        m.last_log_index
                    } else {
                        replicated.get(id).copied().flatten().map(|l| l.index)
                    };
                    (*id, addr.clone(), end)
                })
                .collect(),
        }
    }

    /// The active controller, as far as this node knows.
    pub fn leader(&self) -> Option<u64> {
        match &self.member {
            Member::Voter(raft) => raft.metrics().borrow().current_leader,
            Member::Observer(o) => o.leader(),
        }
    }

    pub fn is_leader(&self) -> bool {
        match &self.member {
            Member::Voter(raft) => raft.metrics().borrow().state == ServerState::Leader,
            Member::Observer(_) => false,
        }
    }

    /// Appends `records` as one entry through the active controller, wherever
    /// it is, and returns its index once this node has applied it; or, once
    /// this node has applied it, why the batch was refused (it no longer fit
    /// the image, see `MetadataImage::apply_batch`).
    pub async fn propose(
        &self,
        records: RecordBatch,
        timeout: Duration,
    ) -> Result<u64, ProposeError> {
        let deadline = Instant::now() + timeout;
        let raft = match &self.member {
            Member::Voter(raft) => raft,
            Member::Observer(o) => {
                return self
                    .propose_from_observer(o, records, deadline, timeout)
                    .await
            }
        };
        let mut metrics = raft.metrics();
        let (index, outcome) = loop {
            let forward_to = match raft.client_write(records.clone()).await {
                Ok(written) => break (written.log_id.index, written.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f.leader_node,
                Err(e) => return Err(ProposeError::Failed(e.to_string())),
            };
            if let Some(leader) = forward_to {
                // Not (or no longer) the leader, or unreachable: wait for news.
                if let Some(done) = forward(leader.addr, &records, deadline).await {
                    break done?;
                }
            }
            // Until the leader changes, or a short backoff for a leader that
            // is gone but not yet replaced.
            let changed = tokio::time::timeout(Duration::from_millis(50), metrics.changed());
            match tokio::time::timeout_at(deadline, changed).await {
                Err(_) => return Err(ProposeError::Timeout(timeout)),
                Ok(Ok(Err(_))) => return Err(ProposeError::Failed("raft stopped".into())),
                Ok(_) => {}
            }
        };
        self.applied(index, outcome, deadline, timeout).await
    }

    /// `propose` from a broker-only node: to the active controller it knows,
    /// else to each voter in turn until one leads.
    async fn propose_from_observer(
        &self,
        observer: &Observer,
        records: RecordBatch,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u64, ProposeError> {
        let (index, outcome) = loop {
            match forward(observer.target(), &records, deadline).await {
                Some(done) => break done?,
                None => observer.forget_leader(),
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.applied(index, outcome, deadline, timeout).await
    }

    /// Waits until this node's image holds entry `index`, then answers
    /// with its outcome.
    async fn applied(
        &self,
        index: u64,
        outcome: Result<(), Refused>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u64, ProposeError> {
        let mut images = self.images.clone();
        let applied = async { images.wait_for(|i| i.offset >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline, applied).await {
            Ok(Ok(())) => outcome.map(|()| index).map_err(ProposeError::Refused),
            Ok(Err(_)) => Err(ProposeError::Failed("raft stopped".into())),
            Err(_) => Err(ProposeError::Timeout(timeout)),
        }
    }

    /// Waits until some voter leads the quorum.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64, ProposeError> {
        let Member::Voter(raft) = &self.member else {
            return Err(ProposeError::Failed("not a voter".into()));
        };
        let mut metrics = raft.metrics();
        let leader = async {
            let m = metrics.wait_for(|m| m.current_leader.is_some()).await?;
            Ok::<_, watch::error::RecvError>(m.current_leader.unwrap_or_default())
        };
        match tokio::time::timeout(timeout, leader).await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(_)) => Err(ProposeError::Failed("raft stopped".into())),
            Err(_) => Err(ProposeError::Timeout(timeout)),
        }
    }

    /// Stops taking part: no more votes, appends or RPCs from this node.
    pub async fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        if let Member::Voter(raft) = &self.member {
            if let Err(e) = raft.shutdown().await {
                tracing::warn!("metadata quorum shutdown: {e}");
            }
        }
    }
}

/// Sends a proposal to the voter at `addr`: the index of its entry and
/// whether it was applied or refused, an error that ends the proposal, or
/// `None` when that voter does not lead (or did not answer) and another
/// should be asked.
async fn forward(
    addr: String,
    records: &RecordBatch,
    deadline: Instant,
) -> Option<Result<(u64, Result<(), Refused>), ProposeError>> {
    let left = deadline.saturating_duration_since(Instant::now());
    match Peer::new(addr)
        .call(&Request::Propose(records.clone()), left)
        .await
    {
        Ok(Response::Propose(Ok(index))) => Some(Ok((index, Ok(())))),
        Ok(Response::Propose(Err(ProposeRefused::Refused { index, why }))) => {
            Some(Ok((index, Err(why))))
        }
        Ok(Response::Propose(Err(ProposeRefused::Failed(e)))) => Some(Err(ProposeError::Failed(e))),
        _ => None,
    }
}

/// What the controller listener answers with.
#[derive(Clone)]
struct Handler {
    raft: Raft<RaftTypes>,
    liveness: Arc<Liveness>,
    images: watch::Receiver<Arc<MetadataImage>>,
}

impl Handler {
    async fn propose(&self, records: RecordBatch) -> Result<u64, ProposeRefused> {
        match self.raft.client_write(records).await {
            Ok(written) => {
                let index = written.log_id.index;
                written
                    .data
                    .map(|()| index)
                    .map_err(|why| ProposeRefused::Refused { index, why })
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ProposeRefused::NotLeader)
            }
            Err(e) => Err(ProposeRefused::Failed(e.to_string())),
        }
    }

    /// A broker-only node's long poll: this voter's image once it is past
    /// `after` (within `FETCH_WAIT`), with the active controller it knows.
    async fn fetch_image(&self, after: u64) -> Response {
        let mut images = self.images.clone();
        let newer = images.wait_for(|i| i.offset > after);
        let image = match tokio::time::timeout(FETCH_WAIT, newer).await {
            Ok(Ok(image)) => Some(image.clone()),
            _ => None,
        };
        let m = self.raft.metrics().borrow().clone();
        Response::Image {
            offset: image.as_ref().map_or(after, |i| i.offset),
            leader: m.current_leader,
            term: m.current_term,
            records: image.map(|i| i.records()),
        }
    }

    /// A heartbeat this voter receives: noted if it leads; a controlled
    /// shutdown fences the broker before the answer.
    async fn heartbeat(
        &self,
        broker: i32,
        incarnation: uuid::Uuid,
        stopping: bool,
        want_fence: bool,
    ) -> Result<(), ProposeRefused> {
        if self.raft.metrics().borrow().state != ServerState::Leader {
            return Err(ProposeRefused::NotLeader);
        }
        if !stopping {
            self.liveness.heartbeat(broker, incarnation);
            self.liveness
                .writes_failing(broker, incarnation, want_fence);
            return Ok(());
        }
        self.liveness.stopping(broker, incarnation);
        let image = self.images.borrow().clone();
        let current = image
            .broker(broker)
            .filter(|b| b.incarnation == incarnation);
        if current.is_some_and(|b| !b.fenced) {
            self.propose(controller::fence(&image, broker)).await?;
        }
        Ok(())
    }
}

/// Stops the node when its metadata log cannot be written (a full disk):
/// openraft stops its core for good on a storage error, and a node whose
/// metadata no longer moves would go on serving a stale image. Kafka halts
/// a node whose metadata log directory failed; so does Vltava, with status
/// 1 — its partition logs recover at the next start, and the others have
/// fenced it by then.
async fn halt_on_fatal(raft: Raft<RaftTypes>) {
    let mut metrics = raft.metrics();
    loop {
        let fatal = match &metrics.borrow().running_state {
            Ok(()) => None,
            Err(openraft::error::Fatal::Stopped) => return,
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = fatal {
            tracing::error!(error = %e, "the metadata log failed; stopping this node");
            eprintln!("vltava: the metadata log failed ({e}); stopping");
            std::process::exit(1);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// While this voter is the active controller: fences brokers silent for a
/// session, unfences those heard from again, elects leaders where none is,
/// finishes reassignments, and every `rebalance` period (when nothing else
/// changes) hands leadership back to preferred replicas.
async fn watch_brokers(
    raft: Raft<RaftTypes>,
    liveness: Arc<Liveness>,
    images: watch::Receiver<Arc<MetadataImage>>,
    rebalance: Option<Duration>,
) {
    let period =
        (liveness.session() / 8).clamp(Duration::from_millis(10), Duration::from_millis(500));
    let mut tick = tokio::time::interval(period);
    let mut balanced_at: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let is_leader = raft.metrics().borrow().state == ServerState::Leader;
        let Some(since) = liveness.leading(is_leader) else {
            balanced_at = None;
            continue;
        };
        let image = images.borrow().clone();
        probe_overdue(&liveness, &image, since).await;
        let mut records = liveness.duties(&image, since);
        let last = *balanced_at.get_or_insert(since);
        if let Some(every) = rebalance.filter(|every| last.elapsed() >= *every) {
            if records.is_empty() {
                records = election::rebalance(&image);
                if !records.is_empty() {
                    tracing::info!(partitions = records.len(), interval = ?every,
                        "moving leadership back to preferred replicas (auto.leader.rebalance.enable)");
                }
                balanced_at = Some(tokio::time::Instant::now());
            }
        }
        if records.is_empty() {
            continue;
        }
        if let Err(e) = raft.client_write(records).await {
            tracing::debug!("the controller's broker changes were not written: {e}");
        }
    }
}

/// Tries to connect to each broker whose heartbeat is late; one whose
/// listener refuses (nothing runs there) is marked gone, to be fenced now.
async fn probe_overdue(liveness: &Liveness, image: &MetadataImage, since: tokio::time::Instant) {
    let probes = liveness.overdue(image, since).into_iter().filter_map(|b| {
        let e = b.endpoints.first()?;
        let (id, incarnation, addr) = (b.id, b.incarnation, (e.host.clone(), e.port));
        Some(async move {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(500), connect).await {
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Some((id, incarnation))
                }
                _ => None,
            }
        })
    });
    for (id, incarnation) in futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
    {
        liveness.refused(id, incarnation);
    }
}

/// Accepts voters' and proposers' connections on the controller listener.
async fn serve(listener: TcpListener, handler: Handler) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(connection(stream, handler.clone()));
            }
            Err(e) => {
                tracing::warn!("controller listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
}

async fn connection(mut stream: TcpStream, handler: Handler) {
    if let Err(e) = answer(&mut stream, &handler).await {
        tracing::debug!("controller connection: {e}");
    }
}

async fn answer(stream: &mut TcpStream, handler: &Handler) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let raft = &handler.raft;
    while let Some(request) = read_frame::<Request>(stream).await? {
        let response = match request {
            Request::AppendEntries(r) => Response::AppendEntries(raft.append_entries(r).await),
            Request::Vote(r) => Response::Vote(raft.vote(r).await),
            Request::InstallSnapshot(r) => {
                Response::InstallSnapshot(raft.install_snapshot(r).await)
            }
            Request::Propose(records) => Response::Propose(handler.propose(records).await),
            Request::Heartbeat {
                broker,
                incarnation,
                stopping,
                want_fence,
            } => Response::Heartbeat(
                handler
                    .heartbeat(broker, incarnation, stopping, want_fence)
                    .await,
            ),
            Request::FetchImage { after } => handler.fetch_image(after).await,
        };
        write_frame(stream, &response).await?;
    }
    Ok(())
}
