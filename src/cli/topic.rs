//! `vltava topic`: create, list, describe, delete, add partitions, alter
//! configs — kafka-topics.sh and kafka-configs.sh for topics, through
//! librdkafka's AdminClient — and reassign, reassignments, elect-leaders
//! (`reassign.rs`).

use anyhow::{bail, Context};
use clap::Subcommand;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use super::{
    is_internal, key_values, print_json, runtime, table, ClientArgs, FormatArgs, OutputFormat,
};

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    ///
    /// Examples:
    ///   vltava topic create orders
    ///   vltava topic create orders -p 6 -c retention.ms=86400000 -c segment.bytes=104857600
    #[command(verbatim_doc_comment)]
    Create {
        name: String,
        /// Number of partitions [default: the broker's num.partitions]
        #[arg(short, long)]
        partitions: Option<i32>,
        /// Replication factor [default: the broker's default.replication.factor]
        #[arg(short, long)]
        replication_factor: Option<i32>,
        /// A topic config, KEY=VALUE (repeatable)
        #[arg(short, long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List topics with their partition counts.
    ///
    /// Examples:
    ///   vltava topic list
    ///   vltava topic list --internal --format json
    #[command(verbatim_doc_comment)]
    List {
        /// Include internal topics (__consumer_offsets, __transaction_state, __share_group_state)
        #[arg(long)]
        internal: bool,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a topic's partitions (leader, leader epoch, replicas, ISR,
    /// offsets) and its configs.
    ///
    /// Examples:
    ///   vltava topic describe orders
    ///   vltava topic describe orders --format json
    #[command(verbatim_doc_comment)]
    Describe {
        name: String,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete topics.
    ///
    /// Example:
    ///   vltava topic delete orders payments
    #[command(verbatim_doc_comment)]
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Raise a topic's partition count to COUNT.
    ///
    /// Example:
    ///   vltava topic add-partitions orders 12
    #[command(verbatim_doc_comment)]
    AddPartitions {
        name: String,
        /// The new total number of partitions
        count: usize,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set or remove topic configs (keeps the other overrides).
    ///
    /// Examples:
    ///   vltava topic alter-config orders --set retention.ms=3600000
    ///   vltava topic alter-config orders --delete retention.ms
    #[command(verbatim_doc_comment)]
    AlterConfig {
        name: String,
        /// A config to set, KEY=VALUE (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A config override to remove (repeatable)
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move partitions' replicas to other brokers (the first listed leads).
    ///
    /// New replicas copy the partition from its leader; the old ones are
    /// dropped once every new one is in sync. Producers and consumers carry on.
    ///
    /// Examples:
    ///   vltava topic reassign orders 0=4,2,3 1=2,3,4 --wait
    ///   vltava topic reassign orders 0 --cancel
    #[command(verbatim_doc_comment)]
    Reassign {
        topic: String,
        /// PARTITION=BROKER,BROKER... (or PARTITION with --cancel)
        #[arg(required = true, value_name = "PARTITION=REPLICAS")]
        moves: Vec<String>,
        /// Cancel the partitions' reassignments: back to their old replicas
        #[arg(long)]
        cancel: bool,
        /// Return once the reassignments are complete (within --timeout-ms)
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the partition reassignments in progress.
    ///
    /// Examples:
    ///   vltava topic reassignments
    ///   vltava topic reassignments orders --format json
    #[command(verbatim_doc_comment)]
    Reassignments {
        topic: Option<String>,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Hand leadership back to each partition's preferred (first) replica.
    ///
    /// Examples:
    ///   vltava topic elect-leaders             # every topic
    ///   vltava topic elect-leaders orders
    ///   vltava topic elect-leaders orders --unclean   # a leader for partitions without one, even outside the ISR (may lose records)
    #[command(verbatim_doc_comment)]
    ElectLeaders {
        topics: Vec<String>,
        /// An unclean election: only for partitions without a leader
        #[arg(long)]
        unclean: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn admin(client: &ClientArgs) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(client.client_config()?.create()?)
}

fn opts(client: &ClientArgs) -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(client.timeout()))
}

pub fn run(cmd: TopicCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            client,
        } => {
            let configs = key_values(&configs, "--config")?;
            let mut topic = NewTopic::new(
                &name,
                partitions.unwrap_or(-1),
                TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
            );
            for (k, v) in &configs {
                topic = topic.set(k, v);
            }
            let results = rt.block_on(admin(&client)?.create_topics([&topic], &opts(&client)))?;
            for r in results {
                r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
            }
            println!("Created topic {name}.");
        }
        TopicCommand::List {
            internal,
            format,
            client,
        } => {
            let consumer: BaseConsumer = client.client_config()?.create()?;
            let md = consumer.fetch_metadata(None, client.timeout())?;
            let mut topics: Vec<(String, usize, usize)> = md
                .topics()
                .iter()
                .filter(|t| internal || !is_internal(t.name()))
                .map(|t| {
                    let replicas = t.partitions().first().map_or(0, |p| p.replicas().len());
                    (t.name().to_string(), t.partitions().len(), replicas)
                })
                .collect();
            topics.sort();
            match format.format {
                OutputFormat::Json => print_json(&json!(topics
                    .iter()
                    .map(|(n, p, r)| json!({"name": n, "partitions": p, "replication_factor": r}))
                    .collect::<Vec<_>>()))?,
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = topics
                        .iter()
                        .map(|(n, p, r)| vec![n.clone(), p.to_string(), r.to_string()])
                        .collect();
                    print!("{}", table(&["TOPIC", "PARTITIONS", "REPLICAS"], &rows));
                }
            }
        }
        TopicCommand::Describe {
            name,
            format,
            client,
        } => describe(&rt, &name, format.format, &client)?,
        TopicCommand::Delete { names, client } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let results = rt.block_on(admin(&client)?.delete_topics(&refs, &opts(&client)))?;
            for r in results {
                let t = r.map_err(|(t, e)| anyhow::anyhow!("deleting topic {t}: {e}"))?;
                println!("Deleted topic {t}.");
            }
        }
        TopicCommand::AddPartitions {
            name,
            count,
            client,
        } => {
            let np = NewPartitions::new(&name, count);
            let results = rt.block_on(admin(&client)?.create_partitions([&np], &opts(&client)))?;
            for r in results {
                r.map_err(|(t, e)| anyhow::anyhow!("adding partitions to {t}: {e}"))?;
            }
            println!("Topic {name} now has {count} partitions.");
        }
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            client,
        } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            let set = key_values(&set, "--set")?;
            let admin = admin(&client)?;
            // AlterConfigs replaces every override: start from the current ones.
            let mut values: Vec<(String, String)> = topic_overrides(&rt, &admin, &name, &client)?
                .into_iter()
                .filter(|(k, _)| !delete.contains(k) && !set.iter().any(|(s, _)| s == k))
                .collect();
            values.extend(set);
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&name));
            for (k, v) in &values {
                alter = alter.set(k, v);
            }
            let results = rt.block_on(admin.alter_configs([&alter], &opts(&client)))?;
            for r in results {
                r.map_err(|(_, e)| anyhow::anyhow!("altering configs of {name}: {e}"))?;
            }
            // librdkafka does not surface a per-resource AlterConfigs error
            // (such as INVALID_CONFIG), so read the overrides back and check.
            let now = topic_overrides(&rt, &admin, &name, &client)?;
            let expected: std::collections::BTreeMap<String, String> = values.into_iter().collect();
            if now != expected {
                bail!(
                    "the broker did not apply the change to {name} (a value it refused?); \
                     overrides now: {now:?}"
                );
            }
            println!("Altered configs of topic {name}.");
        }
        TopicCommand::Reassign {
            topic,
            moves,
            cancel,
            wait,
            client,
        } => super::reassign::reassign(&topic, &moves, cancel, wait, &client)?,
        TopicCommand::Reassignments {
            topic,
            format,
            client,
        } => super::reassign::list(topic.as_deref(), format.format, &client)?,
        TopicCommand::ElectLeaders {
            topics,
            unclean,
            client,
        } => super::reassign::elect_leaders(&topics, unclean, &client)?,
    }
    Ok(())
}

