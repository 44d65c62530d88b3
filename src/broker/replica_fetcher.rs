//! The replica fetcher (Kafka's `ReplicaFetcherThread`): one task per leader
//! this broker follows partitions of, fetching them with Kafka's replica
//! Fetch (its replica id in `ReplicaState`, the leader epoch it knows, the
//! epoch of its last batch) over one connection.
//!
//! Each answer is applied to the followed replicas: the leader's batches
//! appended as they are, its high watermark and log start offset taken, and
//! a diverging epoch answered by cutting the divergent tail (KIP-279). Under
//! `--durability fsync` the next fetch waits until what was appended is on
//! disk, so the offset a follower fetches from — which the leader counts as
//! the follower's log end offset — is always durable.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::flusher::Flusher;
use super::partition::Partition;
use crate::interbroker::Connection;

/// How long connecting to a leader may take (Kafka's
/// `socket.connection.setup.timeout.ms` default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The least wait before connecting again after a failed connect (Kafka's
/// `reconnect.backoff.ms` default), even with `replica.fetch.backoff.ms=0`.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// The Fetch version followers send: topic ids, `ReplicaState`, diverging
/// epochs.
const FETCH_VERSION: i16 = 17;

/// One partition this broker follows.
#[derive(Clone)]
pub struct FetchTarget {
    pub partition: Arc<Partition>,
    pub topic_id: Uuid,
    /// The leader epoch of the image that named the leader.
    pub leader_epoch: i32,
}

/// How followers fetch: Kafka's `replica.fetch.*` settings.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub node_id: i32,
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub backoff: Duration,
    /// `--durability fsync`: fetch onward only from what is on disk.
    pub fsync: bool,
}

impl FetchSettings {
    /// The settings `config` gives (Kafka's defaults otherwise).
    pub fn from_config(config: &crate::config::BrokerConfig) -> FetchSettings {
        let get = |name: &str, fallback: i64| config.replica_fetch_setting(name, fallback);
        let int = |name: &str, fallback: i32| {
            i32::try_from(get(name, i64::from(fallback))).unwrap_or(fallback)
        };
        let ms = |name: &str, fallback: i64| {
            Duration::from_millis(u64::try_from(get(name, fallback)).unwrap_or(0))
        };
        FetchSettings {
            node_id: config.node_id(),
            max_wait: ms("replica.fetch.wait.max.ms", 500),
            min_bytes: int("replica.fetch.min.bytes", 1),
            max_bytes: int("replica.fetch.response.max.bytes", 10 << 20),
            partition_max_bytes: int("replica.fetch.max.bytes", 1 << 20),
            backoff: ms("replica.fetch.backoff.ms", 1000),
            fsync: config.durability == crate::config::Durability::Fsync,
        }
    }
}

/// The fetcher tasks, by leader.
pub struct ReplicaFetchers {
    settings: FetchSettings,
    flusher: Arc<Flusher>,
    fetchers: Mutex<BTreeMap<i32, Fetcher>>,
}

struct Fetcher {
    endpoint: (String, u16),
    targets: watch::Sender<Arc<Vec<FetchTarget>>>,
    task: JoinHandle<()>,
}

