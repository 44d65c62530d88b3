//! `vltava group`: list, describe (members, assignments, committed offsets,
//! log end offsets, lag), delete and reset offsets — kafka-consumer-groups.sh.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::{is_internal, print_json, runtime, table, ClientArgs, FormatArgs, OutputFormat};

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups.
    ///
    /// Example:
    ///   vltava group list
    #[command(verbatim_doc_comment)]
    List {
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a group's members and, per partition, committed offset, log end offset and lag.
    ///
    /// Examples:
    ///   vltava group describe my-group
    ///   vltava group describe my-group --format json
    #[command(verbatim_doc_comment)]
    Describe {
        group: String,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete groups (they must have no members).
    ///
    /// Example:
    ///   vltava group delete my-group
    #[command(verbatim_doc_comment)]
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move a group's committed offsets (dry run unless --execute; the group must have no members).
    ///
    /// Examples:
    ///   vltava group reset-offsets my-group --topic orders --to-earliest --execute
    ///   vltava group reset-offsets my-group --topic orders:0,1 --shift-by -100
    ///   vltava group reset-offsets my-group --all-topics --to-datetime 1735689600000 --execute
    #[command(verbatim_doc_comment)]
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])))]
#[command(group(ArgGroup::new("which").required(true).args(["topics", "all_topics"])))]
pub struct ResetArgs {
    pub group: String,
    /// TOPIC or TOPIC:P,P,... (repeatable)
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]")]
    pub topics: Vec<String>,
    /// Every topic the group has committed offsets for
    #[arg(long)]
    pub all_topics: bool,
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Move each committed offset by N (negative moves back)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// The first offset with a timestamp at or after MS (epoch milliseconds)
    #[arg(long, value_name = "MS")]
    pub to_datetime: Option<i64>,
    /// Commit the new offsets (without it, only show them)
    #[arg(long)]
    pub execute: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A consumer member as DescribeGroups reports it.
struct Member {
    id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, i32)>,
}

/// One partition's line in `group describe`.
struct Row {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: i64,
    member: Option<usize>,
}

pub fn run(cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List { format, client } => {
            let consumer: BaseConsumer = client.client_config()?.create()?;
            let list = consumer.fetch_group_list(None, client.timeout())?;
            let mut groups: Vec<(String, String, String)> = list
                .groups()
                .iter()
                .map(|g| {
                    (
                        g.name().to_string(),
                        g.state().to_string(),
                        g.protocol_type().to_string(),
                    )
                })
                .collect();
            groups.sort();
            match format.format {
                OutputFormat::Json => print_json(&json!(groups
                    .iter()
                    .map(|(n, s, p)| json!({"group": n, "state": s, "protocol_type": p}))
                    .collect::<Vec<_>>()))?,
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> =
                        groups.into_iter().map(|(n, s, p)| vec![n, s, p]).collect();
                    print!("{}", table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows));
                }
            }
        }
        GroupCommand::Describe {
            group,
            format,
            client,
        } => describe(&group, format.format, &client)?,
        GroupCommand::Delete { groups, client } => {
            let admin: AdminClient<DefaultClientContext> = client.client_config()?.create()?;
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            let opts = AdminOptions::new().operation_timeout(Some(client.timeout()));
            for r in runtime()?.block_on(admin.delete_groups(&refs, &opts))? {
                let g = r.map_err(|(g, e)| anyhow::anyhow!("deleting group {g}: {e}"))?;
                println!("Deleted group {g}.");
            }
        }
        GroupCommand::ResetOffsets(args) => reset(args)?,
    }
    Ok(())
}

/// A consumer that acts for `group` (OffsetFetch/OffsetCommit) without joining it.
fn group_client(client: &ClientArgs, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut config = client.client_config()?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    Ok(config.create()?)
}

/// Every (topic, partition) of the cluster's non-internal topics.
fn all_partitions(
    consumer: &BaseConsumer,
    client: &ClientArgs,
) -> anyhow::Result<Vec<(String, i32)>> {
    let md = consumer.fetch_metadata(None, client.timeout())?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| !is_internal(t.name()))
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(move |p| (t.name().to_string(), p.id()))
        })
        .collect())
}

