//! Broker state: the topics and partition replicas this node holds, kept in
//! step with the metadata image (`metadata/`) — leading some, following the
//! rest through the replica fetchers — the flusher that makes writes
//! durable, and the checkpoint files that make restarts fast.
//!
//! Topic admin is "propose records → committed → applied → the local
//! partitions follow the new image", the way every node of a cluster will
//! take it. Called by `api/` only; it calls down into `metadata/` and `log/`
//! and never touches sockets or protocol structs.

pub mod dynamic_config;
pub mod flusher;
pub mod leadership;
pub mod log_manager;
pub mod metadata;
pub mod partition;
pub mod producer_ids;
pub mod replica;
pub mod replica_fetcher;
pub mod replica_selector;
#[cfg(test)]
mod replication_model;
pub mod topic;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigError, Durability, DynamicBrokerConfig, TopicConfig};
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::checkpoint::{read_checkpoint, write_checkpoint};
use crate::log::{Log, LogConfig};
use crate::metadata::image::TopicImage;
use crate::metadata::placement::{self, Candidate};
use crate::metadata::reassignment;
use crate::metadata::records::{BrokerRegistration, ConfigResource, PartitionRecord};
use crate::metadata::{
    MetadataImage, MetadataQuorum, MetadataRecord, ProposeError, QuorumConfig, Refused,
};
use crate::shutdown::Stopping;
use crate::txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use dynamic_config::GroupConfigs;
use flusher::Flusher;
use metadata::MetadataStore;
pub use partition::{FetchedData, NotReplicated, Partition, PartitionOffsets, StorageError};
use producer_ids::ProducerIdManager;
pub use topic::Topic;

/// How long a coordinator's write may take to reach the in-sync replicas
/// (Kafka's `offsets.commit.timeout.ms`).
const COORDINATOR_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";
const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";

/// Under `--durability fsync` the recovery-point checkpoint follows the
/// durable offsets, rewritten at most this often (each write is two fsyncs).
pub const RECOVERY_POINT_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// A partition's producer state is snapshotted along with the recovery
/// points once this many bytes were appended since its last snapshot, which
/// bounds the batch headers a restart replays after it.
const PRODUCER_SNAPSHOT_MIN_BYTES: u64 = 8 << 20;

/// Why a topic admin operation was refused; `api/` maps each to its code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Topic '{0}' already exists.")]
    TopicExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("{0}")]
    Timeout(String),
    #[error("storage error: {0:#}")]
    Storage(anyhow::Error),
}

impl From<ProposeError> for AdminError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Refused(Refused::TopicExists(name)) => AdminError::TopicExists(name),
            ProposeError::Refused(Refused::UnknownTopic(name)) => AdminError::UnknownTopic(name),
            ProposeError::Refused(
                r @ (Refused::ProducerIdsTaken(_) | Refused::StalePartition { .. }),
            ) => AdminError::Storage(anyhow::anyhow!(r)),
            ProposeError::Timeout(_) => AdminError::Timeout(e.to_string()),
            ProposeError::Failed(_) => AdminError::Storage(anyhow::anyhow!(e)),
        }
    }
}

/// How long a metadata change may wait for the quorum (Kafka's
/// `request.timeout.ms` default for admin requests).
pub const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The `acks` of a write that waits for every in-sync replica: Kafka's -1.
pub const ACKS_ALL: i16 = -1;

/// Where the metadata log lives in the data directory.
const METADATA_DIR: &str = "vltava-metadata";

/// Why a write was not acknowledged as its `acks` asked.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("this broker stopped leading the partition before the write was replicated")]
    NotLeader,
    #[error(
        "the write was replicated, but fewer in-sync replicas remain than min.insync.replicas"
    )]
    NotEnoughReplicasAfterAppend,
    #[error("the in-sync replicas did not all have the write in time")]
    TimedOut,
}

/// One write waiting to be acknowledged.
struct PendingWrite {
    partition: Arc<Partition>,
    /// The offset just past the write.
    offset: i64,
    /// The leader epoch it was appended in.
    leader_epoch: i32,
    min_insync: usize,
}

/// Writes waiting to be acknowledged as their `acks` asks
/// (`Broker::acknowledgement`).
pub struct Acknowledgement {
    writes: Vec<PendingWrite>,
    /// Wait until each write is in every in-sync replica (`acks=all`).
    replicated: bool,
    durable: bool,
    /// How long replication may take (the request's `timeout_ms`).
    timeout: std::time::Duration,
}

impl Acknowledgement {
    /// Whether the writes can be answered now.
    pub fn is_immediate(&self) -> bool {
        let unreplicated = || {
            self.writes
                .iter()
                .any(|w| w.partition.high_watermark() < w.offset)
        };
        self.writes.is_empty() || !(self.durable || (self.replicated && unreplicated()))
    }

    /// One result per write, in order, once each is as replicated and as
    /// durable as asked.
    pub async fn wait(self) -> Vec<Result<(), AckError>> {
        let mut results = Vec::with_capacity(self.writes.len());
        let deadline = tokio::time::Instant::now() + self.timeout;
        for w in &self.writes {
            let mut result = Ok(());
            if self.replicated {
                let replicated =
                    w.partition
                        .wait_replicated(w.offset, w.leader_epoch, w.min_insync);
                result = match tokio::time::timeout_at(deadline, replicated).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(NotReplicated::NotLeader)) => Err(AckError::NotLeader),
                    Ok(Err(NotReplicated::NotEnoughReplicas)) => {
                        Err(AckError::NotEnoughReplicasAfterAppend)
                    }
                    Err(_) => Err(AckError::TimedOut),
                };
            }
            if result.is_ok() && self.durable {
                result = w.partition.wait_durable(w.offset).await.map_err(Into::into);
            }
            results.push(result);
        }
        results
    }
}

/// Where a group or transactional id is coordinated, from this broker's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordination {
    Here,
    /// Here, once the key's partition is loaded (COORDINATOR_LOAD_IN_PROGRESS).
    Loading,
    /// By another broker, or none now (NOT_COORDINATOR).
    Elsewhere,
}

/// Where a broker is reachable, as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    /// `broker.rack`, when set.
    pub rack: Option<String>,
}

tokio::task_local! {
    /// The name of the listener the current connection came in on: Kafka
    /// answers Metadata and FindCoordinator with every broker's endpoint of
    /// the request's own listener.
    static LISTENER_NAME: String;
}

/// Runs one connection's task so that [`Broker::endpoint`] answers the
/// endpoints of the listener it came in on.
pub async fn on_listener<F: std::future::Future>(name: String, connection: F) -> F::Output {
    LISTENER_NAME.scope(name, connection).await
}

/// What a starting broker brings besides its settings.
#[derive(Default)]
pub struct Startup {
    /// The controller listener, bound, when the quorum has other voters.
    pub controller: Option<tokio::net::TcpListener>,
    /// The advertised endpoint of each Kafka listener, registered with the
    /// cluster; empty: the `listen` address as `PLAINTEXT`.
    pub endpoints: Vec<crate::metadata::records::Endpoint>,
}

