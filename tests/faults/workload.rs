//! The clients of a fault run (Jepsen's Kafka workload, with librdkafka):
//! producers that send unique values (plain, idempotent, transactional) and
//! consumers that poll (assigned and subscribed, read_committed and not),
//! each recording every send, acknowledgement, error, rebalance and poll in
//! the run's [`History`]; and the final reads of every partition once the
//! faults have healed.
//!
//! Nothing here judges what it sees: that is the checker's job.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::history::{value, Client, Event, History, Isolation, Read, Value};
use super::Rng;

/// What a run's clients are and how fast producers send.
#[derive(Debug, Clone)]
pub struct Spec {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub producers: Vec<Client>,
    pub consumers: Vec<Client>,
    /// The pause between one producer's sends (or transactions).
    pub send_interval: Duration,
    /// The consumer group of the subscribed consumers.
    pub group: String,
}

/// Progress counters, so a run can wait on the real condition "every kind
/// of client works again" after a fault heals.
#[derive(Default)]
pub struct Progress {
    /// Acknowledged non-transactional sends.
    pub acks: AtomicU64,
    /// Committed transactions.
    pub commits: AtomicU64,
    /// Records polled by consumers.
    pub reads: AtomicU64,
}

impl Progress {
    /// (acks, commits, reads) now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.acks.load(Ordering::Relaxed),
            self.commits.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }
}

/// The running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub progress: Arc<Progress>,
}

/// Process ids: 0 is the nemesis, clients count from 1. A client replaced
/// after a fatal error gets a new id, so every value stays unique.
struct Ids(AtomicU32);

