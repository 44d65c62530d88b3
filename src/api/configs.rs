//! Topic and broker configs: DescribeConfigs (with sources, synonyms and
//! documentation), AlterConfigs and IncrementalAlterConfigs for topics.
//! Validation is `config.rs`'s; persistence and application are the broker's.

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
    topic_def, ConfigDef, ConfigError, ConfigSource, ConfigType, TopicConfig, CONFIG_DEFS,
};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

struct Options {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

pub fn describe(broker: &Arc<Broker>, req: DescribeConfigsRequest, version: i16) -> ResponseKind {
    let opts = Options {
        synonyms: req.include_synonyms,
        documentation: req.include_documentation,
        version,
    };
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
            match res.resource_type {
                TOPIC => match broker.topic(&res.resource_name) {
                    Some(topic) => {
                        let config = topic.config();
                        result.with_configs(
                            CONFIG_DEFS
                                .iter()
                                .filter(|d| d.topic_name.is_some_and(&wanted))
                                .map(|d| topic_entry(broker, &config, d, &opts))
                                .collect(),
                        )
                    }
                    None => result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "The topic does not exist.",
                        ))),
                },
                BROKER
                    if res.resource_name.is_empty()
                        || res.resource_name.as_str() == broker.node_id.to_string() =>
                {
                    result.with_configs(
                        CONFIG_DEFS
                            .iter()
                            .filter(|d| d.broker_level && wanted(d.name))
                            .map(|d| broker_entry(broker, d, &opts))
                            .collect(),
                    )
                }
                _ => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Unsupported resource type {} or name {}",
                        res.resource_type, res.resource_name
                    )))),
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
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value)))
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

fn topic_entry(
    broker: &Broker,
    config: &TopicConfig,
    def: &ConfigDef,
    opts: &Options,
) -> DescribeConfigsResourceResult {
    let topic_name = def.topic_name.unwrap_or(def.name);
    let (value, source) = config.resolve(def, &broker.config);
    let mut r = entry(topic_name, value, source, def, opts);
    if opts.synonyms {
        let mut syn = Vec::new();
        if let Some(v) = config.overrides.get(topic_name) {
            syn.push(synonym(topic_name, v, ConfigSource::Topic));
        }
        if def.broker_level {
            if let Some(v) = broker.config.overrides.get(def.name) {
                syn.push(synonym(def.name, v, ConfigSource::StaticBroker));
            }
            syn.push(synonym(def.name, def.default, ConfigSource::Default));
        }
        r.synonyms = syn;
    }
    r
}

fn broker_entry(broker: &Broker, def: &ConfigDef, opts: &Options) -> DescribeConfigsResourceResult {
    let (value, source) = match broker.config.overrides.get(def.name) {
        Some(v) => (v.clone(), ConfigSource::StaticBroker),
        None => (def.default.to_string(), ConfigSource::Default),
    };
    let mut r = entry(def.name, value.clone(), source, def, opts).with_read_only(true);
    if opts.synonyms {
        let mut syn = Vec::new();
        if source == ConfigSource::StaticBroker {
            syn.push(synonym(def.name, &value, ConfigSource::StaticBroker));
        }
        syn.push(synonym(def.name, def.default, ConfigSource::Default));
        r.synonyms = syn;
    }
    r
}

/// A resource's alteration outcome: error code and message, or success.
type Outcome = Result<(), (i16, String)>;

fn alter_response(
    resource_type: i8,
    resource_name: StrBytes,
    outcome: Outcome,
) -> AlterConfigsResourceResponse {
    let r = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name);
    match outcome {
        Ok(()) => r,
        Err((code, message)) => r
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

fn not_a_topic(resource_type: i8, name: &str) -> (i16, String) {
    if resource_type == BROKER {
        (
            ResponseError::InvalidRequest.code(),
            "Broker configs are static in Vltava: set them in the config file or with --override."
                .to_string(),
        )
    } else {
        (
            ResponseError::InvalidRequest.code(),
            format!("Unsupported resource type {resource_type} or name {name}"),
        )
    }
}

fn apply(broker: &Broker, topic: &str, config: TopicConfig, validate_only: bool) -> Outcome {
    broker
        .alter_topic_config(topic, config, validate_only)
        .map_err(|e| (admin_error_code(&e), e.to_string()))
}

/// AlterConfigs: the given set replaces all of a topic's overrides.
pub fn alter(broker: &Arc<Broker>, req: AlterConfigsRequest) -> ResponseKind {
    let responses = req
        .resources
        .into_iter()
        .map(|res| {
            let outcome = if res.resource_type == TOPIC {
                let overrides = res
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                apply(
                    broker,
                    &res.resource_name,
                    TopicConfig { overrides },
                    req.validate_only,
                )
            } else {
                Err(not_a_topic(res.resource_type, &res.resource_name))
            };
            alter_response(res.resource_type, res.resource_name, outcome)
        })
        .collect();
    ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(responses))
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (the last two
/// for list configs only) applied to a topic's current overrides.
pub fn incremental_alter(
    broker: &Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> ResponseKind {
    let responses =
        req.resources
            .into_iter()
            .map(|res| {
                let outcome = if res.resource_type == TOPIC {
                    match broker.topic(&res.resource_name) {
                        Some(topic) => incremental_overrides(topic.config(), &res.configs)
                            .and_then(|config| {
                                apply(broker, &res.resource_name, config, req.validate_only)
                            }),
                        None => Err((
                            ResponseError::UnknownTopicOrPartition.code(),
                            "The topic does not exist.".to_string(),
                        )),
                    }
                } else {
                    Err(not_a_topic(res.resource_type, &res.resource_name))
                };
                let r = alter_response(res.resource_type, res.resource_name, outcome);
                IncrementalResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
                    .with_error_code(r.error_code)
                    .with_error_message(r.error_message)
            })
            .collect();
    ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
    )
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn incremental_overrides(
    mut config: TopicConfig,
    ops: &[IncrementalConfig],
) -> Result<TopicConfig, (i16, String)> {
    let invalid = |m: String| (ResponseError::InvalidConfig.code(), m);
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let name = op.name.to_string();
        if !seen.insert(name.clone()) {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("Error due to duplicate config keys: {name}"),
            ));
        }
        let Some(def) = topic_def(&name) else {
            return Err(invalid(ConfigError::Unknown(name).to_string()));
        };
        let value = op.value.as_ref().map(|v| v.to_string());
        let list = def.kind == ConfigType::List;
        match op.config_operation {
            SET => {
                let v = value
                    .ok_or_else(|| invalid(format!("Null value not supported for : {name}")))?;
                config.overrides.insert(name, v);
            }
            DELETE => {
                config.overrides.remove(&name);
            }
            APPEND | SUBTRACT if !list => {
                let what = if op.config_operation == APPEND {
                    "append"
                } else {
                    "subtract"
                };
                return Err(invalid(format!(
                    "Config value {what} is not allowed for config key: {name}"
                )));
            }
            APPEND | SUBTRACT => {
                let current = config
                    .overrides
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| def.default.to_string());
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
                config.overrides.insert(name, items.join(","));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("Unknown config operation {other} for {name}"),
                ))
            }
        }
    }
    Ok(config)
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
