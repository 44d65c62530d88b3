//! The transaction coordinator: every transactional id on this broker, its
//! producer id and epoch and its ongoing transaction, kept in
//! `__transaction_state` and replayed from there at start.
//!
//! Each transactional id sits behind its own async lock, held for the whole
//! of a request, so one id's requests run one at a time (Kafka answers
//! CONCURRENT_TRANSACTIONS where this waits). Ending a transaction: write
//! PrepareCommit/PrepareAbort (durable) → write a marker to every partition
//! of the transaction (durable) → complete the group coordinator's pending
//! offsets → write CompleteCommit/CompleteAbort → answer. Never touches
//! sockets; takes the `Broker` as a parameter to reach partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::RecordBatchDecoder;
use parking_lot::Mutex;

use super::metadata::{EndOutcome, InitOutcome, TxnMetadata, TxnState};
use super::records;
use crate::broker::AckError;
use crate::broker::{Broker, Topic, ACKS_ALL};
use crate::clock::now_ms;
use crate::group::coordinator::{encode_batch, partition_for};
use crate::group::OFFSETS_TOPIC;
use crate::log::{AppendOrigin, ControlMarker, LogError};
use crate::shutdown::Stopping;
use anyhow::Context;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

/// The internal topic holding transaction metadata.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// How long a marker's write may take to reach a partition's in-sync
/// replicas.
const MARKER_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the coordinator, from Kafka's config names.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
}

/// One transactional id; `None` before its first InitProducerId completes
/// or after it expired.
type Entry = Arc<tokio::sync::Mutex<Option<TxnMetadata>>>;

fn code(e: ResponseError) -> i16 {
    e.code()
}

pub struct TransactionCoordinator {
    config: TxnConfig,
    topic: Arc<Topic>,
    txns: Mutex<HashMap<String, Entry>>,
    /// The `__transaction_state` partitions this broker leads and has
    /// loaded.
    loaded: Mutex<std::collections::BTreeSet<i32>>,
}