impl ReplicaFetchers {
    pub fn new(settings: FetchSettings, flusher: Arc<Flusher>) -> Self {
        Self {
            settings,
            flusher,
            fetchers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes the fetchers follow exactly `wanted`: by leader, its endpoint
    /// and the partitions to fetch from it. Fetchers of leaders no longer
    /// wanted (or moved to another endpoint) stop.
    pub fn assign(&self, wanted: BTreeMap<i32, ((String, u16), Vec<FetchTarget>)>) {
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|leader, f| {
            let keep = wanted
                .get(leader)
                .is_some_and(|(endpoint, _)| *endpoint == f.endpoint);
            if !keep {
                f.task.abort();
            }
            keep
        });
        for (leader, (endpoint, targets)) in wanted {
            match fetchers.get(&leader) {
                Some(f) => {
                    f.targets.send_replace(Arc::new(targets));
                }
                None => {
                    let (tx, rx) = watch::channel(Arc::new(targets));
                    let task = tokio::spawn(run(
                        leader,
                        endpoint.clone(),
                        self.settings.clone(),
                        self.flusher.clone(),
                        rx,
                    ));
                    fetchers.insert(
                        leader,
                        Fetcher {
                            endpoint,
                            targets: tx,
                            task,
                        },
                    );
                }
            }
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop_all(&self) {
        for (_, f) in std::mem::take(&mut *self.fetchers.lock()) {
            f.task.abort();
        }
    }
}

impl Drop for ReplicaFetchers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// One fetcher: fetch, apply, repeat, until aborted.
async fn run(
    leader: i32,
    (host, port): (String, u16),
    settings: FetchSettings,
    flusher: Arc<Flusher>,
    mut targets: watch::Receiver<Arc<Vec<FetchTarget>>>,
) {
    let client_id = format!("vltava-replica-fetcher-{}", settings.node_id);
    let mut connection: Option<Connection> = None;
    let mut delayed: HashMap<(Uuid, i32), Instant> = HashMap::new();
    let mut failing = false;
    loop {
        let current = targets.borrow_and_update().clone();
        let now = Instant::now();
        delayed.retain(|_, until| *until > now);
        let active: Vec<FetchTarget> = current
            .iter()
            .filter(|t| !delayed.contains_key(&(t.topic_id, t.partition.index)))
            .cloned()
            .collect();
        if active.is_empty() {
            let next = delayed.values().min().copied();
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = targets.changed() => if changed.is_err() { return },
                _ = wait => {}
            }
            continue;
        }
        let conn = match &mut connection {
            Some(c) => c,
            None => match Connection::connect(&host, port, CONNECT_TIMEOUT).await {
                Ok(c) => connection.insert(c),
                Err(e) => {
                    if !failing {
                        tracing::warn!(leader, error = %format!("{e:#}"), "replica fetcher cannot reach the leader; retrying");
                        failing = true;
                    }
                    backoff(&mut targets, settings.backoff.max(RECONNECT_BACKOFF)).await;
                    continue;
                }
            },
        };
        let request = fetch_request(&settings, &active);
        let timeout = settings.max_wait + Duration::from_secs(30);
        let response = match conn
            .call(FETCH_VERSION, &request, &client_id, timeout)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if !failing {
                    tracing::warn!(leader, error = %format!("{e:#}"), "replica fetch failed; reconnecting");
                    failing = true;
                }
                connection = None;
                backoff(&mut targets, settings.backoff).await;
                continue;
            }
        };
        failing = false;
        if response.error_code != 0 {
            tracing::warn!(
                leader,
                error = ?ResponseError::try_from_code(response.error_code),
                "replica fetch refused"
            );
            backoff(&mut targets, settings.backoff).await;
            continue;
        }
        let backoff_after = settings.backoff;
        let applied = tokio::task::spawn_blocking(move || apply(leader, &active, response)).await;
        let Ok(applied) = applied else {
            return;
        };
        if applied.truncated {
            // The recovery-point checkpoint must not stay above the cut.
            flusher.durable_advanced().notify_one();
        }
        for (key, retry) in applied.retry {
            let wait = if retry {
                Duration::from_millis(50)
            } else {
                backoff_after
            };
            delayed.insert(key, Instant::now() + wait);
        }
        if settings.fsync && !applied.appended.is_empty() {
            flusher.request(applied.appended.iter().map(|(_, p, _)| p));
            for (key, p, end) in &applied.appended {
                if let Err(e) = p.wait_durable(*end).await {
                    tracing::error!(error = %e, "a follower's fsync failed");
                    delayed.insert(*key, Instant::now() + backoff_after);
                }
            }
        }
    }
}

/// Waits `wait`, or less if the partitions to fetch change.
async fn backoff(targets: &mut watch::Receiver<Arc<Vec<FetchTarget>>>, wait: Duration) {
    let _ = tokio::time::timeout(wait, targets.changed()).await;
}

