//! A topic: its name, topic id, config overrides and partitions.
//!
//! It holds this node's replicas of the topic's partitions; the partition
//! count is the cluster's. The count only grows (CreatePartitions); the
//! replicas held here change with reassignments. Readers take a snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

use super::partition::Partition;
use crate::config::{BrokerConfig, TopicConfig};

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`): only the coordinators
/// write them, Metadata marks them `is_internal`, and subscriptions by
/// pattern never see them. Any other name, `__`-prefixed or not, is an
/// ordinary topic.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Whether `name` is one of [`INTERNAL_TOPICS`].
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    config: RwLock<TopicConfig>,
    /// This node's replicas, by partition index.
    partitions: RwLock<BTreeMap<i32, Arc<Partition>>>,
    /// How many partitions the topic has across the cluster.
    count: AtomicI32,
    /// `min.insync.replicas`, as the topic's and the broker's configs say.
    min_insync: AtomicUsize,
}

impl Topic {
    pub fn new(
        name: String,
        id: Uuid,
        config: TopicConfig,
        partitions: Vec<Arc<Partition>>,
        count: i32,
    ) -> Topic {
        Topic {
            name,
            id,
            config: RwLock::new(config),
            partitions: RwLock::new(partitions.into_iter().map(|p| (p.index, p)).collect()),
            count: AtomicI32::new(count),
            min_insync: AtomicUsize::new(1),
        }
    }

    /// How many in-sync replicas an `acks=all` write needs.
    pub fn min_insync_replicas(&self) -> usize {
        self.min_insync.load(Ordering::Acquire)
    }

    pub(super) fn set_min_insync_replicas(&self, n: usize) {
        self.min_insync.store(n.max(1), Ordering::Release);
    }

    /// This node's replica of partition `index`, if it holds one.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&index).cloned()
    }

    /// This node's replica of partition `index` while it leads it: what
    /// Produce, Fetch, ListOffsets and DeleteRecords serve.
    pub fn leader(&self, index: i32) -> Option<Arc<Partition>> {
        self.partition(index).filter(|p| p.is_leading())
    }

    /// This node's replica of partition `index` once the image gave it a
    /// role, leader or follower: what a consumer's Fetch v11+ reads (KIP-392
    /// lets consumers fetch from followers).
    pub fn replica(&self, index: i32) -> Option<Arc<Partition>> {
        self.partition(index).filter(|p| p.has_role())
    }

    /// A snapshot of this node's replicas, in index order.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// The topic's partitions across the cluster (hosted here or not).
    pub fn partition_count(&self) -> i32 {
        self.count.load(Ordering::Acquire)
    }

    pub fn config(&self) -> TopicConfig {
        self.config.read().clone()
    }

    /// Takes `config` (new overrides, or the same under new broker
    /// settings): `min.insync.replicas`, and every replica's log settings.
    pub(super) fn reconfigure(&self, config: TopicConfig, broker: &BrokerConfig) {
        let log_config = config.log_config(broker);
        self.set_min_insync_replicas(config.min_insync_replicas(broker));
        *self.config.write() = config;
        for p in self.partitions() {
            p.set_log_config(log_config.clone());
        }
    }

    /// One of Kafka's internal topics; a `__` prefix alone does not make one.
    pub fn is_internal(&self) -> bool {
        is_internal(&self.name)
    }

    /// This node no longer holds a replica of partition `index`
    /// (reassigned away): the replica, for the caller to close.
    pub(super) fn remove_partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partitions.write().remove(&index)
    }

    /// The topic has `count` partitions, `added` more of them hosted here
    /// (new partitions, or replicas reassigned to this node).
    pub(super) fn add_partitions(&self, added: Vec<Arc<Partition>>, count: i32) {
        let mut parts = self.partitions.write();
        parts.extend(added.into_iter().map(|p| (p.index, p)));
        self.count.fetch_max(count, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kafkas_fixed_set_is_internal() {
        assert!(is_internal("__consumer_offsets"));
        assert!(is_internal("__transaction_state"));
        assert!(is_internal("__share_group_state"));
        assert!(!is_internal("__debezium-heartbeat.x"));
        assert!(!is_internal("__remote_log_metadata"));
        assert!(!is_internal("consumer_offsets"));
    }
}
