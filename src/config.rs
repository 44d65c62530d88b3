//! Broker and topic configuration under Kafka's names, types and defaults.
//!
//! One table (`CONFIG_DEFS`) is the source of truth for every config key the
//! broker knows: its Kafka name, type, default, the topic-level name that
//! overrides it, and its documentation. Parsing and validation live here; the
//! rest of the broker reads typed values from [`BrokerConfig`] and
//! [`TopicConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::log::{LogConfig, TimestampType};

/// Kafka's config types, with the codes DescribeConfigs v3+ reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    List = 7,
}

/// One known config key.
#[derive(Debug)]
pub struct ConfigDef {
    /// The broker-level name (`log.segment.bytes`).
    pub name: &'static str,
    /// The topic-level name that overrides it (`segment.bytes`), if any.
    pub topic_name: Option<&'static str>,
    pub kind: ConfigType,
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every config key Vltava knows, broker-level first, in Kafka's names.
pub const CONFIG_DEFS: &[ConfigDef] = &[
    def(
        "node.id",
        None,
        ConfigType::Int,
        "1",
        "The node id of this broker.",
    ),
    def(
        "num.partitions",
        None,
        ConfigType::Int,
        "1",
        "The default number of partitions per topic.",
    ),
    def(
        "default.replication.factor",
        None,
        ConfigType::Short,
        "1",
        "The default replication factor for automatically created topics.",
    ),
    def(
        "auto.create.topics.enable",
        None,
        ConfigType::Boolean,
        "true",
        "Enable auto creation of topic on the server.",
    ),
    def(
        "message.max.bytes",
        Some("max.message.bytes"),
        ConfigType::Int,
        "1048588",
        "The largest record batch size allowed.",
    ),
    def(
        "socket.request.max.bytes",
        None,
        ConfigType::Int,
        "104857600",
        "The maximum number of bytes in a socket request.",
    ),
    def(
        "log.segment.bytes",
        Some("segment.bytes"),
        ConfigType::Int,
        "1073741824",
        "The maximum size of a single log file.",
    ),
    def(
        "log.roll.ms",
        Some("segment.ms"),
        ConfigType::Long,
        "604800000",
        "The maximum time before a new log segment is rolled out (in milliseconds).",
    ),
    def(
        "log.index.size.max.bytes",
        Some("segment.index.bytes"),
        ConfigType::Int,
        "10485760",
        "The maximum size in bytes of the offset index.",
    ),
    def(
        "log.index.interval.bytes",
        Some("index.interval.bytes"),
        ConfigType::Int,
        "4096",
        "The interval with which we add an entry to the offset index.",
    ),
    def(
        "log.message.timestamp.type",
        Some("message.timestamp.type"),
        ConfigType::String,
        "CreateTime",
        "Define whether the timestamp in the message is message create time or log append time.",
    ),
    def(
        "log.retention.ms",
        Some("retention.ms"),
        ConfigType::Long,
        "604800000",
        "The number of milliseconds to keep a log file before deleting it.",
    ),
    def(
        "log.retention.bytes",
        Some("retention.bytes"),
        ConfigType::Long,
        "-1",
        "The maximum size of the log before deleting it.",
    ),
    def(
        "log.cleanup.policy",
        Some("cleanup.policy"),
        ConfigType::List,
        "delete",
        "The default cleanup policy for segments beyond the retention window.",
    ),
    def(
        "compression.type",
        Some("compression.type"),
        ConfigType::String,
        "producer",
        "The final compression type for a given topic.",
    ),
    def(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        ConfigType::Int,
        "1",
        "The minimum number of replicas that must acknowledge a write for acks=all.",
    ),
    def(
        "log.flush.offset.checkpoint.interval.ms",
        None,
        ConfigType::Int,
        "60000",
        "The frequency with which we update the persistent record of the last flush.",
    ),
    def("group.initial.rebalance.delay.ms", None, ConfigType::Int, "3000", "The time the group coordinator waits for more consumers to join a new group before performing the first rebalance."),
    def("group.min.session.timeout.ms", None, ConfigType::Int, "6000", "The minimum allowed session timeout for registered consumers."),
    def("group.max.session.timeout.ms", None, ConfigType::Int, "1800000", "The maximum allowed session timeout for registered consumers."),
    def("group.max.size", None, ConfigType::Int, "2147483647", "The maximum number of consumers that a single consumer group can accommodate."),
    def("offsets.topic.num.partitions", None, ConfigType::Int, "50", "The number of partitions for the offset commit topic."),
    def("offsets.topic.segment.bytes", None, ConfigType::Int, "104857600", "The offsets topic segment bytes."),
    def("offsets.retention.minutes", None, ConfigType::Int, "10080", "For subscribed consumers, committed offset of a specific partition will be expired and discarded when the group is empty and this retention period has passed."),
    def("offsets.retention.check.interval.ms", None, ConfigType::Long, "600000", "Frequency at which to check for stale offsets."),
    def("group.consumer.session.timeout.ms", None, ConfigType::Int, "45000", "The timeout to detect client failures when using the consumer group protocol."),
    def("group.consumer.heartbeat.interval.ms", None, ConfigType::Int, "5000", "The heartbeat interval given to the members of a consumer group."),
    def("group.consumer.max.size", None, ConfigType::Int, "2147483647", "The maximum number of consumers that a single consumer group can accommodate."),
    def("offset.metadata.max.bytes", None, ConfigType::Int, "4096", "The maximum size for a metadata entry associated with an offset commit."),
];

const fn def(
    name: &'static str,
    topic_name: Option<&'static str>,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        topic_name,
        kind,
        default,
        doc,
    }
}