impl TransactionCoordinator {
    /// The coordinator over `__transaction_state`, with no partition
    /// loaded: the broker loads each one it becomes leader of
    /// ([`load_partition`](Self::load_partition)).
    pub fn new(config: TxnConfig, topic: Arc<Topic>) -> TransactionCoordinator {
        TransactionCoordinator {
            config,
            topic,
            txns: Mutex::new(HashMap::new()),
            loaded: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// This broker became leader of `__transaction_state` partition
    /// `index`: its transactional ids are rebuilt from the log, and from
    /// then on coordinated here. Transactions found prepared are completed,
    /// and ongoing ones aborted once past their timeout, by
    /// [`run_timers`](Self::run_timers).
    pub fn load_partition(&self, index: i32) -> anyhow::Result<()> {
        self.unload_partition(index);
        let Some(partition) = self.topic.leader(index) else {
            return Ok(());
        };
        let mut state: BTreeMap<String, Option<TxnMetadata>> = BTreeMap::new();
        let mut skipped = 0usize;
        partition.for_each_batch(|header, bytes| {
            if header.is_control() {
                return;
            }
            match RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(bytes)) {
                Ok(set) => {
                    for r in set.records {
                        if apply(&mut state, &r).is_err() {
                            skipped += 1;
                        }
                    }
                }
                Err(_) => skipped += 1,
            }
        })?;
        if skipped > 0 {
            tracing::warn!(
                skipped,
                partition = index,
                "skipped unreadable records while loading __transaction_state"
            );
        }
        let mut txns = self.txns.lock();
        let before = txns.len();
        txns.extend(
            state
                .into_iter()
                .filter_map(|(id, m)| m.map(|m| (id, Arc::new(tokio::sync::Mutex::new(Some(m)))))),
        );
        tracing::info!(
            partition = index,
            transactional_ids = txns.len() - before,
            "loaded transaction metadata"
        );
        self.loaded.lock().insert(index);
        Ok(())
    }

    /// This broker no longer leads partition `index`: its transactional ids
    /// are forgotten here.
    pub fn unload_partition(&self, index: i32) {
        if !self.loaded.lock().remove(&index) {
            return;
        }
        let count = self.topic.partition_count();
        self.txns
            .lock()
            .retain(|id, _| partition_for(id, count) != index);
    }

    /// Whether the transactional ids of partition `index` are loaded here.
    pub fn is_loaded(&self, index: i32) -> bool {
        self.loaded.lock().contains(&index)
    }

    fn entry(&self, id: &str) -> Option<Entry> {
        self.txns.lock().get(id).cloned()
    }

    fn entry_or_create(&self, id: &str) -> Entry {
        self.txns
            .lock()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
            .clone()
    }

    fn entries(&self) -> Vec<(String, Entry)> {
        let mut all: Vec<_> = self
            .txns
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// InitProducerId with a transactional id: the producer id and epoch.
    pub async fn init_producer_id(
        &self,
        broker: &Broker,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(code(ResponseError::InvalidTransactionTimeout));
        }
        // While a block of ids is being granted: retriable, as in Kafka.
        let allocate = || {
            broker
                .allocate_producer_id()
                .map_err(|_| code(ResponseError::CoordinatorLoadInProgress))
        };
        let entry = self.entry_or_create(transactional_id);
        let mut slot = entry.lock().await;
        let now = now_ms();
        let current = match slot.as_ref() {
            Some(m) => m.clone(),
            None => TxnMetadata::new(transactional_id, allocate()?, timeout_ms, now),
        };
        match current.init_producer_id(expected, timeout_ms, now, allocate)? {
            InitOutcome::Ready(next) => {
                self.persist(broker, &next).await?;
                let answer = (next.producer_id, next.producer_epoch);
                *slot = Some(next);
                Ok(answer)
            }
            InitOutcome::FenceAndAbort(next) => {
                tracing::info!(
                    transactional_id,
                    producer_id = next.producer_id,
                    epoch = next.producer_epoch,
                    "fencing the previous producer: aborting its ongoing transaction"
                );
                self.persist(broker, &next).await?;
                *slot = Some(next);
                self.complete_prepared(broker, &mut slot).await?;
                Err(code(ResponseError::ConcurrentTransactions))
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn.
    pub async fn add_partitions(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), i16> {
        let unknown = code(ResponseError::InvalidProducerIdMapping);
        let entry = self.entry(transactional_id).ok_or(unknown)?;
        let mut slot = entry.lock().await;
        let current = slot.as_ref().ok_or(unknown)?;
        if let Some(next) =
            current.add_partitions(producer_id, producer_epoch, partitions, now_ms())?
        {
            self.persist(broker, &next).await?;
            *slot = Some(next);
        }
        Ok(())
    }

    /// AddPartitionsToTxn v4+ with `verify_only`: one code per partition,
    /// INVALID_TXN_STATE for those not in the ongoing transaction.
    pub async fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        let unknown = code(ResponseError::InvalidProducerIdMapping);
        let entry = self.entry(transactional_id).ok_or(unknown)?;
        let slot = entry.lock().await;
        let current = slot.as_ref().ok_or(unknown)?;
        current.check_producer(producer_id, producer_epoch)?;
        Ok(partitions
            .iter()
            .map(|p| {
                if current.state == TxnState::Ongoing && current.partitions.contains(p) {
                    0
                } else {
                    code(ResponseError::InvalidTxnState)
                }
            })
            .collect())
    }

    /// Runs `f` (a TxnOffsetCommit's write) while the transaction is held
    /// ongoing by this producer with `partition` in it, so the transaction
    /// cannot end between the check and the write. When another broker
    /// coordinates the transactional id, it is asked (AddPartitionsToTxn
    /// with `verify_only`, as Kafka's group coordinator asks) and `f` runs
    /// once it has answered that the partition is in the ongoing transaction.
    pub async fn with_ongoing<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
        f: impl FnOnce() -> T,
    ) -> Result<T, i16> {
        let image = broker.image();
        match broker.coordinator_of(&image, TRANSACTION_STATE_TOPIC, transactional_id) {
            Some(id) if id != broker.node_id => {
                let ask = verify_remote(
                    broker,
                    id,
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partition,
                );
                return ask.await.map(|()| f());
            }
            None => return Err(code(ResponseError::CoordinatorNotAvailable)),
            Some(_) => {}
        }
        let unknown = code(ResponseError::InvalidProducerIdMapping);
        let entry = self.entry(transactional_id).ok_or(unknown)?;
        let slot = entry.lock().await;
        let current = slot.as_ref().ok_or(unknown)?;
        current.check_producer(producer_id, producer_epoch)?;
        if current.state != TxnState::Ongoing || !current.partitions.contains(partition) {
            return Err(code(ResponseError::InvalidTxnState));
        }
        Ok(f())
    }

    /// EndTxn: commits or aborts; answers once the transaction is complete.
    pub async fn end_txn(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        let unknown = code(ResponseError::InvalidProducerIdMapping);
        let entry = self.entry(transactional_id).ok_or(unknown)?;
        let mut slot = entry.lock().await;
        let current = slot.as_ref().ok_or(unknown)?;
        match current.end_txn(producer_id, producer_epoch, commit, now_ms())? {
            EndOutcome::AlreadyDone => Ok(()),
            EndOutcome::Prepare(next) => {
                self.persist(broker, &next).await?;
                *slot = Some(next);
                self.complete_prepared(broker, &mut slot).await
            }
        }
    }

    /// One transactional id's metadata (DescribeTransactions).
    pub async fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        let entry = self.entry(transactional_id)?;
        let slot = entry.lock().await;
        slot.clone()
    }

    /// Every transactional id's metadata, by id (ListTransactions).
    pub async fn list(&self) -> Vec<TxnMetadata> {
        let mut out = Vec::new();
        for (_, entry) in self.entries() {
            if let Some(m) = entry.lock().await.clone() {
                out.push(m);
            }
        }
        out
    }

    /// Writes the markers of the prepared transaction in `slot`, completes
    /// the group coordinator's pending offsets, and writes Complete*. On an
    /// error the transaction stays prepared; the timer task retries.
    async fn complete_prepared(
        &self,
        broker: &Broker,
        slot: &mut Option<TxnMetadata>,
    ) -> Result<(), i16> {
        let Some(prepared) = slot.as_ref().filter(|m| m.state.is_prepare()).cloned() else {
            return Ok(());
        };
        write_markers(broker, &prepared).await?;
        let done = prepared.complete(now_ms());
        self.persist(broker, &done).await?;
        *slot = Some(done);
        Ok(())
    }

    /// Appends `m` to the transactional id's `__transaction_state` partition
    /// and waits until it is durable under the durability policy.
    async fn persist(&self, broker: &Broker, m: &TxnMetadata) -> Result<(), i16> {
        self.write(broker, &m.transactional_id, Some(records::encode_value(m)))
            .await
    }

    async fn write(&self, broker: &Broker, id: &str, value: Option<Bytes>) -> Result<(), i16> {
        let unavailable = code(ResponseError::CoordinatorNotAvailable);
        let Some(partition) = self
            .topic
            .leader(partition_for(id, self.topic.partition_count()))
        else {
            return Err(unavailable);
        };
        let now = now_ms();
        let mut buf = encode_batch(vec![(records::encode_key(id), value)], None, now)
            .map_err(|e| {
                tracing::error!(transactional_id = id, error = %e, "could not encode a __transaction_state batch");
                unavailable
            })?;
        let info = partition
            .append(&mut buf, AppendOrigin::Coordinator, now)
            .map_err(|e| {
                tracing::error!(transactional_id = id, partition = partition.index, error = %e,
                    "writing to __transaction_state failed");
                unavailable
            })?;
        broker
            .acknowledged_one(ACKS_ALL, &partition, info.last_offset + 1)
            .await
            .map_err(|_| unavailable)
    }

    /// Completes prepared transactions (left by a restart or a failed marker
    /// write) and aborts, with an epoch bump, those past their timeout, every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`;
    /// removes expired transactional ids; until shutdown.
    pub async fn run_timers(self: Arc<Self>, broker: Arc<Broker>, mut stopping: Stopping) {
        let interval = self.config.abort_timed_out_interval_ms.max(1);
        let mut next_expiry_check = now_ms() + self.config.remove_expired_interval_ms;
        loop {
            self.complete_or_abort(&broker).await;
            if now_ms() >= next_expiry_check {
                self.remove_expired(&broker).await;
                next_expiry_check = now_ms() + self.config.remove_expired_interval_ms;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(interval as u64)) => {}
                _ = stopping.wait() => return,
            }
        }
    }

