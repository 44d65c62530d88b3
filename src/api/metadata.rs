//! Metadata: brokers, cluster id, controller, topics and their partitions.
//!
//! A topic asked for by name that does not exist is created here when the
//! request allows it and `auto.create.topics.enable` is on — this is how
//! Kafka clients auto-create topics on produce.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::authorized_operations::{self, when_requested};
use super::errors::admin_error_code;
use crate::broker::{Broker, Topic};
use crate::metadata::MetadataImage;

pub async fn handle(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> ResponseKind {
    let image = broker.image();
    let brokers = broker
        .live_brokers(&image)
        .into_iter()
        .map(|e| {
            let mut b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(e.node_id))
                .with_host(StrBytes::from_string(e.host))
                .with_port(e.port);
            if version >= 1 {
                b.rack = e.rack.map(StrBytes::from_string);
            }
            b
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        // As Kafka's KRaft brokers do, a live broker stands for the
        // controller (clients send admin requests there, and any broker
        // forwards them): this one, which the client just reached.
        .with_controller_id(BrokerId(broker.node_id));
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    }
    // v0 asks for all topics with an empty list; v1+ with a null one.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    response.topics = if all {
        broker
            .topics()
            .iter()
            .map(|t| topic_metadata(&image, t, version))
            .collect()
    } else {
        let requested = req.topics.unwrap_or_default();
        let mut topics = Vec::with_capacity(requested.len());
        for t in requested {
            topics.push(requested_topic(broker, t, req.allow_auto_topic_creation, version).await);
        }
        topics
    };
    // Kafka sets the topic bitfield on every topic of the answer, errors too.
    if req.include_topic_authorized_operations {
        for t in &mut response.topics {
            t.topic_authorized_operations = authorized_operations::TOPIC;
        }
    }
    response.cluster_authorized_operations = when_requested(
        req.include_cluster_authorized_operations,
        authorized_operations::CLUSTER,
    );
    ResponseKind::Metadata(response)
}

async fn requested_topic(
    broker: &Arc<Broker>,
    requested: MetadataRequestTopic,
    allow_auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(name) = requested.name else {
        // v10+: by topic id.
        return match broker.topic_by_id(requested.topic_id) {
            Some(t) => topic_metadata(&broker.image(), &t, version),
            None => error_topic(
                None,
                requested.topic_id,
                ResponseError::UnknownTopicId.code(),
                version,
            ),
        };
    };
    let found = if allow_auto_create {
        broker.auto_create(&name).await
    } else {
        Ok(broker.topic(&name))
    };
    match found {
        // A topic just created here is in the newest image.
        Ok(Some(t)) => topic_metadata(&broker.image(), &t, version),
        Ok(None) => error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::UnknownTopicOrPartition.code(),
            version,
        ),
        Err(e) => error_topic(Some(name), Uuid::nil(), admin_error_code(&e), version),
    }
}

fn error_topic(
    name: Option<TopicName>,
    id: Uuid,
    code: i16,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name);
    if version >= 10 {
        t.topic_id = id;
    }
    t
}

/// A topic's partitions as the image has them: leader, epoch, replicas,
/// ISR, and the replicas on brokers that are down.
fn topic_metadata(image: &MetadataImage, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let partitions = image
        .topic_by_id(&topic.id)
        .into_iter()
        .flat_map(|t| t.partitions.values())
        .map(|p| {
            let mut m = MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr));
            if p.leader < 0 {
                m.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if version >= 5 {
                m.offline_replicas = ids(&image.offline_replicas(p));
            }
            if version >= 7 {
                m.leader_epoch = p.leader_epoch;
            }
            m
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_partitions(partitions);
    if version >= 1 {
        t.is_internal = topic.is_internal();
    }
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t
}