/// Finds a broker-level config by its Kafka name.
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    CONFIG_DEFS.iter().find(|d| d.name == name)
}

/// Finds a topic-level config by its Kafka name.
pub fn topic_def(name: &str) -> Option<&'static ConfigDef> {
    CONFIG_DEFS.iter().find(|d| d.topic_name == Some(name))
}

/// A config value that does not parse or is out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown config {0}")]
    Unknown(String),
    #[error("invalid value {value:?} for configuration {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Checks that `value` is well-formed for `def`.
pub fn validate(def: &ConfigDef, name: &str, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match def.kind {
        ConfigType::Boolean => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid("expected true or false")),
        },
        ConfigType::Int => value
            .trim()
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| invalid("expected a 32-bit integer")),
        ConfigType::Short => value
            .trim()
            .parse::<i16>()
            .map(|_| ())
            .map_err(|_| invalid("expected a 16-bit integer")),
        ConfigType::Long => value
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| invalid("expected a 64-bit integer")),
        ConfigType::String if def.default == "CreateTime" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(invalid("expected CreateTime or LogAppendTime")),
        },
        ConfigType::String if def.default == "producer" => match value {
            "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Ok(()),
            _ => Err(invalid(
                "expected one of producer, uncompressed, gzip, snappy, lz4, zstd",
            )),
        },
        ConfigType::List if def.default == "delete" => {
            if value
                .split(',')
                .all(|p| matches!(p.trim(), "delete" | "compact"))
            {
                Ok(())
            } else {
                Err(invalid("expected delete, compact or both"))
            }
        }
        ConfigType::String | ConfigType::List => Ok(()),
    }
}

/// How an acknowledged `acks=all` write is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// fsync before acknowledging `acks=all` (one fsync serves every waiting request).
    Fsync,
    /// Kafka's default: acknowledge once written to the page cache.
    PageCache,
}

/// The broker's effective configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// The address clients are told to connect to; `None` means the bound address.
    pub advertised: Option<(String, u16)>,
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// Kafka-named settings that were set explicitly (file or overrides).
    pub overrides: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// The effective string value of a broker-level key: explicit or default.
    pub fn value(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        broker_def(name).map(|d| d.default.to_string())
    }

    fn int<T: std::str::FromStr>(&self, name: &str, fallback: T) -> T {
        self.value(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    }

    pub fn node_id(&self) -> i32 {
        self.int("node.id", 1)
    }
    pub fn num_partitions(&self) -> i32 {
        self.int("num.partitions", 1)
    }
    pub fn auto_create_topics(&self) -> bool {
        self.value("auto.create.topics.enable").as_deref() != Some("false")
    }
    pub fn socket_request_max_bytes(&self) -> usize {
        self.int("socket.request.max.bytes", 104_857_600)
    }
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.int("log.flush.offset.checkpoint.interval.ms", 60_000)
    }

    /// The group coordinator's settings (`group.*`, `offsets.*`).
    pub fn coordinator(&self) -> crate::group::coordinator::CoordinatorConfig {
        use crate::group::classic::GroupConfig;
        crate::group::coordinator::CoordinatorConfig {
            group: GroupConfig {
                initial_rebalance_delay_ms: self.int("group.initial.rebalance.delay.ms", 3000),
                min_session_timeout_ms: self.int("group.min.session.timeout.ms", 6000),
                max_session_timeout_ms: self.int("group.max.session.timeout.ms", 1_800_000),
                max_size: self.int("group.max.size", i32::MAX as usize),
            },
            consumer: crate::group::consumer::ConsumerGroupConfig {
                session_timeout_ms: self.int("group.consumer.session.timeout.ms", 45_000),
                heartbeat_interval_ms: self.int("group.consumer.heartbeat.interval.ms", 5_000),
                max_size: self.int("group.consumer.max.size", i32::MAX as usize),
            },
            offsets_retention_ms: self.int::<i64>("offsets.retention.minutes", 10080) * 60_000,
            retention_check_interval_ms: self.int("offsets.retention.check.interval.ms", 600_000),
            offset_metadata_max_bytes: self.int("offset.metadata.max.bytes", 4096),
        }
    }

    pub fn offsets_topic_partitions(&self) -> i32 {
        self.int("offsets.topic.num.partitions", 50)
    }

    /// Checks every explicit setting: known key and well-formed value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.overrides {
            let def = broker_def(name).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
            validate(def, name, value)?;
        }
        Ok(())
    }
}

