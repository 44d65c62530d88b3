//! Topic admin: CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::{admin_error_code, log_error_code, unhosted_code};
use crate::broker::{AdminError, Broker};
use crate::config::{TopicConfig, CONFIG_DEFS};

/// CreateTopics: each topic is created through the metadata log and
/// answered once this node has applied it and opened its logs. The topics of
/// one request are proposed concurrently (openraft may append several in one
/// write); each is accepted or refused on its own, answered in request order.
pub async fn create_topics(
    broker: &Arc<Broker>,
    req: CreateTopicsRequest,
    version: i16,
) -> ResponseKind {
    let mut seen: HashMap<TopicName, usize> = HashMap::new();
    for t in &req.topics {
        *seen.entry(t.name.clone()).or_default() += 1;
    }
    let validate_only = req.validate_only;
    let results = futures::future::join_all(req.topics.into_iter().map(|t| {
        let duplicate = seen.get(&t.name).copied().unwrap_or(0) > 1;
        async move {
            if duplicate {
                let message = format!(
                    "Create topics request from client contains multiple requests for the topic {}",
                    t.name.0
                );
                return failed(
                    t.name,
                    ResponseError::InvalidRequest.code(),
                    message,
                    version,
                );
            }
            create_one(broker, t, validate_only, version).await
        }
    }))
    .await;
    ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(results))
}

async fn create_one(
    broker: &Arc<Broker>,
    t: CreatableTopic,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    let pairs: Vec<(String, String)> = t
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let config = match TopicConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        Ok(c) => c,
        Err(e) => {
            let e = AdminError::from(e);
            return failed(t.name, admin_error_code(&e), e.to_string(), version);
        }
    };
    let partitions = t.num_partitions;
    let replication = t.replication_factor;
    if !t.assignments.is_empty() {
        if partitions != -1 || replication != -1 {
            return failed(
                t.name,
                ResponseError::InvalidRequest.code(),
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                version,
            );
        }
        // Partition i on the replicas its entry names: the entries must
        // number the partitions 0, 1, 2, ...
        let mut entries: Vec<(i32, Vec<i32>)> = t
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect();
        entries.sort_by_key(|(i, _)| *i);
        if entries
            .iter()
            .enumerate()
            .any(|(n, (i, _))| *i as usize != n)
        {
            return failed(
                t.name,
                ResponseError::InvalidReplicaAssignment.code(),
                "partitions should be a consecutive 0-based integer sequence".into(),
                version,
            );
        }
        let assignment = entries.into_iter().map(|(_, r)| r).collect();
        let created = broker
            .create_topic_assigned(&t.name, assignment, config, validate_only)
            .await;
        return created_result(broker, t.name, created, -1, validate_only, version);
    }
    let created = broker
        .create_topic(&t.name, partitions, replication, config, validate_only)
        .await;
    created_result(broker, t.name, created, partitions, validate_only, version)
}

/// The CreateTopics answer for one topic.
fn created_result(
    broker: &Arc<Broker>,
    name: TopicName,
    created: Result<Arc<crate::broker::Topic>, AdminError>,
    partitions: i32,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    match created {
        Ok(topic) => {
            let mut r = CreatableTopicResult::default().with_name(name);
            if version >= 5 {
                r.num_partitions = if validate_only {
                    if partitions == -1 {
                        broker.config.num_partitions()
                    } else {
                        partitions
                    }
                } else {
                    topic.partition_count()
                };
                r.replication_factor = 1;
                r.configs = Some(topic_configs(broker, &topic.config()));
            }
            if version >= 7 {
                r.topic_id = topic.id;
            }
            r
        }
        Err(e) => failed(name, admin_error_code(&e), e.to_string(), version),
    }
}

fn topic_configs(broker: &Broker, config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
    CONFIG_DEFS
        .iter()
        .filter_map(|def| {
            let name = def.topic_name?;
            let (value, source) = config.resolve(def, &broker.config);
            Some(
                CreatableTopicConfigs::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_config_source(source as i8),
            )
        })
        .collect()
}

fn failed(name: TopicName, code: i16, message: String, version: i16) -> CreatableTopicResult {
    let mut r = CreatableTopicResult::default()
        .with_name(name)
        .with_error_code(code);
    if version >= 1 {
        r.error_message = Some(StrBytes::from_string(message));
    }
    if version >= 5 {
        r.num_partitions = -1;
        r.replication_factor = -1;
    }
    r
}

pub async fn delete_topics(
    broker: &Arc<Broker>,
    req: DeleteTopicsRequest,
    version: i16,
) -> ResponseKind {
    // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
    let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        responses.push({
            let name = name.or_else(|| {
                broker
                    .topic_by_id(id)
                    .map(|t| TopicName(StrBytes::from_string(t.name.clone())))
            });
            let mut r = DeletableTopicResult::default();
            if version >= 6 {
                r.topic_id = id;
            }
            let Some(name) = name else {
                r.error_code = ResponseError::UnknownTopicId.code();
                responses.push(r);
                continue;
            };
            match broker.delete_topic(&name).await {
                Ok(deleted_id) => {
                    if version >= 6 {
                        r.topic_id = deleted_id;
                    }
                }
                Err(e) => {
                    r.error_code = admin_error_code(&e);
                    if version >= 5 {
                        r.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                }
            }
            r.name = Some(name);
            r
        });
    }
    ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses))
}

pub async fn create_partitions(
    broker: &Arc<Broker>,
    req: CreatePartitionsRequest,
    _version: i16,
) -> ResponseKind {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let r = CreatePartitionsTopicResult::default();
        results.push(
            match broker
                .create_partitions(&t.name, t.count, req.validate_only)
                .await
            {
                Ok(()) => r.with_name(t.name),
                Err(e) => r
                    .with_name(t.name)
                    .with_error_code(admin_error_code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            },
        );
    }
    ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(results))
}

/// DeleteRecords: moves each partition's log start offset (durably) to the
/// requested offset, -1 meaning the high watermark.
pub fn delete_records(broker: &Arc<Broker>, req: DeleteRecordsRequest) -> ResponseKind {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.topic(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let partition = topic.as_ref().and_then(|t| t.leader(p.partition_index));
                    match (&topic, partition) {
                        (Some(t), Some(_)) if t.is_internal() => {
                            r.with_error_code(ResponseError::InvalidTopicException.code())
                        }
                        (_, Some(partition)) => match broker.delete_records(&partition, p.offset) {
                            Ok(low) => r.with_low_watermark(low),
                            Err(e) => r.with_error_code(log_error_code(
                                &e,
                                &partition.topic,
                                partition.index,
                            )),
                        },
                        _ => r.with_error_code(unhosted_code(topic.as_deref(), p.partition_index)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ResponseKind::DeleteRecords(DeleteRecordsResponse::default().with_topics(topics))
}
