//! The broker's counters and histograms, and the Prometheus text format.
//!
//! Counters are recorded where the event happens (`net/connection.rs` for
//! requests and connections, `api/produce.rs` and `api/fetch.rs` for bytes,
//! messages and error codes, `broker/partition.rs` for fsync latency); this
//! module only stores them and knows the exposition format. It never touches
//! sockets or broker state: `admin.rs` walks the broker and renders.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in microseconds (100µs … 10s).
const LATENCY_BOUNDS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Api keys are small non-negative numbers; this bounds the per-key table.
const MAX_API_KEY: usize = 128;

/// A cumulative latency histogram with fixed buckets, lock-free to record.
pub struct Histogram {
    /// Observations at or below each bound (not yet cumulative).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`], buckets cumulative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// (upper bound in microseconds, observations ≤ bound); the +Inf bucket is `count`.
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum_us: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            buckets: LATENCY_BOUNDS_US
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = LATENCY_BOUNDS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = LATENCY_BOUNDS_US
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            // At least the finite buckets' total, even if a record is mid-flight.
            count: self.count.load(Ordering::Relaxed).max(cumulative),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// Traffic of one partition, kept with the partition and summed per topic.
#[derive(Debug, Default)]
pub struct PartitionStats {
    pub bytes_in: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_out: AtomicU64,
}

impl PartitionStats {
    /// A produce appended `messages` records in `bytes` bytes of batches.
    pub fn record_in(&self, bytes: usize, messages: u64) {
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
    }