/// The single node's broker state.
pub struct Broker {
    /// The settings the broker started with (file, flags, defaults);
    /// `current_config()` adds the dynamic ones.
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub node_id: i32,
    /// This process's registration: new at every start (Kafka's incarnation id).
    incarnation: Uuid,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// The cluster's metadata: topics, partitions and their configs.
    metadata: Arc<MetadataQuorum>,
    /// The offset of the metadata image the local partitions follow; held
    /// while they are brought in step with a newer one.
    applied: Mutex<u64>,
    /// The same offset, for those waiting until the partitions follow one.
    followed: tokio::sync::watch::Sender<u64>,
    /// The dynamic configs the partitions and groups last took, from the
    /// image at `applied`.
    applied_dynamic: Mutex<(DynamicBrokerConfig, BTreeMap<String, GroupConfigs>)>,
    /// Serializes dynamic config changes (each computes the next values from
    /// the current ones).
    config_changes: tokio::sync::Mutex<()>,
    flusher: Arc<Flusher>,
    /// Fetch the partitions this broker follows from their leaders.
    fetchers: replica_fetcher::ReplicaFetchers,
    /// Consumer groups and committed offsets, kept in `__consumer_offsets`.
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions, kept in `__transaction_state`.
    pub txns: Arc<TransactionCoordinator>,
    producer_ids: Arc<ProducerIdManager>,
    /// Serializes checkpoint file writes (they share temporary file names).
    checkpoint_lock: Mutex<()>,
}

impl Broker {
    /// Opens the data directory: the metadata log (this node is its one
    /// voter), then every partition log the image names (with recovery from
    /// its checkpointed recovery point).
    pub async fn open(config: BrokerConfig) -> anyhow::Result<Broker> {
        Broker::start(config, Startup::default()).await
    }

    /// `open`, in a cluster: joins the quorum of `controller.quorum.voters`
    /// (serving its RPCs on `startup.controller`), waits until the metadata
    /// log is caught up, and registers this broker with its endpoints.
    pub async fn start(config: BrokerConfig, startup: Startup) -> anyhow::Result<Broker> {
        config.validate()?;
        let node_id = config.node_id();
        let dir = config.data_dir.clone();
        let store = MetadataStore::new(&dir);
        let (metadata, cluster_id) = open_metadata(&config, startup.controller).await?;
        let incarnation = Uuid::new_v4();
        let endpoints = if startup.endpoints.is_empty() {
            vec![crate::metadata::records::Endpoint {
                listener: "PLAINTEXT".into(),
                host: config.listen.ip().to_string(),
                port: config.listen.port(),
            }]
        } else {
            startup.endpoints
        };
        let registration = BrokerRegistration {
            id: node_id,
            incarnation,
            endpoints,
            rack: config.rack(),
            fenced: false,
        };
        metadata
            .propose(
                vec![MetadataRecord::RegisterBroker(registration)],
                METADATA_TIMEOUT,
            )
            .await
            .context("registering the broker")?;
        if metadata.image().topic(OFFSETS_TOPIC).is_none() {
            let records = first_start_records(&config, &store, node_id, &metadata.image())?;
            match metadata.propose(records, METADATA_TIMEOUT).await {
                // Another voter wrote them first.
                Ok(_) | Err(ProposeError::Refused(Refused::TopicExists(_))) => {}
                Err(e) => {
                    return Err(e).context("writing the first metadata records");
                }
            }
        }
        // Also when a crash came between the import and the rename.
        store.retire_topics_file()?;
        let producer_ids = ProducerIdManager::open(&dir, node_id, metadata.clone()).await?;
        dynamic_config::import_legacy_file(&dir, node_id, &metadata).await?;
        tokio::task::spawn_blocking(move || {
            Broker::open_logs(config, cluster_id, incarnation, metadata, producer_ids)
        })
        .await
        .context("opening the logs")?
    }

    /// The rest of `open`, on a blocking thread: the logs, the coordinators.
    fn open_logs(
        config: BrokerConfig,
        cluster_id: String,
        #[allow(dead_code)] // read by the broker heartbeats (next step)
        incarnation: Uuid,
        metadata: Arc<MetadataQuorum>,
        producer_ids: Arc<ProducerIdManager>,
    ) -> anyhow::Result<Broker> {
        let started = std::time::Instant::now();
        let dir = config.data_dir.clone();
        let node_id = config.node_id();
        let recovery = read_checkpoint(&dir.join(RECOVERY_POINT_FILE))?;
        let log_start = read_checkpoint(&dir.join(LOG_START_FILE))?;
        let high_watermarks = read_checkpoint(&dir.join(HIGH_WATERMARK_FILE))?;
        let image = metadata.image();
        let dynamic = dynamic_config::broker_layers(&image, node_id);
        let group_configs = dynamic_config::groups(&image);
        let current = BrokerConfig {
            dynamic: dynamic.clone(),
            ..config.clone()
        };
        let mut topics = BTreeMap::new();
        for t in image.topics() {
            let topic = open_topic(&dir, &image, t, &current, node_id, |p| {
                let key = (t.name.clone(), p);
                // One replica: the log is the truth, its end the high
                // watermark. Several: what was known to be replicated.
                let replicated = t.partitions.get(&p).is_some_and(|r| r.replicas.len() > 1);
                Start {
                    recovery_point: recovery.get(&key).copied().unwrap_or(0),
                    log_start_offset: log_start.get(&key).copied().unwrap_or(0),
                    high_watermark: if replicated {
                        high_watermarks.get(&key).copied().unwrap_or(0)
                    } else {
                        i64::MAX
                    },
                }
            })?;
            topics.insert(t.name.clone(), topic);
        }
        let internal = |name: &str| {
            topics
                .get(name)
                .cloned()
                .with_context(|| format!("the metadata log has no {name}"))
        };
        let offsets_topic = internal(OFFSETS_TOPIC)?;
        let txn_topic = internal(TRANSACTION_STATE_TOPIC)?;
        log_recovery(&topics, started);
        // Each loads the partitions this broker leads as `follow_leadership`
        // finds them.
        let groups = GroupCoordinator::new(config.coordinator(), offsets_topic);
        let txns = TransactionCoordinator::new(config.transactions(), txn_topic);
        let flusher = Arc::new(Flusher::start().context("starting the flusher thread")?);
        let fetchers = replica_fetcher::ReplicaFetchers::new(
            replica_fetcher::FetchSettings::from_config(&config),
            flusher.clone(),
        );
        let broker = Broker {
            node_id,
            cluster_id,
            incarnation,
            topics: RwLock::new(topics),
            metadata,
            applied: Mutex::new(image.offset),
            followed: tokio::sync::watch::Sender::new(image.offset),
            applied_dynamic: Mutex::new((dynamic, group_configs.clone())),
            config_changes: tokio::sync::Mutex::new(()),
            flusher,
            fetchers,
            groups: Arc::new(groups),
            txns: Arc::new(txns),
            producer_ids,
            checkpoint_lock: Mutex::new(()),
            config,
        };
        for (group, configs) in &group_configs {
            broker.apply_group_config(group, configs);
        }
        broker.follow_leadership(&image);
        broker.publish_topics();
        Ok(broker)
    }

    /// Tells the group coordinator the current topics (KIP-848 assignors
    /// assign from them).
    fn publish_topics(&self) {
        let image = self
            .topics
            .read()
            .values()
            .filter(|t| !t.is_internal())
            .map(|t| (t.name.clone(), (t.id, t.partition_count())))
            .collect();
        self.groups.set_topics(image);
    }

    /// The metadata image every answer of one request is read from.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// This broker's endpoint as seen from the current connection's listener
    /// (the first listener's outside a connection).
    pub fn endpoint(&self) -> Endpoint {
        let image = self.metadata.image();
        self.endpoint_of(&image, self.node_id).unwrap_or(Endpoint {
            node_id: self.node_id,
            host: self.config.listen.ip().to_string(),
            port: i32::from(self.config.listen.port()),
            rack: self.config.rack(),
        })
    }

    /// A registered broker's endpoint on the current connection's listener
    /// (by listener name; its first listener when it has none of that name).
    pub fn endpoint_of(&self, image: &MetadataImage, id: i32) -> Option<Endpoint> {
        let b = image.broker(id)?;
        let name = LISTENER_NAME.try_with(|n| n.clone()).ok();
        let e = name
            .and_then(|n| b.endpoints.iter().find(|e| e.listener == n))
            .or_else(|| b.endpoints.first())?;
        Some(Endpoint {
            node_id: id,
            host: e.host.clone(),
            port: i32::from(e.port),
            rack: b.rack.clone(),
        })
    }