impl Ids {
    fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

impl Workload {
    /// Starts every client of `spec` on its own thread.
    pub fn start(spec: &Spec, history: &History, seed: u64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let ids = Arc::new(Ids(AtomicU32::new(1)));
        let mut threads = Vec::new();
        for (i, client) in spec.producers.iter().chain(&spec.consumers).enumerate() {
            let (spec, history, stop, progress, ids) = (
                spec.clone(),
                history.clone(),
                stop.clone(),
                progress.clone(),
                ids.clone(),
            );
            let client = *client;
            let seed = seed.wrapping_add(i as u64 * 7919);
            let name = format!("fault-client-{i}");
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let ctx = Ctx {
                        spec,
                        history,
                        stop,
                        progress,
                        ids,
                    };
                    match client {
                        Client::PlainProducer | Client::IdempotentProducer => {
                            ctx.produce(client, seed)
                        }
                        Client::TransactionalProducer => ctx.produce_transactions(seed),
                        Client::AssignedConsumer(isolation) => ctx.consume_assigned(isolation),
                        Client::SubscribedConsumer(isolation) => ctx.consume_subscribed(isolation),
                    }
                })
                .expect("spawn client thread");
            threads.push(thread);
        }
        Workload {
            stop,
            threads,
            progress,
        }
    }

    /// Waits until every kind of client in `spec` has made progress since
    /// `before` (new acknowledgements, commits and reads), or `timeout`.
    pub fn wait_for_progress(
        &self,
        spec: &Spec,
        before: (u64, u64, u64),
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let needs_acks = spec
            .producers
            .iter()
            .any(|c| *c != Client::TransactionalProducer);
        let needs_commits = spec.producers.contains(&Client::TransactionalProducer);
        let needs_reads = !spec.consumers.is_empty();
        loop {
            let now = self.progress.snapshot();
            if (!needs_acks || now.0 > before.0)
                && (!needs_commits || now.1 > before.1)
                && (!needs_reads || now.2 > before.2)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no progress within {timeout:?}: (acks, commits, reads) went from {before:?} to {now:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks every client to stop (a transaction in flight is finished,
    /// producers flush) and joins them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
    }
}

/// What every client thread shares.
struct Ctx {
    spec: Spec,
    history: History,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    ids: Arc<Ids>,
}

/// How long a client call may block before the client gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every client of a run shares: quick to notice a dead or
/// partitioned broker, so faults show up in the history within seconds.
fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("log_level", "3");
    c
}

fn parse_value(payload: Option<&[u8]>) -> Value {
    payload
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A producer's delivery reports, into the history.
struct Deliveries {
    history: History,
    process: u32,
    progress: Arc<Progress>,
    transactional: bool,
}

impl ClientContext for Deliveries {
    /// librdkafka's own log, with the process it belongs to: shown only
    /// when `VLTAVA_FAULTS_CLIENT_DEBUG` names debug contexts (e.g. `eos`).
    fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        eprintln!("librdkafka process {}: {fac} {message}", self.process);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Value>;

    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<Value>) {
        let value = *value;
        let event = match result {
            Ok(m) => {
                if !self.transactional {
                    self.progress.acks.fetch_add(1, Ordering::Relaxed);
                }
                Event::SendOk {
                    value,
                    partition: m.partition(),
                    offset: m.offset(),
                }
            }
            Err((e, _)) => Event::SendFail {
                value,
                error: e.to_string(),
            },
        };
        self.history.record(self.process, event);
    }
}

type Sender = ThreadedProducer<Deliveries>;

impl Ctx {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn producer(&self, client: Client, process: u32) -> Sender {
        let mut c = base_config(&self.spec.bootstrap);
        c.set("acks", "all")
            // Longer than any fault lasts: when queued messages time out,
            // librdkafka bumps the idempotent epoch and renumbers requests
            // that timed out but were written, duplicating them (a client
            // behaviour, docs/FAULTS.md), which would hide what the broker did.
            .set("message.timeout.ms", "60000")
            .set("request.timeout.ms", "5000")
            .set("linger.ms", "2");
        if let Ok(contexts) = std::env::var("VLTAVA_FAULTS_CLIENT_DEBUG") {
            c.set("debug", contexts)
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
        match client {
            Client::PlainProducer => {
                c.set("enable.idempotence", "false");
            }
            Client::IdempotentProducer => {
                c.set("enable.idempotence", "true");
            }
            _ => {
                c.set("transactional.id", format!("faults-tx-{process}"))
                    .set("transaction.timeout.ms", "60000");
            }
        }
        self.history.record(process, Event::Open { client });
        c.create_with_context(Deliveries {
            history: self.history.clone(),
            process,
            progress: self.progress.clone(),
            transactional: client == Client::TransactionalProducer,
        })
        .expect("create producer")
    }

    /// Records and enqueues one send of `v`; a send the client refuses (its
    /// queue full for `CALL_TIMEOUT`, say) is recorded as failed.
    fn send(&self, producer: &Sender, process: u32, v: Value, partition: i32, txn: Option<u64>) {
        self.history.record(
            process,
            Event::Send {
                value: v,
                partition,
                txn,
            },
        );
        let payload = v.to_string();
        let mut record = BaseRecord::with_opaque_to(&self.spec.topic, Box::new(v))
            .partition(partition)
            .key(&payload)
            .payload(&payload);
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            match producer.send(record) {
                Ok(()) => return,
                // The local queue is full: wait for room, for a while.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    let error = e.to_string();
                    self.history
                        .record(process, Event::SendFail { value: v, error });
                    return;
                }
            }
        }
    }

    /// A plain or idempotent producer: one value at a time to a random
    /// partition, until stopped; replaced by a new process after a fatal
    /// error (an idempotent producer's fencing).
    fn produce(&self, client: Client, seed: u64) {
        let mut rng = Rng::new(seed);
        while !self.stopping() {
            let process = self.ids.next();
            let producer = self.producer(client, process);
            let mut seq = 0u32;
            while !self.stopping() && producer.client().fatal_error().is_none() {
                let partition = rng.below(self.spec.partitions as u64) as i32;
                self.send(&producer, process, value(process, seq), partition, None);
                seq += 1;
                std::thread::sleep(self.spec.send_interval);
            }
            // Whatever is still unacknowledged stays indefinite in the history.
            let _ = producer.flush(Duration::from_secs(30));
            close_in_background(producer);
        }
    }

    /// A transactional producer: transactions of 1–3 values over random
    /// partitions; one in five is written, then aborted on purpose.
    fn produce_transactions(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        while !self.stopping() {
            let process = self.ids.next();
            let producer = self.producer(Client::TransactionalProducer, process);
            if producer.init_transactions(CALL_TIMEOUT * 3).is_err() {
                close_in_background(producer);
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let mut seq = 0u32;
            let mut n = 0u64;
            let mut healthy = true;
            while healthy && !self.stopping() {
                n += 1;
                let txn = (u64::from(process) << 32) | n;
                if producer.begin_transaction().is_err() {
                    break;
                }
                self.history.record(process, Event::Begin { txn });
                for _ in 0..=rng.below(3) {
                    let partition = rng.below(self.spec.partitions as u64) as i32;
                    self.send(
                        &producer,
                        process,
                        value(process, seq),
                        partition,
                        Some(txn),
                    );
                    seq += 1;
                }
                healthy = if rng.below(5) == 0 {
                    // Written first, so the log holds aborted records that
                    // read_committed consumers must skip (an abort purges
                    // what is still queued).
                    let _ = producer.flush(CALL_TIMEOUT);
                    self.abort(&producer, process, txn)
                } else {
                    self.commit(&producer, process, txn)
                };
                std::thread::sleep(self.spec.send_interval);
            }
            close_in_background(producer);
        }
    }

    /// Commits `txn`, retrying what may be retried and aborting what must be;
    /// false when the producer can no longer be used.
    fn commit(&self, producer: &Sender, process: u32, txn: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.history.record(process, Event::Commit { txn });
            match producer.commit_transaction(CALL_TIMEOUT) {
                Ok(()) => {
                    self.history.record(process, Event::CommitOk { txn });
                    self.progress.commits.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(e) => {
                    self.history.record(
                        process,
                        Event::CommitFail {
                            txn,
                            error: e.to_string(),
                        },
                    );
                    let (retriable, requires_abort) = match &e {
                        KafkaError::Transaction(t) => (t.is_retriable(), t.txn_requires_abort()),
                        _ => (false, false),
                    };
                    if requires_abort {
                        return self.abort(producer, process, txn);
                    }
                    if !retriable || Instant::now() >= deadline {
                        return false;
                    }
                }
            }
        }
    }

    /// Aborts `txn`; false when the producer can no longer be used.
    fn abort(&self, producer: &Sender, process: u32, txn: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match producer.abort_transaction(CALL_TIMEOUT) {
                Ok(()) => {
                    self.history.record(process, Event::AbortOk { txn });
                    return true;
                }
                Err(KafkaError::Transaction(t)) if t.is_retriable() => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    fn consumer_config(&self, isolation: Isolation) -> ClientConfig {
        let mut c = base_config(&self.spec.bootstrap);
        c.set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "200")
            .set(
                "isolation.level",
                match isolation {
                    Isolation::ReadCommitted => "read_committed",
                    Isolation::ReadUncommitted => "read_uncommitted",
                },
            );
        c
    }

    /// Polls once (waiting up to 100 ms for the first record) and records
    /// the records it returned as one poll.
    fn poll_into_history<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, process: u32) {
        let mut reads = Vec::new();
        let mut wait = Duration::from_millis(100);
        while reads.len() < 500 {
            match consumer.poll(wait) {
                Some(Ok(m)) => reads.push(Read {
                    partition: m.partition(),
                    offset: m.offset(),
                    value: parse_value(m.payload()),
                }),
                Some(Err(_)) | None => break,
            }
            wait = Duration::ZERO;
        }
        if !reads.is_empty() {
            self.progress
                .reads
                .fetch_add(reads.len() as u64, Ordering::Relaxed);
            self.history
                .record(process, Event::Poll { reads, txn: None });
        }
    }

    /// A consumer assigned every partition from the log start.
    fn consume_assigned(&self, isolation: Isolation) {
        let process = self.ids.next();
        self.history.record(
            process,
            Event::Open {
                client: Client::AssignedConsumer(isolation),
            },
        );
        let consumer: BaseConsumer = self
            .consumer_config(isolation)
            .set("group.id", format!("faults-assigned-{process}"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("create consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.spec.partitions {
            tpl.add_partition_offset(&self.spec.topic, p, Offset::Beginning)
                .expect("partition offset");
        }
        consumer.assign(&tpl).expect("assign");
        self.history.record(
            process,
            Event::Assigned {
                partitions: (0..self.spec.partitions).collect(),
            },
        );
        while !self.stopping() {
            self.poll_into_history(&consumer, process);
        }
        close_in_background(consumer);
    }

    /// A member of the run's consumer group; every rebalance is recorded.
    fn consume_subscribed(&self, isolation: Isolation) {
        let process = self.ids.next();
        self.history.record(
            process,
            Event::Open {
                client: Client::SubscribedConsumer(isolation),
            },
        );
        let consumer: BaseConsumer<Rebalances> = self
            .consumer_config(isolation)
            .set("group.id", &self.spec.group)
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("auto.commit.interval.ms", "1000")
            .create_with_context(Rebalances {
                history: self.history.clone(),
                process,
            })
            .expect("create consumer");
        consumer.subscribe(&[&self.spec.topic]).expect("subscribe");
        while !self.stopping() {
            self.poll_into_history(&consumer, process);
        }
        close_in_background(consumer);
    }
}

/// Drops (closes) a client on a thread of its own, so the run's end never
/// waits on it: librdkafka 2.12.1 can deadlock inside a client after a
/// broker it knew goes away (seen once, in `rd_kafka_unsubscribe`, after a
/// rolling restart), and a stuck client must not hang the run. Its history
/// is complete by then; a client still stuck when the test process exits
/// goes with it.
fn close_in_background<T: Send + 'static>(client: T) {
    let _ = std::thread::Builder::new()
        .name("fault-client-close".into())
        .spawn(move || drop(client));
}

/// A group member's rebalances, into the history: after an assignment the
/// member resumes from its group's committed offsets.
struct Rebalances {
    history: History,
    process: u32,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions = tpl.elements().iter().map(|e| e.partition()).collect();
            self.history
                .record(self.process, Event::Assigned { partitions });
        }
    }
}

