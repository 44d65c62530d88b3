//! `vltava consume TOPIC`: print records, like kafka-console-consumer and
//! `kcat -C`: from the beginning, the end, an offset or a timestamp; with a
//! group (committing what was printed) or without; following or stopping at
//! the end (`-e`); at most `-n COUNT`.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::ClientArgs;

/// Flags of the command (its help text and examples are in `main.rs`).
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Consume as this group (subscribe, commit what was printed); without it
    /// every partition is read directly
    #[arg(short, long)]
    pub group: Option<String>,
    /// Where to start: beginning (the default), end (only new records: tail
    /// with `-o end`), an offset N, -N (N before the end) or @TIMESTAMP_MS.
    /// With a group the group's committed offset comes first; this applies
    /// only where it has none (beginning or end)
    #[arg(short, long, allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Only this partition (without a group)
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Exit once every partition is read to its end (like kcat -e)
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Exit after COUNT records
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// What to print for each record
    #[arg(short = 'F', long = "output", value_enum, default_value_t = Output::Value)]
    pub output: Output,
    /// Separator between key and value with -F key-value
    #[arg(short = 'K', long = "key-separator", default_value = "\t")]
    pub key_separator: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The value only
    Value,
    /// KEY<SEP>VALUE
    KeyValue,
    /// One JSON object per record with topic, partition, offset, timestamp, key, value, headers
    Json,
}

/// Where consumption starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    Offset(i64),
    FromEnd(i64),
    Timestamp(i64),
}

pub fn parse_start(s: &str) -> anyhow::Result<Start> {
    Ok(match s {
        "beginning" | "earliest" => Start::Beginning,
        "end" | "latest" => Start::End,
        _ if s.starts_with('@') => Start::Timestamp(s[1..].parse().context("@TIMESTAMP_MS")?),
        _ if s.starts_with('-') => Start::FromEnd(s[1..].parse().context("-N")?),
        _ => {
            Start::Offset(s.parse().with_context(|| {
                format!("--offset {s:?}: expected beginning, end, N, -N or @TS")
            })?)
        }
    })
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    // From the beginning unless told otherwise, as kcat and rpk do.
    let start = match &args.offset {
        Some(o) => parse_start(o)?,
        None => Start::Beginning,
    };
    let mut config = args.client.client_config()?;
    config.set("enable.partition.eof", "true");
    match &args.group {
        Some(group) => {
            let reset = match start {
                Start::Beginning => "earliest",
                Start::End => "latest",
                _ => bail!("with --group, --offset is beginning or end; use `vltava group reset-offsets` to move a group"),
            };
            config
                .set("group.id", group)
                .set("auto.offset.reset", reset)
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false");
        }
        None => {
            config
                .set("group.id", "vltava-cli")
                .set("enable.auto.commit", "false");
        }
    }
    let consumer: BaseConsumer<QuietEof> = config.create_with_context(QuietEof)?;
    let timeout = args.client.timeout();
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let md = consumer.fetch_metadata(Some(&args.topic), timeout)?;
        let count = super::partition_count(&md, &args.topic)?;
        let partitions: Vec<i32> = match args.partition {
            Some(p) if (0..count).contains(&p) => vec![p],
            Some(p) => bail!("topic {} has no partition {p}", args.topic),
            None => (0..count).collect(),
        };
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            let offset = match start {
                Start::Beginning => Offset::Beginning,
                Start::End => Offset::End,
                Start::Offset(o) => Offset::Offset(o),
                Start::FromEnd(n) => Offset::OffsetTail(n),
                Start::Timestamp(_) => Offset::Beginning,
            };
            tpl.add_partition_offset(&args.topic, p, offset)?;
        }
        if let Start::Timestamp(ts) = start {
            let mut times = TopicPartitionList::new();
            for &p in &partitions {
                times.add_partition_offset(&args.topic, p, Offset::Offset(ts))?;
            }
            tpl = consumer.offsets_for_times(times, timeout)?;
        }
        consumer.assign(&tpl)?;
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut at_end: HashSet<i32> = HashSet::new();
    let done = |printed: u64| args.count.is_some_and(|n| printed >= n);
    while !done(printed) {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        match result {
            Ok(m) => {
                at_end.remove(&m.partition());
                write_record(&mut out, &m, args.output, &args.key_separator)?;
                printed += 1;
                if args.group.is_some() {
                    consumer.store_offset_from_message(&m)?;
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                if args.exit_at_end {
                    let assigned = consumer.assignment()?.count();
                    if assigned > 0 && at_end.len() >= assigned {
                        break;
                    }
                }
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                bail!("topic {} does not exist", args.topic)
            }
            Err(e) => return Err(e).context("consuming"),
        }
    }
    out.flush()?;
    if args.group.is_some() && printed > 0 {
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .context("committing offsets")?;
    }
    if args.group.is_some() {
        consumer.unsubscribe();
    }
    eprintln!("Consumed {printed} records.");
    Ok(())
}

fn write_record<M: Message>(
    out: &mut impl Write,
    m: &M,
    format: Output,
    sep: &str,
) -> anyhow::Result<()> {
    let value = m.payload().unwrap_or_default();
    match format {
        Output::Value => {
            out.write_all(value)?;
        }
        Output::KeyValue => {
            out.write_all(m.key().unwrap_or_default())?;
            out.write_all(sep.as_bytes())?;
            out.write_all(value)?;
        }
        Output::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(lossy).into()))
                        .collect()
                })
                .unwrap_or_default();
            let v = json!({
                "topic": m.topic(),
                "partition": m.partition(),
                "offset": m.offset(),
                "timestamp": m.timestamp().to_millis(),
                "key": m.key().map(lossy),
                "value": m.payload().map(lossy),
                "headers": headers,
            });
            serde_json::to_writer(&mut *out, &v)?;
        }
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// Bytes as text for JSON output (invalid UTF-8 replaced).
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reaching the end of a partition is how `-e` knows to stop, not an error:
/// keep librdkafka from also logging it as one.
struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        tracing::error!(target: "librdkafka", %error, reason, "librdkafka error");
    }
}

impl ConsumerContext for QuietEof {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse_like_kcat() {
        assert_eq!(parse_start("beginning").unwrap(), Start::Beginning);
        assert_eq!(parse_start("end").unwrap(), Start::End);
        assert_eq!(parse_start("42").unwrap(), Start::Offset(42));
        assert_eq!(parse_start("-10").unwrap(), Start::FromEnd(10));
        assert_eq!(
            parse_start("@1700000000000").unwrap(),
            Start::Timestamp(1_700_000_000_000)
        );
        assert!(parse_start("soon").is_err());
    }
}