    /// A fetch returned `batches` (whole v2 batches as stored).
    pub fn record_out(&self, batches: &[u8]) {
        self.bytes_out
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        self.messages_out
            .fetch_add(count_records(batches), Ordering::Relaxed);
    }
}

/// Records in a run of v2 batches: the header's record count of each whole batch.
pub fn count_records(mut batches: &[u8]) -> u64 {
    // base offset (8) + batch length (4) … records count at byte 57 (4).
    const RECORDS_COUNT_POS: usize = 57;
    let mut total = 0u64;
    while batches.len() >= RECORDS_COUNT_POS + 4 {
        let len = i32::from_be_bytes([batches[8], batches[9], batches[10], batches[11]]);
        let Some(size) = usize::try_from(len).ok().map(|l| l + 12) else {
            break;
        };
        if size > batches.len() {
            break;
        }
        let count = i32::from_be_bytes([
            batches[RECORDS_COUNT_POS],
            batches[RECORDS_COUNT_POS + 1],
            batches[RECORDS_COUNT_POS + 2],
            batches[RECORDS_COUNT_POS + 3],
        ]);
        total += u64::try_from(count).unwrap_or(0);
        batches = &batches[size..];
    }
    total
}

/// Requests of one API key.
struct ApiStats {
    count: AtomicU64,
    latency: Histogram,
}

/// Process-wide broker metrics (everything not kept with a partition).
pub struct Metrics {
    requests: Vec<ApiStats>,
    produce_errors: Mutex<BTreeMap<i16, u64>>,
    fetch_errors: Mutex<BTreeMap<i16, u64>>,
    connections: AtomicI64,
    connections_accepted: AtomicU64,
    fsync: Histogram,
    corrupt_batches: AtomicU64,
    isr_shrinks: AtomicU64,
    isr_expands: AtomicU64,
    leader_elections: AtomicU64,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The broker's metrics (one broker per process).
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: (0..MAX_API_KEY)
                .map(|_| ApiStats {
                    count: AtomicU64::new(0),
                    latency: Histogram::new(),
                })
                .collect(),
            produce_errors: Mutex::new(BTreeMap::new()),
            fetch_errors: Mutex::new(BTreeMap::new()),
            connections: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            fsync: Histogram::new(),
            corrupt_batches: AtomicU64::new(0),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            leader_elections: AtomicU64::new(0),
        }
    }

    /// One request of `api_key` was answered (or found to need no answer) after `elapsed`.
    pub fn request(&self, api_key: i16, elapsed: Duration) {
        if let Some(s) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.requests.get(k))
        {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.latency.observe(elapsed);
        }
    }

    pub fn produce_error(&self, code: i16) {
        *self.produce_errors.lock().entry(code).or_default() += 1;
    }

    pub fn fetch_error(&self, code: i16) {
        *self.fetch_errors.lock().entry(code).or_default() += 1;
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn fsync(&self, elapsed: Duration) {
        self.fsync.observe(elapsed);
    }

    /// A read found a corrupt record batch on disk (counted once per batch).
    pub fn corrupt_batch(&self) {
        self.corrupt_batches.fetch_add(1, Ordering::Relaxed);
    }

    /// A partition this broker leads shrank (`expanded`: grew) its ISR.
    pub fn isr_changed(&self, expanded: bool) {
        let counter = if expanded {
            &self.isr_expands
        } else {
            &self.isr_shrinks
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// This broker became the leader of a partition.
    pub fn leader_elected(&self) {
        self.leader_elections.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders everything kept here; `api_name` names an api key.
    pub fn render(&self, out: &mut Exposition, api_name: impl Fn(i16) -> String) {
        out.header(
            "vltava_requests_total",
            "counter",
            "Requests handled, by API.",
        );
        let used: Vec<(i16, &ApiStats)> = self
            .requests
            .iter()
            .enumerate()
            .filter(|(_, s)| s.count.load(Ordering::Relaxed) > 0)
            .filter_map(|(k, s)| Some((i16::try_from(k).ok()?, s)))
            .collect();
        for (key, s) in &used {
            let name = api_name(*key);
            out.sample(
                "vltava_requests_total",
                &[("api", &name)],
                s.count.load(Ordering::Relaxed),
            );
        }
        out.header(
            "vltava_request_duration_seconds",
            "histogram",
            "Time from reading a request to its response being ready, by API.",
        );
        for (key, s) in &used {
            let name = api_name(*key);
            out.histogram(
                "vltava_request_duration_seconds",
                &[("api", &name)],
                &s.latency.snapshot(),
            );
        }
        for (name, help, map) in [
            (
                "vltava_produce_errors_total",
                "Produce partition responses with an error, by Kafka error code.",
                &self.produce_errors,
            ),
            (
                "vltava_fetch_errors_total",
                "Fetch partition responses with an error, by Kafka error code.",
                &self.fetch_errors,
            ),
        ] {
            out.header(name, "counter", help);
            for (code, n) in map.lock().iter() {
                out.sample(
                    name,
                    &[("code", &code.to_string()), ("error", &error_name(*code))],
                    *n,
                );
            }
        }
        out.header(
            "vltava_connections",
            "gauge",
            "Client connections open now.",
        );
        out.sample(
            "vltava_connections",
            &[],
            self.connections.load(Ordering::Relaxed).max(0) as u64,
        );
        out.header(
            "vltava_connections_accepted_total",
            "counter",
            "Client connections accepted since start.",
        );
        out.sample(
            "vltava_connections_accepted_total",
            &[],
            self.connections_accepted.load(Ordering::Relaxed),
        );
        out.header(
            "vltava_fsync_duration_seconds",
            "histogram",
            "Time to fsync one partition's unflushed data.",
        );
        out.histogram("vltava_fsync_duration_seconds", &[], &self.fsync.snapshot());
        out.header(
            "vltava_log_corrupt_batches_total",
            "counter",
            "Corrupt record batches (bad length, magic or CRC-32C) found by reads since start, each counted once.",
        );
        out.sample(
            "vltava_log_corrupt_batches_total",
            &[],
            self.corrupt_batches.load(Ordering::Relaxed),
        );
        for (name, help, counter) in [
            (
                "vltava_isr_shrinks_total",
                "ISR shrinks proposed by the partitions this broker leads and taken by the controller.",
                &self.isr_shrinks,
            ),
            (
                "vltava_isr_expands_total",
                "ISR expansions proposed by the partitions this broker leads and taken by the controller.",
                &self.isr_expands,
            ),
            (
                "vltava_leader_elections_total",
                "Times this broker became the leader of a partition.",
                &self.leader_elections,
            ),
        ] {
            out.header(name, "counter", help);
            out.sample(name, &[], counter.load(Ordering::Relaxed));
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Kafka's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
fn error_name(code: i16) -> String {
    use kafka_protocol::error::ParseResponseErrorCode;
    match code.err() {
        Some(e) => screaming_snake(&format!("{e:?}")),
        None => "NONE".to_string(),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A Prometheus text-format (0.0.4) document being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// The `# HELP` and `# TYPE` lines of a metric family; once per family.
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.line(name, labels, None, &value.to_string());
    }

    pub fn sample_i64(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.line(name, labels, None, &value.to_string());
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (bound_us, n) in &h.buckets {
            let le = seconds(*bound_us);
            self.line(&bucket, labels, Some(&le), &n.to_string());
        }
        self.line(&bucket, labels, Some("+Inf"), &h.count.to_string());
        self.line(&format!("{name}_sum"), labels, None, &seconds(h.sum_us));
        self.line(&format!("{name}_count"), labels, None, &h.count.to_string());
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: &str) {
        self.out.push_str(name);
        let le = le.map(|le| ("le", le));
        let mut all = labels.iter().copied().chain(le).peekable();
        if all.peek().is_some() {
            self.out.push('{');
            for (i, (k, v)) in all.enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Microseconds as decimal seconds, exactly (no float rounding): 2500 → "0.0025".
fn seconds(us: u64) -> String {
    let whole = us / 1_000_000;
    let frac = us % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Label values escape backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut e = Exposition::new();
        e.header("m", "gauge", "a \\ b\nc");
        e.sample("m", &[("topic", "a\"b\\c\nd")], 3);
        assert_eq!(
            e.finish(),
            "# HELP m a \\\\ b\\nc\n# TYPE m gauge\nm{topic=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(200));
        h.observe(Duration::from_secs(20));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (100, 1));
        assert_eq!(s.buckets[1], (250, 2));
        assert_eq!(s.buckets.last(), Some(&(10_000_000, 2)));
        let mut e = Exposition::new();
        e.histogram("lat", &[("api", "Produce")], &s);
        let text = e.finish();
        assert!(text.contains("lat_bucket{api=\"Produce\",le=\"0.0001\"} 1\n"));
        assert!(text.contains("lat_bucket{api=\"Produce\",le=\"0.00025\"} 2\n"));
        assert!(text.contains("lat_bucket{api=\"Produce\",le=\"10\"} 2\n"));
        assert!(text.contains("lat_bucket{api=\"Produce\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("lat_sum{api=\"Produce\"} 20.00025\n"));
        assert!(text.contains("lat_count{api=\"Produce\"} 3\n"));
    }

    #[test]
    fn error_codes_are_named_as_kafka_names_them() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
    }

    #[test]
    fn records_are_counted_from_batch_headers() {
        let mut two = crate::log::batch::test_util::batch(3, 0);
        two.extend(crate::log::batch::test_util::batch(2, 0));
        assert_eq!(count_records(&two), 5);
        // A trailing partial batch is not counted.
        let cut = two.len() - 1;
        assert_eq!(count_records(&two[..cut]), 3);
    }
}
