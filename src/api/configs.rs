//! Topic, broker and group configs: DescribeConfigs (with sources, synonyms
//! and documentation), AlterConfigs and IncrementalAlterConfigs for topics,
//! the broker's dynamic configs (this node's and the cluster-wide default)
//! and KIP-848 group configs. Validation is `config.rs`'s; persistence and
//! application are the broker's.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig as IncrementalConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::admin_error_code;
use crate::broker::Broker;
use crate::config::{
    broker_def, is_dynamic, topic_def, validate_dynamic, validate_group_config, BrokerConfig,
    ConfigDef, ConfigError, ConfigSource, ConfigType, DynamicBrokerConfig, DynamicConfigError,
    TopicConfig, CONFIG_DEFS, GROUP_CONFIGS,
};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;

struct Options {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

/// A resource's error: Kafka's error code and message.
type Failure = (i16, String);

fn invalid_request(message: String) -> Failure {
    (ResponseError::InvalidRequest.code(), message)
}

fn invalid_config(message: String) -> Failure {
    (ResponseError::InvalidConfig.code(), message)
}

/// Which layer of the broker's config a BROKER resource names: this node
/// (its id) or the cluster-wide default (""), with Kafka's messages for
/// any other name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BrokerLayer {
    PerBroker,
    ClusterDefault,
}

fn broker_layer(broker: &Broker, name: &str) -> Result<BrokerLayer, Failure> {
    if name.is_empty() {
        return Ok(BrokerLayer::ClusterDefault);
    }
    match name.parse::<i32>() {
        Ok(id) if id == broker.node_id => Ok(BrokerLayer::PerBroker),
        Ok(id) => Err(invalid_request(format!(
            "Unexpected broker id, expected {}, but received {id}",
            broker.node_id
        ))),
        Err(_) => Err(invalid_request(format!(
            "Node id must be an integer, but it is: {name}"
        ))),
    }
}

fn layer_of(
    dynamic: &mut DynamicBrokerConfig,
    layer: BrokerLayer,
) -> &mut BTreeMap<String, String> {
    match layer {
        BrokerLayer::PerBroker => &mut dynamic.per_broker,
        BrokerLayer::ClusterDefault => &mut dynamic.cluster_default,
    }
}

