//! A topic: its name, topic id, config overrides and partitions.
//!
//! The partition list only grows (CreatePartitions); readers take a snapshot.

use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

use super::partition::Partition;
use crate::config::TopicConfig;

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
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    pub fn new(
        name: String,
        id: Uuid,
        config: TopicConfig,
        partitions: Vec<Arc<Partition>>,
    ) -> Topic {
        Topic {
            name,
            id,
            config: RwLock::new(config),
            partitions: RwLock::new(partitions),
        }
    }

    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let i = usize::try_from(index).ok()?;
        self.partitions.read().get(i).cloned()
    }

    /// A snapshot of the partitions, in index order.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().clone()
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.read().len() as i32
    }

    pub fn config(&self) -> TopicConfig {
        self.config.read().clone()
    }

    pub(super) fn set_config(&self, config: TopicConfig) {
        *self.config.write() = config;
    }

    /// One of Kafka's internal topics; a `__` prefix alone does not make one.
    pub fn is_internal(&self) -> bool {
        is_internal(&self.name)
    }

    pub(super) fn add_partitions(&self, added: Vec<Arc<Partition>>) {
        let mut parts = self.partitions.write();
        debug_assert!(added
            .iter()
            .enumerate()
            .all(|(i, p)| p.index as usize == parts.len() + i));
        parts.extend(added);
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