/// Reads all of every partition twice (read_uncommitted, read_committed)
/// with fresh consumers once the cluster has converged, and records each as
/// a `FinalRead`. A read_committed read waits until the last stable offset
/// reaches the high watermark (open transactions have ended or timed out).
pub fn final_reads(spec: &Spec, history: &History, timeout: Duration) -> Result<(), String> {
    for partition in 0..spec.partitions {
        for isolation in [Isolation::ReadUncommitted, Isolation::ReadCommitted] {
            let reads = read_partition(spec, partition, isolation, timeout)?;
            history.record(
                0,
                Event::FinalRead {
                    partition,
                    isolation,
                    reads,
                },
            );
        }
    }
    Ok(())
}

fn final_consumer(spec: &Spec, isolation: Isolation) -> Result<BaseConsumer, String> {
    base_config(&spec.bootstrap)
        .set("group.id", "faults-final")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set(
            "isolation.level",
            match isolation {
                Isolation::ReadCommitted => "read_committed",
                Isolation::ReadUncommitted => "read_uncommitted",
            },
        )
        .create()
        .map_err(|e| format!("final consumer: {e}"))
}

fn read_partition(
    spec: &Spec,
    partition: i32,
    isolation: Isolation,
    timeout: Duration,
) -> Result<Vec<Read>, String> {
    let deadline = Instant::now() + timeout;
    let consumer = final_consumer(spec, isolation)?;
    // A read_committed consumer's end is the last stable offset: wait until
    // it is the high watermark (every transaction ended or timed out, its
    // marker written), so the read covers the whole log.
    let uncommitted = final_consumer(spec, Isolation::ReadUncommitted)?;
    let high = loop {
        let watermark = |c: &BaseConsumer| {
            c.fetch_watermarks(&spec.topic, partition, timeout)
                .map(|w| w.1)
                .map_err(|e| format!("end offsets of partition {partition}: {e}"))
        };
        let (high, end) = (watermark(&uncommitted)?, watermark(&consumer)?);
        if end == high {
            break high;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "partition {partition}: the {isolation:?} end stayed at {end}, the high watermark at {high}, for {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if high == 0 {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&spec.topic, partition, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let mut reads = Vec::new();
    loop {
        if Instant::now() >= deadline {
            return Err(format!(
                "final {isolation:?} read of partition {partition} read {} records and did not reach {high} within {timeout:?}",
                reads.len()
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => reads.push(Read {
                partition,
                offset: m.offset(),
                value: parse_value(m.payload()),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(reads),
            Some(Err(_)) | None => {}
        }
    }
}