    async fn complete_or_abort(&self, broker: &Broker) {
        for (id, entry) in self.entries() {
            let mut slot = entry.lock().await;
            let Some(m) = slot.as_ref() else { continue };
            let now = now_ms();
            if m.state.is_prepare() {
                tracing::info!(transactional_id = %id, state = m.state.as_str(),
                    "completing a prepared transaction");
            } else if m.is_timed_out(now) {
                let next = m.fence_and_abort(now);
                tracing::info!(transactional_id = %id, producer_id = next.producer_id,
                    epoch = next.producer_epoch, timeout_ms = next.timeout_ms,
                    "aborting a transaction past its timeout");
                if self.persist(broker, &next).await.is_err() {
                    continue;
                }
                *slot = Some(next);
            } else {
                continue;
            }
            if let Err(c) = self.complete_prepared(broker, &mut slot).await {
                tracing::warn!(transactional_id = %id, error_code = c,
                    "could not complete a transaction; will retry");
            }
        }
    }

    /// `transactional.id.expiration.ms`: forgets ids idle that long (a
    /// tombstone in `__transaction_state`).
    async fn remove_expired(&self, broker: &Broker) {
        for (id, entry) in self.entries() {
            let mut slot = entry.lock().await;
            let expired = slot
                .as_ref()
                .is_some_and(|m| m.is_expired(now_ms(), self.config.id_expiration_ms));
            if !expired || self.write(broker, &id, None).await.is_err() {
                continue;
            }
            *slot = None;
            drop(slot);
            let mut txns = self.txns.lock();
            // Forget the entry unless a request holds it right now.
            if txns
                .get(&id)
                .is_some_and(|e| Arc::ptr_eq(e, &entry) && Arc::strong_count(e) == 2)
            {
                txns.remove(&id);
            }
            tracing::info!(transactional_id = %id, "expired transactional id");
        }
    }
}