    /// Where this broker reaches broker `id`: its first registered listener
    /// (Kafka's `inter.broker.listener.name`; the listener named PLAINTEXT,
    /// else the first, registers first).
    pub fn inter_broker_endpoint(&self, id: i32) -> Option<(String, u16)> {
        let image = self.metadata.image();
        let e = image.broker(id)?.endpoints.first()?;
        Some((e.host.clone(), e.port))
    }

    /// The brokers Metadata lists: registered and not fenced, by id.
    pub fn live_brokers(&self, image: &MetadataImage) -> Vec<Endpoint> {
        image
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| self.endpoint_of(image, b.id))
            .collect()
    }

    /// The broker coordinating `key` (a group id in `__consumer_offsets`, a
    /// transactional id in `__transaction_state`): the leader of the key's
    /// partition (Kafka's `partitionFor`), if it has one.
    pub fn coordinator_of(&self, image: &MetadataImage, topic: &str, key: &str) -> Option<i32> {
        key_partition(image, topic, key)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }

    /// The leader and leader epoch of a partition in `image`, by topic name
    /// or (when the name is empty) id, if it has a leader.
    pub fn partition_leader(
        &self,
        image: &MetadataImage,
        topic: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<(i32, i32)> {
        let t = if topic.is_empty() {
            image.topic_by_id(&topic_id)
        } else {
            image.topic(topic)
        }?;
        let p = t.partitions.get(&partition)?;
        (p.leader >= 0).then_some((p.leader, p.leader_epoch))
    }

    /// Whether this broker coordinates `key` (see `coordinator_of`): the
    /// image names it, and its coordinator has loaded the key's partition.
    pub fn coordination(&self, topic: &str, key: &str) -> Coordination {
        let image = self.metadata.image();
        let Some(index) = key_partition(&image, topic, key)
            .filter(|p| p.leader == self.node_id)
            .map(|p| p.partition)
        else {
            return Coordination::Elsewhere;
        };
        let loaded = match topic {
            OFFSETS_TOPIC => self.groups.is_loaded(index),
            TRANSACTION_STATE_TOPIC => self.txns.is_loaded(index),
            _ => false,
        };
        if loaded {
            Coordination::Here
        } else {
            Coordination::Loading
        }
    }

    /// The metadata quorum as this node sees it (DescribeQuorum).
    pub fn quorum_state(&self) -> crate::metadata::QuorumState {
        self.metadata.state()
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, in name order.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// A producer id never handed out before (InitProducerId), or
    /// `NotReady` while the next block is being granted (retriable).
    pub fn allocate_producer_id(&self) -> Result<i64, producer_ids::NotReady> {
        self.producer_ids.allocate()
    }

    /// Whether the durability policy is `fsync` (the default).
    pub fn fsync_on_ack(&self) -> bool {
        self.config.durability == Durability::Fsync
    }

    /// Kafka's acks rule under Vltava's durability policy, decided here and
    /// only here: a write acknowledged with `acks=all` (`ACKS_ALL`) — a
    /// produce with acks -1, and every coordinator write (offsets, group
    /// metadata and assignments, transaction state and markers, which Kafka
    /// writes with acks=all) — is answered under `--durability fsync` once it
    /// is durable; any other write once it is appended.
    pub fn waits_for_fsync(&self, acks: i16) -> bool {
        acks == ACKS_ALL && self.fsync_on_ack()
    }

    /// What `acks` asks of some writes (partition, offset past the write),
    /// under the rule above: nothing more, or — for `acks=all` — the high
    /// watermark past each write (every in-sync replica has it) and, under
    /// `--durability fsync`, durability, in which case they are queued for
    /// fsync now, together. `Acknowledgement::wait` waits, replication for at
    /// most `timeout`.
    pub fn acknowledgement(
        &self,
        acks: i16,
        writes: Vec<(Arc<Partition>, i64)>,
        timeout: std::time::Duration,
    ) -> Acknowledgement {
        let durable = self.waits_for_fsync(acks);
        if durable {
            self.request_durable(writes.iter().map(|(p, offset)| (p, *offset)));
        }
        let writes = writes
            .into_iter()
            .map(|(partition, offset)| PendingWrite {
                leader_epoch: partition.leader_epoch(),
                min_insync: self.min_insync_replicas(&partition.topic),
                partition,
                offset,
            })
            .collect();
        Acknowledgement {
            writes,
            replicated: acks == ACKS_ALL,
            durable,
            timeout,
        }
    }

    /// `min.insync.replicas` of a topic (1 if it is gone).
    pub fn min_insync_replicas(&self, topic: &str) -> usize {
        self.topic(topic).map_or(1, |t| t.min_insync_replicas())
    }

    /// `acknowledgement` of a coordinator's write (acks=all), waited for.
    pub async fn acknowledged_one(
        &self,
        acks: i16,
        partition: &Arc<Partition>,
        offset: i64,
    ) -> Result<(), AckError> {
        let ack = self.acknowledgement(
            acks,
            vec![(partition.clone(), offset)],
            COORDINATOR_WRITE_TIMEOUT,
        );
        ack.wait().await.remove(0)
    }

    /// Queues every partition not yet durable up to its offset for an fsync,
    /// all at once so they are synced side by side; then wait on each with
    /// [`Partition::wait_durable`].
    pub fn request_durable<'a>(&self, writes: impl IntoIterator<Item = (&'a Arc<Partition>, i64)>) {
        self.flusher.request(
            writes
                .into_iter()
                .filter(|(p, offset)| p.durable_offset() < *offset)
                .map(|(p, _)| p),
        );
    }

    /// Creates a topic with `partitions` partitions (or the default).
    pub async fn create_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<Arc<Topic>, AdminError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 {
            self.config.num_partitions()
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(AdminError::InvalidPartitions(
                "Number of partitions must be larger than 0.".into(),
            ));
        }
        let replication_factor = if replication_factor == -1 {
            self.config
                .value("default.replication.factor")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
        } else {
            replication_factor
        };
        if replication_factor <= 0 {
            return Err(AdminError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        let image = self.metadata.image();
        let assignment = place(&image, 0, partitions, replication_factor)?;
        self.create_placed(&image, name, assignment, config, validate_only)
            .await
    }

    /// Creates a topic whose partitions' replicas the request names
    /// (CreateTopics with a manual assignment): partition `i` on
    /// `assignment[i]`, its first replica the preferred leader. Kafka's
    /// checks: brokers registered, none twice, one replication factor.
    pub async fn create_topic_assigned(
        self: &Arc<Self>,
        name: &str,
        assignment: Vec<Vec<i32>>,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<Arc<Topic>, AdminError> {
        validate_topic_name(name)?;
        let image = self.metadata.image();
        let first = assignment.first().map(Vec::len);
        for replicas in &assignment {
            reassignment::validate_manual_assignment(&image, replicas, first)
                .map_err(|e| AdminError::InvalidReplicaAssignment(e.to_string()))?;
        }
        self.create_placed(&image, name, assignment, config, validate_only)
            .await
    }

    async fn create_placed(
        self: &Arc<Self>,
        image: &MetadataImage,
        name: &str,
        assignment: Vec<Vec<i32>>,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<Arc<Topic>, AdminError> {
        if image.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let partitions = assignment.len() as i32;
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic::new(
                name.to_string(),
                id,
                config,
                Vec::new(),
                partitions,
            )));
        }
        let records = topic_records(image, &assignment, name, id, &config);
        self.change_metadata(records).await?;
        tracing::info!(topic = name, partitions, "created topic");
        self.topic(name)
            .filter(|t| t.id == id)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))
    }

    /// The topic, created with the defaults if it does not exist and
    /// `auto.create.topics.enable` allows it.
    pub async fn auto_create(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<Option<Arc<Topic>>, AdminError> {
        if let Some(t) = self.topic(name) {
            return Ok(Some(t));
        }
        if !self.config.auto_create_topics() {
            return Ok(None);
        }
        match self
            .create_topic(name, -1, -1, TopicConfig::default(), false)
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(AdminError::TopicExists(_)) => Ok(self.topic(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(self: &Arc<Self>, name: &str) -> Result<Uuid, AdminError> {
        if name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC {
            return Err(AdminError::InvalidTopic(format!(
                "Topic {name} is an internal topic and cannot be deleted."
            )));
        }
        let Some(id) = self.metadata.image().topic(name).map(|t| t.id) else {
            return Err(AdminError::UnknownTopic(name.to_string()));
        };
        self.change_metadata(vec![MetadataRecord::RemoveTopic { id }])
            .await?;
        tracing::info!(topic = name, "deleted topic");
        Ok(id)
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        self: &Arc<Self>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let image = self.metadata.image();
        let Some(topic) = image.topic(name) else {
            return Err(AdminError::UnknownTopic(name.to_string()));
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        // As many replicas as the topic's first partition has.
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map_or(1, |p| p.replicas.len() as i16);
        let assignment = place(&image, current, count - current, replication_factor)?;
        if validate_only {
            return Ok(());
        }
        let records = (current..count)
            .zip(assignment)
            .map(|(p, replicas)| {
                MetadataRecord::Partition(new_partition(&image, topic.id, p, replicas))
            })
            .collect();
        self.change_metadata(records).await?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (AlterConfigs and
    /// IncrementalAlterConfigs compute the new set): the difference goes
    /// into the metadata log, and every partition's log follows.
    pub async fn alter_topic_config(
        self: &Arc<Self>,
        name: &str,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let image = self.metadata.image();
        if image.topic(name).is_none() {
            return Err(AdminError::UnknownTopic(name.to_string()));
        }
        // Re-validate the whole set: every key known, every value well-formed.
        let config = TopicConfig::from_pairs(
            config
                .overrides
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        if validate_only {
            return Ok(());
        }
        let empty = BTreeMap::new();
        let old = image.configs(ConfigResource::Topic, name).unwrap_or(&empty);
        let records =
            dynamic_config::change_records(ConfigResource::Topic, name, old, &config.overrides);
        if !records.is_empty() {
            self.change_metadata(records).await?;
        }
        tracing::info!(topic = name, "altered topic config");
        Ok(())
    }

    /// Appends `records` to the metadata log and brings the local
    /// partitions in step with the image that holds them.
    async fn change_metadata(
        self: &Arc<Self>,
        records: Vec<MetadataRecord>,
    ) -> Result<(), AdminError> {
        self.metadata.propose(records, METADATA_TIMEOUT).await?;
        self.follow_now().await
    }

    /// `follow_image` on the blocking pool (it opens and deletes logs), for
    /// a change this node just proposed.
    async fn follow_now(self: &Arc<Self>) -> Result<(), AdminError> {
        let broker = self.clone();
        tokio::task::spawn_blocking(move || broker.follow_image())
            .await
            .map_err(|e| AdminError::Storage(e.into()))?
            .map_err(AdminError::Storage)
    }

    /// Brings the local topics in step with the latest metadata image: logs
    /// of removed topics are deleted, new partitions' logs opened, changed
    /// configs applied. Each step is idempotent, so a failure is retried by
    /// the next call.
    fn follow_image(&self) -> anyhow::Result<()> {
        let mut applied = self.applied.lock();
        let image = self.metadata.image();
        if image.offset <= *applied {
            return Ok(());
        }
        // Gone, or replaced by a new topic of the same name.
        let gone: Vec<Arc<Topic>> = self
            .topics
            .read()
            .values()
            .filter(|t| image.topic(&t.name).is_none_or(|i| i.id != t.id))
            .cloned()
            .collect();
        for topic in gone {
            self.topics.write().remove(&topic.name);
            for p in topic.partitions() {
                if let Err(e) = p.delete() {
                    tracing::warn!(topic = %topic.name, partition = p.index, error = %e,
                        "could not remove the partition directory of a deleted topic");
                }
            }
        }
        let current = self.current_config();
        for t in image.topics() {
            let Some(topic) = self.topic(&t.name) else {
                let topic = open_topic(
                    &self.config.data_dir,
                    &image,
                    t,
                    &current,
                    self.node_id,
                    |_| Start::NEW,
                )?;
                self.topics.write().insert(t.name.clone(), topic);
                continue;
            };
            // New partitions, and replicas reassigned here, are opened;
            // replicas reassigned away are closed and deleted.
            let hosted: BTreeSet<i32> = topic.partitions().iter().map(|p| p.index).collect();
            let opening: Vec<i32> = local_replicas(t, self.node_id)
                .filter(|p| !hosted.contains(p))
                .collect();
            let want = t.partitions.len() as i32;
            if !opening.is_empty() || want > topic.partition_count() {
                let log_config = topic.config().log_config(&current);
                let added = open_partitions(
                    &self.config.data_dir,
                    &t.name,
                    opening.into_iter(),
                    &log_config,
                    |_| Start::NEW,
                )?;
                topic.add_partitions(added, want);
            }
            for index in hosted {
                let kept = t
                    .partitions
                    .get(&index)
                    .is_none_or(|p| p.replicas.contains(&self.node_id));
                if !kept {
                    self.remove_replica(&topic, index);
                }
            }
            let config = topic_config(&image, &t.name);
            if topic.config().overrides != config.overrides {
                topic.reconfigure(config, &current);
            }
        }
        self.follow_leadership(&image);
        self.follow_dynamic_configs(&image);
        *applied = image.offset;
        self.followed.send_replace(image.offset);
        self.publish_topics();
        Ok(())
    }

    /// This broker's replica of `topic`'s partition `index` was reassigned
    /// away (the reassignment completed without it): it stops serving and
    /// fetching, and its log is deleted, as Kafka's StopReplica with delete.
    fn remove_replica(&self, topic: &Topic, index: i32) {
        let Some(p) = topic.remove_partition(index) else {
            return;
        };
        // No leader and no epoch: waiting produces give up, and a replica
        // fetch already on its way is not applied (its epoch differs).
        p.follow(-1, -1);
        self.coordinator_resigned(&topic.name, index);
        tracing::info!(topic = %topic.name, partition = index,
            "replica reassigned away; deleting its log");
        if let Err(e) = p.delete() {
            tracing::warn!(topic = %topic.name, partition = index, error = %e,
                "could not remove the directory of a replica reassigned away");
        }
    }

    /// Gives each local replica the role the image names: leader (a new
    /// leader epoch starts at its log end offset) or follower, and hands
    /// the followed partitions to the replica fetchers, by leader.
    fn follow_leadership(&self, image: &MetadataImage) {
        let now = crate::clock::now_ms();
        let mut wanted: BTreeMap<i32, ((String, u16), Vec<replica_fetcher::FetchTarget>)> =
            BTreeMap::new();
        for t in image.topics() {
            let Some(topic) = self.topic(&t.name) else {
                continue;
            };
            for p in topic.partitions() {
                let Some(record) = t.partitions.get(&p.index) else {
                    continue;
                };
                if record.leader == self.node_id {
                    if p.lead(self.node_id, record, now) {
                        tracing::info!(topic = %t.name, partition = p.index,
                            leader_epoch = record.leader_epoch, "became leader");
                        crate::metrics::global().leader_elected();
                        self.coordinator_elected(&t.name, p.index);
                    }
                    continue;
                }
                if p.follow(record.leader, record.leader_epoch) {
                    tracing::info!(topic = %t.name, partition = p.index, leader = record.leader,
                        leader_epoch = record.leader_epoch, "following");
                    self.coordinator_resigned(&t.name, p.index);
                }
                let Some(endpoint) = image
                    .broker(record.leader)
                    .and_then(|b| b.endpoints.first())
                    .map(|e| (e.host.clone(), e.port))
                else {
                    continue;
                };
                wanted
                    .entry(record.leader)
                    .or_insert_with(|| (endpoint, Vec::new()))
                    .1
                    .push(replica_fetcher::FetchTarget {
                        partition: p.clone(),
                        topic_id: t.id,
                        leader_epoch: record.leader_epoch,
                    });
            }
        }
        self.fetchers.assign(wanted);
    }

    /// This broker became leader of an internal topic's partition: its
    /// coordinator loads the groups or transactional ids kept there.
    fn coordinator_elected(&self, topic: &str, index: i32) {
        // Still leader in a new leader epoch (a replica reassigned away):
        // what is loaded stays, as Kafka's coordinator runtime keeps an
        // active shard.
        let loaded = match topic {
            OFFSETS_TOPIC if self.groups.is_loaded(index) => return,
            TRANSACTION_STATE_TOPIC if self.txns.is_loaded(index) => return,
            OFFSETS_TOPIC => self.groups.load_partition(index),
            TRANSACTION_STATE_TOPIC => self.txns.load_partition(index),
            _ => return,
        };
        if let Err(e) = loaded {
            tracing::error!(topic, partition = index, error = %format!("{e:#}"),
                "loading a coordinator partition failed; its keys are not coordinated here");
        }
    }

    /// This broker no longer leads an internal topic's partition: its
    /// coordinator forgets the keys kept there.
    fn coordinator_resigned(&self, topic: &str, index: i32) {
        match topic {
            OFFSETS_TOPIC => self.groups.unload_partition(index),
            TRANSACTION_STATE_TOPIC => self.txns.unload_partition(index),
            _ => {}
        }
    }

    /// Proposes a partition's ISR change (Kafka's AlterPartition) for the
    /// leader replica `partition`; it takes effect when the image holds it.
    pub fn propose_isr_change(
        self: &Arc<Self>,
        partition: Arc<Partition>,
        record: PartitionRecord,
    ) {
        let image = self.metadata.image();
        // KIP-841: a fenced broker never joins an ISR, however it fetches.
        if let Some(fenced) = record
            .isr
            .iter()
            .find(|r| image.broker(**r).is_none_or(|b| b.fenced))
        {
            tracing::debug!(topic = %partition.topic, partition = partition.index, broker = fenced,
                "not adding a fenced broker to the ISR");
            partition.isr_change_failed();
            return;
        }
        let broker = self.clone();
        let expanded = record.isr.len() > partition.isr().len();
        tokio::spawn(async move {
            tracing::info!(topic = %partition.topic, partition = partition.index,
                isr = ?record.isr, partition_epoch = record.partition_epoch, "proposing an ISR change");
            let proposed = broker
                .metadata
                .propose(vec![MetadataRecord::Partition(record)], METADATA_TIMEOUT)
                .await;
            match proposed {
                Ok(_) => {
                    crate::metrics::global().isr_changed(expanded);
                    // Idempotent: a failure is retried at the next image
                    // (`follow_metadata`).
                    let _ = broker.follow_now().await;
                }
                Err(e) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index,
                        error = %e, "ISR change not taken; will retry");
                    partition.isr_change_failed();
                }
            }
        });
    }

    /// Every `replica.lag.time.max.ms / 2` until shutdown: each partition
    /// this broker leads drops the followers that lagged too long from its
    /// ISR (Kafka's `isr-expiration` task).
    pub async fn check_isr(self: Arc<Self>, mut stopping: Stopping) {
        let max_lag = self.config.replica_lag_time_max_ms();
        let every =
            std::time::Duration::from_millis(u64::try_from(max_lag / 2).unwrap_or(1).max(1));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.wait() => return,
            }
            let now = crate::clock::now_ms();
            for topic in self.topics() {
                for p in topic.partitions() {
                    if let Some(record) = p.isr_shrink(now, max_lag) {
                        self.propose_isr_change(p, record);
                    }
                }
            }
        }
    }

    /// Stops fetching from leaders (shutdown).
    pub fn stop_replication(&self) {
        self.fetchers.stop_all();
    }

    /// Keeps the local partitions in step with every image the metadata log
    /// publishes, whoever proposed the change (in a cluster, any node), until
    /// shutdown. A change this node proposed is followed at once by
    /// `change_metadata` too; following is idempotent.
    pub async fn follow_metadata(self: Arc<Self>, mut stopping: Stopping) {
        let mut images = self.metadata.subscribe();
        loop {
            tokio::select! {
                changed = images.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = stopping.wait() => return,
            }
            let broker = self.clone();
            match tokio::task::spawn_blocking(move || broker.follow_image()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"),
                    "could not bring the partitions in step with the metadata; retrying at the next change"),
                Err(e) => tracing::error!(error = %e, "following the metadata failed"),
            }
        }
    }

    /// Waits until the local partitions follow an image at `offset` or later.
    pub async fn wait_followed(&self, offset: u64) {
        let mut followed = self.followed.subscribe();
        let _ = followed.wait_for(|o| *o >= offset).await;
    }

    /// Hands changed dynamic configs on: every partition's log takes its
    /// new effective config (topics without an override follow the broker's
    /// values), every changed group its new overrides.
    fn follow_dynamic_configs(&self, image: &MetadataImage) {
        let broker = dynamic_config::broker_layers(image, self.node_id);
        let groups = dynamic_config::groups(image);
        let mut applied = self.applied_dynamic.lock();
        if applied.0 != broker {
            let current = BrokerConfig {
                dynamic: broker.clone(),
                ..self.config.clone()
            };
            for topic in self.topics() {
                topic.reconfigure(topic.config(), &current);
            }
            tracing::info!(dynamic = ?broker, "broker config changed");
        }
        let none = GroupConfigs::new();
        let names: std::collections::BTreeSet<&String> =
            applied.1.keys().chain(groups.keys()).collect();
        for group in names {
            let (old, new) = (
                applied.1.get(group).unwrap_or(&none),
                groups.get(group).unwrap_or(&none),
            );
            if old != new {
                self.apply_group_config(group, new);
                tracing::info!(group, configs = ?new, "group config changed");
            }
        }
        *applied = (broker, groups);
    }

    /// The effective settings: the static ones with the dynamic layers.
    pub fn current_config(&self) -> BrokerConfig {
        BrokerConfig {
            dynamic: dynamic_config::broker_layers(&self.metadata.image(), self.node_id),
            ..self.config.clone()
        }
    }

    /// Changes the broker's dynamic configs: `change` gets the current
    /// layers and returns the new ones (`None`: no change, as for
    /// validate_only or a refused request). The change goes into the
    /// metadata log; `follow_image` hands it to the partitions.
    pub async fn alter_broker_config(
        self: &Arc<Self>,
        change: impl FnOnce(&BrokerConfig) -> Option<DynamicBrokerConfig>,
    ) -> Result<(), AdminError> {
        let _serial = self.config_changes.lock().await;
        let current = self.current_config();
        let Some(next) = change(&current) else {
            return Ok(());
        };
        let old = &current.dynamic;
        let mut records = dynamic_config::change_records(
            ConfigResource::Broker,
            &self.node_id.to_string(),
            &old.per_broker,
            &next.per_broker,
        );
        records.extend(dynamic_config::change_records(
            ConfigResource::Broker,
            "",
            &old.cluster_default,
            &next.cluster_default,
        ));
        if !records.is_empty() {
            self.change_metadata(records).await?;
        }
        Ok(())
    }

    /// A group's dynamic configs (the group need not exist).
    pub fn group_config(&self, group: &str) -> GroupConfigs {
        dynamic_config::group(&self.metadata.image(), group)
    }

    /// Changes a group's dynamic configs like `alter_broker_config`: into
    /// the metadata log, then handed to the group coordinator.
    pub async fn alter_group_config(
        self: &Arc<Self>,
        group: &str,
        change: impl FnOnce(&GroupConfigs) -> Option<GroupConfigs>,
    ) -> Result<(), AdminError> {
        let _serial = self.config_changes.lock().await;
        let old = self.group_config(group);
        let Some(next) = change(&old) else {
            return Ok(());
        };
        let records = dynamic_config::change_records(ConfigResource::Group, group, &old, &next);
        if !records.is_empty() {
            self.change_metadata(records).await?;
        }
        Ok(())
    }

    fn apply_group_config(&self, group: &str, configs: &GroupConfigs) {
        let int = |name: &str| configs.get(name).and_then(|v| v.trim().parse().ok());
        self.groups.set_group_config(
            group,
            crate::group::consumer::GroupOverrides {
                session_timeout_ms: int("consumer.session.timeout.ms"),
                heartbeat_interval_ms: int("consumer.heartbeat.interval.ms"),
            },
        );
    }

    /// DeleteRecords for one partition: the new log start offset, made
    /// durable in the log start offset checkpoint before returning.
    pub fn delete_records(
        &self,
        partition: &Partition,
        offset: i64,
    ) -> Result<i64, crate::log::LogError> {
        let low = partition.delete_records_before(offset)?;
        self.write_checkpoints()
            .map_err(|e| crate::log::LogError::Io(std::io::Error::other(format!("{e:#}"))))?;
        Ok(low)
    }

    /// Waits until an fsync has made more of some partition durable.
    pub async fn durable_advanced(&self) {
        self.flusher.durable_advanced().notified().await
    }

    /// Rewrites the recovery-point checkpoint from the partitions' recovery
    /// points (what the flusher has fsynced) and snapshots the producer state
    /// of partitions that grew enough since their last snapshot, so that a
    /// restart after a crash validates and replays only the unflushed tail.
    pub fn write_recovery_points(&self) -> anyhow::Result<()> {
        let _writing = self.checkpoint_lock.lock();
        let mut recovery = Vec::new();
        for topic in self.topics() {
            for p in topic.partitions() {
                p.snapshot_producers_if_grown(PRODUCER_SNAPSHOT_MIN_BYTES)
                    .with_context(|| format!("snapshotting {}-{}", topic.name, p.index))?;
                recovery.push((topic.name.clone(), p.index, p.checkpoint_offsets().0));
            }
        }
        write_checkpoint(&self.config.data_dir.join(RECOVERY_POINT_FILE), &recovery)?;
        Ok(())
    }

    /// Writes the recovery point, log start offset and high watermark
    /// checkpoint files (Kafka's names and format).
    pub fn write_checkpoints(&self) -> anyhow::Result<()> {
        let _writing = self.checkpoint_lock.lock();
        let mut recovery = Vec::new();
        let mut start = Vec::new();
        let mut hw = Vec::new();
        for topic in self.topics() {
            for p in topic.partitions() {
                let (rp, ls, h) = p.checkpoint_offsets();
                recovery.push((topic.name.clone(), p.index, rp));
                start.push((topic.name.clone(), p.index, ls));
                hw.push((topic.name.clone(), p.index, h));
            }
        }
        let dir = &self.config.data_dir;
        write_checkpoint(&dir.join(RECOVERY_POINT_FILE), &recovery)?;
        write_checkpoint(&dir.join(LOG_START_FILE), &start)?;
        write_checkpoint(&dir.join(HIGH_WATERMARK_FILE), &hw)?;
        Ok(())
    }

    /// Heartbeats to the active controller every
    /// `broker.heartbeat.interval.ms` until shutdown, so it keeps this
    /// broker unfenced (only in a cluster: a lone node is alive while it runs).
    pub async fn heartbeats(self: Arc<Self>, mut stopping: Stopping) {
        if !self.metadata.is_clustered() {
            return;
        }
        let interval = self.config.broker_heartbeat_interval();
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.wait() => return,
            }
            // Writes to the data directory fail (a full disk): ask to be
            // fenced until one succeeds. A probe write finds out when they
            // do, also when no partition here has anything to write.
            let failing = crate::health::global().degraded().is_some() && {
                let dir = self.config.data_dir.clone();
                let probed = tokio::task::spawn_blocking(move || probe_write(&dir)).await;
                !probed.unwrap_or(false)
            };
            let sent = self
                .metadata
                .heartbeat(self.node_id, self.incarnation, false, failing, interval)
                .await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "heartbeat to the active controller failed");
            }
        }
    }

    /// Kafka's controlled shutdown: asks the active controller to fence
    /// this broker, so the partitions it leads get another leader (or
    /// none) before it goes. Nothing to do for a lone node.
    pub async fn controlled_shutdown(&self) {
        if !self.metadata.is_clustered() {
            return;
        }
        let timeout = std::time::Duration::from_secs(10);
        match self
            .metadata
            .heartbeat(self.node_id, self.incarnation, true, false, timeout)
            .await
        {
            Ok(()) => tracing::info!("controlled shutdown: the controller fenced this broker"),
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown did not reach the controller")
            }
        }
    }

    /// Stops this node's part in the metadata quorum (after `shutdown`).
    pub async fn stop_metadata(&self) {
        self.metadata.shutdown().await;
    }

    /// Clean shutdown: fsync every log, then checkpoint recovery points.
    pub fn shutdown(&self) -> anyhow::Result<()> {
        for topic in self.topics() {
            for p in topic.partitions() {
                p.close()
                    .with_context(|| format!("flushing {}-{}", topic.name, p.index))?;
            }
        }
        self.write_checkpoints()
    }
}

