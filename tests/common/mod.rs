//! Shared harness for Vltava's integration tests.
//!
//! [`TestBroker`] runs the real `vltava` binary as a child process on an
//! ephemeral port with its own temporary data directory, waits for the
//! `vltava listening on ADDR` line, and captures the broker's stderr in a file
//! inside the temp dir so that a failing test can show what the broker logged.
//!
//! The rest of the module holds small helpers for rdkafka clients that every
//! test uses: client configs, blocking admin calls, and "consume exactly this
//! many messages per partition" with a hard deadline.

#![allow(dead_code)]

pub mod cluster;
pub mod programs;
pub mod raw;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

/// How long the broker may take to print its ready line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the broker may take to exit after SIGTERM / SIGKILL.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A running (or stopped) `vltava server` child process.
pub struct TestBroker {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// Number of times the broker has been started on this data dir.
    starts: usize,
    /// Without `--listen`/`--data-dir` (settings come from `extra_args`' config file).
    raw: bool,
    /// The `vltava admin listening on ADDR` line, once read.
    admin_rx: Option<mpsc::Receiver<String>>,
    admin: Option<SocketAddr>,
    /// Listen on this port at every (re)start instead of a fresh one.
    pinned_port: Option<u16>,
    /// A launched child and its ready line, until `wait_ready`.
    launched: Option<(Child, mpsc::Receiver<Result<String, String>>)>,
}

impl TestBroker {
    /// Starts a broker with default settings.
    pub fn start() -> TestBroker {
        TestBroker::start_with(&[])
    }

    /// Starts a broker with extra command-line arguments, e.g.
    /// `["--override", "num.partitions=3"]`.
    pub fn start_with(extra_args: &[&str]) -> TestBroker {
        TestBroker::start_inner(extra_args, false)
    }

    /// Starts `vltava server` with exactly `args` (plus `--admin-listen
    /// 127.0.0.1:0`): no `--listen` or `--data-dir`, so a config file decides.
    pub fn start_raw(args: &[&str]) -> TestBroker {
        TestBroker::start_inner(args, true)
    }

    /// The temp dir owned by this broker (config files may be written here
    /// before a restart; `data_dir()` is its `data` subdirectory).
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The admin HTTP address from the `vltava admin listening on` line.
    pub fn admin_addr(&mut self) -> SocketAddr {
        if let Some(a) = self.admin {
            return a;
        }
        let rx = self.admin_rx.take().expect("broker not started");
        let line = rx
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("no `vltava admin listening on` line");
        let addr: SocketAddr = line.parse().expect("admin address parses");
        self.admin = Some(addr);
        addr
    }

    fn start_inner(extra_args: &[&str], raw: bool) -> TestBroker {
        let mut broker = TestBroker::new(extra_args, raw);
        broker.spawn();
        broker
    }

    /// A broker not yet started, with its temp dir.
    fn new(extra_args: &[&str], raw: bool) -> TestBroker {
        let dir = tempfile::Builder::new()
            .prefix("vltava-it-")
            .tempdir()
            .expect("create temp dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("create data dir");
        TestBroker {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            starts: 0,
            raw,
            admin_rx: None,
            admin: None,
            pinned_port: None,
            launched: None,
        }
    }

    /// Launches `vltava server` with exactly `args` like `start_raw`, without
    /// waiting for its ready line (a cluster's nodes are ready only once a
    /// quorum of them runs); `wait_ready` waits for it.
    pub fn launch_raw(args: &[&str]) -> TestBroker {
        let mut broker = TestBroker::new(args, true);
        broker.launch();
        broker
    }

    /// Launches the broker again on the same data dir without waiting for
    /// its ready line (it must not be running).
    pub fn relaunch(&mut self) {
        self.launch();
    }

    /// The address the broker reported in its ready line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `bootstrap.servers` value for this broker.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The data directory passed with `--data-dir` (stable across restarts).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn stderr_path(&self, start: usize) -> PathBuf {
        self.dir.path().join(format!("broker-stderr-{start}.log"))
    }

