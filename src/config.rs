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

use crate::log::{Codec, LogConfig, TimestampType};

/// Kafka's config types, with the codes DescribeConfigs v3+ reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    /// A Java class name (Kafka's CLASS); Vltava accepts only the classes
    /// whose behaviour it implements.
    Class = 8,
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
    pub valid: Valid,
    pub doc: &'static str,
    /// Also a broker setting under `name` (false: a topic config only,
    /// such as `remote.storage.enable`).
    pub broker_level: bool,
}

/// What values a config accepts (Kafka's `ConfigDef` validators).
#[derive(Debug, Clone, Copy)]
pub enum Valid {
    /// Anything of the right type.
    Any,
    /// A number at least this large.
    AtLeast(i64),
    /// A number (integer or double) within `[min, max]`.
    Between(f64, f64),
    /// A boolean that must not be `true`: Vltava lacks the mechanism, and
    /// says why (Kafka refuses the same way when the feature is off).
    NotTrue(&'static str),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A comma-separated list of these strings.
    ListOf(&'static [&'static str]),
    /// A class name Vltava implements (empty: none, Kafka's null); any other
    /// class cannot be loaded, so it stops the start.
    Class(&'static [&'static str]),
}

const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const POLICIES: &[&str] = &["delete", "compact"];
const LONG_MAX: &str = "9223372036854775807";

/// Kafka's default `ReplicaSelector`: consumers read from the leader.
pub const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";
/// KIP-392's rack-aware `ReplicaSelector`: a consumer with `client.rack` is
/// sent to a caught-up replica in its rack.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";
const REPLICA_SELECTORS: &[&str] = &[LEADER_SELECTOR, RACK_AWARE_REPLICA_SELECTOR];