/// A topic's explicit (per-topic) config overrides.
fn topic_overrides(
    rt: &tokio::runtime::Runtime,
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    client: &ClientArgs,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let resource = rt
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], &opts(client)))?
        .into_iter()
        .next()
        .context("no DescribeConfigs result")?
        .map_err(|e| anyhow::anyhow!("describing configs of {name}: {e}"))?;
    Ok(resource
        .entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect())
}

/// Each partition's leader epoch, which librdkafka's metadata does not
/// expose: a Metadata (v12) request of our own to a broker the cluster
/// listed, the first that answers.
fn leader_epochs(
    md: &rdkafka::metadata::Metadata,
    name: &str,
    client: &ClientArgs,
) -> anyhow::Result<std::collections::BTreeMap<i32, i32>> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))]));
    let mut last_error = None;
    for b in md.brokers() {
        match super::wire::request(b.host(), b.port(), 12, &request, client.timeout()) {
            Ok(response) => {
                let topic = response
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
                    .with_context(|| format!("topic {name} not found"))?;
                return Ok(topic
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.leader_epoch))
                    .collect());
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| anyhow::anyhow!("no broker listed"))
        .context("reading the partitions' leader epochs"))
}

fn describe(
    rt: &tokio::runtime::Runtime,
    name: &str,
    format: OutputFormat,
    client: &ClientArgs,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client.client_config()?.create()?;
    let md = consumer.fetch_metadata(Some(name), client.timeout())?;
    let topic = md
        .topics()
        .iter()
        .find(|t| t.name() == name)
        .with_context(|| format!("topic {name} not found"))?;
    if let Some(e) = topic.error() {
        bail!(
            "topic {name}: {}",
            rdkafka::types::RDKafkaErrorCode::from(e)
        );
    }
    let epochs = leader_epochs(&md, name, client)?;
    let mut partitions = Vec::new();
    for p in topic.partitions() {
        let (low, high) = consumer.fetch_watermarks(name, p.id(), client.timeout())?;
        let epoch = epochs.get(&p.id()).copied().unwrap_or(-1);
        partitions.push((
            (p.id(), p.leader(), epoch),
            p.replicas().to_vec(),
            p.isr().to_vec(),
            low,
            high,
        ));
    }
    let admin = admin(client)?;
    let overrides = topic_overrides(rt, &admin, name, client)?;
    let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    match format {
        OutputFormat::Json => print_json(&json!({
            "name": name,
            "partitions": partitions.iter().map(|((id, leader, epoch), replicas, isr, low, high)| json!({
                "partition": id, "leader": leader, "leader_epoch": epoch,
                "replicas": replicas, "isr": isr,
                "log_start_offset": low, "log_end_offset": high,
            })).collect::<Vec<_>>(),
            "configs": overrides.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }))?,
        OutputFormat::Table => {
            println!("Topic: {name}  Partitions: {}", partitions.len());
            let rows: Vec<Vec<String>> = partitions
                .iter()
                .map(|((id, leader, epoch), replicas, isr, low, high)| {
                    vec![
                        id.to_string(),
                        leader.to_string(),
                        epoch.to_string(),
                        list(replicas),
                        list(isr),
                        low.to_string(),
                        high.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "PARTITION",
                        "LEADER",
                        "LEADER-EPOCH",
                        "REPLICAS",
                        "ISR",
                        "LOG-START-OFFSET",
                        "LOG-END-OFFSET"
                    ],
                    &rows
                )
            );
            if !overrides.is_empty() {
                println!("Configs:");
                for (k, v) in &overrides {
                    println!("  {k}={v}");
                }
            }
        }
    }
    Ok(())
}
