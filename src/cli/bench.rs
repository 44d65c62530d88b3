//! `vltava bench produce|consume|e2e`: throughput and latency against any
//! Kafka-compatible cluster, like kafka-producer-perf-test and
//! kafka-consumer-perf-test. Latencies go into an HDR histogram; a progress
//! bar shows on a terminal (stderr); the report is one line or JSON.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

use super::produce::{Acks, Compression};
use super::{print_json, runtime, ClientArgs, FormatArgs, OutputFormat};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce records as fast as allowed; latency is send → acknowledgement.
    ///
    /// Examples:
    ///   vltava bench produce --topic perf --records 1000000 --record-size 1024
    ///   vltava bench produce --topic perf --throughput 50000 --acks 1 -z lz4 --producers 4
    #[command(verbatim_doc_comment)]
    Produce(ProduceBench),
    /// Read records from the beginning of every partition (no group).
    ///
    /// Example:
    ///   vltava bench consume --topic perf --records 1000000
    #[command(verbatim_doc_comment)]
    Consume(ConsumeBench),
    /// Produce and consume at once; latency is send → received by the consumer.
    ///
    /// Example:
    ///   vltava bench e2e --topic perf-e2e --records 100000 --throughput 10000
    #[command(verbatim_doc_comment)]
    E2e(ProduceBench),
}

#[derive(Args, Debug, Clone)]
pub struct ProduceBench {
    #[arg(long, default_value = "vltava-bench")]
    pub topic: String,
    /// Records to send
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Bytes of each record's value
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Records per second at most, across producers (-1: no limit)
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub throughput: i64,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    #[arg(short = 'z', long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Partitions of the topic if it has to be created
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Producer clients sending in parallel
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumeBench {
    #[arg(long, default_value = "vltava-bench")]
    pub topic: String,
    /// Records to read
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Produce(b) => {
            ensure_topic(&b)?;
            let started = Instant::now();
            let (hist, bytes) = produce(&b, None)?;
            report("produce", &hist, bytes, started.elapsed(), b.format.format)
        }
        BenchCommand::Consume(b) => consume(&b),
        BenchCommand::E2e(b) => e2e(&b),
    }
}

/// A new microsecond histogram (1µs … 1h, 3 significant digits).
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("histogram")
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Creates the topic with `--partitions` if it does not exist.
fn ensure_topic(b: &ProduceBench) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = b.client.client_config()?.create()?;
    let topic = NewTopic::new(&b.topic, b.partitions, TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(b.client.timeout()));
    for r in runtime()?.block_on(admin.create_topics([&topic], &opts))? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("creating topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Records send → acknowledgement latency per record.
struct LatencyContext {
    hist: Mutex<Histogram<u64>>,
    failed: std::sync::atomic::AtomicU64,
    bar: ProgressBar,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.hist.lock().saturating_record(us.max(1));
            }
            Err(_) => {
                self.failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.bar.inc(1);
    }
}

/// Sends `b.records` records from `b.producers` clients; returns the
/// acknowledgement latencies and the bytes sent. With `stamp`, each value
/// starts with the microseconds since `stamp` at send time (for e2e).
fn produce(b: &ProduceBench, stamp: Option<Instant>) -> anyhow::Result<(Histogram<u64>, u64)> {
    if b.producers == 0 {
        bail!("--producers must be at least 1");
    }
    let bar = progress(b.records);
    let mut threads = Vec::new();
    for i in 0..u64::from(b.producers) {
        let share =
            b.records / u64::from(b.producers) + u64::from(i < b.records % u64::from(b.producers));
        let rate = (b.throughput > 0).then(|| b.throughput as f64 / f64::from(b.producers));
        let b = b.clone();
        let bar = bar.clone();
        threads.push(std::thread::spawn(
            move || -> anyhow::Result<Histogram<u64>> {
                let mut config = b.client.client_config()?;
                config
                    .set("acks", b.acks.as_str())
                    .set("compression.type", b.compression.as_str())
                    .set("linger.ms", "5")
                    .set("batch.size", "1000000");
                let producer: ThreadedProducer<LatencyContext> =
                    config.create_with_context(LatencyContext {
                        hist: Mutex::new(histogram()?),
                        failed: Default::default(),
                        bar,
                    })?;
                let mut value = vec![b'x'; b.record_size.max(8)];
                value.truncate(b.record_size.max(if stamp.is_some() { 8 } else { 0 }));
                let started = Instant::now();
                for n in 0..share {
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    if let Some(epoch) = stamp {
                        let us = epoch.elapsed().as_micros() as u64;
                        value[..8].copy_from_slice(&us.to_be_bytes());
                    }
                    let mut record = BaseRecord::with_opaque_to(&b.topic, Box::new(Instant::now()))
                        .payload(&value[..]);
                    record = record.key(&[][..]);
                    loop {
                        match producer.send::<[u8], [u8]>(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                r,
                            )) => {
                                record = r;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err((e, _)) => return Err(e).context("sending"),
                        }
                    }
                }
                producer.flush(Duration::from_secs(120))?;
                let context = producer.context();
                let failed = context.failed.load(std::sync::atomic::Ordering::Relaxed);
                if failed > 0 {
                    bail!("{failed} records were not acknowledged");
                }
                let hist = context.hist.lock().clone();
                Ok(hist)
            },
        ));
    }
    let mut total = histogram()?;
    for t in threads {
        let h = t
            .join()
            .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;
        total.add(&h).context("merging histograms")?;
    }
    bar.finish_and_clear();
    Ok((total, b.records * b.record_size as u64))
}

