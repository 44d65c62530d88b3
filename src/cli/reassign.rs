//! `vltava topic reassign`, `reassignments` and `elect-leaders`: moving a
//! partition's replicas between brokers and its leadership back to the
//! preferred replica, as `kafka-reassign-partitions.sh` and
//! `kafka-leader-election.sh` do, through AlterPartitionReassignments,
//! ListPartitionReassignments and ElectLeaders (raw requests: librdkafka
//! has none of them).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_partition_reassignments_request, elect_leaders_request,
    list_partition_reassignments_request, AlterPartitionReassignmentsRequest, BrokerId,
    ElectLeadersRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::wire::{self, first_broker};
use super::{print_json, table, ClientArgs, OutputFormat};

/// A partition's ongoing reassignment: (replicas, adding, removing).
type Ongoing = (Vec<i32>, Vec<i32>, Vec<i32>);

fn topic_name(name: &str) -> TopicName {
    StrBytes::from_string(name.to_string()).into()
}

fn timeout_ms(client: &ClientArgs) -> i32 {
    i32::try_from(client.timeout_ms).unwrap_or(i32::MAX)
}

/// A Kafka error code as its name and message.
fn describe_error(code: i16, message: Option<&str>) -> String {
    let name = ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    match message {
        Some(m) if !m.is_empty() => format!("{name}: {m}"),
        _ => name,
    }
}

/// Parses `PARTITION=BROKER,BROKER...` (or a bare `PARTITION` when
/// cancelling).
fn parse_moves(items: &[String], cancel: bool) -> anyhow::Result<Vec<(i32, Option<Vec<i32>>)>> {
    items
        .iter()
        .map(|item| {
            let (partition, replicas) = match item.split_once('=') {
                Some((p, r)) => (p, Some(r)),
                None => (item.as_str(), None),
            };
            let partition: i32 = partition
                .trim()
                .parse()
                .with_context(|| format!("{item:?}: the partition is not a number"))?;
            match (cancel, replicas) {
                (true, None) => Ok((partition, None)),
                (true, Some(_)) => bail!("{item:?}: --cancel takes partitions only"),
                (false, None) => bail!("{item:?} is not PARTITION=BROKER,BROKER..."),
                (false, Some(r)) => {
                    let brokers = r
                        .split(',')
                        .map(|b| b.trim().parse::<i32>())
                        .collect::<Result<Vec<_>, _>>()
                        .with_context(|| format!("{item:?}: a broker id is not a number"))?;
                    Ok((partition, Some(brokers)))
                }
            }
        })
        .collect()
}

/// `vltava topic reassign TOPIC PARTITION=REPLICAS...`: starts (or with
/// `cancel`, cancels) the reassignments; with `wait`, returns once they are
/// complete.
pub fn reassign(
    topic: &str,
    items: &[String],
    cancel: bool,
    wait: bool,
    client: &ClientArgs,
) -> anyhow::Result<()> {
    let moves = parse_moves(items, cancel)?;
    if moves.is_empty() {
        bail!("nothing to reassign: give PARTITION=BROKER,BROKER... (or PARTITION with --cancel)");
    }
    let (host, port) = first_broker(&client.brokers)?;
    let request =
        AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(timeout_ms(client))
            .with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    moves
                        .iter()
                        .map(|(p, replicas)| {
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(*p)
                                .with_replicas(replicas.as_ref().map(|r| {
                                    r.iter().copied().map(BrokerId).collect()
                                }))
                        })
                        .collect(),
                ),
        ]);
    let response = wire::request(host, port, 0, &request, client.timeout())?;
    if response.error_code != 0 {
        bail!(
            "reassigning {topic}: {}",
            describe_error(response.error_code, response.error_message.as_deref())
        );
    }
    let mut failed = 0;
    for t in &response.responses {
        for p in &t.partitions {
            let replicas = moves
                .iter()
                .find(|(i, _)| *i == p.partition_index)
                .and_then(|(_, r)| r.clone());
            if p.error_code != 0 {
                failed += 1;
                eprintln!(
                    "{topic}-{}: {}",
                    p.partition_index,
                    describe_error(p.error_code, p.error_message.as_deref())
                );
            } else if let Some(r) = replicas {
                println!("Reassigning {topic}-{} to {r:?}.", p.partition_index);
            } else {
                println!(
                    "Cancelled the reassignment of {topic}-{}.",
                    p.partition_index
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} partition(s) of {topic} not reassigned");
    }
    if wait {
        let deadline = Instant::now() + client.timeout();
        let partitions: Vec<i32> = moves.iter().map(|(p, _)| *p).collect();
        loop {
            let ongoing = ongoing((host, port), Some((topic, &partitions)), client)?;
            if ongoing.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "still reassigning after {} ms: {:?}",
                    client.timeout_ms,
                    ongoing.keys().collect::<Vec<_>>()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        println!("Reassignment of {topic} complete.");
    }
    Ok(())
}

/// The reassignments in progress, by (topic, partition): of `only`'s
/// partitions, or all.
fn ongoing(
    (host, port): (&str, i32),
    only: Option<(&str, &[i32])>,
    client: &ClientArgs,
) -> anyhow::Result<BTreeMap<(String, i32), Ongoing>> {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(timeout_ms(client))
        .with_topics(only.map(|(topic, partitions)| {
            vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.to_vec()),
            ]
        }));
    let response = wire::request(host, port, 0, &request, client.timeout())?;
    if response.error_code != 0 {
        bail!(
            "listing reassignments: {}",
            describe_error(response.error_code, response.error_message.as_deref())
        );
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.to_string(), p.partition_index),
                    (
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ),
                )
            })
        })
        .collect())
}