/// The partition of an internal topic that keeps `key` (a group id, a
/// transactional id): Kafka's `partitionFor`.
fn key_partition<'a>(
    image: &'a MetadataImage,
    topic: &str,
    key: &str,
) -> Option<&'a PartitionRecord> {
    let t = image.topic(topic)?;
    let index = crate::group::coordinator::partition_for(key, t.partitions.len() as i32);
    t.partitions.get(&index)
}

/// Waits until this node has applied everything committed before now, for
/// as long as it takes a quorum of voters to be up (Kafka's brokers wait for
/// the controllers the same way).
async fn catch_up(metadata: &MetadataQuorum) -> anyhow::Result<()> {
    loop {
        match metadata.propose(Vec::new(), METADATA_TIMEOUT).await {
            Ok(_) => return Ok(()),
            Err(ProposeError::Timeout(t)) => {
                tracing::warn!(waited = ?t, "waiting for a quorum of controllers (controller.quorum.voters)");
            }
            Err(e) => return Err(e).context("reading the metadata log"),
        }
    }
}

/// This node's part in the metadata log, caught up, and the cluster's id
/// (kept in `meta.properties`): a voter's Raft log on `controller` (which a
/// quorum of several voters needs), or, for a broker-only node, the image
/// fetched from the voters. Shared by brokers and controller-only nodes.
pub async fn open_metadata(
    config: &BrokerConfig,
    controller: Option<tokio::net::TcpListener>,
) -> anyhow::Result<(Arc<MetadataQuorum>, String)> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    let node_id = config.node_id();
    let store = MetadataStore::new(dir);
    let stored_cluster_id = store.load_cluster(node_id)?;
    let voter = u64::try_from(node_id).context("node.id must not be negative")?;
    let mut voters: BTreeMap<u64, String> = config
        .voters()
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .map(|(id, addr)| (id as u64, addr))
        .collect();
    if voters.is_empty() {
        voters.insert(voter, config.listen.to_string());
    }
    let (_, is_controller) = config.roles().map_err(anyhow::Error::msg)?;
    let metadata = if is_controller {
        if voters.len() > 1 && controller.is_none() {
            anyhow::bail!("a quorum of several voters needs this node's controller listener");
        }
        let mut quorum_config = QuorumConfig::new(voter, voters, dir.join(METADATA_DIR));
        quorum_config.election_timeout = config.election_timeout();
        quorum_config.session_timeout = config.broker_session_timeout();
        quorum_config.unclean_leader_election = config.unclean_leader_election();
        quorum_config.leader_rebalance = config.leader_rebalance_interval();
        MetadataQuorum::start(quorum_config, controller)
            .await
            .context("opening the metadata log")?
    } else {
        // A broker-only node fetches the metadata from the controllers.
        MetadataQuorum::observe(voter, voters)
    };
    let metadata = Arc::new(metadata);
    catch_up(&metadata).await?;
    let cluster_id = join_cluster(&metadata, stored_cluster_id.as_deref()).await?;
    if stored_cluster_id.is_none() {
        store.save_cluster(&cluster_id, node_id)?;
    }
    Ok((metadata, cluster_id))
}

