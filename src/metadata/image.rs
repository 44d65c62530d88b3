//! The metadata image: the cluster's state after the log up to one offset.
//!
//! Every node applies the committed records of the metadata log to its image
//! in log order, so equal offsets mean equal images. The quorum publishes each
//! new image whole (`Arc<MetadataImage>` behind a watch channel); a reader
//! holds one image for the whole of a request and never sees half a batch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{
    BrokerRegistration, ConfigRecord, ConfigResource, MetadataRecord, PartitionRecord, TopicRecord,
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Index of the last Raft entry applied; 0 before the first.
    pub offset: u64,
    cluster_id: Option<String>,
    brokers: BTreeMap<i32, BrokerRegistration>,
    topics: BTreeMap<String, TopicImage>,
    topic_names: BTreeMap<Uuid, String>,
    configs: BTreeMap<(ConfigResource, String), BTreeMap<String, String>>,
    next_producer_id: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub id: Uuid,
    pub name: String,
    pub partitions: BTreeMap<i32, PartitionRecord>,
}

/// Why a batch was not applied: it no longer fits the image it lands on
/// (checked at apply time, in log order, so every node refuses it alike and
/// two nodes creating one topic at once cannot both succeed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refused {
    #[error("Topic '{0}' already exists.")]
    TopicExists(String),
    #[error("Topic {0} does not exist.")]
    UnknownTopic(String),
    /// Another block of producer ids was handed out first: ask again.
    #[error("producer ids from {0} on were handed out meanwhile")]
    ProducerIdsTaken(i64),
    /// A change of a partition computed from an older state of it (Kafka's
    /// partition epoch check of AlterPartition): read the image, try again.
    #[error("partition {partition} of topic {topic_id} changed meanwhile (now at partition epoch {current})")]
    StalePartition {
        topic_id: Uuid,
        partition: i32,
        current: i32,
    },
}

impl MetadataImage {
    /// Applies a batch whole, or not at all when a record does not fit: a
    /// topic created twice, a partition, config or removal of a topic that
    /// is not there.
    pub fn apply_batch(&mut self, batch: &[MetadataRecord]) -> Result<(), Refused> {
        self.check(batch)?;
        for record in batch {
            self.apply(record);
        }
        Ok(())
    }