/// Writes a marker for `m`'s producer to every partition of its prepared
/// transaction — this broker's own, and through WriteTxnMarkers those other
/// brokers lead — and returns once every one is durable and the groups of
/// the `__consumer_offsets` partitions among them applied or dropped that
/// producer's pending offsets. A partition without a leader, or a broker
/// that does not answer, fails the completion, which is retried.
async fn write_markers(broker: &Broker, m: &TxnMetadata) -> Result<(), i16> {
    let unavailable = code(ResponseError::CoordinatorNotAvailable);
    let marker = ControlMarker {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        coordinator_epoch: 0,
        commit: m.state == TxnState::PrepareCommit,
    };
    let image = broker.image();
    let mut local = Vec::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, index) in &m.partitions {
        let leader = image
            .topic(topic)
            .and_then(|t| t.partitions.get(index))
            .map(|p| p.leader);
        match leader {
            // Kafka skips partitions of deleted topics too.
            None => {
                tracing::warn!(transactional_id = %m.transactional_id, topic, partition = index,
                "no such partition for a transaction marker; skipped")
            }
            Some(l) if l == broker.node_id => local.push((topic.clone(), *index)),
            Some(l) if l < 0 => {
                tracing::warn!(transactional_id = %m.transactional_id, topic, partition = index,
                    "no leader for a transaction marker's partition; retried later");
                return Err(unavailable);
            }
            Some(l) => remote.entry(l).or_default().push((topic.clone(), *index)),
        }
    }
    for (leader, partitions) in remote {
        send_markers(broker, leader, &marker, &partitions)
            .await
            .map_err(|e| {
                tracing::warn!(transactional_id = %m.transactional_id, broker = leader,
                    error = %format!("{e:#}"), "transaction markers not written; retried later");
                unavailable
            })?;
    }
    let written = write_local_markers(broker, &marker, &local).await;
    for ((topic, index), result) in local.iter().zip(written) {
        if let Err(e) = result {
            tracing::error!(transactional_id = %m.transactional_id, topic, partition = index,
                error = %e, "writing a transaction marker failed");
            return Err(unavailable);
        }
    }
    Ok(())
}