/// Every config key Vltava knows, broker-level first, in Kafka's names.
pub const CONFIG_DEFS: &[ConfigDef] = &[
    def("node.id", None, ConfigType::Int, "1", "The node id of this broker."),
    def("broker.rack", None, ConfigType::String, "", "Rack of the broker. This will be used in rack aware replication assignment for fault tolerance. Examples: RACK1, us-east-1d"),
    def("process.roles", None, ConfigType::List, "broker,controller", "The roles that this process plays: 'broker', 'controller', or 'broker,controller' if it is both."),
    def("controller.quorum.voters", None, ConfigType::List, "", "Map of id/endpoint information for the set of voters in a comma-separated list of {id}@{host}:{port} entries. Empty: this node is the only voter."),
    def("controller.listener.names", None, ConfigType::List, "", "A comma-separated list of the names of the listeners used by the controller."),
    defv("controller.quorum.election.timeout.ms", None, ConfigType::Int, "1000", Valid::AtLeast(1), "Maximum time in milliseconds to wait without being able to fetch from the leader before triggering a new election."),
    defv("broker.session.timeout.ms", None, ConfigType::Int, "9000", Valid::AtLeast(1), "The length of time in milliseconds that a broker lease lasts if no heartbeats are made."),
    defv("broker.heartbeat.interval.ms", None, ConfigType::Int, "2000", Valid::AtLeast(1), "The length of time in milliseconds between broker heartbeats."),
    def("auto.leader.rebalance.enable", None, ConfigType::Boolean, "true", "Enables auto leader balancing: the active controller periodically hands leadership back to each partition's preferred replica when it is live and in sync."),
    defv("leader.imbalance.check.interval.seconds", None, ConfigType::Long, "300", Valid::AtLeast(1), "The frequency with which the partition rebalance check is triggered by the controller."),
    defv("leader.imbalance.per.broker.percentage", None, ConfigType::Int, "10", Valid::AtLeast(0), "The ratio of leader imbalance allowed per broker. Accepted; as Kafka's KRaft controller, Vltava moves every partition not led by its preferred replica at each check."),
    defv("replica.lag.time.max.ms", None, ConfigType::Long, "30000", Valid::AtLeast(1), "If a follower has not sent any fetch requests or has not consumed up to the leader's log end offset for at least this time, the leader will remove the follower from the ISR."),
    defv("replica.fetch.wait.max.ms", None, ConfigType::Int, "500", Valid::AtLeast(0), "The maximum wait time for each fetcher request issued by follower replicas."),
    defv("replica.fetch.min.bytes", None, ConfigType::Int, "1", Valid::AtLeast(0), "Minimum bytes expected for each fetch response. If not enough bytes, wait up to replica.fetch.wait.max.ms."),
    defv("replica.fetch.max.bytes", None, ConfigType::Int, "1048576", Valid::AtLeast(0), "The number of bytes of messages to attempt to fetch for each partition."),
    defv("replica.fetch.response.max.bytes", None, ConfigType::Int, "10485760", Valid::AtLeast(0), "Maximum bytes expected for the entire fetch response."),
    defv("replica.selector.class", None, ConfigType::Class, "", Valid::Class(REPLICA_SELECTORS), "The fully qualified class name that implements ReplicaSelector. This is used by the broker to find the preferred read replica. By default, we use an implementation that returns the leader. Vltava implements org.apache.kafka.common.replica.LeaderSelector and org.apache.kafka.common.replica.RackAwareReplicaSelector (KIP-392)."),
    defv("replica.fetch.backoff.ms", None, ConfigType::Int, "1000", Valid::AtLeast(0), "The amount of time to sleep when fetch partition error occurs."),
    def("num.partitions", None, ConfigType::Int, "1", "The default number of partitions per topic."),
    def("default.replication.factor", None, ConfigType::Short, "1", "The default replication factor for automatically created topics."),
    def("auto.create.topics.enable", None, ConfigType::Boolean, "true", "Enable auto creation of topic on the server."),
    defv("message.max.bytes", Some("max.message.bytes"), ConfigType::Int, "1048588", Valid::AtLeast(0), "The largest record batch size allowed."),
    def("socket.request.max.bytes", None, ConfigType::Int, "104857600", "The maximum number of bytes in a socket request."),
    defv("socket.send.buffer.bytes", None, ConfigType::Int, "102400", Valid::AtLeast(-1), "The SO_SNDBUF buffer of the socket server sockets (set only when configured; Linux autotunes otherwise), and the bytes of responses a connection may have waiting to be sent before its next request is read. If the value is -1, the OS default will be used."),
    defv("connections.max.idle.ms", None, ConfigType::Long, "600000", Valid::AtLeast(-1), "Idle connections timeout: the server socket processor threads close the connections that idle more than this; a request must also arrive whole within this time. -1 disables it."),
    defv("fetch.max.bytes", None, ConfigType::Int, "57671680", Valid::AtLeast(1024), "The maximum number of bytes we will return for a fetch request. Must be at least 1024."),
    defv("log.segment.bytes", Some("segment.bytes"), ConfigType::Int, "1073741824", Valid::AtLeast(14), "The maximum size of a single log file."),
    defv("log.roll.ms", Some("segment.ms"), ConfigType::Long, "604800000", Valid::AtLeast(1), "The maximum time before a new log segment is rolled out (in milliseconds)."),
    defv("log.index.size.max.bytes", Some("segment.index.bytes"), ConfigType::Int, "10485760", Valid::AtLeast(4), "The maximum size in bytes of the offset index."),
    defv("log.index.interval.bytes", Some("index.interval.bytes"), ConfigType::Int, "4096", Valid::AtLeast(0), "The interval with which we add an entry to the offset index."),
    defv("log.message.timestamp.type", Some("message.timestamp.type"), ConfigType::String, "CreateTime", Valid::OneOf(TIMESTAMP_TYPES), "Define whether the timestamp in the message is message create time or log append time."),
    defv("log.message.timestamp.before.max.ms", Some("message.timestamp.before.max.ms"), ConfigType::Long, LONG_MAX, Valid::AtLeast(0), "The maximum difference allowed between the timestamp when a broker receives a message and the timestamp specified in the message, for timestamps earlier than the broker's time."),
    defv("log.message.timestamp.after.max.ms", Some("message.timestamp.after.max.ms"), ConfigType::Long, "3600000", Valid::AtLeast(0), "The maximum difference allowed between the timestamp when a broker receives a message and the timestamp specified in the message, for timestamps later than the broker's time."),
    defv("log.retention.ms", Some("retention.ms"), ConfigType::Long, "604800000", Valid::AtLeast(-1), "The number of milliseconds to keep a log file before deleting it; -1 means no time limit."),
    def("log.retention.bytes", Some("retention.bytes"), ConfigType::Long, "-1", "The maximum size of the log before deleting it; -1 means no size limit."),
    defv("log.retention.check.interval.ms", None, ConfigType::Long, "300000", Valid::AtLeast(1), "The frequency in milliseconds that the log cleaner checks whether any log is eligible for deletion."),
    defv("producer.id.expiration.ms", None, ConfigType::Int, "86400000", Valid::AtLeast(1), "The time in ms that a topic partition leader will wait before expiring producer IDs."),
    defv("log.cleanup.policy", Some("cleanup.policy"), ConfigType::List, "delete", Valid::ListOf(POLICIES), "The default cleanup policy for segments beyond the retention window: delete, compact, or both."),
    def("log.cleaner.enable", None, ConfigType::Boolean, "true", "Enable the log cleaner process to run on the server."),
    defv("log.cleaner.backoff.ms", None, ConfigType::Long, "15000", Valid::AtLeast(0), "The amount of time to sleep when there are no logs to clean."),
    defv("log.cleaner.dedupe.buffer.size", None, ConfigType::Long, "134217728", Valid::AtLeast(1024), "The total memory used for log deduplication by the cleaner."),
    defv("log.cleaner.io.max.bytes.per.second", None, ConfigType::Double, "1.7976931348623157E308", Valid::Between(0.0, f64::MAX), "The log cleaner will be throttled so that the sum of its read and write i/o will be less than this value on average."),
    defv("log.cleaner.min.cleanable.ratio", Some("min.cleanable.dirty.ratio"), ConfigType::Double, "0.5", Valid::Between(0.0, 1.0), "The minimum ratio of dirty log to total log for a log to be eligible for cleaning."),
    defv("log.cleaner.min.compaction.lag.ms", Some("min.compaction.lag.ms"), ConfigType::Long, "0", Valid::AtLeast(0), "The minimum time a message will remain uncompacted in the log."),
    defv("log.cleaner.max.compaction.lag.ms", Some("max.compaction.lag.ms"), ConfigType::Long, LONG_MAX, Valid::AtLeast(1), "The maximum time a message will remain ineligible for compaction in the log."),
    defv("log.cleaner.delete.retention.ms", Some("delete.retention.ms"), ConfigType::Long, "86400000", Valid::AtLeast(0), "The amount of time to retain tombstone markers for log compacted topics."),
    defv("compression.type", Some("compression.type"), ConfigType::String, "producer", Valid::OneOf(CODECS), "The final compression type for a given topic: a codec, or producer to keep the producer's."),
    defv("min.insync.replicas", Some("min.insync.replicas"), ConfigType::Int, "1", Valid::AtLeast(1), "The minimum number of replicas that must acknowledge a write for acks=all."),
    def("unclean.leader.election.enable", Some("unclean.leader.election.enable"), ConfigType::Boolean, "false", "Whether replicas not in the ISR may be elected leader as a last resort, even though doing so may result in data loss."),
    // Kafka 4.x topic configs Vltava accepts and reports but does not act on
    // (one replica, no tiered storage, no down-conversion; see
    // docs/COMPATIBILITY.md "Topic configs that are no-ops").
    defv("log.roll.jitter.ms", Some("segment.jitter.ms"), ConfigType::Long, "0", Valid::AtLeast(0), "Maximum random jitter subtracted from a segment's scheduled roll time. Accepted; Vltava rolls without jitter."),
    defv("log.flush.interval.messages", Some("flush.messages"), ConfigType::Long, LONG_MAX, Valid::AtLeast(1), "Messages appended to a partition before it is fsynced. Vltava fsyncs per its durability policy: under --durability fsync every acks=all write is fsynced before it is acknowledged. A broker-level value other than the default is refused."),
    defv("log.flush.interval.ms", Some("flush.ms"), ConfigType::Long, LONG_MAX, Valid::AtLeast(0), "Longest time a message stays unflushed. Vltava fsyncs per its durability policy: under --durability fsync every acks=all write is fsynced before it is acknowledged. A broker-level value other than the default is refused."),
    defv("log.segment.delete.delay.ms", Some("file.delete.delay.ms"), ConfigType::Long, "60000", Valid::AtLeast(0), "Wait before a deleted segment's files are removed. Accepted; Vltava removes them at once."),
    def("log.preallocate", Some("preallocate"), ConfigType::Boolean, "false", "Whether a new segment's file is preallocated. Accepted; Vltava never preallocates."),
    defv("compression.gzip.level", Some("compression.gzip.level"), ConfigType::Int, "-1", Valid::Between(-1.0, 9.0), "gzip level when compression.type is gzip. Accepted; Vltava recompresses at the codec's default level."),
    defv("compression.lz4.level", Some("compression.lz4.level"), ConfigType::Int, "9", Valid::Between(1.0, 17.0), "lz4 level when compression.type is lz4. Accepted; Vltava recompresses at the codec's default level."),
    defv("compression.zstd.level", Some("compression.zstd.level"), ConfigType::Int, "3", Valid::Between(-131072.0, 22.0), "zstd level when compression.type is zstd. Accepted; Vltava recompresses at the codec's default level."),
    def("log.message.downconversion.enable", Some("message.downconversion.enable"), ConfigType::Boolean, "true", "Whether fetches may down-convert to old message formats (Kafka 3.x; removed in 4.0). Accepted; Vltava serves only the v2 format."),
    defv("log.local.retention.ms", Some("local.retention.ms"), ConfigType::Long, "-2", Valid::AtLeast(-2), "Local retention under tiered storage (-2: retention.ms). Accepted; without tiered storage retention.ms applies."),
    defv("log.local.retention.bytes", Some("local.retention.bytes"), ConfigType::Long, "-2", Valid::AtLeast(-2), "Local retention under tiered storage (-2: retention.bytes). Accepted; without tiered storage retention.bytes applies."),
    topic_only("remote.storage.enable", ConfigType::Boolean, "false", Valid::NotTrue("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."), "Tiered storage for this topic. Vltava has none: true is refused, as Kafka does with tiered storage disabled."),
    topic_only("remote.log.copy.disable", ConfigType::Boolean, "false", Valid::Any, "Stop copying segments to tiered storage. Accepted; Vltava has no tiered storage."),
    topic_only("remote.log.delete.on.disable", ConfigType::Boolean, "false", Valid::Any, "Delete tiered data when tiered storage is turned off. Accepted; Vltava has no tiered storage."),
    topic_only("remote.copy.lag.ms", ConfigType::Long, "0", Valid::AtLeast(-1), "How long a segment waits before it is copied to tiered storage. Accepted; Vltava has no tiered storage."),
    topic_only("remote.copy.lag.bytes", ConfigType::Long, "-1", Valid::AtLeast(-1), "How many bytes wait before segments are copied to tiered storage. Accepted; Vltava has no tiered storage."),
    topic_only("max.decompressed.message.bytes", ConfigType::Int, "2147483639", Valid::AtLeast(0), "Largest decompressed record accepted. Accepted; Vltava does not check it."),
    topic_only("errors.deadletterqueue.group.enable", ConfigType::Boolean, "false", Valid::Any, "Whether share groups may use the topic as a dead-letter queue. Accepted; Vltava has no share groups."),
    topic_only("leader.replication.throttled.replicas", ConfigType::List, "", Valid::Any, "Replicas whose leader-side replication is throttled. Accepted; Vltava does not throttle replication."),
    topic_only("follower.replication.throttled.replicas", ConfigType::List, "", Valid::Any, "Replicas whose follower-side replication is throttled. Accepted; Vltava does not throttle replication."),
    def("log.flush.offset.checkpoint.interval.ms", None, ConfigType::Int, "60000", "The frequency with which we update the persistent record of the last flush."),
    def("group.initial.rebalance.delay.ms", None, ConfigType::Int, "0", "The time the group coordinator waits for more consumers to join a new group before performing the first rebalance."),
    def("group.min.session.timeout.ms", None, ConfigType::Int, "6000", "The minimum allowed session timeout for registered consumers."),
    def("group.max.session.timeout.ms", None, ConfigType::Int, "1800000", "The maximum allowed session timeout for registered consumers."),
    def("group.max.size", None, ConfigType::Int, "2147483647", "The maximum number of consumers that a single consumer group can accommodate."),
    def("offsets.topic.num.partitions", None, ConfigType::Int, "50", "The number of partitions for the offset commit topic."),
    def("offsets.topic.segment.bytes", None, ConfigType::Int, "104857600", "The offsets topic segment bytes."),
    defv("offsets.topic.replication.factor", None, ConfigType::Short, "3", Valid::AtLeast(1), "The replication factor for the offsets topic. Vltava creates it with this many replicas, or as many as there are brokers if fewer."),
    def("offsets.retention.minutes", None, ConfigType::Int, "10080", "For subscribed consumers, committed offset of a specific partition will be expired and discarded when the group is empty and this retention period has passed."),
    def("offsets.retention.check.interval.ms", None, ConfigType::Long, "600000", "Frequency at which to check for stale offsets."),
    def("group.consumer.session.timeout.ms", None, ConfigType::Int, "45000", "The timeout to detect client failures when using the consumer group protocol."),
    def("group.consumer.heartbeat.interval.ms", None, ConfigType::Int, "5000", "The heartbeat interval given to the members of a consumer group."),
    def("group.consumer.max.size", None, ConfigType::Int, "2147483647", "The maximum number of consumers that a single consumer group can accommodate."),
    defv("group.consumer.min.session.timeout.ms", None, ConfigType::Int, "45000", Valid::AtLeast(1), "The minimum allowed session timeout for registered consumers."),
    defv("group.consumer.max.session.timeout.ms", None, ConfigType::Int, "60000", Valid::AtLeast(1), "The maximum allowed session timeout for registered consumers."),
    defv("group.consumer.min.heartbeat.interval.ms", None, ConfigType::Int, "5000", Valid::AtLeast(1), "The minimum heartbeat interval for registered consumers."),
    defv("group.consumer.max.heartbeat.interval.ms", None, ConfigType::Int, "15000", Valid::AtLeast(1), "The maximum heartbeat interval for registered consumers."),
    def("offset.metadata.max.bytes", None, ConfigType::Int, "4096", "The maximum size for a metadata entry associated with an offset commit."),
    defv("transaction.state.log.num.partitions", None, ConfigType::Int, "50", Valid::AtLeast(1), "The number of partitions for the transaction topic."),
    defv("transaction.state.log.segment.bytes", None, ConfigType::Int, "104857600", Valid::AtLeast(1), "The transaction topic segment bytes."),
    defv("transaction.state.log.replication.factor", None, ConfigType::Short, "3", Valid::AtLeast(1), "The replication factor for the transaction topic. Vltava creates it with this many replicas, or as many as there are brokers if fewer."),
    defv("transaction.state.log.min.isr", None, ConfigType::Int, "2", Valid::AtLeast(1), "The minimum number of replicas that must acknowledge a write to transaction topic in order to be considered successful (at most its replication factor)."),
    defv("transaction.max.timeout.ms", None, ConfigType::Int, "900000", Valid::AtLeast(1), "The maximum allowed timeout for transactions."),
    defv("transaction.abort.timed.out.transaction.cleanup.interval.ms", None, ConfigType::Int, "10000", Valid::AtLeast(1), "The interval at which to rollback transactions that have timed out."),
    defv("transactional.id.expiration.ms", None, ConfigType::Int, "604800000", Valid::AtLeast(1), "The time in ms that the transaction coordinator will wait without receiving any transaction status updates for the current transaction before expiring its transactional id."),
    defv("transaction.remove.expired.transaction.cleanup.interval.ms", None, ConfigType::Int, "3600000", Valid::AtLeast(1), "The interval at which to remove transactions that have expired due to transactional.id.expiration.ms passing."),
];

