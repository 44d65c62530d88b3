//! A producer/consumer throughput probe built on librdkafka (the `rdkafka`
//! crate), for measuring any Kafka-compatible broker the same way.
//!
//! ```text
//! cargo run --release --example perf -- produce BROKERS TOPIC COUNT SIZE ACKS
//! cargo run --release --example perf -- consume BROKERS TOPIC COUNT
//! ```
//! Produce sends COUNT records of SIZE bytes with `acks=ACKS` (all, 1, 0) to
//! an existing TOPIC; consume reads COUNT records from the beginning of all
//! of TOPIC's partitions (no consumer group). Both print records/s and MB/s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

struct Counter {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["produce", brokers, topic, count, size, acks] => {
            produce(brokers, topic, count.parse()?, size.parse()?, acks)
        }
        ["consume", brokers, topic, count] => consume(brokers, topic, count.parse()?),
        _ => {
            eprintln!("usage: perf produce BROKERS TOPIC COUNT SIZE ACKS | perf consume BROKERS TOPIC COUNT");
            std::process::exit(2);
        }
    }
}

fn report(what: &str, count: u64, bytes: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what}: {count} records in {secs:.2} s = {:.0} records/s, {:.1} MB/s",
        count as f64 / secs,
        bytes as f64 / secs / 1_000_000.0
    );
}

fn produce(
    brokers: &str,
    topic: &str,
    count: u64,
    size: usize,
    acks: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Counter {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })?;
    let counter = producer.context();
    let value = vec![b'x'; size];
    let start = Instant::now();
    for i in 0..count {
        let key = (i % 1024).to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => {
                    producer.poll(Duration::ZERO);
                    break;
                }
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while counter.ok.load(Ordering::Relaxed) + counter.failed.load(Ordering::Relaxed) < count
        && Instant::now() < deadline
    {
        producer.poll(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let failed = counter.failed.load(Ordering::Relaxed);
    report(
        &format!("produce acks={acks}"),
        counter.ok.load(Ordering::Relaxed),
        counter.ok.load(Ordering::Relaxed) * size as u64,
        elapsed,
    );
    if failed > 0 {
        println!("{failed} deliveries failed");
    }
    Ok(())
}

fn consume(brokers: &str, topic: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vltava-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            n += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    report("consume", n, bytes, start.elapsed());
    Ok(())
}