/// The cluster's id: the one in the metadata log, set there first by this
/// node when it is the first to start (its `meta.properties` id, after an
/// upgrade, or a new one). A data directory of another cluster is refused.
async fn join_cluster(metadata: &MetadataQuorum, stored: Option<&str>) -> anyhow::Result<String> {
    if metadata.image().cluster_id().is_none() {
        let id = stored.map_or_else(
            || metadata::kafka_uuid_string(Uuid::new_v4()),
            str::to_string,
        );
        metadata
            .propose(vec![MetadataRecord::ClusterId(id)], METADATA_TIMEOUT)
            .await
            .context("writing the cluster id")?;
    }
    let id = metadata
        .image()
        .cluster_id()
        .context("the metadata log has no cluster id")?
        .to_string();
    if let Some(stored) = stored.filter(|s| *s != id) {
        anyhow::bail!(
            "meta.properties has cluster.id={stored}, but the quorum's cluster is {id}: \
             this data directory belongs to another cluster"
        );
    }
    Ok(id)
}

/// Logs what opening the logs validated past their recovery points and
/// replayed for their producer state, summed over every partition.
fn log_recovery(topics: &BTreeMap<String, Arc<Topic>>, started: std::time::Instant) {
    let mut total = crate::log::recovery::RecoveryStats::default();
    let mut partitions = 0usize;
    for p in topics.values().flat_map(|t| t.partitions()) {
        let s = p.recovery_stats();
        total.bytes_validated += s.bytes_validated;
        total.batches_validated += s.batches_validated;
        total.headers_replayed += s.headers_replayed;
        partitions += 1;
    }
    tracing::info!(
        partitions,
        bytes_validated = total.bytes_validated,
        batches_validated = total.batches_validated,
        headers_replayed = total.headers_replayed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "opened logs: validated the bytes past the recovery points"
    );
}