    /// The stderr of the most recent broker process.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path(self.starts))
    }

    /// The last `n` lines of the most recent broker process's stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail_lines(&self.stderr(), n)
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        }
    }

    /// Panics with the broker's stderr if the broker process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "broker exited unexpectedly with {status}; stderr tail:\n{}",
                    self.stderr_tail(80)
                );
            }
        } else {
            panic!("broker is not running");
        }
    }

    fn spawn(&mut self) {
        self.launch();
        self.wait_ready();
    }

    fn launch(&mut self) {
        assert!(
            self.child.is_none() && self.launched.is_none(),
            "spawn() while a broker child is alive"
        );
        self.starts += 1;
        let stderr_path = self.stderr_path(self.starts);
        let stderr_file = File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vltava"));
        cmd.arg("server");
        if !self.raw {
            let port = self.pinned_port.unwrap_or(0);
            cmd.arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(self.data_dir());
        }
        if !self.extra_args.iter().any(|a| a == "--admin-listen") {
            // Never the shared default port: tests run brokers in parallel.
            cmd.arg("--admin-listen").arg("127.0.0.1:0");
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        cmd.env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().expect("spawn vltava binary");
        let stdout = child.stdout.take().expect("child stdout");

        // A reader thread forwards the ready line, then keeps draining stdout so
        // the broker can never block on a full pipe.
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        let (admin_tx, admin_rx) = mpsc::channel::<String>();
        self.admin_rx = Some(admin_rx);
        self.admin = None;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut sent = false;
            let mut seen = Vec::new();
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if !sent {
                            let trimmed = line.trim_end();
                            // A controller-only node names its controller address.
                            let ready =
                                trimmed.strip_prefix("vltava listening on ").or_else(|| {
                                    trimmed.strip_prefix("vltava controller listening on ")
                                });
                            if let Some(addr) = ready {
                                let _ = tx.send(Ok(addr.to_string()));
                                sent = true;
                            } else {
                                seen.push(trimmed.to_string());
                            }
                        } else if let Some(addr) =
                            line.trim_end().strip_prefix("vltava admin listening on ")
                        {
                            let _ = admin_tx.send(addr.to_string());
                        }
                    }
                }
            }
            if !sent {
                let _ = tx.send(Err(format!(
                    "stdout closed before the ready line; stdout was: {seen:?}"
                )));
            }
        });

        self.launched = Some((child, rx));
    }

    /// Waits for the ready line of a launched broker.
    pub fn wait_ready(&mut self) {
        let (mut child, rx) = self.launched.take().expect("no launched broker");
        let stderr_path = self.stderr_path(self.starts);
        let outcome = rx.recv_timeout(STARTUP_TIMEOUT);
        let addr = match outcome {
            Ok(Ok(addr)) => addr,
            Ok(Err(why)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker (start #{}) did not become ready: {why}\nstderr:\n{}",
                    self.starts,
                    tail_lines(&read_lossy(&stderr_path), 200)
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker (start #{}) printed no `vltava listening on` line within {:?}\nstderr:\n{}",
                    self.starts,
                    STARTUP_TIMEOUT,
                    tail_lines(&read_lossy(&stderr_path), 200)
                );
            }
        };
        self.addr = addr.parse().unwrap_or_else(|e| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ready line carried an unparsable address {addr:?}: {e}")
        });
        assert_eq!(
            self.addr.ip().to_string(),
            "127.0.0.1",
            "broker should listen on the requested interface"
        );
        assert_ne!(
            self.addr.port(),
            0,
            "broker must report the bound port, not 0"
        );
        self.child = Some(child);
    }

    /// SIGKILL the broker and wait for it to be reaped.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            wait_with_timeout(&mut child, EXIT_TIMEOUT).expect("SIGKILLed broker did not exit");
        }
    }

    /// SIGTERM the broker and wait (bounded) for it to exit; returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("terminate() with no running broker");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run `kill -TERM`");
        assert!(status.success(), "`kill -TERM` failed: {status}");
        match wait_with_timeout(&mut child, EXIT_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {EXIT_TIMEOUT:?} of SIGTERM; stderr tail:\n{}",
                    self.stderr_tail(80)
                );
            }
        }
    }

    /// Makes every later restart listen on the current port, so clients that
    /// outlive a restart (an idempotent producer) reconnect to it.
    pub fn pin_port(&mut self) {
        self.pinned_port = Some(self.addr.port());
    }

    /// Restarts the broker on the same data dir. A still-running broker is
    /// stopped with SIGTERM first. The new process listens on a NEW ephemeral
    /// port: clients must be recreated.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.terminate();
            assert!(status.success(), "broker exited with {status} on SIGTERM");
        }
        self.spawn();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let launched = self.launched.take().map(|(child, _)| child);
        if let Some(mut child) = self.child.take().or(launched) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- vltava stderr (start #{}, last 120 lines) ----\n{}\n---- end of vltava stderr ----",
                self.starts,
                self.stderr_tail(120)
            );
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return None,
            Err(e) => panic!("waiting for broker: {e}"),
        }
    }
}