fn fetch_request(settings: &FetchSettings, active: &[FetchTarget]) -> FetchRequest {
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    for t in active {
        let p = &t.partition;
        let (log_start, log_end) = p.log_bounds();
        topics.entry(t.topic_id).or_default().push(
            FetchPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(t.leader_epoch)
                .with_fetch_offset(log_end)
                .with_last_fetched_epoch(p.latest_epoch())
                .with_log_start_offset(log_start)
                .with_partition_max_bytes(settings.partition_max_bytes),
        );
    }
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(settings.node_id))
                .with_replica_epoch(-1),
        )
        .with_max_wait_ms(i32::try_from(settings.max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(settings.min_bytes)
        .with_max_bytes(settings.max_bytes)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// What applying one answer did.
struct Applied {
    /// Partitions appended to, with their new log end offsets.
    appended: Vec<((Uuid, i32), Arc<Partition>, i64)>,
    /// Partitions to leave out for a while: soon (`true`: the leader has
    /// not caught up with the image yet) or after the backoff.
    retry: Vec<((Uuid, i32), bool)>,
    /// A log was cut: its recovery point moved back.
    truncated: bool,
}

/// Applies a Fetch answer to the followed replicas (on a blocking thread:
/// appends write and truncation fsyncs).
fn apply(leader: i32, active: &[FetchTarget], response: FetchResponse) -> Applied {
    let mut applied = Applied {
        appended: Vec::new(),
        retry: Vec::new(),
        truncated: false,
    };
    let by_key: HashMap<(Uuid, i32), &FetchTarget> = active
        .iter()
        .map(|t| ((t.topic_id, t.partition.index), t))
        .collect();
    for topic in response.responses {
        for data in topic.partitions {
            let key = (topic.topic_id, data.partition_index);
            let Some(target) = by_key.get(&key) else {
                continue;
            };
            let p = &target.partition;
            // The image moved on while the fetch was out.
            if p.is_leading() || p.leader_epoch() != target.leader_epoch {
                continue;
            }
            let error = ResponseError::try_from_code(data.error_code);
            if error == Some(ResponseError::OffsetOutOfRange)
                && data.log_start_offset > p.log_end_offset()
            {
                match p.restart_at(data.log_start_offset) {
                    Ok(()) => applied.truncated = true,
                    Err(e) => {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e,
                            "a follower could not start over at the leader's log start");
                        applied.retry.push((key, false));
                    }
                }
                continue;
            }
            if data.error_code != 0 {
                let soon = matches!(
                    error,
                    Some(ResponseError::UnknownLeaderEpoch | ResponseError::NotLeaderOrFollower)
                );
                tracing::debug!(leader, topic = %p.topic, partition = p.index, ?error,
                    "replica fetch of a partition refused");
                applied.retry.push((key, soon));
                continue;
            }
            let diverging = data.diverging_epoch;
            if diverging.epoch >= 0 || diverging.end_offset >= 0 {
                let to = p.diverging_truncation_offset(diverging.epoch, diverging.end_offset);
                match p.truncate_to(to) {
                    Ok(()) => applied.truncated = true,
                    Err(e) => {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e,
                            "cutting a follower's divergent tail failed");
                        applied.retry.push((key, false));
                    }
                }
                continue;
            }
            let mut records = data.records.map(|r| r.to_vec()).unwrap_or_default();
            match p.append_as_follower(&mut records, data.high_watermark) {
                Ok(()) => {
                    if !records.is_empty() {
                        applied.appended.push((key, p.clone(), p.log_end_offset()));
                    }
                }
                Err(e) => {
                    tracing::warn!(leader, topic = %p.topic, partition = p.index, error = %e,
                        "a follower could not append the leader's batches");
                    applied.retry.push((key, false));
                    continue;
                }
            }
            if let Err(e) = p.follow_log_start_offset(data.log_start_offset) {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e,
                    "a follower could not move its log start offset");
            }
        }
    }
    applied
}