/// A topic's explicit config overrides, resolved against the broker's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    pub overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Validates and collects topic-level overrides.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, ConfigError> {
        let mut overrides = BTreeMap::new();
        for (name, value) in pairs {
            let def = topic_def(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
            validate(def, name, value)?;
            overrides.insert(name.to_string(), value.to_string());
        }
        Ok(TopicConfig { overrides })
    }

    /// The effective value of a topic-level key, with where it came from.
    pub fn resolve(&self, def: &ConfigDef, broker: &BrokerConfig) -> (String, ConfigSource) {
        if let Some(v) = def.topic_name.and_then(|n| self.overrides.get(n)) {
            return (v.clone(), ConfigSource::Topic);
        }
        match broker.overrides.get(def.name) {
            Some(v) => (v.clone(), ConfigSource::StaticBroker),
            None => (def.default.to_string(), ConfigSource::Default),
        }
    }

    /// The log layer's settings for a partition of this topic.
    pub fn log_config(&self, broker: &BrokerConfig) -> LogConfig {
        let get = |name: &str| {
            broker_def(name)
                .map(|d| self.resolve(d, broker).0)
                .unwrap_or_default()
        };
        let defaults = LogConfig::default();
        LogConfig {
            segment_bytes: get("log.segment.bytes")
                .parse()
                .unwrap_or(defaults.segment_bytes),
            segment_ms: get("log.roll.ms").parse().unwrap_or(defaults.segment_ms),
            index_interval_bytes: get("log.index.interval.bytes")
                .parse()
                .unwrap_or(defaults.index_interval_bytes),
            segment_index_bytes: get("log.index.size.max.bytes")
                .parse()
                .unwrap_or(defaults.segment_index_bytes),
            timestamp_type: if get("log.message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            max_message_bytes: get("message.max.bytes")
                .parse()
                .unwrap_or(defaults.max_message_bytes),
        }
    }
}

/// Where a config value came from, with DescribeConfigs' source codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic = 1,
    StaticBroker = 4,
    Default = 5,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(overrides: &[(&str, &str)]) -> BrokerConfig {
        BrokerConfig {
            listen: "127.0.0.1:9092".parse().unwrap(),
            advertised: None,
            data_dir: PathBuf::from("/tmp/x"),
            durability: Durability::Fsync,
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn topic_override_beats_broker_setting_beats_default() {
        let b = broker(&[("log.segment.bytes", "2048")]);
        let t = TopicConfig::from_pairs([("segment.bytes", "4096")]).unwrap();
        let def = broker_def("log.segment.bytes").unwrap();
        assert_eq!(t.resolve(def, &b), ("4096".into(), ConfigSource::Topic));
        assert_eq!(
            TopicConfig::default().resolve(def, &b),
            ("2048".into(), ConfigSource::StaticBroker)
        );
        let roll = broker_def("log.roll.ms").unwrap();
        assert_eq!(
            TopicConfig::default().resolve(roll, &b),
            ("604800000".into(), ConfigSource::Default)
        );
        assert_eq!(t.log_config(&b).segment_bytes, 4096);
    }

    #[test]
    fn bad_topic_configs_are_rejected_with_the_key_named() {
        assert_eq!(
            TopicConfig::from_pairs([("no.such.key", "1")]),
            Err(ConfigError::Unknown("no.such.key".into()))
        );
        let err = TopicConfig::from_pairs([("segment.bytes", "big")]).unwrap_err();
        assert!(err.to_string().contains("segment.bytes"), "{err}");
        assert!(TopicConfig::from_pairs([("cleanup.policy", "compact,delete")]).is_ok());
        assert!(TopicConfig::from_pairs([("cleanup.policy", "forever")]).is_err());
    }

    #[test]
    fn broker_defaults_are_kafkas() {
        let b = broker(&[]);
        assert_eq!(b.num_partitions(), 1);
        assert!(b.auto_create_topics());
        assert_eq!(b.socket_request_max_bytes(), 104_857_600);
        assert!(!broker(&[("auto.create.topics.enable", "false")]).auto_create_topics());
        assert!(broker(&[("num.partitions", "x")]).validate().is_err());
        assert!(broker(&[("no.such", "x")]).validate().is_err());
    }
}