const fn def(
    name: &'static str,
    topic_name: Option<&'static str>,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> ConfigDef {
    defv(name, topic_name, kind, default, Valid::Any, doc)
}

const fn defv(
    name: &'static str,
    topic_name: Option<&'static str>,
    kind: ConfigType,
    default: &'static str,
    valid: Valid,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        topic_name,
        kind,
        default,
        valid,
        doc,
        broker_level: true,
    }
}

/// A topic config with no broker-level synonym.
const fn topic_only(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    valid: Valid,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        topic_name: Some(name),
        kind,
        default,
        valid,
        doc,
        broker_level: false,
    }
}

/// Finds a broker-level config by its Kafka name.
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    CONFIG_DEFS
        .iter()
        .find(|d| d.broker_level && d.name == name)
}

/// Finds a topic-level config by its Kafka name.
pub fn topic_def(name: &str) -> Option<&'static ConfigDef> {
    CONFIG_DEFS.iter().find(|d| d.topic_name == Some(name))
}

/// A config value that does not parse or is out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("Unknown config name: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Checks that `value` is well-formed for `def`: its type, then its range
/// or allowed values, with a message naming the key and the problem.
pub fn validate(def: &ConfigDef, name: &str, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    let v = value.trim();
    let number: Option<i128> = match def.kind {
        ConfigType::Boolean => {
            return match (v.to_ascii_lowercase().as_str(), def.valid) {
                ("true", Valid::NotTrue(why)) => Err(invalid(why.into())),
                ("true" | "false", _) => Ok(()),
                _ => Err(invalid("Expected value to be either true or false".into())),
            }
        }
        ConfigType::Int => Some(
            v.parse::<i32>()
                .map_err(|_| invalid("Not a number of type INT".into()))?
                .into(),
        ),
        ConfigType::Short => Some(
            v.parse::<i16>()
                .map_err(|_| invalid("Not a number of type SHORT".into()))?
                .into(),
        ),
        ConfigType::Long => Some(
            v.parse::<i64>()
                .map_err(|_| invalid("Not a number of type LONG".into()))?
                .into(),
        ),
        ConfigType::Double => {
            let d = v
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .ok_or_else(|| invalid("Not a number of type DOUBLE".into()))?;
            if let Valid::Between(min, max) = def.valid {
                if !(min..=max).contains(&d) {
                    return Err(invalid(format!(
                        "Value must be in the range [{min}, {max}]"
                    )));
                }
            }
            return Ok(());
        }
        ConfigType::String | ConfigType::List | ConfigType::Class => None,
    };
    match (def.valid, number) {
        (Valid::AtLeast(min), Some(n)) if n < i128::from(min) => {
            Err(invalid(format!("Value must be at least {min}")))
        }
        (Valid::Between(min, max), Some(n)) if !(min..=max).contains(&(n as f64)) => Err(invalid(
            format!("Value must be in the range [{min}, {max}]"),
        )),
        (Valid::Class(known), _) if !v.is_empty() && !known.contains(&v) => Err(invalid(format!(
            "Class {v} cannot be found: Vltava runs no Java plugins; it implements {}",
            known.join(" and ")
        ))),
        (Valid::OneOf(allowed), _) if !allowed.contains(&v) => Err(invalid(format!(
            "String must be one of: {}",
            allowed.join(", ")
        ))),
        (Valid::ListOf(allowed), _) => {
            match v.split(',').map(str::trim).find(|p| !allowed.contains(p)) {
                Some(bad) => Err(invalid(format!(
                    "{bad:?} is not one of: {}",
                    allowed.join(", ")
                ))),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Kafka's `ReplicaSelector` implementations Vltava has (`replica.selector.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Consumers fetch from the leader (the default, and `LeaderSelector`).
    Leader,
    /// `RackAwareReplicaSelector`: a consumer whose `client.rack` holds a
    /// caught-up replica is sent there.
    RackAware,
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
    /// Values set at runtime with (Incremental)AlterConfigs on the BROKER
    /// resource; they win over `overrides`.
    pub dynamic: DynamicBrokerConfig,
}

/// The dynamic layers of the broker's config, Kafka's
/// `DYNAMIC_BROKER_CONFIG` (this node) and `DYNAMIC_DEFAULT_BROKER_CONFIG`
/// (the cluster-wide default, resource name "").
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DynamicBrokerConfig {
    #[serde(default)]
    pub per_broker: BTreeMap<String, String>,
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
}

/// Broker configs Kafka lets AlterConfigs change at runtime ("Update Mode:
/// cluster-wide / per-broker") that Vltava acts on at runtime too: every
/// broker-level synonym of a topic config (Kafka's `DynamicLogConfig`), the
/// cleaner's limits and producer-id expiration. Every other known broker
/// config is read-only.
pub fn is_dynamic(def: &ConfigDef) -> bool {
    def.broker_level
        && (def.topic_name.is_some()
            || matches!(
                def.name,
                "log.cleaner.dedupe.buffer.size"
                    | "log.cleaner.io.max.bytes.per.second"
                    | "producer.id.expiration.ms"
            ))
}

impl BrokerConfig {
    /// The effective string value of a broker-level key: dynamic, explicit
    /// or default.
    pub fn value(&self, name: &str) -> Option<String> {
        broker_def(name).map(|d| self.resolve(d).0)
    }

    /// A broker-level key's value with where it came from, by Kafka's
    /// precedence: per-broker dynamic, cluster-default dynamic, static, default.
    pub fn resolve(&self, def: &ConfigDef) -> (String, ConfigSource) {
        self.synonyms(def)
            .into_iter()
            .next()
            .map(|(v, s)| (v.to_string(), s))
            .unwrap_or_else(|| (def.default.to_string(), ConfigSource::Default))
    }

    /// Every layer that sets a broker-level key, in precedence order (Kafka's
    /// synonyms), ending with the default.
    pub fn synonyms<'a>(&'a self, def: &'a ConfigDef) -> Vec<(&'a str, ConfigSource)> {
        let layers = [
            (&self.dynamic.per_broker, ConfigSource::DynamicBroker),
            (
                &self.dynamic.cluster_default,
                ConfigSource::DynamicDefaultBroker,
            ),
            (&self.overrides, ConfigSource::StaticBroker),
        ];
        let mut out: Vec<(&str, ConfigSource)> = layers
            .into_iter()
            .filter_map(|(map, source)| Some((map.get(def.name)?.as_str(), source)))
            .collect();
        out.push((def.default, ConfigSource::Default));
        out
    }

    fn int<T: std::str::FromStr>(&self, name: &str, fallback: T) -> T {
        self.value(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    }

    /// `broker.rack`, when set.
    pub fn rack(&self) -> Option<String> {
        self.value("broker.rack").filter(|r| !r.is_empty())
    }

    pub fn node_id(&self) -> i32 {
        self.int("node.id", 1)
    }

    /// `process.roles` as (broker, controller); both by default.
    pub fn roles(&self) -> Result<(bool, bool), String> {
        let value = self.value("process.roles").unwrap_or_default();
        let (mut broker, mut controller) = (false, false);
        for role in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match role.to_ascii_lowercase().as_str() {
                "broker" => broker = true,
                "controller" => controller = true,
                _ => {
                    return Err(format!(
                        "unknown role {role:?}: give broker, controller or both"
                    ))
                }
            }
        }
        if !broker && !controller {
            return Err("give broker, controller or both".into());
        }
        Ok((broker, controller))
    }

    /// `controller.quorum.voters` as (node id, `host:port`); empty when unset
    /// (this node is then the only voter). Checked by `validate`, with the
    /// roles: a controller is one of the voters, a broker-only node is not.
    pub fn voters(&self) -> Result<BTreeMap<i32, String>, String> {
        let value = self.value("controller.quorum.voters").unwrap_or_default();
        let mut voters = BTreeMap::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('@').and_then(|(id, addr)| {
                let id = id.trim().parse::<i32>().ok().filter(|id| *id >= 0)?;
                let (host, port) = addr.trim().rsplit_once(':')?;
                port.parse::<u16>().ok().filter(|_| !host.is_empty())?;
                Some((id, addr.trim().to_string()))
            });
            let Some((id, addr)) = parsed else {
                return Err(format!("{entry:?} is not ID@HOST:PORT"));
            };
            if voters.insert(id, addr).is_some() {
                return Err(format!("node {id} is named twice"));
            }
        }
        let (broker, controller) = self.roles().unwrap_or((true, true));
        let id = self.node_id();
        if voters.is_empty() && !(broker && controller) {
            return Err("a broker-only or controller-only node needs the voters".into());
        }
        if !voters.is_empty() && controller && !voters.contains_key(&id) {
            return Err(format!(
                "node.id={id} is not among the voters; a controller must be one"
            ));
        }
        if !controller && voters.contains_key(&id) {
            return Err(format!(
                "node.id={id} is among the voters, but process.roles=broker has no controller"
            ));
        }
        Ok(voters)
    }
    /// Kafka's `controller.quorum.election.timeout.ms`.
    pub fn election_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("controller.quorum.election.timeout.ms", 1000))
    }
    /// Kafka's `broker.session.timeout.ms`: a broker silent this long is fenced.
    pub fn broker_session_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("broker.session.timeout.ms", 9000))
    }
    /// `leader.imbalance.check.interval.seconds` while
    /// `auto.leader.rebalance.enable`; `None` when it is off.
    pub fn leader_rebalance_interval(&self) -> Option<std::time::Duration> {
        let enabled = self
            .value("auto.leader.rebalance.enable")
            .is_none_or(|v| v.trim().eq_ignore_ascii_case("true"));
        enabled.then(|| {
            std::time::Duration::from_secs(self.int("leader.imbalance.check.interval.seconds", 300))
        })
    }
    /// `unclean.leader.election.enable`: the default for topics that set nothing.
    pub fn unclean_leader_election(&self) -> bool {
        self.value("unclean.leader.election.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }
    /// `replica.lag.time.max.ms`, in ms.
    pub fn replica_lag_time_max_ms(&self) -> i64 {
        self.int("replica.lag.time.max.ms", 30_000)
    }
    /// `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
    /// `replica.fetch.response.max.bytes`, `replica.fetch.max.bytes`,
    /// `replica.fetch.backoff.ms`, by name.
    pub fn replica_fetch_setting(&self, name: &str, fallback: i64) -> i64 {
        self.int(name, fallback)
    }
    /// Kafka's `broker.heartbeat.interval.ms`.
    pub fn broker_heartbeat_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("broker.heartbeat.interval.ms", 2000))
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
    /// `socket.send.buffer.bytes` when set explicitly and not -1: the
    /// SO_SNDBUF to give each connection (else the kernel autotunes it).
    pub fn socket_send_buffer(&self) -> Option<usize> {
        let v = self.overrides.get("socket.send.buffer.bytes")?;
        usize::try_from(v.trim().parse::<i64>().ok()?).ok()
    }
    /// Bytes of responses a connection may hold unsent before its next
    /// request is read: `socket.send.buffer.bytes`, or its default for -1.
    pub fn max_unsent_bytes(&self) -> usize {
        usize::try_from(self.int::<i64>("socket.send.buffer.bytes", 102_400)).unwrap_or(102_400)
    }
    /// `connections.max.idle.ms`; `None` when disabled (-1).
    pub fn connections_max_idle(&self) -> Option<std::time::Duration> {
        let ms = self.int::<i64>("connections.max.idle.ms", 600_000);
        u64::try_from(ms).ok().map(std::time::Duration::from_millis)
    }
    /// `replica.selector.class`: how a leader picks the replica a consumer
    /// should fetch from (KIP-392); unset, the leader.
    pub fn replica_selector(&self) -> ReplicaSelector {
        match self
            .value("replica.selector.class")
            .as_deref()
            .map(str::trim)
        {
            Some(RACK_AWARE_REPLICA_SELECTOR) => ReplicaSelector::RackAware,
            _ => ReplicaSelector::Leader,
        }
    }
    pub fn fetch_max_bytes(&self) -> usize {
        self.int("fetch.max.bytes", 57_671_680)
    }
    pub fn retention_check_interval_ms(&self) -> u64 {
        self.int("log.retention.check.interval.ms", 300_000)
    }
    pub fn producer_id_expiration_ms(&self) -> i64 {
        self.int("producer.id.expiration.ms", 86_400_000)
    }
    pub fn cleaner_enabled(&self) -> bool {
        self.value("log.cleaner.enable").as_deref() != Some("false")
    }
    pub fn cleaner_backoff_ms(&self) -> u64 {
        self.int("log.cleaner.backoff.ms", 15_000)
    }
    /// The cleaner's memory and I/O limits.
    pub fn cleaner_limits(&self) -> crate::log::cleaner::CleanerLimits {
        crate::log::cleaner::CleanerLimits {
            dedupe_buffer_bytes: self.int("log.cleaner.dedupe.buffer.size", 134_217_728),
            io_bytes_per_second: self.int("log.cleaner.io.max.bytes.per.second", f64::MAX),
        }
    }
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.int("log.flush.offset.checkpoint.interval.ms", 60_000)
    }

    /// The group coordinator's settings (`group.*`, `offsets.*`).
    pub fn coordinator(&self) -> crate::group::coordinator::CoordinatorConfig {
        use crate::group::classic::GroupConfig;
        crate::group::coordinator::CoordinatorConfig {
            group: GroupConfig {
                // 0, the value in Kafka's shipped server.properties (its code
                // default is 3000): a group's first consumer gets its
                // partitions at once, as in every Kafka quickstart.
                initial_rebalance_delay_ms: self.int("group.initial.rebalance.delay.ms", 0),
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

    /// The transaction coordinator's settings (`transaction.*`).
    pub fn transactions(&self) -> crate::txn::TxnConfig {
        crate::txn::TxnConfig {
            max_timeout_ms: self.int("transaction.max.timeout.ms", 900_000),
            abort_timed_out_interval_ms: self.int(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            ),
            id_expiration_ms: self.int("transactional.id.expiration.ms", 604_800_000),
            remove_expired_interval_ms: self.int(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
            ),
        }
    }

    pub fn transaction_state_partitions(&self) -> i32 {
        self.int("transaction.state.log.num.partitions", 50)
    }

    /// Checks every explicit setting: known key, well-formed value, and a
    /// value that asks for nothing a one-node Vltava does not do.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.overrides {
            let def = broker_def(name).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
            validate(def, name, value)?;
            if let Some(reason) = not_honoured(name, value) {
                return Err(ConfigError::Invalid {
                    name: name.clone(),
                    value: value.clone(),
                    reason: reason.into(),
                });
            }
        }
        if let Err(reason) = self.roles() {
            return Err(ConfigError::Invalid {
                name: "process.roles".into(),
                value: self.value("process.roles").unwrap_or_default(),
                reason,
            });
        }
        if let Err(reason) = self.voters() {
            return Err(ConfigError::Invalid {
                name: "controller.quorum.voters".into(),
                value: self.value("controller.quorum.voters").unwrap_or_default(),
                reason,
            });
        }
        Ok(())
    }
}