/// Why a marker was not written to a partition (`write_local_markers`).
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("this broker holds no replica of the partition")]
    NotHosted,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Ack(#[from] AckError),
}

/// Writes `marker` to this broker's replicas of `partitions`, waits until
/// they are durable, then applies it to the groups of each
/// `__consumer_offsets` partition among them. One result per partition,
/// in order (WriteTxnMarkers, and the local part of `write_markers`).
pub async fn write_local_markers(
    broker: &Broker,
    marker: &ControlMarker,
    partitions: &[(String, i32)],
) -> Vec<Result<(), MarkerError>> {
    let now = now_ms();
    let mut results: Vec<Result<(), MarkerError>> = Vec::with_capacity(partitions.len());
    let mut written = Vec::new();
    let mut at = Vec::new();
    for (i, (topic, index)) in partitions.iter().enumerate() {
        let Some(partition) = broker.topic(topic).and_then(|t| t.leader(*index)) else {
            results.push(Err(MarkerError::NotHosted));
            continue;
        };
        match partition.append_marker(marker, now) {
            Ok(info) => {
                written.push((partition, info.last_offset + 1));
                at.push(i);
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e.into())),
        }
    }
    let acked = broker
        .acknowledgement(ACKS_ALL, written, MARKER_WRITE_TIMEOUT)
        .wait()
        .await;
    for (i, result) in at.into_iter().zip(acked) {
        match result {
            Ok(()) => {
                let (topic, index) = &partitions[i];
                if topic == OFFSETS_TOPIC {
                    broker
                        .groups
                        .complete_txn(marker.producer_id, *index, marker.commit);
                }
            }
            Err(e) => results[i] = Err(e.into()),
        }
    }
    results
}

/// WriteTxnMarkers to broker `leader` for its `partitions`.
async fn send_markers(
    broker: &Broker,
    leader: i32,
    marker: &ControlMarker,
    partitions: &[(String, i32)],
) -> anyhow::Result<()> {
    let (host, port) = broker
        .inter_broker_endpoint(leader)
        .with_context(|| format!("broker {leader} is not registered"))?;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        topics.entry(topic).or_default().push(*index);
    }
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(marker.producer_id))
            .with_producer_epoch(marker.producer_epoch)
            .with_transaction_result(marker.commit)
            .with_coordinator_epoch(marker.coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, indexes)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name.to_string())))
                            .with_partition_indexes(indexes)
                    })
                    .collect(),
            )]);
    let client_id = format!("vltava-broker-{}", broker.node_id);
    let response =
        crate::interbroker::call(&host, port, 1, &request, &client_id, MARKER_TIMEOUT).await?;
    for m in &response.markers {
        for t in &m.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    anyhow::bail!(
                        "{}-{} answered error code {}",
                        t.name.as_str(),
                        p.partition_index,
                        p.error_code
                    );
                }
            }
        }
    }
    Ok(())
}

/// Asks the transaction coordinator on broker `coordinator` whether
/// `partition` is in the producer's ongoing transaction (AddPartitionsToTxn
/// v4, `verify_only`); its error code if not.
async fn verify_remote(
    broker: &Broker,
    coordinator: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partition: &(String, i32),
) -> Result<(), i16> {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::{AddPartitionsToTxnRequest, TransactionalId};
    let unavailable = code(ResponseError::CoordinatorNotAvailable);
    let (host, port) = broker
        .inter_broker_endpoint(coordinator)
        .ok_or(unavailable)?;
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(partition.0.clone())))
                .with_partitions(vec![partition.1])]),
    ]);
    let client_id = format!("vltava-broker-{}", broker.node_id);
    let response = crate::interbroker::call(&host, port, 4, &request, &client_id, MARKER_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::warn!(transactional_id, broker = coordinator, error = %format!("{e:#}"),
                    "could not verify a transactional offset commit");
            unavailable
        })?;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let codes = response
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code);
    match codes.into_iter().find(|c| *c != 0) {
        Some(c) => Err(c),
        None => Ok(()),
    }
}