/// A new partition: its replicas on registered, unfenced brokers in sync
/// (as Kafka's controller makes them; the others join the ISR once they
/// catch up), the first of those leading from epoch 0.
fn new_partition(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<i32>,
) -> PartitionRecord {
    let live: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| image.broker(*r).is_some_and(|b| !b.fenced))
        .collect();
    // None registered yet (a first start naming brokers to come): all.
    let isr = if live.is_empty() {
        replicas.clone()
    } else {
        live
    };
    PartitionRecord {
        topic_id,
        partition,
        leader: isr.first().copied().unwrap_or(-1),
        isr,
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    }
}

/// Replicas for partitions `first..first + count` over the live brokers
/// (Kafka's placement, from a random start).
fn place(
    image: &MetadataImage,
    first: i32,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, AdminError> {
    let brokers = live_candidates(image);
    let random = Uuid::new_v4().as_u128();
    let (start, shift) = (random as u32 as usize, (random >> 32) as u32 as usize);
    placement::assign(&brokers, first, count, replication_factor, start, shift)
        .map_err(AdminError::InvalidReplicationFactor)
}

/// The registered, unfenced brokers, as candidates for replicas.
fn live_candidates(image: &MetadataImage) -> Vec<Candidate> {
    image
        .brokers()
        .filter(|b| !b.fenced)
        .map(|b| Candidate {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// The records that create a topic: the topic, its partitions (replicas as
/// `assignment` gives them), its overrides.
fn topic_records(
    image: &MetadataImage,
    assignment: &[Vec<i32>],
    name: &str,
    id: Uuid,
    config: &TopicConfig,
) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::Topic(
        crate::metadata::records::TopicRecord {
            id,
            name: name.to_string(),
        },
    )];
    records.extend(
        assignment
            .iter()
            .enumerate()
            .map(|(p, r)| MetadataRecord::Partition(new_partition(image, id, p as i32, r.clone()))),
    );
    records.extend(dynamic_config::change_records(
        ConfigResource::Topic,
        name,
        &BTreeMap::new(),
        &config.overrides,
    ));
    records
}

/// What a data directory's first metadata records are: the topics of the
/// registry file a Vltava before the metadata log kept (same ids, partition
/// counts and overrides), then Kafka's internal topics if they are missing
/// (`__consumer_offsets`, `__transaction_state`: Kafka's partition counts,
/// compacted, 100 MiB segments by default).
fn first_start_records(
    config: &BrokerConfig,
    store: &MetadataStore,
    node_id: i32,
    image: &MetadataImage,
) -> anyhow::Result<Vec<MetadataRecord>> {
    let mut records = Vec::new();
    let mut names = Vec::new();
    for t in store.load_topics()? {
        let topic_config = TopicConfig {
            overrides: t.configs,
        };
        let here = vec![vec![node_id]; usize::try_from(t.partitions).unwrap_or(0)];
        records.extend(topic_records(image, &here, &t.name, t.id, &topic_config));
        names.push(t.name);
    }
    // In a combined cluster every voter is a broker: the coordinators'
    // partitions spread over all of them from the start, registered yet or
    // not. With separate roles, over the brokers registered so far.
    let (_, controller) = config.roles().map_err(anyhow::Error::msg)?;
    let mut brokers: Vec<Candidate> = if controller {
        config
            .voters()
            .map_err(anyhow::Error::msg)?
            .into_keys()
            .map(|id| Candidate { id, rack: None })
            .collect()
    } else {
        live_candidates(image)
    };
    if brokers.is_empty() {
        brokers.push(Candidate {
            id: node_id,
            rack: None,
        });
    }
    for (name, count, segment_key, replication_key, min_isr) in [
        (
            OFFSETS_TOPIC,
            config.offsets_topic_partitions(),
            "offsets.topic.segment.bytes",
            "offsets.topic.replication.factor",
            None,
        ),
        (
            TRANSACTION_STATE_TOPIC,
            config.transaction_state_partitions(),
            "transaction.state.log.segment.bytes",
            "transaction.state.log.replication.factor",
            config.value("transaction.state.log.min.isr"),
        ),
    ] {
        if names.iter().any(|n| n == name) {
            continue;
        }
        // Kafka's default of 3 replicas, or every broker when fewer exist
        // (a one-node cluster keeps one).
        let configured: usize = config
            .value(replication_key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(3);
        let replication_factor = configured.clamp(1, brokers.len());
        let segment_bytes = config
            .value(segment_key)
            .unwrap_or_else(|| "104857600".into());
        let mut pairs = vec![
            ("cleanup.policy", "compact".to_string()),
            ("segment.bytes", segment_bytes),
        ];
        if let Some(min_isr) = min_isr.and_then(|v| v.trim().parse::<usize>().ok()) {
            let min_isr = min_isr.clamp(1, replication_factor);
            pairs.push(("min.insync.replicas", min_isr.to_string()));
        }
        let topic_config = TopicConfig::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))?;
        let assignment = placement::assign(
            &brokers,
            0,
            count.max(1),
            i16::try_from(replication_factor).unwrap_or(i16::MAX),
            0,
            0,
        )
        .map_err(anyhow::Error::msg)?;
        records.extend(topic_records(
            image,
            &assignment,
            name,
            Uuid::new_v4(),
            &topic_config,
        ));
    }
    Ok(records)
}

/// A topic's overrides in the image.
fn topic_config(image: &MetadataImage, name: &str) -> TopicConfig {
    TopicConfig {
        overrides: image
            .configs(ConfigResource::Topic, name)
            .cloned()
            .unwrap_or_default(),
    }
}

/// The partitions of `t` with a replica on `node_id`.
fn local_replicas(t: &TopicImage, node_id: i32) -> impl Iterator<Item = i32> + '_ {
    t.partitions
        .values()
        .filter(move |p| p.replicas.contains(&node_id))
        .map(|p| p.partition)
}

