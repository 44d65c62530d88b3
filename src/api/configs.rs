//! DescribeConfigs for topics and this broker, with sources and synonyms.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{ConfigDef, ConfigSource, TopicConfig, CONFIG_DEFS};

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
                            .filter(|d| wanted(d.name))
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
        if let Some(v) = broker.config.overrides.get(def.name) {
            syn.push(synonym(def.name, v, ConfigSource::StaticBroker));
        }
        syn.push(synonym(def.name, def.default, ConfigSource::Default));
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