/// A consumer assigned to every partition of `topic` from the beginning.
fn assigned_consumer(
    client: &ClientArgs,
    topic: &str,
    from: Offset,
) -> anyhow::Result<BaseConsumer> {
    let mut config = client.client_config()?;
    config
        .set("group.id", "vltava-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create()?;
    let md = consumer.fetch_metadata(Some(topic), client.timeout())?;
    let count = super::partition_count(&md, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..count {
        tpl.add_partition_offset(topic, p, from)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

fn consume(b: &ConsumeBench) -> anyhow::Result<()> {
    let consumer = assigned_consumer(&b.client, &b.topic, Offset::Beginning)?;
    let bar = progress(b.records);
    let started = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    // No clock read or progress update per record: on some machines reading
    // the clock costs as much as receiving the record.
    let (mut idle_since, mut seen) = (Instant::now(), 0u64);
    while n < b.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                n += 1;
                bytes += m.payload_len() as u64;
                if n % 4096 == 0 {
                    bar.set_position(n);
                }
            }
            Some(Err(e)) => return Err(e).context("consuming"),
            None if n != seen => (idle_since, seen) = (Instant::now(), n),
            None if idle_since.elapsed() > b.client.timeout() => {
                bail!("only {n} of {} records arrived", b.records)
            }
            None => {}
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let (rate, mb) = rates(n, bytes, elapsed);
    match b.format.format {
        OutputFormat::Json => print_json(&json!({
            "records": n, "bytes": bytes, "seconds": elapsed.as_secs_f64(),
            "records_per_sec": rate, "mb_per_sec": mb,
        })),
        OutputFormat::Table => {
            println!(
                "consume: {n} records in {:.2} s, {rate:.1} records/sec ({mb:.2} MB/sec)",
                elapsed.as_secs_f64()
            );
            Ok(())
        }
    }
}

fn e2e(b: &ProduceBench) -> anyhow::Result<()> {
    ensure_topic(b)?;
    let consumer = assigned_consumer(&b.client, &b.topic, Offset::End)?;
    // Wait for the assignment to resolve the end offsets before producing.
    let _ = consumer.poll(Duration::from_millis(500));
    let epoch = Instant::now();
    let producer_args = b.clone();
    let producing = std::thread::spawn(move || produce(&producer_args, Some(epoch)));
    let mut hist = histogram()?;
    let mut received = 0u64;
    let mut idle_since = Instant::now();
    while received < b.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if let Some(stamp) = m.payload().and_then(|p| p.get(..8)) {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(stamp);
                    let sent = u64::from_be_bytes(raw);
                    let now = epoch.elapsed().as_micros() as u64;
                    hist.saturating_record(now.saturating_sub(sent).max(1));
                }
                received += 1;
                idle_since = Instant::now();
            }
            Some(Err(e)) => return Err(e).context("consuming"),
            None if idle_since.elapsed() > b.client.timeout() => {
                bail!("only {received} of {} records arrived", b.records)
            }
            None => {}
        }
    }
    let elapsed = epoch.elapsed();
    producing
        .join()
        .map_err(|_| anyhow::anyhow!("producer panicked"))??;
    report(
        "e2e",
        &hist,
        b.records * b.record_size as u64,
        elapsed,
        b.format.format,
    )
}

fn rates(records: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    (
        records as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
    )
}

fn report(
    what: &str,
    hist: &Histogram<u64>,
    bytes: u64,
    elapsed: Duration,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let n = hist.len();
    let (rate, mb) = rates(n, bytes, elapsed);
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |p: f64| ms(hist.value_at_quantile(p));
    match format {
        OutputFormat::Json => print_json(&json!({
            "records": n, "bytes": bytes, "seconds": elapsed.as_secs_f64(),
            "records_per_sec": rate, "mb_per_sec": mb,
            "latency_ms": {"avg": hist.mean() / 1000.0, "p50": q(0.5), "p99": q(0.99),
                           "p99_9": q(0.999), "max": ms(hist.max())},
        })),
        OutputFormat::Table => {
            println!(
                "{what}: {n} records, {rate:.1} records/sec ({mb:.2} MB/sec), latency avg {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                hist.mean() / 1000.0,
                q(0.5),
                q(0.99),
                q(0.999),
                ms(hist.max()),
            );
            Ok(())
        }
    }
}
