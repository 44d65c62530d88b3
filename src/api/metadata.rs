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

pub async fn handle(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> ResponseKind {
    let endpoint = broker.endpoint();
    let mut me = MetadataResponseBroker::default()
        .with_node_id(BrokerId(endpoint.node_id))
        .with_host(StrBytes::from_string(endpoint.host))
        .with_port(endpoint.port);
    if version >= 1 {
        me.rack = endpoint.rack.map(StrBytes::from_string);
    }
    let mut response = MetadataResponse::default()
        .with_brokers(vec![me])
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
            .map(|t| topic_metadata(broker, t, version))
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
            Some(t) => topic_metadata(broker, &t, version),
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
        Ok(Some(t)) => topic_metadata(broker, &t, version),
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

fn topic_metadata(broker: &Broker, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id);
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let mut m = MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node]);
            if version >= 7 {
                m.leader_epoch = 0;
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