/// Why a dynamic broker config change is refused: Kafka's error code and
/// message for each case.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DynamicConfigError {
    /// A known key Kafka marks read-only (INVALID_REQUEST).
    #[error("Cannot update these configs dynamically: [{}]", .0.join(", "))]
    ReadOnly(Vec<String>),
    /// A key Vltava does not know (INVALID_CONFIG; Kafka stores unknown
    /// broker keys for plugins, Vltava has none).
    #[error("Unknown broker config name: {0}")]
    Unknown(String),
    /// A malformed or out-of-range value, or one Vltava cannot honour
    /// (INVALID_REQUEST, as Kafka reports broker config validation).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Checks a whole set of dynamic broker values: every key known and
/// dynamic (the read-only ones named together, in order), every value valid.
pub fn validate_dynamic<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<(), DynamicConfigError> {
    let mut read_only = Vec::new();
    for (name, _) in pairs.clone() {
        match broker_def(name) {
            None => return Err(DynamicConfigError::Unknown(name.to_string())),
            Some(def) if !is_dynamic(def) => read_only.push(name.to_string()),
            Some(_) => {}
        }
    }
    if !read_only.is_empty() {
        return Err(DynamicConfigError::ReadOnly(read_only));
    }
    for (name, value) in pairs {
        if let Some(def) = broker_def(name) {
            validate(def, name, value)?;
        }
        if let Some(reason) = not_honoured(name, value) {
            return Err(ConfigError::Invalid {
                name: name.to_string(),
                value: value.to_string(),
                reason: reason.into(),
            }
            .into());
        }
    }
    Ok(())
}