pub fn describe(broker: &Arc<Broker>, req: DescribeConfigsRequest, version: i16) -> ResponseKind {
    let opts = Options {
        synonyms: req.include_synonyms,
        documentation: req.include_documentation,
        version,
    };
    let current = broker.current_config();
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            let keys: Option<Vec<String>> = res
                .configuration_keys
                .as_ref()
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let wanted = |name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|x| x == name));
            let result = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            let configs = match res.resource_type {
                TOPIC => match broker.topic(&res.resource_name) {
                    Some(topic) => {
                        let config = topic.config();
                        Ok(CONFIG_DEFS
                            .iter()
                            .filter(|d| d.topic_name.is_some_and(&wanted))
                            .map(|d| topic_entry(&current, &config, d, &opts))
                            .collect())
                    }
                    None => Err((
                        ResponseError::UnknownTopicOrPartition.code(),
                        "The topic does not exist.".to_string(),
                    )),
                },
                BROKER => match broker_layer(broker, &res.resource_name) {
                    Ok(BrokerLayer::PerBroker) => Ok(CONFIG_DEFS
                        .iter()
                        .filter(|d| d.broker_level && wanted(d.name))
                        .map(|d| broker_entry(&current, d, &opts))
                        .collect()),
                    // Kafka lists only what the cluster-wide default sets.
                    Ok(BrokerLayer::ClusterDefault) => Ok(current
                        .dynamic
                        .cluster_default
                        .iter()
                        .filter_map(|(name, value)| {
                            let def = broker_def(name).filter(|d| wanted(d.name))?;
                            let source = ConfigSource::DynamicDefaultBroker;
                            let mut r = entry(def.name, value.clone(), source, def, &opts);
                            if opts.synonyms {
                                r.synonyms = vec![synonym(def.name, value, source)];
                            }
                            Some(r)
                        })
                        .collect()),
                    Err(_) => Err(invalid_request(format!(
                        "Unsupported resource type {} or name {}",
                        res.resource_type, res.resource_name
                    ))),
                },
                GROUP if res.resource_name.is_empty() => {
                    Err(invalid_request("Group name must not be empty".to_string()))
                }
                GROUP => {
                    let own = broker.group_config(&res.resource_name);
                    Ok(GROUP_CONFIGS
                        .iter()
                        .filter(|g| wanted(g.0))
                        .map(|&(name, default, _, _)| {
                            group_entry(&current, name, default, own.get(name), &opts)
                        })
                        .collect())
                }
                _ => Err(invalid_request(format!(
                    "Unsupported resource type {} or name {}",
                    res.resource_type, res.resource_name
                ))),
            };
            match configs {
                Ok(configs) => result.with_configs(configs),
                Err((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    ResponseKind::DescribeConfigs(DescribeConfigsResponse::default().with_results(results))
}

fn entry(
    name: &'static str,
    value: String,
    source: ConfigSource,
    def: &ConfigDef,
    opts: &Options,
) -> DescribeConfigsResourceResult {
    // A string config with no default and no value is null, as in Kafka
    // (`broker.rack`).
    let value =
        (!value.is_empty() || !def.default.is_empty()).then(|| StrBytes::from_string(value));
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(value)
        .with_config_source(source as i8)
        .with_read_only(false);
    if opts.version >= 3 {
        r.config_type = def.kind as i8;
        if opts.documentation {
            r.documentation = Some(StrBytes::from_static_str(def.doc));
        }
    }
    r
}

fn synonym(name: &'static str, value: &str, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value.to_string())))
        .with_source(source as i8)
}

/// The broker-level synonyms of `def`, in Kafka's order: per-broker
/// dynamic, cluster-default dynamic, static, default.
fn broker_synonyms(current: &BrokerConfig, def: &'static ConfigDef) -> Vec<DescribeConfigsSynonym> {
    current
        .synonyms(def)
        .into_iter()
        .map(|(value, source)| synonym(def.name, value, source))
        .collect()
}

fn topic_entry(
    current: &BrokerConfig,
    config: &TopicConfig,
    def: &'static ConfigDef,
    opts: &Options,
) -> DescribeConfigsResourceResult {
    let topic_name = def.topic_name.unwrap_or(def.name);
    let (value, source) = config.resolve(def, current);
    let mut r = entry(topic_name, value, source, def, opts);
    if opts.synonyms {
        let mut syn = Vec::new();
        if let Some(v) = config.overrides.get(topic_name) {
            syn.push(synonym(topic_name, v, ConfigSource::Topic));
        }
        if def.broker_level {
            syn.extend(broker_synonyms(current, def));
        }
        r.synonyms = syn;
    }
    r
}

fn broker_entry(
    current: &BrokerConfig,
    def: &'static ConfigDef,
    opts: &Options,
) -> DescribeConfigsResourceResult {
    let (value, source) = current.resolve(def);
    let mut r = entry(def.name, value, source, def, opts).with_read_only(!is_dynamic(def));
    if opts.synonyms {
        r.synonyms = broker_synonyms(current, def);
    }
    r
}

/// A group config: the group's own value (GROUP_CONFIG), else the broker's
/// `group.consumer.*` value, reported as Kafka does (DEFAULT_CONFIG).
fn group_entry(
    current: &BrokerConfig,
    name: &'static str,
    default: &'static str,
    own: Option<&String>,
    opts: &Options,
) -> DescribeConfigsResourceResult {
    let broker_value = current.value(default).unwrap_or_default();
    let (value, source) = match own {
        Some(v) => (v.clone(), ConfigSource::Group),
        None => (broker_value.clone(), ConfigSource::Default),
    };
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source as i8)
        .with_read_only(false);
    if opts.version >= 3 {
        r.config_type = ConfigType::Int as i8;
        if opts.documentation {
            r.documentation = broker_def(default).map(|d| StrBytes::from_static_str(d.doc));
        }
    }
    if opts.synonyms {
        let mut syn = Vec::new();
        if let Some(v) = own {
            syn.push(synonym(name, v, ConfigSource::Group));
        }
        syn.push(synonym(default, &broker_value, ConfigSource::Default));
        r.synonyms = syn;
    }
    r
}

/// A resource's alteration outcome: error code and message, or success.
type Outcome = Result<(), Failure>;

fn alter_response(
    resource_type: i8,
    resource_name: StrBytes,
    outcome: Outcome,
) -> AlterConfigsResourceResponse {
    let r = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name);
    match outcome {
        // Kafka sends a null message on success.
        Ok(()) => r.with_error_message(None),
        Err((code, message)) => r
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

async fn apply(
    broker: &Arc<Broker>,
    topic: &str,
    config: TopicConfig,
    validate_only: bool,
) -> Outcome {
    broker
        .alter_topic_config(topic, config, validate_only)
        .await
        .map_err(|e| (admin_error_code(&e), e.to_string()))
}

fn dynamic_failure(err: DynamicConfigError) -> Failure {
    match err {
        DynamicConfigError::Unknown(_) => invalid_config(err.to_string()),
        // Kafka wraps every broker config validation failure in
        // InvalidRequestException (KAFKA-13609).
        DynamicConfigError::ReadOnly(_) | DynamicConfigError::Invalid(_) => {
            invalid_request(err.to_string())
        }
    }
}

/// Changes one layer of the broker's dynamic configs: `change` computes the
/// layer's new values from its current ones; the whole set is validated.
async fn alter_broker(
    broker: &Arc<Broker>,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    let layer = broker_layer(broker, name)?;
    let mut outcome = Ok(());
    broker
        .alter_broker_config(|current| {
            let mut next = current.dynamic.clone();
            let values = layer_of(&mut next, layer);
            outcome = change(values).and_then(|()| {
                validate_dynamic(values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map_err(dynamic_failure)
            });
            (outcome.is_ok() && !validate_only).then_some(next)
        })
        .await
        .map_err(|e| (admin_error_code(&e), e.to_string()))?;
    outcome
}

/// Changes a group's configs like `alter_broker`.
async fn alter_group(
    broker: &Arc<Broker>,
    group: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    if group.is_empty() {
        return Err(invalid_request(
            "Default group resources are not allowed.".to_string(),
        ));
    }
    let current = broker.current_config();
    let mut outcome = Ok(());
    broker
        .alter_group_config(group, |own| {
            let mut next = own.clone();
            outcome = change(&mut next).and_then(|()| {
                next.iter().try_for_each(|(k, v)| {
                    validate_group_config(k, v, &current)
                        .map(|_| ())
                        .map_err(invalid_config)
                })
            });
            (outcome.is_ok() && !validate_only).then_some(next)
        })
        .await
        .map_err(|e| (admin_error_code(&e), e.to_string()))?;
    outcome
}

/// AlterConfigs: the given set replaces all of a resource's values (a
/// topic's overrides, a broker layer, a group's configs).
pub async fn alter(broker: &Arc<Broker>, req: AlterConfigsRequest) -> ResponseKind {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        responses.push({
            let given: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            let replace = |values: &mut BTreeMap<String, String>| {
                *values = given.clone();
                Ok(())
            };
            let outcome = match res.resource_type {
                TOPIC => {
                    apply(
                        broker,
                        &res.resource_name,
                        TopicConfig {
                            overrides: given.clone(),
                        },
                        req.validate_only,
                    )
                    .await
                }
                BROKER => {
                    alter_broker(broker, &res.resource_name, req.validate_only, replace).await
                }
                GROUP => alter_group(broker, &res.resource_name, req.validate_only, replace).await,
                other => Err(invalid_request(format!(
                    "Unsupported resource type {other} or name {}",
                    res.resource_name
                ))),
            };
            alter_response(res.resource_type, res.resource_name, outcome)
        });
    }
    ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(responses))
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (the last two
/// for list configs only) applied to a resource's current values.
pub async fn incremental_alter(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> ResponseKind {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in req.resources {
        responses.push({
            let outcome = match res.resource_type {
                TOPIC => match broker.topic(&res.resource_name) {
                    Some(topic) => {
                        let mut config = topic.config();
                        match incremental(Kind::Topic, &mut config.overrides, &res.configs) {
                            Ok(()) => {
                                apply(broker, &res.resource_name, config, req.validate_only).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                    None => Err((
                        ResponseError::UnknownTopicOrPartition.code(),
                        "The topic does not exist.".to_string(),
                    )),
                },
                BROKER => {
                    alter_broker(broker, &res.resource_name, req.validate_only, |v| {
                        incremental(Kind::Broker, v, &res.configs)
                    })
                    .await
                }
                GROUP => {
                    alter_group(broker, &res.resource_name, req.validate_only, |v| {
                        incremental(Kind::Group, v, &res.configs)
                    })
                    .await
                }
                other => Err(invalid_request(format!(
                    "Unsupported resource type {other} or name {}",
                    res.resource_name
                ))),
            };
            let r = alter_response(res.resource_type, res.resource_name, outcome);
            IncrementalResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(r.error_code)
                .with_error_message(r.error_message)
        });
    }
    ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
    )
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// The kind of resource an IncrementalAlterConfigs applies to: where its
/// keys are defined, and Kafka's messages, which differ by kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Topic,
    Broker,
    Group,
}

fn incremental(
    kind: Kind,
    values: &mut BTreeMap<String, String>,
    ops: &[IncrementalConfig],
) -> Outcome {
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let name = op.name.to_string();
        if !seen.insert(name.clone()) {
            return Err(invalid_request(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
        // (kind, default) of a known key.
        let known = match kind {
            Kind::Topic => topic_def(&name)
                .map(|d| (d.kind, d.default))
                .ok_or_else(|| invalid_config(ConfigError::Unknown(name.clone()).to_string())),
            Kind::Broker => broker_def(&name)
                .map(|d| (d.kind, d.default))
                .ok_or_else(|| dynamic_failure(DynamicConfigError::Unknown(name.clone()))),
            Kind::Group => GROUP_CONFIGS
                .iter()
                .find(|g| g.0 == name)
                .map(|_| (ConfigType::Int, ""))
                .ok_or_else(|| invalid_config(format!("Unknown group config name: {name}"))),
        };
        let (config_type, default) = known?;
        let value = op.value.as_ref().map(|v| v.to_string());
        let list = config_type == ConfigType::List;
        match op.config_operation {
            SET => {
                let Some(v) = value else {
                    let message = format!("Null value not supported for : {name}");
                    return Err(match kind {
                        Kind::Broker => invalid_request(message),
                        Kind::Topic | Kind::Group => invalid_config(message),
                    });
                };
                values.insert(name, v);
            }
            DELETE => {
                values.remove(&name);
            }
            APPEND | SUBTRACT if !list => {
                let (what, op_name) = if op.config_operation == APPEND {
                    ("append", "APPEND")
                } else {
                    ("subtract", "SUBTRACT")
                };
                return Err(invalid_config(match kind {
                    Kind::Group => {
                        format!("Can't {op_name} to key {name} because its type is not LIST.")
                    }
                    Kind::Topic | Kind::Broker => {
                        format!("Config value {what} is not allowed for config key: {name}")
                    }
                }));
            }
            APPEND | SUBTRACT => {
                let current = values
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| default.to_string());
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let given = value.unwrap_or_default();
                for item in given.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                values.insert(name, items.join(","));
            }
            other => {
                return Err(invalid_request(format!(
                    "Unknown config operation {other} for {name}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, operation: i8, value: Option<&str>) -> IncrementalConfig {
        IncrementalConfig::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_config_operation(operation)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
    }

    fn incremental_overrides(
        mut config: TopicConfig,
        ops: &[IncrementalConfig],
    ) -> Result<TopicConfig, Failure> {
        incremental(Kind::Topic, &mut config.overrides, ops).map(|()| config)
    }

    #[test]
    fn broker_and_group_keys_get_kafkas_messages() {
        let mut values = BTreeMap::new();
        assert_eq!(
            incremental(
                Kind::Broker,
                &mut values,
                &[op("log.retention.ms", SET, None)]
            ),
            Err((
                ResponseError::InvalidRequest.code(),
                "Null value not supported for : log.retention.ms".to_string()
            ))
        );
        assert_eq!(
            incremental(
                Kind::Group,
                &mut values,
                &[op("consumer.heartbeat.interval.ms", APPEND, Some("1"))]
            ),
            Err((
                ResponseError::InvalidConfig.code(),
                "Can't APPEND to key consumer.heartbeat.interval.ms because its type is not LIST."
                    .to_string()
            ))
        );
        assert_eq!(
            incremental(Kind::Group, &mut values, &[op("foo", SET, Some("1"))]),
            Err((
                ResponseError::InvalidConfig.code(),
                "Unknown group config name: foo".to_string()
            ))
        );
        // APPEND to a list the layer does not set starts from the default.
        incremental(
            Kind::Broker,
            &mut values,
            &[op("log.cleanup.policy", APPEND, Some("compact"))],
        )
        .unwrap();
        assert_eq!(values["log.cleanup.policy"], "delete,compact");
    }

    #[test]
    fn incremental_operations_set_delete_append_and_subtract() {
        let start = TopicConfig::from_pairs([("retention.ms", "1000")]).unwrap();
        let out = incremental_overrides(
            start.clone(),
            &[
                op("retention.ms", DELETE, None),
                op("segment.bytes", SET, Some("4096")),
                op("cleanup.policy", APPEND, Some("compact")),
            ],
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = out
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("cleanup.policy", "delete,compact"),
                ("segment.bytes", "4096")
            ]
        );
        let out =
            incremental_overrides(out, &[op("cleanup.policy", SUBTRACT, Some("delete"))]).unwrap();
        assert_eq!(out.overrides["cleanup.policy"], "compact");
        let err = incremental_overrides(start.clone(), &[op("retention.ms", APPEND, Some("1"))])
            .unwrap_err();
        assert_eq!(
            err,
            (
                ResponseError::InvalidConfig.code(),
                "Config value append is not allowed for config key: retention.ms".to_string()
            )
        );
        let err = incremental_overrides(start, &[op("no.such", SET, Some("1"))]).unwrap_err();
        assert_eq!(err.0, ResponseError::InvalidConfig.code());
    }
}