/// `vltava topic reassignments`: what is being moved now.
pub fn list(topic: Option<&str>, format: OutputFormat, client: &ClientArgs) -> anyhow::Result<()> {
    let (host, port) = first_broker(&client.brokers)?;
    let mut all = ongoing((host, port), None, client)?;
    if let Some(topic) = topic {
        all.retain(|(t, _), _| t == topic);
    }
    match format {
        OutputFormat::Json => print_json(&json!(all
            .iter()
            .map(|((t, p), (r, a, d))| json!({
                "topic": t, "partition": p, "replicas": r, "adding": a, "removing": d
            }))
            .collect::<Vec<_>>())),
        OutputFormat::Table if all.is_empty() => {
            println!("No partition reassignment is in progress.");
            Ok(())
        }
        OutputFormat::Table => {
            let list = |v: &[i32]| {
                v.iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|((t, p), (r, a, d))| {
                    vec![t.clone(), p.to_string(), list(r), list(a), list(d)]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                    &rows
                )
            );
            Ok(())
        }
    }
}

/// `vltava topic elect-leaders [TOPIC...]`: a preferred (or, with
/// `unclean`, an unclean) leader election for every partition of the
/// topics, or of every topic.
pub fn elect_leaders(topics: &[String], unclean: bool, client: &ClientArgs) -> anyhow::Result<()> {
    let (host, port) = first_broker(&client.brokers)?;
    let topic_partitions = if topics.is_empty() {
        None
    } else {
        // Every partition of each named topic, from the cluster's metadata.
        let consumer: rdkafka::consumer::BaseConsumer = client.client_config()?.create()?;
        let mut wanted = Vec::with_capacity(topics.len());
        for t in topics {
            let md =
                rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(t), client.timeout())?;
            let count = super::partition_count(&md, t)?;
            wanted.push(
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic_name(t))
                    .with_partitions((0..count).collect()),
            );
        }
        Some(wanted)
    };
    let kind = if unclean { "UNCLEAN" } else { "PREFERRED" };
    let request = ElectLeadersRequest::default()
        .with_election_type(i8::from(unclean))
        .with_timeout_ms(timeout_ms(client))
        .with_topic_partitions(topic_partitions);
    let response = wire::request(host, port, 2, &request, client.timeout())?;
    if response.error_code != 0 {
        bail!(
            "electing leaders: {}",
            describe_error(response.error_code, None)
        );
    }
    let (mut elected, mut not_needed, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for t in &response.replica_election_results {
        for p in &t.partition_result {
            let name = format!("{}-{}", t.topic.as_str(), p.partition_id);
            match ResponseError::try_from_code(p.error_code) {
                None => elected.push(name),
                Some(ResponseError::ElectionNotNeeded) => not_needed.push(name),
                Some(_) => failed.push(format!(
                    "{name}: {}",
                    describe_error(p.error_code, p.error_message.as_deref())
                )),
            }
        }
    }
    if !elected.is_empty() {
        println!(
            "Successfully completed leader election ({kind}) for partitions {}",
            elected.join(", ")
        );
    }
    if !not_needed.is_empty() {
        println!(
            "Valid replica already elected for partitions {}",
            not_needed.join(", ")
        );
    }
    if elected.is_empty() && not_needed.is_empty() && failed.is_empty() {
        println!("No partition needed a leader election.");
    }
    for f in &failed {
        eprintln!("{f}");
    }
    if !failed.is_empty() {
        bail!("leader election failed for {} partition(s)", failed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_parse_as_partition_equals_brokers() {
        let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_moves(&items(&["0=4,2,3", "1=2"]), false).unwrap(),
            vec![(0, Some(vec![4, 2, 3])), (1, Some(vec![2]))]
        );
        assert_eq!(parse_moves(&items(&["3"]), true).unwrap(), vec![(3, None)]);
        assert!(parse_moves(&items(&["0"]), false).is_err());
        assert!(parse_moves(&items(&["0=1"]), true).is_err());
        assert!(parse_moves(&items(&["x=1"]), false).is_err());
        assert!(parse_moves(&items(&["0=1,b"]), false).is_err());
    }
}