/// Where a partition's log starts from at open, from the checkpoints.
struct Start {
    recovery_point: i64,
    log_start_offset: i64,
    /// Clamped to the log; `i64::MAX`: the log end offset.
    high_watermark: i64,
}

impl Start {
    /// A partition created just now.
    const NEW: Start = Start {
        recovery_point: 0,
        log_start_offset: 0,
        high_watermark: 0,
    };
}

/// Opens the logs of this node's replicas of a topic in the image; `start`
/// as for `open_partitions`.
fn open_topic(
    data_dir: &std::path::Path,
    image: &MetadataImage,
    t: &TopicImage,
    current: &BrokerConfig,
    node_id: i32,
    start: impl Fn(i32) -> Start,
) -> anyhow::Result<Arc<Topic>> {
    let config = topic_config(image, &t.name);
    let log_config = config.log_config(current);
    let local = local_replicas(t, node_id);
    let partitions = open_partitions(data_dir, &t.name, local, &log_config, start)?;
    let min_insync = config.min_insync_replicas(current);
    let topic = Topic::new(
        t.name.clone(),
        t.id,
        config,
        partitions,
        t.partitions.len() as i32,
    );
    topic.set_min_insync_replicas(min_insync);
    Ok(Arc::new(topic))
}

/// Opens (or creates) the logs of `topic`'s partitions `indexes`. `start`
/// gives a partition's recovery point, log start offset and high watermark
/// from the checkpoints ([`Start::NEW`] for a new partition).
fn open_partitions(
    data_dir: &std::path::Path,
    topic: &str,
    indexes: impl Iterator<Item = i32>,
    log_config: &LogConfig,
    start: impl Fn(i32) -> Start,
) -> anyhow::Result<Vec<Arc<Partition>>> {
    indexes
        .map(|p| {
            let start = start(p);
            let log = Log::open(
                &partition_dir(data_dir, topic, p),
                log_config.clone(),
                start.recovery_point,
                start.log_start_offset,
            )
            .with_context(|| format!("opening log {topic}-{p}"))?;
            Ok(Arc::new(Partition::with_high_watermark(
                topic,
                p,
                log,
                start.high_watermark,
            )))
        })
        .collect()
}