fn read_lossy(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

// ---------------------------------------------------------------------------
// rdkafka helpers
// ---------------------------------------------------------------------------

/// Base client config: bootstrap servers, IPv4, quiet-ish logging.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("log_level", "4");
    cfg
}

/// Producer config: acks=all, bounded delivery timeout.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = client_config(bootstrap);
    cfg.set("acks", "all")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    cfg
}

/// Consumer config for `assign()`-only consumption: no group protocol, no
/// commits. rdkafka requires a `group.id` for `assign()`, so one is set, but
/// nothing ever uses it.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", "vltava-it-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    cfg
}

pub fn admin_client(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap)
        .create()
        .expect("create admin client")
}

/// Runs a future to completion on a fresh current-thread runtime, with a hard timeout.
pub fn block_on<F: std::future::Future>(timeout: Duration, fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { tokio::time::timeout(timeout, fut).await })
        .unwrap_or_else(|_| panic!("operation did not complete within {timeout:?}"))
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

/// Creates a topic and asserts the broker reported success for it.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin_client(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(
        Duration::from_secs(20),
        admin.create_topics([&topic], &admin_opts()),
    )
    .expect("CreateTopics request failed");
    assert_eq!(results, vec![Ok(name.to_string())], "CreateTopics result");
}

/// Partition ids of `topic` as reported by Metadata (sorted), or None if the
/// topic is not listed. Panics on a per-topic error other than "unknown".
pub fn topic_partitions(bootstrap: &str, topic: &str) -> Option<Vec<i32>> {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("Metadata request failed");
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort();
    Some(ids)
}

/// Assigns `topic`'s `partitions` from offset 0 and polls until exactly
/// `expected[p]` messages have arrived for each partition p, then checks the
/// high watermark equals that count (so no extra messages exist). Returns the
/// messages per partition in the order received. Panics (with a summary) at
/// the deadline.
pub fn consume_exactly(
    bootstrap: &str,
    topic: &str,
    expected: &BTreeMap<i32, usize>,
    timeout: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    consume_exactly_with(consumer_config(bootstrap), topic, expected, timeout)
}

pub fn consume_exactly_with(
    config: ClientConfig,
    topic: &str,
    expected: &BTreeMap<i32, usize>,
    timeout: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for &p in expected.keys() {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");

    let mut got: BTreeMap<i32, Vec<OwnedMessage>> =
        expected.keys().map(|&p| (p, Vec::new())).collect();
    let mut errors: Vec<String> = Vec::new();
    let deadline = Instant::now() + timeout;
    let done =
        |got: &BTreeMap<i32, Vec<OwnedMessage>>| expected.iter().all(|(p, n)| got[p].len() >= *n);
    while !done(&got) {
        if Instant::now() >= deadline {
            let summary: Vec<String> = expected
                .iter()
                .map(|(p, n)| format!("partition {p}: got {} of {n}", got[p].len()))
                .collect();
            panic!(
                "consuming {topic} timed out after {timeout:?}: {}; consumer errors (first 10): {:?}",
                summary.join(", "),
                errors.iter().take(10).collect::<Vec<_>>()
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                assert_eq!(m.topic(), topic, "message from an unexpected topic");
                let p = m.partition();
                let bucket = got
                    .get_mut(&p)
                    .unwrap_or_else(|| panic!("message from unassigned partition {p}"));
                bucket.push(m.detach());
                assert!(
                    bucket.len() <= expected[&p],
                    "partition {p} yielded more than the expected {} messages (last offset {})",
                    expected[&p],
                    bucket.last().unwrap().offset()
                );
            }
            // Non-fatal client errors (e.g. the unused group coordinator not
            // being available) are recorded; the deadline bounds the loop.
            Some(Err(e)) => errors.push(e.to_string()),
        }
    }
    for (&p, &n) in expected {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("fetch watermarks");
        assert_eq!(low, 0, "low watermark of {topic}/{p}");
        assert_eq!(high, n as i64, "high watermark of {topic}/{p}");
    }
    got
}

/// The first header value with `key`, as UTF-8.
pub fn header_str<M: Message>(m: &M, key: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

pub fn key_str<M: Message>(m: &M) -> Option<String> {
    m.key()
        .map(|k| String::from_utf8(k.to_vec()).expect("utf-8 key"))
}

pub fn value_str<M: Message>(m: &M) -> Option<String> {
    m.payload()
        .map(|v| String::from_utf8(v.to_vec()).expect("utf-8 value"))
}

// ---------------------------------------------------------------------------
// Producing with per-message delivery reports
// ---------------------------------------------------------------------------

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use std::sync::Mutex;

/// Where the broker acknowledged a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Timestamp,
}

/// Outcome of one produced message: acked at a position, or failed.
pub type Outcome = Result<Acked, KafkaError>;

/// A producer context that records the delivery report of every message,
/// indexed by the `usize` delivery opaque given at send time.
#[derive(Default)]
pub struct RecordingContext {
    pub outcomes: Mutex<BTreeMap<usize, Outcome>>,
}

impl ClientContext for RecordingContext {}

impl ProducerContext for RecordingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Ok(Acked {
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp(),
            }),
            Err((e, _)) => Err(e.clone()),
        };
        let previous = self.outcomes.lock().unwrap().insert(index, outcome);
        assert!(
            previous.is_none(),
            "two delivery reports for message #{index}"
        );
    }
}