    fn check(&self, batch: &[MetadataRecord]) -> Result<(), Refused> {
        // Topics as the batch goes: created in it, or removed in it.
        let mut created: BTreeMap<Uuid, &str> = BTreeMap::new();
        let mut removed: Vec<Uuid> = Vec::new();
        // Partition epochs as the batch goes: each change of an existing
        // partition must be the next one.
        let mut epochs: BTreeMap<(Uuid, i32), i32> = BTreeMap::new();
        let exists_id = |id: &Uuid, created: &BTreeMap<Uuid, &str>, removed: &[Uuid]| {
            created.contains_key(id) || (self.topic_names.contains_key(id) && !removed.contains(id))
        };
        for record in batch {
            match record {
                MetadataRecord::Topic(TopicRecord { id, name }) => {
                    let taken = created.values().any(|n| n == name)
                        || self
                            .topics
                            .get(name)
                            .is_some_and(|t| !removed.contains(&t.id));
                    if taken || exists_id(id, &created, &removed) {
                        return Err(Refused::TopicExists(name.clone()));
                    }
                    created.insert(*id, name);
                }
                MetadataRecord::Partition(p) => {
                    if !exists_id(&p.topic_id, &created, &removed) {
                        return Err(Refused::UnknownTopic(p.topic_id.to_string()));
                    }
                    let key = (p.topic_id, p.partition);
                    let current = epochs.get(&key).copied().or_else(|| {
                        let name = self.topic_names.get(&p.topic_id)?;
                        let topic = self.topics.get(name)?;
                        let existing = topic.partitions.get(&p.partition)?;
                        Some(existing.partition_epoch)
                    });
                    if let Some(current) = current {
                        if p.partition_epoch != current + 1 {
                            return Err(Refused::StalePartition {
                                topic_id: p.topic_id,
                                partition: p.partition,
                                current,
                            });
                        }
                    }
                    epochs.insert(key, p.partition_epoch);
                }
                MetadataRecord::RemoveTopic { id } => {
                    if !exists_id(id, &created, &removed) {
                        return Err(Refused::UnknownTopic(id.to_string()));
                    }
                    created.remove(id);
                    removed.push(*id);
                }
                MetadataRecord::ProducerIds {
                    block_start,
                    next_producer_id,
                    ..
                } if *block_start != self.next_producer_id || next_producer_id < block_start => {
                    return Err(Refused::ProducerIdsTaken(*block_start));
                }
                MetadataRecord::Config(c) if c.resource == ConfigResource::Topic => {
                    let name = c.resource_name.as_str();
                    let exists = created.values().any(|n| *n == name)
                        || self
                            .topics
                            .get(name)
                            .is_some_and(|t| !removed.contains(&t.id));
                    if !exists {
                        return Err(Refused::UnknownTopic(name.to_string()));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies records one by one, unchecked (a controller working out the
    /// consequences of its own records before it proposes them).
    pub fn apply_all(&mut self, records: &[MetadataRecord]) {
        for record in records {
            self.apply(record);
        }
    }

    /// Applies one committed record. Records are checked by the controller
    /// before they are proposed; one that no longer fits (a partition of a
    /// topic deleted meanwhile, a stale incarnation) changes nothing, the same
    /// way on every node.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterId(id) => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(id.clone());
                }
            }
            MetadataRecord::RegisterBroker(b) => {
                self.brokers.insert(b.id, b.clone());
            }
            MetadataRecord::BrokerFencing {
                id,
                incarnation,
                fenced,
            } => {
                if let Some(b) = self.brokers.get_mut(id) {
                    if b.incarnation == *incarnation {
                        b.fenced = *fenced;
                    }
                }
            }
            MetadataRecord::Topic(TopicRecord { id, name }) => {
                if let Some(old) = self.topics.get(name) {
                    self.topic_names.remove(&old.id);
                }
                self.topic_names.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        id: *id,
                        name: name.clone(),
                        partitions: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition(p) => {
                if let Some(name) = self.topic_names.get(&p.topic_id) {
                    if let Some(topic) = self.topics.get_mut(name) {
                        topic.partitions.insert(p.partition, p.clone());
                    }
                }
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.topic_names.remove(id) {
                    self.topics.remove(&name);
                    self.configs.remove(&(ConfigResource::Topic, name));
                }
            }
            MetadataRecord::Config(c) => {
                let key = (c.resource, c.resource_name.clone());
                match &c.value {
                    Some(v) => {
                        self.configs
                            .entry(key)
                            .or_default()
                            .insert(c.name.clone(), v.clone());
                    }
                    None => {
                        if let Some(configs) = self.configs.get_mut(&key) {
                            configs.remove(&c.name);
                            if configs.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }

    /// The cluster's id, once the first node has set it.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// The replicas of `p` on brokers that are fenced or not registered.
    pub fn offline_replicas(&self, p: &PartitionRecord) -> Vec<i32> {
        p.replicas
            .iter()
            .copied()
            .filter(|id| self.brokers.get(id).is_none_or(|b| b.fenced))
            .collect()
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// The overrides set on a resource (a topic's, a broker's, a group's).
    pub fn configs(
        &self,
        resource: ConfigResource,
        name: &str,
    ) -> Option<&BTreeMap<String, String>> {
        self.configs.get(&(resource, name.to_string()))
    }

    /// Every resource of one type with overrides set, by name.
    pub fn configs_of(
        &self,
        resource: ConfigResource,
    ) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> {
        self.configs
            .iter()
            .filter(move |((r, _), _)| *r == resource)
            .map(|((_, name), configs)| (name.as_str(), configs))
    }

    /// The first producer id no broker has been handed.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// The records that rebuild this image from nothing (except `offset`):
    /// what a snapshot holds.
    pub fn records(&self) -> Vec<MetadataRecord> {
        let mut records: Vec<MetadataRecord> = self
            .cluster_id
            .iter()
            .map(|id| MetadataRecord::ClusterId(id.clone()))
            .collect();
        records.extend(
            self.brokers
                .values()
                .map(|b| MetadataRecord::RegisterBroker(b.clone())),
        );
        for t in self.topics.values() {
            records.push(MetadataRecord::Topic(TopicRecord {
                id: t.id,
                name: t.name.clone(),
            }));
            records.extend(
                t.partitions
                    .values()
                    .cloned()
                    .map(MetadataRecord::Partition),
            );
        }
        for ((resource, resource_name), configs) in &self.configs {
            for (name, value) in configs {
                records.push(MetadataRecord::Config(ConfigRecord {
                    resource: *resource,
                    resource_name: resource_name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        if self.next_producer_id > 0 {
            records.push(MetadataRecord::ProducerIds {
                broker: -1,
                block_start: 0,
                next_producer_id: self.next_producer_id,
            });
        }
        records
    }
}

/// Images for the controller's tests: registered brokers and one topic.
#[cfg(test)]
pub mod test_util {
    use super::*;

    /// Brokers `(id, fenced)` (incarnation = id) and topic `t` whose
    /// partitions 0, 1, ... are `(replicas, isr, leader)`, at leader and
    /// partition epoch 0.
    pub fn image(brokers: &[(i32, bool)], partitions: &[(&[i32], &[i32], i32)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (id, fenced) in brokers {
            image.apply(&MetadataRecord::RegisterBroker(BrokerRegistration {
                id: *id,
                incarnation: Uuid::from_u128(*id as u128),
                endpoints: Vec::new(),
                rack: None,
                fenced: *fenced,
            }));
        }
        let topic_id = Uuid::from_u128(99);
        image.apply(&MetadataRecord::Topic(TopicRecord {
            id: topic_id,
            name: "t".into(),
        }));
        for (i, (replicas, isr, leader)) in partitions.iter().enumerate() {
            image.apply(&MetadataRecord::Partition(PartitionRecord {
                topic_id,
                partition: i as i32,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                leader: *leader,
                ..Default::default()
            }));
        }
        image
    }

    /// Partition `i` of topic `t`.
    pub fn partition(image: &MetadataImage, i: i32) -> PartitionRecord {
        image.topic("t").expect("topic t").partitions[&i].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::Endpoint;

    fn broker(id: i32, incarnation: Uuid) -> MetadataRecord {
        MetadataRecord::RegisterBroker(BrokerRegistration {
            id,
            incarnation,
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9090 + id as u16,
            }],
            rack: None,
            fenced: true,
        })
    }

    fn partition(topic_id: Uuid, partition: i32, leader: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            topic_id,
            partition,
            replicas: vec![leader],
            isr: vec![leader],
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        })
    }

    fn config(name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource: ConfigResource::Topic,
            resource_name: "orders".into(),
            name: name.into(),
            value: value.map(str::to_string),
        })
    }

    #[test]
    fn records_apply_in_order_and_stale_ones_change_nothing() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (orders, gone) = (Uuid::new_v4(), Uuid::new_v4());
        let mut image = MetadataImage::default();
        for r in [
            broker(1, a),
            broker(2, b),
            MetadataRecord::BrokerFencing {
                id: 1,
                incarnation: a,
                fenced: false,
            },
            // Broker 2's previous incarnation: ignored.
            MetadataRecord::BrokerFencing {
                id: 2,
                incarnation: a,
                fenced: false,
            },
            MetadataRecord::Topic(TopicRecord {
                id: orders,
                name: "orders".into(),
            }),
            partition(orders, 0, 1),
            partition(orders, 1, 2),
            partition(gone, 0, 1),
            config("retention.ms", Some("1000")),
            config("cleanup.policy", Some("compact")),
            config("retention.ms", None),
            MetadataRecord::ProducerIds {
                broker: 1,
                block_start: 0,
                next_producer_id: 2000,
            },
        ] {
            image.apply(&r);
        }
        let fenced: Vec<(i32, bool)> = image.brokers().map(|b| (b.id, b.fenced)).collect();
        assert_eq!(fenced, vec![(1, false), (2, true)]);
        let topic = image.topic("orders").unwrap();
        assert_eq!(image.topic_by_id(&orders).unwrap().name, "orders");
        let leaders: Vec<(i32, i32)> = topic
            .partitions
            .values()
            .map(|p| (p.partition, p.leader))
            .collect();
        assert_eq!(leaders, vec![(0, 1), (1, 2)]);
        assert!(image.topic_by_id(&gone).is_none());
        let configs = image.configs(ConfigResource::Topic, "orders").unwrap();
        assert_eq!(
            configs.iter().collect::<Vec<_>>(),
            vec![(&"cleanup.policy".to_string(), &"compact".to_string())]
        );
        assert_eq!(image.next_producer_id(), 2000);
        // A block is handed out only from the first free id.
        let block = |start, end| MetadataRecord::ProducerIds {
            broker: 2,
            block_start: start,
            next_producer_id: end,
        };
        assert_eq!(
            image.apply_batch(&[block(1000, 3000)]),
            Err(Refused::ProducerIdsTaken(1000))
        );
        image.apply_batch(&[block(2000, 3000)]).unwrap();
        assert_eq!(image.next_producer_id(), 3000);

        // A snapshot's records rebuild the same image.
        let mut rebuilt = MetadataImage::default();
        for r in image.records() {
            rebuilt.apply(&r);
        }
        rebuilt.offset = image.offset;
        assert_eq!(rebuilt, image);

        // A batch that does not fit is refused whole.
        let before = image.clone();
        let again = MetadataRecord::Topic(TopicRecord {
            id: Uuid::new_v4(),
            name: "orders".into(),
        });
        let fresh = Uuid::new_v4();
        let new_topic = MetadataRecord::Topic(TopicRecord {
            id: fresh,
            name: "fresh".into(),
        });
        assert_eq!(
            image.apply_batch(&[new_topic.clone(), again]),
            Err(Refused::TopicExists("orders".into()))
        );
        assert_eq!(
            image.apply_batch(&[new_topic.clone(), partition(gone, 0, 1)]),
            Err(Refused::UnknownTopic(gone.to_string()))
        );
        assert_eq!(image, before);
        // Within a batch, a topic removed can be created again under its name.
        let renewed = Uuid::new_v4();
        image
            .apply_batch(&[
                MetadataRecord::RemoveTopic { id: orders },
                MetadataRecord::Topic(TopicRecord {
                    id: renewed,
                    name: "orders".into(),
                }),
                partition(renewed, 0, 2),
                new_topic,
                partition(fresh, 0, 1),
            ])
            .unwrap();
        assert_eq!(image.topic("orders").unwrap().id, renewed);
        assert_eq!(image.topic("orders").unwrap().partitions.len(), 1);
        assert!(image.configs(ConfigResource::Topic, "orders").is_none());
        assert_eq!(
            image.apply_batch(&[MetadataRecord::RemoveTopic { id: orders }]),
            Err(Refused::UnknownTopic(orders.to_string()))
        );
        let orders = renewed;

        // Removing the topic removes its configs; its id no longer resolves.
        image.apply(&MetadataRecord::RemoveTopic { id: orders });
        assert!(image.topic("orders").is_none());
        assert!(image.topic_by_id(&orders).is_none());
        assert!(image.configs(ConfigResource::Topic, "orders").is_none());
    }

    #[test]
    fn a_partition_change_must_be_the_next_partition_epoch() {
        let orders = Uuid::from_u128(7);
        let mut image = MetadataImage::default();
        image
            .apply_batch(&[
                MetadataRecord::Topic(TopicRecord {
                    id: orders,
                    name: "orders".into(),
                }),
                partition(orders, 0, 1),
            ])
            .unwrap();
        let at = |isr: Vec<i32>, partition_epoch: i32| {
            MetadataRecord::Partition(PartitionRecord {
                topic_id: orders,
                partition: 0,
                replicas: vec![1, 2],
                isr,
                leader: 1,
                leader_epoch: 0,
                partition_epoch,
                ..Default::default()
            })
        };
        let stale = Err(Refused::StalePartition {
            topic_id: orders,
            partition: 0,
            current: 0,
        });
        assert_eq!(image.apply_batch(&[at(vec![1], 0)]), stale);
        assert_eq!(image.apply_batch(&[at(vec![1], 2)]), stale);
        // Two changes in one batch: each the next of the one before.
        image
            .apply_batch(&[at(vec![1, 2], 1), at(vec![1], 2)])
            .unwrap();
        let p = &image.topic("orders").unwrap().partitions[&0];
        assert_eq!((p.isr.clone(), p.partition_epoch), (vec![1], 2));
        // The change computed from epoch 1 lost the race.
        assert_eq!(
            image.apply_batch(&[at(vec![1, 2], 2)]),
            Err(Refused::StalePartition {
                topic_id: orders,
                partition: 0,
                current: 2,
            })
        );
    }
}