/// `<data>/<topic>-<partition>`, Kafka's partition directory.
pub fn partition_dir(data_dir: &std::path::Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() {
        return Err(AdminError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(AdminError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > 249 {
        return Err(AdminError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(AdminError::InvalidTopic(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Writes and fsyncs a small file in `data_dir` (blocking: call it off the
/// async runtime); true, and `/health` healthy again, if that works.
fn probe_write(data_dir: &std::path::Path) -> bool {
    use std::io::Write;
    let path = data_dir.join(".write-probe");
    let written = std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&[0u8; 4096]).and_then(|()| f.sync_data()));
    let _ = std::fs::remove_file(&path);
    match written {
        Ok(()) => {
            crate::health::global().write_succeeded();
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    /// A broker's settings for unit tests: data in `dir`, fsync durability,
    /// port 0, every other setting its default.
    pub(crate) fn config(dir: &std::path::Path) -> BrokerConfig {
        BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            advertised: None,
            data_dir: dir.to_path_buf(),
            durability: Durability::Fsync,
            overrides: Default::default(),
            dynamic: Default::default(),
        }
    }

    async fn followed(broker: &Broker, index: u64) {
        let wait = broker.wait_followed(index);
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .expect("the partitions follow the image");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_follow_records_whoever_proposed_them() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Arc::new(Broker::open(config(dir.path())).await.unwrap());
        let (shutdown, stopping) = Shutdown::new();
        let following = tokio::spawn(broker.clone().follow_metadata(stopping));

        // Records proposed straight to the metadata log, not through the
        // broker's admin calls, as another node's would be.
        let id = Uuid::new_v4();
        let config = TopicConfig::from_pairs([("retention.ms", "1000")]).unwrap();
        let records = topic_records(
            &broker.image(),
            &vec![vec![broker.node_id]; 3],
            "elsewhere",
            id,
            &config,
        );
        let index = broker
            .metadata
            .propose(records, METADATA_TIMEOUT)
            .await
            .unwrap();
        followed(&broker, index).await;
        let topic = broker.topic("elsewhere").unwrap();
        assert_eq!((topic.id, topic.partition_count()), (id, 3));
        assert_eq!(topic.config().overrides, config.overrides);
        assert!(partition_dir(dir.path(), "elsewhere", 2).exists());

        let index = broker
            .metadata
            .propose(vec![MetadataRecord::RemoveTopic { id }], METADATA_TIMEOUT)
            .await
            .unwrap();
        followed(&broker, index).await;
        assert!(broker.topic("elsewhere").is_none());
        assert!(!partition_dir(dir.path(), "elsewhere", 0).exists());

        shutdown.trigger();
        following.await.unwrap();
        broker.stop_metadata().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_serves_clients_only_while_the_image_names_it_leader() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Arc::new(Broker::open(config(dir.path())).await.unwrap());
        let (shutdown, stopping) = Shutdown::new();
        let following = tokio::spawn(broker.clone().follow_metadata(stopping));
        let topic = broker
            .create_topic("led", 2, 1, TopicConfig::default(), false)
            .await
            .unwrap();
        assert!(topic.leader(1).is_some());
        // The controller took leadership away (as when it fenced this broker).
        let mut moved = broker.image().topic("led").unwrap().partitions[&1].clone();
        moved.leader = -1;
        moved.leader_epoch += 1;
        moved.partition_epoch += 1;
        let index = broker
            .metadata
            .propose(
                vec![MetadataRecord::Partition(moved.clone())],
                METADATA_TIMEOUT,
            )
            .await
            .unwrap();
        followed(&broker, index).await;
        assert!(topic.leader(1).is_none(), "not served without leadership");
        assert!(topic.partition(1).is_some(), "the replica stays");
        assert!(topic.leader(0).is_some());
        moved.leader = broker.node_id;
        moved.leader_epoch += 1;
        moved.partition_epoch += 1;
        let index = broker
            .metadata
            .propose(vec![MetadataRecord::Partition(moved)], METADATA_TIMEOUT)
            .await
            .unwrap();
        followed(&broker, index).await;
        assert!(topic.leader(1).is_some());
        shutdown.trigger();
        following.await.unwrap();
        broker.stop_metadata().await;
    }

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
