//! `vltava produce TOPIC`: one record per input line, from stdin or a file,
//! like kafka-console-producer and `kcat -P`.
//!
//! Records are sent in input order; the command exits non-zero if any
//! record was not acknowledged.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use clap::{Args, ValueEnum};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::{key_values, ClientArgs};

/// Flags of the command (its help text and examples are in `main.rs`).
#[derive(Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    /// Read lines from FILE instead of stdin
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value
    #[arg(short = 'K', long = "key-separator", value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header for every record, KEY=VALUE (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Send every record to this partition [default: by key, or sticky]
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Compression codec
    #[arg(short = 'z', long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    #[value(name = "0")]
    Zero,
    #[value(name = "1")]
    One,
    All,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Counts failed deliveries and reports the first few.
#[derive(Default)]
struct DeliveryCounter {
    failed: AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("delivery failed: {e}");
            }
        }
    }
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let headers = key_values(&args.headers, "--header")?;
    let mut config = args.client.client_config()?;
    config
        .set("acks", args.acks.as_str())
        .set("compression.type", args.compression.as_str())
        .set("linger.ms", "5");
    let producer: ThreadedProducer<DeliveryCounter> =
        config.create_with_context(DeliveryCounter::default())?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut sent = 0u64;
    for line in input.split(b'\n') {
        let mut line = line.context("reading input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = split_key(&line, args.key_separator.as_deref());
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&args.topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in &headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            record = record.headers(h);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(std::time::Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e).context("sending a record"),
            }
        }
        sent += 1;
    }
    producer
        .flush(
            args.client
                .timeout()
                .max(std::time::Duration::from_secs(30)),
        )
        .context("waiting for acknowledgements")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        anyhow::bail!("{failed} of {sent} records were not delivered");
    }
    eprintln!("Produced {sent} records to {}.", args.topic);
    Ok(())
}

/// Splits a line into key and value at the first separator; a line without
/// the separator has no key.
pub fn split_key<'a>(line: &'a [u8], sep: Option<&str>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = sep.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_key(b"novalue", Some(":")), (None, &b"novalue"[..]));
        assert_eq!(split_key(b"k::v", Some("::")), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
    }
}