/// A group's configs (KIP-848, resource type GROUP): each key with the
/// broker config that gives its default and the broker configs that bound it.
pub const GROUP_CONFIGS: &[(&str, &str, &str, &str)] = &[
    (
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
    ),
    (
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
    ),
];

/// Checks one group config value against the broker's bounds, with Kafka's
/// messages (all INVALID_CONFIG).
pub fn validate_group_config(
    name: &str,
    value: &str,
    broker: &BrokerConfig,
) -> Result<i32, String> {
    let Some(&(_, _, min, max)) = GROUP_CONFIGS.iter().find(|g| g.0 == name) else {
        return Err(format!("Unknown group config name: {name}"));
    };
    let n: i32 = value.trim().parse().map_err(|_| {
        format!("Invalid value {value} for configuration {name}: Not a number of type INT")
    })?;
    let (min, max): (i32, i32) = (broker.int(min, 0), broker.int(max, i32::MAX));
    if !(min..=max).contains(&n) {
        return Err(format!(
            "{name} must be in the range {min} to {max} inclusive."
        ));
    }
    Ok(n)
}

/// Why a broker-level `value` of `name` cannot be honoured, if it cannot:
/// such settings stop the start instead of being quietly not applied.
pub fn not_honoured(name: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    match name {
        "log.flush.interval.messages" | "log.flush.interval.ms" if v != LONG_MAX => Some(
            "Vltava does not fsync by message count or timer; under --durability fsync \
             (the default) every acks=all write is fsynced before it is acknowledged",
        ),
        _ => None,
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
        broker.resolve(def)
    }

    /// `min.insync.replicas`: how many in-sync replicas an `acks=all`
    /// write needs.
    pub fn min_insync_replicas(&self, broker: &BrokerConfig) -> usize {
        broker_def("min.insync.replicas")
            .and_then(|d| self.resolve(d, broker).0.trim().parse().ok())
            .unwrap_or(1)
    }

    /// The log layer's settings for a partition of this topic.
    pub fn log_config(&self, broker: &BrokerConfig) -> LogConfig {
        let get = |name: &str| {
            broker_def(name)
                .map(|d| self.resolve(d, broker).0)
                .unwrap_or_default()
        };
        let d = LogConfig::default();
        let policy = get("log.cleanup.policy");
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        LogConfig {
            segment_bytes: get("log.segment.bytes").parse().unwrap_or(d.segment_bytes),
            segment_ms: get("log.roll.ms").parse().unwrap_or(d.segment_ms),
            index_interval_bytes: get("log.index.interval.bytes")
                .parse()
                .unwrap_or(d.index_interval_bytes),
            segment_index_bytes: get("log.index.size.max.bytes")
                .parse()
                .unwrap_or(d.segment_index_bytes),
            timestamp_type: if get("log.message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            max_message_bytes: get("message.max.bytes")
                .parse()
                .unwrap_or(d.max_message_bytes),
            timestamp_before_max_ms: get("log.message.timestamp.before.max.ms")
                .parse()
                .unwrap_or(d.timestamp_before_max_ms),
            timestamp_after_max_ms: get("log.message.timestamp.after.max.ms")
                .parse()
                .unwrap_or(d.timestamp_after_max_ms),
            retention_ms: get("log.retention.ms").parse().unwrap_or(d.retention_ms),
            retention_bytes: get("log.retention.bytes")
                .parse()
                .unwrap_or(d.retention_bytes),
            delete: policies.contains(&"delete"),
            compact: policies.contains(&"compact"),
            min_cleanable_ratio: get("log.cleaner.min.cleanable.ratio")
                .parse()
                .unwrap_or(d.min_cleanable_ratio),
            min_compaction_lag_ms: get("log.cleaner.min.compaction.lag.ms")
                .parse()
                .unwrap_or(d.min_compaction_lag_ms),
            max_compaction_lag_ms: get("log.cleaner.max.compaction.lag.ms")
                .parse()
                .unwrap_or(d.max_compaction_lag_ms),
            delete_retention_ms: get("log.cleaner.delete.retention.ms")
                .parse()
                .unwrap_or(d.delete_retention_ms),
            compression: Codec::parse(&get("compression.type")),
        }
    }
}

/// Where a config value came from, with DescribeConfigs' source codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    Group = 8,
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
            dynamic: DynamicBrokerConfig::default(),
        }
    }

    #[test]
    fn replica_selector_takes_kafkas_two_classes_and_refuses_any_other() {
        assert_eq!(broker(&[]).replica_selector(), ReplicaSelector::Leader);
        let rack_aware = broker(&[("replica.selector.class", RACK_AWARE_REPLICA_SELECTOR)]);
        assert_eq!(rack_aware.validate(), Ok(()));
        assert_eq!(rack_aware.replica_selector(), ReplicaSelector::RackAware);
        let leader = broker(&[("replica.selector.class", LEADER_SELECTOR)]);
        assert_eq!(leader.validate(), Ok(()));
        assert_eq!(leader.replica_selector(), ReplicaSelector::Leader);
        let custom = broker(&[("replica.selector.class", "com.example.NearestSelector")]);
        assert_eq!(
            custom.validate().unwrap_err().to_string(),
            "Invalid value com.example.NearestSelector for configuration replica.selector.class: \
             Class com.example.NearestSelector cannot be found: Vltava runs no Java plugins; \
             it implements org.apache.kafka.common.replica.LeaderSelector and \
             org.apache.kafka.common.replica.RackAwareReplicaSelector"
        );
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
    fn dynamic_values_win_per_broker_then_cluster_default_then_static() {
        let mut b = broker(&[("log.retention.ms", "1000")]);
        let def = broker_def("log.retention.ms").unwrap();
        b.dynamic
            .cluster_default
            .insert("log.retention.ms".into(), "2000".into());
        assert_eq!(
            TopicConfig::default().resolve(def, &b),
            ("2000".into(), ConfigSource::DynamicDefaultBroker)
        );
        b.dynamic
            .per_broker
            .insert("log.retention.ms".into(), "3000".into());
        assert_eq!(
            b.synonyms(def),
            vec![
                ("3000", ConfigSource::DynamicBroker),
                ("2000", ConfigSource::DynamicDefaultBroker),
                ("1000", ConfigSource::StaticBroker),
                ("604800000", ConfigSource::Default),
            ]
        );
        assert_eq!(TopicConfig::default().log_config(&b).retention_ms, 3000);
        assert_eq!(b.value("log.retention.ms").as_deref(), Some("3000"));
    }

    #[test]
    fn only_dynamic_keys_with_valid_values_may_change_at_runtime() {
        assert_eq!(
            validate_dynamic([("log.segment.bytes", "4096"), ("compression.type", "zstd")]),
            Ok(())
        );
        assert_eq!(
            validate_dynamic([
                ("node.id", "2"),
                ("log.retention.ms", "1"),
                ("num.partitions", "3")
            ])
            .map_err(|e| e.to_string()),
            Err("Cannot update these configs dynamically: [node.id, num.partitions]".into())
        );
        assert_eq!(
            validate_dynamic([("no.such", "1")]),
            Err(DynamicConfigError::Unknown("no.such".into()))
        );
        assert!(matches!(
            validate_dynamic([("min.insync.replicas", "0")]),
            Err(DynamicConfigError::Invalid(_))
        ));
        let b = broker(&[]);
        assert_eq!(
            validate_group_config("consumer.session.timeout.ms", "60000", &b),
            Ok(60000)
        );
        assert_eq!(
            validate_group_config("consumer.session.timeout.ms", "60001", &b),
            Err(
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.".into()
            )
        );
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
        assert_eq!(
            b.connections_max_idle(),
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(b.max_unsent_bytes(), 102_400);
        assert_eq!(b.socket_send_buffer(), None);
        assert_eq!(b.fetch_max_bytes(), 57_671_680);
        let set = broker(&[
            ("connections.max.idle.ms", "-1"),
            ("socket.send.buffer.bytes", "-1"),
        ]);
        assert_eq!(set.validate(), Ok(()));
        assert_eq!(set.connections_max_idle(), None);
        assert_eq!(set.max_unsent_bytes(), 102_400);
        assert_eq!(set.socket_send_buffer(), None);
        let set = broker(&[("socket.send.buffer.bytes", "65536")]);
        assert_eq!(set.socket_send_buffer(), Some(65536));
        assert_eq!(set.max_unsent_bytes(), 65536);
        assert!(broker(&[("fetch.max.bytes", "1000")]).validate().is_err());
        assert!(!broker(&[("auto.create.topics.enable", "false")]).auto_create_topics());
        assert!(broker(&[("num.partitions", "x")]).validate().is_err());
        assert!(broker(&[("no.such", "x")]).validate().is_err());
    }

    #[test]
    fn the_voters_are_read_from_kafkas_list() {
        let voters = "1@127.0.0.1:9093, 2@localhost:9094,3@[::1]:9095";
        let b = broker(&[("controller.quorum.voters", voters), ("node.id", "2")]);
        assert_eq!(b.validate(), Ok(()));
        assert_eq!(
            b.voters().unwrap(),
            BTreeMap::from([
                (1, "127.0.0.1:9093".to_string()),
                (2, "localhost:9094".to_string()),
                (3, "[::1]:9095".to_string()),
            ])
        );
        assert_eq!(broker(&[]).voters().unwrap(), BTreeMap::new());
        // Separate roles: controllers are the voters, brokers are not.
        let voters = "1@h:1,2@h:2,3@h:3";
        let node = |roles: &str, id: &str| {
            broker(&[
                ("controller.quorum.voters", voters),
                ("process.roles", roles),
                ("node.id", id),
            ])
        };
        assert_eq!(node("controller", "2").validate(), Ok(()));
        assert_eq!(node("broker", "4").validate(), Ok(()));
        assert_eq!(node("broker", "4").roles(), Ok((true, false)));
        assert_eq!(
            node("broker", "2").voters().unwrap_err(),
            "node.id=2 is among the voters, but process.roles=broker has no controller"
        );
        assert!(node("controller", "4").validate().is_err());
        assert!(broker(&[("process.roles", "broker")]).validate().is_err());
        for (voters, why) in [
            ("1@h:1,2@h", "\"2@h\" is not ID@HOST:PORT"),
            ("1@h:1,x@h:2", "\"x@h:2\" is not ID@HOST:PORT"),
            ("1@h:1,1@h:2", "node 1 is named twice"),
            (
                "2@h:1,3@h:2",
                "node.id=1 is not among the voters; a controller must be one",
            ),
        ] {
            let b = broker(&[("controller.quorum.voters", voters)]);
            assert_eq!(b.voters().unwrap_err(), why);
            assert!(b.validate().is_err());
        }
    }

    #[test]
    fn broker_values_vltava_cannot_honour_are_refused_with_the_key_named() {
        for (k, v) in [
            ("process.roles", "worker"),
            ("log.flush.interval.messages", "1"),
            ("log.flush.interval.ms", "1000"),
        ] {
            let err = broker(&[(k, v)]).validate().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("Invalid value {v} for configuration {k}: ")),
                "{err}"
            );
        }
        for (k, v) in [
            ("min.insync.replicas", "2"),
            ("default.replication.factor", "3"),
            ("log.flush.interval.messages", LONG_MAX),
            ("unclean.leader.election.enable", "true"),
            ("log.preallocate", "true"),
            ("process.roles", "controller, broker"),
        ] {
            assert_eq!(broker(&[(k, v)]).validate(), Ok(()), "{k}={v}");
        }
    }

    #[test]
    fn every_kafka_topic_config_name_is_known_with_its_default() {
        let names: Vec<(&str, &str)> = CONFIG_DEFS
            .iter()
            .filter_map(|d| Some((d.topic_name?, d.default)))
            .collect();
        for want in [
            ("cleanup.policy", "delete"),
            ("compression.gzip.level", "-1"),
            ("compression.lz4.level", "9"),
            ("compression.type", "producer"),
            ("compression.zstd.level", "3"),
            ("delete.retention.ms", "86400000"),
            ("file.delete.delay.ms", "60000"),
            ("flush.messages", LONG_MAX),
            ("flush.ms", LONG_MAX),
            ("follower.replication.throttled.replicas", ""),
            ("index.interval.bytes", "4096"),
            ("leader.replication.throttled.replicas", ""),
            ("local.retention.bytes", "-2"),
            ("local.retention.ms", "-2"),
            ("max.compaction.lag.ms", LONG_MAX),
            ("max.message.bytes", "1048588"),
            ("message.downconversion.enable", "true"),
            ("message.timestamp.after.max.ms", "3600000"),
            ("message.timestamp.before.max.ms", LONG_MAX),
            ("message.timestamp.type", "CreateTime"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("min.compaction.lag.ms", "0"),
            ("min.insync.replicas", "1"),
            ("preallocate", "false"),
            ("remote.log.copy.disable", "false"),
            ("remote.log.delete.on.disable", "false"),
            ("remote.storage.enable", "false"),
            ("retention.bytes", "-1"),
            ("retention.ms", "604800000"),
            ("segment.bytes", "1073741824"),
            ("segment.index.bytes", "10485760"),
            ("segment.jitter.ms", "0"),
            ("segment.ms", "604800000"),
            ("unclean.leader.election.enable", "false"),
            ("remote.copy.lag.ms", "0"),
            ("remote.copy.lag.bytes", "-1"),
            ("max.decompressed.message.bytes", "2147483639"),
            ("errors.deadletterqueue.group.enable", "false"),
        ] {
            assert!(names.contains(&want), "missing {want:?}");
        }
        assert_eq!(names.len(), 38, "{names:?}");
        // Topic-only names are no broker settings.
        assert!(broker_def("remote.storage.enable").is_none());
        assert!(topic_def("remote.storage.enable").is_some());
    }

    #[test]
    fn topic_configs_without_the_mechanism_refuse_what_they_cannot_do() {
        let err = TopicConfig::from_pairs([("remote.storage.enable", "true")]).unwrap_err();
        assert!(err.to_string().contains("Tiered Storage"), "{err}");
        assert!(TopicConfig::from_pairs([("remote.storage.enable", "false")]).is_ok());
        assert!(TopicConfig::from_pairs([("compression.gzip.level", "10")]).is_err());
        assert!(TopicConfig::from_pairs([("compression.zstd.level", "-5")]).is_ok());
        assert!(
            TopicConfig::from_pairs([("flush.messages", "1"), ("preallocate", "true")]).is_ok()
        );
    }

    #[test]
    fn initial_rebalance_delay_is_the_shipped_server_properties_value() {
        let delay = |b: BrokerConfig| b.coordinator().group.initial_rebalance_delay_ms;
        assert_eq!(delay(broker(&[])), 0);
        assert_eq!(
            delay(broker(&[("group.initial.rebalance.delay.ms", "3000")])),
            3000
        );
    }
}