/// How long another broker may take to write and sync markers.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies one replayed record: the latest value per id wins, a tombstone
/// removes it.
fn apply(
    state: &mut BTreeMap<String, Option<TxnMetadata>>,
    r: &kafka_protocol::records::Record,
) -> Result<(), records::RecordError> {
    let Some(key) = &r.key else {
        return Ok(());
    };
    let id = records::decode_key(key)?;
    let value = match &r.value {
        Some(v) => Some(records::decode_value(&id, v)?),
        None => None,
    };
    state.insert(id, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::coordinator::CommitOffset;
    use crate::log::batch::control_marker_type;

    const CONCURRENT_TRANSACTIONS: i16 = 51;

    async fn open(dir: &std::path::Path) -> Arc<Broker> {
        let config = crate::broker::tests::config(dir);
        Arc::new(Broker::open(config).await.unwrap())
    }

    fn offsets_partition(broker: &Broker, group: &str) -> (String, i32) {
        let count = broker.topic(OFFSETS_TOPIC).unwrap().partition_count();
        (OFFSETS_TOPIC.to_string(), partition_for(group, count))
    }

    fn commit_offset(broker: &Broker, group: &str, pid: i64, epoch: i16, offset: i64) {
        let (codes, _) = broker.groups.txn_commit(
            group,
            pid,
            epoch,
            "",
            None,
            -1,
            vec![CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
        );
        assert_eq!(codes, vec![0]);
    }

    fn committed(broker: &Broker, group: &str) -> Option<i64> {
        let wanted = [("t".to_string(), vec![0])];
        broker.groups.committed(group, Some(&wanted))[0]
            .2
            .as_ref()
            .map(|v| v.offset)
    }

    /// The marker type of the last batch in `t-0`.
    fn last_marker(broker: &Broker) -> Option<bool> {
        let p = broker.topic("t").unwrap().partition(0).unwrap();
        let mut last = None;
        p.for_each_batch(|h, bytes| {
            last = h.is_control().then(|| control_marker_type(bytes)).flatten();
        })
        .unwrap();
        last
    }

    #[tokio::test]
    async fn commit_applies_offsets_and_a_fence_aborts_the_open_transaction_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path()).await;
        broker
            .create_topic("t", 1, 1, Default::default(), false)
            .await
            .unwrap();
        let txns = broker.txns.clone();
        let (pid, epoch) = txns
            .init_producer_id(&broker, "tx", 60_000, None)
            .await
            .unwrap();
        assert_eq!(epoch, 0);
        let (pid2, epoch) = txns
            .init_producer_id(&broker, "tx", 60_000, None)
            .await
            .unwrap();
        assert_eq!((pid2, epoch), (pid, 1));
        assert_eq!(
            txns.init_producer_id(&broker, "tx", 900_001, None).await,
            Err(ResponseError::InvalidTransactionTimeout.code())
        );

        let parts = [("t".to_string(), 0), offsets_partition(&broker, "g")];
        txns.add_partitions(&broker, "tx", pid, 1, &parts)
            .await
            .unwrap();
        commit_offset(&broker, "g", pid, 1, 5);
        assert_eq!(committed(&broker, "g"), None);
        assert!(broker
            .groups
            .pending_txn_partitions("g")
            .contains(&("t".to_string(), 0)));
        txns.end_txn(&broker, "tx", pid, 1, true).await.unwrap();
        assert_eq!(committed(&broker, "g"), Some(5));
        assert!(broker.groups.pending_txn_partitions("g").is_empty());
        assert_eq!(last_marker(&broker), Some(true));
        // A retried commit is answered OK; the state is complete.
        txns.end_txn(&broker, "tx", pid, 1, true).await.unwrap();
        assert_eq!(
            txns.describe("tx").await.unwrap().state,
            TxnState::CompleteCommit
        );

        // A second transaction is left open across a restart.
        txns.add_partitions(&broker, "tx", pid, 1, &parts)
            .await
            .unwrap();
        commit_offset(&broker, "g", pid, 1, 9);
        drop(txns);
        drop(broker);
        let broker = open(dir.path()).await;
        let txns = broker.txns.clone();
        let m = txns.describe("tx").await.unwrap();
        assert_eq!((m.state, m.producer_epoch), (TxnState::Ongoing, 1));
        assert_eq!(committed(&broker, "g"), Some(5));
        assert_eq!(broker.groups.pending_txn_partitions("g").len(), 1);
        // A new producer with the same id fences the old one: abort, then retry.
        assert_eq!(
            txns.init_producer_id(&broker, "tx", 60_000, None).await,
            Err(CONCURRENT_TRANSACTIONS)
        );
        assert_eq!(last_marker(&broker), Some(false));
        assert_eq!(committed(&broker, "g"), Some(5));
        assert!(broker.groups.pending_txn_partitions("g").is_empty());
        assert_eq!(
            txns.end_txn(&broker, "tx", pid, 1, true).await,
            Err(ResponseError::ProducerFenced.code())
        );
        let (pid3, epoch) = txns
            .init_producer_id(&broker, "tx", 60_000, None)
            .await
            .unwrap();
        assert_eq!((pid3, epoch), (pid, 3));
    }

    #[tokio::test]
    async fn a_prepared_commit_is_completed_after_restart_and_a_timed_out_one_aborted() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path()).await;
        broker
            .create_topic("t", 1, 1, Default::default(), false)
            .await
            .unwrap();
        let txns = broker.txns.clone();
        let (pid, epoch) = txns
            .init_producer_id(&broker, "a", 60_000, None)
            .await
            .unwrap();
        let parts = [("t".to_string(), 0), offsets_partition(&broker, "g")];
        txns.add_partitions(&broker, "a", pid, epoch, &parts)
            .await
            .unwrap();
        commit_offset(&broker, "g", pid, epoch, 7);
        // Crash right after PrepareCommit was written.
        let mut prepared = txns.describe("a").await.unwrap();
        prepared.state = TxnState::PrepareCommit;
        txns.persist(&broker, &prepared).await.unwrap();
        // And another transaction whose 1 ms timeout passes.
        let (pid_b, epoch_b) = txns.init_producer_id(&broker, "b", 1, None).await.unwrap();
        txns.add_partitions(&broker, "b", pid_b, epoch_b, &[("t".to_string(), 0)])
            .await
            .unwrap();
        drop(txns);
        drop(broker);

        let broker = open(dir.path()).await;
        let txns = broker.txns.clone();
        assert_eq!(committed(&broker, "g"), None);
        assert_eq!(
            txns.end_txn(&broker, "a", pid, epoch, true).await,
            Err(CONCURRENT_TRANSACTIONS)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        txns.complete_or_abort(&broker).await;
        assert_eq!(committed(&broker, "g"), Some(7));
        let a = txns.describe("a").await.unwrap();
        assert_eq!(a.state, TxnState::CompleteCommit);
        let b = txns.describe("b").await.unwrap();
        assert_eq!(
            (b.state, b.producer_epoch),
            (TxnState::CompleteAbort, epoch_b + 1)
        );
        assert_eq!(last_marker(&broker), Some(false));
        assert_eq!(
            txns.end_txn(&broker, "b", pid_b, epoch_b, true).await,
            Err(ResponseError::ProducerFenced.code())
        );
        let listed: Vec<String> = txns
            .list()
            .await
            .into_iter()
            .map(|m| m.transactional_id)
            .collect();
        assert_eq!(listed, vec!["a".to_string(), "b".to_string()]);
    }
}