/// Committed offsets of `group` for `partitions` (only those with a commit).
fn committed(
    consumer: &BaseConsumer,
    partitions: &[(String, i32)],
    client: &ClientArgs,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let got = consumer
        .committed_offsets(tpl, client.timeout())
        .context("fetching committed offsets")?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

fn describe(group: &str, format: OutputFormat, client: &ClientArgs) -> anyhow::Result<()> {
    let consumer = group_client(client, group)?;
    let list = consumer.fetch_group_list(Some(group), client.timeout())?;
    let info = list.groups().iter().find(|g| g.name() == group);
    let state = info.map_or("Dead".to_string(), |g| g.state().to_string());
    let members: Vec<Member> = info
        .map(|g| {
            g.members()
                .iter()
                .map(|m| Member {
                    id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    assignment: m.assignment().map(parse_assignment).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let everything = all_partitions(&consumer, client)?;
    let offsets = committed(&consumer, &everything, client)?;
    // Every partition of a topic the group committed to, as kafka-consumer-groups shows.
    let mut keys: Vec<(String, i32)> = everything
        .into_iter()
        .filter(|(t, _)| offsets.keys().any(|(ct, _)| ct == t))
        .collect();
    keys.extend(members.iter().flat_map(|m| m.assignment.iter().cloned()));
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for (topic, partition) in keys {
        let (_, log_end) = consumer.fetch_watermarks(&topic, partition, client.timeout())?;
        let member = members.iter().position(|m| {
            m.assignment
                .iter()
                .any(|(t, p)| *t == topic && *p == partition)
        });
        let committed = offsets.get(&(topic.clone(), partition)).copied();
        rows.push(Row {
            topic,
            partition,
            committed,
            log_end,
            member,
        });
    }
    let lag = |r: &Row| r.committed.map(|c| (r.log_end - c).max(0));
    match format {
        OutputFormat::Json => print_json(&json!({
            "group": group,
            "state": state,
            "members": members.iter().map(|m| json!({
                "member_id": m.id, "client_id": m.client_id, "host": m.host,
                "assignment": m.assignment.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "partitions": rows.iter().map(|r| json!({
                "topic": r.topic, "partition": r.partition,
                "committed_offset": r.committed, "log_end_offset": r.log_end, "lag": lag(r),
                "member_id": r.member.map(|i| members[i].id.clone()),
            })).collect::<Vec<_>>(),
        }))?,
        OutputFormat::Table => {
            println!("Group {group} is {state} with {} members.", members.len());
            let dash = || "-".to_string();
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let m = r.member.map(|i| &members[i]);
                    vec![
                        group.to_string(),
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.committed.map_or_else(dash, |c| c.to_string()),
                        r.log_end.to_string(),
                        lag(r).map_or_else(dash, |l| l.to_string()),
                        m.map_or_else(dash, |m| m.id.clone()),
                        m.map_or_else(dash, |m| m.host.clone()),
                        m.map_or_else(dash, |m| m.client_id.clone()),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "GROUP",
                        "TOPIC",
                        "PARTITION",
                        "CURRENT-OFFSET",
                        "LOG-END-OFFSET",
                        "LAG",
                        "CONSUMER-ID",
                        "HOST",
                        "CLIENT-ID"
                    ],
                    &table_rows
                )
            );
        }
    }
    Ok(())
}

fn reset(args: ResetArgs) -> anyhow::Result<()> {
    let client = &args.client;
    let consumer = group_client(client, &args.group)?;
    let everything = all_partitions(&consumer, client)?;
    let current = committed(&consumer, &everything, client)?;
    let targets: Vec<(String, i32)> = if args.all_topics {
        current.keys().cloned().collect()
    } else {
        let mut out = Vec::new();
        for spec in &args.topics {
            let (topic, parts) = match spec.split_once(':') {
                Some((t, ps)) => {
                    let ps: Vec<i32> = ps
                        .split(',')
                        .map(|p| p.trim().parse().with_context(|| format!("--topic {spec}")))
                        .collect::<anyhow::Result<_>>()?;
                    (t, Some(ps))
                }
                None => (spec.as_str(), None),
            };
            let known: Vec<i32> = everything
                .iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, p)| *p)
                .collect();
            if known.is_empty() {
                bail!("topic {topic} not found");
            }
            for p in parts.unwrap_or(known) {
                out.push((topic.to_string(), p));
            }
        }
        out
    };
    let mut plan = Vec::new();
    for (topic, p) in &targets {
        let (low, high) = consumer.fetch_watermarks(topic, *p, client.timeout())?;
        let new = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(o) = args.to_offset {
            o
        } else if let Some(n) = args.shift_by {
            current.get(&(topic.clone(), *p)).copied().unwrap_or(high) + n
        } else if let Some(ts) = args.to_datetime {
            let mut q = TopicPartitionList::new();
            q.add_partition_offset(topic, *p, Offset::Offset(ts))?;
            let r = consumer.offsets_for_times(q, client.timeout())?;
            match r.find_partition(topic, *p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => high,
            }
        } else {
            bail!("give one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime");
        };
        // Like Kafka: clamp into the partition's offsets.
        plan.push((topic.clone(), *p, new.clamp(low, high)));
    }
    if args.execute {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in &plan {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        consumer.commit(&tpl, CommitMode::Sync).with_context(|| {
            format!(
                "committing offsets of group {} (it must have no members)",
                args.group
            )
        })?;
    }
    match args.format.format {
        OutputFormat::Json => print_json(&json!({
            "group": args.group, "executed": args.execute,
            "offsets": plan.iter().map(|(t, p, o)| json!({"topic": t, "partition": p, "new_offset": o})).collect::<Vec<_>>(),
        }))?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|(t, p, o)| vec![args.group.clone(), t.clone(), p.to_string(), o.to_string()])
                .collect();
            print!(
                "{}",
                table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
            );
            if !args.execute {
                println!("(dry run: add --execute to commit these offsets)");
            }
        }
    }
    Ok(())
}

/// Kafka's ConsumerProtocolAssignment: version, [topic, [partition]], user data.
pub fn parse_assignment(b: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let mut b = b;
    let mut out = Vec::new();
    let parse = |b: &mut &[u8], out: &mut Vec<(String, i32)>| -> Option<()> {
        i16_(b)?;
        let topics = i32_(b)?;
        for _ in 0..topics.max(0) {
            let len = usize::try_from(i16_(b)?).ok()?;
            let topic = String::from_utf8_lossy(take(b, len)?).into_owned();
            let n = i32_(b)?;
            for _ in 0..n.max(0) {
                out.push((topic.clone(), i32_(b)?));
            }
        }
        Some(())
    };
    let _ = parse(&mut b, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_assignment_is_read_and_truncation_is_tolerated() {
        let mut b = vec![
            0, 1, 0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        assert_eq!(parse_assignment(&b), vec![("a".into(), 0), ("a".into(), 3)]);
        b.truncate(b.len() - 2);
        assert_eq!(parse_assignment(&b), vec![("a".into(), 0)]);
    }
}
