//! Broker state: the topics and partitions this node leads, the metadata
//! they are registered in, the flusher that makes writes durable, and the
//! checkpoint files that make restarts fast.
//!
//! Called by `api/` only; it calls down into `log/` and never touches
//! sockets or protocol structs.

pub mod dynamic_config;
pub mod flusher;
pub mod log_manager;
pub mod metadata;
pub mod partition;
pub mod producer_ids;
pub mod topic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigError, Durability, DynamicBrokerConfig, TopicConfig};
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::log::checkpoint::{read_checkpoint, write_checkpoint};
use crate::log::{Log, LogConfig};
use crate::txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};
use dynamic_config::{DynamicConfigs, GroupConfigs};
use flusher::Flusher;
use metadata::{MetadataStore, TopicRecord};
pub use partition::{FetchedData, Partition, PartitionOffsets, StorageError};
use producer_ids::ProducerIdManager;
pub use topic::Topic;

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
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("storage error: {0:#}")]
    Storage(anyhow::Error),
}

/// Where the broker is reachable, as Metadata reports it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

tokio::task_local! {
    /// The advertised `(host, port)` of the listener the current connection
    /// came in on: Kafka answers Metadata and FindCoordinator with the
    /// endpoint of the request's own listener.
    static LISTENER_ENDPOINT: (String, u16);
}

/// Runs one connection's task so that [`Broker::endpoint`] answers the
/// endpoint of the listener it came in on.
pub async fn on_listener<F: std::future::Future>(
    endpoint: (String, u16),
    connection: F,
) -> F::Output {
    LISTENER_ENDPOINT.scope(endpoint, connection).await
}

/// The single node's broker state.
pub struct Broker {
    /// The settings the broker started with (file, flags, defaults);
    /// `current_config()` adds the dynamic ones.
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub node_id: i32,
    endpoint: RwLock<Endpoint>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic admin operations and their metadata writes.
    store: Mutex<MetadataStore>,
    flusher: Flusher,
    /// Consumer groups and committed offsets, kept in `__consumer_offsets`.
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions, kept in `__transaction_state`.
    pub txns: Arc<TransactionCoordinator>,
    producer_ids: ProducerIdManager,
    /// Serializes checkpoint file writes (they share temporary file names).
    checkpoint_lock: Mutex<()>,
    /// Broker and group configs set at runtime (AlterConfigs).
    dynamic: DynamicConfigs,
}