pub type RecordingProducer = BaseProducer<RecordingContext>;

pub fn recording_producer(config: &ClientConfig) -> RecordingProducer {
    config
        .create_with_context(RecordingContext::default())
        .expect("create producer")
}

/// A message to produce.
#[derive(Debug, Clone, Default)]
pub struct Out {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub timestamp: Option<i64>,
    pub partition: Option<i32>,
}

/// Enqueues `msg` as message number `index`, serving delivery callbacks while
/// the local queue is full (bounded by `deadline`).
pub fn send_one(
    producer: &RecordingProducer,
    topic: &str,
    index: usize,
    msg: &Out,
    deadline: Instant,
) {
    loop {
        let mut record: BaseRecord<'_, str, str, usize> =
            BaseRecord::with_opaque_to(topic, index).payload(msg.value.as_str());
        if let Some(k) = &msg.key {
            record = record.key(k.as_str());
        }
        if let Some(ts) = msg.timestamp {
            record = record.timestamp(ts);
        }
        if let Some(p) = msg.partition {
            record = record.partition(p);
        }
        if !msg.headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in &msg.headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v.as_str()),
                });
            }
            record = record.headers(h);
        }
        match producer.send(record) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                _,
            )) => {
                assert!(
                    Instant::now() < deadline,
                    "local producer queue stayed full until the deadline"
                );
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("enqueueing message #{index} failed: {e}"),
        }
    }
}

/// Produces all `msgs` (message i gets delivery index i), waits for every
/// delivery report, and returns the outcomes in order.
pub fn produce_all(
    config: &ClientConfig,
    topic: &str,
    msgs: &[Out],
    timeout: Duration,
) -> Vec<Outcome> {
    let producer = recording_producer(config);
    let deadline = Instant::now() + timeout;
    for (i, m) in msgs.iter().enumerate() {
        send_one(&producer, topic, i, m, deadline);
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    while producer.context().outcomes.lock().unwrap().len() < msgs.len() {
        assert!(
            Instant::now() < deadline,
            "only {} of {} delivery reports arrived within {timeout:?}",
            producer.context().outcomes.lock().unwrap().len(),
            msgs.len()
        );
        producer.poll(Duration::from_millis(50));
    }
    let outcomes = std::mem::take(&mut *producer.context().outcomes.lock().unwrap());
    assert_eq!(outcomes.len(), msgs.len());
    outcomes.into_values().collect()
}

/// Like [`produce_all`], but panics if any message was not acknowledged.
pub fn produce_all_acked(
    config: &ClientConfig,
    topic: &str,
    msgs: &[Out],
    timeout: Duration,
) -> Vec<Acked> {
    produce_all(config, topic, msgs, timeout)
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|e| panic!("message #{i} was not acknowledged: {e}")))
        .collect()
}

/// Number of acked messages per partition.
pub fn counts_per_partition(acked: &[Acked]) -> BTreeMap<i32, usize> {
    let mut m = BTreeMap::new();
    for a in acked {
        *m.entry(a.partition).or_insert(0) += 1;
    }
    m
}