impl Broker {
    /// Opens the data directory: metadata, then every partition log (with
    /// recovery from its checkpointed recovery point).
    pub fn open(config: BrokerConfig) -> anyhow::Result<Broker> {
        config.validate()?;
        let started = std::time::Instant::now();
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
        let node_id = config.node_id();
        let store = MetadataStore::new(&dir);
        let cluster_id = store.load_or_init_cluster(node_id)?;
        let recovery = read_checkpoint(&dir.join(RECOVERY_POINT_FILE))?;
        let log_start = read_checkpoint(&dir.join(LOG_START_FILE))?;
        let dynamic = DynamicConfigs::open(&dir)?;
        dynamic
            .validate()
            .context("checking vltava-dynamic-configs.toml")?;
        let current = BrokerConfig {
            dynamic: dynamic.broker(),
            ..config.clone()
        };
        let mut topics = BTreeMap::new();
        for record in store.load_topics()? {
            let topic_config = TopicConfig {
                overrides: record.configs.clone(),
            };
            let log_config = topic_config.log_config(&current);
            let partitions =
                open_partitions(&dir, &record.name, 0..record.partitions, &log_config, |p| {
                    let key = (record.name.clone(), p);
                    (
                        recovery.get(&key).copied().unwrap_or(0),
                        log_start.get(&key).copied().unwrap_or(0),
                    )
                })?;
            let topic = Topic::new(record.name.clone(), record.id, topic_config, partitions);
            topics.insert(record.name, Arc::new(topic));
        }
        let endpoint = Endpoint {
            node_id,
            host: config.listen.ip().to_string(),
            port: i32::from(config.listen.port()),
        };
        let offsets_topic = match topics.get(OFFSETS_TOPIC) {
            Some(t) => t.clone(),
            None => {
                let segment_bytes = config
                    .value("offsets.topic.segment.bytes")
                    .unwrap_or_else(|| "104857600".into());
                let count = config.offsets_topic_partitions();
                let t = create_internal_topic(
                    &current,
                    &store,
                    &topics,
                    OFFSETS_TOPIC,
                    count,
                    &segment_bytes,
                )?;
                topics.insert(OFFSETS_TOPIC.to_string(), t.clone());
                t
            }
        };
        let txn_topic = match topics.get(TRANSACTION_STATE_TOPIC) {
            Some(t) => t.clone(),
            None => {
                let segment_bytes = config
                    .value("transaction.state.log.segment.bytes")
                    .unwrap_or_else(|| "104857600".into());
                let count = config.transaction_state_partitions();
                let t = create_internal_topic(
                    &current,
                    &store,
                    &topics,
                    TRANSACTION_STATE_TOPIC,
                    count,
                    &segment_bytes,
                )?;
                topics.insert(TRANSACTION_STATE_TOPIC.to_string(), t.clone());
                t
            }
        };
        log_recovery(&topics, started);
        let groups = GroupCoordinator::load(config.coordinator(), offsets_topic)
            .context("loading consumer groups from __consumer_offsets")?;
        let txns = TransactionCoordinator::load(config.transactions(), txn_topic)
            .context("loading transactions from __transaction_state")?;
        let broker = Broker {
            node_id,
            cluster_id,
            endpoint: RwLock::new(endpoint),
            topics: RwLock::new(topics),
            store: Mutex::new(store),
            flusher: Flusher::start().context("starting the flusher thread")?,
            groups: Arc::new(groups),
            txns: Arc::new(txns),
            producer_ids: ProducerIdManager::open(&dir)?,
            checkpoint_lock: Mutex::new(()),
            dynamic,
            config,
        };
        for (group, configs) in broker.dynamic.groups() {
            broker.apply_group_config(&group, &configs);
        }
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

    /// Sets the address Metadata advertises (once the listener is bound).
    pub fn set_endpoint(&self, host: String, port: u16) {
        let mut e = self.endpoint.write();
        e.host = host;
        e.port = i32::from(port);
    }

    /// This broker's endpoint as seen from the current connection's listener
    /// (the first listener's outside a connection).
    pub fn endpoint(&self) -> Endpoint {
        let mut e = self.endpoint.read().clone();
        let _ = LISTENER_ENDPOINT.try_with(|(host, port)| {
            e.host.clone_from(host);
            e.port = i32::from(*port);
        });
        e
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

    /// A producer id never handed out before (InitProducerId).
    pub fn allocate_producer_id(&self) -> anyhow::Result<i64> {
        self.producer_ids.allocate()
    }

    /// Whether `acks=all` waits for fsync.
    pub fn fsync_on_ack(&self) -> bool {
        self.config.durability == Durability::Fsync
    }

    /// Waits until `partition` is durable up to `offset` (group commit).
    pub async fn wait_durable(
        &self,
        partition: &Arc<Partition>,
        offset: i64,
    ) -> Result<(), StorageError> {
        self.request_durable([(partition, offset)]);
        partition.wait_durable(offset).await
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
    pub fn create_topic(
        &self,
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
        if replication_factor > 1 {
            return Err(AdminError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {replication_factor} time(s): The target \
                 replication factor of {replication_factor} cannot be reached because only 1 \
                 broker(s) are registered."
            )));
        }
        let store = self.store.lock();
        if self.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic::new(
                name.to_string(),
                id,
                config,
                Vec::new(),
            )));
        }
        let log_config = config.log_config(&self.current_config());
        let parts = open_partitions(
            &self.config.data_dir,
            name,
            0..partitions,
            &log_config,
            |_| (0, 0),
        )
        .map_err(AdminError::Storage)?;
        let topic = Arc::new(Topic::new(name.to_string(), id, config, parts));
        let mut records = self.records();
        records.push(topic.record());
        store.save_topics(records).map_err(AdminError::Storage)?;
        self.topics.write().insert(name.to_string(), topic.clone());
        self.publish_topics();
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// The topic, created with the defaults if it does not exist and
    /// `auto.create.topics.enable` allows it.
    pub fn auto_create(&self, name: &str) -> Result<Option<Arc<Topic>>, AdminError> {
        if let Some(t) = self.topic(name) {
            return Ok(Some(t));
        }
        if !self.config.auto_create_topics() {
            return Ok(None);
        }
        match self.create_topic(name, -1, -1, TopicConfig::default(), false) {
            Ok(t) => Ok(Some(t)),
            Err(AdminError::TopicExists(_)) => Ok(self.topic(name)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC {
            return Err(AdminError::InvalidTopic(format!(
                "Topic {name} is an internal topic and cannot be deleted."
            )));
        }
        let store = self.store.lock();
        let Some(topic) = self.topic(name) else {
            return Err(AdminError::UnknownTopic(name.to_string()));
        };
        let records = self
            .records()
            .into_iter()
            .filter(|r| r.name != name)
            .collect();
        store.save_topics(records).map_err(AdminError::Storage)?;
        self.topics.write().remove(name);
        self.publish_topics();
        for p in topic.partitions() {
            if let Err(e) = p.delete() {
                tracing::warn!(topic = name, partition = p.index, error = %e,
                    "could not remove the partition directory of a deleted topic");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let store = self.store.lock();
        let Some(topic) = self.topic(name) else {
            return Err(AdminError::UnknownTopic(name.to_string()));
        };
        let current = topic.partition_count();
        if count <= current {
            return Err(AdminError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = topic.config().log_config(&self.current_config());
        let added = open_partitions(
            &self.config.data_dir,
            name,
            current..count,
            &log_config,
            |_| (0, 0),
        )
        .map_err(AdminError::Storage)?;
        let mut record = topic.record();
        record.partitions = count;
        let records = self
            .records()
            .into_iter()
            .map(|r| if r.name == name { record.clone() } else { r })
            .collect();
        store.save_topics(records).map_err(AdminError::Storage)?;
        topic.add_partitions(added);
        self.publish_topics();
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides (AlterConfigs and
    /// IncrementalAlterConfigs compute the new set), persists them in the
    /// topic registry and applies them to every partition's log.
    pub fn alter_topic_config(
        &self,
        name: &str,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let store = self.store.lock();
        let Some(topic) = self.topic(name) else {
            return Err(AdminError::UnknownTopic(name.to_string()));
        };
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
        let mut record = topic.record();
        record.configs = config.overrides.clone();
        let records = self
            .records()
            .into_iter()
            .map(|r| if r.name == name { record.clone() } else { r })
            .collect();
        store.save_topics(records).map_err(AdminError::Storage)?;
        let log_config = config.log_config(&self.current_config());
        topic.set_config(config);
        for p in topic.partitions() {
            p.set_log_config(log_config.clone());
        }
        tracing::info!(topic = name, "altered topic config");
        Ok(())
    }

    /// The effective settings: the static ones with the dynamic layers.
    pub fn current_config(&self) -> BrokerConfig {
        BrokerConfig {
            dynamic: self.dynamic.broker(),
            ..self.config.clone()
        }
    }

    /// Changes the broker's dynamic configs: `change` gets the current
    /// layers and returns the new ones (`None`: no change, as for
    /// validate_only or a refused request). The new layers are persisted,
    /// then every partition's log takes its new effective config (topics
    /// without an override follow the broker's values).
    pub fn alter_broker_config(
        &self,
        change: impl FnOnce(&BrokerConfig) -> Option<DynamicBrokerConfig>,
    ) -> Result<(), AdminError> {
        let _store = self.store.lock();
        let Some(next) = change(&self.current_config()) else {
            return Ok(());
        };
        self.dynamic.set_broker(next).map_err(AdminError::Storage)?;
        let current = self.current_config();
        for topic in self.topics() {
            let log_config = topic.config().log_config(&current);
            for p in topic.partitions() {
                p.set_log_config(log_config.clone());
            }
        }
        tracing::info!(dynamic = ?current.dynamic, "altered broker config");
        Ok(())
    }

    /// A group's dynamic configs (the group need not exist).
    pub fn group_config(&self, group: &str) -> GroupConfigs {
        self.dynamic.group(group)
    }

    /// Changes a group's dynamic configs like `alter_broker_config`:
    /// persisted, then handed to the group coordinator.
    pub fn alter_group_config(
        &self,
        group: &str,
        change: impl FnOnce(&GroupConfigs) -> Option<GroupConfigs>,
    ) -> Result<(), AdminError> {
        let _store = self.store.lock();
        let Some(next) = change(&self.dynamic.group(group)) else {
            return Ok(());
        };
        self.dynamic
            .set_group(group, next.clone())
            .map_err(AdminError::Storage)?;
        self.apply_group_config(group, &next);
        tracing::info!(group, configs = ?next, "altered group config");
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

    fn records(&self) -> Vec<TopicRecord> {
        self.topics.read().values().map(|t| t.record()).collect()
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

/// Creates an internal topic (`__consumer_offsets`, `__transaction_state`)
/// at first start: Kafka's partition count and configs (compacted, 100 MiB
/// segments by default).
fn create_internal_topic(
    config: &BrokerConfig,
    store: &MetadataStore,
    existing: &BTreeMap<String, Arc<Topic>>,
    name: &str,
    partition_count: i32,
    segment_bytes: &str,
) -> anyhow::Result<Arc<Topic>> {
    let topic_config = TopicConfig::from_pairs([
        ("cleanup.policy", "compact"),
        ("segment.bytes", segment_bytes),
    ])?;
    let log_config = topic_config.log_config(config);
    let count = partition_count.max(1);
    let partitions = open_partitions(&config.data_dir, name, 0..count, &log_config, |_| (0, 0))?;
    let topic = Arc::new(Topic::new(
        name.to_string(),
        Uuid::new_v4(),
        topic_config,
        partitions,
    ));
    let mut records: Vec<TopicRecord> = existing.values().map(|t| t.record()).collect();
    records.push(topic.record());
    store.save_topics(records)?;
    Ok(topic)
}

/// Opens (or creates) the logs of `topic`'s partitions in `range`. `start`
/// gives a partition's recovery point and log start offset from the
/// checkpoints; 0, 0 for a new partition.
fn open_partitions(
    data_dir: &std::path::Path,
    topic: &str,
    range: std::ops::Range<i32>,
    log_config: &LogConfig,
    start: impl Fn(i32) -> (i64, i64),
) -> anyhow::Result<Vec<Arc<Partition>>> {
    range
        .map(|p| {
            let (recovery_point, log_start_offset) = start(p);
            let log = Log::open(
                &partition_dir(data_dir, topic, p),
                log_config.clone(),
                recovery_point,
                log_start_offset,
            )
            .with_context(|| format!("opening log {topic}-{p}"))?;
            Ok(Arc::new(Partition::new(topic, p, log)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
